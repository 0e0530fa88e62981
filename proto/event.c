/* Wire encoding of ledger events: a proto/wire.h header whose type byte is the
 * event type, then origin (u8), processor (u8, 0 for types without one), seq
 * (u64), then the type's own fields; every type has one exact length. Decoding
 * is canonical: a frame decodes only if encoding the result gives the same
 * bytes back. No semantics here beyond field validity (see node/ledger). */
#include "proto/event.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "proto/wire.h"

/* Offsets of the common part, after the frame header. */
#define EV_OFF_ORIGIN WIRE_HDR_LEN
#define EV_OFF_PROC (EV_OFF_ORIGIN + 1)
#define EV_OFF_SEQ (EV_OFF_PROC + 1)
#define EV_OFF_BODY (EV_OFF_SEQ + 8) /* 15: first byte of the type's fields */

/* Exact frame length per type; 0 = not a valid type. Bodies:
 * ACCEPTED id[16] at_ms amount   SENDING id[16] at_ms   RECORDED id[16] at_ms amount
 * FAILED   id[16]                PURGED epoch */
static const uint8_t event_len[EVENT_TYPE_MAX + 1] = {
    [EVENT_ACCEPTED] = EV_OFF_BODY + 16 + 8 + 8,
    [EVENT_SENDING] = EV_OFF_BODY + 16 + 8,
    [EVENT_RECORDED] = EV_OFF_BODY + 16 + 8 + 8,
    [EVENT_FAILED] = EV_OFF_BODY + 16,
    [EVENT_PURGED] = EV_OFF_BODY + 8,
};

_Static_assert(EV_OFF_BODY + 16 + 8 + 8 <= EVENT_WIRE_MAX, "events fit EVENT_WIRE_MAX");

static bool has_processor(enum event_type t)
{
    return t == EVENT_SENDING || t == EVENT_RECORDED || t == EVENT_FAILED;
}

static bool has_amount(enum event_type t)
{
    return t == EVENT_ACCEPTED || t == EVENT_RECORDED;
}

static bool type_valid(unsigned t)
{
    return t >= EVENT_ACCEPTED && t <= EVENT_TYPE_MAX;
}

/* Field rules shared by encode and decode. */
static bool event_valid(const struct event *ev)
{
    if (!type_valid((unsigned)ev->type) || ev->origin == 0 || ev->seq == 0)
        return false;
    if (has_processor(ev->type) && ev->processor > EVENT_PROC_FALLBACK)
        return false;
    if (has_amount(ev->type) && ev->amount_cents <= 0)
        return false;
    return true;
}

int event_encode(const struct event *ev, uint8_t *buf, size_t cap)
{
    if (!event_valid(ev))
        return -EINVAL;
    size_t n = event_len[ev->type];
    if (cap < n)
        return -ENOSPC;

    wire_put_header(buf, (uint8_t)ev->type, (uint16_t)n);
    wire_put_u8(buf + EV_OFF_ORIGIN, ev->origin);
    wire_put_u8(buf + EV_OFF_PROC, has_processor(ev->type) ? ev->processor : 0);
    wire_put_u64(buf + EV_OFF_SEQ, ev->seq);
    uint8_t *p = buf + EV_OFF_BODY;
    if (ev->type == EVENT_PURGED) {
        wire_put_u64(p, ev->epoch);
        return (int)n;
    }
    memcpy(p, ev->id, 16);
    p += 16;
    if (ev->type == EVENT_FAILED)
        return (int)n;
    wire_put_i64(p, ev->at_ms);
    p += 8;
    if (has_amount(ev->type))
        wire_put_i64(p, ev->amount_cents);
    return (int)n;
}

int event_decode(struct event *ev, const uint8_t *buf, size_t len)
{
    uint8_t type;
    uint16_t frame_len;
    int rv = wire_get_header(buf, len, &type, &frame_len);
    if (rv < 0) {
        /* A known-bad type is reported even when the header is cut short. */
        if (rv == -EMSGSIZE && len > 2 && !type_valid(buf[2]))
            return -EINVAL;
        return rv;
    }
    if (!type_valid(type) || frame_len != event_len[type])
        return -EINVAL;
    rv = wire_need(len, frame_len);
    if (rv < 0)
        return rv;

    struct event e;
    memset(&e, 0, sizeof(e));
    e.type = (enum event_type)type;
    e.origin = wire_get_u8(buf + EV_OFF_ORIGIN);
    e.processor = wire_get_u8(buf + EV_OFF_PROC);
    e.seq = wire_get_u64(buf + EV_OFF_SEQ);
    if (!has_processor(e.type) && e.processor != 0)
        return -EINVAL; /* keeps decoding canonical */
    const uint8_t *p = buf + EV_OFF_BODY;
    if (e.type == EVENT_PURGED) {
        e.epoch = wire_get_u64(p);
    } else {
        memcpy(e.id, p, 16);
        p += 16;
        if (e.type != EVENT_FAILED) {
            e.at_ms = wire_get_i64(p);
            p += 8;
            if (has_amount(e.type))
                e.amount_cents = wire_get_i64(p);
        }
    }
    if (!event_valid(&e))
        return -EINVAL;
    *ev = e;
    return frame_len;
}
