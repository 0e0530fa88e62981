/* The driver: setup (token, purges), the load phase (virtual users ramping
 * 1 -> N, each posting one payment then sleeping 1 s on its own keep-alive
 * connection; or an open-loop fixed-rate sender), the processors' schedule, the
 * auditor, a timerfd loop-lag probe, then drain and the final summaries. One
 * libuv loop, no threads; latencies go to fixed histograms (no allocation per
 * request; the accepted-id buffer grows geometrically). */
#include "run.h"

#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "lib/container.h"
#include "lib/clock.h"
#include "lib/httpc.h"
#include "lib/json.h"
#include "lib/uuid.h"
#include "live.h"
#include "rng.h"

#define RUN_MAGIC 0x4c47524eu
#define VU_MAGIC 0x4c475655u
#define OP_MAGIC 0x4c474f50u

#define LG_MAX_OPS 96       /* admin/audit/schedule calls in flight at once */
#define LG_EXTRA_HANDLES 64 /* httpc handles beyond the payment senders */
#define LG_RATE_MAX_SLOTS 4096
#define LG_LAG_PERIOD_NS UINT64_C(10000000) /* loop-lag probe period: 10 ms */
#define LG_VU_SLEEP_MS 1000
#define LG_TICK_VU_MS 10      /* ramp granularity */
#define LG_TICK_RATE_MS 1     /* fixed-rate send granularity without a timerfd */
#define LG_STOP_GRACE_MS 5000 /* beyond the request timeout, before abandoning */
#define LG_AUDIT_FROM_MS 15000
#define LG_AUDIT_TO_MS 2000

enum phase {
    PH_SETUP_TOKEN = 0,
    PH_SETUP_PURGE,
    PH_RUN,
    PH_STOPPING,
    PH_DRAIN,
    PH_FINAL,
    PH_DONE,
};

enum op_kind { OP_TOKEN = 0, OP_PURGE_PROC, OP_TARGET_SETUP, OP_STAGE, OP_AUDIT, OP_FINAL };

struct run;

struct op {
    uint32_t magic;
    struct run *run;
    enum op_kind kind;
    unsigned a, b; /* stage/audit index; part/processor */
    struct op *next_free;
    char url[LG_URL_MAX + 128];
    char body[LG_TOKEN_MAX + 32];
};

struct vu {
    uint32_t magic;
    struct run *run;
    uv_timer_t timer;  /* VU mode: the 1 s sleep */
    uint64_t sched_ns; /* rate mode: when this send was due */
    struct vu *next_free;
    char id[UUID_TEXT_LEN];
};

struct audit_aux {
    unsigned pending; /* parts not answered yet */
    unsigned ok_mask; /* bit 0 target, 1 default, 2 fallback */
};

struct run {
    uint32_t magic;
    uv_loop_t loop;
    const struct lg_opts *o;
    struct lg_results *r;
    struct httpc *hc;
    enum phase phase;
    int rc;
    uint64_t t0_ns; /* uv_hrtime() at the start of the load phase */
    uint64_t timeout_us;
    unsigned pending; /* setup/final calls outstanding */
    unsigned ops_in_use;
    uint64_t pay_in_flight;
    bool target_unreachable;
    char target_error[96];

    char pay_url[LG_URL_MAX + 32];
    char amount_text[LG_DEC_FMT_MAX];
    char token_hdr[LG_TOKEN_MAX + 32];
    const char *json_hdrs[2];
    const char *admin_hdrs[3];

    struct vu *vus; /* VU mode: one per user; rate mode: send slots */
    uint32_t nvus;
    uint32_t active;       /* VU mode: users started so far */
    struct vu *free_slots; /* rate mode */
    uint64_t rate_sent;    /* rate mode: sends scheduled so far */

    uv_timer_t tick;     /* ramp (VU mode) or sends (rate mode, if no send_fd) */
    uv_poll_t send_poll; /* rate mode: send_fd expired */
    int send_fd;         /* rate mode: timerfd armed at the next send's due time */
    bool send_on;
    uv_timer_t stage_timer;
    unsigned next_stage;
    uv_timer_t audit_timer;
    unsigned next_audit_k;  /* the next audit is at k * interval */
    uv_timer_t phase_timer; /* end of load, stop watchdog, drain */
    struct lg_live live;    /* per-second series and progress line */
    uv_signal_t sigint, sigterm;
    uv_poll_t lag_poll;
    int lag_fd;
    bool lag_on;
    uint64_t lag_start_ns; /* first expiration, CLOCK_MONOTONIC (uv_hrtime's clock) */
    uint64_t lag_exp;      /* expirations seen */
    unsigned closing;      /* handles whose close callback is pending */

    struct audit_aux *aux;
    unsigned stage_pending[LG_SCHED_MAX_STAGES];
    bool stage_bad[LG_SCHED_MAX_STAGES];
    struct rusage ru0;
    uint64_t idle0_ns; /* uv_metrics_idle_time() at the start of the load phase */
    int64_t runq0_ns;  /* schedstat run-queue wait at the start; -1 unknown */
    struct lg_rng rng;
    struct op *free_ops;
    struct op ops[LG_MAX_OPS];
};

static void on_pay_done(void *arg, const struct httpc_result *res);
static void on_op_done(void *arg, const struct httpc_result *res);
static void start_purge(struct run *run);
static void start_load(struct run *run);
static void stop_load(struct run *run);
static void maybe_after_stop(struct run *run);
static void start_final(struct run *run);
static void finish(struct run *run, int rc);
static int64_t runq_wait_ns(void);

/* ---- pure helpers (exported for tests) ---- */

bool lg_classify(struct lg_req_stats *st, const struct httpc_result *res, uint64_t timeout_us)
{
    if (res->outcome == HTTPC_OK) {
        if (res->status >= 200 && res->status < 300) {
            st->ok++;
            return true;
        }
        st->failed++;
        if (res->status >= 400 && res->status < 500)
            st->err.status_4xx++;
        else if (res->status >= 500 && res->status < 600)
            st->err.status_5xx++;
        else
            st->err.other++;
        return false;
    }
    st->failed++;
    const char *e = res->error ? res->error : "";
    bool timed_out =
        strstr(e, "timed out") != NULL || strstr(e, "Timeout") != NULL ||
        (res->outcome == HTTPC_UNKNOWN && timeout_us > 0 && res->elapsed_us + 2000 >= timeout_us);
    if (timed_out)
        st->err.timeout++;
    else
        st->err.connection++;
    return false;
}

static int get_count(const struct json_doc *d, int obj, const char *key, int64_t *out)
{
    long long v;
    if (!json_int(d, json_member(d, obj, key), &v))
        return -EINVAL;
    *out = (int64_t)v;
    return 0;
}

static int get_dec(const struct json_doc *d, int obj, const char *key, __int128 *out)
{
    struct slice s;
    if (!json_number(d, json_member(d, obj, key), &s))
        return -EINVAL;
    return lg_dec_parse(s.ptr, s.len, out) == 0 ? 0 : -EINVAL;
}

int lg_parse_target_summary(const char *js, size_t len, int64_t counts[LG_PROC_COUNT])
{
    struct json_doc d;
    if (json_parse(&d, js, len) != 0 || d.ntok < 1 || d.tok[0].type != JSON_OBJECT)
        return -EINVAL;
    static const char *const names[LG_PROC_COUNT] = {"default", "fallback"};
    for (int p = 0; p < LG_PROC_COUNT; p++) {
        int o = json_member(&d, 0, names[p]);
        if (o < 0 || d.tok[o].type != JSON_OBJECT || get_count(&d, o, "totalRequests", &counts[p]))
            return -EINVAL;
    }
    return 0;
}

int lg_parse_proc_summary(const char *js, size_t len, struct lg_proc_summary *ps)
{
    struct json_doc d;
    memset(ps, 0, sizeof(*ps));
    if (json_parse(&d, js, len) != 0 || d.ntok < 1 || d.tok[0].type != JSON_OBJECT)
        return -EINVAL;
    if (get_count(&d, 0, "totalRequests", &ps->count) != 0 ||
        get_dec(&d, 0, "totalAmount", &ps->amount) != 0)
        return -EINVAL;
    ps->has_fee_rate = get_dec(&d, 0, "feePerTransaction", &ps->fee_rate) == 0;
    ps->has_total_fee = get_dec(&d, 0, "totalFee", &ps->total_fee) == 0;
    return 0;
}

/* ---- results ---- */

struct lg_results *lg_results_new(const struct lg_opts *o)
{
    struct lg_results *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    lg_hist_init(&r->pay_hist);
    lg_hist_init(&r->all_hist);
    lg_hist_init(&r->lag_hist);
    uint32_t dur = o->sched.duration_ms;
    r->audits_cap = o->audit_interval_ms ? dur / o->audit_interval_ms + 2 : 1;
    r->audits = calloc(r->audits_cap, sizeof(*r->audits));
    /* expected accepted ids: the ramp averages users/2 posts per second */
    uint64_t expect = o->rate ? (uint64_t)o->rate * dur / 1000
                              : (uint64_t)(o->sched.users / 2 + 1) * (dur / 1000 + 1);
    if (expect > 4000000)
        expect = 4000000;
    r->accepted_cap = (size_t)(expect + 1024) * (UUID_TEXT_LEN + 1);
    r->accepted = malloc(r->accepted_cap);
    if (r->audits == NULL || r->accepted == NULL || lg_series_init(&r->series, dur) != 0) {
        lg_results_free(r);
        return NULL;
    }
    return r;
}

void lg_results_free(struct lg_results *r)
{
    if (r == NULL)
        return;
    free(r->audits);
    free(r->accepted);
    lg_series_release(&r->series);
    free(r);
}

static void accepted_add(struct lg_results *r, const char *id)
{
    if (r->accepted_len + UUID_TEXT_LEN + 1 > r->accepted_cap) {
        size_t ncap = r->accepted_cap * 2;
        char *n = realloc(r->accepted, ncap);
        if (n == NULL)
            return; /* counted below but not written: the report says so */
        r->accepted = n;
        r->accepted_cap = ncap;
    }
    if (r->accepted_len + UUID_TEXT_LEN + 1 <= r->accepted_cap) {
        memcpy(r->accepted + r->accepted_len, id, UUID_TEXT_LEN);
        r->accepted[r->accepted_len + UUID_TEXT_LEN] = '\n';
        r->accepted_len += UUID_TEXT_LEN + 1;
    }
    r->accepted_count++;
}

/* ---- time ---- */

static uint64_t elapsed_ms(const struct run *run)
{
    return (uv_hrtime() - run->t0_ns + 500000) / 1000000; /* rounded, as uv timers are */
}

static void arm_at(struct run *run, uv_timer_t *t, uv_timer_cb cb, uint64_t at_ms)
{
    uint64_t now = elapsed_ms(run);
    uv_timer_start(t, cb, at_ms > now ? at_ms - now : 0, 0);
}

static uint64_t realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- admin/audit calls ---- */

static struct op *op_get(struct run *run, enum op_kind kind, unsigned a, unsigned b)
{
    struct op *op = run->free_ops;
    if (op == NULL)
        return NULL;
    run->free_ops = op->next_free;
    op->magic = OP_MAGIC;
    op->run = run;
    op->kind = kind;
    op->a = a;
    op->b = b;
    op->url[0] = '\0';
    op->body[0] = '\0';
    run->ops_in_use++;
    return op;
}

static void op_put(struct run *run, struct op *op)
{
    op->magic = 0;
    op->next_free = run->free_ops;
    run->free_ops = op;
    run->ops_in_use--;
}

/* Sends op; on failure releases it and counts a failed admin call. */
static bool op_send(struct run *run, struct op *op, const char *method, const char *const *hdrs)
{
    run->r->admin.sent++;
    size_t blen = strlen(op->body);
    int rc = httpc_request(run->hc, method, op->url, hdrs, blen ? op->body : NULL, blen,
                           run->o->timeout_ms, on_op_done, op);
    if (rc == 0)
        return true;
    run->r->admin.failed++;
    run->r->admin.err.client_busy++;
    op_put(run, op);
    return false;
}

/* Issues one call or counts it failed; returns whether it is in flight. */
static bool call(struct run *run, enum op_kind kind, unsigned a, unsigned b, const char *method,
                 const char *const *hdrs, const char *body, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
static bool call(struct run *run, enum op_kind kind, unsigned a, unsigned b, const char *method,
                 const char *const *hdrs, const char *body, const char *fmt, ...)
{
    struct op *op = op_get(run, kind, a, b);
    if (op == NULL) {
        run->r->admin.sent++;
        run->r->admin.failed++;
        run->r->admin.err.client_busy++;
        return false;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(op->url, sizeof(op->url), fmt, ap);
    va_end(ap);
    if (body != NULL)
        snprintf(op->body, sizeof(op->body), "%s", body);
    return op_send(run, op, method, hdrs);
}

static void audit_done(struct run *run, unsigned idx)
{
    struct lg_results *r = run->r;
    struct lg_audit *au = &r->audits[idx];
    if (run->aux[idx].ok_mask == 7) {
        au->ok = true;
        uint64_t inc = 0;
        for (int p = 0; p < LG_PROC_COUNT; p++) {
            int64_t d = au->ours[p] - au->procs[p];
            inc += (uint64_t)(d < 0 ? -d : d);
        }
        au->inconsistencies = inc;
        r->inconsistencies += inc;
    } else {
        r->audit_errors++;
    }
}

static void set_err(char *buf, size_t cap, const char *what, const struct httpc_result *res,
                    bool parsed)
{
    if (buf[0] != '\0')
        return; /* keep the first */
    if (res->outcome != HTTPC_OK)
        snprintf(buf, cap, "%s: %s", what, res->error ? res->error : "transport error");
    else if (res->status < 200 || res->status >= 300)
        snprintf(buf, cap, "%s: status %d", what, res->status);
    else if (!parsed)
        snprintf(buf, cap, "%s: unparseable body", what);
}

static void on_op_done(void *arg, const struct httpc_result *res)
{
    struct op *op = arg;
    assert(op->magic == OP_MAGIC);
    struct run *run = op->run;
    struct lg_results *r = run->r;
    enum op_kind kind = op->kind;
    unsigned a = op->a, b = op->b;
    op_put(run, op);

    bool ok = lg_classify(&r->admin, res, run->timeout_us);
    if (ok)
        lg_hist_record(&r->all_hist, res->elapsed_us);
    if (run->phase == PH_DONE)
        return;

    switch (kind) {
    case OP_TOKEN:
    case OP_PURGE_PROC:
        break;
    case OP_TARGET_SETUP:
        if (res->outcome == HTTPC_NOT_SENT) {
            run->target_unreachable = true;
            snprintf(run->target_error, sizeof(run->target_error), "%s",
                     res->error ? res->error : "not sent");
        }
        break;
    case OP_STAGE:
        if (!ok) {
            run->stage_bad[a] = true;
            r->stage_errors++;
        }
        if (--run->stage_pending[a] == 0 && !run->stage_bad[a])
            r->stages_applied++;
        break;
    case OP_AUDIT: {
        struct lg_audit *au = &r->audits[a];
        bool parsed = false;
        if (ok && b == 0)
            parsed = lg_parse_target_summary(res->body, res->body_len, au->ours) == 0;
        else if (ok) {
            struct lg_proc_summary ps;
            parsed = lg_parse_proc_summary(res->body, res->body_len, &ps) == 0;
            if (parsed)
                au->procs[b - 1] = ps.count;
        }
        if (parsed)
            run->aux[a].ok_mask |= 1u << b;
        else
            set_err(au->error, sizeof(au->error),
                    b == 0   ? "target summary"
                    : b == 1 ? "default summary"
                             : "fallback summary",
                    res, parsed);
        if (--run->aux[a].pending == 0)
            audit_done(run, a);
        break;
    }
    case OP_FINAL: {
        bool parsed = ok && lg_parse_proc_summary(res->body, res->body_len, &r->final[b]) == 0;
        if (!parsed)
            set_err(r->final_error, sizeof(r->final_error),
                    b == 0 ? "default admin summary" : "fallback admin summary", res, parsed);
        break;
    }
    }

    if (kind == OP_TOKEN || kind == OP_PURGE_PROC || kind == OP_TARGET_SETUP || kind == OP_FINAL) {
        assert(run->pending > 0);
        if (--run->pending == 0) {
            if (run->phase == PH_SETUP_TOKEN)
                start_purge(run);
            else if (run->phase == PH_SETUP_PURGE)
                run->target_unreachable ? finish(run, -EHOSTUNREACH) : start_load(run);
            else if (run->phase == PH_FINAL) {
                r->have_final = r->final_error[0] == '\0';
                finish(run, 0);
            }
        }
    }
    if (run->phase == PH_STOPPING)
        maybe_after_stop(run);
}

/* ---- setup ---- */

static void start_token(struct run *run)
{
    run->phase = PH_SETUP_TOKEN;
    char body[LG_TOKEN_MAX + 16];
    snprintf(body, sizeof(body), "{\"token\":\"%s\"}", run->o->token);
    run->pending = 0;
    for (unsigned p = 0; p < LG_PROC_COUNT; p++)
        if (call(run, OP_TOKEN, 0, p, "PUT", run->admin_hdrs, body, "%s/admin/configurations/token",
                 run->o->proc_url[p]))
            run->pending++;
    if (run->pending == 0)
        start_purge(run);
}

static void start_purge(struct run *run)
{
    run->phase = PH_SETUP_PURGE;
    run->pending = 0;
    const struct lg_opts *o = run->o;
    if (!o->no_purge) {
        for (unsigned p = 0; p < LG_PROC_COUNT; p++)
            if (call(run, OP_PURGE_PROC, 0, p, "POST", run->admin_hdrs, NULL,
                     "%s/admin/purge-payments", o->proc_url[p]))
                run->pending++;
        if (call(run, OP_TARGET_SETUP, 0, 0, "POST", run->json_hdrs, NULL, "%s/purge-payments",
                 o->target))
            run->pending++;
    } else {
        /* only a reachability probe: any HTTP answer will do */
        if (call(run, OP_TARGET_SETUP, 0, 0, "GET", NULL, NULL, "%s/payments-summary", o->target))
            run->pending++;
    }
    if (run->pending == 0)
        finish(run, -EAGAIN);
}

/* ---- payments ---- */

static void send_payment(struct run *run, struct vu *vu);

static void on_vu_wake(uv_timer_t *t)
{
    struct vu *vu = container_of(t, struct vu, timer);
    assert(vu->magic == VU_MAGIC);
    if (vu->run->phase == PH_RUN)
        send_payment(vu->run, vu);
}

static void slot_put(struct run *run, struct vu *vu)
{
    vu->next_free = run->free_slots;
    run->free_slots = vu;
}

static void send_payment(struct run *run, struct vu *vu)
{
    struct lg_results *r = run->r;
    char body[160];
    lg_uuid_v4(&run->rng, vu->id);
    int n;
    if (run->o->with_requested_at) {
        char at[CLOCK_ISO_LEN + 1];
        clock_format_iso_ms((int64_t)realtime_ms(), at);
        at[CLOCK_ISO_LEN] = '\0';
        n = snprintf(body, sizeof(body),
                     "{\"correlationId\":\"%.36s\",\"amount\":%s,\"requestedAt\":\"%s\"}", vu->id,
                     run->amount_text, at);
    } else {
        n = snprintf(body, sizeof(body), "{\"correlationId\":\"%.36s\",\"amount\":%s}", vu->id,
                     run->amount_text);
    }
    r->payments.sent++;
    int rc = httpc_request(run->hc, "POST", run->pay_url, run->json_hdrs, body, (size_t)n,
                           run->o->timeout_ms, on_pay_done, vu);
    if (rc == 0) {
        run->pay_in_flight++;
        return;
    }
    r->payments.failed++;
    r->payments.err.client_busy++;
    if (run->o->rate)
        slot_put(run, vu);
    else
        uv_timer_start(&vu->timer, on_vu_wake, LG_VU_SLEEP_MS, 0);
}

static void on_pay_done(void *arg, const struct httpc_result *res)
{
    struct vu *vu = arg;
    assert(vu->magic == VU_MAGIC);
    struct run *run = vu->run;
    struct lg_results *r = run->r;
    run->pay_in_flight--;
    uint64_t lat_us = res->elapsed_us;
    if (run->o->rate) {
        /* open loop: count from when the send was due (no coordinated omission) */
        uint64_t done_ns = uv_hrtime();
        uint64_t since_due = done_ns > vu->sched_ns ? (done_ns - vu->sched_ns) / 1000 : 0;
        if (since_due > lat_us)
            lat_us = since_due;
    }
    if (lg_classify(&r->payments, res, run->timeout_us)) {
        lg_hist_record(&r->pay_hist, lat_us);
        lg_hist_record(&r->all_hist, lat_us);
        lg_series_record(&r->series, lat_us);
        accepted_add(r, vu->id);
    }
    if (run->o->rate)
        slot_put(run, vu);
    else if (run->phase == PH_RUN)
        uv_timer_start(&vu->timer, on_vu_wake, LG_VU_SLEEP_MS, 0);
    if (run->phase == PH_STOPPING)
        maybe_after_stop(run);
}

static uint64_t send_due(struct run *run);

static void on_tick(uv_timer_t *t)
{
    struct run *run = container_of(t, struct run, tick);
    assert(run->magic == RUN_MAGIC);
    if (run->phase != PH_RUN)
        return;
    const struct lg_opts *o = run->o;
    uint64_t now_ns = uv_hrtime() - run->t0_ns;
    if (o->rate == 0) {
        uint32_t want = lg_schedule_users_at(&o->sched, now_ns / 1000000);
        if (want > run->nvus)
            want = run->nvus;
        while (run->active < want)
            send_payment(run, &run->vus[run->active++]);
        if (run->active > run->r->max_active_users)
            run->r->max_active_users = run->active;
        return;
    }
    (void)send_due(run);
}

/* Rate mode: sends every payment due by now (send k is due at t0 + k / rate,
 * before the end of the load phase); returns when the next one is due
 * (uv_hrtime() clock), or 0 when none is left. */
static uint64_t send_due(struct run *run)
{
    const struct lg_opts *o = run->o;
    uint64_t now = uv_hrtime();
    uint64_t end = run->t0_ns + (uint64_t)o->sched.duration_ms * 1000000;
    uint64_t next = 0;
    for (;;) {
        uint64_t sched_ns = run->t0_ns + run->rate_sent * 1000000000 / o->rate;
        if (sched_ns >= end)
            break;
        if (sched_ns > now) {
            next = sched_ns;
            break;
        }
        run->rate_sent++;
        struct vu *vu = run->free_slots;
        if (vu == NULL) {
            run->r->payments.sent++;
            run->r->payments.failed++;
            run->r->payments.err.client_busy++;
            continue;
        }
        run->free_slots = vu->next_free;
        vu->sched_ns = sched_ns;
        send_payment(run, vu);
    }
    uint32_t busy = (uint32_t)run->pay_in_flight;
    if (busy > run->r->max_active_users)
        run->r->max_active_users = busy;
    return next;
}

static void send_fd_arm(struct run *run, uint64_t at_ns)
{
    struct itimerspec its = {
        .it_value = {.tv_sec = (time_t)(at_ns / 1000000000), .tv_nsec = (long)(at_ns % 1000000000)},
    };
    (void)timerfd_settime(run->send_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void on_send_timer(uv_poll_t *h, int status, int events)
{
    struct run *run = container_of(h, struct run, send_poll);
    assert(run->magic == RUN_MAGIC);
    uint64_t n;
    if (status < 0 || read(run->send_fd, &n, sizeof(n)) != (ssize_t)sizeof(n))
        return;
    if (run->phase != PH_RUN)
        return;
    uint64_t next = send_due(run);
    if (next != 0)
        send_fd_arm(run, next);
}

/* Rate mode: each send at its own due time, to the nanosecond (a timerfd with
 * an absolute expiry, as the lag probe), rather than on the next 1 ms tick:
 * a uv timer's ms-rounded loop time would add 0-2 ms to every figure. False
 * when no timerfd can be had (the caller then ticks every 1 ms). */
static bool send_fd_start(struct run *run)
{
    run->send_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (run->send_fd < 0)
        return false;
    if (uv_poll_init(&run->loop, &run->send_poll, run->send_fd) != 0) {
        close(run->send_fd);
        run->send_fd = -1;
        return false;
    }
    run->send_on = true;
    uv_poll_start(&run->send_poll, UV_READABLE, on_send_timer);
    send_fd_arm(run, run->t0_ns); /* uv_hrtime() is CLOCK_MONOTONIC, as the timerfd */
    return true;
}

/* ---- schedule ---- */

static void stage_call_failed(struct run *run, unsigned i)
{
    run->stage_bad[i] = true;
    run->r->stage_errors++;
}

static void on_stage(uv_timer_t *t)
{
    struct run *run = container_of(t, struct run, stage_timer);
    assert(run->magic == RUN_MAGIC);
    if (run->phase != PH_RUN)
        return;
    const struct lg_schedule *s = &run->o->sched;
    unsigned i = run->next_stage++;
    const struct lg_stage *st = &s->stages[i];
    run->r->stages_started++;
    run->stage_pending[i] = 0;
    for (unsigned p = 0; p < LG_PROC_COUNT; p++) {
        char body[48];
        snprintf(body, sizeof(body), "{\"delay\":%" PRIu32 "}", st->delay_ms[p]);
        if (call(run, OP_STAGE, i, p, "PUT", run->admin_hdrs, body, "%s/admin/configurations/delay",
                 run->o->proc_url[p]))
            run->stage_pending[i]++;
        else
            stage_call_failed(run, i);
        snprintf(body, sizeof(body), "{\"failure\":%s}", st->failing[p] ? "true" : "false");
        if (call(run, OP_STAGE, i, p, "PUT", run->admin_hdrs, body,
                 "%s/admin/configurations/failure", run->o->proc_url[p]))
            run->stage_pending[i]++;
        else
            stage_call_failed(run, i);
    }
    if (run->next_stage < s->nstages && s->stages[run->next_stage].at_ms < s->duration_ms)
        arm_at(run, &run->stage_timer, on_stage, s->stages[run->next_stage].at_ms);
}

/* ---- auditor ---- */

static void audit_now(struct run *run)
{
    struct lg_results *r = run->r;
    if (r->naudits >= r->audits_cap)
        return;
    unsigned idx = r->naudits++;
    struct lg_audit *au = &r->audits[idx];
    memset(au, 0, sizeof(*au));
    au->at_ms = (uint32_t)elapsed_ms(run);
    run->aux[idx].pending = 0;
    run->aux[idx].ok_mask = 0;
    uint64_t now = realtime_ms();
    char from[CLOCK_ISO_LEN + 1], to[CLOCK_ISO_LEN + 1];
    clock_format_iso_ms((int64_t)(now - LG_AUDIT_FROM_MS), from);
    clock_format_iso_ms((int64_t)(now - LG_AUDIT_TO_MS), to);
    from[CLOCK_ISO_LEN] = to[CLOCK_ISO_LEN] = '\0';
    if (call(run, OP_AUDIT, idx, 0, "GET", NULL, NULL, "%s/payments-summary?from=%s&to=%s",
             run->o->target, from, to))
        run->aux[idx].pending++;
    else
        snprintf(au->error, sizeof(au->error), "target summary: not sent");
    for (unsigned p = 0; p < LG_PROC_COUNT; p++) {
        if (call(run, OP_AUDIT, idx, p + 1, "GET", run->admin_hdrs, NULL,
                 "%s/admin/payments-summary?from=%s&to=%s", run->o->proc_url[p], from, to))
            run->aux[idx].pending++;
        else if (au->error[0] == '\0')
            snprintf(au->error, sizeof(au->error), "processor summary: not sent");
    }
    if (run->aux[idx].pending == 0)
        audit_done(run, idx);
}

static void on_audit(uv_timer_t *t)
{
    struct run *run = container_of(t, struct run, audit_timer);
    assert(run->magic == RUN_MAGIC);
    if (run->phase != PH_RUN)
        return;
    audit_now(run);
    uint64_t next = (uint64_t)++run->next_audit_k * run->o->audit_interval_ms;
    if (next <= run->o->sched.duration_ms)
        arm_at(run, &run->audit_timer, on_audit, next);
}

/* ---- loop lag ---- */

static void on_lag(uv_poll_t *h, int status, int events)
{
    struct run *run = container_of(h, struct run, lag_poll);
    assert(run->magic == RUN_MAGIC);
    uint64_t n;
    if (status < 0 || read(run->lag_fd, &n, sizeof(n)) != (ssize_t)sizeof(n) || n == 0)
        return;
    uint64_t now = uv_hrtime();
    if (n > 100000)
        n = 100000;
    for (uint64_t j = 0; j < n; j++) {
        uint64_t due = run->lag_start_ns + (run->lag_exp + j) * LG_LAG_PERIOD_NS;
        lg_hist_record(&run->r->lag_hist, now > due ? (now - due) / 1000 : 0);
    }
    run->lag_exp += n;
}

static void lag_start(struct run *run)
{
    run->lag_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (run->lag_fd < 0)
        return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t start = (uint64_t)now.tv_sec * 1000000000 + (uint64_t)now.tv_nsec + LG_LAG_PERIOD_NS;
    struct itimerspec its = {
        .it_interval = {.tv_sec = 0, .tv_nsec = (long)LG_LAG_PERIOD_NS},
        .it_value = {.tv_sec = (time_t)(start / 1000000000), .tv_nsec = (long)(start % 1000000000)},
    };
    if (timerfd_settime(run->lag_fd, TFD_TIMER_ABSTIME, &its, NULL) != 0 ||
        uv_poll_init(&run->loop, &run->lag_poll, run->lag_fd) != 0) {
        close(run->lag_fd);
        run->lag_fd = -1;
        return;
    }
    run->lag_start_ns = start;
    run->lag_exp = 0;
    run->lag_on = true;
    uv_poll_start(&run->lag_poll, UV_READABLE, on_lag);
}

/* ---- phases ---- */

static void on_load_end(uv_timer_t *t)
{
    struct run *run = container_of(t, struct run, phase_timer);
    assert(run->magic == RUN_MAGIC);
    stop_load(run);
    maybe_after_stop(run);
}

static void on_stop_watchdog(uv_timer_t *t)
{
    struct run *run = container_of(t, struct run, phase_timer);
    /* requests outlived their timeout by far: give up on them */
    finish(run, 0);
}

static void start_load(struct run *run)
{
    const struct lg_opts *o = run->o;
    struct lg_results *r = run->r;
    run->phase = PH_RUN;
    run->t0_ns = uv_hrtime();
    uv_update_time(&run->loop);
    r->start_wall_ms = (int64_t)realtime_ms();
    getrusage(RUSAGE_SELF, &run->ru0);
    run->idle0_ns = uv_metrics_idle_time(&run->loop);
    run->runq0_ns = runq_wait_ns();
    lag_start(run);
    lg_live_start(&run->live, run->t0_ns);
    if (!o->no_schedule && o->rate == 0 && o->sched.nstages > 0 &&
        o->sched.stages[0].at_ms < o->sched.duration_ms)
        arm_at(run, &run->stage_timer, on_stage, o->sched.stages[0].at_ms);
    if (o->audit_interval_ms > 0 && o->audit_interval_ms <= o->sched.duration_ms &&
        (o->rate == 0 || o->score)) {
        run->next_audit_k = 1;
        arm_at(run, &run->audit_timer, on_audit, o->audit_interval_ms);
    }
    uv_timer_start(&run->phase_timer, on_load_end, o->sched.duration_ms, 0);
    if (o->rate == 0 || !send_fd_start(run))
        uv_timer_start(&run->tick, on_tick, 0, o->rate ? LG_TICK_RATE_MS : LG_TICK_VU_MS);
}

/* Nanoseconds this thread spent runnable but waiting for a CPU (the second
 * field of /proc/thread-self/schedstat), or -1 when unavailable. Read twice per
 * run, outside the measured paths. */
static int64_t runq_wait_ns(void)
{
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    if (f == NULL)
        return -1;
    unsigned long long run_ns, wait_ns;
    int n = fscanf(f, "%llu %llu", &run_ns, &wait_ns);
    fclose(f);
    return n == 2 ? (int64_t)wait_ns : -1;
}

static double tv_s(struct timeval a, struct timeval b)
{
    return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_usec - a.tv_usec) / 1e6;
}

static void stop_load(struct run *run)
{
    if (run->phase != PH_RUN)
        return;
    struct lg_results *r = run->r;
    const struct lg_opts *o = run->o;
    r->ran_ms = (uint32_t)elapsed_ms(run);
    /* an audit due at exactly the end still runs */
    if (run->next_audit_k > 0 && uv_is_active((uv_handle_t *)&run->audit_timer) &&
        (uint64_t)run->next_audit_k * o->audit_interval_ms <= r->ran_ms)
        audit_now(run);
    run->phase = PH_STOPPING;
    lg_live_stop(&run->live, r->ran_ms);
    uv_timer_stop(&run->tick);
    if (run->send_on)
        uv_poll_stop(&run->send_poll);
    uv_timer_stop(&run->stage_timer);
    uv_timer_stop(&run->audit_timer);
    if (o->rate == 0)
        for (uint32_t i = 0; i < run->nvus; i++)
            uv_timer_stop(&run->vus[i].timer);
    if (run->lag_on)
        uv_poll_stop(&run->lag_poll);
    struct rusage ru1;
    getrusage(RUSAGE_SELF, &ru1);
    r->cpu_user_s = tv_s(run->ru0.ru_utime, ru1.ru_utime);
    r->cpu_sys_s = tv_s(run->ru0.ru_stime, ru1.ru_stime);
    r->loop_idle_s = (double)(uv_metrics_idle_time(&run->loop) - run->idle0_ns) / 1e9;
    int64_t rq = runq_wait_ns();
    r->runq_wait_s = rq >= 0 && run->runq0_ns >= 0 ? (double)(rq - run->runq0_ns) / 1e9 : -1;
    uv_timer_start(&run->phase_timer, on_stop_watchdog, o->timeout_ms + LG_STOP_GRACE_MS, 0);
}

static void on_drain_end(uv_timer_t *t)
{
    struct run *run = container_of(t, struct run, phase_timer);
    start_final(run);
}

static void maybe_after_stop(struct run *run)
{
    if (run->phase != PH_STOPPING || run->pay_in_flight > 0 || run->ops_in_use > 0)
        return;
    lg_live_finish(&run->live);
    uv_timer_stop(&run->phase_timer);
    if (run->o->rate && !run->o->score) {
        finish(run, 0);
        return;
    }
    run->phase = PH_DRAIN;
    uv_timer_start(&run->phase_timer, on_drain_end, run->o->drain_ms, 0);
}

static void start_final(struct run *run)
{
    run->phase = PH_FINAL;
    run->pending = 0;
    for (unsigned p = 0; p < LG_PROC_COUNT; p++)
        if (call(run, OP_FINAL, 0, p, "GET", run->admin_hdrs, NULL, "%s/admin/payments-summary",
                 run->o->proc_url[p]))
            run->pending++;
    if (run->pending == 0) {
        snprintf(run->r->final_error, sizeof(run->r->final_error), "admin summaries: not sent");
        finish(run, 0);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct run *run = s->data;
    assert(run->magic == RUN_MAGIC);
    run->r->interrupted = true;
    if (run->phase == PH_RUN) {
        stop_load(run);
        maybe_after_stop(run);
    } else if (run->phase == PH_DRAIN)
        start_final(run);
    else if (run->phase != PH_DONE)
        finish(run, run->phase < PH_RUN ? -EINTR : 0);
}

static void on_closed(uv_handle_t *h)
{
    struct run *run = h->data;
    run->closing--;
}

static void on_lag_closed(uv_handle_t *h)
{
    struct run *run = h->data;
    close(run->lag_fd);
    run->lag_fd = -1;
    run->closing--;
}

static void on_send_closed(uv_handle_t *h)
{
    struct run *run = h->data;
    close(run->send_fd);
    run->send_fd = -1;
    run->closing--;
}

static void on_httpc_closed(void *arg)
{
    struct run *run = arg;
    run->hc = NULL;
}

static void close_handle(struct run *run, uv_handle_t *h, uv_close_cb cb)
{
    h->data = run;
    run->closing++;
    uv_close(h, cb);
}

static void finish(struct run *run, int rc)
{
    if (run->phase == PH_DONE)
        return;
    if (run->phase == PH_RUN)
        stop_load(run);
    run->phase = PH_DONE;
    run->rc = rc;
    lg_live_finish(&run->live);
    struct lg_results *r = run->r;
    if (rc == 0 && r->have_final) {
        struct lg_score_in in = {
            .proc = {r->final[0], r->final[1]},
            .p99_ns = lg_hist_percentile_ns(&r->all_hist, 99000),
            .inconsistencies = r->inconsistencies,
            .ok_posts = (int64_t)r->payments.ok,
        };
        lg_score_compute(&in, &r->score);
    }
    close_handle(run, (uv_handle_t *)&run->tick, on_closed);
    close_handle(run, (uv_handle_t *)&run->stage_timer, on_closed);
    close_handle(run, (uv_handle_t *)&run->audit_timer, on_closed);
    close_handle(run, (uv_handle_t *)&run->phase_timer, on_closed);
    close_handle(run, (uv_handle_t *)&run->live.timer, on_closed);
    close_handle(run, (uv_handle_t *)&run->sigint, on_closed);
    close_handle(run, (uv_handle_t *)&run->sigterm, on_closed);
    if (run->lag_on)
        close_handle(run, (uv_handle_t *)&run->lag_poll, on_lag_closed);
    if (run->send_on)
        close_handle(run, (uv_handle_t *)&run->send_poll, on_send_closed);
    if (run->o->rate == 0)
        for (uint32_t i = 0; i < run->nvus; i++)
            close_handle(run, (uv_handle_t *)&run->vus[i].timer, on_closed);
    /* aborts anything still in flight; their callbacks see PH_DONE */
    httpc_close(run->hc, on_httpc_closed, run);
}

/* ---- entry ---- */

static int run_init(struct run *run, const struct lg_opts *o, struct lg_results *r)
{
    run->magic = RUN_MAGIC;
    run->o = o;
    run->r = r;
    run->lag_fd = -1;
    run->send_fd = -1;
    run->timeout_us = (uint64_t)o->timeout_ms * 1000;
    lg_rng_seed(&run->rng);
    for (int i = LG_MAX_OPS; i-- > 0;) {
        run->ops[i].next_free = run->free_ops;
        run->free_ops = &run->ops[i];
    }
    snprintf(run->pay_url, sizeof(run->pay_url), "%s/payments", o->target);
    lg_dec_format((__int128)o->sched.amount_cents * LG_DEC_CENT, 2, run->amount_text);
    snprintf(run->token_hdr, sizeof(run->token_hdr), "X-Rinha-Token: %s", o->token);
    run->json_hdrs[0] = "Content-Type: application/json";
    run->json_hdrs[1] = NULL;
    run->admin_hdrs[0] = "Content-Type: application/json";
    run->admin_hdrs[1] = run->token_hdr;
    run->admin_hdrs[2] = NULL;
    run->aux = calloc(r->audits_cap, sizeof(*run->aux));
    if (run->aux == NULL)
        return -ENOMEM;

    unsigned senders;
    if (o->rate) {
        uint64_t want = (uint64_t)o->rate * (o->timeout_ms + 500) / 1000 + 16;
        senders = want > LG_RATE_MAX_SLOTS ? LG_RATE_MAX_SLOTS : (unsigned)want;
    } else {
        senders = o->sched.users;
    }
    run->nvus = senders;
    run->vus = calloc(senders, sizeof(*run->vus));
    if (run->vus == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < senders; i++) {
        run->vus[i].magic = VU_MAGIC;
        run->vus[i].run = run;
    }
    if (o->rate)
        for (uint32_t i = senders; i-- > 0;)
            slot_put(run, &run->vus[i]);
    return 0;
}

int lg_run(const struct lg_opts *o, struct lg_results *r)
{
    struct run *run = calloc(1, sizeof(*run));
    if (run == NULL)
        return -ENOMEM;
    int rc = run_init(run, o, r);
    if (rc != 0)
        goto out_free;
    rc = uv_loop_init(&run->loop);
    if (rc != 0)
        goto out_free;
    (void)uv_loop_configure(&run->loop, UV_METRICS_IDLE_TIME);

    struct httpc_config cfg;
    httpc_config_default(&cfg);
    cfg.max_handles = run->nvus + LG_EXTRA_HANDLES;
    cfg.max_host_conns = run->nvus + LG_EXTRA_HANDLES;
    run->hc = httpc_new(&run->loop, &cfg);
    if (run->hc == NULL) {
        rc = -ENOMEM;
        goto out_loop;
    }
    uv_timer_init(&run->loop, &run->tick);
    uv_timer_init(&run->loop, &run->stage_timer);
    uv_timer_init(&run->loop, &run->audit_timer);
    uv_timer_init(&run->loop, &run->phase_timer);
    lg_live_init(&run->live, &run->loop, o, r);
    if (o->rate == 0)
        for (uint32_t i = 0; i < run->nvus; i++)
            uv_timer_init(&run->loop, &run->vus[i].timer);
    uv_signal_init(&run->loop, &run->sigint);
    uv_signal_init(&run->loop, &run->sigterm);
    run->sigint.data = run->sigterm.data = run;
    uv_signal_start(&run->sigint, on_signal, SIGINT);
    uv_signal_start(&run->sigterm, on_signal, SIGTERM);

    if (o->rt_priority > 0) {
        /* the loop only reacts to I/O and timers (a few % of a core at 600
         * users), so FIFO cannot starve the machine; it keeps the target's
         * load from delaying our timestamps */
        struct sched_param sp = {.sched_priority = (int)o->rt_priority};
        if (sched_setscheduler(0, SCHED_FIFO, &sp) == 0)
            r->realtime = true;
        else
            fprintf(stderr, "loadgen: SCHED_FIFO %u refused: %s (running without)\n",
                    o->rt_priority, strerror(errno));
    }
    /* no coalescing of our wake-ups with others' (the default slack is 50 us;
     * SCHED_FIFO threads have none anyway) */
    if (o->rate)
        (void)prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    start_token(run);
    uv_run(&run->loop, UV_RUN_DEFAULT);
    assert(run->phase == PH_DONE && run->closing == 0 && run->hc == NULL);
    rc = run->rc;
    if (rc == -EHOSTUNREACH)
        snprintf(r->setup_error, sizeof(r->setup_error), "target %s unreachable: %s", o->target,
                 run->target_error);
    else if (rc == -EINTR)
        snprintf(r->setup_error, sizeof(r->setup_error), "interrupted during setup");
    else if (rc != 0)
        snprintf(r->setup_error, sizeof(r->setup_error), "setup failed: %s", strerror(-rc));
out_loop:
    if (uv_loop_close(&run->loop) != 0)
        fprintf(stderr, "loadgen: loop closed with live handles\n");
out_free:
    free(run->aux);
    free(run->vus);
    run->magic = 0;
    free(run);
    return rc;
}
