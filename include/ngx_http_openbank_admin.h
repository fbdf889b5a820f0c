
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The Admin API (ngx_http_openbank_admin.c), its JSON bodies
 * (ngx_http_openbank_admin_json.c), and the bodies read and answers
 * written that the JSON APIs share (ngx_http_openbank_admin_out.c).
 */


#ifndef _NGX_HTTP_OPENBANK_ADMIN_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_ADMIN_H_INCLUDED_


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_registry.h>

#include <yajl/yajl_tree.h>


/* the members of a body, as bits of what an endpoint takes */
#define NGX_HTTP_OPENBANK_ADMIN_NAME         0x0001
#define NGX_HTTP_OPENBANK_ADMIN_PLAN         0x0002
#define NGX_HTTP_OPENBANK_ADMIN_SCOPES       0x0004
#define NGX_HTTP_OPENBANK_ADMIN_CLIENT_ID    0x0008
#define NGX_HTTP_OPENBANK_ADMIN_QUOTAS       0x0010
#define NGX_HTTP_OPENBANK_ADMIN_STATUS       0x0020
#define NGX_HTTP_OPENBANK_ADMIN_TYPE         0x0040
#define NGX_HTTP_OPENBANK_ADMIN_EXPIRES      0x0080
#define NGX_HTTP_OPENBANK_ADMIN_JWKS         0x0100
#define NGX_HTTP_OPENBANK_ADMIN_CERTIFICATE  0x0200
#define NGX_HTTP_OPENBANK_ADMIN_SHA256       0x0400

#define NGX_HTTP_OPENBANK_ADMIN_BODY_MAX     (64 * 1024)
#define NGX_HTTP_OPENBANK_ADMIN_JWKS_MAX     (48 * 1024)


typedef struct {
    ngx_uint_t                    present;     /* the members given */
    ngx_str_t                     name;
    ngx_str_t                     plan;
    ngx_array_t                   scopes;      /* ngx_str_t */
    ngx_str_t                     client_id;
    ngx_array_t                   quotas;      /* ngx_http_openbank_quota_t */
    ngx_uint_t                    status;      /* NGX_HTTP_OPENBANK_REG_* */
    ngx_uint_t                    type;        /* NGX_HTTP_OPENBANK_CRED_* */
    time_t                        expires_at;
    ngx_str_t                     jwks;        /* as text, NUL-terminated */
    ngx_str_t                     certificate; /* PEM */
    u_char                        sha256[NGX_HTTP_OPENBANK_HASH_LEN];
} ngx_http_openbank_admin_body_t;


/* an answer sent once the registry change it reports is durable */

typedef ngx_int_t (*ngx_http_openbank_send_pt)(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *body);

typedef struct ngx_http_openbank_reply_s {
    ngx_uint_t                    status;
    ngx_str_t                     answer;
    ngx_http_openbank_send_pt     send;
} ngx_http_openbank_reply_t;


/*
 * A JSON API's request, once routed (ngx_http_openbank_json_request()):
 * "dispatch" answers it with its body, whole, or NULL for a request
 * without one, and NGX_AGAIN for an answer sent once durable
 * (ngx_http_openbank_reply_durable(), ngx_http_openbank_events_emit()).
 * A body of more than "max" bytes is refused by "too_large", or else by
 * 413 payload_too_large: "<what> is at most <max> bytes".
 */

typedef ngx_int_t (*ngx_http_openbank_json_pt)(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *body);

typedef struct ngx_http_openbank_json_api_s {
    size_t                        max;
    const char                   *what;
    ngx_http_openbank_json_pt     dispatch;
    ngx_http_openbank_json_pt     too_large;
} ngx_http_openbank_json_api_t;


/* a growing JSON text in a pool */

typedef struct {
    ngx_pool_t                   *pool;
    u_char                       *start;
    u_char                       *pos;
    u_char                       *end;
    ngx_uint_t                    failed;
} ngx_http_openbank_out_t;


/* ngx_http_openbank_admin_json.c */
ngx_int_t ngx_http_openbank_admin_parse(ngx_pool_t *pool, ngx_str_t *text,
    ngx_uint_t allowed, ngx_http_openbank_admin_body_t *b, u_char *err,
    size_t len);
ngx_int_t ngx_http_openbank_admin_valid_name(ngx_str_t *name);
ngx_str_t *ngx_http_openbank_admin_type_name(ngx_uint_t type);
ngx_int_t ngx_http_openbank_jwks_text(ngx_pool_t *pool, yajl_val v,
    size_t max, ngx_str_t *out, u_char *err, size_t len);

/* ngx_http_openbank_admin.c */
char *ngx_http_openbank_admin_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_openbank_admin_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_openbank_admin_secret(u_char *out, const char *prefix);
ngx_int_t ngx_http_openbank_audit_event(ngx_http_request_t *r,
    ngx_http_openbank_reg_op_t *op, ngx_str_t *actor, const char *action,
    ngx_str_t *target);

/* ngx_http_openbank_admin_out.c */
ngx_int_t ngx_http_openbank_json_request(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_uint_t with_body,
    ngx_http_openbank_json_api_t *api);
ngx_int_t ngx_http_openbank_admin_send(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *body);
void ngx_http_openbank_reply_durable(ngx_http_request_t *r, ngx_int_t rc);
void ngx_http_openbank_out_init(ngx_http_openbank_out_t *o,
    ngx_pool_t *pool);
ngx_int_t ngx_http_openbank_out_room(ngx_http_openbank_out_t *o,
    size_t len);
void ngx_http_openbank_out_raw(ngx_http_openbank_out_t *o,
    const char *fmt, ...);
void ngx_http_openbank_out_str(ngx_http_openbank_out_t *o, ngx_str_t *s);
void ngx_http_openbank_out_time(ngx_http_openbank_out_t *o, int64_t t);

#endif /* _NGX_HTTP_OPENBANK_ADMIN_H_INCLUDED_ */
