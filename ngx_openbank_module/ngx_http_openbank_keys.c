
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The gateway's own keys ("openbank_signing_key"): PEM private keys read
 * once at load time; the key type decides the algorithm (EC P-256:
 * ES256, RSA >= 2048 bits: PS256, Ed25519: EdDSA).  The first key signs,
 * every key is published in the JWKS and verifies tokens, so that keys
 * can be rotated without refusing tokens still in use.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_jwt.h>
#include <ngx_http_openbank_httpsig.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>


static ngx_int_t ngx_http_openbank_key_jwk(ngx_conf_t *cf,
    ngx_http_openbank_signing_key_t *key);
static ngx_int_t ngx_http_openbank_b64_bn(ngx_conf_t *cf, EVP_PKEY *pkey,
    const char *name, size_t pad, ngx_str_t *out);
static void ngx_http_openbank_signing_key_cleanup(void *data);
static void ngx_http_openbank_verifier_cleanup(void *data);
static void ngx_http_openbank_signer_cleanup(void *data);


char *
ngx_http_openbank_issuer(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_openbank_main_conf_t *obmcf = conf;

    u_char     *p;
    ngx_str_t  *value;

    if (obmcf->issuer.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    /* RFC 8414 2: https, no query, no fragment; http for local tests */

    if (!((value[1].len > 8 && ngx_strncmp(value[1].data, "https://", 8) == 0)
          || (value[1].len > 7
              && ngx_strncmp(value[1].data, "http://", 7) == 0)))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid issuer \"%V\": an https:// URL "
                           "is expected", &value[1]);
        return NGX_CONF_ERROR;
    }

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\'
            || *p == '?' || *p == '#')
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid issuer \"%V\": no query, fragment, "
                               "quote or space", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    /* a trailing slash would make "iss" differ from what partners expect */

    while (value[1].data[value[1].len - 1] == '/') {
        value[1].len--;
    }

    obmcf->issuer = value[1];

    return NGX_CONF_OK;
}


/* openbank_signing_key <file.pem> kid=<kid>; */

char *
ngx_http_openbank_signing_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_openbank_main_conf_t *obmcf = conf;

    u_char                           *p;
    BIO                              *bio;
    char                              group[32];
    size_t                            len;
    EVP_PKEY                         *pkey;
    ngx_str_t                        *value, file, kid;
    ngx_uint_t                        i;
    ngx_pool_cleanup_t               *cln;
    ngx_http_openbank_signing_key_t  *key;

    value = cf->args->elts;

    ngx_str_null(&kid);

    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_strncmp(value[i].data, "kid=", 4) == 0 && kid.data == NULL) {
            kid.data = value[i].data + 4;
            kid.len = value[i].len - 4;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    for (p = kid.data; p < kid.data + kid.len; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\') {
            break;
        }
    }

    if (kid.len == 0 || kid.len > 64 || p != kid.data + kid.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid kid \"%V\": 1 to 64 visible ASCII "
                           "characters without quotes or backslashes", &kid);
        return NGX_CONF_ERROR;
    }

    if (obmcf->signing_keys.elts == NULL
        && ngx_array_init(&obmcf->signing_keys, cf->pool, 2,
                          sizeof(ngx_http_openbank_signing_key_t))
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_openbank_signing_key_find(obmcf, &kid)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "signing key kid \"%V\" is duplicate", &kid);
        return NGX_CONF_ERROR;
    }

    file = value[1];

    if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    bio = BIO_new_file((char *) file.data, "r");
    if (bio == NULL) {
        ERR_clear_error();
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot open signing key \"%V\"", &file);
        return NGX_CONF_ERROR;
    }

    pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);

    if (pkey == NULL) {
        ERR_clear_error();
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "signing key \"%V\" is not a PEM private key "
                           "(without a passphrase)", &file);
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        EVP_PKEY_free(pkey);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_openbank_signing_key_cleanup;
    cln->data = pkey;

    key = ngx_array_push(&obmcf->signing_keys);
    if (key == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(key, sizeof(ngx_http_openbank_signing_key_t));

    key->kid = kid;
    key->pkey = pkey;

    if (EVP_PKEY_is_a(pkey, "RSA")) {
        if (EVP_PKEY_get_bits(pkey) < 2048) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "signing key \"%V\" is RSA of %d bits: at "
                               "least 2048 are needed", &file,
                               EVP_PKEY_get_bits(pkey));
            return NGX_CONF_ERROR;
        }

        key->type = NGX_HTTP_OPENBANK_KEY_RSA;
        ngx_str_set(&key->alg, "PS256");

    } else if (EVP_PKEY_is_a(pkey, "EC")
               && EVP_PKEY_get_utf8_string_param(pkey,
                                                 OSSL_PKEY_PARAM_GROUP_NAME,
                                                 group, sizeof(group), &len)
                  == 1
               && ngx_strcmp(group, "prime256v1") == 0)
    {
        key->type = NGX_HTTP_OPENBANK_KEY_EC_P256;
        ngx_str_set(&key->alg, "ES256");

    } else if (EVP_PKEY_is_a(pkey, "ED25519")) {
        key->type = NGX_HTTP_OPENBANK_KEY_ED25519;
        ngx_str_set(&key->alg, "EdDSA");

    } else {
        ERR_clear_error();
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "signing key \"%V\" is neither EC P-256, RSA nor "
                           "Ed25519", &file);
        return NGX_CONF_ERROR;
    }

    if (key->type != NGX_HTTP_OPENBANK_KEY_ED25519) {
        key->verify = ngx_http_openbank_jwt_verifier(pkey, key->type);

        if (key->verify == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "cannot prepare signing key \"%V\"", &file);
            return NGX_CONF_ERROR;
        }

        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            return NGX_CONF_ERROR;
        }

        cln->handler = ngx_http_openbank_verifier_cleanup;
        cln->data = key->verify;
    }

    if (key->type == NGX_HTTP_OPENBANK_KEY_ED25519) {
        key->sign = ngx_http_openbank_sig_signer(NGX_HTTP_OPENBANK_SIG_ED25519,
                                                 pkey);

        if (key->sign == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "cannot prepare signing key \"%V\"", &file);
            return NGX_CONF_ERROR;
        }

        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            return NGX_CONF_ERROR;
        }

        cln->handler = ngx_http_openbank_signer_cleanup;
        cln->data = key->sign;
    }

    if (ngx_http_openbank_key_jwk(cf, key) != NGX_OK) {
        ERR_clear_error();
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cannot read the public part of signing key "
                           "\"%V\"", &file);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_http_openbank_signing_key_t *
ngx_http_openbank_signing_key_find(ngx_http_openbank_main_conf_t *obmcf,
    ngx_str_t *kid)
{
    ngx_uint_t                        i;
    ngx_http_openbank_signing_key_t  *key;

    key = obmcf->signing_keys.elts;

    for (i = 0; i < obmcf->signing_keys.nelts; i++) {
        if (key[i].kid.len == kid->len
            && ngx_memcmp(key[i].kid.data, kid->data, kid->len) == 0)
        {
            return &key[i];
        }
    }

    return NULL;
}


/* the public JWK, as published at the JWKS endpoint */

static ngx_int_t
ngx_http_openbank_key_jwk(ngx_conf_t *cf, ngx_http_openbank_signing_key_t *key)
{
    u_char     *p, raw[32];
    size_t      len;
    ngx_str_t   a, b, src;

    switch (key->type) {

    case NGX_HTTP_OPENBANK_KEY_RSA:
        if (ngx_http_openbank_b64_bn(cf, key->pkey, OSSL_PKEY_PARAM_RSA_N, 0,
                                     &a)
            != NGX_OK
            || ngx_http_openbank_b64_bn(cf, key->pkey, OSSL_PKEY_PARAM_RSA_E,
                                        0, &b)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        len = sizeof("{\"kty\":\"RSA\",\"kid\":\"\",\"use\":\"sig\","
                     "\"alg\":\"PS256\",\"n\":\"\",\"e\":\"\"}")
              + key->kid.len + a.len + b.len;

        key->jwk.data = ngx_pnalloc(cf->pool, len);
        if (key->jwk.data == NULL) {
            return NGX_ERROR;
        }

        p = ngx_sprintf(key->jwk.data,
                        "{\"kty\":\"RSA\",\"kid\":\"%V\",\"use\":\"sig\","
                        "\"alg\":\"PS256\",\"n\":\"%V\",\"e\":\"%V\"}",
                        &key->kid, &a, &b);
        break;

    case NGX_HTTP_OPENBANK_KEY_EC_P256:
        if (ngx_http_openbank_b64_bn(cf, key->pkey, OSSL_PKEY_PARAM_EC_PUB_X,
                                     32, &a)
            != NGX_OK
            || ngx_http_openbank_b64_bn(cf, key->pkey,
                                        OSSL_PKEY_PARAM_EC_PUB_Y, 32, &b)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        len = sizeof("{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"\","
                     "\"use\":\"sig\",\"alg\":\"ES256\",\"x\":\"\","
                     "\"y\":\"\"}")
              + key->kid.len + a.len + b.len;

        key->jwk.data = ngx_pnalloc(cf->pool, len);
        if (key->jwk.data == NULL) {
            return NGX_ERROR;
        }

        p = ngx_sprintf(key->jwk.data,
                        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"%V\","
                        "\"use\":\"sig\",\"alg\":\"ES256\",\"x\":\"%V\","
                        "\"y\":\"%V\"}", &key->kid, &a, &b);
        break;

    default: /* NGX_HTTP_OPENBANK_KEY_ED25519 */
        len = sizeof(raw);

        if (EVP_PKEY_get_raw_public_key(key->pkey, raw, &len) != 1
            || len != 32)
        {
            return NGX_ERROR;
        }

        src.data = raw;
        src.len = len;

        a.data = ngx_pnalloc(cf->pool, ngx_base64_encoded_length(len));
        if (a.data == NULL) {
            return NGX_ERROR;
        }

        ngx_encode_base64url(&a, &src);

        len = sizeof("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"\","
                     "\"use\":\"sig\",\"alg\":\"EdDSA\",\"x\":\"\"}")
              + key->kid.len + a.len;

        key->jwk.data = ngx_pnalloc(cf->pool, len);
        if (key->jwk.data == NULL) {
            return NGX_ERROR;
        }

        p = ngx_sprintf(key->jwk.data,
                        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"%V\","
                        "\"use\":\"sig\",\"alg\":\"EdDSA\",\"x\":\"%V\"}",
                        &key->kid, &a);
        break;
    }

    key->jwk.len = p - key->jwk.data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_b64_bn(ngx_conf_t *cf, EVP_PKEY *pkey, const char *name,
    size_t pad, ngx_str_t *out)
{
    int        n;
    BIGNUM    *bn;
    u_char     buf[1024];
    ngx_str_t  src;

    bn = NULL;

    if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1) {
        return NGX_ERROR;
    }

    if ((size_t) BN_num_bytes(bn) > sizeof(buf)) {
        BN_free(bn);
        return NGX_ERROR;
    }

    n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);

    BN_free(bn);

    if (n <= 0) {
        return NGX_ERROR;
    }

    src.data = buf;
    src.len = n;

    out->data = ngx_pnalloc(cf->pool, ngx_base64_encoded_length(n));
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_encode_base64url(out, &src);

    return NGX_OK;
}


static void
ngx_http_openbank_signing_key_cleanup(void *data)
{
    EVP_PKEY_free(data);
}


static void
ngx_http_openbank_verifier_cleanup(void *data)
{
    EVP_PKEY_CTX_free(data);
}


static void
ngx_http_openbank_signer_cleanup(void *data)
{
    EVP_MD_CTX_free(data);
}
