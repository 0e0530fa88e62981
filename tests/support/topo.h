/* Integration-test topology: processor simulators and payment nodes started
 * as child processes on free loopback ports, with helpers to post payments,
 * read summaries (ours and the simulators' admin ones) and change the
 * simulators' behaviour. Everything blocks with bounded timeouts; stopping is
 * by PID (tests/support/proc). Binaries come from PROCSIM_BIN / PAYNODE_BIN. */
#ifndef TESTS_SUPPORT_TOPO_H
#define TESTS_SUPPORT_TOPO_H

#include <stdbool.h>
#include <stdint.h>

#include "proc.h"

#define TOPO_TOKEN "123"

struct topo_sim {
    struct proc proc;
    int port;
    char addr[32]; /* "127.0.0.1:port" */
    char url[48];  /* "http://127.0.0.1:port" */
};

struct topo_node {
    struct proc proc;
    int port;
    char addr[32];
    char log_path[128];
};

struct topo_counts {
    int64_t count[2]; /* default, fallback */
    int64_t cents[2];
};

/* The two simulators every topology test runs: the default (fee 0.05) and the
 * fallback (0.15), logging to <test>.default.log and <test>.fallback.log. */
void topo_sims_start(struct topo_sim *def, struct topo_sim *fb, const char *test);
void topo_sims_stop(struct topo_sim *def, struct topo_sim *fb);
/* Healthy, no delay, no records: the state each test starts from. */
void topo_sims_reset(const struct topo_sim *def, const struct topo_sim *fb);

/* Starts a simulator (name "default" or "fallback", fee "0.05"...), extra
 * flags NULL-terminated (may be NULL). Asserts on failure. */
void topo_sim_start(struct topo_sim *s, const char *name, const char *fee,
                    const char *const *extra_flags, const char *log_path);
void topo_sim_stop(struct topo_sim *s);

/* Starts a node with SERVER_PORT on a free port, processors at the two sims'
 * URLs and the extra "NAME=value" env (NULL-terminated, may be NULL). Waits
 * until it accepts connections. */
void topo_node_start(struct topo_node *n, const struct topo_sim *def, const struct topo_sim *fb,
                     const char *const *extra_env, const char *log_path);
int topo_node_stop(struct topo_node *n); /* SIGTERM; returns the exit status */

/* POST /payments; returns the HTTP status (or a negative errno). */
int topo_post_payment(const char *addr, const char *id, const char *amount);
/* A fresh random v4 UUID (lower case, 36 chars + NUL). */
void topo_uuid(char out[37]);

/* GET /payments-summary?from&to of a node (from/to ms, or INT64_MIN/MAX for
 * open bounds); 0 or a negative errno / HTTP status as -status. */
int topo_node_summary(const char *addr, int64_t from_ms, int64_t to_ms, struct topo_counts *out);
/* Waits until the node serves summaries (caught up with its peer), polling
 * every 50 ms at most tries times; fails the test otherwise. */
void topo_node_wait_ready(const struct topo_node *n, int tries);
/* Both simulators' admin summaries for the window, into out->count[0|1]. */
int topo_sims_summary(const struct topo_sim *def, const struct topo_sim *fb, int64_t from_ms,
                      int64_t to_ms, struct topo_counts *out);
/* Whether the payment is recorded by the simulator (GET /payments/{id}). */
bool topo_sim_has(const struct topo_sim *s, const char *id);

/* PUT /admin/configurations/delay and /failure. */
void topo_sim_set_delay(const struct topo_sim *s, int delay_ms);
void topo_sim_set_failure(const struct topo_sim *s, bool failing);
/* POST /admin/purge-payments on the sim, and /purge-payments on a node. */
void topo_sim_purge(const struct topo_sim *s);
void topo_node_purge(const char *addr);
/* POST /purge-payments to the node; its HTTP status (the request must be answered). */
int topo_node_purge_status(const char *addr);
/* The node's whole summary: default + fallback payments (it must answer). */
int64_t topo_node_total(const char *addr);

/* Polls the node summary (whole time) until its total count is `want` or
 * timeout_ms passes; returns the last total seen. */
int64_t topo_wait_total(const char *addr, int64_t want, int timeout_ms);

int64_t topo_now_ms(void);

/* A port p with p and p + 1 free on 127.0.0.1 for both TCP and UDP (a node's
 * nng pub and rep ports; its gossip port), drawn at random from
 * [TOPO_PORT_BASE, TOPO_PORT_BASE + TOPO_PORT_SPAN) (environment; default
 * 20000 and 12000: below the kernel's ephemeral range, so that no outgoing
 * connection takes it between this check and the node's bind). Fails the
 * test when none is found. */
int topo_free_port_pair(void);

/* The value of the sample `name` (with its labels, as printed) in the node's
 * /metrics; fails the test when it is absent or the page does not fit. */
int64_t topo_metric(const struct topo_node *n, const char *name);
void topo_sleep_ms(int ms);

#endif
