/* Per-second buckets: fixed storage, percentiles computed at roll time. */
#include "series.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

unsigned lg_series_cap_for(uint32_t duration_ms)
{
    return duration_ms / 1000 + 3;
}

int lg_series_init(struct lg_series *s, uint32_t duration_ms)
{
    memset(s, 0, sizeof(*s));
    lg_hist_init(&s->win);
    s->cap = lg_series_cap_for(duration_ms);
    s->sec = calloc(s->cap, sizeof(*s->sec));
    if (s->sec == NULL) {
        s->cap = 0;
        return -ENOMEM;
    }
    return 0;
}

void lg_series_release(struct lg_series *s)
{
    free(s->sec);
    s->sec = NULL;
    s->n = s->cap = 0;
}

static uint32_t clamp_u32(uint64_t v)
{
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

const struct lg_sec *lg_series_roll(struct lg_series *s, uint32_t t_ms, uint64_t ok_total,
                                    uint64_t failed_total, uint32_t vus, bool after)
{
    uint64_t ok = ok_total - s->last_ok, failed = failed_total - s->last_failed;
    if (t_ms < s->last_end_ms)
        t_ms = s->last_end_ms;
    if (t_ms == s->last_end_ms && ok == 0 && failed == 0 && s->win.count == 0)
        return NULL;
    struct lg_sec *b = NULL;
    if (s->n < s->cap) {
        b = &s->sec[s->n++];
        b->start_ms = s->last_end_ms;
        b->end_ms = t_ms;
        b->ok = clamp_u32(ok);
        b->failed = clamp_u32(failed);
        b->p50_us = clamp_u32((lg_hist_percentile_ns(&s->win, 50000) + 500) / 1000);
        b->p99_us = clamp_u32((lg_hist_percentile_ns(&s->win, 99000) + 500) / 1000);
        b->max_us = s->win.count ? clamp_u32(s->win.max_us) : 0;
        b->vus = vus;
        b->after = after;
    }
    s->last_end_ms = t_ms;
    s->last_ok = ok_total;
    s->last_failed = failed_total;
    if (s->win.count > 0)
        lg_hist_init(&s->win);
    return b;
}
