
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * libFuzzer target: a receiver's answer to a webhook delivery
 * (ngx_http_openbank_answer_parse(), _events_json.c), given in pieces as
 * recv() would: the first byte chooses the pieces' size, the buffer is
 * small (64 bytes) so that lines longer than it and moves within it are
 * reached.  The parser must stop, keep its counters within the buffer,
 * and never ask for more with the buffer full.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_events.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                      *buf;
    size_t                       piece, n, room, bsize;
    ngx_int_t                    rc;
    ngx_http_openbank_answer_t   a;

    if (size == 0) {
        return 0;
    }

    piece = (data[0] & 0x3f) + 1;
    bsize = (data[0] & 0x40) ? 64 : 4096;
    data++;
    size--;

    /* an exact allocation, so that a read past the end is seen */

    buf = malloc(bsize);
    if (buf == NULL) {
        return 0;
    }

    ngx_http_openbank_answer_init(&a, buf, bsize);

    rc = NGX_AGAIN;

    while (size) {
        room = a.size - a.received;

        if (room == 0) {
            /* asked for more with no room: recv() would read nothing */
            abort();
        }

        n = ngx_min(ngx_min(piece, size), room);
        ngx_memcpy(buf + a.received, data, n);
        a.received += n;
        data += n;
        size -= n;

        rc = ngx_http_openbank_answer_parse(&a);

        if (a.pos > a.received || a.received > a.size
            || a.rest < 0 || (a.status && (a.status < 100 || a.status > 599)))
        {
            abort();
        }

        if (rc != NGX_AGAIN) {
            break;
        }
    }

    if (rc == NGX_OK && !a.headers) {
        abort();
    }

    free(buf);

    return 0;
}
