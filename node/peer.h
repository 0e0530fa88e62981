/* Replication with the peer node: our ledger events go out on an nng pub
 * socket in batches, the peer's come in on a sub socket and are applied in
 * sequence; each batch also acknowledges the peer's events we hold, and a fast
 * lane of datagrams on gossip's socket carries what a client waits for. Gaps
 * are repaired over nng req/rep (a range of events from the peer's ring, or a
 * snapshot of its whole ledger when the range is gone or we restarted). UDP
 * gossip (node/gossip) gives liveness, the checker election and the health
 * view. On the peer's death we take over its unfinished payments; after our
 * own stall (SIGSTOP, overload) we stop dispatching and refuse payments until
 * we have caught up with the peer again.
 *
 * The peer never sees struct node: it gets the ledger, dispatch and health it
 * works with, and asks the node the rest through struct peer_callbacks.
 * Sources: peer.c (lifecycle, sockets, metrics), peer_stream.c (the stream,
 * the fast lane, held replies), peer_repair.c (repairs), peer_takeover.c
 * (stalls, gossip glue, takeover), sharing node/peer_internal.h.
 *
 * Endpoints: NNG_LISTEN is our pub socket, and the same host with port + 1 our
 * rep socket; PEER_NNG_URL likewise for the peer. docs/REPLICATION.md tells
 * the protocol and its guarantees. Loop thread only, except the nng pipe
 * notifications, which only touch atomic counters. */
#ifndef NODE_PEER_H
#define NODE_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "proto/event.h"

struct dispatch;
struct health;
struct http_exchange;
struct ledger;
struct metrics;
struct payment;
struct trace_ctx;
struct tracer;

struct peer;

/* What the peer reads of the configuration. Strings are copied by peer_new. */
struct peer_config {
    uint8_t node_id;            /* NODE_ID: ours, 1..255 */
    const char *nng_listen;     /* NNG_LISTEN: "tcp://host:port" (our rep: port + 1) */
    const char *peer_nng_url;   /* PEER_NNG_URL: the peer's, likewise */
    const char *gossip_listen;  /* GOSSIP_LISTEN: "host:port" (port 0: ephemeral) */
    const char *peer_gossip;    /* PEER_GOSSIP: the peer's "host:port"; NULL or "": none yet */
    const char *key;            /* PEER_KEY: the pair's secret; NULL or "": links in the clear */
    bool fast_lane;             /* PEER_FAST_LANE */
    unsigned stream_flush_ms;   /* STREAM_FLUSH_MS: stream batching with the fast lane on */
    unsigned test_drop_batches; /* PAYNODE_TEST_DROP_BATCHES: tests only; drop every Nth batch
                                   (and datagram) received, 0 = none */
};

/* What the peer asks of the node; all required, called on the loop thread. */
struct peer_callbacks {
    uint64_t (*own_seq)(void *arg);     /* the last seq given to one of our events */
    uint64_t (*purge_epoch)(void *arg); /* the last PURGED epoch applied */
    /* A purge that made no event of ours (the peer's, or met in a snapshot)
     * moved the epoch up: the peer has emptied the ledger and dispatch. */
    void (*set_purge_epoch)(void *arg, uint64_t epoch);
    bool (*stopping)(void *arg); /* the node drains (its heartbeats say so) */
    void *arg;
};

/* Allocates. ledger, dispatch and health are the node's and must outlive the
 * peer (dispatch may be stopped, not freed, before peer_close); cbs is
 * copied. NULL on allocation failure, a bad URL or key (logged). */
struct peer *peer_new(uv_loop_t *loop, const struct peer_config *cfg, struct ledger *ledger,
                      struct dispatch *dispatch, struct health *health,
                      const struct peer_callbacks *cbs);
/* Opens the sockets, starts gossip and asks the peer for its ledger. Returns
 * 0 or a negative errno (logged). */
int peer_start(struct peer *p) __attribute__((warn_unused_result));

/* Queues one of our events for the next batch (node_emit calls it). */
void peer_publish(struct peer *p, const struct event *ev);

/* True once we hold the peer's ledger (snapshot done), or when the peer is
 * dead and there is nobody to catch up from. */
bool peer_caught_up(const struct peer *p);

/* True while payments must not be taken: not caught up, or resynchronising
 * after a stall of our own loop. The API answers 503 then (nginx retries on
 * the other node). */
bool peer_refusing(const struct peer *p);

/* True while resynchronising after a stall of our own loop (not while
 * catching up at start-up): dispatch starts no attempt then. */
bool peer_resyncing(const struct peer *p);

/* How a held request is answered (api.c). */
typedef void peer_reply_fn(struct http_exchange *x);

/* Answers the request behind x with reply(x) once the peer holds our event
 * seq, or at once when the peer cannot acknowledge (not alive, not ready, no
 * subscriber). Holds at most PEER_HOLD_MAX_MS. Used for a payment's 2xx (the
 * peer holds it before the client hears "accepted") and for a purge's answer
 * (the peer has purged before the client sends its next payment). parent
 * (copied; NULL for none) is a sampled span's context: a reply that was held
 * then becomes an INTERNAL span "peer ack wait", its child, from the hold to
 * the answer (peer_set_tracer()). */
void peer_reply_when_acked(struct peer *p, struct http_exchange *x, uint64_t seq,
                           peer_reply_fn *reply, const struct trace_ctx *parent);

/* Tracing (t NULL: off, the default): t must outlive peer_close()'s callback. */
void peer_set_tracer(struct peer *p, struct tracer *t);

/* Whether the peer holds our event seq (of this incarnation). When not, the
 * caller is taken to wait for it: the fast lane asks the peer for an ack
 * before the loop next blocks, and dispatch_kick follows the ack. */
bool peer_acked(struct peer *p, uint64_t seq);
/* Whether the peer might see our events now (a subscriber is connected). */
bool peer_listening(const struct peer *p);
/* Whether our events may reach the peer now or later (by a repair): unless
 * it is dead to gossip with no connection to us. */
bool peer_may_know(const struct peer *p);
/* Whether gossip says the peer is alive. */
bool peer_alive(const struct peer *p);

/* Appends the replication samples (paynode_peer_*) to m: lib/metrics.h, whose
 * error (metrics_error) says whether they all fit. */
void peer_metrics(const struct peer *p, struct metrics *m);

typedef void peer_closed_cb(void *arg);
/* Sends the last batch, closes gossip, sockets and handles, frees p, then cb. */
void peer_close(struct peer *p, peer_closed_cb *cb, void *arg);

#endif
