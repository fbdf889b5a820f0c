
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Partner JWKS files (RFC 7517, RFC 8037), parsed at load time into ready
 * OpenSSL key objects: nothing of a JWK is parsed again per request.
 *
 * Accepted keys: RSA from "n"/"e" (2048 to 8192 bits), EC P-256 and SM2
 * from "x"/"y" (the point is checked to be on the curve), OKP Ed25519
 * from "x".  Every key needs a "kid", unique within the file.  A key with
 * a private member ("d", the RSA primes, ...) is refused: a partner never
 * hands its private key to the bank.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_jwt.h>
#include <ngx_http_openbank_util.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

#include <yajl/yajl_tree.h>


#define NGX_HTTP_OPENBANK_JWKS_MAX       (1024 * 1024)
#define NGX_HTTP_OPENBANK_JWKS_KEYS_MAX  64
#define NGX_HTTP_OPENBANK_KID_MAX        128
#define NGX_HTTP_OPENBANK_RSA_MIN_BITS   2048
#define NGX_HTTP_OPENBANK_RSA_MAX_BITS   8192
#define NGX_HTTP_OPENBANK_B64_MAX        2048   /* 8192-bit n, encoded */


typedef struct {
    ngx_pool_t                *pool;
    u_char                    *err;
    u_char                    *last;
    ngx_uint_t                 index;
    ngx_uint_t                 in_key;     /* say which key is wrong */
    ngx_str_t                  kid;
} ngx_http_openbank_jwk_parse_t;


static ngx_int_t ngx_http_openbank_jwk_parse(
    ngx_http_openbank_jwk_parse_t *jp, yajl_val key,
    ngx_http_openbank_jwk_t *jwk);
static ngx_int_t ngx_http_openbank_jwk_rsa(ngx_http_openbank_jwk_parse_t *jp,
    yajl_val key, ngx_http_openbank_jwk_t *jwk);
static ngx_int_t ngx_http_openbank_jwk_ec(ngx_http_openbank_jwk_parse_t *jp,
    yajl_val key, const char *type, const char *group,
    ngx_http_openbank_jwk_t *jwk);
static ngx_int_t ngx_http_openbank_jwk_okp(ngx_http_openbank_jwk_parse_t *jp,
    yajl_val key, ngx_http_openbank_jwk_t *jwk);
static ngx_int_t ngx_http_openbank_jwk_alg(ngx_http_openbank_jwk_parse_t *jp,
    ngx_http_openbank_jwk_t *jwk);
static ngx_int_t ngx_http_openbank_jwk_member(
    ngx_http_openbank_jwk_parse_t *jp, yajl_val key, const char *name,
    ngx_uint_t required, ngx_str_t *out);
static ngx_int_t ngx_http_openbank_jwk_b64(ngx_http_openbank_jwk_parse_t *jp,
    yajl_val key, const char *name, u_char *buf, size_t size,
    ngx_str_t *out);
static EVP_PKEY *ngx_http_openbank_jwk_fromdata(const char *type,
    OSSL_PARAM_BLD *bld);
static ngx_int_t ngx_http_openbank_jwk_fail(ngx_http_openbank_jwk_parse_t *jp,
    const char *fmt, ...);


/* members that only a private key has (RFC 7518 6.2.2, 6.3.2, 6.4.1) */

static const char  *ngx_http_openbank_jwk_private[] = {
    "d", "p", "q", "dp", "dq", "qi", "oth", "k", NULL
};


ngx_http_openbank_jwks_t *
ngx_http_openbank_jwks_load(ngx_conf_t *cf, ngx_str_t *file)
{
    u_char                     err[NGX_MAX_ERROR_STR];
    ngx_str_t                  text;
    ngx_http_openbank_jwks_t  *jwks;

    if (ngx_http_openbank_read_file(cf, file, NGX_HTTP_OPENBANK_JWKS_MAX,
                                    &text)
        != NGX_OK)
    {
        return NULL;
    }

    jwks = ngx_pcalloc(cf->pool, sizeof(ngx_http_openbank_jwks_t));
    if (jwks == NULL) {
        return NULL;
    }

    if (ngx_http_openbank_jwks_parse(cf->pool, &text, jwks, err,
                                     sizeof(err))
        != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "jwks \"%V\": %s",
                           file, err);
        return NULL;
    }

    return jwks;
}


/*
 * Parses a JWKS document (NUL-terminated, as yajl wants it) into "jwks",
 * whose keys are freed with the pool.  On failure, "err" holds a
 * NUL-terminated sentence saying which key and what is wrong.
 */

ngx_int_t
ngx_http_openbank_jwks_parse(ngx_pool_t *pool, ngx_str_t *text,
    ngx_http_openbank_jwks_t *jwks, u_char *err, size_t err_len)
{
    char                            yerr[256];
    size_t                          i;
    yajl_val                        root, keys;
    ngx_uint_t                      k;
    ngx_pool_cleanup_t             *cln;
    ngx_http_openbank_jwk_t        *jwk, *other;
    ngx_http_openbank_jwk_parse_t   jp;
    const char                     *keys_path[] = { "keys", NULL };

    jp.pool = pool;
    jp.err = err;
    jp.last = err + err_len - 1;
    jp.index = 0;
    jp.in_key = 0;
    ngx_str_null(&jp.kid);

    if (ngx_array_init(&jwks->keys, pool, 2, sizeof(ngx_http_openbank_jwk_t))
        != NGX_OK)
    {
        return ngx_http_openbank_jwk_fail(&jp, "out of memory");
    }

    /* from now on, the pool frees every key made, even on failure */

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return ngx_http_openbank_jwk_fail(&jp, "out of memory");
    }

    cln->handler = ngx_http_openbank_jwks_free;
    cln->data = jwks;

    if (text->len == 0 || ngx_strlen(text->data) != text->len) {
        return ngx_http_openbank_jwk_fail(&jp, "is empty or holds a NUL");
    }

    yerr[0] = '\0';
    root = yajl_tree_parse((const char *) text->data, yerr, sizeof(yerr));

    if (root == NULL) {
        for (i = 0; yerr[i]; i++) {
            if (yerr[i] == '\n' || yerr[i] == '\r') {
                yerr[i] = ' ';
            }
        }

        return ngx_http_openbank_jwk_fail(&jp, "is not JSON: %s", yerr);
    }

    keys = YAJL_IS_OBJECT(root) ? yajl_tree_get(root, keys_path,
                                                yajl_t_array)
                                : NULL;

    if (keys == NULL || YAJL_GET_ARRAY(keys)->len == 0) {
        yajl_tree_free(root);
        return ngx_http_openbank_jwk_fail(&jp,
                                          "has no \"keys\" array with a key");
    }

    if (YAJL_GET_ARRAY(keys)->len > NGX_HTTP_OPENBANK_JWKS_KEYS_MAX) {
        yajl_tree_free(root);
        return ngx_http_openbank_jwk_fail(&jp, "has more than %d keys",
                                          NGX_HTTP_OPENBANK_JWKS_KEYS_MAX);
    }

    jp.in_key = 1;

    for (i = 0; i < YAJL_GET_ARRAY(keys)->len; i++) {
        jp.index = i;
        ngx_str_null(&jp.kid);

        jwk = ngx_array_push(&jwks->keys);
        if (jwk == NULL) {
            yajl_tree_free(root);
            return ngx_http_openbank_jwk_fail(&jp, "out of memory");
        }

        ngx_memzero(jwk, sizeof(ngx_http_openbank_jwk_t));

        if (ngx_http_openbank_jwk_parse(&jp, YAJL_GET_ARRAY(keys)->values[i],
                                        jwk)
            != NGX_OK)
        {
            yajl_tree_free(root);
            return NGX_ERROR;
        }

        other = jwks->keys.elts;

        for (k = 0; k + 1 < jwks->keys.nelts; k++) {
            if (other[k].kid.len == jwk->kid.len
                && ngx_memcmp(other[k].kid.data, jwk->kid.data,
                              jwk->kid.len)
                   == 0)
            {
                yajl_tree_free(root);
                return ngx_http_openbank_jwk_fail(&jp,
                                                  "\"kid\" is duplicate "
                                                  "(also keys[%ui])", k);
            }
        }
    }

    yajl_tree_free(root);

    return NGX_OK;
}


ngx_http_openbank_jwk_t *
ngx_http_openbank_jwks_find(ngx_http_openbank_jwks_t *jwks, ngx_str_t *kid)
{
    ngx_uint_t                i;
    ngx_http_openbank_jwk_t  *jwk;

    if (jwks == NULL) {
        return NULL;
    }

    jwk = jwks->keys.elts;

    for (i = 0; i < jwks->keys.nelts; i++) {
        if (jwk[i].kid.len == kid->len
            && ngx_memcmp(jwk[i].kid.data, kid->data, kid->len) == 0)
        {
            return &jwk[i];
        }
    }

    return NULL;
}


static ngx_int_t
ngx_http_openbank_jwk_parse(ngx_http_openbank_jwk_parse_t *jp, yajl_val key,
    ngx_http_openbank_jwk_t *jwk)
{
    u_char      *p;
    ngx_int_t    rc;
    ngx_str_t    kty, crv, use, dummy;
    ngx_uint_t   i;

    if (!YAJL_IS_OBJECT(key)) {
        return ngx_http_openbank_jwk_fail(jp, "is not an object");
    }

    if (ngx_http_openbank_jwk_member(jp, key, "kid", 1, &jwk->kid)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (jwk->kid.len == 0 || jwk->kid.len > NGX_HTTP_OPENBANK_KID_MAX) {
        return ngx_http_openbank_jwk_fail(jp, "\"kid\" must have 1 to %d "
                                          "characters",
                                          NGX_HTTP_OPENBANK_KID_MAX);
    }

    for (p = jwk->kid.data; p < jwk->kid.data + jwk->kid.len; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\') {
            return ngx_http_openbank_jwk_fail(jp, "\"kid\" must be visible "
                                              "ASCII without quotes or "
                                              "backslashes");
        }
    }

    jp->kid = jwk->kid;

    for (i = 0; ngx_http_openbank_jwk_private[i]; i++) {
        if (ngx_http_openbank_jwk_member(jp, key,
                                         ngx_http_openbank_jwk_private[i],
                                         0, &dummy)
            == NGX_DECLINED)
        {
            continue;
        }

        return ngx_http_openbank_jwk_fail(jp, "has the private member "
                                          "\"%s\": a JWKS given to the "
                                          "bank must hold public keys only",
                                          ngx_http_openbank_jwk_private[i]);
    }

    rc = ngx_http_openbank_jwk_member(jp, key, "use", 0, &use);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_OK
        && (use.len != 3 || ngx_strncmp(use.data, "sig", 3) != 0))
    {
        return ngx_http_openbank_jwk_fail(jp, "\"use\" is \"%V\", "
                                          "not \"sig\"", &use);
    }

    rc = ngx_http_openbank_jwk_member(jp, key, "alg", 0, &jwk->alg);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_jwk_member(jp, key, "kty", 1, &kty) != NGX_OK) {
        return NGX_ERROR;
    }

    if (kty.len == 3 && ngx_strncmp(kty.data, "RSA", 3) == 0) {
        rc = ngx_http_openbank_jwk_rsa(jp, key, jwk);

    } else if (kty.len == 2 && ngx_strncmp(kty.data, "EC", 2) == 0) {

        if (ngx_http_openbank_jwk_member(jp, key, "crv", 1, &crv) != NGX_OK) {
            return NGX_ERROR;
        }

        if (crv.len == 5 && ngx_strncmp(crv.data, "P-256", 5) == 0) {
            jwk->type = NGX_HTTP_OPENBANK_KEY_EC_P256;
            rc = ngx_http_openbank_jwk_ec(jp, key, "EC", "prime256v1", jwk);

        } else if (crv.len == 3 && ngx_strncmp(crv.data, "SM2", 3) == 0) {
            jwk->type = NGX_HTTP_OPENBANK_KEY_SM2;
            rc = ngx_http_openbank_jwk_ec(jp, key, "SM2", "SM2", jwk);

        } else {
            return ngx_http_openbank_jwk_fail(jp, "unsupported EC curve "
                                              "\"%V\" (P-256 or SM2)", &crv);
        }

    } else if (kty.len == 3 && ngx_strncmp(kty.data, "OKP", 3) == 0) {
        rc = ngx_http_openbank_jwk_okp(jp, key, jwk);

    } else {
        return ngx_http_openbank_jwk_fail(jp, "unsupported \"kty\" \"%V\" "
                                          "(RSA, EC or OKP)", &kty);
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_openbank_jwk_alg(jp, jwk);
}


static ngx_int_t
ngx_http_openbank_jwk_rsa(ngx_http_openbank_jwk_parse_t *jp, yajl_val key,
    ngx_http_openbank_jwk_t *jwk)
{
    int              bits;
    BIGNUM          *n, *e;
    ngx_str_t        nb, eb;
    OSSL_PARAM_BLD  *bld;
    u_char           nbuf[NGX_HTTP_OPENBANK_B64_MAX];
    u_char           ebuf[64];

    jwk->type = NGX_HTTP_OPENBANK_KEY_RSA;

    if (ngx_http_openbank_jwk_b64(jp, key, "n", nbuf, sizeof(nbuf), &nb)
        != NGX_OK
        || ngx_http_openbank_jwk_b64(jp, key, "e", ebuf, sizeof(ebuf), &eb)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (eb.len > 8) {
        return ngx_http_openbank_jwk_fail(jp, "\"e\" is too long");
    }

    n = BN_bin2bn(nb.data, nb.len, NULL);
    e = BN_bin2bn(eb.data, eb.len, NULL);
    bld = OSSL_PARAM_BLD_new();

    if (n == NULL || e == NULL || bld == NULL) {
        goto nomem;
    }

    bits = BN_num_bits(n);

    if (bits < NGX_HTTP_OPENBANK_RSA_MIN_BITS
        || bits > NGX_HTTP_OPENBANK_RSA_MAX_BITS)
    {
        BN_free(n);
        BN_free(e);
        OSSL_PARAM_BLD_free(bld);

        return ngx_http_openbank_jwk_fail(jp, "RSA key of %d bits: %d to %d "
                                          "are accepted", bits,
                                          NGX_HTTP_OPENBANK_RSA_MIN_BITS,
                                          NGX_HTTP_OPENBANK_RSA_MAX_BITS);
    }

    if (!BN_is_odd(n) || !BN_is_odd(e) || BN_is_one(e)) {
        BN_free(n);
        BN_free(e);
        OSSL_PARAM_BLD_free(bld);

        return ngx_http_openbank_jwk_fail(jp, "is not a valid RSA public "
                                          "key (\"n\" and \"e\" must be "
                                          "odd, \"e\" > 1)");
    }

    if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1
        || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1)
    {
        goto nomem;
    }

    jwk->pkey = ngx_http_openbank_jwk_fromdata("RSA", bld);

    BN_free(n);
    BN_free(e);
    OSSL_PARAM_BLD_free(bld);

    if (jwk->pkey == NULL) {
        return ngx_http_openbank_jwk_fail(jp, "is not a valid RSA public "
                                          "key");
    }

    return NGX_OK;

nomem:

    BN_free(n);
    BN_free(e);
    OSSL_PARAM_BLD_free(bld);

    return ngx_http_openbank_jwk_fail(jp, "out of memory");
}


static ngx_int_t
ngx_http_openbank_jwk_ec(ngx_http_openbank_jwk_parse_t *jp, yajl_val key,
    const char *type, const char *group, ngx_http_openbank_jwk_t *jwk)
{
    ngx_str_t        x, y;
    OSSL_PARAM_BLD  *bld;
    u_char           xbuf[64], ybuf[64], point[65];

    if (ngx_http_openbank_jwk_b64(jp, key, "x", xbuf, sizeof(xbuf), &x)
        != NGX_OK
        || ngx_http_openbank_jwk_b64(jp, key, "y", ybuf, sizeof(ybuf), &y)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (x.len != 32 || y.len != 32) {
        return ngx_http_openbank_jwk_fail(jp, "\"x\" and \"y\" must be "
                                          "32 bytes each, not %uz and %uz",
                                          x.len, y.len);
    }

    /* the uncompressed point: 04 || x || y (SEC 1, 2.3.3) */

    point[0] = 0x04;
    ngx_memcpy(&point[1], x.data, 32);
    ngx_memcpy(&point[33], y.data, 32);

    bld = OSSL_PARAM_BLD_new();

    if (bld == NULL
        || OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                           group, 0)
           != 1
        || OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
                                            point, sizeof(point))
           != 1)
    {
        OSSL_PARAM_BLD_free(bld);
        return ngx_http_openbank_jwk_fail(jp, "out of memory");
    }

    jwk->pkey = ngx_http_openbank_jwk_fromdata(type, bld);

    OSSL_PARAM_BLD_free(bld);

    if (jwk->pkey == NULL) {
        return ngx_http_openbank_jwk_fail(jp, "\"x\", \"y\" is not a point "
                                          "of the curve");
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_jwk_okp(ngx_http_openbank_jwk_parse_t *jp, yajl_val key,
    ngx_http_openbank_jwk_t *jwk)
{
    ngx_str_t        crv, x;
    OSSL_PARAM_BLD  *bld;
    u_char           xbuf[64];

    if (ngx_http_openbank_jwk_member(jp, key, "crv", 1, &crv) != NGX_OK) {
        return NGX_ERROR;
    }

    if (crv.len != 7 || ngx_strncmp(crv.data, "Ed25519", 7) != 0) {
        return ngx_http_openbank_jwk_fail(jp, "unsupported OKP curve \"%V\" "
                                          "(Ed25519)", &crv);
    }

    jwk->type = NGX_HTTP_OPENBANK_KEY_ED25519;

    if (ngx_http_openbank_jwk_b64(jp, key, "x", xbuf, sizeof(xbuf), &x)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (x.len != 32) {
        return ngx_http_openbank_jwk_fail(jp, "\"x\" must be 32 bytes, "
                                          "not %uz", x.len);
    }

    bld = OSSL_PARAM_BLD_new();

    if (bld == NULL
        || OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
                                            x.data, x.len)
           != 1)
    {
        OSSL_PARAM_BLD_free(bld);
        return ngx_http_openbank_jwk_fail(jp, "out of memory");
    }

    jwk->pkey = ngx_http_openbank_jwk_fromdata("ED25519", bld);

    OSSL_PARAM_BLD_free(bld);

    if (jwk->pkey == NULL) {
        return ngx_http_openbank_jwk_fail(jp, "is not a valid Ed25519 "
                                          "public key");
    }

    return NGX_OK;
}


/* a JWK's "alg", when it has one, must fit its key type */

static ngx_int_t
ngx_http_openbank_jwk_alg(ngx_http_openbank_jwk_parse_t *jp,
    ngx_http_openbank_jwk_t *jwk)
{
    ngx_uint_t   i;
    const char  *fits;
    const char  *rsa[] = { "RS256", "RS384", "RS512",
                           "PS256", "PS384", "PS512", NULL };
    const char  *ec[] = { "ES256", NULL };
    const char  *ed[] = { "EdDSA", "Ed25519", NULL };
    const char  *sm2[] = { "SM2", "SM2-SM3", NULL };
    const char **algs;

    if (jwk->alg.len == 0) {
        return NGX_OK;
    }

    switch (jwk->type) {

    case NGX_HTTP_OPENBANK_KEY_RSA:
        algs = rsa;
        fits = "RS256, RS384, RS512, PS256, PS384 or PS512";
        break;

    case NGX_HTTP_OPENBANK_KEY_EC_P256:
        algs = ec;
        fits = "ES256";
        break;

    case NGX_HTTP_OPENBANK_KEY_ED25519:
        algs = ed;
        fits = "EdDSA";
        break;

    default: /* NGX_HTTP_OPENBANK_KEY_SM2 */
        algs = sm2;
        fits = "SM2-SM3";
        break;
    }

    for (i = 0; algs[i]; i++) {
        if (jwk->alg.len == ngx_strlen(algs[i])
            && ngx_strncmp(jwk->alg.data, algs[i], jwk->alg.len) == 0)
        {
            return NGX_OK;
        }
    }

    return ngx_http_openbank_jwk_fail(jp, "\"alg\" \"%V\" does not fit the "
                                      "key type (%s)", &jwk->alg, fits);
}


/*
 * A string member: NGX_OK with its value copied to the pool, NGX_DECLINED
 * when it is absent and not required, NGX_ERROR otherwise.
 */

static ngx_int_t
ngx_http_openbank_jwk_member(ngx_http_openbank_jwk_parse_t *jp, yajl_val key,
    const char *name, ngx_uint_t required, ngx_str_t *out)
{
    size_t       i, len;
    yajl_val     v;
    const char  *s;

    v = NULL;

    for (i = 0; i < YAJL_GET_OBJECT(key)->len; i++) {
        if (ngx_strcmp(YAJL_GET_OBJECT(key)->keys[i], name) != 0) {
            continue;
        }

        if (v != NULL) {
            return ngx_http_openbank_jwk_fail(jp, "\"%s\" is duplicate",
                                              name);
        }

        v = YAJL_GET_OBJECT(key)->values[i];
    }

    if (v == NULL) {
        if (required) {
            return ngx_http_openbank_jwk_fail(jp, "has no \"%s\"", name);
        }

        ngx_str_null(out);
        return NGX_DECLINED;
    }

    if (!YAJL_IS_STRING(v)) {
        return ngx_http_openbank_jwk_fail(jp, "\"%s\" is not a string",
                                          name);
    }

    s = YAJL_GET_STRING(v);
    len = ngx_strlen(s);

    out->data = ngx_pnalloc(jp->pool, len + 1);
    if (out->data == NULL) {
        return ngx_http_openbank_jwk_fail(jp, "out of memory");
    }

    ngx_memcpy(out->data, s, len + 1);
    out->len = len;

    return NGX_OK;
}


/* a required base64url member (RFC 7515 2: no padding) decoded into buf */

static ngx_int_t
ngx_http_openbank_jwk_b64(ngx_http_openbank_jwk_parse_t *jp, yajl_val key,
    const char *name, u_char *buf, size_t size, ngx_str_t *out)
{
    ngx_str_t  text;

    if (ngx_http_openbank_jwk_member(jp, key, name, 1, &text) != NGX_OK) {
        return NGX_ERROR;
    }

    if (text.len == 0 || ngx_base64_decoded_length(text.len) > size) {
        return ngx_http_openbank_jwk_fail(jp, "\"%s\" is empty or too long",
                                          name);
    }

    out->data = buf;

    if (ngx_http_openbank_decode_base64url(out, &text) != NGX_OK) {
        return ngx_http_openbank_jwk_fail(jp, "\"%s\" is not base64url",
                                          name);
    }

    return NGX_OK;
}


static EVP_PKEY *
ngx_http_openbank_jwk_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY      *pkey;
    OSSL_PARAM    *params;
    EVP_PKEY_CTX  *pctx, *check;

    pkey = NULL;
    check = NULL;

    params = OSSL_PARAM_BLD_to_param(bld);
    pctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);

    if (params == NULL || pctx == NULL
        || EVP_PKEY_fromdata_init(pctx) != 1
        || EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    {
        goto failed;
    }

    check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);

    if (check == NULL || EVP_PKEY_public_check(check) != 1) {
        goto failed;
    }

    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);

    return pkey;

failed:

    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    EVP_PKEY_free(pkey);

    /* the reason is told to the operator; nothing is left for later calls */

    ERR_clear_error();

    return NULL;
}


static ngx_int_t
ngx_http_openbank_jwk_fail(ngx_http_openbank_jwk_parse_t *jp,
    const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    p = jp->err;

    if (jp->in_key) {
        p = ngx_slprintf(p, jp->last, "keys[%ui]", jp->index);

        if (jp->kid.len) {
            p = ngx_slprintf(p, jp->last, " (kid \"%V\")", &jp->kid);
        }

        p = ngx_slprintf(p, jp->last, " ");
    }

    va_start(args, fmt);
    p = ngx_vslprintf(p, jp->last, fmt, args);
    va_end(args);

    *p = '\0';

    return NGX_ERROR;
}


/* a pool cleanup: the OpenSSL objects of a JWKS's keys */

void
ngx_http_openbank_jwks_free(void *data)
{
    ngx_http_openbank_jwks_t  *jwks = data;

    ngx_uint_t                i;
    ngx_http_openbank_jwk_t  *jwk;

    jwk = jwks->keys.elts;

    for (i = 0; i < jwks->keys.nelts; i++) {
        EVP_MD_CTX_free(jwk[i].verifier);
        EVP_PKEY_free(jwk[i].pkey);
        jwk[i].verifier = NULL;
        jwk[i].pkey = NULL;
    }
}
