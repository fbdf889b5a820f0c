
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The OAuth 2.0 endpoints (docs/tokens.md): the token endpoint (client
 * credentials grant, RFC 6749 4.4) with three client authentications
 * (client_secret_basic, private_key_jwt per RFC 7523, tls_client_auth per
 * RFC 8705), introspection (RFC 7662), revocation (RFC 7009), the JWKS
 * and the authorization server metadata (RFC 8414).  Errors are RFC 6749
 * 5.2 bodies, not problem+json.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_cluster.h>
#include <ngx_http_openbank_jwt.h>
#include <ngx_http_openbank_oauth.h>
#include <ngx_http_openbank_partner.h>
#include <ngx_http_openbank_registration.h>
#include <ngx_http_openbank_registry.h>
#include <ngx_http_openbank_token.h>
#include <ngx_http_openbank_util.h>

#include <openssl/err.h>
#include <openssl/x509.h>


#define NGX_HTTP_OPENBANK_FORM_MAX       16384
#define NGX_HTTP_OPENBANK_JTI_MAX        255


#define NGX_HTTP_OPENBANK_EXP_AHEAD                                          \
    "the assertion's exp is more than %T s ahead "                           \
    "(openbank_assertion_lifetime)"

#define NGX_HTTP_OPENBANK_JWT_BEARER                                         \
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


struct ngx_http_openbank_oauth_s {
    ngx_str_t                     path[NGX_HTTP_OPENBANK_EP_N];
    ngx_str_t                     url[NGX_HTTP_OPENBANK_EP_N];
    ngx_str_t                     jwks;        /* the JWKS document */
    ngx_str_t                     metadata;    /* RFC 8414 document */
};


typedef struct {
    ngx_str_t                     grant_type;
    ngx_str_t                     scope;
    ngx_str_t                     client_id;
    ngx_str_t                     client_assertion_type;
    ngx_str_t                     client_assertion;
    ngx_str_t                     token;
    ngx_str_t                     token_type_hint;
} ngx_http_openbank_form_t;


/* what a refusal says: status, RFC 6749 error, description */

typedef struct {
    ngx_uint_t                    status;
    const char                   *error;
    const char                   *description;
    unsigned                      basic:1;     /* WWW-Authenticate: Basic */
} ngx_http_openbank_oauth_err_t;


/* the authenticated client */

typedef struct {
    ngx_http_openbank_partner_t  *partner;
    u_char                        cert[NGX_HTTP_OPENBANK_HASH_LEN];
    uint64_t                      credential;  /* a registry partner's */
    unsigned                      has_cert:1;
} ngx_http_openbank_client_t;


static ngx_http_openbank_oauth_t *ngx_http_openbank_oauth_conf(
    ngx_conf_t *cf);
static ngx_int_t ngx_http_openbank_static_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_openbank_form_handler(ngx_http_request_t *r);
static void ngx_http_openbank_form_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_openbank_form_parse(ngx_http_request_t *r,
    ngx_http_openbank_form_t *form, ngx_http_openbank_oauth_err_t *err);
static ngx_int_t ngx_http_openbank_client_auth(ngx_http_request_t *r,
    ngx_http_openbank_form_t *form, ngx_http_openbank_client_t *client,
    ngx_http_openbank_oauth_err_t *err);
static ngx_int_t ngx_http_openbank_client_basic(ngx_http_request_t *r,
    ngx_str_t *value, ngx_http_openbank_form_t *form,
    ngx_http_openbank_client_t *client, ngx_http_openbank_oauth_err_t *err);
static ngx_int_t ngx_http_openbank_client_jwt(ngx_http_request_t *r,
    ngx_http_openbank_form_t *form, ngx_http_openbank_client_t *client,
    ngx_http_openbank_oauth_err_t *err);
static ngx_int_t ngx_http_openbank_client_tls(ngx_http_request_t *r,
    ngx_http_openbank_form_t *form, ngx_http_openbank_client_t *client,
    ngx_http_openbank_oauth_err_t *err);
static ngx_int_t ngx_http_openbank_issue(ngx_http_request_t *r,
    ngx_http_openbank_form_t *form, ngx_http_openbank_client_t *client,
    ngx_http_openbank_oauth_err_t *err);
static ngx_int_t ngx_http_openbank_introspect(ngx_http_request_t *r,
    ngx_http_openbank_form_t *form, ngx_http_openbank_client_t *client,
    ngx_http_openbank_oauth_err_t *err);
static ngx_int_t ngx_http_openbank_revocation(ngx_http_request_t *r,
    ngx_http_openbank_form_t *form, ngx_http_openbank_client_t *client,
    ngx_http_openbank_oauth_err_t *err);
static void ngx_http_openbank_revocation_durable(ngx_http_request_t *r,
    ngx_int_t rc);
static ngx_int_t ngx_http_openbank_oauth_send(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *body, ngx_uint_t no_store);
static ngx_int_t ngx_http_openbank_oauth_error(ngx_http_request_t *r,
    ngx_http_openbank_oauth_err_t *err);
static ngx_int_t ngx_http_openbank_aud_ok(ngx_http_openbank_jwt_t *jwt,
    ngx_http_openbank_main_conf_t *obmcf, ngx_http_request_t *r);
static u_char *ngx_http_openbank_json_str(u_char *p, ngx_str_t *s);
static ngx_str_t *ngx_http_openbank_loggable(ngx_str_t *s);
static size_t ngx_http_openbank_json_len(ngx_str_t *s);


static ngx_str_t  ngx_http_openbank_json_type =
    ngx_string("application/json");


static ngx_http_openbank_oauth_t *
ngx_http_openbank_oauth_conf(ngx_conf_t *cf)
{
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_openbank_module);

    if (obmcf->oauth == NULL) {
        obmcf->oauth = ngx_pcalloc(cf->pool,
                                   sizeof(ngx_http_openbank_oauth_t));
    }

    return obmcf->oauth;
}


/*
 * The directive of each endpoint; "offset" in its command says which
 * (NGX_HTTP_OPENBANK_EP_*).
 */

char *
ngx_http_openbank_oauth_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_uint_t                  which;
    ngx_http_openbank_oauth_t  *oauth;
    ngx_http_core_loc_conf_t   *clcf;

    which = cmd->offset;

    oauth = ngx_http_openbank_oauth_conf(cf);
    if (oauth == NULL) {
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->name.len == 0 || clcf->name.data[0] != '/' || clcf->regex) {
        return "must be in a location with a plain path";
    }

    /* several servers (HTTP, mTLS) may serve it, at one path: its URL */

    if (oauth->path[which].len
        && (oauth->path[which].len != clcf->name.len
            || ngx_strncmp(oauth->path[which].data, clcf->name.data,
                           clcf->name.len) != 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is already at \"%V\": an endpoint has "
                           "one path in every server, the one its URL names",
                           &((ngx_str_t *) cf->args->elts)[0],
                           &oauth->path[which]);
        return NGX_CONF_ERROR;
    }

    /* the revocations journal is written in the default thread pool */

    if (which == NGX_HTTP_OPENBANK_EP_REVOKE
        && ngx_thread_pool_add(cf, NULL) == NULL)
    {
        return NGX_CONF_ERROR;
    }

    oauth->path[which] = clcf->name;
    clcf->handler = (which == NGX_HTTP_OPENBANK_EP_JWKS
                     || which == NGX_HTTP_OPENBANK_EP_METADATA)
                    ? ngx_http_openbank_static_handler
                    : ngx_http_openbank_form_handler;

    return NGX_CONF_OK;
}


/*
 * Once the http block is read: the keys' ids, the JWKS and the metadata
 * documents are made, and what the endpoints need is checked.
 */

ngx_int_t
ngx_http_openbank_oauth_init(ngx_conf_t *cf,
    ngx_http_openbank_main_conf_t *obmcf)
{
    u_char                           *p, *buf;
    size_t                            len;
    ngx_str_t                         scopes[64], *s;
    ngx_uint_t                        i, j, k, n;
    ngx_http_openbank_partner_t      *partner;
    ngx_http_openbank_oauth_t        *oauth;
    ngx_http_openbank_signing_key_t  *key;

    oauth = obmcf->oauth;
    key = obmcf->signing_keys.elts;

    if (oauth == NULL && obmcf->signing_keys.nelts == 0) {
        return NGX_OK;
    }

    /* signing keys alone may serve response signatures only */

    if (oauth && obmcf->issuer.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "OAuth endpoints need \"openbank_issuer\"");
        return NGX_ERROR;
    }

    if (oauth && obmcf->signing_keys.nelts == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "OAuth endpoints need an \"openbank_signing_key\"");
        return NGX_ERROR;
    }

    if (oauth && obmcf->shm_zone == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "tokens need an \"openbank_zone\"");
        return NGX_ERROR;
    }

    /* a cached token names the key (and issuer) that verified it */

    for (i = 0; i < obmcf->signing_keys.nelts; i++) {
        len = obmcf->issuer.len + 1 + key[i].jwk.len;

        buf = ngx_pnalloc(cf->pool, len);
        if (buf == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(buf, obmcf->issuer.data, obmcf->issuer.len);
        *p++ = '\n';
        ngx_memcpy(p, key[i].jwk.data, key[i].jwk.len);

        ngx_http_openbank_sha256(key[i].id, buf, len);
    }

    if (oauth == NULL) {
        oauth = ngx_pcalloc(cf->pool, sizeof(ngx_http_openbank_oauth_t));
        if (oauth == NULL) {
            return NGX_ERROR;
        }

        obmcf->oauth = oauth;
    }

    if (obmcf->issuer.len == 0) {
        return NGX_OK;      /* no tokens: signing keys for responses */
    }

    if (oauth->path[NGX_HTTP_OPENBANK_EP_REVOKE].len
        && obmcf->state_path.len == 0)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"openbank_revocation_endpoint\" needs "
                      "\"openbank_state\": revocations outlive restarts");
        return NGX_ERROR;
    }

    for (i = 0; i < NGX_HTTP_OPENBANK_EP_N; i++) {
        if (oauth->path[i].len == 0) {
            continue;
        }

        oauth->url[i].len = obmcf->issuer.len + oauth->path[i].len;
        oauth->url[i].data = ngx_pnalloc(cf->pool, oauth->url[i].len);
        if (oauth->url[i].data == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(oauth->url[i].data, obmcf->issuer.data,
                       obmcf->issuer.len);
        ngx_memcpy(p, oauth->path[i].data, oauth->path[i].len);
    }

    /* the JWKS: every signing key, the one that signs first */

    len = sizeof("{\"keys\":[]}");

    for (i = 0; i < obmcf->signing_keys.nelts; i++) {
        len += key[i].jwk.len + 1;
    }

    oauth->jwks.data = ngx_pnalloc(cf->pool, len);
    if (oauth->jwks.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(oauth->jwks.data, "{\"keys\":[", 9);

    for (i = 0; i < obmcf->signing_keys.nelts; i++) {
        if (i) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, key[i].jwk.data, key[i].jwk.len);
    }

    p = ngx_cpymem(p, "]}\n", 3);
    oauth->jwks.len = p - oauth->jwks.data;

    /* the metadata (RFC 8414 2) */

    n = 0;
    partner = obmcf->partners.elts;

    for (i = 0; i < obmcf->partners.nelts; i++) {
        s = partner[i].scopes.elts;

        for (j = 0; j < partner[i].scopes.nelts; j++) {
            for (k = 0; k < n; k++) {
                if (scopes[k].len == s[j].len
                    && ngx_strncmp(scopes[k].data, s[j].data, s[j].len) == 0)
                {
                    break;
                }
            }

            if (k == n && n < 64) {
                scopes[n++] = s[j];
            }
        }
    }

    len = 1024 + 3 * obmcf->issuer.len;

    if (obmcf->registration) {
        len += obmcf->registration->path.len;
    }

    for (i = 0; i < NGX_HTTP_OPENBANK_EP_N; i++) {
        len += oauth->url[i].len + 64;
    }

    for (k = 0; k < n; k++) {
        len += scopes[k].len + 3;
    }

    oauth->metadata.data = ngx_pnalloc(cf->pool, len);
    if (oauth->metadata.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(oauth->metadata.data, "{\"issuer\":\"%V\"",
                    &obmcf->issuer);

    if (oauth->url[NGX_HTTP_OPENBANK_EP_TOKEN].len) {
        p = ngx_sprintf(p, ",\"token_endpoint\":\"%V\"",
                        &oauth->url[NGX_HTTP_OPENBANK_EP_TOKEN]);
    }

    if (oauth->url[NGX_HTTP_OPENBANK_EP_JWKS].len) {
        p = ngx_sprintf(p, ",\"jwks_uri\":\"%V\"",
                        &oauth->url[NGX_HTTP_OPENBANK_EP_JWKS]);
    }

    if (oauth->url[NGX_HTTP_OPENBANK_EP_INTROSPECT].len) {
        p = ngx_sprintf(p, ",\"introspection_endpoint\":\"%V\"",
                        &oauth->url[NGX_HTTP_OPENBANK_EP_INTROSPECT]);
    }

    if (oauth->url[NGX_HTTP_OPENBANK_EP_REVOKE].len) {
        p = ngx_sprintf(p, ",\"revocation_endpoint\":\"%V\"",
                        &oauth->url[NGX_HTTP_OPENBANK_EP_REVOKE]);
    }

    if (obmcf->registration && obmcf->registration->path.len) {
        p = ngx_sprintf(p, ",\"registration_endpoint\":\"%V%V\"",
                        &obmcf->issuer, &obmcf->registration->path);
    }

    p = ngx_sprintf(p, ",\"scopes_supported\":[");

    for (k = 0; k < n; k++) {
        p = ngx_sprintf(p, "%s\"%V\"", k ? "," : "", &scopes[k]);
    }

    p = ngx_sprintf(p,
        "],\"response_types_supported\":[]"
        ",\"grant_types_supported\":[\"client_credentials\"]"
        ",\"token_endpoint_auth_methods_supported\":"
        "[\"client_secret_basic\",\"private_key_jwt\",\"tls_client_auth\"]"
        ",\"token_endpoint_auth_signing_alg_values_supported\":"
        "[\"PS256\",\"RS256\",\"ES256\",\"EdDSA\"]"
        ",\"introspection_endpoint_auth_methods_supported\":"
        "[\"client_secret_basic\",\"private_key_jwt\",\"tls_client_auth\"]"
        ",\"revocation_endpoint_auth_methods_supported\":"
        "[\"client_secret_basic\",\"private_key_jwt\",\"tls_client_auth\"]"
        ",\"tls_client_certificate_bound_access_tokens\":true"
        ",\"access_token_signing_alg_values_supported\":[\"%V\"]}\n",
        &key[0].alg);

    oauth->metadata.len = p - oauth->metadata.data;

    return NGX_OK;
}


/* the JWKS and the metadata: documents made at load time */

static ngx_int_t
ngx_http_openbank_static_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_str_t                      *doc;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_openbank_oauth_t      *oauth;
    ngx_http_openbank_main_conf_t  *obmcf;

    rc = ngx_http_openbank_get_endpoint_start(r);
    if (rc != NGX_OK) {
        return rc;
    }

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    oauth = obmcf->oauth;

    doc = (clcf->name.len == oauth->path[NGX_HTTP_OPENBANK_EP_JWKS].len
           && ngx_strncmp(clcf->name.data,
                          oauth->path[NGX_HTTP_OPENBANK_EP_JWKS].data,
                          clcf->name.len) == 0)
          ? &oauth->jwks : &oauth->metadata;

    return ngx_http_openbank_oauth_send(r, NGX_HTTP_OK, doc, 0);
}


/* token, introspection and revocation: a form body, then a client */

static ngx_int_t
ngx_http_openbank_form_handler(ngx_http_request_t *r)
{
    ngx_int_t                rc;
    ngx_http_openbank_ctx_t  *ctx;

    rc = ngx_http_openbank_endpoint_start(r, NGX_HTTP_POST, "POST");
    if (rc != NGX_OK) {
        return rc;
    }

    if (r->headers_in.content_length_n > NGX_HTTP_OPENBANK_FORM_MAX) {
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    ctx = ngx_http_openbank_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_openbank_form_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_openbank_form_body(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_http_openbank_ctx_t        *ctx;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_openbank_form_t        form;
    ngx_http_openbank_oauth_t      *oauth;
    ngx_http_openbank_client_t      client;
    ngx_http_openbank_oauth_err_t   err;
    ngx_http_openbank_main_conf_t  *obmcf;

    ngx_memzero(&err, sizeof(ngx_http_openbank_oauth_err_t));
    ngx_memzero(&client, sizeof(ngx_http_openbank_client_t));

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    oauth = obmcf->oauth;

    rc = ngx_http_openbank_form_parse(r, &form, &err);

    if (rc == NGX_OK) {
        rc = ngx_http_openbank_client_auth(r, &form, &client, &err);

        if (rc == NGX_AGAIN) {
            /* a client assertion's jti, in Redis: runs again when heard */
            return;
        }
    }

    if (rc != NGX_OK) {
        rc = (err.status == NGX_HTTP_INTERNAL_SERVER_ERROR)
             ? NGX_HTTP_INTERNAL_SERVER_ERROR
             : ngx_http_openbank_oauth_error(r, &err);
        ngx_http_finalize_request(r, rc);
        return;
    }

    /* $openbank_partner and $openbank_result in the access log */

    ctx = ngx_http_openbank_get_ctx(r);
    if (ctx) {
        ctx->partner = client.partner;
        ngx_str_set(&ctx->result, "ok");
    }

    if (clcf->name.len == oauth->path[NGX_HTTP_OPENBANK_EP_TOKEN].len
        && ngx_strncmp(clcf->name.data,
                       oauth->path[NGX_HTTP_OPENBANK_EP_TOKEN].data,
                       clcf->name.len) == 0)
    {
        rc = ngx_http_openbank_issue(r, &form, &client, &err);

    } else if (clcf->name.len
               == oauth->path[NGX_HTTP_OPENBANK_EP_INTROSPECT].len
               && ngx_strncmp(clcf->name.data,
                              oauth->path[NGX_HTTP_OPENBANK_EP_INTROSPECT].data,
                              clcf->name.len) == 0)
    {
        rc = ngx_http_openbank_introspect(r, &form, &client, &err);

    } else {
        rc = ngx_http_openbank_revocation(r, &form, &client, &err);
    }

    if (rc == NGX_DECLINED) {
        rc = (err.status == NGX_HTTP_INTERNAL_SERVER_ERROR)
             ? NGX_HTTP_INTERNAL_SERVER_ERROR
             : ngx_http_openbank_oauth_error(r, &err);
    }

    ngx_http_finalize_request(r, rc);
}


#define ngx_http_openbank_fail(e, s, code, desc)                             \
    (e)->status = s; (e)->error = code; (e)->description = desc;             \
    return NGX_DECLINED


static ngx_int_t
ngx_http_openbank_form_parse(ngx_http_request_t *r,
    ngx_http_openbank_form_t *form, ngx_http_openbank_oauth_err_t *err)
{
    u_char       *p, *last, *amp, *eq, *dst, *src, *body;
    size_t        len;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_str_t    *field, name, value;
    ngx_chain_t  *cl;

    ngx_memzero(form, sizeof(ngx_http_openbank_form_t));

    if (r->headers_in.content_type == NULL
        || r->headers_in.content_type->value.len
           < sizeof("application/x-www-form-urlencoded") - 1
        || ngx_strncasecmp(r->headers_in.content_type->value.data,
                           (u_char *) "application/x-www-form-urlencoded",
                           sizeof("application/x-www-form-urlencoded") - 1)
           != 0)
    {
        ngx_http_openbank_fail(err, NGX_HTTP_BAD_REQUEST, "invalid_request",
                               "the body must be "
                               "application/x-www-form-urlencoded");
    }

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        ngx_http_openbank_fail(err, NGX_HTTP_BAD_REQUEST, "invalid_request",
                               "the request has no body");
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len > NGX_HTTP_OPENBANK_FORM_MAX) {
        ngx_http_openbank_fail(err, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                               "invalid_request", "the body is too large");
    }

    body = ngx_pnalloc(r->pool, len + 1);
    if (body == NULL) {
        ngx_http_openbank_fail(err, NGX_HTTP_INTERNAL_SERVER_ERROR, "", "");
    }

    p = body;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                              b->file_pos);
            if (n != b->file_last - b->file_pos) {
                ngx_http_openbank_fail(err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                       "", "");
            }

            p += n;

        } else {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    last = p;

    for (p = body; p < last; p = amp + 1) {
        amp = ngx_strlchr(p, last, '&');
        if (amp == NULL) {
            amp = last;
        }

        eq = ngx_strlchr(p, amp, '=');
        if (eq == NULL) {
            if (amp == p) {
                continue;
            }

            eq = amp;
        }

        name.data = p;
        name.len = eq - p;

        field = NULL;

#define ngx_http_openbank_field(f)                                           \
        if (name.len == sizeof(#f) - 1                                       \
            && ngx_strncmp(name.data, #f, name.len) == 0)                    \
        {                                                                    \
            field = &form->f;                                                \
        }

        ngx_http_openbank_field(grant_type)
        ngx_http_openbank_field(scope)
        ngx_http_openbank_field(client_id)
        ngx_http_openbank_field(client_assertion_type)
        ngx_http_openbank_field(client_assertion)
        ngx_http_openbank_field(token)
        ngx_http_openbank_field(token_type_hint)

#undef ngx_http_openbank_field

        if (field == NULL) {
            continue;   /* RFC 6749 3.2: unknown parameters are ignored */
        }

        if (field->data) {
            ngx_http_openbank_fail(err, NGX_HTTP_BAD_REQUEST,
                                   "invalid_request",
                                   "a parameter is sent more than once");
        }

        /* "+" is a space, then %XX (HTML form encoding) */

        value.data = (eq < amp) ? eq + 1 : eq;
        value.len = amp - value.data;

        for (src = value.data; src < amp; src++) {
            if (*src == '+') {
                *src = ' ';
            }
        }

        src = value.data;
        dst = value.data;
        ngx_unescape_uri(&dst, &src, value.len, 0);

        field->data = value.data;
        field->len = dst - value.data;

        if (field->len == 0) {
            field->data = (u_char *) "";
        }
    }

    return NGX_OK;
}


/*
 * One client authentication (RFC 6749 2.3: never more than one): the
 * Authorization header (client_secret_basic), an assertion
 * (private_key_jwt), or the TLS client certificate with client_id
 * (tls_client_auth).
 */

static ngx_int_t
ngx_http_openbank_client_auth(ngx_http_request_t *r,
    ngx_http_openbank_form_t *form, ngx_http_openbank_client_t *client,
    ngx_http_openbank_oauth_err_t *err)
{
    ngx_int_t         rc;
    ngx_uint_t        n;
    ngx_table_elt_t  *h;

    client->credential = 0;

    rc = ngx_http_openbank_client_cert(r, client->cert);

    if (rc == NGX_ERROR) {
        ngx_http_openbank_fail(err, NGX_HTTP_INTERNAL_SERVER_ERROR, "", "");
    }

    client->has_cert = (rc == NGX_OK);

    h = ngx_http_openbank_find_header(&r->headers_in.headers,
                                      "Authorization", &n);

    if (h && (form->client_assertion.data
              || form->client_assertion_type.data))
    {
        ngx_http_openbank_fail(err, NGX_HTTP_BAD_REQUEST, "invalid_request",
                               "more than one client authentication");
    }

    if (n > 1) {
        ngx_http_openbank_fail(err, NGX_HTTP_BAD_REQUEST, "invalid_request",
                               "Authorization is sent more than once");
    }

    if (h) {
        rc = ngx_http_openbank_client_basic(r, &h->value, form, client, err);

    } else if (form->client_assertion.data
               || form->client_assertion_type.data)
    {
        rc = ngx_http_openbank_client_jwt(r, form, client, err);

    } else {
        rc = ngx_http_openbank_client_tls(r, form, client, err);
    }

    if (rc == NGX_OK && client->partner->suspended) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "openbank: the suspended partner \"%V\" is refused",
                      &client->partner->name);

        ngx_http_openbank_fail(err, NGX_HTTP_FORBIDDEN, "unauthorized_client",
                               "partner_suspended: the partner is "
                               "suspended");
    }

    return rc;
}


static ngx_int_t
ngx_http_openbank_client_basic(ngx_http_request_t *r, ngx_str_t *value,
    ngx_http_openbank_form_t *form, ngx_http_openbank_client_t *client,
    ngx_http_openbank_oauth_err_t *err)
{
    u_char                         *colon, *src, *dst, *end;
    ngx_str_t                       encoded, decoded, id, secret;
    ngx_http_openbank_partner_t    *partner;
    ngx_http_openbank_main_conf_t  *obmcf;
    u_char                          hash[NGX_HTTP_OPENBANK_HASH_LEN];
    static u_char                   zero[NGX_HTTP_OPENBANK_HASH_LEN];

    err->basic = 1;

    if (value->len < 6
        || ngx_strncasecmp(value->data, (u_char *) "Basic ", 6) != 0)
    {
        ngx_http_openbank_fail(err, NGX_HTTP_UNAUTHORIZED, "invalid_client",
                               "the token endpoint takes Basic "
                               "authentication, an assertion, or a client "
                               "certificate");
    }

    encoded.data = value->data + 6;
    encoded.len = value->len - 6;

    while (encoded.len && encoded.data[0] == ' ') {
        encoded.data++;
        encoded.len--;
    }

    decoded.data = ngx_pnalloc(r->pool,
                               ngx_base64_decoded_length(encoded.len) + 1);
    if (decoded.data == NULL) {
        ngx_http_openbank_fail(err, NGX_HTTP_INTERNAL_SERVER_ERROR, "", "");
    }

    if (encoded.len == 0 || encoded.len > 1024
        || ngx_decode_base64(&decoded, &encoded) != NGX_OK)
    {
        ngx_http_openbank_fail(err, NGX_HTTP_UNAUTHORIZED, "invalid_client",
                               "the Basic credentials are not base64");
    }

    colon = ngx_strlchr(decoded.data, decoded.data + decoded.len, ':');
    if (colon == NULL) {
        ngx_http_openbank_fail(err, NGX_HTTP_UNAUTHORIZED, "invalid_client",
                               "the Basic credentials have no colon");
    }

    /* RFC 6749 2.3.1: both are form-encoded before base64 */

    end = decoded.data + decoded.len;

    for (src = decoded.data; src < end; src++) {
        if (*src == '+') {
            *src = ' ';
        }
    }

    src = decoded.data;
    dst = decoded.data;
    ngx_unescape_uri(&dst, &src, colon - decoded.data, 0);
    id.data = decoded.data;
    id.len = dst - decoded.data;

    src = colon + 1;
    dst = colon + 1;
    ngx_unescape_uri(&dst, &src, end - (colon + 1), 0);
    secret.data = colon + 1;
    secret.len = dst - (colon + 1);

    if (form->client_id.data
        && (form->client_id.len != id.len
            || ngx_strncmp(form->client_id.data, id.data, id.len) != 0))
    {
        ngx_explicit_memzero(decoded.data, decoded.len);
        ngx_http_openbank_fail(err, NGX_HTTP_BAD_REQUEST, "invalid_request",
                               "client_id differs from the Basic "
                               "credentials");
    }

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    ngx_http_openbank_sha256(hash, secret.data, secret.len);
    ngx_explicit_memzero(secret.data, end - secret.data);

    partner = ngx_http_openbank_partner_by_client_id(obmcf, &id);

    if (partner == NULL) {
        partner = ngx_http_openbank_registry_client(r, &id);
    }

    /* the same work whether the client exists or not */

    if ((partner && partner->registry)
        ? ngx_http_openbank_registry_secret(r, partner,
                                     NGX_HTTP_OPENBANK_CRED_CLIENT_SECRET,
                                     hash, &client->credential)
          != NGX_OK
        : (CRYPTO_memcmp(hash, (partner && partner->has_client_secret)
                               ? partner->client_secret : zero,
                         NGX_HTTP_OPENBANK_HASH_LEN)
           != 0
           || partner == NULL || !partner->has_client_secret))
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "openbank: client_secret_basic failed for "
                      "client_id \"%V\"", ngx_http_openbank_loggable(&id));

        ngx_http_openbank_fail(err, NGX_HTTP_UNAUTHORIZED, "invalid_client",
                               "unknown client or wrong secret");
    }

    client->partner = partner;

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_client_jwt(ngx_http_request_t *r,
    ngx_http_openbank_form_t *form, ngx_http_openbank_client_t *client,
    ngx_http_openbank_oauth_err_t *err)
{
    u_char                         *p;
    ngx_int_t                       rc;
    ngx_str_t                       key, alg;
    time_t                          now;
    const char                     *why;
    ngx_http_openbank_jwt_t         jwt;
    ngx_http_openbank_jwk_t        *jwk;
    ngx_http_openbank_jwks_t       *jwks;
    ngx_http_openbank_ctx_t        *ctx;
    ngx_http_openbank_partner_t    *partner;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    if (form->client_assertion_type.len
        != sizeof(NGX_HTTP_OPENBANK_JWT_BEARER) - 1
        || ngx_strncmp(form->client_assertion_type.data,
                       NGX_HTTP_OPENBANK_JWT_BEARER,
                       form->client_assertion_type.len) != 0
        || form->client_assertion.len == 0)
    {
        ngx_http_openbank_fail(err, NGX_HTTP_BAD_REQUEST, "invalid_request",
                               "client_assertion_type must be "
                               NGX_HTTP_OPENBANK_JWT_BEARER
                               " with a client_assertion");
    }

    if (ngx_http_openbank_jwt_parse(r->pool, &form->client_assertion, &jwt,
                                    &why)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "openbank: client assertion %s", why);
        ngx_http_openbank_fail(err, NGX_HTTP_UNAUTHORIZED, "invalid_client",
                               "the client assertion is not a valid JWT");
    }

    if (jwt.iss.len == 0 || jwt.sub.len != jwt.iss.len
        || ngx_strncmp(jwt.sub.data, jwt.iss.data, jwt.iss.len) != 0)
    {
        ngx_http_openbank_fail(err, NGX_HTTP_UNAUTHORIZED, "invalid_client",
                               "the assertion's iss and sub must both be "
                               "the client_id");
    }

    if (form->client_id.data
        && (form->client_id.len != jwt.iss.len
            || ngx_strncmp(form->client_id.data, jwt.iss.data, jwt.iss.len)
               != 0))
    {
        ngx_http_openbank_fail(err, NGX_HTTP_UNAUTHORIZED, "invalid_client",
                               "client_id differs from the assertion's iss");
    }

    partner = ngx_http_openbank_partner_by_client_id(obmcf, &jwt.iss);

    if (partner == NULL) {
        partner = ngx_http_openbank_registry_client(r, &jwt.iss);
    }

    if (partner == NULL || partner->jwks == NULL) {
        ngx_http_openbank_fail(err, NGX_HTTP_UNAUTHORIZED, "invalid_client",
                               "unknown client, or a client without a JWKS");
    }

    jwks = partner->jwks;

    if (jwt.kid.len) {
        jwk = ngx_http_openbank_jwks_find(jwks, &jwt.kid);

    } else {
        jwk = (jwks->keys.nelts == 1) ? jwks->keys.elts : NULL;
    }

    if (jwk == NULL
        || (partner->registry
            && ngx_http_openbank_registry_jwk(r, partner, &jwk->kid,
                                              &client->credential)
               != NGX_OK))
    {
        ngx_http_openbank_fail(err, NGX_HTTP_UNAUTHORIZED, "invalid_client",
                               "the assertion's kid is not in the client's "
                               "JWKS");
    }

    /* the key's type (and its JWK "alg") decide the algorithm */

    alg = jwt.alg;

    if (jwk->alg.len
        && (jwk->alg.len != alg.len
            || ngx_strncmp(jwk->alg.data, alg.data, alg.len) != 0))
    {
        ngx_http_openbank_fail(err, NGX_HTTP_UNAUTHORIZED, "invalid_client",
                               "the assertion's alg is not its key's");
    }

    rc = ngx_http_openbank_jwt_verify(&jwt, jwk->pkey, jwk->type, &alg,
                                      NULL);

    if (rc == NGX_ERROR) {
        ngx_http_openbank_fail(err, NGX_HTTP_INTERNAL_SERVER_ERROR, "", "");
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "openbank: client assertion of \"%V\" has a bad "
                      "signature or alg \"%V\"",
                      ngx_http_openbank_loggable(&jwt.iss),
                      ngx_http_openbank_loggable(&jwt.alg));
        ngx_http_openbank_fail(err, NGX_HTTP_UNAUTHORIZED, "invalid_client",
                               "the assertion's signature or alg is not "
                               "valid for its key");
    }

    if (!ngx_http_openbank_aud_ok(&jwt, obmcf, r)) {
        ngx_http_openbank_fail(err, NGX_HTTP_UNAUTHORIZED, "invalid_client",
                               "the assertion's aud is neither the issuer "
                               "nor the token endpoint");
    }

    now = ngx_time();

    if (!jwt.has_exp || jwt.exp + obmcf->clock_skew <= now) {
        ngx_http_openbank_fail(err, NGX_HTTP_UNAUTHORIZED, "invalid_client",
                               "the assertion has expired or has no exp");
    }

    if (jwt.exp > now + obmcf->assertion_lifetime + obmcf->clock_skew) {
        p = ngx_pnalloc(r->pool, sizeof(NGX_HTTP_OPENBANK_EXP_AHEAD)
                                 + NGX_TIME_T_LEN);
        if (p == NULL) {
            ngx_http_openbank_fail(err, NGX_HTTP_INTERNAL_SERVER_ERROR, "",
                                   "");
        }

        ngx_sprintf(p, NGX_HTTP_OPENBANK_EXP_AHEAD "%Z",
                    obmcf->assertion_lifetime);

        ngx_http_openbank_fail(err, NGX_HTTP_UNAUTHORIZED, "invalid_client",
                               (const char *) p);
    }

    if ((jwt.has_nbf && jwt.nbf > now + obmcf->clock_skew)
        || (jwt.has_iat && jwt.iat > now + obmcf->clock_skew))
    {
        ngx_http_openbank_fail(err, NGX_HTTP_UNAUTHORIZED, "invalid_client",
                               "the assertion is not valid yet");
    }

    if (jwt.jti.len == 0 || jwt.jti.len > NGX_HTTP_OPENBANK_JTI_MAX) {
        ngx_http_openbank_fail(err, NGX_HTTP_UNAUTHORIZED, "invalid_client",
                               "the assertion needs a jti");
    }

    /* a jti is used once, in every worker, until its exp */

    key.len = jwt.iss.len + 1 + jwt.jti.len;
    key.data = ngx_pnalloc(r->pool, key.len);
    if (key.data == NULL) {
        ngx_http_openbank_fail(err, NGX_HTTP_INTERNAL_SERVER_ERROR, "", "");
    }

    p = ngx_cpymem(key.data, jwt.iss.data, jwt.iss.len);
    *p++ = '\n';
    ngx_memcpy(p, jwt.jti.data, jwt.jti.len);

    ctx = ngx_http_openbank_get_ctx(r);
    if (ctx == NULL) {
        ngx_http_openbank_fail(err, NGX_HTTP_INTERNAL_SERVER_ERROR, "", "");
    }

    rc = ngx_http_openbank_cluster_take(r, ctx,
                                        NGX_HTTP_OPENBANK_CLUSTER_NONCE,
                                        NGX_HTTP_OPENBANK_TABLE_ASSERTION,
                                        &key, jwt.iss.len,
                                        (uint64_t) (jwt.exp
                                                    + obmcf->clock_skew)
                                        * 1000,
                                        ngx_http_openbank_form_body);

    if (rc == NGX_AGAIN) {
        /* Redis answers, then the whole form runs again */
        return NGX_AGAIN;
    }

    if (rc == NGX_BUSY) {
        ngx_http_openbank_fail(err, NGX_HTTP_SERVICE_UNAVAILABLE,
                               "temporarily_unavailable",
                               "state_unavailable: the cluster's shared "
                               "state cannot be reached; try again");
    }

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "openbank: replayed client assertion of \"%V\"",
                      ngx_http_openbank_loggable(&jwt.iss));

        ngx_http_openbank_fail(err, NGX_HTTP_UNAUTHORIZED, "invalid_client",
                               "the assertion's jti was already used");
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "openbank: zone \"%V\" is full: cannot remember an "
                      "assertion jti, refusing the request",
                      &obmcf->shm_zone->shm.name);

        ngx_http_openbank_fail(err, NGX_HTTP_SERVICE_UNAVAILABLE,
                               "temporarily_unavailable",
                               "state_unavailable: the gateway cannot "
                               "record the assertion");
    }

    client->partner = partner;

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_client_tls(ngx_http_request_t *r,
    ngx_http_openbank_form_t *form, ngx_http_openbank_client_t *client,
    ngx_http_openbank_oauth_err_t *err)
{
    ngx_http_openbank_partner_t    *partner;
    ngx_http_openbank_main_conf_t  *obmcf;

    if (form->client_id.len == 0) {
        err->basic = 1;
        ngx_http_openbank_fail(err, NGX_HTTP_UNAUTHORIZED, "invalid_client",
                               "no client authentication: use Basic, an "
                               "assertion, or a client certificate with "
                               "client_id");
    }

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    partner = ngx_http_openbank_partner_by_client_id(obmcf,
                                                     &form->client_id);

    if (partner == NULL) {
        partner = ngx_http_openbank_registry_client(r, &form->client_id);
    }

    if (partner == NULL || !client->has_cert
        || ((partner->registry)
            ? ngx_http_openbank_registry_secret(r, partner,
                                       NGX_HTTP_OPENBANK_CRED_CERTIFICATE,
                                       client->cert, &client->credential)
              != NGX_OK
              && ngx_http_openbank_registration_dn(r, partner,
                                                   &client->credential)
                 != NGX_OK
            : (!partner->has_certificate
               || CRYPTO_memcmp(partner->certificate, client->cert,
                                NGX_HTTP_OPENBANK_HASH_LEN)
                  != 0)))
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "openbank: tls_client_auth failed for client_id "
                      "\"%V\"", ngx_http_openbank_loggable(&form->client_id));

        ngx_http_openbank_fail(err, NGX_HTTP_UNAUTHORIZED, "invalid_client",
                               "unknown client, or no client certificate "
                               "of that client");
    }

    client->partner = partner;

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_issue(ngx_http_request_t *r, ngx_http_openbank_form_t *form,
    ngx_http_openbank_client_t *client, ngx_http_openbank_oauth_err_t *err)
{
    u_char                           *p, *last;
    u_char                            jti[48], x5t[44];
    size_t                            jti_len;
    size_t                            len;
    time_t                            now;
    ngx_str_t                         scope, claims, token, body, *s, one;
    ngx_str_t                         src, dst;
    ngx_uint_t                        i;
    ngx_http_openbank_partner_t      *partner;
    ngx_http_openbank_main_conf_t    *obmcf;
    ngx_http_openbank_signing_key_t  *key;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    partner = client->partner;

    if (form->grant_type.len != sizeof("client_credentials") - 1
        || ngx_strncmp(form->grant_type.data, "client_credentials",
                       form->grant_type.len) != 0)
    {
        ngx_http_openbank_fail(err, NGX_HTTP_BAD_REQUEST,
                               form->grant_type.data
                               ? "unsupported_grant_type"
                               : "invalid_request",
                               "grant_type must be client_credentials");
    }

    /* the scope asked for: a subset of the partner's, else all of them */

    s = partner->scopes.elts;

    if (form->scope.len == 0) {
        len = 0;

        for (i = 0; i < partner->scopes.nelts; i++) {
            len += s[i].len + 1;
        }

        scope.data = ngx_pnalloc(r->pool, len);
        if (scope.data == NULL) {
            ngx_http_openbank_fail(err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                   "", "");
        }

        p = scope.data;

        for (i = 0; i < partner->scopes.nelts; i++) {
            if (i) {
                *p++ = ' ';
            }

            p = ngx_cpymem(p, s[i].data, s[i].len);
        }

        scope.len = p - scope.data;

    } else {
        scope = form->scope;
        p = scope.data;
        last = scope.data + scope.len;

        while (ngx_http_openbank_next_word(&p, last, &one) == NGX_OK) {
            if (one.len == 0
                || !ngx_http_openbank_partner_has_scope(partner, &one))
            {
                ngx_http_openbank_fail(err, NGX_HTTP_BAD_REQUEST,
                                       "invalid_scope",
                                       "the scope asks for more than the "
                                       "client is granted");
            }
        }
    }

    /* a registry partner's token names its credential: "<id>.<random>" */

    jti_len = 0;

    if (partner->registry) {
        jti_len = ngx_sprintf(jti, "%016uxL.", client->credential) - jti;
    }

    if (ngx_http_openbank_random_id(jti + jti_len) != NGX_OK) {
        ngx_http_openbank_fail(err, NGX_HTTP_INTERNAL_SERVER_ERROR, "", "");
    }

    jti_len += 22;

    now = ngx_time();
    key = obmcf->signing_keys.elts;

    len = sizeof("{\"iss\":\"\",\"sub\":\"\",\"client_id\":\"\",\"aud\":\"\","
                 "\"iat\":,\"exp\":,\"jti\":\"\",\"scope\":\"\","
                 "\"cnf\":{\"x5t#S256\":\"\"}}")
          + 2 * obmcf->issuer.len + 2 * ngx_http_openbank_json_len(
                                          &partner->client_id)
          + 2 * NGX_TIME_T_LEN + jti_len + scope.len + 43;

    claims.data = ngx_pnalloc(r->pool, len);
    if (claims.data == NULL) {
        ngx_http_openbank_fail(err, NGX_HTTP_INTERNAL_SERVER_ERROR, "", "");
    }

    p = ngx_sprintf(claims.data, "{\"iss\":\"%V\",\"sub\":\"",
                    &obmcf->issuer);
    p = ngx_http_openbank_json_str(p, &partner->client_id);
    p = ngx_cpymem(p, "\",\"client_id\":\"", 15);
    p = ngx_http_openbank_json_str(p, &partner->client_id);
    p = ngx_sprintf(p, "\",\"aud\":\"%V\",\"iat\":%T,\"exp\":%T,"
                    "\"jti\":\"%*s\",\"scope\":\"%V\"",
                    &obmcf->issuer, now, now + obmcf->token_ttl,
                    jti_len, jti, &scope);

    if (client->has_cert) {
        src.data = client->cert;
        src.len = NGX_HTTP_OPENBANK_HASH_LEN;
        dst.data = x5t;
        ngx_encode_base64url(&dst, &src);

        p = ngx_sprintf(p, ",\"cnf\":{\"x5t#S256\":\"%V\"}", &dst);
    }

    *p++ = '}';
    claims.len = p - claims.data;

    if (ngx_http_openbank_jwt_sign(r->pool, &key[0], &claims, &token)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "openbank: signing a token with key \"%V\" failed",
                      &key[0].kid);
        ngx_http_openbank_fail(err, NGX_HTTP_INTERNAL_SERVER_ERROR, "", "");
    }

    len = sizeof("{\"access_token\":\"\",\"token_type\":\"Bearer\","
                 "\"expires_in\":,\"scope\":\"\"}\n")
          + token.len + NGX_TIME_T_LEN + scope.len;

    body.data = ngx_pnalloc(r->pool, len);
    if (body.data == NULL) {
        ngx_http_openbank_fail(err, NGX_HTTP_INTERNAL_SERVER_ERROR, "", "");
    }

    p = ngx_sprintf(body.data, "{\"access_token\":\"%V\",\"token_type\":"
                    "\"Bearer\",\"expires_in\":%T,\"scope\":\"%V\"}\n",
                    &token, obmcf->token_ttl, &scope);

    body.len = p - body.data;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "openbank: token %*s issued to partner \"%V\"%s",
                  jti_len, jti, &partner->name,
                  client->has_cert ? ", bound to its certificate" : "");

    return ngx_http_openbank_oauth_send(r, NGX_HTTP_OK, &body, 1);
}


static ngx_int_t
ngx_http_openbank_introspect(ngx_http_request_t *r,
    ngx_http_openbank_form_t *form, ngx_http_openbank_client_t *client,
    ngx_http_openbank_oauth_err_t *err)
{
    u_char                           *p;
    size_t                            len;
    ngx_int_t                         rc;
    ngx_str_t                         body;
    const char                       *why;
    ngx_http_openbank_jwt_t           jwt;
    ngx_http_openbank_partner_t      *partner;
    ngx_http_openbank_signing_key_t  *key;
    static ngx_str_t                  inactive =
                                          ngx_string("{\"active\":false}\n");

    if (form->token.len == 0) {
        ngx_http_openbank_fail(err, NGX_HTTP_BAD_REQUEST, "invalid_request",
                               "the token parameter is missing");
    }

    rc = ngx_http_openbank_token_check(r, &form->token, &jwt, &partner, &key,
                                       &why);

    if (rc == NGX_ERROR) {
        ngx_http_openbank_fail(err, NGX_HTTP_INTERNAL_SERVER_ERROR, "", "");
    }

    /* a partner sees its own tokens only (RFC 7662 2.2) */

    if (rc != NGX_OK || partner != client->partner) {
        return ngx_http_openbank_oauth_send(r, NGX_HTTP_OK, &inactive, 1);
    }

    len = 512 + jwt.iss.len + 2 * ngx_http_openbank_json_len(&jwt.client_id)
          + jwt.aud[0].len + jwt.jti.len + jwt.scope.len + jwt.x5t.len;

    body.data = ngx_pnalloc(r->pool, len);
    if (body.data == NULL) {
        ngx_http_openbank_fail(err, NGX_HTTP_INTERNAL_SERVER_ERROR, "", "");
    }

    p = ngx_sprintf(body.data, "{\"active\":true,\"scope\":\"%V\","
                    "\"client_id\":\"", &jwt.scope);
    p = ngx_http_openbank_json_str(p, &jwt.client_id);
    p = ngx_sprintf(p, "\",\"sub\":\"");
    p = ngx_http_openbank_json_str(p, &jwt.client_id);
    p = ngx_sprintf(p, "\",\"token_type\":\"Bearer\",\"exp\":%L,\"iat\":%L,"
                    "\"iss\":\"%V\",\"aud\":\"%V\",\"jti\":\"%V\"",
                    jwt.exp, jwt.has_iat ? jwt.iat : 0, &jwt.iss,
                    &jwt.aud[0], &jwt.jti);

    if (jwt.has_cnf) {
        p = ngx_sprintf(p, ",\"cnf\":{\"x5t#S256\":\"%V\"}", &jwt.x5t);
    }

    p = ngx_cpymem(p, "}\n", 2);
    body.len = p - body.data;

    return ngx_http_openbank_oauth_send(r, NGX_HTTP_OK, &body, 1);
}


static ngx_int_t
ngx_http_openbank_revocation(ngx_http_request_t *r,
    ngx_http_openbank_form_t *form, ngx_http_openbank_client_t *client,
    ngx_http_openbank_oauth_err_t *err)
{
    ngx_int_t                         rc;
    ngx_str_t                         empty;
    const char                       *why;
    ngx_http_openbank_jwt_t           jwt;
    ngx_http_openbank_partner_t      *partner;
    ngx_http_openbank_signing_key_t  *key;

    if (form->token.len == 0) {
        ngx_http_openbank_fail(err, NGX_HTTP_BAD_REQUEST, "invalid_request",
                               "the token parameter is missing");
    }

    ngx_str_null(&empty);

    rc = ngx_http_openbank_token_check(r, &form->token, &jwt, &partner, &key,
                                       &why);

    if (rc == NGX_ERROR) {
        ngx_http_openbank_fail(err, NGX_HTTP_INTERNAL_SERVER_ERROR, "", "");
    }

    /* RFC 7009 2.2: an invalid (or already revoked) token is not an error */

    if (rc != NGX_OK) {
        return ngx_http_openbank_oauth_send(r, NGX_HTTP_OK, &empty, 1);
    }

    if (partner != client->partner) {
        ngx_http_openbank_fail(err, NGX_HTTP_BAD_REQUEST, "invalid_request",
                               "the token was not issued to this client");
    }

    rc = ngx_http_openbank_revoke(r, &form->token, &jwt,
                                  ngx_http_openbank_revocation_durable);

    if (rc == NGX_AGAIN) {
        /* answered once durable: ngx_http_openbank_revocation_durable() */
        r->main->count++;
        return NGX_DONE;
    }

    if (rc == NGX_ERROR) {
        ngx_http_openbank_fail(err, NGX_HTTP_INTERNAL_SERVER_ERROR, "", "");
    }

    if (rc != NGX_OK) {
        ngx_http_openbank_fail(err, NGX_HTTP_SERVICE_UNAVAILABLE,
                               "temporarily_unavailable",
                               "state_unavailable: the revocation cannot be "
                               "recorded");
    }

    return ngx_http_openbank_oauth_send(r, NGX_HTTP_OK, &empty, 1);
}


/*
 * The revocation's record is durable (NGX_OK), or could not be written:
 * the token is refused all the same (the zone has it), but the client is
 * told 503, as docs/tokens.md says.
 */

static void
ngx_http_openbank_revocation_durable(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_str_t                       empty;
    ngx_connection_t               *c;
    ngx_http_openbank_oauth_err_t   err;

    c = r->connection;

    if (rc == NGX_OK) {
        ngx_str_null(&empty);
        rc = ngx_http_openbank_oauth_send(r, NGX_HTTP_OK, &empty, 1);

    } else {
        ngx_memzero(&err, sizeof(ngx_http_openbank_oauth_err_t));
        err.status = NGX_HTTP_SERVICE_UNAVAILABLE;
        err.error = "temporarily_unavailable";
        err.description = "state_unavailable: the revocation cannot be "
                          "recorded";
        rc = ngx_http_openbank_oauth_error(r, &err);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* "aud": the issuer, the token endpoint, or the endpoint called */

static ngx_int_t
ngx_http_openbank_aud_ok(ngx_http_openbank_jwt_t *jwt,
    ngx_http_openbank_main_conf_t *obmcf, ngx_http_request_t *r)
{
    ngx_str_t                  *a, *u;
    ngx_uint_t                  i, j;
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_openbank_oauth_t  *oauth;

    oauth = obmcf->oauth;
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    for (i = 0; i < jwt->naud; i++) {
        a = &jwt->aud[i];

        if (a->len == obmcf->issuer.len
            && ngx_strncmp(a->data, obmcf->issuer.data, a->len) == 0)
        {
            return 1;
        }

        for (j = 0; j < NGX_HTTP_OPENBANK_EP_N; j++) {
            u = &oauth->url[j];

            if (j != NGX_HTTP_OPENBANK_EP_TOKEN
                && (oauth->path[j].len != clcf->name.len
                    || ngx_strncmp(oauth->path[j].data, clcf->name.data,
                                   clcf->name.len) != 0))
            {
                continue;
            }

            if (u->len && a->len == u->len
                && ngx_strncmp(a->data, u->data, a->len) == 0)
            {
                return 1;
            }
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_openbank_oauth_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body, ngx_uint_t no_store)
{
    ngx_str_t  v;

    r->headers_out.status = status;
    r->headers_out.content_length_n = body->len;
    r->headers_out.content_type = ngx_http_openbank_json_type;
    r->headers_out.content_type_len = ngx_http_openbank_json_type.len;

    if (no_store) {
        /* RFC 6749 5.1 */
        ngx_str_set(&v, "no-store");
        if (ngx_http_openbank_set_header(r, "Cache-Control", &v) == NULL) {
            return NGX_ERROR;
        }

        ngx_str_set(&v, "no-cache");
        if (ngx_http_openbank_set_header(r, "Pragma", &v) == NULL) {
            return NGX_ERROR;
        }
    }

    if (body->len == 0 || r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
        return ngx_http_send_header(r);
    }

    return ngx_http_openbank_send_response(r, body->data, body->len);
}


static ngx_int_t
ngx_http_openbank_oauth_error(ngx_http_request_t *r,
    ngx_http_openbank_oauth_err_t *err)
{
    u_char                   *p;
    ngx_str_t                 body, v;
    ngx_http_openbank_ctx_t  *ctx;

    ctx = ngx_http_openbank_get_ctx(r);
    if (ctx) {
        ctx->result.data = (u_char *) err->error;
        ctx->result.len = ngx_strlen(err->error);
    }

    body.data = ngx_pnalloc(r->pool, ngx_strlen(err->error)
                                     + ngx_strlen(err->description) + 64);
    if (body.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(body.data, "{\"error\":\"%s\",\"error_description\":"
                    "\"%s\"}\n", err->error, err->description);
    body.len = p - body.data;

    if (err->status == NGX_HTTP_UNAUTHORIZED) {
        if (err->basic) {
            ngx_str_set(&v, "Basic realm=\"openbank\"");

        } else {
            ngx_str_set(&v, "Bearer realm=\"openbank\"");
        }

        if (ngx_http_openbank_set_header(r, "WWW-Authenticate", &v) == NULL) {
            return NGX_ERROR;
        }
    }

    return ngx_http_openbank_oauth_send(r, err->status, &body, 1);
}


static size_t
ngx_http_openbank_json_len(ngx_str_t *s)
{
    return s->len + ngx_escape_json(NULL, s->data, s->len);
}


static u_char *
ngx_http_openbank_json_str(u_char *p, ngx_str_t *s)
{
    return (u_char *) ngx_escape_json(p, s->data, s->len);
}


/* at start and on reload: revocations come back from openbank_state */

ngx_int_t
ngx_http_openbank_oauth_init_module(ngx_cycle_t *cycle)
{
    ngx_http_openbank_main_conf_t  *obmcf;

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_core_module)
        == NULL)
    {
        return NGX_OK;
    }

    obmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                                ngx_http_openbank_module);

    if (obmcf == NULL || obmcf->oauth == NULL || obmcf->shm_zone == NULL
        || obmcf->state_path.len == 0)
    {
        return NGX_OK;
    }

    return ngx_http_openbank_revoked_load(cycle, obmcf);
}


/* what a client sent, fit for a log line: visible ASCII, not too long */

static ngx_str_t *
ngx_http_openbank_loggable(ngx_str_t *s)
{
    u_char            *p;
    static ngx_str_t   unfit = ngx_string("(not printable)");

    if (s->len > 255) {
        return &unfit;
    }

    for (p = s->data; p < s->data + s->len; p++) {
        if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\') {
            return &unfit;
        }
    }

    return s;
}
