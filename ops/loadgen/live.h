/* The run's once-a-second tick: closes a bucket of the per-second series
 * (results->series) and, when stderr is a terminal, redraws one progress line
 * in place ("\r", clear to end of line). Silent otherwise. One uv timer on the
 * driver's loop, re-armed at absolute second marks from the start of the load
 * phase so it does not drift; the tick costs a few scans of one histogram
 * (20-30 us measured) and one small write(2), no allocation. It knows the
 * results and the options, not the driver: run.c calls the hooks below at its
 * phase changes. */
#ifndef LG_LIVE_H
#define LG_LIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "opts.h"
#include "run.h"
#include "series.h"

#define LG_LIVE_LINE_MAX 160 /* bytes of one progress line, without \r and escapes */

struct lg_live {
    uint32_t magic;
    uv_timer_t timer; /* closed by the owner (run.c) with its other handles */
    const struct lg_opts *o;
    struct lg_results *r;
    uint64_t t0_ns;   /* uv_hrtime() at the start of the load phase */
    uint64_t t0_loop; /* uv_now() then, the timer's clock */
    uint32_t next_ms; /* the next tick, from the start of the load phase */
    int tty_fd;       /* stderr when it is a terminal, else -1 (silent) */
    unsigned cols;    /* terminal width: the line is cut to fit, so \r redraws it */
    bool started, stopped, finished;
};

/* Initialises l and its timer on loop (cannot fail); decides once whether
 * stderr is a terminal. */
void lg_live_init(struct lg_live *l, uv_loop_t *loop, const struct lg_opts *o,
                  struct lg_results *r);

/* Start of the load phase (t0_ns = the driver's own t0): first tick at 1 s. */
void lg_live_start(struct lg_live *l, uint64_t t0_ns);

/* End of the load phase after ran_ms: stops the tick, closes the partial last
 * second, and ends the progress line with a newline. Idempotent. */
void lg_live_stop(struct lg_live *l, uint32_t ran_ms);

/* Every payment in flight at the end has finished (or the run is over): closes
 * the wind-down bucket. Idempotent; a no-op if the load phase never started. */
void lg_live_finish(struct lg_live *l);

/* Renders the progress line for bucket b ending t_ms into the run (pure; for
 * tests). Returns the length written (< cap, NUL-terminated). */
size_t lg_live_format(char *buf, size_t cap, const struct lg_opts *o, const struct lg_results *r,
                      const struct lg_sec *b);

#endif
