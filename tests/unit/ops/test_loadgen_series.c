/* Load generator: the per-second series (bucket bounds, counts from cumulative
 * totals, window percentiles, bounded storage) and the progress line's text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ops/loadgen/live.h"
#include "ops/loadgen/opts.h"
#include "ops/loadgen/run.h"
#include "ops/loadgen/series.h"

static void test_series_roll(void **state)
{
    (void)state;
    struct lg_series s;
    assert_int_equal(lg_series_init(&s, 3000), 0);
    assert_int_equal(s.cap, 6); /* 3 whole seconds, a partial one, the wind-down, slack */

    for (uint64_t v = 1; v <= 100; v++)
        lg_series_record(&s, v * 100); /* 0.1 .. 10 ms */
    const struct lg_sec *b = lg_series_roll(&s, 1000, 100, 4, 7, false);
    assert_non_null(b);
    assert_int_equal(b->start_ms, 0);
    assert_int_equal(b->end_ms, 1000);
    assert_int_equal(b->ok, 100);
    assert_int_equal(b->failed, 4);
    assert_int_equal(b->vus, 7);
    /* k6 interpolation over bucket midpoints (hist.h: 2 us wide at 5 ms, 4 us
     * at 9.9 ms; max exact): p99 at i = 98.01 -> 9902 + 0.01 * (10000 - 9902)
     * = 9902.98 -> 9903 us; p50 at i = 49.5 -> (5001 + 5101) / 2 = 5051 us */
    assert_int_equal(b->p99_us, 9903);
    assert_int_equal(b->p50_us, 5051);
    assert_int_equal(b->max_us, 10000);
    assert_false(b->after);
    assert_int_equal(s.win.count, 0); /* the window starts empty again */

    /* counts are deltas of the cumulative totals; an empty window gives 0s */
    b = lg_series_roll(&s, 2003, 100, 9, 8, false);
    assert_non_null(b);
    assert_int_equal(b->start_ms, 1000);
    assert_int_equal(b->end_ms, 2003);
    assert_int_equal(b->ok, 0);
    assert_int_equal(b->failed, 5);
    assert_int_equal(b->p99_us, 0);
    assert_int_equal(b->max_us, 0);

    /* nothing new and no time: no bucket */
    assert_null(lg_series_roll(&s, 2003, 100, 9, 8, false));
    /* a tick earlier than the previous end is clamped to it */
    lg_series_record(&s, 500);
    b = lg_series_roll(&s, 1500, 101, 9, 8, true);
    assert_non_null(b);
    assert_int_equal(b->start_ms, 2003);
    assert_int_equal(b->end_ms, 2003);
    assert_int_equal(b->ok, 1);
    assert_true(b->after);
    assert_int_equal(s.n, 3);

    /* bounded: past cap nothing is kept or overwritten */
    for (uint32_t t = 3000; t < 20000; t += 1000)
        (void)lg_series_roll(&s, t, 101, 9, 0, false);
    assert_int_equal(s.n, s.cap);
    assert_int_equal(s.sec[s.cap - 1].end_ms, 5000);
    lg_series_release(&s);
}

static void test_live_format(void **state)
{
    (void)state;
    struct lg_opts o;
    char err[256];
    char *argv[] = {
        (char *)"loadgen", (char *)"--duration", (char *)"60",          (char *)"--users",
        (char *)"500",     (char *)"--stages",   (char *)"1:100/y,0/n", NULL};
    assert_int_equal(lg_opts_parse(7, argv, &o, err, sizeof(err)), 0);
    struct lg_results *r = lg_results_new(&o);
    assert_non_null(r);
    r->payments.failed = 17;
    struct lg_sec b = {
        .start_ms = 11000, .end_ms = 12000, .ok = 238, .failed = 3, .p99_us = 4214, .vus = 240};
    char line[LG_LIVE_LINE_MAX];
    size_t n = lg_live_format(line, sizeof(line), &o, r, &b);
    assert_int_equal(n, strlen(line));
    assert_string_equal(line, "12.0/60s  VUs 240  238 pay/s  p99 4.21ms  err 3 (17 total)  "
                              "stage 0/1");
    r->stages_started = 1;
    b.p99_us = 123456;
    b.end_ms = 11500; /* half a second: the rate is per second */
    b.start_ms = 11000;
    b.ok = 100;
    lg_live_format(line, sizeof(line), &o, r, &b);
    assert_string_equal(line, "11.5/60s  VUs 240  200 pay/s  p99 123ms  err 3 (17 total)  "
                              "stage 1/1: D 100ms failing, F 0ms");
    b.ok = 0;
    lg_live_format(line, sizeof(line), &o, r, &b);
    assert_non_null(strstr(line, "  0 pay/s  p99 -  "));
    /* a small buffer truncates, NUL-terminated */
    char tiny[8];
    assert_int_equal(lg_live_format(tiny, sizeof(tiny), &o, r, &b), 7);
    assert_string_equal(tiny, "11.5/60");
    lg_results_free(r);

    char *argv2[] = {(char *)"loadgen",    (char *)"--rate", (char *)"100",
                     (char *)"--duration", (char *)"2",      NULL};
    assert_int_equal(lg_opts_parse(5, argv2, &o, err, sizeof(err)), 0);
    r = lg_results_new(&o);
    assert_non_null(r);
    struct lg_sec c = {.start_ms = 0, .end_ms = 1000, .ok = 100, .p99_us = 995, .vus = 2};
    lg_live_format(line, sizeof(line), &o, r, &c);
    assert_string_equal(line, "1.0/2s  in flight 2  100 pay/s  p99 1.00ms  err 0 (0 total)");
    lg_results_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_series_roll),
        cmocka_unit_test(test_live_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
