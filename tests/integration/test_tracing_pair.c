/* One trace per payment across the whole topology, as processes: nginx (the
 * repo's nginx.conf, rendered by ops/run.sh render-nginx as the local
 * topology runs it), two nodes replicating to each other, two processor
 * simulators, and the test OTLP receiver that both nodes export to with
 * OTEL_TRACES_SAMPLER=always_on.
 *  (a) A POST through nginx with a client traceparent: the receiver gets the
 *      node's POST span as a child of the client's span, and as children of
 *      that POST span the peer-ack wait, the processor attempt and the
 *      recording, all in the client's trace; the default simulator received
 *      a traceparent naming the attempt's span.
 *  (b) Takeover: the default answers only after 3 s; a POST to node 1,
 *      SIGKILL of node 1 while its attempt is inside the default; node 2
 *      takes the payment over. Node 2's requests to the default and its
 *      recording are spans of the same trace, children of node 1's POST
 *      span (the context came with the ACCEPTED event), and the default saw
 *      node 2's traceparent.
 * Every wait is bounded; the processes are stopped by PID at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otlp_recv.h"
#include "proc.h"
#include "tclient.h"
#include "topo.h"

/* nginx: $NGINX_BIN (as for ops/run.sh), else Debian's. */
#define NGINX_DEFAULT_BIN "/usr/sbin/nginx"

#define TRACE_A "0af7651916cd43dd8448eb211c80319c"
#define TRACE_B "4bf92f3577b34da6a3ce929d0e0e4736"
#define CALLER_SPAN "b7ad6b7169203331"
#define PAIR_KEY "PEER_KEY=test_tracing_pair key: 32 bytes or more, not secret"
#define MAX_SPANS 256

struct world {
    struct otlp_recv *rcv;
    struct topo_sim def, fb;
    struct topo_node node[2];
    struct proc nginx;
    int nginx_port;
    char nginx_addr[32];
    char dir[64]; /* sockets, nginx's files */
    struct otlp_recv_span spans[MAX_SPANS];
    size_t nspans;
};

static void make_dir(const char *path)
{
    if (mkdir(path, 0700) != 0)
        fail_msg("mkdir %s failed", path);
}

static void start_node(struct world *w, int i, const int nng[2], const int gossip[2],
                       const char *otlp_env)
{
    char id[32], lis[64], peer[64], glis[64], gpeer[64], sock[128], log[64];
    int j = 1 - i;
    snprintf(id, sizeof(id), "NODE_ID=%d", i + 1);
    snprintf(lis, sizeof(lis), "NNG_LISTEN=tcp://127.0.0.1:%d", nng[i]);
    snprintf(peer, sizeof(peer), "PEER_NNG_URL=tcp://127.0.0.1:%d", nng[j]);
    snprintf(glis, sizeof(glis), "GOSSIP_LISTEN=127.0.0.1:%d", gossip[i]);
    snprintf(gpeer, sizeof(gpeer), "PEER_GOSSIP=127.0.0.1:%d", gossip[j]);
    snprintf(sock, sizeof(sock), "SERVER_SOCKET=%s/sock/node%d.sock", w->dir, i + 1);
    snprintf(log, sizeof(log), "test_tracing_pair.node%d.log", i + 1);
    const char *env[] = {id,
                         lis,
                         peer,
                         glis,
                         gpeer,
                         sock,
                         PAIR_KEY,
                         otlp_env,
                         "OTEL_SERVICE_NAME=paynode-pair",
                         "OTEL_TRACES_SAMPLER=always_on",
                         "OTEL_BSP_SCHEDULE_DELAY=50ms",
                         NULL};
    topo_node_start(&w->node[i], &w->def, &w->fb, env, log);
}

static const char *nginx_bin(void)
{
    const char *bin = getenv("NGINX_BIN");
    return bin && *bin ? bin : NGINX_DEFAULT_BIN;
}

/* nginx with the repo's nginx.conf as ops/run.sh renders it for a local run:
 * only its paths (under w->dir) and its listen address change. */
static void start_nginx(struct world *w)
{
    char path[160], cmd[768];
    snprintf(path, sizeof(path), "%s/nginx", w->dir);
    make_dir(path);
    snprintf(path, sizeof(path), "%s/nginx/cache", w->dir);
    make_dir(path);
    snprintf(path, sizeof(path), "%s/nginx/log", w->dir);
    make_dir(path);
    w->nginx_port = topo_free_port_pair();
    snprintf(cmd, sizeof(cmd),
             "RUN_DIR='%s' NGINX_PORT=%d NGINX_CONF='%s/nginx.conf' bash '%s/ops/run.sh' "
             "render-nginx > '%s/nginx/nginx.conf'",
             w->dir, w->nginx_port, SOURCE_DIR, SOURCE_DIR, w->dir);
    assert_int_equal(system(cmd), 0);
    char prefix[160], err[160], conf[160];
    snprintf(prefix, sizeof(prefix), "%s/nginx/", w->dir);
    snprintf(err, sizeof(err), "%s/nginx/log/error.log", w->dir);
    snprintf(conf, sizeof(conf), "%s/nginx/nginx.conf", w->dir);
    /* As root, the workers would run as the package's user, who cannot reach
     * the sockets in our directory (ops/run.sh does the same). */
    const char *globals = getuid() == 0 ? "daemon off; user root;" : "daemon off;";
    const char *bin = nginx_bin();
    const char *argv[] = {bin, "-p", prefix, "-e", err, "-c", conf, "-g", globals, NULL};
    assert_int_equal(
        proc_spawn(&w->nginx, (char *const *)argv, NULL, "test_tracing_pair.nginx.log"), 0);
    assert_int_equal(proc_wait_tcp(&w->nginx, "127.0.0.1", w->nginx_port, 5000), 0);
    snprintf(w->nginx_addr, sizeof(w->nginx_addr), "127.0.0.1:%d", w->nginx_port);
}

static int setup(void **state)
{
    static struct world w;
    memset(&w, 0, sizeof(w));
    /* Before anything starts: a failed group setup runs no teardown. */
    if (access(nginx_bin(), X_OK) != 0)
        fail_msg("no nginx at %s (scripts/deps.sh installs it; NGINX_BIN names another)",
                 nginx_bin());
    snprintf(w.dir, sizeof(w.dir), "/tmp/paynode-tracing-pair.XXXXXX");
    if (!mkdtemp(w.dir))
        fail_msg("mkdtemp failed");
    char path[128];
    snprintf(path, sizeof(path), "%s/sock", w.dir);
    make_dir(path);
    assert_int_equal(otlp_recv_start(&w.rcv), 0);
    char url[64], otlp_env[128];
    otlp_recv_url(w.rcv, url, sizeof(url));
    snprintf(otlp_env, sizeof(otlp_env), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=%s", url);
    topo_sims_start(&w.def, &w.fb, "test_tracing_pair");
    int nng[2], gossip[2];
    for (int i = 0; i < 2; i++) {
        nng[i] = topo_free_port_pair();
        gossip[i] = topo_free_port_pair();
    }
    start_node(&w, 0, nng, gossip, otlp_env);
    start_node(&w, 1, nng, gossip, otlp_env);
    topo_node_wait_ready(&w.node[0], 100);
    topo_node_wait_ready(&w.node[1], 100);
    start_nginx(&w);
    topo_sleep_ms(300); /* gossip sees both alive: a 2xx then waits for the peer's ack */
    *state = &w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    if (!w)
        return 0;
    (void)proc_stop(&w->nginx, 5000);
    for (int i = 0; i < 2; i++)
        (void)topo_node_stop(&w->node[i]);
    topo_sims_stop(&w->def, &w->fb);
    otlp_recv_stop(w->rcv);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->dir);
    (void)system(cmd);
    return 0;
}

static int post(const char *addr, const char *id, const char *traceparent)
{
    char body[128], headers[128], out[256];
    snprintf(body, sizeof(body), "{\"correlationId\":\"%s\",\"amount\":19.90}", id);
    snprintf(headers, sizeof(headers), "traceparent: %s\r\n", traceparent);
    struct tclient_resp r;
    assert_int_equal(tclient_fetch(addr, 5000, "POST", "/payments", headers, body, strlen(body), &r,
                                   out, sizeof(out)),
                     0);
    return r.status;
}

/* A span of the trace with that name (and instance, unless NULL), or NULL. */
static const struct otlp_recv_span *span_of(struct world *w, const char *trace_id, const char *name,
                                            const char *instance)
{
    w->nspans = otlp_recv_spans(w->rcv, w->spans, MAX_SPANS);
    if (w->nspans > MAX_SPANS)
        w->nspans = MAX_SPANS;
    for (size_t i = 0; i < w->nspans; i++) {
        const struct otlp_recv_span *s = &w->spans[i];
        if (strcmp(s->trace_id, trace_id) == 0 && strcmp(s->name, name) == 0 &&
            (!instance || strcmp(s->instance, instance) == 0))
            return s;
    }
    return NULL;
}

/* Waits (bounded) for such a span; returns a copy. */
static struct otlp_recv_span wait_span(struct world *w, const char *trace_id, const char *name,
                                       const char *instance, int timeout_ms)
{
    for (int waited = 0;; waited += 20) {
        const struct otlp_recv_span *s = span_of(w, trace_id, name, instance);
        if (s)
            return *s;
        if (waited >= timeout_ms)
            fail_msg("no span \"%s\" of trace %s from node %s within %d ms", name, trace_id,
                     instance ? instance : "any", timeout_ms);
        topo_sleep_ms(20);
    }
}

/* The simulator's /admin/stats. */
static void sim_stats(const struct topo_sim *s, char *out, size_t cap)
{
    struct tclient_resp r;
    assert_int_equal(tclient_fetch(s->addr, 5000, "GET", "/admin/stats",
                                   "X-Rinha-Token: " TOPO_TOKEN "\r\n", NULL, 0, &r, out, cap),
                     0);
    assert_int_equal(r.status, 200);
}

static long long stat_num(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(json, pat);
    assert_non_null(p);
    return strtoll(p + strlen(pat), NULL, 10);
}

/* The last traceparent the simulator saw (55 characters + NUL into out). */
static void sim_last_traceparent(const struct topo_sim *s, char out[56])
{
    char stats[512];
    sim_stats(s, stats, sizeof(stats));
    const char *p = strstr(stats, "\"lastTraceparent\":\"");
    assert_non_null(p);
    p += strlen("\"lastTraceparent\":\"");
    snprintf(out, 56, "%.55s", p);
}

static void assert_attr(const struct otlp_recv_span *s, const char *key, const char *want)
{
    const char *v = otlp_recv_attr(s, key);
    if (!v || strcmp(v, want) != 0)
        fail_msg("span \"%s\": %s is %s, want %s", s->name, key, v ? v : "(absent)", want);
}

static void test_one_trace_through_nginx(void **state)
{
    struct world *w = *state;
    char id[37];
    topo_uuid(id);
    assert_int_equal(post(w->nginx_addr, id, "00-" TRACE_A "-" CALLER_SPAN "-01"), 202);

    struct otlp_recv_span srv = wait_span(w, TRACE_A, "POST /payments", NULL, 5000);
    assert_string_equal(srv.parent_span_id, CALLER_SPAN);
    assert_int_equal(srv.kind, 2); /* SERVER */
    assert_string_equal(srv.service, "paynode-pair");
    assert_attr(&srv, "paynode.result", "accepted");
    const char *node = srv.instance; /* whichever node nginx chose: it owns the payment */
    assert_true(strcmp(node, "1") == 0 || strcmp(node, "2") == 0);

    struct otlp_recv_span ack = wait_span(w, TRACE_A, "peer ack wait", node, 5000);
    struct otlp_recv_span att = wait_span(w, TRACE_A, "processor POST", node, 5000);
    struct otlp_recv_span rec = wait_span(w, TRACE_A, "payment recorded", node, 5000);
    const struct otlp_recv_span *children[] = {&ack, &att, &rec};
    for (int i = 0; i < 3; i++) {
        assert_string_equal(children[i]->parent_span_id, srv.span_id);
        assert_true(children[i]->end_ns >= children[i]->start_ns);
        assert_true(children[i]->start_ns >= srv.start_ns);
    }
    assert_int_equal(ack.kind, 1); /* INTERNAL */
    assert_attr(&ack, "paynode.result", "acked");
    assert_int_equal(ack.status, 0);
    assert_int_equal(att.kind, 3); /* CLIENT */
    assert_attr(&att, "paynode.processor", "default");
    assert_attr(&att, "paynode.outcome", "recorded");
    assert_attr(&att, "http.response.status_code", "200");
    assert_non_null(otlp_recv_attr(&att, "paynode.duration_us"));
    assert_int_equal(att.status, 0);
    assert_int_equal(rec.kind, 1);
    assert_attr(&rec, "paynode.processor", "default");
    assert_attr(&rec, "paynode.result", "recorded");
    assert_true(rec.start_ns >= att.start_ns);

    /* The processor got a traceparent naming the attempt's span. */
    char tp[56], want[56];
    sim_last_traceparent(&w->def, tp);
    snprintf(want, sizeof(want), "00-%s-%s-01", TRACE_A, att.span_id);
    assert_string_equal(tp, want);
    /* Only the owner worked on it: no span of this trace from the other node
     * but the server spans' and the ones above. */
    w->nspans = otlp_recv_spans(w->rcv, w->spans, MAX_SPANS);
    for (size_t i = 0; i < w->nspans && i < MAX_SPANS; i++)
        if (strcmp(w->spans[i].trace_id, TRACE_A) == 0)
            assert_string_equal(w->spans[i].instance, node);
    struct otlp_recv_counts c;
    otlp_recv_counts(w->rcv, &c);
    assert_int_equal(c.bad, 0);
}

static void test_one_trace_across_takeover(void **state)
{
    struct world *w = *state;
    topo_sim_set_delay(&w->def, 3000);
    char stats[512];
    sim_stats(&w->def, stats, sizeof(stats));
    long long tp_before = stat_num(stats, "traceparents");

    char id[37];
    topo_uuid(id);
    assert_int_equal(post(w->node[0].addr, id, "00-" TRACE_B "-" CALLER_SPAN "-01"), 202);
    struct otlp_recv_span srv = wait_span(w, TRACE_B, "POST /payments", "1", 5000);
    assert_string_equal(srv.parent_span_id, CALLER_SPAN);
    /* Node 1's attempt is inside the default (which answers after 3 s): kill it. */
    for (int i = 0;; i++) {
        sim_stats(&w->def, stats, sizeof(stats));
        if (stat_num(stats, "inFlight") >= 1)
            break;
        if (i == 100)
            fail_msg("node 1's attempt never reached the default");
        topo_sleep_ms(10);
    }
    assert_int_equal(stat_num(stats, "traceparents"), tp_before + 1);
    topo_sleep_ms(100); /* its SENDING reaches node 2 (the stream flushes every 25 ms) */
    assert_int_equal(kill(w->node[0].proc.pid, SIGKILL), 0);
    assert_true(proc_wait_exit(&w->node[0].proc, 5000) >= 0);

    /* Node 2 takes over (the peer is dead after 1 s of silence): its requests
     * to the default and its recording join node 1's trace. */
    struct otlp_recv_span rec = wait_span(w, TRACE_B, "payment recorded", "2", 20000);
    assert_string_equal(rec.parent_span_id, srv.span_id);
    assert_attr(&rec, "paynode.processor", "default");
    assert_attr(&rec, "paynode.result", "recorded");
    w->nspans = otlp_recv_spans(w->rcv, w->spans, MAX_SPANS);
    int client_spans = 0;
    char tp[56];
    sim_last_traceparent(&w->def, tp);
    bool last_is_node2 = false;
    for (size_t i = 0; i < w->nspans && i < MAX_SPANS; i++) {
        const struct otlp_recv_span *s = &w->spans[i];
        if (strcmp(s->trace_id, TRACE_B) != 0 || strcmp(s->instance, "2") != 0 || s->kind != 3)
            continue;
        client_spans++;
        assert_string_equal(s->parent_span_id, srv.span_id);
        assert_attr(s, "paynode.processor", "default");
        assert_true(strcmp(s->name, "processor GET") == 0 ||
                    strcmp(s->name, "processor POST") == 0);
        char want[56];
        snprintf(want, sizeof(want), "00-%s-%s-01", TRACE_B, s->span_id);
        last_is_node2 |= strcmp(tp, want) == 0;
    }
    if (client_spans == 0)
        fail_msg("no span of node 2's requests to the default in trace " TRACE_B);
    /* The default saw node 2's traceparent (the last one it got names one of
     * node 2's spans). */
    assert_true(last_is_node2);
    topo_sim_set_delay(&w->def, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_trace_through_nginx),
        cmocka_unit_test(test_one_trace_across_takeover),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
