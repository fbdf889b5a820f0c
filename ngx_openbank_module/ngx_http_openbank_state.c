
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Durable files under "openbank_state", written atomically: a temporary
 * file beside the target, written and fsync()ed, renamed over the target,
 * and the directory fsync()ed, so that after a crash a reader finds either
 * the old content or the new one, never a mix.  Readers still check what
 * they read (the writers put a checksum in their files): a disk can lie.
 */


#include <ngx_http_openbank.h>
#include <ngx_http_openbank_state.h>
#include <ngx_http_openbank_util.h>

#include <sys/file.h>


static ngx_int_t ngx_http_openbank_state_sync_dir(ngx_log_t *log,
    ngx_uint_t level, u_char *file);


ngx_int_t
ngx_http_openbank_state_write(ngx_log_t *log, ngx_str_t *path, u_char *buf,
    size_t len)
{
    return ngx_http_openbank_state_write_as(log, path, buf, len,
                                            (ngx_uid_t) NGX_CONF_UNSET_UINT);
}


/*
 * The same, the file given to "user" when root writes it (the master, at
 * start, writes files the workers go on with).
 */

ngx_int_t
ngx_http_openbank_state_write_as(ngx_log_t *log, ngx_str_t *path,
    u_char *buf, size_t len, ngx_uid_t user)
{
    return ngx_http_openbank_state_write_level(log, NGX_LOG_ALERT, path, buf,
                                               len, user);
}


/*
 * The same, its failures logged at "level": a writer that retries (the
 * counters' snapshots) says so once, not at every attempt.
 */

ngx_int_t
ngx_http_openbank_state_write_level(ngx_log_t *log, ngx_uint_t level,
    ngx_str_t *path, u_char *buf, size_t len, ngx_uid_t user)
{
    u_char     *tmp;
    ssize_t     n;
    ngx_fd_t    fd;
    ngx_err_t   err;

    tmp = ngx_alloc(path->len + sizeof(".tmp.") + NGX_INT_T_LEN, log);
    if (tmp == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_sprintf(tmp, "%V.tmp.%P%Z", path, ngx_pid);

    fd = ngx_open_file(tmp, NGX_FILE_WRONLY, NGX_FILE_TRUNCATE, 0600);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(level, log, ngx_errno,
                      ngx_open_file_n " \"%s\" failed", tmp);
        ngx_free(tmp);
        return NGX_ERROR;
    }

    if (user != (ngx_uid_t) NGX_CONF_UNSET_UINT && geteuid() == 0
        && fchown(fd, user, (gid_t) -1) == -1)
    {
        ngx_log_error(level, log, ngx_errno,
                      "fchown() \"%s\" failed", tmp);
        goto failed;
    }

    while (len) {
        n = write(fd, buf, len);

        if (n == -1) {
            err = ngx_errno;

            if (err == NGX_EINTR) {
                continue;
            }

            ngx_log_error(level, log, err,
                          "write() \"%s\" failed", tmp);
            goto failed;
        }

        buf += n;
        len -= n;
    }

    if (fsync(fd) == -1) {
        ngx_log_error(level, log, ngx_errno,
                      "fsync() \"%s\" failed", tmp);
        goto failed;
    }

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_log_error(level, log, ngx_errno,
                      ngx_close_file_n " \"%s\" failed", tmp);
        fd = NGX_INVALID_FILE;
        goto failed;
    }

    fd = NGX_INVALID_FILE;

    if (ngx_rename_file(tmp, path->data) == NGX_FILE_ERROR) {
        ngx_log_error(level, log, ngx_errno,
                      ngx_rename_file_n " \"%s\" to \"%V\" failed",
                      tmp, path);
        goto failed;
    }

    ngx_free(tmp);

    return ngx_http_openbank_state_sync_dir(log, level, path->data);

failed:

    if (fd != NGX_INVALID_FILE) {
        (void) ngx_close_file(fd);
    }

    (void) ngx_delete_file(tmp);
    ngx_free(tmp);

    return NGX_ERROR;
}


/* the rename itself is durable only once the directory is synced */

static ngx_int_t
ngx_http_openbank_state_sync_dir(ngx_log_t *log, ngx_uint_t level,
    u_char *file)
{
    u_char    *slash;
    ngx_fd_t   fd;
    u_char     dir[NGX_MAX_PATH];

    slash = (u_char *) strrchr((char *) file, '/');

    if (slash == NULL) {
        ngx_cpystrn(dir, (u_char *) ".", 2);

    } else if ((size_t) (slash - file) + 1 > sizeof(dir)) {
        return NGX_ERROR;

    } else {
        ngx_cpystrn(dir, file, slash - file + 1);
    }

    fd = ngx_open_file(dir, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(level, log, ngx_errno,
                      ngx_open_file_n " \"%s\" failed", dir);
        return NGX_ERROR;
    }

    if (fsync(fd) == -1) {
        ngx_log_error(level, log, ngx_errno,
                      "fsync() \"%s\" failed", dir);
        (void) ngx_close_file(fd);
        return NGX_ERROR;
    }

    (void) ngx_close_file(fd);

    return NGX_OK;
}


/*
 * A whole state file (ngx_http_openbank_read_whole()) of at most "max"
 * bytes into "pool" (ngx_alloc() memory when NULL): NGX_OK, NGX_DECLINED
 * when there is no such file, NGX_ERROR logged at "level" otherwise.
 */

ngx_int_t
ngx_http_openbank_state_read(ngx_log_t *log, ngx_uint_t level,
    ngx_pool_t *pool, ngx_str_t *path, size_t max, ngx_str_t *out)
{
    ngx_int_t    rc;
    ngx_err_t    err;
    const char  *what;

    rc = ngx_http_openbank_read_whole(pool, path, max, out, &err, &what);

    if (rc != NGX_ERROR) {
        return rc;
    }

    if (what == NULL) {
        ngx_log_error(level, log, 0,
                      "state file \"%V\" is not a regular file of at most "
                      "%uz bytes", path, max);

    } else {
        ngx_log_error(level, log, err, "%s \"%V\" failed", what, path);
    }

    return NGX_ERROR;
}


/*
 * The module's one lock between processes on a state file: flock() of
 * "fd", shared or exclusive.  NGX_OK: held; NGX_BUSY: another process
 * holds it (LOCK_NB: a worker's event loop never waits on it); NGX_ERROR
 * with ngx_errno set.  "wait" only in a thread of the pool or a process
 * that serves no request (the master at start, the cache manager).
 */

ngx_int_t
ngx_http_openbank_state_lock(ngx_fd_t fd, ngx_uint_t exclusive,
    ngx_uint_t wait)
{
    int  op;

    op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);

    while (flock(fd, op) == -1) {

        if (ngx_errno == NGX_EINTR) {
            continue;
        }

        return (ngx_errno == EWOULDBLOCK) ? NGX_BUSY : NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_http_openbank_state_unlock(ngx_fd_t fd)
{
    (void) flock(fd, LOCK_UN);
}
