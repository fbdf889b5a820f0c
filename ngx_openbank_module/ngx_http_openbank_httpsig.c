
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * RFC 9421 without nginx's request: a strict RFC 8941 parser for the
 * dictionaries of Signature-Input, Signature and Content-Digest (bounded,
 * never reading past "last"), the signature base of section 2.5, and the
 * algorithms of section 3.3 plus SM2 with SM3.  No allocation and no call
 * into nginx's core: the fuzz targets link this file alone.
 */


#include <ngx_http_openbank_httpsig.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>


#define NGX_HTTP_OPENBANK_SF_KEY_MAX      64
#define NGX_HTTP_OPENBANK_SM2_ID          "1234567812345678"


static ngx_int_t ngx_http_openbank_sig_hmac(ngx_str_t *secret, u_char *data,
    size_t len, u_char *out, unsigned int *outlen);
static ngx_int_t ngx_http_openbank_sf_key(u_char **pp, u_char *last,
    ngx_str_t *key);
static ngx_int_t ngx_http_openbank_sf_bare(u_char **pp, u_char *last,
    ngx_http_openbank_sf_bare_t *bare);
static ngx_int_t ngx_http_openbank_sf_number(u_char **pp, u_char *last,
    ngx_http_openbank_sf_bare_t *bare);
static ngx_int_t ngx_http_openbank_sf_params(u_char **pp, u_char *last,
    ngx_http_openbank_sf_param_t *params, ngx_uint_t *nparams);
static ngx_int_t ngx_http_openbank_sf_item(u_char **pp, u_char *last,
    ngx_http_openbank_sf_item_t *item);
static ngx_int_t ngx_http_openbank_sf_member(u_char **pp, u_char *last,
    ngx_http_openbank_sf_member_t *m);
static void ngx_http_openbank_sf_serialize_bare(ngx_http_openbank_sbuf_t *b,
    ngx_http_openbank_sf_bare_t *bare);
static void ngx_http_openbank_sf_serialize_params(
    ngx_http_openbank_sbuf_t *b, ngx_http_openbank_sf_param_t *params,
    ngx_uint_t n);
static void ngx_http_openbank_sbuf_int(ngx_http_openbank_sbuf_t *b,
    int64_t n);
static ngx_int_t ngx_http_openbank_sig_component(
    ngx_http_openbank_msg_t *msg, ngx_http_openbank_sf_item_t *it,
    ngx_http_openbank_sbuf_t *b, const char **err);
static ngx_int_t ngx_http_openbank_sig_query_param(
    ngx_http_openbank_msg_t *msg, ngx_str_t *name,
    ngx_http_openbank_sbuf_t *b);
static size_t ngx_http_openbank_form_encode(u_char *dst, u_char *p,
    u_char *last);
static ngx_int_t ngx_http_openbank_str_eq(ngx_str_t *s, const char *c);
static ngx_int_t ngx_http_openbank_sig_key_fits(ngx_uint_t alg,
    EVP_PKEY *pkey);
static EVP_MD_CTX *ngx_http_openbank_sig_ready(ngx_uint_t alg,
    EVP_PKEY *pkey, ngx_uint_t sign);
static ngx_int_t ngx_http_openbank_sig_md_init(EVP_MD_CTX *md,
    ngx_uint_t alg, EVP_PKEY *pkey, ngx_uint_t sign, EVP_PKEY_CTX **own);
static ngx_int_t ngx_http_openbank_ecdsa_raw_to_der(u_char *sig,
    size_t siglen, size_t half, u_char *der, size_t *derlen);
static ngx_int_t ngx_http_openbank_ecdsa_der_to_raw(u_char *der,
    size_t derlen, size_t half, u_char *raw);


static const char  *ngx_http_openbank_sig_algs[] = {
    NULL,
    "ed25519",
    "ecdsa-p256-sha256",
    "rsa-pss-sha512",
    "rsa-v1_5-sha256",
    "hmac-sha256",
    "sm2-sm3",
    NULL
};


/* structured fields: RFC 8941 section 4.2 */

#define ngx_http_openbank_lcalpha(c)  ((c) >= 'a' && (c) <= 'z')
#define ngx_http_openbank_digit(c)    ((c) >= '0' && (c) <= '9')
#define ngx_http_openbank_alpha(c)                                           \
    (ngx_http_openbank_lcalpha(c) || ((c) >= 'A' && (c) <= 'Z'))


static ngx_int_t
ngx_http_openbank_tchar(u_char c)
{
    if (ngx_http_openbank_alpha(c) || ngx_http_openbank_digit(c)) {
        return 1;
    }

    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
    case '+': case '-': case '.': case '^': case '_': case '`': case '|':
    case '~':
        return 1;
    }

    return 0;
}


static ngx_int_t
ngx_http_openbank_sf_key(u_char **pp, u_char *last, ngx_str_t *key)
{
    u_char  *p, *start;

    p = *pp;

    if (p == last || !(ngx_http_openbank_lcalpha(*p) || *p == '*')) {
        return NGX_ERROR;
    }

    start = p;

    while (p < last
           && (ngx_http_openbank_lcalpha(*p) || ngx_http_openbank_digit(*p)
               || *p == '_' || *p == '-' || *p == '.' || *p == '*'))
    {
        p++;
    }

    if (p - start > NGX_HTTP_OPENBANK_SF_KEY_MAX) {
        return NGX_ERROR;
    }

    key->data = start;
    key->len = p - start;
    *pp = p;

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_sf_number(u_char **pp, u_char *last,
    ngx_http_openbank_sf_bare_t *bare)
{
    u_char      *p, *start, *dot;
    int64_t      n;
    ngx_uint_t   neg, digits;

    p = *pp;
    start = p;
    neg = 0;

    if (*p == '-') {
        neg = 1;
        p++;
    }

    if (p == last || !ngx_http_openbank_digit(*p)) {
        return NGX_ERROR;
    }

    n = 0;
    digits = 0;
    dot = NULL;

    for ( /* void */ ; p < last; p++) {

        if (ngx_http_openbank_digit(*p)) {
            digits++;

            if (dot == NULL) {
                if (digits > 15) {
                    return NGX_ERROR;
                }

                n = n * 10 + (*p - '0');

            } else if (digits > 16 || p - dot > 3) {
                return NGX_ERROR;
            }

            continue;
        }

        if (*p == '.' && dot == NULL) {
            if (digits > 12) {
                return NGX_ERROR;
            }

            dot = p;
            continue;
        }

        break;
    }

    if (dot && p - dot == 1) {
        return NGX_ERROR;
    }

    bare->type = dot ? NGX_HTTP_OPENBANK_SF_DECIMAL
                     : NGX_HTTP_OPENBANK_SF_INTEGER;
    bare->integer = neg ? -n : n;
    bare->raw.data = start;
    bare->raw.len = p - start;

    *pp = p;

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_sf_bare(u_char **pp, u_char *last,
    ngx_http_openbank_sf_bare_t *bare)
{
    u_char  *p, *start;
    size_t   len, i;

    p = *pp;

    if (p == last) {
        return NGX_ERROR;
    }

    ngx_memzero(bare, sizeof(ngx_http_openbank_sf_bare_t));

    if (*p == '-' || ngx_http_openbank_digit(*p)) {
        return ngx_http_openbank_sf_number(pp, last, bare);
    }

    if (*p == '"') {
        start = ++p;

        for ( ;; ) {
            if (p == last) {
                return NGX_ERROR;
            }

            if (*p == '\\') {
                p++;

                if (p == last || (*p != '"' && *p != '\\')) {
                    return NGX_ERROR;
                }

                p++;
                continue;
            }

            if (*p == '"') {
                break;
            }

            if (*p < 0x20 || *p > 0x7e) {
                return NGX_ERROR;
            }

            p++;
        }

        bare->type = NGX_HTTP_OPENBANK_SF_STRING;
        bare->raw.data = start;
        bare->raw.len = p - start;
        *pp = p + 1;

        return NGX_OK;
    }

    if (ngx_http_openbank_alpha(*p) || *p == '*') {
        start = p++;

        while (p < last
               && (ngx_http_openbank_tchar(*p) || *p == ':' || *p == '/'))
        {
            p++;
        }

        bare->type = NGX_HTTP_OPENBANK_SF_TOKEN;
        bare->raw.data = start;
        bare->raw.len = p - start;
        *pp = p;

        return NGX_OK;
    }

    if (*p == ':') {
        start = ++p;

        while (p < last
               && (ngx_http_openbank_alpha(*p) || ngx_http_openbank_digit(*p)
                   || *p == '+' || *p == '/' || *p == '='))
        {
            p++;
        }

        if (p == last || *p != ':') {
            return NGX_ERROR;
        }

        /* strict base64: whole quanta, "=" only as padding at the end */

        len = p - start;

        if (len % 4) {
            return NGX_ERROR;
        }

        for (i = 0; i < len; i++) {
            if (start[i] == '='
                && !(i == len - 1 || (i == len - 2 && start[len - 1] == '=')))
            {
                return NGX_ERROR;
            }
        }

        bare->type = NGX_HTTP_OPENBANK_SF_BYTES;
        bare->raw.data = start;
        bare->raw.len = len;
        *pp = p + 1;

        return NGX_OK;
    }

    if (*p == '?') {
        p++;

        if (p == last || (*p != '0' && *p != '1')) {
            return NGX_ERROR;
        }

        bare->type = NGX_HTTP_OPENBANK_SF_BOOLEAN;
        bare->integer = (*p == '1');
        bare->raw.data = p - 1;
        bare->raw.len = 2;
        *pp = p + 1;

        return NGX_OK;
    }

    return NGX_ERROR;
}


/* parameters; a repeated key takes the later value (RFC 8941 4.2.3.2) */

static ngx_int_t
ngx_http_openbank_sf_params(u_char **pp, u_char *last,
    ngx_http_openbank_sf_param_t *params, ngx_uint_t *nparams)
{
    u_char                        *p;
    ngx_str_t                      key;
    ngx_uint_t                     i, n;
    ngx_http_openbank_sf_bare_t    value;

    p = *pp;
    n = 0;

    while (p < last && *p == ';') {
        p++;

        while (p < last && *p == ' ') {
            p++;
        }

        if (ngx_http_openbank_sf_key(&p, last, &key) != NGX_OK) {
            return NGX_ERROR;
        }

        if (p < last && *p == '=') {
            p++;

            if (ngx_http_openbank_sf_bare(&p, last, &value) != NGX_OK) {
                return NGX_ERROR;
            }

        } else {
            ngx_memzero(&value, sizeof(ngx_http_openbank_sf_bare_t));
            value.type = NGX_HTTP_OPENBANK_SF_BOOLEAN;
            value.integer = 1;
        }

        for (i = 0; i < n; i++) {
            if (params[i].key.len == key.len
                && ngx_memcmp(params[i].key.data, key.data, key.len) == 0)
            {
                break;
            }
        }

        if (i == n) {
            if (n == NGX_HTTP_OPENBANK_SF_MAX_PARAMS) {
                return NGX_ERROR;
            }

            n++;
        }

        params[i].key = key;
        params[i].value = value;
    }

    *nparams = n;
    *pp = p;

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_sf_item(u_char **pp, u_char *last,
    ngx_http_openbank_sf_item_t *item)
{
    if (ngx_http_openbank_sf_bare(pp, last, &item->value) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_openbank_sf_params(pp, last, item->params,
                                       &item->nparams);
}


static ngx_int_t
ngx_http_openbank_sf_member(u_char **pp, u_char *last,
    ngx_http_openbank_sf_member_t *m)
{
    u_char  *p;

    p = *pp;

    m->nitems = 0;
    m->nparams = 0;

    if (p == last || *p != '(') {
        m->inner = 0;
        m->nitems = 1;

        return ngx_http_openbank_sf_item(pp, last, &m->items[0]);
    }

    m->inner = 1;
    p++;

    for ( ;; ) {

        while (p < last && *p == ' ') {
            p++;
        }

        if (p == last) {
            return NGX_ERROR;
        }

        if (*p == ')') {
            p++;
            break;
        }

        if (m->nitems == NGX_HTTP_OPENBANK_SF_MAX_ITEMS) {
            return NGX_ERROR;
        }

        if (ngx_http_openbank_sf_item(&p, last, &m->items[m->nitems])
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        m->nitems++;

        if (p == last || (*p != ' ' && *p != ')')) {
            return NGX_ERROR;
        }
    }

    *pp = p;

    return ngx_http_openbank_sf_params(pp, last, m->params, &m->nparams);
}


/*
 * Parses a whole dictionary strictly and returns the member "key" in
 * "out": NGX_OK when it is there, NGX_DECLINED when the dictionary is
 * well formed without it, NGX_ERROR when the field is malformed, holds
 * the key twice, or more members than the bounds allow.  "others"
 * counts the members with another key.
 */

ngx_int_t
ngx_http_openbank_sf_dict_get(u_char *p, u_char *last, ngx_str_t *key,
    ngx_http_openbank_sf_member_t *out, ngx_uint_t *others)
{
    ngx_str_t                       k;
    ngx_uint_t                      n, found;
    ngx_http_openbank_sf_member_t  *m;
    ngx_http_openbank_sf_member_t   scratch;

    n = 0;
    found = 0;
    *others = 0;

    while (p < last && *p == ' ') {
        p++;
    }

    if (p == last) {
        return NGX_DECLINED;
    }

    for ( ;; ) {

        if (++n > NGX_HTTP_OPENBANK_SF_MAX_MEMBERS) {
            return NGX_ERROR;
        }

        if (ngx_http_openbank_sf_key(&p, last, &k) != NGX_OK) {
            return NGX_ERROR;
        }

        if (k.len == key->len && ngx_memcmp(k.data, key->data, k.len) == 0) {
            if (found++) {
                return NGX_ERROR;
            }

            m = out;

        } else {
            (*others)++;
            m = &scratch;
        }

        if (p < last && *p == '=') {
            p++;

            if (ngx_http_openbank_sf_member(&p, last, m) != NGX_OK) {
                return NGX_ERROR;
            }

        } else {
            m->inner = 0;
            m->nitems = 1;
            m->nparams = 0;
            ngx_memzero(&m->items[0].value,
                        sizeof(ngx_http_openbank_sf_bare_t));
            m->items[0].value.type = NGX_HTTP_OPENBANK_SF_BOOLEAN;
            m->items[0].value.integer = 1;

            if (ngx_http_openbank_sf_params(&p, last, m->items[0].params,
                                            &m->items[0].nparams)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        while (p < last && (*p == ' ' || *p == '\t')) {
            p++;
        }

        if (p == last) {
            break;
        }

        if (*p++ != ',') {
            return NGX_ERROR;
        }

        while (p < last && (*p == ' ' || *p == '\t')) {
            p++;
        }

        if (p == last) {
            return NGX_ERROR;
        }
    }

    return found ? NGX_OK : NGX_DECLINED;
}


ngx_int_t
ngx_http_openbank_sf_parse_dict(u_char *p, u_char *last)
{
    ngx_str_t                       none;
    ngx_uint_t                      others;
    ngx_http_openbank_sf_member_t   m;

    ngx_str_set(&none, "*");

    return ngx_http_openbank_sf_dict_get(p, last, &none, &m, &others);
}


/* output */

void
ngx_http_openbank_sbuf_add(ngx_http_openbank_sbuf_t *b, u_char *p,
    size_t len)
{
    b->len += len;

    if (b->start == NULL) {
        return;
    }

    if ((size_t) (b->end - b->pos) < len) {
        b->overflow = 1;
        return;
    }

    b->pos = ngx_cpymem(b->pos, p, len);
}


void
ngx_http_openbank_sbuf_str(ngx_http_openbank_sbuf_t *b, const char *s)
{
    ngx_http_openbank_sbuf_add(b, (u_char *) s, ngx_strlen(s));
}


static void
ngx_http_openbank_sbuf_int(ngx_http_openbank_sbuf_t *b, int64_t n)
{
    u_char    *p;
    uint64_t   u;
    u_char     tmp[24];

    p = tmp + sizeof(tmp);
    u = (n < 0) ? (uint64_t) 0 - (uint64_t) n : (uint64_t) n;

    do {
        *--p = (u_char) ('0' + u % 10);
        u /= 10;
    } while (u);

    if (n < 0) {
        *--p = '-';
    }

    ngx_http_openbank_sbuf_add(b, p, tmp + sizeof(tmp) - p);
}


static void
ngx_http_openbank_sf_serialize_bare(ngx_http_openbank_sbuf_t *b,
    ngx_http_openbank_sf_bare_t *bare)
{
    switch (bare->type) {

    case NGX_HTTP_OPENBANK_SF_INTEGER:
        ngx_http_openbank_sbuf_int(b, bare->integer);
        break;

    case NGX_HTTP_OPENBANK_SF_STRING:
        ngx_http_openbank_sbuf_str(b, "\"");
        ngx_http_openbank_sbuf_add(b, bare->raw.data, bare->raw.len);
        ngx_http_openbank_sbuf_str(b, "\"");
        break;

    case NGX_HTTP_OPENBANK_SF_BYTES:
        ngx_http_openbank_sbuf_str(b, ":");
        ngx_http_openbank_sbuf_add(b, bare->raw.data, bare->raw.len);
        ngx_http_openbank_sbuf_str(b, ":");
        break;

    case NGX_HTTP_OPENBANK_SF_BOOLEAN:
        ngx_http_openbank_sbuf_str(b, bare->integer ? "?1" : "?0");
        break;

    default: /* token, decimal */
        ngx_http_openbank_sbuf_add(b, bare->raw.data, bare->raw.len);
        break;
    }
}


static void
ngx_http_openbank_sf_serialize_params(ngx_http_openbank_sbuf_t *b,
    ngx_http_openbank_sf_param_t *params, ngx_uint_t n)
{
    ngx_uint_t  i;

    for (i = 0; i < n; i++) {
        ngx_http_openbank_sbuf_str(b, ";");
        ngx_http_openbank_sbuf_add(b, params[i].key.data, params[i].key.len);

        if (params[i].value.type == NGX_HTTP_OPENBANK_SF_BOOLEAN
            && params[i].value.integer == 1)
        {
            continue;
        }

        ngx_http_openbank_sbuf_str(b, "=");
        ngx_http_openbank_sf_serialize_bare(b, &params[i].value);
    }
}


/* the signature's parameters (RFC 9421 section 2.3) */

ngx_int_t
ngx_http_openbank_sig_params(ngx_http_openbank_sf_member_t *m,
    ngx_http_openbank_sig_params_t *sp, const char **err)
{
    ngx_uint_t                     i;
    ngx_http_openbank_sf_param_t  *p;

    ngx_memzero(sp, sizeof(ngx_http_openbank_sig_params_t));
    sp->expires = -1;

    if (!m->inner) {
        *err = "the signature's Signature-Input is not an inner list";
        return NGX_DECLINED;
    }

    for (i = 0; i < m->nparams; i++) {
        p = &m->params[i];

        if (ngx_http_openbank_str_eq(&p->key, "created")
            || ngx_http_openbank_str_eq(&p->key, "expires"))
        {
            if (p->value.type != NGX_HTTP_OPENBANK_SF_INTEGER
                || p->value.integer < 0)
            {
                *err = "\"created\" and \"expires\" must be integers";
                return NGX_DECLINED;
            }

            if (p->key.data[0] == 'c') {
                sp->created = p->value.integer;
                sp->has_created = 1;

            } else {
                sp->expires = p->value.integer;
            }

            continue;
        }

        if (p->value.type != NGX_HTTP_OPENBANK_SF_STRING) {
            *err = "a signature parameter has the wrong type";
            return NGX_DECLINED;
        }

        if (ngx_http_openbank_str_eq(&p->key, "keyid")) {
            sp->keyid = p->value.raw;

        } else if (ngx_http_openbank_str_eq(&p->key, "nonce")) {
            sp->nonce = p->value.raw;

        } else if (ngx_http_openbank_str_eq(&p->key, "alg")) {
            sp->alg = p->value.raw;

        } else if (ngx_http_openbank_str_eq(&p->key, "tag")) {
            sp->tag = p->value.raw;

        } else {
            *err = "unknown signature parameter";
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* whether the signature covers "name" (as is, without parameters) */

ngx_int_t
ngx_http_openbank_sig_covers(ngx_http_openbank_sf_member_t *m,
    const char *name)
{
    ngx_uint_t  i;

    if (!m->inner) {
        return 0;
    }

    for (i = 0; i < m->nitems; i++) {
        if (m->items[i].value.type == NGX_HTTP_OPENBANK_SF_STRING
            && m->items[i].nparams == 0
            && ngx_http_openbank_str_eq(&m->items[i].value.raw, name))
        {
            return 1;
        }
    }

    return 0;
}


/*
 * The signature base (RFC 9421 section 2.5) of the signature whose
 * Signature-Input member is "m".  NGX_DECLINED with *err when the
 * signature cannot be verified as it stands.
 */

ngx_int_t
ngx_http_openbank_sig_base(ngx_http_openbank_msg_t *msg,
    ngx_http_openbank_sf_member_t *m, ngx_http_openbank_sbuf_t *b,
    const char **err)
{
    ngx_uint_t                    i, j, k;
    ngx_http_openbank_sf_item_t  *it, *prev;

    if (!m->inner) {
        *err = "the signature's Signature-Input is not an inner list";
        return NGX_DECLINED;
    }

    for (i = 0; i < m->nitems; i++) {
        it = &m->items[i];

        if (it->value.type != NGX_HTTP_OPENBANK_SF_STRING
            || it->value.raw.len == 0)
        {
            *err = "a covered component is not a non-empty string";
            return NGX_DECLINED;
        }

        /* a component (name and parameters) may be covered only once */

        for (j = 0; j < i; j++) {
            prev = &m->items[j];

            if (prev->value.raw.len != it->value.raw.len
                || ngx_memcmp(prev->value.raw.data, it->value.raw.data,
                              it->value.raw.len) != 0
                || prev->nparams != it->nparams)
            {
                continue;
            }

            for (k = 0; k < it->nparams; k++) {
                if (prev->params[k].key.len != it->params[k].key.len
                    || ngx_memcmp(prev->params[k].key.data,
                                  it->params[k].key.data,
                                  it->params[k].key.len) != 0
                    || prev->params[k].value.raw.len
                       != it->params[k].value.raw.len
                    || ngx_memcmp(prev->params[k].value.raw.data,
                                  it->params[k].value.raw.data,
                                  it->params[k].value.raw.len) != 0)
                {
                    break;
                }
            }

            if (k == it->nparams) {
                *err = "a component is covered twice";
                return NGX_DECLINED;
            }
        }

        if (ngx_http_openbank_sig_component(msg, it, b, err) != NGX_OK) {
            return NGX_DECLINED;
        }
    }

    ngx_http_openbank_sbuf_str(b, "\"@signature-params\": (");

    for (i = 0; i < m->nitems; i++) {
        if (i) {
            ngx_http_openbank_sbuf_str(b, " ");
        }

        ngx_http_openbank_sf_serialize_bare(b, &m->items[i].value);
        ngx_http_openbank_sf_serialize_params(b, m->items[i].params,
                                              m->items[i].nparams);
    }

    ngx_http_openbank_sbuf_str(b, ")");
    ngx_http_openbank_sf_serialize_params(b, m->params, m->nparams);

    if (b->overflow) {
        *err = "the signature base is too large";
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_sig_component(ngx_http_openbank_msg_t *msg,
    ngx_http_openbank_sf_item_t *it, ngx_http_openbank_sbuf_t *b,
    const char **err)
{
    u_char                        *p, *last;
    ngx_str_t                     *name, *qname;
    ngx_uint_t                     i, req;
    ngx_http_openbank_sf_param_t  *par;

    name = &it->value.raw;
    req = 0;
    qname = NULL;

    for (i = 0; i < it->nparams; i++) {
        par = &it->params[i];

        if (ngx_http_openbank_str_eq(&par->key, "req")
            && par->value.type == NGX_HTTP_OPENBANK_SF_BOOLEAN
            && par->value.integer == 1)
        {
            req = 1;

        } else if (ngx_http_openbank_str_eq(&par->key, "name")
                   && par->value.type == NGX_HTTP_OPENBANK_SF_STRING
                   && ngx_http_openbank_str_eq(name, "@query-param"))
        {
            qname = &par->value.raw;

        } else {
            *err = "unsupported component parameter";
            return NGX_ERROR;
        }
    }

    if (req && msg->status == 0) {
        *err = "\";req\" on a request";
        return NGX_ERROR;
    }

    last = name->data + name->len;

    for (p = name->data; p < last; p++) {
        if (*p == '\\' || (*p >= 'A' && *p <= 'Z')
            || !(ngx_http_openbank_tchar(*p) || *p == '@'))
        {
            *err = "a covered component name is not a lowercase token";
            return NGX_ERROR;
        }
    }

    /* the component identifier, serialized again */

    ngx_http_openbank_sf_serialize_bare(b, &it->value);
    ngx_http_openbank_sf_serialize_params(b, it->params, it->nparams);
    ngx_http_openbank_sbuf_str(b, ": ");

    if (name->data[0] != '@') {
        if (msg->header(msg, req, name, b) != NGX_OK) {
            *err = "a covered header field is absent";
            return NGX_ERROR;
        }

        ngx_http_openbank_sbuf_str(b, "\n");

        return NGX_OK;
    }

    if (ngx_http_openbank_str_eq(name, "@status")) {
        if (msg->status == 0 || req) {
            *err = "\"@status\" is not a request's component";
            return NGX_ERROR;
        }

        ngx_http_openbank_sbuf_int(b, (int64_t) msg->status);
        ngx_http_openbank_sbuf_str(b, "\n");

        return NGX_OK;
    }

    if (msg->status && !req) {
        *err = "a request's component without \";req\" on a response";
        return NGX_ERROR;
    }

    if (qname && !ngx_http_openbank_str_eq(name, "@query-param")) {
        *err = "unsupported component parameter";
        return NGX_ERROR;
    }

    if (ngx_http_openbank_str_eq(name, "@method")) {
        ngx_http_openbank_sbuf_add(b, msg->method.data, msg->method.len);

    } else if (ngx_http_openbank_str_eq(name, "@target-uri")) {
        ngx_http_openbank_sbuf_add(b, msg->scheme.data, msg->scheme.len);
        ngx_http_openbank_sbuf_str(b, "://");
        ngx_http_openbank_sbuf_add(b, msg->authority.data,
                                   msg->authority.len);
        ngx_http_openbank_sbuf_add(b, msg->path.data, msg->path.len);

        if (msg->has_query) {
            ngx_http_openbank_sbuf_str(b, "?");
            ngx_http_openbank_sbuf_add(b, msg->query.data, msg->query.len);
        }

    } else if (ngx_http_openbank_str_eq(name, "@authority")) {
        ngx_http_openbank_sbuf_add(b, msg->authority.data,
                                   msg->authority.len);

    } else if (ngx_http_openbank_str_eq(name, "@scheme")) {
        ngx_http_openbank_sbuf_add(b, msg->scheme.data, msg->scheme.len);

    } else if (ngx_http_openbank_str_eq(name, "@path")) {
        ngx_http_openbank_sbuf_add(b, msg->path.data, msg->path.len);

    } else if (ngx_http_openbank_str_eq(name, "@query")) {
        ngx_http_openbank_sbuf_str(b, "?");

        if (msg->has_query) {
            ngx_http_openbank_sbuf_add(b, msg->query.data, msg->query.len);
        }

    } else if (ngx_http_openbank_str_eq(name, "@request-target")) {
        ngx_http_openbank_sbuf_add(b, msg->request_target.data,
                                   msg->request_target.len);

    } else if (ngx_http_openbank_str_eq(name, "@query-param")) {
        if (qname == NULL) {
            *err = "\"@query-param\" without \"name\"";
            return NGX_ERROR;
        }

        if (ngx_http_openbank_sig_query_param(msg, qname, b) != NGX_OK) {
            *err = "the query parameter is absent or repeated";
            return NGX_ERROR;
        }

    } else {
        *err = "unknown derived component";
        return NGX_ERROR;
    }

    ngx_http_openbank_sbuf_str(b, "\n");

    return NGX_OK;
}


/*
 * "@query-param" (RFC 9421 section 2.2.8): names and values decoded as
 * application/x-www-form-urlencoded and percent-encoded again; the name
 * must occur exactly once.
 */

static ngx_int_t
ngx_http_openbank_sig_query_param(ngx_http_openbank_msg_t *msg,
    ngx_str_t *name, ngx_http_openbank_sbuf_t *b)
{
    u_char      *p, *last, *end, *eq, *vstart;
    size_t       len;
    ngx_uint_t   found;
    u_char       enc[3 * 256];

    if (!msg->has_query) {
        return NGX_ERROR;
    }

    p = msg->query.data;
    last = p + msg->query.len;
    found = 0;
    vstart = NULL;
    end = NULL;

    while (p < last) {
        for (end = p; end < last && *end != '&'; end++) { /* void */ }

        for (eq = p; eq < end && *eq != '='; eq++) { /* void */ }

        if ((size_t) (eq - p) <= 256) {
            len = ngx_http_openbank_form_encode(enc, p, eq);

            if (len == name->len && ngx_memcmp(enc, name->data, len) == 0) {
                if (found++) {
                    return NGX_ERROR;
                }

                vstart = (eq < end) ? eq + 1 : end;

                /* the value, encoded in bounded steps */

                while (vstart < end) {
                    len = ngx_min((size_t) (end - vstart), 256);

                    /* never split an escape between two steps */

                    if (vstart + len < end) {
                        if (len > 1 && vstart[len - 1] == '%') {
                            len--;

                        } else if (len > 2 && vstart[len - 2] == '%') {
                            len -= 2;
                        }
                    }

                    ngx_http_openbank_sbuf_add(b, enc,
                        ngx_http_openbank_form_encode(enc, vstart,
                                                      vstart + len));
                    vstart += len;
                }
            }
        }

        p = (end < last) ? end + 1 : last;
    }

    return found ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_http_openbank_hex(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/* decodes "+" and %XX, then encodes all but alphanumerics and "*-._" */

static size_t
ngx_http_openbank_form_encode(u_char *dst, u_char *p, u_char *last)
{
    u_char      c, *d;
    ngx_int_t   h, l;

    static u_char  hex[] = "0123456789ABCDEF";

    d = dst;

    while (p < last) {
        c = *p++;

        if (c == '+') {
            c = ' ';

        } else if (c == '%' && last - p >= 2
                   && (h = ngx_http_openbank_hex(p[0])) >= 0
                   && (l = ngx_http_openbank_hex(p[1])) >= 0)
        {
            c = (u_char) (h * 16 + l);
            p += 2;
        }

        if (ngx_http_openbank_alpha(c) || ngx_http_openbank_digit(c)
            || c == '*' || c == '-' || c == '.' || c == '_')
        {
            *d++ = c;

        } else {
            *d++ = '%';
            *d++ = hex[c >> 4];
            *d++ = hex[c & 0xf];
        }
    }

    return d - dst;
}


static ngx_int_t
ngx_http_openbank_str_eq(ngx_str_t *s, const char *c)
{
    size_t  len;

    len = ngx_strlen(c);

    return s->len == len && ngx_memcmp(s->data, c, len) == 0;
}


/* base64 (RFC 4648 section 4), strict: padded, nothing else */

static const u_char  ngx_http_openbank_basis64[] = {
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 62, 77, 77, 77, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 77, 77, 77, 77, 77, 77,
    77,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 77, 77, 77, 77, 77,
    77, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 77, 77, 77, 77, 77,

    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77
};


ngx_int_t
ngx_http_openbank_base64_decode(u_char *dst, size_t size, ngx_str_t *src,
    size_t *len)
{
    u_char     *s, *d;
    size_t      i, n, pad;
    uint32_t    v;
    ngx_int_t   c, j;

    if (src->len % 4) {
        return NGX_ERROR;
    }

    n = src->len / 4 * 3;
    pad = 0;

    if (src->len && src->data[src->len - 1] == '=') {
        pad++;

        if (src->data[src->len - 2] == '=') {
            pad++;
        }
    }

    if (n - pad > size) {
        return NGX_ERROR;
    }

    s = src->data;
    d = dst;

    for (i = 0; i < src->len; i += 4) {
        v = 0;

        for (j = 0; j < 4; j++) {
            c = ngx_http_openbank_basis64[s[i + j]];

            if (c == 77) {
                if (s[i + j] != '=' || i + 4 != src->len
                    || (size_t) j < 4 - pad)
                {
                    return NGX_ERROR;
                }

                c = 0;
            }

            v = (v << 6) | (uint32_t) c;
        }

        *d++ = (u_char) (v >> 16);

        if (i + 4 < src->len || pad < 2) {
            *d++ = (u_char) (v >> 8);
        }

        if (i + 4 < src->len || pad < 1) {
            *d++ = (u_char) v;
        }
    }

    *len = d - dst;

    return NGX_OK;
}


size_t
ngx_http_openbank_base64_encode(u_char *dst, u_char *src, size_t len)
{
    u_char  *d;
    size_t   i;

    static u_char  b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    d = dst;

    for (i = 0; i + 2 < len; i += 3) {
        *d++ = b64[src[i] >> 2];
        *d++ = b64[((src[i] & 3) << 4) | (src[i + 1] >> 4)];
        *d++ = b64[((src[i + 1] & 0x0f) << 2) | (src[i + 2] >> 6)];
        *d++ = b64[src[i + 2] & 0x3f];
    }

    if (i < len) {
        *d++ = b64[src[i] >> 2];

        if (i + 1 < len) {
            *d++ = b64[((src[i] & 3) << 4) | (src[i + 1] >> 4)];
            *d++ = b64[(src[i + 1] & 0x0f) << 2];

        } else {
            *d++ = b64[(src[i] & 3) << 4];
            *d++ = '=';
        }

        *d++ = '=';
    }

    return d - dst;
}


/* algorithms */

ngx_uint_t
ngx_http_openbank_sig_alg(ngx_str_t *name)
{
    ngx_uint_t  i;

    for (i = 1; ngx_http_openbank_sig_algs[i]; i++) {
        if (ngx_http_openbank_str_eq(name, ngx_http_openbank_sig_algs[i])) {
            return i;
        }
    }

    return 0;
}


const char *
ngx_http_openbank_sig_alg_name(ngx_uint_t alg)
{
    if (alg == 0 || alg > NGX_HTTP_OPENBANK_SIG_SM2) {
        return "";
    }

    return ngx_http_openbank_sig_algs[alg];
}


static ngx_int_t
ngx_http_openbank_sig_key_fits(ngx_uint_t alg, EVP_PKEY *pkey)
{
    char    group[64];
    size_t  len;

    if (pkey == NULL) {
        return 0;
    }

    switch (alg) {

    case NGX_HTTP_OPENBANK_SIG_ED25519:
        return EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519;

    case NGX_HTTP_OPENBANK_SIG_RSA_PSS:
    case NGX_HTTP_OPENBANK_SIG_RSA_V1_5:
        return EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA
               || (alg == NGX_HTTP_OPENBANK_SIG_RSA_PSS
                   && EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA_PSS);

    case NGX_HTTP_OPENBANK_SIG_ECDSA_P256:
    case NGX_HTTP_OPENBANK_SIG_SM2:
        if (EVP_PKEY_get_utf8_string_param(pkey,
                                           OSSL_PKEY_PARAM_GROUP_NAME,
                                           group, sizeof(group), &len)
            != 1)
        {
            return 0;
        }

        if (alg == NGX_HTTP_OPENBANK_SIG_SM2) {
            return ngx_strcmp(group, "SM2") == 0;
        }

        return EVP_PKEY_is_a(pkey, "EC")
               && ngx_strcmp(group, "prime256v1") == 0;
    }

    return 0;
}


static ngx_int_t
ngx_http_openbank_ecdsa_raw_to_der(u_char *sig, size_t siglen, size_t half,
    u_char *der, size_t *derlen)
{
    int         n;
    u_char     *p;
    BIGNUM     *r, *s;
    ECDSA_SIG  *es;

    if (siglen != 2 * half) {
        return NGX_ERROR;
    }

    r = BN_bin2bn(sig, half, NULL);
    s = BN_bin2bn(sig + half, half, NULL);
    es = ECDSA_SIG_new();

    if (r == NULL || s == NULL || es == NULL) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return NGX_ERROR;
    }

    ECDSA_SIG_set0(es, r, s);

    n = i2d_ECDSA_SIG(es, NULL);

    if (n <= 0 || (size_t) n > *derlen) {
        ECDSA_SIG_free(es);
        return NGX_ERROR;
    }

    p = der;
    n = i2d_ECDSA_SIG(es, &p);
    ECDSA_SIG_free(es);

    if (n <= 0) {
        return NGX_ERROR;
    }

    *derlen = n;

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_ecdsa_der_to_raw(u_char *der, size_t derlen, size_t half,
    u_char *raw)
{
    ngx_int_t             rc;
    ECDSA_SIG            *es;
    const BIGNUM         *r, *s;
    const unsigned char  *p;

    p = der;
    es = d2i_ECDSA_SIG(NULL, &p, derlen);
    if (es == NULL) {
        return NGX_ERROR;
    }

    ECDSA_SIG_get0(es, &r, &s);

    rc = (BN_bn2binpad(r, raw, half) == (int) half
          && BN_bn2binpad(s, raw + half, half) == (int) half)
         ? NGX_OK : NGX_ERROR;

    ECDSA_SIG_free(es);

    return rc;
}


/*
 * Makes "md" sign (or verify) with "alg" and "pkey": the digest, SM2's
 * user id (its key context is left in "own", for the caller to free with
 * "md"), RSA's padding.
 */

static ngx_int_t
ngx_http_openbank_sig_md_init(EVP_MD_CTX *md, ngx_uint_t alg, EVP_PKEY *pkey,
    ngx_uint_t sign, EVP_PKEY_CTX **own)
{
    int            rc;
    EVP_PKEY_CTX  *pctx;
    const EVP_MD  *digest;

    digest = NULL;

    switch (alg) {
    case NGX_HTTP_OPENBANK_SIG_ECDSA_P256:
    case NGX_HTTP_OPENBANK_SIG_RSA_V1_5:
        digest = ngx_http_openbank_httpsig_md(0);
        break;
    case NGX_HTTP_OPENBANK_SIG_RSA_PSS:
        digest = ngx_http_openbank_httpsig_md(1);
        break;
    case NGX_HTTP_OPENBANK_SIG_SM2:
        digest = EVP_sm3();
        break;
    }

    if (alg == NGX_HTTP_OPENBANK_SIG_SM2) {
        *own = EVP_PKEY_CTX_new(pkey, NULL);

        if (*own == NULL
            || EVP_PKEY_CTX_set1_id(*own, NGX_HTTP_OPENBANK_SM2_ID,
                                    sizeof(NGX_HTTP_OPENBANK_SM2_ID) - 1)
               <= 0)
        {
            return NGX_ERROR;
        }

        EVP_MD_CTX_set_pkey_ctx(md, *own);
    }

    pctx = NULL;

    rc = sign ? EVP_DigestSignInit(md, &pctx, digest, NULL, pkey)
              : EVP_DigestVerifyInit(md, &pctx, digest, NULL, pkey);

    if (rc != 1) {
        return NGX_ERROR;
    }

    if (alg == NGX_HTTP_OPENBANK_SIG_RSA_PSS) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0
            || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 64) <= 0
            || EVP_PKEY_CTX_set_rsa_mgf1_md(pctx,
                                            ngx_http_openbank_httpsig_md(1))
               <= 0)
        {
            return NGX_ERROR;
        }

    } else if (alg == NGX_HTTP_OPENBANK_SIG_RSA_V1_5) {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * A context ready to verify with "alg" and "pkey" again and again, for
 * the algorithm that verifies in one shot and keeps no state in it
 * (Ed25519); NULL for the others.  A partner's key keeps one in each
 * worker (ngx_http_openbank_signature.c): setting one up costs more than
 * it seems in a loop (OpenSSL 3.0 looks the key's type up by name, in a
 * walk of all its names), and more still in a worker whose caches the
 * request has emptied.
 */

EVP_MD_CTX *
ngx_http_openbank_sig_verifier(ngx_uint_t alg, EVP_PKEY *pkey)
{
    return ngx_http_openbank_sig_ready(alg, pkey, 0);
}


/*
 * The same for signing with the gateway's Ed25519 key: a context made
 * once (ngx_http_openbank_keys.c) and used for every response and
 * webhook it signs; NULL for the other algorithms, which sign with a
 * context of their own.
 */

EVP_MD_CTX *
ngx_http_openbank_sig_signer(ngx_uint_t alg, EVP_PKEY *pkey)
{
    return ngx_http_openbank_sig_ready(alg, pkey, 1);
}


static EVP_MD_CTX *
ngx_http_openbank_sig_ready(ngx_uint_t alg, EVP_PKEY *pkey, ngx_uint_t sign)
{
    EVP_MD_CTX    *md;
    EVP_PKEY_CTX  *own;

    if (alg != NGX_HTTP_OPENBANK_SIG_ED25519
        || !ngx_http_openbank_sig_key_fits(alg, pkey))
    {
        return NULL;
    }

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return NULL;
    }

    own = NULL;

    if (ngx_http_openbank_sig_md_init(md, alg, pkey, sign, &own) != NGX_OK) {
        EVP_MD_CTX_free(md);
        ERR_clear_error();
        return NULL;
    }

    return md;
}


/*
 * Verifies "sig" over the base, with "ready" (from
 * ngx_http_openbank_sig_verifier() for this "alg" and "pkey") or with a
 * context of its own: NGX_OK, NGX_DECLINED when it does not verify (or
 * the key does not fit the algorithm), NGX_ERROR when OpenSSL failed for
 * another reason.
 */

ngx_int_t
ngx_http_openbank_sig_verify(ngx_uint_t alg, EVP_PKEY *pkey,
    EVP_MD_CTX *ready, ngx_str_t *secret, u_char *base, size_t len,
    u_char *sig, size_t siglen)
{
    int            rc;
    size_t         derlen;
    unsigned int   maclen;
    EVP_MD_CTX    *md;
    EVP_PKEY_CTX  *own;
    u_char         mac[EVP_MAX_MD_SIZE];
    u_char         der[160];

    if (alg == NGX_HTTP_OPENBANK_SIG_HMAC) {
        if (secret == NULL || secret->len == 0) {
            return NGX_DECLINED;
        }

        if (ngx_http_openbank_sig_hmac(secret, base, len, mac, &maclen)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (siglen != maclen || CRYPTO_memcmp(mac, sig, maclen) != 0) {
            return NGX_DECLINED;
        }

        return NGX_OK;
    }

    if (!ngx_http_openbank_sig_key_fits(alg, pkey)) {
        return NGX_DECLINED;
    }

    if (alg == NGX_HTTP_OPENBANK_SIG_ECDSA_P256) {
        derlen = sizeof(der);

        if (ngx_http_openbank_ecdsa_raw_to_der(sig, siglen, 32, der, &derlen)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        sig = der;
        siglen = derlen;

    } else if (alg == NGX_HTTP_OPENBANK_SIG_SM2 && siglen == 64) {
        derlen = sizeof(der);

        if (ngx_http_openbank_ecdsa_raw_to_der(sig, siglen, 32, der, &derlen)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        sig = der;
        siglen = derlen;
    }

    md = ready;
    own = NULL;

    if (md == NULL) {
        md = EVP_MD_CTX_new();
        if (md == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_openbank_sig_md_init(md, alg, pkey, 0, &own) != NGX_OK)
        {
            rc = -1;
            goto done;
        }
    }

    rc = EVP_DigestVerify(md, sig, siglen, base, len);

done:

    if (md != ready) {
        EVP_MD_CTX_free(md);
    }

    EVP_PKEY_CTX_free(own);

    if (rc == 1) {
        return NGX_OK;
    }

    ERR_clear_error();

    return NGX_DECLINED;
}


/*
 * Signs the base, with "ready" (from ngx_http_openbank_sig_signer() for
 * this "alg" and "pkey") or with a context of its own; "sig" has room for
 * NGX_HTTP_OPENBANK_SIG_MAX_LEN.
 */

ngx_int_t
ngx_http_openbank_sig_sign(ngx_uint_t alg, EVP_PKEY *pkey,
    EVP_MD_CTX *ready, ngx_str_t *secret, u_char *base, size_t len,
    u_char *sig, size_t *siglen)
{
    int            rc;
    size_t         n;
    unsigned int   maclen;
    EVP_MD_CTX    *md;
    EVP_PKEY_CTX  *own;
    u_char         der[NGX_HTTP_OPENBANK_SIG_MAX_LEN];

    if (alg == NGX_HTTP_OPENBANK_SIG_HMAC) {
        if (ngx_http_openbank_sig_hmac(secret, base, len, sig, &maclen)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        *siglen = maclen;
        return NGX_OK;
    }

    if (!ngx_http_openbank_sig_key_fits(alg, pkey)) {
        return NGX_ERROR;
    }

    md = ready;
    own = NULL;
    rc = 0;

    if (md == NULL) {
        md = EVP_MD_CTX_new();
        if (md == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_openbank_sig_md_init(md, alg, pkey, 1, &own) != NGX_OK)
        {
            goto done;
        }
    }

    n = sizeof(der);

    if (EVP_DigestSign(md, NULL, &n, base, len) != 1
        || n > sizeof(der)
        || EVP_DigestSign(md, der, &n, base, len) != 1)
    {
        goto done;
    }

    if (alg == NGX_HTTP_OPENBANK_SIG_ECDSA_P256) {
        if (ngx_http_openbank_ecdsa_der_to_raw(der, n, 32, sig) != NGX_OK) {
            goto done;
        }

        *siglen = 64;

    } else {
        ngx_memcpy(sig, der, n);
        *siglen = n;
    }

    rc = 1;

done:

    if (md != ready) {
        EVP_MD_CTX_free(md);
    }

    EVP_PKEY_CTX_free(own);

    if (rc != 1) {
        ERR_clear_error();
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * OpenSSL 3 looks an algorithm up by name on every call that names it
 * implicitly (EVP_sha256(), HMAC()): the digests and the HMAC context are
 * fetched once a process instead.
 */

const EVP_MD *
ngx_http_openbank_httpsig_md(ngx_uint_t sha512)
{
    static EVP_MD  *md[2];

    if (md[sha512] == NULL) {
        md[sha512] = EVP_MD_fetch(NULL, sha512 ? "SHA512" : "SHA256", NULL);

        if (md[sha512] == NULL) {
            return sha512 ? EVP_sha512() : EVP_sha256();
        }
    }

    return md[sha512];
}


/* the digest is set once; later inits only give the key */

static ngx_int_t
ngx_http_openbank_sig_hmac(ngx_str_t *secret, u_char *data, size_t len,
    u_char *out, unsigned int *outlen)
{
    size_t              n;
    OSSL_PARAM          params[2], *p;
    EVP_MAC            *mac;
    static EVP_MAC_CTX  *ctx;

    p = NULL;

    if (ctx == NULL) {
        mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        if (mac == NULL) {
            return NGX_ERROR;
        }

        ctx = EVP_MAC_CTX_new(mac);
        EVP_MAC_free(mac);

        if (ctx == NULL) {
            return NGX_ERROR;
        }

        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                     (char *) "SHA256", 0);
        params[1] = OSSL_PARAM_construct_end();
        p = params;
    }

    if (EVP_MAC_init(ctx, secret->data, secret->len, p) != 1
        || EVP_MAC_update(ctx, data, len) != 1
        || EVP_MAC_final(ctx, out, &n, EVP_MAX_MD_SIZE) != 1)
    {
        return NGX_ERROR;
    }

    *outlen = (unsigned int) n;

    return NGX_OK;
}
