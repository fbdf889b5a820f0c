
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The journals' framed records in memory (journal.c writes and replays
 * them from files): a change of another gateway, from the cluster
 * (ngx_http_openbank_cluster_sync.c), read as strictly as a file.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http_openbank_journal.h>

#include <zlib.h>


/*
 * Framed records in memory (another gateway's change, from the cluster),
 * each to the handler of its type as the replay does; NGX_DECLINED when
 * any frame is damaged or cut (none is handled then), NGX_ERROR when a
 * handler fails.
 */

ngx_int_t
ngx_http_openbank_journal_parse(u_char *p, size_t len,
    ngx_http_openbank_journal_pt *handlers, ngx_uint_t n, void *data)
{
    u_char                            *start, *last, *payload;
    uint32_t                           v[3];
    ngx_uint_t                         pass;
    ngx_http_openbank_journal_head_t   head;

    start = p;
    last = p + len;

    /* the first pass checks every frame, the second handles them */

    for (pass = 0; pass < 2; pass++) {
        p = start;

        while (p < last) {
            if (last - p < NGX_HTTP_OPENBANK_JOURNAL_FRAME) {
                return NGX_DECLINED;
            }

            ngx_memcpy(v, p, sizeof(v));

            if (v[0] != NGX_HTTP_OPENBANK_JOURNAL_MAGIC
                || v[1] > (size_t) (last - p) - NGX_HTTP_OPENBANK_JOURNAL_FRAME
                || crc32(0, p + NGX_HTTP_OPENBANK_JOURNAL_FRAME, v[1]) != v[2])
            {
                return NGX_DECLINED;
            }

            payload = p + NGX_HTTP_OPENBANK_JOURNAL_FRAME;
            p = payload + v[1];

            if (pass == 0 || v[1] < sizeof(head)) {
                continue;
            }

            /* a type it does not know, or no key: left out, as by replay */

            ngx_memcpy(&head, payload, sizeof(head));

            if (head.type >= n || handlers[head.type] == NULL
                || head.key_len == 0 || v[1] < sizeof(head) + head.key_len)
            {
                continue;
            }

            if (handlers[head.type](data, payload, v[1]) != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}
