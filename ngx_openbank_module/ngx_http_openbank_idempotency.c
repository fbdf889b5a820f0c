
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Idempotency keys ("openbank_idempotency"): a POST that carries an
 * Idempotency-Key is remembered for 24 hours under (partner, key) with
 * the fingerprint of its method, path and body.  The first request marks
 * the key in flight and goes on to the bank; its answer is kept (status,
 * the headers that matter, body), written to the journal under
 * "openbank_state" and only then sent.  A retry with the same fingerprint
 * gets the kept answer with "Idempotent-Replayed: true" and never reaches
 * the bank; another fingerprint is 422, a retry while the first is still
 * running is 409.  See docs/idempotency.md.
 *
 * Records live in the shared zone (table NGX_HTTP_OPENBANK_TABLE_
 * IDEMPOTENCY, never evicted before they expire); the journal
 * (ngx_http_openbank_journal.c) is replayed into the zone at start.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_cluster.h>
#include <ngx_http_openbank_idempotency.h>
#include <ngx_http_openbank_journal.h>
#include <ngx_http_openbank_util.h>

#include <fcntl.h>
#include <openssl/evp.h>

#if !(NGX_THREADS)
#error "the openbank module needs nginx built --with-threads"
#endif


#define NGX_HTTP_OPENBANK_IDEM_TTL           (24ULL * 60 * 60 * 1000)
#define NGX_HTTP_OPENBANK_IDEM_KEY_MAX       255
#define NGX_HTTP_OPENBANK_IDEM_RESPONSE_MAX  (16 * 1024)
#define NGX_HTTP_OPENBANK_IDEM_STALE         (300 * 1000)
#define NGX_HTTP_OPENBANK_IDEM_RETRY         1000

#define NGX_HTTP_OPENBANK_IDEM_IN_FLIGHT     1
#define NGX_HTTP_OPENBANK_IDEM_DONE          2

#define NGX_HTTP_OPENBANK_IDEM_ENTRY_DONE    1    /* a record type */


/* the value of a record in the zone, followed by the kept response */

typedef struct {
    u_char                        state;
    u_char                        asking;      /* Redis not answered yet */
    u_char                        reserved[2];
    uint32_t                      owner_seq;
    int32_t                       owner_pid;
    uint32_t                      response_len;
    uint64_t                      started;     /* unix ms */
    u_char                        fingerprint[NGX_HTTP_OPENBANK_HASH_LEN];
} ngx_http_openbank_idem_t;


/*
 * The kept response: this header, then "nheaders" times a name length,
 * a value length, the name and the value, then the body.
 */

typedef struct {
    uint16_t                      status;
    uint16_t                      nheaders;
    uint32_t                      body_len;
} ngx_http_openbank_idem_response_t;


/* a journal record: its head, the key, a record value */

typedef ngx_http_openbank_journal_head_t  ngx_http_openbank_idem_entry_t;


struct ngx_http_openbank_idem_ctx_s {
    ngx_str_t                     key;         /* partner '\0' key */
    u_char                        fingerprint[NGX_HTTP_OPENBANK_HASH_LEN];
    ngx_http_openbank_zone_t     *zone;
    uint64_t                      expire;
    uint32_t                      seq;

    u_char                       *response;    /* replay */
    size_t                        response_len;
    size_t                        kept_len;    /* of the record's answer */

    ngx_uint_t                    status;      /* capture */
    ngx_uint_t                    nheaders;
    u_char                       *headers;
    size_t                        headers_len;
    ngx_buf_t                    *body;

    ngx_http_request_t           *request;
    ngx_http_openbank_journal_entry_t  entry;  /* the framed record */

    ngx_http_openbank_idem_cluster_t  *cluster;  /* NULL: not in Redis */

    unsigned                      owner:1;
    unsigned                      ask_only:1;  /* no record in the zone */
    unsigned                      holding:1;
    unsigned                      finished:1;
    unsigned                      queued:1;    /* waits for the commit */
    unsigned                      durable:1;   /* committed: send it */
    unsigned                      last:1;      /* the body is complete */
};


typedef struct {
    ngx_http_openbank_zone_t     *zone;
    ngx_log_t                    *log;
    uint64_t                      now;
    ngx_uint_t                    loaded;
    ngx_uint_t                    full;
    ngx_int_t                     rc;          /* of the journal's read */
    size_t                        skipped;
} ngx_http_openbank_idem_load_t;


static ngx_int_t ngx_http_openbank_idempotency_fingerprint(
    ngx_http_request_t *r, ngx_http_openbank_idem_ctx_t *ic);
static ngx_int_t ngx_http_openbank_idempotency_valid_key(ngx_str_t *key);
static ngx_int_t ngx_http_openbank_idempotency_take(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_idem_ctx_t *ic);
static ngx_int_t ngx_http_openbank_idempotency_ask(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_idem_ctx_t *ic);
static ngx_int_t ngx_http_openbank_idempotency_answered(
    ngx_http_request_t *r, ngx_http_openbank_ctx_t *ctx,
    ngx_http_openbank_idem_ctx_t *ic);
static ngx_int_t ngx_http_openbank_idempotency_degraded(
    ngx_http_request_t *r, ngx_http_openbank_ctx_t *ctx,
    ngx_http_openbank_idem_ctx_t *ic);
static ngx_int_t ngx_http_openbank_idempotency_cache(ngx_http_request_t *r,
    ngx_http_openbank_idem_ctx_t *ic);
static ngx_uint_t ngx_http_openbank_idempotency_mine(
    ngx_http_openbank_idem_t *v, ngx_http_openbank_idem_ctx_t *ic);
static void ngx_http_openbank_idempotency_confirm(
    ngx_http_openbank_idem_ctx_t *ic);
static ngx_int_t ngx_http_openbank_idempotency_asked(
    ngx_http_openbank_store_value_t *sv, void *data);
static void ngx_http_openbank_idempotency_wake(void *data);
static void ngx_http_openbank_idempotency_nothing(void *data);
static ngx_int_t ngx_http_openbank_idempotency_replay(ngx_http_request_t *r);
static void ngx_http_openbank_idempotency_cleanup(void *data);
static void ngx_http_openbank_idempotency_release(
    ngx_http_openbank_idem_ctx_t *ic);
static ngx_int_t ngx_http_openbank_idempotency_capture(ngx_http_request_t *r,
    ngx_http_openbank_idem_ctx_t *ic);
static ngx_int_t ngx_http_openbank_idempotency_keep(ngx_http_request_t *r,
    ngx_http_openbank_idem_ctx_t *ic, ngx_buf_t *b);
static ngx_int_t ngx_http_openbank_idempotency_record(ngx_http_request_t *r,
    ngx_http_openbank_idem_ctx_t *ic);
static void ngx_http_openbank_idempotency_durable(
    ngx_http_openbank_journal_entry_t *e, ngx_int_t rc);
static void ngx_http_openbank_idempotency_written(
    ngx_http_openbank_journal_t *j, ngx_queue_t *batch, uint64_t now);
static void ngx_http_openbank_idempotency_after(
    ngx_http_openbank_journal_t *j, ngx_int_t rc, ngx_log_t *log);
static ngx_int_t ngx_http_openbank_idempotency_send(ngx_http_request_t *r,
    ngx_http_openbank_idem_ctx_t *ic, ngx_chain_t *rest);
static ngx_int_t ngx_http_openbank_idempotency_take_atomic(
    ngx_http_openbank_zone_t *zone, void *data);
static ngx_int_t ngx_http_openbank_idempotency_own(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_idempotency_ours(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_idempotency_disown(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_idempotency_dump_entry(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_idempotency_load_atomic(
    ngx_http_openbank_zone_t *zone, void *data);
static ngx_int_t ngx_http_openbank_idempotency_probe(ngx_log_t *log,
    ngx_uint_t level);
static ngx_int_t ngx_http_openbank_idempotency_load(void *data,
    u_char *payload, size_t len);


ngx_conf_enum_t  ngx_http_openbank_idempotency_modes[] = {
    { ngx_string("off"), NGX_HTTP_OPENBANK_IDEMPOTENCY_OFF },
    { ngx_string("optional"), NGX_HTTP_OPENBANK_IDEMPOTENCY_OPTIONAL },
    { ngx_string("required"), NGX_HTTP_OPENBANK_IDEMPOTENCY_REQUIRED },
    { ngx_null_string, 0 }
};


/* what take() found, under the zone's lock */

#define NGX_HTTP_OPENBANK_IDEM_OWN          0   /* in flight, ours */
#define NGX_HTTP_OPENBANK_IDEM_FULL         1
#define NGX_HTTP_OPENBANK_IDEM_REUSED       2
#define NGX_HTTP_OPENBANK_IDEM_REPLAY       3
#define NGX_HTTP_OPENBANK_IDEM_BUSY         4   /* in flight elsewhere */
#define NGX_HTTP_OPENBANK_IDEM_PROBE        5
#define NGX_HTTP_OPENBANK_IDEM_UNAVAILABLE  6
#define NGX_HTTP_OPENBANK_IDEM_LOOK         7
#define NGX_HTTP_OPENBANK_IDEM_ASK          8   /* Redis, not the zone */

typedef struct {
    ngx_http_openbank_idem_ctx_t  *ic;
    ngx_http_openbank_journal_t   *journal;
    ngx_pool_t                    *pool;
    ngx_log_t                     *log;
    uint64_t                       now;
    ngx_uint_t                     outcome;
    ngx_uint_t                     level;      /* of a probe's failure */
    unsigned                       removed:1;
    unsigned                       probed:1;
    unsigned                       check:1;
    unsigned                       look:1;
    unsigned                       cluster:1;
    unsigned                       looked:1;
    unsigned                       unavailable:1;
} ngx_http_openbank_idem_take_t;


/* the headers of an answer that a replay gives back, besides its type */

static ngx_str_t  ngx_http_openbank_idem_kept[] = {
    ngx_string("Location"),
    ngx_string("ETag"),
    ngx_string("Link"),
    ngx_string("Cache-Control"),
    ngx_string("Content-Language"),
    ngx_null_string
};


/*
 * The journal (ngx_http_openbank_journal.c): the answers completed during
 * one pass of the event loop are written together by a thread of nginx's
 * default thread pool, and each is sent once durable.
 */

static ngx_http_openbank_journal_t  ngx_http_openbank_idem_j = {
    "idempotency journal", "idempotency",
    NGX_HTTP_OPENBANK_TABLE_IDEMPOTENCY,
    ngx_http_openbank_idempotency_written,
    ngx_http_openbank_idempotency_dump_entry,
    ngx_http_openbank_idempotency_after,
    ": new keys are accepted",
    ngx_null_string, ngx_null_string, 0, 0, 0, 0, 0,
    { NULL, NULL }, { NULL, NULL }, 0, { 0 }, { 0 }, NULL, NULL, 0
};

static uint32_t    ngx_http_openbank_idem_seq;

/*
 * When (ngx_current_msec, which the event loop updates once a pass) the
 * journal and its lock file were last found in place: the new keys of
 * the same millisecond do not look again.
 */
static ngx_msec_t  ngx_http_openbank_idem_in_place;
static ngx_uint_t  ngx_http_openbank_idem_in_place_set;

/* answers of the last write that the zone had no room for */
static ngx_int_t  ngx_http_openbank_idem_full;

static EVP_MD_CTX  *ngx_http_openbank_idem_md;
static EVP_MD      *ngx_http_openbank_idem_sha256;

/* r->buffered while an answer waits for its commit (as image_filter) */
#define NGX_HTTP_OPENBANK_IDEM_BUFFERED  0x08


char *
ngx_http_openbank_idempotency_merge(ngx_conf_t *cf,
    ngx_http_openbank_loc_conf_t *prev, ngx_http_openbank_loc_conf_t *conf)
{
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_openbank_main_conf_t  *obmcf;

    if (conf->idempotency == NGX_HTTP_OPENBANK_IDEMPOTENCY_OFF) {
        return NGX_CONF_OK;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (conf->auth == 0
        && (clcf->name.len == 0 || conf->idempotency == prev->idempotency))
    {
        /*
         * server level, or inherited by a location without partners
         * (status, metrics): nothing to do there
         */
        return NGX_CONF_OK;
    }

    obmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_openbank_module);

    if (obmcf->shm_zone == NULL || obmcf->state_path.len == 0) {
        return "with \"openbank_idempotency\" requires \"openbank_zone\" "
               "and \"openbank_state\"";
    }

    if (conf->auth == 0) {
        return "with \"openbank_idempotency\" requires \"openbank_auth\" "
               "in the same location: keys are scoped to the partner";
    }

    if (obmcf->cluster && ngx_http_openbank_cluster_idem_init(cf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* the journal's writes and syncs run in the default thread pool */

    if (ngx_thread_pool_add(cf, NULL) == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * The check of the access phase.  It runs after the partner is known and
 * after the signature (which may have read the body already), before the
 * quota: a replay or a refusal here costs no quota.
 */

ngx_int_t
ngx_http_openbank_idempotency_check(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    u_char                        *p;
    ngx_uint_t                     n;
    ngx_table_elt_t               *h;
    ngx_http_openbank_idem_ctx_t  *ic;
    ngx_http_openbank_loc_conf_t  *oblcf;

    oblcf = ngx_http_get_module_loc_conf(r, ngx_http_openbank_module);

    if (r->method != NGX_HTTP_POST) {
        return NGX_DECLINED;
    }

    ic = ctx->idempotency;

    if (ic == NULL) {
        h = ngx_http_openbank_find_header(&r->headers_in.headers,
                                          "Idempotency-Key", &n);
        if (h == NULL) {
            if (oblcf->idempotency == NGX_HTTP_OPENBANK_IDEMPOTENCY_OPTIONAL) {
                return NGX_DECLINED;
            }

            return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                NGX_HTTP_OPENBANK_PROBLEM_IDEMPOTENCY_KEY_MISSING,
                "a POST to this endpoint needs "
                "an Idempotency-Key header");
        }

        if (n > 1) {
            return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                NGX_HTTP_OPENBANK_PROBLEM_INVALID_REQUEST,
                "Idempotency-Key is sent more "
                "than once");
        }

        if (ngx_http_openbank_idempotency_valid_key(&h->value) != NGX_OK) {
            return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                NGX_HTTP_OPENBANK_PROBLEM_INVALID_REQUEST,
                "Idempotency-Key must be 1 to "
                "%d visible ASCII characters",
                NGX_HTTP_OPENBANK_IDEM_KEY_MAX);
        }

        ic = ngx_pcalloc(r->pool, sizeof(ngx_http_openbank_idem_ctx_t));
        if (ic == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ic->key.len = ctx->partner->name.len + 1 + h->value.len;
        ic->key.data = ngx_pnalloc(r->pool, ic->key.len);
        if (ic->key.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_cpymem(ic->key.data, ctx->partner->name.data,
                       ctx->partner->name.len);
        *p++ = '\0';
        ngx_memcpy(p, h->value.data, h->value.len);

        ctx->idempotency = ic;
    }

    /* the fingerprint covers the body */

    if (!ctx->body_read) {
        return NGX_HTTP_OPENBANK_READ_BODY;
    }

    if (ic->cluster && ic->cluster->asked) {
        /* resumed by Redis's answer */

        if (!ic->cluster->answered) {
            return NGX_AGAIN;
        }

        ic->cluster->asked = 0;

        return ngx_http_openbank_idempotency_answered(r, ctx, ic);
    }

    if (ic->owner || ic->response) {
        /* run again after a suspension by a later check */
        return ic->response ? NGX_OK : NGX_DECLINED;
    }

    if (ngx_http_openbank_idempotency_fingerprint(r, ic) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_openbank_idempotency_take(r, ctx, ic);
}


/* 1 to 255 visible ASCII characters (RFC 9110 token-ish, no spaces) */

static ngx_int_t
ngx_http_openbank_idempotency_valid_key(ngx_str_t *key)
{
    ngx_uint_t  i;

    if (key->len == 0 || key->len > NGX_HTTP_OPENBANK_IDEM_KEY_MAX) {
        return NGX_ERROR;
    }

    for (i = 0; i < key->len; i++) {
        if (key->data[i] < 0x21 || key->data[i] > 0x7e) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* SHA-256 of the method, the path (with its query) and SHA-256(body) */

static ngx_int_t
ngx_http_openbank_idempotency_fingerprint(ngx_http_request_t *r,
    ngx_http_openbank_idem_ctx_t *ic)
{
    ngx_int_t      rc;
    EVP_MD_CTX    *md;
    unsigned int   len;
    u_char         body[NGX_HTTP_OPENBANK_HASH_LEN];

    /* one digest context per process, reused */

    if (ngx_http_openbank_idem_md == NULL) {
        ngx_http_openbank_idem_md = EVP_MD_CTX_new();
        ngx_http_openbank_idem_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);

        if (ngx_http_openbank_idem_md == NULL
            || ngx_http_openbank_idem_sha256 == NULL)
        {
            return NGX_ERROR;
        }
    }

    md = ngx_http_openbank_idem_md;
    rc = NGX_ERROR;

    if (EVP_DigestInit_ex(md, ngx_http_openbank_idem_sha256, NULL) != 1) {
        goto done;
    }

    if (ngx_http_openbank_body_digest(r, md) != NGX_OK) {
        goto done;
    }

    if (EVP_DigestFinal_ex(md, body, &len) != 1
        || EVP_DigestInit_ex(md, ngx_http_openbank_idem_sha256, NULL) != 1
        || EVP_DigestUpdate(md, r->method_name.data, r->method_name.len)
           != 1
        || EVP_DigestUpdate(md, "\n", 1) != 1
        || EVP_DigestUpdate(md, r->unparsed_uri.data, r->unparsed_uri.len)
           != 1
        || EVP_DigestUpdate(md, "\n", 1) != 1
        || EVP_DigestUpdate(md, body, sizeof(body)) != 1
        || EVP_DigestFinal_ex(md, ic->fingerprint, &len) != 1)
    {
        goto done;
    }

    rc = NGX_OK;

done:

    return rc;
}


/* replay, refuse, or mark the key in flight: one look under the lock */

static ngx_int_t
ngx_http_openbank_idempotency_take(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_idem_ctx_t *ic)
{
    ngx_pool_cleanup_t             *cln;
    ngx_http_openbank_zone_t       *zone;
    ngx_http_openbank_journal_t    *j;
    ngx_http_openbank_idem_take_t   tk;
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_get_module_main_conf(r, ngx_http_openbank_module);
    zone = obmcf->shm_zone->data;
    ic->zone = zone;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    tk.ic = ic;
    tk.pool = r->pool;
    tk.log = r->connection->log;
    tk.probed = 0;
    tk.cluster = (obmcf->cluster != NULL
                  && ngx_http_openbank_cluster_on(r));

    /*
     * Not opened yet by this worker, or the journal or lock file it holds
     * was removed (or compacted): whether they open is checked first.
     * Whether they were removed costs system calls: it is looked at only
     * for a key that is to go to the bank ("look"), not for a replay, and
     * once a millisecond of the event loop's clock: the keys of one pass
     * go to the bank on the same look (a removal between the look and the
     * write is found by the write all the same, docs/architecture.md).
     */

    j = &ngx_http_openbank_idem_j;

    if (ngx_http_openbank_journal_init(j, (ngx_cycle_t *) ngx_cycle)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    tk.journal = j;
    tk.removed = (j->fd == NGX_INVALID_FILE || j->lock_fd == NGX_INVALID_FILE);
    tk.looked = tk.removed
                || (ngx_http_openbank_idem_in_place_set
                    && ngx_http_openbank_idem_in_place == ngx_current_msec);

again:

    tk.now = ngx_http_openbank_now_ms();

    switch (ngx_http_openbank_store_atomic(zone,
                                     ngx_http_openbank_idempotency_take_atomic,
                                     &tk))
    {

    case NGX_HTTP_OPENBANK_IDEM_OWN:
        cln->handler = ngx_http_openbank_idempotency_cleanup;
        cln->data = ic;

        if (tk.cluster) {
            /* this gateway's requests are settled: now the others' */
            return ngx_http_openbank_idempotency_ask(r, ctx, ic);
        }

        return NGX_DECLINED;

    case NGX_HTTP_OPENBANK_IDEM_FULL:
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "openbank: zone \"%V\" is full, idempotency "
                      "record not created: request refused",
                      &obmcf->shm_zone->shm.name);

        return ngx_http_openbank_refuse(r, ctx,
            NGX_HTTP_SERVICE_UNAVAILABLE,
            NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
            "the gateway has no room for "
            "another idempotency key now");

    case NGX_HTTP_OPENBANK_IDEM_REUSED:
        return ngx_http_openbank_refuse(r, ctx,
            422,
            NGX_HTTP_OPENBANK_PROBLEM_IDEMPOTENCY_KEY_REUSED,
            "this Idempotency-Key was used with "
            "another method, path or body");

    case NGX_HTTP_OPENBANK_IDEM_REPLAY:
        if (ic->response == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_str_set(&ctx->result, "replayed");

        /* the answer is sent by the content phase, without the bank */
        r->content_handler = ngx_http_openbank_idempotency_replay;

        return NGX_OK;

    case NGX_HTTP_OPENBANK_IDEM_BUSY:
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_CONFLICT,
            NGX_HTTP_OPENBANK_PROBLEM_IDEMPOTENCY_IN_FLIGHT,
            "a request with this "
            "Idempotency-Key is still being "
            "processed: retry later");

    case NGX_HTTP_OPENBANK_IDEM_ASK:

        /*
         * Another request of this gateway is asking Redis for the key:
         * this one asks too (a replay of another gateway's answer is not
         * a 409), without a record in the zone.
         */

        cln->handler = ngx_http_openbank_idempotency_cleanup;
        cln->data = ic;
        ic->ask_only = 1;

        return ngx_http_openbank_idempotency_ask(r, ctx, ic);

    case NGX_HTTP_OPENBANK_IDEM_LOOK:
        tk.looked = 1;
        tk.removed = (ngx_http_openbank_journal_moved(j->fd, &j->name)
                      || ngx_http_openbank_journal_moved(j->lock_fd,
                                                         &j->lock));

        ngx_http_openbank_idem_in_place_set = !tk.removed;
        ngx_http_openbank_idem_in_place = ngx_current_msec;

        goto again;

    case NGX_HTTP_OPENBANK_IDEM_PROBE:
        tk.probed = 1;

        if (ngx_http_openbank_idempotency_probe(r->connection->log,
                                                tk.level)
            == NGX_OK)
        {
            goto again;
        }

        /* new keys wait for the retry delay */
        ngx_http_openbank_journal_failed(j);
        break;

    default: /* NGX_HTTP_OPENBANK_IDEM_UNAVAILABLE */
        break;
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "openbank: idempotency journal unavailable, "
                  "request refused");

    return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
                                    "the gateway cannot record "
                                    "idempotency keys durably now");
}


/*
 * Cluster mode (docs/cluster.md, "Idempotency keys"): the key is in
 * flight in this gateway's zone, and Redis decides whether another
 * gateway has it: the request waits for the answer ("take").
 */

static ngx_int_t
ngx_http_openbank_idempotency_ask(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_idem_ctx_t *ic)
{
    ngx_int_t  rc;

    if (!ngx_http_openbank_cluster_on(r)) {
        return NGX_DECLINED;
    }

    ic->cluster = ngx_pcalloc(r->pool,
                              sizeof(ngx_http_openbank_idem_cluster_t));
    if (ic->cluster == NULL) {
        ngx_http_openbank_idempotency_release(ic);
        ic->finished = 1;
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ic->expire == 0) {
        /* a request that asks without a record in the zone */
        ic->expire = ngx_http_openbank_now_ms() + NGX_HTTP_OPENBANK_IDEM_TTL;
    }

    rc = ngx_http_openbank_cluster_idem_take(r, ctx, ic->cluster, &ic->key,
                                             ctx->partner->name.len,
                                             ic->fingerprint, ic->expire);

    if (rc == NGX_AGAIN || rc == NGX_DECLINED) {
        /* DECLINED: cluster mode is off, this gateway's zone decides */
        return rc;
    }

    if (rc == NGX_BUSY) {
        return ngx_http_openbank_idempotency_degraded(r, ctx, ic);
    }

    ngx_http_openbank_idempotency_release(ic);
    ic->finished = 1;

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/* what Redis answered: as take() for this gateway's zone */

static ngx_int_t
ngx_http_openbank_idempotency_answered(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_idem_ctx_t *ic)
{
    ngx_http_openbank_idem_cluster_t  *ci;

    ci = ic->cluster;

    switch (ci->outcome) {

    case NGX_HTTP_OPENBANK_IDEM_CLUSTER_TAKEN:
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "openbank: taking over an idempotency key whose "
                      "owner's lease lapsed in the cluster");

        /* fall through */

    case NGX_HTTP_OPENBANK_IDEM_CLUSTER_OWN:
        if (ic->ask_only) {
            /*
             * Redis had no owner: the other request's take is not in
             * yet.  This one gives the key back and is the 409 the zone
             * would have said.
             */
            ngx_http_openbank_cluster_idem_hold(ci);
            ngx_http_openbank_cluster_idem_release(ci);
            ic->finished = 1;

            return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_CONFLICT,
                NGX_HTTP_OPENBANK_PROBLEM_IDEMPOTENCY_IN_FLIGHT,
                "a request with this "
                "Idempotency-Key is still being "
                "processed: retry later");
        }

        ngx_http_openbank_idempotency_confirm(ic);
        ngx_http_openbank_cluster_idem_hold(ci);
        return NGX_DECLINED;

    case NGX_HTTP_OPENBANK_IDEM_CLUSTER_FAILED:
        return ngx_http_openbank_idempotency_degraded(r, ctx, ic);

    default:
        break;
    }

    /*
     * Another gateway has the key: this zone's in-flight record goes, or
     * becomes the answer, kept here until Redis's record expires (the next
     * retry on this gateway is replayed without Redis; not journaled, as
     * Redis has it).
     */

    ic->finished = 1;

    if (ci->outcome != NGX_HTTP_OPENBANK_IDEM_CLUSTER_REPLAY
        || ngx_http_openbank_idempotency_cache(r, ic) != NGX_OK)
    {
        ngx_http_openbank_idempotency_release(ic);
    }

    switch (ci->outcome) {

    case NGX_HTTP_OPENBANK_IDEM_CLUSTER_REUSED:
        return ngx_http_openbank_refuse(r, ctx, 422,
            NGX_HTTP_OPENBANK_PROBLEM_IDEMPOTENCY_KEY_REUSED,
            "this Idempotency-Key was used with "
            "another method, path or body");

    case NGX_HTTP_OPENBANK_IDEM_CLUSTER_BUSY:
        return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_CONFLICT,
            NGX_HTTP_OPENBANK_PROBLEM_IDEMPOTENCY_IN_FLIGHT,
            "a request with this "
            "Idempotency-Key is still being "
            "processed: retry later");

    default: /* NGX_HTTP_OPENBANK_IDEM_CLUSTER_REPLAY */
        break;
    }

    ic->response = ci->response;
    ic->response_len = ci->response_len;

    ngx_str_set(&ctx->result, "replayed");
    r->content_handler = ngx_http_openbank_idempotency_replay;

    return NGX_OK;
}


/* the record is in flight for this request */

static ngx_uint_t
ngx_http_openbank_idempotency_mine(ngx_http_openbank_idem_t *v,
    ngx_http_openbank_idem_ctx_t *ic)
{
    return v->state == NGX_HTTP_OPENBANK_IDEM_IN_FLIGHT
           && v->owner_pid == (int32_t) ngx_pid
           && v->owner_seq == ic->seq;
}


/* the zone's record is this gateway's in flight: no longer asking */

static void
ngx_http_openbank_idempotency_confirm(ngx_http_openbank_idem_ctx_t *ic)
{
    (void) ngx_http_openbank_store_update(ic->zone,
                                          NGX_HTTP_OPENBANK_TABLE_IDEMPOTENCY,
                                          &ic->key, 0, 0,
                                          ngx_http_openbank_idempotency_asked,
                                          ic);
}


static ngx_int_t
ngx_http_openbank_idempotency_asked(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_idem_ctx_t  *ic = data;

    ngx_http_openbank_idem_t  *v;

    v = (ngx_http_openbank_idem_t *) sv->value;

    if (ngx_http_openbank_idempotency_mine(v, ic)) {
        v->asking = 0;
    }

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


static ngx_int_t
ngx_http_openbank_idempotency_cache(ngx_http_request_t *r,
    ngx_http_openbank_idem_ctx_t *ic)
{
    u_char                            *p;
    ngx_http_openbank_idem_t           v;
    ngx_http_openbank_idem_cluster_t  *ci;

    ci = ic->cluster;

    if (ci->ttl_ms == 0 || ci->ttl_ms > NGX_HTTP_OPENBANK_IDEM_TTL
        || ci->response_len > NGX_HTTP_OPENBANK_IDEM_RESPONSE_MAX + 4096)
    {
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(r->pool, sizeof(v) + ci->response_len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&v, sizeof(v));
    v.state = NGX_HTTP_OPENBANK_IDEM_DONE;
    v.response_len = (uint32_t) ci->response_len;
    v.started = ngx_http_openbank_now_ms();
    ngx_memcpy(v.fingerprint, ic->fingerprint, NGX_HTTP_OPENBANK_HASH_LEN);

    ngx_memcpy(p, &v, sizeof(v));
    ngx_memcpy(p + sizeof(v), ci->response, ci->response_len);

    return ngx_http_openbank_store_set(ic->zone,
                                       NGX_HTTP_OPENBANK_TABLE_IDEMPOTENCY,
                                       &ic->key, p,
                                       sizeof(v) + ci->response_len,
                                       v.started + ci->ttl_ms);
}


/*
 * Redis cannot answer: "idempotency=local" goes on with this gateway's
 * zone alone, "refuse" releases the key and answers 503.
 */

static ngx_int_t
ngx_http_openbank_idempotency_degraded(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_http_openbank_idem_ctx_t *ic)
{
    ngx_uint_t  mode;

    mode = ngx_http_openbank_cluster_mode(r,
                                      NGX_HTTP_OPENBANK_CLUSTER_IDEMPOTENCY);

    ngx_http_openbank_cluster_degraded_count(
        NGX_HTTP_OPENBANK_CLUSTER_IDEMPOTENCY, mode);

    if (mode == NGX_HTTP_OPENBANK_CLUSTER_LOCAL) {
        if (ic->ask_only) {
            /* the zone alone: another request of this gateway has it */
            ic->finished = 1;

            return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_CONFLICT,
                NGX_HTTP_OPENBANK_PROBLEM_IDEMPOTENCY_IN_FLIGHT,
                "a request with this "
                "Idempotency-Key is still being "
                "processed: retry later");
        }

        ngx_http_openbank_idempotency_confirm(ic);

        return NGX_DECLINED;
    }

    ngx_http_openbank_idempotency_release(ic);
    ic->finished = 1;

    ctx->retry_after = 1;

    return ngx_http_openbank_refuse(r, ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                    NGX_HTTP_OPENBANK_PROBLEM_STATE_UNAVAILABLE,
                                    "the cluster's idempotency keys cannot "
                                    "be reached; try again");
}


/*
 * A key goes to the bank only if its answer can be made durable: after a
 * failed write, or with the journal removed, the journal must open first
 * ("probe").  Kept answers are replayed all the same.
 */

static ngx_int_t
ngx_http_openbank_idempotency_take_atomic(ngx_http_openbank_zone_t *zone,
    void *data)
{
    ngx_http_openbank_idem_take_t  *tk = data;

    ngx_int_t                         rc;
    ngx_uint_t                        unavailable;
    ngx_http_openbank_journal_meta_t  meta;

    rc = ngx_http_openbank_journal_meta(tk->journal, &meta);

    unavailable = (rc != NGX_OK || meta.broken
                   || (meta.failed
                       && tk->now - meta.failed
                          < NGX_HTTP_OPENBANK_IDEM_RETRY));

    tk->check = (!unavailable && !tk->probed
                 && (tk->removed || meta.failed));
    tk->look = (!unavailable && !tk->check && !tk->looked);
    tk->unavailable = unavailable;

    /* the first failure is an [alert], the others while it lasts [info] */

    tk->level = meta.failed ? NGX_LOG_INFO : NGX_LOG_ALERT;
    tk->outcome = NGX_HTTP_OPENBANK_IDEM_OWN;

    rc = ngx_http_openbank_store_update(zone,
                                   NGX_HTTP_OPENBANK_TABLE_IDEMPOTENCY,
                                   &tk->ic->key,
                                   (tk->check || tk->look || unavailable)
                                   ? 0 : sizeof(ngx_http_openbank_idem_t),
                                   tk->now + NGX_HTTP_OPENBANK_IDEM_TTL,
                                   ngx_http_openbank_idempotency_own, tk);

    if (rc == NGX_HTTP_OPENBANK_STORE_ABSENT) {
        return tk->check ? NGX_HTTP_OPENBANK_IDEM_PROBE
               : tk->look ? NGX_HTTP_OPENBANK_IDEM_LOOK
               : NGX_HTTP_OPENBANK_IDEM_UNAVAILABLE;
    }

    if (rc == NGX_HTTP_OPENBANK_STORE_FULL) {
        return NGX_HTTP_OPENBANK_IDEM_FULL;
    }

    return tk->outcome;
}


static ngx_int_t
ngx_http_openbank_idempotency_own(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_idem_take_t  *tk = data;

    ngx_uint_t                     stale;
    ngx_http_openbank_idem_t      *v;
    ngx_http_openbank_idem_ctx_t  *ic;

    ic = tk->ic;
    v = (ngx_http_openbank_idem_t *) sv->value;

    if (sv->is_new) {
        v->state = NGX_HTTP_OPENBANK_IDEM_IN_FLIGHT;
        ngx_memcpy(v->fingerprint, ic->fingerprint,
                   NGX_HTTP_OPENBANK_HASH_LEN);

        goto own;
    }

    if (ngx_memcmp(v->fingerprint, ic->fingerprint,
                   NGX_HTTP_OPENBANK_HASH_LEN) != 0)
    {
        tk->outcome = NGX_HTTP_OPENBANK_IDEM_REUSED;
        return NGX_HTTP_OPENBANK_STORE_REFUSE;
    }

    if (v->state == NGX_HTTP_OPENBANK_IDEM_DONE) {
        ic->response_len = v->response_len;
        ic->response = ngx_pnalloc(tk->pool, v->response_len);

        if (ic->response) {
            ngx_memcpy(ic->response, (u_char *) (v + 1), v->response_len);
        }

        tk->outcome = NGX_HTTP_OPENBANK_IDEM_REPLAY;
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    /* in flight: abandoned by a worker that died, or really running */

    stale = (tk->now - v->started > NGX_HTTP_OPENBANK_IDEM_STALE);

    if (!stale && v->owner_pid != (int32_t) ngx_pid
        && kill(v->owner_pid, 0) == -1 && ngx_errno == NGX_ESRCH)
    {
        stale = 1;
    }

    if (!stale) {
        tk->outcome = v->asking ? NGX_HTTP_OPENBANK_IDEM_ASK
                                : NGX_HTTP_OPENBANK_IDEM_BUSY;
        return NGX_HTTP_OPENBANK_STORE_REFUSE;
    }

    if (tk->check) {
        tk->outcome = NGX_HTTP_OPENBANK_IDEM_PROBE;
        return NGX_HTTP_OPENBANK_STORE_REFUSE;
    }

    if (tk->look) {
        tk->outcome = NGX_HTTP_OPENBANK_IDEM_LOOK;
        return NGX_HTTP_OPENBANK_STORE_REFUSE;
    }

    if (tk->unavailable) {
        tk->outcome = NGX_HTTP_OPENBANK_IDEM_UNAVAILABLE;
        return NGX_HTTP_OPENBANK_STORE_REFUSE;
    }

    if (v->owner_pid) {
        ngx_log_error(NGX_LOG_WARN, tk->log, 0,
                      "openbank: taking over an abandoned in-flight "
                      "idempotency key (worker %D)", v->owner_pid);
    }

own:

    v->asking = tk->cluster;
    v->owner_pid = (int32_t) ngx_pid;
    v->owner_seq = ++ngx_http_openbank_idem_seq;
    v->started = tk->now;

    ic->seq = v->owner_seq;
    ic->expire = sv->expire;
    ic->owner = 1;

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


static ngx_int_t
ngx_http_openbank_idempotency_replay(ngx_http_request_t *r)
{
    u_char                             *p, *last;
    uint16_t                            len[2];
    ngx_str_t                           name, value;
    ngx_uint_t                          i;
    ngx_table_elt_t                    *h;
    ngx_http_openbank_ctx_t            *ctx;
    ngx_http_openbank_idem_ctx_t       *ic;
    ngx_http_openbank_idem_response_t   resp;

    ctx = ngx_http_openbank_find_ctx(r);
    ic = ctx->idempotency;

    p = ic->response;
    last = p + ic->response_len;

    if ((size_t) (last - p) < sizeof(resp)) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(&resp, p, sizeof(resp));
    p += sizeof(resp);

    r->headers_out.status = resp.status;

    for (i = 0; i < resp.nheaders; i++) {
        if ((size_t) (last - p) < sizeof(len)) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(len, p, sizeof(len));
        p += sizeof(len);

        if ((size_t) (last - p) < (size_t) len[0] + len[1]) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        name.data = p;
        name.len = len[0];
        value.data = p + len[0];
        value.len = len[1];
        p += len[0] + len[1];

        if (name.len == sizeof("Content-Type") - 1
            && ngx_strncasecmp(name.data, (u_char *) "Content-Type",
                               name.len) == 0)
        {
            r->headers_out.content_type = value;
            r->headers_out.content_type_len = value.len;
            continue;
        }

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /*
         * Location goes back as the bank sent it, in the list only: as
         * for the first answer, nginx does not make it absolute.
         */

        h->hash = 1;
        h->key = name;
        h->value = value;
    }

    if ((size_t) (last - p) != resp.body_len) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Idempotent-Replayed");
    ngx_str_set(&h->value, "true");

    return ngx_http_openbank_send_response(r, p, resp.body_len);
}


/* the request ends without its answer kept: the key may be used again */

static void
ngx_http_openbank_idempotency_cleanup(void *data)
{
    ngx_http_openbank_idem_ctx_t  *ic = data;

    if (ic->cluster) {
        ngx_http_openbank_cluster_idem_cleanup(ic->cluster);

        if (ic->ask_only) {
            /* its take may have made it the owner in Redis */
            ngx_http_openbank_cluster_idem_release(ic->cluster);
        }
    }

    if (ic->queued) {
        /* the request went away before its commit: its answer is lost */
        ngx_queue_remove(&ic->entry.queue);
        ic->queued = 0;
        ic->finished = 0;
    }

    if (ic->owner && !ic->finished) {
        ngx_http_openbank_idempotency_release(ic);
        ic->finished = 1;
    }
}


static void
ngx_http_openbank_idempotency_release(ngx_http_openbank_idem_ctx_t *ic)
{
    if (ic->cluster) {
        ngx_http_openbank_cluster_idem_release(ic->cluster);
    }

    (void) ngx_http_openbank_store_update(ic->zone,
                                          NGX_HTTP_OPENBANK_TABLE_IDEMPOTENCY,
                                          &ic->key, 0, 0,
                                          ngx_http_openbank_idempotency_ours,
                                          ic);
}


/* the key goes if it is still in flight for this request */

static ngx_int_t
ngx_http_openbank_idempotency_ours(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_idem_ctx_t  *ic = data;

    ngx_http_openbank_idem_t  *v;

    v = (ngx_http_openbank_idem_t *) sv->value;

    if (ngx_http_openbank_idempotency_mine(v, ic)) {
        return NGX_HTTP_OPENBANK_STORE_DELETE;
    }

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/*
 * The response filter of the answers kept for an Idempotency-Key, after
 * the RateLimit headers and before the response signature (the order of
 * "config"): the answer is kept as the bank sent it, unsigned, since a
 * replay is signed for the request it answers.
 */

static ngx_int_t ngx_http_openbank_idempotency_body(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_chain_t *in);

NGX_HTTP_OPENBANK_FILTER_MODULE(idempotency,
    ngx_http_openbank_idempotency_body);


/*
 * NGX_DECLINED: send the header now; NGX_OK: the header is held until
 * the body is kept and durable.
 */

static ngx_int_t
ngx_http_openbank_idempotency_header(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    ngx_uint_t                     status;
    ngx_queue_t                    batch;
    ngx_http_openbank_idem_ctx_t  *ic;

    ic = ctx->idempotency;

    if (ic == NULL || !ic->owner || ic->finished) {
        return NGX_DECLINED;
    }

    status = r->headers_out.status;

    /*
     * The gateway's own refusals and errors, and the bank's 5xx, are not
     * answers to keep: the key is released and a retry goes to the bank,
     * whose own idempotency key check makes it safe.
     */

    if (r->err_status || ctx->problem_status
        || status < NGX_HTTP_OK || status >= NGX_HTTP_INTERNAL_SERVER_ERROR)
    {
        ngx_http_openbank_idempotency_release(ic);
        ic->finished = 1;
        return NGX_DECLINED;
    }

    if (ngx_http_openbank_idempotency_capture(r, ic) != NGX_OK) {
        return NGX_ERROR;
    }

    if (r->header_only || status == NGX_HTTP_NO_CONTENT
        || status == NGX_HTTP_NOT_MODIFIED)
    {
        /* no body will come: commit this one now */

        ic->finished = 1;

        if (ngx_http_openbank_idempotency_record(r, ic) == NGX_OK) {
            ngx_queue_init(&batch);
            ngx_queue_insert_tail(&batch, &ic->entry.queue);
            (void) ngx_http_openbank_journal_commit(&ngx_http_openbank_idem_j,
                                                    &batch,
                                                    r->connection->log);
            ngx_queue_remove(&ic->entry.queue);

            if (ic->cluster) {
                (void) ngx_http_openbank_cluster_idem_keep(ic->cluster,
                                   ic->entry.record + ic->entry.len
                                   - ic->kept_len, ic->kept_len,
                                   ngx_http_openbank_idempotency_nothing,
                                   NULL);
            }
        }

        return NGX_DECLINED;
    }

    ic->holding = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_idempotency_capture(ngx_http_request_t *r,
    ngx_http_openbank_idem_ctx_t *ic)
{
    u_char           *p;
    size_t            len;
    uint16_t          l[2];
    ngx_str_t        *k, type;
    ngx_uint_t        i, pass;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    ic->status = r->headers_out.status;

    type.len = r->headers_out.content_type.len;
    type.data = r->headers_out.content_type.data;

    len = 0;
    p = NULL;

    /* pass 0 measures, pass 1 copies */

    for (pass = 0; pass < 2; pass++) {

        ic->nheaders = 0;

        if (type.len) {
            if (pass) {
                l[0] = sizeof("Content-Type") - 1;
                l[1] = (uint16_t) type.len;
                p = ngx_cpymem(p, l, sizeof(l));
                p = ngx_cpymem(p, "Content-Type", l[0]);
                p = ngx_cpymem(p, type.data, type.len);
            }

            len += sizeof(l) + sizeof("Content-Type") - 1 + type.len;
            ic->nheaders++;
        }

        part = &r->headers_out.headers.part;
        i = 0;

        while ((h = ngx_http_openbank_list_next(&r->headers_out.headers,
                                                &part, &i))
               != NULL)
        {
            if (h->hash == 0 || h->key.len > 0xffff
                || h->value.len > 0xffff)
            {
                continue;
            }

            for (k = ngx_http_openbank_idem_kept; k->len; k++) {
                if (k->len == h->key.len
                    && ngx_strncasecmp(k->data, h->key.data, k->len) == 0)
                {
                    break;
                }
            }

            if (k->len == 0) {
                continue;
            }

            if (pass) {
                l[0] = (uint16_t) k->len;
                l[1] = (uint16_t) h->value.len;
                p = ngx_cpymem(p, l, sizeof(l));
                p = ngx_cpymem(p, k->data, k->len);
                p = ngx_cpymem(p, h->value.data, h->value.len);

            } else {
                len += sizeof(l) + k->len + h->value.len;
            }

            ic->nheaders++;
        }

        if (pass == 0) {
            ic->headers_len = len;
            ic->headers = ngx_pnalloc(r->pool, len ? len : 1);
            if (ic->headers == NULL) {
                return NGX_ERROR;
            }

            p = ic->headers;
        }
    }

    return NGX_OK;
}


/*
 * Called by the body filter while the header is held: keeps the body;
 * at its end, queues the answer for the next group commit and holds the
 * request (r->buffered) until it is durable; then, called again with the
 * request's write event, sends header and body.
 */

static ngx_int_t
ngx_http_openbank_idempotency_body(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_chain_t *in)
{
    ngx_int_t                      rc;
    ngx_chain_t                   *cl;
    ngx_http_openbank_idem_ctx_t  *ic;

    ic = ctx->idempotency;

    if (ic == NULL || (!ic->holding && !ic->durable)) {
        return NGX_DECLINED;
    }

    if (ic->durable) {
        ic->durable = 0;
        return ngx_http_openbank_idempotency_send(r, ic, in);
    }

    if (ic->queued) {
        /* nothing more may come after the last buffer */
        return NGX_OK;
    }

    for (cl = in; cl; cl = cl->next) {

        rc = ngx_http_openbank_idempotency_keep(r, ic, cl->buf);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED) {
            /* too large to keep: let it go as it is */
            break;
        }

        if (cl->buf->last_buf) {
            ic->last = 1;
        }

        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    if (cl == NULL && !ic->last) {
        return NGX_OK;
    }

    ic->holding = 0;
    ic->finished = 1;

    if (cl) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "openbank: answer larger than %d bytes not kept for "
                      "its Idempotency-Key",
                      NGX_HTTP_OPENBANK_IDEM_RESPONSE_MAX);

        ngx_http_openbank_idempotency_release(ic);

        return ngx_http_openbank_idempotency_send(r, ic, cl);
    }

    if (ngx_http_openbank_idempotency_record(r, ic) != NGX_OK) {
        ngx_http_openbank_idempotency_release(ic);

        return ngx_http_openbank_idempotency_send(r, ic, NULL);
    }

    ic->queued = 1;
    ic->request = r;
    ic->entry.handler = ngx_http_openbank_idempotency_durable;
    r->buffered |= NGX_HTTP_OPENBANK_IDEM_BUFFERED;

    ngx_http_openbank_journal_submit(&ngx_http_openbank_idem_j, &ic->entry);

    return NGX_OK;
}


/* the held header, the kept body, and what was not kept ("rest") */

static ngx_int_t
ngx_http_openbank_idempotency_send(ngx_http_request_t *r,
    ngx_http_openbank_idem_ctx_t *ic, ngx_chain_t *rest)
{
    ngx_int_t     rc;
    ngx_chain_t   head, *out;

    rc = ngx_http_next_header_filter(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out = rest;

    if (ic->body && ic->body->last > ic->body->pos) {
        ic->body->last_buf = (rest == NULL && ic->last);
        ic->body->last_in_chain = ic->body->last_buf;
        head.buf = ic->body;
        head.next = rest;
        out = &head;

    } else if (out == NULL) {
        head.buf = ngx_calloc_buf(r->pool);
        if (head.buf == NULL) {
            return NGX_ERROR;
        }

        head.buf->last_buf = 1;
        head.buf->last_in_chain = 1;
        head.next = NULL;
        out = &head;
    }

    return ngx_http_next_body_filter(r, out);
}


/*
 * The answer's record is durable (or not: the bank has acted, it goes out
 * all the same): the request is woken up through its write event
 * (ngx_http_writer sends the answer through the filters and finalises
 * the request).
 */

static void
ngx_http_openbank_idempotency_durable(ngx_http_openbank_journal_entry_t *e,
    ngx_int_t rc)
{
    ngx_http_openbank_idem_ctx_t  *ic;

    ic = (ngx_http_openbank_idem_ctx_t *)
             ((u_char *) e - offsetof(ngx_http_openbank_idem_ctx_t, entry));

    ic->queued = 0;

    /*
     * In cluster mode the answer goes to Redis too, and out once Redis
     * has it (or could not take it within the timeout): a retry on
     * another gateway then finds it.
     */

    if (ic->cluster
        && ngx_http_openbank_cluster_idem_keep(ic->cluster,
                                   ic->entry.record + ic->entry.len
                                   - ic->kept_len, ic->kept_len,
                                   ngx_http_openbank_idempotency_wake, ic)
           == NGX_OK)
    {
        return;
    }

    ngx_http_openbank_idempotency_wake(ic);
}


static void
ngx_http_openbank_idempotency_wake(void *data)
{
    ngx_http_openbank_idem_ctx_t  *ic = data;

    ngx_http_request_t  *r;

    ic->durable = 1;

    r = ic->request;
    r->buffered &= ~NGX_HTTP_OPENBANK_IDEM_BUFFERED;

    ngx_post_event(r->connection->write, &ngx_posted_events);
}


static void
ngx_http_openbank_idempotency_nothing(void *data)
{
}


/* NGX_OK: kept; NGX_DECLINED: the answer is too large to keep */

static ngx_int_t
ngx_http_openbank_idempotency_keep(ngx_http_request_t *r,
    ngx_http_openbank_idem_ctx_t *ic, ngx_buf_t *b)
{
    off_t    size;
    size_t   alloc;
    ssize_t  n;

    if (ngx_buf_in_memory(b)) {
        size = b->last - b->pos;

    } else if (b->in_file) {
        size = b->file_last - b->file_pos;

    } else {
        return NGX_OK;
    }

    if (size == 0) {
        return NGX_OK;
    }

    if (ic->body == NULL) {
        /* the announced length when there is one, else the most kept */
        alloc = NGX_HTTP_OPENBANK_IDEM_RESPONSE_MAX;

        if (r->headers_out.content_length_n > 0
            && (size_t) r->headers_out.content_length_n < alloc)
        {
            alloc = (size_t) r->headers_out.content_length_n;
        }

        ic->body = ngx_create_temp_buf(r->pool, alloc);
        if (ic->body == NULL) {
            return NGX_ERROR;
        }
    }

    if (size > ic->body->end - ic->body->last) {
        return NGX_DECLINED;
    }

    if (ngx_buf_in_memory(b)) {
        ic->body->last = ngx_cpymem(ic->body->last, b->pos, (size_t) size);
        return NGX_OK;
    }

    n = ngx_read_file(b->file, ic->body->last, (size_t) size, b->file_pos);

    if (n != (ssize_t) size) {
        return NGX_ERROR;
    }

    ic->body->last += n;

    return NGX_OK;
}


/* the answer as a framed journal record, in ic->entry */

static ngx_int_t
ngx_http_openbank_idempotency_record(ngx_http_request_t *r,
    ngx_http_openbank_idem_ctx_t *ic)
{
    u_char                             *p;
    size_t                              body_len, resp_len, len;
    ngx_http_openbank_idem_t            v;
    ngx_http_openbank_idem_entry_t      entry;
    ngx_http_openbank_idem_response_t   resp;

    body_len = ic->body ? (size_t) (ic->body->last - ic->body->pos) : 0;
    resp_len = sizeof(resp) + ic->headers_len + body_len;

    if (resp_len > NGX_HTTP_OPENBANK_IDEM_RESPONSE_MAX + 4096) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "openbank: answer headers too large to keep for "
                      "its Idempotency-Key");
        return NGX_DECLINED;
    }

    len = NGX_HTTP_OPENBANK_JOURNAL_FRAME + sizeof(entry) + ic->key.len
          + sizeof(v) + resp_len;

    ic->entry.record = ngx_pnalloc(r->pool, len);
    if (ic->entry.record == NULL) {
        return NGX_ERROR;
    }

    ic->entry.len = len;

    /* the kept answer ends the record: Redis is given the same bytes */
    ic->kept_len = resp_len;

    ngx_memzero(&entry, sizeof(entry));
    entry.expire = ic->expire;
    entry.key_len = (uint16_t) ic->key.len;
    entry.type = NGX_HTTP_OPENBANK_IDEM_ENTRY_DONE;

    ngx_memzero(&v, sizeof(v));
    v.state = NGX_HTTP_OPENBANK_IDEM_DONE;
    v.response_len = (uint32_t) resp_len;
    v.started = ngx_http_openbank_now_ms();
    ngx_memcpy(v.fingerprint, ic->fingerprint, NGX_HTTP_OPENBANK_HASH_LEN);

    resp.status = (uint16_t) ic->status;
    resp.nheaders = (uint16_t) ic->nheaders;
    resp.body_len = (uint32_t) body_len;

    p = ic->entry.record + NGX_HTTP_OPENBANK_JOURNAL_FRAME;
    p = ngx_cpymem(p, &entry, sizeof(entry));
    p = ngx_cpymem(p, ic->key.data, ic->key.len);
    p = ngx_cpymem(p, &v, sizeof(v));
    p = ngx_cpymem(p, &resp, sizeof(resp));
    p = ngx_cpymem(p, ic->headers, ic->headers_len);

    if (body_len) {
        p = ngx_cpymem(p, ic->body->pos, body_len);
    }

    ngx_http_openbank_journal_frame(ic->entry.record,
                                    len - NGX_HTTP_OPENBANK_JOURNAL_FRAME);

    return NGX_OK;
}


/*
 * After a write, inside ngx_http_openbank_store_atomic(): each answer of
 * the batch takes the place of its in-flight record (whether or not the
 * write succeeded: the bank has acted, a retry must get the answer).
 */

static void
ngx_http_openbank_idempotency_written(ngx_http_openbank_journal_t *j,
    ngx_queue_t *batch, uint64_t now)
{
    size_t                         skip;
    ngx_queue_t                   *q;
    ngx_http_openbank_idem_ctx_t  *ic;

    skip = NGX_HTTP_OPENBANK_JOURNAL_FRAME
           + sizeof(ngx_http_openbank_idem_entry_t);

    ngx_http_openbank_idem_full = 0;

    for (q = ngx_queue_head(batch);
         q != ngx_queue_sentinel(batch);
         q = ngx_queue_next(q))
    {
        ic = (ngx_http_openbank_idem_ctx_t *)
                 ((u_char *) q - offsetof(ngx_http_openbank_idem_ctx_t,
                                          entry.queue));

        /*
         * The answer replaces what the key holds: the in-flight record
         * unless it expired (24 hours) or was taken over.  Records are
         * freed only by expiry, never while unexpired and ours.
         */

        if (ngx_http_openbank_store_set(j->zone,
                                        NGX_HTTP_OPENBANK_TABLE_IDEMPOTENCY,
                                        &ic->key,
                                        ic->entry.record + skip + ic->key.len,
                                        ic->entry.len - skip - ic->key.len,
                                        ic->expire)
            == NGX_OK)
        {
            continue;
        }

        /*
         * No room for the answer: the in-flight record stays, so that the
         * key keeps its fingerprint and its room, and is left to the next
         * retry at once, which reaches the bank and its own key.
         */

        ngx_http_openbank_idem_full++;

        (void) ngx_http_openbank_store_update(j->zone,
                                       NGX_HTTP_OPENBANK_TABLE_IDEMPOTENCY,
                                       &ic->key, 0, 0,
                                       ngx_http_openbank_idempotency_disown,
                                       NULL);
    }
}


static ngx_int_t
ngx_http_openbank_idempotency_disown(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_idem_t  *v;

    v = (ngx_http_openbank_idem_t *) sv->value;
    v->owner_pid = 0;
    v->started = 0;

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/* a failed write makes new keys 503 for a while (take()) */

static void
ngx_http_openbank_idempotency_after(ngx_http_openbank_journal_t *j,
    ngx_int_t rc, ngx_log_t *log)
{
    ngx_http_openbank_main_conf_t  *obmcf;

    if (ngx_http_openbank_idem_full) {
        obmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                                    ngx_http_openbank_module);

        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "openbank: zone \"%V\" is full, %i answers to "
                      "idempotency keys are kept only in the journal",
                      &obmcf->shm_zone->shm.name,
                      ngx_http_openbank_idem_full);
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "openbank: answers to idempotency keys are not "
                      "durable; new keys are refused until the journal "
                      "is writable");
    }
}


/*
 * Whether the journal and its lock file can be opened for writing (they
 * are made if they are missing); the failure is logged at "level".
 */

static ngx_int_t
ngx_http_openbank_idempotency_probe(ngx_log_t *log, ngx_uint_t level)
{
    ngx_fd_t    fd;
    ngx_str_t  *name;
    ngx_uint_t  i;

    for (i = 0; i < 2; i++) {
        name = i ? &ngx_http_openbank_idem_j.lock
                 : &ngx_http_openbank_idem_j.name;

        fd = open((char *) name->data,
                  (i ? O_RDWR : O_WRONLY | O_APPEND) | O_CREAT | O_CLOEXEC,
                  0600);

        if (fd == NGX_INVALID_FILE) {
            ngx_log_error(level, log, ngx_errno,
                          "openbank: open() \"%V\" failed: new "
                          "idempotency keys are refused with 503 until it "
                          "opens", name);
            return NGX_ERROR;
        }

        (void) close(fd);
    }

    return NGX_OK;
}


/*
 * For a compaction, inside ngx_http_openbank_store_atomic(): the framed
 * records of the answers the zone keeps (NULL "buf": their size).
 */

static ngx_int_t
ngx_http_openbank_idempotency_dump_entry(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_journal_dump_t  *dp = data;

    ngx_http_openbank_idem_t  *v;

    v = (ngx_http_openbank_idem_t *) sv->value;

    if (v->state != NGX_HTTP_OPENBANK_IDEM_DONE) {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    if (dp->buf == NULL) {
        dp->size += NGX_HTTP_OPENBANK_JOURNAL_FRAME
                    + sizeof(ngx_http_openbank_idem_entry_t)
                    + sv->key.len + sv->len;
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    dp->p = ngx_http_openbank_journal_record(dp->p,
                                             NGX_HTTP_OPENBANK_IDEM_ENTRY_DONE,
                                             sv->expire, &sv->key, sv->value,
                                             sv->len);

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/*
 * At start (in the master, once per zone): the journal's records go into
 * the zone, then the journal is rewritten without what expired or was
 * torn.  An unreadable journal makes idempotent requests 503.
 */

ngx_int_t
ngx_http_openbank_idempotency_init_module(ngx_cycle_t *cycle)
{
    size_t                          skipped;
    ngx_int_t                       rc;
    ngx_core_conf_t                *ccf;
    ngx_http_openbank_zone_t       *zone;
    ngx_http_openbank_journal_t    *j;
    ngx_http_openbank_idem_load_t   ld;
    ngx_http_openbank_main_conf_t  *obmcf;

    /*
     * Not in "nginx -t", and not in "nginx -s ...": that process reads
     * the configuration too, but the running workers own the journal.
     */

    if (ngx_test_config || ngx_process == NGX_PROCESS_SIGNALLER
        || cycle->conf_ctx[ngx_http_module.index] == NULL)
    {
        return NGX_OK;
    }

    obmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                                ngx_http_openbank_module);

    if (obmcf == NULL || obmcf->shm_zone == NULL
        || obmcf->state_path.len == 0)
    {
        return NGX_OK;
    }

    zone = obmcf->shm_zone->data;
    j = &ngx_http_openbank_idem_j;

    rc = ngx_http_openbank_journal_begin(j, cycle, "idempotency");

    if (rc == NGX_DECLINED) {
        return NGX_OK;
    }

    if (rc == NGX_ABORT) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "openbank: idempotent requests will be refused");
        ngx_http_openbank_journal_broken(j);
        ngx_http_openbank_journal_reset(j);
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    ld.zone = zone;
    ld.log = cycle->log;
    ld.now = ngx_http_openbank_now_ms();
    ld.loaded = 0;
    ld.full = 0;
    ld.skipped = 0;

    (void) ngx_http_openbank_store_atomic(zone,
                                     ngx_http_openbank_idempotency_load_atomic,
                                     &ld);
    rc = ld.rc;
    skipped = ld.skipped;

    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "openbank: idempotency journal \"%V\" is unreadable: "
                      "idempotent requests will be refused with 503",
                      &j->name);
        ngx_http_openbank_journal_broken(j);
        ngx_http_openbank_journal_reset(j);
        return NGX_OK;
    }

    if (skipped) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "openbank: idempotency journal \"%V\": %uz bytes of "
                      "torn or damaged records ignored", &j->name, skipped);
    }

    ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                  "openbank: %ui idempotency records restored from \"%V\"",
                  ld.loaded, &j->name);

    if (ld.full) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "openbank: zone \"%V\" cannot hold the idempotency "
                      "journal: %ui records left out, journal kept as is",
                      &obmcf->shm_zone->shm.name, ld.full);

    } else if (rc == NGX_OK || skipped) {
        (void) ngx_http_openbank_journal_compact(j, ccf->user, cycle->log);
    }

    /* the workers open the files under their own names */

    ngx_http_openbank_journal_reset(j);

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_idempotency_load(void *data, u_char *payload, size_t len)
{
    ngx_http_openbank_idem_load_t *ld = data;

    ngx_str_t                        key;
    ngx_uint_t                       kept;
    ngx_http_openbank_idem_t         v;
    ngx_http_openbank_idem_entry_t   entry;

    if (len < sizeof(entry)) {
        return NGX_OK;
    }

    ngx_memcpy(&entry, payload, sizeof(entry));

    if (entry.type != NGX_HTTP_OPENBANK_IDEM_ENTRY_DONE
        || entry.key_len == 0
        || len < sizeof(entry) + entry.key_len + sizeof(v))
    {
        return NGX_OK;
    }

    key.data = payload + sizeof(entry);
    key.len = entry.key_len;

    ngx_memcpy(&v, key.data + key.len, sizeof(v));

    len -= sizeof(entry) + key.len;

    if (key.data[0] == '\0' || entry.expire <= ld->now
        || v.state != NGX_HTTP_OPENBANK_IDEM_DONE
        || v.response_len != len - sizeof(v))
    {
        return NGX_OK;
    }

    /* a later record of the same key wins */

    kept = (ngx_http_openbank_store_get(ld->zone,
                                        NGX_HTTP_OPENBANK_TABLE_IDEMPOTENCY,
                                        &key, NULL, 0, NULL)
            != NGX_DECLINED);

    if (ngx_http_openbank_store_set(ld->zone,
                                    NGX_HTTP_OPENBANK_TABLE_IDEMPOTENCY,
                                    &key, key.data + key.len, len,
                                    entry.expire)
        != NGX_OK)
    {
        if (kept) {
            (void) ngx_http_openbank_store_delete(ld->zone,
                                           NGX_HTTP_OPENBANK_TABLE_IDEMPOTENCY,
                                           &key);
            ld->loaded--;
        }

        ld->full++;
        return NGX_OK;
    }

    if (!kept) {
        ld->loaded++;
    }

    return NGX_OK;
}


/* the journal is read back under one lock (the master, at start) */

static ngx_int_t
ngx_http_openbank_idempotency_load_atomic(ngx_http_openbank_zone_t *zone,
    void *data)
{
    ngx_http_openbank_idem_load_t  *ld = data;

    ngx_http_openbank_journal_pt  handlers[NGX_HTTP_OPENBANK_IDEM_ENTRY_DONE
                                           + 1];

    ngx_memzero(handlers, sizeof(handlers));
    handlers[NGX_HTTP_OPENBANK_IDEM_ENTRY_DONE] =
                                        ngx_http_openbank_idempotency_load;

    ld->rc = ngx_http_openbank_journal_replay(&ngx_http_openbank_idem_j,
                                              ld->log, handlers,
                                              NGX_HTTP_OPENBANK_IDEM_ENTRY_DONE
                                              + 1, ld, &ld->skipped);

    return NGX_OK;
}
