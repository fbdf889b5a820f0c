
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The bodies of event notifications (docs/webhooks.md), without nginx's
 * request (fuzz/fuzz_events.c): what the bank posts to
 * openbank_events_ingest ({"partner", "type", "data"}), what a partner
 * posts to make a webhook endpoint ({"url", "events"}), and the
 * endpoint's URL.
 *
 * A small strict JSON reader: the whole text is checked (RFC 8259: no
 * trailing commas, no control characters in strings, valid UTF-8 and
 * escapes, nesting at most 32 deep), a member named twice or unknown is
 * refused, and the "data" object is kept as the text it was sent as, so
 * that a delivery carries exactly what the bank said.
 *
 * And a receiver's answer to a delivery (fuzz/fuzz_answer.c): its status
 * line, the headers that frame its body or close the connection, and
 * its body skipped (Content-Length or chunked), incrementally as it
 * comes.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_events.h>
#include <ngx_http_openbank_util.h>


#define NGX_HTTP_OPENBANK_JSON_DEPTH  32

#define ngx_http_openbank_isdigit(c)  ((c) >= '0' && (c) <= '9')
#define ngx_http_openbank_isxdigit(c)                                         \
    (ngx_http_openbank_isdigit(c) || ((c) >= 'a' && (c) <= 'f')              \
     || ((c) >= 'A' && (c) <= 'F'))
#define ngx_http_openbank_isalnum(c)                                          \
    (ngx_http_openbank_isdigit(c) || ((c) >= 'a' && (c) <= 'z')              \
     || ((c) >= 'A' && (c) <= 'Z'))


typedef struct {
    u_char                       *p;
    u_char                       *last;
    const char                   *err;
} ngx_http_openbank_json_t;


static void ngx_http_openbank_json_ws(ngx_http_openbank_json_t *js);
static ngx_int_t ngx_http_openbank_json_value(ngx_http_openbank_json_t *js,
    ngx_uint_t depth);
static ngx_int_t ngx_http_openbank_json_string(ngx_http_openbank_json_t *js,
    ngx_str_t *raw, ngx_uint_t *escaped);
static ngx_int_t ngx_http_openbank_json_number(ngx_http_openbank_json_t *js);
static ngx_int_t ngx_http_openbank_json_member(ngx_http_openbank_json_t *js,
    ngx_uint_t first, ngx_str_t *name);
static ngx_int_t ngx_http_openbank_json_end(ngx_http_openbank_json_t *js);
static ngx_int_t ngx_http_openbank_plain_string(ngx_http_openbank_json_t *js,
    ngx_str_t *out);
static ngx_int_t ngx_http_openbank_answer_line(
    ngx_http_openbank_answer_t *a, u_char *p, u_char *last);
static ngx_int_t ngx_http_openbank_answer_field(
    ngx_http_openbank_answer_t *a, u_char *p, u_char *last);


/* the events the bank posts (docs/webhooks.md, "Events") */

static ngx_str_t  ngx_http_openbank_event_types[] = {
    ngx_string("payment.accepted"),
    ngx_string("payment.settled"),
    ngx_string("payment.rejected"),
    ngx_string("escrow.funded"),
    ngx_string("escrow.partially_released"),
    ngx_string("escrow.released"),
    ngx_string("escrow.refunded"),
    ngx_string("escrow.disputed"),
    ngx_string("escrow.cancelled"),
    ngx_string("escrow.expired"),
    ngx_string("payment_batch.completed"),
    ngx_string("collection.settled"),
    ngx_string("collection.failed"),
    ngx_null_string
};


ngx_int_t
ngx_http_openbank_event_parse(ngx_str_t *text,
    ngx_http_openbank_event_in_t *ev, u_char *err, size_t len)
{
    u_char                    *start;
    ngx_int_t                  rc;
    ngx_str_t                  name;
    ngx_uint_t                 seen, bit;
    ngx_http_openbank_json_t   js;

    /* the text always ends with a NUL, however long */

    ngx_memzero(err, len);
    len--;

    ngx_memzero(ev, sizeof(ngx_http_openbank_event_in_t));

    js.p = text->data;
    js.last = text->data + text->len;
    js.err = NULL;

    seen = 0;

    for (rc = ngx_http_openbank_json_member(&js, 1, &name);
         rc == NGX_OK;
         rc = ngx_http_openbank_json_member(&js, 0, &name))
    {
        if (name.len == 7 && ngx_strncmp(name.data, "partner", 7) == 0) {
            bit = 1;

        } else if (name.len == 4 && ngx_strncmp(name.data, "type", 4) == 0) {
            bit = 2;

        } else if (name.len == 4 && ngx_strncmp(name.data, "data", 4) == 0) {
            bit = 4;

        } else {
            ngx_snprintf(err, len, "unknown member \"%V\"%Z", &name);
            return NGX_DECLINED;
        }

        if (seen & bit) {
            ngx_snprintf(err, len, "member \"%V\" is duplicate%Z", &name);
            return NGX_DECLINED;
        }

        seen |= bit;

        switch (bit) {

        case 1:
            if (ngx_http_openbank_plain_string(&js, &ev->partner)
                != NGX_OK)
            {
                goto invalid;
            }

            break;

        case 2:
            if (ngx_http_openbank_plain_string(&js, &ev->type)
                != NGX_OK)
            {
                goto invalid;
            }

            break;

        default:
            if (js.p == js.last || *js.p != '{') {
                js.err = "\"data\" must be an object";
                goto invalid;
            }

            start = js.p;

            if (ngx_http_openbank_json_value(&js, 1) != NGX_OK) {
                goto invalid;
            }

            ev->data.data = start;
            ev->data.len = js.p - start;
            break;
        }
    }

    if (rc != NGX_DONE || ngx_http_openbank_json_end(&js) != NGX_OK) {
        goto invalid;
    }

    if (seen != 7) {
        ngx_snprintf(err, len, "\"%s\" is missing%Z",
                     !(seen & 1) ? "partner" : !(seen & 2) ? "type" : "data");
        return NGX_DECLINED;
    }

    if (ngx_http_openbank_valid_name(&ev->partner) != NGX_OK) {
        ngx_snprintf(err, len, "\"partner\" is not a partner's name%Z");
        return NGX_DECLINED;
    }

    if (ngx_http_openbank_event_type_known(&ev->type) != NGX_OK) {
        ngx_snprintf(err, len, "unknown event type \"%V\"%Z", &ev->type);
        return NGX_DECLINED;
    }

    return NGX_OK;

invalid:

    ngx_snprintf(err, len, "%s at byte %uz%Z",
                 js.err ? js.err : "not a JSON object",
                 (size_t) (js.p - text->data));

    return NGX_DECLINED;
}


ngx_int_t
ngx_http_openbank_webhook_parse(ngx_str_t *text,
    ngx_http_openbank_webhook_in_t *wh, u_char *err, size_t len)
{
    ngx_int_t                  rc;
    ngx_str_t                  name, *pat;
    ngx_uint_t                 seen, bit, i;
    ngx_http_openbank_json_t   js;

    /* the text always ends with a NUL, however long */

    ngx_memzero(err, len);
    len--;

    ngx_memzero(wh, sizeof(ngx_http_openbank_webhook_in_t));

    js.p = text->data;
    js.last = text->data + text->len;
    js.err = NULL;

    seen = 0;

    for (rc = ngx_http_openbank_json_member(&js, 1, &name);
         rc == NGX_OK;
         rc = ngx_http_openbank_json_member(&js, 0, &name))
    {
        if (name.len == 3 && ngx_strncmp(name.data, "url", 3) == 0) {
            bit = 1;

        } else if (name.len == 6 && ngx_strncmp(name.data, "events", 6) == 0)
        {
            bit = 2;

        } else {
            ngx_snprintf(err, len, "unknown member \"%V\"%Z", &name);
            return NGX_DECLINED;
        }

        if (seen & bit) {
            ngx_snprintf(err, len, "member \"%V\" is duplicate%Z", &name);
            return NGX_DECLINED;
        }

        seen |= bit;

        if (bit == 1) {
            if (ngx_http_openbank_plain_string(&js, &wh->url)
                != NGX_OK)
            {
                goto invalid;
            }

            continue;
        }

        if (js.p == js.last || *js.p != '[') {
            js.err = "\"events\" must be an array of strings";
            goto invalid;
        }

        js.p++;
        ngx_http_openbank_json_ws(&js);

        if (js.p < js.last && *js.p == ']') {
            js.p++;
            continue;
        }

        for ( ;; ) {
            if (wh->nevents == NGX_HTTP_OPENBANK_WEBHOOK_PATTERNS) {
                ngx_snprintf(err, len, "\"events\" has more than %d "
                             "entries%Z", NGX_HTTP_OPENBANK_WEBHOOK_PATTERNS);
                return NGX_DECLINED;
            }

            if (ngx_http_openbank_plain_string(&js,
                                               &wh->events[wh->nevents])
                != NGX_OK)
            {
                goto invalid;
            }

            wh->nevents++;

            ngx_http_openbank_json_ws(&js);

            if (js.p < js.last && *js.p == ',') {
                js.p++;
                ngx_http_openbank_json_ws(&js);
                continue;
            }

            if (js.p < js.last && *js.p == ']') {
                js.p++;
                break;
            }

            js.err = "\",\" or \"]\" expected";
            goto invalid;
        }
    }

    if (rc != NGX_DONE || ngx_http_openbank_json_end(&js) != NGX_OK) {
        goto invalid;
    }

    if (!(seen & 1)) {
        ngx_snprintf(err, len, "\"url\" is missing%Z");
        return NGX_DECLINED;
    }

    if (wh->nevents == 0) {
        ngx_snprintf(err, len, "\"events\" must name at least one event "
                     "type or prefix (\"payment.*\")%Z");
        return NGX_DECLINED;
    }

    pat = wh->events;

    for (i = 0; i < wh->nevents; i++) {
        if (ngx_http_openbank_event_pattern_valid(&pat[i]) != NGX_OK) {
            ngx_snprintf(err, len, "\"%V\" is neither an event type nor a "
                         "prefix of some (\"payment.*\")%Z", &pat[i]);
            return NGX_DECLINED;
        }
    }

    return NGX_OK;

invalid:

    ngx_snprintf(err, len, "%s at byte %uz%Z",
                 js.err ? js.err : "not a JSON object",
                 (size_t) (js.p - text->data));

    return NGX_DECLINED;
}


/*
 * An endpoint's URL: http or https, a host (a name, a dotted quad, or an
 * IPv6 address in brackets), an optional port, a path and query; no
 * user information, no fragment.  Whether the scheme and the host's
 * addresses are allowed is for the caller (after resolution).
 */

ngx_int_t
ngx_http_openbank_url_parse(ngx_str_t *url, ngx_http_openbank_url_t *u,
    u_char *err, size_t len)
{
    u_char      *p, *last, *host, *q;
    ngx_int_t    port;
    ngx_uint_t   i;

    /* the text always ends with a NUL, however long */

    ngx_memzero(err, len);
    len--;

    ngx_memzero(u, sizeof(ngx_http_openbank_url_t));

    p = url->data;
    last = p + url->len;

    if (url->len > NGX_HTTP_OPENBANK_WEBHOOK_URL_MAX) {
        ngx_snprintf(err, len, "the url is longer than %d bytes%Z",
                     NGX_HTTP_OPENBANK_WEBHOOK_URL_MAX);
        return NGX_DECLINED;
    }

    for (q = p; q < last; q++) {
        if (*q <= 0x20 || *q >= 0x7f || *q == '\\' || *q == '#') {
            ngx_snprintf(err, len, "the url has a byte it may not have "
                         "(a space, a control, a backslash, a fragment or "
                         "non-ASCII)%Z");
            return NGX_DECLINED;
        }
    }

    if (url->len > 8 && ngx_strncasecmp(p, (u_char *) "https://", 8) == 0) {
        u->https = 1;
        p += 8;

    } else if (url->len > 7
               && ngx_strncasecmp(p, (u_char *) "http://", 7) == 0)
    {
        p += 7;

    } else {
        ngx_snprintf(err, len, "the url must be https://%Z");
        return NGX_DECLINED;
    }

    u->authority.data = p;

    q = p;
    while (q < last && *q != '/' && *q != '?') {
        q++;
    }

    u->authority.len = q - p;

    if (ngx_strlchr(p, q, '@') != NULL) {
        ngx_snprintf(err, len, "the url may not have user information%Z");
        return NGX_DECLINED;
    }

    host = p;

    if (p < q && *p == '[') {
        host = ++p;

        while (p < q && *p != ']') {
            if (!(ngx_http_openbank_isxdigit(*p) || *p == ':' || *p == '.')) {
                break;
            }

            p++;
        }

        if (p == q || *p != ']' || p == host) {
            ngx_snprintf(err, len, "the url's IPv6 address is not valid%Z");
            return NGX_DECLINED;
        }

        u->host.data = host;
        u->host.len = p - host;
        p++;

    } else {
        while (p < q && *p != ':') {
            if (!(ngx_http_openbank_isalnum(*p)
                  || *p == '-' || *p == '.' || *p == '_'))
            {
                ngx_snprintf(err, len, "the url's host is not a host "
                             "name%Z");
                return NGX_DECLINED;
            }

            p++;
        }

        u->host.data = host;
        u->host.len = p - host;

        if (u->host.len == 0 || u->host.len > 253) {
            ngx_snprintf(err, len, "the url has no host%Z");
            return NGX_DECLINED;
        }

        for (i = 0; i < u->host.len; i++) {
            host[i] = ngx_tolower(host[i]);
        }
    }

    u->port = u->https ? 443 : 80;

    if (p < q) {
        if (*p != ':' || p + 1 == q || q - p > 6) {
            ngx_snprintf(err, len, "the url's port is not valid%Z");
            return NGX_DECLINED;
        }

        port = ngx_atoi(p + 1, q - p - 1);

        if (port < 1 || port > 65535) {
            ngx_snprintf(err, len, "the url's port is not valid%Z");
            return NGX_DECLINED;
        }

        u->port = (in_port_t) port;
    }

    if (q == last) {
        ngx_str_set(&u->path, "/");

    } else if (*q == '?') {
        ngx_snprintf(err, len, "the url's path must begin with \"/\"%Z");
        return NGX_DECLINED;

    } else {
        u->path.data = q;
        u->path.len = last - q;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_openbank_event_type_known(ngx_str_t *type)
{
    ngx_str_t  *t;

    for (t = ngx_http_openbank_event_types; t->len; t++) {
        if (t->len == type->len
            && ngx_strncmp(t->data, type->data, type->len) == 0)
        {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


/* a type, or "<prefix>.*" that some type begins with, or "*" */

ngx_int_t
ngx_http_openbank_event_pattern_valid(ngx_str_t *pattern)
{
    ngx_str_t  *t;

    if (pattern->len == 1 && pattern->data[0] == '*') {
        return NGX_OK;
    }

    if (pattern->len < 3 || pattern->data[pattern->len - 1] != '*') {
        return ngx_http_openbank_event_type_known(pattern);
    }

    if (pattern->data[pattern->len - 2] != '.') {
        return NGX_DECLINED;
    }

    for (t = ngx_http_openbank_event_types; t->len; t++) {
        if (t->len > pattern->len - 1
            && ngx_strncmp(t->data, pattern->data, pattern->len - 1) == 0)
        {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


/* whether one of the space-separated patterns matches the type */

ngx_int_t
ngx_http_openbank_event_matches(ngx_str_t *patterns, ngx_str_t *type)
{
    u_char     *p, *last;
    ngx_str_t   w;

    p = patterns->data;
    last = p + patterns->len;

    while (ngx_http_openbank_next_word(&p, last, &w) == NGX_OK) {
        if (w.len == 1 && w.data[0] == '*') {
            return NGX_OK;
        }

        if (w.len >= 2 && w.data[w.len - 1] == '*') {
            if (type->len > w.len - 1
                && ngx_strncmp(type->data, w.data, w.len - 1) == 0)
            {
                return NGX_OK;
            }

            continue;
        }

        if (w.len == type->len
            && ngx_strncmp(w.data, type->data, w.len) == 0)
        {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


static void
ngx_http_openbank_json_ws(ngx_http_openbank_json_t *js)
{
    while (js->p < js->last
           && (*js->p == ' ' || *js->p == '\t' || *js->p == '\n'
               || *js->p == '\r'))
    {
        js->p++;
    }
}


/*
 * The next member of the top-level object: its name (raw, as between
 * the quotes), with js->p at its value; NGX_DONE after the last.
 */

static ngx_int_t
ngx_http_openbank_json_member(ngx_http_openbank_json_t *js,
    ngx_uint_t first, ngx_str_t *name)
{
    ngx_uint_t  escaped;

    ngx_http_openbank_json_ws(js);

    if (first) {
        if (js->p == js->last || *js->p != '{') {
            js->err = "not a JSON object";
            return NGX_ERROR;
        }

        js->p++;
        ngx_http_openbank_json_ws(js);

        if (js->p < js->last && *js->p == '}') {
            js->p++;
            return NGX_DONE;
        }

    } else {
        if (js->p < js->last && *js->p == '}') {
            js->p++;
            return NGX_DONE;
        }

        if (js->p == js->last || *js->p != ',') {
            js->err = "\",\" or \"}\" expected";
            return NGX_ERROR;
        }

        js->p++;
        ngx_http_openbank_json_ws(js);
    }

    if (ngx_http_openbank_json_string(js, name, &escaped) != NGX_OK) {
        if (js->err == NULL) {
            js->err = "a member's name expected";
        }

        return NGX_ERROR;
    }

    ngx_http_openbank_json_ws(js);

    if (js->p == js->last || *js->p != ':') {
        js->err = "\":\" expected";
        return NGX_ERROR;
    }

    js->p++;
    ngx_http_openbank_json_ws(js);

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_json_end(ngx_http_openbank_json_t *js)
{
    ngx_http_openbank_json_ws(js);

    if (js->p != js->last) {
        js->err = "text after the object";
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a string without escapes, as names, types and URLs are */

static ngx_int_t
ngx_http_openbank_plain_string(ngx_http_openbank_json_t *js, ngx_str_t *out)
{
    ngx_uint_t  escaped;

    if (js->p == js->last || *js->p != '"') {
        js->err = "a string expected";
        return NGX_ERROR;
    }

    if (ngx_http_openbank_json_string(js, out, &escaped) != NGX_OK) {
        return NGX_ERROR;
    }

    if (escaped) {
        js->err = "an escape in a string that may not have one";
        return NGX_ERROR;
    }

    if (out->len == 0) {
        js->err = "an empty string";
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_json_value(ngx_http_openbank_json_t *js, ngx_uint_t depth)
{
    u_char      c;
    ngx_str_t   s;
    ngx_uint_t  escaped;

    if (depth > NGX_HTTP_OPENBANK_JSON_DEPTH) {
        js->err = "nested more than 32 deep";
        return NGX_ERROR;
    }

    ngx_http_openbank_json_ws(js);

    if (js->p == js->last) {
        js->err = "a value expected";
        return NGX_ERROR;
    }

    c = *js->p;

    switch (c) {

    case '{':
        js->p++;
        ngx_http_openbank_json_ws(js);

        if (js->p < js->last && *js->p == '}') {
            js->p++;
            return NGX_OK;
        }

        for ( ;; ) {
            ngx_http_openbank_json_ws(js);

            if (js->p == js->last || *js->p != '"') {
                js->err = "a member's name expected";
                return NGX_ERROR;
            }

            if (ngx_http_openbank_json_string(js, &s, &escaped) != NGX_OK) {
                return NGX_ERROR;
            }

            ngx_http_openbank_json_ws(js);

            if (js->p == js->last || *js->p != ':') {
                js->err = "\":\" expected";
                return NGX_ERROR;
            }

            js->p++;

            if (ngx_http_openbank_json_value(js, depth + 1) != NGX_OK) {
                return NGX_ERROR;
            }

            ngx_http_openbank_json_ws(js);

            if (js->p < js->last && *js->p == ',') {
                js->p++;
                continue;
            }

            if (js->p < js->last && *js->p == '}') {
                js->p++;
                return NGX_OK;
            }

            js->err = "\",\" or \"}\" expected";
            return NGX_ERROR;
        }

    case '[':
        js->p++;
        ngx_http_openbank_json_ws(js);

        if (js->p < js->last && *js->p == ']') {
            js->p++;
            return NGX_OK;
        }

        for ( ;; ) {
            if (ngx_http_openbank_json_value(js, depth + 1) != NGX_OK) {
                return NGX_ERROR;
            }

            ngx_http_openbank_json_ws(js);

            if (js->p < js->last && *js->p == ',') {
                js->p++;
                continue;
            }

            if (js->p < js->last && *js->p == ']') {
                js->p++;
                return NGX_OK;
            }

            js->err = "\",\" or \"]\" expected";
            return NGX_ERROR;
        }

    case '"':
        return ngx_http_openbank_json_string(js, &s, &escaped);

    case 't':
    case 'f':
    case 'n':
        s.data = (u_char *) (c == 't' ? "true" : c == 'f' ? "false" : "null");
        s.len = ngx_strlen(s.data);

        if ((size_t) (js->last - js->p) < s.len
            || ngx_strncmp(js->p, s.data, s.len) != 0)
        {
            js->err = "not a JSON value";
            return NGX_ERROR;
        }

        js->p += s.len;
        return NGX_OK;

    default:
        return ngx_http_openbank_json_number(js);
    }
}


/* js->p at the opening quote; after the closing one when NGX_OK */

static ngx_int_t
ngx_http_openbank_json_string(ngx_http_openbank_json_t *js, ngx_str_t *raw,
    ngx_uint_t *escaped)
{
    u_char    *p, *q;
    uint32_t   ch;
    ngx_int_t  i;

    p = js->p;

    if (p == js->last || *p != '"') {
        js->err = "a string expected";
        return NGX_ERROR;
    }

    p++;
    raw->data = p;
    *escaped = 0;

    while (p < js->last) {

        if (*p == '"') {
            raw->len = p - raw->data;
            js->p = p + 1;
            return NGX_OK;
        }

        if (*p < 0x20) {
            js->p = p;
            js->err = "a control character in a string";
            return NGX_ERROR;
        }

        if (*p == '\\') {
            *escaped = 1;

            if (p + 1 == js->last) {
                break;
            }

            switch (p[1]) {

            case '"': case '\\': case '/': case 'b': case 'f': case 'n':
            case 'r': case 't':
                p += 2;
                continue;

            case 'u':
                if (js->last - p < 6) {
                    break;
                }

                for (i = 2; i < 6; i++) {
                    if (!ngx_http_openbank_isxdigit(p[i])) {
                        js->p = p;
                        js->err = "a bad \\u escape";
                        return NGX_ERROR;
                    }
                }

                p += 6;
                continue;

            default:
                js->p = p;
                js->err = "a bad escape";
                return NGX_ERROR;
            }

            break;
        }

        if (*p < 0x80) {
            p++;
            continue;
        }

        q = p;
        ch = ngx_utf8_decode(&q, js->last - p);

        if (ch > 0x10ffff) {
            js->p = p;
            js->err = "a string that is not UTF-8";
            return NGX_ERROR;
        }

        p = q;
    }

    js->p = js->last;
    js->err = "an unterminated string";

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_openbank_json_number(ngx_http_openbank_json_t *js)
{
    u_char  *p, *start;

    p = js->p;

    if (p < js->last && *p == '-') {
        p++;
    }

    start = p;

    if (p < js->last && *p == '0') {
        p++;

    } else {
        while (p < js->last && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p == start) {
        js->err = "not a JSON value";
        return NGX_ERROR;
    }

    if (p < js->last && *p == '.') {
        start = ++p;

        while (p < js->last && *p >= '0' && *p <= '9') {
            p++;
        }

        if (p == start) {
            js->p = p;
            js->err = "a bad number";
            return NGX_ERROR;
        }
    }

    if (p < js->last && (*p == 'e' || *p == 'E')) {
        p++;

        if (p < js->last && (*p == '+' || *p == '-')) {
            p++;
        }

        start = p;

        while (p < js->last && *p >= '0' && *p <= '9') {
            p++;
        }

        if (p == start) {
            js->p = p;
            js->err = "a bad number";
            return NGX_ERROR;
        }
    }

    js->p = p;

    return NGX_OK;
}


void
ngx_http_openbank_answer_init(ngx_http_openbank_answer_t *a, u_char *buf,
    size_t size)
{
    ngx_memzero(a, sizeof(ngx_http_openbank_answer_t));

    a->buf = buf;
    a->size = size;
    a->length = -1;
}


/*
 * The answer received so far: NGX_AGAIN for more (room left in the
 * buffer), NGX_OK when it is whole, NGX_DONE when its status is known
 * but the rest is not to be read, NGX_ERROR when it is not HTTP.
 */

ngx_int_t
ngx_http_openbank_answer_parse(ngx_http_openbank_answer_t *a)
{
    u_char     *p, *last, *lf;
    off_t       n;
    ngx_int_t   rc;

    for ( ;; ) {
        p = a->buf + a->pos;
        last = a->buf + a->received;

        if (a->state == NGX_HTTP_OPENBANK_ANSWER_BODY
            || a->state == NGX_HTTP_OPENBANK_ANSWER_CHUNK_DATA)
        {
            n = ngx_min((off_t) (last - p), a->rest);
            a->pos += n;
            a->rest -= n;

            if (a->rest) {
                a->pos = 0;
                a->received = 0;
                return NGX_AGAIN;
            }

            if (a->state == NGX_HTTP_OPENBANK_ANSWER_BODY) {
                return NGX_OK;
            }

            a->state = NGX_HTTP_OPENBANK_ANSWER_CHUNK_END;
            continue;
        }

        /* the status known from its first 12 bytes, as before its end */

        if (a->state == NGX_HTTP_OPENBANK_ANSWER_STATUS && a->status == 0
            && last - p >= 12)
        {
            if (ngx_strncmp(p, "HTTP/1.", 7) != 0
                || (p[7] != '0' && p[7] != '1') || p[8] != ' '
                || p[9] < '1' || p[9] > '5'
                || p[10] < '0' || p[10] > '9' || p[11] < '0' || p[11] > '9')
            {
                return NGX_ERROR;
            }

            a->status = (p[9] - '0') * 100 + (p[10] - '0') * 10
                        + (p[11] - '0');

            if (p[7] == '0') {
                /* HTTP/1.0: the receiver closes */
                a->close = 1;
            }
        }

        lf = ngx_strlchr(p, last, LF);

        if (lf == NULL) {
            if (a->pos == 0 && a->received == a->size) {
                /* a line longer than the buffer */
                return a->status ? NGX_DONE : NGX_ERROR;
            }

            ngx_memmove(a->buf, p, last - p);
            a->received = last - p;
            a->pos = 0;

            return NGX_AGAIN;
        }

        a->pos = lf + 1 - a->buf;

        if (lf > p && lf[-1] == CR) {
            lf--;
        }

        rc = ngx_http_openbank_answer_line(a, p, lf);

        if (rc != NGX_AGAIN) {
            return rc;
        }
    }
}


/* a line of the answer, its CRLF off */

static ngx_int_t
ngx_http_openbank_answer_line(ngx_http_openbank_answer_t *a, u_char *p,
    u_char *last)
{
    off_t   size;
    u_char  c;

    switch (a->state) {

    case NGX_HTTP_OPENBANK_ANSWER_STATUS:

        if (a->status == 0) {
            return NGX_ERROR;
        }

        a->state = NGX_HTTP_OPENBANK_ANSWER_HEADER;
        return NGX_AGAIN;

    case NGX_HTTP_OPENBANK_ANSWER_HEADER:

        if (p != last) {
            return ngx_http_openbank_answer_field(a, p, last);
        }

        a->headers = 1;

        if (a->status < 200) {

            /* an interim answer (100 Continue): the final one follows */

            if (a->status == 101) {
                return NGX_DONE;
            }

            a->state = NGX_HTTP_OPENBANK_ANSWER_STATUS;
            a->status = 0;
            a->headers = 0;
            a->close = 0;
            a->chunked = 0;
            a->length = -1;
            return NGX_AGAIN;
        }

        if (a->status == 204 || a->status == 304) {
            return NGX_OK;
        }

        if (a->chunked) {
            if (a->length != -1) {
                /* both: the framing is doubtful, not kept (RFC 9112) */
                a->close = 1;
            }

            a->state = NGX_HTTP_OPENBANK_ANSWER_CHUNK_SIZE;
            return NGX_AGAIN;
        }

        if (a->length == -1 || a->length > NGX_HTTP_OPENBANK_ANSWER_DRAIN) {
            /* read until closed, or too long to read: not kept */
            return NGX_DONE;
        }

        if (a->length == 0) {
            return NGX_OK;
        }

        a->rest = a->length;
        a->state = NGX_HTTP_OPENBANK_ANSWER_BODY;
        return NGX_AGAIN;

    case NGX_HTTP_OPENBANK_ANSWER_CHUNK_SIZE:

        size = 0;

        if (p == last) {
            return NGX_DONE;
        }

        for ( /* void */ ; p < last; p++) {
            c = (u_char) (*p | 0x20);

            if (*p >= '0' && *p <= '9') {
                size = size * 16 + (*p - '0');

            } else if (c >= 'a' && c <= 'f') {
                size = size * 16 + (c - 'a' + 10);

            } else if (*p == ';' || *p == ' ' || *p == '\t') {
                break;

            } else {
                return NGX_DONE;
            }

            if (size > NGX_HTTP_OPENBANK_ANSWER_DRAIN) {
                return NGX_DONE;
            }
        }

        a->drained += size;

        if (a->drained > NGX_HTTP_OPENBANK_ANSWER_DRAIN) {
            return NGX_DONE;
        }

        if (size == 0) {
            a->state = NGX_HTTP_OPENBANK_ANSWER_TRAILER;
            return NGX_AGAIN;
        }

        a->rest = size;
        a->state = NGX_HTTP_OPENBANK_ANSWER_CHUNK_DATA;
        return NGX_AGAIN;

    case NGX_HTTP_OPENBANK_ANSWER_CHUNK_END:

        if (p != last) {
            return NGX_DONE;
        }

        a->state = NGX_HTTP_OPENBANK_ANSWER_CHUNK_SIZE;
        return NGX_AGAIN;

    case NGX_HTTP_OPENBANK_ANSWER_TRAILER:

        return (p == last) ? NGX_OK : NGX_AGAIN;

    default:
        return NGX_DONE;
    }
}


/* a header of the answer: its framing and whether it is kept */

static ngx_int_t
ngx_http_openbank_answer_field(ngx_http_openbank_answer_t *a, u_char *p,
    u_char *last)
{
    off_t    n;
    u_char  *colon, *v, *end;
    size_t   len;

    colon = ngx_strlchr(p, last, ':');
    if (colon == NULL) {
        a->close = 1;
        return NGX_AGAIN;
    }

    len = colon - p;

    for (v = colon + 1; v < last && (*v == ' ' || *v == '\t'); v++) {
        /* void */
    }

    for (end = last; end > v && (end[-1] == ' ' || end[-1] == '\t'); end--) {
        /* void */
    }

    if (len == sizeof("Content-Length") - 1
        && ngx_strncasecmp(p, (u_char *) "Content-Length", len) == 0)
    {
        n = (v < end) ? ngx_atoof(v, end - v) : NGX_ERROR;

        if (n == NGX_ERROR || (a->length != -1 && a->length != n)) {
            /* not a length, or two: the end of the body is unknown */
            return NGX_DONE;
        }

        a->length = n;
        return NGX_AGAIN;
    }

    if (len == sizeof("Transfer-Encoding") - 1
        && ngx_strncasecmp(p, (u_char *) "Transfer-Encoding", len) == 0)
    {
        /* chunked, the last coding, and the only one read */

        if (end - v == 7 && ngx_strncasecmp(v, (u_char *) "chunked", 7) == 0)
        {
            a->chunked = 1;
            return NGX_AGAIN;
        }

        return NGX_DONE;
    }

    if (len == sizeof("Connection") - 1
        && ngx_strncasecmp(p, (u_char *) "Connection", len) == 0
        && ngx_strlcasestrn(v, end, (u_char *) "close", 5 - 1) != NULL)
    {
        a->close = 1;
    }

    return NGX_AGAIN;
}
