/* Dispatch: the queue of accepted payments and the attempts that send them to
 * the processors, driven by the libuv loop through the shared httpc (libcurl
 * multi on the loop, keep-alive pools per processor). It decides with
 * health.h where and when to send, and guarantees, per payment:
 *  - at most one attempt in flight at any time;
 *  - requestedAt is the wall time when the attempt is sent, kept unchanged for
 *    every retry to the same processor;
 *  - a payment moves to the other processor only when its processor answered a
 *    definite "not recorded" (500, 429, not sent) to every attempt, or a
 *    GET /payments/{id} sent after the fate of an unknown attempt
 *    (timeout/reset) had surely settled confirmed the absence;
 *  - after an unknown fate the first action is GET /payments/{id} on the same
 *    processor (once it can have finished the attempt): a record found is
 *    RECORDED at once with the record's requestedAt; a 404 before the settle
 *    time leads to a re-POST with the same requestedAt only while the
 *    processor is usable, else to another GET after a backoff.
 * Every state change goes through the emit callback as a ledger event
 * (SENDING, RECORDED, FAILED); dispatch never writes the ledger itself.
 * docs/ROUTING.md explains the policy. Loop thread only. */
#ifndef NODE_DISPATCH_H
#define NODE_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/hist.h"
#include "node/ledger.h"
#include "proto/event.h"

struct health;
struct httpc;
struct tracer;

struct dispatch_config {
    const char *url[LEDGER_NPROC];        /* base URLs, no trailing slash; copied */
    unsigned queue_capacity;              /* payments held (queued + out); power of two */
    unsigned max_in_flight[LEDGER_NPROC]; /* attempts in flight per processor */
    unsigned max_jobs;                    /* payments out of the queue at once (in flight
                                             or waiting with an unknown fate); 0 = 2 x the
                                             sum of max_in_flight + 16 */
    unsigned timeout_ms;                  /* one attempt; long: a timeout = unknown fate */
    unsigned confirm_timeout_ms;          /* one GET /payments/{id} */
    unsigned retry_backoff_ms;            /* first wait before re-trying a pinned payment */
    unsigned retry_backoff_max_ms;        /* the wait doubles up to this */
    unsigned confirm_margin_ms;           /* added to the settle time before a GET confirm */
    unsigned max_bad_attempts;            /* unexpected statuses (400...) before parking */
    unsigned tick_ms;                     /* period of the retry/hold re-evaluation timer */
    unsigned stop_timeout_ms;             /* dispatch_stop() waits at most this */
};

/* queue 65536, 250 in flight per processor, timeout 10000, confirm 3000,
 * backoff 200..2000, margin 1000, 5 bad attempts, tick 20, stop 5000. */
void dispatch_config_default(struct dispatch_config *cfg);

/* Makes one event of this node: the callee sets origin and seq, applies it to
 * the ledger (ledger_apply() semantics for the return value and *out) and
 * replicates it. node_emit() has this shape. */
typedef int dispatch_emit_cb(void *arg, struct event *ev, struct payment **out);

struct dispatch;

/* Allocates the queue and job pool. ledger, health and httpc are borrowed:
 * ledger and health must stay valid until dispatch_free() is called (health
 * may be closed right before it, as main.c does), httpc until dispatch has
 * been freed (close httpc after dispatch_free(): its aborts complete the
 * attempts still in flight). Starts the loop handles at once. Returns NULL
 * on allocation failure or a bad configuration (queue_capacity not a power of
 * two, missing URL). */
struct dispatch *dispatch_new(uv_loop_t *loop, const struct dispatch_config *cfg,
                              struct ledger *ledger, struct health *health, struct httpc *httpc,
                              dispatch_emit_cb *emit, void *emit_arg);

/* Tracing (t NULL: off, the default). Each request to a processor of a
 * payment whose ledger entry keeps a trace context (ledger_trace()) becomes a
 * CLIENT span, child of the span that accepted the payment: "processor POST"
 * (an attempt) or "processor GET" (a confirmation), with the processor, the
 * outcome, the HTTP status and the duration in us as attributes, and sends a
 * W3C traceparent naming that span. RECORDED emitted for such a payment is an
 * INTERNAL span "payment recorded". Unsampled payments cost a branch. t must
 * outlive dispatch's last answer before dispatch_free(); after it no span is
 * made. Call before the first payment is submitted. */
void dispatch_set_tracer(struct dispatch *d, struct tracer *t);

/* Whether dispatch_submit() would accept one more payment now. */
bool dispatch_has_room(const struct dispatch *d);

/* Queues an ACCEPTED payment (FIFO; it is sent from a later loop iteration,
 * never from inside this call). p must be the ledger's entry. Returns 0,
 * -EAGAIN when full (the caller answers 503), -EALREADY if dispatch already
 * holds it, -EINVAL if it is RECORDED, -ESHUTDOWN after dispatch_stop(). */
int dispatch_submit(struct dispatch *d, struct payment *p) __attribute__((warn_unused_result));

/* Start-up and takeover: takes every unrecorded payment whose owner is
 * `owner` and that dispatch does not hold yet. SENDING ones are pinned to
 * their processor with their requestedAt (a SENDING event with the same
 * processor and requestedAt claims them for this node) and handled as if
 * their last attempt's fate were unknown from now: a GET /payments/{id}
 * there first, then re-sent there (same requestedAt) after a 404. ACCEPTED ones are
 * queued; but in pair mode with owner != self_id (a takeover) they may have
 * been sent to the default by the dead owner with an unknown requestedAt: they
 * go to the default only (held while it is not usable), with a fresh
 * requestedAt, pinned there as if with an unknown fate (500/429/not sent do
 * not release them; only a GET /payments/{id} 404 after the settle time
 * does). *taken (if not NULL) counts them. Returns 0, or -EAGAIN when the
 * queue or the job pool ran out before all were taken (call again later: it
 * is idempotent). */
int dispatch_resume_unrecorded(struct dispatch *d, uint8_t owner, unsigned *taken)
    __attribute__((warn_unused_result));

/* Pair mode (docs/ROUTING.md, "In a pair"). Without it dispatch works alone.
 * All callbacks run on the loop thread, from dispatch's own handles or answer
 * callbacks, never from inside dispatch_set_pair(). */
struct dispatch_pair {
    uint8_t self_id;                        /* this node's id (payment owner) */
    bool (*acked)(void *arg, uint64_t seq); /* the peer holds our event seq */
    bool (*listening)(void *arg);           /* a peer subscriber is connected (our
                                               events may reach it); informative:
                                               dispatch reads payment.shared, which the
                                               node sets from it */
    bool (*paused)(void *arg);              /* start no attempt of any kind now; NULL =
                                               never */
    void *arg;
};

/* Switches to pair mode (pair is copied; acked must not be NULL) or back to
 * standalone (pair NULL); call it before the first payment is submitted. In
 * pair mode:
 *  - only payments whose owner is self_id are sent (others are dropped when
 *    their attempt would start or their pinned job wakes up), except those
 *    taken over by dispatch_resume_unrecorded() from another owner;
 *  - an attempt to processor Q of a payment with shared set waits, after its
 *    SENDING(Q, T) event, until acked(seq of that event), when Q is the
 *    fallback or the payment has the fallback's failed bit (it leaves a
 *    fallback pin); then it is POSTed with the same T;
 *  - nothing starts while paused(). */
void dispatch_set_pair(struct dispatch *d, const struct dispatch_pair *pair);

/* Makes dispatch re-evaluate attempts waiting for an ack on its next loop
 * iteration (call it when the peer's acknowledgement advances). Cheap. */
void dispatch_kick(struct dispatch *d);

/* Forgets everything queued or waiting (call it when the ledger is purged,
 * before or right after applying PURGED, whoever made it). Attempts in flight
 * finish but their answers are ignored. */
void dispatch_purge(struct dispatch *d);

typedef void dispatch_stopped_cb(void *arg);
/* Graceful stop: no new attempt starts; cb runs from the loop once nothing is
 * in flight, or after stop_timeout_ms. Queued and pinned payments stay in the
 * ledger as ACCEPTED/SENDING (the peer can take them over). */
void dispatch_stop(struct dispatch *d, dispatch_stopped_cb *cb, void *arg);

/* Closes the loop handles and frees d once they are closed and every attempt
 * in flight has called back (httpc_close() makes them call back). Answers
 * arriving meanwhile are not emitted. NULL is a no-op. */
void dispatch_free(struct dispatch *d);

/* What an answer to one POST /payments attempt means. */
enum dispatch_fate {
    DISPATCH_RECORDED = 0, /* 200, 422: the processor holds it (422: maybe with another
                              requestedAt, so dispatch confirms it with a GET) */
    DISPATCH_NOT_RECORDED, /* 500, 429, not sent: this attempt recorded nothing */
    DISPATCH_UNKNOWN,      /* timeout, reset, 502/503/504 (a gateway may have forwarded it) */
    DISPATCH_REJECTED,     /* any other status: not recorded, and a bug on our side */
};
/* outcome is enum httpc_outcome. Pure. */
enum dispatch_fate dispatch_classify(int outcome, int status);

struct dispatch_stats {
    uint64_t queued;                   /* now, in the queue (taken over ones included) */
    uint64_t pinned;                   /* now, waiting with an unknown fate */
    uint64_t takeover_queued;          /* now, taken-over ACCEPTED payments waiting for the
                                          default (also counted in queued) */
    uint64_t awaiting_ack;             /* now, SENDING emitted, POST waiting for the peer's ack */
    uint64_t gated[LEDGER_NPROC];      /* attempts that had to wait for the peer's ack */
    uint64_t duplicates[LEDGER_NPROC]; /* 422 answers (confirmed with a GET) */
    uint64_t in_flight[LEDGER_NPROC];  /* now */
    uint64_t sent[LEDGER_NPROC];       /* POST attempts started (first tries and retries) */
    uint64_t retries[LEDGER_NPROC];    /* of which re-tries of a pinned payment */
    uint64_t probes[LEDGER_NPROC];     /* of which probes of a processor not chosen */
    uint64_t recorded[LEDGER_NPROC];   /* RECORDED emitted */
    uint64_t failed[LEDGER_NPROC];     /* FAILED emitted (payment requeued) */
    uint64_t unknown[LEDGER_NPROC];    /* attempts whose fate became unknown */
    uint64_t confirms[LEDGER_NPROC];   /* GET /payments/{id} sent */
    uint64_t parked;                   /* payments given up after bad statuses (bugs) */
    uint64_t dropped;                  /* taken out because the ledger said so (recorded
                                          elsewhere, purged, owned by the peer) */
    uint64_t conflicts;                /* RECORDED refused: recorded by the other processor */
    uint64_t held_ms;                  /* total ms payments waited with both processors held */
    uint64_t hold_episodes;            /* times the policy started holding */
    uint64_t overflowed;               /* payments sent to the fallback because the default
                                          was at its cap with too long a queue to drain
                                          (health_view_route()) */
    struct hist answer[LEDGER_NPROC];  /* each POST attempt's time to an outcome (an answer,
                                          a time-out, a connection error), per processor */
};
void dispatch_get_stats(const struct dispatch *d, struct dispatch_stats *out);

#endif
