/* OTLP/HTTP JSON encoder and batch exporter (see otlp.h). The encode buffer
 * is allocated once with room for body_max bytes, and a span is only started
 * when OTLP_SPAN_JSON_MAX bytes are still free, so a batch never makes the
 * buffer grow. */
#include "lib/otlp.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/container.h"
#include "lib/httpc.h"
#include "lib/log.h"
#include "lib/text.h"

#define OTLP_MAGIC 0x4f544c50u /* "OTLP" */
#define OTLP_NAME_MAX 64       /* span names and attribute keys are literals shorter than this */
/* Largest JSON of one span: ids, times, name and TRACE_ATTRS_MAX attributes
 * whose values are all escaped as \u00XX (6 bytes per byte). */
#define OTLP_SPAN_JSON_MAX                                                                         \
    (512 + 2 * OTLP_NAME_MAX + TRACE_ATTRS_MAX * (64 + OTLP_NAME_MAX + 6 * TRACE_STR_MAX))
#define OTLP_TAIL_LEN 8 /* "]}]}]}" closes a batch */

/* ---------------------------------------------------------------- encoder */

static void put(struct otlp_enc *e, const char *s, size_t n)
{
    if (e->err == 0)
        e->err = buf_append(e->out, s, n);
}

static void puts_(struct otlp_enc *e, const char *s)
{
    put(e, s, strlen(s));
}

void otlp_json_escape(struct otlp_enc *e, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len, *run = p;
    while (p < end) {
        unsigned char c = *p;
        size_t seq = c < 0x80 ? 1 : text_utf8_seq(p, (size_t)(end - p));
        if (c >= 0x20 && c != '"' && c != '\\' && seq > 0) {
            p += seq;
            continue;
        }
        put(e, (const char *)run, (size_t)(p - run));
        char esc[8];
        if (seq == 0)
            snprintf(esc, sizeof(esc), "?");
        else if (c == '"' || c == '\\')
            snprintf(esc, sizeof(esc), "\\%c", c);
        else
            snprintf(esc, sizeof(esc), "\\u%04x", c);
        puts_(e, esc);
        p++;
        run = p;
    }
    put(e, (const char *)run, (size_t)(p - run));
}

static void str_member(struct otlp_enc *e, const char *key, const char *v)
{
    puts_(e, "\"");
    puts_(e, key);
    puts_(e, "\":\"");
    otlp_json_escape(e, v, strlen(v));
    puts_(e, "\"");
}

static void hex_member(struct otlp_enc *e, const char *key, const uint8_t *p, size_t n)
{
    char hex[2 * TRACE_ID_LEN + 1];
    assert(n <= TRACE_ID_LEN);
    trace_hex(p, n, hex);
    str_member(e, key, hex);
}

static void u64_member(struct otlp_enc *e, const char *key, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRIu64, v);
    str_member(e, key, num);
}

/* {"key":"k","value":{"stringValue":"v"}} */
static void str_attr(struct otlp_enc *e, const char *key, const char *v)
{
    puts_(e, "{");
    str_member(e, "key", key);
    puts_(e, ",\"value\":{");
    str_member(e, "stringValue", v);
    puts_(e, "}}");
}

void otlp_enc_begin(struct otlp_enc *e, struct buf *out, const struct otlp_resource *res)
{
    *e = (struct otlp_enc){.out = out};
    puts_(e, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
    str_attr(e, "service.name", res->service_name);
    if (res->instance_id && res->instance_id[0]) {
        puts_(e, ",");
        str_attr(e, "service.instance.id", res->instance_id);
    }
    puts_(e, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"" OTLP_SCOPE_NAME "\"},\"spans\":[");
}

void otlp_enc_span(struct otlp_enc *e, const struct trace_span *sp)
{
    char num[24];
    assert(sp->name && strlen(sp->name) < OTLP_NAME_MAX);
    puts_(e, e->nspans ? ",{" : "{");
    hex_member(e, "traceId", sp->ctx.trace_id, TRACE_ID_LEN);
    puts_(e, ",");
    hex_member(e, "spanId", sp->ctx.span_id, TRACE_SPAN_ID_LEN);
    if (sp->has_parent) {
        puts_(e, ",");
        hex_member(e, "parentSpanId", sp->parent_span_id, TRACE_SPAN_ID_LEN);
    }
    puts_(e, ",");
    str_member(e, "name", sp->name);
    snprintf(num, sizeof(num), ",\"kind\":%u,", sp->kind);
    puts_(e, num);
    u64_member(e, "startTimeUnixNano", sp->start_ns);
    puts_(e, ",");
    u64_member(e, "endTimeUnixNano", sp->end_ns);
    puts_(e, ",\"attributes\":[");
    for (unsigned i = 0; i < sp->nattrs; i++) {
        const struct trace_attr *a = &sp->attrs[i];
        assert(a->key && strlen(a->key) < OTLP_NAME_MAX);
        if (i > 0)
            puts_(e, ",");
        if (!a->is_int) {
            str_attr(e, a->key, a->s);
            continue;
        }
        puts_(e, "{");
        str_member(e, "key", a->key);
        puts_(e, ",\"value\":{");
        snprintf(num, sizeof(num), "%" PRId64, a->i);
        str_member(e, "intValue", num);
        puts_(e, "}}");
    }
    snprintf(num, sizeof(num), "%u", sp->status);
    puts_(e, "],\"status\":{\"code\":");
    puts_(e, num);
    puts_(e, "}}");
    e->nspans++;
}

int otlp_enc_end(struct otlp_enc *e)
{
    puts_(e, "]}]}]}");
    return e->err;
}

/* ---------------------------------------------------------------- exporter */

struct otlp_exporter {
    uint32_t magic;
    uv_loop_t *loop;
    struct tracer *t;   /* borrowed */
    struct httpc *http; /* ours: one handle, one POST at a time */
    uv_timer_t timer;   /* every interval_ms; restarted at 0 when a batch is full */
    struct buf body;    /* the batch being encoded, in body_mem */
    char *body_mem;     /* body_max bytes */
    char *url;          /* copied */
    char service[OTLP_STR_MAX], instance[OTLP_STR_MAX];
    struct otlp_exporter_config cfg;
    bool in_flight;      /* a POST is out */
    size_t flight_spans; /* spans in it */
    bool closing;        /* otlp_exporter_close() called */
    otlp_exporter_closed_cb *closed_cb;
    void *closed_arg;
    struct otlp_exporter_stats stats;
};

void otlp_exporter_config_default(struct otlp_exporter_config *cfg)
{
    *cfg = (struct otlp_exporter_config){
        .interval_ms = 1000, .batch_max = 512, .timeout_ms = 10000, .body_max = 1u << 20};
}

static void flush(struct otlp_exporter *e);
static void finish_close(struct otlp_exporter *e);

static void on_post_done(void *arg, const struct httpc_result *res)
{
    struct otlp_exporter *e = arg;
    assert(e->magic == OTLP_MAGIC && e->in_flight);
    e->in_flight = false;
    if (res->outcome == HTTPC_OK && res->status >= 200 && res->status < 300) {
        e->stats.spans_exported += e->flight_spans;
        e->stats.batches_ok++;
    } else {
        e->stats.spans_failed += e->flight_spans;
        e->stats.batches_failed++;
        if (res->outcome == HTTPC_OK)
            log_warn("otlp", "export of %zu spans refused: HTTP %d", e->flight_spans, res->status);
        else
            log_warn("otlp", "export of %zu spans failed: %s", e->flight_spans, res->error);
    }
    e->flight_spans = 0;
    if (e->closing) {
        finish_close(e);
        return;
    }
    /* A full batch waiting: send it now rather than at the next tick. */
    if (trace_pending(e->t) >= e->cfg.batch_max)
        flush(e);
}

/* Encodes up to batch_max spans and POSTs them; they leave the ring once the
 * request is started (httpc copies the body). */
static void flush(struct otlp_exporter *e)
{
    size_t pending = trace_pending(e->t);
    if (e->in_flight || pending == 0)
        return;
    struct otlp_enc enc;
    struct otlp_resource res = {.service_name = e->service, .instance_id = e->instance};
    buf_reset(&e->body);
    otlp_enc_begin(&enc, &e->body, &res);
    size_t n = 0;
    while (n < pending && n < e->cfg.batch_max &&
           e->body.len + OTLP_SPAN_JSON_MAX + OTLP_TAIL_LEN <= e->cfg.body_max)
        otlp_enc_span(&enc, trace_peek(e->t, n++));
    if (otlp_enc_end(&enc) != 0) {
        log_error("otlp", "encoding %zu spans failed", n);
        return;
    }
    static const char *const headers[] = {"Content-Type: application/json", NULL};
    int rv = httpc_request(e->http, "POST", e->url, headers, e->body.ptr, e->body.len,
                           e->cfg.timeout_ms, on_post_done, e);
    if (rv != 0) {
        /* Not started: the spans stay for the next tick unless the request
         * itself is unsendable, which would block the ring for ever. */
        log_warn("otlp", "cannot start an export: %s", strerror(-rv));
        if (rv != -EAGAIN) {
            trace_consume(e->t, n);
            e->stats.spans_failed += n;
            e->stats.batches_failed++;
        }
        return;
    }
    trace_consume(e->t, n);
    e->in_flight = true;
    e->flight_spans = n;
}

static void on_timer(uv_timer_t *h)
{
    struct otlp_exporter *e = container_of(h, struct otlp_exporter, timer);
    assert(e->magic == OTLP_MAGIC);
    flush(e);
}

/* From trace_span_end(), inside a request handler: never export there, only
 * bring the next tick forward to the next loop iteration. */
static void on_ring_full(void *arg)
{
    struct otlp_exporter *e = arg;
    if (!e->closing && !e->in_flight)
        uv_timer_start(&e->timer, on_timer, 0, e->cfg.interval_ms);
}

struct otlp_exporter *otlp_exporter_new(uv_loop_t *loop, struct tracer *t,
                                        const struct otlp_exporter_config *cfg)
{
    if (!cfg->url || strncmp(cfg->url, "http://", 7) != 0 || !cfg->resource.service_name ||
        cfg->interval_ms == 0 || cfg->batch_max == 0 || cfg->timeout_ms == 0 ||
        cfg->body_max < 2 * OTLP_SPAN_JSON_MAX + 1024)
        return NULL;
    struct otlp_exporter *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->magic = OTLP_MAGIC;
    e->loop = loop;
    e->t = t;
    e->cfg = *cfg;
    e->url = strdup(cfg->url);
    e->body_mem = malloc(cfg->body_max);
    if (!e->url || !e->body_mem)
        goto out_free;
    snprintf(e->service, sizeof(e->service), "%s", cfg->resource.service_name);
    snprintf(e->instance, sizeof(e->instance), "%s",
             cfg->resource.instance_id ? cfg->resource.instance_id : "");
    buf_init(&e->body, e->body_mem, cfg->body_max);
    struct httpc_config hc;
    httpc_config_default(&hc);
    hc.max_handles = 1;
    hc.max_host_conns = 1;
    hc.max_req_body = cfg->body_max;
    e->http = httpc_new(loop, &hc);
    if (!e->http)
        goto out_free;
    uv_timer_init(loop, &e->timer);
    uv_timer_start(&e->timer, on_timer, cfg->interval_ms, cfg->interval_ms);
    trace_set_notify(t, cfg->batch_max, on_ring_full, e);
    return e;
out_free:
    free(e->body_mem);
    free(e->url);
    free(e);
    return NULL;
}

void otlp_exporter_stats(const struct otlp_exporter *e, struct otlp_exporter_stats *out)
{
    *out = e->stats;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct otlp_exporter *e = container_of((uv_timer_t *)h, struct otlp_exporter, timer);
    otlp_exporter_closed_cb *cb = e->closed_cb;
    void *arg = e->closed_arg;
    buf_reset(&e->body);
    free(e->body_mem);
    free(e->url);
    e->magic = 0;
    free(e);
    if (cb)
        cb(arg);
}

static void on_http_closed(void *arg)
{
    struct otlp_exporter *e = arg;
    e->http = NULL;
    uv_close((uv_handle_t *)&e->timer, on_timer_closed);
}

static void finish_close(struct otlp_exporter *e)
{
    httpc_close(e->http, on_http_closed, e);
}

void otlp_exporter_close(struct otlp_exporter *e, otlp_exporter_closed_cb *cb, void *arg)
{
    assert(e->magic == OTLP_MAGIC && !e->closing);
    e->closing = true;
    e->closed_cb = cb;
    e->closed_arg = arg;
    trace_set_notify(e->t, 0, NULL, NULL);
    uv_timer_stop(&e->timer);
    flush(e);
    if (!e->in_flight)
        finish_close(e);
}
