
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * libFuzzer target: the parser of untrusted access tokens and client
 * assertions (ngx_http_openbank_jwt_parse), and base64url.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_jwt.h>
#include <ngx_http_openbank_util.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                   *buf;
    ngx_str_t                 token, dst;
    ngx_pool_t               *pool;
    const char               *err;
    ngx_http_openbank_jwt_t   jwt;

    pool = ngx_create_pool(4096, NULL);
    if (pool == NULL) {
        return 0;
    }

    buf = ngx_pnalloc(pool, size + 1);
    if (buf == NULL) {
        ngx_destroy_pool(pool);
        return 0;
    }

    ngx_memcpy(buf, data, size);

    token.data = buf;
    token.len = size;

    if (ngx_http_openbank_jwt_parse(pool, &token, &jwt, &err) == NGX_OK) {

        /* what a caller reads of a parsed token must be there */

        if (jwt.signing_input.len > size || jwt.signature.len > size
            || jwt.naud > NGX_HTTP_OPENBANK_JWT_AUD_MAX)
        {
            __builtin_trap();
        }
    }

    dst.data = ngx_pnalloc(pool, ngx_base64_decoded_length(size) + 1);
    if (dst.data) {
        token.data = (u_char *) data;
        (void) ngx_http_openbank_decode_base64url(&dst, &token);
    }

    ngx_destroy_pool(pool);

    return 0;
}
