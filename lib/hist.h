/* A fixed-bucket latency histogram cheap enough for the hot path: 17 bounds
 * on a 1-2-5 series from 0.05 ms to 10 s (three per decade, so a quantile read
 * from it is within a factor of 2.5), plus +Inf. Adding a value is a short
 * scan of integer bounds and two additions; nothing allocates, nothing locks
 * (one loop thread owns each histogram). Written out by metrics_histogram()
 * with hist_bounds_s() as the "le" bounds. */
#ifndef LIB_HIST_H
#define LIB_HIST_H

#include <stdint.h>

#define HIST_NBOUNDS 17 /* finite upper bounds; bucket HIST_NBOUNDS is +Inf */

struct hist {
    uint64_t bucket[HIST_NBOUNDS + 1]; /* counts per bucket, not cumulative */
    uint64_t count;                    /* values added */
    uint64_t sum_ns;                   /* their sum, ns (wraps after 584 years of latency) */
};

/* Empties h. Cannot fail. */
void hist_init(struct hist *h);

/* Adds one duration in nanoseconds. A value equal to a bound counts in that
 * bound's bucket (Prometheus's "le"). */
void hist_add_ns(struct hist *h, uint64_t ns);

/* The finite upper bounds in seconds, ascending, HIST_NBOUNDS of them. */
const double *hist_bounds_s(void);

/* The upper bound of bucket i (< HIST_NBOUNDS) in nanoseconds. */
uint64_t hist_bound_ns(unsigned i);

/* h->sum_ns in seconds. */
double hist_sum_s(const struct hist *h);

#endif
