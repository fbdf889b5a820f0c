
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Partner JWKS files (RFC 7517), read and checked at load time.
 */


#include <ngx_http_openbank.h>

#include <yajl/yajl_tree.h>


#define NGX_HTTP_OPENBANK_JWKS_MAX  (1024 * 1024)


static void ngx_http_openbank_jwks_cleanup(void *data);


void *
ngx_http_openbank_jwks_load(ngx_conf_t *cf, ngx_str_t *file)
{
    char                 err[256];
    size_t               i;
    yajl_val             root, keys, key, kty;
    ngx_str_t            text;
    ngx_pool_cleanup_t  *cln;
    const char          *keys_path[] = { "keys", NULL };
    const char          *kty_path[] = { "kty", NULL };

    if (ngx_http_openbank_read_file(cf, file, NGX_HTTP_OPENBANK_JWKS_MAX,
                                    &text)
        != NGX_OK)
    {
        return NULL;
    }

    err[0] = '\0';
    root = yajl_tree_parse((const char *) text.data, err, sizeof(err));

    if (root == NULL) {
        for (i = 0; err[i]; i++) {
            if (err[i] == '\n') {
                err[i] = ' ';
            }
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "jwks \"%V\" is not JSON: %s", file, err);
        return NULL;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        yajl_tree_free(root);
        return NULL;
    }

    cln->handler = ngx_http_openbank_jwks_cleanup;
    cln->data = root;

    keys = yajl_tree_get(root, keys_path, yajl_t_array);

    if (keys == NULL || YAJL_GET_ARRAY(keys)->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "jwks \"%V\" has no \"keys\" array with a key",
                           file);
        return NULL;
    }

    for (i = 0; i < YAJL_GET_ARRAY(keys)->len; i++) {
        key = YAJL_GET_ARRAY(keys)->values[i];
        kty = YAJL_IS_OBJECT(key) ? yajl_tree_get(key, kty_path,
                                                  yajl_t_string)
                                  : NULL;

        if (kty == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "jwks \"%V\": key %uz is not an object with "
                               "a \"kty\"", file, i);
            return NULL;
        }
    }

    return root;
}


static void
ngx_http_openbank_jwks_cleanup(void *data)
{
    yajl_tree_free(data);
}
