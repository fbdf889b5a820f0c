
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The metrics endpoint and the counts (ngx_http_openbank_metrics.c).
 */


#ifndef _NGX_HTTP_OPENBANK_METRICS_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_METRICS_H_INCLUDED_


#include <ngx_http_openbank.h>


char *ngx_http_openbank_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_openbank_metrics_init(ngx_conf_t *cf);


#endif /* _NGX_HTTP_OPENBANK_METRICS_H_INCLUDED_ */
