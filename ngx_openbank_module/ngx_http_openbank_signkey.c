
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * "openbank_signing_key FILE kid=KID": the gateway's private keys, the
 * first of which signs.  PROVISIONAL: the OAuth issue owns this
 * directive (tokens, the JWKS endpoint); signed responses only need the
 * main conf's signing_keys array this fills.  Keep one of the two when
 * merging.
 */


#include <ngx_http_openbank.h>

#include <openssl/core_names.h>
#include <openssl/pem.h>


static void ngx_http_openbank_signing_key_cleanup(void *data);


char *
ngx_http_openbank_signing_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_openbank_main_conf_t *obmcf = conf;

    BIO                              *bio;
    char                              group[64];
    size_t                            len;
    EVP_PKEY                         *pkey;
    ngx_str_t                        *value, kid;
    ngx_uint_t                        i;
    ngx_pool_cleanup_t               *cln;
    ngx_http_openbank_signing_key_t  *key, *keys;

    value = cf->args->elts;

    if (ngx_strncmp(value[2].data, "kid=", 4) != 0 || value[2].len == 4) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\": expected kid=NAME",
                           &value[2]);
        return NGX_CONF_ERROR;
    }

    kid.data = value[2].data + 4;
    kid.len = value[2].len - 4;

    for (i = 0; i < kid.len; i++) {
        if (kid.data[i] < 0x21 || kid.data[i] > 0x7e
            || kid.data[i] == '"' || kid.data[i] == '\\')
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid kid \"%V\": visible ASCII without "
                               "quotes or backslashes", &kid);
            return NGX_CONF_ERROR;
        }
    }

    keys = obmcf->signing_keys.elts;

    for (i = 0; i < obmcf->signing_keys.nelts; i++) {
        if (keys[i].kid.len == kid.len
            && ngx_strncmp(keys[i].kid.data, kid.data, kid.len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "kid \"%V\" is duplicate", &kid);
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_conf_full_name(cf->cycle, &value[1], 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    bio = BIO_new_file((char *) value[1].data, "r");
    if (bio == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cannot open signing key \"%V\"", &value[1]);
        ERR_clear_error();
        return NGX_CONF_ERROR;
    }

    pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);

    if (pkey == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "signing key \"%V\" is not a PEM private key",
                           &value[1]);
        ERR_clear_error();
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

    key->kid = kid;
    key->pkey = pkey;

    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519) {
        key->type = NGX_HTTP_OPENBANK_KEY_ED25519;

    } else if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA
               && EVP_PKEY_get_bits(pkey) >= 2048)
    {
        key->type = NGX_HTTP_OPENBANK_KEY_RSA;

    } else if (EVP_PKEY_is_a(pkey, "EC")
               && EVP_PKEY_get_utf8_string_param(pkey,
                                                 OSSL_PKEY_PARAM_GROUP_NAME,
                                                 group, sizeof(group), &len)
                  == 1
               && ngx_strcmp(group, "prime256v1") == 0)
    {
        key->type = NGX_HTTP_OPENBANK_KEY_EC_P256;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "signing key \"%V\" must be Ed25519, EC P-256 "
                           "or RSA of at least 2048 bits", &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void
ngx_http_openbank_signing_key_cleanup(void *data)
{
    EVP_PKEY_free(data);
}
