
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * "openbank_status": the partners, their plans and the shared zone's use,
 * as JSON, for operators.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_cluster.h>
#include <ngx_http_openbank_sync.h>
#include <ngx_http_openbank_breaker.h>
#include <ngx_http_openbank_concurrency.h>
#include <ngx_http_openbank_limit.h>
#include <ngx_http_openbank_registry.h>
#include <ngx_http_openbank_status.h>


typedef struct {
    ngx_http_openbank_main_conf_t  *obmcf;
    ngx_array_t                    *all;        /* partner pointers */
    ngx_buf_t                      *b;
    uint64_t                        now;
    size_t                          size;
    size_t                          used;
    ngx_uint_t                      records;
} ngx_http_openbank_status_t;


static ngx_int_t ngx_http_openbank_status_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_openbank_status_atomic(
    ngx_http_openbank_zone_t *zone, void *data);


char *
ngx_http_openbank_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_openbank_loc_conf_t *oblcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (oblcf->status != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    oblcf->status = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_openbank_status_handler;

    return NGX_CONF_OK;
}


#define NGX_HTTP_OPENBANK_PARTNER_JSON_LEN                                   \
    (sizeof("{\"name\":\"\",\"plan\":\"\",},") - 1 + 2 * 64)


static ngx_int_t
ngx_http_openbank_status_handler(ngx_http_request_t *r)
{
    size_t                          len;
    ngx_int_t                       rc;
    ngx_buf_t                      *b;
    ngx_str_t                       name;
    ngx_uint_t                      i, n;
    ngx_array_t                     all;
    ngx_http_openbank_partner_t    *partner, **pp;
    ngx_http_openbank_status_t      st;
    ngx_http_openbank_main_conf_t  *obmcf;

    rc = ngx_http_openbank_get_endpoint_start(r);
    if (rc != NGX_OK) {
        return rc;
    }

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    partner = obmcf->partners.elts;

    len = sizeof("{\"partners\":[],\"zone\":{\"name\":\"\",\"size\":,"
                 "\"used\":,\"records\":}}\n") + 64 + 3 * NGX_INT_T_LEN;

    /* the static partners, then the registry's */

    if (ngx_array_init(&all, r->pool, obmcf->partners.nelts + 16,
                       sizeof(ngx_http_openbank_partner_t *))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < obmcf->partners.nelts; i++) {
        pp = ngx_array_push(&all);
        if (pp == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        *pp = &partner[i];
    }

    if (ngx_http_openbank_registry_partners(r, &all) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    pp = all.elts;

    /* ?partner=NAME: that partner alone (the developer portal's usage page) */

    if (ngx_http_arg(r, (u_char *) "partner", 7, &name) == NGX_OK) {

        for (i = 0, n = 0; i < all.nelts; i++) {
            if (pp[i]->name.len == name.len
                && ngx_strncmp(pp[i]->name.data, name.data, name.len) == 0)
            {
                pp[n++] = pp[i];
            }
        }

        all.nelts = n;
    }

    for (i = 0; i < all.nelts; i++) {
        len += NGX_HTTP_OPENBANK_PARTNER_JSON_LEN
               + ngx_http_openbank_limit_status_len(pp[i]);
    }

    len += ngx_http_openbank_cluster_status_len(obmcf)
           + ngx_http_openbank_sync_status_len(obmcf)
           + ngx_http_openbank_breaker_status_len(obmcf)
           + ngx_http_openbank_concurrency_status_len(obmcf, all.nelts);

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, "{\"partners\":[",
                         sizeof("{\"partners\":[") - 1);

    /* one lock for the whole answer: a consistent picture */

    st.obmcf = obmcf;
    st.all = &all;
    st.b = b;
    st.now = ngx_http_openbank_now_ms();

    (void) ngx_http_openbank_store_atomic(obmcf->shm_zone->data,
                                          ngx_http_openbank_status_atomic,
                                          &st);

    b->last = ngx_http_openbank_cluster_status(b->last, obmcf);
    b->last = ngx_http_openbank_sync_status(b->last, obmcf);

    b->last = ngx_sprintf(b->last,
                          ",\"zone\":{\"name\":\"%V\",\"size\":%uz,"
                          "\"used\":%uz,\"records\":%ui}}\n",
                          &obmcf->shm_zone->shm.name, st.size, st.used,
                          st.records);

    r->headers_out.status = NGX_HTTP_OK;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    return ngx_http_openbank_send_response(r, b->pos, b->last - b->pos);
}


static ngx_int_t
ngx_http_openbank_status_atomic(ngx_http_openbank_zone_t *zone, void *data)
{
    ngx_http_openbank_status_t  *st = data;

    ngx_buf_t                     *b;
    ngx_uint_t                     i;
    ngx_http_openbank_partner_t  **partner;

    b = st->b;
    partner = st->all->elts;

    for (i = 0; i < st->all->nelts; i++) {
        b->last = ngx_sprintf(b->last,
                              "%s{\"name\":\"%V\",\"plan\":\"%V\",",
                              i ? "," : "", &partner[i]->name,
                              &partner[i]->plan->name);

        b->last = ngx_http_openbank_limit_status(b->last, st->obmcf,
                                                 partner[i], st->now);

        *b->last++ = '}';
    }

    *b->last++ = ']';

    b->last = ngx_http_openbank_breaker_status(b->last, zone, st->obmcf,
                                               st->now);
    b->last = ngx_http_openbank_concurrency_status(b->last, zone, st->obmcf,
                                                   st->all->nelts);

    ngx_http_openbank_zone_usage(st->obmcf->shm_zone, &st->size, &st->used);
    st->records = ngx_http_openbank_store_records(zone);

    return NGX_OK;
}
