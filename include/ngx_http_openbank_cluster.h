
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Cluster mode (ngx_http_openbank_cluster.c, docs/architecture.md "A
 * second backend (a cluster: Redis)", docs/directives.md): the state
 * several gateways share through Redis, and what each kind of state
 * does while Redis cannot answer.
 */


#ifndef _NGX_HTTP_OPENBANK_CLUSTER_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_CLUSTER_H_INCLUDED_


#include <ngx_http_openbank.h>


/* the kinds of state of openbank_cluster_degraded */
#define NGX_HTTP_OPENBANK_CLUSTER_RATE         0
#define NGX_HTTP_OPENBANK_CLUSTER_QUOTA        1
#define NGX_HTTP_OPENBANK_CLUSTER_NONCE        2
#define NGX_HTTP_OPENBANK_CLUSTER_IDEMPOTENCY  3
#define NGX_HTTP_OPENBANK_CLUSTER_KINDS        4

/* what a kind does while Redis cannot answer */
#define NGX_HTTP_OPENBANK_CLUSTER_LOCAL        0
#define NGX_HTTP_OPENBANK_CLUSTER_REFUSE       1


typedef struct ngx_http_openbank_cluster_conf_s {
    ngx_array_t                   seeds;       /* ngx_addr_t */
    ngx_msec_t                    timeout;
    ngx_uint_t                    nodes;
    ngx_str_t                     password;    /* never logged */
    ngx_uint_t                    degraded[NGX_HTTP_OPENBANK_CLUSTER_KINDS];
    ngx_shm_zone_t               *shm_zone;    /* counters */
    unsigned                      has_degraded:1;
} ngx_http_openbank_cluster_conf_t;


char *ngx_http_openbank_cluster_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_openbank_cluster_degraded_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_openbank_cluster_init_conf(ngx_conf_t *cf,
    ngx_http_openbank_main_conf_t *obmcf);
ngx_int_t ngx_http_openbank_cluster_init_process(ngx_cycle_t *cycle);
void ngx_http_openbank_cluster_exit_process(ngx_cycle_t *cycle);

ngx_int_t ngx_http_openbank_cluster_add(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_uint_t kind, ngx_uint_t table,
    ngx_str_t *key, size_t partner_len, uint64_t expire);
ngx_int_t ngx_http_openbank_cluster_take(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_uint_t kind, ngx_uint_t table,
    ngx_str_t *key, size_t partner_len, uint64_t expire,
    ngx_http_event_handler_pt resume);

size_t ngx_http_openbank_cluster_status_len(
    ngx_http_openbank_main_conf_t *obmcf);
u_char *ngx_http_openbank_cluster_status(u_char *p,
    ngx_http_openbank_main_conf_t *obmcf);
size_t ngx_http_openbank_cluster_metrics_len(
    ngx_http_openbank_main_conf_t *obmcf);
u_char *ngx_http_openbank_cluster_metrics(u_char *p,
    ngx_http_openbank_main_conf_t *obmcf);


#endif /* _NGX_HTTP_OPENBANK_CLUSTER_H_INCLUDED_ */
