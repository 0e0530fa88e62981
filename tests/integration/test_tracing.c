/* Tracing and histograms end to end on one node: paynode (with two processor
 * simulators) exports OTLP/HTTP JSON to the test receiver. With
 * OTEL_TRACES_SAMPLER=parentbased_always_off only the requests whose caller
 * sampled them (a traceparent with flag 01) are traced, so the spans expected
 * are exactly known: each request's SERVER span continues the caller's trace
 * id with the caller's span as parent, carries the node's service name and id
 * and the result; the accepted payment's processor attempt (CLIENT) and its
 * recording (INTERNAL) are children of its POST span (alone, no reply waits
 * for a peer's ack, so there is no ack-wait span).
 * /metrics then shows the histograms (strict checker) and the export counters;
 * a span ended just before SIGTERM still reaches the receiver, and the node
 * exits 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp_recv.h"
#include "promcheck.h"
#include "tclient.h"
#include "topo.h"

#define TRACE_A "0af7651916cd43dd8448eb211c80319c"
#define TRACE_B "4bf92f3577b34da6a3ce929d0e0e4736"
#define TRACE_C "11111111111111111111111111111111"
#define CALLER_SPAN "b7ad6b7169203331"

static int request(const char *addr, const char *method, const char *path, const char *tp,
                   const char *body, char *out, size_t cap)
{
    char headers[128] = "";
    if (tp)
        snprintf(headers, sizeof(headers), "traceparent: %s\r\n", tp);
    struct tclient_resp r;
    int rv = tclient_fetch(addr, 5000, method, path, headers, body, body ? strlen(body) : 0, &r,
                           out, cap);
    assert_int_equal(rv, 0);
    return r.status;
}

static const struct otlp_recv_span *find_named(const struct otlp_recv_span *s, size_t n,
                                               const char *trace_id, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s[i].trace_id, trace_id) == 0 && (!name || strcmp(s[i].name, name) == 0))
            return &s[i];
    fail_msg("no span %s of trace %s", name ? name : "(any)", trace_id);
    return NULL;
}

static const struct otlp_recv_span *find(const struct otlp_recv_span *s, size_t n,
                                         const char *trace_id)
{
    return find_named(s, n, trace_id, NULL);
}

/* The value of a sample line "name value" in the metrics text, or -1. */
static long long sample(const char *text, const char *name)
{
    char key[160];
    snprintf(key, sizeof(key), "\n%s ", name);
    const char *p = strstr(text, key);
    return p ? atoll(p + strlen(key)) : -1;
}

static void test_trace_end_to_end(void **state)
{
    struct otlp_recv *rcv;
    assert_int_equal(otlp_recv_start(&rcv), 0);
    char url[64], env_url[128];
    otlp_recv_url(rcv, url, sizeof(url));
    snprintf(env_url, sizeof(env_url), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=%s", url);
    struct topo_sim def, fb;
    struct topo_node node;
    topo_sims_start(&def, &fb, "test_tracing");
    const char *env[] = {"NODE_ID=3",
                         env_url,
                         "OTEL_SERVICE_NAME=paynode-it",
                         "OTEL_TRACES_SAMPLER=parentbased_always_off",
                         "OTEL_BSP_SCHEDULE_DELAY=50ms",
                         NULL};
    topo_node_start(&node, &def, &fb, env, "test_tracing.node.log");

    char body[256], id[37], out[16384];
    /* A: sampled by the caller, accepted. */
    topo_uuid(id);
    snprintf(body, sizeof(body), "{\"correlationId\":\"%s\",\"amount\":19.90}", id);
    assert_int_equal(request(node.addr, "POST", "/payments", "00-" TRACE_A "-" CALLER_SPAN "-01",
                             body, out, sizeof(out)),
                     202);
    /* Not sampled by the caller, or no traceparent: not traced. */
    topo_uuid(id);
    snprintf(body, sizeof(body), "{\"correlationId\":\"%s\",\"amount\":1}", id);
    assert_int_equal(request(node.addr, "POST", "/payments", "00-" TRACE_C "-" CALLER_SPAN "-00",
                             body, out, sizeof(out)),
                     202);
    assert_int_equal(request(node.addr, "POST", "/payments", NULL, body, out, sizeof(out)), 202);
    /* B: sampled, invalid body. */
    assert_int_equal(request(node.addr, "POST", "/payments", "00-" TRACE_B "-" CALLER_SPAN "-01",
                             "{\"amount\":1}", out, sizeof(out)),
                     400);
    /* C: a summary, sampled. */
    assert_int_equal(request(node.addr, "GET", "/payments-summary",
                             "00-" TRACE_C "-" CALLER_SPAN "-01", NULL, out, sizeof(out)),
                     200);

    assert_true(otlp_recv_wait(rcv, 5, 5000));
    topo_sleep_ms(200); /* nothing more comes */
    struct otlp_recv_span s[16];
    size_t n = otlp_recv_spans(rcv, s, 16);
    assert_int_equal(n, 5);
    struct otlp_recv_counts c;
    otlp_recv_counts(rcv, &c);
    assert_int_equal(c.bad, 0);
    const struct otlp_recv_span *a = find_named(s, n, TRACE_A, "POST /payments"),
                                *b = find(s, n, TRACE_B), *sum = find(s, n, TRACE_C);
    /* The accepted payment's attempt and recording, children of its POST span. */
    const struct otlp_recv_span *att = find_named(s, n, TRACE_A, "processor POST"),
                                *rec = find_named(s, n, TRACE_A, "payment recorded");
    assert_string_equal(att->parent_span_id, a->span_id);
    assert_int_equal(att->kind, 3); /* CLIENT */
    assert_int_equal(att->status, 0);
    const char *proc = otlp_recv_attr(att, "paynode.processor");
    assert_non_null(proc);
    assert_true(strcmp(proc, "default") == 0 || strcmp(proc, "fallback") == 0);
    assert_string_equal(otlp_recv_attr(att, "paynode.outcome"), "recorded");
    assert_string_equal(otlp_recv_attr(att, "http.response.status_code"), "200");
    assert_non_null(otlp_recv_attr(att, "paynode.duration_us"));
    assert_true(att->start_ns >= a->start_ns && att->end_ns >= att->start_ns);
    assert_string_equal(rec->parent_span_id, a->span_id);
    assert_int_equal(rec->kind, 1); /* INTERNAL */
    assert_string_equal(otlp_recv_attr(rec, "paynode.processor"), proc);
    assert_string_equal(otlp_recv_attr(rec, "paynode.result"), "recorded");
    assert_true(rec->start_ns >= att->start_ns);
    for (const struct otlp_recv_span *x = s; x < s + n; x++) {
        assert_string_equal(x->service, "paynode-it");
        assert_string_equal(x->instance, "3");
        if (x == att || x == rec)
            continue;
        assert_string_equal(x->parent_span_id, CALLER_SPAN);
        assert_string_not_equal(x->span_id, CALLER_SPAN);
        assert_int_equal(x->kind, 2); /* SERVER */
        assert_true(x->end_ns >= x->start_ns);
    }
    assert_string_equal(a->name, "POST /payments");
    assert_string_equal(otlp_recv_attr(a, "paynode.result"), "accepted");
    assert_int_equal(a->status, 0);
    assert_string_equal(b->name, "POST /payments");
    assert_string_equal(otlp_recv_attr(b, "paynode.result"), "invalid");
    assert_string_equal(sum->name, "GET /payments-summary");
    assert_string_equal(otlp_recv_attr(sum, "paynode.result"), "answered");

    /* /metrics: histograms, and the export counted once its answer is in. */
    long long exported = -1;
    for (int i = 0; i < 100 && exported < 5; i++) {
        assert_int_equal(request(node.addr, "GET", "/metrics", NULL, NULL, out, sizeof(out)), 200);
        exported = sample(out, "paynode_trace_spans_exported_total");
        if (exported < 5)
            topo_sleep_ms(20);
    }
    char why[256];
    if (promcheck(out, strlen(out), why, sizeof(why)) != 0)
        fail_msg("/metrics: %s", why);
    assert_int_equal(exported, 5);
    assert_int_equal(sample(out, "paynode_trace_enabled"), 1);
    assert_int_equal(sample(out, "paynode_trace_spans_sampled_total"), 5);
    /* Recorded: its trace context is given back; none lacked a slot. */
    assert_int_equal(sample(out, "paynode_trace_payment_contexts"), 0);
    assert_int_equal(sample(out, "paynode_trace_payments_untracked_total"), 0);
    assert_int_equal(sample(out, "paynode_trace_spans_dropped_total"), 0);
    assert_int_equal(sample(out, "paynode_trace_spans_failed_total"), 0);
    assert_int_equal(sample(out, "paynode_post_payments_duration_seconds_count"), 4);
    assert_int_equal(sample(out, "paynode_totals_duration_seconds_count"), 1);
    assert_non_null(strstr(out, "paynode_post_payments_duration_seconds_bucket{le=\"+Inf\"} 4\n"));
    /* The accepted payment went to a processor: its attempt is in that
     * processor's answer-time histogram (the sum over both: routing decides). */
    assert_true(sample(out, "paynode_processor_answer_seconds_count{processor=\"default\"}") +
                    sample(out, "paynode_processor_answer_seconds_count{processor=\"fallback\"}") >=
                1);

    /* A span ended just before SIGTERM is not lost (the close sends what is
     * held; tests/unit/node/test_obs.c checks that path alone). */
    topo_uuid(id);
    snprintf(body, sizeof(body), "{\"correlationId\":\"%s\",\"amount\":2}", id);
    assert_int_equal(request(node.addr, "POST", "/payments", "00-" TRACE_C "-" CALLER_SPAN "-01",
                             body, out, sizeof(out)),
                     202);
    assert_int_equal(topo_node_stop(&node), 0);
    assert_true(otlp_recv_wait(rcv, 6, 2000));
    topo_sims_stop(&def, &fb);
    otlp_recv_stop(rcv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace_end_to_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
