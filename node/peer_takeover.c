/* The peer's liveness glue (docs/REPLICATION.md, "Takeover", "Stalls and
 * partitions"): gossip's callbacks (our digest, the peer's, its state, the
 * checker election), taking over a dead peer's payments, detecting a stall of
 * our own loop, and the tick that drives time-outs. */
#include "node/peer.h"

#include <errno.h>
#include <inttypes.h>
#include <uv.h>

#include "lib/container.h"
#include "lib/log.h"
#include "node/dispatch.h"
#include "node/gossip.h"
#include "node/health.h"
#include "node/ledger.h"
#include "node/peer_internal.h"
#include "proto/heartbeat.h"

/* ---- gossip ------------------------------------------------------------- */

static void gossip_fill(struct heartbeat *hb, void *arg)
{
    struct peer *p = arg;
    if (p->self_id <= HEARTBEAT_MAX_ORIGINS)
        hb->last_seq[p->self_id - 1] = own_seq(p);
    if (p->peer_id >= 1 && p->peer_id <= HEARTBEAT_MAX_ORIGINS)
        hb->last_seq[p->peer_id - 1] = p->applied;
    struct ledger_totals t;
    ledger_summary(p->ledger, INT64_MIN, INT64_MAX, &t);
    for (int i = 0; i < HEARTBEAT_PROCESSORS; i++) {
        hb->totals[i].count = (uint64_t)t.count[i];
        /* The heartbeat's totals are informative (nothing is decided from
         * them) and carry 64 bits: beyond INT64_MAX cents they saturate, so
         * encoding never fails; the summaries stay exact (128-bit). */
        hb->totals[i].amount_cents = ledger_cents_sum_sat64(t.cents[i]);
        bool failing;
        uint32_t min_ms, age_ms;
        if (health_local_result(p->health, i, &failing, &min_ms, &age_ms)) {
            hb->health[i] = (struct heartbeat_health){
                .valid = true, .failing = failing, .min_response_ms = min_ms, .age_ms = age_ms};
        }
    }
    if (p->cb.stopping(p->cb.arg))
        hb->flags = HEARTBEAT_F_SHUTTING_DOWN;
    else if (p->caught_up && !p->resync)
        hb->flags = HEARTBEAT_F_READY;
    else
        hb->flags = HEARTBEAT_F_CATCHING_UP;
}

static void end_resync(struct peer *p, const char *why)
{
    if (!p->resync)
        return;
    p->resync = false;
    log_info("peer", "resynchronised after a stall (%s)", why);
}

static void update_checker(struct peer *p);
static void check_stall(struct peer *p);

static void on_gossip_peer(const struct heartbeat *hb, void *arg)
{
    struct peer *p = arg;
    check_stall(p);
    p->peer_id = hb->node_id;
    p->peer_ready = (hb->flags & HEARTBEAT_F_READY) != 0;
    update_checker(p);
    /* Take the peer's own poll results (never what it got from us). */
    if (!health_is_checker(p->health)) {
        for (int i = 0; i < HEARTBEAT_PROCESSORS; i++)
            if (hb->health[i].valid)
                health_apply_remote(p->health, i, hb->health[i].failing,
                                    hb->health[i].min_response_ms, hb->health[i].age_ms);
    }
    if (hb->incarnation != p->peer_inc || !p->caught_up)
        return; /* its stream or a snapshot will tell us more */
    uint64_t peer_seq = hb->node_id <= HEARTBEAT_MAX_ORIGINS ? hb->last_seq[hb->node_id - 1] : 0;
    if (peer_seq > p->applied && now_ms(p) - p->last_batch_ms > 2 * PEER_TICK_MS) {
        p->st.gaps++;
        peer_repair_start_range(p); /* the tail of its stream was lost */
    }
    if (p->resync && now_ms(p) > p->resync_since_ms && peer_seq <= p->applied &&
        p->repair == REPAIR_NONE)
        end_resync(p, "peer digest matched");
}

static void take_over(struct peer *p);

static void start_takeover(struct peer *p)
{
    if (p->peer_id == 0)
        return;
    p->st.takeovers++;
    take_over(p);
}

static void take_over(struct peer *p)
{
    unsigned taken = 0;
    int rv = dispatch_resume_unrecorded(p->dispatch, p->peer_id, &taken);
    p->takeover_pending = rv == -EAGAIN;
    p->st.taken_over += taken;
    if (taken)
        log_info("peer", "took over %u unfinished payments of node %u", taken, p->peer_id);
}

static void on_gossip_state(enum gossip_peer_state old, enum gossip_peer_state st, bool restarted,
                            void *arg)
{
    struct peer *p = arg;
    check_stall(p);
    /* Waking from our own stall, gossip's deadline timer can run before the
     * datagrams waiting in the socket are read, and call a live peer dead.
     * Within dead_ms of a stall, silence says nothing about the peer. */
    if (st == GOSSIP_PEER_DEAD && !restarted && p->resync &&
        now_ms(p) - p->resync_since_ms < GOSSIP_DEFAULT_DEAD_MS) {
        /* Deferred, not dropped: if the peer stays silent for dead_ms after we
         * woke, the tick takes it for dead then (gossip reports a state once). */
        p->st.dead_ignored++;
        p->dead_deferred = true;
        log_info("peer", "peer silent only during our own stall: not taken for dead yet");
        return;
    }
    p->dead_deferred = false;
    log_fields(LOG_INFO, "peer", "peer state", "\"from\":\"%s\",\"to\":\"%s\",\"restarted\":%s",
               gossip_peer_state_name(old), gossip_peer_state_name(st),
               restarted ? "true" : "false");
    if (st == GOSSIP_PEER_DEAD || restarted)
        peer_stream_release_holds(p, true);
    /* Take over only a peer whose process is surely gone: a new incarnation
     * (the old one died), or silence with its connection to us closed too
     * (the kernel closes a killed process's sockets). A silent peer whose
     * connection is up may be frozen or cut off by a partition that drops
     * packets, and would then send the same payments as we do; its payments
     * wait instead (late, not lost) until it comes back or its connection
     * goes. docs/REPLICATION.md. */
    p->takeover_waiting = false;
    if (restarted || (st == GOSSIP_PEER_DEAD && !peer_listening(p)))
        start_takeover(p);
    else if (st == GOSSIP_PEER_DEAD)
        p->takeover_waiting = true;
    if (st == GOSSIP_PEER_DEAD) {
        p->peer_ready = false;
        if (!p->caught_up) {
            p->repair = REPAIR_NONE;
            peer_repair_finish(p, "peer dead, alone");
        }
        end_resync(p, "peer dead");
    }
    if (restarted && st == GOSSIP_PEER_ALIVE)
        p->peer_ready = false;
    update_checker(p);
}

/* Whether this node polls the processors' health. Gossip's election (lowest
 * live id, with a settling delay before a returning lower id takes the role
 * back) decides, except that a lower-id peer that is up and not draining wins
 * at once: together with health's "keep the cadence" rule this means two
 * nodes never poll in the same window, at start-up or at a hand-over. Nobody
 * polls until gossip has resolved the peer's state. */
static void update_checker(struct peer *p)
{
    enum gossip_peer_state st = gossip_peer_state(p->gossip);
    const struct heartbeat *hb = gossip_last_peer(p->gossip);
    bool lower_peer_up = (st == GOSSIP_PEER_ALIVE || st == GOSSIP_PEER_SUSPECT) && hb &&
                         hb->node_id < p->self_id && !(hb->flags & HEARTBEAT_F_SHUTTING_DOWN);
    bool checker = st != GOSSIP_PEER_UNKNOWN && gossip_is_checker(p->gossip) && !lower_peer_up;
    if (checker != health_is_checker(p->health))
        log_info("peer", "health checker: %s", checker ? "this node" : "the peer");
    health_set_checker(p->health, checker);
}

static void on_gossip_checker(bool self, void *arg)
{
    update_checker(arg);
}

/* ---- tick: stalls, held replies, repair time-outs ----------------------- */

/* Detects a stall of our own loop: called from the tick and from every
 * payment request, because after a SIGSTOP the buffered requests are read
 * before any timer runs. */
static void check_stall(struct peer *p)
{
    uint64_t now = now_ms(p);
    if (p->last_tick_ms != 0 && now - p->last_tick_ms > PEER_STALL_MS && !p->resync) {
        p->st.stalls++;
        p->resync = true;
        p->resync_since_ms = now;
        log_warn("peer", "loop stalled for %" PRIu64 " ms: resynchronising with the peer",
                 now - p->last_tick_ms);
    }
}

void peer_takeover_on_tick(uv_timer_t *t)
{
    struct peer *p = container_of(t, struct peer, tick);
    check_stall(p);
    p->last_tick_ms = now_ms(p);
    if (p->last_tick_ms - p->last_stream_ms >= PEER_STREAM_KEEPALIVE_MS) {
        p->ack_dirty = true; /* a pure ack: keeps our connection proven to the peer */
        peer_stream_flush(p);
    }
    enum gossip_peer_state st = gossip_peer_state(p->gossip);
    peer_stream_release_holds(p, !peer_stream_can_ack(p));
    if (p->dead_deferred && st == GOSSIP_PEER_DEAD &&
        now_ms(p) - p->resync_since_ms >= GOSSIP_DEFAULT_DEAD_MS) {
        p->dead_deferred = false;
        on_gossip_state(GOSSIP_PEER_DEAD, GOSSIP_PEER_DEAD, false, p);
    } else if (st != GOSSIP_PEER_DEAD) {
        p->dead_deferred = false;
    }
    if (p->takeover_pending)
        take_over(p);
    if (p->takeover_waiting && st == GOSSIP_PEER_DEAD && !peer_listening(p)) {
        p->takeover_waiting = false;
        start_takeover(p);
    }
    if (p->repair != REPAIR_NONE && now_ms(p) - p->repair_sent_ms > PEER_REQ_TIMEOUT_MS) {
        if (p->repair == REPAIR_SNAPSHOT)
            peer_repair_send_snapshot(p);
        else
            peer_repair_send_range(p);
    }
    if (!p->caught_up && p->repair == REPAIR_NONE && st == GOSSIP_PEER_ALIVE)
        peer_repair_start_snapshot(p);
    if (p->resync && st != GOSSIP_PEER_ALIVE && st != GOSSIP_PEER_SUSPECT)
        end_resync(p, "peer not alive");
}

bool peer_caught_up(const struct peer *p)
{
    return p->caught_up;
}

bool peer_resyncing(const struct peer *p)
{
    /* Dispatch's timer may run before ours after a SIGSTOP: look for the
     * stall here too, before any attempt starts from a stale queue. */
    check_stall((struct peer *)p);
    return p->resync;
}

bool peer_refusing(const struct peer *p)
{
    check_stall((struct peer *)p);
    return !p->caught_up || p->resync;
}

void peer_takeover_gossip_cbs(struct gossip_callbacks *cbs)
{
    cbs->fill = gossip_fill;
    cbs->on_peer = on_gossip_peer;
    cbs->on_peer_state = on_gossip_state;
    cbs->on_checker = on_gossip_checker;
}
