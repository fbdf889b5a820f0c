
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Small helpers shared by the module's files: hashing, parsing of
 * configuration values, reading files at load time.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_util.h>

#include <openssl/evp.h>


static ngx_int_t ngx_http_openbank_digits(u_char *p, ngx_uint_t n);


static EVP_MD      *ngx_http_openbank_md_sha256;
static EVP_MD_CTX  *ngx_http_openbank_md_ctx;


/*
 * SHA-256 with a digest fetched once: OpenSSL 3 would otherwise look the
 * algorithm up on every call.
 */

void
ngx_http_openbank_sha256(u_char *out, u_char *data, size_t len)
{
    unsigned int  n;

    if (ngx_http_openbank_md_sha256 == NULL) {
        ngx_http_openbank_md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
        ngx_http_openbank_md_ctx = EVP_MD_CTX_new();

        if (ngx_http_openbank_md_sha256 == NULL
            || ngx_http_openbank_md_ctx == NULL)
        {
            /* out of memory at start: a digest that matches nothing */
            ngx_memzero(out, NGX_HTTP_OPENBANK_HASH_LEN);
            return;
        }
    }

    if (EVP_DigestInit_ex2(ngx_http_openbank_md_ctx,
                           ngx_http_openbank_md_sha256, NULL) != 1
        || EVP_DigestUpdate(ngx_http_openbank_md_ctx, data, len) != 1
        || EVP_DigestFinal_ex(ngx_http_openbank_md_ctx, out, &n) != 1)
    {
        ngx_memzero(out, NGX_HTTP_OPENBANK_HASH_LEN);
    }
}


/* "sha256:" and 64 hexadecimal digits */

ngx_int_t
ngx_http_openbank_parse_hash(ngx_str_t *value, u_char *out)
{
    u_char      *p;
    ngx_int_t    hi, lo;
    ngx_uint_t   i;

    if (value->len != 7 + 2 * NGX_HTTP_OPENBANK_HASH_LEN
        || ngx_strncmp(value->data, "sha256:", 7) != 0)
    {
        return NGX_ERROR;
    }

    p = value->data + 7;

    for (i = 0; i < NGX_HTTP_OPENBANK_HASH_LEN; i++) {
        hi = ngx_hextoi(&p[2 * i], 1);
        lo = ngx_hextoi(&p[2 * i + 1], 1);

        if (hi == NGX_ERROR || lo == NGX_ERROR) {
            return NGX_ERROR;
        }

        out[i] = (u_char) (hi * 16 + lo);
    }

    return NGX_OK;
}


/*
 * The module's one whole-file reader: a regular file of at most "max"
 * bytes, all of it (a short read is an error), into "pool", or into
 * ngx_alloc() memory when "pool" is NULL, with a NUL after it so that
 * parsers may rely on one.  It logs nothing: NGX_DECLINED means there is
 * no such file; on NGX_ERROR, "what" names the call that failed and
 * "err" its error, or "what" is NULL: not a regular file of at most
 * "max" bytes.
 */

ngx_int_t
ngx_http_openbank_read_whole(ngx_pool_t *pool, ngx_str_t *name, size_t max,
    ngx_str_t *out, ngx_err_t *err, const char **what)
{
    u_char           *buf;
    size_t            size;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_file_info_t   fi;

    *err = 0;
    *what = ngx_open_file_n;

    fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        *err = ngx_errno;
        return (*err == NGX_ENOENT) ? NGX_DECLINED : NGX_ERROR;
    }

    buf = NULL;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        *err = ngx_errno;
        *what = ngx_fd_info_n;
        goto failed;
    }

    if (!ngx_is_file(&fi) || (uint64_t) ngx_file_size(&fi) > max) {
        *what = NULL;
        goto failed;
    }

    size = (size_t) ngx_file_size(&fi);

    buf = pool ? ngx_pnalloc(pool, size + 1) : malloc(size + 1);
    if (buf == NULL) {
        *err = NGX_ENOMEM;
        *what = "malloc()";
        goto failed;
    }

    n = ngx_read_fd(fd, buf, size);

    if (n == -1 || (size_t) n != size) {
        *err = (n == -1) ? ngx_errno : 0;
        *what = ngx_read_fd_n;
        goto failed;
    }

    (void) ngx_close_file(fd);

    buf[size] = '\0';
    out->data = buf;
    out->len = size;

    return NGX_OK;

failed:

    if (buf && pool == NULL) {
        ngx_free(buf);
    }

    (void) ngx_close_file(fd);

    return NGX_ERROR;
}


/* a whole file read at load time, its failure an error of the directive */

ngx_int_t
ngx_http_openbank_read_file(ngx_conf_t *cf, ngx_str_t *name, size_t max,
    ngx_str_t *out)
{
    ngx_err_t    err;
    const char  *what;

    if (ngx_http_openbank_read_whole(cf->pool, name, max, out, &err, &what)
        == NGX_OK)
    {
        return NGX_OK;
    }

    if (what == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is not a regular file of at most "
                           "%uz bytes", name, max);

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, err, "%s \"%V\" failed",
                           what, name);
    }

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_openbank_digits(u_char *p, ngx_uint_t n)
{
    ngx_uint_t  i;

    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return NGX_ERROR;
        }
    }

    return ngx_atoi(p, n);
}


/* "2027-06-30T00:00:00Z" or "2027-06-30" (midnight UTC) */

time_t
ngx_http_openbank_parse_time(ngx_str_t *value)
{
    u_char     *p;
    ngx_int_t   year, month, day, hour, min, sec, mdays;

    p = value->data;

    if ((value->len != 10 && value->len != 20)
        || p[4] != '-' || p[7] != '-')
    {
        return NGX_ERROR;
    }

    year = ngx_http_openbank_digits(p, 4);
    month = ngx_http_openbank_digits(p + 5, 2);
    day = ngx_http_openbank_digits(p + 8, 2);
    hour = 0;
    min = 0;
    sec = 0;

    if (value->len == 20) {
        if (p[10] != 'T' || p[13] != ':' || p[16] != ':' || p[19] != 'Z') {
            return NGX_ERROR;
        }

        hour = ngx_http_openbank_digits(p + 11, 2);
        min = ngx_http_openbank_digits(p + 14, 2);
        sec = ngx_http_openbank_digits(p + 17, 2);
    }

    if (year < 1970 || year > 9999 || month < 1 || month > 12
        || day < 1 || hour < 0 || hour > 23 || min < 0 || min > 59
        || sec < 0 || sec > 59)
    {
        return NGX_ERROR;
    }

    mdays = ngx_http_openbank_month_days(year, month);

    if (day > mdays) {
        return NGX_ERROR;
    }

    return ngx_http_openbank_days_from_civil(year, month, day) * 86400
           + hour * 3600 + min * 60 + sec;
}


ngx_int_t
ngx_http_openbank_month_days(ngx_int_t year, ngx_int_t month)
{
    static ngx_int_t  days[] = { 31, 28, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31 };

    if (month == 2
        && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
    {
        return 29;
    }

    return days[month - 1];
}


/* days since 1970-01-01 of a proleptic Gregorian date */

time_t
ngx_http_openbank_days_from_civil(ngx_int_t year, ngx_int_t month,
    ngx_int_t day)
{
    ngx_int_t  era, yoe, doy, doe;

    year -= (month <= 2);
    era = (year >= 0 ? year : year - 399) / 400;
    yoe = year - era * 400;
    doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return (time_t) era * 146097 + doe - 719468;
}


/* "UTC", "Z", "+08:00", "-05:30": seconds east of UTC */

ngx_int_t
ngx_http_openbank_parse_tz(ngx_str_t *value)
{
    u_char     *p;
    ngx_int_t   hour, min;

    p = value->data;

    if ((value->len == 3 && ngx_strncasecmp(p, (u_char *) "UTC", 3) == 0)
        || (value->len == 1 && p[0] == 'Z'))
    {
        return 0;
    }

    if (value->len != 6 || (p[0] != '+' && p[0] != '-') || p[3] != ':') {
        return NGX_CONF_UNSET;
    }

    hour = ngx_http_openbank_digits(p + 1, 2);
    min = ngx_http_openbank_digits(p + 4, 2);

    if (hour < 0 || hour > 14 || min < 0 || min > 59) {
        return NGX_CONF_UNSET;
    }

    return (p[0] == '-' ? -1 : 1) * (hour * 3600 + min * 60);
}


/* names of partners, plans, scopes and products: [A-Za-z0-9_-]{1,64} */

ngx_int_t
ngx_http_openbank_valid_name(ngx_str_t *name)
{
    u_char      c;
    ngx_uint_t  i;

    if (name->len == 0 || name->len > NGX_HTTP_OPENBANK_NAME_MAX) {
        return NGX_ERROR;
    }

    for (i = 0; i < name->len; i++) {
        c = name->data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'))
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The first half of a directive that defines an object at the http level
 * ("openbank_breaker core failures=50%;") and names it in a location
 * ("openbank_breaker core;").  "all" holds pointers to objects
 * of "size" bytes, each made (undefined) the first time it is named, so
 * that a location may name one defined further down.  NGX_OK: a
 * definition, whose parameters the caller parses; NGX_DONE: a use, set in
 * *field; NGX_ERROR: logged.
 */

ngx_int_t
ngx_http_openbank_named(ngx_conf_t *cf, ngx_array_t *all, size_t size,
    const char *what, void **field, ngx_http_openbank_named_t **named)
{
    ngx_str_t                   *value;
    ngx_uint_t                   i;
    ngx_http_openbank_named_t  **np, *n;

    value = cf->args->elts;

    if (ngx_http_openbank_valid_name(&value[1]) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid %s name \"%V\": letters, digits, \"-\" "
                           "and \"_\" only", what, &value[1]);
        return NGX_ERROR;
    }

    np = all->elts;
    n = NULL;

    for (i = 0; i < all->nelts; i++) {
        if (np[i]->name.len == value[1].len
            && ngx_strncmp(np[i]->name.data, value[1].data, value[1].len)
               == 0)
        {
            n = np[i];
            break;
        }
    }

    if (n == NULL) {
        n = ngx_pcalloc(cf->pool, size);
        np = ngx_array_push(all);

        if (n == NULL || np == NULL) {
            return NGX_ERROR;
        }

        *np = n;

        n->name = value[1];
        n->conf_file = cf->conf_file->file.name;
        n->conf_line = cf->conf_file->line;
    }

    *named = n;

    if (cf->cmd_type != NGX_HTTP_MAIN_CONF) {

        if (cf->args->nelts != 2) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\": a %s is defined "
                               "at the http level and named alone here",
                               &value[2], what);
            return NGX_ERROR;
        }

        if (*field != NGX_CONF_UNSET_PTR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" directive is duplicate", &value[0]);
            return NGX_ERROR;
        }

        *field = n;
        n->used = 1;

        return NGX_DONE;
    }

    if (n->defined) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate %s \"%V\", first defined in %V:%ui",
                           what, &value[1], &n->conf_file, n->conf_line);
        return NGX_ERROR;
    }

    n->defined = 1;
    n->conf_file = cf->conf_file->file.name;
    n->conf_line = cf->conf_file->line;

    return NGX_OK;
}


/*
 * Once the http block is read: an object a location names must be
 * defined, and needs the zone; one that no location names is a warning.
 */

ngx_int_t
ngx_http_openbank_named_check(ngx_conf_t *cf, ngx_array_t *all,
    const char *what, ngx_shm_zone_t *zone)
{
    ngx_uint_t                   i;
    ngx_http_openbank_named_t  **np;

    np = all->elts;

    for (i = 0; i < all->nelts; i++) {

        if (!np[i]->defined) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "unknown %s \"%V\" in %V:%ui: it is not defined "
                          "at the http level", what, &np[i]->name,
                          &np[i]->conf_file, np[i]->conf_line);
            return NGX_ERROR;
        }

        if (zone == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "%s \"%V\" in %V:%ui needs an \"openbank_zone\"",
                          what, &np[i]->name, &np[i]->conf_file,
                          np[i]->conf_line);
            return NGX_ERROR;
        }

        if (!np[i]->used) {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "%s \"%V\" in %V:%ui is used by no location",
                          what, &np[i]->name, &np[i]->conf_file,
                          np[i]->conf_line);
        }
    }

    return NGX_OK;
}


/*
 * The first header of that name in a list, and how many there are:
 * a credential sent twice is refused rather than guessed at.
 */

ngx_table_elt_t *
ngx_http_openbank_find_header(ngx_list_t *headers, const char *name,
    ngx_uint_t *count)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *found;

    len = ngx_strlen(name);
    part = &headers->part;
    i = 0;
    found = NULL;
    *count = 0;

    while ((h = ngx_http_openbank_list_next(headers, &part, &i)) != NULL) {

        /* a header deleted by a filter has its hash zeroed */

        if (h->hash != 0
            && h->key.len == len
            && ngx_strncasecmp(h->key.data, (u_char *) name, len) == 0)
        {
            if (found == NULL) {
                found = h;
            }

            (*count)++;
        }
    }

    return found;
}


/*
 * base64url as JOSE uses it (RFC 7515 2): no padding, and no bits set
 * after the last byte, so that one value has exactly one encoding.
 * "dst->data" must have room for ngx_base64_decoded_length(src->len).
 */

ngx_int_t
ngx_http_openbank_decode_base64url(ngx_str_t *dst, ngx_str_t *src)
{
    u_char      c;
    ngx_uint_t  bits;

    static const u_char  alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    if (src->len % 4 == 1) {
        return NGX_ERROR;
    }

    if (src->len == 0) {
        dst->len = 0;
        return NGX_OK;
    }

    c = src->data[src->len - 1];

    if (c == '=') {
        return NGX_ERROR;
    }

    if (src->len % 4 != 0) {
        for (bits = 0; bits < 64; bits++) {
            if (alphabet[bits] == c) {
                break;
            }
        }

        if (bits == 64 || (bits & (src->len % 4 == 2 ? 0x0f : 0x03))) {
            return NGX_ERROR;
        }
    }

    /* nginx's decoder stops at the first "=": refuse any before that */

    if (memchr(src->data, '=', src->len) != NULL) {
        return NGX_ERROR;
    }

    return ngx_decode_base64url(dst, src);
}


/*
 * Feeds the whole request body to a digest: its buffers in memory, and
 * what nginx wrote to a temporary file, read back in pieces.
 */

ngx_int_t
ngx_http_openbank_body_digest(ngx_http_request_t *r, EVP_MD_CTX *md)
{
    off_t         offset;
    size_t        size;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;
    u_char        buf[4096];

    if (r->request_body == NULL) {
        return NGX_OK;
    }

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            if (EVP_DigestUpdate(md, b->pos, b->last - b->pos) != 1) {
                return NGX_ERROR;
            }

            continue;
        }

        if (!b->in_file || b->file == NULL) {
            continue;
        }

        for (offset = b->file_pos; offset < b->file_last; offset += n) {
            size = (size_t) ngx_min(b->file_last - offset, (off_t) sizeof(buf));

            n = ngx_read_file(b->file, buf, size, offset);

            if (n == NGX_ERROR || n == 0) {
                return NGX_ERROR;
            }

            if (EVP_DigestUpdate(md, buf, n) != 1) {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}
