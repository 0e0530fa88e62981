/* Tests for httpc (and through it curl_uv) against a fault-injecting HTTP server
 * written here with raw libuv. The server is scripted by the request path:
 *   /echo            200, body "<METHOD> <X-Test value or -> <request body>"
 *   /status/N        status N, body "s=N"
 *   /delay/MS        like /echo, after MS milliseconds
 *   /big/N           200 with N bytes 'a'..'z' repeated
 *   /hang            never answers (connection stays open)
 *   /close           closes the connection without answering
 *   /partial         headers announcing 100 bytes, 10 bytes, then close
 *   /closelisten     closes the listening socket, then the connection, unanswered
 * It is deliberately minimal (no pipelining, no chunked bodies) and not a
 * general server: lib/http.c is the real one. Each test owns a private loop
 * and ends with uv_loop_close() == 0. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "lib/curl_uv.h"
#include "lib/httpc.h"

/* ---------------------------------------------------------------- server */

#define TCONN_BUF 16384

struct tsrv;

struct tconn {
    struct tsrv *s;
    uv_tcp_t tcp;
    uv_timer_t timer;
    char buf[TCONN_BUF];
    size_t len;
    bool busy;    /* a request is being answered later (delay/hang) */
    bool closing; /* uv_close called */
    int pending_closes;
    char delayed_reply[1024];
    size_t delayed_len;
    struct tconn *prev, *next;
};

struct tsrv {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listening;
    int port;
    unsigned conns;     /* connections accepted */
    unsigned requests;  /* complete requests received */
    unsigned open;      /* connections open now */
    unsigned max_open;  /* most connections open at once */
    struct tconn *list; /* open connections */
};

struct twrite {
    uv_write_t req;
    struct tconn *conn;
    bool close_after;
    uv_buf_t buf;
    char data[];
};

static void on_tconn_closed(uv_handle_t *h)
{
    struct tconn *k = h->data;
    if (--k->pending_closes == 0)
        free(k);
}

static void tconn_close(struct tconn *k)
{
    if (k->closing)
        return;
    k->closing = true;
    struct tsrv *s = k->s;
    if (k->prev != NULL)
        k->prev->next = k->next;
    else
        s->list = k->next;
    if (k->next != NULL)
        k->next->prev = k->prev;
    s->open--;
    k->pending_closes = 2;
    uv_close((uv_handle_t *)&k->tcp, on_tconn_closed);
    uv_close((uv_handle_t *)&k->timer, on_tconn_closed);
}

static void on_twrite_done(uv_write_t *req, int status)
{
    struct twrite *w = (struct twrite *)req;
    (void)status;
    if (w->close_after)
        tconn_close(w->conn);
    free(w);
}

static void tconn_write(struct tconn *k, const char *data, size_t len, bool close_after)
{
    if (k->closing)
        return;
    struct twrite *w = malloc(sizeof(*w) + len);
    assert_non_null(w);
    memcpy(w->data, data, len);
    w->conn = k;
    w->close_after = close_after;
    w->buf = uv_buf_init(w->data, (unsigned)len);
    assert_int_equal(uv_write(&w->req, (uv_stream_t *)&k->tcp, &w->buf, 1, on_twrite_done), 0);
}

static void tconn_reply(struct tconn *k, int status, const char *body, size_t body_len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n",
                     status, body_len);
    char *all = malloc((size_t)n + body_len);
    assert_non_null(all);
    memcpy(all, head, (size_t)n);
    memcpy(all + n, body, body_len);
    tconn_write(k, all, (size_t)n + body_len, false);
    free(all);
}

/* Finds header `name` in the header block; copies its value into out. */
static bool theader(const char *hdrs, size_t len, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = hdrs;
    const char *end = hdrs + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < eol && *v == ' ')
                v++;
            size_t vl = (size_t)(eol - v);
            if (vl > 0 && v[vl - 1] == '\r')
                vl--;
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return true;
        }
        p = eol + 1;
    }
    return false;
}

static void tconn_process(struct tconn *k);

static void on_tconn_timer(uv_timer_t *t)
{
    struct tconn *k = t->data;
    tconn_write(k, k->delayed_reply, k->delayed_len, false);
    k->busy = false;
    tconn_process(k);
}

static void on_tsrv_listener_closed(uv_handle_t *h)
{
    (void)h;
}

static void tsrv_stop_listening(struct tsrv *s)
{
    if (!s->listening)
        return;
    s->listening = false;
    uv_close((uv_handle_t *)&s->listener, on_tsrv_listener_closed);
}

/* Handles every complete request in the buffer, one at a time. */
static void tconn_process(struct tconn *k)
{
    while (!k->busy && !k->closing) {
        char *end = memmem(k->buf, k->len, "\r\n\r\n", 4);
        if (end == NULL)
            return;
        size_t head_len = (size_t)(end - k->buf) + 4;
        char cl[32] = "0", xtest[64] = "-";
        theader(k->buf, head_len, "Content-Length", cl, sizeof(cl));
        theader(k->buf, head_len, "X-Test", xtest, sizeof(xtest));
        size_t body_len = strtoul(cl, NULL, 10);
        if (k->len < head_len + body_len)
            return;
        char method[16] = "", path[256] = "";
        assert_int_equal(sscanf(k->buf, "%15s %255s", method, path), 2);
        const char *body = k->buf + head_len;
        k->s->requests++;

        char out[1024];
        int n = snprintf(out, sizeof(out), "%s %s %.*s", method, xtest, (int)body_len, body);
        assert_true(n > 0 && (size_t)n < sizeof(out));
        unsigned arg = 0;
        if (strcmp(path, "/echo") == 0) {
            tconn_reply(k, 200, out, (size_t)n);
        } else if (sscanf(path, "/status/%u", &arg) == 1) {
            char b[32];
            int bl = snprintf(b, sizeof(b), "s=%u", arg);
            tconn_reply(k, (int)arg, b, (size_t)bl);
        } else if (sscanf(path, "/delay/%u", &arg) == 1) {
            k->delayed_len =
                (size_t)snprintf(k->delayed_reply, sizeof(k->delayed_reply),
                                 "HTTP/1.1 200 X\r\nContent-Length: %d\r\n\r\n%s", n, out);
            k->busy = true;
            uv_timer_start(&k->timer, on_tconn_timer, arg, 0);
        } else if (sscanf(path, "/big/%u", &arg) == 1) {
            char *b = malloc(arg + 1);
            assert_non_null(b);
            for (unsigned i = 0; i < arg; i++)
                b[i] = (char)('a' + i % 26);
            tconn_reply(k, 200, b, arg);
            free(b);
        } else if (strcmp(path, "/hang") == 0) {
            k->busy = true;
        } else if (strcmp(path, "/close") == 0) {
            tconn_close(k);
        } else if (strcmp(path, "/partial") == 0) {
            static const char part[] = "HTTP/1.1 200 X\r\nContent-Length: 100\r\n\r\n0123456789";
            tconn_write(k, part, sizeof(part) - 1, true);
            k->busy = true;
        } else if (strcmp(path, "/closelisten") == 0) {
            tsrv_stop_listening(k->s);
            tconn_close(k);
        } else {
            tconn_reply(k, 404, "", 0);
        }
        size_t used = head_len + body_len;
        memmove(k->buf, k->buf + used, k->len - used);
        k->len -= used;
    }
}

static void on_tconn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct tconn *k = h->data;
    (void)suggested;
    *buf = uv_buf_init(k->buf + k->len, (unsigned)(TCONN_BUF - k->len));
}

static void on_tconn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct tconn *k = st->data;
    (void)buf;
    if (nread < 0 || k->len + (size_t)nread >= TCONN_BUF) {
        tconn_close(k);
        return;
    }
    k->len += (size_t)nread;
    tconn_process(k);
}

static void on_tsrv_conn(uv_stream_t *ls, int status)
{
    struct tsrv *s = ls->data;
    assert_int_equal(status, 0);
    struct tconn *k = calloc(1, sizeof(*k));
    assert_non_null(k);
    k->s = s;
    assert_int_equal(uv_tcp_init(s->loop, &k->tcp), 0);
    assert_int_equal(uv_timer_init(s->loop, &k->timer), 0);
    k->tcp.data = k;
    k->timer.data = k;
    assert_int_equal(uv_accept(ls, (uv_stream_t *)&k->tcp), 0);
    k->next = s->list;
    if (s->list != NULL)
        s->list->prev = k;
    s->list = k;
    s->conns++;
    if (++s->open > s->max_open)
        s->max_open = s->open;
    assert_int_equal(uv_read_start((uv_stream_t *)&k->tcp, on_tconn_alloc, on_tconn_read), 0);
}

static void tsrv_start(struct tsrv *s, uv_loop_t *loop)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    struct sockaddr_in a;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a), 0);
    assert_int_equal(uv_tcp_init(loop, &s->listener), 0);
    s->listener.data = s;
    assert_int_equal(uv_tcp_bind(&s->listener, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 128, on_tsrv_conn), 0);
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    assert_int_equal(uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &sl), 0);
    s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    s->listening = true;
}

static void tsrv_close(struct tsrv *s)
{
    tsrv_stop_listening(s);
    while (s->list != NULL)
        tconn_close(s->list);
}

/* ---------------------------------------------------------------- fixture */

#define MAX_DONE 128

struct done_rec {
    enum httpc_outcome outcome;
    int status;
    char body[512];
    size_t body_len;
    char error[CURL_ERROR_SIZE];
    unsigned calls;
};

struct fx {
    uv_loop_t loop;
    uv_timer_t guard;
    struct tsrv srv;
    struct httpc *c;
    unsigned done;   /* callbacks received */
    unsigned closed; /* httpc closed callbacks received */
    unsigned ticks;  /* run_for timers fired */
    struct done_rec rec[MAX_DONE];
    /* run_until */
    const unsigned *watch;
    unsigned target;
    uint64_t deadline;
    bool timed_out;
};

static bool in_request; /* set around httpc_request(): callbacks must not run then */

static void fx_init(struct fx *f, const struct httpc_config *cfg)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_timer_init(&f->loop, &f->guard), 0);
    f->guard.data = f;
    tsrv_start(&f->srv, &f->loop);
    struct httpc_config def;
    httpc_config_default(&def);
    f->c = httpc_new(&f->loop, cfg != NULL ? cfg : &def);
    assert_non_null(f->c);
}

static void on_guard(uv_timer_t *t)
{
    struct fx *f = t->data;
    if (*f->watch >= f->target) {
        uv_stop(&f->loop);
    } else if (uv_now(&f->loop) > f->deadline) {
        f->timed_out = true;
        uv_stop(&f->loop);
    }
}

/* Runs the loop until *watch >= target; fails the test after max_ms. */
static void run_until(struct fx *f, const unsigned *watch, unsigned target, unsigned max_ms)
{
    if (*watch >= target)
        return;
    f->watch = watch;
    f->target = target;
    f->timed_out = false;
    uv_update_time(&f->loop);
    f->deadline = uv_now(&f->loop) + max_ms;
    uv_timer_start(&f->guard, on_guard, 1, 1);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&f->guard);
    assert_false(f->timed_out);
    assert_true(*watch >= target);
}

static void on_httpc_closed(void *arg)
{
    struct fx *f = arg;
    f->closed++;
}

/* Closes client and server and checks that the loop ends with nothing left. */
static void fx_done(struct fx *f)
{
    if (f->c != NULL && f->closed == 0) {
        httpc_close(f->c, on_httpc_closed, f);
    }
    run_until(f, &f->closed, 1, 5000);
    assert_int_equal(f->closed, 1);
    f->c = NULL;
    tsrv_close(&f->srv);
    uv_close((uv_handle_t *)&f->guard, NULL);
    for (int i = 0; i < 2000 && uv_loop_alive(&f->loop); i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        if (uv_loop_alive(&f->loop))
            usleep(1000);
    }
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void on_run_for(uv_timer_t *t)
{
    struct fx *f = t->data;
    f->ticks++;
}

/* Runs the loop for about ms milliseconds. */
static void run_for(struct fx *f, unsigned ms)
{
    uv_timer_t t;
    assert_int_equal(uv_timer_init(&f->loop, &t), 0);
    t.data = f;
    unsigned target = f->ticks + 1;
    uv_timer_start(&t, on_run_for, ms, 0);
    run_until(f, &f->ticks, target, ms + 5000);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* runs the close callback */
}

static void url(const struct fx *f, char *buf, size_t cap, const char *path)
{
    snprintf(buf, cap, "http://127.0.0.1:%d%s", f->srv.port, path);
}

/* Records the result in f->rec[idx]; the arg encodes (fx, idx). */
struct ctx {
    struct fx *f;
    unsigned idx;
};

static void record(struct fx *f, unsigned idx, const struct httpc_result *res)
{
    assert_false(in_request);
    assert_true(idx < MAX_DONE);
    struct done_rec *d = &f->rec[idx];
    d->calls++;
    d->outcome = res->outcome;
    d->status = res->status;
    assert_non_null(res->body);
    assert_int_equal(res->body[res->body_len], '\0');
    assert_true(res->body_len < sizeof(d->body));
    memcpy(d->body, res->body, res->body_len + 1);
    d->body_len = res->body_len;
    assert_non_null(res->error);
    snprintf(d->error, sizeof(d->error), "%s", res->error);
    if (res->outcome == HTTPC_OK) {
        assert_string_equal(res->error, "");
    } else {
        assert_int_equal(res->status, 0);
        assert_true(res->error[0] != '\0');
    }
    f->done++;
}

static void on_done(void *arg, const struct httpc_result *res)
{
    struct ctx *x = arg;
    record(x->f, x->idx, res);
}

static int req(struct fx *f, struct ctx *x, unsigned idx, const char *method, const char *path,
               const char *const *headers, const char *body, unsigned timeout_ms)
{
    char u[128];
    url(f, u, sizeof(u), path);
    x->f = f;
    x->idx = idx;
    in_request = true;
    int rv = httpc_request(f->c, method, u, headers, body, body != NULL ? strlen(body) : 0,
                           timeout_ms, on_done, x);
    in_request = false;
    return rv;
}

/* ---------------------------------------------------------------- tests */

static void test_methods_echo(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, NULL);
    struct ctx x[3];
    const char *const hdrs[] = {"X-Test: abc", "Content-Type: text/plain", NULL};
    assert_int_equal(req(&f, &x[0], 0, "GET", "/echo", NULL, NULL, 2000), 0);
    assert_int_equal(req(&f, &x[1], 1, "POST", "/echo", hdrs, "hello world", 2000), 0);
    assert_int_equal(req(&f, &x[2], 2, "PUT", "/echo", NULL, "put-body", 2000), 0);
    assert_int_equal(httpc_in_flight(f.c), 3);
    assert_int_equal(f.done, 0); /* never from inside httpc_request() */
    run_until(&f, &f.done, 3, 5000);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(f.rec[i].calls, 1);
        assert_int_equal(f.rec[i].outcome, HTTPC_OK);
        assert_int_equal(f.rec[i].status, 200);
    }
    assert_string_equal(f.rec[0].body, "GET - ");
    assert_string_equal(f.rec[1].body, "POST abc hello world");
    assert_string_equal(f.rec[2].body, "PUT - put-body");
    assert_int_equal(httpc_in_flight(f.c), 0);
    struct httpc_stats st;
    httpc_stats(f.c, &st);
    assert_int_equal(st.requests, 3);
    assert_int_equal(st.ok, 3);
    assert_int_equal(st.not_sent + st.unknown, 0);
    fx_done(&f);
}

static void test_statuses(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, NULL);
    struct ctx x[4];
    const char *paths[] = {"/status/200", "/status/422", "/status/500", "/status/429"};
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(req(&f, &x[i], i, "POST", paths[i], NULL, "{}", 2000), 0);
    run_until(&f, &f.done, 4, 5000);
    int want[] = {200, 422, 500, 429};
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(f.rec[i].outcome, HTTPC_OK);
        assert_int_equal(f.rec[i].status, want[i]);
        char b[32];
        snprintf(b, sizeof(b), "s=%d", want[i]);
        assert_string_equal(f.rec[i].body, b);
    }
    fx_done(&f);
}

/* Chained requests, each issued from the previous one's callback, on a pool of
 * one handle: the handle is back in the pool during the callback, the body
 * handed to the callback survives the re-issue, the connection is reused, and
 * the cached header list follows header changes. */
struct chain {
    struct fx *f;
    unsigned n, max;
    int reissue_rv;
};

static const char *const chain_hdrs_a[] = {"X-Test: a", NULL};
static const char *const chain_hdrs_b[] = {"X-Test: b", NULL};

static const char *const *chain_headers(unsigned i)
{
    return i % 3 == 0 ? chain_hdrs_a : i % 3 == 1 ? chain_hdrs_b : NULL;
}

/* Methods cycle with a different period from headers, so that every switch
 * (GET after POST, POST after PUT, ...) happens on the same easy handle. */
static const char *chain_method(unsigned i)
{
    return i % 4 == 0 ? "POST" : i % 4 == 1 ? "GET" : i % 4 == 2 ? "PUT" : "POST";
}

static void chain_body(unsigned i, char *buf, size_t cap)
{
    if (strcmp(chain_method(i), "GET") == 0)
        buf[0] = '\0';
    else
        snprintf(buf, cap, "body-%u", i);
}

static void chain_issue(struct chain *ch);

static void on_chain_done(void *arg, const struct httpc_result *res)
{
    struct chain *ch = arg;
    struct fx *f = ch->f;
    assert_false(in_request);
    assert_int_equal(res->outcome, HTTPC_OK);
    char want[64];
    const char *const *h = chain_headers(ch->n);
    char body[32];
    chain_body(ch->n, body, sizeof(body));
    snprintf(want, sizeof(want), "%s %s %s", chain_method(ch->n),
             h == chain_hdrs_a ? "a"
             : h               ? "b"
                               : "-",
             body);
    assert_string_equal(res->body, want);
    f->done++;
    ch->n++;
    if (ch->n < ch->max) {
        chain_issue(ch); /* reuses the only handle at once */
        assert_int_equal(ch->reissue_rv, 0);
        assert_string_equal(res->body, want); /* still valid after re-issue */
        assert_int_equal(res->body_len, strlen(want));
    }
}

static void chain_issue(struct chain *ch)
{
    char u[128], body[32];
    url(ch->f, u, sizeof(u), "/echo");
    chain_body(ch->n, body, sizeof(body));
    in_request = true;
    ch->reissue_rv =
        httpc_request(ch->f->c, chain_method(ch->n), u, chain_headers(ch->n),
                      body[0] != '\0' ? body : NULL, strlen(body), 2000, on_chain_done, ch);
    in_request = false;
}

static void test_keepalive_and_reissue(void **state)
{
    (void)state;
    struct httpc_config cfg;
    httpc_config_default(&cfg);
    cfg.max_handles = 1;
    struct fx f;
    fx_init(&f, &cfg);
    struct chain ch = {.f = &f, .max = 12};
    chain_issue(&ch);
    assert_int_equal(ch.reissue_rv, 0);
    run_until(&f, &f.done, 12, 5000);
    assert_int_equal(ch.n, 12);
    assert_int_equal(f.srv.requests, 12);
    assert_int_equal(f.srv.conns, 1); /* one connection for all of them */
    struct httpc_stats st;
    httpc_stats(f.c, &st);
    assert_int_equal(st.ok, 12);
    fx_done(&f);
}

static void test_concurrency_50(void **state)
{
    (void)state;
    struct httpc_config cfg;
    httpc_config_default(&cfg);
    cfg.max_handles = 64;
    struct fx f;
    fx_init(&f, &cfg);
    static struct ctx x[50];
    char bodies[50][16];
    for (unsigned i = 0; i < 50; i++) {
        snprintf(bodies[i], sizeof(bodies[i]), "req-%u", i);
        assert_int_equal(req(&f, &x[i], i, "POST", "/delay/100", NULL, bodies[i], 5000), 0);
    }
    assert_int_equal(httpc_in_flight(f.c), 50);
    run_until(&f, &f.done, 50, 10000);
    for (unsigned i = 0; i < 50; i++) {
        char want[32];
        snprintf(want, sizeof(want), "POST - req-%u", i);
        assert_int_equal(f.rec[i].calls, 1);
        assert_int_equal(f.rec[i].outcome, HTTPC_OK);
        assert_string_equal(f.rec[i].body, want);
    }
    /* HTTP/1.1 without pipelining: 50 requests in flight need 50 connections
     * (the server holds each for 100 ms, so they overlap). */
    assert_int_equal(f.srv.conns, 50);
    assert_int_equal(f.srv.max_open, 50);
    fx_done(&f);
}

static void test_host_connection_cap(void **state)
{
    (void)state;
    struct httpc_config cfg;
    httpc_config_default(&cfg);
    cfg.max_handles = 8;
    cfg.max_host_conns = 2;
    struct fx f;
    fx_init(&f, &cfg);
    struct ctx x[6];
    for (unsigned i = 0; i < 6; i++)
        assert_int_equal(req(&f, &x[i], i, "POST", "/delay/30", NULL, "capped", 5000), 0);
    run_until(&f, &f.done, 6, 5000);
    for (unsigned i = 0; i < 6; i++) {
        assert_int_equal(f.rec[i].outcome, HTTPC_OK);
        assert_string_equal(f.rec[i].body, "POST - capped");
    }
    assert_int_equal(f.srv.max_open, 2); /* the others waited inside curl */
    assert_int_equal(f.srv.conns, 2);
    fx_done(&f);
}

static void test_pool_exhaustion(void **state)
{
    (void)state;
    struct httpc_config cfg;
    httpc_config_default(&cfg);
    cfg.max_handles = 2;
    struct fx f;
    fx_init(&f, &cfg);
    struct ctx x[4];
    assert_int_equal(req(&f, &x[0], 0, "GET", "/delay/50", NULL, NULL, 2000), 0);
    assert_int_equal(req(&f, &x[1], 1, "GET", "/delay/50", NULL, NULL, 2000), 0);
    assert_int_equal(req(&f, &x[2], 2, "GET", "/echo", NULL, NULL, 2000), -EAGAIN);
    struct httpc_stats st;
    httpc_stats(f.c, &st);
    assert_int_equal(st.rejected_busy, 1);
    assert_int_equal(st.requests, 2);
    run_until(&f, &f.done, 2, 5000);
    assert_int_equal(req(&f, &x[3], 3, "GET", "/echo", NULL, NULL, 2000), 0);
    run_until(&f, &f.done, 3, 5000);
    assert_int_equal(f.rec[3].outcome, HTTPC_OK);
    assert_int_equal(f.rec[2].calls, 0);
    fx_done(&f);
}

static void test_bad_args(void **state)
{
    (void)state;
    struct httpc_config cfg;
    httpc_config_default(&cfg);
    cfg.max_req_body = 8;
    struct fx f;
    fx_init(&f, &cfg);
    struct ctx x;
    char u[128];
    url(&f, u, sizeof(u), "/echo");
    assert_int_equal(req(&f, &x, 0, "DELETE", "/echo", NULL, NULL, 1000), -EINVAL);
    assert_int_equal(req(&f, &x, 0, "GET", "/echo", NULL, "body", 1000), -EINVAL);
    assert_int_equal(req(&f, &x, 0, "GET", "/echo", NULL, NULL, 0), -EINVAL);
    assert_int_equal(req(&f, &x, 0, "POST", "/echo", NULL, "123456789", 1000), -EMSGSIZE);
    assert_int_equal(
        httpc_request(f.c, "GET", "ftp://127.0.0.1/", NULL, NULL, 0, 1000, on_done, &x), -EINVAL);
    assert_int_equal(httpc_request(f.c, "GET", u, NULL, NULL, 0, 1000, NULL, &x), -EINVAL);
    assert_int_equal(httpc_request(f.c, "POST", u, NULL, NULL, 3, 1000, on_done, &x), -EINVAL);
    assert_int_equal(httpc_in_flight(f.c), 0);
    /* A body of exactly max_req_body bytes is fine. */
    assert_int_equal(req(&f, &x, 0, "POST", "/echo", NULL, "12345678", 1000), 0);
    run_until(&f, &f.done, 1, 5000);
    assert_string_equal(f.rec[0].body, "POST - 12345678");
    fx_done(&f);
}

static int closed_port(uv_loop_t *loop)
{
    /* A port that was just free: bind, read it back, close. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a), 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t sl = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &sl), 0);
    close(fd);
    (void)loop;
    return ntohs(a.sin_port);
}

static void test_connection_refused(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, NULL);
    struct ctx x;
    char u[128];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/echo", closed_port(&f.loop));
    x.f = &f;
    x.idx = 0;
    in_request = true;
    assert_int_equal(httpc_request(f.c, "POST", u, NULL, "{}", 2, 2000, on_done, &x), 0);
    in_request = false;
    run_until(&f, &f.done, 1, 5000);
    assert_int_equal(f.rec[0].outcome, HTTPC_NOT_SENT);
    struct httpc_stats st;
    httpc_stats(f.c, &st);
    assert_int_equal(st.not_sent, 1);
    fx_done(&f);
}

static void test_timeout_no_answer(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, NULL);
    struct ctx x;
    assert_int_equal(req(&f, &x, 0, "POST", "/hang", NULL, "{}", 200), 0);
    run_until(&f, &f.done, 1, 5000);
    assert_int_equal(f.srv.requests, 1); /* the server did get it */
    assert_int_equal(f.rec[0].outcome, HTTPC_UNKNOWN);
    struct httpc_stats st;
    httpc_stats(f.c, &st);
    assert_int_equal(st.timeouts, 1);
    assert_int_equal(st.unknown, 1);
    fx_done(&f);
}

/* A listener whose accept queue is full drops SYNs: the connect never
 * completes, the timeout hits before anything is sent -> NOT_SENT. */
static void test_timeout_before_connect(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, NULL);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in a;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a), 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 0), 0);
    socklen_t sl = sizeof(a);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &sl), 0);
    int fill[3];
    for (int i = 0; i < 3; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        assert_true(fill[i] >= 0);
        (void)connect(fill[i], (struct sockaddr *)&a, sizeof(a)); /* EINPROGRESS */
    }
    usleep(20000); /* let the handshakes that fit into the queue complete */
    char u[128];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/echo", ntohs(a.sin_port));
    struct ctx x = {.f = &f, .idx = 0};
    assert_int_equal(httpc_request(f.c, "POST", u, NULL, "{}", 2, 300, on_done, &x), 0);
    run_until(&f, &f.done, 1, 5000);
    assert_int_equal(f.rec[0].outcome, HTTPC_NOT_SENT);
    struct httpc_stats st;
    httpc_stats(f.c, &st);
    assert_int_equal(st.timeouts, 1);
    for (int i = 0; i < 3; i++)
        close(fill[i]);
    close(lfd);
    fx_done(&f);
}

static void test_close_mid_response(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, NULL);
    struct ctx x[2];
    assert_int_equal(req(&f, &x[0], 0, "POST", "/partial", NULL, "{}", 2000), 0);
    run_until(&f, &f.done, 1, 5000);
    assert_int_equal(req(&f, &x[1], 1, "POST", "/close", NULL, "{}", 2000), 0);
    run_until(&f, &f.done, 2, 5000);
    assert_int_equal(f.rec[0].outcome, HTTPC_UNKNOWN); /* partial body */
    assert_int_equal(f.rec[1].outcome, HTTPC_UNKNOWN); /* empty reply */
    assert_int_equal(f.rec[0].body_len, 0);
    assert_int_equal(f.srv.requests, 2);
    fx_done(&f);
}

/* The trap that makes curl's error code insufficient: a request on a reused
 * connection that dies without any answer is retried by curl on a fresh
 * connection; here that connect is refused, so curl reports
 * CURLE_COULDNT_CONNECT although the server received the request. */
static void test_retry_after_reuse_is_unknown(void **state)
{
    (void)state;
    struct httpc_config cfg;
    httpc_config_default(&cfg);
    cfg.max_handles = 1;
    struct fx f;
    fx_init(&f, &cfg);
    struct ctx x[2];
    assert_int_equal(req(&f, &x[0], 0, "GET", "/echo", NULL, NULL, 2000), 0);
    run_until(&f, &f.done, 1, 5000);
    assert_int_equal(req(&f, &x[1], 1, "POST", "/closelisten", NULL, "{}", 2000), 0);
    run_until(&f, &f.done, 2, 5000);
    assert_int_equal(f.srv.conns, 1);
    assert_int_equal(f.srv.requests, 2); /* the server saw the POST */
    assert_int_equal(f.rec[1].outcome, HTTPC_UNKNOWN);
    fx_done(&f);
}

/* The server closes an idle keep-alive connection; the next request must
 * notice and go out on a new connection, and the idle socket must not spin
 * the loop meanwhile (a socket left polled for readability at EOF would). */
static void test_server_closes_idle_connection(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, NULL);
    struct ctx x[2];
    assert_int_equal(req(&f, &x[0], 0, "GET", "/echo", NULL, NULL, 2000), 0);
    run_until(&f, &f.done, 1, 5000);
    while (f.srv.list != NULL)
        tconn_close(f.srv.list);
    struct rusage ru0, ru1;
    getrusage(RUSAGE_THREAD, &ru0);
    run_for(&f, 100);
    getrusage(RUSAGE_THREAD, &ru1);
    /* A socket polled for readability at EOF would wake the loop on every
     * iteration: 100 ms of that is ~100 ms of CPU. Allow a generous 30. */
    long cpu_us = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) * 1000000L +
                  (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) +
                  (ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1000000L +
                  (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec);
    assert_true(cpu_us < 30000);
    assert_int_equal(req(&f, &x[1], 1, "POST", "/echo", NULL, "again", 2000), 0);
    run_until(&f, &f.done, 2, 5000);
    assert_int_equal(f.rec[1].outcome, HTTPC_OK);
    assert_string_equal(f.rec[1].body, "POST - again");
    assert_int_equal(f.srv.conns, 2);
    fx_done(&f);
}

static void test_truncation(void **state)
{
    (void)state;
    struct httpc_config cfg;
    httpc_config_default(&cfg);
    cfg.max_resp_body = 100;
    cfg.max_handles = 1;
    struct fx f;
    fx_init(&f, &cfg);
    struct ctx x[2];
    assert_int_equal(req(&f, &x[0], 0, "GET", "/big/100000", NULL, NULL, 2000), 0);
    run_until(&f, &f.done, 1, 5000);
    assert_int_equal(f.rec[0].outcome, HTTPC_OK);
    assert_int_equal(f.rec[0].body_len, 100);
    for (unsigned i = 0; i < 100; i++)
        assert_int_equal(f.rec[0].body[i], 'a' + i % 26);
    assert_int_equal(f.rec[0].body[100], '\0');
    assert_int_equal(req(&f, &x[1], 1, "GET", "/big/30", NULL, NULL, 2000), 0);
    run_until(&f, &f.done, 2, 5000);
    assert_int_equal(f.rec[1].body_len, 30);
    struct httpc_stats st;
    httpc_stats(f.c, &st);
    assert_int_equal(st.truncated, 1);
    assert_int_equal(f.srv.conns, 1); /* the dropped bytes were read, not left behind */
    fx_done(&f);
}

static void test_close_before_start(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, NULL);
    struct ctx x[5];
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(req(&f, &x[i], i, "POST", "/echo", NULL, "{}", 2000), 0);
    httpc_close(f.c, on_httpc_closed, &f);
    assert_int_equal(f.done, 0); /* callbacks come from the loop */
    assert_int_equal(req(&f, &x[0], 0, "GET", "/echo", NULL, NULL, 2000), -ECANCELED);
    run_until(&f, &f.closed, 1, 5000);
    assert_int_equal(f.done, 5);
    for (unsigned i = 0; i < 5; i++) {
        assert_int_equal(f.rec[i].calls, 1);
        assert_int_equal(f.rec[i].outcome, HTTPC_NOT_SENT);
    }
    assert_int_equal(f.srv.requests, 0);
    fx_done(&f);
}

static void test_close_in_flight(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, NULL);
    struct ctx x[5];
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(req(&f, &x[i], i, "POST", "/hang", NULL, "{}", 5000), 0);
    run_until(&f, &f.srv.requests, 5, 5000);
    httpc_close(f.c, on_httpc_closed, &f);
    run_until(&f, &f.closed, 1, 5000);
    assert_int_equal(f.done, 5);
    for (unsigned i = 0; i < 5; i++) {
        assert_int_equal(f.rec[i].calls, 1);
        assert_int_equal(f.rec[i].outcome, HTTPC_UNKNOWN);
    }
    fx_done(&f);
}

/* httpc_close() from inside a request callback, with others in flight; a
 * request issued by a later callback is refused. */
static struct fx *closer_fx;
static int closer_reissue_rv;

static void on_done_then_close(void *arg, const struct httpc_result *res)
{
    on_done(arg, res);
    httpc_close(closer_fx->c, on_httpc_closed, closer_fx);
}

static void on_done_then_reissue(void *arg, const struct httpc_result *res)
{
    on_done(arg, res);
    char u[128];
    url(closer_fx, u, sizeof(u), "/echo");
    closer_reissue_rv = httpc_request(closer_fx->c, "GET", u, NULL, NULL, 0, 1000, on_done, arg);
}

static void test_close_from_callback(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, NULL);
    closer_fx = &f;
    struct ctx x[4];
    char u[128];
    url(&f, u, sizeof(u), "/hang");
    for (unsigned i = 0; i < 3; i++) {
        x[i].f = &f;
        x[i].idx = i;
        assert_int_equal(
            httpc_request(f.c, "POST", u, NULL, "{}", 2, 5000, on_done_then_reissue, &x[i]), 0);
    }
    run_until(&f, &f.srv.requests, 3, 5000);
    x[3].f = &f;
    x[3].idx = 3;
    url(&f, u, sizeof(u), "/echo");
    assert_int_equal(httpc_request(f.c, "GET", u, NULL, NULL, 0, 5000, on_done_then_close, &x[3]),
                     0);
    run_until(&f, &f.closed, 1, 5000);
    assert_int_equal(f.done, 4);
    assert_int_equal(f.rec[3].outcome, HTTPC_OK);
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(f.rec[i].calls, 1);
        assert_int_equal(f.rec[i].outcome, HTTPC_UNKNOWN);
    }
    assert_int_equal(closer_reissue_rv, -ECANCELED);
    fx_done(&f);
}

/* curl_uv alone: an easy handle driven to completion, then close. */
struct cu_probe {
    unsigned done;
    CURLcode rc;
    unsigned closed;
};

static void on_cu_done(void *arg, CURL *easy, CURLcode rc)
{
    struct cu_probe *p = arg;
    (void)easy;
    p->rc = rc;
    p->done++;
}

static void on_cu_closed(void *arg)
{
    struct cu_probe *p = arg;
    p->closed++;
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
    (void)ptr, (void)ud;
    return size * nmemb;
}

static void test_curl_uv_alone(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, NULL);
    struct cu_probe p = {0};
    struct curl_uv *cu = curl_uv_new(&f.loop, on_cu_done, &p);
    assert_non_null(cu);
    CURL *e = curl_easy_init();
    assert_non_null(e);
    char u[128];
    url(&f, u, sizeof(u), "/echo");
    curl_easy_setopt(e, CURLOPT_URL, u);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    for (unsigned i = 1; i <= 3; i++) {
        assert_int_equal(curl_uv_add(cu, e), 0);
        assert_int_equal(curl_uv_add(cu, e), -EINVAL); /* already added */
        run_until(&f, &p.done, i, 5000);
        assert_int_equal(p.rc, CURLE_OK);
    }
    struct curl_uv_stats st;
    curl_uv_stats(cu, &st);
    assert_int_equal(st.completions, 3);
    assert_int_equal(st.transfers, 0);
    assert_true(st.socket_actions > 0);
    assert_int_equal(f.srv.conns, 1);
    curl_uv_close(cu, on_cu_closed, &p);
    run_until(&f, &p.closed, 1, 5000);
    curl_easy_cleanup(e);
    fx_done(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_methods_echo),
        cmocka_unit_test(test_statuses),
        cmocka_unit_test(test_keepalive_and_reissue),
        cmocka_unit_test(test_concurrency_50),
        cmocka_unit_test(test_host_connection_cap),
        cmocka_unit_test(test_pool_exhaustion),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_timeout_no_answer),
        cmocka_unit_test(test_timeout_before_connect),
        cmocka_unit_test(test_close_mid_response),
        cmocka_unit_test(test_retry_after_reuse_is_unknown),
        cmocka_unit_test(test_server_closes_idle_connection),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_close_before_start),
        cmocka_unit_test(test_close_in_flight),
        cmocka_unit_test(test_close_from_callback),
        cmocka_unit_test(test_curl_uv_alone),
    };
    int rv = cmocka_run_group_tests_name("httpc", tests, NULL, NULL);
    curl_uv_global_cleanup();
    return rv;
}
