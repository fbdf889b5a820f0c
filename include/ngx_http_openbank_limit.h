
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Rates and quotas (ngx_http_openbank_limit.c).
 */


#ifndef _NGX_HTTP_OPENBANK_LIMIT_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_LIMIT_H_INCLUDED_


#include <ngx_http_openbank.h>


typedef struct ngx_http_openbank_limits_s  ngx_http_openbank_limits_t;


ngx_int_t ngx_http_openbank_rate_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
ngx_int_t ngx_http_openbank_quota_take(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
u_char *ngx_http_openbank_limit_status(u_char *p,
    ngx_http_openbank_main_conf_t *obmcf, ngx_http_openbank_partner_t *partner,
    uint64_t now);
size_t ngx_http_openbank_limit_status_len(
    ngx_http_openbank_partner_t *partner);
ngx_int_t ngx_http_openbank_limit_init_module(ngx_cycle_t *cycle);
ngx_msec_t ngx_http_openbank_limit_manager(void *data);
ngx_int_t ngx_http_openbank_limit_init_process(ngx_cycle_t *cycle);
void ngx_http_openbank_limit_exit_process(ngx_cycle_t *cycle);
void ngx_http_openbank_limit_exit_master(ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_OPENBANK_LIMIT_H_INCLUDED_ */
