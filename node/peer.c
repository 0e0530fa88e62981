/* Replication with the peer: nng pub/sub for the event stream of record and
 * its acknowledgements, a fast lane of datagrams on gossip's UDP socket for
 * what a client waits for (events and acks loop to loop, no thread hop), nng
 * req/rep for repairs (event ranges from a ring of our recent events, or a
 * snapshot of the whole ledger), node/gossip for liveness, election and the
 * shared health view. What it guarantees and why is in docs/REPLICATION.md.
 * This file moves events and decides when the node is in sync; it makes no
 * routing decision (dispatch does). */
#include "node/peer.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "lib/container.h"
#include "node/dispatch.h"
#include "node/gossip.h"
#include "node/health.h"
#include "node/ledger.h"
#include "lib/clock.h"
#include "lib/log.h"
#include "lib/money.h"
#include "node/node.h"
#include "lib/seal.h"
#include "proto/catchup.h"
#include "proto/repl.h"
#include "proto/wire.h"

#define PEER_MAGIC 0x50454552u    /* "PEER" */
#define PEER_RING_SIZE (1u << 16) /* our recent events kept for range repairs */
#define PEER_HOLD_CAP 8192        /* POST replies waiting for an ack */
#define PEER_HOLD_MAX_MS 300      /* a reply never waits longer (below nginx's timeout) */
#define PEER_TICK_MS 20
#define PEER_STALL_MS 300        /* a loop gap this long means we were frozen */
#define PEER_REQ_TIMEOUT_MS 1000 /* a repair request unanswered this long is re-sent */
#define PEER_RANGE_MAX 1000      /* events per range repair response */
#define PEER_NNG_BUF 8192        /* nng SENDBUF/RECVBUF, messages (the maximum) */
#define PEER_FAST_DATAGRAMS 4    /* fast-lane datagrams per flush at most (the rest: next one) */
/* A stream batch goes out at least this often: it proves our connection. */
#define PEER_STREAM_KEEPALIVE_MS 200
#define PEER_EPOCH_STEP_MAX 16                   /* a PURGED epoch at most this far above ours */
#define PEER_SEQ_JUMP_MAX (UINT64_C(1) << 20)    /* a stream jumping further is refused */
#define PEER_TIME_MIN_MS INT64_C(946684800000)   /* 2000-01-01: no event time is older */
#define PEER_TIME_AHEAD_MAX_MS INT64_C(86400000) /* nor more than a day ahead of our clock */

enum peer_repair { REPAIR_NONE = 0, REPAIR_SNAPSHOT, REPAIR_RANGE };

struct held_reply {
    struct http_exchange *x;
    peer_reply_fn *reply; /* what to answer */
    uint64_t seq;         /* our event that the peer must hold */
    uint64_t since_ms;    /* uv_now when held */
};

struct peer {
    uint32_t magic;
    struct node *n;
    uv_loop_t *loop;
    uint8_t self_id;
    uint64_t incarnation; /* ns since epoch at start */
    char pub_url[CONFIG_URL_MAX + 8], rep_url[CONFIG_URL_MAX + 8];
    char peer_pub_url[CONFIG_URL_MAX + 8], peer_rep_url[CONFIG_URL_MAX + 8];

    nng_socket pub, sub, rep, req;
    bool pub_open, sub_open, rep_open, req_open;
    uv_poll_t sub_poll, rep_poll, req_poll;
    bool polls_started;
    uv_prepare_t flush_prepare;
    uv_check_t flush_check;
    uv_idle_t flush_idle;    /* keeps poll from blocking until the check phase flushes */
    uv_timer_t stream_timer; /* the nng stream's next flush (fast lane on) */
    uv_timer_t tick;
    struct gossip *gossip;
    atomic_int pub_pipes;    /* subscribers connected to our pub socket (nng threads) */
    atomic_uint peer_pipe;   /* id of our sub connection that delivered an authentic batch of
                                the peer's, 0 when none or closed (nng threads clear it) */
    uint64_t last_stream_ms; /* uv_now of our last stream batch */

    /* Sealing (node/seal.h): every nng message and datagram, when keyed. */
    bool keyed;
    struct seal_key key;
    struct seal_tx tx_stream, tx_req, tx_rep;
    struct seal_rx rx_stream, rx_req, rx_rep;
    uint8_t *plain; /* one opened nng message */

    /* Outgoing nng batch and the ring of our recent events. */
    uint8_t *out;
    struct repl_writer w;
    bool ack_dirty; /* applied peer events not yet acknowledged on the stream */
    struct event *ring;

    /* The fast lane (docs/REPLICATION.md): datagrams through gossip's socket. */
    bool fast_on;             /* PEER_FAST_LANE */
    unsigned stream_flush_ms; /* STREAM_FLUSH_MS */
    uint8_t *fast_out;        /* one datagram */
    uint64_t fast_sent;       /* last of our seqs that went out in a datagram */
    uint64_t want_ack;        /* our highest seq something waits for the peer to hold */
    bool ack_urgent;          /* the peer waits for our ack: send one this iteration */

    /* The peer as we know it. */
    uint8_t peer_id;        /* 0 until heard of */
    uint64_t peer_inc;      /* incarnation whose events `applied` counts */
    uint64_t applied;       /* last seq of the peer's events applied, in order */
    uint64_t acked;         /* our events (this incarnation) the peer holds */
    uint64_t last_batch_ms; /* uv_now of the last batch received */
    bool peer_ready;        /* its heartbeat says it is caught up */

    /* Repairs. */
    enum peer_repair repair;
    bool caught_up;
    uint64_t repair_sent_ms;
    uint32_t snap_cursor;
    bool snap_first;
    uint64_t snap_epoch, snap_hwm, snap_inc;

    /* Our own stalls. */
    uint64_t last_tick_ms;
    bool resync;
    uint64_t resync_since_ms;

    bool takeover_pending;    /* dispatch ran out of room: take over again next tick */
    bool takeover_waiting;    /* the peer is dead to gossip but its connection is up */
    bool dead_deferred;       /* a DEAD right after our own stall, not acted on yet */
    unsigned test_drop_every; /* PAYNODE_TEST_DROP_BATCHES: drop every Nth batch received, */
    uint64_t test_received, test_received_fast; /* stream and datagrams counted apart */

    struct held_reply *holds;
    unsigned hold_head, hold_len;

    uint8_t *rep_buf; /* one repair response */

    struct {
        uint64_t batches_out, batches_in, events_out, events_in, send_errors, gaps, range_repairs,
            snapshots, snapshot_records, replies_held, replies_unacked, stalls, takeovers,
            taken_over, apply_errors, decode_errors, purges_skipped, dead_ignored, datagrams_out,
            datagrams_in, datagram_events_out, datagram_gaps, datagram_send_errors, datagrams_stale,
            unauthentic, refused;
    } st;

    peer_closed_cb *closed_cb;
    void *closed_arg;
    int closing; /* handles still to close */
};

static int nng_to_errno(int rv)
{
    switch (rv) {
    case 0:
        return 0;
    case NNG_ENOMEM:
        return -ENOMEM;
    case NNG_EINVAL:
        return -EINVAL;
    case NNG_EADDRINUSE:
        return -EADDRINUSE;
    case NNG_EADDRINVAL:
        return -EADDRNOTAVAIL;
    case NNG_EAGAIN:
        return -EAGAIN;
    default:
        return -EIO;
    }
}

/* "tcp://host:port" -> same with port + 1. */
static int url_next_port(const char *url, char *out, size_t cap)
{
    const char *colon = strrchr(url, ':');
    if (!colon || colon == url || strncmp(url, "tcp://", 6) != 0)
        return -EINVAL;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port >= 65535)
        return -EINVAL;
    int n = snprintf(out, cap, "%.*s:%ld", (int)(colon - url), url, port + 1);
    return (n > 0 && (size_t)n < cap) ? 0 : -EINVAL;
}

static uint64_t now_ms(const struct peer *p)
{
    return uv_now(p->loop);
}

/* ---- outgoing batches ---------------------------------------------------- */

/* An nng message holding buf[0..len), sealed on tx's channel when keyed.
 * Returns 0 or an NNG_E* code. */
static int make_msg(struct peer *p, struct seal_tx *tx, const uint8_t *buf, size_t len,
                    nng_msg **out)
{
    size_t mlen = p->keyed ? len + SEAL_OVERHEAD : len;
    int rv = nng_msg_alloc(out, mlen);
    if (rv != 0)
        return rv;
    if (!p->keyed) {
        memcpy(nng_msg_body(*out), buf, len);
        return 0;
    }
    if (seal_wrap(tx, buf, len, nng_msg_body(*out), mlen) != (int)mlen) {
        nng_msg_free(*out);
        return NNG_EINVAL;
    }
    return 0;
}

/* The plain contents of a received message: the body itself, or, when keyed,
 * the opened copy in p->plain. NULL (counted) for anything not authentic
 * and fresh on rx's channel. */
static const uint8_t *open_msg(struct peer *p, struct seal_rx *rx, nng_msg *m, size_t *len)
{
    if (!p->keyed) {
        *len = nng_msg_len(m);
        return nng_msg_body(m);
    }
    if (seal_open(rx, nng_msg_body(m), nng_msg_len(m), p->plain, REPL_FRAME_MAX, len, NULL) != 0) {
        p->st.unauthentic++;
        return NULL;
    }
    return p->plain;
}

static void writer_reset(struct peer *p)
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

static bool can_ack(const struct peer *p);

/* Whether something (a held reply, a gated attempt) waits for the peer to
 * hold one of our events that it has not acknowledged yet. */
static bool waiting_for_ack(const struct peer *p)
{
    return p->want_ack > p->acked && can_ack(p);
}

/* Sends the nng batch: every event since the last one, and our ack. */
static void stream_flush(struct peer *p)
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
    int rv = make_msg(p, &p->tx_stream, p->out, len, &m);
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
    writer_reset(p);
}

static void on_stream_timer(uv_timer_t *t)
{
    stream_flush(container_of(t, struct peer, stream_timer));
}

/* With the fast lane on, the stream goes out every stream_flush_ms while
 * there is something to send, so one nng message carries many payments'
 * events at any rate; without it, every loop iteration. */
static void stream_arm(struct peer *p)
{
    if (p->fast_on && !uv_is_active((uv_handle_t *)&p->stream_timer))
        uv_timer_start(&p->stream_timer, on_stream_timer, p->stream_flush_ms, 0);
}

/* The fast lane: when something waits for the peer's ack, one datagram (or a
 * few) carries our events the peer has not acknowledged nor had in a datagram
 * yet, from the ring, oldest first, so that the peer can apply them in order;
 * when the peer waits for ours, the same datagram acknowledges. Datagrams may
 * be lost: the stream carries everything again and repairs the gap. */
static void fast_flush(struct peer *p)
{
    if (!p->fast_on || !p->gossip)
        return;
    uv_idle_stop(&p->flush_idle);
    uint64_t own = p->n->seq;
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

static void on_flush_prepare(uv_prepare_t *h)
{
    struct peer *p = container_of(h, struct peer, flush_prepare);
    if (p->fast_on)
        fast_flush(p);
    else
        stream_flush(p);
}

static void on_flush_check(uv_check_t *h)
{
    struct peer *p = container_of(h, struct peer, flush_check);
    if (p->fast_on)
        fast_flush(p);
    else
        stream_flush(p);
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
        stream_flush(p);
        int rv = repl_writer_add(&p->w, ev);
        assert(rv == 0);
        (void)rv;
    }
    stream_arm(p);
}

/* ---- held replies ------------------------------------------------------- */

/* Whether the peer can acknowledge our events now: alive and caught up to
 * gossip, and (without the fast lane, whose datagrams need no connection)
 * subscribed to our stream. */
static bool can_ack(const struct peer *p)
{
    return p->gossip && gossip_peer_state(p->gossip) == GOSSIP_PEER_ALIVE && p->peer_ready &&
           (p->fast_on || atomic_load(&p->pub_pipes) > 0);
}

/* Answers held replies: those acked, and all of them when force (peer gone),
 * and those older than PEER_HOLD_MAX_MS. */
static void release_holds(struct peer *p, bool force)
{
    uint64_t now = now_ms(p);
    while (p->hold_len > 0) {
        struct held_reply *h = &p->holds[p->hold_head];
        bool acked = h->seq <= p->acked;
        bool expired = now - h->since_ms >= PEER_HOLD_MAX_MS;
        if (!acked && !force && !expired)
            break;
        if (!acked)
            p->st.replies_unacked++;
        struct http_exchange *x = h->x;
        peer_reply_fn *reply = h->reply;
        p->hold_head = (p->hold_head + 1) % PEER_HOLD_CAP;
        p->hold_len--;
        reply(x);
    }
}

void peer_reply_when_acked(struct peer *p, struct http_exchange *x, uint64_t seq,
                           peer_reply_fn *reply)
{
    if (seq <= p->acked || !can_ack(p) || p->hold_len == PEER_HOLD_CAP) {
        if (seq > p->acked)
            p->st.replies_unacked++;
        reply(x);
        return;
    }
    unsigned i = (p->hold_head + p->hold_len) % PEER_HOLD_CAP;
    p->holds[i] = (struct held_reply){.x = x, .reply = reply, .seq = seq, .since_ms = now_ms(p)};
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
    return atomic_load(&p->peer_pipe) != 0;
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
static void purge_locally(struct peer *p, uint64_t epoch)
{
    struct node *n = p->n;
    struct event ev = {
        .type = EVENT_PURGED, .origin = p->peer_id ? p->peer_id : 1, .seq = 1, .epoch = epoch};
    dispatch_purge(n->dispatch);
    (void)!ledger_apply(n->ledger, &ev, NULL);
    if (epoch > n->purge_epoch)
        n->purge_epoch = epoch;
}

/* Whether a peer's event holds values our own API and clock could have made:
 * an amount the API accepts, a processor we know, a time between 2000 and a
 * day from now, a purge epoch at most PEER_EPOCH_STEP_MAX above ours. */
static bool event_sane(const struct peer *p, const struct event *ev)
{
    if (ev->type == EVENT_PURGED)
        return ev->epoch > 0 && ev->epoch <= p->n->purge_epoch + PEER_EPOCH_STEP_MAX;
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
static int apply_peer_event(struct peer *p, const struct event *ev)
{
    struct node *n = p->n;
    if (!event_sane(p, ev)) {
        p->st.refused++;
        log_warn("peer", "event %d seq %" PRIu64 " of node %u out of bounds: refused",
                 (int)ev->type, ev->seq, ev->origin);
        return -EINVAL;
    }
    if (ev->type == EVENT_PURGED) {
        /* Two purges at once (one on each node) are one purge: the second
         * must not wipe what was accepted after the first. */
        if (ev->epoch > n->purge_epoch)
            purge_locally(p, ev->epoch);
        else
            p->st.purges_skipped++;
        return 0;
    }
    struct payment *pay = NULL;
    int rv = ledger_apply(n->ledger, ev, &pay);
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

static void start_range_repair(struct peer *p);
static void start_snapshot(struct peer *p);

/* A new incarnation of the peer: its sequence numbers start again. */
static void peer_restarted(struct peer *p, uint64_t inc)
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
        peer_restarted(p, h.incarnation);
    if (h.ack_incarnation == p->incarnation && h.ack_seq > p->acked && h.ack_seq <= p->n->seq) {
        p->acked = h.ack_seq;
        release_holds(p, false);
        dispatch_kick(p->n->dispatch); /* attempts may wait for this ack */
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
                start_range_repair(p);
            }
            return true;
        }
        if (apply_peer_event(p, &ev) != 0)
            return true; /* not applied, not acknowledged */
        p->applied = ev.seq;
        p->ack_dirty = true;
        p->st.events_in++;
    }
    if (p->ack_dirty)
        stream_arm(p);
    return true;
}

static void on_fast_frame(const uint8_t *data, size_t len, void *arg)
{
    struct peer *p = arg;
    /* Fault injection for tests: behave as if the datagram had been lost. */
    bool drop = p->test_drop_every && ++p->test_received_fast % p->test_drop_every == 0;
    if (!drop)
        (void)on_batch(p, data, len, true);
}

static void on_sub_readable(uv_poll_t *h, int status, int events)
{
    struct peer *p = h->data;
    nng_msg *m;
    while (nng_recvmsg(p->sub, &m, NNG_FLAG_NONBLOCK) == 0) {
        /* Fault injection for tests: behave as if pub/sub had lost it. */
        bool drop = p->test_drop_every && ++p->test_received % p->test_drop_every == 0;
        size_t len = 0;
        const uint8_t *buf = drop ? NULL : open_msg(p, &p->rx_stream, m, &len);
        /* A connection counts as the peer's once it brought an authentic
         * batch of the peer's: a stranger's never does (docs/SECURITY.md). */
        if (buf && on_batch(p, buf, len, false))
            atomic_store(&p->peer_pipe, (unsigned)nng_pipe_id(nng_msg_get_pipe(m)));
        nng_msg_free(m);
    }
}

/* ---- repairs: serving them ---------------------------------------------- */

static void rep_send(struct peer *p, const uint8_t *buf, size_t len)
{
    nng_msg *m;
    if (make_msg(p, &p->tx_rep, buf, len, &m) != 0)
        return;
    if (nng_sendmsg(p->rep, m, NNG_FLAG_NONBLOCK) != 0) {
        nng_msg_free(m);
        p->st.send_errors++;
    }
}

static void serve_range(struct peer *p, const struct catchup_request *rq)
{
    struct catchup_writer w;
    uint64_t own = p->n->seq;
    if (catchup_writer_init(&w, p->rep_buf, REPL_FRAME_MAX, p->self_id, p->incarnation, rq->origin,
                            rq->from_seq) != 0)
        return;
    bool in_ring =
        rq->origin == p->self_id && rq->from_seq <= own && own - rq->from_seq < PEER_RING_SIZE;
    if (in_ring) {
        uint64_t end = own;
        if (end - rq->from_seq >= rq->max_count)
            end = rq->from_seq + rq->max_count - 1;
        for (uint64_t s = rq->from_seq; s <= end; s++)
            if (catchup_writer_add(&w, &p->ring[s & (PEER_RING_SIZE - 1)]) != 0)
                break;
    }
    /* Not in the ring: count 0 with first_seq <= last_seq says "ask for a snapshot". */
    int len = catchup_writer_finish(&w, rq->origin == p->self_id ? own : 0);
    if (len > 0)
        rep_send(p, p->rep_buf, (size_t)len);
}

static void serve_snapshot(struct peer *p, const struct snap_request *rq)
{
    static struct snap_record recs[SNAP_MAX_RECORDS];
    struct ledger *l = p->n->ledger;
    size_t size = ledger_size(l);
    uint32_t i = rq->cursor;
    uint16_t count = 0;
    while (i < size && count < rq->max_count) {
        struct payment *pay = ledger_at(l, i++);
        struct snap_record *r = &recs[count++];
        memcpy(r->id, pay->id, 16);
        r->amount_cents = pay->amount_cents;
        r->accepted_ms = pay->accepted_ms;
        r->requested_at_ms = pay->requested_at_ms;
        r->state = pay->state;
        r->processor = pay->processor;
        r->owner = pay->owner;
        r->failed = pay->failed;
    }
    struct snap_response h = {
        .responder_id = p->self_id,
        .incarnation = p->incarnation,
        .purge_epoch = p->n->purge_epoch,
        .own_seq = p->n->seq,
        .next_cursor = i,
        .done = i >= size,
        .count = count,
    };
    int len = snap_response_encode(&h, recs, p->rep_buf, REPL_FRAME_MAX);
    if (len > 0)
        rep_send(p, p->rep_buf, (size_t)len);
}

static void on_rep_readable(uv_poll_t *h, int status, int events)
{
    struct peer *p = h->data;
    nng_msg *m;
    while (nng_recvmsg(p->rep, &m, NNG_FLAG_NONBLOCK) == 0) {
        size_t len = 0;
        const uint8_t *buf = open_msg(p, &p->rx_req, m, &len);
        struct catchup_request crq;
        struct snap_request srq;
        if (!buf)
            ; /* not the peer's: no answer (REP then waits for the next request) */
        else if (catchup_request_decode(&crq, buf, len) == 0)
            serve_range(p, &crq);
        else if (snap_request_decode(&srq, buf, len) == 0)
            serve_snapshot(p, &srq);
        else
            p->st.decode_errors++; /* REP then waits for the next request */
        nng_msg_free(m);
    }
}

/* ---- repairs: asking for them ------------------------------------------- */

static void req_send(struct peer *p, const uint8_t *buf, size_t len)
{
    nng_msg *m;
    p->repair_sent_ms = now_ms(p);
    if (make_msg(p, &p->tx_req, buf, len, &m) != 0)
        return;
    if (nng_sendmsg(p->req, m, NNG_FLAG_NONBLOCK) != 0) {
        /* Not connected yet: the tick re-sends in a few ticks, not after a
         * whole PEER_REQ_TIMEOUT_MS. */
        nng_msg_free(m);
        p->repair_sent_ms -= PEER_REQ_TIMEOUT_MS - 3 * PEER_TICK_MS;
        p->st.send_errors++;
    }
}

static void send_snapshot_request(struct peer *p)
{
    uint8_t buf[SNAP_REQUEST_LEN];
    struct snap_request rq = {.requester_id = p->self_id,
                              .incarnation = p->incarnation,
                              .cursor = p->snap_cursor,
                              .max_count = SNAP_MAX_RECORDS};
    if (snap_request_encode(&rq, buf, sizeof(buf)) == SNAP_REQUEST_LEN)
        req_send(p, buf, sizeof(buf));
}

static void start_snapshot(struct peer *p)
{
    p->repair = REPAIR_SNAPSHOT;
    p->snap_cursor = 0;
    p->snap_first = true;
    p->st.snapshots++;
    log_info("peer", "asking the peer for its whole ledger");
    send_snapshot_request(p);
}

static void send_range_request(struct peer *p)
{
    uint8_t buf[CATCHUP_REQUEST_LEN];
    struct catchup_request rq = {.requester_id = p->self_id,
                                 .origin = p->peer_id,
                                 .incarnation = p->incarnation,
                                 .from_seq = p->applied + 1,
                                 .max_count = PEER_RANGE_MAX};
    if (catchup_request_encode(&rq, buf, sizeof(buf)) == CATCHUP_REQUEST_LEN)
        req_send(p, buf, sizeof(buf));
}

static void start_range_repair(struct peer *p)
{
    if (p->repair != REPAIR_NONE || p->peer_id == 0)
        return;
    p->repair = REPAIR_RANGE;
    p->st.range_repairs++;
    send_range_request(p);
}

/* Rebuilds one payment from a snapshot record through ordinary events. */
static void apply_record(struct peer *p, const struct snap_record *r)
{
    struct event ev = {.origin = r->owner, .seq = 1, .amount_cents = r->amount_cents};
    memcpy(ev.id, r->id, 16);
    ev.type = EVENT_ACCEPTED;
    ev.at_ms = r->accepted_ms;
    struct payment *pay = NULL;
    int rv = ledger_apply(p->n->ledger, &ev, &pay);
    if (rv != 0 && rv != -EEXIST) {
        p->st.apply_errors++;
        return;
    }
    pay->shared = 1; /* the peer knows it: dispatch gates it (docs/ROUTING.md) */
    for (uint8_t proc = 0; proc < LEDGER_NPROC; proc++) {
        if (r->failed & (1u << proc)) {
            ev.type = EVENT_FAILED;
            ev.processor = proc;
            (void)!ledger_apply(p->n->ledger, &ev, NULL);
        }
    }
    if (r->state == LEDGER_SENDING || r->state == LEDGER_RECORDED) {
        ev.type = r->state == LEDGER_SENDING ? EVENT_SENDING : EVENT_RECORDED;
        ev.processor = r->processor;
        ev.at_ms = r->requested_at_ms;
        (void)!ledger_apply(p->n->ledger, &ev, NULL);
    }
    p->st.snapshot_records++;
}

static void finish_catch_up(struct peer *p, const char *how)
{
    p->repair = REPAIR_NONE;
    if (!p->caught_up)
        log_info("peer", "caught up with the peer (%s), peer seq %" PRIu64, how, p->applied);
    p->caught_up = true;
    p->ack_dirty = true;
    p->ack_urgent = true;
    stream_arm(p);
}

static void on_snapshot_response(struct peer *p, const uint8_t *buf, size_t len)
{
    struct snap_response h;
    if (p->repair != REPAIR_SNAPSHOT || snap_response_decode(&h, buf, len) != 0) {
        p->st.decode_errors += p->repair == REPAIR_SNAPSHOT;
        return;
    }
    if (p->snap_first) {
        p->snap_first = false;
        p->snap_epoch = h.purge_epoch;
        p->snap_hwm = h.own_seq;
        p->snap_inc = h.incarnation;
        p->peer_id = h.responder_id;
        /* The peer purged since we last heard: its PURGED event lies before
         * the stream position this snapshot resumes at, so apply it here. */
        if (h.purge_epoch > p->n->purge_epoch)
            purge_locally(p, h.purge_epoch);
    } else if (h.purge_epoch != p->snap_epoch || h.incarnation != p->snap_inc) {
        /* The peer purged or restarted mid-walk: what earlier chunks brought
         * in is gone there, so it goes here too, and the walk starts again. */
        if (h.purge_epoch > p->n->purge_epoch)
            purge_locally(p, h.purge_epoch);
        start_snapshot(p);
        return;
    }
    for (uint16_t i = 0; i < h.count; i++) {
        struct snap_record r;
        snap_response_record(buf, i, &r);
        apply_record(p, &r);
    }
    if (!h.done) {
        p->snap_cursor = h.next_cursor;
        send_snapshot_request(p);
        return;
    }
    /* Everything up to the peer's seq at the first chunk is in; later events
     * come as a range repair (or are already reflected: applying them again
     * is harmless, the ledger's transitions are idempotent). */
    if (p->snap_inc != p->peer_inc)
        peer_restarted(p, p->snap_inc);
    p->applied = p->snap_hwm;
    finish_catch_up(p, "snapshot");
    start_range_repair(p);
}

static void on_range_response(struct peer *p, const uint8_t *buf, size_t len)
{
    struct catchup_response h;
    struct catchup_iter it;
    if (p->repair != REPAIR_RANGE || catchup_response_decode(&h, &it, buf, len) != 0) {
        p->st.decode_errors += p->repair == REPAIR_RANGE;
        return;
    }
    if (h.incarnation != p->peer_inc) {
        /* Restarted since: whatever we had of it is of the old incarnation. */
        peer_restarted(p, h.incarnation);
        p->repair = REPAIR_NONE;
        start_snapshot(p);
        return;
    }
    if (h.count == 0) {
        if (h.first_seq <= h.last_seq) {
            p->repair = REPAIR_NONE;
            start_snapshot(p); /* the range left the peer's ring */
        } else {
            p->repair = REPAIR_NONE;
        }
        return;
    }
    struct event ev;
    while (catchup_iter_next(&it, &ev) == 1) {
        if (ev.seq != p->applied + 1)
            continue;
        if (apply_peer_event(p, &ev) != 0) {
            /* Refused: ask again later (the digest's next look), not now. */
            p->repair = REPAIR_NONE;
            stream_arm(p);
            return;
        }
        p->applied = ev.seq;
        p->ack_dirty = true;
        p->st.events_in++;
    }
    stream_arm(p);
    if (h.more) {
        send_range_request(p);
        return;
    }
    p->repair = REPAIR_NONE;
}

static void on_req_readable(uv_poll_t *hd, int status, int events)
{
    struct peer *p = hd->data;
    nng_msg *m;
    while (nng_recvmsg(p->req, &m, NNG_FLAG_NONBLOCK) == 0) {
        size_t len = 0;
        const uint8_t *buf = open_msg(p, &p->rx_rep, m, &len);
        if (!buf)
            ; /* not the peer's answer */
        else if (len >= 3 && buf[2] == WIRE_T_SNAP_RESPONSE)
            on_snapshot_response(p, buf, len);
        else
            on_range_response(p, buf, len);
        nng_msg_free(m);
    }
}

/* ---- gossip ------------------------------------------------------------- */

static void gossip_fill(struct heartbeat *hb, void *arg)
{
    struct peer *p = arg;
    struct node *n = p->n;
    if (p->self_id <= HEARTBEAT_MAX_ORIGINS)
        hb->last_seq[p->self_id - 1] = n->seq;
    if (p->peer_id >= 1 && p->peer_id <= HEARTBEAT_MAX_ORIGINS)
        hb->last_seq[p->peer_id - 1] = p->applied;
    struct ledger_totals t;
    ledger_summary(n->ledger, INT64_MIN, INT64_MAX, &t);
    for (int i = 0; i < HEARTBEAT_PROCESSORS; i++) {
        hb->totals[i].count = (uint64_t)t.count[i];
        /* The heartbeat's totals are informative (nothing is decided from
         * them) and carry 64 bits: beyond INT64_MAX cents they saturate, so
         * encoding never fails; the summaries stay exact (128-bit). */
        hb->totals[i].amount_cents = ledger_cents_sum_sat64(t.cents[i]);
        bool failing;
        uint32_t min_ms, age_ms;
        if (health_local_result(n->health, i, &failing, &min_ms, &age_ms)) {
            hb->health[i] = (struct heartbeat_health){
                .valid = true, .failing = failing, .min_response_ms = min_ms, .age_ms = age_ms};
        }
    }
    if (n->stopping)
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
    struct node *n = p->n;
    p->peer_id = hb->node_id;
    p->peer_ready = (hb->flags & HEARTBEAT_F_READY) != 0;
    update_checker(p);
    /* Take the peer's own poll results (never what it got from us). */
    if (!health_is_checker(n->health)) {
        for (int i = 0; i < HEARTBEAT_PROCESSORS; i++)
            if (hb->health[i].valid)
                health_apply_remote(n->health, i, hb->health[i].failing,
                                    hb->health[i].min_response_ms, hb->health[i].age_ms);
    }
    if (hb->incarnation != p->peer_inc || !p->caught_up)
        return; /* its stream or a snapshot will tell us more */
    uint64_t peer_seq = hb->node_id <= HEARTBEAT_MAX_ORIGINS ? hb->last_seq[hb->node_id - 1] : 0;
    if (peer_seq > p->applied && now_ms(p) - p->last_batch_ms > 2 * PEER_TICK_MS) {
        p->st.gaps++;
        start_range_repair(p); /* the tail of its stream was lost */
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
    int rv = dispatch_resume_unrecorded(p->n->dispatch, p->peer_id, &taken);
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
        release_holds(p, true);
    if (st == GOSSIP_PEER_DEAD && p->keyed) {
        /* Its next process may start with an older clock (seal.h). */
        seal_rx_reset(&p->rx_stream);
        seal_rx_reset(&p->rx_req);
        seal_rx_reset(&p->rx_rep);
    }
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
            finish_catch_up(p, "peer dead, alone");
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
    if (checker != health_is_checker(p->n->health))
        log_info("peer", "health checker: %s", checker ? "this node" : "the peer");
    health_set_checker(p->n->health, checker);
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

static void on_tick(uv_timer_t *t)
{
    struct peer *p = container_of(t, struct peer, tick);
    check_stall(p);
    p->last_tick_ms = now_ms(p);
    if (p->last_tick_ms - p->last_stream_ms >= PEER_STREAM_KEEPALIVE_MS) {
        p->ack_dirty = true; /* a pure ack: keeps our connection proven to the peer */
        stream_flush(p);
    }
    enum gossip_peer_state st = gossip_peer_state(p->gossip);
    release_holds(p, !can_ack(p));
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
            send_snapshot_request(p);
        else
            send_range_request(p);
    }
    if (!p->caught_up && p->repair == REPAIR_NONE && st == GOSSIP_PEER_ALIVE)
        start_snapshot(p);
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

/* ---- start, stop -------------------------------------------------------- */

static void on_pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    struct peer *p = arg;
    if (ev == NNG_PIPE_EV_ADD_POST)
        atomic_fetch_add(&p->pub_pipes, 1);
    else if (ev == NNG_PIPE_EV_REM_POST)
        atomic_fetch_sub(&p->pub_pipes, 1);
}

/* Our connection to the peer's stream closed: if it was the one proven to be
 * the peer's, the peer holds no connection with us any more. */
static void on_sub_pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    struct peer *p = arg;
    unsigned id = (unsigned)nng_pipe_id(pipe);
    atomic_compare_exchange_strong(&p->peer_pipe, &id, 0u);
}

struct peer *peer_new(struct node *n)
{
    struct peer *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->magic = PEER_MAGIC;
    p->n = n;
    p->loop = n->loop;
    p->self_id = (uint8_t)n->cfg.node_id;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    p->incarnation = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    atomic_init(&p->pub_pipes, 0);
    snprintf(p->pub_url, sizeof(p->pub_url), "%s", n->cfg.nng_listen);
    snprintf(p->peer_pub_url, sizeof(p->peer_pub_url), "%s", n->cfg.peer_nng_url);
    p->out = malloc(REPL_FRAME_MAX);
    p->plain = malloc(REPL_FRAME_MAX);
    p->fast_out = malloc(GOSSIP_FRAME_MAX);
    p->rep_buf = malloc(REPL_FRAME_MAX);
    p->ring = calloc(PEER_RING_SIZE, sizeof(*p->ring));
    p->holds = calloc(PEER_HOLD_CAP, sizeof(*p->holds));
    if (!p->out || !p->plain || !p->fast_out || !p->rep_buf || !p->ring || !p->holds ||
        url_next_port(p->pub_url, p->rep_url, sizeof(p->rep_url)) != 0 ||
        url_next_port(p->peer_pub_url, p->peer_rep_url, sizeof(p->peer_rep_url)) != 0) {
        log_error("peer", "bad NNG_LISTEN/PEER_NNG_URL (want tcp://host:port) or out of memory");
        free(p->out);
        free(p->plain);
        free(p->fast_out);
        free(p->rep_buf);
        free(p->ring);
        free(p->holds);
        free(p);
        return NULL;
    }
    p->keyed = n->cfg.peer_key[0] != '\0';
    if (p->keyed) {
        if (seal_global_init() != 0 ||
            seal_key_derive(&p->key, n->cfg.peer_key, strlen(n->cfg.peer_key)) != 0) {
            log_error("peer", "PEER_KEY: cannot derive the key");
            free(p);
            return NULL;
        }
        seal_tx_init(&p->tx_stream, &p->key, p->self_id, SEAL_CH_STREAM, p->incarnation);
        seal_tx_init(&p->tx_req, &p->key, p->self_id, SEAL_CH_REQ, p->incarnation);
        seal_tx_init(&p->tx_rep, &p->key, p->self_id, SEAL_CH_REP, p->incarnation);
        seal_rx_init(&p->rx_stream, &p->key, p->self_id, SEAL_CH_STREAM);
        seal_rx_init(&p->rx_req, &p->key, p->self_id, SEAL_CH_REQ);
        seal_rx_init(&p->rx_rep, &p->key, p->self_id, SEAL_CH_REP);
    }
    p->fast_on = n->cfg.peer_fast_lane != 0;
    p->stream_flush_ms = n->cfg.stream_flush_ms;
    p->test_drop_every = n->cfg.test_drop_batches;
    if (p->test_drop_every)
        log_warn("peer", "test mode: dropping every %u-th batch received", p->test_drop_every);
    writer_reset(p);
    return p;
}

static int open_sockets(struct peer *p)
{
    int rv;
    if ((rv = nng_pub0_open(&p->pub)) != 0)
        return rv;
    p->pub_open = true;
    if ((rv = nng_sub0_open(&p->sub)) != 0)
        return rv;
    p->sub_open = true;
    if ((rv = nng_rep0_open(&p->rep)) != 0)
        return rv;
    p->rep_open = true;
    if ((rv = nng_req0_open(&p->req)) != 0)
        return rv;
    p->req_open = true;

    nng_socket all[4] = {p->pub, p->sub, p->rep, p->req};
    for (int i = 0; i < 4; i++) {
        nng_socket_set_size(all[i], NNG_OPT_RECVMAXSZ, REPL_FRAME_MAX + 1024);
        nng_socket_set_ms(all[i], NNG_OPT_RECONNMINT, 10);
        nng_socket_set_ms(all[i], NNG_OPT_RECONNMAXT, 200);
    }
    if ((rv = nng_socket_set_int(p->pub, NNG_OPT_SENDBUF, PEER_NNG_BUF)) != 0 ||
        (rv = nng_socket_set_int(p->sub, NNG_OPT_RECVBUF, PEER_NNG_BUF)) != 0 ||
        (rv = nng_socket_set(p->sub, NNG_OPT_SUB_SUBSCRIBE, "", 0)) != 0 ||
        (rv = nng_socket_set_ms(p->req, NNG_OPT_REQ_RESENDTIME, PEER_REQ_TIMEOUT_MS)) != 0)
        return rv;
    if ((rv = nng_pipe_notify(p->pub, NNG_PIPE_EV_ADD_POST, on_pipe_event, p)) != 0 ||
        (rv = nng_pipe_notify(p->pub, NNG_PIPE_EV_REM_POST, on_pipe_event, p)) != 0 ||
        (rv = nng_pipe_notify(p->sub, NNG_PIPE_EV_REM_POST, on_sub_pipe_event, p)) != 0)
        return rv;
    if ((rv = nng_listen(p->pub, p->pub_url, NULL, 0)) != 0) {
        log_error("peer", "listen %s failed: %s", p->pub_url, nng_strerror(rv));
        return rv;
    }
    if ((rv = nng_listen(p->rep, p->rep_url, NULL, 0)) != 0) {
        log_error("peer", "listen %s failed: %s", p->rep_url, nng_strerror(rv));
        return rv;
    }
    if ((rv = nng_dial(p->sub, p->peer_pub_url, NULL, NNG_FLAG_NONBLOCK)) != 0 ||
        (rv = nng_dial(p->req, p->peer_rep_url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
        log_error("peer", "dial %s failed: %s", p->peer_pub_url, nng_strerror(rv));
        return rv;
    }
    return 0;
}

static int start_poll(struct peer *p, nng_socket s, uv_poll_t *h, uv_poll_cb cb)
{
    int fd;
    int rv = nng_socket_get_int(s, NNG_OPT_RECVFD, &fd);
    if (rv != 0)
        return nng_to_errno(rv);
    rv = uv_poll_init(p->loop, h, fd);
    if (rv != 0)
        return rv;
    h->data = p;
    return uv_poll_start(h, UV_READABLE, cb);
}

int peer_start(struct peer *p)
{
    int rv = open_sockets(p);
    if (rv != 0) {
        log_error("peer", "nng set-up failed: %s", nng_strerror(rv));
        return nng_to_errno(rv);
    }
    if ((rv = start_poll(p, p->sub, &p->sub_poll, on_sub_readable)) != 0 ||
        (rv = start_poll(p, p->rep, &p->rep_poll, on_rep_readable)) != 0 ||
        (rv = start_poll(p, p->req, &p->req_poll, on_req_readable)) != 0)
        return rv;
    p->polls_started = true;
    uv_prepare_init(p->loop, &p->flush_prepare);
    uv_prepare_start(&p->flush_prepare, on_flush_prepare);
    uv_check_init(p->loop, &p->flush_check);
    uv_check_start(&p->flush_check, on_flush_check);
    uv_idle_init(p->loop, &p->flush_idle);
    uv_timer_init(p->loop, &p->stream_timer);
    uv_timer_init(p->loop, &p->tick);
    uv_timer_start(&p->tick, on_tick, PEER_TICK_MS, PEER_TICK_MS);
    p->last_tick_ms = now_ms(p);

    struct gossip_config gc = {
        .self_id = p->self_id,
        .incarnation = p->incarnation,
        .listen_addr = p->n->cfg.gossip_listen,
        .peer_addr = p->n->cfg.peer_gossip,
        .key = p->keyed ? &p->key : NULL,
    };
    struct gossip_callbacks cbs = {
        .fill = gossip_fill,
        .on_peer = on_gossip_peer,
        .on_peer_state = on_gossip_state,
        .on_checker = on_gossip_checker,
        .on_frame = on_fast_frame,
    };
    p->gossip = gossip_new(p->loop, &gc, &cbs, p);
    if (!p->gossip) {
        log_error("peer", "bad GOSSIP_LISTEN/PEER_GOSSIP");
        return -EINVAL;
    }
    rv = gossip_start(p->gossip);
    if (rv != 0) {
        log_error("peer", "gossip on %s failed: %s", gc.listen_addr, uv_strerror(rv));
        return rv;
    }
    health_set_checker(p->n->health, false); /* until gossip knows whether the peer is up */
    if (!p->keyed)
        log_warn("peer",
                 "PEER_INSECURE=1: the links to the peer are NOT authenticated nor private; "
                 "anyone who reaches them can read payments and forge events");
    log_fields(LOG_INFO, "peer", "replication started",
               "\"pub\":\"%s\",\"rep\":\"%s\",\"peerPub\":\"%s\",\"peerRep\":\"%s\"", p->pub_url,
               p->rep_url, p->peer_pub_url, p->peer_rep_url);
    return 0;
}

size_t peer_metrics(const struct peer *p, char *buf, size_t cap)
{
    int n =
        snprintf(buf, cap,
                 "paynode_peer_alive %d\n"
                 "paynode_peer_caught_up %d\n"
                 "paynode_peer_resyncing %d\n"
                 "paynode_peer_subscribers %d\n"
                 "paynode_peer_applied_seq %" PRIu64 "\n"
                 "paynode_peer_acked_seq %" PRIu64 "\n"
                 "paynode_peer_batches_total{dir=\"out\"} %" PRIu64 "\n"
                 "paynode_peer_batches_total{dir=\"in\"} %" PRIu64 "\n"
                 "paynode_peer_events_total{dir=\"out\"} %" PRIu64 "\n"
                 "paynode_peer_events_total{dir=\"in\"} %" PRIu64 "\n"
                 "paynode_peer_send_errors_total %" PRIu64 "\n"
                 "paynode_peer_gaps_total %" PRIu64 "\n"
                 "paynode_peer_range_repairs_total %" PRIu64 "\n"
                 "paynode_peer_snapshots_total %" PRIu64 "\n"
                 "paynode_peer_snapshot_records_total %" PRIu64 "\n"
                 "paynode_peer_replies_held_total %" PRIu64 "\n"
                 "paynode_peer_replies_unacked_total %" PRIu64 "\n"
                 "paynode_peer_stalls_total %" PRIu64 "\n"
                 "paynode_peer_takeovers_total %" PRIu64 "\n"
                 "paynode_peer_taken_over_total %" PRIu64 "\n"
                 "paynode_peer_apply_errors_total %" PRIu64 "\n"
                 "paynode_peer_decode_errors_total %" PRIu64 "\n"
                 "paynode_peer_purges_skipped_total %" PRIu64 "\n"
                 "paynode_peer_dead_ignored_total %" PRIu64 "\n"
                 "paynode_peer_datagrams_total{dir=\"out\"} %" PRIu64 "\n"
                 "paynode_peer_datagrams_total{dir=\"in\"} %" PRIu64 "\n"
                 "paynode_peer_datagram_events_out_total %" PRIu64 "\n"
                 "paynode_peer_datagram_gaps_total %" PRIu64 "\n"
                 "paynode_peer_datagram_send_errors_total %" PRIu64 "\n"
                 "paynode_peer_datagrams_stale_total %" PRIu64 "\n"
                 "paynode_peer_unauthentic_total %" PRIu64 "\n"
                 "paynode_peer_refused_total %" PRIu64 "\n"
                 "paynode_peer_keyed %d\n",
                 peer_alive(p), p->caught_up, p->resync, atomic_load(&p->pub_pipes), p->applied,
                 p->acked, p->st.batches_out, p->st.batches_in, p->st.events_out, p->st.events_in,
                 p->st.send_errors, p->st.gaps, p->st.range_repairs, p->st.snapshots,
                 p->st.snapshot_records, p->st.replies_held, p->st.replies_unacked, p->st.stalls,
                 p->st.takeovers, p->st.taken_over, p->st.apply_errors, p->st.decode_errors,
                 p->st.purges_skipped, p->st.dead_ignored, p->st.datagrams_out, p->st.datagrams_in,
                 p->st.datagram_events_out, p->st.datagram_gaps, p->st.datagram_send_errors,
                 p->st.datagrams_stale, p->st.unauthentic, p->st.refused, p->keyed);
    return n < 0 ? 0 : ((size_t)n < cap ? (size_t)n : cap - 1);
}

static void free_peer(struct peer *p)
{
    peer_closed_cb *cb = p->closed_cb;
    void *arg = p->closed_arg;
    free(p->out);
    free(p->plain);
    free(p->fast_out);
    free(p->rep_buf);
    free(p->ring);
    free(p->holds);
    p->magic = 0;
    free(p);
    if (cb)
        cb(arg);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct peer *p = h->data;
    if (--p->closing > 0)
        return;
    /* Polls are closed: nng may now close its fds. */
    if (p->pub_open)
        nng_close(p->pub);
    if (p->sub_open)
        nng_close(p->sub);
    if (p->rep_open)
        nng_close(p->rep);
    if (p->req_open)
        nng_close(p->req);
    free_peer(p);
}

static void close_handle(struct peer *p, uv_handle_t *h)
{
    h->data = p;
    p->closing++;
    uv_close(h, on_handle_closed);
}

static void on_gossip_closed(struct gossip *g, void *arg)
{
    struct peer *p = arg;
    p->gossip = NULL;
    p->closing++; /* guard while handles are queued for closing */
    if (p->polls_started) {
        close_handle(p, (uv_handle_t *)&p->sub_poll);
        close_handle(p, (uv_handle_t *)&p->rep_poll);
        close_handle(p, (uv_handle_t *)&p->req_poll);
        close_handle(p, (uv_handle_t *)&p->flush_prepare);
        close_handle(p, (uv_handle_t *)&p->flush_check);
        close_handle(p, (uv_handle_t *)&p->flush_idle);
        close_handle(p, (uv_handle_t *)&p->stream_timer);
        close_handle(p, (uv_handle_t *)&p->tick);
    }
    uv_handle_t guard;
    guard.data = p;
    on_handle_closed(&guard);
}

void peer_close(struct peer *p, peer_closed_cb *cb, void *arg)
{
    assert(p->magic == PEER_MAGIC);
    p->closed_cb = cb;
    p->closed_arg = arg;
    release_holds(p, true);
    fast_flush(p);
    stream_flush(p);
    if (p->gossip)
        gossip_close(p->gossip, on_gossip_closed, p);
    else
        on_gossip_closed(NULL, p);
}
