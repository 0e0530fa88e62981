/* Dispatch against two scripted fake processors served in-process (lib/http
 * server on 127.0.0.1:0, same loop), through the real httpc, ledger and
 * health. The fakes behave like the real processor where it matters: a POST
 * waits its delay, then records (unless it arrived while "failing") and
 * answers; a client that gave up does not stop it. A tracker shared by both
 * fakes fails the test if a payment reaches one processor while a request for
 * it is still pending at the other, or is recorded twice.
 * Covers: the happy path, 500 -> fallback, 429, unknown fate -> GET 404 ->
 * retry with the same requestedAt, unknown + 500 retries -> GET confirm finds
 * the late record, unknown on a known-failing processor -> found by GET before
 * the settle time without any re-POST, or (absent) GETs until the settle time
 * and only then moved, unknown -> GET 404 -> moved, hold/drain, submit limits, purge,
 * stop, resume of SENDING payments, the answer classification, 422 -> GET ->
 * the record's requestedAt, and the pair-mode rules (docs/ROUTING.md, "In a
 * pair"): the ack gate before the fallback and before leaving a fallback pin,
 * ownership, takeover of ACCEPTED payments (default only, until a GET 404),
 * and pause. In pair mode the fakes also fail the test if a shared payment
 * reaches the fallback before the peer acknowledged its SENDING, or if
 * anything reaches a processor while dispatch is paused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "lib/clock.h"
#include "node/dispatch.h"
#include "node/health.h"
#include "lib/http.h"
#include "lib/httpc.h"
#include "lib/json.h"
#include "node/ledger.h"
#include "lib/money.h"
#include "lib/trace.h"
#include "lib/uuid.h"

#define MAXPAY 1024
#define MAXPEND 1024

struct fake;

struct pend {
    struct fake *f;
    uv_timer_t timer;
    struct http_exchange *x;
    bool used;
    bool record; /* decided at arrival: not failing then */
    unsigned i;  /* payment number */
    int64_t at_ms;
    int64_t cents;
};

struct fake {
    int which; /* LEDGER_DEFAULT / LEDGER_FALLBACK */
    struct http_server *srv;
    char url[64];
    unsigned delay_ms;
    bool failing;
    bool busy; /* answer 429 at once */
    bool health_failing;
    unsigned health_min_ms;
    unsigned posts, gets, health_polls;
    unsigned get_fail; /* answer 503 to this many GET /payments/{id} */
    struct pend pend[MAXPEND];
};

struct world {
    uv_loop_t loop;
    struct ledger *ledger;
    struct httpc *httpc;
    struct health *health;
    struct dispatch *d;
    struct fake fk[2];
    uint64_t seq;
    /* tracker, per payment number */
    unsigned pending[MAXPAY][2];
    bool recorded[MAXPAY][2];
    int64_t rec_at[MAXPAY][2];
    unsigned posts[MAXPAY][2];
    unsigned gets[MAXPAY][2]; /* GET /payments/{id} per payment and processor */
    unsigned violations;
    /* pair mode: the peer is node 2, we are node 1 */
    bool pair;
    bool listening; /* events we emit may reach the peer: mark shared */
    bool paused;
    uint64_t ack_upto; /* the peer holds our events up to this seq */
    uint64_t peer_seq;
    uint64_t sending_seq[MAXPAY][2];  /* seq of our last SENDING to each processor */
    unsigned gets_at_fb_post[MAXPAY]; /* default GETs seen when the fallback got its 1st POST */
    unsigned failed_ev[MAXPAY][2];    /* our FAILED events per payment and processor */
    int64_t peer_sent_at[MAXPAY][2];  /* requestedAt of the peer's SENDING, if any */
    unsigned gets_at_first_fail[MAXPAY][2];  /* GETs the processor had seen at our 1st FAILED */
    unsigned posts_at_first_fail[MAXPAY][2]; /* POSTs of this payment there at our 1st FAILED */
    unsigned gate_violations;
    unsigned paused_violations;
    char traceparent[MAXPAY][TRACE_TRACEPARENT_LEN + 1]; /* last one a POST brought, or "" */
};

static struct world *W;

static void make_id(unsigned i, uint8_t id[16])
{
    memset(id, 0, 16);
    id[0] = 0x5a;
    id[6] = 0x40; /* looks like a v4 UUID */
    id[8] = 0x80;
    id[14] = (uint8_t)(i >> 8);
    id[15] = (uint8_t)i;
}

static unsigned id_num(const uint8_t id[16])
{
    return ((unsigned)id[14] << 8) | id[15];
}

/* ---------------- fake processor ---------------- */

static void reply_pend(struct pend *pd)
{
    struct fake *f = pd->f;
    struct world *w = W;
    int other = 1 - f->which;
    (void)other;
    assert_true(w->pending[pd->i][f->which] > 0);
    w->pending[pd->i][f->which]--;
    int status;
    if (!pd->record) {
        status = 500;
    } else if (w->recorded[pd->i][f->which]) {
        status = 422;
    } else {
        if (w->recorded[pd->i][1 - f->which])
            w->violations++; /* recorded by both */
        w->recorded[pd->i][f->which] = true;
        w->rec_at[pd->i][f->which] = pd->at_ms;
        status = 200;
    }
    http_reply_json(pd->x, status, status == 200 ? "{\"message\":\"ok\"}" : "{}");
    pd->used = false;
}

static void on_pend_timer(uv_timer_t *t)
{
    struct pend *pd = t->data;
    reply_pend(pd);
}

static void fake_post(struct fake *f, struct http_exchange *x, const struct http_request *req)
{
    struct world *w = W;
    struct json_doc doc;
    struct slice s;
    bool esc;
    uint8_t id[16];
    int64_t cents, ns;
    if (json_parse(&doc, req->body.ptr, req->body.len) != 0 ||
        !json_string(&doc, json_member(&doc, 0, "correlationId"), &s, &esc) ||
        uuid_parse(s.ptr, s.len, id) != 0 ||
        !json_number(&doc, json_member(&doc, 0, "amount"), &s) ||
        money_parse_cents(s.ptr, s.len, &cents) != 0 ||
        !json_string(&doc, json_member(&doc, 0, "requestedAt"), &s, &esc) ||
        clock_parse_iso(s.ptr, s.len, 0, &ns) != 0) {
        http_reply_error(x, 400, "bad payment");
        return;
    }
    unsigned i = id_num(id);
    assert_true(i < MAXPAY);
    f->posts++;
    w->posts[i][f->which]++;
    struct slice tp;
    if (http_request_header(req, "traceparent", &tp) && tp.len == TRACE_TRACEPARENT_LEN) {
        memcpy(w->traceparent[i], tp.ptr, tp.len);
        w->traceparent[i][tp.len] = '\0';
    }
    if (w->pair) {
        struct payment *p = ledger_find(w->ledger, id);
        if (w->paused)
            w->paused_violations++;
        /* a shared payment reaches the fallback only once the peer holds our
         * SENDING, unless it re-sends the peer's own attempt (same T) */
        if (f->which == LEDGER_FALLBACK && p && p->shared &&
            w->sending_seq[i][LEDGER_FALLBACK] > w->ack_upto &&
            w->peer_sent_at[i][LEDGER_FALLBACK] != ns / 1000000)
            w->gate_violations++;
        if (f->which == LEDGER_FALLBACK && w->posts[i][f->which] == 1)
            w->gets_at_fb_post[i] = w->fk[LEDGER_DEFAULT].gets;
    }
    if (f->busy) {
        http_reply_json(x, 429, "{}");
        return;
    }
    /* The invariant under test: never at both processors at once. */
    if (w->pending[i][1 - f->which] > 0)
        w->violations++;
    struct pend *pd = NULL;
    for (unsigned k = 0; k < MAXPEND; k++)
        if (!f->pend[k].used) {
            pd = &f->pend[k];
            break;
        }
    assert_non_null(pd);
    pd->used = true;
    pd->x = x;
    pd->i = i;
    pd->record = !f->failing;
    pd->at_ms = ns / 1000000;
    pd->cents = cents;
    w->pending[i][f->which]++;
    if (f->delay_ms == 0) {
        reply_pend(pd);
        return;
    }
    uv_timer_start(&pd->timer, on_pend_timer, f->delay_ms, 0);
}

static void fake_handle(struct http_exchange *x, const struct http_request *req, void *arg)
{
    struct fake *f = arg;
    struct world *w = W;
    char body[160];
    if (req->verb == HTTP_VERB_POST && slice_eq(req->path, "/payments")) {
        fake_post(f, x, req);
    } else if (req->verb == HTTP_VERB_GET && slice_eq(req->path, "/payments/service-health")) {
        f->health_polls++;
        snprintf(body, sizeof(body), "{\"failing\":%s,\"minResponseTime\":%u}",
                 f->health_failing ? "true" : "false", f->health_min_ms);
        http_reply_json(x, 200, body);
    } else if (req->verb == HTTP_VERB_GET && req->path.len == 10 + UUID_TEXT_LEN) {
        uint8_t id[16];
        f->gets++;
        if (w->pair && w->paused)
            w->paused_violations++;
        if (f->get_fail > 0) {
            f->get_fail--;
            http_reply_error(x, 503, "try later");
            return;
        }
        if (uuid_parse(req->path.ptr + 10, UUID_TEXT_LEN, id) != 0) {
            http_reply_error(x, 400, "bad id");
            return;
        }
        unsigned i = id_num(id);
        if (i < MAXPAY)
            w->gets[i][f->which]++;
        if (i >= MAXPAY || !w->recorded[i][f->which]) {
            http_reply_error(x, 404, "not found");
            return;
        }
        char at[CLOCK_ISO_LEN + 1], idtxt[UUID_TEXT_LEN + 1];
        clock_format_iso_ms(w->rec_at[i][f->which], at);
        at[CLOCK_ISO_LEN] = 0;
        uuid_format(id, idtxt);
        idtxt[UUID_TEXT_LEN] = 0;
        snprintf(body, sizeof(body),
                 "{\"correlationId\":\"%s\",\"amount\":19.90,\"requestedAt\":\"%s\"}", idtxt, at);
        http_reply_json(x, 200, body);
    } else {
        http_reply_error(x, 404, "no route");
    }
}

static void fake_start(struct fake *f, int which)
{
    memset(f, 0, sizeof(*f));
    f->which = which;
    struct http_server_config cfg;
    http_server_config_default(&cfg);
    f->srv = http_server_new(&W->loop, &cfg, fake_handle, f);
    assert_non_null(f->srv);
    assert_int_equal(http_server_listen_tcp(f->srv, "127.0.0.1", 0), 0);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", http_server_port(f->srv));
    for (unsigned k = 0; k < MAXPEND; k++) {
        f->pend[k].f = f;
        uv_timer_init(&W->loop, &f->pend[k].timer);
        f->pend[k].timer.data = &f->pend[k];
    }
}

/* ---------------- world ---------------- */

/* Our events, as node_emit() makes them (origin 1, marks shared when the
 * peer listens). */
static int test_emit(void *arg, struct event *ev, struct payment **out)
{
    struct world *w = arg;
    ev->origin = 1;
    ev->seq = w->seq + 1;
    struct payment *p = NULL;
    int rv = ledger_apply(w->ledger, ev, &p);
    if (out)
        *out = p;
    if (rv == 0) {
        w->seq = ev->seq;
        if (p && w->listening)
            p->shared = 1;
        if (ev->type == EVENT_SENDING && id_num(ev->id) < MAXPAY)
            w->sending_seq[id_num(ev->id)][ev->processor] = ev->seq;
        if (ev->type == EVENT_FAILED && id_num(ev->id) < MAXPAY &&
            w->failed_ev[id_num(ev->id)][ev->processor]++ == 0) {
            w->gets_at_first_fail[id_num(ev->id)][ev->processor] = w->fk[ev->processor].gets;
            w->posts_at_first_fail[id_num(ev->id)][ev->processor] =
                w->posts[id_num(ev->id)][ev->processor];
        }
    }
    return rv;
}

/* An event of the peer (node 2), as peer.c applies it. */
static struct payment *peer_apply(struct world *w, enum event_type type, unsigned i, int proc,
                                  int64_t at_ms)
{
    struct event ev = {.type = type,
                       .origin = 2,
                       .seq = ++w->peer_seq,
                       .processor = (uint8_t)proc,
                       .at_ms = at_ms,
                       .amount_cents = 1990};
    make_id(i, ev.id);
    struct payment *p = NULL;
    assert_int_equal(ledger_apply(w->ledger, &ev, &p), 0);
    assert_non_null(p);
    p->shared = 1;
    if (type == EVENT_SENDING)
        w->peer_sent_at[i][proc] = at_ms;
    return p;
}

static bool pair_acked(void *arg, uint64_t seq)
{
    return seq <= ((struct world *)arg)->ack_upto;
}

static bool pair_listening(void *arg)
{
    return ((struct world *)arg)->listening;
}

static bool pair_paused(void *arg)
{
    return ((struct world *)arg)->paused;
}

static void world_pair(struct world *w)
{
    struct dispatch_pair pair = {.self_id = 1,
                                 .acked = pair_acked,
                                 .listening = pair_listening,
                                 .paused = pair_paused,
                                 .arg = w};
    w->pair = true;
    dispatch_set_pair(w->d, &pair);
}

/* Acknowledges everything we emitted so far, as the peer's batch would. */
static void peer_acks_all(struct world *w)
{
    w->ack_upto = w->seq;
    dispatch_kick(w->d);
}

static void set_checker_view(struct world *w, int proc, bool failing)
{
    health_view_checker(health_view_of(w->health), proc, failing, 0, uv_now(&w->loop), true);
}

struct opts {
    unsigned timeout_ms;
    unsigned margin_ms;
    unsigned queue;
    bool checker;
};

static void world_up(struct world *w, const struct opts *o)
{
    memset(w, 0, sizeof(*w));
    W = w;
    assert_int_equal(uv_loop_init(&w->loop), 0);
    w->ledger = ledger_new(4096);
    assert_non_null(w->ledger);
    struct httpc_config hc;
    httpc_config_default(&hc);
    hc.max_handles = 600;
    w->httpc = httpc_new(&w->loop, &hc);
    assert_non_null(w->httpc);
    fake_start(&w->fk[0], LEDGER_DEFAULT);
    fake_start(&w->fk[1], LEDGER_FALLBACK);

    struct health_config hcfg;
    health_config_default(&hcfg);
    hcfg.url[0] = w->fk[0].url;
    hcfg.url[1] = w->fk[1].url;
    w->health = health_new(&w->loop, &hcfg, w->httpc);
    assert_non_null(w->health);
    health_set_checker(w->health, o->checker);
    health_start(w->health);

    struct dispatch_config dcfg;
    dispatch_config_default(&dcfg);
    dcfg.url[0] = w->fk[0].url;
    dcfg.url[1] = w->fk[1].url;
    dcfg.queue_capacity = o->queue ? o->queue : 2048;
    dcfg.timeout_ms = o->timeout_ms ? o->timeout_ms : 5000;
    dcfg.confirm_margin_ms = o->margin_ms ? o->margin_ms : 300;
    dcfg.retry_backoff_ms = 50;
    dcfg.retry_backoff_max_ms = 200;
    dcfg.stop_timeout_ms = 3000;
    w->d = dispatch_new(&w->loop, &dcfg, w->ledger, w->health, w->httpc, test_emit, w);
    assert_non_null(w->d);
}

static void on_closed_noop(void *arg)
{
}

static void on_srv_closed(struct http_server *s, void *arg)
{
}

static void world_down(struct world *w)
{
    dispatch_free(w->d);
    health_close(w->health);
    httpc_close(w->httpc, on_closed_noop, NULL);
    for (int p = 0; p < 2; p++) {
        for (unsigned k = 0; k < MAXPEND; k++)
            uv_close((uv_handle_t *)&w->fk[p].pend[k].timer, NULL);
        http_server_close(w->fk[p].srv, on_srv_closed, NULL);
    }
    assert_int_equal(uv_run(&w->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&w->loop), 0);
    ledger_free(w->ledger);
    W = NULL;
}

static struct payment *accept_payment(struct world *w, unsigned i, bool submit)
{
    struct event ev = {.type = EVENT_ACCEPTED, .amount_cents = 1990, .at_ms = clock_wall_ms()};
    make_id(i, ev.id);
    struct payment *p = NULL;
    assert_int_equal(test_emit(w, &ev, &p), 0);
    if (submit)
        assert_int_equal(dispatch_submit(w->d, p), 0);
    return p;
}

typedef bool pred_fn(struct world *w, void *arg);

/* Runs the loop until pred holds or timeout_ms (wall) passed. */
static bool run_until(struct world *w, pred_fn *pred, void *arg, unsigned timeout_ms)
{
    int64_t end = clock_wall_ms() + timeout_ms;
    while (clock_wall_ms() < end) {
        if (pred && pred(w, arg))
            return true;
        uv_run(&w->loop, UV_RUN_ONCE);
    }
    return pred ? pred(w, arg) : true;
}

static bool all_recorded(struct world *w, void *arg)
{
    size_t n = (size_t)(uintptr_t)arg;
    return ledger_count_state(w->ledger, LEDGER_RECORDED) >= n;
}

/* Every payment 0..n-1 recorded exactly once, on the processor the ledger
 * says, with the requestedAt the ledger says. Returns the count per processor. */
static void check_books(struct world *w, unsigned n, unsigned per_proc[2])
{
    per_proc[0] = per_proc[1] = 0;
    for (unsigned i = 0; i < n; i++) {
        uint8_t id[16];
        make_id(i, id);
        struct payment *p = ledger_find(w->ledger, id);
        assert_non_null(p);
        assert_int_equal(p->state, LEDGER_RECORDED);
        assert_false(w->recorded[i][0] && w->recorded[i][1]);
        assert_true(w->recorded[i][p->processor]);
        assert_false(w->recorded[i][1 - p->processor]);
        assert_int_equal(w->rec_at[i][p->processor], p->requested_at_ms);
        per_proc[p->processor]++;
    }
    assert_int_equal(w->violations, 0);
    struct ledger_totals t;
    ledger_summary(w->ledger, INT64_MIN, INT64_MAX, &t);
    assert_int_equal(t.count[0], per_proc[0]);
    assert_int_equal(t.count[1], per_proc[1]);
}

/* ---------------- tests ---------------- */

static void test_classify(void **state)
{
    assert_int_equal(dispatch_classify(HTTPC_OK, 200), DISPATCH_RECORDED);
    assert_int_equal(dispatch_classify(HTTPC_OK, 422), DISPATCH_RECORDED);
    assert_int_equal(dispatch_classify(HTTPC_OK, 500), DISPATCH_NOT_RECORDED);
    assert_int_equal(dispatch_classify(HTTPC_OK, 429), DISPATCH_NOT_RECORDED);
    assert_int_equal(dispatch_classify(HTTPC_NOT_SENT, 0), DISPATCH_NOT_RECORDED);
    assert_int_equal(dispatch_classify(HTTPC_UNKNOWN, 0), DISPATCH_UNKNOWN);
    assert_int_equal(dispatch_classify(HTTPC_OK, 502), DISPATCH_UNKNOWN);
    assert_int_equal(dispatch_classify(HTTPC_OK, 504), DISPATCH_UNKNOWN);
    assert_int_equal(dispatch_classify(HTTPC_OK, 400), DISPATCH_REJECTED);
    assert_int_equal(dispatch_classify(HTTPC_OK, 404), DISPATCH_REJECTED);
}

static void test_happy_path(void **state)
{
    struct world w;
    world_up(&w, &(struct opts){0});
    w.fk[0].delay_ms = 5;
    for (unsigned i = 0; i < 300; i++)
        accept_payment(&w, i, true);
    assert_true(run_until(&w, all_recorded, (void *)300, 10000));
    unsigned per[2];
    check_books(&w, 300, per);
    assert_int_equal(per[0], 300);
    for (unsigned i = 0; i < 300; i++)
        assert_int_equal(w.posts[i][0], 1);
    struct dispatch_stats st;
    dispatch_get_stats(w.d, &st);
    assert_int_equal(st.recorded[0], 300);
    assert_int_equal(st.sent[0], 300);
    assert_int_equal(st.queued + st.pinned + st.in_flight[0] + st.in_flight[1], 0);
    /* the same payment twice is refused; a recorded one too */
    uint8_t id[16];
    make_id(0, id);
    assert_int_equal(dispatch_submit(w.d, ledger_find(w.ledger, id)), -EINVAL);
    world_down(&w);
}

/* Tracing: a payment whose ACCEPTED carried a trace context has its attempt
 * as a CLIENT span, child of that context, named by the traceparent the
 * processor got, and its recording as an INTERNAL span; an untraced payment
 * sends no traceparent and makes no span. The context is given back once
 * recorded. */
static void test_traced_payment(void **state)
{
    struct world w;
    world_up(&w, &(struct opts){0});
    struct trace_config tc = {.ring_cap = 16};
    assert_int_equal(trace_sampler_parse("always_on", NULL, &tc.sampler), 0);
    struct tracer *t = trace_new(&tc);
    assert_non_null(t);
    assert_int_equal(ledger_traces_reserve(w.ledger, 4), 0);
    dispatch_set_tracer(w.d, t);

    struct event ev = {.type = EVENT_ACCEPTED,
                       .amount_cents = 1990,
                       .at_ms = clock_wall_ms(),
                       .trace_flags = EVENT_TRACE_SAMPLED};
    make_id(0, ev.id);
    for (int k = 0; k < 16; k++)
        ev.trace.trace_id[k] = (uint8_t)(0xa0 + k);
    for (int k = 0; k < 8; k++)
        ev.trace.span_id[k] = (uint8_t)(0x10 + k);
    struct payment *p = NULL;
    assert_int_equal(test_emit(&w, &ev, &p), 0);
    assert_int_equal(dispatch_submit(w.d, p), 0);
    accept_payment(&w, 1, true);
    assert_true(run_until(&w, all_recorded, (void *)2, 5000));

    assert_string_equal(w.traceparent[1], "");
    assert_int_equal(trace_pending(t), 2);
    const struct trace_span *att = trace_peek(t, 0), *rec = trace_peek(t, 1);
    assert_string_equal(att->name, "processor POST");
    assert_int_equal(att->kind, TRACE_KIND_CLIENT);
    assert_memory_equal(att->ctx.trace_id, ev.trace.trace_id, 16);
    assert_memory_equal(att->parent_span_id, ev.trace.span_id, 8);
    char want[TRACE_TRACEPARENT_LEN + 1];
    trace_format_traceparent(&att->ctx, want);
    assert_string_equal(w.traceparent[0], want);
    assert_int_equal(att->nattrs, 4);
    assert_string_equal(att->attrs[0].s, "default");
    assert_string_equal(att->attrs[1].s, "recorded");
    assert_true(att->attrs[2].is_int && att->attrs[2].i == 200);
    assert_true(att->attrs[3].is_int && att->attrs[3].i >= 0);
    assert_int_equal(att->status, TRACE_STATUS_UNSET);
    assert_string_equal(rec->name, "payment recorded");
    assert_int_equal(rec->kind, TRACE_KIND_INTERNAL);
    assert_memory_equal(rec->parent_span_id, ev.trace.span_id, 8);
    assert_string_equal(rec->attrs[1].s, "recorded");
    struct ledger_trace_stats ts;
    ledger_trace_stats(w.ledger, &ts);
    assert_int_equal(ts.used, 0);
    world_down(&w);
    trace_free(t);
}

static void test_default_500_goes_to_fallback(void **state)
{
    struct world w;
    world_up(&w, &(struct opts){0});
    w.fk[0].failing = true;
    w.fk[0].delay_ms = 20;
    for (unsigned i = 0; i < 200; i++)
        accept_payment(&w, i, true);
    assert_true(run_until(&w, all_recorded, (void *)200, 10000));
    unsigned per[2];
    check_books(&w, 200, per);
    assert_int_equal(per[1], 200);
    struct dispatch_stats st;
    dispatch_get_stats(w.d, &st);
    assert_true(st.failed[0] > 0);
    assert_int_equal(st.failed[0], w.fk[0].posts);
    /* once known failing, the default is only probed, not flooded */
    unsigned before = w.fk[0].posts;
    for (unsigned i = 200; i < 400; i++)
        accept_payment(&w, i, true);
    assert_true(run_until(&w, all_recorded, (void *)400, 10000));
    check_books(&w, 400, per);
    assert_int_equal(per[1], 400);
    assert_true(w.fk[0].posts - before <= 3);
    world_down(&w);
}

static void test_429_goes_to_fallback(void **state)
{
    struct world w;
    world_up(&w, &(struct opts){0});
    w.fk[0].busy = true;
    for (unsigned i = 0; i < 50; i++)
        accept_payment(&w, i, true);
    assert_true(run_until(&w, all_recorded, (void *)50, 10000));
    unsigned per[2];
    check_books(&w, 50, per);
    assert_int_equal(per[1], 50);
    world_down(&w);
}

/* The first attempts time out (fate unknown) but are recorded later by the
 * default; the default then fails every retry. The payments must stay pinned
 * to the default and be found there by GET, never sent to the fallback. */
static void test_unknown_then_500_is_confirmed_not_moved(void **state)
{
    struct world w;
    world_up(&w, &(struct opts){.timeout_ms = 300, .margin_ms = 300});
    w.fk[0].delay_ms = 700;
    for (unsigned i = 0; i < 20; i++)
        accept_payment(&w, i, true);
    /* wait until all 20 reached the default, then make it fail fast */
    int64_t end = clock_wall_ms() + 3000;
    while (w.fk[0].posts < 20 && clock_wall_ms() < end)
        uv_run(&w.loop, UV_RUN_ONCE);
    assert_int_equal(w.fk[0].posts, 20);
    w.fk[0].failing = true;
    w.fk[0].delay_ms = 0;
    assert_true(run_until(&w, all_recorded, (void *)20, 15000));
    unsigned per[2];
    check_books(&w, 20, per);
    assert_int_equal(per[0], 20);
    assert_int_equal(w.fk[1].posts, 0);
    struct dispatch_stats st;
    dispatch_get_stats(w.d, &st);
    assert_int_equal(st.unknown[0] >= 20, 1);
    assert_true(st.confirms[0] >= 20);
    assert_int_equal(st.failed[0], 0);
    world_down(&w);
}

/* Unknown fate, the processor still usable (two timeouts: below the error
 * threshold) and now fast: the first action is a GET, which finds nothing yet
 * (the attempt is still inside the processor), then the retry goes to the
 * same processor with the same requestedAt and resolves it (200 or 422). */
static void test_unknown_then_retry_same_requested_at(void **state)
{
    struct world w;
    world_up(&w, &(struct opts){.timeout_ms = 300, .margin_ms = 5000});
    w.fk[0].delay_ms = 1500;
    for (unsigned i = 0; i < 2; i++)
        accept_payment(&w, i, true);
    int64_t end = clock_wall_ms() + 3000;
    while (w.fk[0].posts < 2 && clock_wall_ms() < end)
        uv_run(&w.loop, UV_RUN_ONCE);
    w.fk[0].delay_ms = 0;
    assert_true(run_until(&w, all_recorded, (void *)2, 10000));
    unsigned per[2];
    check_books(&w, 2, per); /* checks the ledger's requestedAt equals the record's */
    assert_int_equal(per[0], 2);
    assert_int_equal(w.fk[1].posts, 0);
    for (unsigned i = 0; i < 2; i++) {
        assert_int_equal(w.posts[i][0], 2); /* the first attempt and one retry */
        assert_true(w.gets[i][0] >= 1);     /* asked before re-POSTing */
    }
    struct dispatch_stats st;
    dispatch_get_stats(w.d, &st);
    assert_int_equal(st.unknown[0], 2);
    assert_int_equal(st.retries[0], 2);
    assert_true(st.confirms[0] >= 2);
    assert_int_equal(st.failed[0], 0);
    world_down(&w);
}

/* Unknown fate (timeout) on the default, which then answers 500 to every POST
 * and is known failing (checker), but records the first attempts after their
 * delay (the client being gone does not stop it). The payments are found by
 * GET /payments/{id} with the record's requestedAt, never re-POSTed while the
 * default is known failing. The margin is 60 s: a GET at the settle time
 * cannot happen within this test, so finding them at all proves they were
 * found early. */
static void test_unknown_then_failing_found_by_get(void **state)
{
    struct world w;
    world_up(&w, &(struct opts){.timeout_ms = 300, .margin_ms = 60000});
    w.fk[0].delay_ms = 700;
    for (unsigned i = 0; i < 10; i++)
        accept_payment(&w, i, true);
    int64_t end = clock_wall_ms() + 3000;
    while (w.fk[0].posts < 10 && clock_wall_ms() < end)
        uv_run(&w.loop, UV_RUN_ONCE);
    assert_int_equal(w.fk[0].posts, 10);
    w.fk[0].failing = true; /* POSTs arriving from now on: 500 */
    w.fk[0].delay_ms = 0;
    set_checker_view(&w, LEDGER_DEFAULT, true);
    assert_true(run_until(&w, all_recorded, (void *)10, 10000));
    unsigned per[2];
    check_books(&w, 10, per); /* the ledger's requestedAt is the record's */
    assert_int_equal(per[0], 10);
    for (unsigned i = 0; i < 10; i++) {
        assert_int_equal(w.posts[i][0], 1); /* no re-POST while known failing */
        assert_int_equal(w.posts[i][1], 0);
        assert_true(w.gets[i][0] >= 1);
        assert_int_equal(w.failed_ev[i][0], 0);
    }
    struct dispatch_stats st;
    dispatch_get_stats(w.d, &st);
    assert_int_equal(st.unknown[0], 10);
    assert_int_equal(st.retries[0], 0);
    assert_int_equal(st.sent[0], 10);
    assert_int_equal(st.failed[0], 0);
    assert_int_equal(st.recorded[0], 10);
    assert_int_equal(st.confirms[0], w.fk[0].gets);
    assert_int_equal(st.pinned + st.queued + st.in_flight[0] + st.in_flight[1], 0);
    world_down(&w);
}

/* Unknown fate, the default recorded nothing and is known failing: no
 * re-POST while pinned, GETs repeated (404 before the settle time keeps it
 * pinned), and only the GET after the settle time releases it (FAILED), then
 * it moves to the fallback: recorded exactly once overall. */
static void test_unknown_absent_failing_gets_until_settled(void **state)
{
    struct world w;
    world_up(&w, &(struct opts){.timeout_ms = 300, .margin_ms = 300});
    w.fk[0].delay_ms = 700;
    w.fk[0].failing = true; /* arrivals record nothing */
    for (unsigned i = 0; i < 10; i++)
        accept_payment(&w, i, true);
    int64_t end = clock_wall_ms() + 3000;
    while (w.fk[0].posts < 10 && clock_wall_ms() < end)
        uv_run(&w.loop, UV_RUN_ONCE);
    assert_int_equal(w.fk[0].posts, 10);
    w.fk[0].delay_ms = 0;
    set_checker_view(&w, LEDGER_DEFAULT, true);
    assert_true(run_until(&w, all_recorded, (void *)10, 15000));
    unsigned per[2];
    check_books(&w, 10, per); /* never recorded by both */
    assert_int_equal(per[1], 10);
    for (unsigned i = 0; i < 10; i++) {
        assert_int_equal(w.posts_at_first_fail[i][0], 1); /* no re-POST while pinned */
        assert_true(w.failed_ev[i][0] >= 1);              /* later ones: probes of the default */
        assert_true(w.gets[i][0] >= 2);                   /* early 404s, then the settling one */
        assert_int_equal(w.posts[i][1], 1);
        assert_false(w.recorded[i][0]);
    }
    struct dispatch_stats st;
    dispatch_get_stats(w.d, &st);
    assert_int_equal(st.unknown[0], 10);
    assert_int_equal(st.retries[0], 0);
    assert_int_equal(st.recorded[1], 10);
    assert_int_equal(st.pinned + st.queued + st.in_flight[0] + st.in_flight[1], 0);
    world_down(&w);
}

/* Unknown fate and the processor did NOT record it: after the settle time the
 * GET says 404 and only then the payment moves to the fallback. */
static void test_unknown_then_404_moves(void **state)
{
    struct world w;
    world_up(&w, &(struct opts){.timeout_ms = 300, .margin_ms = 300});
    w.fk[0].delay_ms = 700;
    w.fk[0].failing = true; /* arrivals record nothing */
    for (unsigned i = 0; i < 10; i++)
        accept_payment(&w, i, true);
    int64_t end = clock_wall_ms() + 3000;
    while (w.fk[0].posts < 10 && clock_wall_ms() < end)
        uv_run(&w.loop, UV_RUN_ONCE);
    w.fk[0].delay_ms = 0;
    assert_true(run_until(&w, all_recorded, (void *)10, 15000));
    unsigned per[2];
    check_books(&w, 10, per);
    assert_int_equal(per[1], 10);
    struct dispatch_stats st;
    dispatch_get_stats(w.d, &st);
    assert_true(st.confirms[0] >= 10);
    assert_true(w.fk[0].gets >= 10);
    world_down(&w);
}

/* Both fail: nothing is lost, payments wait (held), then drain to the default
 * when it recovers. */
static void test_both_failing_hold_then_drain(void **state)
{
    struct world w;
    world_up(&w, &(struct opts){0});
    w.fk[0].failing = w.fk[1].failing = true;
    for (unsigned i = 0; i < 100; i++)
        accept_payment(&w, i, true);
    run_until(&w, NULL, NULL, 1500);
    assert_int_equal(ledger_count_state(w.ledger, LEDGER_RECORDED), 0);
    struct dispatch_stats st;
    dispatch_get_stats(w.d, &st);
    assert_true(st.queued + st.in_flight[0] + st.in_flight[1] == 100);
    assert_true(st.hold_episodes >= 1);
    /* held: only probes go out, a handful, not 100 per round */
    unsigned before = w.fk[0].posts + w.fk[1].posts;
    run_until(&w, NULL, NULL, 1000);
    unsigned during = w.fk[0].posts + w.fk[1].posts - before;
    assert_true(during <= 6);
    w.fk[0].failing = false;
    assert_true(run_until(&w, all_recorded, (void *)100, 10000));
    unsigned per[2];
    check_books(&w, 100, per);
    assert_int_equal(per[0], 100);
    dispatch_get_stats(w.d, &st);
    assert_true(st.held_ms > 0);
    world_down(&w);
}

/* A slow default (by the checker) sends everything to the fallback. */
static void test_checker_slow_default_uses_fallback(void **state)
{
    struct world w;
    world_up(&w, &(struct opts){.checker = true});
    w.fk[0].health_min_ms = 2000;
    run_until(&w, NULL, NULL, 300); /* first poll */
    assert_int_equal(w.fk[0].health_polls, 1);
    for (unsigned i = 0; i < 50; i++)
        accept_payment(&w, i, true);
    assert_true(run_until(&w, all_recorded, (void *)50, 10000));
    unsigned per[2];
    check_books(&w, 50, per);
    assert_int_equal(per[1], 50);
    assert_int_equal(w.fk[0].posts, 0); /* slow and fresh: not even probed */
    world_down(&w);
}

static void test_queue_limits_and_purge(void **state)
{
    struct world w;
    world_up(&w, &(struct opts){.queue = 64});
    w.fk[0].failing = w.fk[1].failing = true;
    w.fk[0].busy = w.fk[1].busy = true;
    unsigned ok = 0;
    for (unsigned i = 0; i < 100; i++) {
        struct payment *p = accept_payment(&w, i, false);
        if (!dispatch_has_room(w.d)) {
            assert_int_equal(dispatch_submit(w.d, p), -EAGAIN);
            continue;
        }
        assert_int_equal(dispatch_submit(w.d, p), 0);
        assert_int_equal(dispatch_submit(w.d, p), -EALREADY);
        ok++;
    }
    assert_int_equal(ok, 64);
    run_until(&w, NULL, NULL, 300);
    dispatch_purge(w.d);
    struct event ev = {.type = EVENT_PURGED, .epoch = 1};
    assert_int_equal(test_emit(&w, &ev, NULL), 0);
    struct dispatch_stats st;
    dispatch_get_stats(w.d, &st);
    assert_int_equal(st.queued + st.pinned, 0);
    /* after the purge the same ids can be accepted and processed again */
    w.fk[0].failing = w.fk[0].busy = false;
    memset(w.recorded, 0, sizeof(w.recorded));
    for (unsigned i = 0; i < 64; i++)
        accept_payment(&w, i, true);
    assert_true(run_until(&w, all_recorded, (void *)64, 10000));
    world_down(&w);
}

/* Start-up/takeover: SENDING payments are re-sent to their processor with
 * their requestedAt; ACCEPTED ones are queued. */
static void test_resume(void **state)
{
    struct world w;
    world_up(&w, &(struct opts){0});
    int64_t t0 = clock_wall_ms() - 500;
    for (unsigned i = 0; i < 20; i++) {
        struct payment *p = accept_payment(&w, i, false);
        if (i % 2 == 0) {
            struct event ev = {
                .type = EVENT_SENDING, .processor = LEDGER_FALLBACK, .at_ms = t0 + i};
            memcpy(ev.id, p->id, 16);
            assert_int_equal(test_emit(&w, &ev, NULL), 0);
        }
    }
    unsigned taken = 0;
    assert_int_equal(dispatch_resume_unrecorded(w.d, 2, &taken), 0);
    assert_int_equal(taken, 0); /* owner 2 has none */
    assert_int_equal(dispatch_resume_unrecorded(w.d, 1, &taken), 0);
    assert_int_equal(taken, 20);
    assert_int_equal(dispatch_resume_unrecorded(w.d, 1, &taken), 0);
    assert_int_equal(taken, 0); /* idempotent */
    assert_true(run_until(&w, all_recorded, (void *)20, 10000));
    unsigned per[2];
    check_books(&w, 20, per);
    assert_int_equal(per[1], 10);
    assert_int_equal(per[0], 10);
    for (unsigned i = 0; i < 20; i += 2) {
        assert_int_equal(w.rec_at[i][1], t0 + i);
        assert_int_equal(w.gets[i][1], 1); /* asked before re-sending: 404 */
        assert_int_equal(w.posts[i][1], 1);
    }
    world_down(&w);
}

static bool stopped_flag;
static void on_stopped(void *arg)
{
    stopped_flag = true;
}
static bool is_stopped(struct world *w, void *arg)
{
    return stopped_flag;
}

static void test_stop_waits_for_in_flight(void **state)
{
    struct world w;
    world_up(&w, &(struct opts){0});
    w.fk[0].delay_ms = 300;
    for (unsigned i = 0; i < 30; i++)
        accept_payment(&w, i, true);
    run_until(&w, NULL, NULL, 100);
    stopped_flag = false;
    dispatch_stop(w.d, on_stopped, NULL);
    assert_false(stopped_flag); /* never from inside the call */
    uint8_t id[16];
    make_id(999, id);
    struct payment *p = accept_payment(&w, 999, false);
    assert_int_equal(dispatch_submit(w.d, p), -ESHUTDOWN);
    assert_true(run_until(&w, is_stopped, NULL, 5000));
    /* what was in flight finished and was recorded */
    assert_int_equal(ledger_count_state(w.ledger, LEDGER_RECORDED), 30);
    world_down(&w);
}

static struct payment *pay_of(struct world *w, unsigned i)
{
    uint8_t id[16];
    make_id(i, id);
    return ledger_find(w->ledger, id);
}

static bool is_recorded(struct world *w, void *arg)
{
    struct payment *p = pay_of(w, (unsigned)(uintptr_t)arg);
    return p && p->state == LEDGER_RECORDED;
}

static bool awaiting_ack(struct world *w, void *arg)
{
    struct dispatch_stats st;
    dispatch_get_stats(w->d, &st);
    return st.awaiting_ack >= (uintptr_t)arg;
}

static void check_pair_clean(struct world *w)
{
    assert_int_equal(w->violations, 0);
    assert_int_equal(w->gate_violations, 0);
    assert_int_equal(w->paused_violations, 0);
}

/* 422: the processor holds it, maybe with another requestedAt. Dispatch asks
 * GET /payments/{id} and records the record's requestedAt; a GET that fails
 * is asked again, the payment never moves and is never re-POSTed. */
static void test_422_confirms_record_time(void **state)
{
    struct world w;
    world_up(&w, &(struct opts){0});
    int64_t t0 = clock_wall_ms() - 1234, t1 = clock_wall_ms() - 777;
    w.recorded[0][0] = true; /* as if the dead owner's attempt had landed */
    w.rec_at[0][0] = t0;
    accept_payment(&w, 0, true);
    assert_true(run_until(&w, is_recorded, (void *)0, 5000));
    assert_int_equal(pay_of(&w, 0)->requested_at_ms, t0);
    struct dispatch_stats st;
    dispatch_get_stats(w.d, &st);
    assert_int_equal(st.duplicates[0], 1);
    assert_int_equal(st.confirms[0], 1);
    assert_int_equal(w.posts[0][0], 1);

    /* the GET fails three times first */
    w.recorded[1][0] = true;
    w.rec_at[1][0] = t1;
    w.fk[0].get_fail = 3;
    unsigned gets0 = w.fk[0].gets;
    accept_payment(&w, 1, true);
    assert_true(run_until(&w, is_recorded, (void *)1, 10000));
    assert_int_equal(pay_of(&w, 1)->requested_at_ms, t1);
    assert_int_equal(pay_of(&w, 1)->processor, LEDGER_DEFAULT);
    assert_int_equal(w.fk[0].gets - gets0, 4);
    assert_int_equal(w.posts[1][0], 1); /* only GETs after the 422 */
    assert_int_equal(w.fk[1].posts, 0);
    unsigned per[2];
    check_books(&w, 2, per);
    world_down(&w);
}

/* (a) A shared payment routed to the fallback waits for the peer's ack of its
 * SENDING; an unshared one goes at once. */
static void test_pair_gate_fallback(void **state)
{
    struct world w;
    world_up(&w, &(struct opts){0});
    world_pair(&w);
    w.fk[0].failing = true; /* probes of the default record nothing */
    set_checker_view(&w, LEDGER_DEFAULT, true);
    w.listening = true;
    accept_payment(&w, 0, true); /* shared */
    w.listening = false;
    accept_payment(&w, 1, true); /* never reached the peer */
    assert_int_equal(pay_of(&w, 0)->shared, 1);
    assert_int_equal(pay_of(&w, 1)->shared, 0);
    assert_true(run_until(&w, is_recorded, (void *)1, 5000));
    assert_int_equal(pay_of(&w, 1)->processor, LEDGER_FALLBACK);
    assert_true(run_until(&w, awaiting_ack, (void *)1, 5000));
    run_until(&w, NULL, NULL, 300);
    assert_int_equal(w.posts[0][1], 0);
    struct payment *p = pay_of(&w, 0);
    assert_int_equal(p->state, LEDGER_SENDING);
    assert_int_equal(p->processor, LEDGER_FALLBACK);
    struct dispatch_stats st;
    dispatch_get_stats(w.d, &st);
    assert_int_equal(st.awaiting_ack, 1);
    assert_int_equal(st.gated[1], 1);
    assert_int_equal(st.gated[0], 0);
    int64_t t = p->requested_at_ms;
    peer_acks_all(&w);
    assert_true(run_until(&w, is_recorded, (void *)0, 5000));
    assert_int_equal(w.posts[0][1], 1);
    assert_int_equal(pay_of(&w, 0)->requested_at_ms, t); /* the T of the SENDING */
    unsigned per[2];
    check_books(&w, 2, per);
    assert_int_equal(per[1], 2);
    check_pair_clean(&w);
    world_down(&w);
}

/* Makes payment i ACCEPTED with the fallback's failed bit, as after a 500
 * from the fallback. */
static void fallback_failed(struct world *w, unsigned i)
{
    struct payment *p = accept_payment(w, i, false);
    struct event ev = {
        .type = EVENT_SENDING, .processor = LEDGER_FALLBACK, .at_ms = clock_wall_ms()};
    memcpy(ev.id, p->id, 16);
    assert_int_equal(test_emit(w, &ev, NULL), 0);
    ev.type = EVENT_FAILED;
    assert_int_equal(test_emit(w, &ev, NULL), 0);
    assert_int_equal(p->state, LEDGER_ACCEPTED);
    assert_true(p->failed & (1u << LEDGER_FALLBACK));
    assert_int_equal(dispatch_submit(w->d, p), 0);
}

/* (b) Leaving a fallback pin for the default waits for the ack when shared;
 * default-bound attempts otherwise go at once. */
static void test_pair_gate_leaving_fallback_pin(void **state)
{
    struct world w;
    world_up(&w, &(struct opts){0});
    world_pair(&w);
    w.listening = true;
    fallback_failed(&w, 0);      /* shared, leaves a fallback pin */
    accept_payment(&w, 1, true); /* shared, plain default-bound: not gated */
    w.listening = false;
    fallback_failed(&w, 2); /* unshared: not gated */
    assert_true(run_until(&w, is_recorded, (void *)1, 5000));
    assert_true(run_until(&w, is_recorded, (void *)2, 5000));
    run_until(&w, NULL, NULL, 300);
    assert_int_equal(w.posts[0][0], 0);
    assert_int_equal(w.posts[0][1], 0);
    struct dispatch_stats st;
    dispatch_get_stats(w.d, &st);
    assert_int_equal(st.awaiting_ack, 1);
    assert_int_equal(st.gated[0], 1);
    peer_acks_all(&w);
    assert_true(run_until(&w, is_recorded, (void *)0, 5000));
    assert_int_equal(w.posts[0][0], 1);
    unsigned per[2];
    check_books(&w, 3, per);
    assert_int_equal(per[0], 3);
    check_pair_clean(&w);
    world_down(&w);
}

/* (c) Payments the peer took over are dropped, never sent: queued ones, and a
 * pinned one when it wakes up. */
static void test_pair_ownership(void **state)
{
    struct world w;
    world_up(&w, &(struct opts){.timeout_ms = 300, .margin_ms = 300});
    world_pair(&w);
    w.fk[0].delay_ms = 5;
    for (unsigned i = 0; i < 10; i++)
        accept_payment(&w, i, true);
    /* the peer took 3 over (sending it) and 5 (sent, failed: ACCEPTED, its own) */
    int64_t t = clock_wall_ms();
    peer_apply(&w, EVENT_SENDING, 3, LEDGER_DEFAULT, t);
    peer_apply(&w, EVENT_SENDING, 5, LEDGER_FALLBACK, t);
    struct payment *p5 = peer_apply(&w, EVENT_FAILED, 5, LEDGER_FALLBACK, 0);
    assert_int_equal(p5->state, LEDGER_ACCEPTED);
    assert_int_equal(p5->owner, 2);
    run_until(&w, NULL, NULL, 500);
    for (unsigned i = 0; i < 10; i++) {
        if (i == 3 || i == 5) {
            assert_int_equal(w.posts[i][0] + w.posts[i][1], 0);
            continue;
        }
        assert_true(is_recorded(&w, (void *)(uintptr_t)i));
    }
    struct dispatch_stats st;
    dispatch_get_stats(w.d, &st);
    assert_int_equal(st.dropped, 2);
    assert_int_equal(st.queued, 0);

    /* a pinned payment (fate unknown) that the peer claims meanwhile */
    w.fk[0].delay_ms = 700;
    accept_payment(&w, 20, true);
    int64_t end = clock_wall_ms() + 3000;
    while (w.posts[20][0] == 0 && clock_wall_ms() < end)
        uv_run(&w.loop, UV_RUN_ONCE);
    assert_int_equal(w.posts[20][0], 1);
    struct payment *p = pay_of(&w, 20);
    peer_apply(&w, EVENT_SENDING, 20, LEDGER_DEFAULT, p->requested_at_ms);
    unsigned gets = w.fk[0].gets;
    run_until(&w, NULL, NULL, 1500);
    assert_int_equal(w.posts[20][0], 1); /* no retry */
    assert_int_equal(w.posts[20][1], 0);
    assert_int_equal(w.fk[0].gets, gets); /* no confirm either: not ours */
    dispatch_get_stats(w.d, &st);
    assert_int_equal(st.dropped, 3);
    assert_int_equal(st.unknown[0], 1);
    assert_int_equal(st.pinned + st.queued + st.in_flight[0] + st.in_flight[1], 0);
    assert_int_equal(p->owner, 2);
    check_pair_clean(&w);
    world_down(&w);
}

static bool default_gets(struct world *w, void *arg)
{
    return w->fk[0].gets >= (uintptr_t)arg;
}

/* (d) Takeover: the peer's ACCEPTED payment goes to the default only, held
 * while the default is unusable even though the policy picks the fallback;
 * 500s do not release it; only a GET 404 does, and then, being shared, it
 * reaches the fallback only after the ack. The peer's SENDING payment is
 * re-sent to its processor with its requestedAt, never gated. */
static void test_pair_takeover_accepted(void **state)
{
    struct world w;
    world_up(&w, &(struct opts){.margin_ms = 300});
    world_pair(&w);
    w.fk[0].failing = true; /* POST -> 500, and GET -> 404 (nothing recorded) */
    set_checker_view(&w, LEDGER_DEFAULT, true);
    int64_t t1 = clock_wall_ms() - 300;
    peer_apply(&w, EVENT_ACCEPTED, 0, 0, clock_wall_ms());
    peer_apply(&w, EVENT_ACCEPTED, 1, 0, clock_wall_ms());
    peer_apply(&w, EVENT_SENDING, 1, LEDGER_FALLBACK, t1);
    accept_payment(&w, 2, true); /* ours, unshared: the policy sends it to the fallback */
    unsigned taken = 0;
    assert_int_equal(dispatch_resume_unrecorded(w.d, 2, &taken), 0);
    assert_int_equal(taken, 2);
    assert_true(run_until(&w, is_recorded, (void *)1, 5000));
    assert_true(run_until(&w, is_recorded, (void *)2, 5000));
    assert_int_equal(pay_of(&w, 1)->requested_at_ms, t1);
    assert_int_equal(pay_of(&w, 1)->processor, LEDGER_FALLBACK);
    assert_int_equal(pay_of(&w, 2)->processor, LEDGER_FALLBACK);
    run_until(&w, NULL, NULL, 500);
    assert_int_equal(w.posts[0][0] + w.posts[0][1], 0); /* held for the default */
    struct dispatch_stats st;
    dispatch_get_stats(w.d, &st);
    assert_int_equal(st.takeover_queued, 1);
    assert_int_equal(pay_of(&w, 0)->owner, 2);

    /* the default looks usable again (it still answers 500) */
    set_checker_view(&w, LEDGER_DEFAULT, false);
    assert_true(run_until(&w, default_gets, (void *)1, 5000));
    assert_true(w.posts[0][0] >= 1);
    assert_true(run_until(&w, awaiting_ack, (void *)1, 5000));
    struct payment *p = pay_of(&w, 0);
    assert_int_equal(p->state, LEDGER_SENDING);
    assert_int_equal(p->processor, LEDGER_FALLBACK);
    assert_int_equal(p->owner, 1);
    assert_true(p->failed & (1u << LEDGER_DEFAULT));
    run_until(&w, NULL, NULL, 300);
    assert_int_equal(w.posts[0][1], 0);
    peer_acks_all(&w);
    assert_true(run_until(&w, is_recorded, (void *)0, 5000));
    assert_int_equal(w.posts[0][1], 1);
    assert_true(w.gets_at_fb_post[0] >= 1); /* confirmed absent before it moved */
    dispatch_get_stats(w.d, &st);
    /* released by the GET only, despite the 500s before it */
    assert_true(w.failed_ev[0][0] >= 1);
    assert_true(w.gets_at_first_fail[0][0] >= 1);
    assert_true(w.posts[0][0] >= 1);
    assert_true(st.confirms[0] >= 1);
    unsigned per[2];
    check_books(&w, 3, per);
    assert_int_equal(per[1], 3);
    check_pair_clean(&w);
    world_down(&w);
}

/* (f) While paused nothing starts (POST or GET); answers to attempts in
 * flight are still handled; everything goes once resumed. */
static void test_pair_paused(void **state)
{
    struct world w;
    world_up(&w, &(struct opts){0});
    world_pair(&w);
    w.fk[0].delay_ms = 200;
    for (unsigned i = 0; i < 10; i++)
        accept_payment(&w, i, true);
    int64_t end = clock_wall_ms() + 3000;
    while (w.fk[0].posts < 10 && clock_wall_ms() < end)
        uv_run(&w.loop, UV_RUN_ONCE);
    assert_int_equal(w.fk[0].posts, 10);
    w.paused = true;
    for (unsigned i = 10; i < 60; i++)
        accept_payment(&w, i, true);
    /* a taken-over SENDING payment would claim and re-send: not while paused */
    peer_apply(&w, EVENT_ACCEPTED, 60, 0, clock_wall_ms());
    peer_apply(&w, EVENT_SENDING, 60, LEDGER_DEFAULT, clock_wall_ms() - 100);
    unsigned taken = 0;
    assert_int_equal(dispatch_resume_unrecorded(w.d, 2, &taken), 0);
    assert_int_equal(taken, 1);
    assert_true(run_until(&w, all_recorded, (void *)10, 3000));
    run_until(&w, NULL, NULL, 500);
    assert_int_equal(ledger_count_state(w.ledger, LEDGER_RECORDED), 10);
    assert_int_equal(w.fk[0].posts + w.fk[1].posts, 10);
    assert_int_equal(w.fk[0].gets + w.fk[1].gets, 0);
    assert_int_equal(pay_of(&w, 60)->owner, 2); /* not even claimed */
    w.paused = false;
    w.fk[0].delay_ms = 0;
    assert_true(run_until(&w, all_recorded, (void *)61, 5000));
    unsigned per[2];
    check_books(&w, 61, per);
    assert_int_equal(per[0], 61);
    check_pair_clean(&w);
    world_down(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_happy_path),
        cmocka_unit_test(test_traced_payment),
        cmocka_unit_test(test_default_500_goes_to_fallback),
        cmocka_unit_test(test_429_goes_to_fallback),
        cmocka_unit_test(test_unknown_then_500_is_confirmed_not_moved),
        cmocka_unit_test(test_unknown_then_retry_same_requested_at),
        cmocka_unit_test(test_unknown_then_failing_found_by_get),
        cmocka_unit_test(test_unknown_absent_failing_gets_until_settled),
        cmocka_unit_test(test_unknown_then_404_moves),
        cmocka_unit_test(test_both_failing_hold_then_drain),
        cmocka_unit_test(test_checker_slow_default_uses_fallback),
        cmocka_unit_test(test_queue_limits_and_purge),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_stop_waits_for_in_flight),
        cmocka_unit_test(test_422_confirms_record_time),
        cmocka_unit_test(test_pair_gate_fallback),
        cmocka_unit_test(test_pair_gate_leaving_fallback_pin),
        cmocka_unit_test(test_pair_ownership),
        cmocka_unit_test(test_pair_takeover_accepted),
        cmocka_unit_test(test_pair_paused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
