
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Webhook deliveries (docs/webhooks.md, "Delivery"), from each worker's
 * own event loop: a timer claims the deliveries that are due from the
 * OUTBOX table (a lease: their time moved past the timeout, so that a
 * worker that dies leaves them to another), and each is one outbound
 * connection of nginx's event loop (ngx_event_connect_peer(), TLS with
 * ngx_ssl), never waited for by any request.  The host is resolved
 * again by a thread of the pool at every attempt, every address checked
 * (no loopback, private, link-local, multicast, reserved, nor the
 * gateway's own listening addresses, unless openbank_webhook_allow names
 * the host), and the connection goes to the address that was checked:
 * a name that changes its answer between the check and the connect
 * cannot move the connection.
 *
 * A delivery is signed twice: the Standard Webhooks headers (HMAC-SHA256
 * with the endpoint's secret) and an RFC 9421 signature by the gateway's
 * first openbank_signing_key.  Its outcome (an attempt kept on the
 * event; the delivery done, given up or scheduled again with jitter; the
 * endpoint's failing time, disabled after openbank_webhook_disable_after)
 * is one change of the events journal.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_events.h>
#include <ngx_http_openbank_httpsig.h>
#include <ngx_http_openbank_jwt.h>
#include <ngx_http_openbank_registry.h>
#include <ngx_http_openbank_util.h>

#include <netdb.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>


#define NGX_HTTP_OPENBANK_SEND_TICK      250     /* ms between claims */
#define NGX_HTTP_OPENBANK_SEND_MAX       256     /* a worker's in flight */
#define NGX_HTTP_OPENBANK_SEND_CLAIM     64      /* claimed at a time */
#define NGX_HTTP_OPENBANK_SEND_LEASE     30000   /* ms past the timeout */
#define NGX_HTTP_OPENBANK_SEND_RESPONSE  4096
#define NGX_HTTP_OPENBANK_SEND_IDLE      30000   /* ms a connection idles */
#define NGX_HTTP_OPENBANK_SEND_IDLE_MAX  64      /* a worker's idle ones */
#define NGX_HTTP_OPENBANK_SEND_REUSES    1000    /* requests a connection */
#define NGX_HTTP_OPENBANK_SEND_AGE       60      /* s a connection is used */
#define NGX_HTTP_OPENBANK_SEND_EVENT_MAX                                      \
    (sizeof(ngx_http_openbank_event_v_t) + NGX_HTTP_OPENBANK_EVENT_BODY_MAX  \
     + 1024 + NGX_HTTP_OPENBANK_ATTEMPTS_MAX                                 \
              * sizeof(ngx_http_openbank_attempt_v_t))


typedef struct ngx_http_openbank_send_s  ngx_http_openbank_send_t;


/*
 * A connection to a receiver, in its own pool: kept between deliveries
 * of one endpoint to one host, port and scheme, to the address it was
 * connected to (checked then).
 */

typedef struct {
    ngx_queue_t                   queue;       /* idle */
    ngx_connection_t             *connection;
    uint64_t                      endpoint;
    ngx_str_t                     host;
    in_port_t                     port;
    unsigned                      https:1;
    time_t                        born;
    ngx_uint_t                    requests;
    socklen_t                     socklen;
    ngx_sockaddr_t                sockaddr;
} ngx_http_openbank_keep_t;


/* a host being resolved by a thread */

typedef struct {
    char                         *host;
    in_port_t                     port;
    ngx_uint_t                    allowed;
    struct addrinfo              *res;
    int                           gai;
    void                        (*done)(void *data, ngx_int_t rc,
                                      ngx_addr_t *addr, const char *err);
    void                         *data;        /* NULL: it went away */
    ngx_pool_t                   *pool;
    ngx_pool_cleanup_t           *cln;
} ngx_http_openbank_resolve_t;


/* one delivery attempt */

struct ngx_http_openbank_send_s {
    ngx_pool_t                   *pool;
    ngx_log_t                    *log;
    uint64_t                      seq;
    uint64_t                      endpoint;
    uint32_t                      attempts;    /* before this one */
    uint64_t                      start;       /* unix ms */
    ngx_http_openbank_url_t       url;
    ngx_str_t                     request;
    size_t                        sent;
    u_char                        response[NGX_HTTP_OPENBANK_SEND_RESPONSE];
    ngx_http_openbank_answer_t    answer;
    const char                   *error;
    ngx_addr_t                    addr;        /* connected to */
    ngx_http_openbank_keep_t     *keep;
    ngx_peer_connection_t         pc;
    ngx_event_t                   timer;
    unsigned                      resolving:1;
    unsigned                      finished:1;
    unsigned                      ssl:1;
    unsigned                      reused:1;    /* a kept connection */
    unsigned                      answered:1;  /* a byte of the answer */
    unsigned                      keepalive:1; /* the answer read whole */
};


/* a claim of the due deliveries */

typedef struct {
    uint64_t                      seq;
    uint64_t                      endpoint;
    uint32_t                      attempts;
    uint32_t                      forced;
} ngx_http_openbank_claim_t;


typedef struct {
    ngx_http_openbank_claim_t    *claimed;
    ngx_uint_t                    n;
    uint64_t                      lease;       /* ms */
    ngx_uint_t                    room;
    ngx_uint_t                    concurrency;
    ngx_uint_t                    want;        /* 0: the whole outbox */
} ngx_http_openbank_claims_t;


/* deliveries in flight in this worker, per endpoint */

typedef struct {
    uint64_t                      endpoint;
    ngx_uint_t                    n;
} ngx_http_openbank_inflight_t;


/* an attempt's outcome, under one lock */

typedef struct {
    ngx_http_openbank_send_t     *s;
    ngx_array_t                  *ops;
    ngx_uint_t                    delivered;
    ngx_uint_t                    disabled;
    ngx_uint_t                    gave_up;
} ngx_http_openbank_outcome_t;


static void ngx_http_openbank_send_tick(ngx_event_t *ev);
static ngx_int_t ngx_http_openbank_send_claim(ngx_http_openbank_zone_t *zone,
    void *data);
static ngx_int_t ngx_http_openbank_send_claim_one(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_http_openbank_inflight_t *ngx_http_openbank_send_inflight(
    uint64_t endpoint, ngx_uint_t add);
static void ngx_http_openbank_send_start(ngx_http_openbank_claim_t *cl);
static ngx_int_t ngx_http_openbank_send_build(ngx_http_openbank_send_t *s,
    ngx_http_openbank_claim_t *cl);
static void ngx_http_openbank_send_resolved(void *data, ngx_int_t rc,
    ngx_addr_t *addr, const char *err);
static void ngx_http_openbank_send_connect(ngx_http_openbank_send_t *s,
    ngx_addr_t *addr);
static void ngx_http_openbank_send_handshake(ngx_connection_t *c);
static void ngx_http_openbank_send_write(ngx_event_t *wev);
static void ngx_http_openbank_send_read(ngx_event_t *rev);
static void ngx_http_openbank_send_idle(ngx_event_t *ev);
static void ngx_http_openbank_send_attach(ngx_http_openbank_send_t *s,
    ngx_connection_t *c);
static void ngx_http_openbank_send_retry(ngx_http_openbank_send_t *s);
static ngx_int_t ngx_http_openbank_send_literal(ngx_http_openbank_send_t *s,
    ngx_uint_t allowed);
static ngx_http_openbank_keep_t *ngx_http_openbank_keep_get(
    ngx_http_openbank_send_t *s);
static void ngx_http_openbank_keep_put(ngx_http_openbank_send_t *s);
static void ngx_http_openbank_keep_read(ngx_event_t *rev);
static void ngx_http_openbank_keep_close(ngx_connection_t *c);
static ngx_int_t ngx_http_openbank_send_test_connect(ngx_connection_t *c);
static ngx_int_t ngx_http_openbank_send_outcome_atomic(
    ngx_http_openbank_zone_t *zone, void *data);
static void ngx_http_openbank_send_timeout(ngx_event_t *ev);
static void ngx_http_openbank_send_finish(ngx_http_openbank_send_t *s,
    const char *error);
static ngx_int_t ngx_http_openbank_send_outcome(
    ngx_http_openbank_zone_t *zone, void *data);
static void ngx_http_openbank_send_free(ngx_http_openbank_send_t *s);
static void ngx_http_openbank_send_want(void);
static void ngx_http_openbank_resolve_thread(void *data, ngx_log_t *log);
static void ngx_http_openbank_resolve_done(ngx_event_t *ev);
static void ngx_http_openbank_resolve_gone(void *data);
static ngx_int_t ngx_http_openbank_send_own(struct sockaddr *sa);
static const char *ngx_http_openbank_send_refused(struct sockaddr *sa,
    socklen_t socklen);


static ngx_str_t     ngx_http_openbank_send_pool = ngx_string("default");
static ngx_event_t   ngx_http_openbank_send_ev;
static ngx_array_t  *ngx_http_openbank_send_flight;
static ngx_uint_t    ngx_http_openbank_send_n;
static ngx_uint_t    ngx_http_openbank_send_wanted;
static ngx_queue_t   ngx_http_openbank_send_kept;

/*
 * Records are copied out of the zone into this, then only their own
 * length into a delivery's pool: no allocation of the largest size an
 * event may have at every delivery (the event loop's, one at a time).
 */
static u_char        ngx_http_openbank_send_scratch[
                         NGX_HTTP_OPENBANK_SEND_EVENT_MAX];
static ngx_uint_t    ngx_http_openbank_send_kept_n;


/* a client TLS context, verifying the peer */

ngx_int_t
ngx_http_openbank_webhook_ssl(ngx_conf_t *cf,
    ngx_http_openbank_events_conf_t *ecf)
{
    ngx_ssl_t           *ssl;
    ngx_pool_cleanup_t  *cln;

    ssl = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
    if (ssl == NULL) {
        return NGX_ERROR;
    }

    ssl->log = cf->log;

    if (ngx_ssl_create(ssl, NGX_SSL_TLSv1_2|NGX_SSL_TLSv1_3, NULL)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(ssl);
        return NGX_ERROR;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = ssl;

    if (ecf->trusted.len) {
        if (ngx_ssl_trusted_certificate(cf, ssl, &ecf->trusted, 8)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else if (SSL_CTX_set_default_verify_paths(ssl->ctx) != 1) {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                      "SSL_CTX_set_default_verify_paths() failed");
        return NGX_ERROR;
    }

    ecf->ssl = ssl;

    return NGX_OK;
}


/* the host named in openbank_webhook_allow, or NULL */

ngx_http_openbank_webhook_allow_t *
ngx_http_openbank_webhook_allowed(ngx_http_openbank_events_conf_t *ecf,
    ngx_http_openbank_url_t *u)
{
    ngx_uint_t                          i;
    ngx_http_openbank_webhook_allow_t  *a;

    if (ecf->allow == NULL) {
        return NULL;
    }

    a = ecf->allow->elts;

    for (i = 0; i < ecf->allow->nelts; i++) {
        if (a[i].host.len == u->host.len
            && ngx_strncasecmp(a[i].host.data, u->host.data, u->host.len)
               == 0
            && (a[i].http || u->https))
        {
            return &a[i];
        }
    }

    return NULL;
}


/*
 * Whether an address may be sent to: NGX_OK, or NGX_DECLINED for
 * loopback, "this network", private (RFC 1918, RFC 4193), shared
 * (RFC 6598), link-local, multicast, reserved, documentation and
 * benchmarking ranges, and IPv4 inside IPv6 (mapped, compatible, NAT64)
 * by the IPv4 rules.
 */

ngx_int_t
ngx_http_openbank_webhook_address_allowed(struct sockaddr *sa)
{
    u_char               *p;
    uint32_t              a;
    struct sockaddr_in6  *sin6;

    if (sa->sa_family == AF_INET) {
        a = ntohl(((struct sockaddr_in *) sa)->sin_addr.s_addr);
        goto ipv4;
    }

    if (sa->sa_family != AF_INET6) {
        return NGX_DECLINED;
    }

    sin6 = (struct sockaddr_in6 *) sa;
    p = sin6->sin6_addr.s6_addr;

    if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)
        || IN6_IS_ADDR_V4COMPAT(&sin6->sin6_addr)
        || (p[0] == 0x00 && p[1] == 0x64 && p[2] == 0xff && p[3] == 0x9b))
    {
        a = ((uint32_t) p[12] << 24) | ((uint32_t) p[13] << 16)
            | ((uint32_t) p[14] << 8) | p[15];
        goto ipv4;
    }

    if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr)
        || IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)
        || (p[0] & 0xfe) == 0xfc                    /* fc00::/7 */
        || (p[0] == 0xfe && (p[1] & 0xc0) == 0x80)  /* fe80::/10 */
        || (p[0] == 0xfe && (p[1] & 0xc0) == 0xc0)  /* fec0::/10 */
        || p[0] == 0xff                             /* multicast */
        || (p[0] == 0x20 && p[1] == 0x01 && p[2] == 0x0d && p[3] == 0xb8)
        || (p[0] == 0x01 && p[1] == 0x00 && p[2] == 0 && p[3] == 0))
    {
        return NGX_DECLINED;
    }

    return ngx_http_openbank_send_own(sa);

ipv4:

    if ((a >> 24) == 0                          /* 0.0.0.0/8 */
        || (a >> 24) == 10                      /* 10.0.0.0/8 */
        || (a >> 22) == (100 << 2 | 1)          /* 100.64.0.0/10 */
        || (a >> 24) == 127                     /* 127.0.0.0/8 */
        || (a >> 16) == (169 << 8 | 254)        /* 169.254.0.0/16 */
        || (a >> 20) == (172 << 4 | 1)          /* 172.16.0.0/12 */
        || (a >> 8) == (192u << 16)             /* 192.0.0.0/24 */
        || (a >> 8) == (192u << 16 | 2)         /* 192.0.2.0/24 */
        || (a >> 16) == (192u << 8 | 168)       /* 192.168.0.0/16 */
        || (a >> 17) == (198u << 7 | 9)         /* 198.18.0.0/15 */
        || (a >> 8) == (198u << 16 | 51 << 8 | 100) /* 198.51.100.0/24 */
        || (a >> 8) == (203u << 16 | 0 << 8 | 113)  /* 203.0.113.0/24 */
        || (a >> 28) >= 14)                     /* multicast, reserved */
    {
        return NGX_DECLINED;
    }

    return ngx_http_openbank_send_own(sa);
}


/* one of the addresses the gateway itself listens on */

static ngx_int_t
ngx_http_openbank_send_own(struct sockaddr *sa)
{
    ngx_uint_t        i;
    ngx_listening_t  *ls;

    ls = ngx_cycle->listening.elts;

    for (i = 0; i < ngx_cycle->listening.nelts; i++) {
        if (ls[i].sockaddr->sa_family == sa->sa_family
            && ngx_cmp_sockaddr(ls[i].sockaddr, ls[i].socklen, sa,
                                sa->sa_family == AF_INET
                                ? sizeof(struct sockaddr_in)
                                : sizeof(struct sockaddr_in6), 0)
               == NGX_OK)
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/*
 * Resolves the host by a thread of the pool (getaddrinfo(): the
 * system's resolver and /etc/hosts) and checks every address it has;
 * "done" gets the first, port set, in "pool".  "data" going away with
 * the pool is seen to.
 */

ngx_int_t
ngx_http_openbank_webhook_resolve(ngx_pool_t *pool, ngx_str_t *host,
    in_port_t port, ngx_uint_t allowed, void (*done)(void *data,
    ngx_int_t rc, ngx_addr_t *addr, const char *err), void *data)
{
    ngx_thread_pool_t            *tp;
    ngx_thread_task_t            *task;
    ngx_http_openbank_resolve_t  *rs;

    tp = ngx_thread_pool_get((ngx_cycle_t *) ngx_cycle,
                             &ngx_http_openbank_send_pool);
    if (tp == NULL) {
        return NGX_ERROR;
    }

    task = ngx_calloc(sizeof(ngx_thread_task_t)
                      + sizeof(ngx_http_openbank_resolve_t) + host->len + 1,
                      ngx_cycle->log);
    if (task == NULL) {
        return NGX_ERROR;
    }

    rs = (ngx_http_openbank_resolve_t *) (task + 1);
    rs->host = (char *) (rs + 1);
    ngx_memcpy(rs->host, host->data, host->len);
    rs->port = port;
    rs->allowed = allowed;
    rs->done = done;
    rs->data = data;
    rs->pool = pool;

    rs->cln = ngx_pool_cleanup_add(pool, 0);
    if (rs->cln == NULL) {
        ngx_free(task);
        return NGX_ERROR;
    }

    rs->cln->handler = ngx_http_openbank_resolve_gone;
    rs->cln->data = rs;

    task->ctx = rs;
    task->handler = ngx_http_openbank_resolve_thread;
    task->event.handler = ngx_http_openbank_resolve_done;
    task->event.data = task;
    task->event.log = ngx_cycle->log;

    if (ngx_thread_task_post(tp, task) != NGX_OK) {
        rs->cln->handler = NULL;
        ngx_free(task);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_openbank_resolve_thread(void *data, ngx_log_t *log)
{
    ngx_http_openbank_resolve_t *rs = data;

    struct addrinfo  hints;

    ngx_memzero(&hints, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;

    rs->gai = getaddrinfo(rs->host, NULL, &hints, &rs->res);
}


/* why an address is not sent to, as the attempt's error */

static const char *
ngx_http_openbank_send_refused(struct sockaddr *sa, socklen_t socklen)
{
    size_t         len;
    static u_char  buf[NGX_SOCKADDR_STRLEN + 128];

    len = ngx_sock_ntop(sa, socklen, buf, NGX_SOCKADDR_STRLEN, 0);
    buf[len] = '\0';

    ngx_memmove(buf + 64, buf, len + 1);
    ngx_snprintf(buf, 64 + len + 1,
                 "resolves to %s, an address webhooks are not sent to%Z",
                 buf + 64);

    return (const char *) buf;
}


static void
ngx_http_openbank_resolve_done(ngx_event_t *ev)
{
    ngx_thread_task_t *task = ev->data;

    ngx_int_t                     rc;
    const char                   *err;
    ngx_addr_t                   *addr;
    struct addrinfo              *ai;
    ngx_http_openbank_resolve_t  *rs;

    rs = task->ctx;
    addr = NULL;
    err = NULL;
    rc = NGX_DECLINED;

    if (rs->data == NULL) {
        goto done;
    }

    rs->cln->handler = NULL;

    if (rs->gai != 0 || rs->res == NULL) {
        err = "does not resolve";
        goto answer;
    }

    for (ai = rs->res; ai; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) {
            continue;
        }

        if (!rs->allowed
            && ngx_http_openbank_webhook_address_allowed(ai->ai_addr)
               != NGX_OK)
        {
            err = ngx_http_openbank_send_refused(ai->ai_addr, ai->ai_addrlen);
            addr = NULL;
            goto answer;
        }

        if (addr == NULL) {
            addr = ngx_pcalloc(rs->pool, sizeof(ngx_addr_t));
            if (addr == NULL) {
                err = "cannot be resolved (no memory)";
                goto answer;
            }

            addr->sockaddr = ngx_palloc(rs->pool, ai->ai_addrlen);
            if (addr->sockaddr == NULL) {
                err = "cannot be resolved (no memory)";
                addr = NULL;
                goto answer;
            }

            ngx_memcpy(addr->sockaddr, ai->ai_addr, ai->ai_addrlen);
            addr->socklen = ai->ai_addrlen;
            ngx_inet_set_port(addr->sockaddr, rs->port);
        }
    }

    if (addr == NULL) {
        err = "has no IPv4 or IPv6 address";

    } else {
        rc = NGX_OK;
    }

answer:

    rs->done(rs->data, rc, addr, err);

done:

    if (rs->res) {
        freeaddrinfo(rs->res);
    }

    ngx_free(task);
}


static void
ngx_http_openbank_resolve_gone(void *data)
{
    ngx_http_openbank_resolve_t *rs = data;

    rs->data = NULL;
}


/* in each worker: the timer that claims the deliveries due */

ngx_int_t
ngx_http_openbank_webhook_send_init(ngx_cycle_t *cycle)
{
    ngx_http_openbank_main_conf_t  *obmcf;

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_core_module)
        == NULL)
    {
        return NGX_OK;
    }

    obmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                                ngx_http_openbank_module);

    if (obmcf == NULL || !obmcf->events
        || ngx_process != NGX_PROCESS_WORKER)
    {
        return NGX_OK;
    }

    ngx_http_openbank_send_flight = ngx_array_create(cycle->pool, 16,
                                        sizeof(ngx_http_openbank_inflight_t));
    if (ngx_http_openbank_send_flight == NULL) {
        return NGX_ERROR;
    }

    ngx_queue_init(&ngx_http_openbank_send_kept);

    ngx_http_openbank_send_ev.handler = ngx_http_openbank_send_tick;
    ngx_http_openbank_send_ev.log = cycle->log;
    ngx_http_openbank_send_ev.data = cycle;
    ngx_http_openbank_send_ev.cancelable = 1;

    ngx_add_timer(&ngx_http_openbank_send_ev, NGX_HTTP_OPENBANK_SEND_TICK);

    return NGX_OK;
}


/*
 * The claims: at the tick, the whole outbox is walked, every endpoint's
 * due deliveries taken up to its concurrency; posted when deliveries
 * ended or were made due here, only as many are taken, the walk stopping
 * there (the newest records are at the head of the table's queue), so
 * that a backlog of an endpoint at its concurrency is not walked through
 * at every delivery that ends (the other endpoints' deliveries are taken
 * by the next tick's walk at the latest).
 */

static void
ngx_http_openbank_send_tick(ngx_event_t *ev)
{
    ngx_uint_t                        i;
    ngx_http_openbank_claims_t        cs;
    ngx_http_openbank_events_conf_t  *ecf;
    ngx_http_openbank_main_conf_t    *obmcf;
    static ngx_http_openbank_claim_t  claims[NGX_HTTP_OPENBANK_SEND_CLAIM];

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    obmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                ngx_http_openbank_module);
    ecf = obmcf->events_conf;

    cs.claimed = claims;
    cs.n = 0;
    cs.lease = ecf->timeout + NGX_HTTP_OPENBANK_SEND_LEASE;
    cs.room = ngx_min(NGX_HTTP_OPENBANK_SEND_MAX - ngx_http_openbank_send_n,
                      NGX_HTTP_OPENBANK_SEND_CLAIM);
    cs.concurrency = ecf->concurrency;
    cs.want = ev->timer_set ? ngx_http_openbank_send_wanted : 0;

    ngx_http_openbank_send_wanted = 0;
    ev->timedout = 0;

    if (cs.room) {
        /* NGX_DONE when the walk stopped early: what it claimed is sent */

        (void) ngx_http_openbank_store_atomic(obmcf->shm_zone->data,
                                              ngx_http_openbank_send_claim,
                                              &cs);

        for (i = 0; i < cs.n; i++) {
            ngx_http_openbank_send_start(&claims[i]);
        }
    }

    if (!ev->timer_set) {
        ngx_add_timer(ev, NGX_HTTP_OPENBANK_SEND_TICK);
    }
}


static ngx_int_t
ngx_http_openbank_send_claim(ngx_http_openbank_zone_t *zone, void *data)
{
    return ngx_http_openbank_store_walk(zone, NGX_HTTP_OPENBANK_TABLE_OUTBOX,
                                        ngx_http_openbank_send_claim_one,
                                        data);
}


/* a delivery due, its endpoint below its concurrency here: leased */

static ngx_int_t
ngx_http_openbank_send_claim_one(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_claims_t *cs = data;

    uint64_t                       endpoint;
    ngx_uint_t                     i, n;
    ngx_http_openbank_claim_t     *cl;
    ngx_http_openbank_inflight_t  *f;
    ngx_http_openbank_outbox_v_t   ov;

    if (sv->key.len != 33 || sv->len != sizeof(ov)) {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    ngx_memcpy(&ov, sv->value, sizeof(ov));

    if ((uint64_t) ov.next > sv->now) {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    endpoint = ngx_http_openbank_events_hex(sv->key.data + 17, 16);

    f = ngx_http_openbank_send_inflight(endpoint, 0);
    n = f ? f->n : 0;

    for (i = 0; i < cs->n; i++) {
        n += (cs->claimed[i].endpoint == endpoint);
    }

    if (n >= cs->concurrency) {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    ov.next = (int64_t) (sv->now + cs->lease);
    ngx_memcpy(sv->value, &ov, sizeof(ov));

    cl = &cs->claimed[cs->n++];
    cl->seq = ngx_http_openbank_events_hex(sv->key.data + 1, 16);
    cl->endpoint = endpoint;
    cl->attempts = ov.attempts;
    cl->forced = ov.forced;

    return (cs->n == cs->room || cs->n == cs->want)
           ? NGX_HTTP_OPENBANK_STORE_STOP : NGX_HTTP_OPENBANK_STORE_KEEP;
}


static ngx_http_openbank_inflight_t *
ngx_http_openbank_send_inflight(uint64_t endpoint, ngx_uint_t add)
{
    ngx_uint_t                     i;
    ngx_http_openbank_inflight_t  *f;

    f = ngx_http_openbank_send_flight->elts;

    for (i = 0; i < ngx_http_openbank_send_flight->nelts; i++) {
        if (f[i].endpoint == endpoint) {
            return &f[i];
        }

        if (add && f[i].n == 0) {
            f[i].endpoint = endpoint;
            return &f[i];
        }
    }

    if (!add) {
        return NULL;
    }

    f = ngx_array_push(ngx_http_openbank_send_flight);
    if (f == NULL) {
        return NULL;
    }

    f->endpoint = endpoint;
    f->n = 0;

    return f;
}


static void
ngx_http_openbank_send_start(ngx_http_openbank_claim_t *cl)
{
    ngx_int_t                           rc;
    ngx_pool_t                         *pool;
    ngx_connection_t                   *c;
    ngx_http_openbank_send_t           *s;
    ngx_http_openbank_inflight_t       *f;
    ngx_http_openbank_events_conf_t    *ecf;
    ngx_http_openbank_main_conf_t      *obmcf;
    ngx_http_openbank_webhook_allow_t  *allowed;

    obmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                ngx_http_openbank_module);
    ecf = obmcf->events_conf;

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return;
    }

    s = ngx_pcalloc(pool, sizeof(ngx_http_openbank_send_t));
    if (s == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    f = ngx_http_openbank_send_inflight(cl->endpoint, 1);
    if (f == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    f->n++;
    ngx_http_openbank_send_n++;

    s->pool = pool;
    s->log = ngx_cycle->log;
    ngx_http_openbank_answer_init(&s->answer, s->response,
                                  sizeof(s->response));
    s->seq = cl->seq;
    s->endpoint = cl->endpoint;
    s->attempts = cl->attempts;
    s->start = ngx_http_openbank_now_ms();

    s->timer.handler = ngx_http_openbank_send_timeout;
    s->timer.data = s;
    s->timer.log = s->log;
    s->timer.cancelable = 1;

    ngx_add_timer(&s->timer, ecf->timeout);

    rc = ngx_http_openbank_send_build(s, cl);

    if (rc == NGX_DECLINED) {
        /* the endpoint or the event is gone, or disabled: nothing to send */
        s->error = NULL;
        s->finished = 1;
        (void) ngx_http_openbank_send_outcome(obmcf->shm_zone->data, s);
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_openbank_send_finish(s, "cannot be prepared");
        return;
    }

    allowed = ngx_http_openbank_webhook_allowed(ecf, &s->url);

    if (!s->url.https && allowed == NULL) {
        ngx_http_openbank_send_finish(s, "http is no longer allowed");
        return;
    }

    /*
     * A connection kept for this endpoint, host, port and scheme: to the
     * address checked when it was made, no resolution again.
     */

    s->keep = ngx_http_openbank_keep_get(s);

    if (s->keep) {
        c = s->keep->connection;

        s->reused = 1;
        s->keep->requests++;
        s->pc.connection = c;
        s->addr.sockaddr = ngx_palloc(s->pool, s->keep->socklen);
        if (s->addr.sockaddr == NULL) {
            ngx_http_openbank_send_finish(s, "cannot be prepared");
            return;
        }

        ngx_memcpy(s->addr.sockaddr, &s->keep->sockaddr, s->keep->socklen);
        s->addr.socklen = s->keep->socklen;

        ngx_http_openbank_send_attach(s, c);
        ngx_http_openbank_send_write(c->write);
        return;
    }

    /* an address as the host: checked here, no thread to resolve it */

    rc = ngx_http_openbank_send_literal(s, allowed != NULL);

    if (rc != NGX_DECLINED) {
        return;
    }

    s->resolving = 1;

    if (ngx_http_openbank_webhook_resolve(s->pool, &s->url.host, s->url.port,
                                          allowed != NULL,
                                          ngx_http_openbank_send_resolved, s)
        != NGX_OK)
    {
        s->resolving = 0;
        ngx_http_openbank_send_finish(s, "cannot be resolved");
    }
}


/*
 * The request, signed: NGX_OK; NGX_DECLINED when there is nothing to
 * send (the event or the endpoint gone, the endpoint disabled).
 */

static ngx_int_t
ngx_http_openbank_send_build(ngx_http_openbank_send_t *s,
    ngx_http_openbank_claim_t *cl)
{
    u_char                           *p, kbuf[17], ts[NGX_TIME_T_LEN + 1];
    u_char                            md[SHA256_DIGEST_LENGTH];
    u_char                            mac[EVP_MAX_MD_SIZE];
    u_char                            key[64], digest[64], id[24];
    u_char                            sig[NGX_HTTP_OPENBANK_SIG_MAX_LEN];
    u_char                            err[128];
    size_t                            n, keylen, siglen, len;
    ssize_t                           got;
    unsigned int                      maclen;
    ngx_str_t                         k, ev, wh, url, secret, aad, sealed;
    ngx_str_t                         type, data, body, base, input, src;
    ngx_uint_t                        alg;
    ngx_tm_t                          tm;
    HMAC_CTX                         *hctx;
    ngx_http_openbank_event_v_t       evv;
    ngx_http_openbank_webhook_v_t     wv;
    ngx_http_openbank_signing_key_t  *gk;
    ngx_http_openbank_main_conf_t    *obmcf;

    obmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                ngx_http_openbank_module);

    /* the endpoint (kept: the url points into it) and the event */

    ngx_http_openbank_events_key(&k, kbuf, 'w', s->endpoint);

    got = ngx_http_openbank_store_get(obmcf->shm_zone->data,
                                      NGX_HTTP_OPENBANK_TABLE_EVENTS, &k,
                                      ngx_http_openbank_send_scratch,
                                      sizeof(wv) + 4 * 4096, NULL);
    if (got < (ssize_t) sizeof(wv) || got > (ssize_t) (sizeof(wv) + 4 * 4096))
    {
        return NGX_DECLINED;
    }

    wh.data = ngx_pnalloc(s->pool, got);
    if (wh.data == NULL) {
        return NGX_ERROR;
    }

    wh.len = got;
    ngx_memcpy(wh.data, ngx_http_openbank_send_scratch, got);
    ngx_memcpy(&wv, wh.data, sizeof(wv));

    if (wh.len < sizeof(wv) + wv.partner_len + wv.url_len + wv.events_len
                 + wv.secret_len
        || (wv.status != NGX_HTTP_OPENBANK_WEBHOOK_ENABLED && !cl->forced))
    {
        return NGX_DECLINED;
    }

    ngx_http_openbank_events_key(&k, kbuf, 'e', s->seq);

    ev.data = ngx_http_openbank_send_scratch;

    got = ngx_http_openbank_store_get(obmcf->shm_zone->data,
                                      NGX_HTTP_OPENBANK_TABLE_EVENTS, &k,
                                      ev.data,
                                      NGX_HTTP_OPENBANK_SEND_EVENT_MAX,
                                      NULL);
    if (got < (ssize_t) sizeof(evv)
        || got > (ssize_t) NGX_HTTP_OPENBANK_SEND_EVENT_MAX)
    {
        return NGX_DECLINED;
    }

    ev.len = got;
    ngx_memcpy(&evv, ev.data, sizeof(evv));

    if (ev.len < sizeof(evv) + evv.partner_len + evv.type_len + evv.data_len) {
        return NGX_DECLINED;
    }

    type.data = ev.data + sizeof(evv) + evv.partner_len;
    type.len = evv.type_len;
    data.data = type.data + type.len;
    data.len = evv.data_len;

    url.data = wh.data + sizeof(wv) + wv.partner_len;
    url.len = wv.url_len;

    if (ngx_http_openbank_url_parse(&url, &s->url, err, sizeof(err))
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    sealed.data = url.data + url.len + wv.events_len;
    sealed.len = wv.secret_len;
    aad.data = kbuf;
    aad.len = 17;
    ngx_http_openbank_events_key(&aad, kbuf, 'w', s->endpoint);

    if (ngx_http_openbank_registry_open(s->pool, &sealed, &aad, &secret)
        != NGX_OK
        || secret.len < 7)
    {
        ngx_log_error(NGX_LOG_ALERT, s->log, 0,
                      "openbank: the secret of webhook endpoint we_%016uxL "
                      "cannot be opened (registry.key changed?)",
                      s->endpoint);
        return NGX_ERROR;
    }

    /* the body */

    ngx_gmtime((time_t) (evv.created / 1000), &tm);

    body.data = ngx_pnalloc(s->pool, 128 + type.len + data.len);
    if (body.data == NULL) {
        return NGX_ERROR;
    }

    body.len = ngx_sprintf(body.data,
                           "{\"id\":\"evt_%016uxL\",\"type\":\"%V\","
                           "\"created\":\"%4d-%02d-%02dT%02d:%02d:%02d."
                           "%03dZ\",\"data\":%V}",
                           s->seq, &type, tm.ngx_tm_year, tm.ngx_tm_mon,
                           tm.ngx_tm_mday, tm.ngx_tm_hour, tm.ngx_tm_min,
                           tm.ngx_tm_sec, (int) (evv.created % 1000), &data)
               - body.data;

    n = ngx_sprintf(id, "evt_%016uxL", s->seq) - id;
    len = ngx_sprintf(ts, "%T", ngx_time()) - ts;

    /* Standard Webhooks: v1, base64 of HMAC-SHA256 over "id.ts.body" */

    src.data = secret.data + 6;
    src.len = secret.len - 6;

    if (ngx_http_openbank_base64_decode(key, sizeof(key), &src, &keylen)
        != NGX_OK)
    {
        ngx_explicit_memzero(secret.data, secret.len);
        return NGX_ERROR;
    }

    ngx_explicit_memzero(secret.data, secret.len);

    hctx = HMAC_CTX_new();
    if (hctx == NULL) {
        ngx_explicit_memzero(key, sizeof(key));
        return NGX_ERROR;
    }

    if (HMAC_Init_ex(hctx, key, (int) keylen, EVP_sha256(), NULL) != 1
        || HMAC_Update(hctx, id, n) != 1
        || HMAC_Update(hctx, (u_char *) ".", 1) != 1
        || HMAC_Update(hctx, ts, len) != 1
        || HMAC_Update(hctx, (u_char *) ".", 1) != 1
        || HMAC_Update(hctx, body.data, body.len) != 1
        || HMAC_Final(hctx, mac, &maclen) != 1)
    {
        HMAC_CTX_free(hctx);
        ngx_explicit_memzero(key, sizeof(key));
        ERR_clear_error();
        return NGX_ERROR;
    }

    HMAC_CTX_free(hctx);
    ngx_explicit_memzero(key, sizeof(key));

    /* RFC 9421 by the gateway's key */

    SHA256(body.data, body.len, md);
    p = ngx_cpymem(digest, "sha-256=:", 9);
    p += ngx_http_openbank_base64_encode(p, md, sizeof(md));
    *p++ = ':';
    src.data = digest;
    src.len = p - digest;

    gk = obmcf->signing_keys.elts;

    input.data = ngx_pnalloc(s->pool, 256 + gk->kid.len);
    base.data = ngx_pnalloc(s->pool, 512 + url.len + gk->kid.len);
    if (input.data == NULL || base.data == NULL) {
        return NGX_ERROR;
    }

    input.len = ngx_sprintf(input.data,
                            "(\"@method\" \"@target-uri\" \"content-digest\" "
                            "\"webhook-id\" \"webhook-timestamp\");"
                            "created=%*s;keyid=\"%V\"", len, ts, &gk->kid)
                - input.data;

    base.len = ngx_sprintf(base.data,
                           "\"@method\": POST\n"
                           "\"@target-uri\": %V\n"
                           "\"content-digest\": %V\n"
                           "\"webhook-id\": %*s\n"
                           "\"webhook-timestamp\": %*s\n"
                           "\"@signature-params\": %V",
                           &url, &src, n, id, len, ts, &input)
               - base.data;

    alg = (gk->type == NGX_HTTP_OPENBANK_KEY_RSA)
          ? NGX_HTTP_OPENBANK_SIG_RSA_PSS
          : (gk->type == NGX_HTTP_OPENBANK_KEY_EC_P256)
            ? NGX_HTTP_OPENBANK_SIG_ECDSA_P256
            : NGX_HTTP_OPENBANK_SIG_ED25519;

    if (ngx_http_openbank_sig_sign(alg, gk->pkey, gk->sign, NULL,
                                   base.data, base.len, sig, &siglen)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the request */

    s->request.data = ngx_pnalloc(s->pool, 1024 + s->url.path.len
                                           + s->url.authority.len
                                           + input.len + gk->kid.len
                                           + 2 * siglen + body.len);
    if (s->request.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(s->request.data,
                    "POST %V HTTP/1.1\r\n"
                    "Host: %V\r\n"
                    "User-Agent: openbank-webhooks/1\r\n"
                    "Content-Type: application/json\r\n"
                    "Content-Length: %uz\r\n"
                    "webhook-id: %*s\r\n"
                    "webhook-timestamp: %*s\r\n"
                    "webhook-signature: v1,",
                    &s->url.path, &s->url.authority, body.len, n, id,
                    len, ts);
    p += ngx_http_openbank_base64_encode(p, mac, maclen);
    p = ngx_sprintf(p, "\r\nContent-Digest: %V\r\n"
                       "Signature-Input: sig=%V\r\n"
                       "Signature: sig=:", &src, &input);
    p += ngx_http_openbank_base64_encode(p, sig, siglen);
    p = ngx_cpymem(p, ":\r\n\r\n", 5);
    p = ngx_cpymem(p, body.data, body.len);

    s->request.len = p - s->request.data;

    return NGX_OK;
}


/*
 * A host that is an IPv4 or IPv6 address (other forms, decimal or octal,
 * go to getaddrinfo()): connected to, or the attempt failed as a
 * resolution would; NGX_DECLINED: a name.
 */

static ngx_int_t
ngx_http_openbank_send_literal(ngx_http_openbank_send_t *s,
    ngx_uint_t allowed)
{
    ngx_int_t    rc;
    ngx_addr_t   addr;
    const char  *err;

    rc = ngx_parse_addr(s->pool, &addr, s->url.host.data, s->url.host.len);

    if (rc == NGX_DECLINED) {
        return NGX_DECLINED;
    }

    if (rc != NGX_OK) {
        ngx_http_openbank_send_finish(s, "cannot be resolved (no memory)");
        return NGX_OK;
    }

    ngx_inet_set_port(addr.sockaddr, s->url.port);

    if (!allowed
        && ngx_http_openbank_webhook_address_allowed(addr.sockaddr) != NGX_OK)
    {
        err = ngx_http_openbank_send_refused(addr.sockaddr, addr.socklen);
        ngx_http_openbank_send_resolved(s, NGX_DECLINED, NULL, err);
        return NGX_OK;
    }

    ngx_http_openbank_send_resolved(s, NGX_OK, &addr, NULL);

    return NGX_OK;
}


static void
ngx_http_openbank_send_resolved(void *data, ngx_int_t rc, ngx_addr_t *addr,
    const char *err)
{
    ngx_http_openbank_send_t *s = data;

    s->resolving = 0;

    if (s->finished) {
        /* timed out meanwhile: the outcome is recorded */
        ngx_http_openbank_send_free(s);
        return;
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, s->log, 0,
                      "openbank: webhook evt_%016uxL to we_%016uxL: the "
                      "host %s", s->seq, s->endpoint, err);
        ngx_http_openbank_send_finish(s, err);
        return;
    }

    ngx_http_openbank_send_connect(s, addr);
}


static void
ngx_http_openbank_send_connect(ngx_http_openbank_send_t *s, ngx_addr_t *addr)
{
    ngx_int_t                         rc;
    ngx_pool_t                       *pool;
    ngx_connection_t                 *c;
    ngx_http_openbank_keep_t         *k;
    ngx_http_openbank_events_conf_t  *ecf;
    ngx_http_openbank_main_conf_t    *obmcf;

    obmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                ngx_http_openbank_module);
    ecf = obmcf->events_conf;

    /* the address checked is the one connected to */

    if (ngx_http_openbank_webhook_allowed(ecf, &s->url) == NULL
        && ngx_http_openbank_webhook_address_allowed(addr->sockaddr)
           != NGX_OK)
    {
        ngx_http_openbank_send_finish(s, "address refused");
        return;
    }

    if (addr->socklen > (socklen_t) sizeof(ngx_sockaddr_t)) {
        ngx_http_openbank_send_finish(s, "address refused");
        return;
    }

    if (s->addr.sockaddr != addr->sockaddr) {
        s->addr = *addr;
    }

    /* the connection's own pool: it may outlive the delivery */

    pool = ngx_create_pool(1024, s->log);
    if (pool == NULL) {
        ngx_http_openbank_send_finish(s, "connection failed");
        return;
    }

    k = ngx_pcalloc(pool, sizeof(ngx_http_openbank_keep_t) + s->url.host.len);
    if (k == NULL) {
        ngx_destroy_pool(pool);
        ngx_http_openbank_send_finish(s, "connection failed");
        return;
    }

    k->endpoint = s->endpoint;
    k->host.data = (u_char *) (k + 1);
    k->host.len = s->url.host.len;
    ngx_memcpy(k->host.data, s->url.host.data, s->url.host.len);
    k->port = s->url.port;
    k->https = s->url.https;
    k->born = ngx_time();
    k->requests = 1;
    ngx_memcpy(&k->sockaddr, addr->sockaddr, addr->socklen);
    k->socklen = addr->socklen;

    ngx_memzero(&s->pc, sizeof(ngx_peer_connection_t));
    s->pc.sockaddr = &k->sockaddr.sockaddr;
    s->pc.socklen = k->socklen;
    s->pc.name = &k->host;
    s->pc.get = ngx_event_get_peer;
    s->pc.log = s->log;
    s->pc.log_error = NGX_ERROR_INFO;    /* a receiver down is routine */

    rc = ngx_event_connect_peer(&s->pc);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        s->pc.connection = NULL;
        ngx_destroy_pool(pool);
        ngx_http_openbank_send_finish(s, "connection failed");
        return;
    }

    c = s->pc.connection;
    c->pool = pool;
    k->connection = c;
    s->keep = k;

    ngx_http_openbank_send_attach(s, c);

    if (rc == NGX_OK) {
        ngx_http_openbank_send_write(c->write);
    }
}


/* a connection, new or kept, now carrying this delivery */

static void
ngx_http_openbank_send_attach(ngx_http_openbank_send_t *s,
    ngx_connection_t *c)
{
    c->data = s;
    c->log_error = NGX_ERROR_INFO;
    c->log = s->log;
    c->read->log = s->log;
    c->write->log = s->log;
    c->write->handler = ngx_http_openbank_send_write;
    c->read->handler = ngx_http_openbank_send_read;
}


/*
 * A kept connection that failed before any byte of the answer (the
 * receiver closed it meanwhile): the request once more on a new one to
 * the same address, the same attempt.
 */

static void
ngx_http_openbank_send_retry(ngx_http_openbank_send_t *s)
{
    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, s->log, 0,
                   "openbank: webhook evt_%016uxL: kept connection to "
                   "we_%016uxL closed, a new one", s->seq, s->endpoint);

    ngx_http_openbank_keep_close(s->pc.connection);
    s->pc.connection = NULL;
    s->keep = NULL;

    s->reused = 0;
    s->sent = 0;
    ngx_http_openbank_answer_init(&s->answer, s->response,
                                  sizeof(s->response));

    ngx_http_openbank_send_connect(s, &s->addr);
}


static ngx_int_t
ngx_http_openbank_send_test_connect(ngx_connection_t *c)
{
    int        err;
    socklen_t  len;

    err = 0;
    len = sizeof(int);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len) == -1) {
        err = ngx_socket_errno;
    }

    return err ? NGX_ERROR : NGX_OK;
}


static void
ngx_http_openbank_send_write(ngx_event_t *wev)
{
    u_char                           *sni;
    ssize_t                           n;
    ngx_connection_t                 *c;
    ngx_http_openbank_send_t         *s;
    ngx_http_openbank_events_conf_t  *ecf;
    ngx_http_openbank_main_conf_t    *obmcf;

    c = wev->data;
    s = c->data;

    if (!s->reused && !c->ssl && s->sent == 0) {
        if (ngx_http_openbank_send_test_connect(c) != NGX_OK) {
            ngx_http_openbank_send_finish(s, "connection refused");
            return;
        }

        if (s->url.https && !s->ssl) {
            obmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                ngx_http_openbank_module);
            ecf = obmcf->events_conf;

            s->ssl = 1;

            if (ngx_ssl_create_connection(ecf->ssl, c, NGX_SSL_BUFFER
                                                       |NGX_SSL_CLIENT)
                != NGX_OK)
            {
                ngx_http_openbank_send_finish(s, "TLS failed");
                return;
            }

            if (ngx_ssl_set_session(c, NULL) != NGX_OK) {
                ngx_http_openbank_send_finish(s, "TLS failed");
                return;
            }

            /* SNI: a name, never an address (RFC 6066) */

            sni = ngx_pnalloc(s->pool, s->url.host.len + 1);
            if (sni == NULL) {
                ngx_http_openbank_send_finish(s, "TLS failed");
                return;
            }

            (void) ngx_cpystrn(sni, s->url.host.data, s->url.host.len + 1);

            if (ngx_strlchr(sni, sni + s->url.host.len, ':') == NULL
                && ngx_inet_addr(sni, s->url.host.len) == INADDR_NONE
                && SSL_set_tlsext_host_name(c->ssl->connection, (char *) sni)
                   != 1)
            {
                ERR_clear_error();
            }

            if (ngx_ssl_handshake(c) == NGX_AGAIN) {
                c->ssl->handler = ngx_http_openbank_send_handshake;
                return;
            }

            ngx_http_openbank_send_handshake(c);
            return;
        }
    }

    while (s->sent < s->request.len) {
        n = c->send(c, s->request.data + s->sent, s->request.len - s->sent);

        if (n == NGX_AGAIN) {
            if (ngx_handle_write_event(wev, 0) != NGX_OK) {
                ngx_http_openbank_send_finish(s, "send failed");
            }

            return;
        }

        if (n <= 0) {
            if (s->reused) {
                ngx_http_openbank_send_retry(s);
                return;
            }

            ngx_http_openbank_send_finish(s, "send failed");
            return;
        }

        s->sent += n;
    }

    wev->handler = ngx_http_openbank_send_idle;

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_http_openbank_send_finish(s, "read failed");
        return;
    }

    if (c->read->ready) {
        ngx_http_openbank_send_read(c->read);
    }
}


static void
ngx_http_openbank_send_handshake(ngx_connection_t *c)
{
    long                       rc;
    ngx_http_openbank_send_t  *s;

    s = c->data;

    if (!c->ssl->handshaked) {
        ngx_http_openbank_send_finish(s, "TLS handshake failed");
        return;
    }

    rc = SSL_get_verify_result(c->ssl->connection);

    if (rc != X509_V_OK) {
        ngx_log_error(NGX_LOG_WARN, s->log, 0,
                      "openbank: webhook to we_%016uxL: certificate not "
                      "trusted: (%l:%s)", s->endpoint, rc,
                      X509_verify_cert_error_string(rc));
        ngx_http_openbank_send_finish(s, "certificate not trusted");
        return;
    }

    if (ngx_ssl_check_host(c, &s->url.host) != NGX_OK) {
        ngx_http_openbank_send_finish(s, "certificate does not match");
        return;
    }

    c->write->handler = ngx_http_openbank_send_write;
    c->read->handler = ngx_http_openbank_send_read;

    ngx_http_openbank_send_write(c->write);
}


/*
 * The status line is what counts; the rest of the answer is read whole
 * (Content-Length or chunked, up to NGX_HTTP_OPENBANK_SEND_DRAIN) for
 * the connection to be kept, or it is closed.
 */

static void
ngx_http_openbank_send_read(ngx_event_t *rev)
{
    ssize_t                    n;
    ngx_int_t                  rc;
    ngx_connection_t          *c;
    ngx_http_openbank_send_t  *s;

    c = rev->data;
    s = c->data;

    if (s->sent < s->request.len) {

        /* before the request is out: a connection that failed */

        if (ngx_http_openbank_send_test_connect(c) != NGX_OK) {
            if (s->reused) {
                ngx_http_openbank_send_retry(s);
                return;
            }

            ngx_http_openbank_send_finish(s, "connection refused");
        }

        return;
    }

    for ( ;; ) {
        n = c->recv(c, s->response + s->answer.received,
                    sizeof(s->response) - s->answer.received);

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(rev, 0) != NGX_OK) {
                ngx_http_openbank_send_finish(s, "read failed");
            }

            return;
        }

        if (n == NGX_ERROR || n == 0) {
            if (!s->answered && s->reused) {
                ngx_http_openbank_send_retry(s);
                return;
            }

            ngx_http_openbank_send_finish(s, s->answer.status
                                             ? NULL : "no response");
            return;
        }

        s->answered = 1;
        s->answer.received += n;

        rc = ngx_http_openbank_answer_parse(&s->answer);

        if (rc == NGX_AGAIN) {
            continue;
        }

        if (rc == NGX_ERROR) {
            ngx_http_openbank_send_finish(s, "not an HTTP response");
            return;
        }

        /*
         * NGX_OK: the answer read whole, kept unless the receiver closes
         * or sent more than it (bytes no request asked for); NGX_DONE:
         * the rest not read
         */

        s->keepalive = (rc == NGX_OK && !s->answer.close
                        && s->answer.pos == s->answer.received);

        ngx_http_openbank_send_finish(s, NULL);
        return;
    }
}


static void
ngx_http_openbank_send_idle(ngx_event_t *ev)
{
    return;
}


/*
 * An answer whose headers are in counts, its body not waited for;
 * otherwise the attempt timed out, whatever status line came.
 */

static void
ngx_http_openbank_send_timeout(ngx_event_t *ev)
{
    ngx_http_openbank_send_t *s = ev->data;

    if (s->answer.headers) {
        ngx_http_openbank_send_finish(s, NULL);
        return;
    }

    s->answer.status = 0;

    ngx_http_openbank_send_finish(s, "timed out");
}


/* the attempt is over: its outcome into the zone and the journal */

static void
ngx_http_openbank_send_finish(ngx_http_openbank_send_t *s,
    const char *error)
{
    ngx_http_openbank_main_conf_t  *obmcf;

    if (s->finished) {
        return;
    }

    s->finished = 1;
    s->error = error;

    if (s->answer.status
        && (s->answer.status < 200 || s->answer.status > 299)
        && error == NULL)
    {
        s->error = "not a 2xx";
    }

    obmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                ngx_http_openbank_module);

    (void) ngx_http_openbank_send_outcome(obmcf->shm_zone->data, s);
}


static ngx_int_t
ngx_http_openbank_send_outcome(ngx_http_openbank_zone_t *zone, void *data)
{
    ngx_http_openbank_send_t *s = data;

    ngx_http_openbank_outcome_t  oc;

    ngx_memzero(&oc, sizeof(oc));
    oc.s = s;

    oc.ops = ngx_array_create(s->pool, 4, sizeof(ngx_http_openbank_ev_op_t));

    if (oc.ops != NULL
        && ngx_http_openbank_store_atomic(zone,
                                          ngx_http_openbank_send_outcome_atomic,
                                          &oc)
           == NGX_OK
        && oc.ops->nelts)
    {
        if (ngx_http_openbank_events_write(s->log, oc.ops, NULL, NULL)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, s->log, 0,
                          "openbank: a webhook's outcome cannot be "
                          "journaled: it is in the zone");
        }
    }

    if (oc.delivered) {
        ngx_log_error(NGX_LOG_INFO, s->log, 0,
                      "openbank: webhook evt_%016uxL delivered to "
                      "we_%016uxL: %i", s->seq, s->endpoint, s->answer.status);

    } else if (s->error) {
        ngx_log_error(NGX_LOG_WARN, s->log, 0,
                      "openbank: webhook evt_%016uxL to we_%016uxL failed "
                      "(attempt %uD): %s%s", s->seq, s->endpoint,
                      s->attempts + 1, s->error,
                      oc.gave_up ? ", given up" : "");
    }

    if (oc.disabled) {
        ngx_log_error(NGX_LOG_WARN, s->log, 0,
                      "openbank: webhook endpoint we_%016uxL is disabled: "
                      "it has failed since long enough", s->endpoint);
    }

    ngx_http_openbank_send_free(s);

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_send_outcome_atomic(ngx_http_openbank_zone_t *zone,
    void *data)
{
    ngx_http_openbank_outcome_t *oc = data;

    u_char                           *p, *kd, *ke, *kw;
    ssize_t                           n;
    uint64_t                          now, delay;
    ngx_str_t                         k;
    ngx_uint_t                        i, ok, changed;
    ngx_http_openbank_send_t         *s;
    ngx_http_openbank_ev_op_t        *op;
    ngx_http_openbank_outbox_v_t      ov;
    ngx_http_openbank_attempt_v_t     at;
    ngx_http_openbank_webhook_v_t     wv;
    ngx_http_openbank_events_conf_t  *ecf;
    ngx_http_openbank_main_conf_t    *obmcf;

    s = oc->s;
    now = ngx_http_openbank_now_ms();

    obmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                ngx_http_openbank_module);
    ecf = obmcf->events_conf;

    kd = ngx_pnalloc(s->pool, 33 + sizeof(ov) + 17 + 17 + sizeof(at));
    if (kd == NULL) {
        return NGX_ERROR;
    }

    kd[0] = 'd';
    ngx_sprintf(kd + 1, "%016uxL%016uxL", s->seq, s->endpoint);
    ke = kd + 33 + sizeof(ov);
    kw = ke + 17;

    k.data = kd;
    k.len = 33;

    n = ngx_http_openbank_store_get(zone, NGX_HTTP_OPENBANK_TABLE_OUTBOX, &k,
                                    &ov, sizeof(ov), NULL);
    if (n != (ssize_t) sizeof(ov)) {
        /* the endpoint was deleted meanwhile */
        return NGX_OK;
    }

    op = ngx_array_push(oc->ops);
    if (op == NULL) {
        return NGX_ERROR;
    }

    op->key = k;
    op->value.data = NULL;
    op->value.len = 0;
    op->expire = 0;
    op->type = NGX_HTTP_OPENBANK_EV_OUT_DEL;

    if (s->error == NULL && s->answer.status == 0) {
        /* nothing to send */
        goto apply;
    }

    ok = (s->error == NULL);
    oc->delivered = ok;

    if (!ok) {
        ov.attempts = s->attempts + 1;

        if (ov.attempts > ecf->nretries) {
            oc->gave_up = 1;

        } else {
            delay = ecf->retries[ov.attempts - 1];
            delay = delay - delay / 10 + ngx_random() % (delay / 5 + 1);

            ov.next = (int64_t) (now + delay);
            ngx_memcpy(kd + 33, &ov, sizeof(ov));

            op->type = NGX_HTTP_OPENBANK_EV_OUT_PUT;
            op->value.data = kd + 33;
            op->value.len = sizeof(ov);
        }
    }

    /* the attempt, kept with the event */

    ngx_memzero(&at, sizeof(at));
    at.at = (int64_t) s->start;
    at.endpoint = s->endpoint;
    at.duration = (uint32_t) (now - s->start);
    at.status = (int32_t) s->answer.status;

    if (s->error) {
        ngx_cpystrn(at.error, (u_char *) s->error, sizeof(at.error));
    }

    ngx_memcpy(kw + 17, &at, sizeof(at));

    op = ngx_array_push(oc->ops);
    if (op == NULL) {
        return NGX_ERROR;
    }

    ngx_http_openbank_events_key(&op->key, ke, 'e', s->seq);
    op->type = NGX_HTTP_OPENBANK_EV_ATTEMPT;
    op->value.data = kw + 17;
    op->value.len = sizeof(at);
    op->expire = 0;

    /* the endpoint: failing since, disabled, or well again */

    p = ngx_http_openbank_send_scratch;

    ngx_http_openbank_events_key(&k, kw, 'w', s->endpoint);

    n = ngx_http_openbank_store_get(zone, NGX_HTTP_OPENBANK_TABLE_EVENTS, &k,
                                    p, sizeof(wv) + 4 * 4096, NULL);

    if (n >= (ssize_t) sizeof(wv) && n <= (ssize_t) (sizeof(wv) + 4 * 4096)) {
        ngx_memcpy(&wv, p, sizeof(wv));
        changed = 0;

        if (ok) {
            if (wv.failing || wv.status != NGX_HTTP_OPENBANK_WEBHOOK_ENABLED) {
                wv.failing = 0;
                wv.status = NGX_HTTP_OPENBANK_WEBHOOK_ENABLED;
                changed = 1;
            }

        } else if (wv.failing == 0) {
            wv.failing = (int64_t) now;
            changed = 1;

        } else if (wv.status == NGX_HTTP_OPENBANK_WEBHOOK_ENABLED
                   && now - (uint64_t) wv.failing
                      >= (uint64_t) ecf->disable_after * 1000)
        {
            wv.status = NGX_HTTP_OPENBANK_WEBHOOK_DISABLED;
            oc->disabled = 1;
            changed = 1;
        }

        if (changed) {
            p = ngx_pnalloc(s->pool, n);
            if (p == NULL) {
                return NGX_ERROR;
            }

            ngx_memcpy(p, ngx_http_openbank_send_scratch, n);
            ngx_memcpy(p, &wv, sizeof(wv));

            op = ngx_array_push(oc->ops);
            if (op == NULL) {
                return NGX_ERROR;
            }

            op->type = NGX_HTTP_OPENBANK_EV_PUT;
            op->key = k;
            op->value.data = p;
            op->value.len = n;
            op->expire = 0;
        }
    }

apply:

    op = oc->ops->elts;

    for (i = 0; i < oc->ops->nelts; i++) {
        if (ngx_http_openbank_events_apply(zone, &op[i]) == NGX_ERROR) {
            ngx_log_error(NGX_LOG_ALERT, s->log, 0,
                          "openbank: the zone is full: a webhook's outcome "
                          "is not kept whole");
        }
    }

    return NGX_OK;
}


static void
ngx_http_openbank_send_free(ngx_http_openbank_send_t *s)
{
    ngx_http_openbank_inflight_t  *f;

    if (s->timer.timer_set) {
        ngx_del_timer(&s->timer);
    }

    if (s->pc.connection) {
        if (s->keepalive) {
            ngx_http_openbank_keep_put(s);

        } else {
            ngx_http_openbank_keep_close(s->pc.connection);
        }

        s->pc.connection = NULL;
    }

    if (s->resolving) {
        /* the thread's answer frees it (ngx_http_openbank_send_resolved) */
        return;
    }

    f = ngx_http_openbank_send_inflight(s->endpoint, 0);

    if (f && f->n) {
        f->n--;
    }

    ngx_http_openbank_send_n--;

    ngx_destroy_pool(s->pool);

    /* room for another: the next claim now rather than at the tick */

    ngx_http_openbank_send_want();
}


/*
 * A delivery made due by this worker (its event now durable): claimed in
 * this pass of the event loop if its endpoint has room here, rather than
 * at the next tick, so that deliveries leave as events come and not in a
 * burst at each tick, which the ingest's answers would wait behind.
 */

void
ngx_http_openbank_webhook_send_due(ngx_str_t *key)
{
    ngx_http_openbank_inflight_t     *f;
    ngx_http_openbank_events_conf_t  *ecf;
    ngx_http_openbank_main_conf_t    *obmcf;

    if (ngx_http_openbank_send_flight == NULL || key->len != 33) {
        return;
    }

    obmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                ngx_http_openbank_module);
    ecf = obmcf->events_conf;

    f = ngx_http_openbank_send_inflight(
                      ngx_http_openbank_events_hex(key->data + 17, 16), 0);

    if (f && f->n >= ecf->concurrency) {
        /* one of its deliveries that ends claims it */
        return;
    }

    ngx_http_openbank_send_want();
}


static void
ngx_http_openbank_send_want(void)
{
    ngx_http_openbank_send_wanted++;

    if (!ngx_exiting && !ngx_http_openbank_send_ev.posted) {
        ngx_post_event(&ngx_http_openbank_send_ev, &ngx_posted_events);
    }
}


/* an idle connection for this delivery, or NULL */

static ngx_http_openbank_keep_t *
ngx_http_openbank_keep_get(ngx_http_openbank_send_t *s)
{
    ngx_queue_t               *q, *next;
    ngx_connection_t          *c;
    ngx_http_openbank_keep_t  *k;

    for (q = ngx_queue_head(&ngx_http_openbank_send_kept);
         q != ngx_queue_sentinel(&ngx_http_openbank_send_kept);
         q = next)
    {
        next = ngx_queue_next(q);
        k = ngx_queue_data(q, ngx_http_openbank_keep_t, queue);

        if (k->endpoint != s->endpoint
            || k->port != s->url.port
            || k->https != s->url.https
            || k->host.len != s->url.host.len
            || ngx_strncmp(k->host.data, s->url.host.data, k->host.len) != 0)
        {
            continue;
        }

        ngx_queue_remove(q);
        ngx_http_openbank_send_kept_n--;

        c = k->connection;

        if (ngx_time() - k->born >= NGX_HTTP_OPENBANK_SEND_AGE) {
            /* old enough: a new resolution for the next */
            ngx_http_openbank_keep_close(c);
            continue;
        }

        c->idle = 0;

        if (c->read->timer_set) {
            ngx_del_timer(c->read);
        }

        return k;
    }

    return NULL;
}


/*
 * The answer read whole: the connection kept, idle, up to the endpoint's
 * concurrency and NGX_HTTP_OPENBANK_SEND_IDLE_MAX in the worker (the
 * least recently used closed first), NGX_HTTP_OPENBANK_SEND_IDLE ms.
 */

static void
ngx_http_openbank_keep_put(ngx_http_openbank_send_t *s)
{
    ngx_uint_t                        n;
    ngx_queue_t                      *q;
    ngx_connection_t                 *c;
    ngx_http_openbank_keep_t         *k, *o;
    ngx_http_openbank_events_conf_t  *ecf;
    ngx_http_openbank_main_conf_t    *obmcf;

    c = s->pc.connection;
    k = s->keep;

    obmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                ngx_http_openbank_module);
    ecf = obmcf->events_conf;

    if (ngx_exiting || ngx_terminate || ngx_quit || k == NULL
        || c->error || c->read->eof
        || k->requests >= NGX_HTTP_OPENBANK_SEND_REUSES
        || ngx_time() - k->born >= NGX_HTTP_OPENBANK_SEND_AGE)
    {
        ngx_http_openbank_keep_close(c);
        return;
    }

    n = 0;

    for (q = ngx_queue_head(&ngx_http_openbank_send_kept);
         q != ngx_queue_sentinel(&ngx_http_openbank_send_kept);
         q = ngx_queue_next(q))
    {
        o = ngx_queue_data(q, ngx_http_openbank_keep_t, queue);
        n += (o->endpoint == k->endpoint);
    }

    if (n >= ecf->concurrency) {
        ngx_http_openbank_keep_close(c);
        return;
    }

    if (ngx_http_openbank_send_kept_n >= NGX_HTTP_OPENBANK_SEND_IDLE_MAX) {
        q = ngx_queue_last(&ngx_http_openbank_send_kept);
        ngx_queue_remove(q);
        ngx_http_openbank_send_kept_n--;

        o = ngx_queue_data(q, ngx_http_openbank_keep_t, queue);
        ngx_http_openbank_keep_close(o->connection);
    }

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    c->data = k;
    c->idle = 1;
    c->log = ngx_cycle->log;
    c->read->log = ngx_cycle->log;
    c->write->log = ngx_cycle->log;
    c->write->handler = ngx_http_openbank_send_idle;
    c->read->handler = ngx_http_openbank_keep_read;

    ngx_queue_insert_head(&ngx_http_openbank_send_kept, &k->queue);
    ngx_http_openbank_send_kept_n++;

    ngx_add_timer(c->read, NGX_HTTP_OPENBANK_SEND_IDLE);

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_http_openbank_keep_read(c->read);
        return;
    }

    if (c->read->ready) {
        ngx_http_openbank_keep_read(c->read);
    }
}


/*
 * An idle connection readable: closed by the receiver (EOF), or bytes
 * no request asked for; timed out; or the worker shutting down.
 */

static void
ngx_http_openbank_keep_read(ngx_event_t *rev)
{
    ssize_t                    n;
    u_char                     buf[1];
    ngx_connection_t          *c;
    ngx_http_openbank_keep_t  *k;

    c = rev->data;
    k = c->data;

    if (c->close || rev->timedout) {
        goto close;
    }

    n = recv(c->fd, (char *) buf, 1, MSG_PEEK);

    if (n == -1 && ngx_socket_errno == NGX_EAGAIN) {
        rev->ready = 0;

        if (ngx_handle_read_event(rev, 0) != NGX_OK) {
            goto close;
        }

        return;
    }

close:

    ngx_queue_remove(&k->queue);
    ngx_http_openbank_send_kept_n--;

    ngx_http_openbank_keep_close(c);
}


/* a connection to a receiver closed, and its pool */

static void
ngx_http_openbank_keep_close(ngx_connection_t *c)
{
    ngx_pool_t  *pool;

    pool = c->pool;

    if (c->ssl) {
        c->ssl->no_wait_shutdown = 1;
        (void) ngx_ssl_shutdown(c);
    }

    ngx_close_connection(c);

    if (pool) {
        ngx_destroy_pool(pool);
    }
}
