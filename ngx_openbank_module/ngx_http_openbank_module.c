
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The module's directives, configuration, the access phase pipeline
 * (every check, in its order, is a row of ngx_http_openbank_checks[]
 * below), the first response filter and the variables.  The response
 * side goes on in the filter modules of problem.c, limit.c,
 * idempotency.c and signature.c, in the order "config" declares them.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_admin.h>
#include <ngx_http_openbank_auth.h>
#include <ngx_http_openbank_breaker.h>
#include <ngx_http_openbank_cluster.h>
#include <ngx_http_openbank_cluster_limit.h>
#include <ngx_http_openbank_sync.h>
#include <ngx_http_openbank_concurrency.h>
#include <ngx_http_openbank_events.h>
#include <ngx_http_openbank_idempotency.h>
#include <ngx_http_openbank_jwt.h>
#include <ngx_http_openbank_limit.h>
#include <ngx_http_openbank_metrics.h>
#include <ngx_http_openbank_oauth.h>
#include <ngx_http_openbank_partner.h>
#include <ngx_http_openbank_registration.h>
#include <ngx_http_openbank_signature.h>
#include <ngx_http_openbank_status.h>
#include <ngx_http_openbank_token.h>
#include <ngx_http_openbank_util.h>
#include <ngx_http_openbank_version.h>


static ngx_int_t ngx_http_openbank_access_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_openbank_access_again(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_loc_conf_t *oblcf);
static ngx_int_t ngx_http_openbank_read_body(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);
static void ngx_http_openbank_body_read(ngx_http_request_t *r);
static ngx_int_t ngx_http_openbank_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_openbank_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_openbank_add_variables(ngx_conf_t *cf);
static void *ngx_http_openbank_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_openbank_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_openbank_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_openbank_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_uint_t ngx_http_openbank_checks_merge(
    ngx_http_openbank_loc_conf_t *conf);
static char *ngx_http_openbank_state(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_openbank_timezone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_openbank_auth(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_openbank_name(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_openbank_conf_set_sec(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_openbank_conf_set_enum(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_openbank_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_openbank_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_openbank_init_process(ngx_cycle_t *cycle);
static void ngx_http_openbank_exit_process(ngx_cycle_t *cycle);
static void ngx_http_openbank_exit_master(ngx_cycle_t *cycle);


/* a time in seconds, its bounds and how its error names them */
typedef struct {
    time_t                        min;
    time_t                        max;
    char                         *range;
} ngx_http_openbank_sec_bounds_t;


static ngx_http_openbank_sec_bounds_t  ngx_http_openbank_clock_skew_bounds = {
    0, 600, "0s to 10m"
};

static ngx_http_openbank_sec_bounds_t  ngx_http_openbank_token_ttl_bounds = {
    1, 86400, "1s to 1d"
};

/*
 * A client assertion's jti is kept in the zone until its exp: the bound
 * is also how long one assertion may hold zone memory.
 */
static ngx_http_openbank_sec_bounds_t
    ngx_http_openbank_assertion_lifetime_bounds = {
    1, NGX_HTTP_OPENBANK_ASSERTION_LIFETIME_MAX, "1s to 1h"
};


static ngx_conf_enum_t  ngx_http_openbank_signature_modes[] = {
    { ngx_string("off"), NGX_HTTP_OPENBANK_SIGNATURE_OFF },
    { ngx_string("optional"), NGX_HTTP_OPENBANK_SIGNATURE_OPTIONAL },
    { ngx_string("required"), NGX_HTTP_OPENBANK_SIGNATURE_REQUIRED },
    { ngx_null_string, 0 }
};


/*
 * The checks of the access phase (docs/architecture.md, "One request").
 * Which apply is worked out once per location, at merge time, into
 * oblcf->checks (ngx_http_openbank_checks_merge()); the runner skips the
 * others, and reads the body, once, for the checks that ask for it.
 */

#define NGX_HTTP_OPENBANK_CHECK_VERSION      0x0001
#define NGX_HTTP_OPENBANK_CHECK_IDENTIFY     0x0002
#define NGX_HTTP_OPENBANK_CHECK_RATE         0x0004
#define NGX_HTTP_OPENBANK_CHECK_SCOPE        0x0008
#define NGX_HTTP_OPENBANK_CHECK_BINDING      0x0010
#define NGX_HTTP_OPENBANK_CHECK_SIGNATURE    0x0020
#define NGX_HTTP_OPENBANK_CHECK_IDEMPOTENCY  0x0040
#define NGX_HTTP_OPENBANK_CHECK_BREAKER      0x0080
#define NGX_HTTP_OPENBANK_CHECK_CONCURRENCY  0x0100
#define NGX_HTTP_OPENBANK_CHECK_QUOTA        0x0200

/* a check that needs the partner applies only where openbank_auth is */
#define NGX_HTTP_OPENBANK_NEEDS_PARTNER      0x01
/* a check that may ask for the body (NGX_HTTP_OPENBANK_READ_BODY) */
#define NGX_HTTP_OPENBANK_NEEDS_BODY         0x02


typedef struct {
    ngx_str_t                     name;        /* in the debug log */
    ngx_uint_t                    flag;        /* NGX_HTTP_OPENBANK_CHECK_* */
    ngx_uint_t                    needs;       /* NGX_HTTP_OPENBANK_NEEDS_* */
    ngx_http_openbank_check_pt    handler;
} ngx_http_openbank_check_t;


/* in the order they run; each may end the request */

static ngx_http_openbank_check_t  ngx_http_openbank_checks[] = {

    { ngx_string("version"), NGX_HTTP_OPENBANK_CHECK_VERSION, 0,
      ngx_http_openbank_version_check },

    { ngx_string("identify"), NGX_HTTP_OPENBANK_CHECK_IDENTIFY, 0,
      ngx_http_openbank_identify },

    { ngx_string("rate"), NGX_HTTP_OPENBANK_CHECK_RATE,
      NGX_HTTP_OPENBANK_NEEDS_PARTNER,
      ngx_http_openbank_rate_check },

    { ngx_string("scope"), NGX_HTTP_OPENBANK_CHECK_SCOPE,
      NGX_HTTP_OPENBANK_NEEDS_PARTNER,
      ngx_http_openbank_scope_check },

    { ngx_string("binding"), NGX_HTTP_OPENBANK_CHECK_BINDING,
      NGX_HTTP_OPENBANK_NEEDS_PARTNER,
      ngx_http_openbank_binding_check },

    { ngx_string("signature"), NGX_HTTP_OPENBANK_CHECK_SIGNATURE,
      NGX_HTTP_OPENBANK_NEEDS_PARTNER|NGX_HTTP_OPENBANK_NEEDS_BODY,
      ngx_http_openbank_signature_check },

    /* before the quota: a replay or a refusal here costs no quota */

    { ngx_string("idempotency"), NGX_HTTP_OPENBANK_CHECK_IDEMPOTENCY,
      NGX_HTTP_OPENBANK_NEEDS_PARTNER|NGX_HTTP_OPENBANK_NEEDS_BODY,
      ngx_http_openbank_idempotency_check },

    /*
     * after the idempotency key, which a refusal here releases, and
     * before the quota, which a refusal here does not take
     */

    { ngx_string("breaker"), NGX_HTTP_OPENBANK_CHECK_BREAKER, 0,
      ngx_http_openbank_breaker_check },

    { ngx_string("concurrency"), NGX_HTTP_OPENBANK_CHECK_CONCURRENCY, 0,
      ngx_http_openbank_concurrency_check },

    /* the quota takes its unit: this must stay the LAST check */

    { ngx_string("quota"), NGX_HTTP_OPENBANK_CHECK_QUOTA,
      NGX_HTTP_OPENBANK_NEEDS_PARTNER,
      ngx_http_openbank_quota_take },

    { ngx_null_string, 0, 0, NULL }
};


static ngx_command_t  ngx_http_openbank_commands[] = {

    { ngx_string("openbank_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_openbank_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_cluster"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_openbank_cluster_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_cluster_degraded"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_openbank_cluster_degraded_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_state"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_openbank_state,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_timezone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_openbank_timezone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_plan"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_BLOCK|NGX_CONF_TAKE1,
      ngx_http_openbank_plan_block,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_partner"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_BLOCK|NGX_CONF_TAKE1,
      ngx_http_openbank_partner_block,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_api"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_openbank_loc_conf_t, api),
      NULL },

    { ngx_string("openbank_auth"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_openbank_auth,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_scope"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_openbank_name,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_openbank_loc_conf_t, scope),
      NULL },

    { ngx_string("openbank_product"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_openbank_name,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_openbank_loc_conf_t, product),
      NULL },

    { ngx_string("openbank_version_sunset"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_openbank_version_sunset,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_openbank_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_openbank_issuer,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_signature"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_openbank_conf_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_openbank_loc_conf_t, signature),
      &ngx_http_openbank_signature_modes },

    { ngx_string("openbank_clock_skew"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_openbank_conf_set_sec,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_openbank_main_conf_t, clock_skew),
      &ngx_http_openbank_clock_skew_bounds },

    { ngx_string("openbank_signing_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_openbank_signing_key,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_token_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_openbank_conf_set_sec,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_openbank_main_conf_t, token_ttl),
      &ngx_http_openbank_token_ttl_bounds },

    { ngx_string("openbank_assertion_lifetime"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_openbank_conf_set_sec,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_openbank_main_conf_t, assertion_lifetime),
      &ngx_http_openbank_assertion_lifetime_bounds },

    { ngx_string("openbank_admin_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_openbank_admin_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_admin_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_openbank_admin_key,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_registration_endpoint"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_openbank_registration_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_registration_directory"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_openbank_registration_directory,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_registration_plan"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_openbank_registration_plan,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_events_ingest"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_openbank_events_ingest,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_events_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_openbank_events_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_webhook_allow"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_openbank_webhook_allow,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_webhook_retries"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_openbank_webhook_retries,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_webhook_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_openbank_events_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_openbank_events_conf_t, timeout),
      (void *) ngx_conf_set_msec_slot },

    { ngx_string("openbank_webhook_concurrency"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_openbank_events_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_openbank_events_conf_t, concurrency),
      (void *) ngx_conf_set_num_slot },

    { ngx_string("openbank_webhook_disable_after"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_openbank_events_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_openbank_events_conf_t, disable_after),
      (void *) ngx_conf_set_sec_slot },

    { ngx_string("openbank_webhook_trusted_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_openbank_events_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_openbank_events_conf_t, trusted),
      (void *) ngx_conf_set_str_slot },

    { ngx_string("openbank_token_endpoint"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_openbank_oauth_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_OPENBANK_EP_TOKEN,
      NULL },

    { ngx_string("openbank_introspection_endpoint"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_openbank_oauth_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_OPENBANK_EP_INTROSPECT,
      NULL },

    { ngx_string("openbank_revocation_endpoint"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_openbank_oauth_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_OPENBANK_EP_REVOKE,
      NULL },

    { ngx_string("openbank_jwks_endpoint"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_openbank_oauth_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_OPENBANK_EP_JWKS,
      NULL },

    { ngx_string("openbank_metadata_endpoint"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_openbank_oauth_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_OPENBANK_EP_METADATA,
      NULL },

    { ngx_string("openbank_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_openbank_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_breaker"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_openbank_breaker_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_concurrency"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_openbank_concurrency_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("openbank_idempotency"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_openbank_conf_set_enum,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_openbank_loc_conf_t, idempotency),
      &ngx_http_openbank_idempotency_modes },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_openbank_module_ctx = {
    ngx_http_openbank_add_variables,       /* preconfiguration */
    ngx_http_openbank_init,                /* postconfiguration */

    ngx_http_openbank_create_main_conf,    /* create main configuration */
    ngx_http_openbank_init_main_conf,      /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_openbank_create_loc_conf,     /* create location configuration */
    ngx_http_openbank_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_openbank_module = {
    NGX_MODULE_V1,
    &ngx_http_openbank_module_ctx,         /* module context */
    ngx_http_openbank_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_openbank_init_module,         /* init module */
    ngx_http_openbank_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_openbank_exit_process,        /* exit process */
    ngx_http_openbank_exit_master,         /* exit master */
    NGX_MODULE_V1_PADDING
};


#define NGX_HTTP_OPENBANK_VAR_PARTNER     0
#define NGX_HTTP_OPENBANK_VAR_PRODUCT     1
#define NGX_HTTP_OPENBANK_VAR_RESULT      2
#define NGX_HTTP_OPENBANK_VAR_REQUEST_ID  3


static ngx_http_variable_t  ngx_http_openbank_vars[] = {

    { ngx_string("openbank_partner"), NULL, ngx_http_openbank_variable,
      NGX_HTTP_OPENBANK_VAR_PARTNER, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("openbank_product"), NULL, ngx_http_openbank_variable,
      NGX_HTTP_OPENBANK_VAR_PRODUCT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("openbank_result"), NULL, ngx_http_openbank_variable,
      NGX_HTTP_OPENBANK_VAR_RESULT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("openbank_request_id"), NULL, ngx_http_openbank_variable,
      NGX_HTTP_OPENBANK_VAR_REQUEST_ID, 0, 0 },

      ngx_http_null_variable
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


static ngx_int_t
ngx_http_openbank_access_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_http_openbank_ctx_t       *ctx;
    ngx_http_openbank_check_t     *check;
    ngx_http_openbank_loc_conf_t  *oblcf;

    oblcf = ngx_http_get_module_loc_conf(r, ngx_http_openbank_module);

    ctx = ngx_http_openbank_find_ctx(r);

    if (ctx && ctx->checked) {
        return ngx_http_openbank_access_again(r, ctx, oblcf);
    }

    if (oblcf->checks == 0) {
        return NGX_DECLINED;
    }

    if (ctx == NULL) {
        ctx = ngx_http_openbank_get_ctx(r);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ngx_http_openbank_request_id(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->conf == NULL) {
        ctx->conf = oblcf;

    } else if (ctx->redirected) {

        /*
         * Redirected while a check waited for the body: nginx ended the
         * read with an error page; nothing was verified, nothing runs.
         */

        rc = ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                      NGX_HTTP_OPENBANK_PROBLEM_INVALID_BODY,
                                      "the request body could not be read");
        ctx->access_rc = rc;
        ctx->checked = 1;

        return rc;
    }

    ctx->redirected = 0;

    for ( /* void */ ; ngx_http_openbank_checks[ctx->stage].handler;
         ctx->stage++)
    {
        check = &ngx_http_openbank_checks[ctx->stage];

        if (!(oblcf->checks & check->flag)) {
            continue;
        }

        rc = check->handler(r, ctx);

        if (rc == NGX_HTTP_OPENBANK_READ_BODY
            && (check->needs & NGX_HTTP_OPENBANK_NEEDS_BODY))
        {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "openbank reads the body for check %V",
                           &check->name);

            rc = ngx_http_openbank_read_body(r, ctx);

            if (rc == NGX_OK) {
                /* the body was all there: the check runs again now */
                rc = check->handler(r, ctx);
            }
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "openbank check %V: %i", &check->name, rc);

        if (rc == NGX_DONE || rc == NGX_AGAIN) {
            return rc;
        }

        if (rc != NGX_DECLINED) {
            ctx->access_rc = rc;
            ctx->content_handler = r->content_handler;
            ctx->checked = 1;

            return rc;
        }
    }

    if (ctx->result.len == 0) {
        ngx_str_set(&ctx->result, "ok");
    }

    if (oblcf->auth == 0) {

        /*
         * A sunset version only: no caller was identified, so this pass
         * stands for nothing else, and a location the request is
         * redirected to runs its own checks.
         */

        ctx->stage = 0;
        ctx->conf = NULL;

        return NGX_DECLINED;
    }

    ctx->access_rc = NGX_DECLINED;
    ctx->checked = 1;

    return NGX_DECLINED;
}


/*
 * The body, read once for every check that needs it, the first time one
 * asks: in memory or in a file that keeps its name until the request
 * ends (for ngx.req.get_body_file()).  NGX_OK: it is read, the check
 * runs again at once; NGX_DONE: it is on its way and, as
 * ngx_http_mirror_module does, the phases resume once it is read.
 */

static ngx_int_t
ngx_http_openbank_read_body(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    ngx_int_t  rc;

    if (ctx->body_reading) {
        return NGX_DONE;
    }

    r->request_body_in_persistent_file = 1;
    r->request_body_in_clean_file = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_openbank_body_read);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    ngx_http_finalize_request(r, NGX_DONE);

    if (ctx->body_read) {
        return NGX_OK;
    }

    ctx->body_reading = 1;

    return NGX_DONE;
}


/* the body is read: at once (the runner goes on), or later */

static void
ngx_http_openbank_body_read(ngx_http_request_t *r)
{
    ngx_http_openbank_ctx_t  *ctx;

    ctx = ngx_http_openbank_find_ctx(r);

    ctx->body_read = 1;

    if (!ctx->body_reading) {
        return;
    }

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


/*
 * The access phase again, after an internal redirect: the checks of the
 * first location stand for the whole client request and do not run
 * again, here or in any other location.  A request that passed goes on;
 * one answered by a check (an idempotent replay) is answered the same
 * way; a refused one is refused again where the checks apply, while a
 * location without them (an error page) serves it as any other request.
 */

static ngx_int_t
ngx_http_openbank_access_again(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_loc_conf_t *oblcf)
{
    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "openbank access again: %i", ctx->access_rc);

    if (ctx->access_rc == NGX_DECLINED) {
        return NGX_DECLINED;
    }

    if (ctx->access_rc == NGX_OK) {
        r->content_handler = ctx->content_handler;
        return NGX_OK;
    }

    if (oblcf->checks == 0) {
        return NGX_DECLINED;
    }

    return ctx->access_rc;
}


/*
 * The first of the response filters: X-Request-ID on every response,
 * the version headers on sunset locations.  The problem, the RateLimit
 * headers, the idempotency answer and the response signature follow, in
 * their own filter modules.
 */

static ngx_int_t
ngx_http_openbank_header_filter(ngx_http_request_t *r)
{
    ngx_table_elt_t               *h;
    ngx_http_openbank_ctx_t       *ctx;
    ngx_http_openbank_loc_conf_t  *oblcf;
    ngx_http_openbank_main_conf_t *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    if (r != r->main || obmcf->shm_zone == NULL) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_openbank_get_ctx(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_request_id(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    h = ngx_http_openbank_set_header(r, "X-Request-ID", &ctx->request_id);
    if (h == NULL) {
        return NGX_ERROR;
    }

    oblcf = ngx_http_get_module_loc_conf(r, ngx_http_openbank_module);

    if (oblcf->version
        && ngx_http_openbank_version_headers(r) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_openbank_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                     *value;
    ngx_http_openbank_ctx_t       *ctx;
    ngx_http_openbank_loc_conf_t  *oblcf;

    ctx = ngx_http_openbank_find_ctx(r);
    value = NULL;

    switch (data) {

    case NGX_HTTP_OPENBANK_VAR_PARTNER:
        if (ctx && ctx->partner) {
            value = &ctx->partner->name;
        }
        break;

    case NGX_HTTP_OPENBANK_VAR_PRODUCT:
        oblcf = ngx_http_openbank_api_conf(r, ctx);
        if (oblcf->product.len) {
            value = &oblcf->product;
        }
        break;

    case NGX_HTTP_OPENBANK_VAR_RESULT:
        if (ctx && ctx->result.len) {
            value = &ctx->result;
        }
        break;

    default: /* NGX_HTTP_OPENBANK_VAR_REQUEST_ID */
        ctx = ngx_http_openbank_get_ctx(r);
        if (ctx == NULL || ngx_http_openbank_request_id(r, ctx) != NGX_OK) {
            return NGX_ERROR;
        }
        value = &ctx->request_id;
        break;
    }

    if (value == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = value->len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = value->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_openbank_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void *
ngx_http_openbank_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_openbank_main_conf_t));
    if (obmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     obmcf->shm_zone = NULL;
     *     obmcf->state_path = { 0, NULL };
     */

    obmcf->tz_offset = NGX_CONF_UNSET;
    obmcf->token_ttl = NGX_CONF_UNSET;
    obmcf->clock_skew = NGX_CONF_UNSET;
    obmcf->assertion_lifetime = NGX_CONF_UNSET;
    obmcf->state_interval = NGX_CONF_UNSET_MSEC;
    obmcf->loaded = ngx_time();

    obmcf->events_conf = ngx_http_openbank_events_create_conf(cf);
    if (obmcf->events_conf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&obmcf->plans, cf->pool, 4,
                       sizeof(ngx_http_openbank_plan_t))
        != NGX_OK
        || ngx_array_init(&obmcf->partners, cf->pool, 8,
                          sizeof(ngx_http_openbank_partner_t))
           != NGX_OK
        || ngx_array_init(&obmcf->api_keys, cf->pool, 8,
                          sizeof(ngx_http_openbank_key_t))
           != NGX_OK
        || ngx_array_init(&obmcf->refs, cf->pool, 8,
                          sizeof(ngx_http_openbank_ref_t))
           != NGX_OK
        || ngx_array_init(&obmcf->signing_keys, cf->pool, 2,
                          sizeof(ngx_http_openbank_signing_key_t))
           != NGX_OK
        || ngx_array_init(&obmcf->breakers, cf->pool, 2,
                          sizeof(ngx_http_openbank_breaker_t *))
           != NGX_OK
        || ngx_array_init(&obmcf->limiters, cf->pool, 2,
                          sizeof(ngx_http_openbank_limiter_t *))
           != NGX_OK)
    {
        return NULL;
    }

    return obmcf;
}


static char *
ngx_http_openbank_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_openbank_main_conf_t *obmcf = conf;

    if (obmcf->tz_offset == NGX_CONF_UNSET) {
        obmcf->tz_offset = 0;
    }

    ngx_conf_init_value(obmcf->token_ttl, 300);
    ngx_conf_init_value(obmcf->clock_skew, 60);
    ngx_conf_init_value(obmcf->assertion_lifetime,
                        NGX_HTTP_OPENBANK_ASSERTION_LIFETIME);

    ngx_conf_init_msec_value(obmcf->state_interval, 1000);

    return ngx_http_openbank_cluster_init_conf(cf, obmcf);
}


static void *
ngx_http_openbank_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_openbank_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_openbank_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->scope = { 0, NULL };
     *     conf->product = { 0, NULL };
     */

    conf->api = NGX_CONF_UNSET;
    conf->auth = NGX_CONF_UNSET_UINT;
    conf->version = NGX_CONF_UNSET_PTR;
    conf->status = NGX_CONF_UNSET;
    conf->signature = NGX_CONF_UNSET_UINT;
    conf->idempotency = NGX_CONF_UNSET_UINT;
    conf->breaker = NGX_CONF_UNSET_PTR;
    conf->limiter = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_openbank_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_openbank_loc_conf_t *prev = parent;
    ngx_http_openbank_loc_conf_t *conf = child;

    ngx_http_openbank_main_conf_t  *obmcf;

    ngx_conf_merge_uint_value(conf->auth, prev->auth, 0);
    ngx_conf_merge_str_value(conf->scope, prev->scope, "");
    ngx_conf_merge_str_value(conf->product, prev->product, "");
    ngx_conf_merge_ptr_value(conf->version, prev->version, NULL);
    ngx_conf_merge_value(conf->status, prev->status, 0);
    ngx_conf_merge_uint_value(conf->signature, prev->signature,
                              NGX_HTTP_OPENBANK_SIGNATURE_OFF);
    ngx_conf_merge_uint_value(conf->idempotency, prev->idempotency,
                              NGX_HTTP_OPENBANK_IDEMPOTENCY_OFF);
    ngx_conf_merge_ptr_value(conf->breaker, prev->breaker, NULL);
    ngx_conf_merge_ptr_value(conf->limiter, prev->limiter, NULL);

    /*
     * a location that authenticates partners, or guards the bank, is an
     * API location: its refusals are problems
     */

    if (conf->api == NGX_CONF_UNSET
        && (conf->auth || conf->version || conf->breaker || conf->limiter))
    {
        conf->api = 1;
    }

    ngx_conf_merge_value(conf->api, prev->api, 0);

    if ((conf->scope.len || conf->product.len) && conf->auth == 0) {
        return "with \"openbank_scope\" or \"openbank_product\" "
               "requires \"openbank_auth\" in the same location";
    }

    if (conf->signature != NGX_HTTP_OPENBANK_SIGNATURE_OFF
        && conf->auth == 0)
    {
        return "with \"openbank_signature\" requires \"openbank_auth\": "
               "the signer is the authenticated partner";
    }

    obmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_openbank_module);

    if (conf->signature != NGX_HTTP_OPENBANK_SIGNATURE_OFF
        && prev->signature != conf->signature
        && obmcf->signing_keys.nelts == 0)
    {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"openbank_signature\" without "
                           "\"openbank_signing_key\": responses to signed "
                           "requests will not be signed");
    }

    conf->checks = ngx_http_openbank_checks_merge(conf);

    return ngx_http_openbank_idempotency_merge(cf, prev, conf);
}


/*
 * The checks that apply in a location, once its configuration is
 * merged: each where the directive it enforces is set.  A location
 * without "openbank_auth" (one with only a sunset version) asks for no
 * credential and names no partner: the checks that need one do not
 * apply there, and nginx -t refuses a scope, a product or a signature of
 * its own there (an idempotency set at server level is inherited).
 */

static ngx_uint_t
ngx_http_openbank_checks_merge(ngx_http_openbank_loc_conf_t *conf)
{
    ngx_uint_t                  checks;
    ngx_http_openbank_check_t  *check;

    checks = 0;

    if (conf->version) {
        checks |= NGX_HTTP_OPENBANK_CHECK_VERSION;
    }

    if (conf->auth) {
        checks |= NGX_HTTP_OPENBANK_CHECK_IDENTIFY
                  |NGX_HTTP_OPENBANK_CHECK_RATE;
    }

    /* only an access token can be bound to a client certificate */

    if (conf->auth & NGX_HTTP_OPENBANK_AUTH_TOKEN) {
        checks |= NGX_HTTP_OPENBANK_CHECK_BINDING;
    }

    if (conf->scope.len) {
        checks |= NGX_HTTP_OPENBANK_CHECK_SCOPE;
    }

    if (conf->signature != NGX_HTTP_OPENBANK_SIGNATURE_OFF) {
        checks |= NGX_HTTP_OPENBANK_CHECK_SIGNATURE;
    }

    if (conf->idempotency != NGX_HTTP_OPENBANK_IDEMPOTENCY_OFF) {
        checks |= NGX_HTTP_OPENBANK_CHECK_IDEMPOTENCY;
    }

    if (conf->breaker) {
        checks |= NGX_HTTP_OPENBANK_CHECK_BREAKER;
    }

    if (conf->limiter) {
        checks |= NGX_HTTP_OPENBANK_CHECK_CONCURRENCY;
    }

    if (conf->product.len) {
        checks |= NGX_HTTP_OPENBANK_CHECK_QUOTA;
    }

    if (conf->auth == 0) {
        for (check = ngx_http_openbank_checks; check->handler; check++) {
            if (check->needs & NGX_HTTP_OPENBANK_NEEDS_PARTNER) {
                checks &= ~check->flag;
            }
        }
    }

    return checks;
}


static char *
ngx_http_openbank_state(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_openbank_main_conf_t *obmcf = conf;

    ngx_str_t   *value;
    ngx_path_t  *path;

    if (obmcf->state_path.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "takes a directory path";
    }

    if (ngx_conf_full_name(cf->cycle, &value[1], 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    obmcf->state_path = value[1];

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "interval=", 9) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\": expected "
                               "\"interval=TIME\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        value[2].data += 9;
        value[2].len -= 9;

        obmcf->state_interval = ngx_parse_time(&value[2], 0);

        if (obmcf->state_interval == (ngx_msec_t) NGX_ERROR
            || obmcf->state_interval < 10)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid interval \"%V\": expected a time "
                               "of at least 10ms, such as \"1s\"",
                               &value[2]);
            return NGX_CONF_ERROR;
        }
    }

    /* nginx creates it at start, owned by the workers' user */

    path = ngx_pcalloc(cf->pool, sizeof(ngx_path_t));
    if (path == NULL) {
        return NGX_CONF_ERROR;
    }

    path->name = value[1];
    path->conf_file = cf->conf_file->file.name.data;
    path->line = cf->conf_file->line;

    /* nginx's cache manager process writes the counters' snapshots */
    path->manager = ngx_http_openbank_limit_manager;
    path->data = obmcf;

    if (ngx_add_path(cf, &path) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_openbank_timezone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_openbank_main_conf_t *obmcf = conf;

    ngx_int_t   offset;
    ngx_str_t  *value;

    if (obmcf->tz_offset != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    offset = ngx_http_openbank_parse_tz(&value[1]);

    if (offset == NGX_CONF_UNSET) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid time zone \"%V\": expected \"UTC\" "
                           "or an offset such as \"+08:00\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    obmcf->tz_offset = offset;

    return NGX_CONF_OK;
}


static char *
ngx_http_openbank_auth(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_openbank_loc_conf_t *oblcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i, method;

    if (oblcf->auth != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    oblcf->auth = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "api_key") == 0) {
            method = NGX_HTTP_OPENBANK_AUTH_API_KEY;

        } else if (ngx_strcmp(value[i].data, "token") == 0) {
            method = NGX_HTTP_OPENBANK_AUTH_TOKEN;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid authentication method \"%V\": "
                               "expected \"token\" or \"api_key\"",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        if (oblcf->auth & method) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "authentication method \"%V\" is duplicate",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        oblcf->auth |= method;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_openbank_name(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char       *rv;
    ngx_str_t  *value, *field;

    field = (ngx_str_t *) ((char *) conf + cmd->offset);

    if (field->data) {
        return "is duplicate";
    }

    rv = ngx_conf_set_str_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    value = cf->args->elts;

    if (ngx_http_openbank_valid_name(&value[1]) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid name \"%V\": letters, digits, \"-\" "
                           "and \"_\" only", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_openbank_add_ref(cf, &value[1]) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * As ngx_conf_set_sec_slot(), within the bounds of cmd->post, and the
 * error quotes the value: invalid time "forever": expected 1s to 1d.
 */

static char *
ngx_http_openbank_conf_set_sec(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char  *p = conf;

    time_t                          *sp, t;
    ngx_str_t                       *value;
    ngx_http_openbank_sec_bounds_t  *bounds;

    sp = (time_t *) (p + cmd->offset);

    if (*sp != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;
    bounds = cmd->post;

    t = ngx_parse_time(&value[1], 1);

    if (t == (time_t) NGX_ERROR || t < bounds->min || t > bounds->max) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid time \"%V\": expected %s",
                           &value[1], bounds->range);
        return NGX_CONF_ERROR;
    }

    *sp = t;

    return NGX_CONF_OK;
}


/*
 * As ngx_conf_set_enum_slot(), and the error quotes the value and names
 * the ones allowed: invalid value "maybe", it must be "off", "optional"
 * or "required".
 */

static char *
ngx_http_openbank_conf_set_enum(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char  *p = conf;

    u_char           *s;
    ngx_str_t        *value;
    ngx_uint_t       *np, i;
    ngx_conf_enum_t  *e;
    u_char            buf[256];

    np = (ngx_uint_t *) (p + cmd->offset);

    if (*np != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    e = cmd->post;

    for (i = 0; e[i].name.len; i++) {
        if (e[i].name.len == value[1].len
            && ngx_strcasecmp(e[i].name.data, value[1].data) == 0)
        {
            *np = e[i].value;
            return NGX_CONF_OK;
        }
    }

    s = buf;

    for (i = 0; e[i].name.len; i++) {
        s = ngx_slprintf(s, buf + sizeof(buf), "%s\"%V\"",
                         i == 0 ? "" : (e[i + 1].name.len ? ", " : " or "),
                         &e[i].name);
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\", it must be %*s",
                       &value[1], s - buf, buf);

    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_http_openbank_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt             *h;
    ngx_http_core_main_conf_t       *cmcf;
    ngx_http_openbank_main_conf_t   *obmcf;

    obmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_openbank_module);

    if (ngx_http_openbank_partners_init(cf, obmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_oauth_init(cf, obmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_breaker_init(cf, obmcf) != NGX_OK
        || ngx_http_openbank_concurrency_init(cf, obmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (obmcf->admin_api
        && (!obmcf->has_admin_key || obmcf->state_path.len == 0
            || obmcf->shm_zone == NULL))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"openbank_admin_api\" needs "
                           "\"openbank_admin_key\", \"openbank_state\" "
                           "and \"openbank_zone\"");
        return NGX_ERROR;
    }

    if (ngx_http_openbank_registration_init(cf, obmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_registry_on(obmcf)
        && ngx_http_openbank_registry_conf(cf, obmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_events_conf(cf, obmcf) != NGX_OK
        || (obmcf->events
            && ngx_http_openbank_webhook_ssl(cf, obmcf->events_conf)
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_openbank_access_handler;

    if (ngx_http_openbank_metrics_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_openbank_header_filter;

    return NGX_OK;
}


/* once the zones exist: durable state comes back into them */

static ngx_int_t
ngx_http_openbank_init_module(ngx_cycle_t *cycle)
{
    if (ngx_http_openbank_oauth_init_module(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_limit_init_module(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_registry_init_module(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_sync_init_module(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_events_init_module(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_openbank_idempotency_init_module(cycle);
}


static ngx_int_t
ngx_http_openbank_init_process(ngx_cycle_t *cycle)
{
    if (ngx_http_openbank_concurrency_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_limit_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_cluster_init_process(cycle) != NGX_OK
        || ngx_http_openbank_cluster_limit_init(cycle) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_sync_init_process(cycle,
                                            ngx_http_openbank_registry_sync,
                                            ngx_http_openbank_revoked_sync,
                                          ngx_http_openbank_registry_records)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_openbank_webhook_send_init(cycle);
}


static void
ngx_http_openbank_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_openbank_limit_exit_process(cycle);
    ngx_http_openbank_sync_exit_process(cycle);
    ngx_http_openbank_cluster_limit_exit(cycle);
    ngx_http_openbank_cluster_idem_exit(cycle);
    ngx_http_openbank_cluster_exit_process(cycle);
}


static void
ngx_http_openbank_exit_master(ngx_cycle_t *cycle)
{
    ngx_http_openbank_limit_exit_master(cycle);
}
