/* Load generator histogram: bucket arithmetic, and percentiles against sorting
 * random samples with k6's interpolation. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ops/loadgen/hist.h"
#include "ops/loadgen/rng.h"

static struct lg_hist H, H2;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* k6: i = p * (n - 1); v[floor(i)] + (v[ceil(i)] - v[floor(i)]) * frac(i), in ns. */
static uint64_t exact_pct_ns(const uint64_t *sorted, size_t n, uint32_t p_pcm)
{
    uint64_t inum = (uint64_t)p_pcm * (n - 1);
    uint64_t j = inum / 100000, frac = inum % 100000;
    uint64_t vj = sorted[j];
    if (frac == 0)
        return vj * 1000;
    uint64_t vk = sorted[j + 1];
    return vj * 1000 + ((vk - vj) * 1000 * frac + 50000) / 100000;
}

static void test_buckets_cover_values(void **state)
{
    (void)state;
    unsigned prev = 0;
    /* every value below 2^20, then a stride up to 10 s */
    for (uint64_t v = 0; v <= LG_HIST_MAX_US; v += (v < (1u << 20) ? 1 : 97)) {
        unsigned idx = lg_hist_index(v);
        assert_true(idx < LG_HIST_NBUCKETS);
        assert_true(idx >= prev); /* monotonic */
        prev = idx;
        uint64_t lo, w;
        lg_hist_bucket_range(idx, &lo, &w);
        assert_true(lo <= v && v < lo + w);
        if (v < LG_HIST_SUB)
            assert_int_equal(w, 1); /* exact below 4096 us */
        else
            assert_true(w * 2048 <= v); /* relative width <= 1/2048 */
    }
    assert_int_equal(lg_hist_index(LG_HIST_MAX_US * 100), lg_hist_index(LG_HIST_MAX_US));
}

static void test_empty_and_single(void **state)
{
    (void)state;
    lg_hist_init(&H);
    assert_int_equal(lg_hist_percentile_ns(&H, 99000), 0);
    lg_hist_record(&H, 123456);
    assert_int_equal(lg_hist_percentile_ns(&H, 50000), 123456000);
    assert_int_equal(lg_hist_percentile_ns(&H, 99900), 123456000);
    assert_int_equal(H.max_us, 123456);
    assert_int_equal(H.min_us, 123456);
}

static void test_interpolation_small(void **state)
{
    (void)state;
    /* samples 1..100 us: p99 -> i = 0.99 * 99 = 98.01 -> 99 + 0.01 * (100 - 99) = 99.01 us */
    lg_hist_init(&H);
    for (uint64_t v = 100; v >= 1; v--)
        lg_hist_record(&H, v);
    assert_int_equal(lg_hist_percentile_ns(&H, 99000), 99010);
    /* p50 -> i = 49.5 -> 50 + 0.5 = 50.5 us */
    assert_int_equal(lg_hist_percentile_ns(&H, 50000), 50500);
    assert_int_equal(lg_hist_percentile_ns(&H, 100000), 100000);
    assert_int_equal(lg_hist_percentile_ns(&H, 0), 1000);
}

static void check_random(struct lg_rng *rng, size_t n, uint64_t maxv, bool exact)
{
    uint64_t *v = malloc(n * sizeof(*v));
    assert_non_null(v);
    lg_hist_init(&H);
    for (size_t i = 0; i < n; i++) {
        /* log-uniform spread: most samples small, a long tail */
        uint64_t r = lg_rng_next(rng);
        unsigned bits = (unsigned)(r % 64);
        uint64_t x = (r >> 8) % maxv;
        if (!exact && bits < 40)
            x >>= bits % 16;
        v[i] = x;
        lg_hist_record(&H, x);
    }
    qsort(v, n, sizeof(*v), cmp_u64);
    static const uint32_t ps[] = {0, 1000, 50000, 90000, 99000, 99900, 99990, 100000};
    for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
        uint64_t e = exact_pct_ns(v, n, ps[k]);
        uint64_t h = lg_hist_percentile_ns(&H, ps[k]);
        if (exact) {
            assert_int_equal(h, e);
        } else {
            uint64_t d = h > e ? h - e : e - h;
            /* half a bucket: <= value / 4096, plus interpolation slack */
            assert_true(d <= e / 2000 + 1000);
        }
    }
    assert_int_equal(H.max_us, v[n - 1]);
    assert_int_equal(H.min_us, v[0]);
    assert_int_equal(H.count, n);
    free(v);
}

static void test_random_vs_sort(void **state)
{
    (void)state;
    struct lg_rng rng;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        lg_rng_seed_with(&rng, seed);
        check_random(&rng, 10007, LG_HIST_SUB, true);     /* exact region */
        check_random(&rng, 20011, LG_HIST_MAX_US, false); /* up to 10 s */
        check_random(&rng, 3, LG_HIST_MAX_US, false);     /* tiny n */
    }
}

static void test_merge(void **state)
{
    (void)state;
    lg_hist_init(&H);
    lg_hist_init(&H2);
    for (uint64_t v = 1; v <= 1000; v++)
        lg_hist_record(v % 2 ? &H : &H2, v * 37);
    lg_hist_merge(&H, &H2);
    assert_int_equal(H.count, 1000);
    assert_int_equal(H.min_us, 37);
    assert_int_equal(H.max_us, 37000);
    assert_int_equal(H.sum_us, 37 * 500500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets_cover_values),
        cmocka_unit_test(test_empty_and_single),
        cmocka_unit_test(test_interpolation_small),
        cmocka_unit_test(test_random_vs_sort),
        cmocka_unit_test(test_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
