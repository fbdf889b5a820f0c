
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Hashes, files, times and names (ngx_http_openbank_util.c).
 */


#ifndef _NGX_HTTP_OPENBANK_UTIL_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_UTIL_H_INCLUDED_


#include <ngx_http_openbank.h>
#include <openssl/evp.h>


/* ngx_http_openbank_util.c */
void ngx_http_openbank_sha256(u_char *out, u_char *data, size_t len);
ngx_int_t ngx_http_openbank_parse_hash(ngx_str_t *value, u_char *out);
ngx_int_t ngx_http_openbank_read_whole(ngx_pool_t *pool, ngx_str_t *name,
    size_t max, ngx_str_t *out, ngx_err_t *err, const char **what);
ngx_int_t ngx_http_openbank_read_file(ngx_conf_t *cf, ngx_str_t *name,
    size_t max, ngx_str_t *out);
time_t ngx_http_openbank_parse_time(ngx_str_t *value);
ngx_int_t ngx_http_openbank_month_days(ngx_int_t year, ngx_int_t month);
time_t ngx_http_openbank_days_from_civil(ngx_int_t year, ngx_int_t month,
    ngx_int_t day);
ngx_int_t ngx_http_openbank_parse_tz(ngx_str_t *value);
ngx_int_t ngx_http_openbank_valid_name(ngx_str_t *name);
ngx_int_t ngx_http_openbank_body_digest(ngx_http_request_t *r,
    EVP_MD_CTX *md);
ngx_int_t ngx_http_openbank_decode_base64url(ngx_str_t *dst, ngx_str_t *src);


#endif /* _NGX_HTTP_OPENBANK_UTIL_H_INCLUDED_ */
