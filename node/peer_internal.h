/* The peer module's private header: struct peer, shared by node/peer.c
 * (lifecycle, sockets, sealing, metrics), node/peer_stream.c (the event stream,
 * the fast lane, held replies, applying the peer's events), node/peer_repair.c
 * (range and snapshot repairs over req/rep) and node/peer_takeover.c (stalls,
 * gossip and election glue, takeover, the tick). Nothing else includes it
 * (but the unit test). Loop thread only, but the atomics noted below. */
#ifndef NODE_PEER_INTERNAL_H
#define NODE_PEER_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <nng/nng.h>

#include "lib/hist.h"
#include "lib/seal.h"
#include "lib/trace.h"
#include "node/config.h"
#include "node/peer.h"
#include "proto/catchup.h"
#include "proto/event.h"
#include "proto/repl.h"

struct dispatch;
struct gossip;
struct gossip_callbacks;
struct health;
struct ledger;

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
    uint64_t since_ns;    /* uv_hrtime when held: the ack wait's histogram */
    bool traced;          /* parent holds a sampled span's context: a span on release */
    struct trace_ctx parent;
};

struct peer {
    uint32_t magic;
    uv_loop_t *loop;
    struct ledger *ledger;     /* the node's, shared */
    struct dispatch *dispatch; /* the node's: purge, kick, takeover */
    struct health *health;     /* the node's: checker role, results shared */
    struct peer_callbacks cb;  /* what else we ask of the node */
    uint8_t self_id;
    uint64_t incarnation; /* ns since epoch at start */
    char pub_url[CONFIG_URL_MAX + 8], rep_url[CONFIG_URL_MAX + 8];
    char peer_pub_url[CONFIG_URL_MAX + 8], peer_rep_url[CONFIG_URL_MAX + 8];
    char gossip_listen[CONFIG_URL_MAX], peer_gossip[CONFIG_URL_MAX]; /* "" = not known yet */

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
    atomic_uint sub_pipe;    /* id of our sub connection while it is open, else 0 (nng
                                threads set and clear it) */
    unsigned proven_pipe;    /* id of the sub connection that delivered an authentic batch of
                                the peer's (loop thread); it counts while it is sub_pipe */
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
    struct tracer *tracer; /* NULL: tracing off */
    struct hist ack_wait; /* held reply -> the peer's ack, for those acked */

    uint8_t *rep_buf;              /* one repair response */
    struct snap_record *snap_recs; /* one snapshot chunk's records (SNAP_MAX_RECORDS) */

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

static inline uint64_t now_ms(const struct peer *p)
{
    return uv_now(p->loop);
}

/* The node's side, through the callbacks. */
static inline uint64_t own_seq(const struct peer *p)
{
    return p->cb.own_seq(p->cb.arg);
}

static inline uint64_t own_purge_epoch(const struct peer *p)
{
    return p->cb.purge_epoch(p->cb.arg);
}

/* ---- node/peer.c: sealing ---- */

/* A message of buf[0..len), sealed when keyed: 0 or an NNG_E* code. */
int peer_make_msg(struct peer *p, struct seal_tx *tx, const uint8_t *buf, size_t len,
                  nng_msg **out);
/* A received message's plain contents, or NULL (counted): not authentic. */
const uint8_t *peer_open_msg(struct peer *p, struct seal_rx *rx, nng_msg *m, size_t *len);

/* ---- node/peer_stream.c: the stream, the fast lane, held replies ---- */

/* Starts the next outgoing batch (header: our ids and current ack). */
void peer_stream_reset(struct peer *p);
/* Sends the nng batch: every event since the last one, and our ack. */
void peer_stream_flush(struct peer *p);
/* Makes sure a stream flush is due (the timer with the fast lane on). */
void peer_stream_arm(struct peer *p);
/* Sends the fast lane's datagrams when something waits for an ack. */
void peer_stream_fast_flush(struct peer *p);
void peer_stream_on_prepare(uv_prepare_t *h);
void peer_stream_on_check(uv_check_t *h);
/* Whether the peer can acknowledge our events now. */
bool peer_stream_can_ack(const struct peer *p);
/* Answers held replies that are acked, expired, or all of them when force. */
void peer_stream_release_holds(struct peer *p, bool force);
/* Empties ledger and dispatch without an event; purge epoch up to epoch. */
void peer_stream_purge(struct peer *p, uint64_t epoch);
/* Applies one of the peer's events: 0, or refused (not to be acknowledged). */
int peer_stream_apply(struct peer *p, const struct event *ev);
/* A new incarnation of the peer: its sequence numbers start again. */
void peer_stream_restarted(struct peer *p, uint64_t inc);
/* gossip's on_frame: a fast-lane datagram. */
void peer_stream_on_frame(const uint8_t *data, size_t len, void *arg);
/* The sub socket is readable: stream batches. */
void peer_stream_on_readable(uv_poll_t *h, int status, int events);

/* ---- node/peer_repair.c: range and snapshot repairs ---- */

void peer_repair_on_rep_readable(uv_poll_t *h, int status, int events);
void peer_repair_on_req_readable(uv_poll_t *hd, int status, int events);
void peer_repair_send_snapshot(struct peer *p);
void peer_repair_send_range(struct peer *p);
/* Walks the peer's whole ledger from the start. */
void peer_repair_start_snapshot(struct peer *p);
/* Asks for the peer's events after `applied`, unless a repair runs. */
void peer_repair_start_range(struct peer *p);
/* We hold the peer's ledger: caught up (logged once), ack at once. */
void peer_repair_finish(struct peer *p, const char *how);

/* ---- node/peer_takeover.c: stalls, gossip glue, takeover ---- */

/* The tick: stalls, held replies, repair time-outs, takeover. */
void peer_takeover_on_tick(uv_timer_t *t);
/* gossip's callbacks but on_frame (the stream's). */
void peer_takeover_gossip_cbs(struct gossip_callbacks *cbs);

#endif
