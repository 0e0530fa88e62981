/* JSON report rendering over a growable buffer. Strings written here are our
 * own (names, curl messages), escaped for JSON all the same. */
#include "report.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sb {
    char *buf;
    size_t len, cap;
    bool oom;
};

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sb *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap * 2 + (size_t)n;
        char *nb = realloc(b->buf, ncap);
        if (nb == NULL) {
            b->oom = true;
            return;
        }
        b->buf = nb;
        b->cap = ncap;
    }
}

static void sb_str(struct sb *b, const char *s)
{
    sb_printf(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            sb_printf(b, "\\%c", c);
        else if (c < 0x20)
            sb_printf(b, "\\u%04x", c);
        else
            sb_printf(b, "%c", c);
    }
    sb_printf(b, "\"");
}

void lg_report_ms(uint64_t ns, char *buf)
{
    uint64_t us = (ns + 500) / 1000;
    snprintf(buf, 32, "%" PRIu64 ".%03" PRIu64, us / 1000, us % 1000);
}

static void sb_ms(struct sb *b, uint64_t ns)
{
    char t[32];
    lg_report_ms(ns, t);
    sb_printf(b, "%s", t);
}

static void sb_dec(struct sb *b, __int128 v, int min_frac)
{
    char t[LG_DEC_FMT_MAX];
    lg_dec_format(v, min_frac, t);
    sb_printf(b, "%s", t);
}

static void sb_latency(struct sb *b, const struct lg_hist *h)
{
    sb_printf(b, "{\"count\":%" PRIu64 ",\"p50\":", h->count);
    sb_ms(b, lg_hist_percentile_ns(h, 50000));
    sb_printf(b, ",\"p90\":");
    sb_ms(b, lg_hist_percentile_ns(h, 90000));
    sb_printf(b, ",\"p99\":");
    sb_ms(b, lg_hist_percentile_ns(h, 99000));
    sb_printf(b, ",\"p999\":");
    sb_ms(b, lg_hist_percentile_ns(h, 99900));
    sb_printf(b, ",\"max\":");
    sb_ms(b, h->max_us * 1000);
    sb_printf(b, "}");
}

static void sb_stats(struct sb *b, const struct lg_req_stats *s)
{
    sb_printf(b,
              "\"sent\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"failed\":%" PRIu64
              ",\"errors\":{\"timeout\":%" PRIu64 ",\"connection\":%" PRIu64
              ",\"clientBusy\":%" PRIu64 ",\"4xx\":%" PRIu64 ",\"5xx\":%" PRIu64
              ",\"other\":%" PRIu64 "}",
              s->sent, s->ok, s->failed, s->err.timeout, s->err.connection, s->err.client_busy,
              s->err.status_4xx, s->err.status_5xx, s->err.other);
}

static void sb_proc(struct sb *b, const struct lg_proc_summary *p)
{
    sb_printf(b, "{\"totalRequests\":%" PRId64 ",\"totalAmount\":", p->count);
    sb_dec(b, p->amount, 2);
    if (p->has_fee_rate) {
        sb_printf(b, ",\"feePerTransaction\":");
        sb_dec(b, p->fee_rate, 2);
    }
    if (p->has_total_fee) {
        sb_printf(b, ",\"totalFee\":");
        sb_dec(b, p->total_fee, 2);
    }
    sb_printf(b, "}");
}

char *lg_report_render(const struct lg_opts *o, const struct lg_results *r, int rc)
{
    struct sb b = {.cap = 4096};
    b.buf = malloc(b.cap);
    if (b.buf == NULL)
        return NULL;
    const struct lg_schedule *s = &o->sched;

    sb_printf(&b, "{\"schedule\":");
    sb_str(&b, o->rate ? "rate" : s->name);
    sb_printf(&b, ",\"target\":");
    sb_str(&b, o->target);
    sb_printf(&b, ",\"completed\":%s", rc == 0 ? "true" : "false");
    if (r->setup_error[0]) {
        sb_printf(&b, ",\"error\":");
        sb_str(&b, r->setup_error);
    }
    sb_printf(&b, ",\"interrupted\":%s", r->interrupted ? "true" : "false");
    sb_printf(&b, ",\"durationS\":");
    sb_dec(&b, (__int128)s->duration_ms * (LG_DEC_ONE / 1000), 0);
    sb_printf(&b, ",\"ranS\":");
    sb_dec(&b, (__int128)r->ran_ms * (LG_DEC_ONE / 1000), 0);
    if (o->rate)
        sb_printf(&b, ",\"rate\":%" PRIu32 ",\"users\":null", o->rate);
    else
        sb_printf(&b, ",\"users\":%" PRIu32, s->users);
    sb_printf(&b, ",\"maxInFlightOrUsers\":%" PRIu32, r->max_active_users);
    sb_printf(&b, ",\"amount\":");
    sb_dec(&b, (__int128)s->amount_cents * LG_DEC_CENT, 2);
    sb_printf(&b, ",\"timeoutMs\":%" PRIu32, o->timeout_ms);

    sb_printf(&b, ",\"requests\":{\"payments\":{");
    sb_stats(&b, &r->payments);
    sb_printf(&b, ",\"latencyMs\":");
    sb_latency(&b, &r->pay_hist);
    sb_printf(&b, "},\"admin\":{");
    sb_stats(&b, &r->admin);
    sb_printf(&b, "},\"all2xx\":{\"count\":%" PRIu64 ",\"p99Ms\":", r->all_hist.count);
    sb_ms(&b, lg_hist_percentile_ns(&r->all_hist, 99000));
    sb_printf(&b, "}}");

    sb_printf(&b, ",\"accepted\":%" PRIu64, r->accepted_count);

    sb_printf(
        &b, ",\"stages\":{\"planned\":%u,\"started\":%u,\"applied\":%u,\"errors\":%" PRIu64 "}",
        o->no_schedule ? 0 : s->nstages, r->stages_started, r->stages_applied, r->stage_errors);

    sb_printf(&b, ",\"audits\":[");
    for (unsigned i = 0; i < r->naudits; i++) {
        const struct lg_audit *a = &r->audits[i];
        sb_printf(&b, "%s{\"atS\":", i ? "," : "");
        sb_dec(&b, (__int128)a->at_ms * (LG_DEC_ONE / 1000), 0);
        sb_printf(&b, ",\"ok\":%s", a->ok ? "true" : "false");
        if (a->ok)
            sb_printf(&b,
                      ",\"ours\":{\"default\":%" PRId64 ",\"fallback\":%" PRId64
                      "},\"processors\":{\"default\":%" PRId64 ",\"fallback\":%" PRId64
                      "},\"inconsistencies\":%" PRIu64,
                      a->ours[0], a->ours[1], a->procs[0], a->procs[1], a->inconsistencies);
        else {
            sb_printf(&b, ",\"error\":");
            sb_str(&b, a->error);
        }
        sb_printf(&b, "}");
    }
    sb_printf(&b, "],\"auditErrors\":%u,\"inconsistencies\":%" PRIu64, r->audit_errors,
              r->inconsistencies);

    if (r->have_final) {
        const struct lg_score *sc = &r->score;
        sb_printf(&b, ",\"processors\":{\"default\":");
        sb_proc(&b, &r->final[0]);
        sb_printf(&b, ",\"fallback\":");
        sb_proc(&b, &r->final[1]);
        sb_printf(&b, "},\"score\":{\"grossAmount\":");
        sb_dec(&b, sc->gross, 2);
        sb_printf(&b, ",\"fees\":");
        sb_dec(&b, sc->fees, 2);
        sb_printf(&b, ",\"p99Ms\":%d.%02d,\"bonus\":%d.%02d,\"fine\":%d.%02d", sc->p99_cms / 100,
                  sc->p99_cms % 100, sc->bonus_h / 100, sc->bonus_h % 100, sc->fine_h / 100,
                  sc->fine_h % 100);
        sb_printf(&b, ",\"lag\":%" PRId64 ",\"disqualified\":%s,\"net\":", sc->lag,
                  sc->lag < 0 ? "true" : "false");
        sb_dec(&b, sc->net, 2);
        sb_printf(&b, "}");
    } else {
        sb_printf(&b, ",\"score\":null");
        if (r->final_error[0]) {
            sb_printf(&b, ",\"scoreError\":");
            sb_str(&b, r->final_error);
        }
    }

    uint64_t lag_p99 = lg_hist_percentile_ns(&r->lag_hist, 99000);
    sb_printf(&b, ",\"loopLagMs\":{\"samples\":%" PRIu64 ",\"p50\":", r->lag_hist.count);
    sb_ms(&b, lg_hist_percentile_ns(&r->lag_hist, 50000));
    sb_printf(&b, ",\"p99\":");
    sb_ms(&b, lag_p99);
    sb_printf(&b, ",\"max\":");
    sb_ms(&b, r->lag_hist.max_us * 1000);
    sb_printf(&b, "},\"realtime\":%s", r->realtime ? "true" : "false");
    sb_printf(&b, ",\"lagTrustworthy\":%s",
              r->lag_hist.count > 0 && lag_p99 <= 1000000 ? "true" : "false");
    double ran_s = r->ran_ms / 1000.0;
    sb_printf(&b, ",\"cpu\":{\"userS\":%.3f,\"sysS\":%.3f,\"percentOfRun\":%.1f", r->cpu_user_s,
              r->cpu_sys_s, ran_s > 0 ? 100.0 * (r->cpu_user_s + r->cpu_sys_s) / ran_s : 0.0);
    /* loop busy = not blocked in epoll; run-queue wait = runnable but not running:
     * loop lag with a low busy share and a high run-queue wait comes from the
     * machine (other processes), not from this loop */
    sb_printf(&b, ",\"loopBusyPercent\":%.1f",
              ran_s > 0 && r->loop_idle_s <= ran_s ? 100.0 * (ran_s - r->loop_idle_s) / ran_s
                                                   : 0.0);
    if (r->runq_wait_s >= 0)
        sb_printf(&b, ",\"runQueueWaitS\":%.3f}", r->runq_wait_s);
    else
        sb_printf(&b, ",\"runQueueWaitS\":null}");
    sb_printf(&b, "}\n");
    if (b.oom) {
        free(b.buf);
        return NULL;
    }
    return b.buf;
}

/* ---- strict JSON syntax check (recursive descent) ---- */

struct jc {
    const char *s;
    size_t len, i;
    int depth;
};

static void jc_ws(struct jc *c)
{
    while (c->i < c->len &&
           (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\n' || c->s[c->i] == '\r'))
        c->i++;
}

static bool jc_lit(struct jc *c, const char *lit)
{
    size_t n = strlen(lit);
    if (c->len - c->i < n || memcmp(c->s + c->i, lit, n) != 0)
        return false;
    c->i += n;
    return true;
}

static bool jc_digits(struct jc *c)
{
    size_t st = c->i;
    while (c->i < c->len && c->s[c->i] >= '0' && c->s[c->i] <= '9')
        c->i++;
    return c->i > st;
}

static bool jc_number(struct jc *c)
{
    if (c->i < c->len && c->s[c->i] == '-')
        c->i++;
    if (c->i < c->len && c->s[c->i] == '0')
        c->i++;
    else if (!jc_digits(c))
        return false;
    if (c->i < c->len && c->s[c->i] == '.') {
        c->i++;
        if (!jc_digits(c))
            return false;
    }
    if (c->i < c->len && (c->s[c->i] == 'e' || c->s[c->i] == 'E')) {
        c->i++;
        if (c->i < c->len && (c->s[c->i] == '+' || c->s[c->i] == '-'))
            c->i++;
        if (!jc_digits(c))
            return false;
    }
    return true;
}

static bool jc_string(struct jc *c)
{
    if (c->i >= c->len || c->s[c->i] != '"')
        return false;
    c->i++;
    while (c->i < c->len) {
        unsigned char ch = (unsigned char)c->s[c->i++];
        if (ch == '"')
            return true;
        if (ch < 0x20)
            return false;
        if (ch == '\\') {
            if (c->i >= c->len)
                return false;
            char e = c->s[c->i++];
            if (e == 'u') {
                for (int k = 0; k < 4; k++, c->i++)
                    if (c->i >= c->len || !((c->s[c->i] >= '0' && c->s[c->i] <= '9') ||
                                            (c->s[c->i] >= 'a' && c->s[c->i] <= 'f') ||
                                            (c->s[c->i] >= 'A' && c->s[c->i] <= 'F')))
                        return false;
            } else if (strchr("\"\\/bfnrt", e) == NULL || e == '\0') {
                return false;
            }
        }
    }
    return false;
}

static bool jc_value(struct jc *c);

static bool jc_container(struct jc *c, char close, bool object)
{
    if (++c->depth > 64)
        return false;
    c->i++;
    jc_ws(c);
    if (c->i < c->len && c->s[c->i] == close) {
        c->i++;
        c->depth--;
        return true;
    }
    for (;;) {
        jc_ws(c);
        if (object) {
            if (!jc_string(c))
                return false;
            jc_ws(c);
            if (c->i >= c->len || c->s[c->i] != ':')
                return false;
            c->i++;
            jc_ws(c);
        }
        if (!jc_value(c))
            return false;
        jc_ws(c);
        if (c->i >= c->len)
            return false;
        if (c->s[c->i] == ',') {
            c->i++;
            continue;
        }
        if (c->s[c->i] == close) {
            c->i++;
            c->depth--;
            return true;
        }
        return false;
    }
}

static bool jc_value(struct jc *c)
{
    if (c->i >= c->len)
        return false;
    switch (c->s[c->i]) {
    case '{':
        return jc_container(c, '}', true);
    case '[':
        return jc_container(c, ']', false);
    case '"':
        return jc_string(c);
    case 't':
        return jc_lit(c, "true");
    case 'f':
        return jc_lit(c, "false");
    case 'n':
        return jc_lit(c, "null");
    default:
        return jc_number(c);
    }
}

bool lg_json_valid(const char *js, size_t len)
{
    struct jc c = {.s = js, .len = len};
    jc_ws(&c);
    if (!jc_value(&c))
        return false;
    jc_ws(&c);
    return c.i == c.len;
}
