/* Load generator: UUID v4 generation, result classification, summary parsing
 * and the JSON report (rendered from synthetic results, checked for syntax and
 * content). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/httpc.h"
#include "lib/uuid.h"
#include "ops/loadgen/opts.h"
#include "ops/loadgen/report.h"
#include "ops/loadgen/rng.h"
#include "ops/loadgen/run.h"

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 36);
}

static void test_uuid_v4(void **state)
{
    (void)state;
    struct lg_rng rng;
    lg_rng_seed(&rng);
    enum { N = 20000 };
    char(*ids)[36] = malloc(sizeof(char[36]) * N);
    assert_non_null(ids);
    for (int i = 0; i < N; i++) {
        char *id = ids[i];
        lg_uuid_v4(&rng, id);
        for (int k = 0; k < 36; k++) {
            if (k == 8 || k == 13 || k == 18 || k == 23)
                assert_int_equal(id[k], '-');
            else
                assert_true((id[k] >= '0' && id[k] <= '9') || (id[k] >= 'a' && id[k] <= 'f'));
        }
        assert_int_equal(id[14], '4');           /* version 4 */
        assert_non_null(strchr("89ab", id[19])); /* variant 10xx */
        uint8_t bin[16];
        assert_int_equal(uuid_parse(id, 36, bin), 0);
        assert_int_equal(bin[6] >> 4, 4);
        assert_int_equal(bin[8] >> 6, 2);
    }
    qsort(ids, N, 36, cmp_id);
    for (int i = 1; i < N; i++)
        assert_true(memcmp(ids[i - 1], ids[i], 36) != 0);
    free(ids);
}

static struct httpc_result res(enum httpc_outcome oc, int status, uint64_t us, const char *e)
{
    struct httpc_result r = {
        .outcome = oc, .status = status, .body = "", .elapsed_us = us, .error = e};
    return r;
}

static void test_classify(void **state)
{
    (void)state;
    struct lg_req_stats st;
    memset(&st, 0, sizeof(st));
    struct httpc_result r;
    r = res(HTTPC_OK, 200, 10, "");
    assert_true(lg_classify(&st, &r, 1500000));
    r = res(HTTPC_OK, 204, 10, "");
    assert_true(lg_classify(&st, &r, 1500000));
    r = res(HTTPC_OK, 422, 10, "");
    assert_false(lg_classify(&st, &r, 1500000));
    r = res(HTTPC_OK, 503, 10, "");
    assert_false(lg_classify(&st, &r, 1500000));
    r = res(HTTPC_OK, 302, 10, "");
    assert_false(lg_classify(&st, &r, 1500000));
    r = res(HTTPC_UNKNOWN, 0, 1500100, "Operation timed out after 1500 milliseconds");
    assert_false(lg_classify(&st, &r, 1500000));
    r = res(HTTPC_UNKNOWN, 0, 1499000, "something"); /* at the deadline: a timeout */
    assert_false(lg_classify(&st, &r, 1500000));
    r = res(HTTPC_NOT_SENT, 0, 100, "Connection refused");
    assert_false(lg_classify(&st, &r, 1500000));
    r = res(HTTPC_UNKNOWN, 0, 300, "Recv failure: Connection reset by peer");
    assert_false(lg_classify(&st, &r, 1500000));
    assert_int_equal(st.ok, 2);
    assert_int_equal(st.failed, 7);
    assert_int_equal(st.err.status_4xx, 1);
    assert_int_equal(st.err.status_5xx, 1);
    assert_int_equal(st.err.other, 1);
    assert_int_equal(st.err.timeout, 2);
    assert_int_equal(st.err.connection, 2);
}

static void test_parse_summaries(void **state)
{
    (void)state;
    int64_t c[2];
    const char *t = "{\"default\":{\"totalRequests\":43236,\"totalAmount\":415542345.98},"
                    "\"fallback\":{\"totalRequests\":423545,\"totalAmount\":329347.34}}";
    assert_int_equal(lg_parse_target_summary(t, strlen(t), c), 0);
    assert_int_equal(c[0], 43236);
    assert_int_equal(c[1], 423545);
    const char *bad[] = {"",
                         "[]",
                         "{\"default\":{\"totalRequests\":1}}",
                         "{\"default\":{\"totalRequests\":-1},\"fallback\":{\"totalRequests\":1}}",
                         "{\"default\":1,\"fallback\":2}",
                         "not json"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(lg_parse_target_summary(bad[i], strlen(bad[i]), c), -EINVAL);

    struct lg_proc_summary ps;
    const char *p = "{\"totalRequests\":3,\"totalAmount\":59.7,\"totalFee\":2.985,"
                    "\"feePerTransaction\":0.05}";
    assert_int_equal(lg_parse_proc_summary(p, strlen(p), &ps), 0);
    assert_int_equal(ps.count, 3);
    assert_true(ps.amount == 5970 * LG_DEC_CENT);
    assert_true(ps.has_fee_rate && ps.fee_rate == 5 * LG_DEC_CENT);
    assert_true(ps.has_total_fee && ps.total_fee == (__int128)2985 * (LG_DEC_ONE / 1000));
    const char *q = "{\"totalRequests\":0,\"totalAmount\":0}";
    assert_int_equal(lg_parse_proc_summary(q, strlen(q), &ps), 0);
    assert_false(ps.has_fee_rate || ps.has_total_fee);
    const char *r = "{\"totalRequests\":1}";
    assert_int_equal(lg_parse_proc_summary(r, strlen(r), &ps), -EINVAL);
}

static void test_json_valid(void **state)
{
    (void)state;
    static const char *const good[] = {"{}", "[]", " {\"a\":[1,-2.5e3,true,false,null,\"x\\n\"]} ",
                                       "0", "\"\\u00e9\""};
    static const char *const bad[] = {"",   "{",   "{\"a\":}", "[1,]",    "{\"a\" 1}", "01",
                                      "1.", "tru", "{} {}",    "\"\\x\"", "[1 2]",     "{a:1}"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(lg_json_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(lg_json_valid(bad[i], strlen(bad[i])));
}

static void test_report(void **state)
{
    (void)state;
    struct lg_opts o;
    char err[256];
    char *argv[] = {(char *)"loadgen", (char *)"--duration", (char *)"6",
                    (char *)"--users", (char *)"10",         NULL};
    assert_int_equal(lg_opts_parse(5, argv, &o, err, sizeof(err)), 0);
    struct lg_results *r = lg_results_new(&o);
    assert_non_null(r);
    r->ran_ms = 6000;
    r->payments.sent = 12;
    r->payments.ok = 10;
    r->payments.failed = 2;
    r->payments.err.timeout = 1;
    r->payments.err.status_5xx = 1;
    for (uint64_t v = 1; v <= 10; v++) {
        lg_hist_record(&r->pay_hist, v * 100); /* 0.1 .. 1.0 ms */
        lg_hist_record(&r->all_hist, v * 100);
    }
    r->naudits = 1;
    r->audits[0].at_ms = 5000;
    r->audits[0].ok = true;
    r->audits[0].ours[0] = 4;
    r->audits[0].procs[0] = 5;
    r->audits[0].inconsistencies = 1;
    r->inconsistencies = 1;
    r->have_final = true;
    r->final[0].count = 9;
    r->final[0].amount = 9 * 1990 * LG_DEC_CENT;
    r->final[0].fee_rate = 5 * LG_DEC_CENT;
    r->final[0].has_fee_rate = true;
    struct lg_score_in in = {.proc = {r->final[0], r->final[1]},
                             .p99_ns = lg_hist_percentile_ns(&r->all_hist, 99000),
                             .inconsistencies = 1,
                             .ok_posts = 10};
    lg_score_compute(&in, &r->score);
    char *js = lg_report_render(&o, r, 0);
    assert_non_null(js);
    assert_true(lg_json_valid(js, strlen(js)));
    assert_non_null(strstr(js, "\"schedule\":\"preview\""));
    assert_non_null(strstr(js, "\"durationS\":6,"));
    assert_non_null(strstr(js, "\"users\":10,"));
    assert_non_null(strstr(js, "\"sent\":12,\"ok\":10,\"failed\":2"));
    /* p99 of 100..1000 us: i = 8.91 -> 900 + 0.91 * 100 = 991 us */
    assert_non_null(strstr(js, "\"p99\":0.991"));
    assert_non_null(strstr(js, "\"ours\":{\"default\":4,\"fallback\":0}"));
    assert_non_null(strstr(js, "\"inconsistencies\":1"));
    /* gross 179.10, fees 8.955, p99 0.99 -> bonus round(10.01 * 0.02) = 0.20, fine 0.35
     * net = 170.145 * 0.85 = 144.62325; lag = 10 - 9 = 1 */
    assert_non_null(strstr(js, "\"grossAmount\":179.10,\"fees\":8.955,\"p99Ms\":0.99,"
                               "\"bonus\":0.20,\"fine\":0.35,\"lag\":1,"));
    assert_non_null(strstr(js, "\"net\":144.62325"));
    assert_non_null(strstr(js, "\"lagTrustworthy\":false")); /* no samples */
    free(js);

    /* a failed setup still renders */
    r->have_final = false;
    snprintf(r->setup_error, sizeof(r->setup_error), "target \"x\" unreachable");
    js = lg_report_render(&o, r, -EHOSTUNREACH);
    assert_non_null(js);
    assert_true(lg_json_valid(js, strlen(js)));
    assert_non_null(strstr(js, "\"completed\":false"));
    assert_non_null(strstr(js, "\"score\":null"));
    free(js);
    lg_results_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid_v4),         cmocka_unit_test(test_classify),
        cmocka_unit_test(test_parse_summaries), cmocka_unit_test(test_json_valid),
        cmocka_unit_test(test_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
