/* A tiny OTLP/HTTP JSON trace receiver for tests: a lib/http server on
 * 127.0.0.1 (port 0) in its own thread and loop, taking POST /v1/traces. Each
 * body must be an ExportTraceServiceRequest in OTLP's JSON mapping with the
 * fields a span needs (hex ids of the right length, decimal-string times,
 * integer kind and status code): a body that is not is answered 400 and
 * counted as bad, so a test learns that the encoding is wrong. Spans are kept
 * flat, with their resource's service name. Strings are kept raw (JSON
 * escapes not decoded). Not for production; every call but the callbacks is
 * thread-safe against the receiver's thread. */
#ifndef TESTS_SUPPORT_OTLP_RECV_H
#define TESTS_SUPPORT_OTLP_RECV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OTLP_RECV_STR 96
#define OTLP_RECV_ATTRS 8

struct otlp_recv_attr {
    char key[OTLP_RECV_STR];
    char value[OTLP_RECV_STR]; /* stringValue, or intValue's digits */
    bool is_int;
};

struct otlp_recv_span {
    char trace_id[33];
    char span_id[17];
    char parent_span_id[17]; /* "" for a root span */
    char name[OTLP_RECV_STR];
    char service[OTLP_RECV_STR];  /* resource's service.name */
    char instance[OTLP_RECV_STR]; /* resource's service.instance.id, or "" */
    int kind;
    int status; /* status.code, 0 when absent */
    uint64_t start_ns, end_ns;
    int nattrs;
    struct otlp_recv_attr attrs[OTLP_RECV_ATTRS];
};

struct otlp_recv;

/* Starts the receiver. Returns 0 or a negative errno. */
int otlp_recv_start(struct otlp_recv **out) __attribute__((warn_unused_result));
/* Stops it, joins its thread, frees everything. */
void otlp_recv_stop(struct otlp_recv *r);

int otlp_recv_port(const struct otlp_recv *r);
/* "http://127.0.0.1:<port>/v1/traces" into buf. */
void otlp_recv_url(const struct otlp_recv *r, char *buf, size_t cap);

/* Status for the following requests (default 200); the spans of a request
 * answered with anything but 2xx are not kept. */
void otlp_recv_set_status(struct otlp_recv *r, int status);

struct otlp_recv_counts {
    unsigned requests; /* POSTs received */
    unsigned bad;      /* of those, refused as malformed (400) */
    size_t spans;      /* spans kept */
};
void otlp_recv_counts(struct otlp_recv *r, struct otlp_recv_counts *out);

/* Waits (polling, bounded) until at least nspans spans are kept. */
bool otlp_recv_wait(struct otlp_recv *r, size_t nspans, int timeout_ms);

/* Copies the spans kept (up to cap, in arrival order) into out; returns how
 * many are kept in all. */
size_t otlp_recv_spans(struct otlp_recv *r, struct otlp_recv_span *out, size_t cap);

/* The value of attribute key, or NULL. */
const char *otlp_recv_attr(const struct otlp_recv_span *s, const char *key);

#endif
