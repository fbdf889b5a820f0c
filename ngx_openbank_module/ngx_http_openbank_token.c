
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
 * so that no worker accepts it from the next request on; the revoked
 * jtis are also kept in a file under openbank_state, replaced
 * atomically, and read back at start.
 */


#include <ngx_http_openbank.h>


#define NGX_HTTP_OPENBANK_SCOPE_CACHE_MAX  1024
#define NGX_HTTP_OPENBANK_REVOKED_FILE     "revoked-tokens"
#define NGX_HTTP_OPENBANK_REVOKED_MAX      (16 * 1024 * 1024)


/* the value of a verified token in the zone; client_id and scope follow */

typedef struct {
    int64_t                       exp;
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
    ngx_uint_t                        revoked;
} ngx_http_openbank_token_op_t;


/* the revoked tokens' file being written */

typedef struct {
    ngx_pool_t                       *pool;
    time_t                            skew;
    size_t                            size;
    u_char                           *out;
    u_char                           *o;
} ngx_http_openbank_revoked_out_t;


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
static ngx_int_t ngx_http_openbank_revoked_atomic(
    ngx_http_openbank_zone_t *zone, void *data);
static ngx_int_t ngx_http_openbank_revoked_line(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_revoked_save(ngx_http_request_t *r,
    ngx_http_openbank_jwt_t *jwt);
static ngx_int_t ngx_http_openbank_read_state(ngx_log_t *log, ngx_pool_t *pool,
    ngx_str_t *name, ngx_str_t *out);


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
            return ngx_http_openbank_bearer_invalid(r, ctx, "the token's "
                                                    "client is unknown");
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


static ngx_int_t
ngx_http_openbank_bearer_invalid(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, const char *why)
{
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "openbank: access token refused: %s", why);

    return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                    "invalid_token", "%s", why);
}


/* the token's scopes that its partner still holds */

static ngx_int_t
ngx_http_openbank_token_scopes(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, u_char *scope, size_t len)
{
    u_char       *p, *q, *last;
    ngx_str_t     one, *s;
    ngx_array_t  *scopes;

    scopes = ngx_array_create(r->pool, 4, sizeof(ngx_str_t));
    if (scopes == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = scope + len;

    for (p = scope; p < last; p = q + 1) {
        q = ngx_strlchr(p, last, ' ');
        if (q == NULL) {
            q = last;
        }

        one.data = p;
        one.len = q - p;

        if (one.len == 0
            || !ngx_http_openbank_partner_has_scope(ctx->partner, &one))
        {
            continue;
        }

        s = ngx_array_push(scopes);
        if (s == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* the cached bytes live on the stack of the caller: copy */

        s->data = ngx_pnalloc(r->pool, one.len);
        if (s->data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(s->data, one.data, one.len);
        s->len = one.len;
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
        *err = "the token's client is unknown";
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
                                        "certificate_mismatch",
                                        "the token is bound to a client "
                                        "certificate and none was "
                                        "presented");
    }

    if (CRYPTO_memcmp(hash, ctx->token_cnf, NGX_HTTP_OPENBANK_HASH_LEN) != 0)
    {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_FORBIDDEN,
                                        "certificate_mismatch",
                                        "the token is bound to another "
                                        "client certificate");
    }

    return NGX_DECLINED;
}


/*
 * Revokes a verified token: NGX_OK, NGX_DECLINED when the zone or the
 * state file cannot record it (the caller answers 503), NGX_ERROR.
 */

ngx_int_t
ngx_http_openbank_revoke(ngx_http_request_t *r, ngx_str_t *token,
    ngx_http_openbank_jwt_t *jwt)
{
    ngx_str_t                       key;
    ngx_http_openbank_token_op_t    op;
    ngx_http_openbank_main_conf_t  *obmcf;
    u_char                          hash[NGX_HTTP_OPENBANK_HASH_LEN];

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    ngx_http_openbank_sha256(hash, token->data, token->len);
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

    return ngx_http_openbank_revoked_save(r, jwt);
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

    return NGX_OK;
}


/*
 * The file of revoked tokens: one "<exp> <jti>" a line.  Workers take
 * turns with a lock on a file beside it, write every revocation the zone
 * holds (those restored at start and every one since, theirs included:
 * a file removed under the gateway is whole again at the next one), and
 * replace the file atomically.
 */

static ngx_int_t
ngx_http_openbank_revoked_save(ngx_http_request_t *r,
    ngx_http_openbank_jwt_t *jwt)
{
    u_char                          *out, *o;
    ngx_fd_t                         lock;
    ngx_int_t                        rc;
    ngx_str_t                        name, lock_name;
    ngx_http_openbank_main_conf_t   *obmcf;
    ngx_http_openbank_revoked_out_t  ro;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    name.len = obmcf->state_path.len
               + sizeof("/" NGX_HTTP_OPENBANK_REVOKED_FILE) - 1;
    name.data = ngx_pnalloc(r->pool, name.len + 1);
    lock_name.data = ngx_pnalloc(r->pool, name.len + sizeof(".lock"));

    if (name.data == NULL || lock_name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(name.data, "%V/" NGX_HTTP_OPENBANK_REVOKED_FILE "%Z",
                &obmcf->state_path);
    ngx_sprintf(lock_name.data, "%V.lock%Z", &name);

    lock = ngx_open_file(lock_name.data, NGX_FILE_RDWR,
                         NGX_FILE_CREATE_OR_OPEN, NGX_FILE_DEFAULT_ACCESS);

    if (lock == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_errno,
                      ngx_open_file_n " \"%s\" failed", lock_name.data);
        return NGX_DECLINED;
    }

    if (ngx_lock_fd(lock) == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_errno,
                      ngx_lock_fd_n " \"%s\" failed", lock_name.data);
        (void) ngx_close_file(lock);
        return NGX_DECLINED;
    }

    ro.pool = r->pool;
    ro.skew = obmcf->clock_skew;

    if (ngx_http_openbank_store_atomic(obmcf->shm_zone->data,
                                       ngx_http_openbank_revoked_atomic, &ro)
        != NGX_OK)
    {
        rc = NGX_ERROR;
        goto done;
    }

    out = ro.out;
    o = ro.o;

    rc = ngx_http_openbank_state_write(r->connection->log, &name, out,
                                       o - out);

done:

    (void) ngx_unlock_fd(lock);
    (void) ngx_close_file(lock);

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "openbank: the revocation of %V is not durable",
                      &jwt->jti);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* every revocation the zone holds, as the file's lines, under one lock */

static ngx_int_t
ngx_http_openbank_revoked_atomic(ngx_http_openbank_zone_t *zone, void *data)
{
    ngx_http_openbank_revoked_out_t  *ro = data;

    ro->size = 0;
    ro->out = NULL;

    (void) ngx_http_openbank_store_walk(zone, NGX_HTTP_OPENBANK_TABLE_REVOKED,
                                        ngx_http_openbank_revoked_line, ro);

    ro->out = ngx_pnalloc(ro->pool, ro->size + 1);
    if (ro->out == NULL) {
        return NGX_ERROR;
    }

    ro->o = ro->out;

    (void) ngx_http_openbank_store_walk(zone, NGX_HTTP_OPENBANK_TABLE_REVOKED,
                                        ngx_http_openbank_revoked_line, ro);

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_revoked_line(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_revoked_out_t  *ro = data;

    time_t  exp;

    if (ro->out == NULL) {
        ro->size += NGX_TIME_T_LEN + 2 + sv->key.len;
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    /* the record lasts the token's life and the clock skew */

    exp = (time_t) (sv->expire / 1000) - ro->skew;

    ro->o = ngx_sprintf(ro->o, "%T %V\n", exp, &sv->key);

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/* at start: every revocation still useful goes back into the zone */

ngx_int_t
ngx_http_openbank_revoked_load(ngx_cycle_t *cycle,
    ngx_http_openbank_main_conf_t *obmcf)
{
    u_char                      *p, *q, *sp, *last;
    time_t                       now, exp;
    ngx_int_t                    rc;
    ngx_str_t                    name, text, jti;
    ngx_uint_t                   line, loaded;
    ngx_http_openbank_zone_t    *zone;

    name.len = obmcf->state_path.len
               + sizeof("/" NGX_HTTP_OPENBANK_REVOKED_FILE) - 1;
    name.data = ngx_pnalloc(cycle->pool, name.len + 1);
    if (name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(name.data, "%V/" NGX_HTTP_OPENBANK_REVOKED_FILE "%Z",
                &obmcf->state_path);

    rc = ngx_http_openbank_read_state(cycle->log, cycle->pool, &name, &text);

    if (rc != NGX_OK) {
        return rc;
    }

    zone = obmcf->shm_zone->data;
    now = ngx_time();
    last = text.data + text.len;
    line = 0;
    loaded = 0;

    for (p = text.data; p < last; p = q + 1) {
        line++;

        q = ngx_strlchr(p, last, '\n');
        sp = q ? ngx_strlchr(p, q, ' ') : NULL;

        exp = sp ? ngx_atotm(p, sp - p) : NGX_ERROR;

        if (exp == NGX_ERROR || q - (sp + 1) == 0 || q - (sp + 1) > 255) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "openbank: \"%V\" is damaged at line %ui: the "
                          "revoked tokens cannot be trusted", &name, line);
            return NGX_ERROR;
        }

        if (exp + obmcf->clock_skew <= now) {
            continue;
        }

        jti.data = sp + 1;
        jti.len = q - (sp + 1);

        rc = ngx_http_openbank_store_add(zone, NGX_HTTP_OPENBANK_TABLE_REVOKED,
                                         &jti, NULL, 0,
                                         (uint64_t) (exp + obmcf->clock_skew)
                                         * 1000);
        if (rc == NGX_OK) {
            loaded++;
        }

        if (rc == NGX_HTTP_OPENBANK_STORE_FULL) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "openbank: zone \"%V\" is too small for the "
                          "revoked tokens of \"%V\"",
                          &obmcf->shm_zone->shm.name, &name);
            return NGX_ERROR;
        }
    }

    if (loaded) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "openbank: %ui revoked tokens restored from \"%V\"",
                      loaded, &name);
    }

    return NGX_OK;
}


/* a whole state file; a missing one is empty */

static ngx_int_t
ngx_http_openbank_read_state(ngx_log_t *log, ngx_pool_t *pool,
    ngx_str_t *name, ngx_str_t *out)
{
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_file_info_t  fi;

    out->len = 0;
    out->data = (u_char *) "";

    fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        if (ngx_errno == NGX_ENOENT) {
            return NGX_OK;
        }

        ngx_log_error(NGX_LOG_EMERG, log, ngx_errno,
                      ngx_open_file_n " \"%V\" failed", name);
        return NGX_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > NGX_HTTP_OPENBANK_REVOKED_MAX)
    {
        ngx_log_error(NGX_LOG_EMERG, log, ngx_errno,
                      "\"%V\" cannot be read or is too large", name);
        (void) ngx_close_file(fd);
        return NGX_ERROR;
    }

    out->len = ngx_file_size(&fi);
    out->data = ngx_pnalloc(pool, out->len + 1);

    if (out->data == NULL) {
        (void) ngx_close_file(fd);
        return NGX_ERROR;
    }

    n = ngx_read_fd(fd, out->data, out->len);

    (void) ngx_close_file(fd);

    if (n != (ssize_t) out->len) {
        ngx_log_error(NGX_LOG_EMERG, log, ngx_errno,
                      ngx_read_fd_n " \"%V\" failed", name);
        return NGX_ERROR;
    }

    return NGX_OK;
}
