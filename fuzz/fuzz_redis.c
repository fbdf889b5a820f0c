
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * libFuzzer target: Redis's bytes as the gateway reads them.  The input
 * is fed to hiredis's redisReader in two pieces (a reply split across
 * reads), and every reply it gives goes through what the cluster reads
 * from one: a MOVED or ASK redirection, the slot map of CLUSTER SLOTS, a
 * status, a key's slot (ngx_http_openbank_redis_reply.c).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http_openbank_redis.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    void                             *reply;
    size_t                            half, i;
    ngx_str_t                         asked, addr;
    ngx_uint_t                        ask, slot;
    ngx_pool_t                       *pool;
    ngx_array_t                       ranges;
    redisReply                       *rr;
    redisReader                      *reader;
    ngx_http_openbank_redis_range_t  *range;

    static u_char  node[] = "127.0.0.1:7000";

    if (size > 256 * 1024) {
        return 0;
    }

    reader = ngx_http_openbank_redis_reader_create();
    if (reader == NULL) {
        return 0;
    }

    half = size / 2;

    if (redisReaderFeed(reader, (const char *) data, half) != REDIS_OK
        || redisReaderFeed(reader, (const char *) data + half, size - half)
           != REDIS_OK)
    {
        redisReaderFree(reader);
        return 0;
    }

    asked.data = node;
    asked.len = sizeof(node) - 1;

    for ( ;; ) {
        reply = NULL;

        if (redisReaderGetReply(reader, &reply) != REDIS_OK
            || reply == NULL)
        {
            break;
        }

        rr = reply;

        if (ngx_http_openbank_redis_redirect(rr, &ask, &slot, &addr)
            == NGX_OK)
        {
            if (slot >= NGX_HTTP_OPENBANK_REDIS_SLOTS || addr.len == 0) {
                __builtin_trap();
            }
        }

        pool = ngx_create_pool(4096, NULL);
        if (pool == NULL) {
            freeReplyObject(reply);
            break;
        }

        if (ngx_array_init(&ranges, pool, 4,
                           sizeof(ngx_http_openbank_redis_range_t))
            == NGX_OK
            && ngx_http_openbank_redis_slots(rr, &asked, pool, &ranges)
               == NGX_OK)
        {
            range = ranges.elts;

            for (i = 0; i < ranges.nelts; i++) {
                if (range[i].start > range[i].end
                    || range[i].end >= NGX_HTTP_OPENBANK_REDIS_SLOTS
                    || range[i].master.len == 0)
                {
                    __builtin_trap();
                }
            }
        }

        ngx_destroy_pool(pool);

        (void) ngx_http_openbank_redis_is(rr, "OK");

        if (rr->type == REDIS_REPLY_STRING || rr->type == REDIS_REPLY_STATUS
            || rr->type == REDIS_REPLY_ERROR)
        {
            if (ngx_http_openbank_redis_slot((u_char *) rr->str, rr->len)
                >= NGX_HTTP_OPENBANK_REDIS_SLOTS)
            {
                __builtin_trap();
            }
        }

        freeReplyObject(reply);
    }

    redisReaderFree(reader);

    return 0;
}
