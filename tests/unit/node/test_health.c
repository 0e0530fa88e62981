/* The routing policy as a decision table: a hand-written verdict and probe
 * decision for each single-processor situation (checker fresh/stale,
 * failing or not, fast/slow, observed successes/errors, in-flight age, probe
 * timing), then every pair of situations for (default, fallback) checked
 * against the routing rule. Also the latency estimator, the settle time and
 * the remote-view freshness rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "node/health.h"
#include "lib/httpc.h"

#define NOW 1000000u
#define SAFE 1200u

struct scenario {
    const char *name;
    struct health_proc st;
    enum health_verdict verdict;
    bool probe; /* should_probe when it is the default, or when the default is not usable */
};

/* Field shorthands for readability. */
#define CHK(fail, min, age)                                                                        \
    .chk_valid = true, .chk_failing = (fail), .chk_min_ms = (min), .chk_at_ms = NOW - (age)
#define LAT(ms, age) .lat_ms = (ms), .lat_at_ms = NOW - (age)
#define OK_AT(age) .last_ok_ms = NOW - (age), .obs_at_ms = NOW - (age)
#define ERR_AT(n, age) .consec_errors = (n), .last_err_ms = NOW - (age), .obs_at_ms = NOW - (age)
#define INFL(n, age) .in_flight = (n), .oldest_sent_ms = NOW - (age)

static const struct scenario scenarios[] = {
    {"nothing known", {0}, HEALTH_OK, false},
    {"checker fresh, fast", {CHK(false, 5, 1000)}, HEALTH_OK, false},
    {"checker fresh, failing, fast", {CHK(true, 5, 1000)}, HEALTH_FAILING, true},
    {"checker fresh, slow", {CHK(false, 2000, 1000)}, HEALTH_SLOW, false},
    {"checker fresh, failing and slow", {CHK(true, 2000, 1000)}, HEALTH_DOWN, false},
    {"checker stale, slow", {CHK(false, 2000, 20000)}, HEALTH_SLOW, true},
    {"checker stale, failing, fast", {CHK(true, 5, 20000)}, HEALTH_FAILING, true},
    {"checker stale, failing and slow", {CHK(true, 3000, 20000)}, HEALTH_DOWN, true},
    {"checker stale, fast", {CHK(false, 5, 20000)}, HEALTH_OK, false},
    {"observed success, fast", {LAT(50, 100), OK_AT(100)}, HEALTH_OK, false},
    {"observed success, slow", {LAT(1500, 100), OK_AT(100)}, HEALTH_SLOW, false},
    {"observed success, slow, stale", {LAT(1500, 30000), OK_AT(30000)}, HEALTH_SLOW, true},
    {"latency exactly at the threshold", {LAT(SAFE, 100), OK_AT(100)}, HEALTH_OK, false},
    {"latency 1 ms over the threshold", {LAT(SAFE + 1, 100), OK_AT(100)}, HEALTH_SLOW, false},
    {"3 consecutive errors, fast",
     {LAT(50, 100), .last_ok_ms = NOW - 5000, ERR_AT(3, 100)},
     HEALTH_FAILING,
     true},
    {"2 consecutive errors, fast",
     {LAT(50, 100), .last_ok_ms = NOW - 5000, ERR_AT(2, 100)},
     HEALTH_OK,
     false},
    {"3 consecutive errors, slow",
     {LAT(2500, 100), .last_ok_ms = NOW - 5000, ERR_AT(3, 100)},
     HEALTH_DOWN,
     false},
    {"2 errors after checker said failing",
     {CHK(true, 5, 3000), LAT(50, 100), ERR_AT(2, 100)},
     HEALTH_FAILING,
     true},
    {"success after checker said failing",
     {CHK(true, 5, 3000), LAT(40, 100), OK_AT(100)},
     HEALTH_OK,
     false},
    {"checker newer says fine after 5 errors",
     {CHK(false, 5, 100), LAT(50, 3000), ERR_AT(5, 3000)},
     HEALTH_OK,
     false},
    {"checker newer says fast after slow answers",
     {CHK(false, 10, 100), LAT(2000, 3000), OK_AT(3000)},
     HEALTH_OK,
     false},
    {"answers newer say slow after checker said fast",
     {CHK(false, 10, 3000), LAT(2000, 100), OK_AT(100)},
     HEALTH_SLOW,
     false},
    {"fast, one request in flight for 1500 ms",
     {LAT(50, 100), OK_AT(100), INFL(1, 1500)},
     HEALTH_SLOW,
     false},
    {"fast, requests in flight for 500 ms",
     {LAT(50, 100), OK_AT(100), INFL(40, 500)},
     HEALTH_STALLED,
     false},
    {"50 ms, oldest in flight 200 ms (4 x 50: not yet)",
     {LAT(50, 100), OK_AT(100), INFL(3, 200)},
     HEALTH_OK,
     false},
    {"50 ms, oldest in flight 201 ms",
     {LAT(50, 100), OK_AT(100), INFL(3, 201)},
     HEALTH_STALLED,
     false},
    {"10 ms, oldest in flight 150 ms (the floor: not yet)",
     {LAT(10, 100), OK_AT(100), INFL(2, 150)},
     HEALTH_OK,
     false},
    {"10 ms, oldest in flight 151 ms",
     {LAT(10, 100), OK_AT(100), INFL(2, 151)},
     HEALTH_STALLED,
     false},
    {"400 ms, oldest in flight 1100 ms (under 4 x 400)",
     {LAT(400, 100), OK_AT(100), INFL(90, 1100)},
     HEALTH_OK,
     false},
    {"checker 100 ms fresher than answers, oldest in flight 450 ms",
     {CHK(false, 100, 100), LAT(5, 3000), OK_AT(3000), INFL(1, 450)},
     HEALTH_STALLED,
     false},
    {"nothing known, one request in flight for 140 ms", {INFL(1, 140)}, HEALTH_OK, false},
    {"nothing known, one request in flight for 300 ms", {INFL(1, 300)}, HEALTH_STALLED, false},
    {"failing fast, stalled too", {CHK(true, 5, 1000), INFL(1, 400)}, HEALTH_FAILING, false},
    {"nothing known, one request in flight for 1300 ms", {INFL(1, 1300)}, HEALTH_SLOW, false},
    {"failing fast, probed 500 ms ago",
     {CHK(true, 5, 1000), .last_probe_ms = NOW - 500},
     HEALTH_FAILING,
     false},
    {"failing fast, probed 1500 ms ago",
     {CHK(true, 5, 1000), .last_probe_ms = NOW - 1500},
     HEALTH_FAILING,
     true},
    {"failing fast, probe in flight", {CHK(true, 5, 1000), INFL(1, 200)}, HEALTH_FAILING, false},
    {"timed out once (fate unknown)",
     {LAT(10000, 100), .last_ok_ms = NOW - 5000, ERR_AT(1, 100)},
     HEALTH_SLOW,
     false},
};

#define NSCEN (sizeof(scenarios) / sizeof(scenarios[0]))

static void view_with(struct health_view *v, const struct health_proc *d,
                      const struct health_proc *f)
{
    struct health_config cfg;
    health_config_default(&cfg);
    cfg.safe_latency_ms = SAFE;
    health_view_init(v, &cfg);
    v->proc[LEDGER_DEFAULT] = *d;
    v->proc[LEDGER_FALLBACK] = *f;
}

static void test_config_defaults(void **state)
{
    struct health_config cfg;
    health_config_default(&cfg);
    assert_int_equal(cfg.interval_ms, 5000);
    assert_int_equal(cfg.safe_latency_ms, 1200);
    assert_true(cfg.stale_ms > 2 * cfg.interval_ms);
    assert_int_equal(cfg.error_threshold, 3);
    assert_int_equal(cfg.overflow_ms, 1000);
}

/* Each situation alone, as the default (fallback unknown = usable). */
static void test_verdicts(void **state)
{
    struct health_proc none = {0};
    for (size_t i = 0; i < NSCEN; i++) {
        struct health_view v;
        view_with(&v, &scenarios[i].st, &none);
        enum health_verdict got = health_view_assess(&v, LEDGER_DEFAULT, NOW);
        if (got != scenarios[i].verdict)
            fail_msg("%s: verdict %d, want %d", scenarios[i].name, got, scenarios[i].verdict);
        bool probe = health_view_should_probe(&v, LEDGER_DEFAULT, NOW);
        if (probe != scenarios[i].probe)
            fail_msg("%s: probe %d, want %d", scenarios[i].name, probe, scenarios[i].probe);
    }
}

/* Every (default, fallback) pair: the default when usable, hold when it is
 * stalled, else the fallback when usable, else hold; probes of the fallback
 * only when the default is neither usable nor stalled; probes of the default
 * whatever the fallback. */
static void test_pairs(void **state)
{
    unsigned held = 0, to_default = 0, to_fallback = 0;
    for (size_t i = 0; i < NSCEN; i++) {
        for (size_t k = 0; k < NSCEN; k++) {
            const struct scenario *d = &scenarios[i], *f = &scenarios[k];
            struct health_view v;
            view_with(&v, &d->st, &f->st);
            int want = d->verdict == HEALTH_OK        ? LEDGER_DEFAULT
                       : d->verdict == HEALTH_STALLED ? HEALTH_HOLD
                       : f->verdict == HEALTH_OK      ? LEDGER_FALLBACK
                                                      : HEALTH_HOLD;
            int got = health_view_choose(&v, NOW);
            if (got != want)
                fail_msg("default '%s' + fallback '%s': chose %d, want %d", d->name, f->name, got,
                         want);
            held += want == HEALTH_HOLD;
            to_default += want == LEDGER_DEFAULT;
            to_fallback += want == LEDGER_FALLBACK;
            bool pd = health_view_should_probe(&v, LEDGER_DEFAULT, NOW);
            bool pf = health_view_should_probe(&v, LEDGER_FALLBACK, NOW);
            if (pd != d->probe)
                fail_msg("default '%s' + fallback '%s': default probe %d", d->name, f->name, pd);
            bool want_pf = d->verdict != HEALTH_OK && d->verdict != HEALTH_STALLED && f->probe;
            if (pf != want_pf)
                fail_msg("default '%s' + fallback '%s': fallback probe %d", d->name, f->name, pf);
            /* Whatever is chosen is never known to be slow or failing. */
            if (got != HEALTH_HOLD) {
                assert_int_equal(health_view_assess(&v, got, NOW), HEALTH_OK);
                assert_true(health_view_expected_ms(&v, got, NOW) <= SAFE);
            }
        }
    }
    assert_true(held > 0 && to_default > 0 && to_fallback > 0);
}

/* ---- the capacity-aware route (health_view_route()): overflow ---- */

#define BOUND 1000u /* overflow_ms in these rows */

struct route_row {
    const char *name;
    struct health_proc def, fb;
    struct health_load load;
    uint32_t overflow_ms;
    int want;
};

/* Shorthands: a processor observed answering in ms; a load. */
#define ANS(ms) LAT(ms, 100), OK_AT(100)
#define LOAD(q, bd, bf, cd, cf)                                                                    \
    {                                                                                              \
        .queued = (q), .busy = {(bd), (bf)}, .cap = {(cd), (cf) }                                  \
    }

static const struct route_row route_rows[] = {
    /* the default has room: it takes the payment, whatever the queue */
    {"default fast, room", {ANS(5)}, {ANS(5)}, LOAD(10, 0, 0, 250, 250), BOUND, LEDGER_DEFAULT},
    {"default 1 s, room, long queue",
     {ANS(1000)},
     {ANS(5)},
     LOAD(5000, 249, 0, 250, 250),
     BOUND,
     LEDGER_DEFAULT},
    /* the default full: wait while the queue drains within the bound */
    {"default fast, full, short drain",
     {ANS(5)},
     {ANS(5)},
     LOAD(1000, 250, 0, 250, 250),
     BOUND,
     HEALTH_WAIT},
    {"default 1 s, full, drain 1000 ms = bound",
     {ANS(1000)},
     {ANS(5)},
     LOAD(250, 250, 0, 250, 250),
     BOUND,
     HEALTH_WAIT},
    {"default 1 s, full, drain 1004 ms > bound",
     {ANS(1000)},
     {ANS(5)},
     LOAD(251, 250, 0, 250, 250),
     BOUND,
     LEDGER_FALLBACK},
    {"default 500 ms, full, 2000 queued: drain 4 s",
     {ANS(500)},
     {ANS(5)},
     LOAD(2000, 250, 10, 250, 250),
     BOUND,
     LEDGER_FALLBACK},
    {"default 500 ms, cap 400, 600 queued: drain 750 ms",
     {ANS(500)},
     {ANS(5)},
     LOAD(600, 400, 0, 400, 400),
     BOUND,
     HEALTH_WAIT},
    {"default at the safe limit, full, long queue",
     {ANS(SAFE)},
     {ANS(5)},
     LOAD(1000, 250, 0, 250, 250),
     BOUND,
     LEDGER_FALLBACK},
    {"default 300 ms by its estimate, in flight for 900 ms, full",
     {ANS(300), INFL(250, 900)},
     {ANS(5)},
     LOAD(300, 250, 0, 250, 250),
     BOUND,
     LEDGER_FALLBACK},
    {"default 5 ms by its estimate, in flight for 900 ms (stalled), full",
     {ANS(5), INFL(250, 900)},
     {ANS(5)},
     LOAD(300, 250, 0, 250, 250),
     BOUND,
     HEALTH_HOLD},
    /* overflow only to a fallback that is safe, and has room */
    {"overflow wanted, fallback slow",
     {ANS(1000)},
     {ANS(1500)},
     LOAD(2000, 250, 0, 250, 250),
     BOUND,
     HEALTH_WAIT},
    {"overflow wanted, fallback failing",
     {ANS(1000)},
     {CHK(true, 5, 1000)},
     LOAD(2000, 250, 0, 250, 250),
     BOUND,
     HEALTH_WAIT},
    {"overflow wanted, fallback failing and slow",
     {ANS(1000)},
     {CHK(true, 3000, 1000)},
     LOAD(2000, 250, 0, 250, 250),
     BOUND,
     HEALTH_WAIT},
    {"overflow wanted, fallback request in flight for 1300 ms",
     {ANS(1000)},
     {ANS(5), INFL(3, 1300)},
     LOAD(2000, 250, 3, 250, 250),
     BOUND,
     HEALTH_WAIT},
    {"overflow wanted, fallback full",
     {ANS(1000)},
     {ANS(5)},
     LOAD(2000, 250, 250, 250, 250),
     BOUND,
     HEALTH_WAIT},
    {"overflow wanted, fallback 1 s with room",
     {ANS(1000)},
     {ANS(1000)},
     LOAD(2000, 250, 100, 250, 250),
     BOUND,
     LEDGER_FALLBACK},
    {"overflow wanted, nothing known of the fallback",
     {ANS(1000)},
     {0},
     LOAD(2000, 250, 0, 250, 250),
     BOUND,
     LEDGER_FALLBACK},
    /* overflow off: the previous policy (hold at the default's cap) */
    {"overflow off, default 1 s, full, long queue",
     {ANS(1000)},
     {ANS(5)},
     LOAD(5000, 250, 0, 250, 250),
     0,
     HEALTH_WAIT},
    /* the default not usable: the fallback as before, if it has room */
    {"default slow, fallback room",
     {ANS(1500)},
     {ANS(5)},
     LOAD(1, 0, 0, 250, 250),
     BOUND,
     LEDGER_FALLBACK},
    {"default slow, fallback full",
     {ANS(1500)},
     {ANS(5)},
     LOAD(5000, 0, 250, 250, 250),
     BOUND,
     HEALTH_WAIT},
    {"default failing, fallback room",
     {CHK(true, 5, 1000)},
     {ANS(5)},
     LOAD(1, 0, 0, 250, 250),
     BOUND,
     LEDGER_FALLBACK},
    {"both slow: hold", {ANS(1500)}, {ANS(1500)}, LOAD(5000, 0, 0, 250, 250), BOUND, HEALTH_HOLD},
    {"default failing, fallback slow: hold",
     {CHK(true, 5, 1000)},
     {ANS(2000)},
     LOAD(5000, 0, 0, 250, 250),
     BOUND,
     HEALTH_HOLD},
};

#define NROUTE (sizeof(route_rows) / sizeof(route_rows[0]))

static void test_route_table(void **state)
{
    for (size_t i = 0; i < NROUTE; i++) {
        const struct route_row *r = &route_rows[i];
        struct health_view v;
        view_with(&v, &r->def, &r->fb);
        v.overflow_ms = r->overflow_ms;
        int got = health_view_route(&v, &r->load, NOW);
        if (got != r->want)
            fail_msg("%s: route %d, want %d", r->name, got, r->want);
    }
}

static void test_capacity_and_drain(void **state)
{
    struct health_proc d = {ANS(1000)}, f = {ANS(5)}, none = {0};
    struct health_view v;
    view_with(&v, &d, &f);
    /* Little's law: 250 in flight at 1 s each is 250 payments/s */
    assert_int_equal(health_view_capacity_per_s(&v, LEDGER_DEFAULT, 250, NOW), 250);
    assert_int_equal(health_view_capacity_per_s(&v, LEDGER_FALLBACK, 250, NOW), 50000);
    struct health_load l = LOAD(500, 250, 0, 250, 250);
    assert_int_equal(health_view_drain_ms(&v, &l, NOW), 2000);
    /* nothing known: latency taken as 1 ms, never a division by zero */
    view_with(&v, &none, &none);
    assert_int_equal(health_view_capacity_per_s(&v, LEDGER_DEFAULT, 400, NOW), 400000);
    assert_int_equal(health_view_drain_ms(&v, &l, NOW), 2);
}

/* Every (default, fallback) pair of the single-processor table, under loads
 * from idle to a long queue with either side full: the route never picks a
 * processor that is not usable or that is full; with overflow off it is the
 * previous policy (health_view_choose(), or wait at the cap); it picks the
 * fallback over a usable default only when the default is full and its drain
 * time exceeds the bound. */
static void test_route_pairs(void **state)
{
    static const struct health_load loads[] = {
        LOAD(0, 0, 0, 250, 250),      LOAD(10, 100, 0, 250, 250),     LOAD(200, 250, 0, 250, 250),
        LOAD(5000, 250, 0, 250, 250), LOAD(5000, 250, 250, 250, 250), LOAD(5000, 0, 250, 250, 250),
        LOAD(800, 400, 30, 400, 400),
    };
    static const uint32_t bounds[] = {0, 250, BOUND, 3000};
    unsigned overflowed = 0;
    for (size_t i = 0; i < NSCEN; i++) {
        for (size_t k = 0; k < NSCEN; k++) {
            for (size_t li = 0; li < sizeof(loads) / sizeof(loads[0]); li++) {
                for (size_t bi = 0; bi < sizeof(bounds) / sizeof(bounds[0]); bi++) {
                    const struct health_load *l = &loads[li];
                    struct health_view v;
                    view_with(&v, &scenarios[i].st, &scenarios[k].st);
                    v.overflow_ms = bounds[bi];
                    int choice = health_view_choose(&v, NOW);
                    int got = health_view_route(&v, l, NOW);
                    if (got == LEDGER_DEFAULT || got == LEDGER_FALLBACK) {
                        assert_int_equal(health_view_assess(&v, got, NOW), HEALTH_OK);
                        assert_true(l->busy[got] < l->cap[got]);
                    }
                    if (choice == HEALTH_HOLD) {
                        assert_int_equal(got, HEALTH_HOLD);
                        continue;
                    }
                    bool overflow = choice == LEDGER_DEFAULT && got == LEDGER_FALLBACK;
                    if (bounds[bi] == 0)
                        assert_int_equal(got,
                                         l->busy[choice] < l->cap[choice] ? choice : HEALTH_WAIT);
                    if (overflow) {
                        assert_true(l->busy[LEDGER_DEFAULT] >= l->cap[LEDGER_DEFAULT]);
                        assert_true(health_view_drain_ms(&v, l, NOW) > bounds[bi]);
                        overflowed++;
                    }
                }
            }
        }
    }
    assert_true(overflowed > 0);
}

static void test_observe_estimator(void **state)
{
    struct health_view v;
    struct health_proc none = {0};
    view_with(&v, &none, &none);
    uint64_t t = 5000;
    health_view_observe(&v, 0, HEALTH_OBS_OK, 20, t);
    assert_int_equal(v.proc[0].lat_ms, 20);
    /* one slow answer: up at once */
    health_view_observe(&v, 0, HEALTH_OBS_OK, 1800, ++t);
    assert_int_equal(v.proc[0].lat_ms, 1800);
    assert_int_equal(health_view_assess(&v, 0, t), HEALTH_SLOW);
    /* fast answers bring it down gradually: 1800 -> 1355 -> ... */
    health_view_observe(&v, 0, HEALTH_OBS_OK, 20, ++t);
    assert_int_equal(v.proc[0].lat_ms, 1800 - 1780 / 4);
    for (int i = 0; i < 40; i++)
        health_view_observe(&v, 0, HEALTH_OBS_OK, 20, ++t);
    assert_int_equal(v.proc[0].lat_ms, 20);
    assert_int_equal(health_view_assess(&v, 0, t), HEALTH_OK);
    /* errors: 429 and not-sent count, carry no latency */
    health_view_observe(&v, 0, HEALTH_OBS_BUSY, 0, ++t);
    health_view_observe(&v, 0, HEALTH_OBS_NOT_SENT, 0, ++t);
    assert_int_equal(v.proc[0].lat_ms, 20);
    assert_int_equal(health_view_assess(&v, 0, t), HEALTH_OK);
    health_view_observe(&v, 0, HEALTH_OBS_FAIL, 30, ++t);
    assert_int_equal(v.proc[0].consec_errors, 3);
    assert_int_equal(health_view_assess(&v, 0, t), HEALTH_FAILING);
    assert_int_equal(health_view_choose(&v, t), LEDGER_FALLBACK);
    health_view_observe(&v, 0, HEALTH_OBS_OK, 30, ++t);
    assert_int_equal(v.proc[0].consec_errors, 0);
    assert_int_equal(health_view_choose(&v, t), LEDGER_DEFAULT);
}

static void test_settle(void **state)
{
    struct health_view v;
    struct health_proc none = {0};
    view_with(&v, &none, &none);
    assert_int_equal(health_view_settle_ms(&v, 1, 1000), 0);
    health_view_observe(&v, 1, HEALTH_OBS_OK, 900, 1000);
    for (int i = 0; i < 30; i++)
        health_view_observe(&v, 1, HEALTH_OBS_OK, 10, 1001 + (uint64_t)i);
    /* the peak stays for a minute although the estimate came down */
    assert_int_equal(health_view_settle_ms(&v, 1, 2000), 900);
    assert_int_equal(health_view_settle_ms(&v, 1, 1000 + HEALTH_PEAK_WINDOW_MS + 1), 10);
    health_view_checker(&v, 1, false, 1500, 3000, true);
    assert_int_equal(health_view_settle_ms(&v, 1, 3000), 1500);
}

static void test_remote_freshness(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct httpc_config hc;
    httpc_config_default(&hc);
    struct httpc *c = httpc_new(&loop, &hc);
    assert_non_null(c);
    struct health_config cfg;
    health_config_default(&cfg);
    cfg.url[0] = "http://127.0.0.1:1";
    cfg.url[1] = "http://127.0.0.1:2";
    cfg.interval_ms = 10; /* raised to 5000 */
    struct health *h = health_new(&loop, &cfg, c);
    assert_non_null(h);
    assert_false(health_is_checker(h));
    uv_update_time(&loop);
    uint64_t now = uv_now(&loop);

    bool failing;
    uint32_t min_ms, age;
    assert_false(health_local_result(h, 0, &failing, &min_ms, &age));
    health_apply_remote(h, 0, true, 30, 100);
    struct health_view *v = health_view_of(h);
    assert_true(v->proc[0].chk_valid && v->proc[0].chk_failing);
    assert_int_equal(health_choose(h, now), LEDGER_FALLBACK);
    /* an older remote answer does not replace a newer one */
    health_apply_remote(h, 0, false, 30, 4000);
    assert_true(v->proc[0].chk_failing);
    /* a newer one does */
    health_apply_remote(h, 0, false, 30, 0);
    assert_false(v->proc[0].chk_failing);
    assert_int_equal(health_choose(h, now), LEDGER_DEFAULT);
    /* remote results are not re-shared as ours */
    assert_false(health_local_result(h, 0, &failing, &min_ms, &age));
    health_view_checker(v, 1, false, 7, now, true);
    assert_true(health_local_result(h, 1, &failing, &min_ms, &age));
    assert_int_equal(min_ms, 7);

    health_close(h);
    httpc_close(c, NULL, NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults), cmocka_unit_test(test_verdicts),
        cmocka_unit_test(test_pairs),           cmocka_unit_test(test_observe_estimator),
        cmocka_unit_test(test_settle),          cmocka_unit_test(test_remote_freshness),
        cmocka_unit_test(test_route_table),     cmocka_unit_test(test_capacity_and_drain),
        cmocka_unit_test(test_route_pairs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
