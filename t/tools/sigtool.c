
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The module's RFC 9421 code (ngx_http_openbank_httpsig.c) driven from
 * the command line, for the tests (RFC 9421 Appendix B) and the docs:
 *
 *   sigtool base   MSG SIGNATURE-INPUT LABEL
 *   sigtool verify MSG SIGNATURE-INPUT SIGNATURE LABEL ALG KEY
 *   sigtool sign   MSG SIGNATURE-INPUT LABEL ALG KEY
 *
 * MSG is a text file of lines "method M", "scheme S", "authority A",
 * "target /path?query", "status N", "header Name: value"; with a
 * status, the request lines describe the request it answers.  KEY is a
 * PEM file, or "hmac:FILE" with the secret in base64.
 * Exit status: 0 good, 1 the signature does not verify, 2 refused.
 */


#include <ngx_http_openbank_httpsig.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/pem.h>
#include <openssl/sha.h>


#define MAX_HEADERS  64


typedef struct {
    char   *name;
    char   *value;
} header_t;


static header_t    headers[MAX_HEADERS];
static int         nheaders;
static char        target[8192];


static ngx_int_t
msg_header(ngx_http_openbank_msg_t *msg, ngx_uint_t req, ngx_str_t *name,
    ngx_http_openbank_sbuf_t *b)
{
    int     i, n;
    char   *v, *e;

    n = 0;

    for (i = 0; i < nheaders; i++) {
        if (strlen(headers[i].name) != name->len
            || strncasecmp(headers[i].name, (char *) name->data, name->len))
        {
            continue;
        }

        v = headers[i].value;
        while (*v == ' ' || *v == '\t') {
            v++;
        }

        e = v + strlen(v);
        while (e > v && (e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }

        if (n++) {
            ngx_http_openbank_sbuf_str(b, ", ");
        }

        ngx_http_openbank_sbuf_add(b, (u_char *) v, e - v);
    }

    return n ? NGX_OK : NGX_DECLINED;
}


static void
set(ngx_str_t *s, char *v)
{
    s->data = (u_char *) strdup(v);
    s->len = strlen(v);
}


static int
load_msg(const char *file, ngx_http_openbank_msg_t *msg)
{
    FILE   *f;
    char   *q, line[8192];
    size_t  len;

    f = fopen(file, "r");
    if (f == NULL) {
        return -1;
    }

    memset(msg, 0, sizeof(*msg));
    set(&msg->scheme, "https");
    set(&msg->path, "/");
    msg->header = msg_header;

    while (fgets(line, sizeof(line), f)) {
        len = strlen(line);
        if (len && line[len - 1] == '\n') {
            line[--len] = '\0';
        }

        if (strncmp(line, "method ", 7) == 0) {
            set(&msg->method, line + 7);

        } else if (strncmp(line, "scheme ", 7) == 0) {
            set(&msg->scheme, line + 7);

        } else if (strncmp(line, "authority ", 10) == 0) {
            set(&msg->authority, line + 10);

        } else if (strncmp(line, "status ", 7) == 0) {
            msg->status = atoi(line + 7);

        } else if (strncmp(line, "target ", 7) == 0) {
            snprintf(target, sizeof(target), "%s", line + 7);
            set(&msg->request_target, target);
            q = strchr(target, '?');
            if (q) {
                *q = '\0';
                msg->has_query = 1;
                set(&msg->query, q + 1);
            }
            set(&msg->path, target);

        } else if (strncmp(line, "header ", 7) == 0
                   && nheaders < MAX_HEADERS)
        {
            q = strchr(line + 7, ':');
            if (q == NULL) {
                continue;
            }

            *q = '\0';
            headers[nheaders].name = strdup(line + 7);
            headers[nheaders].value = strdup(q + 1);
            nheaders++;
        }
    }

    fclose(f);

    return 0;
}


static EVP_PKEY *
load_key(const char *file, int private, ngx_str_t *secret)
{
    FILE      *f;
    BIO       *bio;
    char       text[1024];
    size_t     n;
    EVP_PKEY  *pkey;
    ngx_str_t  b64;

    if (strncmp(file, "hmac:", 5) == 0) {
        f = fopen(file + 5, "r");
        if (f == NULL) {
            return NULL;
        }

        n = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);

        while (n && (text[n - 1] == '\n' || text[n - 1] == '\r')) {
            n--;
        }

        b64.data = (u_char *) text;
        b64.len = n;
        secret->data = malloc(n);

        if (ngx_http_openbank_base64_decode(secret->data, n, &b64,
                                            &secret->len)
            != NGX_OK)
        {
            return NULL;
        }

        return EVP_PKEY_new();
    }

    bio = BIO_new_file(file, "r");
    if (bio == NULL) {
        return NULL;
    }

    pkey = private ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
                   : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);

    BIO_free(bio);

    if (pkey == NULL && !private) {
        bio = BIO_new_file(file, "r");
        pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        BIO_free(bio);
    }

    return pkey;
}


/*
 * sigtool bench MSG N ALG KEY KEYID CREATED PREFIX SUFFIX: N requests of
 * MSG for the benchmark, each with the nonce "b0000001", "b0000002", ...
 * and the body PREFIX nonce SUFFIX, one "nonce digest signature" line
 * each (the body's sha-256 and the signature in base64).  The lines have
 * one length, so that wrk finds line i without an index, and the bodies
 * end differently, so that wrk's strings do not collide in LuaJIT's
 * string table (bench/lib/presigned.lua).
 */

static int
bench(int argc, char **argv)
{
    long                            i, n;
    size_t                          siglen, len;
    ngx_str_t                       label, secret, name;
    ngx_uint_t                      alg, others;
    EVP_PKEY                       *pkey;
    const char                     *err;
    ngx_http_openbank_msg_t         msg;
    ngx_http_openbank_sbuf_t        b;
    ngx_http_openbank_sf_member_t   m;
    char                            nonce[32], input[1024], body[4096];
    char                            digest[128];
    u_char                          md[SHA256_DIGEST_LENGTH];
    u_char                          sig[NGX_HTTP_OPENBANK_SIG_MAX_LEN];
    u_char                          out[2 * NGX_HTTP_OPENBANK_SIG_MAX_LEN];
    static u_char                   base[65536];

    if (argc != 10 || load_msg(argv[2], &msg) != 0
        || nheaders == MAX_HEADERS)
    {
        fprintf(stderr, "usage: sigtool bench MSG N ALG KEY KEYID CREATED"
                        " PREFIX SUFFIX\n");
        return 2;
    }

    n = atol(argv[3]);
    name.data = (u_char *) argv[4];
    name.len = strlen(argv[4]);
    alg = ngx_http_openbank_sig_alg(&name);
    secret.len = 0;
    pkey = load_key(argv[5], 1, &secret);

    if (alg == 0 || pkey == NULL || n < 1 || n > 9999999) {
        fprintf(stderr, "bad algorithm, key or count\n");
        return 2;
    }

    label.data = (u_char *) "sig";
    label.len = 3;

    headers[nheaders].name = "Content-Digest";
    headers[nheaders].value = digest;
    nheaders++;

    for (i = 1; i <= n; i++) {
        snprintf(nonce, sizeof(nonce), "b%07ld", i);

        len = snprintf(body, sizeof(body), "%s%s%s", argv[8], nonce, argv[9]);
        if (len >= sizeof(body)) {
            fprintf(stderr, "body too long\n");
            return 2;
        }

        SHA256((u_char *) body, len, md);
        len = ngx_http_openbank_base64_encode(out, md, sizeof(md));
        snprintf(digest, sizeof(digest), "sha-256=:%.*s:", (int) len, out);

        snprintf(input, sizeof(input),
                 "sig=(\"@method\" \"@target-uri\" \"content-digest\")"
                 ";created=%s;keyid=\"%s\";nonce=\"%s\"",
                 argv[7], argv[6], nonce);

        if (ngx_http_openbank_sf_dict_get((u_char *) input,
                                          (u_char *) input + strlen(input),
                                          &label, &m, &others)
            != NGX_OK)
        {
            return 2;
        }

        memset(&b, 0, sizeof(b));
        b.start = base;
        b.pos = base;
        b.end = base + sizeof(base);

        if (ngx_http_openbank_sig_base(&msg, &m, &b, &err) != NGX_OK
            || ngx_http_openbank_sig_sign(alg, pkey, NULL, &secret, base,
                                          b.pos - base, sig, &siglen)
               != NGX_OK)
        {
            fprintf(stderr, "signing failed\n");
            return 2;
        }

        out[ngx_http_openbank_base64_encode(out, sig, siglen)] = '\0';
        printf("%s %.44s %s\n", nonce, digest + 9, out);
    }

    return 0;
}


int
main(int argc, char **argv)
{
    size_t                          siglen;
    ngx_int_t                       rc;
    ngx_str_t                       label, secret;
    ngx_uint_t                      alg, others;
    EVP_PKEY                       *pkey;
    const char                     *err, *input;
    ngx_http_openbank_msg_t         msg;
    ngx_http_openbank_sbuf_t        b;
    ngx_http_openbank_sf_member_t   m, ms;
    u_char                          sig[NGX_HTTP_OPENBANK_SIG_MAX_LEN];
    u_char                          out[2 * NGX_HTTP_OPENBANK_SIG_MAX_LEN];
    static u_char                   base[65536];

    if (strcmp(argv[1], "bench") == 0) {
        return bench(argc, argv);
    }

    if (argc < 5 || load_msg(argv[2], &msg) != 0) {
        fprintf(stderr,
                "usage: sigtool base|verify|sign MSG INPUT ...\n");
        return 2;
    }

    input = argv[3];
    label.data = (u_char *) argv[strcmp(argv[1], "verify") ? 4 : 5];
    label.len = strlen((char *) label.data);

    rc = ngx_http_openbank_sf_dict_get((u_char *) input,
                                       (u_char *) input + strlen(input),
                                       &label, &m, &others);
    if (rc != NGX_OK) {
        fprintf(stderr, "Signature-Input: no valid member \"%s\"\n",
                label.data);
        return 2;
    }

    memset(&b, 0, sizeof(b));
    b.start = base;
    b.pos = base;
    b.end = base + sizeof(base);

    if (ngx_http_openbank_sig_base(&msg, &m, &b, &err) != NGX_OK) {
        fprintf(stderr, "base: %s\n", err);
        return 2;
    }

    if (strcmp(argv[1], "base") == 0) {
        fwrite(base, 1, b.pos - base, stdout);
        return 0;
    }

    secret.len = 0;
    secret.data = NULL;

    if (strcmp(argv[1], "verify") == 0 && argc == 8) {
        alg = ngx_http_openbank_sig_alg(&(ngx_str_t) {
                  strlen(argv[6]), (u_char *) argv[6] });
        pkey = load_key(argv[7], 0, &secret);

        if (alg == 0 || pkey == NULL) {
            fprintf(stderr, "bad algorithm or key\n");
            return 2;
        }

        rc = ngx_http_openbank_sf_dict_get((u_char *) argv[4],
                                           (u_char *) argv[4]
                                           + strlen(argv[4]),
                                           &label, &ms, &others);
        if (rc != NGX_OK || ms.inner
            || ms.items[0].value.type != NGX_HTTP_OPENBANK_SF_BYTES
            || ngx_http_openbank_base64_decode(sig, sizeof(sig),
                                               &ms.items[0].value.raw,
                                               &siglen)
               != NGX_OK)
        {
            fprintf(stderr, "Signature: no valid member\n");
            return 2;
        }

        rc = ngx_http_openbank_sig_verify(alg, pkey, NULL, &secret, base,
                                          b.pos - base, sig, siglen);

        printf("%s\n", rc == NGX_OK ? "verified" : "NOT verified");

        return rc == NGX_OK ? 0 : 1;
    }

    if (strcmp(argv[1], "sign") == 0 && argc == 7) {
        alg = ngx_http_openbank_sig_alg(&(ngx_str_t) {
                  strlen(argv[5]), (u_char *) argv[5] });
        pkey = load_key(argv[6], 1, &secret);

        if (alg == 0 || pkey == NULL) {
            fprintf(stderr, "bad algorithm or key\n");
            return 2;
        }

        if (ngx_http_openbank_sig_sign(alg, pkey, NULL, &secret, base,
                                       b.pos - base, sig, &siglen)
            != NGX_OK)
        {
            fprintf(stderr, "signing failed\n");
            return 2;
        }

        out[ngx_http_openbank_base64_encode(out, sig, siglen)] = '\0';
        printf("%s\n", out);

        return 0;
    }

    fprintf(stderr, "usage: sigtool base|verify|sign MSG INPUT ...\n");
    return 2;
}
