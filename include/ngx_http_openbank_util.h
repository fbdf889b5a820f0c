
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Hashes, files, times and names (ngx_http_openbank_util.c).
 */


#ifndef _NGX_HTTP_OPENBANK_UTIL_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_UTIL_H_INCLUDED_


#include <ngx_http_openbank.h>
#include <openssl/evp.h>


/*
 * An object defined at the http level and named by locations
 * (a breaker, a concurrency limit): its struct begins with this.
 */

typedef struct {
    ngx_str_t                     name;
    ngx_str_t                     conf_file;   /* defined, or first named */
    ngx_uint_t                    conf_line;
    unsigned                      defined:1;
    unsigned                      used:1;
} ngx_http_openbank_named_t;
#define NGX_HTTP_OPENBANK_NAME_MAX  64          /* a partner's, a plan's */


/* ngx_http_openbank_util.c */
ngx_int_t ngx_http_openbank_named(ngx_conf_t *cf, ngx_array_t *all,
    size_t size, const char *what, void **field,
    ngx_http_openbank_named_t **named);
ngx_int_t ngx_http_openbank_named_check(ngx_conf_t *cf, ngx_array_t *all,
    const char *what, ngx_shm_zone_t *zone);
void ngx_http_openbank_sha256(u_char *out, u_char *data, size_t len);
ngx_int_t ngx_http_openbank_parse_hash(ngx_str_t *value, u_char *out);
ngx_int_t ngx_http_openbank_read_whole(ngx_pool_t *pool, ngx_str_t *name,
    size_t max, ngx_str_t *out, ngx_err_t *err, const char **what);
ngx_int_t ngx_http_openbank_read_file(ngx_conf_t *cf, ngx_str_t *name,
    size_t max, ngx_str_t *out);
time_t ngx_http_openbank_parse_time(ngx_str_t *value);
ngx_int_t ngx_http_openbank_month_days(ngx_int_t year, ngx_int_t month);
time_t ngx_http_openbank_days_from_civil(ngx_int_t year, ngx_int_t month,
    ngx_int_t day);
ngx_int_t ngx_http_openbank_parse_tz(ngx_str_t *value);
ngx_int_t ngx_http_openbank_valid_name(ngx_str_t *name);
ngx_int_t ngx_http_openbank_body_digest(ngx_http_request_t *r,
    EVP_MD_CTX *md);
ngx_int_t ngx_http_openbank_decode_base64url(ngx_str_t *dst, ngx_str_t *src);


/*
 * The elements of an ngx_list_t one by one (nginx's walk of a list, parts
 * and all): "part" starts at &list->part and "i" at 0; NULL after the
 * last element.
 */

static ngx_inline void *
ngx_http_openbank_list_next(ngx_list_t *list, ngx_list_part_t **part,
    ngx_uint_t *i)
{
    while (*i >= (*part)->nelts) {
        if ((*part)->next == NULL) {
            return NULL;
        }

        *part = (*part)->next;
        *i = 0;
    }

    return (u_char *) (*part)->elts + (*i)++ * list->size;
}


/*
 * The words of [*p, last) one by one, as OAuth's scope separates them,
 * by one space each (two spaces make an empty word): NGX_DONE after the
 * last.
 */

static ngx_inline ngx_int_t
ngx_http_openbank_next_word(u_char **p, u_char *last, ngx_str_t *word)
{
    u_char  *q;

    if (*p >= last) {
        return NGX_DONE;
    }

    q = ngx_strlchr(*p, last, ' ');
    if (q == NULL) {
        q = last;
    }

    word->data = *p;
    word->len = q - *p;

    *p = q + 1;

    return NGX_OK;
}


#endif /* _NGX_HTTP_OPENBANK_UTIL_H_INCLUDED_ */
