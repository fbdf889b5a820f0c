
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Dynamic client registration, RFC 7591 and RFC 7592
 * (ngx_http_openbank_registration.c), and its JSON: the client metadata
 * and the software statement's claims
 * (ngx_http_openbank_registration_json.c).
 */


#ifndef _NGX_HTTP_OPENBANK_REGISTRATION_H_INCLUDED_
#define _NGX_HTTP_OPENBANK_REGISTRATION_H_INCLUDED_


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_jwt.h>


#define NGX_HTTP_OPENBANK_DCR_BODY_MAX      (64 * 1024)
#define NGX_HTTP_OPENBANK_DCR_JWKS_MAX      (16 * 1024)
#define NGX_HTTP_OPENBANK_DCR_STRING_MAX    255
#define NGX_HTTP_OPENBANK_DCR_URIS_MAX      16

/* token_endpoint_auth_method */
#define NGX_HTTP_OPENBANK_DCR_PRIVATE_KEY_JWT  1
#define NGX_HTTP_OPENBANK_DCR_TLS_CLIENT_AUTH  2

/* the members of client metadata, as bits of what was given */
#define NGX_HTTP_OPENBANK_DCR_STATEMENT     0x0001
#define NGX_HTTP_OPENBANK_DCR_AUTH_METHOD   0x0002
#define NGX_HTTP_OPENBANK_DCR_GRANT_TYPES   0x0004
#define NGX_HTTP_OPENBANK_DCR_JWKS          0x0008
#define NGX_HTTP_OPENBANK_DCR_SCOPE         0x0010
#define NGX_HTTP_OPENBANK_DCR_CLIENT_NAME   0x0020
#define NGX_HTTP_OPENBANK_DCR_SOFTWARE_ID   0x0040
#define NGX_HTTP_OPENBANK_DCR_REDIRECT_URIS 0x0080
#define NGX_HTTP_OPENBANK_DCR_CLIENT_ID     0x0100
#define NGX_HTTP_OPENBANK_DCR_SUBJECT_DN    0x0200

/* what a refusal of the JSON is: RFC 7591's error codes */
#define NGX_HTTP_OPENBANK_DCR_E_METADATA    1  /* invalid_client_metadata */
#define NGX_HTTP_OPENBANK_DCR_E_STATEMENT   2  /* invalid_software_statement */
#define NGX_HTTP_OPENBANK_DCR_E_REDIRECT    3  /* invalid_redirect_uri */


/* client metadata (RFC 7591 2), of the body or of the statement */

typedef struct {
    ngx_uint_t                    present;     /* NGX_HTTP_OPENBANK_DCR_* */
    ngx_str_t                     software_statement;
    ngx_uint_t                    auth_method;
    ngx_str_t                     jwks;        /* JSON text, NUL-ended */
    ngx_str_t                     scope;
    ngx_str_t                     client_name;
    ngx_str_t                     software_id;
    ngx_str_t                     client_id;   /* of a PUT */
    ngx_str_t                     subject_dn;
    ngx_str_t                     uris[NGX_HTTP_OPENBANK_DCR_URIS_MAX];
    ngx_uint_t                    nuris;       /* redirect_uris */
    ngx_uint_t                    error;       /* NGX_HTTP_OPENBANK_DCR_E_* */
} ngx_http_openbank_dcr_meta_t;


/* openbank_registration_directory and openbank_registration_plan */

typedef struct ngx_http_openbank_dcr_conf_s {
    ngx_http_openbank_jwks_t     *directory;
    ngx_str_t                     directory_file;
    ngx_str_t                     iss;
    ngx_str_t                     plan;
    ngx_array_t                  *scopes;      /* ngx_str_t; NULL: any the
                                                  configuration knows */
    ngx_str_t                     path;        /* of the endpoint, for
                                                  the metadata */
} ngx_http_openbank_dcr_conf_t;


/* ngx_http_openbank_registration_json.c */
ngx_int_t ngx_http_openbank_dcr_parse(ngx_pool_t *pool, ngx_str_t *text,
    ngx_uint_t statement, ngx_http_openbank_dcr_meta_t *m, u_char *err,
    size_t len);
ngx_int_t ngx_http_openbank_dcr_claims(ngx_pool_t *pool, ngx_str_t *jwt,
    ngx_http_openbank_dcr_meta_t *m, u_char *err, size_t len);

/* ngx_http_openbank_registration.c */
char *ngx_http_openbank_registration_endpoint(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_openbank_registration_directory(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_openbank_registration_plan(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_openbank_registration_init(ngx_conf_t *cf,
    ngx_http_openbank_main_conf_t *obmcf);
ngx_int_t ngx_http_openbank_registration_dn(ngx_http_request_t *r,
    ngx_http_openbank_partner_t *partner, uint64_t *cred);


#endif /* _NGX_HTTP_OPENBANK_REGISTRATION_H_INCLUDED_ */
