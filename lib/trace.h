/* Tracing without an SDK: W3C trace context (the `traceparent` header), the
 * OpenTelemetry samplers named by OTEL_TRACES_SAMPLER, and a tracer that
 * copies each finished, sampled span into a preallocated ring for an exporter
 * (lib/otlp) to drain. A span being timed lives in the caller's storage; only
 * its end copies it into the ring, and a full ring drops the span and counts
 * it. Nothing allocates after trace_new(); nothing does I/O.
 *
 * Deliberately small: no baggage, no tracestate (dropped), no links or events,
 * a few attributes per span. One loop thread; nothing here is thread-safe. */
#ifndef LIB_TRACE_H
#define LIB_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRACE_ID_LEN 16          /* bytes of a trace id */
#define TRACE_SPAN_ID_LEN 8      /* bytes of a span id */
#define TRACE_TRACEPARENT_LEN 55 /* "00-<32 hex>-<16 hex>-<2 hex>", without the NUL */
#define TRACE_FLAG_SAMPLED 0x01  /* trace-flags bit: the caller recorded this trace */
#define TRACE_ATTRS_MAX 6        /* attributes kept per span; more are dropped */
#define TRACE_STR_MAX 64         /* bytes of a string attribute, NUL included (cut beyond) */
#define TRACE_RING_DEFAULT 2048  /* finished spans held for export (OTEL_BSP_MAX_QUEUE_SIZE) */

/* The part of a trace that crosses processes. */
struct trace_ctx {
    uint8_t trace_id[TRACE_ID_LEN];     /* never all zero once valid */
    uint8_t span_id[TRACE_SPAN_ID_LEN]; /* never all zero once valid */
    uint8_t flags;                      /* TRACE_FLAG_SAMPLED or 0 */
};

/* Parses a traceparent header value (surrounding spaces and tabs allowed).
 * Version 00 must be exactly 55 characters; a later version may carry more
 * after a '-' (ignored, as W3C asks). Hex must be lowercase. Rejected with
 * -EINVAL: version ff, all-zero trace or span id, wrong lengths, anything else
 * malformed. out is untouched on error. */
int trace_parse_traceparent(const char *s, size_t len, struct trace_ctx *out)
    __attribute__((warn_unused_result));

/* Writes "00-<trace id>-<span id>-<flags>" and a NUL into buf (at least
 * TRACE_TRACEPARENT_LEN + 1 bytes); returns TRACE_TRACEPARENT_LEN. */
size_t trace_format_traceparent(const struct trace_ctx *c, char *buf);

/* Lowercase hex of n bytes into out (2n characters and a NUL). */
void trace_hex(const uint8_t *p, size_t n, char *out);

enum trace_sampler_kind {
    TRACE_SAMPLER_ALWAYS_ON = 0,
    TRACE_SAMPLER_ALWAYS_OFF,
    TRACE_SAMPLER_RATIO,             /* traceidratio */
    TRACE_SAMPLER_PARENT_ALWAYS_ON,  /* parentbased_always_on (the default) */
    TRACE_SAMPLER_PARENT_ALWAYS_OFF, /* parentbased_always_off */
    TRACE_SAMPLER_PARENT_RATIO,      /* parentbased_traceidratio */
};

struct trace_sampler {
    enum trace_sampler_kind kind;
    double ratio;   /* the ratio kinds: OTEL_TRACES_SAMPLER_ARG in [0, 1] */
    uint64_t bound; /* sampled when the trace id's last 8 bytes (big-endian) are below */
    bool all;       /* ratio == 1: every trace, whatever its id (no bound fits 2^64) */
};

/* From OTEL_TRACES_SAMPLER's value (NULL or "" = parentbased_always_on, the
 * OpenTelemetry default) and OTEL_TRACES_SAMPLER_ARG's (NULL or "" = 1.0; only
 * the ratio kinds read it, and then it must be a decimal number in [0, 1]).
 * Returns 0 or -EINVAL (unknown name, bad ratio). */
int trace_sampler_parse(const char *name, const char *arg, struct trace_sampler *out)
    __attribute__((warn_unused_result));

/* The OTEL_TRACES_SAMPLER spelling of s->kind. */
const char *trace_sampler_name(const struct trace_sampler *s);

/* The decision for a new span of trace trace_id. parent is the remote parent
 * (from a traceparent) or NULL for a root span: the parent-based kinds follow
 * its sampled flag and use their root rule only without one. The ratio rule
 * is a function of the trace id alone, so every process that uses the same
 * ratio makes the same decision for a trace. */
bool trace_sampler_decide(const struct trace_sampler *s, const struct trace_ctx *parent,
                          const uint8_t trace_id[TRACE_ID_LEN]);

enum trace_kind { /* OTLP's SpanKind values */
                  TRACE_KIND_INTERNAL = 1,
                  TRACE_KIND_SERVER = 2,
                  TRACE_KIND_CLIENT = 3,
};

enum trace_status { /* OTLP's StatusCode values */
                    TRACE_STATUS_UNSET = 0,
                    TRACE_STATUS_OK = 1,
                    TRACE_STATUS_ERROR = 2,
};

struct trace_attr {
    const char *key; /* static storage (a literal): kept until exported */
    bool is_int;     /* i, else s */
    int64_t i;
    char s[TRACE_STR_MAX]; /* NUL-terminated, cut to fit */
};

/* One span: timed in the caller's storage, then copied into the ring. */
struct trace_span {
    struct trace_ctx ctx;                      /* this span: propagate this one */
    uint8_t parent_span_id[TRACE_SPAN_ID_LEN]; /* valid when has_parent */
    bool has_parent;
    bool sampled;   /* false: every call below is a no-op */
    uint8_t kind;   /* enum trace_kind */
    uint8_t status; /* enum trace_status */
    uint8_t nattrs;
    const char *name;          /* static storage (a literal) */
    uint64_t start_ns, end_ns; /* Unix time, ns */
    struct trace_attr attrs[TRACE_ATTRS_MAX];
};

struct trace_config {
    struct trace_sampler sampler;
    unsigned ring_cap; /* finished spans held, rounded up to a power of two (>= 2) */
};

struct tracer;

/* Allocates the ring and seeds the id generator from getrandom(). NULL on
 * failure. */
struct tracer *trace_new(const struct trace_config *cfg);
void trace_free(struct tracer *t);

/* Starts a span of a trace: continues remote (a parsed traceparent) when not
 * NULL, else starts a new trace; the sampler decides. Even an unsampled span
 * gets ids (its ctx can still be propagated, with the sampled flag clear).
 * start_mono_ns is CLOCK_MONOTONIC ns (uv_hrtime()), 0 for now. With t NULL
 * (tracing off) only sp->sampled is written (false) and ctx is not valid. */
void trace_span_start(struct tracer *t, struct trace_span *sp, const char *name,
                      enum trace_kind kind, const struct trace_ctx *remote, uint64_t start_mono_ns);

/* Starts a child of parent (a span of this process, possibly ended and kept
 * only as its ctx): same trace, same sampling decision, no sampler call. */
void trace_span_child(struct tracer *t, struct trace_span *sp, const char *name,
                      enum trace_kind kind, const struct trace_ctx *parent, uint64_t start_mono_ns);

/* A fresh span id (never all zero) for a span whose id must travel before the
 * span is timed into the caller's storage: an outgoing request's traceparent
 * names it while the request is in flight, and the span itself is made only
 * when the answer is in, with trace_span_child_id(). t must not be NULL. */
void trace_new_span_id(struct tracer *t, uint8_t out[TRACE_SPAN_ID_LEN]);

/* trace_span_child() with span_id (from trace_new_span_id()) as the span's id. */
void trace_span_child_id(struct tracer *t, struct trace_span *sp, const char *name,
                         enum trace_kind kind, const struct trace_ctx *parent,
                         const uint8_t span_id[TRACE_SPAN_ID_LEN], uint64_t start_mono_ns);

/* Attributes (dropped beyond TRACE_ATTRS_MAX) and status; no-ops unless
 * sp->sampled. key must be a literal (see struct trace_attr). */
void trace_span_str(struct trace_span *sp, const char *key, const char *v, size_t len);
void trace_span_int(struct trace_span *sp, const char *key, int64_t v);
void trace_span_status(struct trace_span *sp, enum trace_status status);

/* Ends the span at end_mono_ns (0 for now) and, when sampled, copies it into
 * the ring; a full ring drops it (counted). May call the notify callback. */
void trace_span_end(struct tracer *t, struct trace_span *sp, uint64_t end_mono_ns);

/* Called from trace_span_end() when the ring has just reached `at` spans
 * (an exporter starts a batch soon, never from inside the callback's caller's
 * stack frame if it can help it). at 0 disables it. */
typedef void trace_notify_cb(void *arg);
void trace_set_notify(struct tracer *t, unsigned at, trace_notify_cb *cb, void *arg);

/* The ring, oldest first, for the exporter: how many spans it holds, the i-th
 * (valid until trace_consume() passes it), and forgetting the n oldest. */
size_t trace_pending(const struct tracer *t);
const struct trace_span *trace_peek(const struct tracer *t, size_t i);
void trace_consume(struct tracer *t, size_t n);

struct trace_stats {
    uint64_t started;  /* spans started (sampled or not) */
    uint64_t sampled;  /* of those, sampled */
    uint64_t recorded; /* sampled spans ended and put in the ring */
    uint64_t dropped;  /* sampled spans ended while the ring was full */
    size_t pending;    /* in the ring now */
    size_t ring_cap;
};
void trace_get_stats(const struct tracer *t, struct trace_stats *out);

/* The sampler in use (for the start-up log). */
const struct trace_sampler *trace_sampler(const struct tracer *t);

#endif
