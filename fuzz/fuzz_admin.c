
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * libFuzzer target: the Admin API's JSON bodies
 * (ngx_http_openbank_admin_parse), with the members of each endpoint:
 * the first byte chooses which.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_admin.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static ngx_uint_t  ngx_http_openbank_fuzz_members[] = {
    NGX_HTTP_OPENBANK_ADMIN_NAME|NGX_HTTP_OPENBANK_ADMIN_PLAN
    |NGX_HTTP_OPENBANK_ADMIN_SCOPES|NGX_HTTP_OPENBANK_ADMIN_CLIENT_ID
    |NGX_HTTP_OPENBANK_ADMIN_QUOTAS,
    NGX_HTTP_OPENBANK_ADMIN_PLAN|NGX_HTTP_OPENBANK_ADMIN_SCOPES
    |NGX_HTTP_OPENBANK_ADMIN_STATUS|NGX_HTTP_OPENBANK_ADMIN_QUOTAS,
    NGX_HTTP_OPENBANK_ADMIN_TYPE|NGX_HTTP_OPENBANK_ADMIN_EXPIRES
    |NGX_HTTP_OPENBANK_ADMIN_JWKS|NGX_HTTP_OPENBANK_ADMIN_CERTIFICATE
    |NGX_HTTP_OPENBANK_ADMIN_SHA256,
    (ngx_uint_t) -1
};


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                          err[256];
    ngx_str_t                       text;
    ngx_uint_t                      allowed;
    ngx_pool_t                     *pool;
    ngx_http_openbank_admin_body_t  b;

    if (size == 0 || size > NGX_HTTP_OPENBANK_ADMIN_BODY_MAX) {
        return 0;
    }

    allowed = ngx_http_openbank_fuzz_members[data[0] & 3];
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

    if (ngx_http_openbank_admin_parse(pool, &text, allowed, &b, err,
                                      sizeof(err))
        == NGX_DECLINED)
    {
        /* a refusal says why, in a sentence */
        if (ngx_strlen(err) == 0) {
            __builtin_trap();
        }
    }

    ngx_destroy_pool(pool);

    return 0;
}
