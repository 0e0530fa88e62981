/* Tests of the simulator's payment table (ops/procsim/psim_store): duplicates,
 * lookups, window sums against a brute-force scan on random data (equal times,
 * out-of-order inserts, growth past the initial capacity), purge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ops/procsim/psim_store.h"

static void make_id(uint32_t k, uint8_t id[16])
{
    memset(id, 0, 16);
    memcpy(id + 4, &k, sizeof(k)); /* sequential ids: a weak hash would cluster */
}

static void test_insert_dup_get(void **state)
{
    struct psim_store *st = psim_store_new(4);
    assert_non_null(st);
    uint8_t id[16];
    make_id(1, id);
    assert_int_equal(psim_store_insert(st, id, 1990, 5), 0);
    assert_int_equal(psim_store_insert(st, id, 1, 6), -EEXIST);
    struct psim_payment p;
    assert_true(psim_store_get(st, id, &p));
    assert_int_equal(p.cents, 1990);
    assert_int_equal(p.at_ns, 5);
    make_id(2, id);
    assert_false(psim_store_get(st, id, &p));
    assert_int_equal(psim_store_count(st), 1);
    uint64_t n;
    int64_t c;
    psim_store_sum(st, 5, 5, &n, &c);
    assert_int_equal(n, 1);
    assert_int_equal(c, 1990);
    psim_store_sum(st, 6, 4, &n, &c); /* empty window */
    assert_int_equal(n, 0);
    psim_store_free(st);
}

static void test_sums_match_scan(void **state)
{
    enum { N = 5000 };
    struct psim_store *st = psim_store_new(16); /* grows many times */
    assert_non_null(st);
    int64_t *at = malloc(N * sizeof(*at));
    int64_t *cents = malloc(N * sizeof(*cents));
    assert_non_null(at);
    assert_non_null(cents);
    srand(7);
    for (int i = 0; i < N; i++) {
        at[i] = (int64_t)(rand() % 2000) * 1000; /* many equal times */
        cents[i] = 1 + rand() % 100000;
        uint8_t id[16];
        make_id((uint32_t)i, id);
        assert_int_equal(psim_store_insert(st, id, cents[i], at[i]), 0);
    }
    assert_int_equal(psim_store_count(st), N);
    for (int q = 0; q < 300; q++) {
        int64_t a = (int64_t)(rand() % 2100) * 1000 - 50000 + rand() % 3;
        int64_t b = a + (int64_t)(rand() % 500) * 1000;
        uint64_t want_n = 0;
        int64_t want_c = 0;
        for (int i = 0; i < N; i++) {
            if (at[i] >= a && at[i] <= b) {
                want_n++;
                want_c += cents[i];
            }
        }
        uint64_t n;
        int64_t c;
        psim_store_sum(st, a, b, &n, &c);
        assert_int_equal(n, want_n);
        assert_int_equal(c, want_c);
    }
    uint64_t n;
    int64_t c, all = 0;
    for (int i = 0; i < N; i++)
        all += cents[i];
    psim_store_total(st, &n, &c);
    assert_int_equal(n, N);
    assert_int_equal(c, all);
    for (int i = 0; i < N; i += 97) {
        uint8_t id[16];
        struct psim_payment p;
        make_id((uint32_t)i, id);
        assert_true(psim_store_get(st, id, &p));
        assert_int_equal(p.cents, cents[i]);
        assert_int_equal(psim_store_insert(st, id, 1, 1), -EEXIST);
    }
    psim_store_purge(st);
    psim_store_total(st, &n, &c);
    assert_int_equal(n, 0);
    assert_int_equal(c, 0);
    uint8_t id[16];
    make_id(3, id);
    assert_int_equal(psim_store_insert(st, id, 7, 7), 0); /* ids are free again */
    psim_store_sum(st, 0, 10, &n, &c);
    assert_int_equal(n, 1);
    free(at);
    free(cents);
    psim_store_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_dup_get),
        cmocka_unit_test(test_sums_match_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
