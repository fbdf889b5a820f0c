
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Durable files, written atomically (ngx_http_openbank_state.c).
 */


#ifndef _NGX_HTTP_OPENBANK_STATE_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_STATE_H_INCLUDED_


#include <ngx_http_openbank.h>


ngx_int_t ngx_http_openbank_state_write(ngx_log_t *log, ngx_str_t *path,
    u_char *buf, size_t len);
ngx_int_t ngx_http_openbank_state_write_as(ngx_log_t *log, ngx_str_t *path,
    u_char *buf, size_t len, ngx_uid_t user);
ngx_int_t ngx_http_openbank_state_write_level(ngx_log_t *log,
    ngx_uint_t level, ngx_str_t *path, u_char *buf, size_t len,
    ngx_uid_t user);
ngx_int_t ngx_http_openbank_state_read(ngx_log_t *log, ngx_uint_t level,
    ngx_pool_t *pool, ngx_str_t *path, size_t max, ngx_str_t *out);
ngx_int_t ngx_http_openbank_state_lock(ngx_fd_t fd, ngx_uint_t exclusive,
    ngx_uint_t wait);
void ngx_http_openbank_state_unlock(ngx_fd_t fd);


#endif /* _NGX_HTTP_OPENBANK_STATE_H_INCLUDED_ */
