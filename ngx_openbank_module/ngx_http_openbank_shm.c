
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The shared zone ("openbank_zone") and the one keyed record store in it
 * that every shared structure uses: rate and quota counters, caches,
 * replay sets, idempotency records.  A record has a table (what it is),
 * a key, a value, an expiry; its table says whether it may be evicted
 * before it expires (caches) or not (everything that protects money or
 * replays).  When the zone is full and nothing may go, creation fails
 * and the caller refuses the request: never a silent acceptance.
 *
 * The store owns the zone's lock: callers read a copy of a value, or
 * change it in a handler run under the lock (docs/architecture.md, "The
 * shared zone").  Every operation may also run inside the handler of
 * ngx_http_openbank_store_atomic(), which makes several of them one.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_util.h>


#define NGX_HTTP_OPENBANK_ZONE_MAGIC    0x4f42000000000008ULL
#define NGX_HTTP_OPENBANK_ZONE_MIN      (128 * 1024)

/* one hash bucket (a pointer) for each this many bytes of the zone */
#define NGX_HTTP_OPENBANK_ZONE_BUCKET   256
/* evictable records freed at once, from the tail of their table's queue */
#define NGX_HTTP_OPENBANK_RECLAIM       32


typedef struct ngx_http_openbank_record_s  ngx_http_openbank_record_t;

struct ngx_http_openbank_record_s {
    ngx_http_openbank_record_t   *next;        /* in its hash bucket */
    ngx_queue_t                   queue;       /* in its table's queue */
    uint64_t                      expire;      /* unix ms, 0: never */
    uint32_t                      hash;        /* of table and key */
    uint32_t                      value_len;
    u_short                       key_len;
    u_char                        table;       /* NGX_HTTP_OPENBANK_TABLE_* */
    u_char                        pad[5];      /* data on 8 bytes */
    u_char                        data[1];     /* key, aligned, value */
};


typedef struct {
    uint64_t                      magic;       /* layout version */
    ngx_http_openbank_record_t  **buckets;
    ngx_uint_t                    mask;        /* buckets - 1 */
    ngx_uint_t                    records;
    time_t                        started;     /* when the zone was made */
                                               /* least recently used last */
    ngx_queue_t                   queues[NGX_HTTP_OPENBANK_TABLE_N];
} ngx_http_openbank_sh_t;


struct ngx_http_openbank_zone_s {
    ngx_http_openbank_sh_t       *sh;
    ngx_slab_pool_t              *shpool;
    ngx_uint_t                    locked;      /* by this process, now */
};


static ngx_int_t ngx_http_openbank_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static uint32_t ngx_http_openbank_record_hash(ngx_uint_t table,
    ngx_str_t *key);
static ngx_uint_t ngx_http_openbank_store_lock(ngx_http_openbank_zone_t *zone);
static void ngx_http_openbank_store_unlock(ngx_http_openbank_zone_t *zone,
    ngx_uint_t locked);
static ngx_http_openbank_record_t *ngx_http_openbank_record_lookup(
    ngx_http_openbank_zone_t *zone, ngx_uint_t table, ngx_str_t *key,
    uint64_t now);
static ngx_http_openbank_record_t *ngx_http_openbank_record_create(
    ngx_http_openbank_zone_t *zone, ngx_uint_t table, ngx_str_t *key,
    size_t value_len, uint64_t expire, uint64_t now);
static void ngx_http_openbank_record_delete(ngx_http_openbank_zone_t *zone,
    ngx_http_openbank_record_t *rec);
static u_char *ngx_http_openbank_record_value(ngx_http_openbank_record_t *rec);
static ngx_uint_t ngx_http_openbank_zone_reclaim(
    ngx_http_openbank_zone_t *zone, uint64_t now);
static ngx_uint_t ngx_http_openbank_zone_sweep(ngx_http_openbank_zone_t *zone,
    uint64_t now);


/*
 * Caches may go before they expire, to make room; everything else only
 * by expiry.
 */

static u_char  ngx_http_openbank_evictable[NGX_HTTP_OPENBANK_TABLE_N] = {
    [NGX_HTTP_OPENBANK_TABLE_TOKEN] = 1,
};

static uint64_t  ngx_http_openbank_swept;


char *
ngx_http_openbank_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_openbank_main_conf_t *obmcf = conf;

    ssize_t                    size;
    ngx_str_t                 *value;
    ngx_uint_t                 i;
    ngx_shm_zone_t            *shm_zone, *old;
    ngx_list_part_t           *part;
    ngx_http_openbank_zone_t  *zone;

    if (obmcf->shm_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_openbank_valid_name(&value[1]) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone name \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    size = ngx_parse_size(&value[2]);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[2]);
        return NGX_CONF_ERROR;
    }

    if (size < NGX_HTTP_OPENBANK_ZONE_MIN) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\": zone \"%V\" needs "
                           "at least %dk", &value[2], &value[1],
                           NGX_HTTP_OPENBANK_ZONE_MIN / 1024);
        return NGX_CONF_ERROR;
    }

    /*
     * nginx would quietly make a new, empty zone when the size changes on
     * reload, and every counter in it would be lost: refuse instead.
     */

    part = &((ngx_cycle_t *) ngx_cycle)->shared_memory.part;
    old = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            old = part->elts;
            i = 0;
        }

        if (old[i].tag == &ngx_http_openbank_module
            && old[i].shm.name.len == value[1].len
            && ngx_strncmp(old[i].shm.name.data, value[1].data,
                           value[1].len) == 0
            && old[i].shm.size != (size_t) size)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "zone \"%V\" cannot change its size on "
                               "reload (from %uz to %z): stop and start "
                               "nginx to resize it", &value[1],
                               old[i].shm.size, size);
            return NGX_CONF_ERROR;
        }
    }

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_openbank_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &value[1], size,
                                     &ngx_http_openbank_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used", &value[1]);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_openbank_init_zone;
    shm_zone->data = zone;

    obmcf->shm_zone = shm_zone;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_openbank_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_openbank_zone_t  *ozone = data;

    size_t                     len;
    ngx_uint_t                 n;
    ngx_http_openbank_zone_t  *zone;

    zone = shm_zone->data;

    if (ozone) {
        if (ozone->sh->magic != NGX_HTTP_OPENBANK_ZONE_MAGIC) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "zone \"%V\" was made by another version of the "
                          "openbank module: stop and start nginx",
                          &shm_zone->shm.name);
            return NGX_ERROR;
        }

        zone->sh = ozone->sh;
        zone->shpool = ozone->shpool;

        return NGX_OK;
    }

    zone->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        zone->sh = zone->shpool->data;
        return NGX_OK;
    }

    zone->sh = ngx_slab_alloc(zone->shpool, sizeof(ngx_http_openbank_sh_t));
    if (zone->sh == NULL) {
        return NGX_ERROR;
    }

    zone->shpool->data = zone->sh;

    ngx_memzero(zone->sh, sizeof(ngx_http_openbank_sh_t));

    zone->sh->magic = NGX_HTTP_OPENBANK_ZONE_MAGIC;
    zone->sh->started = ngx_time();

    /*
     * The index is a hash table of chained records, sized once by the
     * zone: a power of two of buckets, a lookup a few cache lines whatever
     * the number of records (a tree of a million nonces is twenty).
     */

    n = 256;

    while (n * 2 * NGX_HTTP_OPENBANK_ZONE_BUCKET <= shm_zone->shm.size) {
        n *= 2;
    }

    zone->sh->buckets = ngx_slab_calloc(zone->shpool,
                                     n * sizeof(ngx_http_openbank_record_t *));
    if (zone->sh->buckets == NULL) {
        return NGX_ERROR;
    }

    zone->sh->mask = n - 1;

    for (n = 0; n < NGX_HTTP_OPENBANK_TABLE_N; n++) {
        ngx_queue_init(&zone->sh->queues[n]);
    }

    len = sizeof(" in openbank zone \"\"") + shm_zone->shm.name.len;

    zone->shpool->log_ctx = ngx_slab_alloc(zone->shpool, len);
    if (zone->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(zone->shpool->log_ctx, " in openbank zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is the caller's to report, with what it means */

    zone->shpool->log_nomem = 0;

    return NGX_OK;
}


static uint32_t
ngx_http_openbank_record_hash(ngx_uint_t table, ngx_str_t *key)
{
    return ngx_murmur_hash2(key->data, key->len) ^ (table * 0x9e3779b1);
}


uint64_t
ngx_http_openbank_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (uint64_t) tp->sec * 1000 + tp->msec;
}


/*
 * The lock is taken unless this process holds it already: an operation
 * inside the handler of ngx_http_openbank_store_atomic() is part of it.
 */

static ngx_uint_t
ngx_http_openbank_store_lock(ngx_http_openbank_zone_t *zone)
{
    if (zone->locked) {
        return 0;
    }

    ngx_shmtx_lock(&zone->shpool->mutex);
    zone->locked = 1;

    return 1;
}


static void
ngx_http_openbank_store_unlock(ngx_http_openbank_zone_t *zone,
    ngx_uint_t locked)
{
    if (locked) {
        zone->locked = 0;
        ngx_shmtx_unlock(&zone->shpool->mutex);
    }
}


ngx_int_t
ngx_http_openbank_store_atomic(ngx_http_openbank_zone_t *zone,
    ngx_http_openbank_store_atomic_pt handler, void *data)
{
    ngx_int_t   rc;
    ngx_uint_t  locked;

    locked = ngx_http_openbank_store_lock(zone);
    rc = handler(zone, data);
    ngx_http_openbank_store_unlock(zone, locked);

    return rc;
}


ssize_t
ngx_http_openbank_store_get(ngx_http_openbank_zone_t *zone, ngx_uint_t table,
    ngx_str_t *key, void *buf, size_t len, uint64_t *expire)
{
    size_t                       n;
    ngx_uint_t                   locked;
    ngx_http_openbank_record_t  *rec;

    locked = ngx_http_openbank_store_lock(zone);

    rec = ngx_http_openbank_record_lookup(zone, table, key,
                                          ngx_http_openbank_now_ms());
    if (rec == NULL) {
        ngx_http_openbank_store_unlock(zone, locked);
        return NGX_DECLINED;
    }

    n = ngx_min(len, rec->value_len);

    if (n) {
        ngx_memcpy(buf, ngx_http_openbank_record_value(rec), n);
    }

    if (expire) {
        *expire = rec->expire;
    }

    n = rec->value_len;

    ngx_http_openbank_store_unlock(zone, locked);

    return n;
}


/*
 * The handler sees the value in the zone and may change it and its
 * expiry; with create_len, an absent record is made first (value zeroed,
 * is_new set).  It returns STORE_KEEP, STORE_DELETE, or STORE_REFUSE
 * when it changed nothing and the caller is to refuse the request.  The
 * operations it runs itself must make no record (create_len 0): making
 * room could free the record it holds.
 */

ngx_int_t
ngx_http_openbank_store_update(ngx_http_openbank_zone_t *zone,
    ngx_uint_t table, ngx_str_t *key, size_t create_len, uint64_t expire,
    ngx_http_openbank_store_handler_pt handler, void *data)
{
    ngx_int_t                         rc;
    ngx_uint_t                        locked;
    ngx_http_openbank_record_t       *rec;
    ngx_http_openbank_store_value_t   sv;

    sv.now = ngx_http_openbank_now_ms();
    sv.is_new = 0;

    locked = ngx_http_openbank_store_lock(zone);

    rec = ngx_http_openbank_record_lookup(zone, table, key, sv.now);

    if (rec == NULL) {
        if (create_len == 0) {
            ngx_http_openbank_store_unlock(zone, locked);
            return NGX_HTTP_OPENBANK_STORE_ABSENT;
        }

        rec = ngx_http_openbank_record_create(zone, table, key, create_len,
                                              expire, sv.now);
        if (rec == NULL) {
            ngx_http_openbank_store_unlock(zone, locked);
            return NGX_HTTP_OPENBANK_STORE_FULL;
        }

        sv.is_new = 1;
    }

    sv.key.len = rec->key_len;
    sv.key.data = rec->data;
    sv.value = ngx_http_openbank_record_value(rec);
    sv.len = rec->value_len;
    sv.expire = rec->expire;

    rc = handler(&sv, data);

    if (rc == NGX_HTTP_OPENBANK_STORE_DELETE) {
        ngx_http_openbank_record_delete(zone, rec);

    } else {
        rec->expire = sv.expire;
    }

    ngx_http_openbank_store_unlock(zone, locked);

    return rc;
}


/*
 * A value of any size, in place of the record's: the old record goes
 * only once the new one is made, so a full zone keeps it.
 */

ngx_int_t
ngx_http_openbank_store_set(ngx_http_openbank_zone_t *zone, ngx_uint_t table,
    ngx_str_t *key, void *value, size_t len, uint64_t expire)
{
    uint64_t                     now;
    ngx_uint_t                   locked;
    ngx_http_openbank_record_t  *old, *rec;

    now = ngx_http_openbank_now_ms();

    locked = ngx_http_openbank_store_lock(zone);

    old = ngx_http_openbank_record_lookup(zone, table, key, now);

    if (old && ngx_http_openbank_evictable[table]) {
        /* making room could free it: a cache loses nothing */
        ngx_http_openbank_record_delete(zone, old);
        old = NULL;
    }

    rec = ngx_http_openbank_record_create(zone, table, key, len, expire, now);
    if (rec == NULL) {
        ngx_http_openbank_store_unlock(zone, locked);
        return NGX_HTTP_OPENBANK_STORE_FULL;
    }

    ngx_memcpy(ngx_http_openbank_record_value(rec), value, len);

    if (old) {
        ngx_http_openbank_record_delete(zone, old);
    }

    ngx_http_openbank_store_unlock(zone, locked);

    return NGX_OK;
}


/* insert if absent: NGX_DECLINED when the key is there already */

ngx_int_t
ngx_http_openbank_store_add(ngx_http_openbank_zone_t *zone, ngx_uint_t table,
    ngx_str_t *key, void *value, size_t len, uint64_t expire)
{
    uint64_t                     now;
    ngx_uint_t                   locked;
    ngx_http_openbank_record_t  *rec;

    now = ngx_http_openbank_now_ms();

    locked = ngx_http_openbank_store_lock(zone);

    if (ngx_http_openbank_record_lookup(zone, table, key, now)) {
        ngx_http_openbank_store_unlock(zone, locked);
        return NGX_DECLINED;
    }

    rec = ngx_http_openbank_record_create(zone, table, key, len, expire, now);
    if (rec == NULL) {
        ngx_http_openbank_store_unlock(zone, locked);
        return NGX_HTTP_OPENBANK_STORE_FULL;
    }

    if (len) {
        ngx_memcpy(ngx_http_openbank_record_value(rec), value, len);
    }

    ngx_http_openbank_store_unlock(zone, locked);

    return NGX_OK;
}


ngx_int_t
ngx_http_openbank_store_delete(ngx_http_openbank_zone_t *zone,
    ngx_uint_t table, ngx_str_t *key)
{
    ngx_uint_t                   locked;
    ngx_http_openbank_record_t  *rec;

    locked = ngx_http_openbank_store_lock(zone);

    rec = ngx_http_openbank_record_lookup(zone, table, key,
                                          ngx_http_openbank_now_ms());
    if (rec) {
        ngx_http_openbank_record_delete(zone, rec);
    }

    ngx_http_openbank_store_unlock(zone, locked);

    return rec ? NGX_OK : NGX_DECLINED;
}


/*
 * Every unexpired record of a table, the most recently used first; the
 * handler may change a value, delete its record, or stop the walk, and
 * runs no other operation.
 */

ngx_int_t
ngx_http_openbank_store_walk(ngx_http_openbank_zone_t *zone, ngx_uint_t table,
    ngx_http_openbank_store_handler_pt handler, void *data)
{
    ngx_int_t                         rc;
    ngx_uint_t                        locked;
    ngx_queue_t                      *q, *next, *queue;
    ngx_http_openbank_record_t       *rec;
    ngx_http_openbank_store_value_t   sv;

    sv.now = ngx_http_openbank_now_ms();
    sv.is_new = 0;
    rc = NGX_OK;

    locked = ngx_http_openbank_store_lock(zone);

    queue = &zone->sh->queues[table];

    for (q = ngx_queue_head(queue);
         q != ngx_queue_sentinel(queue);
         q = next)
    {
        next = ngx_queue_next(q);
        rec = ngx_queue_data(q, ngx_http_openbank_record_t, queue);

        if (rec->expire && rec->expire <= sv.now) {
            continue;
        }

        sv.key.len = rec->key_len;
        sv.key.data = rec->data;
        sv.value = ngx_http_openbank_record_value(rec);
        sv.len = rec->value_len;
        sv.expire = rec->expire;

        rc = handler(&sv, data);

        if (rc == NGX_HTTP_OPENBANK_STORE_DELETE) {
            ngx_http_openbank_record_delete(zone, rec);
            continue;
        }

        rec->expire = sv.expire;

        if (rc == NGX_HTTP_OPENBANK_STORE_STOP) {
            break;
        }
    }

    ngx_http_openbank_store_unlock(zone, locked);

    return (rc == NGX_HTTP_OPENBANK_STORE_STOP) ? NGX_DONE : NGX_OK;
}


ngx_uint_t
ngx_http_openbank_store_records(ngx_http_openbank_zone_t *zone)
{
    ngx_uint_t  n, locked;

    locked = ngx_http_openbank_store_lock(zone);
    n = zone->sh->records;
    ngx_http_openbank_store_unlock(zone, locked);

    return n;
}


time_t
ngx_http_openbank_store_started(ngx_http_openbank_zone_t *zone)
{
    /* written once, when the zone is made */
    return zone->sh->started;
}


static ngx_http_openbank_record_t *
ngx_http_openbank_record_lookup(ngx_http_openbank_zone_t *zone,
    ngx_uint_t table, ngx_str_t *key, uint64_t now)
{
    uint32_t                     hash;
    ngx_queue_t                 *queue;
    ngx_http_openbank_record_t  *rec;

    hash = ngx_http_openbank_record_hash(table, key);

    for (rec = zone->sh->buckets[hash & zone->sh->mask];
         rec;
         rec = rec->next)
    {
        if (rec->hash != hash
            || rec->table != table
            || rec->key_len != key->len
            || ngx_memcmp(rec->data, key->data, key->len) != 0)
        {
            continue;
        }

        if (rec->expire && rec->expire <= now) {
            ngx_http_openbank_record_delete(zone, rec);
            return NULL;
        }

        queue = &zone->sh->queues[table];

        if (ngx_queue_head(queue) != &rec->queue) {
            ngx_queue_remove(&rec->queue);
            ngx_queue_insert_head(queue, &rec->queue);
        }

        return rec;
    }

    return NULL;
}


/*
 * A new record with its value zeroed, or NULL when the zone has no room
 * even after expired (and evictable) records are reclaimed.
 */

static ngx_http_openbank_record_t *
ngx_http_openbank_record_create(ngx_http_openbank_zone_t *zone,
    ngx_uint_t table, ngx_str_t *key, size_t value_len, uint64_t expire,
    uint64_t now)
{
    size_t                        size;
    ngx_http_openbank_record_t   *rec, **bucket;

    if (key->len > 0xffff || value_len > 0xffffffff) {
        return NULL;
    }

    size = offsetof(ngx_http_openbank_record_t, data)
           + ngx_align(key->len, sizeof(uint64_t)) + value_len;

    rec = ngx_slab_alloc_locked(zone->shpool, size);

    if (rec == NULL && ngx_http_openbank_zone_reclaim(zone, now)) {
        rec = ngx_slab_alloc_locked(zone->shpool, size);
    }

    if (rec == NULL && ngx_http_openbank_zone_sweep(zone, now)) {
        rec = ngx_slab_alloc_locked(zone->shpool, size);
    }

    if (rec == NULL) {
        return NULL;
    }

    rec->hash = ngx_http_openbank_record_hash(table, key);
    rec->table = (u_char) table;
    rec->key_len = (u_short) key->len;
    rec->value_len = (uint32_t) value_len;
    rec->expire = expire;

    ngx_memcpy(rec->data, key->data, key->len);
    ngx_memzero(ngx_http_openbank_record_value(rec), value_len);

    bucket = &zone->sh->buckets[rec->hash & zone->sh->mask];
    rec->next = *bucket;
    *bucket = rec;

    ngx_queue_insert_head(&zone->sh->queues[table], &rec->queue);

    zone->sh->records++;

    return rec;
}


static void
ngx_http_openbank_record_delete(ngx_http_openbank_zone_t *zone,
    ngx_http_openbank_record_t *rec)
{
    ngx_http_openbank_record_t  **p;

    for (p = &zone->sh->buckets[rec->hash & zone->sh->mask];
         *p != rec;
         p = &(*p)->next)
    {
        /* void */
    }

    *p = rec->next;

    ngx_queue_remove(&rec->queue);
    ngx_slab_free_locked(zone->shpool, rec);

    zone->sh->records--;
}


static u_char *
ngx_http_openbank_record_value(ngx_http_openbank_record_t *rec)
{
    return rec->data + ngx_align(rec->key_len, sizeof(uint64_t));
}


/* frees the least recently used records of the evictable tables */

static ngx_uint_t
ngx_http_openbank_zone_reclaim(ngx_http_openbank_zone_t *zone, uint64_t now)
{
    ngx_uint_t                   t, freed;
    ngx_queue_t                 *queue;
    ngx_http_openbank_record_t  *rec;

    freed = 0;

    for (t = 0; t < NGX_HTTP_OPENBANK_TABLE_N; t++) {

        if (!ngx_http_openbank_evictable[t]) {
            continue;
        }

        queue = &zone->sh->queues[t];

        while (freed < NGX_HTTP_OPENBANK_RECLAIM && !ngx_queue_empty(queue)) {
            rec = ngx_queue_data(ngx_queue_last(queue),
                                 ngx_http_openbank_record_t, queue);
            ngx_http_openbank_record_delete(zone, rec);
            freed++;
        }
    }

    return freed;
}


/*
 * The other tables lose records only by expiry, and a record that lives
 * for a day or a month is anywhere in its queue: before a caller is told
 * that the zone is full, every expired record of these tables is swept,
 * at most once a second a process.
 */

static ngx_uint_t
ngx_http_openbank_zone_sweep(ngx_http_openbank_zone_t *zone, uint64_t now)
{
    ngx_uint_t                   t, freed;
    ngx_queue_t                 *q, *next, *queue;
    ngx_http_openbank_record_t  *rec;

    if (now - ngx_http_openbank_swept < 1000) {
        return 0;
    }

    ngx_http_openbank_swept = now;
    freed = 0;

    for (t = 0; t < NGX_HTTP_OPENBANK_TABLE_N; t++) {

        if (ngx_http_openbank_evictable[t]) {
            continue;
        }

        queue = &zone->sh->queues[t];

        for (q = ngx_queue_head(queue);
             q != ngx_queue_sentinel(queue);
             q = next)
        {
            next = ngx_queue_next(q);
            rec = ngx_queue_data(q, ngx_http_openbank_record_t, queue);

            if (rec->expire && rec->expire <= now) {
                ngx_http_openbank_record_delete(zone, rec);
                freed++;
            }
        }
    }

    return freed;
}


void
ngx_http_openbank_zone_usage(ngx_shm_zone_t *shm_zone, size_t *size,
    size_t *used)
{
    ngx_slab_pool_t  *shpool;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    *size = shm_zone->shm.size;
    *used = *size - shpool->pfree * ngx_pagesize;
}
