/* Command-line options of the load generator: parsing and validation only.
 * Strings point into argv (not copied). */
#ifndef LG_OPTS_H
#define LG_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schedule.h"

#define LG_URL_MAX 256
#define LG_TOKEN_MAX 128

struct lg_opts {
    const char *target;                  /* base URL of the service under test */
    const char *proc_url[LG_PROC_COUNT]; /* processors' base URLs */
    const char *token;                   /* X-Rinha-Token */
    const char *accepted_file;           /* NULL: do not write */
    const char *report_path;             /* NULL: stdout only */
    const char *html_path;               /* NULL: no HTML report */
    struct lg_schedule sched;            /* after --duration/--users/--amount/--stages */
    uint32_t rate;                       /* payments/s; 0 = virtual-user mode */
    uint32_t timeout_ms;                 /* per request */
    uint32_t drain_ms;                   /* wait after the last payment before final summaries */
    uint32_t rt_priority;                /* SCHED_FIFO priority for the generator; 0 = normal */
    uint32_t audit_interval_ms;          /* 0 disables audits */
    bool no_schedule;                    /* do not touch processor delay/failure */
    bool no_purge;                       /* do not purge processors or target at setup */
    bool score;                          /* rate mode: fetch summaries and score at the end */
    bool with_requested_at;              /* add "requestedAt" to payments (a processor as target) */
    bool help;                           /* --help given: caller prints usage, exits 0 */
};

/* Parses argv[1..argc). Accepts "--flag value" and "--flag=value". Returns 0, or
 * -EINVAL with a one-line reason in err (errcap bytes). */
int lg_opts_parse(int argc, char **argv, struct lg_opts *o, char *err, size_t errcap)
    __attribute__((warn_unused_result));

/* Usage text, for --help and for errors. */
const char *lg_opts_usage(void);

#endif
