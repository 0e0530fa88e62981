/* Built-in challenge schedules, the custom stage-list parser, compression and
 * the user ramp. */
#include "schedule.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ST(at_s, dd, df, fd, ff)                                                                   \
    {                                                                                              \
        .at_ms = (at_s)*1000u, .delay_ms = {(dd), (fd)}, .failing = {(df), (ff) }                  \
    }

static const struct lg_stage preview_stages[] = {
    ST(1, 0, false, 0, false),      ST(10, 100, false, 0, false), ST(20, 100, true, 0, false),
    ST(30, 2000, true, 1000, true), ST(40, 20, false, 20, false), ST(50, 0, false, 5000, false),
};

static const struct lg_stage final_stages[] = {
    ST(1, 0, false, 0, false),       ST(30, 1000, false, 0, false), ST(60, 500, false, 0, false),
    ST(90, 2000, true, 1000, false), ST(120, 5000, true, 5, false), ST(150, 0, false, 5, true),
    ST(180, 100, false, 5, false),   ST(210, 50, false, 0, false),  ST(240, 103, false, 10, false),
    ST(270, 2000, false, 0, false),
};

static void fill(struct lg_schedule *s, const char *name, uint32_t dur_s, uint32_t users,
                 int64_t cents, const struct lg_stage *st, unsigned n)
{
    memset(s, 0, sizeof(*s));
    strncpy(s->name, name, sizeof(s->name) - 1);
    s->duration_ms = dur_s * 1000u;
    s->users = users;
    s->amount_cents = cents;
    s->nstages = n;
    memcpy(s->stages, st, n * sizeof(*st));
}

int lg_schedule_builtin(const char *name, struct lg_schedule *s)
{
    if (name == NULL)
        return -EINVAL;
    if (strcmp(name, "preview") == 0) {
        fill(s, "preview", 60, 500, 1990, preview_stages,
             sizeof(preview_stages) / sizeof(preview_stages[0]));
        return 0;
    }
    if (strcmp(name, "final") == 0) {
        fill(s, "final", 300, 603, 2005, final_stages,
             sizeof(final_stages) / sizeof(final_stages[0]));
        return 0;
    }
    return -EINVAL;
}

/* Unsigned decimal integer; advances *p. */
static int parse_uint(const char **p, uint32_t max, uint32_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > max)
            return -EINVAL;
        s++;
    }
    *p = s;
    *out = (uint32_t)v;
    return 0;
}

/* Seconds with up to 3 decimals, to ms. */
static int parse_secs_ms(const char **p, uint32_t *out_ms)
{
    uint32_t whole;
    if (parse_uint(p, 4000000, &whole) != 0)
        return -EINVAL;
    uint32_t ms = whole * 1000u;
    if (**p == '.') {
        (*p)++;
        uint32_t mult = 100;
        if (**p < '0' || **p > '9')
            return -EINVAL;
        while (**p >= '0' && **p <= '9') {
            if (mult == 0)
                return -EINVAL; /* finer than a millisecond */
            ms += (uint32_t)(**p - '0') * mult;
            mult /= 10;
            (*p)++;
        }
    }
    *out_ms = ms;
    return 0;
}

static int parse_flag(const char **p, bool *out)
{
    if (**p == 'y')
        *out = true;
    else if (**p == 'n')
        *out = false;
    else
        return -EINVAL;
    (*p)++;
    return 0;
}

static int parse_proc(const char **p, uint32_t *delay, bool *failing)
{
    if (parse_uint(p, 3600000, delay) != 0 || **p != '/')
        return -EINVAL;
    (*p)++;
    return parse_flag(p, failing);
}

int lg_schedule_parse_stages(const char *text, struct lg_schedule *s)
{
    if (text == NULL || *text == '\0')
        return -EINVAL;
    struct lg_stage st[LG_SCHED_MAX_STAGES];
    unsigned n = 0;
    const char *p = text;
    for (;;) {
        if (n == LG_SCHED_MAX_STAGES)
            return -E2BIG;
        struct lg_stage *g = &st[n];
        if (parse_secs_ms(&p, &g->at_ms) != 0 || *p++ != ':')
            return -EINVAL;
        if (parse_proc(&p, &g->delay_ms[0], &g->failing[0]) != 0 || *p++ != ',')
            return -EINVAL;
        if (parse_proc(&p, &g->delay_ms[1], &g->failing[1]) != 0)
            return -EINVAL;
        if (n > 0 && g->at_ms <= st[n - 1].at_ms)
            return -EINVAL;
        n++;
        if (*p == '\0')
            break;
        if (*p++ != ';')
            return -EINVAL;
    }
    memcpy(s->stages, st, n * sizeof(st[0]));
    s->nstages = n;
    memset(s->name, 0, sizeof(s->name));
    strcpy(s->name, "custom");
    return 0;
}

void lg_schedule_compress(struct lg_schedule *s, uint32_t duration_ms)
{
    if (s->duration_ms == 0 || duration_ms == 0)
        return;
    for (unsigned i = 0; i < s->nstages; i++)
        s->stages[i].at_ms =
            (uint32_t)((uint64_t)s->stages[i].at_ms * duration_ms / s->duration_ms);
    s->duration_ms = duration_ms;
}

uint32_t lg_schedule_users_at(const struct lg_schedule *s, uint64_t t_ms)
{
    if (s->users <= 1 || s->duration_ms == 0)
        return s->users == 0 ? 0 : 1;
    if (t_ms >= s->duration_ms)
        return s->users;
    return 1u + (uint32_t)((uint64_t)(s->users - 1) * t_ms / s->duration_ms);
}
