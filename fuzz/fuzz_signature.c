
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * libFuzzer target: the RFC 8941 parser and the RFC 9421 signature base
 * builder on hostile input.  The input is a Signature-Input value, a
 * newline, then header lines "name: value" the message carries; its
 * first byte chooses a request or a response.  `make fuzz-signature`.
 */


#include <ngx_http_openbank_httpsig.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>


#define FUZZ_HEADERS  16


typedef struct {
    ngx_str_t  name;
    ngx_str_t  value;
} fuzz_header_t;


static fuzz_header_t  fuzz_headers[FUZZ_HEADERS];
static size_t         fuzz_nheaders;


static ngx_int_t
fuzz_header(ngx_http_openbank_msg_t *msg, ngx_uint_t req, ngx_str_t *name,
    ngx_http_openbank_sbuf_t *b)
{
    size_t  i, n;

    n = 0;

    for (i = 0; i < fuzz_nheaders; i++) {
        if (fuzz_headers[i].name.len == name->len
            && memcmp(fuzz_headers[i].name.data, name->data, name->len) == 0)
        {
            if (n++) {
                ngx_http_openbank_sbuf_str(b, ", ");
            }

            ngx_http_openbank_sbuf_add(b, fuzz_headers[i].value.data,
                                       fuzz_headers[i].value.len);
        }
    }

    return n ? NGX_OK : NGX_DECLINED;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                          *in, *p, *last, *nl, *colon, *base;
    size_t                           len;
    ngx_str_t                        label, raw;
    ngx_uint_t                       others;
    const char                      *err;
    ngx_http_openbank_msg_t          msg;
    ngx_http_openbank_sbuf_t         b;
    ngx_http_openbank_sig_params_t   sp;
    static ngx_http_openbank_sf_member_t  m;
    u_char                           out[4096];

    /* an exact copy, so that ASan sees any read past the end */

    in = malloc(size ? size : 1);
    if (in == NULL) {
        return 0;
    }

    memcpy(in, data, size);

    p = in;
    last = in + size;

    memset(&msg, 0, sizeof(msg));
    msg.status = (size && (in[0] & 1)) ? 200 : 0;
    msg.method.data = (u_char *) "POST";
    msg.method.len = 4;
    msg.scheme.data = (u_char *) "https";
    msg.scheme.len = 5;
    msg.authority.data = (u_char *) "api.bank.example";
    msg.authority.len = 16;
    msg.path.data = (u_char *) "/v1/payments";
    msg.path.len = 12;
    msg.query.data = (u_char *) "a=1&b=%41+c&a2=&%zz=q";
    msg.query.len = 21;
    msg.has_query = 1;
    msg.request_target.data = (u_char *) "/v1/payments?a=1&b=%41+c&a2=&%zz=q";
    msg.request_target.len = 34;
    msg.header = fuzz_header;

    for (nl = p; nl < last && *nl != '\n'; nl++) { /* void */ }

    /* the headers after the first line */

    fuzz_nheaders = 0;

    for (p = (nl < last) ? nl + 1 : last;
         p < last && fuzz_nheaders < FUZZ_HEADERS;
         /* void */)
    {
        u_char  *e;

        for (e = p; e < last && *e != '\n'; e++) { /* void */ }
        for (colon = p; colon < e && *colon != ':'; colon++) { /* void */ }

        fuzz_headers[fuzz_nheaders].name.data = p;
        fuzz_headers[fuzz_nheaders].name.len = colon - p;
        fuzz_headers[fuzz_nheaders].value.data = (colon < e) ? colon + 1 : e;
        fuzz_headers[fuzz_nheaders].value.len =
            e - fuzz_headers[fuzz_nheaders].value.data;
        fuzz_nheaders++;

        p = (e < last) ? e + 1 : last;
    }

    /* the whole first line as a dictionary, as Content-Digest is */

    (void) ngx_http_openbank_sf_parse_dict(in, nl);

    label.data = (u_char *) "sig";
    label.len = 3;

    if (ngx_http_openbank_sf_dict_get(in, nl, &label, &m, &others) == NGX_OK) {

        (void) ngx_http_openbank_sig_params(&m, &sp, &err);
        (void) ngx_http_openbank_sig_covers(&m, "@method");

        /* counted, then written into a buffer of exactly that size */

        memset(&b, 0, sizeof(b));

        if (ngx_http_openbank_sig_base(&msg, &m, &b, &err) == NGX_OK) {
            len = b.len;
            base = malloc(len ? len : 1);

            if (base) {
                memset(&b, 0, sizeof(b));
                b.start = base;
                b.pos = base;
                b.end = base + len;

                if (ngx_http_openbank_sig_base(&msg, &m, &b, &err) != NGX_OK
                    || (size_t) (b.pos - base) != len)
                {
                    abort();
                }

                free(base);
            }
        }

        if (!m.inner && m.items[0].value.type == NGX_HTTP_OPENBANK_SF_BYTES) {
            raw = m.items[0].value.raw;
            (void) ngx_http_openbank_base64_decode(out, sizeof(out), &raw,
                                                   &len);
        }
    }

    free(in);

    return 0;
}
