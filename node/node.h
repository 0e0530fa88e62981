/* The node: the one struct that owns every module of a running node, shared
 * by main.c (wiring), api.c (routes) and the replication modules. Everything
 * in it is touched only from the loop thread. */
#ifndef NODE_NODE_H
#define NODE_NODE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "node/api.h"
#include "node/config.h"
#include "node/ledger.h"
#include "node/obs.h"
#include "proto/event.h"

#define NODE_MAGIC 0x4e4f4445u /* "NODE" */

struct dispatch;
struct health;
struct http_server;
struct httpc;
struct peer;

struct node_counters {
    uint64_t http_requests;
    uint64_t payments_accepted;  /* new payments answered 2xx */
    uint64_t payments_duplicate; /* repeats of a known correlationId answered 2xx */
    uint64_t payments_conflict;  /* repeats with another amount (409) */
    uint64_t payments_invalid;   /* 400/422 */
    uint64_t payments_refused;   /* 503: queue or ledger full, not ready */
    uint64_t summaries;
    uint64_t purges;
    uint64_t purges_refused; /* 401: PURGE_TOKEN set, X-Rinha-Token missing or wrong */
    uint64_t events_applied; /* our own events */
    uint64_t event_errors;   /* ledger_apply refusals of our own events (bugs) */
};

struct node {
    uint32_t magic;
    struct config cfg;
    uv_loop_t *loop;
    struct ledger *ledger;
    struct httpc *httpc;
    struct health *health;
    struct dispatch *dispatch;
    struct http_server *http;
    struct peer *peer;    /* NULL when running alone */
    uint64_t seq;         /* last sequence number we gave to one of our events */
    uint64_t purge_epoch; /* last PURGED epoch applied */
    int64_t started_ms;   /* wall ms at start, also our incarnation */
    bool stopping;        /* SIGTERM received */
    struct node_counters counters;
    struct api api; /* the HTTP routes' state (api_init()) */
    struct obs obs; /* latency histograms and tracing (obs_init(), obs_start()) */
};

/* Makes one of our own events: sets origin and the next seq, applies it to the
 * ledger and hands it to replication. Returns ledger_apply()'s result; on
 * anything but 0 the event is not replicated (and seq is not consumed). */
int node_emit(struct node *n, struct event *ev, struct payment **out);

/* Whether a NEW local payment may be accepted: the ledger holds fewer than
 * its capacity minus cfg.ledger_reserve, the room kept for the peer's payments
 * (docs/REPLICATION.md, "Capacity"). The peer's events may use that room; our
 * own API may not. */
bool node_has_room(const struct node *n);

/* Whether summaries can be answered: false while a restarted node catches up
 * with its peer. */
bool node_ready(const struct node *n);

#endif
