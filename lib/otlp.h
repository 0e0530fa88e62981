/* OTLP/HTTP JSON for traces, written by hand (no C OpenTelemetry SDK is
 * packaged in Debian): an encoder of spans into the JSON mapping of
 * opentelemetry-proto's ExportTraceServiceRequest (resourceSpans > scopeSpans
 * > spans; ids as lowercase hex, times as decimal strings of Unix ns, int
 * attributes as decimal strings, enums as integers), and an exporter that
 * drains a tracer's ring in batches and POSTs them with its own lib/httpc on
 * the loop: every interval_ms, or soon after a batch is full, one POST at a
 * time. A failed POST drops its batch (counted); nothing is retried, and
 * nothing waits for the collector on a request's path. Loop thread only. */
#ifndef LIB_OTLP_H
#define LIB_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/trace.h"

#define OTLP_SCOPE_NAME "paynode" /* instrumentationScope.name */
#define OTLP_STR_MAX 128          /* bytes of service name / instance id, NUL included */

/* The resource that every span of a batch belongs to. */
struct otlp_resource {
    const char *service_name; /* service.name */
    const char *instance_id;  /* service.instance.id, or NULL / "" for none */
};

/* The streaming encoder: begin, one call per span, end. Errors (-ENOMEM from
 * the buffer) are sticky in err and also returned by otlp_enc_end(). */
struct otlp_enc {
    struct buf *out; /* borrowed: the JSON is appended */
    size_t nspans;   /* spans written so far */
    int err;
};

void otlp_enc_begin(struct otlp_enc *e, struct buf *out, const struct otlp_resource *res);
void otlp_enc_span(struct otlp_enc *e, const struct trace_span *sp);
int otlp_enc_end(struct otlp_enc *e) __attribute__((warn_unused_result));

/* JSON string contents for s[0..len): quote, backslash and control characters
 * escaped; bytes that are not valid UTF-8 become '?'. */
void otlp_json_escape(struct otlp_enc *e, const char *s, size_t len);

struct otlp_exporter_config {
    const char *url;               /* absolute http:// URL of the traces endpoint (copied) */
    struct otlp_resource resource; /* strings copied (cut to OTLP_STR_MAX - 1) */
    unsigned interval_ms;          /* OTEL_BSP_SCHEDULE_DELAY: time between batches (>= 1) */
    unsigned batch_max;            /* OTEL_BSP_MAX_EXPORT_BATCH_SIZE: spans per POST (>= 1) */
    unsigned timeout_ms;           /* OTEL_BSP_EXPORT_TIMEOUT: one POST, at most */
    size_t body_max;               /* bytes of one POST body; a batch stops before it */
};

/* 1000 ms, 512 spans, 10 s, 1 MiB. url and resource left NULL. */
void otlp_exporter_config_default(struct otlp_exporter_config *cfg);

struct otlp_exporter;

/* Takes the spans of t (which must outlive the exporter) and sets t's notify
 * callback. Allocates its http client (one handle) and its encode buffer now.
 * NULL on failure (bad config or no memory). Starts its timer. */
struct otlp_exporter *otlp_exporter_new(uv_loop_t *loop, struct tracer *t,
                                        const struct otlp_exporter_config *cfg);

struct otlp_exporter_stats {
    uint64_t spans_exported; /* in batches the collector answered 2xx */
    uint64_t spans_failed;   /* in batches that failed (status, timeout, no collector) */
    uint64_t batches_ok;
    uint64_t batches_failed;
};
void otlp_exporter_stats(const struct otlp_exporter *e, struct otlp_exporter_stats *out);

typedef void otlp_exporter_closed_cb(void *arg);
/* Stops the timer, sends what the ring still holds (one last batch, bounded by
 * timeout_ms) unless a POST is already in flight, then closes everything, frees e
 * and calls cb from the loop. Call once. */
void otlp_exporter_close(struct otlp_exporter *e, otlp_exporter_closed_cb *cb, void *arg);

#endif
