/* Wire encoding of catch-up requests and responses (contract in catchup.h).
 * Request, type WIRE_T_CATCHUP_REQUEST (0x20), after the proto/wire.h header (big-endian):
 *   requester_id u8, origin u8, incarnation u64, from_seq u64, max_count u32.
 * Response, type WIRE_T_CATCHUP_RESPONSE (0x21):
 *   responder_id u8, origin u8, flags u8 (bit0 more), incarnation u64,
 *   first_seq u64, count u32, last_seq u64, then count times
 *   { len u8, proto/event frame of exactly len bytes }.
 * Decoding is canonical: only what the encoder could produce is accepted. */
#include "proto/catchup.h"

#include <errno.h>
#include <string.h>

#include "proto/wire.h"

#define RQ_OFF_REQUESTER WIRE_HDR_LEN
#define RQ_OFF_ORIGIN (RQ_OFF_REQUESTER + 1)
#define RQ_OFF_INC (RQ_OFF_ORIGIN + 1)
#define RQ_OFF_FROM (RQ_OFF_INC + 8)
#define RQ_OFF_MAX (RQ_OFF_FROM + 8)
#define RQ_END (RQ_OFF_MAX + 4)

#define RS_OFF_RESPONDER WIRE_HDR_LEN
#define RS_OFF_ORIGIN (RS_OFF_RESPONDER + 1)
#define RS_OFF_FLAGS (RS_OFF_ORIGIN + 1)
#define RS_OFF_INC (RS_OFF_FLAGS + 1)
#define RS_OFF_FIRST (RS_OFF_INC + 8)
#define RS_OFF_COUNT (RS_OFF_FIRST + 8)
#define RS_OFF_LAST (RS_OFF_COUNT + 4)
#define RS_END (RS_OFF_LAST + 8)

#define RS_F_MORE 0x01

_Static_assert(RQ_END == CATCHUP_REQUEST_LEN, "CATCHUP_REQUEST_LEN matches the layout");
_Static_assert(RS_END == CATCHUP_RESPONSE_HDR_LEN, "CATCHUP_RESPONSE_HDR_LEN matches the layout");
_Static_assert(CATCHUP_RESPONSE_MAX <= WIRE_MAX_LEN, "frame length fits the u16 length field");
_Static_assert(EVENT_WIRE_MAX <= 255, "an event length fits its u8 prefix");

static int request_check(const struct catchup_request *rq)
{
    if (rq->requester_id == 0 || rq->origin == 0 || rq->from_seq == 0 || rq->max_count == 0)
        return -EINVAL;
    return 0;
}

int catchup_request_encode(const struct catchup_request *rq, uint8_t *buf, size_t cap)
{
    if (request_check(rq) != 0)
        return -EINVAL;
    if (cap < CATCHUP_REQUEST_LEN)
        return -ENOSPC;
    wire_put_header(buf, WIRE_T_CATCHUP_REQUEST, CATCHUP_REQUEST_LEN);
    wire_put_u8(buf + RQ_OFF_REQUESTER, rq->requester_id);
    wire_put_u8(buf + RQ_OFF_ORIGIN, rq->origin);
    wire_put_u64(buf + RQ_OFF_INC, rq->incarnation);
    wire_put_u64(buf + RQ_OFF_FROM, rq->from_seq);
    wire_put_u32(buf + RQ_OFF_MAX, rq->max_count);
    return CATCHUP_REQUEST_LEN;
}

/* Header checks common to both frames: magic, version, type; a truncated
 * header with a wrong type byte is already -EINVAL. */
static int get_header(const uint8_t *buf, size_t len, uint8_t want_type, uint16_t *frame_len)
{
    uint8_t type;
    int rv = wire_get_header(buf, len, &type, frame_len);
    if (rv < 0) {
        if (rv == -EMSGSIZE && len > 2 && buf[2] != want_type)
            return -EINVAL;
        return rv;
    }
    return type == want_type ? 0 : -EINVAL;
}

int catchup_request_decode(struct catchup_request *rq, const uint8_t *buf, size_t len)
{
    uint16_t frame_len;
    int rv = get_header(buf, len, WIRE_T_CATCHUP_REQUEST, &frame_len);
    if (rv < 0)
        return rv;
    if (frame_len != CATCHUP_REQUEST_LEN)
        return -EINVAL;
    rv = wire_need(len, frame_len);
    if (rv < 0)
        return rv;
    if (len != frame_len)
        return -EINVAL;
    struct catchup_request r;
    memset(&r, 0, sizeof(r));
    r.requester_id = wire_get_u8(buf + RQ_OFF_REQUESTER);
    r.origin = wire_get_u8(buf + RQ_OFF_ORIGIN);
    r.incarnation = wire_get_u64(buf + RQ_OFF_INC);
    r.from_seq = wire_get_u64(buf + RQ_OFF_FROM);
    r.max_count = wire_get_u32(buf + RQ_OFF_MAX);
    if (request_check(&r) != 0)
        return -EINVAL;
    *rq = r;
    return 0;
}

int catchup_writer_init(struct catchup_writer *w, uint8_t *buf, size_t cap, uint8_t responder_id,
                        uint64_t incarnation, uint8_t origin, uint64_t first_seq)
{
    if (responder_id == 0 || origin == 0 || first_seq == 0)
        return -EINVAL;
    if (cap < CATCHUP_RESPONSE_MIN_CAP)
        return -ENOSPC;
    memset(w, 0, sizeof(*w));
    w->buf = buf;
    w->cap = cap < CATCHUP_RESPONSE_MAX ? cap : CATCHUP_RESPONSE_MAX;
    w->len = CATCHUP_RESPONSE_HDR_LEN;
    w->hdr.responder_id = responder_id;
    w->hdr.origin = origin;
    w->hdr.incarnation = incarnation;
    w->hdr.first_seq = first_seq;
    return 0;
}

int catchup_writer_add(struct catchup_writer *w, const struct event *ev)
{
    if (ev->origin != w->hdr.origin || ev->seq != w->hdr.first_seq + w->hdr.count ||
        w->hdr.count == UINT32_MAX)
        return -EINVAL;
    if (w->cap - w->len < 2)
        return -ENOSPC;
    int n = event_encode(ev, w->buf + w->len + 1, w->cap - w->len - 1);
    if (n < 0)
        return n; /* -ENOSPC or -EINVAL; nothing of the frame changed */
    w->buf[w->len] = (uint8_t)n;
    w->len += 1 + (size_t)n;
    w->hdr.count++;
    return 0;
}

/* The one rule tying count, first_seq, last_seq and more together. Assumes
 * first_seq >= 1 and count >= 1 imply no overflow (checked by callers). */
static bool response_consistent(const struct catchup_response *h)
{
    if (h->count == 0)
        return !h->more;
    uint64_t last_sent = h->first_seq + h->count - 1;
    if (last_sent > h->last_seq)
        return false;
    return h->more == (last_sent < h->last_seq);
}

int catchup_writer_finish(struct catchup_writer *w, uint64_t last_seq)
{
    struct catchup_response *h = &w->hdr;
    h->last_seq = last_seq;
    h->more = h->count > 0 && h->first_seq + h->count - 1 < last_seq;
    if (!response_consistent(h))
        return -EINVAL;
    uint8_t *buf = w->buf;
    wire_put_header(buf, WIRE_T_CATCHUP_RESPONSE, (uint16_t)w->len);
    wire_put_u8(buf + RS_OFF_RESPONDER, h->responder_id);
    wire_put_u8(buf + RS_OFF_ORIGIN, h->origin);
    wire_put_u8(buf + RS_OFF_FLAGS, h->more ? RS_F_MORE : 0);
    wire_put_u64(buf + RS_OFF_INC, h->incarnation);
    wire_put_u64(buf + RS_OFF_FIRST, h->first_seq);
    wire_put_u32(buf + RS_OFF_COUNT, h->count);
    wire_put_u64(buf + RS_OFF_LAST, h->last_seq);
    return (int)w->len;
}

int catchup_iter_next(struct catchup_iter *it, struct event *ev)
{
    if (it->left == 0)
        return 0;
    if (it->off >= it->len)
        return -EINVAL;
    size_t n = it->buf[it->off];
    if (n == 0 || n > EVENT_WIRE_MAX || n > it->len - it->off - 1)
        return -EINVAL;
    struct event e;
    int rv = event_decode(&e, it->buf + it->off + 1, n);
    if (rv < 0 || (size_t)rv != n)
        return -EINVAL;
    if (e.origin != it->origin || e.seq != it->next_seq)
        return -EINVAL;
    it->off += 1 + n;
    it->left--;
    it->next_seq++;
    *ev = e;
    return 1;
}

int catchup_response_decode(struct catchup_response *hdr, struct catchup_iter *it,
                            const uint8_t *buf, size_t len)
{
    uint16_t frame_len;
    int rv = get_header(buf, len, WIRE_T_CATCHUP_RESPONSE, &frame_len);
    if (rv < 0)
        return rv;
    if (frame_len < CATCHUP_RESPONSE_HDR_LEN)
        return -EINVAL;
    rv = wire_need(len, frame_len);
    if (rv < 0)
        return rv;
    if (len != frame_len)
        return -EINVAL;

    struct catchup_response h;
    memset(&h, 0, sizeof(h));
    h.responder_id = wire_get_u8(buf + RS_OFF_RESPONDER);
    h.origin = wire_get_u8(buf + RS_OFF_ORIGIN);
    uint8_t flags = wire_get_u8(buf + RS_OFF_FLAGS);
    h.more = (flags & RS_F_MORE) != 0;
    h.incarnation = wire_get_u64(buf + RS_OFF_INC);
    h.first_seq = wire_get_u64(buf + RS_OFF_FIRST);
    h.count = wire_get_u32(buf + RS_OFF_COUNT);
    h.last_seq = wire_get_u64(buf + RS_OFF_LAST);
    if (h.responder_id == 0 || h.origin == 0 || (flags & ~RS_F_MORE) != 0 || h.first_seq == 0)
        return -EINVAL;
    /* Each event takes at least 2 bytes: bounds count before any arithmetic. */
    if (h.count > ((size_t)frame_len - CATCHUP_RESPONSE_HDR_LEN) / 2)
        return -EINVAL;
    if (h.count > 0 && h.first_seq > UINT64_MAX - (h.count - 1))
        return -EINVAL;
    if (!response_consistent(&h))
        return -EINVAL;

    struct catchup_iter i = {
        .buf = buf,
        .len = frame_len,
        .off = CATCHUP_RESPONSE_HDR_LEN,
        .left = h.count,
        .origin = h.origin,
        .next_seq = h.first_seq,
    };
    struct catchup_iter walk = i;
    struct event e;
    while ((rv = catchup_iter_next(&walk, &e)) == 1)
        ;
    if (rv < 0 || walk.off != frame_len)
        return -EINVAL;
    *hdr = h;
    *it = i;
    return 0;
}
