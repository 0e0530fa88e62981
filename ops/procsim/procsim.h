/* Payment processor simulator: one processor per process, the HTTP API of the
 * Rinha de Backend 2025 processors (payments with a configurable delay and
 * failure switch, a rate-limited service-health, admin summary/config/purge)
 * plus GET /admin/stats for tests. Runs on one libuv loop over lib/http.c.
 * Payments are kept in memory only (psim_store.h): they survive only as long
 * as the process. It does not model the real processor's database latency or
 * its exact error bodies. */
#ifndef OPS_PROCSIM_PROCSIM_H
#define OPS_PROCSIM_PROCSIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define PROCSIM_FEE_SCALE 1000000 /* fees are kept in parts per million */

struct procsim_config {
    char host[64];             /* TCP listen address (--host, PROCSIM_HOST, 0.0.0.0) */
    int port;                  /* --port, PROCSIM_PORT, 8001; 0 = ephemeral */
    char name[33];             /* --name, PROCSIM_NAME, "default" ([A-Za-z0-9_.-]) */
    char fee_text[16];         /* --fee as given, e.g. "0.05" */
    uint32_t fee_ppm;          /* the same, exactly, in parts per million */
    char token[64];            /* --token, PROCSIM_TOKEN, "123" */
    unsigned health_window_ms; /* --health-window-ms, 5000 */
    unsigned health_queue;     /* --health-queue, 2: calls that may wait for a window */
    unsigned delay_ms;         /* --delay-ms, 0 */
    bool failing;              /* --failing[=true|false], false */
    char unix_path[108];       /* --unix PATH, empty = none */
    unsigned max_in_flight;    /* --max-in-flight, 800 */
    unsigned max_queued;       /* --max-queued, 500 */
    unsigned max_conns;        /* --max-conns, 4096 (http connection slots) */
};

/* Fills cfg from argv (--flag value or --flag=value), falling back to the
 * PROCSIM_* environment variables, then to the defaults above. Returns 0, or
 * -EINVAL with a one-line reason in err. */
int procsim_config_parse(struct procsim_config *cfg, int argc, char **argv, char *err,
                         size_t err_len) __attribute__((warn_unused_result));

/* Parses a decimal fraction "0", "0.05", "1", up to 6 fraction digits, within
 * [0, 1], into parts per million. Returns 0 or -EINVAL. */
int procsim_fee_parse(const char *s, uint32_t *ppm) __attribute__((warn_unused_result));

/* Writes total_cents/100 * ppm/1e6 exactly as a decimal (at least two
 * fraction digits, more when needed, no trailing zeros beyond two) plus NUL;
 * returns the length. buf must hold 48 bytes. */
size_t procsim_fee_format(int64_t total_cents, uint32_t ppm, char *buf);

struct procsim;

/* Allocates the simulator (store, request pool, http server). NULL on OOM. */
struct procsim *procsim_new(uv_loop_t *loop, const struct procsim_config *cfg);

/* Listens on TCP (and on the unix socket when configured). 0 or UV_E*. */
int procsim_start(struct procsim *ps) __attribute__((warn_unused_result));

/* Bound TCP port (after procsim_start). */
int procsim_port(const struct procsim *ps);

/* Closes the server and every handle; frees ps in the last close callback,
 * then calls cb(arg). Pending requests are dropped unanswered. */
void procsim_close(struct procsim *ps, void (*cb)(void *arg), void *arg);

#endif
