/* Wire encoding of ledger events: a proto/wire.h header whose type byte is the
 * event type, then origin (u8), processor (u8, 0 for types without one), seq
 * (u64), then the type's own fields; every type has one exact length, but
 * ACCEPTED, which has two: its processor byte is a flags byte instead, whose
 * bit EV_F_TRACE says that a trace context (trace id, span id, trace-flags:
 * 25 bytes) follows the amount. Without it the frame is byte for byte what it
 * was before trace contexts existed. Decoding is canonical: a frame decodes
 * only if encoding the result gives the same bytes back. No semantics here
 * beyond field validity (see node/ledger). */
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

/* ACCEPTED's flags byte (in the processor's place): a trace context follows. */
#define EV_F_TRACE 0x01
#define EV_TRACE_LEN (16 + 8 + 1) /* trace id, span id, trace-flags */

/* Exact frame length per type (ACCEPTED: without a trace context, EV_TRACE_LEN
 * more with one); 0 = not a valid type. Bodies:
 * ACCEPTED id[16] at_ms amount [trace_id[16] span_id[8] trace_flags]
 * SENDING  id[16] at_ms          RECORDED id[16] at_ms amount
 * FAILED   id[16]                PURGED epoch */
static const uint8_t event_len[EVENT_TYPE_MAX + 1] = {
    [EVENT_ACCEPTED] = EV_OFF_BODY + 16 + 8 + 8,
    [EVENT_SENDING] = EV_OFF_BODY + 16 + 8,
    [EVENT_RECORDED] = EV_OFF_BODY + 16 + 8 + 8,
    [EVENT_FAILED] = EV_OFF_BODY + 16,
    [EVENT_PURGED] = EV_OFF_BODY + 8,
};

_Static_assert(EV_OFF_BODY + 16 + 8 + 8 + EV_TRACE_LEN <= EVENT_WIRE_MAX,
               "events fit EVENT_WIRE_MAX");

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

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* A carried trace context: only ACCEPTED has one, only a sampled one travels,
 * and its ids are valid W3C ids. */
static bool trace_valid(const struct event *ev)
{
    if (ev->trace_flags == 0)
        return true;
    return ev->type == EVENT_ACCEPTED && (ev->trace_flags & EVENT_TRACE_SAMPLED) &&
           !all_zero(ev->trace.trace_id, sizeof(ev->trace.trace_id)) &&
           !all_zero(ev->trace.span_id, sizeof(ev->trace.span_id));
}

static size_t frame_len_of(const struct event *ev)
{
    return event_len[ev->type] + (ev->trace_flags ? EV_TRACE_LEN : 0);
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
    return trace_valid(ev);
}

int event_encode(const struct event *ev, uint8_t *buf, size_t cap)
{
    if (!event_valid(ev))
        return -EINVAL;
    size_t n = frame_len_of(ev);
    if (cap < n)
        return -ENOSPC;

    wire_put_header(buf, (uint8_t)ev->type, (uint16_t)n);
    wire_put_u8(buf + EV_OFF_ORIGIN, ev->origin);
    wire_put_u8(buf + EV_OFF_PROC, has_processor(ev->type) ? ev->processor
                                   : ev->trace_flags       ? EV_F_TRACE
                                                           : 0);
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
    if (has_amount(ev->type)) {
        wire_put_i64(p, ev->amount_cents);
        p += 8;
    }
    if (ev->trace_flags) {
        memcpy(p, ev->trace.trace_id, 16);
        memcpy(p + 16, ev->trace.span_id, 8);
        wire_put_u8(p + 24, ev->trace_flags);
    }
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
    if (!type_valid(type))
        return -EINVAL;
    /* ACCEPTED's flags byte (read only once the frame's length is known to
     * cover it) decides between its two lengths. */
    bool traced = false;
    if (type == EVENT_ACCEPTED && frame_len == event_len[type] + EV_TRACE_LEN) {
        if (len <= EV_OFF_PROC)
            return -EMSGSIZE;
        traced = buf[EV_OFF_PROC] == EV_F_TRACE;
        if (!traced)
            return -EINVAL;
    } else if (frame_len != event_len[type]) {
        return -EINVAL;
    }
    rv = wire_need(len, frame_len);
    if (rv < 0)
        return rv;

    struct event e;
    memset(&e, 0, sizeof(e));
    e.type = (enum event_type)type;
    e.origin = wire_get_u8(buf + EV_OFF_ORIGIN);
    e.processor = wire_get_u8(buf + EV_OFF_PROC);
    e.seq = wire_get_u64(buf + EV_OFF_SEQ);
    if (traced)
        e.processor = 0; /* it was the flags byte */
    else if (!has_processor(e.type) && e.processor != 0)
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
            if (has_amount(e.type)) {
                e.amount_cents = wire_get_i64(p);
                p += 8;
            }
        }
    }
    if (traced) {
        memcpy(e.trace.trace_id, p, 16);
        memcpy(e.trace.span_id, p + 16, 8);
        e.trace_flags = wire_get_u8(p + 24);
        if (e.trace_flags == 0)
            return -EINVAL; /* a flags byte that says "trace" with no context */
    }
    if (!event_valid(&e))
        return -EINVAL;
    *ev = e;
    return frame_len;
}
