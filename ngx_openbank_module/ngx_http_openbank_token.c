
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Access tokens on the hot path: "Authorization: Bearer".  A token is
 * verified once (signature with a ready key, alg pinned by the key's
 * type, iss, aud, exp and nbf with openbank_clock_skew, revocation) and
 * then remembered in the shared zone under the SHA-256 of its text, so
 * that every later request with it costs one lookup and no crypto.
 *
 * Revocation puts the token's jti in the zone (never evicted, until the
 * token would have expired) and drops the cached token, under one lock,
 * so that no worker accepts it from the next request on; each revocation
 * is also a record of the revocations journal under openbank_state
 * (ngx_http_openbank_journal.c), answered once it is durable, and the
 * journal is replayed into the zone at start.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_journal.h>
#include <ngx_http_openbank_sync.h>
#include <ngx_http_openbank_jwt.h>
#include <ngx_http_openbank_partner.h>
#include <ngx_http_openbank_registry.h>
#include <ngx_http_openbank_state.h>
#include <ngx_http_openbank_token.h>
#include <ngx_http_openbank_util.h>


#define NGX_HTTP_OPENBANK_SCOPE_CACHE_MAX  1024
#define NGX_HTTP_OPENBANK_REVOKED_FILE     "revoked-tokens"
#define NGX_HTTP_OPENBANK_REVOKED_MAX      (16 * 1024 * 1024)
#define NGX_HTTP_OPENBANK_REVOKED_RECORD   2    /* a record type */


/* the value of a verified token in the zone; client_id and scope follow */

typedef struct {
    int64_t                       exp;
    uint64_t                      credential;  /* a registry partner's */
    u_char                        key_id[NGX_HTTP_OPENBANK_HASH_LEN];
    u_char                        cnf[NGX_HTTP_OPENBANK_HASH_LEN];
    u_char                        bound;
    u_char                        client_id_len;
    uint16_t                      scope_len;
} ngx_http_openbank_token_value_t;


/* a verified token to cache, or a revocation, under the zone's lock */

typedef struct {
    ngx_str_t                        *hash;
    ngx_http_openbank_jwt_t          *jwt;
    ngx_http_openbank_signing_key_t  *key;
    u_char                           *cnf;
    ngx_uint_t                        bound;
    uint64_t                          expire;   /* of a revocation */
    uint64_t                          sync_seq; /* cluster_sync.c's */
    ngx_uint_t                        revoked;
} ngx_http_openbank_token_op_t;


/* base64url and ".": the characters of a compact JWS */

static uint32_t  ngx_http_openbank_jws_chars[] = {
    0x00000000, /* 0000 0000 0000 0000  0000 0000 0000 0000 */

                /* ?>=< ;:98 7654 3210  /.-, +*)( '&%$ #"!  */
    0x03ff6000, /* 0000 0011 1111 1111  0110 0000 0000 0000 */

                /* _^]\ [ZYX WVUT SRQP  ONML KJIH GFED CBA@ */
    0x87fffffe, /* 1000 0111 1111 1111  1111 1111 1111 1110 */

                /*  ~}| {zyx wvut srqp  onml kjih gfed cba` */
    0x07fffffe, /* 0000 0111 1111 1111  1111 1111 1111 1110 */

    0x00000000, 0x00000000, 0x00000000, 0x00000000
};


static ngx_int_t ngx_http_openbank_bearer_invalid(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, const char *why);
static ngx_int_t ngx_http_openbank_bearer_registry(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_partner_t *partner,
    uint64_t credential);
static ngx_int_t ngx_http_openbank_token_scopes(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, u_char *scope, size_t len);
static ngx_int_t ngx_http_openbank_token_cache(ngx_http_request_t *r,
    ngx_str_t *hash, ngx_http_openbank_jwt_t *jwt,
    ngx_http_openbank_signing_key_t *key, u_char *cnf, ngx_uint_t bound);
static ngx_int_t ngx_http_openbank_token_cache_atomic(
    ngx_http_openbank_zone_t *zone, void *data);
static ngx_int_t ngx_http_openbank_token_fill(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_revoke_atomic(
    ngx_http_openbank_zone_t *zone, void *data);
static ngx_int_t ngx_http_openbank_revoked_save(ngx_http_request_t *r,
    ngx_http_openbank_jwt_t *jwt, ngx_http_openbank_revoked_pt done);
static ngx_int_t ngx_http_openbank_revoked_dump_entry(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_revoked_legacy(ngx_cycle_t *cycle,
    ngx_http_openbank_main_conf_t *obmcf, ngx_str_t *name,
    ngx_uint_t *loaded);
static ngx_int_t ngx_http_openbank_revoked_replay(void *data,
    u_char *payload, size_t len);
static ngx_int_t ngx_http_openbank_revoked_add(
    ngx_http_openbank_main_conf_t *obmcf, ngx_str_t *jti, uint64_t expire);


/* the revocations journal: one record a revoked jti, no value */

static ngx_http_openbank_journal_t  ngx_http_openbank_revoked_j = {
    "revocations journal", "revocations", NGX_HTTP_OPENBANK_TABLE_REVOKED,
    NULL, ngx_http_openbank_revoked_dump_entry, NULL, "",
    ngx_null_string, ngx_null_string, 0, 0, 0, 0, 0,
    { NULL, NULL }, { NULL, NULL }, 0, { 0 }, { 0 }, NULL, NULL, 0
};


typedef struct {
    ngx_http_openbank_main_conf_t  *obmcf;
    uint64_t                        now;
    ngx_uint_t                      loaded;
    ngx_uint_t                      full;
} ngx_http_openbank_revoked_load_t;


ngx_int_t
ngx_http_openbank_bearer(ngx_http_request_t *r, ngx_http_openbank_ctx_t *ctx,
    ngx_table_elt_t *h, ngx_uint_t n)
{
    u_char                           *p, *last;
    u_char                            hash[NGX_HTTP_OPENBANK_HASH_LEN];
    u_char                            buf[sizeof(
                                          ngx_http_openbank_token_value_t)
                                          + 255
                                          + NGX_HTTP_OPENBANK_SCOPE_CACHE_MAX];
    ssize_t                           got;
    ngx_int_t                         rc;
    ngx_str_t                         token, key, client_id;
    ngx_uint_t                        i, hit;
    const char                       *why;
    ngx_http_openbank_jwt_t           jwt;
    ngx_http_openbank_zone_t         *zone;
    ngx_http_openbank_partner_t      *partner;
    ngx_http_openbank_main_conf_t    *obmcf;
    ngx_http_openbank_token_value_t  *tv;
    ngx_http_openbank_signing_key_t  *skey;

    if (n > 1) {
        return ngx_http_openbank_bearer_invalid(r, ctx, "Authorization is "
                                                "sent more than once");
    }

    if (h->value.len < 7
        || ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) != 0)
    {
        return ngx_http_openbank_bearer_invalid(r, ctx, "Authorization "
                                                "must be \"Bearer\" and an "
                                                "access token");
    }

    p = h->value.data + 7;
    last = h->value.data + h->value.len;

    while (p < last && *p == ' ') {
        p++;
    }

    while (last > p && last[-1] == ' ') {
        last--;
    }

    token.data = p;
    token.len = last - p;

    if (token.len == 0 || token.len > NGX_HTTP_OPENBANK_TOKEN_MAX) {
        return ngx_http_openbank_bearer_invalid(r, ctx, "the access token "
                                                "is empty or too long");
    }

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    if (obmcf->signing_keys.nelts == 0 || obmcf->shm_zone == NULL
        || obmcf->issuer.len == 0)
    {
        return ngx_http_openbank_bearer_invalid(r, ctx, "this gateway "
                                                "issues no tokens");
    }

    ngx_http_openbank_sha256(hash, token.data, token.len);

    key.data = hash;
    key.len = sizeof(hash);

    zone = obmcf->shm_zone->data;
    tv = (ngx_http_openbank_token_value_t *) buf;

    got = ngx_http_openbank_store_get(zone, NGX_HTTP_OPENBANK_TABLE_TOKEN,
                                      &key, buf, sizeof(buf), NULL);

    hit = (got >= (ssize_t) sizeof(ngx_http_openbank_token_value_t)
           && got <= (ssize_t) sizeof(buf));

    if (hit) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "openbank: access token from the cache");

        /* a key since removed (or another issuer) no longer vouches */

        skey = obmcf->signing_keys.elts;

        for (i = 0; i < obmcf->signing_keys.nelts; i++) {
            if (ngx_memcmp(skey[i].id, tv->key_id,
                           NGX_HTTP_OPENBANK_HASH_LEN) == 0)
            {
                break;
            }
        }

        if (i == obmcf->signing_keys.nelts) {
            return ngx_http_openbank_bearer_invalid(r, ctx, "the token's "
                                                    "signing key is no "
                                                    "longer trusted");
        }

        client_id.data = buf + sizeof(ngx_http_openbank_token_value_t);
        client_id.len = tv->client_id_len;

        partner = ngx_http_openbank_partner_by_client_id(obmcf, &client_id);

        if (partner == NULL) {
            partner = ngx_http_openbank_registry_client(r, &client_id);
        }

        if (partner == NULL) {
            return ngx_http_openbank_bearer_invalid(r, ctx, "the token's "
                                                    "client is unknown");
        }

        if (partner->registry) {
            rc = ngx_http_openbank_bearer_registry(r, ctx, partner,
                                                   tv->credential);
            if (rc != NGX_DECLINED) {
                return rc;
            }
        }

        ctx->partner = partner;

        if (tv->bound) {
            ngx_memcpy(ctx->token_cnf, tv->cnf, NGX_HTTP_OPENBANK_HASH_LEN);
            ctx->token_bound = 1;
        }

        return ngx_http_openbank_token_scopes(r, ctx,
                                              client_id.data + client_id.len,
                                              tv->scope_len);
    }

    /* not seen yet: the whole verification, once */

    for (p = token.data; p < last; p++) {
        if (!(ngx_http_openbank_jws_chars[*p >> 5] & (1U << (*p & 0x1f)))) {
            return ngx_http_openbank_bearer_invalid(r, ctx, "the access "
                                                    "token is not a JWT");
        }
    }

    rc = ngx_http_openbank_token_check(r, &token, &jwt, &partner, &skey,
                                       &why);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_http_openbank_bearer_invalid(r, ctx, why);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "openbank: access token %V verified", &jwt.jti);

    if (partner->registry) {
        rc = ngx_http_openbank_bearer_registry(r, ctx, partner,
                                    ngx_http_openbank_registry_jti(&jwt.jti));
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    ctx->partner = partner;

    if (jwt.has_cnf) {
        p = ctx->token_cnf;
        key.data = jwt.x5t.data;
        key.len = jwt.x5t.len;
        token.data = p;

        if (jwt.x5t.len != 43
            || ngx_http_openbank_decode_base64url(&token, &key) != NGX_OK
            || token.len != NGX_HTTP_OPENBANK_HASH_LEN)
        {
            return ngx_http_openbank_bearer_invalid(r, ctx, "the token's "
                                                    "cnf is malformed");
        }

        ctx->token_bound = 1;
    }

    key.data = hash;
    key.len = sizeof(hash);

    rc = ngx_http_openbank_token_cache(r, &key, &jwt, skey, ctx->token_cnf,
                                       ctx->token_bound);

    if (rc == NGX_DECLINED) {
        return ngx_http_openbank_bearer_invalid(r, ctx, "the token is "
                                                "revoked");
    }

    return ngx_http_openbank_token_scopes(r, ctx, jwt.scope.data,
                                          jwt.scope.len);
}


/*
 * A registry partner's token: refused once the partner is suspended, or
 * once the credential it was obtained with is deleted or expired.
 */

static ngx_int_t
ngx_http_openbank_bearer_registry(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_partner_t *partner,
    uint64_t credential)
{
    if (partner->suspended) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "openbank: access token of the suspended partner "
                      "\"%V\" refused", &partner->name);

        ctx->partner = partner;

        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_FORBIDDEN,
                                NGX_HTTP_OPENBANK_PROBLEM_PARTNER_SUSPENDED,
                                "the partner is suspended");
    }

    if (ngx_http_openbank_registry_live(r, partner, credential) != NGX_OK) {
        return ngx_http_openbank_bearer_invalid(r, ctx, "the credential the "
                                                "token was obtained with is "
                                                "deleted or expired");
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_openbank_bearer_invalid(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, const char *why)
{
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "openbank: access token refused: %s", why);

    return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
        NGX_HTTP_OPENBANK_PROBLEM_INVALID_TOKEN, "%s", why);
}


/* the token's scopes that its partner still holds */

static ngx_int_t
ngx_http_openbank_token_scopes(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, u_char *scope, size_t len)
{
    u_char       *p, *last;
    ngx_str_t     one, *s;
    ngx_array_t  *scopes;

    scopes = ngx_array_create(r->pool, 4, sizeof(ngx_str_t));
    if (scopes == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the cached bytes live on the stack of the caller: one copy */

    p = ngx_pnalloc(r->pool, len ? len : 1);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(p, scope, len);
    last = p + len;

    while (ngx_http_openbank_next_word(&p, last, &one) == NGX_OK) {
        if (one.len == 0
            || !ngx_http_openbank_partner_has_scope(ctx->partner, &one))
        {
            continue;
        }

        s = ngx_array_push(scopes);
        if (s == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *s = one;
    }

    ctx->scopes = scopes;

    return NGX_DECLINED;
}


/*
 * Remembers a verified token, unless its jti was revoked meanwhile: the
 * check and the insertion are under the same lock as revocation's.
 * NGX_DECLINED: revoked.  A full zone only means no caching.
 */

static ngx_int_t
ngx_http_openbank_token_cache(ngx_http_request_t *r, ngx_str_t *hash,
    ngx_http_openbank_jwt_t *jwt, ngx_http_openbank_signing_key_t *key,
    u_char *cnf, ngx_uint_t bound)
{
    ngx_http_openbank_token_op_t    op;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    op.hash = hash;
    op.jwt = jwt;
    op.key = key;
    op.cnf = cnf;
    op.bound = bound;
    op.expire = (uint64_t) (jwt->exp + obmcf->clock_skew) * 1000;

    return ngx_http_openbank_store_atomic(obmcf->shm_zone->data,
                                          ngx_http_openbank_token_cache_atomic,
                                          &op);
}


static ngx_int_t
ngx_http_openbank_token_cache_atomic(ngx_http_openbank_zone_t *zone,
    void *data)
{
    ngx_http_openbank_token_op_t  *op = data;

    size_t                    len;
    ngx_http_openbank_jwt_t  *jwt;

    jwt = op->jwt;

    if (ngx_http_openbank_store_get(zone, NGX_HTTP_OPENBANK_TABLE_REVOKED,
                                    &jwt->jti, NULL, 0, NULL)
        != NGX_DECLINED)
    {
        return NGX_DECLINED;
    }

    if (jwt->client_id.len > 255
        || jwt->scope.len > NGX_HTTP_OPENBANK_SCOPE_CACHE_MAX
        || (jwt->has_nbf && jwt->nbf > ngx_time()))
    {
        return NGX_OK;
    }

    len = sizeof(ngx_http_openbank_token_value_t) + jwt->client_id.len
          + jwt->scope.len;

    (void) ngx_http_openbank_store_update(zone, NGX_HTTP_OPENBANK_TABLE_TOKEN,
                                          op->hash, len, op->expire,
                                          ngx_http_openbank_token_fill, op);

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_token_fill(ngx_http_openbank_store_value_t *sv, void *data)
{
    ngx_http_openbank_token_op_t  *op = data;

    u_char                           *p;
    ngx_http_openbank_jwt_t          *jwt;
    ngx_http_openbank_token_value_t  *tv;

    if (!sv->is_new) {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    jwt = op->jwt;
    tv = (ngx_http_openbank_token_value_t *) sv->value;

    tv->exp = jwt->exp;
    tv->credential = ngx_http_openbank_registry_jti(&jwt->jti);
    ngx_memcpy(tv->key_id, op->key->id, NGX_HTTP_OPENBANK_HASH_LEN);
    ngx_memcpy(tv->cnf, op->cnf, NGX_HTTP_OPENBANK_HASH_LEN);
    tv->bound = op->bound ? 1 : 0;
    tv->client_id_len = (u_char) jwt->client_id.len;
    tv->scope_len = (uint16_t) jwt->scope.len;

    p = (u_char *) tv + sizeof(ngx_http_openbank_token_value_t);
    p = ngx_cpymem(p, jwt->client_id.data, jwt->client_id.len);
    ngx_memcpy(p, jwt->scope.data, jwt->scope.len);

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/*
 * The whole verification of a token the gateway issued.  NGX_OK with the
 * partner and the key, NGX_DECLINED with why, NGX_ERROR.
 */

ngx_int_t
ngx_http_openbank_token_check(ngx_http_request_t *r, ngx_str_t *token,
    ngx_http_openbank_jwt_t *jwt, ngx_http_openbank_partner_t **partner,
    ngx_http_openbank_signing_key_t **key, const char **err)
{
    time_t                           now;
    ngx_int_t                        rc;
    ngx_uint_t                       i;
    ngx_http_openbank_main_conf_t   *obmcf;
    ngx_http_openbank_signing_key_t *k;

    *partner = NULL;
    *key = NULL;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    if (obmcf->signing_keys.nelts == 0 || obmcf->shm_zone == NULL
        || obmcf->issuer.len == 0)
    {
        *err = "this gateway issues no tokens";
        return NGX_DECLINED;
    }

    if (ngx_http_openbank_jwt_parse(r->pool, token, jwt, err) != NGX_OK) {
        if (*err && ngx_strcmp(*err, "out of memory") == 0) {
            return NGX_ERROR;
        }

        return NGX_DECLINED;
    }

    /* the kid names one of our keys; that key's type decides the alg */

    k = ngx_http_openbank_signing_key_find(obmcf, &jwt->kid);

    if (k == NULL) {
        *err = "the token's kid is not a key of this gateway";
        return NGX_DECLINED;
    }

    if (jwt->alg.len != k->alg.len
        || ngx_strncmp(jwt->alg.data, k->alg.data, k->alg.len) != 0)
    {
        *err = "the token's alg is not its key's";
        return NGX_DECLINED;
    }

    rc = ngx_http_openbank_jwt_verify(jwt, k->pkey, k->type, &k->alg,
                                      k->verify);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc != NGX_OK) {
        *err = "the token's signature is not valid";
        return NGX_DECLINED;
    }

    if (jwt->iss.len != obmcf->issuer.len
        || ngx_strncmp(jwt->iss.data, obmcf->issuer.data, jwt->iss.len) != 0)
    {
        *err = "the token's iss is not this gateway";
        return NGX_DECLINED;
    }

    for (i = 0; i < jwt->naud; i++) {
        if (jwt->aud[i].len == obmcf->issuer.len
            && ngx_strncmp(jwt->aud[i].data, obmcf->issuer.data,
                           obmcf->issuer.len) == 0)
        {
            break;
        }
    }

    if (i == jwt->naud) {
        *err = "the token's aud is not this gateway";
        return NGX_DECLINED;
    }

    now = ngx_time();

    if (!jwt->has_exp || jwt->exp + obmcf->clock_skew <= now) {
        *err = "the token has expired";
        return NGX_DECLINED;
    }

    if ((jwt->has_nbf && jwt->nbf > now + obmcf->clock_skew)
        || (jwt->has_iat && jwt->iat > now + obmcf->clock_skew))
    {
        *err = "the token is not valid yet";
        return NGX_DECLINED;
    }

    if (jwt->jti.len == 0 || jwt->jti.len > 255) {
        *err = "the token has no jti";
        return NGX_DECLINED;
    }

    *partner = ngx_http_openbank_partner_by_client_id(obmcf,
                                                      &jwt->client_id);
    if (*partner == NULL) {
        *partner = ngx_http_openbank_registry_client(r, &jwt->client_id);
    }

    if (*partner == NULL) {
        *err = "the token's client is unknown";
        return NGX_DECLINED;
    }

    if ((*partner)->registry
        && ngx_http_openbank_registry_live(r, *partner,
                                   ngx_http_openbank_registry_jti(&jwt->jti))
           != NGX_OK)
    {
        *err = "the credential the token was obtained with is deleted or "
               "expired";
        return NGX_DECLINED;
    }

    if (ngx_http_openbank_store_get(obmcf->shm_zone->data,
                                    NGX_HTTP_OPENBANK_TABLE_REVOKED,
                                    &jwt->jti, NULL, 0, NULL)
        != NGX_DECLINED)
    {
        *err = "the token is revoked";
        return NGX_DECLINED;
    }

    *key = k;

    return NGX_OK;
}


/* a token bound to a certificate is used on a connection with it only */

ngx_int_t
ngx_http_openbank_binding_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    ngx_int_t  rc;
    u_char     hash[NGX_HTTP_OPENBANK_HASH_LEN];

    if (!ctx->token_bound) {
        return NGX_DECLINED;
    }

    rc = ngx_http_openbank_client_cert(r, hash);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_FORBIDDEN,
            NGX_HTTP_OPENBANK_PROBLEM_CERTIFICATE_MISMATCH,
            "the token is bound to a client "
            "certificate and none was "
            "presented");
    }

    if (CRYPTO_memcmp(hash, ctx->token_cnf, NGX_HTTP_OPENBANK_HASH_LEN) != 0)
    {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_FORBIDDEN,
            NGX_HTTP_OPENBANK_PROBLEM_CERTIFICATE_MISMATCH,
            "the token is bound to another "
            "client certificate");
    }

    return NGX_DECLINED;
}


/*
 * Revokes a verified token: NGX_AGAIN, its record is on its way to the
 * journal and "done" answers the request once it is durable (the caller
 * holds it, r->main->count); NGX_DECLINED when the zone or the journal
 * cannot record it (the caller answers 503), NGX_ERROR.
 */

ngx_int_t
ngx_http_openbank_revoke(ngx_http_request_t *r, ngx_str_t *token,
    ngx_http_openbank_jwt_t *jwt, ngx_http_openbank_revoked_pt done)
{
    ngx_str_t                       key, rec;
    ngx_http_openbank_token_op_t    op;
    ngx_http_openbank_main_conf_t  *obmcf;
    u_char                          hash[NGX_HTTP_OPENBANK_HASH_LEN];
    u_char                          buf[NGX_HTTP_OPENBANK_JOURNAL_FRAME
                                        + sizeof(
                                            ngx_http_openbank_journal_head_t)
                                        + 255 + NGX_HTTP_OPENBANK_HASH_LEN];

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    ngx_http_openbank_sha256(hash, token->data, token->len);
    op.sync_seq = 0;
    key.data = hash;
    key.len = sizeof(hash);

    op.hash = &key;
    op.jwt = jwt;
    op.expire = (uint64_t) (jwt->exp + obmcf->clock_skew) * 1000;

    if (ngx_http_openbank_store_atomic(obmcf->shm_zone->data,
                                       ngx_http_openbank_revoke_atomic, &op)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "openbank: zone \"%V\" is full: cannot record a "
                      "revoked token", &obmcf->shm_zone->shm.name);
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "openbank: token %V of client \"%V\" revoked",
                  &jwt->jti, &jwt->client_id);

    /* for the other gateways: the jti, its expiry, the cached token's key */

    if (op.sync_seq) {
        rec.data = buf;
        rec.len = ngx_http_openbank_journal_record(buf,
                                          NGX_HTTP_OPENBANK_REVOKED_RECORD,
                                          op.expire, &jwt->jti, hash,
                                          sizeof(hash))
                  - buf;

        ngx_http_openbank_sync_queue(obmcf, op.sync_seq,
                                     NGX_HTTP_OPENBANK_SYNC_REVOKED,
                                     rec.data, rec.len, r->connection->log);
    }

    return ngx_http_openbank_revoked_save(r, jwt, done);
}


/* the jti is revoked and its cached token goes, under one lock */

static ngx_int_t
ngx_http_openbank_revoke_atomic(ngx_http_openbank_zone_t *zone, void *data)
{
    ngx_http_openbank_token_op_t  *op = data;

    if (ngx_http_openbank_store_add(zone, NGX_HTTP_OPENBANK_TABLE_REVOKED,
                                    &op->jwt->jti, NULL, 0, op->expire)
        == NGX_HTTP_OPENBANK_STORE_FULL)
    {
        return NGX_DECLINED;
    }

    (void) ngx_http_openbank_store_delete(zone, NGX_HTTP_OPENBANK_TABLE_TOKEN,
                                          op->hash);

    op->sync_seq = ngx_http_openbank_sync_reserve(zone);

    return NGX_OK;
}


/*
 * The revocation's record goes to the journal (written and synced by a
 * thread of the pool with the others of this pass of the event loop).
 */

static ngx_int_t
ngx_http_openbank_revoked_save(ngx_http_request_t *r,
    ngx_http_openbank_jwt_t *jwt, ngx_http_openbank_revoked_pt done)
{
    u_char                          *p;
    size_t                           len;
    uint64_t                         expire;
    ngx_http_openbank_journal_t       *j;
    ngx_http_openbank_main_conf_t     *obmcf;
    ngx_http_openbank_journal_wait_t  *w;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    j = &ngx_http_openbank_revoked_j;

    if (ngx_http_openbank_journal_init(j, (ngx_cycle_t *) ngx_cycle)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the lock file cannot be opened: logged, nothing to write to */

    if (ngx_http_openbank_journal_open_lock(j, r->connection->log)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    /* what is logged if it is not durable, then the record */

    len = sizeof("the revocation of  is not durable") + jwt->jti.len
          + NGX_HTTP_OPENBANK_JOURNAL_FRAME
          + sizeof(ngx_http_openbank_journal_head_t) + jwt->jti.len;

    w = ngx_http_openbank_journal_wait(r, len, done);
    if (w == NULL) {
        return NGX_ERROR;
    }

    w->lost = w->entry.record;
    w->entry.record = ngx_sprintf(w->lost, "the revocation of %V is not "
                                  "durable%Z", &jwt->jti);

    /* the record lasts the token's life and the clock skew */

    expire = (uint64_t) (jwt->exp + obmcf->clock_skew) * 1000;

    p = ngx_http_openbank_journal_record(w->entry.record,
                                         NGX_HTTP_OPENBANK_REVOKED_RECORD,
                                         expire, &jwt->jti, NULL, 0);

    ngx_http_openbank_journal_submit_wait(j, w, p);

    return NGX_AGAIN;
}


/*
 * For a compaction, inside ngx_http_openbank_store_atomic(): a record
 * for each revocation the zone holds (NULL "buf": their size).
 */

static ngx_int_t
ngx_http_openbank_revoked_dump_entry(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_journal_dump_t  *dp = data;

    if (dp->buf == NULL) {
        dp->size += NGX_HTTP_OPENBANK_JOURNAL_FRAME
                    + sizeof(ngx_http_openbank_journal_head_t) + sv->key.len;
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    dp->p = ngx_http_openbank_journal_record(dp->p,
                                             NGX_HTTP_OPENBANK_REVOKED_RECORD,
                                             sv->expire, &sv->key, NULL, 0);

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/*
 * At start (in the master, once per zone): every revocation still useful
 * goes back into the zone, from the journal and from the "revoked-tokens"
 * file an earlier version kept (one "<exp> <jti>" a line); the journal is
 * then rewritten from the zone, and the old file, now in it, removed.
 */

ngx_int_t
ngx_http_openbank_revoked_load(ngx_cycle_t *cycle,
    ngx_http_openbank_main_conf_t *obmcf)
{
    ngx_int_t                          rc, legacy;
    ngx_str_t                          name, lock;
    ngx_core_conf_t                   *ccf;
    ngx_http_openbank_journal_t       *j;
    ngx_http_openbank_journal_pt       handlers[
                                           NGX_HTTP_OPENBANK_REVOKED_RECORD
                                           + 1];
    ngx_http_openbank_revoked_load_t   ld;

    if (ngx_test_config || ngx_process == NGX_PROCESS_SIGNALLER) {
        return NGX_OK;
    }

    j = &ngx_http_openbank_revoked_j;

    /* NGX_DECLINED: a reload, the zone already holds the revocations */

    rc = ngx_http_openbank_journal_begin(j, cycle, "revocations");

    if (rc == NGX_DECLINED) {
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    ld.obmcf = obmcf;
    ld.now = ngx_http_openbank_now_ms();
    ld.loaded = 0;
    ld.full = 0;

    name.len = obmcf->state_path.len
               + sizeof("/" NGX_HTTP_OPENBANK_REVOKED_FILE) - 1;
    name.data = ngx_pnalloc(cycle->pool, name.len + sizeof(".lock"));
    if (name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(name.data, "%V/" NGX_HTTP_OPENBANK_REVOKED_FILE "%Z",
                &obmcf->state_path);

    legacy = ngx_http_openbank_revoked_legacy(cycle, obmcf, &name,
                                              &ld.loaded);
    if (legacy == NGX_ERROR) {
        return NGX_ERROR;
    }

    ngx_memzero(handlers, sizeof(handlers));
    handlers[NGX_HTTP_OPENBANK_REVOKED_RECORD] =
                                        ngx_http_openbank_revoked_replay;

    rc = ngx_http_openbank_journal_load(j, cycle, &obmcf->shm_zone->shm.name,
                                        "revocations", handlers,
                                        NGX_HTTP_OPENBANK_REVOKED_RECORD + 1,
                                        &ld, &ld.full);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (ld.loaded) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "openbank: %ui revoked tokens restored from \"%V\"",
                      ld.loaded, &j->name);
    }

    /* the journal rewritten from the zone: the old file is in it now */

    if (ngx_http_openbank_journal_compact(j, ccf->user, cycle->log) == NGX_OK
        && legacy == NGX_OK)
    {
        lock.data = name.data;
        lock.len = ngx_sprintf(name.data + name.len, ".lock%Z") - name.data
                   - 1;

        name.data[name.len] = '\0';

        if (ngx_delete_file(name.data) == NGX_FILE_ERROR) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                          ngx_delete_file_n " \"%V\" failed", &name);
        }

        name.data[name.len] = '.';

        (void) ngx_delete_file(lock.data);

        name.data[name.len] = '\0';

        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "openbank: \"%V\" is superseded by \"%V\"",
                      &name, &j->name);
    }

    /* the workers open the files under their own names */

    ngx_http_openbank_journal_reset(j);

    return NGX_OK;
}


/* the "revoked-tokens" file of an earlier version: NGX_DECLINED, none */

static ngx_int_t
ngx_http_openbank_revoked_legacy(ngx_cycle_t *cycle,
    ngx_http_openbank_main_conf_t *obmcf, ngx_str_t *name,
    ngx_uint_t *loaded)
{
    u_char     *p, *q, *sp, *last;
    time_t      now, exp;
    ngx_int_t   rc;
    ngx_str_t   text, jti;
    ngx_uint_t  line;

    rc = ngx_http_openbank_state_read(cycle->log, NGX_LOG_EMERG, cycle->pool,
                                      name, NGX_HTTP_OPENBANK_REVOKED_MAX,
                                      &text);
    if (rc != NGX_OK) {
        return rc;
    }

    now = ngx_time();
    last = text.data + text.len;
    line = 0;

    for (p = text.data; p < last; p = q + 1) {
        line++;

        q = ngx_strlchr(p, last, '\n');
        sp = q ? ngx_strlchr(p, q, ' ') : NULL;

        exp = sp ? ngx_atotm(p, sp - p) : NGX_ERROR;

        if (exp == NGX_ERROR || q - (sp + 1) == 0 || q - (sp + 1) > 255) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "openbank: \"%V\" is damaged at line %ui: the "
                          "revoked tokens cannot be trusted", name, line);
            return NGX_ERROR;
        }

        if (exp + obmcf->clock_skew <= now) {
            continue;
        }

        jti.data = sp + 1;
        jti.len = q - (sp + 1);

        rc = ngx_http_openbank_revoked_add(obmcf, &jti,
                                           (uint64_t) (exp + obmcf->clock_skew)
                                           * 1000);
        if (rc == NGX_ERROR) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "openbank: zone \"%V\" is too small for the "
                          "revoked tokens of \"%V\"",
                          &obmcf->shm_zone->shm.name, name);
            return NGX_ERROR;
        }

        if (rc == NGX_OK) {
            (*loaded)++;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_revoked_replay(void *data, u_char *payload, size_t len)
{
    ngx_http_openbank_revoked_load_t *ld = data;

    ngx_int_t                          rc;
    ngx_str_t                          jti;
    ngx_http_openbank_journal_head_t   head;

    ngx_memcpy(&head, payload, sizeof(head));

    jti.data = payload + sizeof(head);
    jti.len = head.key_len;

    if (jti.len > 255 || jti.data[0] == '\0' || head.expire <= ld->now) {
        return NGX_OK;
    }

    rc = ngx_http_openbank_revoked_add(ld->obmcf, &jti, head.expire);

    if (rc == NGX_ERROR) {
        ld->full++;

    } else if (rc == NGX_OK) {
        ld->loaded++;
    }

    return NGX_OK;
}


/* NGX_OK: added; NGX_DECLINED: already there; NGX_ERROR: no room */

static ngx_int_t
ngx_http_openbank_revoked_add(ngx_http_openbank_main_conf_t *obmcf,
    ngx_str_t *jti, uint64_t expire)
{
    ngx_int_t  rc;

    rc = ngx_http_openbank_store_add(obmcf->shm_zone->data,
                                     NGX_HTTP_OPENBANK_TABLE_REVOKED, jti,
                                     NULL, 0, expire);

    return (rc == NGX_HTTP_OPENBANK_STORE_FULL) ? NGX_ERROR : rc;
}


/*
 * SHA-256 of the DER of the connection's client certificate: NGX_OK,
 * NGX_DECLINED when there is none.  The TLS handshake proved that the
 * client holds its private key; partners are known by the fingerprint,
 * not by a CA.
 */

ngx_int_t
ngx_http_openbank_client_cert(ngx_http_request_t *r, u_char *hash)
{
#if (NGX_HTTP_SSL)
    int            len;
    X509          *cert;
    u_char         buf[8192], *p;

    if (r->connection->ssl == NULL) {
        return NGX_DECLINED;
    }

    cert = SSL_get_peer_certificate(r->connection->ssl->connection);
    if (cert == NULL) {
        return NGX_DECLINED;
    }

    len = i2d_X509(cert, NULL);

    if (len <= 0 || len > (int) sizeof(buf)) {
        X509_free(cert);
        ERR_clear_error();
        return NGX_DECLINED;
    }

    p = buf;
    i2d_X509(cert, &p);
    X509_free(cert);

    ngx_http_openbank_sha256(hash, buf, len);

    return NGX_OK;
#else
    return NGX_DECLINED;
#endif
}


/*
 * Another gateway's revocations (docs/cluster.md, "Changes on every
 * gateway"): each jti into the zone with its expiry through the replay's
 * handler, the cached token it names gone, and the records to this
 * gateway's journal.  NGX_DECLINED: malformed, nothing applied.
 */

static ngx_int_t
ngx_http_openbank_revoked_sync_one(void *data, u_char *payload, size_t len)
{
    ngx_http_openbank_revoked_load_t *ld = data;

    ngx_str_t                          hash;
    ngx_http_openbank_journal_head_t   head;

    ngx_memcpy(&head, payload, sizeof(head));

    hash.data = payload + sizeof(head) + head.key_len;
    hash.len = len - sizeof(head) - head.key_len;

    if (ld->obmcf == NULL) {
        return NGX_OK;
    }

    (void) ngx_http_openbank_revoked_replay(ld, payload, len);

    if (hash.len == NGX_HTTP_OPENBANK_HASH_LEN) {
        (void) ngx_http_openbank_store_delete(ld->obmcf->shm_zone->data,
                                              NGX_HTTP_OPENBANK_TABLE_TOKEN,
                                              &hash);
    }

    return NGX_OK;
}


static void
ngx_http_openbank_revoked_sync_written(ngx_http_openbank_journal_entry_t *e,
    ngx_int_t rc)
{
    ngx_free(e);
}


ngx_int_t
ngx_http_openbank_revoked_sync(ngx_cycle_t *cycle, u_char *records,
    size_t len, ngx_uint_t snapshot)
{
    ngx_int_t                           rc;
    ngx_http_openbank_journal_t        *j;
    ngx_http_openbank_main_conf_t      *obmcf;
    ngx_http_openbank_revoked_load_t    ld;
    ngx_http_openbank_journal_entry_t  *e;
    ngx_http_openbank_journal_pt        handlers[
                                            NGX_HTTP_OPENBANK_REVOKED_RECORD
                                            + 1];

    obmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                                ngx_http_openbank_module);

    if (obmcf == NULL || obmcf->shm_zone == NULL) {
        return NGX_OK;
    }

    ngx_memzero(handlers, sizeof(handlers));
    handlers[NGX_HTTP_OPENBANK_REVOKED_RECORD] =
                                        ngx_http_openbank_revoked_sync_one;

    /* checked whole first (a NULL obmcf: nothing applied), then applied */

    ngx_memzero(&ld, sizeof(ld));
    ld.now = ngx_http_openbank_now_ms();

    rc = ngx_http_openbank_journal_parse(records, len, handlers,
                                         NGX_HTTP_OPENBANK_REVOKED_RECORD + 1,
                                         &ld);
    if (rc != NGX_OK) {
        return rc;
    }

    ld.obmcf = obmcf;

    (void) ngx_http_openbank_journal_parse(records, len, handlers,
                                           NGX_HTTP_OPENBANK_REVOKED_RECORD
                                           + 1, &ld);

    if (ld.full) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "openbank: zone \"%V\" is full: a revocation of the "
                      "cluster is not applied", &obmcf->shm_zone->shm.name);
    }

    j = &ngx_http_openbank_revoked_j;

    if (ld.loaded == 0 || obmcf->state_path.len == 0
        || ngx_http_openbank_journal_init(j, cycle) != NGX_OK
        || ngx_http_openbank_journal_open_lock(j, cycle->log) != NGX_OK)
    {
        return NGX_OK;
    }

    e = ngx_alloc(sizeof(ngx_http_openbank_journal_entry_t) + len,
                  cycle->log);
    if (e == NULL) {
        return NGX_ERROR;
    }

    e->record = (u_char *) &e[1];
    e->len = len;
    e->handler = ngx_http_openbank_revoked_sync_written;
    ngx_memcpy(e->record, records, len);

    ngx_http_openbank_journal_submit(j, e);

    return NGX_OK;
}
