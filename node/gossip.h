/* UDP heartbeats between the two peer nodes, on the node's libuv loop: every
 * interval (with jitter) it asks the owner for the local digest, sends one
 * proto/heartbeat datagram to the peer, and reports the peer's heartbeats.
 * The same socket carries the owner's other frames to and from the peer
 * (gossip_send_frame, on_frame): replication's fast lane, loop to loop with no
 * thread in between. Gossip only moves those; it reads nothing in them.
 * From the time since the last valid datagram it derives the peer's liveness
 * (UNKNOWN, ALIVE, SUSPECT, DEAD) and from that the checker election.
 * It does not act on the digest (replication and health belong to the owner).
 *
 * Election: the checker is the lowest node id among the live nodes; self is
 * always live. The peer counts as live for the election once it is "settled":
 *   - it becomes settled on the first valid datagram received at least
 *     handback_ms (default 2 intervals) after it last entered ALIVE (so one
 *     stray datagram never moves the role, and a lower-id node that comes
 *     back takes the role back only after it proved steady);
 *   - it stays settled through SUSPECT and through a restart (new incarnation)
 *     seen while ALIVE; a datagram with another node id starts over;
 *   - it stops being settled when it turns DEAD, or while its heartbeats carry
 *     HEARTBEAT_F_SHUTTING_DOWN (a draining node hands the role over at once).
 * Consequences: a node whose peer is UNKNOWN or DEAD is the checker; the lowest
 * id node is checker from its start, so while it (re)joins both nodes are
 * checker for about handback_ms (overlap, never a gap). */
#ifndef NODE_GOSSIP_H
#define NODE_GOSSIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "lib/seal.h"
#include "proto/heartbeat.h"

#define GOSSIP_DEFAULT_INTERVAL_MS 100
#define GOSSIP_DEFAULT_SUSPECT_MS 500
#define GOSSIP_DEFAULT_DEAD_MS 1000
#define GOSSIP_FRAME_MAX 1400        /* largest frame: one datagram, below a 1500-byte MTU */
#define GOSSIP_RESOLVE_RETRY_MS 1000 /* re-resolve a peer host name this often while not ALIVE */

enum gossip_peer_state {
    GOSSIP_PEER_UNKNOWN = 0, /* nothing received since start, and dead_ms not over yet */
    GOSSIP_PEER_ALIVE,       /* last valid datagram less than suspect_ms ago */
    GOSSIP_PEER_SUSPECT,     /* last valid datagram suspect_ms..dead_ms ago */
    GOSSIP_PEER_DEAD,        /* nothing for dead_ms (or since start) */
};
/* Transitions: UNKNOWN -> ALIVE | DEAD; ALIVE -> SUSPECT -> DEAD (a late timer
 * still reports both steps); SUSPECT | DEAD -> ALIVE on a valid datagram. */

struct gossip_config {
    uint8_t self_id;            /* 1..255; datagrams carrying this id are dropped */
    uint64_t incarnation;       /* this process' start time in ns; must change on restart */
    const char *listen_addr;    /* "host:port", numeric host ("0.0.0.0:7001", "127.0.0.1:0",
                                   "[::]:7001", ":7001" = all IPv4); port 0 = ephemeral */
    const char *peer_addr;      /* "host:port"; host numeric or a name resolved with
                                   uv_getaddrinfo at start (retried while not ALIVE);
                                   NULL = none yet, see gossip_set_peer */
    uint32_t interval_ms;       /* 0 = GOSSIP_DEFAULT_INTERVAL_MS; sends jittered by +-10% */
    uint32_t suspect_ms;        /* 0 = GOSSIP_DEFAULT_SUSPECT_MS; must exceed interval_ms */
    uint32_t dead_ms;           /* 0 = GOSSIP_DEFAULT_DEAD_MS; must exceed suspect_ms */
    uint32_t handback_ms;       /* 0 = 2 * interval_ms; see the election rule above */
    const struct seal_key *key; /* NULL: datagrams in the clear. Else every datagram sent
                                   is sealed (node/seal.h, channel SEAL_CH_UDP) and only
                                   authentic, fresh ones are read; the key must outlive
                                   the gossip */
};

/* Callbacks run on the loop thread. Each may call any gossip_* function,
 * gossip_close included (the gossip then stops delivering further callbacks). */
struct gossip_callbacks {
    /* Required. Fill the local digest into hb before each send: last_seq,
     * totals, health and flags. hb arrives zeroed; node_id, incarnation,
     * counter and checker_id are set by gossip after fill returns. */
    void (*fill)(struct heartbeat *hb, void *arg);
    /* Optional. Every valid, fresh heartbeat from the peer, after the state
     * and before the checker change it may cause. hb is valid during the call. */
    void (*on_peer)(const struct heartbeat *hb, void *arg);
    /* Optional. The peer's liveness changed, or it restarted (new incarnation
     * or new node id): restarted is true and old may equal new_state (ALIVE).
     * A restart after DEAD is reported as DEAD -> ALIVE with restarted true. */
    void (*on_peer_state)(enum gossip_peer_state old, enum gossip_peer_state new_state,
                          bool restarted, void *arg);
    /* Optional. The checker role of this node changed (initially true). */
    void (*on_checker)(bool self_is_checker, void *arg);
    /* Optional. A datagram from the peer's address (authentic, with a key)
     * that is a proto/wire.h frame of another type than a heartbeat (checked:
     * magic, version, and the header's length equal to the datagram's).
     * Unchecked otherwise; data is valid during the call. Without it such
     * datagrams count as malformed. */
    void (*on_frame)(const uint8_t *data, size_t len, void *arg);
};

struct gossip_stats {
    uint64_t sent;                /* datagrams handed to the kernel */
    uint64_t send_errors;         /* sends that failed (EAGAIN, unreachable, ...) or skipped:
                                     peer address not resolved yet */
    uint64_t received;            /* valid fresh heartbeats from the peer */
    uint64_t dropped;             /* sum of the dropped_* below */
    uint64_t dropped_malformed;   /* undecodable, truncated, oversized, receive errors */
    uint64_t dropped_self;        /* carrying our own node id */
    uint64_t dropped_stale;       /* older incarnation, or counter not above the last one */
    uint64_t dropped_foreign;     /* datagrams from another address than the peer's (once it
                                     is resolved) */
    uint64_t dropped_unauthentic; /* with a key: not sealed with it, tampered, or replayed */
    uint64_t frames_sent;         /* gossip_send_frame datagrams handed to the kernel */
    uint64_t frames_received;     /* frames passed to on_frame */
};

struct gossip;
struct metrics;

typedef void gossip_close_cb(struct gossip *g, void *arg);

/* Allocates a gossip for loop with a copy of cfg (strings included) and cbs.
 * Nothing runs until gossip_start. Returns NULL on an invalid config (self_id
 * 0, missing listen address or fill, bad timing order, address too long) or
 * out of memory. */
struct gossip *gossip_new(uv_loop_t *loop, const struct gossip_config *cfg,
                          const struct gossip_callbacks *cbs, void *arg);

/* Binds the UDP socket, starts receiving, resolves the peer and sends the first
 * heartbeat on the next loop iteration. Returns 0, -EINVAL for an unparsable
 * address, -EALREADY if started, or the libuv error (UV_EADDRINUSE, ...). On
 * failure the gossip is unchanged apart from that; it must still be closed. */
int gossip_start(struct gossip *g) __attribute__((warn_unused_result));

/* Replaces the peer address ("host:port", same rules as peer_addr), before or
 * after gossip_start; the peer's liveness state is kept (identity comes from
 * the datagrams, not from the address). Returns 0 or -EINVAL (unparsable, or
 * numeric of the other address family than the bound socket). */
int gossip_set_peer(struct gossip *g, const char *peer_addr) __attribute__((warn_unused_result));

/* Sends a heartbeat now (in addition to the periodic ones), e.g. to spread a
 * state change at once. Returns 0, -EAGAIN if the peer address is not
 * resolved yet, -ESHUTDOWN if not started or closing, or the send error. */
int gossip_send_now(struct gossip *g) __attribute__((warn_unused_result));

/* Sends one frame (a whole proto/wire.h frame, at most GOSSIP_FRAME_MAX bytes)
 * to the peer now, on the loop thread, with one non-blocking send. Returns 0,
 * -EAGAIN if the peer address is not resolved yet or the kernel's buffer is
 * full, -EMSGSIZE, -ESHUTDOWN if not started or closing, or the send error.
 * Datagrams may be lost or reordered: the caller repairs by its own means. */
int gossip_send_frame(struct gossip *g, const uint8_t *frame, size_t len)
    __attribute__((warn_unused_result));

/* Local UDP port after gossip_start (useful with port 0), else 0. */
int gossip_port(const struct gossip *g);

bool gossip_is_checker(const struct gossip *g);
enum gossip_peer_state gossip_peer_state(const struct gossip *g);
const char *gossip_peer_state_name(enum gossip_peer_state s);

/* The peer's last valid heartbeat, or NULL if none yet. Valid until the next
 * loop iteration (it is overwritten by the next datagram). */
const struct heartbeat *gossip_last_peer(const struct gossip *g);

void gossip_stats(const struct gossip *g, struct gossip_stats *out);

/* The gossip's counters as Prometheus samples (paynode_gossip_*): datagrams,
 * send errors, heartbeats received, drops by reason. */
void gossip_metrics(const struct gossip *g, struct metrics *m);

/* Stops timers and the socket; once libuv has closed everything (and any name
 * resolution in flight has returned) calls cb (may be NULL) from the loop and
 * frees g right after cb returns. Callable from a gossip callback
 * and whether or not gossip_start succeeded. g must not be used afterwards. */
void gossip_close(struct gossip *g, gossip_close_cb *cb, void *arg);

#endif
