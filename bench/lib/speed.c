
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The module's cryptography in a loop, for bench/run's reference rows
 * (docs/benchmarks.md, "References"):
 *
 *   speed jwt  TOKEN-FILE KEY.pem SECONDS
 *       the access token's signature verified as ngx_http_openbank_token.c
 *       does: ngx_http_openbank_jwt_verify with the gateway's key and the
 *       context made once for it at load time (PS256 with an RSA key,
 *       ES256 with an EC P-256 key); the token is parsed once, so that
 *       only the verification is counted
 *   speed sign BASE-FILE KEY.pem SECONDS
 *       one response signature as ngx_http_openbank_signature.c makes it:
 *       ngx_http_openbank_sig_sign with the algorithm the key's type gives
 *       (rsa-pss-sha512, ecdsa-p256-sha256 or ed25519) over the base, and
 *       for ed25519 the context made once for the key at load time
 *   speed verify BASE-FILE ALG KEY SECONDS
 *       one request signature (RFC 9421 algorithm ALG, made once over the
 *       base with KEY) verified as the gateway does: with the public key
 *       alone, as a partner's JWK gives it, and the context the gateway
 *       keeps for that key; KEY is a PEM file, or "hmac:FILE" with the
 *       secret in base64
 *
 * BASE-FILE is a signature base, as "sigtool base" prints it.
 * Each runs for SECONDS of CPU time and prints one line in
 * bench/lib/check.lua's format, with cpu_us the CPU time of the loop.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_jwt.h>
#include <ngx_http_openbank_httpsig.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <openssl/pem.h>


static u_char  text[65536];


static size_t
slurp(const char *file, u_char *buf, size_t size)
{
    FILE    *f;
    size_t   n;

    f = fopen(file, "r");
    if (f == NULL) {
        return 0;
    }

    n = fread(buf, 1, size, f);
    fclose(f);

    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        n--;
    }

    return n;
}


static EVP_PKEY *
load_key(const char *file, ngx_uint_t *type)
{
    BIO       *bio;
    EVP_PKEY  *pkey;

    bio = BIO_new_file(file, "r");
    if (bio == NULL) {
        return NULL;
    }

    pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);

    if (pkey == NULL) {
        return NULL;
    }

    *type = EVP_PKEY_is_a(pkey, "RSA") ? NGX_HTTP_OPENBANK_KEY_RSA
            : EVP_PKEY_is_a(pkey, "EC") ? NGX_HTTP_OPENBANK_KEY_EC_P256
            : NGX_HTTP_OPENBANK_KEY_ED25519;

    return pkey;
}


static EVP_PKEY *
load_public(const char *file, ngx_uint_t alg, ngx_str_t *secret)
{
    int            n;
    u_char        *der;
    size_t         len;
    EVP_PKEY      *pkey, *pub;
    ngx_uint_t     type;
    ngx_str_t      b64;
    const u_char  *p;
    static u_char  buf[1024], b64buf[1400];

    if (alg == NGX_HTTP_OPENBANK_SIG_HMAC) {
        if (strncmp(file, "hmac:", 5) != 0) {
            return NULL;
        }

        len = slurp(file + 5, b64buf, sizeof(b64buf));
        b64.data = b64buf;
        b64.len = len;
        secret->data = buf;

        if (len == 0
            || ngx_http_openbank_base64_decode(buf, sizeof(buf), &b64,
                                               &secret->len)
               != NGX_OK)
        {
            return NULL;
        }

        return EVP_PKEY_new();
    }

    pkey = load_key(file, &type);
    if (pkey == NULL) {
        return NULL;
    }

    der = NULL;
    n = i2d_PUBKEY(pkey, &der);
    p = der;
    pub = n > 0 ? d2i_PUBKEY(NULL, &p, n) : NULL;
    OPENSSL_free(der);

    return pub;
}


static double
cpu_seconds(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


int
main(int argc, char **argv)
{
    long                      n;
    size_t                    len, siglen;
    double                    limit, t0, t1;
    ngx_str_t                 token, alg, name, secret;
    ngx_int_t                 rc;
    ngx_uint_t                type, salg, mode;
    EVP_PKEY                 *pkey;
    ngx_pool_t               *pool;
    const char               *err;
    EVP_MD_CTX               *sig_ready, *sign_ready;
    EVP_PKEY_CTX             *jwt_ready;
    struct timespec           w0, w1;
    ngx_http_openbank_jwt_t   jwt;
    u_char                    sig[NGX_HTTP_OPENBANK_SIG_MAX_LEN];

    mode = argc < 2 ? 0
           : (strcmp(argv[1], "jwt") == 0 && argc == 5) ? 'j'
           : (strcmp(argv[1], "sign") == 0 && argc == 5) ? 's'
           : (strcmp(argv[1], "verify") == 0 && argc == 6) ? 'v' : 0;

    if (mode == 0) {
        fprintf(stderr, "usage: speed jwt TOKEN-FILE KEY.pem SECONDS\n"
                        "       speed sign BASE-FILE KEY.pem SECONDS\n"
                        "       speed verify BASE-FILE ALG KEY SECONDS\n");
        return 2;
    }

    len = slurp(argv[2], text, sizeof(text));
    limit = atof(argv[argc - 1]);
    jwt_ready = NULL;
    sig_ready = NULL;
    sign_ready = NULL;
    secret.len = 0;
    salg = 0;
    type = 0;

    if (mode == 'v') {
        name.data = (u_char *) argv[3];
        name.len = strlen(argv[3]);
        salg = ngx_http_openbank_sig_alg(&name);
        pkey = salg ? load_public(argv[4], salg, &secret) : NULL;

    } else {
        pkey = load_key(argv[3], &type);
    }

    if (len == 0 || pkey == NULL || limit <= 0) {
        fprintf(stderr, "bad file, algorithm, key or duration\n");
        return 2;
    }

    if (mode == 'j') {
        pool = ngx_create_pool(4096, NULL);
        token.data = text;
        token.len = len;

        if (pool == NULL
            || ngx_http_openbank_jwt_parse(pool, &token, &jwt, &err)
               != NGX_OK)
        {
            fprintf(stderr, "the token does not parse\n");
            return 2;
        }

        alg = jwt.alg;
        jwt_ready = ngx_http_openbank_jwt_verifier(pkey, type);

    } else if (mode == 's') {
        salg = (type == NGX_HTTP_OPENBANK_KEY_RSA)
               ? NGX_HTTP_OPENBANK_SIG_RSA_PSS
               : (type == NGX_HTTP_OPENBANK_KEY_EC_P256)
                 ? NGX_HTTP_OPENBANK_SIG_ECDSA_P256
                 : NGX_HTTP_OPENBANK_SIG_ED25519;
        sign_ready = ngx_http_openbank_sig_signer(salg, pkey);

    } else {

        /* the signature, made once with the private key */

        if (ngx_http_openbank_sig_sign(salg,
                                       load_key(argv[4], &type), NULL,
                                       &secret,
                                       text, len, sig, &siglen)
            != NGX_OK)
        {
            fprintf(stderr, "signing failed\n");
            return 2;
        }

        sig_ready = ngx_http_openbank_sig_verifier(salg, pkey);
    }

    clock_gettime(CLOCK_MONOTONIC, &w0);
    t0 = cpu_seconds();
    t1 = t0;

    for (n = 0; t1 - t0 < limit; n++) {
        rc = (mode == 'j')
             ? ngx_http_openbank_jwt_verify(&jwt, pkey, type, &alg,
                                            jwt_ready)
             : (mode == 's')
               ? ngx_http_openbank_sig_sign(salg, pkey, sign_ready, NULL,
                                            text, len, sig, &siglen)
               : ngx_http_openbank_sig_verify(salg, pkey, sig_ready, &secret,
                                              text, len, sig, siglen);

        if (rc != NGX_OK) {
            fprintf(stderr, "%s failed\n", mode == 's' ? "signing"
                                                       : "verifying");
            return 1;
        }

        if (n % 16 == 15) {
            t1 = cpu_seconds();
        }
    }

    t1 = cpu_seconds();
    clock_gettime(CLOCK_MONOTONIC, &w1);

    printf("BENCH requests=%ld duration_us=%.0f p50_us=0 p99_us=0 non2xx=0"
           " first_non2xx=- sockerr=0 cpu_us=%.0f\n", n,
           (w1.tv_sec - w0.tv_sec) * 1e6 + (w1.tv_nsec - w0.tv_nsec) / 1e3,
           (t1 - t0) * 1e6);

    return 0;
}
