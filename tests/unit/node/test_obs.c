/* obs: with tracing off a request is only timed into its histogram; with an
 * endpoint, requests become SERVER spans that continue a valid traceparent
 * (and follow its sampled flag), start a new trace otherwise, and reach the
 * test receiver when obs_close() sends the last batch. obs_metrics() passes
 * the strict checker and promtool. Own loop, closed to 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/http.h"
#include "lib/metrics.h"
#include "node/obs.h"
#include "otlp_recv.h"
#include "promcheck.h"
#include "promtool.h"

#define PARENT_TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define PARENT_SPAN "00f067aa0ba902b7"

/* A request completed age_ns ago, with a traceparent header when tp != NULL. */
static void make_req(struct http_request *req, const char *tp, uint64_t age_ns)
{
    memset(req, 0, sizeof(*req));
    req->verb = HTTP_VERB_POST;
    req->path = SLICE_LIT("/payments");
    req->received_ns = uv_hrtime() - age_ns;
    req->headers[req->nheaders].name = SLICE_LIT("Host");
    req->headers[req->nheaders++].value = SLICE_LIT("x");
    if (tp) {
        req->headers[req->nheaders].name = SLICE_LIT("TraceParent"); /* any case */
        req->headers[req->nheaders++].value = (struct slice){tp, strlen(tp)};
    }
}

static char *metrics_text(const struct obs *o, size_t *len)
{
    static char text[16384];
    struct buf b;
    buf_init(&b, NULL, 0);
    struct metrics m;
    metrics_init(&m, &b);
    obs_metrics(o, &m);
    assert_int_equal(metrics_error(&m), 0);
    assert_true(b.len < sizeof(text));
    memcpy(text, b.ptr, b.len);
    text[b.len] = '\0';
    *len = b.len;
    buf_reset(&b);
    char why[2048];
    if (promcheck(text, *len, why, sizeof(why)) != 0)
        fail_msg("promcheck: %s\n%s", why, text);
    if (promtool_check(text, *len, why, sizeof(why)) != 0)
        fail_msg("promtool: %s\n%s", why, text);
    return text;
}

static bool closed;
static void on_closed(void *arg)
{
    assert_ptr_equal(arg, &closed);
    closed = true;
}

static void test_off(void **state)
{
    struct obs o;
    obs_init(&o);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct obs_config cfg = {.traces_url = ""};
    assert_int_equal(obs_start(&o, &loop, &cfg), 0);
    assert_null(o.tracer);
    struct http_request req;
    struct obs_req r;
    make_req(&req, "00-" PARENT_TRACE "-" PARENT_SPAN "-01", 3000000); /* 3 ms ago */
    obs_req_begin(&o, &r, "POST /payments", &req);
    assert_false(r.span.sampled);
    obs_req_end(&o, &r, &o.post, "accepted", false);
    assert_int_equal(o.post.count, 1);
    assert_int_equal(o.summary.count, 0);
    assert_true(o.post.sum_ns >= 3000000);
    assert_int_equal(o.post.bucket[6], 1); /* (2 ms, 5 ms] on a quiet machine */
    size_t len;
    const char *text = metrics_text(&o, &len);
    assert_non_null(strstr(text, "paynode_post_payments_duration_seconds_count 1\n"));
    assert_non_null(strstr(text, "paynode_totals_duration_seconds_count 0\n"));
    assert_non_null(strstr(text, "paynode_trace_enabled 0\n"));
    closed = false;
    obs_close(&o, on_closed, &closed);
    assert_true(closed); /* at once: nothing to send */
    assert_int_equal(uv_loop_close(&loop), 0);

    cfg.traces_url = "https://collector:4318/v1/traces";
    cfg.queue_size = cfg.batch_size = cfg.delay_ms = cfg.timeout_ms = 1;
    assert_int_equal(obs_start(&o, &loop, &cfg), -EINVAL);
}

static void test_traced(void **state)
{
    struct otlp_recv *rcv;
    assert_int_equal(otlp_recv_start(&rcv), 0);
    char url[64];
    otlp_recv_url(rcv, url, sizeof(url));
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct obs o;
    obs_init(&o);
    struct obs_config cfg = {.traces_url = url,
                             .service_name = "paynode",
                             .instance_id = "2",
                             .queue_size = 64,
                             .batch_size = 512,
                             .delay_ms = 60000, /* only the close sends */
                             .timeout_ms = 2000};
    assert_int_equal(trace_sampler_parse("parentbased_always_on", NULL, &cfg.sampler), 0);
    assert_int_equal(obs_start(&o, &loop, &cfg), 0);
    assert_non_null(o.tracer);

    struct http_request req;
    struct obs_req r;
    /* 1: continues the caller's trace. */
    make_req(&req, "00-" PARENT_TRACE "-" PARENT_SPAN "-01", 1000000);
    obs_req_begin(&o, &r, "POST /payments", &req);
    assert_true(r.span.sampled);
    obs_req_end(&o, &r, &o.post, "accepted", false);
    /* 2: the caller did not sample: neither do we (parent-based). */
    make_req(&req, "00-" PARENT_TRACE "-" PARENT_SPAN "-00", 0);
    obs_req_begin(&o, &r, "POST /payments", &req);
    assert_false(r.span.sampled);
    obs_req_end(&o, &r, &o.post, "accepted", false);
    /* 3: a malformed header is ignored: a new trace. */
    make_req(&req, "00-" PARENT_TRACE "-" PARENT_SPAN "-1", 0);
    obs_req_begin(&o, &r, "GET /payments-summary", &req);
    assert_true(r.span.sampled);
    obs_req_end(&o, &r, &o.summary, "refused", true);
    assert_int_equal(o.post.count, 2);
    assert_int_equal(o.summary.count, 1);

    size_t len;
    const char *text = metrics_text(&o, &len);
    assert_non_null(strstr(text, "paynode_trace_enabled 1\n"));
    assert_non_null(strstr(text, "paynode_trace_spans_sampled_total 2\n"));
    assert_non_null(strstr(text, "paynode_trace_queue_spans 2\n"));

    closed = false;
    obs_close(&o, on_closed, &closed);
    assert_false(closed); /* the last batch is in flight */
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_true(closed);
    assert_null(o.tracer);
    assert_int_equal(uv_loop_close(&loop), 0);

    assert_true(otlp_recv_wait(rcv, 2, 2000));
    struct otlp_recv_span s[4];
    assert_int_equal(otlp_recv_spans(rcv, s, 4), 2);
    assert_string_equal(s[0].name, "POST /payments");
    assert_string_equal(s[0].trace_id, PARENT_TRACE);
    assert_string_equal(s[0].parent_span_id, PARENT_SPAN);
    assert_string_equal(s[0].service, "paynode");
    assert_string_equal(s[0].instance, "2");
    assert_int_equal(s[0].kind, 2);
    assert_int_equal(s[0].status, 0);
    assert_string_equal(otlp_recv_attr(&s[0], "paynode.result"), "accepted");
    assert_true(s[0].end_ns - s[0].start_ns >= 1000000);
    assert_string_equal(s[1].name, "GET /payments-summary");
    assert_string_not_equal(s[1].trace_id, PARENT_TRACE);
    assert_string_equal(s[1].parent_span_id, "");
    assert_int_equal(s[1].status, 2);
    assert_string_equal(otlp_recv_attr(&s[1], "paynode.result"), "refused");
    otlp_recv_stop(rcv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off),
        cmocka_unit_test(test_traced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
