/* The second tick: series buckets and the terminal progress line. */
#include "live.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lib/container.h"

#define LIVE_MAGIC 0x4c474c56u
#define LIVE_TICK_MS 1000u

void lg_live_init(struct lg_live *l, uv_loop_t *loop, const struct lg_opts *o, struct lg_results *r)
{
    memset(l, 0, sizeof(*l));
    l->magic = LIVE_MAGIC;
    l->o = o;
    l->r = r;
    l->tty_fd = -1;
    uv_timer_init(loop, &l->timer);
    if (isatty(STDERR_FILENO)) {
        struct winsize ws;
        l->tty_fd = STDERR_FILENO;
        l->cols = ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
    }
}

static uint32_t elapsed_ms(const struct lg_live *l)
{
    return (uint32_t)((uv_hrtime() - l->t0_ns + 500000) / 1000000);
}

static uint32_t vus_now(const struct lg_live *l, uint32_t t_ms)
{
    const struct lg_results *r = l->r;
    if (l->o->rate) {
        uint64_t done = r->payments.ok + r->payments.failed;
        return r->payments.sent > done ? (uint32_t)(r->payments.sent - done) : 0;
    }
    return lg_schedule_users_at(&l->o->sched, t_ms);
}

static void print_line(const struct lg_live *l, const struct lg_sec *b, bool last)
{
    if (l->tty_fd < 0 || b == NULL)
        return;
    char line[LG_LIVE_LINE_MAX + 16];
    line[0] = '\r';
    size_t n = lg_live_format(line + 1, LG_LIVE_LINE_MAX, l->o, l->r, b);
    if (l->cols > 1 && n > l->cols - 1)
        n = l->cols - 1; /* a wrapped line could not be redrawn by \r */
    n += 1;
    memcpy(line + n, "\x1b[K", 3);
    n += 3;
    if (last)
        line[n++] = '\n';
    /* a terminal write of ~100 bytes once a second; a blocked terminal (^S)
     * would stall the loop, which is why this is off unless stderr is a tty */
    ssize_t w = write(l->tty_fd, line, n);
    (void)w;
}

static void on_live_tick(uv_timer_t *t)
{
    struct lg_live *l = container_of(t, struct lg_live, timer);
    assert(l->magic == LIVE_MAGIC);
    if (l->stopped)
        return;
    uint32_t t_ms = elapsed_ms(l);
    const struct lg_sec *b = lg_series_roll(&l->r->series, t_ms, l->r->payments.ok,
                                            l->r->payments.failed, vus_now(l, t_ms), false);
    print_line(l, b, false);
    /* the next whole second after now, so a late tick does not cause a burst */
    do
        l->next_ms += LIVE_TICK_MS;
    while (l->next_ms <= t_ms);
    uint64_t loop_ms = uv_now(t->loop) - l->t0_loop;
    uv_timer_start(t, on_live_tick, l->next_ms > loop_ms ? l->next_ms - loop_ms : 0, 0);
}

void lg_live_start(struct lg_live *l, uint64_t t0_ns)
{
    l->t0_ns = t0_ns;
    l->t0_loop = uv_now(l->timer.loop);
    l->next_ms = LIVE_TICK_MS;
    l->started = true;
    uv_timer_start(&l->timer, on_live_tick, LIVE_TICK_MS, 0);
}

void lg_live_stop(struct lg_live *l, uint32_t ran_ms)
{
    if (!l->started || l->stopped)
        return;
    l->stopped = true;
    uv_timer_stop(&l->timer);
    const struct lg_sec *b = lg_series_roll(&l->r->series, ran_ms, l->r->payments.ok,
                                            l->r->payments.failed, vus_now(l, ran_ms), false);
    if (b == NULL && l->r->series.n > 0)
        b = &l->r->series.sec[l->r->series.n - 1]; /* the tick at the end already closed it */
    print_line(l, b, true);
}

void lg_live_finish(struct lg_live *l)
{
    if (!l->started || l->finished)
        return;
    if (!l->stopped)
        lg_live_stop(l, elapsed_ms(l));
    l->finished = true;
    (void)lg_series_roll(&l->r->series, elapsed_ms(l), l->r->payments.ok, l->r->payments.failed, 0,
                         true);
}

/* "4.21ms" below 100 ms, "1234ms" above. */
static void fmt_ms(char *buf, size_t cap, uint32_t us)
{
    uint32_t cms = (us + 5) / 10; /* hundredths of a ms */
    if (us < 100000)
        snprintf(buf, cap, "%" PRIu32 ".%02" PRIu32 "ms", cms / 100, cms % 100);
    else
        snprintf(buf, cap, "%" PRIu32 "ms", (us + 500) / 1000);
}

size_t lg_live_format(char *buf, size_t cap, const struct lg_opts *o, const struct lg_results *r,
                      const struct lg_sec *b)
{
    assert(cap > 0);
    uint32_t span = b->end_ms > b->start_ms ? b->end_ms - b->start_ms : 0;
    uint64_t per_s = span ? ((uint64_t)b->ok * 1000 + span / 2) / span : 0;
    char p99[32];
    if (b->ok)
        fmt_ms(p99, sizeof(p99), b->p99_us);
    else
        snprintf(p99, sizeof(p99), "-");
    char who[40];
    if (o->rate)
        snprintf(who, sizeof(who), "in flight %" PRIu32, b->vus);
    else
        snprintf(who, sizeof(who), "VUs %" PRIu32, b->vus);
    char stage[128] = "";
    unsigned ns = o->no_schedule ? 0 : o->sched.nstages;
    if (ns > 0 && r->stages_started > 0) {
        const struct lg_stage *st = &o->sched.stages[r->stages_started - 1];
        snprintf(stage, sizeof(stage), "  stage %u/%u: D %" PRIu32 "ms%s, F %" PRIu32 "ms%s",
                 r->stages_started, ns, st->delay_ms[0], st->failing[0] ? " failing" : "",
                 st->delay_ms[1], st->failing[1] ? " failing" : "");
    } else if (ns > 0) {
        snprintf(stage, sizeof(stage), "  stage 0/%u", ns);
    }
    int n = snprintf(buf, cap,
                     "%" PRIu32 ".%" PRIu32 "/%" PRIu32 "s  %s  %" PRIu64
                     " pay/s  p99 %s  err %" PRIu32 " (%" PRIu64 " total)%s",
                     b->end_ms / 1000, b->end_ms % 1000 / 100, o->sched.duration_ms / 1000, who,
                     per_s, p99, b->failed, r->payments.failed, stage);
    if (n < 0) {
        buf[0] = '\0';
        return 0;
    }
    return (size_t)n < cap ? (size_t)n : cap - 1;
}
