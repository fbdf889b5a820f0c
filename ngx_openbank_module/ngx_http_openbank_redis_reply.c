
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Redis Cluster's answers read: a key's slot (CRC16 of the key or of its
 * {hash tag}), a MOVED or ASK redirection, the slot map of CLUSTER
 * SLOTS.  No I/O here: replies come parsed by hiredis's redisReader,
 * made here with an array's size bounded, and everything read from them
 * is checked (fuzz/fuzz_redis.c).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http_openbank_redis.h>


static void *ngx_http_openbank_redis_create_array(const redisReadTask *task,
    int elements);
static ngx_int_t ngx_http_openbank_redis_addr(u_char *p, size_t len,
    ngx_str_t *host, ngx_int_t port, ngx_pool_t *pool, ngx_str_t *addr);


static redisReplyObjectFunctions  ngx_http_openbank_redis_functions;
static void *(*ngx_http_openbank_redis_create_array_default)(
    const redisReadTask *task, int elements);


/* CRC16-CCITT (XMODEM), the one of the Redis Cluster specification */

static uint16_t  ngx_http_openbank_crc16_table[256] = {
    0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7,
    0x8108, 0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef,
    0x1231, 0x0210, 0x3273, 0x2252, 0x52b5, 0x4294, 0x72f7, 0x62d6,
    0x9339, 0x8318, 0xb37b, 0xa35a, 0xd3bd, 0xc39c, 0xf3ff, 0xe3de,
    0x2462, 0x3443, 0x0420, 0x1401, 0x64e6, 0x74c7, 0x44a4, 0x5485,
    0xa56a, 0xb54b, 0x8528, 0x9509, 0xe5ee, 0xf5cf, 0xc5ac, 0xd58d,
    0x3653, 0x2672, 0x1611, 0x0630, 0x76d7, 0x66f6, 0x5695, 0x46b4,
    0xb75b, 0xa77a, 0x9719, 0x8738, 0xf7df, 0xe7fe, 0xd79d, 0xc7bc,
    0x48c4, 0x58e5, 0x6886, 0x78a7, 0x0840, 0x1861, 0x2802, 0x3823,
    0xc9cc, 0xd9ed, 0xe98e, 0xf9af, 0x8948, 0x9969, 0xa90a, 0xb92b,
    0x5af5, 0x4ad4, 0x7ab7, 0x6a96, 0x1a71, 0x0a50, 0x3a33, 0x2a12,
    0xdbfd, 0xcbdc, 0xfbbf, 0xeb9e, 0x9b79, 0x8b58, 0xbb3b, 0xab1a,
    0x6ca6, 0x7c87, 0x4ce4, 0x5cc5, 0x2c22, 0x3c03, 0x0c60, 0x1c41,
    0xedae, 0xfd8f, 0xcdec, 0xddcd, 0xad2a, 0xbd0b, 0x8d68, 0x9d49,
    0x7e97, 0x6eb6, 0x5ed5, 0x4ef4, 0x3e13, 0x2e32, 0x1e51, 0x0e70,
    0xff9f, 0xefbe, 0xdfdd, 0xcffc, 0xbf1b, 0xaf3a, 0x9f59, 0x8f78,
    0x9188, 0x81a9, 0xb1ca, 0xa1eb, 0xd10c, 0xc12d, 0xf14e, 0xe16f,
    0x1080, 0x00a1, 0x30c2, 0x20e3, 0x5004, 0x4025, 0x7046, 0x6067,
    0x83b9, 0x9398, 0xa3fb, 0xb3da, 0xc33d, 0xd31c, 0xe37f, 0xf35e,
    0x02b1, 0x1290, 0x22f3, 0x32d2, 0x4235, 0x5214, 0x6277, 0x7256,
    0xb5ea, 0xa5cb, 0x95a8, 0x8589, 0xf56e, 0xe54f, 0xd52c, 0xc50d,
    0x34e2, 0x24c3, 0x14a0, 0x0481, 0x7466, 0x6447, 0x5424, 0x4405,
    0xa7db, 0xb7fa, 0x8799, 0x97b8, 0xe75f, 0xf77e, 0xc71d, 0xd73c,
    0x26d3, 0x36f2, 0x0691, 0x16b0, 0x6657, 0x7676, 0x4615, 0x5634,
    0xd94c, 0xc96d, 0xf90e, 0xe92f, 0x99c8, 0x89e9, 0xb98a, 0xa9ab,
    0x5844, 0x4865, 0x7806, 0x6827, 0x18c0, 0x08e1, 0x3882, 0x28a3,
    0xcb7d, 0xdb5c, 0xeb3f, 0xfb1e, 0x8bf9, 0x9bd8, 0xabbb, 0xbb9a,
    0x4a75, 0x5a54, 0x6a37, 0x7a16, 0x0af1, 0x1ad0, 0x2ab3, 0x3a92,
    0xfd2e, 0xed0f, 0xdd6c, 0xcd4d, 0xbdaa, 0xad8b, 0x9de8, 0x8dc9,
    0x7c26, 0x6c07, 0x5c64, 0x4c45, 0x3ca2, 0x2c83, 0x1ce0, 0x0cc1,
    0xef1f, 0xff3e, 0xcf5d, 0xdf7c, 0xaf9b, 0xbfba, 0x8fd9, 0x9ff8,
    0x6e17, 0x7e36, 0x4e55, 0x5e74, 0x2e93, 0x3eb2, 0x0ed1, 0x1ef0
};


redisReader *
ngx_http_openbank_redis_reader_create(void)
{
    redisReader  *reader;

    reader = redisReaderCreate();
    if (reader == NULL) {
        return NULL;
    }

    if (ngx_http_openbank_redis_create_array_default == NULL) {
        ngx_http_openbank_redis_functions = *reader->fn;
        ngx_http_openbank_redis_create_array_default =
                                                     reader->fn->createArray;
        ngx_http_openbank_redis_functions.createArray =
                                        ngx_http_openbank_redis_create_array;
    }

    reader->fn = &ngx_http_openbank_redis_functions;

    return reader;
}


static void *
ngx_http_openbank_redis_create_array(const redisReadTask *task, int elements)
{
    if (elements < 0 || elements > NGX_HTTP_OPENBANK_REDIS_MAX_ELEMENTS) {
        /* the reader fails with REDIS_ERR_OOM and the connection closes */
        return NULL;
    }

    return ngx_http_openbank_redis_create_array_default(task, elements);
}


ngx_uint_t
ngx_http_openbank_redis_slot(u_char *key, size_t len)
{
    size_t    i, s, e;
    uint16_t  crc;

    /* a {hash tag}: what is between the first { and the next }, if any */

    for (s = 0; s < len; s++) {
        if (key[s] == '{') {
            break;
        }
    }

    if (s < len) {
        for (e = s + 1; e < len; e++) {
            if (key[e] == '}') {
                break;
            }
        }

        if (e < len && e != s + 1) {
            key += s + 1;
            len = e - s - 1;
        }
    }

    crc = 0;

    for (i = 0; i < len; i++) {
        crc = (uint16_t) (crc << 8)
              ^ ngx_http_openbank_crc16_table[((crc >> 8) ^ key[i]) & 0xff];
    }

    return crc & (NGX_HTTP_OPENBANK_REDIS_SLOTS - 1);
}


/*
 * "MOVED 3999 127.0.0.1:6381" or "ASK 3999 127.0.0.1:6381": NGX_OK with
 * the slot and the address; NGX_DECLINED for any other reply.
 */

ngx_int_t
ngx_http_openbank_redis_redirect(redisReply *reply, ngx_uint_t *ask,
    ngx_uint_t *slot, ngx_str_t *addr)
{
    u_char     *p, *last, *s;
    ngx_int_t   n;

    if (reply == NULL || reply->type != REDIS_REPLY_ERROR
        || reply->str == NULL)
    {
        return NGX_DECLINED;
    }

    p = (u_char *) reply->str;
    last = p + reply->len;

    if (last - p > 6 && ngx_strncmp(p, "MOVED ", 6) == 0) {
        *ask = 0;
        p += 6;

    } else if (last - p > 4 && ngx_strncmp(p, "ASK ", 4) == 0) {
        *ask = 1;
        p += 4;

    } else {
        return NGX_DECLINED;
    }

    s = p;

    while (p < last && *p >= '0' && *p <= '9') {
        p++;
    }

    if (p == s || p == last || *p != ' ') {
        return NGX_DECLINED;
    }

    n = ngx_atoi(s, p - s);
    if (n == NGX_ERROR || n >= NGX_HTTP_OPENBANK_REDIS_SLOTS) {
        return NGX_DECLINED;
    }

    p++;

    if (last - p < 3
        || (size_t) (last - p) >= NGX_HTTP_OPENBANK_REDIS_ADDR_LEN)
    {
        return NGX_DECLINED;
    }

    for (s = p; s < last; s++) {
        if (*s <= ' ' || *s >= 0x7f) {
            return NGX_DECLINED;
        }
    }

    *slot = (ngx_uint_t) n;
    addr->data = p;
    addr->len = last - p;

    return NGX_OK;
}


/*
 * CLUSTER SLOTS: an array of [start, end, [ip, port, ...], replicas...];
 * each range's master as "ip:port" (an empty ip is the node asked's).
 * NGX_DECLINED: not a slot map (a plain Redis answers an error).
 */

ngx_int_t
ngx_http_openbank_redis_slots(redisReply *reply, ngx_str_t *asked,
    ngx_pool_t *pool, ngx_array_t *ranges)
{
    size_t                            i;
    ngx_str_t                         host;
    redisReply                       *r, *m;
    ngx_http_openbank_redis_range_t  *range;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        return NGX_DECLINED;
    }

    for (i = 0; i < reply->elements; i++) {
        r = reply->element[i];

        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 3
            || r->element[0]->type != REDIS_REPLY_INTEGER
            || r->element[1]->type != REDIS_REPLY_INTEGER
            || r->element[2]->type != REDIS_REPLY_ARRAY)
        {
            return NGX_DECLINED;
        }

        if (r->element[0]->integer < 0
            || r->element[1]->integer < r->element[0]->integer
            || r->element[1]->integer >= NGX_HTTP_OPENBANK_REDIS_SLOTS)
        {
            return NGX_DECLINED;
        }

        m = r->element[2];

        if (m->elements < 2
            || m->element[0]->type != REDIS_REPLY_STRING
            || m->element[1]->type != REDIS_REPLY_INTEGER
            || m->element[1]->integer <= 0
            || m->element[1]->integer > 65535)
        {
            return NGX_DECLINED;
        }

        range = ngx_array_push(ranges);
        if (range == NULL) {
            return NGX_ERROR;
        }

        range->start = (ngx_uint_t) r->element[0]->integer;
        range->end = (ngx_uint_t) r->element[1]->integer;

        host.data = (u_char *) m->element[0]->str;
        host.len = m->element[0]->len;

        if (ngx_http_openbank_redis_addr(asked->data, asked->len, &host,
                                         (ngx_int_t) m->element[1]->integer,
                                         pool, &range->master)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* "host:port", the host of "asked" when host is empty */

static ngx_int_t
ngx_http_openbank_redis_addr(u_char *asked, size_t len, ngx_str_t *host,
    ngx_int_t port, ngx_pool_t *pool, ngx_str_t *addr)
{
    u_char  *p, *colon;
    size_t   i;

    if (host->len == 0) {
        colon = NULL;

        for (p = asked; p < asked + len; p++) {
            if (*p == ':') {
                colon = p;
            }
        }

        if (colon == NULL) {
            return NGX_DECLINED;
        }

        host->data = asked;
        host->len = colon - asked;
    }

    if (host->len == 0 || host->len > NGX_SOCKADDR_STRLEN) {
        return NGX_DECLINED;
    }

    for (i = 0; i < host->len; i++) {
        if (host->data[i] <= ' ' || host->data[i] >= 0x7f) {
            return NGX_DECLINED;
        }
    }

    addr->data = ngx_pnalloc(pool, host->len + sizeof(":65535"));
    if (addr->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(addr->data, "%V:%i", host, port);
    addr->len = p - addr->data;

    return NGX_OK;
}


/* a status or string reply that is exactly "status" ("OK", "PONG") */

ngx_int_t
ngx_http_openbank_redis_is(redisReply *reply, const char *status)
{
    size_t  len;

    if (reply == NULL
        || (reply->type != REDIS_REPLY_STATUS
            && reply->type != REDIS_REPLY_STRING))
    {
        return 0;
    }

    len = ngx_strlen(status);

    return reply->len == len && ngx_strncmp(reply->str, status, len) == 0;
}
