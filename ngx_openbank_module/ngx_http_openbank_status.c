
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * "openbank_status": the partners, their plans and the shared zone's use,
 * as JSON, for operators.
 */


#include <ngx_http_openbank.h>


static ngx_int_t ngx_http_openbank_status_handler(ngx_http_request_t *r);
static u_char *ngx_http_openbank_status_quotas(u_char *p,
    ngx_http_openbank_partner_t *partner);


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


#define NGX_HTTP_OPENBANK_QUOTA_JSON_LEN                                     \
    (sizeof("{\"product\":\"\",\"limit\":,\"window\":\"month\"},") - 1      \
     + 64 + NGX_INT_T_LEN)

#define NGX_HTTP_OPENBANK_PARTNER_JSON_LEN                                   \
    (sizeof("{\"name\":\"\",\"plan\":\"\",\"rate\":{\"limit\":,"            \
            "\"period\":,\"burst\":},\"quotas\":[]},") - 1                  \
     + 2 * 64 + 3 * NGX_INT_T_LEN)


static ngx_int_t
ngx_http_openbank_status_handler(ngx_http_request_t *r)
{
    size_t                          len, size, used;
    ngx_int_t                       rc;
    ngx_buf_t                      *b;
    ngx_uint_t                      i, nquotas;
    ngx_chain_t                     out;
    ngx_http_openbank_plan_t       *plan;
    ngx_http_openbank_partner_t    *partner;
    ngx_http_openbank_main_conf_t  *obmcf;

    if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    partner = obmcf->partners.elts;

    len = sizeof("{\"partners\":[],\"zone\":{\"name\":\"\",\"size\":,"
                 "\"used\":,\"records\":}}\n") + 64 + 3 * NGX_INT_T_LEN;

    for (i = 0; i < obmcf->partners.nelts; i++) {
        plan = partner[i].plan;
        nquotas = plan->quotas.nelts + partner[i].quotas.nelts;

        len += NGX_HTTP_OPENBANK_PARTNER_JSON_LEN
               + nquotas * NGX_HTTP_OPENBANK_QUOTA_JSON_LEN;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, "{\"partners\":[",
                         sizeof("{\"partners\":[") - 1);

    for (i = 0; i < obmcf->partners.nelts; i++) {
        plan = partner[i].plan;

        b->last = ngx_sprintf(b->last,
                              "%s{\"name\":\"%V\",\"plan\":\"%V\","
                              "\"rate\":{\"limit\":%ui,\"period\":%ui,"
                              "\"burst\":%ui},\"quotas\":[",
                              i ? "," : "", &partner[i].name, &plan->name,
                              plan->rate, plan->period, plan->burst);

        b->last = ngx_http_openbank_status_quotas(b->last, &partner[i]);

        *b->last++ = ']';
        *b->last++ = '}';
    }

    ngx_http_openbank_zone_usage(obmcf->shm_zone, &size, &used);

    b->last = ngx_sprintf(b->last,
                          "],\"zone\":{\"name\":\"%V\",\"size\":%uz,"
                          "\"used\":%uz,\"records\":%ui}}\n",
                          &obmcf->shm_zone->shm.name, size, used,
                          ((ngx_http_openbank_zone_t *)
                           obmcf->shm_zone->data)->sh->records);

    b->last_buf = 1;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* each product once: the partner's own quota, else its plan's */

static u_char *
ngx_http_openbank_status_quotas(u_char *p, ngx_http_openbank_partner_t *partner)
{
    ngx_uint_t                  i, n, first;
    ngx_array_t                *lists[2];
    ngx_http_openbank_quota_t  *quota, *effective;

    lists[0] = &partner->quotas;
    lists[1] = &partner->plan->quotas;
    first = 1;

    for (n = 0; n < 2; n++) {

        quota = lists[n]->elts;

        for (i = 0; i < lists[n]->nelts; i++) {

            effective = ngx_http_openbank_partner_quota(partner,
                                                        &quota[i].product);
            if (effective != &quota[i]) {
                continue;
            }

            p = ngx_sprintf(p, "%s{\"product\":\"%V\",\"limit\":%ui,"
                            "\"window\":\"%s\"}",
                            first ? "" : ",", &quota[i].product,
                            quota[i].limit,
                            quota[i].window == NGX_HTTP_OPENBANK_WINDOW_DAY
                            ? "day" : "month");
            first = 0;
        }
    }

    return p;
}
