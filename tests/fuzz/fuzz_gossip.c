/* node/gossip's receive path: a sequence of datagrams, with time passing
 * between them, goes through on_datagram() (heartbeat_decode plus the
 * freshness, restart and liveness rules) and the liveness timer's callback, on
 * a gossip that is never started (no socket). uv_now() is a fake clock
 * (-Wl,--wrap=uv_now). Checked against gossip.h's contract: counters add up,
 * our own id and stale datagrams are never accepted, a fresh one makes the
 * peer ALIVE, only the documented state transitions are reported, checker
 * changes alternate, and with no live settled peer we are the checker.
 * Input: records of { advance (x 8 ms), length, length bytes }. */
#include "node/gossip.c"

#include "fuzz.h"

#define SELF_ID 2

uint64_t __real_uv_now(const uv_loop_t *loop);
uint64_t __wrap_uv_now(const uv_loop_t *loop);

static uint64_t fake_now;

uint64_t __wrap_uv_now(const uv_loop_t *loop)
{
    (void)loop;
    return fake_now;
}

struct watch {
    struct gossip *g;
    bool checker;      /* last value reported by on_checker (initially true) */
    uint64_t accepted; /* on_peer calls */
    bool closed;
};

static void on_fill(struct heartbeat *hb, void *arg)
{
    (void)hb;
    (void)arg;
    FUZZ_CHECK(!"fill is only called by sends, and this gossip never sends");
}

static void on_peer_hb(const struct heartbeat *hb, void *arg)
{
    struct watch *w = arg;
    FUZZ_CHECK(hb->node_id != SELF_ID);
    FUZZ_CHECK(gossip_peer_state(w->g) == GOSSIP_PEER_ALIVE);
    w->accepted++;
}

static bool transition_ok(enum gossip_peer_state old, enum gossip_peer_state s, bool restarted)
{
    if (restarted)
        return s == GOSSIP_PEER_ALIVE;
    switch (old) {
    case GOSSIP_PEER_UNKNOWN:
        return s == GOSSIP_PEER_ALIVE || s == GOSSIP_PEER_DEAD;
    case GOSSIP_PEER_ALIVE:
        return s == GOSSIP_PEER_SUSPECT;
    case GOSSIP_PEER_SUSPECT:
        return s == GOSSIP_PEER_DEAD || s == GOSSIP_PEER_ALIVE;
    case GOSSIP_PEER_DEAD:
        return s == GOSSIP_PEER_ALIVE;
    }
    return false;
}

static void on_state(enum gossip_peer_state old, enum gossip_peer_state s, bool restarted,
                     void *arg)
{
    struct watch *w = arg;
    FUZZ_CHECK(transition_ok(old, s, restarted));
    FUZZ_CHECK(gossip_peer_state(w->g) == s);
}

static void on_checker_change(bool self, void *arg)
{
    struct watch *w = arg;
    FUZZ_CHECK(self != w->checker); /* a report is a change */
    w->checker = self;
}

static void on_closed(struct gossip *g, void *arg)
{
    struct watch *w = arg;
    w->closed = true;
}

static uv_loop_t *loop_get(void)
{
    static uv_loop_t loop;
    static bool ready;
    if (!ready) {
        log_init(LOG_ERROR, 2); /* a line per purge or peer change would drown the fuzzer */
        FUZZ_CHECK(uv_loop_init(&loop) == 0);
        ready = true;
    }
    return &loop;
}

static void check_invariants(struct gossip *g, uint64_t delivered)
{
    struct gossip_stats st;
    gossip_stats(g, &st);
    FUZZ_CHECK(st.dropped == st.dropped_malformed + st.dropped_self + st.dropped_stale);
    FUZZ_CHECK(st.received + st.dropped == delivered);
    enum gossip_peer_state s = gossip_peer_state(g);
    if (s == GOSSIP_PEER_UNKNOWN || s == GOSSIP_PEER_DEAD)
        FUZZ_CHECK(gossip_is_checker(g));
    const struct heartbeat *last = gossip_last_peer(g);
    FUZZ_CHECK((last != NULL) == (st.received > 0));
    if (last)
        FUZZ_CHECK(last->node_id != SELF_ID && last->node_id != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uv_loop_t *loop = loop_get();
    fake_now = 0;
    struct watch w = {.checker = true};
    struct gossip_config cfg = {.self_id = SELF_ID,
                                .incarnation = 1000,
                                .listen_addr = "127.0.0.1:0",
                                .peer_addr = "127.0.0.1:9"};
    struct gossip_callbacks cbs = {.fill = on_fill,
                                   .on_peer = on_peer_hb,
                                   .on_peer_state = on_state,
                                   .on_checker = on_checker_change};
    struct gossip *g = gossip_new(loop, &cfg, &cbs, &w);
    FUZZ_CHECK(g != NULL);
    w.g = g;
    uint64_t delivered = 0;
    size_t i = 0;
    while (i + 2 <= size) {
        fake_now += (uint64_t)data[i] * 8;
        size_t len = data[i + 1];
        i += 2;
        if (len > size - i)
            len = size - i;
        on_live(&g->live); /* the liveness timer, at whatever time it is now */
        check_invariants(g, delivered);

        struct gossip_stats before;
        gossip_stats(g, &before);
        uint64_t acc = w.accepted;
        struct heartbeat hb;
        bool decodes = heartbeat_decode(&hb, data + i, len) == 0;
        bool had_peer = g->have_peer;
        uint8_t old_id = g->peer_id;
        uint64_t old_inc = g->peer_incarnation, old_counter = g->peer_counter;
        on_datagram(g, data + i, len);
        delivered++;
        i += len;

        struct gossip_stats after;
        gossip_stats(g, &after);
        bool accepted = after.received == before.received + 1;
        FUZZ_CHECK(accepted == (w.accepted == acc + 1));
        if (!decodes)
            FUZZ_CHECK(after.dropped_malformed == before.dropped_malformed + 1);
        if (accepted) {
            FUZZ_CHECK(decodes && hb.node_id != SELF_ID);
            FUZZ_CHECK(gossip_peer_state(g) == GOSSIP_PEER_ALIVE);
            /* the same process is only heard again with a higher counter */
            if (had_peer && hb.node_id == old_id && hb.incarnation == old_inc)
                FUZZ_CHECK(hb.counter > old_counter);
        }
        check_invariants(g, delivered);
    }
    gossip_close(g, on_closed, &w);
    FUZZ_CHECK(uv_run(loop, UV_RUN_NOWAIT) == 0);
    FUZZ_CHECK(w.closed);
    return 0;
}
