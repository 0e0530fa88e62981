/* Load generator score arithmetic against hand-computed cases, and the exact
 * decimal parse/format it relies on. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ops/loadgen/score.h"

static __int128 D(const char *s)
{
    __int128 v = 0;
    assert_int_equal(lg_dec_parse(s, strlen(s), &v), 0);
    return v;
}

static void assert_dec(__int128 v, const char *want)
{
    char buf[LG_DEC_FMT_MAX];
    lg_dec_format(v, 2, buf);
    assert_string_equal(buf, want);
}

static void test_dec_parse(void **state)
{
    (void)state;
    assert_true(D("19.9") == 1990 * LG_DEC_CENT);
    assert_true(D("19.90") == 1990 * LG_DEC_CENT);
    assert_true(D("1.99e1") == 1990 * LG_DEC_CENT);
    assert_true(D("1990E-2") == 1990 * LG_DEC_CENT);
    assert_true(D("0") == 0);
    assert_true(D("-0") == 0);
    assert_true(D("-3.05") == -305 * LG_DEC_CENT);
    assert_true(D("0.00000000000001") == 1);
    assert_true(D("1e-14") == 1);
    assert_true(D("1.000000000000000000000") == LG_DEC_ONE); /* trailing zeros beyond 14 */
    __int128 v;
    assert_int_equal(lg_dec_parse("1e-15", 5, &v), -EDOM);
    assert_int_equal(lg_dec_parse("0.000000000000001", 17, &v), -EDOM);
    assert_int_equal(lg_dec_parse("1e20", 4, &v), -EDOM);
    static const char *const bad[] = {"",    "-",  "01", "1.",   ".5",    "1e", "1e+",
                                      "abc", "1 ", "+1", "0x10", "1.2.3", "--1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(lg_dec_parse(bad[i], strlen(bad[i]), &v), -EINVAL);
}

static void test_dec_format(void **state)
{
    (void)state;
    char buf[LG_DEC_FMT_MAX];
    assert_dec(0, "0.00");
    assert_dec(1990 * LG_DEC_CENT, "19.90");
    assert_dec(-305 * LG_DEC_CENT, "-3.05");
    assert_dec(D("17507.025"), "17507.025");
    assert_dec(1, "0.00000000000001");
    lg_dec_format(4 * LG_DEC_ONE, 0, buf);
    assert_string_equal(buf, "4");
    lg_dec_format(D("3.999"), 0, buf);
    assert_string_equal(buf, "3.999");
    lg_dec_format(D("123456789012345.5"), 2, buf);
    assert_string_equal(buf, "123456789012345.50");
}

static void test_dec_mul(void **state)
{
    (void)state;
    /* 0.07 x 20.05 = 1.4035 exactly */
    assert_true(lg_dec_mul(D("0.07"), D("20.05")) == D("1.4035"));
    /* 0.15 x 1990.00 = 298.5 */
    assert_true(lg_dec_mul(D("0.15"), D("1990.00")) == D("298.5"));
    /* 0.00000000000005 x 0.5 = 2.5e-14 -> rounds half away to 3e-14 */
    assert_true(lg_dec_mul(D("0.00000000000005"), D("0.5")) == 3);
    assert_true(lg_dec_mul(D("-0.00000000000005"), D("0.5")) == -3);
}

static void test_p99_rounding(void **state)
{
    (void)state;
    /* to 0.01 ms, half up: 1.2349 ms -> 1.23; 1.235 ms -> 1.24; 0 -> 0 */
    assert_int_equal(lg_score_p99_cms(1234900), 123);
    assert_int_equal(lg_score_p99_cms(1235000), 124);
    assert_int_equal(lg_score_p99_cms(1234999), 123);
    assert_int_equal(lg_score_p99_cms(0), 0);
    assert_int_equal(lg_score_p99_cms(11000000), 1100);
}

static void test_bonus_edges(void **state)
{
    (void)state;
    /* (11 - p99) * 0.02 rounded to 2 decimals, half up, floored at 0 */
    assert_int_equal(lg_score_bonus_h(0), 22);   /* 11 * 0.02 = 0.22 */
    assert_int_equal(lg_score_bonus_h(100), 20); /* 10 * 0.02 = 0.20 */
    assert_int_equal(lg_score_bonus_h(123), 20); /* 9.77 * 0.02 = 0.1954 -> 0.20 */
    assert_int_equal(lg_score_bonus_h(25), 22);  /* 10.75 * 0.02 = 0.215 -> 0.22 (half up) */
    assert_int_equal(lg_score_bonus_h(26), 21);  /* 10.74 * 0.02 = 0.2148 -> 0.21 */
    assert_int_equal(lg_score_bonus_h(1075), 1); /* 0.25 * 0.02 = 0.005 -> 0.01 (half up) */
    assert_int_equal(lg_score_bonus_h(1076), 0); /* 0.24 * 0.02 = 0.0048 -> 0.00 */
    assert_int_equal(lg_score_bonus_h(1100), 0); /* p99 = 11: no bonus */
    assert_int_equal(lg_score_bonus_h(1101), 0); /* p99 > 11: max(negative, 0) = 0 */
    assert_int_equal(lg_score_bonus_h(5000), 0);
}

static struct lg_score_in preview_case(void)
{
    struct lg_score_in in;
    memset(&in, 0, sizeof(in));
    /* default: 1000 x 19.90 = 19900.00 at 5% ; fallback: 100 x 19.90 = 1990.00 at 15% */
    in.proc[0].count = 1000;
    in.proc[0].amount = D("19900.00");
    in.proc[0].fee_rate = D("0.05");
    in.proc[0].has_fee_rate = true;
    in.proc[1].count = 100;
    in.proc[1].amount = D("1990.00");
    in.proc[1].fee_rate = D("0.15");
    in.proc[1].has_fee_rate = true;
    in.p99_ns = 1234000; /* 1.234 ms -> 1.23 */
    in.ok_posts = 1100;
    return in;
}

static void test_score_clean(void **state)
{
    (void)state;
    struct lg_score_in in = preview_case();
    struct lg_score s;
    lg_score_compute(&in, &s);
    /* gross = 19900 + 1990 = 21890.00
     * fees  = 19900 * 0.05 + 1990 * 0.15 = 995.00 + 298.50 = 1293.50
     * p99 = 1.23 -> bonus = round(9.77 * 0.02, 2) = round(0.1954) = 0.20
     * net = (21890 - 1293.50) * (1 + 0.20 - 0) = 20596.50 * 1.2 = 24715.80 */
    assert_dec(s.gross, "21890.00");
    assert_dec(s.fees, "1293.50");
    assert_int_equal(s.p99_cms, 123);
    assert_int_equal(s.bonus_h, 20);
    assert_int_equal(s.fine_h, 0);
    assert_int_equal(s.lag, 0);
    assert_dec(s.net, "24715.80");
}

static void test_score_fine(void **state)
{
    (void)state;
    struct lg_score_in in = preview_case();
    in.inconsistencies = 3;
    struct lg_score s;
    lg_score_compute(&in, &s);
    /* net = 20596.50 * (1 + 0.20 - 0.35) = 20596.50 * 0.85 = 17507.025 */
    assert_int_equal(s.fine_h, 35);
    assert_dec(s.net, "17507.025");
}

static void test_score_slow_and_lag(void **state)
{
    (void)state;
    struct lg_score_in in = preview_case();
    in.p99_ns = 11005000; /* 11.005 ms -> 11.01 > 11: no bonus */
    in.ok_posts = 1090;   /* 1100 recorded: lag = -10 (recorded more than accepted) */
    struct lg_score s;
    lg_score_compute(&in, &s);
    /* net = 20596.50 * 1 = 20596.50 */
    assert_int_equal(s.p99_cms, 1101);
    assert_int_equal(s.bonus_h, 0);
    assert_int_equal(s.lag, -10);
    assert_dec(s.net, "20596.50");

    /* fine and no bonus: 20596.50 * 0.65 = 13387.725 */
    in.inconsistencies = 1;
    lg_score_compute(&in, &s);
    assert_dec(s.net, "13387.725");
}

static void test_score_final_fees(void **state)
{
    (void)state;
    struct lg_score_in in;
    memset(&in, 0, sizeof(in));
    /* final: default 7%, fallback 10%, amount 20.05
     * default 3 x 20.05 = 60.15 -> fee 4.2105; fallback 1 x 20.05 -> fee 2.005
     * gross 80.20, fees 6.2155, p99 = 0.50 ms -> bonus round(10.5*0.02) = 0.21
     * net = (80.20 - 6.2155) * 1.21 = 73.9845 * 1.21 = 89.521245 */
    in.proc[0].count = 3;
    in.proc[0].amount = D("60.15");
    in.proc[0].fee_rate = D("0.07");
    in.proc[0].has_fee_rate = true;
    in.proc[1].count = 1;
    in.proc[1].amount = D("20.05");
    in.proc[1].fee_rate = D("0.1");
    in.proc[1].has_fee_rate = true;
    in.p99_ns = 500000;
    in.ok_posts = 4;
    struct lg_score s;
    lg_score_compute(&in, &s);
    assert_dec(s.gross, "80.20");
    assert_dec(s.fees, "6.2155");
    assert_int_equal(s.bonus_h, 21);
    assert_dec(s.net, "89.521245");

    /* without a rate, the processor's totalFee is used */
    in.proc[1].has_fee_rate = false;
    in.proc[1].total_fee = D("2.01");
    in.proc[1].has_total_fee = true;
    lg_score_compute(&in, &s);
    assert_dec(s.fees, "6.2205");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dec_parse),        cmocka_unit_test(test_dec_format),
        cmocka_unit_test(test_dec_mul),          cmocka_unit_test(test_p99_rounding),
        cmocka_unit_test(test_bonus_edges),      cmocka_unit_test(test_score_clean),
        cmocka_unit_test(test_score_fine),       cmocka_unit_test(test_score_slow_and_lag),
        cmocka_unit_test(test_score_final_fees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
