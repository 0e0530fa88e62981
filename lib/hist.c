/* Fixed-bucket histogram (see hist.h). The bounds are integers in ns so that
 * hist_add_ns() compares integers only; most latencies fall in the first
 * buckets, so a forward scan ends early. */
#include "lib/hist.h"

#include <assert.h>
#include <string.h>

static const uint64_t bounds_ns[HIST_NBOUNDS] = {
    50000,     100000,     200000,     500000,        1000000,        2000000,
    5000000,   10000000,   20000000,   50000000,      100000000,      200000000,
    500000000, 1000000000, 2000000000, 5000000000ULL, 10000000000ULL,
};

static const double bounds_s[HIST_NBOUNDS] = {
    0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
    0.05,    0.1,    0.2,    0.5,    1,     2,     5,     10,
};

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof(*h));
}

void hist_add_ns(struct hist *h, uint64_t ns)
{
    unsigned i = 0;
    while (i < HIST_NBOUNDS && ns > bounds_ns[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum_ns += ns;
}

const double *hist_bounds_s(void)
{
    return bounds_s;
}

uint64_t hist_bound_ns(unsigned i)
{
    assert(i < HIST_NBOUNDS);
    return bounds_ns[i];
}

double hist_sum_s(const struct hist *h)
{
    return (double)h->sum_ns / 1e9;
}
