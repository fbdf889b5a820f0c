
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * RFC 9421 on requests and responses (ngx_http_openbank_signature.c);
 * the signatures themselves are ngx_http_openbank_httpsig.h's.
 */


#ifndef _NGX_HTTP_OPENBANK_SIGNATURE_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_SIGNATURE_H_INCLUDED_


#include <ngx_http_openbank.h>


typedef struct ngx_http_openbank_sig_ctx_s  ngx_http_openbank_sig_ctx_t;


ngx_int_t ngx_http_openbank_signature_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);


#endif /* _NGX_HTTP_OPENBANK_SIGNATURE_H_INCLUDED_ */
