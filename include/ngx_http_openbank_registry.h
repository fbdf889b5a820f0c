
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The partner registry (ngx_http_openbank_registry.c): partners and
 * credentials made at run time, durable in a journal under
 * openbank_state, mirrored in the shared zone, seen by each worker as
 * ready partners.
 */


#ifndef _NGX_HTTP_OPENBANK_REGISTRY_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_REGISTRY_H_INCLUDED_


#include <ngx_http_openbank.h>


#define NGX_HTTP_OPENBANK_CRED_API_KEY        1
#define NGX_HTTP_OPENBANK_CRED_CLIENT_SECRET  2
#define NGX_HTTP_OPENBANK_CRED_HMAC_SECRET    3
#define NGX_HTTP_OPENBANK_CRED_JWKS           4
#define NGX_HTTP_OPENBANK_CRED_CERTIFICATE    5
#define NGX_HTTP_OPENBANK_CRED_N              6  /* the Admin API's */
/* made by registration only: a registration access token (RFC 7592), a
 * tls_client_auth client's subject DN (its SHA-256) */
#define NGX_HTTP_OPENBANK_CRED_REGISTRATION   6
#define NGX_HTTP_OPENBANK_CRED_SUBJECT_DN     7

#define NGX_HTTP_OPENBANK_REG_ACTIVE          0
#define NGX_HTTP_OPENBANK_REG_SUSPENDED       1

/*
 * The registry is kept where the Admin API or registration is served, or
 * events (whose endpoints' secrets its key seals)
 */
#define ngx_http_openbank_registry_on(obmcf)                                  \
    ((obmcf)->admin_api || (obmcf)->registration_api || (obmcf)->events)

/* the AES-256-GCM seal of an HMAC secret: nonce, tag, then the secret */
#define NGX_HTTP_OPENBANK_SEAL_IV             12
#define NGX_HTTP_OPENBANK_SEAL_TAG            16

/* the biggest record value: a JWKS document and its head */
#define NGX_HTTP_OPENBANK_REG_VALUE_MAX       (64 * 1024)


/*
 * The values of the registry's records in the zone and in the journal:
 * "p<name>" a partner, "c<id>" a credential (id: 16 hex digits), "a<seq>"
 * an audit event (seq: 16 hex digits; its value the event's JSON), "s<hex
 * SHA-256>" a software statement used (its value the statement's exp, an
 * int64_t: the record goes at the first compaction after it).
 */

typedef struct {
    int64_t                       created;     /* unix s */
    uint32_t                      status;      /* NGX_HTTP_OPENBANK_REG_* */
    uint16_t                      plan_len;
    uint16_t                      client_id_len;
    uint16_t                      scopes_len;  /* space-separated */
    uint16_t                      quotas_len;  /* "product limit/window" ;
                                                  a line each */
} ngx_http_openbank_reg_partner_v_t;


typedef struct {
    int64_t                       created;     /* unix s */
    int64_t                       expires;     /* unix s, 0: never */
    int64_t                       last_used;   /* unix s, 0: never */
    uint32_t                      type;        /* NGX_HTTP_OPENBANK_CRED_* */
    uint16_t                      partner_len;
    uint16_t                      hint_len;
    uint32_t                      data_len;    /* sealed HMAC, JWKS text */
    u_char                        hash[NGX_HTTP_OPENBANK_HASH_LEN];
} ngx_http_openbank_reg_cred_v_t;


/* one change of the registry's records */

#define NGX_HTTP_OPENBANK_REG_PUT_NEW   1      /* absent, else a conflict */
#define NGX_HTTP_OPENBANK_REG_PUT       2      /* present, else not found */
#define NGX_HTTP_OPENBANK_REG_DEL       3      /* present, else not found */
#define NGX_HTTP_OPENBANK_REG_DEL_ALL   4      /* a partner: its credentials
                                                  go with it */
#define NGX_HTTP_OPENBANK_REG_AUDIT     5      /* value: the event's JSON
                                                  without its id */

typedef struct {
    ngx_uint_t                    op;
    ngx_str_t                     key;
    ngx_str_t                     value;
} ngx_http_openbank_reg_op_t;


/* what a change came to */
#define NGX_HTTP_OPENBANK_REG_OK        0
#define NGX_HTTP_OPENBANK_REG_CONFLICT  1      /* a name, client id or hash
                                                  taken */
#define NGX_HTTP_OPENBANK_REG_MISSING   2
#define NGX_HTTP_OPENBANK_REG_FULL      3
#define NGX_HTTP_OPENBANK_REG_ERROR     4

/* called once a change is durable (NGX_OK) or not */
typedef void (*ngx_http_openbank_reg_done_pt)(ngx_http_request_t *r,
    ngx_int_t rc);


typedef struct {
    ngx_http_openbank_reg_op_t   *ops;
    ngx_uint_t                    nops;
    ngx_str_t                     conflict;    /* what was taken */
    ngx_uint_t                    result;      /* NGX_HTTP_OPENBANK_REG_* */
} ngx_http_openbank_reg_change_t;


/* ngx_http_openbank_registry.c */
ngx_int_t ngx_http_openbank_registry_conf(ngx_conf_t *cf,
    ngx_http_openbank_main_conf_t *obmcf);
ngx_int_t ngx_http_openbank_registry_init_module(ngx_cycle_t *cycle);
ngx_int_t ngx_http_openbank_registry_change(ngx_http_request_t *r,
    ngx_http_openbank_reg_change_t *ch, ngx_http_openbank_reg_done_pt done);
ngx_int_t ngx_http_openbank_registry_collect(ngx_http_request_t *r,
    u_char prefix, ngx_array_t *out);
ngx_int_t ngx_http_openbank_registry_seal(u_char *out, u_char *secret,
    size_t len, ngx_str_t *aad);
ngx_int_t ngx_http_openbank_registry_open(ngx_pool_t *pool,
    ngx_str_t *sealed, ngx_str_t *aad, ngx_str_t *out);
ngx_int_t ngx_http_openbank_registry_taken(ngx_http_openbank_main_conf_t
    *obmcf, ngx_str_t *name, ngx_str_t *client_id);
ngx_http_openbank_partner_t *ngx_http_openbank_registry_api_key(
    ngx_http_request_t *r, u_char *hash);
ngx_http_openbank_partner_t *ngx_http_openbank_registry_client(
    ngx_http_request_t *r, ngx_str_t *client_id);
ngx_int_t ngx_http_openbank_registry_secret(ngx_http_request_t *r,
    ngx_http_openbank_partner_t *partner, ngx_uint_t type, u_char *hash,
    uint64_t *cred);
ngx_int_t ngx_http_openbank_registry_jwk(ngx_http_request_t *r,
    ngx_http_openbank_partner_t *partner, ngx_str_t *kid, uint64_t *cred);
ngx_int_t ngx_http_openbank_registry_live(ngx_http_request_t *r,
    ngx_http_openbank_partner_t *partner, uint64_t cred);
uint64_t ngx_http_openbank_registry_jti(ngx_str_t *jti);
ngx_int_t ngx_http_openbank_registry_partners(ngx_http_request_t *r,
    ngx_array_t *out);
ngx_int_t ngx_http_openbank_registry_get(ngx_http_request_t *r,
    ngx_str_t *key, ngx_str_t *value);


#endif /* _NGX_HTTP_OPENBANK_REGISTRY_H_INCLUDED_ */
