
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Circuit breakers in front of the bank (ngx_http_openbank_breaker.c,
 * docs/resilience.md).
 */


#ifndef _NGX_HTTP_OPENBANK_BREAKER_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_BREAKER_H_INCLUDED_


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_util.h>


/* a breaker's window is this many buckets */
#define NGX_HTTP_OPENBANK_BREAKER_BUCKETS  10


typedef struct ngx_http_openbank_breaker_s {
    ngx_http_openbank_named_t     named;       /* first */
    ngx_uint_t                    failures;    /* percent, 1 to 100 */
    ngx_msec_t                    slow;        /* 0: no call is slow */
    ngx_uint_t                    slow_share;  /* percent, 1 to 100 */
    ngx_msec_t                    window;
    ngx_uint_t                    minimum;
    ngx_msec_t                    open;
    ngx_uint_t                    probes;
} ngx_http_openbank_breaker_t;


char *ngx_http_openbank_breaker_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_openbank_breaker_init(ngx_conf_t *cf,
    ngx_http_openbank_main_conf_t *obmcf);
ngx_int_t ngx_http_openbank_breaker_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
size_t ngx_http_openbank_breaker_status_len(
    ngx_http_openbank_main_conf_t *obmcf);
u_char *ngx_http_openbank_breaker_status(u_char *p,
    ngx_http_openbank_zone_t *zone, ngx_http_openbank_main_conf_t *obmcf,
    uint64_t now);
size_t ngx_http_openbank_breaker_metrics_len(
    ngx_http_openbank_main_conf_t *obmcf);
u_char *ngx_http_openbank_breaker_metrics(u_char *p, ngx_pool_t *pool,
    ngx_http_openbank_zone_t *zone, ngx_http_openbank_main_conf_t *obmcf);


#endif /* _NGX_HTTP_OPENBANK_BREAKER_H_INCLUDED_ */
