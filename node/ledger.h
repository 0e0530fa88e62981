/* The payment log: one entry per correlationId, changed only by applying
 * events (proto/event.h), whether made here or received from the peer. Keeps
 * a dedup index by correlationId and a time index of recorded payments by
 * requestedAt that answers a summary in O(log n). Preallocated: no allocation
 * after ledger_new(); a full ledger refuses new payments (-ENOSPC).
 *
 * Single-threaded: call from the loop thread only. */
#ifndef NODE_LEDGER_H
#define NODE_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/event.h"

enum ledger_proc { LEDGER_DEFAULT = 0, LEDGER_FALLBACK = 1, LEDGER_NPROC = 2 };

enum ledger_state {
    LEDGER_ACCEPTED = 0, /* known, no attempt outstanding on any processor */
    LEDGER_SENDING,      /* an attempt to `processor` at `requested_at_ms` may be in flight */
    LEDGER_RECORDED,     /* `processor` has it with `requested_at_ms`; final */
};

struct payment {
    uint8_t id[16];
    int64_t amount_cents;
    int64_t accepted_ms;     /* wall ms when first accepted */
    int64_t requested_at_ms; /* SENDING/RECORDED: requestedAt of the attempt */
    uint8_t state;           /* enum ledger_state */
    uint8_t processor;       /* SENDING/RECORDED: enum ledger_proc */
    uint8_t owner;           /* node id that processes it: origin of ACCEPTED, then of SENDING */
    uint8_t failed;          /* bit p set: processor p answered "not recorded" (EVENT_FAILED)
                                and no SENDING to p came after */
    uint8_t shared;          /* set outside the ledger: the peer may know this payment */
    uint32_t index;          /* position in the ledger's pool, stable for the payment's life */
    uint32_t trace;          /* 1 + the slot of its trace context (ledger_trace()), 0 = none;
                                fills what was padding: the struct stays 56 bytes */
};

/* A sum of cents, exact for any ledger: an amount is a positive int64 (the
 * API's are at most MONEY_MAX_CENTS, 1e14 < 2^47) and a ledger holds at most
 * 2^30 payments, so a sum stays below 2^93 (2^77 for the API's amounts). An
 * int64 sum overflowed after 92,234 payments of 1e12 (a negative total in the
 * summary); 128 bits never do. Amounts are positive, so it is unsigned. */
__extension__ typedef unsigned __int128 ledger_cents_sum;

struct ledger_totals {
    int64_t count[LEDGER_NPROC];
    ledger_cents_sum cents[LEDGER_NPROC];
};

/* c as an int64, saturated at INT64_MAX: for carriers that only have 64 bits
 * (the gossip heartbeat's informative totals). */
static inline int64_t ledger_cents_sum_sat64(ledger_cents_sum c)
{
    return c > (ledger_cents_sum)INT64_MAX ? INT64_MAX : (int64_t)c;
}

struct ledger;

/* capacity: payments held at most. Memory is reserved up front but only
 * touched as it is used. Returns NULL on allocation failure or capacity 0. */
struct ledger *ledger_new(size_t capacity);
void ledger_free(struct ledger *l);

/* Applies one event. For ACCEPTED/SENDING/RECORDED/FAILED, *out (if not NULL)
 * is set to the payment concerned. Returns:
 *  0        applied (state changed),
 *  -EEXIST  ACCEPTED for a known id, or a repeat of a state already reached
 *           (RECORDED twice by the same processor): nothing changed, *out set,
 *  -ENOENT  SENDING/RECORDED/FAILED for an unknown id,
 *  -ENOSPC  ACCEPTED when the ledger is full,
 *  -EPROTO  an impossible transition (RECORDED by one processor after RECORDED
 *           by the other; SENDING after RECORDED): nothing changed, the caller logs it,
 *  -EINVAL  a malformed event.
 * PURGED empties the ledger (entries and indexes) and returns 0.
 * Precisely (the checks are made in this order; *out is NULL unless said):
 *  ACCEPTED  amount <= 0: -EINVAL; known id: -EEXIST (*out set, even when full);
 *            full: -ENOSPC; else creates it (owner = origin, accepted_ms = at_ms,
 *            shared = 0): 0.
 *  any other than PURGED: processor > 1: -EINVAL; RECORDED with amount <= 0: -EINVAL;
 *            unknown id: -ENOENT; from here on *out is set.
 *  SENDING   after RECORDED: -EPROTO; else state SENDING, processor, requested_at_ms
 *            = at_ms, owner = origin, clears failed bit of that processor: 0 (also
 *            when it repeats the current SENDING).
 *  RECORDED  amount != the payment's: -EINVAL; already RECORDED by the same
 *            processor: -EEXIST, by the other: -EPROTO; else RECORDED with that
 *            processor and requested_at_ms = at_ms (wins over the SENDING's), clears
 *            that processor's failed bit, enters the time index: 0.
 *  FAILED    on a RECORDED payment: -EEXIST (final; a late answer); else sets the
 *            failed bit and, if SENDING to that processor by the same owner (origin
 *            == owner), goes back to ACCEPTED: 0. A FAILED from a former owner
 *            leaves the new owner's pin alone.
 * origin and seq are not checked here (proto/event.c validates frames). */
int ledger_apply(struct ledger *l, const struct event *ev, struct payment **out)
    __attribute__((warn_unused_result));

/* Trace contexts (tracing on only): the context an ACCEPTED carries
 * (event.trace_flags set: its payment was sampled) is kept beside the payment
 * until it is RECORDED or purged, so that dispatch can make the payment's
 * spans children of the span that accepted it, on this node or, after a
 * takeover, on the peer. ledger_traces_reserve() allocates n slots (start-up
 * only; 0 or -ENOMEM; once). Without it, or when every slot is taken, the
 * context is not kept (counted in `untracked`): the payment's later spans are
 * then not made, nothing else changes. */
int ledger_traces_reserve(struct ledger *l, size_t n) __attribute__((warn_unused_result));

/* The trace context kept for p and its W3C trace-flags, or NULL. Valid until
 * the next ledger_apply(). */
const struct event_trace *ledger_trace(const struct ledger *l, const struct payment *p,
                                       uint8_t *flags);

struct ledger_trace_stats {
    size_t slots;       /* reserved */
    size_t used;        /* holding a context now */
    uint64_t untracked; /* contexts not kept: no free slot */
};
void ledger_trace_stats(const struct ledger *l, struct ledger_trace_stats *out);

struct payment *ledger_find(const struct ledger *l, const uint8_t id[16]);
struct payment *ledger_at(const struct ledger *l, uint32_t index); /* NULL if out of range */

/* Totals of RECORDED payments with from_ms <= requested_at_ms <= to_ms, per
 * processor (INT64_MIN / INT64_MAX for open bounds), exact (128-bit cents).
 * O(log n). */
void ledger_summary(const struct ledger *l, int64_t from_ms, int64_t to_ms,
                    struct ledger_totals *out);

size_t ledger_size(const struct ledger *l); /* payments held */
size_t ledger_capacity(const struct ledger *l);
size_t ledger_count_state(const struct ledger *l, enum ledger_state s);

/* Calls cb for every payment not RECORDED, in pool order; cb must not apply
 * events. Used at start-up and on takeover to find unfinished work. */
typedef void ledger_visit_cb(struct payment *p, void *arg);
void ledger_foreach_unrecorded(struct ledger *l, ledger_visit_cb *cb, void *arg);

/* Verifies every internal invariant (dedup index, state counters, time index
 * order, balance and sums) in O(capacity). For asserts and tests only. */
bool ledger_check(const struct ledger *l);

#endif
