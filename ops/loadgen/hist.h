/* Fixed-bucket log-linear latency histogram (HdrHistogram-like) in microseconds:
 * exact below 4096 us, then 2048 sub-buckets per power of two (relative error
 * <= 1/4096 at the bucket midpoint, e.g. +-3 us at 11 ms), up to 10 s; larger
 * values land in the top bucket but min/max stay exact. Recording is O(1) with
 * no allocation; the storage is caller-provided (about 230 KB per histogram).
 * Percentiles follow k6's definition: linear interpolation between the two
 * nearest ranks of the sorted samples. Not thread-safe. */
#ifndef LG_HIST_H
#define LG_HIST_H

#include <stdint.h>

#define LG_HIST_SUB_BITS 12
#define LG_HIST_SUB (1u << LG_HIST_SUB_BITS) /* values below are exact */
#define LG_HIST_HALF (LG_HIST_SUB / 2)       /* sub-buckets per power of two */
#define LG_HIST_MAX_US UINT64_C(10000000)    /* 10 s: top of the bucketed range */
#define LG_HIST_TOP_BIT 23                   /* 2^23 <= 10 s < 2^24 */
#define LG_HIST_NBUCKETS (LG_HIST_SUB + (LG_HIST_TOP_BIT - LG_HIST_SUB_BITS + 1) * LG_HIST_HALF)

struct lg_hist {
    uint64_t count;
    uint64_t min_us; /* exact; UINT64_MAX while empty */
    uint64_t max_us; /* exact; 0 while empty */
    uint64_t sum_us;
    uint64_t buckets[LG_HIST_NBUCKETS];
};

void lg_hist_init(struct lg_hist *h);
void lg_hist_record(struct lg_hist *h, uint64_t us);
/* Adds every sample of src to dst. */
void lg_hist_merge(struct lg_hist *dst, const struct lg_hist *src);

/* Bucket index of a value, and the [lower, lower + width) range of a bucket. */
unsigned lg_hist_index(uint64_t us);
void lg_hist_bucket_range(unsigned idx, uint64_t *lower_us, uint64_t *width_us);

/* The value of the sample at 0-based rank r (r < count) in sorted order, as the
 * midpoint of its bucket clamped to [min, max]; rank 0 is min and rank count-1
 * is max exactly. 0 when empty. */
uint64_t lg_hist_at_rank(const struct lg_hist *h, uint64_t r);

/* Percentile p given in parts per 100 000 (99 000 = p99, 99 900 = p99.9), in
 * nanoseconds: v[floor(i)] + (v[ceil(i)] - v[floor(i)]) * frac(i) with
 * i = p * (count - 1), as k6 computes its trends. 0 when empty. */
uint64_t lg_hist_percentile_ns(const struct lg_hist *h, uint32_t p_pcm);

#endif
