
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * "openbank_concurrency": at most N calls in flight to the bank across
 * the workers, and a share of them per partner (docs/resilience.md).
 *
 * A limit is three kinds of records of the zone: the limit's own
 * ("core": the calls in flight, its refusals), one a partner
 * ("core\0p<partner>": the partner's calls in flight), and one a process
 * and partner ("core\0w<slot>\0<partner>": the calls of the process in
 * nginx's process slot <slot>, and its pid).  A call takes its slot in
 * the access phase, all three counted in one store_atomic, and gives it
 * back when its request ends (a pool cleanup: a response sent, an error,
 * a client gone).  A process that dies leaves its records: the worker
 * the master starts in its slot takes them back at once, and a refusal
 * takes back those of any process that no longer exists.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_concurrency.h>
#include <ngx_http_openbank_util.h>


#define NGX_HTTP_OPENBANK_SLOT_KEY_MAX  192

#define NGX_HTTP_OPENBANK_SLOT_OK          0
#define NGX_HTTP_OPENBANK_SLOT_OVERLOADED  1
#define NGX_HTTP_OPENBANK_SLOT_LIMITED     2
#define NGX_HTTP_OPENBANK_SLOT_FULL        3

/* which record an update is for */
#define NGX_HTTP_OPENBANK_SLOT_TOTAL       0
#define NGX_HTTP_OPENBANK_SLOT_PARTNER     1
#define NGX_HTTP_OPENBANK_SLOT_OWNER       2

/* a refusal looks for dead processes at most this often, per process */
#define NGX_HTTP_OPENBANK_RECLAIM_EVERY    1000


/* "core": every count begins with the calls in flight */

typedef struct {
    uint32_t                      in_flight;
    uint32_t                      reserved;
    uint64_t                      overloaded;
    uint64_t                      limited;
    uint64_t                      reclaimed;
} ngx_http_openbank_inflight_t;


/* "core\0w<slot>\0<partner>" */

typedef struct {
    uint32_t                      count;
    int32_t                       pid;
} ngx_http_openbank_owned_t;


/* a request's slot */

typedef struct ngx_http_openbank_slot_s {
    ngx_http_openbank_limiter_t  *limiter;
    ngx_http_openbank_zone_t     *zone;
    ngx_str_t                     total;
    ngx_str_t                     partner;
    ngx_str_t                     owner;
    u_char                        keys[3 * NGX_HTTP_OPENBANK_SLOT_KEY_MAX];
} ngx_http_openbank_slot_t;


/* the records of a process that died */

typedef struct {
    ngx_str_t                     total;
    ngx_str_t                     partner;
    uint32_t                      count;
    int32_t                       pid;
} ngx_http_openbank_dead_t;


typedef struct {
    ngx_http_openbank_slot_t     *slot;
    ngx_uint_t                    what;        /* ..._SLOT_TOTAL... */
    ngx_int_t                     delta;
    ngx_uint_t                    outcome;     /* ..._SLOT_OK... */
    uint32_t                      in_flight;
    uint32_t                      held;
    ngx_array_t                  *dead;        /* ngx_http_openbank_dead_t */
    ngx_pool_t                   *pool;
    ngx_log_t                    *log;
    unsigned                      reclaim:1;   /* may look for the dead */
    unsigned                      respawned:1; /* the slot's previous one */
    unsigned                      given:1;     /* the slot was ours */
} ngx_http_openbank_slot_op_t;


static ngx_int_t ngx_http_openbank_concurrency_take(
    ngx_http_openbank_zone_t *zone, void *data);
static ngx_uint_t ngx_http_openbank_concurrency_judge(
    ngx_http_openbank_zone_t *zone, ngx_http_openbank_slot_op_t *op);
static ngx_int_t ngx_http_openbank_concurrency_update(
    ngx_http_openbank_zone_t *zone, ngx_http_openbank_slot_op_t *op,
    ngx_str_t *key, ngx_uint_t what, ngx_int_t delta);
static ngx_int_t ngx_http_openbank_concurrency_add(
    ngx_http_openbank_store_value_t *sv, void *data);
static void ngx_http_openbank_concurrency_release(void *data);
static ngx_int_t ngx_http_openbank_concurrency_give(
    ngx_http_openbank_zone_t *zone, void *data);
static ngx_int_t ngx_http_openbank_concurrency_reclaim(
    ngx_http_openbank_zone_t *zone, ngx_http_openbank_slot_op_t *op);
static ngx_int_t ngx_http_openbank_concurrency_dead(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_concurrency_reclaim_atomic(
    ngx_http_openbank_zone_t *zone, void *data);
static void ngx_http_openbank_concurrency_log_dead(
    ngx_http_openbank_slot_op_t *op);
static ngx_int_t ngx_http_openbank_concurrency_partners(
    ngx_http_openbank_store_value_t *sv, void *data);


static ngx_msec_t  ngx_http_openbank_reclaimed_at;


/*
 * openbank_concurrency NAME N [per_partner=P%];   (http)
 * openbank_concurrency NAME;                      (location)
 */

char *
ngx_http_openbank_concurrency_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_openbank_loc_conf_t *oblcf = conf;

    ngx_int_t                       rc, n;
    ngx_str_t                      *value, share;
    ngx_uint_t                      i;
    ngx_http_openbank_named_t      *named;
    ngx_http_openbank_limiter_t    *l;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_openbank_module);

    rc = ngx_http_openbank_named(cf, &obmcf->limiters,
                                 sizeof(ngx_http_openbank_limiter_t),
                                 "concurrency limit",
                                 (void **) &oblcf->limiter, &named);
    if (rc != NGX_OK) {
        return rc == NGX_DONE ? NGX_CONF_OK : NGX_CONF_ERROR;
    }

    l = (ngx_http_openbank_limiter_t *) named;
    value = cf->args->elts;

    if (cf->args->nelts < 3) {
        return "needs the number of calls in flight it allows";
    }

    n = ngx_atoi(value[2].data, value[2].len);

    if (n == NGX_ERROR || n < 1 || n > 1000000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid number of calls \"%V\": expected 1 to "
                           "1000000", &value[2]);
        return NGX_CONF_ERROR;
    }

    l->max = n;

    for (i = 3; i < cf->args->nelts; i++) {

        if (value[i].len <= 12
            || ngx_strncmp(value[i].data, "per_partner=", 12) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\": expected "
                               "\"per_partner=\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        if (l->per_partner) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "parameter \"%V\" is duplicate", &value[i]);
            return NGX_CONF_ERROR;
        }

        share.data = value[i].data + 12;
        share.len = value[i].len - 12;

        n = (share.len >= 2 && share.data[share.len - 1] == '%')
            ? ngx_atoi(share.data, share.len - 1) : NGX_ERROR;

        if (n == NGX_ERROR || n < 1 || n > 100) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid per_partner \"%V\": expected a "
                               "share from 1%% to 100%%, such as \"25%%\"",
                               &share);
            return NGX_CONF_ERROR;
        }

        l->per_partner = n;
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_openbank_concurrency_init(ngx_conf_t *cf,
    ngx_http_openbank_main_conf_t *obmcf)
{
    return ngx_http_openbank_named_check(cf, &obmcf->limiters,
                                         "concurrency limit",
                                         obmcf->shm_zone);
}


/*
 * A process starts: the slots held by the process that had its slot
 * before it (a worker that crashed, which the master replaces in the
 * same slot) come back.
 */

ngx_int_t
ngx_http_openbank_concurrency_init_process(ngx_cycle_t *cycle)
{
    ngx_pool_t                     *pool;
    ngx_http_openbank_slot_op_t     op;
    ngx_http_openbank_main_conf_t  *obmcf;

    if (cycle->conf_ctx == NULL
        || cycle->conf_ctx[ngx_http_module.index] == NULL)
    {
        return NGX_OK;
    }

    obmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                                ngx_http_openbank_module);

    if (obmcf == NULL || obmcf->shm_zone == NULL
        || obmcf->limiters.nelts == 0)
    {
        return NGX_OK;
    }

    pool = ngx_create_pool(1024, cycle->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&op, sizeof(ngx_http_openbank_slot_op_t));
    op.pool = pool;
    op.log = cycle->log;
    op.respawned = 1;

    (void) ngx_http_openbank_store_atomic(obmcf->shm_zone->data,
                                   ngx_http_openbank_concurrency_reclaim_atomic,
                                   &op);

    ngx_http_openbank_concurrency_log_dead(&op);

    ngx_destroy_pool(pool);

    return NGX_OK;
}


/*
 * The check of the access phase, after the breaker and before the
 * quota: a call refused here costs no quota, and its Idempotency-Key is
 * released with the refusal.
 */

ngx_int_t
ngx_http_openbank_concurrency_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    u_char                         *p, *keys;
    ngx_str_t                       none = ngx_null_string, *partner;
    ngx_pool_cleanup_t             *cln;
    ngx_http_openbank_slot_t       *slot;
    ngx_http_openbank_limiter_t    *l;
    ngx_http_openbank_slot_op_t     op;
    ngx_http_openbank_loc_conf_t   *oblcf;
    ngx_http_openbank_main_conf_t  *obmcf;

    if (ctx->slot) {
        /* this client request holds its slot already */
        return NGX_DECLINED;
    }

    oblcf = ngx_http_get_module_loc_conf(r, ngx_http_openbank_module);
    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    l = oblcf->limiter;

    partner = ctx->partner ? &ctx->partner->name : &none;

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_openbank_slot_t));
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    slot = cln->data;
    slot->limiter = l;
    slot->zone = obmcf->shm_zone->data;

    keys = slot->keys;

    slot->total = l->named.name;

    p = ngx_snprintf(keys, NGX_HTTP_OPENBANK_SLOT_KEY_MAX, "%V%Zp%V",
                     &l->named.name, partner);
    slot->partner.data = keys;
    slot->partner.len = p - keys;

    keys += NGX_HTTP_OPENBANK_SLOT_KEY_MAX;

    p = ngx_snprintf(keys, NGX_HTTP_OPENBANK_SLOT_KEY_MAX, "%V%Zw%i%Z%V",
                     &l->named.name, ngx_process_slot, partner);
    slot->owner.data = keys;
    slot->owner.len = p - keys;

    ngx_memzero(&op, sizeof(ngx_http_openbank_slot_op_t));
    op.slot = slot;
    op.pool = r->pool;
    op.log = r->connection->log;
    op.reclaim = (ngx_current_msec - ngx_http_openbank_reclaimed_at
                  >= NGX_HTTP_OPENBANK_RECLAIM_EVERY);

    (void) ngx_http_openbank_store_atomic(slot->zone,
                                          ngx_http_openbank_concurrency_take,
                                          &op);

    ngx_http_openbank_concurrency_log_dead(&op);

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "openbank concurrency \"%V\": %ui, %uD in flight, "
                   "%uD of partner \"%V\"", &l->named.name, op.outcome,
                   op.in_flight, op.held, partner);

    switch (op.outcome) {

    case NGX_HTTP_OPENBANK_SLOT_OK:
        cln->handler = ngx_http_openbank_concurrency_release;
        ctx->slot = slot;
        return NGX_DECLINED;

    case NGX_HTTP_OPENBANK_SLOT_LIMITED:
        ctx->retry_after = 1;
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_TOO_MANY_REQUESTS,
                                NGX_HTTP_OPENBANK_PROBLEM_CONCURRENCY_LIMITED,
                                "partner \"%V\" has %uD calls in flight to "
                                "the bank, its share of \"%V\" (%ui%% of "
                                "%ui): retry when one ends", partner,
                                op.held, &l->named.name, l->per_partner,
                                l->max);

    case NGX_HTTP_OPENBANK_SLOT_OVERLOADED:
        ctx->retry_after = 1;
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        NGX_HTTP_OPENBANK_PROBLEM_OVERLOADED,
                                        "the bank core has %ui calls in "
                                        "flight, all that \"%V\" allows: "
                                        "retry in a second", l->max,
                                        &l->named.name);

    default: /* NGX_HTTP_OPENBANK_SLOT_FULL */
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "openbank zone \"%V\" is full: no room to count a "
                      "call in flight of \"%V\", request refused",
                      &obmcf->shm_zone->shm.name, &l->named.name);

        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
                                   "the gateway has no room to count this "
                                   "call: try again later");
    }
}


/* under the lock: judge, look for the dead once if refused, take */

static ngx_int_t
ngx_http_openbank_concurrency_take(ngx_http_openbank_zone_t *zone,
    void *data)
{
    ngx_http_openbank_slot_op_t  *op = data;

    ngx_http_openbank_slot_t  *slot;

    slot = op->slot;

    op->outcome = ngx_http_openbank_concurrency_judge(zone, op);

    if (op->outcome != NGX_HTTP_OPENBANK_SLOT_OK && op->reclaim) {
        ngx_http_openbank_reclaimed_at = ngx_current_msec;

        if (ngx_http_openbank_concurrency_reclaim(zone, op) != NGX_OK) {
            return NGX_ERROR;
        }

        if (op->dead && op->dead->nelts) {
            op->outcome = ngx_http_openbank_concurrency_judge(zone, op);
        }
    }

    if (op->outcome != NGX_HTTP_OPENBANK_SLOT_OK) {
        /* counted among the limit's refusals */
        (void) ngx_http_openbank_concurrency_update(zone, op, &slot->total,
                                               NGX_HTTP_OPENBANK_SLOT_TOTAL,
                                               0);
        return NGX_OK;
    }

    if (ngx_http_openbank_concurrency_update(zone, op, &slot->owner,
                                             NGX_HTTP_OPENBANK_SLOT_OWNER, 1)
        != NGX_HTTP_OPENBANK_STORE_KEEP)
    {
        goto full;
    }

    if (ngx_http_openbank_concurrency_update(zone, op, &slot->partner,
                                             NGX_HTTP_OPENBANK_SLOT_PARTNER,
                                             1)
        != NGX_HTTP_OPENBANK_STORE_KEEP)
    {
        goto undo_owner;
    }

    if (ngx_http_openbank_concurrency_update(zone, op, &slot->total,
                                             NGX_HTTP_OPENBANK_SLOT_TOTAL, 1)
        == NGX_HTTP_OPENBANK_STORE_KEEP)
    {
        return NGX_OK;
    }

    (void) ngx_http_openbank_concurrency_update(zone, op, &slot->partner,
                                           NGX_HTTP_OPENBANK_SLOT_PARTNER,
                                           -1);

undo_owner:

    (void) ngx_http_openbank_concurrency_update(zone, op, &slot->owner,
                                           NGX_HTTP_OPENBANK_SLOT_OWNER, -1);

full:

    op->outcome = NGX_HTTP_OPENBANK_SLOT_FULL;

    return NGX_OK;
}


/*
 * A partner that holds its share (per_partner % of N) is refused even
 * when slots are free: one partner's storm cannot take them all.
 */

static ngx_uint_t
ngx_http_openbank_concurrency_judge(ngx_http_openbank_zone_t *zone,
    ngx_http_openbank_slot_op_t *op)
{
    uint32_t                      held;
    ngx_http_openbank_limiter_t  *l;
    ngx_http_openbank_inflight_t  total;

    l = op->slot->limiter;

    if (ngx_http_openbank_store_get(zone, NGX_HTTP_OPENBANK_TABLE_CONCURRENCY,
                                    &op->slot->total, &total, sizeof(total),
                                    NULL)
        != (ssize_t) sizeof(total))
    {
        total.in_flight = 0;
    }

    if (ngx_http_openbank_store_get(zone, NGX_HTTP_OPENBANK_TABLE_CONCURRENCY,
                                    &op->slot->partner, &held, sizeof(held),
                                    NULL)
        != (ssize_t) sizeof(held))
    {
        held = 0;
    }

    op->in_flight = total.in_flight;
    op->held = held;

    if (l->per_partner
        && (uint64_t) held * 100 >= (uint64_t) l->per_partner * l->max)
    {
        return NGX_HTTP_OPENBANK_SLOT_LIMITED;
    }

    if (total.in_flight >= l->max) {
        return NGX_HTTP_OPENBANK_SLOT_OVERLOADED;
    }

    return NGX_HTTP_OPENBANK_SLOT_OK;
}


static ngx_int_t
ngx_http_openbank_concurrency_update(ngx_http_openbank_zone_t *zone,
    ngx_http_openbank_slot_op_t *op, ngx_str_t *key, ngx_uint_t what,
    ngx_int_t delta)
{
    size_t  size;

    op->what = what;
    op->delta = delta;

    switch (what) {

    case NGX_HTTP_OPENBANK_SLOT_TOTAL:
        size = sizeof(ngx_http_openbank_inflight_t);
        break;

    case NGX_HTTP_OPENBANK_SLOT_OWNER:
        size = sizeof(ngx_http_openbank_owned_t);
        break;

    default: /* NGX_HTTP_OPENBANK_SLOT_PARTNER */
        size = sizeof(uint32_t);
    }

    if (delta <= 0 && what != NGX_HTTP_OPENBANK_SLOT_TOTAL) {
        /* a partner's or a process's record is never made to take off */
        size = 0;
    }

    return ngx_http_openbank_store_update(zone,
                                          NGX_HTTP_OPENBANK_TABLE_CONCURRENCY,
                                          key, size, 0,
                                          ngx_http_openbank_concurrency_add,
                                          op);
}


/*
 * A record's count (its first 32 bits) plus or minus; the limit's own
 * record also counts a refusal (delta 0) or what came back from the
 * dead.  A record at 0 stays: the next call of the partner (or of the
 * process) needs no room in the zone, so a zone that fills up does not
 * stop the partners that call.
 */

static ngx_int_t
ngx_http_openbank_concurrency_add(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_slot_op_t  *op = data;

    uint32_t                      *count;
    ngx_http_openbank_owned_t     *owned;
    ngx_http_openbank_inflight_t  *total;

    count = (uint32_t *) sv->value;

    if (op->what == NGX_HTTP_OPENBANK_SLOT_OWNER) {
        owned = (ngx_http_openbank_owned_t *) sv->value;

        if (op->delta > 0) {
            owned->pid = (int32_t) ngx_pid;

        } else if (owned->pid != (int32_t) ngx_pid) {
            /* not ours: taken back as a dead process's, or another's */
            return NGX_HTTP_OPENBANK_STORE_REFUSE;
        }
    }

    if (op->delta < 0 && *count < (uint32_t) -op->delta) {
        *count = 0;

    } else {
        *count += (uint32_t) op->delta;
    }

    if (op->what != NGX_HTTP_OPENBANK_SLOT_TOTAL) {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    total = (ngx_http_openbank_inflight_t *) sv->value;

    if (op->delta == 0) {
        if (op->outcome == NGX_HTTP_OPENBANK_SLOT_LIMITED) {
            total->limited++;

        } else {
            total->overloaded++;
        }

    } else if (op->dead && op->delta < 0 && !op->slot) {
        total->reclaimed += (uint64_t) -op->delta;
    }

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/* the request ends, however it ends: its slot goes back */

static void
ngx_http_openbank_concurrency_release(void *data)
{
    ngx_http_openbank_slot_t  *slot = data;

    ngx_http_openbank_slot_op_t  op;

    ngx_memzero(&op, sizeof(ngx_http_openbank_slot_op_t));
    op.slot = slot;

    (void) ngx_http_openbank_store_atomic(slot->zone,
                                          ngx_http_openbank_concurrency_give,
                                          &op);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "openbank concurrency \"%V\": slot given back: %d",
                   &slot->limiter->named.name, op.given);
}


static ngx_int_t
ngx_http_openbank_concurrency_give(ngx_http_openbank_zone_t *zone,
    void *data)
{
    ngx_http_openbank_slot_op_t  *op = data;

    ngx_http_openbank_slot_t  *slot;

    slot = op->slot;

    /* the process's record says whether the slot is still ours */

    if (ngx_http_openbank_concurrency_update(zone, op, &slot->owner,
                                             NGX_HTTP_OPENBANK_SLOT_OWNER, -1)
        == NGX_HTTP_OPENBANK_STORE_REFUSE)
    {
        return NGX_OK;
    }

    op->given = 1;

    (void) ngx_http_openbank_concurrency_update(zone, op, &slot->partner,
                                           NGX_HTTP_OPENBANK_SLOT_PARTNER,
                                           -1);
    (void) ngx_http_openbank_concurrency_update(zone, op, &slot->total,
                                           NGX_HTTP_OPENBANK_SLOT_TOTAL, -1);

    return NGX_OK;
}


/*
 * Under the lock: the records of processes that died go, and their
 * counts come off their partners' and their limits' (the walk collects
 * them; the updates follow it).
 */

static ngx_int_t
ngx_http_openbank_concurrency_reclaim(ngx_http_openbank_zone_t *zone,
    ngx_http_openbank_slot_op_t *op)
{
    ngx_uint_t                    i;
    ngx_http_openbank_slot_t     *slot;
    ngx_http_openbank_dead_t     *dead;

    op->dead = ngx_array_create(op->pool, 4,
                                sizeof(ngx_http_openbank_dead_t));
    if (op->dead == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_http_openbank_store_walk(zone,
                                        NGX_HTTP_OPENBANK_TABLE_CONCURRENCY,
                                        ngx_http_openbank_concurrency_dead,
                                        op);

    slot = op->slot;
    op->slot = NULL;
    dead = op->dead->elts;

    for (i = 0; i < op->dead->nelts; i++) {

        if (dead[i].count == 0) {
            continue;
        }

        (void) ngx_http_openbank_concurrency_update(zone, op,
                                           &dead[i].partner,
                                           NGX_HTTP_OPENBANK_SLOT_PARTNER,
                                           -(ngx_int_t) dead[i].count);
        (void) ngx_http_openbank_concurrency_update(zone, op,
                                           &dead[i].total,
                                           NGX_HTTP_OPENBANK_SLOT_TOTAL,
                                           -(ngx_int_t) dead[i].count);
    }

    op->slot = slot;

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_concurrency_dead(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_slot_op_t  *op = data;

    u_char                     *p, *end, *w, *s;
    size_t                      len;
    ngx_int_t                   n;
    ngx_http_openbank_dead_t   *dead;
    ngx_http_openbank_owned_t  *owned;

    /* "name\0w<slot>\0partner" only */

    end = sv->key.data + sv->key.len;
    w = ngx_strlchr(sv->key.data, end, '\0');

    if (w == NULL || end - w < 3 || w[1] != 'w'
        || sv->len != sizeof(ngx_http_openbank_owned_t))
    {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    s = ngx_strlchr(w + 2, end, '\0');
    if (s == NULL) {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    owned = (ngx_http_openbank_owned_t *) sv->value;
    n = ngx_atoi(w + 2, s - w - 2);

    if (owned->pid == (int32_t) ngx_pid) {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    if (!((op->respawned && n == ngx_process_slot)
          || (kill(owned->pid, 0) == -1 && ngx_errno == NGX_ESRCH)))
    {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    dead = ngx_array_push(op->dead);
    if (dead == NULL) {
        return NGX_HTTP_OPENBANK_STORE_STOP;
    }

    /* the keys of its partner and its limit, before the record goes */

    len = (w - sv->key.data) + 2 + (end - s - 1);

    p = ngx_pnalloc(op->pool, len);
    if (p == NULL) {
        op->dead->nelts--;
        return NGX_HTTP_OPENBANK_STORE_STOP;
    }

    dead->total.data = p;
    dead->total.len = w - sv->key.data;

    p = ngx_cpymem(p, sv->key.data, w - sv->key.data);
    *p++ = '\0';
    *p++ = 'p';
    p = ngx_cpymem(p, s + 1, end - s - 1);

    dead->partner.data = dead->total.data;
    dead->partner.len = p - dead->total.data;

    dead->count = owned->count;
    dead->pid = owned->pid;

    return NGX_HTTP_OPENBANK_STORE_DELETE;
}


static ngx_int_t
ngx_http_openbank_concurrency_reclaim_atomic(ngx_http_openbank_zone_t *zone,
    void *data)
{
    return ngx_http_openbank_concurrency_reclaim(zone, data);
}


static void
ngx_http_openbank_concurrency_log_dead(ngx_http_openbank_slot_op_t *op)
{
    ngx_uint_t                 i;
    ngx_http_openbank_dead_t  *dead;

    if (op->dead == NULL) {
        return;
    }

    dead = op->dead->elts;

    for (i = 0; i < op->dead->nelts; i++) {

        if (dead[i].count == 0) {
            continue;
        }

        ngx_log_error(NGX_LOG_WARN, op->log, 0,
                      "openbank concurrency \"%V\": %uD calls in flight of "
                      "process %D, which is gone, taken back",
                      &dead[i].total, dead[i].count, dead[i].pid);
    }
}


/*
 * status: "concurrency":[{"name":...,"in_flight":...,"partners":{...}}],
 * inside the status endpoint's store_atomic; "partners" at most the
 * number of partners known
 */

#define NGX_HTTP_OPENBANK_LIMITER_JSON_LEN                                   \
    (sizeof("{\"name\":\"\",\"limit\":,\"per_partner\":,\"in_flight\":,"     \
            "\"partners\":{},\"refused\":{\"overloaded\":,"                  \
            "\"concurrency_limited\":},\"reclaimed\":},") + 64               \
     + 6 * NGX_INT64_LEN)

#define NGX_HTTP_OPENBANK_HELD_JSON_LEN  (sizeof("\"\":,") + 64 + NGX_INT_T_LEN)


typedef struct {
    u_char                       *p;
    ngx_str_t                    *name;
    ngx_uint_t                    n;
    ngx_uint_t                    max;
} ngx_http_openbank_held_walk_t;


size_t
ngx_http_openbank_concurrency_status_len(ngx_http_openbank_main_conf_t *obmcf,
    ngx_uint_t partners)
{
    return sizeof(",\"concurrency\":[]")
           + obmcf->limiters.nelts
             * (NGX_HTTP_OPENBANK_LIMITER_JSON_LEN
                + partners * NGX_HTTP_OPENBANK_HELD_JSON_LEN);
}


u_char *
ngx_http_openbank_concurrency_status(u_char *p,
    ngx_http_openbank_zone_t *zone, ngx_http_openbank_main_conf_t *obmcf,
    ngx_uint_t partners)
{
    ngx_uint_t                      i;
    ngx_http_openbank_limiter_t   **lp;
    ngx_http_openbank_inflight_t    total;
    ngx_http_openbank_held_walk_t   hw;

    lp = obmcf->limiters.elts;

    p = ngx_cpymem(p, ",\"concurrency\":[",
                   sizeof(",\"concurrency\":[") - 1);

    for (i = 0; i < obmcf->limiters.nelts; i++) {

        if (ngx_http_openbank_store_get(zone,
                                        NGX_HTTP_OPENBANK_TABLE_CONCURRENCY,
                                        &lp[i]->named.name, &total,
                                        sizeof(total), NULL)
            != (ssize_t) sizeof(total))
        {
            ngx_memzero(&total, sizeof(total));
        }

        p = ngx_sprintf(p, "%s{\"name\":\"%V\",\"limit\":%ui,"
                        "\"per_partner\":%ui,\"in_flight\":%uD,"
                        "\"partners\":{",
                        i ? "," : "", &lp[i]->named.name, lp[i]->max,
                        lp[i]->per_partner, total.in_flight);

        hw.p = p;
        hw.name = &lp[i]->named.name;
        hw.n = 0;
        hw.max = partners;

        (void) ngx_http_openbank_store_walk(zone,
                                        NGX_HTTP_OPENBANK_TABLE_CONCURRENCY,
                                        ngx_http_openbank_concurrency_partners,
                                        &hw);

        p = ngx_sprintf(hw.p, "},\"refused\":{\"overloaded\":%uL,"
                        "\"concurrency_limited\":%uL},\"reclaimed\":%uL}",
                        total.overloaded, total.limited, total.reclaimed);
    }

    *p++ = ']';

    return p;
}


static ngx_int_t
ngx_http_openbank_concurrency_partners(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_held_walk_t  *hw = data;

    size_t  len;

    len = hw->name->len;

    if (sv->key.len <= len + 2
        || ngx_memcmp(sv->key.data, hw->name->data, len) != 0
        || sv->key.data[len] != '\0' || sv->key.data[len + 1] != 'p'
        || sv->len != sizeof(uint32_t)
        || sv->key.len - len - 2 > 64
        || *(uint32_t *) sv->value == 0)
    {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    if (hw->n++ == hw->max) {
        return NGX_HTTP_OPENBANK_STORE_STOP;
    }

    hw->p = ngx_sprintf(hw->p, "%s\"%*s\":%uD", hw->n > 1 ? "," : "",
                        sv->key.len - len - 2, sv->key.data + len + 2,
                        *(uint32_t *) sv->value);

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/* /metrics: each limit's calls in flight, its refusals, what came back */

size_t
ngx_http_openbank_concurrency_metrics_len(
    ngx_http_openbank_main_conf_t *obmcf)
{
    return 1024 + obmcf->limiters.nelts * 5 * (128 + NGX_INT64_LEN);
}


u_char *
ngx_http_openbank_concurrency_metrics(u_char *p, ngx_pool_t *pool,
    ngx_http_openbank_zone_t *zone, ngx_http_openbank_main_conf_t *obmcf)
{
    ngx_uint_t                      i, n;
    ngx_http_openbank_limiter_t   **lp;
    ngx_http_openbank_inflight_t   *t;

    n = obmcf->limiters.nelts;

    if (n == 0) {
        return p;
    }

    lp = obmcf->limiters.elts;

    t = ngx_palloc(pool, n * sizeof(ngx_http_openbank_inflight_t));
    if (t == NULL) {
        return p;
    }

    for (i = 0; i < n; i++) {
        if (ngx_http_openbank_store_get(zone,
                                        NGX_HTTP_OPENBANK_TABLE_CONCURRENCY,
                                        &lp[i]->named.name, &t[i],
                                        sizeof(*t), NULL)
            != (ssize_t) sizeof(*t))
        {
            ngx_memzero(&t[i], sizeof(*t));
        }
    }

    p = ngx_sprintf(p, "# HELP openbank_concurrency_in_flight Calls in "
                    "flight to the bank.\n"
                    "# TYPE openbank_concurrency_in_flight gauge\n");

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "openbank_concurrency_in_flight{limit=\"%V\"} "
                        "%uD\n", &lp[i]->named.name, t[i].in_flight);
    }

    p = ngx_sprintf(p, "# HELP openbank_concurrency_limit The calls in "
                    "flight a limit allows.\n"
                    "# TYPE openbank_concurrency_limit gauge\n");

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "openbank_concurrency_limit{limit=\"%V\"} %ui\n",
                        &lp[i]->named.name, lp[i]->max);
    }

    p = ngx_sprintf(p, "# HELP openbank_concurrency_refusals_total Calls "
                    "a concurrency limit refused, by code.\n"
                    "# TYPE openbank_concurrency_refusals_total counter\n");

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "openbank_concurrency_refusals_total"
                        "{limit=\"%V\",reason=\"overloaded\"} %uL\n"
                        "openbank_concurrency_refusals_total"
                        "{limit=\"%V\",reason=\"concurrency_limited\"} "
                        "%uL\n",
                        &lp[i]->named.name, t[i].overloaded,
                        &lp[i]->named.name, t[i].limited);
    }

    p = ngx_sprintf(p, "# HELP openbank_concurrency_reclaimed_total Calls "
                    "in flight of processes that died, taken back.\n"
                    "# TYPE openbank_concurrency_reclaimed_total counter\n");

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "openbank_concurrency_reclaimed_total"
                        "{limit=\"%V\"} %uL\n",
                        &lp[i]->named.name, t[i].reclaimed);
    }

    return p;
}
