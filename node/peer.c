/* Replication with the peer: nng pub/sub for the event stream of record and
 * its acknowledgements, a fast lane of datagrams on gossip's UDP socket for
 * what a client waits for (events and acks loop to loop, no thread hop), nng
 * req/rep for repairs (event ranges from a ring of our recent events, or a
 * snapshot of the whole ledger), node/gossip for liveness, election and the
 * shared health view. What it guarantees and why is in docs/REPLICATION.md.
 * The module moves events and decides when the node is in sync; it makes no
 * routing decision (dispatch does). This file holds its lifecycle (new,
 * start, close), the sockets, sealing and /metrics; peer_stream.c,
 * peer_repair.c and peer_takeover.c the rest (node/peer_internal.h). */
#include "node/peer.h"

#include <assert.h>
#include <errno.h>
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

#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/seal.h"
#include "node/gossip.h"
#include "node/health.h"
#include "node/peer_internal.h"
#include "proto/repl.h"

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

/* An nng message holding buf[0..len), sealed on tx's channel when keyed.
 * Returns 0 or an NNG_E* code. */
int peer_make_msg(struct peer *p, struct seal_tx *tx, const uint8_t *buf, size_t len, nng_msg **out)
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
const uint8_t *peer_open_msg(struct peer *p, struct seal_rx *rx, nng_msg *m, size_t *len)
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

/* ---- start, stop -------------------------------------------------------- */

static void on_pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    struct peer *p = arg;
    if (ev == NNG_PIPE_EV_ADD_POST)
        atomic_fetch_add(&p->pub_pipes, 1);
    else if (ev == NNG_PIPE_EV_REM_POST)
        atomic_fetch_sub(&p->pub_pipes, 1);
}

/* Our connection to the peer's address opened or closed (nng threads): the
 * sub socket dials one address, so one connection at a time. */
static void on_sub_pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    struct peer *p = arg;
    unsigned id = (unsigned)nng_pipe_id(pipe);
    if (ev == NNG_PIPE_EV_ADD_POST)
        atomic_store(&p->sub_pipe, id);
    else
        atomic_compare_exchange_strong(&p->sub_pipe, &id, 0u);
}

/* What peer_new allocates besides p itself (any of it may be NULL). */
static void free_buffers(struct peer *p)
{
    free(p->out);
    free(p->plain);
    free(p->fast_out);
    free(p->rep_buf);
    free(p->snap_recs);
    free(p->ring);
    free(p->holds);
}

struct peer *peer_new(uv_loop_t *loop, const struct peer_config *cfg, struct ledger *ledger,
                      struct dispatch *dispatch, struct health *health,
                      const struct peer_callbacks *cbs)
{
    assert(cbs->own_seq && cbs->purge_epoch && cbs->set_purge_epoch && cbs->stopping);
    struct peer *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->magic = PEER_MAGIC;
    hist_init(&p->ack_wait);
    p->loop = loop;
    p->ledger = ledger;
    p->dispatch = dispatch;
    p->health = health;
    p->cb = *cbs;
    p->self_id = cfg->node_id;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    p->incarnation = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    atomic_init(&p->pub_pipes, 0);
    snprintf(p->pub_url, sizeof(p->pub_url), "%s", cfg->nng_listen);
    snprintf(p->peer_pub_url, sizeof(p->peer_pub_url), "%s", cfg->peer_nng_url);
    snprintf(p->gossip_listen, sizeof(p->gossip_listen), "%s", cfg->gossip_listen);
    snprintf(p->peer_gossip, sizeof(p->peer_gossip), "%s",
             cfg->peer_gossip ? cfg->peer_gossip : "");
    p->out = malloc(REPL_FRAME_MAX);
    p->plain = malloc(REPL_FRAME_MAX);
    p->fast_out = malloc(GOSSIP_FRAME_MAX);
    p->rep_buf = malloc(REPL_FRAME_MAX);
    p->snap_recs = calloc(SNAP_MAX_RECORDS, sizeof(*p->snap_recs));
    p->ring = calloc(PEER_RING_SIZE, sizeof(*p->ring));
    p->holds = calloc(PEER_HOLD_CAP, sizeof(*p->holds));
    if (!p->out || !p->plain || !p->fast_out || !p->rep_buf || !p->snap_recs || !p->ring ||
        !p->holds || url_next_port(p->pub_url, p->rep_url, sizeof(p->rep_url)) != 0 ||
        url_next_port(p->peer_pub_url, p->peer_rep_url, sizeof(p->peer_rep_url)) != 0) {
        log_error("peer", "bad NNG_LISTEN/PEER_NNG_URL (want tcp://host:port) or out of memory");
        goto out_free;
    }
    p->keyed = cfg->key && cfg->key[0] != '\0';
    if (p->keyed) {
        if (seal_global_init() != 0 || seal_key_derive(&p->key, cfg->key, strlen(cfg->key)) != 0) {
            log_error("peer", "PEER_KEY: cannot derive the key");
            goto out_free;
        }
        seal_tx_init(&p->tx_stream, &p->key, p->self_id, SEAL_CH_STREAM, p->incarnation);
        seal_tx_init(&p->tx_req, &p->key, p->self_id, SEAL_CH_REQ, p->incarnation);
        seal_tx_init(&p->tx_rep, &p->key, p->self_id, SEAL_CH_REP, p->incarnation);
        seal_rx_init(&p->rx_stream, &p->key, p->self_id, SEAL_CH_STREAM);
        seal_rx_init(&p->rx_req, &p->key, p->self_id, SEAL_CH_REQ);
        seal_rx_init(&p->rx_rep, &p->key, p->self_id, SEAL_CH_REP);
    }
    p->fast_on = cfg->fast_lane;
    p->stream_flush_ms = cfg->stream_flush_ms;
    p->test_drop_every = cfg->test_drop_batches;
    if (p->test_drop_every)
        log_warn("peer", "test mode: dropping every %u-th batch received", p->test_drop_every);
    peer_stream_reset(p);
    return p;
out_free:
    free_buffers(p);
    free(p);
    return NULL;
}

void peer_set_tracer(struct peer *p, struct tracer *t)
{
    assert(p->magic == PEER_MAGIC);
    p->tracer = t;
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
        (rv = nng_pipe_notify(p->sub, NNG_PIPE_EV_ADD_POST, on_sub_pipe_event, p)) != 0 ||
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
    if ((rv = start_poll(p, p->sub, &p->sub_poll, peer_stream_on_readable)) != 0 ||
        (rv = start_poll(p, p->rep, &p->rep_poll, peer_repair_on_rep_readable)) != 0 ||
        (rv = start_poll(p, p->req, &p->req_poll, peer_repair_on_req_readable)) != 0)
        return rv;
    p->polls_started = true;
    uv_prepare_init(p->loop, &p->flush_prepare);
    uv_prepare_start(&p->flush_prepare, peer_stream_on_prepare);
    uv_check_init(p->loop, &p->flush_check);
    uv_check_start(&p->flush_check, peer_stream_on_check);
    uv_idle_init(p->loop, &p->flush_idle);
    uv_timer_init(p->loop, &p->stream_timer);
    uv_timer_init(p->loop, &p->tick);
    uv_timer_start(&p->tick, peer_takeover_on_tick, PEER_TICK_MS, PEER_TICK_MS);
    p->last_tick_ms = now_ms(p);

    struct gossip_config gc = {
        .self_id = p->self_id,
        .incarnation = p->incarnation,
        .listen_addr = p->gossip_listen,
        .peer_addr = p->peer_gossip[0] ? p->peer_gossip : NULL,
        .key = p->keyed ? &p->key : NULL,
    };
    struct gossip_callbacks cbs = {.on_frame = peer_stream_on_frame};
    peer_takeover_gossip_cbs(&cbs);
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
    health_set_checker(p->health, false); /* until gossip knows whether the peer is up */
    if (!p->keyed)
        log_warn("peer",
                 "PEER_INSECURE=1: the links to the peer are NOT authenticated nor private; "
                 "anyone who reaches them can read payments and forge events");
    log_fields(LOG_INFO, "peer", "replication started",
               "\"pub\":\"%s\",\"rep\":\"%s\",\"peerPub\":\"%s\",\"peerRep\":\"%s\"", p->pub_url,
               p->rep_url, p->peer_pub_url, p->peer_rep_url);
    return 0;
}

void peer_metrics(const struct peer *p, struct metrics *m)
{
    const struct {
        const char *name, *help;
        enum metrics_type type;
        const char *dir; /* the "dir" label's value, or NULL */
        uint64_t v;
    } rows[] = {
        {"paynode_peer_alive", "1 if gossip says the peer is alive.", METRICS_GAUGE, NULL,
         peer_alive(p)},
        {"paynode_peer_caught_up", "1 once we hold the peer's ledger (or it is dead).",
         METRICS_GAUGE, NULL, p->caught_up},
        {"paynode_peer_resyncing", "1 while resynchronising after a stall of our loop.",
         METRICS_GAUGE, NULL, p->resync},
        {"paynode_peer_subscribers", "Connections subscribed to our event stream.", METRICS_GAUGE,
         NULL, (uint64_t)atomic_load(&p->pub_pipes)},
        {"paynode_peer_applied_seq", "Last seq of the peer's events applied in order.",
         METRICS_GAUGE, NULL, p->applied},
        {"paynode_peer_acked_seq", "Last seq of our events the peer acknowledged.", METRICS_GAUGE,
         NULL, p->acked},
        {"paynode_peer_batches_total", "Stream batches sent and received.", METRICS_COUNTER, "out",
         p->st.batches_out},
        {"paynode_peer_batches_total", "Stream batches sent and received.", METRICS_COUNTER, "in",
         p->st.batches_in},
        {"paynode_peer_events_total", "Events sent on the stream, and the peer's applied.",
         METRICS_COUNTER, "out", p->st.events_out},
        {"paynode_peer_events_total", "Events sent on the stream, and the peer's applied.",
         METRICS_COUNTER, "in", p->st.events_in},
        {"paynode_peer_send_errors_total", "nng messages that could not be sent.", METRICS_COUNTER,
         NULL, p->st.send_errors},
        {"paynode_peer_gaps_total", "Gaps seen in the peer's stream.", METRICS_COUNTER, NULL,
         p->st.gaps},
        {"paynode_peer_range_repairs_total", "Range repairs started.", METRICS_COUNTER, NULL,
         p->st.range_repairs},
        {"paynode_peer_snapshots_total", "Snapshot walks started.", METRICS_COUNTER, NULL,
         p->st.snapshots},
        {"paynode_peer_snapshot_records_total", "Payments rebuilt from snapshots.", METRICS_COUNTER,
         NULL, p->st.snapshot_records},
        {"paynode_peer_replies_held_total", "Replies held for the peer's ack.", METRICS_COUNTER,
         NULL, p->st.replies_held},
        {"paynode_peer_replies_unacked_total", "Replies given before the peer's ack.",
         METRICS_COUNTER, NULL, p->st.replies_unacked},
        {"paynode_peer_stalls_total", "Stalls of our own loop.", METRICS_COUNTER, NULL,
         p->st.stalls},
        {"paynode_peer_takeovers_total", "Takeovers of the peer's payments.", METRICS_COUNTER, NULL,
         p->st.takeovers},
        {"paynode_peer_taken_over_total", "Payments taken over from the peer.", METRICS_COUNTER,
         NULL, p->st.taken_over},
        {"paynode_peer_apply_errors_total", "The peer's events the ledger could not apply.",
         METRICS_COUNTER, NULL, p->st.apply_errors},
        {"paynode_peer_decode_errors_total", "Undecodable messages from the peer.", METRICS_COUNTER,
         NULL, p->st.decode_errors},
        {"paynode_peer_purges_skipped_total", "The peer's purges already covered by ours.",
         METRICS_COUNTER, NULL, p->st.purges_skipped},
        {"paynode_peer_dead_ignored_total", "Peer deaths seen right after our own stall.",
         METRICS_COUNTER, NULL, p->st.dead_ignored},
        {"paynode_peer_datagrams_total", "Fast-lane datagrams sent and received.", METRICS_COUNTER,
         "out", p->st.datagrams_out},
        {"paynode_peer_datagrams_total", "Fast-lane datagrams sent and received.", METRICS_COUNTER,
         "in", p->st.datagrams_in},
        {"paynode_peer_datagram_events_out_total", "Events sent in fast-lane datagrams.",
         METRICS_COUNTER, NULL, p->st.datagram_events_out},
        {"paynode_peer_datagram_gaps_total", "Datagrams not continuing the peer's sequence.",
         METRICS_COUNTER, NULL, p->st.datagram_gaps},
        {"paynode_peer_datagram_send_errors_total", "Fast-lane datagrams that could not be sent.",
         METRICS_COUNTER, NULL, p->st.datagram_send_errors},
        {"paynode_peer_datagrams_stale_total",
         "Datagrams of an incarnation the stream has not introduced.", METRICS_COUNTER, NULL,
         p->st.datagrams_stale},
        {"paynode_peer_unauthentic_total", "Messages not sealed with the pair's key, or replayed.",
         METRICS_COUNTER, NULL, p->st.unauthentic},
        {"paynode_peer_refused_total",
         "The peer's events refused (out of bounds or by the ledger).", METRICS_COUNTER, NULL,
         p->st.refused},
        {"paynode_peer_keyed", "1 if the links to the peer are sealed with a key.", METRICS_GAUGE,
         NULL, p->keyed},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *labels[] = {"dir", rows[i].dir, NULL};
        metrics_u64(m, rows[i].name, rows[i].help, rows[i].type, rows[i].dir ? labels : NULL,
                    rows[i].v);
    }
    metrics_histogram(m, "paynode_peer_ack_wait_seconds",
                      "From a reply held for the peer's ack to that ack (acked replies only).",
                      NULL, hist_bounds_s(), HIST_NBOUNDS, p->ack_wait.bucket,
                      hist_sum_s(&p->ack_wait));
    if (p->gossip)
        gossip_metrics(p->gossip, m);
}

static void free_peer(struct peer *p)
{
    peer_closed_cb *cb = p->closed_cb;
    void *arg = p->closed_arg;
    free_buffers(p);
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
    peer_stream_release_holds(p, true);
    peer_stream_fast_flush(p);
    peer_stream_flush(p);
    if (p->gossip)
        gossip_close(p->gossip, on_gossip_closed, p);
    else
        on_gossip_closed(NULL, p);
}
