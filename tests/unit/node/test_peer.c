/* peer: two peers in this process on one private loop, talking over nng on
 * 127.0.0.1 and gossip's UDP on 127.0.0.1 port 0, with real ledgers. The
 * node around each peer is this file (its own seq, purge epoch, an emit that
 * applies and publishes); dispatch and health are faked at the module
 * boundary with -Wl,--wrap (tests/CMakeLists.txt). Every wait is bounded and
 * the loop must close with no handle left. What is checked is the stream and
 * repair logic of docs/REPLICATION.md, as the peer's own counters see it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/metrics.h"
#include "lib/money.h"
#include "lib/trace.h"
#include "node/dispatch.h"
#include "node/gossip.h"
#include "node/health.h"
#include "node/ledger.h"
#include "node/peer.h"
#include "node/peer_internal.h"
#include "promcheck.h"

#define KEY_A "test_peer key A: 32 bytes or more, not secret"
#define KEY_B "test_peer key B: 32 bytes or more, not secret"

/* One node as the peer sees it. */
struct side {
    struct peer *p;
    struct ledger *ledger;
    uint64_t seq;                    /* last seq of our events */
    uint64_t purge_epoch;            /* last PURGED epoch applied */
    char fake_dispatch, fake_health; /* what the fakes below are handed */
    bool checker;                    /* health_set_checker's last word */
    unsigned kicks, purges;          /* dispatch_kick, dispatch_purge calls */
    int nng_port;                    /* pub; rep on port + 1 */
    char nng[64], peer_nng[64];
    bool closed;
};

struct world {
    uv_loop_t loop;
    struct side s[2];
};

static struct world *the_world; /* the fakes find the side through it */

static struct side *side_of(const void *module)
{
    for (int i = 0; i < 2; i++) {
        struct side *s = &the_world->s[i];
        if (module == &s->fake_dispatch || module == &s->fake_health)
            return s;
    }
    fail_msg("unknown module %p", module);
    return NULL;
}

/* ---- fakes at the module boundary ---- */

void __wrap_dispatch_purge(struct dispatch *d);
void __wrap_dispatch_purge(struct dispatch *d)
{
    side_of(d)->purges++;
}

void __wrap_dispatch_kick(struct dispatch *d);
void __wrap_dispatch_kick(struct dispatch *d)
{
    side_of(d)->kicks++;
}

int __wrap_dispatch_resume_unrecorded(struct dispatch *d, uint8_t owner, unsigned *taken);
int __wrap_dispatch_resume_unrecorded(struct dispatch *d, uint8_t owner, unsigned *taken)
{
    (void)side_of(d);
    *taken = 0;
    return 0;
}

void __wrap_health_set_checker(struct health *h, bool checker);
void __wrap_health_set_checker(struct health *h, bool checker)
{
    side_of(h)->checker = checker;
}

bool __wrap_health_is_checker(const struct health *h);
bool __wrap_health_is_checker(const struct health *h)
{
    return side_of(h)->checker;
}

bool __wrap_health_local_result(const struct health *h, int p, bool *failing, uint32_t *min_ms,
                                uint32_t *age_ms);
bool __wrap_health_local_result(const struct health *h, int p, bool *failing, uint32_t *min_ms,
                                uint32_t *age_ms)
{
    return false;
}

void __wrap_health_apply_remote(struct health *h, int p, bool failing, uint32_t min_ms,
                                uint32_t age_ms);
void __wrap_health_apply_remote(struct health *h, int p, bool failing, uint32_t min_ms,
                                uint32_t age_ms)
{
}

/* ---- the node's side: callbacks and emit ---- */

static uint64_t cb_own_seq(void *arg)
{
    return ((struct side *)arg)->seq;
}

static uint64_t cb_purge_epoch(void *arg)
{
    return ((struct side *)arg)->purge_epoch;
}

static void cb_set_purge_epoch(void *arg, uint64_t epoch)
{
    ((struct side *)arg)->purge_epoch = epoch;
}

static bool cb_stopping(void *arg)
{
    return false;
}

static uint8_t id_of(const struct side *s)
{
    return (uint8_t)(s - the_world->s + 1);
}

/* node_emit's job: number, apply, publish. */
static uint64_t emit(struct side *s, struct event ev)
{
    ev.origin = id_of(s);
    ev.seq = s->seq + 1;
    assert_int_equal(ledger_apply(s->ledger, &ev, NULL), 0);
    s->seq = ev.seq;
    peer_publish(s->p, &ev);
    return ev.seq;
}

static void payment_id(uint8_t id[16], int side, int i)
{
    memset(id, 0, 16);
    id[0] = (uint8_t)side;
    id[14] = (uint8_t)(i >> 8);
    id[15] = (uint8_t)i;
}

static struct event accepted(int side, int i, int64_t cents)
{
    struct event ev = {.type = EVENT_ACCEPTED, .amount_cents = cents, .at_ms = clock_wall_ms()};
    payment_id(ev.id, side, i);
    return ev;
}

static struct event moved(int side, int i, enum event_type type, int processor, int64_t cents)
{
    struct event ev = {.type = type, .processor = (uint8_t)processor, .amount_cents = cents};
    ev.at_ms = clock_wall_ms();
    payment_id(ev.id, side, i);
    return ev;
}

/* ---- running the loop ---- */

typedef bool cond_fn(struct world *w);

/* Runs the loop until cond holds or timeout_ms passed; returns cond. The
 * peer's 20 ms tick keeps the loop turning. */
static bool run_until(struct world *w, cond_fn *cond, uint64_t timeout_ms)
{
    uv_update_time(&w->loop);
    uint64_t end = uv_now(&w->loop) + timeout_ms;
    while (!cond(w)) {
        if (uv_now(&w->loop) >= end)
            return false;
        uv_run(&w->loop, UV_RUN_ONCE);
    }
    return true;
}

static bool never(struct world *w)
{
    return false;
}

static void run_for(struct world *w, uint64_t ms)
{
    (void)run_until(w, never, ms);
}

/* Two consecutive TCP ports that were free a moment ago (pub, rep). */
static int free_port_pair(void)
{
    for (int tries = 0; tries < 100; tries++) {
        int fd[2] = {socket(AF_INET, SOCK_STREAM, 0), socket(AF_INET, SOCK_STREAM, 0)};
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        int port = -1;
        if (bind(fd[0], (struct sockaddr *)&a, sizeof(a)) == 0 &&
            getsockname(fd[0], (struct sockaddr *)&a, &len) == 0 && ntohs(a.sin_port) < 65000) {
            port = ntohs(a.sin_port);
            a.sin_port = htons((uint16_t)(port + 1));
            if (bind(fd[1], (struct sockaddr *)&a, sizeof(a)) != 0)
                port = -1;
        }
        close(fd[0]);
        close(fd[1]);
        if (port > 0)
            return port;
    }
    fail_msg("no free port pair");
    return -1;
}

struct side_opts {
    bool slow_lane;      /* PEER_FAST_LANE=0 */
    unsigned drop_every; /* PAYNODE_TEST_DROP_BATCHES */
    const char *key;     /* KEY_A unless set */
};

static void side_start(struct world *w, int i, const struct side_opts *o)
{
    struct side *s = &w->s[i];
    struct peer_config cfg = {
        .node_id = id_of(s),
        .nng_listen = s->nng,
        .peer_nng_url = s->peer_nng,
        .gossip_listen = "127.0.0.1:0",
        .peer_gossip = NULL, /* set below, once both ports are known */
        .key = o && o->key ? o->key : KEY_A,
        .fast_lane = !(o && o->slow_lane),
        .stream_flush_ms = 10,
        .test_drop_batches = o ? o->drop_every : 0,
    };
    struct peer_callbacks cbs = {
        .own_seq = cb_own_seq,
        .purge_epoch = cb_purge_epoch,
        .set_purge_epoch = cb_set_purge_epoch,
        .stopping = cb_stopping,
        .arg = s,
    };
    s->p = peer_new(&w->loop, &cfg, s->ledger, (struct dispatch *)(void *)&s->fake_dispatch,
                    (struct health *)(void *)&s->fake_health, &cbs);
    assert_non_null(s->p);
    assert_int_equal(peer_start(s->p), 0);
    /* Gossip on port 0: tell each started side where the other one is. */
    for (int j = 0; j < 2; j++) {
        struct side *me = &w->s[j], *other = &w->s[1 - j];
        if (!me->p || !other->p)
            continue;
        char addr[32];
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", gossip_port(other->p->gossip));
        assert_int_equal(gossip_set_peer(me->p->gossip, addr), 0);
    }
}

static bool both_ready(struct world *w)
{
    for (int i = 0; i < 2; i++) {
        const struct peer *p = w->s[i].p;
        if (!peer_caught_up(p) || !peer_alive(p) || !p->peer_ready)
            return false;
        if (!p->fast_on && !peer_listening(p))
            return false;
    }
    return true;
}

static void pair_start(struct world *w, const struct side_opts *a, const struct side_opts *b)
{
    side_start(w, 0, a);
    side_start(w, 1, b);
    assert_true(run_until(w, both_ready, 5000));
}

static int setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    assert_int_equal(uv_loop_init(&w->loop), 0);
    the_world = w;
    for (int i = 0; i < 2; i++) {
        w->s[i].ledger = ledger_new(1024);
        assert_non_null(w->s[i].ledger);
        w->s[i].nng_port = free_port_pair();
        snprintf(w->s[i].nng, sizeof(w->s[i].nng), "tcp://127.0.0.1:%d", w->s[i].nng_port);
    }
    for (int i = 0; i < 2; i++)
        snprintf(w->s[i].peer_nng, sizeof(w->s[i].peer_nng), "%s", w->s[1 - i].nng);
    *state = w;
    return 0;
}

static void on_closed(void *arg)
{
    ((struct side *)arg)->closed = true;
}

static bool all_closed(struct world *w)
{
    return (!w->s[0].p || w->s[0].closed) && (!w->s[1].p || w->s[1].closed);
}

static int teardown(void **state)
{
    struct world *w = *state;
    for (int i = 0; i < 2; i++)
        if (w->s[i].p)
            peer_close(w->s[i].p, on_closed, &w->s[i]);
    assert_true(run_until(w, all_closed, 5000));
    uv_run(&w->loop, UV_RUN_DEFAULT); /* whatever is closing still */
    assert_int_equal(uv_loop_close(&w->loop), 0);
    for (int i = 0; i < 2; i++) {
        assert_true(ledger_check(w->s[i].ledger));
        ledger_free(w->s[i].ledger);
    }
    the_world = NULL;
    free(w);
    return 0;
}

/* ---- conditions ---- */

static bool b_has_all_of_a(struct world *w)
{
    return w->s[1].p->applied == w->s[0].seq;
}

static bool a_has_all_of_b(struct world *w)
{
    return w->s[0].p->applied == w->s[1].seq;
}

static bool a_acked_all(struct world *w)
{
    return w->s[0].p->acked == w->s[0].seq;
}

/* ---- a held reply ---- */

static int replies;
static uint64_t replied_acked; /* the peer's ack when the reply went */

static void on_reply(struct http_exchange *x)
{
    replies++;
    replied_acked = the_world->s[0].p->acked;
}

static bool replied(struct world *w)
{
    return replies > 0;
}

/* Holds a reply on our event seq until the peer acknowledges it. */
static void hold_reply(struct world *w, uint64_t seq)
{
    replies = 0;
    peer_reply_when_acked(w->s[0].p, (struct http_exchange *)(void *)w, seq, on_reply, NULL);
}

/* ---- the tests ---- */

/* Events cross in order, both ways, and every payment ends in the state
 * its events lead to (a RECORDED applied before its ACCEPTED would fail). */
static void test_events_applied_in_order(void **state)
{
    struct world *w = *state;
    pair_start(w, NULL, NULL);
    enum { N = 200 };
    struct side *a = &w->s[0], *b = &w->s[1];
    for (int i = 0; i < N; i++)
        emit(a, accepted(1, i, 100 + i));
    for (int i = 0; i < N; i++)
        emit(a, moved(1, i, EVENT_SENDING, i % 2, 0));
    run_for(w, 5); /* some go out now, the rest in later batches */
    for (int i = 0; i < N; i += 2)
        emit(a, moved(1, i, EVENT_RECORDED, 0, 100 + i));
    emit(b, accepted(2, 0, 7));
    assert_true(run_until(w, b_has_all_of_a, 5000));
    assert_true(run_until(w, a_has_all_of_b, 5000));
    assert_true(run_until(w, a_acked_all, 5000));

    assert_int_equal(ledger_size(b->ledger), N + 1);
    for (int i = 0; i < N; i++) {
        uint8_t id[16];
        payment_id(id, 1, i);
        const struct payment *pay = ledger_find(b->ledger, id);
        assert_non_null(pay);
        assert_int_equal(pay->amount_cents, 100 + i);
        assert_int_equal(pay->owner, 1);
        assert_int_equal(pay->state, i % 2 == 0 ? LEDGER_RECORDED : LEDGER_SENDING);
        assert_int_equal(pay->processor, i % 2);
        assert_true(pay->shared);
    }
    assert_non_null(ledger_find(a->ledger, (uint8_t[16]){2}));
    assert_int_equal(b->p->st.events_in, a->seq);
    assert_int_equal(b->p->st.refused + b->p->st.apply_errors + b->p->st.decode_errors, 0);
    assert_int_equal(b->p->st.unauthentic, 0);
    assert_true(b->p->st.batches_in > 0);
    assert_true(a->kicks > 0); /* dispatch follows the acks */

    /* The counters, through the one Prometheus writer. */
    struct buf out;
    char fixed[64];
    buf_init(&out, fixed, sizeof(fixed));
    struct metrics m;
    metrics_init(&m, &out);
    peer_metrics(b->p, &m);
    assert_int_equal(metrics_error(&m), 0);
    char why[128];
    if (promcheck(out.ptr, out.len, why, sizeof(why)) != 0)
        fail_msg("%s", why);
    char line[96];
    snprintf(line, sizeof(line), "\npaynode_peer_applied_seq %llu\n", (unsigned long long)a->seq);
    assert_non_null(memmem(out.ptr, out.len, line, strlen(line)));
    const char *family = "# HELP paynode_peer_events_total ";
    assert_non_null(memmem(out.ptr, out.len, family, strlen(family)));
    snprintf(line, sizeof(line), "\npaynode_peer_events_total{dir=\"in\"} %llu\n",
             (unsigned long long)a->seq);
    assert_non_null(memmem(out.ptr, out.len, line, strlen(line)));
    buf_reset(&out);
}

/* A reply held on our event goes when the peer's ack arrives (the fast
 * lane's round trip), not when the hold expires. */
static void test_ack_releases_held_reply(void **state)
{
    struct world *w = *state;
    pair_start(w, NULL, NULL);
    struct side *a = &w->s[0], *b = &w->s[1];
    for (int i = 0; i < 20; i++) {
        uint64_t seq = emit(a, accepted(1, i, 500));
        hold_reply(w, seq);
        assert_int_equal(replies, 0); /* held: the peer does not hold it yet */
        assert_false(peer_acked(a->p, seq));
        assert_true(run_until(w, replied, 1000));
        assert_true(replied_acked >= seq);
        assert_true(peer_acked(a->p, seq));
        uint8_t id[16];
        payment_id(id, 1, i);
        assert_non_null(ledger_find(b->ledger, id)); /* the peer had it first */
    }
    assert_int_equal(a->p->st.replies_held, 20);
    assert_int_equal(a->p->st.replies_unacked, 0);
    assert_int_equal(a->p->ack_wait.count, 20); /* each wait is in the histogram */
    assert_true(a->p->ack_wait.sum_ns > 0);
    assert_true(a->p->st.datagrams_out > 0);
    assert_true(b->p->st.datagrams_in > 0);
}

/* Tracing: a traced ACCEPTED crosses to the peer, whose ledger keeps its
 * context (a takeover there continues the trace); a held reply with a parent
 * becomes a "peer ack wait" span, its child, once the ack arrives. */
static void test_traced_hold(void **state)
{
    struct world *w = *state;
    pair_start(w, NULL, NULL);
    struct side *a = &w->s[0], *b = &w->s[1];
    struct trace_config tc = {.ring_cap = 4};
    assert_int_equal(trace_sampler_parse("always_on", NULL, &tc.sampler), 0);
    struct tracer *t = trace_new(&tc);
    assert_non_null(t);
    peer_set_tracer(a->p, t);
    assert_int_equal(ledger_traces_reserve(b->ledger, 4), 0);

    struct trace_span post;
    trace_span_start(t, &post, "POST /payments", TRACE_KIND_SERVER, NULL, 0);
    struct event ev = accepted(1, 0, 500);
    ev.trace_flags = post.ctx.flags;
    memcpy(ev.trace.trace_id, post.ctx.trace_id, 16);
    memcpy(ev.trace.span_id, post.ctx.span_id, 8);
    uint64_t seq = emit(a, ev);
    replies = 0;
    peer_reply_when_acked(a->p, (struct http_exchange *)(void *)w, seq, on_reply, &post.ctx);
    assert_int_equal(replies, 0);
    assert_true(run_until(w, replied, 1000));

    assert_int_equal(trace_pending(t), 1);
    const struct trace_span *sp = trace_peek(t, 0);
    assert_string_equal(sp->name, "peer ack wait");
    assert_int_equal(sp->kind, TRACE_KIND_INTERNAL);
    assert_memory_equal(sp->ctx.trace_id, post.ctx.trace_id, 16);
    assert_memory_equal(sp->parent_span_id, post.ctx.span_id, 8);
    assert_string_equal(sp->attrs[0].s, "acked");
    assert_true(sp->attrs[1].is_int && sp->attrs[1].i == (int64_t)seq);
    assert_int_equal(sp->status, TRACE_STATUS_UNSET);

    uint8_t id[16], flags = 0;
    payment_id(id, 1, 0);
    struct payment *p = ledger_find(b->ledger, id);
    assert_non_null(p);
    const struct event_trace *kept = ledger_trace(b->ledger, p, &flags);
    assert_non_null(kept);
    assert_int_equal(flags, EVENT_TRACE_SAMPLED);
    assert_memory_equal(kept->trace_id, post.ctx.trace_id, 16);
    assert_memory_equal(kept->span_id, post.ctx.span_id, 8);
    peer_set_tracer(a->p, NULL);
    trace_free(t);
}

/* The receiver drops every third datagram and every third stream batch: the
 * events and the ack a lost datagram carried come on the stream, and no
 * reply goes before the peer holds the event. */
static void test_lost_datagram_covered_by_stream(void **state)
{
    struct world *w = *state;
    struct side_opts drop = {.drop_every = 3};
    pair_start(w, NULL, &drop);
    struct side *a = &w->s[0], *b = &w->s[1];
    enum { N = 30 };
    for (int i = 0; i < N; i++) {
        uint64_t seq = emit(a, accepted(1, i, 500));
        hold_reply(w, seq);
        assert_true(run_until(w, replied, 1000));
        assert_true(replied_acked >= seq);
    }
    assert_true(b->p->test_received_fast >= 3); /* so at least one datagram was dropped */
    assert_int_equal(a->p->st.replies_unacked, 0);
    assert_true(run_until(w, b_has_all_of_a, 2000));
    assert_int_equal(ledger_size(b->ledger), N);
}

/* Without the fast lane, a batch the receiver drops is a gap in the stream,
 * and a range repair brings the missing events. */
static void test_stream_gap_repaired_by_range(void **state)
{
    struct world *w = *state;
    struct side_opts a_opts = {.slow_lane = true};
    struct side_opts b_opts = {.slow_lane = true, .drop_every = 3};
    pair_start(w, &a_opts, &b_opts);
    struct side *a = &w->s[0], *b = &w->s[1];
    enum { N = 60 };
    for (int i = 0; i < N; i++) {
        emit(a, accepted(1, i, 100));
        run_for(w, 2); /* one batch per loop iteration */
    }
    assert_true(run_until(w, b_has_all_of_a, 5000));
    assert_true(run_until(w, a_acked_all, 5000));
    assert_true(b->p->st.gaps > 0);
    assert_true(b->p->st.range_repairs > 0);
    assert_int_equal(b->p->st.snapshots, 1); /* the start's only */
    assert_int_equal(ledger_size(b->ledger), N);
}

static bool a_caught_up(struct world *w)
{
    return peer_caught_up(w->s[0].p);
}

static bool b_caught_up_all(struct world *w)
{
    return peer_caught_up(w->s[1].p) && w->s[1].p->applied == w->s[0].seq;
}

/* A node that starts while its peer has a ledger walks the peer's ledger
 * (a snapshot), then follows the stream. */
static void test_fresh_peer_catches_up_by_snapshot(void **state)
{
    struct world *w = *state;
    struct side *a = &w->s[0], *b = &w->s[1];
    side_start(w, 0, NULL);
    /* Alone: caught up once gossip calls the silent peer dead. */
    assert_true(run_until(w, a_caught_up, 3000));
    enum { N = 40 };
    for (int i = 0; i < N; i++) {
        emit(a, accepted(1, i, 100 + i));
        if (i % 4 == 1)
            emit(a, moved(1, i, EVENT_SENDING, LEDGER_FALLBACK, 0));
        if (i % 4 == 2) {
            emit(a, moved(1, i, EVENT_SENDING, LEDGER_DEFAULT, 0));
            emit(a, moved(1, i, EVENT_RECORDED, LEDGER_DEFAULT, 100 + i));
        }
        if (i % 4 == 3)
            emit(a, moved(1, i, EVENT_FAILED, LEDGER_DEFAULT, 0));
    }
    side_start(w, 1, NULL);
    assert_true(run_until(w, b_caught_up_all, 5000));
    assert_int_equal(b->p->st.snapshots, 1);
    assert_int_equal(b->p->st.snapshot_records, N);
    assert_int_equal(b->p->st.events_in, 0); /* all of it came by the snapshot */
    for (int i = 0; i < N; i++) {
        uint8_t id[16];
        payment_id(id, 1, i);
        const struct payment *x = ledger_find(a->ledger, id), *y = ledger_find(b->ledger, id);
        assert_non_null(y);
        assert_int_equal(y->state, x->state);
        assert_int_equal(y->processor, x->processor);
        assert_int_equal(y->failed, x->failed);
        assert_int_equal(y->amount_cents, x->amount_cents);
        assert_int_equal(y->requested_at_ms, x->requested_at_ms);
        assert_int_equal(y->owner, 1);
    }
    /* Then the stream. */
    emit(a, accepted(1, N, 1));
    assert_true(run_until(w, b_caught_up_all, 5000));
    assert_int_equal(b->p->st.events_in, 1);
    assert_int_equal(ledger_size(b->ledger), N + 1);
}

static bool b_refused(struct world *w)
{
    return w->s[1].p->st.refused > 0;
}

/* An event out of bounds (an amount no API accepts) is refused by the peer
 * and never acknowledged, nor is anything after it: a reply waiting for it
 * goes unacknowledged when the hold expires. */
static void test_refused_event_never_acked(void **state)
{
    struct world *w = *state;
    pair_start(w, NULL, NULL);
    struct side *a = &w->s[0], *b = &w->s[1];
    uint64_t good = emit(a, accepted(1, 0, 100));
    assert_true(run_until(w, a_acked_all, 2000));
    /* Published as if made here; not in our ledger (ours would refuse it). */
    struct event bad = accepted(1, 1, MONEY_MAX_CENTS + 1);
    bad.origin = 1;
    bad.seq = ++a->seq;
    peer_publish(a->p, &bad);
    hold_reply(w, bad.seq);
    uint64_t after = emit(a, accepted(1, 2, 100));
    assert_true(run_until(w, b_refused, 2000));
    assert_true(run_until(w, replied, 1000)); /* the hold expires */
    run_for(w, 300);                          /* the digest asks for a repair: refused again */
    assert_int_equal(a->p->acked, good);
    assert_int_equal(b->p->applied, good);
    assert_true(after > bad.seq);
    assert_int_equal(a->p->st.replies_unacked, 1);
    uint8_t id[16];
    payment_id(id, 1, 1);
    assert_null(ledger_find(b->ledger, id));
    payment_id(id, 1, 2);
    assert_null(ledger_find(b->ledger, id));
    assert_int_equal(ledger_size(b->ledger), 1);
}

static bool both_alone(struct world *w)
{
    return peer_caught_up(w->s[0].p) && peer_caught_up(w->s[1].p);
}

/* A peer sealing with another key gets nothing applied: neither stream,
 * datagrams, nor repairs are authentic to it. */
static void test_wrong_key_gets_nothing(void **state)
{
    struct world *w = *state;
    struct side_opts b_opts = {.key = KEY_B};
    side_start(w, 0, NULL);
    side_start(w, 1, &b_opts);
    struct side *a = &w->s[0], *b = &w->s[1];
    for (int i = 0; i < 10; i++)
        emit(a, accepted(1, i, 100));
    /* Neither hears the other: each ends up alone after gossip's dead_ms. */
    assert_true(run_until(w, both_alone, 3000));
    run_for(w, 300); /* keep-alive batches go on */
    assert_true(b->p->st.unauthentic > 0);
    assert_int_equal(b->p->applied, 0);
    assert_int_equal(b->p->st.batches_in + b->p->st.datagrams_in, 0);
    assert_int_equal(ledger_size(b->ledger), 0);
    assert_int_equal(a->p->acked, 0);
    assert_false(peer_alive(a->p));
    assert_false(peer_alive(b->p));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_events_applied_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_releases_held_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_traced_hold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_datagram_covered_by_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_gap_repaired_by_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fresh_peer_catches_up_by_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_event_never_acked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key_gets_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
