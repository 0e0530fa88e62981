/* Ledger events: every change to a node's payment log is one of these, made by
 * one node (origin) with that node's next sequence number. The node applies its
 * own events and publishes them; the peer applies the same events, so both
 * ledgers converge. This header is the in-memory form and its wire encoding;
 * libc only. */
#ifndef PROTO_EVENT_H
#define PROTO_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "proto/wire.h"

/* The values are the frames' type bytes (proto/wire.h). */
enum event_type {
    EVENT_NONE = 0,
    /* id, amount_cents, at_ms = accepted at; origin owns the payment */
    EVENT_ACCEPTED = WIRE_T_EVENT_ACCEPTED,
    /* id, processor, at_ms = requestedAt of the attempt; origin owns it now */
    EVENT_SENDING = WIRE_T_EVENT_SENDING,
    /* id, processor, at_ms = requestedAt, amount_cents: processor has it */
    EVENT_RECORDED = WIRE_T_EVENT_RECORDED,
    /* id, processor: that processor answered a definite "not recorded"
     * (500/429/refused) to every attempt origin made on it so far */
    EVENT_FAILED = WIRE_T_EVENT_FAILED,
    /* epoch: everything before is gone */
    EVENT_PURGED = WIRE_T_EVENT_PURGED,
    EVENT_TYPE_MAX = WIRE_T_EVENT_LAST,
};

enum event_processor { EVENT_PROC_DEFAULT = 0, EVENT_PROC_FALLBACK = 1 };

/* The W3C trace context (docs/REPLICATION.md, "Trace context") that the
 * ACCEPTED of a sampled payment carries, so that the peer's spans of that
 * payment (after a takeover) join the payment's trace: the trace id and the id
 * of the span that accepted the payment (its parent there). */
#define EVENT_TRACE_SAMPLED 0x01 /* W3C trace-flags "sampled": set in every carried context */
struct event_trace {
    uint8_t trace_id[16]; /* never all zero when carried */
    uint8_t span_id[8];   /* never all zero when carried */
};

struct event {
    enum event_type type;
    uint8_t origin;       /* node id of the node that made the event */
    uint8_t processor;    /* enum event_processor; SENDING, RECORDED, FAILED */
    uint8_t trace_flags;  /* ACCEPTED: the W3C trace-flags of `trace` when the event carries a
                             trace context (EVENT_TRACE_SAMPLED always set then), else 0;
                             0 for every other type */
    uint64_t seq;         /* origin's sequence number, from 1, no gaps */
    uint8_t id[16];       /* correlationId; all but PURGED */
    int64_t amount_cents; /* ACCEPTED, RECORDED */
    int64_t at_ms;        /* ms since epoch, see each type */
    union {
        uint64_t epoch;           /* PURGED */
        struct event_trace trace; /* ACCEPTED, when trace_flags != 0 */
    };
};

/* The peer's ring holds 65,536 of these: the trace shares the purge epoch's
 * room (no type has both) and trace_flags fills padding, so an event is 72
 * bytes instead of 56 (1 MiB more for the ring), not 80. */
_Static_assert(sizeof(struct event) == 72, "struct event is 72 bytes");

#define EVENT_WIRE_MAX 72 /* bytes an encoded event never exceeds (a traced ACCEPTED) */

/* Encodes ev into buf; returns the length (<= EVENT_WIRE_MAX) or -ENOSPC when
 * cap is too small, -EINVAL for an invalid event. */
int event_encode(const struct event *ev, uint8_t *buf, size_t cap)
    __attribute__((warn_unused_result));

/* Decodes exactly one event from buf[0..len); returns the bytes consumed, or
 * -EINVAL (malformed, unknown type or version, bad field), -EMSGSIZE
 * (truncated). Never reads past len. */
int event_decode(struct event *ev, const uint8_t *buf, size_t len)
    __attribute__((warn_unused_result));

#endif
