/* clock: strict ISO-8601 UTC parsing (table), bound rounding of sub-nanosecond
 * digits, formatting checked against gmtime_r and a naive day count, and round trips. */
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
#include <time.h>

#include "lib/clock.h"

#define NS INT64_C(1000000000)

/* Naive reference: count days year by year and month by month. */
static int ref_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int64_t ref_ns(int y, int mo, int d, int h, int mi, int s, int64_t frac_ns)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t days = 0;
    for (int yy = 1970; yy < y; yy++)
        days += 365 + ref_leap(yy);
    for (int m = 1; m < mo; m++)
        days += dm[m - 1] + (m == 2 && ref_leap(y));
    days += d - 1;
    return ((days * 24 + h) * 60 + mi) * 60 * NS + (int64_t)s * NS + frac_ns;
}

struct parse_case {
    const char *text;
    int rv;
    int64_t down; /* round_up = 0 */
    int64_t up;   /* round_up = 1 */
};

#define T0 INT64_C(1752582896) /* 2025-07-15T12:34:56Z */

static const struct parse_case cases[] = {
    {"1970-01-01T00:00:00Z", 0, 0, 0},
    {"1970-01-01T00:00:00.000Z", 0, 0, 0},
    {"1970-01-01T00:00:00+00:00", 0, 0, 0},
    {"1970-01-01T00:00:01Z", 0, NS, NS},
    {"2025-07-15T12:34:56Z", 0, T0 *NS, T0 *NS},
    {"2025-07-15T12:34:56.000Z", 0, T0 *NS, T0 *NS},
    {"2025-07-15T12:34:56.5Z", 0, T0 *NS + 500000000, T0 *NS + 500000000},
    {"2025-07-15T12:34:56.123Z", 0, T0 *NS + 123000000, T0 *NS + 123000000},
    {"2025-07-15T12:34:56.123456Z", 0, T0 *NS + 123456000, T0 *NS + 123456000},
    {"2025-07-15T12:34:56.123456789Z", 0, T0 *NS + 123456789, T0 *NS + 123456789},
    {"2025-07-15T12:34:56.1234567890Z", 0, T0 *NS + 123456789, T0 *NS + 123456789},
    {"2025-07-15T12:34:56.1234567891Z", 0, T0 *NS + 123456789, T0 *NS + 123456790},
    {"2025-07-15T12:34:56.123456789000000000001Z", 0, T0 *NS + 123456789, T0 *NS + 123456790},
    {"2025-07-15T12:34:56.999999999Z", 0, T0 *NS + 999999999, T0 *NS + 999999999},
    {"2025-07-15T12:34:56.9999999999Z", 0, T0 *NS + 999999999, (T0 + 1) * NS},
    {"2025-07-15T12:34:56.000000000000Z", 0, T0 *NS, T0 *NS},
    {"2025-07-15T12:34:56.0000000001Z", 0, T0 *NS, T0 *NS + 1},
    {"2025-07-15T12:34:56.123+00:00", 0, T0 *NS + 123000000, T0 *NS + 123000000},
    {"2000-02-29T00:00:00Z", 0, INT64_C(951782400) * NS, INT64_C(951782400) * NS},
    {"2024-02-29T23:59:59Z", 0, INT64_C(1709251199) * NS, INT64_C(1709251199) * NS},
    {"1999-12-31T23:59:59.999Z", 0, INT64_C(946684799) * NS + 999000000,
     INT64_C(946684799) * NS + 999000000},
    {"2038-01-19T03:14:08Z", 0, INT64_C(2147483648) * NS, INT64_C(2147483648) * NS},
    {"2200-12-31T23:59:59.999999999Z", 0, INT64_C(7289654399) * NS + 999999999,
     INT64_C(7289654399) * NS + 999999999},
    {"2200-12-31T23:59:59.9999999999Z", 0, INT64_C(7289654399) * NS + 999999999,
     INT64_C(7289654400) * NS},
    /* invalid */
    {"", -EINVAL, 0, 0},
    {"2025-07-15", -EINVAL, 0, 0},
    {"2025-07-15T12:34:56", -EINVAL, 0, 0},
    {"2025-07-15T12:34Z", -EINVAL, 0, 0},
    {"2025-07-15 12:34:56Z", -EINVAL, 0, 0},
    {"2025-07-15t12:34:56Z", -EINVAL, 0, 0},
    {"2025-07-15T12:34:56z", -EINVAL, 0, 0},
    {"2025-07-15T12:34:56.Z", -EINVAL, 0, 0},
    {"2025-07-15T12:34:56.", -EINVAL, 0, 0},
    {"2025-07-15T12:34:56,123Z", -EINVAL, 0, 0},
    {"2025-07-15T12:34:56.12aZ", -EINVAL, 0, 0},
    {"2025-07-15T12:34:56ZZ", -EINVAL, 0, 0},
    {"2025-07-15T12:34:56Z ", -EINVAL, 0, 0},
    {" 2025-07-15T12:34:56Z", -EINVAL, 0, 0},
    {"2025-07-15T12:34:56+01:00", -EINVAL, 0, 0},
    {"2025-07-15T12:34:56-00:00", -EINVAL, 0, 0},
    {"2025-07-15T12:34:56+0000", -EINVAL, 0, 0},
    {"2025-07-15T12:34:56+00:00Z", -EINVAL, 0, 0},
    {"2025-07-15T12:34:56+00:0", -EINVAL, 0, 0},
    {"2025-07-15T12:34:56.123+00:00:00", -EINVAL, 0, 0},
    {"2025-7-15T12:34:56Z", -EINVAL, 0, 0},
    {"2025-07-5T12:34:56Z", -EINVAL, 0, 0},
    {"25-07-15T12:34:56Z", -EINVAL, 0, 0},
    {"+2025-07-15T12:34:56Z", -EINVAL, 0, 0},
    {"20250715T123456Z", -EINVAL, 0, 0},
    {"2025/07/15T12:34:56Z", -EINVAL, 0, 0},
    {"2025-07-15T12-34-56Z", -EINVAL, 0, 0},
    {"2025-00-15T12:34:56Z", -EINVAL, 0, 0},
    {"2025-13-15T12:34:56Z", -EINVAL, 0, 0},
    {"2025-07-00T12:34:56Z", -EINVAL, 0, 0},
    {"2025-07-32T12:34:56Z", -EINVAL, 0, 0},
    {"2025-04-31T12:34:56Z", -EINVAL, 0, 0},
    {"2025-02-29T12:34:56Z", -EINVAL, 0, 0},
    {"1900-02-29T12:34:56Z", -EINVAL, 0, 0},
    {"2100-02-29T00:00:00Z", -EINVAL, 0, 0},
    {"2024-02-30T00:00:00Z", -EINVAL, 0, 0},
    {"2025-07-15T24:00:00Z", -EINVAL, 0, 0},
    {"2025-07-15T12:60:56Z", -EINVAL, 0, 0},
    {"2025-07-15T12:34:60Z", -EINVAL, 0, 0},
    {"2016-12-31T23:59:60Z", -EINVAL, 0, 0},
    {"1969-12-31T23:59:59Z", -EINVAL, 0, 0},
    {"2201-01-01T00:00:00Z", -EINVAL, 0, 0},
    {"9999-12-31T23:59:59Z", -EINVAL, 0, 0},
    {"0000-01-01T00:00:00Z", -EINVAL, 0, 0},
    {"2025-07-15T12:34:56.123456789", -EINVAL, 0, 0},
    {"2025-07-15T12:34:5Z", -EINVAL, 0, 0},
    {"2025-07-15T1:34:56Z", -EINVAL, 0, 0},
    {"2025-07-15T12:34:56.-1Z", -EINVAL, 0, 0},
    {"2025-07-15T12:34:56.1 Z", -EINVAL, 0, 0},
};

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct parse_case *c = &cases[i];
        for (int up = 0; up <= 1; up++) {
            int64_t ns = -42;
            int rv = clock_parse_iso(c->text, strlen(c->text), up, &ns);
            if (rv != c->rv)
                fail_msg("case %zu \"%s\" up=%d: rv %d want %d", i, c->text, up, rv, c->rv);
            int64_t want = up ? c->up : c->down;
            if (rv == 0 && ns != want)
                fail_msg("case %zu \"%s\" up=%d: %" PRId64 " want %" PRId64, i, c->text, up, ns,
                         want);
            if (rv != 0 && ns != -42)
                fail_msg("case %zu: output written on error", i);
        }
    }
}

static void test_parse_len_not_nul(void **state)
{
    (void)state;
    int64_t ns;
    const char *s = "2025-07-15T12:34:56.123Z&to=2025";
    assert_int_equal(clock_parse_iso(s, 24, 0, &ns), 0);
    assert_true(ns == T0 * NS + 123000000);
    assert_int_equal(clock_parse_iso(s, 23, 0, &ns), -EINVAL);
    assert_int_equal(clock_parse_iso(s, 25, 0, &ns), -EINVAL);
    assert_int_equal(clock_parse_iso(NULL, 0, 0, &ns), -EINVAL);
    /* An embedded NUL is just an invalid byte. */
    assert_int_equal(clock_parse_iso("2025-07-15T12:34:56\0Z", 21, 0, &ns), -EINVAL);
}

/* Every day from 1970 to 2200 at a varying time of day, against the naive count. */
static void test_parse_every_day(void **state)
{
    (void)state;
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int n = 0;
    for (int y = 1970; y <= 2200; y++) {
        for (int mo = 1; mo <= 12; mo++) {
            int nd = dm[mo - 1] + (mo == 2 && ref_leap(y));
            for (int d = 1; d <= nd + 1; d++) {
                int h = n % 24, mi = (n * 7) % 60, s = (n * 13) % 60, ms = (n * 37) % 1000;
                n++;
                char buf[64];
                snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, mo, d, h, mi,
                         s, ms);
                int64_t ns = 0;
                int rv = clock_parse_iso(buf, strlen(buf), n & 1, &ns);
                if (d > nd) {
                    if (rv != -EINVAL)
                        fail_msg("%s accepted", buf);
                    continue;
                }
                if (rv != 0)
                    fail_msg("%s rejected", buf);
                int64_t want = ref_ns(y, mo, d, h, mi, s, (int64_t)ms * 1000000);
                if (ns != want)
                    fail_msg("%s: %" PRId64 " want %" PRId64, buf, ns, want);
            }
        }
    }
}

static void test_format_table(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *text;
    } f[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {1, "1970-01-01T00:00:00.001Z"},
        {999, "1970-01-01T00:00:00.999Z"},
        {T0 * 1000 + 7, "2025-07-15T12:34:56.007Z"},
        {INT64_C(951782400000), "2000-02-29T00:00:00.000Z"},
        {INT64_C(7289654399999), "2200-12-31T23:59:59.999Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {INT64_C(253402300799999), "9999-12-31T23:59:59.999Z"},
        {INT64_MAX, "9999-12-31T23:59:59.999Z"}, /* clamped */
        {INT64_MIN, "0000-01-01T00:00:00.000Z"}, /* clamped */
    };
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        char buf[CLOCK_ISO_LEN + 1];
        assert_int_equal(clock_format_iso_ms(f[i].ms, buf), CLOCK_ISO_LEN);
        assert_string_equal(buf, f[i].text);
    }
}

/* Random ms values: the formatted text matches gmtime_r, and parses back to
 * exactly ms * 1e6 ns with either rounding. */
static void test_round_trip_random(void **state)
{
    (void)state;
    srand(2025);
    const int64_t max_ms = INT64_C(7289654399999);
    for (int n = 0; n < 50000; n++) {
        int64_t ms = (((int64_t)rand() << 31) ^ rand()) % (max_ms + 1);
        char buf[CLOCK_ISO_LEN + 1];
        assert_int_equal(clock_format_iso_ms(ms, buf), CLOCK_ISO_LEN);
        assert_int_equal(strlen(buf), CLOCK_ISO_LEN);

        time_t secs = (time_t)(ms / 1000);
        struct tm tm;
        assert_non_null(gmtime_r(&secs, &tm));
        char want[64];
        snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
        assert_string_equal(buf, want);

        int64_t ns = 0;
        assert_int_equal(clock_parse_iso(buf, CLOCK_ISO_LEN, 0, &ns), 0);
        assert_true(ns == ms * 1000000);
        assert_int_equal(clock_parse_iso(buf, CLOCK_ISO_LEN, 1, &ns), 0);
        assert_true(ns == ms * 1000000);
        assert_int_equal(ref_ns(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                                tm.tm_sec, (ms % 1000) * 1000000),
                         ns);
    }
}

/* Bound semantics: for a stored time t (ns) and a bound written with more
 * digits than nanoseconds, from = parse(round_up=1), to = parse(round_up=0)
 * keep "from <= t <= to" exactly equivalent to the real-number comparison. */
static void test_bound_semantics(void **state)
{
    (void)state;
    int64_t t = T0 * NS + 123456789;
    int64_t lo, hi;
    /* 56.1234567885 < t < 56.1234567895 */
    assert_int_equal(clock_parse_iso("2025-07-15T12:34:56.1234567885Z", 31, 1, &lo), 0);
    assert_int_equal(clock_parse_iso("2025-07-15T12:34:56.1234567895Z", 31, 0, &hi), 0);
    assert_true(lo <= t && t <= hi);
    /* 56.1234567891 > t: as a lower bound it must exclude t */
    assert_int_equal(clock_parse_iso("2025-07-15T12:34:56.1234567891Z", 31, 1, &lo), 0);
    assert_false(lo <= t);
    /* 56.1234567889 < t: as an upper bound it must exclude t */
    assert_int_equal(clock_parse_iso("2025-07-15T12:34:56.1234567889Z", 31, 0, &hi), 0);
    assert_false(t <= hi);
    /* exactly t with trailing zeros: included on both sides */
    assert_int_equal(clock_parse_iso("2025-07-15T12:34:56.123456789000Z", 33, 1, &lo), 0);
    assert_int_equal(clock_parse_iso("2025-07-15T12:34:56.123456789000Z", 33, 0, &hi), 0);
    assert_true(lo == t && hi == t);
}

static void test_wall_ms(void **state)
{
    (void)state;
    int64_t a = clock_wall_ms();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t b = clock_wall_ms();
    int64_t mid = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    assert_true(a <= mid && mid <= b);
    assert_true(a > INT64_C(1577836800000)); /* after 2020 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),       cmocka_unit_test(test_parse_len_not_nul),
        cmocka_unit_test(test_parse_every_day),   cmocka_unit_test(test_format_table),
        cmocka_unit_test(test_round_trip_random), cmocka_unit_test(test_bound_semantics),
        cmocka_unit_test(test_wall_ms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
