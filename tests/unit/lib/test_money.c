/* money: JSON-number text -> cents (table of good and bad inputs, exponent
 * overflow, grammar vs. domain errors) and cents -> text, including INT64 extremes. */
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

#include "lib/money.h"

struct parse_case {
    const char *text;
    int rv;
    int64_t cents; /* when rv == 0 */
};

static const struct parse_case cases[] = {
    /* good */
    {"19.90", 0, 1990},
    {"19.9", 0, 1990},
    {"19.900", 0, 1990},
    {"19.90000000000000000000000000000", 0, 1990},
    {"1.99e1", 0, 1990},
    {"1.99E1", 0, 1990},
    {"1.99e+1", 0, 1990},
    {"199e-1", 0, 1990},
    {"1990e-2", 0, 1990},
    {"19900e-3", 0, 1990},
    {"0.0199e3", 0, 1990},
    {"0.01", 0, 1},
    {"0.10", 0, 10},
    {"1", 0, 100},
    {"1.0", 0, 100},
    {"10", 0, 1000},
    {"100", 0, 10000},
    {"1e0", 0, 100},
    {"1e-2", 0, 1},
    {"1E-2", 0, 1},
    {"10e-3", 0, 1},
    {"1000000000000e-14", 0, 1},
    {"0.000000000000000000000000000000000001e34", 0, 1},
    {"1e12", 0, MONEY_MAX_CENTS},
    {"1000000000000", 0, MONEY_MAX_CENTS},
    {"1000000000000.00", 0, MONEY_MAX_CENTS},
    {"999999999999.99", 0, MONEY_MAX_CENTS - 1},
    {"99999999999999e-2", 0, MONEY_MAX_CENTS - 1},
    {"0.1e1", 0, 100},
    {"123456.78", 0, 12345678},
    /* grammar errors: -EINVAL */
    {"", -EINVAL, 0},
    {"-", -EINVAL, 0},
    {"+1", -EINVAL, 0},
    {"01", -EINVAL, 0},
    {"00.1", -EINVAL, 0},
    {"-01", -EINVAL, 0},
    {"1.", -EINVAL, 0},
    {".5", -EINVAL, 0},
    {"-.5", -EINVAL, 0},
    {"1e", -EINVAL, 0},
    {"1e+", -EINVAL, 0},
    {"1e-", -EINVAL, 0},
    {"1.e2", -EINVAL, 0},
    {"1..0", -EINVAL, 0},
    {"1.0.0", -EINVAL, 0},
    {"1,00", -EINVAL, 0},
    {" 1", -EINVAL, 0},
    {"1 ", -EINVAL, 0},
    {"1x", -EINVAL, 0},
    {"0x10", -EINVAL, 0},
    {"Infinity", -EINVAL, 0},
    {"NaN", -EINVAL, 0},
    {"\"1.00\"", -EINVAL, 0},
    {"1e2.5", -EINVAL, 0},
    {"1E+-2", -EINVAL, 0},
    {"--1", -EINVAL, 0},
    {"-1.0x", -EINVAL, 0},
    {"1_000", -EINVAL, 0},
    {"0e5e", -EINVAL, 0},
    /* valid numbers, invalid amounts: -EDOM */
    {"0", -EDOM, 0},
    {"0.0", -EDOM, 0},
    {"0.00", -EDOM, 0},
    {"0e10", -EDOM, 0},
    {"-0", -EDOM, 0},
    {"-0.0", -EDOM, 0},
    {"-1", -EDOM, 0},
    {"-19.90", -EDOM, 0},
    {"-1e400", -EDOM, 0},
    {"19.901", -EDOM, 0},
    {"0.001", -EDOM, 0},
    {"0.009", -EDOM, 0},
    {"1e-3", -EDOM, 0},
    {"1.5e-2", -EDOM, 0},
    {"1e400", -EDOM, 0},
    {"1e-400", -EDOM, 0},
    {"1e99999999999999999999999999", -EDOM, 0},
    {"1e-99999999999999999999999999", -EDOM, 0},
    {"1e12000000000000000000000001", -EDOM, 0},
    {"1000000000000.01", -EDOM, 0},
    {"1.00000000000001e12", -EDOM, 0},
    {"1e13", -EDOM, 0},
    {"9223372036854775807", -EDOM, 0},
    {"92233720368547758.07", -EDOM, 0},
    {"18446744073709551616", -EDOM, 0},
    {"99999999999999999999999999999999999999", -EDOM, 0},
    {"0.0000000000000000000000000000000000001", -EDOM, 0},
    {"100000000000000000000e-9", 0, INT64_C(10000000000000)},
    {"100000000000000000000e-7", -EDOM, 0},
    {"1234567890123456e-4", -EDOM, 0},
};

static void test_parse_table(void **state)
{
    (void)state;
    size_t n = sizeof(cases) / sizeof(cases[0]);
    assert_true(n >= 40);
    for (size_t i = 0; i < n; i++) {
        int64_t cents = -12345;
        int rv = money_parse_cents(cases[i].text, strlen(cases[i].text), &cents);
        if (rv != cases[i].rv)
            fail_msg("case %zu \"%s\": got rv %d want %d", i, cases[i].text, rv, cases[i].rv);
        if (rv == 0 && cents != cases[i].cents)
            fail_msg("case %zu \"%s\": got %" PRId64 " want %" PRId64, i, cases[i].text, cents,
                     cases[i].cents);
        if (rv != 0 && cents != -12345)
            fail_msg("case %zu \"%s\": output written on error", i, cases[i].text);
    }
}

static void test_len_is_respected(void **state)
{
    (void)state;
    int64_t c = 0;
    /* Only the first len bytes count; the rest of the buffer is someone else's. */
    assert_int_equal(money_parse_cents("19.90,\"x\":1", 5, &c), 0);
    assert_int_equal(c, 1990);
    assert_int_equal(money_parse_cents("19.901", 5, &c), 0);
    assert_int_equal(c, 1990);
    assert_int_equal(money_parse_cents("1e5", 2, &c), -EINVAL);
    assert_int_equal(money_parse_cents("5", 0, &c), -EINVAL);
    assert_int_equal(money_parse_cents(NULL, 0, &c), -EINVAL);
    assert_int_equal(money_parse_cents("1\0002", 3, &c), -EINVAL);
}

/* Every whole number of cents in a range parses back from its formatted text,
 * and from equivalent spellings with exponents and trailing zeros. */
static void test_format_parse_round_trip(void **state)
{
    (void)state;
    srand(777);
    for (int n = 0; n < 20000; n++) {
        int64_t cents;
        if (n < 1000)
            cents = n + 1;
        else
            cents = 1 + (((int64_t)rand() << 31) ^ rand()) % MONEY_MAX_CENTS;
        char buf[MONEY_FMT_MAX];
        size_t len = money_format(cents, buf);
        assert_int_equal(len, strlen(buf));
        int64_t back = 0;
        assert_int_equal(money_parse_cents(buf, len, &back), 0);
        assert_true(back == cents);

        /* cents as an integer with exponent -2, plus trailing zeros, plus e+0 */
        char alt[64];
        snprintf(alt, sizeof(alt), "%" PRId64 "e-2", cents);
        assert_int_equal(money_parse_cents(alt, strlen(alt), &back), 0);
        assert_true(back == cents);
        snprintf(alt, sizeof(alt), "%s000E+0", buf);
        assert_int_equal(money_parse_cents(alt, strlen(alt), &back), 0);
        assert_true(back == cents);
        /* one more significant digit below the cent is never exact */
        snprintf(alt, sizeof(alt), "%s1", buf);
        assert_int_equal(money_parse_cents(alt, strlen(alt), &back), -EDOM);
    }
}

struct fmt_case {
    int64_t cents;
    const char *text;
};

static const struct fmt_case fmt_cases[] = {
    {0, "0.00"},
    {1, "0.01"},
    {10, "0.10"},
    {99, "0.99"},
    {100, "1.00"},
    {1990, "19.90"},
    {-1, "-0.01"},
    {-305, "-3.05"},
    {-100, "-1.00"},
    {MONEY_MAX_CENTS, "1000000000000.00"},
    {INT64_C(41554234598), "415542345.98"},
    {INT64_MAX, "92233720368547758.07"},
    {INT64_MIN, "-92233720368547758.08"},
    {INT64_MIN + 1, "-92233720368547758.07"},
};

static void test_format_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(fmt_cases) / sizeof(fmt_cases[0]); i++) {
        char buf[MONEY_FMT_MAX];
        memset(buf, 'x', sizeof(buf));
        size_t n = money_format(fmt_cases[i].cents, buf);
        assert_string_equal(buf, fmt_cases[i].text);
        assert_int_equal(n, strlen(fmt_cases[i].text));
        assert_true(n < MONEY_FMT_MAX);
    }
}

static void test_format_matches_printf(void **state)
{
    (void)state;
    srand(99);
    for (int n = 0; n < 20000; n++) {
        int64_t v = (int64_t)(((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^ rand());
        if (n & 1)
            v = -v;
        if (n % 3 == 0)
            v %= 100000;
        char buf[MONEY_FMT_MAX], want[64];
        money_format(v, buf);
        uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
        snprintf(want, sizeof(want), "%s%" PRIu64 ".%02" PRIu64, v < 0 ? "-" : "", mag / 100,
                 mag % 100);
        assert_string_equal(buf, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_len_is_respected),
        cmocka_unit_test(test_format_parse_round_trip),
        cmocka_unit_test(test_format_table),
        cmocka_unit_test(test_format_matches_printf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
