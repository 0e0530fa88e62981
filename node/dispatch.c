/* Dispatch: a FIFO ring of accepted payments (ledger pool indexes), a second
 * ring of payments taken over from a dead peer (default only), a fixed pool of
 * jobs (one per payment out of the queue: in flight, waiting with an unknown
 * fate, or waiting for the peer's ack of its SENDING), and the state machine
 * of attempts on top of httpc. The routing decisions come from health.c; this
 * file only applies them and keeps the per-payment guarantees listed in
 * dispatch.h. No allocation after dispatch_new(). The request and answer
 * bodies are node/processor's; what dispatch sees of the processors it tells
 * health through health_observe() and friends. docs/ROUTING.md explains the
 * rules, "In a pair" the pair-mode ones. */
#include "node/dispatch.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/container.h"
#include "lib/clock.h"
#include "node/health.h"
#include "lib/httpc.h"
#include "lib/log.h"
#include "lib/trace.h"
#include "lib/uuid.h"
#include "node/processor.h"

#define DISPATCH_MAGIC 0x44535043u /* "DSPC" */
#define JOB_MAGIC 0x4a4f4253u      /* "JOBS" */
#define DISPATCH_URL_MAX 320
/* The first GET after an unknown fate waits at least this long after the
 * attempt was sent (the processor cannot have finished it sooner). */
#define DISPATCH_FIRST_GET_MIN_MS 5

static const char *const proc_name[LEDGER_NPROC] = {"default", "fallback"};

enum job_op {
    JOB_FREE = 0, /* in the free list */
    JOB_POST,     /* a POST /payments is in flight */
    JOB_GET,      /* a GET /payments/{id} is in flight */
    JOB_WAIT,     /* pinned, nothing in flight, waiting for next_ms */
    JOB_WAIT_ACK, /* SENDING(proc, T) emitted; the POST waits for the peer's ack of ack_seq */
};

struct job {
    uint32_t magic;
    struct dispatch *d;
    struct job *prev, *next; /* in exactly one list: free, inflight[proc], acking[proc]
                                or waiting */
    uint32_t pidx;           /* ledger pool index */
    uint8_t id[16];
    int64_t amount_cents;
    int64_t requested_at_ms; /* wall ms, fixed for every attempt on proc */
    uint8_t proc;            /* enum ledger_proc */
    uint8_t op;              /* enum job_op */
    bool pinned;             /* an attempt on proc has an unknown fate */
    bool claim;              /* resumed: emit SENDING (same proc, same T) before acting */
    bool orphan;             /* purged while in flight: ignore the answer */
    bool known;              /* proc answered 422: it holds the payment for sure, maybe
                                with another requestedAt; only a GET may follow */
    bool get_next;           /* pinned: the next action is GET /payments/{id} (set by an
                                unknown fate, a claim, or a non-answer to a later POST;
                                cleared by a 404 before the settle time) */
    uint64_t ack_seq;        /* JOB_WAIT_ACK: seq of our SENDING event */
    uint16_t bad;            /* unexpected statuses so far */
    uint64_t sent_ms;        /* loop ms when the request in flight was started */
    uint64_t unknown_ms;     /* loop ms when the last unknown fate was learned */
    uint64_t next_ms;        /* JOB_WAIT: earliest next action */
    unsigned backoff_ms;
    /* Tracing: only for a payment whose ledger entry kept a trace context. */
    bool traced;                        /* tctx holds it */
    struct trace_ctx tctx;              /* the span that accepted the payment: the parent */
    uint8_t span_id[TRACE_SPAN_ID_LEN]; /* traced, a request in flight: its span's id */
    uint64_t span_start_ns;             /* traced, a request in flight: uv_hrtime() at start */
};

struct jlist {
    struct job *head, *tail;
    unsigned n;
};

struct qent {
    uint32_t pidx;
    uint16_t bad; /* carried across requeues, so that a bug cannot loop forever */
};

struct ring {
    struct qent *e; /* queue_capacity entries */
    uint32_t head, count;
};

struct dispatch {
    uint32_t magic;
    uv_loop_t *loop;
    struct ledger *ledger;
    struct health *health;
    struct httpc *httpc;
    dispatch_emit_cb *emit;
    void *emit_arg;
    struct dispatch_config cfg;
    char post_url[LEDGER_NPROC][DISPATCH_URL_MAX];
    char base_url[LEDGER_NPROC][DISPATCH_URL_MAX]; /* as configured (no trailing slash) */

    /* q.count + tq.count + jobs_out <= queue_capacity */
    struct ring q;  /* accepted payments, FIFO; requeues at the front */
    struct ring tq; /* taken over from another owner while ACCEPTED: default only */
    uint32_t mask;

    struct job *jobs;
    unsigned njobs, jobs_out;
    struct jlist free_jobs, waiting, inflight[LEDGER_NPROC], acking[LEDGER_NPROC];

    uint8_t *owned; /* bit per ledger index: queued, in a job, or parked */
    size_t owned_bits;

    uv_prepare_t prepare;
    uv_timer_t tick;
    int handles_open;
    bool stopping, freeing;
    dispatch_stopped_cb *stop_cb;
    void *stop_arg;
    uint64_t stop_deadline;
    bool holding;
    uint64_t hold_since;
    bool overflowing;          /* an overflow episode is on (logged at start and end) */
    uint64_t overflow_last_ms; /* loop ms of the last payment overflowed */
    bool pair_on;
    bool kicked; /* re-check acking jobs on the next prepare pass */
    struct dispatch_pair pair;
    struct dispatch_stats stats;
    struct tracer *tracer; /* NULL: tracing off */
};

#define DISPATCH_CHECK(d) assert((d) != NULL && (d)->magic == DISPATCH_MAGIC)

void dispatch_config_default(struct dispatch_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->queue_capacity = 65536;
    cfg->max_in_flight[LEDGER_DEFAULT] = 250;
    cfg->max_in_flight[LEDGER_FALLBACK] = 250;
    cfg->timeout_ms = 10000;
    cfg->confirm_timeout_ms = 3000;
    cfg->retry_backoff_ms = 200;
    cfg->retry_backoff_max_ms = 2000;
    cfg->confirm_margin_ms = 1000;
    cfg->max_bad_attempts = 5;
    cfg->tick_ms = 20;
    cfg->stop_timeout_ms = 5000;
}

enum dispatch_fate dispatch_classify(int outcome, int status)
{
    switch (outcome) {
    case HTTPC_NOT_SENT:
        return DISPATCH_NOT_RECORDED;
    case HTTPC_UNKNOWN:
        return DISPATCH_UNKNOWN;
    case HTTPC_OK:
        break;
    default:
        return DISPATCH_UNKNOWN;
    }
    switch (status) {
    case 200:
    case 201:
    case 422:
        return DISPATCH_RECORDED;
    case 500:
    case 429:
        return DISPATCH_NOT_RECORDED;
    case 502:
    case 503:
    case 504:
        return DISPATCH_UNKNOWN;
    default:
        return DISPATCH_REJECTED;
    }
}

/* ---------------- small containers ---------------- */

static void jl_append(struct jlist *l, struct job *j)
{
    j->next = NULL;
    j->prev = l->tail;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    l->n++;
}

static void jl_remove(struct jlist *l, struct job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        l->head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        l->tail = j->prev;
    j->prev = j->next = NULL;
    assert(l->n > 0);
    l->n--;
}

static bool is_owned(const struct dispatch *d, uint32_t i)
{
    assert(i < d->owned_bits);
    return (d->owned[i >> 3] >> (i & 7)) & 1;
}

static void set_owned(struct dispatch *d, uint32_t i, bool on)
{
    assert(i < d->owned_bits);
    if (on)
        d->owned[i >> 3] |= (uint8_t)(1u << (i & 7));
    else
        d->owned[i >> 3] &= (uint8_t) ~(1u << (i & 7));
}

/* Payments dispatch holds: queued (both rings) or out in a job. */
static uint32_t held(const struct dispatch *d)
{
    return d->q.count + d->tq.count + d->jobs_out;
}

static void q_push_back(struct dispatch *d, struct ring *r, struct qent e)
{
    assert(held(d) < d->cfg.queue_capacity);
    r->e[(r->head + r->count) & d->mask] = e;
    r->count++;
}

static void q_push_front(struct dispatch *d, struct ring *r, struct qent e)
{
    assert(held(d) < d->cfg.queue_capacity);
    r->head = (r->head - 1) & d->mask;
    r->e[r->head] = e;
    r->count++;
}

static struct qent q_pop(struct dispatch *d, struct ring *r)
{
    assert(r->count > 0);
    struct qent e = r->e[r->head];
    r->head = (r->head + 1) & d->mask;
    r->count--;
    return e;
}

static struct job *job_get(struct dispatch *d)
{
    struct job *j = d->free_jobs.head;
    if (!j)
        return NULL;
    jl_remove(&d->free_jobs, j);
    assert(j->magic == JOB_MAGIC && j->op == JOB_FREE);
    uint32_t magic = j->magic;
    memset(j, 0, sizeof(*j));
    j->magic = magic;
    j->d = d;
    d->jobs_out++;
    return j;
}

/* j must be in no list. */
static void job_put(struct dispatch *d, struct job *j)
{
    assert(j->op != JOB_FREE);
    j->op = JOB_FREE;
    jl_append(&d->free_jobs, j);
    assert(d->jobs_out > 0);
    d->jobs_out--;
}

static unsigned total_in_flight(const struct dispatch *d)
{
    return d->inflight[LEDGER_DEFAULT].n + d->inflight[LEDGER_FALLBACK].n;
}

/* Attempts that count against p's in-flight cap: requests in flight and
 * attempts committed to p that wait for the peer's ack. */
static unsigned busy(const struct dispatch *d, int p)
{
    return d->inflight[p].n + d->acking[p].n;
}

/* ---------------- pair mode ---------------- */

static bool paused(const struct dispatch *d)
{
    return d->pair_on && d->pair.paused && d->pair.paused(d->pair.arg);
}

static bool acked(const struct dispatch *d, uint64_t seq)
{
    return d->pair.acked(d->pair.arg, seq);
}

/* Whether new requests may start now. */
static bool can_start(const struct dispatch *d)
{
    return !d->stopping && !paused(d);
}

/* Whether this node owns the payment (always true alone). */
static bool ours(const struct dispatch *d, const struct payment *p)
{
    return !d->pair_on || p->owner == d->pair.self_id;
}

static void sync_health(struct dispatch *d)
{
    for (int p = 0; p < LEDGER_NPROC; p++)
        health_set_in_flight(d->health, p, d->inflight[p].n,
                             d->inflight[p].head ? d->inflight[p].head->sent_ms : 0);
}

/* ---------------- lifecycle ---------------- */

static void on_prepare(uv_prepare_t *h);
static void on_tick(uv_timer_t *t);

struct dispatch *dispatch_new(uv_loop_t *loop, const struct dispatch_config *cfg,
                              struct ledger *ledger, struct health *health, struct httpc *httpc,
                              dispatch_emit_cb *emit, void *emit_arg)
{
    if (cfg->queue_capacity < 2 || (cfg->queue_capacity & (cfg->queue_capacity - 1)) != 0 ||
        cfg->queue_capacity > (1u << 30) || !ledger || !health || !httpc || !emit)
        return NULL;
    static const uint8_t any_id[16];
    char url[DISPATCH_URL_MAX];
    for (int p = 0; p < LEDGER_NPROC; p++) {
        /* the longest URL dispatch builds must fit */
        if (!cfg->url[p] || !cfg->url[p][0] || cfg->max_in_flight[p] == 0 ||
            processor_url(url, sizeof(url), cfg->url[p], PROCESSOR_URL_PAYMENT, any_id) < 0)
            return NULL;
    }
    struct dispatch *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->magic = DISPATCH_MAGIC;
    d->loop = loop;
    d->ledger = ledger;
    d->health = health;
    d->httpc = httpc;
    d->emit = emit;
    d->emit_arg = emit_arg;
    d->cfg = *cfg;
    for (int p = 0; p < LEDGER_NPROC; p++) {
        int rv = processor_url(d->post_url[p], DISPATCH_URL_MAX, cfg->url[p],
                               PROCESSOR_URL_PAYMENTS, NULL);
        assert(rv > 0); /* shorter than the PAYMENT URL checked above */
        (void)rv;
        snprintf(d->base_url[p], DISPATCH_URL_MAX, "%s", cfg->url[p]);
        d->cfg.url[p] = NULL; /* not kept: the copies above are */
    }
    if (d->cfg.timeout_ms == 0)
        d->cfg.timeout_ms = 10000;
    if (d->cfg.confirm_timeout_ms == 0)
        d->cfg.confirm_timeout_ms = 3000;
    if (d->cfg.retry_backoff_ms == 0)
        d->cfg.retry_backoff_ms = 200;
    if (d->cfg.retry_backoff_max_ms < d->cfg.retry_backoff_ms)
        d->cfg.retry_backoff_max_ms = d->cfg.retry_backoff_ms;
    if (d->cfg.max_bad_attempts == 0)
        d->cfg.max_bad_attempts = 1;
    if (d->cfg.tick_ms == 0)
        d->cfg.tick_ms = 20;
    d->njobs =
        cfg->max_jobs ? cfg->max_jobs : 2 * (cfg->max_in_flight[0] + cfg->max_in_flight[1]) + 16;
    if (d->njobs > cfg->queue_capacity / 2)
        d->njobs = cfg->queue_capacity / 2; /* leave room for the queue itself */
    d->mask = cfg->queue_capacity - 1;
    d->owned_bits = ledger_capacity(ledger);
    d->q.e = calloc(cfg->queue_capacity, sizeof(*d->q.e));
    d->tq.e = calloc(cfg->queue_capacity, sizeof(*d->tq.e));
    d->jobs = calloc(d->njobs, sizeof(*d->jobs));
    d->owned = calloc((d->owned_bits + 7) / 8, 1);
    if (!d->q.e || !d->tq.e || !d->jobs || !d->owned) {
        free(d->q.e);
        free(d->tq.e);
        free(d->jobs);
        free(d->owned);
        free(d);
        return NULL;
    }
    for (unsigned i = 0; i < d->njobs; i++) {
        d->jobs[i].magic = JOB_MAGIC;
        d->jobs[i].d = d;
        jl_append(&d->free_jobs, &d->jobs[i]);
    }
    uv_prepare_init(loop, &d->prepare);
    uv_timer_init(loop, &d->tick);
    d->handles_open = 2;
    uv_prepare_start(&d->prepare, on_prepare);
    uv_timer_start(&d->tick, on_tick, d->cfg.tick_ms, d->cfg.tick_ms);
    return d;
}

static void dispatch_maybe_free(struct dispatch *d)
{
    if (!d->freeing || d->handles_open > 0 || total_in_flight(d) > 0)
        return;
    free(d->q.e);
    free(d->tq.e);
    free(d->jobs);
    free(d->owned);
    d->magic = 0;
    free(d);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct dispatch *d = h->data;
    DISPATCH_CHECK(d);
    d->handles_open--;
    dispatch_maybe_free(d);
}

void dispatch_free(struct dispatch *d)
{
    if (!d)
        return;
    DISPATCH_CHECK(d);
    assert(!d->freeing);
    d->freeing = true;
    d->stopping = true;
    d->stop_cb = NULL;
    d->prepare.data = d;
    d->tick.data = d;
    uv_close((uv_handle_t *)&d->prepare, on_handle_closed);
    uv_close((uv_handle_t *)&d->tick, on_handle_closed);
}

void dispatch_set_tracer(struct dispatch *d, struct tracer *t)
{
    DISPATCH_CHECK(d);
    d->tracer = t;
}

bool dispatch_has_room(const struct dispatch *d)
{
    DISPATCH_CHECK(d);
    return !d->stopping && held(d) < d->cfg.queue_capacity;
}

int dispatch_submit(struct dispatch *d, struct payment *p)
{
    DISPATCH_CHECK(d);
    if (d->stopping)
        return -ESHUTDOWN;
    if (p->state == LEDGER_RECORDED)
        return -EINVAL;
    if (is_owned(d, p->index))
        return -EALREADY;
    if (held(d) >= d->cfg.queue_capacity)
        return -EAGAIN;
    q_push_back(d, &d->q, (struct qent){.pidx = p->index});
    set_owned(d, p->index, true);
    return 0;
}

void dispatch_set_pair(struct dispatch *d, const struct dispatch_pair *pair)
{
    DISPATCH_CHECK(d);
    if (!pair) {
        d->pair_on = false;
        memset(&d->pair, 0, sizeof(d->pair));
        return;
    }
    assert(pair->acked != NULL);
    d->pair = *pair;
    d->pair_on = true;
}

void dispatch_kick(struct dispatch *d)
{
    if (!d)
        return;
    DISPATCH_CHECK(d);
    d->kicked = true;
}

/* ---------------- events ---------------- */

/* *seq (if not NULL) gets the event's sequence number (valid when 0 is
 * returned). */
static int emit_event(struct dispatch *d, enum event_type type, const struct job *j, int64_t at_ms,
                      struct payment **out, uint64_t *seq)
{
    struct event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    ev.processor = j->proc;
    memcpy(ev.id, j->id, sizeof(ev.id));
    ev.at_ms = at_ms;
    if (type == EVENT_RECORDED)
        ev.amount_cents = j->amount_cents;
    struct payment *p = NULL;
    int rv = d->emit(d->emit_arg, &ev, &p);
    if (out)
        *out = p;
    if (seq)
        *seq = ev.seq;
    return rv;
}

/* The payment is finished (or gone) for dispatch: release job and ownership. */
static void job_finish(struct dispatch *d, struct job *j)
{
    set_owned(d, j->pidx, false);
    job_put(d, j);
}

/* Waits (pinned) until `at`, backoff unchanged. */
static void job_wait_until(struct dispatch *d, struct job *j, uint64_t at)
{
    j->op = JOB_WAIT;
    if (j->backoff_ms == 0)
        j->backoff_ms = d->cfg.retry_backoff_ms;
    j->next_ms = at;
    jl_append(&d->waiting, j);
}

static void job_to_waiting(struct dispatch *d, struct job *j, uint64_t now)
{
    j->op = JOB_WAIT;
    if (j->backoff_ms == 0)
        j->backoff_ms = d->cfg.retry_backoff_ms;
    j->next_ms = now + j->backoff_ms;
    j->backoff_ms *= 2;
    if (j->backoff_ms > d->cfg.retry_backoff_max_ms)
        j->backoff_ms = d->cfg.retry_backoff_max_ms;
    jl_append(&d->waiting, j);
}

/* "payment recorded": RECORDED made and applied (rv of the emit). */
static void trace_recorded(struct dispatch *d, const struct job *j, uint64_t start_ns,
                           int64_t at_ms, int rv)
{
    struct trace_span sp;
    trace_span_child(d->tracer, &sp, "payment recorded", TRACE_KIND_INTERNAL, &j->tctx, start_ns);
    const char *proc = proc_name[j->proc];
    const char *result = rv == 0 ? "recorded" : rv == -EEXIST ? "already" : "refused";
    trace_span_str(&sp, "paynode.processor", proc, strlen(proc));
    trace_span_str(&sp, "paynode.result", result, strlen(result));
    trace_span_int(&sp, "paynode.requested_at_ms", at_ms);
    if (rv != 0 && rv != -EEXIST)
        trace_span_status(&sp, TRACE_STATUS_ERROR);
    trace_span_end(d->tracer, &sp, 0);
}

static void emit_recorded(struct dispatch *d, struct job *j, int64_t at_ms)
{
    char idtxt[UUID_TEXT_LEN + 1];
    bool traced = j->traced && d->tracer;
    uint64_t start_ns = traced ? uv_hrtime() : 0;
    int rv = emit_event(d, EVENT_RECORDED, j, at_ms, NULL, NULL);
    if (traced)
        trace_recorded(d, j, start_ns, at_ms, rv);
    if (rv == 0 || rv == -EEXIST) {
        d->stats.recorded[j->proc]++;
    } else if (rv == -EPROTO) {
        d->stats.conflicts++;
        uuid_format(j->id, idtxt);
        idtxt[UUID_TEXT_LEN] = 0;
        log_error("dispatch",
                  "payment %s recorded by %s but the ledger has it on the other "
                  "processor",
                  idtxt, proc_name[j->proc]);
    } else {
        d->stats.dropped++;
        log_warn("dispatch", "RECORDED refused by the ledger: %d", rv);
    }
    job_finish(d, j);
}

/* Definite "not recorded" on every attempt: FAILED, then first in the queue. */
static void fail_and_requeue(struct dispatch *d, struct job *j)
{
    int rv = emit_event(d, EVENT_FAILED, j, 0, NULL, NULL);
    if (rv != 0) {
        /* -EEXIST: recorded meanwhile (peer); -ENOENT: purged. Either way not ours. */
        d->stats.dropped++;
        job_finish(d, j);
        return;
    }
    d->stats.failed[j->proc]++;
    struct qent e = {.pidx = j->pidx, .bad = j->bad};
    job_put(d, j); /* frees one job slot first, so the ring has room */
    q_push_front(d, &d->q, e);
}

static void park(struct dispatch *d, struct job *j)
{
    char idtxt[UUID_TEXT_LEN + 1];
    uuid_format(j->id, idtxt);
    idtxt[UUID_TEXT_LEN] = 0;
    log_error("dispatch", "payment %s parked after %u unexpected answers from %s", idtxt,
              (unsigned)j->bad, proc_name[j->proc]);
    d->stats.parked++;
    job_put(d, j); /* stays owned: nothing will pick it up again until a purge */
}

/* ---------------- tracing ---------------- */

/* Takes the payment's trace context, if the ledger kept one (tracing on and
 * the payment sampled). */
static void job_trace_load(struct dispatch *d, struct job *j, const struct payment *pay)
{
    if (!d->tracer || pay->trace == 0)
        return;
    uint8_t flags;
    const struct event_trace *t = ledger_trace(d->ledger, pay, &flags);
    if (!t)
        return;
    memcpy(j->tctx.trace_id, t->trace_id, TRACE_ID_LEN);
    memcpy(j->tctx.span_id, t->span_id, TRACE_SPAN_ID_LEN);
    j->tctx.flags = flags;
    j->traced = true;
}

#define TRACEPARENT_HEADER "traceparent: "
#define TRACEPARENT_HEADER_MAX (sizeof(TRACEPARENT_HEADER) - 1 + TRACE_TRACEPARENT_LEN + 1)

/* A traced job's request is about to start: its span's id and start time, and
 * the header naming that span (into buf) after base's headers (into hdrs).
 * Returns the header list to send: base when the job is not traced. */
static const char *const *trace_request(struct dispatch *d, struct job *j, const char *const *base,
                                        const char **hdrs, size_t cap, char *buf)
{
    if (!j->traced || !d->tracer)
        return base;
    trace_new_span_id(d->tracer, j->span_id);
    j->span_start_ns = uv_hrtime();
    struct trace_ctx c = j->tctx;
    memcpy(c.span_id, j->span_id, TRACE_SPAN_ID_LEN);
    memcpy(buf, TRACEPARENT_HEADER, sizeof(TRACEPARENT_HEADER) - 1);
    trace_format_traceparent(&c, buf + sizeof(TRACEPARENT_HEADER) - 1);
    size_t n = 0;
    while (base && base[n])
        n++;
    assert(n + 2 <= cap); /* base's headers, ours, NULL */
    (void)cap;
    if (n > 0)
        memcpy(hdrs, base, n * sizeof(*hdrs));
    hdrs[n++] = buf;
    hdrs[n] = NULL;
    return hdrs;
}

/* The span of a traced job's request that just answered. outcome is a literal. */
static void trace_answer(struct dispatch *d, const struct job *j, const char *name,
                         const struct httpc_result *res, const char *outcome, bool error)
{
    if (!j->traced || !d->tracer || d->freeing)
        return;
    struct trace_span sp;
    trace_span_child_id(d->tracer, &sp, name, TRACE_KIND_CLIENT, &j->tctx, j->span_id,
                        j->span_start_ns);
    const char *proc = proc_name[j->proc];
    trace_span_str(&sp, "paynode.processor", proc, strlen(proc));
    trace_span_str(&sp, "paynode.outcome", outcome, strlen(outcome));
    trace_span_int(&sp, "http.response.status_code", res->status);
    trace_span_int(&sp, "paynode.duration_us", (int64_t)res->elapsed_us);
    if (error)
        trace_span_status(&sp, TRACE_STATUS_ERROR);
    trace_span_end(d->tracer, &sp, 0);
}

/* ---------------- requests ---------------- */

static void on_post_done(void *arg, const struct httpc_result *res);
static void on_get_done(void *arg, const struct httpc_result *res);

static int start_post(struct dispatch *d, struct job *j, uint64_t now)
{
    char body[PROCESSOR_BODY_MAX];
    size_t len = processor_payment_body(body, j->id, j->amount_cents, j->requested_at_ms);
    const char *hdrs[4];
    char tp[TRACEPARENT_HEADER_MAX];
    const char *const *headers = trace_request(d, j, processor_json_headers, hdrs, 4, tp);
    int rv = httpc_request(d->httpc, "POST", d->post_url[j->proc], headers, body, len,
                           d->cfg.timeout_ms, on_post_done, j);
    if (rv != 0)
        return rv;
    assert(j->op != JOB_POST && j->op != JOB_GET); /* one attempt per payment at a time */
    j->op = JOB_POST;
    j->sent_ms = now;
    jl_append(&d->inflight[j->proc], j);
    d->stats.sent[j->proc]++;
    return 0;
}

static int start_get(struct dispatch *d, struct job *j, uint64_t now)
{
    char url[DISPATCH_URL_MAX];
    int rv = processor_url(url, sizeof(url), d->base_url[j->proc], PROCESSOR_URL_PAYMENT, j->id);
    assert(rv > 0); /* its length was checked in dispatch_new() */
    const char *hdrs[2];
    char tp[TRACEPARENT_HEADER_MAX];
    const char *const *headers = trace_request(d, j, NULL, hdrs, 2, tp);
    rv = httpc_request(d->httpc, "GET", url, headers, NULL, 0, d->cfg.confirm_timeout_ms,
                       on_get_done, j);
    if (rv != 0)
        return rv;
    j->op = JOB_GET;
    j->sent_ms = now;
    jl_append(&d->inflight[j->proc], j);
    d->stats.confirms[j->proc]++;
    return 0;
}

static bool has_room(const struct dispatch *d, int p)
{
    return busy(d, p) < d->cfg.max_in_flight[p] && d->free_jobs.head != NULL;
}

/* Whether the job's payment is still dispatch's to act on: it exists, is not
 * recorded, and this node owns it (or the job claims a takeover and has not
 * emitted its SENDING yet). Otherwise the job is dropped. */
static bool job_still_ours(struct dispatch *d, struct job *j)
{
    struct payment *pay = ledger_at(d->ledger, j->pidx);
    if (pay && pay->state != LEDGER_RECORDED && (j->claim || ours(d, pay)))
        return true;
    d->stats.dropped++;
    job_finish(d, j);
    return false;
}

/* A POST could not start (it never left this process): definitely not
 * recorded by this attempt. */
static void post_not_started(struct dispatch *d, struct job *j, int rv, uint64_t now)
{
    log_warn("dispatch", "request to %s not started: %d", proc_name[j->proc], rv);
    if (j->pinned) {
        j->get_next = true;
        job_to_waiting(d, j, now); /* an earlier attempt (maybe not ours) may still land */
    } else {
        fail_and_requeue(d, j);
    }
}

/* Pops the front of ring r and sends it to p. Entries of the takeover ring
 * belong to another owner until our SENDING; they are pinned from the start
 * (the dead owner may have sent them to p, which is the default, with an
 * unknown requestedAt). Returns 0 when the ring advanced (sent, parked for an
 * ack, or dropped), -1 when nothing more can start in this iteration. */
static int send_next(struct dispatch *d, struct ring *r, int p, bool probe, uint64_t now)
{
    bool takeover = r == &d->tq;
    struct qent e = q_pop(d, r);
    struct payment *pay = ledger_at(d->ledger, e.pidx);
    if (!pay || pay->state != LEDGER_ACCEPTED || (!takeover && !ours(d, pay))) {
        /* Recorded, being sent or taken over by the peer meanwhile: not ours to send. */
        set_owned(d, e.pidx, false);
        d->stats.dropped++;
        return 0;
    }
    struct job *j = job_get(d);
    assert(j != NULL); /* has_room() checked */
    j->pidx = e.pidx;
    j->bad = e.bad;
    memcpy(j->id, pay->id, sizeof(j->id));
    j->amount_cents = pay->amount_cents;
    j->proc = (uint8_t)p;
    j->requested_at_ms = clock_wall_ms();
    job_trace_load(d, j, pay);
    bool leaving_fallback = (pay->failed & (1u << LEDGER_FALLBACK)) != 0;
    uint64_t seq = 0;
    int rv = emit_event(d, EVENT_SENDING, j, j->requested_at_ms, NULL, &seq);
    if (rv != 0) {
        log_warn("dispatch", "SENDING refused by the ledger: %d", rv);
        d->stats.dropped++;
        job_finish(d, j);
        return 0;
    }
    if (takeover) {
        j->pinned = true;
        j->unknown_ms = now; /* the dead owner's attempt, if any, was sent before now */
        j->backoff_ms = d->cfg.retry_backoff_ms;
    }
    if (probe) {
        health_probe_sent(d->health, p, now);
        d->stats.probes[p]++;
    }
    /* shared is read after our SENDING: node_emit marks it when that event
     * may reach the peer. */
    if (d->pair_on && pay->shared && (p == LEDGER_FALLBACK || leaving_fallback) && !acked(d, seq)) {
        j->op = JOB_WAIT_ACK;
        j->ack_seq = seq;
        jl_append(&d->acking[p], j);
        d->stats.gated[p]++;
        return 0;
    }
    rv = start_post(d, j, now);
    if (rv != 0) {
        post_not_started(d, j, rv, now);
        return -1;
    }
    sync_health(d);
    return 0;
}

/* Attempts whose SENDING the peer now holds go out (same processor, same
 * requestedAt). Each list is in emission order, so in seq order: the first
 * one not acked ends the walk. */
static void service_acking(struct dispatch *d, uint64_t now)
{
    for (int p = 0; p < LEDGER_NPROC; p++) {
        struct job *next;
        for (struct job *j = d->acking[p].head; j; j = next) {
            next = j->next;
            struct payment *pay = ledger_at(d->ledger, j->pidx);
            if (!pay || pay->state != LEDGER_SENDING || pay->processor != j->proc ||
                !ours(d, pay)) {
                jl_remove(&d->acking[p], j);
                d->stats.dropped++;
                job_finish(d, j);
                continue;
            }
            if (!acked(d, j->ack_seq))
                break;
            jl_remove(&d->acking[p], j);
            int rv = start_post(d, j, now);
            if (rv != 0)
                post_not_started(d, j, rv, now);
        }
    }
    sync_health(d);
}

/* When the attempt's fate is settled for sure: a GET sent from then on that
 * answers 404 means "not recorded, and never will be". */
static uint64_t confirm_at_ms(const struct dispatch *d, const struct job *j, uint64_t now)
{
    const struct health_view *v = health_view_get(d->health);
    return j->unknown_ms + health_view_settle_ms(v, j->proc, now) + d->cfg.confirm_margin_ms;
}

/* The first GET after an unknown fate: once the processor can have finished
 * the attempt (its send time + the expected latency, at least a few ms, at
 * most the settle time: the confirming GET comes then anyway). */
static uint64_t first_get_at_ms(const struct dispatch *d, const struct job *j, uint64_t now)
{
    const struct health_view *v = health_view_get(d->health);
    uint64_t e = health_view_expected_ms(v, j->proc, now);
    uint64_t cap = health_view_settle_ms(v, j->proc, now);
    if (e > cap)
        e = cap;
    if (e < DISPATCH_FIRST_GET_MIN_MS)
        e = DISPATCH_FIRST_GET_MIN_MS;
    uint64_t at = j->sent_ms + e;
    return at > now ? at : now;
}

/* Pinned payments. GET /payments/{id} first: after an unknown fate (once the
 * processor can have finished the attempt), after a claim, after a 500/429/
 * not-sent to a re-POST, after a 422 (then only GETs), and always once the
 * unknown attempt has surely settled. A 404 before the settle time (the
 * attempt may still be inside the processor) is followed by a re-POST with
 * the same requestedAt if the processor is usable, else by another GET after
 * the backoff. */
static void service_waiting(struct dispatch *d, uint64_t now)
{
    const struct health_view *v = health_view_get(d->health);
    struct job *next;
    for (struct job *j = d->waiting.head; j; j = next) {
        next = j->next;
        if (now < j->next_ms)
            continue;
        if (busy(d, j->proc) >= d->cfg.max_in_flight[j->proc])
            continue;
        jl_remove(&d->waiting, j);
        if (!job_still_ours(d, j))
            continue;
        if (j->claim) {
            int rv = emit_event(d, EVENT_SENDING, j, j->requested_at_ms, NULL, NULL);
            if (rv != 0) {
                d->stats.dropped++;
                job_finish(d, j);
                continue;
            }
            j->claim = false;
        }
        uint64_t confirm_at = confirm_at_ms(d, j, now);
        int rv;
        if (j->known || j->get_next || now >= confirm_at ||
            health_view_assess(v, j->proc, now) != HEALTH_OK) {
            /* failing: a POST would only get 500; slow: it would tell nothing sooner */
            rv = start_get(d, j, now);
        } else {
            rv = start_post(d, j, now);
            if (rv == 0)
                d->stats.retries[j->proc]++;
        }
        if (rv != 0) {
            j->op = JOB_WAIT; /* nothing started: wait again */
            jl_append(&d->waiting, j);
            j->next_ms = now + j->backoff_ms;
            if (!j->known && confirm_at > now && confirm_at < j->next_ms)
                j->next_ms = confirm_at;
        }
        sync_health(d);
    }
}

static void hold_end(struct dispatch *d, uint64_t now)
{
    if (d->holding) {
        d->holding = false;
        d->stats.held_ms += now - d->hold_since;
    }
}

/* What the capacity-aware policy weighs (health_view_route()). */
static void load_of(const struct dispatch *d, struct health_load *l)
{
    l->queued = d->q.count + d->tq.count; /* taken-over payments wait for the default too */
    for (int p = 0; p < LEDGER_NPROC; p++) {
        l->busy[p] = busy(d, p);
        l->cap[p] = d->cfg.max_in_flight[p];
    }
}

/* An overflow episode (the default full and its queue too long to wait for:
 * payments go to the fallback) is logged when it starts and once no payment
 * has overflowed for DISPATCH_OVERFLOW_QUIET_MS, not per payment. */
#define DISPATCH_OVERFLOW_QUIET_MS 1000

static void overflow_started(struct dispatch *d, const struct health_view *v,
                             const struct health_load *l, uint64_t now)
{
    d->overflow_last_ms = now;
    d->stats.overflowed++;
    if (d->overflowing)
        return;
    d->overflowing = true;
    log_fields(LOG_INFO, "dispatch", "overflow to the fallback started",
               "\"queued\":%" PRIu32 ",\"drainMs\":%" PRIu64 ",\"defaultPerS\":%" PRIu32
               ",\"boundMs\":%" PRIu32,
               l->queued, health_view_drain_ms(v, l, now),
               health_view_capacity_per_s(v, LEDGER_DEFAULT, l->cap[LEDGER_DEFAULT], now),
               v->overflow_ms);
}

static void overflow_check_end(struct dispatch *d, uint64_t now)
{
    if (!d->overflowing || now - d->overflow_last_ms < DISPATCH_OVERFLOW_QUIET_MS)
        return;
    d->overflowing = false;
    log_fields(LOG_INFO, "dispatch", "overflow to the fallback ended",
               "\"queued\":%" PRIu32 ",\"overflowed\":%" PRIu64, d->q.count + d->tq.count,
               d->stats.overflowed);
}

static void pump(struct dispatch *d, bool with_waiting)
{
    if (!can_start(d))
        return; /* stopping, or paused: the tick re-checks */
    uint64_t now = uv_now(d->loop);
    sync_health(d);
    if (d->pair_on && (with_waiting || d->kicked)) {
        d->kicked = false;
        if (d->acking[0].head || d->acking[1].head)
            service_acking(d, now);
    }
    if (with_waiting && d->waiting.head)
        service_waiting(d, now);
    const struct health_view *v = health_view_get(d->health);
    /* Taken over: the default only, and only while it is usable. */
    while (d->tq.count > 0 && health_view_assess(v, LEDGER_DEFAULT, now) == HEALTH_OK &&
           has_room(d, LEDGER_DEFAULT))
        if (send_next(d, &d->tq, LEDGER_DEFAULT, false, now) != 0)
            break;
    while (d->q.count > 0) {
        int p = health_choose(d->health, now) /* logs routing changes */;
        if (p == HEALTH_HOLD) {
            if (!d->holding) {
                d->holding = true;
                d->hold_since = now;
                d->stats.hold_episodes++;
            }
            for (int q = 0; q < LEDGER_NPROC && d->q.count > 0; q++)
                if (health_view_should_probe(v, q, now) && has_room(d, q))
                    (void)send_next(d, &d->q, q, true, now);
            break;
        }
        hold_end(d, now);
        if (p == LEDGER_FALLBACK && health_view_should_probe(v, LEDGER_DEFAULT, now) &&
            has_room(d, LEDGER_DEFAULT)) {
            if (send_next(d, &d->q, LEDGER_DEFAULT, true, now) != 0)
                break;
            continue;
        }
        if (!d->free_jobs.head)
            break;
        struct health_load load;
        load_of(d, &load);
        int r = health_view_route(v, &load, now);
        if (r == HEALTH_WAIT || r == HEALTH_HOLD)
            break;
        if (r != p)
            overflow_started(d, v, &load, now);
        if (send_next(d, &d->q, r, false, now) != 0)
            break;
    }
    if (d->q.count == 0)
        hold_end(d, now);
}

static void check_stopped(struct dispatch *d)
{
    if (!d->stopping || !d->stop_cb)
        return;
    uint64_t now = uv_now(d->loop);
    if (total_in_flight(d) > 0 && now < d->stop_deadline)
        return;
    log_fields(LOG_INFO, "dispatch", "stopped",
               "\"inFlight\":%u,\"queued\":%" PRIu32 ",\"pinned\":%u,\"awaitingAck\":%u",
               total_in_flight(d), d->q.count + d->tq.count, d->waiting.n,
               d->acking[0].n + d->acking[1].n);
    dispatch_stopped_cb *cb = d->stop_cb;
    d->stop_cb = NULL;
    cb(d->stop_arg);
}

static void on_prepare(uv_prepare_t *h)
{
    struct dispatch *d = container_of(h, struct dispatch, prepare);
    DISPATCH_CHECK(d);
    pump(d, false);
}

static void on_tick(uv_timer_t *t)
{
    struct dispatch *d = container_of(t, struct dispatch, tick);
    DISPATCH_CHECK(d);
    pump(d, true);
    overflow_check_end(d, uv_now(d->loop));
    check_stopped(d);
}

/* ---------------- answers ---------------- */

/* Common prologue: take j out of its in-flight list; true when the answer
 * must be ignored (shutting down, purged). */
static bool answer_begin(struct dispatch *d, struct job *j)
{
    jl_remove(&d->inflight[j->proc], j);
    if (d->freeing || j->orphan) {
        job_put(d, j); /* purged or shutting down: the ledger is not ours to change */
        return true;
    }
    return false;
}

/* 422: the processor holds the payment, maybe with another requestedAt (the
 * dead owner's attempt, or one through another path). Ask it which; never
 * move the payment. */
static void confirm_known(struct dispatch *d, struct job *j, uint64_t now)
{
    j->known = true;
    d->stats.duplicates[j->proc]++;
    if (can_start(d)) {
        if (!job_still_ours(d, j))
            return;
        if (start_get(d, j, now) == 0)
            return;
    }
    job_wait_until(d, j, now); /* paused, stopping or not started: the tick asks */
}

static void on_post_done(void *arg, const struct httpc_result *res)
{
    struct job *j = arg;
    assert(j->magic == JOB_MAGIC && j->op == JOB_POST);
    struct dispatch *d = j->d;
    DISPATCH_CHECK(d);
    uint64_t now = uv_now(d->loop);
    hist_add_ns(&d->stats.answer[j->proc], res->elapsed_us * 1000);
    uint64_t ms64 = res->elapsed_us / 1000;
    uint32_t ms = ms64 > UINT32_MAX ? UINT32_MAX : (uint32_t)ms64;
    enum dispatch_fate fate = dispatch_classify(res->outcome, res->status);
    if (j->traced) {
        static const char *const fate_name[] = {[DISPATCH_RECORDED] = "recorded",
                                                [DISPATCH_NOT_RECORDED] = "not_recorded",
                                                [DISPATCH_UNKNOWN] = "unknown",
                                                [DISPATCH_REJECTED] = "rejected"};
        bool dup = fate == DISPATCH_RECORDED && res->status == 422;
        trace_answer(d, j, "processor POST", res, dup ? "duplicate" : fate_name[fate],
                     fate != DISPATCH_RECORDED);
    }
    /* health may already be gone once dispatch_free() was called */
    struct health *h = d->freeing ? NULL : d->health;
    switch (h ? fate : DISPATCH_REJECTED) {
    case DISPATCH_RECORDED:
        health_observe(h, j->proc, HEALTH_OBS_OK, ms, now);
        break;
    case DISPATCH_NOT_RECORDED:
        health_observe(h, j->proc,
                       res->outcome == HTTPC_NOT_SENT ? HEALTH_OBS_NOT_SENT
                       : res->status == 429           ? HEALTH_OBS_BUSY
                                                      : HEALTH_OBS_FAIL,
                       ms, now);
        break;
    case DISPATCH_UNKNOWN:
        health_observe(h, j->proc, HEALTH_OBS_UNKNOWN, ms, now);
        break;
    case DISPATCH_REJECTED:
        break;
    }
    if (answer_begin(d, j)) {
        dispatch_maybe_free(d);
        return;
    }
    sync_health(d);

    switch (fate) {
    case DISPATCH_RECORDED:
        if (res->status == 422)
            confirm_known(d, j, now);
        else
            emit_recorded(d, j, j->requested_at_ms);
        break;
    case DISPATCH_NOT_RECORDED:
        if (j->pinned) {
            /* An earlier attempt may still land (or have landed): ask first. */
            j->get_next = true;
            job_to_waiting(d, j, now);
        } else {
            fail_and_requeue(d, j);
        }
        break;
    case DISPATCH_UNKNOWN:
        d->stats.unknown[j->proc]++;
        if (!j->pinned)
            j->backoff_ms = 0;
        j->pinned = true;
        j->unknown_ms = now;
        j->get_next = true;
        log_warn("dispatch", "attempt on %s: fate unknown after %u ms (%s, status %d); pinned",
                 proc_name[j->proc], ms, res->error ? res->error : "", res->status);
        /* The processor may hold it already (it records even when we gave up):
         * ask as soon as it can have finished the attempt. */
        job_wait_until(d, j, first_get_at_ms(d, j, now));
        break;
    case DISPATCH_REJECTED:
        j->bad++;
        log_error("dispatch", "unexpected status %d from %s: %.*s", res->status, proc_name[j->proc],
                  (int)(res->body_len > 200 ? 200 : res->body_len), res->body ? res->body : "");
        if (j->bad >= d->cfg.max_bad_attempts)
            park(d, j);
        else if (j->pinned) {
            j->get_next = true;
            job_to_waiting(d, j, now);
        } else {
            fail_and_requeue(d, j);
        }
        break;
    }
    check_stopped(d);
}

static void on_get_done(void *arg, const struct httpc_result *res)
{
    struct job *j = arg;
    assert(j->magic == JOB_MAGIC && j->op == JOB_GET);
    struct dispatch *d = j->d;
    DISPATCH_CHECK(d);
    uint64_t now = uv_now(d->loop);
    if (j->traced) {
        bool ok = res->outcome == HTTPC_OK && (res->status == 200 || res->status == 404);
        trace_answer(d, j, "processor GET", res,
                     !ok                  ? "unanswered"
                     : res->status == 200 ? "found"
                                          : "absent",
                     !ok);
    }
    if (answer_begin(d, j)) {
        dispatch_maybe_free(d);
        return;
    }
    sync_health(d);
    if (res->outcome == HTTPC_OK && res->status == 200) {
        int64_t at = j->requested_at_ms;
        if (!processor_record_requested_at(res->body, res->body_len, &at)) {
            log_warn("dispatch", "record on %s without a readable requestedAt: keeping ours",
                     proc_name[j->proc]);
            at = j->requested_at_ms;
        }
        emit_recorded(d, j, at);
    } else if (res->outcome == HTTPC_OK && res->status == 404 && !j->known) {
        /* Asked (sent) after the unknown attempt surely settled: absent for good,
         * free to go anywhere. Asked before: it may still be inside the
         * processor; re-POST with the same requestedAt if the processor is
         * usable (422 if it lands twice), else ask again after the backoff. */
        uint64_t confirm_at = confirm_at_ms(d, j, now);
        if (j->sent_ms >= confirm_at) {
            fail_and_requeue(d, j);
        } else if (health_view_assess(health_view_get(d->health), j->proc, now) == HEALTH_OK) {
            j->get_next = false;
            job_wait_until(d, j, now); /* the tick re-POSTs (or asks, if it turned) */
        } else {
            job_to_waiting(d, j, now);
            if (confirm_at < j->next_ms)
                j->next_ms = confirm_at > now ? confirm_at : now;
        }
    } else {
        /* Unanswered, or a 404 although it said 422 (recorded for sure): ask again;
         * the payment stays pinned to this processor. */
        job_to_waiting(d, j, now);
    }
    check_stopped(d);
}

/* ---------------- resume, purge, stop, stats ---------------- */

struct resume_ctx {
    struct dispatch *d;
    uint8_t owner;
    unsigned taken;
    bool full;
};

static void on_resume_visit(struct payment *p, void *arg)
{
    struct resume_ctx *c = arg;
    struct dispatch *d = c->d;
    if (p->owner != c->owner || is_owned(d, p->index))
        return;
    if (p->state == LEDGER_ACCEPTED) {
        if (held(d) >= d->cfg.queue_capacity) {
            c->full = true;
            return;
        }
        /* Another owner's: it may have sent it to the default, unseen by us. */
        bool takeover = d->pair_on && c->owner != d->pair.self_id;
        q_push_back(d, takeover ? &d->tq : &d->q, (struct qent){.pidx = p->index});
    } else if (p->state == LEDGER_SENDING) {
        if (held(d) >= d->cfg.queue_capacity || !d->free_jobs.head) {
            c->full = true;
            return;
        }
        struct job *j = job_get(d);
        uint64_t now = uv_now(d->loop);
        j->pidx = p->index;
        memcpy(j->id, p->id, sizeof(j->id));
        j->amount_cents = p->amount_cents;
        j->proc = p->processor;
        j->requested_at_ms = p->requested_at_ms;
        job_trace_load(d, j, p);
        j->pinned = true;
        j->claim = true;
        j->get_next = true;  /* the owner's attempt may have landed: ask first */
        j->unknown_ms = now; /* its last attempt may have been sent just before */
        j->backoff_ms = d->cfg.retry_backoff_ms;
        j->op = JOB_WAIT;
        j->next_ms = now;
        jl_append(&d->waiting, j);
    } else {
        return;
    }
    set_owned(d, p->index, true);
    c->taken++;
}

int dispatch_resume_unrecorded(struct dispatch *d, uint8_t owner, unsigned *taken)
{
    DISPATCH_CHECK(d);
    struct resume_ctx c = {.d = d, .owner = owner};
    if (!d->stopping)
        ledger_foreach_unrecorded(d->ledger, on_resume_visit, &c);
    if (taken)
        *taken = c.taken;
    log_fields(LOG_INFO, "dispatch", "resumed unrecorded payments",
               "\"owner\":%u,\"taken\":%u,\"complete\":%s", owner, c.taken,
               c.full ? "false" : "true");
    return c.full ? -EAGAIN : 0;
}

void dispatch_purge(struct dispatch *d)
{
    DISPATCH_CHECK(d);
    d->q.head = d->q.count = 0;
    d->tq.head = d->tq.count = 0;
    struct job *j;
    while ((j = d->waiting.head) != NULL) {
        jl_remove(&d->waiting, j);
        job_put(d, j);
    }
    for (int p = 0; p < LEDGER_NPROC; p++) {
        while ((j = d->acking[p].head) != NULL) {
            jl_remove(&d->acking[p], j);
            job_put(d, j);
        }
        for (j = d->inflight[p].head; j; j = j->next)
            j->orphan = true;
    }
    memset(d->owned, 0, (d->owned_bits + 7) / 8);
    hold_end(d, uv_now(d->loop));
}

void dispatch_stop(struct dispatch *d, dispatch_stopped_cb *cb, void *arg)
{
    DISPATCH_CHECK(d);
    d->stopping = true;
    d->stop_cb = cb;
    d->stop_arg = arg;
    d->stop_deadline = uv_now(d->loop) + d->cfg.stop_timeout_ms;
    hold_end(d, uv_now(d->loop));
    /* cb runs from the next tick, never from inside this call. */
}

void dispatch_get_stats(const struct dispatch *d, struct dispatch_stats *out)
{
    DISPATCH_CHECK(d);
    *out = d->stats;
    out->queued = d->q.count + d->tq.count;
    out->takeover_queued = d->tq.count;
    out->pinned = d->waiting.n;
    out->awaiting_ack = d->acking[0].n + d->acking[1].n;
    for (int p = 0; p < LEDGER_NPROC; p++)
        out->in_flight[p] = d->inflight[p].n;
    if (d->holding)
        out->held_ms += uv_now(d->loop) - d->hold_since;
}
