/* The health view of the two payment processors and the routing policy built
 * on it. Two sources: the checker's GET /payments/service-health answers
 * (polled here when this node is the elected checker, or injected from the
 * peer's gossip) and what dispatch observes on real payments (latency of every
 * response, consecutive errors, age of the oldest request in flight).
 *
 * The policy itself is a set of pure functions over struct health_view, so
 * that every combination of inputs can be enumerated by a unit test; struct
 * health only adds the poller around one view. docs/ROUTING.md says why.
 *
 * All times are monotonic loop milliseconds (uv_now()). Loop thread only. */
#ifndef NODE_HEALTH_H
#define NODE_HEALTH_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "node/ledger.h"

struct httpc;

#define HEALTH_HOLD (-1) /* health_choose(): send to neither processor now */
#define HEALTH_WAIT (-2) /* health_view_route(): the chosen processor is at its cap; wait */

struct health_config {
    const char *url[LEDGER_NPROC]; /* base URLs, no trailing slash; copied by health_new() */
    unsigned interval_ms;          /* service-health poll period; raised to >= 5000 */
    unsigned poll_timeout_ms;      /* one service-health request */
    unsigned safe_latency_ms;      /* a processor slower than this is not sent payments */
    unsigned stale_ms;             /* latency/failing info older than this may be probed */
    unsigned error_threshold;      /* consecutive errors that mark a processor failing */
    unsigned probe_interval_ms;    /* at most one probe payment per processor this often */
    unsigned overflow_ms;          /* the default's expected drain time of the queue above
                                      which payments overflow to the fallback; 0 = never */
};

/* interval 5000, poll timeout 6000, safe latency 1200, stale 11000,
 * errors 3, probe 1000, overflow 1000. */
void health_config_default(struct health_config *cfg);

/* Why a processor is not usable (health_assess()). */
enum health_verdict {
    HEALTH_OK = 0,  /* usable */
    HEALTH_FAILING, /* failing (checker or consecutive errors); fast enough */
    HEALTH_SLOW,    /* expected latency above safe_latency_ms; not failing */
    HEALTH_DOWN,    /* failing and slow */
    HEALTH_STALLED, /* fast by what it answered, but its oldest request in flight is far
                       older than that (HEALTH_STALL_*): it may just have slowed down */
};

/* A processor's latency can jump between two answers (the challenge's stages
 * do: 100 ms to 2 s at once). Until an answer or the checker says so, the only
 * sign is the age of the oldest request in flight; at safe_latency_ms that age
 * alone makes the processor slow, but every payment sent before then may land
 * after the audit margin. So a processor whose oldest request in flight is
 * older than HEALTH_STALL_FACTOR x the latency it has been answering with (the
 * fresher of its answers and the checker's minResponseTime), and at least
 * HEALTH_STALL_MIN_MS, is "stalled": new payments wait (HEALTH_HOLD) until an
 * answer comes (then the latency it shows decides) or the age passes the safe
 * latency (then it is slow and the fallback may take them). docs/ROUTING.md,
 * "A sudden slowdown". */
#define HEALTH_STALL_FACTOR 4u
#define HEALTH_STALL_MIN_MS 150u

/* One processor. Filled by the health_view_* functions; public so that tests
 * can build any state. A zeroed struct is "nothing known yet". */
struct health_proc {
    /* checker view (service-health), ours or the peer's */
    bool chk_valid;      /* a result is held */
    bool chk_local;      /* it came from our own poll (so we may share it) */
    bool chk_failing;    /* "failing" */
    uint32_t chk_min_ms; /* "minResponseTime", ms */
    uint64_t chk_at_ms;  /* loop ms when the answer was produced */
    /* observed on payments */
    uint32_t lat_ms;         /* latency estimate: jumps up at once, decays by 1/4 per sample */
    uint64_t lat_at_ms;      /* when lat_ms last took a sample (0 = never) */
    uint32_t peak_ms;        /* largest latency seen in the last HEALTH_PEAK_WINDOW_MS */
    uint64_t peak_at_ms;     /* when peak_ms was seen */
    uint64_t obs_at_ms;      /* last response or error observed (0 = never) */
    uint64_t last_ok_ms;     /* last 200/422 */
    uint64_t last_err_ms;    /* last 500/429/not sent/unknown */
    uint32_t consec_errors;  /* errors since the last success */
    uint32_t in_flight;      /* requests outstanding now */
    uint64_t oldest_sent_ms; /* send time of the oldest of them (valid if in_flight > 0) */
    uint64_t last_probe_ms;  /* last probe payment sent (0 = never) */
};

#define HEALTH_PEAK_WINDOW_MS 60000

struct health_view {
    struct health_proc proc[LEDGER_NPROC];
    uint32_t safe_latency_ms;
    uint32_t stale_ms;
    uint32_t error_threshold;
    uint32_t probe_interval_ms;
    uint32_t overflow_ms; /* 0 = never overflow (hold at the default's cap) */
};

/* What dispatch holds against the processors' capacity, for
 * health_view_route(). Per node: each node of a pair counts its own. */
struct health_load {
    uint32_t queued;             /* payments waiting for their first attempt */
    uint32_t busy[LEDGER_NPROC]; /* attempts counting against each cap now */
    uint32_t cap[LEDGER_NPROC];  /* in-flight cap per processor (> 0) */
};

/* Kinds of observation dispatch reports. */
enum health_obs {
    HEALTH_OBS_OK = 0,   /* 200 or 422: the processor recorded it */
    HEALTH_OBS_FAIL,     /* 500 (after the processor's delay) */
    HEALTH_OBS_BUSY,     /* 429: refused at once, no latency information */
    HEALTH_OBS_NOT_SENT, /* connection refused / resolve failure */
    HEALTH_OBS_UNKNOWN,  /* timeout or reset: latency at least elapsed */
};

/* ---- pure policy over a view (no I/O, no clock: now is an argument) ---- */

void health_view_init(struct health_view *v, const struct health_config *cfg);

/* Records one finished request to processor p taking latency_ms. */
void health_view_observe(struct health_view *v, int p, enum health_obs kind, uint32_t latency_ms,
                         uint64_t now_ms);

/* Sets the checker result for p, produced at checked_at_ms (loop time). */
void health_view_checker(struct health_view *v, int p, bool failing, uint32_t min_ms,
                         uint64_t checked_at_ms, bool local);

/* Expected latency of a new request to p now: the fresher of the observed
 * estimate and the checker's minResponseTime, raised to the age of the oldest
 * request in flight. 0 when nothing is known. */
uint32_t health_view_expected_ms(const struct health_view *v, int p, uint64_t now_ms);

enum health_verdict health_view_assess(const struct health_view *v, int p, uint64_t now_ms);

/* LEDGER_DEFAULT if the default is usable (HEALTH_OK); HEALTH_HOLD if it is
 * stalled; else LEDGER_FALLBACK if the fallback is usable; else HEALTH_HOLD. */
int health_view_choose(const struct health_view *v, uint64_t now_ms);

/* Payments per second processor p can take now at `cap` attempts in flight,
 * by Little's law: cap / expected latency (the latency taken as at least
 * 1 ms). */
uint32_t health_view_capacity_per_s(const struct health_view *v, int p, uint32_t cap,
                                    uint64_t now_ms);

/* Expected time for the default to drain l->queued payments at its capacity:
 * queued * expected latency / cap, in ms. */
uint64_t health_view_drain_ms(const struct health_view *v, const struct health_load *l,
                              uint64_t now_ms);

/* Where the next queued payment goes given the load (the capacity-aware
 * policy; docs/ROUTING.md, "Overload"):
 *  - health_view_choose() says hold: HEALTH_HOLD;
 *  - the chosen processor has room (busy < cap): that one;
 *  - the default is chosen but at its cap, overflow is on (overflow_ms > 0),
 *    the queue's drain time on the default exceeds overflow_ms, and the
 *    fallback is usable (HEALTH_OK: the audit-margin rules) and has room:
 *    LEDGER_FALLBACK;
 *  - otherwise HEALTH_WAIT (a slot frees when an attempt ends).
 * Never returns a processor that is not HEALTH_OK or that is at its cap. */
int health_view_route(const struct health_view *v, const struct health_load *l, uint64_t now_ms);

/* Whether one real payment may be sent to p now although p is not chosen, to
 * discover a recovery between checker polls: p is not usable, nothing is in
 * flight to it, the probe interval has passed, and either p is only failing
 * (a failed attempt costs nothing: 500 means not recorded) or all we know of
 * its latency is stale. Never probes a processor known to be slow (that
 * request could straddle the audit margin), never probes the fallback while
 * the default is usable or stalled. */
bool health_view_should_probe(const struct health_view *v, int p, uint64_t now_ms);

/* How long after an attempt to p whose fate is unknown its fate is surely
 * settled: the larger of the peak latency seen in the last minute and the
 * checker's minResponseTime. The caller adds its margin. */
uint32_t health_view_settle_ms(const struct health_view *v, int p, uint64_t now_ms);

/* ---- the poller ---- */

struct health;

/* Returns NULL on allocation failure or a missing URL. httpc is shared and
 * must outlive health (close health first). */
struct health *health_new(uv_loop_t *loop, const struct health_config *cfg, struct httpc *httpc);

/* Starts the poll timer (first poll at once when this node is the checker). */
void health_start(struct health *h);

/* Whether this node polls the processors; default false until set. Callable
 * any time (the election flips it). */
void health_set_checker(struct health *h, bool checker);
bool health_is_checker(const struct health *h);

/* Injects the peer checker's result for p, age_ms old when received. Ignored
 * when it is older than what we hold. */
void health_apply_remote(struct health *h, int p, bool failing, uint32_t min_ms, uint32_t age_ms);

/* Our own latest poll result for p, to share through gossip: false when we
 * hold none (or only the peer's). */
bool health_local_result(const struct health *h, int p, bool *failing, uint32_t *min_ms,
                         uint32_t *age_ms);

/* The live view, read-only: for the pure health_view_* queries. */
const struct health_view *health_view_get(const struct health *h);
/* The live view, writable: for tests that set up a state. Modules report
 * through the functions below instead. */
struct health_view *health_view_of(struct health *h);

/* What dispatch reports. health_view_observe() on the live view: one finished
 * request to processor p. */
void health_observe(struct health *h, int p, enum health_obs kind, uint32_t latency_ms,
                    uint64_t now_ms);
/* Requests to p outstanding now, and the send time (loop ms) of the oldest
 * (0 when n is 0). */
void health_set_in_flight(struct health *h, int p, uint32_t n, uint64_t oldest_sent_ms);
/* A probe payment (health_view_should_probe()) was just sent to p. */
void health_probe_sent(struct health *h, int p, uint64_t now_ms);
int health_choose(const struct health *h, uint64_t now_ms);

struct health_stats {
    uint64_t polls;        /* service-health requests sent */
    uint64_t poll_ok;      /* 200 answers parsed */
    uint64_t poll_no_news; /* 429, other statuses, errors, bad bodies */
    uint64_t realigned;    /* polls answered late or not at all: cadence restarted */
};
void health_get_stats(const struct health *h, struct health_stats *out);

/* Stops the timer and frees h once any poll in flight has completed (its
 * callback arrives at the latest when httpc_close() aborts it). h must not be
 * used afterwards. NULL is a no-op. */
void health_close(struct health *h);

#endif
