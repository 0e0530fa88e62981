/* Replication batch and snapshot frames; layout in proto/repl.h. Decoders
 * validate a whole frame before returning anything from it. */
#include "proto/repl.h"

#include <errno.h>
#include <string.h>

#include "proto/wire.h"

int repl_writer_init(struct repl_writer *w, uint8_t *buf, size_t cap, const struct repl_batch *hdr)
{
    if (hdr->sender_id == 0)
        return -EINVAL;
    if (cap > REPL_FRAME_MAX)
        cap = REPL_FRAME_MAX;
    if (cap < REPL_BATCH_HDR_LEN + EVENT_WIRE_MAX)
        return -ENOSPC;
    w->buf = buf;
    w->cap = cap;
    w->len = REPL_BATCH_HDR_LEN;
    w->hdr = *hdr;
    w->hdr.count = 0;
    return 0;
}

int repl_writer_add(struct repl_writer *w, const struct event *ev)
{
    if (ev->origin != w->hdr.sender_id || w->hdr.count == UINT16_MAX)
        return ev->origin != w->hdr.sender_id ? -EINVAL : -ENOSPC;
    int n = event_encode(ev, w->buf + w->len, w->cap - w->len);
    if (n < 0)
        return n;
    w->len += (size_t)n;
    w->hdr.count++;
    return 0;
}

size_t repl_writer_finish(struct repl_writer *w)
{
    uint8_t *p = w->buf;
    wire_put_header(p, w->hdr.ack_wanted ? WIRE_T_REPL_BATCH_ACK : WIRE_T_REPL_BATCH,
                    (uint16_t)w->len);
    p[5] = w->hdr.sender_id;
    wire_put_u64(p + 6, w->hdr.incarnation);
    wire_put_u64(p + 14, w->hdr.ack_incarnation);
    wire_put_u64(p + 22, w->hdr.ack_seq);
    wire_put_u16(p + 30, w->hdr.count);
    return w->len;
}

/* Checks the header of a frame of `type` whose length must be exactly len
 * (or, with min_len, at least min_len). */
static int frame_check(const uint8_t *buf, size_t len, uint8_t want, size_t min_len)
{
    uint8_t type;
    uint16_t flen;
    int rv = wire_get_header(buf, len, &type, &flen);
    if (rv != 0)
        return rv;
    if (type != want || flen < min_len)
        return -EINVAL;
    if (len < flen)
        return -EMSGSIZE;
    if (len > flen)
        return -EINVAL; /* trailing bytes */
    return 0;
}

int repl_batch_decode(struct repl_batch *hdr, struct repl_iter *it, const uint8_t *buf, size_t len)
{
    bool ack_wanted = len >= 3 && buf[2] == WIRE_T_REPL_BATCH_ACK;
    int rv = frame_check(buf, len, ack_wanted ? WIRE_T_REPL_BATCH_ACK : WIRE_T_REPL_BATCH,
                         REPL_BATCH_HDR_LEN);
    if (rv != 0)
        return rv;
    struct repl_batch h = {
        .sender_id = buf[5],
        .incarnation = wire_get_u64(buf + 6),
        .ack_incarnation = wire_get_u64(buf + 14),
        .ack_seq = wire_get_u64(buf + 22),
        .count = wire_get_u16(buf + 30),
        .ack_wanted = ack_wanted,
    };
    if (h.sender_id == 0)
        return -EINVAL;
    size_t off = REPL_BATCH_HDR_LEN;
    uint64_t last = 0;
    for (uint16_t i = 0; i < h.count; i++) {
        struct event ev;
        int n = event_decode(&ev, buf + off, len - off);
        if (n < 0)
            return -EINVAL;
        if (ev.origin != h.sender_id || ev.seq <= last)
            return -EINVAL;
        last = ev.seq;
        off += (size_t)n;
    }
    if (off != len)
        return -EINVAL;
    *hdr = h;
    it->buf = buf;
    it->len = len;
    it->off = REPL_BATCH_HDR_LEN;
    it->left = h.count;
    return 0;
}

int repl_iter_next(struct repl_iter *it, struct event *ev)
{
    if (it->left == 0)
        return 0;
    int n = event_decode(ev, it->buf + it->off, it->len - it->off);
    if (n < 0)
        return -EINVAL;
    it->off += (size_t)n;
    it->left--;
    return 1;
}

int snap_request_encode(const struct snap_request *rq, uint8_t *buf, size_t cap)
{
    if (rq->requester_id == 0 || rq->max_count == 0 || rq->max_count > SNAP_MAX_RECORDS)
        return -EINVAL;
    if (cap < SNAP_REQUEST_LEN)
        return -ENOSPC;
    wire_put_header(buf, WIRE_T_SNAP_REQUEST, SNAP_REQUEST_LEN);
    buf[5] = rq->requester_id;
    wire_put_u64(buf + 6, rq->incarnation);
    wire_put_u32(buf + 14, rq->cursor);
    wire_put_u32(buf + 18, rq->max_count);
    return SNAP_REQUEST_LEN;
}

int snap_request_decode(struct snap_request *rq, const uint8_t *buf, size_t len)
{
    int rv = frame_check(buf, len, WIRE_T_SNAP_REQUEST, SNAP_REQUEST_LEN);
    if (rv != 0)
        return rv;
    if (len != SNAP_REQUEST_LEN)
        return -EINVAL;
    struct snap_request r = {
        .requester_id = buf[5],
        .incarnation = wire_get_u64(buf + 6),
        .cursor = wire_get_u32(buf + 14),
        .max_count = wire_get_u32(buf + 18),
    };
    if (r.requester_id == 0 || r.max_count == 0 || r.max_count > SNAP_MAX_RECORDS)
        return -EINVAL;
    *rq = r;
    return 0;
}

static bool record_valid(const struct snap_record *r)
{
    return r->amount_cents > 0 && r->state <= 2 && r->processor <= 1 && r->owner != 0 &&
           r->failed <= 3;
}

static void record_put(uint8_t *p, const struct snap_record *r)
{
    memcpy(p, r->id, 16);
    wire_put_i64(p + 16, r->amount_cents);
    wire_put_i64(p + 24, r->accepted_ms);
    wire_put_i64(p + 32, r->requested_at_ms);
    p[40] = r->state;
    p[41] = r->processor;
    p[42] = r->owner;
    p[43] = r->failed;
}

void snap_response_record(const uint8_t *buf, uint16_t i, struct snap_record *r)
{
    const uint8_t *p = buf + SNAP_RESPONSE_HDR_LEN + (size_t)i * SNAP_RECORD_LEN;
    memcpy(r->id, p, 16);
    r->amount_cents = wire_get_i64(p + 16);
    r->accepted_ms = wire_get_i64(p + 24);
    r->requested_at_ms = wire_get_i64(p + 32);
    r->state = p[40];
    r->processor = p[41];
    r->owner = p[42];
    r->failed = p[43];
}

int snap_response_encode(const struct snap_response *h, const struct snap_record *recs,
                         uint8_t *buf, size_t cap)
{
    size_t len = SNAP_RESPONSE_HDR_LEN + (size_t)h->count * SNAP_RECORD_LEN;
    if (h->responder_id == 0 || h->count > SNAP_MAX_RECORDS)
        return -EINVAL;
    if (cap < len)
        return -ENOSPC;
    for (uint16_t i = 0; i < h->count; i++) {
        if (!record_valid(&recs[i]))
            return -EINVAL;
        record_put(buf + SNAP_RESPONSE_HDR_LEN + (size_t)i * SNAP_RECORD_LEN, &recs[i]);
    }
    wire_put_header(buf, WIRE_T_SNAP_RESPONSE, (uint16_t)len);
    buf[5] = h->responder_id;
    wire_put_u64(buf + 6, h->incarnation);
    wire_put_u64(buf + 14, h->purge_epoch);
    wire_put_u64(buf + 22, h->own_seq);
    wire_put_u32(buf + 30, h->next_cursor);
    buf[34] = h->done ? 1 : 0;
    wire_put_u16(buf + 35, h->count);
    return (int)len;
}

int snap_response_decode(struct snap_response *hdr, const uint8_t *buf, size_t len)
{
    int rv = frame_check(buf, len, WIRE_T_SNAP_RESPONSE, SNAP_RESPONSE_HDR_LEN);
    if (rv != 0)
        return rv;
    struct snap_response h = {
        .responder_id = buf[5],
        .incarnation = wire_get_u64(buf + 6),
        .purge_epoch = wire_get_u64(buf + 14),
        .own_seq = wire_get_u64(buf + 22),
        .next_cursor = wire_get_u32(buf + 30),
        .done = buf[34] == 1,
        .count = wire_get_u16(buf + 35),
    };
    if (h.responder_id == 0 || buf[34] > 1 || h.count > SNAP_MAX_RECORDS ||
        len != SNAP_RESPONSE_HDR_LEN + (size_t)h.count * SNAP_RECORD_LEN)
        return -EINVAL;
    for (uint16_t i = 0; i < h.count; i++) {
        struct snap_record r;
        snap_response_record(buf, i, &r);
        if (!record_valid(&r))
            return -EINVAL;
    }
    *hdr = h;
    return 0;
}
