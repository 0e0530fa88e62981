/* One node against two processor simulators, over real HTTP: payments are
 * recorded once, the node's books equal the simulators' for any window, bad
 * input changes nothing, and the routing holds its promises when processors
 * fail or slow down. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tclient.h"
#include "topo.h"

static struct topo_sim def, fb;
static struct topo_node node;

static int setup_all(void **state)
{
    topo_sims_start(&def, &fb, "test_node");
    const char *env[] = {"NODE_ID=1", NULL};
    topo_node_start(&node, &def, &fb, env, "test_node.node.log");
    return 0;
}

static int teardown_all(void **state)
{
    int st = topo_node_stop(&node);
    topo_sims_stop(&def, &fb);
    /* SIGTERM is an orderly shutdown: exit code 0. */
    assert_int_equal(st, 0);
    return 0;
}

/* Fresh books and healthy processors before each test. */
static int reset(void **state)
{
    topo_node_purge(node.addr);
    topo_sims_reset(&def, &fb);
    return 0;
}

static void assert_books_match(int64_t from, int64_t to)
{
    struct topo_counts ours, theirs;
    assert_int_equal(topo_node_summary(node.addr, from, to, &ours), 0);
    assert_int_equal(topo_sims_summary(&def, &fb, from, to, &theirs), 0);
    for (int p = 0; p < 2; p++) {
        assert_int_equal(ours.count[p], theirs.count[p]);
        assert_int_equal(ours.cents[p], theirs.cents[p]);
    }
}

static void test_payments_recorded_books_match(void **state)
{
    enum { N = 200 };
    static char ids[N][37];
    int64_t t0 = topo_now_ms();
    int64_t tmid = 0;
    for (int i = 0; i < N; i++) {
        topo_uuid(ids[i]);
        assert_int_equal(topo_post_payment(node.addr, ids[i], i % 2 ? "19.90" : "0.01") / 100, 2);
        if (i == N / 2) {
            topo_sleep_ms(20);
            tmid = topo_now_ms();
            topo_sleep_ms(20);
        }
    }
    assert_int_equal(topo_wait_total(node.addr, N, 10000), N);
    int64_t t1 = topo_now_ms();
    assert_books_match(INT64_MIN, INT64_MAX);
    assert_books_match(t0 - 1000, t1 + 1000);
    assert_books_match(t0 - 1000, tmid);
    assert_books_match(tmid, t1 + 1000);
    assert_books_match(t0 - 60000, t0 - 30000); /* empty */
    struct topo_counts all;
    assert_int_equal(topo_node_summary(node.addr, INT64_MIN, INT64_MAX, &all), 0);
    assert_int_equal(all.cents[0] + all.cents[1], (N / 2) * 1990 + (N / 2) * 1);
    /* Healthy default: nothing needed the fallback. */
    assert_int_equal(all.count[1], 0);
    for (int i = 0; i < N; i += 7)
        assert_true(topo_sim_has(&def, ids[i]) != topo_sim_has(&fb, ids[i]));
}

static void test_duplicate_processed_once(void **state)
{
    char id[37];
    topo_uuid(id);
    for (int i = 0; i < 5; i++)
        assert_int_equal(topo_post_payment(node.addr, id, "10.00") / 100, 2);
    /* Same id, another amount: a conflict, not a second payment. */
    assert_int_equal(topo_post_payment(node.addr, id, "11.00"), 409);
    assert_int_equal(topo_wait_total(node.addr, 1, 5000), 1);
    topo_sleep_ms(300);
    assert_int_equal(topo_wait_total(node.addr, 1, 100), 1);
    assert_books_match(INT64_MIN, INT64_MAX);
}

struct bad_case {
    const char *method, *path, *body;
    int status;
};

static void test_bad_inputs_change_nothing(void **state)
{
    static const struct bad_case cases[] = {
        {"POST", "/payments", "", 400},
        {"POST", "/payments", "not json", 400},
        {"POST", "/payments", "[]", 400},
        {"POST", "/payments", "{\"amount\":1.00}", 400},
        {"POST", "/payments", "{\"correlationId\":\"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3\"}", 400},
        {"POST", "/payments", "{\"correlationId\":42,\"amount\":1}", 400},
        {"POST", "/payments", "{\"correlationId\":\"not-a-uuid\",\"amount\":1}", 422},
        {"POST", "/payments",
         "{\"correlationId\":\"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b\",\"amount\":1}", 422},
        {"POST", "/payments",
         "{\"correlationId\":\"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3\",\"amount\":0}", 422},
        {"POST", "/payments",
         "{\"correlationId\":\"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3\",\"amount\":-5}", 422},
        {"POST", "/payments",
         "{\"correlationId\":\"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3\",\"amount\":1.001}", 422},
        {"POST", "/payments",
         "{\"correlationId\":\"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3\",\"amount\":\"1.00\"}", 400},
        {"POST", "/payments",
         "{\"correlationId\":\"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3\",\"amount\":1.00,}", 400},
        /* a repeated key: which amount would count is ambiguous */
        {"POST", "/payments",
         "{\"correlationId\":\"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3\",\"amount\":1.00,"
         "\"amount\":1000.00}",
         400},
        {"POST", "/payments",
         "{\"correlationId\":\"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3\",\"amount\":1.00,"
         "\"\\u0061mount\":2.00}",
         400},
        {"GET", "/payments", NULL, 405},
        {"GET", "/nope", NULL, 404},
        {"GET", "/payments-summary?from=garbage", NULL, 400},
        {"GET", "/payments-summary?to=2025-13-01T00:00:00Z", NULL, 400},
        {"GET", "/payments-summary?from=2025-07-15T12:34:56.000", NULL, 400},
        {"POST", "/payments-summary", NULL, 405},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tclient_resp r;
        char body[256];
        const struct bad_case *c = &cases[i];
        int rv = tclient_fetch(node.addr, 5000, c->method, c->path, NULL, c->body,
                               c->body ? strlen(c->body) : 0, &r, body, sizeof(body));
        assert_int_equal(rv, 0);
        if (r.status != c->status)
            fail_msg("case %zu (%s %s %s): status %d, want %d", i, c->method, c->path,
                     c->body ? c->body : "", r.status, c->status);
        if (r.status >= 400 && r.status != 405)
            assert_non_null(strstr(body, "\"error\""));
    }
    topo_sleep_ms(200);
    struct topo_counts ours, theirs;
    assert_int_equal(topo_node_summary(node.addr, INT64_MIN, INT64_MAX, &ours), 0);
    assert_int_equal(topo_sims_summary(&def, &fb, INT64_MIN, INT64_MAX, &theirs), 0);
    assert_int_equal(ours.count[0] + ours.count[1], 0);
    assert_int_equal(theirs.count[0] + theirs.count[1], 0);
}

static void test_summary_timestamps_accepted(void **state)
{
    static const char *const ok[] = {
        "/payments-summary",
        "/payments-summary?from=2025-07-15T12:34:56.000Z&to=2025-07-15T12:35:56.000Z",
        "/payments-summary?from=2025-07-15T12:34:56Z",
        "/payments-summary?to=2025-07-15T12:34:56.123456789Z",
        "/payments-summary?from=2025-07-15T12%3A34%3A56.1Z",
        "/payments-summary?from=&to=",
        "/payments-summary?from=2025-07-15T12:34:56+00:00",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct tclient_resp r;
        char body[256];
        assert_int_equal(
            tclient_fetch(node.addr, 5000, "GET", ok[i], NULL, NULL, 0, &r, body, sizeof(body)), 0);
        if (r.status != 200)
            fail_msg("%s: status %d", ok[i], r.status);
        assert_string_equal(body, "{\"default\":{\"totalRequests\":0,\"totalAmount\":0.00},"
                                  "\"fallback\":{\"totalRequests\":0,\"totalAmount\":0.00}}");
    }
}

static void test_default_failing_uses_fallback(void **state)
{
    topo_sim_set_failure(&def, true);
    enum { N = 40 };
    for (int i = 0; i < N; i++) {
        char id[37];
        topo_uuid(id);
        assert_int_equal(topo_post_payment(node.addr, id, "5.55") / 100, 2);
        topo_sleep_ms(5);
    }
    assert_int_equal(topo_wait_total(node.addr, N, 10000), N);
    struct topo_counts theirs;
    assert_int_equal(topo_sims_summary(&def, &fb, INT64_MIN, INT64_MAX, &theirs), 0);
    assert_int_equal(theirs.count[0], 0);
    assert_int_equal(theirs.count[1], N);
    assert_books_match(INT64_MIN, INT64_MAX);
}

static void test_both_failing_held_then_drained(void **state)
{
    topo_sim_set_failure(&def, true);
    topo_sim_set_failure(&fb, true);
    enum { N = 30 };
    static char ids[N][37];
    for (int i = 0; i < N; i++) {
        topo_uuid(ids[i]);
        assert_int_equal(topo_post_payment(node.addr, ids[i], "1.23") / 100, 2);
    }
    topo_sleep_ms(1500);
    struct topo_counts ours;
    assert_int_equal(topo_node_summary(node.addr, INT64_MIN, INT64_MAX, &ours), 0);
    assert_int_equal(ours.count[0] + ours.count[1], 0);
    topo_sim_set_failure(&def, false);
    assert_int_equal(topo_wait_total(node.addr, N, 15000), N);
    assert_books_match(INT64_MIN, INT64_MAX);
    for (int i = 0; i < N; i++)
        assert_true(topo_sim_has(&def, ids[i]) != topo_sim_has(&fb, ids[i]));
}

/* The auditor's view: windows ending 2 s ago must match at every moment, even
 * while the default answers only after 2 s. */
static void test_slow_default_no_audit_mismatch(void **state)
{
    topo_sim_set_delay(&def, 2000);
    int64_t start = topo_now_ms(), mismatches = 0, audits = 0;
    int posted = 0;
    while (topo_now_ms() - start < 6000) {
        for (int i = 0; i < 5; i++) {
            char id[37];
            topo_uuid(id);
            assert_int_equal(topo_post_payment(node.addr, id, "2.00") / 100, 2);
            posted++;
        }
        int64_t now = topo_now_ms();
        struct topo_counts ours, theirs;
        assert_int_equal(topo_node_summary(node.addr, now - 15000, now - 2000, &ours), 0);
        assert_int_equal(topo_sims_summary(&def, &fb, now - 15000, now - 2000, &theirs), 0);
        audits++;
        for (int p = 0; p < 2; p++)
            if (ours.count[p] != theirs.count[p])
                mismatches++;
        topo_sleep_ms(100);
    }
    assert_true(audits > 20);
    assert_int_equal(mismatches, 0);
    assert_int_equal(topo_wait_total(node.addr, posted, 15000), posted);
    assert_books_match(INT64_MIN, INT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_payments_recorded_books_match, reset),
        cmocka_unit_test_setup(test_duplicate_processed_once, reset),
        cmocka_unit_test_setup(test_bad_inputs_change_nothing, reset),
        cmocka_unit_test_setup(test_summary_timestamps_accepted, reset),
        cmocka_unit_test_setup(test_default_failing_uses_fallback, reset),
        cmocka_unit_test_setup(test_both_failing_held_then_drained, reset),
        cmocka_unit_test_setup(test_slow_default_no_audit_mismatch, reset),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
