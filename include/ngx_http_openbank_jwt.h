
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * JOSE: JWTs (ngx_http_openbank_jwt.c), partners' JWKS
 * (ngx_http_openbank_jwks.c) and the gateway's own signing keys
 * (ngx_http_openbank_keys.c).
 */


#ifndef _NGX_HTTP_OPENBANK_JWT_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_JWT_H_INCLUDED_


#include <ngx_http_openbank.h>
#include <openssl/evp.h>


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


typedef struct ngx_http_openbank_jwks_s {
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
    EVP_MD_CTX                   *sign;        /* Ed25519: ready to sign
                                                  (RFC 9421), else NULL */
    u_char                        id[NGX_HTTP_OPENBANK_HASH_LEN];
                                               /* SHA-256 of the issuer and
                                                  the public key */
} ngx_http_openbank_signing_key_t;


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


/* ngx_http_openbank_jwks.c */
ngx_http_openbank_jwks_t *ngx_http_openbank_jwks_load(ngx_conf_t *cf,
    ngx_str_t *file);
void ngx_http_openbank_jwks_free(void *data);
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


#endif /* _NGX_HTTP_OPENBANK_JWT_H_INCLUDED_ */
