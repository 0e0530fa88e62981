/* The node's configuration: read from the environment once at start-up,
 * validated, then read-only. Every setting has a default that works on one
 * machine (processors on 127.0.0.1:8001/8002, no peer). */
#ifndef NODE_CONFIG_H
#define NODE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/log.h"
#include "lib/trace.h"

#define CONFIG_URL_MAX 256
#define CONFIG_PATH_MAX 108  /* sun_path */
#define CONFIG_KEY_MAX 512   /* PEER_KEY material, bytes */
#define CONFIG_TOKEN_MAX 256 /* PURGE_TOKEN, bytes */
/* node/peer.c's PEER_HOLD_CAP: at most this many of a node's 2xx answers wait
 * for the peer's ack (beyond, they go out unacknowledged). */
#define CONFIG_PEER_HOLD_CAP 8192

struct config {
    unsigned node_id;                    /* NODE_ID: 1..255 */
    char server_host[64];                /* SERVER_HOST: TCP bind address */
    unsigned server_port;                /* SERVER_PORT: 0 disables TCP (needs a socket) */
    char server_socket[CONFIG_PATH_MAX]; /* SERVER_SOCKET: unix socket path, "" = none */
    char default_url[CONFIG_URL_MAX];    /* DEFAULT_PROCESSOR_URL, no trailing slash */
    char fallback_url[CONFIG_URL_MAX];   /* FALLBACK_PROCESSOR_URL */
    unsigned health_interval_ms;         /* HEALTH_CHECK_INTERVAL: >= 5000 */
    unsigned request_timeout_ms;         /* REQUEST_TIMEOUT: one attempt to a processor */
    unsigned safe_latency_ms;            /* SAFE_LATENCY_MS: slower processors are avoided */
    unsigned processor_max_conns;        /* PROCESSOR_MAX_CONNS: in flight per processor */
    unsigned queue_capacity;             /* QUEUE_CAPACITY: payments waiting, power of two */
    unsigned ledger_capacity;            /* LEDGER_CAPACITY: payments held in memory */
    unsigned ledger_reserve;             /* LEDGER_RESERVE: ledger room kept for the peer's
                                            payments: a new local payment is refused (503) once
                                            the ledger holds ledger_capacity - ledger_reserve.
                                            Default: min(CONFIG_PEER_HOLD_CAP, max_conns) in a
                                            pair, 0 alone (docs/REPLICATION.md, "Capacity") */
    unsigned max_conns;                  /* MAX_CONNS: inbound connection slots */
    unsigned idle_timeout_ms;            /* IDLE_TIMEOUT: inbound keep-alive idle limit */
    unsigned request_deadline_ms;        /* REQUEST_READ_DEADLINE: whole inbound request */
    enum log_level log_level;            /* LOG_LEVEL */
    char nng_listen[CONFIG_URL_MAX];     /* NNG_LISTEN: our replication endpoint, "" = alone */
    char peer_nng_url[CONFIG_URL_MAX];   /* PEER_NNG_URL: the peer's replication endpoint */
    char gossip_listen[CONFIG_URL_MAX];  /* GOSSIP_LISTEN: host:port for UDP heartbeats */
    char peer_gossip[CONFIG_URL_MAX];    /* PEER_GOSSIP: the peer's host:port */
    unsigned peer_fast_lane;             /* PEER_FAST_LANE: 1 = events and acks also go loop to
                                            loop as datagrams (docs/REPLICATION.md), 0 = the nng
                                            stream alone, flushed every loop iteration */
    unsigned stream_flush_ms;            /* STREAM_FLUSH_MS: nng stream batching with the fast
                                            lane on */
    unsigned test_drop_batches;          /* PAYNODE_TEST_DROP_BATCHES: tests only; drop every Nth
                                            replication batch received (0 = none) */
    char peer_key[CONFIG_KEY_MAX];       /* PEER_KEY, or the contents of PEER_KEY_FILE (trailing
                                            white space cut): the secret shared by the pair, at
                                            least 32 bytes; "" = none */
    char peer_key_file[CONFIG_URL_MAX];  /* PEER_KEY_FILE: where peer_key came from, or "" */
    unsigned peer_insecure;              /* PEER_INSECURE: 1 = a pair without a key is allowed */
    char purge_token[CONFIG_TOKEN_MAX];  /* PURGE_TOKEN: POST /purge-payments needs it in
                                            X-Rinha-Token; "" = the route is open */
    /* Tracing (OpenTelemetry's standard variables; README "Tracing"): off unless an
       endpoint is set. */
    char otel_endpoint[CONFIG_URL_MAX];        /* OTEL_EXPORTER_OTLP_ENDPOINT: base URL */
    char otel_traces_endpoint[CONFIG_URL_MAX]; /* OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: as is */
    char otel_traces_url[CONFIG_URL_MAX + 16]; /* the one used: the traces endpoint, else the
                                                  base + "/v1/traces"; "" = tracing off */
    char otel_service_name[64];                /* OTEL_SERVICE_NAME, default "paynode" */
    struct trace_sampler otel_sampler;         /* OTEL_TRACES_SAMPLER + OTEL_TRACES_SAMPLER_ARG */
    unsigned otel_queue_size;                  /* OTEL_BSP_MAX_QUEUE_SIZE: spans held */
    unsigned otel_batch_size;                  /* OTEL_BSP_MAX_EXPORT_BATCH_SIZE: <= queue */
    unsigned otel_delay_ms;                    /* OTEL_BSP_SCHEDULE_DELAY: between exports */
    unsigned otel_timeout_ms;                  /* OTEL_BSP_EXPORT_TIMEOUT: one export */
    /* routing under overload (docs/ROUTING.md, "Overload") */
    unsigned overflow_drain_ms; /* OVERFLOW_DRAIN_MS: the queue's expected drain time on the
                                   default (at its in-flight cap) above which payments
                                   overflow to a safe fallback; 0 = never (hold) */
};

/* Returns the value of an environment variable, or NULL. */
typedef const char *config_getenv_fn(const char *name, void *arg);

/* Fills cfg from the environment (getenv when get is NULL). Returns 0, or
 * -EINVAL with a one-line reason in err ("SERVER_PORT: not a number: x"). */
int config_load(struct config *cfg, config_getenv_fn *get, void *arg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Whether the pair settings are present (all four, or none: config_load
 * rejects a partial set). */
bool config_has_peer(const struct config *cfg);

/* Logs the effective configuration as one JSON line. */
void config_log(const struct config *cfg);

#endif
