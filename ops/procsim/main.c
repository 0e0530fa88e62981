/* procsim: one simulated payment processor per process (see procsim.h).
 * Wiring only: flags, the loop, SIGTERM/SIGINT for a clean exit 0. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "lib/log.h"
#include "procsim.h"

static uv_signal_t sig_term, sig_int;
static struct procsim *sim;

static void usage(void)
{
    printf("usage: procsim [--port N] [--host ADDR] [--name NAME] [--fee 0.05] [--token T]\n"
           "               [--health-window-ms 5000] [--health-queue 2] [--delay-ms 0]\n"
           "               [--failing[=true|false]] [--unix PATH] [--max-in-flight 800]\n"
           "               [--max-queued 500] [--max-conns 4096]\n"
           "Environment fallbacks: PROCSIM_PORT, PROCSIM_HOST, PROCSIM_NAME, PROCSIM_FEE,\n"
           "PROCSIM_TOKEN, PROCSIM_HEALTH_WINDOW_MS, PROCSIM_HEALTH_QUEUE, PROCSIM_DELAY_MS,\n"
           "PROCSIM_FAILING, PROCSIM_UNIX, PROCSIM_MAX_IN_FLIGHT, PROCSIM_MAX_QUEUED,\n"
           "PROCSIM_MAX_CONNS. Payments are kept in memory for the life of the process.\n");
}

static void on_signal(uv_signal_t *s, int signum)
{
    log_info("procsim", "signal %d: shutting down", signum);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    if (sim)
        procsim_close(sim, NULL, NULL);
    sim = NULL;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage();
            return 0;
        }
    }
    struct procsim_config cfg;
    char err[256];
    if (procsim_config_parse(&cfg, argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "procsim: %s\n", err);
        return 2;
    }
    uv_loop_t loop;
    if (uv_loop_init(&loop) < 0) {
        fprintf(stderr, "procsim: cannot create the event loop\n");
        return 1;
    }
    sim = procsim_new(&loop, &cfg);
    if (!sim) {
        fprintf(stderr, "procsim: out of memory\n");
        return 1;
    }
    int code = 0;
    if (procsim_start(sim) < 0) {
        procsim_close(sim, NULL, NULL);
        sim = NULL;
        code = 1;
    } else {
        uv_signal_init(&loop, &sig_term);
        uv_signal_init(&loop, &sig_int);
        uv_signal_start(&sig_term, on_signal, SIGTERM);
        uv_signal_start(&sig_int, on_signal, SIGINT);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) {
        log_error("procsim", "event loop did not close cleanly");
        code = code ? code : 1;
    }
    return code;
}
