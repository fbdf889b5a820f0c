
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The JSON of dynamic client registration (docs/tokens.md, "Dynamic
 * client registration"): the client metadata of a request body (RFC 7591
 * 2, 3.1) and the claims of a software statement (RFC 7591 2.3), each
 * into ngx_http_openbank_dcr_meta_t.  Members the gateway does not know
 * are ignored, as RFC 7591 2 says; a known member of the wrong type or
 * form is refused, saying which and why, with the error code RFC 7591
 * 3.2.2 gives it.  Nothing is trusted here (the statement's signature is
 * checked by the caller, ngx_http_openbank_registration.c), and no nginx
 * request is used: the fuzz target (fuzz/fuzz_registration.c) calls it
 * as it is.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_admin.h>
#include <ngx_http_openbank_registration.h>
#include <ngx_http_openbank_util.h>


typedef struct {
    const char                   *name;
    ngx_uint_t                    bit;
    ngx_uint_t                    max;         /* of a string */
} ngx_http_openbank_dcr_member_t;


static ngx_int_t ngx_http_openbank_dcr_fail(ngx_http_openbank_dcr_meta_t *m,
    ngx_uint_t error, u_char *err, size_t len, const char *fmt, ...);
static ngx_int_t ngx_http_openbank_dcr_string(yajl_val v, ngx_pool_t *pool,
    size_t max, ngx_str_t *out);
static ngx_int_t ngx_http_openbank_dcr_scope(ngx_str_t *scope);
static ngx_int_t ngx_http_openbank_dcr_uri(ngx_str_t *uri);


static ngx_http_openbank_dcr_member_t  ngx_http_openbank_dcr_members[] = {
    { "software_statement", NGX_HTTP_OPENBANK_DCR_STATEMENT,
      NGX_HTTP_OPENBANK_TOKEN_MAX },
    { "token_endpoint_auth_method", NGX_HTTP_OPENBANK_DCR_AUTH_METHOD, 64 },
    { "grant_types", NGX_HTTP_OPENBANK_DCR_GRANT_TYPES, 0 },
    { "response_types", 0, 0 },
    { "jwks", NGX_HTTP_OPENBANK_DCR_JWKS, 0 },
    { "jwks_uri", 0, 0 },
    { "software_jwks_endpoint", 0, 0 },
    { "scope", NGX_HTTP_OPENBANK_DCR_SCOPE, 1024 },
    { "client_name", NGX_HTTP_OPENBANK_DCR_CLIENT_NAME,
      NGX_HTTP_OPENBANK_DCR_STRING_MAX },
    { "software_client_name", NGX_HTTP_OPENBANK_DCR_CLIENT_NAME,
      NGX_HTTP_OPENBANK_DCR_STRING_MAX },
    { "software_id", NGX_HTTP_OPENBANK_DCR_SOFTWARE_ID,
      NGX_HTTP_OPENBANK_DCR_STRING_MAX },
    { "redirect_uris", NGX_HTTP_OPENBANK_DCR_REDIRECT_URIS, 0 },
    { "client_id", NGX_HTTP_OPENBANK_DCR_CLIENT_ID, 128 },
    { "tls_client_auth_subject_dn", NGX_HTTP_OPENBANK_DCR_SUBJECT_DN, 1024 },
    { NULL, 0, 0 }
};


/*
 * Parses "text" (NUL-terminated): a request's body, or (statement) the
 * claims of a software statement, where "software_statement" and
 * "client_id" mean nothing and are ignored.  NGX_OK; NGX_DECLINED with
 * m->error and the reason in "err" (a NUL-terminated sentence);
 * NGX_ERROR.
 */

ngx_int_t
ngx_http_openbank_dcr_parse(ngx_pool_t *pool, ngx_str_t *text,
    ngx_uint_t statement, ngx_http_openbank_dcr_meta_t *m, u_char *err,
    size_t len)
{
    char                             yerr[128];
    size_t                           i, k, n;
    yajl_val                         root, v, e;
    ngx_int_t                        rc;
    ngx_str_t                        s;
    ngx_uint_t                       error;
    const char                      *key;
    ngx_http_openbank_dcr_member_t  *mb;

    error = statement ? NGX_HTTP_OPENBANK_DCR_E_STATEMENT
                      : NGX_HTTP_OPENBANK_DCR_E_METADATA;

    if (text->len == 0) {
        return ngx_http_openbank_dcr_fail(m, error, err, len,
                                          "the %s is empty",
                                          statement ? "statement's claims"
                                                    : "body");
    }

    if (ngx_strlen(text->data) != text->len) {
        return ngx_http_openbank_dcr_fail(m, error, err, len,
                                          "the %s holds a NUL",
                                          statement ? "statement" : "body");
    }

    yerr[0] = '\0';
    root = yajl_tree_parse((const char *) text->data, yerr, sizeof(yerr));

    if (root == NULL) {
        for (i = 0; yerr[i]; i++) {
            if (yerr[i] == '\n' || yerr[i] == '\r' || yerr[i] == '"'
                || yerr[i] == '\\' || (u_char) yerr[i] < 0x20)
            {
                yerr[i] = ' ';
            }
        }

        return ngx_http_openbank_dcr_fail(m, error, err, len,
                                          "the %s is not JSON (%s)",
                                          statement ? "statement's claims"
                                                    : "body",
                                          yerr[0] ? yerr : "?");
    }

    rc = NGX_DECLINED;

    if (!YAJL_IS_OBJECT(root)) {
        (void) ngx_http_openbank_dcr_fail(m, error, err, len,
                                          "the %s must be a JSON object",
                                          statement ? "statement's claims"
                                                    : "body");
        goto done;
    }

    for (i = 0; i < root->u.object.len; i++) {
        key = root->u.object.keys[i];
        v = root->u.object.values[i];

        for (mb = ngx_http_openbank_dcr_members; mb->name; mb++) {
            if (ngx_strcmp(mb->name, key) == 0) {
                break;
            }
        }

        if (mb->name == NULL || YAJL_IS_NULL(v)) {
            continue;               /* RFC 7591 2: ignored */
        }

        if (statement
            && (mb->bit == NGX_HTTP_OPENBANK_DCR_STATEMENT
                || mb->bit == NGX_HTTP_OPENBANK_DCR_CLIENT_ID))
        {
            continue;
        }

        if (mb->bit == 0) {
            if (statement) {
                continue;           /* a URI of the directory's: unused */
            }

            if (ngx_strcmp(key, "response_types") == 0) {
                if (!YAJL_IS_ARRAY(v) || v->u.array.len != 0) {
                    (void) ngx_http_openbank_dcr_fail(m, error, err, len,
                                         "\"response_types\" must be empty: "
                                         "the client_credentials grant has "
                                         "no response type");
                    goto done;
                }

                continue;
            }

            (void) ngx_http_openbank_dcr_fail(m, error, err, len,
                                         "\"%s\" is not taken: the gateway "
                                         "fetches nothing, give \"jwks\" by "
                                         "value", key);
            goto done;
        }

        if (m->present & mb->bit) {
            (void) ngx_http_openbank_dcr_fail(m, error, err, len,
                                              "\"%s\" is given twice", key);
            goto done;
        }

        m->present |= mb->bit;

        switch (mb->bit) {

        case NGX_HTTP_OPENBANK_DCR_GRANT_TYPES:
            n = YAJL_IS_ARRAY(v) ? v->u.array.len : 0;

            for (k = 0; k < n; k++) {
                e = v->u.array.values[k];

                if (!YAJL_IS_STRING(e)
                    || ngx_strcmp(e->u.string, "client_credentials") != 0)
                {
                    break;
                }
            }

            if (n == 0 || k < n) {
                (void) ngx_http_openbank_dcr_fail(m, error, err, len,
                                         "\"grant_types\" must be "
                                         "[\"client_credentials\"], the "
                                         "only grant of the gateway");
                goto done;
            }

            break;

        case NGX_HTTP_OPENBANK_DCR_REDIRECT_URIS:
            if (!YAJL_IS_ARRAY(v)
                || v->u.array.len > NGX_HTTP_OPENBANK_DCR_URIS_MAX)
            {
                (void) ngx_http_openbank_dcr_fail(m,
                                         NGX_HTTP_OPENBANK_DCR_E_REDIRECT,
                                         err, len,
                                         "\"redirect_uris\" must be an array "
                                         "of at most %d URIs",
                                         NGX_HTTP_OPENBANK_DCR_URIS_MAX);
                goto done;
            }

            for (k = 0; k < v->u.array.len; k++) {
                rc = ngx_http_openbank_dcr_string(v->u.array.values[k], pool,
                                                  2048, &m->uris[k]);
                if (rc == NGX_ERROR) {
                    goto done;
                }

                if (rc != NGX_OK
                    || ngx_http_openbank_dcr_uri(&m->uris[k]) != NGX_OK)
                {
                    rc = NGX_DECLINED;
                    (void) ngx_http_openbank_dcr_fail(m,
                                         NGX_HTTP_OPENBANK_DCR_E_REDIRECT,
                                         err, len,
                                         "redirect URI %uz is not an https "
                                         "URI without a fragment", k + 1);
                    goto done;
                }
            }

            m->nuris = v->u.array.len;
            break;

        case NGX_HTTP_OPENBANK_DCR_JWKS:
            rc = ngx_http_openbank_jwks_text(pool, v,
                                             NGX_HTTP_OPENBANK_DCR_JWKS_MAX,
                                             &m->jwks, err, len);
            if (rc != NGX_OK) {
                m->error = error;
                goto done;
            }

            rc = NGX_DECLINED;
            break;

        default:
            /* a string member */

            rc = ngx_http_openbank_dcr_string(v, pool, mb->max, &s);
            if (rc == NGX_ERROR) {
                goto done;
            }

            if (rc != NGX_OK) {
                (void) ngx_http_openbank_dcr_fail(m,
                                         mb->bit
                                         == NGX_HTTP_OPENBANK_DCR_STATEMENT
                                         ? NGX_HTTP_OPENBANK_DCR_E_STATEMENT
                                         : error, err, len,
                                         "\"%s\" must be a string of at most "
                                         "%ui bytes", key, mb->max);
                goto done;
            }

            rc = NGX_DECLINED;

            switch (mb->bit) {

            case NGX_HTTP_OPENBANK_DCR_STATEMENT:
                m->software_statement = s;
                break;

            case NGX_HTTP_OPENBANK_DCR_AUTH_METHOD:
                if (ngx_strcmp(s.data, "private_key_jwt") == 0) {
                    m->auth_method = NGX_HTTP_OPENBANK_DCR_PRIVATE_KEY_JWT;

                } else if (ngx_strcmp(s.data, "tls_client_auth") == 0) {
                    m->auth_method = NGX_HTTP_OPENBANK_DCR_TLS_CLIENT_AUTH;

                } else {
                    (void) ngx_http_openbank_dcr_fail(m, error, err, len,
                                         "\"token_endpoint_auth_method\" "
                                         "must be private_key_jwt or "
                                         "tls_client_auth");
                    goto done;
                }

                break;

            case NGX_HTTP_OPENBANK_DCR_SCOPE:
                if (ngx_http_openbank_dcr_scope(&s) != NGX_OK) {
                    (void) ngx_http_openbank_dcr_fail(m, error, err, len,
                                         "\"scope\" must be scope names "
                                         "separated by one space each");
                    goto done;
                }

                m->scope = s;
                break;

            case NGX_HTTP_OPENBANK_DCR_CLIENT_NAME:
                m->client_name = s;
                break;

            case NGX_HTTP_OPENBANK_DCR_SOFTWARE_ID:
                m->software_id = s;
                break;

            case NGX_HTTP_OPENBANK_DCR_CLIENT_ID:
                m->client_id = s;
                break;

            default: /* NGX_HTTP_OPENBANK_DCR_SUBJECT_DN */
                m->subject_dn = s;
                break;
            }

            break;
        }
    }

    rc = NGX_OK;

done:

    yajl_tree_free(root);

    return rc;
}


/*
 * The claims of a software statement (a compact JWS, not yet verified)
 * as client metadata: its payload parsed by ngx_http_openbank_dcr_parse().
 */

ngx_int_t
ngx_http_openbank_dcr_claims(ngx_pool_t *pool, ngx_str_t *jwt,
    ngx_http_openbank_dcr_meta_t *m, u_char *err, size_t len)
{
    u_char     *dot1, *dot2, *last;
    ngx_str_t   b64, json;

    last = jwt->data + jwt->len;

    dot1 = ngx_strlchr(jwt->data, last, '.');
    dot2 = dot1 ? ngx_strlchr(dot1 + 1, last, '.') : NULL;

    if (dot2 == NULL) {
        return ngx_http_openbank_dcr_fail(m,
                                          NGX_HTTP_OPENBANK_DCR_E_STATEMENT,
                                          err, len, "the software statement "
                                          "is not a JWS");
    }

    b64.data = dot1 + 1;
    b64.len = dot2 - b64.data;

    json.data = ngx_pnalloc(pool, ngx_base64_decoded_length(b64.len) + 1);
    if (json.data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_decode_base64url(&json, &b64) != NGX_OK) {
        return ngx_http_openbank_dcr_fail(m,
                                          NGX_HTTP_OPENBANK_DCR_E_STATEMENT,
                                          err, len, "the software "
                                          "statement's claims are not "
                                          "base64url");
    }

    json.data[json.len] = '\0';

    return ngx_http_openbank_dcr_parse(pool, &json, 1, m, err, len);
}


static ngx_int_t
ngx_http_openbank_dcr_fail(ngx_http_openbank_dcr_meta_t *m, ngx_uint_t error,
    u_char *err, size_t len, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(err, err + len - 1, fmt, args);
    va_end(args);

    *p = '\0';
    m->error = error;

    return NGX_DECLINED;
}


/*
 * A JSON string of at most "max" bytes, without control characters,
 * copied NUL-terminated: NGX_DECLINED for anything else.
 */

static ngx_int_t
ngx_http_openbank_dcr_string(yajl_val v, ngx_pool_t *pool, size_t max,
    ngx_str_t *out)
{
    size_t   i, n;
    u_char  *s;

    if (!YAJL_IS_STRING(v)) {
        return NGX_DECLINED;
    }

    s = (u_char *) v->u.string;
    n = ngx_strlen(s);

    if (n == 0 || n > max) {
        return NGX_DECLINED;
    }

    for (i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f) {
            return NGX_DECLINED;
        }
    }

    out->data = ngx_pnalloc(pool, n + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, s, n + 1);
    out->len = n;

    return NGX_OK;
}


/* RFC 6749 3.3: scope-tokens of %x21 / %x23-5B / %x5D-7E, one space apart */

static ngx_int_t
ngx_http_openbank_dcr_scope(ngx_str_t *scope)
{
    u_char      c, prev;
    ngx_uint_t  i;

    prev = ' ';

    for (i = 0; i < scope->len; i++) {
        c = scope->data[i];

        if (c == ' ') {
            if (prev == ' ') {
                return NGX_DECLINED;
            }

        } else if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') {
            return NGX_DECLINED;
        }

        prev = c;
    }

    return prev == ' ' ? NGX_DECLINED : NGX_OK;
}


/* a redirect URI: absolute https, with a host, without a fragment */

static ngx_int_t
ngx_http_openbank_dcr_uri(ngx_str_t *uri)
{
    ngx_uint_t  i;

    if (uri->len < sizeof("https://x") - 1
        || ngx_strncmp(uri->data, "https://", 8) != 0
        || uri->data[8] == '/')
    {
        return NGX_DECLINED;
    }

    for (i = 8; i < uri->len; i++) {
        if (uri->data[i] == '#' || uri->data[i] <= 0x20
            || uri->data[i] >= 0x7f)
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}
