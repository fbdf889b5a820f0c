
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * "openbank_metrics": Prometheus text of what the API locations did.
 *
 * The counters live in the shared zone, in records that are never
 * evicted: one a partner, product, status and endpoint (the location's
 * name), created the first time it is seen (128 or 256 bytes), and one
 * fixed-size record for the refusals by reason, the latency histogram
 * and the requests that could not be counted.  The log phase takes the
 * zone's lock once a request; a scrape takes it once and walks the
 * records.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_cluster.h>
#include <ngx_http_openbank_sync.h>
#include <ngx_http_openbank_breaker.h>
#include <ngx_http_openbank_concurrency.h>
#include <ngx_http_openbank_metrics.h>
#include <ngx_http_openbank_usage.h>


#define NGX_HTTP_OPENBANK_METRIC_KEY_MAX  256
#define NGX_HTTP_OPENBANK_METRIC_LINE                                        \
    (2 * NGX_HTTP_OPENBANK_METRIC_KEY_MAX + 128)


typedef struct {
    uint64_t                     count;
} ngx_http_openbank_metric_t;


static ngx_str_t  ngx_http_openbank_reasons[] = {
    ngx_string("invalid_request"),
    ngx_string("invalid_body"),
    ngx_string("idempotency_key_missing"),
    ngx_string("invalid_token"),
    ngx_string("signature_missing"),
    ngx_string("signature_invalid"),
    ngx_string("replayed_request"),
    ngx_string("insufficient_scope"),
    ngx_string("certificate_mismatch"),
    ngx_string("not_found"),
    ngx_string("idempotency_in_flight"),
    ngx_string("invalid_state"),
    ngx_string("version_retired"),
    ngx_string("payload_too_large"),
    ngx_string("idempotency_key_reused"),
    ngx_string("rate_limited"),
    ngx_string("quota_exceeded"),
    ngx_string("upstream_unavailable"),
    ngx_string("state_unavailable"),
    ngx_string("circuit_open"),
    ngx_string("overloaded"),
    ngx_string("concurrency_limited"),
    ngx_string("internal_error"),
    ngx_string("other")
};

#define NGX_HTTP_OPENBANK_REASONS                                            \
    (sizeof(ngx_http_openbank_reasons) / sizeof(ngx_str_t))


/* upper bounds of the latency buckets, in milliseconds */

static ngx_uint_t  ngx_http_openbank_buckets[] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000
};

#define NGX_HTTP_OPENBANK_BUCKETS                                            \
    (sizeof(ngx_http_openbank_buckets) / sizeof(ngx_uint_t))


typedef struct {
    uint64_t                     reasons[NGX_HTTP_OPENBANK_REASONS];
    uint64_t                     buckets[NGX_HTTP_OPENBANK_BUCKETS + 1];
    uint64_t                     count;
    uint64_t                     sum_ms;
    uint64_t                     dropped;   /* zone full: not counted */
} ngx_http_openbank_metrics_t;


static ngx_int_t ngx_http_openbank_metrics_log(ngx_http_request_t *r);
static u_char *ngx_http_openbank_label(u_char *p, u_char *src, size_t len);
static ngx_int_t ngx_http_openbank_metrics_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_openbank_metrics_atomic(
    ngx_http_openbank_zone_t *zone, void *data);
static ngx_int_t ngx_http_openbank_metrics_series(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_metrics_total(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_metrics_scrape(
    ngx_http_openbank_zone_t *zone, void *data);
static ngx_int_t ngx_http_openbank_metrics_size(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_metrics_line(
    ngx_http_openbank_store_value_t *sv, void *data);


static ngx_str_t  ngx_http_openbank_metrics_key = ngx_string("*");

/* the record is never evicted nor deleted: its address is stable */


/* a request counted under the zone's lock */

typedef struct {
    ngx_str_t                      key;
    ngx_int_t                      ms;
    ngx_uint_t                     reason;     /* NGX_HTTP_OPENBANK_REASONS:
                                                  none */
    ngx_uint_t                     dropped;
    ngx_http_openbank_usage_op_t  *usage;      /* a partner's call, or NULL */
} ngx_http_openbank_count_op_t;


/* a scrape */

typedef struct {
    ngx_http_openbank_main_conf_t  *obmcf;
    ngx_pool_t                     *pool;
    ngx_buf_t                      *b;
    u_char                         *p;
    size_t                          len;
    size_t                          size;
    size_t                          used;
    ngx_uint_t                      records;
    ngx_http_openbank_metrics_t     copy;
} ngx_http_openbank_scrape_t;


char *
ngx_http_openbank_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_openbank_module);

    if (obmcf->shm_zone == NULL) {
        return "requires \"openbank_zone\" before it";
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_openbank_metrics_handler;

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_openbank_metrics_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_openbank_metrics_log;

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_metrics_log(ngx_http_request_t *r)
{
    u_char                         *p;
    ngx_int_t                       ms;
    ngx_str_t                      *partner;
    ngx_uint_t                      i, status;
    ngx_time_t                     *tp;
    ngx_http_openbank_ctx_t        *ctx;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_openbank_loc_conf_t   *oblcf;
    ngx_http_openbank_main_conf_t  *obmcf;
    ngx_http_openbank_count_op_t    op;
    ngx_http_openbank_usage_op_t    usage;
    ngx_str_t                       none = ngx_null_string;
    u_char                          buf[NGX_HTTP_OPENBANK_METRIC_KEY_MAX];

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    if (obmcf->shm_zone == NULL) {
        return NGX_OK;
    }

    /* counted as a call of the location where the checks ran */

    ctx = ngx_http_openbank_find_ctx(r);
    oblcf = ngx_http_openbank_api_conf(r, ctx);

    if (!oblcf->api) {
        return NGX_OK;
    }

    partner = (ctx && ctx->partner) ? &ctx->partner->name : &none;

    status = r->headers_out.status;

    tp = ngx_timeofday();
    ms = (ngx_int_t) ((tp->sec - r->start_sec) * 1000
                      + (tp->msec - r->start_msec));
    if (ms < 0) {
        ms = 0;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    /* "partner/product/status/endpoint": only the endpoint may hold "/" */

    p = ngx_snprintf(buf, sizeof(buf), "%V/%V/%ui/%V", partner,
                     &oblcf->product, status, &clcf->name);
    op.key.data = buf;
    op.key.len = p - buf;
    op.ms = ms;
    op.reason = NGX_HTTP_OPENBANK_REASONS;

    if (ctx && ctx->problem_code.len && status >= NGX_HTTP_BAD_REQUEST) {
        for (i = 0; i < NGX_HTTP_OPENBANK_REASONS - 1; i++) {
            if (ngx_http_openbank_reasons[i].len == ctx->problem_code.len
                && ngx_strncmp(ngx_http_openbank_reasons[i].data,
                               ctx->problem_code.data,
                               ctx->problem_code.len)
                   == 0)
            {
                break;
            }
        }

        op.reason = i;
    }

    /* and the partner's usage history, under the same lock */

    op.usage = (ngx_http_openbank_usage_prepare(r, ctx, status, ms, &usage)
                == NGX_OK)
               ? &usage : NULL;

    (void) ngx_http_openbank_store_atomic(obmcf->shm_zone->data,
                                          ngx_http_openbank_metrics_atomic,
                                          &op);

    return NGX_OK;
}


/* the request's series and the totals, under one lock */

static ngx_int_t
ngx_http_openbank_metrics_atomic(ngx_http_openbank_zone_t *zone, void *data)
{
    ngx_http_openbank_count_op_t  *op = data;

    op->dropped = (ngx_http_openbank_store_update(zone,
                                      NGX_HTTP_OPENBANK_TABLE_METRICS,
                                      &op->key,
                                      sizeof(ngx_http_openbank_metric_t), 0,
                                      ngx_http_openbank_metrics_series, op)
                   == NGX_HTTP_OPENBANK_STORE_FULL);

    if (op->usage
        && ngx_http_openbank_usage_count(zone, op->usage)
           == NGX_HTTP_OPENBANK_STORE_FULL)
    {
        op->dropped = 1;
    }

    (void) ngx_http_openbank_store_update(zone,
                                      NGX_HTTP_OPENBANK_TABLE_METRICS,
                                      &ngx_http_openbank_metrics_key,
                                      sizeof(ngx_http_openbank_metrics_t), 0,
                                      ngx_http_openbank_metrics_total, op);

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_metrics_series(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ((ngx_http_openbank_metric_t *) sv->value)->count++;

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


static ngx_int_t
ngx_http_openbank_metrics_total(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_count_op_t  *op = data;

    ngx_uint_t                    i;
    ngx_http_openbank_metrics_t  *g;

    g = (ngx_http_openbank_metrics_t *) sv->value;

    if (op->dropped) {
        g->dropped++;
    }

    if (op->reason < NGX_HTTP_OPENBANK_REASONS) {
        g->reasons[op->reason]++;
    }

    for (i = 0; i < NGX_HTTP_OPENBANK_BUCKETS; i++) {
        if ((ngx_uint_t) op->ms <= ngx_http_openbank_buckets[i]) {
            break;
        }
    }

    g->buckets[i]++;
    g->count++;
    g->sum_ms += op->ms;

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


static ngx_int_t
ngx_http_openbank_metrics_handler(ngx_http_request_t *r)
{
    u_char                         *p;
    uint64_t                        cumulative;
    ngx_int_t                       rc;
    ngx_buf_t                      *b;
    ngx_uint_t                      k;
    ngx_http_openbank_scrape_t      sc;
    ngx_http_openbank_main_conf_t  *obmcf;

    rc = ngx_http_openbank_get_endpoint_start(r);
    if (rc != NGX_OK) {
        return rc;
    }

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    sc.obmcf = obmcf;
    sc.pool = r->pool;

    if (ngx_http_openbank_store_atomic(obmcf->shm_zone->data,
                                       ngx_http_openbank_metrics_scrape, &sc)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = sc.b;
    p = sc.p;

    p = ngx_sprintf(p, "# HELP openbank_refusals_total Requests the gateway "
                    "refused or failed, by problem code.\n"
                    "# TYPE openbank_refusals_total counter\n");

    for (k = 0; k < NGX_HTTP_OPENBANK_REASONS; k++) {
        p = ngx_sprintf(p, "openbank_refusals_total{reason=\"%V\"} %uL\n",
                        &ngx_http_openbank_reasons[k],
                        sc.copy.reasons[k]);
    }

    p = ngx_sprintf(p, "# HELP openbank_request_duration_seconds Time "
                    "from the first byte of a request to its log "
                    "line.\n"
                    "# TYPE openbank_request_duration_seconds "
                    "histogram\n");

    cumulative = 0;

    for (k = 0; k < NGX_HTTP_OPENBANK_BUCKETS; k++) {
        cumulative += sc.copy.buckets[k];

        p = ngx_sprintf(p, "openbank_request_duration_seconds_bucket"
                        "{le=\"%ui.%03ui\"} %uL\n",
                        ngx_http_openbank_buckets[k] / 1000,
                        ngx_http_openbank_buckets[k] % 1000,
                        cumulative);
    }

    cumulative += sc.copy.buckets[NGX_HTTP_OPENBANK_BUCKETS];

    p = ngx_sprintf(p, "openbank_request_duration_seconds_bucket"
                    "{le=\"+Inf\"} %uL\n"
                    "openbank_request_duration_seconds_sum %uL.%03uL\n"
                    "openbank_request_duration_seconds_count %uL\n",
                    cumulative, sc.copy.sum_ms / 1000, sc.copy.sum_ms % 1000,
                    sc.copy.count);

    p = ngx_sprintf(p, "# HELP openbank_metrics_dropped_total Requests not "
                    "counted by partner because the zone was full.\n"
                    "# TYPE openbank_metrics_dropped_total counter\n"
                    "openbank_metrics_dropped_total %uL\n"
                    "# HELP openbank_zone_size_bytes Size of the shared "
                    "zone.\n"
                    "# TYPE openbank_zone_size_bytes gauge\n"
                    "openbank_zone_size_bytes{zone=\"%V\"} %uz\n"
                    "# HELP openbank_zone_used_bytes Pages of the shared "
                    "zone in use.\n"
                    "# TYPE openbank_zone_used_bytes gauge\n"
                    "openbank_zone_used_bytes{zone=\"%V\"} %uz\n"
                    "# HELP openbank_zone_records Records in the shared "
                    "zone.\n"
                    "# TYPE openbank_zone_records gauge\n"
                    "openbank_zone_records{zone=\"%V\"} %ui\n",
                    sc.copy.dropped,
                    &obmcf->shm_zone->shm.name, sc.size,
                    &obmcf->shm_zone->shm.name, sc.used,
                    &obmcf->shm_zone->shm.name, sc.records);

    r->headers_out.status = NGX_HTTP_OK;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    return ngx_http_openbank_send_response(r, b->pos, p - b->pos);
}


/* a label value: backslash, double quote and new line escaped */

static u_char *
ngx_http_openbank_label(u_char *p, u_char *src, size_t len)
{
    while (len--) {

        switch (*src) {

        case '\\':
        case '"':
            *p++ = '\\';
            *p++ = *src;
            break;

        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;

        default:
            *p++ = *src;
        }

        src++;
    }

    return p;
}


/* the series and the totals, read under one lock */

static ngx_int_t
ngx_http_openbank_metrics_scrape(ngx_http_openbank_zone_t *zone, void *data)
{
    ngx_http_openbank_scrape_t  *sc = data;

    /* the exact room: a line a series */

    sc->len = 4096 + NGX_HTTP_OPENBANK_REASONS * 96
              + ngx_http_openbank_cluster_metrics_len(sc->obmcf)
              + ngx_http_openbank_sync_metrics_len(sc->obmcf)
              + ngx_http_openbank_breaker_metrics_len(sc->obmcf)
              + ngx_http_openbank_concurrency_metrics_len(sc->obmcf);

    (void) ngx_http_openbank_store_walk(zone, NGX_HTTP_OPENBANK_TABLE_METRICS,
                                        ngx_http_openbank_metrics_size, sc);

    sc->b = ngx_create_temp_buf(sc->pool, sc->len);
    if (sc->b == NULL) {
        return NGX_ERROR;
    }

    sc->p = ngx_cpymem(sc->b->last,
                   "# HELP openbank_requests_total API requests by "
                   "partner, product, status and endpoint.\n"
                   "# TYPE openbank_requests_total counter\n",
                   sizeof("# HELP openbank_requests_total API requests by "
                          "partner, product, status and endpoint.\n"
                          "# TYPE openbank_requests_total counter\n") - 1);

    (void) ngx_http_openbank_store_walk(zone, NGX_HTTP_OPENBANK_TABLE_METRICS,
                                        ngx_http_openbank_metrics_line, sc);

    sc->p = ngx_http_openbank_breaker_metrics(sc->p, sc->pool, zone,
                                              sc->obmcf);
    sc->p = ngx_http_openbank_concurrency_metrics(sc->p, sc->pool, zone,
                                                  sc->obmcf);
    sc->p = ngx_http_openbank_cluster_metrics(sc->p, sc->obmcf);
    sc->p = ngx_http_openbank_sync_metrics(sc->p, sc->obmcf);

    if (ngx_http_openbank_store_get(zone, NGX_HTTP_OPENBANK_TABLE_METRICS,
                                    &ngx_http_openbank_metrics_key,
                                    &sc->copy,
                                    sizeof(ngx_http_openbank_metrics_t), NULL)
        != sizeof(ngx_http_openbank_metrics_t))
    {
        ngx_memzero(&sc->copy, sizeof(ngx_http_openbank_metrics_t));
    }

    ngx_http_openbank_zone_usage(sc->obmcf->shm_zone, &sc->size, &sc->used);
    sc->records = ngx_http_openbank_store_records(zone);

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_metrics_size(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_scrape_t  *sc = data;

    sc->len += NGX_HTTP_OPENBANK_METRIC_LINE;

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


static ngx_int_t
ngx_http_openbank_metrics_line(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_scrape_t  *sc = data;

    u_char                      *p, *slash1, *slash2, *slash3, *end;
    ngx_http_openbank_metric_t  *m;

    if (sv->key.len > NGX_HTTP_OPENBANK_METRIC_KEY_MAX) {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    /* "partner/product/status": names never hold a "/" */

    end = sv->key.data + sv->key.len;
    slash1 = ngx_strlchr(sv->key.data, end, '/');
    slash2 = slash1 ? ngx_strlchr(slash1 + 1, end, '/') : NULL;
    slash3 = slash2 ? ngx_strlchr(slash2 + 1, end, '/') : NULL;

    if (slash3 == NULL) {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    m = (ngx_http_openbank_metric_t *) sv->value;

    p = ngx_sprintf(sc->p, "openbank_requests_total{partner=\"%*s\","
                    "product=\"%*s\",status=\"%*s\",endpoint=\"",
                    (size_t) (slash1 - sv->key.data), sv->key.data,
                    (size_t) (slash2 - slash1 - 1), slash1 + 1,
                    (size_t) (slash3 - slash2 - 1), slash2 + 1);

    p = ngx_http_openbank_label(p, slash3 + 1, end - slash3 - 1);

    sc->p = ngx_sprintf(p, "\"} %uL\n", m->count);

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}
