/* Health view of the two processors and the routing policy (pure functions
 * over struct health_view), plus the service-health poller that feeds the
 * view when this node is the checker. It sends no payments: dispatch asks
 * health_choose()/health_view_should_probe() and reports what it observes.
 * See docs/ROUTING.md for the reasoning behind every threshold. */
#include "node/health.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/container.h"
#include "lib/httpc.h"
#include "lib/log.h"
#include "node/processor.h"

#define HEALTH_MAGIC 0x484c5448u /* "HLTH" */
#define HEALTH_URL_MAX 320
#define HEALTH_MIN_INTERVAL_MS 5000
/* The processor allows one call per 5 s fixed window: polling a little later
 * than the window keeps clock drift from turning every other poll into 429. */
#define HEALTH_INTERVAL_SLACK_MS 100
/* A service-health answer slower than this was queued by the processor. */
#define HEALTH_LATE_US 1000000u

void health_config_default(struct health_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->interval_ms = 5000;
    /* Longer than the processor's 5 s window: a call that found the window's
     * slot taken is queued and answered when the next window opens. Timing it
     * out earlier loses that answer while it still uses up the next window's
     * slot, so every later poll would queue again: a chain of "no answer". */
    cfg->poll_timeout_ms = 6000;
    cfg->safe_latency_ms = 1200;
    cfg->stale_ms = 11000;
    cfg->error_threshold = 3;
    cfg->probe_interval_ms = 1000;
    /* At the end of a run the queue then empties within overflow + the
     * default's latency (at most SAFE_LATENCY_MS): 2.2 s, inside the 3 s the
     * summaries come after; docs/ROUTING.md, "Overload", and
     * docs/BENCHMARKS.md §6 for the measurement. */
    cfg->overflow_ms = 1000;
}

/* ---------------- pure policy ---------------- */

void health_view_init(struct health_view *v, const struct health_config *cfg)
{
    memset(v, 0, sizeof(*v));
    v->safe_latency_ms = cfg->safe_latency_ms;
    v->stale_ms = cfg->stale_ms;
    v->error_threshold = cfg->error_threshold ? cfg->error_threshold : 1;
    v->probe_interval_ms = cfg->probe_interval_ms;
    v->overflow_ms = cfg->overflow_ms;
}

static void sample_latency(struct health_proc *pr, uint32_t s, uint64_t now_ms)
{
    /* Up at once (a slow processor must be avoided from its first slow
     * answer), down gradually (one fast answer among slow ones proves little). */
    if (pr->lat_at_ms == 0 || s >= pr->lat_ms)
        pr->lat_ms = s;
    else
        pr->lat_ms -= (pr->lat_ms - s) / 4 + ((pr->lat_ms - s) % 4 != 0);
    pr->lat_at_ms = now_ms;
    if (s >= pr->peak_ms || now_ms - pr->peak_at_ms > HEALTH_PEAK_WINDOW_MS) {
        pr->peak_ms = s;
        pr->peak_at_ms = now_ms;
    }
}

void health_view_observe(struct health_view *v, int p, enum health_obs kind, uint32_t latency_ms,
                         uint64_t now_ms)
{
    assert(p >= 0 && p < LEDGER_NPROC);
    struct health_proc *pr = &v->proc[p];
    if (now_ms == 0)
        now_ms = 1; /* 0 means "never" in the view */
    pr->obs_at_ms = now_ms;
    switch (kind) {
    case HEALTH_OBS_OK:
        pr->last_ok_ms = now_ms;
        pr->consec_errors = 0;
        sample_latency(pr, latency_ms, now_ms);
        break;
    case HEALTH_OBS_FAIL:
    case HEALTH_OBS_UNKNOWN:
        pr->last_err_ms = now_ms;
        pr->consec_errors++;
        sample_latency(pr, latency_ms, now_ms);
        break;
    case HEALTH_OBS_BUSY:
    case HEALTH_OBS_NOT_SENT:
        pr->last_err_ms = now_ms;
        pr->consec_errors++;
        break;
    }
}

void health_view_checker(struct health_view *v, int p, bool failing, uint32_t min_ms,
                         uint64_t checked_at_ms, bool local)
{
    assert(p >= 0 && p < LEDGER_NPROC);
    struct health_proc *pr = &v->proc[p];
    pr->chk_valid = true;
    pr->chk_local = local;
    pr->chk_failing = failing;
    pr->chk_min_ms = min_ms;
    pr->chk_at_ms = checked_at_ms ? checked_at_ms : 1;
}

/* The latency that answers and the checker show, without the in-flight age:
 * the fresher of the two; 0 when nothing is known. */
static uint32_t answered_ms(const struct health_proc *pr)
{
    if (pr->lat_at_ms != 0 && pr->chk_valid)
        return pr->lat_at_ms >= pr->chk_at_ms ? pr->lat_ms : pr->chk_min_ms;
    if (pr->lat_at_ms != 0)
        return pr->lat_ms;
    if (pr->chk_valid)
        return pr->chk_min_ms;
    return 0;
}

/* The oldest request in flight is far older than the latency answered. */
static bool stalled(const struct health_proc *pr, uint64_t now_ms)
{
    if (pr->in_flight == 0 || now_ms <= pr->oldest_sent_ms)
        return false;
    uint64_t bound = (uint64_t)answered_ms(pr) * HEALTH_STALL_FACTOR;
    if (bound < HEALTH_STALL_MIN_MS)
        bound = HEALTH_STALL_MIN_MS;
    return now_ms - pr->oldest_sent_ms > bound;
}

uint32_t health_view_expected_ms(const struct health_view *v, int p, uint64_t now_ms)
{
    const struct health_proc *pr = &v->proc[p];
    uint32_t e = answered_ms(pr);
    if (pr->in_flight > 0 && now_ms > pr->oldest_sent_ms) {
        uint64_t age = now_ms - pr->oldest_sent_ms;
        if (age > e)
            e = age > UINT32_MAX ? UINT32_MAX : (uint32_t)age;
    }
    return e;
}

static bool is_failing(const struct health_view *v, const struct health_proc *pr)
{
    bool chk = pr->chk_valid && pr->chk_failing;
    bool obs_fresher = pr->obs_at_ms != 0 && (!pr->chk_valid || pr->obs_at_ms > pr->chk_at_ms);
    if (!obs_fresher)
        return chk;
    if (pr->last_ok_ms >= pr->last_err_ms)
        return false; /* the latest thing we saw was a success */
    return pr->consec_errors >= v->error_threshold || chk;
}

static bool latency_stale(const struct health_view *v, const struct health_proc *pr,
                          uint64_t now_ms)
{
    uint64_t newest = pr->lat_at_ms;
    if (pr->chk_valid && pr->chk_at_ms > newest)
        newest = pr->chk_at_ms;
    return newest == 0 || now_ms - newest > v->stale_ms;
}

enum health_verdict health_view_assess(const struct health_view *v, int p, uint64_t now_ms)
{
    assert(p >= 0 && p < LEDGER_NPROC);
    const struct health_proc *pr = &v->proc[p];
    bool failing = is_failing(v, pr);
    bool slow = health_view_expected_ms(v, p, now_ms) > v->safe_latency_ms;
    if (failing && slow)
        return HEALTH_DOWN;
    if (failing)
        return HEALTH_FAILING;
    if (slow)
        return HEALTH_SLOW;
    if (stalled(pr, now_ms))
        return HEALTH_STALLED;
    return HEALTH_OK;
}

int health_view_choose(const struct health_view *v, uint64_t now_ms)
{
    enum health_verdict d = health_view_assess(v, LEDGER_DEFAULT, now_ms);
    if (d == HEALTH_OK)
        return LEDGER_DEFAULT;
    if (d == HEALTH_STALLED)
        return HEALTH_HOLD; /* wait for its answers or for the safe latency to pass */
    if (health_view_assess(v, LEDGER_FALLBACK, now_ms) == HEALTH_OK)
        return LEDGER_FALLBACK;
    return HEALTH_HOLD;
}

uint32_t health_view_capacity_per_s(const struct health_view *v, int p, uint32_t cap,
                                    uint64_t now_ms)
{
    assert(p >= 0 && p < LEDGER_NPROC);
    uint64_t e = health_view_expected_ms(v, p, now_ms);
    if (e == 0)
        e = 1;
    uint64_t r = (uint64_t)cap * 1000 / e;
    return r > UINT32_MAX ? UINT32_MAX : (uint32_t)r;
}

uint64_t health_view_drain_ms(const struct health_view *v, const struct health_load *l,
                              uint64_t now_ms)
{
    assert(l->cap[LEDGER_DEFAULT] > 0);
    uint64_t e = health_view_expected_ms(v, LEDGER_DEFAULT, now_ms);
    if (e == 0)
        e = 1;
    return (uint64_t)l->queued * e / l->cap[LEDGER_DEFAULT];
}

static bool has_room_for(const struct health_load *l, int p)
{
    return l->busy[p] < l->cap[p];
}

int health_view_route(const struct health_view *v, const struct health_load *l, uint64_t now_ms)
{
    int p = health_view_choose(v, now_ms);
    if (p == HEALTH_HOLD)
        return HEALTH_HOLD;
    if (has_room_for(l, p))
        return p;
    if (p != LEDGER_DEFAULT || v->overflow_ms == 0)
        return HEALTH_WAIT;
    /* The default is usable but full: a queued payment waits about
     * queued * latency / cap for it. Past the bound, the fallback takes the
     * excess, if it is itself safe (never an unknown fate the audit can see). */
    if (health_view_drain_ms(v, l, now_ms) > v->overflow_ms &&
        health_view_assess(v, LEDGER_FALLBACK, now_ms) == HEALTH_OK &&
        has_room_for(l, LEDGER_FALLBACK))
        return LEDGER_FALLBACK;
    return HEALTH_WAIT;
}

bool health_view_should_probe(const struct health_view *v, int p, uint64_t now_ms)
{
    assert(p >= 0 && p < LEDGER_NPROC);
    const struct health_proc *pr = &v->proc[p];
    if (health_view_assess(v, p, now_ms) == HEALTH_OK)
        return false; /* usable: it gets real traffic, no probe needed */
    enum health_verdict d = health_view_assess(v, LEDGER_DEFAULT, now_ms);
    if (p == LEDGER_FALLBACK && (d == HEALTH_OK || d == HEALTH_STALLED))
        return false; /* the fallback is not needed while the default works (or may) */
    if (pr->in_flight > 0)
        return false; /* an answer is on its way: wait for it */
    if (pr->last_probe_ms != 0 && now_ms - pr->last_probe_ms < v->probe_interval_ms)
        return false;
    bool slow = health_view_expected_ms(v, p, now_ms) > v->safe_latency_ms;
    return !slow || latency_stale(v, pr, now_ms);
}

uint32_t health_view_settle_ms(const struct health_view *v, int p, uint64_t now_ms)
{
    const struct health_proc *pr = &v->proc[p];
    uint32_t s = 0;
    if (pr->peak_at_ms != 0 && now_ms - pr->peak_at_ms <= HEALTH_PEAK_WINDOW_MS)
        s = pr->peak_ms;
    if (pr->lat_ms > s)
        s = pr->lat_ms;
    if (pr->chk_valid && pr->chk_min_ms > s)
        s = pr->chk_min_ms;
    return s;
}

/* ---------------- poller ---------------- */

struct health {
    uint32_t magic;
    uv_loop_t *loop;
    struct httpc *httpc;
    uv_timer_t timer;
    struct health_view view;
    char url[LEDGER_NPROC][HEALTH_URL_MAX]; /* full service-health URLs */
    struct health_poll {
        struct health *h;
        int proc;
        bool busy;
    } poll[LEDGER_NPROC];
    unsigned interval_ms;
    unsigned poll_timeout_ms;
    bool checker;
    bool closing;
    bool timer_closed;
    struct health_stats stats;
    /* Last verdicts and decision logged, so that changes are logged once.
     * Mutable from the const choose(): logging is not part of the view. */
    int logged_verdict[LEDGER_NPROC];
    int logged_choice;
};

#define HEALTH_CHECK(h) assert((h) != NULL && (h)->magic == HEALTH_MAGIC)

struct health *health_new(uv_loop_t *loop, const struct health_config *cfg, struct httpc *httpc)
{
    char url[LEDGER_NPROC][HEALTH_URL_MAX];
    for (int p = 0; p < LEDGER_NPROC; p++) {
        if (!cfg->url[p] || !cfg->url[p][0] ||
            processor_url(url[p], sizeof(url[p]), cfg->url[p], PROCESSOR_URL_HEALTH, NULL) < 0)
            return NULL;
    }
    struct health *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->magic = HEALTH_MAGIC;
    h->logged_choice = LEDGER_DEFAULT; /* the start assumption: all ok, default first */
    h->loop = loop;
    h->httpc = httpc;
    health_view_init(&h->view, cfg);
    h->interval_ms =
        cfg->interval_ms < HEALTH_MIN_INTERVAL_MS ? HEALTH_MIN_INTERVAL_MS : cfg->interval_ms;
    h->poll_timeout_ms = cfg->poll_timeout_ms ? cfg->poll_timeout_ms : 6000;
    for (int p = 0; p < LEDGER_NPROC; p++) {
        memcpy(h->url[p], url[p], sizeof(h->url[p]));
        h->poll[p].h = h;
        h->poll[p].proc = p;
    }
    uv_timer_init(loop, &h->timer);
    return h;
}

static void health_maybe_free(struct health *h)
{
    if (!h->closing || !h->timer_closed)
        return;
    for (int p = 0; p < LEDGER_NPROC; p++)
        if (h->poll[p].busy)
            return;
    h->magic = 0;
    free(h);
}

static void on_health_timer(uv_timer_t *t);

static void on_poll_done(void *arg, const struct httpc_result *res)
{
    struct health_poll *hp = arg;
    struct health *h = hp->h;
    HEALTH_CHECK(h);
    hp->busy = false;
    if (h->closing) {
        health_maybe_free(h);
        return;
    }
    /* An answer that took long was queued by the processor behind a used
     * window (it answers queued calls when the next window opens), and no
     * answer may mean the same. Either way the next poll must come a whole
     * period after now, not on the old cadence, or it lands in a window that
     * is already spoken for, queues again, and the polls never catch up. */
    if (h->checker && (res->outcome != HTTPC_OK || res->elapsed_us > HEALTH_LATE_US)) {
        uint64_t period = h->interval_ms + HEALTH_INTERVAL_SLACK_MS;
        uv_timer_start(&h->timer, on_health_timer, period, period);
        h->stats.realigned++;
    }
    bool failing;
    uint32_t min_ms;
    if (res->outcome == HTTPC_OK && res->status == 200 &&
        processor_parse_health(res->body, res->body_len, &failing, &min_ms)) {
        h->stats.poll_ok++;
        health_view_checker(&h->view, hp->proc, failing, min_ms, uv_now(h->loop), true);
        log_debug("health", "%s: failing=%d minResponseTime=%u", hp->proc ? "fallback" : "default",
                  (int)failing, min_ms);
        return;
    }
    /* 429 (someone polled within the window) and everything else: no news. */
    h->stats.poll_no_news++;
    if (res->outcome != HTTPC_OK || res->status != 429)
        log_warn("health", "service-health of %s: no answer (outcome %d, status %d)",
                 hp->proc ? "fallback" : "default", (int)res->outcome, res->status);
}

static void on_health_timer(uv_timer_t *t)
{
    struct health *h = container_of(t, struct health, timer);
    HEALTH_CHECK(h);
    if (!h->checker || h->closing)
        return;
    for (int p = 0; p < LEDGER_NPROC; p++) {
        struct health_poll *hp = &h->poll[p];
        if (hp->busy)
            continue;
        int rv = httpc_request(h->httpc, "GET", h->url[p], NULL, NULL, 0, h->poll_timeout_ms,
                               on_poll_done, hp);
        if (rv != 0) {
            h->stats.poll_no_news++;
            log_warn("health", "service-health request not started: %d", rv);
            continue;
        }
        hp->busy = true;
        h->stats.polls++;
    }
}

void health_start(struct health *h)
{
    HEALTH_CHECK(h);
    uv_timer_start(&h->timer, on_health_timer, 0, h->interval_ms + HEALTH_INTERVAL_SLACK_MS);
}

void health_set_checker(struct health *h, bool checker)
{
    HEALTH_CHECK(h);
    if (checker == h->checker)
        return;
    h->checker = checker;
    log_info("health", "checker role %s", checker ? "taken" : "released");
    if (!checker || !uv_is_active((uv_handle_t *)&h->timer))
        return;
    /* A new checker keeps the previous one's cadence: it polls one interval
     * after the newest poll it knows of (its own or the peer's, from gossip),
     * or at once if it knows of none. Polling earlier would fall in the same
     * rate-limit window and get 429 (or queue behind it). */
    uint64_t now = uv_now(h->loop), last = 0;
    for (int p = 0; p < LEDGER_NPROC; p++)
        if (h->view.proc[p].chk_valid && h->view.proc[p].chk_at_ms > last)
            last = h->view.proc[p].chk_at_ms;
    uint64_t period = h->interval_ms + HEALTH_INTERVAL_SLACK_MS;
    uint64_t delay = last != 0 && last + period > now ? last + period - now : 0;
    uv_timer_start(&h->timer, on_health_timer, delay, period);
}

bool health_is_checker(const struct health *h)
{
    HEALTH_CHECK(h);
    return h->checker;
}

void health_apply_remote(struct health *h, int p, bool failing, uint32_t min_ms, uint32_t age_ms)
{
    HEALTH_CHECK(h);
    if (p < 0 || p >= LEDGER_NPROC)
        return;
    uint64_t now = uv_now(h->loop);
    uint64_t at = now > age_ms ? now - age_ms : 1;
    struct health_proc *pr = &h->view.proc[p];
    if (pr->chk_valid && pr->chk_at_ms >= at)
        return;
    health_view_checker(&h->view, p, failing, min_ms, at, false);
}

bool health_local_result(const struct health *h, int p, bool *failing, uint32_t *min_ms,
                         uint32_t *age_ms)
{
    HEALTH_CHECK(h);
    if (p < 0 || p >= LEDGER_NPROC)
        return false;
    const struct health_proc *pr = &h->view.proc[p];
    if (!pr->chk_valid || !pr->chk_local)
        return false;
    uint64_t age = uv_now(h->loop) - pr->chk_at_ms;
    *failing = pr->chk_failing;
    *min_ms = pr->chk_min_ms;
    *age_ms = age > UINT32_MAX ? UINT32_MAX : (uint32_t)age;
    return true;
}

struct health_view *health_view_of(struct health *h)
{
    HEALTH_CHECK(h);
    return &h->view;
}

const struct health_view *health_view_get(const struct health *h)
{
    HEALTH_CHECK(h);
    return &h->view;
}

void health_observe(struct health *h, int p, enum health_obs kind, uint32_t latency_ms,
                    uint64_t now_ms)
{
    HEALTH_CHECK(h);
    health_view_observe(&h->view, p, kind, latency_ms, now_ms);
}

void health_set_in_flight(struct health *h, int p, uint32_t n, uint64_t oldest_sent_ms)
{
    HEALTH_CHECK(h);
    assert(p >= 0 && p < LEDGER_NPROC);
    h->view.proc[p].in_flight = n;
    h->view.proc[p].oldest_sent_ms = oldest_sent_ms;
}

void health_probe_sent(struct health *h, int p, uint64_t now_ms)
{
    HEALTH_CHECK(h);
    assert(p >= 0 && p < LEDGER_NPROC);
    h->view.proc[p].last_probe_ms = now_ms;
}

static const char *verdict_name(int v)
{
    static const char *const names[] = {"ok", "failing", "slow", "down", "stalled"};
    return v >= 0 && v <= HEALTH_STALLED ? names[v] : "?";
}

static const char *choice_name(int c)
{
    return c == LEDGER_DEFAULT ? "default" : c == LEDGER_FALLBACK ? "fallback" : "hold";
}

/* Logs processor health and routing changes (once per change). */
static void log_changes(struct health *h, int choice, uint64_t now_ms)
{
    for (int p = 0; p < LEDGER_NPROC; p++) {
        int v = (int)health_view_assess(&h->view, p, now_ms);
        if (v != h->logged_verdict[p]) {
            log_fields(LOG_INFO, "health", "processor health changed",
                       "\"processor\":\"%s\",\"from\":\"%s\",\"to\":\"%s\",\"expectedMs\":%u",
                       p == LEDGER_DEFAULT ? "default" : "fallback",
                       verdict_name(h->logged_verdict[p]), verdict_name(v),
                       health_view_expected_ms(&h->view, p, now_ms));
            h->logged_verdict[p] = v;
        }
    }
    if (choice != h->logged_choice) {
        log_fields(LOG_INFO, "health", "routing changed", "\"from\":\"%s\",\"to\":\"%s\"",
                   choice_name(h->logged_choice), choice_name(choice));
        h->logged_choice = choice;
    }
}

int health_choose(const struct health *h, uint64_t now_ms)
{
    HEALTH_CHECK(h);
    int choice = health_view_choose(&h->view, now_ms);
    log_changes((struct health *)h, choice, now_ms);
    return choice;
}

void health_get_stats(const struct health *h, struct health_stats *out)
{
    HEALTH_CHECK(h);
    *out = h->stats;
}

static void on_timer_closed(uv_handle_t *hd)
{
    struct health *h = container_of((uv_timer_t *)hd, struct health, timer);
    HEALTH_CHECK(h);
    h->timer_closed = true;
    health_maybe_free(h);
}

void health_close(struct health *h)
{
    if (!h)
        return;
    HEALTH_CHECK(h);
    assert(!h->closing);
    h->closing = true;
    uv_close((uv_handle_t *)&h->timer, on_timer_closed);
}
