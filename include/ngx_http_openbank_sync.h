
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Cluster mode's changes (ngx_http_openbank_cluster_sync.c,
 * docs/cluster.md "Changes on every gateway"): the registry's changes
 * and the revocations made on one gateway, published to Redis and
 * applied by the others.
 */


#ifndef _NGX_HTTP_OPENBANK_SYNC_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_SYNC_H_INCLUDED_


#include <ngx_http_openbank.h>


/* the kinds of change */
#define NGX_HTTP_OPENBANK_SYNC_REGISTRY  'r'
#define NGX_HTTP_OPENBANK_SYNC_REVOKED   'v'


/*
 * Inside ngx_http_openbank_store_atomic(), with the change: its place in
 * the order of publication (0: cluster mode is off).
 */
uint64_t ngx_http_openbank_sync_reserve(ngx_http_openbank_zone_t *zone);

/*
 * A change of this gateway, applied and on its way to the journal: its
 * framed records, queued in the zone for publication.
 */
void ngx_http_openbank_sync_queue(ngx_http_openbank_main_conf_t *obmcf,
    uint64_t seq, ngx_uint_t kind, u_char *records, size_t len,
    ngx_log_t *log);

/* the request a claim waited for, run again with its body */
typedef ngx_int_t (*ngx_http_openbank_sync_redo_pt)(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *body);

/*
 * A partner's creation: its registry keys ("p<name>", "i<client id>",
 * "s<hash>") claimed across the cluster before the local commit
 */
ngx_int_t ngx_http_openbank_sync_claim(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *keys, ngx_uint_t n,
    ngx_http_openbank_sync_redo_pt redo, ngx_str_t *body, ngx_str_t *taken);

ngx_int_t ngx_http_openbank_sync_usage(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *partner,
    ngx_http_event_handler_pt resume, ngx_array_t **days, void **data);

/* another gateway's change into this one (registry.c, token.c) */
typedef ngx_int_t (*ngx_http_openbank_sync_apply_pt)(ngx_cycle_t *cycle,
    u_char *records, size_t len, ngx_uint_t snapshot);

/* this gateway's registry, framed, to seed the cluster's (registry.c) */
typedef ngx_int_t (*ngx_http_openbank_sync_records_pt)(ngx_cycle_t *cycle,
    ngx_pool_t *pool, ngx_str_t *out);

/* at start: the changes journal's, not published yet, queued again */
ngx_int_t ngx_http_openbank_sync_init_module(ngx_cycle_t *cycle);
ngx_int_t ngx_http_openbank_sync_init_process(ngx_cycle_t *cycle,
    ngx_http_openbank_sync_apply_pt registry,
    ngx_http_openbank_sync_apply_pt revoked,
    ngx_http_openbank_sync_records_pt records);
void ngx_http_openbank_sync_exit_process(ngx_cycle_t *cycle);

size_t ngx_http_openbank_sync_status_len(
    ngx_http_openbank_main_conf_t *obmcf);
u_char *ngx_http_openbank_sync_status(u_char *p,
    ngx_http_openbank_main_conf_t *obmcf);
size_t ngx_http_openbank_sync_metrics_len(
    ngx_http_openbank_main_conf_t *obmcf);
u_char *ngx_http_openbank_sync_metrics(u_char *p,
    ngx_http_openbank_main_conf_t *obmcf);

ngx_int_t ngx_http_openbank_registry_sync(ngx_cycle_t *cycle,
    u_char *records, size_t len, ngx_uint_t snapshot);
ngx_int_t ngx_http_openbank_registry_records(ngx_cycle_t *cycle,
    ngx_pool_t *pool, ngx_str_t *out);
ngx_int_t ngx_http_openbank_revoked_sync(ngx_cycle_t *cycle,
    u_char *records, size_t len, ngx_uint_t snapshot);


#endif /* _NGX_HTTP_OPENBANK_SYNC_H_INCLUDED_ */
