
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The journals' framed records in memory (journal.c writes them, and
 * reads them from files): a journal's bytes, passing over damage, and a
 * change of another gateway, from the cluster
 * (ngx_http_openbank_cluster_sync.c), read strictly.
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


/*
 * A journal's bytes (a file read whole), each intact record to the
 * handler of its type: a torn or corrupt record (a crash in the middle
 * of a write) is passed over by looking for the next frame whose
 * checksum holds, and counted in "skipped"; zeros (the blocks written
 * ahead of the records, a write never made: no frame begins with one)
 * are passed over and not counted.  "end": where the last intact record
 * ends.  NGX_ERROR when a handler fails.
 */

ngx_int_t
ngx_http_openbank_journal_scan(u_char *p, size_t len,
    ngx_http_openbank_journal_pt *handlers, ngx_uint_t n, void *data,
    size_t *skipped, size_t *end)
{
    u_char                            *start, *last, *payload;
    uint32_t                           v[3];
    ngx_http_openbank_journal_head_t   head;

    start = p;
    last = p + len;

    *skipped = 0;
    *end = 0;

    while (last - p >= NGX_HTTP_OPENBANK_JOURNAL_FRAME) {

        if (*p == '\0') {
            while (p < last && *p == '\0') {
                p++;
            }

            continue;
        }

        ngx_memcpy(v, p, sizeof(v));

        if (v[0] != NGX_HTTP_OPENBANK_JOURNAL_MAGIC
            || v[1] > (size_t) (last - p) - NGX_HTTP_OPENBANK_JOURNAL_FRAME
            || crc32(0, p + NGX_HTTP_OPENBANK_JOURNAL_FRAME, v[1]) != v[2])
        {
            /* damaged: look for the next intact frame */
            p++;
            (*skipped)++;
            continue;
        }

        payload = p + NGX_HTTP_OPENBANK_JOURNAL_FRAME;
        p = payload + v[1];
        *end = p - start;

        if (v[1] < sizeof(head)) {
            continue;
        }

        /* a type it does not know, or no key: left out */

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

    while (p < last && *p == '\0') {
        p++;
    }

    *skipped += last - p;

    return NGX_OK;
}
