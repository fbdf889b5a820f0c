
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * What the gateway's JSON APIs share (the Admin API, registration, the
 * events ingest and API): a request's body read whole, a JSON answer
 * sent (at once, or once a registry change is durable), and a growing
 * JSON text in a pool to write it in.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_admin.h>


static void ngx_http_openbank_json_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_openbank_json_too_large(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
static ngx_int_t ngx_http_openbank_json_read(ngx_http_request_t *r,
    ngx_str_t *body, size_t max);


/*
 * A JSON API's request, once routed: one "with_body" has it read whole and
 * dispatched once read (NGX_DONE); any other has it discarded and is
 * dispatched at once.
 */

ngx_int_t
ngx_http_openbank_json_request(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_uint_t with_body,
    ngx_http_openbank_json_api_t *api)
{
    ngx_int_t  rc;

    ctx->json = api;

    if (with_body) {
        if (r->headers_in.content_length_n > (off_t) api->max) {
            return ngx_http_openbank_json_too_large(r, ctx);
        }

        rc = ngx_http_read_client_request_body(r,
                                               ngx_http_openbank_json_body);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = api->dispatch(r, ctx, NULL);

    if (rc == NGX_AGAIN) {
        /* answered once durable */
        r->main->count++;
        return NGX_DONE;
    }

    return rc;
}


static void
ngx_http_openbank_json_body(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_str_t                 body;
    ngx_http_openbank_ctx_t  *ctx;

    ctx = ngx_http_openbank_find_ctx(r);

    if (ctx == NULL || ctx->json == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_openbank_json_read(r, &body, ctx->json->max);

    if (rc == NGX_DECLINED) {
        rc = ngx_http_openbank_json_too_large(r, ctx);

    } else if (rc == NGX_OK) {
        rc = ctx->json->dispatch(r, ctx, &body);

    } else {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_AGAIN) {
        /* the read's reference ends once the answer is sent */
        return;
    }

    ngx_http_finalize_request(r, rc);
}


static ngx_int_t
ngx_http_openbank_json_too_large(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    ngx_http_openbank_json_api_t  *api;

    api = ctx->json;

    if (api->too_large) {
        return api->too_large(r, ctx, NULL);
    }

    return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                  NGX_HTTP_OPENBANK_PROBLEM_PAYLOAD_TOO_LARGE,
                                  "%s is at most %uz bytes", api->what,
                                  api->max);
}


/* the body, whole, NUL-terminated: NGX_DECLINED when longer than max */

static ngx_int_t
ngx_http_openbank_json_read(ngx_http_request_t *r, ngx_str_t *body,
    size_t max)
{
    u_char       *p;
    size_t        len, n;
    ssize_t       got;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    len = 0;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            len += ngx_buf_size(cl->buf);
        }
    }

    if (len > max) {
        return NGX_DECLINED;
    }

    body->data = ngx_pnalloc(r->pool, len + 1);
    if (body->data == NULL) {
        return NGX_ERROR;
    }

    p = body->data;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            b = cl->buf;

            if (b->in_file) {
                n = (size_t) (b->file_last - b->file_pos);
                got = ngx_read_file(b->file, p, n, b->file_pos);

                if (got != (ssize_t) n) {
                    return NGX_ERROR;
                }

                p += n;
                continue;
            }

            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    *p = '\0';
    body->len = p - body->data;

    return NGX_OK;
}


ngx_int_t
ngx_http_openbank_admin_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_length_n = body->len;

    if (body->len) {
        ngx_str_set(&r->headers_out.content_type, "application/json");
        r->headers_out.content_type_len = r->headers_out.content_type.len;
    }

    ngx_http_clear_last_modified(r);

    if (status == NGX_HTTP_NO_CONTENT) {
        r->header_only = 1;
        r->headers_out.content_length_n = -1;
    }

    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * The registry change's records are durable (NGX_OK) or not: the answer
 * of ctx->reply, or 503 state_unavailable (the change is in force).
 */

void
ngx_http_openbank_reply_durable(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_connection_t         *c;
    ngx_http_openbank_ctx_t  *ctx;

    c = r->connection;
    ctx = ngx_http_openbank_find_ctx(r);

    if (ctx == NULL || ctx->reply == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        ngx_http_run_posted_requests(c);
        return;
    }

    if (rc != NGX_OK) {
        rc = ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
                                "the change is made but not yet durable: "
                                "the registry's journal cannot be written");
    } else {
        rc = ctx->reply->send(r, ctx->reply->status, &ctx->reply->answer);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


void
ngx_http_openbank_out_init(ngx_http_openbank_out_t *o, ngx_pool_t *pool)
{
    o->pool = pool;
    o->start = ngx_pnalloc(pool, 1024);
    o->pos = o->start;
    o->end = o->start ? o->start + 1024 : NULL;
    o->failed = (o->start == NULL);
}


ngx_int_t
ngx_http_openbank_out_room(ngx_http_openbank_out_t *o, size_t len)
{
    u_char  *p;
    size_t   size;

    if (o->failed) {
        return NGX_ERROR;
    }

    if ((size_t) (o->end - o->pos) >= len) {
        return NGX_OK;
    }

    size = 2 * (o->end - o->start) + len;

    p = ngx_pnalloc(o->pool, size);
    if (p == NULL) {
        o->failed = 1;
        return NGX_ERROR;
    }

    ngx_memcpy(p, o->start, o->pos - o->start);
    o->pos = p + (o->pos - o->start);
    o->start = p;
    o->end = p + size;

    return NGX_OK;
}


void
ngx_http_openbank_out_raw(ngx_http_openbank_out_t *o, const char *fmt, ...)
{
    u_char   buf[4096], *p;
    va_list  args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    if (ngx_http_openbank_out_room(o, p - buf) == NGX_OK) {
        o->pos = ngx_cpymem(o->pos, buf, p - buf);
    }
}


void
ngx_http_openbank_out_str(ngx_http_openbank_out_t *o, ngx_str_t *s)
{
    size_t  len;

    len = s->len + ngx_escape_json(NULL, s->data, s->len) + 2;

    if (ngx_http_openbank_out_room(o, len) != NGX_OK) {
        return;
    }

    *o->pos++ = '"';
    o->pos = (u_char *) ngx_escape_json(o->pos, s->data, s->len);
    *o->pos++ = '"';
}


/* RFC 3339, UTC; a negative time is null */

void
ngx_http_openbank_out_time(ngx_http_openbank_out_t *o, int64_t t)
{
    ngx_tm_t  tm;

    if (t < 0) {
        ngx_http_openbank_out_raw(o, "null");
        return;
    }

    ngx_gmtime((time_t) t, &tm);

    ngx_http_openbank_out_raw(o, "\"%4d-%02d-%02dT%02d:%02d:%02dZ\"",
                              tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                              tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);
}
