
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * libFuzzer target: a journal's file as the replay reads it
 * (ngx_http_openbank_journal_scan(), journal_parse.c), passing over
 * damage and zeros.  The first byte chooses: the bytes as they are, or
 * pieces (a control byte, then its bytes), each framed with a right
 * CRC, a run of zeros, or left as garbage, so that the scan sees intact
 * records between torn ones and the zeros written ahead of them.
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

    for (i = 0; i < len; i++) {
        *sum += payload[i];
    }

    *sum += payload[sizeof(head)] + payload[sizeof(head) + head.key_len - 1];

    return (*sum % 101 == 0) ? NGX_ERROR : NGX_OK;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                        *buf, *p;
    size_t                         i, n, sum, skipped, end, len;
    uint32_t                       v[3];
    ngx_http_openbank_journal_pt   handlers[3];

    if (size == 0 || size > 64 * 1024) {
        return 0;
    }

    handlers[0] = NULL;
    handlers[1] = fuzz_record;
    handlers[2] = fuzz_record;

    sum = 0;

    buf = malloc(size * (1 + NGX_HTTP_OPENBANK_JOURNAL_FRAME + 64));
    if (buf == NULL) {
        return 0;
    }

    p = buf;

    if (data[0] & 1) {
        memcpy(p, data + 1, size - 1);
        p += size - 1;

    } else {
        for (i = 1; i < size; i += n) {
            n = data[i] & 0x3f;

            switch (data[i++] >> 6) {

            case 0:
                /* zeros, as written ahead of the records */
                memset(p, 0, n);
                p += n;
                n = 0;
                continue;

            case 1:
                /* garbage */
                break;

            default:
                if (n > size - i) {
                    n = size - i;
                }

                v[0] = NGX_HTTP_OPENBANK_JOURNAL_MAGIC;
                v[1] = (uint32_t) n;
                v[2] = crc32(0, data + i, n);

                memcpy(p, v, sizeof(v));
                p += sizeof(v);

                /* cut: a torn record */
                if ((data[i - 1] >> 6) == 2 && n) {
                    n--;
                }
            }

            if (n > size - i) {
                n = size - i;
            }

            memcpy(p, data + i, n);
            p += n;
        }
    }

    /* exactly its size: a read past the end is one past the buffer */

    len = p - buf;
    p = realloc(buf, len ? len : 1);
    if (p == NULL) {
        free(buf);
        return 0;
    }

    buf = p;

    (void) ngx_http_openbank_journal_scan(buf, len, handlers, 3, &sum,
                                          &skipped, &end);

    if (end > len || skipped > len) {
        abort();
    }

    free(buf);

    return 0;
}
