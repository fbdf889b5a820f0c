
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The rate and the quotas in cluster mode, by leases
 * (ngx_http_openbank_cluster_limit.c, docs/cluster.md).
 */


#ifndef _NGX_HTTP_OPENBANK_CLUSTER_LIMIT_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_CLUSTER_LIMIT_H_INCLUDED_


#include <ngx_http_openbank.h>


typedef struct {
    ngx_str_t                     key;       /* the Redis key */
    uint64_t                      limit;     /* a quota's; rate: T, us */
    uint64_t                      burst;     /* the rate's */
    ngx_msec_t                    ttl;       /* a quota key's life */

    uint64_t                      used;      /* out: a quota's, as known */
    uint64_t                      left;      /* out: units in hand */
    ngx_msec_t                    wait_ms;   /* out: the rate's next */
} ngx_http_openbank_cluster_limit_t;


ngx_int_t ngx_http_openbank_cluster_limit_init(ngx_cycle_t *cycle);
void ngx_http_openbank_cluster_limit_exit(ngx_cycle_t *cycle);
ngx_int_t ngx_http_openbank_cluster_limit_take(ngx_http_request_t *r,
    ngx_uint_t kind, ngx_http_openbank_cluster_limit_t *lm, void **state);
void ngx_http_openbank_cluster_limit_refund(ngx_uint_t kind,
    ngx_http_openbank_cluster_limit_t *lm);
ngx_int_t ngx_http_openbank_cluster_limit_apart(
    ngx_http_openbank_cluster_limit_t *lm);


#endif /* _NGX_HTTP_OPENBANK_CLUSTER_LIMIT_H_INCLUDED_ */
