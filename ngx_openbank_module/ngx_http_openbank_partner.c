
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Plans and partners: the "openbank_plan" and "openbank_partner" blocks,
 * checked at load time, and the lookups the request path makes.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_jwt.h>
#include <ngx_http_openbank_partner.h>
#include <ngx_http_openbank_util.h>


#define NGX_HTTP_OPENBANK_SECRET_MIN  32
#define NGX_HTTP_OPENBANK_SECRET_MAX  4096


static char *ngx_http_openbank_plan_line(ngx_conf_t *cf, ngx_command_t *dummy,
    void *conf);
static char *ngx_http_openbank_partner_line(ngx_conf_t *cf,
    ngx_command_t *dummy, void *conf);
static char *ngx_http_openbank_parse_rate(ngx_conf_t *cf,
    ngx_http_openbank_plan_t *plan);
static char *ngx_http_openbank_parse_quota(ngx_conf_t *cf,
    ngx_array_t *quotas);
static char *ngx_http_openbank_parse_scopes(ngx_conf_t *cf,
    ngx_http_openbank_partner_t *partner);
static char *ngx_http_openbank_parse_client_id(ngx_conf_t *cf,
    ngx_http_openbank_partner_t *partner);
static char *ngx_http_openbank_parse_api_key(ngx_conf_t *cf,
    ngx_http_openbank_partner_t *partner);
static char *ngx_http_openbank_parse_certificate(ngx_conf_t *cf,
    ngx_http_openbank_partner_t *partner);
static char *ngx_http_openbank_parse_hmac_secret(ngx_conf_t *cf,
    ngx_http_openbank_partner_t *partner);
static size_t ngx_http_openbank_secret_length(ngx_str_t *file);
static char *ngx_http_openbank_parse_jwks(ngx_conf_t *cf,
    ngx_http_openbank_partner_t *partner);
static char *ngx_http_openbank_check_partner(ngx_conf_t *cf,
    ngx_http_openbank_partner_t *partner);
static ngx_int_t ngx_http_openbank_hash_arg(ngx_conf_t *cf, ngx_str_t *value,
    u_char *out);
static ngx_int_t ngx_http_openbank_block_name(ngx_conf_t *cf,
    const char *what, ngx_str_t *name);
static void *ngx_http_openbank_find_named(ngx_array_t *a, size_t offset,
    ngx_str_t *name);
static char *ngx_http_openbank_parse_block(ngx_conf_t *cf,
    ngx_conf_handler_pt handler, void *conf);
static ngx_int_t ngx_http_openbank_key_cmp(const void *one, const void *two);
static ngx_int_t ngx_http_openbank_ref_held(
    ngx_http_openbank_main_conf_t *obmcf, ngx_http_openbank_ref_t *ref);
static ngx_int_t ngx_http_openbank_holds_product(
    ngx_http_openbank_partner_t *partner, ngx_str_t *product);


char *
ngx_http_openbank_plan_block(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_openbank_main_conf_t *obmcf = conf;

    char                      *rv;
    ngx_str_t                 *value;
    ngx_http_openbank_plan_t  *plan;

    value = cf->args->elts;

    if (ngx_http_openbank_block_name(cf, "plan", &value[1]) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_openbank_find_named(&obmcf->plans,
            offsetof(ngx_http_openbank_plan_t, name), &value[1]))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate plan \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    plan = ngx_array_push(&obmcf->plans);
    if (plan == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(plan, sizeof(ngx_http_openbank_plan_t));

    plan->name = value[1];

    if (ngx_array_init(&plan->quotas, cf->pool, 4,
                       sizeof(ngx_http_openbank_quota_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    rv = ngx_http_openbank_parse_block(cf, ngx_http_openbank_plan_line, plan);

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (plan->rate == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "plan \"%V\" has no \"rate\"", &plan->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* the name of an openbank_plan or openbank_partner block */

static ngx_int_t
ngx_http_openbank_block_name(ngx_conf_t *cf, const char *what,
    ngx_str_t *name)
{
    if (ngx_http_openbank_valid_name(name) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid %s name \"%V\": letters, digits, "
                           "\"-\" and \"_\" only", what, name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the element of "a" whose name, the ngx_str_t at "offset", is "name" */

static void *
ngx_http_openbank_find_named(ngx_array_t *a, size_t offset, ngx_str_t *name)
{
    u_char      *elt;
    ngx_str_t   *s;
    ngx_uint_t   i;

    elt = a->elts;

    for (i = 0; i < a->nelts; i++, elt += a->size) {
        s = (ngx_str_t *) (elt + offset);

        if (s->len == name->len
            && ngx_strncmp(s->data, name->data, name->len) == 0)
        {
            return elt;
        }
    }

    return NULL;
}


/* the lines of a block, each given to "handler" with "conf" */

static char *
ngx_http_openbank_parse_block(ngx_conf_t *cf, ngx_conf_handler_pt handler,
    void *conf)
{
    char        *rv;
    ngx_conf_t   save;

    save = *cf;
    cf->handler = handler;
    cf->handler_conf = conf;

    rv = ngx_conf_parse(cf, NULL);

    *cf = save;

    return rv;
}


static char *
ngx_http_openbank_plan_line(ngx_conf_t *cf, ngx_command_t *dummy, void *conf)
{
    ngx_http_openbank_plan_t  *plan = conf;

    ngx_str_t  *value;

    value = cf->args->elts;

    if (ngx_strcmp(value[0].data, "rate") == 0) {
        return ngx_http_openbank_parse_rate(cf, plan);
    }

    if (ngx_strcmp(value[0].data, "quota") == 0) {
        return ngx_http_openbank_parse_quota(cf, &plan->quotas);
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "unknown directive \"%V\" in openbank_plan "
                       "(expected \"rate\" or \"quota\")", &value[0]);

    return NGX_CONF_ERROR;
}


/* rate 100r/s [burst=200] */

static char *
ngx_http_openbank_parse_rate(ngx_conf_t *cf, ngx_http_openbank_plan_t *plan)
{
    u_char     *p;
    size_t      len;
    ngx_int_t   n;
    ngx_str_t  *value, s;

    value = cf->args->elts;

    if (cf->args->nelts < 2 || cf->args->nelts > 3) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"rate\" takes a rate such as \"100r/s\" and "
                           "an optional \"burst=N\"");
        return NGX_CONF_ERROR;
    }

    if (plan->rate) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"rate\" is duplicate");
        return NGX_CONF_ERROR;
    }

    p = value[1].data;
    len = value[1].len;

    n = NGX_ERROR;

    if (len > 3 && ngx_strncmp(p + len - 3, "r/s", 3) == 0) {
        plan->period = 1;
        n = ngx_atoi(p, len - 3);

    } else if (len > 3 && ngx_strncmp(p + len - 3, "r/m", 3) == 0) {
        plan->period = 60;
        n = ngx_atoi(p, len - 3);
    }

    if (n <= 0 || n > 1000000000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid rate \"%V\": expected requests per "
                           "second or minute, such as \"100r/s\" or "
                           "\"600r/m\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    plan->rate = n;
    plan->burst = n;

    if (cf->args->nelts == 2) {
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value[2].data, "burst=", 6) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\": expected \"burst=N\"",
                           &value[2]);
        return NGX_CONF_ERROR;
    }

    s.data = value[2].data + 6;
    s.len = value[2].len - 6;

    n = ngx_atoi(s.data, s.len);

    if (n <= 0 || n > 1000000000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid burst \"%V\": expected a whole number "
                           "of requests, at least 1", &s);
        return NGX_CONF_ERROR;
    }

    plan->burst = n;

    return NGX_CONF_OK;
}


/* quota payments 50000/day */

static char *
ngx_http_openbank_parse_quota(ngx_conf_t *cf, ngx_array_t *quotas)
{
    u_char                     *slash;
    ngx_int_t                   n;
    ngx_str_t                  *value, window;
    ngx_uint_t                  i;
    ngx_http_openbank_quota_t  *quota;

    value = cf->args->elts;

    if (cf->args->nelts != 3) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"quota\" takes a product and a limit such as "
                           "\"50000/day\"");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_openbank_valid_name(&value[1]) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid product name \"%V\": letters, digits, "
                           "\"-\" and \"_\" only", &value[1]);
        return NGX_CONF_ERROR;
    }

    quota = quotas->elts;

    for (i = 0; i < quotas->nelts; i++) {
        if (quota[i].product.len == value[1].len
            && ngx_strncmp(quota[i].product.data, value[1].data,
                           value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate quota for product \"%V\"",
                               &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    slash = ngx_strlchr(value[2].data, value[2].data + value[2].len, '/');

    if (slash == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid quota \"%V\": expected \"N/day\" or "
                           "\"N/month\"", &value[2]);
        return NGX_CONF_ERROR;
    }

    n = ngx_atoi(value[2].data, slash - value[2].data);

    if (n <= 0 || n > 4000000000LL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid quota \"%V\": the limit must be a whole "
                           "number from 1 to 4000000000", &value[2]);
        return NGX_CONF_ERROR;
    }

    quota = ngx_array_push(quotas);
    if (quota == NULL) {
        return NGX_CONF_ERROR;
    }

    quota->product = value[1];
    quota->limit = n;

    window.data = slash + 1;
    window.len = value[2].data + value[2].len - window.data;

    if (window.len == 3 && ngx_strncmp(window.data, "day", 3) == 0) {
        quota->window = NGX_HTTP_OPENBANK_WINDOW_DAY;

    } else if (window.len == 5 && ngx_strncmp(window.data, "month", 5) == 0) {
        quota->window = NGX_HTTP_OPENBANK_WINDOW_MONTH;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid quota window \"%V\": expected \"day\" "
                           "or \"month\"", &window);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_openbank_partner_block(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_openbank_main_conf_t *obmcf = conf;

    char                         *rv;
    ngx_str_t                    *value;
    ngx_http_openbank_partner_t  *partner;

    value = cf->args->elts;

    if (ngx_http_openbank_block_name(cf, "partner", &value[1]) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    partner = ngx_http_openbank_find_named(&obmcf->partners,
                  offsetof(ngx_http_openbank_partner_t, name), &value[1]);

    if (partner) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate partner \"%V\", first declared "
                           "in %V:%ui", &value[1],
                           &partner->conf_file, partner->conf_line);
        return NGX_CONF_ERROR;
    }

    partner = ngx_array_push(&obmcf->partners);
    if (partner == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(partner, sizeof(ngx_http_openbank_partner_t));

    partner->name = value[1];
    partner->index = obmcf->partners.nelts - 1;
    partner->conf_file = cf->conf_file->file.name;
    partner->conf_line = cf->conf_file->line;

    if (ngx_array_init(&partner->scopes, cf->pool, 4, sizeof(ngx_str_t))
        != NGX_OK
        || ngx_array_init(&partner->quotas, cf->pool, 2,
                          sizeof(ngx_http_openbank_quota_t))
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    rv = ngx_http_openbank_parse_block(cf, ngx_http_openbank_partner_line,
                                       partner);

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    return ngx_http_openbank_check_partner(cf, partner);
}


static char *
ngx_http_openbank_partner_line(ngx_conf_t *cf, ngx_command_t *dummy,
    void *conf)
{
    ngx_http_openbank_partner_t  *partner = conf;

    ngx_str_t  *value;

    value = cf->args->elts;

    if (ngx_strcmp(value[0].data, "scopes") == 0) {
        return ngx_http_openbank_parse_scopes(cf, partner);
    }

    if (ngx_strcmp(value[0].data, "api_key") == 0) {
        return ngx_http_openbank_parse_api_key(cf, partner);
    }

    if (ngx_strcmp(value[0].data, "quota") == 0) {
        return ngx_http_openbank_parse_quota(cf, &partner->quotas);
    }

    if (cf->args->nelts != 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid number of arguments in \"%V\" of "
                           "openbank_partner", &value[0]);
        return NGX_CONF_ERROR;
    }

    if (ngx_strcmp(value[0].data, "plan") == 0) {
        if (partner->plan_name.data) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"plan\" is duplicate");
            return NGX_CONF_ERROR;
        }

        partner->plan_name = value[1];
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[0].data, "client_id") == 0) {
        return ngx_http_openbank_parse_client_id(cf, partner);
    }

    if (ngx_strcmp(value[0].data, "client_secret") == 0) {
        if (partner->has_client_secret) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"client_secret\" is duplicate");
            return NGX_CONF_ERROR;
        }

        if (ngx_http_openbank_hash_arg(cf, &value[1],
                                       partner->client_secret)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        partner->has_client_secret = 1;
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[0].data, "certificate") == 0) {
        return ngx_http_openbank_parse_certificate(cf, partner);
    }

    if (ngx_strcmp(value[0].data, "jwks") == 0) {
        return ngx_http_openbank_parse_jwks(cf, partner);
    }

    if (ngx_strcmp(value[0].data, "hmac_secret") == 0) {
        return ngx_http_openbank_parse_hmac_secret(cf, partner);
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "unknown directive \"%V\" in openbank_partner",
                       &value[0]);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_openbank_parse_scopes(ngx_conf_t *cf,
    ngx_http_openbank_partner_t *partner)
{
    ngx_str_t   *value, *scope;
    ngx_uint_t   i;

    value = cf->args->elts;

    if (cf->args->nelts < 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"scopes\" takes one or more scope names");
        return NGX_CONF_ERROR;
    }

    if (partner->scopes.nelts) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"scopes\" is duplicate");
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_http_openbank_valid_name(&value[i]) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid scope \"%V\": letters, digits, "
                               "\"-\" and \"_\" only", &value[i]);
            return NGX_CONF_ERROR;
        }

        if (ngx_http_openbank_partner_has_scope(partner, &value[i])) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate scope \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        scope = ngx_array_push(&partner->scopes);
        if (scope == NULL) {
            return NGX_CONF_ERROR;
        }

        *scope = value[i];
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_openbank_parse_client_id(ngx_conf_t *cf,
    ngx_http_openbank_partner_t *partner)
{
    ngx_str_t                      *value;
    ngx_uint_t                      i;
    ngx_http_openbank_partner_t    *other;
    ngx_http_openbank_main_conf_t  *obmcf;

    value = cf->args->elts;

    if (partner->client_id.data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"client_id\" is duplicate");
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < value[1].len; i++) {
        if (value[1].data[i] <= 0x20 || value[1].data[i] >= 0x7f
            || value[1].data[i] == '"' || value[1].data[i] == '\\'
            || value[1].data[i] == ':')
        {
            break;
        }
    }

    if (value[1].len == 0 || value[1].len > 255 || i != value[1].len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid client_id \"%V\": 1 to 255 visible "
                           "ASCII characters, no quote, backslash or colon",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    obmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_openbank_module);
    other = obmcf->partners.elts;

    for (i = 0; i < obmcf->partners.nelts; i++) {
        if (other[i].client_id.len == value[1].len
            && ngx_strncmp(other[i].client_id.data, value[1].data,
                           value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate client_id \"%V\", already used by "
                               "partner \"%V\"", &value[1], &other[i].name);
            return NGX_CONF_ERROR;
        }
    }

    partner->client_id = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_openbank_parse_api_key(ngx_conf_t *cf,
    ngx_http_openbank_partner_t *partner)
{
    ngx_str_t                      *value;
    ngx_uint_t                      i;
    ngx_http_openbank_key_t        *key;
    ngx_http_openbank_main_conf_t  *obmcf;
    u_char                          hash[NGX_HTTP_OPENBANK_HASH_LEN];

    value = cf->args->elts;

    if (cf->args->nelts != 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"api_key\" takes one \"sha256:<hex>\" hash");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_openbank_hash_arg(cf, &value[1], hash) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    obmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_openbank_module);
    key = obmcf->api_keys.elts;

    for (i = 0; i < obmcf->api_keys.nelts; i++) {
        if (ngx_memcmp(key[i].hash, hash, NGX_HTTP_OPENBANK_HASH_LEN) == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate api_key, already used by "
                               "partner \"%V\"", &key[i].partner->name);
            return NGX_CONF_ERROR;
        }
    }

    key = ngx_array_push(&obmcf->api_keys);
    if (key == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(key->hash, hash, NGX_HTTP_OPENBANK_HASH_LEN);
    key->partner = partner;

    return NGX_CONF_OK;
}


static char *
ngx_http_openbank_parse_certificate(ngx_conf_t *cf,
    ngx_http_openbank_partner_t *partner)
{
    ngx_str_t                      *value;
    ngx_uint_t                      i;
    ngx_http_openbank_partner_t    *other;
    ngx_http_openbank_main_conf_t  *obmcf;

    value = cf->args->elts;

    if (partner->has_certificate) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"certificate\" is duplicate");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_openbank_hash_arg(cf, &value[1], partner->certificate)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    obmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_openbank_module);
    other = obmcf->partners.elts;

    for (i = 0; i < obmcf->partners.nelts; i++) {
        if (&other[i] != partner
            && other[i].has_certificate
            && ngx_memcmp(other[i].certificate, partner->certificate,
                          NGX_HTTP_OPENBANK_HASH_LEN)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate certificate, already used by "
                               "partner \"%V\"", &other[i].name);
            return NGX_CONF_ERROR;
        }
    }

    partner->has_certificate = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_openbank_parse_hmac_secret(ngx_conf_t *cf,
    ngx_http_openbank_partner_t *partner)
{
    ngx_str_t  *value, secret;

    value = cf->args->elts;

    if (partner->hmac_secret.data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"hmac_secret\" is duplicate");
        return NGX_CONF_ERROR;
    }

    if (ngx_conf_full_name(cf->cycle, &value[1], 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_openbank_read_file(cf, &value[1],
                                    NGX_HTTP_OPENBANK_SECRET_MAX, &secret)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    secret.len = ngx_http_openbank_secret_length(&secret);

    if (secret.len < NGX_HTTP_OPENBANK_SECRET_MIN) {
        ngx_explicit_memzero(secret.data, secret.len);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "hmac_secret file \"%V\" holds %uz bytes, "
                           "at least %d are needed", &value[1],
                           secret.len, NGX_HTTP_OPENBANK_SECRET_MIN);
        return NGX_CONF_ERROR;
    }

    partner->hmac_secret = secret;

    return NGX_CONF_OK;
}


/*
 * A secret written as text (openssl rand -hex or -base64, an editor) ends
 * in a newline that is no part of it: one final LF or CRLF is dropped when
 * every other byte is printable ASCII.  Any other file is the secret byte
 * for byte, a final 0x0a of random bytes included.
 */

static size_t
ngx_http_openbank_secret_length(ngx_str_t *file)
{
    size_t  len, i;

    len = file->len;

    if (len == 0 || file->data[len - 1] != LF) {
        return len;
    }

    len--;

    if (len && file->data[len - 1] == CR) {
        len--;
    }

    for (i = 0; i < len; i++) {
        if (file->data[i] < 0x20 || file->data[i] > 0x7e) {
            return file->len;
        }
    }

    return len;
}


static char *
ngx_http_openbank_parse_jwks(ngx_conf_t *cf,
    ngx_http_openbank_partner_t *partner)
{
    ngx_str_t  *value;

    value = cf->args->elts;

    if (partner->jwks_file.data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"jwks\" is duplicate");
        return NGX_CONF_ERROR;
    }

    if (ngx_conf_full_name(cf->cycle, &value[1], 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    partner->jwks_file = value[1];
    partner->jwks = ngx_http_openbank_jwks_load(cf, &value[1]);

    if (partner->jwks == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_openbank_check_partner(ngx_conf_t *cf,
    ngx_http_openbank_partner_t *partner)
{
    ngx_uint_t                      i;
    ngx_http_openbank_key_t        *key;
    ngx_http_openbank_main_conf_t  *obmcf;

    if (partner->plan_name.data == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "partner \"%V\" has no \"plan\"", &partner->name);
        return NGX_CONF_ERROR;
    }

    if (partner->scopes.nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "partner \"%V\" has no \"scopes\"",
                           &partner->name);
        return NGX_CONF_ERROR;
    }

    if (partner->client_id.data == NULL
        && (partner->has_client_secret || partner->has_certificate))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "partner \"%V\" has a \"client_secret\" or "
                           "\"certificate\" but no \"client_id\"",
                           &partner->name);
        return NGX_CONF_ERROR;
    }

    obmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_openbank_module);
    key = obmcf->api_keys.elts;

    for (i = 0; i < obmcf->api_keys.nelts; i++) {
        if (key[i].partner == partner) {
            return NGX_CONF_OK;
        }
    }

    if (partner->client_id.data == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "partner \"%V\" has no credential: it needs an "
                           "\"api_key\" or a \"client_id\"", &partner->name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_openbank_hash_arg(ngx_conf_t *cf, ngx_str_t *value, u_char *out)
{
    if (ngx_http_openbank_parse_hash(value, out) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid hash \"%V\": expected \"sha256:\" and "
                           "64 hexadecimal digits", value);
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_openbank_add_ref(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_str_t                      *value;
    ngx_http_openbank_ref_t        *ref;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_openbank_module);

    ref = ngx_array_push(&obmcf->refs);
    if (ref == NULL) {
        return NGX_ERROR;
    }

    value = cf->args->elts;

    ref->name = *name;
    ref->directive = value[0];
    ref->conf_file = cf->conf_file->file.name;
    ref->conf_line = cf->conf_file->line;

    return NGX_OK;
}


/*
 * Runs once the whole http block is read: plans are resolved (they may
 * be declared after the partners that use them), every scope and product
 * a location names must be held by some partner, and the api keys are
 * sorted for lookup.
 */

ngx_int_t
ngx_http_openbank_partners_init(ngx_conf_t *cf,
    ngx_http_openbank_main_conf_t *obmcf)
{
    ngx_uint_t                    i;
    ngx_http_openbank_key_t      *key;
    ngx_http_openbank_ref_t      *ref;
    ngx_http_openbank_partner_t  *partner;

    partner = obmcf->partners.elts;

    for (i = 0; i < obmcf->partners.nelts; i++) {

        partner[i].plan = ngx_http_openbank_find_named(&obmcf->plans,
                              offsetof(ngx_http_openbank_plan_t, name),
                              &partner[i].plan_name);

        if (partner[i].plan == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "unknown plan \"%V\" of partner \"%V\" in %V:%ui",
                          &partner[i].plan_name, &partner[i].name,
                          &partner[i].conf_file, partner[i].conf_line);
            return NGX_ERROR;
        }
    }

    if (obmcf->partners.nelts && obmcf->shm_zone == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "partner \"%V\" in %V:%ui needs an \"openbank_zone\"",
                      &partner[0].name, &partner[0].conf_file,
                      partner[0].conf_line);
        return NGX_ERROR;
    }

    ref = obmcf->refs.elts;

    for (i = 0; i < obmcf->refs.nelts; i++) {
        if (!ngx_http_openbank_ref_held(obmcf, &ref[i])) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "%V \"%V\" in %V:%ui is held by no partner",
                          &ref[i].directive, &ref[i].name,
                          &ref[i].conf_file, ref[i].conf_line);
            return NGX_ERROR;
        }
    }

    /*
     * The partners array may have moved while it grew (ngx_array_push()
     * copies it): a key holds the copy it saw, so point it at the array's
     * final place, by index.
     */

    key = obmcf->api_keys.elts;
    partner = obmcf->partners.elts;

    for (i = 0; i < obmcf->api_keys.nelts; i++) {
        key[i].partner = &partner[key[i].partner->index];
    }

    ngx_sort(obmcf->api_keys.elts, obmcf->api_keys.nelts,
             sizeof(ngx_http_openbank_key_t), ngx_http_openbank_key_cmp);

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_ref_held(ngx_http_openbank_main_conf_t *obmcf,
    ngx_http_openbank_ref_t *ref)
{
    ngx_uint_t                    i, scope;
    ngx_http_openbank_partner_t  *partner;

    scope = (ngx_strcmp(ref->directive.data, "openbank_scope") == 0);
    partner = obmcf->partners.elts;

    for (i = 0; i < obmcf->partners.nelts; i++) {

        if (scope) {
            if (ngx_http_openbank_partner_has_scope(&partner[i], &ref->name))
            {
                return 1;
            }

        } else if (ngx_http_openbank_holds_product(&partner[i], &ref->name))
        {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_openbank_holds_product(ngx_http_openbank_partner_t *partner,
    ngx_str_t *product)
{
    return ngx_http_openbank_partner_quota(partner, product) != NULL;
}


static ngx_int_t
ngx_http_openbank_key_cmp(const void *one, const void *two)
{
    const ngx_http_openbank_key_t  *a = one;
    const ngx_http_openbank_key_t  *b = two;

    return ngx_memcmp(a->hash, b->hash, NGX_HTTP_OPENBANK_HASH_LEN);
}


/*
 * The lookup compares SHA-256 digests, never the keys themselves: what a
 * timing difference could tell is a prefix of a digest, which says nothing
 * of any key.  The final comparison is constant-time all the same.
 */

ngx_http_openbank_partner_t *
ngx_http_openbank_partner_by_api_key(ngx_http_openbank_main_conf_t *obmcf,
    u_char *hash)
{
    ngx_int_t                 rc;
    ngx_uint_t                lo, hi, mid;
    ngx_http_openbank_key_t  *key;

    key = obmcf->api_keys.elts;
    lo = 0;
    hi = obmcf->api_keys.nelts;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        rc = ngx_memcmp(key[mid].hash, hash, NGX_HTTP_OPENBANK_HASH_LEN);

        if (rc < 0) {
            lo = mid + 1;

        } else if (rc > 0) {
            hi = mid;

        } else {
            break;
        }
    }

    if (lo >= hi) {
        return NULL;
    }

    if (CRYPTO_memcmp(key[mid].hash, hash, NGX_HTTP_OPENBANK_HASH_LEN) != 0) {
        return NULL;
    }

    return key[mid].partner;
}


ngx_int_t
ngx_http_openbank_partner_has_scope(ngx_http_openbank_partner_t *partner,
    ngx_str_t *scope)
{
    ngx_str_t   *s;
    ngx_uint_t   i;

    s = partner->scopes.elts;

    for (i = 0; i < partner->scopes.nelts; i++) {
        if (s[i].len == scope->len
            && ngx_strncmp(s[i].data, scope->data, scope->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* the partner's own quota line wins over its plan's */

ngx_http_openbank_quota_t *
ngx_http_openbank_partner_quota(ngx_http_openbank_partner_t *partner,
    ngx_str_t *product)
{
    ngx_uint_t                  i, n;
    ngx_array_t                *lists[2];
    ngx_http_openbank_quota_t  *quota;

    lists[0] = &partner->quotas;
    lists[1] = partner->plan ? &partner->plan->quotas : NULL;

    for (n = 0; n < 2 && lists[n]; n++) {

        quota = lists[n]->elts;

        for (i = 0; i < lists[n]->nelts; i++) {
            if (quota[i].product.len == product->len
                && ngx_strncmp(quota[i].product.data, product->data,
                               product->len)
                   == 0)
            {
                return &quota[i];
            }
        }
    }

    return NULL;
}


ngx_http_openbank_partner_t *
ngx_http_openbank_partner_by_client_id(ngx_http_openbank_main_conf_t *obmcf,
    ngx_str_t *client_id)
{
    ngx_uint_t                    i;
    ngx_http_openbank_partner_t  *partner;

    partner = obmcf->partners.elts;

    for (i = 0; i < obmcf->partners.nelts; i++) {
        if (partner[i].client_id.len == client_id->len
            && client_id->len
            && ngx_memcmp(partner[i].client_id.data, client_id->data,
                          client_id->len) == 0)
        {
            return &partner[i];
        }
    }

    return NULL;
}
