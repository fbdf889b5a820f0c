
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * libFuzzer target: the bodies of event notifications
 * (ngx_http_openbank_events_json.c): what the bank posts to the ingest,
 * what a partner posts to make a webhook endpoint, and its URL; the
 * first byte chooses which.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_events.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                          err[256], *copy;
    ngx_str_t                       text;
    ngx_uint_t                      which;
    ngx_http_openbank_url_t         u;
    ngx_http_openbank_event_in_t    ev;
    ngx_http_openbank_webhook_in_t  wh;

    if (size == 0 || size > NGX_HTTP_OPENBANK_EVENT_BODY_MAX) {
        return 0;
    }

    which = data[0] % 3;
    data++;
    size--;

    /* an exact allocation, so that a read past the end is seen */

    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }

    ngx_memcpy(copy, data, size);
    text.data = copy;
    text.len = size;

    switch (which) {

    case 0:
        if (ngx_http_openbank_event_parse(&text, &ev, err, sizeof(err))
            == NGX_OK)
        {
            if (ev.data.data < copy || ev.data.data + ev.data.len
                                       > copy + size
                || ev.data.len < 2 || ev.data.data[0] != '{')
            {
                abort();
            }
        }

        break;

    case 1:
        if (ngx_http_openbank_webhook_parse(&text, &wh, err, sizeof(err))
            == NGX_OK
            && (wh.nevents == 0
                || wh.nevents > NGX_HTTP_OPENBANK_WEBHOOK_PATTERNS))
        {
            abort();
        }

        break;

    default:
        if (ngx_http_openbank_url_parse(&text, &u, err, sizeof(err))
            == NGX_OK
            && (u.host.len == 0 || u.port == 0 || u.path.len == 0
                || u.path.data[0] != '/'))
        {
            abort();
        }

        break;
    }

    if (ngx_strlen(err) >= sizeof(err)) {
        abort();
    }

    free(copy);

    return 0;
}
