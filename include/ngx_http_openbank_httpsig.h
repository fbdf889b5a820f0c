
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * HTTP message signatures (RFC 9421) without nginx's request: structured
 * fields (RFC 8941), the signature base, the algorithms.  Nothing here
 * allocates or calls into nginx's core, so the fuzz targets and the unit
 * driver of the tests link it alone with OpenSSL.
 */


#ifndef _NGX_HTTP_OPENBANK_HTTPSIG_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_HTTPSIG_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <openssl/evp.h>


/* bounds of what a structured field may hold: beyond them it is refused */

#define NGX_HTTP_OPENBANK_SF_MAX_ITEMS    24    /* members of an inner list */
#define NGX_HTTP_OPENBANK_SF_MAX_PARAMS   8     /* parameters of an item */
#define NGX_HTTP_OPENBANK_SF_MAX_MEMBERS  16    /* members of a dictionary */

#define NGX_HTTP_OPENBANK_SF_INTEGER      1
#define NGX_HTTP_OPENBANK_SF_DECIMAL      2
#define NGX_HTTP_OPENBANK_SF_STRING       3
#define NGX_HTTP_OPENBANK_SF_TOKEN        4
#define NGX_HTTP_OPENBANK_SF_BYTES        5
#define NGX_HTTP_OPENBANK_SF_BOOLEAN      6

#define NGX_HTTP_OPENBANK_SIG_ED25519     1
#define NGX_HTTP_OPENBANK_SIG_ECDSA_P256  2
#define NGX_HTTP_OPENBANK_SIG_RSA_PSS     3
#define NGX_HTTP_OPENBANK_SIG_RSA_V1_5    4
#define NGX_HTTP_OPENBANK_SIG_HMAC        5
#define NGX_HTTP_OPENBANK_SIG_SM2         6

#define NGX_HTTP_OPENBANK_SIG_MAX_LEN     512   /* RSA 4096 */


/*
 * A bare item.  Strings keep their escapes ("raw" is what was between
 * the quotes, which is also their serialization), tokens and decimals
 * their text, byte sequences their base64 text.
 */

typedef struct {
    ngx_uint_t                        type;
    ngx_str_t                         raw;
    int64_t                           integer;  /* integer, boolean */
} ngx_http_openbank_sf_bare_t;


typedef struct {
    ngx_str_t                         key;
    ngx_http_openbank_sf_bare_t       value;
} ngx_http_openbank_sf_param_t;


typedef struct {
    ngx_http_openbank_sf_bare_t       value;
    ngx_uint_t                        nparams;
    ngx_http_openbank_sf_param_t      params[NGX_HTTP_OPENBANK_SF_MAX_PARAMS];
} ngx_http_openbank_sf_item_t;


/* a dictionary member: an item, or an inner list with its parameters */

typedef struct {
    ngx_uint_t                        inner;
    ngx_uint_t                        nitems;
    ngx_http_openbank_sf_item_t       items[NGX_HTTP_OPENBANK_SF_MAX_ITEMS];
    ngx_uint_t                        nparams;
    ngx_http_openbank_sf_param_t      params[NGX_HTTP_OPENBANK_SF_MAX_PARAMS];
} ngx_http_openbank_sf_member_t;


/* an output buffer; with start == NULL it only counts */

typedef struct {
    u_char                           *start;
    u_char                           *pos;
    u_char                           *end;
    size_t                            len;
    ngx_uint_t                        overflow;
} ngx_http_openbank_sbuf_t;


/*
 * The message a signature base is built from.  For a request, status is
 * 0; for a response, status is set and the request fields serve the
 * components with ";req".  header() appends the named field's value
 * (lowercase name; field lines combined with ", ") and returns NGX_OK,
 * or NGX_DECLINED when the message has no such field.
 */

typedef struct ngx_http_openbank_msg_s  ngx_http_openbank_msg_t;

struct ngx_http_openbank_msg_s {
    ngx_uint_t                        status;
    ngx_str_t                         method;
    ngx_str_t                         scheme;      /* lowercase */
    ngx_str_t                         authority;   /* normalized */
    ngx_str_t                         path;        /* as sent, never empty */
    ngx_str_t                         query;       /* without "?" */
    ngx_uint_t                        has_query;
    ngx_str_t                         request_target;
    ngx_int_t                       (*header)(ngx_http_openbank_msg_t *msg,
                                          ngx_uint_t req, ngx_str_t *name,
                                          ngx_http_openbank_sbuf_t *b);
    void                             *data;
};


/* what a signature's parameters said, once checked */

typedef struct {
    int64_t                           created;
    int64_t                           expires;     /* -1: absent */
    ngx_str_t                         keyid;       /* raw */
    ngx_str_t                         nonce;       /* raw */
    ngx_str_t                         alg;         /* raw, may be empty */
    ngx_str_t                         tag;
    ngx_uint_t                        has_created;
} ngx_http_openbank_sig_params_t;


ngx_int_t ngx_http_openbank_sf_dict_get(u_char *p, u_char *last,
    ngx_str_t *key, ngx_http_openbank_sf_member_t *out, ngx_uint_t *others);
ngx_int_t ngx_http_openbank_sf_parse_dict(u_char *p, u_char *last);

void ngx_http_openbank_sbuf_add(ngx_http_openbank_sbuf_t *b, u_char *p,
    size_t len);
void ngx_http_openbank_sbuf_str(ngx_http_openbank_sbuf_t *b,
    const char *s);

ngx_int_t ngx_http_openbank_sig_params(ngx_http_openbank_sf_member_t *m,
    ngx_http_openbank_sig_params_t *sp, const char **err);
ngx_int_t ngx_http_openbank_sig_base(ngx_http_openbank_msg_t *msg,
    ngx_http_openbank_sf_member_t *m, ngx_http_openbank_sbuf_t *b,
    const char **err);
ngx_int_t ngx_http_openbank_sig_covers(ngx_http_openbank_sf_member_t *m,
    const char *name);

ngx_int_t ngx_http_openbank_base64_decode(u_char *dst, size_t size,
    ngx_str_t *src, size_t *len);
size_t ngx_http_openbank_base64_encode(u_char *dst, u_char *src,
    size_t len);

ngx_uint_t ngx_http_openbank_sig_alg(ngx_str_t *name);
const char *ngx_http_openbank_sig_alg_name(ngx_uint_t alg);
EVP_MD_CTX *ngx_http_openbank_sig_verifier(ngx_uint_t alg, EVP_PKEY *pkey);
EVP_MD_CTX *ngx_http_openbank_sig_signer(ngx_uint_t alg, EVP_PKEY *pkey);
ngx_int_t ngx_http_openbank_sig_verify(ngx_uint_t alg, EVP_PKEY *pkey,
    EVP_MD_CTX *ready, ngx_str_t *secret, u_char *base, size_t len,
    u_char *sig, size_t siglen);
ngx_int_t ngx_http_openbank_sig_sign(ngx_uint_t alg, EVP_PKEY *pkey,
    EVP_MD_CTX *ready, ngx_str_t *secret, u_char *base, size_t len,
    u_char *sig, size_t *siglen);


const EVP_MD *ngx_http_openbank_httpsig_md(ngx_uint_t sha512);


#endif /* _NGX_HTTP_OPENBANK_HTTPSIG_H_INCLUDED_ */
