/* The node's histograms and tracing (see obs.h). The span of a request starts
 * at the request's completion time (req->received_ns), so the queueing inside
 * the loop before the handler ran is part of it, as it is of the histogram. */
#include "node/obs.h"

#include <errno.h>
#include <string.h>

#include "lib/http.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/otlp.h"

void obs_init(struct obs *o)
{
    memset(o, 0, sizeof(*o));
    hist_init(&o->post);
    hist_init(&o->summary);
}

int obs_start(struct obs *o, uv_loop_t *loop, const struct obs_config *cfg)
{
    if (!cfg->traces_url || !cfg->traces_url[0])
        return 0;
    if (strncmp(cfg->traces_url, "http://", 7) != 0 || cfg->queue_size == 0 ||
        cfg->batch_size == 0 || cfg->delay_ms == 0 || cfg->timeout_ms == 0)
        return -EINVAL;
    struct trace_config tc = {.sampler = cfg->sampler, .ring_cap = cfg->queue_size};
    o->tracer = trace_new(&tc);
    if (!o->tracer)
        return -ENOMEM;
    struct otlp_exporter_config ec;
    otlp_exporter_config_default(&ec);
    ec.url = cfg->traces_url;
    ec.resource.service_name = cfg->service_name;
    ec.resource.instance_id = cfg->instance_id;
    ec.interval_ms = cfg->delay_ms;
    ec.batch_max = cfg->batch_size;
    ec.timeout_ms = cfg->timeout_ms;
    o->exporter = otlp_exporter_new(loop, o->tracer, &ec);
    if (!o->exporter) {
        trace_free(o->tracer);
        o->tracer = NULL;
        return -ENOMEM;
    }
    return 0;
}

static void on_exporter_closed(void *arg)
{
    struct obs *o = arg;
    o->exporter = NULL;
    trace_free(o->tracer);
    o->tracer = NULL;
    if (o->closed_cb)
        o->closed_cb(o->closed_arg);
}

void obs_close(struct obs *o, obs_closed_cb *cb, void *arg)
{
    if (!o->exporter) {
        if (cb)
            cb(arg);
        return;
    }
    o->closed_cb = cb;
    o->closed_arg = arg;
    otlp_exporter_close(o->exporter, on_exporter_closed, o);
}

void obs_req_begin(struct obs *o, struct obs_req *r, const char *name,
                   const struct http_request *req)
{
    r->start_ns = req->received_ns;
    if (!o->tracer) {
        r->span.sampled = false;
        return;
    }
    struct slice v;
    struct trace_ctx remote;
    bool has_remote = http_request_header(req, "traceparent", &v) &&
                      trace_parse_traceparent(v.ptr, v.len, &remote) == 0;
    trace_span_start(o->tracer, &r->span, name, TRACE_KIND_SERVER, has_remote ? &remote : NULL,
                     r->start_ns);
}

void obs_req_end(struct obs *o, struct obs_req *r, struct hist *h, const char *result, bool error)
{
    uint64_t now = uv_hrtime();
    hist_add_ns(h, now > r->start_ns ? now - r->start_ns : 0);
    if (!r->span.sampled)
        return;
    trace_span_str(&r->span, "paynode.result", result, strlen(result));
    trace_span_status(&r->span, error ? TRACE_STATUS_ERROR : TRACE_STATUS_UNSET);
    trace_span_end(o->tracer, &r->span, now);
}

static void histogram(struct metrics *m, const char *name, const char *help, const struct hist *h)
{
    metrics_histogram(m, name, help, NULL, hist_bounds_s(), HIST_NBOUNDS, h->bucket, hist_sum_s(h));
}

void obs_metrics(const struct obs *o, struct metrics *m)
{
    histogram(m, "paynode_post_payments_duration_seconds",
              "POST /payments, from the request's last byte to the handler's decision (in a "
              "pair the 2xx then waits for the peer's ack).",
              &o->post);
    histogram(m, "paynode_totals_duration_seconds",
              "GET /payments-summary, from the request's last byte to the answer.", &o->summary);
    struct trace_stats ts = {0};
    struct otlp_exporter_stats es = {0};
    if (o->tracer)
        trace_get_stats(o->tracer, &ts);
    if (o->exporter)
        otlp_exporter_stats(o->exporter, &es);
    metrics_u64(m, "paynode_trace_enabled", "1 if traces are exported (OTLP endpoint set).",
                METRICS_GAUGE, NULL, o->tracer ? 1 : 0);
    metrics_u64(m, "paynode_trace_spans_sampled_total", "Spans started and sampled.",
                METRICS_COUNTER, NULL, ts.sampled);
    metrics_u64(m, "paynode_trace_spans_dropped_total",
                "Sampled spans dropped because the export queue was full.", METRICS_COUNTER, NULL,
                ts.dropped);
    metrics_u64(m, "paynode_trace_spans_exported_total", "Spans the collector accepted (2xx).",
                METRICS_COUNTER, NULL, es.spans_exported);
    metrics_u64(m, "paynode_trace_spans_failed_total",
                "Spans lost in exports that failed (error status, timeout, no collector).",
                METRICS_COUNTER, NULL, es.spans_failed);
    metrics_u64(m, "paynode_trace_queue_spans", "Spans waiting for export.", METRICS_GAUGE, NULL,
                ts.pending);
}
