
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * libFuzzer target: another gateway's change as the cluster gives it
 * (ngx_http_openbank_journal_parse.c), framed records that a handler of
 * each type reads whole.  The first byte chooses: the bytes as they
 * are, or pieces (a length byte, then its bytes) each framed with a
 * right CRC, so that the handlers see any head, key and value.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_journal.h>

#include <zlib.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static ngx_int_t
fuzz_record(void *data, u_char *payload, size_t len)
{
    size_t                             i, *sum = data;
    ngx_http_openbank_journal_head_t   head;

    ngx_memcpy(&head, payload, sizeof(head));

    /* the key and the value, as registry.c and token.c read them */

    for (i = 0; i < len; i++) {
        *sum += payload[i];
    }

    *sum += payload[sizeof(head)] + payload[sizeof(head) + head.key_len - 1];

    return (*sum % 97 == 0) ? NGX_ERROR : NGX_OK;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                        *buf, *p;
    size_t                         i, n, sum;
    uint32_t                       v[3];
    ngx_http_openbank_journal_pt   handlers[3];

    if (size == 0 || size > 64 * 1024) {
        return 0;
    }

    handlers[0] = NULL;
    handlers[1] = fuzz_record;
    handlers[2] = fuzz_record;

    sum = 0;

    if (data[0] & 1) {
        buf = malloc(size);
        if (buf == NULL) {
            return 0;
        }

        memcpy(buf, data + 1, size - 1);
        (void) ngx_http_openbank_journal_parse(buf, size - 1, handlers, 3,
                                               &sum);
        free(buf);
        return 0;
    }

    buf = malloc(size * (1 + NGX_HTTP_OPENBANK_JOURNAL_FRAME));
    if (buf == NULL) {
        return 0;
    }

    p = buf;

    for (i = 1; i < size; i += n) {
        n = data[i++];

        if (n > size - i) {
            n = size - i;
        }

        v[0] = NGX_HTTP_OPENBANK_JOURNAL_MAGIC;
        v[1] = (uint32_t) n;
        v[2] = crc32(0, data + i, n);

        memcpy(p, v, sizeof(v));
        memcpy(p + sizeof(v), data + i, n);
        p += sizeof(v) + n;
    }

    /* exactly its size: a read past the end is one past the buffer */

    (void) ngx_http_openbank_journal_parse(buf, p - buf, handlers, 3, &sum);

    free(buf);

    return 0;
}
