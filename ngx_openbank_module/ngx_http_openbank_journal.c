
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * The module's journals: append-only files of records under
 * "openbank_state", the durable half of state that must survive a
 * restart the moment it is written (idempotency answers, revocations).
 * Nothing here knows what a record means: its owner gives the table of
 * the zone its records live in, what to do with a written batch, and how
 * to dump the zone's records for a compaction; both run inside
 * ngx_http_openbank_store_atomic(), and the journal's own bookkeeping is
 * a record of that table, read and changed through the store only.
 *
 * On disk, each record is a 12-byte frame and its payload:
 *
 *     magic "OBJ1" (4 bytes) | payload length (4) | CRC-32 of payload (4)
 *
 * (the CRC-32 of zlib, gzip and nginx's ngx_crc32_long(): zlib's is faster)
 *
 * in host byte order; a payload starts with ngx_http_openbank_journal_
 * head_t (expiry, key length, the record's type), then the key and the
 * value.  Reading stops at nothing: a torn or corrupt record (a crash in
 * the middle of a write) is skipped by searching for the next frame whose
 * checksum holds, and a torn last record is simply ignored.  The file is
 * written in place: zeros are written ahead of the records, in steps of
 * NGX_HTTP_OPENBANK_JOURNAL_PREALLOC, and the reader passes over zeros
 * (no frame starts with one) without counting them as damage.
 *
 * A worker's event loop never waits for the lock.  The records completed
 * during one pass of the loop are a batch, written with one pwrite() at
 * the end of the records (the tail kept in "<file>.lock", moved under an
 * exclusive flock() of the journal: whole batches never interleave
 * between workers) and one fdatasync() by a thread of nginx's default
 * thread pool, which first takes a shared flock() of "<file>.lock"; each
 * record's handler runs once the batch is durable, or not.  Only a record
 * that cannot wait (an answer without a body) and a batch when no thread
 * can be had are written in the worker, the lock only tried
 * (ngx_http_openbank_journal_commit()).  A compaction rewrites the journal
 * from the zone: the worker takes the lock exclusively without waiting
 * (else it is tried again after the next write), dumps the zone, and a
 * thread replaces the file atomically (ngx_http_openbank_state.c).  A
 * journal found shorter than what was written to it (removed under the
 * gateway), or after a failed write, is rewritten from the zone after
 * the next write that works.  See docs/architecture.md.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_journal.h>
#include <ngx_http_openbank_state.h>
#include <zlib.h>


#define NGX_HTTP_OPENBANK_JOURNAL_MAX       (1024 * 1024 * 1024)
#define NGX_HTTP_OPENBANK_JOURNAL_COMPACT   (4 * 1024 * 1024)
#define NGX_HTTP_OPENBANK_JOURNAL_PREALLOC  (4 * 1024 * 1024)
#define NGX_HTTP_OPENBANK_JOURNAL_ZEROS     65536
#define NGX_HTTP_OPENBANK_JOURNAL_TRIES     64    /* the tail's lock, tried */
#define NGX_HTTP_OPENBANK_JOURNAL_HOLD      100   /* ms, see _journal_hold */


/* one write or one compaction, between the worker and a thread */

typedef struct {
    ngx_http_openbank_journal_t  *journal;
    u_char                       *buf;
    size_t                        len;
    ngx_fd_t                      fd;          /* appends */
    ngx_fd_t                      lock_fd;
    ngx_uid_t                     user;        /* compaction */
    ngx_int_t                     rc;
    ngx_err_t                     err;
    const char                   *failed;      /* the call that failed */
    off_t                         size;        /* before the append */
    uint64_t                      generation;  /* before the append */
    uint64_t                      expected;
    uint64_t                      was_failed;
    unsigned                      compact:1;
    unsigned                      locked:1;
    unsigned                      reopened:1;
    unsigned                      unlocked:1;  /* written without it */
} ngx_http_openbank_journal_io_t;


/*
 * Where the records end in a journal written in place: kept at the start
 * of "<file>.lock", read and written under an exclusive flock() of the
 * journal itself (see ngx_http_openbank_journal_place())
 */

typedef struct {
    uint64_t                      dev;
    uint64_t                      ino;
    uint64_t                      end;
} ngx_http_openbank_journal_tail_t;


/* a compaction's dump of the zone */

typedef struct {
    ngx_http_openbank_journal_io_t    *io;
    ngx_log_t                         *log;
} ngx_http_openbank_journal_dumping_t;


/* what ngx_http_openbank_journal_mark() sets in the bookkeeping */

typedef struct {
    uint64_t                       failed;
    ngx_uint_t                     broken;
} ngx_http_openbank_journal_mark_t;


/* after a write: the batch into the zone and the bookkeeping, at once */

typedef struct {
    ngx_http_openbank_journal_t       *journal;
    ngx_queue_t                       *batch;
    ngx_http_openbank_journal_io_t    *io;
    uint64_t                           now;
    ngx_int_t                          rc;     /* of the bookkeeping */
    ngx_uint_t                         lost;
    ngx_uint_t                         recovered;
    ngx_http_openbank_journal_meta_t   meta;   /* as it is after */
} ngx_http_openbank_journal_finish_t;


static void ngx_http_openbank_journal_tail_reset(
    ngx_http_openbank_journal_t *j, ngx_fd_t fd, ngx_int_t rc, size_t end);
static ngx_int_t ngx_http_openbank_journal_place(
    ngx_http_openbank_journal_io_t *io, struct stat *st, ngx_uint_t wait);
static ngx_int_t ngx_http_openbank_journal_grow(ngx_fd_t fd, off_t from,
    off_t to);
static void ngx_http_openbank_journal_waited(
    ngx_http_openbank_journal_entry_t *e, ngx_int_t rc);
static void ngx_http_openbank_journal_gone(void *data);
static void ngx_http_openbank_journal_flush(ngx_event_t *ev);
static void ngx_http_openbank_journal_hold(ngx_event_t *ev);
static ngx_int_t ngx_http_openbank_journal_prepare(
    ngx_http_openbank_journal_t *j, ngx_queue_t *batch,
    ngx_http_openbank_journal_io_t *io, ngx_log_t *log);
static ngx_uint_t ngx_http_openbank_journal_held(ngx_fd_t fd,
    ngx_str_t *name, struct stat *held);
static void ngx_http_openbank_journal_append(
    ngx_http_openbank_journal_io_t *io, ngx_uint_t wait);
static void ngx_http_openbank_journal_thread(void *data, ngx_log_t *log);
static void ngx_http_openbank_journal_done(ngx_event_t *ev);
static void ngx_http_openbank_journal_finish(ngx_http_openbank_journal_t *j,
    ngx_queue_t *batch, ngx_http_openbank_journal_io_t *io, ngx_log_t *log);
static void ngx_http_openbank_journal_compacted(
    ngx_http_openbank_journal_t *j, ngx_http_openbank_journal_io_t *io,
    ngx_log_t *log);
static ngx_int_t ngx_http_openbank_journal_task(
    ngx_http_openbank_journal_t *j, ngx_log_t *log);
static ngx_int_t ngx_http_openbank_journal_meta_update(
    ngx_http_openbank_journal_t *j, ngx_http_openbank_store_handler_pt handler,
    void *data);
static ngx_int_t ngx_http_openbank_journal_mark(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_journal_finish_atomic(
    ngx_http_openbank_zone_t *zone, void *data);
static ngx_int_t ngx_http_openbank_journal_wrote(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_journal_dump_atomic(
    ngx_http_openbank_zone_t *zone, void *data);
static size_t ngx_http_openbank_journal_dump(ngx_http_openbank_journal_t *j,
    u_char *buf);
static ngx_int_t ngx_http_openbank_journal_dump_entry(
    ngx_http_openbank_store_value_t *sv, void *data);
static ngx_int_t ngx_http_openbank_journal_rewritten(
    ngx_http_openbank_store_value_t *sv, void *data);


static ngx_str_t  ngx_http_openbank_journal_meta_key =
    ngx_string("\0journal");
static ngx_str_t  ngx_http_openbank_journal_pool = ngx_string("default");


/*
 * Writes the frame of the payload that follows it: "rec" holds
 * NGX_HTTP_OPENBANK_JOURNAL_FRAME bytes and then "len" bytes of payload.
 */

void
ngx_http_openbank_journal_frame(u_char *rec, size_t len)
{
    uint32_t  v[3];

    v[0] = NGX_HTTP_OPENBANK_JOURNAL_MAGIC;
    v[1] = (uint32_t) len;
    v[2] = crc32(0, rec + NGX_HTTP_OPENBANK_JOURNAL_FRAME, len);

    ngx_memcpy(rec, v, sizeof(v));
}


/*
 * A dump walk's record: its size counted (no buffer yet), or the framed
 * record written (ngx_http_openbank_journal_record()).
 */

void
ngx_http_openbank_journal_dump_record(ngx_http_openbank_journal_dump_t *dp,
    ngx_uint_t type, uint64_t expire, ngx_str_t *key, u_char *value,
    size_t len)
{
    if (dp->buf == NULL) {
        dp->size += NGX_HTTP_OPENBANK_JOURNAL_FRAME
                    + sizeof(ngx_http_openbank_journal_head_t) + key->len
                    + len;
        return;
    }

    dp->p = ngx_http_openbank_journal_record(dp->p, type, expire, key, value,
                                             len);
}


/*
 * A whole framed record at "p" (NGX_HTTP_OPENBANK_JOURNAL_FRAME, the
 * head, the key and "len" bytes of value); returns its end.
 */

u_char *
ngx_http_openbank_journal_record(u_char *p, ngx_uint_t type,
    uint64_t expire, ngx_str_t *key, u_char *value, size_t len)
{
    u_char                            *start;
    ngx_http_openbank_journal_head_t   head;

    start = p;
    p += NGX_HTTP_OPENBANK_JOURNAL_FRAME;

    ngx_memzero(&head, sizeof(head));
    head.expire = expire;
    head.key_len = (uint16_t) key->len;
    head.type = (u_char) type;

    p = ngx_cpymem(p, &head, sizeof(head));
    p = ngx_cpymem(p, key->data, key->len);

    if (len) {
        p = ngx_cpymem(p, value, len);
    }

    len = p - start - NGX_HTTP_OPENBANK_JOURNAL_FRAME;

    ngx_http_openbank_journal_frame(start, len);

    return p;
}


/* this process's names and queues of the journal, once */

ngx_int_t
ngx_http_openbank_journal_init(ngx_http_openbank_journal_t *j,
    ngx_cycle_t *cycle)
{
    u_char                         *p;
    size_t                          len;
    ngx_http_openbank_main_conf_t  *obmcf;

    if (j->ready) {
        return NGX_OK;
    }

    obmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                                ngx_http_openbank_module);

    len = obmcf->state_path.len + 1 + ngx_strlen(j->file);

    p = ngx_pnalloc(cycle->pool, 2 * len + sizeof(".journal")
                                 + sizeof(".lock"));
    if (p == NULL) {
        return NGX_ERROR;
    }

    j->name.data = p;
    p = ngx_sprintf(p, "%V/%s.journal%Z", &obmcf->state_path, j->file);
    j->name.len = p - 1 - j->name.data;

    j->lock.data = p;
    p = ngx_sprintf(p, "%V/%s.lock%Z", &obmcf->state_path, j->file);
    j->lock.len = p - 1 - j->lock.data;

    j->fd = NGX_INVALID_FILE;
    j->lock_fd = NGX_INVALID_FILE;
    j->busy = 0;
    j->lost = 0;
    j->task = NULL;
    j->zone = obmcf->shm_zone->data;

    ngx_queue_init(&j->batch);
    ngx_queue_init(&j->writing);

    ngx_memzero(&j->flush, sizeof(ngx_event_t));
    j->flush.handler = ngx_http_openbank_journal_flush;
    j->flush.data = j;
    j->flush.log = cycle->log;

    ngx_memzero(&j->hold, sizeof(ngx_event_t));
    j->hold.handler = ngx_http_openbank_journal_hold;
    j->hold.data = j;
    j->hold.log = cycle->log;

    j->ready = 1;

    return NGX_OK;
}


/* the master at start is done with it: the workers open their own */

void
ngx_http_openbank_journal_reset(ngx_http_openbank_journal_t *j)
{
    if (!j->ready) {
        return;
    }

    if (j->fd != NGX_INVALID_FILE) {
        (void) close(j->fd);
    }

    if (j->lock_fd != NGX_INVALID_FILE) {
        (void) close(j->lock_fd);
    }

    j->ready = 0;
}


/*
 * The journal's bookkeeping record, copied out: NGX_DECLINED (zeroed)
 * when the zone has none.  It is never deleted (no expiry, its table not
 * evictable); inside ngx_http_openbank_store_atomic() the copy holds
 * until the handler returns.
 */

ngx_int_t
ngx_http_openbank_journal_meta(ngx_http_openbank_journal_t *j,
    ngx_http_openbank_journal_meta_t *meta)
{
    if (ngx_http_openbank_store_get(j->zone, j->table,
                                    &ngx_http_openbank_journal_meta_key,
                                    meta,
                                    sizeof(ngx_http_openbank_journal_meta_t),
                                    NULL)
        == sizeof(ngx_http_openbank_journal_meta_t))
    {
        return NGX_OK;
    }

    ngx_memzero(meta, sizeof(ngx_http_openbank_journal_meta_t));

    return NGX_DECLINED;
}


/*
 * At start: the bookkeeping record, made zeroed.  NGX_DECLINED: the zone
 * has it already (a reload); NGX_ERROR: no room.
 */

ngx_int_t
ngx_http_openbank_journal_meta_add(ngx_http_openbank_journal_t *j)
{
    ngx_int_t                         rc;
    ngx_http_openbank_journal_meta_t  meta;

    ngx_memzero(&meta, sizeof(ngx_http_openbank_journal_meta_t));

    rc = ngx_http_openbank_store_add(j->zone, j->table,
                                     &ngx_http_openbank_journal_meta_key,
                                     &meta,
                                     sizeof(ngx_http_openbank_journal_meta_t),
                                     0);

    return (rc == NGX_OK || rc == NGX_DECLINED) ? rc : NGX_ERROR;
}


/* a write or an open failed now: new records wait (the owner decides) */

void
ngx_http_openbank_journal_failed(ngx_http_openbank_journal_t *j)
{
    ngx_http_openbank_journal_mark_t  mark;

    mark.failed = ngx_http_openbank_now_ms();
    mark.broken = 0;

    (void) ngx_http_openbank_journal_meta_update(j,
                                              ngx_http_openbank_journal_mark,
                                              &mark);
}


/* unreadable at start: the journal is not to be trusted */

void
ngx_http_openbank_journal_broken(ngx_http_openbank_journal_t *j)
{
    ngx_http_openbank_journal_mark_t  mark;

    mark.failed = 0;
    mark.broken = 1;

    (void) ngx_http_openbank_journal_meta_update(j,
                                              ngx_http_openbank_journal_mark,
                                              &mark);
}


/*
 * The bookkeeping changed in place by "handler" (made first when the
 * zone has none): NGX_OK, or NGX_ERROR when there is no room for it.
 */

static ngx_int_t
ngx_http_openbank_journal_meta_update(ngx_http_openbank_journal_t *j,
    ngx_http_openbank_store_handler_pt handler, void *data)
{
    ngx_int_t  rc;

    rc = ngx_http_openbank_store_update(j->zone, j->table,
                                     &ngx_http_openbank_journal_meta_key,
                                     sizeof(ngx_http_openbank_journal_meta_t),
                                     0, handler, data);

    return (rc == NGX_HTTP_OPENBANK_STORE_KEEP) ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_http_openbank_journal_mark(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_journal_mark_t *mark = data;

    ngx_http_openbank_journal_meta_t  *meta;

    meta = (ngx_http_openbank_journal_meta_t *) sv->value;

    if (mark->failed) {
        meta->failed = mark->failed;
    }

    if (mark->broken) {
        meta->broken = 1;
    }

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/*
 * The file this process holds open is no longer the one at "name": it
 * was removed, replaced, or its directory was.
 */

ngx_uint_t
ngx_http_openbank_journal_moved(ngx_fd_t fd, ngx_str_t *name)
{
    struct stat  held;

    return ngx_http_openbank_journal_held(fd, name, &held);
}


/* the same, with the fstat() of the file held (st_nlink 0 if it failed) */

static ngx_uint_t
ngx_http_openbank_journal_held(ngx_fd_t fd, ngx_str_t *name,
    struct stat *held)
{
    struct stat  st;

    if (fstat(fd, held) == -1) {
        held->st_nlink = 0;
        return 0;
    }

    if (stat((char *) name->data, &st) == -1) {
        return 1;
    }

    return held->st_ino != st.st_ino || held->st_dev != st.st_dev;
}


/* the lock file, opened again when it was removed */

ngx_int_t
ngx_http_openbank_journal_open_lock(ngx_http_openbank_journal_t *j,
    ngx_log_t *log)
{
    if (j->lock_fd != NGX_INVALID_FILE) {

        /* a thread holds it: looked at again before the next write */

        if (j->busy
            || !ngx_http_openbank_journal_moved(j->lock_fd, &j->lock))
        {
            return NGX_OK;
        }

        /* removed with the directory: the others reopen it too */

        (void) close(j->lock_fd);
        j->lock_fd = NGX_INVALID_FILE;
    }

    j->lock_fd = open((char *) j->lock.data, O_RDWR | O_CREAT | O_CLOEXEC,
                      0600);

    if (j->lock_fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "openbank: open() \"%V\" failed", &j->lock);

        /* a failure: the next write that works rewrites it from the zone */

        ngx_http_openbank_journal_failed(j);

        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * At start, in the master, for the journal "what" of an owner: this
 * cycle's names, the zone's bookkeeping record, the lock file.  NGX_OK:
 * a start, replay the journal; NGX_DECLINED: a reload, the zone holds it
 * already; NGX_ERROR: no room in the zone (logged); NGX_ABORT: the lock
 * file cannot be made (logged), the owner decides.
 */

ngx_int_t
ngx_http_openbank_journal_begin(ngx_http_openbank_journal_t *j,
    ngx_cycle_t *cycle, const char *what)
{
    ngx_int_t                       rc;
    ngx_core_conf_t                *ccf;
    ngx_http_openbank_main_conf_t  *obmcf;

    ngx_http_openbank_journal_reset(j);

    if (ngx_http_openbank_journal_init(j, cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    rc = ngx_http_openbank_journal_meta_add(j);

    if (rc == NGX_DECLINED) {
        ngx_http_openbank_journal_reset(j);
        return NGX_DECLINED;
    }

    if (rc != NGX_OK) {
        ngx_http_openbank_journal_reset(j);

        obmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                                    ngx_http_openbank_module);

        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "openbank: no room in zone \"%V\" for the "
                      "%s journal", &obmcf->shm_zone->shm.name, what);
        return NGX_ERROR;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    if (ngx_http_openbank_journal_start(j, cycle, ccf->user) != NGX_OK) {
        return NGX_ABORT;
    }

    return NGX_OK;
}


/*
 * At start, in the master: the lock file, given to the workers' user.
 * NGX_ERROR (logged): the journal cannot be used.
 */

ngx_int_t
ngx_http_openbank_journal_start(ngx_http_openbank_journal_t *j,
    ngx_cycle_t *cycle, ngx_uid_t user)
{
    ngx_fd_t  fd;

    if (ngx_http_openbank_journal_init(j, cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    fd = open((char *) j->lock.data, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

    if (fd == NGX_INVALID_FILE
        || (user != (ngx_uid_t) NGX_CONF_UNSET_UINT && geteuid() == 0
            && fchown(fd, user, (gid_t) -1) == -1))
    {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "openbank: cannot create \"%V\"", &j->lock);

        if (fd != NGX_INVALID_FILE) {
            (void) close(fd);
        }

        return NGX_ERROR;
    }

    (void) close(fd);

    return NGX_OK;
}


/*
 * Calls handlers[type] for each intact record of the journal (the others
 * are left out).  NGX_DECLINED: there is no journal; NGX_ERROR: it cannot
 * be read (the caller refuses rather than guess).  "skipped" counts the
 * bytes of damaged records.
 */

ngx_int_t
ngx_http_openbank_journal_replay(ngx_http_openbank_journal_t *j,
    ngx_log_t *log, ngx_http_openbank_journal_pt *handlers, ngx_uint_t n,
    void *data, size_t *skipped)
{
    size_t     end;
    ngx_fd_t   fd;
    ngx_int_t  rc;
    ngx_str_t  text;

    *skipped = 0;
    end = 0;

    /*
     * Where the records end is found again while no one appends (at
     * start, or a reload between two writes): the tail kept in the lock
     * file may not have reached the disk before a crash.
     */

    fd = open((char *) j->lock.data, O_RDWR | O_CLOEXEC);

    if (fd != NGX_INVALID_FILE
        && ngx_http_openbank_state_lock(fd, 1, 0) != NGX_OK)
    {
        (void) close(fd);
        fd = NGX_INVALID_FILE;
    }

    rc = ngx_http_openbank_state_read(log, NGX_LOG_ALERT, NULL, &j->name,
                                      NGX_HTTP_OPENBANK_JOURNAL_MAX, &text);

    if (rc == NGX_OK) {
        rc = ngx_http_openbank_journal_scan(text.data, text.len, handlers, n,
                                            data, skipped, &end);
        ngx_free(text.data);
    }

    if (fd != NGX_INVALID_FILE) {
        ngx_http_openbank_journal_tail_reset(j, fd, rc, end);
        (void) close(fd);
    }

    return rc;
}


/*
 * The replay at start of a journal whose records make a zone's table:
 * "what" names the journal in the log ("registry").  A journal that cannot
 * be read, or a zone too small for it ("full" set by the handlers), stops
 * the start: the caller refuses rather than guess.  Damaged records are
 * left out, and said.
 */

ngx_int_t
ngx_http_openbank_journal_load(ngx_http_openbank_journal_t *j,
    ngx_cycle_t *cycle, ngx_str_t *zone, const char *what,
    ngx_http_openbank_journal_pt *handlers, ngx_uint_t n, void *data,
    ngx_uint_t *full)
{
    size_t     skipped;
    ngx_int_t  rc;

    rc = ngx_http_openbank_journal_replay(j, cycle->log, handlers, n, data,
                                          &skipped);

    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "openbank: %s journal \"%V\" is unreadable",
                      what, &j->name);
        return NGX_ERROR;
    }

    if (*full) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "openbank: zone \"%V\" is too small for the %s "
                      "journal \"%V\"", zone, what, &j->name);
        return NGX_ERROR;
    }

    if (skipped) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "openbank: %s journal \"%V\": %uz bytes of torn or "
                      "damaged records ignored", what, &j->name, skipped);
    }

    return rc;
}

/*
 * The tail in the lock file "fd" (held exclusively): where the records
 * of the journal just read end, or none (appends go after the file's
 * size) when it could not be read.
 */

static void
ngx_http_openbank_journal_tail_reset(ngx_http_openbank_journal_t *j,
    ngx_fd_t fd, ngx_int_t rc, size_t end)
{
    struct stat                       st;
    ngx_http_openbank_journal_tail_t  tail;

    if (rc != NGX_OK || stat((char *) j->name.data, &st) == -1) {
        (void) ftruncate(fd, 0);
        return;
    }

    tail.dev = st.st_dev;
    tail.ino = st.st_ino;
    tail.end = end;

    if (pwrite(fd, &tail, sizeof(tail), 0) != (ssize_t) sizeof(tail)) {
        (void) ftruncate(fd, 0);
    }
}


/* a record to make durable: written with the batch of this pass */

void
ngx_http_openbank_journal_submit(ngx_http_openbank_journal_t *j,
    ngx_http_openbank_journal_entry_t *e)
{
    ngx_http_openbank_journal_submit_later(j, e);
    ngx_post_event(&j->flush, &ngx_posted_events);
}


/*
 * A record nobody waits for (a delivery's outcome): written with the
 * next batch that someone waits for, or by the hold timer, within
 * NGX_HTTP_OPENBANK_JOURNAL_HOLD ms, rather than with an fdatasync() of
 * its own.  A crash before loses it; its owner must accept that (a
 * delivery is then made again: at least once).
 */

void
ngx_http_openbank_journal_submit_later(ngx_http_openbank_journal_t *j,
    ngx_http_openbank_journal_entry_t *e)
{
    ngx_queue_insert_tail(&j->batch, &e->queue);

    if (!j->hold.timer_set) {
        ngx_add_timer(&j->hold, NGX_HTTP_OPENBANK_JOURNAL_HOLD);
    }
}


/*
 * A timer, not cancelable, while entries wait to be written or are being
 * written: a worker that shuts down (a reload, a graceful stop) exits only
 * when no such timer is left, so the requests waiting for their records
 * are answered first instead of being cut off.  It writes what was
 * submitted for later.
 */

static void
ngx_http_openbank_journal_hold(ngx_event_t *ev)
{
    ngx_http_openbank_journal_t *j = ev->data;

    if (!j->busy && !ngx_queue_empty(&j->batch)) {
        ngx_post_event(&j->flush, &ngx_posted_events);
    }

    if (j->busy || !ngx_queue_empty(&j->batch)
        || !ngx_queue_empty(&j->writing))
    {
        ngx_add_timer(ev, NGX_HTTP_OPENBANK_JOURNAL_HOLD);
    }
}


/*
 * A request that will wait for its records: "len" bytes after the wait
 * for them (and for its own), outside the request's pool, since they
 * stay in the journal's queue even if the request ends meanwhile.
 */

ngx_http_openbank_journal_wait_t *
ngx_http_openbank_journal_wait(ngx_http_request_t *r, size_t len,
    ngx_http_openbank_journal_answer_pt answer)
{
    ngx_pool_cleanup_t                *cln;
    ngx_http_openbank_journal_wait_t  *w;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    w = ngx_alloc(sizeof(ngx_http_openbank_journal_wait_t) + len,
                  r->connection->log);
    if (w == NULL) {
        return NULL;
    }

    w->entry.record = (u_char *) (w + 1);
    w->request = r;
    w->cln = cln;
    w->answer = answer;
    w->lost = NULL;

    return w;
}


/* its records, from entry.record to "last", go with this pass's batch */

void
ngx_http_openbank_journal_submit_wait(ngx_http_openbank_journal_t *j,
    ngx_http_openbank_journal_wait_t *w, u_char *last)
{
    w->entry.len = last - w->entry.record;
    w->entry.handler = ngx_http_openbank_journal_waited;

    w->cln->handler = ngx_http_openbank_journal_gone;
    w->cln->data = w;

    ngx_http_openbank_journal_submit(j, &w->entry);
}


static void
ngx_http_openbank_journal_waited(ngx_http_openbank_journal_entry_t *e,
    ngx_int_t rc)
{
    ngx_http_openbank_journal_wait_t *w =
                                     (ngx_http_openbank_journal_wait_t *) e;

    ngx_http_request_t  *r;

    r = w->request;

    if (rc != NGX_OK && w->lost) {
        ngx_log_error(NGX_LOG_ALERT, r ? r->connection->log : ngx_cycle->log,
                      0, "openbank: %s", w->lost);
    }

    if (r) {
        w->cln->handler = NULL;
        w->answer(r, rc);
    }

    ngx_free(w);
}


/* the request ended before its records were written: nobody to answer */

static void
ngx_http_openbank_journal_gone(void *data)
{
    ngx_http_openbank_journal_wait_t *w = data;

    w->request = NULL;
}


/* the end of an event loop pass: the batch goes to a thread of the pool */

static void
ngx_http_openbank_journal_flush(ngx_event_t *ev)
{
    ngx_http_openbank_journal_t *j = ev->data;

    ngx_int_t                           rc;
    ngx_queue_t                        *batch, *q;
    ngx_thread_pool_t                  *tp;
    ngx_http_openbank_journal_io_t     *io;
    ngx_http_openbank_journal_entry_t  *e;

    if (j->busy || ngx_queue_empty(&j->batch)) {
        /* a batch is being written: this one follows when it is done */
        return;
    }

    /* the batch is taken whole: records completing meanwhile wait */

    batch = &j->writing;
    *batch = j->batch;
    batch->next->prev = batch;
    batch->prev->next = batch;
    ngx_queue_init(&j->batch);

    tp = ngx_thread_pool_get((ngx_cycle_t *) ngx_cycle,
                             &ngx_http_openbank_journal_pool);

    if (tp == NULL || ngx_http_openbank_journal_task(j, ev->log) != NGX_OK) {
        /* no thread to be had: written here, the lock only tried */
        rc = ngx_http_openbank_journal_commit(j, batch, ev->log);
        goto wake;
    }

    io = j->task->ctx;

    if (ngx_http_openbank_journal_prepare(j, batch, io, ev->log) == NGX_OK) {
        io->fd = j->fd;
        io->lock_fd = j->lock_fd;

        if (ngx_thread_task_post(tp, j->task) == NGX_OK) {
            j->busy = 1;
            return;
        }

        io->rc = NGX_ERROR;
        io->failed = "ngx_thread_task_post()";
    }

    ngx_http_openbank_journal_finish(j, batch, io, ev->log);
    rc = io->rc;

    if (j->busy) {
        /* a rewrite from the zone: the batch is answered once it is done */
        j->rc = rc;
        return;
    }

wake:

    while (!ngx_queue_empty(batch)) {
        q = ngx_queue_head(batch);
        ngx_queue_remove(q);

        e = ngx_queue_data(q, ngx_http_openbank_journal_entry_t, queue);
        e->handler(e, rc);
    }
}


static ngx_int_t
ngx_http_openbank_journal_task(ngx_http_openbank_journal_t *j,
    ngx_log_t *log)
{
    ngx_http_openbank_journal_io_t  *io;

    if (j->task) {
        return NGX_OK;
    }

    j->task = ngx_thread_task_alloc(ngx_cycle->pool,
                                    sizeof(ngx_http_openbank_journal_io_t));
    if (j->task == NULL) {
        return NGX_ERROR;
    }

    io = j->task->ctx;
    io->journal = j;

    j->task->handler = ngx_http_openbank_journal_thread;
    j->task->event.handler = ngx_http_openbank_journal_done;
    j->task->event.data = j;
    j->task->event.log = ngx_cycle->log;

    return NGX_OK;
}


/*
 * The batch's records in one buffer, the lock file open, and what the
 * zone says the journal holds (to find it made anew).
 */

static ngx_int_t
ngx_http_openbank_journal_prepare(ngx_http_openbank_journal_t *j,
    ngx_queue_t *batch, ngx_http_openbank_journal_io_t *io, ngx_log_t *log)
{
    u_char                             *p;
    ngx_queue_t                        *q;
    ngx_http_openbank_journal_meta_t    meta;
    ngx_http_openbank_journal_entry_t  *e;

    io->journal = j;
    io->len = 0;
    io->buf = NULL;
    io->fd = NGX_INVALID_FILE;
    io->lock_fd = NGX_INVALID_FILE;
    io->rc = NGX_ERROR;
    io->err = 0;
    io->failed = NULL;
    io->size = 0;
    io->compact = 0;
    io->locked = 0;
    io->reopened = 0;
    io->unlocked = 0;

    for (q = ngx_queue_head(batch);
         q != ngx_queue_sentinel(batch);
         q = ngx_queue_next(q))
    {
        e = ngx_queue_data(q, ngx_http_openbank_journal_entry_t, queue);
        io->len += e->len;
    }

    io->buf = ngx_alloc(io->len ? io->len : 1, log);
    if (io->buf == NULL) {
        return NGX_ERROR;
    }

    p = io->buf;

    for (q = ngx_queue_head(batch);
         q != ngx_queue_sentinel(batch);
         q = ngx_queue_next(q))
    {
        e = ngx_queue_data(q, ngx_http_openbank_journal_entry_t, queue);
        p = ngx_cpymem(p, e->record, e->len);
    }

    if (ngx_http_openbank_journal_open_lock(j, log) != NGX_OK) {
        io->failed = "";
        return NGX_ERROR;
    }

    (void) ngx_http_openbank_journal_meta(j, &meta);
    io->generation = meta.generation;
    io->was_failed = meta.failed;
    io->expected = meta.base + meta.bytes;

    return NGX_OK;
}


/*
 * The append, in a thread of the pool ("wait": it may wait for the lock)
 * or, the lock only tried, in the worker: nothing but system calls.
 */

static void
ngx_http_openbank_journal_append(ngx_http_openbank_journal_io_t *io,
    ngx_uint_t wait)
{
    ngx_int_t    rc;
    struct stat  st;

    /*
     * A shared lock: a compaction (exclusive) cannot run between the
     * write and the zone's update.  Without waiting, a compaction running
     * elsewhere means a write without it, and a rewrite from the zone
     * after it (the record may have gone into the journal it replaces).
     */

    rc = ngx_http_openbank_state_lock(io->lock_fd, 0, wait);

    if (rc == NGX_ERROR) {
        io->err = ngx_errno;
        io->failed = "flock()";
        io->rc = NGX_ERROR;
        return;
    }

    io->locked = (rc == NGX_OK);
    io->unlocked = (rc == NGX_BUSY);

    /* reopened after a compaction, or the journal removed or replaced */

    st.st_nlink = 0;

    if (io->fd == NGX_INVALID_FILE
        || ngx_http_openbank_journal_held(io->fd, &io->journal->name, &st))
    {
        st.st_nlink = 0;

        io->fd = open((char *) io->journal->name.data,
                      O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

        if (io->fd == NGX_INVALID_FILE) {
            io->err = ngx_errno;
            io->failed = "open()";
            io->rc = NGX_ERROR;
            return;
        }

        io->reopened = 1;
    }

    /* the size is the fstat() of the check above, unless opened again */

    if (st.st_nlink == 0 && fstat(io->fd, &st) == -1) {
        io->err = ngx_errno;
        io->failed = "fstat() of";
        io->rc = NGX_ERROR;
        return;
    }

    io->size = st.st_size;

    if (ngx_http_openbank_journal_place(io, &st, wait) != NGX_OK) {
        return;
    }

    if (fdatasync(io->fd) == -1) {
        io->err = ngx_errno;
        io->failed = "fdatasync() of";
        io->rc = NGX_ERROR;
        return;
    }

    io->rc = NGX_OK;
}


/*
 * The batch written in place, at the end of the records: the journal's
 * blocks are written (zeros) ahead of the records, so that the file's
 * size and blocks do not change with each batch and fdatasync() has
 * only the data to write.  The end is the tail in the lock file, read
 * and moved under an exclusive flock() of the journal (one file, all
 * the processes' batches), held for the write only: the syncs of two
 * processes do not wait for each other.  Without a tail for this very
 * file (made anew, compacted, or the tail not found again at start) the
 * records go after the file's size: safe, whatever is there.
 */

static ngx_int_t
ngx_http_openbank_journal_place(ngx_http_openbank_journal_io_t *io,
    struct stat *st, ngx_uint_t wait)
{
    off_t                             end, size;
    ssize_t                           n;
    ngx_int_t                         rc;
    ngx_uint_t                        i;
    ngx_http_openbank_journal_tail_t  tail;

    for (i = 0; /* void */; i++) {
        rc = ngx_http_openbank_state_lock(io->fd, 1, wait);

        if (rc != NGX_BUSY || i == NGX_HTTP_OPENBANK_JOURNAL_TRIES) {
            break;
        }

        /* the worker: held by another process for one write */
        ngx_sched_yield();
    }

    if (rc != NGX_OK) {
        io->err = (rc == NGX_ERROR) ? ngx_errno : 0;
        io->failed = "flock()";
        io->rc = NGX_ERROR;
        return NGX_ERROR;
    }

    end = st->st_size;

    n = pread(io->lock_fd, &tail, sizeof(tail), 0);

    if (n == (ssize_t) sizeof(tail)
        && tail.dev == (uint64_t) st->st_dev
        && tail.ino == (uint64_t) st->st_ino
        && tail.end <= (uint64_t) st->st_size)
    {
        end = (off_t) tail.end;
    }

    if (end + (off_t) io->len > st->st_size) {
        size = ngx_align(end + (off_t) io->len,
                         NGX_HTTP_OPENBANK_JOURNAL_PREALLOC);

        if (ngx_http_openbank_journal_grow(io->fd, st->st_size, size)
            != NGX_OK)
        {
            io->err = ngx_errno;
            io->failed = "write() to";
            goto failed;
        }
    }

    n = pwrite(io->fd, io->buf, io->len, end);

    if (n != (ssize_t) io->len) {
        io->err = (n == -1) ? ngx_errno : 0;
        io->failed = "write() to";
        goto failed;
    }

    tail.dev = st->st_dev;
    tail.ino = st->st_ino;
    tail.end = end + io->len;

    if (pwrite(io->lock_fd, &tail, sizeof(tail), 0) != (ssize_t) sizeof(tail))
    {
        io->err = ngx_errno;
        io->failed = "write() of the end of";
        goto failed;
    }

    ngx_http_openbank_state_unlock(io->fd);

    return NGX_OK;

failed:

    /* what follows the end may be torn: no one writes after it any more */

    (void) ftruncate(io->lock_fd, 0);

    ngx_http_openbank_state_unlock(io->fd);

    io->rc = NGX_ERROR;

    return NGX_ERROR;
}


/* zeros written from "from" to "to", the blocks the records will take */

static ngx_int_t
ngx_http_openbank_journal_grow(ngx_fd_t fd, off_t from, off_t to)
{
    size_t         len;
    ssize_t        n;
    static u_char  zeros[NGX_HTTP_OPENBANK_JOURNAL_ZEROS];

    while (from < to) {
        len = ngx_min((off_t) sizeof(zeros), to - from);

        n = pwrite(fd, zeros, len, from);

        if (n <= 0) {
            if (n == -1 && ngx_errno == NGX_EINTR) {
                continue;
            }

            return NGX_ERROR;
        }

        from += n;
    }

    return NGX_OK;
}


/* in a thread of the pool */

static void
ngx_http_openbank_journal_thread(void *data, ngx_log_t *log)
{
    ngx_http_openbank_journal_io_t *io = data;

    if (io->compact) {
        io->rc = ngx_http_openbank_state_write_as(log, &io->journal->name,
                                                  io->buf, io->len,
                                                  io->user);
        return;
    }

    ngx_http_openbank_journal_append(io, 1);
}


/* back in the worker: the batch is durable (or not), answer it */

static void
ngx_http_openbank_journal_done(ngx_event_t *ev)
{
    ngx_http_openbank_journal_t *j = ev->data;

    ngx_int_t                           rc;
    ngx_queue_t                        *q;
    ngx_http_openbank_journal_io_t     *io;
    ngx_http_openbank_journal_entry_t  *e;

    io = j->task->ctx;

    j->busy = 0;

    if (io->compact) {
        ngx_http_openbank_journal_compacted(j, io, ev->log);
        rc = j->rc;

    } else {
        ngx_http_openbank_journal_finish(j, &j->writing, io, ev->log);
        rc = io->rc;
        j->rc = rc;
    }

    if (!j->busy) {
        while (!ngx_queue_empty(&j->writing)) {
            q = ngx_queue_head(&j->writing);
            ngx_queue_remove(q);

            e = ngx_queue_data(q, ngx_http_openbank_journal_entry_t, queue);
            e->handler(e, rc);
        }
    }

    if (!ngx_queue_empty(&j->batch)) {
        ngx_post_event(&j->flush, &ngx_posted_events);
    }
}


/*
 * Without a thread (and for the rare record that cannot wait, as an
 * answer without a body): the batch written in the worker with files of
 * its own, the lock only tried.  The entries' handlers are not called:
 * NGX_OK, the batch is durable, or NGX_ERROR.
 */

ngx_int_t
ngx_http_openbank_journal_commit(ngx_http_openbank_journal_t *j,
    ngx_queue_t *batch, ngx_log_t *log)
{
    ngx_http_openbank_journal_io_t  io;

    if (ngx_http_openbank_journal_prepare(j, batch, &io, log) == NGX_OK) {
        io.lock_fd = open((char *) j->lock.data,
                          O_RDWR | O_CREAT | O_CLOEXEC, 0600);

        if (io.lock_fd == NGX_INVALID_FILE) {
            io.err = ngx_errno;
            io.failed = "open()";

        } else {
            ngx_http_openbank_journal_append(&io, 0);
        }
    }

    ngx_http_openbank_journal_finish(j, batch, &io, log);

    return io.rc;
}


/*
 * After a write: the owner puts the batch into the zone (whether or not
 * the write succeeded), the bookkeeping is updated, the lock released;
 * a compaction follows when the journal has grown enough, or when it
 * must be rewritten from the zone.
 */

static void
ngx_http_openbank_journal_finish(ngx_http_openbank_journal_t *j,
    ngx_queue_t *batch, ngx_http_openbank_journal_io_t *io, ngx_log_t *log)
{
    ngx_uint_t                           own, compact, recovered, lost,
                                         level;
    ngx_core_conf_t                     *ccf;
    ngx_http_openbank_journal_meta_t    *meta;
    ngx_http_openbank_journal_finish_t   fin;

    if (io->buf) {
        ngx_free(io->buf);
        io->buf = NULL;
    }

    compact = 0;

    fin.journal = j;
    fin.batch = batch;
    fin.io = io;
    fin.now = ngx_http_openbank_now_ms();
    fin.recovered = 0;

    /* a journal made anew: shorter than what was written to it */

    fin.lost = (io->reopened && (uint64_t) io->size < io->expected);

    (void) ngx_http_openbank_store_atomic(j->zone,
                                       ngx_http_openbank_journal_finish_atomic,
                                       &fin);

    meta = (fin.rc == NGX_OK) ? &fin.meta : NULL;
    lost = fin.lost;
    recovered = fin.recovered;

    if (io->locked) {
        ngx_http_openbank_state_unlock(io->lock_fd);
    }

    own = (io->lock_fd != j->lock_fd);

    if (own && io->lock_fd != NGX_INVALID_FILE) {
        (void) close(io->lock_fd);
    }

    /* the thread's journal becomes this process's; a file of its own not */

    if (io->fd != j->fd && io->fd != NGX_INVALID_FILE) {
        if (own) {
            (void) close(io->fd);

        } else {
            if (j->fd != NGX_INVALID_FILE) {
                (void) close(j->fd);
            }

            j->fd = io->fd;
        }
    }

    if (lost) {
        /* an [alert] unless the failure it follows (directory gone) had one */
        level = io->was_failed ? NGX_LOG_NOTICE : NGX_LOG_ALERT;

        ngx_log_error(level, log, 0,
                      "openbank: %s \"%V\" was removed or replaced (%O "
                      "bytes, %uL expected): it is made again from the "
                      "records of the zone", j->title, &j->name, io->size,
                      io->expected);
        j->lost = 1;
    }

    if (io->unlocked) {
        j->lost = 1;
    }

    if (io->rc != NGX_OK) {
        if (io->failed && io->failed[0]) {
            ngx_log_error(NGX_LOG_ALERT, log, io->err,
                          "openbank: %s %s \"%V\" failed", io->failed,
                          j->title, &j->name);
        }

        /* what it held is in the zone: written whole with the next one */
        j->lost = 1;

    } else if (meta
               && ((meta->bytes > NGX_HTTP_OPENBANK_JOURNAL_COMPACT
                    && meta->bytes > meta->base)
                   || j->lost || recovered))
    {
        compact = 1;
    }

    if (j->after) {
        j->after(j, io->rc, log);
    }

    if (recovered) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "openbank: %s \"%V\" written again%s",
                      j->title, &j->name, j->again);
    }

    if (compact) {
        ccf = (ngx_core_conf_t *) ngx_get_conf(ngx_cycle->conf_ctx,
                                               ngx_core_module);

        /* not done (another process holds the lock): after the next write */

        (void) ngx_http_openbank_journal_compact(j, ccf->user, log);
    }
}


static ngx_int_t
ngx_http_openbank_journal_finish_atomic(ngx_http_openbank_zone_t *zone,
    void *data)
{
    ngx_http_openbank_journal_finish_t *fin = data;

    ngx_http_openbank_journal_t  *j;

    j = fin->journal;

    if (j->written) {
        j->written(j, fin->batch, fin->now);
    }

    fin->rc = ngx_http_openbank_journal_meta_update(j,
                                             ngx_http_openbank_journal_wrote,
                                             fin);

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_journal_wrote(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_journal_finish_t *fin = data;

    ngx_http_openbank_journal_meta_t  *meta;

    meta = (ngx_http_openbank_journal_meta_t *) sv->value;

    if (fin->lost && meta->generation != fin->io->generation) {
        /* a compaction made it shorter meanwhile */
        fin->lost = 0;
    }

    if (fin->io->rc == NGX_OK) {
        /* what a failed write held is in the zone: rewritten now */
        fin->recovered = (meta->failed != 0);
        meta->failed = 0;
        meta->bytes += fin->io->len;

    } else {
        meta->failed = fin->now;
    }

    fin->meta = *meta;

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}


/*
 * Rewrites the journal with the records the zone holds (expired ones are
 * gone).  The lock is taken exclusively without waiting: the others'
 * appends wait for it in their threads, then reopen the new journal.  In
 * a worker the file is written by a thread of the pool.  NGX_OK: done or
 * under way; NGX_DECLINED: another process holds the lock (it appends
 * or compacts); NGX_ERROR: not rewritten (logged).
 */

ngx_int_t
ngx_http_openbank_journal_compact(ngx_http_openbank_journal_t *j,
    ngx_uid_t user, ngx_log_t *log)
{
    ngx_int_t                            rc;
    ngx_thread_pool_t                   *tp;
    ngx_http_openbank_journal_io_t      *io, sync;
    ngx_http_openbank_journal_dumping_t  dump;

    if (j->busy) {
        return NGX_DECLINED;
    }

    tp = NULL;
    io = &sync;

    if (ngx_process == NGX_PROCESS_WORKER) {
        tp = ngx_thread_pool_get((ngx_cycle_t *) ngx_cycle,
                                 &ngx_http_openbank_journal_pool);

        if (tp && ngx_http_openbank_journal_task(j, log) == NGX_OK) {
            io = j->task->ctx;
        }
    }

    ngx_memzero(io, sizeof(ngx_http_openbank_journal_io_t));
    io->journal = j;
    io->compact = 1;
    io->user = user;
    io->fd = NGX_INVALID_FILE;
    io->lock_fd = NGX_INVALID_FILE;

    if (ngx_http_openbank_journal_open_lock(j, log) == NGX_OK) {
        rc = ngx_http_openbank_state_lock(j->lock_fd, 1, 0);

        if (rc != NGX_OK) {
            return NGX_DECLINED;
        }

        io->lock_fd = j->lock_fd;
        io->locked = 1;

    } else if (ngx_process == NGX_PROCESS_WORKER) {
        return NGX_ERROR;
    }

    /* the zone's records measured and copied under one lock */

    dump.io = io;
    dump.log = log;

    (void) ngx_http_openbank_store_atomic(j->zone,
                                         ngx_http_openbank_journal_dump_atomic,
                                         &dump);

    if (io->buf == NULL) {
        io->rc = NGX_ERROR;
        ngx_http_openbank_journal_compacted(j, io, log);
        return NGX_ERROR;
    }

    if (io != &sync) {
        if (ngx_thread_task_post(tp, j->task) == NGX_OK) {
            j->busy = 1;
            return NGX_OK;
        }
    }

    io->rc = ngx_http_openbank_state_write_as(log, &j->name, io->buf,
                                              io->len, user);

    rc = io->rc;

    ngx_http_openbank_journal_compacted(j, io, log);

    return rc;
}


static ngx_int_t
ngx_http_openbank_journal_dump_atomic(ngx_http_openbank_zone_t *zone,
    void *data)
{
    ngx_http_openbank_journal_dumping_t *dump = data;

    size_t                           size;
    ngx_http_openbank_journal_t     *j;
    ngx_http_openbank_journal_io_t  *io;

    io = dump->io;
    j = io->journal;

    size = ngx_http_openbank_journal_dump(j, NULL);

    io->buf = ngx_alloc(size ? size : 1, dump->log);

    if (io->buf) {
        io->len = ngx_http_openbank_journal_dump(j, io->buf);
    }

    return NGX_OK;
}


/* the framed records of the journal's tables ("buf" NULL: their size) */

static size_t
ngx_http_openbank_journal_dump(ngx_http_openbank_journal_t *j, u_char *buf)
{
    ngx_http_openbank_journal_dump_t  dp;

    dp.buf = buf;
    dp.p = buf;
    dp.size = 0;
    dp.journal = j;
    dp.table = j->table;

    (void) ngx_http_openbank_store_walk(j->zone, j->table,
                                        ngx_http_openbank_journal_dump_entry,
                                        &dp);

    if (j->also) {
        dp.table = j->also;

        (void) ngx_http_openbank_store_walk(j->zone, j->also,
                                        ngx_http_openbank_journal_dump_entry,
                                        &dp);
    }

    return buf ? (size_t) (dp.p - buf) : dp.size;
}


static ngx_int_t
ngx_http_openbank_journal_dump_entry(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    ngx_http_openbank_journal_dump_t  *dp = data;

    /* the bookkeeping record's key begins with a NUL */

    if (sv->key.len == 0 || sv->key.data[0] == '\0') {
        return NGX_HTTP_OPENBANK_STORE_KEEP;
    }

    return dp->journal->dump(sv, dp);
}


static void
ngx_http_openbank_journal_compacted(ngx_http_openbank_journal_t *j,
    ngx_http_openbank_journal_io_t *io, ngx_log_t *log)
{
    if (io->rc == NGX_OK) {
        (void) ngx_http_openbank_journal_meta_update(j,
                                         ngx_http_openbank_journal_rewritten,
                                         &io->len);

        /* the new file's records end at its size: no tail for it yet */

        if (io->locked) {
            (void) ftruncate(io->lock_fd, 0);
        }

        j->lost = 0;

        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "openbank: %s compacted to %uz bytes", j->title,
                      io->len);
    }

    if (io->locked) {
        ngx_http_openbank_state_unlock(io->lock_fd);
        io->locked = 0;
    }

    if (io->buf) {
        ngx_free(io->buf);
        io->buf = NULL;
    }
}


/* the journal was rewritten: its size is the new base */

static ngx_int_t
ngx_http_openbank_journal_rewritten(ngx_http_openbank_store_value_t *sv,
    void *data)
{
    size_t *len = data;

    ngx_http_openbank_journal_meta_t  *meta;

    meta = (ngx_http_openbank_journal_meta_t *) sv->value;

    meta->generation++;
    meta->bytes = 0;
    meta->base = *len;

    return NGX_HTTP_OPENBANK_STORE_KEEP;
}
