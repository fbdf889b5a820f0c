
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The partners' side of event notifications (openbank_events_api,
 * docs/webhooks.md), after the location's checks found the partner:
 *
 *     GET, POST         /v1/webhook-endpoints
 *     GET, DELETE       /v1/webhook-endpoints/{id}
 *     POST              /v1/webhook-endpoints/{id}/test
 *     GET               /v1/events?after=&type=&limit=
 *     GET               /v1/events/{id}
 *
 * An endpoint's URL is checked twice before it is kept: its form (https,
 * or http for a host of openbank_webhook_allow) and the addresses its
 * host resolves to (none loopback, private, link-local...), resolved by
 * a thread of the pool; the sender checks them again at every delivery.
 * Its secret ("whsec_" and the base64 of 32 random bytes) is shown in
 * the answer to its creation only, and kept sealed with the registry's
 * key.  Another partner's endpoints and events are 404.  The Admin API
 * serves a partner's endpoints with these same functions
 * (ngx_http_openbank_webhooks_route() and _dispatch(), the partner in
 * ec->partner, the answer of a change by ec->done).
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_admin.h>
#include <ngx_http_openbank_events.h>
#include <ngx_http_openbank_httpsig.h>
#include <ngx_http_openbank_registry.h>
#include <ngx_http_openbank_util.h>

#include <openssl/err.h>
#include <openssl/rand.h>


#define NGX_HTTP_OPENBANK_R_ENDPOINTS   1
#define NGX_HTTP_OPENBANK_R_ENDPOINT    2
#define NGX_HTTP_OPENBANK_R_TEST        3
#define NGX_HTTP_OPENBANK_R_EVENTS      4
#define NGX_HTTP_OPENBANK_R_EVENT       5

#define NGX_HTTP_OPENBANK_EVENTS_LIMIT      50
#define NGX_HTTP_OPENBANK_EVENTS_LIMIT_MAX  500

#define NGX_HTTP_OPENBANK_WEBHOOK_VALUE_MAX                                   \
    (sizeof(ngx_http_openbank_webhook_v_t) + 4 * 4096)


typedef struct {
    ngx_str_t                    *partner;
    ngx_str_t                     type;        /* filter, or empty */
    uint64_t                      after;
    ngx_array_t                  *seqs;        /* uint64_t */
    ngx_uint_t                    failed;
} ngx_http_openbank_wh_walk_t;


typedef struct {
    ngx_array_t                  *ops;
    ngx_str_t                    *partner;
    ngx_uint_t                    full;
    ngx_uint_t                    too_many;
    ngx_uint_t                    missing;
} ngx_http_openbank_wh_change_t;


static ngx_int_t ngx_http_openbank_events_api_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_openbank_wh_route(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_ev_ctx_t *ec);
static ngx_int_t ngx_http_openbank_wh_create(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_ev_ctx_t *ec,
    ngx_str_t *body);
static void ngx_http_openbank_wh_resolved(void *data, ngx_int_t rc,
    ngx_addr_t *addr, const char *err);
static ngx_int_t ngx_http_openbank_wh_keep(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_ev_ctx_t *ec);
static ngx_int_t ngx_http_openbank_wh_list(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_ev_ctx_t *ec);
static ngx_int_t ngx_http_openbank_wh_show(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_ev_ctx_t *ec);
static ngx_int_t ngx_http_openbank_wh_delete(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_ev_ctx_t *ec);
static ngx_int_t ngx_http_openbank_wh_test(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_ev_ctx_t *ec);
static ngx_int_t ngx_http_openbank_wh_events(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_ev_ctx_t *ec);
static ngx_int_t ngx_http_openbank_wh_events_args(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_wh_walk_t *w,
    ngx_uint_t *limit);
static ngx_int_t ngx_http_openbank_wh_event(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_ev_ctx_t *ec);
static ngx_int_t ngx_http_openbank_wh_get(ngx_http_request_t *r, u_char c,
    uint64_t id, ngx_str_t *partner, ngx_str_t *value);
static ngx_int_t ngx_http_openbank_wh_own(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, u_char c, uint64_t id, ngx_str_t *value);
static void ngx_http_openbank_wh_json(ngx_http_openbank_out_t *o,
    uint64_t id, ngx_str_t *value);
static void ngx_http_openbank_wh_event_json(ngx_http_openbank_out_t *o,
    uint64_t seq, ngx_str_t *value, ngx_http_request_t *r,
    ngx_str_t *partner);
static void ngx_http_openbank_wh_deliveries(ngx_http_request_t *r,
    ngx_str_t *partner, ngx_http_openbank_out_t *o, uint64_t seq,
    u_char *attempts, ngx_uint_t nattempts);
static void ngx_http_openbank_wh_time_ms(ngx_http_openbank_out_t *o,
    int64_t ms);
static ngx_int_t ngx_http_openbank_wh_change_atomic(
    ngx_http_openbank_zone_t *zone, void *data);
static ngx_int_t ngx_http_openbank_wh_walk(ngx_http_openbank_store_value_t *sv,
    void *data);
static ngx_int_t ngx_http_openbank_wh_walk_atomic(
    ngx_http_openbank_zone_t *zone, void *data);
static int ngx_libc_cdecl ngx_http_openbank_wh_cmp(const void *a,
    const void *b);
static ngx_int_t ngx_http_openbank_wh_id(u_char *p, u_char *last,
    const char *prefix, uint64_t *id);
static ngx_int_t ngx_http_openbank_wh_send(ngx_http_request_t *r,
    ngx_uint_t status, ngx_http_openbank_out_t *o);


static ngx_str_t  ngx_http_openbank_wh_ping = ngx_string("ping");


static ngx_http_openbank_json_api_t  ngx_http_openbank_wh_json_api = {
    NGX_HTTP_OPENBANK_EVENT_BODY_MAX,
    "the body",
    ngx_http_openbank_webhooks_dispatch,
    NULL
};


char *
ngx_http_openbank_events_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_openbank_module);
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_openbank_events_api_handler;
    obmcf->events = 1;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_openbank_events_api_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_http_openbank_ctx_t     *ctx;
    ngx_http_openbank_ev_ctx_t  *ec;

    rc = ngx_http_openbank_endpoint_start(r, (ngx_uint_t) -1, "");
    if (rc != NGX_OK) {
        return rc;
    }

    ctx = ngx_http_openbank_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->partner == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "openbank: \"openbank_events_api\" without "
                      "\"openbank_auth\" in its location");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ec = ngx_pcalloc(r->pool, sizeof(ngx_http_openbank_ev_ctx_t));
    if (ec == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->events = ec;
    ec->partner = ctx->partner->name;
    ec->done = ngx_http_openbank_events_answer;

    rc = ngx_http_openbank_wh_route(r, ctx, ec);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ec->bad) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_NOT_FOUND,
                                        NGX_HTTP_OPENBANK_PROBLEM_NOT_FOUND,
                                        "no such resource at %V", &r->uri);
    }

    return ngx_http_openbank_json_request(r, ctx,
                                          ec->route
                                          == NGX_HTTP_OPENBANK_R_ENDPOINTS
                                          && r->method == NGX_HTTP_POST,
                                          &ngx_http_openbank_wh_json_api);
}


/* the resource of the URI, and the methods it takes */

static ngx_int_t
ngx_http_openbank_wh_route(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_ev_ctx_t *ec)
{
    u_char  *p, *last, *q, *seg;

    p = r->uri.data;
    last = p + r->uri.len;

    /* the last two segments of /.../webhook-endpoints[/{id}[/test]] */

    seg = ngx_strlcasestrn(p, last, (u_char *) "/webhook-endpoints", 18 - 1);

    if (seg) {
        return ngx_http_openbank_webhooks_route(r, ctx, ec, seg + 18, last);
    }

    seg = ngx_strlcasestrn(p, last, (u_char *) "/events", 7 - 1);

    if (seg) {
        q = seg + 7;

        if (q == last || (q + 1 == last && *q == '/')) {
            ec->route = NGX_HTTP_OPENBANK_R_EVENTS;

        } else if (*q == '/' && ngx_strlchr(q + 1, last, '/') == NULL) {
            ec->route = NGX_HTTP_OPENBANK_R_EVENT;
            ec->bad = (ngx_http_openbank_wh_id(q + 1, last, "evt_", &ec->id)
                       != NGX_OK);

        } else {
            goto not_found;
        }

        return ngx_http_openbank_endpoint_start(r, NGX_HTTP_GET|NGX_HTTP_HEAD,
                                                "GET, HEAD");
    }

not_found:

    return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_NOT_FOUND,
                                    NGX_HTTP_OPENBANK_PROBLEM_NOT_FOUND,
                                    "no such resource at %V", &r->uri);
}


/*
 * What follows ".../webhook-endpoints" in the URI, from p to last: the
 * endpoints, one of them, or its test; 404 or 405 (with Allow) else.
 * The Admin API's routes of a partner's endpoints are these too.
 */

ngx_int_t
ngx_http_openbank_webhooks_route(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_ev_ctx_t *ec, u_char *q,
    u_char *last)
{
    u_char      *p;
    ngx_uint_t   methods;
    const char  *allow;

    if (q == last || (q + 1 == last && *q == '/')) {
        ec->route = NGX_HTTP_OPENBANK_R_ENDPOINTS;
        methods = NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST;
        allow = "GET, HEAD, POST";

    } else if (*q == '/') {
        q++;
        p = ngx_strlchr(q, last, '/');

        if (p == NULL) {
            ec->route = NGX_HTTP_OPENBANK_R_ENDPOINT;
            methods = NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_DELETE;
            allow = "GET, HEAD, DELETE";
            p = last;

        } else if (last - p == 5 && ngx_strncmp(p, "/test", 5) == 0) {
            ec->route = NGX_HTTP_OPENBANK_R_TEST;
            methods = NGX_HTTP_POST;
            allow = "POST";

        } else {
            goto not_found;
        }

        ec->bad = (ngx_http_openbank_wh_id(q, p, "we_", &ec->id) != NGX_OK);

    } else {
        goto not_found;
    }

    return ngx_http_openbank_endpoint_start(r, methods, allow);

not_found:

    return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_NOT_FOUND,
                                    NGX_HTTP_OPENBANK_PROBLEM_NOT_FOUND,
                                    "no such resource at %V", &r->uri);
}


/* "we_<16 hex digits>", "evt_<16 hex digits>" */

static ngx_int_t
ngx_http_openbank_wh_id(u_char *p, u_char *last, const char *prefix,
    uint64_t *id)
{
    size_t      n;
    ngx_uint_t  i;

    n = ngx_strlen(prefix);

    if ((size_t) (last - p) != n + 16 || ngx_strncmp(p, prefix, n) != 0) {
        return NGX_DECLINED;
    }

    for (i = n; i < n + 16; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
        {
            return NGX_DECLINED;
        }
    }

    *id = ngx_http_openbank_events_hex(p + n, 16);

    return *id ? NGX_OK : NGX_DECLINED;
}


/* body: that of a POST to the endpoints, NULL else */

ngx_int_t
ngx_http_openbank_webhooks_dispatch(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *body)
{
    ngx_http_openbank_ev_ctx_t  *ec;

    ec = ctx->events;

    switch (ec->route) {

    case NGX_HTTP_OPENBANK_R_ENDPOINTS:
        return body ? ngx_http_openbank_wh_create(r, ctx, ec, body)
                    : ngx_http_openbank_wh_list(r, ctx, ec);

    case NGX_HTTP_OPENBANK_R_ENDPOINT:
        return (r->method == NGX_HTTP_DELETE)
               ? ngx_http_openbank_wh_delete(r, ctx, ec)
               : ngx_http_openbank_wh_show(r, ctx, ec);

    case NGX_HTTP_OPENBANK_R_TEST:
        return ngx_http_openbank_wh_test(r, ctx, ec);

    case NGX_HTTP_OPENBANK_R_EVENTS:
        return ngx_http_openbank_wh_events(r, ctx, ec);

    default: /* NGX_HTTP_OPENBANK_R_EVENT */
        return ngx_http_openbank_wh_event(r, ctx, ec);
    }
}


/* POST /v1/webhook-endpoints {url, events} */

static ngx_int_t
ngx_http_openbank_wh_create(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_ev_ctx_t *ec,
    ngx_str_t *body)
{
    u_char                             err[256];
    ngx_http_openbank_main_conf_t     *obmcf;
    ngx_http_openbank_webhook_allow_t *allowed;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    if (ngx_http_openbank_webhook_parse(body, &ec->in, err, sizeof(err))
        != NGX_OK
        || ngx_http_openbank_url_parse(&ec->in.url, &ec->url, err,
                                       sizeof(err))
           != NGX_OK)
    {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_BODY,
                                        "%s", err);
    }

    allowed = ngx_http_openbank_webhook_allowed(obmcf->events_conf,
                                                &ec->url);

    if (!ec->url.https && (allowed == NULL || !allowed->http)) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_BODY,
                                        "the url must be https://");
    }

    /* its addresses, resolved by a thread: then ngx_http_openbank_wh_keep */

    if (ngx_http_openbank_webhook_resolve(r->pool, &ec->url.host,
                                          ec->url.port, allowed != NULL,
                                          ngx_http_openbank_wh_resolved, r)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->main->count++;

    return NGX_AGAIN;
}


static void
ngx_http_openbank_wh_resolved(void *data, ngx_int_t rc, ngx_addr_t *addr,
    const char *err)
{
    ngx_http_request_t *r = data;

    ngx_connection_t         *c;
    ngx_http_openbank_ctx_t  *ctx;

    c = r->connection;
    r->main->count--;

    ctx = ngx_http_openbank_find_ctx(r);

    if (ctx == NULL || ctx->events == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "openbank: webhook endpoint \"%V\" refused: %s",
                      &ctx->events->in.url, err);

        rc = ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                      NGX_HTTP_OPENBANK_PROBLEM_INVALID_BODY,
                                      "the url's host %s", err);

    } else {
        rc = ngx_http_openbank_wh_keep(r, ctx, ctx->events);
    }

    if (rc == NGX_AGAIN) {
        return;
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* the endpoint, its secret sealed, into the zone and the journal */

static ngx_int_t
ngx_http_openbank_wh_keep(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_ev_ctx_t *ec)
{
    u_char                          *p, *key, secret[64];
    u_char                           rnd[NGX_HTTP_OPENBANK_WEBHOOK_SECRET];
    size_t                           n;
    uint64_t                         id;
    ngx_str_t                        aad, s, value;
    ngx_uint_t                       i;
    ngx_http_openbank_ev_op_t       *op;
    ngx_http_openbank_out_t          o;
    ngx_http_openbank_wh_change_t    ch;
    ngx_http_openbank_webhook_v_t    wv;
    ngx_http_openbank_main_conf_t   *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    if (RAND_bytes((u_char *) &id, sizeof(id)) != 1
        || RAND_bytes(rnd, sizeof(rnd)) != 1)
    {
        ERR_clear_error();
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    id &= 0x7fffffffffffffffULL;
    id |= 1;

    p = ngx_cpymem(secret, "whsec_", 6);
    p += ngx_http_openbank_base64_encode(p, rnd, sizeof(rnd));
    s.data = secret;
    s.len = p - secret;

    ngx_explicit_memzero(rnd, sizeof(rnd));

    /* the record: head, partner, url, events, sealed secret */

    n = 0;

    for (i = 0; i < ec->in.nevents; i++) {
        n += ec->in.events[i].len + 1;
    }

    key = ngx_pnalloc(r->pool, 17 + sizeof(wv) + ec->partner.len
                               + ec->in.url.len + n
                               + NGX_HTTP_OPENBANK_SEAL_IV
                               + NGX_HTTP_OPENBANK_SEAL_TAG + s.len);
    if (key == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memzero(&wv, sizeof(wv));
    wv.created = ngx_time();
    wv.status = NGX_HTTP_OPENBANK_WEBHOOK_ENABLED;
    wv.partner_len = (uint16_t) ec->partner.len;
    wv.url_len = (uint16_t) ec->in.url.len;
    wv.events_len = (uint16_t) (n - 1);
    wv.secret_len = (uint16_t) (NGX_HTTP_OPENBANK_SEAL_IV
                                + NGX_HTTP_OPENBANK_SEAL_TAG + s.len);

    value.data = key + 17;
    p = ngx_cpymem(value.data, &wv, sizeof(wv));
    p = ngx_cpymem(p, ec->partner.data, ec->partner.len);
    p = ngx_cpymem(p, ec->in.url.data, ec->in.url.len);

    for (i = 0; i < ec->in.nevents; i++) {
        if (i) {
            *p++ = ' ';
        }

        p = ngx_cpymem(p, ec->in.events[i].data, ec->in.events[i].len);
    }

    ngx_sprintf(key, "w%016uxL", id);
    aad.data = key;
    aad.len = 17;

    if (ngx_http_openbank_registry_seal(p, s.data, s.len, &aad) != NGX_OK) {
        ngx_explicit_memzero(secret, sizeof(secret));
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "openbank: a webhook secret cannot be sealed");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p += wv.secret_len;
    value.len = p - value.data;

    /* under one lock: at most NGX_HTTP_OPENBANK_WEBHOOK_MAX a partner */

    ngx_memzero(&ch, sizeof(ch));
    ch.partner = &ec->partner;

    ch.ops = ngx_array_create(r->pool, 1, sizeof(ngx_http_openbank_ev_op_t));
    if (ch.ops == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    op = ngx_array_push(ch.ops);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    op->type = NGX_HTTP_OPENBANK_EV_PUT;
    op->key.data = key;
    op->key.len = 17;
    op->value = value;
    op->expire = 0;

    if (ngx_http_openbank_store_atomic(obmcf->shm_zone->data,
                                       ngx_http_openbank_wh_change_atomic,
                                       &ch)
        != NGX_OK
        || ch.full)
    {
        ngx_explicit_memzero(secret, sizeof(secret));
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
                                "no room for the endpoint");
    }

    if (ch.too_many) {
        ngx_explicit_memzero(secret, sizeof(secret));
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_CONFLICT,
                                NGX_HTTP_OPENBANK_PROBLEM_INVALID_STATE,
                                "a partner has at most %d webhook endpoints",
                                NGX_HTTP_OPENBANK_WEBHOOK_MAX);
    }

    /* the answer, with the secret this once */

    ngx_http_openbank_out_init(&o, r->pool);
    ngx_http_openbank_wh_json(&o, id, &value);
    o.pos--;
    ngx_http_openbank_out_raw(&o, ",\"secret\":\"%V\"}", &s);

    ngx_explicit_memzero(secret, sizeof(secret));

    if (o.failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ec->id = id;
    ec->status = NGX_HTTP_CREATED;
    ec->answer.data = o.start;
    ec->answer.len = o.pos - o.start;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "openbank: webhook endpoint we_%016uxL made for \"%V\"",
                  id, &ec->partner);

    if (ngx_http_openbank_events_write(r->connection->log, ch.ops, r,
                                       ec->done)
        != NGX_OK)
    {
        ngx_explicit_memzero(o.start, o.pos - o.start);
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
                                "the events journal cannot be written");
    }

    return NGX_AGAIN;
}


/* an endpoint made (at most so many a partner) or deleted (its own) */

static ngx_int_t
ngx_http_openbank_wh_change_atomic(ngx_http_openbank_zone_t *zone,
    void *data)
{
    ngx_http_openbank_wh_change_t *ch = data;

    u_char                      nkey[1 + NGX_HTTP_OPENBANK_NAME_MAX];
    ssize_t                     n;
    uint64_t                    ids[NGX_HTTP_OPENBANK_WEBHOOK_MAX + 1];
    ngx_str_t                   k;
    ngx_http_openbank_ev_op_t  *op;

    op = ch->ops->elts;

    if (op->type == NGX_HTTP_OPENBANK_EV_PUT) {
        nkey[0] = 'n';
        ngx_memcpy(nkey + 1, ch->partner->data, ch->partner->len);
        k.data = nkey;
        k.len = 1 + ch->partner->len;

        n = ngx_http_openbank_store_get(zone, NGX_HTTP_OPENBANK_TABLE_EVENTS,
                                        &k, ids, sizeof(ids), NULL);

        if (n >= (ssize_t) (NGX_HTTP_OPENBANK_WEBHOOK_MAX * sizeof(uint64_t)))
        {
            ch->too_many = 1;
            return NGX_OK;
        }
    }

    if (ngx_http_openbank_events_apply(zone, op) == NGX_ERROR) {
        (void) ngx_http_openbank_store_delete(zone,
                                              NGX_HTTP_OPENBANK_TABLE_EVENTS,
                                              &op->key);
        ch->full = 1;
    }

    return NGX_OK;
}


/* GET /v1/webhook-endpoints */

static ngx_int_t
ngx_http_openbank_wh_list(ngx_http_request_t *r, ngx_http_openbank_ctx_t *ctx,
    ngx_http_openbank_ev_ctx_t *ec)
{
    u_char                          *nkey;
    ssize_t                          n;
    uint64_t                         ids[NGX_HTTP_OPENBANK_WEBHOOK_MAX + 1];
    ngx_str_t                        k, value;
    ngx_uint_t                       i, count, first;
    ngx_http_openbank_out_t          o;
    ngx_http_openbank_main_conf_t   *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    nkey = ngx_pnalloc(r->pool, 1 + ec->partner.len);
    if (nkey == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    nkey[0] = 'n';
    ngx_memcpy(nkey + 1, ec->partner.data, ec->partner.len);
    k.data = nkey;
    k.len = 1 + ec->partner.len;

    n = ngx_http_openbank_store_get(obmcf->shm_zone->data,
                                    NGX_HTTP_OPENBANK_TABLE_EVENTS, &k,
                                    ids, sizeof(ids), NULL);

    count = (n > 0) ? ngx_min((size_t) n, sizeof(ids)) / sizeof(uint64_t)
                    : 0;

    ngx_qsort(ids, count, sizeof(uint64_t), ngx_http_openbank_wh_cmp);

    ngx_http_openbank_out_init(&o, r->pool);
    ngx_http_openbank_out_raw(&o, "{\"data\":[");

    first = 1;

    for (i = 0; i < count; i++) {
        if (ngx_http_openbank_wh_get(r, 'w', ids[i], &ec->partner,
                                     &value)
            != NGX_OK)
        {
            continue;
        }

        if (!first) {
            ngx_http_openbank_out_raw(&o, ",");
        }

        first = 0;
        ngx_http_openbank_wh_json(&o, ids[i], &value);
    }

    ngx_http_openbank_out_raw(&o, "]}");

    return ngx_http_openbank_wh_send(r, NGX_HTTP_OK, &o);
}


static ngx_int_t
ngx_http_openbank_wh_show(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_ev_ctx_t *ec)
{
    ngx_int_t                 rc;
    ngx_str_t                 value;
    ngx_http_openbank_out_t   o;

    rc = ngx_http_openbank_wh_own(r, ctx, 'w', ec->id, &value);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_openbank_out_init(&o, r->pool);
    ngx_http_openbank_wh_json(&o, ec->id, &value);

    return ngx_http_openbank_wh_send(r, NGX_HTTP_OK, &o);
}


static ngx_int_t
ngx_http_openbank_wh_delete(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_ev_ctx_t *ec)
{
    u_char                          *key;
    ngx_int_t                        rc;
    ngx_str_t                        value;
    ngx_http_openbank_ev_op_t       *op;
    ngx_http_openbank_wh_change_t    ch;
    ngx_http_openbank_main_conf_t   *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    rc = ngx_http_openbank_wh_own(r, ctx, 'w', ec->id, &value);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_memzero(&ch, sizeof(ch));
    ch.partner = &ec->partner;

    ch.ops = ngx_array_create(r->pool, 1, sizeof(ngx_http_openbank_ev_op_t));
    key = ngx_pnalloc(r->pool, 17);

    if (ch.ops == NULL || key == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    op = ngx_array_push(ch.ops);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_openbank_events_key(&op->key, key, 'w', ec->id);
    op->type = NGX_HTTP_OPENBANK_EV_DEL;
    op->value.len = 0;
    op->value.data = NULL;
    op->expire = 0;

    if (ngx_http_openbank_store_atomic(obmcf->shm_zone->data,
                                       ngx_http_openbank_wh_change_atomic,
                                       &ch)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ec->status = NGX_HTTP_NO_CONTENT;
    ngx_str_null(&ec->answer);

    if (ngx_http_openbank_events_write(r->connection->log, ch.ops, r,
                                       ec->done)
        != NGX_OK)
    {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
                                "the events journal cannot be written");
    }

    return NGX_AGAIN;
}


/* POST /v1/webhook-endpoints/{id}/test: a "ping" to that endpoint */

static ngx_int_t
ngx_http_openbank_wh_test(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_ev_ctx_t *ec)
{
    ngx_int_t  rc;
    ngx_str_t  value, data;

    rc = ngx_http_openbank_wh_own(r, ctx, 'w', ec->id, &value);
    if (rc != NGX_OK) {
        return rc;
    }

    data.data = ngx_pnalloc(r->pool, sizeof("{\"endpoint\":\"we_\"}") + 16);
    if (data.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    data.len = ngx_sprintf(data.data, "{\"endpoint\":\"we_%016uxL\"}", ec->id)
               - data.data;

    ec->status = NGX_HTTP_ACCEPTED;

    return ngx_http_openbank_events_emit(r, &ec->partner,
                                         &ngx_http_openbank_wh_ping, &data,
                                         ec->id, ec);
}


/* GET /v1/events?after=evt_...&type=...&limit=...: oldest first */

static ngx_int_t
ngx_http_openbank_wh_events_args(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_wh_walk_t *w,
    ngx_uint_t *limit)
{
    ngx_int_t  n;
    ngx_str_t  v;

    *limit = NGX_HTTP_OPENBANK_EVENTS_LIMIT;

    if (ngx_http_arg(r, (u_char *) "limit", 5, &v) == NGX_OK) {
        n = ngx_atoi(v.data, v.len);

        if (n < 1 || n > NGX_HTTP_OPENBANK_EVENTS_LIMIT_MAX) {
            return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                  NGX_HTTP_OPENBANK_PROBLEM_INVALID_REQUEST,
                                  "limit must be 1 to %d",
                                  NGX_HTTP_OPENBANK_EVENTS_LIMIT_MAX);
        }

        *limit = n;
    }

    if (ngx_http_arg(r, (u_char *) "after", 5, &v) == NGX_OK
        && ngx_http_openbank_wh_id(v.data, v.data + v.len, "evt_", &w->after)
           != NGX_OK)
    {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                  NGX_HTTP_OPENBANK_PROBLEM_INVALID_REQUEST,
                                  "after must be an event's id (evt_...)");
    }

    if (ngx_http_arg(r, (u_char *) "type", 4, &v) == NGX_OK && v.len) {
        if (ngx_http_openbank_event_type_known(&v) != NGX_OK
            && !(v.len == 4 && ngx_strncmp(v.data, "ping", 4) == 0))
        {
            return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                  NGX_HTTP_OPENBANK_PROBLEM_INVALID_REQUEST,
                                  "unknown event type");
        }

        w->type = v;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_wh_events(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_ev_ctx_t *ec)
{
    uint64_t                        *seq;
    ngx_int_t                        rc;
    ngx_str_t                        value;
    ngx_uint_t                       i, limit, shown;
    ngx_http_openbank_out_t          o;
    ngx_http_openbank_wh_walk_t      w;
    ngx_http_openbank_main_conf_t   *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    ngx_memzero(&w, sizeof(w));
    w.partner = &ec->partner;

    rc = ngx_http_openbank_wh_events_args(r, ctx, &w, &limit);
    if (rc != NGX_OK) {
        return rc;
    }

    w.seqs = ngx_array_create(r->pool, 64, sizeof(uint64_t));
    if (w.seqs == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_openbank_store_atomic(obmcf->shm_zone->data,
                                       ngx_http_openbank_wh_walk_atomic, &w)
        != NGX_OK
        || w.failed)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    seq = w.seqs->elts;
    ngx_qsort(seq, w.seqs->nelts, sizeof(uint64_t), ngx_http_openbank_wh_cmp);

    ngx_http_openbank_out_init(&o, r->pool);
    ngx_http_openbank_out_raw(&o, "{\"data\":[");

    shown = 0;

    for (i = 0; i < w.seqs->nelts && shown < limit; i++) {
        if (ngx_http_openbank_wh_get(r, 'e', seq[i], w.partner, &value)
            != NGX_OK)
        {
            continue;
        }

        if (shown++) {
            ngx_http_openbank_out_raw(&o, ",");
        }

        ngx_http_openbank_wh_event_json(&o, seq[i], &value, NULL, NULL);
    }

    ngx_http_openbank_out_raw(&o, "],\"has_more\":%s}",
                              i < w.seqs->nelts ? "true" : "false");

    return ngx_http_openbank_wh_send(r, NGX_HTTP_OK, &o);
}


static ngx_int_t
ngx_http_openbank_wh_walk_atomic(ngx_http_openbank_zone_t *zone, void *data)
{
    return ngx_http_openbank_store_walk(zone, NGX_HTTP_OPENBANK_TABLE_EVENTS,
                                        ngx_http_openbank_wh_walk, data);
}


static ngx_int_t
ngx_http_openbank_wh_walk(ngx_http_openbank_store_value_t *sv, void *data)
{
    ngx_http_openbank_wh_walk_t *w = data;

    uint64_t                     seq, *p;
    ngx_http_openbank_event_v_t  ev;

    if (sv->key.len != 17 || sv->key.data[0] != 'e' || sv->len < sizeof(ev)) {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    ngx_memcpy(&ev, sv->value, sizeof(ev));

    if (sv->len < sizeof(ev) + ev.partner_len + ev.type_len
        || ev.partner_len != w->partner->len
        || ngx_strncmp(sv->value + sizeof(ev), w->partner->data,
                       w->partner->len) != 0)
    {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    if (w->type.len
        && (ev.type_len != w->type.len
            || ngx_strncmp(sv->value + sizeof(ev) + ev.partner_len,
                           w->type.data, w->type.len) != 0))
    {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    seq = ngx_http_openbank_events_hex(sv->key.data + 1, 16);

    if (seq <= w->after) {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    p = ngx_array_push(w->seqs);
    if (p == NULL) {
        w->failed = 1;
        return NGX_HTTP_OPENBANK_STORE_STOP;
    }

    *p = seq;

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/* GET /v1/events/{id}: with its delivery attempts */

static ngx_int_t
ngx_http_openbank_wh_event(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_ev_ctx_t *ec)
{
    ngx_int_t                 rc;
    ngx_str_t                 value;
    ngx_http_openbank_out_t   o;

    rc = ngx_http_openbank_wh_own(r, ctx, 'e', ec->id, &value);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_openbank_out_init(&o, r->pool);
    ngx_http_openbank_wh_event_json(&o, ec->id, &value, r, &ec->partner);

    return ngx_http_openbank_wh_send(r, NGX_HTTP_OK, &o);
}


/*
 * A record of the partner's ("w" or "e"), copied into the pool:
 * NGX_DECLINED when absent or another partner's.
 */

static ngx_int_t
ngx_http_openbank_wh_get(ngx_http_request_t *r, u_char c, uint64_t id,
    ngx_str_t *partner, ngx_str_t *value)
{
    u_char                          kbuf[17];
    size_t                          max, head, plen;
    ssize_t                         n;
    ngx_str_t                       key;
    ngx_http_openbank_event_v_t     ev;
    ngx_http_openbank_webhook_v_t   wv;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    ngx_http_openbank_events_key(&key, kbuf, c, id);

    max = (c == 'w') ? NGX_HTTP_OPENBANK_WEBHOOK_VALUE_MAX
                     : sizeof(ev) + NGX_HTTP_OPENBANK_EVENT_BODY_MAX + 1024
                       + NGX_HTTP_OPENBANK_ATTEMPTS_MAX
                         * sizeof(ngx_http_openbank_attempt_v_t);

    value->data = ngx_pnalloc(r->pool, max);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    n = ngx_http_openbank_store_get(obmcf->shm_zone->data,
                                    NGX_HTTP_OPENBANK_TABLE_EVENTS, &key,
                                    value->data, max, NULL);

    head = (c == 'w') ? sizeof(wv) : sizeof(ev);

    if (n < (ssize_t) head || (size_t) n > max) {
        return NGX_DECLINED;
    }

    value->len = n;

    if (c == 'w') {
        ngx_memcpy(&wv, value->data, sizeof(wv));
        plen = wv.partner_len;

    } else {
        ngx_memcpy(&ev, value->data, sizeof(ev));
        plen = ev.partner_len;
    }

    if (plen != partner->len || (size_t) n < head + plen
        || ngx_strncmp(value->data + head, partner->data, plen) != 0)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* the partner's endpoint ('w') or event ('e'), or its 404 */

static ngx_int_t
ngx_http_openbank_wh_own(ngx_http_request_t *r, ngx_http_openbank_ctx_t *ctx,
    u_char c, uint64_t id, ngx_str_t *value)
{
    ngx_int_t  rc;

    rc = ngx_http_openbank_wh_get(r, c, id, &ctx->events->partner, value);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_NOT_FOUND,
                                        NGX_HTTP_OPENBANK_PROBLEM_NOT_FOUND,
                                        "no %s %s%016uxL",
                                        c == 'w' ? "webhook endpoint"
                                                 : "event",
                                        c == 'w' ? "we_" : "evt_", id);
    }

    return NGX_OK;
}


/* an endpoint as the API shows it: no secret */

static void
ngx_http_openbank_wh_json(ngx_http_openbank_out_t *o, uint64_t id,
    ngx_str_t *value)
{
    u_char                         *p, *last;
    ngx_str_t                       url, events, w;
    ngx_uint_t                      first;
    ngx_http_openbank_webhook_v_t   wv;

    ngx_memcpy(&wv, value->data, sizeof(wv));

    url.data = value->data + sizeof(wv) + wv.partner_len;
    url.len = wv.url_len;
    events.data = url.data + url.len;
    events.len = wv.events_len;

    if (value->len < sizeof(wv) + wv.partner_len + wv.url_len + wv.events_len)
    {
        o->failed = 1;
        return;
    }

    ngx_http_openbank_out_raw(o, "{\"id\":\"we_%016uxL\",\"url\":", id);
    ngx_http_openbank_out_str(o, &url);
    ngx_http_openbank_out_raw(o, ",\"events\":[");

    p = events.data;
    last = p + events.len;
    first = 1;

    while (ngx_http_openbank_next_word(&p, last, &w) == NGX_OK) {
        if (!first) {
            ngx_http_openbank_out_raw(o, ",");
        }

        first = 0;
        ngx_http_openbank_out_str(o, &w);
    }

    ngx_http_openbank_out_raw(o, "],\"status\":\"%s\",\"created\":",
                              wv.status == NGX_HTTP_OPENBANK_WEBHOOK_ENABLED
                              ? "enabled" : "disabled");
    ngx_http_openbank_out_time(o, wv.created);

    if (wv.failing) {
        ngx_http_openbank_out_raw(o, ",\"failing_since\":");
        ngx_http_openbank_out_time(o, wv.failing / 1000);
    }

    ngx_http_openbank_out_raw(o, "}");
}


/*
 * An event as the API shows it (and as a delivery's body has it); with
 * a request, GET /v1/events/{id}: also its attempts and its deliveries
 */

static void
ngx_http_openbank_wh_event_json(ngx_http_openbank_out_t *o, uint64_t seq,
    ngx_str_t *value, ngx_http_request_t *r, ngx_str_t *partner)
{
    u_char                         *p;
    ngx_str_t                       type, data, err;
    ngx_uint_t                      i;
    ngx_http_openbank_event_v_t     ev;
    ngx_http_openbank_attempt_v_t   at;

    ngx_memcpy(&ev, value->data, sizeof(ev));

    if (value->len < sizeof(ev) + ev.partner_len + ev.type_len + ev.data_len
                     + ev.nattempts * sizeof(at))
    {
        o->failed = 1;
        return;
    }

    type.data = value->data + sizeof(ev) + ev.partner_len;
    type.len = ev.type_len;
    data.data = type.data + type.len;
    data.len = ev.data_len;

    ngx_http_openbank_out_raw(o, "{\"id\":\"evt_%016uxL\",\"type\":", seq);
    ngx_http_openbank_out_str(o, &type);
    ngx_http_openbank_out_raw(o, ",\"created\":");
    ngx_http_openbank_wh_time_ms(o, ev.created);
    ngx_http_openbank_out_raw(o, ",\"data\":%V", &data);

    if (r) {
        ngx_http_openbank_out_raw(o, ",\"attempts\":[");

        p = data.data + data.len;

        for (i = 0; i < ev.nattempts; i++, p += sizeof(at)) {
            ngx_memcpy(&at, p, sizeof(at));

            ngx_http_openbank_out_raw(o, "%s{\"at\":", i ? "," : "");
            ngx_http_openbank_wh_time_ms(o, at.at);
            ngx_http_openbank_out_raw(o, ",\"endpoint\":\"we_%016uxL\","
                                      "\"duration_ms\":%uD,\"status\":",
                                      at.endpoint, at.duration);

            if (at.status) {
                ngx_http_openbank_out_raw(o, "%D", at.status);

            } else {
                ngx_http_openbank_out_raw(o, "null");
            }

            err.data = at.error;
            err.len = ngx_strnlen(at.error, sizeof(at.error));

            ngx_http_openbank_out_raw(o, ",\"error\":");

            if (err.len) {
                ngx_http_openbank_out_str(o, &err);

            } else {
                ngx_http_openbank_out_raw(o, "null");
            }

            ngx_http_openbank_out_raw(o, "}");
        }

        ngx_http_openbank_out_raw(o, "]");

        ngx_http_openbank_wh_deliveries(r, partner, o, seq,
                                        data.data + data.len, ev.nattempts);
    }

    ngx_http_openbank_out_raw(o, "}");
}


/*
 * An event's deliveries, one an endpoint it is for (docs/webhooks.md,
 * "Retries"): "pending" and the time it is due while its record is in
 * the outbox, then "delivered" or "failed" (given up, or its endpoint
 * deleted) by its last attempt.
 */

static void
ngx_http_openbank_wh_deliveries(ngx_http_request_t *r, ngx_str_t *partner,
    ngx_http_openbank_out_t *o, uint64_t seq, u_char *attempts,
    ngx_uint_t nattempts)
{
    u_char                         *nkey;
    u_char                          dkey[33];
    ssize_t                         n;
    int64_t                         next;
    uint64_t                        ids[NGX_HTTP_OPENBANK_ATTEMPTS_MAX
                                        + NGX_HTTP_OPENBANK_WEBHOOK_MAX + 1];
    uint64_t                        own[NGX_HTTP_OPENBANK_WEBHOOK_MAX + 1];
    ngx_str_t                       k;
    ngx_uint_t                      i, j, count, nown, made, ok, first;
    ngx_http_openbank_outbox_v_t    ov;
    ngx_http_openbank_attempt_v_t   at;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    /* the endpoints attempted, in the order of their first attempt */

    count = 0;

    for (i = 0; i < nattempts; i++) {
        ngx_memcpy(&at, attempts + i * sizeof(at), sizeof(at));

        for (j = 0; j < count; j++) {
            if (ids[j] == at.endpoint) {
                break;
            }
        }

        if (j == count) {
            ids[count++] = at.endpoint;
        }
    }

    /* then the partner's others, which may have a delivery still to make */

    nkey = ngx_pnalloc(r->pool, 1 + partner->len);
    if (nkey == NULL) {
        o->failed = 1;
        return;
    }

    nkey[0] = 'n';
    ngx_memcpy(nkey + 1, partner->data, partner->len);
    k.data = nkey;
    k.len = 1 + partner->len;

    n = ngx_http_openbank_store_get(obmcf->shm_zone->data,
                                    NGX_HTTP_OPENBANK_TABLE_EVENTS, &k,
                                    own, sizeof(own), NULL);

    nown = (n > 0) ? ngx_min((size_t) n, sizeof(own)) / sizeof(uint64_t) : 0;

    ngx_qsort(own, nown, sizeof(uint64_t), ngx_http_openbank_wh_cmp);

    for (i = 0; i < nown; i++) {
        for (j = 0; j < count; j++) {
            if (ids[j] == own[i]) {
                break;
            }
        }

        if (j == count) {
            ids[count++] = own[i];
        }
    }

    ngx_http_openbank_out_raw(o, ",\"deliveries\":[");

    first = 1;

    for (i = 0; i < count; i++) {
        made = 0;
        ok = 0;

        for (j = 0; j < nattempts; j++) {
            ngx_memcpy(&at, attempts + j * sizeof(at), sizeof(at));

            if (at.endpoint == ids[i]) {
                made++;
                ok = (at.error[0] == '\0');
            }
        }

        dkey[0] = 'd';
        ngx_sprintf(dkey + 1, "%016uxL%016uxL", seq, ids[i]);
        k.data = dkey;
        k.len = 33;

        n = ngx_http_openbank_store_get(obmcf->shm_zone->data,
                                        NGX_HTTP_OPENBANK_TABLE_OUTBOX, &k,
                                        &ov, sizeof(ov), NULL);

        if (n != (ssize_t) sizeof(ov) && made == 0) {
            /* an endpoint the event was not for */
            continue;
        }

        ngx_http_openbank_out_raw(o, "%s{\"endpoint\":\"we_%016uxL\","
                                  "\"status\":", first ? "" : ",", ids[i]);
        first = 0;

        if (n == (ssize_t) sizeof(ov)) {
            ngx_http_openbank_out_raw(o, "\"pending\",\"attempts\":%uD,"
                                      "\"next_attempt\":",
                                      (uint32_t) ngx_max(made, ov.attempts));
            next = ov.next ? ov.next : (int64_t) ngx_http_openbank_now_ms();
            ngx_http_openbank_wh_time_ms(o, next);

        } else {
            ngx_http_openbank_out_raw(o, "\"%s\",\"attempts\":%ui",
                                      ok ? "delivered" : "failed", made);
        }

        ngx_http_openbank_out_raw(o, "}");
    }

    ngx_http_openbank_out_raw(o, "]");
}


/* RFC 3339 to the millisecond, as a delivery's "created" */

static void
ngx_http_openbank_wh_time_ms(ngx_http_openbank_out_t *o, int64_t ms)
{
    ngx_tm_t  tm;

    if (ms < 0) {
        ngx_http_openbank_out_raw(o, "null");
        return;
    }

    ngx_gmtime((time_t) (ms / 1000), &tm);

    ngx_http_openbank_out_raw(o, "\"%4d-%02d-%02dT%02d:%02d:%02d.%03dZ\"",
                              tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                              tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec,
                              (int) (ms % 1000));
}


static ngx_int_t
ngx_http_openbank_wh_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_http_openbank_out_t *o)
{
    ngx_str_t  body;

    if (o->failed) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.data = o->start;
    body.len = o->pos - o->start;

    return ngx_http_openbank_admin_send(r, status, &body);
}


static int ngx_libc_cdecl
ngx_http_openbank_wh_cmp(const void *a, const void *b)
{
    uint64_t  x, y;

    x = *(uint64_t *) a;
    y = *(uint64_t *) b;

    return (x > y) - (x < y);
}
