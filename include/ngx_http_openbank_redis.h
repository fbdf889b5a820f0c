
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * A Redis connection on nginx's event loop (ngx_http_openbank_redis.c),
 * and the reading of Redis Cluster's answers
 * (ngx_http_openbank_redis_reply.c); docs/architecture.md, "A second
 * backend (a cluster: Redis)".
 */


#ifndef _NGX_HTTP_OPENBANK_REDIS_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>
#include <hiredis/hiredis.h>


#define NGX_HTTP_OPENBANK_REDIS_SLOTS     16384
#define NGX_HTTP_OPENBANK_REDIS_ADDR_LEN  (NGX_SOCKADDR_STRLEN + 8)

/*
 * hiredis 0.14 allocates an array's element pointers as soon as it has
 * read the count, so "*2147483647\r\n" alone asks for 16 GiB.  No answer
 * the gateway reads comes near this bound: the largest is a snapshot,
 * two elements a partner and two a revocation.
 */
#define NGX_HTTP_OPENBANK_REDIS_MAX_ELEMENTS  4194304


typedef struct ngx_http_openbank_redis_s       ngx_http_openbank_redis_t;
typedef struct ngx_http_openbank_redis_call_s  ngx_http_openbank_redis_call_t;

/*
 * A call's answer: reply is NULL when there is none (the deadline
 * passed, the connection failed or closed).  The handler owns the call
 * from then on: it sends it again or frees it.
 */
typedef void (*ngx_http_openbank_redis_handler_pt)(
    ngx_http_openbank_redis_call_t *call, redisReply *reply);

/* the connection failed (a deadline, an error): before the calls hear */
typedef void (*ngx_http_openbank_redis_failed_pt)(
    ngx_http_openbank_redis_t *rd);


struct ngx_http_openbank_redis_call_s {
    ngx_queue_t                         queue;
    ngx_http_openbank_redis_handler_pt  handler;
    void                               *data;
    ngx_http_openbank_redis_t          *rd;       /* where it waits */
    char                               *cmd;      /* hiredis's format */
    size_t                              len;
    ngx_msec_t                          deadline;
    uint64_t                            start;    /* microseconds */
    ngx_event_t                         timer;
    ngx_uint_t                          redirects;
    unsigned                            asking:1; /* ASKING goes first */
};


struct ngx_http_openbank_redis_s {
    ngx_peer_connection_t               peer;
    ngx_str_t                           name;     /* "ip:port" */
    ngx_str_t                          *password; /* NULL: no AUTH */
    redisReader                        *reader;
    ngx_queue_t                         calls;    /* FIFO, sent or not */
    u_char                             *out;      /* what is not sent */
    size_t                              out_pos;
    size_t                              out_len;
    size_t                              out_size;
    ngx_msec_t                          timeout;
    ngx_uint_t                          gen;      /* one a connection */
    ngx_http_openbank_redis_failed_pt   failed;
    void                               *data;
    ngx_log_t                          *log;
    unsigned                            connected:1;
};


extern ngx_connection_t  ngx_http_openbank_redis_no_connection;


ngx_http_openbank_redis_call_t *ngx_http_openbank_redis_call(int argc,
    const char **argv, const size_t *argvlen,
    ngx_http_openbank_redis_handler_pt handler, void *data,
    ngx_msec_t timeout);
void ngx_http_openbank_redis_call_free(ngx_http_openbank_redis_call_t *call);
ngx_int_t ngx_http_openbank_redis_send(ngx_http_openbank_redis_t *rd,
    ngx_http_openbank_redis_call_t *call);
void ngx_http_openbank_redis_close(ngx_http_openbank_redis_t *rd);
ngx_int_t ngx_http_openbank_redis_feed(ngx_http_openbank_redis_t *rd,
    u_char *buf, size_t n);

/* the reading of answers: no I/O, fuzzed (fuzz/fuzz_redis.c) */

typedef struct {
    ngx_uint_t                          start;
    ngx_uint_t                          end;      /* inclusive */
    ngx_str_t                           master;   /* "ip:port" */
} ngx_http_openbank_redis_range_t;

redisReader *ngx_http_openbank_redis_reader_create(void);
ngx_uint_t ngx_http_openbank_redis_slot(u_char *key, size_t len);
ngx_int_t ngx_http_openbank_redis_redirect(redisReply *reply,
    ngx_uint_t *ask, ngx_uint_t *slot, ngx_str_t *addr);
ngx_int_t ngx_http_openbank_redis_slots(redisReply *reply,
    ngx_str_t *asked, ngx_pool_t *pool, ngx_array_t *ranges);
ngx_int_t ngx_http_openbank_redis_is(redisReply *reply, const char *status);


#endif /* _NGX_HTTP_OPENBANK_REDIS_H_INCLUDED_ */
