
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Cluster mode: "openbank_cluster" and "openbank_cluster_degraded", the
 * routing of a key to the Redis node that serves its slot (the map of
 * CLUSTER SLOTS, MOVED and ASK followed), the breaker around each node
 * (a node that failed is not asked again until a PING, by a timer,
 * succeeds), the state a request waits for (the check returns NGX_AGAIN
 * and the reply resumes the phases), the status and the metrics
 * (docs/architecture.md, "A second backend (a cluster: Redis)").
 *
 * Each worker has its own connections and slot map; whether a node is
 * down is shared by the workers (one worker's discovery spares the
 * others the wait), as are the counters of /metrics.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_cluster.h>
#include <ngx_http_openbank_redis.h>
#include <ngx_http_openbank_util.h>

#include <openssl/sha.h>


#define NGX_HTTP_OPENBANK_CLUSTER_NODES      64
#define NGX_HTTP_OPENBANK_CLUSTER_NONE       0xff
#define NGX_HTTP_OPENBANK_CLUSTER_PROBE      100      /* ms */
#define NGX_HTTP_OPENBANK_CLUSTER_REDIRECTS  5
#define NGX_HTTP_OPENBANK_CLUSTER_KEY_MAX    1024
#define NGX_HTTP_OPENBANK_CLUSTER_BUCKETS    8
#define NGX_HTTP_OPENBANK_CLUSTER_ARGS       64
#define NGX_HTTP_OPENBANK_CLUSTER_EXIT_WAIT  200      /* ms */

/* what a call found */
#define NGX_HTTP_OPENBANK_CLUSTER_TAKEN      0
#define NGX_HTTP_OPENBANK_CLUSTER_PRESENT    1
#define NGX_HTTP_OPENBANK_CLUSTER_FAILED     2

/* the slot map */
#define NGX_HTTP_OPENBANK_CLUSTER_UNKNOWN    0
#define NGX_HTTP_OPENBANK_CLUSTER_KNOWN      1
#define NGX_HTTP_OPENBANK_CLUSTER_STALE      2


/* a node as every worker sees it: up or down */

typedef struct {
    ngx_atomic_t                  down;
    size_t                        len;
    u_char                        name[NGX_SOCKADDR_STRLEN];
} ngx_http_openbank_cluster_shared_t;


typedef struct {
    ngx_atomic_t                  calls;
    ngx_atomic_t                  failures;
    ngx_atomic_t                  buckets[NGX_HTTP_OPENBANK_CLUSTER_BUCKETS
                                          + 1];
    ngx_atomic_t                  sum_us;
    ngx_atomic_t                  degraded[NGX_HTTP_OPENBANK_CLUSTER_KINDS][2];
    ngx_atomic_t                  idem[3];     /* _CLUSTER_IDEM_* */

    ngx_atomic_t                  lock;        /* to add a node */
    ngx_uint_t                    n_nodes;
    ngx_http_openbank_cluster_shared_t
                                  nodes[NGX_HTTP_OPENBANK_CLUSTER_NODES];
} ngx_http_openbank_cluster_counters_t;


typedef struct {
    ngx_str_t                     name;        /* "ip:port" */
    ngx_addr_t                    addr;
    ngx_http_openbank_redis_t     rd;
    ngx_uint_t                    slots;
    ngx_atomic_t                 *down;        /* shared, or local_down */
    ngx_atomic_t                  local_down;
    unsigned                      probing:1;
} ngx_http_openbank_cluster_node_t;


/* a call in flight: the redis call's data */

typedef struct ngx_http_openbank_cluster_req_s  ngx_http_openbank_cluster_req_t;

typedef struct {
    ngx_http_openbank_cluster_pt         handler;  /* NULL: nobody hears */
    void                                *data;
    ngx_http_openbank_cluster_req_t     *req;      /* a request's, or NULL */
    ngx_http_openbank_cluster_script_t  *script;
    ngx_uint_t                           slot;
    unsigned                             evaled:1;
    unsigned                             sending:1;
    unsigned                             failed:1;
} ngx_http_openbank_cluster_call_t;


/* a request's wait for Redis: ctx->cluster */

struct ngx_http_openbank_cluster_req_s {
    ngx_http_request_t                *r;
    ngx_http_openbank_cluster_call_t  *cc;      /* waiting; NULL once heard */
    ngx_http_event_handler_pt          resume;  /* NULL: the phases */
    ngx_http_event_handler_pt          write_event_handler;
    ngx_uint_t                         found;   /* _TAKEN, ... */
    unsigned                           waiting:1;
    unsigned                           done:1;
};


static ngx_http_openbank_cluster_conf_t *ngx_http_openbank_cluster_conf(
    ngx_conf_t *cf, ngx_http_openbank_main_conf_t *obmcf);
static ngx_int_t ngx_http_openbank_cluster_seed(ngx_conf_t *cf,
    ngx_http_openbank_cluster_conf_t *cl, ngx_str_t *url);
static ngx_int_t ngx_http_openbank_cluster_init_zone(
    ngx_shm_zone_t *shm_zone, void *data);
static ngx_int_t ngx_http_openbank_cluster_node(ngx_str_t *name);
static ngx_int_t ngx_http_openbank_cluster_node_add(ngx_addr_t *addr);
static void ngx_http_openbank_cluster_share(
    ngx_http_openbank_cluster_node_t *node);
static ngx_int_t ngx_http_openbank_cluster_send(ngx_uint_t slot,
    ngx_http_openbank_redis_call_t *call);
static void ngx_http_openbank_cluster_reply(
    ngx_http_openbank_redis_call_t *call, redisReply *reply);
static void ngx_http_openbank_cluster_count(
    ngx_http_openbank_redis_call_t *call, redisReply *reply);
static void ngx_http_openbank_cluster_failed(ngx_http_openbank_redis_t *rd);
static void ngx_http_openbank_cluster_probe(ngx_event_t *ev);
static void ngx_http_openbank_cluster_pong(
    ngx_http_openbank_redis_call_t *call, redisReply *reply);
static void ngx_http_openbank_cluster_refresh(void);
static void ngx_http_openbank_cluster_slots(
    ngx_http_openbank_redis_call_t *call, redisReply *reply);
static void ngx_http_openbank_cluster_schedule(ngx_msec_t delay);
static void ngx_http_openbank_cluster_cleanup(void *data);
static ngx_http_openbank_cluster_call_t *ngx_http_openbank_cluster_make(
    ngx_str_t *slot_key, ngx_http_openbank_cluster_script_t *script,
    ngx_uint_t nkeys, ngx_uint_t argc, ngx_str_t *argv,
    ngx_http_openbank_cluster_pt handler, void *data,
    ngx_http_openbank_cluster_req_t *req);
static ngx_int_t ngx_http_openbank_cluster_eval(
    ngx_http_openbank_redis_call_t *call);
static ngx_http_openbank_cluster_req_t *ngx_http_openbank_cluster_req(
    ngx_http_request_t *r, ngx_http_openbank_ctx_t *ctx);
static void ngx_http_openbank_cluster_taken(void *data, redisReply *reply);
static ngx_int_t ngx_http_openbank_cluster_decide(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_uint_t kind, ngx_uint_t table,
    ngx_str_t *key, uint64_t expire, ngx_uint_t found);
static void ngx_http_openbank_cluster_resume(
    ngx_http_openbank_cluster_req_t *req);
static ngx_uint_t ngx_http_openbank_cluster_connected(void);


static ngx_str_t  ngx_http_openbank_cluster_kinds[] = {
    ngx_string("rate"),
    ngx_string("quota"),
    ngx_string("nonce"),
    ngx_string("idempotency"),
    ngx_string("registry")
};


static ngx_str_t  ngx_http_openbank_cluster_tables[] = {
    [NGX_HTTP_OPENBANK_TABLE_NONCE] = ngx_string("nonce"),
    [NGX_HTTP_OPENBANK_TABLE_ASSERTION] = ngx_string("jti"),
    [NGX_HTTP_OPENBANK_TABLE_OUTBOX] = ngx_null_string
};


/* microseconds */
static ngx_uint_t  ngx_http_openbank_cluster_bounds[] = {
    500, 1000, 2000, 5000, 10000, 25000, 50000, 100000
};


/* per worker */
static ngx_http_openbank_cluster_conf_t     *ngx_http_openbank_cl;
static ngx_http_openbank_cluster_counters_t *ngx_http_openbank_counters;
static ngx_http_openbank_cluster_node_t     *ngx_http_openbank_nodes;
static ngx_uint_t                            ngx_http_openbank_n_nodes;
static u_char                               *ngx_http_openbank_slot_map;
static ngx_uint_t                            ngx_http_openbank_map_state;
static ngx_uint_t                            ngx_http_openbank_refreshing;
static ngx_event_t                           ngx_http_openbank_probe_ev;
static ngx_uint_t                            ngx_http_openbank_exiting;


/* the cluster's conf, made by whichever of its directives comes first */

static ngx_http_openbank_cluster_conf_t *
ngx_http_openbank_cluster_conf(ngx_conf_t *cf,
    ngx_http_openbank_main_conf_t *obmcf)
{
    ngx_http_openbank_cluster_conf_t  *cl;

    if (obmcf->cluster) {
        return obmcf->cluster;
    }

    cl = ngx_pcalloc(cf->pool, sizeof(ngx_http_openbank_cluster_conf_t));
    if (cl == NULL) {
        return NULL;
    }

    cl->degraded[NGX_HTTP_OPENBANK_CLUSTER_NONCE] =
                                             NGX_HTTP_OPENBANK_CLUSTER_REFUSE;
    cl->degraded[NGX_HTTP_OPENBANK_CLUSTER_IDEMPOTENCY] =
                                             NGX_HTTP_OPENBANK_CLUSTER_REFUSE;
    obmcf->cluster = cl;

    return cl;
}


/* openbank_cluster redis://IP:PORT ... [timeout=] [nodes=] [password=] */

char *
ngx_http_openbank_cluster_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_openbank_main_conf_t *obmcf = conf;

    ngx_str_t                         *value, s, file;
    ngx_int_t                          n;
    ngx_uint_t                         i;
    ngx_msec_t                         ms;
    ngx_http_openbank_cluster_conf_t  *cl;

    cl = ngx_http_openbank_cluster_conf(cf, obmcf);
    if (cl == NULL) {
        return NGX_CONF_ERROR;
    }

    if (cl->seeds.nelts) {
        return "is duplicate";
    }

    if (ngx_array_init(&cl->seeds, cf->pool, 4, sizeof(ngx_addr_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    cl->timeout = 50;
    cl->nodes = 1;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "redis://", 8) == 0) {
            if (ngx_http_openbank_cluster_seed(cf, cl, &value[i]) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            ms = ngx_parse_time(&s, 0);
            if (ms == (ngx_msec_t) NGX_ERROR || ms == 0 || ms > 60000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid timeout \"%V\": from 1ms to 60s",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            cl->timeout = ms;
            continue;
        }

        if (ngx_strncmp(value[i].data, "nodes=", 6) == 0) {
            n = ngx_atoi(value[i].data + 6, value[i].len - 6);
            if (n == NGX_ERROR || n < 1 || n > 1000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid nodes \"%V\": the number of "
                                   "gateways, from 1 to 1000", &value[i]);
                return NGX_CONF_ERROR;
            }

            cl->nodes = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "password=", 9) == 0) {
            file.data = value[i].data + 9;
            file.len = value[i].len - 9;

            if (file.len == 0
                || ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid password file \"%V\"",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            if (ngx_http_openbank_read_file(cf, &file, 512, &cl->password)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            /* one line: a final new line is not the password's */

            while (cl->password.len
                   && (cl->password.data[cl->password.len - 1] == '\n'
                       || cl->password.data[cl->password.len - 1] == '\r'))
            {
                cl->password.len--;
            }

            if (cl->password.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "the password file \"%V\" is empty",
                                   &file);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (cl->seeds.nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "openbank_cluster needs at least one "
                           "redis://IP:PORT");
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&s, "openbank_cluster");

    cl->shm_zone = ngx_shared_memory_add(cf, &s, 8 * ngx_pagesize,
                                         &ngx_http_openbank_module);
    if (cl->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    cl->shm_zone->init = ngx_http_openbank_cluster_init_zone;
    cl->shm_zone->data = cl;

    return NGX_CONF_OK;
}


/*
 * redis://IP:PORT (or [IPv6]:PORT), the port 6379 when none: a host name
 * is refused, since a name resolved once at load time would go stale
 * without anyone knowing, and a worker may not block to resolve one.
 */

static ngx_int_t
ngx_http_openbank_cluster_seed(ngx_conf_t *cf,
    ngx_http_openbank_cluster_conf_t *cl, ngx_str_t *url)
{
    u_char      *p, *last;
    ngx_int_t    rc;
    ngx_str_t    s;
    ngx_addr_t  *addr;

    s.data = url->data + 8;
    s.len = url->len - 8;

    last = s.data + s.len;

    if (s.len && last[-1] == '/') {
        s.len--;
        last--;
    }

    addr = ngx_array_push(&cl->seeds);
    if (addr == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_DECLINED;

    if (s.len) {
        rc = ngx_parse_addr_port(cf->pool, addr, s.data, s.len);
    }

    if (rc != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid Redis address \"%V\": an IP address "
                           "and a port, as redis://127.0.0.1:6379 (host "
                           "names are not resolved)", url);
        return NGX_ERROR;
    }

    if (ngx_inet_get_port(addr->sockaddr) == 0) {
        ngx_inet_set_port(addr->sockaddr, 6379);
    }

    p = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    addr->name.len = ngx_sock_ntop(addr->sockaddr, addr->socklen, p,
                                   NGX_SOCKADDR_STRLEN, 1);
    addr->name.data = p;

    return NGX_OK;
}


/* openbank_cluster_degraded [rate=] [quota=] [nonce=] [idempotency=] */

char *
ngx_http_openbank_cluster_degraded_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf)
{
    ngx_http_openbank_main_conf_t *obmcf = conf;

    u_char                            *eq;
    ngx_str_t                         *value, mode;
    ngx_uint_t                         i, k;
    ngx_http_openbank_cluster_conf_t  *cl;

    cl = ngx_http_openbank_cluster_conf(cf, obmcf);
    if (cl == NULL) {
        return NGX_CONF_ERROR;
    }

    if (cl->has_degraded) {
        return "is duplicate";
    }

    cl->has_degraded = 1;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        eq = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=');

        for (k = 0; eq && k < NGX_HTTP_OPENBANK_CLUSTER_KINDS; k++) {
            if ((size_t) (eq - value[i].data)
                    == ngx_http_openbank_cluster_kinds[k].len
                && ngx_strncmp(value[i].data,
                               ngx_http_openbank_cluster_kinds[k].data,
                               ngx_http_openbank_cluster_kinds[k].len)
                   == 0)
            {
                break;
            }
        }

        if (eq == NULL || k == NGX_HTTP_OPENBANK_CLUSTER_KINDS) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\": rate=, quota=, "
                               "nonce=, idempotency= or registry=",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        mode.data = eq + 1;
        mode.len = value[i].data + value[i].len - mode.data;

        if (mode.len == 5 && ngx_strncmp(mode.data, "local", 5) == 0) {
            cl->degraded[k] = NGX_HTTP_OPENBANK_CLUSTER_LOCAL;

        } else if (mode.len == 6 && ngx_strncmp(mode.data, "refuse", 6) == 0)
        {
            cl->degraded[k] = NGX_HTTP_OPENBANK_CLUSTER_REFUSE;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\": %V= is local or "
                               "refuse", &value[i],
                               &ngx_http_openbank_cluster_kinds[k]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* openbank_cluster_degraded alone changes nothing: no cluster */

char *
ngx_http_openbank_cluster_init_conf(ngx_conf_t *cf,
    ngx_http_openbank_main_conf_t *obmcf)
{
    if (obmcf->cluster == NULL) {
        return NGX_CONF_OK;
    }

    if (obmcf->cluster->seeds.nelts == 0) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "openbank_cluster_degraded without "
                           "openbank_cluster: ignored");
        obmcf->cluster = NULL;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_openbank_cluster_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t                       *shpool;
    ngx_http_openbank_cluster_counters_t  *counters;

    if (data) {
        /* a reload: the counters go on */
        shm_zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    counters = ngx_slab_calloc(shpool,
                               sizeof(ngx_http_openbank_cluster_counters_t));
    if (counters == NULL) {
        return NGX_ERROR;
    }

    shpool->data = counters;
    shm_zone->data = counters;

    return NGX_OK;
}


ngx_int_t
ngx_http_openbank_cluster_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                          i;
    ngx_addr_t                         *seed;
    ngx_http_openbank_main_conf_t      *obmcf;
    ngx_http_openbank_cluster_conf_t   *cl;

    obmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                                ngx_http_openbank_module);

    if (obmcf == NULL || obmcf->cluster == NULL) {
        return NGX_OK;
    }

    cl = obmcf->cluster;

    ngx_http_openbank_cl = cl;
    ngx_http_openbank_counters = cl->shm_zone->data;

    ngx_http_openbank_nodes = ngx_pcalloc(cycle->pool,
                                  NGX_HTTP_OPENBANK_CLUSTER_NODES
                                  * sizeof(ngx_http_openbank_cluster_node_t));
    ngx_http_openbank_slot_map = ngx_pnalloc(cycle->pool,
                                             NGX_HTTP_OPENBANK_REDIS_SLOTS);

    if (ngx_http_openbank_nodes == NULL || ngx_http_openbank_slot_map == NULL)
    {
        return NGX_ERROR;
    }

    ngx_memset(ngx_http_openbank_slot_map, NGX_HTTP_OPENBANK_CLUSTER_NONE,
               NGX_HTTP_OPENBANK_REDIS_SLOTS);

    seed = cl->seeds.elts;

    for (i = 0; i < cl->seeds.nelts; i++) {
        if (ngx_http_openbank_cluster_node(&seed[i].name) == NGX_ERROR
            && ngx_http_openbank_cluster_node_add(&seed[i]) == NGX_ERROR)
        {
            return NGX_ERROR;
        }
    }

    ngx_http_openbank_map_state = NGX_HTTP_OPENBANK_CLUSTER_UNKNOWN;

    ngx_http_openbank_probe_ev.handler = ngx_http_openbank_cluster_probe;
    ngx_http_openbank_probe_ev.data = &ngx_http_openbank_redis_no_connection;
    ngx_http_openbank_probe_ev.log = cycle->log;
    ngx_http_openbank_probe_ev.cancelable = 1;

    /* the slot map, as soon as the event loop runs */
    ngx_http_openbank_cluster_schedule(1);

    return NGX_OK;
}


void
ngx_http_openbank_cluster_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t  i;

    if (ngx_http_openbank_cl == NULL) {
        return;
    }

    if (ngx_http_openbank_probe_ev.timer_set) {
        ngx_del_timer(&ngx_http_openbank_probe_ev);
    }

    /* the process ends: no request is resumed from here */
    ngx_http_openbank_exiting = 1;

    for (i = 0; i < ngx_http_openbank_n_nodes; i++) {
        ngx_http_openbank_redis_close(&ngx_http_openbank_nodes[i].rd);

        if (ngx_http_openbank_nodes[i].rd.out) {
            ngx_free(ngx_http_openbank_nodes[i].rd.out);
            ngx_http_openbank_nodes[i].rd.out = NULL;
        }
    }

    ngx_http_openbank_cl = NULL;
}


/* the node of that "ip:port", NGX_ERROR when unknown */

static ngx_int_t
ngx_http_openbank_cluster_node(ngx_str_t *name)
{
    ngx_uint_t  i;

    for (i = 0; i < ngx_http_openbank_n_nodes; i++) {
        if (ngx_http_openbank_nodes[i].name.len == name->len
            && ngx_strncmp(ngx_http_openbank_nodes[i].name.data, name->data,
                           name->len)
               == 0)
        {
            return i;
        }
    }

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_openbank_cluster_node_add(ngx_addr_t *addr)
{
    u_char                            *p;
    ngx_http_openbank_cluster_node_t  *node;

    if (ngx_http_openbank_n_nodes == NGX_HTTP_OPENBANK_CLUSTER_NODES) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "openbank: more than %d Redis nodes, \"%V\" ignored",
                      NGX_HTTP_OPENBANK_CLUSTER_NODES, &addr->name);
        return NGX_ERROR;
    }

    node = &ngx_http_openbank_nodes[ngx_http_openbank_n_nodes];

    p = ngx_pnalloc(ngx_cycle->pool, addr->socklen + NGX_SOCKADDR_STRLEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, addr->sockaddr, addr->socklen);
    node->addr.sockaddr = (struct sockaddr *) p;
    node->addr.socklen = addr->socklen;

    p += addr->socklen;
    node->name.len = ngx_sock_ntop(node->addr.sockaddr, node->addr.socklen,
                                   p, NGX_SOCKADDR_STRLEN, 1);
    node->name.data = p;
    node->addr.name = node->name;

    ngx_http_openbank_cluster_share(node);

    node->rd.peer.sockaddr = node->addr.sockaddr;
    node->rd.peer.socklen = node->addr.socklen;
    node->rd.peer.name = &node->name;
    node->rd.name = node->name;
    node->rd.timeout = ngx_http_openbank_cl->timeout;
    node->rd.password = ngx_http_openbank_cl->password.len
                        ? &ngx_http_openbank_cl->password : NULL;
    node->rd.failed = ngx_http_openbank_cluster_failed;
    node->rd.data = node;
    node->rd.log = ngx_cycle->log;
    ngx_queue_init(&node->rd.calls);

    return ngx_http_openbank_n_nodes++;
}


/* the node's up or down, in the zone: found by its address, or added */

static void
ngx_http_openbank_cluster_share(ngx_http_openbank_cluster_node_t *node)
{
    ngx_uint_t                             i;
    ngx_http_openbank_cluster_shared_t    *sh;
    ngx_http_openbank_cluster_counters_t  *cs;

    cs = ngx_http_openbank_counters;
    node->down = &node->local_down;

    ngx_spinlock(&cs->lock, ngx_pid, 1024);

    for (i = 0; i < cs->n_nodes; i++) {
        sh = &cs->nodes[i];

        if (sh->len == node->name.len
            && ngx_strncmp(sh->name, node->name.data, sh->len) == 0)
        {
            node->down = &sh->down;
            break;
        }
    }

    if (i == cs->n_nodes && i < NGX_HTTP_OPENBANK_CLUSTER_NODES
        && node->name.len <= NGX_SOCKADDR_STRLEN)
    {
        sh = &cs->nodes[i];
        sh->len = node->name.len;
        ngx_memcpy(sh->name, node->name.data, sh->len);
        sh->down = 0;
        cs->n_nodes++;

        node->down = &sh->down;
    }

    ngx_unlock(&cs->lock);
}


/*
 * The call goes to the node of the slot (a seed while the map is not
 * known): NGX_OK, its handler hears; NGX_BUSY, the node is down, or
 * could not be written to, and nothing was sent.
 */

static ngx_int_t
ngx_http_openbank_cluster_send(ngx_uint_t slot,
    ngx_http_openbank_redis_call_t *call)
{
    ngx_uint_t                         i;
    ngx_http_openbank_cluster_node_t  *node;

    i = ngx_http_openbank_slot_map[slot];

    if (i == NGX_HTTP_OPENBANK_CLUSTER_NONE) {
        if (ngx_http_openbank_map_state == NGX_HTTP_OPENBANK_CLUSTER_KNOWN) {
            /* no master serves the slot */
            return NGX_BUSY;
        }

        for (i = 0; i < ngx_http_openbank_n_nodes; i++) {
            if (!*ngx_http_openbank_nodes[i].down) {
                break;
            }
        }

        if (i == ngx_http_openbank_n_nodes) {
            return NGX_BUSY;
        }
    }

    node = &ngx_http_openbank_nodes[i];

    if (*node->down || ngx_http_openbank_exiting) {

        /* down for this worker or another: this one probes it too */
        ngx_http_openbank_cluster_schedule(NGX_HTTP_OPENBANK_CLUSTER_PROBE);

        return NGX_BUSY;
    }

    if (ngx_http_openbank_redis_send(&node->rd, call) != NGX_OK) {
        ngx_http_openbank_cluster_failed(&node->rd);
        return NGX_BUSY;
    }

    return NGX_OK;
}


/*
 * A request's call answered: MOVED (the map learns the slot's master,
 * the call goes there, the whole map is read again) and ASK (ASKING,
 * then the call, on that node) are followed within the call's deadline;
 * anything else is the request's answer.
 */

static void
ngx_http_openbank_cluster_reply(ngx_http_openbank_redis_call_t *call,
    redisReply *reply)
{
    void                              *data;
    ngx_int_t                          i;
    ngx_str_t                          name;
    ngx_uint_t                         ask, slot;
    ngx_addr_t                         addr;
    ngx_http_openbank_cluster_pt       handler;
    ngx_http_openbank_cluster_req_t   *req;
    ngx_http_openbank_cluster_call_t  *cc;
    u_char                             buf[NGX_SOCKADDR_STRLEN];

    ngx_http_openbank_cluster_count(call, reply);

    cc = call->data;

    if (cc->sending) {
        /* failed before the send returned: the sender decides */
        ngx_http_openbank_redis_call_free(call);
        cc->failed = 1;
        return;
    }

    if (cc->handler != NULL
        && ngx_http_openbank_redis_redirect(reply, &ask, &slot, &name)
           == NGX_OK
        && call->redirects < NGX_HTTP_OPENBANK_CLUSTER_REDIRECTS)
    {
        i = ngx_http_openbank_cluster_node(&name);

        if (i == NGX_ERROR
            && ngx_parse_addr_port(ngx_cycle->pool, &addr, name.data,
                                   name.len)
               == NGX_OK)
        {
            addr.name.len = ngx_sock_ntop(addr.sockaddr, addr.socklen, buf,
                                          sizeof(buf), 1);
            addr.name.data = buf;

            i = ngx_http_openbank_cluster_node(&addr.name);

            if (i == NGX_ERROR) {
                i = ngx_http_openbank_cluster_node_add(&addr);
            }
        }

        if (i != NGX_ERROR && !*ngx_http_openbank_nodes[i].down) {
            ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                           "openbank redis %s %ui to %V",
                           ask ? "ASK" : "MOVED", slot,
                           &ngx_http_openbank_nodes[i].name);

            call->redirects++;
            call->asking = ask;

            if (!ask) {
                ngx_http_openbank_slot_map[slot] = (u_char) i;

                if (ngx_http_openbank_map_state
                    == NGX_HTTP_OPENBANK_CLUSTER_KNOWN)
                {
                    ngx_http_openbank_map_state =
                                              NGX_HTTP_OPENBANK_CLUSTER_STALE;
                }

                ngx_http_openbank_cluster_schedule(1);
            }

            if (ngx_http_openbank_redis_send(&ngx_http_openbank_nodes[i].rd,
                                             call)
                == NGX_OK)
            {
                return;
            }
        }

        reply = NULL;
    }

    /* a node that does not know the script yet: EVAL, once, on it */

    if (cc->handler != NULL
        && cc->script != NULL
        && !cc->evaled
        && reply != NULL
        && reply->type == REDIS_REPLY_ERROR
        && reply->len >= 8
        && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0)
    {
        cc->evaled = 1;

        if (ngx_http_openbank_cluster_eval(call) == NGX_OK) {
            return;
        }

        reply = NULL;
    }

    ngx_http_openbank_redis_call_free(call);

    handler = cc->handler;
    data = cc->data;
    req = cc->req;

    ngx_free(cc);

    if (handler == NULL) {
        /* the request ended while it waited */
        return;
    }

    if (req == NULL) {
        handler(data, reply);
        return;
    }

    req->cc = NULL;
    req->waiting = 0;

    if (ngx_http_openbank_exiting) {
        /* the process ends: no request is resumed from here */
        return;
    }

    handler(data, reply);

    ngx_http_openbank_cluster_resume(req);
}


/*
 * NOSCRIPT: the same call as EVAL with the source, its arguments read
 * back from the EVALSHA command (hiredis's own format, written here).
 */

static ngx_int_t
ngx_http_openbank_cluster_eval(ngx_http_openbank_redis_call_t *call)
{
    int                                len;
    char                              *cmd;
    u_char                            *p, *last;
    size_t                            *lens;
    ngx_int_t                          n, rc;
    ngx_uint_t                         argc, i;
    const char                       **argv;
    ngx_http_openbank_cluster_call_t  *cc;

    cc = call->data;

    p = (u_char *) call->cmd;
    last = p + call->len;

    if (*p != '*') {
        return NGX_ERROR;
    }

    for (p++, n = 0; p < last && *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (*p - '0');
    }

    if (n < 3 || n > 1024 || last - p < 2) {
        return NGX_ERROR;
    }

    p += 2;
    argc = n;

    argv = ngx_alloc(argc * (sizeof(char *) + sizeof(size_t)),
                     ngx_cycle->log);
    if (argv == NULL) {
        return NGX_ERROR;
    }

    lens = (size_t *) &argv[argc];

    for (i = 0; i < argc; i++) {
        if (p >= last || *p != '$') {
            goto failed;
        }

        for (p++, n = 0; p < last && *p >= '0' && *p <= '9'; p++) {
            n = n * 10 + (*p - '0');
        }

        if (last - p < n + 4) {
            goto failed;
        }

        argv[i] = (const char *) p + 2;
        lens[i] = n;
        p += 2 + n + 2;
    }

    argv[0] = "EVAL";
    lens[0] = 4;
    argv[1] = (const char *) cc->script->source.data;
    lens[1] = cc->script->source.len;

    len = redisFormatCommandArgv(&cmd, argc, argv, lens);

    ngx_free(argv);

    if (len < 0) {
        return NGX_ERROR;
    }

    redisFreeCommand(call->cmd);
    call->cmd = cmd;
    call->len = len;
    call->asking = 0;

    rc = ngx_http_openbank_cluster_send(cc->slot, call);

    return rc;

failed:

    ngx_free(argv);

    return NGX_ERROR;
}


/* where the request waited: the phases (a check), or a content handler */

static void
ngx_http_openbank_cluster_resume(ngx_http_openbank_cluster_req_t *req)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = req->r;
    c = r->connection;

    r->write_event_handler = req->write_event_handler;

    if (req->resume) {
        req->resume(r);

    } else {
        ngx_http_core_run_phases(r);
    }

    ngx_http_run_posted_requests(c);
}


/* the metrics of a call: its latency, or a call without an answer */

static void
ngx_http_openbank_cluster_count(ngx_http_openbank_redis_call_t *call,
    redisReply *reply)
{
    uint64_t                               now, us;
    ngx_uint_t                             k;
    struct timeval                         tv;
    ngx_http_openbank_cluster_counters_t  *cs;

    cs = ngx_http_openbank_counters;

    (void) ngx_atomic_fetch_add(&cs->calls, 1);

    if (reply == NULL) {
        (void) ngx_atomic_fetch_add(&cs->failures, 1);
        return;
    }

    ngx_gettimeofday(&tv);
    now = (uint64_t) tv.tv_sec * 1000000 + tv.tv_usec;

    us = now > call->start ? now - call->start : 0;

    for (k = 0; k < NGX_HTTP_OPENBANK_CLUSTER_BUCKETS; k++) {
        if (us <= ngx_http_openbank_cluster_bounds[k]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&cs->buckets[k], 1);
    (void) ngx_atomic_fetch_add(&cs->sum_us, (ngx_atomic_int_t) us);
}


/* a node failed a call: down until a probe answers */

static void
ngx_http_openbank_cluster_failed(ngx_http_openbank_redis_t *rd)
{
    ngx_http_openbank_cluster_node_t  *node;

    node = rd->data;

    if (ngx_atomic_cmp_set(node->down, 0, 1)) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "openbank: redis %V is down: calls to it fail at "
                      "once until it answers a PING", &node->name);
    }

    if (ngx_http_openbank_map_state == NGX_HTTP_OPENBANK_CLUSTER_KNOWN) {
        ngx_http_openbank_map_state = NGX_HTTP_OPENBANK_CLUSTER_STALE;
    }

    ngx_http_openbank_cluster_schedule(NGX_HTTP_OPENBANK_CLUSTER_PROBE);
}


static void
ngx_http_openbank_cluster_schedule(ngx_msec_t delay)
{
    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (!ngx_http_openbank_probe_ev.timer_set) {
        ngx_add_timer(&ngx_http_openbank_probe_ev, delay);
    }
}


/*
 * The probe: a PING to every node that is down (bounded by the timeout
 * as any call), the slot map read again while it is not known; again in
 * 100ms while either is so.
 */

static void
ngx_http_openbank_cluster_probe(ngx_event_t *ev)
{
    ngx_uint_t                         i, again;
    ngx_http_openbank_redis_call_t    *call;
    ngx_http_openbank_cluster_node_t  *node;

    static const char  *ping[] = { "PING" };
    static size_t       ping_len[] = { 4 };

    if (ngx_http_openbank_cl == NULL) {
        return;
    }

    again = 0;

    for (i = 0; i < ngx_http_openbank_n_nodes; i++) {
        node = &ngx_http_openbank_nodes[i];

        if (!*node->down) {
            continue;
        }

        again = 1;

        if (node->probing) {
            continue;
        }

        call = ngx_http_openbank_redis_call(1, ping, ping_len,
                                            ngx_http_openbank_cluster_pong,
                                            node,
                                            ngx_http_openbank_cl->timeout);
        if (call == NULL) {
            continue;
        }

        if (ngx_http_openbank_redis_send(&node->rd, call) != NGX_OK) {
            ngx_http_openbank_redis_call_free(call);
            continue;
        }

        node->probing = 1;
    }

    if (ngx_http_openbank_map_state != NGX_HTTP_OPENBANK_CLUSTER_KNOWN) {
        again = 1;
        ngx_http_openbank_cluster_refresh();
    }

    if (again) {
        ngx_http_openbank_cluster_schedule(NGX_HTTP_OPENBANK_CLUSTER_PROBE);
    }
}


static void
ngx_http_openbank_cluster_pong(ngx_http_openbank_redis_call_t *call,
    redisReply *reply)
{
    ngx_http_openbank_cluster_node_t  *node;

    node = call->data;
    node->probing = 0;

    if (ngx_http_openbank_redis_is(reply, "PONG")) {
        if (ngx_atomic_cmp_set(node->down, 1, 0)) {
            ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                          "openbank: redis %V answers again", &node->name);
        }

        if (ngx_http_openbank_map_state != NGX_HTTP_OPENBANK_CLUSTER_KNOWN) {
            ngx_http_openbank_cluster_refresh();
        }

    } else if (reply != NULL) {
        ngx_http_openbank_cluster_failed(&node->rd);
    }

    ngx_http_openbank_redis_call_free(call);
}


/* CLUSTER SLOTS, of the first node that is up */

static void
ngx_http_openbank_cluster_refresh(void)
{
    ngx_uint_t                         i;
    ngx_http_openbank_redis_call_t    *call;
    ngx_http_openbank_cluster_node_t  *node;

    static const char  *slots[] = { "CLUSTER", "SLOTS" };
    static size_t       slots_len[] = { 7, 5 };

    if (ngx_http_openbank_refreshing) {
        return;
    }

    for (i = 0; i < ngx_http_openbank_n_nodes; i++) {
        node = &ngx_http_openbank_nodes[i];

        if (*node->down) {
            continue;
        }

        call = ngx_http_openbank_redis_call(2, slots, slots_len,
                                            ngx_http_openbank_cluster_slots,
                                            node,
                                            ngx_http_openbank_cl->timeout);
        if (call == NULL) {
            return;
        }

        if (ngx_http_openbank_redis_send(&node->rd, call) == NGX_OK) {
            ngx_http_openbank_refreshing = 1;
            return;
        }

        ngx_http_openbank_redis_call_free(call);
        ngx_http_openbank_cluster_failed(&node->rd);
    }
}


static void
ngx_http_openbank_cluster_slots(ngx_http_openbank_redis_call_t *call,
    redisReply *reply)
{
    ngx_int_t                          n;
    ngx_uint_t                         i, s;
    ngx_addr_t                         addr;
    ngx_pool_t                        *pool;
    ngx_array_t                        ranges;
    ngx_http_openbank_redis_range_t   *range;
    ngx_http_openbank_cluster_node_t  *node;
    u_char                             buf[NGX_SOCKADDR_STRLEN];

    node = call->data;
    ngx_http_openbank_redis_call_free(call);
    ngx_http_openbank_refreshing = 0;

    if (reply == NULL) {
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {

        if (ngx_strlcasestrn((u_char *) reply->str,
                             (u_char *) reply->str + reply->len,
                             (u_char *) "cluster support disabled",
                             sizeof("cluster support disabled") - 2)
            == NULL)
        {
            /* a node that cannot tell yet (loading): asked again */
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "openbank: redis %V: CLUSTER SLOTS: \"%*s\"",
                          &node->name, ngx_min(reply->len, 200), reply->str);
            return;
        }

        /* a plain Redis: it serves them all */

        ngx_memset(ngx_http_openbank_slot_map,
                   (u_char) (node - ngx_http_openbank_nodes),
                   NGX_HTTP_OPENBANK_REDIS_SLOTS);
        goto known;
    }

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return;
    }

    if (ngx_array_init(&ranges, pool, 8,
                       sizeof(ngx_http_openbank_redis_range_t))
        != NGX_OK
        || ngx_http_openbank_redis_slots(reply, &node->name, pool, &ranges)
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "openbank: redis %V: CLUSTER SLOTS gave no slot map",
                      &node->name);
        ngx_destroy_pool(pool);
        return;
    }

    ngx_memset(ngx_http_openbank_slot_map, NGX_HTTP_OPENBANK_CLUSTER_NONE,
               NGX_HTTP_OPENBANK_REDIS_SLOTS);

    range = ranges.elts;

    for (i = 0; i < ranges.nelts; i++) {
        n = NGX_ERROR;

        if (ngx_parse_addr_port(pool, &addr, range[i].master.data,
                                range[i].master.len)
            == NGX_OK)
        {
            addr.name.len = ngx_sock_ntop(addr.sockaddr, addr.socklen, buf,
                                          sizeof(buf), 1);
            addr.name.data = buf;

            n = ngx_http_openbank_cluster_node(&addr.name);

            if (n == NGX_ERROR) {
                n = ngx_http_openbank_cluster_node_add(&addr);
            }
        }

        if (n == NGX_ERROR) {
            continue;
        }

        for (s = range[i].start; s <= range[i].end; s++) {
            ngx_http_openbank_slot_map[s] = (u_char) n;
        }
    }

    ngx_destroy_pool(pool);

known:

    for (i = 0; i < ngx_http_openbank_n_nodes; i++) {
        ngx_http_openbank_nodes[i].slots = 0;
    }

    for (s = 0; s < NGX_HTTP_OPENBANK_REDIS_SLOTS; s++) {
        if (ngx_http_openbank_slot_map[s] != NGX_HTTP_OPENBANK_CLUSTER_NONE) {
            ngx_http_openbank_nodes[ngx_http_openbank_slot_map[s]].slots++;
        }
    }

    ngx_http_openbank_map_state = NGX_HTTP_OPENBANK_CLUSTER_KNOWN;

    /* a slot no master serves, or a master down: read it again soon */

    if (!ngx_http_openbank_cluster_connected()) {
        ngx_http_openbank_map_state = NGX_HTTP_OPENBANK_CLUSTER_STALE;
        ngx_http_openbank_cluster_schedule(NGX_HTTP_OPENBANK_CLUSTER_PROBE);
    }
}


/* every slot served, by a node that is up */

static ngx_uint_t
ngx_http_openbank_cluster_connected(void)
{
    ngx_uint_t  s, i;

    if (ngx_http_openbank_map_state == NGX_HTTP_OPENBANK_CLUSTER_UNKNOWN) {
        return 0;
    }

    for (s = 0; s < NGX_HTTP_OPENBANK_REDIS_SLOTS; s++) {
        i = ngx_http_openbank_slot_map[s];

        if (i == NGX_HTTP_OPENBANK_CLUSTER_NONE
            || *ngx_http_openbank_nodes[i].down)
        {
            return 0;
        }
    }

    return 1;
}


/*
 * For a check: as ngx_http_openbank_cluster_take(), resumed by the
 * phases, and a refusal is the 503 state_unavailable problem, returned
 * as its HTTP status.
 */

ngx_int_t
ngx_http_openbank_cluster_add(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_uint_t kind, ngx_uint_t table,
    ngx_str_t *key, size_t partner_len, uint64_t expire)
{
    ngx_int_t  rc;

    rc = ngx_http_openbank_cluster_take(r, ctx, kind, table, key, partner_len,
                                        expire, NULL);

    if (rc != NGX_BUSY) {
        return rc;
    }

    return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
                                    "the cluster's shared state cannot be "
                                    "reached; try again");
}


ngx_uint_t
ngx_http_openbank_cluster_on(ngx_http_request_t *r)
{
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    return obmcf->cluster != NULL && ngx_http_openbank_cl != NULL;
}


ngx_uint_t
ngx_http_openbank_cluster_mode(ngx_http_request_t *r, ngx_uint_t kind)
{
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    if (obmcf->cluster == NULL) {
        return NGX_HTTP_OPENBANK_CLUSTER_LOCAL;
    }

    return obmcf->cluster->degraded[kind];
}


void
ngx_http_openbank_cluster_degraded_count(ngx_uint_t kind, ngx_uint_t mode)
{
    ngx_atomic_t  *count;

    if (ngx_http_openbank_counters == NULL
        || kind >= NGX_HTTP_OPENBANK_CLUSTER_KINDS || mode > 1)
    {
        return;
    }

    count = &ngx_http_openbank_counters->degraded[kind][mode];

    (void) ngx_atomic_fetch_add(count, 1);
}


void
ngx_http_openbank_cluster_idem_count(ngx_uint_t which, ngx_atomic_int_t n)
{
    if (ngx_http_openbank_counters == NULL
        || which > NGX_HTTP_OPENBANK_CLUSTER_IDEM_LOST)
    {
        return;
    }

    (void) ngx_atomic_fetch_add(&ngx_http_openbank_counters->idem[which], n);
}


ngx_uint_t
ngx_http_openbank_cluster_nodes(void)
{
    return ngx_http_openbank_cl ? ngx_http_openbank_cl->nodes : 1;
}


void
ngx_http_openbank_cluster_script_init(
    ngx_http_openbank_cluster_script_t *script)
{
    u_char  md[SHA_DIGEST_LENGTH];

    SHA1(script->source.data, script->source.len, md);
    ngx_hex_dump(script->sha1, md, SHA_DIGEST_LENGTH);
}


/*
 * The call, sent: NULL when it could not be (no node to ask, no
 * memory), and nothing will be heard of it.
 */

static ngx_http_openbank_cluster_call_t *
ngx_http_openbank_cluster_make(ngx_str_t *slot_key,
    ngx_http_openbank_cluster_script_t *script, ngx_uint_t nkeys,
    ngx_uint_t argc, ngx_str_t *argv, ngx_http_openbank_cluster_pt handler,
    void *data, ngx_http_openbank_cluster_req_t *req)
{
    u_char                            *p;
    size_t                            *len;
    size_t                             lens[NGX_HTTP_OPENBANK_CLUSTER_ARGS];
    ngx_int_t                          rc;
    ngx_uint_t                         i, n, slot;
    ngx_msec_t                         timeout;
    ngx_http_openbank_redis_call_t    *call;
    ngx_http_openbank_cluster_call_t  *cc;
    const char                       **av;
    const char                        *avs[NGX_HTTP_OPENBANK_CLUSTER_ARGS];
    u_char                             keys[NGX_INT_T_LEN];

    if (ngx_http_openbank_cl == NULL
        || (script != NULL && nkeys > argc)
        || (slot_key == NULL && argc < (script ? 1 : 2)))
    {
        return NULL;
    }

    /* a long call (a publication of many changes): its arrays allocated */

    av = avs;
    len = lens;

    if (argc + 3 > NGX_HTTP_OPENBANK_CLUSTER_ARGS) {
        av = ngx_alloc((argc + 3) * (sizeof(const char *) + sizeof(size_t)),
                       ngx_cycle->log);
        if (av == NULL) {
            return NULL;
        }

        len = (size_t *) (av + argc + 3);
    }

    if (slot_key == NULL) {
        slot_key = script ? &argv[0] : &argv[1];
    }

    slot = ngx_http_openbank_redis_slot(slot_key->data, slot_key->len);

    n = 0;

    if (script != NULL) {
        if (script->sha1[0] == '\0') {
            ngx_http_openbank_cluster_script_init(script);
        }

        av[0] = "EVALSHA";
        len[0] = 7;
        av[1] = (const char *) script->sha1;
        len[1] = 40;
        p = ngx_sprintf(keys, "%ui", nkeys);
        av[2] = (const char *) keys;
        len[2] = p - keys;
        n = 3;
    }

    for (i = 0; i < argc; i++) {
        av[n] = (const char *) argv[i].data;
        len[n++] = argv[i].len;
    }

    cc = ngx_calloc(sizeof(ngx_http_openbank_cluster_call_t), ngx_cycle->log);
    if (cc == NULL) {
        if (av != avs) {
            ngx_free(av);
        }

        return NULL;
    }

    cc->handler = handler;
    cc->data = data;
    cc->req = req;
    cc->script = script;
    cc->slot = slot;

    /* a worker that shuts down waits for Redis briefly, whatever timeout */

    timeout = ngx_http_openbank_cl->timeout;

    if (ngx_exiting && timeout > NGX_HTTP_OPENBANK_CLUSTER_EXIT_WAIT) {
        timeout = NGX_HTTP_OPENBANK_CLUSTER_EXIT_WAIT;
    }

    call = ngx_http_openbank_redis_call(n, av, len,
                                        ngx_http_openbank_cluster_reply, cc,
                                        timeout);

    /* the command is formatted: the arrays are done with */

    if (av != avs) {
        ngx_free(av);
    }
    if (call == NULL) {
        ngx_free(cc);
        return NULL;
    }

    cc->sending = 1;

    rc = ngx_http_openbank_cluster_send(slot, call);

    cc->sending = 0;

    if (rc != NGX_OK) {
        /* no node to ask: at once, without waiting */
        ngx_http_openbank_redis_call_free(call);
        ngx_free(cc);
        return NULL;
    }

    if (cc->failed) {
        /* the call was failed, and freed, before the send returned */
        ngx_free(cc);
        return NULL;
    }

    return cc;
}


ngx_int_t
ngx_http_openbank_cluster_call(ngx_str_t *slot_key,
    ngx_http_openbank_cluster_script_t *script, ngx_uint_t nkeys,
    ngx_uint_t argc, ngx_str_t *argv, ngx_http_openbank_cluster_pt handler,
    void *data)
{
    if (ngx_http_openbank_cluster_make(slot_key, script, nkeys, argc, argv,
                                       handler, data, NULL)
        == NULL)
    {
        return NGX_BUSY;
    }

    return NGX_OK;
}


/* the request's wait, made once */

static ngx_http_openbank_cluster_req_t *
ngx_http_openbank_cluster_req(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    ngx_pool_cleanup_t               *cln;
    ngx_http_openbank_cluster_req_t  *req;

    if (ctx->cluster != NULL) {
        return ctx->cluster;
    }

    req = ngx_pcalloc(r->pool, sizeof(ngx_http_openbank_cluster_req_t));
    if (req == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_openbank_cluster_cleanup;
    cln->data = req;

    req->r = r;
    ctx->cluster = req;

    return req;
}


ngx_int_t
ngx_http_openbank_cluster_request(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_event_handler_pt resume,
    ngx_str_t *slot_key, ngx_http_openbank_cluster_script_t *script,
    ngx_uint_t nkeys, ngx_uint_t argc, ngx_str_t *argv,
    ngx_http_openbank_cluster_pt handler, void *data)
{
    ngx_http_openbank_cluster_req_t   *req;
    ngx_http_openbank_cluster_call_t  *cc;

    if (!ngx_http_openbank_cluster_on(r)) {
        return NGX_DECLINED;
    }

    req = ngx_http_openbank_cluster_req(r, ctx);
    if (req == NULL) {
        return NGX_ERROR;
    }

    if (req->waiting) {
        return NGX_AGAIN;
    }

    cc = ngx_http_openbank_cluster_make(slot_key, script, nkeys, argc, argv,
                                        handler, data, req);
    if (cc == NULL) {
        return NGX_BUSY;
    }

    req->cc = cc;
    req->waiting = 1;
    req->resume = resume;

    /* nothing runs the request until the answer */
    req->write_event_handler = r->write_event_handler;
    r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_AGAIN;
}


/*
 * Insert if absent, cluster-wide (SET key 1 NX PX ttl) or in this
 * gateway's zone: NGX_OK when taken now, NGX_DECLINED when it was
 * there, STORE_FULL when the zone has no room; NGX_AGAIN while the
 * request waits for Redis: "resume" (NULL: the phases, where a check
 * runs again) is called when the answer is in, and calls this again,
 * which returns it; NGX_BUSY when Redis cannot answer and the kind's
 * degraded mode is "refuse" (ctx->retry_after is set).  "key" is the
 * zone's: PARTNER (partner_len bytes), a separator, then the item; the
 * Redis key is "ob:TABLE:{PARTNER}:ITEM".
 */

ngx_int_t
ngx_http_openbank_cluster_take(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_uint_t kind, ngx_uint_t table,
    ngx_str_t *key, size_t partner_len, uint64_t expire,
    ngx_http_event_handler_pt resume)
{
    u_char                            *p;
    uint64_t                           now;
    ngx_int_t                          rc;
    ngx_str_t                         *name, argv[6];
    ngx_http_openbank_cluster_req_t   *req;
    ngx_http_openbank_main_conf_t     *obmcf;
    u_char                             rkey[NGX_HTTP_OPENBANK_CLUSTER_KEY_MAX];
    u_char                             ttl[NGX_INT64_LEN];

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    if (!ngx_http_openbank_cluster_on(r)) {
        return ngx_http_openbank_store_add(obmcf->shm_zone->data, table, key,
                                           NULL, 0, expire);
    }

    req = ctx->cluster;

    if (req != NULL && req->waiting) {
        return NGX_AGAIN;
    }

    if (req != NULL && req->done) {
        req->done = 0;

        return ngx_http_openbank_cluster_decide(r, ctx, kind, table, key,
                                                expire, req->found);
    }

    name = &ngx_http_openbank_cluster_tables[table];

    if (name->len + key->len + 8 > sizeof(rkey) || partner_len >= key->len)
    {
        return ngx_http_openbank_cluster_decide(r, ctx, kind, table, key,
                                   expire, NGX_HTTP_OPENBANK_CLUSTER_FAILED);
    }

    p = ngx_sprintf(rkey, "ob:%V:{%*s}:%*s", name, partner_len, key->data,
                    key->len - partner_len - 1, key->data + partner_len + 1);

    now = ngx_http_openbank_now_ms();

    ngx_str_set(&argv[0], "SET");
    argv[1].data = rkey;
    argv[1].len = p - rkey;
    ngx_str_set(&argv[2], "1");
    ngx_str_set(&argv[3], "NX");
    ngx_str_set(&argv[4], "PX");
    argv[5].data = ttl;
    argv[5].len = ngx_sprintf(ttl, "%uL", expire > now ? expire - now : 1)
                  - ttl;

    req = ngx_http_openbank_cluster_req(r, ctx);
    if (req == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_openbank_cluster_request(r, ctx, resume, NULL, NULL, 0, 6,
                                           argv,
                                           ngx_http_openbank_cluster_taken,
                                           req);

    if (rc == NGX_BUSY) {
        return ngx_http_openbank_cluster_decide(r, ctx, kind, table, key,
                                   expire, NGX_HTTP_OPENBANK_CLUSTER_FAILED);
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return rc;
}


static void
ngx_http_openbank_cluster_taken(void *data, redisReply *reply)
{
    ngx_http_openbank_cluster_req_t  *req = data;

    req->done = 1;

    if (reply == NULL) {
        req->found = NGX_HTTP_OPENBANK_CLUSTER_FAILED;

    } else if (reply->type == REDIS_REPLY_NIL) {
        req->found = NGX_HTTP_OPENBANK_CLUSTER_PRESENT;

    } else if (ngx_http_openbank_redis_is(reply, "OK")) {
        req->found = NGX_HTTP_OPENBANK_CLUSTER_TAKEN;

    } else {
        if (reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, req->r->connection->log, 0,
                          "openbank: redis answered \"%*s\"",
                          ngx_min(reply->len, 200), reply->str);
        }

        req->found = NGX_HTTP_OPENBANK_CLUSTER_FAILED;
    }
}


/* the request ended while it waited: a late answer does not touch it */

static void
ngx_http_openbank_cluster_cleanup(void *data)
{
    ngx_http_openbank_cluster_req_t  *req = data;

    if (req->cc) {
        req->cc->handler = NULL;
        req->cc->req = NULL;
        req->cc = NULL;
    }
}


static ngx_int_t
ngx_http_openbank_cluster_decide(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_uint_t kind, ngx_uint_t table,
    ngx_str_t *key, uint64_t expire, ngx_uint_t found)
{
    ngx_uint_t                          mode;
    ngx_http_openbank_main_conf_t      *obmcf;

    switch (found) {

    case NGX_HTTP_OPENBANK_CLUSTER_TAKEN:
        return NGX_OK;

    case NGX_HTTP_OPENBANK_CLUSTER_PRESENT:
        return NGX_DECLINED;

    default:
        break;
    }

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    mode = obmcf->cluster->degraded[kind];

    ngx_http_openbank_cluster_degraded_count(kind, mode);

    if (mode == NGX_HTTP_OPENBANK_CLUSTER_LOCAL) {
        return ngx_http_openbank_store_add(obmcf->shm_zone->data, table, key,
                                           NULL, 0, expire);
    }

    ctx->retry_after = 1;

    return NGX_BUSY;
}


#define NGX_HTTP_OPENBANK_CLUSTER_NODE_JSON                                  \
    (sizeof("{\"address\":\"\",\"state\":\"down\",\"slots\":},") - 1       \
     + NGX_SOCKADDR_STRLEN + NGX_INT_T_LEN)


size_t
ngx_http_openbank_cluster_status_len(ngx_http_openbank_main_conf_t *obmcf)
{
    if (obmcf->cluster == NULL) {
        return 0;
    }

    return sizeof(",\"cluster\":{\"state\":\"disconnected\","
                  "\"idempotency_waiting\":,\"nodes\":[]}")
           + NGX_ATOMIC_T_LEN
           + NGX_HTTP_OPENBANK_CLUSTER_NODES
             * NGX_HTTP_OPENBANK_CLUSTER_NODE_JSON;
}


/* ,"cluster":{...}: this worker's view of the nodes */

u_char *
ngx_http_openbank_cluster_status(u_char *p,
    ngx_http_openbank_main_conf_t *obmcf)
{
    ngx_uint_t                         i, n;
    ngx_http_openbank_cluster_node_t  *node;

    if (obmcf->cluster == NULL || ngx_http_openbank_cl == NULL) {
        return p;
    }

    p = ngx_sprintf(p, ",\"cluster\":{\"state\":\"%s\",\"nodes\":[",
                    ngx_http_openbank_cluster_connected()
                    ? "connected" : "degraded");

    for (i = 0, n = 0; i < ngx_http_openbank_n_nodes; i++) {
        node = &ngx_http_openbank_nodes[i];

        p = ngx_sprintf(p, "%s{\"address\":\"%V\",\"state\":\"%s\","
                        "\"slots\":%ui}",
                        n++ ? "," : "", &node->name,
                        *node->down ? "down" : "up", node->slots);
    }

    /* the answers of idempotency keys that wait for Redis, every worker's */

    p = ngx_sprintf(p, "],\"idempotency_waiting\":%uA}",
                    ngx_http_openbank_counters
                    ? ngx_http_openbank_counters->idem[
                                        NGX_HTTP_OPENBANK_CLUSTER_IDEM_WAITING]
                    : 0);

    return p;
}


size_t
ngx_http_openbank_cluster_metrics_len(ngx_http_openbank_main_conf_t *obmcf)
{
    if (obmcf->cluster == NULL) {
        return 0;
    }

    return 3072 + (NGX_HTTP_OPENBANK_CLUSTER_BUCKETS + 2) * 80
           + NGX_HTTP_OPENBANK_CLUSTER_KINDS * 2 * 96;
}


u_char *
ngx_http_openbank_cluster_metrics(u_char *p,
    ngx_http_openbank_main_conf_t *obmcf)
{
    uint64_t                               cumulative, sum;
    ngx_uint_t                             k;
    ngx_http_openbank_cluster_counters_t  *cs;

    if (obmcf->cluster == NULL || ngx_http_openbank_counters == NULL) {
        return p;
    }

    cs = ngx_http_openbank_counters;

    p = ngx_sprintf(p, "# HELP openbank_redis_calls_total Calls to Redis, "
                    "answered or not.\n"
                    "# TYPE openbank_redis_calls_total counter\n"
                    "openbank_redis_calls_total %uA\n"
                    "# HELP openbank_redis_failures_total Calls to Redis "
                    "without an answer (a deadline, a connection lost).\n"
                    "# TYPE openbank_redis_failures_total counter\n"
                    "openbank_redis_failures_total %uA\n"
                    "# HELP openbank_redis_duration_seconds Time from a "
                    "call's write to its answer.\n"
                    "# TYPE openbank_redis_duration_seconds histogram\n",
                    cs->calls, cs->failures);

    cumulative = 0;

    for (k = 0; k < NGX_HTTP_OPENBANK_CLUSTER_BUCKETS; k++) {
        cumulative += cs->buckets[k];

        p = ngx_sprintf(p, "openbank_redis_duration_seconds_bucket"
                        "{le=\"%ui.%06ui\"} %uL\n",
                        ngx_http_openbank_cluster_bounds[k] / 1000000,
                        ngx_http_openbank_cluster_bounds[k] % 1000000,
                        cumulative);
    }

    cumulative += cs->buckets[NGX_HTTP_OPENBANK_CLUSTER_BUCKETS];
    sum = cs->sum_us;

    p = ngx_sprintf(p, "openbank_redis_duration_seconds_bucket"
                    "{le=\"+Inf\"} %uL\n"
                    "openbank_redis_duration_seconds_sum %uL.%06uL\n"
                    "openbank_redis_duration_seconds_count %uL\n"
                    "# HELP openbank_cluster_degraded_total Decisions "
                    "taken without Redis, by kind of state and mode.\n"
                    "# TYPE openbank_cluster_degraded_total counter\n",
                    cumulative, sum / 1000000, sum % 1000000, cumulative);

    for (k = 0; k < NGX_HTTP_OPENBANK_CLUSTER_KINDS; k++) {
        p = ngx_sprintf(p, "openbank_cluster_degraded_total"
                        "{kind=\"%V\",decision=\"local\"} %uA\n"
                        "openbank_cluster_degraded_total"
                        "{kind=\"%V\",decision=\"refuse\"} %uA\n",
                        &ngx_http_openbank_cluster_kinds[k],
                        cs->degraded[k][NGX_HTTP_OPENBANK_CLUSTER_LOCAL],
                        &ngx_http_openbank_cluster_kinds[k],
                        cs->degraded[k][NGX_HTTP_OPENBANK_CLUSTER_REFUSE]);
    }

    p = ngx_sprintf(p, "# HELP openbank_cluster_idempotency_waiting Answers "
                    "of idempotency keys kept by this gateway, tried again "
                    "until Redis takes them.\n"
                    "# TYPE openbank_cluster_idempotency_waiting gauge\n"
                    "openbank_cluster_idempotency_waiting %uA\n"
                    "# HELP openbank_cluster_idempotency_stores_total "
                    "Answers of idempotency keys that Redis did not take at "
                    "once: taken on a retry, or given up (kept by this "
                    "gateway only).\n"
                    "# TYPE openbank_cluster_idempotency_stores_total "
                    "counter\n"
                    "openbank_cluster_idempotency_stores_total"
                    "{outcome=\"retried\"} %uA\n"
                    "openbank_cluster_idempotency_stores_total"
                    "{outcome=\"lost\"} %uA\n",
                    cs->idem[NGX_HTTP_OPENBANK_CLUSTER_IDEM_WAITING],
                    cs->idem[NGX_HTTP_OPENBANK_CLUSTER_IDEM_RETRIED],
                    cs->idem[NGX_HTTP_OPENBANK_CLUSTER_IDEM_LOST]);

    return p;
}
