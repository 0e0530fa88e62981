/* Per-second series of the load phase, for the progress line and the HTML
 * report. Storage is sized once from the run's duration (a few dozen bytes per
 * second plus one window histogram); recording a payment's latency is one
 * histogram increment, no allocation. Percentiles and counts are computed once
 * a second by lg_series_roll(), off the request path. Not thread-safe. */
#ifndef LG_SERIES_H
#define LG_SERIES_H

#include <stdbool.h>
#include <stdint.h>

#include "hist.h"

/* One bucket: what finished in [start_ms, end_ms) from the start of the run. */
struct lg_sec {
    uint32_t start_ms, end_ms;
    uint32_t ok;     /* payments answered 2xx in the bucket */
    uint32_t failed; /* payments that failed (any kind) in the bucket */
    uint32_t p50_us; /* 2xx latency percentiles in the bucket; 0 when ok == 0 */
    uint32_t p99_us;
    uint32_t max_us;
    uint32_t vus; /* VU mode: active users; rate mode: payments in flight */
    bool after;   /* wind-down after the load phase (requests still in flight) */
};

struct lg_series {
    unsigned n, cap; /* buckets filled / allocated */
    struct lg_sec *sec;
    uint32_t last_end_ms; /* end of the previous bucket */
    uint64_t last_ok;     /* cumulative counts at the previous roll */
    uint64_t last_failed;
    struct lg_hist win; /* 2xx latencies since the previous roll */
};

/* Buckets for a run of duration_ms: one per whole second, a partial one, and
 * the wind-down. */
unsigned lg_series_cap_for(uint32_t duration_ms);

/* Allocates room for lg_series_cap_for(duration_ms) buckets. 0 or -ENOMEM. */
int lg_series_init(struct lg_series *s, uint32_t duration_ms) __attribute__((warn_unused_result));
void lg_series_release(struct lg_series *s);

/* One 2xx payment's latency (the request path: O(1), no allocation). */
static inline void lg_series_record(struct lg_series *s, uint64_t us)
{
    lg_hist_record(&s->win, us);
}

/* Closes the bucket [previous end, t_ms) given the run's cumulative payment
 * counts, and empties the window. A bucket with no time and nothing in it is
 * not kept. Returns the new bucket, or NULL when none was kept (nothing new, or
 * the storage is full: the series then stops growing, it never overwrites). */
const struct lg_sec *lg_series_roll(struct lg_series *s, uint32_t t_ms, uint64_t ok_total,
                                    uint64_t failed_total, uint32_t vus, bool after);

#endif
