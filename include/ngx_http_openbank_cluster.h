
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
#include <hiredis/hiredis.h>


/* the kinds of state of openbank_cluster_degraded */
#define NGX_HTTP_OPENBANK_CLUSTER_RATE         0
#define NGX_HTTP_OPENBANK_CLUSTER_QUOTA        1
#define NGX_HTTP_OPENBANK_CLUSTER_NONCE        2
#define NGX_HTTP_OPENBANK_CLUSTER_IDEMPOTENCY  3
#define NGX_HTTP_OPENBANK_CLUSTER_REGISTRY     4  /* a partner's creation */
#define NGX_HTTP_OPENBANK_CLUSTER_KINDS        5

/* the answers of idempotency keys that Redis did not take at once */
#define NGX_HTTP_OPENBANK_CLUSTER_IDEM_WAITING  0    /* retried now */
#define NGX_HTTP_OPENBANK_CLUSTER_IDEM_RETRIED  1    /* taken on a retry */
#define NGX_HTTP_OPENBANK_CLUSTER_IDEM_LOST     2    /* given up */

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


/* a Lua script run by EVALSHA (EVAL with the source on NOSCRIPT) */
typedef struct {
    ngx_str_t                     source;
    u_char                        sha1[40];    /* hex, worked out once */
} ngx_http_openbank_cluster_script_t;

/*
 * The answer of a call: reply is NULL when none came within the
 * cluster's timeout, or no node could be asked (node down, no master
 * for the slot); hiredis frees it after the handler returns: copy out
 * what is kept.
 */
typedef void (*ngx_http_openbank_cluster_pt)(void *data, redisReply *reply);


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

/*
 * A command (script NULL: argv[0] is the command) or a script (argv: its
 * nkeys keys, then its arguments), sent to the master of the slot of
 * "slot_key" (NULL: a script's first key, a command's argv[1]; every key
 * of one call carries the same {hash tag}).  Outside a request (timers):
 * NGX_OK sent, the handler is called later; NGX_BUSY not sent (Redis
 * unavailable now: decide at once), the handler is never called.
 */
ngx_int_t ngx_http_openbank_cluster_call(ngx_str_t *slot_key,
    ngx_http_openbank_cluster_script_t *script, ngx_uint_t nkeys,
    ngx_uint_t argc, ngx_str_t *argv, ngx_http_openbank_cluster_pt handler,
    void *data);

/*
 * The same for a request, which waits (NGX_AGAIN) and is resumed once
 * "handler" has run: by "resume", or by the phases when NULL (the check
 * runs again: keep in the request's own ctx what the handler learned,
 * and a flag that the call is answered).  A request that ends while it
 * waits is never touched (the handler is not called).  NGX_BUSY: Redis
 * unavailable now, nothing waits: apply the kind's degraded mode.
 * NGX_DECLINED: cluster mode is off.
 */
ngx_int_t ngx_http_openbank_cluster_request(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_event_handler_pt resume,
    ngx_str_t *slot_key, ngx_http_openbank_cluster_script_t *script,
    ngx_uint_t nkeys, ngx_uint_t argc, ngx_str_t *argv,
    ngx_http_openbank_cluster_pt handler, void *data);

/* SHA1 of the source, in hex; the call does it too when not done */
void ngx_http_openbank_cluster_script_init(
    ngx_http_openbank_cluster_script_t *script);

/* whether cluster mode is on; what a kind does while Redis cannot answer */
ngx_uint_t ngx_http_openbank_cluster_on(ngx_http_request_t *r);
ngx_uint_t ngx_http_openbank_cluster_mode(ngx_http_request_t *r,
    ngx_uint_t kind);
void ngx_http_openbank_cluster_degraded_count(ngx_uint_t kind,
    ngx_uint_t mode);
void ngx_http_openbank_cluster_idem_count(ngx_uint_t which,
    ngx_atomic_int_t n);

/* the cluster's "nodes=": 1 without a cluster */
ngx_uint_t ngx_http_openbank_cluster_nodes(void);

size_t ngx_http_openbank_cluster_status_len(
    ngx_http_openbank_main_conf_t *obmcf);
u_char *ngx_http_openbank_cluster_status(u_char *p,
    ngx_http_openbank_main_conf_t *obmcf);
size_t ngx_http_openbank_cluster_metrics_len(
    ngx_http_openbank_main_conf_t *obmcf);
u_char *ngx_http_openbank_cluster_metrics(u_char *p,
    ngx_http_openbank_main_conf_t *obmcf);


#endif /* _NGX_HTTP_OPENBANK_CLUSTER_H_INCLUDED_ */
