
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Access tokens: bearer and binding checks, revocation
 * (ngx_http_openbank_token.c).
 */


#ifndef _NGX_HTTP_OPENBANK_TOKEN_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_TOKEN_H_INCLUDED_


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_jwt.h>


/* called once a revocation's record is durable (NGX_OK) or not */
typedef void (*ngx_http_openbank_revoked_pt)(ngx_http_request_t *r,
    ngx_int_t rc);


/* ngx_http_openbank_token.c */
ngx_int_t ngx_http_openbank_bearer(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_table_elt_t *h, ngx_uint_t n);
ngx_int_t ngx_http_openbank_binding_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
ngx_int_t ngx_http_openbank_token_check(ngx_http_request_t *r,
    ngx_str_t *token, ngx_http_openbank_jwt_t *jwt,
    ngx_http_openbank_partner_t **partner,
    ngx_http_openbank_signing_key_t **key, const char **err);
ngx_int_t ngx_http_openbank_revoke(ngx_http_request_t *r, ngx_str_t *token,
    ngx_http_openbank_jwt_t *jwt, ngx_http_openbank_revoked_pt done);
ngx_int_t ngx_http_openbank_revoked_load(ngx_cycle_t *cycle,
    ngx_http_openbank_main_conf_t *obmcf);
ngx_int_t ngx_http_openbank_client_cert(ngx_http_request_t *r, u_char *hash);


#endif /* _NGX_HTTP_OPENBANK_TOKEN_H_INCLUDED_ */
