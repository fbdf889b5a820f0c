
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The OAuth endpoints: token, introspection, revocation, JWKS and
 * metadata (ngx_http_openbank_oauth.c).
 */


#ifndef _NGX_HTTP_OPENBANK_OAUTH_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_OAUTH_H_INCLUDED_


#include <ngx_http_openbank.h>


typedef struct ngx_http_openbank_oauth_s  ngx_http_openbank_oauth_t;


/* the endpoints, the "offset" of their directives */
#define NGX_HTTP_OPENBANK_EP_TOKEN       0
#define NGX_HTTP_OPENBANK_EP_INTROSPECT  1
#define NGX_HTTP_OPENBANK_EP_REVOKE      2
#define NGX_HTTP_OPENBANK_EP_JWKS        3
#define NGX_HTTP_OPENBANK_EP_METADATA    4
#define NGX_HTTP_OPENBANK_EP_N           5


/* ngx_http_openbank_oauth.c */
ngx_int_t ngx_http_openbank_oauth_init(ngx_conf_t *cf,
    ngx_http_openbank_main_conf_t *obmcf);
ngx_int_t ngx_http_openbank_oauth_init_module(ngx_cycle_t *cycle);
char *ngx_http_openbank_oauth_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

#endif /* _NGX_HTTP_OPENBANK_OAUTH_H_INCLUDED_ */
