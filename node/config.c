/* Environment -> struct config, validated once. Durations accept a plain
 * number of milliseconds or a suffix (ms, s). Nothing here allocates. */
#include "node/config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *env_get(config_getenv_fn *get, void *arg, const char *name)
{
    const char *v = get ? get(name, arg) : getenv(name);
    return (v && *v) ? v : NULL;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* Parses an unsigned decimal in [min, max]; suffix "ms" or "s" allowed when
 * is_duration (the result is in ms). */
static int parse_uint(const char *name, const char *v, unsigned long min, unsigned long max,
                      bool is_duration, unsigned *out, char *err, size_t errlen)
{
    unsigned long long n = 0;
    const char *p = v;
    if (*p < '0' || *p > '9')
        return fail(err, errlen, "%s: not a number: %s", name, v);
    while (*p >= '0' && *p <= '9') {
        n = n * 10 + (unsigned)(*p - '0');
        if (n > 0xffffffffULL)
            return fail(err, errlen, "%s: too large: %s", name, v);
        p++;
    }
    if (is_duration && strcmp(p, "s") == 0)
        n *= 1000;
    else if (is_duration && strcmp(p, "ms") == 0)
        ;
    else if (*p != '\0')
        return fail(err, errlen, "%s: not a number%s: %s", name,
                    is_duration ? " of ms (or with suffix ms/s)" : "", v);
    if (n < min || n > max)
        return fail(err, errlen, "%s: %s is out of range [%lu, %lu]", name, v, min, max);
    *out = (unsigned)n;
    return 0;
}

static int copy_str(const char *name, const char *v, char *dst, size_t cap, char *err,
                    size_t errlen)
{
    size_t n = strlen(v);
    if (n >= cap)
        return fail(err, errlen, "%s: longer than %zu bytes", name, cap - 1);
    memcpy(dst, v, n + 1);
    return 0;
}

static int copy_url(const char *name, const char *v, char *dst, size_t cap, char *err,
                    size_t errlen)
{
    if (strncmp(v, "http://", 7) != 0 || v[7] == '\0' || v[7] == '/')
        return fail(err, errlen, "%s: not an http:// URL: %s", name, v);
    int rv = copy_str(name, v, dst, cap, err, errlen);
    if (rv != 0)
        return rv;
    size_t n = strlen(dst);
    while (n > 7 && dst[n - 1] == '/')
        dst[--n] = '\0';
    return 0;
}

static bool is_pow2(unsigned v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

struct uint_setting {
    const char *name;
    size_t offset;
    unsigned def;
    unsigned long min, max;
    bool duration;
};

#define UOFF(f) offsetof(struct config, f)

static const struct uint_setting uint_settings[] = {
    {"NODE_ID", UOFF(node_id), 1, 1, 255, false},
    {"SERVER_PORT", UOFF(server_port), 8080, 0, 65535, false},
    {"HEALTH_CHECK_INTERVAL", UOFF(health_interval_ms), 5000, 5000, 3600000, true},
    {"REQUEST_TIMEOUT", UOFF(request_timeout_ms), 10000, 100, 600000, true},
    {"SAFE_LATENCY_MS", UOFF(safe_latency_ms), 1200, 1, 60000, true},
    {"PROCESSOR_MAX_CONNS", UOFF(processor_max_conns), 400, 1, 4096, false},
    {"QUEUE_CAPACITY", UOFF(queue_capacity), 1u << 17, 16, 1u << 24, false},
    {"LEDGER_CAPACITY", UOFF(ledger_capacity), 1u << 20, 1024, 1u << 26, false},
    {"MAX_CONNS", UOFF(max_conns), 2048, 4, 65536, false},
    {"IDLE_TIMEOUT", UOFF(idle_timeout_ms), 60000, 100, 3600000, true},
    {"REQUEST_READ_DEADLINE", UOFF(request_deadline_ms), 10000, 100, 600000, true},
    {"PEER_FAST_LANE", UOFF(peer_fast_lane), 1, 0, 1, false},
    {"STREAM_FLUSH_MS", UOFF(stream_flush_ms), 25, 1, 1000, true},
    {"PAYNODE_TEST_DROP_BATCHES", UOFF(test_drop_batches), 0, 0, 1000, false},
    {"PEER_INSECURE", UOFF(peer_insecure), 0, 0, 1, false},
    {"OTEL_BSP_MAX_QUEUE_SIZE", UOFF(otel_queue_size), 2048, 2, 1u << 16, false},
    {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", UOFF(otel_batch_size), 512, 1, 1u << 16, false},
    {"OTEL_BSP_SCHEDULE_DELAY", UOFF(otel_delay_ms), 5000, 1, 3600000, true},
    {"OTEL_BSP_EXPORT_TIMEOUT", UOFF(otel_timeout_ms), 30000, 100, 600000, true},
    /* routing under overload */
    {"OVERFLOW_DRAIN_MS", UOFF(overflow_drain_ms), 1000, 0, 60000, true},
};

struct str_setting {
    const char *name;
    size_t offset, cap;
    const char *def;
    bool url;
};

#define SOFF(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)

static const struct str_setting str_settings[] = {
    {"SERVER_HOST", SOFF(server_host), "0.0.0.0", false},
    {"SERVER_SOCKET", SOFF(server_socket), "", false},
    {"DEFAULT_PROCESSOR_URL", SOFF(default_url), "http://127.0.0.1:8001", true},
    {"FALLBACK_PROCESSOR_URL", SOFF(fallback_url), "http://127.0.0.1:8002", true},
    {"NNG_LISTEN", SOFF(nng_listen), "", false},
    {"PEER_NNG_URL", SOFF(peer_nng_url), "", false},
    {"GOSSIP_LISTEN", SOFF(gossip_listen), "", false},
    {"PEER_GOSSIP", SOFF(peer_gossip), "", false},
    {"PEER_KEY", SOFF(peer_key), "", false},
    {"PEER_KEY_FILE", SOFF(peer_key_file), "", false},
    {"PURGE_TOKEN", SOFF(purge_token), "", false},
    {"OTEL_EXPORTER_OTLP_ENDPOINT", SOFF(otel_endpoint), "", true},
    {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", SOFF(otel_traces_endpoint), "", true},
    {"OTEL_SERVICE_NAME", SOFF(otel_service_name), "paynode", false},
};

#define CONFIG_KEY_MIN 32 /* bytes of key material (lib seal's SEAL_KEY_MATERIAL_MIN) */

/* Reads the key material of PEER_KEY_FILE into cfg->peer_key; trailing white
 * space (a final newline) is not part of it. */
static int read_key_file(struct config *cfg, char *err, size_t errlen)
{
    FILE *f = fopen(cfg->peer_key_file, "rb");
    if (!f)
        return fail(err, errlen, "PEER_KEY_FILE: cannot open %s", cfg->peer_key_file);
    size_t n = fread(cfg->peer_key, 1, sizeof(cfg->peer_key), f);
    bool more = n == sizeof(cfg->peer_key) && fgetc(f) != EOF;
    fclose(f);
    if (more || n == sizeof(cfg->peer_key))
        return fail(err, errlen, "PEER_KEY_FILE: longer than %zu bytes", sizeof(cfg->peer_key) - 1);
    while (n > 0 && (cfg->peer_key[n - 1] == '\n' || cfg->peer_key[n - 1] == '\r' ||
                     cfg->peer_key[n - 1] == ' ' || cfg->peer_key[n - 1] == '\t'))
        n--;
    cfg->peer_key[n] = '\0';
    if (strlen(cfg->peer_key) != n)
        return fail(err, errlen, "PEER_KEY_FILE: holds a NUL byte");
    return 0;
}

/* Tracing: the endpoint in use, the sampler, the batch within the queue. */
static int otel_load(struct config *cfg, config_getenv_fn *get, void *arg, char *err, size_t errlen)
{
    const char *name = env_get(get, arg, "OTEL_TRACES_SAMPLER");
    const char *ratio = env_get(get, arg, "OTEL_TRACES_SAMPLER_ARG");
    if (trace_sampler_parse(name, ratio, &cfg->otel_sampler) != 0)
        return fail(err, errlen,
                    "OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG: expected always_on, "
                    "always_off, traceidratio, parentbased_always_on, parentbased_always_off or "
                    "parentbased_traceidratio, and a ratio in [0, 1]: %s / %s",
                    name ? name : "", ratio ? ratio : "");
    if (cfg->otel_traces_endpoint[0])
        snprintf(cfg->otel_traces_url, sizeof(cfg->otel_traces_url), "%s",
                 cfg->otel_traces_endpoint);
    else if (cfg->otel_endpoint[0])
        snprintf(cfg->otel_traces_url, sizeof(cfg->otel_traces_url), "%s/v1/traces",
                 cfg->otel_endpoint);
    if (cfg->otel_batch_size > cfg->otel_queue_size)
        return fail(err, errlen,
                    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE: %u is more than OTEL_BSP_MAX_QUEUE_SIZE %u",
                    cfg->otel_batch_size, cfg->otel_queue_size);
    return 0;
}

int config_load(struct config *cfg, config_getenv_fn *get, void *arg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < sizeof(uint_settings) / sizeof(uint_settings[0]); i++) {
        const struct uint_setting *s = &uint_settings[i];
        unsigned *dst = (unsigned *)((char *)cfg + s->offset);
        const char *v = env_get(get, arg, s->name);
        *dst = s->def;
        if (v) {
            int rv = parse_uint(s->name, v, s->min, s->max, s->duration, dst, err, errlen);
            if (rv != 0)
                return rv;
        }
    }
    for (size_t i = 0; i < sizeof(str_settings) / sizeof(str_settings[0]); i++) {
        const struct str_setting *s = &str_settings[i];
        char *dst = (char *)cfg + s->offset;
        const char *v = env_get(get, arg, s->name);
        if (!v)
            v = s->def;
        int rv = s->url && *v ? copy_url(s->name, v, dst, s->cap, err, errlen)
                              : copy_str(s->name, v, dst, s->cap, err, errlen);
        if (rv != 0)
            return rv;
    }
    const char *lvl = env_get(get, arg, "LOG_LEVEL");
    cfg->log_level = LOG_INFO;
    if (lvl && log_level_parse(lvl, &cfg->log_level) != 0)
        return fail(err, errlen, "LOG_LEVEL: expected debug|info|warn|error: %s", lvl);

    int orv = otel_load(cfg, get, arg, err, errlen);
    if (orv != 0)
        return orv;
    if (cfg->server_port == 0 && cfg->server_socket[0] == '\0')
        return fail(err, errlen, "SERVER_PORT: 0 disables TCP, so SERVER_SOCKET must be set");
    if (!is_pow2(cfg->queue_capacity))
        return fail(err, errlen, "QUEUE_CAPACITY: must be a power of two: %u", cfg->queue_capacity);
    if (strcmp(cfg->default_url, cfg->fallback_url) == 0)
        return fail(err, errlen, "DEFAULT_PROCESSOR_URL and FALLBACK_PROCESSOR_URL are the same");
    int npeer = !!cfg->nng_listen[0] + !!cfg->peer_nng_url[0] + !!cfg->gossip_listen[0] +
                !!cfg->peer_gossip[0];
    if (npeer != 0 && npeer != 4)
        return fail(err, errlen,
                    "NNG_LISTEN, PEER_NNG_URL, GOSSIP_LISTEN and PEER_GOSSIP go together: "
                    "set all four or none");
    if (cfg->peer_key[0] && cfg->peer_key_file[0])
        return fail(err, errlen, "PEER_KEY and PEER_KEY_FILE: set one, not both");
    if (cfg->peer_key_file[0]) {
        int rv = read_key_file(cfg, err, errlen);
        if (rv != 0)
            return rv;
    }
    if (cfg->peer_key[0] && strlen(cfg->peer_key) < CONFIG_KEY_MIN)
        return fail(err, errlen, "PEER_KEY%s: shorter than %d bytes",
                    cfg->peer_key_file[0] ? "_FILE" : "", CONFIG_KEY_MIN);
    /* The reserve: while the links are healthy (every 2xx acknowledged), the
     * peer's payments we do not hold yet are among its replies waiting for our
     * ack, at most one per connection slot and at most CONFIG_PEER_HOLD_CAP.
     * Keeping that much room makes every payment the peer answered fit here
     * (docs/REPLICATION.md, "Capacity"). Both nodes are configured alike, so
     * our MAX_CONNS stands for the peer's. */
    const char *res = env_get(get, arg, "LEDGER_RESERVE");
    if (res) {
        int rv = parse_uint("LEDGER_RESERVE", res, 0, 1ul << 26, false, &cfg->ledger_reserve, err,
                            errlen);
        if (rv != 0)
            return rv;
    } else if (npeer == 4) {
        cfg->ledger_reserve =
            cfg->max_conns < CONFIG_PEER_HOLD_CAP ? cfg->max_conns : CONFIG_PEER_HOLD_CAP;
    }
    if (cfg->ledger_reserve >= cfg->ledger_capacity)
        return fail(err, errlen,
                    "LEDGER_RESERVE: %u (%s) leaves no room in LEDGER_CAPACITY %u; raise "
                    "LEDGER_CAPACITY, or lower MAX_CONNS or LEDGER_RESERVE",
                    cfg->ledger_reserve,
                    res ? "as set" : "by default min(8192, MAX_CONNS) in a pair",
                    cfg->ledger_capacity);
    if (npeer == 4 && !cfg->peer_key[0] && !cfg->peer_insecure)
        return fail(err, errlen,
                    "PEER_KEY or PEER_KEY_FILE: a pair needs the shared key (or PEER_INSECURE=1 "
                    "to run the peer links unauthenticated)");
    return 0;
}

bool config_has_peer(const struct config *cfg)
{
    return cfg->peer_nng_url[0] != '\0';
}

static void config_log_otel(const struct config *c)
{
    if (!c->otel_traces_url[0]) {
        log_fields(LOG_INFO, "config", "tracing off", "\"OTEL_EXPORTER_OTLP_ENDPOINT\":\"\"");
        return;
    }
    log_fields(LOG_INFO, "config", "tracing on",
               "\"traces_url\":\"%s\",\"OTEL_SERVICE_NAME\":\"%s\",\"OTEL_TRACES_SAMPLER\":"
               "\"%s\",\"OTEL_TRACES_SAMPLER_ARG\":%g,\"OTEL_BSP_MAX_QUEUE_SIZE\":%u,"
               "\"OTEL_BSP_MAX_EXPORT_BATCH_SIZE\":%u,\"OTEL_BSP_SCHEDULE_DELAY\":%u,"
               "\"OTEL_BSP_EXPORT_TIMEOUT\":%u",
               c->otel_traces_url, c->otel_service_name, trace_sampler_name(&c->otel_sampler),
               c->otel_sampler.ratio, c->otel_queue_size, c->otel_batch_size, c->otel_delay_ms,
               c->otel_timeout_ms);
}

void config_log(const struct config *c)
{
    log_fields(LOG_INFO, "config", "effective configuration",
               "\"NODE_ID\":%u,\"SERVER_HOST\":\"%s\",\"SERVER_PORT\":%u,\"SERVER_SOCKET\":\"%s\","
               "\"DEFAULT_PROCESSOR_URL\":\"%s\",\"FALLBACK_PROCESSOR_URL\":\"%s\","
               "\"HEALTH_CHECK_INTERVAL\":%u,\"REQUEST_TIMEOUT\":%u,\"SAFE_LATENCY_MS\":%u,"
               "\"PROCESSOR_MAX_CONNS\":%u,\"QUEUE_CAPACITY\":%u,\"LEDGER_CAPACITY\":%u,"
               "\"LEDGER_RESERVE\":%u,"
               "\"MAX_CONNS\":%u,\"IDLE_TIMEOUT\":%u,\"REQUEST_READ_DEADLINE\":%u,\"NNG_LISTEN\":"
               "\"%s\",\"PEER_NNG_URL\":\"%s\","
               "\"GOSSIP_LISTEN\":\"%s\",\"PEER_GOSSIP\":\"%s\",\"PEER_FAST_LANE\":%u,"
               "\"STREAM_FLUSH_MS\":%u,\"PAYNODE_TEST_DROP_BATCHES\":%u,\"PEER_KEY\":\"%s\","
               "\"PEER_KEY_FILE\":\"%s\",\"PEER_INSECURE\":%u,\"PURGE_TOKEN\":\"%s\",\"OVERFLOW_"
               "DRAIN_MS\":%u",
               c->node_id, c->server_host, c->server_port, c->server_socket, c->default_url,
               c->fallback_url, c->health_interval_ms, c->request_timeout_ms, c->safe_latency_ms,
               c->processor_max_conns, c->queue_capacity, c->ledger_capacity, c->ledger_reserve,
               c->max_conns, c->idle_timeout_ms, c->request_deadline_ms, c->nng_listen,
               c->peer_nng_url, c->gossip_listen, c->peer_gossip, c->peer_fast_lane,
               c->stream_flush_ms, c->test_drop_batches, c->peer_key[0] ? "(set)" : "",
               c->peer_key_file, c->peer_insecure, c->purge_token[0] ? "(set)" : "",
               c->overflow_drain_ms);
    config_log_otel(c);
}
