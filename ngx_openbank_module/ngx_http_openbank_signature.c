
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * RFC 9421 signatures on the partner's requests ("openbank_signature"):
 * the body is read, Content-Digest (RFC 9530) checked, the signature base
 * built and verified with the partner's key, and the nonce recorded once
 * for all workers.  A verified request gets a signed response: the
 * response body is held (up to NGX_HTTP_OPENBANK_SIG_RESPONSE_MAX), its
 * Content-Digest computed, and Signature-Input and Signature added with
 * the gateway's first signing key.
 *
 * Replays after a restart: the nonce set lives in the shared zone, which
 * a reload keeps and a restart empties; a signature created before the
 * zone was made (the gateway's start) is refused, so no nonce seen before
 * a restart can be accepted after it.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_cluster.h>
#include <ngx_http_openbank_jwt.h>
#include <ngx_http_openbank_signature.h>
#include <ngx_http_openbank_util.h>
#include <ngx_http_openbank_httpsig.h>

#include <openssl/sha.h>


#define NGX_HTTP_OPENBANK_SIG_FIELD_MAX     8192
#define NGX_HTTP_OPENBANK_SIG_NONCE_MAX     128
#define NGX_HTTP_OPENBANK_SIG_RESPONSE_MAX  (1024 * 1024)
#define NGX_HTTP_OPENBANK_SIG_BASE_STACK    2048


struct ngx_http_openbank_sig_ctx_s {
    ngx_uint_t                     verified;   /* the response is signed */
    ngx_http_openbank_msg_t        msg;        /* the request */
    ngx_http_request_t            *r;

    /*
     * The signature and the digest verify, the nonce is being taken: a
     * check resumed from its wait for Redis only reads the nonce's answer.
     */
    ngx_uint_t                     valid;
    ngx_str_t                      nonce_key;  /* PARTNER ' ' NONCE */
    uint64_t                       nonce_expire;

    /* the response being held */
    ngx_uint_t                     holding;
    ngx_uint_t                     passing;    /* too large: unsigned */
    u_char                        *buf;
    size_t                         len;
    size_t                         size;
    EVP_MD_CTX                    *md;         /* its digest, as it comes */
};


static void ngx_http_openbank_signature_redirected(
    ngx_http_openbank_ctx_t *ctx);
static ngx_int_t ngx_http_openbank_signature_verify(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_sig_ctx_t *sc);
static ngx_int_t ngx_http_openbank_signature_field(ngx_http_request_t *r,
    ngx_list_t *headers, const char *name, ngx_str_t *value);
static ngx_int_t ngx_http_openbank_signature_msg(ngx_http_request_t *r,
    ngx_http_openbank_msg_t *msg);
static ngx_int_t ngx_http_openbank_signature_header_value(
    ngx_http_openbank_msg_t *msg, ngx_uint_t req, ngx_str_t *name,
    ngx_http_openbank_sbuf_t *b);
static ngx_int_t ngx_http_openbank_signature_key(ngx_http_request_t *r,
    ngx_http_openbank_partner_t *partner,
    ngx_http_openbank_sig_params_t *sp, EVP_PKEY **pkey,
    EVP_MD_CTX **ready, ngx_uint_t *alg);
static ngx_int_t ngx_http_openbank_signature_digest(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *field);
static ngx_int_t ngx_http_openbank_signature_nonce(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_sig_ctx_t *sc,
    ngx_http_openbank_sig_params_t *sp);
static ngx_int_t ngx_http_openbank_signature_nonce_take(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_sig_ctx_t *sc);
static ngx_int_t ngx_http_openbank_signature_build(ngx_http_request_t *r,
    ngx_http_openbank_msg_t *msg, ngx_http_openbank_sf_member_t *m,
    u_char *buf, size_t size, ngx_str_t *base, const char **err);
static EVP_MD_CTX *ngx_http_openbank_signature_md(ngx_uint_t sha512);
static ngx_int_t ngx_http_openbank_signature_stream(ngx_http_request_t *r,
    ngx_http_openbank_sig_ctx_t *sc);
static void ngx_http_openbank_signature_unstream(void *data);
static ngx_int_t ngx_http_openbank_signature_input(ngx_http_request_t *r,
    ngx_http_openbank_signing_key_t *key, ngx_str_t *input,
    ngx_http_openbank_sf_member_t **m);
static ngx_int_t ngx_http_openbank_signature_sign(ngx_http_request_t *r,
    ngx_http_openbank_sig_ctx_t *sc, u_char *digest);


/* the response's covered components: docs/signing.md */

#define NGX_HTTP_OPENBANK_SIG_RESPONSE_COMPONENTS                            \
    "(\"@status\" \"content-digest\" \"@method\";req \"@target-uri\";req)"


ngx_int_t
ngx_http_openbank_signature_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    ngx_uint_t                     n_in, n_sig;
    ngx_table_elt_t               *in, *sig;
    ngx_http_openbank_sig_ctx_t   *sc;
    ngx_http_openbank_loc_conf_t  *oblcf;

    static ngx_str_t  accept = ngx_string(
        "sig=(\"@method\" \"@target-uri\" \"content-digest\")"
        ";created;nonce");

    oblcf = ngx_http_get_module_loc_conf(r, ngx_http_openbank_module);

    sc = ctx->signature;

    if (sc == NULL) {
        in = ngx_http_openbank_find_header(&r->headers_in.headers,
                                           "Signature-Input", &n_in);
        sig = ngx_http_openbank_find_header(&r->headers_in.headers,
                                            "Signature", &n_sig);

        if (in == NULL && sig == NULL) {
            if (oblcf->signature == NGX_HTTP_OPENBANK_SIGNATURE_REQUIRED) {

                /* what to sign, as RFC 9421 section 5.1 asks for it */

                if (ngx_http_openbank_set_header(r, "Accept-Signature",
                                                 &accept)
                    == NULL)
                {
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }

                return ngx_http_openbank_refuse(r, ctx,
                    NGX_HTTP_UNAUTHORIZED,
                    NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_MISSING,
                    "this endpoint needs an RFC 9421 signature: "
                    "Signature-Input and Signature with label "
                    "\"sig\"");
            }

            return NGX_DECLINED;
        }

        if (in == NULL || sig == NULL) {
            return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
                NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID,
                "Signature-Input and Signature "
                "go together");
        }

        sc = ngx_pcalloc(r->pool, sizeof(ngx_http_openbank_sig_ctx_t));
        if (sc == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        sc->r = r;
        ctx->signature = sc;
        ctx->on_redirect = ngx_http_openbank_signature_redirected;
    }

    /* Content-Digest is checked against the body: read it first */

    if (!ctx->body_read
        && (r->headers_in.content_length_n > 0 || r->headers_in.chunked))
    {
        return NGX_HTTP_OPENBANK_READ_BODY;
    }

    if (sc->verified) {
        return NGX_DECLINED;
    }

    if (sc->valid) {
        return ngx_http_openbank_signature_nonce_take(r, ctx, sc);
    }

    return ngx_http_openbank_signature_verify(r, ctx, sc);
}


static ngx_int_t
ngx_http_openbank_signature_verify(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_sig_ctx_t *sc)
{
    size_t                          siglen;
    time_t                          now, skew;
    EVP_PKEY                       *pkey;
    ngx_int_t                       rc, body;
    EVP_MD_CTX                     *ready;
    ngx_str_t                       in, sig, digest, base, label;
    ngx_uint_t                      alg, others;
    const char                     *err;
    ngx_http_openbank_sf_member_t  *m_in, *m_sig;
    ngx_http_openbank_sig_params_t  sp;
    ngx_http_openbank_main_conf_t  *obmcf;
    ngx_http_openbank_zone_t       *zone;
    u_char                          raw[NGX_HTTP_OPENBANK_SIG_MAX_LEN];
    u_char                          buf[NGX_HTTP_OPENBANK_SIG_BASE_STACK];

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    if (ngx_http_openbank_signature_field(r, &r->headers_in.headers,
                                          "Signature-Input", &in)
        != NGX_OK
        || ngx_http_openbank_signature_field(r, &r->headers_in.headers,
                                             "Signature", &sig)
           != NGX_OK)
    {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
            NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID,
            "Signature-Input or Signature is "
            "larger than %d bytes",
            NGX_HTTP_OPENBANK_SIG_FIELD_MAX);
    }

    m_in = ngx_palloc(r->pool, 2 * sizeof(ngx_http_openbank_sf_member_t));
    if (m_in == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    m_sig = m_in + 1;

    ngx_str_set(&label, "sig");

    rc = ngx_http_openbank_sf_dict_get(in.data, in.data + in.len, &label,
                                       m_in, &others);

    if (rc == NGX_ERROR) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
            NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID,
            "Signature-Input is not a valid "
            "structured field dictionary");
    }

    if (rc == NGX_DECLINED || others) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
            NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID,
            "the signature must be the only "
            "one and labelled \"sig\"");
    }

    rc = ngx_http_openbank_sf_dict_get(sig.data, sig.data + sig.len, &label,
                                       m_sig, &others);

    if (rc != NGX_OK || others || m_sig->inner
        || m_sig->items[0].value.type != NGX_HTTP_OPENBANK_SF_BYTES
        || ngx_http_openbank_base64_decode(raw, sizeof(raw),
                                           &m_sig->items[0].value.raw,
                                           &siglen)
           != NGX_OK
        || siglen == 0)
    {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
            NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID,
            "Signature must hold one byte "
            "sequence labelled \"sig\"");
    }

    if (ngx_http_openbank_sig_params(m_in, &sp, &err) != NGX_OK) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
            NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID, "%s", err);
    }

    if (!sp.has_created || sp.keyid.len == 0 || sp.nonce.len == 0) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
            NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID,
            "the signature needs the "
            "parameters created, keyid and "
            "nonce");
    }

    if (sp.nonce.len > NGX_HTTP_OPENBANK_SIG_NONCE_MAX) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
            NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID,
            "the nonce is longer than %d "
            "characters",
            NGX_HTTP_OPENBANK_SIG_NONCE_MAX);
    }

    now = ngx_time();
    skew = obmcf->clock_skew;
    zone = obmcf->shm_zone ? obmcf->shm_zone->data : NULL;

    if (sp.created > now + skew) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
            NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID,
            "the signature was created in the "
            "future: check the clock");
    }

    if (sp.created < now - skew) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
            NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID,
            "the signature was created more "
            "than %T seconds ago", skew);
    }

    if (zone && sp.created < ngx_http_openbank_store_started(zone)) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
            NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID,
            "the signature was created before "
            "the gateway started: sign again");
    }

    if (sp.expires != -1
        && (sp.expires < sp.created || sp.expires + skew < now))
    {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
            NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID,
            "the signature has expired");
    }

    /* the components the contract demands */

    body = (r->headers_in.content_length_n > 0 || r->headers_in.chunked);

    if (ngx_http_openbank_signature_msg(r, &sc->msg) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!ngx_http_openbank_sig_covers(m_in, "@method")
        || !(ngx_http_openbank_sig_covers(m_in, "@target-uri")
             || (ngx_http_openbank_sig_covers(m_in, "@authority")
                 && ngx_http_openbank_sig_covers(m_in, "@path")
                 && (!sc->msg.has_query
                     || ngx_http_openbank_sig_covers(m_in, "@query"))))
        || (body && !ngx_http_openbank_sig_covers(m_in, "content-digest")))
    {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
            NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID,
            "the signature must cover "
            "\"@method\", \"@target-uri\" (or "
            "\"@authority\", \"@path\" and "
            "\"@query\") and, with a body, "
            "\"content-digest\"");
    }

    /* the key and its algorithm */

    pkey = NULL;
    ready = NULL;

    rc = ngx_http_openbank_signature_key(r, ctx->partner, &sp, &pkey,
                                         &ready, &alg);

    if (rc == NGX_DECLINED) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
            NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID,
            "keyid \"%V\" is not one of the "
            "partner's keys", &sp.keyid);
    }

    if (rc == NGX_ABORT) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
            NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID,
            "alg \"%V\" does not match the key "
            "\"%V\"", &sp.alg, &sp.keyid);
    }

    if (ngx_http_openbank_signature_build(r, &sc->msg, m_in, buf,
                                          sizeof(buf), &base, &err)
        != NGX_OK)
    {
        if (err == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
            NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID, "%s", err);
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "openbank signature base: \"%V\"", &base);

    rc = ngx_http_openbank_sig_verify(alg, pkey, ready,
                                      &ctx->partner->hmac_secret,
                                      base.data, base.len, raw, siglen);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
            NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID,
            "the signature does not verify "
            "(%s)",
            ngx_http_openbank_sig_alg_name(alg));
    }

    /* the body against Content-Digest */

    rc = ngx_http_openbank_signature_field(r, &r->headers_in.headers,
                                           "Content-Digest", &digest);

    if (rc == NGX_ERROR) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
            NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID,
            "Content-Digest is too large");
    }

    if (rc == NGX_OK) {
        rc = ngx_http_openbank_signature_digest(r, ctx, &digest);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    return ngx_http_openbank_signature_nonce(r, ctx, sc, &sp);
}


/* a field's lines joined with ", ": NGX_DECLINED when absent */

static ngx_int_t
ngx_http_openbank_signature_field(ngx_http_request_t *r, ngx_list_t *headers,
    const char *name, ngx_str_t *value)
{
    u_char           *p;
    size_t            len, n;
    ngx_uint_t        i, k, count;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *one;

    n = ngx_strlen(name);
    len = 0;
    count = 0;
    one = NULL;
    value->len = 0;
    value->data = NULL;

    for (i = 0; i < 2; i++) {

        part = &headers->part;
        k = 0;
        count = 0;

        while ((h = ngx_http_openbank_list_next(headers, &part, &k)) != NULL) {

            if (h->hash == 0 || h->key.len != n
                || ngx_strncasecmp(h->key.data, (u_char *) name, n) != 0)
            {
                continue;
            }

            if (i == 0) {
                len += h->value.len + (count ? 2 : 0);
                one = h;

            } else {
                p = value->data + value->len;

                if (count) {
                    *p++ = ','; *p++ = ' ';
                }

                ngx_memcpy(p, h->value.data, h->value.len);
                value->len = p + h->value.len - value->data;
            }

            count++;
        }

        if (count == 0) {
            return NGX_DECLINED;
        }

        if (i == 0) {
            if (len > NGX_HTTP_OPENBANK_SIG_FIELD_MAX) {
                return NGX_ERROR;
            }

            /* one line: the header's own value, read in place */

            if (count == 1) {
                *value = one->value;
                return NGX_OK;
            }

            value->data = ngx_pnalloc(r->pool, len);
            if (value->data == NULL) {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


/* the request as RFC 9421 section 2.2 sees it */

static ngx_int_t
ngx_http_openbank_signature_msg(ngx_http_request_t *r,
    ngx_http_openbank_msg_t *msg)
{
    u_char     *p, *q, *last;
    ngx_str_t   host;

    ngx_memzero(msg, sizeof(ngx_http_openbank_msg_t));

    msg->method = r->method_name;

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        ngx_str_set(&msg->scheme, "https");
    } else
#endif
    {
        ngx_str_set(&msg->scheme, "http");
    }

    if (r->headers_in.host) {
        host = r->headers_in.host->value;

    } else {
        host = r->headers_in.server;
    }

    p = ngx_pnalloc(r->pool, host.len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_strlow(p, host.data, host.len);

    msg->authority.data = p;
    msg->authority.len = host.len;

    /* the scheme's default port is left out */

    last = p + host.len;

    if ((msg->scheme.len == 4 && host.len > 3
         && ngx_strncmp(last - 3, ":80", 3) == 0)
        || (msg->scheme.len == 5 && host.len > 4
            && ngx_strncmp(last - 4, ":443", 4) == 0))
    {
        for (q = last - 1; *q != ':'; q--) { /* void */ }

        if (q > p && (q[-1] == ']' || ngx_strlchr(p, q, ':') == NULL)) {
            msg->authority.len = q - p;
        }
    }

    msg->request_target = r->unparsed_uri;

    p = r->unparsed_uri.data;
    last = p + r->unparsed_uri.len;
    q = ngx_strlchr(p, last, '?');

    msg->path.data = p;
    msg->path.len = (q ? q : last) - p;

    if (msg->path.len == 0) {
        ngx_str_set(&msg->path, "/");
    }

    if (q) {
        msg->has_query = 1;
        msg->query.data = q + 1;
        msg->query.len = last - (q + 1);
    }

    msg->header = ngx_http_openbank_signature_header_value;
    msg->data = r;

    return NGX_OK;
}


/* a field for the base: lines trimmed and joined with ", " */

static ngx_int_t
ngx_http_openbank_signature_header_value(ngx_http_openbank_msg_t *msg,
    ngx_uint_t req, ngx_str_t *name, ngx_http_openbank_sbuf_t *b)
{
    u_char              *p, *last;
    ngx_uint_t           i, count;
    ngx_list_t          *headers;
    ngx_list_part_t     *part;
    ngx_table_elt_t     *h;
    ngx_http_request_t  *r;

    r = msg->data;

    headers = (msg->status && !req) ? &r->headers_out.headers
                                    : &r->headers_in.headers;

    part = &headers->part;
    i = 0;
    count = 0;

    while ((h = ngx_http_openbank_list_next(headers, &part, &i)) != NULL) {

        if (h->hash == 0 || h->key.len != name->len
            || ngx_strncasecmp(h->key.data, name->data, name->len) != 0)
        {
            continue;
        }

        p = h->value.data;
        last = p + h->value.len;

        while (p < last && (*p == ' ' || *p == '\t')) {
            p++;
        }

        while (last > p && (last[-1] == ' ' || last[-1] == '\t')) {
            last--;
        }

        if (count++) {
            ngx_http_openbank_sbuf_str(b, ", ");
        }

        ngx_http_openbank_sbuf_add(b, p, last - p);
    }

    return count ? NGX_OK : NGX_DECLINED;
}


/*
 * The base, written in one pass into the caller's buffer "buf"; only one
 * larger than "size" is counted, then written into one from the pool.
 */

static ngx_int_t
ngx_http_openbank_signature_build(ngx_http_request_t *r,
    ngx_http_openbank_msg_t *msg, ngx_http_openbank_sf_member_t *m,
    u_char *buf, size_t size, ngx_str_t *base, const char **err)
{
    size_t                    len;
    ngx_http_openbank_sbuf_t  b;

    ngx_memzero(&b, sizeof(ngx_http_openbank_sbuf_t));

    b.start = buf;
    b.pos = buf;
    b.end = buf + size;

    if (ngx_http_openbank_sig_base(msg, m, &b, err) != NGX_OK) {

        if (!b.overflow) {
            return NGX_DECLINED;
        }

        /* larger than the caller's buffer: again, into one of its size */

        len = b.len;

        ngx_memzero(&b, sizeof(ngx_http_openbank_sbuf_t));

        b.start = ngx_pnalloc(r->pool, len);
        if (b.start == NULL) {
            *err = NULL;
            return NGX_ERROR;
        }

        b.pos = b.start;
        b.end = b.start + len;

        if (ngx_http_openbank_sig_base(msg, m, &b, err) != NGX_OK) {
            return NGX_DECLINED;
        }
    }

    base->data = b.start;
    base->len = b.pos - b.start;

    return NGX_OK;
}


/*
 * The partner's key named by keyid: "hmac" is its shared secret, other
 * names are kids of its JWKS.  NGX_DECLINED: no such key; NGX_ABORT: the
 * alg parameter contradicts the key.
 */

static ngx_int_t
ngx_http_openbank_signature_key(ngx_http_request_t *r,
    ngx_http_openbank_partner_t *partner, ngx_http_openbank_sig_params_t *sp,
    EVP_PKEY **pkey, EVP_MD_CTX **ready, ngx_uint_t *alg)
{
    ngx_uint_t                named;
    ngx_http_openbank_jwk_t  *jwk;

    named = 0;
    jwk = NULL;

    if (sp->alg.len) {
        named = ngx_http_openbank_sig_alg(&sp->alg);

        if (named == 0) {
            return NGX_ABORT;
        }
    }

    if (sp->keyid.len == 4 && ngx_strncmp(sp->keyid.data, "hmac", 4) == 0) {
        if (partner->hmac_secret.len == 0) {
            return NGX_DECLINED;
        }

        *alg = NGX_HTTP_OPENBANK_SIG_HMAC;
        *pkey = NULL;

    } else {
        if (partner->jwks == NULL) {
            return NGX_DECLINED;
        }

        jwk = ngx_http_openbank_jwks_find(partner->jwks, &sp->keyid);
        if (jwk == NULL) {
            return NGX_DECLINED;
        }

        *pkey = jwk->pkey;

        switch (jwk->type) {

        case NGX_HTTP_OPENBANK_KEY_ED25519:
            *alg = NGX_HTTP_OPENBANK_SIG_ED25519;
            break;

        case NGX_HTTP_OPENBANK_KEY_EC_P256:
            *alg = NGX_HTTP_OPENBANK_SIG_ECDSA_P256;
            break;

        case NGX_HTTP_OPENBANK_KEY_SM2:
            *alg = NGX_HTTP_OPENBANK_SIG_SM2;
            break;

        case NGX_HTTP_OPENBANK_KEY_RSA:

            /* the JWK's alg decides, else the signature's, else PSS */

            if (jwk->alg.len == 5
                && ngx_strncmp(jwk->alg.data, "RS256", 5) == 0)
            {
                *alg = NGX_HTTP_OPENBANK_SIG_RSA_V1_5;

            } else if (jwk->alg.len == 0
                       && named == NGX_HTTP_OPENBANK_SIG_RSA_V1_5)
            {
                *alg = NGX_HTTP_OPENBANK_SIG_RSA_V1_5;

            } else if (jwk->alg.len == 0
                       || (jwk->alg.len == 5
                           && ngx_strncmp(jwk->alg.data, "PS512", 5) == 0))
            {
                *alg = NGX_HTTP_OPENBANK_SIG_RSA_PSS;

            } else {
                return NGX_ABORT;
            }

            break;

        default:
            return NGX_DECLINED;
        }
    }

    if (named && named != *alg) {
        return NGX_ABORT;
    }

    /* a JWK's ready context: kept for the worker's life, or made again */

    if (jwk) {
        if (jwk->verifier == NULL) {
            jwk->verifier = ngx_http_openbank_sig_verifier(*alg, *pkey);
        }

        *ready = jwk->verifier;
    }

    return NGX_OK;
}


/* Content-Digest (RFC 9530) against the body: sha-256 and sha-512 */

static ngx_int_t
ngx_http_openbank_signature_digest(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *field)
{
    size_t                          dlen;
    ngx_int_t                       rc;
    ngx_str_t                       key;
    ngx_uint_t                      i, others, checked;
    EVP_MD_CTX                     *md;
    const EVP_MD                   *digest;
    ngx_http_openbank_sf_member_t  *m;
    u_char                          want[SHA512_DIGEST_LENGTH];
    u_char                          got[EVP_MAX_MD_SIZE];

    static const char  *names[] = { "sha-256", "sha-512" };

    m = ngx_palloc(r->pool, sizeof(ngx_http_openbank_sf_member_t));
    if (m == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_openbank_sf_parse_dict(field->data, field->data + field->len)
        == NGX_ERROR)
    {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
            NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID,
            "Content-Digest is not a valid "
            "structured field dictionary");
    }

    checked = 0;

    for (i = 0; i < 2; i++) {
        key.data = (u_char *) names[i];
        key.len = 7;

        rc = ngx_http_openbank_sf_dict_get(field->data,
                                           field->data + field->len,
                                           &key, m, &others);
        if (rc == NGX_DECLINED) {
            continue;
        }

        digest = ngx_http_openbank_httpsig_md(i);

        if (rc != NGX_OK || m->inner
            || m->items[0].value.type != NGX_HTTP_OPENBANK_SF_BYTES
            || ngx_http_openbank_base64_decode(want, sizeof(want),
                                               &m->items[0].value.raw,
                                               &dlen)
               != NGX_OK
            || dlen != (size_t) EVP_MD_get_size(digest))
        {
            return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
                NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID,
                "Content-Digest's %s is not a "
                "digest", names[i]);
        }

        md = ngx_http_openbank_signature_md(i);

        if (md == NULL
            || ngx_http_openbank_body_digest(r, md) != NGX_OK
            || EVP_DigestFinal_ex(md, got, NULL) != 1)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (CRYPTO_memcmp(got, want, dlen) != 0) {
            return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
                NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID,
                "the body does not match "
                "Content-Digest (%s)",
                names[i]);
        }

        checked++;
    }

    if (checked == 0) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
            NGX_HTTP_OPENBANK_PROBLEM_SIGNATURE_INVALID,
            "Content-Digest must hold sha-256 "
            "or sha-512");
    }

    return NGX_DECLINED;
}


/*
 * The nonce, once per partner for every worker: the record lives until
 * the signature could no longer be accepted (created + skew); it may not
 * be evicted, and a zone too full to record it refuses the request.  What
 * the verification established is kept in "sc" first: in cluster mode the
 * check waits for Redis and runs again, and then only takes the nonce.
 */

static ngx_int_t
ngx_http_openbank_signature_nonce(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_sig_ctx_t *sc,
    ngx_http_openbank_sig_params_t *sp)
{
    u_char                         *p;
    uint64_t                        now, expire;
    ngx_str_t                       key;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    if (obmcf->shm_zone == NULL) {
        return ngx_http_openbank_refuse(r, ctx,
            NGX_HTTP_SERVICE_UNAVAILABLE,
            NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
            "no openbank_zone to record "
            "nonces in");
    }

    key.len = ctx->partner->name.len + 1 + sp->nonce.len;
    key.data = ngx_pnalloc(r->pool, key.len);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(key.data, ctx->partner->name.data,
                   ctx->partner->name.len);
    *p++ = ' ';
    ngx_memcpy(p, sp->nonce.data, sp->nonce.len);

    now = ngx_http_openbank_now_ms();
    expire = ((uint64_t) sp->created + obmcf->clock_skew + 1) * 1000;

    if (expire <= now) {
        expire = now + 1000;
    }

    sc->nonce_key = key;
    sc->nonce_expire = expire;
    sc->valid = 1;

    return ngx_http_openbank_signature_nonce_take(r, ctx, sc);
}


/* NGX_DECLINED: the nonce is this request's, the signature accepted */

static ngx_int_t
ngx_http_openbank_signature_nonce_take(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_sig_ctx_t *sc)
{
    ngx_int_t                       rc;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    rc = ngx_http_openbank_cluster_add(r, ctx, NGX_HTTP_OPENBANK_CLUSTER_NONCE,
                                       NGX_HTTP_OPENBANK_TABLE_NONCE,
                                       &sc->nonce_key, ctx->partner->name.len,
                                       sc->nonce_expire);

    if (rc == NGX_AGAIN || rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        /* waits for the cluster, or refused without it */
        return rc;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_UNAUTHORIZED,
            NGX_HTTP_OPENBANK_PROBLEM_REPLAYED_REQUEST,
            "this nonce was already used");
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "openbank: zone \"%V\" is full: cannot record a "
                      "signature's nonce, refusing the request",
                      &obmcf->shm_zone->shm.name);

        return ngx_http_openbank_refuse(r, ctx,
            NGX_HTTP_SERVICE_UNAVAILABLE,
            NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
            "the replay set is full");
    }

    sc->verified = 1;

    return NGX_DECLINED;
}


/* signed responses */

/*
 * The ctx came back after an internal redirect or a filter's error: the
 * response to sign is the one that goes out now, from its start.
 */

static void
ngx_http_openbank_signature_redirected(ngx_http_openbank_ctx_t *ctx)
{
    ngx_http_openbank_sig_ctx_t  *sc;

    sc = ctx->signature;

    if (sc) {
        sc->holding = 0;
        sc->passing = 0;
        sc->len = 0;
        ngx_http_openbank_signature_unstream(sc);
    }
}


/*
 * The response filter of signed responses, the last of the module's (the
 * order of "config"): it holds the response until its body is complete,
 * up to NGX_HTTP_OPENBANK_SIG_RESPONSE_MAX, to sign its Content-Digest.
 */

static ngx_int_t ngx_http_openbank_signature_body(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_chain_t *in);
static ngx_int_t ngx_http_openbank_signature_release(ngx_http_request_t *r,
    ngx_http_openbank_sig_ctx_t *sc, ngx_chain_t *rest);

NGX_HTTP_OPENBANK_FILTER_MODULE(signature, ngx_http_openbank_signature_body);


static ngx_int_t
ngx_http_openbank_signature_header(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    EVP_MD_CTX                     *md;
    ngx_http_openbank_sig_ctx_t    *sc;
    ngx_http_openbank_main_conf_t  *obmcf;
    u_char                          digest[SHA256_DIGEST_LENGTH];

    sc = ctx->signature;

    if (sc == NULL || !sc->verified || sc->holding || sc->passing) {
        return NGX_DECLINED;
    }

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    if (obmcf->signing_keys.nelts == 0) {
        return NGX_DECLINED;
    }

    if (r->header_only) {
        md = ngx_http_openbank_signature_md(0);

        if (md == NULL || EVP_DigestFinal_ex(md, digest, NULL) != 1
            || ngx_http_openbank_signature_sign(r, sc, digest) != NGX_OK)
        {
            return NGX_ERROR;
        }

        sc->passing = 1;
        return NGX_DECLINED;
    }

    sc->holding = 1;

    r->filter_need_in_memory = 1;
    r->allow_ranges = 0;

    return ngx_http_openbank_signature_stream(r, sc);
}


static ngx_int_t
ngx_http_openbank_signature_body(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_chain_t *in)
{
    u_char                       *p;
    off_t                         size;
    ssize_t                       n;
    ngx_buf_t                    *b;
    ngx_uint_t                    last;
    EVP_MD_CTX                   *md;
    ngx_chain_t                  *cl;
    ngx_http_openbank_sig_ctx_t  *sc;
    u_char                        digest[SHA256_DIGEST_LENGTH];

    sc = ctx->signature;

    if (sc == NULL || !sc->holding) {
        return NGX_DECLINED;
    }

    last = 0;

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;
        size = ngx_buf_size(b);

        if ((off_t) sc->len + size > NGX_HTTP_OPENBANK_SIG_RESPONSE_MAX) {

            /* too large to hold: it goes out unsigned */

            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "openbank: response larger than %d bytes is "
                          "not signed", NGX_HTTP_OPENBANK_SIG_RESPONSE_MAX);

            sc->holding = 0;
            sc->passing = 1;
            ngx_http_openbank_signature_unstream(sc);

            return ngx_http_openbank_signature_release(r, sc, cl);
        }

        if (sc->len + size > sc->size) {
            sc->size = ngx_max(sc->size * 2, sc->len + (size_t) size);
            sc->size = ngx_max(sc->size, 4096);

            p = ngx_pnalloc(r->pool, sc->size);
            if (p == NULL) {
                return NGX_ERROR;
            }

            if (sc->len) {
                ngx_memcpy(p, sc->buf, sc->len);
            }

            sc->buf = p;
        }

        p = sc->buf + sc->len;

        if (ngx_buf_in_memory(b)) {
            sc->len = ngx_cpymem(p, b->pos, b->last - b->pos) - sc->buf;

        } else if (b->in_file && b->file) {
            n = ngx_read_file(b->file, p, (size_t) size, b->file_pos);
            if (n != (ssize_t) size) {
                return NGX_ERROR;
            }

            sc->len += n;
        }

        if (sc->md && sc->buf + sc->len > p
            && EVP_DigestUpdate(sc->md, p, sc->buf + sc->len - p) != 1)
        {
            return NGX_ERROR;
        }

        b->pos = b->last;
        b->file_pos = b->file_last;

        if (b->last_buf) {
            last = 1;
        }
    }

    if (!last) {
        return NGX_OK;
    }

    sc->holding = 0;
    sc->passing = 1;

    /* the digest made as the body came, else made now */

    md = sc->md;

    if (md == NULL) {
        md = ngx_http_openbank_signature_md(0);

        if (md == NULL || EVP_DigestUpdate(md, sc->buf, sc->len) != 1) {
            return NGX_ERROR;
        }
    }

    ngx_http_openbank_signature_unstream(sc);

    if (EVP_DigestFinal_ex(md, digest, NULL) != 1
        || ngx_http_openbank_signature_sign(r, sc, digest) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the whole body is known: its length too */

    r->headers_out.content_length_n = sc->len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    return ngx_http_openbank_signature_release(r, sc, NULL);
}


/*
 * Sends the header and the body held, then "rest"; without "rest", the
 * body held is the whole.
 */

static ngx_int_t
ngx_http_openbank_signature_release(ngx_http_request_t *r,
    ngx_http_openbank_sig_ctx_t *sc, ngx_chain_t *rest)
{
    ngx_int_t     rc;
    ngx_buf_t    *out;
    ngx_chain_t   head;

    rc = ngx_http_next_header_filter(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    if (sc->len == 0 && rest != NULL) {
        return ngx_http_next_body_filter(r, rest);
    }

    out = ngx_calloc_buf(r->pool);
    if (out == NULL) {
        return NGX_ERROR;
    }

    out->pos = sc->buf;
    out->last = sc->buf + sc->len;
    out->memory = (sc->len > 0);
    out->last_buf = (rest == NULL);

    head.buf = out;
    head.next = rest;

    return ngx_http_next_body_filter(r, &head);
}


/*
 * Content-Digest ("digest": its SHA-256), Signature-Input and Signature on
 * the response.
 */

static ngx_int_t
ngx_http_openbank_signature_sign(ngx_http_request_t *r,
    ngx_http_openbank_sig_ctx_t *sc, u_char *digest)
{
    u_char                          *p;
    size_t                           siglen;
    ngx_str_t                        value, input, base;
    ngx_uint_t                       alg;
    const char                      *err;
    ngx_http_openbank_msg_t          msg;
    ngx_http_openbank_sf_member_t   *m;
    ngx_http_openbank_signing_key_t *key;
    ngx_http_openbank_main_conf_t   *obmcf;
    u_char                           sig[NGX_HTTP_OPENBANK_SIG_MAX_LEN];
    u_char                           buf[NGX_HTTP_OPENBANK_SIG_BASE_STACK];

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    key = obmcf->signing_keys.elts;

    /* Content-Digest */

    value.data = ngx_pnalloc(r->pool, sizeof("sha-256=::") - 1 + 44);
    if (value.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(value.data, "sha-256=:", 9);
    p += ngx_http_openbank_base64_encode(p, digest, SHA256_DIGEST_LENGTH);
    *p++ = ':';
    value.len = p - value.data;

    if (ngx_http_openbank_set_header(r, "Content-Digest", &value) == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_signature_input(r, key, &input, &m) != NGX_OK) {
        return NGX_ERROR;
    }

    msg = sc->msg;
    msg.status = r->headers_out.status;

    if (ngx_http_openbank_signature_build(r, &msg, m, buf, sizeof(buf),
                                          &base, &err)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "openbank: cannot build a response's signature "
                      "base: %s", err ? err : "no memory");
        return NGX_ERROR;
    }

    alg = (key->type == NGX_HTTP_OPENBANK_KEY_RSA)
          ? NGX_HTTP_OPENBANK_SIG_RSA_PSS
          : (key->type == NGX_HTTP_OPENBANK_KEY_EC_P256)
            ? NGX_HTTP_OPENBANK_SIG_ECDSA_P256
            : NGX_HTTP_OPENBANK_SIG_ED25519;

    if (ngx_http_openbank_sig_sign(alg, key->pkey, key->sign, NULL,
                                   base.data, base.len, sig, &siglen)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "openbank: signing a response with \"%V\" failed",
                      &key->kid);
        return NGX_ERROR;
    }

    if (ngx_http_openbank_set_header(r, "Signature-Input", &input) == NULL) {
        return NGX_ERROR;
    }

    value.data = ngx_pnalloc(r->pool, sizeof("sig=::") + 4 * (siglen / 3 + 1));
    if (value.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(value.data, "sig=:", 5);
    p += ngx_http_openbank_base64_encode(p, sig, siglen);
    *p++ = ':';
    value.len = p - value.data;

    if (ngx_http_openbank_set_header(r, "Signature", &value) == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Signature-Input, exactly as docs/signing.md has it, and its "sig"
 * member parsed: made again when the second changes, copied into the
 * request's pool.
 */

static ngx_int_t
ngx_http_openbank_signature_input(ngx_http_request_t *r,
    ngx_http_openbank_signing_key_t *key, ngx_str_t *input,
    ngx_http_openbank_sf_member_t **m)
{
    time_t       now;
    ngx_str_t    label;
    ngx_uint_t   others;

    static time_t                            created = -1;
    static u_char                           *text;
    static size_t                            size;
    static ngx_str_t                         made;
    static ngx_http_openbank_signing_key_t  *made_key;
    static ngx_http_openbank_sf_member_t     member;

    now = ngx_time();

    if (now != created || key != made_key) {
        created = -1;

        if (size < sizeof("sig=" NGX_HTTP_OPENBANK_SIG_RESPONSE_COMPONENTS
                          ";created=;keyid=\"\"")
                   + NGX_TIME_T_LEN + key->kid.len)
        {
            ngx_free(text);

            size = sizeof("sig=" NGX_HTTP_OPENBANK_SIG_RESPONSE_COMPONENTS
                          ";created=;keyid=\"\"")
                   + NGX_TIME_T_LEN + key->kid.len;

            text = ngx_alloc(size, r->connection->log);
            if (text == NULL) {
                size = 0;
                return NGX_ERROR;
            }
        }

        made.data = text;
        made.len = ngx_sprintf(text,
                               "sig=" NGX_HTTP_OPENBANK_SIG_RESPONSE_COMPONENTS
                               ";created=%T;keyid=\"%V\"",
                               now, &key->kid)
                   - text;

        ngx_str_set(&label, "sig");

        if (ngx_http_openbank_sf_dict_get(made.data, made.data + made.len,
                                          &label, &member, &others)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "openbank: signing key id \"%V\" is not a valid "
                          "structured field string", &key->kid);
            return NGX_ERROR;
        }

        created = now;
        made_key = key;
    }

    input->data = ngx_pnalloc(r->pool, made.len);
    if (input->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(input->data, made.data, made.len);
    input->len = made.len;

    *m = &member;

    return NGX_OK;
}


/*
 * The response's digest made as its body comes, for one held response of
 * the worker at a time (nearly always the only one: a response is held
 * from its upstream's last read to its last buffer): the worker's second
 * digest context.  A response that finds it taken is digested when whole.
 */

static ngx_http_openbank_sig_ctx_t  *ngx_http_openbank_signature_streaming;
static EVP_MD_CTX                   *ngx_http_openbank_signature_stream_md;


static ngx_int_t
ngx_http_openbank_signature_stream(ngx_http_request_t *r,
    ngx_http_openbank_sig_ctx_t *sc)
{
    ngx_pool_cleanup_t  *cln;

    if (ngx_http_openbank_signature_streaming != NULL) {
        return NGX_OK;
    }

    if (ngx_http_openbank_signature_stream_md == NULL) {
        ngx_http_openbank_signature_stream_md = EVP_MD_CTX_new();
        if (ngx_http_openbank_signature_stream_md == NULL) {
            return NGX_ERROR;
        }
    }

    if (EVP_DigestInit_ex2(ngx_http_openbank_signature_stream_md,
                           ngx_http_openbank_httpsig_md(0), NULL)
        != 1)
    {
        return NGX_ERROR;
    }

    /* a request that ends while held gives it back */

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_openbank_signature_unstream;
    cln->data = sc;

    sc->md = ngx_http_openbank_signature_stream_md;
    ngx_http_openbank_signature_streaming = sc;

    return NGX_OK;
}


static void
ngx_http_openbank_signature_unstream(void *data)
{
    ngx_http_openbank_sig_ctx_t  *sc = data;

    if (ngx_http_openbank_signature_streaming == sc) {
        ngx_http_openbank_signature_streaming = NULL;
    }

    sc->md = NULL;
}


/*
 * The worker's digest context, ready for a new SHA-256 (or SHA-512):
 * for every digest made and finished within one call.
 */

static EVP_MD_CTX *
ngx_http_openbank_signature_md(ngx_uint_t sha512)
{
    const EVP_MD  *md;

    static EVP_MD_CTX  *ctx;

    if (ctx == NULL) {
        ctx = EVP_MD_CTX_new();
        if (ctx == NULL) {
            return NULL;
        }
    }

    md = ngx_http_openbank_httpsig_md(sha512);

    if (md == NULL || EVP_DigestInit_ex2(ctx, md, NULL) != 1) {
        return NULL;
    }

    return ctx;
}
