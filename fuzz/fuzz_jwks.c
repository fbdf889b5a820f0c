
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * libFuzzer target: the partner JWKS parser (ngx_http_openbank_jwks_parse),
 * keys made and freed with the pool.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_jwt.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                    err[NGX_MAX_ERROR_STR];
    ngx_str_t                 text, kid;
    ngx_pool_t               *pool;
    ngx_http_openbank_jwks_t  jwks;

    if (size > 256 * 1024) {
        return 0;
    }

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

    ngx_memzero(&jwks, sizeof(ngx_http_openbank_jwks_t));

    if (ngx_http_openbank_jwks_parse(pool, &text, &jwks, err, sizeof(err))
        == NGX_OK)
    {
        ngx_str_set(&kid, "k");
        (void) ngx_http_openbank_jwks_find(&jwks, &kid);

    } else if (ngx_strlen(err) == 0) {
        __builtin_trap();       /* a refusal always says why */
    }

    ngx_destroy_pool(pool);

    return 0;
}
