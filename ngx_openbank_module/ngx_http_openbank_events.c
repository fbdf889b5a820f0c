
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Events and their outbox (docs/webhooks.md): the bank posts an event
 * to openbank_events_ingest; it becomes, under one lock of the zone, an
 * event record ("e<seq>", kept 30 days) and a delivery record for each
 * of the partner's endpoints that takes its type ("d<seq><endpoint>" in
 * the OUTBOX table), and all of them one entry of the events journal
 * under openbank_state (journal.c: group commit by a thread of the
 * pool).  The bank is answered 202 only once the entry is durable: from
 * then on the event is delivered at least once, whatever restarts.
 *
 * Every later change (an endpoint made or deleted, an attempt and what
 * it came to) is the same: records into the zone under one lock, then
 * one journal entry.  At start the master replays the journal into the
 * zone, makes the partners' lists of endpoints ("n<partner>") from the
 * endpoint records, and compacts the journal.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_admin.h>
#include <ngx_http_openbank_events.h>
#include <ngx_http_openbank_journal.h>
#include <ngx_http_openbank_registry.h>
#include <ngx_http_openbank_util.h>


/* a change waiting for its records to be durable */

typedef struct {
    ngx_http_openbank_journal_entry_t  entry;
    ngx_http_request_t                *request;    /* NULL: it went away */
    ngx_pool_cleanup_t                *cln;
    void                             (*done)(ngx_http_request_t *r,
                                           ngx_int_t rc);
} ngx_http_openbank_ev_pending_t;


/* an event made under one lock, with its deliveries */

typedef struct {
    ngx_pool_t                      *pool;
    ngx_str_t                       *partner;
    ngx_str_t                       *type;
    ngx_str_t                       *data;
    uint64_t                         only;     /* one endpoint, 0: all */
    uint64_t                         seq;
    ngx_array_t                     *ops;
    ngx_uint_t                       full;
} ngx_http_openbank_ev_emit_t;


typedef struct {
    ngx_http_openbank_zone_t        *zone;
    uint64_t                         seq;
    ngx_uint_t                       loaded;
    ngx_uint_t                       full;
} ngx_http_openbank_ev_load_t;


static ngx_int_t ngx_http_openbank_ingest_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_openbank_ingest(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *body);
static ngx_int_t ngx_http_openbank_ev_partner(ngx_http_request_t *r,
    ngx_str_t *name);
static ngx_int_t ngx_http_openbank_ev_emit_atomic(
    ngx_http_openbank_zone_t *zone, void *data);
static ngx_int_t ngx_http_openbank_ev_dump(ngx_http_openbank_store_value_t *sv,
    void *data);
static void ngx_http_openbank_ev_durable(ngx_http_openbank_journal_entry_t *e,
    ngx_int_t rc);
static void ngx_http_openbank_ev_gone(void *data);
static ngx_int_t ngx_http_openbank_ev_replay(void *data, u_char *payload,
    size_t len, ngx_uint_t type);
static ngx_int_t ngx_http_openbank_ev_replay_put(void *data, u_char *payload,
    size_t len);
static ngx_int_t ngx_http_openbank_ev_replay_del(void *data, u_char *payload,
    size_t len);
static ngx_int_t ngx_http_openbank_ev_replay_out_put(void *data,
    u_char *payload, size_t len);
static ngx_int_t ngx_http_openbank_ev_replay_out_del(void *data,
    u_char *payload, size_t len);
static ngx_int_t ngx_http_openbank_ev_replay_attempt(void *data,
    u_char *payload, size_t len);
static ngx_int_t ngx_http_openbank_ev_index(ngx_http_openbank_zone_t *zone,
    ngx_str_t *key, ngx_str_t *value, ngx_uint_t add);
static ngx_int_t ngx_http_openbank_ev_seq(ngx_http_openbank_store_value_t *sv,
    void *data);
static ngx_int_t ngx_http_openbank_ev_lock(ngx_http_openbank_journal_t *j,
    ngx_log_t *log);
static void ngx_http_openbank_ev_hold(ngx_http_openbank_ev_op_t *op,
    uint64_t next);
static void ngx_http_openbank_ev_release(ngx_http_request_t *r,
    ngx_array_t *ops);
static ngx_int_t ngx_http_openbank_ev_due(ngx_http_openbank_store_value_t *sv,
    void *data);


static ngx_http_openbank_journal_t  ngx_http_openbank_ev_j = {
    "events journal", "events", NGX_HTTP_OPENBANK_TABLE_EVENTS,
    NULL, ngx_http_openbank_ev_dump, NULL, "",
    ngx_null_string, ngx_null_string, 0, 0, 0, 0, 0,
    { NULL, NULL }, { NULL, NULL }, 0, { 0 }, { 0 }, NULL, NULL,
    NGX_HTTP_OPENBANK_TABLE_OUTBOX
};

static ngx_str_t  ngx_http_openbank_ev_seq_key = ngx_string("\1s");
static ngx_str_t  ngx_http_openbank_ev_broken_key = ngx_string("\1b");


static ngx_http_openbank_json_api_t  ngx_http_openbank_ingest_json = {
    NGX_HTTP_OPENBANK_EVENT_BODY_MAX,
    "an event",
    ngx_http_openbank_ingest,
    NULL
};


/* the default retry schedule (docs/webhooks.md, "Retries") */

static ngx_msec_t  ngx_http_openbank_ev_retries[] = {
    5000, 30000, 120000, 600000, 1800000, 3600000, 10800000, 21600000,
    43200000, 86400000
};


void *
ngx_http_openbank_events_create_conf(ngx_conf_t *cf)
{
    ngx_http_openbank_events_conf_t  *ecf;

    ecf = ngx_pcalloc(cf->pool, sizeof(ngx_http_openbank_events_conf_t));
    if (ecf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     ecf->allow = NULL;
     *     ecf->trusted = { 0, NULL };
     *     ecf->ssl = NULL;
     */

    ecf->timeout = NGX_CONF_UNSET_MSEC;
    ecf->concurrency = NGX_CONF_UNSET_UINT;
    ecf->nretries = NGX_CONF_UNSET_UINT;
    ecf->disable_after = NGX_CONF_UNSET;

    return ecf;
}


/*
 * The openbank_webhook_* directives that nginx's own slots parse, into
 * the events' part of the main conf: cmd->post is the slot.
 */

char *
ngx_http_openbank_events_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_openbank_main_conf_t *obmcf = conf;

    ngx_command_t  c;
    char        *(*set)(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

    c = *cmd;
    c.post = NULL;
    set = (char *(*)(ngx_conf_t *, ngx_command_t *, void *)) cmd->post;

    return set(cf, &c, obmcf->events_conf);
}


char *
ngx_http_openbank_events_ingest(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_openbank_module);
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "is duplicate";
    }

    clcf->handler = ngx_http_openbank_ingest_handler;
    obmcf->events = 1;

    return NGX_CONF_OK;
}


/* openbank_webhook_allow http://127.0.0.1 https://hooks.internal ... */

char *
ngx_http_openbank_webhook_allow(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_openbank_main_conf_t *obmcf = conf;

    u_char                             err[128];
    ngx_str_t                         *value;
    ngx_uint_t                         i;
    ngx_http_openbank_url_t            u;
    ngx_http_openbank_events_conf_t   *ecf;
    ngx_http_openbank_webhook_allow_t *a;

    ecf = obmcf->events_conf;
    value = cf->args->elts;

    if (ecf->allow == NULL) {
        ecf->allow = ngx_array_create(cf->pool, 4,
                                 sizeof(ngx_http_openbank_webhook_allow_t));
        if (ecf->allow == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    for (i = 1; i < cf->args->nelts; i++) {
        if (ngx_http_openbank_url_parse(&value[i], &u, err, sizeof(err))
            != NGX_OK
            || u.path.len != 1)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid webhook host \"%V\": it must be "
                               "http://<host> or https://<host>", &value[i]);
            return NGX_CONF_ERROR;
        }

        a = ngx_array_push(ecf->allow);
        if (a == NULL) {
            return NGX_CONF_ERROR;
        }

        a->http = !u.https;
        a->host = u.host;
    }

    return NGX_CONF_OK;
}


/* openbank_webhook_retries 5s 30s 2m ...: the delays after each failure */

char *
ngx_http_openbank_webhook_retries(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_openbank_main_conf_t *obmcf = conf;

    ngx_str_t                        *value;
    ngx_uint_t                        i;
    ngx_msec_t                        ms;
    ngx_http_openbank_events_conf_t  *ecf;

    ecf = obmcf->events_conf;

    if (ecf->nretries != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts - 1 > NGX_HTTP_OPENBANK_RETRIES_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "at most %d retries", NGX_HTTP_OPENBANK_RETRIES_MAX);
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        ms = ngx_parse_time(&value[i], 0);

        if (ms == (ngx_msec_t) NGX_ERROR || ms < 100 || ms > 86400000 * 7) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid retry delay \"%V\": 100ms to 7d",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        ecf->retries[i - 1] = ms;
    }

    ecf->nretries = cf->args->nelts - 1;

    return NGX_CONF_OK;
}


/* when the http block is read */

ngx_int_t
ngx_http_openbank_events_conf(ngx_conf_t *cf,
    ngx_http_openbank_main_conf_t *obmcf)
{
    ngx_http_openbank_events_conf_t  *ecf;

    ecf = obmcf->events_conf;

    if (ecf->nretries == NGX_CONF_UNSET_UINT) {
        ecf->nretries = sizeof(ngx_http_openbank_ev_retries)
                        / sizeof(ngx_msec_t);
        ngx_memcpy(ecf->retries, ngx_http_openbank_ev_retries,
                   sizeof(ngx_http_openbank_ev_retries));
    }

    ngx_conf_init_msec_value(ecf->timeout, 10000);
    ngx_conf_init_uint_value(ecf->concurrency, 4);
    ngx_conf_init_value(ecf->disable_after, 3 * 86400);

    if (!obmcf->events) {
        return NGX_OK;
    }

    if (obmcf->state_path.len == 0 || obmcf->shm_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"openbank_events_ingest\" and "
                           "\"openbank_events_api\" need "
                           "\"openbank_state\" and \"openbank_zone\"");
        return NGX_ERROR;
    }

    if (obmcf->signing_keys.nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "webhooks are signed with the gateway's key: "
                           "they need \"openbank_signing_key\"");
        return NGX_ERROR;
    }

    if (ngx_thread_pool_add(cf, NULL) == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* at start, once per zone: the journal back into the zone */

ngx_int_t
ngx_http_openbank_events_init_module(ngx_cycle_t *cycle)
{
    ngx_int_t                       rc;
    ngx_core_conf_t                *ccf;
    ngx_http_openbank_journal_t    *j;
    ngx_http_openbank_journal_pt    handlers[NGX_HTTP_OPENBANK_EV_TYPES];
    ngx_http_openbank_ev_load_t     ld;
    ngx_http_openbank_main_conf_t  *obmcf;

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_core_module)
        == NULL)
    {
        return NGX_OK;
    }

    obmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                                ngx_http_openbank_module);

    if (obmcf == NULL || !obmcf->events || ngx_test_config
        || ngx_process == NGX_PROCESS_SIGNALLER)
    {
        return NGX_OK;
    }

    j = &ngx_http_openbank_ev_j;

    /* NGX_DECLINED: a reload, the zone already holds the events */

    rc = ngx_http_openbank_journal_begin(j, cycle, "events");

    if (rc == NGX_DECLINED) {
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    ngx_memzero(&ld, sizeof(ld));
    ld.zone = obmcf->shm_zone->data;

    handlers[0] = NULL;
    handlers[NGX_HTTP_OPENBANK_EV_PUT] = ngx_http_openbank_ev_replay_put;
    handlers[NGX_HTTP_OPENBANK_EV_DEL] = ngx_http_openbank_ev_replay_del;
    handlers[NGX_HTTP_OPENBANK_EV_OUT_PUT] =
                                         ngx_http_openbank_ev_replay_out_put;
    handlers[NGX_HTTP_OPENBANK_EV_OUT_DEL] =
                                         ngx_http_openbank_ev_replay_out_del;
    handlers[NGX_HTTP_OPENBANK_EV_ATTEMPT] =
                                         ngx_http_openbank_ev_replay_attempt;

    rc = ngx_http_openbank_journal_load(j, cycle, &obmcf->shm_zone->shm.name,
                                        "events", handlers,
                                        NGX_HTTP_OPENBANK_EV_TYPES, &ld,
                                        &ld.full);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_store_set(ld.zone, NGX_HTTP_OPENBANK_TABLE_EVENTS,
                                    &ngx_http_openbank_ev_seq_key,
                                    &ld.seq, sizeof(uint64_t), 0)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ld.loaded) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "openbank: %ui event records restored from \"%V\"",
                      ld.loaded, &j->name);
    }

    (void) ngx_http_openbank_journal_compact(j, ccf->user, cycle->log);

    ngx_http_openbank_journal_reset(j);

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_ev_replay(void *data, u_char *payload, size_t len,
    ngx_uint_t type)
{
    ngx_http_openbank_ev_load_t *ld = data;

    uint64_t                           seq;
    ngx_http_openbank_ev_op_t          op;
    ngx_http_openbank_journal_head_t   head;

    ngx_memcpy(&head, payload, sizeof(head));

    op.type = type;
    op.key.data = payload + sizeof(head);
    op.key.len = head.key_len;
    op.value.data = op.key.data + op.key.len;
    op.value.len = len - sizeof(head) - op.key.len;
    op.expire = head.expire;

    if (op.key.len < 2) {
        return NGX_OK;
    }

    if (op.expire && op.expire <= ngx_http_openbank_now_ms()) {
        return NGX_OK;
    }

    if (op.key.data[0] == 'e' && op.key.len == 17) {
        seq = ngx_http_openbank_events_hex(op.key.data + 1, 16);

        if (seq > ld->seq) {
            ld->seq = seq;
        }
    }

    if (ngx_http_openbank_events_apply(ld->zone, &op) == NGX_ERROR) {
        ld->full++;
        return NGX_OK;
    }

    ld->loaded++;

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_ev_replay_put(void *data, u_char *payload, size_t len)
{
    return ngx_http_openbank_ev_replay(data, payload, len,
                                       NGX_HTTP_OPENBANK_EV_PUT);
}


static ngx_int_t
ngx_http_openbank_ev_replay_del(void *data, u_char *payload, size_t len)
{
    return ngx_http_openbank_ev_replay(data, payload, len,
                                       NGX_HTTP_OPENBANK_EV_DEL);
}


static ngx_int_t
ngx_http_openbank_ev_replay_out_put(void *data, u_char *payload, size_t len)
{
    return ngx_http_openbank_ev_replay(data, payload, len,
                                       NGX_HTTP_OPENBANK_EV_OUT_PUT);
}


static ngx_int_t
ngx_http_openbank_ev_replay_out_del(void *data, u_char *payload, size_t len)
{
    return ngx_http_openbank_ev_replay(data, payload, len,
                                       NGX_HTTP_OPENBANK_EV_OUT_DEL);
}


static ngx_int_t
ngx_http_openbank_ev_replay_attempt(void *data, u_char *payload, size_t len)
{
    return ngx_http_openbank_ev_replay(data, payload, len,
                                       NGX_HTTP_OPENBANK_EV_ATTEMPT);
}


/*
 * One record of a change into the zone (inside store_atomic at run
 * time): NGX_OK, NGX_DECLINED (nothing to change), NGX_ERROR (full).
 */

ngx_int_t
ngx_http_openbank_events_apply(ngx_http_openbank_zone_t *zone,
    ngx_http_openbank_ev_op_t *op)
{
    ssize_t                         n;
    ngx_http_openbank_event_v_t     ev;
    static u_char                   buf[NGX_HTTP_OPENBANK_EVENT_BODY_MAX
                                        + 1024
                                        + NGX_HTTP_OPENBANK_ATTEMPTS_MAX
                                          * sizeof(
                                            ngx_http_openbank_attempt_v_t)];
    uint64_t                        expire;
    ngx_str_t                       value;

    switch (op->type) {

    case NGX_HTTP_OPENBANK_EV_PUT:
        if (ngx_http_openbank_store_set(zone, NGX_HTTP_OPENBANK_TABLE_EVENTS,
                                        &op->key, op->value.data,
                                        op->value.len, op->expire)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (op->key.data[0] == 'w') {
            return ngx_http_openbank_ev_index(zone, &op->key, &op->value, 1);
        }

        return NGX_OK;

    case NGX_HTTP_OPENBANK_EV_DEL:
        if (op->key.data[0] == 'w') {
            n = ngx_http_openbank_store_get(zone,
                                            NGX_HTTP_OPENBANK_TABLE_EVENTS,
                                            &op->key, buf, sizeof(buf), NULL);
            if (n > 0 && (size_t) n <= sizeof(buf)) {
                value.data = buf;
                value.len = n;
                (void) ngx_http_openbank_ev_index(zone, &op->key, &value, 0);
            }
        }

        (void) ngx_http_openbank_store_delete(zone,
                                              NGX_HTTP_OPENBANK_TABLE_EVENTS,
                                              &op->key);
        return NGX_OK;

    case NGX_HTTP_OPENBANK_EV_OUT_PUT:
        return ngx_http_openbank_store_set(zone,
                                           NGX_HTTP_OPENBANK_TABLE_OUTBOX,
                                           &op->key, op->value.data,
                                           op->value.len, op->expire)
               == NGX_OK ? NGX_OK : NGX_ERROR;

    case NGX_HTTP_OPENBANK_EV_OUT_DEL:
        (void) ngx_http_openbank_store_delete(zone,
                                              NGX_HTTP_OPENBANK_TABLE_OUTBOX,
                                              &op->key);
        return NGX_OK;

    default: /* NGX_HTTP_OPENBANK_EV_ATTEMPT: onto the event's record */

        n = ngx_http_openbank_store_get(zone, NGX_HTTP_OPENBANK_TABLE_EVENTS,
                                        &op->key, buf, sizeof(buf), &expire);

        if (n < (ssize_t) sizeof(ev) || (size_t) n > sizeof(buf)
            || op->value.len != sizeof(ngx_http_openbank_attempt_v_t))
        {
            return NGX_DECLINED;
        }

        ngx_memcpy(&ev, buf, sizeof(ev));

        if (ev.nattempts >= NGX_HTTP_OPENBANK_ATTEMPTS_MAX
            || (size_t) n + op->value.len > sizeof(buf))
        {
            return NGX_DECLINED;
        }

        ngx_memcpy(buf + n, op->value.data, op->value.len);
        ev.nattempts++;
        ngx_memcpy(buf, &ev, sizeof(ev));

        return ngx_http_openbank_store_set(zone,
                                           NGX_HTTP_OPENBANK_TABLE_EVENTS,
                                           &op->key, buf, n + op->value.len,
                                           expire)
               == NGX_OK ? NGX_OK : NGX_ERROR;
    }
}


/* "n<partner>": the ids of its endpoints, one added or removed */

static ngx_int_t
ngx_http_openbank_ev_index(ngx_http_openbank_zone_t *zone, ngx_str_t *key,
    ngx_str_t *value, ngx_uint_t add)
{
    u_char                         nkey[1 + NGX_HTTP_OPENBANK_NAME_MAX];
    ssize_t                        n;
    uint64_t                       ids[NGX_HTTP_OPENBANK_WEBHOOK_MAX + 1], id;
    ngx_str_t                      k;
    ngx_uint_t                     i, count;
    ngx_http_openbank_webhook_v_t  wv;

    if (value->len < sizeof(wv) || key->len != 17) {
        return NGX_OK;
    }

    ngx_memcpy(&wv, value->data, sizeof(wv));

    if (wv.partner_len == 0 || wv.partner_len > NGX_HTTP_OPENBANK_NAME_MAX
        || value->len < sizeof(wv) + wv.partner_len)
    {
        return NGX_OK;
    }

    id = ngx_http_openbank_events_hex(key->data + 1, 16);

    nkey[0] = 'n';
    ngx_memcpy(nkey + 1, value->data + sizeof(wv), wv.partner_len);
    k.data = nkey;
    k.len = 1 + wv.partner_len;

    n = ngx_http_openbank_store_get(zone, NGX_HTTP_OPENBANK_TABLE_EVENTS, &k,
                                    ids, sizeof(ids), NULL);

    count = (n > 0) ? ngx_min((size_t) n, sizeof(ids)) / sizeof(uint64_t)
                    : 0;

    for (i = 0; i < count; i++) {
        if (ids[i] == id) {
            break;
        }
    }

    if (add) {
        if (i < count) {
            return NGX_OK;
        }

        if (count == NGX_HTTP_OPENBANK_WEBHOOK_MAX + 1) {
            return NGX_OK;
        }

        ids[count++] = id;

    } else {
        if (i == count) {
            return NGX_OK;
        }

        ids[i] = ids[--count];
    }

    if (count == 0) {
        (void) ngx_http_openbank_store_delete(zone,
                                              NGX_HTTP_OPENBANK_TABLE_EVENTS,
                                              &k);
        return NGX_OK;
    }

    return ngx_http_openbank_store_set(zone, NGX_HTTP_OPENBANK_TABLE_EVENTS,
                                       &k, ids, count * sizeof(uint64_t), 0)
           == NGX_OK ? NGX_OK : NGX_ERROR;
}


/* for a compaction: events, endpoints, deliveries, with their expiry */

static ngx_int_t
ngx_http_openbank_ev_dump(ngx_http_openbank_store_value_t *sv, void *data)
{
    ngx_http_openbank_journal_dump_t  *dp = data;

    u_char      c;
    ngx_uint_t  type;

    c = sv->key.len ? sv->key.data[0] : 0;

    if (dp->table == NGX_HTTP_OPENBANK_TABLE_OUTBOX) {
        type = NGX_HTTP_OPENBANK_EV_OUT_PUT;

    } else if (c == 'e' || c == 'w') {
        type = NGX_HTTP_OPENBANK_EV_PUT;

    } else {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    ngx_http_openbank_journal_dump_record(dp, type, sv->expire, &sv->key,
                                          sv->value, sv->len);

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/*
 * A change's records to the journal, once they are in the zone: "done"
 * is called with the request once they are durable (NGX_OK) or not; a
 * change without a request (a delivery's outcome) is written later, with
 * the next write someone waits for, and only logged if it fails.
 */

ngx_int_t
ngx_http_openbank_events_write(ngx_log_t *log, ngx_array_t *ops,
    ngx_http_request_t *r, void (*done)(ngx_http_request_t *r, ngx_int_t rc))
{
    u_char                          *p;
    size_t                           len;
    ngx_uint_t                       i;
    ngx_pool_cleanup_t              *cln;
    ngx_http_openbank_ev_op_t       *op;
    ngx_http_openbank_journal_t     *j;
    ngx_http_openbank_ev_pending_t  *pd;

    j = &ngx_http_openbank_ev_j;

    if (ngx_http_openbank_journal_init(j, (ngx_cycle_t *) ngx_cycle)
        != NGX_OK
        || ngx_http_openbank_ev_lock(j, log) != NGX_OK)
    {
        return NGX_ERROR;
    }

    op = ops->elts;
    len = 0;

    for (i = 0; i < ops->nelts; i++) {
        len += NGX_HTTP_OPENBANK_JOURNAL_FRAME
               + sizeof(ngx_http_openbank_journal_head_t) + op[i].key.len
               + op[i].value.len;
    }

    cln = NULL;

    if (r) {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_ERROR;
        }
    }

    pd = ngx_alloc(sizeof(ngx_http_openbank_ev_pending_t) + len, log);
    if (pd == NULL) {
        return NGX_ERROR;
    }

    pd->entry.record = (u_char *) (pd + 1);
    p = pd->entry.record;

    for (i = 0; i < ops->nelts; i++) {
        p = ngx_http_openbank_journal_record(p, op[i].type, op[i].expire,
                                             &op[i].key, op[i].value.data,
                                             op[i].value.len);
    }

    pd->entry.len = p - pd->entry.record;
    pd->entry.handler = ngx_http_openbank_ev_durable;
    pd->request = r;
    pd->cln = cln;
    pd->done = done;

    if (cln) {
        cln->handler = ngx_http_openbank_ev_gone;
        cln->data = pd;
    }

    if (r) {
        ngx_http_openbank_journal_submit(j, &pd->entry);

    } else {
        /* a delivery's outcome: if lost, the delivery is made again */
        ngx_http_openbank_journal_submit_later(j, &pd->entry);
    }

    return NGX_OK;
}


/*
 * The journal's lock, opened: a failure is one [alert] for all the
 * processes until it opens again (a record of the zone says so), then
 * each change is refused without a word.
 */

static ngx_int_t
ngx_http_openbank_ev_lock(ngx_http_openbank_journal_t *j, ngx_log_t *log)
{
    u_char                          one;
    ngx_fd_t                        fd;
    ngx_uint_t                      broken;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                ngx_http_openbank_module);

    broken = (ngx_http_openbank_store_get(obmcf->shm_zone->data,
                                          NGX_HTTP_OPENBANK_TABLE_EVENTS,
                                          &ngx_http_openbank_ev_broken_key,
                                          &one, 1, NULL)
              >= 0);

    if (broken) {
        fd = open((char *) j->lock.data, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

        if (fd == NGX_INVALID_FILE) {
            return NGX_ERROR;
        }

        (void) close(fd);
    }

    if (ngx_http_openbank_journal_open_lock(j, log) != NGX_OK) {
        one = 1;
        (void) ngx_http_openbank_store_set(obmcf->shm_zone->data,
                                           NGX_HTTP_OPENBANK_TABLE_EVENTS,
                                           &ngx_http_openbank_ev_broken_key,
                                           &one, 1, 0);
        return NGX_ERROR;
    }

    if (broken
        && ngx_http_openbank_store_delete(obmcf->shm_zone->data,
                                          NGX_HTTP_OPENBANK_TABLE_EVENTS,
                                          &ngx_http_openbank_ev_broken_key)
           == NGX_OK)
    {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "openbank: events journal \"%V\" opens again: "
                      "events are taken", &j->name);
    }

    return NGX_OK;
}


static void
ngx_http_openbank_ev_durable(ngx_http_openbank_journal_entry_t *e,
    ngx_int_t rc)
{
    ngx_http_openbank_ev_pending_t *pd = (ngx_http_openbank_ev_pending_t *) e;

    ngx_http_request_t  *r;

    r = pd->request;

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, r ? r->connection->log : ngx_cycle->log,
                      0, "openbank: an events change is not durable yet: "
                      "it is in the zone, and written with the next write");
    }

    if (r) {
        pd->cln->handler = NULL;
        pd->done(r, rc);
    }

    ngx_free(pd);
}


static void
ngx_http_openbank_ev_gone(void *data)
{
    ngx_http_openbank_ev_pending_t *pd = data;

    pd->request = NULL;
}


/* "e<16 hex digits>" and the like */

void
ngx_http_openbank_events_key(ngx_str_t *key, u_char *buf, u_char c,
    uint64_t id)
{
    buf[0] = c;
    ngx_sprintf(buf + 1, "%016uxL", id);
    key->data = buf;
    key->len = 17;
}


uint64_t
ngx_http_openbank_events_hex(u_char *p, size_t len)
{
    u_char    c;
    uint64_t  v;

    v = 0;

    while (len--) {
        c = *p++;

        if (c >= '0' && c <= '9') {
            v = (v << 4) | (uint64_t) (c - '0');

        } else if (c >= 'a' && c <= 'f') {
            v = (v << 4) | (uint64_t) (c - 'a' + 10);

        } else {
            return 0;
        }
    }

    return v;
}


/*
 * The next event's sequence number, inside store_atomic: ordered by
 * time (milliseconds in the high bits), so that ids sort as the events
 * were made and are never reused after a restart that lost none.
 */

ngx_int_t
ngx_http_openbank_events_next_seq(ngx_http_openbank_zone_t *zone,
    uint64_t *seq)
{
    ngx_int_t  rc;

    rc = ngx_http_openbank_store_update(zone, NGX_HTTP_OPENBANK_TABLE_EVENTS,
                                        &ngx_http_openbank_ev_seq_key,
                                        sizeof(uint64_t), 0,
                                        ngx_http_openbank_ev_seq, seq);

    return rc == NGX_HTTP_OPENBANK_STORE_KEEP ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_http_openbank_ev_seq(ngx_http_openbank_store_value_t *sv, void *data)
{
    uint64_t  *seq = data;

    uint64_t  v, t;

    ngx_memcpy(&v, sv->value, sizeof(uint64_t));

    t = sv->now << 16;
    v = (v + 1 > t) ? v + 1 : t;

    ngx_memcpy(sv->value, &v, sizeof(uint64_t));
    *seq = v;

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/* an event's record, as an op */

ngx_int_t
ngx_http_openbank_events_event_op(ngx_pool_t *pool, uint64_t seq,
    ngx_str_t *partner, ngx_str_t *type, ngx_str_t *data, uint64_t now,
    ngx_http_openbank_ev_op_t *op)
{
    u_char                       *p;
    ngx_http_openbank_event_v_t   ev;

    p = ngx_pnalloc(pool, 17 + sizeof(ev) + partner->len + type->len
                          + data->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_http_openbank_events_key(&op->key, p, 'e', seq);
    p += 17;

    ngx_memzero(&ev, sizeof(ev));
    ev.created = (int64_t) now;
    ev.partner_len = (uint16_t) partner->len;
    ev.type_len = (uint16_t) type->len;
    ev.data_len = (uint32_t) data->len;

    op->type = NGX_HTTP_OPENBANK_EV_PUT;
    op->value.data = p;
    p = ngx_cpymem(p, &ev, sizeof(ev));
    p = ngx_cpymem(p, partner->data, partner->len);
    p = ngx_cpymem(p, type->data, type->len);
    p = ngx_cpymem(p, data->data, data->len);
    op->value.len = p - op->value.data;
    op->expire = now + NGX_HTTP_OPENBANK_EVENT_KEEP;

    return NGX_OK;
}


/*
 * Inside store_atomic: a delivery op for each of the partner's enabled
 * endpoints that takes the type ("only": that endpoint, whatever its
 * types).
 */

ngx_int_t
ngx_http_openbank_events_deliveries(ngx_http_openbank_zone_t *zone,
    ngx_pool_t *pool, ngx_str_t *partner, ngx_str_t *type, uint64_t seq,
    uint64_t only, ngx_array_t *ops)
{
    u_char                         nkey[1 + NGX_HTTP_OPENBANK_NAME_MAX];
    u_char                         wkey[17], *p;
    ssize_t                        n;
    uint64_t                       ids[NGX_HTTP_OPENBANK_WEBHOOK_MAX + 1];
    ngx_str_t                      k, events;
    ngx_uint_t                     i, count;
    ngx_http_openbank_ev_op_t     *op;
    ngx_http_openbank_webhook_v_t  wv;
    ngx_http_openbank_outbox_v_t   ov;
    static u_char                  buf[sizeof(ngx_http_openbank_webhook_v_t)
                                       + 4 * 4096];

    if (partner->len > NGX_HTTP_OPENBANK_NAME_MAX) {
        return NGX_OK;
    }

    nkey[0] = 'n';
    ngx_memcpy(nkey + 1, partner->data, partner->len);
    k.data = nkey;
    k.len = 1 + partner->len;

    n = ngx_http_openbank_store_get(zone, NGX_HTTP_OPENBANK_TABLE_EVENTS, &k,
                                    ids, sizeof(ids), NULL);

    count = (n > 0) ? ngx_min((size_t) n, sizeof(ids)) / sizeof(uint64_t)
                    : 0;

    for (i = 0; i < count; i++) {
        if (only && ids[i] != only) {
            continue;
        }

        ngx_http_openbank_events_key(&k, wkey, 'w', ids[i]);

        n = ngx_http_openbank_store_get(zone, NGX_HTTP_OPENBANK_TABLE_EVENTS,
                                        &k, buf, sizeof(buf), NULL);

        if (n < (ssize_t) sizeof(wv) || (size_t) n > sizeof(buf)) {
            continue;
        }

        ngx_memcpy(&wv, buf, sizeof(wv));

        if ((size_t) n < sizeof(wv) + wv.partner_len + wv.url_len
                         + wv.events_len)
        {
            continue;
        }

        events.data = buf + sizeof(wv) + wv.partner_len + wv.url_len;
        events.len = wv.events_len;

        if (!only
            && (wv.status != NGX_HTTP_OPENBANK_WEBHOOK_ENABLED
                || ngx_http_openbank_event_matches(&events, type) != NGX_OK))
        {
            continue;
        }

        op = ngx_array_push(ops);
        if (op == NULL) {
            return NGX_ERROR;
        }

        p = ngx_pnalloc(pool, 33 + sizeof(ov));
        if (p == NULL) {
            return NGX_ERROR;
        }

        p[0] = 'd';
        ngx_sprintf(p + 1, "%016uxL%016uxL", seq, ids[i]);

        ngx_memzero(&ov, sizeof(ov));
        ov.next = 0;
        ov.forced = (only != 0);
        ngx_memcpy(p + 33, &ov, sizeof(ov));

        op->type = NGX_HTTP_OPENBANK_EV_OUT_PUT;
        op->key.data = p;
        op->key.len = 33;
        op->value.data = p + 33;
        op->value.len = sizeof(ov);
        op->expire = 0;
    }

    return NGX_OK;
}


/* the bank's events: POST {partner, type, data} -> 202 {"id"} */

static ngx_int_t
ngx_http_openbank_ingest_handler(ngx_http_request_t *r)
{
    ngx_int_t                 rc;
    ngx_http_openbank_ctx_t  *ctx;

    rc = ngx_http_openbank_endpoint_start(r, NGX_HTTP_POST, "POST");
    if (rc != NGX_OK) {
        return rc;
    }

    ctx = ngx_http_openbank_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_openbank_json_request(r, ctx, 1,
                                          &ngx_http_openbank_ingest_json);
}


/* NGX_AGAIN: answered in ngx_http_openbank_events_answer() */

static ngx_int_t
ngx_http_openbank_ingest(ngx_http_request_t *r, ngx_http_openbank_ctx_t *ctx,
    ngx_str_t *body)
{
    u_char                          err[256];
    ngx_int_t                       rc;
    ngx_http_openbank_ev_ctx_t     *ec;
    ngx_http_openbank_event_in_t    ev;

    if (ngx_http_openbank_event_parse(body, &ev, err, sizeof(err))
        != NGX_OK)
    {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_BODY,
                                        "%s", err);
    }

    rc = ngx_http_openbank_ev_partner(r, &ev.partner);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                        NGX_HTTP_OPENBANK_PROBLEM_INVALID_BODY,
                                        "no partner named \"%V\"",
                                        &ev.partner);
    }

    ec = ngx_pcalloc(r->pool, sizeof(ngx_http_openbank_ev_ctx_t));
    if (ec == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->events = ec;
    ec->status = NGX_HTTP_ACCEPTED;

    return ngx_http_openbank_events_emit(r, &ev.partner, &ev.type, &ev.data,
                                         0, ec);
}


/*
 * An event and its deliveries, into the zone and then the journal:
 * NGX_AGAIN, answered {"id"} with ec->status once durable; or an HTTP
 * status, refused.
 */

ngx_int_t
ngx_http_openbank_events_emit(ngx_http_request_t *r, ngx_str_t *partner,
    ngx_str_t *type, ngx_str_t *data, uint64_t only,
    ngx_http_openbank_ev_ctx_t *ec)
{
    ngx_http_openbank_ctx_t         *ctx;
    ngx_http_openbank_ev_emit_t      em;
    ngx_http_openbank_main_conf_t   *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    ctx = ngx_http_openbank_find_ctx(r);

    ngx_memzero(&em, sizeof(em));
    em.pool = r->pool;
    em.partner = partner;
    em.type = type;
    em.data = data;
    em.only = only;

    em.ops = ngx_array_create(r->pool, 4, sizeof(ngx_http_openbank_ev_op_t));
    if (em.ops == NULL || ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_openbank_store_atomic(obmcf->shm_zone->data,
                                       ngx_http_openbank_ev_emit_atomic, &em)
        != NGX_OK
        || em.full)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "openbank: zone \"%V\" is full: an event is refused",
                      &obmcf->shm_zone->shm.name);

        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
                                "the outbox is full");
    }

    ec->answer.data = ngx_pnalloc(r->pool, sizeof("{\"id\":\"evt_\"}") + 16);
    if (ec->answer.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ec->answer.len = ngx_sprintf(ec->answer.data, "{\"id\":\"evt_%016uxL\"}",
                                 em.seq)
                     - ec->answer.data;
    ec->held = em.ops;

    if (ngx_http_openbank_events_write(r->connection->log, em.ops, r,
                                       ngx_http_openbank_events_answer)
        != NGX_OK)
    {
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
                                "the events journal cannot be written");
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "openbank: event evt_%016uxL %V for \"%V\", "
                  "%ui deliveries", em.seq, type, partner,
                  em.ops->nelts - 1);

    return NGX_AGAIN;
}


static ngx_int_t
ngx_http_openbank_ev_emit_atomic(ngx_http_openbank_zone_t *zone, void *data)
{
    ngx_http_openbank_ev_emit_t *em = data;

    ngx_int_t                   rc;
    ngx_uint_t                  i;
    ngx_http_openbank_ev_op_t  *op;

    if (ngx_http_openbank_events_next_seq(zone, &em->seq) != NGX_OK) {
        em->full = 1;
        return NGX_OK;
    }

    op = ngx_array_push(em->ops);
    if (op == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_events_event_op(em->pool, em->seq, em->partner,
                                          em->type, em->data,
                                          ngx_http_openbank_now_ms(), op)
        != NGX_OK
        || ngx_http_openbank_events_deliveries(zone, em->pool, em->partner,
                                               em->type, em->seq, em->only,
                                               em->ops)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /*
     * In the zone, a delivery waits until its event is durable (the
     * answer sets it due, ngx_http_openbank_ev_release()), or at most
     * NGX_HTTP_OPENBANK_EVENT_HOLD; in the journal it is due at once.
     */

    op = em->ops->elts;

    for (i = 0; i < em->ops->nelts; i++) {
        if (op[i].type == NGX_HTTP_OPENBANK_EV_OUT_PUT) {
            ngx_http_openbank_ev_hold(&op[i], ngx_http_openbank_now_ms()
                                              + NGX_HTTP_OPENBANK_EVENT_HOLD);
        }

        rc = ngx_http_openbank_events_apply(zone, &op[i]);

        if (op[i].type == NGX_HTTP_OPENBANK_EV_OUT_PUT) {
            ngx_http_openbank_ev_hold(&op[i], 0);
        }

        if (rc == NGX_ERROR) {
            break;
        }
    }

    if (i == em->ops->nelts) {
        return NGX_OK;
    }

    /* no room: nothing of the event stays */

    em->full = 1;

    while (i--) {
        (void) ngx_http_openbank_store_delete(zone,
                                   op[i].type == NGX_HTTP_OPENBANK_EV_PUT
                                   ? NGX_HTTP_OPENBANK_TABLE_EVENTS
                                   : NGX_HTTP_OPENBANK_TABLE_OUTBOX,
                                   &op[i].key);
    }

    return NGX_OK;
}


/* a change's answer once it is durable: ec->status and ec->answer */

void
ngx_http_openbank_events_answer(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_connection_t         *c;
    ngx_http_openbank_ctx_t  *ctx;

    c = r->connection;
    ctx = ngx_http_openbank_find_ctx(r);

    if (ctx == NULL || ctx->events == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else if (rc != NGX_OK) {
        rc = ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
                                "the change is made but not yet durable: "
                                "the events journal cannot be written");

    } else {
        if (ctx->events->held) {
            ngx_http_openbank_ev_release(r, ctx->events->held);
        }

        rc = ngx_http_openbank_admin_send(r, ctx->events->status,
                                          &ctx->events->answer);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/* a delivery record's time, in place */

static void
ngx_http_openbank_ev_hold(ngx_http_openbank_ev_op_t *op, uint64_t next)
{
    ngx_http_openbank_outbox_v_t  ov;

    ngx_memcpy(&ov, op->value.data, sizeof(ov));
    ov.next = (int64_t) next;
    ngx_memcpy(op->value.data, &ov, sizeof(ov));
}


/* the event is durable: its deliveries are due */

static void
ngx_http_openbank_ev_release(ngx_http_request_t *r, ngx_array_t *ops)
{
    ngx_uint_t                      i;
    ngx_http_openbank_ev_op_t      *op;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    op = ops->elts;

    for (i = 0; i < ops->nelts; i++) {
        if (op[i].type == NGX_HTTP_OPENBANK_EV_OUT_PUT) {
            (void) ngx_http_openbank_store_update(obmcf->shm_zone->data,
                                        NGX_HTTP_OPENBANK_TABLE_OUTBOX,
                                        &op[i].key, 0, 0,
                                        ngx_http_openbank_ev_due, NULL);

            ngx_http_openbank_webhook_send_due(&op[i].key);
        }
    }
}


static ngx_int_t
ngx_http_openbank_ev_due(ngx_http_openbank_store_value_t *sv, void *data)
{
    ngx_http_openbank_outbox_v_t  ov;

    if (sv->len != sizeof(ov)) {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    ngx_memcpy(&ov, sv->value, sizeof(ov));

    /* not claimed yet: a claim moved it past the hold */

    if (ov.attempts == 0 && (uint64_t) ov.next > sv->now
        && (uint64_t) ov.next <= sv->now + NGX_HTTP_OPENBANK_EVENT_HOLD)
    {
        ov.next = 0;
        ngx_memcpy(sv->value, &ov, sizeof(ov));
    }

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/* a partner of the configuration or of the registry */

static ngx_int_t
ngx_http_openbank_ev_partner(ngx_http_request_t *r, ngx_str_t *name)
{
    u_char                         *p;
    ngx_str_t                       key, value;
    ngx_uint_t                      i;
    ngx_http_openbank_partner_t    *partner;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);

    partner = obmcf->partners.elts;

    for (i = 0; i < obmcf->partners.nelts; i++) {
        if (partner[i].name.len == name->len
            && ngx_strncmp(partner[i].name.data, name->data, name->len) == 0)
        {
            return NGX_OK;
        }
    }

    if (!obmcf->admin_api) {
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(r->pool, name->len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    p[0] = 'p';
    ngx_memcpy(p + 1, name->data, name->len);
    key.data = p;
    key.len = name->len + 1;

    return ngx_http_openbank_registry_get(r, &key, &value);
}
