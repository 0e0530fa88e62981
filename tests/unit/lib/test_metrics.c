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
#include "promcheck.h"

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
        cmocka_unit_test(test_exact_text),
        cmocka_unit_test(test_label_values_escaped),
        cmocka_unit_test(test_appends),
        cmocka_unit_test(test_checker_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
