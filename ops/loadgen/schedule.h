/* The challenge's scenarios: how long, how many virtual users, which amount,
 * and when the processors' delay/failure change. Built-in "preview" and "final"
 * schedules, a custom text form, proportional compression to a shorter run, and
 * the linear 1 -> N user ramp. Pure data: no I/O. */
#ifndef LG_SCHEDULE_H
#define LG_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#define LG_SCHED_MAX_STAGES 32
#define LG_SCHED_NAME_MAX 16

enum { LG_PROC_DEFAULT = 0, LG_PROC_FALLBACK = 1, LG_PROC_COUNT = 2 };

struct lg_stage {
    uint32_t at_ms;                   /* from the start of the run */
    uint32_t delay_ms[LG_PROC_COUNT]; /* processor delay to set */
    bool failing[LG_PROC_COUNT];      /* processor failure flag to set */
};

struct lg_schedule {
    char name[LG_SCHED_NAME_MAX];
    uint32_t duration_ms;
    uint32_t users;       /* the ramp's target */
    int64_t amount_cents; /* every payment's amount */
    unsigned nstages;     /* stages sorted by at_ms */
    struct lg_stage stages[LG_SCHED_MAX_STAGES];
};

/* Fills s with the built-in schedule "preview" or "final". -EINVAL for any
 * other name. */
int lg_schedule_builtin(const char *name, struct lg_schedule *s)
    __attribute__((warn_unused_result));

/* Parses a custom stage list "AT:DD/DF,FD/FF;AT:..." where AT is seconds from
 * the start (decimal allowed, ms precision), DD/FD delays in ms and DF/FF one
 * of y|n (failing), e.g. "1:0/n,0/n;10:100/n,0/y". Stages must be in strictly
 * increasing time order. Keeps s's duration, users and amount; sets name to
 * "custom". Returns 0, -EINVAL on any syntax error, -E2BIG past
 * LG_SCHED_MAX_STAGES. s is unchanged on error. */
int lg_schedule_parse_stages(const char *text, struct lg_schedule *s)
    __attribute__((warn_unused_result));

/* Scales every stage time by duration_ms / s->duration_ms (rounded down) and
 * sets the new duration; delays are unchanged. Assumes duration_ms > 0. */
void lg_schedule_compress(struct lg_schedule *s, uint32_t duration_ms);

/* Virtual users that should be active t_ms into the run: a linear ramp from 1
 * at t = 0 to users at t = duration (rounded down), k6's ramping-vus. */
uint32_t lg_schedule_users_at(const struct lg_schedule *s, uint64_t t_ms);

#endif
