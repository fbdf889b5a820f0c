
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Event notifications (docs/webhooks.md): the events the bank posts
 * (ngx_http_openbank_events.c), the partners' webhook endpoints and the
 * events API (ngx_http_openbank_webhooks.c), their delivery
 * (ngx_http_openbank_webhook_send.c), and the JSON bodies and URLs they
 * take, which need no nginx request (ngx_http_openbank_events_json.c,
 * fuzz/fuzz_events.c).
 */


#ifndef _NGX_HTTP_OPENBANK_EVENTS_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_EVENTS_H_INCLUDED_


#include <ngx_http_openbank.h>


#define NGX_HTTP_OPENBANK_EVENT_BODY_MAX     (64 * 1024)  /* read as the
                                                          Admin API reads */
#define NGX_HTTP_OPENBANK_EVENT_KEEP         (30 * 86400 * 1000ULL)  /* ms */
#define NGX_HTTP_OPENBANK_WEBHOOK_MAX        10     /* endpoints a partner */
#define NGX_HTTP_OPENBANK_WEBHOOK_PATTERNS   32     /* "events" of one */
#define NGX_HTTP_OPENBANK_WEBHOOK_URL_MAX    2048
#define NGX_HTTP_OPENBANK_WEBHOOK_SECRET     32     /* random bytes */
#define NGX_HTTP_OPENBANK_ATTEMPTS_MAX       128    /* kept per event */
#define NGX_HTTP_OPENBANK_RETRIES_MAX        16
#define NGX_HTTP_OPENBANK_EVENT_HOLD         10000  /* ms a new delivery
                                                       waits for its event
                                                       to be durable */

#define NGX_HTTP_OPENBANK_WEBHOOK_ENABLED    0
#define NGX_HTTP_OPENBANK_WEBHOOK_DISABLED   1

/* the record types of the events journal */
#define NGX_HTTP_OPENBANK_EV_PUT             1      /* EVENTS table */
#define NGX_HTTP_OPENBANK_EV_DEL             2
#define NGX_HTTP_OPENBANK_EV_OUT_PUT         3      /* OUTBOX table */
#define NGX_HTTP_OPENBANK_EV_OUT_DEL         4
#define NGX_HTTP_OPENBANK_EV_ATTEMPT         5      /* onto an event */
#define NGX_HTTP_OPENBANK_EV_TYPES           6


/*
 * The records (docs/webhooks.md, "The outbox"): in EVENTS, "e<seq>" an
 * event (seq: 16 hex digits, its id "evt_<seq>"), "w<id>" an endpoint
 * (id: 16 hex digits, "we_<id>"), "n<partner>" the ids of a partner's
 * endpoints (made from the "w" records, never written to disk); in
 * OUTBOX, "d<seq><id>" a delivery still to make.
 */

typedef struct {
    int64_t                       created;     /* unix ms */
    uint16_t                      partner_len;
    uint16_t                      type_len;
    uint32_t                      data_len;
    uint32_t                      nattempts;
    uint32_t                      reserved;
    /* then partner, type, data, nattempts attempts */
} ngx_http_openbank_event_v_t;


typedef struct {
    int64_t                       at;          /* unix ms */
    uint64_t                      endpoint;
    uint32_t                      duration;    /* ms */
    int32_t                       status;      /* HTTP status, 0: none */
    u_char                        error[48];   /* NUL-padded */
} ngx_http_openbank_attempt_v_t;


typedef struct {
    int64_t                       created;     /* unix s */
    int64_t                       failing;     /* unix ms: failing since */
    uint32_t                      status;      /* ..._WEBHOOK_ENABLED... */
    uint16_t                      partner_len;
    uint16_t                      url_len;
    uint16_t                      events_len;  /* space-separated */
    uint16_t                      secret_len;  /* sealed */
    uint32_t                      reserved;
    /* then partner, url, events, the sealed secret */
} ngx_http_openbank_webhook_v_t;


typedef struct {
    int64_t                       next;        /* unix ms: due, or the
                                                  end of a send's lease */
    uint32_t                      attempts;
    uint32_t                      forced;      /* a test: sent even to a
                                                  disabled endpoint */
} ngx_http_openbank_outbox_v_t;


/* one record of a change, for the zone and the journal */

typedef struct {
    ngx_uint_t                    type;        /* NGX_HTTP_OPENBANK_EV_* */
    ngx_str_t                     key;
    ngx_str_t                     value;
    uint64_t                      expire;      /* unix ms, 0: never */
} ngx_http_openbank_ev_op_t;


/* a body the bank posts: the strings point into its text */

typedef struct {
    ngx_str_t                     partner;
    ngx_str_t                     type;
    ngx_str_t                     data;        /* the object, as sent */
} ngx_http_openbank_event_in_t;


typedef struct {
    ngx_str_t                     url;
    ngx_uint_t                    nevents;
    ngx_str_t                     events[NGX_HTTP_OPENBANK_WEBHOOK_PATTERNS];
} ngx_http_openbank_webhook_in_t;


typedef struct {
    ngx_uint_t                    https;
    ngx_str_t                     host;        /* without [] */
    in_port_t                     port;
    ngx_str_t                     authority;   /* host[:port] as sent */
    ngx_str_t                     path;        /* with the query, or "/" */
} ngx_http_openbank_url_t;


/*
 * A receiver's answer being read (_events_json.c): the bytes received
 * into buf up to "received", parsed up to "pos"
 */

#define NGX_HTTP_OPENBANK_ANSWER_STATUS      0
#define NGX_HTTP_OPENBANK_ANSWER_HEADER      1
#define NGX_HTTP_OPENBANK_ANSWER_BODY        2
#define NGX_HTTP_OPENBANK_ANSWER_CHUNK_SIZE  3
#define NGX_HTTP_OPENBANK_ANSWER_CHUNK_DATA  4
#define NGX_HTTP_OPENBANK_ANSWER_CHUNK_END   5
#define NGX_HTTP_OPENBANK_ANSWER_TRAILER     6

#define NGX_HTTP_OPENBANK_ANSWER_DRAIN       65536  /* a body read, at most */

typedef struct {
    u_char                       *buf;
    size_t                        size;
    size_t                        received;
    size_t                        pos;
    ngx_uint_t                    state;
    off_t                         rest;        /* of the body or chunk */
    off_t                         length;      /* Content-Length, or -1 */
    off_t                         drained;     /* of the chunks */
    ngx_int_t                     status;      /* 0: not yet */
    unsigned                      headers:1;   /* all of them read */
    unsigned                      chunked:1;
    unsigned                      close:1;     /* the connection not kept */
} ngx_http_openbank_answer_t;


/* a request of the ingest or the events API */

typedef struct ngx_http_openbank_ev_ctx_s {
    ngx_uint_t                    route;       /* _webhooks.c */
    uint64_t                      id;          /* of the resource */
    ngx_uint_t                    bad;         /* not an id */
    ngx_uint_t                    status;      /* of the answer, once
                                                  durable */
    ngx_str_t                     answer;
    ngx_array_t                  *held;        /* ..._ev_op_t: deliveries
                                                  due once durable */
    ngx_http_openbank_webhook_in_t  in;        /* an endpoint to make */
    ngx_http_openbank_url_t       url;
    ngx_str_t                     partner;     /* whose endpoints */
    void                        (*done)(ngx_http_request_t *r,
                                        ngx_int_t rc);
                                               /* answers a made or deleted
                                                  endpoint once durable */
} ngx_http_openbank_ev_ctx_t;


/* the main conf's part (openbank_webhook_* directives) */

typedef struct ngx_http_openbank_events_conf_s {
    ngx_array_t                  *allow;       /* ngx_http_openbank_
                                                  webhook_allow_t */
    ngx_msec_t                    timeout;
    ngx_uint_t                    concurrency; /* per endpoint, per worker */
    ngx_uint_t                    nretries;
    ngx_msec_t                    retries[NGX_HTTP_OPENBANK_RETRIES_MAX];
    time_t                        disable_after;
    ngx_str_t                     trusted;     /* CA file, "": system */
    void                         *ssl;         /* ngx_ssl_t */
} ngx_http_openbank_events_conf_t;


typedef struct {
    ngx_uint_t                    http;        /* http:// allowed */
    ngx_str_t                     host;
} ngx_http_openbank_webhook_allow_t;


/* ngx_http_openbank_events_json.c */
ngx_int_t ngx_http_openbank_event_parse(ngx_str_t *text,
    ngx_http_openbank_event_in_t *ev, u_char *err, size_t len);
ngx_int_t ngx_http_openbank_webhook_parse(ngx_str_t *text,
    ngx_http_openbank_webhook_in_t *wh, u_char *err, size_t len);
ngx_int_t ngx_http_openbank_url_parse(ngx_str_t *url,
    ngx_http_openbank_url_t *u, u_char *err, size_t len);
void ngx_http_openbank_answer_init(ngx_http_openbank_answer_t *a,
    u_char *buf, size_t size);
ngx_int_t ngx_http_openbank_answer_parse(ngx_http_openbank_answer_t *a);
ngx_int_t ngx_http_openbank_event_type_known(ngx_str_t *type);
ngx_int_t ngx_http_openbank_event_pattern_valid(ngx_str_t *pattern);
ngx_int_t ngx_http_openbank_event_matches(ngx_str_t *patterns,
    ngx_str_t *type);

/* ngx_http_openbank_events.c */
char *ngx_http_openbank_events_ingest(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_openbank_webhook_allow(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_openbank_webhook_retries(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_openbank_events_conf(ngx_conf_t *cf,
    ngx_http_openbank_main_conf_t *obmcf);
ngx_int_t ngx_http_openbank_events_init_module(ngx_cycle_t *cycle);
ngx_int_t ngx_http_openbank_events_write(ngx_log_t *log, ngx_array_t *ops,
    ngx_http_request_t *r, void (*done)(ngx_http_request_t *r,
    ngx_int_t rc));
ngx_int_t ngx_http_openbank_events_emit(ngx_http_request_t *r,
    ngx_str_t *partner, ngx_str_t *type, ngx_str_t *data, uint64_t only,
    ngx_http_openbank_ev_ctx_t *ec);
void ngx_http_openbank_events_answer(ngx_http_request_t *r, ngx_int_t rc);
void *ngx_http_openbank_events_create_conf(ngx_conf_t *cf);
char *ngx_http_openbank_events_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_openbank_events_apply(ngx_http_openbank_zone_t *zone,
    ngx_http_openbank_ev_op_t *op);
ngx_int_t ngx_http_openbank_events_next_seq(ngx_http_openbank_zone_t *zone,
    uint64_t *seq);
ngx_int_t ngx_http_openbank_events_deliveries(
    ngx_http_openbank_zone_t *zone, ngx_pool_t *pool, ngx_str_t *partner,
    ngx_str_t *type, uint64_t seq, uint64_t only, ngx_array_t *ops);
ngx_int_t ngx_http_openbank_events_event_op(ngx_pool_t *pool,
    uint64_t seq, ngx_str_t *partner, ngx_str_t *type, ngx_str_t *data,
    uint64_t now, ngx_http_openbank_ev_op_t *op);
void ngx_http_openbank_events_key(ngx_str_t *key, u_char *buf, u_char c,
    uint64_t id);
uint64_t ngx_http_openbank_events_hex(u_char *p, size_t len);

/* ngx_http_openbank_webhooks.c */
char *ngx_http_openbank_events_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_openbank_webhooks_route(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_ev_ctx_t *ec, u_char *q,
    u_char *last);
ngx_int_t ngx_http_openbank_webhooks_dispatch(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *body);

/* ngx_http_openbank_webhook_send.c */
ngx_int_t ngx_http_openbank_webhook_send_init(ngx_cycle_t *cycle);
void ngx_http_openbank_webhook_send_due(ngx_str_t *key);
ngx_int_t ngx_http_openbank_webhook_ssl(ngx_conf_t *cf,
    ngx_http_openbank_events_conf_t *ecf);
ngx_int_t ngx_http_openbank_webhook_address_allowed(struct sockaddr *sa);
ngx_int_t ngx_http_openbank_webhook_resolve(ngx_pool_t *pool,
    ngx_str_t *host, in_port_t port, ngx_uint_t allowed,
    void (*done)(void *data, ngx_int_t rc, ngx_addr_t *addr,
    const char *err), void *data);
ngx_http_openbank_webhook_allow_t *ngx_http_openbank_webhook_allowed(
    ngx_http_openbank_events_conf_t *ecf, ngx_http_openbank_url_t *u);


#endif /* _NGX_HTTP_OPENBANK_EVENTS_H_INCLUDED_ */
