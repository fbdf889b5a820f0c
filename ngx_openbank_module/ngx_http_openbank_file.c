
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * Durable files under openbank_state, replaced atomically: the new
 * content goes to a temporary file in the same directory, is flushed to
 * disk, and is renamed over the old one; the directory is flushed too.
 * A reader sees the old file or the new one, never a part of either,
 * even after a crash.
 */


#include <ngx_http_openbank.h>


ngx_int_t
ngx_http_openbank_write_file(ngx_log_t *log, ngx_str_t *name, u_char *data,
    size_t len)
{
    u_char    *p, *dir, tmp[NGX_MAX_PATH];
    ssize_t    n;
    ngx_fd_t   fd;

    if (name->len + sizeof(".tmp.4294967295") >= NGX_MAX_PATH) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "openbank: state file name \"%V\" is too long", name);
        return NGX_ERROR;
    }

    p = ngx_sprintf(tmp, "%V.tmp.%P%Z", name, ngx_pid);

    fd = ngx_open_file(tmp, NGX_FILE_WRONLY, NGX_FILE_TRUNCATE,
                       NGX_FILE_DEFAULT_ACCESS);

    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_open_file_n " \"%s\" failed", tmp);
        return NGX_ERROR;
    }

    while (len) {
        n = write(fd, data, len);

        if (n == -1) {
            if (ngx_errno == NGX_EINTR) {
                continue;
            }

            ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                          "write() \"%s\" failed", tmp);
            goto failed;
        }

        data += n;
        len -= n;
    }

    if (fsync(fd) == -1) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      "fsync() \"%s\" failed", tmp);
        goto failed;
    }

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_close_file_n " \"%s\" failed", tmp);
        (void) ngx_delete_file(tmp);
        return NGX_ERROR;
    }

    fd = NGX_INVALID_FILE;

    if (ngx_rename_file(tmp, name->data) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_rename_file_n " \"%s\" to \"%V\" failed",
                      tmp, name);
        (void) ngx_delete_file(tmp);
        return NGX_ERROR;
    }

    /* the rename itself is durable once the directory is flushed */

    dir = tmp;
    p = ngx_cpymem(dir, name->data, name->len);
    *p = '\0';

    while (p > dir && *p != '/') {
        p--;
    }

    if (p > dir) {
        *p = '\0';

        fd = ngx_open_file(dir, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

        if (fd != NGX_INVALID_FILE) {
            (void) fsync(fd);
            (void) ngx_close_file(fd);
        }
    }

    return NGX_OK;

failed:

    (void) ngx_close_file(fd);
    (void) ngx_delete_file(tmp);

    return NGX_ERROR;
}
