
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * API versions: Sunset and Deprecation (ngx_http_openbank_version.c).
 */


#ifndef _NGX_HTTP_OPENBANK_VERSION_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_VERSION_H_INCLUDED_


#include <ngx_http_openbank.h>


#define NGX_HTTP_OPENBANK_GONE           410


typedef struct ngx_http_openbank_version_s {
    time_t                        sunset;
    time_t                        deprecated;
    ngx_str_t                     successor;
    ngx_str_t                     sunset_header;
    ngx_str_t                     deprecation_header;
    ngx_str_t                     link_header;
} ngx_http_openbank_version_t;


char *ngx_http_openbank_version_sunset(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_openbank_version_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
ngx_int_t ngx_http_openbank_version_headers(ngx_http_request_t *r);


#endif /* _NGX_HTTP_OPENBANK_VERSION_H_INCLUDED_ */
