/* The node's observability: the latency histograms of its API, and tracing
 * (a lib/trace tracer and a lib/otlp exporter) when an OTLP endpoint is
 * configured. The API calls obs_req_begin() when a request arrives and
 * obs_req_end() when its handler has decided; /metrics gets everything from
 * obs_metrics(). With tracing off a request costs one branch and one clock
 * read (the histogram). Knows nothing of payments; loop thread only. */
#ifndef NODE_OBS_H
#define NODE_OBS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/hist.h"
#include "lib/trace.h"

struct http_request;
struct metrics;
struct otlp_exporter;

#define OBS_URL_MAX 256

struct obs_config {
    const char *traces_url;   /* the OTLP/HTTP traces endpoint (http://...); NULL or "" = off */
    const char *service_name; /* service.name */
    const char *instance_id;  /* service.instance.id (the node id), or NULL */
    struct trace_sampler sampler;
    unsigned queue_size; /* spans held for export (OTEL_BSP_MAX_QUEUE_SIZE) */
    unsigned batch_size; /* spans per POST (OTEL_BSP_MAX_EXPORT_BATCH_SIZE) */
    unsigned delay_ms;   /* between POSTs (OTEL_BSP_SCHEDULE_DELAY) */
    unsigned timeout_ms; /* one POST (OTEL_BSP_EXPORT_TIMEOUT) */
};

typedef void obs_closed_cb(void *arg);

struct obs {
    struct tracer *tracer;          /* NULL: tracing off */
    struct otlp_exporter *exporter; /* with tracer */
    struct hist post;               /* POST /payments: request complete -> handler done */
    struct hist summary;            /* GET /payments-summary: the same */
    obs_closed_cb *closed_cb;       /* obs_close()'s, while the exporter closes */
    void *closed_arg;
};

/* One request being observed, in the handler's stack frame. */
struct obs_req {
    uint64_t start_ns;      /* uv_hrtime() when the request was complete */
    struct trace_span span; /* span.sampled false when not traced */
};

/* Histograms empty, tracing off. Cannot fail. */
void obs_init(struct obs *o);

/* Turns tracing on (cfg->traces_url set): allocates the tracer's ring and the
 * exporter. Returns 0 (also when cfg->traces_url is empty: nothing to do),
 * -EINVAL for a bad URL or size, -ENOMEM. Start-up only. */
int obs_start(struct obs *o, uv_loop_t *loop, const struct obs_config *cfg)
    __attribute__((warn_unused_result));

/* Sends the spans still held (one last batch, bounded by timeout_ms), closes
 * the exporter and frees the tracer, then calls cb: from the loop when
 * tracing was on, at once when it was off. */
void obs_close(struct obs *o, obs_closed_cb *cb, void *arg);

/* A request's span (kind SERVER, continuing the request's traceparent if it
 * has a valid one) and its start time. name must be a literal. */
void obs_req_begin(struct obs *o, struct obs_req *r, const char *name,
                   const struct http_request *req);
/* Adds the handler's time to h and ends the span with attribute
 * paynode.result = result (a literal); status ERROR when error. */
void obs_req_end(struct obs *o, struct obs_req *r, struct hist *h, const char *result, bool error);

/* The histograms and the tracing counters (zeros when tracing is off). */
void obs_metrics(const struct obs *o, struct metrics *m);

#endif
