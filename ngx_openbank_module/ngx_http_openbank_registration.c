
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Dynamic client registration (docs/tokens.md, "Dynamic client
 * registration"): RFC 7591 and RFC 7592, as UK Open Banking uses them.
 * POST <endpoint> with client metadata and a software statement, a JWT
 * of openbank_registration_directory, makes a registry partner on
 * openbank_registration_plan; GET, PUT and DELETE <endpoint>/<client_id>
 * with its registration access token read, change and end it.
 *
 * A client is the registry's (ngx_http_openbank_registry.c): its partner
 * "p<client_id>", the credential it authenticates with at the token
 * endpoint (a JWKS, or a certificate's SHA-256), and its registration
 * access token, a credential of its own type whose id is in the client
 * id ("dcr-<id>") and whose record keeps the registered metadata.  The
 * statement's jti is the record "s<SHA-256 of iss and jti>", made in the
 * same change: single-use on every worker, and durable with the journal.
 * Every change has its audit event, by the actor "registration".
 *
 * Errors are RFC 7591 3.2.2 bodies ({"error", "error_description"}),
 * those of the registration access token RFC 6750's invalid_token.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_admin.h>
#include <ngx_http_openbank_jwt.h>
#include <ngx_http_openbank_registration.h>
#include <ngx_http_openbank_registry.h>
#include <ngx_http_openbank_sync.h>
#include <ngx_http_openbank_util.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509.h>


#define NGX_HTTP_OPENBANK_DCR_ID_PREFIX     "dcr-"
#define NGX_HTTP_OPENBANK_DCR_ID_LEN        (sizeof("dcr-") - 1 + 16)
#define NGX_HTTP_OPENBANK_DCR_JTI_MAX       255

#define NGX_HTTP_OPENBANK_DCR_INVALID_METADATA   "invalid_client_metadata"
#define NGX_HTTP_OPENBANK_DCR_INVALID_STATEMENT  "invalid_software_statement"
#define NGX_HTTP_OPENBANK_DCR_UNAPPROVED  "unapproved_software_statement"
#define NGX_HTTP_OPENBANK_DCR_INVALID_REDIRECT   "invalid_redirect_uri"


/* a request to the endpoint */

struct ngx_http_openbank_dcr_req_s {
    ngx_str_t                     base;        /* the endpoint's path */
    ngx_str_t                     client_id;   /* of a client's URI */
    ngx_str_t                     cred;        /* its token's record */
    ngx_http_openbank_reg_cred_v_t
                                  cv;          /* its head */
    ngx_http_openbank_reply_t     reply;       /* once durable */
};

typedef struct ngx_http_openbank_dcr_req_s  ngx_http_openbank_dcr_req_t;


/* a refusal: the RFC 7591 code and a sentence */

typedef struct {
    const char                   *error;
    u_char                        text[512];
} ngx_http_openbank_dcr_err_t;


/* a client as it is to be registered */

typedef struct {
    ngx_uint_t                    auth_method;
    ngx_str_t                     jwks;        /* text */
    ngx_str_t                     hint;        /* kids, or a fingerprint */
    u_char                        cert[NGX_HTTP_OPENBANK_HASH_LEN];
                                               /* or the subject's SHA-256 */
    ngx_str_t                     subject_dn;  /* tls_client_auth by DN */
    ngx_str_t                     scopes;      /* granted, one space
                                                  apart */
    ngx_str_t                     software_id;
    ngx_str_t                     meta;        /* JSON members, without
                                                  the braces */
    ngx_str_t                     jti_key;     /* "s<hex>", or empty */
    int64_t                       exp;         /* the statement's */
} ngx_http_openbank_dcr_client_t;


static ngx_int_t ngx_http_openbank_dcr_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_openbank_dcr_dispatch(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *body);
static ngx_int_t ngx_http_openbank_dcr_too_large(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *body);
static ngx_int_t ngx_http_openbank_dcr_authenticate(ngx_http_request_t *r,
    ngx_http_openbank_dcr_req_t *d);
static ngx_int_t ngx_http_openbank_dcr_register(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_dcr_req_t *d,
    ngx_str_t *body);
static ngx_int_t ngx_http_openbank_dcr_claim(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *jti_key, ngx_str_t *body);
static ngx_int_t ngx_http_openbank_dcr_read(ngx_http_request_t *r,
    ngx_http_openbank_dcr_req_t *d);
static ngx_int_t ngx_http_openbank_dcr_update(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_dcr_req_t *d,
    ngx_str_t *body);
static ngx_int_t ngx_http_openbank_dcr_delete(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_dcr_req_t *d);
static ngx_int_t ngx_http_openbank_dcr_prepare(ngx_http_request_t *r,
    ngx_str_t *body, ngx_uint_t update, u_char *kept,
    ngx_http_openbank_dcr_client_t *cl, ngx_http_openbank_dcr_meta_t *m,
    ngx_http_openbank_dcr_err_t *e);
static ngx_int_t ngx_http_openbank_dcr_statement(ngx_http_request_t *r,
    ngx_str_t *text, ngx_http_openbank_jwt_t *jwt,
    ngx_http_openbank_dcr_err_t *e);
static ngx_int_t ngx_http_openbank_dcr_scopes(ngx_http_request_t *r,
    ngx_str_t *requested, ngx_uint_t from_statement,
    ngx_http_openbank_dcr_client_t *cl, ngx_http_openbank_dcr_err_t *e);
static ngx_int_t ngx_http_openbank_dcr_meta_json(ngx_http_request_t *r,
    ngx_http_openbank_dcr_meta_t *m, ngx_http_openbank_dcr_client_t *cl);
static ngx_int_t ngx_http_openbank_dcr_answer(ngx_http_request_t *r,
    ngx_http_openbank_dcr_req_t *d, ngx_str_t *client_id, int64_t issued,
    ngx_str_t *token, ngx_str_t *meta, ngx_str_t *jwks, ngx_str_t *out);
static ngx_int_t ngx_http_openbank_dcr_partner_op(ngx_http_request_t *r,
    ngx_http_openbank_reg_op_t *op, ngx_uint_t code,
    ngx_http_openbank_reg_partner_v_t *pv, ngx_str_t *client_id,
    ngx_str_t *scopes, ngx_str_t *quotas);
static ngx_int_t ngx_http_openbank_dcr_cred_op(ngx_http_request_t *r,
    ngx_http_openbank_reg_op_t *op, ngx_uint_t code, u_char *hex,
    ngx_uint_t type, u_char *hash, int64_t created, ngx_str_t *client_id,
    ngx_str_t *hint, ngx_str_t *data1, ngx_str_t *data2);
static ngx_int_t ngx_http_openbank_dcr_auth_op(ngx_http_request_t *r,
    ngx_http_openbank_reg_op_t *op, u_char *hex, ngx_str_t *client_id,
    ngx_http_openbank_dcr_client_t *cl);
static ngx_int_t ngx_http_openbank_dcr_jti_op(ngx_http_request_t *r,
    ngx_http_openbank_reg_op_t *op, ngx_http_openbank_dcr_client_t *cl);
static ngx_int_t ngx_http_openbank_dcr_commit(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_reg_op_t *ops,
    ngx_uint_t n, ngx_uint_t status, ngx_str_t *answer);
static ngx_int_t ngx_http_openbank_dcr_send(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *body);
static ngx_int_t ngx_http_openbank_dcr_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *error, const char *fmt, ...);
static ngx_int_t ngx_http_openbank_dcr_refuse(ngx_http_request_t *r,
    ngx_http_openbank_dcr_err_t *e);
static ngx_int_t ngx_http_openbank_dcr_fail(ngx_http_openbank_dcr_err_t *e,
    const char *error, const char *fmt, ...);
static ngx_int_t ngx_http_openbank_dcr_hex_id(u_char *hex);
static ngx_int_t ngx_http_openbank_dcr_valid_id(ngx_str_t *client_id);


static ngx_str_t  ngx_http_openbank_dcr_actor = ngx_string("registration");


static ngx_http_openbank_json_api_t  ngx_http_openbank_dcr_json = {
    NGX_HTTP_OPENBANK_DCR_BODY_MAX,
    "a registration request",
    ngx_http_openbank_dcr_dispatch,
    ngx_http_openbank_dcr_too_large
};


static ngx_http_openbank_dcr_conf_t *
ngx_http_openbank_dcr_conf(ngx_conf_t *cf,
    ngx_http_openbank_main_conf_t *obmcf)
{
    if (obmcf->registration == NULL) {
        obmcf->registration = ngx_pcalloc(cf->pool,
                                          sizeof(ngx_http_openbank_dcr_conf_t));
    }

    return obmcf->registration;
}


char *
ngx_http_openbank_registration_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_str_t                       path;
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_openbank_dcr_conf_t   *dcf;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_openbank_module);
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "is duplicate";
    }

    if (clcf->name.len == 0 || clcf->name.data[0] != '/' || clcf->regex) {
        return "must be in a location with a plain path";
    }

    dcf = ngx_http_openbank_dcr_conf(cf, obmcf);
    if (dcf == NULL) {
        return NGX_CONF_ERROR;
    }

    /* the collection's path, the one of the metadata */

    path = clcf->name;

    while (path.len > 1 && path.data[path.len - 1] == '/') {
        path.len--;
    }

    if (dcf->path.len
        && (dcf->path.len != path.len
            || ngx_strncmp(dcf->path.data, path.data, path.len) != 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"openbank_registration_endpoint\" is already "
                           "at \"%V\": the endpoint has one path",
                           &dcf->path);
        return NGX_CONF_ERROR;
    }

    dcf->path = path;
    clcf->handler = ngx_http_openbank_dcr_handler;
    obmcf->registration_api = 1;

    return NGX_CONF_OK;
}


/* openbank_registration_directory <jwks file> iss=<issuer> */

char *
ngx_http_openbank_registration_directory(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_openbank_main_conf_t *obmcf = conf;

    ngx_str_t                     *value;
    ngx_http_openbank_dcr_conf_t  *dcf;

    dcf = ngx_http_openbank_dcr_conf(cf, obmcf);
    if (dcf == NULL) {
        return NGX_CONF_ERROR;
    }

    if (dcf->directory) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[2].len <= 4 || ngx_strncmp(value[2].data, "iss=", 4) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": the directory's issuer is given as "
                           "iss=<issuer>", &value[2]);
        return NGX_CONF_ERROR;
    }

    dcf->iss.data = value[2].data + 4;
    dcf->iss.len = value[2].len - 4;

    if (ngx_conf_full_name(cf->cycle, &value[1], 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    dcf->directory_file = value[1];
    dcf->directory = ngx_http_openbank_jwks_load(cf, &value[1]);

    if (dcf->directory == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* openbank_registration_plan <plan> [scopes=<scope>,<scope>...] */

char *
ngx_http_openbank_registration_plan(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_openbank_main_conf_t *obmcf = conf;

    u_char                        *p, *q, *last;
    ngx_str_t                     *value, *s;
    ngx_http_openbank_dcr_conf_t  *dcf;

    dcf = ngx_http_openbank_dcr_conf(cf, obmcf);
    if (dcf == NULL) {
        return NGX_CONF_ERROR;
    }

    if (dcf->plan.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_openbank_valid_name(&value[1]) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid plan name \"%V\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    dcf->plan = value[1];

    if (cf->args->nelts == 2) {
        return NGX_CONF_OK;
    }

    if (value[2].len <= 7 || ngx_strncmp(value[2].data, "scopes=", 7) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": the scopes a registered client may have "
                           "are given as scopes=<scope>,<scope>...",
                           &value[2]);
        return NGX_CONF_ERROR;
    }

    dcf->scopes = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
    if (dcf->scopes == NULL) {
        return NGX_CONF_ERROR;
    }

    last = value[2].data + value[2].len;

    for (p = value[2].data + 7; /* void */; p = q + 1) {
        q = ngx_strlchr(p, last, ',');
        if (q == NULL) {
            q = last;
        }

        s = ngx_array_push(dcf->scopes);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        s->data = p;
        s->len = q - p;

        if (ngx_http_openbank_valid_name(s) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid scope \"%V\" "
                               "in \"%V\"", s, &value[2]);
            return NGX_CONF_ERROR;
        }

        if (q == last) {
            break;
        }
    }

    return NGX_CONF_OK;
}


/* at the end of the configuration: what the endpoint needs */

ngx_int_t
ngx_http_openbank_registration_init(ngx_conf_t *cf,
    ngx_http_openbank_main_conf_t *obmcf)
{
    ngx_uint_t                     i;
    ngx_http_openbank_plan_t      *plan;
    ngx_http_openbank_dcr_conf_t  *dcf;

    if (!obmcf->registration_api) {
        return NGX_OK;
    }

    dcf = obmcf->registration;

    if (dcf == NULL || dcf->directory == NULL || dcf->plan.len == 0
        || obmcf->state_path.len == 0 || obmcf->shm_zone == NULL
        || obmcf->issuer.len == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"openbank_registration_endpoint\" needs "
                           "\"openbank_registration_directory\", "
                           "\"openbank_registration_plan\", "
                           "\"openbank_issuer\", \"openbank_state\" and "
                           "\"openbank_zone\"");
        return NGX_ERROR;
    }

    plan = obmcf->plans.elts;

    for (i = 0; i < obmcf->plans.nelts; i++) {
        if (plan[i].name.len == dcf->plan.len
            && ngx_strncmp(plan[i].name.data, dcf->plan.data, dcf->plan.len)
               == 0)
        {
            return NGX_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"openbank_registration_plan\": there is no plan "
                       "\"%V\"", &dcf->plan);
    return NGX_ERROR;
}


static ngx_int_t
ngx_http_openbank_dcr_handler(ngx_http_request_t *r)
{
    u_char                       *p, *last;
    ngx_int_t                     rc;
    ngx_uint_t                    methods;
    const char                   *allow;
    ngx_http_openbank_ctx_t      *ctx;
    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_openbank_dcr_req_t  *d;

    rc = ngx_http_openbank_endpoint_start(r, (ngx_uint_t) -1, "");
    if (rc != NGX_OK) {
        return rc;
    }

    ctx = ngx_http_openbank_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    d = ngx_pcalloc(r->pool, sizeof(ngx_http_openbank_dcr_req_t));
    if (d == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->registration = d;

    /* <endpoint> is the collection, <endpoint>/<client_id> a client */

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    d->base = clcf->name;

    while (d->base.len && d->base.data[d->base.len - 1] == '/') {
        d->base.len--;
    }

    p = r->uri.data;
    last = p + r->uri.len;

    if (r->uri.len < d->base.len
        || ngx_strncmp(p, d->base.data, d->base.len) != 0)
    {
        goto not_found;
    }

    p += d->base.len;

    if (p < last && *p == '/') {
        p++;
    }

    if (p < last && ngx_strlchr(p, last, '/')) {
        goto not_found;
    }

    d->client_id.data = p;
    d->client_id.len = last - p;

    if (d->client_id.len == 0) {
        methods = NGX_HTTP_POST;
        allow = "POST";

    } else {
        methods = NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_PUT|NGX_HTTP_DELETE;
        allow = "GET, HEAD, PUT, DELETE";
    }

    if (!(r->method & methods)) {
        ctx->allow.data = (u_char *) allow;
        ctx->allow.len = ngx_strlen(allow);

        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_NOT_ALLOWED,
                                NGX_HTTP_OPENBANK_PROBLEM_METHOD_NOT_ALLOWED,
                                "method %V is not allowed on %V; allowed: "
                                "%s", &r->method_name, &r->uri, allow);
    }

    /* a client's URI: its registration access token, before its body */

    if (d->client_id.len) {
        rc = ngx_http_openbank_dcr_authenticate(r, d);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_DECLINED) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "openbank: registration access refused: no "
                          "client, or not its registration access token");

            return ngx_http_openbank_dcr_error(r, NGX_HTTP_UNAUTHORIZED,
                                     "invalid_token",
                                     "the registration access token is not "
                                     "that of the client, or the client is "
                                     "not registered");
        }
    }

    return ngx_http_openbank_json_request(r, ctx,
                                          r->method
                                          & (NGX_HTTP_POST|NGX_HTTP_PUT),
                                          &ngx_http_openbank_dcr_json);

not_found:

    return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_NOT_FOUND,
                                    NGX_HTTP_OPENBANK_PROBLEM_NOT_FOUND,
                                    "no registration resource at %V",
                                    &r->uri);
}


static ngx_int_t
ngx_http_openbank_dcr_too_large(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *body)
{
    return ngx_http_openbank_dcr_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                       NGX_HTTP_OPENBANK_DCR_INVALID_METADATA,
                                       "a registration request is at most "
                                       "%d bytes",
                                       NGX_HTTP_OPENBANK_DCR_BODY_MAX);
}


static ngx_int_t
ngx_http_openbank_dcr_dispatch(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *body)
{
    ngx_http_openbank_dcr_req_t  *d;

    d = ctx->registration;

    if (d->client_id.len == 0) {
        return ngx_http_openbank_dcr_register(r, ctx, d, body);
    }

    switch (r->method) {

    case NGX_HTTP_PUT:
        return ngx_http_openbank_dcr_update(r, ctx, d, body);

    case NGX_HTTP_DELETE:
        return ngx_http_openbank_dcr_delete(r, ctx, d);

    default:
        return ngx_http_openbank_dcr_read(r, d);
    }
}


/*
 * The registration access token of the client of the URI (RFC 7592 3):
 * its SHA-256 against the one kept, in constant time: NGX_OK,
 * NGX_DECLINED, NGX_ERROR.  A client that is not there is refused as a
 * wrong token is (RFC 7592 2.1).
 */

static ngx_int_t
ngx_http_openbank_dcr_authenticate(ngx_http_request_t *r,
    ngx_http_openbank_dcr_req_t *d)
{
    u_char                   *p, *last, hash[NGX_HTTP_OPENBANK_HASH_LEN];
    ngx_int_t                 rc;
    ngx_str_t                 token, key;
    ngx_uint_t                n, ok;
    ngx_table_elt_t          *h;
    static u_char             zero[NGX_HTTP_OPENBANK_HASH_LEN];

    h = ngx_http_openbank_find_header(&r->headers_in.headers,
                                      "Authorization", &n);

    ngx_str_null(&token);

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

    ok = 0;
    ngx_memzero(&d->cv, sizeof(d->cv));

    if (ngx_http_openbank_dcr_valid_id(&d->client_id) == NGX_OK) {
        key.len = 17;
        key.data = ngx_pnalloc(r->pool, key.len);
        if (key.data == NULL) {
            return NGX_ERROR;
        }

        key.data[0] = 'c';
        ngx_memcpy(key.data + 1,
                   d->client_id.data + sizeof(NGX_HTTP_OPENBANK_DCR_ID_PREFIX)
                   - 1, 16);

        rc = ngx_http_openbank_registry_get(r, &key, &d->cred);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_OK && d->cred.len >= sizeof(d->cv)) {
            ngx_memcpy(&d->cv, d->cred.data, sizeof(d->cv));

            ok = d->cv.type == NGX_HTTP_OPENBANK_CRED_REGISTRATION
                 && d->cv.partner_len == d->client_id.len
                 && d->cv.data_len >= 16
                 && d->cred.len >= sizeof(d->cv) + d->cv.partner_len
                                   + d->cv.hint_len + d->cv.data_len
                 && ngx_memcmp(d->cred.data + sizeof(d->cv),
                               d->client_id.data, d->client_id.len) == 0;
        }
    }

    if (CRYPTO_memcmp(hash, d->cv.hash, sizeof(hash)) != 0 || !ok
        || token.len == 0)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* POST <endpoint>: RFC 7591 3 */

static ngx_int_t
ngx_http_openbank_dcr_register(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_dcr_req_t *d,
    ngx_str_t *body)
{
    u_char                             hex_r[17], hex_a[17], secret[64],
                                       hash[NGX_HTTP_OPENBANK_HASH_LEN];
    ngx_int_t                          rc;
    ngx_str_t                          client_id, token, answer, hint,
                                       auth_id, empty;
    ngx_http_openbank_reg_op_t         ops[5];
    ngx_http_openbank_dcr_err_t        e;
    ngx_http_openbank_dcr_meta_t       m;
    ngx_http_openbank_dcr_conf_t      *dcf;
    ngx_http_openbank_main_conf_t     *obmcf;
    ngx_http_openbank_dcr_client_t     cl;
    ngx_http_openbank_reg_partner_v_t  pv;

    rc = ngx_http_openbank_dcr_prepare(r, body, 0, NULL, &cl, &m, &e);

    if (rc == NGX_DECLINED) {
        return ngx_http_openbank_dcr_refuse(r, &e);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* in cluster mode, the statement's jti claimed first: single use */

    if (cl.jti_key.len) {
        rc = ngx_http_openbank_dcr_claim(r, ctx, &cl.jti_key, body);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    dcf = obmcf->registration;

    if (ngx_http_openbank_dcr_hex_id(hex_r) != NGX_OK
        || ngx_http_openbank_dcr_hex_id(hex_a) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    client_id.len = NGX_HTTP_OPENBANK_DCR_ID_LEN;
    client_id.data = ngx_pnalloc(r->pool, client_id.len);
    if (client_id.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(client_id.data, NGX_HTTP_OPENBANK_DCR_ID_PREFIX "%*s",
                (size_t) 16, hex_r);

    if (ngx_http_openbank_registry_taken(obmcf, &client_id, &client_id)
        != NGX_OK)
    {
        return ngx_http_openbank_dcr_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                           "temporarily_unavailable",
                                           "the client id drawn is taken: "
                                           "try again");
    }

    /* the registration access token: 32 random bytes, shown once */

    if (ngx_http_openbank_admin_secret(secret, "obr_") != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    token.data = secret;
    token.len = ngx_strlen(secret);
    ngx_http_openbank_sha256(hash, token.data, token.len);

    ngx_memzero(&pv, sizeof(pv));
    pv.created = ngx_time();
    pv.status = NGX_HTTP_OPENBANK_REG_ACTIVE;

    ngx_str_null(&empty);
    ngx_str_set(&hint, "registration");
    auth_id.data = hex_a;
    auth_id.len = 16;

    if (ngx_http_openbank_dcr_partner_op(r, &ops[0],
                                         NGX_HTTP_OPENBANK_REG_PUT_NEW, &pv,
                                         &client_id, &cl.scopes, &empty)
        != NGX_OK
        || ngx_http_openbank_dcr_auth_op(r, &ops[1], hex_a, &client_id, &cl)
           != NGX_OK
        || ngx_http_openbank_dcr_cred_op(r, &ops[2],
                                         NGX_HTTP_OPENBANK_REG_PUT_NEW, hex_r,
                                         NGX_HTTP_OPENBANK_CRED_REGISTRATION,
                                         hash, pv.created, &client_id, &hint,
                                         &auth_id, &cl.meta)
           != NGX_OK
        || ngx_http_openbank_dcr_jti_op(r, &ops[3], &cl) != NGX_OK
        || ngx_http_openbank_audit_event(r, &ops[4],
                                         &ngx_http_openbank_dcr_actor,
                                         "registration.create", &client_id)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_openbank_dcr_answer(r, d, &client_id, pv.created, &token,
                                      &cl.meta, &cl.jwks, &answer);

    ngx_explicit_memzero(secret, sizeof(secret));

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "openbank: registration of client \"%V\" on plan \"%V\"",
                  &client_id, &dcf->plan);

    return ngx_http_openbank_dcr_commit(r, ctx, ops, 5, NGX_HTTP_CREATED,
                                        &answer);
}


/*
 * A software statement's jti claimed across the cluster (docs/cluster.md,
 * "Conflicts"): NGX_OK, else what the request answers (NGX_AGAIN: it
 * waits for Redis, and runs again once answered).
 */

static ngx_int_t
ngx_http_openbank_dcr_claim(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *jti_key, ngx_str_t *body)
{
    ngx_int_t   rc;
    ngx_str_t   taken;

    rc = ngx_http_openbank_sync_claim(r, ctx, jti_key, 1,
                                      ngx_http_openbank_dcr_dispatch, body,
                                      &taken);
    switch (rc) {

    case NGX_OK:
    case NGX_AGAIN:
        return rc;

    case NGX_DECLINED:
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "openbank: a software statement used before is "
                      "presented again");

        return ngx_http_openbank_dcr_error(r, NGX_HTTP_BAD_REQUEST,
                                   NGX_HTTP_OPENBANK_DCR_INVALID_STATEMENT,
                                   "the software statement's jti was "
                                   "already used");

    case NGX_BUSY:
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
                                "the cluster cannot answer: a client is "
                                "registered once its statement can be "
                                "claimed");

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}



/* GET <endpoint>/<client_id>: RFC 7592 2.1 */

static ngx_int_t
ngx_http_openbank_dcr_read(ngx_http_request_t *r,
    ngx_http_openbank_dcr_req_t *d)
{
    ngx_int_t                        rc;
    ngx_str_t                        key, value, meta, jwks, answer;
    ngx_http_openbank_reg_cred_v_t   cv;

    /* the record: its client id, hint, then the JWKS's id and the meta */

    key.len = 17;
    key.data = ngx_pnalloc(r->pool, key.len);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    key.data[0] = 'c';
    ngx_memcpy(key.data + 1, d->cred.data + sizeof(d->cv) + d->cv.partner_len
                             + d->cv.hint_len, 16);

    meta.data = d->cred.data + sizeof(d->cv) + d->cv.partner_len
                + d->cv.hint_len + 16;
    meta.len = d->cv.data_len - 16;

    ngx_str_null(&jwks);

    rc = ngx_http_openbank_registry_get(r, &key, &value);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_OK && value.len >= sizeof(cv)) {
        ngx_memcpy(&cv, value.data, sizeof(cv));

        if (cv.type == NGX_HTTP_OPENBANK_CRED_JWKS
            && value.len >= sizeof(cv) + cv.partner_len + cv.hint_len
                            + cv.data_len)
        {
            jwks.data = value.data + sizeof(cv) + cv.partner_len
                        + cv.hint_len;
            jwks.len = cv.data_len;
        }
    }

    if (ngx_http_openbank_dcr_answer(r, d, &d->client_id, d->cv.created,
                                     NULL, &meta, &jwks, &answer)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_openbank_dcr_send(r, NGX_HTTP_OK, &answer);
}


/*
 * PUT <endpoint>/<client_id>: RFC 7592 2.2.  The body is the whole of
 * the client's metadata again, with its client_id; a software statement
 * is optional, and one given is checked and used up as at registration.
 * The credential the client authenticates with is made again only when
 * it changes (and then the tokens of the old one end).
 */

static ngx_int_t
ngx_http_openbank_dcr_update(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_dcr_req_t *d,
    ngx_str_t *body)
{
    u_char                             hex_a[17], *kept;
    ngx_int_t                          rc;
    ngx_str_t                          key, value, pkey, pvalue, hint,
                                       auth_id, quotas, answer, old;
    ngx_uint_t                         n, same;
    ngx_http_openbank_reg_op_t         ops[6];
    ngx_http_openbank_dcr_err_t        e;
    ngx_http_openbank_dcr_meta_t       m;
    ngx_http_openbank_dcr_client_t     cl;
    ngx_http_openbank_reg_cred_v_t     cv;
    ngx_http_openbank_reg_partner_v_t  pv;

    /* the credential it authenticates with now: "c<id>", its id kept */

    key.len = 17;
    key.data = ngx_pnalloc(r->pool, key.len);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    key.data[0] = 'c';
    ngx_memcpy(key.data + 1, d->cred.data + sizeof(d->cv) + d->cv.partner_len
                             + d->cv.hint_len, 16);

    ngx_memzero(&cv, sizeof(cv));
    ngx_str_null(&old);
    kept = NULL;

    rc = ngx_http_openbank_registry_get(r, &key, &value);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_OK && value.len >= sizeof(cv)) {
        ngx_memcpy(&cv, value.data, sizeof(cv));

        if (value.len >= sizeof(cv) + cv.partner_len + cv.hint_len
                         + cv.data_len)
        {
            old.data = value.data + sizeof(cv) + cv.partner_len
                       + cv.hint_len;
            old.len = cv.data_len;
        }

        if (cv.type == NGX_HTTP_OPENBANK_CRED_CERTIFICATE) {
            kept = cv.hash;
        }

    } else {
        cv.type = 0;
    }

    rc = ngx_http_openbank_dcr_prepare(r, body, 1, kept, &cl, &m, &e);

    if (rc == NGX_DECLINED) {
        return ngx_http_openbank_dcr_refuse(r, &e);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (m.client_id.len != d->client_id.len
        || ngx_strncmp(m.client_id.data, d->client_id.data,
                       d->client_id.len) != 0)
    {
        return ngx_http_openbank_dcr_error(r, NGX_HTTP_BAD_REQUEST,
                                   NGX_HTTP_OPENBANK_DCR_INVALID_METADATA,
                                   "\"client_id\" must be the client's, "
                                   "as RFC 7592 2.2 says");
    }

    /* a new statement: its jti claimed first in cluster mode */

    if (cl.jti_key.len) {
        rc = ngx_http_openbank_dcr_claim(r, ctx, &cl.jti_key, body);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    /* the partner: its plan, status and quotas stay, its scopes change */

    pkey.len = 1 + d->client_id.len;
    pkey.data = ngx_pnalloc(r->pool, pkey.len);
    if (pkey.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    pkey.data[0] = 'p';
    ngx_memcpy(pkey.data + 1, d->client_id.data, d->client_id.len);

    rc = ngx_http_openbank_registry_get(r, &pkey, &pvalue);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_OK && pvalue.len >= sizeof(pv)) {
        ngx_memcpy(&pv, pvalue.data, sizeof(pv));

        if (pvalue.len < sizeof(pv) + pv.plan_len + pv.client_id_len
                         + pv.scopes_len + pv.quotas_len)
        {
            rc = NGX_DECLINED;
        }

    } else {
        rc = NGX_DECLINED;
    }

    if (rc != NGX_OK) {
        return ngx_http_openbank_dcr_error(r, NGX_HTTP_UNAUTHORIZED,
                                           "invalid_token",
                                           "the client is not registered");
    }

    quotas.data = pvalue.data + sizeof(pv) + pv.plan_len + pv.client_id_len
                  + pv.scopes_len;
    quotas.len = pv.quotas_len;

    n = 0;

    if (ngx_http_openbank_dcr_partner_op(r, &ops[n++],
                                         NGX_HTTP_OPENBANK_REG_PUT, &pv,
                                         &d->client_id, &cl.scopes, &quotas)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (cl.auth_method == NGX_HTTP_OPENBANK_DCR_PRIVATE_KEY_JWT) {
        same = cv.type == NGX_HTTP_OPENBANK_CRED_JWKS
               && old.len == cl.jwks.len
               && ngx_memcmp(old.data, cl.jwks.data, cl.jwks.len) == 0;

    } else {
        same = cv.type == (cl.subject_dn.len
                           ? NGX_HTTP_OPENBANK_CRED_SUBJECT_DN
                           : NGX_HTTP_OPENBANK_CRED_CERTIFICATE)
               && ngx_memcmp(cv.hash, cl.cert, sizeof(cl.cert)) == 0;
    }

    ngx_memcpy(hex_a, key.data + 1, 16);
    hex_a[16] = '\0';

    if (!same) {
        if (cv.type) {
            ops[n].op = NGX_HTTP_OPENBANK_REG_DEL;
            ops[n].key = key;
            ngx_str_null(&ops[n].value);
            n++;
        }

        if (ngx_http_openbank_dcr_hex_id(hex_a) != NGX_OK
            || ngx_http_openbank_dcr_auth_op(r, &ops[n++], hex_a,
                                             &d->client_id, &cl)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* the token's record, with the metadata; the statement; the event */

    hint.data = d->cred.data + sizeof(d->cv) + d->cv.partner_len;
    hint.len = d->cv.hint_len;
    auth_id.data = hex_a;
    auth_id.len = 16;

    if (ngx_http_openbank_dcr_cred_op(r, &ops[n++], NGX_HTTP_OPENBANK_REG_PUT,
                                      d->client_id.data
                                      + sizeof(NGX_HTTP_OPENBANK_DCR_ID_PREFIX)
                                      - 1,
                                      NGX_HTTP_OPENBANK_CRED_REGISTRATION,
                                      d->cv.hash, d->cv.created,
                                      &d->client_id, &hint, &auth_id,
                                      &cl.meta)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (cl.jti_key.len
        && ngx_http_openbank_dcr_jti_op(r, &ops[n++], &cl) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_openbank_audit_event(r, &ops[n++],
                                      &ngx_http_openbank_dcr_actor,
                                      "registration.update", &d->client_id)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_openbank_dcr_answer(r, d, &d->client_id, d->cv.created,
                                     NULL, &cl.meta, &cl.jwks, &answer)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_openbank_dcr_commit(r, ctx, ops, n, NGX_HTTP_OK, &answer);
}


/* DELETE <endpoint>/<client_id>: RFC 7592 2.3; its credentials go too */

static ngx_int_t
ngx_http_openbank_dcr_delete(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_dcr_req_t *d)
{
    ngx_str_t                   answer;
    ngx_http_openbank_reg_op_t  ops[2];

    ops[0].op = NGX_HTTP_OPENBANK_REG_DEL_ALL;
    ops[0].key.len = 1 + d->client_id.len;
    ops[0].key.data = ngx_pnalloc(r->pool, ops[0].key.len);
    if (ops[0].key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ops[0].key.data[0] = 'p';
    ngx_memcpy(ops[0].key.data + 1, d->client_id.data, d->client_id.len);
    ngx_str_null(&ops[0].value);

    if (ngx_http_openbank_audit_event(r, &ops[1],
                                      &ngx_http_openbank_dcr_actor,
                                      "registration.delete", &d->client_id)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_null(&answer);

    return ngx_http_openbank_dcr_commit(r, ctx, ops, 2, NGX_HTTP_NO_CONTENT,
                                        &answer);
}


/*
 * The body, its software statement checked, the statement's claims over
 * the body's (RFC 7591 2.3), into the client to register: NGX_OK,
 * NGX_DECLINED with "e", NGX_ERROR.  At registration the statement is
 * required; at an update, "kept" is the SHA-256 of the certificate the
 * client has (or NULL), kept unless a statement says another.
 */

static ngx_int_t
ngx_http_openbank_dcr_prepare(ngx_http_request_t *r, ngx_str_t *body,
    ngx_uint_t update, u_char *kept, ngx_http_openbank_dcr_client_t *cl,
    ngx_http_openbank_dcr_meta_t *m, ngx_http_openbank_dcr_err_t *e)
{
    u_char                          *p, *s, digest[NGX_HTTP_OPENBANK_HASH_LEN];
    size_t                           len;
    ngx_int_t                        rc;
    ngx_str_t                        x5t, dst, value, in;
    ngx_uint_t                       i, bit;
    ngx_pool_t                      *tmp;
    ngx_http_openbank_jwk_t         *jwk;
    ngx_http_openbank_jwt_t          jwt;
    ngx_http_openbank_jwks_t         jwks;
    ngx_http_openbank_dcr_meta_t     sm;
    ngx_http_openbank_partner_t     *partner;
    ngx_http_openbank_main_conf_t   *obmcf;
    static const char               *codes[] = {
        NGX_HTTP_OPENBANK_DCR_INVALID_METADATA,
        NGX_HTTP_OPENBANK_DCR_INVALID_METADATA,
        NGX_HTTP_OPENBANK_DCR_INVALID_STATEMENT,
        NGX_HTTP_OPENBANK_DCR_INVALID_REDIRECT
    };

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    ngx_memzero(cl, sizeof(ngx_http_openbank_dcr_client_t));
    ngx_memzero(&jwt, sizeof(ngx_http_openbank_jwt_t));
    ngx_memzero(m, sizeof(ngx_http_openbank_dcr_meta_t));
    ngx_memzero(&sm, sizeof(ngx_http_openbank_dcr_meta_t));

    e->error = NGX_HTTP_OPENBANK_DCR_INVALID_METADATA;

    rc = ngx_http_openbank_dcr_parse(r->pool, body, 0, m, e->text,
                                     sizeof(e->text));
    if (rc != NGX_OK) {
        e->error = codes[m->error & 3];
        return rc;
    }

    /* the software statement */

    if (!(m->present & NGX_HTTP_OPENBANK_DCR_STATEMENT)) {
        if (!update) {
            return ngx_http_openbank_dcr_fail(e,
                                     NGX_HTTP_OPENBANK_DCR_INVALID_STATEMENT,
                                     "a \"software_statement\" of the "
                                     "directory is required");
        }

        goto metadata;
    }

    rc = ngx_http_openbank_dcr_statement(r, &m->software_statement, &jwt, e);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_openbank_dcr_claims(r->pool, &m->software_statement, &sm,
                                      e->text, sizeof(e->text));
    if (rc != NGX_OK) {
        e->error = NGX_HTTP_OPENBANK_DCR_INVALID_STATEMENT;
        return rc;
    }

    /* used once: "s<hex SHA-256 of iss LF jti>", checked again at commit */

    len = jwt.iss.len + 1 + jwt.jti.len;
    p = ngx_pnalloc(r->pool, len);
    cl->jti_key.data = ngx_pnalloc(r->pool, 1 + 2 * sizeof(digest));
    if (p == NULL || cl->jti_key.data == NULL) {
        return NGX_ERROR;
    }

    s = ngx_cpymem(p, jwt.iss.data, jwt.iss.len);
    *s++ = '\n';
    ngx_memcpy(s, jwt.jti.data, jwt.jti.len);

    ngx_http_openbank_sha256(digest, p, len);

    cl->jti_key.data[0] = 's';
    ngx_hex_dump(cl->jti_key.data + 1, digest, sizeof(digest));
    cl->jti_key.len = 1 + 2 * sizeof(digest);
    cl->exp = jwt.exp;

    rc = ngx_http_openbank_registry_get(r, &cl->jti_key, &value);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_OK) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "openbank: a software statement used before is "
                      "presented again");

        return ngx_http_openbank_dcr_fail(e,
                                     NGX_HTTP_OPENBANK_DCR_INVALID_STATEMENT,
                                     "the software statement's jti was "
                                     "already used");
    }

    /* what the statement says wins over what the body says */

    for (i = 0; i < 16; i++) {
        bit = (ngx_uint_t) 1 << i;

        if (!(sm.present & bit)) {
            continue;
        }

        switch (bit) {

        case NGX_HTTP_OPENBANK_DCR_AUTH_METHOD:
            m->auth_method = sm.auth_method;
            break;

        case NGX_HTTP_OPENBANK_DCR_JWKS:
            m->jwks = sm.jwks;
            break;

        case NGX_HTTP_OPENBANK_DCR_SCOPE:
            m->scope = sm.scope;
            break;

        case NGX_HTTP_OPENBANK_DCR_CLIENT_NAME:
            m->client_name = sm.client_name;
            break;

        case NGX_HTTP_OPENBANK_DCR_SOFTWARE_ID:
            m->software_id = sm.software_id;
            break;

        case NGX_HTTP_OPENBANK_DCR_SUBJECT_DN:
            m->subject_dn = sm.subject_dn;
            break;

        case NGX_HTTP_OPENBANK_DCR_REDIRECT_URIS:
            ngx_memcpy(m->uris, sm.uris, sizeof(sm.uris));
            m->nuris = sm.nuris;
            break;

        default:
            break;
        }

        m->present |= bit;
    }

    if (jwt.has_cnf) {
        x5t = jwt.x5t;
        dst.data = cl->cert;

        if (x5t.len != 43
            || ngx_http_openbank_decode_base64url(&dst, &x5t) != NGX_OK
            || dst.len != sizeof(cl->cert))
        {
            return ngx_http_openbank_dcr_fail(e,
                                     NGX_HTTP_OPENBANK_DCR_INVALID_STATEMENT,
                                     "the statement's cnf x5t#S256 is not a "
                                     "base64url SHA-256");
        }
    }

metadata:

    cl->software_id = m->software_id;

    if (!(m->present & NGX_HTTP_OPENBANK_DCR_AUTH_METHOD)) {
        return ngx_http_openbank_dcr_fail(e,
                                     NGX_HTTP_OPENBANK_DCR_INVALID_METADATA,
                                     "\"token_endpoint_auth_method\" is "
                                     "required: private_key_jwt or "
                                     "tls_client_auth");
    }

    cl->auth_method = m->auth_method;

    if ((m->present & NGX_HTTP_OPENBANK_DCR_SUBJECT_DN)
        && (cl->auth_method != NGX_HTTP_OPENBANK_DCR_TLS_CLIENT_AUTH
            || jwt.has_cnf))
    {
        return ngx_http_openbank_dcr_fail(e,
                                     NGX_HTTP_OPENBANK_DCR_INVALID_METADATA,
                                     "\"tls_client_auth_subject_dn\" is for "
                                     "tls_client_auth, without the "
                                     "statement's certificate (cnf "
                                     "x5t#S256)");
    }

    if (cl->auth_method == NGX_HTTP_OPENBANK_DCR_TLS_CLIENT_AUTH
        && (m->present & NGX_HTTP_OPENBANK_DCR_JWKS))
    {
        return ngx_http_openbank_dcr_fail(e,
                                     NGX_HTTP_OPENBANK_DCR_INVALID_METADATA,
                                     "\"jwks\" is for private_key_jwt, not "
                                     "tls_client_auth");
    }

    if (cl->auth_method == NGX_HTTP_OPENBANK_DCR_TLS_CLIENT_AUTH
        && (m->present & NGX_HTTP_OPENBANK_DCR_SUBJECT_DN))
    {
        /* the certificate's subject, RFC 4514, as OpenSSL prints it */

        cl->subject_dn = m->subject_dn;
        ngx_http_openbank_sha256(cl->cert, m->subject_dn.data,
                                 m->subject_dn.len);
        cl->hint.data = m->subject_dn.data;
        cl->hint.len = ngx_min(m->subject_dn.len, 255);

    } else if (cl->auth_method == NGX_HTTP_OPENBANK_DCR_TLS_CLIENT_AUTH) {
        if (!(m->present & NGX_HTTP_OPENBANK_DCR_STATEMENT && jwt.has_cnf)
            && kept == NULL)
        {
            return ngx_http_openbank_dcr_fail(e,
                                     NGX_HTTP_OPENBANK_DCR_INVALID_METADATA,
                                     "tls_client_auth needs the software "
                                     "statement's certificate fingerprint "
                                     "(cnf x5t#S256) or "
                                     "\"tls_client_auth_subject_dn\"");
        }

        if (!(m->present & NGX_HTTP_OPENBANK_DCR_STATEMENT && jwt.has_cnf)) {
            ngx_memcpy(cl->cert, kept, sizeof(cl->cert));
        }

        /* one namespace of certificates with the configuration's */

        partner = obmcf->partners.elts;

        for (i = 0; i < obmcf->partners.nelts; i++) {
            if (partner[i].has_certificate
                && ngx_memcmp(partner[i].certificate, cl->cert,
                              sizeof(cl->cert)) == 0)
            {
                return ngx_http_openbank_dcr_fail(e,
                                     NGX_HTTP_OPENBANK_DCR_INVALID_METADATA,
                                     "the certificate is another client's");
            }
        }

        cl->hint.data = ngx_pnalloc(r->pool, 7 + 16);
        if (cl->hint.data == NULL) {
            return NGX_ERROR;
        }

        s = ngx_cpymem(cl->hint.data, "sha256:", 7);
        s = ngx_hex_dump(s, cl->cert, 8);
        cl->hint.len = s - cl->hint.data;

    } else {
        if (!(m->present & NGX_HTTP_OPENBANK_DCR_JWKS)) {
            return ngx_http_openbank_dcr_fail(e,
                                     NGX_HTTP_OPENBANK_DCR_INVALID_METADATA,
                                     "private_key_jwt needs \"jwks\", the "
                                     "client's public keys by value");
        }

        tmp = ngx_create_pool(4096, r->connection->log);
        if (tmp == NULL) {
            return NGX_ERROR;
        }

        in = m->jwks;

        if (ngx_http_openbank_jwks_parse(tmp, &in, &jwks, e->text,
                                         sizeof(e->text) - 16)
            != NGX_OK)
        {
            ngx_destroy_pool(tmp);

            ngx_memmove(e->text + 8, e->text, ngx_strlen(e->text) + 1);
            ngx_memcpy(e->text, "\"jwks\": ", 8);
            e->error = NGX_HTTP_OPENBANK_DCR_INVALID_METADATA;
            return NGX_DECLINED;
        }

        jwk = jwks.keys.elts;
        len = 0;

        for (i = 0; i < jwks.keys.nelts; i++) {
            len += jwk[i].kid.len + 1;
        }

        cl->hint.data = ngx_pnalloc(r->pool, len + 1);
        if (cl->hint.data == NULL) {
            ngx_destroy_pool(tmp);
            return NGX_ERROR;
        }

        s = cl->hint.data;

        for (i = 0; i < jwks.keys.nelts; i++) {
            if (i) {
                *s++ = ',';
            }

            s = ngx_cpymem(s, jwk[i].kid.data, jwk[i].kid.len);
        }

        cl->hint.len = ngx_min((size_t) (s - cl->hint.data), 1024);
        cl->jwks = m->jwks;

        ngx_destroy_pool(tmp);
    }

    rc = ngx_http_openbank_dcr_scopes(r, &m->scope,
                                      (sm.present
                                       & NGX_HTTP_OPENBANK_DCR_SCOPE) != 0,
                                      cl, e);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_openbank_dcr_meta_json(r, m, cl);
}


/*
 * The software statement: a JWS of a key of the directory, with the alg
 * of that key (its JWK's "alg", else PS256, ES256 or EdDSA by its type),
 * the directory's iss, an exp to come and a jti.
 */

static ngx_int_t
ngx_http_openbank_dcr_statement(ngx_http_request_t *r, ngx_str_t *text,
    ngx_http_openbank_jwt_t *jwt, ngx_http_openbank_dcr_err_t *e)
{
    time_t                          now;
    ngx_int_t                       rc;
    ngx_str_t                       alg;
    const char                     *why;
    ngx_http_openbank_jwk_t        *jwk;
    ngx_http_openbank_dcr_conf_t   *dcf;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    dcf = obmcf->registration;

    if (ngx_http_openbank_jwt_parse(r->pool, text, jwt, &why) != NGX_OK) {
        return ngx_http_openbank_dcr_fail(e,
                                     NGX_HTTP_OPENBANK_DCR_INVALID_STATEMENT,
                                     "the software statement %s", why);
    }

    if (jwt->kid.len) {
        jwk = ngx_http_openbank_jwks_find(dcf->directory, &jwt->kid);

    } else {
        jwk = (dcf->directory->keys.nelts == 1) ? dcf->directory->keys.elts
                                                : NULL;
    }

    if (jwk == NULL) {
        return ngx_http_openbank_dcr_fail(e, NGX_HTTP_OPENBANK_DCR_UNAPPROVED,
                                          "the software statement's kid is "
                                          "not a key of the directory");
    }

    alg = jwk->alg;

    if (alg.len == 0) {
        switch (jwk->type) {

        case NGX_HTTP_OPENBANK_KEY_RSA:
            ngx_str_set(&alg, "PS256");
            break;

        case NGX_HTTP_OPENBANK_KEY_EC_P256:
            ngx_str_set(&alg, "ES256");
            break;

        case NGX_HTTP_OPENBANK_KEY_ED25519:
            ngx_str_set(&alg, "EdDSA");
            break;

        default:
            break;
        }
    }

    if (alg.len == 0 || jwt->alg.len != alg.len
        || ngx_strncmp(jwt->alg.data, alg.data, alg.len) != 0)
    {
        return ngx_http_openbank_dcr_fail(e,
                                     NGX_HTTP_OPENBANK_DCR_INVALID_STATEMENT,
                                     "the software statement's alg is not "
                                     "its key's (%V)", &alg);
    }

    rc = ngx_http_openbank_jwt_verify(jwt, jwk->pkey, jwk->type, &alg, NULL);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "openbank: a software statement with a bad "
                      "signature");

        return ngx_http_openbank_dcr_fail(e,
                                     NGX_HTTP_OPENBANK_DCR_INVALID_STATEMENT,
                                     "the software statement's signature "
                                     "is not valid");
    }

    if (jwt->iss.len != dcf->iss.len
        || ngx_strncmp(jwt->iss.data, dcf->iss.data, dcf->iss.len) != 0)
    {
        return ngx_http_openbank_dcr_fail(e, NGX_HTTP_OPENBANK_DCR_UNAPPROVED,
                                          "the software statement's iss is "
                                          "not the directory's");
    }

    now = ngx_time();

    if (!jwt->has_exp || jwt->exp + obmcf->clock_skew <= now) {
        return ngx_http_openbank_dcr_fail(e,
                                     NGX_HTTP_OPENBANK_DCR_INVALID_STATEMENT,
                                     "the software statement has expired, "
                                     "or has no exp");
    }

    if ((jwt->has_nbf && jwt->nbf > now + obmcf->clock_skew)
        || (jwt->has_iat && jwt->iat > now + obmcf->clock_skew))
    {
        return ngx_http_openbank_dcr_fail(e,
                                     NGX_HTTP_OPENBANK_DCR_INVALID_STATEMENT,
                                     "the software statement is not valid "
                                     "yet");
    }

    if (jwt->jti.len == 0 || jwt->jti.len > NGX_HTTP_OPENBANK_DCR_JTI_MAX) {
        return ngx_http_openbank_dcr_fail(e,
                                     NGX_HTTP_OPENBANK_DCR_INVALID_STATEMENT,
                                     "the software statement needs a jti");
    }

    return NGX_OK;
}


/*
 * The scopes granted: those asked (the statement's "scope" over the
 * body's), each one openbank_registration_plan's scopes= allows (or,
 * without scopes=, one a location of the configuration uses); none
 * asked, all of scopes=.
 */

static ngx_int_t
ngx_http_openbank_dcr_scopes(ngx_http_request_t *r, ngx_str_t *requested,
    ngx_uint_t from_statement, ngx_http_openbank_dcr_client_t *cl,
    ngx_http_openbank_dcr_err_t *e)
{
    u_char                         *p, *s;
    ngx_str_t                       word, *allowed;
    ngx_uint_t                      i, n, found;
    ngx_http_openbank_ref_t        *ref;
    ngx_http_openbank_dcr_conf_t   *dcf;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    dcf = obmcf->registration;

    if (requested->len == 0) {
        if (dcf->scopes == NULL) {
            return ngx_http_openbank_dcr_fail(e,
                                     NGX_HTTP_OPENBANK_DCR_INVALID_METADATA,
                                     "\"scope\" is required");
        }

        allowed = dcf->scopes->elts;
        n = 0;

        for (i = 0; i < dcf->scopes->nelts; i++) {
            n += allowed[i].len + 1;
        }

        cl->scopes.data = ngx_pnalloc(r->pool, n);
        if (cl->scopes.data == NULL) {
            return NGX_ERROR;
        }

        s = cl->scopes.data;

        for (i = 0; i < dcf->scopes->nelts; i++) {
            if (i) {
                *s++ = ' ';
            }

            s = ngx_cpymem(s, allowed[i].data, allowed[i].len);
        }

        cl->scopes.len = s - cl->scopes.data;
        return NGX_OK;
    }

    p = requested->data;

    while (ngx_http_openbank_next_word(&p, requested->data + requested->len,
                                       &word)
           == NGX_OK)
    {
        found = 0;

        if (dcf->scopes) {
            allowed = dcf->scopes->elts;

            for (i = 0; !found && i < dcf->scopes->nelts; i++) {
                found = (allowed[i].len == word.len
                         && ngx_strncmp(allowed[i].data, word.data, word.len)
                            == 0);
            }

        } else {
            ref = obmcf->refs.elts;

            for (i = 0; !found && i < obmcf->refs.nelts; i++) {
                found = (ngx_strcmp(ref[i].directive.data, "openbank_scope")
                         == 0
                         && ref[i].name.len == word.len
                         && ngx_strncmp(ref[i].name.data, word.data,
                                        word.len) == 0);
            }
        }

        if (!found) {
            return ngx_http_openbank_dcr_fail(e,
                                     from_statement
                                     ? NGX_HTTP_OPENBANK_DCR_UNAPPROVED
                                     : NGX_HTTP_OPENBANK_DCR_INVALID_METADATA,
                                     "the scope \"%V\" is not one a "
                                     "registered client may have", &word);
        }
    }

    cl->scopes = *requested;

    return NGX_OK;
}


/* the registered metadata, as JSON members (RFC 7591 3.2.1) */

static ngx_int_t
ngx_http_openbank_dcr_meta_json(ngx_http_request_t *r,
    ngx_http_openbank_dcr_meta_t *m, ngx_http_openbank_dcr_client_t *cl)
{
    ngx_uint_t               i;
    ngx_http_openbank_out_t  o;

    ngx_http_openbank_out_init(&o, r->pool);
    ngx_http_openbank_out_raw(&o, "\"token_endpoint_auth_method\":\"%s\","
                              "\"grant_types\":[\"client_credentials\"],"
                              "\"response_types\":[],\"scope\":",
                              cl->auth_method
                              == NGX_HTTP_OPENBANK_DCR_PRIVATE_KEY_JWT
                              ? "private_key_jwt" : "tls_client_auth");
    ngx_http_openbank_out_str(&o, &cl->scopes);

    if (m->client_name.len) {
        ngx_http_openbank_out_raw(&o, ",\"client_name\":");
        ngx_http_openbank_out_str(&o, &m->client_name);
    }

    if (m->software_id.len) {
        ngx_http_openbank_out_raw(&o, ",\"software_id\":");
        ngx_http_openbank_out_str(&o, &m->software_id);
    }

    if (cl->subject_dn.len) {
        ngx_http_openbank_out_raw(&o, ",\"tls_client_auth_subject_dn\":");
        ngx_http_openbank_out_str(&o, &cl->subject_dn);
    }

    if (m->nuris) {
        ngx_http_openbank_out_raw(&o, ",\"redirect_uris\":[");

        for (i = 0; i < m->nuris; i++) {
            ngx_http_openbank_out_raw(&o, i ? "," : "");
            ngx_http_openbank_out_str(&o, &m->uris[i]);
        }

        ngx_http_openbank_out_raw(&o, "]");
    }

    if (o.failed) {
        return NGX_ERROR;
    }

    cl->meta.data = o.start;
    cl->meta.len = o.pos - o.start;

    return NGX_OK;
}


/* the client as RFC 7591 3.2.1 and RFC 7592 3 show it */

static ngx_int_t
ngx_http_openbank_dcr_answer(ngx_http_request_t *r,
    ngx_http_openbank_dcr_req_t *d, ngx_str_t *client_id, int64_t issued,
    ngx_str_t *token, ngx_str_t *meta, ngx_str_t *jwks, ngx_str_t *out)
{
    ngx_str_t                       uri;
    ngx_http_openbank_out_t         o;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    uri.len = obmcf->issuer.len + d->base.len + 1 + client_id->len;
    uri.data = ngx_pnalloc(r->pool, uri.len);
    if (uri.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(uri.data, "%V%V/%V", &obmcf->issuer, &d->base, client_id);

    ngx_http_openbank_out_init(&o, r->pool);
    ngx_http_openbank_out_raw(&o, "{\"client_id\":");
    ngx_http_openbank_out_str(&o, client_id);
    ngx_http_openbank_out_raw(&o, ",\"client_id_issued_at\":%L,", issued);

    if (token) {
        ngx_http_openbank_out_raw(&o, "\"registration_access_token\":");
        ngx_http_openbank_out_str(&o, token);
        ngx_http_openbank_out_raw(&o, ",");
    }

    ngx_http_openbank_out_raw(&o, "\"registration_client_uri\":");
    ngx_http_openbank_out_str(&o, &uri);
    ngx_http_openbank_out_raw(&o, ",%V", meta);

    if (jwks->len) {
        ngx_http_openbank_out_raw(&o, ",\"jwks\":");

        if (ngx_http_openbank_out_room(&o, jwks->len) == NGX_OK) {
            o.pos = ngx_cpymem(o.pos, jwks->data, jwks->len);
        }
    }

    ngx_http_openbank_out_raw(&o, "}\n");

    if (o.failed) {
        return NGX_ERROR;
    }

    out->data = o.start;
    out->len = o.pos - o.start;

    return NGX_OK;
}


/* the record of a registry partner: its head, then its strings */

static ngx_int_t
ngx_http_openbank_dcr_partner_op(ngx_http_request_t *r,
    ngx_http_openbank_reg_op_t *op, ngx_uint_t code,
    ngx_http_openbank_reg_partner_v_t *pv, ngx_str_t *client_id,
    ngx_str_t *scopes, ngx_str_t *quotas)
{
    u_char                        *s;
    ngx_str_t                     *plan;
    ngx_http_openbank_main_conf_t *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    plan = &obmcf->registration->plan;

    pv->plan_len = (uint16_t) plan->len;
    pv->client_id_len = (uint16_t) client_id->len;
    pv->scopes_len = (uint16_t) scopes->len;
    pv->quotas_len = (uint16_t) quotas->len;

    op->op = code;
    op->key.len = 1 + client_id->len;
    op->key.data = ngx_pnalloc(r->pool, op->key.len);
    op->value.len = sizeof(*pv) + plan->len + client_id->len + scopes->len
                    + quotas->len;
    op->value.data = ngx_pnalloc(r->pool, op->value.len);

    if (op->key.data == NULL || op->value.data == NULL) {
        return NGX_ERROR;
    }

    op->key.data[0] = 'p';
    ngx_memcpy(op->key.data + 1, client_id->data, client_id->len);

    s = ngx_cpymem(op->value.data, pv, sizeof(*pv));
    s = ngx_cpymem(s, plan->data, plan->len);
    s = ngx_cpymem(s, client_id->data, client_id->len);
    s = ngx_cpymem(s, scopes->data, scopes->len);
    ngx_memcpy(s, quotas->data, quotas->len);

    return NGX_OK;
}


/* the record of a credential: its head, partner, hint, then its data */

static ngx_int_t
ngx_http_openbank_dcr_cred_op(ngx_http_request_t *r,
    ngx_http_openbank_reg_op_t *op, ngx_uint_t code, u_char *hex,
    ngx_uint_t type, u_char *hash, int64_t created, ngx_str_t *client_id,
    ngx_str_t *hint, ngx_str_t *data1, ngx_str_t *data2)
{
    u_char                          *s;
    ngx_http_openbank_reg_cred_v_t   cv;

    ngx_memzero(&cv, sizeof(cv));
    cv.created = created;
    cv.type = (uint32_t) type;
    cv.partner_len = (uint16_t) client_id->len;
    cv.hint_len = (uint16_t) hint->len;
    cv.data_len = (uint32_t) (data1->len + data2->len);

    if (hash) {
        ngx_memcpy(cv.hash, hash, sizeof(cv.hash));
    }

    op->op = code;
    op->key.len = 17;
    op->key.data = ngx_pnalloc(r->pool, 17);
    op->value.len = sizeof(cv) + client_id->len + hint->len + cv.data_len;
    op->value.data = ngx_pnalloc(r->pool, op->value.len);

    if (op->key.data == NULL || op->value.data == NULL
        || op->value.len > NGX_HTTP_OPENBANK_REG_VALUE_MAX)
    {
        return NGX_ERROR;
    }

    op->key.data[0] = 'c';
    ngx_memcpy(op->key.data + 1, hex, 16);

    s = ngx_cpymem(op->value.data, &cv, sizeof(cv));
    s = ngx_cpymem(s, client_id->data, client_id->len);
    s = ngx_cpymem(s, hint->data, hint->len);
    s = ngx_cpymem(s, data1->data, data1->len);
    ngx_memcpy(s, data2->data, data2->len);

    return NGX_OK;
}


/* the credential of the token endpoint: the JWKS, or the certificate */

static ngx_int_t
ngx_http_openbank_dcr_auth_op(ngx_http_request_t *r,
    ngx_http_openbank_reg_op_t *op, u_char *hex, ngx_str_t *client_id,
    ngx_http_openbank_dcr_client_t *cl)
{
    ngx_str_t  empty;

    ngx_str_null(&empty);

    if (cl->auth_method == NGX_HTTP_OPENBANK_DCR_PRIVATE_KEY_JWT) {
        return ngx_http_openbank_dcr_cred_op(r, op,
                                             NGX_HTTP_OPENBANK_REG_PUT_NEW,
                                             hex, NGX_HTTP_OPENBANK_CRED_JWKS,
                                             NULL, ngx_time(), client_id,
                                             &cl->hint, &cl->jwks, &empty);
    }

    return ngx_http_openbank_dcr_cred_op(r, op, NGX_HTTP_OPENBANK_REG_PUT_NEW,
                                         hex,
                                         cl->subject_dn.len
                                         ? NGX_HTTP_OPENBANK_CRED_SUBJECT_DN
                                         : NGX_HTTP_OPENBANK_CRED_CERTIFICATE,
                                         cl->cert, ngx_time(), client_id,
                                         &cl->hint, &empty, &empty);
}


/* the statement used: "s<hex>", its exp; a second use is a conflict */

static ngx_int_t
ngx_http_openbank_dcr_jti_op(ngx_http_request_t *r,
    ngx_http_openbank_reg_op_t *op, ngx_http_openbank_dcr_client_t *cl)
{
    op->op = NGX_HTTP_OPENBANK_REG_PUT_NEW;
    op->key = cl->jti_key;
    op->value.len = sizeof(int64_t);
    op->value.data = ngx_pnalloc(r->pool, sizeof(int64_t));
    if (op->value.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(op->value.data, &cl->exp, sizeof(int64_t));

    return NGX_OK;
}


/*
 * A change to the registry: NGX_AGAIN, answered once durable; or a
 * refusal.
 */

static ngx_int_t
ngx_http_openbank_dcr_commit(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_reg_op_t *ops,
    ngx_uint_t n, ngx_uint_t status, ngx_str_t *answer)
{
    ngx_int_t                        rc;
    ngx_http_openbank_reg_change_t   ch;

    ngx_memzero(&ch, sizeof(ch));
    ch.ops = ops;
    ch.nops = n;

    ctx->registration->reply.status = status;
    ctx->registration->reply.answer = *answer;
    ctx->registration->reply.send = ngx_http_openbank_dcr_send;
    ctx->reply = &ctx->registration->reply;

    rc = ngx_http_openbank_registry_change(r, &ch,
                                           ngx_http_openbank_reply_durable);

    if (rc == NGX_AGAIN || rc == NGX_ERROR) {
        return (rc == NGX_AGAIN) ? NGX_AGAIN : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    switch (ch.result) {

    case NGX_HTTP_OPENBANK_REG_CONFLICT:
        if (ch.conflict.len && ch.conflict.data[0] == 's') {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "openbank: a software statement used before is "
                          "presented again");

            return ngx_http_openbank_dcr_error(r, NGX_HTTP_BAD_REQUEST,
                                   NGX_HTTP_OPENBANK_DCR_INVALID_STATEMENT,
                                   "the software statement's jti was "
                                   "already used");
        }

        if (ch.conflict.len && ch.conflict.data[0] == 'h') {
            return ngx_http_openbank_dcr_error(r, NGX_HTTP_BAD_REQUEST,
                                   NGX_HTTP_OPENBANK_DCR_INVALID_METADATA,
                                   "the certificate is another client's");
        }

        return ngx_http_openbank_dcr_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                           "temporarily_unavailable",
                                           "the id drawn is taken: try "
                                           "again");

    case NGX_HTTP_OPENBANK_REG_MISSING:
        return ngx_http_openbank_dcr_error(r, NGX_HTTP_UNAUTHORIZED,
                                           "invalid_token",
                                           "the client is gone meanwhile");

    default:
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
                                "the registry cannot record the change");
    }
}


/* an answer: never cached (RFC 7591 3.2.1: it may hold the token) */

static ngx_int_t
ngx_http_openbank_dcr_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body)
{
    ngx_str_t  v;

    ngx_str_set(&v, "no-store");

    if (ngx_http_openbank_set_header(r, "Cache-Control", &v) == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&v, "no-cache");

    if (ngx_http_openbank_set_header(r, "Pragma", &v) == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_openbank_admin_send(r, status, body);
}


/* an RFC 7591 3.2.2 error (or RFC 6750's invalid_token) */

static ngx_int_t
ngx_http_openbank_dcr_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *error, const char *fmt, ...)
{
    u_char                   *p, text[512], line[512];
    size_t                    i;
    va_list                   args;
    ngx_str_t                 desc, body, v;
    ngx_http_openbank_out_t   o;
    ngx_http_openbank_ctx_t  *ctx;

    va_start(args, fmt);
    p = ngx_vslprintf(text, text + sizeof(text), fmt, args);
    va_end(args);

    desc.data = text;
    desc.len = p - text;

    ctx = ngx_http_openbank_get_ctx(r);
    if (ctx) {
        ctx->result.data = (u_char *) error;
        ctx->result.len = ngx_strlen(error);
    }

    /* the log's copy has no byte a client could forge a log line with */

    for (i = 0; i < desc.len && i < sizeof(line); i++) {
        line[i] = (text[i] < 0x20 || text[i] >= 0x7f) ? '?' : text[i];
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "openbank: registration refused: %s: %*s", error, i, line);

    ngx_http_openbank_out_init(&o, r->pool);
    ngx_http_openbank_out_raw(&o, "{\"error\":\"%s\",\"error_description\":",
                              error);
    ngx_http_openbank_out_str(&o, &desc);
    ngx_http_openbank_out_raw(&o, "}\n");

    if (o.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = o.start;
    body.len = o.pos - o.start;

    if (status == NGX_HTTP_UNAUTHORIZED) {
        ngx_str_set(&v, "Bearer realm=\"openbank\", error=\"invalid_token\"");

        if (ngx_http_openbank_set_header(r, "WWW-Authenticate", &v) == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* refused before its body was read: it is read away */

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_openbank_dcr_send(r, status, &body);
}


static ngx_int_t
ngx_http_openbank_dcr_refuse(ngx_http_request_t *r,
    ngx_http_openbank_dcr_err_t *e)
{
    return ngx_http_openbank_dcr_error(r, NGX_HTTP_BAD_REQUEST, e->error,
                                       "%s", e->text);
}


static ngx_int_t
ngx_http_openbank_dcr_fail(ngx_http_openbank_dcr_err_t *e, const char *error,
    const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(e->text, e->text + sizeof(e->text) - 1, fmt, args);
    va_end(args);

    *p = '\0';
    e->error = error;

    return NGX_DECLINED;
}


/*
 * tls_client_auth by subject DN (RFC 8705 2.1.2): the SHA-256 of the
 * client certificate's subject as RFC 4514 prints it (OpenSSL's
 * XN_FLAG_RFC2253) among the registry partner's subject_dn credentials,
 * in constant time.  The certificate's chain was verified by nginx
 * (ssl_verify_client): NGX_OK with the credential, NGX_DECLINED.
 */

ngx_int_t
ngx_http_openbank_registration_dn(ngx_http_request_t *r,
    ngx_http_openbank_partner_t *partner, uint64_t *cred)
{
#if (NGX_HTTP_SSL)
    BIO        *bio;
    long        n;
    char       *text;
    X509       *cert;
    ngx_int_t   rc;
    u_char      hash[NGX_HTTP_OPENBANK_HASH_LEN];

    if (r->connection->ssl == NULL || partner == NULL || !partner->registry)
    {
        return NGX_DECLINED;
    }

    cert = SSL_get_peer_certificate(r->connection->ssl->connection);
    if (cert == NULL) {
        return NGX_DECLINED;
    }

    bio = BIO_new(BIO_s_mem());

    if (bio == NULL
        || X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0,
                              XN_FLAG_RFC2253) < 0)
    {
        rc = NGX_DECLINED;
        goto done;
    }

    n = BIO_get_mem_data(bio, &text);

    if (n <= 0) {
        rc = NGX_DECLINED;
        goto done;
    }

    ngx_http_openbank_sha256(hash, (u_char *) text, (size_t) n);

    rc = ngx_http_openbank_registry_secret(r, partner,
                                           NGX_HTTP_OPENBANK_CRED_SUBJECT_DN,
                                           hash, cred);

done:

    if (bio) {
        BIO_free(bio);
    }

    X509_free(cert);
    ERR_clear_error();

    return rc;
#else
    return NGX_DECLINED;
#endif
}


/* 8 random bytes, 16 hex digits and a NUL */

static ngx_int_t
ngx_http_openbank_dcr_hex_id(u_char *hex)
{
    u_char  rnd[8];

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        ERR_clear_error();
        return NGX_ERROR;
    }

    ngx_hex_dump(hex, rnd, sizeof(rnd));
    hex[16] = '\0';

    return NGX_OK;
}


/* "dcr-" and 16 lowercase hex digits */

static ngx_int_t
ngx_http_openbank_dcr_valid_id(ngx_str_t *client_id)
{
    u_char      c;
    ngx_uint_t  i;

    if (client_id->len != NGX_HTTP_OPENBANK_DCR_ID_LEN
        || ngx_strncmp(client_id->data, NGX_HTTP_OPENBANK_DCR_ID_PREFIX,
                       sizeof(NGX_HTTP_OPENBANK_DCR_ID_PREFIX) - 1) != 0)
    {
        return NGX_DECLINED;
    }

    for (i = sizeof(NGX_HTTP_OPENBANK_DCR_ID_PREFIX) - 1;
         i < client_id->len;
         i++)
    {
        c = client_id->data[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}
