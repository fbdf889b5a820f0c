
/*
 * Copyright (C) The OpenBank gateway authors
 *
 * One Redis connection on nginx's event loop: ngx_event_connect_peer()
 * connects without blocking, commands are written back to back as they
 * come (pipelined) and their replies matched in order (FIFO), parsed by
 * hiredis's redisReader; hiredis does no I/O here.  Every call has a
 * deadline (an nginx timer): when one passes, or the connection fails,
 * the connection is closed and every call on it hears "no answer"
 * (docs/architecture.md, "A second backend (a cluster: Redis)").
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>
#include <ngx_http_openbank_redis.h>


#define NGX_HTTP_OPENBANK_REDIS_READ  16384


static ngx_int_t ngx_http_openbank_redis_connect(
    ngx_http_openbank_redis_t *rd, ngx_msec_t left);
static ngx_int_t ngx_http_openbank_redis_queue(ngx_http_openbank_redis_t *rd,
    ngx_http_openbank_redis_call_t *call, ngx_msec_t left);
static ngx_int_t ngx_http_openbank_redis_own(ngx_http_openbank_redis_t *rd,
    int argc, const char **argv, const size_t *argvlen, ngx_msec_t left);
static void ngx_http_openbank_redis_owned(ngx_http_openbank_redis_call_t *call,
    redisReply *reply);
static ngx_int_t ngx_http_openbank_redis_append(ngx_http_openbank_redis_t *rd,
    char *cmd, size_t len);
static void ngx_http_openbank_redis_write_handler(ngx_event_t *wev);
static void ngx_http_openbank_redis_read_handler(ngx_event_t *rev);
static ngx_int_t ngx_http_openbank_redis_flush(ngx_http_openbank_redis_t *rd);
static void ngx_http_openbank_redis_timeout(ngx_event_t *ev);
static void ngx_http_openbank_redis_fail(ngx_http_openbank_redis_t *rd);
static void ngx_http_openbank_redis_dummy(ngx_event_t *ev);


/* what a timer's event names in the debug log: no connection, fd -1 */
ngx_connection_t  ngx_http_openbank_redis_no_connection = {
    .fd = (ngx_socket_t) -1
};


ngx_http_openbank_redis_call_t *
ngx_http_openbank_redis_call(int argc, const char **argv,
    const size_t *argvlen, ngx_http_openbank_redis_handler_pt handler,
    void *data, ngx_msec_t timeout)
{
    int                              len;
    ngx_http_openbank_redis_call_t  *call;

    call = ngx_calloc(sizeof(ngx_http_openbank_redis_call_t), ngx_cycle->log);
    if (call == NULL) {
        return NULL;
    }

    len = redisFormatCommandArgv(&call->cmd, argc, argv, argvlen);
    if (len < 0) {
        ngx_free(call);
        return NULL;
    }

    call->len = len;
    call->handler = handler;
    call->data = data;
    call->deadline = ngx_current_msec + timeout;

    call->timer.handler = ngx_http_openbank_redis_timeout;
    call->timer.data = &ngx_http_openbank_redis_no_connection;
    call->timer.log = ngx_cycle->log;

    return call;
}


void
ngx_http_openbank_redis_call_free(ngx_http_openbank_redis_call_t *call)
{
    if (call->timer.timer_set) {
        ngx_del_timer(&call->timer);
    }

    /* an AUTH holds the password */
    ngx_explicit_memzero(call->cmd, call->len);

    redisFreeCommand(call->cmd);
    ngx_free(call);
}


/*
 * The call goes out on this connection, connected first if it is not:
 * NGX_OK, the handler hears later; NGX_ERROR, it will not (no socket,
 * no memory, the deadline already passed), and the call is the
 * caller's again.
 */

ngx_int_t
ngx_http_openbank_redis_send(ngx_http_openbank_redis_t *rd,
    ngx_http_openbank_redis_call_t *call)
{
    ngx_msec_int_t  left;

    static const char  *asking[] = { "ASKING" };
    static size_t       asking_len[] = { 6 };

    left = (ngx_msec_int_t) (call->deadline - ngx_current_msec);
    if (left <= 0) {
        return NGX_ERROR;
    }

    if (rd->peer.connection == NULL
        && ngx_http_openbank_redis_connect(rd, (ngx_msec_t) left) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* ASKING is a call of its own, just before: the replies stay in order */

    if (call->asking
        && ngx_http_openbank_redis_own(rd, 1, asking, asking_len,
                                       (ngx_msec_t) left)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_redis_queue(rd, call, (ngx_msec_t) left) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (rd->connected) {
        if (ngx_http_openbank_redis_flush(rd) != NGX_OK) {
            /* the call is on the queue: it hears from fail() */
            ngx_http_openbank_redis_fail(rd);
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_redis_queue(ngx_http_openbank_redis_t *rd,
    ngx_http_openbank_redis_call_t *call, ngx_msec_t left)
{
    struct timeval  tv;

    if (ngx_http_openbank_redis_append(rd, call->cmd, call->len) != NGX_OK) {
        return NGX_ERROR;
    }

    call->rd = rd;
    ngx_gettimeofday(&tv);
    call->start = (uint64_t) tv.tv_sec * 1000000 + tv.tv_usec;

    ngx_queue_insert_tail(&rd->calls, &call->queue);
    ngx_add_timer(&call->timer, left);

    return NGX_OK;
}


/* a call of the connection itself (AUTH, ASKING): an error fails it */

static ngx_int_t
ngx_http_openbank_redis_own(ngx_http_openbank_redis_t *rd, int argc,
    const char **argv, const size_t *argvlen, ngx_msec_t left)
{
    ngx_http_openbank_redis_call_t  *call;

    call = ngx_http_openbank_redis_call(argc, argv, argvlen,
                                        ngx_http_openbank_redis_owned, rd,
                                        left);
    if (call == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_openbank_redis_queue(rd, call, left) != NGX_OK) {
        ngx_http_openbank_redis_call_free(call);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_openbank_redis_owned(ngx_http_openbank_redis_call_t *call,
    redisReply *reply)
{
    ngx_http_openbank_redis_t  *rd;

    rd = call->data;

    ngx_http_openbank_redis_call_free(call);

    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {

        /* what follows on this connection is not to be trusted */

        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "openbank: redis %V refused AUTH or ASKING: \"%*s\"",
                      &rd->name, ngx_min(reply->len, 200), reply->str);

        ngx_http_openbank_redis_fail(rd);
    }
}


/* closes the connection: the calls on it hear "no answer" */

void
ngx_http_openbank_redis_close(ngx_http_openbank_redis_t *rd)
{
    ngx_queue_t                     *q, calls;
    ngx_http_openbank_redis_call_t  *call;

    if (rd->peer.connection) {
        ngx_close_connection(rd->peer.connection);
        rd->peer.connection = NULL;
    }

    if (rd->reader) {
        redisReaderFree(rd->reader);
        rd->reader = NULL;
    }

    if (rd->password && rd->out) {
        /* the AUTH of the connection was there */
        ngx_explicit_memzero(rd->out, rd->out_size);
    }

    rd->connected = 0;
    rd->out_pos = 0;
    rd->out_len = 0;
    rd->gen++;

    if (rd->calls.next == NULL) {
        ngx_queue_init(&rd->calls);
        return;
    }

    /* a handler may send again, on this connection or another */

    ngx_queue_init(&calls);

    if (!ngx_queue_empty(&rd->calls)) {
        calls = rd->calls;
        calls.next->prev = &calls;
        calls.prev->next = &calls;
        ngx_queue_init(&rd->calls);
    }

    while (!ngx_queue_empty(&calls)) {
        q = ngx_queue_head(&calls);
        ngx_queue_remove(q);

        call = ngx_queue_data(q, ngx_http_openbank_redis_call_t, queue);
        call->rd = NULL;

        if (call->timer.timer_set) {
            ngx_del_timer(&call->timer);
        }

        call->handler(call, NULL);
    }
}


/*
 * Bytes from Redis: every complete reply goes to the call at the head of
 * the queue.  NGX_ERROR: not Redis's protocol, or a reply nobody asked
 * for; the caller closes the connection.
 */

ngx_int_t
ngx_http_openbank_redis_feed(ngx_http_openbank_redis_t *rd, u_char *buf,
    size_t n)
{
    void                            *reply;
    ngx_uint_t                       gen;
    ngx_queue_t                     *q;
    ngx_http_openbank_redis_call_t  *call;

    if (redisReaderFeed(rd->reader, (const char *) buf, n) != REDIS_OK) {
        return NGX_ERROR;
    }

    gen = rd->gen;

    for ( ;; ) {
        reply = NULL;

        if (redisReaderGetReply(rd->reader, &reply) != REDIS_OK) {

            if (rd->reader->err == REDIS_ERR_OOM) {
                ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                              "openbank: redis %V: an answer too large "
                              "to read (an array of more than %d "
                              "elements), or out of memory", &rd->name,
                              NGX_HTTP_OPENBANK_REDIS_MAX_ELEMENTS);
                return NGX_ERROR;
            }

            ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                          "openbank: redis %V: %s", &rd->name,
                          rd->reader->errstr);
            return NGX_ERROR;
        }

        if (reply == NULL) {
            return NGX_OK;
        }

        if (ngx_queue_empty(&rd->calls)) {
            freeReplyObject(reply);
            ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                          "openbank: redis %V: a reply to no command",
                          &rd->name);
            return NGX_ERROR;
        }

        q = ngx_queue_head(&rd->calls);
        ngx_queue_remove(q);

        call = ngx_queue_data(q, ngx_http_openbank_redis_call_t, queue);
        call->rd = NULL;

        if (call->timer.timer_set) {
            ngx_del_timer(&call->timer);
        }

        call->handler(call, reply);

        freeReplyObject(reply);

        if (rd->gen != gen) {
            /* a handler closed it */
            return NGX_OK;
        }
    }
}


static ngx_int_t
ngx_http_openbank_redis_connect(ngx_http_openbank_redis_t *rd,
    ngx_msec_t left)
{
    ngx_int_t          rc;
    ngx_connection_t  *c;
    const char        *argv[2];
    size_t             argvlen[2];

    if (rd->calls.next == NULL) {
        ngx_queue_init(&rd->calls);
    }

    rd->reader = ngx_http_openbank_redis_reader_create();
    if (rd->reader == NULL) {
        return NGX_ERROR;
    }

    rd->peer.get = ngx_event_get_peer;
    rd->peer.log = rd->log;
    rd->peer.log_error = NGX_ERROR_ERR;

    rc = ngx_event_connect_peer(&rd->peer);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        if (rd->peer.connection) {
            ngx_close_connection(rd->peer.connection);
            rd->peer.connection = NULL;
        }

        redisReaderFree(rd->reader);
        rd->reader = NULL;

        return NGX_ERROR;
    }

    c = rd->peer.connection;
    c->data = rd;
    c->log = rd->log;
    c->read->log = rd->log;
    c->write->log = rd->log;
    c->read->handler = ngx_http_openbank_redis_read_handler;
    c->write->handler = ngx_http_openbank_redis_write_handler;

    /* closed at a worker's shutdown as any idle connection */
    c->idle = 1;

    rd->connected = 0;
    rd->out_pos = 0;
    rd->out_len = 0;

    if (rc == NGX_OK) {
        rd->connected = 1;
    }

    if (rd->password) {

        /* AUTH first: a refusal fails the connection (redis_owned) */

        argv[0] = "AUTH";
        argvlen[0] = 4;
        argv[1] = (const char *) rd->password->data;
        argvlen[1] = rd->password->len;

        if (ngx_http_openbank_redis_own(rd, 2, argv, argvlen, left)
            != NGX_OK)
        {
            ngx_http_openbank_redis_close(rd);
            return NGX_ERROR;
        }
    }

    /* NGX_AGAIN: the write event says when it is connected */

    return NGX_OK;
}


static ngx_int_t
ngx_http_openbank_redis_append(ngx_http_openbank_redis_t *rd, char *cmd,
    size_t len)
{
    u_char  *p;
    size_t   size;

    if (rd->out_pos == rd->out_len) {
        rd->out_pos = 0;
        rd->out_len = 0;
    }

    if (rd->out_len + len > rd->out_size) {
        size = ngx_max(rd->out_size * 2, rd->out_len - rd->out_pos + len);
        size = ngx_max(size, 4096);

        p = ngx_alloc(size, rd->log);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (rd->out) {
            ngx_memcpy(p, rd->out + rd->out_pos, rd->out_len - rd->out_pos);
            ngx_free(rd->out);
        }

        rd->out_len -= rd->out_pos;
        rd->out_pos = 0;
        rd->out = p;
        rd->out_size = size;
    }

    ngx_memcpy(rd->out + rd->out_len, cmd, len);
    rd->out_len += len;

    return NGX_OK;
}


static void
ngx_http_openbank_redis_write_handler(ngx_event_t *wev)
{
    ngx_connection_t           *c;
    ngx_http_openbank_redis_t  *rd;

    c = wev->data;
    rd = c->data;

    /* the first one also says that the connection is made */

    if (ngx_http_openbank_redis_flush(rd) != NGX_OK) {
        ngx_http_openbank_redis_fail(rd);
    }
}


/* writes what waits; a first write also tells that it is connected */

static ngx_int_t
ngx_http_openbank_redis_flush(ngx_http_openbank_redis_t *rd)
{
    ssize_t            n;
    ngx_connection_t  *c;

    c = rd->peer.connection;

    while (rd->out_pos < rd->out_len) {
        n = c->send(c, rd->out + rd->out_pos, rd->out_len - rd->out_pos);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR || n == 0) {
            return NGX_ERROR;
        }

        rd->out_pos += n;
        rd->connected = 1;
    }

    if (rd->out_pos == rd->out_len) {
        rd->out_pos = 0;
        rd->out_len = 0;
        rd->connected = 1;
        c->write->handler = ngx_http_openbank_redis_dummy;

    } else {
        c->write->handler = ngx_http_openbank_redis_write_handler;
    }

    if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_openbank_redis_read_handler(ngx_event_t *rev)
{
    ssize_t                     n;
    ngx_uint_t                  gen;
    ngx_connection_t           *c;
    ngx_http_openbank_redis_t  *rd;
    u_char                      buf[NGX_HTTP_OPENBANK_REDIS_READ];

    c = rev->data;
    rd = c->data;
    gen = rd->gen;

    if (c->close) {
        /* the worker shuts down */
        ngx_http_openbank_redis_close(rd);
        return;
    }

    for ( ;; ) {
        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR || n == 0) {

            if (ngx_queue_empty(&rd->calls)) {
                /* an idle connection closed (Redis's timeout, a restart) */
                ngx_http_openbank_redis_close(rd);
                return;
            }

            ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                          "openbank: redis %V closed the connection",
                          &rd->name);
            ngx_http_openbank_redis_fail(rd);
            return;
        }

        if (ngx_http_openbank_redis_feed(rd, buf, n) != NGX_OK) {
            ngx_http_openbank_redis_fail(rd);
            return;
        }

        if (rd->gen != gen) {
            return;
        }
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_openbank_redis_fail(rd);
    }
}


/* a call's deadline passed: the connection is not to be trusted */

static void
ngx_http_openbank_redis_timeout(ngx_event_t *ev)
{
    ngx_http_openbank_redis_call_t  *call;

    call = (ngx_http_openbank_redis_call_t *)
               ((u_char *) ev - offsetof(ngx_http_openbank_redis_call_t,
                                         timer));

    ngx_log_error(NGX_LOG_ERR, call->rd->log, NGX_ETIMEDOUT,
                  "openbank: redis %V timed out", &call->rd->name);

    ngx_http_openbank_redis_fail(call->rd);
}


static void
ngx_http_openbank_redis_fail(ngx_http_openbank_redis_t *rd)
{
    if (rd->failed) {
        rd->failed(rd);
    }

    ngx_http_openbank_redis_close(rd);
}


static void
ngx_http_openbank_redis_dummy(ngx_event_t *ev)
{
}
