/* The peer's event stream and its fast lane (docs/REPLICATION.md, "Two paths
 * for the same events"): our events go out in nng batches and, when something
 * waits for the peer's ack, in datagrams on gossip's socket; the peer's come
 * in by both and are applied once each, in order. Held replies wait here for
 * the peer's ack. Repairs are node/peer_repair.c's. */
#include "node/peer.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>
#include <uv.h>

#include <nng/nng.h>

#include "lib/clock.h"
#include "lib/container.h"
#include "lib/log.h"
#include "lib/money.h"
#include "lib/trace.h"
#include "node/dispatch.h"
#include "node/gossip.h"
#include "node/ledger.h"
#include "node/peer_internal.h"
#include "proto/repl.h"

void peer_stream_reset(struct peer *p)
{
    struct repl_batch h = {
        .sender_id = p->self_id,
        .incarnation = p->incarnation,
        .ack_incarnation = p->peer_inc,
        .ack_seq = p->applied,
    };
    int rv = repl_writer_init(&p->w, p->out, REPL_FRAME_MAX, &h);
    assert(rv == 0);
    (void)rv;
}

/* Whether something (a held reply, a gated attempt) waits for the peer to
 * hold one of our events that it has not acknowledged yet. */
static bool waiting_for_ack(const struct peer *p)
{
    return p->want_ack > p->acked && peer_stream_can_ack(p);
}

/* Sends the nng batch: every event since the last one, and our ack. */
void peer_stream_flush(struct peer *p)
{
    if (p->w.hdr.count == 0 && !p->ack_dirty)
        return;
    /* The ack goes in at send time: it covers everything applied so far. */
    p->w.hdr.ack_incarnation = p->peer_inc;
    p->w.hdr.ack_seq = p->applied;
    /* With the fast lane on, a batch asks for an ack at once when a datagram
     * may have been lost on the way (we still wait): the stream repairs it. */
    p->w.hdr.ack_wanted = p->fast_on && waiting_for_ack(p);
    size_t len = repl_writer_finish(&p->w);
    nng_msg *m;
    int rv = peer_make_msg(p, &p->tx_stream, p->out, len, &m);
    if (rv == 0) {
        rv = nng_sendmsg(p->pub, m, NNG_FLAG_NONBLOCK);
        if (rv != 0)
            nng_msg_free(m);
    }
    p->last_stream_ms = now_ms(p);
    if (rv != 0) {
        /* Lost events are repaired by the peer's range request. */
        p->st.send_errors++;
    } else {
        p->st.batches_out++;
        p->st.events_out += p->w.hdr.count;
    }
    p->ack_dirty = false;
    peer_stream_reset(p);
}

static void on_stream_timer(uv_timer_t *t)
{
    peer_stream_flush(container_of(t, struct peer, stream_timer));
}

/* With the fast lane on, the stream goes out every stream_flush_ms while
 * there is something to send, so one nng message carries many payments'
 * events at any rate; without it, every loop iteration. */
void peer_stream_arm(struct peer *p)
{
    if (p->fast_on && !uv_is_active((uv_handle_t *)&p->stream_timer))
        uv_timer_start(&p->stream_timer, on_stream_timer, p->stream_flush_ms, 0);
}

/* The fast lane: when something waits for the peer's ack, one datagram (or a
 * few) carries our events the peer has not acknowledged nor had in a datagram
 * yet, from the ring, oldest first, so that the peer can apply them in order;
 * when the peer waits for ours, the same datagram acknowledges. Datagrams may
 * be lost: the stream carries everything again and repairs the gap. */
void peer_stream_fast_flush(struct peer *p)
{
    if (!p->fast_on || !p->gossip)
        return;
    uv_idle_stop(&p->flush_idle);
    uint64_t own = own_seq(p);
    bool want = waiting_for_ack(p);
    /* A datagram goes when the event waited for has not gone in one yet, or
     * when the peer waits for our ack; later events ride along. */
    if (!(want && p->want_ack > p->fast_sent) && !p->ack_urgent)
        return;
    uint64_t from = (p->fast_sent > p->acked ? p->fast_sent : p->acked) + 1;
    if (from <= own && own - from >= PEER_RING_SIZE)
        from = own - PEER_RING_SIZE + 1;
    for (int d = 0; d < PEER_FAST_DATAGRAMS; d++) {
        struct repl_writer fw;
        struct repl_batch h = {
            .sender_id = p->self_id,
            .incarnation = p->incarnation,
            .ack_incarnation = p->peer_inc,
            .ack_seq = p->applied,
            .ack_wanted = want,
        };
        int rv = repl_writer_init(&fw, p->fast_out, GOSSIP_FRAME_MAX, &h);
        assert(rv == 0);
        uint64_t next = from;
        while (next <= own && repl_writer_add(&fw, &p->ring[next & (PEER_RING_SIZE - 1)]) == 0)
            next++;
        size_t len = repl_writer_finish(&fw);
        rv = gossip_send_frame(p->gossip, p->fast_out, len);
        if (rv != 0) {
            p->st.datagram_send_errors++; /* the stream carries them anyway */
            break;
        }
        p->st.datagrams_out++;
        p->st.datagram_events_out += fw.hdr.count;
        if (next > from)
            p->fast_sent = next - 1;
        from = next;
        if (from > own)
            break;
    }
    p->ack_urgent = false;
}

/* Before the loop polls, and again after (the check phase, for what the
 * poll brought): the fast lane's datagrams, or without it the stream. */
static void flush_iteration(struct peer *p)
{
    if (p->fast_on)
        peer_stream_fast_flush(p);
    else
        peer_stream_flush(p);
}

void peer_stream_on_prepare(uv_prepare_t *h)
{
    flush_iteration(container_of(h, struct peer, flush_prepare));
}

void peer_stream_on_check(uv_check_t *h)
{
    flush_iteration(container_of(h, struct peer, flush_check));
}

static void on_flush_idle(uv_idle_t *h)
{
    /* Only there so that the loop polls without blocking: the check flushes. */
}

/* Someone waits for the peer's ack of our event seq: the fast lane sends it
 * before the loop next blocks. */
static void want_ack_of(struct peer *p, uint64_t seq)
{
    if (seq <= p->want_ack)
        return;
    p->want_ack = seq;
    if (p->fast_on && p->gossip)
        uv_idle_start(&p->flush_idle, on_flush_idle);
}

void peer_publish(struct peer *p, const struct event *ev)
{
    assert(p->magic == PEER_MAGIC);
    p->ring[ev->seq & (PEER_RING_SIZE - 1)] = *ev;
    if (repl_writer_add(&p->w, ev) == -ENOSPC) {
        peer_stream_flush(p);
        int rv = repl_writer_add(&p->w, ev);
        assert(rv == 0);
        (void)rv;
    }
    peer_stream_arm(p);
}

/* ---- held replies ------------------------------------------------------- */

/* Whether the peer can acknowledge our events now: alive and caught up to
 * gossip, and (without the fast lane, whose datagrams need no connection)
 * subscribed to our stream. */
bool peer_stream_can_ack(const struct peer *p)
{
    return p->gossip && gossip_peer_state(p->gossip) == GOSSIP_PEER_ALIVE && p->peer_ready &&
           (p->fast_on || atomic_load(&p->pub_pipes) > 0);
}

/* The span of a held reply being answered: acked, or given up on. */
static void trace_hold(struct peer *p, const struct held_reply *h, bool acked, bool expired,
                       uint64_t now_ns)
{
    struct trace_span sp;
    trace_span_child(p->tracer, &sp, "peer ack wait", TRACE_KIND_INTERNAL, &h->parent, h->since_ns);
    const char *r = acked ? "acked" : expired ? "expired" : "peer gone";
    trace_span_str(&sp, "paynode.result", r, strlen(r));
    trace_span_int(&sp, "paynode.seq", (int64_t)h->seq);
    if (!acked)
        trace_span_status(&sp, TRACE_STATUS_ERROR);
    trace_span_end(p->tracer, &sp, now_ns);
}

/* Answers held replies: those acked, and all of them when force (peer gone),
 * and those older than PEER_HOLD_MAX_MS. */
void peer_stream_release_holds(struct peer *p, bool force)
{
    uint64_t now = now_ms(p);
    uint64_t now_ns = p->hold_len > 0 ? uv_hrtime() : 0;
    while (p->hold_len > 0) {
        struct held_reply *h = &p->holds[p->hold_head];
        bool acked = h->seq <= p->acked;
        bool expired = now - h->since_ms >= PEER_HOLD_MAX_MS;
        if (!acked && !force && !expired)
            break;
        if (!acked)
            p->st.replies_unacked++;
        else
            hist_add_ns(&p->ack_wait, now_ns - h->since_ns);
        if (h->traced && p->tracer)
            trace_hold(p, h, acked, expired, now_ns);
        struct http_exchange *x = h->x;
        peer_reply_fn *reply = h->reply;
        p->hold_head = (p->hold_head + 1) % PEER_HOLD_CAP;
        p->hold_len--;
        reply(x);
    }
}

void peer_reply_when_acked(struct peer *p, struct http_exchange *x, uint64_t seq,
                           peer_reply_fn *reply, const struct trace_ctx *parent)
{
    if (seq <= p->acked || !peer_stream_can_ack(p) || p->hold_len == PEER_HOLD_CAP) {
        if (seq > p->acked)
            p->st.replies_unacked++;
        reply(x);
        return;
    }
    unsigned i = (p->hold_head + p->hold_len) % PEER_HOLD_CAP;
    struct held_reply *h = &p->holds[i];
    h->x = x;
    h->reply = reply;
    h->seq = seq;
    h->since_ms = now_ms(p);
    h->since_ns = uv_hrtime();
    h->traced = parent != NULL;
    if (parent)
        h->parent = *parent;
    p->hold_len++;
    p->st.replies_held++;
    want_ack_of(p, seq);
}

bool peer_acked(struct peer *p, uint64_t seq)
{
    if (seq <= p->acked)
        return true;
    want_ack_of(p, seq);
    return false;
}

bool peer_listening(const struct peer *p)
{
    /* A batch still queued from a connection already closed must not make
     * it count again: compare with the connection open now. */
    unsigned open = atomic_load(&p->sub_pipe);
    return open != 0 && open == p->proven_pipe;
}

bool peer_may_know(const struct peer *p)
{
    return peer_listening(p) || !p->gossip || gossip_peer_state(p->gossip) != GOSSIP_PEER_DEAD;
}

bool peer_alive(const struct peer *p)
{
    return p->gossip && gossip_peer_state(p->gossip) == GOSSIP_PEER_ALIVE;
}

/* ---- applying the peer's events ---------------------------------------- */

/* Empties our ledger and dispatch without making an event (the purge is the
 * peer's, or the snapshot's), and moves our purge epoch up to `epoch`. */
void peer_stream_purge(struct peer *p, uint64_t epoch)
{
    struct event ev = {
        .type = EVENT_PURGED, .origin = p->peer_id ? p->peer_id : 1, .seq = 1, .epoch = epoch};
    dispatch_purge(p->dispatch);
    (void)!ledger_apply(p->ledger, &ev, NULL);
    if (epoch > own_purge_epoch(p))
        p->cb.set_purge_epoch(p->cb.arg, epoch);
}

/* Whether a peer's event holds values our own API and clock could have made:
 * an amount the API accepts, a processor we know, a time between 2000 and a
 * day from now, a purge epoch at most PEER_EPOCH_STEP_MAX above ours, a trace
 * context only on an ACCEPTED (proto/event.c checks its ids and flags). */
static bool event_sane(const struct peer *p, const struct event *ev)
{
    if (ev->trace_flags && ev->type != EVENT_ACCEPTED)
        return false;
    if (ev->type == EVENT_PURGED)
        return ev->epoch > 0 && ev->epoch <= own_purge_epoch(p) + PEER_EPOCH_STEP_MAX;
    if (ev->type != EVENT_ACCEPTED && ev->processor >= LEDGER_NPROC)
        return false;
    if ((ev->type == EVENT_ACCEPTED || ev->type == EVENT_RECORDED) &&
        (ev->amount_cents < 1 || ev->amount_cents > MONEY_MAX_CENTS))
        return false;
    if (ev->type != EVENT_FAILED) {
        int64_t now = clock_wall_ms();
        if (ev->at_ms < PEER_TIME_MIN_MS || ev->at_ms > now + PEER_TIME_AHEAD_MAX_MS)
            return false;
    }
    return true;
}

/* Applies one of the peer's events. Returns 0 when it is applied or changes
 * nothing (a repeat, an event for a payment purged meanwhile, a transition
 * the ledger calls impossible: logged); -EINVAL for values out of bounds and
 * the ledger's -ENOSPC / -EINVAL: then the event is refused, counted, not
 * acknowledged, and the stream stops there until a repair brings it again. */
int peer_stream_apply(struct peer *p, const struct event *ev)
{
    if (!event_sane(p, ev)) {
        p->st.refused++;
        log_warn("peer", "event %d seq %" PRIu64 " of node %u out of bounds: refused",
                 (int)ev->type, ev->seq, ev->origin);
        return -EINVAL;
    }
    if (ev->type == EVENT_PURGED) {
        /* Two purges at once (one on each node) are one purge: the second
         * must not wipe what was accepted after the first. */
        if (ev->epoch > own_purge_epoch(p))
            peer_stream_purge(p, ev->epoch);
        else
            p->st.purges_skipped++;
        return 0;
    }
    struct payment *pay = NULL;
    int rv = ledger_apply(p->ledger, ev, &pay);
    if (pay)
        pay->shared = 1; /* the peer knows it: dispatch gates it (docs/ROUTING.md) */
    if (rv == -ENOSPC || rv == -EINVAL) {
        p->st.refused++;
        log_warn("peer", "event %d seq %" PRIu64 " of node %u refused by the ledger: %d",
                 (int)ev->type, ev->seq, ev->origin, rv);
        return rv;
    }
    if (rv != 0 && rv != -EEXIST && rv != -EPROTO) {
        p->st.apply_errors++;
        log_warn("peer", "event %d seq %" PRIu64 " of node %u not applied: %d", (int)ev->type,
                 ev->seq, ev->origin, rv);
    }
    return 0;
}

/* A new incarnation of the peer: its sequence numbers start again. */
void peer_stream_restarted(struct peer *p, uint64_t inc)
{
    if (p->peer_inc != 0)
        log_info("peer", "peer %u has a new incarnation", p->peer_id);
    p->peer_inc = inc;
    p->applied = 0;
    p->acked = 0;
}

/* A batch from the stream, or from the fast lane (fast): both carry the same
 * events; we apply each seq once, in order. A gap in the stream asks for a
 * range repair; a gap in the fast lane (a datagram lost or overtaken) waits
 * for the stream, which carries everything. */
static bool on_batch(struct peer *p, const uint8_t *buf, size_t len, bool fast)
{
    struct repl_batch h;
    struct repl_iter it;
    if (repl_batch_decode(&h, &it, buf, len) != 0) {
        p->st.decode_errors++;
        return false;
    }
    if (h.sender_id == p->self_id)
        return false;
    if (fast && (h.incarnation != p->peer_inc || h.sender_id != p->peer_id)) {
        /* The fast lane serves a peer the stream has introduced: a restart
         * (new incarnation) is the stream's or a snapshot's to handle, and a
         * datagram of an older process must never roll peer_inc back. */
        p->st.datagrams_stale++;
        return false;
    }
    p->peer_id = h.sender_id;
    if (fast)
        p->st.datagrams_in++;
    else
        p->st.batches_in++;
    p->last_batch_ms = now_ms(p);
    if (h.incarnation != p->peer_inc)
        peer_stream_restarted(p, h.incarnation);
    if (h.ack_incarnation == p->incarnation && h.ack_seq > p->acked && h.ack_seq <= own_seq(p)) {
        p->acked = h.ack_seq;
        peer_stream_release_holds(p, false);
        dispatch_kick(p->dispatch); /* attempts may wait for this ack */
    }
    if (h.ack_wanted)
        p->ack_urgent = true; /* answered by the fast lane before the loop blocks */
    if (p->repair == REPAIR_SNAPSHOT || !p->caught_up)
        return true; /* the snapshot and a range repair after it cover these */
    struct event ev;
    while (repl_iter_next(&it, &ev) == 1) {
        if (ev.seq <= p->applied)
            continue;
        if (ev.seq != p->applied + 1) {
            if (ev.seq - p->applied > PEER_SEQ_JUMP_MAX) {
                p->st.refused++; /* no repair chases a jump no real stream makes */
            } else if (fast) {
                p->st.datagram_gaps++;
            } else {
                p->st.gaps++;
                peer_repair_start_range(p);
            }
            return true;
        }
        if (peer_stream_apply(p, &ev) != 0)
            return true; /* not applied, not acknowledged */
        p->applied = ev.seq;
        p->ack_dirty = true;
        p->st.events_in++;
    }
    if (p->ack_dirty)
        peer_stream_arm(p);
    return true;
}

void peer_stream_on_frame(const uint8_t *data, size_t len, void *arg)
{
    struct peer *p = arg;
    /* Fault injection for tests: behave as if the datagram had been lost. */
    bool drop = p->test_drop_every && ++p->test_received_fast % p->test_drop_every == 0;
    if (!drop)
        (void)on_batch(p, data, len, true);
}

void peer_stream_on_readable(uv_poll_t *h, int status, int events)
{
    struct peer *p = h->data;
    nng_msg *m;
    while (nng_recvmsg(p->sub, &m, NNG_FLAG_NONBLOCK) == 0) {
        /* Fault injection for tests: behave as if pub/sub had lost it. */
        bool drop = p->test_drop_every && ++p->test_received % p->test_drop_every == 0;
        size_t len = 0;
        const uint8_t *buf = drop ? NULL : peer_open_msg(p, &p->rx_stream, m, &len);
        /* A connection counts as the peer's once it brought an authentic
         * batch of the peer's: a stranger's never does (docs/SECURITY.md). */
        if (buf && on_batch(p, buf, len, false))
            p->proven_pipe = (unsigned)nng_pipe_id(nng_msg_get_pipe(m));
        nng_msg_free(m);
    }
}
