
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The few nginx core functions the fuzzed parsers call, for a standalone
 * libFuzzer binary (nginx-dev ships headers, not the core's sources).
 * Every pool allocation is its own malloc(), so that AddressSanitizer
 * sees an overflow of any of them, which nginx's pools would hide.
 */


#include <ngx_config.h>
#include <ngx_core.h>


typedef struct ngx_stub_block_s  ngx_stub_block_t;

struct ngx_stub_block_s {
    ngx_stub_block_t  *next;
    void              *mem;
};


/* ngx_alloc.c's two, without the log: the rest is built on them */

void *
ngx_alloc(size_t size, ngx_log_t *log)
{
    return malloc(size);
}


void *
ngx_calloc(size_t size, ngx_log_t *log)
{
    void  *p;

    p = ngx_alloc(size, log);
    if (p) {
        ngx_memzero(p, size);
    }

    return p;
}


ngx_pool_t *
ngx_create_pool(size_t size, ngx_log_t *log)
{
    return ngx_calloc(sizeof(ngx_pool_t), log);
}


void
ngx_destroy_pool(ngx_pool_t *pool)
{
    ngx_stub_block_t    *b, *next;
    ngx_pool_cleanup_t  *c;

    for (c = pool->cleanup; c; c = c->next) {
        if (c->handler) {
            c->handler(c->data);
        }
    }

    for (b = (ngx_stub_block_t *) pool->large; b; b = next) {
        next = b->next;
        ngx_free(b->mem);
        ngx_free(b);
    }

    ngx_free(pool);
}


void *
ngx_palloc(ngx_pool_t *pool, size_t size)
{
    ngx_stub_block_t  *b;

    b = ngx_alloc(sizeof(ngx_stub_block_t), pool->log);
    if (b == NULL) {
        return NULL;
    }

    b->mem = ngx_alloc(size ? size : 1, pool->log);
    if (b->mem == NULL) {
        ngx_free(b);
        return NULL;
    }

    b->next = (ngx_stub_block_t *) pool->large;
    pool->large = (ngx_pool_large_t *) b;

    return b->mem;
}


void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    return ngx_palloc(pool, size);
}


void *
ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    void  *p;

    p = ngx_palloc(pool, size);
    if (p) {
        ngx_memzero(p, size);
    }

    return p;
}


ngx_pool_cleanup_t *
ngx_pool_cleanup_add(ngx_pool_t *p, size_t size)
{
    ngx_pool_cleanup_t  *c;

    c = ngx_palloc(p, sizeof(ngx_pool_cleanup_t));
    if (c == NULL) {
        return NULL;
    }

    c->data = size ? ngx_palloc(p, size) : NULL;
    c->handler = NULL;

    /* nginx runs cleanups newest first */
    c->next = p->cleanup;
    p->cleanup = c;

    return c;
}


void *
ngx_array_push(ngx_array_t *a)
{
    void  *new;

    if (a->nelts == a->nalloc) {
        new = ngx_palloc(a->pool, 2 * a->size * (a->nalloc ? a->nalloc : 1));
        if (new == NULL) {
            return NULL;
        }

        ngx_memcpy(new, a->elts, a->nelts * a->size);
        a->elts = new;
        a->nalloc = a->nalloc ? 2 * a->nalloc : 2;
    }

    return (u_char *) a->elts + a->size * a->nelts++;
}


ngx_int_t
ngx_atoi(u_char *line, size_t n)
{
    ngx_int_t  value;

    if (n == 0) {
        return NGX_ERROR;
    }

    for (value = 0; n--; line++) {
        if (*line < '0' || *line > '9' || value > NGX_MAX_INT_T_VALUE / 10) {
            return NGX_ERROR;
        }

        value = value * 10 + (*line - '0');
    }

    return value < 0 ? NGX_ERROR : value;
}


off_t
ngx_atoof(u_char *line, size_t n)
{
    off_t  value;

    if (n == 0) {
        return NGX_ERROR;
    }

    for (value = 0; n--; line++) {
        if (*line < '0' || *line > '9' || value > NGX_MAX_OFF_T_VALUE / 10) {
            return NGX_ERROR;
        }

        value = value * 10 + (*line - '0');
    }

    return value < 0 ? NGX_ERROR : value;
}


/* s2 of n + 1 bytes in s1 up to last, case-insensitive, as nginx's */

u_char *
ngx_strlcasestrn(u_char *s1, u_char *last, u_char *s2, size_t n)
{
    ngx_uint_t  c1, c2;

    c2 = (ngx_uint_t) *s2++;
    c2 = ngx_tolower(c2);
    last -= n;

    do {
        do {
            if (s1 >= last) {
                return NULL;
            }

            c1 = (ngx_uint_t) *s1++;
            c1 = ngx_tolower(c1);

        } while (c1 != c2);

    } while (ngx_strncasecmp(s1, s2, n) != 0);

    return --s1;
}


ngx_int_t
ngx_hextoi(u_char *line, size_t n)
{
    u_char     c;
    ngx_int_t  value;

    if (n == 0) {
        return NGX_ERROR;
    }

    for (value = 0; n--; line++) {
        c = (u_char) (*line | 0x20);

        if (*line >= '0' && *line <= '9') {
            value = value * 16 + (*line - '0');

        } else if (c >= 'a' && c <= 'f') {
            value = value * 16 + (c - 'a' + 10);

        } else {
            return NGX_ERROR;
        }
    }

    return value;
}


ngx_int_t
ngx_strncasecmp(u_char *s1, u_char *s2, size_t n)
{
    ngx_uint_t  c1, c2;

    while (n--) {
        c1 = (ngx_uint_t) *s1++;
        c2 = (ngx_uint_t) *s2++;

        c1 = ngx_tolower(c1);
        c2 = ngx_tolower(c2);

        if (c1 == c2) {
            if (c1) {
                continue;
            }

            return 0;
        }

        return c1 - c2;
    }

    return 0;
}


void
ngx_encode_base64url(ngx_str_t *dst, ngx_str_t *src)
{
    u_char         *d, *s;
    size_t          len;
    static u_char   basis[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    len = src->len;
    s = src->data;
    d = dst->data;

    while (len > 2) {
        *d++ = basis[(s[0] >> 2) & 0x3f];
        *d++ = basis[((s[0] & 3) << 4) | (s[1] >> 4)];
        *d++ = basis[((s[1] & 0x0f) << 2) | (s[2] >> 6)];
        *d++ = basis[s[2] & 0x3f];

        s += 3;
        len -= 3;
    }

    if (len) {
        *d++ = basis[(s[0] >> 2) & 0x3f];

        if (len == 1) {
            *d++ = basis[(s[0] & 3) << 4];

        } else {
            *d++ = basis[((s[0] & 3) << 4) | (s[1] >> 4)];
            *d++ = basis[(s[1] & 0x0f) << 2];
        }
    }

    dst->len = d - dst->data;
}


ngx_int_t
ngx_decode_base64url(ngx_str_t *dst, ngx_str_t *src)
{
    int      v[256];
    size_t   len, i;
    u_char  *d, *s;

    for (i = 0; i < 256; i++) {
        v[i] = -1;
    }

    for (i = 0; i < 26; i++) {
        v['A' + i] = i;
        v['a' + i] = 26 + i;
    }

    for (i = 0; i < 10; i++) {
        v['0' + i] = 52 + i;
    }

    v['-'] = 62;
    v['_'] = 63;

    for (len = 0; len < src->len; len++) {
        if (src->data[len] == '=') {
            break;
        }

        if (v[src->data[len]] < 0) {
            return NGX_ERROR;
        }
    }

    if (len % 4 == 1) {
        return NGX_ERROR;
    }

    s = src->data;
    d = dst->data;

    while (len > 3) {
        *d++ = (u_char) (v[s[0]] << 2 | v[s[1]] >> 4);
        *d++ = (u_char) (v[s[1]] << 4 | v[s[2]] >> 2);
        *d++ = (u_char) (v[s[2]] << 6 | v[s[3]]);

        s += 4;
        len -= 4;
    }

    if (len > 1) {
        *d++ = (u_char) (v[s[0]] << 2 | v[s[1]] >> 4);
    }

    if (len > 2) {
        *d++ = (u_char) (v[s[1]] << 4 | v[s[2]] >> 2);
    }

    dst->len = d - dst->data;

    return NGX_OK;
}


/* %V %s %*s %d %i %ui %uz %z %L %T %P %Z %% of ngx_vslprintf() */

u_char *
ngx_vslprintf(u_char *buf, u_char *last, const char *fmt, va_list args)
{
    int         width_given;
    char        num[32];
    size_t      n, width;
    ngx_str_t  *v;
    const char *s;
    ngx_uint_t  uns;

    while (*fmt && buf < last) {

        if (*fmt != '%') {
            *buf++ = *fmt++;
            continue;
        }

        fmt++;
        uns = 0;
        width_given = 0;
        width = 0;

        if (*fmt == '*') {
            width_given = 1;
            width = va_arg(args, size_t);
            fmt++;
        }

        if (*fmt == 'u') {
            uns = 1;
            fmt++;
        }

        s = num;
        num[0] = '\0';

        switch (*fmt++) {

        case 'V':
            v = va_arg(args, ngx_str_t *);
            n = ngx_min(v->len, (size_t) (last - buf));
            buf = ngx_cpymem(buf, v->data, n);
            continue;

        case 's':
            s = va_arg(args, const char *);
            n = width_given ? width : ngx_strlen(s);
            n = ngx_min(n, (size_t) (last - buf));
            buf = ngx_cpymem(buf, s, n);
            continue;

        case 'd':
            snprintf(num, sizeof(num), "%d", va_arg(args, int));
            break;

        case 'i':
            if (uns) {
                snprintf(num, sizeof(num), "%lu",
                         (unsigned long) va_arg(args, ngx_uint_t));
            } else {
                snprintf(num, sizeof(num), "%ld",
                         (long) va_arg(args, ngx_int_t));
            }
            break;

        case 'z':
            if (uns) {
                snprintf(num, sizeof(num), "%zu", va_arg(args, size_t));
            } else {
                snprintf(num, sizeof(num), "%zd", va_arg(args, ssize_t));
            }
            break;

        case 'L':
            snprintf(num, sizeof(num), "%lld",
                     (long long) va_arg(args, int64_t));
            break;

        case 'T':
            snprintf(num, sizeof(num), "%lld",
                     (long long) va_arg(args, time_t));
            break;

        case 'P':
            snprintf(num, sizeof(num), "%ld", (long) va_arg(args, ngx_pid_t));
            break;

        case 'Z':
            *buf++ = '\0';
            continue;

        case '%':
            *buf++ = '%';
            continue;

        default:
            abort();        /* a format the stub does not know */
        }

        n = ngx_min(ngx_strlen(s), (size_t) (last - buf));
        buf = ngx_cpymem(buf, s, n);
    }

    return buf;
}


u_char *
ngx_sprintf(u_char *buf, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, (void *) -1, fmt, args);
    va_end(args);

    return p;
}


u_char *
ngx_slprintf(u_char *buf, u_char *last, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, last, fmt, args);
    va_end(args);

    return p;
}


void
ngx_conf_log_error(ngx_uint_t level, ngx_conf_t *cf, ngx_err_t err,
    const char *fmt, ...)
{
}


void
ngx_log_error_core(ngx_uint_t level, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
}


/* request bodies are not read by the fuzzed parsers */

ssize_t
ngx_read_file(ngx_file_t *file, u_char *buf, size_t size, off_t offset)
{
    return NGX_ERROR;
}


/* nginx's own, from src/core/ngx_string.c */

uint32_t
ngx_utf8_decode(u_char **p, size_t n)
{
    size_t    len;
    uint32_t  u, i, valid;

    u = **p;

    if (u >= 0xf0) {
        u &= 0x07;
        valid = 0xffff;
        len = 3;

    } else if (u >= 0xe0) {
        u &= 0x0f;
        valid = 0x7ff;
        len = 2;

    } else if (u >= 0xc2) {
        u &= 0x1f;
        valid = 0x7f;
        len = 1;

    } else {
        (*p)++;
        return 0xffffffff;
    }

    if (n - 1 < len) {
        return 0xfffffffe;
    }

    (*p)++;

    while (len) {
        i = *(*p)++;

        if (i < 0x80) {
            return 0xffffffff;
        }

        u = (u << 6) | (i & 0x3f);

        len--;
    }

    if (u > valid) {
        return u;
    }

    return 0xffffffff;
}


u_char *
ngx_snprintf(u_char *buf, size_t max, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + max, fmt, args);
    va_end(args);

    return p;
}
