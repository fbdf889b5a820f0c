
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Compact JWS (RFC 7515) as JWTs use it (RFC 7519): parsing of untrusted
 * tokens into their header and claims, verification with a ready key
 * whose type pins the algorithm, and signing of the gateway's tokens.
 * ES256, PS256, RS256 and EdDSA go straight through OpenSSL EVP: keys are
 * never parsed here, they were built at load time.
 *
 * The JSON of a token is read with yajl's event parser, its memory taken
 * from the request's pool: only the members the gateway uses are kept,
 * a member twice (two readers could see two values) or of the wrong type
 * is refused.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_jwt.h>
#include <ngx_http_openbank_util.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <yajl/yajl_parse.h>


#define NGX_HTTP_OPENBANK_JWT_PART_MAX     4096   /* decoded header, claims */
#define NGX_HTTP_OPENBANK_JWT_SIG_MAX      1024   /* RSA-8192: 1024 bytes */
#define NGX_HTTP_OPENBANK_JWT_MEMBERS_MAX  64
#define NGX_HTTP_OPENBANK_JWT_DEPTH_MAX    16
#define NGX_HTTP_OPENBANK_JWT_TIME_MAX     253402300799LL   /* 9999-12-31 */
#define NGX_HTTP_OPENBANK_JWT_YAJL_MEM     4096   /* yajl's, on the stack */


/* where a member of the top object goes */

#define NGX_HTTP_OPENBANK_JWT_IGNORE   0
#define NGX_HTTP_OPENBANK_JWT_STRING   1
#define NGX_HTTP_OPENBANK_JWT_TIME     2
#define NGX_HTTP_OPENBANK_JWT_AUD      3
#define NGX_HTTP_OPENBANK_JWT_CNF      4
#define NGX_HTTP_OPENBANK_JWT_REFUSE   5


typedef struct {
    ngx_pool_t                   *pool;
    ngx_http_openbank_jwt_t      *jwt;
    ngx_uint_t                    header;      /* the header, else claims */
    ngx_uint_t                    depth;       /* 1: in the top object */
    ngx_uint_t                    kind;        /* of the current member */
    ngx_str_t                    *string;      /* where its string goes */
    int64_t                      *time;        /* where its time goes */
    ngx_uint_t                    in_aud;      /* in the "aud" array */
    ngx_uint_t                    in_cnf;      /* in the "cnf" object */
    ngx_uint_t                    cnf_x5t;     /* at "x5t#S256" in it */
    ngx_uint_t                    seen_cnf;
    ngx_str_t                     members[NGX_HTTP_OPENBANK_JWT_MEMBERS_MAX];
    ngx_uint_t                    nmembers;
    const char                   *err;
    u_char                       *copy;        /* the members kept */
    u_char                       *copy_end;
    u_char                       *mem;         /* yajl's, then the pool */
    u_char                        yajl[NGX_HTTP_OPENBANK_JWT_YAJL_MEM];
} ngx_http_openbank_jwt_ctx_t;


static ngx_int_t ngx_http_openbank_jwt_json(ngx_http_openbank_jwt_ctx_t *ctx,
    ngx_str_t *b64, u_char *dst);
static u_char *ngx_http_openbank_jwt_copy(ngx_http_openbank_jwt_ctx_t *ctx,
    const u_char *s, size_t len);
static int ngx_http_openbank_jwt_start_map(void *data);
static int ngx_http_openbank_jwt_end_map(void *data);
static int ngx_http_openbank_jwt_start_array(void *data);
static int ngx_http_openbank_jwt_end_array(void *data);
static int ngx_http_openbank_jwt_key(void *data, const unsigned char *key,
    size_t len);
static int ngx_http_openbank_jwt_str(void *data, const unsigned char *s,
    size_t len);
static int ngx_http_openbank_jwt_num(void *data, const char *s, size_t len);
static int ngx_http_openbank_jwt_null(void *data);
static int ngx_http_openbank_jwt_bool(void *data, int b);
static int ngx_http_openbank_jwt_scalar(ngx_http_openbank_jwt_ctx_t *ctx);
static int ngx_http_openbank_jwt_nest(ngx_http_openbank_jwt_ctx_t *ctx);
static int ngx_http_openbank_jwt_unnest(ngx_http_openbank_jwt_ctx_t *ctx);
static int ngx_http_openbank_jwt_open(ngx_http_openbank_jwt_ctx_t *ctx,
    ngx_uint_t nested);
static int ngx_http_openbank_jwt_close(ngx_http_openbank_jwt_ctx_t *ctx,
    ngx_uint_t nested);
static void *ngx_http_openbank_jwt_malloc(void *data, size_t size);
static void *ngx_http_openbank_jwt_realloc(void *data, void *ptr,
    size_t size);
static void ngx_http_openbank_jwt_free(void *data, void *ptr);
static EVP_MD_CTX *ngx_http_openbank_jwt_md_ctx(void);


static yajl_callbacks  ngx_http_openbank_jwt_callbacks = {
    ngx_http_openbank_jwt_null,
    ngx_http_openbank_jwt_bool,
    NULL,
    NULL,
    ngx_http_openbank_jwt_num,
    ngx_http_openbank_jwt_str,
    ngx_http_openbank_jwt_start_map,
    ngx_http_openbank_jwt_key,
    ngx_http_openbank_jwt_end_map,
    ngx_http_openbank_jwt_start_array,
    ngx_http_openbank_jwt_end_array
};


static EVP_MD      *ngx_http_openbank_jwt_sha256;
static EVP_MD_CTX  *ngx_http_openbank_jwt_mdctx;


/*
 * Splits and decodes a compact JWS, checks that the header and the claims
 * are JSON objects without duplicate members, and picks the members the
 * gateway uses, copied into the pool.  Nothing is trusted yet.
 */

ngx_int_t
ngx_http_openbank_jwt_parse(ngx_pool_t *pool, ngx_str_t *token,
    ngx_http_openbank_jwt_t *jwt, const char **err)
{
    u_char                       *dot1, *dot2, *last, *buf;
    size_t                        len;
    ngx_str_t                     header, claims, sig;
    ngx_http_openbank_jwt_ctx_t   ctx;

    ngx_memzero(jwt, sizeof(ngx_http_openbank_jwt_t));

    jwt->exp = NGX_HTTP_OPENBANK_JWT_NO_TIME;
    jwt->nbf = NGX_HTTP_OPENBANK_JWT_NO_TIME;
    jwt->iat = NGX_HTTP_OPENBANK_JWT_NO_TIME;

    *err = "is not a JWT";

    if (token->len == 0 || token->len > NGX_HTTP_OPENBANK_TOKEN_MAX) {
        *err = "is empty or too long";
        return NGX_ERROR;
    }

    last = token->data + token->len;

    dot1 = memchr(token->data, '.', token->len);
    if (dot1 == NULL) {
        return NGX_ERROR;
    }

    dot2 = memchr(dot1 + 1, '.', last - dot1 - 1);
    if (dot2 == NULL || memchr(dot2 + 1, '.', last - dot2 - 1) != NULL) {
        *err = "is not a JWS in compact form (three parts)";
        return NGX_ERROR;
    }

    jwt->signing_input.data = token->data;
    jwt->signing_input.len = dot2 - token->data;

    header.data = token->data;
    header.len = dot1 - token->data;
    claims.data = dot1 + 1;
    claims.len = dot2 - claims.data;
    sig.data = dot2 + 1;
    sig.len = last - sig.data;

    if (sig.len == 0) {
        *err = "has no signature";
        return NGX_ERROR;
    }

    if (ngx_base64_decoded_length(sig.len) > NGX_HTTP_OPENBANK_JWT_SIG_MAX) {
        *err = "has a signature that is too long";
        return NGX_ERROR;
    }

    /*
     * One buffer for the three parts decoded, and after them room for
     * the members kept: no more than the JSON they come from.
     */

    len = ngx_base64_decoded_length(header.len)
          + ngx_base64_decoded_length(claims.len);

    buf = ngx_pnalloc(pool, ngx_base64_decoded_length(sig.len) + 2 * len);
    if (buf == NULL) {
        *err = "out of memory";
        return NGX_ERROR;
    }

    jwt->signature.data = buf;

    if (ngx_http_openbank_decode_base64url(&jwt->signature, &sig) != NGX_OK) {
        *err = "has a signature that is not base64url";
        return NGX_ERROR;
    }

    buf += jwt->signature.len;

    ctx.pool = pool;
    ctx.jwt = jwt;
    ctx.string = NULL;
    ctx.time = NULL;
    ctx.cnf_x5t = 0;
    ctx.seen_cnf = 0;
    ctx.copy = buf + len;
    ctx.copy_end = ctx.copy + len;

    /* the header */

    ctx.header = 1;

    if (ngx_http_openbank_jwt_json(&ctx, &header, buf) != NGX_OK) {
        *err = ctx.err;
        return NGX_ERROR;
    }

    if (jwt->alg.data == NULL) {
        *err = "has no \"alg\"";
        return NGX_ERROR;
    }

    /* the claims */

    ctx.header = 0;

    if (ngx_http_openbank_jwt_json(&ctx, &claims,
                                   buf + ngx_base64_decoded_length(header.len))
        != NGX_OK)
    {
        *err = ctx.err;
        return NGX_ERROR;
    }

    jwt->has_exp = (jwt->exp != NGX_HTTP_OPENBANK_JWT_NO_TIME);
    jwt->has_nbf = (jwt->nbf != NGX_HTTP_OPENBANK_JWT_NO_TIME);
    jwt->has_iat = (jwt->iat != NGX_HTTP_OPENBANK_JWT_NO_TIME);

    *err = NULL;

    return NGX_OK;
}


/* one part: base64url, then a JSON object read by events */

static ngx_int_t
ngx_http_openbank_jwt_json(ngx_http_openbank_jwt_ctx_t *ctx, ngx_str_t *b64,
    u_char *dst)
{
    ngx_str_t          json;
    yajl_status        status;
    yajl_handle        yh;
    yajl_alloc_funcs   afs;

    if (b64->len == 0
        || ngx_base64_decoded_length(b64->len)
           > NGX_HTTP_OPENBANK_JWT_PART_MAX)
    {
        ctx->err = "has an empty or too long part";
        return NGX_ERROR;
    }

    json.data = dst;

    if (ngx_http_openbank_decode_base64url(&json, b64) != NGX_OK) {
        ctx->err = "has a part that is not base64url";
        return NGX_ERROR;
    }

    ctx->depth = 0;
    ctx->nmembers = 0;
    ctx->in_aud = 0;
    ctx->in_cnf = 0;
    ctx->kind = NGX_HTTP_OPENBANK_JWT_IGNORE;
    ctx->err = NULL;
    ctx->mem = ctx->yajl;

    afs.malloc = ngx_http_openbank_jwt_malloc;
    afs.realloc = ngx_http_openbank_jwt_realloc;
    afs.free = ngx_http_openbank_jwt_free;
    afs.ctx = ctx;

    yh = yajl_alloc(&ngx_http_openbank_jwt_callbacks, &afs, ctx);
    if (yh == NULL) {
        ctx->err = "out of memory";
        return NGX_ERROR;
    }

    status = yajl_parse(yh, json.data, json.len);

    if (status == yajl_status_ok) {
        status = yajl_complete_parse(yh);
    }

    yajl_free(yh);

    if (status != yajl_status_ok) {
        if (ctx->err == NULL) {
            ctx->err = "has a part that is not JSON";
        }

        return NGX_ERROR;
    }

    if (ctx->depth != 0) {
        ctx->err = "has a part that is not a JSON object";
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Into a map or an array below a claim: nothing may nest inside "aud" or
 * inside "cnf"'s "x5t#S256", and nothing deeper than the bound.
 */

static int
ngx_http_openbank_jwt_nest(ngx_http_openbank_jwt_ctx_t *ctx)
{
    if (ctx->depth > 1
        && (ctx->in_aud
            || (ctx->in_cnf && ctx->depth == 2 && ctx->cnf_x5t)))
    {
        ctx->err = "has a member of the wrong type";
        return 0;
    }

    if (++ctx->depth > NGX_HTTP_OPENBANK_JWT_DEPTH_MAX) {
        ctx->err = "nests too deep";
        return 0;
    }

    return 1;
}


/*
 * A map (nested is CNF) or an array (AUD): the part itself is a map; in
 * a claim, the one claim that may hold it ("cnf" a map, "aud" an array)
 * enters it, a claim we do not read skips it, and any other claim is
 * refused as not of its type.
 */

static int
ngx_http_openbank_jwt_open(ngx_http_openbank_jwt_ctx_t *ctx,
    ngx_uint_t nested)
{
    if (ctx->depth == 0) {
        if (nested != NGX_HTTP_OPENBANK_JWT_CNF) {
            ctx->err = "has a part that is not a JSON object";
            return 0;
        }

        ctx->depth = 1;
        ctx->kind = NGX_HTTP_OPENBANK_JWT_IGNORE;
        return 1;
    }

    if (ctx->depth == 1 && ctx->kind != NGX_HTTP_OPENBANK_JWT_IGNORE) {

        if (ctx->kind != nested) {
            return ngx_http_openbank_jwt_scalar(ctx);
        }

        if (nested == NGX_HTTP_OPENBANK_JWT_CNF) {
            ctx->in_cnf = 1;
            ctx->cnf_x5t = 0;
            ctx->seen_cnf = 0;

        } else {
            ctx->in_aud = 1;
        }
    }

    return ngx_http_openbank_jwt_nest(ctx);
}


/* the end of a map or an array: "cnf" must have had its "x5t#S256" */

static int
ngx_http_openbank_jwt_close(ngx_http_openbank_jwt_ctx_t *ctx,
    ngx_uint_t nested)
{
    if (ctx->depth == 2 && nested == NGX_HTTP_OPENBANK_JWT_CNF
        && ctx->in_cnf)
    {
        ctx->in_cnf = 0;

        if (ctx->jwt->x5t.data == NULL) {
            ctx->err = "has a \"cnf\" without a string \"x5t#S256\"";
            return 0;
        }

        ctx->jwt->has_cnf = 1;
    }

    if (ctx->depth == 2 && nested == NGX_HTTP_OPENBANK_JWT_AUD) {
        ctx->in_aud = 0;
    }

    return ngx_http_openbank_jwt_unnest(ctx);
}


/* out of a map or an array: back at the top level, the next claim */

static int
ngx_http_openbank_jwt_unnest(ngx_http_openbank_jwt_ctx_t *ctx)
{
    ctx->depth--;

    if (ctx->depth == 1) {
        ctx->kind = NGX_HTTP_OPENBANK_JWT_IGNORE;
    }

    return 1;
}


static int
ngx_http_openbank_jwt_start_map(void *data)
{
    return ngx_http_openbank_jwt_open(data, NGX_HTTP_OPENBANK_JWT_CNF);
}


static int
ngx_http_openbank_jwt_end_map(void *data)
{
    return ngx_http_openbank_jwt_close(data, NGX_HTTP_OPENBANK_JWT_CNF);
}


static int
ngx_http_openbank_jwt_start_array(void *data)
{
    return ngx_http_openbank_jwt_open(data, NGX_HTTP_OPENBANK_JWT_AUD);
}


static int
ngx_http_openbank_jwt_end_array(void *data)
{
    return ngx_http_openbank_jwt_close(data, NGX_HTTP_OPENBANK_JWT_AUD);
}


static int
ngx_http_openbank_jwt_key(void *data, const unsigned char *key, size_t len)
{
    ngx_http_openbank_jwt_ctx_t  *ctx = data;

    ngx_uint_t                i;
    ngx_str_t                *m;
    ngx_http_openbank_jwt_t  *jwt;

    if (ctx->in_cnf && ctx->depth == 2) {
        ctx->cnf_x5t = (len == 8 && ngx_strncmp(key, "x5t#S256", 8) == 0);

        if (ctx->cnf_x5t) {
            if (ctx->seen_cnf) {
                ctx->err = "has a duplicate member";
                return 0;
            }

            ctx->seen_cnf = 1;
        }

        return 1;
    }

    if (ctx->depth != 1) {
        return 1;
    }

    /* a member twice: refused */

    for (i = 0; i < ctx->nmembers; i++) {
        m = &ctx->members[i];

        if (m->len == len && ngx_memcmp(m->data, key, len) == 0) {
            ctx->err = "has a duplicate member";
            return 0;
        }
    }

    if (ctx->nmembers == NGX_HTTP_OPENBANK_JWT_MEMBERS_MAX) {
        ctx->err = "has too many members";
        return 0;
    }

    /* yajl's buffer changes: keep a copy */

    m = &ctx->members[ctx->nmembers++];
    m->data = ngx_http_openbank_jwt_copy(ctx, key, len);
    if (m->data == NULL) {
        return 0;
    }

    m->len = len;

    jwt = ctx->jwt;
    ctx->kind = NGX_HTTP_OPENBANK_JWT_STRING;
    ctx->string = NULL;
    ctx->time = NULL;

#define ngx_http_openbank_jwt_is(name)                                       \
    (len == sizeof(name) - 1 && ngx_strncmp(key, name, len) == 0)

    if (ctx->header) {
        if (ngx_http_openbank_jwt_is("alg")) {
            ctx->string = &jwt->alg;

        } else if (ngx_http_openbank_jwt_is("kid")) {
            ctx->string = &jwt->kid;

        } else if (ngx_http_openbank_jwt_is("typ")) {
            ctx->string = &jwt->typ;

        } else if (ngx_http_openbank_jwt_is("crit")) {
            ctx->err = "has a \"crit\" header the gateway does not "
                       "understand";
            return 0;

        } else {
            ctx->kind = NGX_HTTP_OPENBANK_JWT_IGNORE;
        }

        return 1;
    }

    if (ngx_http_openbank_jwt_is("iss")) {
        ctx->string = &jwt->iss;

    } else if (ngx_http_openbank_jwt_is("sub")) {
        ctx->string = &jwt->sub;

    } else if (ngx_http_openbank_jwt_is("client_id")) {
        ctx->string = &jwt->client_id;

    } else if (ngx_http_openbank_jwt_is("jti")) {
        ctx->string = &jwt->jti;

    } else if (ngx_http_openbank_jwt_is("scope")) {
        ctx->string = &jwt->scope;

    } else if (ngx_http_openbank_jwt_is("exp")) {
        ctx->kind = NGX_HTTP_OPENBANK_JWT_TIME;
        ctx->time = &jwt->exp;

    } else if (ngx_http_openbank_jwt_is("nbf")) {
        ctx->kind = NGX_HTTP_OPENBANK_JWT_TIME;
        ctx->time = &jwt->nbf;

    } else if (ngx_http_openbank_jwt_is("iat")) {
        ctx->kind = NGX_HTTP_OPENBANK_JWT_TIME;
        ctx->time = &jwt->iat;

    } else if (ngx_http_openbank_jwt_is("aud")) {
        ctx->kind = NGX_HTTP_OPENBANK_JWT_AUD;

    } else if (ngx_http_openbank_jwt_is("cnf")) {
        ctx->kind = NGX_HTTP_OPENBANK_JWT_CNF;

    } else {
        ctx->kind = NGX_HTTP_OPENBANK_JWT_IGNORE;
    }

#undef ngx_http_openbank_jwt_is

    return 1;
}


static int
ngx_http_openbank_jwt_str(void *data, const unsigned char *s, size_t len)
{
    ngx_http_openbank_jwt_ctx_t  *ctx = data;

    ngx_str_t  *out;

    out = NULL;

    if (ctx->depth == 0) {
        ctx->err = "has a part that is not a JSON object";
        return 0;
    }

    if (ctx->in_aud && ctx->depth == 2) {
        if (ctx->jwt->naud == NGX_HTTP_OPENBANK_JWT_AUD_MAX) {
            ctx->err = "has an \"aud\" of too many values";
            return 0;
        }

        out = &ctx->jwt->aud[ctx->jwt->naud++];

    } else if (ctx->in_cnf && ctx->depth == 2) {
        if (!ctx->cnf_x5t) {
            return 1;
        }

        out = &ctx->jwt->x5t;

    } else if (ctx->depth == 1) {
        switch (ctx->kind) {

        case NGX_HTTP_OPENBANK_JWT_STRING:
            out = ctx->string;
            break;

        case NGX_HTTP_OPENBANK_JWT_AUD:
            ctx->jwt->naud = 1;
            out = &ctx->jwt->aud[0];
            break;

        case NGX_HTTP_OPENBANK_JWT_IGNORE:
            return 1;

        default:
            return ngx_http_openbank_jwt_scalar(ctx);
        }

    } else {
        return 1;
    }

    out->data = ngx_http_openbank_jwt_copy(ctx, s, len);
    if (out->data == NULL) {
        return 0;
    }

    out->len = len;

    return 1;
}


/*
 * A member kept (yajl's buffer changes): "len" bytes from "s" and a null,
 * in the room after the decoded parts, else in the pool.
 */

static u_char *
ngx_http_openbank_jwt_copy(ngx_http_openbank_jwt_ctx_t *ctx,
    const u_char *s, size_t len)
{
    u_char  *p;

    if ((size_t) (ctx->copy_end - ctx->copy) > len) {
        p = ctx->copy;
        ctx->copy += len + 1;

    } else {
        p = ngx_pnalloc(ctx->pool, len + 1);
        if (p == NULL) {
            ctx->err = "out of memory";
            return NULL;
        }
    }

    ngx_memcpy(p, s, len);
    p[len] = '\0';

    return p;
}


/* a NumericDate: a plain integer (no sign, fraction or exponent) */

static int
ngx_http_openbank_jwt_num(void *data, const char *s, size_t len)
{
    ngx_http_openbank_jwt_ctx_t  *ctx = data;

    size_t   i;
    int64_t  v;

    if (ctx->depth == 1 && ctx->kind == NGX_HTTP_OPENBANK_JWT_TIME) {

        if (len == 0 || len > 12) {
            ctx->err = "has a time claim that is not a plain integer";
            return 0;
        }

        for (v = 0, i = 0; i < len; i++) {
            if (s[i] < '0' || s[i] > '9') {
                ctx->err = "has a time claim that is not a plain integer";
                return 0;
            }

            v = v * 10 + (s[i] - '0');
        }

        if (v > NGX_HTTP_OPENBANK_JWT_TIME_MAX) {
            ctx->err = "has a time claim that is not a plain integer";
            return 0;
        }

        *ctx->time = v;

        return 1;
    }

    return ngx_http_openbank_jwt_scalar(ctx);
}


static int
ngx_http_openbank_jwt_null(void *data)
{
    return ngx_http_openbank_jwt_scalar(data);
}


static int
ngx_http_openbank_jwt_bool(void *data, int b)
{
    return ngx_http_openbank_jwt_scalar(data);
}


/* a value the gateway does not read: fine, unless it sits where one is */

static int
ngx_http_openbank_jwt_scalar(ngx_http_openbank_jwt_ctx_t *ctx)
{
    if (ctx->depth == 0) {
        ctx->err = "has a part that is not a JSON object";
        return 0;
    }

    if ((ctx->depth == 1 && ctx->kind != NGX_HTTP_OPENBANK_JWT_IGNORE)
        || (ctx->depth == 2 && ctx->in_aud)
        || (ctx->depth == 2 && ctx->in_cnf && ctx->cnf_x5t))
    {
        ctx->err = "has a member of the wrong type";
        return 0;
    }

    return 1;
}


/*
 * yajl's memory: from the context's room on the stack while it lasts,
 * then from the pool; freed with the request (or the stack frame).
 */

static void *
ngx_http_openbank_jwt_malloc(void *data, size_t size)
{
    ngx_http_openbank_jwt_ctx_t  *ctx = data;

    size_t  *p, n;

    n = ngx_align(sizeof(size_t) + size, sizeof(size_t));

    if (n >= sizeof(size_t) + size
        && (size_t) (ctx->yajl + NGX_HTTP_OPENBANK_JWT_YAJL_MEM - ctx->mem)
           >= n)
    {
        p = (size_t *) ctx->mem;
        ctx->mem += n;

    } else {
        p = ngx_palloc(ctx->pool, sizeof(size_t) + size);
        if (p == NULL) {
            return NULL;
        }
    }

    *p = size;

    return p + 1;
}


static void *
ngx_http_openbank_jwt_realloc(void *data, void *ptr, size_t size)
{
    size_t  *old, *p;

    if (ptr == NULL) {
        return ngx_http_openbank_jwt_malloc(data, size);
    }

    old = (size_t *) ptr - 1;

    if (*old >= size) {
        return ptr;
    }

    p = ngx_http_openbank_jwt_malloc(data, size);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, ptr, *old);

    return p;
}


static void
ngx_http_openbank_jwt_free(void *data, void *ptr)
{
}


/*
 * Verifies the signature with "pkey" for "alg", which the caller has
 * already pinned to the key's type.
 */

ngx_int_t
ngx_http_openbank_jwt_verify(ngx_http_openbank_jwt_t *jwt, EVP_PKEY *pkey,
    ngx_uint_t type, ngx_str_t *alg, EVP_PKEY_CTX *ready)
{
    int            rc, len;
    u_char        *sig, der[80], *p, digest[EVP_MAX_MD_SIZE];
    unsigned int   digest_len;
    size_t         sig_len;
    BIGNUM        *r, *s;
    ECDSA_SIG     *ecsig;
    EVP_MD_CTX    *mdctx;
    EVP_PKEY_CTX  *pctx;
    const EVP_MD  *md;

    mdctx = ngx_http_openbank_jwt_md_ctx();
    if (mdctx == NULL) {
        return NGX_ERROR;
    }

    md = ngx_http_openbank_jwt_sha256;
    sig = jwt->signature.data;
    sig_len = jwt->signature.len;

    if (alg->len == 5 && ngx_strncmp(alg->data, "ES256", 5) == 0) {

        if (type != NGX_HTTP_OPENBANK_KEY_EC_P256 || sig_len != 64) {
            return NGX_DECLINED;
        }

        /* JWS carries r || s (RFC 7518 3.4); OpenSSL wants DER */

        ecsig = ECDSA_SIG_new();
        r = BN_bin2bn(sig, 32, NULL);
        s = BN_bin2bn(sig + 32, 32, NULL);

        if (ecsig == NULL || r == NULL || s == NULL
            || ECDSA_SIG_set0(ecsig, r, s) != 1)
        {
            ECDSA_SIG_free(ecsig);
            BN_free(r);
            BN_free(s);
            return NGX_ERROR;
        }

        p = der;
        len = i2d_ECDSA_SIG(ecsig, &p);
        ECDSA_SIG_free(ecsig);

        if (len <= 0 || len > (int) sizeof(der)) {
            return NGX_ERROR;
        }

        sig = der;
        sig_len = len;

    } else if (alg->len == 5
               && (ngx_strncmp(alg->data, "PS256", 5) == 0
                   || ngx_strncmp(alg->data, "RS256", 5) == 0))
    {
        if (type != NGX_HTTP_OPENBANK_KEY_RSA) {
            return NGX_DECLINED;
        }

    } else if (alg->len == 5 && ngx_strncmp(alg->data, "EdDSA", 5) == 0) {

        if (type != NGX_HTTP_OPENBANK_KEY_ED25519 || sig_len != 64) {
            return NGX_DECLINED;
        }

        md = NULL;

    } else {
        return NGX_DECLINED;
    }

    /*
     * A key context initialized once verifies a digest at the cost of the
     * RSA or ECDSA operation alone: an initialization per call would make
     * OpenSSL 3 fetch the algorithm and build a context every time.
     */

    if (ready) {
        if (EVP_DigestInit_ex2(mdctx, md, NULL) != 1
            || EVP_DigestUpdate(mdctx, jwt->signing_input.data,
                                jwt->signing_input.len)
               != 1
            || EVP_DigestFinal_ex(mdctx, digest, &digest_len) != 1)
        {
            ERR_clear_error();
            return NGX_ERROR;
        }

        rc = EVP_PKEY_verify(ready, sig, sig_len, digest, digest_len);

        ERR_clear_error();

        return (rc == 1) ? NGX_OK : NGX_DECLINED;
    }

    pctx = NULL;

    if (EVP_DigestVerifyInit(mdctx, &pctx, md, NULL, pkey) != 1) {
        ERR_clear_error();
        return NGX_ERROR;
    }

    if (alg->data[0] == 'P'
        && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1
            || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST)
               != 1))
    {
        ERR_clear_error();
        return NGX_ERROR;
    }

    rc = EVP_DigestVerify(mdctx, sig, sig_len, jwt->signing_input.data,
                          jwt->signing_input.len);

    ERR_clear_error();

    return (rc == 1) ? NGX_OK : NGX_DECLINED;
}


/*
 * A verification context for a key of the gateway, initialized once (PS256
 * or ES256 over a SHA-256 digest; Ed25519 signs the message itself).
 */

EVP_PKEY_CTX *
ngx_http_openbank_jwt_verifier(EVP_PKEY *pkey, ngx_uint_t type)
{
    EVP_PKEY_CTX  *pctx;

    if (type != NGX_HTTP_OPENBANK_KEY_RSA
        && type != NGX_HTTP_OPENBANK_KEY_EC_P256)
    {
        return NULL;
    }

    if (ngx_http_openbank_jwt_md_ctx() == NULL) {
        return NULL;
    }

    pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (pctx == NULL) {
        ERR_clear_error();
        return NULL;
    }

    if (EVP_PKEY_verify_init(pctx) != 1
        || EVP_PKEY_CTX_set_signature_md(pctx, ngx_http_openbank_jwt_sha256)
           != 1
        || (type == NGX_HTTP_OPENBANK_KEY_RSA
            && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING)
                != 1
                || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
                                                    RSA_PSS_SALTLEN_DIGEST)
                   != 1)))
    {
        EVP_PKEY_CTX_free(pctx);
        ERR_clear_error();
        return NULL;
    }

    return pctx;
}


/*
 * Signs "claims" (a JSON object) with the key: out is the compact JWS,
 * allocated in the pool.
 */

ngx_int_t
ngx_http_openbank_jwt_sign(ngx_pool_t *pool,
    ngx_http_openbank_signing_key_t *key, ngx_str_t *claims, ngx_str_t *out)
{
    u_char        *p, *input;
    u_char         sig[1024], raw[64];
    size_t         sig_len, len, input_len;
    ngx_str_t      src, dst;
    ECDSA_SIG     *ecsig;
    EVP_MD_CTX    *mdctx;
    EVP_PKEY_CTX  *pctx;
    const BIGNUM  *r, *s;
    const u_char  *q;

    mdctx = ngx_http_openbank_jwt_md_ctx();
    if (mdctx == NULL) {
        return NGX_ERROR;
    }

    len = sizeof("{\"alg\":\"\",\"typ\":\"at+jwt\",\"kid\":\"\"}") - 1
          + key->alg.len + key->kid.len;

    input_len = ngx_base64_encoded_length(len) + 1
                + ngx_base64_encoded_length(claims->len);

    out->data = ngx_pnalloc(pool, input_len + 1
                            + ngx_base64_encoded_length(sizeof(sig)));
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    input = ngx_pnalloc(pool, len);
    if (input == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(input, "{\"alg\":\"%V\",\"typ\":\"at+jwt\",\"kid\":\"%V\"}",
                    &key->alg, &key->kid);

    src.data = input;
    src.len = p - input;
    dst.data = out->data;
    ngx_encode_base64url(&dst, &src);

    p = out->data + dst.len;
    *p++ = '.';

    dst.data = p;
    ngx_encode_base64url(&dst, claims);
    p += dst.len;

    input_len = p - out->data;

    pctx = NULL;

    if (EVP_DigestSignInit(mdctx, &pctx,
                           key->type == NGX_HTTP_OPENBANK_KEY_ED25519
                           ? NULL : ngx_http_openbank_jwt_sha256,
                           NULL, key->pkey)
        != 1)
    {
        goto failed;
    }

    if (key->type == NGX_HTTP_OPENBANK_KEY_RSA
        && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1
            || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST)
               != 1))
    {
        goto failed;
    }

    sig_len = sizeof(sig);

    if (EVP_DigestSign(mdctx, sig, &sig_len, out->data, input_len) != 1) {
        goto failed;
    }

    src.data = sig;
    src.len = sig_len;

    if (key->type == NGX_HTTP_OPENBANK_KEY_EC_P256) {
        q = sig;
        ecsig = d2i_ECDSA_SIG(NULL, &q, sig_len);
        if (ecsig == NULL) {
            goto failed;
        }

        ECDSA_SIG_get0(ecsig, &r, &s);

        if (BN_bn2binpad(r, raw, 32) != 32
            || BN_bn2binpad(s, raw + 32, 32) != 32)
        {
            ECDSA_SIG_free(ecsig);
            goto failed;
        }

        ECDSA_SIG_free(ecsig);

        src.data = raw;
        src.len = 64;
    }

    *p++ = '.';
    dst.data = p;
    ngx_encode_base64url(&dst, &src);
    p += dst.len;

    out->len = p - out->data;

    return NGX_OK;

failed:

    ERR_clear_error();

    return NGX_ERROR;
}


/* 16 random bytes, base64url: a jti */

ngx_int_t
ngx_http_openbank_random_id(u_char *out)
{
    u_char     rnd[16];
    ngx_str_t  src, dst;

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        ERR_clear_error();
        return NGX_ERROR;
    }

    src.data = rnd;
    src.len = sizeof(rnd);
    dst.data = out;
    ngx_encode_base64url(&dst, &src);

    return NGX_OK;
}


static EVP_MD_CTX *
ngx_http_openbank_jwt_md_ctx(void)
{
    if (ngx_http_openbank_jwt_mdctx == NULL) {
        ngx_http_openbank_jwt_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
        ngx_http_openbank_jwt_mdctx = EVP_MD_CTX_new();

        if (ngx_http_openbank_jwt_sha256 == NULL
            || ngx_http_openbank_jwt_mdctx == NULL)
        {
            EVP_MD_free(ngx_http_openbank_jwt_sha256);
            EVP_MD_CTX_free(ngx_http_openbank_jwt_mdctx);
            ngx_http_openbank_jwt_sha256 = NULL;
            ngx_http_openbank_jwt_mdctx = NULL;
            return NULL;
        }

    } else {
        EVP_MD_CTX_reset(ngx_http_openbank_jwt_mdctx);
    }

    return ngx_http_openbank_jwt_mdctx;
}
