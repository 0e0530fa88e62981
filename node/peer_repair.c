/* Repairs over nng req/rep (docs/REPLICATION.md, "Repairs"): serving the
 * peer's range and snapshot requests from our ring and ledger, and asking for
 * ours when the stream has a gap, the peer restarted or we did. */
#include "node/peer.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <uv.h>

#include <nng/nng.h>

#include "lib/log.h"
#include "node/ledger.h"
#include "node/peer_internal.h"
#include "proto/catchup.h"
#include "proto/repl.h"
#include "proto/wire.h"

/* ---- repairs: serving them ---------------------------------------------- */

static void rep_send(struct peer *p, const uint8_t *buf, size_t len)
{
    nng_msg *m;
    if (peer_make_msg(p, &p->tx_rep, buf, len, &m) != 0)
        return;
    if (nng_sendmsg(p->rep, m, NNG_FLAG_NONBLOCK) != 0) {
        nng_msg_free(m);
        p->st.send_errors++;
    }
}

static void serve_range(struct peer *p, const struct catchup_request *rq)
{
    struct catchup_writer w;
    uint64_t own = own_seq(p);
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
    struct snap_record *recs = p->snap_recs;
    struct ledger *l = p->ledger;
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
        .purge_epoch = own_purge_epoch(p),
        .own_seq = own_seq(p),
        .next_cursor = i,
        .done = i >= size,
        .count = count,
    };
    int len = snap_response_encode(&h, recs, p->rep_buf, REPL_FRAME_MAX);
    if (len > 0)
        rep_send(p, p->rep_buf, (size_t)len);
}

void peer_repair_on_rep_readable(uv_poll_t *h, int status, int events)
{
    struct peer *p = h->data;
    nng_msg *m;
    while (nng_recvmsg(p->rep, &m, NNG_FLAG_NONBLOCK) == 0) {
        size_t len = 0;
        const uint8_t *buf = peer_open_msg(p, &p->rx_req, m, &len);
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
    if (peer_make_msg(p, &p->tx_req, buf, len, &m) != 0)
        return;
    if (nng_sendmsg(p->req, m, NNG_FLAG_NONBLOCK) != 0) {
        /* Not connected yet: the tick re-sends in a few ticks, not after a
         * whole PEER_REQ_TIMEOUT_MS. */
        nng_msg_free(m);
        p->repair_sent_ms -= PEER_REQ_TIMEOUT_MS - 3 * PEER_TICK_MS;
        p->st.send_errors++;
    }
}

void peer_repair_send_snapshot(struct peer *p)
{
    uint8_t buf[SNAP_REQUEST_LEN];
    struct snap_request rq = {.requester_id = p->self_id,
                              .incarnation = p->incarnation,
                              .cursor = p->snap_cursor,
                              .max_count = SNAP_MAX_RECORDS};
    if (snap_request_encode(&rq, buf, sizeof(buf)) == SNAP_REQUEST_LEN)
        req_send(p, buf, sizeof(buf));
}

void peer_repair_start_snapshot(struct peer *p)
{
    p->repair = REPAIR_SNAPSHOT;
    p->snap_cursor = 0;
    p->snap_first = true;
    p->st.snapshots++;
    log_info("peer", "asking the peer for its whole ledger");
    peer_repair_send_snapshot(p);
}

void peer_repair_send_range(struct peer *p)
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

void peer_repair_start_range(struct peer *p)
{
    if (p->repair != REPAIR_NONE || p->peer_id == 0)
        return;
    p->repair = REPAIR_RANGE;
    p->st.range_repairs++;
    peer_repair_send_range(p);
}

/* Rebuilds one payment from a snapshot record through ordinary events. */
static void apply_record(struct peer *p, const struct snap_record *r)
{
    struct event ev = {.origin = r->owner, .seq = 1, .amount_cents = r->amount_cents};
    memcpy(ev.id, r->id, 16);
    ev.type = EVENT_ACCEPTED;
    ev.at_ms = r->accepted_ms;
    struct payment *pay = NULL;
    int rv = ledger_apply(p->ledger, &ev, &pay);
    if (rv != 0 && rv != -EEXIST) {
        p->st.apply_errors++;
        return;
    }
    pay->shared = 1; /* the peer knows it: dispatch gates it (docs/ROUTING.md) */
    for (uint8_t proc = 0; proc < LEDGER_NPROC; proc++) {
        if (r->failed & (1u << proc)) {
            ev.type = EVENT_FAILED;
            ev.processor = proc;
            (void)!ledger_apply(p->ledger, &ev, NULL);
        }
    }
    if (r->state == LEDGER_SENDING || r->state == LEDGER_RECORDED) {
        ev.type = r->state == LEDGER_SENDING ? EVENT_SENDING : EVENT_RECORDED;
        ev.processor = r->processor;
        ev.at_ms = r->requested_at_ms;
        (void)!ledger_apply(p->ledger, &ev, NULL);
    }
    p->st.snapshot_records++;
}

void peer_repair_finish(struct peer *p, const char *how)
{
    p->repair = REPAIR_NONE;
    if (!p->caught_up)
        log_info("peer", "caught up with the peer (%s), peer seq %" PRIu64, how, p->applied);
    p->caught_up = true;
    p->ack_dirty = true;
    p->ack_urgent = true;
    peer_stream_arm(p);
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
        if (h.purge_epoch > own_purge_epoch(p))
            peer_stream_purge(p, h.purge_epoch);
    } else if (h.purge_epoch != p->snap_epoch || h.incarnation != p->snap_inc) {
        /* The peer purged or restarted mid-walk: what earlier chunks brought
         * in is gone there, so it goes here too, and the walk starts again. */
        if (h.purge_epoch > own_purge_epoch(p))
            peer_stream_purge(p, h.purge_epoch);
        peer_repair_start_snapshot(p);
        return;
    }
    for (uint16_t i = 0; i < h.count; i++) {
        struct snap_record r;
        snap_response_record(buf, i, &r);
        apply_record(p, &r);
    }
    if (!h.done) {
        p->snap_cursor = h.next_cursor;
        peer_repair_send_snapshot(p);
        return;
    }
    /* Everything up to the peer's seq at the first chunk is in; later events
     * come as a range repair (or are already reflected: applying them again
     * is harmless, the ledger's transitions are idempotent). */
    if (p->snap_inc != p->peer_inc)
        peer_stream_restarted(p, p->snap_inc);
    p->applied = p->snap_hwm;
    peer_repair_finish(p, "snapshot");
    peer_repair_start_range(p);
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
        peer_stream_restarted(p, h.incarnation);
        p->repair = REPAIR_NONE;
        peer_repair_start_snapshot(p);
        return;
    }
    if (h.count == 0) {
        if (h.first_seq <= h.last_seq) {
            p->repair = REPAIR_NONE;
            peer_repair_start_snapshot(p); /* the range left the peer's ring */
        } else {
            p->repair = REPAIR_NONE;
        }
        return;
    }
    struct event ev;
    while (catchup_iter_next(&it, &ev) == 1) {
        if (ev.seq != p->applied + 1)
            continue;
        if (peer_stream_apply(p, &ev) != 0) {
            /* Refused: ask again later (the digest's next look), not now. */
            p->repair = REPAIR_NONE;
            peer_stream_arm(p);
            return;
        }
        p->applied = ev.seq;
        p->ack_dirty = true;
        p->st.events_in++;
    }
    peer_stream_arm(p);
    if (h.more) {
        peer_repair_send_range(p);
        return;
    }
    p->repair = REPAIR_NONE;
}

void peer_repair_on_req_readable(uv_poll_t *hd, int status, int events)
{
    struct peer *p = hd->data;
    nng_msg *m;
    while (nng_recvmsg(p->req, &m, NNG_FLAG_NONBLOCK) == 0) {
        size_t len = 0;
        const uint8_t *buf = peer_open_msg(p, &p->rx_rep, m, &len);
        if (!buf)
            ; /* not the peer's answer */
        else if (len >= 3 && buf[2] == WIRE_T_SNAP_RESPONSE)
            on_snapshot_response(p, buf, len);
        else
            on_range_response(p, buf, len);
        nng_msg_free(m);
    }
}
