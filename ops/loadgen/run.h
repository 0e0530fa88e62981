/* The load generator's driver: one libuv loop running virtual users (or a
 * fixed-rate open-loop sender), the processors' schedule, the auditor, the
 * loop-lag probe, setup and teardown, over lib/httpc. Fills struct lg_results;
 * rendering is report.c's job. */
#ifndef LG_RUN_H
#define LG_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"
#include "opts.h"
#include "score.h"
#include "series.h"

struct lg_errors {
    uint64_t timeout;     /* no answer within the timeout */
    uint64_t connection;  /* connect failed, reset, truncated answer */
    uint64_t client_busy; /* our own request pool was full (not sent) */
    uint64_t status_4xx;
    uint64_t status_5xx;
    uint64_t other; /* 1xx/3xx */
};

struct lg_req_stats {
    uint64_t sent; /* attempts; sent == ok + failed once the run is over */
    uint64_t ok;   /* 2xx */
    uint64_t failed;
    struct lg_errors err;
};

struct lg_audit {
    uint32_t at_ms;               /* from the start of the run */
    bool ok;                      /* all three summaries fetched and parsed */
    char error[96];               /* why not, when !ok */
    int64_t ours[LG_PROC_COUNT];  /* the target's counts */
    int64_t procs[LG_PROC_COUNT]; /* the processors' admin counts */
    uint64_t inconsistencies;     /* |d default| + |d fallback| */
};

struct lg_results {
    int64_t start_wall_ms; /* wall clock at the start of the run */
    uint32_t ran_ms;       /* how long the load phase actually ran */
    uint32_t max_active_users;
    struct lg_req_stats payments; /* POST /payments */
    struct lg_req_stats admin;    /* setup, schedule, audit and final calls */
    struct lg_hist pay_hist;      /* 2xx POST /payments latency */
    struct lg_hist all_hist;      /* every 2xx request of the run */
    struct lg_hist lag_hist;      /* loop lag samples */
    struct lg_series series;      /* per second of the load phase (live.c fills it) */
    unsigned naudits, audits_cap;
    struct lg_audit *audits;
    uint64_t inconsistencies;
    unsigned audit_errors;
    unsigned stages_applied; /* stages whose four calls all got 2xx */
    unsigned stages_started;
    uint64_t stage_errors; /* failed schedule calls */
    bool have_final;       /* the final processor summaries are in */
    char final_error[128];
    struct lg_proc_summary final[LG_PROC_COUNT];
    struct lg_score score;
    char *accepted; /* "uuid\n" per 2xx payment */
    size_t accepted_len, accepted_cap;
    uint64_t accepted_count;
    double cpu_user_s, cpu_sys_s;
    double loop_idle_s; /* loop time blocked in epoll during the load phase */
    double runq_wait_s;
    /* time runnable but not running (schedstat); -1 unknown */ /* process CPU during the load
                                                                   phase */
    bool realtime;                                              /* SCHED_FIFO was set as asked */
    bool interrupted;      /* SIGINT/SIGTERM ended the run early */
    char setup_error[160]; /* set when the run could not be done */
};

/* Allocates and initialises results (histograms included). NULL on ENOMEM. */
struct lg_results *lg_results_new(const struct lg_opts *o);
void lg_results_free(struct lg_results *r);

/* Runs the whole thing on a private loop: setup, load, drain, final summaries,
 * score. Returns 0 when the run completed (whatever the score), -EHOSTUNREACH
 * when the target could not be reached at setup (r->setup_error says why), or
 * another -errno for local failures. Blocks until done. */
int lg_run(const struct lg_opts *o, struct lg_results *r) __attribute__((warn_unused_result));

/* Classifies one finished request into stats (ok / error kind). timeout_us is
 * the request's timeout, used to tell timeouts from other transport errors. */
struct httpc_result;
bool lg_classify(struct lg_req_stats *st, const struct httpc_result *res, uint64_t timeout_us);

/* Parses a target summary {"default":{"totalRequests":n,...},"fallback":{...}}
 * into counts[2]; a processor admin summary into *ps. 0 or -EINVAL. */
int lg_parse_target_summary(const char *js, size_t len, int64_t counts[LG_PROC_COUNT])
    __attribute__((warn_unused_result));
int lg_parse_proc_summary(const char *js, size_t len, struct lg_proc_summary *ps)
    __attribute__((warn_unused_result));

#endif
