
/*
 * Copyright (C) The OpenBank gateway authors
 */


#ifndef _NGX_HTTP_OPENBANK_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/evp.h>


#define NGX_HTTP_OPENBANK_HASH_LEN       32     /* SHA-256 */
#define NGX_HTTP_OPENBANK_REQUEST_ID_LEN 128

#define NGX_HTTP_OPENBANK_WINDOW_DAY     1
#define NGX_HTTP_OPENBANK_WINDOW_MONTH   2

#define NGX_HTTP_OPENBANK_AUTH_API_KEY   0x01
#define NGX_HTTP_OPENBANK_AUTH_TOKEN     0x02

#define NGX_HTTP_OPENBANK_GONE           410

#define NGX_HTTP_OPENBANK_SIGNATURE_OFF       0
#define NGX_HTTP_OPENBANK_SIGNATURE_OPTIONAL  1
#define NGX_HTTP_OPENBANK_SIGNATURE_REQUIRED  2

#define NGX_HTTP_OPENBANK_IDEMPOTENCY_OFF       0
#define NGX_HTTP_OPENBANK_IDEMPOTENCY_OPTIONAL  1
#define NGX_HTTP_OPENBANK_IDEMPOTENCY_REQUIRED  2

#define NGX_HTTP_OPENBANK_JOURNAL_FRAME  12


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
    void                         *jwks;        /* ngx_http_openbank_jwks_t */

    ngx_str_t                     hmac_secret;

    unsigned                      has_client_secret:1;
    unsigned                      has_certificate:1;

    ngx_str_t                     conf_file;   /* where it was declared */
    ngx_uint_t                    conf_line;
} ngx_http_openbank_partner_t;


typedef struct {
    u_char                        hash[NGX_HTTP_OPENBANK_HASH_LEN];
    ngx_http_openbank_partner_t  *partner;
} ngx_http_openbank_key_t;


/* a partner's public key, from its JWKS (ngx_http_openbank_jwks.c) */

#define NGX_HTTP_OPENBANK_KEY_RSA        1
#define NGX_HTTP_OPENBANK_KEY_EC_P256    2
#define NGX_HTTP_OPENBANK_KEY_ED25519    3
#define NGX_HTTP_OPENBANK_KEY_SM2        4

typedef struct {
    ngx_str_t                     kid;
    ngx_uint_t                    type;        /* NGX_HTTP_OPENBANK_KEY_* */
    ngx_str_t                     alg;         /* the JWK's, or empty */
    EVP_PKEY                     *pkey;        /* ready, public only */
    EVP_MD_CTX                   *verifier;    /* a worker's, made at its
                                                  first signature; NULL for
                                                  most algorithms */
} ngx_http_openbank_jwk_t;


typedef struct {
    ngx_array_t                   keys;        /* ngx_http_openbank_jwk_t */
} ngx_http_openbank_jwks_t;


/*
 * The gateway's own signing keys ("openbank_signing_key",
 * ngx_http_openbank_keys.c): the first signs tokens and signed
 * responses, all verify tokens and are in the JWKS.
 */

typedef struct {
    ngx_str_t                     kid;
    ngx_uint_t                    type;        /* NGX_HTTP_OPENBANK_KEY_* */
    ngx_str_t                     alg;         /* ES256, PS256 or EdDSA */
    EVP_PKEY                     *pkey;        /* private, ready */
    ngx_str_t                     jwk;         /* the public JWK, JSON */
    EVP_PKEY_CTX                 *verify;      /* ready to verify digests */
    u_char                        id[NGX_HTTP_OPENBANK_HASH_LEN];
                                               /* SHA-256 of the issuer and
                                                  the public key */
} ngx_http_openbank_signing_key_t;


/* how far ahead a client assertion's exp may be: the default, the most */
#define NGX_HTTP_OPENBANK_ASSERTION_LIFETIME      300
#define NGX_HTTP_OPENBANK_ASSERTION_LIFETIME_MAX  3600


/* a parsed, not yet trusted JWT (ngx_http_openbank_jwt.c) */

#define NGX_HTTP_OPENBANK_TOKEN_MAX     8192
#define NGX_HTTP_OPENBANK_JWT_AUD_MAX   8
#define NGX_HTTP_OPENBANK_JWT_NO_TIME   (-1)

typedef struct {
    ngx_str_t                     signing_input;   /* header.claims */
    ngx_str_t                     signature;       /* decoded */
    ngx_str_t                     alg;
    ngx_str_t                     kid;
    ngx_str_t                     typ;
    ngx_str_t                     iss;
    ngx_str_t                     sub;
    ngx_str_t                     client_id;
    ngx_str_t                     jti;
    ngx_str_t                     scope;
    ngx_str_t                     x5t;             /* cnf x5t#S256 */
    ngx_str_t                     aud[NGX_HTTP_OPENBANK_JWT_AUD_MAX];
    ngx_uint_t                    naud;
    int64_t                       exp;
    int64_t                       nbf;
    int64_t                       iat;
    unsigned                      has_exp:1;
    unsigned                      has_nbf:1;
    unsigned                      has_iat:1;
    unsigned                      has_cnf:1;
} ngx_http_openbank_jwt_t;


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
    void                         *oauth;       /* ngx_http_openbank_oauth.c */
} ngx_http_openbank_main_conf_t;


typedef struct {
    time_t                        sunset;
    time_t                        deprecated;
    ngx_str_t                     successor;
    ngx_str_t                     sunset_header;
    ngx_str_t                     deprecation_header;
    ngx_str_t                     link_header;
} ngx_http_openbank_version_t;


typedef struct {
    ngx_flag_t                    api;
    ngx_uint_t                    auth;        /* NGX_HTTP_OPENBANK_AUTH_* */
    ngx_str_t                     scope;
    ngx_str_t                     product;
    ngx_http_openbank_version_t  *version;
    ngx_flag_t                    status;
    ngx_uint_t                    signature;   /* SIGNATURE_* */
    ngx_uint_t                    idempotency; /* ..._IDEMPOTENCY_* */
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

typedef struct {
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
    ngx_str_t                     problem_detail;
    ngx_chain_t                  *problem_out; /* replaces nginx's page */
    ngx_str_t                     allow;       /* of a 405: Allow */
    unsigned                      problem_sent:1;
    unsigned                      endpoint:1;  /* the module's endpoint */

    void                         *signature;   /* _signature.c's state */
    void                         *idempotency; /* _idempotency.c */

    u_char                        request_id_data[36];

    u_char                        token_cnf[NGX_HTTP_OPENBANK_HASH_LEN];
    unsigned                      token_bound:1;  /* cnf x5t#S256 */
    void                         *limits;      /* ngx_http_openbank_limits_t */
} ngx_http_openbank_ctx_t;


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


/* ngx_http_openbank_module.c */
ngx_http_openbank_ctx_t *ngx_http_openbank_find_ctx(ngx_http_request_t *r);
ngx_http_openbank_ctx_t *ngx_http_openbank_get_ctx(ngx_http_request_t *r);
ngx_http_openbank_loc_conf_t *ngx_http_openbank_api_conf(
    ngx_http_request_t *r, ngx_http_openbank_ctx_t *ctx);

/* ngx_http_openbank_partner.c */
char *ngx_http_openbank_plan_block(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_openbank_partner_block(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_openbank_partners_init(ngx_conf_t *cf,
    ngx_http_openbank_main_conf_t *obmcf);
ngx_http_openbank_partner_t *ngx_http_openbank_partner_by_api_key(
    ngx_http_openbank_main_conf_t *obmcf, u_char *hash);
ngx_int_t ngx_http_openbank_partner_has_scope(
    ngx_http_openbank_partner_t *partner, ngx_str_t *scope);
ngx_http_openbank_quota_t *ngx_http_openbank_partner_quota(
    ngx_http_openbank_partner_t *partner, ngx_str_t *product);
ngx_int_t ngx_http_openbank_add_ref(ngx_conf_t *cf, ngx_str_t *name);

/* ngx_http_openbank_auth.c */
ngx_int_t ngx_http_openbank_identify(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
ngx_int_t ngx_http_openbank_scope_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);

/* ngx_http_openbank_problem.c */
ngx_int_t ngx_http_openbank_refuse(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_uint_t status, const char *code,
    const char *fmt, ...);
ngx_int_t ngx_http_openbank_request_id(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
ngx_int_t ngx_http_openbank_endpoint_start(ngx_http_request_t *r,
    ngx_uint_t methods, const char *allow);
ngx_table_elt_t *ngx_http_openbank_find_header(ngx_list_t *headers,
    const char *name, ngx_uint_t *count);
ngx_table_elt_t *ngx_http_openbank_set_header(ngx_http_request_t *r,
    const char *name, ngx_str_t *value);

/* ngx_http_openbank_version.c */
char *ngx_http_openbank_version_sunset(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_openbank_version_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
ngx_int_t ngx_http_openbank_version_headers(ngx_http_request_t *r);

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

/* ngx_http_openbank_limit.c */
ngx_int_t ngx_http_openbank_rate_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
ngx_int_t ngx_http_openbank_quota_take(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
u_char *ngx_http_openbank_limit_status(u_char *p,
    ngx_http_openbank_main_conf_t *obmcf, ngx_http_openbank_partner_t *partner,
    uint64_t now);
size_t ngx_http_openbank_limit_status_len(
    ngx_http_openbank_partner_t *partner);
ngx_int_t ngx_http_openbank_limit_init_module(ngx_cycle_t *cycle);
ngx_msec_t ngx_http_openbank_limit_manager(void *data);
ngx_int_t ngx_http_openbank_limit_init_process(ngx_cycle_t *cycle);
void ngx_http_openbank_limit_exit_process(ngx_cycle_t *cycle);
void ngx_http_openbank_limit_exit_master(ngx_cycle_t *cycle);

/* ngx_http_openbank_state.c: durable files, written atomically */
ngx_int_t ngx_http_openbank_state_write(ngx_log_t *log, ngx_str_t *path,
    u_char *buf, size_t len);
ngx_int_t ngx_http_openbank_state_write_as(ngx_log_t *log, ngx_str_t *path,
    u_char *buf, size_t len, ngx_uid_t user);
ngx_int_t ngx_http_openbank_state_write_level(ngx_log_t *log,
    ngx_uint_t level, ngx_str_t *path, u_char *buf, size_t len,
    ngx_uid_t user);
ngx_int_t ngx_http_openbank_state_read(ngx_log_t *log, ngx_uint_t level,
    ngx_pool_t *pool, ngx_str_t *path, size_t max, ngx_str_t *out);
ngx_int_t ngx_http_openbank_state_lock(ngx_fd_t fd, ngx_uint_t exclusive,
    ngx_uint_t wait);
void ngx_http_openbank_state_unlock(ngx_fd_t fd);

/* ngx_http_openbank_metrics.c */
char *ngx_http_openbank_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_openbank_metrics_init(ngx_conf_t *cf);

/* ngx_http_openbank_status.c */
char *ngx_http_openbank_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_openbank_signature.c */
ngx_int_t ngx_http_openbank_signature_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
void ngx_http_openbank_signature_redirected(ngx_http_openbank_ctx_t *ctx);

/* ngx_http_openbank_jwks.c */
void *ngx_http_openbank_jwks_load(ngx_conf_t *cf, ngx_str_t *file);
ngx_int_t ngx_http_openbank_jwks_parse(ngx_pool_t *pool, ngx_str_t *text,
    ngx_http_openbank_jwks_t *jwks, u_char *err, size_t err_len);
ngx_http_openbank_jwk_t *ngx_http_openbank_jwks_find(
    ngx_http_openbank_jwks_t *jwks, ngx_str_t *kid);

/* ngx_http_openbank_jwt.c */
ngx_int_t ngx_http_openbank_jwt_parse(ngx_pool_t *pool, ngx_str_t *token,
    ngx_http_openbank_jwt_t *jwt, const char **err);
ngx_int_t ngx_http_openbank_jwt_verify(ngx_http_openbank_jwt_t *jwt,
    EVP_PKEY *pkey, ngx_uint_t type, ngx_str_t *alg, EVP_PKEY_CTX *ready);
EVP_PKEY_CTX *ngx_http_openbank_jwt_verifier(EVP_PKEY *pkey,
    ngx_uint_t type);
ngx_int_t ngx_http_openbank_jwt_sign(ngx_pool_t *pool,
    ngx_http_openbank_signing_key_t *key, ngx_str_t *claims, ngx_str_t *out);
ngx_int_t ngx_http_openbank_random_id(u_char *out);

/* ngx_http_openbank_keys.c */
char *ngx_http_openbank_issuer(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_openbank_signing_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_http_openbank_signing_key_t *ngx_http_openbank_signing_key_find(
    ngx_http_openbank_main_conf_t *obmcf, ngx_str_t *kid);

/* ngx_http_openbank_oauth.c */
ngx_int_t ngx_http_openbank_oauth_init(ngx_conf_t *cf,
    ngx_http_openbank_main_conf_t *obmcf);
ngx_int_t ngx_http_openbank_oauth_init_module(ngx_cycle_t *cycle);
char *ngx_http_openbank_token_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_openbank_introspection_endpoint(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_openbank_revocation_endpoint(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
void ngx_http_openbank_revocation_durable(ngx_http_request_t *r,
    ngx_int_t rc);
char *ngx_http_openbank_jwks_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_openbank_metadata_endpoint(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
ngx_http_openbank_partner_t *ngx_http_openbank_partner_by_client_id(
    ngx_http_openbank_main_conf_t *obmcf, ngx_str_t *client_id);
ngx_int_t ngx_http_openbank_client_cert(ngx_http_request_t *r, u_char *hash);

/* ngx_http_openbank_token.c */
ngx_int_t ngx_http_openbank_bearer(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_table_elt_t *h, ngx_uint_t n);
ngx_int_t ngx_http_openbank_binding_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
ngx_int_t ngx_http_openbank_token_check(ngx_http_request_t *r,
    ngx_str_t *token, ngx_http_openbank_jwt_t *jwt,
    ngx_http_openbank_partner_t **partner,
    ngx_http_openbank_signing_key_t **key, const char **err);
ngx_int_t ngx_http_openbank_revoke(ngx_http_request_t *r, ngx_str_t *token,
    ngx_http_openbank_jwt_t *jwt);
ngx_int_t ngx_http_openbank_revoked_load(ngx_cycle_t *cycle,
    ngx_http_openbank_main_conf_t *obmcf);

/* ngx_http_openbank_idempotency.c */
ngx_int_t ngx_http_openbank_idempotency_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
char *ngx_http_openbank_idempotency_merge(ngx_conf_t *cf,
    ngx_http_openbank_loc_conf_t *prev, ngx_http_openbank_loc_conf_t *conf);
ngx_int_t ngx_http_openbank_idempotency_init_module(ngx_cycle_t *cycle);
extern ngx_conf_enum_t  ngx_http_openbank_idempotency_modes[];

/* ngx_http_openbank_journal.c: append-only journals of records */
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
     * Inside ngx_http_openbank_store_atomic(): the zone's framed records,
     * by ngx_http_openbank_store_walk() (NULL "buf": their size)
     */
    size_t                      (*dump)(ngx_http_openbank_journal_t *j,
                                      u_char *buf, uint64_t now);
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
    ngx_thread_task_t            *task;
    ngx_http_openbank_zone_t     *zone;
};

/* a dump's buffer, for the handlers of its walk */
typedef struct {
    u_char                       *buf;         /* NULL: measure */
    u_char                       *p;
    size_t                        size;
} ngx_http_openbank_journal_dump_t;

void ngx_http_openbank_journal_frame(u_char *rec, size_t len);
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
ngx_int_t ngx_http_openbank_journal_commit(ngx_http_openbank_journal_t *j,
    ngx_queue_t *batch, ngx_log_t *log);
ngx_int_t ngx_http_openbank_journal_start(ngx_http_openbank_journal_t *j,
    ngx_cycle_t *cycle, ngx_uid_t user);
ngx_int_t ngx_http_openbank_journal_replay(ngx_http_openbank_journal_t *j,
    ngx_log_t *log, ngx_http_openbank_journal_pt *handlers, ngx_uint_t n,
    void *data, size_t *skipped);
ngx_int_t ngx_http_openbank_journal_compact(ngx_http_openbank_journal_t *j,
    ngx_uid_t user, ngx_log_t *log);
/* ngx_http_openbank_util.c */
void ngx_http_openbank_sha256(u_char *out, u_char *data, size_t len);
ngx_int_t ngx_http_openbank_parse_hash(ngx_str_t *value, u_char *out);
ngx_int_t ngx_http_openbank_read_whole(ngx_pool_t *pool, ngx_str_t *name,
    size_t max, ngx_str_t *out, ngx_err_t *err, const char **what);
ngx_int_t ngx_http_openbank_read_file(ngx_conf_t *cf, ngx_str_t *name,
    size_t max, ngx_str_t *out);
time_t ngx_http_openbank_parse_time(ngx_str_t *value);
ngx_int_t ngx_http_openbank_month_days(ngx_int_t year, ngx_int_t month);
time_t ngx_http_openbank_days_from_civil(ngx_int_t year, ngx_int_t month,
    ngx_int_t day);
ngx_int_t ngx_http_openbank_parse_tz(ngx_str_t *value);
ngx_int_t ngx_http_openbank_valid_name(ngx_str_t *name);
ngx_int_t ngx_http_openbank_body_digest(ngx_http_request_t *r,
    EVP_MD_CTX *md);
ngx_int_t ngx_http_openbank_decode_base64url(ngx_str_t *dst, ngx_str_t *src);


extern ngx_module_t  ngx_http_openbank_module;


#endif /* _NGX_HTTP_OPENBANK_H_INCLUDED_ */
