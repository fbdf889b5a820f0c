
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Cluster mode's changes (docs/cluster.md, "Changes on every gateway"):
 * a registry change or a revocation, once applied to this gateway's
 * zone, is queued there (the SYNC table: "q<seq>", its kind and its
 * records framed as the journals' are); one worker of each gateway
 * (worker 0) publishes the queue to a Redis stream every tick, with the
 * cluster's current registry and revocations beside it (a snapshot for
 * a gateway that is new or was away longer than the stream keeps), and
 * reads the other gateways' changes from the stream, which it applies
 * through the journals' replay handlers (registry.c, token.c).
 *
 * Every key carries the {changes} hash tag: one slot holds them all, so
 * that a script sees the stream and the snapshot together.
 *
 * The queue outlives a restart: each change queued is written to the
 * changes journal under openbank_state, and its deletion once published;
 * at start the changes not published yet are queued again, and are
 * published before the cluster's snapshot is read.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_redis.h>
#include <ngx_http_openbank_cluster.h>
#include <ngx_http_openbank_journal.h>
#include <ngx_http_openbank_sync.h>
#include <ngx_http_openbank_usage.h>
#include <ngx_http_openbank_util.h>


#define NGX_HTTP_OPENBANK_SYNC_TICK     100       /* ms */
#define NGX_HTTP_OPENBANK_SYNC_BATCH    32        /* changes a call */
#define NGX_HTTP_OPENBANK_SYNC_READ     "256"     /* entries a read */
#define NGX_HTTP_OPENBANK_SYNC_MAXLEN   "100000"  /* the stream's */
#define NGX_HTTP_OPENBANK_SYNC_ID_MAX   64
#define NGX_HTTP_OPENBANK_SYNC_FRESH    1000      /* ms: "in_sync" */
#define NGX_HTTP_OPENBANK_SYNC_USAGE    10        /* ticks: usage written */
#define NGX_HTTP_OPENBANK_SYNC_USAGE_TTL  "8035200000"  /* ms: 93 days */
#define NGX_HTTP_OPENBANK_SYNC_USAGE_ALL  600      /* writes: all again */

#define NGX_HTTP_OPENBANK_SYNC_PUT      1         /* journals' types */
#define NGX_HTTP_OPENBANK_SYNC_DEL      2

/* what ngx_http_openbank_sync_note() counts */
#define NGX_HTTP_OPENBANK_SYNC_FAILED     0
#define NGX_HTTP_OPENBANK_SYNC_PUBLISHED  1
#define NGX_HTTP_OPENBANK_SYNC_REFUSED    2
#define NGX_HTTP_OPENBANK_SYNC_APPLIED    3
#define NGX_HTTP_OPENBANK_SYNC_SNAPSHOT   4
#define NGX_HTTP_OPENBANK_SYNC_READ_OK    5


/* the gateway's bookkeeping, one record of the zone ("\1s") */

typedef struct {
    uint64_t                      next;        /* the last seq reserved */
    uint64_t                      queued;
    uint64_t                      published;
    uint64_t                      applied;
    uint64_t                      snapshots;
    uint64_t                      failures;
    uint64_t                      last_ok;     /* ms: a read answered */
    uint64_t                      last_publish;
    size_t                        last_len;
    u_char                        last[NGX_HTTP_OPENBANK_SYNC_ID_MAX];
    u_char                        origin[16];
} ngx_http_openbank_sync_state_t;


/* a call in flight: its pool holds its arguments and the keys sent */

typedef struct {
    ngx_pool_t                   *pool;
    ngx_array_t                   args;        /* ngx_str_t */
    ngx_array_t                   sent;        /* ngx_str_t: "q" keys */
    ngx_uint_t                    kind;        /* of the change parsed */
} ngx_http_openbank_sync_call_t;


typedef struct {
    ngx_pool_t                   *pool;
    ngx_array_t                  *keys;
} ngx_http_openbank_sync_walk_t;


static ngx_int_t ngx_http_openbank_sync_next(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_sync_count(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_sync_read_state(
    ngx_http_openbank_sync_state_t *st);
static void ngx_http_openbank_sync_tick(ngx_event_t *ev);
static ngx_int_t ngx_http_openbank_sync_publish(void);
static ngx_int_t ngx_http_openbank_sync_collect(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_sync_pairs(
    ngx_http_openbank_sync_call_t *sc, ngx_uint_t kind, ngx_str_t *records);
static ngx_int_t ngx_http_openbank_sync_pair_put(void *data,
    u_char *payload, size_t len);
static ngx_int_t ngx_http_openbank_sync_pair_del(void *data,
    u_char *payload, size_t len);
static void ngx_http_openbank_sync_published(void *data,
    redisReply *reply);
static ngx_int_t ngx_http_openbank_sync_poll(void);
static void ngx_http_openbank_sync_polled(void *data, redisReply *reply);
static ngx_int_t ngx_http_openbank_sync_entry(redisReply *entry,
    u_char *origin);
static ngx_int_t ngx_http_openbank_sync_snapshot(redisReply *reply);
static ngx_int_t ngx_http_openbank_sync_seed(void);
static ngx_int_t ngx_http_openbank_sync_seq(ngx_http_openbank_zone_t *zone,
    void *data);
static void ngx_http_openbank_sync_note(ngx_uint_t what, ngx_uint_t n,
    redisReply *last);
static ngx_int_t ngx_http_openbank_sync_origin(ngx_http_openbank_zone_t *zone,
    void *data);
static ngx_int_t ngx_http_openbank_sync_unhex(u_char *dst, u_char *src,
    size_t len);
static int ngx_libc_cdecl ngx_http_openbank_sync_cmp(const void *a,
    const void *b);
static ngx_int_t ngx_http_openbank_sync_update(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_str_t *ngx_http_openbank_sync_arg(
    ngx_http_openbank_sync_call_t *sc, u_char *data, size_t len);
static ngx_int_t ngx_http_openbank_sync_call_start(
    ngx_http_openbank_sync_call_t *sc);
static ngx_int_t ngx_http_openbank_sync_replay_put(void *data,
    u_char *payload, size_t len);
static ngx_int_t ngx_http_openbank_sync_replay_del(void *data,
    u_char *payload, size_t len);
static ngx_int_t ngx_http_openbank_sync_restored(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_sync_dump(
    ngx_http_openbank_store_value_t *sv, void *data);
static void ngx_http_openbank_sync_journal(ngx_uint_t type, ngx_str_t *keys,
    ngx_uint_t n, u_char *value, size_t len, ngx_log_t *log);
static void ngx_http_openbank_sync_journaled(
    ngx_http_openbank_journal_entry_t *e, ngx_int_t rc);


/*
 * The changes journal: a record "q<seq>" with the change (its kind, its
 * records) when it is queued, its deletion once it is published.
 */

static ngx_http_openbank_journal_t  ngx_http_openbank_sync_j = {
    "changes journal", "changes", NGX_HTTP_OPENBANK_TABLE_SYNC,
    NULL, ngx_http_openbank_sync_dump, NULL, "",
    ngx_null_string, ngx_null_string, 0, 0, 0, 0, 0,
    { NULL, NULL }, { NULL, NULL }, 0, { 0 }, { 0 }, NULL, NULL, 0
};


/* the changes journal read back at start */

typedef struct {
    ngx_http_openbank_zone_t     *zone;
    uint64_t                      seq;         /* the last one restored */
    ngx_uint_t                    queued;
    ngx_uint_t                    full;
} ngx_http_openbank_sync_load_t;


static ngx_int_t ngx_http_openbank_sync_begin(
    ngx_http_openbank_store_value_t *sv, void *data);
static void ngx_http_openbank_sync_fresh(ngx_http_openbank_sync_state_t *st);


/*
 * The publication: each change added to the stream (with its origin, so
 * that its own gateway skips it) and to the snapshot: "r" pairs are a
 * registry key and "p" with its value or "d", "v" pairs a revoked token
 * (the hex SHA-256 of the token, its jti) and its expiry in ms.
 *
 * KEYS: the stream, the registry snapshot, the revocations, the claims'
 * prefix (a registry key deleted ends its claim); ARGV: the origin, the
 * stream's length, now in ms, then for each change its kind, its records,
 * the number of its pairs and the pairs.
 */

static ngx_http_openbank_cluster_script_t  ngx_http_openbank_sync_publish_lua
= {
    ngx_string(
    "local i = 4\n"
    "local id = ''\n"
    "while i <= #ARGV do\n"
    "  local t, n = ARGV[i], tonumber(ARGV[i + 2])\n"
    "  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*',\n"
    "                  'o', ARGV[1], 't', t, 'd', ARGV[i + 1])\n"
    "  i = i + 3\n"
    "  for j = 1, n do\n"
    "    local k, v = ARGV[i], ARGV[i + 1]\n"
    "    i = i + 2\n"
    "    if t == 'r' then\n"
    "      if string.sub(v, 1, 1) == 'p' then\n"
    "        redis.call('HSET', KEYS[2], k, string.sub(v, 2))\n"
    "      else\n"
    "        redis.call('HDEL', KEYS[2], k)\n"
    "        redis.call('DEL', KEYS[4] .. k)\n"
    "      end\n"
    "    else\n"
    "      redis.call('ZADD', KEYS[3], v, k)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[3])\n"
    "return id\n"),
    { 0 }
};


/*
 * The read: the entries after the last one applied; a snapshot ("s",
 * the stream's last id, the registry, the revocations still in force)
 * when there is no last one, or when it has left the stream (trimmed:
 * entries were missed).  ARGV: the last id ("" none), a count, now.
 */

static ngx_http_openbank_cluster_script_t  ngx_http_openbank_sync_poll_lua
= {
    ngx_string(
    "local last = ARGV[1]\n"
    "if last == '' or (last ~= '0-0'\n"
    "    and #redis.call('XRANGE', KEYS[1], last, last) == 0) then\n"
    "  local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)\n"
    "  local id = '0-0'\n"
    "  if #top > 0 then id = top[1][1] end\n"
    "  return {'s', id, redis.call('HGETALL', KEYS[2]),\n"
    "          redis.call('ZRANGEBYSCORE', KEYS[3], ARGV[3], '+inf',\n"
    "                     'WITHSCORES')}\n"
    "end\n"
    "return {'x', redis.call('XRANGE', KEYS[1], '(' .. last, '+',\n"
    "                        'COUNT', ARGV[2])}\n"),
    { 0 }
};


static ngx_str_t  ngx_http_openbank_sync_keys[] = {
    ngx_string("ob:sync:{changes}:stream"),
    ngx_string("ob:sync:{changes}:registry"),
    ngx_string("ob:sync:{changes}:revoked"),
    ngx_string("ob:sync:{changes}:claim:")
};


/*
 * A partner's creation (docs/cluster.md, "Conflicts"): its registry keys
 * (its name "p<name>", its client id "i<id>", a software statement
 * "s<hash>") claimed before the local commit.  A key is taken when the
 * cluster's registry holds it, or when another gateway claimed it within
 * the claim's life; a claim names its gateway, so that its own are never
 * in its way, and the publication of a deletion ends the claim of the
 * key deleted.  KEYS: the registry snapshot, then a claim a key; ARGV:
 * the gateway's name, the claim's life in ms, then the keys.  The answer:
 * "" (claimed), or the key taken.
 */

static ngx_http_openbank_cluster_script_t  ngx_http_openbank_sync_claim_lua
= {
    ngx_string(
    "for i = 2, #KEYS do\n"
    "  local k = ARGV[i + 1]\n"
    "  if redis.call('HEXISTS', KEYS[1], k) == 1 then return k end\n"
    "  local o = redis.call('GET', KEYS[i])\n"
    "  if o and o ~= ARGV[1] then return k end\n"
    "end\n"
    "for i = 2, #KEYS do\n"
    "  redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])\n"
    "end\n"
    "return ''\n"),
    { 0 }
};

#define NGX_HTTP_OPENBANK_SYNC_CLAIM_TTL  "300000"  /* ms */
#define NGX_HTTP_OPENBANK_SYNC_CLAIM_MAX  4         /* keys a claim */


/* a request's claim: ctx->sync (a creation never reads the usage) */

typedef struct {
    ngx_http_openbank_sync_redo_pt  redo;
    ngx_str_t                       body;
    ngx_str_t                       taken;
    ngx_int_t                       rc;
    unsigned                        waiting:1;
    unsigned                        done:1;
} ngx_http_openbank_sync_claim_t;


static void ngx_http_openbank_sync_claimed(void *data, redisReply *reply);
static void ngx_http_openbank_sync_claim_resume(ngx_http_request_t *r);
static ngx_int_t ngx_http_openbank_sync_unclaimed(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx);

static ngx_str_t  ngx_http_openbank_sync_state_key = ngx_string("\1s");

static ngx_uint_t                      ngx_http_openbank_sync_on;
static ngx_uint_t                      ngx_http_openbank_sync_busy;
static ngx_event_t                     ngx_http_openbank_sync_ev;
static ngx_http_openbank_zone_t       *ngx_http_openbank_sync_zone;
static ngx_http_openbank_sync_call_t  *ngx_http_openbank_sync_current;
static ngx_uint_t                      ngx_http_openbank_sync_ticks;
static ngx_http_openbank_sync_apply_pt  ngx_http_openbank_sync_registry;
static ngx_http_openbank_sync_apply_pt  ngx_http_openbank_sync_revoked;
static ngx_http_openbank_sync_records_pt  ngx_http_openbank_sync_records;
static ngx_http_openbank_main_conf_t  *ngx_http_openbank_sync_obmcf;
static ngx_int_t                       ngx_http_openbank_sync_tz;
static u_char                          ngx_http_openbank_sync_gw[16];

/*
 * What worker 0 last wrote of each usage field (CRC-32s of its name and
 * value), so that a field that did not move is not written again; all
 * again every 10 minutes and after a write that failed.
 */
typedef struct {
    ngx_rbtree_node_t             node;        /* key: the name's CRC */
    uint32_t                      value;
} ngx_http_openbank_sync_field_t;

static ngx_pool_t                     *ngx_http_openbank_sync_wpool;
static ngx_rbtree_t                    ngx_http_openbank_sync_written;
static ngx_rbtree_node_t               ngx_http_openbank_sync_wsentinel;
static ngx_uint_t                      ngx_http_openbank_sync_writes;


/*
 * A gateway's usage: its fields of the partner's hash, whole, and the
 * hash kept 93 days after its last write.  KEYS: the hash; ARGV: the
 * expiry in ms, then fields and values.
 */

static ngx_http_openbank_cluster_script_t  ngx_http_openbank_sync_usage_lua
= {
    ngx_string(
    "redis.call('HSET', KEYS[1], unpack(ARGV, 2))\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[1])\n"
    "return 1\n"),
    { 0 }
};


/* a request's read of the partner's usage over the cluster: ctx->sync */

typedef struct {
    ngx_array_t                  *days;        /* NULL: none, degraded */
    void                         *data;        /* the caller's */
    unsigned                      waiting:1;
    unsigned                      done:1;
} ngx_http_openbank_sync_usage_t;


static void ngx_http_openbank_sync_usage_publish(void);
static ngx_uint_t ngx_http_openbank_sync_usage_moved(
    ngx_http_openbank_usage_text_t *t);
static void ngx_http_openbank_sync_usage_written(void *data,
    redisReply *reply);
static void ngx_http_openbank_sync_usage_read(void *data, redisReply *reply);


/* inside the zone's lock: the next seq (0: cluster mode is off) */

uint64_t
ngx_http_openbank_sync_reserve(ngx_http_openbank_zone_t *zone)
{
    uint64_t  seq;

    if (!ngx_http_openbank_sync_on) {
        return 0;
    }

    seq = 0;

    if (ngx_http_openbank_store_update(zone, NGX_HTTP_OPENBANK_TABLE_SYNC,
                                  &ngx_http_openbank_sync_state_key,
                                  sizeof(ngx_http_openbank_sync_state_t), 0,
                                  ngx_http_openbank_sync_next, &seq)
        != NGX_HTTP_OPENBANK_STORE_KEEP)
    {
        return 0;
    }

    return seq;
}


static ngx_int_t
ngx_http_openbank_sync_next(ngx_http_openbank_store_value_t *sv, void *data)
{
    uint64_t  *seq = data;

    ngx_http_openbank_sync_state_t  st;

    if (sv->len != sizeof(st)) {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    ngx_memcpy(&st, sv->value, sizeof(st));

    if (sv->is_new) {
        ngx_http_openbank_sync_fresh(&st);
    }

    *seq = ++st.next;

    ngx_memcpy(sv->value, &st, sizeof(st));

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/* the bookkeeping of a new zone: the changes restored are queued */

static ngx_int_t
ngx_http_openbank_sync_begin(ngx_http_openbank_store_value_t *sv, void *data)
{
    ngx_http_openbank_sync_load_t *ld = data;

    ngx_http_openbank_sync_state_t  st;

    if (sv->len != sizeof(st)) {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    ngx_memcpy(&st, sv->value, sizeof(st));

    if (sv->is_new) {
        ngx_http_openbank_sync_fresh(&st);
    }

    if (st.next < ld->seq) {
        st.next = ld->seq;
    }

    st.queued = ld->queued;

    ngx_memcpy(sv->value, &st, sizeof(st));

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


static void
ngx_http_openbank_sync_fresh(ngx_http_openbank_sync_state_t *st)
{
    ngx_uint_t  i;

    ngx_memzero(st, sizeof(ngx_http_openbank_sync_state_t));

    /* this gateway's name in the stream, for this zone's life */

    for (i = 0; i < sizeof(st->origin); i++) {
        st->origin[i] = "0123456789abcdef"[ngx_random() & 0xf];
    }
}


static ngx_int_t
ngx_http_openbank_sync_origin(ngx_http_openbank_zone_t *zone, void *data)
{
    (void) ngx_http_openbank_sync_reserve(zone);

    return NGX_OK;
}


void
ngx_http_openbank_sync_queue(ngx_http_openbank_main_conf_t *obmcf,
    uint64_t seq, ngx_uint_t kind, u_char *records, size_t len,
    ngx_log_t *log)
{
    u_char     *value;
    ngx_str_t   key;
    ngx_int_t   one;
    u_char      name[1 + 16];

    value = ngx_alloc(1 + len, log);
    if (value == NULL) {
        return;
    }

    value[0] = (u_char) kind;
    ngx_memcpy(value + 1, records, len);

    key.data = name;
    key.len = ngx_sprintf(name, "q%016uxL", seq) - name;

    if (ngx_http_openbank_store_set(obmcf->shm_zone->data,
                                    NGX_HTTP_OPENBANK_TABLE_SYNC, &key,
                                    value, 1 + len, 0)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "openbank: zone \"%V\" is full: a change is not "
                      "published to the other gateways",
                      &obmcf->shm_zone->shm.name);
        ngx_free(value);
        return;
    }

    ngx_http_openbank_sync_journal(NGX_HTTP_OPENBANK_SYNC_PUT, &key, 1,
                                   value, 1 + len, log);

    ngx_free(value);

    one = 1;

    (void) ngx_http_openbank_store_update(obmcf->shm_zone->data,
                                  NGX_HTTP_OPENBANK_TABLE_SYNC,
                                  &ngx_http_openbank_sync_state_key, 0, 0,
                                  ngx_http_openbank_sync_count, &one);
}


/*
 * Records of the changes journal: "type" (a change queued, or published
 * and gone) for each of the "n" keys, written with the batch of this
 * pass; one that fails is written again from the zone with the next.
 */

static void
ngx_http_openbank_sync_journal(ngx_uint_t type, ngx_str_t *keys,
    ngx_uint_t n, u_char *value, size_t len, ngx_log_t *log)
{
    u_char                             *p;
    size_t                              size;
    ngx_uint_t                          i;
    ngx_http_openbank_journal_t        *j;
    ngx_http_openbank_journal_entry_t  *e;

    if (ngx_http_openbank_sync_obmcf == NULL
        || ngx_http_openbank_sync_obmcf->state_path.len == 0
        || n == 0)
    {
        return;
    }

    size = 0;

    for (i = 0; i < n; i++) {
        size += NGX_HTTP_OPENBANK_JOURNAL_FRAME
                + sizeof(ngx_http_openbank_journal_head_t) + keys[i].len
                + len;
    }

    e = ngx_alloc(sizeof(ngx_http_openbank_journal_entry_t) + size, log);
    if (e == NULL) {
        return;
    }

    e->record = (u_char *) &e[1];
    p = e->record;

    for (i = 0; i < n; i++) {
        p = ngx_http_openbank_journal_record(p, type, 0, &keys[i], value,
                                             len);
    }

    e->len = p - e->record;
    e->handler = ngx_http_openbank_sync_journaled;

    j = &ngx_http_openbank_sync_j;

    if (ngx_http_openbank_journal_init(j, (ngx_cycle_t *) ngx_cycle)
        != NGX_OK
        || ngx_http_openbank_journal_open_lock(j, log) != NGX_OK)
    {
        ngx_free(e);
        return;
    }

    ngx_http_openbank_journal_submit(j, e);
}


static void
ngx_http_openbank_sync_journaled(ngx_http_openbank_journal_entry_t *e,
    ngx_int_t rc)
{
    ngx_free(e);
}


/* for a compaction: a record for each change still queued */

static ngx_int_t
ngx_http_openbank_sync_dump(ngx_http_openbank_store_value_t *sv, void *data)
{
    ngx_http_openbank_journal_dump_t  *dp = data;

    if (sv->key.len == 17 && sv->key.data[0] == 'q' && sv->len >= 2) {
        ngx_http_openbank_journal_dump_record(dp, NGX_HTTP_OPENBANK_SYNC_PUT,
                                              0, &sv->key, sv->value,
                                              sv->len);
    }

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/*
 * At start, once per zone, in cluster mode: the changes not published
 * before the last stop (or crash) queued again, with their numbers; the
 * next ones are numbered after them.
 */

ngx_int_t
ngx_http_openbank_sync_init_module(ngx_cycle_t *cycle)
{
    ngx_int_t                       rc;
    ngx_core_conf_t                *ccf;
    ngx_http_openbank_journal_t    *j;
    ngx_http_openbank_journal_pt    handlers[3];
    ngx_http_openbank_sync_load_t   ld;
    ngx_http_openbank_main_conf_t  *obmcf;

    if (ngx_http_cycle_get_module_main_conf(cycle, ngx_http_core_module)
        == NULL)
    {
        return NGX_OK;
    }

    obmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                                ngx_http_openbank_module);

    if (obmcf == NULL || obmcf->cluster == NULL || obmcf->shm_zone == NULL
        || obmcf->state_path.len == 0
        || ngx_test_config || ngx_process == NGX_PROCESS_SIGNALLER)
    {
        return NGX_OK;
    }

    j = &ngx_http_openbank_sync_j;

    rc = ngx_http_openbank_journal_begin(j, cycle, "changes");

    if (rc == NGX_DECLINED) {
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&ld, sizeof(ld));
    ld.zone = obmcf->shm_zone->data;

    handlers[0] = NULL;
    handlers[NGX_HTTP_OPENBANK_SYNC_PUT] = ngx_http_openbank_sync_replay_put;
    handlers[NGX_HTTP_OPENBANK_SYNC_DEL] = ngx_http_openbank_sync_replay_del;

    rc = ngx_http_openbank_journal_load(j, cycle, &obmcf->shm_zone->shm.name,
                                        "changes", handlers, 3, &ld,
                                        &ld.full);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    ld.queued = 0;

    (void) ngx_http_openbank_store_walk(ld.zone, NGX_HTTP_OPENBANK_TABLE_SYNC,
                                        ngx_http_openbank_sync_restored,
                                        &ld);

    if (ngx_http_openbank_store_update(ld.zone, NGX_HTTP_OPENBANK_TABLE_SYNC,
                                  &ngx_http_openbank_sync_state_key,
                                  sizeof(ngx_http_openbank_sync_state_t), 0,
                                  ngx_http_openbank_sync_begin, &ld)
        != NGX_HTTP_OPENBANK_STORE_KEEP)
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "openbank: no room in zone \"%V\" for the changes "
                      "of the cluster", &obmcf->shm_zone->shm.name);
        return NGX_ERROR;
    }

    if (ld.queued) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "openbank: %ui changes not published yet restored "
                      "from \"%V\": they are published before the "
                      "cluster's snapshot is read", ld.queued, &j->name);
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    (void) ngx_http_openbank_journal_compact(j, ccf->user, cycle->log);

    ngx_http_openbank_journal_reset(j);

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_sync_replay_put(void *data, u_char *payload, size_t len)
{
    ngx_http_openbank_sync_load_t *ld = data;

    uint64_t                           seq;
    ngx_str_t                          key;
    ngx_http_openbank_journal_head_t   head;

    ngx_memcpy(&head, payload, sizeof(head));

    key.data = payload + sizeof(head);
    key.len = head.key_len;
    len -= sizeof(head) + key.len;

    if (key.len != 17 || key.data[0] != 'q' || len < 2) {
        return NGX_OK;
    }

    seq = (uint64_t) ngx_hextoi(key.data + 1, 16);

    if ((ngx_int_t) seq == NGX_ERROR) {
        return NGX_OK;
    }

    if (seq > ld->seq) {
        ld->seq = seq;
    }

    if (ngx_http_openbank_store_set(ld->zone, NGX_HTTP_OPENBANK_TABLE_SYNC,
                                    &key, key.data + key.len, len, 0)
        != NGX_OK)
    {
        ld->full++;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_sync_replay_del(void *data, u_char *payload, size_t len)
{
    ngx_http_openbank_sync_load_t *ld = data;

    ngx_str_t                          key;
    ngx_http_openbank_journal_head_t   head;

    ngx_memcpy(&head, payload, sizeof(head));

    key.data = payload + sizeof(head);
    key.len = head.key_len;

    if (key.len == 17 && key.data[0] == 'q') {
        (void) ngx_http_openbank_store_delete(ld->zone,
                                              NGX_HTTP_OPENBANK_TABLE_SYNC,
                                              &key);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_sync_restored(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_sync_load_t *ld = data;

    if (sv->key.len == 17 && sv->key.data[0] == 'q') {
        ld->queued++;
    }

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


static ngx_int_t
ngx_http_openbank_sync_count(ngx_http_openbank_store_value_t *sv, void *data)
{
    ngx_int_t  *n = data;

    ngx_http_openbank_sync_state_t  st;

    if (sv->len != sizeof(st)) {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    ngx_memcpy(&st, sv->value, sizeof(st));

    if (*n < 0 && st.queued < (uint64_t) -*n) {
        st.queued = 0;

    } else {
        st.queued += *n;
    }

    ngx_memcpy(sv->value, &st, sizeof(st));

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


static ngx_int_t
ngx_http_openbank_sync_read_state(ngx_http_openbank_sync_state_t *st)
{
    ssize_t  n;

    n = ngx_http_openbank_store_get(ngx_http_openbank_sync_zone,
                                    NGX_HTTP_OPENBANK_TABLE_SYNC,
                                    &ngx_http_openbank_sync_state_key,
                                    st, sizeof(*st), NULL);

    if (n != (ssize_t) sizeof(*st)) {
        ngx_memzero(st, sizeof(*st));
        return NGX_DECLINED;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_openbank_sync_init_process(ngx_cycle_t *cycle,
    ngx_http_openbank_sync_apply_pt registry,
    ngx_http_openbank_sync_apply_pt revoked,
    ngx_http_openbank_sync_records_pt records)
{
    ngx_http_openbank_main_conf_t  *obmcf;

    obmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                                ngx_http_openbank_module);

    ngx_http_openbank_sync_on = 0;

    if (obmcf == NULL || obmcf->cluster == NULL || obmcf->shm_zone == NULL
        || (ngx_process != NGX_PROCESS_WORKER
            && ngx_process != NGX_PROCESS_SINGLE))
    {
        return NGX_OK;
    }

    ngx_http_openbank_sync_on = 1;
    ngx_http_openbank_sync_zone = obmcf->shm_zone->data;
    ngx_http_openbank_sync_registry = registry;
    ngx_http_openbank_sync_revoked = revoked;
    ngx_http_openbank_sync_records = records;
    ngx_http_openbank_sync_obmcf = obmcf;
    ngx_http_openbank_sync_tz = obmcf->tz_offset;

    /*
     * The name of this gateway's usage in Redis: the same across its
     * restarts when its state (and so its usage) outlives them
     */

    if (obmcf->state_path.len) {
        u_char  id[NGX_HTTP_OPENBANK_HASH_LEN], buf[NGX_MAXHOSTNAMELEN + 1
                                                    + NGX_MAX_PATH];
        u_char *last;

        last = ngx_snprintf(buf, sizeof(buf), "%V:%V", &cycle->hostname,
                            &obmcf->state_path);
        ngx_http_openbank_sha256(id, buf, last - buf);
        ngx_hex_dump(ngx_http_openbank_sync_gw, id, 8);
    }

    /* the origin exists before anything is published or read */

    (void) ngx_http_openbank_store_atomic(ngx_http_openbank_sync_zone,
                                          ngx_http_openbank_sync_origin,
                                          NULL);

    if (obmcf->state_path.len == 0) {
        ngx_http_openbank_sync_state_t  st;

        (void) ngx_http_openbank_sync_read_state(&st);
        ngx_memcpy(ngx_http_openbank_sync_gw, st.origin, 16);
    }

    if (ngx_worker != 0) {
        return NGX_OK;
    }

    ngx_http_openbank_sync_ev.handler = ngx_http_openbank_sync_tick;
    ngx_http_openbank_sync_ev.data = &ngx_http_openbank_redis_no_connection;
    ngx_http_openbank_sync_ev.log = cycle->log;
    ngx_http_openbank_sync_ev.cancelable = 1;

    ngx_add_timer(&ngx_http_openbank_sync_ev, 1);

    return NGX_OK;
}


void
ngx_http_openbank_sync_exit_process(ngx_cycle_t *cycle)
{
    if (ngx_http_openbank_sync_ev.timer_set) {
        ngx_del_timer(&ngx_http_openbank_sync_ev);
    }

    if (ngx_http_openbank_sync_current) {
        ngx_destroy_pool(ngx_http_openbank_sync_current->pool);
        ngx_http_openbank_sync_current = NULL;
    }

    if (ngx_http_openbank_sync_wpool) {
        ngx_destroy_pool(ngx_http_openbank_sync_wpool);
        ngx_http_openbank_sync_wpool = NULL;
    }

    ngx_http_openbank_sync_on = 0;
}


/* every tick: the queue published first, else the stream read */

static void
ngx_http_openbank_sync_tick(ngx_event_t *ev)
{
    ngx_int_t  rc;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (!ngx_http_openbank_sync_busy) {
        rc = ngx_http_openbank_sync_publish();

        if (rc == NGX_DECLINED) {
            rc = ngx_http_openbank_sync_poll();
        }

        if (rc == NGX_BUSY || rc == NGX_ERROR) {
            ngx_http_openbank_sync_note(NGX_HTTP_OPENBANK_SYNC_FAILED, 0, NULL);
        }
    }

    if (++ngx_http_openbank_sync_ticks % NGX_HTTP_OPENBANK_SYNC_USAGE == 0) {
        ngx_http_openbank_sync_usage_publish();
    }

    if (!ev->timer_set) {
        ngx_add_timer(ev, NGX_HTTP_OPENBANK_SYNC_TICK);
    }
}


/* every second: this gateway's days that may still move, whole */

static void
ngx_http_openbank_sync_usage_publish(void)
{
    u_char                          *p;
    ngx_str_t                       *a;
    ngx_uint_t                       i, j, n;
    ngx_pool_t                      *pool;
    ngx_array_t                      out, args;
    ngx_http_openbank_usage_text_t  *t;

    if (ngx_http_openbank_sync_wpool == NULL
        || ++ngx_http_openbank_sync_writes
           % NGX_HTTP_OPENBANK_SYNC_USAGE_ALL == 0)
    {
        if (ngx_http_openbank_sync_wpool) {
            ngx_destroy_pool(ngx_http_openbank_sync_wpool);
        }

        ngx_http_openbank_sync_wpool = ngx_create_pool(4096, ngx_cycle->log);
        if (ngx_http_openbank_sync_wpool == NULL) {
            return;
        }

        ngx_rbtree_init(&ngx_http_openbank_sync_written,
                        &ngx_http_openbank_sync_wsentinel,
                        ngx_rbtree_insert_value);
    }

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return;
    }

    if (ngx_array_init(&out, pool, 16,
                       sizeof(ngx_http_openbank_usage_text_t))
        != NGX_OK
        || ngx_array_init(&args, pool, 16, sizeof(ngx_str_t)) != NGX_OK)
    {
        goto done;
    }

    (void) ngx_http_openbank_usage_recent(ngx_http_openbank_sync_zone, pool,
                                          ngx_http_openbank_sync_tz, &out);

    t = out.elts;

    /* one call for each partner (its hash, its slot) */

    for (i = 0; i < out.nelts; i = j) {
        args.nelts = 0;

        a = ngx_array_push(&args);
        if (a == NULL) {
            goto done;
        }

        a->len = sizeof("ob:usage:{}") - 1 + t[i].partner.len;
        a->data = ngx_pnalloc(pool, a->len);
        if (a->data == NULL) {
            goto done;
        }

        ngx_sprintf(a->data, "ob:usage:{%V}", &t[i].partner);

        a = ngx_array_push(&args);
        if (a == NULL) {
            goto done;
        }

        ngx_str_set(a, NGX_HTTP_OPENBANK_SYNC_USAGE_TTL);

        for (j = i, n = 0; j < out.nelts; j++) {
            if (t[j].partner.len != t[i].partner.len
                || ngx_memcmp(t[j].partner.data, t[i].partner.data,
                              t[i].partner.len)
                   != 0)
            {
                continue;
            }

            /* taken: its partner's call has it */

            if (j != i + n) {
                ngx_http_openbank_usage_text_t  swap;

                swap = t[i + n];
                t[i + n] = t[j];
                t[j] = swap;
            }

            n++;
        }

        for (j = i; j < i + n; j++) {
            if (!ngx_http_openbank_sync_usage_moved(&t[j])) {
                continue;
            }

            a = ngx_array_push_n(&args, 2);
            if (a == NULL) {
                goto done;
            }

            p = ngx_pnalloc(pool, t[j].field.len + 1 + 16);
            if (p == NULL) {
                goto done;
            }

            a[0].data = p;
            a[0].len = ngx_sprintf(p, "%V/%*s", &t[j].field, (size_t) 16,
                                   ngx_http_openbank_sync_gw)
                       - p;
            a[1] = t[j].value;
        }

        j = i + n;

        if (args.nelts == 2) {
            /* none of the partner's fields moved */
            continue;
        }

        if (ngx_http_openbank_cluster_call(NULL,
                                          &ngx_http_openbank_sync_usage_lua,
                                          1, args.nelts, args.elts,
                                          ngx_http_openbank_sync_usage_written,
                                          NULL)
            != NGX_OK)
        {
            /* not sent: every field again with the next write */
            ngx_http_openbank_sync_writes =
                                      NGX_HTTP_OPENBANK_SYNC_USAGE_ALL - 1;
        }
    }

done:

    ngx_destroy_pool(pool);
}


/* whether a field moved since it was last written (and remember it) */

static ngx_uint_t
ngx_http_openbank_sync_usage_moved(ngx_http_openbank_usage_text_t *t)
{
    uint32_t                         name, value;
    ngx_rbtree_node_t               *node, *sentinel;
    ngx_http_openbank_sync_field_t  *f;

    ngx_crc32_init(name);
    ngx_crc32_update(&name, t->partner.data, t->partner.len);
    ngx_crc32_update(&name, (u_char *) "/", 1);
    ngx_crc32_update(&name, t->field.data, t->field.len);
    ngx_crc32_final(name);

    value = ngx_crc32_long(t->value.data, t->value.len);

    node = ngx_http_openbank_sync_written.root;
    sentinel = ngx_http_openbank_sync_written.sentinel;

    while (node != sentinel) {
        if (name != node->key) {
            node = (name < node->key) ? node->left : node->right;
            continue;
        }

        f = (ngx_http_openbank_sync_field_t *) node;

        if (f->value == value) {
            return 0;
        }

        f->value = value;
        return 1;
    }

    f = ngx_palloc(ngx_http_openbank_sync_wpool,
                   sizeof(ngx_http_openbank_sync_field_t));
    if (f == NULL) {
        return 1;
    }

    f->node.key = name;
    f->value = value;
    ngx_rbtree_insert(&ngx_http_openbank_sync_written, &f->node);

    return 1;
}


static void
ngx_http_openbank_sync_usage_written(void *data, redisReply *reply)
{
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        ngx_http_openbank_sync_note(NGX_HTTP_OPENBANK_SYNC_FAILED, 0, NULL);

        /* every field again with the next write */
        ngx_http_openbank_sync_writes = NGX_HTTP_OPENBANK_SYNC_USAGE_ALL - 1;
    }
}


/*
 * For GET /admin/partners/{name}/usage in cluster mode: the partner's
 * hash, the other gateways' fields as days to add to this gateway's own.
 * NGX_AGAIN: the request waits, and "resume" runs it again; NGX_OK:
 * "days" are the others' (NULL: Redis cannot answer, this gateway's
 * counts alone); NGX_DECLINED: cluster mode is off.  "data" is kept for
 * the caller (*data when it runs again).
 */

ngx_int_t
ngx_http_openbank_sync_usage(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *partner,
    ngx_http_event_handler_pt resume, ngx_array_t **days, void **data)
{
    ngx_int_t                        rc;
    ngx_str_t                        argv[2];
    ngx_http_openbank_sync_usage_t  *su;

    if (!ngx_http_openbank_sync_on || !ngx_http_openbank_cluster_on(r)) {
        return NGX_DECLINED;
    }

    su = ctx->sync;

    if (su != NULL && su->done) {
        *days = su->days;
        *data = su->data;
        return NGX_OK;
    }

    if (su != NULL && su->waiting) {
        return NGX_AGAIN;
    }

    su = ngx_pcalloc(r->pool, sizeof(ngx_http_openbank_sync_usage_t));
    if (su == NULL) {
        return NGX_ERROR;
    }

    ctx->sync = su;
    su->data = *data;

    ngx_str_set(&argv[0], "HGETALL");
    argv[1].len = sizeof("ob:usage:{}") - 1 + partner->len;
    argv[1].data = ngx_pnalloc(r->pool, argv[1].len);
    if (argv[1].data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(argv[1].data, "ob:usage:{%V}", partner);

    rc = ngx_http_openbank_cluster_request(r, ctx, resume, &argv[1], NULL, 0,
                                           2, argv,
                                           ngx_http_openbank_sync_usage_read,
                                           r);
    if (rc == NGX_AGAIN) {
        su->waiting = 1;
        return NGX_AGAIN;
    }

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    /* Redis cannot answer now: this gateway's counts */

    su->done = 1;
    *days = NULL;

    return NGX_OK;
}


static void
ngx_http_openbank_sync_usage_read(void *data, redisReply *reply)
{
    ngx_http_request_t *r = data;

    size_t                           i;
    redisReply                      *f, *v;
    ngx_http_openbank_ctx_t         *ctx;
    ngx_http_openbank_sync_usage_t  *su;

    ctx = ngx_http_get_module_ctx(r, ngx_http_openbank_module);
    su = ctx->sync;

    su->waiting = 0;
    su->done = 1;
    su->days = NULL;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        return;
    }

    su->days = ngx_http_openbank_usage_days(r->pool);
    if (su->days == NULL) {
        return;
    }

    for (i = 0; i + 1 < reply->elements; i += 2) {
        f = reply->element[i];
        v = reply->element[i + 1];

        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING
            || f->len < 17)
        {
            continue;
        }

        /* this gateway's own: its zone is more recent */

        if (f->str[f->len - 17] == '/'
            && ngx_memcmp(f->str + f->len - 16, ngx_http_openbank_sync_gw,
                          16)
               == 0)
        {
            continue;
        }

        if (ngx_http_openbank_usage_add_field(su->days, r->pool,
                                              (u_char *) f->str, f->len,
                                              (u_char *) v->str, v->len)
            == NGX_ERROR)
        {
            su->days = NULL;
            return;
        }
    }
}


/*
 * A partner's creation in cluster mode: its "n" registry keys claimed
 * across the cluster before the local commit.  NGX_OK: claimed (or
 * cluster mode is off, or Redis cannot answer and registry=local);
 * NGX_DECLINED: "taken" is the key another gateway has; NGX_BUSY: Redis
 * cannot answer and registry=refuse (ctx->retry_after is set); NGX_AGAIN:
 * the request waits, then "redo" runs it again with its body (this then
 * returns the answer) and the request ends with what "redo" returns.
 */

ngx_int_t
ngx_http_openbank_sync_claim(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx, ngx_str_t *keys, ngx_uint_t n,
    ngx_http_openbank_sync_redo_pt redo, ngx_str_t *body, ngx_str_t *taken)
{
    u_char                          *p;
    ngx_int_t                        rc;
    ngx_uint_t                       i;
    ngx_http_openbank_sync_claim_t  *sc;
    ngx_http_openbank_sync_state_t   st;
    ngx_str_t                        argv[3 + 2
                                          * NGX_HTTP_OPENBANK_SYNC_CLAIM_MAX];

    if (!ngx_http_openbank_sync_on || !ngx_http_openbank_cluster_on(r)) {
        return NGX_OK;
    }

    sc = ctx->sync;

    if (sc != NULL && sc->done) {
        *taken = sc->taken;
        return sc->rc;
    }

    if (sc != NULL && sc->waiting) {
        return NGX_AGAIN;
    }

    if (n == 0 || n > NGX_HTTP_OPENBANK_SYNC_CLAIM_MAX
        || ngx_http_openbank_sync_read_state(&st) != NGX_OK)
    {
        return NGX_ERROR;
    }

    sc = ngx_pcalloc(r->pool, sizeof(ngx_http_openbank_sync_claim_t));
    if (sc == NULL) {
        return NGX_ERROR;
    }

    ctx->sync = sc;
    sc->redo = redo;
    sc->body = *body;

    argv[0] = ngx_http_openbank_sync_keys[1];

    for (i = 0; i < n; i++) {
        argv[1 + i].len = ngx_http_openbank_sync_keys[3].len + keys[i].len;
        argv[1 + i].data = ngx_pnalloc(r->pool, argv[1 + i].len);
        if (argv[1 + i].data == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(argv[1 + i].data, ngx_http_openbank_sync_keys[3].data,
                       ngx_http_openbank_sync_keys[3].len);
        ngx_memcpy(p, keys[i].data, keys[i].len);

        argv[3 + n + i] = keys[i];
    }

    argv[1 + n].data = ngx_pnalloc(r->pool, sizeof(st.origin));
    if (argv[1 + n].data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(argv[1 + n].data, st.origin, sizeof(st.origin));
    argv[1 + n].len = sizeof(st.origin);

    ngx_str_set(&argv[2 + n], NGX_HTTP_OPENBANK_SYNC_CLAIM_TTL);

    rc = ngx_http_openbank_cluster_request(r, ctx,
                                           ngx_http_openbank_sync_claim_resume,
                                           &argv[0],
                                           &ngx_http_openbank_sync_claim_lua,
                                           1 + n, 3 + 2 * n, argv,
                                           ngx_http_openbank_sync_claimed, r);
    if (rc == NGX_AGAIN) {
        sc->waiting = 1;
        return NGX_AGAIN;
    }

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    sc->done = 1;

    if (rc == NGX_DECLINED) {
        sc->rc = NGX_OK;
        return NGX_OK;
    }

    /* Redis cannot answer now */

    sc->rc = ngx_http_openbank_sync_unclaimed(r, ctx);

    return sc->rc;
}


/* the claim is answered: the request again, and it ends */

static void
ngx_http_openbank_sync_claim_resume(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_http_openbank_ctx_t         *ctx;
    ngx_http_openbank_sync_claim_t  *sc;

    ctx = ngx_http_get_module_ctx(r, ngx_http_openbank_module);
    sc = ctx->sync;

    rc = sc->redo(r, ctx, &sc->body);

    if (rc == NGX_AGAIN) {
        /* answered once durable */
        return;
    }

    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_openbank_sync_claimed(void *data, redisReply *reply)
{
    ngx_http_request_t *r = data;

    ngx_http_openbank_ctx_t         *ctx;
    ngx_http_openbank_sync_claim_t  *sc;

    ctx = ngx_http_get_module_ctx(r, ngx_http_openbank_module);
    sc = ctx->sync;

    sc->waiting = 0;
    sc->done = 1;

    if (reply != NULL && reply->type == REDIS_REPLY_STRING) {

        if (reply->len == 0) {
            sc->rc = NGX_OK;
            return;
        }

        sc->taken.data = ngx_pnalloc(r->pool, reply->len);
        if (sc->taken.data == NULL) {
            sc->rc = NGX_ERROR;
            return;
        }

        ngx_memcpy(sc->taken.data, reply->str, reply->len);
        sc->taken.len = reply->len;
        sc->rc = NGX_DECLINED;

        return;
    }

    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "openbank: the claim of a partner's name failed: "
                      "redis answered \"%*s\"",
                      ngx_min(reply->len, 200), reply->str);
    }

    sc->rc = ngx_http_openbank_sync_unclaimed(r, ctx);
}


/* Redis cannot answer a claim: openbank_cluster_degraded registry= */

static ngx_int_t
ngx_http_openbank_sync_unclaimed(ngx_http_request_t *r,
    ngx_http_openbank_ctx_t *ctx)
{
    ngx_uint_t  mode;

    mode = ngx_http_openbank_cluster_mode(r,
                                        NGX_HTTP_OPENBANK_CLUSTER_REGISTRY);

    ngx_http_openbank_cluster_degraded_count(
                                        NGX_HTTP_OPENBANK_CLUSTER_REGISTRY,
                                        mode);

    if (mode == NGX_HTTP_OPENBANK_CLUSTER_LOCAL) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "openbank: a partner is created while Redis cannot "
                      "answer: its name and client id are not claimed "
                      "across the cluster");
        return NGX_OK;
    }

    ctx->retry_after = 1;

    return NGX_BUSY;
}


static ngx_str_t *
ngx_http_openbank_sync_arg(ngx_http_openbank_sync_call_t *sc, u_char *data,
    size_t len)
{
    ngx_str_t  *a;

    a = ngx_array_push(&sc->args);
    if (a == NULL) {
        return NULL;
    }

    a->data = data;
    a->len = len;

    return a;
}


static ngx_http_openbank_sync_call_t *
ngx_http_openbank_sync_call_new(void)
{
    ngx_pool_t                     *pool;
    ngx_http_openbank_sync_call_t  *sc;

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    sc = ngx_pcalloc(pool, sizeof(ngx_http_openbank_sync_call_t));
    if (sc == NULL
        || ngx_array_init(&sc->args, pool, 64, sizeof(ngx_str_t)) != NGX_OK
        || ngx_array_init(&sc->sent, pool, 8, sizeof(ngx_str_t)) != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return NULL;
    }

    sc->pool = pool;

    (void) ngx_http_openbank_sync_arg(sc, ngx_http_openbank_sync_keys[0].data,
                                      ngx_http_openbank_sync_keys[0].len);
    (void) ngx_http_openbank_sync_arg(sc, ngx_http_openbank_sync_keys[1].data,
                                      ngx_http_openbank_sync_keys[1].len);
    (void) ngx_http_openbank_sync_arg(sc, ngx_http_openbank_sync_keys[2].data,
                                      ngx_http_openbank_sync_keys[2].len);
    (void) ngx_http_openbank_sync_arg(sc, ngx_http_openbank_sync_keys[3].data,
                                      ngx_http_openbank_sync_keys[3].len);

    return sc;
}


static ngx_int_t
ngx_http_openbank_sync_call_start(ngx_http_openbank_sync_call_t *sc)
{
    ngx_int_t                            rc;
    ngx_http_openbank_cluster_script_t  *script;
    ngx_http_openbank_cluster_pt         handler;

    if (sc->sent.nelts) {
        script = &ngx_http_openbank_sync_publish_lua;
        handler = ngx_http_openbank_sync_published;

    } else {
        script = &ngx_http_openbank_sync_poll_lua;
        handler = ngx_http_openbank_sync_polled;
    }

    rc = ngx_http_openbank_cluster_call(NULL, script, 4,
                                        sc->args.nelts, sc->args.elts,
                                        handler, sc);
    if (rc != NGX_OK) {
        ngx_destroy_pool(sc->pool);
        return NGX_BUSY;
    }

    ngx_http_openbank_sync_current = sc;
    ngx_http_openbank_sync_busy = 1;

    return NGX_OK;
}


/* NGX_DECLINED: nothing queued */

static ngx_int_t
ngx_http_openbank_sync_publish(void)
{
    u_char                          *p, *now;
    ssize_t                          n;
    ngx_str_t                       *k, *sent, records;
    ngx_uint_t                       i;
    ngx_array_t                      keys;
    ngx_http_openbank_sync_walk_t    w;
    ngx_http_openbank_sync_call_t   *sc;
    ngx_http_openbank_sync_state_t   st;

    if (ngx_http_openbank_sync_read_state(&st) != NGX_OK || st.queued == 0) {
        return NGX_DECLINED;
    }

    sc = ngx_http_openbank_sync_call_new();
    if (sc == NULL) {
        return NGX_ERROR;
    }

    if (ngx_array_init(&keys, sc->pool, 16, sizeof(ngx_str_t)) != NGX_OK) {
        ngx_destroy_pool(sc->pool);
        return NGX_ERROR;
    }

    w.pool = sc->pool;
    w.keys = &keys;

    (void) ngx_http_openbank_store_walk(ngx_http_openbank_sync_zone,
                                        NGX_HTTP_OPENBANK_TABLE_SYNC,
                                        ngx_http_openbank_sync_collect, &w);

    if (keys.nelts == 0) {
        /* the count was off (a change lost to a full zone) */
        n = -(ssize_t) st.queued;
        (void) ngx_http_openbank_store_update(ngx_http_openbank_sync_zone,
                                  NGX_HTTP_OPENBANK_TABLE_SYNC,
                                  &ngx_http_openbank_sync_state_key, 0, 0,
                                  ngx_http_openbank_sync_count, &n);
        ngx_destroy_pool(sc->pool);
        return NGX_DECLINED;
    }

    /* in the order they were made: the keys are "q" and 16 hex digits */

    ngx_qsort(keys.elts, keys.nelts, sizeof(ngx_str_t),
              ngx_http_openbank_sync_cmp);

    p = ngx_pnalloc(sc->pool, 16 + NGX_INT64_LEN);
    if (p == NULL) {
        ngx_destroy_pool(sc->pool);
        return NGX_ERROR;
    }

    now = p + 16;

    ngx_memcpy(p, st.origin, 16);
    (void) ngx_http_openbank_sync_arg(sc, p, 16);
    (void) ngx_http_openbank_sync_arg(sc,
                                  (u_char *) NGX_HTTP_OPENBANK_SYNC_MAXLEN,
                                  sizeof(NGX_HTTP_OPENBANK_SYNC_MAXLEN) - 1);
    (void) ngx_http_openbank_sync_arg(sc, now,
                                  ngx_sprintf(now, "%uL",
                                              ngx_http_openbank_now_ms())
                                  - now);

    k = keys.elts;

    for (i = 0; i < keys.nelts && i < NGX_HTTP_OPENBANK_SYNC_BATCH; i++) {

        n = ngx_http_openbank_store_get(ngx_http_openbank_sync_zone,
                                        NGX_HTTP_OPENBANK_TABLE_SYNC, &k[i],
                                        NULL, 0, NULL);
        if (n < 2) {
            continue;
        }

        p = ngx_pnalloc(sc->pool, n);
        if (p == NULL) {
            ngx_destroy_pool(sc->pool);
            return NGX_ERROR;
        }

        if (ngx_http_openbank_store_get(ngx_http_openbank_sync_zone,
                                        NGX_HTTP_OPENBANK_TABLE_SYNC, &k[i],
                                        p, n, NULL)
            != n)
        {
            continue;
        }

        records.data = p + 1;
        records.len = n - 1;

        sent = ngx_array_push(&sc->sent);

        if (sent == NULL
            || ngx_http_openbank_sync_arg(sc, p, 1) == NULL
            || ngx_http_openbank_sync_arg(sc, records.data, records.len)
               == NULL)
        {
            ngx_destroy_pool(sc->pool);
            return NGX_ERROR;
        }

        *sent = k[i];

        if (ngx_http_openbank_sync_pairs(sc, p[0], &records) != NGX_OK) {
            ngx_destroy_pool(sc->pool);
            return NGX_ERROR;
        }
    }

    if (sc->sent.nelts == 0) {
        ngx_destroy_pool(sc->pool);
        return NGX_DECLINED;
    }

    return ngx_http_openbank_sync_call_start(sc);
}


static ngx_int_t
ngx_http_openbank_sync_collect(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_sync_walk_t *w = data;

    ngx_str_t  *k;

    if (sv->key.len != 17 || sv->key.data[0] != 'q') {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    k = ngx_array_push(w->keys);
    if (k == NULL) {
        return NGX_HTTP_OPENBANK_STORE_STOP;
    }

    k->data = ngx_pnalloc(w->pool, sv->key.len);
    if (k->data == NULL) {
        return NGX_HTTP_OPENBANK_STORE_STOP;
    }

    ngx_memcpy(k->data, sv->key.data, sv->key.len);
    k->len = sv->key.len;

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/* a change's pairs for the snapshot: the count, then the pairs */

static ngx_int_t
ngx_http_openbank_sync_pairs(ngx_http_openbank_sync_call_t *sc,
    ngx_uint_t kind, ngx_str_t *records)
{
    u_char                        *p;
    ngx_str_t                     *count;
    ngx_uint_t                     before;
    ngx_http_openbank_journal_pt   handlers[3];

    count = ngx_http_openbank_sync_arg(sc, NULL, 0);
    if (count == NULL) {
        return NGX_ERROR;
    }

    before = sc->args.nelts;
    sc->kind = kind;

    handlers[0] = NULL;
    handlers[NGX_HTTP_OPENBANK_SYNC_PUT] = ngx_http_openbank_sync_pair_put;
    handlers[NGX_HTTP_OPENBANK_SYNC_DEL] = ngx_http_openbank_sync_pair_del;

    if (kind != NGX_HTTP_OPENBANK_SYNC_REGISTRY) {
        handlers[NGX_HTTP_OPENBANK_SYNC_PUT] = NULL;
    }

    if (ngx_http_openbank_journal_parse(records->data, records->len,
                                        handlers, 3, sc)
        == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    /* the array may have moved: the count's element again */

    count = (ngx_str_t *) sc->args.elts + before - 1;

    p = ngx_pnalloc(sc->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    count->data = p;
    count->len = ngx_sprintf(p, "%ui", (sc->args.nelts - before) / 2) - p;

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_sync_pair_put(void *data, u_char *payload, size_t len)
{
    ngx_http_openbank_sync_call_t *sc = data;

    u_char                            *p;
    ngx_str_t                          key;
    ngx_http_openbank_journal_head_t   head;

    ngx_memcpy(&head, payload, sizeof(head));

    key.data = payload + sizeof(head);
    key.len = head.key_len;

    if (key.data[0] != 'p' && key.data[0] != 'c' && key.data[0] != 's') {
        return NGX_OK;
    }

    len -= sizeof(head) + key.len;

    p = ngx_pnalloc(sc->pool, 1 + len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    p[0] = 'p';
    ngx_memcpy(p + 1, key.data + key.len, len);

    if (ngx_http_openbank_sync_arg(sc, key.data, key.len) == NULL
        || ngx_http_openbank_sync_arg(sc, p, 1 + len) == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a registry deletion, or a revocation (the same type, 2) */

static ngx_int_t
ngx_http_openbank_sync_pair_del(void *data, u_char *payload, size_t len)
{
    ngx_http_openbank_sync_call_t *sc = data;

    u_char                            *p;
    size_t                             vlen;
    ngx_str_t                          key;
    ngx_http_openbank_journal_head_t   head;

    ngx_memcpy(&head, payload, sizeof(head));

    key.data = payload + sizeof(head);
    key.len = head.key_len;
    vlen = len - sizeof(head) - key.len;

    if (sc->kind == NGX_HTTP_OPENBANK_SYNC_REGISTRY) {
        if (key.data[0] != 'p' && key.data[0] != 'c' && key.data[0] != 's')
        {
            return NGX_OK;
        }

        return (ngx_http_openbank_sync_arg(sc, key.data, key.len) == NULL
                || ngx_http_openbank_sync_arg(sc, (u_char *) "d", 1) == NULL)
               ? NGX_ERROR : NGX_OK;
    }

    if (vlen != NGX_HTTP_OPENBANK_HASH_LEN) {
        return NGX_OK;
    }

    /* the member: the token's hash in hex, then the jti */

    p = ngx_pnalloc(sc->pool, 2 * vlen + key.len + NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_hex_dump(p, key.data + key.len, vlen);
    ngx_memcpy(p + 2 * vlen, key.data, key.len);

    if (ngx_http_openbank_sync_arg(sc, p, 2 * vlen + key.len) == NULL) {
        return NGX_ERROR;
    }

    p += 2 * vlen + key.len;

    if (ngx_http_openbank_sync_arg(sc, p,
                                   ngx_sprintf(p, "%uL", head.expire) - p)
        == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_openbank_sync_published(void *data, redisReply *reply)
{
    ngx_http_openbank_sync_call_t *sc = data;

    ngx_int_t    n;
    ngx_str_t   *k;
    ngx_uint_t   i;

    ngx_http_openbank_sync_busy = 0;
    ngx_http_openbank_sync_current = NULL;

    if (reply == NULL || reply->type != REDIS_REPLY_STRING) {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "openbank: the publication of changes failed: "
                          "redis answered \"%*s\"",
                          ngx_min(reply->len, 200), reply->str);
        }

        ngx_http_openbank_sync_note(NGX_HTTP_OPENBANK_SYNC_FAILED, 0, NULL);
        ngx_destroy_pool(sc->pool);
        return;
    }

    /* published: out of the queue */

    k = sc->sent.elts;

    for (i = 0; i < sc->sent.nelts; i++) {
        (void) ngx_http_openbank_store_delete(ngx_http_openbank_sync_zone,
                                              NGX_HTTP_OPENBANK_TABLE_SYNC,
                                              &k[i]);
    }

    ngx_http_openbank_sync_journal(NGX_HTTP_OPENBANK_SYNC_DEL, k,
                                   sc->sent.nelts, NULL, 0, ngx_cycle->log);

    n = -(ngx_int_t) sc->sent.nelts;

    (void) ngx_http_openbank_store_update(ngx_http_openbank_sync_zone,
                                  NGX_HTTP_OPENBANK_TABLE_SYNC,
                                  &ngx_http_openbank_sync_state_key, 0, 0,
                                  ngx_http_openbank_sync_count, &n);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "openbank sync: %ui changes published", sc->sent.nelts);

    n = sc->sent.nelts;
    ngx_destroy_pool(sc->pool);

    ngx_http_openbank_sync_note(NGX_HTTP_OPENBANK_SYNC_PUBLISHED, n, NULL);

    /* the rest, or the read, at once */

    if (ngx_http_openbank_sync_ev.timer_set) {
        ngx_del_timer(&ngx_http_openbank_sync_ev);
    }

    ngx_add_timer(&ngx_http_openbank_sync_ev, 1);
}


static ngx_int_t
ngx_http_openbank_sync_poll(void)
{
    u_char                          *p;
    ngx_http_openbank_sync_call_t   *sc;
    ngx_http_openbank_sync_state_t   st;

    if (ngx_http_openbank_sync_read_state(&st) != NGX_OK) {
        return NGX_BUSY;
    }

    sc = ngx_http_openbank_sync_call_new();
    if (sc == NULL) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(sc->pool, NGX_HTTP_OPENBANK_SYNC_ID_MAX + NGX_INT64_LEN);
    if (p == NULL) {
        ngx_destroy_pool(sc->pool);
        return NGX_ERROR;
    }

    ngx_memcpy(p, st.last, st.last_len);
    (void) ngx_http_openbank_sync_arg(sc, p, st.last_len);
    (void) ngx_http_openbank_sync_arg(sc,
                                  (u_char *) NGX_HTTP_OPENBANK_SYNC_READ,
                                  sizeof(NGX_HTTP_OPENBANK_SYNC_READ) - 1);
    p += NGX_HTTP_OPENBANK_SYNC_ID_MAX;
    (void) ngx_http_openbank_sync_arg(sc, p,
                                  ngx_sprintf(p, "%uL",
                                              ngx_http_openbank_now_ms())
                                  - p);

    if (sc->args.nelts != 7) {
        ngx_destroy_pool(sc->pool);
        return NGX_ERROR;
    }

    return ngx_http_openbank_sync_call_start(sc);
}


static void
ngx_http_openbank_sync_polled(void *data, redisReply *reply)
{
    ngx_http_openbank_sync_call_t *sc = data;

    size_t                           i;
    ngx_uint_t                       more;
    redisReply                      *entries, *last;
    ngx_http_openbank_sync_state_t   st;

    ngx_http_openbank_sync_busy = 0;
    ngx_http_openbank_sync_current = NULL;
    ngx_destroy_pool(sc->pool);

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 2 || reply->element[0]->type
                                  != REDIS_REPLY_STRING
        || reply->element[0]->len != 1)
    {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "openbank: the read of changes failed: redis "
                          "answered \"%*s\"",
                          ngx_min(reply->len, 200), reply->str);
        }

        ngx_http_openbank_sync_note(NGX_HTTP_OPENBANK_SYNC_FAILED, 0, NULL);
        return;
    }

    if (ngx_http_openbank_sync_read_state(&st) != NGX_OK) {
        return;
    }

    if (reply->element[0]->str[0] == 's') {

        /*
         * a change queued meanwhile is not in it: published first, and
         * the snapshot read again, so that it does not undo the change
         */

        if (st.queued) {
            return;
        }

        if (ngx_http_openbank_sync_snapshot(reply) != NGX_OK) {
            ngx_http_openbank_sync_note(NGX_HTTP_OPENBANK_SYNC_FAILED, 0, NULL);
            return;
        }

        ngx_http_openbank_sync_note(NGX_HTTP_OPENBANK_SYNC_READ_OK, 0,
                                    reply->element[1]);
        return;
    }

    entries = reply->element[1];

    if (entries->type != REDIS_REPLY_ARRAY) {
        ngx_http_openbank_sync_note(NGX_HTTP_OPENBANK_SYNC_FAILED, 0, NULL);
        return;
    }

    last = NULL;

    for (i = 0; i < entries->elements; i++) {
        if (entries->element[i]->type != REDIS_REPLY_ARRAY
            || entries->element[i]->elements != 2
            || entries->element[i]->element[0]->type != REDIS_REPLY_STRING
            || entries->element[i]->element[0]->len
               > NGX_HTTP_OPENBANK_SYNC_ID_MAX)
        {
            continue;
        }

        (void) ngx_http_openbank_sync_entry(entries->element[i], st.origin);

        last = entries->element[i]->element[0];
    }

    more = (entries->elements == (size_t) ngx_atoi(
                                   (u_char *) NGX_HTTP_OPENBANK_SYNC_READ,
                                   sizeof(NGX_HTTP_OPENBANK_SYNC_READ) - 1));

    ngx_http_openbank_sync_note(NGX_HTTP_OPENBANK_SYNC_READ_OK, 0, last);

    if (more) {
        if (ngx_http_openbank_sync_ev.timer_set) {
            ngx_del_timer(&ngx_http_openbank_sync_ev);
        }

        ngx_add_timer(&ngx_http_openbank_sync_ev, 1);
    }
}


/* one entry of the stream: ["id", ["o", origin, "t", kind, "d", records]] */

static ngx_int_t
ngx_http_openbank_sync_entry(redisReply *entry, u_char *origin)
{
    size_t       i;
    ngx_int_t    rc;
    redisReply  *f, *o, *t, *d;

    f = entry->element[1];

    if (f->type != REDIS_REPLY_ARRAY) {
        return NGX_DECLINED;
    }

    o = NULL;
    t = NULL;
    d = NULL;

    for (i = 0; i + 1 < f->elements; i += 2) {
        if (f->element[i]->type != REDIS_REPLY_STRING
            || f->element[i]->len != 1
            || f->element[i + 1]->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        switch (f->element[i]->str[0]) {
        case 'o':
            o = f->element[i + 1];
            break;
        case 't':
            t = f->element[i + 1];
            break;
        case 'd':
            d = f->element[i + 1];
            break;
        }
    }

    if (o == NULL || t == NULL || d == NULL || t->len != 1) {
        return NGX_DECLINED;
    }

    if (o->len == 16 && ngx_memcmp(o->str, origin, 16) == 0) {
        /* this gateway's own change: applied already */
        return NGX_OK;
    }

    switch (t->str[0]) {

    case NGX_HTTP_OPENBANK_SYNC_REGISTRY:
        rc = ngx_http_openbank_sync_registry((ngx_cycle_t *) ngx_cycle,
                                             (u_char *) d->str, d->len, 0);
        break;

    case NGX_HTTP_OPENBANK_SYNC_REVOKED:
        rc = ngx_http_openbank_sync_revoked((ngx_cycle_t *) ngx_cycle,
                                            (u_char *) d->str, d->len, 0);
        break;

    default:
        rc = NGX_DECLINED;
    }

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "openbank: a change of the cluster (entry %*s) is "
                      "malformed: ignored",
                      ngx_min(entry->element[0]->len, 64),
                      entry->element[0]->str);

        ngx_http_openbank_sync_note(NGX_HTTP_OPENBANK_SYNC_REFUSED, 0, NULL);
        return rc;
    }

    ngx_http_openbank_sync_note(NGX_HTTP_OPENBANK_SYNC_APPLIED, 0, NULL);
    return NGX_OK;
}


/*
 * ["s", last id, [registry key, value, ...], [member, expiry, ...]]:
 * the registry as framed records, put over this gateway's, and the
 * revocations still in force.
 */

static ngx_int_t
ngx_http_openbank_sync_snapshot(redisReply *reply)
{
    u_char                            *buf, *p;
    size_t                             len, i;
    uint64_t                           expire;
    ngx_int_t                          rc;
    ngx_str_t                          key;
    redisReply                        *reg, *rev, *k, *v;
    u_char                             hash[NGX_HTTP_OPENBANK_HASH_LEN];

    if (reply->elements != 4
        || reply->element[1]->type != REDIS_REPLY_STRING
        || reply->element[1]->len > NGX_HTTP_OPENBANK_SYNC_ID_MAX
        || reply->element[2]->type != REDIS_REPLY_ARRAY
        || reply->element[3]->type != REDIS_REPLY_ARRAY)
    {
        return NGX_ERROR;
    }

    reg = reply->element[2];
    rev = reply->element[3];

    len = 0;

    for (i = 0; i + 1 < reg->elements; i += 2) {
        k = reg->element[i];
        v = reg->element[i + 1];

        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING
            || k->len == 0 || k->len > 0xffff)
        {
            return NGX_ERROR;
        }

        len += NGX_HTTP_OPENBANK_JOURNAL_FRAME
               + sizeof(ngx_http_openbank_journal_head_t) + k->len + v->len;
    }

    for (i = 0; i + 1 < rev->elements; i += 2) {
        k = rev->element[i];

        if (k->type != REDIS_REPLY_STRING) {
            return NGX_ERROR;
        }

        len += NGX_HTTP_OPENBANK_JOURNAL_FRAME
               + sizeof(ngx_http_openbank_journal_head_t) + k->len;
    }

    buf = ngx_alloc(len + 1, ngx_cycle->log);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    p = buf;

    for (i = 0; i + 1 < reg->elements; i += 2) {
        key.data = (u_char *) reg->element[i]->str;
        key.len = reg->element[i]->len;

        p = ngx_http_openbank_journal_record(p, NGX_HTTP_OPENBANK_SYNC_PUT,
                                    0, &key,
                                    (u_char *) reg->element[i + 1]->str,
                                    reg->element[i + 1]->len);
    }

    if (reg->elements) {
        rc = ngx_http_openbank_sync_registry((ngx_cycle_t *) ngx_cycle, buf,
                                             p - buf, 1);
        if (rc != NGX_OK) {
            ngx_free(buf);
            return NGX_ERROR;
        }

    } else if (ngx_http_openbank_sync_seed() != NGX_OK) {
        ngx_free(buf);
        return NGX_ERROR;
    }

    p = buf;

    for (i = 0; i + 1 < rev->elements; i += 2) {
        k = rev->element[i];
        v = rev->element[i + 1];

        if (k->len <= 2 * NGX_HTTP_OPENBANK_HASH_LEN
            || k->len > 2 * NGX_HTTP_OPENBANK_HASH_LEN + 255
            || v->type != REDIS_REPLY_STRING
            || ngx_http_openbank_sync_unhex(hash, (u_char *) k->str,
                                       2 * NGX_HTTP_OPENBANK_HASH_LEN)
               != NGX_OK)
        {
            continue;
        }

        expire = (uint64_t) ngx_atoi((u_char *) v->str, v->len);

        key.data = (u_char *) k->str + 2 * NGX_HTTP_OPENBANK_HASH_LEN;
        key.len = k->len - 2 * NGX_HTTP_OPENBANK_HASH_LEN;

        p = ngx_http_openbank_journal_record(p, NGX_HTTP_OPENBANK_SYNC_DEL,
                                             expire, &key, hash,
                                             sizeof(hash));
    }

    if (p != buf) {
        rc = ngx_http_openbank_sync_revoked((ngx_cycle_t *) ngx_cycle, buf,
                                            p - buf, 1);
    }

    ngx_free(buf);

    ngx_http_openbank_sync_note(NGX_HTTP_OPENBANK_SYNC_SNAPSHOT, 0, NULL);

    ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                  "openbank: the cluster's registry (%uz records) and "
                  "revocations (%uz) applied from its snapshot",
                  reg->elements / 2, rev->elements / 2);

    return (rc == NGX_ERROR) ? NGX_ERROR : NGX_OK;
}


/*
 * The cluster has no registry yet: this gateway's (if any) is queued as
 * one change, to be the cluster's first, rather than deleted.
 */

static ngx_int_t
ngx_http_openbank_sync_seed(void)
{
    uint64_t     seq;
    ngx_str_t    records;
    ngx_pool_t  *pool;

    pool = ngx_create_pool(4096, ngx_cycle->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_sync_records((ngx_cycle_t *) ngx_cycle, pool,
                                       &records)
        != NGX_OK)
    {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    if (records.len) {
        seq = 0;

        (void) ngx_http_openbank_store_atomic(ngx_http_openbank_sync_zone,
                                              ngx_http_openbank_sync_seq,
                                              &seq);
        if (seq) {
            ngx_http_openbank_sync_queue(ngx_http_openbank_sync_obmcf, seq,
                                         NGX_HTTP_OPENBANK_SYNC_REGISTRY,
                                         records.data, records.len,
                                         ngx_cycle->log);

            ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                          "openbank: the cluster has no registry yet: this "
                          "gateway's is published as its first");
        }
    }

    ngx_destroy_pool(pool);

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_sync_seq(ngx_http_openbank_zone_t *zone, void *data)
{
    uint64_t  *seq = data;

    *seq = ngx_http_openbank_sync_reserve(zone);

    return NGX_OK;
}


/* the bookkeeping after a call: what it did, and the last id applied */

typedef struct {
    ngx_uint_t                    what;
    ngx_uint_t                    n;
    redisReply                   *last;
} ngx_http_openbank_sync_what_t;


static void
ngx_http_openbank_sync_note(ngx_uint_t what, ngx_uint_t n, redisReply *last)
{
    ngx_http_openbank_sync_what_t  w;

    w.what = what;
    w.n = n;
    w.last = last;

    (void) ngx_http_openbank_store_update(ngx_http_openbank_sync_zone,
                                  NGX_HTTP_OPENBANK_TABLE_SYNC,
                                  &ngx_http_openbank_sync_state_key, 0, 0,
                                  ngx_http_openbank_sync_update, &w);
}


static ngx_int_t
ngx_http_openbank_sync_update(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_sync_what_t *w = data;

    ngx_http_openbank_sync_state_t  st;

    if (sv->len != sizeof(st)) {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    ngx_memcpy(&st, sv->value, sizeof(st));

    switch (w->what) {

    case NGX_HTTP_OPENBANK_SYNC_PUBLISHED:
        st.published += w->n;
        st.last_publish = sv->now;
        break;

    case NGX_HTTP_OPENBANK_SYNC_APPLIED:
        st.applied++;
        break;

    case NGX_HTTP_OPENBANK_SYNC_SNAPSHOT:
        st.snapshots++;
        break;

    case NGX_HTTP_OPENBANK_SYNC_READ_OK:
        st.last_ok = sv->now;

        if (w->last && w->last->len <= NGX_HTTP_OPENBANK_SYNC_ID_MAX) {
            st.last_len = w->last->len;
            ngx_memcpy(st.last, w->last->str, w->last->len);
        }

        break;

    default: /* FAILED, REFUSED */
        st.failures++;
    }

    ngx_memcpy(sv->value, &st, sizeof(st));

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


static ngx_int_t
ngx_http_openbank_sync_unhex(u_char *dst, u_char *src, size_t len)
{
    ngx_int_t  n;

    for ( /* void */ ; len >= 2; len -= 2, src += 2) {
        n = ngx_hextoi(src, 2);

        if (n == NGX_ERROR) {
            return NGX_ERROR;
        }

        *dst++ = (u_char) n;
    }

    return NGX_OK;
}


static int ngx_libc_cdecl
ngx_http_openbank_sync_cmp(const void *a, const void *b)
{
    const ngx_str_t  *x = a, *y = b;

    return ngx_memn2cmp(x->data, y->data, x->len, y->len);
}


#define NGX_HTTP_OPENBANK_SYNC_JSON                                         \
    (sizeof(",\"sync\":{\"state\":\"behind\",\"queued\":,\"published\":,"   \
            "\"applied\":,\"snapshots\":,\"failures\":,"                   \
            "\"last_read_ms_ago\":,\"origin\":\"\"}") - 1                   \
     + 6 * NGX_INT64_LEN + 16)


size_t
ngx_http_openbank_sync_status_len(ngx_http_openbank_main_conf_t *obmcf)
{
    return (obmcf->cluster && ngx_http_openbank_sync_on)
           ? NGX_HTTP_OPENBANK_SYNC_JSON : 0;
}


u_char *
ngx_http_openbank_sync_status(u_char *p, ngx_http_openbank_main_conf_t *obmcf)
{
    uint64_t                         now, ago;
    ngx_http_openbank_sync_state_t   st;

    if (obmcf->cluster == NULL || !ngx_http_openbank_sync_on) {
        return p;
    }

    (void) ngx_http_openbank_sync_read_state(&st);

    now = ngx_http_openbank_now_ms();
    ago = (st.last_ok && now > st.last_ok) ? now - st.last_ok : 0;

    p = ngx_sprintf(p, ",\"sync\":{\"state\":\"%s\",\"queued\":%uL,"
                    "\"published\":%uL,\"applied\":%uL,\"snapshots\":%uL,"
                    "\"failures\":%uL,",
                    (st.queued == 0 && st.last_ok
                     && ago <= NGX_HTTP_OPENBANK_SYNC_FRESH)
                    ? "in_sync" : "behind",
                    st.queued, st.published, st.applied, st.snapshots,
                    st.failures);

    if (st.last_ok) {
        p = ngx_sprintf(p, "\"last_read_ms_ago\":%uL,", ago);

    } else {
        p = ngx_sprintf(p, "\"last_read_ms_ago\":null,");
    }

    return ngx_sprintf(p, "\"origin\":\"%*s\"}", (size_t) 16, st.origin);
}


#define NGX_HTTP_OPENBANK_SYNC_METRICS                                      \
    "# HELP openbank_cluster_changes_queued Changes of this gateway not "   \
    "published yet.\n"                                                      \
    "# TYPE openbank_cluster_changes_queued gauge\n"                        \
    "openbank_cluster_changes_queued %uL\n"                                 \
    "# HELP openbank_cluster_changes_published_total Changes of this "      \
    "gateway published to the cluster.\n"                                   \
    "# TYPE openbank_cluster_changes_published_total counter\n"             \
    "openbank_cluster_changes_published_total %uL\n"                        \
    "# HELP openbank_cluster_changes_applied_total Changes of other "       \
    "gateways applied here.\n"                                              \
    "# TYPE openbank_cluster_changes_applied_total counter\n"               \
    "openbank_cluster_changes_applied_total %uL\n"                          \
    "# HELP openbank_cluster_sync_failures_total Publications and reads "   \
    "of changes that failed.\n"                                             \
    "# TYPE openbank_cluster_sync_failures_total counter\n"                 \
    "openbank_cluster_sync_failures_total %uL\n"


size_t
ngx_http_openbank_sync_metrics_len(ngx_http_openbank_main_conf_t *obmcf)
{
    return (obmcf->cluster && ngx_http_openbank_sync_on)
           ? sizeof(NGX_HTTP_OPENBANK_SYNC_METRICS) + 4 * NGX_INT64_LEN : 0;
}


u_char *
ngx_http_openbank_sync_metrics(u_char *p,
    ngx_http_openbank_main_conf_t *obmcf)
{
    ngx_http_openbank_sync_state_t  st;

    if (obmcf->cluster == NULL || !ngx_http_openbank_sync_on) {
        return p;
    }

    (void) ngx_http_openbank_sync_read_state(&st);

    return ngx_sprintf(p, NGX_HTTP_OPENBANK_SYNC_METRICS, st.queued,
                       st.published, st.applied, st.failures);
}
