
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * "openbank_breaker": circuit breakers in front of the bank core
 * (docs/resilience.md).  A breaker is one record of the zone, shared by
 * every worker: its state, and a sliding window of buckets counting the
 * calls, the failed calls (a 5xx of the bank, a timeout, no connection)
 * and the slow ones.  The access phase asks it whether a call may go
 * (one store_update); the log phase reads how the call ended from
 * nginx's upstream state (r->upstream_states) and counts it, which may
 * open or close the breaker (one store_update).
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_breaker.h>
#include <ngx_http_openbank_util.h>


#define NGX_HTTP_OPENBANK_BREAKER_CLOSED     0
#define NGX_HTTP_OPENBANK_BREAKER_OPEN       1
#define NGX_HTTP_OPENBANK_BREAKER_HALF_OPEN  2

#define NGX_HTTP_OPENBANK_BREAKER_NONE       3     /* no transition */


/* what the access phase asks, and what the log phase tells */
#define NGX_HTTP_OPENBANK_BREAKER_ADMIT      0
#define NGX_HTTP_OPENBANK_BREAKER_COUNT      1
#define NGX_HTTP_OPENBANK_BREAKER_GIVE_BACK  2


typedef struct {
    uint64_t                      index;       /* now / width */
    uint32_t                      calls;
    uint32_t                      failures;
    uint32_t                      slow;
    uint32_t                      reserved;
} ngx_http_openbank_bucket_t;


/* the record of a breaker in the zone */

typedef struct {
    uint32_t                      state;
    uint32_t                      generation;  /* one a transition */
    uint64_t                      until;       /* open: half-open then;
                                                  half-open: probes lost */
    uint64_t                      width;       /* of a bucket, ms */
    uint32_t                      probes_taken;
    uint32_t                      probes_ok;
    uint64_t                      refused;
    uint64_t                      transitions[3];  /* by the new state */
    ngx_http_openbank_bucket_t    buckets[NGX_HTTP_OPENBANK_BREAKER_BUCKETS];
} ngx_http_openbank_breaker_rec_t;


/* a request's part in a breaker */

typedef struct ngx_http_openbank_breaker_ctx_s {
    ngx_http_openbank_breaker_t  *breaker;
    uint32_t                      generation;
    unsigned                      probe:1;
    unsigned                      done:1;
} ngx_http_openbank_breaker_ctx_t;


typedef struct {
    ngx_http_openbank_breaker_t  *breaker;
    ngx_uint_t                    kind;        /* ..._ADMIT, _COUNT... */
    uint32_t                      generation;
    uint64_t                      retry;       /* ms, of a refusal */
    ngx_uint_t                    transition;  /* the new state, or NONE */
    ngx_uint_t                    status;      /* of the call counted */
    uint32_t                      calls;       /* the window's, for the */
    uint32_t                      failures;    /* log line */
    uint32_t                      slow_calls;
    unsigned                      probe:1;
    unsigned                      failed:1;
    unsigned                      slow:1;
    unsigned                      refused:1;
} ngx_http_openbank_breaker_op_t;


static ngx_int_t ngx_http_openbank_breaker_param(ngx_conf_t *cf,
    ngx_http_openbank_breaker_t *b, ngx_str_t *param);
static ngx_int_t ngx_http_openbank_breaker_share(ngx_str_t *value,
    ngx_uint_t *share);
static ngx_int_t ngx_http_openbank_breaker_admit(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_breaker_count(
    ngx_http_openbank_store_value_t *sv, void *data);
static void ngx_http_openbank_breaker_to(ngx_http_openbank_breaker_rec_t *rec,
    ngx_http_openbank_breaker_op_t *op, ngx_uint_t state, uint64_t now);
static void ngx_http_openbank_breaker_window(
    ngx_http_openbank_breaker_rec_t *rec, ngx_http_openbank_breaker_t *b,
    uint64_t now, uint32_t *calls, uint32_t *failures, uint32_t *slow);
static void ngx_http_openbank_breaker_transition(ngx_log_t *log,
    ngx_http_openbank_breaker_op_t *op);
static ngx_int_t ngx_http_openbank_breaker_log(ngx_http_request_t *r);


static ngx_str_t  ngx_http_openbank_breaker_states[] = {
    ngx_string("closed"),
    ngx_string("open"),
    ngx_string("half_open")
};


/*
 * openbank_breaker NAME [failures=P%] [slow=TIME:P%] [window=TIME]
 *                       [minimum=N] [open=TIME] [probes=N];   (http)
 * openbank_breaker NAME;                              (location)
 */

char *
ngx_http_openbank_breaker_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_openbank_loc_conf_t *oblcf = conf;

    ngx_int_t                       rc;
    ngx_str_t                      *value;
    ngx_uint_t                      i;
    ngx_http_openbank_named_t      *named;
    ngx_http_openbank_breaker_t    *b;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_openbank_module);

    rc = ngx_http_openbank_named(cf, &obmcf->breakers,
                                 sizeof(ngx_http_openbank_breaker_t),
                                 "breaker", (void **) &oblcf->breaker,
                                 &named);
    if (rc != NGX_OK) {
        return rc == NGX_DONE ? NGX_CONF_OK : NGX_CONF_ERROR;
    }

    b = (ngx_http_openbank_breaker_t *) named;

    b->failures = NGX_CONF_UNSET_UINT;
    b->slow = NGX_CONF_UNSET_MSEC;
    b->window = NGX_CONF_UNSET_MSEC;
    b->minimum = NGX_CONF_UNSET_UINT;
    b->open = NGX_CONF_UNSET_MSEC;
    b->probes = NGX_CONF_UNSET_UINT;

    value = cf->args->elts;

    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_http_openbank_breaker_param(cf, b, &value[i]) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    ngx_conf_init_uint_value(b->failures, 50);
    ngx_conf_init_msec_value(b->window, 10000);
    ngx_conf_init_uint_value(b->minimum, 20);
    ngx_conf_init_msec_value(b->open, 30000);
    ngx_conf_init_uint_value(b->probes, 3);

    if (b->slow == NGX_CONF_UNSET_MSEC) {
        b->slow = 0;
        b->slow_share = 0;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_openbank_breaker_param(ngx_conf_t *cf,
    ngx_http_openbank_breaker_t *b, ngx_str_t *param)
{
    u_char      *eq, *colon;
    ngx_str_t    key, value, time, share;
    ngx_int_t    n;
    ngx_msec_t   ms;

    eq = ngx_strlchr(param->data, param->data + param->len, '=');

    if (eq == NULL) {
        goto unknown;
    }

    key.data = param->data;
    key.len = eq - param->data;
    value.data = eq + 1;
    value.len = param->data + param->len - value.data;

    if (key.len == 8 && ngx_strncmp(key.data, "failures", 8) == 0) {

        if (b->failures != NGX_CONF_UNSET_UINT) {
            goto duplicate;
        }

        if (ngx_http_openbank_breaker_share(&value, &b->failures) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid failures \"%V\": expected a share "
                               "from 1%% to 100%%, such as \"50%%\"", &value);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (key.len == 4 && ngx_strncmp(key.data, "slow", 4) == 0) {

        if (b->slow != NGX_CONF_UNSET_MSEC) {
            goto duplicate;
        }

        colon = ngx_strlchr(value.data, value.data + value.len, ':');

        if (colon) {
            time.data = value.data;
            time.len = colon - value.data;
            share.data = colon + 1;
            share.len = value.data + value.len - share.data;

            ms = ngx_parse_time(&time, 0);
        }

        if (colon == NULL || ms == (ngx_msec_t) NGX_ERROR || ms == 0
            || ms > 3600000
            || ngx_http_openbank_breaker_share(&share, &b->slow_share)
               != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid slow \"%V\": expected a time up to "
                               "1h and a share from 1%% to 100%%, such as "
                               "\"2s:50%%\"", &value);
            return NGX_ERROR;
        }

        b->slow = ms;

        return NGX_OK;
    }

    if ((key.len == 6 && ngx_strncmp(key.data, "window", 6) == 0)
        || (key.len == 4 && ngx_strncmp(key.data, "open", 4) == 0))
    {
        if ((key.len == 6 ? b->window : b->open) != NGX_CONF_UNSET_MSEC) {
            goto duplicate;
        }

        ms = ngx_parse_time(&value, 0);

        if (ms == (ngx_msec_t) NGX_ERROR || ms < 1000 || ms > 3600000) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid %V \"%V\": expected a time from 1s "
                               "to 1h, such as \"10s\"", &key, &value);
            return NGX_ERROR;
        }

        if (key.len == 6) {
            b->window = ms;

        } else {
            b->open = ms;
        }

        return NGX_OK;
    }

    if ((key.len == 7 && ngx_strncmp(key.data, "minimum", 7) == 0)
        || (key.len == 6 && ngx_strncmp(key.data, "probes", 6) == 0))
    {
        if ((key.len == 7 ? b->minimum : b->probes) != NGX_CONF_UNSET_UINT) {
            goto duplicate;
        }

        n = ngx_atoi(value.data, value.len);

        if (n == NGX_ERROR || n < 1 || n > 100000) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid %V \"%V\": expected a number of "
                               "calls from 1 to 100000", &key, &value);
            return NGX_ERROR;
        }

        if (key.len == 7) {
            b->minimum = n;

        } else {
            b->probes = n;
        }

        return NGX_OK;
    }

unknown:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\": expected \"failures=\", "
                       "\"slow=\", \"window=\", \"minimum=\", \"open=\" or "
                       "\"probes=\"", param);
    return NGX_ERROR;

duplicate:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "parameter \"%V\" is duplicate", param);
    return NGX_ERROR;
}


/* "50%": 1 to 100 */

static ngx_int_t
ngx_http_openbank_breaker_share(ngx_str_t *value, ngx_uint_t *share)
{
    ngx_int_t  n;

    if (value->len < 2 || value->data[value->len - 1] != '%') {
        return NGX_ERROR;
    }

    n = ngx_atoi(value->data, value->len - 1);

    if (n == NGX_ERROR || n < 1 || n > 100) {
        return NGX_ERROR;
    }

    *share = n;

    return NGX_OK;
}


/*
 * Once the http block is read: a breaker a location names must be
 * defined; one no location names is a warning (its calls would never be
 * counted).  The log phase counts the calls.
 */

ngx_int_t
ngx_http_openbank_breaker_init(ngx_conf_t *cf,
    ngx_http_openbank_main_conf_t *obmcf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    if (ngx_http_openbank_named_check(cf, &obmcf->breakers, "breaker",
                                      obmcf->shm_zone)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (obmcf->breakers.nelts == 0) {
        return NGX_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_openbank_breaker_log;

    return NGX_OK;
}


/*
 * The check of the access phase, after the idempotency key is taken and
 * before the quota: a call refused here costs no quota, and its key is
 * released with the refusal (docs/resilience.md, "What a refusal
 * costs").
 */

ngx_int_t
ngx_http_openbank_breaker_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    ngx_int_t                         rc;
    ngx_http_openbank_breaker_t      *b;
    ngx_http_openbank_breaker_op_t    op;
    ngx_http_openbank_loc_conf_t     *oblcf;
    ngx_http_openbank_main_conf_t    *obmcf;
    ngx_http_openbank_breaker_ctx_t  *bc;

    if (ctx->breaker) {
        /* this client request was admitted already */
        return NGX_DECLINED;
    }

    oblcf = ngx_http_get_module_loc_conf(r, ngx_http_openbank_module);
    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    b = oblcf->breaker;

    bc = ngx_pcalloc(r->pool, sizeof(ngx_http_openbank_breaker_ctx_t));
    if (bc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&op, sizeof(ngx_http_openbank_breaker_op_t));
    op.breaker = b;
    op.kind = NGX_HTTP_OPENBANK_BREAKER_ADMIT;
    op.transition = NGX_HTTP_OPENBANK_BREAKER_NONE;

    rc = ngx_http_openbank_store_update(obmcf->shm_zone->data,
                                        NGX_HTTP_OPENBANK_TABLE_BREAKER,
                                        &b->named.name,
                                        sizeof(ngx_http_openbank_breaker_rec_t),
                                        0, ngx_http_openbank_breaker_admit,
                                        &op);

    if (rc == NGX_HTTP_OPENBANK_STORE_FULL) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "openbank zone \"%V\" is full: no room for breaker "
                      "\"%V\", request refused",
                      &obmcf->shm_zone->shm.name, &b->named.name);

        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
                                   "the gateway has no room to count this "
                                   "call: try again later");
    }

    ngx_http_openbank_breaker_transition(r->connection->log, &op);

    if (op.refused) {
        ctx->retry_after = (time_t) ((op.retry + 999) / 1000);

        if (ctx->retry_after < 1) {
            ctx->retry_after = 1;
        }

        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        NGX_HTTP_OPENBANK_PROBLEM_CIRCUIT_OPEN,
                                        "the bank core is failing: calls "
                                        "through \"%V\" are stopped; retry "
                                        "in %T s", &b->named.name,
                                        ctx->retry_after);
    }

    bc->breaker = b;
    bc->generation = op.generation;
    bc->probe = op.probe;

    ctx->breaker = bc;

    return NGX_DECLINED;
}


/* under the zone's lock: may this call go? */

static ngx_int_t
ngx_http_openbank_breaker_admit(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_breaker_op_t  *op = data;

    ngx_http_openbank_breaker_t      *b;
    ngx_http_openbank_breaker_rec_t  *rec;

    rec = (ngx_http_openbank_breaker_rec_t *) sv->value;
    b = op->breaker;

    if (rec->state == NGX_HTTP_OPENBANK_BREAKER_OPEN) {

        if (sv->now < rec->until) {
            rec->refused++;
            op->refused = 1;
            op->retry = rec->until - sv->now;
            return NGX_HTTP_OPENBANK_STORE_KEEP;
        }

        ngx_http_openbank_breaker_to(rec, op,
                                     NGX_HTTP_OPENBANK_BREAKER_HALF_OPEN,
                                     sv->now);
    }

    if (rec->state == NGX_HTTP_OPENBANK_BREAKER_HALF_OPEN) {

        /*
         * Probes whose outcome never came (their worker died) are given
         * up after "open": a new round of probes starts.
         */

        if (rec->probes_taken >= b->probes && sv->now >= rec->until) {
            ngx_http_openbank_breaker_to(rec, op,
                                         NGX_HTTP_OPENBANK_BREAKER_HALF_OPEN,
                                         sv->now);
        }

        if (rec->probes_taken >= b->probes) {
            rec->refused++;
            op->refused = 1;
            op->retry = 1000;
            return NGX_HTTP_OPENBANK_STORE_KEEP;
        }

        rec->probes_taken++;
        op->probe = 1;
    }

    op->generation = rec->generation;

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/* a transition, under the lock; logged by the caller once unlocked */

static void
ngx_http_openbank_breaker_to(ngx_http_openbank_breaker_rec_t *rec,
    ngx_http_openbank_breaker_op_t *op, ngx_uint_t state, uint64_t now)
{
    rec->state = (uint32_t) state;
    rec->generation++;
    rec->transitions[state]++;
    rec->probes_taken = 0;
    rec->probes_ok = 0;

    if (state == NGX_HTTP_OPENBANK_BREAKER_CLOSED) {
        rec->until = 0;
        ngx_memzero(rec->buckets, sizeof(rec->buckets));

    } else {
        /* open: until half-open; half-open: until its probes are lost */
        rec->until = now + op->breaker->open;
    }

    op->transition = state;
}


/* under the lock: a call's outcome, or a probe that never went */

static ngx_int_t
ngx_http_openbank_breaker_count(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_breaker_op_t  *op = data;

    uint64_t                          index;
    uint32_t                          calls, failures, slow;
    ngx_http_openbank_breaker_t      *b;
    ngx_http_openbank_bucket_t       *bucket;
    ngx_http_openbank_breaker_rec_t  *rec;

    rec = (ngx_http_openbank_breaker_rec_t *) sv->value;
    b = op->breaker;

    /* a call admitted before the last transition no longer counts */

    if (rec->generation != op->generation) {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    if (rec->state == NGX_HTTP_OPENBANK_BREAKER_HALF_OPEN) {

        if (!op->probe) {
            return NGX_HTTP_OPENBANK_STORE_KEEP;
        }

        if (op->kind == NGX_HTTP_OPENBANK_BREAKER_GIVE_BACK) {
            if (rec->probes_taken) {
                rec->probes_taken--;
            }

            return NGX_HTTP_OPENBANK_STORE_KEEP;
        }

        if (op->failed || op->slow) {
            ngx_http_openbank_breaker_to(rec, op,
                                         NGX_HTTP_OPENBANK_BREAKER_OPEN,
                                         sv->now);
            return NGX_HTTP_OPENBANK_STORE_KEEP;
        }

        if (++rec->probes_ok >= b->probes) {
            ngx_http_openbank_breaker_to(rec, op,
                                         NGX_HTTP_OPENBANK_BREAKER_CLOSED,
                                         sv->now);
        }

        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    if (rec->state != NGX_HTTP_OPENBANK_BREAKER_CLOSED
        || op->kind == NGX_HTTP_OPENBANK_BREAKER_GIVE_BACK)
    {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    /* closed: into the current bucket, then the window's shares */

    if (rec->width != b->window / NGX_HTTP_OPENBANK_BREAKER_BUCKETS) {
        /* a reload changed the window: its buckets start afresh */
        rec->width = b->window / NGX_HTTP_OPENBANK_BREAKER_BUCKETS;
        ngx_memzero(rec->buckets, sizeof(rec->buckets));
    }

    index = sv->now / rec->width;
    bucket = &rec->buckets[index % NGX_HTTP_OPENBANK_BREAKER_BUCKETS];

    if (bucket->index != index) {
        ngx_memzero(bucket, sizeof(ngx_http_openbank_bucket_t));
        bucket->index = index;
    }

    bucket->calls++;
    bucket->failures += op->failed;
    bucket->slow += op->slow;

    ngx_http_openbank_breaker_window(rec, b, sv->now, &calls, &failures,
                                     &slow);

    if (calls >= b->minimum
        && ((uint64_t) failures * 100 >= (uint64_t) b->failures * calls
            || (b->slow
                && (uint64_t) slow * 100 >= (uint64_t) b->slow_share * calls)))
    {
        op->calls = calls;
        op->failures = failures;
        op->slow_calls = slow;

        ngx_http_openbank_breaker_to(rec, op, NGX_HTTP_OPENBANK_BREAKER_OPEN,
                                     sv->now);
    }

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/* the sums of the buckets of the last window */

static void
ngx_http_openbank_breaker_window(ngx_http_openbank_breaker_rec_t *rec,
    ngx_http_openbank_breaker_t *b, uint64_t now, uint32_t *calls,
    uint32_t *failures, uint32_t *slow)
{
    uint64_t     index;
    ngx_uint_t   i;

    *calls = 0;
    *failures = 0;
    *slow = 0;

    if (rec->width == 0
        || rec->width != b->window / NGX_HTTP_OPENBANK_BREAKER_BUCKETS)
    {
        return;
    }

    index = now / rec->width;

    for (i = 0; i < NGX_HTTP_OPENBANK_BREAKER_BUCKETS; i++) {
        if (rec->buckets[i].index + NGX_HTTP_OPENBANK_BREAKER_BUCKETS > index
            && rec->buckets[i].index <= index)
        {
            *calls += rec->buckets[i].calls;
            *failures += rec->buckets[i].failures;
            *slow += rec->buckets[i].slow;
        }
    }
}


static void
ngx_http_openbank_breaker_transition(ngx_log_t *log,
    ngx_http_openbank_breaker_op_t *op)
{
    ngx_http_openbank_breaker_t  *b;

    b = op->breaker;

    switch (op->transition) {

    case NGX_HTTP_OPENBANK_BREAKER_OPEN:

        if (op->kind == NGX_HTTP_OPENBANK_BREAKER_COUNT && op->calls) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "openbank breaker \"%V\" opened: %uD of the "
                          "last %uD calls failed and %uD were slow; calls "
                          "are refused for %M ms", &b->named.name, op->failures,
                          op->calls, op->slow_calls, b->open);

        } else {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "openbank breaker \"%V\" opened again: a probe "
                          "%s (status %ui); calls are refused for %M ms",
                          &b->named.name, op->failed ? "failed" : "was slow",
                          op->status, b->open);
        }

        break;

    case NGX_HTTP_OPENBANK_BREAKER_HALF_OPEN:
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "openbank breaker \"%V\" half-open: %ui probe "
                      "calls may go to the bank", &b->named.name, b->probes);
        break;

    case NGX_HTTP_OPENBANK_BREAKER_CLOSED:
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "openbank breaker \"%V\" closed: %ui probe calls "
                      "succeeded", &b->named.name, b->probes);
        break;

    default: /* NGX_HTTP_OPENBANK_BREAKER_NONE */
        break;
    }
}


/*
 * The log phase: how the call to the bank ended, from nginx's upstream
 * state of its last attempt.  A status of 500 or more is a failure: the
 * bank's own 5xx, and the 502 and 504 nginx records for a connection
 * refused or reset and for a timeout.  A call longer than "slow" is
 * slow.  No attempt (the request was refused after the breaker, or
 * answered without the bank), or a client that went away before the
 * bank answered and before the call was slow, tells nothing: it is not
 * counted, and a probe is given back.
 */

static ngx_int_t
ngx_http_openbank_breaker_log(ngx_http_request_t *r)
{
    ngx_msec_t                        ms;
    ngx_http_openbank_ctx_t          *ctx;
    ngx_http_upstream_state_t        *state;
    ngx_http_openbank_breaker_t      *b;
    ngx_http_openbank_breaker_op_t    op;
    ngx_http_openbank_main_conf_t    *obmcf;
    ngx_http_openbank_breaker_ctx_t  *bc;

    if (r != r->main) {
        return NGX_OK;
    }

    ctx = ngx_http_openbank_find_ctx(r);

    if (ctx == NULL || ctx->breaker == NULL || ctx->breaker->done) {
        return NGX_OK;
    }

    bc = ctx->breaker;
    bc->done = 1;
    b = bc->breaker;

    ngx_memzero(&op, sizeof(ngx_http_openbank_breaker_op_t));
    op.breaker = b;
    op.kind = NGX_HTTP_OPENBANK_BREAKER_GIVE_BACK;
    op.generation = bc->generation;
    op.probe = bc->probe;
    op.transition = NGX_HTTP_OPENBANK_BREAKER_NONE;

    if (r->upstream_states && r->upstream_states->nelts) {
        state = r->upstream_states->elts;
        state += r->upstream_states->nelts - 1;

        ms = state->response_time;
        op.status = state->status;

        if (b->slow && ms != (ngx_msec_t) -1 && ms > b->slow) {
            op.slow = 1;
        }

        if (state->status >= NGX_HTTP_INTERNAL_SERVER_ERROR) {
            op.failed = 1;
        }

        if (state->status || op.slow) {
            op.kind = NGX_HTTP_OPENBANK_BREAKER_COUNT;
        }
    }

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "openbank breaker \"%V\": status %ui, %s%s%s",
                   &b->named.name, op.status,
                   op.kind == NGX_HTTP_OPENBANK_BREAKER_COUNT
                   ? "counted" : "not counted",
                   op.failed ? ", failed" : "", op.slow ? ", slow" : "");

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    (void) ngx_http_openbank_store_update(obmcf->shm_zone->data,
                                          NGX_HTTP_OPENBANK_TABLE_BREAKER,
                                          &b->named.name, 0, 0,
                                          ngx_http_openbank_breaker_count,
                                          &op);

    ngx_http_openbank_breaker_transition(r->connection->log, &op);

    return NGX_OK;
}


/*
 * status: "breakers":[{"name":...,"state":...,...}], inside the status
 * endpoint's store_atomic
 */

#define NGX_HTTP_OPENBANK_BREAKER_JSON_LEN                                   \
    (sizeof("{\"name\":\"\",\"state\":\"half_open\",\"retry_after\":,"       \
            "\"window\":{\"calls\":,\"failures\":,\"slow\":},"               \
            "\"probes\":{\"allowed\":,\"taken\":,\"succeeded\":},"           \
            "\"refused\":,\"transitions\":{\"open\":,\"half_open\":,"        \
            "\"closed\":}},") + 64 + 10 * NGX_INT64_LEN)


size_t
ngx_http_openbank_breaker_status_len(ngx_http_openbank_main_conf_t *obmcf)
{
    return sizeof(",\"breakers\":[]")
           + obmcf->breakers.nelts * NGX_HTTP_OPENBANK_BREAKER_JSON_LEN;
}


u_char *
ngx_http_openbank_breaker_status(u_char *p, ngx_http_openbank_zone_t *zone,
    ngx_http_openbank_main_conf_t *obmcf, uint64_t now)
{
    time_t                            retry;
    uint32_t                          calls, failures, slow;
    ngx_uint_t                        i;
    ngx_http_openbank_breaker_t     **bp;
    ngx_http_openbank_breaker_rec_t   rec;

    bp = obmcf->breakers.elts;

    p = ngx_cpymem(p, ",\"breakers\":[", sizeof(",\"breakers\":[") - 1);

    for (i = 0; i < obmcf->breakers.nelts; i++) {

        if (ngx_http_openbank_store_get(zone, NGX_HTTP_OPENBANK_TABLE_BREAKER,
                                        &bp[i]->named.name, &rec,
                                        sizeof(rec), NULL)
            != (ssize_t) sizeof(rec))
        {
            ngx_memzero(&rec, sizeof(rec));
        }

        ngx_http_openbank_breaker_window(&rec, bp[i], now, &calls, &failures,
                                         &slow);

        retry = 0;

        if (rec.state == NGX_HTTP_OPENBANK_BREAKER_OPEN && rec.until > now) {
            retry = (time_t) ((rec.until - now + 999) / 1000);
        }

        p = ngx_sprintf(p, "%s{\"name\":\"%V\",\"state\":\"%V\","
                        "\"retry_after\":%T,"
                        "\"window\":{\"calls\":%uD,\"failures\":%uD,"
                        "\"slow\":%uD},"
                        "\"probes\":{\"allowed\":%ui,\"taken\":%uD,"
                        "\"succeeded\":%uD},"
                        "\"refused\":%uL,\"transitions\":{\"open\":%uL,"
                        "\"half_open\":%uL,\"closed\":%uL}}",
                        i ? "," : "", &bp[i]->named.name,
                        &ngx_http_openbank_breaker_states[rec.state], retry,
                        calls, failures, slow, bp[i]->probes,
                        rec.probes_taken, rec.probes_ok, rec.refused,
                        rec.transitions[NGX_HTTP_OPENBANK_BREAKER_OPEN],
                        rec.transitions[NGX_HTTP_OPENBANK_BREAKER_HALF_OPEN],
                        rec.transitions[NGX_HTTP_OPENBANK_BREAKER_CLOSED]);
    }

    *p++ = ']';

    return p;
}


/* /metrics: each breaker's state, transitions and refusals */

#define NGX_HTTP_OPENBANK_BREAKER_METRICS_LEN  (6 * (96 + 64 + NGX_INT64_LEN))


size_t
ngx_http_openbank_breaker_metrics_len(ngx_http_openbank_main_conf_t *obmcf)
{
    return 1024 + obmcf->breakers.nelts * NGX_HTTP_OPENBANK_BREAKER_METRICS_LEN;
}


u_char *
ngx_http_openbank_breaker_metrics(u_char *p, ngx_pool_t *pool,
    ngx_http_openbank_zone_t *zone, ngx_http_openbank_main_conf_t *obmcf)
{
    ngx_uint_t                        i, s;
    ngx_http_openbank_breaker_t     **bp;
    ngx_http_openbank_breaker_rec_t  *recs;

    if (obmcf->breakers.nelts == 0) {
        return p;
    }

    bp = obmcf->breakers.elts;

    /* one copy of each, then three families */

    recs = ngx_palloc(pool, obmcf->breakers.nelts * sizeof(*recs));
    if (recs == NULL) {
        return p;
    }

    for (i = 0; i < obmcf->breakers.nelts; i++) {
        if (ngx_http_openbank_store_get(zone, NGX_HTTP_OPENBANK_TABLE_BREAKER,
                                        &bp[i]->named.name, &recs[i],
                                        sizeof(*recs), NULL)
            != (ssize_t) sizeof(*recs))
        {
            ngx_memzero(&recs[i], sizeof(*recs));
        }
    }

    p = ngx_sprintf(p, "# HELP openbank_breaker_state A breaker's state: "
                    "0 closed, 1 open, 2 half-open.\n"
                    "# TYPE openbank_breaker_state gauge\n");

    for (i = 0; i < obmcf->breakers.nelts; i++) {
        p = ngx_sprintf(p, "openbank_breaker_state{breaker=\"%V\"} %uD\n",
                        &bp[i]->named.name, recs[i].state);
    }

    p = ngx_sprintf(p, "# HELP openbank_breaker_transitions_total A "
                    "breaker's transitions, by the state it went to.\n"
                    "# TYPE openbank_breaker_transitions_total counter\n");

    for (i = 0; i < obmcf->breakers.nelts; i++) {
        for (s = 0; s < 3; s++) {
            p = ngx_sprintf(p, "openbank_breaker_transitions_total"
                            "{breaker=\"%V\",to=\"%V\"} %uL\n",
                            &bp[i]->named.name,
                            &ngx_http_openbank_breaker_states[s],
                            recs[i].transitions[s]);
        }
    }

    p = ngx_sprintf(p, "# HELP openbank_breaker_refusals_total Calls a "
                    "breaker refused (503 circuit_open).\n"
                    "# TYPE openbank_breaker_refusals_total counter\n");

    for (i = 0; i < obmcf->breakers.nelts; i++) {
        p = ngx_sprintf(p, "openbank_breaker_refusals_total"
                        "{breaker=\"%V\"} %uL\n",
                        &bp[i]->named.name, recs[i].refused);
    }

    return p;
}
