/* Tests of lib/http.c: the server runs on a private uv_loop in a background
 * thread; the test thread drives it with blocking client sockets (tclient) and
 * asks the loop thread to act through a uv_async_t. Every test ends by closing
 * the server and asserting uv_loop_close() == 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "lib/http.h"
#include "tclient.h"

#define TIMEOUT_MS 5000

enum fx_cmd { CMD_NONE = 0, CMD_CLOSE, CMD_STOP_ACCEPTING };

struct fx {
    uv_loop_t loop;
    uv_async_t ctl;
    pthread_t thr;
    struct http_server *srv;
    char addr[64];
    char unix_path[108];
    _Atomic int cmd;
    _Atomic int closed;       /* http_server_close callback ran */
    _Atomic int replied_hang; /* /hang replies made */
    _Atomic int hang_open;    /* http_exchange_client_open() at that reply */
    _Atomic int seen_pending; /* http_server_pending() seen by the last handler */
    _Atomic int requests;     /* handler calls */
};

struct delayed {
    uv_timer_t t;
    struct http_exchange *x;
    struct fx *f;
    int kind; /* 0: /async (50 ms), 1: /hang (200 ms) */
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void on_delayed_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_delayed(uv_timer_t *t)
{
    struct delayed *d = t->data;
    if (d->kind == 1) {
        atomic_store(&d->f->hang_open, http_exchange_client_open(d->x) ? 1 : 0);
        http_reply_json(d->x, 200, "{\"late\":true}");
        atomic_fetch_add(&d->f->replied_hang, 1);
    } else {
        http_reply_json(d->x, 200, "ASYNC");
    }
    uv_close((uv_handle_t *)t, on_delayed_closed);
}

static void defer_reply(struct fx *f, struct http_exchange *x, int kind, uint64_t ms)
{
    struct delayed *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    d->x = x;
    d->f = f;
    d->kind = kind;
    uv_timer_init(&f->loop, &d->t);
    d->t.data = d;
    uv_timer_start(&d->t, on_delayed, ms, 0);
}

/* Echo handler: "<VERB> <path>[?query]|<body>", with special paths. */
static void handler(struct http_exchange *x, const struct http_request *req, void *arg)
{
    struct fx *f = arg;
    atomic_fetch_add(&f->requests, 1);
    atomic_store(&f->seen_pending, (int)http_server_pending(f->srv));
    if (slice_eq(req->path, "/async")) {
        defer_reply(f, x, 0, 50);
        return;
    }
    if (slice_eq(req->path, "/hang")) {
        defer_reply(f, x, 1, 200);
        return;
    }
    if (slice_eq(req->path, "/never"))
        return; /* released by http_server_close */
    if (slice_eq(req->path, "/header")) {
        struct slice name, v;
        char key[64];
        if (!http_query_param(req->query, "name", &name) || name.len >= sizeof(key)) {
            http_reply_error(x, 400, "no name");
            return;
        }
        memcpy(key, name.ptr, name.len);
        key[name.len] = '\0';
        if (!http_request_header(req, key, &v)) {
            http_reply_error(x, 404, "no such header");
            return;
        }
        http_reply(x, 200, NULL, v.ptr, v.len);
        return;
    }
    if (slice_eq(req->path, "/big")) {
        struct slice n;
        size_t len = 300000;
        if (http_query_param(req->query, "n", &n))
            len = (size_t)strtoul(n.ptr, NULL, 10);
        char *b = malloc(len);
        assert_non_null(b);
        for (size_t i = 0; i < len; i++)
            b[i] = (char)('a' + i % 26);
        http_reply(x, 200, NULL, b, len);
        free(b);
        return;
    }
    if (slice_eq(req->path, "/nocontent")) {
        http_reply(x, 204, NULL, NULL, 0);
        return;
    }
    if (slice_eq(req->path, "/extra")) {
        http_reply(x, 429, "Retry-After: 3\r\n", "{}", 2);
        return;
    }
    static const char *verbs[] = {"OTHER", "GET", "POST", "PUT", "DELETE", "HEAD"};
    char out[8192];
    int n = snprintf(out, sizeof(out), "%s %.*s%s%.*s|%.*s", verbs[req->verb], (int)req->path.len,
                     req->path.ptr, req->query.len ? "?" : "", (int)req->query.len, req->query.ptr,
                     (int)req->body.len, req->body.ptr);
    http_reply(x, 200, NULL, out, (size_t)n);
}

static void on_server_closed(struct http_server *s, void *arg)
{
    struct fx *f = arg;
    atomic_store(&f->closed, 1);
}

static void close_leftover(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, h->type == UV_TIMER ? on_delayed_closed : NULL);
}

static void on_ctl(uv_async_t *a)
{
    struct fx *f = a->data;
    int cmd = atomic_exchange(&f->cmd, CMD_NONE);
    if (cmd == CMD_STOP_ACCEPTING) {
        http_server_stop_accepting(f->srv);
    } else if (cmd == CMD_CLOSE) {
        http_server_close(f->srv, on_server_closed, f);
        /* Timers of replies still to come: the exchanges were released. */
        uv_walk(&f->loop, close_leftover, NULL);
    }
}

static void *loop_main(void *arg)
{
    struct fx *f = arg;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void fx_send(struct fx *f, int cmd)
{
    atomic_store(&f->cmd, cmd);
    uv_async_send(&f->ctl);
}

static void fx_start(struct fx *f, const struct http_server_config *cfg_in, bool with_unix)
{
    memset(f, 0, sizeof(*f));
    struct http_server_config cfg;
    http_server_config_default(&cfg);
    cfg.max_conns = 16;
    cfg.max_header_bytes = 4096;
    cfg.max_body_bytes = 1024;
    cfg.out_buf_bytes = 4096;
    if (cfg_in)
        cfg = *cfg_in;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->srv = http_server_new(&f->loop, &cfg, handler, f);
    assert_non_null(f->srv);
    assert_int_equal(http_server_listen_tcp(f->srv, "127.0.0.1", 0), 0);
    int port = http_server_port(f->srv);
    assert_true(port > 0);
    snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%d", port);
    if (with_unix) {
        snprintf(f->unix_path, sizeof(f->unix_path), "/tmp/test_http_%d.sock", (int)getpid());
        assert_int_equal(http_server_listen_unix(f->srv, f->unix_path), 0);
    }
    assert_int_equal(uv_async_init(&f->loop, &f->ctl, on_ctl), 0);
    f->ctl.data = f;
    assert_int_equal(pthread_create(&f->thr, NULL, loop_main, f), 0);
}

static void fx_stop(struct fx *f)
{
    fx_send(f, CMD_CLOSE);
    /* the async handle itself is closed by the uv_walk in on_ctl */
    assert_int_equal(pthread_join(f->thr, NULL), 0);
    assert_int_equal(atomic_load(&f->closed), 1);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void base_cfg(struct http_server_config *cfg)
{
    http_server_config_default(cfg);
    cfg->max_conns = 16;
    cfg->max_header_bytes = 4096;
    cfg->max_body_bytes = 1024;
    cfg->out_buf_bytes = 4096;
}

/* ---------- pure helpers ---------- */

static void test_query_and_headers(void **state)
{
    struct slice v;
    struct slice q = SLICE_LIT("from=2025-01-01&to=&x&y=1");
    assert_true(http_query_param(q, "from", &v));
    assert_true(slice_eq(v, "2025-01-01"));
    assert_true(http_query_param(q, "to", &v));
    assert_int_equal(v.len, 0);
    assert_true(http_query_param(q, "x", &v));
    assert_int_equal(v.len, 0);
    assert_true(http_query_param(q, "y", &v));
    assert_true(slice_eq(v, "1"));
    assert_false(http_query_param(q, "fro", &v));
    assert_false(http_query_param(SLICE_LIT(""), "a", &v));

    struct http_request req;
    memset(&req, 0, sizeof(req));
    req.headers[0].name = SLICE_LIT("X-Rinha-Token");
    req.headers[0].value = SLICE_LIT("123");
    req.nheaders = 1;
    assert_true(http_request_header(&req, "x-rinha-token", &v));
    assert_true(slice_eq(v, "123"));
    assert_false(http_request_header(&req, "x-rinha", &v));
}

/* ---------- requests ---------- */

static void test_simple_get(void **state)
{
    struct fx f;
    fx_start(&f, NULL, false);
    struct tclient_resp r;
    char body[256], v[64];
    assert_int_equal(tclient_fetch(f.addr, TIMEOUT_MS, "GET", "/hello?a=1", NULL, NULL, 0, &r, body,
                                   sizeof(body)),
                     0);
    assert_int_equal(r.status, 200);
    assert_string_equal(body, "GET /hello?a=1|");
    assert_true(tclient_header(&r, "Content-Type", v, sizeof(v)));
    assert_string_equal(v, "application/json");
    assert_true(tclient_header(&r, "Content-Length", v, sizeof(v)));
    assert_string_equal(v, "15");
    assert_int_equal(strncmp(r.head, "HTTP/1.1 200 OK\r\n", 17), 0);
    /* extra headers and 204 */
    assert_int_equal(
        tclient_fetch(f.addr, TIMEOUT_MS, "GET", "/extra", NULL, NULL, 0, &r, body, sizeof(body)),
        0);
    assert_int_equal(r.status, 429);
    assert_true(tclient_header(&r, "Retry-After", v, sizeof(v)));
    assert_string_equal(v, "3");
    assert_int_equal(tclient_fetch(f.addr, TIMEOUT_MS, "PUT", "/nocontent", NULL, "{}", 2, &r, body,
                                   sizeof(body)),
                     0);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.body_len, 0);
    /* header lookup is case-insensitive */
    assert_int_equal(tclient_fetch(f.addr, TIMEOUT_MS, "GET", "/header?name=x-rinha-token",
                                   "X-Rinha-Token: 123\r\n", NULL, 0, &r, body, sizeof(body)),
                     0);
    assert_int_equal(r.status, 200);
    assert_string_equal(body, "123");
    fx_stop(&f);
}

static void test_post_body(void **state)
{
    struct fx f;
    fx_start(&f, NULL, false);
    struct tclient_resp r;
    char body[256];
    const char *json = "{\"correlationId\":\"x\",\"amount\":19.90}";
    assert_int_equal(tclient_fetch(f.addr, TIMEOUT_MS, "POST", "/payments", NULL, json,
                                   strlen(json), &r, body, sizeof(body)),
                     0);
    assert_int_equal(r.status, 200);
    char want[256];
    snprintf(want, sizeof(want), "POST /payments|%s", json);
    assert_string_equal(body, want);
    fx_stop(&f);
}

static void test_keep_alive_three(void **state)
{
    struct fx f;
    fx_start(&f, NULL, false);
    struct tclient *c = malloc(sizeof(*c));
    assert_non_null(c);
    assert_int_equal(tclient_connect(c, f.addr, TIMEOUT_MS), 0);
    int fd = c->fd;
    for (int i = 0; i < 3; i++) {
        struct tclient_resp r;
        char body[128], path[32], want[64];
        snprintf(path, sizeof(path), "/k%d", i);
        assert_int_equal(tclient_request(c, "POST", path, NULL, "ab", 2, &r, body, sizeof(body)),
                         0);
        assert_int_equal(r.status, 200);
        assert_false(r.server_close);
        snprintf(want, sizeof(want), "POST %s|ab", path);
        assert_string_equal(body, want);
        assert_int_equal(c->fd, fd); /* same connection */
    }
    /* Connection: close is honoured: the server closes after the reply */
    struct tclient_resp r;
    char body[128];
    assert_int_equal(tclient_request(c, "GET", "/last", "Connection: close\r\n", NULL, 0, &r, body,
                                     sizeof(body)),
                     0);
    assert_int_equal(r.status, 200);
    assert_true(r.server_close);
    free(c);
    fx_stop(&f);
}

static void test_http10_closes(void **state)
{
    struct fx f;
    fx_start(&f, NULL, false);
    struct tclient *c = malloc(sizeof(*c));
    assert_non_null(c);
    assert_int_equal(tclient_connect(c, f.addr, TIMEOUT_MS), 0);
    const char *req = "GET /old HTTP/1.0\r\n\r\n";
    assert_int_equal(tclient_send_raw(c, req, strlen(req)), 0);
    struct tclient_resp r;
    char body[64];
    assert_int_equal(tclient_read_response(c, false, &r, body, sizeof(body)), 0);
    assert_int_equal(r.status, 200);
    assert_true(r.server_close);
    assert_string_equal(body, "GET /old|");
    /* HTTP/1.0 with keep-alive stays open and says so */
    assert_int_equal(tclient_connect(c, f.addr, TIMEOUT_MS), 0);
    req = "GET /old2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    assert_int_equal(tclient_send_raw(c, req, strlen(req)), 0);
    assert_int_equal(tclient_read_response(c, false, &r, body, sizeof(body)), 0);
    char v[32];
    assert_true(tclient_header(&r, "Connection", v, sizeof(v)));
    assert_string_equal(v, "keep-alive");
    assert_false(r.server_close);
    tclient_close(c);
    free(c);
    fx_stop(&f);
}

static void test_pipelined_in_order(void **state)
{
    struct fx f;
    fx_start(&f, NULL, false);
    struct tclient *c = malloc(sizeof(*c));
    assert_non_null(c);
    assert_int_equal(tclient_connect(c, f.addr, TIMEOUT_MS), 0);
    const char *reqs = "GET /p1 HTTP/1.1\r\nHost: x\r\n\r\n"
                       "POST /p2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                       "GET /p3?q=1 HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(tclient_send_raw(c, reqs, strlen(reqs)), 0);
    const char *want[] = {"GET /p1|", "POST /p2|abc", "GET /p3?q=1|"};
    for (int i = 0; i < 3; i++) {
        struct tclient_resp r;
        char body[64];
        assert_int_equal(tclient_read_response(c, false, &r, body, sizeof(body)), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(body, want[i]);
    }
    tclient_close(c);
    free(c);
    fx_stop(&f);
}

static void test_split_one_byte_writes(void **state)
{
    struct fx f;
    fx_start(&f, NULL, false);
    struct tclient *c = malloc(sizeof(*c));
    assert_non_null(c);
    assert_int_equal(tclient_connect(c, f.addr, TIMEOUT_MS), 0);
    const char *req = "POST /split HTTP/1.1\r\nHost: x\r\nX-Long-Header-Name: some value\r\n"
                      "Content-Length: 26\r\n\r\nabcdefghijklmnopqrstuvwxyz";
    for (size_t i = 0; i < strlen(req); i++) {
        assert_int_equal(tclient_send_raw(c, req + i, 1), 0);
        if (i % 4 == 0)
            sleep_ms(1);
    }
    struct tclient_resp r;
    char body[128];
    assert_int_equal(tclient_read_response(c, false, &r, body, sizeof(body)), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(body, "POST /split|abcdefghijklmnopqrstuvwxyz");
    tclient_close(c);
    free(c);
    fx_stop(&f);
}

static void test_chunked_body(void **state)
{
    struct fx f;
    fx_start(&f, NULL, false);
    struct tclient *c = malloc(sizeof(*c));
    assert_non_null(c);
    assert_int_equal(tclient_connect(c, f.addr, TIMEOUT_MS), 0);
    const char *req = "POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n"
                      "GET /next HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(tclient_send_raw(c, req, strlen(req)), 0);
    struct tclient_resp r;
    char body[128];
    assert_int_equal(tclient_read_response(c, false, &r, body, sizeof(body)), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(body, "POST /chunked|abcdefgh");
    assert_int_equal(tclient_read_response(c, false, &r, body, sizeof(body)), 0);
    assert_string_equal(body, "GET /next|");
    tclient_close(c);
    free(c);
    fx_stop(&f);
}

static void test_async_then_pipelined(void **state)
{
    struct fx f;
    fx_start(&f, NULL, false);
    struct tclient *c = malloc(sizeof(*c));
    assert_non_null(c);
    assert_int_equal(tclient_connect(c, f.addr, TIMEOUT_MS), 0);
    const char *reqs = "GET /async HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /behind HTTP/1.1\r\nHost: x\r\n\r\n";
    uint64_t t0 = uv_hrtime();
    assert_int_equal(tclient_send_raw(c, reqs, strlen(reqs)), 0);
    struct tclient_resp r;
    char body[64];
    assert_int_equal(tclient_read_response(c, false, &r, body, sizeof(body)), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(body, "ASYNC");
    /* The timer's reply, not an earlier one. libuv runs a 50 ms timer against
     * its loop clock, which counts whole milliseconds (truncated), so the reply
     * may come up to 1 ms before 50 ms of real time have passed. */
    assert_true(uv_hrtime() - t0 >= 49 * 1000000ULL);
    assert_int_equal(tclient_read_response(c, false, &r, body, sizeof(body)), 0);
    assert_string_equal(body, "GET /behind|");
    /* one request at a time: the second was not handed over while the first waited */
    assert_int_equal(atomic_load(&f.seen_pending), 1);
    tclient_close(c);
    free(c);
    fx_stop(&f);
}

static void test_body_too_large_413(void **state)
{
    struct fx f;
    fx_start(&f, NULL, false);
    struct tclient *c = malloc(sizeof(*c));
    assert_non_null(c);
    /* announced by Content-Length */
    assert_int_equal(tclient_connect(c, f.addr, TIMEOUT_MS), 0);
    char big[3000];
    memset(big, 'x', sizeof(big));
    struct tclient_resp r;
    char body[128];
    assert_int_equal(
        tclient_request(c, "POST", "/big-body", NULL, big, sizeof(big), &r, body, sizeof(body)), 0);
    assert_int_equal(r.status, 413);
    assert_true(r.server_close);
    /* RFC 9110's reason phrase, not http-parser's older "Payload Too Large" */
    assert_int_equal(strncmp(r.head, "HTTP/1.1 413 Content Too Large\r\n", 32), 0);
    assert_int_equal(r.body_len, strlen("{\"error\":\"Content Too Large\"}"));
    assert_memory_equal(body, "{\"error\":\"Content Too Large\"}", r.body_len);
    /* chunked, discovered while reading the body */
    assert_int_equal(tclient_connect(c, f.addr, TIMEOUT_MS), 0);
    char req[4096];
    int n = snprintf(req, sizeof(req),
                     "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "400\r\n%.1024s\r\n400\r\n%.1024s\r\n0\r\n\r\n",
                     big, big);
    assert_int_equal(tclient_send_raw(c, req, (size_t)n), 0);
    assert_int_equal(tclient_read_response(c, false, &r, body, sizeof(body)), 0);
    assert_int_equal(r.status, 413);
    assert_int_equal(atomic_load(&f.requests), 0);
    tclient_close(c);
    free(c);
    fx_stop(&f);
}

static void test_header_too_large_431(void **state)
{
    struct fx f;
    fx_start(&f, NULL, false);
    char hdr[6000];
    memcpy(hdr, "X-Big: ", 7);
    memset(hdr + 7, 'h', 5000);
    memcpy(hdr + 5007, "\r\n", 3);
    struct tclient_resp r;
    char body[128];
    assert_int_equal(
        tclient_fetch(f.addr, TIMEOUT_MS, "GET", "/h", hdr, NULL, 0, &r, body, sizeof(body)), 0);
    assert_int_equal(r.status, 431);
    assert_true(r.server_close);
    /* many small headers count too */
    char many[8000];
    size_t len = 0;
    for (int i = 0; i < 450; i++)
        len += (size_t)snprintf(many + len, sizeof(many) - len, "X-H%d: v\r\n", i);
    assert_int_equal(
        tclient_fetch(f.addr, TIMEOUT_MS, "GET", "/h", many, NULL, 0, &r, body, sizeof(body)), 0);
    assert_int_equal(r.status, 431);
    assert_int_equal(atomic_load(&f.requests), 0);
    fx_stop(&f);
}

static void test_malformed_400(void **state)
{
    struct fx f;
    fx_start(&f, NULL, false);
    const char *bad[] = {"GARBAGE / HTTP/1.1\r\n\r\n",
                         "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", "GET / HTTP/9.Q\r\n\r\n",
                         "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct tclient *c = malloc(sizeof(*c));
        assert_non_null(c);
        assert_int_equal(tclient_connect(c, f.addr, TIMEOUT_MS), 0);
        assert_int_equal(tclient_send_raw(c, bad[i], strlen(bad[i])), 0);
        struct tclient_resp r;
        char body[128];
        assert_int_equal(tclient_read_response(c, false, &r, body, sizeof(body)), 0);
        assert_int_equal(r.status, 400);
        assert_true(r.server_close);
        assert_string_equal(body, "{\"error\":\"Bad Request\"}");
        tclient_close(c);
        free(c);
    }
    assert_int_equal(atomic_load(&f.requests), 0);
    fx_stop(&f);
}

/* Sends a chunked request head, then `tail`; the server must answer 413 at
 * once: well before the idle timeout and the request deadline (both 60 s). */
static void expect_chunk_413(struct fx *f, const char *tail)
{
    struct tclient *c = malloc(sizeof(*c));
    assert_non_null(c);
    assert_int_equal(tclient_connect(c, f->addr, TIMEOUT_MS), 0);
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%s", tail);
    assert_int_equal(tclient_send_raw(c, req, (size_t)n), 0);
    struct tclient_resp r;
    char body[128];
    int rv = tclient_read_response(c, false, &r, body, sizeof(body));
    if (rv != 0 || r.status != 413)
        fail_msg("after \"%.40s\": rv %d, status %d", tail, rv, rv == 0 ? r.status : 0);
    assert_true(r.server_close);
    tclient_close(c);
    free(c);
}

static void test_chunk_size_beyond_limit_413(void **state)
{
    struct fx f;
    struct http_server_config cfg;
    base_cfg(&cfg); /* max_body_bytes 1024 */
    cfg.idle_timeout_ms = 60000;
    cfg.request_deadline_ms = 60000;
    fx_start(&f, &cfg, false);
    expect_chunk_413(&f, "ffffffffffff\r\n"); /* a whole size line, no data */
    expect_chunk_413(&f, "ffffffffffff");     /* the size line is not even finished */
    expect_chunk_413(&f, "401\r\n");          /* one byte over */
    expect_chunk_413(&f, "401;ext=1");        /* an extension follows the size */
    /* 0x200 bytes fit; a second chunk of 0x201 does not */
    char two[1200];
    memset(two, 'x', 0x200);
    snprintf(two + 0x200, sizeof(two) - 0x200, "\r\n201\r\n");
    char tail[1300];
    snprintf(tail, sizeof(tail), "200\r\n%s", two);
    expect_chunk_413(&f, tail);
    assert_int_equal(atomic_load(&f.requests), 0);

    /* A size line that fits exactly is served, also when it arrives in a read of
     * its own after the head (no size digits yet must not look oversized). */
    struct tclient *c = malloc(sizeof(*c));
    assert_non_null(c);
    assert_int_equal(tclient_connect(c, f.addr, TIMEOUT_MS), 0);
    const char *head = "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(tclient_send_raw(c, head, strlen(head)), 0);
    sleep_ms(50);
    assert_int_equal(tclient_send_raw(c, "2", 1), 0);
    sleep_ms(50);
    assert_int_equal(tclient_send_raw(c, "00\r\n", 4), 0);
    char data[0x200 + 16];
    memset(data, 'y', 0x200);
    memcpy(data + 0x200, "\r\n", 2);
    assert_int_equal(tclient_send_raw(c, data, 0x200 + 2), 0);
    assert_int_equal(tclient_send_raw(c, "200\r\n", 5), 0);
    assert_int_equal(tclient_send_raw(c, data, 0x200 + 2), 0);
    assert_int_equal(tclient_send_raw(c, "0\r\n\r\n", 5), 0);
    struct tclient_resp r;
    char body[1200];
    assert_int_equal(tclient_read_response(c, false, &r, body, sizeof(body)), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, strlen("POST /c|") + 1024);
    tclient_close(c);
    free(c);
    fx_stop(&f);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A client that trickles one header byte every 50 ms never goes idle, yet gets
 * 408 and a close once its request is older than the deadline. */
static void test_request_deadline_408(void **state)
{
    struct fx f;
    struct http_server_config cfg;
    base_cfg(&cfg);
    cfg.idle_timeout_ms = 60000;
    cfg.request_deadline_ms = 300; /* swept every 75 ms */
    fx_start(&f, &cfg, false);
    struct tclient *c = malloc(sizeof(*c));
    assert_non_null(c);
    assert_int_equal(tclient_connect(c, f.addr, TIMEOUT_MS), 0);
    const char *head = "GET /slow HTTP/1.1\r\nX-Slow: ";
    uint64_t t0 = now_ms();
    assert_int_equal(tclient_send_raw(c, head, strlen(head)), 0);
    uint64_t answered = 0;
    for (int i = 0; i < 60 && !answered; i++) { /* at most 3 s */
        sleep_ms(50);
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        if (poll(&pfd, 1, 0) == 1) {
            answered = now_ms();
            break;
        }
        assert_int_equal(tclient_send_raw(c, "a", 1), 0);
    }
    assert_true(answered != 0);
    uint64_t took = answered - t0;
    assert_true(took >= 300);
    assert_true(took < 1500); /* deadline + a sweep period, with room for a slow machine */
    struct tclient_resp r;
    char body[128];
    assert_int_equal(tclient_read_response(c, false, &r, body, sizeof(body)), 0);
    assert_int_equal(r.status, 408);
    assert_true(r.server_close);
    assert_int_equal(tclient_wait_closed(c, TIMEOUT_MS), 0);
    tclient_close(c);
    assert_int_equal(atomic_load(&f.requests), 0);

    /* The deadline runs from a request's first byte: neither a quiet new
     * connection nor the pause between keep-alive requests counts. */
    assert_int_equal(tclient_connect(c, f.addr, TIMEOUT_MS), 0);
    sleep_ms(500);
    assert_int_equal(tclient_request(c, "GET", "/one", NULL, NULL, 0, &r, body, sizeof(body)), 0);
    assert_int_equal(r.status, 200);
    sleep_ms(500);
    assert_int_equal(tclient_request(c, "GET", "/two", NULL, NULL, 0, &r, body, sizeof(body)), 0);
    assert_int_equal(r.status, 200);
    assert_false(r.server_close);
    tclient_close(c);
    free(c);
    fx_stop(&f);
}

static void test_idle_timeout(void **state)
{
    struct fx f;
    struct http_server_config cfg;
    base_cfg(&cfg);
    cfg.idle_timeout_ms = 200;
    fx_start(&f, &cfg, false);
    struct tclient *c = malloc(sizeof(*c));
    assert_non_null(c);
    assert_int_equal(tclient_connect(c, f.addr, TIMEOUT_MS), 0);
    struct tclient_resp r;
    char body[64];
    assert_int_equal(tclient_request(c, "GET", "/i", NULL, NULL, 0, &r, body, sizeof(body)), 0);
    assert_int_equal(r.status, 200);
    /* the server closes the idle connection (bounded wait) */
    assert_int_equal(tclient_wait_closed(c, TIMEOUT_MS), 0);
    tclient_close(c);
    /* a connection that never sends anything is closed as well */
    assert_int_equal(tclient_connect(c, f.addr, TIMEOUT_MS), 0);
    assert_int_equal(tclient_wait_closed(c, TIMEOUT_MS), 0);
    tclient_close(c);
    free(c);
    fx_stop(&f);
}

static void test_unix_socket(void **state)
{
    struct fx f;
    fx_start(&f, NULL, true);
    struct tclient_resp r;
    char body[64];
    assert_int_equal(
        tclient_fetch(f.unix_path, TIMEOUT_MS, "POST", "/u", NULL, "1", 1, &r, body, sizeof(body)),
        0);
    assert_int_equal(r.status, 200);
    assert_string_equal(body, "POST /u|1");
    /* TCP works at the same time */
    assert_int_equal(
        tclient_fetch(f.addr, TIMEOUT_MS, "GET", "/t", NULL, NULL, 0, &r, body, sizeof(body)), 0);
    assert_string_equal(body, "GET /t|");
    char path[sizeof(f.unix_path)];
    strcpy(path, f.unix_path);
    fx_stop(&f);
    assert_int_equal(access(path, F_OK), -1); /* unlinked at close */
}

static void test_slots_full(void **state)
{
    struct fx f;
    struct http_server_config cfg;
    base_cfg(&cfg);
    cfg.max_conns = 2;
    fx_start(&f, &cfg, false);
    struct tclient *c = calloc(3, sizeof(*c));
    assert_non_null(c);
    struct tclient_resp r;
    char body[64];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(tclient_connect(&c[i], f.addr, TIMEOUT_MS), 0);
        assert_int_equal(tclient_request(&c[i], "GET", "/s", NULL, NULL, 0, &r, body, sizeof(body)),
                         0);
        assert_int_equal(r.status, 200);
    }
    /* the third is accepted and closed at once */
    assert_int_equal(tclient_connect(&c[2], f.addr, TIMEOUT_MS), 0);
    assert_int_equal(tclient_wait_closed(&c[2], TIMEOUT_MS), 0);
    tclient_close(&c[2]);
    /* the first two still work */
    assert_int_equal(tclient_request(&c[1], "GET", "/s2", NULL, NULL, 0, &r, body, sizeof(body)),
                     0);
    assert_int_equal(r.status, 200);
    /* a slot freed by a client close is reused (the server frees it asynchronously) */
    tclient_close(&c[0]);
    int rv = -1;
    for (int tries = 0; tries < 100 && rv != 0; tries++) {
        sleep_ms(10);
        rv = tclient_connect(&c[0], f.addr, TIMEOUT_MS);
        if (rv == 0)
            rv = tclient_request(&c[0], "GET", "/s3", NULL, NULL, 0, &r, body, sizeof(body));
        if (rv != 0)
            tclient_close(&c[0]);
    }
    assert_int_equal(rv, 0);
    assert_int_equal(r.status, 200);
    tclient_close(&c[0]);
    tclient_close(&c[1]);
    free(c);
    fx_stop(&f);
}

static void test_hangup_while_pending(void **state)
{
    struct fx f;
    struct http_server_config cfg;
    base_cfg(&cfg);
    cfg.max_conns = 1;
    fx_start(&f, &cfg, false);
    struct tclient *c = malloc(sizeof(*c));
    assert_non_null(c);
    assert_int_equal(tclient_connect(c, f.addr, TIMEOUT_MS), 0);
    const char *req = "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(tclient_send_raw(c, req, strlen(req)), 0);
    /* wait until the server has the request, then hang up */
    for (int i = 0; i < 500 && atomic_load(&f.requests) == 0; i++)
        sleep_ms(2);
    assert_int_equal(atomic_load(&f.requests), 1);
    tclient_close(c);
    for (int i = 0; i < 1000 && atomic_load(&f.replied_hang) == 0; i++)
        sleep_ms(5);
    assert_int_equal(atomic_load(&f.replied_hang), 1);
    assert_int_equal(atomic_load(&f.hang_open), 0); /* the server saw the hang-up */
    /* the only slot was kept until the reply, and is free again now */
    struct tclient_resp r;
    char body[64];
    int rv = -1;
    for (int tries = 0; tries < 100 && rv != 0; tries++) {
        rv = tclient_connect(c, f.addr, TIMEOUT_MS);
        if (rv == 0)
            rv = tclient_request(c, "GET", "/again", NULL, NULL, 0, &r, body, sizeof(body));
        if (rv != 0) {
            tclient_close(c);
            sleep_ms(10);
        }
    }
    assert_int_equal(rv, 0);
    assert_string_equal(body, "GET /again|");
    tclient_close(c);
    free(c);
    fx_stop(&f);
}

static void test_large_responses(void **state)
{
    struct fx f;
    fx_start(&f, NULL, false); /* out_buf_bytes 4096: replies spill to the heap */
    struct tclient *c = malloc(sizeof(*c));
    assert_non_null(c);
    assert_int_equal(tclient_connect(c, f.addr, TIMEOUT_MS), 0);
    const char *reqs = "GET /big?n=300000 HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /big?n=5000 HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /big?n=300001 HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(tclient_send_raw(c, reqs, strlen(reqs)), 0);
    sleep_ms(100); /* let the server's output back up before reading */
    size_t want[] = {300000, 5000, 300001};
    char *body = malloc(400000);
    assert_non_null(body);
    for (int i = 0; i < 3; i++) {
        struct tclient_resp r;
        assert_int_equal(tclient_read_response(c, false, &r, body, 400000), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, want[i]);
        for (size_t k = 0; k < want[i]; k += 9973)
            assert_int_equal(body[k], 'a' + (int)(k % 26));
    }
    free(body);
    tclient_close(c);
    free(c);
    fx_stop(&f);
}

static void test_stop_accepting(void **state)
{
    struct fx f;
    fx_start(&f, NULL, false);
    struct tclient *c = malloc(sizeof(*c));
    assert_non_null(c);
    assert_int_equal(tclient_connect(c, f.addr, TIMEOUT_MS), 0);
    const char *req = "GET /async HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(tclient_send_raw(c, req, strlen(req)), 0);
    for (int i = 0; i < 500 && atomic_load(&f.requests) == 0; i++)
        sleep_ms(2);
    fx_send(&f, CMD_STOP_ACCEPTING);
    struct tclient_resp r;
    char body[64];
    /* the pending exchange is still answered, then the connection closes */
    assert_int_equal(tclient_read_response(c, false, &r, body, sizeof(body)), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(body, "ASYNC");
    assert_true(r.server_close);
    /* no new connections */
    int rv = 0;
    for (int tries = 0; tries < 100 && rv == 0; tries++) {
        rv = tclient_connect(c, f.addr, 1000);
        tclient_close(c);
        if (rv == 0)
            sleep_ms(10);
    }
    assert_int_equal(rv, -ECONNREFUSED);
    free(c);
    fx_stop(&f);
}

static void test_close_with_pending_and_open(void **state)
{
    struct fx f;
    fx_start(&f, NULL, true);
    struct tclient *c = calloc(2, sizeof(*c));
    assert_non_null(c);
    /* one idle keep-alive connection, one with an exchange never answered */
    struct tclient_resp r;
    char body[64];
    assert_int_equal(tclient_connect(&c[0], f.addr, TIMEOUT_MS), 0);
    assert_int_equal(tclient_request(&c[0], "GET", "/a", NULL, NULL, 0, &r, body, sizeof(body)), 0);
    assert_int_equal(tclient_connect(&c[1], f.addr, TIMEOUT_MS), 0);
    const char *req = "GET /never HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(tclient_send_raw(&c[1], req, strlen(req)), 0);
    for (int i = 0; i < 500 && atomic_load(&f.requests) < 2; i++)
        sleep_ms(2);
    assert_int_equal(atomic_load(&f.requests), 2);
    fx_stop(&f); /* asserts uv_loop_close() == 0 */
    assert_int_equal(tclient_wait_closed(&c[0], TIMEOUT_MS), 0);
    assert_int_equal(tclient_wait_closed(&c[1], TIMEOUT_MS), 0);
    tclient_close(&c[0]);
    tclient_close(&c[1]);
    free(c);
}

static void test_bad_config(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct http_server_config cfg;
    base_cfg(&cfg);
    cfg.max_conns = 0;
    assert_null(http_server_new(&loop, &cfg, handler, NULL));
    base_cfg(&cfg);
    assert_null(http_server_new(&loop, &cfg, NULL, NULL));
    base_cfg(&cfg);
    cfg.request_deadline_ms = 0;
    assert_null(http_server_new(&loop, &cfg, handler, NULL));
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_and_headers),
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_post_body),
        cmocka_unit_test(test_keep_alive_three),
        cmocka_unit_test(test_http10_closes),
        cmocka_unit_test(test_pipelined_in_order),
        cmocka_unit_test(test_split_one_byte_writes),
        cmocka_unit_test(test_chunked_body),
        cmocka_unit_test(test_async_then_pipelined),
        cmocka_unit_test(test_body_too_large_413),
        cmocka_unit_test(test_header_too_large_431),
        cmocka_unit_test(test_malformed_400),
        cmocka_unit_test(test_chunk_size_beyond_limit_413),
        cmocka_unit_test(test_request_deadline_408),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_unix_socket),
        cmocka_unit_test(test_slots_full),
        cmocka_unit_test(test_hangup_while_pending),
        cmocka_unit_test(test_large_responses),
        cmocka_unit_test(test_stop_accepting),
        cmocka_unit_test(test_close_with_pending_and_open),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
