
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The rate and the quotas in cluster mode (docs/cluster.md, "The rate
 * and the quotas"): Redis holds the truth, "ob:rate:{PARTNER}" (a GCRA:
 * the theoretical arrival time, microseconds of Redis's clock) and
 * "ob:quota:{PARTNER}:PRODUCT:WINDOW:START" (the units granted); each
 * worker holds leases of them.  A lease is a block of units granted at
 * once by one script call (never more than remains, atomically), spent
 * locally, and what is not spent goes back (idle, shutdown, reload).
 * Every unit a request is admitted with was granted by Redis, so the
 * quota is never exceeded and the rate never admits more than the GCRA
 * would, whatever the number of gateways and workers.
 *
 * The block adapts to the worker's recent rate of the partner, and to
 * what remains: never more than remaining / (2 * holders) where the
 * holders are the gateways ("nodes=") times this gateway's workers, so
 * that the last units are not stranded on one worker.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_cluster.h>
#include <ngx_http_openbank_cluster_limit.h>
#include <ngx_http_openbank_redis.h>
#include <ngx_http_openbank_util.h>


#define NGX_HTTP_OPENBANK_LEASE_TICK       100     /* ms */
#define NGX_HTTP_OPENBANK_LEASE_IDLE_RATE  200     /* ms: then given back */
#define NGX_HTTP_OPENBANK_LEASE_IDLE_QUOTA 1000
#define NGX_HTTP_OPENBANK_LEASE_FORGET     10000   /* ms: then freed */
#define NGX_HTTP_OPENBANK_LEASE_DRY        100     /* ms: none left */
#define NGX_HTTP_OPENBANK_LEASE_MAX        10000   /* units a block */
#define NGX_HTTP_OPENBANK_LEASE_MIN        32      /* units a block */


typedef struct {
    ngx_str_node_t                   sn;        /* the Redis key */
    ngx_queue_t                      queue;     /* every lease */
    ngx_queue_t                      waiters;
    ngx_uint_t                       kind;
    uint64_t                         left;      /* units in hand */
    uint64_t                         apart;     /* admitted while apart */
    uint64_t                         limit;     /* quota; rate: T, us */
    uint64_t                         burst;     /* rate */
    uint64_t                         used;      /* quota: Redis's, heard */
    uint64_t                         wait_us;   /* rate: next token */
    ngx_msec_t                       ttl;       /* quota: the key's life */
    ngx_msec_t                       used_at;   /* the last unit taken */
    ngx_msec_t                       dry_until; /* Redis granted none */
    ngx_msec_t                       second;    /* of "takes" */
    ngx_uint_t                       takes;     /* in this second */
    ngx_uint_t                       recent;    /* in the previous */
    unsigned                         heard:1;
    unsigned                         pending:1; /* a call in flight */
} ngx_http_openbank_lease_t;


/* a request waiting for a lease's call */

typedef struct {
    ngx_queue_t                      queue;
    ngx_http_request_t              *r;
    ngx_http_openbank_lease_t       *lease;
    ngx_http_event_handler_pt        write_event_handler;
    unsigned                         waiting:1;
    unsigned                         answered:1;
    unsigned                         failed:1;
} ngx_http_openbank_lease_wait_t;


typedef struct {
    ngx_http_openbank_lease_wait_t   wait[2];   /* rate, quota */
} ngx_http_openbank_lease_req_t;


/* a call of a lease: what it asked, to put back when it failed */

typedef struct {
    ngx_http_openbank_lease_t       *lease;
    uint64_t                         want;
    uint64_t                         back;      /* given back */
    uint64_t                         merged;    /* added while apart */
} ngx_http_openbank_lease_call_t;


static ngx_http_openbank_lease_t *ngx_http_openbank_lease(ngx_uint_t kind,
    ngx_http_openbank_cluster_limit_t *lm);
static uint64_t ngx_http_openbank_lease_block(ngx_http_openbank_lease_t *l);
static ngx_int_t ngx_http_openbank_lease_send(ngx_http_openbank_lease_t *l,
    uint64_t want, uint64_t back, uint64_t merged);
static void ngx_http_openbank_lease_answer(void *data, redisReply *reply);
static void ngx_http_openbank_lease_wake(ngx_http_openbank_lease_t *l,
    ngx_uint_t failed);
static void ngx_http_openbank_lease_cleanup(void *data);
static void ngx_http_openbank_lease_tick(ngx_event_t *ev);
static void ngx_http_openbank_lease_count(ngx_http_openbank_lease_t *l,
    ngx_msec_t now);


/*
 * GCRA, n units at once: KEYS[1] the tat (microseconds, Redis's clock);
 * ARGV: T (us a unit), burst, units wanted, units given back.  Answers
 * {granted, tat - now}.
 */

static ngx_http_openbank_cluster_script_t  ngx_http_openbank_rate_script = {
    ngx_string(
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local T = tonumber(ARGV[1])\n"
    "local B = tonumber(ARGV[2]) * T\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if tat < now then tat = now end\n"
    "local back = tonumber(ARGV[4])\n"
    "if back > 0 then\n"
    "  tat = tat - back * T\n"
    "  if tat < now then tat = now end\n"
    "end\n"
    "local n = math.floor((now + B - tat) / T)\n"
    "if n < 0 then n = 0 end\n"
    "local want = tonumber(ARGV[3])\n"
    "if n > want then n = want end\n"
    "tat = tat + n * T\n"
    "if tat > now then\n"
    "  redis.call('SET', KEYS[1], string.format('%d', tat), 'PX',\n"
    "             string.format('%d', math.ceil((tat - now) / 1000) + 1))\n"
    "else\n"
    "  redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return {n, tat - now}\n"),
    ""
};


/*
 * A quota: KEYS[1] the units granted in the window; ARGV: the limit,
 * units wanted, units added (admitted while apart) or given back
 * (negative), the key's life in ms.  Answers {granted, used}.
 */

static ngx_http_openbank_cluster_script_t  ngx_http_openbank_quota_script = {
    ngx_string(
    "local used = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "used = used + tonumber(ARGV[3])\n"
    "if used < 0 then used = 0 end\n"
    "local n = tonumber(ARGV[1]) - used\n"
    "if n < 0 then n = 0 end\n"
    "local want = tonumber(ARGV[2])\n"
    "if n > want then n = want end\n"
    "used = used + n\n"
    "redis.call('SET', KEYS[1], string.format('%d', used), 'PX', ARGV[4])\n"
    "return {n, used}\n"),
    ""
};


/* per worker */
static ngx_rbtree_t                ngx_http_openbank_leases;
static ngx_rbtree_node_t           ngx_http_openbank_leases_sentinel;
static ngx_queue_t                 ngx_http_openbank_lease_queue;
static ngx_event_t                 ngx_http_openbank_lease_ev;
static ngx_uint_t                  ngx_http_openbank_holders = 1;
static ngx_uint_t                  ngx_http_openbank_lease_on;


ngx_int_t
ngx_http_openbank_cluster_limit_init(ngx_cycle_t *cycle)
{
    ngx_core_conf_t                *ccf;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                                ngx_http_openbank_module);

    if (obmcf == NULL || obmcf->cluster == NULL) {
        return NGX_OK;
    }

    ngx_rbtree_init(&ngx_http_openbank_leases,
                    &ngx_http_openbank_leases_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_queue_init(&ngx_http_openbank_lease_queue);

    ngx_http_openbank_cluster_script_init(&ngx_http_openbank_rate_script);
    ngx_http_openbank_cluster_script_init(&ngx_http_openbank_quota_script);

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    ngx_http_openbank_holders = ngx_http_openbank_cluster_nodes()
                                * ngx_max(ccf->worker_processes, 1);

    ngx_http_openbank_lease_ev.handler = ngx_http_openbank_lease_tick;
    ngx_http_openbank_lease_ev.data = &ngx_http_openbank_redis_no_connection;
    ngx_http_openbank_lease_ev.log = cycle->log;

    /* not cancelable: a worker that shuts down gives its leases back */
    ngx_add_timer(&ngx_http_openbank_lease_ev, NGX_HTTP_OPENBANK_LEASE_TICK);

    ngx_http_openbank_lease_on = 1;

    return NGX_OK;
}


void
ngx_http_openbank_cluster_limit_exit(ngx_cycle_t *cycle)
{
    ngx_queue_t                *q;
    ngx_http_openbank_lease_t  *l;

    if (!ngx_http_openbank_lease_on) {
        return;
    }

    ngx_http_openbank_lease_on = 0;

    if (ngx_http_openbank_lease_ev.timer_set) {
        ngx_del_timer(&ngx_http_openbank_lease_ev);
    }

    while (!ngx_queue_empty(&ngx_http_openbank_lease_queue)) {
        q = ngx_queue_head(&ngx_http_openbank_lease_queue);
        l = ngx_queue_data(q, ngx_http_openbank_lease_t, queue);

        ngx_queue_remove(q);
        ngx_rbtree_delete(&ngx_http_openbank_leases, &l->sn.node);

        /* a call still in flight finds it gone: no lease, nothing kept */
        if (!l->pending) {
            ngx_free(l);
        }
    }
}


static ngx_http_openbank_lease_t *
ngx_http_openbank_lease(ngx_uint_t kind, ngx_http_openbank_cluster_limit_t *lm)
{
    uint32_t                    hash;
    ngx_http_openbank_lease_t  *l;

    hash = ngx_crc32_short(lm->key.data, lm->key.len);

    l = (ngx_http_openbank_lease_t *)
            ngx_str_rbtree_lookup(&ngx_http_openbank_leases, &lm->key, hash);

    if (l == NULL) {
        l = ngx_calloc(sizeof(ngx_http_openbank_lease_t) + lm->key.len,
                       ngx_cycle->log);
        if (l == NULL) {
            return NULL;
        }

        l->sn.str.data = (u_char *) &l[1];
        l->sn.str.len = lm->key.len;
        ngx_memcpy(l->sn.str.data, lm->key.data, lm->key.len);
        l->sn.node.key = hash;
        l->kind = kind;

        ngx_queue_init(&l->waiters);
        ngx_rbtree_insert(&ngx_http_openbank_leases, &l->sn.node);
        ngx_queue_insert_tail(&ngx_http_openbank_lease_queue, &l->queue);
    }

    /* the plan as it is now: a reload's change applies at once */
    l->limit = lm->limit;
    l->burst = lm->burst;
    l->ttl = lm->ttl;

    return l;
}


/*
 * A unit of the rate or of a quota: NGX_OK taken, NGX_DECLINED none
 * left (lm->wait_ms: when the rate has one again), NGX_AGAIN the
 * request waits for the lease's call (the check runs again, the phases
 * resumed), NGX_BUSY Redis cannot answer: the caller applies the kind's
 * degraded mode.
 */

ngx_int_t
ngx_http_openbank_cluster_limit_take(ngx_http_request_t *r, ngx_uint_t kind,
    ngx_http_openbank_cluster_limit_t *lm, void **state)
{
    ngx_msec_t                       now;
    ngx_pool_cleanup_t              *cln;
    ngx_http_openbank_lease_t       *l;
    ngx_http_openbank_lease_req_t   *lr;
    ngx_http_openbank_lease_wait_t  *w;

    l = ngx_http_openbank_lease(kind, lm);
    if (l == NULL) {
        return NGX_BUSY;
    }

    lr = *state;

    if (lr == NULL) {
        lr = ngx_pcalloc(r->pool, sizeof(ngx_http_openbank_lease_req_t));
        if (lr == NULL) {
            return NGX_BUSY;
        }

        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_BUSY;
        }

        cln->handler = ngx_http_openbank_lease_cleanup;
        cln->data = lr;

        *state = lr;
    }

    w = &lr->wait[kind == NGX_HTTP_OPENBANK_CLUSTER_RATE ? 0 : 1];

    if (w->waiting) {
        return NGX_AGAIN;
    }

    now = ngx_current_msec;

    lm->used = l->used;

    if (l->left) {
        l->left--;
        l->used_at = now;
        w->answered = 0;

        ngx_http_openbank_lease_count(l, now);

        lm->left = l->left;

        /* the next block, before this one is spent */

        if (!l->pending && l->left <= ngx_http_openbank_lease_block(l) / 4
            && (kind == NGX_HTTP_OPENBANK_CLUSTER_RATE
                || l->used < l->limit))
        {
            (void) ngx_http_openbank_lease_send(l,
                                        ngx_http_openbank_lease_block(l), 0, 0);
        }

        return NGX_OK;
    }

    if (w->answered) {
        w->answered = 0;

        if (w->failed) {
            return NGX_BUSY;
        }
    }

    if ((ngx_msec_int_t) (l->dry_until - now) > 0) {
        lm->left = 0;
        lm->wait_ms = l->wait_us / 1000 + 1;
        return NGX_DECLINED;
    }

    if (!l->pending
        && ngx_http_openbank_lease_send(l, ngx_http_openbank_lease_block(l),
                                        0, 0)
           != NGX_OK)
    {
        return NGX_BUSY;
    }

    w->r = r;
    w->lease = l;
    w->waiting = 1;
    w->answered = 0;
    w->failed = 0;
    ngx_queue_insert_tail(&l->waiters, &w->queue);

    /* nothing runs the request until the answer */
    w->write_event_handler = r->write_event_handler;
    r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_AGAIN;
}


/* a unit taken and not used: the quota refused the call */

void
ngx_http_openbank_cluster_limit_refund(ngx_uint_t kind,
    ngx_http_openbank_cluster_limit_t *lm)
{
    ngx_http_openbank_lease_t  *l;

    l = ngx_http_openbank_lease(kind, lm);

    if (l != NULL) {
        l->left++;
    }
}


/*
 * quota=local while Redis cannot answer: this worker's share of what
 * remained when Redis last answered (of the whole limit if it never
 * did), counted to be added to Redis when it is back.
 */

ngx_int_t
ngx_http_openbank_cluster_limit_apart(ngx_http_openbank_cluster_limit_t *lm)
{
    uint64_t                    share;
    ngx_http_openbank_lease_t  *l;

    l = ngx_http_openbank_lease(NGX_HTTP_OPENBANK_CLUSTER_QUOTA, lm);
    if (l == NULL) {
        return NGX_DECLINED;
    }

    share = (l->used < l->limit ? l->limit - l->used : 0)
            / ngx_http_openbank_holders;

    if (!l->heard && share == 0 && l->limit) {
        share = 1;
    }

    lm->used = l->used + l->apart;

    if (l->apart >= share) {
        return NGX_DECLINED;
    }

    l->apart++;
    l->used_at = ngx_current_msec;
    lm->used++;

    return NGX_OK;
}


/* the worker's recent rate of the partner, units a second */

static void
ngx_http_openbank_lease_count(ngx_http_openbank_lease_t *l, ngx_msec_t now)
{
    if ((ngx_msec_int_t) (now - l->second) >= 1000) {
        l->recent = ((ngx_msec_int_t) (now - l->second) < 2000)
                    ? l->takes : 0;
        l->takes = 0;
        l->second = now;
    }

    l->takes++;
}


static uint64_t
ngx_http_openbank_lease_block(ngx_http_openbank_lease_t *l)
{
    uint64_t  block, rate, cap;

    rate = ngx_max(l->recent, l->takes);

    if (l->kind == NGX_HTTP_OPENBANK_CLUSTER_RATE) {
        /* 100 ms of the worker's rate, a share of the burst */
        block = rate / 10;
        cap = l->burst / (2 * ngx_http_openbank_holders);

    } else {
        /* 200 ms of it, a share of what remains */
        block = rate / 5;
        cap = (l->used < l->limit ? l->limit - l->used : 0)
              / (2 * ngx_http_openbank_holders);
    }

    /* a floor against a slow start, below the share */
    block = ngx_max(block, NGX_HTTP_OPENBANK_LEASE_MIN);

    if (block > cap) {
        block = cap;
    }

    if (block > NGX_HTTP_OPENBANK_LEASE_MAX) {
        block = NGX_HTTP_OPENBANK_LEASE_MAX;
    }

    return block ? block : 1;
}


static ngx_int_t
ngx_http_openbank_lease_send(ngx_http_openbank_lease_t *l, uint64_t want,
    uint64_t back, uint64_t merged)
{
    ngx_str_t                        argv[5];
    ngx_http_openbank_lease_call_t  *lc;
    u_char                           a1[NGX_INT64_LEN], a2[NGX_INT64_LEN],
                                     a3[NGX_INT64_LEN + 1],
                                     a4[NGX_INT64_LEN];

    lc = ngx_alloc(sizeof(ngx_http_openbank_lease_call_t), ngx_cycle->log);
    if (lc == NULL) {
        return NGX_ERROR;
    }

    lc->lease = l;
    lc->want = want;
    lc->back = back;
    lc->merged = merged;

    argv[0] = l->sn.str;
    argv[1].data = a1;
    argv[2].data = a2;
    argv[3].data = a3;
    argv[4].data = a4;

    if (l->kind == NGX_HTTP_OPENBANK_CLUSTER_RATE) {
        argv[1].len = ngx_sprintf(a1, "%uL", l->limit) - a1;
        argv[2].len = ngx_sprintf(a2, "%uL", l->burst) - a2;
        argv[3].len = ngx_sprintf(a3, "%uL", want) - a3;
        argv[4].len = ngx_sprintf(a4, "%uL", back) - a4;

    } else {
        argv[1].len = ngx_sprintf(a1, "%uL", l->limit) - a1;
        argv[2].len = ngx_sprintf(a2, "%uL", want) - a2;

        if (back) {
            argv[3].len = ngx_sprintf(a3, "-%uL", back) - a3;

        } else {
            argv[3].len = ngx_sprintf(a3, "%uL", merged) - a3;
        }

        argv[4].len = ngx_sprintf(a4, "%M", l->ttl) - a4;
    }

    if (ngx_http_openbank_cluster_call(NULL,
                              l->kind == NGX_HTTP_OPENBANK_CLUSTER_RATE
                              ? &ngx_http_openbank_rate_script
                              : &ngx_http_openbank_quota_script,
                              1, 5, argv, ngx_http_openbank_lease_answer, lc)
        != NGX_OK)
    {
        ngx_free(lc);
        return NGX_BUSY;
    }

    l->pending = 1;

    return NGX_OK;
}


static void
ngx_http_openbank_lease_answer(void *data, redisReply *reply)
{
    ngx_http_openbank_lease_call_t  *lc = data;

    uint64_t                    n, x, want;
    ngx_uint_t                  found;
    ngx_http_openbank_lease_t  *l;

    l = lc->lease;
    l->pending = 0;

    found = reply != NULL
            && reply->type == REDIS_REPLY_ARRAY
            && reply->elements == 2
            && reply->element[0]->type == REDIS_REPLY_INTEGER
            && reply->element[1]->type == REDIS_REPLY_INTEGER
            && reply->element[0]->integer >= 0;

    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "openbank: redis answered \"%*s\" to a lease of \"%V\"",
                      ngx_min(reply->len, 200), reply->str, &l->sn.str);
    }

    if (!ngx_http_openbank_lease_on) {
        /* the worker exits, the lease was freed with the others */
        ngx_free(lc);
        ngx_free(l);
        return;
    }

    if (!found) {
        /*
         * No answer: what was merged or given back may have been applied
         * or not.  Never counted twice, nor admitted twice: merges are
         * kept to be sent again only when Redis said no (an error), and
         * units given back are not taken back.
         */

        if (reply != NULL) {
            l->apart += lc->merged;
        }

        ngx_free(lc);
        ngx_http_openbank_lease_wake(l, 1);
        return;
    }

    n = reply->element[0]->integer;
    x = reply->element[1]->integer > 0 ? reply->element[1]->integer : 0;
    want = lc->want;

    ngx_free(lc);

    l->heard = 1;
    l->left += n;

    if (l->kind == NGX_HTTP_OPENBANK_CLUSTER_RATE) {
        /* the next unit: when tat + T - now <= burst * T */
        l->wait_us = (x + l->limit > l->burst * l->limit)
                     ? x + l->limit - l->burst * l->limit : 0;
    } else {
        l->used = x;
        l->wait_us = 0;
    }

    /* none granted of what was asked for (a give-back asks none) */

    if (n == 0 && want) {
        l->dry_until = ngx_current_msec + (l->kind
                                       == NGX_HTTP_OPENBANK_CLUSTER_RATE
                                       ? ngx_min(l->wait_us / 1000 + 1,
                                                 NGX_HTTP_OPENBANK_LEASE_DRY)
                                       : NGX_HTTP_OPENBANK_LEASE_DRY);
    }

    ngx_http_openbank_lease_wake(l, 0);
}


/* the waiting requests run their check again */

static void
ngx_http_openbank_lease_wake(ngx_http_openbank_lease_t *l, ngx_uint_t failed)
{
    ngx_queue_t                     *q, waiters;
    ngx_connection_t                *c;
    ngx_http_request_t              *r;
    ngx_http_openbank_lease_wait_t  *w;

    if (ngx_queue_empty(&l->waiters)) {
        return;
    }

    /* a resumed request may wait again, on the same lease */

    waiters = l->waiters;
    waiters.next->prev = &waiters;
    waiters.prev->next = &waiters;
    ngx_queue_init(&l->waiters);

    while (!ngx_queue_empty(&waiters)) {
        q = ngx_queue_head(&waiters);
        ngx_queue_remove(q);

        w = ngx_queue_data(q, ngx_http_openbank_lease_wait_t, queue);

        w->waiting = 0;
        w->answered = 1;
        w->failed = failed;

        r = w->r;
        c = r->connection;

        r->write_event_handler = w->write_event_handler;

        ngx_http_core_run_phases(r);
        ngx_http_run_posted_requests(c);
    }
}


/* the request ended while it waited */

static void
ngx_http_openbank_lease_cleanup(void *data)
{
    ngx_http_openbank_lease_req_t  *lr = data;

    ngx_uint_t  i;

    for (i = 0; i < 2; i++) {
        if (lr->wait[i].waiting) {
            ngx_queue_remove(&lr->wait[i].queue);
            lr->wait[i].waiting = 0;
        }
    }
}


/*
 * Every 100 ms: what a lease left idle holds goes back, what was
 * admitted while Redis was away is added to it, a lease long unused is
 * forgotten; at shutdown (a reload, a stop), everything goes back.
 */

static void
ngx_http_openbank_lease_tick(ngx_event_t *ev)
{
    uint64_t                    back;
    ngx_uint_t                  again;
    ngx_msec_t                  now, idle;
    ngx_queue_t                *q, *next;
    ngx_http_openbank_lease_t  *l;

    static ngx_uint_t           exit_ticks;

    now = ngx_current_msec;
    again = 0;

    for (q = ngx_queue_head(&ngx_http_openbank_lease_queue);
         q != ngx_queue_sentinel(&ngx_http_openbank_lease_queue);
         q = next)
    {
        next = ngx_queue_next(q);
        l = ngx_queue_data(q, ngx_http_openbank_lease_t, queue);

        if (l->pending) {
            again = 1;
            continue;
        }

        idle = now - l->used_at;

        if (l->apart) {
            back = l->apart;
            l->apart = 0;

            if (ngx_http_openbank_lease_send(l, 0, 0, back) != NGX_OK
                && !ngx_exiting)
            {
                l->apart = back;
            }

            continue;
        }

        if (l->left
            && (ngx_exiting
                || idle >= (l->kind == NGX_HTTP_OPENBANK_CLUSTER_RATE
                            ? NGX_HTTP_OPENBANK_LEASE_IDLE_RATE
                            : NGX_HTTP_OPENBANK_LEASE_IDLE_QUOTA)))
        {
            back = l->left;
            l->left = 0;

            /* when it cannot go back, Redis forgets it with the key */

            if (ngx_http_openbank_lease_send(l, 0, back, 0) != NGX_OK
                && !ngx_exiting)
            {
                l->left = back;
            }

            continue;
        }

        if (l->left == 0 && ngx_queue_empty(&l->waiters)
            && idle >= NGX_HTTP_OPENBANK_LEASE_FORGET)
        {
            ngx_queue_remove(q);
            ngx_rbtree_delete(&ngx_http_openbank_leases, &l->sn.node);
            ngx_free(l);
        }
    }

    if (ngx_terminate) {
        return;
    }

    if (ngx_exiting) {
        /*
         * What was sent holds the worker until it is answered (the
         * calls' timers are not cancelable); a block that came back
         * meanwhile goes back at the next tick, for at most 2 s.
         */

        if (!again || ++exit_ticks > 20) {
            return;
        }
    }

    ngx_add_timer(ev, NGX_HTTP_OPENBANK_LEASE_TICK);
}
