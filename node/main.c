/* paynode: wiring only. Reads the configuration, builds the modules around one
 * libuv loop, runs it, and shuts down in order on SIGTERM/SIGINT:
 * stop accepting -> finish in-flight processor attempts (bounded) -> answer
 * what is pending -> close every handle -> exit 0. */
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "lib/clock.h"
#include "lib/http.h"
#include "lib/httpc.h"
#include "lib/log.h"
#include "node/api.h"
#include "node/config.h"
#include "node/dispatch.h"
#include "node/health.h"
#include "node/ledger.h"
#include "node/node.h"
#include "node/obs.h"
#include "node/peer.h"

/* Sampled payments whose trace context the ledger keeps at once (not yet
 * recorded; about 30 bytes each, allocated only with tracing on). Beyond, a
 * payment's spans stop at its POST span (paynode_trace_payments_untracked_total). */
#define MAIN_TRACE_SLOTS 16384u

/* The process: the node and its signal handles. Only main() names the_proc
 * (static storage: debuggers and docs/BENCHMARKS.md find the node there); the
 * signal handler finds it through its handle's data. */
struct proc {
    struct node node;
    uv_signal_t sig_term, sig_int; /* .data is the struct proc */
};

static struct proc the_proc;

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            log_warn("main", "setrlimit(NOFILE) failed: %s", strerror(errno));
    }
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_httpc_closed(void *arg)
{
    struct node *n = arg;
    n->httpc = NULL;
    /* Whatever is left (signals, timers of closed modules) closes now. */
    uv_walk(n->loop, on_walk_close, NULL);
}

static void on_obs_closed(void *arg)
{
    struct node *n = arg;
    httpc_close(n->httpc, on_httpc_closed, n);
}

static void on_http_closed(struct http_server *s, void *arg)
{
    struct node *n = arg;
    n->http = NULL;
    health_close(n->health);
    n->health = NULL;
    dispatch_free(n->dispatch);
    n->dispatch = NULL;
    obs_close(&n->obs, on_obs_closed, n); /* the last spans go out first */
}

static void on_peer_closed(void *arg)
{
    struct node *n = arg;
    n->peer = NULL;
    http_server_close(n->http, on_http_closed, n);
}

static void on_dispatch_stopped(void *arg)
{
    struct node *n = arg;
    log_info("main", "dispatch drained; closing");
    if (n->peer)
        peer_close(n->peer, on_peer_closed, n);
    else
        on_peer_closed(n);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct proc *pr = h->data;
    struct node *n = &pr->node;
    assert(n->magic == NODE_MAGIC);
    if (n->stopping) {
        log_warn("main", "second signal %d: exiting now", signum);
        exit(0);
    }
    log_info("main", "signal %d: stopping", signum);
    n->stopping = true;
    http_server_stop_accepting(n->http);
    uv_signal_stop(&pr->sig_term);
    uv_signal_stop(&pr->sig_int);
    dispatch_stop(n->dispatch, on_dispatch_stopped, n);
}

/* dispatch's emit callback: node_emit() with the dispatch_emit_cb type (a
 * cast of node_emit itself would call it through the wrong type). */
static int emit_for_dispatch(void *arg, struct event *ev, struct payment **out)
{
    return node_emit(arg, ev, out);
}

/* Pair-mode callbacks for dispatch (docs/ROUTING.md, "In a pair"). The peer
 * is closed before dispatch is freed, but dispatch is stopped by then. */
static bool pair_acked(void *arg, uint64_t seq)
{
    struct node *n = arg;
    return n->peer && peer_acked(n->peer, seq);
}

static bool pair_listening(void *arg)
{
    struct node *n = arg;
    return n->peer && peer_listening(n->peer);
}

static bool pair_paused(void *arg)
{
    struct node *n = arg;
    return n->peer && peer_resyncing(n->peer);
}

/* What the peer asks of the node (struct peer_callbacks). */
static uint64_t pair_own_seq(void *arg)
{
    const struct node *n = arg;
    return n->seq;
}

static uint64_t pair_purge_epoch(void *arg)
{
    const struct node *n = arg;
    return n->purge_epoch;
}

static void pair_set_purge_epoch(void *arg, uint64_t epoch)
{
    struct node *n = arg;
    n->purge_epoch = epoch;
}

static bool pair_stopping(void *arg)
{
    const struct node *n = arg;
    return n->stopping;
}

static struct peer *make_peer(struct node *n)
{
    const struct config *c = &n->cfg;
    struct peer_config pc = {
        .node_id = (uint8_t)c->node_id,
        .nng_listen = c->nng_listen,
        .peer_nng_url = c->peer_nng_url,
        .gossip_listen = c->gossip_listen,
        .peer_gossip = c->peer_gossip,
        .key = c->peer_key,
        .fast_lane = c->peer_fast_lane != 0,
        .stream_flush_ms = c->stream_flush_ms,
        .test_drop_batches = c->test_drop_batches,
    };
    struct peer_callbacks cbs = {
        .own_seq = pair_own_seq,
        .purge_epoch = pair_purge_epoch,
        .set_purge_epoch = pair_set_purge_epoch,
        .stopping = pair_stopping,
        .arg = n,
    };
    return peer_new(n->loop, &pc, n->ledger, n->dispatch, n->health, &cbs);
}

/* Histograms always; tracing when an OTLP endpoint is configured. */
static int start_obs(struct node *n)
{
    const struct config *c = &n->cfg;
    char instance[8];
    snprintf(instance, sizeof(instance), "%u", c->node_id);
    struct obs_config ocfg = {.traces_url = c->otel_traces_url,
                              .service_name = c->otel_service_name,
                              .instance_id = instance,
                              .sampler = c->otel_sampler,
                              .queue_size = c->otel_queue_size,
                              .batch_size = c->otel_batch_size,
                              .delay_ms = c->otel_delay_ms,
                              .timeout_ms = c->otel_timeout_ms};
    obs_init(&n->obs);
    int rv = obs_start(&n->obs, n->loop, &ocfg);
    if (rv != 0)
        log_error("main", "tracing to %s: cannot start: %s", c->otel_traces_url, strerror(-rv));
    return rv;
}

static int start(struct node *n)
{
    struct config *c = &n->cfg;
    n->ledger = ledger_new(c->ledger_capacity);
    if (!n->ledger) {
        log_error("main", "ledger of %u payments: out of memory", c->ledger_capacity);
        return -ENOMEM;
    }

    struct httpc_config hc;
    httpc_config_default(&hc);
    hc.max_handles = 2 * c->processor_max_conns + 16; /* both processors + health/confirms */
    hc.max_host_conns = c->processor_max_conns + 8;
    n->httpc = httpc_new(n->loop, &hc);
    if (!n->httpc) {
        log_error("main", "http client: out of memory");
        return -ENOMEM;
    }

    struct health_config hcfg;
    health_config_default(&hcfg);
    hcfg.url[LEDGER_DEFAULT] = c->default_url;
    hcfg.url[LEDGER_FALLBACK] = c->fallback_url;
    hcfg.interval_ms = c->health_interval_ms;
    hcfg.safe_latency_ms = c->safe_latency_ms;
    hcfg.overflow_ms = c->overflow_drain_ms;
    n->health = health_new(n->loop, &hcfg, n->httpc);
    if (!n->health)
        return -ENOMEM;

    struct dispatch_config dcfg;
    dispatch_config_default(&dcfg);
    dcfg.url[LEDGER_DEFAULT] = c->default_url;
    dcfg.url[LEDGER_FALLBACK] = c->fallback_url;
    dcfg.timeout_ms = c->request_timeout_ms;
    dcfg.max_in_flight[LEDGER_DEFAULT] = c->processor_max_conns;
    dcfg.max_in_flight[LEDGER_FALLBACK] = c->processor_max_conns;
    dcfg.queue_capacity = c->queue_capacity;
    n->dispatch =
        dispatch_new(n->loop, &dcfg, n->ledger, n->health, n->httpc, emit_for_dispatch, n);
    if (!n->dispatch)
        return -ENOMEM;

    struct http_server_config scfg;
    http_server_config_default(&scfg);
    scfg.max_conns = c->max_conns;
    scfg.idle_timeout_ms = c->idle_timeout_ms;
    scfg.request_deadline_ms = c->request_deadline_ms;
    scfg.max_body_bytes = 4096; /* a payment is ~80 bytes */
    api_init(&n->api, n);
    int orv = start_obs(n);
    if (orv != 0)
        return orv;
    if (n->obs.tracer) {
        /* A sampled payment's trace context, kept until it is recorded. */
        orv = ledger_traces_reserve(n->ledger, MAIN_TRACE_SLOTS);
        if (orv != 0)
            return orv;
        dispatch_set_tracer(n->dispatch, n->obs.tracer);
        log_fields(LOG_INFO, "main", "tracing payments", "\"contextSlots\":%u", MAIN_TRACE_SLOTS);
    }
    n->http = http_server_new(n->loop, &scfg, api_handle, &n->api);
    if (!n->http)
        return -ENOMEM;
    int rv;
    if (c->server_port != 0) {
        rv = http_server_listen_tcp(n->http, c->server_host, (int)c->server_port);
        if (rv != 0) {
            log_error("main", "listen on %s:%u failed: %s", c->server_host, c->server_port,
                      uv_strerror(rv));
            return rv;
        }
    }
    if (c->server_socket[0]) {
        rv = http_server_listen_unix(n->http, c->server_socket);
        if (rv != 0) {
            log_error("main", "listen on %s failed: %s", c->server_socket, uv_strerror(rv));
            return rv;
        }
    }

    if (config_has_peer(c)) {
        n->peer = make_peer(n);
        if (!n->peer)
            return -ENOMEM;
        peer_set_tracer(n->peer, n->obs.tracer);
        struct dispatch_pair pair = {
            .self_id = (uint8_t)c->node_id,
            .acked = pair_acked,
            .listening = pair_listening,
            .paused = pair_paused,
            .arg = n,
        };
        dispatch_set_pair(n->dispatch, &pair);
        rv = peer_start(n->peer);
        if (rv != 0)
            return rv;
    } else {
        health_set_checker(n->health, true);
    }
    health_start(n->health);
    return 0;
}

int main(void)
{
    struct proc *pr = &the_proc;
    struct node *n = &pr->node;
    char err[256];
    signal(SIGPIPE, SIG_IGN);
    if (config_load(&n->cfg, NULL, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "paynode: bad configuration: %s\n", err);
        return 2;
    }
    log_init(n->cfg.log_level, 1);
    config_log(&n->cfg);
    raise_nofile();

    n->magic = NODE_MAGIC;
    n->loop = uv_default_loop();
    n->started_ms = clock_wall_ms();
    uv_signal_init(n->loop, &pr->sig_term);
    uv_signal_init(n->loop, &pr->sig_int);
    pr->sig_term.data = pr;
    pr->sig_int.data = pr;
    uv_signal_start(&pr->sig_term, on_signal, SIGTERM);
    uv_signal_start(&pr->sig_int, on_signal, SIGINT);

    if (start(n) != 0) {
        log_error("main", "start-up failed");
        return 1;
    }
    log_fields(LOG_INFO, "main", "ready", "\"nodeId\":%u,\"pair\":%s", n->cfg.node_id,
               n->peer ? "true" : "false");
    uv_run(n->loop, UV_RUN_DEFAULT);
    int rv = uv_loop_close(n->loop);
    if (rv != 0)
        log_warn("main", "loop closed with handles left: %s", uv_strerror(rv));
    api_release(&n->api);
    ledger_free(n->ledger);
    log_info("main", "stopped");
    return 0;
}
