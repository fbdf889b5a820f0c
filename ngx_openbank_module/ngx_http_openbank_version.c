
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Versions that operations sunset: Deprecation (RFC 9745), Sunset
 * (RFC 8594) and the successor's Link while the version lives, 410
 * "version_retired" once it is past its date.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_util.h>
#include <ngx_http_openbank_version.h>


static ngx_int_t ngx_http_openbank_add_header(ngx_http_request_t *r,
    const char *name, ngx_str_t *value);


/* openbank_version_sunset DATE [successor=URI] [deprecated=DATE] */

char *
ngx_http_openbank_version_sunset(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_openbank_loc_conf_t *oblcf = conf;

    u_char                       *p;
    ngx_str_t                    *value, s;
    ngx_uint_t                    i, j;
    ngx_http_openbank_version_t  *v;

    if (oblcf->version != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    v = ngx_pcalloc(cf->pool, sizeof(ngx_http_openbank_version_t));
    if (v == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    v->sunset = ngx_http_openbank_parse_time(&value[1]);

    if (v->sunset == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid sunset date \"%V\": expected "
                           "\"2027-06-30T00:00:00Z\" or \"2027-06-30\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    v->deprecated = ngx_time();

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "successor=", 10) == 0) {
            s.data = value[i].data + 10;
            s.len = value[i].len - 10;

            for (j = 0; j < s.len; j++) {
                if (s.data[j] <= 0x20 || s.data[j] >= 0x7f
                    || s.data[j] == '<' || s.data[j] == '>'
                    || s.data[j] == '"')
                {
                    break;
                }
            }

            if (s.len == 0 || j != s.len || v->successor.len) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid successor \"%V\": expected "
                                   "one URI such as \"/v1/\"", &s);
                return NGX_CONF_ERROR;
            }

            v->successor = s;
            continue;
        }

        if (ngx_strncmp(value[i].data, "deprecated=", 11) == 0) {
            s.data = value[i].data + 11;
            s.len = value[i].len - 11;

            v->deprecated = ngx_http_openbank_parse_time(&s);

            if (v->deprecated == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid deprecation date \"%V\"", &s);
                return NGX_CONF_ERROR;
            }

            if (v->deprecated > v->sunset) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "deprecation date \"%V\" is after the "
                                   "sunset date \"%V\"", &s, &value[1]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\": expected "
                           "\"successor=URI\" or \"deprecated=DATE\"",
                           &value[i]);
        return NGX_CONF_ERROR;
    }

    /* the headers' values, made once */

    p = ngx_pnalloc(cf->pool, sizeof("Mon, 28 Sep 1970 06:00:00 GMT"));
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    v->sunset_header.data = p;
    v->sunset_header.len = ngx_http_time(p, v->sunset) - p;

    p = ngx_pnalloc(cf->pool, 1 + NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    v->deprecation_header.data = p;
    v->deprecation_header.len = ngx_sprintf(p, "@%T", v->deprecated) - p;

    if (v->successor.len) {
        p = ngx_pnalloc(cf->pool, v->successor.len
                                  + sizeof("<>; rel=\"successor-version\""));
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        v->link_header.data = p;
        v->link_header.len = ngx_sprintf(p, "<%V>; rel=\"successor-version\"",
                                         &v->successor)
                             - p;
    }

    oblcf->version = v;

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_openbank_version_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    ngx_http_openbank_version_t   *v;
    ngx_http_openbank_loc_conf_t  *oblcf;

    oblcf = ngx_http_get_module_loc_conf(r, ngx_http_openbank_module);
    v = oblcf->version;

    if (ngx_time() < v->sunset) {
        return NGX_DECLINED;
    }

    if (v->successor.len) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_OPENBANK_GONE,
            NGX_HTTP_OPENBANK_PROBLEM_VERSION_RETIRED,
            "this API version was retired on "
            "%V; use %V", &v->sunset_header,
            &v->successor);
    }

    return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_OPENBANK_GONE,
                                    NGX_HTTP_OPENBANK_PROBLEM_VERSION_RETIRED,
                                    "this API version was retired on %V",
                                    &v->sunset_header);
}


ngx_int_t
ngx_http_openbank_version_headers(ngx_http_request_t *r)
{
    ngx_http_openbank_version_t   *v;
    ngx_http_openbank_loc_conf_t  *oblcf;

    oblcf = ngx_http_get_module_loc_conf(r, ngx_http_openbank_module);
    v = oblcf->version;

    if (ngx_http_openbank_set_header(r, "Deprecation",
                                     &v->deprecation_header) == NULL
        || ngx_http_openbank_set_header(r, "Sunset", &v->sunset_header)
           == NULL)
    {
        return NGX_ERROR;
    }

    if (v->link_header.len
        && ngx_http_openbank_add_header(r, "Link", &v->link_header) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_add_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;

    return NGX_OK;
}
