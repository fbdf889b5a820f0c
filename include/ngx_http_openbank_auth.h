
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The partner's identity and its scopes (ngx_http_openbank_auth.c).
 */


#ifndef _NGX_HTTP_OPENBANK_AUTH_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_AUTH_H_INCLUDED_


#include <ngx_http_openbank.h>


ngx_int_t ngx_http_openbank_identify(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
ngx_int_t ngx_http_openbank_scope_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);


#endif /* _NGX_HTTP_OPENBANK_AUTH_H_INCLUDED_ */
