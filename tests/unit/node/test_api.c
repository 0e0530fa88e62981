/* api: every route, status code and body on a fake exchange (no sockets).
 * The node is real where it is cheap (ledger, node_emit) and faked at the
 * module boundary with -Wl,--wrap (see tests/CMakeLists.txt): the http_reply
 * family records the answer; dispatch, health and peer answer as scripted.
 * /metrics is run through the strict exposition-format checker. Also: the
 * ledger room kept for the peer (LEDGER_RESERVE), PURGE_TOKEN, and exact
 * summaries beyond 2^63 cents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/http.h"
#include "lib/metrics.h"
#include "lib/uuid.h"
#include "node/api.h"
#include "node/dispatch.h"
#include "node/health.h"
#include "node/ledger.h"
#include "node/node.h"
#include "node/peer.h"
#include "promcheck.h"

/* ---- fakes at the module boundary ---- */

static struct {
    int replies; /* answers given */
    int status;
    char extra[128];
    char body[65536];
    size_t body_len;
    /* dispatch */
    bool room;
    int submitted, purged;
    /* health */
    bool checker;
    /* peer */
    bool refusing, caught_up;
    int held; /* replies handed to peer_reply_when_acked */
    uint64_t held_seq;
    peer_reply_fn *held_reply;
    int published;
    int peer_samples; /* written by the fake peer_metrics */
    int peer_calls;
} fx;

void __wrap_http_reply(struct http_exchange *x, int status, const char *extra_headers,
                       const char *body, size_t body_len);
void __wrap_http_reply(struct http_exchange *x, int status, const char *extra_headers,
                       const char *body, size_t body_len)
{
    assert_non_null(x);
    fx.replies++;
    fx.status = status;
    snprintf(fx.extra, sizeof(fx.extra), "%s", extra_headers ? extra_headers : "");
    assert_true(body_len < sizeof(fx.body));
    if (body_len)
        memcpy(fx.body, body, body_len);
    fx.body[body_len] = 0;
    fx.body_len = body_len;
}

void __wrap_http_reply_json(struct http_exchange *x, int status, const char *json);
void __wrap_http_reply_json(struct http_exchange *x, int status, const char *json)
{
    __wrap_http_reply(x, status, NULL, json, strlen(json));
}

void __wrap_http_reply_error(struct http_exchange *x, int status, const char *msg);
void __wrap_http_reply_error(struct http_exchange *x, int status, const char *msg)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"error\":\"%s\"}", msg);
    __wrap_http_reply(x, status, NULL, body, strlen(body));
}

bool __wrap_dispatch_has_room(const struct dispatch *d);
bool __wrap_dispatch_has_room(const struct dispatch *d)
{
    return fx.room;
}

int __wrap_dispatch_submit(struct dispatch *d, struct payment *p);
int __wrap_dispatch_submit(struct dispatch *d, struct payment *p)
{
    assert_non_null(p);
    fx.submitted++;
    return 0;
}

void __wrap_dispatch_purge(struct dispatch *d);
void __wrap_dispatch_purge(struct dispatch *d)
{
    fx.purged++;
}

void __wrap_dispatch_get_stats(const struct dispatch *d, struct dispatch_stats *out);
void __wrap_dispatch_get_stats(const struct dispatch *d, struct dispatch_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->queued = 3;
    out->sent[LEDGER_DEFAULT] = 11;
    out->sent[LEDGER_FALLBACK] = 12;
    out->confirms[LEDGER_FALLBACK] = 5;
}

bool __wrap_health_is_checker(const struct health *h);
bool __wrap_health_is_checker(const struct health *h)
{
    return fx.checker;
}

bool __wrap_peer_refusing(const struct peer *p);
bool __wrap_peer_refusing(const struct peer *p)
{
    return fx.refusing;
}

bool __wrap_peer_caught_up(const struct peer *p);
bool __wrap_peer_caught_up(const struct peer *p)
{
    return fx.caught_up;
}

void __wrap_peer_reply_when_acked(struct peer *p, struct http_exchange *x, uint64_t seq,
                                  peer_reply_fn *reply, const struct trace_ctx *parent);
void __wrap_peer_reply_when_acked(struct peer *p, struct http_exchange *x, uint64_t seq,
                                  peer_reply_fn *reply, const struct trace_ctx *parent)
{
    (void)parent;
    fx.held++;
    fx.held_seq = seq;
    fx.held_reply = reply;
}

void __wrap_peer_publish(struct peer *p, const struct event *ev);
void __wrap_peer_publish(struct peer *p, const struct event *ev)
{
    fx.published++;
}

bool __wrap_peer_may_know(const struct peer *p);
bool __wrap_peer_may_know(const struct peer *p)
{
    return true;
}

/* Appends fx.peer_samples samples of one family, as the real one appends its own. */
void __wrap_peer_metrics(const struct peer *p, struct metrics *m);
void __wrap_peer_metrics(const struct peer *p, struct metrics *m)
{
    fx.peer_calls++;
    for (int i = 0; i < fx.peer_samples; i++) {
        char v[16];
        snprintf(v, sizeof(v), "%d", i);
        metrics_u64(m, "paynode_peer_test", "A test family.", METRICS_GAUGE,
                    (const char *[]){"i", v, NULL}, (uint64_t)i);
    }
}

/* ---- the node under test ---- */

static char fake_module; /* what dispatch, health, peer and the exchange point at */
#define FAKE(type) ((type *)(void *)&fake_module)
#define X FAKE(struct http_exchange)

struct world {
    struct node n;
};

static int setup(void **state)
{
    memset(&fx, 0, sizeof(fx));
    fx.room = true;
    fx.caught_up = true;
    struct world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    w->n.magic = NODE_MAGIC;
    w->n.cfg.node_id = 1;
    w->n.ledger = ledger_new(64);
    assert_non_null(w->n.ledger);
    w->n.dispatch = FAKE(struct dispatch);
    w->n.health = FAKE(struct health);
    api_init(&w->n.api, &w->n);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    struct world *w = *state;
    api_release(&w->n.api);
    ledger_free(w->n.ledger);
    free(w);
    return 0;
}

/* Sends one request; the answer lands in fx. */
static void call(struct world *w, enum http_verb verb, const char *path, const char *query,
                 const char *body)
{
    struct http_request req = {.verb = verb};
    req.path = (struct slice){path, strlen(path)};
    req.query = (struct slice){query ? query : "", query ? strlen(query) : 0};
    req.body = (struct slice){body ? body : "", body ? strlen(body) : 0};
    fx.replies = 0;
    fx.status = 0;
    api_handle(X, &req, &w->n.api);
}

/* call() with one request header (name, value). */
static void call_h(struct world *w, enum http_verb verb, const char *path, const char *name,
                   const char *value)
{
    struct http_request req = {.verb = verb};
    req.path = (struct slice){path, strlen(path)};
    req.query = (struct slice){"", 0};
    req.body = (struct slice){"", 0};
    req.headers[0].name = (struct slice){name, strlen(name)};
    req.headers[0].value = (struct slice){value, strlen(value)};
    req.nheaders = 1;
    fx.replies = 0;
    fx.status = 0;
    api_handle(X, &req, &w->n.api);
}

static void assert_answer(int status, const char *body)
{
    assert_int_equal(fx.replies, 1);
    assert_int_equal(fx.status, status);
    if (body)
        assert_string_equal(fx.body, body);
}

static const char *pay(const char *id, const char *amount, char *buf, size_t cap)
{
    snprintf(buf, cap, "{\"correlationId\":\"%s\",\"amount\":%s}", id, amount);
    return buf;
}

#define ID1 "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3"
#define ID2 "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
#define ACCEPTED "{\"status\":\"accepted\"}"

/* ---- routes ---- */

static void test_unknown_path_and_verbs(void **state)
{
    struct world *w = *state;
    call(w, HTTP_VERB_GET, "/nope", NULL, NULL);
    assert_answer(404, "{\"error\":\"not found\"}");
    static const struct {
        const char *path;
        enum http_verb wrong;
        const char *allow;
    } routes[] = {
        {"/payments", HTTP_VERB_GET, "Allow: POST\r\n"},
        {"/payments-summary", HTTP_VERB_POST, "Allow: GET\r\n"},
        {"/purge-payments", HTTP_VERB_GET, "Allow: POST\r\n"},
        {"/healthz", HTTP_VERB_DELETE, "Allow: GET\r\n"},
        {"/metrics", HTTP_VERB_PUT, "Allow: GET\r\n"},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        call(w, routes[i].wrong, routes[i].path, NULL, NULL);
        assert_answer(405, "");
        assert_string_equal(fx.extra, routes[i].allow);
    }
    /* The path is matched whole, without its query. */
    call(w, HTTP_VERB_GET, "/payments-summary/x", NULL, NULL);
    assert_answer(404, NULL);
    assert_int_equal(w->n.counters.http_requests, 7);
}

static void test_payment_accepted_alone(void **state)
{
    struct world *w = *state;
    char b[160];
    call(w, HTTP_VERB_POST, "/payments", NULL, pay(ID1, "19.90", b, sizeof(b)));
    assert_answer(202, ACCEPTED);
    assert_int_equal(fx.submitted, 1);
    assert_int_equal(w->n.seq, 1);
    assert_int_equal(w->n.counters.payments_accepted, 1);
    uint8_t id[16];
    assert_int_equal(uuid_parse(ID1, strlen(ID1), id), 0);
    struct payment *p = ledger_find(w->n.ledger, id);
    assert_non_null(p);
    assert_int_equal(p->amount_cents, 1990);
    /* the same again: a duplicate, answered 2xx, not submitted twice */
    call(w, HTTP_VERB_POST, "/payments", NULL, pay(ID1, "19.9", b, sizeof(b)));
    assert_answer(202, ACCEPTED);
    assert_int_equal(fx.submitted, 1);
    assert_int_equal(w->n.counters.payments_duplicate, 1);
    /* same id, another amount */
    call(w, HTTP_VERB_POST, "/payments", NULL, pay(ID1, "20.00", b, sizeof(b)));
    assert_answer(409, "{\"error\":\"correlationId already used with another amount\"}");
    assert_int_equal(w->n.counters.payments_conflict, 1);
    assert_int_equal(w->n.seq, 1);
}

static void test_payment_invalid(void **state)
{
    struct world *w = *state;
    static const struct {
        const char *body;
        int status;
        const char *error;
    } cases[] = {
        {"", 400, "body must be a JSON object"},
        {"[1]", 400, "body must be a JSON object"},
        {"{\"amount\":1}", 400, "correlationId is required and must be a string"},
        {"{\"correlationId\":7,\"amount\":1}", 400,
         "correlationId is required and must be a string"},
        {"{\"correlationId\":\"not-a-uuid\",\"amount\":1}", 422,
         "correlationId must be a canonical UUID"},
        {"{\"correlationId\":\"" ID2 "\"}", 400, "amount is required and must be a number"},
        {"{\"correlationId\":\"" ID2 "\",\"amount\":\"1\"}", 400,
         "amount is required and must be a number"},
        {"{\"correlationId\":\"" ID2 "\",\"amount\":-1}", 422,
         "amount must be a positive number of cents (at most 2 decimals)"},
        {"{\"correlationId\":\"" ID2 "\",\"amount\":1.001}", 422,
         "amount must be a positive number of cents (at most 2 decimals)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        call(w, HTTP_VERB_POST, "/payments", NULL, cases[i].body);
        char want[160];
        snprintf(want, sizeof(want), "{\"error\":\"%s\"}", cases[i].error);
        if (fx.status != cases[i].status || strcmp(fx.body, want) != 0)
            fail_msg("%s: got %d %s", cases[i].body, fx.status, fx.body);
    }
    assert_int_equal(w->n.counters.payments_invalid, sizeof(cases) / sizeof(cases[0]));
    assert_int_equal(ledger_size(w->n.ledger), 0);
    assert_int_equal(w->n.seq, 0);
}

static void test_payment_refused(void **state)
{
    struct world *w = *state;
    char b[160];
    pay(ID2, "1", b, sizeof(b));
    fx.room = false;
    call(w, HTTP_VERB_POST, "/payments", NULL, b);
    assert_answer(503, "{\"error\":\"queue full\"}");
    fx.room = true;
    w->n.peer = FAKE(struct peer);
    fx.refusing = true;
    call(w, HTTP_VERB_POST, "/payments", NULL, b);
    assert_answer(503, "{\"error\":\"catching up with peer\"}");
    w->n.stopping = true;
    call(w, HTTP_VERB_POST, "/payments", NULL, b);
    assert_answer(503, "{\"error\":\"shutting down\"}");
    assert_int_equal(w->n.counters.payments_refused, 3);
    /* refusals record nothing */
    assert_int_equal(ledger_size(w->n.ledger), 0);
    assert_int_equal(fx.submitted, 0);
    w->n.peer = NULL;
}

static void test_payment_in_pair_waits_for_ack(void **state)
{
    struct world *w = *state;
    w->n.peer = FAKE(struct peer);
    char b[160];
    call(w, HTTP_VERB_POST, "/payments", NULL, pay(ID2, "0.01", b, sizeof(b)));
    assert_int_equal(fx.replies, 0); /* held until the peer holds seq 1 */
    assert_int_equal(fx.held, 1);
    assert_int_equal(fx.held_seq, 1);
    assert_int_equal(fx.published, 1);
    assert_non_null(fx.held_reply);
    fx.held_reply(X);
    assert_answer(202, ACCEPTED);
    w->n.peer = NULL;
}

static void make_uuid(unsigned i, char out[37])
{
    snprintf(out, 37, "%08x-0000-4000-8000-000000000000", i);
}

/* In a pair the ledger keeps cfg.ledger_reserve slots for the peer: new local
 * payments get 503 once the rest is used; a repeat still gets its 2xx; the
 * peer's payments still fit in the reserve. */
static void test_payment_reserve(void **state)
{
    struct world *w = *state;
    char b[160], id[37];
    w->n.peer = FAKE(struct peer);
    w->n.cfg.ledger_reserve = 8; /* of 64 */
    for (unsigned i = 0; i < 56; i++) {
        make_uuid(i, id);
        call(w, HTTP_VERB_POST, "/payments", NULL, pay(id, "1.00", b, sizeof(b)));
        assert_int_equal(fx.replies, 0); /* held for the peer's ack */
    }
    assert_int_equal(ledger_size(w->n.ledger), 56);
    make_uuid(56, id);
    call(w, HTTP_VERB_POST, "/payments", NULL, pay(id, "1.00", b, sizeof(b)));
    assert_answer(503,
                  "{\"error\":\"ledger full: the room left is kept for the peer's payments\"}");
    assert_int_equal(ledger_size(w->n.ledger), 56);
    assert_int_equal(w->n.counters.payments_refused, 1);
    assert_int_equal(fx.submitted, 56);
    /* A repeat of a known id: still its 2xx, at once. */
    make_uuid(3, id);
    call(w, HTTP_VERB_POST, "/payments", NULL, pay(id, "1.00", b, sizeof(b)));
    assert_answer(202, ACCEPTED);
    assert_int_equal(w->n.counters.payments_duplicate, 1);
    /* The peer's payments (applied as peer.c does) use the reserve. */
    for (unsigned i = 100; i < 108; i++) {
        struct event ev = {.type = EVENT_ACCEPTED, .origin = 2, .seq = i, .amount_cents = 5};
        make_uuid(i, id);
        assert_int_equal(uuid_parse(id, 36, ev.id), 0);
        assert_int_equal(ledger_apply(w->n.ledger, &ev, NULL), 0);
    }
    assert_int_equal(ledger_size(w->n.ledger), 64);
    assert_false(node_has_room(&w->n));
    w->n.peer = NULL;
}

/* Alone (reserve 0) the limit is the capacity itself. */
static void test_payment_ledger_full_alone(void **state)
{
    struct world *w = *state;
    char b[160], id[37];
    for (unsigned i = 0; i < 64; i++) {
        make_uuid(i, id);
        call(w, HTTP_VERB_POST, "/payments", NULL, pay(id, "1.00", b, sizeof(b)));
        assert_answer(202, ACCEPTED);
    }
    make_uuid(64, id);
    call(w, HTTP_VERB_POST, "/payments", NULL, pay(id, "1.00", b, sizeof(b)));
    assert_answer(503, "{\"error\":\"ledger full\"}");
    make_uuid(0, id);
    call(w, HTTP_VERB_POST, "/payments", NULL, pay(id, "1.00", b, sizeof(b)));
    assert_answer(202, ACCEPTED);
    assert_int_equal(w->n.seq, 64);
}

/* ---- summary, purge, healthz ---- */

static void record(struct world *w, const char *uuid, int64_t cents, int proc, int64_t at_ms)
{
    struct event ev = {.type = EVENT_ACCEPTED, .amount_cents = cents, .at_ms = at_ms};
    assert_int_equal(uuid_parse(uuid, strlen(uuid), ev.id), 0);
    assert_int_equal(node_emit(&w->n, &ev, NULL), 0);
    ev.type = EVENT_RECORDED;
    ev.processor = (uint8_t)proc;
    assert_int_equal(node_emit(&w->n, &ev, NULL), 0);
}

/* A pair node that has not caught up with its peer yet. */
static void catching_up(struct world *w)
{
    w->n.peer = FAKE(struct peer);
    fx.caught_up = false;
}

static void test_summary(void **state)
{
    struct world *w = *state;
    record(w, ID1, 1990, LEDGER_DEFAULT, 1700000000000); /* 2023-11-14T22:13:20Z */
    record(w, ID2, 5, LEDGER_FALLBACK, 1700000001000);
    call(w, HTTP_VERB_GET, "/payments-summary", NULL, NULL);
    assert_answer(200, "{\"default\":{\"totalRequests\":1,\"totalAmount\":19.90},"
                       "\"fallback\":{\"totalRequests\":1,\"totalAmount\":0.05}}");
    /* to is inclusive; from rounds up to the next whole ms */
    call(w, HTTP_VERB_GET, "/payments-summary",
         "from=2023-11-14T22:13:20.000Z&to=2023-11-14T22:13:20.999Z", NULL);
    assert_answer(200, "{\"default\":{\"totalRequests\":1,\"totalAmount\":19.90},"
                       "\"fallback\":{\"totalRequests\":0,\"totalAmount\":0.00}}");
    call(w, HTTP_VERB_GET, "/payments-summary", "from=2023-11-14T22:13:20.0001Z", NULL);
    assert_answer(200, "{\"default\":{\"totalRequests\":0,\"totalAmount\":0.00},"
                       "\"fallback\":{\"totalRequests\":1,\"totalAmount\":0.05}}");
    call(w, HTTP_VERB_GET, "/payments-summary", "from=yesterday", NULL);
    assert_answer(400, "{\"error\":\"from and to must be ISO-8601 UTC timestamps\"}");
    catching_up(w); /* cannot answer */
    call(w, HTTP_VERB_GET, "/payments-summary", NULL, NULL);
    assert_answer(503, "{\"error\":\"catching up with peer\"}");
    w->n.peer = NULL;
    assert_int_equal(w->n.counters.summaries, 3);
}

static void test_format_cents_sum(void **state)
{
    static const struct {
        ledger_cents_sum v;
        const char *want;
    } cases[] = {
        {0, "0.00"},
        {5, "0.05"},
        {99, "0.99"},
        {100, "1.00"},
        {1990, "19.90"},
        {(ledger_cents_sum)INT64_MAX, "92233720368547758.07"},
        {(ledger_cents_sum)INT64_MAX + 1, "92233720368547758.08"},
        {~(ledger_cents_sum)0, "3402823669209384634633746074317682114.55"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[API_CENTS_FMT_MAX];
        size_t n = api_format_cents_sum(cases[i].v, buf);
        assert_string_equal(buf, cases[i].want);
        assert_int_equal(n, strlen(cases[i].want));
    }
}

/* 92,234 payments of the largest amount pass 2^63 cents: the summary is still
 * exact and positive (it was a negative number with int64 sums). */
static void test_summary_beyond_int64(void **state)
{
    struct world *w = *state;
    enum { N = 92234 };
    ledger_free(w->n.ledger);
    w->n.ledger = ledger_new(N + 1);
    assert_non_null(w->n.ledger);
    for (unsigned i = 0; i < N; i++) {
        struct event ev = {.type = EVENT_ACCEPTED,
                           .amount_cents = 100000000000000LL, /* 1e12: the API's maximum */
                           .at_ms = 1700000000000 + i};
        memcpy(ev.id, &i, sizeof(i));
        ev.id[15] = 0x77;
        assert_int_equal(node_emit(&w->n, &ev, NULL), 0);
        ev.type = EVENT_RECORDED;
        assert_int_equal(node_emit(&w->n, &ev, NULL), 0);
    }
    call(w, HTTP_VERB_GET, "/payments-summary", NULL, NULL);
    assert_answer(200,
                  "{\"default\":{\"totalRequests\":92234,\"totalAmount\":92234000000000000.00},"
                  "\"fallback\":{\"totalRequests\":0,\"totalAmount\":0.00}}");
    /* the first half, by time */
    call(w, HTTP_VERB_GET, "/payments-summary", "to=2023-11-14T22:13:20.999Z", NULL);
    assert_answer(200, "{\"default\":{\"totalRequests\":1000,\"totalAmount\":1000000000000000.00},"
                       "\"fallback\":{\"totalRequests\":0,\"totalAmount\":0.00}}");
}

static void test_purge(void **state)
{
    struct world *w = *state;
    char b[160];
    call(w, HTTP_VERB_POST, "/payments", NULL, pay(ID1, "1", b, sizeof(b)));
    call(w, HTTP_VERB_POST, "/purge-payments", NULL, NULL);
    assert_answer(200, "{\"message\":\"All payments purged.\"}");
    assert_int_equal(fx.purged, 1);
    assert_int_equal(w->n.purge_epoch, 1);
    assert_int_equal(ledger_size(w->n.ledger), 0);
    assert_int_equal(w->n.counters.purges, 1);
    /* in a pair: answered once the peer has purged too; refused while catching up */
    w->n.peer = FAKE(struct peer);
    call(w, HTTP_VERB_POST, "/purge-payments", NULL, NULL);
    assert_int_equal(fx.replies, 0);
    assert_int_equal(fx.held_seq, w->n.seq);
    fx.held_reply(X);
    assert_answer(200, "{\"message\":\"All payments purged.\"}");
    assert_int_equal(w->n.purge_epoch, 2);
    fx.refusing = true;
    call(w, HTTP_VERB_POST, "/purge-payments", NULL, NULL);
    assert_answer(503, "{\"error\":\"catching up with peer\"}");
    assert_int_equal(fx.purged, 2);
    w->n.peer = NULL;
}

static bool has_line(const char *text, const char *line);

/* With PURGE_TOKEN set, only a request carrying it in X-Rinha-Token purges;
 * anything else is 401 and purges nothing. */
static void test_purge_token(void **state)
{
    struct world *w = *state;
    char b[160];
    snprintf(w->n.cfg.purge_token, sizeof(w->n.cfg.purge_token), "s3cret-purge-token");
    call(w, HTTP_VERB_POST, "/payments", NULL, pay(ID1, "1", b, sizeof(b)));
    const char *const wrong[][2] = {
        {"X-Other", "s3cret-purge-token"},        /* not the header */
        {"X-Rinha-Token", ""},                    /* empty */
        {"X-Rinha-Token", "s3cret-purge-toke"},   /* a prefix */
        {"X-Rinha-Token", "s3cret-purge-tokenX"}, /* longer */
        {"X-Rinha-Token", "S3cret-purge-token"},  /* one byte off */
        {"X-Rinha-Token", "123"},                 /* the processors' token */
    };
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        call_h(w, HTTP_VERB_POST, "/purge-payments", wrong[i][0], wrong[i][1]);
        assert_answer(401, "{\"error\":\"purge needs the configured token in X-Rinha-Token\"}");
    }
    call(w, HTTP_VERB_POST, "/purge-payments", NULL, NULL); /* no header at all */
    assert_answer(401, NULL);
    assert_int_equal(fx.purged, 0);
    assert_int_equal(w->n.purge_epoch, 0);
    assert_int_equal(ledger_size(w->n.ledger), 1);
    assert_int_equal(w->n.counters.purges_refused, sizeof(wrong) / sizeof(wrong[0]) + 1);
    /* The header name is case-insensitive; the token is not. */
    call_h(w, HTTP_VERB_POST, "/purge-payments", "x-rinha-token", "s3cret-purge-token");
    assert_answer(200, "{\"message\":\"All payments purged.\"}");
    assert_int_equal(ledger_size(w->n.ledger), 0);
    assert_int_equal(w->n.counters.purges, 1);
    call(w, HTTP_VERB_GET, "/metrics", NULL, NULL);
    assert_true(has_line(fx.body, "paynode_purges_refused_total 7"));
}

static void test_healthz(void **state)
{
    struct world *w = *state;
    call(w, HTTP_VERB_GET, "/healthz", NULL, NULL);
    assert_answer(200, "{\"status\":\"ok\",\"nodeId\":1,\"ready\":true}");
    catching_up(w);
    call(w, HTTP_VERB_GET, "/healthz", NULL, NULL);
    assert_answer(503, "{\"status\":\"catching-up\",\"nodeId\":1,\"ready\":false}");
    w->n.peer = NULL;
    w->n.stopping = true;
    call(w, HTTP_VERB_GET, "/healthz", NULL, NULL);
    assert_answer(503, "{\"status\":\"stopping\",\"nodeId\":1,\"ready\":true}");
}

/* ---- metrics ---- */

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

static void assert_valid(void)
{
    char why[160];
    if (promcheck(fx.body, fx.body_len, why, sizeof(why)) != 0)
        fail_msg("/metrics is not valid exposition text: %s\n%s", why, fx.body);
}

static void test_metrics(void **state)
{
    struct world *w = *state;
    char b[160];
    call(w, HTTP_VERB_POST, "/payments", NULL, pay(ID1, "1", b, sizeof(b)));
    call(w, HTTP_VERB_POST, "/payments", NULL, "{");
    fx.checker = true;
    call(w, HTTP_VERB_GET, "/metrics", NULL, NULL);
    assert_answer(200, NULL);
    assert_string_equal(fx.extra, "Content-Type: text/plain; version=0.0.4\r\n");
    assert_valid();
    static const char *const want[] = {
        "paynode_http_requests_total 3",
        "paynode_payments_total{result=\"accepted\"} 1",
        "paynode_payments_total{result=\"invalid\"} 1",
        "paynode_payments_total{result=\"refused\"} 0",
        "paynode_ledger_payments 1",
        "paynode_ledger_capacity 64",
        "paynode_ledger_reserve 0",
        "paynode_purges_refused_total 0",
        "paynode_ledger_state{state=\"accepted\"} 1",
        "paynode_ledger_state{state=\"recorded\"} 0",
        "paynode_dispatch_queued 3",
        "paynode_health_checker 1",
        "paynode_dispatch_sent_total{processor=\"default\"} 11",
        "paynode_dispatch_sent_total{processor=\"fallback\"} 12",
        "paynode_dispatch_confirms_total{processor=\"fallback\"} 5",
        "# TYPE paynode_http_requests_total counter",
        "# TYPE paynode_ledger_payments gauge",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!has_line(fx.body, want[i]))
            fail_msg("no line '%s' in\n%s", want[i], fx.body);
    assert_int_equal(fx.peer_calls, 0);
}

static void test_metrics_with_peer_samples(void **state)
{
    struct world *w = *state;
    /* More than the fixed buffer holds: the writer grows it. */
    enum { N = 600 };
    fx.peer_samples = N;
    w->n.peer = FAKE(struct peer);
    call(w, HTTP_VERB_GET, "/metrics", NULL, NULL);
    assert_answer(200, NULL);
    assert_int_equal(fx.peer_calls, 1);
    assert_valid();
    /* All of them, after ours, under one HELP and TYPE. */
    const char *first = strstr(fx.body, "# HELP paynode_peer_test A test family.\n"
                                        "# TYPE paynode_peer_test gauge\n"
                                        "paynode_peer_test{i=\"0\"} 0\n");
    assert_non_null(first);
    assert_non_null(strstr(fx.body, "paynode_http_requests_total 1"));
    assert_true(strstr(fx.body, "paynode_http_requests_total 1") < first);
    char last[64];
    snprintf(last, sizeof(last), "paynode_peer_test{i=\"%d\"} %d", N - 1, N - 1);
    assert_true(has_line(fx.body, last));
    /* A second scrape rebuilds the text from scratch. */
    size_t len = fx.body_len;
    call(w, HTTP_VERB_GET, "/metrics", NULL, NULL);
    assert_int_equal(fx.body_len, len);
    assert_true(has_line(fx.body, "paynode_http_requests_total 2"));
    w->n.peer = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unknown_path_and_verbs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_payment_accepted_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_payment_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_payment_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_payment_in_pair_waits_for_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_payment_reserve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_payment_ledger_full_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_summary, setup, teardown),
        cmocka_unit_test(test_format_cents_sum),
        cmocka_unit_test_setup_teardown(test_summary_beyond_int64, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_healthz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_with_peer_samples, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
