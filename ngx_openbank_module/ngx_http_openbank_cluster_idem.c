
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
 * after its own zone's look and before and after its own journal.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_cluster.h>
#include <ngx_http_openbank_idempotency.h>

#include <openssl/rand.h>


/*
 * The owner's lease: short when the key is taken (a take that Redis ran
 * after the gateway gave up waiting for it holds the key that long at
 * most), 10 s from the first renewal on, renewed while the request is at
 * the bank.  A gateway that dies loses its keys when the lease lapses.
 */
#define NGX_HTTP_OPENBANK_IDEM_FIRST_RENEW  1000
#define NGX_HTTP_OPENBANK_IDEM_RENEW        3000

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


/* KEYS[1]; ARGV: owner, answer.  1 kept, 0 no longer the owner */

static ngx_http_openbank_cluster_script_t  ngx_http_openbank_idem_store = {
    ngx_string(
    "local v = redis.call('HMGET', KEYS[1], 'owner', 'resp')\n"
    "if v[1] ~= ARGV[1] or v[2] then return 0 end\n"
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


/* this process's part of the owner tokens: random, then a sequence */

static u_char      ngx_http_openbank_idem_token[16];
static ngx_uint_t  ngx_http_openbank_idem_token_set;
static uint32_t    ngx_http_openbank_idem_owner_seq;


static void ngx_http_openbank_cluster_idem_taken(void *data,
    redisReply *reply);
static void ngx_http_openbank_cluster_idem_renew(ngx_event_t *ev);
static void ngx_http_openbank_cluster_idem_stored(void *data,
    redisReply *reply);
static void ngx_http_openbank_cluster_idem_ignore(void *data,
    redisReply *reply);
static ngx_int_t ngx_http_openbank_cluster_idem_lease_call(
    ngx_http_openbank_idem_cluster_t *ci, ngx_str_t *ms);


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

    (void) ngx_http_openbank_cluster_idem_lease_call(ci,
                                            &ngx_http_openbank_idem_lease_ms);

    ngx_add_timer(&ci->renew, NGX_HTTP_OPENBANK_IDEM_RENEW);
}


static ngx_int_t
ngx_http_openbank_cluster_idem_lease_call(ngx_http_openbank_idem_cluster_t *ci,
    ngx_str_t *ms)
{
    ngx_str_t  argv[3];

    argv[0] = ci->rkey;
    argv[1] = ci->owner;
    argv[2] = *ms;

    return ngx_http_openbank_cluster_call(&ci->rkey,
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

    (void) ngx_http_openbank_cluster_idem_lease_call(ci, &ms);
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
 * meanwhile.  NGX_DECLINED: nothing sent (not the owner, or Redis
 * unavailable): the caller goes on at once.
 */

ngx_int_t
ngx_http_openbank_cluster_idem_keep(ngx_http_openbank_idem_cluster_t *ci,
    u_char *response, size_t len, ngx_http_openbank_idem_kept_pt handler,
    void *data)
{
    ngx_int_t                       rc;
    ngx_str_t                       argv[3];
    ngx_http_openbank_idem_wait_t  *w;

    if (ci->renew.timer_set) {
        ngx_del_timer(&ci->renew);
    }

    if (!ci->owner_of) {
        return NGX_DECLINED;
    }

    ci->owner_of = 0;

    /* outlives the request if it ends while Redis is asked */

    w = ngx_alloc(sizeof(ngx_http_openbank_idem_wait_t),
                  ci->r->connection->log);
    if (w == NULL) {
        return NGX_DECLINED;
    }

    w->ci = ci;
    w->handler = handler;
    w->data = data;

    argv[0] = ci->rkey;
    argv[1] = ci->owner;
    argv[2].data = response;
    argv[2].len = len;

    rc = ngx_http_openbank_cluster_call(&ci->rkey,
                                        &ngx_http_openbank_idem_store, 1, 3,
                                        argv,
                                        ngx_http_openbank_cluster_idem_stored,
                                        w);

    if (rc != NGX_OK) {
        ngx_free(w);

        ngx_log_error(NGX_LOG_WARN, ci->r->connection->log, 0,
                      "openbank: the answer to an idempotency key is kept "
                      "by this gateway only: redis is unavailable");

        return NGX_DECLINED;
    }

    ci->wait = w;

    return NGX_OK;
}


static void
ngx_http_openbank_cluster_idem_stored(void *data, redisReply *reply)
{
    ngx_http_openbank_idem_wait_t  *w = data;

    ngx_http_openbank_idem_cluster_t  *ci;

    ci = w->ci;

    if (ci) {
        ci->wait = NULL;

        if (reply == NULL || reply->type != REDIS_REPLY_INTEGER
            || reply->integer != 1)
        {
            ngx_log_error(NGX_LOG_WARN, ci->r->connection->log, 0,
                          "openbank: the answer to an idempotency key is "
                          "kept by this gateway only: %s",
                          reply == NULL ? "redis did not answer in time"
                          : "its key was taken over or released");
        }

        w->handler(w->data);
    }

    ngx_free(w);
}
