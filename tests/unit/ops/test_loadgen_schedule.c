/* Load generator schedules (built-ins, custom stage lists, compression, ramp)
 * and command-line parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ops/loadgen/opts.h"
#include "ops/loadgen/schedule.h"

static void test_builtins(void **state)
{
    (void)state;
    struct lg_schedule s;
    assert_int_equal(lg_schedule_builtin("preview", &s), 0);
    assert_string_equal(s.name, "preview");
    assert_int_equal(s.duration_ms, 60000);
    assert_int_equal(s.users, 500);
    assert_int_equal(s.amount_cents, 1990);
    assert_int_equal(s.nstages, 6);
    /* 30 s: 2000/yes 1000/yes */
    assert_int_equal(s.stages[3].at_ms, 30000);
    assert_int_equal(s.stages[3].delay_ms[LG_PROC_DEFAULT], 2000);
    assert_true(s.stages[3].failing[LG_PROC_DEFAULT]);
    assert_int_equal(s.stages[3].delay_ms[LG_PROC_FALLBACK], 1000);
    assert_true(s.stages[3].failing[LG_PROC_FALLBACK]);
    /* 50 s: 0/no 5000/no */
    assert_int_equal(s.stages[5].delay_ms[LG_PROC_FALLBACK], 5000);
    assert_false(s.stages[5].failing[LG_PROC_FALLBACK]);

    assert_int_equal(lg_schedule_builtin("final", &s), 0);
    assert_int_equal(s.duration_ms, 300000);
    assert_int_equal(s.users, 603);
    assert_int_equal(s.amount_cents, 2005);
    assert_int_equal(s.nstages, 10);
    static const uint32_t at_s[] = {1, 30, 60, 90, 120, 150, 180, 210, 240, 270};
    static const uint32_t dd[] = {0, 1000, 500, 2000, 5000, 0, 100, 50, 103, 2000};
    static const uint32_t fd[] = {0, 0, 0, 1000, 5, 5, 5, 0, 10, 0};
    for (unsigned i = 0; i < 10; i++) {
        assert_int_equal(s.stages[i].at_ms, at_s[i] * 1000);
        assert_int_equal(s.stages[i].delay_ms[0], dd[i]);
        assert_int_equal(s.stages[i].delay_ms[1], fd[i]);
        assert_int_equal(s.stages[i].failing[0], i == 3 || i == 4);
        assert_int_equal(s.stages[i].failing[1], i == 5);
    }
    assert_int_equal(lg_schedule_builtin("nope", &s), -EINVAL);
    assert_int_equal(lg_schedule_builtin(NULL, &s), -EINVAL);
}

static void test_compress(void **state)
{
    (void)state;
    struct lg_schedule s;
    assert_int_equal(lg_schedule_builtin("preview", &s), 0);
    lg_schedule_compress(&s, 6000); /* 60 s -> 6 s: every time / 10 */
    static const uint32_t want[] = {100, 1000, 2000, 3000, 4000, 5000};
    for (unsigned i = 0; i < 6; i++)
        assert_int_equal(s.stages[i].at_ms, want[i]);
    assert_int_equal(s.duration_ms, 6000);
    assert_int_equal(s.stages[3].delay_ms[0], 2000); /* delays unchanged */

    assert_int_equal(lg_schedule_builtin("final", &s), 0);
    lg_schedule_compress(&s, 30000); /* 300 s -> 30 s */
    assert_int_equal(s.stages[0].at_ms, 100);
    assert_int_equal(s.stages[9].at_ms, 27000);
    assert_int_equal(s.stages[4].delay_ms[0], 5000);

    assert_int_equal(lg_schedule_builtin("final", &s), 0);
    lg_schedule_compress(&s, 7000); /* 1000 * 7000 / 300000 = 23.33 -> 23 */
    assert_int_equal(s.stages[0].at_ms, 23);
    assert_int_equal(s.stages[1].at_ms, 700);
}

static void test_ramp(void **state)
{
    (void)state;
    struct lg_schedule s;
    assert_int_equal(lg_schedule_builtin("preview", &s), 0);
    assert_int_equal(lg_schedule_users_at(&s, 0), 1);
    /* 1 + 499 * 30000 / 60000 = 1 + 249 (249.5 rounded down) */
    assert_int_equal(lg_schedule_users_at(&s, 30000), 250);
    assert_int_equal(lg_schedule_users_at(&s, 59999), 499);
    assert_int_equal(lg_schedule_users_at(&s, 60000), 500);
    assert_int_equal(lg_schedule_users_at(&s, 90000), 500);
    uint32_t prev = 0;
    for (uint64_t t = 0; t <= 60000; t += 7) {
        uint32_t u = lg_schedule_users_at(&s, t);
        assert_true(u >= prev);
        prev = u;
    }
    s.users = 1;
    assert_int_equal(lg_schedule_users_at(&s, 30000), 1);
}

static void test_parse_stages(void **state)
{
    (void)state;
    struct lg_schedule s;
    assert_int_equal(lg_schedule_builtin("preview", &s), 0);
    assert_int_equal(lg_schedule_parse_stages("1:0/n,0/n;2.5:100/y,7/n", &s), 0);
    assert_string_equal(s.name, "custom");
    assert_int_equal(s.nstages, 2);
    assert_int_equal(s.stages[1].at_ms, 2500);
    assert_int_equal(s.stages[1].delay_ms[0], 100);
    assert_true(s.stages[1].failing[0]);
    assert_int_equal(s.stages[1].delay_ms[1], 7);
    assert_false(s.stages[1].failing[1]);
    assert_int_equal(s.duration_ms, 60000); /* kept */

    static const char *const bad[] = {"",
                                      "1",
                                      "1:0/n",
                                      "1:0/n,0",
                                      "1:0/x,0/n",
                                      "1:0/n,0/n;",
                                      "2:0/n,0/n;1:0/n,0/n",
                                      "1:0/n,0/n;1:0/n,0/n",
                                      "1.0001:0/n,0/n",
                                      "a:0/n,0/n",
                                      "1:-1/n,0/n",
                                      "1:0/n,0/n "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(lg_schedule_builtin("preview", &s), 0);
        assert_int_equal(lg_schedule_parse_stages(bad[i], &s), -EINVAL);
        assert_int_equal(s.nstages, 6); /* unchanged */
    }
    char big[2048] = "";
    for (int i = 0; i < LG_SCHED_MAX_STAGES + 1; i++) {
        char one[32];
        snprintf(one, sizeof(one), "%s%d:0/n,0/n", i ? ";" : "", i + 1);
        strcat(big, one);
    }
    assert_int_equal(lg_schedule_parse_stages(big, &s), -E2BIG);
}

static int parse(struct lg_opts *o, char *err, const char *const *args)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"loadgen";
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    return lg_opts_parse(argc, argv, o, err, 256);
}

static void test_opts_defaults(void **state)
{
    (void)state;
    struct lg_opts o;
    char err[256];
    const char *none[] = {NULL};
    assert_int_equal(parse(&o, err, none), 0);
    assert_string_equal(o.target, "http://127.0.0.1:9999");
    assert_string_equal(o.proc_url[0], "http://127.0.0.1:8001");
    assert_string_equal(o.proc_url[1], "http://127.0.0.1:8002");
    assert_string_equal(o.token, "123");
    assert_string_equal(o.sched.name, "preview");
    assert_int_equal(o.timeout_ms, 1500);
    assert_int_equal(o.drain_ms, 3000);
    assert_int_equal(o.audit_interval_ms, 10000);
    assert_int_equal(o.rate, 0);
    assert_null(o.accepted_file);
    assert_false(o.no_schedule || o.no_purge || o.score || o.help);
}

static void test_opts_overrides(void **state)
{
    (void)state;
    struct lg_opts o;
    char err[256];
    const char *a[] = {"--schedule",
                       "final",
                       "--duration",
                       "30",
                       "--users=600",
                       "--amount",
                       "19.9",
                       "--token",
                       "abc",
                       "--target",
                       "http://127.0.0.1:1/",
                       "--accepted-file",
                       "/tmp/x",
                       "--report",
                       "/tmp/r",
                       "--no-schedule",
                       "--no-purge",
                       "--with-requested-at",
                       "--drain-s",
                       "0.5",
                       "--audit-interval-s",
                       "2",
                       "--timeout-ms",
                       "900",
                       NULL};
    assert_int_equal(parse(&o, err, a), 0);
    assert_string_equal(o.sched.name, "final");
    assert_int_equal(o.sched.duration_ms, 30000);
    assert_int_equal(o.sched.stages[1].at_ms, 3000); /* compressed */
    assert_int_equal(o.sched.users, 600);
    assert_int_equal(o.sched.amount_cents, 1990);
    assert_string_equal(o.token, "abc");
    assert_string_equal(o.accepted_file, "/tmp/x");
    assert_string_equal(o.report_path, "/tmp/r");
    assert_true(o.no_schedule && o.no_purge && o.with_requested_at);
    assert_int_equal(o.drain_ms, 500);
    assert_int_equal(o.audit_interval_ms, 2000);
    assert_int_equal(o.timeout_ms, 900);

    const char *r[] = {"--rate", "200", "--duration", "5", "--score", NULL};
    assert_int_equal(parse(&o, err, r), 0);
    assert_int_equal(o.rate, 200);
    assert_int_equal(o.sched.duration_ms, 5000);
    assert_int_equal(o.sched.nstages, 0); /* no schedule changes in rate mode */
    assert_true(o.score);

    const char *rt[] = {"--rt-priority", "20", NULL};
    assert_int_equal(parse(&o, err, rt), 0);
    assert_int_equal(o.rt_priority, 20);

    const char *h[] = {"--help", NULL};
    assert_int_equal(parse(&o, err, h), 0);
    assert_true(o.help);

    const char *st[] = {"--stages", "1:5/n,6/y", "--duration", "6", NULL};
    assert_int_equal(parse(&o, err, st), 0);
    assert_int_equal(o.sched.nstages, 1);
    assert_int_equal(o.sched.stages[0].at_ms, 100); /* 1 s of 60 -> 0.1 s of 6 */
}

static void test_opts_bad(void **state)
{
    (void)state;
    struct lg_opts o;
    char err[256];
    static const char *const cases[][4] = {
        {"--bogus", NULL},
        {"--users", NULL},
        {"--users", "0", NULL},
        {"--users", "1.5", NULL},
        {"--amount", "0", NULL},
        {"--amount", "1.001", NULL},
        {"--amount", "-1", NULL},
        {"--duration", "0", NULL},
        {"--duration", "x", NULL},
        {"--rate", "10", NULL}, /* needs --duration */
        {"--score", NULL},      /* rate mode only */
        {"--schedule", "weekly", NULL},
        {"--target", "https://x:1", NULL},
        {"--token", "", NULL},
        {"--no-purge=1", NULL},
        {"positional", NULL},
        {"--stages", "nonsense", NULL},
        {"--rt-priority", "100", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        assert_int_equal(parse(&o, err, cases[i]), -EINVAL);
        assert_true(strlen(err) > 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtins),      cmocka_unit_test(test_compress),
        cmocka_unit_test(test_ramp),          cmocka_unit_test(test_parse_stages),
        cmocka_unit_test(test_opts_defaults), cmocka_unit_test(test_opts_overrides),
        cmocka_unit_test(test_opts_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
