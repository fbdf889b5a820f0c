
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Idempotency keys cluster-wide (docs/cluster.md, "Idempotency keys"):
 * with "openbank_cluster", the record of a key is a hash of Redis,
 * "ob:idem:{PARTNER}:KEY", with its fingerprint, the owner (this
 * gateway's token for the request at the bank), the owner's lease and,
 * once the bank answered, the kept answer.  Three scripts run on it:
 * "take" (the state machine: new, another fingerprint, the replay, in
 * flight elsewhere, or the takeover of a lapsed lease), "store" (the
 * answer, only while still the owner) and "lease" (renewed while at the
 * bank, or released).  ngx_http_openbank_idempotency.c calls these
 * after its own zone's look and before and after its own journal.  An
 * answer Redis does not take at once waits in the worker, which tries
 * "store" again and renews the lease until Redis has it (bounded).
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_cluster.h>
#include <ngx_http_openbank_idempotency.h>
#include <ngx_http_openbank_redis.h>

#include <openssl/rand.h>


/*
 * The owner's lease: short when the key is taken (a take that Redis ran
 * after the gateway gave up waiting for it holds the key that long at
 * most), 10 s from the first renewal on, renewed while the request is at
 * the bank.  A gateway that dies loses its keys when the lease lapses.
 */
#define NGX_HTTP_OPENBANK_IDEM_FIRST_RENEW  1000
#define NGX_HTTP_OPENBANK_IDEM_RENEW        3000

/*
 * An answer Redis did not take is tried again every 200 ms for 60 s at
 * most (or the record's life), its lease renewed meanwhile; at most 512
 * of them wait in a worker (an answer is 20 KB at most).
 */
#define NGX_HTTP_OPENBANK_IDEM_RETRY        200
#define NGX_HTTP_OPENBANK_IDEM_RETRY_FOR    60000
#define NGX_HTTP_OPENBANK_IDEM_RETRY_MAX    512

static ngx_str_t  ngx_http_openbank_idem_first_ms = ngx_string("2000");
static ngx_str_t  ngx_http_openbank_idem_lease_ms = ngx_string("10000");


/*
 * KEYS[1] the record; ARGV: fingerprint, owner, lease (ms), time to
 * live (ms).  { 0 } taken, { 1 } another fingerprint, { 2, answer, its
 * time to live (ms) }, { 3 } in flight elsewhere, { 4 } taken over from
 * a lapsed lease.
 */

static ngx_http_openbank_cluster_script_t  ngx_http_openbank_idem_take = {
    ngx_string(
    "local v = redis.call('HMGET', KEYS[1], 'fp', 'owner', 'lease', 'resp')\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "if not v[1] then\n"
    "  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'owner', ARGV[2],\n"
    "             'lease', now + tonumber(ARGV[3]))\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
    "  return { 0 }\n"
    "end\n"
    "if v[1] ~= ARGV[1] then return { 1 } end\n"
    "if v[4] then return { 2, v[4], redis.call('PTTL', KEYS[1]) } end\n"
    "if v[2] and v[2] ~= '' and tonumber(v[3] or 0) > now then\n"
    "  return { 3 }\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'owner', ARGV[2],\n"
    "           'lease', now + tonumber(ARGV[3]))\n"
    "return { 4 }\n"),
    { 0 }
};


/*
 * KEYS[1]; ARGV: owner, answer.  1 kept (or already kept: a store that
 * Redis ran after the gateway gave up waiting for it, then retried),
 * 0 no longer the owner.
 */

static ngx_http_openbank_cluster_script_t  ngx_http_openbank_idem_store = {
    ngx_string(
    "local v = redis.call('HMGET', KEYS[1], 'owner', 'resp')\n"
    "if v[2] then\n"
    "  if v[2] == ARGV[2] then return 1 end\n"
    "  return 0\n"
    "end\n"
    "if v[1] ~= ARGV[1] then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'resp', ARGV[2], 'owner', '')\n"
    "return 1\n"),
    { 0 }
};


/*
 * KEYS[1]; ARGV: owner, lease (ms; "0": released, the record goes).
 * 1 done, 0 no longer the owner (or answered).
 */

static ngx_http_openbank_cluster_script_t  ngx_http_openbank_idem_lease = {
    ngx_string(
    "local v = redis.call('HMGET', KEYS[1], 'owner', 'resp')\n"
    "if v[1] ~= ARGV[1] or v[2] then return 0 end\n"
    "if ARGV[2] == '0' then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  return 1\n"
    "end\n"
    "local t = redis.call('TIME')\n"
    "redis.call('HSET', KEYS[1], 'lease', tonumber(t[1]) * 1000\n"
    "           + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2]))\n"
    "return 1\n"),
    { 0 }
};


static ngx_http_openbank_cluster_script_t  *ngx_http_openbank_idem_scripts[] =
{
    &ngx_http_openbank_idem_take,
    &ngx_http_openbank_idem_store,
    &ngx_http_openbank_idem_lease,
    NULL
};


struct ngx_http_openbank_idem_wait_s {
    ngx_http_openbank_idem_cluster_t  *ci;      /* NULL: the request ended */
    ngx_http_openbank_idem_kept_pt     handler;
    void                              *data;
    ngx_queue_t                        queue;   /* while retried */
    ngx_str_t                          rkey;
    ngx_str_t                          owner;
    ngx_str_t                          answer;
    uint64_t                           until;   /* given up then, ms */
    uint64_t                           renewed; /* the lease, ms */
    ngx_uint_t                         tries;
    unsigned                           queued:1;
    unsigned                           sending:1;
    /* the key, the owner and the answer follow */
};


/* this process's part of the owner tokens: random, then a sequence */

static u_char      ngx_http_openbank_idem_token[16];
static ngx_uint_t  ngx_http_openbank_idem_token_set;
static uint32_t    ngx_http_openbank_idem_owner_seq;

/* the answers of this worker that Redis has not taken yet */

static ngx_queue_t  ngx_http_openbank_idem_retries;
static ngx_uint_t   ngx_http_openbank_idem_n_retries;
static ngx_uint_t   ngx_http_openbank_idem_exiting;
static ngx_event_t  ngx_http_openbank_idem_retry_ev;


static void ngx_http_openbank_cluster_idem_taken(void *data,
    redisReply *reply);
static void ngx_http_openbank_cluster_idem_renew(ngx_event_t *ev);
static void ngx_http_openbank_cluster_idem_stored(void *data,
    redisReply *reply);
static void ngx_http_openbank_cluster_idem_ignore(void *data,
    redisReply *reply);
static ngx_int_t ngx_http_openbank_cluster_idem_lease_call(ngx_str_t *rkey,
    ngx_str_t *owner, ngx_str_t *ms);
static ngx_int_t ngx_http_openbank_cluster_idem_store_call(
    ngx_http_openbank_idem_wait_t *w, ngx_http_openbank_cluster_pt handler);
static ngx_uint_t ngx_http_openbank_cluster_idem_stored_is(redisReply *reply);
static ngx_int_t ngx_http_openbank_cluster_idem_retry(
    ngx_http_openbank_idem_wait_t *w);
static void ngx_http_openbank_cluster_idem_tick(ngx_event_t *ev);
static void ngx_http_openbank_cluster_idem_retried(void *data,
    redisReply *reply);
static void ngx_http_openbank_cluster_idem_done(
    ngx_http_openbank_idem_wait_t *w, const char *why);


/* at load: the SHA1 of each script, for EVALSHA */

ngx_int_t
ngx_http_openbank_cluster_idem_init(ngx_conf_t *cf)
{
    ngx_http_openbank_cluster_script_t  **s;

    for (s = ngx_http_openbank_idem_scripts; *s; s++) {
        if ((*s)->sha1[0] == '\0') {
            ngx_http_openbank_cluster_script_init(*s);
        }
    }

    return NGX_OK;
}


/*
 * The request's key in Redis and its owner token: "key" is the zone's
 * (PARTNER '\0' KEY).
 */

static ngx_int_t
ngx_http_openbank_cluster_idem_prepare(ngx_http_request_t *r,
    ngx_http_openbank_idem_cluster_t *ci, ngx_str_t *key, size_t partner_len,
    u_char *fingerprint, uint64_t expire)
{
    u_char    *p;
    uint64_t   now;

    if (!ngx_http_openbank_idem_token_set) {
        if (RAND_bytes(ngx_http_openbank_idem_token, 8) != 1) {
            return NGX_ERROR;
        }

        ngx_http_openbank_idem_token_set = 1;
    }

    ci->rkey.len = sizeof("ob:idem:{}:") - 1 + key->len - 1;
    ci->rkey.data = ngx_pnalloc(r->pool, ci->rkey.len);
    if (ci->rkey.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(ci->rkey.data, "ob:idem:{%*s}:", partner_len, key->data);
    ngx_memcpy(p, key->data + partner_len + 1, key->len - partner_len - 1);

    p = ngx_hex_dump(ci->owner_data, ngx_http_openbank_idem_token, 8);
    p = ngx_sprintf(p, "-%P-%uD", ngx_pid,
                    ++ngx_http_openbank_idem_owner_seq);
    ci->owner.data = ci->owner_data;
    ci->owner.len = p - ci->owner_data;

    ci->fingerprint.data = fingerprint;
    ci->fingerprint.len = NGX_HTTP_OPENBANK_HASH_LEN;

    now = ngx_http_openbank_now_ms();

    ci->expire = expire;

    ci->ttl.data = ci->ttl_data;
    ci->ttl.len = ngx_sprintf(ci->ttl_data, "%uL",
                              expire > now ? expire - now : 1)
                  - ci->ttl_data;

    ci->r = r;

    return NGX_OK;
}


/*
 * The take: NGX_AGAIN while the request waits (the check runs again,
 * resumed by the phases, and finds ci->answered), NGX_BUSY when Redis
 * cannot answer now, NGX_ERROR.
 */

ngx_int_t
ngx_http_openbank_cluster_idem_take(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_idem_cluster_t *ci,
    ngx_str_t *key, size_t partner_len, u_char *fingerprint, uint64_t expire)
{
    ngx_int_t  rc;
    ngx_str_t  argv[5];

    if (ngx_http_openbank_cluster_idem_prepare(r, ci, key, partner_len,
                                               fingerprint, expire)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    argv[0] = ci->rkey;
    argv[1] = ci->fingerprint;
    argv[2] = ci->owner;
    argv[3] = ngx_http_openbank_idem_first_ms;
    argv[4] = ci->ttl;

    ci->answered = 0;
    ci->outcome = NGX_HTTP_OPENBANK_IDEM_CLUSTER_FAILED;

    rc = ngx_http_openbank_cluster_request(r, ctx, NULL, &ci->rkey,
                                           &ngx_http_openbank_idem_take, 1,
                                           5, argv,
                                           ngx_http_openbank_cluster_idem_taken,
                                           ci);

    if (rc == NGX_AGAIN) {
        ci->asked = 1;
    }

    return rc;
}


static void
ngx_http_openbank_cluster_idem_taken(void *data, redisReply *reply)
{
    ngx_http_openbank_idem_cluster_t  *ci = data;

    redisReply  *e;

    ci->answered = 1;
    ci->outcome = NGX_HTTP_OPENBANK_IDEM_CLUSTER_FAILED;

    if (reply == NULL) {
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[0]->integer < 0
        || reply->element[0]->integer > NGX_HTTP_OPENBANK_IDEM_CLUSTER_TAKEN)
    {
        ngx_log_error(NGX_LOG_ERR, ci->r->connection->log, 0,
                      "openbank: unexpected answer of redis to an "
                      "idempotency key%s%*s",
                      reply->type == REDIS_REPLY_ERROR ? ": " : "",
                      reply->type == REDIS_REPLY_ERROR
                      ? ngx_min(reply->len, 200) : 0,
                      reply->type == REDIS_REPLY_ERROR ? reply->str : "");
        return;
    }

    if (reply->element[0]->integer == NGX_HTTP_OPENBANK_IDEM_CLUSTER_REPLAY)
    {
        if (reply->elements < 2) {
            return;
        }

        e = reply->element[1];

        if (e->type != REDIS_REPLY_STRING || e->len == 0) {
            return;
        }

        /* hiredis frees the reply: the answer is copied */

        ci->response = ngx_pnalloc(ci->r->pool, e->len);
        if (ci->response == NULL) {
            return;
        }

        ngx_memcpy(ci->response, e->str, e->len);
        ci->response_len = e->len;

        if (reply->elements > 2
            && reply->element[2]->type == REDIS_REPLY_INTEGER
            && reply->element[2]->integer > 0)
        {
            ci->ttl_ms = (uint64_t) reply->element[2]->integer;
        }
    }

    ci->outcome = (ngx_uint_t) reply->element[0]->integer;
}


/* while the request is at the bank, its lease is renewed */

void
ngx_http_openbank_cluster_idem_hold(ngx_http_openbank_idem_cluster_t *ci)
{
    ci->owner_of = 1;

    ci->renew.handler = ngx_http_openbank_cluster_idem_renew;
    ci->renew.data = ci;
    ci->renew.log = ci->r->connection->log;
    ci->renew.cancelable = 1;

    ngx_add_timer(&ci->renew, NGX_HTTP_OPENBANK_IDEM_FIRST_RENEW);
}


static void
ngx_http_openbank_cluster_idem_renew(ngx_event_t *ev)
{
    ngx_http_openbank_idem_cluster_t  *ci = ev->data;

    /* a worker that is shutting down still serves the request */

    if (!ci->owner_of || ngx_terminate) {
        return;
    }

    (void) ngx_http_openbank_cluster_idem_lease_call(&ci->rkey, &ci->owner,
                                            &ngx_http_openbank_idem_lease_ms);

    ngx_add_timer(&ci->renew, NGX_HTTP_OPENBANK_IDEM_RENEW);
}


static ngx_int_t
ngx_http_openbank_cluster_idem_lease_call(ngx_str_t *rkey, ngx_str_t *owner,
    ngx_str_t *ms)
{
    ngx_str_t  argv[3];

    argv[0] = *rkey;
    argv[1] = *owner;
    argv[2] = *ms;

    return ngx_http_openbank_cluster_call(rkey,
                                          &ngx_http_openbank_idem_lease, 1,
                                          3, argv,
                                          ngx_http_openbank_cluster_idem_ignore,
                                          NULL);
}


static void
ngx_http_openbank_cluster_idem_ignore(void *data, redisReply *reply)
{
}


/* the request does not keep its key: Redis's record goes too */

void
ngx_http_openbank_cluster_idem_release(ngx_http_openbank_idem_cluster_t *ci)
{
    ngx_str_t  ms;

    if (ci->renew.timer_set) {
        ngx_del_timer(&ci->renew);
    }

    if (!ci->owner_of) {
        return;
    }

    ci->owner_of = 0;

    ngx_str_set(&ms, "0");

    (void) ngx_http_openbank_cluster_idem_lease_call(&ci->rkey, &ci->owner,
                                                     &ms);
}


/*
 * The request ended: nothing of it is touched again.  If it ended while
 * its take was at Redis, the take may have made it the owner: the
 * release that follows (ngx_http_openbank_idempotency_cleanup()) is sent
 * all the same, and does nothing if it was not.
 */

void
ngx_http_openbank_cluster_idem_cleanup(ngx_http_openbank_idem_cluster_t *ci)
{
    if (ci->renew.timer_set) {
        ngx_del_timer(&ci->renew);
    }

    if (ci->asked && !ci->answered) {
        ci->owner_of = 1;
    }

    if (ci->wait) {
        ci->wait->ci = NULL;
        ci->wait = NULL;
    }
}


/*
 * The answer, durable in this gateway's journal, goes to Redis while
 * this request still owns the key; "handler" is called once Redis
 * answered (or did not within the timeout), unless the request ended
 * meanwhile.  NGX_DECLINED: nothing sent now (not the owner, or Redis
 * unavailable): the caller goes on at once.  An answer that Redis does
 * not take is tried again from a timer, with its own copy of what the
 * store needs (ngx_http_openbank_cluster_idem_retry()).
 */

ngx_int_t
ngx_http_openbank_cluster_idem_keep(ngx_http_openbank_idem_cluster_t *ci,
    u_char *response, size_t len, ngx_http_openbank_idem_kept_pt handler,
    void *data)
{
    u_char                         *p;
    ngx_http_openbank_idem_wait_t  *w;

    if (ci->renew.timer_set) {
        ngx_del_timer(&ci->renew);
    }

    if (!ci->owner_of) {
        return NGX_DECLINED;
    }

    ci->owner_of = 0;

    /* outlives the request if it ends while Redis is asked */

    w = ngx_alloc(sizeof(ngx_http_openbank_idem_wait_t) + ci->rkey.len
                  + ci->owner.len + len,
                  ci->r->connection->log);
    if (w == NULL) {
        return NGX_DECLINED;
    }

    ngx_memzero(w, sizeof(ngx_http_openbank_idem_wait_t));

    w->ci = ci;
    w->handler = handler;
    w->data = data;

    p = (u_char *) (w + 1);

    w->rkey.data = p;
    w->rkey.len = ci->rkey.len;
    p = ngx_cpymem(p, ci->rkey.data, ci->rkey.len);

    w->owner.data = p;
    w->owner.len = ci->owner.len;
    p = ngx_cpymem(p, ci->owner.data, ci->owner.len);

    w->answer.data = p;
    w->answer.len = len;
    ngx_memcpy(p, response, len);

    w->until = ngx_http_openbank_now_ms() + NGX_HTTP_OPENBANK_IDEM_RETRY_FOR;

    if (ci->expire && ci->expire < w->until) {
        w->until = ci->expire;
    }

    if (ngx_http_openbank_cluster_idem_store_call(w,
                                          ngx_http_openbank_cluster_idem_stored)
        != NGX_OK)
    {
        w->ci = NULL;

        if (ngx_http_openbank_cluster_idem_retry(w) != NGX_OK) {
            ngx_log_error(NGX_LOG_WARN, ci->r->connection->log, 0,
                          "openbank: the answer to an idempotency key is "
                          "kept by this gateway only: redis is unavailable "
                          "and %ui answers wait for it already",
                          ngx_http_openbank_idem_n_retries);
            ngx_http_openbank_cluster_idem_count(
                                  NGX_HTTP_OPENBANK_CLUSTER_IDEM_LOST, 1);
            ngx_free(w);
        }

        return NGX_DECLINED;
    }

    ci->wait = w;

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_cluster_idem_store_call(ngx_http_openbank_idem_wait_t *w,
    ngx_http_openbank_cluster_pt handler)
{
    ngx_str_t  argv[3];

    argv[0] = w->rkey;
    argv[1] = w->owner;
    argv[2] = w->answer;

    return ngx_http_openbank_cluster_call(&w->rkey,
                                          &ngx_http_openbank_idem_store, 1, 3,
                                          argv, handler, w);
}


/* 1: Redis has the answer, 0: the key is no longer ours, 2: try again */

static ngx_uint_t
ngx_http_openbank_cluster_idem_stored_is(redisReply *reply)
{
    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        return 2;
    }

    return reply->integer == 1 ? 1 : 0;
}


static void
ngx_http_openbank_cluster_idem_stored(void *data, redisReply *reply)
{
    ngx_http_openbank_idem_wait_t  *w = data;

    ngx_log_t                         *log;
    ngx_uint_t                         is;
    ngx_http_openbank_idem_cluster_t  *ci;

    ci = w->ci;
    w->ci = NULL;

    log = ci ? ci->r->connection->log : ngx_cycle->log;

    is = ngx_http_openbank_cluster_idem_stored_is(reply);

    if (is == 0) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "openbank: the answer to an idempotency key is kept "
                      "by this gateway only: its key was taken over or "
                      "released");
        ngx_http_openbank_cluster_idem_count(
                                  NGX_HTTP_OPENBANK_CLUSTER_IDEM_LOST, 1);

    } else if (is == 2 && ngx_http_openbank_cluster_idem_retry(w) != NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "openbank: the answer to an idempotency key is kept "
                      "by this gateway only: redis did not take it in time "
                      "and %ui answers wait for it already",
                      ngx_http_openbank_idem_n_retries);
        ngx_http_openbank_cluster_idem_count(
                                  NGX_HTTP_OPENBANK_CLUSTER_IDEM_LOST, 1);
    }

    if (ci) {
        ci->wait = NULL;
        w->handler(w->data);
    }

    if (!w->queued) {
        ngx_free(w);
    }
}


/*
 * An answer Redis did not take waits in this worker's queue: the owner's
 * lease is renewed at once and then every 3 s (other gateways answer its
 * key 409, in flight, instead of taking it over), the store is tried
 * every 200 ms until Redis has it or w->until; NGX_DECLINED when the
 * queue is full or the worker ends.
 */

static ngx_int_t
ngx_http_openbank_cluster_idem_retry(ngx_http_openbank_idem_wait_t *w)
{
    if (ngx_http_openbank_idem_exiting || ngx_exiting || ngx_terminate
        || ngx_http_openbank_idem_n_retries
           >= NGX_HTTP_OPENBANK_IDEM_RETRY_MAX)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_openbank_idem_retries.next == NULL) {
        ngx_queue_init(&ngx_http_openbank_idem_retries);

        ngx_http_openbank_idem_retry_ev.handler =
                                           ngx_http_openbank_cluster_idem_tick;
        ngx_http_openbank_idem_retry_ev.data =
                                        &ngx_http_openbank_redis_no_connection;
        ngx_http_openbank_idem_retry_ev.log = ngx_cycle->log;

        /* not cancelable: a worker that quits gives it a last try */
        ngx_http_openbank_idem_retry_ev.cancelable = 0;
    }

    ngx_queue_insert_tail(&ngx_http_openbank_idem_retries, &w->queue);
    ngx_http_openbank_idem_n_retries++;
    w->queued = 1;
    w->sending = 0;

    ngx_http_openbank_cluster_idem_count(NGX_HTTP_OPENBANK_CLUSTER_IDEM_WAITING,
                                         1);

    if (ngx_http_openbank_cluster_idem_lease_call(&w->rkey, &w->owner,
                                            &ngx_http_openbank_idem_lease_ms)
        == NGX_OK)
    {
        w->renewed = ngx_http_openbank_now_ms();
    }

    if (!ngx_http_openbank_idem_retry_ev.timer_set) {
        ngx_add_timer(&ngx_http_openbank_idem_retry_ev,
                      NGX_HTTP_OPENBANK_IDEM_RETRY);
    }

    return NGX_OK;
}


/*
 * Every 200 ms while answers wait.  A worker that quits (a reload, a
 * stop) gives each one last try, bounded by the cluster's shutdown wait
 * (ngx_http_openbank_cluster_call()), and the timer is not set again.
 */

static void
ngx_http_openbank_cluster_idem_tick(ngx_event_t *ev)
{
    uint64_t                        now;
    ngx_uint_t                      last;
    ngx_queue_t                    *q, *next;
    ngx_http_openbank_idem_wait_t  *w;

    now = ngx_http_openbank_now_ms();
    last = (ngx_exiting || ngx_terminate || ngx_http_openbank_idem_exiting);

    for (q = ngx_queue_head(&ngx_http_openbank_idem_retries);
         q != ngx_queue_sentinel(&ngx_http_openbank_idem_retries);
         q = next)
    {
        next = ngx_queue_next(q);
        w = ngx_queue_data(q, ngx_http_openbank_idem_wait_t, queue);

        if (w->sending) {
            continue;
        }

        if (now >= w->until) {
            ngx_http_openbank_cluster_idem_done(w,
                                       "redis did not take it within its "
                                       "time; its lease lapses");
            continue;
        }

        if (!last && now - w->renewed >= NGX_HTTP_OPENBANK_IDEM_RENEW
            && ngx_http_openbank_cluster_idem_lease_call(&w->rkey, &w->owner,
                                            &ngx_http_openbank_idem_lease_ms)
               == NGX_OK)
        {
            w->renewed = now;
        }

        w->tries++;

        if (ngx_http_openbank_cluster_idem_store_call(w,
                                        ngx_http_openbank_cluster_idem_retried)
            == NGX_OK)
        {
            w->sending = 1;
            continue;
        }

        if (last) {
            ngx_http_openbank_cluster_idem_done(w,
                                       "redis is unavailable as the worker "
                                       "ends");
        }
    }

    if (!last && !ngx_queue_empty(&ngx_http_openbank_idem_retries)) {
        ngx_add_timer(ev, NGX_HTTP_OPENBANK_IDEM_RETRY);
    }
}


static void
ngx_http_openbank_cluster_idem_retried(void *data, redisReply *reply)
{
    ngx_http_openbank_idem_wait_t  *w = data;

    w->sending = 0;

    switch (ngx_http_openbank_cluster_idem_stored_is(reply)) {

    case 1:
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "openbank: the answer to an idempotency key is in "
                      "redis, at try %ui", w->tries + 1);
        ngx_http_openbank_cluster_idem_count(
                                  NGX_HTTP_OPENBANK_CLUSTER_IDEM_RETRIED, 1);
        ngx_http_openbank_cluster_idem_done(w, NULL);
        return;

    case 0:
        ngx_http_openbank_cluster_idem_done(w, "its key was taken over or "
                                            "released");
        return;

    default:
        if (ngx_exiting || ngx_terminate || ngx_http_openbank_idem_exiting) {
            ngx_http_openbank_cluster_idem_done(w,
                                       "redis did not take it as the worker "
                                       "ends");
        }

        return;
    }
}


/* out of the queue: kept in Redis (why NULL), or given up with a [warn] */

static void
ngx_http_openbank_cluster_idem_done(ngx_http_openbank_idem_wait_t *w,
    const char *why)
{
    if (why != NULL) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "openbank: the answer to an idempotency key is kept "
                      "by this gateway only: %s", why);
        ngx_http_openbank_cluster_idem_count(
                                  NGX_HTTP_OPENBANK_CLUSTER_IDEM_LOST, 1);
    }

    ngx_queue_remove(&w->queue);
    ngx_http_openbank_idem_n_retries--;
    ngx_http_openbank_cluster_idem_count(NGX_HTTP_OPENBANK_CLUSTER_IDEM_WAITING,
                                         -1);

    ngx_free(w);
}


/*
 * The worker ends (before the cluster closes its connections): what was
 * not sent is given up; a store still at Redis is given up by its
 * handler, which the cluster calls as it closes.
 */

void
ngx_http_openbank_cluster_idem_exit(ngx_cycle_t *cycle)
{
    ngx_queue_t                    *q, *next;
    ngx_http_openbank_idem_wait_t  *w;

    ngx_http_openbank_idem_exiting = 1;

    if (ngx_http_openbank_idem_retries.next == NULL) {
        return;
    }

    if (ngx_http_openbank_idem_retry_ev.timer_set) {
        ngx_del_timer(&ngx_http_openbank_idem_retry_ev);
    }

    for (q = ngx_queue_head(&ngx_http_openbank_idem_retries);
         q != ngx_queue_sentinel(&ngx_http_openbank_idem_retries);
         q = next)
    {
        next = ngx_queue_next(q);
        w = ngx_queue_data(q, ngx_http_openbank_idem_wait_t, queue);

        if (!w->sending) {
            ngx_http_openbank_cluster_idem_done(w, "the worker ends");
        }
    }
}
