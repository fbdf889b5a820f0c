
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Compact JWS (RFC 7515) as JWTs use it (RFC 7519): parsing of untrusted
 * tokens into their header and claims, verification with a ready key
 * whose type pins the algorithm, and signing of the gateway's tokens.
 * ES256, PS256, RS256 and EdDSA go straight through OpenSSL EVP: keys are
 * never parsed here, they were built at load time.
 */


#include <ngx_http_openbank.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <yajl/yajl_tree.h>


#define NGX_HTTP_OPENBANK_JWT_PART_MAX  4096    /* decoded header, claims */
#define NGX_HTTP_OPENBANK_JWT_SIG_MAX   1024    /* RSA-8192: 1024 bytes */


static ngx_int_t ngx_http_openbank_jwt_json(ngx_pool_t *pool, ngx_str_t *b64,
    yajl_val *root, const char **err);
static ngx_int_t ngx_http_openbank_jwt_string(ngx_pool_t *pool, yajl_val obj,
    const char *name, ngx_str_t *out, const char **err);
static ngx_int_t ngx_http_openbank_jwt_number(yajl_val obj, const char *name,
    int64_t *out, const char **err);
static ngx_int_t ngx_http_openbank_jwt_unique(yajl_val obj,
    const char **err);
static EVP_MD_CTX *ngx_http_openbank_jwt_md_ctx(void);


static EVP_MD      *ngx_http_openbank_jwt_sha256;
static EVP_MD_CTX  *ngx_http_openbank_jwt_mdctx;


/*
 * Splits and decodes a compact JWS, checks that the header and the claims
 * are JSON objects without duplicate members, and picks the members the
 * gateway uses, copied into the pool.  Nothing is trusted yet.
 */

ngx_int_t
ngx_http_openbank_jwt_parse(ngx_pool_t *pool, ngx_str_t *token,
    ngx_http_openbank_jwt_t *jwt, const char **err)
{
    u_char      *p, *dot1, *dot2, *last;
    size_t       i;
    yajl_val     header, claims, v, cnf;
    ngx_str_t    part, sig;
    const char  *path[2];

    ngx_memzero(jwt, sizeof(ngx_http_openbank_jwt_t));

    *err = "is not a JWT";

    if (token->len == 0 || token->len > NGX_HTTP_OPENBANK_TOKEN_MAX) {
        *err = "is empty or too long";
        return NGX_ERROR;
    }

    last = token->data + token->len;

    dot1 = ngx_strlchr(token->data, last, '.');
    if (dot1 == NULL) {
        return NGX_ERROR;
    }

    dot2 = ngx_strlchr(dot1 + 1, last, '.');
    if (dot2 == NULL || ngx_strlchr(dot2 + 1, last, '.') != NULL) {
        *err = "is not a JWS in compact form (three parts)";
        return NGX_ERROR;
    }

    jwt->signing_input.data = token->data;
    jwt->signing_input.len = dot2 - token->data;

    /* the signature */

    sig.data = dot2 + 1;
    sig.len = last - sig.data;

    if (sig.len == 0) {
        *err = "has no signature";
        return NGX_ERROR;
    }

    if (ngx_base64_decoded_length(sig.len) > NGX_HTTP_OPENBANK_JWT_SIG_MAX) {
        *err = "has a signature that is too long";
        return NGX_ERROR;
    }

    jwt->signature.data = ngx_pnalloc(pool,
                                      ngx_base64_decoded_length(sig.len));
    if (jwt->signature.data == NULL) {
        *err = "out of memory";
        return NGX_ERROR;
    }

    if (ngx_http_openbank_decode_base64url(&jwt->signature, &sig) != NGX_OK) {
        *err = "has a signature that is not base64url";
        return NGX_ERROR;
    }

    /* the header */

    part.data = token->data;
    part.len = dot1 - token->data;

    if (ngx_http_openbank_jwt_json(pool, &part, &header, err) != NGX_OK) {
        *err = (*err) ? *err : "has a header that is not a JSON object";
        return NGX_ERROR;
    }

    if (ngx_http_openbank_jwt_unique(header, err) != NGX_OK
        || ngx_http_openbank_jwt_string(pool, header, "alg", &jwt->alg, err)
           != NGX_OK
        || ngx_http_openbank_jwt_string(pool, header, "kid", &jwt->kid, err)
           == NGX_ERROR
        || ngx_http_openbank_jwt_string(pool, header, "typ", &jwt->typ, err)
           == NGX_ERROR)
    {
        yajl_tree_free(header);
        return NGX_ERROR;
    }

    path[0] = "crit";
    path[1] = NULL;

    if (yajl_tree_get(header, path, yajl_t_any) != NULL) {
        yajl_tree_free(header);
        *err = "has a \"crit\" header the gateway does not understand";
        return NGX_ERROR;
    }

    yajl_tree_free(header);

    /* the claims */

    part.data = dot1 + 1;
    part.len = dot2 - part.data;

    if (ngx_http_openbank_jwt_json(pool, &part, &claims, err) != NGX_OK) {
        *err = (*err) ? *err : "has claims that are not a JSON object";
        return NGX_ERROR;
    }

    if (ngx_http_openbank_jwt_unique(claims, err) != NGX_OK
        || ngx_http_openbank_jwt_string(pool, claims, "iss", &jwt->iss, err)
           == NGX_ERROR
        || ngx_http_openbank_jwt_string(pool, claims, "sub", &jwt->sub, err)
           == NGX_ERROR
        || ngx_http_openbank_jwt_string(pool, claims, "client_id",
                                        &jwt->client_id, err)
           == NGX_ERROR
        || ngx_http_openbank_jwt_string(pool, claims, "jti", &jwt->jti, err)
           == NGX_ERROR
        || ngx_http_openbank_jwt_string(pool, claims, "scope", &jwt->scope,
                                        err)
           == NGX_ERROR
        || ngx_http_openbank_jwt_number(claims, "exp", &jwt->exp, err)
           == NGX_ERROR
        || ngx_http_openbank_jwt_number(claims, "nbf", &jwt->nbf, err)
           == NGX_ERROR
        || ngx_http_openbank_jwt_number(claims, "iat", &jwt->iat, err)
           == NGX_ERROR)
    {
        yajl_tree_free(claims);
        return NGX_ERROR;
    }

    jwt->has_exp = (jwt->exp != NGX_HTTP_OPENBANK_JWT_NO_TIME);
    jwt->has_nbf = (jwt->nbf != NGX_HTTP_OPENBANK_JWT_NO_TIME);
    jwt->has_iat = (jwt->iat != NGX_HTTP_OPENBANK_JWT_NO_TIME);

    /* "aud": a string or an array of strings (RFC 7519 4.1.3) */

    path[0] = "aud";
    v = yajl_tree_get(claims, path, yajl_t_any);

    if (v && YAJL_IS_STRING(v)) {
        if (ngx_http_openbank_jwt_string(pool, claims, "aud", &jwt->aud[0],
                                         err)
            != NGX_OK)
        {
            yajl_tree_free(claims);
            return NGX_ERROR;
        }

        jwt->naud = 1;

    } else if (v && YAJL_IS_ARRAY(v)
               && YAJL_GET_ARRAY(v)->len <= NGX_HTTP_OPENBANK_JWT_AUD_MAX)
    {
        for (i = 0; i < YAJL_GET_ARRAY(v)->len; i++) {
            cnf = YAJL_GET_ARRAY(v)->values[i];

            if (!YAJL_IS_STRING(cnf)) {
                yajl_tree_free(claims);
                *err = "has an \"aud\" that is not a string";
                return NGX_ERROR;
            }

            p = (u_char *) YAJL_GET_STRING(cnf);
            jwt->aud[i].len = ngx_strlen(p);
            jwt->aud[i].data = ngx_pnalloc(pool, jwt->aud[i].len + 1);

            if (jwt->aud[i].data == NULL) {
                yajl_tree_free(claims);
                *err = "out of memory";
                return NGX_ERROR;
            }

            ngx_memcpy(jwt->aud[i].data, p, jwt->aud[i].len + 1);
        }

        jwt->naud = YAJL_GET_ARRAY(v)->len;

    } else if (v) {
        yajl_tree_free(claims);
        *err = "has an \"aud\" that is neither a string nor a short array";
        return NGX_ERROR;
    }

    /* "cnf": {"x5t#S256": "..."} (RFC 8705 3.1) */

    path[0] = "cnf";
    cnf = yajl_tree_get(claims, path, yajl_t_any);

    if (cnf) {
        if (!YAJL_IS_OBJECT(cnf)
            || ngx_http_openbank_jwt_unique(cnf, err) != NGX_OK
            || ngx_http_openbank_jwt_string(pool, cnf, "x5t#S256",
                                            &jwt->x5t, err)
               != NGX_OK)
        {
            yajl_tree_free(claims);
            *err = "has a \"cnf\" without a string \"x5t#S256\"";
            return NGX_ERROR;
        }

        jwt->has_cnf = 1;
    }

    yajl_tree_free(claims);

    *err = NULL;

    return NGX_OK;
}


/*
 * Verifies the signature with "pkey" for "alg", which the caller has
 * already pinned to the key's type.
 */

ngx_int_t
ngx_http_openbank_jwt_verify(ngx_http_openbank_jwt_t *jwt, EVP_PKEY *pkey,
    ngx_uint_t type, ngx_str_t *alg, EVP_PKEY_CTX *ready)
{
    int            rc, len;
    u_char        *sig, der[80], *p, digest[EVP_MAX_MD_SIZE];
    unsigned int   digest_len;
    size_t         sig_len;
    BIGNUM        *r, *s;
    ECDSA_SIG     *ecsig;
    EVP_MD_CTX    *mdctx;
    EVP_PKEY_CTX  *pctx;
    const EVP_MD  *md;

    mdctx = ngx_http_openbank_jwt_md_ctx();
    if (mdctx == NULL) {
        return NGX_ERROR;
    }

    md = ngx_http_openbank_jwt_sha256;
    sig = jwt->signature.data;
    sig_len = jwt->signature.len;

    if (alg->len == 5 && ngx_strncmp(alg->data, "ES256", 5) == 0) {

        if (type != NGX_HTTP_OPENBANK_KEY_EC_P256 || sig_len != 64) {
            return NGX_DECLINED;
        }

        /* JWS carries r || s (RFC 7518 3.4); OpenSSL wants DER */

        ecsig = ECDSA_SIG_new();
        r = BN_bin2bn(sig, 32, NULL);
        s = BN_bin2bn(sig + 32, 32, NULL);

        if (ecsig == NULL || r == NULL || s == NULL
            || ECDSA_SIG_set0(ecsig, r, s) != 1)
        {
            ECDSA_SIG_free(ecsig);
            BN_free(r);
            BN_free(s);
            return NGX_ERROR;
        }

        p = der;
        len = i2d_ECDSA_SIG(ecsig, &p);
        ECDSA_SIG_free(ecsig);

        if (len <= 0 || len > (int) sizeof(der)) {
            return NGX_ERROR;
        }

        sig = der;
        sig_len = len;

    } else if (alg->len == 5
               && (ngx_strncmp(alg->data, "PS256", 5) == 0
                   || ngx_strncmp(alg->data, "RS256", 5) == 0))
    {
        if (type != NGX_HTTP_OPENBANK_KEY_RSA) {
            return NGX_DECLINED;
        }

    } else if (alg->len == 5 && ngx_strncmp(alg->data, "EdDSA", 5) == 0) {

        if (type != NGX_HTTP_OPENBANK_KEY_ED25519 || sig_len != 64) {
            return NGX_DECLINED;
        }

        md = NULL;

    } else {
        return NGX_DECLINED;
    }

    /*
     * A key context initialized once verifies a digest at the cost of the
     * RSA or ECDSA operation alone: an initialization per call would make
     * OpenSSL 3 fetch the algorithm and build a context every time.
     */

    if (ready) {
        if (EVP_DigestInit_ex2(mdctx, md, NULL) != 1
            || EVP_DigestUpdate(mdctx, jwt->signing_input.data,
                                jwt->signing_input.len)
               != 1
            || EVP_DigestFinal_ex(mdctx, digest, &digest_len) != 1)
        {
            ERR_clear_error();
            return NGX_ERROR;
        }

        rc = EVP_PKEY_verify(ready, sig, sig_len, digest, digest_len);

        ERR_clear_error();

        return (rc == 1) ? NGX_OK : NGX_DECLINED;
    }

    pctx = NULL;

    if (EVP_DigestVerifyInit(mdctx, &pctx, md, NULL, pkey) != 1) {
        ERR_clear_error();
        return NGX_ERROR;
    }

    if (alg->data[0] == 'P'
        && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1
            || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST)
               != 1))
    {
        ERR_clear_error();
        return NGX_ERROR;
    }

    rc = EVP_DigestVerify(mdctx, sig, sig_len, jwt->signing_input.data,
                          jwt->signing_input.len);

    ERR_clear_error();

    return (rc == 1) ? NGX_OK : NGX_DECLINED;
}


/*
 * A verification context for a key of the gateway, initialized once (PS256
 * or ES256 over a SHA-256 digest; Ed25519 signs the message itself).
 */

EVP_PKEY_CTX *
ngx_http_openbank_jwt_verifier(EVP_PKEY *pkey, ngx_uint_t type)
{
    EVP_PKEY_CTX  *pctx;

    if (type != NGX_HTTP_OPENBANK_KEY_RSA
        && type != NGX_HTTP_OPENBANK_KEY_EC_P256)
    {
        return NULL;
    }

    if (ngx_http_openbank_jwt_md_ctx() == NULL) {
        return NULL;
    }

    pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (pctx == NULL) {
        ERR_clear_error();
        return NULL;
    }

    if (EVP_PKEY_verify_init(pctx) != 1
        || EVP_PKEY_CTX_set_signature_md(pctx, ngx_http_openbank_jwt_sha256)
           != 1
        || (type == NGX_HTTP_OPENBANK_KEY_RSA
            && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING)
                != 1
                || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
                                                    RSA_PSS_SALTLEN_DIGEST)
                   != 1)))
    {
        EVP_PKEY_CTX_free(pctx);
        ERR_clear_error();
        return NULL;
    }

    return pctx;
}


/*
 * Signs "claims" (a JSON object) with the key: out is the compact JWS,
 * allocated in the pool.
 */

ngx_int_t
ngx_http_openbank_jwt_sign(ngx_pool_t *pool,
    ngx_http_openbank_signing_key_t *key, ngx_str_t *claims, ngx_str_t *out)
{
    u_char        *p, *input;
    u_char         sig[1024], raw[64];
    size_t         sig_len, len, input_len;
    ngx_str_t      src, dst;
    ECDSA_SIG     *ecsig;
    EVP_MD_CTX    *mdctx;
    EVP_PKEY_CTX  *pctx;
    const BIGNUM  *r, *s;
    const u_char  *q;

    mdctx = ngx_http_openbank_jwt_md_ctx();
    if (mdctx == NULL) {
        return NGX_ERROR;
    }

    len = sizeof("{\"alg\":\"\",\"typ\":\"at+jwt\",\"kid\":\"\"}") - 1
          + key->alg.len + key->kid.len;

    input_len = ngx_base64_encoded_length(len) + 1
                + ngx_base64_encoded_length(claims->len);

    out->data = ngx_pnalloc(pool, input_len + 1
                            + ngx_base64_encoded_length(sizeof(sig)));
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    input = ngx_pnalloc(pool, len);
    if (input == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(input, "{\"alg\":\"%V\",\"typ\":\"at+jwt\",\"kid\":\"%V\"}",
                    &key->alg, &key->kid);

    src.data = input;
    src.len = p - input;
    dst.data = out->data;
    ngx_encode_base64url(&dst, &src);

    p = out->data + dst.len;
    *p++ = '.';

    dst.data = p;
    ngx_encode_base64url(&dst, claims);
    p += dst.len;

    input_len = p - out->data;

    pctx = NULL;

    if (EVP_DigestSignInit(mdctx, &pctx,
                           key->type == NGX_HTTP_OPENBANK_KEY_ED25519
                           ? NULL : ngx_http_openbank_jwt_sha256,
                           NULL, key->pkey)
        != 1)
    {
        goto failed;
    }

    if (key->type == NGX_HTTP_OPENBANK_KEY_RSA
        && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1
            || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST)
               != 1))
    {
        goto failed;
    }

    sig_len = sizeof(sig);

    if (EVP_DigestSign(mdctx, sig, &sig_len, out->data, input_len) != 1) {
        goto failed;
    }

    src.data = sig;
    src.len = sig_len;

    if (key->type == NGX_HTTP_OPENBANK_KEY_EC_P256) {
        q = sig;
        ecsig = d2i_ECDSA_SIG(NULL, &q, sig_len);
        if (ecsig == NULL) {
            goto failed;
        }

        ECDSA_SIG_get0(ecsig, &r, &s);

        if (BN_bn2binpad(r, raw, 32) != 32
            || BN_bn2binpad(s, raw + 32, 32) != 32)
        {
            ECDSA_SIG_free(ecsig);
            goto failed;
        }

        ECDSA_SIG_free(ecsig);

        src.data = raw;
        src.len = 64;
    }

    *p++ = '.';
    dst.data = p;
    ngx_encode_base64url(&dst, &src);
    p += dst.len;

    out->len = p - out->data;

    return NGX_OK;

failed:

    ERR_clear_error();

    return NGX_ERROR;
}


/* 16 random bytes, base64url: a jti */

ngx_int_t
ngx_http_openbank_random_id(u_char *out)
{
    u_char     rnd[16];
    ngx_str_t  src, dst;

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        ERR_clear_error();
        return NGX_ERROR;
    }

    src.data = rnd;
    src.len = sizeof(rnd);
    dst.data = out;
    ngx_encode_base64url(&dst, &src);

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_jwt_json(ngx_pool_t *pool, ngx_str_t *b64, yajl_val *root,
    const char **err)
{
    u_char     *buf;
    ngx_str_t   json;

    *err = NULL;

    if (b64->len == 0
        || ngx_base64_decoded_length(b64->len)
           > NGX_HTTP_OPENBANK_JWT_PART_MAX)
    {
        *err = "has an empty or too long part";
        return NGX_ERROR;
    }

    buf = ngx_pnalloc(pool, ngx_base64_decoded_length(b64->len) + 1);
    if (buf == NULL) {
        *err = "out of memory";
        return NGX_ERROR;
    }

    json.data = buf;

    if (ngx_http_openbank_decode_base64url(&json, b64) != NGX_OK) {
        *err = "has a part that is not base64url";
        return NGX_ERROR;
    }

    buf[json.len] = '\0';

    if (ngx_strlen(buf) != json.len) {
        *err = "has a NUL in its JSON";
        return NGX_ERROR;
    }

    *root = yajl_tree_parse((const char *) buf, NULL, 0);

    if (*root == NULL) {
        *err = "has a part that is not JSON";
        return NGX_ERROR;
    }

    if (!YAJL_IS_OBJECT(*root)) {
        yajl_tree_free(*root);
        *err = "has a part that is not a JSON object";
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* NGX_OK, NGX_DECLINED when absent, NGX_ERROR when not a string */

static ngx_int_t
ngx_http_openbank_jwt_string(ngx_pool_t *pool, yajl_val obj,
    const char *name, ngx_str_t *out, const char **err)
{
    size_t       i, len;
    yajl_val     v;
    const char  *s;

    v = NULL;

    for (i = 0; i < YAJL_GET_OBJECT(obj)->len; i++) {
        if (ngx_strcmp(YAJL_GET_OBJECT(obj)->keys[i], name) == 0) {
            v = YAJL_GET_OBJECT(obj)->values[i];
            break;
        }
    }

    if (v == NULL) {
        ngx_str_null(out);
        *err = "lacks a required member";
        return NGX_DECLINED;
    }

    if (!YAJL_IS_STRING(v)) {
        *err = "has a member of the wrong type";
        return NGX_ERROR;
    }

    s = YAJL_GET_STRING(v);
    len = ngx_strlen(s);

    out->data = ngx_pnalloc(pool, len + 1);
    if (out->data == NULL) {
        *err = "out of memory";
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, s, len + 1);
    out->len = len;

    return NGX_OK;
}


/* a NumericDate: an integer; absent is NGX_HTTP_OPENBANK_JWT_NO_TIME */

static ngx_int_t
ngx_http_openbank_jwt_number(yajl_val obj, const char *name, int64_t *out,
    const char **err)
{
    size_t    i;
    yajl_val  v;

    *out = NGX_HTTP_OPENBANK_JWT_NO_TIME;

    v = NULL;

    for (i = 0; i < YAJL_GET_OBJECT(obj)->len; i++) {
        if (ngx_strcmp(YAJL_GET_OBJECT(obj)->keys[i], name) == 0) {
            v = YAJL_GET_OBJECT(obj)->values[i];
            break;
        }
    }

    if (v == NULL) {
        return NGX_DECLINED;
    }

    if (!YAJL_IS_INTEGER(v)
        || YAJL_GET_INTEGER(v) < 0
        || YAJL_GET_INTEGER(v) > 253402300799LL)    /* 9999-12-31 */
    {
        *err = "has a time claim that is not a plain integer";
        return NGX_ERROR;
    }

    *out = YAJL_GET_INTEGER(v);

    return NGX_OK;
}


/* a member twice is refused: two readers could see two values */

static ngx_int_t
ngx_http_openbank_jwt_unique(yajl_val obj, const char **err)
{
    size_t  i, j, n;

    n = YAJL_GET_OBJECT(obj)->len;

    if (n > 64) {
        *err = "has too many members";
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        for (j = i + 1; j < n; j++) {
            if (ngx_strcmp(YAJL_GET_OBJECT(obj)->keys[i],
                           YAJL_GET_OBJECT(obj)->keys[j])
                == 0)
            {
                *err = "has a duplicate member";
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


static EVP_MD_CTX *
ngx_http_openbank_jwt_md_ctx(void)
{
    if (ngx_http_openbank_jwt_mdctx == NULL) {
        ngx_http_openbank_jwt_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
        ngx_http_openbank_jwt_mdctx = EVP_MD_CTX_new();

        if (ngx_http_openbank_jwt_sha256 == NULL
            || ngx_http_openbank_jwt_mdctx == NULL)
        {
            EVP_MD_free(ngx_http_openbank_jwt_sha256);
            EVP_MD_CTX_free(ngx_http_openbank_jwt_mdctx);
            ngx_http_openbank_jwt_sha256 = NULL;
            ngx_http_openbank_jwt_mdctx = NULL;
            return NULL;
        }

    } else {
        EVP_MD_CTX_reset(ngx_http_openbank_jwt_mdctx);
    }

    return ngx_http_openbank_jwt_mdctx;
}
