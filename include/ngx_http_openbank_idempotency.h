
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Idempotency-Key (ngx_http_openbank_idempotency.c).
 */


#ifndef _NGX_HTTP_OPENBANK_IDEMPOTENCY_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_IDEMPOTENCY_H_INCLUDED_


#include <ngx_http_openbank.h>


typedef struct ngx_http_openbank_idem_ctx_s  ngx_http_openbank_idem_ctx_t;


/* ngx_http_openbank_idempotency.c */
ngx_int_t ngx_http_openbank_idempotency_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
char *ngx_http_openbank_idempotency_merge(ngx_conf_t *cf,
    ngx_http_openbank_loc_conf_t *prev, ngx_http_openbank_loc_conf_t *conf);
ngx_int_t ngx_http_openbank_idempotency_init_module(ngx_cycle_t *cycle);
extern ngx_conf_enum_t  ngx_http_openbank_idempotency_modes[];


#endif /* _NGX_HTTP_OPENBANK_IDEMPOTENCY_H_INCLUDED_ */
