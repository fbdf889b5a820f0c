
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Usage history: per partner, product and day (ngx_http_openbank_usage.c).
 */


#ifndef _NGX_HTTP_OPENBANK_USAGE_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_USAGE_H_INCLUDED_


#include <ngx_http_openbank.h>


#define NGX_HTTP_OPENBANK_USAGE_KEY_MAX   160


/* a call to count, made in the log phase, counted under the zone's lock */

typedef struct {
    ngx_str_t                     key;         /* partner/product/day */
    uint64_t                      expire;
    ngx_uint_t                    status;
    ngx_uint_t                    problem;     /* PROBLEM_N: none */
    ngx_uint_t                    bucket;
    u_char                        buf[NGX_HTTP_OPENBANK_USAGE_KEY_MAX];
} ngx_http_openbank_usage_op_t;


ngx_int_t ngx_http_openbank_usage_prepare(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_uint_t status, ngx_int_t ms,
    ngx_http_openbank_usage_op_t *op);
ngx_int_t ngx_http_openbank_usage_count(ngx_http_openbank_zone_t *zone,
    ngx_http_openbank_usage_op_t *op);
ngx_int_t ngx_http_openbank_usage_json(ngx_http_request_t *r,
    ngx_str_t *partner, ngx_str_t *from, ngx_str_t *to, ngx_array_t *others,
    ngx_str_t *out, const char **err);

/* cluster mode: a partner's day as a field of its hash in Redis */
typedef struct {
    ngx_str_t                     partner;
    ngx_str_t                     field;       /* "product/day" */
    ngx_str_t                     value;       /* "n,n,..." */
} ngx_http_openbank_usage_text_t;

ngx_int_t ngx_http_openbank_usage_recent(ngx_http_openbank_zone_t *zone,
    ngx_pool_t *pool, ngx_int_t tz, ngx_array_t *out);
ngx_array_t *ngx_http_openbank_usage_days(ngx_pool_t *pool);
ngx_int_t ngx_http_openbank_usage_add_field(ngx_array_t *days,
    ngx_pool_t *pool, u_char *field, size_t flen, u_char *value,
    size_t vlen);

/* the counters' snapshot (ngx_http_openbank_limit.c) */
size_t ngx_http_openbank_usage_snapshot_len(ngx_http_openbank_zone_t *zone);
u_char *ngx_http_openbank_usage_snapshot(ngx_http_openbank_zone_t *zone,
    u_char *p);
ngx_int_t ngx_http_openbank_usage_restore(ngx_log_t *log,
    ngx_http_openbank_zone_t *zone, u_char *p, u_char *last,
    uint64_t now_ms);


#endif /* _NGX_HTTP_OPENBANK_USAGE_H_INCLUDED_ */
