/* OTLP/HTTP JSON receiver for tests (see otlp_recv.h). jsmn (strict mode, its
 * own static copy here) tokenizes a body; a small walker checks the shape and
 * copies each span out. */
#include "otlp_recv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "lib/http.h"

#define JSMN_STATIC
#define JSMN_STRICT
#include <jsmn.h>

#define RECV_MAX_SPANS 4096
#define RECV_MAX_BODY (8u << 20)

struct otlp_recv {
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t stop;
    uv_mutex_t mu; /* guards what follows */
    struct http_server *srv;
    int port;
    int status;
    struct otlp_recv_counts counts;
    struct otlp_recv_span *spans; /* RECV_MAX_SPANS */
    /* the request being parsed (receiver thread only) */
    jsmntok_t *tok;
    int ntok;
    const char *js;
};

/* ---------------------------------------------------------------- walking */

/* Index just past the value at token i (its whole subtree). */
static int skip(const struct otlp_recv *r, int i)
{
    int n = 1;
    while (n > 0 && i < r->ntok) {
        if (r->tok[i].type == JSMN_OBJECT)
            n += 2 * r->tok[i].size;
        else if (r->tok[i].type == JSMN_ARRAY)
            n += r->tok[i].size;
        n--;
        i++;
    }
    return i;
}

static bool is_key(const struct otlp_recv *r, int i, const char *key)
{
    const jsmntok_t *t = &r->tok[i];
    size_t n = strlen(key);
    return t->type == JSMN_STRING && (size_t)(t->end - t->start) == n &&
           memcmp(r->js + t->start, key, n) == 0;
}

/* Value token of member key of the object at i, or -1. */
static int member(const struct otlp_recv *r, int obj, const char *key)
{
    if (obj < 0 || r->tok[obj].type != JSMN_OBJECT)
        return -1;
    int i = obj + 1;
    for (int m = 0; m < r->tok[obj].size; m++) {
        if (is_key(r, i, key))
            return i + 1;
        i = skip(r, i + 1);
    }
    return -1;
}

/* The k-th element of the array at i, or -1. */
static int element(const struct otlp_recv *r, int arr, int k)
{
    if (arr < 0 || r->tok[arr].type != JSMN_ARRAY || k >= r->tok[arr].size)
        return -1;
    int i = arr + 1;
    while (k-- > 0)
        i = skip(r, i);
    return i;
}

static int count(const struct otlp_recv *r, int arr)
{
    return arr >= 0 && r->tok[arr].type == JSMN_ARRAY ? r->tok[arr].size : -1;
}

/* The string at i into out (raw, cut to fit); false unless a string. */
static bool str(const struct otlp_recv *r, int i, char *out, size_t cap)
{
    if (i < 0 || r->tok[i].type != JSMN_STRING)
        return false;
    size_t n = (size_t)(r->tok[i].end - r->tok[i].start);
    if (n >= cap)
        n = cap - 1;
    memcpy(out, r->js + r->tok[i].start, n);
    out[n] = '\0';
    return true;
}

static bool hex_str(const struct otlp_recv *r, int i, char *out, size_t digits)
{
    if (!str(r, i, out, digits + 2) || strlen(out) != digits)
        return false;
    for (size_t k = 0; k < digits; k++)
        if (!((out[k] >= '0' && out[k] <= '9') || (out[k] >= 'a' && out[k] <= 'f')))
            return false;
    return true;
}

/* A decimal string (OTLP's JSON for 64-bit integers). */
static bool u64_str(const struct otlp_recv *r, int i, uint64_t *out)
{
    char buf[32];
    if (!str(r, i, buf, sizeof(buf)) || buf[0] == '\0')
        return false;
    char *end;
    unsigned long long v = strtoull(buf, &end, 10);
    if (*end || buf[0] < '0' || buf[0] > '9')
        return false;
    *out = v;
    return true;
}

static bool int_prim(const struct otlp_recv *r, int i, int *out)
{
    if (i < 0 || r->tok[i].type != JSMN_PRIMITIVE)
        return false;
    char buf[16];
    size_t n = (size_t)(r->tok[i].end - r->tok[i].start);
    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, r->js + r->tok[i].start, n);
    buf[n] = '\0';
    char *end;
    long v = strtol(buf, &end, 10);
    if (*end)
        return false;
    *out = (int)v;
    return true;
}

/* {"key":"k","value":{"stringValue":"v"} or {"intValue":"n"}} */
static bool attr(const struct otlp_recv *r, int i, struct otlp_recv_attr *a)
{
    int v = member(r, i, "value");
    if (!str(r, member(r, i, "key"), a->key, sizeof(a->key)) || v < 0)
        return false;
    int iv = member(r, v, "intValue");
    if (iv >= 0) {
        a->is_int = true;
        if (!str(r, iv, a->value, sizeof(a->value)))
            return false;
        const char *digits = a->value[0] == '-' ? a->value + 1 : a->value;
        return *digits && strspn(digits, "0123456789") == strlen(digits);
    }
    a->is_int = false;
    return str(r, member(r, v, "stringValue"), a->value, sizeof(a->value));
}

static bool span(const struct otlp_recv *r, int i, struct otlp_recv_span *s)
{
    int p = member(r, i, "parentSpanId");
    s->parent_span_id[0] = '\0';
    if (!hex_str(r, member(r, i, "traceId"), s->trace_id, 32) ||
        !hex_str(r, member(r, i, "spanId"), s->span_id, 16) ||
        (p >= 0 && !hex_str(r, p, s->parent_span_id, 16)) ||
        !str(r, member(r, i, "name"), s->name, sizeof(s->name)) ||
        !int_prim(r, member(r, i, "kind"), &s->kind) ||
        !u64_str(r, member(r, i, "startTimeUnixNano"), &s->start_ns) ||
        !u64_str(r, member(r, i, "endTimeUnixNano"), &s->end_ns) || s->end_ns < s->start_ns)
        return false;
    int st = member(r, i, "status");
    s->status = 0;
    int code = member(r, st, "code");
    if (code >= 0 && !int_prim(r, code, &s->status))
        return false;
    int attrs = member(r, i, "attributes");
    int na = attrs < 0 ? 0 : count(r, attrs);
    if (na < 0)
        return false;
    s->nattrs = 0;
    for (int k = 0; k < na; k++) {
        struct otlp_recv_attr a;
        if (!attr(r, element(r, attrs, k), &a))
            return false;
        if (s->nattrs < OTLP_RECV_ATTRS)
            s->attrs[s->nattrs++] = a;
    }
    return true;
}

/* Parses the request in r->js; appends its spans (mutex held by the caller).
 * Returns false (nothing appended) when the body is malformed. */
static bool parse_request(struct otlp_recv *r, size_t len)
{
    jsmn_parser p;
    jsmn_init(&p);
    int n = jsmn_parse(&p, r->js, len, NULL, 0);
    if (n <= 0)
        return false;
    r->tok = calloc((size_t)n, sizeof(*r->tok));
    if (!r->tok)
        return false;
    jsmn_init(&p);
    r->ntok = jsmn_parse(&p, r->js, len, r->tok, (unsigned)n);
    size_t first = r->counts.spans, at = first;
    bool ok = r->ntok == n && r->tok[0].type == JSMN_OBJECT && skip(r, 0) == n;
    int rs = ok ? member(r, 0, "resourceSpans") : -1;
    int nrs = count(r, rs);
    ok = ok && nrs >= 0;
    for (int a = 0; ok && a < nrs; a++) {
        int res = element(r, rs, a);
        char service[OTLP_RECV_STR] = "", instance[OTLP_RECV_STR] = "";
        int ra = member(r, member(r, res, "resource"), "attributes");
        for (int k = 0; ok && k < count(r, ra); k++) {
            struct otlp_recv_attr at_;
            ok = attr(r, element(r, ra, k), &at_);
            if (ok && strcmp(at_.key, "service.name") == 0)
                snprintf(service, sizeof(service), "%s", at_.value);
            if (ok && strcmp(at_.key, "service.instance.id") == 0)
                snprintf(instance, sizeof(instance), "%s", at_.value);
        }
        int ss = member(r, res, "scopeSpans");
        ok = ok && count(r, ss) >= 0;
        for (int b = 0; ok && b < count(r, ss); b++) {
            int sp = member(r, element(r, ss, b), "spans");
            ok = count(r, sp) >= 0;
            for (int c = 0; ok && c < count(r, sp); c++) {
                if (at == RECV_MAX_SPANS) {
                    ok = false;
                    break;
                }
                struct otlp_recv_span *s = &r->spans[at];
                ok = span(r, element(r, sp, c), s);
                snprintf(s->service, sizeof(s->service), "%s", service);
                snprintf(s->instance, sizeof(s->instance), "%s", instance);
                at++;
            }
        }
    }
    free(r->tok);
    r->tok = NULL;
    if (ok)
        r->counts.spans = at;
    else
        r->counts.spans = first;
    return ok;
}

/* ---------------------------------------------------------------- server */

static void on_request(struct http_exchange *x, const struct http_request *req, void *arg)
{
    struct otlp_recv *r = arg;
    struct slice ct;
    if (req->verb != HTTP_VERB_POST || !slice_eq(req->path, "/v1/traces")) {
        http_reply_error(x, 404, "not found");
        return;
    }
    uv_mutex_lock(&r->mu);
    r->counts.requests++;
    int status = r->status;
    r->js = req->body.ptr;
    bool ok = http_request_header(req, "Content-Type", &ct) && ct.len >= 16 &&
              memcmp(ct.ptr, "application/json", 16) == 0;
    size_t before = r->counts.spans;
    ok = ok && parse_request(r, req->body.len);
    if (!ok)
        r->counts.bad++;
    else if (status < 200 || status > 299)
        r->counts.spans = before;
    uv_mutex_unlock(&r->mu);
    if (!ok)
        http_reply_error(x, 400, "malformed OTLP JSON");
    else
        http_reply_json(x, status, "{}");
}

static void on_srv_closed(struct http_server *s, void *arg)
{
    struct otlp_recv *r = arg;
    uv_close((uv_handle_t *)&r->stop, NULL);
}

static void on_stop(uv_async_t *h)
{
    struct otlp_recv *r = h->data;
    http_server_close(r->srv, on_srv_closed, r);
}

static void run(void *arg)
{
    struct otlp_recv *r = arg;
    uv_run(&r->loop, UV_RUN_DEFAULT);
}

int otlp_recv_start(struct otlp_recv **out)
{
    struct otlp_recv *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->spans = calloc(RECV_MAX_SPANS, sizeof(*r->spans));
    if (!r->spans) {
        free(r);
        return -ENOMEM;
    }
    r->status = 200;
    uv_loop_init(&r->loop);
    uv_mutex_init(&r->mu);
    uv_async_init(&r->loop, &r->stop, on_stop);
    r->stop.data = r;
    struct http_server_config cfg;
    http_server_config_default(&cfg);
    cfg.max_conns = 16;
    cfg.max_body_bytes = RECV_MAX_BODY;
    r->srv = http_server_new(&r->loop, &cfg, on_request, r);
    int rv = r->srv ? http_server_listen_tcp(r->srv, "127.0.0.1", 0) : -ENOMEM;
    if (rv == 0) {
        r->port = http_server_port(r->srv);
        rv = uv_thread_create(&r->thread, run, r);
    }
    if (rv != 0) {
        if (r->srv)
            http_server_close(r->srv, NULL, NULL);
        uv_close((uv_handle_t *)&r->stop, NULL);
        uv_run(&r->loop, UV_RUN_DEFAULT);
        uv_loop_close(&r->loop);
        uv_mutex_destroy(&r->mu);
        free(r->spans);
        free(r);
        return rv;
    }
    *out = r;
    return 0;
}

void otlp_recv_stop(struct otlp_recv *r)
{
    if (!r)
        return;
    uv_async_send(&r->stop);
    uv_thread_join(&r->thread);
    uv_loop_close(&r->loop);
    uv_mutex_destroy(&r->mu);
    free(r->spans);
    free(r);
}

int otlp_recv_port(const struct otlp_recv *r)
{
    return r->port;
}

void otlp_recv_url(const struct otlp_recv *r, char *buf, size_t cap)
{
    snprintf(buf, cap, "http://127.0.0.1:%d/v1/traces", r->port);
}

void otlp_recv_set_status(struct otlp_recv *r, int status)
{
    uv_mutex_lock(&r->mu);
    r->status = status;
    uv_mutex_unlock(&r->mu);
}

void otlp_recv_counts(struct otlp_recv *r, struct otlp_recv_counts *out)
{
    uv_mutex_lock(&r->mu);
    *out = r->counts;
    uv_mutex_unlock(&r->mu);
}

bool otlp_recv_wait(struct otlp_recv *r, size_t nspans, int timeout_ms)
{
    for (int waited = 0;; waited += 10) {
        struct otlp_recv_counts c;
        otlp_recv_counts(r, &c);
        if (c.spans >= nspans)
            return true;
        if (waited >= timeout_ms)
            return false;
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
}

size_t otlp_recv_spans(struct otlp_recv *r, struct otlp_recv_span *out, size_t cap)
{
    uv_mutex_lock(&r->mu);
    size_t n = r->counts.spans;
    memcpy(out, r->spans, (n < cap ? n : cap) * sizeof(*out));
    uv_mutex_unlock(&r->mu);
    return n;
}

const char *otlp_recv_attr(const struct otlp_recv_span *s, const char *key)
{
    for (int i = 0; i < s->nattrs; i++)
        if (strcmp(s->attrs[i].key, key) == 0)
            return s->attrs[i].value;
    return NULL;
}
