
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Limits of the calls in flight to the bank
 * (ngx_http_openbank_concurrency.c, docs/resilience.md).
 */


#ifndef _NGX_HTTP_OPENBANK_CONCURRENCY_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_CONCURRENCY_H_INCLUDED_


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_util.h>


typedef struct ngx_http_openbank_limiter_s {
    ngx_http_openbank_named_t     named;       /* first */
    ngx_uint_t                    max;         /* calls in flight */
    ngx_uint_t                    per_partner; /* percent; 0: no share */
} ngx_http_openbank_limiter_t;


char *ngx_http_openbank_concurrency_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_openbank_concurrency_init(ngx_conf_t *cf,
    ngx_http_openbank_main_conf_t *obmcf);
ngx_int_t ngx_http_openbank_concurrency_init_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_openbank_concurrency_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
size_t ngx_http_openbank_concurrency_status_len(
    ngx_http_openbank_main_conf_t *obmcf, ngx_uint_t partners);
u_char *ngx_http_openbank_concurrency_status(u_char *p,
    ngx_http_openbank_zone_t *zone, ngx_http_openbank_main_conf_t *obmcf,
    ngx_uint_t partners);
size_t ngx_http_openbank_concurrency_metrics_len(
    ngx_http_openbank_main_conf_t *obmcf);
u_char *ngx_http_openbank_concurrency_metrics(u_char *p, ngx_pool_t *pool,
    ngx_http_openbank_zone_t *zone, ngx_http_openbank_main_conf_t *obmcf);


#endif /* _NGX_HTTP_OPENBANK_CONCURRENCY_H_INCLUDED_ */
