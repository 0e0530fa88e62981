/* node/gossip on a private loop over 127.0.0.1 (port 0 everywhere): two
 * instances find each other and elect id 1; closing 1 makes 2 see SUSPECT then
 * DEAD and take the checker role; 1 restarting is reported as a restart and
 * gets the role back. A scripted peer (a raw uv_udp socket) checks the rules
 * one by one: hand-back only after handback_ms, draining peer, stale and
 * malformed datagrams dropped and counted. Waits are bounded; assertions are
 * about states and order of events, never about how fast. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include <cmocka.h>
#include <uv.h>

#include "node/gossip.h"
#include "lib/log.h"
#include "proto/heartbeat.h"
#include "proto/wire.h"

#define WAIT_MS 5000 /* upper bound of every wait; a healthy run needs far less */
#define MAX_EVENTS 256

enum rec_kind { REC_STATE = 0, REC_CHECKER };

struct rec {
    enum rec_kind kind;
    enum gossip_peer_state old, new_state;
    bool restarted;
    bool checker;
    uint64_t at_ms; /* uv_now when recorded */
};

struct node {
    uv_loop_t *loop;
    struct gossip *g;
    uint8_t id;
    uint64_t digest_seq; /* what fill reports as last_seq of origin id */
    struct rec recs[MAX_EVENTS];
    int nrecs;
    int peer_heartbeats;
    struct heartbeat last_peer;
    bool closed;
    bool close_in_on_peer; /* close from inside on_peer */
};

static void fill(struct heartbeat *hb, void *arg)
{
    struct node *n = arg;
    hb->flags = HEARTBEAT_F_READY;
    hb->last_seq[n->id - 1] = n->digest_seq;
    hb->totals[0].count = n->id * 10u;
    hb->totals[0].amount_cents = n->id * 1990;
    hb->health[0].valid = true;
    hb->health[0].min_response_ms = n->id;
}

static void on_closed(struct gossip *g, void *arg)
{
    struct node *n = arg;
    n->closed = true;
}

static void on_peer(const struct heartbeat *hb, void *arg)
{
    struct node *n = arg;
    n->peer_heartbeats++;
    n->last_peer = *hb;
    if (n->close_in_on_peer) {
        n->close_in_on_peer = false;
        gossip_close(n->g, on_closed, n);
    }
}

static void add_rec(struct node *n, struct rec r)
{
    assert_true(n->nrecs < MAX_EVENTS);
    r.at_ms = uv_now(n->loop);
    n->recs[n->nrecs++] = r;
}

static void on_peer_state(enum gossip_peer_state old, enum gossip_peer_state new_state,
                          bool restarted, void *arg)
{
    add_rec(arg,
            (struct rec){
                .kind = REC_STATE, .old = old, .new_state = new_state, .restarted = restarted});
}

static void on_checker(bool self_is_checker, void *arg)
{
    add_rec(arg, (struct rec){.kind = REC_CHECKER, .checker = self_is_checker});
}

static const struct gossip_callbacks cbs = {
    .fill = fill,
    .on_peer = on_peer,
    .on_peer_state = on_peer_state,
    .on_checker = on_checker,
};

static void node_open(struct node *n, uv_loop_t *loop, uint8_t id, uint64_t incarnation,
                      const char *peer)
{
    memset(n, 0, sizeof(*n));
    n->loop = loop;
    n->id = id;
    n->digest_seq = 100 + id;
    struct gossip_config cfg = {
        .self_id = id,
        .incarnation = incarnation,
        .listen_addr = "127.0.0.1:0",
        .peer_addr = peer,
        .interval_ms = 20,
        .suspect_ms = 100,
        .dead_ms = 200,
    };
    n->g = gossip_new(loop, &cfg, &cbs, n);
    assert_non_null(n->g);
    assert_int_equal(gossip_start(n->g), 0);
    assert_true(gossip_port(n->g) > 0);
}

static void node_close(struct node *n)
{
    gossip_close(n->g, on_closed, n);
}

static void set_peer_port(struct node *n, int port)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    assert_int_equal(gossip_set_peer(n->g, addr), 0);
}

typedef bool pred_fn(void *arg);

/* Runs the loop until pred holds or WAIT_MS passed; returns pred's value. */
static bool run_until(uv_loop_t *loop, pred_fn *pred, void *arg)
{
    uv_update_time(loop);
    uint64_t end = uv_now(loop) + WAIT_MS;
    while (!pred(arg) && uv_now(loop) < end) {
        uv_run(loop, UV_RUN_ONCE);
        uv_update_time(loop);
    }
    return pred(arg);
}

static void loop_finish(uv_loop_t *loop)
{
    assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* Index of the first record at or after from matching kind (and, for states,
 * new_state); -1 if none. */
static int find_state(const struct node *n, int from, enum gossip_peer_state st)
{
    for (int i = from; i < n->nrecs; i++)
        if (n->recs[i].kind == REC_STATE && n->recs[i].new_state == st)
            return i;
    return -1;
}

static int find_restart(const struct node *n, int from)
{
    for (int i = from; i < n->nrecs; i++)
        if (n->recs[i].kind == REC_STATE && n->recs[i].restarted)
            return i;
    return -1;
}

static int find_checker(const struct node *n, int from, bool value)
{
    for (int i = from; i < n->nrecs; i++)
        if (n->recs[i].kind == REC_CHECKER && n->recs[i].checker == value)
            return i;
    return -1;
}

static int count_kind(const struct node *n, int from, enum rec_kind kind)
{
    int c = 0;
    for (int i = from; i < n->nrecs; i++)
        c += n->recs[i].kind == kind;
    return c;
}

struct pair {
    struct node *a, *b; /* a has id 1, b has id 2 */
};

static bool both_alive_and_settled(void *arg)
{
    struct pair *p = arg;
    const struct heartbeat *from_b = gossip_last_peer(p->a->g);
    return gossip_peer_state(p->a->g) == GOSSIP_PEER_ALIVE &&
           gossip_peer_state(p->b->g) == GOSSIP_PEER_ALIVE && !gossip_is_checker(p->b->g) &&
           from_b != NULL && from_b->checker_id == 1;
}

static bool b_dead_and_checker(void *arg)
{
    struct pair *p = arg;
    return gossip_peer_state(p->b->g) == GOSSIP_PEER_DEAD && gossip_is_checker(p->b->g);
}

static bool a_closed(void *arg)
{
    struct pair *p = arg;
    return p->a->closed;
}

static bool b_restart_seen_and_handed_back(void *arg)
{
    struct pair *p = arg;
    return !gossip_is_checker(p->b->g) && gossip_peer_state(p->b->g) == GOSSIP_PEER_ALIVE &&
           p->b->nrecs > 0;
}

static void test_pair_election_failover_restart(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct node *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    assert_true(a != NULL && b != NULL);
    struct pair p = {a, b};

    /* Both start alone: each is its own checker, its peer UNKNOWN. */
    node_open(a, &loop, 1, 1000, NULL);
    node_open(b, &loop, 2, 2000, NULL);
    assert_true(gossip_is_checker(a->g));
    assert_true(gossip_is_checker(b->g));
    assert_int_equal(gossip_peer_state(a->g), GOSSIP_PEER_UNKNOWN);
    char addr[64];
    snprintf(addr, sizeof(addr), "localhost:%d", gossip_port(b->g)); /* through uv_getaddrinfo */
    assert_int_equal(gossip_set_peer(a->g, addr), 0);
    set_peer_port(b, gossip_port(a->g));

    /* They see each other; id 1 is the only checker, and 2 says so too. */
    assert_true(run_until(&loop, both_alive_and_settled, &p));
    assert_true(gossip_is_checker(a->g));
    assert_false(gossip_is_checker(b->g));
    assert_true(find_state(a, 0, GOSSIP_PEER_ALIVE) >=
                0);                                     /* (after DEAD only if the loop stalled) */
    assert_int_equal(count_kind(a, 0, REC_CHECKER), 0); /* 1 never stopped being checker */
    int alive_b = find_state(b, 0, GOSSIP_PEER_ALIVE);
    assert_true(alive_b >= 0);
    assert_false(b->recs[alive_b].restarted);
    int lost = find_checker(b, 0, false);
    assert_true(lost > alive_b);
    assert_true(b->recs[lost].at_ms - b->recs[alive_b].at_ms >= 40); /* handback: 2 intervals */
    /* The digest from fill travels. */
    assert_int_equal(b->last_peer.node_id, 1);
    assert_true(b->last_peer.incarnation == 1000);
    assert_true(b->last_peer.last_seq[0] == 101);
    assert_true(b->last_peer.totals[0].amount_cents == 1990);
    assert_int_equal(b->last_peer.checker_id, 1);
    assert_int_equal(a->last_peer.node_id, 2);
    assert_true(a->last_peer.last_seq[1] == 102);
    struct gossip_stats sa, sb;
    gossip_stats(a->g, &sa);
    gossip_stats(b->g, &sb);
    assert_true(sa.sent > 0 && sa.received > 0 && sb.sent > 0 && sb.received > 0);
    assert_int_equal(sa.dropped + sb.dropped, 0);

    /* 1 stops: 2 goes SUSPECT, then DEAD, and only then takes the role. */
    int mark = b->nrecs;
    node_close(a);
    assert_true(run_until(&loop, a_closed, &p));
    assert_true(run_until(&loop, b_dead_and_checker, &p));
    int sus = find_state(b, mark, GOSSIP_PEER_SUSPECT);
    int dead = find_state(b, mark, GOSSIP_PEER_DEAD);
    int won = find_checker(b, mark, true);
    assert_true(sus >= mark && dead > sus && won > dead);
    assert_int_equal(b->recs[sus].old, GOSSIP_PEER_ALIVE);
    assert_int_equal(b->recs[dead].old, GOSSIP_PEER_SUSPECT);
    assert_int_equal(count_kind(b, mark, REC_CHECKER), 1);

    /* 1 comes back (new process, new incarnation, new port): a restart, and
     * the role goes back to 1 after it has been heard steadily. */
    mark = b->nrecs;
    node_open(a, &loop, 1, 3000, NULL);
    set_peer_port(a, gossip_port(b->g));
    set_peer_port(b, gossip_port(a->g));
    assert_true(run_until(&loop, b_restart_seen_and_handed_back, &p));
    int back = find_state(b, mark, GOSSIP_PEER_ALIVE);
    assert_true(back >= mark);
    assert_int_equal(b->recs[back].old, GOSSIP_PEER_DEAD);
    assert_true(b->recs[back].restarted);
    int handed = find_checker(b, mark, false);
    assert_true(handed > back);
    assert_true(b->recs[handed].at_ms - b->recs[back].at_ms >= 40); /* proved steady first */
    assert_true(b->last_peer.incarnation == 3000);
    assert_true(gossip_is_checker(a->g));

    node_close(a);
    node_close(b);
    loop_finish(&loop);
    assert_true(a->closed && b->closed);
    free(a);
    free(b);
}

/* ---- scripted peer: a raw UDP socket speaking heartbeats ---- */

struct raw {
    uv_udp_t udp;
    struct sockaddr_in to;
};

static void raw_open(struct raw *r, uv_loop_t *loop, int to_port)
{
    assert_int_equal(uv_udp_init(loop, &r->udp), 0);
    struct sockaddr_in any;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &any), 0);
    assert_int_equal(uv_udp_bind(&r->udp, (const struct sockaddr *)&any, 0), 0);
    assert_int_equal(uv_ip4_addr("127.0.0.1", to_port, &r->to), 0);
}

static void raw_send(struct raw *r, const void *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    assert_int_equal(uv_udp_try_send(&r->udp, &b, 1, (const struct sockaddr *)&r->to), (int)len);
}

static void raw_send_hb(struct raw *r, uint8_t id, uint64_t inc, uint64_t counter, uint8_t flags)
{
    struct heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    hb.node_id = id;
    hb.incarnation = inc;
    hb.counter = counter;
    hb.flags = flags;
    hb.checker_id = id;
    uint8_t buf[HEARTBEAT_WIRE_LEN];
    assert_int_equal(heartbeat_encode(&hb, buf, sizeof(buf)), HEARTBEAT_WIRE_LEN);
    raw_send(r, buf, sizeof(buf));
}

struct wait_stats {
    struct node *n;
    uint64_t received, dropped, malformed, self, stale;
};

static bool stats_reached(void *arg)
{
    struct wait_stats *w = arg;
    struct gossip_stats st;
    gossip_stats(w->n->g, &st);
    return st.received >= w->received && st.dropped >= w->dropped &&
           st.dropped_malformed >= w->malformed && st.dropped_self >= w->self &&
           st.dropped_stale >= w->stale;
}

static void test_malformed_and_stale_dropped(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct node *n = calloc(1, sizeof(*n));
    assert_non_null(n);
    node_open(n, &loop, 2, 2000, NULL);
    struct raw r;
    raw_open(&r, &loop, gossip_port(n->g));

    /* Garbage, a truncated heartbeat, one with a trailing byte, an oversized
     * datagram, an empty one, and one carrying our own id. */
    uint8_t junk[3000];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 131 + 7);
    struct heartbeat hb = {.node_id = 1, .incarnation = 5, .counter = 1};
    uint8_t good[HEARTBEAT_WIRE_LEN + 1];
    assert_int_equal(heartbeat_encode(&hb, good, sizeof(good)), HEARTBEAT_WIRE_LEN);
    good[HEARTBEAT_WIRE_LEN] = 0;
    raw_send(&r, junk, 50);
    raw_send(&r, good, HEARTBEAT_WIRE_LEN - 1);
    raw_send(&r, good, HEARTBEAT_WIRE_LEN + 1);
    raw_send(&r, junk, sizeof(junk));
    raw_send(&r, junk, 0);
    raw_send_hb(&r, 2, 9, 1, 0);
    struct wait_stats w = {.n = n, .dropped = 6, .malformed = 5, .self = 1};
    assert_true(run_until(&loop, stats_reached, &w));
    assert_int_equal(n->peer_heartbeats, 0);
    assert_true(gossip_last_peer(n->g) == NULL);
    assert_int_equal(find_state(n, 0, GOSSIP_PEER_ALIVE), -1);

    /* A valid peer, then a duplicate, an older counter, an older incarnation:
     * only the first counts. A newer counter counts again. */
    raw_send_hb(&r, 1, 50, 10, 0);
    w = (struct wait_stats){.n = n, .received = 1};
    assert_true(run_until(&loop, stats_reached, &w));
    raw_send_hb(&r, 1, 50, 10, 0);
    raw_send_hb(&r, 1, 50, 9, 0);
    raw_send_hb(&r, 1, 49, 11, 0);
    raw_send_hb(&r, 1, 50, 11, 0);
    w = (struct wait_stats){.n = n, .received = 2, .stale = 3};
    assert_true(run_until(&loop, stats_reached, &w));
    struct gossip_stats st;
    gossip_stats(n->g, &st);
    assert_true(st.received == 2 && st.dropped_stale == 3 && st.dropped_malformed == 5 &&
                st.dropped_self == 1 && st.dropped == 9);
    assert_int_equal(n->peer_heartbeats, 2);
    assert_true(n->last_peer.counter == 11);
    int alive = find_state(n, 0, GOSSIP_PEER_ALIVE);
    assert_true(alive >= 0);
    assert_false(n->recs[alive].restarted);
    /* A newer incarnation is a restart, reported even though still ALIVE. */
    raw_send_hb(&r, 1, 51, 1, 0);
    w = (struct wait_stats){.n = n, .received = 3};
    assert_true(run_until(&loop, stats_reached, &w));
    int rs = find_restart(n, 0);
    assert_true(rs > alive);
    assert_int_equal(n->recs[rs].new_state, GOSSIP_PEER_ALIVE);
    assert_int_equal(find_restart(n, rs + 1), -1);

    uv_close((uv_handle_t *)&r.udp, NULL);
    node_close(n);
    loop_finish(&loop);
    assert_true(n->closed);
    free(n);
}

/* ---- frames (replication's fast lane) on the same socket ---- */

struct frames {
    int count;
    size_t last_len;
    uint8_t last_type;
};

static void on_frame(const uint8_t *data, size_t len, void *arg)
{
    struct frames *f = arg;
    f->count++;
    f->last_len = len;
    f->last_type = data[2];
}

static void noop_fill(struct heartbeat *hb, void *arg)
{
    hb->flags = HEARTBEAT_F_READY;
}

struct frame_wait {
    struct frames *f;
    struct gossip *g;
    int count;
    uint64_t foreign, malformed;
};

static bool frame_wait_done(void *arg)
{
    struct frame_wait *w = arg;
    struct gossip_stats st;
    gossip_stats(w->g, &st);
    return w->f->count >= w->count && st.dropped_foreign >= w->foreign &&
           st.dropped_malformed >= w->malformed;
}

/* A frame from the peer's address reaches on_frame whole; the same bytes from
 * any other address, or with a length that does not match the datagram, do
 * not; heartbeats still work beside frames. */
static void test_frames_from_the_peer_only(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct frames fa = {0}, fb = {0};
    struct gossip_callbacks c = {.fill = noop_fill, .on_frame = on_frame};
    struct gossip_config ca = {.self_id = 1,
                               .incarnation = 1,
                               .listen_addr = "127.0.0.1:0",
                               .interval_ms = 20,
                               .suspect_ms = 100,
                               .dead_ms = 200};
    struct gossip_config cb = ca;
    cb.self_id = 2;
    struct gossip *a = gossip_new(&loop, &ca, &c, &fa);
    struct gossip *b = gossip_new(&loop, &cb, &c, &fb);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(gossip_start(a), 0);
    assert_int_equal(gossip_start(b), 0);
    uint8_t frame[GOSSIP_FRAME_MAX + 1];
    memset(frame, 0x5a, sizeof(frame));
    wire_put_header(frame, 0x30, 40);
    /* No peer address yet: nothing to send to. */
    assert_int_equal(gossip_send_frame(b, frame, 40), -EAGAIN);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", gossip_port(a));
    assert_int_equal(gossip_set_peer(b, addr), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", gossip_port(b));
    assert_int_equal(gossip_set_peer(a, addr), 0);
    assert_int_equal(gossip_send_frame(b, frame, sizeof(frame)), -EMSGSIZE);

    assert_int_equal(gossip_send_frame(b, frame, 40), 0);
    struct frame_wait w = {.f = &fa, .g = a, .count = 1};
    assert_true(run_until(&loop, frame_wait_done, &w));
    assert_int_equal(fa.last_len, 40);
    assert_int_equal(fa.last_type, 0x30);

    /* A stranger sends the same frame, then one whose length lies. */
    struct raw r;
    raw_open(&r, &loop, gossip_port(a));
    raw_send(&r, frame, 40);
    w = (struct frame_wait){.f = &fa, .g = a, .count = 1, .foreign = 1};
    assert_true(run_until(&loop, frame_wait_done, &w));
    assert_int_equal(gossip_send_frame(b, frame, 41), 0); /* header says 40 */
    w = (struct frame_wait){.f = &fa, .g = a, .count = 1, .foreign = 1, .malformed = 1};
    assert_true(run_until(&loop, frame_wait_done, &w));
    assert_int_equal(fa.count, 1);

    /* Heartbeats flow beside frames: both sides see each other alive. */
    uv_update_time(&loop);
    uint64_t end = uv_now(&loop) + WAIT_MS;
    while (
        (gossip_peer_state(a) != GOSSIP_PEER_ALIVE || gossip_peer_state(b) != GOSSIP_PEER_ALIVE) &&
        uv_now(&loop) < end) {
        uv_run(&loop, UV_RUN_ONCE);
        uv_update_time(&loop);
    }
    assert_int_equal(gossip_peer_state(a), GOSSIP_PEER_ALIVE);
    assert_int_equal(gossip_peer_state(b), GOSSIP_PEER_ALIVE);
    struct gossip_stats st;
    gossip_stats(b, &st);
    assert_int_equal(st.frames_sent, 2);
    gossip_stats(a, &st);
    assert_int_equal(st.frames_received, 1);
    assert_int_equal(fb.count, 0);

    uv_close((uv_handle_t *)&r.udp, NULL);
    gossip_close(a, NULL, NULL);
    gossip_close(b, NULL, NULL);
    loop_finish(&loop);
}

/* With a key, two gossips see each other and pass frames; a plain heartbeat
 * from the peer's own address (a raw socket standing in for it), or one
 * sealed with another key, is dropped as unauthentic and changes nothing. */
static void test_sealed_datagrams(void **state)
{
    assert_int_equal(seal_global_init(), 0);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct seal_key k, other;
    assert_int_equal(seal_key_derive(&k, "a shared key of at least 32 bytes", 33), 0);
    assert_int_equal(seal_key_derive(&other, "another key, also 32 bytes or more", 34), 0);
    struct frames fa = {0}, fb = {0};
    struct gossip_callbacks c = {.fill = noop_fill, .on_frame = on_frame};
    struct gossip_config ca = {.self_id = 1,
                               .incarnation = 1,
                               .listen_addr = "127.0.0.1:0",
                               .interval_ms = 20,
                               .suspect_ms = 100,
                               .dead_ms = 200,
                               .key = &k};
    struct gossip_config cb = ca;
    cb.self_id = 2;
    struct gossip *a = gossip_new(&loop, &ca, &c, &fa);
    struct gossip *b = gossip_new(&loop, &cb, &c, &fb);
    assert_int_equal(gossip_start(a), 0);
    assert_int_equal(gossip_start(b), 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", gossip_port(a));
    assert_int_equal(gossip_set_peer(b, addr), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", gossip_port(b));
    assert_int_equal(gossip_set_peer(a, addr), 0);
    uint8_t frame[64];
    memset(frame, 0x11, sizeof(frame));
    wire_put_header(frame, 0x30, sizeof(frame));
    assert_int_equal(gossip_send_frame(b, frame, sizeof(frame)), 0);
    struct frame_wait w = {.f = &fa, .g = a, .count = 1};
    assert_true(run_until(&loop, frame_wait_done, &w));
    assert_int_equal(fa.last_len, sizeof(frame));
    uv_update_time(&loop);
    uint64_t end = uv_now(&loop) + WAIT_MS;
    while (
        (gossip_peer_state(a) != GOSSIP_PEER_ALIVE || gossip_peer_state(b) != GOSSIP_PEER_ALIVE) &&
        uv_now(&loop) < end) {
        uv_run(&loop, UV_RUN_ONCE);
        uv_update_time(&loop);
    }
    assert_int_equal(gossip_peer_state(a), GOSSIP_PEER_ALIVE);
    gossip_close(a, NULL, NULL);
    gossip_close(b, NULL, NULL);

    /* n's peer is a raw socket: its plain heartbeat and frame, and a datagram
     * sealed with another key, are all refused. */
    struct gossip_config cn = ca;
    cn.self_id = 2;
    struct frames fn = {0};
    struct gossip *n = gossip_new(&loop, &cn, &c, &fn);
    assert_int_equal(gossip_start(n), 0);
    struct raw r;
    raw_open(&r, &loop, gossip_port(n));
    struct sockaddr_in me;
    int len = sizeof(me);
    assert_int_equal(uv_udp_getsockname(&r.udp, (struct sockaddr *)&me, &len), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(me.sin_port));
    assert_int_equal(gossip_set_peer(n, addr), 0);
    raw_send_hb(&r, 1, 50, 10, HEARTBEAT_F_READY);
    raw_send(&r, frame, sizeof(frame));
    struct seal_tx tx;
    seal_tx_init(&tx, &other, 1, SEAL_CH_UDP, 50);
    uint8_t sealed[128];
    int sn = seal_wrap(&tx, frame, sizeof(frame), sealed, sizeof(sealed));
    assert_true(sn > 0);
    raw_send(&r, sealed, (size_t)sn);
    /* The same, sealed with the right key, goes through: the raw socket is
     * the peer's address, so only the key made the difference. */
    seal_tx_init(&tx, &k, 1, SEAL_CH_UDP, 50);
    sn = seal_wrap(&tx, frame, sizeof(frame), sealed, sizeof(sealed));
    raw_send(&r, sealed, (size_t)sn);
    raw_send(&r, sealed, (size_t)sn); /* and its replay does not */
    struct gossip_stats st;
    end = uv_now(&loop) + WAIT_MS;
    do {
        uv_run(&loop, UV_RUN_NOWAIT);
        uv_update_time(&loop);
        gossip_stats(n, &st);
    } while ((st.dropped_unauthentic < 4 || fn.count < 1) && uv_now(&loop) < end);
    assert_int_equal(st.dropped_unauthentic, 4);
    assert_int_equal(st.received, 0);
    assert_int_equal(fn.count, 1);
    assert_true(gossip_last_peer(n) == NULL);
    uv_close((uv_handle_t *)&r.udp, NULL);
    gossip_close(n, NULL, NULL);
    loop_finish(&loop);
}

struct script {
    struct node *n;
    struct raw *r;
    uv_timer_t t;
    uint64_t counter;
    uint8_t flags;
    bool running;
};

static void on_script_tick(uv_timer_t *t)
{
    struct script *s = t->data;
    raw_send_hb(s->r, 1, 777, ++s->counter, s->flags);
}

static bool node_not_checker(void *arg)
{
    struct node *n = arg;
    return !gossip_is_checker(n->g);
}

static bool node_checker(void *arg)
{
    struct node *n = arg;
    return gossip_is_checker(n->g);
}

static bool node_peer_dead(void *arg)
{
    struct node *n = arg;
    return gossip_peer_state(n->g) == GOSSIP_PEER_DEAD;
}

/* Hand-back waits handback_ms after ALIVE; a draining peer gives the role
 * back at once; silence then makes it DEAD. */
static void test_handback_and_draining_peer(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct node *n = calloc(1, sizeof(*n));
    assert_non_null(n);
    node_open(n, &loop, 2, 2000, NULL);
    struct raw r;
    raw_open(&r, &loop, gossip_port(n->g));
    struct script s = {.n = n, .r = &r};
    assert_int_equal(uv_timer_init(&loop, &s.t), 0);
    s.t.data = &s;
    assert_int_equal(uv_timer_start(&s.t, on_script_tick, 0, 20), 0);

    assert_true(run_until(&loop, node_not_checker, n));
    int alive = find_state(n, 0, GOSSIP_PEER_ALIVE);
    int lost = find_checker(n, 0, false);
    assert_true(alive >= 0 && lost > alive);
    assert_true(n->recs[lost].at_ms - n->recs[alive].at_ms >= 40);
    assert_true(n->peer_heartbeats >= 2); /* never on the first datagram */

    s.flags = HEARTBEAT_F_SHUTTING_DOWN;
    assert_true(run_until(&loop, node_checker, n));
    assert_int_equal(gossip_peer_state(n->g), GOSSIP_PEER_ALIVE);
    assert_true(n->last_peer.flags & HEARTBEAT_F_SHUTTING_DOWN);

    /* Peer silent: SUSPECT then DEAD; role stays here, no other change. */
    int mark = n->nrecs;
    uv_timer_stop(&s.t);
    assert_true(run_until(&loop, node_peer_dead, n));
    assert_true(find_state(n, mark, GOSSIP_PEER_SUSPECT) >= mark);
    assert_int_equal(count_kind(n, mark, REC_CHECKER), 0);

    uv_close((uv_handle_t *)&s.t, NULL);
    uv_close((uv_handle_t *)&r.udp, NULL);
    node_close(n);
    loop_finish(&loop);
    free(n);
}

/* Nothing ever arrives: UNKNOWN -> DEAD after dead_ms, checker throughout. */
static void test_lonely_node_declares_peer_dead(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct node *n = calloc(1, sizeof(*n));
    assert_non_null(n);
    node_open(n, &loop, 2, 2000, "127.0.0.1:9"); /* discard port: nobody answers */
    assert_true(run_until(&loop, node_peer_dead, n));
    assert_int_equal(n->nrecs, 1);
    assert_int_equal(n->recs[0].old, GOSSIP_PEER_UNKNOWN);
    assert_int_equal(n->recs[0].new_state, GOSSIP_PEER_DEAD);
    assert_true(gossip_is_checker(n->g));
    struct gossip_stats st;
    gossip_stats(n->g, &st);
    assert_true(st.sent > 0);
    assert_int_equal(gossip_send_now(n->g), 0);
    node_close(n);
    loop_finish(&loop);
    free(n);
}

static bool node_closed(void *arg)
{
    struct node *n = arg;
    return n->closed;
}

/* gossip_close from inside a callback, and right after start with a name
 * resolution in flight: both finish and leave no handle behind. */
static void test_close_paths(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct node *n = calloc(1, sizeof(*n));
    struct node *m = calloc(1, sizeof(*m));
    assert_true(n != NULL && m != NULL);
    node_open(n, &loop, 2, 2000, NULL);
    n->close_in_on_peer = true;
    struct raw r;
    raw_open(&r, &loop, gossip_port(n->g));
    raw_send_hb(&r, 1, 5, 1, 0);
    raw_send_hb(&r, 1, 5, 2, 0);
    assert_true(run_until(&loop, node_closed, n));
    assert_int_equal(n->peer_heartbeats, 1); /* nothing delivered after the close */

    node_open(m, &loop, 2, 2000, "localhost:9");
    node_close(m);
    uv_close((uv_handle_t *)&r.udp, NULL);
    loop_finish(&loop);
    assert_true(m->closed);
    free(n);
    free(m);
}

static void test_config_and_addresses(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct gossip_config cfg = {.self_id = 1, .listen_addr = "127.0.0.1:0"};
    struct gossip_callbacks nofill = {0};
    assert_null(gossip_new(&loop, &cfg, &nofill, NULL));
    cfg.self_id = 0;
    assert_null(gossip_new(&loop, &cfg, &cbs, NULL));
    cfg.self_id = 1;
    cfg.interval_ms = 500; /* suspect default 500 is not above it */
    assert_null(gossip_new(&loop, &cfg, &cbs, NULL));
    cfg.interval_ms = 0;
    cfg.dead_ms = 400; /* below the default suspect */
    assert_null(gossip_new(&loop, &cfg, &cbs, NULL));
    cfg.dead_ms = 0;

    const char *bad_listen[] = {"nonsense",    "127.0.0.1",   "127.0.0.1:99999", "::1:80",
                                "localhost:0", "127.0.0.1:x", "[::1:80",         "127.0.0.1:"};
    for (size_t i = 0; i < sizeof(bad_listen) / sizeof(bad_listen[0]); i++) {
        cfg.listen_addr = bad_listen[i];
        struct gossip *g = gossip_new(&loop, &cfg, &cbs, NULL);
        assert_non_null(g);
        assert_int_equal(gossip_start(g), -EINVAL);
        gossip_close(g, NULL, NULL);
    }
    cfg.listen_addr = "127.0.0.1:0";
    cfg.peer_addr = "[::1]:7000"; /* IPv6 peer for an IPv4 socket */
    struct gossip *g = gossip_new(&loop, &cfg, &cbs, NULL);
    assert_non_null(g);
    assert_int_equal(gossip_start(g), -EINVAL);
    gossip_close(g, NULL, NULL);

    cfg.peer_addr = NULL;
    struct node n;
    memset(&n, 0, sizeof(n));
    n.id = 1;
    n.loop = &loop;
    g = gossip_new(&loop, &cfg, &cbs, &n);
    assert_non_null(g);
    assert_int_equal(gossip_port(g), 0);
    assert_int_equal(gossip_send_now(g), -ESHUTDOWN);
    assert_int_equal(gossip_start(g), 0);
    assert_int_equal(gossip_start(g), -EALREADY);
    assert_int_equal(gossip_send_now(g), -EAGAIN); /* no peer address yet */
    assert_int_equal(gossip_set_peer(g, "127.0.0.1:0"), -EINVAL);
    assert_int_equal(gossip_set_peer(g, "[::1]:7000"), -EINVAL);
    assert_int_equal(gossip_set_peer(g, "peer"), -EINVAL);
    assert_int_equal(gossip_set_peer(g, ":7000"), -EINVAL);
    assert_int_equal(gossip_set_peer(g, "127.0.0.1:7000"), 0);
    assert_null(gossip_last_peer(g));
    assert_string_equal(gossip_peer_state_name(gossip_peer_state(g)), "unknown");
    gossip_close(g, NULL, NULL);

    /* Listening on all IPv4 addresses with ":port" works. */
    cfg.listen_addr = ":0";
    g = gossip_new(&loop, &cfg, &cbs, &n);
    assert_non_null(g);
    assert_int_equal(gossip_start(g), 0);
    assert_true(gossip_port(g) > 0);
    gossip_close(g, NULL, NULL);
    loop_finish(&loop);
}

int main(void)
{
    log_init(LOG_ERROR, 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pair_election_failover_restart),
        cmocka_unit_test(test_malformed_and_stale_dropped),
        cmocka_unit_test(test_frames_from_the_peer_only),
        cmocka_unit_test(test_sealed_datagrams),
        cmocka_unit_test(test_handback_and_draining_peer),
        cmocka_unit_test(test_lonely_node_declares_peer_dead),
        cmocka_unit_test(test_close_paths),
        cmocka_unit_test(test_config_and_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
