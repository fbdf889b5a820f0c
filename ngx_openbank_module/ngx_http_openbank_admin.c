
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The Admin API (docs/admin.md): the bank's tooling reads the partners,
 * static and registry ones, and makes, changes and deletes registry
 * partners and their credentials, and any partner's webhook endpoints
 * (with ngx_http_openbank_webhooks.c), with "Authorization: Bearer <admin
 * key>" (openbank_admin_key: only its SHA-256 is known, compared in
 * constant time).  JSON in and out; every refusal a problem.  Every
 * change is applied by the registry (ngx_http_openbank_registry.c) with
 * its audit event, and answered once its journal records are durable.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_admin.h>
#include <ngx_http_openbank_events.h>
#include <ngx_http_openbank_jwt.h>
#include <ngx_http_openbank_partner.h>
#include <ngx_http_openbank_registry.h>
#include <ngx_http_openbank_sync.h>
#include <ngx_http_openbank_usage.h>
#include <ngx_http_openbank_util.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>


#define NGX_HTTP_OPENBANK_ADMIN_LIMIT      100
#define NGX_HTTP_OPENBANK_ADMIN_LIMIT_MAX  1000

#define NGX_HTTP_OPENBANK_R_PARTNERS     1
#define NGX_HTTP_OPENBANK_R_PARTNER      2
#define NGX_HTTP_OPENBANK_R_CREDENTIALS  3
#define NGX_HTTP_OPENBANK_R_CREDENTIAL   4
#define NGX_HTTP_OPENBANK_R_AUDIT        5
#define NGX_HTTP_OPENBANK_R_USAGE        6
#define NGX_HTTP_OPENBANK_R_WEBHOOKS     7


struct ngx_http_openbank_admin_s {
    ngx_uint_t                    route;
    ngx_str_t                     name;        /* of the partner */
    ngx_str_t                     id;          /* of the credential */
    ngx_uint_t                    bad;         /* not a name or an id */
    ngx_http_openbank_reply_t     reply;       /* once durable */
};

typedef struct ngx_http_openbank_admin_s  ngx_http_openbank_admin_t;


typedef struct {
    ngx_str_t                     key;
    ngx_str_t                     value;
} ngx_http_openbank_admin_rec_t;


/* a partner as the API shows it */

typedef struct {
    ngx_str_t                     name;
    ngx_str_t                     plan;
    ngx_str_t                     client_id;
    ngx_str_t                     scopes;      /* space-separated */
    ngx_str_t                     quotas;      /* lines */
    ngx_array_t                  *scope_list;  /* static: ngx_str_t */
    ngx_array_t                  *quota_list;  /* static */
    int64_t                       created;
    ngx_uint_t                    status;
    unsigned                      registry:1;
} ngx_http_openbank_admin_partner_t;


static ngx_int_t ngx_http_openbank_admin_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_openbank_admin_route(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_t *a);
static ngx_int_t ngx_http_openbank_admin_webhooks_route(
    ngx_http_request_t *r, ngx_http_openbank_ctx_t *ctx,
    ngx_http_openbank_admin_t *a, u_char *p, u_char *last);
static ngx_int_t ngx_http_openbank_admin_dispatch(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *body);

static ngx_int_t ngx_http_openbank_admin_parse_body(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *body, ngx_uint_t allowed,
    ngx_http_openbank_admin_body_t *b);
static ngx_int_t ngx_http_openbank_admin_list(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
static ngx_int_t ngx_http_openbank_admin_partner(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_t *a,
    ngx_http_openbank_admin_partner_t *p);
static ngx_int_t ngx_http_openbank_admin_find(ngx_http_request_t *r,
    ngx_str_t *name, ngx_http_openbank_admin_partner_t *p);
static ngx_int_t ngx_http_openbank_admin_show(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_t *a);
static ngx_int_t ngx_http_openbank_admin_create(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *body);
static ngx_int_t ngx_http_openbank_admin_patch(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_t *a,
    ngx_str_t *body);
static ngx_int_t ngx_http_openbank_admin_delete(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_t *a);
static ngx_int_t ngx_http_openbank_admin_cred_create(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_t *a,
    ngx_str_t *body);
static ngx_int_t ngx_http_openbank_admin_cred_list(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_t *a);
static ngx_int_t ngx_http_openbank_admin_cred_delete(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_t *a);
static ngx_int_t ngx_http_openbank_admin_claim(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *name, ngx_str_t *client_id,
    ngx_str_t *body);
static void ngx_http_openbank_admin_usage_resume(ngx_http_request_t *r);
static ngx_int_t ngx_http_openbank_admin_usage(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_t *a);
static ngx_int_t ngx_http_openbank_admin_audit(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
static ngx_int_t ngx_http_openbank_admin_webhooks(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_t *a,
    ngx_str_t *body);
static void ngx_http_openbank_admin_webhook_durable(ngx_http_request_t *r,
    ngx_int_t rc);
static ngx_int_t ngx_http_openbank_admin_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_body_t *b);
static ngx_int_t ngx_http_openbank_admin_commit(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_reg_op_t *ops,
    ngx_uint_t n, ngx_uint_t status, ngx_str_t *answer);
static ngx_int_t ngx_http_openbank_admin_page(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *after, ngx_uint_t *limit);
static ngx_int_t ngx_http_openbank_admin_audit_op(ngx_http_request_t *r,
    ngx_http_openbank_reg_op_t *op, const char *action, ngx_str_t *target);
static ngx_int_t ngx_http_openbank_admin_texts(ngx_http_request_t *r,
    ngx_http_openbank_admin_body_t *b, ngx_http_openbank_admin_partner_t *p);
static ngx_int_t ngx_http_openbank_admin_partner_value(ngx_http_request_t *r,
    ngx_http_openbank_admin_partner_t *p, ngx_str_t *value);
static void ngx_http_openbank_admin_partner_json(
    ngx_http_openbank_out_t *o, ngx_http_openbank_admin_partner_t *p);
static ngx_int_t ngx_http_openbank_admin_decode(ngx_str_t *name,
    ngx_str_t *value, ngx_http_openbank_admin_partner_t *p);
static int ngx_libc_cdecl ngx_http_openbank_admin_cmp(const void *a,
    const void *b);


static ngx_str_t  ngx_http_openbank_admin_actor = ngx_string("admin");


static ngx_http_openbank_json_api_t  ngx_http_openbank_admin_json = {
    NGX_HTTP_OPENBANK_ADMIN_BODY_MAX,
    "an Admin API body",
    ngx_http_openbank_admin_dispatch,
    NULL
};


char *
ngx_http_openbank_admin_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_openbank_module);

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_openbank_admin_handler;
    obmcf->admin_api = 1;

    return NGX_CONF_OK;
}


char *
ngx_http_openbank_admin_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_openbank_main_conf_t *obmcf = conf;

    ngx_str_t  *value;

    if (obmcf->has_admin_key) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_openbank_parse_hash(&value[1], obmcf->admin_key) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid admin key \"%V\": it must be "
                           "sha256:<64 hex digits>", &value[1]);
        return NGX_CONF_ERROR;
    }

    obmcf->has_admin_key = 1;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_openbank_admin_handler(ngx_http_request_t *r)
{
    u_char                          *p, *last;
    ngx_int_t                        rc;
    ngx_str_t                        token;
    ngx_uint_t                       n;
    ngx_table_elt_t                 *h;
    ngx_http_openbank_ctx_t         *ctx;
    ngx_http_openbank_admin_t       *a;
    ngx_http_openbank_main_conf_t   *obmcf;
    u_char                           hash[NGX_HTTP_OPENBANK_HASH_LEN];
    static u_char                    zero[NGX_HTTP_OPENBANK_HASH_LEN];

    /* every method: each resource says which it takes, after the key */

    rc = ngx_http_openbank_endpoint_start(r, (ngx_uint_t) -1, "");
    if (rc != NGX_OK) {
        return rc;
    }

    ctx = ngx_http_openbank_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    a = ngx_pcalloc(r->pool, sizeof(ngx_http_openbank_admin_t));
    if (a == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->admin = a;

    /* the resource and its methods (the API's shape is no secret) */

    rc = ngx_http_openbank_admin_route(r, ctx, a);
    if (rc != NGX_OK) {
        return rc;
    }

    /* the admin key: the same work whatever is sent */

    h = ngx_http_openbank_find_header(&r->headers_in.headers,
                                      "Authorization", &n);

    token.len = 0;
    token.data = NULL;

    if (h && n == 1 && h->value.len > 7
        && ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) == 0)
    {
        p = h->value.data + 7;
        last = h->value.data + h->value.len;

        while (p < last && *p == ' ') {
            p++;
        }

        token.data = p;
        token.len = last - p;
    }

    ngx_http_openbank_sha256(hash, token.data ? token.data : zero,
                             token.len);

    if (CRYPTO_memcmp(hash, obmcf->admin_key, sizeof(hash)) != 0
        || token.len == 0 || !obmcf->has_admin_key)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "openbank: Admin API call without the admin key");

        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_TOKEN,
                                        "the Admin API needs "
                                        "\"Authorization: Bearer\" and the "
                                        "admin key");
    }

    if (a->bad) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_NOT_FOUND,
                                        NGX_HTTP_OPENBANK_PROBLEM_NOT_FOUND,
                                        "no partner, credential or webhook "
                                        "endpoint at %V",
                                        &r->uri);
    }

    return ngx_http_openbank_json_request(r, ctx,
                                          r->method
                                          & (NGX_HTTP_POST|NGX_HTTP_PATCH),
                                          &ngx_http_openbank_admin_json);
}


/*
 * /admin/partners, /admin/partners/{name}, .../credentials,
 * .../credentials/{id}, .../usage, .../webhook-endpoints[/{id}[/test]],
 * /admin/audit; each with its methods.
 */

static ngx_int_t
ngx_http_openbank_admin_route(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_t *a)
{
    u_char      *p, *last, *q;
    ngx_uint_t   methods;
    const char  *allow;

    p = r->uri.data;
    last = p + r->uri.len;

    if (r->uri.len < 7 || ngx_strncmp(p, "/admin/", 7) != 0) {
        goto not_found;
    }

    p += 7;

    if (last - p == 5 && ngx_strncmp(p, "audit", 5) == 0) {
        a->route = NGX_HTTP_OPENBANK_R_AUDIT;
        methods = NGX_HTTP_GET|NGX_HTTP_HEAD;
        allow = "GET, HEAD";
        goto methods;
    }

    if (last - p < 8 || ngx_strncmp(p, "partners", 8) != 0) {
        goto not_found;
    }

    p += 8;

    if (p == last) {
        a->route = NGX_HTTP_OPENBANK_R_PARTNERS;
        methods = NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST;
        allow = "GET, HEAD, POST";
        goto methods;
    }

    if (*p++ != '/') {
        goto not_found;
    }

    q = ngx_strlchr(p, last, '/');

    a->name.data = p;
    a->name.len = (q ? q : last) - p;

    /* a segment that is no name is 404 once the caller is known */

    if (a->name.len == 0) {
        goto not_found;
    }

    if (ngx_http_openbank_valid_name(&a->name) != NGX_OK) {
        a->bad = 1;
    }

    if (q == NULL) {
        a->route = NGX_HTTP_OPENBANK_R_PARTNER;
        methods = NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_PATCH|NGX_HTTP_DELETE;
        allow = "GET, HEAD, PATCH, DELETE";
        goto methods;
    }

    p = q + 1;

    if (last - p == 5 && ngx_strncmp(p, "usage", 5) == 0) {
        a->route = NGX_HTTP_OPENBANK_R_USAGE;
        methods = NGX_HTTP_GET|NGX_HTTP_HEAD;
        allow = "GET, HEAD";
        goto methods;
    }

    if (last - p >= 17 && ngx_strncmp(p, "webhook-endpoints", 17) == 0) {
        return ngx_http_openbank_admin_webhooks_route(r, ctx, a, p + 17,
                                                      last);
    }

    if (last - p < 11 || ngx_strncmp(p, "credentials", 11) != 0) {
        goto not_found;
    }

    p += 11;

    if (p == last) {
        a->route = NGX_HTTP_OPENBANK_R_CREDENTIALS;
        methods = NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST;
        allow = "GET, HEAD, POST";
        goto methods;
    }

    if (*p++ != '/' || p == last || ngx_strlchr(p, last, '/')) {
        goto not_found;
    }

    a->id.data = p + 5;
    a->id.len = 16;

    if (last - p != 21 || ngx_strncmp(p, "cred_", 5) != 0) {
        a->bad = 1;
    }

    for (q = a->id.data; !a->bad && q < last; q++) {
        if (!((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f'))) {
            a->bad = 1;
        }
    }


    a->route = NGX_HTTP_OPENBANK_R_CREDENTIAL;
    methods = NGX_HTTP_DELETE;
    allow = "DELETE";

methods:

    if (r->method & methods) {
        return NGX_OK;
    }

    ctx->allow.data = (u_char *) allow;
    ctx->allow.len = ngx_strlen(allow);

    return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_NOT_ALLOWED,
        NGX_HTTP_OPENBANK_PROBLEM_METHOD_NOT_ALLOWED,
        "method %V is not allowed on %V; "
        "allowed: %s",
        &r->method_name, &r->uri, allow);

not_found:

    return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_NOT_FOUND,
                                    NGX_HTTP_OPENBANK_PROBLEM_NOT_FOUND,
                                    "no Admin API resource at %V", &r->uri);
}


static ngx_int_t
ngx_http_openbank_admin_dispatch(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *body)
{
    ngx_http_openbank_admin_t  *a;

    a = ctx->admin;

    switch (a->route) {

    case NGX_HTTP_OPENBANK_R_AUDIT:
        return ngx_http_openbank_admin_audit(r, ctx);

    case NGX_HTTP_OPENBANK_R_USAGE:
        return ngx_http_openbank_admin_usage(r, ctx, a);

    case NGX_HTTP_OPENBANK_R_WEBHOOKS:
        return ngx_http_openbank_admin_webhooks(r, ctx, a, body);

    case NGX_HTTP_OPENBANK_R_PARTNERS:
        if (r->method == NGX_HTTP_POST) {
            return ngx_http_openbank_admin_create(r, ctx, body);
        }

        return ngx_http_openbank_admin_list(r, ctx);

    case NGX_HTTP_OPENBANK_R_PARTNER:
        if (r->method == NGX_HTTP_PATCH) {
            return ngx_http_openbank_admin_patch(r, ctx, a, body);
        }

        if (r->method == NGX_HTTP_DELETE) {
            return ngx_http_openbank_admin_delete(r, ctx, a);
        }

        return ngx_http_openbank_admin_show(r, ctx, a);

    case NGX_HTTP_OPENBANK_R_CREDENTIALS:
        if (r->method == NGX_HTTP_POST) {
            return ngx_http_openbank_admin_cred_create(r, ctx, a, body);
        }

        return ngx_http_openbank_admin_cred_list(r, ctx, a);

    default: /* NGX_HTTP_OPENBANK_R_CREDENTIAL */
        return ngx_http_openbank_admin_cred_delete(r, ctx, a);
    }
}


static ngx_int_t
ngx_http_openbank_admin_parse_body(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *body, ngx_uint_t allowed,
    ngx_http_openbank_admin_body_t *b)
{
    ngx_int_t  rc;
    u_char     err[256];

    rc = ngx_http_openbank_admin_parse(r->pool, body, allowed, b, err,
                                       sizeof(err));
    if (rc == NGX_OK) {
        return NGX_OK;
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                    NGX_HTTP_OPENBANK_PROBLEM_INVALID_BODY,
                                    "%s", err);
}


/* what the configuration knows: the plan, each scope, each product */

static ngx_int_t
ngx_http_openbank_admin_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_body_t *b)
{
    ngx_str_t                      *s, *ps;
    ngx_uint_t                      i, k, m, found;
    ngx_http_openbank_ref_t        *ref;
    ngx_http_openbank_plan_t       *plan;
    ngx_http_openbank_quota_t      *quota, *pq;
    ngx_http_openbank_partner_t    *partner;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    plan = obmcf->plans.elts;

    if (b->present & NGX_HTTP_OPENBANK_ADMIN_PLAN) {
        for (i = 0; i < obmcf->plans.nelts; i++) {
            if (plan[i].name.len == b->plan.len
                && ngx_strncmp(plan[i].name.data, b->plan.data, b->plan.len)
                   == 0)
            {
                break;
            }
        }

        if (i == obmcf->plans.nelts) {
            return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                NGX_HTTP_OPENBANK_PROBLEM_INVALID_BODY,
                                "\"plan\": there is no plan \"%V\"",
                                &b->plan);
        }
    }

    ref = obmcf->refs.elts;
    partner = obmcf->partners.elts;

    if (b->present & NGX_HTTP_OPENBANK_ADMIN_SCOPES) {
        s = b->scopes.elts;

        for (k = 0; k < b->scopes.nelts; k++) {
            found = 0;

            for (i = 0; !found && i < obmcf->refs.nelts; i++) {
                found = (ngx_strcmp(ref[i].directive.data, "openbank_scope")
                         == 0
                         && ref[i].name.len == s[k].len
                         && ngx_strncmp(ref[i].name.data, s[k].data,
                                        s[k].len) == 0);
            }

            for (i = 0; !found && i < obmcf->partners.nelts; i++) {
                ps = partner[i].scopes.elts;

                for (m = 0; !found && m < partner[i].scopes.nelts; m++) {
                    found = (ps[m].len == s[k].len
                             && ngx_strncmp(ps[m].data, s[k].data, s[k].len)
                                == 0);
                }
            }

            if (!found) {
                return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                NGX_HTTP_OPENBANK_PROBLEM_INVALID_BODY,
                                "\"scopes\": no location or partner knows "
                                "the scope \"%V\"", &s[k]);
            }
        }
    }

    if (b->present & NGX_HTTP_OPENBANK_ADMIN_QUOTAS) {
        quota = b->quotas.elts;

        for (k = 0; k < b->quotas.nelts; k++) {
            found = 0;

            for (i = 0; !found && i < obmcf->refs.nelts; i++) {
                found = (ngx_strcmp(ref[i].directive.data,
                                    "openbank_product") == 0
                         && ref[i].name.len == quota[k].product.len
                         && ngx_strncmp(ref[i].name.data,
                                        quota[k].product.data,
                                        quota[k].product.len) == 0);
            }

            for (i = 0; !found && i < obmcf->plans.nelts; i++) {
                pq = plan[i].quotas.elts;

                for (m = 0; !found && m < plan[i].quotas.nelts; m++) {
                    found = (pq[m].product.len == quota[k].product.len
                             && ngx_strncmp(pq[m].product.data,
                                            quota[k].product.data,
                                            quota[k].product.len) == 0);
                }
            }

            if (!found) {
                return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                NGX_HTTP_OPENBANK_PROBLEM_INVALID_BODY,
                                "\"quotas\": no location or plan knows the "
                                "product \"%V\"", &quota[k].product);
            }
        }
    }

    return NGX_OK;
}


/* GET /admin/partners?after=&limit= */

static ngx_int_t
ngx_http_openbank_admin_list(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    ngx_int_t                           rc;
    ngx_str_t                           after, body, name;
    ngx_uint_t                          i, n, limit, shown;
    ngx_array_t                         recs, all;
    ngx_http_openbank_out_t             o;
    ngx_http_openbank_partner_t        *partner;
    ngx_http_openbank_admin_rec_t      *rec;
    ngx_http_openbank_main_conf_t      *obmcf;
    ngx_http_openbank_admin_partner_t  *p, *last;

    rc = ngx_http_openbank_admin_page(r, ctx, &after, &limit);
    if (rc != NGX_OK) {
        return rc;
    }

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    if (ngx_http_openbank_registry_collect(r, 'p', &recs) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = obmcf->partners.nelts + recs.nelts;

    if (ngx_array_init(&all, r->pool, n + 1,
                       sizeof(ngx_http_openbank_admin_partner_t))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    partner = obmcf->partners.elts;

    for (i = 0; i < obmcf->partners.nelts; i++) {
        if (ngx_http_openbank_admin_find(r, &partner[i].name,
                                         ngx_array_push(&all))
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    rec = recs.elts;

    for (i = 0; i < recs.nelts; i++) {
        name.data = rec[i].key.data + 1;
        name.len = rec[i].key.len - 1;

        p = ngx_array_push(&all);

        if (p == NULL
            || ngx_http_openbank_admin_decode(&name, &rec[i].value, p)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    ngx_qsort(all.elts, all.nelts, sizeof(ngx_http_openbank_admin_partner_t),
              ngx_http_openbank_admin_cmp);

    ngx_http_openbank_out_init(&o, r->pool);
    ngx_http_openbank_out_raw(&o, "{\"partners\":[");

    p = all.elts;
    last = NULL;
    shown = 0;

    for (i = 0; i < all.nelts && shown < limit; i++) {
        if (after.len
            && ngx_memn2cmp(p[i].name.data, after.data, p[i].name.len,
                            after.len) <= 0)
        {
            continue;
        }

        if (shown++) {
            ngx_http_openbank_out_raw(&o, ",");
        }

        ngx_http_openbank_admin_partner_json(&o, &p[i]);
        last = &p[i];
    }

    ngx_http_openbank_out_raw(&o, "],\"next\":");

    if (last && last < &p[all.nelts - 1]) {
        ngx_http_openbank_out_str(&o, &last->name);

    } else {
        ngx_http_openbank_out_raw(&o, "null");
    }

    ngx_http_openbank_out_raw(&o, "}\n");

    if (o.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = o.start;
    body.len = o.pos - o.start;

    return ngx_http_openbank_admin_send(r, NGX_HTTP_OK, &body);
}


/*
 * A partner by name: NGX_OK (static or registry), NGX_DECLINED, none;
 * NGX_ERROR.
 */

/* the partner of the path: NGX_OK, or the answer (404, 500) to return */

static ngx_int_t
ngx_http_openbank_admin_partner(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_t *a,
    ngx_http_openbank_admin_partner_t *p)
{
    ngx_int_t  rc;

    rc = ngx_http_openbank_admin_find(r, &a->name, p);

    if (rc == NGX_DECLINED) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_NOT_FOUND,
                                        NGX_HTTP_OPENBANK_PROBLEM_NOT_FOUND,
                                        "no partner \"%V\"", &a->name);
    }

    return (rc == NGX_OK) ? NGX_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;
}


static ngx_int_t
ngx_http_openbank_admin_find(ngx_http_request_t *r, ngx_str_t *name,
    ngx_http_openbank_admin_partner_t *p)
{
    u_char                         *k;
    ngx_int_t                       rc;
    ngx_str_t                       key, value;
    ngx_uint_t                      i;
    ngx_http_openbank_partner_t    *partner;
    ngx_http_openbank_main_conf_t  *obmcf;

    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(p, sizeof(ngx_http_openbank_admin_partner_t));

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    partner = obmcf->partners.elts;

    for (i = 0; i < obmcf->partners.nelts; i++) {
        if (partner[i].name.len == name->len
            && ngx_strncmp(partner[i].name.data, name->data, name->len) == 0)
        {
            p->name = partner[i].name;
            p->plan = partner[i].plan_name;
            p->client_id = partner[i].client_id;
            p->scope_list = &partner[i].scopes;
            p->quota_list = &partner[i].quotas;
            p->created = -1;
            return NGX_OK;
        }
    }

    k = ngx_pnalloc(r->pool, name->len + 1);
    if (k == NULL) {
        return NGX_ERROR;
    }

    k[0] = 'p';
    ngx_memcpy(k + 1, name->data, name->len);
    key.data = k;
    key.len = name->len + 1;

    rc = ngx_http_openbank_registry_get(r, &key, &value);
    if (rc != NGX_OK) {
        return rc;
    }

    key.data++;
    key.len--;

    return ngx_http_openbank_admin_decode(&key, &value, p);
}


static ngx_int_t
ngx_http_openbank_admin_decode(ngx_str_t *name, ngx_str_t *value,
    ngx_http_openbank_admin_partner_t *p)
{
    u_char                             *s;
    ngx_http_openbank_reg_partner_v_t   pv;

    ngx_memzero(p, sizeof(ngx_http_openbank_admin_partner_t));

    p->name = *name;
    p->registry = 1;

    if (value->len < sizeof(pv)) {
        return NGX_OK;
    }

    ngx_memcpy(&pv, value->data, sizeof(pv));

    if (value->len < sizeof(pv) + pv.plan_len + pv.client_id_len
                     + pv.scopes_len + pv.quotas_len)
    {
        return NGX_OK;
    }

    s = value->data + sizeof(pv);

    p->created = pv.created;
    p->status = pv.status;
    p->plan.data = s;
    p->plan.len = pv.plan_len;
    s += pv.plan_len;
    p->client_id.data = s;
    p->client_id.len = pv.client_id_len;
    s += pv.client_id_len;
    p->scopes.data = s;
    p->scopes.len = pv.scopes_len;
    s += pv.scopes_len;
    p->quotas.data = s;
    p->quotas.len = pv.quotas_len;

    return NGX_OK;
}


static void
ngx_http_openbank_admin_partner_json(ngx_http_openbank_out_t *o,
    ngx_http_openbank_admin_partner_t *p)
{
    u_char                     *s, *q, *sp, *last;
    ngx_str_t                   one, *list;
    ngx_uint_t                  i, n;
    ngx_http_openbank_quota_t  *quota;

    ngx_http_openbank_out_raw(o, "{\"name\":");
    ngx_http_openbank_out_str(o, &p->name);
    ngx_http_openbank_out_raw(o, ",\"source\":\"%s\",\"plan\":",
                              p->registry ? "registry" : "config");
    ngx_http_openbank_out_str(o, &p->plan);
    ngx_http_openbank_out_raw(o, ",\"scopes\":[");

    n = 0;

    if (p->scope_list) {
        list = p->scope_list->elts;

        for (i = 0; i < p->scope_list->nelts; i++) {
            ngx_http_openbank_out_raw(o, n++ ? "," : "");
            ngx_http_openbank_out_str(o, &list[i]);
        }

    } else {
        last = p->scopes.data + p->scopes.len;

        for (s = p->scopes.data; s < last; s = q + 1) {
            q = ngx_strlchr(s, last, ' ');
            if (q == NULL) {
                q = last;
            }

            one.data = s;
            one.len = q - s;

            ngx_http_openbank_out_raw(o, n++ ? "," : "");
            ngx_http_openbank_out_str(o, &one);
        }
    }

    ngx_http_openbank_out_raw(o, "],\"status\":\"%s\",\"client_id\":",
                              p->status == NGX_HTTP_OPENBANK_REG_SUSPENDED
                              ? "suspended" : "active");

    if (p->client_id.len) {
        ngx_http_openbank_out_str(o, &p->client_id);

    } else {
        ngx_http_openbank_out_raw(o, "null");
    }

    ngx_http_openbank_out_raw(o, ",\"created_at\":");
    ngx_http_openbank_out_time(o, p->created);
    ngx_http_openbank_out_raw(o, ",\"quotas\":{");

    n = 0;

    if (p->quota_list) {
        quota = p->quota_list->elts;

        for (i = 0; i < p->quota_list->nelts; i++) {
            ngx_http_openbank_out_raw(o, n++ ? "," : "");
            ngx_http_openbank_out_str(o, &quota[i].product);
            ngx_http_openbank_out_raw(o, ":\"%ui/%s\"", quota[i].limit,
                                      quota[i].window
                                      == NGX_HTTP_OPENBANK_WINDOW_DAY
                                      ? "day" : "month");
        }

    } else {
        last = p->quotas.data + p->quotas.len;

        for (s = p->quotas.data; s < last; s = q + 1) {
            q = ngx_strlchr(s, last, '\n');
            if (q == NULL) {
                q = last;
            }

            sp = ngx_strlchr(s, q, ' ');
            if (sp == NULL) {
                continue;
            }

            one.data = s;
            one.len = sp - s;

            ngx_http_openbank_out_raw(o, n++ ? "," : "");
            ngx_http_openbank_out_str(o, &one);

            one.data = sp + 1;
            one.len = q - (sp + 1);

            ngx_http_openbank_out_raw(o, ":");
            ngx_http_openbank_out_str(o, &one);
        }
    }

    ngx_http_openbank_out_raw(o, "}}");
}


/* GET /admin/partners/{name} */

static ngx_int_t
ngx_http_openbank_admin_show(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_t *a)
{
    ngx_int_t                           rc;
    ngx_str_t                           body;
    ngx_http_openbank_out_t             o;
    ngx_http_openbank_admin_partner_t   p;

    rc = ngx_http_openbank_admin_partner(r, ctx, a, &p);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_openbank_out_init(&o, r->pool);
    ngx_http_openbank_admin_partner_json(&o, &p);
    ngx_http_openbank_out_raw(&o, "\n");

    if (o.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = o.start;
    body.len = o.pos - o.start;

    return ngx_http_openbank_admin_send(r, NGX_HTTP_OK, &body);
}


/* the record of a registry partner: its head, then its strings */

static ngx_int_t
ngx_http_openbank_admin_partner_value(ngx_http_request_t *r,
    ngx_http_openbank_admin_partner_t *p, ngx_str_t *value)
{
    u_char                             *s;
    size_t                              len;
    ngx_http_openbank_reg_partner_v_t   pv;

    len = sizeof(pv) + p->plan.len + p->client_id.len + p->scopes.len
          + p->quotas.len;

    if (len > NGX_HTTP_OPENBANK_REG_VALUE_MAX) {
        return NGX_DECLINED;
    }

    value->data = ngx_pnalloc(r->pool, len);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&pv, sizeof(pv));
    pv.created = p->created;
    pv.status = (uint32_t) p->status;
    pv.plan_len = (uint16_t) p->plan.len;
    pv.client_id_len = (uint16_t) p->client_id.len;
    pv.scopes_len = (uint16_t) p->scopes.len;
    pv.quotas_len = (uint16_t) p->quotas.len;

    s = ngx_cpymem(value->data, &pv, sizeof(pv));
    s = ngx_cpymem(s, p->plan.data, p->plan.len);
    s = ngx_cpymem(s, p->client_id.data, p->client_id.len);
    s = ngx_cpymem(s, p->scopes.data, p->scopes.len);
    s = ngx_cpymem(s, p->quotas.data, p->quotas.len);

    value->len = s - value->data;

    return NGX_OK;
}


/* the body's scopes and quotas into the record's text */

static ngx_int_t
ngx_http_openbank_admin_texts(ngx_http_request_t *r,
    ngx_http_openbank_admin_body_t *b, ngx_http_openbank_admin_partner_t *p)
{
    u_char                     *s;
    size_t                      len;
    ngx_str_t                  *sc;
    ngx_uint_t                  i;
    ngx_http_openbank_quota_t  *quota;

    if (b->present & NGX_HTTP_OPENBANK_ADMIN_SCOPES) {
        sc = b->scopes.elts;
        len = 0;

        for (i = 0; i < b->scopes.nelts; i++) {
            len += sc[i].len + 1;
        }

        p->scopes.data = ngx_pnalloc(r->pool, len);
        if (p->scopes.data == NULL) {
            return NGX_ERROR;
        }

        s = p->scopes.data;

        for (i = 0; i < b->scopes.nelts; i++) {
            if (i) {
                *s++ = ' ';
            }

            s = ngx_cpymem(s, sc[i].data, sc[i].len);
        }

        p->scopes.len = s - p->scopes.data;
    }

    if (b->present & NGX_HTTP_OPENBANK_ADMIN_QUOTAS) {
        quota = b->quotas.elts;
        len = 0;

        for (i = 0; i < b->quotas.nelts; i++) {
            len += quota[i].product.len + NGX_INT_T_LEN + 8;
        }

        p->quotas.data = ngx_pnalloc(r->pool, len + 1);
        if (p->quotas.data == NULL) {
            return NGX_ERROR;
        }

        s = p->quotas.data;

        for (i = 0; i < b->quotas.nelts; i++) {
            s = ngx_sprintf(s, "%s%V %ui/%s", i ? "\n" : "",
                            &quota[i].product, quota[i].limit,
                            quota[i].window == NGX_HTTP_OPENBANK_WINDOW_DAY
                            ? "day" : "month");
        }

        p->quotas.len = s - p->quotas.data;
    }

    return NGX_OK;
}


/* POST /admin/partners */

static ngx_int_t
ngx_http_openbank_admin_create(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *body)
{
    ngx_int_t                           rc;
    ngx_str_t                           answer;
    ngx_http_openbank_out_t             o;
    ngx_http_openbank_reg_op_t          ops[2];
    ngx_http_openbank_admin_body_t      b;
    ngx_http_openbank_main_conf_t      *obmcf;
    ngx_http_openbank_admin_partner_t   p;

    rc = ngx_http_openbank_admin_parse_body(r, ctx, body,
                                            NGX_HTTP_OPENBANK_ADMIN_NAME
                                            |NGX_HTTP_OPENBANK_ADMIN_PLAN
                                            |NGX_HTTP_OPENBANK_ADMIN_SCOPES
                                            |NGX_HTTP_OPENBANK_ADMIN_CLIENT_ID
                                            |NGX_HTTP_OPENBANK_ADMIN_QUOTAS,
                                            &b);
    if (rc != NGX_OK) {
        return rc;
    }

    if ((b.present & (NGX_HTTP_OPENBANK_ADMIN_NAME
                      |NGX_HTTP_OPENBANK_ADMIN_PLAN
                      |NGX_HTTP_OPENBANK_ADMIN_SCOPES))
        != (NGX_HTTP_OPENBANK_ADMIN_NAME|NGX_HTTP_OPENBANK_ADMIN_PLAN
            |NGX_HTTP_OPENBANK_ADMIN_SCOPES))
    {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_BODY,
                                        "\"%s\" is required",
                                        !(b.present
                                          & NGX_HTTP_OPENBANK_ADMIN_NAME)
                                        ? "name"
                                        : !(b.present
                                            & NGX_HTTP_OPENBANK_ADMIN_PLAN)
                                          ? "plan" : "scopes");
    }

    rc = ngx_http_openbank_admin_check(r, ctx, &b);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!(b.present & NGX_HTTP_OPENBANK_ADMIN_CLIENT_ID)) {
        b.client_id = b.name;
    }

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    if (ngx_http_openbank_registry_taken(obmcf, &b.name, NULL) != NGX_OK) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_CONFLICT,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_STATE,
                                        "the name \"%V\" is taken by a "
                                        "partner of the configuration",
                                        &b.name);
    }

    if (ngx_http_openbank_registry_taken(obmcf, NULL, &b.client_id)
        != NGX_OK)
    {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_CONFLICT,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_STATE,
                                        "the client_id \"%V\" is taken by a "
                                        "partner of the configuration",
                                        &b.client_id);
    }

    /* in cluster mode, the name and the client id claimed first */

    rc = ngx_http_openbank_admin_claim(r, ctx, &b.name, &b.client_id, body);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_memzero(&p, sizeof(p));
    p.name = b.name;
    p.plan = b.plan;
    p.client_id = b.client_id;
    p.created = ngx_time();
    p.status = NGX_HTTP_OPENBANK_REG_ACTIVE;
    p.registry = 1;

    if (ngx_http_openbank_admin_texts(r, &b, &p) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ops[0].op = NGX_HTTP_OPENBANK_REG_PUT_NEW;
    ops[0].key.len = b.name.len + 1;
    ops[0].key.data = ngx_pnalloc(r->pool, ops[0].key.len);
    if (ops[0].key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ops[0].key.data[0] = 'p';
    ngx_memcpy(ops[0].key.data + 1, b.name.data, b.name.len);

    rc = ngx_http_openbank_admin_partner_value(r, &p, &ops[0].value);
    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_openbank_admin_audit_op(r, &ops[1], "partner.create",
                                         &b.name)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_openbank_out_init(&o, r->pool);
    ngx_http_openbank_admin_partner_json(&o, &p);
    ngx_http_openbank_out_raw(&o, "\n");

    if (o.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    answer.data = o.start;
    answer.len = o.pos - o.start;

    return ngx_http_openbank_admin_commit(r, ctx, ops, 2, NGX_HTTP_CREATED,
                                          &answer);
}


/*
 * The partner's name and client id claimed across the cluster
 * (docs/cluster.md, "Conflicts"): NGX_OK, else what the request answers
 * (NGX_AGAIN: it waits for Redis, and runs again once answered).
 */

static ngx_int_t
ngx_http_openbank_admin_claim(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *name, ngx_str_t *client_id,
    ngx_str_t *body)
{
    ngx_int_t   rc;
    ngx_str_t   keys[2], taken;

    keys[0].data = ngx_pnalloc(r->pool, 1 + name->len);
    keys[1].data = ngx_pnalloc(r->pool, 1 + client_id->len);

    if (keys[0].data == NULL || keys[1].data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    keys[0].data[0] = 'p';
    ngx_memcpy(keys[0].data + 1, name->data, name->len);
    keys[0].len = 1 + name->len;

    keys[1].data[0] = 'i';
    ngx_memcpy(keys[1].data + 1, client_id->data, client_id->len);
    keys[1].len = 1 + client_id->len;

    rc = ngx_http_openbank_sync_claim(r, ctx, keys, 2,
                                      ngx_http_openbank_admin_create, body,
                                      &taken);
    switch (rc) {

    case NGX_OK:
    case NGX_AGAIN:
        return rc;

    case NGX_DECLINED:
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_CONFLICT,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_STATE,
                                        "%s is taken",
                                        taken.data[0] == 'p'
                                        ? "the partner's name"
                                        : "the client_id");

    case NGX_BUSY:
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
                                "the cluster cannot answer: a partner is "
                                "created once its name can be claimed");

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}



/* PATCH /admin/partners/{name}: plan, scopes, status, quotas */

static ngx_int_t
ngx_http_openbank_admin_patch(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_t *a,
    ngx_str_t *body)
{
    const char                         *action;
    ngx_int_t                           rc;
    ngx_str_t                           answer;
    ngx_http_openbank_out_t             o;
    ngx_http_openbank_reg_op_t          ops[2];
    ngx_http_openbank_admin_body_t      b;
    ngx_http_openbank_admin_partner_t   p;

    rc = ngx_http_openbank_admin_parse_body(r, ctx, body,
                                            NGX_HTTP_OPENBANK_ADMIN_PLAN
                                            |NGX_HTTP_OPENBANK_ADMIN_SCOPES
                                            |NGX_HTTP_OPENBANK_ADMIN_STATUS
                                            |NGX_HTTP_OPENBANK_ADMIN_QUOTAS,
                                            &b);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_openbank_admin_partner(r, ctx, a, &p);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!p.registry) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_CONFLICT,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_STATE,
                                        "the partner \"%V\" is of the "
                                        "configuration: change it there",
                                        &a->name);
    }

    if (b.present == 0) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_BODY,
                                        "nothing to change: give plan, "
                                        "scopes, status or quotas");
    }

    rc = ngx_http_openbank_admin_check(r, ctx, &b);
    if (rc != NGX_OK) {
        return rc;
    }

    if (b.present & NGX_HTTP_OPENBANK_ADMIN_PLAN) {
        p.plan = b.plan;
    }

    if (b.present & NGX_HTTP_OPENBANK_ADMIN_STATUS) {
        p.status = b.status;
    }

    if (ngx_http_openbank_admin_texts(r, &b, &p) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ops[0].op = NGX_HTTP_OPENBANK_REG_PUT;
    ops[0].key.len = a->name.len + 1;
    ops[0].key.data = ngx_pnalloc(r->pool, ops[0].key.len);
    if (ops[0].key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ops[0].key.data[0] = 'p';
    ngx_memcpy(ops[0].key.data + 1, a->name.data, a->name.len);

    if (ngx_http_openbank_admin_partner_value(r, &p, &ops[0].value)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    action = "partner.update";

    if (b.present == NGX_HTTP_OPENBANK_ADMIN_STATUS) {
        action = (b.status == NGX_HTTP_OPENBANK_REG_SUSPENDED)
                 ? "partner.suspend" : "partner.activate";
    }

    if (ngx_http_openbank_admin_audit_op(r, &ops[1], action, &a->name)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_openbank_out_init(&o, r->pool);
    ngx_http_openbank_admin_partner_json(&o, &p);
    ngx_http_openbank_out_raw(&o, "\n");

    if (o.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    answer.data = o.start;
    answer.len = o.pos - o.start;

    return ngx_http_openbank_admin_commit(r, ctx, ops, 2, NGX_HTTP_OK,
                                          &answer);
}


/* DELETE /admin/partners/{name}: its credentials go with it */

static ngx_int_t
ngx_http_openbank_admin_delete(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_t *a)
{
    ngx_int_t                           rc;
    ngx_str_t                           answer;
    ngx_http_openbank_reg_op_t          ops[2];
    ngx_http_openbank_admin_partner_t   p;

    rc = ngx_http_openbank_admin_partner(r, ctx, a, &p);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!p.registry) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_CONFLICT,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_STATE,
                                        "the partner \"%V\" is of the "
                                        "configuration: remove it there",
                                        &a->name);
    }

    ops[0].op = NGX_HTTP_OPENBANK_REG_DEL_ALL;
    ops[0].key.len = a->name.len + 1;
    ops[0].key.data = ngx_pnalloc(r->pool, ops[0].key.len);
    if (ops[0].key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ops[0].key.data[0] = 'p';
    ngx_memcpy(ops[0].key.data + 1, a->name.data, a->name.len);
    ngx_str_null(&ops[0].value);

    if (ngx_http_openbank_admin_audit_op(r, &ops[1], "partner.delete",
                                         &a->name)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_null(&answer);

    return ngx_http_openbank_admin_commit(r, ctx, ops, 2, NGX_HTTP_NO_CONTENT,
                                          &answer);
}


/* POST /admin/partners/{name}/credentials */

static ngx_int_t
ngx_http_openbank_admin_cred_create(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_t *a,
    ngx_str_t *body)
{
    u_char                             *s, *der, hex[17], rnd[8],
                                        secret[64], err[256];
    int                                 dlen;
    BIO                                *bio;
    X509                               *x509;
    size_t                              len;
    ngx_int_t                           rc;
    ngx_str_t                           answer, target, sec, hint, data,
                                        aad, *type;
    ngx_uint_t                          i;
    ngx_pool_t                         *tmp;
    ngx_http_openbank_jwk_t            *jwk;
    ngx_http_openbank_jwks_t            jwks;
    ngx_http_openbank_out_t             o;
    ngx_http_openbank_reg_op_t          ops[2];
    ngx_http_openbank_admin_body_t      b;
    ngx_http_openbank_partner_t        *partner;
    ngx_http_openbank_main_conf_t      *obmcf;
    ngx_http_openbank_reg_cred_v_t      cv;
    ngx_http_openbank_admin_partner_t   p;

    rc = ngx_http_openbank_admin_parse_body(r, ctx, body,
                                           NGX_HTTP_OPENBANK_ADMIN_TYPE
                                           |NGX_HTTP_OPENBANK_ADMIN_EXPIRES
                                           |NGX_HTTP_OPENBANK_ADMIN_JWKS
                                           |NGX_HTTP_OPENBANK_ADMIN_CERTIFICATE
                                           |NGX_HTTP_OPENBANK_ADMIN_SHA256,
                                           &b);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_openbank_admin_partner(r, ctx, a, &p);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!p.registry) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_CONFLICT,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_STATE,
                                        "the partner \"%V\" is of the "
                                        "configuration: its credentials are "
                                        "there", &a->name);
    }

    if (b.type == 0) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_BODY,
                                        "\"type\" is required");
    }

    type = ngx_http_openbank_admin_type_name(b.type);

    if ((b.present & NGX_HTTP_OPENBANK_ADMIN_JWKS)
        != (b.type == NGX_HTTP_OPENBANK_CRED_JWKS
            ? NGX_HTTP_OPENBANK_ADMIN_JWKS : 0))
    {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_BODY,
                                        "\"jwks\" is required for the type "
                                        "jwks, and only for it");
    }

    if (b.type == NGX_HTTP_OPENBANK_CRED_CERTIFICATE
        ? !(b.present & NGX_HTTP_OPENBANK_ADMIN_CERTIFICATE)
          == !(b.present & NGX_HTTP_OPENBANK_ADMIN_SHA256)
        : (b.present & (NGX_HTTP_OPENBANK_ADMIN_CERTIFICATE
                        |NGX_HTTP_OPENBANK_ADMIN_SHA256)) != 0)
    {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_BODY,
                                        "the type certificate takes one of "
                                        "\"certificate\" and \"sha256\", "
                                        "and no other type takes them");
    }

    if ((b.present & NGX_HTTP_OPENBANK_ADMIN_EXPIRES)
        && b.expires_at <= ngx_time())
    {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_BODY,
                                        "\"expires_at\" is in the past");
    }

    if (b.type == NGX_HTTP_OPENBANK_CRED_CLIENT_SECRET
        && p.client_id.len == 0)
    {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_CONFLICT,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_STATE,
                                        "the partner \"%V\" has no "
                                        "client_id", &a->name);
    }

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        ERR_clear_error();
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_hex_dump(hex, rnd, sizeof(rnd));
    hex[16] = '\0';

    ngx_memzero(&cv, sizeof(cv));
    cv.created = ngx_time();
    cv.expires = (b.present & NGX_HTTP_OPENBANK_ADMIN_EXPIRES)
                 ? b.expires_at : 0;
    cv.type = (uint32_t) b.type;

    ngx_str_null(&sec);
    ngx_str_null(&data);
    ngx_str_null(&hint);

    switch (b.type) {

    case NGX_HTTP_OPENBANK_CRED_API_KEY:
    case NGX_HTTP_OPENBANK_CRED_CLIENT_SECRET:
    case NGX_HTTP_OPENBANK_CRED_HMAC_SECRET:
        if (ngx_http_openbank_admin_secret(secret,
                                           b.type
                                           == NGX_HTTP_OPENBANK_CRED_API_KEY
                                           ? "obk_" : "")
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        sec.data = secret;
        sec.len = ngx_strlen(secret);
        hint.data = secret;
        hint.len = 8;

        ngx_http_openbank_sha256(cv.hash, sec.data, sec.len);

        if (b.type == NGX_HTTP_OPENBANK_CRED_HMAC_SECRET) {
            ngx_memzero(cv.hash, sizeof(cv.hash));

            data.len = NGX_HTTP_OPENBANK_SEAL_IV + NGX_HTTP_OPENBANK_SEAL_TAG
                       + sec.len;
            data.data = ngx_pnalloc(r->pool, data.len);
            if (data.data == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            aad.data = hex;
            aad.len = 16;

            rc = ngx_http_openbank_registry_seal(data.data, sec.data,
                                                 sec.len, &aad);
            if (rc != NGX_OK) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "openbank: an HMAC secret cannot be sealed");
                return ngx_http_openbank_refuse(r, ctx,
                                NGX_HTTP_SERVICE_UNAVAILABLE,
                                NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
                                "the registry's sealing key is not there");
            }
        }

        if (b.type == NGX_HTTP_OPENBANK_CRED_API_KEY
            && ngx_http_openbank_partner_by_api_key(obmcf, cv.hash))
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        break;

    case NGX_HTTP_OPENBANK_CRED_JWKS:
        tmp = ngx_create_pool(4096, r->connection->log);
        if (tmp == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_http_openbank_jwks_parse(tmp, &b.jwks, &jwks, err,
                                         sizeof(err))
            != NGX_OK)
        {
            ngx_destroy_pool(tmp);
            return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_BODY,
                                        "\"jwks\": %s", err);
        }

        jwk = jwks.keys.elts;
        len = 0;

        for (i = 0; i < jwks.keys.nelts; i++) {
            len += jwk[i].kid.len + 1;
        }

        hint.data = ngx_pnalloc(r->pool, len + 1);
        if (hint.data == NULL) {
            ngx_destroy_pool(tmp);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        s = hint.data;

        for (i = 0; i < jwks.keys.nelts; i++) {
            if (i) {
                *s++ = ',';
            }

            s = ngx_cpymem(s, jwk[i].kid.data, jwk[i].kid.len);
        }

        hint.len = ngx_min((size_t) (s - hint.data), 1024);
        data = b.jwks;

        /* a kid names one key of the partner */

        partner = ngx_http_openbank_registry_client(r, &p.client_id);

        for (i = 0; partner && partner->jwks && i < jwks.keys.nelts; i++) {
            if (ngx_http_openbank_jwks_find(partner->jwks, &jwk[i].kid)) {
                rc = ngx_http_openbank_refuse(r, ctx, NGX_HTTP_CONFLICT,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_STATE,
                                        "the kid \"%V\" is in another JWKS "
                                        "of the partner: delete that one "
                                        "first, or give the key another kid",
                                        &jwk[i].kid);
                ngx_destroy_pool(tmp);
                return rc;
            }
        }

        ngx_destroy_pool(tmp);
        break;

    default: /* NGX_HTTP_OPENBANK_CRED_CERTIFICATE */

        if (b.present & NGX_HTTP_OPENBANK_ADMIN_SHA256) {
            ngx_memcpy(cv.hash, b.sha256, sizeof(cv.hash));

        } else {
            bio = BIO_new_mem_buf(b.certificate.data,
                                  (int) b.certificate.len);
            x509 = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

            if (bio) {
                BIO_free(bio);
            }

            der = NULL;
            dlen = x509 ? i2d_X509(x509, &der) : -1;

            if (x509) {
                X509_free(x509);
            }

            ERR_clear_error();

            if (dlen <= 0) {
                return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_BODY,
                                        "\"certificate\" is not a PEM "
                                        "X.509 certificate");
            }

            ngx_http_openbank_sha256(cv.hash, der, dlen);
            OPENSSL_free(der);
        }

        partner = obmcf->partners.elts;

        for (i = 0; i < obmcf->partners.nelts; i++) {
            if (partner[i].has_certificate
                && ngx_memcmp(partner[i].certificate, cv.hash,
                              sizeof(cv.hash)) == 0)
            {
                return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_CONFLICT,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_STATE,
                                        "the certificate is the partner "
                                        "\"%V\"'s", &partner[i].name);
            }
        }

        hint.data = ngx_pnalloc(r->pool, 7 + 16);
        if (hint.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        s = ngx_cpymem(hint.data, "sha256:", 7);
        s = ngx_hex_dump(s, cv.hash, 8);
        hint.len = s - hint.data;
        break;
    }

    cv.partner_len = (uint16_t) a->name.len;
    cv.hint_len = (uint16_t) hint.len;
    cv.data_len = (uint32_t) data.len;

    ops[0].op = NGX_HTTP_OPENBANK_REG_PUT_NEW;
    ops[0].key.len = 17;
    ops[0].key.data = ngx_pnalloc(r->pool, 17);
    ops[0].value.len = sizeof(cv) + a->name.len + hint.len + data.len;
    ops[0].value.data = ngx_pnalloc(r->pool, ops[0].value.len);

    if (ops[0].key.data == NULL || ops[0].value.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ops[0].key.data[0] = 'c';
    ngx_memcpy(ops[0].key.data + 1, hex, 16);

    s = ngx_cpymem(ops[0].value.data, &cv, sizeof(cv));
    s = ngx_cpymem(s, a->name.data, a->name.len);
    s = ngx_cpymem(s, hint.data, hint.len);
    ngx_memcpy(s, data.data, data.len);

    target.len = a->name.len + sizeof("/cred_") - 1 + 16;
    target.data = ngx_pnalloc(r->pool, target.len);
    if (target.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(target.data, "%V/cred_%s", &a->name, hex);

    if (ngx_http_openbank_admin_audit_op(r, &ops[1], "credential.create",
                                         &target)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the answer: the secret is in it, and nowhere else */

    ngx_http_openbank_out_init(&o, r->pool);
    ngx_http_openbank_out_raw(&o, "{\"id\":\"cred_%s\",\"type\":\"%V\"",
                              hex, type);

    switch (b.type) {

    case NGX_HTTP_OPENBANK_CRED_API_KEY:
        ngx_http_openbank_out_raw(&o, ",\"api_key\":");
        ngx_http_openbank_out_str(&o, &sec);
        break;

    case NGX_HTTP_OPENBANK_CRED_CLIENT_SECRET:
        ngx_http_openbank_out_raw(&o, ",\"client_id\":");
        ngx_http_openbank_out_str(&o, &p.client_id);
        ngx_http_openbank_out_raw(&o, ",\"client_secret\":");
        ngx_http_openbank_out_str(&o, &sec);
        break;

    case NGX_HTTP_OPENBANK_CRED_HMAC_SECRET:
        ngx_http_openbank_out_raw(&o, ",\"hmac_secret\":");
        ngx_http_openbank_out_str(&o, &sec);
        break;

    default:
        break;
    }

    ngx_http_openbank_out_raw(&o, ",\"created_at\":");
    ngx_http_openbank_out_time(&o, cv.created);
    ngx_http_openbank_out_raw(&o, ",\"expires_at\":");
    ngx_http_openbank_out_time(&o, cv.expires ? cv.expires : -1);
    ngx_http_openbank_out_raw(&o, ",\"hint\":");
    ngx_http_openbank_out_str(&o, &hint);
    ngx_http_openbank_out_raw(&o, "}\n");

    ngx_explicit_memzero(secret, sizeof(secret));

    if (o.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    answer.data = o.start;
    answer.len = o.pos - o.start;

    return ngx_http_openbank_admin_commit(r, ctx, ops, 2, NGX_HTTP_CREATED,
                                          &answer);
}


/* GET /admin/partners/{name}/credentials */

static ngx_int_t
ngx_http_openbank_admin_cred_list(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_t *a)
{
    ngx_int_t                           rc;
    ngx_str_t                           body, hint, id;
    ngx_uint_t                          i, n;
    ngx_array_t                         recs;
    ngx_http_openbank_out_t             o;
    ngx_http_openbank_admin_rec_t      *rec;
    ngx_http_openbank_reg_cred_v_t      cv;
    ngx_http_openbank_admin_partner_t   p;

    rc = ngx_http_openbank_admin_partner(r, ctx, a, &p);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_openbank_out_init(&o, r->pool);
    ngx_http_openbank_out_raw(&o, "{\"credentials\":[");

    if (p.registry) {
        if (ngx_http_openbank_registry_collect(r, 'c', &recs) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_qsort(recs.elts, recs.nelts,
                  sizeof(ngx_http_openbank_admin_rec_t),
                  ngx_http_openbank_admin_cmp);

        rec = recs.elts;
        n = 0;

        for (i = 0; i < recs.nelts; i++) {
            if (rec[i].value.len < sizeof(cv) || rec[i].key.len != 17) {
                continue;
            }

            ngx_memcpy(&cv, rec[i].value.data, sizeof(cv));

            if (cv.partner_len != a->name.len
                || rec[i].value.len < sizeof(cv) + cv.partner_len
                                      + cv.hint_len
                || ngx_memcmp(rec[i].value.data + sizeof(cv), a->name.data,
                              a->name.len) != 0)
            {
                continue;
            }

            id.data = rec[i].key.data + 1;
            id.len = 16;
            hint.data = rec[i].value.data + sizeof(cv) + cv.partner_len;
            hint.len = cv.hint_len;

            ngx_http_openbank_out_raw(&o, "%s{\"id\":\"cred_%V\",\"type\":"
                                      "\"%V\",\"created_at\":",
                                      n++ ? "," : "", &id,
                                      ngx_http_openbank_admin_type_name(
                                          cv.type));
            ngx_http_openbank_out_time(&o, cv.created);
            ngx_http_openbank_out_raw(&o, ",\"expires_at\":");
            ngx_http_openbank_out_time(&o, cv.expires ? cv.expires : -1);
            ngx_http_openbank_out_raw(&o, ",\"last_used_at\":");
            ngx_http_openbank_out_time(&o, cv.last_used ? cv.last_used : -1);
            ngx_http_openbank_out_raw(&o, ",\"expired\":%s,\"hint\":",
                                      (cv.expires
                                       && cv.expires <= ngx_time())
                                      ? "true" : "false");
            ngx_http_openbank_out_str(&o, &hint);
            ngx_http_openbank_out_raw(&o, "}");
        }
    }

    ngx_http_openbank_out_raw(&o, "]}\n");

    if (o.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = o.start;
    body.len = o.pos - o.start;

    return ngx_http_openbank_admin_send(r, NGX_HTTP_OK, &body);
}


/* DELETE /admin/partners/{name}/credentials/{id} */

static ngx_int_t
ngx_http_openbank_admin_cred_delete(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_t *a)
{
    ngx_int_t                        rc;
    ngx_str_t                        value, answer, target;
    ngx_http_openbank_reg_op_t       ops[2];
    ngx_http_openbank_reg_cred_v_t   cv;

    ops[0].op = NGX_HTTP_OPENBANK_REG_DEL;
    ops[0].key.len = 17;
    ops[0].key.data = ngx_pnalloc(r->pool, 17);
    if (ops[0].key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ops[0].key.data[0] = 'c';
    ngx_memcpy(ops[0].key.data + 1, a->id.data, 16);
    ngx_str_null(&ops[0].value);

    rc = ngx_http_openbank_registry_get(r, &ops[0].key, &value);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_OK && value.len >= sizeof(cv)) {
        ngx_memcpy(&cv, value.data, sizeof(cv));

        if (cv.partner_len != a->name.len
            || value.len < sizeof(cv) + cv.partner_len
            || ngx_memcmp(value.data + sizeof(cv), a->name.data,
                          a->name.len) != 0)
        {
            rc = NGX_DECLINED;
        }

    } else {
        rc = NGX_DECLINED;
    }

    if (rc != NGX_OK) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_NOT_FOUND,
                                        NGX_HTTP_OPENBANK_PROBLEM_NOT_FOUND,
                                        "the partner \"%V\" has no "
                                        "credential cred_%V", &a->name,
                                        &a->id);
    }

    target.len = a->name.len + sizeof("/cred_") - 1 + 16;
    target.data = ngx_pnalloc(r->pool, target.len);
    if (target.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(target.data, "%V/cred_%V", &a->name, &a->id);

    if (ngx_http_openbank_admin_audit_op(r, &ops[1], "credential.delete",
                                         &target)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_null(&answer);

    return ngx_http_openbank_admin_commit(r, ctx, ops, 2, NGX_HTTP_NO_CONTENT,
                                          &answer);
}


/* GET /admin/partners/{name}/usage?from=&to=: a day for each date */

static ngx_int_t
ngx_http_openbank_admin_usage(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_t *a)
{
    u_char                             *s;
    ngx_int_t                           rc, cluster;
    ngx_str_t                           from, to, body;
    ngx_uint_t                          known;
    ngx_array_t                        *others;
    const char                         *err;
    ngx_http_openbank_admin_partner_t   p;

    /* in cluster mode, the other gateways' counts first */

    others = NULL;

    cluster = ngx_http_openbank_sync_usage(r, ctx, &a->name,
                                      ngx_http_openbank_admin_usage_resume,
                                      &others, (void **) &a);
    if (cluster == NGX_AGAIN) {
        r->main->count++;
        return NGX_DONE;
    }

    if (cluster == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_openbank_admin_find(r, &a->name, &p);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    known = (rc == NGX_OK);

    if (ngx_http_arg(r, (u_char *) "from", 4, &from) != NGX_OK) {
        ngx_str_null(&from);
    }

    if (ngx_http_arg(r, (u_char *) "to", 2, &to) != NGX_OK) {
        ngx_str_null(&to);
    }

    err = NULL;

    rc = ngx_http_openbank_usage_json(r, &a->name, &from, &to, others, &body,
                                      &err);

    if (rc == NGX_DECLINED) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                    NGX_HTTP_OPENBANK_PROBLEM_INVALID_REQUEST,
                                    "%s", err);
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a deleted partner's history stays readable */

    if (!known && rc == NGX_DONE) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_NOT_FOUND,
                                        NGX_HTTP_OPENBANK_PROBLEM_NOT_FOUND,
                                        "no partner \"%V\"", &a->name);
    }

    /* whose counts: every gateway's, or this one's (Redis unavailable) */

    if (cluster == NGX_OK) {
        s = ngx_pnalloc(r->pool, body.len + sizeof(",\"scope\":\"gateway\""));
        if (s == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        body.data = ngx_sprintf(s, "%*s,\"scope\":\"%s\"}", body.len - 1,
                                body.data, others ? "cluster" : "gateway");
        body.len = body.data - s;
        body.data = s;
    }

    return ngx_http_openbank_admin_send(r, NGX_HTTP_OK, &body);
}


/* the cluster's answer is in: the usage again, and the request ends */

static void
ngx_http_openbank_admin_usage_resume(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_array_t                *others;
    ngx_http_openbank_ctx_t    *ctx;
    ngx_http_openbank_admin_t  *a;

    ctx = ngx_http_get_module_ctx(r, ngx_http_openbank_module);

    a = NULL;
    others = NULL;

    (void) ngx_http_openbank_sync_usage(r, ctx, NULL, NULL, &others,
                                        (void **) &a);

    rc = ngx_http_openbank_admin_usage(r, ctx, a);

    ngx_http_finalize_request(r, rc);
}


/*
 * .../webhook-endpoints[/{id}[/test]]: the partner API's routes
 * (ngx_http_openbank_webhooks.c), for the partner of the URI
 */

static ngx_int_t
ngx_http_openbank_admin_webhooks_route(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_t *a, u_char *p,
    u_char *last)
{
    ngx_int_t                    rc;
    ngx_http_openbank_ev_ctx_t  *ec;

    ec = ngx_pcalloc(r->pool, sizeof(ngx_http_openbank_ev_ctx_t));
    if (ec == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->events = ec;
    a->route = NGX_HTTP_OPENBANK_R_WEBHOOKS;

    rc = ngx_http_openbank_webhooks_route(r, ctx, ec, p, last);

    if (ec->bad) {
        a->bad = 1;
    }

    return rc;
}


/*
 * GET, POST .../webhook-endpoints, GET, DELETE .../{id}, POST
 * .../{id}/test: as the partner would, a made or deleted endpoint with
 * its audit event (ngx_http_openbank_admin_webhook_durable())
 */

static ngx_int_t
ngx_http_openbank_admin_webhooks(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_admin_t *a,
    ngx_str_t *body)
{
    ngx_int_t                           rc;
    ngx_http_openbank_ev_ctx_t         *ec;
    ngx_http_openbank_main_conf_t      *obmcf;
    ngx_http_openbank_admin_partner_t   p;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    if (!obmcf->events) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_NOT_FOUND,
                                        NGX_HTTP_OPENBANK_PROBLEM_NOT_FOUND,
                                        "this gateway has no event "
                                        "notifications (docs/webhooks.md)");
    }

    rc = ngx_http_openbank_admin_partner(r, ctx, a, &p);
    if (rc != NGX_OK) {
        return rc;
    }

    ec = ctx->events;
    ec->partner = a->name;
    ec->done = ngx_http_openbank_admin_webhook_durable;

    return ngx_http_openbank_webhooks_dispatch(r, ctx, body);
}


/*
 * A made or deleted endpoint is durable in the events journal: its
 * audit event into the registry's, then the answer
 * (ngx_http_openbank_reply_durable())
 */

static void
ngx_http_openbank_admin_webhook_durable(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_str_t                        target;
    ngx_connection_t                *c;
    ngx_http_openbank_ctx_t         *ctx;
    ngx_http_openbank_reg_op_t       op;
    ngx_http_openbank_ev_ctx_t      *ec;
    ngx_http_openbank_reg_change_t   ch;

    c = r->connection;
    ctx = ngx_http_openbank_find_ctx(r);

    if (ctx == NULL || ctx->admin == NULL || ctx->events == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    ec = ctx->events;

    if (rc != NGX_OK) {
        rc = ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
                                "the change is made but not yet durable: "
                                "the events journal cannot be written");
        goto done;
    }

    target.len = ec->partner.len + sizeof("/we_") - 1 + 16;
    target.data = ngx_pnalloc(r->pool, target.len);
    if (target.data == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    ngx_sprintf(target.data, "%V/we_%016uxL", &ec->partner, ec->id);

    if (ngx_http_openbank_admin_audit_op(r, &op,
                                         ec->status == NGX_HTTP_CREATED
                                         ? "webhook_endpoint.create"
                                         : "webhook_endpoint.delete",
                                         &target)
        != NGX_OK)
    {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    ngx_memzero(&ch, sizeof(ch));
    ch.ops = &op;
    ch.nops = 1;

    ctx->admin->reply.status = ec->status;
    ctx->admin->reply.answer = ec->answer;
    ctx->admin->reply.send = ngx_http_openbank_admin_send;
    ctx->reply = &ctx->admin->reply;

    rc = ngx_http_openbank_registry_change(r, &ch,
                                           ngx_http_openbank_reply_durable);

    if (rc == NGX_AGAIN) {
        return;
    }

    if (ec->answer.len) {
        ngx_explicit_memzero(ec->answer.data, ec->answer.len);
    }

    ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                  "openbank: the audit event of webhook endpoint "
                  "we_%016uxL of \"%V\" cannot be recorded",
                  ec->id, &ec->partner);

    rc = ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
                                "the change is made but its audit event "
                                "cannot be recorded");

done:

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* GET /admin/audit?after=&limit=: oldest first */

static ngx_int_t
ngx_http_openbank_admin_audit(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    ngx_int_t                       rc;
    ngx_str_t                       after, body, id;
    ngx_uint_t                      i, limit, shown;
    ngx_array_t                     recs;
    ngx_http_openbank_out_t         o;
    ngx_http_openbank_admin_rec_t  *rec, *last;

    rc = ngx_http_openbank_admin_page(r, ctx, &after, &limit);
    if (rc != NGX_OK) {
        return rc;
    }

    if (after.len) {
        if (after.len != 20 || ngx_strncmp(after.data, "evt_", 4) != 0) {
            return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                    NGX_HTTP_OPENBANK_PROBLEM_INVALID_REQUEST,
                                    "\"after\" must be an event id "
                                    "(evt_ and 16 hex digits)");
        }

        after.data += 4;
        after.len -= 4;
    }

    if (ngx_http_openbank_registry_collect(r, 'a', &recs) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_qsort(recs.elts, recs.nelts, sizeof(ngx_http_openbank_admin_rec_t),
              ngx_http_openbank_admin_cmp);

    ngx_http_openbank_out_init(&o, r->pool);
    ngx_http_openbank_out_raw(&o, "{\"events\":[");

    rec = recs.elts;
    last = NULL;
    shown = 0;

    for (i = 0; i < recs.nelts && shown < limit; i++) {
        if (rec[i].key.len != 17) {
            continue;
        }

        id.data = rec[i].key.data + 1;
        id.len = 16;

        if (after.len && ngx_memn2cmp(id.data, after.data, 16, after.len)
                         <= 0)
        {
            continue;
        }

        ngx_http_openbank_out_raw(&o, "%s%V", shown++ ? "," : "",
                                  &rec[i].value);
        last = &rec[i];
    }

    ngx_http_openbank_out_raw(&o, "],\"next\":");

    if (last && last < &rec[recs.nelts - 1]) {
        ngx_http_openbank_out_raw(&o, "\"evt_%*s\"", (size_t) 16,
                                  last->key.data + 1);

    } else {
        ngx_http_openbank_out_raw(&o, "null");
    }

    ngx_http_openbank_out_raw(&o, "}\n");

    if (o.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = o.start;
    body.len = o.pos - o.start;

    return ngx_http_openbank_admin_send(r, NGX_HTTP_OK, &body);
}


/* ?after=&limit= */

static ngx_int_t
ngx_http_openbank_admin_page(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *after, ngx_uint_t *limit)
{
    ngx_int_t  n;
    ngx_str_t  value;

    ngx_str_null(after);
    *limit = NGX_HTTP_OPENBANK_ADMIN_LIMIT;

    if (ngx_http_arg(r, (u_char *) "after", 5, &value) == NGX_OK) {
        if (value.len > 64 || ngx_http_openbank_valid_name(&value) != NGX_OK)
        {
            return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                    NGX_HTTP_OPENBANK_PROBLEM_INVALID_REQUEST,
                                    "\"after\" must be a name or an id "
                                    "of the list");
        }

        *after = value;
    }

    if (ngx_http_arg(r, (u_char *) "limit", 5, &value) == NGX_OK) {
        n = ngx_atoi(value.data, value.len);

        if (n < 1 || n > NGX_HTTP_OPENBANK_ADMIN_LIMIT_MAX) {
            return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                    NGX_HTTP_OPENBANK_PROBLEM_INVALID_REQUEST,
                                    "\"limit\" must be 1 to %d",
                                    NGX_HTTP_OPENBANK_ADMIN_LIMIT_MAX);
        }

        *limit = n;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_admin_audit_op(ngx_http_request_t *r,
    ngx_http_openbank_reg_op_t *op, const char *action, ngx_str_t *target)
{
    return ngx_http_openbank_audit_event(r, op, &ngx_http_openbank_admin_actor,
                                         action, target);
}


/* the audit event of a change: time, actor, action, target */

ngx_int_t
ngx_http_openbank_audit_event(ngx_http_request_t *r,
    ngx_http_openbank_reg_op_t *op, ngx_str_t *actor, const char *action,
    ngx_str_t *target)
{
    ngx_http_openbank_out_t  o;

    ngx_http_openbank_out_init(&o, r->pool);
    ngx_http_openbank_out_raw(&o, "\"time\":");
    ngx_http_openbank_out_time(&o, ngx_time());
    ngx_http_openbank_out_raw(&o, ",\"actor\":");
    ngx_http_openbank_out_str(&o, actor);
    ngx_http_openbank_out_raw(&o, ",\"action\":\"%s\",\"target\":", action);
    ngx_http_openbank_out_str(&o, target);
    ngx_http_openbank_out_raw(&o, "}");

    if (o.failed) {
        return NGX_ERROR;
    }

    op->op = NGX_HTTP_OPENBANK_REG_AUDIT;
    ngx_str_null(&op->key);
    op->value.data = o.start;
    op->value.len = o.pos - o.start;

    return NGX_OK;
}


/*
 * A change to the registry: NGX_AGAIN, answered once durable; or a
 * refusal.
 */

static ngx_int_t
ngx_http_openbank_admin_commit(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_reg_op_t *ops,
    ngx_uint_t n, ngx_uint_t status, ngx_str_t *answer)
{
    u_char                          *p;
    ngx_int_t                        rc;
    ngx_str_t                        what;
    ngx_http_openbank_reg_change_t   ch;

    ngx_memzero(&ch, sizeof(ch));
    ch.ops = ops;
    ch.nops = n;

    ctx->admin->reply.status = status;
    ctx->admin->reply.answer = *answer;
    ctx->admin->reply.send = ngx_http_openbank_admin_send;
    ctx->reply = &ctx->admin->reply;

    rc = ngx_http_openbank_registry_change(r, &ch,
                                           ngx_http_openbank_reply_durable);

    if (rc == NGX_AGAIN || rc == NGX_ERROR) {
        return (rc == NGX_AGAIN) ? NGX_AGAIN : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    switch (ch.result) {

    case NGX_HTTP_OPENBANK_REG_CONFLICT:
        what = ch.conflict;
        p = what.data;

        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_CONFLICT,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_STATE,
                                        "%s is taken",
                                        p[0] == 'p' ? "the partner's name"
                                        : p[0] == 'i' ? "the client_id"
                                        : p[0] == 'h' ? "the credential's "
                                                        "hash"
                                        : "the credential id");

    case NGX_HTTP_OPENBANK_REG_MISSING:
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_NOT_FOUND,
                                        NGX_HTTP_OPENBANK_PROBLEM_NOT_FOUND,
                                        "it is gone meanwhile");

    default:
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
                                "the registry cannot record the change");
    }
}


/* a secret: the prefix and 32 random bytes in base64url */

ngx_int_t
ngx_http_openbank_admin_secret(u_char *out, const char *prefix)
{
    u_char     rnd[32];
    size_t     n;
    ngx_str_t  src, dst;

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        ERR_clear_error();
        return NGX_ERROR;
    }

    n = ngx_strlen(prefix);
    ngx_memcpy(out, prefix, n);

    src.data = rnd;
    src.len = sizeof(rnd);
    dst.data = out + n;
    ngx_encode_base64url(&dst, &src);
    out[n + dst.len] = '\0';

    ngx_explicit_memzero(rnd, sizeof(rnd));

    return NGX_OK;
}


/* records and partners by their first member, a name or a key */

static int ngx_libc_cdecl
ngx_http_openbank_admin_cmp(const void *a, const void *b)
{
    ngx_str_t  *x, *y;

    x = (ngx_str_t *) a;
    y = (ngx_str_t *) b;

    return ngx_memn2cmp(x->data, y->data, x->len, y->len);
}
