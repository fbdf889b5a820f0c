
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Rate limits and quotas.
 *
 * The rate is a GCRA per partner: one record (key: the partner's name)
 * holds the theoretical arrival time "tat" in unix nanoseconds and the
 * cost of one request when it was set.  A request is admitted when
 * max(tat, now) + T - now <= burst * T, so that no more than
 * burst + elapsed / T requests are ever admitted, whatever the workers.
 *
 * A quota is a counter per partner, product and calendar window (key:
 * "partner/product/day|month/window start"), taken last in the pipeline.
 *
 * Neither key holds anything of the configuration: a reload that changes
 * a plan finds the same records (a raised limit gives back exactly the
 * difference; a rate change converts the debt from requests at the old
 * rate to requests at the new one), and a partner removed and added back
 * within a window finds its usage.
 *
 * The records are snapshotted to "<openbank_state>/counters" every
 * "interval" by nginx's cache manager process (never by a worker that
 * serves requests: the file is fsync()ed) and by the master at exit, and
 * restored by the master once, when the zone is new.
 *
 * In cluster mode Redis holds both (ngx_http_openbank_cluster_limit.c,
 * docs/cluster.md): the checks take their units from leases, and fall
 * back to the records here only as the degraded mode says (rate=local:
 * the rate divided by the gateways).
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_cluster.h>
#include <ngx_http_openbank_cluster_limit.h>
#include <ngx_http_openbank_limit.h>
#include <ngx_http_openbank_partner.h>
#include <ngx_http_openbank_state.h>
#include <ngx_http_openbank_util.h>
#include <ngx_http_openbank_usage.h>


#define NGX_HTTP_OPENBANK_NS         1000000000ULL
#define NGX_HTTP_OPENBANK_MS_NS      1000000ULL
#define NGX_HTTP_OPENBANK_KEY_MAX    255
#define NGX_HTTP_OPENBANK_SNAP_HEAD  "openbank-counters 1\n"
#define NGX_HTTP_OPENBANK_SNAP_FILE  "/counters"
#define NGX_HTTP_OPENBANK_SNAP_MAX   (256 * 1024 * 1024)
#define NGX_HTTP_OPENBANK_CAPACITY_MAX  ((uint64_t) 1 << 61)


typedef struct {
    uint64_t                    tat;        /* unix ns: bucket full again */
    uint64_t                    interval;   /* ns per request, when set */
} ngx_http_openbank_rate_t;


typedef struct {
    uint64_t                    used;
} ngx_http_openbank_count_t;


typedef struct {
    uint64_t                    generation; /* bumped on every change */
} ngx_http_openbank_meta_t;


/* what the checks learnt, for the headers */

struct ngx_http_openbank_limits_s {
    ngx_http_openbank_quota_t  *quota;
    uint64_t                    used;
    time_t                      start;      /* the window, unix seconds */
    time_t                      end;

    ngx_uint_t                  remaining;  /* of the rate */
    time_t                      reset;

    time_t                      retry_after;

    void                       *lease;      /* cluster mode: the waits */

    unsigned                    rate_known:1;
    unsigned                    rate_taken:1;
    unsigned                    quota_known:1;
};


/* what a check's handlers share, under the zone's lock */

typedef struct {
    ngx_http_openbank_zone_t     *zone;
    ngx_http_openbank_partner_t  *partner;
    ngx_http_openbank_limits_t   *limits;
    uint64_t                      now;      /* unix ns */
    uint64_t                      t;        /* the rate's interval */
    uint64_t                      b;        /* and capacity, ns */
    uint64_t                      tat;      /* a refused request's */
} ngx_http_openbank_take_t;


/* a snapshot being written */

typedef struct {
    ngx_log_t                    *log;
    u_char                       *buf;
    u_char                       *p;
    size_t                        len;
    uint64_t                      generation;
} ngx_http_openbank_snap_t;


/* a counter read back from a snapshot */

typedef struct {
    uint64_t                      expire;
    uint64_t                      a;
    uint64_t                      b;
    ngx_uint_t                    rate;     /* else a quota */
} ngx_http_openbank_restored_t;


static ngx_http_openbank_limits_t *ngx_http_openbank_get_limits(
    ngx_http_request_t *r, ngx_http_openbank_ctx_t *ctx);
static ngx_int_t ngx_http_openbank_cluster_rate(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_limits_t *limits);
static void ngx_http_openbank_cluster_rate_key(
    ngx_http_openbank_cluster_limit_t *lm, u_char *buf,
    ngx_http_openbank_partner_t *partner);
static ngx_int_t ngx_http_openbank_cluster_quota(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_limits_t *limits,
    time_t now);
static ngx_int_t ngx_http_openbank_quota_refused(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_limits_t *limits,
    time_t now);
static uint64_t ngx_http_openbank_rate_interval(
    ngx_http_openbank_plan_t *plan);
static uint64_t ngx_http_openbank_rate_capacity(
    ngx_http_openbank_plan_t *plan, uint64_t t);
static uint64_t ngx_http_openbank_rate_tat(ngx_http_openbank_rate_t *v,
    uint64_t t, uint64_t now);
static void ngx_http_openbank_rate_state(ngx_http_openbank_plan_t *plan,
    uint64_t tat, uint64_t now, ngx_uint_t *remaining, time_t *reset);
static void ngx_http_openbank_window(ngx_http_openbank_quota_t *quota,
    ngx_int_t tz, time_t now, time_t *start, time_t *end);
static void ngx_http_openbank_civil_from_days(time_t days, ngx_int_t *year,
    ngx_int_t *month);
static void ngx_http_openbank_quota_key(ngx_str_t *key, u_char *buf,
    ngx_http_openbank_partner_t *partner, ngx_http_openbank_quota_t *quota,
    time_t start);
static ngx_int_t ngx_http_openbank_rate_take(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_quota_unit(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_rate_refund(
    ngx_http_openbank_store_value_t *sv, void *data);
static void ngx_http_openbank_peek(ngx_http_openbank_zone_t *zone,
    ngx_http_openbank_partner_t *partner, ngx_http_openbank_limits_t *limits,
    uint64_t now_ms);
static ngx_int_t ngx_http_openbank_peek_atomic(ngx_http_openbank_zone_t *zone,
    void *data);
static void ngx_http_openbank_changed(ngx_http_openbank_zone_t *zone);
static ngx_int_t ngx_http_openbank_generation_bump(
    ngx_http_openbank_store_value_t *sv, void *data);
static uint64_t ngx_http_openbank_generation(ngx_http_openbank_zone_t *zone);
static ngx_int_t ngx_http_openbank_snapshot_atomic(
    ngx_http_openbank_zone_t *zone, void *data);
static ngx_int_t ngx_http_openbank_snapshot_size(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_snapshot_rate(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_snapshot_quota(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_restore_value(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_full(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, const char *what);
static ngx_int_t ngx_http_openbank_snapshot(ngx_log_t *log,
    ngx_uint_t level, ngx_http_openbank_main_conf_t *obmcf);
static void ngx_http_openbank_snapshot_periodic(
    ngx_http_openbank_main_conf_t *obmcf);
static ngx_int_t ngx_http_openbank_snapshot_present(
    ngx_http_openbank_main_conf_t *obmcf);
static u_char *ngx_http_openbank_snapshot_log_handler(ngx_log_t *log,
    u_char *buf, size_t len);
static void ngx_http_openbank_snapshot_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_openbank_restore(ngx_cycle_t *cycle,
    ngx_http_openbank_main_conf_t *obmcf);
static ngx_int_t ngx_http_openbank_load(ngx_log_t *log, ngx_pool_t *pool,
    ngx_str_t *path, ngx_str_t *body);
static ngx_int_t ngx_http_openbank_restore_line(ngx_log_t *log,
    ngx_http_openbank_zone_t *zone, u_char *p, u_char *last,
    uint64_t now_ms);
static ngx_int_t ngx_http_openbank_valid_key(u_char *p, size_t len);
static ngx_int_t ngx_http_openbank_state_file(ngx_pool_t *pool,
    ngx_http_openbank_main_conf_t *obmcf, const char *suffix,
    ngx_str_t *path);
static ngx_http_openbank_main_conf_t *ngx_http_openbank_cycle_conf(
    ngx_cycle_t *cycle);


/* the zone has its counters' meta record (init_module), in the workers too */
static ngx_uint_t                 ngx_http_openbank_meta_made;

static ngx_event_t                ngx_http_openbank_snapshot_event;
static uint64_t                   ngx_http_openbank_written;
static ngx_uint_t                 ngx_http_openbank_snapshot_writer;

/* the periodic snapshot's failures in a row, and when one was last logged */
static ngx_uint_t                 ngx_http_openbank_snapshot_failures;
static time_t                     ngx_http_openbank_snapshot_logged;
static ngx_uint_t                 ngx_http_openbank_prev_failed;

#define NGX_HTTP_OPENBANK_SNAP_QUIET  60    /* seconds between repeats */

static ngx_str_t  ngx_http_openbank_meta_key = ngx_string("counters");


/* the master of the cache manager process that writes the snapshots */
static ngx_pid_t  ngx_http_openbank_master;


static ngx_http_openbank_limits_t *
ngx_http_openbank_get_limits(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    if (ctx->limits == NULL) {
        ctx->limits = ngx_pcalloc(r->main->pool,
                                  sizeof(ngx_http_openbank_limits_t));
    }

    return ctx->limits;
}


/* the rate: right after identify, one critical section */

ngx_int_t
ngx_http_openbank_rate_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    ngx_int_t                       rc;
    ngx_uint_t                      n;
    ngx_http_openbank_plan_t       *plan;
    ngx_http_openbank_take_t        tk;
    ngx_http_openbank_limits_t     *limits;
    ngx_http_openbank_main_conf_t  *obmcf;

    limits = ngx_http_openbank_get_limits(r, ctx);
    if (limits == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    plan = ctx->partner->plan;

    tk.zone = obmcf->shm_zone->data;
    tk.partner = ctx->partner;
    tk.limits = limits;
    tk.t = ngx_http_openbank_rate_interval(plan);
    tk.b = ngx_http_openbank_rate_capacity(plan, tk.t);
    tk.now = ngx_http_openbank_now_ms() * NGX_HTTP_OPENBANK_MS_NS;

    if (obmcf->cluster != NULL && ngx_http_openbank_cluster_on(r)) {
        rc = ngx_http_openbank_cluster_rate(r, ctx, limits);

        if (rc != NGX_DONE) {
            return rc;
        }

        /* rate=local: this gateway's share, rate / nodes, burst / nodes */

        n = ngx_http_openbank_cluster_nodes();

        tk.t = (tk.t > NGX_HTTP_OPENBANK_CAPACITY_MAX / n)
               ? NGX_HTTP_OPENBANK_CAPACITY_MAX : tk.t * n;
        tk.b = ngx_max(plan->burst / n, 1);
        tk.b = (tk.b > NGX_HTTP_OPENBANK_CAPACITY_MAX / tk.t)
               ? NGX_HTTP_OPENBANK_CAPACITY_MAX : tk.b * tk.t;
    }

    rc = ngx_http_openbank_store_update(tk.zone, NGX_HTTP_OPENBANK_TABLE_RATE,
                                        &ctx->partner->name,
                                        sizeof(ngx_http_openbank_rate_t), 0,
                                        ngx_http_openbank_rate_take, &tk);

    if (rc == NGX_HTTP_OPENBANK_STORE_FULL) {
        return ngx_http_openbank_full(r, ctx, "rate");
    }

    limits->rate_known = 1;

    if (rc == NGX_HTTP_OPENBANK_STORE_REFUSE) {
        limits->retry_after = (time_t) ((tk.tat - tk.b - tk.now
                                         + NGX_HTTP_OPENBANK_NS - 1)
                                        / NGX_HTTP_OPENBANK_NS);
        if (limits->retry_after < 1) {
            limits->retry_after = 1;
        }

        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_TOO_MANY_REQUESTS,
                                        NGX_HTTP_OPENBANK_PROBLEM_RATE_LIMITED,
                                        "the plan allows %ui requests per "
                                        "%s: retry in %T s", plan->rate,
                                        plan->period == 1 ? "second"
                                                          : "minute",
                                        limits->retry_after);
    }

    limits->rate_taken = 1;

    return NGX_DECLINED;
}


/* GCRA under the zone's lock: one request's interval, or a refusal */

static ngx_int_t
ngx_http_openbank_rate_take(ngx_http_openbank_store_value_t *sv, void *data)
{
    ngx_http_openbank_take_t  *tk = data;

    uint64_t                   tat;
    ngx_http_openbank_rate_t  *v;

    v = (ngx_http_openbank_rate_t *) sv->value;

    tat = ngx_http_openbank_rate_tat(v, tk->t, tk->now) + tk->t;

    if (tat - tk->now > tk->b) {
        tk->tat = tat;
        ngx_http_openbank_rate_state(tk->partner->plan, tat - tk->t, tk->now,
                                     &tk->limits->remaining,
                                     &tk->limits->reset);
        return NGX_HTTP_OPENBANK_STORE_REFUSE;
    }

    v->tat = tat;
    v->interval = tk->t;
    sv->expire = tat / NGX_HTTP_OPENBANK_MS_NS + 1;

    ngx_http_openbank_changed(tk->zone);

    ngx_http_openbank_rate_state(tk->partner->plan, tat, tk->now,
                                 &tk->limits->remaining, &tk->limits->reset);

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/*
 * The quota: one unit of the product's calendar counter.  This check is
 * the LAST of the pipeline (see ngx_http_openbank_checks[]), so that a
 * call refused by any other check never counts.
 */

ngx_int_t
ngx_http_openbank_quota_take(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    time_t                          now;
    uint64_t                        now_ms;
    ngx_int_t                       rc;
    ngx_str_t                       key;
    ngx_http_openbank_take_t        tk;
    ngx_http_openbank_quota_t      *quota;
    ngx_http_openbank_limits_t     *limits;
    ngx_http_openbank_loc_conf_t   *oblcf;
    ngx_http_openbank_main_conf_t  *obmcf;
    u_char                          buf[NGX_HTTP_OPENBANK_KEY_MAX];

    oblcf = ngx_http_get_module_loc_conf(r, ngx_http_openbank_module);

    quota = ngx_http_openbank_partner_quota(ctx->partner, &oblcf->product);

    if (quota == NULL) {
        /* no quota for this product in the partner's plan: rate only */
        return NGX_DECLINED;
    }

    limits = ngx_http_openbank_get_limits(r, ctx);
    if (limits == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    now_ms = ngx_http_openbank_now_ms();
    now = (time_t) (now_ms / 1000);

    limits->quota = quota;
    ngx_http_openbank_window(quota, obmcf->tz_offset, now, &limits->start,
                             &limits->end);
    ngx_http_openbank_quota_key(&key, buf, ctx->partner, quota,
                                limits->start);

    if (obmcf->cluster != NULL && ngx_http_openbank_cluster_on(r)) {
        return ngx_http_openbank_cluster_quota(r, ctx, limits, now);
    }

    tk.zone = obmcf->shm_zone->data;
    tk.partner = ctx->partner;
    tk.limits = limits;
    tk.now = now_ms * NGX_HTTP_OPENBANK_MS_NS;

    rc = ngx_http_openbank_store_update(tk.zone, NGX_HTTP_OPENBANK_TABLE_QUOTA,
                                        &key,
                                        sizeof(ngx_http_openbank_count_t),
                                        (uint64_t) limits->end * 1000,
                                        ngx_http_openbank_quota_unit, &tk);

    if (rc == NGX_HTTP_OPENBANK_STORE_FULL) {
        return ngx_http_openbank_full(r, ctx, "quota");
    }

    limits->quota_known = 1;

    if (rc == NGX_HTTP_OPENBANK_STORE_REFUSE) {
        return ngx_http_openbank_quota_refused(r, ctx, limits, now);
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_openbank_quota_refused(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_limits_t *limits,
    time_t now)
{
    ngx_http_openbank_quota_t  *quota;

    quota = limits->quota;

    limits->retry_after = limits->end - now;

    if (limits->retry_after < 1) {
        limits->retry_after = 1;
    }

    return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_TOO_MANY_REQUESTS,
                                    NGX_HTTP_OPENBANK_PROBLEM_QUOTA_EXCEEDED,
                                    "the %ui calls of \"%V\" a %s are "
                                    "used: retry in %T s", quota->limit,
                                    &quota->product,
                                    quota->window
                                    == NGX_HTTP_OPENBANK_WINDOW_DAY
                                    ? "day" : "month",
                                    limits->retry_after);
}


/*
 * Cluster mode: a unit of the rate from this worker's lease
 * (ngx_http_openbank_cluster_limit.c).  NGX_DONE: Redis cannot answer
 * and rate=local: the caller counts here, at the gateway's share.
 */

static ngx_int_t
ngx_http_openbank_cluster_rate(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_limits_t *limits)
{
    ngx_int_t                           rc;
    ngx_uint_t                          mode;
    ngx_http_openbank_plan_t           *plan;
    ngx_http_openbank_cluster_limit_t   lm;
    u_char                              buf[NGX_HTTP_OPENBANK_KEY_MAX];

    plan = ctx->partner->plan;

    ngx_http_openbank_cluster_rate_key(&lm, buf, ctx->partner);

    rc = ngx_http_openbank_cluster_limit_take(r, NGX_HTTP_OPENBANK_CLUSTER_RATE,
                                              &lm, &limits->lease);

    switch (rc) {

    case NGX_AGAIN:
        return NGX_AGAIN;

    case NGX_OK:
        limits->rate_known = 1;
        limits->rate_taken = 1;
        limits->remaining = ngx_min(lm.left, plan->burst);
        limits->reset = 0;
        return NGX_DECLINED;

    case NGX_DECLINED:
        limits->rate_known = 1;
        limits->remaining = 0;
        limits->reset = (time_t) ((lm.wait_ms + 999) / 1000);
        limits->retry_after = ngx_max(limits->reset, 1);

        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_TOO_MANY_REQUESTS,
                                        NGX_HTTP_OPENBANK_PROBLEM_RATE_LIMITED,
                                        "the plan allows %ui requests per "
                                        "%s: retry in %T s", plan->rate,
                                        plan->period == 1 ? "second"
                                                          : "minute",
                                        limits->retry_after);

    default: /* NGX_BUSY */
        break;
    }

    mode = ngx_http_openbank_cluster_mode(r, NGX_HTTP_OPENBANK_CLUSTER_RATE);
    ngx_http_openbank_cluster_degraded_count(NGX_HTTP_OPENBANK_CLUSTER_RATE,
                                             mode);

    if (mode == NGX_HTTP_OPENBANK_CLUSTER_LOCAL) {
        return NGX_DONE;
    }

    ctx->retry_after = 1;

    return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
                                    "the cluster's shared rate cannot be "
                                    "reached; try again");
}


/* "ob:rate:{PARTNER}": T in microseconds, the plan's burst */

static void
ngx_http_openbank_cluster_rate_key(ngx_http_openbank_cluster_limit_t *lm,
    u_char *buf, ngx_http_openbank_partner_t *partner)
{
    uint64_t                   t;
    ngx_http_openbank_plan_t  *plan;

    plan = partner->plan;

    lm->key.data = buf;
    lm->key.len = ngx_snprintf(buf, NGX_HTTP_OPENBANK_KEY_MAX,
                               "ob:rate:{%V}", &partner->name)
                  - buf;

    t = (uint64_t) plan->period * 1000000 / plan->rate;

    lm->limit = t ? t : 1;
    lm->burst = ngx_max(plan->burst, 1);
    lm->ttl = 0;
}


/*
 * Cluster mode: a unit of the quota from this worker's lease of
 * "ob:quota:{PARTNER}:PRODUCT:WINDOW:START"; refused, the rate's unit
 * goes back to its lease.
 */

static ngx_int_t
ngx_http_openbank_cluster_quota(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_limits_t *limits,
    time_t now)
{
    ngx_int_t                           rc;
    ngx_uint_t                          mode;
    ngx_http_openbank_quota_t          *quota;
    ngx_http_openbank_cluster_limit_t   lm, rate;
    u_char                              buf[NGX_HTTP_OPENBANK_KEY_MAX];
    u_char                              rbuf[NGX_HTTP_OPENBANK_KEY_MAX];

    quota = limits->quota;

    lm.key.data = buf;
    lm.key.len = ngx_snprintf(buf, NGX_HTTP_OPENBANK_KEY_MAX,
                              "ob:quota:{%V}:%V:%s:%T",
                              &ctx->partner->name, &quota->product,
                              quota->window == NGX_HTTP_OPENBANK_WINDOW_DAY
                              ? "day" : "month", limits->start)
                 - buf;
    lm.limit = quota->limit;
    lm.burst = 0;

    /* the window, and a day for what is added late */
    lm.ttl = (ngx_msec_t) (limits->end - now + 86400) * 1000;

    rc = ngx_http_openbank_cluster_limit_take(r,
                                              NGX_HTTP_OPENBANK_CLUSTER_QUOTA,
                                              &lm, &limits->lease);

    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    if (rc == NGX_BUSY) {
        mode = ngx_http_openbank_cluster_mode(r,
                                              NGX_HTTP_OPENBANK_CLUSTER_QUOTA);

        if (mode == NGX_HTTP_OPENBANK_CLUSTER_REFUSE) {
            ngx_http_openbank_cluster_degraded_count(
                           NGX_HTTP_OPENBANK_CLUSTER_QUOTA, mode);
            ctx->retry_after = 1;
            rc = NGX_BUSY;

        } else {
            rc = ngx_http_openbank_cluster_limit_apart(&lm);

            if (rc == NGX_OK) {
                /* admitted while apart: what the metrics count */
                ngx_http_openbank_cluster_degraded_count(
                           NGX_HTTP_OPENBANK_CLUSTER_QUOTA, mode);
            }
        }
    }

    limits->used = lm.used;
    limits->quota_known = 1;

    if (rc == NGX_OK) {
        return NGX_DECLINED;
    }

    if (limits->rate_taken) {
        ngx_http_openbank_cluster_rate_key(&rate, rbuf, ctx->partner);
        ngx_http_openbank_cluster_limit_refund(NGX_HTTP_OPENBANK_CLUSTER_RATE,
                                               &rate);
        limits->rate_taken = 0;
    }

    if (rc == NGX_BUSY) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
                                    "the cluster's shared quota cannot be "
                                    "reached; try again");
    }

    limits->used = ngx_max(limits->used, quota->limit);

    return ngx_http_openbank_quota_refused(r, ctx, limits, now);
}


/*
 * A unit of the quota, or a refusal; a call refused for its quota does
 * not count against the rate: its interval goes back in the same
 * critical section.
 */

static ngx_int_t
ngx_http_openbank_quota_unit(ngx_http_openbank_store_value_t *sv, void *data)
{
    ngx_http_openbank_take_t  *tk = data;

    ngx_http_openbank_count_t   *v;
    ngx_http_openbank_limits_t  *limits;

    v = (ngx_http_openbank_count_t *) sv->value;
    limits = tk->limits;

    if (v->used >= limits->quota->limit) {
        limits->used = v->used;

        if (limits->rate_taken) {
            (void) ngx_http_openbank_store_update(tk->zone,
                                                NGX_HTTP_OPENBANK_TABLE_RATE,
                                                &tk->partner->name, 0, 0,
                                                ngx_http_openbank_rate_refund,
                                                tk);
        }

        return NGX_HTTP_OPENBANK_STORE_REFUSE;
    }

    v->used++;
    limits->used = v->used;

    ngx_http_openbank_changed(tk->zone);

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


static ngx_int_t
ngx_http_openbank_full(ngx_http_request_t *r, ngx_http_openbank_ctx_t *ctx,
    const char *what)
{
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                  "openbank zone \"%V\" is full: no room for the %s "
                  "counter of partner \"%V\", request refused",
                  &obmcf->shm_zone->shm.name, what, &ctx->partner->name);

    return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
                                    "the gateway has no room to count this "
                                    "call: try again later");
}


static ngx_int_t
ngx_http_openbank_rate_refund(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_take_t  *tk = data;

    uint64_t                   t, tat;
    ngx_http_openbank_rate_t  *v;

    v = (ngx_http_openbank_rate_t *) sv->value;

    t = ngx_http_openbank_rate_interval(tk->partner->plan);
    tat = ngx_http_openbank_rate_tat(v, t, tk->now);

    tat = (tat > tk->now + t) ? tat - t : tk->now;

    v->tat = tat;
    v->interval = t;
    sv->expire = tat / NGX_HTTP_OPENBANK_MS_NS + 1;

    tk->limits->rate_taken = 0;

    ngx_http_openbank_changed(tk->zone);

    ngx_http_openbank_rate_state(tk->partner->plan, tat, tk->now,
                                 &tk->limits->remaining, &tk->limits->reset);

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/* every change of a counter bumps the generation the snapshots follow */

static void
ngx_http_openbank_changed(ngx_http_openbank_zone_t *zone)
{
    (void) ngx_http_openbank_store_update(zone, NGX_HTTP_OPENBANK_TABLE_META,
                                          &ngx_http_openbank_meta_key, 0, 0,
                                          ngx_http_openbank_generation_bump,
                                          NULL);
}


static ngx_int_t
ngx_http_openbank_generation_bump(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ((ngx_http_openbank_meta_t *) sv->value)->generation++;

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


static uint64_t
ngx_http_openbank_generation(ngx_http_openbank_zone_t *zone)
{
    ngx_http_openbank_meta_t  meta;

    if (ngx_http_openbank_store_get(zone, NGX_HTTP_OPENBANK_TABLE_META,
                                    &ngx_http_openbank_meta_key, &meta,
                                    sizeof(ngx_http_openbank_meta_t), NULL)
        != sizeof(ngx_http_openbank_meta_t))
    {
        return 0;
    }

    return meta.generation;
}


static uint64_t
ngx_http_openbank_rate_interval(ngx_http_openbank_plan_t *plan)
{
    uint64_t  t;

    t = (uint64_t) plan->period * NGX_HTTP_OPENBANK_NS / plan->rate;

    return t ? t : 1;
}


static uint64_t
ngx_http_openbank_rate_capacity(ngx_http_openbank_plan_t *plan, uint64_t t)
{
    if (plan->burst > NGX_HTTP_OPENBANK_CAPACITY_MAX / t) {
        return NGX_HTTP_OPENBANK_CAPACITY_MAX;
    }

    return plan->burst * t;
}


/* the tat at the current rate: a debt in requests survives a rate change */

static uint64_t
ngx_http_openbank_rate_tat(ngx_http_openbank_rate_t *v, uint64_t t,
    uint64_t now)
{
    uint64_t     debt;
    long double  d;

    if (v->tat <= now) {
        return now;
    }

    debt = v->tat - now;

    if (v->interval && v->interval != t) {
        d = (long double) debt * t / v->interval;
        debt = (d < (long double) NGX_HTTP_OPENBANK_CAPACITY_MAX)
               ? (uint64_t) d : NGX_HTTP_OPENBANK_CAPACITY_MAX;
    }

    /* never more than any bucket holds (a restored file may say more) */

    if (debt > NGX_HTTP_OPENBANK_CAPACITY_MAX) {
        debt = NGX_HTTP_OPENBANK_CAPACITY_MAX;
    }

    return now + debt;
}


static void
ngx_http_openbank_rate_state(ngx_http_openbank_plan_t *plan, uint64_t tat,
    uint64_t now, ngx_uint_t *remaining, time_t *reset)
{
    uint64_t  t, b;

    if (tat <= now) {
        *remaining = plan->burst;
        *reset = 0;
        return;
    }

    t = ngx_http_openbank_rate_interval(plan);
    b = ngx_http_openbank_rate_capacity(plan, t);

    *remaining = (tat - now >= b) ? 0 : (ngx_uint_t) ((now + b - tat) / t);

    if (*remaining > plan->burst) {
        *remaining = plan->burst;
    }

    *reset = (time_t) ((tat - now + NGX_HTTP_OPENBANK_NS - 1)
                       / NGX_HTTP_OPENBANK_NS);
}


/* the calendar window of "now" in the configured time zone */

static void
ngx_http_openbank_window(ngx_http_openbank_quota_t *quota, ngx_int_t tz,
    time_t now, time_t *start, time_t *end)
{
    time_t     local, days, first;
    ngx_int_t  year, month;

    local = now + tz;
    days = local / 86400;

    if (local % 86400 < 0) {
        days--;
    }

    if (quota->window == NGX_HTTP_OPENBANK_WINDOW_DAY) {
        *start = days * 86400 - tz;
        *end = *start + 86400;
        return;
    }

    ngx_http_openbank_civil_from_days(days, &year, &month);

    first = ngx_http_openbank_days_from_civil(year, month, 1);

    *start = first * 86400 - tz;
    *end = *start + ngx_http_openbank_month_days(year, month) * 86400;
}


/* the inverse of days_from_civil (H. Hinnant's algorithm) */

static void
ngx_http_openbank_civil_from_days(time_t days, ngx_int_t *year,
    ngx_int_t *month)
{
    time_t  z, era, doe, yoe, doy, mp;

    z = days + 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;

    *month = (ngx_int_t) (mp < 10 ? mp + 3 : mp - 9);
    *year = (ngx_int_t) (yoe + era * 400 + (*month <= 2));
}


static void
ngx_http_openbank_quota_key(ngx_str_t *key, u_char *buf,
    ngx_http_openbank_partner_t *partner, ngx_http_openbank_quota_t *quota,
    time_t start)
{
    u_char  *p;

    p = ngx_snprintf(buf, NGX_HTTP_OPENBANK_KEY_MAX, "%V/%V/%s/%T",
                     &partner->name, &quota->product,
                     quota->window == NGX_HTTP_OPENBANK_WINDOW_DAY
                     ? "day" : "month", start);

    key->data = buf;
    key->len = p - buf;
}


/* what a refused or unmetered response shows: read, never take */

static void
ngx_http_openbank_peek(ngx_http_openbank_zone_t *zone,
    ngx_http_openbank_partner_t *partner, ngx_http_openbank_limits_t *limits,
    uint64_t now_ms)
{
    uint64_t                    now, tat, t;
    ngx_str_t                   key;
    ngx_http_openbank_rate_t    rate;
    ngx_http_openbank_count_t   count;
    u_char                      buf[NGX_HTTP_OPENBANK_KEY_MAX];

    now = now_ms * NGX_HTTP_OPENBANK_MS_NS;

    if (!limits->rate_known) {
        tat = now;

        if (ngx_http_openbank_store_get(zone, NGX_HTTP_OPENBANK_TABLE_RATE,
                                        &partner->name, &rate,
                                        sizeof(ngx_http_openbank_rate_t),
                                        NULL)
            == sizeof(ngx_http_openbank_rate_t))
        {
            t = ngx_http_openbank_rate_interval(partner->plan);
            tat = ngx_http_openbank_rate_tat(&rate, t, now);
        }

        ngx_http_openbank_rate_state(partner->plan, tat, now,
                                     &limits->remaining, &limits->reset);
        limits->rate_known = 1;
    }

    if (limits->quota && !limits->quota_known) {
        ngx_http_openbank_quota_key(&key, buf, partner, limits->quota,
                                    limits->start);

        limits->used = (ngx_http_openbank_store_get(zone,
                                    NGX_HTTP_OPENBANK_TABLE_QUOTA, &key,
                                    &count,
                                    sizeof(ngx_http_openbank_count_t), NULL)
                        == sizeof(ngx_http_openbank_count_t))
                       ? count.used : 0;
        limits->quota_known = 1;
    }
}


/* the rate and the quota read under one lock */

static ngx_int_t
ngx_http_openbank_peek_atomic(ngx_http_openbank_zone_t *zone, void *data)
{
    ngx_http_openbank_take_t  *tk = data;

    ngx_http_openbank_peek(zone, tk->partner, tk->limits,
                           tk->now / NGX_HTTP_OPENBANK_MS_NS);

    return NGX_OK;
}


/*
 * The response filter of the RateLimit headers, after the problem and
 * before the idempotency answer (the order of "config").
 */

static ngx_int_t ngx_http_openbank_limit_headers(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);


NGX_HTTP_OPENBANK_FILTER_MODULE(limit, NULL);


/* an API call that went elsewhere by a redirect still is one */

static ngx_int_t
ngx_http_openbank_limit_header(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    ngx_http_openbank_loc_conf_t  *oblcf;

    if (ctx->partner == NULL) {
        return NGX_DECLINED;
    }

    oblcf = ngx_http_get_module_loc_conf(r, ngx_http_openbank_module);

    if ((oblcf->api || ngx_http_openbank_api_conf(r, ctx)->api)
        && ngx_http_openbank_limit_headers(r, ctx) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_DECLINED;
}


/*
 * RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers)
 * on every API response once the partner is known, 429s included.
 */

static ngx_int_t
ngx_http_openbank_limit_headers(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    size_t                          len;
    time_t                          now;
    uint64_t                        now_ms, remaining;
    ngx_str_t                       policy, state, retry;
    ngx_http_openbank_plan_t       *plan;
    ngx_http_openbank_zone_t       *zone;
    ngx_http_openbank_take_t        tk;
    ngx_http_openbank_limits_t     *limits;
    ngx_http_openbank_loc_conf_t   *oblcf;
    ngx_http_openbank_main_conf_t  *obmcf;

    limits = ngx_http_openbank_get_limits(r, ctx);
    if (limits == NULL) {
        return NGX_ERROR;
    }

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    oblcf = ngx_http_openbank_api_conf(r, ctx);
    zone = obmcf->shm_zone->data;
    plan = ctx->partner->plan;

    now_ms = ngx_http_openbank_now_ms();
    now = (time_t) (now_ms / 1000);

    if (limits->quota == NULL && oblcf->product.len) {
        limits->quota = ngx_http_openbank_partner_quota(ctx->partner,
                                                        &oblcf->product);
        if (limits->quota) {
            ngx_http_openbank_window(limits->quota, obmcf->tz_offset, now,
                                     &limits->start, &limits->end);
        }
    }

    if (!limits->rate_known || (limits->quota && !limits->quota_known)) {
        tk.partner = ctx->partner;
        tk.limits = limits;
        tk.now = now_ms * NGX_HTTP_OPENBANK_MS_NS;

        (void) ngx_http_openbank_store_atomic(zone,
                                              ngx_http_openbank_peek_atomic,
                                              &tk);
    }

    len = sizeof("\"rate\";q=;w=, \"-month\";q=;w=") - 1
          + 2 * NGX_INT_T_LEN + 2 * NGX_TIME_T_LEN;

    if (limits->quota) {
        len += limits->quota->product.len;
    }

    policy.data = ngx_pnalloc(r->pool, 2 * len);
    if (policy.data == NULL) {
        return NGX_ERROR;
    }

    state.data = policy.data + len;

    policy.len = ngx_sprintf(policy.data, "\"rate\";q=%ui;w=%ui",
                             plan->rate, plan->period)
                 - policy.data;

    state.len = ngx_sprintf(state.data, "\"rate\";r=%ui;t=%T",
                            limits->remaining, limits->reset)
                - state.data;

    if (limits->quota) {
        remaining = (limits->used < limits->quota->limit)
                    ? limits->quota->limit - limits->used : 0;

        policy.len = ngx_sprintf(policy.data + policy.len,
                                 ", \"%V-%s\";q=%ui;w=%T",
                                 &limits->quota->product,
                                 limits->quota->window
                                 == NGX_HTTP_OPENBANK_WINDOW_DAY
                                 ? "day" : "month",
                                 limits->quota->limit,
                                 limits->end - limits->start)
                     - policy.data;

        state.len = ngx_sprintf(state.data + state.len,
                                ", \"%V-%s\";r=%uL;t=%T",
                                &limits->quota->product,
                                limits->quota->window
                                == NGX_HTTP_OPENBANK_WINDOW_DAY
                                ? "day" : "month",
                                remaining,
                                limits->end > now ? limits->end - now : 0)
                    - state.data;
    }

    if (ngx_http_openbank_set_header(r, "RateLimit-Policy", &policy) == NULL
        || ngx_http_openbank_set_header(r, "RateLimit", &state) == NULL)
    {
        return NGX_ERROR;
    }

    if (r->headers_out.status == NGX_HTTP_TOO_MANY_REQUESTS
        && limits->retry_after)
    {
        retry.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
        if (retry.data == NULL) {
            return NGX_ERROR;
        }

        retry.len = ngx_sprintf(retry.data, "%T", limits->retry_after)
                    - retry.data;

        if (ngx_http_openbank_set_header(r, "Retry-After", &retry) == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * status: "rate":{...},"quotas":[...]; the caller runs it inside
 * ngx_http_openbank_store_atomic(), one picture of every partner
 */

size_t
ngx_http_openbank_limit_status_len(ngx_http_openbank_partner_t *partner)
{
    size_t  n;

    n = partner->quotas.nelts + partner->plan->quotas.nelts;

    return sizeof("\"rate\":{\"limit\":,\"period\":,\"burst\":,"
                  "\"remaining\":,\"reset\":},\"quotas\":[]") - 1
           + 5 * NGX_INT_T_LEN
           + n * (sizeof("{\"product\":\"\",\"window\":\"month\","
                         "\"limit\":,\"used\":,\"remaining\":,"
                         "\"reset\":,\"window_start\":},") - 1
                  + 64 + 5 * NGX_INT_T_LEN);
}


u_char *
ngx_http_openbank_limit_status(u_char *p,
    ngx_http_openbank_main_conf_t *obmcf, ngx_http_openbank_partner_t *partner,
    uint64_t now_ms)
{
    time_t                       now;
    uint64_t                     remaining;
    ngx_uint_t                   i, n, first;
    ngx_array_t                 *lists[2];
    ngx_http_openbank_zone_t    *zone;
    ngx_http_openbank_quota_t   *quota;
    ngx_http_openbank_limits_t   limits;

    zone = obmcf->shm_zone->data;
    now = (time_t) (now_ms / 1000);

    ngx_memzero(&limits, sizeof(ngx_http_openbank_limits_t));

    ngx_http_openbank_peek(zone, partner, &limits, now_ms);

    p = ngx_sprintf(p, "\"rate\":{\"limit\":%ui,\"period\":%ui,"
                    "\"burst\":%ui,\"remaining\":%ui,\"reset\":%T},"
                    "\"quotas\":[",
                    partner->plan->rate, partner->plan->period,
                    partner->plan->burst, limits.remaining, limits.reset);

    /* each product once: the partner's own quota, else its plan's */

    lists[0] = &partner->quotas;
    lists[1] = &partner->plan->quotas;
    first = 1;

    for (n = 0; n < 2; n++) {

        quota = lists[n]->elts;

        for (i = 0; i < lists[n]->nelts; i++) {

            if (ngx_http_openbank_partner_quota(partner, &quota[i].product)
                != &quota[i])
            {
                continue;
            }

            limits.quota = &quota[i];
            limits.quota_known = 0;
            ngx_http_openbank_window(&quota[i], obmcf->tz_offset, now,
                                     &limits.start, &limits.end);
            ngx_http_openbank_peek(zone, partner, &limits, now_ms);

            remaining = (limits.used < quota[i].limit)
                        ? quota[i].limit - limits.used : 0;

            p = ngx_sprintf(p, "%s{\"product\":\"%V\",\"window\":\"%s\","
                            "\"limit\":%ui,\"used\":%uL,\"remaining\":%uL,"
                            "\"reset\":%T,\"window_start\":%T}",
                            first ? "" : ",", &quota[i].product,
                            quota[i].window == NGX_HTTP_OPENBANK_WINDOW_DAY
                            ? "day" : "month",
                            quota[i].limit, limits.used, remaining,
                            limits.end - now, limits.start);
            first = 0;
        }
    }

    *p++ = ']';

    return p;
}


/* durability: the snapshot */

static ngx_http_openbank_main_conf_t *
ngx_http_openbank_cycle_conf(ngx_cycle_t *cycle)
{
    ngx_http_openbank_main_conf_t  *obmcf;

    if (cycle->conf_ctx == NULL
        || cycle->conf_ctx[ngx_http_module.index] == NULL)
    {
        return NULL;
    }

    obmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                                ngx_http_openbank_module);

    if (obmcf == NULL || obmcf->shm_zone == NULL) {
        return NULL;
    }

    return obmcf;
}


static ngx_int_t
ngx_http_openbank_state_file(ngx_pool_t *pool,
    ngx_http_openbank_main_conf_t *obmcf, const char *suffix, ngx_str_t *path)
{
    size_t  len;

    len = obmcf->state_path.len + sizeof(NGX_HTTP_OPENBANK_SNAP_FILE)
          + ngx_strlen(suffix);

    path->data = pool ? ngx_pnalloc(pool, len) : ngx_alloc(len, ngx_cycle->log);
    if (path->data == NULL) {
        return NGX_ERROR;
    }

    path->len = ngx_sprintf(path->data, "%V" NGX_HTTP_OPENBANK_SNAP_FILE "%s%Z",
                            &obmcf->state_path, suffix)
                - path->data - 1;

    return NGX_OK;
}


/*
 * "openbank-counters 1", then one line a live counter:
 *     rate <key> <tat ns> <ns per request>
 *     quota <key> <expiry ms> <used>
 * and "sha256 <hex of everything above>".
 */

static ngx_int_t
ngx_http_openbank_snapshot(ngx_log_t *log, ngx_uint_t level,
    ngx_http_openbank_main_conf_t *obmcf)
{
    u_char                      *buf, *p;
    uint64_t                     generation;
    ngx_int_t                    rc;
    ngx_str_t                    path, prev;
    ngx_uint_t                   aside;
    ngx_http_openbank_zone_t    *zone;
    ngx_http_openbank_snap_t     sn;
    u_char                       hash[NGX_HTTP_OPENBANK_HASH_LEN];

    zone = obmcf->shm_zone->data;

    if (ngx_http_openbank_state_file(NULL, obmcf, "", &path) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_state_file(NULL, obmcf, ".prev", &prev) != NGX_OK)
    {
        ngx_free(path.data);
        return NGX_ERROR;
    }

    sn.log = log;

    if (ngx_http_openbank_store_atomic(zone,
                                       ngx_http_openbank_snapshot_atomic,
                                       &sn)
        != NGX_OK)
    {
        ngx_free(path.data);
        ngx_free(prev.data);
        return NGX_ERROR;
    }

    buf = sn.buf;
    p = sn.p;
    generation = sn.generation;

    ngx_http_openbank_sha256(hash, buf, p - buf);

    p = ngx_cpymem(p, "sha256 ", sizeof("sha256 ") - 1);
    p = ngx_hex_dump(p, hash, NGX_HTTP_OPENBANK_HASH_LEN);
    *p++ = '\n';

    /* the last good snapshot stays as ".prev" until this one is in */

    if (ngx_rename_file(path.data, prev.data) == NGX_FILE_ERROR
        && ngx_errno != NGX_ENOENT)
    {
        /*
         * The snapshot is written all the same, without its fallback:
         * a [warn], once until the rename works again.
         */

        aside = ngx_http_openbank_prev_failed ? NGX_LOG_DEBUG : NGX_LOG_WARN;

        ngx_log_error(aside, log, ngx_errno,
                      ngx_rename_file_n " \"%V\" to \"%V\" failed",
                      &path, &prev);

        ngx_http_openbank_prev_failed = 1;

    } else {
        ngx_http_openbank_prev_failed = 0;
    }

    rc = ngx_http_openbank_state_write_level(log, level, &path, buf, p - buf,
                                             (ngx_uid_t) NGX_CONF_UNSET_UINT);

    if (rc == NGX_OK) {
        ngx_http_openbank_written = generation;
    }

    ngx_free(buf);
    ngx_free(path.data);
    ngx_free(prev.data);

    return rc;
}


/* the counters, read under one lock: the exact room, then the lines */

static ngx_int_t
ngx_http_openbank_snapshot_atomic(ngx_http_openbank_zone_t *zone, void *data)
{
    ngx_http_openbank_snap_t  *sn = data;

    sn->generation = ngx_http_openbank_generation(zone);

    sn->len = sizeof(NGX_HTTP_OPENBANK_SNAP_HEAD) - 1
              + sizeof("sha256 \n") + 2 * NGX_HTTP_OPENBANK_HASH_LEN;

    (void) ngx_http_openbank_store_walk(zone, NGX_HTTP_OPENBANK_TABLE_RATE,
                                        ngx_http_openbank_snapshot_size, sn);
    (void) ngx_http_openbank_store_walk(zone, NGX_HTTP_OPENBANK_TABLE_QUOTA,
                                        ngx_http_openbank_snapshot_size, sn);

    sn->len += ngx_http_openbank_usage_snapshot_len(zone);

    sn->buf = ngx_alloc(sn->len, sn->log);
    if (sn->buf == NULL) {
        return NGX_ERROR;
    }

    sn->p = ngx_cpymem(sn->buf, NGX_HTTP_OPENBANK_SNAP_HEAD,
                       sizeof(NGX_HTTP_OPENBANK_SNAP_HEAD) - 1);

    (void) ngx_http_openbank_store_walk(zone, NGX_HTTP_OPENBANK_TABLE_RATE,
                                        ngx_http_openbank_snapshot_rate, sn);
    (void) ngx_http_openbank_store_walk(zone, NGX_HTTP_OPENBANK_TABLE_QUOTA,
                                        ngx_http_openbank_snapshot_quota, sn);

    sn->p = ngx_http_openbank_usage_snapshot(zone, sn->p);

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_snapshot_size(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_snap_t  *sn = data;

    sn->len += sizeof("quota   \n") - 1 + sv->key.len + 2 * NGX_INT64_LEN;

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


static ngx_int_t
ngx_http_openbank_snapshot_rate(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_snap_t  *sn = data;

    ngx_http_openbank_rate_t  *rate;

    rate = (ngx_http_openbank_rate_t *) sv->value;

    sn->p = ngx_sprintf(sn->p, "rate %V %uL %uL\n", &sv->key, rate->tat,
                        rate->interval);

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


static ngx_int_t
ngx_http_openbank_snapshot_quota(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_snap_t  *sn = data;

    ngx_http_openbank_count_t  *count;

    count = (ngx_http_openbank_count_t *) sv->value;

    sn->p = ngx_sprintf(sn->p, "quota %V %uL %uL\n", &sv->key, sv->expire,
                        count->used);

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/*
 * The snapshot of every interval (the cache manager, or a single process):
 * written when a counter changed, when the file is gone, and again after
 * a failure.  A failure (the directory removed, a path that is not a
 * directory, a full disk) is an [alert] once, with the path and the error,
 * then an [info] at most once a minute while it lasts, and a [notice] when
 * a snapshot is written again.  The counters stay in the zone meanwhile:
 * the workers count and serve as usual.
 */

static void
ngx_http_openbank_snapshot_periodic(ngx_http_openbank_main_conf_t *obmcf)
{
    time_t       now;
    ngx_log_t    log;
    ngx_uint_t   level;

    if (ngx_http_openbank_snapshot_failures == 0
        && ngx_http_openbank_meta_made
        && ngx_http_openbank_generation(obmcf->shm_zone->data)
           == ngx_http_openbank_written
        && ngx_http_openbank_snapshot_present(obmcf) == NGX_OK)
    {
        return;
    }

    now = ngx_time();

    if (ngx_http_openbank_snapshot_failures == 0) {
        level = NGX_LOG_ALERT;

    } else if (now - ngx_http_openbank_snapshot_logged
               >= NGX_HTTP_OPENBANK_SNAP_QUIET)
    {
        level = NGX_LOG_INFO;

    } else {
        level = NGX_LOG_DEBUG;
    }

    /* every message of the attempt says what was being done */

    log = *ngx_cycle->log;
    log.handler = ngx_http_openbank_snapshot_log_handler;
    log.data = obmcf;

    if (ngx_http_openbank_snapshot(&log, level, obmcf) == NGX_OK) {

        if (ngx_http_openbank_snapshot_failures) {
            ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                          "openbank: counters written to \"%V\" again, "
                          "after %ui failed attempts", &obmcf->state_path,
                          ngx_http_openbank_snapshot_failures);
        }

        ngx_http_openbank_snapshot_failures = 0;
        return;
    }

    if (level != NGX_LOG_DEBUG) {
        ngx_http_openbank_snapshot_logged = now;
    }

    ngx_http_openbank_snapshot_failures++;
}


/* NGX_OK: the snapshot is there and a file (it may have been removed) */

static ngx_int_t
ngx_http_openbank_snapshot_present(ngx_http_openbank_main_conf_t *obmcf)
{
    ngx_int_t        rc;
    ngx_str_t        path;
    ngx_file_info_t  fi;

    if (ngx_http_openbank_state_file(NULL, obmcf, "", &path) != NGX_OK) {
        return NGX_ERROR;
    }

    rc = (ngx_file_info(path.data, &fi) == NGX_FILE_ERROR
          || !ngx_is_file(&fi))
         ? NGX_DECLINED : NGX_OK;

    ngx_free(path.data);

    return rc;
}


static u_char *
ngx_http_openbank_snapshot_log_handler(ngx_log_t *log, u_char *buf,
    size_t len)
{
    ngx_http_openbank_main_conf_t *obmcf = log->data;

    if (ngx_http_openbank_snapshot_failures == 0) {
        return ngx_snprintf(buf, len,
                            " while writing the counters to \"%V\" (they "
                            "stay in the zone; retried quietly until it "
                            "works)", &obmcf->state_path);
    }

    return ngx_snprintf(buf, len,
                        " while writing the counters to \"%V\" (%ui "
                        "attempts failed)", &obmcf->state_path,
                        ngx_http_openbank_snapshot_failures);
}


static void
ngx_http_openbank_snapshot_handler(ngx_event_t *ev)
{
    ngx_http_openbank_main_conf_t  *obmcf;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    obmcf = ngx_http_openbank_cycle_conf((ngx_cycle_t *) ngx_cycle);

    if (obmcf == NULL) {
        return;
    }

    ngx_http_openbank_snapshot_periodic(obmcf);

    ngx_add_timer(ev, obmcf->state_interval);
}


/*
 * Runs in the master (and in "nginx -t", where it does nothing) once the
 * zone is set up: a zone that has no "counters" record is new, and the
 * counters are restored into it before any worker exists.  A reload finds
 * the record and restores nothing.
 */

ngx_int_t
ngx_http_openbank_limit_init_module(ngx_cycle_t *cycle)
{
    ngx_http_openbank_main_conf_t  *obmcf;

    if (ngx_test_config) {
        return NGX_OK;
    }

    obmcf = ngx_http_openbank_cycle_conf(cycle);

    if (obmcf == NULL) {
        return NGX_OK;
    }

    return ngx_http_openbank_restore(cycle, obmcf);
}


static ngx_int_t
ngx_http_openbank_restore(ngx_cycle_t *cycle,
    ngx_http_openbank_main_conf_t *obmcf)
{
    u_char                      *p, *last, *eol;
    uint64_t                     now_ms;
    ngx_int_t                    rc;
    ngx_str_t                    path, prev, text;
    ngx_uint_t                   n;
    ngx_pool_t                  *pool;
    ngx_http_openbank_zone_t    *zone;
    ngx_http_openbank_meta_t     meta;

    zone = obmcf->shm_zone->data;
    now_ms = ngx_http_openbank_now_ms();

    /* a zone taken over on reload keeps its counters */

    ngx_memzero(&meta, sizeof(ngx_http_openbank_meta_t));

    rc = ngx_http_openbank_store_add(zone, NGX_HTTP_OPENBANK_TABLE_META,
                                     &ngx_http_openbank_meta_key, &meta,
                                     sizeof(ngx_http_openbank_meta_t), 0);

    if (rc == NGX_DECLINED) {
        ngx_http_openbank_meta_made = 1;
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "openbank zone \"%V\" is too small",
                      &obmcf->shm_zone->shm.name);
        return NGX_ERROR;
    }

    ngx_http_openbank_meta_made = 1;

    if (obmcf->state_path.len == 0) {
        return NGX_OK;
    }

    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, cycle->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_state_file(pool, obmcf, "", &path) != NGX_OK
        || ngx_http_openbank_state_file(pool, obmcf, ".prev", &prev)
           != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    /*
     * The snapshot, else the one before it (a crash between the two
     * renames of a write, or a file damaged on disk).
     */

    rc = ngx_http_openbank_load(cycle->log, pool, &path, &text);

    if (rc == NGX_DECLINED || rc == NGX_ABORT) {
        rc = ngx_http_openbank_load(cycle->log, pool, &prev, &text);

        if (rc == NGX_OK) {
            ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                          "counters restored from the previous snapshot "
                          "\"%V\": up to two intervals of use are lost",
                          &prev);
            path = prev;

        } else if (rc == NGX_ABORT) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "no valid counters snapshot under \"%V\": rate "
                          "and quota counters start from zero",
                          &obmcf->state_path);
        }
    }

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "no counters to restore in \"%V\"", &path);
        ngx_destroy_pool(pool);
        return NGX_OK;
    }

    if (rc == NGX_ABORT) {
        ngx_destroy_pool(pool);
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        ngx_destroy_pool(pool);

        /*
         * Unreadable: keep it where it is and start nothing on a guess;
         * but a failure here on reload would end the master (nginx exits
         * when a module fails to initialise), so a reload that brings a
         * new zone goes on with an [alert].
         */

        if (ngx_is_init_cycle((ngx_cycle_t *) ngx_cycle)) {
            return NGX_ERROR;
        }

        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "counters of \"%V\" not restored into the new zone",
                      &obmcf->state_path);
        return NGX_OK;
    }

    p = text.data;
    last = text.data + text.len;
    n = 0;

    while (p < last) {
        eol = ngx_strlchr(p, last, '\n');
        if (eol == NULL) {
            eol = last;
        }

        rc = ngx_http_openbank_restore_line(cycle->log, zone, p, eol,
                                            now_ms);
        if (rc == NGX_ERROR) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "openbank zone \"%V\" is full: %ui counters "
                          "of \"%V\" restored, the rest is lost",
                          &obmcf->shm_zone->shm.name, n, &path);
            ngx_destroy_pool(pool);
            return NGX_OK;
        }

        if (rc == NGX_OK) {
            n++;
        }

        p = eol + 1;
    }

    ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                  "%ui counters restored from \"%V\"", n, &path);

    ngx_destroy_pool(pool);

    return NGX_OK;
}


/*
 * Reads and checks a snapshot: NGX_OK with its counter lines in "body",
 * NGX_DECLINED when there is none, NGX_ABORT when it was corrupt (it is
 * renamed aside and logged), NGX_ERROR when it cannot be read.
 */

static ngx_int_t
ngx_http_openbank_load(ngx_log_t *log, ngx_pool_t *pool, ngx_str_t *path,
    ngx_str_t *body)
{
    u_char     *p, *last;
    size_t      n;
    ngx_int_t   rc;
    ngx_str_t   text, aside;
    u_char      hash[NGX_HTTP_OPENBANK_HASH_LEN];
    u_char      hex[2 * NGX_HTTP_OPENBANK_HASH_LEN];

    rc = ngx_http_openbank_state_read(log, NGX_LOG_ALERT, pool, path,
                                      NGX_HTTP_OPENBANK_SNAP_MAX, &text);

    if (rc != NGX_OK) {
        return rc;
    }

    /* the header, then the checksum over everything before its line */

    p = text.data;
    last = text.data + text.len;

    n = sizeof("sha256 \n") - 1 + 2 * NGX_HTTP_OPENBANK_HASH_LEN;

    if (text.len >= sizeof(NGX_HTTP_OPENBANK_SNAP_HEAD) - 1 + n
        && ngx_strncmp(p, NGX_HTTP_OPENBANK_SNAP_HEAD,
                       sizeof(NGX_HTTP_OPENBANK_SNAP_HEAD) - 1) == 0
        && ngx_strncmp(last - n, "sha256 ", sizeof("sha256 ") - 1) == 0
        && last[-1] == '\n')
    {
        ngx_http_openbank_sha256(hash, p, last - n - p);
        ngx_hex_dump(hex, hash, NGX_HTTP_OPENBANK_HASH_LEN);

        if (ngx_strncmp(hex, last - n + sizeof("sha256 ") - 1,
                        2 * NGX_HTTP_OPENBANK_HASH_LEN) == 0)
        {
            body->data = p + sizeof(NGX_HTTP_OPENBANK_SNAP_HEAD) - 1;
            body->len = last - n - body->data;
            return NGX_OK;
        }
    }

    aside.data = ngx_pnalloc(pool, path->len + sizeof(".corrupt.")
                                   + NGX_INT64_LEN);
    if (aside.data == NULL) {
        return NGX_ERROR;
    }

    aside.len = ngx_sprintf(aside.data, "%V.corrupt.%uL%Z", path,
                            ngx_http_openbank_now_ms())
                - aside.data - 1;

    if (ngx_rename_file(path->data, aside.data) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_rename_file_n " \"%V\" to \"%V\" failed",
                      path, &aside);
        return NGX_ERROR;
    }

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "counters file \"%V\" is corrupt or truncated (bad "
                  "checksum): set aside as \"%V\"", path, &aside);

    return NGX_ABORT;
}


/* NGX_OK: restored; NGX_DECLINED: expired or malformed; NGX_ERROR: full */

static ngx_int_t
ngx_http_openbank_restore_line(ngx_log_t *log, ngx_http_openbank_zone_t *zone,
    u_char *p, u_char *last, uint64_t now_ms)
{
    u_char                      *f[4];
    size_t                       l[4], size;
    uint64_t                     a, b, expire;
    ngx_str_t                    key;
    ngx_uint_t                     i, table;
    ngx_http_openbank_restored_t   line;

    if (last - p > 6 && ngx_strncmp(p, "usage ", 6) == 0) {
        return ngx_http_openbank_usage_restore(log, zone, p + 6, last,
                                               now_ms);
    }

    for (i = 0; i < 4; i++) {
        f[i] = p;

        while (p < last && *p != ' ') {
            p++;
        }

        l[i] = p - f[i];

        if (l[i] == 0 || (i < 3 && p == last) || (i == 3 && p != last)) {
            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "malformed line in the counters file: ignored");
            return NGX_DECLINED;
        }

        p++;
    }

    a = (uint64_t) ngx_atoof(f[2], l[2]);
    b = (uint64_t) ngx_atoof(f[3], l[3]);

    if ((off_t) a == NGX_ERROR || (off_t) b == NGX_ERROR
        || ngx_http_openbank_valid_key(f[1], l[1]) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "malformed line in the counters file: ignored");
        return NGX_DECLINED;
    }

    if (l[0] == 4 && ngx_strncmp(f[0], "rate", 4) == 0) {
        table = NGX_HTTP_OPENBANK_TABLE_RATE;
        expire = a / NGX_HTTP_OPENBANK_MS_NS + 1;

    } else if (l[0] == 5 && ngx_strncmp(f[0], "quota", 5) == 0) {
        table = NGX_HTTP_OPENBANK_TABLE_QUOTA;
        expire = a;

    } else {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "malformed line in the counters file: ignored");
        return NGX_DECLINED;
    }

    if (expire <= now_ms) {
        return NGX_DECLINED;
    }

    key.data = f[1];
    key.len = l[1];

    size = (table == NGX_HTTP_OPENBANK_TABLE_RATE)
           ? sizeof(ngx_http_openbank_rate_t)
           : sizeof(ngx_http_openbank_count_t);

    line.expire = expire;
    line.a = a;
    line.b = b;
    line.rate = (table == NGX_HTTP_OPENBANK_TABLE_RATE);

    if (ngx_http_openbank_store_update(zone, table, &key, size, expire,
                                       ngx_http_openbank_restore_value, &line)
        == NGX_HTTP_OPENBANK_STORE_FULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_restore_value(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_restored_t  *line = data;

    ngx_http_openbank_rate_t   *rate;
    ngx_http_openbank_count_t  *count;

    sv->expire = line->expire;

    if (line->rate) {
        rate = (ngx_http_openbank_rate_t *) sv->value;
        rate->tat = line->a;
        rate->interval = line->b;

    } else {
        count = (ngx_http_openbank_count_t *) sv->value;
        count->used = line->b;
    }

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


static ngx_int_t
ngx_http_openbank_valid_key(u_char *p, size_t len)
{
    u_char  c;
    size_t  i;

    if (len == 0 || len > NGX_HTTP_OPENBANK_KEY_MAX) {
        return NGX_ERROR;
    }

    for (i = 0; i < len; i++) {
        c = p[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_'
              || c == '/'))
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The "manager" of the openbank_state path: nginx runs it in its cache
 * manager process, again after the number of milliseconds it returns.
 */

ngx_msec_t
ngx_http_openbank_limit_manager(void *data)
{
    ngx_http_openbank_main_conf_t *obmcf = data;

    /*
     * An orphan (its master was killed) would go on writing the counters
     * of a zone nobody uses over those of the next nginx: it leaves.
     */

    if (ngx_http_openbank_master && getppid() != ngx_http_openbank_master) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "the master process is gone: the counters are no "
                      "longer written by this process");
        ngx_terminate = 1;
        return 1000;
    }

    if (obmcf->shm_zone) {
        ngx_http_openbank_snapshot_periodic(obmcf);
    }

    return obmcf->state_interval;
}


/* without a master (master_process off), the process writes them itself */

ngx_int_t
ngx_http_openbank_limit_init_process(ngx_cycle_t *cycle)
{
    ngx_event_t                    *ev;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_openbank_cycle_conf(cycle);

    if (obmcf == NULL || obmcf->state_path.len == 0) {
        return NGX_OK;
    }

    if (ngx_process == NGX_PROCESS_HELPER) {
        ngx_http_openbank_master = getppid();
        return NGX_OK;
    }

    if (ngx_process != NGX_PROCESS_SINGLE) {
        return NGX_OK;
    }

    ngx_http_openbank_snapshot_writer = 1;
    ngx_http_openbank_written = ngx_http_openbank_generation(
                                                   obmcf->shm_zone->data);

    ev = &ngx_http_openbank_snapshot_event;

    ev->handler = ngx_http_openbank_snapshot_handler;
    ev->log = cycle->log;
    ev->data = cycle;
    ev->cancelable = 1;

    ngx_add_timer(ev, obmcf->state_interval);

    return NGX_OK;
}


void
ngx_http_openbank_limit_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_openbank_main_conf_t  *obmcf;

    if (!ngx_http_openbank_snapshot_writer) {
        return;
    }

    obmcf = ngx_http_openbank_cycle_conf(cycle);

    if (obmcf == NULL || obmcf->state_path.len == 0) {
        return;
    }

    (void) ngx_http_openbank_snapshot(cycle->log, NGX_LOG_ALERT, obmcf);
}


/* the last word: every worker has gone */

void
ngx_http_openbank_limit_exit_master(ngx_cycle_t *cycle)
{
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_openbank_cycle_conf(cycle);

    if (obmcf == NULL || obmcf->state_path.len == 0
        || !ngx_http_openbank_meta_made)
    {
        return;
    }

    (void) ngx_http_openbank_snapshot(cycle->log, NGX_LOG_ALERT, obmcf);
}
