
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The status endpoint (ngx_http_openbank_status.c).
 */


#ifndef _NGX_HTTP_OPENBANK_STATUS_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_STATUS_H_INCLUDED_


#include <ngx_http_openbank.h>


char *ngx_http_openbank_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_OPENBANK_STATUS_H_INCLUDED_ */
