/* Routes of the node's HTTP API (see api.h). Handlers read and change the
 * node through its modules (ledger, dispatch, peer) and node_emit(); the
 * /metrics text is written with lib/metrics into the api's own buffer. */
#include "node/api.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/http.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/money.h"
#include "lib/trace.h"
#include "lib/uuid.h"
#include "node/dispatch.h"
#include "node/health.h"
#include "node/node.h"
#include "node/obs.h"
#include "node/peer.h"

/* A span's context goes into an ACCEPTED as it is. */
_Static_assert(TRACE_FLAG_SAMPLED == EVENT_TRACE_SAMPLED && TRACE_ID_LEN == 16 &&
                   TRACE_SPAN_ID_LEN == 8,
               "lib/trace's context and proto/event's carried one are the same bytes");

#define ACCEPTED_BODY "{\"status\":\"accepted\"}"

void api_reply_accepted(struct http_exchange *x)
{
    http_reply(x, 202, NULL, ACCEPTED_BODY, sizeof(ACCEPTED_BODY) - 1);
}

/* The 503's message when node_has_room() says no. */
static const char *full_error(const struct node *n)
{
    return n->cfg.ledger_reserve ? "ledger full: the room left is kept for the peer's payments"
                                 : "ledger full";
}

/* span: the request's (obs_req_begin()); when sampled, its context travels
 * with the ACCEPTED event (the ledger keeps it for dispatch, the peer gets it
 * too) and a reply held for the peer's ack becomes its child span. */
static void post_payment(struct node *n, struct http_exchange *x, const struct http_request *req,
                         const struct trace_span *span)
{
    struct json_doc doc;
    struct slice s;
    bool esc;
    uint8_t id[16];
    int64_t cents;

    if (json_parse(&doc, req->body.ptr, req->body.len) != 0 || doc.tok[0].type != JSON_OBJECT) {
        n->counters.payments_invalid++;
        http_reply_error(x, 400, "body must be a JSON object");
        return;
    }
    int ti = json_member(&doc, 0, "correlationId");
    if (ti < 0 || !json_string(&doc, ti, &s, &esc)) {
        n->counters.payments_invalid++;
        http_reply_error(x, 400, "correlationId is required and must be a string");
        return;
    }
    if (esc || uuid_parse(s.ptr, s.len, id) != 0) {
        n->counters.payments_invalid++;
        http_reply_error(x, 422, "correlationId must be a canonical UUID");
        return;
    }
    ti = json_member(&doc, 0, "amount");
    if (ti < 0 || !json_number(&doc, ti, &s)) {
        n->counters.payments_invalid++;
        http_reply_error(x, 400, "amount is required and must be a number");
        return;
    }
    int rv = money_parse_cents(s.ptr, s.len, &cents);
    if (rv != 0) {
        n->counters.payments_invalid++;
        http_reply_error(x, rv == -EDOM ? 422 : 400,
                         "amount must be a positive number of cents (at most 2 decimals)");
        return;
    }

    struct payment *p = ledger_find(n->ledger, id);
    if (p) {
        if (p->amount_cents != cents) {
            n->counters.payments_conflict++;
            http_reply_error(x, 409, "correlationId already used with another amount");
            return;
        }
        n->counters.payments_duplicate++;
        api_reply_accepted(x);
        return;
    }
    /* Refusals record nothing; nginx retries them on the other node. A known
     * correlationId was answered above, whatever the room left. */
    const char *refusal = n->stopping                           ? "shutting down"
                          : (n->peer && peer_refusing(n->peer)) ? "catching up with peer"
                          : !node_has_room(n)                   ? full_error(n)
                          : !dispatch_has_room(n->dispatch)     ? "queue full"
                                                                : NULL;
    if (refusal) {
        n->counters.payments_refused++;
        http_reply_error(x, 503, refusal);
        return;
    }
    struct event ev = {.type = EVENT_ACCEPTED, .amount_cents = cents, .at_ms = clock_wall_ms()};
    memcpy(ev.id, id, sizeof(id));
    if (span->sampled) {
        ev.trace_flags = span->ctx.flags;
        memcpy(ev.trace.trace_id, span->ctx.trace_id, sizeof(ev.trace.trace_id));
        memcpy(ev.trace.span_id, span->ctx.span_id, sizeof(ev.trace.span_id));
    }
    rv = node_emit(n, &ev, &p);
    if (rv != 0) {
        n->counters.payments_refused++;
        http_reply_error(x, 503, rv == -ENOSPC ? "ledger full" : "cannot accept");
        return;
    }
    rv = dispatch_submit(n->dispatch, p);
    /* dispatch_has_room() said yes and nothing ran since: a refusal is a bug. */
    if (rv != 0)
        log_error("api", "dispatch refused an accepted payment: %d", rv);
    n->counters.payments_accepted++;
    /* Invariant 1: a 2xx only once the peer holds the payment too. */
    if (n->peer)
        peer_reply_when_acked(n->peer, x, n->seq, api_reply_accepted,
                              span->sampled ? &span->ctx : NULL);
    else
        api_reply_accepted(x);
}

/* Reads an optional timestamp bound; returns 0 (absent: *ms untouched) or -EINVAL. */
static int query_bound(struct slice query, const char *key, bool is_from, int64_t *ms)
{
    struct slice v;
    char buf[256]; /* a timestamp with a fraction of over 200 digits is garbage */
    int64_t ns;
    if (!http_query_param(query, key, &v) || v.len == 0)
        return 0;
    int len = http_query_decode(v, buf, sizeof(buf));
    if (len < 0 || clock_parse_iso(buf, (size_t)len, is_from, &ns) != 0)
        return -EINVAL;
    /* Stored times are whole ms: round `from` up and `to` down, exactly. */
    int64_t q = ns / 1000000, r = ns % 1000000;
    if (r < 0) {
        q--;
        r += 1000000;
    }
    *ms = (is_from && r != 0) ? q + 1 : q;
    return 0;
}

size_t api_format_cents_sum(ledger_cents_sum cents, char *buf)
{
    char tmp[API_CENTS_FMT_MAX];
    size_t n = 0;
    tmp[n++] = (char)('0' + (unsigned)(cents % 10));
    cents /= 10;
    tmp[n++] = (char)('0' + (unsigned)(cents % 10));
    cents /= 10;
    tmp[n++] = '.';
    do {
        tmp[n++] = (char)('0' + (unsigned)(cents % 10));
        cents /= 10;
    } while (cents != 0);
    for (size_t k = 0; k < n; k++)
        buf[k] = tmp[n - 1 - k];
    buf[n] = '\0';
    return n;
}

static void get_summary(struct node *n, struct http_exchange *x, const struct http_request *req)
{
    int64_t from = INT64_MIN, to = INT64_MAX;
    if (query_bound(req->query, "from", true, &from) != 0 ||
        query_bound(req->query, "to", false, &to) != 0) {
        http_reply_error(x, 400, "from and to must be ISO-8601 UTC timestamps");
        return;
    }
    if (!node_ready(n)) {
        http_reply_error(x, 503, "catching up with peer");
        return;
    }
    struct ledger_totals t;
    ledger_summary(n->ledger, from, to, &t);
    char a[API_CENTS_FMT_MAX], b[API_CENTS_FMT_MAX], body[256]; /* 208 at most */
    api_format_cents_sum(t.cents[LEDGER_DEFAULT], a);
    api_format_cents_sum(t.cents[LEDGER_FALLBACK], b);
    int len = snprintf(body, sizeof(body),
                       "{\"default\":{\"totalRequests\":%" PRId64 ",\"totalAmount\":%s},"
                       "\"fallback\":{\"totalRequests\":%" PRId64 ",\"totalAmount\":%s}}",
                       t.count[LEDGER_DEFAULT], a, t.count[LEDGER_FALLBACK], b);
    n->counters.summaries++;
    http_reply(x, 200, NULL, body, (size_t)len);
}

static void reply_purged(struct http_exchange *x)
{
    http_reply_json(x, 200, "{\"message\":\"All payments purged.\"}");
}

/* Whether got equals want (want_len bytes). Constant time in the contents:
 * every byte of want is compared whatever got holds and wherever the first
 * difference is, and the differences are only OR-ed together; the time
 * depends on want_len alone. */
static bool token_equal(struct slice got, const char *want, size_t want_len)
{
    volatile uint8_t diff = got.len != want_len;
    for (size_t i = 0; i < want_len; i++) {
        uint8_t g = i < got.len ? (uint8_t)got.ptr[i] : 0;
        diff |= (uint8_t)(g ^ (uint8_t)want[i]);
    }
    return diff == 0;
}

/* POST /purge-payments is open unless PURGE_TOKEN is set; then it needs the
 * token in X-Rinha-Token (the challenge's header name for its admin calls). */
static bool purge_allowed(const struct node *n, const struct http_request *req)
{
    const char *want = n->cfg.purge_token;
    if (want[0] == '\0')
        return true;
    struct slice got;
    if (!http_request_header(req, "X-Rinha-Token", &got))
        return false;
    return token_equal(got, want, strlen(want));
}

static void post_purge(struct node *n, struct http_exchange *x, const struct http_request *req)
{
    if (!purge_allowed(n, req)) {
        n->counters.purges_refused++;
        http_reply_error(x, 401, "purge needs the configured token in X-Rinha-Token");
        return;
    }
    /* A node still catching up would purge only what it has so far, and the
     * rest of the peer's snapshot would bring the old payments back: let the
     * other node take it (nginx retries a 503 there). */
    if (n->peer && peer_refusing(n->peer)) {
        http_reply_error(x, 503, "catching up with peer");
        return;
    }
    struct event ev = {.type = EVENT_PURGED, .epoch = n->purge_epoch + 1};
    dispatch_purge(n->dispatch);
    int rv = node_emit(n, &ev, NULL);
    if (rv != 0) {
        http_reply_error(x, 500, "purge failed");
        return;
    }
    n->counters.purges++;
    log_info("api", "payments purged (epoch %" PRIu64 ")", n->purge_epoch);
    /* Answer once the peer has purged too: a client that sends payments after
     * this answer (the challenge purges right before its load) must not have
     * one accepted by the peer before the peer applies the purge, which would
     * wipe it there and leave the two nodes' books apart. */
    if (n->peer)
        peer_reply_when_acked(n->peer, x, n->seq, reply_purged, NULL);
    else
        reply_purged(x);
}

static void get_healthz(struct node *n, struct http_exchange *x)
{
    char body[128];
    bool ok = node_ready(n) && !n->stopping;
    snprintf(body, sizeof(body), "{\"status\":\"%s\",\"nodeId\":%u,\"ready\":%s}",
             n->stopping ? "stopping" : (ok ? "ok" : "catching-up"), n->cfg.node_id,
             node_ready(n) ? "true" : "false");
    http_reply_json(x, ok ? 200 : 503, body);
}

static void ctr(struct metrics *m, const char *name, const char *help, const char *const *labels,
                uint64_t v)
{
    metrics_u64(m, name, help, METRICS_COUNTER, labels, v);
}

static void gauge(struct metrics *m, const char *name, const char *help, const char *const *labels,
                  uint64_t v)
{
    metrics_u64(m, name, help, METRICS_GAUGE, labels, v);
}

static void api_metrics(struct api *a, struct http_exchange *x)
{
    struct node *n = a->node;
    struct buf *b = &a->metrics;
    struct metrics m;
    struct dispatch_stats d;
    dispatch_get_stats(n->dispatch, &d);
    const struct node_counters *c = &n->counters;
    static const char *const proc[LEDGER_NPROC] = {"default", "fallback"};
    static const char *const state[] = {"accepted", "sending", "recorded"};
    static const enum ledger_state states[] = {LEDGER_ACCEPTED, LEDGER_SENDING, LEDGER_RECORDED};
    const struct {
        const char *result;
        uint64_t v;
    } results[] = {{"accepted", c->payments_accepted},
                   {"duplicate", c->payments_duplicate},
                   {"conflict", c->payments_conflict},
                   {"invalid", c->payments_invalid},
                   {"refused", c->payments_refused}};

    buf_reset(b);
    metrics_init(&m, b);
    ctr(&m, "paynode_http_requests_total", "HTTP requests handled by the API.", NULL,
        c->http_requests);
    for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++)
        ctr(&m, "paynode_payments_total", "POST /payments by result.",
            (const char *[]){"result", results[i].result, NULL}, results[i].v);
    ctr(&m, "paynode_summaries_total", "Summaries answered.", NULL, c->summaries);
    ctr(&m, "paynode_purges_total", "Purges made by this node.", NULL, c->purges);
    ctr(&m, "paynode_purges_refused_total", "Purges refused: PURGE_TOKEN missing or wrong.", NULL,
        c->purges_refused);
    ctr(&m, "paynode_event_errors_total", "Own events the ledger refused (bugs).", NULL,
        c->event_errors);
    gauge(&m, "paynode_ledger_payments", "Payments in the ledger.", NULL, ledger_size(n->ledger));
    gauge(&m, "paynode_ledger_capacity", "Payments the ledger can hold.", NULL,
          ledger_capacity(n->ledger));
    gauge(&m, "paynode_ledger_reserve", "Ledger room kept for the peer's payments.", NULL,
          n->cfg.ledger_reserve);
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
        gauge(&m, "paynode_ledger_state", "Ledger payments by state.",
              (const char *[]){"state", state[i], NULL}, ledger_count_state(n->ledger, states[i]));
    gauge(&m, "paynode_dispatch_queued", "Payments waiting in the dispatch queue.", NULL, d.queued);
    gauge(&m, "paynode_dispatch_pinned", "Payments waiting with an unknown fate.", NULL, d.pinned);
    ctr(&m, "paynode_dispatch_parked_total", "Payments given up after bad statuses.", NULL,
        d.parked);
    ctr(&m, "paynode_dispatch_conflicts_total", "RECORDED refused: recorded by the other.", NULL,
        d.conflicts);
    ctr(&m, "paynode_dispatch_held_ms_total", "Milliseconds spent holding all payments.", NULL,
        d.held_ms);
    ctr(&m, "paynode_dispatch_overflowed_total",
        "Payments sent to the fallback because the default's queue would drain too slowly.", NULL,
        d.overflowed);
    gauge(&m, "paynode_dispatch_awaiting_ack",
          "Attempts whose SENDING waits for the peer's ack before their POST.", NULL,
          d.awaiting_ack);
    ctr(&m, "paynode_dispatch_dropped_total",
        "Queued or waiting payments taken out because the ledger said another has them.", NULL,
        d.dropped);
    gauge(&m, "paynode_health_checker", "1 if this node polls the processors' health.", NULL,
          health_is_checker(n->health) ? 1 : 0);
    const struct {
        const char *name, *help;
        bool counter;
        const uint64_t *v; /* per processor */
    } per_proc[] = {
        {"paynode_dispatch_in_flight", "Attempts in flight.", false, d.in_flight},
        {"paynode_dispatch_sent_total", "POST attempts started.", true, d.sent},
        {"paynode_dispatch_retries_total", "Re-tries of pinned payments.", true, d.retries},
        {"paynode_dispatch_recorded_total", "RECORDED events emitted.", true, d.recorded},
        {"paynode_dispatch_failed_total", "FAILED events emitted.", true, d.failed},
        {"paynode_dispatch_unknown_total", "Attempts whose fate became unknown.", true, d.unknown},
        {"paynode_dispatch_confirms_total", "GET /payments/{id} sent.", true, d.confirms},
        {"paynode_dispatch_gated_total", "Attempts that waited for the peer's ack.", true, d.gated},
    };
    for (size_t i = 0; i < sizeof(per_proc) / sizeof(per_proc[0]); i++)
        for (int p = 0; p < LEDGER_NPROC; p++)
            metrics_u64(&m, per_proc[i].name, per_proc[i].help,
                        per_proc[i].counter ? METRICS_COUNTER : METRICS_GAUGE,
                        (const char *[]){"processor", proc[p], NULL}, per_proc[i].v[p]);
    for (int p = 0; p < LEDGER_NPROC; p++)
        metrics_histogram(&m, "paynode_processor_answer_seconds",
                          "Each POST attempt to a processor: time to its outcome.",
                          (const char *[]){"processor", proc[p], NULL}, hist_bounds_s(),
                          HIST_NBOUNDS, d.answer[p].bucket, hist_sum_s(&d.answer[p]));
    if (n->peer)
        peer_metrics(n->peer, &m); /* the replication samples, after ours */
    obs_metrics(&n->obs, &m);
    struct ledger_trace_stats ts;
    ledger_trace_stats(n->ledger, &ts);
    gauge(&m, "paynode_trace_payment_contexts",
          "Sampled payments not yet recorded whose trace context is kept for their later spans.",
          NULL, ts.used);
    ctr(&m, "paynode_trace_payments_untracked_total",
        "Sampled payments whose context found no free slot: no span after their POST span.", NULL,
        ts.untracked);
    int rv = metrics_error(&m);
    if (rv != 0) {
        http_reply_error(x, 500, "out of memory");
        return;
    }
    http_reply(x, 200, "Content-Type: " METRICS_CONTENT_TYPE "\r\n", b->ptr, b->len);
}

/* What the POST just handled came to, from the counter it moved (span
 * attribute paynode.result). */
static const char *post_result(const struct node_counters *b, const struct node_counters *a)
{
    return a->payments_accepted != b->payments_accepted     ? "accepted"
           : a->payments_duplicate != b->payments_duplicate ? "duplicate"
           : a->payments_conflict != b->payments_conflict   ? "conflict"
           : a->payments_invalid != b->payments_invalid     ? "invalid"
                                                            : "refused";
}

void api_init(struct api *a, struct node *n)
{
    a->magic = API_MAGIC;
    a->node = n;
    buf_init(&a->metrics, a->metrics_fixed, sizeof(a->metrics_fixed));
}

void api_release(struct api *a)
{
    buf_reset(&a->metrics);
}

void api_handle(struct http_exchange *x, const struct http_request *req, void *arg)
{
    struct api *a = arg;
    assert(a->magic == API_MAGIC);
    struct node *n = a->node;
    bool post = req->verb == HTTP_VERB_POST, get = req->verb == HTTP_VERB_GET;
    n->counters.http_requests++;

    struct obs_req o;
    struct node_counters before = n->counters;
    if (slice_eq(req->path, "/payments")) {
        if (post) {
            obs_req_begin(&n->obs, &o, "POST /payments", req);
            post_payment(n, x, req, &o.span);
            const char *r = post_result(&before, &n->counters);
            obs_req_end(&n->obs, &o, &n->obs.post, r, strcmp(r, "refused") == 0);
        } else
            http_reply(x, 405, "Allow: POST\r\n", NULL, 0);
    } else if (slice_eq(req->path, "/payments-summary")) {
        if (get) {
            obs_req_begin(&n->obs, &o, "GET /payments-summary", req);
            get_summary(n, x, req);
            bool ok = n->counters.summaries != before.summaries;
            obs_req_end(&n->obs, &o, &n->obs.summary, ok ? "answered" : "rejected", !ok);
        } else
            http_reply(x, 405, "Allow: GET\r\n", NULL, 0);
    } else if (slice_eq(req->path, "/purge-payments")) {
        if (post)
            post_purge(n, x, req);
        else
            http_reply(x, 405, "Allow: POST\r\n", NULL, 0);
    } else if (slice_eq(req->path, "/healthz")) {
        if (get)
            get_healthz(n, x);
        else
            http_reply(x, 405, "Allow: GET\r\n", NULL, 0);
    } else if (slice_eq(req->path, "/metrics")) {
        if (get)
            api_metrics(a, x);
        else
            http_reply(x, 405, "Allow: GET\r\n", NULL, 0);
    } else {
        http_reply_error(x, 404, "not found");
    }
}
