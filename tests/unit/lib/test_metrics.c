/* metrics: exact text for a few families (HELP/TYPE once per family, labels,
 * escaping, signed values), the output accepted by a strict exposition-format
 * checker (tests/support/promcheck), and the checker itself rejecting broken
 * texts so that its verdict means something. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/metrics.h"
#include "lib/hist.h"
#include "promcheck.h"
#include "promtool.h"

static void assert_valid(const char *text, size_t len)
{
    char why[160];
    if (promcheck(text, len, why, sizeof(why)) != 0)
        fail_msg("not valid exposition text: %s\n%.*s", why, (int)len, text);
}

/* b holds exactly want, which is valid exposition text. */
static void assert_text(const struct buf *b, const char *want)
{
    assert_int_equal(b->len, strlen(want));
    assert_memory_equal(b->ptr, want, b->len);
    assert_valid(b->ptr, b->len);
}

static void test_exact_text(void **state)
{
    char fixed[64]; /* small: the writer must grow the buffer */
    struct buf b;
    buf_init(&b, fixed, sizeof(fixed));
    struct metrics m;
    metrics_init(&m, &b);
    metrics_u64(&m, "app_requests_total", "Requests served.", METRICS_COUNTER, NULL, 42);
    metrics_u64(&m, "app_results_total", "Results by kind.", METRICS_COUNTER,
                (const char *[]){"result", "ok", NULL}, 7);
    metrics_u64(&m, "app_results_total", "Results by kind.", METRICS_COUNTER,
                (const char *[]){"result", "bad", NULL}, 0);
    metrics_i64(&m, "app_skew_ms", "Clock skew.", METRICS_GAUGE,
                (const char *[]){"peer", "a", "dir", "in", NULL}, -15);
    metrics_u64(&m, "app_max", "Largest value.", METRICS_GAUGE, NULL, UINT64_MAX);
    assert_int_equal(metrics_error(&m), 0);
    const char *want = "# HELP app_requests_total Requests served.\n"
                       "# TYPE app_requests_total counter\n"
                       "app_requests_total 42\n"
                       "# HELP app_results_total Results by kind.\n"
                       "# TYPE app_results_total counter\n"
                       "app_results_total{result=\"ok\"} 7\n"
                       "app_results_total{result=\"bad\"} 0\n"
                       "# HELP app_skew_ms Clock skew.\n"
                       "# TYPE app_skew_ms gauge\n"
                       "app_skew_ms{peer=\"a\",dir=\"in\"} -15\n"
                       "# HELP app_max Largest value.\n"
                       "# TYPE app_max gauge\n"
                       "app_max 18446744073709551615\n";
    assert_text(&b, want);
    buf_reset(&b);
}

static void test_label_values_escaped(void **state)
{
    struct buf b;
    buf_init(&b, NULL, 0);
    struct metrics m;
    metrics_init(&m, &b);
    metrics_u64(&m, "x", "X.", METRICS_GAUGE, (const char *[]){"path", "a\"b\\c\nd", NULL}, 1);
    metrics_u64(&m, "x", "X.", METRICS_GAUGE, (const char *[]){"path", "", NULL}, 2);
    const char *want = "# HELP x X.\n# TYPE x gauge\n"
                       "x{path=\"a\\\"b\\\\c\\nd\"} 1\n"
                       "x{path=\"\"} 2\n";
    assert_text(&b, want);
    buf_reset(&b);
}

/* Appending after text already in the buffer (another module's lines). */
static void test_appends(void **state)
{
    struct buf b;
    buf_init(&b, NULL, 0);
    assert_int_equal(buf_append(&b, "# TYPE a gauge\na 1\n", 19), 0);
    struct metrics m;
    metrics_init(&m, &b);
    metrics_u64(&m, "b", "B.", METRICS_GAUGE, NULL, 2);
    assert_valid(b.ptr, b.len);
    assert_memory_equal(b.ptr, "# TYPE a gauge\na 1\n# HELP b B.\n", 31);
    buf_reset(&b);
}

/* Accepted by Prometheus's own parser and linter. */
static void assert_promtool(const char *text, size_t len)
{
    char why[2048];
    if (promtool_check(text, len, why, sizeof(why)) != 0)
        fail_msg("promtool check metrics refused it: %s\n%.*s", why, (int)len, text);
}

/* The histogram text, exact: cumulative buckets with le last, +Inf, _sum and
 * _count; two series of one family under one HELP/TYPE; then promtool. */
static void test_histogram(void **state)
{
    struct buf b;
    buf_init(&b, NULL, 0);
    struct metrics m;
    metrics_init(&m, &b);
    static const double bounds[] = {0.00005, 0.001, 2.5};
    const uint64_t a[] = {1, 0, 3, 2}, z[] = {0, 0, 0, 0};
    metrics_u64(&m, "app_requests_total", "Requests.", METRICS_COUNTER, NULL, 6);
    metrics_histogram(&m, "app_latency_seconds", "Latency.", (const char *[]){"p", "a", NULL},
                      bounds, 3, a, 12.25);
    metrics_histogram(&m, "app_latency_seconds", "Latency.", (const char *[]){"p", "b", NULL},
                      bounds, 3, z, 0);
    metrics_histogram(&m, "app_other_seconds", "Other.", NULL, bounds, 3, a, 0.000001);
    assert_int_equal(metrics_error(&m), 0);
    const char *want = "# HELP app_requests_total Requests.\n"
                       "# TYPE app_requests_total counter\n"
                       "app_requests_total 6\n"
                       "# HELP app_latency_seconds Latency.\n"
                       "# TYPE app_latency_seconds histogram\n"
                       "app_latency_seconds_bucket{p=\"a\",le=\"0.00005\"} 1\n"
                       "app_latency_seconds_bucket{p=\"a\",le=\"0.001\"} 1\n"
                       "app_latency_seconds_bucket{p=\"a\",le=\"2.5\"} 4\n"
                       "app_latency_seconds_bucket{p=\"a\",le=\"+Inf\"} 6\n"
                       "app_latency_seconds_sum{p=\"a\"} 12.25\n"
                       "app_latency_seconds_count{p=\"a\"} 6\n"
                       "app_latency_seconds_bucket{p=\"b\",le=\"0.00005\"} 0\n"
                       "app_latency_seconds_bucket{p=\"b\",le=\"0.001\"} 0\n"
                       "app_latency_seconds_bucket{p=\"b\",le=\"2.5\"} 0\n"
                       "app_latency_seconds_bucket{p=\"b\",le=\"+Inf\"} 0\n"
                       "app_latency_seconds_sum{p=\"b\"} 0\n"
                       "app_latency_seconds_count{p=\"b\"} 0\n"
                       "# HELP app_other_seconds Other.\n"
                       "# TYPE app_other_seconds histogram\n"
                       "app_other_seconds_bucket{le=\"0.00005\"} 1\n"
                       "app_other_seconds_bucket{le=\"0.001\"} 1\n"
                       "app_other_seconds_bucket{le=\"2.5\"} 4\n"
                       "app_other_seconds_bucket{le=\"+Inf\"} 6\n"
                       "app_other_seconds_sum 0.000001\n"
                       "app_other_seconds_count 6\n";
    assert_text(&b, want);
    assert_promtool(b.ptr, b.len);
    buf_reset(&b);
}

/* lib/hist: a value on a bound counts in that bound's bucket; the bounds are
 * the 1-2-5 series 0.05 ms .. 10 s; written through metrics_histogram(), the
 * text passes promtool. */
static void test_hist_accumulator(void **state)
{
    struct hist h;
    hist_init(&h);
    assert_int_equal(hist_bound_ns(0), 50000);
    assert_int_equal(hist_bound_ns(HIST_NBOUNDS - 1), 10000000000ULL);
    for (unsigned i = 0; i < HIST_NBOUNDS; i++)
        assert_true(hist_bounds_s()[i] * 1e9 > (double)hist_bound_ns(i) - 1 &&
                    hist_bounds_s()[i] * 1e9 < (double)hist_bound_ns(i) + 1);
    hist_add_ns(&h, 0);              /* bucket 0 */
    hist_add_ns(&h, 50000);          /* on the bound: bucket 0 */
    hist_add_ns(&h, 50001);          /* bucket 1 (0.1 ms) */
    hist_add_ns(&h, 1500000);        /* 1.5 ms: bucket 5 (2 ms) */
    hist_add_ns(&h, 20000000000ULL); /* 20 s: +Inf */
    assert_int_equal(h.count, 5);
    assert_int_equal(h.bucket[0], 2);
    assert_int_equal(h.bucket[1], 1);
    assert_int_equal(h.bucket[5], 1);
    assert_int_equal(h.bucket[HIST_NBOUNDS], 1);
    assert_int_equal(h.sum_ns, 50000 + 50001 + 1500000 + 20000000000ULL);
    assert_true(hist_sum_s(&h) > 20.0016 && hist_sum_s(&h) < 20.0017);

    struct buf b;
    buf_init(&b, NULL, 0);
    struct metrics m;
    metrics_init(&m, &b);
    metrics_histogram(&m, "app_post_seconds", "POST latency.", NULL, hist_bounds_s(), HIST_NBOUNDS,
                      h.bucket, hist_sum_s(&h));
    assert_int_equal(metrics_error(&m), 0);
    assert_valid(b.ptr, b.len);
    assert_promtool(b.ptr, b.len);
    assert_non_null(strstr(b.ptr, "app_post_seconds_bucket{le=\"0.00005\"} 2\n"));
    assert_non_null(strstr(b.ptr, "app_post_seconds_bucket{le=\"0.002\"} 4\n"));
    assert_non_null(strstr(b.ptr, "app_post_seconds_bucket{le=\"10\"} 4\n"));
    assert_non_null(strstr(b.ptr, "app_post_seconds_bucket{le=\"+Inf\"} 5\n"));
    assert_non_null(strstr(b.ptr, "app_post_seconds_count 5\n"));
    buf_reset(&b);
}

/* promtool itself refuses broken text (so its verdict above means something). */
static void test_promtool_rejects(void **state)
{
    char why[512];
    const char *bad = "# HELP a A.\n# TYPE a histogram\na_bucket{le=\"1\" 1\n";
    assert_int_not_equal(promtool_check(bad, strlen(bad), why, sizeof(why)), 0);
    const char *lint = "# TYPE a counter\na 1\n"; /* no _total, no HELP */
    assert_int_not_equal(promtool_check(lint, strlen(lint), why, sizeof(why)), 0);
}

struct bad_case {
    const char *text;
    const char *why; /* a word of the reason */
};

static void test_checker_rejects(void **state)
{
    static const struct bad_case bad[] = {
        {"a 1", "line feed"},
        {"a 1\n\nb 2\n", "empty"},
        {"# TYPE a gauge\n# TYPE a gauge\na 1\n", "second"},
        {"# HELP a x\n# HELP a y\na 1\n", "second"},
        {"a 1\n# TYPE a gauge\n", "after"},
        {"# TYPE a sometimes\na 1\n", "unknown type"},
        {"a 1\nb 2\na 3\n", "together"},
        {"a 1\na 2\n", "twice"},
        {"a{x=\"1\"} 1\na{x=\"1\"} 2\n", "twice"},
        {"1a 1\n", "metric name"},
        {"a-b 1\n", "space"},
        {"a{x=1} 1\n", "=\""},
        {"a{x=\"1} 1\n", "unterminated"},
        {"a{x=\"\\t\"} 1\n", "escape"},
        {"a{x=\"1\" y=\"2\"} 1\n", "','"},
        {"a{:x=\"1\"} 1\n", "label name"},
        {"a\n", "space"},
        {"a one\n", "not a number"},
        {"a 0x10\n", "not a number"},
        {"a inf\n", "not a number"},
        {"a  1\n", "value"},
        {"a 1 \n", "trailing"},
        {"a 1 12z\n", "timestamp"},
        {"# TYPE h histogram\nh 1\n", "without _bucket"},
        {"# TYPE h histogram\nh_bucket{x=\"1\"} 1\n", "le label"},
        {"# TYPE h histogram\nh_count 1\nb 1\nh_sum 1\n", "together"},
    };
    char why[160];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rv = promcheck(bad[i].text, strlen(bad[i].text), why, sizeof(why));
        if (rv == 0)
            fail_msg("accepted: %s", bad[i].text);
        if (!strstr(why, bad[i].why))
            fail_msg("'%s': reason '%s' lacks '%s'", bad[i].text, why, bad[i].why);
    }
    static const char *const good[] = {
        "a 1\n",
        "# some comment\na 1.5e3\n",
        "a{x=\"\\\\\\\"\\n\"} -2 1700000000000\n",
        "a +Inf\nb NaN\nc -Inf\n",
        "",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_valid(good[i], strlen(good[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_text),       cmocka_unit_test(test_label_values_escaped),
        cmocka_unit_test(test_appends),          cmocka_unit_test(test_checker_rejects),
        cmocka_unit_test(test_histogram),        cmocka_unit_test(test_hist_accumulator),
        cmocka_unit_test(test_promtool_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
