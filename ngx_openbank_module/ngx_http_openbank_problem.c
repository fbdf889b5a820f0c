
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Errors as application/problem+json (RFC 9457), whether the gateway
 * refused the request or nginx itself ended it with an error page, and
 * the request id every response carries.
 */


#include <ngx_http_openbank.h>

#include <openssl/rand.h>


#define NGX_HTTP_OPENBANK_DETAIL_MAX  512


typedef struct {
    ngx_str_t   code;
    ngx_str_t   title;
} ngx_http_openbank_problem_type_t;


static void ngx_http_openbank_default_problem(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_uint_t status);
static ngx_int_t ngx_http_openbank_allow_header(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
static ngx_int_t ngx_http_openbank_valid_request_id(ngx_str_t *id);
static u_char *ngx_http_openbank_random16(void);
static ngx_chain_t *ngx_http_openbank_problem_render(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);


/*
 * The title of each code: the one table of titles, which the sandbox bank
 * (lua/openbank/problem.lua) reads through ngx_http_openbank_problem_title().
 */

static ngx_http_openbank_problem_type_t
    ngx_http_openbank_problem_types[NGX_HTTP_OPENBANK_PROBLEM_N] =
{
    [NGX_HTTP_OPENBANK_PROBLEM_INVALID_REQUEST] =
        { ngx_string("invalid_request"), ngx_string("Invalid request") },
    [NGX_HTTP_OPENBANK_PROBLEM_INVALID_BODY] =
        { ngx_string("invalid_body"), ngx_string("Invalid body") },
    [NGX_HTTP_OPENBANK_PROBLEM_IDEMPOTENCY_KEY_MISSING] =
        { ngx_string("idempotency_key_missing"),
          ngx_string("Idempotency key missing") },
    [NGX_HTTP_OPENBANK_PROBLEM_INVALID_TOKEN] =
        { ngx_string("invalid_token"), ngx_string("Invalid credential") },
    [NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_MISSING] =
        { ngx_string("signature_missing"), ngx_string("Signature missing") },
    [NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID] =
        { ngx_string("signature_invalid"), ngx_string("Invalid signature") },
    [NGX_HTTP_OPENBANK_PROBLEM_REPLAYED_REQUEST] =
        { ngx_string("replayed_request"), ngx_string("Replayed request") },
    [NGX_HTTP_OPENBANK_PROBLEM_INSUFFICIENT_SCOPE] =
        { ngx_string("insufficient_scope"), ngx_string("Insufficient scope") },
    [NGX_HTTP_OPENBANK_PROBLEM_CERTIFICATE_MISMATCH] =
        { ngx_string("certificate_mismatch"),
          ngx_string("Certificate mismatch") },
    [NGX_HTTP_OPENBANK_PROBLEM_PARTNER_SUSPENDED] =
        { ngx_string("partner_suspended"), ngx_string("Partner suspended") },
    [NGX_HTTP_OPENBANK_PROBLEM_NOT_FOUND] =
        { ngx_string("not_found"), ngx_string("Not found") },
    [NGX_HTTP_OPENBANK_PROBLEM_METHOD_NOT_ALLOWED] =
        { ngx_string("method_not_allowed"), ngx_string("Method not allowed") },
    [NGX_HTTP_OPENBANK_PROBLEM_IDEMPOTENCY_IN_FLIGHT] =
        { ngx_string("idempotency_in_flight"),
          ngx_string("Idempotent request in flight") },
    [NGX_HTTP_OPENBANK_PROBLEM_INVALID_STATE] =
        { ngx_string("invalid_state"), ngx_string("Invalid state") },
    [NGX_HTTP_OPENBANK_PROBLEM_DUPLICATE_MESSAGE] =
        { ngx_string("duplicate_message"), ngx_string("Duplicate message") },
    [NGX_HTTP_OPENBANK_PROBLEM_VERSION_RETIRED] =
        { ngx_string("version_retired"), ngx_string("Version retired") },
    [NGX_HTTP_OPENBANK_PROBLEM_PAYLOAD_TOO_LARGE] =
        { ngx_string("payload_too_large"), ngx_string("Payload too large") },
    [NGX_HTTP_OPENBANK_PROBLEM_IDEMPOTENCY_KEY_REUSED] =
        { ngx_string("idempotency_key_reused"),
          ngx_string("Idempotency key reused") },
    [NGX_HTTP_OPENBANK_PROBLEM_INVALID_BATCH] =
        { ngx_string("invalid_batch"), ngx_string("Invalid batch") },
    [NGX_HTTP_OPENBANK_PROBLEM_RATE_LIMITED] =
        { ngx_string("rate_limited"), ngx_string("Rate limited") },
    [NGX_HTTP_OPENBANK_PROBLEM_QUOTA_EXCEEDED] =
        { ngx_string("quota_exceeded"), ngx_string("Quota exceeded") },
    [NGX_HTTP_OPENBANK_PROBLEM_UPSTREAM_UNAVAILABLE] =
        { ngx_string("upstream_unavailable"),
          ngx_string("Upstream unavailable") },
    [NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE] =
        { ngx_string("state_unavailable"), ngx_string("State unavailable") },
    [NGX_HTTP_OPENBANK_PROBLEM_CIRCUIT_OPEN] =
        { ngx_string("circuit_open"), ngx_string("Circuit open") },
    [NGX_HTTP_OPENBANK_PROBLEM_OVERLOADED] =
        { ngx_string("overloaded"), ngx_string("Overloaded") },
    [NGX_HTTP_OPENBANK_PROBLEM_CONCURRENCY_LIMITED] =
        { ngx_string("concurrency_limited"),
          ngx_string("Concurrency limited") },
    [NGX_HTTP_OPENBANK_PROBLEM_INTERNAL_ERROR] =
        { ngx_string("internal_error"), ngx_string("Internal error") },
};


static ngx_str_t  ngx_http_openbank_problem_json =
    ngx_string("application/problem+json");

static ngx_str_t  ngx_http_openbank_www_authenticate =
    ngx_string("Bearer error=\"invalid_token\"");

/* what nginx serves a file with, for a 405 of nginx's own */
static ngx_str_t  ngx_http_openbank_allow_default = ngx_string("GET, HEAD");


/*
 * Records why the gateway refuses a request; the status goes back to
 * nginx, which ends the request, and the header filter below renders the
 * problem.  "code" must be one of the types above.
 */

ngx_int_t
ngx_http_openbank_refuse(ngx_http_request_t *r, ngx_http_openbank_ctx_t *ctx,
    ngx_uint_t status, ngx_http_openbank_problem_e code, const char *fmt, ...)
{
    u_char   *p, *last;
    va_list   args;

    ctx->problem_status = status;
    ctx->problem_code = ngx_http_openbank_problem_types[code].code;
    ctx->problem_title = &ngx_http_openbank_problem_types[code].title;
    ctx->result = ctx->problem_code;

    p = ngx_pnalloc(r->pool, NGX_HTTP_OPENBANK_DETAIL_MAX);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    va_start(args, fmt);
    last = ngx_vslprintf(p, p + NGX_HTTP_OPENBANK_DETAIL_MAX, fmt, args);
    va_end(args);

    ctx->problem_detail.data = p;
    ctx->problem_detail.len = last - p;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "openbank refuse: %ui %V \"%V\"", status,
                   &ctx->problem_code, &ctx->problem_detail);

    return status;
}


/*
 * The start of the content handler of each endpoint of the module (token,
 * JWKS, status, metrics...): from here on, the request's error pages are
 * problems as on an API location; a method outside "methods" is refused
 * with 405 method_not_allowed and "allow" as its Allow header.
 */

ngx_int_t
ngx_http_openbank_endpoint_start(ngx_http_request_t *r, ngx_uint_t methods,
    const char *allow)
{
    ngx_http_openbank_ctx_t  *ctx;

    ctx = ngx_http_openbank_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->endpoint = 1;

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
}


/* the start of an endpoint that serves GET and HEAD: its body is discarded */

ngx_int_t
ngx_http_openbank_get_endpoint_start(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    rc = ngx_http_openbank_endpoint_start(r, NGX_HTTP_GET|NGX_HTTP_HEAD,
                                          "GET, HEAD");
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_discard_request_body(r);
}


/* nginx ended the request with an error page: say what it means */

static void
ngx_http_openbank_default_problem(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_uint_t status)
{
    ngx_http_core_loc_conf_t  *clcf;

    switch (status) {

    case NGX_HTTP_NOT_FOUND:
        (void) ngx_http_openbank_refuse(r, ctx, status,
                                        NGX_HTTP_OPENBANK_PROBLEM_NOT_FOUND,
                                        "no resource at %V", &r->uri);
        break;

    case NGX_HTTP_NOT_ALLOWED:
        (void) ngx_http_openbank_refuse(r, ctx, status,
            NGX_HTTP_OPENBANK_PROBLEM_METHOD_NOT_ALLOWED,
            "method %V is not allowed on %V",
            &r->method_name, &r->uri);
        break;

    case NGX_HTTP_UNAUTHORIZED:
        (void) ngx_http_openbank_refuse(r, ctx, status,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_TOKEN,
                                        "authentication is required");
        break;

    case NGX_HTTP_FORBIDDEN:
        (void) ngx_http_openbank_refuse(r, ctx, status,
            NGX_HTTP_OPENBANK_PROBLEM_INSUFFICIENT_SCOPE,
            "access to %V is denied", &r->uri);
        break;

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
        (void) ngx_http_openbank_refuse(r, ctx, status,
            NGX_HTTP_OPENBANK_PROBLEM_PAYLOAD_TOO_LARGE,
            "the request body is larger than "
            "%O bytes",
            clcf->client_max_body_size);
        break;

    case NGX_HTTP_TOO_MANY_REQUESTS:
        (void) ngx_http_openbank_refuse(r, ctx, status,
                                        NGX_HTTP_OPENBANK_PROBLEM_RATE_LIMITED,
                                        "too many requests");
        break;

    case NGX_HTTP_BAD_GATEWAY:
    case NGX_HTTP_SERVICE_UNAVAILABLE:
        (void) ngx_http_openbank_refuse(r, ctx, status,
            NGX_HTTP_OPENBANK_PROBLEM_UPSTREAM_UNAVAILABLE,
            "the bank core is unavailable");
        break;

    case NGX_HTTP_GATEWAY_TIME_OUT:
        (void) ngx_http_openbank_refuse(r, ctx, status,
            NGX_HTTP_OPENBANK_PROBLEM_UPSTREAM_UNAVAILABLE,
            "the bank core did not answer "
            "in time");
        break;

    default:
        if (status >= NGX_HTTP_INTERNAL_SERVER_ERROR) {
            (void) ngx_http_openbank_refuse(r, ctx, status,
                NGX_HTTP_OPENBANK_PROBLEM_INTERNAL_ERROR,
                "the gateway failed to handle "
                "the request");
        } else {
            (void) ngx_http_openbank_refuse(r, ctx, status,
                NGX_HTTP_OPENBANK_PROBLEM_INVALID_REQUEST,
                "the request is malformed "
                "(HTTP %ui)", status);
        }
    }
}


/*
 * The response filter of the problem, after the request id and the
 * version headers, before the RateLimit headers (the order of "config").
 */

static ngx_int_t ngx_http_openbank_problem_body(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_chain_t *in);


NGX_HTTP_OPENBANK_FILTER_MODULE(problem, ngx_http_openbank_problem_body);


/*
 * On an API location, an error page of nginx's own (r->err_status) is
 * replaced by a problem: the gateway's refusal when there is one, else
 * the meaning of the status.  Answers from the bank pass untouched.
 */

static ngx_int_t
ngx_http_openbank_problem_header(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    ngx_uint_t                      status;
    ngx_table_elt_t                *h;
    ngx_http_openbank_loc_conf_t   *oblcf;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    oblcf = ngx_http_get_module_loc_conf(r, ngx_http_openbank_module);

    if (obmcf->shm_zone == NULL || !(oblcf->api || ctx->endpoint)) {
        return NGX_DECLINED;
    }

    status = r->headers_out.status;

    if (r->err_status < NGX_HTTP_BAD_REQUEST || ctx->problem_out) {
        return NGX_DECLINED;
    }

    if (ctx->problem_status != status) {
        ngx_http_openbank_default_problem(r, ctx, status);
    }

    if (status == NGX_HTTP_NOT_ALLOWED
        && ngx_http_openbank_allow_header(r, ctx) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* a refusal that passes (a breaker, a concurrency limit) says when */

    if (ctx->retry_after && ctx->problem_status == status) {
        if (ngx_http_openbank_retry_after(r, ctx->retry_after) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    /* a bad signature is not a bad token: no Bearer challenge for it */

    if (status == NGX_HTTP_UNAUTHORIZED
        && r->headers_out.www_authenticate == NULL
        && !(ctx->problem_code.len > 9
             && (ngx_strncmp(ctx->problem_code.data, "signature", 9) == 0
                 || ngx_strncmp(ctx->problem_code.data, "replayed_", 9)
                    == 0)))
    {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "WWW-Authenticate");
        h->value = ngx_http_openbank_www_authenticate;

        r->headers_out.www_authenticate = h;
    }

    ctx->problem_out = ngx_http_openbank_problem_render(r, ctx);
    if (ctx->problem_out == NULL) {
        return NGX_ERROR;
    }

    r->headers_out.content_type = ngx_http_openbank_problem_json;
    r->headers_out.content_type_len = ngx_http_openbank_problem_json.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;

    r->headers_out.content_length_n = ctx->problem_out->buf->last
                                      - ctx->problem_out->buf->pos;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    return NGX_DECLINED;
}


/*
 * A 405 says what the resource allows: the endpoint's methods, else an
 * Allow a handler already set, else the methods of nginx's static files.
 */

static ngx_int_t
ngx_http_openbank_allow_header(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    ngx_uint_t  n;

    if (ctx->allow.len) {
        return ngx_http_openbank_set_header(r, "Allow", &ctx->allow)
               ? NGX_OK : NGX_ERROR;
    }

    if (ngx_http_openbank_find_header(&r->headers_out.headers, "Allow", &n)) {
        return NGX_OK;
    }

    return ngx_http_openbank_set_header(r, "Allow",
                                        &ngx_http_openbank_allow_default)
           ? NGX_OK : NGX_ERROR;
}


static ngx_chain_t *
ngx_http_openbank_problem_render(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    size_t        len;
    uintptr_t     escape;
    ngx_buf_t    *b;
    ngx_str_t    *title;
    ngx_chain_t  *cl;

    title = ctx->problem_title;
    escape = ngx_escape_json(NULL, ctx->problem_detail.data,
                             ctx->problem_detail.len);

    len = sizeof("{\"type\":\"urn:openbank:problem:\",\"title\":\"\","
                 "\"status\":,\"detail\":\"\",\"code\":\"\","
                 "\"request_id\":\"\"}\n") - 1
          + 2 * ctx->problem_code.len + title->len + NGX_INT_T_LEN
          + ctx->problem_detail.len + escape + ctx->request_id.len;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NULL;
    }

    b->last = ngx_sprintf(b->last,
                          "{\"type\":\"urn:openbank:problem:%V\","
                          "\"title\":\"%V\",\"status\":%ui,\"detail\":\"",
                          &ctx->problem_code, title, ctx->problem_status);

    b->last = (u_char *) ngx_escape_json(b->last, ctx->problem_detail.data,
                                         ctx->problem_detail.len);

    b->last = ngx_sprintf(b->last,
                          "\",\"code\":\"%V\",\"request_id\":\"%V\"}\n",
                          &ctx->problem_code, &ctx->request_id);

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NULL;
    }

    cl->buf = b;
    cl->next = NULL;

    return cl;
}


/* the problem goes out once; nginx's own page is swallowed */

static ngx_int_t
ngx_http_openbank_problem_body(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_chain_t *in)
{
    ngx_chain_t  *cl, *out;

    if (ctx->problem_out == NULL) {
        return NGX_DECLINED;
    }

    for (cl = in; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    if (ctx->problem_sent) {
        return NGX_OK;
    }

    ctx->problem_sent = 1;
    out = ctx->problem_out;

    return ngx_http_next_body_filter(r, out);
}


/* the caller's X-Request-ID when it is sane, else a new UUID (v4) */

ngx_int_t
ngx_http_openbank_request_id(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    u_char           *p;
    ngx_uint_t        n;
    ngx_table_elt_t  *h;
    u_char            rnd[16];

    if (ctx->request_id.len) {
        return NGX_OK;
    }

    h = ngx_http_openbank_find_header(&r->main->headers_in.headers,
                                      "X-Request-ID", &n);

    if (h && n == 1
        && ngx_http_openbank_valid_request_id(&h->value) == NGX_OK)
    {
        ctx->request_id = h->value;
        return NGX_OK;
    }

    p = ngx_http_openbank_random16();
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(rnd, p, sizeof(rnd));

    rnd[6] = (rnd[6] & 0x0f) | 0x40;
    rnd[8] = (rnd[8] & 0x3f) | 0x80;

    p = ngx_hex_dump(ctx->request_id_data, rnd, 4);
    *p++ = '-';
    p = ngx_hex_dump(p, rnd + 4, 2);
    *p++ = '-';
    p = ngx_hex_dump(p, rnd + 6, 2);
    *p++ = '-';
    p = ngx_hex_dump(p, rnd + 8, 2);
    *p++ = '-';
    p = ngx_hex_dump(p, rnd + 10, 6);

    ctx->request_id.data = ctx->request_id_data;
    ctx->request_id.len = p - ctx->request_id_data;

    return NGX_OK;
}


/*
 * 16 random bytes from OpenSSL's generator, drawn 4 KiB at a time: one
 * call per 256 request ids instead of one per request.  Each worker has
 * its own buffer, filled after the fork.
 */

static u_char *
ngx_http_openbank_random16(void)
{
    static u_char      buf[4096];
    static ngx_uint_t  used = sizeof(buf);

    if (used == sizeof(buf)) {
        if (RAND_bytes(buf, sizeof(buf)) != 1) {
            return NULL;
        }

        used = 0;
    }

    used += 16;

    return buf + used - 16;
}


/* 1 to 128 of [A-Za-z0-9._:/+=@~-]: safe in JSON, logs and headers */

static ngx_int_t
ngx_http_openbank_valid_request_id(ngx_str_t *id)
{
    u_char      c;
    ngx_uint_t  i;

    if (id->len == 0 || id->len > NGX_HTTP_OPENBANK_REQUEST_ID_LEN) {
        return NGX_ERROR;
    }

    for (i = 0; i < id->len; i++) {
        c = id->data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_'
              || c == ':' || c == '/' || c == '+' || c == '='
              || c == '@' || c == '~' || c == '-'))
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* sets a response header, replacing one of the same name (the bank's) */


/* Retry-After: whole seconds, once */

ngx_int_t
ngx_http_openbank_retry_after(ngx_http_request_t *r, time_t seconds)
{
    ngx_str_t  value;

    value.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (value.data == NULL) {
        return NGX_ERROR;
    }

    value.len = ngx_sprintf(value.data, "%T", seconds) - value.data;

    return ngx_http_openbank_set_header(r, "Retry-After", &value)
           ? NGX_OK : NGX_ERROR;
}


ngx_table_elt_t *
ngx_http_openbank_set_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_uint_t        n;
    ngx_table_elt_t  *h;

    h = ngx_http_openbank_find_header(&r->headers_out.headers, name, &n);

    if (h) {
        h->value = *value;
        return h;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NULL;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;

    return h;
}


/*
 * Sends the header, with the status and the type set by the caller, and
 * the whole body: "len" bytes at "data", which live as long as the
 * request.
 */

ngx_int_t
ngx_http_openbank_send_response(ngx_http_request_t *r, u_char *data,
    size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.content_length_n = len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    if (len == 0) {
        return ngx_http_send_special(r, NGX_HTTP_LAST);
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = data;
    b->last = data + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* a code's constant, or NGX_HTTP_OPENBANK_PROBLEM_N for none */

ngx_uint_t
ngx_http_openbank_problem_find(u_char *code, size_t len)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_OPENBANK_PROBLEM_N; i++) {
        if (ngx_http_openbank_problem_types[i].code.len == len
            && ngx_strncmp(ngx_http_openbank_problem_types[i].code.data,
                           code, len)
               == 0)
        {
            break;
        }
    }

    return i;
}


ngx_str_t *
ngx_http_openbank_problem_name(ngx_http_openbank_problem_e code)
{
    return &ngx_http_openbank_problem_types[code].code;
}


/*
 * The title of a code, NUL-terminated, or NULL for a code the gateway
 * does not have.  The sandbox bank calls it through LuaJIT's FFI (nginx
 * loads modules with RTLD_GLOBAL), so that its problems have the
 * gateway's titles.
 */

const char *
ngx_http_openbank_problem_title(const char *code)
{
    ngx_uint_t  i;

    i = ngx_http_openbank_problem_find((u_char *) code, ngx_strlen(code));

    if (i == NGX_HTTP_OPENBANK_PROBLEM_N) {
        return NULL;
    }

    return (const char *) ngx_http_openbank_problem_types[i].title.data;
}
