
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * libFuzzer target: dynamic client registration's input
 * (ngx_http_openbank_registration_json.c): the first byte chooses a
 * request body (ngx_http_openbank_dcr_parse, then the software statement
 * it has, parsed as a JWT and as claims, and its JWKS) or a software
 * statement alone (ngx_http_openbank_jwt_parse and
 * ngx_http_openbank_dcr_claims).
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_jwt.h>
#include <ngx_http_openbank_registration.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
ngx_http_openbank_fuzz_statement(ngx_pool_t *pool, ngx_str_t *text)
{
    u_char                        err[256];
    const char                   *why;
    ngx_http_openbank_jwt_t       jwt;
    ngx_http_openbank_dcr_meta_t  m;

    (void) ngx_http_openbank_jwt_parse(pool, text, &jwt, &why);

    ngx_memzero(&m, sizeof(m));
    err[0] = '\0';

    if (ngx_http_openbank_dcr_claims(pool, text, &m, err, sizeof(err))
        == NGX_DECLINED
        && (ngx_strlen(err) == 0 || m.error == 0))
    {
        /* a refusal says why, in a sentence, with its RFC 7591 code */
        __builtin_trap();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                        err[256];
    ngx_str_t                     text;
    ngx_uint_t                    mode;
    ngx_pool_t                   *pool;
    ngx_http_openbank_jwks_t      jwks;
    ngx_http_openbank_dcr_meta_t  m;

    if (size == 0 || size > NGX_HTTP_OPENBANK_DCR_BODY_MAX) {
        return 0;
    }

    mode = data[0] & 1;
    data++;
    size--;

    pool = ngx_create_pool(4096, NULL);
    if (pool == NULL) {
        return 0;
    }

    text.data = ngx_pnalloc(pool, size + 1);
    if (text.data == NULL) {
        ngx_destroy_pool(pool);
        return 0;
    }

    ngx_memcpy(text.data, data, size);
    text.data[size] = '\0';
    text.len = size;

    if (mode == 1) {
        ngx_http_openbank_fuzz_statement(pool, &text);
        ngx_destroy_pool(pool);
        return 0;
    }

    ngx_memzero(&m, sizeof(m));
    err[0] = '\0';

    switch (ngx_http_openbank_dcr_parse(pool, &text, 0, &m, err,
                                        sizeof(err)))
    {
    case NGX_DECLINED:
        if (ngx_strlen(err) == 0 || m.error == 0) {
            __builtin_trap();
        }

        break;

    case NGX_OK:
        if (m.software_statement.len) {
            ngx_http_openbank_fuzz_statement(pool, &m.software_statement);
        }

        if (m.jwks.len) {
            (void) ngx_http_openbank_jwks_parse(pool, &m.jwks, &jwks, err,
                                                sizeof(err));
        }

        break;

    default:
        break;
    }

    ngx_destroy_pool(pool);

    return 0;
}
