
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Idempotency-Key (ngx_http_openbank_idempotency.c).
 */


#ifndef _NGX_HTTP_OPENBANK_IDEMPOTENCY_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_IDEMPOTENCY_H_INCLUDED_


#include <ngx_http_openbank.h>


typedef struct ngx_http_openbank_idem_ctx_s  ngx_http_openbank_idem_ctx_t;


/* what Redis's "take" answered (ngx_http_openbank_cluster_idem.c) */
#define NGX_HTTP_OPENBANK_IDEM_CLUSTER_OWN      0
#define NGX_HTTP_OPENBANK_IDEM_CLUSTER_REUSED   1
#define NGX_HTTP_OPENBANK_IDEM_CLUSTER_REPLAY   2
#define NGX_HTTP_OPENBANK_IDEM_CLUSTER_BUSY     3
#define NGX_HTTP_OPENBANK_IDEM_CLUSTER_TAKEN    4   /* taken over */
#define NGX_HTTP_OPENBANK_IDEM_CLUSTER_FAILED   5   /* no answer */


typedef struct ngx_http_openbank_idem_cluster_s
    ngx_http_openbank_idem_cluster_t;

typedef void (*ngx_http_openbank_idem_kept_pt)(void *data);

/*
 * The store of an answer in Redis, with its own copy of the key, the
 * owner and the answer: it outlives its request, and is retried while
 * Redis does not take it (ngx_http_openbank_cluster_idem.c).
 */
typedef struct ngx_http_openbank_idem_wait_s  ngx_http_openbank_idem_wait_t;


/* a request's key in Redis, in its ngx_http_openbank_idem_ctx_t */
struct ngx_http_openbank_idem_cluster_s {
    ngx_http_request_t                *r;
    ngx_str_t                          rkey;    /* ob:idem:{PARTNER}:KEY */
    ngx_str_t                          owner;
    ngx_str_t                          fingerprint;
    ngx_str_t                          ttl;     /* ms, decimal */
    uint64_t                           expire;  /* of the record, ms */
    ngx_uint_t                         outcome; /* _IDEM_CLUSTER_* */
    u_char                            *response; /* of a replay */
    size_t                             response_len;
    uint64_t                           ttl_ms;  /* of the replayed record */
    ngx_event_t                        renew;   /* the owner's lease */
    ngx_http_openbank_idem_wait_t     *wait;
    u_char                             owner_data[48];
    u_char                             ttl_data[NGX_INT64_LEN];
    unsigned                           asked:1;
    unsigned                           answered:1;
    unsigned                           owner_of:1; /* owns it in Redis */
};


/* ngx_http_openbank_idempotency.c */
ngx_int_t ngx_http_openbank_idempotency_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
char *ngx_http_openbank_idempotency_merge(ngx_conf_t *cf,
    ngx_http_openbank_loc_conf_t *prev, ngx_http_openbank_loc_conf_t *conf);
ngx_int_t ngx_http_openbank_idempotency_init_module(ngx_cycle_t *cycle);
extern ngx_conf_enum_t  ngx_http_openbank_idempotency_modes[];

/* ngx_http_openbank_cluster_idem.c */
ngx_int_t ngx_http_openbank_cluster_idem_init(ngx_conf_t *cf);
ngx_int_t ngx_http_openbank_cluster_idem_take(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_idem_cluster_t *ci,
    ngx_str_t *key, size_t partner_len, u_char *fingerprint,
    uint64_t expire);
void ngx_http_openbank_cluster_idem_hold(
    ngx_http_openbank_idem_cluster_t *ci);
void ngx_http_openbank_cluster_idem_release(
    ngx_http_openbank_idem_cluster_t *ci);
void ngx_http_openbank_cluster_idem_cleanup(
    ngx_http_openbank_idem_cluster_t *ci);
ngx_int_t ngx_http_openbank_cluster_idem_keep(
    ngx_http_openbank_idem_cluster_t *ci, u_char *response, size_t len,
    ngx_http_openbank_idem_kept_pt handler, void *data);
void ngx_http_openbank_cluster_idem_exit(ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_OPENBANK_IDEMPOTENCY_H_INCLUDED_ */
