/* The node's event path: every change to the ledger that this node makes goes
 * through node_emit(), which numbers it, applies it and replicates it. */
#include "node/node.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>

#include "lib/log.h"
#include "node/peer.h"

int node_emit(struct node *n, struct event *ev, struct payment **out)
{
    assert(n->magic == NODE_MAGIC);
    ev->origin = (uint8_t)n->cfg.node_id;
    ev->seq = n->seq + 1;
    struct payment *pay = NULL;
    int rv = ledger_apply(n->ledger, ev, &pay);
    if (out)
        *out = pay;
    if (rv != 0) {
        /* Duplicates and a full ledger are the caller's business; the rest
         * means a caller broke the state machine. */
        if (rv != -EEXIST && rv != -ENOSPC) {
            n->counters.event_errors++;
            log_error("node", "own event type %d refused by the ledger: %d", (int)ev->type, rv);
        }
        return rv;
    }
    n->seq = ev->seq;
    n->counters.events_applied++;
    if (ev->type == EVENT_PURGED)
        n->purge_epoch = ev->epoch;
    if (n->peer) {
        peer_publish(n->peer, ev);
        /* The event may reach the peer, now or by a later repair: dispatch
         * must then treat the payment as known there (docs/ROUTING.md, "In a
         * pair"). Only while the peer is dead with no connection to us does a
         * payment stay ours alone. */
        if (pay && peer_may_know(n->peer))
            pay->shared = 1;
    }
    return 0;
}

bool node_has_room(const struct node *n)
{
    size_t cap = ledger_capacity(n->ledger), reserve = n->cfg.ledger_reserve;
    return reserve < cap && ledger_size(n->ledger) < cap - reserve;
}

bool node_ready(const struct node *n)
{
    return n->peer == NULL || peer_caught_up(n->peer);
}
