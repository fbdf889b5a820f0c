
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The Admin API's JSON bodies (docs/admin.md): one object of known
 * members, each of its type and form, into ngx_http_openbank_admin_body_t;
 * a refusal says which member and why.  What the configuration knows
 * (plans, scopes, products) is checked by the caller
 * (ngx_http_openbank_admin.c).  No nginx request here: the fuzz target
 * (fuzz/fuzz_admin.c) calls it as it is.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_admin.h>
#include <ngx_http_openbank_util.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>


typedef struct {
    const char                   *name;
    ngx_uint_t                    bit;
} ngx_http_openbank_admin_member_t;


static ngx_int_t ngx_http_openbank_admin_fail(u_char *err, size_t len,
    const char *fmt, ...);
static ngx_int_t ngx_http_openbank_admin_string(yajl_val v, ngx_pool_t *pool,
    ngx_str_t *out);
static ngx_int_t ngx_http_openbank_admin_client_id(ngx_str_t *id);
static ngx_int_t ngx_http_openbank_admin_gen(yajl_gen g, yajl_val v,
    ngx_uint_t depth);


static ngx_http_openbank_admin_member_t  ngx_http_openbank_admin_members[] = {
    { "name", NGX_HTTP_OPENBANK_ADMIN_NAME },
    { "plan", NGX_HTTP_OPENBANK_ADMIN_PLAN },
    { "scopes", NGX_HTTP_OPENBANK_ADMIN_SCOPES },
    { "client_id", NGX_HTTP_OPENBANK_ADMIN_CLIENT_ID },
    { "quotas", NGX_HTTP_OPENBANK_ADMIN_QUOTAS },
    { "status", NGX_HTTP_OPENBANK_ADMIN_STATUS },
    { "type", NGX_HTTP_OPENBANK_ADMIN_TYPE },
    { "expires_at", NGX_HTTP_OPENBANK_ADMIN_EXPIRES },
    { "jwks", NGX_HTTP_OPENBANK_ADMIN_JWKS },
    { "certificate", NGX_HTTP_OPENBANK_ADMIN_CERTIFICATE },
    { "sha256", NGX_HTTP_OPENBANK_ADMIN_SHA256 },
    { NULL, 0 }
};


static ngx_str_t  ngx_http_openbank_admin_types[] = {
    ngx_null_string,
    ngx_string("api_key"),
    ngx_string("client_secret"),
    ngx_string("hmac_secret"),
    ngx_string("jwks"),
    ngx_string("certificate")
};


/* a registry partner's name: [a-z0-9][a-z0-9_-]{0,62} */

ngx_int_t
ngx_http_openbank_admin_valid_name(ngx_str_t *name)
{
    u_char      c;
    ngx_uint_t  i;

    if (name->len == 0 || name->len > 63) {
        return NGX_ERROR;
    }

    for (i = 0; i < name->len; i++) {
        c = name->data[i];

        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            continue;
        }

        if (i > 0 && (c == '_' || c == '-')) {
            continue;
        }

        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_str_t *
ngx_http_openbank_admin_type_name(ngx_uint_t type)
{
    static ngx_str_t  registration = ngx_string("registration");
    static ngx_str_t  subject_dn = ngx_string("subject_dn");

    if (type == NGX_HTTP_OPENBANK_CRED_REGISTRATION) {
        return &registration;
    }

    if (type == NGX_HTTP_OPENBANK_CRED_SUBJECT_DN) {
        return &subject_dn;
    }

    if (type == 0 || type >= NGX_HTTP_OPENBANK_CRED_N) {
        return &ngx_http_openbank_admin_types[0];
    }

    return &ngx_http_openbank_admin_types[type];
}


/*
 * Parses "text" (NUL-terminated) into "b"; "allowed" is the members the
 * endpoint takes (NGX_HTTP_OPENBANK_ADMIN_*).  NGX_OK, NGX_DECLINED with
 * the reason in "err" (a NUL-terminated sentence), NGX_ERROR.
 */

ngx_int_t
ngx_http_openbank_admin_parse(ngx_pool_t *pool, ngx_str_t *text,
    ngx_uint_t allowed, ngx_http_openbank_admin_body_t *b, u_char *err,
    size_t len)
{
    u_char                             *p, *q, *last;
    char                                yerr[128];
    size_t                              i, k, n;
    time_t                              t;
    yajl_val                            root, v, e;
    ngx_int_t                           rc, limit;
    ngx_str_t                           s, *sp, word;
    ngx_uint_t                          bit;
    const char                         *key;
    ngx_http_openbank_quota_t          *quota;
    ngx_http_openbank_admin_member_t   *m;

    ngx_memzero(b, sizeof(ngx_http_openbank_admin_body_t));

    if (text->len == 0) {
        return ngx_http_openbank_admin_fail(err, len, "the body is empty: "
                                            "send a JSON object");
    }

    if (ngx_strlen(text->data) != text->len) {
        return ngx_http_openbank_admin_fail(err, len, "the body holds a NUL");
    }

    yerr[0] = '\0';
    root = yajl_tree_parse((const char *) text->data, yerr, sizeof(yerr));

    if (root == NULL) {
        for (i = 0; yerr[i]; i++) {
            if (yerr[i] == '\n' || yerr[i] == '\r' || yerr[i] == '"') {
                yerr[i] = ' ';
            }
        }

        return ngx_http_openbank_admin_fail(err, len, "the body is not JSON "
                                            "(%s)", yerr[0] ? yerr : "?");
    }

    rc = NGX_DECLINED;

    if (!YAJL_IS_OBJECT(root)) {
        (void) ngx_http_openbank_admin_fail(err, len, "the body must be a "
                                            "JSON object");
        goto done;
    }

    for (i = 0; i < root->u.object.len; i++) {
        key = root->u.object.keys[i];
        v = root->u.object.values[i];

        for (m = ngx_http_openbank_admin_members; m->name; m++) {
            if (ngx_strcmp(m->name, key) == 0) {
                break;
            }
        }

        if (m->name == NULL || !(allowed & m->bit)) {
            s.data = (u_char *) key;
            s.len = ngx_strlen(key);

            if (ngx_http_openbank_valid_name(&s) != NGX_OK) {
                ngx_str_set(&s, "(a member)");
            }

            (void) ngx_http_openbank_admin_fail(err, len, "\"%V\" is not a "
                                                "member this endpoint takes",
                                                &s);
            goto done;
        }

        bit = m->bit;

        if (b->present & bit) {
            (void) ngx_http_openbank_admin_fail(err, len, "\"%s\" is given "
                                                "twice", m->name);
            goto done;
        }

        b->present |= bit;

        switch (bit) {

        case NGX_HTTP_OPENBANK_ADMIN_NAME:
            if (ngx_http_openbank_admin_string(v, pool, &b->name) != NGX_OK
                || ngx_http_openbank_admin_valid_name(&b->name) != NGX_OK)
            {
                (void) ngx_http_openbank_admin_fail(err, len, "\"name\" must "
                                         "be a string of 1 to 63 of "
                                         "[a-z0-9_-], starting with a "
                                         "letter or digit");
                goto done;
            }

            break;

        case NGX_HTTP_OPENBANK_ADMIN_PLAN:
            if (ngx_http_openbank_admin_string(v, pool, &b->plan) != NGX_OK
                || ngx_http_openbank_valid_name(&b->plan) != NGX_OK)
            {
                (void) ngx_http_openbank_admin_fail(err, len, "\"plan\" must "
                                         "be the name of a plan");
                goto done;
            }

            break;

        case NGX_HTTP_OPENBANK_ADMIN_CLIENT_ID:
            if (ngx_http_openbank_admin_string(v, pool, &b->client_id)
                != NGX_OK
                || ngx_http_openbank_admin_client_id(&b->client_id)
                   != NGX_OK)
            {
                (void) ngx_http_openbank_admin_fail(err, len, "\"client_id\" "
                                         "must be a string of 1 to 128 of "
                                         "[A-Za-z0-9._~-]");
                goto done;
            }

            break;

        case NGX_HTTP_OPENBANK_ADMIN_STATUS:
            if (ngx_http_openbank_admin_string(v, pool, &s) != NGX_OK
                || !((s.len == 6 && ngx_strncmp(s.data, "active", 6) == 0)
                     || (s.len == 9
                         && ngx_strncmp(s.data, "suspended", 9) == 0)))
            {
                (void) ngx_http_openbank_admin_fail(err, len, "\"status\" "
                                         "must be \"active\" or "
                                         "\"suspended\"");
                goto done;
            }

            b->status = (s.len == 9) ? NGX_HTTP_OPENBANK_REG_SUSPENDED
                                     : NGX_HTTP_OPENBANK_REG_ACTIVE;
            break;

        case NGX_HTTP_OPENBANK_ADMIN_TYPE:
            if (ngx_http_openbank_admin_string(v, pool, &s) != NGX_OK) {
                goto bad_type;
            }

            for (k = 1; k < NGX_HTTP_OPENBANK_CRED_N; k++) {
                if (ngx_http_openbank_admin_types[k].len == s.len
                    && ngx_strncmp(ngx_http_openbank_admin_types[k].data,
                                   s.data, s.len) == 0)
                {
                    b->type = k;
                    break;
                }
            }

            if (b->type == 0) {
                goto bad_type;
            }

            break;

        bad_type:

            (void) ngx_http_openbank_admin_fail(err, len, "\"type\" must be "
                                     "one of api_key, client_secret, "
                                     "hmac_secret, jwks, certificate");
            goto done;

        case NGX_HTTP_OPENBANK_ADMIN_EXPIRES:
            if (YAJL_IS_NULL(v)) {
                b->present &= ~NGX_HTTP_OPENBANK_ADMIN_EXPIRES;
                break;
            }

            if (ngx_http_openbank_admin_string(v, pool, &s) != NGX_OK
                || s.len != 20
                || (t = ngx_http_openbank_parse_time(&s)) == NGX_ERROR)
            {
                (void) ngx_http_openbank_admin_fail(err, len, "\"expires_at\" "
                                         "must be a time as "
                                         "2027-01-31T00:00:00Z");
                goto done;
            }

            b->expires_at = t;
            break;

        case NGX_HTTP_OPENBANK_ADMIN_CERTIFICATE:
            if (ngx_http_openbank_admin_string(v, pool, &b->certificate)
                != NGX_OK
                || b->certificate.len == 0 || b->certificate.len > 16384)
            {
                (void) ngx_http_openbank_admin_fail(err, len,
                                         "\"certificate\" must be a PEM "
                                         "certificate (a string of at most "
                                         "16384 bytes)");
                goto done;
            }

            break;

        case NGX_HTTP_OPENBANK_ADMIN_SHA256:
            if (ngx_http_openbank_admin_string(v, pool, &s) != NGX_OK) {
                goto bad_sha;
            }

            if (s.len == 71 && ngx_strncmp(s.data, "sha256:", 7) == 0) {
                s.data += 7;
                s.len -= 7;
            }

            if (s.len != 64) {
                goto bad_sha;
            }

            for (k = 0; k < 32; k++) {
                rc = ngx_hextoi(s.data + 2 * k, 2);
                if (rc == NGX_ERROR) {
                    rc = NGX_DECLINED;
                    goto bad_sha;
                }

                b->sha256[k] = (u_char) rc;
            }

            rc = NGX_DECLINED;
            break;

        bad_sha:

            (void) ngx_http_openbank_admin_fail(err, len, "\"sha256\" must be "
                                     "64 hex digits (the SHA-256 of the "
                                     "certificate's DER), with or without "
                                     "\"sha256:\"");
            goto done;

        case NGX_HTTP_OPENBANK_ADMIN_SCOPES:
            if (!YAJL_IS_ARRAY(v) || v->u.array.len == 0
                || v->u.array.len > 64)
            {
                (void) ngx_http_openbank_admin_fail(err, len, "\"scopes\" "
                                         "must be an array of 1 to 64 scope "
                                         "names");
                goto done;
            }

            if (ngx_array_init(&b->scopes, pool, v->u.array.len,
                               sizeof(ngx_str_t))
                != NGX_OK)
            {
                rc = NGX_ERROR;
                goto done;
            }

            for (k = 0; k < v->u.array.len; k++) {
                e = v->u.array.values[k];

                if (ngx_http_openbank_admin_string(e, pool, &s) != NGX_OK
                    || ngx_http_openbank_valid_name(&s) != NGX_OK)
                {
                    (void) ngx_http_openbank_admin_fail(err, len, "\"scopes\" "
                                             "item %uz is not a scope name",
                                             k);
                    goto done;
                }

                sp = b->scopes.elts;

                for (n = 0; n < b->scopes.nelts; n++) {
                    if (sp[n].len == s.len
                        && ngx_strncmp(sp[n].data, s.data, s.len) == 0)
                    {
                        (void) ngx_http_openbank_admin_fail(err, len,
                                             "\"scopes\" names \"%V\" twice",
                                             &s);
                        goto done;
                    }
                }

                sp = ngx_array_push(&b->scopes);
                if (sp == NULL) {
                    rc = NGX_ERROR;
                    goto done;
                }

                *sp = s;
            }

            break;

        case NGX_HTTP_OPENBANK_ADMIN_QUOTAS:
            if (!YAJL_IS_OBJECT(v) || v->u.object.len > 64) {
                (void) ngx_http_openbank_admin_fail(err, len, "\"quotas\" "
                                         "must be an object of products, "
                                         "as {\"payments\": \"80000/day\"}");
                goto done;
            }

            if (ngx_array_init(&b->quotas, pool, v->u.object.len + 1,
                               sizeof(ngx_http_openbank_quota_t))
                != NGX_OK)
            {
                rc = NGX_ERROR;
                goto done;
            }

            for (k = 0; k < v->u.object.len; k++) {
                word.data = (u_char *) v->u.object.keys[k];
                word.len = ngx_strlen(v->u.object.keys[k]);

                if (ngx_http_openbank_valid_name(&word) != NGX_OK) {
                    (void) ngx_http_openbank_admin_fail(err, len, "\"quotas\" "
                                             "has a member that is not a "
                                             "product name");
                    goto done;
                }

                quota = b->quotas.elts;

                for (n = 0; n < b->quotas.nelts; n++) {
                    if (quota[n].product.len == word.len
                        && ngx_strncmp(quota[n].product.data, word.data,
                                       word.len) == 0)
                    {
                        (void) ngx_http_openbank_admin_fail(err, len,
                                             "\"quotas\" names \"%V\" twice",
                                             &word);
                        goto done;
                    }
                }

                e = v->u.object.values[k];

                if (ngx_http_openbank_admin_string(e, pool, &s) != NGX_OK) {
                    goto bad_quota;
                }

                last = s.data + s.len;
                p = ngx_strlchr(s.data, last, '/');

                if (p == NULL || p == s.data || p - s.data > 10) {
                    goto bad_quota;
                }

                limit = ngx_atoi(s.data, p - s.data);
                q = p + 1;

                if (limit <= 0) {
                    goto bad_quota;
                }

                quota = ngx_array_push(&b->quotas);
                if (quota == NULL) {
                    rc = NGX_ERROR;
                    goto done;
                }

                quota->product.data = ngx_pnalloc(pool, word.len);
                if (quota->product.data == NULL) {
                    rc = NGX_ERROR;
                    goto done;
                }

                ngx_memcpy(quota->product.data, word.data, word.len);

                quota->product.len = word.len;
                quota->limit = limit;

                if (last - q == 3 && ngx_strncmp(q, "day", 3) == 0) {
                    quota->window = NGX_HTTP_OPENBANK_WINDOW_DAY;

                } else if (last - q == 5 && ngx_strncmp(q, "month", 5) == 0) {
                    quota->window = NGX_HTTP_OPENBANK_WINDOW_MONTH;

                } else {
                    goto bad_quota;
                }

                continue;

            bad_quota:

                (void) ngx_http_openbank_admin_fail(err, len, "\"quotas\": "
                                         "\"%V\" must be a limit per day or "
                                         "month, as \"80000/day\"", &word);
                goto done;
            }

            break;

        case NGX_HTTP_OPENBANK_ADMIN_JWKS:
            rc = ngx_http_openbank_jwks_text(pool, v,
                                             NGX_HTTP_OPENBANK_ADMIN_JWKS_MAX,
                                             &b->jwks, err, len);
            if (rc != NGX_OK) {
                goto done;
            }

            rc = NGX_DECLINED;
            break;
        }
    }

    rc = NGX_OK;

done:

    yajl_tree_free(root);

    return rc;
}


static ngx_int_t
ngx_http_openbank_admin_fail(u_char *err, size_t len, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(err, err + len - 1, fmt, args);
    va_end(args);

    *p = '\0';

    return NGX_DECLINED;
}


/* a JSON string, copied: NGX_DECLINED for any other type */

static ngx_int_t
ngx_http_openbank_admin_string(yajl_val v, ngx_pool_t *pool, ngx_str_t *out)
{
    ngx_str_t  s;

    if (!YAJL_IS_STRING(v)) {
        return NGX_DECLINED;
    }

    s.data = (u_char *) v->u.string;
    s.len = ngx_strlen(v->u.string);

    out->data = ngx_pnalloc(pool, s.len + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, s.data, s.len);
    out->data[s.len] = '\0';
    out->len = s.len;

    return NGX_OK;
}


/*
 * A JWKS document of a body ("jwks" of the Admin API and of client
 * metadata) written again as text, NUL-terminated, in the pool: NGX_OK;
 * NGX_DECLINED with the reason in "err" (not an object, nested too deep,
 * longer than "max"); NGX_ERROR.
 */

ngx_int_t
ngx_http_openbank_jwks_text(ngx_pool_t *pool, yajl_val v, size_t max,
    ngx_str_t *out, u_char *err, size_t len)
{
    size_t                n;
    yajl_gen              g;
    ngx_int_t             rc;
    const unsigned char  *text;

    if (!YAJL_IS_OBJECT(v)) {
        return ngx_http_openbank_admin_fail(err, len, "\"jwks\" must be a "
                                            "JWKS document: an object with "
                                            "\"keys\"");
    }

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_admin_gen(g, v, 0) != NGX_OK
        || yajl_gen_get_buf(g, &text, &n) != yajl_gen_status_ok)
    {
        rc = ngx_http_openbank_admin_fail(err, len, "\"jwks\" is nested too "
                                          "deep or not UTF-8");
        goto done;
    }

    if (n > max) {
        rc = ngx_http_openbank_admin_fail(err, len, "\"jwks\" is longer "
                                          "than %uz bytes", max);
        goto done;
    }

    out->data = ngx_pnalloc(pool, n + 1);
    if (out->data == NULL) {
        rc = NGX_ERROR;
        goto done;
    }

    ngx_memcpy(out->data, text, n);
    out->data[n] = '\0';
    out->len = n;
    rc = NGX_OK;

done:

    yajl_gen_free(g);

    return rc;
}


/* a parsed value written again as JSON text: NGX_DECLINED when too deep */

static ngx_int_t
ngx_http_openbank_admin_gen(yajl_gen g, yajl_val v, ngx_uint_t depth)
{
    size_t       i;
    const char  *s;

    if (depth > 16) {
        return NGX_DECLINED;
    }

    if (YAJL_IS_STRING(v)) {
        s = v->u.string;
        return yajl_gen_string(g, (const unsigned char *) s, ngx_strlen(s))
               == yajl_gen_status_ok ? NGX_OK : NGX_DECLINED;
    }

    if (YAJL_IS_NUMBER(v)) {
        s = v->u.number.r;
        return yajl_gen_number(g, s, ngx_strlen(s)) == yajl_gen_status_ok
               ? NGX_OK : NGX_DECLINED;
    }

    if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
        return yajl_gen_bool(g, YAJL_IS_TRUE(v)) == yajl_gen_status_ok
               ? NGX_OK : NGX_DECLINED;
    }

    if (YAJL_IS_NULL(v)) {
        return yajl_gen_null(g) == yajl_gen_status_ok ? NGX_OK : NGX_DECLINED;
    }

    if (YAJL_IS_ARRAY(v)) {
        if (yajl_gen_array_open(g) != yajl_gen_status_ok) {
            return NGX_DECLINED;
        }

        for (i = 0; i < v->u.array.len; i++) {
            if (ngx_http_openbank_admin_gen(g, v->u.array.values[i],
                                            depth + 1)
                != NGX_OK)
            {
                return NGX_DECLINED;
            }
        }

        return yajl_gen_array_close(g) == yajl_gen_status_ok ? NGX_OK
                                                             : NGX_DECLINED;
    }

    if (YAJL_IS_OBJECT(v)) {
        if (yajl_gen_map_open(g) != yajl_gen_status_ok) {
            return NGX_DECLINED;
        }

        for (i = 0; i < v->u.object.len; i++) {
            s = v->u.object.keys[i];

            if (yajl_gen_string(g, (const unsigned char *) s, ngx_strlen(s))
                != yajl_gen_status_ok
                || ngx_http_openbank_admin_gen(g, v->u.object.values[i],
                                               depth + 1)
                   != NGX_OK)
            {
                return NGX_DECLINED;
            }
        }

        return yajl_gen_map_close(g) == yajl_gen_status_ok ? NGX_OK
                                                           : NGX_DECLINED;
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_openbank_admin_client_id(ngx_str_t *id)
{
    u_char      c;
    ngx_uint_t  i;

    if (id->len == 0 || id->len > 128) {
        return NGX_ERROR;
    }

    for (i = 0; i < id->len; i++) {
        c = id->data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '~'
              || c == '-'))
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}
