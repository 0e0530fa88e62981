/* Dispatch + health + httpc + ledger on a private loop against two real
 * processor simulators (ops/procsim, spawned as processes on 127.0.0.1).
 * After each scenario our ledger's summary must equal the simulators' admin
 * summaries per processor (count and cents), and every payment must be held
 * by exactly one simulator (GET /payments/{id} on both).
 * Scenarios: healthy; default failing -> fallback; both failing -> held, then
 * drained when the default recovers; default slow (2000 ms) -> fallback, no
 * unknown fate; default answering 500 for a while then recovering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "lib/clock.h"
#include "node/dispatch.h"
#include "node/health.h"
#include "lib/httpc.h"
#include "lib/json.h"
#include "node/ledger.h"
#include "lib/money.h"
#include "lib/uuid.h"
#include "proc.h"
#include "tclient.h"

#ifdef PROCSIM_BIN

#define TOKEN_HDR "X-Rinha-Token: 123\r\n"

static struct proc sims[2];
static char sim_addr[2][32];
static char sim_url[2][64];

/* ---------------- simulator admin ---------------- */

static int admin(int p, const char *method, const char *path, const char *body, char *out,
                 size_t cap)
{
    struct tclient_resp r;
    char dummy[256];
    if (!out) {
        out = dummy;
        cap = sizeof(dummy);
    }
    int rv = tclient_fetch(sim_addr[p], 5000, method, path, TOKEN_HDR, body,
                           body ? strlen(body) : 0, &r, out, cap);
    assert_int_equal(rv, 0);
    return r.status;
}

static void sim_set(int p, unsigned delay_ms, bool failing)
{
    char b[64];
    snprintf(b, sizeof(b), "{\"delay\":%u}", delay_ms);
    assert_int_equal(admin(p, "PUT", "/admin/configurations/delay", b, NULL, 0) / 100, 2);
    snprintf(b, sizeof(b), "{\"failure\":%s}", failing ? "true" : "false");
    assert_int_equal(admin(p, "PUT", "/admin/configurations/failure", b, NULL, 0) / 100, 2);
}

static void sim_summary(int p, int64_t *count, int64_t *cents)
{
    char body[512];
    assert_int_equal(admin(p, "GET", "/admin/payments-summary", NULL, body, sizeof(body)), 200);
    struct json_doc doc;
    struct slice s;
    long long n;
    assert_int_equal(json_parse(&doc, body, strlen(body)), 0);
    assert_true(json_int(&doc, json_member(&doc, 0, "totalRequests"), &n));
    assert_true(json_number(&doc, json_member(&doc, 0, "totalAmount"), &s));
    *count = n;
    if (n == 0) {
        *cents = 0;
        return;
    }
    assert_int_equal(money_parse_cents(s.ptr, s.len, cents), 0);
}

static bool sim_has(int p, const uint8_t id[16])
{
    char path[64] = "/payments/";
    uuid_format(id, path + 10);
    path[10 + UUID_TEXT_LEN] = 0;
    int st = admin(p, "GET", path, NULL, NULL, 0);
    assert_true(st == 200 || st == 404);
    return st == 200;
}

static int group_setup(void **state)
{
    for (int p = 0; p < 2; p++) {
        int port = proc_free_port();
        assert_true(port > 0);
        char portarg[16], log[128];
        snprintf(portarg, sizeof(portarg), "%d", port);
        snprintf(log, sizeof(log), "/tmp/test_dispatch_procsim.%d.%s.log", (int)getpid(),
                 p ? "fallback" : "default");
        char *argv[] = {PROCSIM_BIN,
                        "--host",
                        "127.0.0.1",
                        "--port",
                        portarg,
                        "--name",
                        p ? "fallback" : "default",
                        "--fee",
                        p ? "0.15" : "0.05",
                        NULL};
        assert_int_equal(proc_spawn(&sims[p], argv, NULL, log), 0);
        assert_int_equal(proc_wait_tcp(&sims[p], "127.0.0.1", port, 5000), 0);
        snprintf(sim_addr[p], sizeof(sim_addr[p]), "127.0.0.1:%d", port);
        snprintf(sim_url[p], sizeof(sim_url[p]), "http://127.0.0.1:%d", port);
    }
    return 0;
}

static int group_teardown(void **state)
{
    for (int p = 0; p < 2; p++)
        proc_stop(&sims[p], 2000);
    return 0;
}

/* ---------------- the dispatching side ---------------- */

struct world {
    uv_loop_t loop;
    struct ledger *ledger;
    struct httpc *httpc;
    struct health *health;
    struct dispatch *d;
    uint64_t seq;
    unsigned next_id;
};

static int emit_cb(void *arg, struct event *ev, struct payment **out)
{
    struct world *w = arg;
    ev->origin = 1;
    ev->seq = w->seq + 1;
    int rv = ledger_apply(w->ledger, ev, out);
    if (rv == 0)
        w->seq = ev->seq;
    return rv;
}

static void world_up(struct world *w)
{
    memset(w, 0, sizeof(*w));
    for (int p = 0; p < 2; p++) {
        sim_set(p, 0, false);
        assert_int_equal(admin(p, "POST", "/admin/purge-payments", NULL, NULL, 0) / 100, 2);
    }
    assert_int_equal(uv_loop_init(&w->loop), 0);
    w->ledger = ledger_new(1 << 14);
    assert_non_null(w->ledger);
    struct httpc_config hc;
    httpc_config_default(&hc);
    hc.max_handles = 600;
    w->httpc = httpc_new(&w->loop, &hc);
    assert_non_null(w->httpc);
    struct health_config hcfg;
    health_config_default(&hcfg);
    hcfg.url[0] = sim_url[0];
    hcfg.url[1] = sim_url[1];
    w->health = health_new(&w->loop, &hcfg, w->httpc);
    assert_non_null(w->health);
    health_set_checker(w->health, true);
    health_start(w->health);
    struct dispatch_config dcfg;
    dispatch_config_default(&dcfg);
    dcfg.url[0] = sim_url[0];
    dcfg.url[1] = sim_url[1];
    dcfg.queue_capacity = 1 << 14;
    w->d = dispatch_new(&w->loop, &dcfg, w->ledger, w->health, w->httpc, emit_cb, w);
    assert_non_null(w->d);
}

static void on_closed(void *arg)
{
}

static void world_down(struct world *w)
{
    dispatch_free(w->d);
    health_close(w->health);
    httpc_close(w->httpc, on_closed, NULL);
    assert_int_equal(uv_run(&w->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&w->loop), 0);
    ledger_free(w->ledger);
}

static void make_id(unsigned i, uint8_t id[16])
{
    /* random high part per run, so that repeated runs never collide */
    static uint32_t salt;
    if (!salt)
        salt = (uint32_t)clock_wall_ms() ^ ((uint32_t)getpid() << 16);
    memset(id, 0, 16);
    memcpy(id, &salt, 4);
    id[6] = 0x40;
    id[8] = 0x80;
    id[12] = (uint8_t)(i >> 24);
    id[13] = (uint8_t)(i >> 16);
    id[14] = (uint8_t)(i >> 8);
    id[15] = (uint8_t)i;
}

static unsigned submit(struct world *w, unsigned n)
{
    unsigned first = w->next_id;
    for (unsigned k = 0; k < n; k++) {
        unsigned i = w->next_id++;
        struct event ev = {.type = EVENT_ACCEPTED,
                           .amount_cents = 1990 + (int64_t)(i % 7),
                           .at_ms = clock_wall_ms()};
        make_id(i, ev.id);
        struct payment *p;
        assert_int_equal(emit_cb(w, &ev, &p), 0);
        assert_int_equal(dispatch_submit(w->d, p), 0);
    }
    return first;
}

static void run_ms(struct world *w, unsigned ms)
{
    int64_t end = clock_wall_ms() + ms;
    while (clock_wall_ms() < end)
        uv_run(&w->loop, UV_RUN_ONCE);
}

static bool run_until_recorded(struct world *w, size_t n, unsigned timeout_ms)
{
    int64_t end = clock_wall_ms() + timeout_ms;
    while (clock_wall_ms() < end) {
        if (ledger_count_state(w->ledger, LEDGER_RECORDED) >= n)
            return true;
        uv_run(&w->loop, UV_RUN_ONCE);
    }
    return ledger_count_state(w->ledger, LEDGER_RECORDED) >= n;
}

/* Our books equal the simulators', and every payment is in exactly one. */
static void check_books(struct world *w, int64_t out_count[2])
{
    struct ledger_totals t;
    ledger_summary(w->ledger, INT64_MIN, INT64_MAX, &t);
    for (int p = 0; p < 2; p++) {
        int64_t c, cents;
        sim_summary(p, &c, &cents);
        assert_int_equal(t.count[p], c);
        assert_int_equal(t.cents[p], cents);
        out_count[p] = c;
    }
    for (unsigned i = 0; i < w->next_id; i++) {
        uint8_t id[16];
        make_id(i, id);
        struct payment *pay = ledger_find(w->ledger, id);
        assert_non_null(pay);
        assert_int_equal(pay->state, LEDGER_RECORDED);
        bool d = sim_has(0, id), f = sim_has(1, id);
        assert_true(d != f);
        assert_int_equal(d ? LEDGER_DEFAULT : LEDGER_FALLBACK, pay->processor);
    }
}

static void test_healthy(void **state)
{
    struct world w;
    world_up(&w);
    submit(&w, 300);
    assert_true(run_until_recorded(&w, 300, 20000));
    int64_t n[2];
    check_books(&w, n);
    assert_int_equal(n[0], 300);
    world_down(&w);
}

static void test_default_failing_uses_fallback(void **state)
{
    struct world w;
    world_up(&w);
    sim_set(0, 0, true);
    submit(&w, 200);
    assert_true(run_until_recorded(&w, 200, 20000));
    int64_t n[2];
    check_books(&w, n);
    assert_int_equal(n[1], 200);
    world_down(&w);
}

static void test_both_failing_held_then_drained(void **state)
{
    struct world w;
    world_up(&w);
    sim_set(0, 0, true);
    sim_set(1, 0, true);
    submit(&w, 150);
    run_ms(&w, 2000);
    assert_int_equal(ledger_count_state(w.ledger, LEDGER_RECORDED), 0);
    struct dispatch_stats st;
    dispatch_get_stats(w.d, &st);
    assert_true(st.hold_episodes >= 1);
    assert_int_equal(st.queued + st.in_flight[0] + st.in_flight[1], 150);
    sim_set(0, 0, false);
    assert_true(run_until_recorded(&w, 150, 20000));
    int64_t n[2];
    check_books(&w, n);
    assert_int_equal(n[0], 150);
    world_down(&w);
}

static void test_default_slow_uses_fallback(void **state)
{
    struct world w;
    world_up(&w);
    sim_set(0, 2000, false);
    submit(&w, 1); /* discovers the slowness: in flight beyond the safe latency */
    run_ms(&w, 1400);
    submit(&w, 200);
    assert_true(run_until_recorded(&w, 201, 20000));
    int64_t n[2];
    check_books(&w, n);
    assert_true(n[0] <= 2); /* the discovering request, maybe one probe */
    assert_true(n[1] >= 199);
    struct dispatch_stats st;
    dispatch_get_stats(w.d, &st);
    unsigned long long unknown = st.unknown[0] + st.unknown[1];
    assert_int_equal(unknown, 0);
    world_down(&w);
}

static void test_500_then_recovers_no_double(void **state)
{
    struct world w;
    world_up(&w);
    sim_set(0, 20, true);
    for (int round = 0; round < 10; round++) {
        submit(&w, 30);
        run_ms(&w, 150);
        if (round == 5)
            sim_set(0, 20, false);
    }
    assert_true(run_until_recorded(&w, 300, 20000));
    int64_t n[2];
    check_books(&w, n);
    assert_int_equal(n[0] + n[1], 300);
    assert_true(n[1] > 0);
    /* back on the default once it is known to have recovered (a probe or the
     * next service-health poll tells) */
    int64_t end = clock_wall_ms() + 8000;
    while (clock_wall_ms() < end && health_view_assess(health_view_of(w.health), LEDGER_DEFAULT,
                                                       uv_now(&w.loop)) != HEALTH_OK)
        uv_run(&w.loop, UV_RUN_ONCE);
    submit(&w, 50);
    assert_true(run_until_recorded(&w, 350, 20000));
    int64_t m[2];
    check_books(&w, m);
    assert_true(m[0] > n[0]);
    world_down(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthy),
        cmocka_unit_test(test_default_failing_uses_fallback),
        cmocka_unit_test(test_both_failing_held_then_drained),
        cmocka_unit_test(test_default_slow_uses_fallback),
        cmocka_unit_test(test_500_then_recovers_no_double),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

#else

static void skipped(void **state)
{
    skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(skipped)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
