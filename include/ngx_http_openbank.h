
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The core: the configuration, a request's context, the check of the
 * access phase, the problem helpers and the shared zone's store
 * (docs/architecture.md, "Files"); each subsystem has its own header.
 */


#ifndef _NGX_HTTP_OPENBANK_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#define NGX_HTTP_OPENBANK_HASH_LEN       32     /* SHA-256 */
#define NGX_HTTP_OPENBANK_REQUEST_ID_LEN 128

#define NGX_HTTP_OPENBANK_WINDOW_DAY     1
#define NGX_HTTP_OPENBANK_WINDOW_MONTH   2

#define NGX_HTTP_OPENBANK_AUTH_API_KEY   0x01
#define NGX_HTTP_OPENBANK_AUTH_TOKEN     0x02

#define NGX_HTTP_OPENBANK_SIGNATURE_OFF       0
#define NGX_HTTP_OPENBANK_SIGNATURE_OPTIONAL  1
#define NGX_HTTP_OPENBANK_SIGNATURE_REQUIRED  2

#define NGX_HTTP_OPENBANK_IDEMPOTENCY_OFF       0
#define NGX_HTTP_OPENBANK_IDEMPOTENCY_OPTIONAL  1
#define NGX_HTTP_OPENBANK_IDEMPOTENCY_REQUIRED  2


/* load-time configuration: plans and partners */

typedef struct {
    ngx_str_t                     product;
    ngx_uint_t                    limit;
    ngx_uint_t                    window;      /* NGX_HTTP_OPENBANK_WINDOW_* */
} ngx_http_openbank_quota_t;


typedef struct {
    ngx_str_t                     name;
    ngx_uint_t                    rate;        /* requests per period */
    ngx_uint_t                    period;      /* seconds: 1 or 60 */
    ngx_uint_t                    burst;
    ngx_array_t                   quotas;      /* ngx_http_openbank_quota_t */
} ngx_http_openbank_plan_t;


typedef struct {
    ngx_str_t                     name;
    ngx_uint_t                    index;

    ngx_str_t                     plan_name;
    ngx_http_openbank_plan_t     *plan;

    ngx_array_t                   scopes;      /* ngx_str_t */
    ngx_array_t                   quotas;      /* overrides of the plan's */

    ngx_str_t                     client_id;
    u_char                        client_secret[NGX_HTTP_OPENBANK_HASH_LEN];
    u_char                        certificate[NGX_HTTP_OPENBANK_HASH_LEN];

    ngx_str_t                     jwks_file;
    struct ngx_http_openbank_jwks_s
                                 *jwks;        /* _jwt.h */

    ngx_str_t                     hmac_secret;

    unsigned                      has_client_secret:1;
    unsigned                      has_certificate:1;
    unsigned                      registry:1;  /* made by the Admin API */
    unsigned                      suspended:1; /* a registry partner's */

    ngx_str_t                     conf_file;   /* where it was declared */
    ngx_uint_t                    conf_line;
} ngx_http_openbank_partner_t;


typedef struct {
    u_char                        hash[NGX_HTTP_OPENBANK_HASH_LEN];
    ngx_http_openbank_partner_t  *partner;
} ngx_http_openbank_key_t;


/* how far ahead a client assertion's exp may be: the default, the most */
#define NGX_HTTP_OPENBANK_ASSERTION_LIFETIME      300
#define NGX_HTTP_OPENBANK_ASSERTION_LIFETIME_MAX  3600


/* a name a location uses that some partner must be able to hold */

typedef struct {
    ngx_str_t                     name;
    ngx_str_t                     directive;
    ngx_str_t                     conf_file;
    ngx_uint_t                    conf_line;
} ngx_http_openbank_ref_t;


typedef struct {
    ngx_shm_zone_t               *shm_zone;
    ngx_str_t                     state_path;
    ngx_int_t                     tz_offset;   /* seconds east of UTC */
    ngx_msec_t                    state_interval; /* counter snapshots */

    ngx_array_t                   plans;       /* ngx_http_openbank_plan_t */
    ngx_array_t                   partners;    /* ngx_http_openbank_partner_t */
    ngx_array_t                   api_keys;    /* ngx_http_openbank_key_t */
    ngx_array_t                   refs;        /* ngx_http_openbank_ref_t */

    time_t                        loaded;      /* when the conf was read */

    ngx_str_t                     issuer;      /* openbank_issuer */
    ngx_array_t                   signing_keys;
                                      /* ngx_http_openbank_signing_key_t */
    time_t                        token_ttl;
    time_t                        clock_skew;  /* openbank_clock_skew */
    time_t                        assertion_lifetime;
                                      /* openbank_assertion_lifetime */
    struct ngx_http_openbank_oauth_s
                                 *oauth;       /* _oauth.h */

    ngx_array_t                   breakers;    /* _breaker.h, pointers */
    ngx_array_t                   limiters;    /* _concurrency.h, pointers */

    u_char                        admin_key[NGX_HTTP_OPENBANK_HASH_LEN];
    unsigned                      has_admin_key:1;  /* openbank_admin_key */
    unsigned                      admin_api:1; /* a location serves it */
    unsigned                      registration_api:1;
                                      /* openbank_registration_endpoint */

    struct ngx_http_openbank_dcr_conf_s
                                 *registration; /* _registration.h */
    unsigned                      events:1;    /* openbank_events_ingest
                                                  or openbank_events_api */
    struct ngx_http_openbank_events_conf_s
                                 *events_conf; /* _events.h */
    struct ngx_http_openbank_cluster_conf_s
                                 *cluster;     /* _cluster.h, NULL: none */
} ngx_http_openbank_main_conf_t;


typedef struct {
    ngx_flag_t                    api;
    ngx_uint_t                    auth;        /* NGX_HTTP_OPENBANK_AUTH_* */
    ngx_str_t                     scope;
    ngx_str_t                     product;
    struct ngx_http_openbank_version_s
                                 *version;     /* _version.h */
    ngx_flag_t                    status;
    ngx_uint_t                    signature;   /* SIGNATURE_* */
    ngx_uint_t                    idempotency; /* ..._IDEMPOTENCY_* */
    struct ngx_http_openbank_breaker_s
                                 *breaker;     /* _breaker.h */
    struct ngx_http_openbank_limiter_s
                                 *limiter;     /* _concurrency.h */
    ngx_uint_t                    checks;      /* those that apply, a mask */
} ngx_http_openbank_loc_conf_t;


/*
 * The shared zone: one keyed record store (ngx_http_openbank_shm.c,
 * docs/architecture.md "The shared zone").  Its tables: only the token
 * cache may lose a record before it expires.
 */

typedef enum {
    NGX_HTTP_OPENBANK_TABLE_RATE = 0,    /* GCRA state, per partner */
    NGX_HTTP_OPENBANK_TABLE_QUOTA,       /* calendar counters */
    NGX_HTTP_OPENBANK_TABLE_META,        /* the counters' snapshots */
    NGX_HTTP_OPENBANK_TABLE_METRICS,     /* metric series */
    NGX_HTTP_OPENBANK_TABLE_TOKEN,       /* verified tokens: a cache */
    NGX_HTTP_OPENBANK_TABLE_REVOKED,     /* revoked jtis, journal state */
    NGX_HTTP_OPENBANK_TABLE_ASSERTION,   /* used client assertion jtis */
    NGX_HTTP_OPENBANK_TABLE_NONCE,       /* RFC 9421 nonces */
    NGX_HTTP_OPENBANK_TABLE_IDEMPOTENCY, /* keys, answers, journal state */
    NGX_HTTP_OPENBANK_TABLE_USAGE,       /* usage history, per day */
    NGX_HTTP_OPENBANK_TABLE_REGISTRY,    /* partners, credentials, audit */
    NGX_HTTP_OPENBANK_TABLE_BREAKER,     /* circuit breakers' windows */
    NGX_HTTP_OPENBANK_TABLE_CONCURRENCY, /* requests in flight to the bank */
    NGX_HTTP_OPENBANK_TABLE_EVENTS,      /* events, webhook endpoints */
    NGX_HTTP_OPENBANK_TABLE_OUTBOX,      /* deliveries still to make */
    NGX_HTTP_OPENBANK_TABLE_SYNC,        /* changes to publish, cluster */
    NGX_HTTP_OPENBANK_TABLE_N
} ngx_http_openbank_table_e;


typedef struct ngx_http_openbank_zone_s  ngx_http_openbank_zone_t;


/* a record as a handler sees it, under the zone's lock */

typedef struct {
    ngx_str_t                     key;
    u_char                       *value;
    size_t                        len;
    uint64_t                      expire;      /* unix ms, 0: never; the
                                                  handler may change it */
    uint64_t                      now;         /* unix ms */
    unsigned                      is_new:1;    /* made for this update */
} ngx_http_openbank_store_value_t;


/* what a handler returns, and store_update() after it */
#define NGX_HTTP_OPENBANK_STORE_KEEP     0
#define NGX_HTTP_OPENBANK_STORE_DELETE   1
#define NGX_HTTP_OPENBANK_STORE_REFUSE   2     /* nothing changed: refuse */
#define NGX_HTTP_OPENBANK_STORE_STOP     3     /* a walk ends here */
/* what store_update() returns without running the handler */
#define NGX_HTTP_OPENBANK_STORE_ABSENT   4     /* no record, none made */
#define NGX_HTTP_OPENBANK_STORE_FULL     5     /* no room for the record */

typedef ngx_int_t (*ngx_http_openbank_store_handler_pt)(
    ngx_http_openbank_store_value_t *sv, void *data);
typedef ngx_int_t (*ngx_http_openbank_store_atomic_pt)(
    ngx_http_openbank_zone_t *zone, void *data);


/* per request */

typedef struct ngx_http_openbank_ctx_s  ngx_http_openbank_ctx_t;

/* resets a subsystem's state of the response after an internal redirect */
typedef void (*ngx_http_openbank_redirect_pt)(ngx_http_openbank_ctx_t *ctx);

struct ngx_http_openbank_ctx_s {
    ngx_uint_t                    stage;       /* next check to run */

    /*
     * The checks run once per client request, in the first location that
     * has them; an internal redirect keeps what they decided (see
     * ngx_http_openbank_find_ctx()).
     */
    ngx_http_openbank_loc_conf_t *conf;        /* where the checks ran */
    ngx_int_t                     access_rc;   /* what they decided */
    ngx_http_handler_pt           content_handler; /* for NGX_OK */
    unsigned                      checked:1;   /* access_rc is known */
    unsigned                      redirected:1; /* found after a redirect */
    unsigned                      body_reading:1; /* waits for the body */
    unsigned                      body_read:1; /* read, once for all */

    ngx_http_openbank_partner_t  *partner;
    ngx_array_t                  *scopes;      /* granted: ngx_str_t */

    ngx_str_t                     request_id;
    ngx_str_t                     result;      /* "ok" or a problem code */

    ngx_uint_t                    problem_status;
    ngx_str_t                     problem_code;
    ngx_str_t                    *problem_title;
    ngx_str_t                     problem_detail;
    ngx_chain_t                  *problem_out; /* replaces nginx's page */
    ngx_str_t                     allow;       /* of a 405: Allow */
    time_t                        retry_after; /* of a refusal: Retry-After */
    unsigned                      problem_sent:1;
    unsigned                      endpoint:1;  /* the module's endpoint */

    struct ngx_http_openbank_sig_ctx_s
                                 *signature;   /* _signature.h */
    struct ngx_http_openbank_idem_ctx_s
                                 *idempotency; /* _idempotency.h */

    u_char                        request_id_data[36];

    u_char                        token_cnf[NGX_HTTP_OPENBANK_HASH_LEN];
    unsigned                      token_bound:1;  /* cnf x5t#S256 */
    struct ngx_http_openbank_limits_s
                                 *limits;      /* _limit.h */
    struct ngx_http_openbank_admin_s
                                 *admin;       /* _admin.c */
    struct ngx_http_openbank_reply_s
                                 *reply;       /* _admin_out.c */
    struct ngx_http_openbank_json_api_s
                                 *json;        /* _admin_out.c */
    struct ngx_http_openbank_breaker_ctx_s
                                 *breaker;     /* _breaker.c */
    struct ngx_http_openbank_slot_s
                                 *slot;        /* _concurrency.c */
    struct ngx_http_openbank_dcr_req_s
                                 *registration; /* _registration.c */
    struct ngx_http_openbank_ev_ctx_s
                                 *events;      /* _events.h */
    struct ngx_http_openbank_cluster_req_s
                                 *cluster;     /* _cluster.c: a wait */
    void                         *sync;        /* _cluster_sync.c's */

    ngx_http_openbank_redirect_pt on_redirect; /* set by signature.c */
};


/*
 * One check of the access phase: NGX_DECLINED to go on to the next,
 * NGX_AGAIN or NGX_DONE to wait (the same check runs again when the
 * request is resumed), NGX_HTTP_OPENBANK_READ_BODY to have the request
 * body read first (then it runs again, with ctx->body_read), or an HTTP
 * status set by ngx_http_openbank_refuse().
 */
typedef ngx_int_t (*ngx_http_openbank_check_pt)(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);

#define NGX_HTTP_OPENBANK_READ_BODY      (-100)


/*
 * A response filter of the module is an nginx filter module of its own,
 * so that nginx's module order ("config") is the order of the response
 * pipeline.  NGX_HTTP_OPENBANK_FILTER_MODULE(name, body) defines
 * ngx_http_openbank_<name>_filter_module, and the file's
 * ngx_http_next_header_filter and ngx_http_next_body_filter: on the main
 * request of a request with the module's ctx it calls the file's
 * ngx_http_openbank_<name>_header(r, ctx) and body(r, ctx, in), each
 * returning NGX_DECLINED to pass the response on as it is; body is NULL
 * for a filter of the header alone.
 */
typedef ngx_int_t (*ngx_http_openbank_body_pt)(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_chain_t *in);

#define ngx_http_openbank_filter_ctx(r)                                       \
    ((r) == (r)->main ? ngx_http_openbank_find_ctx(r) : NULL)

#define NGX_HTTP_OPENBANK_FILTER_MODULE(name, body)                           \
                                                                              \
static ngx_int_t ngx_http_openbank_##name##_header(ngx_http_request_t *r,     \
    ngx_http_openbank_ctx_t *ctx);                                            \
                                                                              \
static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;         \
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;           \
static ngx_http_openbank_body_pt                                              \
    ngx_http_openbank_##name##_filter_body = body;                            \
                                                                              \
static ngx_int_t                                                              \
ngx_http_openbank_##name##_header_filter(ngx_http_request_t *r)               \
{                                                                             \
    ngx_int_t                 rc;                                             \
    ngx_http_openbank_ctx_t  *ctx;                                            \
                                                                              \
    ctx = ngx_http_openbank_filter_ctx(r);                                    \
    rc = ctx ? ngx_http_openbank_##name##_header(r, ctx) : NGX_DECLINED;      \
                                                                              \
    return rc != NGX_DECLINED ? rc : ngx_http_next_header_filter(r);          \
}                                                                             \
                                                                              \
static ngx_int_t                                                              \
ngx_http_openbank_##name##_body_filter(ngx_http_request_t *r,                 \
    ngx_chain_t *in)                                                          \
{                                                                             \
    ngx_int_t                 rc;                                             \
    ngx_http_openbank_ctx_t  *ctx;                                            \
                                                                              \
    ctx = ngx_http_openbank_filter_ctx(r);                                    \
    rc = ctx ? ngx_http_openbank_##name##_filter_body(r, ctx, in)             \
             : NGX_DECLINED;                                                  \
                                                                              \
    return rc != NGX_DECLINED ? rc : ngx_http_next_body_filter(r, in);        \
}                                                                             \
                                                                              \
static ngx_int_t                                                              \
ngx_http_openbank_##name##_filter_init(ngx_conf_t *cf)                        \
{                                                                             \
    ngx_http_next_header_filter = ngx_http_top_header_filter;                 \
    ngx_http_top_header_filter = ngx_http_openbank_##name##_header_filter;    \
                                                                              \
    if (ngx_http_openbank_##name##_filter_body) {                             \
        ngx_http_next_body_filter = ngx_http_top_body_filter;                 \
        ngx_http_top_body_filter = ngx_http_openbank_##name##_body_filter;    \
    }                                                                         \
                                                                              \
    return NGX_OK;                                                            \
}                                                                             \
                                                                              \
static ngx_http_module_t  ngx_http_openbank_##name##_filter_module_ctx = {    \
    NULL,                                  /* preconfiguration */             \
    ngx_http_openbank_##name##_filter_init, /* postconfiguration */           \
    NULL, NULL,                            /* main configuration */           \
    NULL, NULL,                            /* server configuration */         \
    NULL, NULL                             /* location configuration */       \
};                                                                            \
                                                                              \
ngx_module_t  ngx_http_openbank_##name##_filter_module = {                    \
    NGX_MODULE_V1,                                                            \
    &ngx_http_openbank_##name##_filter_module_ctx, /* module context */       \
    NULL,                                  /* module directives */            \
    NGX_HTTP_MODULE,                       /* module type */                  \
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, /* no process hooks */          \
    NGX_MODULE_V1_PADDING                                                     \
}


/* ngx_http_openbank_ctx.c */
ngx_http_openbank_ctx_t *ngx_http_openbank_find_ctx(ngx_http_request_t *r);
ngx_http_openbank_ctx_t *ngx_http_openbank_get_ctx(ngx_http_request_t *r);
ngx_http_openbank_loc_conf_t *ngx_http_openbank_api_conf(
    ngx_http_request_t *r, ngx_http_openbank_ctx_t *ctx);

/*
 * The problem codes of docs/errors.md: a refusal names one of these, so
 * that a code misspelt does not compile.  Their names and titles are the
 * table of ngx_http_openbank_problem.c.
 */

typedef enum {
    NGX_HTTP_OPENBANK_PROBLEM_INVALID_REQUEST,
    NGX_HTTP_OPENBANK_PROBLEM_INVALID_BODY,
    NGX_HTTP_OPENBANK_PROBLEM_IDEMPOTENCY_KEY_MISSING,
    NGX_HTTP_OPENBANK_PROBLEM_INVALID_TOKEN,
    NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_MISSING,
    NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID,
    NGX_HTTP_OPENBANK_PROBLEM_REPLAYED_REQUEST,
    NGX_HTTP_OPENBANK_PROBLEM_INSUFFICIENT_SCOPE,
    NGX_HTTP_OPENBANK_PROBLEM_CERTIFICATE_MISMATCH,
    NGX_HTTP_OPENBANK_PROBLEM_PARTNER_SUSPENDED,
    NGX_HTTP_OPENBANK_PROBLEM_NOT_FOUND,
    NGX_HTTP_OPENBANK_PROBLEM_METHOD_NOT_ALLOWED,
    NGX_HTTP_OPENBANK_PROBLEM_IDEMPOTENCY_IN_FLIGHT,
    NGX_HTTP_OPENBANK_PROBLEM_INVALID_STATE,
    NGX_HTTP_OPENBANK_PROBLEM_DUPLICATE_MESSAGE,
    NGX_HTTP_OPENBANK_PROBLEM_VERSION_RETIRED,
    NGX_HTTP_OPENBANK_PROBLEM_PAYLOAD_TOO_LARGE,
    NGX_HTTP_OPENBANK_PROBLEM_IDEMPOTENCY_KEY_REUSED,
    NGX_HTTP_OPENBANK_PROBLEM_INVALID_BATCH,
    NGX_HTTP_OPENBANK_PROBLEM_RATE_LIMITED,
    NGX_HTTP_OPENBANK_PROBLEM_QUOTA_EXCEEDED,
    NGX_HTTP_OPENBANK_PROBLEM_UPSTREAM_UNAVAILABLE,
    NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
    NGX_HTTP_OPENBANK_PROBLEM_CIRCUIT_OPEN,
    NGX_HTTP_OPENBANK_PROBLEM_OVERLOADED,
    NGX_HTTP_OPENBANK_PROBLEM_CONCURRENCY_LIMITED,
    NGX_HTTP_OPENBANK_PROBLEM_INTERNAL_ERROR,
    NGX_HTTP_OPENBANK_PROBLEM_N
} ngx_http_openbank_problem_e;


/* ngx_http_openbank_problem.c */
ngx_int_t ngx_http_openbank_refuse(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_uint_t status,
    ngx_http_openbank_problem_e code, const char *fmt, ...);
ngx_int_t ngx_http_openbank_request_id(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
ngx_int_t ngx_http_openbank_endpoint_start(ngx_http_request_t *r,
    ngx_uint_t methods, const char *allow);
ngx_int_t ngx_http_openbank_get_endpoint_start(ngx_http_request_t *r);
ngx_table_elt_t *ngx_http_openbank_find_header(ngx_list_t *headers,
    const char *name, ngx_uint_t *count);
ngx_table_elt_t *ngx_http_openbank_set_header(ngx_http_request_t *r,
    const char *name, ngx_str_t *value);
ngx_int_t ngx_http_openbank_retry_after(ngx_http_request_t *r,
    time_t seconds);
ngx_int_t ngx_http_openbank_send_response(ngx_http_request_t *r,
    u_char *data, size_t len);
const char *ngx_http_openbank_problem_title(const char *code);
ngx_uint_t ngx_http_openbank_problem_find(u_char *code, size_t len);
ngx_str_t *ngx_http_openbank_problem_name(ngx_http_openbank_problem_e code);

/* ngx_http_openbank_shm.c */
char *ngx_http_openbank_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
uint64_t ngx_http_openbank_now_ms(void);
ngx_int_t ngx_http_openbank_store_atomic(ngx_http_openbank_zone_t *zone,
    ngx_http_openbank_store_atomic_pt handler, void *data);
ssize_t ngx_http_openbank_store_get(ngx_http_openbank_zone_t *zone,
    ngx_uint_t table, ngx_str_t *key, void *buf, size_t len,
    uint64_t *expire);
ngx_int_t ngx_http_openbank_store_update(ngx_http_openbank_zone_t *zone,
    ngx_uint_t table, ngx_str_t *key, size_t create_len, uint64_t expire,
    ngx_http_openbank_store_handler_pt handler, void *data);
ngx_int_t ngx_http_openbank_store_set(ngx_http_openbank_zone_t *zone,
    ngx_uint_t table, ngx_str_t *key, void *value, size_t len,
    uint64_t expire);
ngx_int_t ngx_http_openbank_store_add(ngx_http_openbank_zone_t *zone,
    ngx_uint_t table, ngx_str_t *key, void *value, size_t len,
    uint64_t expire);
ngx_int_t ngx_http_openbank_store_delete(ngx_http_openbank_zone_t *zone,
    ngx_uint_t table, ngx_str_t *key);
ngx_int_t ngx_http_openbank_store_walk(ngx_http_openbank_zone_t *zone,
    ngx_uint_t table, ngx_http_openbank_store_handler_pt handler, void *data);
ngx_uint_t ngx_http_openbank_store_records(ngx_http_openbank_zone_t *zone);
time_t ngx_http_openbank_store_started(ngx_http_openbank_zone_t *zone);
void ngx_http_openbank_zone_usage(ngx_shm_zone_t *shm_zone,
    size_t *size, size_t *used);


extern ngx_module_t  ngx_http_openbank_module;


#endif /* _NGX_HTTP_OPENBANK_H_INCLUDED_ */
