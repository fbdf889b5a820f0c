
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Plans and partners (ngx_http_openbank_partner.c).
 */


#ifndef _NGX_HTTP_OPENBANK_PARTNER_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_PARTNER_H_INCLUDED_


#include <ngx_http_openbank.h>


char *ngx_http_openbank_plan_block(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_openbank_partner_block(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_openbank_partners_init(ngx_conf_t *cf,
    ngx_http_openbank_main_conf_t *obmcf);
ngx_http_openbank_partner_t *ngx_http_openbank_partner_by_api_key(
    ngx_http_openbank_main_conf_t *obmcf, u_char *hash);
ngx_int_t ngx_http_openbank_partner_has_scope(
    ngx_http_openbank_partner_t *partner, ngx_str_t *scope);
ngx_http_openbank_quota_t *ngx_http_openbank_partner_quota(
    ngx_http_openbank_partner_t *partner, ngx_str_t *product);
ngx_int_t ngx_http_openbank_add_ref(ngx_conf_t *cf, ngx_str_t *name);
ngx_http_openbank_partner_t *ngx_http_openbank_partner_by_client_id(
    ngx_http_openbank_main_conf_t *obmcf, ngx_str_t *client_id);


#endif /* _NGX_HTTP_OPENBANK_PARTNER_H_INCLUDED_ */
