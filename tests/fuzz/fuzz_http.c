/* The HTTP request path: lib/http.c's connection state machine and parser
 * callbacks, then node/api.c's router with its payment, summary, purge, health
 * and metrics handlers, on one in-memory node. Nothing touches a socket:
 *  - the connection's stream is fake: http.c is included here (to reach its
 *    accept and read callbacks) and the libuv stream calls it makes are
 *    replaced at link time (-Wl,--wrap=uv_pipe_init,uv_accept,uv_read_start,
 *    uv_read_stop,uv_try_write,uv_write,uv_shutdown,uv_close,uv_now). Writes
 *    and shutdowns complete when this harness says so, as libuv's would,
 *    cancelled ones included, and time is a fake clock;
 *  - the node has a real ledger and no peer; dispatch and health are fakes
 *    (--wrap=dispatch_*,health_is_checker) and dispatch "records" each
 *    submitted payment at once, so summaries have something to add up.
 * Input: byte 0 chooses the fakes' behaviour (dispatch room, partial and
 * refused writes), byte 1 seeds the read sizes and clock steps; the rest is
 * what the client sends, then EOF. Checked: the handler answers every request
 * before returning; every response is well formed, in order, with a status the
 * API can give; nothing is answered 5xx but a 503; the ledger stays
 * consistent; the server closes and frees everything. */
#include "lib/http.c"

#include "fuzz.h"
#include "node/api.h"
#include "node/dispatch.h"
#include "node/health.h"
#include "node/ledger.h"
#include "node/node.h"

#define FUZZ_OUT_CAP (1u << 18) /* response bytes kept for checking */
#define FUZZ_MAX_REQ 512        /* requests checked per input */

/* ---------- the fake stream ---------- */

int __wrap_uv_pipe_init(uv_loop_t *loop, uv_pipe_t *handle, int ipc);
int __wrap_uv_accept(uv_stream_t *server, uv_stream_t *client);
int __wrap_uv_read_start(uv_stream_t *s, uv_alloc_cb alloc_cb, uv_read_cb read_cb);
int __wrap_uv_read_stop(uv_stream_t *s);
int __wrap_uv_try_write(uv_stream_t *s, const uv_buf_t bufs[], unsigned int nbufs);
int __wrap_uv_write(uv_write_t *req, uv_stream_t *s, const uv_buf_t bufs[], unsigned int nbufs,
                    uv_write_cb cb);
int __wrap_uv_shutdown(uv_shutdown_t *req, uv_stream_t *s, uv_shutdown_cb cb);
void __wrap_uv_close(uv_handle_t *h, uv_close_cb cb);
void __real_uv_close(uv_handle_t *h, uv_close_cb cb);
uint64_t __wrap_uv_now(const uv_loop_t *loop);

static struct fake {
    uint64_t now;
    uint32_t rng;
    uint8_t mode;
    uv_stream_t *stream; /* the one fake connection */
    bool reading;
    uv_write_t *wreq; /* write in flight */
    uv_write_cb wcb;
    uv_buf_t wbufs[4];
    unsigned nwbufs;
    uv_shutdown_t *sreq;
    uv_shutdown_cb scb;
    uv_handle_t *closing;
    uv_close_cb ccb;
    char out[FUZZ_OUT_CAP];
    size_t out_len;
    bool out_lost; /* a write was cancelled: the tail of the output is missing */
} fk;

enum {
    MODE_NO_ROOM = 0x01,      /* dispatch has no room: 503 */
    MODE_PARTIAL = 0x02,      /* uv_try_write takes only part of the bytes */
    MODE_EAGAIN = 0x04,       /* uv_try_write takes nothing: everything goes through uv_write */
    MODE_SLOW_WRITES = 0x08,  /* writes complete only every other step */
    MODE_HANGUP_EARLY = 0x10, /* EOF arrives while output may still be in flight */
};

static uint32_t rng_next(void)
{
    fk.rng ^= fk.rng << 13;
    fk.rng ^= fk.rng >> 17;
    fk.rng ^= fk.rng << 5;
    return fk.rng;
}

static void out_capture(const char *p, size_t n)
{
    size_t room = FUZZ_OUT_CAP - fk.out_len;
    if (n > room)
        n = room;
    memcpy(fk.out + fk.out_len, p, n);
    fk.out_len += n;
}

int __wrap_uv_pipe_init(uv_loop_t *loop, uv_pipe_t *handle, int ipc)
{
    memset(handle, 0, sizeof(*handle));
    handle->loop = loop;
    handle->type = UV_NAMED_PIPE;
    fk.stream = (uv_stream_t *)handle;
    return 0;
}

int __wrap_uv_accept(uv_stream_t *server, uv_stream_t *client)
{
    FUZZ_CHECK(client == fk.stream);
    return 0;
}

int __wrap_uv_read_start(uv_stream_t *s, uv_alloc_cb alloc_cb, uv_read_cb read_cb)
{
    FUZZ_CHECK(s == fk.stream && !fk.closing);
    FUZZ_CHECK(alloc_cb == on_alloc && read_cb == on_read);
    fk.reading = true;
    return 0;
}

int __wrap_uv_read_stop(uv_stream_t *s)
{
    FUZZ_CHECK(s == fk.stream);
    fk.reading = false;
    return 0;
}

int __wrap_uv_try_write(uv_stream_t *s, const uv_buf_t bufs[], unsigned int nbufs)
{
    FUZZ_CHECK(s == fk.stream && !fk.closing && !fk.wreq); /* libuv: EAGAIN while queued */
    if (fk.mode & MODE_EAGAIN)
        return UV_EAGAIN;
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    size_t take = total;
    if ((fk.mode & MODE_PARTIAL) && total > 0)
        take = rng_next() % total; /* may be 0: libuv then says EAGAIN */
    if (take == 0)
        return UV_EAGAIN;
    size_t left = take;
    for (unsigned i = 0; i < nbufs && left > 0; i++) {
        size_t n = bufs[i].len < left ? bufs[i].len : left;
        out_capture(bufs[i].base, n);
        left -= n;
    }
    return (int)take;
}

int __wrap_uv_write(uv_write_t *req, uv_stream_t *s, const uv_buf_t bufs[], unsigned int nbufs,
                    uv_write_cb cb)
{
    FUZZ_CHECK(s == fk.stream && !fk.closing);
    FUZZ_CHECK(fk.wreq == NULL); /* http.c keeps one write in flight */
    FUZZ_CHECK(nbufs <= sizeof(fk.wbufs) / sizeof(fk.wbufs[0]));
    /* Only the descriptors are copied, as libuv does: the bytes are read when
     * the write completes, so a buffer freed too early is caught by ASan. */
    memcpy(fk.wbufs, bufs, nbufs * sizeof(bufs[0]));
    fk.nwbufs = nbufs;
    fk.wreq = req;
    fk.wcb = cb;
    return 0;
}

int __wrap_uv_shutdown(uv_shutdown_t *req, uv_stream_t *s, uv_shutdown_cb cb)
{
    FUZZ_CHECK(s == fk.stream && !fk.closing && !fk.sreq && !fk.wreq);
    fk.sreq = req;
    fk.scb = cb;
    return 0;
}

void __wrap_uv_close(uv_handle_t *h, uv_close_cb cb)
{
    if (fk.stream == NULL || h != (uv_handle_t *)fk.stream) {
        __real_uv_close(h, cb); /* the server's own timer and idle handles */
        return;
    }
    FUZZ_CHECK(!fk.closing);
    fk.closing = h;
    fk.ccb = cb;
    fk.reading = false;
}

uint64_t __wrap_uv_now(const uv_loop_t *loop)
{
    return fk.now;
}

/* Completes the write in flight, as the loop would. */
static bool step_write(int status)
{
    if (!fk.wreq)
        return false;
    uv_write_t *req = fk.wreq;
    uv_write_cb cb = fk.wcb;
    if (status == 0)
        for (unsigned i = 0; i < fk.nwbufs; i++)
            out_capture(fk.wbufs[i].base, fk.wbufs[i].len);
    else
        fk.out_lost = true;
    fk.wreq = NULL;
    cb(req, status);
    return true;
}

static bool step_shutdown(int status)
{
    if (!fk.sreq)
        return false;
    uv_shutdown_t *req = fk.sreq;
    uv_shutdown_cb cb = fk.scb;
    fk.sreq = NULL;
    cb(req, status);
    return true;
}

/* A uv_close: pending requests are cancelled first, then the close callback. */
static void step_close(void)
{
    if (!fk.closing)
        return;
    step_write(UV_ECANCELED);
    step_shutdown(UV_ECANCELED);
    uv_handle_t *h = fk.closing;
    uv_close_cb cb = fk.ccb;
    fk.closing = NULL;
    fk.stream = NULL;
    if (cb)
        cb(h);
}

/* ---------- the node and its fake collaborators ---------- */

bool __wrap_dispatch_has_room(const struct dispatch *d);
int __wrap_dispatch_submit(struct dispatch *d, struct payment *p);
void __wrap_dispatch_purge(struct dispatch *d);
void __wrap_dispatch_get_stats(const struct dispatch *d, struct dispatch_stats *out);
bool __wrap_health_is_checker(const struct health *h);

static struct node nd;
static int handled;                /* handler calls for this input */
static bool head_of[FUZZ_MAX_REQ]; /* whether request i was HEAD */
static struct http_server *srv;

bool __wrap_dispatch_has_room(const struct dispatch *d)
{
    return !(fk.mode & MODE_NO_ROOM);
}

/* The processors record every payment at once, alternating between them. */
int __wrap_dispatch_submit(struct dispatch *d, struct payment *p)
{
    FUZZ_CHECK(p != NULL && p->state == LEDGER_ACCEPTED);
    struct event ev = {
        .type = EVENT_SENDING, .processor = (uint8_t)(p->index & 1), .at_ms = p->accepted_ms};
    memcpy(ev.id, p->id, sizeof(ev.id));
    FUZZ_CHECK(node_emit(&nd, &ev, NULL) == 0);
    ev.type = EVENT_RECORDED;
    ev.amount_cents = p->amount_cents;
    FUZZ_CHECK(node_emit(&nd, &ev, NULL) == 0);
    return 0;
}

void __wrap_dispatch_purge(struct dispatch *d)
{
}

void __wrap_dispatch_get_stats(const struct dispatch *d, struct dispatch_stats *out)
{
    memset(out, 0, sizeof(*out));
}

bool __wrap_health_is_checker(const struct health *h)
{
    return true;
}

static void handler(struct http_exchange *x, const struct http_request *req, void *arg)
{
    FUZZ_CHECK(http_server_pending(srv) == 1);
    if (handled < FUZZ_MAX_REQ)
        head_of[handled] = req->verb == HTTP_VERB_HEAD;
    handled++;
    api_handle(x, req, arg);
    /* Alone (no peer), every route answers before returning. */
    FUZZ_CHECK(http_server_pending(srv) == 0);
}

static uv_loop_t *loop_get(void)
{
    static uv_loop_t loop;
    static bool ready;
    if (!ready) {
        log_init(LOG_ERROR, 2); /* a line per purge or peer change would drown the fuzzer */
        FUZZ_CHECK(uv_loop_init(&loop) == 0);
        ready = true;
    }
    return &loop;
}

/* ---------- checking the responses ---------- */

static bool status_known(int st)
{
    static const int ok[] = {200, 202, 400, 404, 405, 408, 409, 413, 422, 431, 503};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (st == ok[i])
            return true;
    return false;
}

/* Walks the captured output: responses to the handled requests in order (a
 * HEAD's has no body), then at most one the server made itself (400, 408,
 * 413, 431), which has a body and closes. A cut-off tail is allowed only when
 * a write was cancelled. */
static void check_output(void)
{
    size_t pos = 0;
    int n = 0;
    while (pos < fk.out_len) {
        const char *p = fk.out + pos;
        size_t left = fk.out_len - pos;
        const char *end = memmem(p, left, "\r\n\r\n", 4);
        if (!end) {
            FUZZ_CHECK(fk.out_lost || fk.out_len == FUZZ_OUT_CAP);
            return;
        }
        FUZZ_CHECK(left > 12 && memcmp(p, "HTTP/1.1 ", 9) == 0);
        int st = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
        FUZZ_CHECK(status_known(st));
        size_t head_len = (size_t)(end - p) + 4;
        const char *cl = memmem(p, head_len, "Content-Length: ", 16);
        size_t body = cl ? strtoul(cl + 16, NULL, 10) : 0;
        bool server_made = n >= handled;
        if (server_made)
            FUZZ_CHECK(st == 400 || st == 408 || st == 413 || st == 431);
        if (!server_made && n < FUZZ_MAX_REQ && head_of[n])
            body = 0;
        if (head_len + body > left) {
            FUZZ_CHECK(fk.out_lost || fk.out_len == FUZZ_OUT_CAP);
            return;
        }
        pos += head_len + body;
        n++;
        if (server_made) {
            FUZZ_CHECK(memmem(p, head_len, "Connection: close\r\n", 19) != NULL);
            break; /* nothing follows a refusal */
        }
    }
    FUZZ_CHECK(pos == fk.out_len || fk.out_len == FUZZ_OUT_CAP);
    if (!fk.out_lost && fk.out_len < FUZZ_OUT_CAP)
        FUZZ_CHECK(n >= handled); /* every handled request got its answer */
}

static void on_srv_closed(struct http_server *s, void *arg)
{
    *(bool *)arg = true;
}

/* Lets pending writes and shutdowns complete (all, or one per step), and runs
 * the deferred resumes, as loop iterations would. */
static void drain(bool all)
{
    if (fk.closing)
        return; /* a close cancels what is pending (step_close) */
    for (int k = 0; k < 64 && !fk.closing; k++) {
        bool did = false;
        if (fk.wreq && (all || !(fk.mode & MODE_SLOW_WRITES) || (rng_next() & 1)))
            did = step_write(0);
        else if (fk.sreq)
            did = step_shutdown(0);
        if (srv && srv->resume_head)
            on_resumer(&srv->resumer), did = true;
        if (!did || !all)
            break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uv_loop_t *loop = loop_get();
    memset(&fk, 0, offsetof(struct fake, out));
    fk.out_len = 0;
    fk.out_lost = false;
    fk.mode = data[0];
    fk.rng = 0x9e3779b9u ^ ((uint32_t)data[1] << 8 | data[0]) ^ (uint32_t)size;
    fk.now = 1000;
    data += 2;
    size -= 2;

    memset(&nd, 0, sizeof(nd));
    nd.magic = NODE_MAGIC;
    nd.cfg.node_id = 1;
    nd.loop = loop;
    nd.ledger = ledger_new(64);
    FUZZ_CHECK(nd.ledger != NULL);
    nd.dispatch = (struct dispatch *)&nd; /* never dereferenced: the fakes take it */
    nd.health = (struct health *)&nd;
    api_init(&nd.api, &nd);
    handled = 0;

    struct http_server_config cfg;
    http_server_config_default(&cfg);
    cfg.max_conns = 2;
    cfg.max_header_bytes = 1024;
    cfg.max_body_bytes = 4096; /* as main.c */
    cfg.out_buf_bytes = 512;   /* metrics do not fit: the heap path runs too */
    cfg.idle_timeout_ms = 2000;
    cfg.request_deadline_ms = 700;
    srv = http_server_new(loop, &cfg, handler, &nd.api);
    FUZZ_CHECK(srv != NULL);

    srv->pipe.data = srv; /* the listener on_connection is called for: never opened */
    on_connection((uv_stream_t *)&srv->pipe, 0);
    FUZZ_CHECK(fk.stream != NULL && fk.reading);

    size_t i = 0;
    while (i < size && fk.stream && !fk.closing) {
        drain(false);
        if (!fk.reading) {
            drain(true); /* the client reads its answers; we may read again */
            if (!fk.reading)
                break;
        }
        uv_buf_t b;
        on_alloc((uv_handle_t *)fk.stream, 65536, &b);
        size_t n = 1 + rng_next() % 64;
        if (rng_next() % 8 == 0)
            n = size - i; /* everything left, at once */
        if (n > size - i)
            n = size - i;
        if (n > b.len)
            n = b.len;
        FUZZ_CHECK(n > 0); /* reading with a full buffer is a bug */
        memcpy(b.base, data + i, n);
        i += n;
        on_read(fk.stream, (ssize_t)n, &b);
        if (rng_next() % 4 == 0) {
            fk.now += rng_next() % 400;
            on_sweep(&srv->sweep);
        }
        FUZZ_CHECK(ledger_check(nd.ledger));
    }
    if (!(fk.mode & MODE_HANGUP_EARLY))
        drain(true);
    if (fk.stream && !fk.closing) {
        fk.now += 100000; /* the idle sweep closes whatever is still open, lingering or not */
        on_sweep(&srv->sweep);
        if (fk.stream && !fk.closing) {
            uv_buf_t b = {0};
            on_read(fk.stream, UV_EOF, &b);
        }
    }
    drain(true);
    step_close();
    check_output();
    FUZZ_CHECK(ledger_check(nd.ledger));

    bool closed = false;
    http_server_close(srv, on_srv_closed, &closed);
    step_close();
    FUZZ_CHECK(uv_run(loop, UV_RUN_NOWAIT) == 0);
    FUZZ_CHECK(closed);
    srv = NULL;
    api_release(&nd.api);
    ledger_free(nd.ledger);
    return 0;
}
