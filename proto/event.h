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

struct event {
    enum event_type type;
    uint8_t origin;       /* node id of the node that made the event */
    uint8_t processor;    /* enum event_processor; SENDING, RECORDED, FAILED */
    uint64_t seq;         /* origin's sequence number, from 1, no gaps */
    uint8_t id[16];       /* correlationId; all but PURGED */
    int64_t amount_cents; /* ACCEPTED, RECORDED */
    int64_t at_ms;        /* ms since epoch, see each type */
    uint64_t epoch;       /* PURGED */
};

#define EVENT_WIRE_MAX 64 /* bytes an encoded event never exceeds */

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
