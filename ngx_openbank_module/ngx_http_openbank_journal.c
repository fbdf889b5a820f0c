
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * An append-only journal of records under "openbank_state": the durable
 * half of state that must survive a restart the moment it is written
 * (idempotency records).  Nothing here knows what a record means.
 *
 * On disk, each record is a 12-byte frame and its payload:
 *
 *     magic "OBJ1" (4 bytes) | payload length (4) | CRC-32 of payload (4)
 *
 * (the CRC-32 of zlib, gzip and nginx's ngx_crc32_long(): zlib's is faster)
 *
 * in host byte order.  An append is one write() with O_APPEND (whole
 * records never interleave between workers) followed by fdatasync(), so
 * a record the caller was told is written is on disk.  Reading stops at
 * nothing: a torn or corrupt record (a crash in the middle of a write)
 * is skipped by searching for the next frame whose checksum holds, and
 * a torn last record is simply ignored.  A rewrite (compaction) is a
 * temporary file, fsync, rename over the journal, fsync of the folder.
 */


#include <ngx_http_openbank.h>
#include <zlib.h>


#define NGX_HTTP_OPENBANK_JOURNAL_MAGIC   0x314a424fU    /* "OBJ1" */
#define NGX_HTTP_OPENBANK_JOURNAL_MAX     (1024 * 1024 * 1024)




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


ngx_fd_t
ngx_http_openbank_journal_open(ngx_str_t *name, ngx_log_t *log)
{
    ngx_fd_t  fd;

    fd = open((char *) name->data, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
              0600);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "openbank: open() journal \"%V\" failed", name);
    }

    return fd;
}


/*
 * Writes framed records (one buffer, one write) and waits until they are
 * on disk.  NGX_ERROR means the caller must not believe them durable.
 */

ngx_int_t
ngx_http_openbank_journal_append(ngx_fd_t fd, ngx_str_t *name, u_char *data,
    size_t len, ngx_log_t *log)
{
    ssize_t  n;

    n = write(fd, data, len);

    if (n != (ssize_t) len) {
        ngx_log_error(NGX_LOG_ALERT, log, n == -1 ? ngx_errno : 0,
                      "openbank: write() to journal \"%V\" failed "
                      "(%z of %uz bytes)", name, n, len);
        return NGX_ERROR;
    }

    if (fdatasync(fd) == -1) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "openbank: fdatasync() of journal \"%V\" failed",
                      name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Calls "handler" for each intact record of the journal.  NGX_DECLINED:
 * there is no journal; NGX_ERROR: it cannot be read (the caller refuses
 * rather than guess).  "skipped" counts the bytes of damaged records.
 */

ngx_int_t
ngx_http_openbank_journal_read(ngx_str_t *name, ngx_log_t *log,
    ngx_http_openbank_journal_pt handler, void *data, size_t *skipped)
{
    u_char           *buf, *p, *last;
    ssize_t           n;
    ngx_fd_t          fd;
    uint32_t          v[3];
    ngx_int_t         rc;
    ngx_file_info_t   fi;

    *skipped = 0;

    fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        if (ngx_errno == NGX_ENOENT) {
            return NGX_DECLINED;
        }

        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_open_file_n " journal \"%V\" failed", name);
        return NGX_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_fd_info_n " journal \"%V\" failed", name);
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    if (ngx_file_size(&fi) > NGX_HTTP_OPENBANK_JOURNAL_MAX) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "openbank: journal \"%V\" is larger than %d bytes",
                      name, NGX_HTTP_OPENBANK_JOURNAL_MAX);
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    buf = ngx_alloc((size_t) ngx_file_size(&fi) + 1, log);
    if (buf == NULL) {
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    n = ngx_read_fd(fd, buf, (size_t) ngx_file_size(&fi));

    ngx_close_file(fd);

    if (n == -1) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_read_fd_n " journal \"%V\" failed", name);
        ngx_free(buf);
        return NGX_ERROR;
    }

    p = buf;
    last = buf + n;
    rc = NGX_OK;

    while (last - p >= NGX_HTTP_OPENBANK_JOURNAL_FRAME) {

        ngx_memcpy(v, p, sizeof(v));

        if (v[0] != NGX_HTTP_OPENBANK_JOURNAL_MAGIC
            || v[1] > (size_t) (last - p) - NGX_HTTP_OPENBANK_JOURNAL_FRAME
            || crc32(0, p + NGX_HTTP_OPENBANK_JOURNAL_FRAME, v[1]) != v[2])
        {
            /* damaged: look for the next intact frame */
            p++;
            (*skipped)++;
            continue;
        }

        if (handler(data, p + NGX_HTTP_OPENBANK_JOURNAL_FRAME, v[1])
            != NGX_OK)
        {
            rc = NGX_ERROR;
            break;
        }

        p += NGX_HTTP_OPENBANK_JOURNAL_FRAME + v[1];
    }

    *skipped += last - p;

    ngx_free(buf);

    return rc;
}


/*
 * Replaces the journal with "data" (framed records) atomically: after a
 * crash at any point, the journal is either the old one or the new one.
 */

ngx_int_t
ngx_http_openbank_journal_rewrite(ngx_str_t *name, u_char *data, size_t len,
    ngx_uid_t user, ngx_log_t *log)
{
    return ngx_http_openbank_state_write_as(log, name, data, len, user);
}

