
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Who is calling: the credential a location accepts ("openbank_auth")
 * names the partner; the location's scope must be one the credential
 * grants.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_auth.h>
#include <ngx_http_openbank_partner.h>
#include <ngx_http_openbank_registry.h>
#include <ngx_http_openbank_token.h>
#include <ngx_http_openbank_util.h>


#define NGX_HTTP_OPENBANK_API_KEY_MAX  256


static ngx_int_t ngx_http_openbank_api_key(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_table_elt_t *h, ngx_uint_t n);


ngx_int_t
ngx_http_openbank_identify(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    ngx_uint_t                     n;
    ngx_table_elt_t               *h;
    ngx_http_openbank_loc_conf_t  *oblcf;

    oblcf = ngx_http_get_module_loc_conf(r, ngx_http_openbank_module);

    if (oblcf->auth & NGX_HTTP_OPENBANK_AUTH_API_KEY) {
        h = ngx_http_openbank_find_header(&r->headers_in.headers,
                                          "X-API-Key", &n);
        if (h) {
            return ngx_http_openbank_api_key(r, ctx, h, n);
        }
    }

    if (oblcf->auth & NGX_HTTP_OPENBANK_AUTH_TOKEN) {
        h = ngx_http_openbank_find_header(&r->headers_in.headers,
                                          "Authorization", &n);
        if (h) {
            return ngx_http_openbank_bearer(r, ctx, h, n);
        }
    }

    if (oblcf->auth == NGX_HTTP_OPENBANK_AUTH_API_KEY) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_TOKEN,
                                        "no credential: send the partner's "
                                        "API key in X-API-Key");
    }

    return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                    NGX_HTTP_OPENBANK_PROBLEM_INVALID_TOKEN,
                                    "no credential: send an access token "
                                    "in Authorization: Bearer");
}


static ngx_int_t
ngx_http_openbank_api_key(ngx_http_request_t *r, ngx_http_openbank_ctx_t *ctx,
    ngx_table_elt_t *h, ngx_uint_t n)
{
    ngx_http_openbank_partner_t    *partner;
    ngx_http_openbank_main_conf_t  *obmcf;
    u_char                          hash[NGX_HTTP_OPENBANK_HASH_LEN];

    if (n > 1) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_TOKEN,
                                        "X-API-Key is sent more than once");
    }

    if (h->value.len == 0 || h->value.len > NGX_HTTP_OPENBANK_API_KEY_MAX) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_TOKEN,
                                        "X-API-Key must be 1 to %d "
                                        "characters",
                                        NGX_HTTP_OPENBANK_API_KEY_MAX);
    }

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    ngx_http_openbank_sha256(hash, h->value.data, h->value.len);

    partner = ngx_http_openbank_partner_by_api_key(obmcf, hash);

    if (partner == NULL) {
        partner = ngx_http_openbank_registry_api_key(r, hash);
    }

    if (partner == NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "openbank: unknown API key");

        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_TOKEN,
                                        "the API key is not valid");
    }

    ctx->partner = partner;
    ctx->scopes = &partner->scopes;

    if (partner->suspended) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "openbank: API key of the suspended partner \"%V\" "
                      "refused", &partner->name);

        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_FORBIDDEN,
                                NGX_HTTP_OPENBANK_PROBLEM_PARTNER_SUSPENDED,
                                "the partner is suspended");
    }

    return NGX_DECLINED;
}


ngx_int_t
ngx_http_openbank_scope_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    ngx_str_t                     *s;
    ngx_uint_t                     i;
    ngx_http_openbank_loc_conf_t  *oblcf;

    oblcf = ngx_http_get_module_loc_conf(r, ngx_http_openbank_module);

    s = ctx->scopes->elts;

    for (i = 0; i < ctx->scopes->nelts; i++) {
        if (s[i].len == oblcf->scope.len
            && ngx_strncmp(s[i].data, oblcf->scope.data, s[i].len) == 0)
        {
            return NGX_DECLINED;
        }
    }

    return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_FORBIDDEN,
        NGX_HTTP_OPENBANK_PROBLEM_INSUFFICIENT_SCOPE,
        "this endpoint needs the scope \"%V\"",
        &oblcf->scope);
}
