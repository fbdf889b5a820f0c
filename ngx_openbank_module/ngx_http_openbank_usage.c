
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Usage history (docs/admin.md, "Usage"): for each partner, product and
 * day in openbank_timezone, the calls, the gateway's refusals by code,
 * the statuses by class and a latency histogram.  A day is one record of
 * the zone's USAGE table, counted in the log phase under the lock the
 * metrics take there (no lock of its own), kept 92 days, and written
 * with the counters' snapshot, so that it outlives a restart.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_util.h>
#include <ngx_http_openbank_usage.h>


#define NGX_HTTP_OPENBANK_USAGE_DAYS      92     /* kept, and asked at most */
#define NGX_HTTP_OPENBANK_USAGE_REFUSED   40     /* >= PROBLEM_N */


/* upper bounds of the latency buckets, in milliseconds; then "more" */

static uint32_t  ngx_http_openbank_usage_bounds[] = {
    1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100,
    120, 150, 200, 250, 300, 400, 500, 600, 800, 1000, 1200, 1500, 2000,
    2500, 3000, 4000, 5000, 6000, 8000, 10000, 12000, 15000, 20000, 25000,
    30000, 40000, 50000, 60000
};

#define NGX_HTTP_OPENBANK_USAGE_BUCKETS                                      \
    (sizeof(ngx_http_openbank_usage_bounds) / sizeof(uint32_t) + 1)


/* a day of a partner's product; the zone's layout version covers it */

typedef struct {
    uint32_t                      calls;
    uint32_t                      statuses[3];   /* 2xx, 4xx, 5xx */
    uint32_t                      refused[NGX_HTTP_OPENBANK_USAGE_REFUSED];
    uint32_t                      latency[NGX_HTTP_OPENBANK_USAGE_BUCKETS];
} ngx_http_openbank_usage_t;


/* a day found for an answer */

typedef struct {
    ngx_str_t                     product;
    time_t                        day;
    ngx_http_openbank_usage_t     usage;
} ngx_http_openbank_usage_day_t;


typedef struct {
    ngx_str_t                    *partner;
    time_t                        from;
    time_t                        to;
    ngx_array_t                  *found;
    ngx_pool_t                   *pool;
} ngx_http_openbank_usage_query_t;


typedef struct {
    size_t                        len;
    u_char                       *p;
} ngx_http_openbank_usage_snap_t;


static ngx_int_t ngx_http_openbank_usage_add(
    ngx_http_openbank_store_value_t *sv, void *data);
static time_t ngx_http_openbank_usage_today(ngx_int_t tz);
static ngx_int_t ngx_http_openbank_usage_parse_key(ngx_str_t *key,
    ngx_str_t *partner, ngx_str_t *product, time_t *day);
static ngx_int_t ngx_http_openbank_usage_merge(
    ngx_http_openbank_usage_query_t *q, ngx_array_t *others);
static ngx_int_t ngx_http_openbank_usage_recent_one(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_usage_collect(
    ngx_http_openbank_zone_t *zone, void *data);
static ngx_int_t ngx_http_openbank_usage_found(
    ngx_http_openbank_store_value_t *sv, void *data);
static u_char *ngx_http_openbank_usage_day_json(u_char *p, time_t day,
    ngx_http_openbank_usage_day_t *d, ngx_uint_t n);
static uint32_t ngx_http_openbank_usage_percentile(uint32_t *latency,
    uint32_t calls, ngx_uint_t percent);
static ngx_int_t ngx_http_openbank_usage_size(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_usage_line(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_usage_set(
    ngx_http_openbank_store_value_t *sv, void *data);


/*
 * The call a request made, to count: only a partner's (the usage is
 * theirs), on the product of the location its checks ran in.
 */

ngx_int_t
ngx_http_openbank_usage_prepare(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_uint_t status, ngx_int_t ms,
    ngx_http_openbank_usage_op_t *op)
{
    u_char                         *p;
    time_t                          day;
    ngx_str_t                      *product, other = ngx_string("other");
    ngx_uint_t                      i;
    ngx_http_openbank_loc_conf_t   *oblcf;
    ngx_http_openbank_main_conf_t  *obmcf;

    if (ctx == NULL || ctx->partner == NULL) {
        return NGX_DECLINED;
    }

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    oblcf = ngx_http_openbank_api_conf(r, ctx);

    product = oblcf->product.len ? &oblcf->product : &other;

    if (ctx->partner->name.len + product->len + NGX_TIME_T_LEN + 2
        > NGX_HTTP_OPENBANK_USAGE_KEY_MAX)
    {
        return NGX_DECLINED;
    }

    day = ngx_http_openbank_usage_today(obmcf->tz_offset);

    p = ngx_sprintf(op->buf, "%V/%V/%T", &ctx->partner->name, product, day);

    op->key.data = op->buf;
    op->key.len = p - op->buf;

    /* the end of the day, where it is a day, and the days it is kept */

    op->expire = (uint64_t) ((day + 1 + NGX_HTTP_OPENBANK_USAGE_DAYS) * 86400
                             - obmcf->tz_offset) * 1000;

    op->status = status;

    op->problem = NGX_HTTP_OPENBANK_PROBLEM_N;

    if (ctx->problem_code.len && status >= NGX_HTTP_BAD_REQUEST) {
        op->problem = ngx_http_openbank_problem_find(ctx->problem_code.data,
                                                     ctx->problem_code.len);
    }

    for (i = 0; i < NGX_HTTP_OPENBANK_USAGE_BUCKETS - 1; i++) {
        if ((uint32_t) ms <= ngx_http_openbank_usage_bounds[i]) {
            break;
        }
    }

    op->bucket = i;

    return NGX_OK;
}


/* under the zone's lock: NGX_HTTP_OPENBANK_STORE_FULL when not counted */

ngx_int_t
ngx_http_openbank_usage_count(ngx_http_openbank_zone_t *zone,
    ngx_http_openbank_usage_op_t *op)
{
    return ngx_http_openbank_store_update(zone, NGX_HTTP_OPENBANK_TABLE_USAGE,
                                          &op->key,
                                          sizeof(ngx_http_openbank_usage_t),
                                          op->expire,
                                          ngx_http_openbank_usage_add, op);
}


static ngx_int_t
ngx_http_openbank_usage_add(ngx_http_openbank_store_value_t *sv, void *data)
{
    ngx_http_openbank_usage_op_t  *op = data;

    ngx_http_openbank_usage_t  *u;

    u = (ngx_http_openbank_usage_t *) sv->value;

    u->calls++;

    if (op->status >= 200 && op->status < 300) {
        u->statuses[0]++;

    } else if (op->status >= 400 && op->status < 500) {
        u->statuses[1]++;

    } else if (op->status >= 500) {
        u->statuses[2]++;
    }

    if (op->problem < NGX_HTTP_OPENBANK_PROBLEM_N) {
        u->refused[op->problem]++;
    }

    u->latency[op->bucket]++;

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/* the number of the day it is in openbank_timezone */

static time_t
ngx_http_openbank_usage_today(ngx_int_t tz)
{
    time_t  local, day;

    local = ngx_time() + tz;
    day = local / 86400;

    if (local % 86400 < 0) {
        day--;
    }

    return day;
}


/* "partner/product/day" */

static ngx_int_t
ngx_http_openbank_usage_parse_key(ngx_str_t *key, ngx_str_t *partner,
    ngx_str_t *product, time_t *day)
{
    u_char  *p, *q, *last;

    p = key->data;
    last = p + key->len;

    q = ngx_strlchr(p, last, '/');
    if (q == NULL || q == p) {
        return NGX_ERROR;
    }

    partner->data = p;
    partner->len = q - p;

    p = q + 1;

    q = ngx_strlchr(p, last, '/');
    if (q == NULL || q == p) {
        return NGX_ERROR;
    }

    product->data = p;
    product->len = q - p;

    *day = ngx_atotm(q + 1, last - q - 1);

    return (*day == NGX_ERROR) ? NGX_ERROR : NGX_OK;
}


/*
 * The days from "from" to "to" (YYYY-MM-DD, in openbank_timezone, both
 * included; the last 30 days to today without them) of a partner, as
 * the JSON of docs/admin.md: every day of the range, with zeros where
 * the partner made no call; NGX_DONE if it made none in the range.
 * NGX_DECLINED with "err" for a range that is not one.
 */

ngx_int_t
ngx_http_openbank_usage_json(ngx_http_request_t *r, ngx_str_t *partner,
    ngx_str_t *from, ngx_str_t *to, ngx_array_t *others, ngx_str_t *out,
    const char **err)
{
    u_char                          *p;
    size_t                           len;
    time_t                           t, day, today;
    ngx_int_t                        rc;
    ngx_uint_t                       i, j, n;
    ngx_array_t                      found;
    ngx_http_openbank_main_conf_t   *obmcf;
    ngx_http_openbank_usage_day_t   *d, swap;
    ngx_http_openbank_usage_query_t  q;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    today = ngx_http_openbank_usage_today(obmcf->tz_offset);

    q.to = today;

    if (to->len) {
        t = ngx_http_openbank_parse_time(to);
        if (t == NGX_ERROR || to->len != 10) {
            *err = "\"to\" must be a date, YYYY-MM-DD";
            return NGX_DECLINED;
        }

        q.to = t / 86400;
    }

    q.from = q.to - 29;

    if (from->len) {
        t = ngx_http_openbank_parse_time(from);
        if (t == NGX_ERROR || from->len != 10) {
            *err = "\"from\" must be a date, YYYY-MM-DD";
            return NGX_DECLINED;
        }

        q.from = t / 86400;
    }

    if (q.from > q.to) {
        *err = "\"from\" is after \"to\"";
        return NGX_DECLINED;
    }

    if (q.to - q.from >= NGX_HTTP_OPENBANK_USAGE_DAYS) {
        *err = "at most 92 days at once";
        return NGX_DECLINED;
    }

    if (ngx_array_init(&found, r->pool, 8,
                       sizeof(ngx_http_openbank_usage_day_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    rc = NGX_OK;

    q.partner = partner;
    q.found = &found;
    q.pool = r->pool;

    if (ngx_http_openbank_store_atomic(obmcf->shm_zone->data,
                                       ngx_http_openbank_usage_collect, &q)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the other gateways' counts of the range, added to this one's */

    if (others != NULL
        && ngx_http_openbank_usage_merge(&q, others) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (found.nelts == 0) {
        rc = NGX_DONE;
    }

    /* a day without calls, and each product of a day, as the longest */

    len = sizeof("{\"days\":[]}") + (q.to - q.from + 1) * 200;

    d = found.elts;

    for (i = 0; i < found.nelts; i++) {
        len += d[i].product.len + 64;

        for (j = 0; j < NGX_HTTP_OPENBANK_PROBLEM_N; j++) {
            if (d[i].usage.refused[j]) {
                len += ngx_http_openbank_problem_name(j)->len
                       + NGX_INT32_LEN + 4;
            }
        }
    }

    out->data = ngx_pnalloc(r->pool, len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(out->data, "{\"days\":[", sizeof("{\"days\":[") - 1);

    for (day = q.from; day <= q.to; day++) {

        /* the records of the day: found is in no order, and short */

        n = 0;

        for (i = 0; i < found.nelts; i++) {
            if (d[i].day == day) {
                if (i != n) {
                    swap = d[n];
                    d[n] = d[i];
                    d[i] = swap;
                }

                n++;
            }
        }

        if (day != q.from) {
            *p++ = ',';
        }

        p = ngx_http_openbank_usage_day_json(p, day, d, n);

        d += n;
        found.nelts -= n;
    }

    p = ngx_cpymem(p, "]}", 2);

    out->len = p - out->data;

    return rc;
}


/* the partner's records of the range, copied out under one lock */

static ngx_int_t
ngx_http_openbank_usage_collect(ngx_http_openbank_zone_t *zone, void *data)
{
    return ngx_http_openbank_store_walk(zone, NGX_HTTP_OPENBANK_TABLE_USAGE,
                                        ngx_http_openbank_usage_found, data);
}


static ngx_int_t
ngx_http_openbank_usage_found(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_usage_query_t  *q = data;

    time_t                          day;
    ngx_str_t                       partner, product;
    ngx_http_openbank_usage_day_t  *d;

    if (sv->len != sizeof(ngx_http_openbank_usage_t)
        || ngx_http_openbank_usage_parse_key(&sv->key, &partner, &product,
                                             &day)
           != NGX_OK
        || partner.len != q->partner->len
        || ngx_strncmp(partner.data, q->partner->data, partner.len) != 0
        || day < q->from || day > q->to)
    {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    d = ngx_array_push(q->found);
    if (d == NULL) {
        return NGX_HTTP_OPENBANK_STORE_STOP;
    }

    d->product.data = ngx_pnalloc(q->pool, product.len);
    if (d->product.data == NULL) {
        q->found->nelts--;
        return NGX_HTTP_OPENBANK_STORE_STOP;
    }

    ngx_memcpy(d->product.data, product.data, product.len);
    d->product.len = product.len;
    d->day = day;
    ngx_memcpy(&d->usage, sv->value, sizeof(ngx_http_openbank_usage_t));

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/*
 * {"date":..,"products":{<product>:{"calls":..,"refused":{<code>:..}}},
 *  "statuses":{"2xx":..,"4xx":..,"5xx":..},"latency_ms":{"p50":..,"p99":..}}
 */

static u_char *
ngx_http_openbank_usage_day_json(u_char *p, time_t day,
    ngx_http_openbank_usage_day_t *d, ngx_uint_t n)
{
    uint32_t                    calls, statuses[3];
    ngx_tm_t                    tm;
    ngx_uint_t                  i, j, k;
    ngx_http_openbank_usage_t   all;

    ngx_gmtime(day * 86400, &tm);

    p = ngx_sprintf(p, "{\"date\":\"%4d-%02d-%02d\",\"products\":{",
                    tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday);

    ngx_memzero(&all, sizeof(ngx_http_openbank_usage_t));
    calls = 0;
    statuses[0] = 0;
    statuses[1] = 0;
    statuses[2] = 0;

    for (i = 0; i < n; i++) {
        p = ngx_sprintf(p, "%s\"%V\":{\"calls\":%uD,\"refused\":{",
                        i ? "," : "", &d[i].product, d[i].usage.calls);

        k = 0;

        for (j = 0; j < NGX_HTTP_OPENBANK_PROBLEM_N; j++) {
            if (d[i].usage.refused[j]) {
                p = ngx_sprintf(p, "%s\"%V\":%uD", k++ ? "," : "",
                                ngx_http_openbank_problem_name(j),
                                d[i].usage.refused[j]);
            }
        }

        p = ngx_cpymem(p, "}}", 2);

        calls += d[i].usage.calls;

        for (j = 0; j < 3; j++) {
            statuses[j] += d[i].usage.statuses[j];
        }

        for (j = 0; j < NGX_HTTP_OPENBANK_USAGE_BUCKETS; j++) {
            all.latency[j] += d[i].usage.latency[j];
        }
    }

    p = ngx_sprintf(p, "},\"statuses\":{\"2xx\":%uD,\"4xx\":%uD,\"5xx\":%uD},"
                    "\"latency_ms\":{\"p50\":%uD,\"p99\":%uD}}",
                    statuses[0], statuses[1], statuses[2],
                    ngx_http_openbank_usage_percentile(all.latency, calls, 50),
                    ngx_http_openbank_usage_percentile(all.latency, calls,
                                                       99));

    return p;
}


/*
 * The upper bound of the bucket the percentile falls in (0 without
 * calls); beyond the last bound, the last bound.
 */

static uint32_t
ngx_http_openbank_usage_percentile(uint32_t *latency, uint32_t calls,
    ngx_uint_t percent)
{
    uint64_t    rank, seen;
    ngx_uint_t  i;

    if (calls == 0) {
        return 0;
    }

    rank = ((uint64_t) calls * percent + 99) / 100;
    seen = 0;

    for (i = 0; i < NGX_HTTP_OPENBANK_USAGE_BUCKETS - 1; i++) {
        seen += latency[i];

        if (seen >= rank) {
            return ngx_http_openbank_usage_bounds[i];
        }
    }

    return ngx_http_openbank_usage_bounds[i - 1];
}


/*
 * The snapshot's lines, under the lock the snapshot holds:
 * "usage <key> <expire> <name>=<count> ...", the counts that are not 0
 * by name ("calls", "2xx", "4xx", "5xx", "r.<code>", "l<bucket>"), so
 * that a snapshot outlives a new code or a new order of the codes.
 */

size_t
ngx_http_openbank_usage_snapshot_len(ngx_http_openbank_zone_t *zone)
{
    ngx_http_openbank_usage_snap_t  sn;

    sn.len = 0;

    (void) ngx_http_openbank_store_walk(zone, NGX_HTTP_OPENBANK_TABLE_USAGE,
                                        ngx_http_openbank_usage_size, &sn);

    return sn.len;
}


u_char *
ngx_http_openbank_usage_snapshot(ngx_http_openbank_zone_t *zone, u_char *p)
{
    ngx_http_openbank_usage_snap_t  sn;

    sn.p = p;

    (void) ngx_http_openbank_store_walk(zone, NGX_HTTP_OPENBANK_TABLE_USAGE,
                                        ngx_http_openbank_usage_line, &sn);

    return sn.p;
}


static ngx_int_t
ngx_http_openbank_usage_size(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_usage_snap_t  *sn = data;

    ngx_uint_t                  i;
    ngx_http_openbank_usage_t  *u;

    if (sv->len != sizeof(ngx_http_openbank_usage_t)) {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    u = (ngx_http_openbank_usage_t *) sv->value;

    sn->len += sizeof("usage  \n") - 1 + sv->key.len + NGX_INT64_LEN
               + 4 * (sizeof(" calls=") + NGX_INT32_LEN);

    for (i = 0; i < NGX_HTTP_OPENBANK_PROBLEM_N; i++) {
        if (u->refused[i]) {
            sn->len += sizeof(" r.=") + ngx_http_openbank_problem_name(i)->len
                       + NGX_INT32_LEN;
        }
    }

    for (i = 0; i < NGX_HTTP_OPENBANK_USAGE_BUCKETS; i++) {
        if (u->latency[i]) {
            sn->len += sizeof(" l00=") + NGX_INT32_LEN;
        }
    }

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


static ngx_int_t
ngx_http_openbank_usage_line(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_usage_snap_t  *sn = data;

    u_char                     *p;
    ngx_uint_t                  i;
    ngx_http_openbank_usage_t  *u;

    if (sv->len != sizeof(ngx_http_openbank_usage_t)) {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    u = (ngx_http_openbank_usage_t *) sv->value;

    p = ngx_sprintf(sn->p, "usage %V %uL calls=%uD 2xx=%uD 4xx=%uD 5xx=%uD",
                    &sv->key, sv->expire, u->calls, u->statuses[0],
                    u->statuses[1], u->statuses[2]);

    for (i = 0; i < NGX_HTTP_OPENBANK_PROBLEM_N; i++) {
        if (u->refused[i]) {
            p = ngx_sprintf(p, " r.%V=%uD", ngx_http_openbank_problem_name(i),
                            u->refused[i]);
        }
    }

    for (i = 0; i < NGX_HTTP_OPENBANK_USAGE_BUCKETS; i++) {
        if (u->latency[i]) {
            p = ngx_sprintf(p, " l%ui=%uD", i, u->latency[i]);
        }
    }

    *p++ = '\n';
    sn->p = p;

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/*
 * A line of the snapshot after "usage ", back into the zone: NGX_DECLINED
 * for a malformed or expired one (skipped), NGX_ERROR when the zone is
 * full.  A name it does not know (a code no longer given) is skipped.
 */

ngx_int_t
ngx_http_openbank_usage_restore(ngx_log_t *log,
    ngx_http_openbank_zone_t *zone, u_char *p, u_char *last,
    uint64_t now_ms)
{
    u_char                     *q, *eq;
    time_t                      day;
    uint64_t                    expire;
    ngx_int_t                   n;
    ngx_str_t                   key, partner, product;
    ngx_uint_t                  i;
    ngx_http_openbank_usage_t   u;

    ngx_memzero(&u, sizeof(ngx_http_openbank_usage_t));

    q = ngx_strlchr(p, last, ' ');

    key.data = p;
    key.len = q ? q - p : 0;

    if (q == NULL || key.len == 0 || key.len > NGX_HTTP_OPENBANK_USAGE_KEY_MAX
        || ngx_http_openbank_usage_parse_key(&key, &partner, &product, &day)
           != NGX_OK)
    {
        goto malformed;
    }

    p = q + 1;
    q = ngx_strlchr(p, last, ' ');
    if (q == NULL) {
        q = last;
    }

    expire = (uint64_t) ngx_atoof(p, q - p);

    if ((off_t) expire == NGX_ERROR) {
        goto malformed;
    }

    while (q < last) {
        p = q + 1;
        q = ngx_strlchr(p, last, ' ');
        if (q == NULL) {
            q = last;
        }

        eq = ngx_strlchr(p, q, '=');
        if (eq == NULL || eq == p) {
            goto malformed;
        }

        n = ngx_atoi(eq + 1, q - eq - 1);
        if (n == NGX_ERROR || n > (ngx_int_t) 0xffffffff) {
            goto malformed;
        }

        if (eq - p == 5 && ngx_strncmp(p, "calls", 5) == 0) {
            u.calls = n;

        } else if (eq - p == 3 && p[1] == 'x' && p[2] == 'x'
                   && (p[0] == '2' || p[0] == '4' || p[0] == '5'))
        {
            u.statuses[p[0] == '2' ? 0 : (p[0] == '4' ? 1 : 2)] = n;

        } else if (eq - p > 2 && p[0] == 'r' && p[1] == '.') {
            i = ngx_http_openbank_problem_find(p + 2, eq - p - 2);

            if (i < NGX_HTTP_OPENBANK_PROBLEM_N) {
                u.refused[i] = n;
            }

        } else if (p[0] == 'l') {
            i = ngx_atoi(p + 1, eq - p - 1);

            if (i >= NGX_HTTP_OPENBANK_USAGE_BUCKETS) {
                goto malformed;
            }

            u.latency[i] = n;

        } else {
            goto malformed;
        }
    }

    if (expire <= now_ms) {
        return NGX_DECLINED;
    }

    if (ngx_http_openbank_store_update(zone, NGX_HTTP_OPENBANK_TABLE_USAGE,
                                       &key,
                                       sizeof(ngx_http_openbank_usage_t),
                                       expire, ngx_http_openbank_usage_set,
                                       &u)
        == NGX_HTTP_OPENBANK_STORE_FULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;

malformed:

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "malformed usage line in the counters file: ignored");

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_openbank_usage_set(ngx_http_openbank_store_value_t *sv, void *data)
{
    if (sv->len == sizeof(ngx_http_openbank_usage_t)) {
        ngx_memcpy(sv->value, data, sizeof(ngx_http_openbank_usage_t));
    }

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/*
 * Cluster mode (docs/cluster.md, "Usage over the cluster"): each
 * gateway's days are fields of the partner's hash in Redis,
 * "<product>/<day>/<gateway>", their counters as decimal numbers
 * separated by commas (calls, the 3 statuses, the refusals, the latency
 * buckets).  A gateway writes its own, whole (so a lost or repeated
 * write does no harm), for the days that may still move.
 */

#define NGX_HTTP_OPENBANK_USAGE_COUNTERS                                     \
    (sizeof(ngx_http_openbank_usage_t) / sizeof(uint32_t))


typedef struct {
    ngx_pool_t                   *pool;
    ngx_array_t                  *out;         /* ..._usage_text_t */
    time_t                        since;
} ngx_http_openbank_usage_recent_t;


/* the days since "since" of every partner, as fields of its hash */

ngx_int_t
ngx_http_openbank_usage_recent(ngx_http_openbank_zone_t *zone,
    ngx_pool_t *pool, ngx_int_t tz, ngx_array_t *out)
{
    ngx_http_openbank_usage_recent_t  rc;

    rc.pool = pool;
    rc.out = out;
    rc.since = ngx_http_openbank_usage_today(tz) - 1;

    return ngx_http_openbank_store_walk(zone, NGX_HTTP_OPENBANK_TABLE_USAGE,
                                        ngx_http_openbank_usage_recent_one,
                                        &rc);
}


static ngx_int_t
ngx_http_openbank_usage_recent_one(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_usage_recent_t  *rc = data;

    u_char                       *p;
    time_t                        day;
    uint32_t                      n[NGX_HTTP_OPENBANK_USAGE_COUNTERS];
    ngx_str_t                     partner, product;
    ngx_uint_t                    i;
    ngx_http_openbank_usage_text_t  *t;

    if (sv->len != sizeof(ngx_http_openbank_usage_t)
        || ngx_http_openbank_usage_parse_key(&sv->key, &partner, &product,
                                             &day)
           != NGX_OK
        || day < rc->since)
    {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    t = ngx_array_push(rc->out);
    if (t == NULL) {
        return NGX_HTTP_OPENBANK_STORE_STOP;
    }

    ngx_memcpy(n, sv->value, sizeof(n));

    p = ngx_pnalloc(rc->pool, sv->key.len
                              + NGX_HTTP_OPENBANK_USAGE_COUNTERS
                                * (NGX_INT32_LEN + 1));
    if (p == NULL) {
        rc->out->nelts--;
        return NGX_HTTP_OPENBANK_STORE_STOP;
    }

    t->partner.data = p;
    t->partner.len = partner.len;
    p = ngx_cpymem(p, partner.data, partner.len);

    /* "product/day" */

    t->field.data = p;
    p = ngx_cpymem(p, product.data, sv->key.len - partner.len - 1);
    t->field.len = p - t->field.data;

    t->value.data = p;

    for (i = 0; i < NGX_HTTP_OPENBANK_USAGE_COUNTERS; i++) {
        p = ngx_sprintf(p, i ? ",%uD" : "%uD", n[i]);
    }

    t->value.len = p - t->value.data;

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/*
 * A field of another gateway, "<product>/<day>/<gateway>" and its value,
 * added to "days" (..._usage_day_t, made by ngx_http_openbank_usage_days):
 * NGX_DECLINED when malformed.
 */

ngx_array_t *
ngx_http_openbank_usage_days(ngx_pool_t *pool)
{
    return ngx_array_create(pool, 8, sizeof(ngx_http_openbank_usage_day_t));
}


ngx_int_t
ngx_http_openbank_usage_add_field(ngx_array_t *days, ngx_pool_t *pool,
    u_char *field, size_t flen, u_char *value, size_t vlen)
{
    u_char                         *p, *q, *last;
    time_t                          day;
    uint32_t                        n[NGX_HTTP_OPENBANK_USAGE_COUNTERS];
    ngx_int_t                       v;
    ngx_uint_t                      i;
    ngx_http_openbank_usage_day_t  *d;

    last = field + flen;

    p = ngx_strlchr(field, last, '/');
    if (p == NULL || p == field) {
        return NGX_DECLINED;
    }

    q = ngx_strlchr(p + 1, last, '/');
    if (q == NULL || q == p + 1) {
        return NGX_DECLINED;
    }

    day = ngx_atotm(p + 1, q - p - 1);
    if (day == NGX_ERROR) {
        return NGX_DECLINED;
    }

    last = value + vlen;

    for (i = 0; i < NGX_HTTP_OPENBANK_USAGE_COUNTERS; i++) {
        q = ngx_strlchr(value, last, ',');
        if (q == NULL) {
            q = last;
        }

        v = ngx_atoi(value, q - value);
        if (v == NGX_ERROR || v > 0xffffffff) {
            return NGX_DECLINED;
        }

        n[i] = (uint32_t) v;

        if (q == last) {
            break;
        }

        value = q + 1;
    }

    if (i != NGX_HTTP_OPENBANK_USAGE_COUNTERS - 1 || q != last) {
        return NGX_DECLINED;
    }

    d = ngx_array_push(days);
    if (d == NULL) {
        return NGX_ERROR;
    }

    d->product.data = ngx_pnalloc(pool, p - field);
    if (d->product.data == NULL) {
        return NGX_ERROR;
    }

    d->product.len = p - field;
    ngx_memcpy(d->product.data, field, d->product.len);
    d->day = day;
    ngx_memcpy(&d->usage, n, sizeof(n));

    return NGX_OK;
}


/* other gateways' days into the query's, a product's day summed */

static ngx_int_t
ngx_http_openbank_usage_merge(ngx_http_openbank_usage_query_t *q,
    ngx_array_t *others)
{
    uint32_t                       *a, *b;
    ngx_uint_t                      i, j, k;
    ngx_http_openbank_usage_day_t  *o, *d;

    o = others->elts;

    for (i = 0; i < others->nelts; i++) {
        if (o[i].day < q->from || o[i].day > q->to) {
            continue;
        }

        d = q->found->elts;

        for (j = 0; j < q->found->nelts; j++) {
            if (d[j].day == o[i].day
                && d[j].product.len == o[i].product.len
                && ngx_memcmp(d[j].product.data, o[i].product.data,
                              o[i].product.len)
                   == 0)
            {
                break;
            }
        }

        if (j == q->found->nelts) {
            d = ngx_array_push(q->found);
            if (d == NULL) {
                return NGX_ERROR;
            }

            *d = o[i];
            continue;
        }

        a = (uint32_t *) &d[j].usage;
        b = (uint32_t *) &o[i].usage;

        for (k = 0; k < NGX_HTTP_OPENBANK_USAGE_COUNTERS; k++) {
            a[k] += b[k];
        }
    }

    return NGX_OK;
}
