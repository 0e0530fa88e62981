/* Log-linear histogram: bucket arithmetic and rank queries. See hist.h for the
 * precision contract; nothing here allocates. */
#include "hist.h"

#include <assert.h>
#include <string.h>

void lg_hist_init(struct lg_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min_us = UINT64_MAX;
}

unsigned lg_hist_index(uint64_t us)
{
    if (us < LG_HIST_SUB)
        return (unsigned)us;
    if (us > LG_HIST_MAX_US)
        us = LG_HIST_MAX_US;
    unsigned k = 63u - (unsigned)__builtin_clzll(us); /* LG_HIST_SUB_BITS..LG_HIST_TOP_BIT */
    unsigned shift = k - (LG_HIST_SUB_BITS - 1);
    unsigned idx = LG_HIST_SUB + (k - LG_HIST_SUB_BITS) * LG_HIST_HALF +
                   (unsigned)((us >> shift) - LG_HIST_HALF);
    assert(idx < LG_HIST_NBUCKETS);
    return idx;
}

void lg_hist_bucket_range(unsigned idx, uint64_t *lower_us, uint64_t *width_us)
{
    assert(idx < LG_HIST_NBUCKETS);
    if (idx < LG_HIST_SUB) {
        *lower_us = idx;
        *width_us = 1;
        return;
    }
    unsigned g = (idx - LG_HIST_SUB) / LG_HIST_HALF;
    unsigned m = (idx - LG_HIST_SUB) % LG_HIST_HALF + LG_HIST_HALF;
    unsigned shift = g + LG_HIST_SUB_BITS - (LG_HIST_SUB_BITS - 1);
    *lower_us = (uint64_t)m << shift;
    *width_us = UINT64_C(1) << shift;
}

void lg_hist_record(struct lg_hist *h, uint64_t us)
{
    h->buckets[lg_hist_index(us)]++;
    h->count++;
    h->sum_us += us;
    if (us < h->min_us)
        h->min_us = us;
    if (us > h->max_us)
        h->max_us = us;
}

void lg_hist_merge(struct lg_hist *dst, const struct lg_hist *src)
{
    if (src->count == 0)
        return;
    for (unsigned i = 0; i < LG_HIST_NBUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->sum_us += src->sum_us;
    if (src->min_us < dst->min_us)
        dst->min_us = src->min_us;
    if (src->max_us > dst->max_us)
        dst->max_us = src->max_us;
}

uint64_t lg_hist_at_rank(const struct lg_hist *h, uint64_t r)
{
    if (h->count == 0)
        return 0;
    if (r == 0)
        return h->min_us;
    if (r >= h->count - 1)
        return h->max_us;
    uint64_t seen = 0;
    for (unsigned i = 0; i < LG_HIST_NBUCKETS; i++) {
        seen += h->buckets[i];
        if (seen > r) {
            uint64_t lo, w;
            lg_hist_bucket_range(i, &lo, &w);
            uint64_t v = lo + w / 2;
            if (v < h->min_us)
                v = h->min_us;
            if (v > h->max_us)
                v = h->max_us;
            return v;
        }
    }
    return h->max_us; /* unreachable while count matches the buckets */
}

uint64_t lg_hist_percentile_ns(const struct lg_hist *h, uint32_t p_pcm)
{
    if (h->count == 0)
        return 0;
    if (p_pcm > 100000)
        p_pcm = 100000;
    /* i = p * (n - 1), kept as a fraction over 100 000 */
    uint64_t inum = (uint64_t)p_pcm * (h->count - 1);
    uint64_t lo_rank = inum / 100000;
    uint64_t frac = inum % 100000;
    uint64_t vj = lg_hist_at_rank(h, lo_rank);
    if (frac == 0)
        return vj * 1000;
    uint64_t vk = lg_hist_at_rank(h, lo_rank + 1);
    return vj * 1000 + ((vk - vj) * 1000 * frac + 50000) / 100000;
}
