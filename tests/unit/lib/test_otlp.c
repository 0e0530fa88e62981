/* otlp: the encoder's exact JSON for hand-built spans (checked by hand against
 * opentelemetry-proto's JSON mapping: hex ids, decimal-string nanos and
 * intValue, integer enums), string escaping, and the exporter against the
 * test receiver (tests/support/otlp_recv, which refuses malformed bodies):
 * a full batch leaves before the timer, the rest at close; a collector that
 * answers 503 or is not there counts failed spans; bad configs are refused.
 * Each exporter test owns its loop and ends with uv_loop_close() == 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/otlp.h"
#include "lib/trace.h"
#include "otlp_recv.h"
#include "proc.h"

static void fill_span(struct trace_span *sp)
{
    memset(sp, 0, sizeof(*sp));
    for (int i = 0; i < 16; i++)
        sp->ctx.trace_id[i] = (uint8_t)(i + 1);
    for (int i = 0; i < 8; i++) {
        sp->ctx.span_id[i] = (uint8_t)(0xa1 + i);
        sp->parent_span_id[i] = (uint8_t)(0xb1 + i);
    }
    sp->ctx.flags = TRACE_FLAG_SAMPLED;
    sp->has_parent = true;
    sp->sampled = true;
    sp->name = "POST /payments";
    sp->kind = TRACE_KIND_SERVER;
    sp->start_ns = 1700000000000000000ULL;
    sp->end_ns = 1700000000001500000ULL;
    sp->status = TRACE_STATUS_OK;
    trace_span_str(sp, "paynode.result", "accepted", 8);
    trace_span_int(sp, "http.response.status_code", 202);
}

static void test_encode_exact(void **state)
{
    char fixed[32]; /* small: the buffer must grow */
    struct buf b;
    buf_init(&b, fixed, sizeof(fixed));
    struct trace_span a, root;
    fill_span(&a);
    fill_span(&root);
    root.has_parent = false;
    root.name = "GET /payments-summary";
    root.nattrs = 0;
    root.status = TRACE_STATUS_ERROR;
    trace_span_int(&root, "neg", -7);
    struct otlp_resource res = {.service_name = "paynode", .instance_id = "node-1"};
    struct otlp_enc e;
    otlp_enc_begin(&e, &b, &res);
    otlp_enc_span(&e, &a);
    otlp_enc_span(&e, &root);
    assert_int_equal(otlp_enc_end(&e), 0);
    assert_int_equal(e.nspans, 2);
    const char *want =
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
        "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"paynode\"}},"
        "{\"key\":\"service.instance.id\",\"value\":{\"stringValue\":\"node-1\"}}]},"
        "\"scopeSpans\":[{\"scope\":{\"name\":\"paynode\"},\"spans\":["
        "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"a1a2a3a4a5a6a7a8\","
        "\"parentSpanId\":\"b1b2b3b4b5b6b7b8\",\"name\":\"POST /payments\",\"kind\":2,"
        "\"startTimeUnixNano\":\"1700000000000000000\","
        "\"endTimeUnixNano\":\"1700000000001500000\",\"attributes\":["
        "{\"key\":\"paynode.result\",\"value\":{\"stringValue\":\"accepted\"}},"
        "{\"key\":\"http.response.status_code\",\"value\":{\"intValue\":\"202\"}}],"
        "\"status\":{\"code\":1}},"
        "{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":\"a1a2a3a4a5a6a7a8\","
        "\"name\":\"GET /payments-summary\",\"kind\":2,"
        "\"startTimeUnixNano\":\"1700000000000000000\","
        "\"endTimeUnixNano\":\"1700000000001500000\",\"attributes\":["
        "{\"key\":\"neg\",\"value\":{\"intValue\":\"-7\"}}],"
        "\"status\":{\"code\":2}}"
        "]}]}]}";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.ptr, want, b.len);
    buf_reset(&b);

    /* No instance id: service.name alone; no spans: an empty list. */
    res.instance_id = NULL;
    otlp_enc_begin(&e, &b, &res);
    assert_int_equal(otlp_enc_end(&e), 0);
    const char *empty = "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
                        "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"paynode\"}}]},"
                        "\"scopeSpans\":[{\"scope\":{\"name\":\"paynode\"},\"spans\":[]}]}]}";
    assert_int_equal(b.len, strlen(empty));
    assert_memory_equal(b.ptr, empty, b.len);
    buf_reset(&b);
}

static void test_escape(void **state)
{
    struct buf b;
    buf_init(&b, NULL, 0);
    struct otlp_enc e = {.out = &b};
    const char in[] = "a\"b\\c\n\x01\xff\xc3\xa9z";
    otlp_json_escape(&e, in, sizeof(in) - 1);
    assert_int_equal(e.err, 0);
    const char *want = "a\\\"b\\\\c\\u000a\\u0001?\xc3\xa9z";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.ptr, want, b.len);
    buf_reset(&b);
}

/* ---------------------------------------------------------------- exporter */

struct ex {
    uv_loop_t loop;
    struct tracer *t;
    struct otlp_exporter *e;
    uv_timer_t poll;
    int ticks;
    unsigned more; /* spans to add once the first batch is answered */
    bool closed;
    struct otlp_exporter_stats last;
};

static void add_spans(struct ex *x, unsigned n, const char *name)
{
    for (unsigned i = 0; i < n; i++) {
        struct trace_span sp;
        trace_span_start(x->t, &sp, name, TRACE_KIND_SERVER, NULL, 0);
        trace_span_int(&sp, "i", i);
        trace_span_end(x->t, &sp, 0);
    }
}

static void on_closed(void *arg)
{
    struct ex *x = arg;
    x->closed = true;
    uv_close((uv_handle_t *)&x->poll, NULL);
}

/* Every 5 ms: once a batch has an answer, add `more` spans and close (which
 * sends them); give up after 5 s. */
static void on_poll(uv_timer_t *h)
{
    struct ex *x = h->data;
    otlp_exporter_stats(x->e, &x->last);
    bool answered = x->last.batches_ok + x->last.batches_failed > 0;
    if (answered || ++x->ticks > 1000) {
        uv_timer_stop(h);
        add_spans(x, x->more, "late");
        otlp_exporter_close(x->e, on_closed, x);
    }
}

static void run_exporter(struct ex *x, const char *url, unsigned interval_ms, unsigned batch_max,
                         unsigned first, unsigned more)
{
    memset(x, 0, sizeof(*x));
    assert_int_equal(uv_loop_init(&x->loop), 0);
    struct trace_config tc = {.ring_cap = 64};
    assert_int_equal(trace_sampler_parse("always_on", NULL, &tc.sampler), 0);
    x->t = trace_new(&tc);
    assert_non_null(x->t);
    struct otlp_exporter_config cfg;
    otlp_exporter_config_default(&cfg);
    cfg.url = url;
    cfg.resource.service_name = "paynode-test";
    cfg.resource.instance_id = "7";
    cfg.interval_ms = interval_ms;
    cfg.batch_max = batch_max;
    cfg.timeout_ms = 2000;
    x->e = otlp_exporter_new(&x->loop, x->t, &cfg);
    assert_non_null(x->e);
    x->more = more;
    uv_timer_init(&x->loop, &x->poll);
    x->poll.data = x;
    uv_timer_start(&x->poll, on_poll, 5, 5);
    add_spans(x, first, "first");
    assert_int_equal(uv_run(&x->loop, UV_RUN_DEFAULT), 0);
    assert_true(x->closed);
    assert_int_equal(uv_loop_close(&x->loop), 0);
}

static void test_export_batches(void **state)
{
    struct otlp_recv *r;
    assert_int_equal(otlp_recv_start(&r), 0);
    char url[64];
    otlp_recv_url(r, url, sizeof(url));
    struct ex x;
    /* The timer's 60 s never comes: the full batch of 4 goes at once, and
     * the 2 added later at close. */
    run_exporter(&x, url, 60000, 4, 4, 2);
    assert_int_equal(x.last.batches_ok, 1);
    assert_true(otlp_recv_wait(r, 6, 2000));
    struct otlp_recv_counts c;
    otlp_recv_counts(r, &c);
    assert_int_equal(c.requests, 2);
    assert_int_equal(c.bad, 0);
    assert_int_equal(c.spans, 6);
    struct otlp_recv_span *s = calloc(8, sizeof(*s));
    assert_non_null(s);
    assert_int_equal(otlp_recv_spans(r, s, 8), 6);
    for (int i = 0; i < 6; i++) {
        assert_string_equal(s[i].name, i < 4 ? "first" : "late");
        assert_string_equal(s[i].service, "paynode-test");
        assert_string_equal(s[i].instance, "7");
        assert_int_equal(s[i].kind, TRACE_KIND_SERVER);
        assert_string_equal(s[i].parent_span_id, "");
        char want[2] = {(char)('0' + (i < 4 ? i : i - 4)), 0};
        assert_string_equal(otlp_recv_attr(&s[i], "i"), want);
        assert_true(s[i].start_ns > 1600000000000000000ULL);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(s[i].trace_id, s[j].trace_id);
    }
    free(s);
    trace_free(x.t);
    otlp_recv_stop(r);
}

static void test_export_refused(void **state)
{
    struct otlp_recv *r;
    assert_int_equal(otlp_recv_start(&r), 0);
    otlp_recv_set_status(r, 503);
    char url[64];
    otlp_recv_url(r, url, sizeof(url));
    struct ex x;
    run_exporter(&x, url, 20, 512, 3, 0);
    struct otlp_exporter_stats *st = &x.last;
    assert_int_equal(st->batches_failed, 1);
    assert_int_equal(st->spans_failed, 3);
    assert_int_equal(st->spans_exported, 0);
    struct otlp_recv_counts c;
    otlp_recv_counts(r, &c);
    assert_int_equal(c.requests, 1);
    assert_int_equal(c.bad, 0); /* well formed, only refused */
    assert_int_equal(c.spans, 0);
    assert_int_equal(trace_pending(x.t), 0); /* dropped, not retried */
    trace_free(x.t);
    otlp_recv_stop(r);
}

static void test_export_no_collector(void **state)
{
    int port = proc_free_port();
    assert_true(port > 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/traces", port);
    struct ex x;
    run_exporter(&x, url, 20, 512, 2, 0);
    assert_int_equal(x.last.batches_failed, 1);
    assert_int_equal(x.last.spans_failed, 2);
    trace_free(x.t);
}

static void test_bad_config(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct trace_config tc = {.ring_cap = 4};
    assert_int_equal(trace_sampler_parse(NULL, NULL, &tc.sampler), 0);
    struct tracer *t = trace_new(&tc);
    struct otlp_exporter_config cfg;
    otlp_exporter_config_default(&cfg);
    cfg.resource.service_name = "x";
    cfg.url = "https://collector:4318/v1/traces";
    assert_null(otlp_exporter_new(&loop, t, &cfg));
    cfg.url = "http://collector:4318/v1/traces";
    cfg.batch_max = 0;
    assert_null(otlp_exporter_new(&loop, t, &cfg));
    cfg.batch_max = 1;
    cfg.body_max = 1000;
    assert_null(otlp_exporter_new(&loop, t, &cfg));
    trace_free(t);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_exact),        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_export_batches),      cmocka_unit_test(test_export_refused),
        cmocka_unit_test(test_export_no_collector), cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
