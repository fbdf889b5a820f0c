
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Journals of records, written in place (ngx_http_openbank_journal.c).
 */


#ifndef _NGX_HTTP_OPENBANK_JOURNAL_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_JOURNAL_H_INCLUDED_


#include <ngx_http_openbank.h>


#define NGX_HTTP_OPENBANK_JOURNAL_FRAME  12
#define NGX_HTTP_OPENBANK_JOURNAL_MAGIC  0x314a424fU    /* "OBJ1" */


typedef ngx_int_t (*ngx_http_openbank_journal_pt)(void *data,
    u_char *payload, size_t len);

typedef struct ngx_http_openbank_journal_s  ngx_http_openbank_journal_t;
typedef struct ngx_http_openbank_journal_entry_s
    ngx_http_openbank_journal_entry_t;

/* called once the entry's record is durable (NGX_OK) or not (NGX_ERROR) */
typedef void (*ngx_http_openbank_journal_done_pt)(
    ngx_http_openbank_journal_entry_t *e, ngx_int_t rc);

struct ngx_http_openbank_journal_entry_s {
    ngx_queue_t                        queue;
    u_char                            *record;  /* framed */
    size_t                             len;
    ngx_http_openbank_journal_done_pt  handler;
};

/* called once a waiting request's records are durable (NGX_OK) or not */
typedef void (*ngx_http_openbank_journal_answer_pt)(ngx_http_request_t *r,
    ngx_int_t rc);

/* a request that waits for its records: then "len" bytes of its own */
typedef struct {
    ngx_http_openbank_journal_entry_t    entry;
    ngx_http_request_t                  *request;  /* NULL: it went away */
    ngx_pool_cleanup_t                  *cln;
    ngx_http_openbank_journal_answer_pt  answer;
    u_char                              *lost;     /* logged if not durable */
} ngx_http_openbank_journal_wait_t;

/* the head of every record's payload: then the key, then the value */
typedef struct {
    uint64_t                      expire;      /* unix ms */
    uint16_t                      key_len;
    u_char                        type;
    u_char                        reserved[5];
} ngx_http_openbank_journal_head_t;

/*
 * A journal's bookkeeping shared by the processes: a record of the
 * journal's table whose key begins with a NUL (no partner's key, no jti
 * does), with no expiry; read and changed through the store only.
 */
typedef struct {
    uint64_t                      generation;  /* bumped by compaction */
    uint64_t                      bytes;       /* appended since then */
    uint64_t                      base;        /* size after compaction */
    uint64_t                      failed;      /* last failed write, ms */
    ngx_uint_t                    broken;      /* unreadable at start */
} ngx_http_openbank_journal_meta_t;

struct ngx_http_openbank_journal_s {
    /* set by its owner */
    const char                   *title;       /* "idempotency journal" */
    const char                   *file;        /* <file>.journal, .lock */
    ngx_uint_t                    table;       /* its records' table */
    /*
     * Inside ngx_http_openbank_store_atomic(), after a write: the batch
     * goes into the zone
     */
    void                        (*written)(ngx_http_openbank_journal_t *j,
                                      ngx_queue_t *batch, uint64_t now);
    /*
     * Inside ngx_http_openbank_store_atomic(), for each record of "table"
     * but the bookkeeping one: its framed record added to the dump
     * ("data", an ngx_http_openbank_journal_dump_t; NULL "buf": its size)
     */
    ngx_http_openbank_store_handler_pt  dump;
    /* after a write, the zone's lock released: the owner's log lines */
    void                        (*after)(ngx_http_openbank_journal_t *j,
                                      ngx_int_t rc, ngx_log_t *log);
    const char                   *again;       /* end of "written again" */

    /* this process's view */
    ngx_str_t                     name;
    ngx_str_t                     lock;
    ngx_fd_t                      fd;
    ngx_fd_t                      lock_fd;
    ngx_uint_t                    ready;       /* fds and queues set */
    ngx_uint_t                    busy;        /* a task in the pool */
    ngx_uint_t                    lost;        /* rewrite it from the zone */
    ngx_queue_t                   batch;       /* waits for the next write */
    ngx_queue_t                   writing;     /* being written */
    ngx_int_t                     rc;          /* of "writing", compacting */
    ngx_event_t                   flush;
    ngx_event_t                   hold;        /* a timer while entries
                                                  wait: see _journal_hold */
    ngx_thread_task_t            *task;
    ngx_http_openbank_zone_t     *zone;

    /* set by its owner: a second table its dumps walk, 0: none */
    ngx_uint_t                    also;
};

/* a dump's buffer, for the handlers of its walk */
typedef struct {
    u_char                       *buf;         /* NULL: measure */
    u_char                       *p;
    size_t                        size;
    ngx_http_openbank_journal_t  *journal;
    ngx_uint_t                    table;       /* of the records walked */
} ngx_http_openbank_journal_dump_t;

void ngx_http_openbank_journal_frame(u_char *rec, size_t len);
void ngx_http_openbank_journal_dump_record(
    ngx_http_openbank_journal_dump_t *dp, ngx_uint_t type, uint64_t expire,
    ngx_str_t *key, u_char *value, size_t len);
u_char *ngx_http_openbank_journal_record(u_char *p, ngx_uint_t type,
    uint64_t expire, ngx_str_t *key, u_char *value, size_t len);
ngx_int_t ngx_http_openbank_journal_init(ngx_http_openbank_journal_t *j,
    ngx_cycle_t *cycle);
void ngx_http_openbank_journal_reset(ngx_http_openbank_journal_t *j);
ngx_int_t ngx_http_openbank_journal_meta(ngx_http_openbank_journal_t *j,
    ngx_http_openbank_journal_meta_t *meta);
ngx_int_t ngx_http_openbank_journal_meta_add(ngx_http_openbank_journal_t *j);
void ngx_http_openbank_journal_failed(ngx_http_openbank_journal_t *j);
void ngx_http_openbank_journal_broken(ngx_http_openbank_journal_t *j);
ngx_uint_t ngx_http_openbank_journal_moved(ngx_fd_t fd, ngx_str_t *name);
ngx_int_t ngx_http_openbank_journal_open_lock(
    ngx_http_openbank_journal_t *j, ngx_log_t *log);
void ngx_http_openbank_journal_submit(ngx_http_openbank_journal_t *j,
    ngx_http_openbank_journal_entry_t *e);
void ngx_http_openbank_journal_submit_later(ngx_http_openbank_journal_t *j,
    ngx_http_openbank_journal_entry_t *e);
ngx_http_openbank_journal_wait_t *ngx_http_openbank_journal_wait(
    ngx_http_request_t *r, size_t len,
    ngx_http_openbank_journal_answer_pt answer);
void ngx_http_openbank_journal_submit_wait(ngx_http_openbank_journal_t *j,
    ngx_http_openbank_journal_wait_t *w, u_char *last);
ngx_int_t ngx_http_openbank_journal_commit(ngx_http_openbank_journal_t *j,
    ngx_queue_t *batch, ngx_log_t *log);
ngx_int_t ngx_http_openbank_journal_begin(ngx_http_openbank_journal_t *j,
    ngx_cycle_t *cycle, const char *what);
ngx_int_t ngx_http_openbank_journal_start(ngx_http_openbank_journal_t *j,
    ngx_cycle_t *cycle, ngx_uid_t user);
ngx_int_t ngx_http_openbank_journal_replay(ngx_http_openbank_journal_t *j,
    ngx_log_t *log, ngx_http_openbank_journal_pt *handlers, ngx_uint_t n,
    void *data, size_t *skipped);
ngx_int_t ngx_http_openbank_journal_load(ngx_http_openbank_journal_t *j,
    ngx_cycle_t *cycle, ngx_str_t *zone, const char *what,
    ngx_http_openbank_journal_pt *handlers, ngx_uint_t n, void *data,
    ngx_uint_t *full);
ngx_int_t ngx_http_openbank_journal_parse(u_char *p, size_t len,
    ngx_http_openbank_journal_pt *handlers, ngx_uint_t n, void *data);
ngx_int_t ngx_http_openbank_journal_scan(u_char *p, size_t len,
    ngx_http_openbank_journal_pt *handlers, ngx_uint_t n, void *data,
    size_t *skipped, size_t *end);
ngx_int_t ngx_http_openbank_journal_compact(ngx_http_openbank_journal_t *j,
    ngx_uid_t user, ngx_log_t *log);


#endif /* _NGX_HTTP_OPENBANK_JOURNAL_H_INCLUDED_ */
