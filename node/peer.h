/* Replication with the peer node: our ledger events go out on an nng pub
 * socket in batches (one per loop iteration), the peer's come in on a sub
 * socket and are applied in sequence; each batch also acknowledges the peer's
 * events we hold. Gaps are repaired over nng req/rep (a range of events from
 * the peer's ring, or a snapshot of its whole ledger when the range is gone or
 * we restarted). UDP gossip (node/gossip) gives liveness, the checker election
 * and the health view. On the peer's death we take over its unfinished
 * payments; after our own stall (SIGSTOP, overload) we stop dispatching and
 * refuse payments until we have caught up with the peer again.
 *
 * Endpoints: NNG_LISTEN is our pub socket, and the same host with port + 1 our
 * rep socket; PEER_NNG_URL likewise for the peer. docs/REPLICATION.md tells
 * the protocol and its guarantees. Loop thread only, except the nng pipe
 * notifications, which only touch an atomic counter. */
#ifndef NODE_PEER_H
#define NODE_PEER_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/event.h"

struct node;
struct http_exchange;
struct payment;

struct peer;

/* Allocates; reads n->cfg. NULL on allocation failure or a bad URL. */
struct peer *peer_new(struct node *n);
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
 * (the peer has purged before the client sends its next payment). */
void peer_reply_when_acked(struct peer *p, struct http_exchange *x, uint64_t seq,
                           peer_reply_fn *reply);

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

/* Prometheus lines for /metrics; returns bytes written (truncated to cap). */
size_t peer_metrics(const struct peer *p, char *buf, size_t cap);

typedef void peer_closed_cb(void *arg);
/* Sends the last batch, closes gossip, sockets and handles, frees p, then cb. */
void peer_close(struct peer *p, peer_closed_cb *cb, void *arg);

#endif
