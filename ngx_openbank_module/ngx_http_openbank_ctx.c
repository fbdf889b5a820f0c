
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * A request's ctx: made once per client request, found again after an
 * internal redirect; and the configuration its checks ran in.
 */


#include <ngx_http_openbank.h>


static void ngx_http_openbank_ctx_marker(void *data);


/*
 * The request's ctx, or NULL.  An internal redirect (error_page,
 * try_files, X-Accel-Redirect, ngx.exec, a named location) and
 * ngx_http_filter_finalize_request() zero r->ctx, not the request's
 * pool: as ngx_http_realip_module does, the ctx is found again through
 * the pool cleanup that marks it, and set again.  So a client request is
 * identified, counted, verified and answered once, whatever location it
 * ends in.
 */

ngx_http_openbank_ctx_t *
ngx_http_openbank_find_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_openbank_ctx_t  *ctx;

    r = r->main;

    ctx = ngx_http_get_module_ctx(r, ngx_http_openbank_module);

    if (ctx == NULL && (r->internal || r->filter_finalize)) {

        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_openbank_ctx_marker) {
                ctx = cln->data;
                break;
            }
        }

        if (ctx) {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "openbank ctx found again after a redirect");

            ngx_http_set_ctx(r, ctx, ngx_http_openbank_module);

            ctx->redirected = 1;

            /* the response that went out, if any, is not the last one */
            if (ctx->on_redirect) {
                ctx->on_redirect(ctx);
            }
        }
    }

    return ctx;
}


/* the request's ctx, made on first use */

ngx_http_openbank_ctx_t *
ngx_http_openbank_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_openbank_ctx_t  *ctx;

    ctx = ngx_http_openbank_find_ctx(r);

    if (ctx) {
        return ctx;
    }

    cln = ngx_pool_cleanup_add(r->main->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    ctx = ngx_pcalloc(r->main->pool, sizeof(ngx_http_openbank_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_openbank_ctx_marker;
    cln->data = ctx;

    ngx_http_set_ctx(r->main, ctx, ngx_http_openbank_module);

    return ctx;
}


/* marks the pool cleanup that holds the request's ctx */

static void
ngx_http_openbank_ctx_marker(void *data)
{
}


/*
 * The configuration the request is an API call of: the location where
 * the checks ran, which stands for the whole client request, else the
 * current one.
 */

ngx_http_openbank_loc_conf_t *
ngx_http_openbank_api_conf(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    if (ctx && ctx->conf) {
        return ctx->conf;
    }

    return ngx_http_get_module_loc_conf(r, ngx_http_openbank_module);
}

