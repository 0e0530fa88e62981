/* node/ledger: every transition and return code, dedup, PURGED, a full ledger,
 * summaries at the edges, and a randomized model test (200k events against
 * plain arrays, summaries over random windows checked by brute force), and
 * exact sums beyond 2^63 cents.
 * Seed: TEST_SEED env, printed on failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/ledger.h"

/* --- helpers --------------------------------------------------------------- */

static void make_id(uint8_t id[16], unsigned n)
{
    memset(id, 0, 16);
    id[0] = 0x42;
    id[12] = (uint8_t)(n >> 24);
    id[13] = (uint8_t)(n >> 16);
    id[14] = (uint8_t)(n >> 8);
    id[15] = (uint8_t)n;
}

static int ev_accept(struct ledger *l, unsigned n, int64_t cents, int64_t at, uint8_t origin,
                     struct payment **out)
{
    struct event ev = {.type = EVENT_ACCEPTED, .origin = origin, .seq = 1};
    make_id(ev.id, n);
    ev.amount_cents = cents;
    ev.at_ms = at;
    return ledger_apply(l, &ev, out);
}

static int ev_send(struct ledger *l, unsigned n, uint8_t proc, int64_t at, uint8_t origin,
                   struct payment **out)
{
    struct event ev = {.type = EVENT_SENDING, .origin = origin, .seq = 1, .processor = proc};
    make_id(ev.id, n);
    ev.at_ms = at;
    return ledger_apply(l, &ev, out);
}

static int ev_record(struct ledger *l, unsigned n, uint8_t proc, int64_t at, int64_t cents,
                     struct payment **out)
{
    struct event ev = {.type = EVENT_RECORDED, .origin = 1, .seq = 1, .processor = proc};
    make_id(ev.id, n);
    ev.at_ms = at;
    ev.amount_cents = cents;
    return ledger_apply(l, &ev, out);
}

static int ev_fail(struct ledger *l, unsigned n, uint8_t proc, struct payment **out)
{
    struct event ev = {.type = EVENT_FAILED, .origin = 1, .seq = 1, .processor = proc};
    make_id(ev.id, n);
    return ledger_apply(l, &ev, out);
}

static int ev_purge(struct ledger *l)
{
    struct event ev = {.type = EVENT_PURGED, .origin = 1, .seq = 1, .epoch = 1};
    return ledger_apply(l, &ev, NULL);
}

/* A 128-bit sum in decimal, in one of four static buffers (slot). */
static const char *cents_str(ledger_cents_sum v, int slot)
{
    static char buf[4][48];
    char tmp[48];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v != 0);
    for (int k = 0; k < n; k++)
        buf[slot][k] = tmp[n - 1 - k];
    buf[slot][n] = '\0';
    return buf[slot];
}

static void assert_totals(const struct ledger *l, int64_t from, int64_t to, int64_t c0, int64_t s0,
                          int64_t c1, int64_t s1)
{
    struct ledger_totals t;
    ledger_summary(l, from, to, &t);
    assert_true(t.count[0] == c0);
    assert_true(t.cents[0] == (ledger_cents_sum)s0);
    assert_true(t.count[1] == c1);
    assert_true(t.cents[1] == (ledger_cents_sum)s1);
}

static int setup(void **state)
{
    *state = ledger_new(64);
    return *state == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    struct ledger *l = *state;
    assert_true(ledger_check(l));
    ledger_free(l);
    return 0;
}

/* --- unit tests ------------------------------------------------------------ */

static void test_new_free(void **state)
{
    assert_null(ledger_new(0));
    struct ledger *l = ledger_new(1);
    assert_non_null(l);
    assert_int_equal(ledger_capacity(l), 1);
    assert_int_equal(ledger_size(l), 0);
    assert_null(ledger_at(l, 0));
    assert_true(ledger_check(l));
    ledger_free(l);
    ledger_free(NULL);
}

static void test_accept_and_dedup(void **state)
{
    struct ledger *l = *state;
    struct payment *p = NULL, *q = NULL;
    assert_int_equal(ev_accept(l, 1, 1990, 1000, 2, &p), 0);
    assert_non_null(p);
    uint8_t id[16];
    make_id(id, 1);
    assert_memory_equal(p->id, id, 16);
    assert_true(p->amount_cents == 1990);
    assert_true(p->accepted_ms == 1000);
    assert_int_equal(p->state, LEDGER_ACCEPTED);
    assert_int_equal(p->owner, 2);
    assert_int_equal(p->failed, 0);
    assert_int_equal(p->index, 0);
    assert_ptr_equal(ledger_find(l, id), p);
    assert_ptr_equal(ledger_at(l, 0), p);
    assert_null(ledger_at(l, 1));
    assert_int_equal(ledger_size(l), 1);
    assert_int_equal(ledger_count_state(l, LEDGER_ACCEPTED), 1);

    /* Same id again (even with other fields): -EEXIST, the original kept. */
    assert_int_equal(ev_accept(l, 1, 5, 2000, 1, &q), -EEXIST);
    assert_ptr_equal(q, p);
    assert_true(p->amount_cents == 1990 && p->accepted_ms == 1000 && p->owner == 2);
    assert_int_equal(ledger_size(l), 1);
    assert_int_equal(ev_accept(l, 1, 5, 2000, 1, NULL), -EEXIST);

    make_id(id, 2);
    assert_null(ledger_find(l, id));
    assert_int_equal(ev_accept(l, 2, 1, 1, 1, &q), 0);
    assert_int_equal(q->index, 1);
    assert_ptr_equal(ledger_find(l, id), q);
}

static void test_invalid_events(void **state)
{
    struct ledger *l = *state;
    struct payment *p = (struct payment *)1;
    assert_int_equal(ev_accept(l, 1, 0, 1, 1, &p), -EINVAL);
    assert_null(p);
    assert_int_equal(ev_accept(l, 1, -5, 1, 1, NULL), -EINVAL);
    assert_int_equal(ledger_size(l), 0);
    assert_int_equal(ev_accept(l, 1, 100, 1, 1, NULL), 0);
    assert_int_equal(ev_send(l, 1, 2, 5, 1, NULL), -EINVAL);
    assert_int_equal(ev_record(l, 1, 2, 5, 100, NULL), -EINVAL);
    assert_int_equal(ev_fail(l, 1, 7, NULL), -EINVAL);
    assert_int_equal(ev_record(l, 1, 0, 5, 0, NULL), -EINVAL);

    struct event ev = {.type = EVENT_NONE, .origin = 1, .seq = 1};
    make_id(ev.id, 1);
    assert_int_equal(ledger_apply(l, &ev, NULL), -EINVAL);
    ev.type = (enum event_type)(EVENT_TYPE_MAX + 1);
    assert_int_equal(ledger_apply(l, &ev, NULL), -EINVAL);
    assert_int_equal(ledger_count_state(l, LEDGER_ACCEPTED), 1);
}

static void test_unknown_id(void **state)
{
    struct ledger *l = *state;
    struct payment *p = (struct payment *)1;
    assert_int_equal(ev_send(l, 9, 0, 5, 1, &p), -ENOENT);
    assert_null(p);
    assert_int_equal(ev_record(l, 9, 0, 5, 10, NULL), -ENOENT);
    assert_int_equal(ev_fail(l, 9, 0, NULL), -ENOENT);
    assert_int_equal(ledger_size(l), 0);
}

static void test_sending(void **state)
{
    struct ledger *l = *state;
    struct payment *p, *q;
    assert_int_equal(ev_accept(l, 1, 100, 10, 1, &p), 0);
    assert_int_equal(ev_send(l, 1, LEDGER_FALLBACK, 20, 2, &q), 0);
    assert_ptr_equal(q, p);
    assert_int_equal(p->state, LEDGER_SENDING);
    assert_int_equal(p->processor, LEDGER_FALLBACK);
    assert_true(p->requested_at_ms == 20);
    assert_int_equal(p->owner, 2);
    assert_true(p->accepted_ms == 10);
    assert_int_equal(ledger_count_state(l, LEDGER_ACCEPTED), 0);
    assert_int_equal(ledger_count_state(l, LEDGER_SENDING), 1);
    /* A new attempt (other processor, other time, other owner) replaces it. */
    assert_int_equal(ev_send(l, 1, LEDGER_DEFAULT, 30, 1, NULL), 0);
    assert_int_equal(p->processor, LEDGER_DEFAULT);
    assert_true(p->requested_at_ms == 30);
    assert_int_equal(p->owner, 1);
    assert_int_equal(ledger_count_state(l, LEDGER_SENDING), 1);
    /* A repeat is applied again (0). */
    assert_int_equal(ev_send(l, 1, LEDGER_DEFAULT, 30, 1, NULL), 0);
    /* Not counted in summaries until RECORDED. */
    assert_totals(l, INT64_MIN, INT64_MAX, 0, 0, 0, 0);
}

static void test_recorded(void **state)
{
    struct ledger *l = *state;
    struct payment *p, *q;
    assert_int_equal(ev_accept(l, 1, 100, 10, 1, &p), 0);
    assert_int_equal(ev_send(l, 1, LEDGER_DEFAULT, 20, 1, NULL), 0);
    /* Wrong amount: -EINVAL, nothing changed. */
    assert_int_equal(ev_record(l, 1, LEDGER_DEFAULT, 20, 101, &q), -EINVAL);
    assert_int_equal(p->state, LEDGER_SENDING);
    /* The RECORDED's requestedAt wins over the SENDING's. */
    assert_int_equal(ev_record(l, 1, LEDGER_DEFAULT, 25, 100, &q), 0);
    assert_ptr_equal(q, p);
    assert_int_equal(p->state, LEDGER_RECORDED);
    assert_true(p->requested_at_ms == 25);
    assert_int_equal(ledger_count_state(l, LEDGER_SENDING), 0);
    assert_int_equal(ledger_count_state(l, LEDGER_RECORDED), 1);
    assert_totals(l, INT64_MIN, INT64_MAX, 1, 100, 0, 0);
    assert_totals(l, 25, 25, 1, 100, 0, 0);
    assert_totals(l, 20, 24, 0, 0, 0, 0);
    assert_totals(l, 26, INT64_MAX, 0, 0, 0, 0);

    /* Repeat by the same processor: -EEXIST, *out set; by the other: -EPROTO. */
    q = NULL;
    assert_int_equal(ev_record(l, 1, LEDGER_DEFAULT, 99, 100, &q), -EEXIST);
    assert_ptr_equal(q, p);
    assert_true(p->requested_at_ms == 25);
    q = NULL;
    assert_int_equal(ev_record(l, 1, LEDGER_FALLBACK, 25, 100, &q), -EPROTO);
    assert_ptr_equal(q, p);
    assert_int_equal(p->processor, LEDGER_DEFAULT);
    /* SENDING after RECORDED: -EPROTO. FAILED after RECORDED: -EEXIST. */
    assert_int_equal(ev_send(l, 1, LEDGER_FALLBACK, 30, 2, NULL), -EPROTO);
    assert_int_equal(ev_send(l, 1, LEDGER_DEFAULT, 30, 2, NULL), -EPROTO);
    assert_int_equal(ev_fail(l, 1, LEDGER_DEFAULT, NULL), -EEXIST);
    assert_int_equal(ev_fail(l, 1, LEDGER_FALLBACK, NULL), -EEXIST);
    assert_int_equal(p->state, LEDGER_RECORDED);
    assert_int_equal(p->owner, 1);
    assert_int_equal(p->failed, 0);
    assert_totals(l, INT64_MIN, INT64_MAX, 1, 100, 0, 0);

    /* Straight from ACCEPTED (the peer's SENDING may have been missed). */
    assert_int_equal(ev_accept(l, 2, 7, 10, 2, &p), 0);
    assert_int_equal(ev_record(l, 2, LEDGER_FALLBACK, 25, 7, NULL), 0);
    assert_int_equal(p->state, LEDGER_RECORDED);
    assert_int_equal(p->processor, LEDGER_FALLBACK);
    assert_totals(l, INT64_MIN, INT64_MAX, 1, 100, 1, 7);
    assert_int_equal(ledger_count_state(l, LEDGER_ACCEPTED), 0);
    assert_int_equal(ledger_count_state(l, LEDGER_RECORDED), 2);
}

static void test_failed(void **state)
{
    struct ledger *l = *state;
    struct payment *p, *q;
    assert_int_equal(ev_accept(l, 1, 100, 10, 1, &p), 0);
    /* FAILED while ACCEPTED: bit set, state kept. */
    assert_int_equal(ev_fail(l, 1, LEDGER_DEFAULT, &q), 0);
    assert_ptr_equal(q, p);
    assert_int_equal(p->failed, 1u << LEDGER_DEFAULT);
    assert_int_equal(p->state, LEDGER_ACCEPTED);
    /* SENDING to the default clears its bit. */
    assert_int_equal(ev_send(l, 1, LEDGER_DEFAULT, 20, 1, NULL), 0);
    assert_int_equal(p->failed, 0);
    /* FAILED by the other processor: bit set, still SENDING to the default. */
    assert_int_equal(ev_fail(l, 1, LEDGER_FALLBACK, NULL), 0);
    assert_int_equal(p->failed, 1u << LEDGER_FALLBACK);
    assert_int_equal(p->state, LEDGER_SENDING);
    assert_int_equal(ledger_count_state(l, LEDGER_SENDING), 1);
    /* FAILED by the processor it is sending to: back to ACCEPTED. */
    assert_int_equal(ev_fail(l, 1, LEDGER_DEFAULT, NULL), 0);
    assert_int_equal(p->failed, (1u << LEDGER_DEFAULT) | (1u << LEDGER_FALLBACK));
    assert_int_equal(p->state, LEDGER_ACCEPTED);
    assert_int_equal(ledger_count_state(l, LEDGER_SENDING), 0);
    assert_int_equal(ledger_count_state(l, LEDGER_ACCEPTED), 1);
    /* Again: still 0, nothing else changes. */
    assert_int_equal(ev_fail(l, 1, LEDGER_DEFAULT, NULL), 0);
    assert_int_equal(p->state, LEDGER_ACCEPTED);
    /* SENDING to the fallback clears only the fallback bit; RECORDED clears its own. */
    assert_int_equal(ev_send(l, 1, LEDGER_FALLBACK, 30, 2, NULL), 0);
    assert_int_equal(p->failed, 1u << LEDGER_DEFAULT);
    assert_int_equal(ev_record(l, 1, LEDGER_FALLBACK, 30, 100, NULL), 0);
    assert_int_equal(p->failed, 1u << LEDGER_DEFAULT);
    assert_totals(l, 30, 30, 0, 0, 1, 100);

    /* After a takeover (node 2 sent it last), node 1's late FAILED for the
     * same processor leaves node 2's attempt pinned. */
    assert_int_equal(ev_accept(l, 2, 100, 10, 1, &p), 0);
    assert_int_equal(ev_send(l, 2, LEDGER_DEFAULT, 40, 2, NULL), 0);
    assert_int_equal(p->owner, 2);
    assert_int_equal(ev_fail(l, 2, LEDGER_DEFAULT, NULL), 0);
    assert_int_equal(p->state, LEDGER_SENDING);
    assert_int_equal(p->failed, 1u << LEDGER_DEFAULT);
}

static void test_full(void **state)
{
    struct ledger *l = ledger_new(3);
    assert_non_null(l);
    struct payment *p = NULL;
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(ev_accept(l, i, 10, 1, 1, NULL), 0);
    p = (struct payment *)1;
    assert_int_equal(ev_accept(l, 3, 10, 1, 1, &p), -ENOSPC);
    assert_null(p);
    assert_int_equal(ledger_size(l), 3);
    /* A known id is still found and deduplicated when full. */
    assert_int_equal(ev_accept(l, 1, 10, 1, 1, &p), -EEXIST);
    assert_ptr_equal(p, ledger_at(l, 1));
    /* Other events still apply. */
    assert_int_equal(ev_record(l, 2, 0, 5, 10, NULL), 0);
    assert_true(ledger_check(l));
    /* After PURGED there is room again. */
    assert_int_equal(ev_purge(l), 0);
    assert_int_equal(ev_accept(l, 3, 10, 1, 1, NULL), 0);
    assert_true(ledger_check(l));
    ledger_free(l);
}

/* The issue-11 overflow: 92,234 payments of 1e12 (MONEY_MAX_CENTS, the API's
 * largest amount) pass 2^63 cents. The summary stays exact and positive, for
 * the whole time and for windows, and the heartbeat's 64-bit copy saturates. */
static void test_sums_beyond_int64(void **state)
{
    enum { N = 92234, HALF = N / 2 };
    const int64_t big = 100000000000000LL; /* 1e12 units in cents */
    struct ledger *l = ledger_new(N + 2);
    assert_non_null(l);
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(ev_accept(l, i, big, 1, 1, NULL), 0);
        assert_int_equal(ev_record(l, i, 0, i < HALF ? 100 : 200, big, NULL), 0);
    }
    /* and two of INT64_MAX on the fallback: a sum of 2^64 - 2 */
    for (unsigned i = N; i < N + 2; i++) {
        assert_int_equal(ev_accept(l, i, INT64_MAX, 1, 1, NULL), 0);
        assert_int_equal(ev_record(l, i, 1, 150, INT64_MAX, NULL), 0);
    }
    assert_true(ledger_check(l));
    struct ledger_totals t;
    ledger_summary(l, INT64_MIN, INT64_MAX, &t);
    assert_true(t.count[0] == N);
    assert_true(t.cents[0] == (ledger_cents_sum)N * (ledger_cents_sum)big);
    assert_true(t.cents[0] > (ledger_cents_sum)INT64_MAX);
    assert_string_equal(cents_str(t.cents[0], 0), "9223400000000000000");
    assert_true(t.count[1] == 2);
    assert_string_equal(cents_str(t.cents[1], 0), "18446744073709551614");
    /* Windows are differences of two prefix sums: exact too. */
    ledger_summary(l, 150, INT64_MAX, &t);
    assert_true(t.count[0] == N - HALF);
    assert_true(t.cents[0] == (ledger_cents_sum)(N - HALF) * (ledger_cents_sum)big);
    assert_true(t.count[1] == 2);
    ledger_summary(l, 100, 100, &t);
    assert_true(t.count[0] == HALF && t.cents[0] == (ledger_cents_sum)HALF * (ledger_cents_sum)big);
    assert_true(t.count[1] == 0 && t.cents[1] == 0);
    /* The 64-bit carrier saturates instead of wrapping to a negative. */
    ledger_summary(l, INT64_MIN, INT64_MAX, &t);
    assert_true(ledger_cents_sum_sat64(t.cents[0]) == INT64_MAX);
    assert_true(ledger_cents_sum_sat64(t.cents[1]) == INT64_MAX);
    assert_true(ledger_cents_sum_sat64((ledger_cents_sum)INT64_MAX) == INT64_MAX);
    assert_true(ledger_cents_sum_sat64(1990) == 1990);
    assert_true(ledger_cents_sum_sat64(0) == 0);
    ledger_free(l);
}

static void count_cb(struct payment *p, void *arg)
{
    unsigned *seen = arg;
    seen[p->index]++;
}

static void test_foreach_unrecorded(void **state)
{
    struct ledger *l = *state;
    for (unsigned i = 0; i < 10; i++)
        assert_int_equal(ev_accept(l, i, 10 + i, 1, 1, NULL), 0);
    for (unsigned i = 0; i < 10; i += 3)
        assert_int_equal(ev_record(l, i, i % 2, 5, 10 + i, NULL), 0);
    assert_int_equal(ev_send(l, 1, 0, 5, 1, NULL), 0);
    unsigned seen[10] = {0};
    ledger_foreach_unrecorded(l, count_cb, seen);
    for (unsigned i = 0; i < 10; i++)
        assert_int_equal(seen[i], i % 3 == 0 ? 0 : 1);
}

static void test_purge(void **state)
{
    struct ledger *l = *state;
    for (unsigned i = 0; i < 40; i++) {
        assert_int_equal(ev_accept(l, i, 100, 1, 1, NULL), 0);
        if (i % 2)
            assert_int_equal(ev_record(l, i, i % 4 == 1, (int64_t)i, 100, NULL), 0);
        else if (i % 4 == 0)
            assert_int_equal(ev_send(l, i, 0, (int64_t)i, 1, NULL), 0);
    }
    assert_true(ledger_check(l));
    assert_totals(l, INT64_MIN, INT64_MAX, 10, 1000, 10, 1000);
    struct payment *p = (struct payment *)1;
    struct event ev = {.type = EVENT_PURGED, .origin = 2, .seq = 9, .epoch = 3};
    assert_int_equal(ledger_apply(l, &ev, &p), 0);
    assert_null(p);
    assert_true(ledger_check(l));
    assert_int_equal(ledger_size(l), 0);
    for (int s = LEDGER_ACCEPTED; s <= LEDGER_RECORDED; s++)
        assert_int_equal(ledger_count_state(l, (enum ledger_state)s), 0);
    assert_totals(l, INT64_MIN, INT64_MAX, 0, 0, 0, 0);
    assert_null(ledger_at(l, 0));
    for (unsigned i = 0; i < 40; i++) {
        uint8_t id[16];
        make_id(id, i);
        assert_null(ledger_find(l, id));
    }
    unsigned seen[64] = {0};
    ledger_foreach_unrecorded(l, count_cb, seen);
    for (unsigned i = 0; i < 64; i++)
        assert_int_equal(seen[i], 0);
    /* The same ids are new again. */
    assert_int_equal(ev_accept(l, 39, 5, 1, 1, &p), 0);
    assert_int_equal(p->index, 0);
    assert_int_equal(p->state, LEDGER_ACCEPTED);
    assert_int_equal(ev_record(l, 39, 1, 7, 5, NULL), 0);
    assert_totals(l, INT64_MIN, INT64_MAX, 0, 0, 1, 5);
    /* Purging an empty ledger is fine too. */
    assert_int_equal(ev_purge(l), 0);
    assert_int_equal(ev_purge(l), 0);
    assert_int_equal(ledger_size(l), 0);
}

static void test_summary_edges(void **state)
{
    struct ledger *l = *state;
    /* Many equal timestamps, both processors, out-of-order arrival. */
    int64_t times[] = {50, 10, 10, 30, 10, 50, 20, 40, 30, 10, 60, 0, -5, INT64_MAX, INT64_MIN};
    int n = (int)(sizeof(times) / sizeof(times[0]));
    for (int i = 0; i < n; i++) {
        assert_int_equal(ev_accept(l, (unsigned)i, 1 + i, 1, 1, NULL), 0);
        assert_int_equal(ev_record(l, (unsigned)i, (uint8_t)(i % 2), times[i], 1 + i, NULL), 0);
    }
    assert_true(ledger_check(l));
    for (int a = -2; a < 64; a += 1) {
        for (int b = -2; b < 64; b += 1) {
            int64_t from = a == -2 ? INT64_MIN : a == -1 ? -5 : a;
            int64_t to = b == -2 ? INT64_MAX : b == -1 ? -5 : b;
            int64_t c[2] = {0, 0}, s[2] = {0, 0};
            for (int i = 0; i < n; i++) {
                if (times[i] >= from && times[i] <= to) {
                    c[i % 2]++;
                    s[i % 2] += 1 + i;
                }
            }
            assert_totals(l, from, to, c[0], s[0], c[1], s[1]);
        }
    }
    assert_totals(l, 10, 9, 0, 0, 0, 0);
    assert_totals(l, INT64_MAX, INT64_MIN, 0, 0, 0, 0);
    assert_totals(l, INT64_MAX, INT64_MAX, 0, 0, 1, 14);
    assert_totals(l, INT64_MIN, INT64_MIN, 1, 15, 0, 0);
}

static void test_many_equal_timestamps(void **state)
{
    struct ledger *l = ledger_new(20000);
    assert_non_null(l);
    for (unsigned i = 0; i < 20000; i++) {
        assert_int_equal(ev_accept(l, i, 3, 1, 1, NULL), 0);
        assert_int_equal(ev_record(l, i, 0, 1000 + (i % 3 == 0), 3, NULL), 0);
    }
    assert_true(ledger_check(l));
    assert_totals(l, 1000, 1000, 13333, 39999, 0, 0);
    assert_totals(l, 1001, 1001, 6667, 20001, 0, 0);
    assert_totals(l, 999, 1001, 20000, 60000, 0, 0);
    ledger_free(l);
}

/* --- randomized model test ------------------------------------------------- */

static uint64_t seed = 20250715;
static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            print_error("seed %" PRIu64 " (TEST_SEED=%" PRIu64 " to replay), op %d: ", seed, seed, \
                        op);                                                                       \
            print_error(__VA_ARGS__);                                                              \
            print_error("\n");                                                                     \
            fail_msg("%s", #cond);                                                                 \
        }                                                                                          \
    } while (0)

#define MODEL_CAP 4096
#define MODEL_OPS 200000
#define MODEL_T0 1752582896000LL
#define MODEL_SPAN 1000 /* requestedAt drawn from [T0, T0 + SPAN): many collide */

struct mpay {
    uint8_t id[16];
    int64_t amount;
    int64_t accepted_ms;
    int64_t req_at;
    int state;
    int proc;
    int owner;
    int failed;
};

static struct mpay model[MODEL_CAP];
static int nmodel;

static void random_id(uint8_t id[16])
{
    uint64_t a = rnd(), b = rnd();
    memcpy(id, &a, 8);
    memcpy(id + 8, &b, 8);
}

static int64_t random_bound(void)
{
    uint64_t r = rnd() % 20;
    if (r == 0)
        return INT64_MIN;
    if (r == 1)
        return INT64_MAX;
    return MODEL_T0 - 5 + (int64_t)(rnd() % (MODEL_SPAN + 10));
}

static void model_compare(struct ledger *l, int op)
{
    CHECK(ledger_check(l), "ledger_check");
    CHECK(ledger_size(l) == (size_t)nmodel, "size %zu want %d", ledger_size(l), nmodel);
    size_t ns[3] = {0};
    for (int i = 0; i < nmodel; i++) {
        const struct mpay *m = &model[i];
        ns[m->state]++;
        struct payment *p = ledger_find(l, m->id);
        CHECK(p != NULL && p == ledger_at(l, (uint32_t)i), "find %d", i);
        CHECK(p->index == (uint32_t)i && p->amount_cents == m->amount &&
                  p->accepted_ms == m->accepted_ms && p->state == m->state &&
                  p->owner == m->owner && p->failed == m->failed,
              "fields of %d", i);
        if (m->state != LEDGER_ACCEPTED)
            CHECK(p->processor == m->proc && p->requested_at_ms == m->req_at, "attempt of %d", i);
    }
    for (int s = 0; s < 3; s++)
        CHECK(ledger_count_state(l, (enum ledger_state)s) == ns[s], "count_state %d", s);

    for (int w = 0; w < 20; w++) {
        int64_t from = random_bound(), to = random_bound();
        if (from > to && rnd() % 4 != 0) { /* keep a quarter of the from > to windows */
            int64_t t = from;
            from = to;
            to = t;
        }
        int64_t c[2] = {0, 0};
        ledger_cents_sum s[2] = {0, 0};
        if (from <= to) {
            for (int i = 0; i < nmodel; i++) {
                const struct mpay *m = &model[i];
                if (m->state == LEDGER_RECORDED && m->req_at >= from && m->req_at <= to) {
                    c[m->proc]++;
                    s[m->proc] += m->amount;
                }
            }
        }
        struct ledger_totals t;
        ledger_summary(l, from, to, &t);
        CHECK(t.count[0] == c[0] && t.cents[0] == s[0] && t.count[1] == c[1] && t.cents[1] == s[1],
              "summary [%" PRId64 ", %" PRId64 "]: got %" PRId64 "/%s %" PRId64 "/%s"
              " want %" PRId64 "/%s %" PRId64 "/%s",
              from, to, t.count[0], cents_str(t.cents[0], 0), t.count[1], cents_str(t.cents[1], 1),
              c[0], cents_str(s[0], 2), c[1], cents_str(s[1], 3));
    }
}

static void model_set_state(struct mpay *m, int s)
{
    m->state = s;
}

static void run_model(uint64_t s)
{
    seed = s;
    rng_state = s;
    nmodel = 0;
    struct ledger *l = ledger_new(MODEL_CAP);
    assert_non_null(l);
    int op = 0;
    int purges = 0, fulls = 0, recorded = 0;
    for (op = 0; op < MODEL_OPS; op++) {
        struct event ev;
        memset(&ev, 0, sizeof(ev));
        ev.origin = (uint8_t)(1 + rnd() % 2);
        ev.seq = (uint64_t)op + 1;
        ev.processor = (uint8_t)(rnd() % 2);
        ev.at_ms = MODEL_T0 + (int64_t)(rnd() % MODEL_SPAN);
        struct payment *out = NULL;
        int want;
        struct mpay *m = NULL;
        uint64_t r = rnd() % 100;
        if (rnd() % 20000 == 0) {
            ev.type = EVENT_PURGED;
            ev.epoch = (uint64_t)op;
            int rv = ledger_apply(l, &ev, &out);
            CHECK(rv == 0 && out == NULL, "purge rv %d", rv);
            nmodel = 0;
            purges++;
            model_compare(l, op);
            continue;
        }
        if (r < 30 || nmodel == 0) {
            ev.type = EVENT_ACCEPTED;
            random_id(ev.id);
            /* Now and then an amount near INT64_MAX (the ledger takes any
             * positive int64): sums then pass 2^63 and must stay exact. */
            uint64_t kind = rnd() % 50;
            ev.amount_cents = kind == 0   ? (int64_t)(rnd() % 1000000000000LL) + 1
                              : kind == 1 ? INT64_MAX - (int64_t)(rnd() % 1000)
                                          : 1 + (int64_t)(rnd() % 100000);
            if (nmodel == MODEL_CAP) {
                want = -ENOSPC;
                fulls++;
            } else {
                want = 0;
                m = &model[nmodel++];
                memcpy(m->id, ev.id, 16);
                m->amount = ev.amount_cents;
                m->accepted_ms = ev.at_ms;
                m->req_at = 0;
                m->state = LEDGER_ACCEPTED;
                m->proc = 0;
                m->owner = ev.origin;
                m->failed = 0;
            }
        } else if (r < 90) {
            m = &model[rnd() % (uint64_t)nmodel];
            memcpy(ev.id, m->id, 16);
            int bit = 1 << ev.processor;
            if (r < 35) {
                ev.type = EVENT_ACCEPTED;
                ev.amount_cents = 1 + (int64_t)(rnd() % 100);
                want = -EEXIST;
            } else if (r < 55) {
                ev.type = EVENT_SENDING;
                if (m->state == LEDGER_RECORDED) {
                    want = -EPROTO;
                } else {
                    want = 0;
                    model_set_state(m, LEDGER_SENDING);
                    m->proc = ev.processor;
                    m->req_at = ev.at_ms;
                    m->owner = ev.origin;
                    m->failed &= ~bit;
                }
            } else if (r < 78) {
                ev.type = EVENT_RECORDED;
                ev.amount_cents = rnd() % 30 == 0 ? m->amount + 1 : m->amount;
                if (ev.amount_cents != m->amount) {
                    want = -EINVAL;
                } else if (m->state == LEDGER_RECORDED) {
                    want = m->proc == ev.processor ? -EEXIST : -EPROTO;
                } else {
                    want = 0;
                    model_set_state(m, LEDGER_RECORDED);
                    m->proc = ev.processor;
                    m->req_at = ev.at_ms;
                    m->failed &= ~bit;
                    recorded++;
                }
            } else {
                ev.type = EVENT_FAILED;
                if (m->state == LEDGER_RECORDED) {
                    want = -EEXIST;
                } else {
                    want = 0;
                    m->failed |= bit;
                    if (m->state == LEDGER_SENDING && m->proc == ev.processor &&
                        m->owner == ev.origin)
                        model_set_state(m, LEDGER_ACCEPTED);
                }
            }
        } else if (r < 97) {
            /* unknown id */
            random_id(ev.id);
            ev.type = (enum event_type)(EVENT_SENDING + rnd() % 3);
            ev.amount_cents = 5;
            want = -ENOENT;
        } else {
            /* malformed */
            m = &model[rnd() % (uint64_t)nmodel];
            memcpy(ev.id, m->id, 16);
            uint64_t k = rnd() % 3;
            ev.type = k == 0 ? EVENT_NONE : (enum event_type)(EVENT_SENDING + rnd() % 3);
            if (k != 0)
                ev.processor = (uint8_t)(2 + rnd() % 250);
            ev.amount_cents = m->amount;
            want = -EINVAL;
            m = NULL;
        }
        int rv = ledger_apply(l, &ev, &out);
        CHECK(rv == want, "type %d: rv %d want %d", ev.type, rv, want);
        if (want == 0 || want == -EEXIST || want == -EPROTO ||
            (want == -EINVAL && ev.type == EVENT_RECORDED && ev.processor < 2))
            CHECK(m != NULL && out != NULL && out->index == (uint32_t)(m - model), "out");
        else
            CHECK(out == NULL, "out should be NULL");
        if (op % 300 == 0 || op == MODEL_OPS - 1)
            model_compare(l, op);
    }
    print_message("model seed %" PRIu64 ": %d ops, %d purges, %d full refusals, %d recorded\n", s,
                  MODEL_OPS, purges, fulls, recorded);
    assert_true(fulls > 0 && recorded > 1000);
    ledger_free(l);
}

static void test_model(void **state)
{
    const char *env = getenv("TEST_SEED");
    if (env != NULL && *env != '\0') {
        run_model(strtoull(env, NULL, 0));
        return;
    }
    run_model(20250715);
    run_model(4242);
}

/* Trace contexts: kept for traced ACCEPTEDs while a slot is free (else
 * counted), given back by RECORDED and PURGED, never by SENDING or FAILED;
 * nothing kept before ledger_traces_reserve(). */
static int ev_accept_traced(struct ledger *l, unsigned n, uint8_t mark, struct payment **out)
{
    struct event ev = {.type = EVENT_ACCEPTED,
                       .origin = 1,
                       .seq = 1,
                       .amount_cents = 10,
                       .at_ms = 1000,
                       .trace_flags = EVENT_TRACE_SAMPLED};
    make_id(ev.id, n);
    memset(ev.trace.trace_id, mark, sizeof(ev.trace.trace_id));
    memset(ev.trace.span_id, mark + 1, sizeof(ev.trace.span_id));
    return ledger_apply(l, &ev, out);
}

static void test_traces(void **state)
{
    struct ledger *l = ledger_new(16);
    assert_non_null(l);
    struct payment *p[5];
    uint8_t flags = 0;
    assert_int_equal(ev_accept_traced(l, 0, 0x10, &p[0]), 0); /* off: not kept, not counted */
    assert_null(ledger_trace(l, p[0], &flags));
    struct ledger_trace_stats st;
    ledger_trace_stats(l, &st);
    assert_true(st.slots == 0 && st.used == 0 && st.untracked == 0);

    assert_int_equal(ledger_traces_reserve(l, 2), 0);
    assert_int_equal(ev_accept_traced(l, 1, 0x20, &p[1]), 0);
    assert_int_equal(ev_accept(l, 2, 10, 1000, 1, &p[2]), 0); /* not sampled */
    assert_int_equal(ev_accept_traced(l, 3, 0x30, &p[3]), 0);
    assert_int_equal(ev_accept_traced(l, 4, 0x40, &p[4]), 0); /* no slot left */
    assert_null(ledger_trace(l, p[2], &flags));
    assert_null(ledger_trace(l, p[4], &flags));
    const struct event_trace *t = ledger_trace(l, p[1], &flags);
    assert_non_null(t);
    assert_int_equal(flags, EVENT_TRACE_SAMPLED);
    assert_int_equal(t->trace_id[0], 0x20);
    assert_int_equal(t->span_id[7], 0x21);
    ledger_trace_stats(l, &st);
    assert_true(st.slots == 2 && st.used == 2 && st.untracked == 1);
    assert_true(ledger_check(l));

    /* A repeat of a known id keeps the first context. */
    assert_int_equal(ev_accept_traced(l, 3, 0x77, NULL), -EEXIST);
    assert_int_equal(ledger_trace(l, p[3], &flags)->trace_id[0], 0x30);
    /* SENDING and FAILED keep it (the payment is still to be sent); RECORDED frees it. */
    assert_int_equal(ev_send(l, 1, 0, 2000, 2, NULL), 0);
    assert_int_equal(ev_fail(l, 1, 0, NULL), 0);
    assert_non_null(ledger_trace(l, p[1], &flags));
    assert_int_equal(ev_record(l, 1, 0, 2000, 10, NULL), 0);
    assert_null(ledger_trace(l, p[1], &flags));
    assert_true(ledger_check(l));
    struct payment *q;
    assert_int_equal(ev_accept_traced(l, 5, 0x50, &q), 0);
    assert_int_equal(ledger_trace(l, q, &flags)->trace_id[0], 0x50);
    ledger_trace_stats(l, &st);
    assert_true(st.used == 2 && st.untracked == 1);

    assert_int_equal(ev_purge(l), 0);
    ledger_trace_stats(l, &st);
    assert_int_equal(st.used, 0);
    assert_true(ledger_check(l));
    assert_int_equal(ev_accept_traced(l, 6, 0x60, &q), 0);
    assert_int_equal(ledger_trace(l, q, &flags)->trace_id[0], 0x60);
    assert_true(ledger_check(l));
    ledger_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_free),
        cmocka_unit_test_setup_teardown(test_accept_and_dedup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed, setup, teardown),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_sums_beyond_int64),
        cmocka_unit_test_setup_teardown(test_foreach_unrecorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_summary_edges, setup, teardown),
        cmocka_unit_test(test_many_equal_timestamps),
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_traces),
    };
    return cmocka_run_group_tests_name("ledger", tests, NULL, NULL);
}
