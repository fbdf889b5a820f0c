
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
 *       (rsa-pss-sha512, ecdsa-p256-sha256 or ed25519) over the base
 *
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
slurp(const char *file)
{
    FILE    *f;
    size_t   n;

    f = fopen(file, "r");
    if (f == NULL) {
        return 0;
    }

    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);

    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r')) {
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
    ngx_str_t                 token, alg;
    ngx_int_t                 rc;
    ngx_uint_t                type, salg, jwt_mode;
    EVP_PKEY                 *pkey;
    ngx_pool_t               *pool;
    const char               *err;
    EVP_PKEY_CTX             *ready;
    struct timespec           w0, w1;
    ngx_http_openbank_jwt_t   jwt;
    u_char                    sig[NGX_HTTP_OPENBANK_SIG_MAX_LEN];

    if (argc != 5 || (strcmp(argv[1], "jwt") && strcmp(argv[1], "sign"))) {
        fprintf(stderr, "usage: speed jwt|sign FILE KEY.pem SECONDS\n");
        return 2;
    }

    jwt_mode = (strcmp(argv[1], "jwt") == 0);
    len = slurp(argv[2]);
    pkey = load_key(argv[3], &type);
    limit = atof(argv[4]);

    if (len == 0 || pkey == NULL || limit <= 0) {
        fprintf(stderr, "bad file, key or duration\n");
        return 2;
    }

    ready = NULL;
    salg = 0;

    if (jwt_mode) {
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
        ready = ngx_http_openbank_jwt_verifier(pkey, type);

    } else {
        salg = (type == NGX_HTTP_OPENBANK_KEY_RSA)
               ? NGX_HTTP_OPENBANK_SIG_RSA_PSS
               : (type == NGX_HTTP_OPENBANK_KEY_EC_P256)
                 ? NGX_HTTP_OPENBANK_SIG_ECDSA_P256
                 : NGX_HTTP_OPENBANK_SIG_ED25519;
    }

    clock_gettime(CLOCK_MONOTONIC, &w0);
    t0 = cpu_seconds();
    t1 = t0;

    for (n = 0; t1 - t0 < limit; n++) {
        rc = jwt_mode
             ? ngx_http_openbank_jwt_verify(&jwt, pkey, type, &alg, ready)
             : ngx_http_openbank_sig_sign(salg, pkey, NULL, text, len, sig,
                                          &siglen);

        if (rc != NGX_OK) {
            fprintf(stderr, "%s failed\n", jwt_mode ? "verifying" : "signing");
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
