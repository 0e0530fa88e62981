/* Benchmark of httpc: client CPU per request (getrusage RUSAGE_THREAD of the
 * loop thread only) and latency p50/p99 for a 256-byte JSON POST at a given
 * concurrency, over keep-alive connections. The target is a minimal libuv
 * HTTP responder started in-process on its own thread (answers every request
 * with 200 "ok\n"), or any URL given with --url (e.g. nginx).
 *
 *   bench_httpc [--url URL] [--total N] [--reps R] [--conc C]...
 *   defaults: in-process server, --total 20000, --reps 3, --conc 1 --conc 50 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/time.h>

#include <uv.h>

#include "lib/curl_uv.h"
#include "lib/httpc.h"

/* ------------------------------------------------ in-process server thread */

#define SRV_BUF 65536

static const char srv_reply[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                "Content-Length: 3\r\n\r\nok\n";

struct srv {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop;
    uv_thread_t thread;
    uv_sem_t ready;
    int port;
};

struct sconn {
    uv_tcp_t tcp;
    size_t len;
    char buf[SRV_BUF];
};

struct swrite {
    uv_write_t req;
    uv_buf_t buf;
    char data[];
};

static void on_sconn_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_swrite(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static void on_salloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct sconn *k = h->data;
    (void)suggested;
    *buf = uv_buf_init(k->buf + k->len, (unsigned)(SRV_BUF - k->len));
}

/* Counts the complete requests in the buffer and answers them in one write. */
static void on_sread(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    struct sconn *k = st->data;
    (void)b;
    if (nread < 0 || k->len + (size_t)nread >= SRV_BUF) {
        if (!uv_is_closing((uv_handle_t *)st))
            uv_close((uv_handle_t *)st, on_sconn_closed);
        return;
    }
    k->len += (size_t)nread;
    size_t off = 0, n = 0;
    for (;;) {
        char *end = memmem(k->buf + off, k->len - off, "\r\n\r\n", 4);
        if (end == NULL)
            break;
        size_t head = (size_t)(end - (k->buf + off)) + 4;
        size_t body = 0;
        for (char *p = k->buf + off; p < end; p++) {
            if ((*p == 'C' || *p == 'c') && strncasecmp(p, "Content-Length:", 15) == 0) {
                body = strtoul(p + 15, NULL, 10);
                break;
            }
        }
        if (k->len - off < head + body)
            break;
        off += head + body;
        n++;
    }
    memmove(k->buf, k->buf + off, k->len - off);
    k->len -= off;
    if (n == 0)
        return;
    size_t rl = sizeof(srv_reply) - 1;
    struct swrite *w = malloc(sizeof(*w) + n * rl);
    if (w == NULL)
        abort();
    for (size_t i = 0; i < n; i++)
        memcpy(w->data + i * rl, srv_reply, rl);
    w->buf = uv_buf_init(w->data, (unsigned)(n * rl));
    if (uv_write(&w->req, st, &w->buf, 1, on_swrite) != 0)
        free(w);
}

static void on_sconn(uv_stream_t *ls, int status)
{
    struct srv *s = ls->data;
    if (status != 0)
        return;
    struct sconn *k = malloc(sizeof(*k));
    if (k == NULL)
        abort();
    k->len = 0;
    uv_tcp_init(&s->loop, &k->tcp);
    k->tcp.data = k;
    if (uv_accept(ls, (uv_stream_t *)&k->tcp) != 0) {
        uv_close((uv_handle_t *)&k->tcp, on_sconn_closed);
        return;
    }
    uv_tcp_nodelay(&k->tcp, 1);
    uv_read_start((uv_stream_t *)&k->tcp, on_salloc, on_sread);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h,
                 h->type == UV_TCP && h->data != NULL && h->data != arg ? on_sconn_closed : NULL);
}

static void on_sstop(uv_async_t *a)
{
    struct srv *s = a->data;
    uv_walk(&s->loop, close_walk, s);
}

static void srv_main(void *arg)
{
    struct srv *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
}

static int srv_start(struct srv *s)
{
    struct sockaddr_in a;
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_loop_init(&s->loop) != 0 || uv_tcp_init(&s->loop, &s->listener) != 0)
        return -1;
    s->listener.data = s;
    s->stop.data = s;
    uv_ip4_addr("127.0.0.1", 0, &a);
    if (uv_tcp_bind(&s->listener, (const struct sockaddr *)&a, 0) != 0 ||
        uv_listen((uv_stream_t *)&s->listener, 511, on_sconn) != 0 ||
        uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &sl) != 0 ||
        uv_async_init(&s->loop, &s->stop, on_sstop) != 0)
        return -1;
    s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return uv_thread_create(&s->thread, srv_main, s);
}

static void srv_stop(struct srv *s)
{
    uv_async_send(&s->stop);
    uv_thread_join(&s->thread);
}

/* ------------------------------------------------------------- client */

struct run {
    uv_loop_t *loop;
    struct httpc *c;
    const char *url;
    unsigned total, issued, done, failed;
    uint32_t *lat_us;
    bool measuring;
};

static const char *const post_headers[] = {"Content-Type: application/json", NULL};
static char post_body[257];

static void issue(struct run *r);

static void on_done(void *arg, const struct httpc_result *res)
{
    struct run *r = arg;
    if (res->outcome != HTTPC_OK || res->status != 200)
        r->failed++;
    if (r->measuring)
        r->lat_us[r->done] = res->elapsed_us > UINT32_MAX ? UINT32_MAX : (uint32_t)res->elapsed_us;
    r->done++;
    if (r->issued < r->total)
        issue(r);
    else if (r->done == r->total)
        uv_stop(r->loop);
}

static void issue(struct run *r)
{
    int rv = httpc_request(r->c, "POST", r->url, post_headers, post_body, 256, 5000, on_done, r);
    if (rv != 0) {
        fprintf(stderr, "bench_httpc: httpc_request failed: %s\n", strerror(-rv));
        exit(1);
    }
    r->issued++;
}

static void run_batch(struct run *r, unsigned total, unsigned conc)
{
    r->total = total;
    r->issued = r->done = 0;
    for (unsigned i = 0; i < conc && i < total; i++)
        issue(r);
    uv_run(r->loop, UV_RUN_DEFAULT);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double tv_us(struct timeval tv)
{
    return (double)tv.tv_sec * 1e6 + (double)tv.tv_usec;
}

struct figures {
    double rps, cpu_us, p50, p99;
    uint64_t sockets;
};

static void on_closed(void *arg)
{
    *(bool *)arg = true;
}

static struct figures bench_once(const char *url, unsigned total, unsigned conc)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct httpc_config cfg;
    httpc_config_default(&cfg);
    cfg.max_handles = conc;
    cfg.max_host_conns = conc;
    struct run r = {.loop = &loop, .url = url};
    r.c = httpc_new(&loop, &cfg);
    r.lat_us = calloc(total, sizeof(*r.lat_us));
    if (r.c == NULL || r.lat_us == NULL) {
        fprintf(stderr, "bench_httpc: setup failed\n");
        exit(1);
    }
    run_batch(&r, conc, conc); /* warm-up: opens the connections */

    struct rusage ru0, ru1;
    r.measuring = true;
    r.failed = 0;
    getrusage(RUSAGE_THREAD, &ru0);
    uint64_t t0 = uv_hrtime();
    run_batch(&r, total, conc);
    uint64_t t1 = uv_hrtime();
    getrusage(RUSAGE_THREAD, &ru1);

    struct httpc_stats st;
    httpc_stats(r.c, &st);
    struct figures fg;
    double cpu =
        tv_us(ru1.ru_utime) - tv_us(ru0.ru_utime) + tv_us(ru1.ru_stime) - tv_us(ru0.ru_stime);
    fg.cpu_us = cpu / total;
    fg.rps = total / ((double)(t1 - t0) / 1e9);
    qsort(r.lat_us, total, sizeof(*r.lat_us), cmp_u32);
    fg.p50 = r.lat_us[total / 2];
    fg.p99 = r.lat_us[(size_t)total * 99 / 100];
    fg.sockets = st.sockets_watched;
    if (r.failed != 0)
        fprintf(stderr, "bench_httpc: %u requests failed\n", r.failed);

    bool closed = false;
    httpc_close(r.c, on_closed, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (!closed || uv_loop_close(&loop) != 0)
        fprintf(stderr, "bench_httpc: loop did not close cleanly\n");
    free(r.lat_us);
    return fg;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return v[n / 2];
}

#define MAX_REPS 15
#define MAX_CONCS 8

int main(int argc, char **argv)
{
    const char *url = NULL;
    unsigned total = 20000, reps = 3, concs[MAX_CONCS], nconc = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--url") == 0 && i + 1 < argc)
            url = argv[++i];
        else if (strcmp(argv[i], "--total") == 0 && i + 1 < argc)
            total = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--conc") == 0 && i + 1 < argc && nconc < MAX_CONCS)
            concs[nconc++] = (unsigned)strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: %s [--url URL] [--total N] [--reps R] [--conc C]...\n",
                    argv[0]);
            return 2;
        }
    }
    if (nconc == 0) {
        concs[nconc++] = 1;
        concs[nconc++] = 50;
    }
    if (total < 100 || reps == 0 || reps > MAX_REPS) {
        fprintf(stderr, "bench_httpc: need --total >= 100 and 1 <= --reps <= %d\n", MAX_REPS);
        return 2;
    }
    for (unsigned i = 0; i < nconc; i++) {
        if (concs[i] == 0 || concs[i] > total) {
            fprintf(stderr, "bench_httpc: bad --conc %u\n", concs[i]);
            return 2;
        }
    }
    memset(post_body, 0, sizeof(post_body));
    int n = snprintf(post_body, sizeof(post_body),
                     "{\"correlationId\":\"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3\","
                     "\"amount\":19.90,\"requestedAt\":\"2025-07-15T12:34:56.000Z\",\"pad\":\"");
    for (; n < 254; n++)
        post_body[n] = 'x';
    post_body[254] = '"';
    post_body[255] = '}';

    struct srv s;
    char own_url[64];
    if (url == NULL) {
        if (srv_start(&s) != 0) {
            fprintf(stderr, "bench_httpc: server start failed\n");
            return 1;
        }
        snprintf(own_url, sizeof(own_url), "http://127.0.0.1:%d/payments", s.port);
        url = own_url;
    }
    if (curl_uv_global_init() != 0)
        return 1;
    printf("target %s, %u requests per run, 256-byte POST, keep-alive\n", url, total);
    for (unsigned ci = 0; ci < nconc; ci++) {
        double rps[MAX_REPS], cpu[MAX_REPS], p50[MAX_REPS], p99[MAX_REPS];
        for (unsigned k = 0; k < reps; k++) {
            struct figures fg = bench_once(url, total, concs[ci]);
            printf("conc %3u run %u: %8.0f req/s  client CPU %6.2f us/req  p50 %6.0f us  "
                   "p99 %6.0f us  poll inits %" PRIu64 "\n",
                   concs[ci], k + 1, fg.rps, fg.cpu_us, fg.p50, fg.p99, fg.sockets);
            rps[k] = fg.rps;
            cpu[k] = fg.cpu_us;
            p50[k] = fg.p50;
            p99[k] = fg.p99;
        }
        printf("conc %3u MEDIAN: %8.0f req/s  client CPU %6.2f us/req  p50 %6.0f us  p99 %6.0f "
               "us\n",
               concs[ci], median(rps, reps), median(cpu, reps), median(p50, reps),
               median(p99, reps));
        fflush(stdout);
    }
    if (url == own_url)
        srv_stop(&s);
    curl_uv_global_cleanup();
    return 0;
}
