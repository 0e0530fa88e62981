/* HTTP/1.1 server glue: libuv streams (TCP and unix sockets) + http-parser 2.9.4.
 * Every connection lives in a preallocated slot with a fixed read buffer (one
 * request's cap: max_header_bytes + max_body_bytes) and a fixed output buffer;
 * one request at a time per connection, pipelined bytes wait in the read buffer.
 * Idle connections sit in one FIFO, requests being received in another (by
 * the time their first byte came); a single repeating timer sweeps both.
 * It knows nothing of routes, JSON beyond the error body, or TLS. */
#include "lib/http.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <http_parser.h>

#include "lib/buf.h"
#include "lib/container.h"
#include "lib/text.h"
#include "lib/log.h"

#define HTTP_SERVER_MAGIC 0x48535256u /* "HSRV" */
#define HTTP_CONN_MAGIC 0x48434f4eu   /* "HCON" */
#define HTTP_XCHG_MAGIC 0x48584348u   /* "HXCH" */
#define HTTP_BACKLOG 511
#define HTTP_HEAD_STACK 512   /* status line + our own headers fit in this */
#define HTTP_FULL_LOG_MS 1000 /* "slots full" is logged at most once per second */

enum conn_state {
    CONN_FREE = 0, /* in the free list */
    CONN_OPEN,     /* handle open */
    CONN_CLOSING,  /* uv_close called, close callback pending */
    CONN_ORPHAN,   /* handle closed, exchange still pending: slot reserved */
};

struct http_exchange {
    uint32_t magic;
};

struct hdr_off {
    uint32_t name_off, name_len; /* offsets into the connection's read buffer */
    uint32_t val_off, val_len;
};

struct http_conn {
    uint32_t magic;
    enum conn_state state;
    struct http_server *srv;
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    http_parser parser;
    struct http_exchange x;                /* the one exchange this connection may have */
    struct http_conn *prev, *next;         /* idle FIFO (open, no pending exchange) or free list */
    struct http_conn *resume_next;         /* deferred-resume list */
    uint64_t active_ms;                    /* uv_now() of the last activity */
    struct http_conn *req_prev, *req_next; /* request FIFO, while in_req */
    uint64_t req_start_ms;                 /* uv_now() when the current request began */

    char *in;         /* fixed read buffer of srv->in_cap bytes */
    size_t in_len;    /* bytes held; the current request starts at in[0] */
    size_t in_parsed; /* bytes fed to the parser */

    struct buf out;    /* pending output over the slot's fixed output buffer
                          (srv->cfg.out_buf_bytes), on the heap while oversized;
                          pinned while a uv_write reads it */
    size_t out_flight; /* bytes of out[0..] handed to the in-flight uv_write */

    /* current request, as offsets into in */
    uint32_t url_off, url_len;
    uint32_t body_off, body_len;
    struct hdr_off hdr[HTTP_MAX_HEADERS];
    unsigned nhdr;
    unsigned hdr_seen;  /* headers seen, kept or not */
    int hdr_last;       /* 0 none, 1 field, 2 value: the last header callback */
    int reject_status;  /* 413/431 decided in a callback, 0 otherwise */
    bool headers_done;  /* on_headers_complete ran for the current request */
    bool msg_done;      /* on_message_complete ran; parser paused */
    bool keep_alive;    /* of the completed request */
    bool pending;       /* exchange handed to the handler, not answered */
    bool gone;          /* client hung up or errored */
    bool close_after;   /* close (via shutdown + linger) once the output drains */
    bool lingering;     /* shutdown sent; discard input until EOF or idle timeout */
    bool reading;       /* uv_read_start active */
    bool writing;       /* uv_write in flight */
    bool in_process;    /* conn_process on the stack */
    bool in_idle;       /* linked in the idle FIFO */
    bool in_req;        /* linked in the request FIFO: a request begun, not wholly received */
    bool resume_queued; /* linked in the deferred-resume list */
};

struct http_server {
    uint32_t magic;
    uv_loop_t *loop;
    struct http_server_config cfg;
    size_t in_cap; /* max_header_bytes + max_body_bytes */
    http_handler_cb *cb;
    void *arg;

    uv_tcp_t tcp;
    uv_pipe_t pipe;
    bool tcp_on, pipe_on; /* listener handle initialised and not closed */
    int port;
    char *unix_path; /* unlinked at close */

    uv_timer_t sweep;  /* idle sweep, unref'd */
    uv_idle_t resumer; /* runs deferred resumes after async replies */

    struct http_conn *conns;
    char *bufs;
    struct http_conn *free_head;
    struct http_conn *idle_head, *idle_tail;
    struct http_conn *req_head, *req_tail; /* by req_start_ms, oldest first */
    struct http_conn *resume_head;

    unsigned nhandles; /* initialised handles not yet closed */
    unsigned npending; /* exchanges awaiting http_reply */
    bool draining;     /* http_server_stop_accepting was called */
    bool closing;      /* http_server_close was called */
    uint64_t full_log_ms;
    unsigned full_rejects; /* since the last "slots full" log line */
    http_server_closed_cb *closed_cb;
    void *closed_arg;
};

static int on_msg_begin(http_parser *p);
static int on_url(http_parser *p, const char *at, size_t len);
static int on_hdr_field(http_parser *p, const char *at, size_t len);
static int on_hdr_value(http_parser *p, const char *at, size_t len);
static int on_headers_done(http_parser *p);
static int on_body(http_parser *p, const char *at, size_t len);
static int on_chunk_hdr(http_parser *p);
static int on_msg_done(http_parser *p);

static const http_parser_settings parser_settings = {
    .on_message_begin = on_msg_begin,
    .on_url = on_url,
    .on_header_field = on_hdr_field,
    .on_header_value = on_hdr_value,
    .on_headers_complete = on_headers_done,
    .on_body = on_body,
    .on_chunk_header = on_chunk_hdr,
    .on_message_complete = on_msg_done,
};

static void conn_process(struct http_conn *c);
static void conn_close(struct http_conn *c);
static void server_maybe_finish(struct http_server *s);

/* ---------- small helpers ---------- */

static struct http_conn *conn_of_parser(http_parser *p)
{
    struct http_conn *c = container_of(p, struct http_conn, parser);
    assert(c->magic == HTTP_CONN_MAGIC);
    return c;
}

/* Reason phrases come from http-parser's table (RFC 7231 names), except two
 * that RFC 9110 renamed and that we have always sent with the new name: 413
 * (also the error body of a too-large request) and 422 (our answer to a bad
 * correlationId or amount). A code http-parser does not know is "Unknown". */
static const char *reason_phrase(int status)
{
    switch (status) {
    case 413:
        return "Content Too Large"; /* http-parser: "Payload Too Large" */
    case 422:
        return "Unprocessable Content"; /* http-parser: "Unprocessable Entity" */
    default:
        break;
    }
    const char *s = http_status_str((enum http_status)status);
    return strcmp(s, "<unknown>") == 0 ? "Unknown" : s;
}

static bool status_has_no_body(int status)
{
    return (status >= 100 && status < 200) || status == 204 || status == 304;
}

/* ---------- idle FIFO and deferred resumes ---------- */

static void idle_remove(struct http_conn *c)
{
    struct http_server *s = c->srv;
    if (!c->in_idle)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->idle_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        s->idle_tail = c->prev;
    c->prev = c->next = NULL;
    c->in_idle = false;
}

/* Marks activity: the connection moves to the tail of the idle FIFO. Connections
 * with a pending exchange are not in the FIFO (the wait is ours, not theirs). */
static void conn_touch(struct http_conn *c)
{
    struct http_server *s = c->srv;
    c->active_ms = uv_now(s->loop);
    if (c->state != CONN_OPEN || c->pending)
        return;
    if (c->in_idle && s->idle_tail == c)
        return;
    idle_remove(c);
    c->prev = s->idle_tail;
    c->next = NULL;
    if (s->idle_tail)
        s->idle_tail->next = c;
    else
        s->idle_head = c;
    s->idle_tail = c;
    c->in_idle = true;
}

/* The request FIFO: a connection joins it when a request's first byte is
 * parsed and leaves when the request is wholly received (or refused, or the
 * connection closes). Appends happen in uv_now() order, so the sweep stops at
 * the first entry still within its deadline. */
static void req_remove(struct http_conn *c)
{
    struct http_server *s = c->srv;
    if (!c->in_req)
        return;
    if (c->req_prev)
        c->req_prev->req_next = c->req_next;
    else
        s->req_head = c->req_next;
    if (c->req_next)
        c->req_next->req_prev = c->req_prev;
    else
        s->req_tail = c->req_prev;
    c->req_prev = c->req_next = NULL;
    c->in_req = false;
}

static void req_begin(struct http_conn *c)
{
    struct http_server *s = c->srv;
    req_remove(c);
    c->req_start_ms = uv_now(s->loop);
    c->req_prev = s->req_tail;
    c->req_next = NULL;
    if (s->req_tail)
        s->req_tail->req_next = c;
    else
        s->req_head = c;
    s->req_tail = c;
    c->in_req = true;
}

static void resume_remove(struct http_conn *c)
{
    struct http_conn **pp = &c->srv->resume_head;
    if (!c->resume_queued)
        return;
    while (*pp && *pp != c)
        pp = &(*pp)->resume_next;
    if (*pp)
        *pp = c->resume_next;
    c->resume_next = NULL;
    c->resume_queued = false;
}

static void on_resumer(uv_idle_t *h)
{
    struct http_server *s = container_of(h, struct http_server, resumer);
    assert(s->magic == HTTP_SERVER_MAGIC);
    /* Bounded: each pass takes the list as it is; conns queued meanwhile wait
     * for the next loop iteration. */
    struct http_conn *c = s->resume_head;
    s->resume_head = NULL;
    while (c) {
        struct http_conn *next = c->resume_next;
        c->resume_next = NULL;
        c->resume_queued = false;
        conn_process(c);
        c = next;
    }
    if (!s->resume_head)
        uv_idle_stop(&s->resumer);
}

static void resume_later(struct http_conn *c)
{
    struct http_server *s = c->srv;
    if (c->resume_queued)
        return;
    c->resume_next = s->resume_head;
    s->resume_head = c;
    c->resume_queued = true;
    if (!uv_is_active((uv_handle_t *)&s->resumer))
        uv_idle_start(&s->resumer, on_resumer);
}

/* ---------- reading ---------- */

static bool out_over_cap(const struct http_conn *c)
{
    return c->out.len >= c->srv->cfg.out_buf_bytes;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct http_conn *c = container_of(h, struct http_conn, h.handle);
    assert(c->magic == HTTP_CONN_MAGIC);
    if (c->lingering) {
        /* Discarded input: the whole buffer is scratch by now. */
        *buf = uv_buf_init(c->in, (unsigned)c->srv->in_cap);
        return;
    }
    *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->srv->in_cap - c->in_len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void conn_update_reading(struct http_conn *c)
{
    bool want = false;
    if (c->state == CONN_OPEN && !c->gone) {
        if (c->lingering)
            want = true;
        else if (!c->close_after && c->in_len < c->srv->in_cap && !out_over_cap(c))
            want = true;
    }
    if (want && !c->reading) {
        if (uv_read_start(&c->h.stream, on_alloc, on_read) == 0)
            c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop(&c->h.stream);
        c->reading = false;
    }
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct http_conn *c = container_of(st, struct http_conn, h.stream);
    assert(c->magic == HTTP_CONN_MAGIC);
    if (nread == 0)
        return;
    if (nread == UV_ENOBUFS) {
        uv_read_stop(st);
        c->reading = false;
        return;
    }
    if (nread < 0) {
        /* EOF or error. A pending exchange keeps the slot (ORPHAN after the
         * close) until the handler answers; its reply is dropped. */
        c->gone = true;
        conn_close(c);
        return;
    }
    if (c->lingering)
        return;
    c->in_len += (size_t)nread;
    assert(c->in_len <= c->srv->in_cap);
    conn_touch(c);
    conn_process(c);
}

/* ---------- writing ---------- */

static void conn_shutdown(struct http_conn *c);
static void on_write(uv_write_t *req, int status);

static void conn_flush(struct http_conn *c)
{
    assert(!c->writing && c->out.len > 0);
    uv_buf_t b = uv_buf_init(c->out.ptr, (unsigned)c->out.len);
    int rv = uv_write(&c->wreq, &c->h.stream, &b, 1, on_write);
    if (rv < 0) {
        c->gone = true;
        conn_close(c);
        return;
    }
    c->writing = true;
    c->out_flight = c->out.len;
    buf_pin(&c->out);
}

static void on_write(uv_write_t *req, int status)
{
    struct http_conn *c = container_of(req, struct http_conn, wreq);
    assert(c->magic == HTTP_CONN_MAGIC);
    c->writing = false;
    buf_unpin(&c->out);
    if (c->state != CONN_OPEN)
        return; /* cancelled by uv_close; buffers are reset in the close callback */
    if (status < 0) {
        c->gone = true;
        conn_close(c);
        return;
    }
    buf_consume(&c->out, c->out_flight); /* back to the fixed buffer once it fits */
    c->out_flight = 0;
    if (c->out.len > 0) {
        conn_flush(c);
        return;
    }
    if (c->close_after) {
        conn_shutdown(c);
        return;
    }
    conn_touch(c);
    conn_process(c); /* output drained below its cap: parsing may continue */
}

/* Sends header + body: uv_try_write first, the rest through the output buffer. */
static void conn_send(struct http_conn *c, const char *head, size_t head_len, const char *body,
                      size_t body_len)
{
    size_t skip = 0;
    if (!c->writing && c->out.len == 0) {
        uv_buf_t b[2] = {uv_buf_init((char *)head, (unsigned)head_len),
                         uv_buf_init((char *)body, (unsigned)body_len)};
        int n = uv_try_write(&c->h.stream, b, body_len ? 2 : 1);
        if (n == UV_EAGAIN || n == UV_ENOSYS)
            n = 0;
        if (n < 0) {
            c->gone = true;
            conn_close(c);
            return;
        }
        skip = (size_t)n;
    }
    int rv = 0;
    if (skip < head_len)
        rv = buf_append(&c->out, head + skip, head_len - skip); /* grows: rare */
    if (rv == 0) {
        size_t bskip = skip > head_len ? skip - head_len : 0;
        if (body_len > bskip)
            rv = buf_append(&c->out, body + bskip, body_len - bskip);
    }
    if (rv < 0) {
        log_error("http", "output buffer allocation failed: closing connection");
        c->gone = true;
        conn_close(c);
        return;
    }
    if (c->out.len == 0) {
        if (c->close_after)
            conn_shutdown(c);
        return;
    }
    if (!c->writing)
        conn_flush(c);
}

/* Formats and sends one response. Decides Connection from c->close_after and
 * the request's HTTP version. */
static void conn_respond(struct http_conn *c, int status, const char *extra, const char *body,
                         size_t body_len, bool is_head)
{
    char stack[HTTP_HEAD_STACK];
    size_t extra_len = extra ? strlen(extra) : 0;
    size_t need = 256 + extra_len;
    char *head = need <= sizeof(stack) ? stack : malloc(need);
    if (!head) {
        c->gone = true;
        conn_close(c);
        return;
    }
    bool no_body = status_has_no_body(status);
    if (no_body)
        body_len = 0;
    const char *conn_hdr = "";
    if (c->close_after)
        conn_hdr = "Connection: close\r\n";
    else if (c->parser.http_major == 1 && c->parser.http_minor == 0)
        conn_hdr = "Connection: keep-alive\r\n";
    int n;
    if (no_body)
        n = snprintf(head, need, "HTTP/1.1 %d %s\r\n%s", status, reason_phrase(status), conn_hdr);
    else
        n = snprintf(head, need, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s%s", status,
                     reason_phrase(status), body_len,
                     ((body_len > 0 || body) && !(extra && strcasestr(extra, "Content-Type:")))
                         ? "Content-Type: application/json\r\n"
                         : "",
                     conn_hdr);
    assert(n > 0 && (size_t)n + extra_len + 2 < need);
    size_t len = (size_t)n;
    if (extra_len) {
        memcpy(head + len, extra, extra_len);
        len += extra_len;
    }
    memcpy(head + len, "\r\n", 2);
    len += 2;
    conn_send(c, head, len, body, is_head ? 0 : body_len);
    if (head != stack)
        free(head);
}

/* Answers a request the server itself rejects (400, 413, 431) and closes. */
static void conn_fail(struct http_conn *c, int status)
{
    char body[80];
    int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}", reason_phrase(status));
    c->close_after = true;
    req_remove(c);
    conn_respond(c, status, NULL, body, (size_t)n, false);
}

/* ---------- closing ---------- */

static void out_reset(struct http_conn *c)
{
    buf_reset(&c->out);
    c->out_flight = 0;
}

static void slot_free(struct http_conn *c)
{
    struct http_server *s = c->srv;
    c->state = CONN_FREE;
    c->next = s->free_head;
    c->prev = NULL;
    s->free_head = c;
}

static void on_conn_closed(uv_handle_t *h)
{
    struct http_conn *c = container_of(h, struct http_conn, h.handle);
    struct http_server *s = c->srv;
    assert(c->magic == HTTP_CONN_MAGIC && c->state == CONN_CLOSING);
    out_reset(c);
    c->writing = false;
    s->nhandles--;
    if (c->pending && !s->closing)
        c->state = CONN_ORPHAN;
    else
        slot_free(c);
    server_maybe_finish(s);
}

static void conn_close(struct http_conn *c)
{
    if (c->state != CONN_OPEN)
        return;
    c->state = CONN_CLOSING;
    idle_remove(c);
    req_remove(c);
    resume_remove(c);
    c->reading = false;
    uv_close(&c->h.handle, on_conn_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct http_conn *c = container_of(req, struct http_conn, sreq);
    assert(c->magic == HTTP_CONN_MAGIC);
    if (c->state != CONN_OPEN)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    conn_update_reading(c);
}

/* Half-closes after the last response and keeps reading (and discarding) until
 * the client closes, so that unread request bytes do not turn our close into a
 * reset that destroys the response. The idle sweep bounds the wait; discarded
 * reads do not count as activity. */
static void conn_shutdown(struct http_conn *c)
{
    if (c->state != CONN_OPEN || c->lingering)
        return;
    c->lingering = true;
    if (uv_shutdown(&c->sreq, &c->h.stream, on_shutdown) < 0) {
        conn_close(c);
        return;
    }
    conn_update_reading(c);
}

/* ---------- parser callbacks ---------- */

static int header_limit_hit(struct http_conn *c, const char *at, size_t len)
{
    if ((size_t)(at - c->in) + len > c->srv->cfg.max_header_bytes) {
        c->reject_status = 431;
        return 1;
    }
    return 0;
}

/* Appends a data callback's piece to a token kept as (off, len) in c->in. The
 * pieces of one token are contiguous unless the parser skipped framing (obs-fold,
 * chunk headers); then the piece is moved down over bytes already parsed. */
static void token_append(struct http_conn *c, uint32_t *off, uint32_t *len, const char *at,
                         size_t n)
{
    size_t pos = (size_t)(at - c->in);
    if (*len == 0) {
        *off = (uint32_t)pos;
    } else if ((size_t)*off + *len != pos) {
        assert(pos > (size_t)*off + *len);
        memmove(c->in + *off + *len, at, n);
    }
    *len += (uint32_t)n;
}

static int on_msg_begin(http_parser *p)
{
    struct http_conn *c = conn_of_parser(p);
    c->url_off = c->url_len = 0;
    c->body_off = c->body_len = 0;
    c->nhdr = c->hdr_seen = 0;
    c->hdr_last = 0;
    c->headers_done = false;
    c->reject_status = 0;
    req_begin(c); /* the deadline runs from the request's first byte */
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = conn_of_parser(p);
    if (header_limit_hit(c, at, len))
        return 1;
    token_append(c, &c->url_off, &c->url_len, at, len);
    return 0;
}

static int on_hdr_field(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = conn_of_parser(p);
    if (header_limit_hit(c, at, len))
        return 1;
    if (c->hdr_last != 1) {
        c->hdr_seen++;
        if (c->hdr_seen <= HTTP_MAX_HEADERS) {
            c->nhdr = c->hdr_seen;
            memset(&c->hdr[c->nhdr - 1], 0, sizeof(c->hdr[0]));
        }
    }
    c->hdr_last = 1;
    if (c->hdr_seen <= HTTP_MAX_HEADERS) {
        struct hdr_off *h = &c->hdr[c->nhdr - 1];
        token_append(c, &h->name_off, &h->name_len, at, len);
    }
    return 0;
}

static int on_hdr_value(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = conn_of_parser(p);
    if (header_limit_hit(c, at, len))
        return 1;
    c->hdr_last = 2;
    if (c->hdr_seen >= 1 && c->hdr_seen <= HTTP_MAX_HEADERS) {
        struct hdr_off *h = &c->hdr[c->nhdr - 1];
        token_append(c, &h->val_off, &h->val_len, at, len);
    }
    return 0;
}

static int on_headers_done(http_parser *p)
{
    struct http_conn *c = conn_of_parser(p);
    c->headers_done = true;
    if (p->content_length != ULLONG_MAX && p->content_length > c->srv->cfg.max_body_bytes) {
        c->reject_status = 413;
        return -1; /* any value but 0, 1, 2 is an error for on_headers_complete */
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = conn_of_parser(p);
    if ((size_t)c->body_len + len > c->srv->cfg.max_body_bytes) {
        c->reject_status = 413;
        return 1;
    }
    token_append(c, &c->body_off, &c->body_len, at, len);
    return 0;
}

/* The chunk's size is known once its size line ends: refuse at once a chunk
 * that cannot fit, instead of waiting for bytes that would be refused anyway. */
static int on_chunk_hdr(http_parser *p)
{
    struct http_conn *c = conn_of_parser(p);
    if (p->content_length > c->srv->cfg.max_body_bytes - c->body_len) {
        c->reject_status = 413;
        return 1;
    }
    return 0;
}

/* Whether the body being received already cannot fit: while a chunked body's
 * size line is still arriving, http-parser keeps the digits so far in
 * content_length (more digits only make it larger), and within a chunk it is
 * what remains of the chunk. ULLONG_MAX means no size seen yet. */
static bool body_bound_exceeded(const struct http_conn *c)
{
    const http_parser *p = &c->parser;
    return c->headers_done && !c->msg_done && (p->flags & F_CHUNKED) &&
           p->content_length != ULLONG_MAX &&
           p->content_length > c->srv->cfg.max_body_bytes - c->body_len;
}

static int on_msg_done(http_parser *p)
{
    struct http_conn *c = conn_of_parser(p);
    c->msg_done = true;
    req_remove(c); /* wholly received: the wait is ours now */
    c->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    /* One request at a time: execute returns here; the rest of the buffer is
     * parsed after this request's reply is queued. */
    http_parser_pause(p, 1);
    return 0;
}

/* ---------- request dispatch and the per-connection state machine ---------- */

static enum http_verb verb_of(unsigned method)
{
    switch (method) {
    case HTTP_GET:
        return HTTP_VERB_GET;
    case HTTP_POST:
        return HTTP_VERB_POST;
    case HTTP_PUT:
        return HTTP_VERB_PUT;
    case HTTP_DELETE:
        return HTTP_VERB_DELETE;
    case HTTP_HEAD:
        return HTTP_VERB_HEAD;
    default:
        return HTTP_VERB_OTHER;
    }
}

static void conn_dispatch(struct http_conn *c)
{
    struct http_server *s = c->srv;
    struct http_request req;
    memset(&req, 0, sizeof(req));
    req.verb = verb_of(c->parser.method);
    const char *url = c->in + c->url_off;
    const char *q = memchr(url, '?', c->url_len);
    if (q) {
        req.path = (struct slice){url, (size_t)(q - url)};
        req.query = (struct slice){q + 1, c->url_len - (size_t)(q + 1 - url)};
    } else {
        req.path = (struct slice){url, c->url_len};
        req.query = (struct slice){"", 0};
    }
    req.body =
        c->body_len ? (struct slice){c->in + c->body_off, c->body_len} : (struct slice){"", 0};
    for (unsigned i = 0; i < c->nhdr; i++) {
        req.headers[i].name = (struct slice){c->in + c->hdr[i].name_off, c->hdr[i].name_len};
        req.headers[i].value = c->hdr[i].val_len
                                   ? (struct slice){c->in + c->hdr[i].val_off, c->hdr[i].val_len}
                                   : (struct slice){"", 0};
    }
    req.nheaders = c->nhdr;
    req.keep_alive = c->keep_alive;
    req.received_ns = uv_hrtime();
    if (!c->keep_alive || s->draining)
        c->close_after = true;
    c->pending = true;
    s->npending++;
    idle_remove(c);
    s->cb(&c->x, &req, s->arg);
}

/* Drops the answered request from the read buffer and unpauses the parser. */
static void conn_compact(struct http_conn *c)
{
    size_t rest = c->in_len - c->in_parsed;
    if (rest && c->in_parsed)
        memmove(c->in, c->in + c->in_parsed, rest);
    c->in_len = rest;
    c->in_parsed = 0;
    c->msg_done = false;
    http_parser_pause(&c->parser, 0);
}

static void conn_process(struct http_conn *c)
{
    struct http_server *s = c->srv;
    if (c->in_process)
        return;
    c->in_process = true;
    while (c->state == CONN_OPEN && !c->pending && !c->gone && !c->lingering) {
        if (c->msg_done) {
            if (c->close_after)
                break; /* last response queued; conn_send/on_write shut down */
            conn_compact(c);
        }
        if (out_over_cap(c) || c->in_parsed == c->in_len)
            break;
        size_t n = http_parser_execute(&c->parser, &parser_settings, c->in + c->in_parsed,
                                       c->in_len - c->in_parsed);
        c->in_parsed += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (c->msg_done && e == HPE_PAUSED) {
            conn_dispatch(c);
            continue;
        }
        if (e != HPE_OK) {
            int st = c->reject_status ? c->reject_status : (e == HPE_HEADER_OVERFLOW ? 431 : 400);
            conn_fail(c, st);
            break;
        }
        if (!c->headers_done && c->in_parsed > s->cfg.max_header_bytes) {
            conn_fail(c, 431);
            break;
        }
        if (body_bound_exceeded(c)) {
            conn_fail(c, 413); /* e.g. a size line "ffffffffffff" still without its CRLF */
            break;
        }
        if (c->in_len == s->in_cap) {
            /* Full and still incomplete: only chunk framing can get here. */
            conn_fail(c, c->headers_done ? 413 : 431);
            break;
        }
    }
    c->in_process = false;
    conn_update_reading(c);
}

/* ---------- public: requests ---------- */

bool http_request_header(const struct http_request *req, const char *name, struct slice *out)
{
    size_t n = strlen(name);
    for (unsigned i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (h->name.len == n && strncasecmp(h->name.ptr, name, n) == 0) {
            *out = h->value;
            return true;
        }
    }
    return false;
}

int http_query_decode(struct slice v, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        char ch = v.ptr[i];
        if (ch == '%') {
            if (i + 2 >= v.len)
                return -EINVAL;
            int hi = text_hex_digit(v.ptr[i + 1]), lo = text_hex_digit(v.ptr[i + 2]);
            if (hi < 0 || lo < 0)
                return -EINVAL;
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        if (n + 1 >= cap)
            return -EINVAL;
        out[n++] = ch;
    }
    out[n] = '\0';
    return (int)n;
}

bool http_query_param(struct slice query, const char *key, struct slice *out)
{
    size_t klen = strlen(key);
    const char *p = query.ptr, *end = query.ptr + query.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq ? eq : stop;
        if ((size_t)(kend - p) == klen && memcmp(p, key, klen) == 0) {
            if (eq)
                *out = (struct slice){eq + 1, (size_t)(stop - eq - 1)};
            else
                *out = (struct slice){stop, 0};
            return true;
        }
        p = stop + 1;
    }
    return false;
}

/* ---------- public: replies ---------- */

static struct http_conn *conn_of_exchange(struct http_exchange *x)
{
    assert(x && x->magic == HTTP_XCHG_MAGIC);
    struct http_conn *c = container_of(x, struct http_conn, x);
    assert(c->magic == HTTP_CONN_MAGIC);
    return c;
}

void http_reply(struct http_exchange *x, int status, const char *extra_headers, const char *body,
                size_t body_len)
{
    struct http_conn *c = conn_of_exchange(x);
    struct http_server *s = c->srv;
    assert(c->pending);
    c->pending = false;
    s->npending--;
    if (c->state == CONN_ORPHAN) {
        slot_free(c); /* client gone: the reply goes nowhere */
        return;
    }
    if (c->state != CONN_OPEN)
        return; /* closing: the close callback frees the slot */
    if (s->draining)
        c->close_after = true;
    conn_respond(c, status, extra_headers, body, body_len, c->parser.method == HTTP_HEAD);
    if (c->state != CONN_OPEN)
        return;
    conn_touch(c);
    if (c->in_process)
        return; /* replied from inside the handler: the process loop goes on */
    if (c->close_after || c->in_len == c->in_parsed) {
        /* Nothing buffered to parse: no need to defer. */
        if (c->msg_done && !c->close_after)
            conn_compact(c);
        conn_update_reading(c);
        return;
    }
    resume_later(c); /* pipelined bytes wait: parse them outside the caller's stack */
}

void http_reply_json(struct http_exchange *x, int status, const char *json)
{
    http_reply(x, status, NULL, json, strlen(json));
}

void http_reply_error(struct http_exchange *x, int status, const char *msg)
{
    char stack[256];
    size_t need = strlen(msg) + 16;
    char *b = need <= sizeof(stack) ? stack : malloc(need);
    if (!b) {
        http_reply(x, status, NULL, NULL, 0);
        return;
    }
    int n = snprintf(b, need, "{\"error\":\"%s\"}", msg);
    http_reply(x, status, NULL, b, (size_t)n);
    if (b != stack)
        free(b);
}

bool http_exchange_client_open(const struct http_exchange *x)
{
    assert(x && x->magic == HTTP_XCHG_MAGIC);
    const struct http_conn *c = container_of(x, struct http_conn, x);
    return c->state == CONN_OPEN && !c->gone;
}

/* ---------- accepting ---------- */

static void on_reject_closed(uv_handle_t *h)
{
    struct http_server *s = h->data;
    assert(s->magic == HTTP_SERVER_MAGIC);
    free(h);
    s->nhandles--;
    server_maybe_finish(s);
}

/* Slots full (or draining): accept and close at once, so the client learns now
 * instead of waiting in the backlog. Allocates a handle: this is the overload
 * path, not the hot path. */
static void server_reject(struct http_server *s, uv_stream_t *listener)
{
    uint64_t now = uv_now(s->loop);
    s->full_rejects++;
    if (now - s->full_log_ms >= HTTP_FULL_LOG_MS || s->full_log_ms == 0) {
        log_warn("http", "connection slots full (%u): %u connection(s) rejected", s->cfg.max_conns,
                 s->full_rejects);
        s->full_log_ms = now ? now : 1;
        s->full_rejects = 0;
    }
    uv_handle_t *h;
    int rv;
    if (listener == (uv_stream_t *)&s->tcp) {
        uv_tcp_t *t = malloc(sizeof(*t));
        if (!t)
            return;
        rv = uv_tcp_init(s->loop, t);
        h = (uv_handle_t *)t;
    } else {
        uv_pipe_t *pp = malloc(sizeof(*pp));
        if (!pp)
            return;
        rv = uv_pipe_init(s->loop, pp, 0);
        h = (uv_handle_t *)pp;
    }
    if (rv < 0) {
        free(h);
        return;
    }
    h->data = s;
    s->nhandles++;
    (void)uv_accept(listener, (uv_stream_t *)h);
    uv_close(h, on_reject_closed);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct http_server *s = listener->data;
    assert(s->magic == HTTP_SERVER_MAGIC);
    if (status < 0) {
        log_warn("http", "accept failed: %s", uv_strerror(status));
        return;
    }
    struct http_conn *c = s->free_head;
    if (!c || s->draining || s->closing) {
        server_reject(s, listener);
        return;
    }
    bool is_tcp = listener == (uv_stream_t *)&s->tcp;
    int rv = is_tcp ? uv_tcp_init(s->loop, &c->h.tcp) : uv_pipe_init(s->loop, &c->h.pipe, 0);
    if (rv < 0) {
        log_warn("http", "handle init failed: %s", uv_strerror(rv));
        return;
    }
    s->free_head = c->next;
    c->next = c->prev = NULL;
    s->nhandles++;
    c->state = CONN_OPEN;
    c->in_len = c->in_parsed = 0;
    c->msg_done = c->pending = c->gone = c->close_after = c->lingering = false;
    c->reading = c->writing = c->in_process = c->in_idle = c->resume_queued = false;
    c->in_req = false;
    c->req_prev = c->req_next = NULL;
    c->resume_next = NULL;
    c->reject_status = 0;
    c->headers_done = false;
    http_parser_init(&c->parser, HTTP_REQUEST);
    rv = uv_accept(listener, &c->h.stream);
    if (rv < 0) {
        log_warn("http", "accept failed: %s", uv_strerror(rv));
        conn_close(c);
        return;
    }
    if (is_tcp)
        (void)uv_tcp_nodelay(&c->h.tcp, 1);
    conn_touch(c);
    conn_update_reading(c);
    if (!c->reading)
        conn_close(c);
}

/* ---------- server lifecycle ---------- */

void http_server_config_default(struct http_server_config *cfg)
{
    cfg->max_conns = 1024;
    cfg->max_header_bytes = 8 * 1024;
    cfg->max_body_bytes = 64 * 1024;
    cfg->idle_timeout_ms = 60 * 1000;
    cfg->request_deadline_ms = 10 * 1000;
    cfg->out_buf_bytes = 64 * 1024;
}

static void on_sweep(uv_timer_t *t)
{
    struct http_server *s = container_of(t, struct http_server, sweep);
    assert(s->magic == HTTP_SERVER_MAGIC);
    uint64_t now = uv_now(s->loop);
    /* Requests first (a slow request is answered 408 rather than cut silently
     * by the idle limit). The FIFO is ordered by start: stop at the first one
     * still within its deadline. */
    while (s->req_head && s->req_head->req_start_ms + s->cfg.request_deadline_ms <= now) {
        struct http_conn *c = s->req_head;
        log_debug("http", "request not received within %u ms: 408", s->cfg.request_deadline_ms);
        conn_fail(c, 408); /* leaves the FIFO; the connection closes once 408 is out */
        conn_update_reading(c);
    }
    /* The FIFO is ordered by last activity: stop at the first one still young. */
    while (s->idle_head && s->idle_head->active_ms + s->cfg.idle_timeout_ms <= now)
        conn_close(s->idle_head);
}

struct http_server *http_server_new(uv_loop_t *loop, const struct http_server_config *cfg,
                                    http_handler_cb *cb, void *arg)
{
    if (!loop || !cfg || !cb || cfg->max_conns == 0 || cfg->max_header_bytes < 64 ||
        cfg->out_buf_bytes < 256 || cfg->idle_timeout_ms == 0 || cfg->request_deadline_ms == 0 ||
        cfg->max_header_bytes > UINT32_MAX / 4 || cfg->max_body_bytes > UINT32_MAX / 4)
        return NULL;
    size_t in_cap = cfg->max_header_bytes + cfg->max_body_bytes;
    size_t per = in_cap + cfg->out_buf_bytes;
    if (per > SIZE_MAX / cfg->max_conns)
        return NULL;
    /* A peer that resets while we write must not kill the process. */
    signal(SIGPIPE, SIG_IGN);

    struct http_server *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->conns = calloc(cfg->max_conns, sizeof(*s->conns));
    /* One large malloc: pages are committed only when a slot first uses them. */
    s->bufs = malloc(per * cfg->max_conns);
    if (!s->conns || !s->bufs) {
        free(s->conns);
        free(s->bufs);
        free(s);
        return NULL;
    }
    s->magic = HTTP_SERVER_MAGIC;
    s->loop = loop;
    s->cfg = *cfg;
    s->in_cap = in_cap;
    s->cb = cb;
    s->arg = arg;
    s->port = -1;
    for (unsigned i = cfg->max_conns; i-- > 0;) {
        struct http_conn *c = &s->conns[i];
        c->magic = HTTP_CONN_MAGIC;
        c->x.magic = HTTP_XCHG_MAGIC;
        c->srv = s;
        c->in = s->bufs + per * i;
        buf_init(&c->out, c->in + in_cap, cfg->out_buf_bytes);
        c->parser.data = c;
        slot_free(c);
    }
    uv_timer_init(loop, &s->sweep);
    uv_idle_init(loop, &s->resumer);
    s->nhandles = 2;
    uint64_t every = (cfg->idle_timeout_ms < cfg->request_deadline_ms ? cfg->idle_timeout_ms
                                                                      : cfg->request_deadline_ms) /
                     4;
    if (every < 10)
        every = 10;
    if (every > 1000)
        every = 1000;
    uv_timer_start(&s->sweep, on_sweep, every, every);
    uv_unref((uv_handle_t *)&s->sweep); /* never keeps the loop alive by itself */
    return s;
}

static void on_listener_closed(uv_handle_t *h)
{
    struct http_server *s = h->data;
    assert(s->magic == HTTP_SERVER_MAGIC);
    s->nhandles--;
    server_maybe_finish(s);
}

int http_server_listen_tcp(struct http_server *s, const char *host, int port)
{
    if (s->tcp_on || s->closing || s->draining)
        return UV_EBUSY;
    if (port < 0 || port > 65535)
        return UV_EINVAL;
    struct sockaddr_storage ss;
    const char *h = host ? host : "0.0.0.0";
    int rv = strchr(h, ':') ? uv_ip6_addr(h, port, (struct sockaddr_in6 *)&ss)
                            : uv_ip4_addr(h, port, (struct sockaddr_in *)&ss);
    if (rv < 0)
        return rv;
    rv = uv_tcp_init(s->loop, &s->tcp);
    if (rv < 0)
        return rv;
    s->tcp.data = s;
    s->nhandles++;
    s->tcp_on = true;
    rv = uv_tcp_bind(&s->tcp, (const struct sockaddr *)&ss, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&s->tcp, HTTP_BACKLOG, on_connection);
    if (rv == 0) {
        int len = sizeof(ss);
        rv = uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&ss, &len);
    }
    if (rv < 0) {
        s->tcp_on = false;
        uv_close((uv_handle_t *)&s->tcp, on_listener_closed);
        return rv;
    }
    s->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                       : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

int http_server_listen_unix(struct http_server *s, const char *path)
{
    if (s->pipe_on || s->closing || s->draining)
        return UV_EBUSY;
    if (!path || !*path)
        return UV_EINVAL;
    char *copy = strdup(path);
    if (!copy)
        return UV_ENOMEM;
    (void)unlink(path); /* a stale socket from an earlier run */
    int rv = uv_pipe_init(s->loop, &s->pipe, 0);
    if (rv < 0) {
        free(copy);
        return rv;
    }
    s->pipe.data = s;
    s->nhandles++;
    s->pipe_on = true;
    rv = uv_pipe_bind(&s->pipe, path);
    if (rv == 0 && chmod(path, 0666) < 0)
        rv = -errno;
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&s->pipe, HTTP_BACKLOG, on_connection);
    if (rv < 0) {
        s->pipe_on = false;
        uv_close((uv_handle_t *)&s->pipe, on_listener_closed);
        free(copy);
        return rv;
    }
    s->unix_path = copy;
    return 0;
}

int http_server_port(const struct http_server *s)
{
    return s->port;
}

unsigned http_server_pending(const struct http_server *s)
{
    return s->npending;
}

static void close_listeners(struct http_server *s)
{
    if (s->tcp_on) {
        s->tcp_on = false;
        uv_close((uv_handle_t *)&s->tcp, on_listener_closed);
    }
    if (s->pipe_on) {
        s->pipe_on = false;
        uv_close((uv_handle_t *)&s->pipe, on_listener_closed);
        if (s->unix_path)
            (void)unlink(s->unix_path);
    }
}

void http_server_stop_accepting(struct http_server *s)
{
    assert(s->magic == HTTP_SERVER_MAGIC);
    if (s->draining || s->closing)
        return;
    s->draining = true;
    close_listeners(s);
    for (unsigned i = 0; i < s->cfg.max_conns; i++) {
        struct http_conn *c = &s->conns[i];
        if (c->state != CONN_OPEN || c->pending)
            continue; /* a pending exchange closes after its reply */
        c->close_after = true;
        if (!c->writing && c->out.len == 0)
            conn_close(c);
        else
            conn_update_reading(c);
    }
}

static void server_maybe_finish(struct http_server *s)
{
    if (!s->closing || s->nhandles > 0)
        return;
    /* The callback runs just before s is freed: it may read s, not keep it. */
    if (s->closed_cb)
        s->closed_cb(s, s->closed_arg);
    free(s->unix_path);
    free(s->bufs);
    free(s->conns);
    s->magic = 0;
    free(s);
}

void http_server_close(struct http_server *s, http_server_closed_cb *cb, void *arg)
{
    assert(s->magic == HTTP_SERVER_MAGIC);
    if (s->closing)
        return;
    s->closing = true;
    s->closed_cb = cb;
    s->closed_arg = arg;
    close_listeners(s);
    s->sweep.data = s;
    s->resumer.data = s;
    uv_close((uv_handle_t *)&s->sweep, on_listener_closed);
    uv_close((uv_handle_t *)&s->resumer, on_listener_closed);
    s->resume_head = NULL;
    for (unsigned i = 0; i < s->cfg.max_conns; i++) {
        struct http_conn *c = &s->conns[i];
        if (c->state == CONN_OPEN) {
            c->resume_queued = false;
            conn_close(c);
        } else if (c->state == CONN_ORPHAN) {
            slot_free(c);
        }
        if (c->pending) {
            c->pending = false; /* released: the handler must not answer it */
            s->npending--;
        }
    }
}
