/* node/config: defaults, parsing of every kind of value, and a clear one-line
 * refusal of bad ones; plus the binary's exit code 2 on a bad value. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "node/config.h"

struct kv {
    const char *k, *v;
};

static const char *get(const char *name, void *arg)
{
    for (const struct kv *e = arg; e && e->k; e++)
        if (strcmp(e->k, name) == 0)
            return e->v;
    return NULL;
}

static void test_defaults(void **state)
{
    struct config c;
    char err[256] = "";
    struct kv none[] = {{NULL, NULL}};
    assert_int_equal(config_load(&c, get, none, err, sizeof(err)), 0);
    assert_int_equal(c.node_id, 1);
    assert_int_equal(c.server_port, 8080);
    assert_string_equal(c.default_url, "http://127.0.0.1:8001");
    assert_string_equal(c.fallback_url, "http://127.0.0.1:8002");
    assert_int_equal(c.health_interval_ms, 5000);
    assert_int_equal(c.request_timeout_ms, 10000);
    assert_int_equal(c.request_deadline_ms, 10000);
    assert_false(config_has_peer(&c));
    assert_int_equal(c.log_level, LOG_INFO);
}

static void test_values(void **state)
{
    struct config c;
    char err[256] = "";
    struct kv env[] = {{"NODE_ID", "2"},
                       {"SERVER_PORT", "0"},
                       {"SERVER_SOCKET", "/tmp/x.sock"},
                       {"DEFAULT_PROCESSOR_URL", "http://payment-processor-default:8080/"},
                       {"HEALTH_CHECK_INTERVAL", "6s"},
                       {"REQUEST_TIMEOUT", "2500ms"},
                       {"REQUEST_READ_DEADLINE", "3s"},
                       {"LOG_LEVEL", "debug"},
                       {"NNG_LISTEN", "tcp://0.0.0.0:7000"},
                       {"PEER_NNG_URL", "tcp://node2:7000"},
                       {"GOSSIP_LISTEN", "0.0.0.0:7100"},
                       {"PEER_GOSSIP", "node2:7100"},
                       {"PEER_KEY", "0123456789abcdef0123456789abcdef"},
                       {"STREAM_FLUSH_MS", "20"},
                       {NULL, NULL}};
    assert_int_equal(config_load(&c, get, env, err, sizeof(err)), 0);
    assert_string_equal(c.peer_key, "0123456789abcdef0123456789abcdef");
    assert_int_equal(c.stream_flush_ms, 20);
    assert_int_equal(c.peer_fast_lane, 1);
    assert_int_equal(c.node_id, 2);
    assert_int_equal(c.server_port, 0);
    assert_string_equal(c.server_socket, "/tmp/x.sock");
    assert_string_equal(c.default_url, "http://payment-processor-default:8080"); /* no '/' */
    assert_int_equal(c.health_interval_ms, 6000);
    assert_int_equal(c.request_timeout_ms, 2500);
    assert_int_equal(c.request_deadline_ms, 3000);
    assert_int_equal(c.log_level, LOG_DEBUG);
    assert_true(config_has_peer(&c));
}

static void test_bad_values(void **state)
{
    static const struct {
        const char *k, *v, *want; /* want: a piece of the message */
    } bad[] = {
        {"NODE_ID", "0", "NODE_ID"},
        {"NODE_ID", "256", "out of range"},
        {"NODE_ID", "one", "not a number"},
        {"SERVER_PORT", "70000", "SERVER_PORT"},
        {"SERVER_PORT", "80x", "not a number"},
        {"SERVER_PORT", "0", "SERVER_SOCKET"}, /* no listener at all */
        {"HEALTH_CHECK_INTERVAL", "1000", "out of range"},
        {"HEALTH_CHECK_INTERVAL", "5m", "HEALTH_CHECK_INTERVAL"},
        {"REQUEST_TIMEOUT", "-1", "not a number"},
        {"QUEUE_CAPACITY", "1000", "power of two"},
        {"DEFAULT_PROCESSOR_URL", "https://x", "http://"},
        {"FALLBACK_PROCESSOR_URL", "http://127.0.0.1:8001", "same"},
        {"LOG_LEVEL", "loud", "LOG_LEVEL"},
        {"NNG_LISTEN", "tcp://0.0.0.0:7000", "all four"},
        {"MAX_CONNS", "99999999999", "too large"},
        {"PEER_FAST_LANE", "2", "out of range"},
        {"STREAM_FLUSH_MS", "0", "out of range"},
        {"REQUEST_READ_DEADLINE", "0", "out of range"},
        {"REQUEST_READ_DEADLINE", "11m", "REQUEST_READ_DEADLINE"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct config c;
        char err[256] = "";
        struct kv env[] = {{bad[i].k, bad[i].v}, {NULL, NULL}};
        assert_int_equal(config_load(&c, get, env, err, sizeof(err)), -EINVAL);
        if (!strstr(err, bad[i].want))
            fail_msg("%s=%s: message \"%s\" lacks \"%s\"", bad[i].k, bad[i].v, err, bad[i].want);
        assert_null(strchr(err, '\n'));
    }
}

#define PAIR_ENV                                                                                   \
    {"NNG_LISTEN", "tcp://0.0.0.0:7000"}, {"PEER_NNG_URL", "tcp://node2:7000"},                    \
        {"GOSSIP_LISTEN", "0.0.0.0:7100"},                                                         \
    {                                                                                              \
        "PEER_GOSSIP", "node2:7100"                                                                \
    }

static int load(struct kv *env, struct config *c, char *err, size_t errlen)
{
    return config_load(c, get, env, err, errlen);
}

/* A pair needs a key of 32 bytes or more (or an explicit PEER_INSECURE=1);
 * PEER_KEY_FILE reads one from a file, without its final newline. */
static void test_peer_key(void **state)
{
    struct config c;
    char err[256] = "";
    struct kv nokey[] = {PAIR_ENV, {NULL, NULL}};
    assert_int_equal(load(nokey, &c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "PEER_KEY"));
    struct kv insecure[] = {PAIR_ENV, {"PEER_INSECURE", "1"}, {NULL, NULL}};
    assert_int_equal(load(insecure, &c, err, sizeof(err)), 0);
    assert_string_equal(c.peer_key, "");
    struct kv shortkey[] = {PAIR_ENV, {"PEER_KEY", "too short"}, {NULL, NULL}};
    assert_int_equal(load(shortkey, &c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "shorter than 32"));

    char path[] = "/tmp/test_config_keyXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\n", f);
    fclose(f);
    struct kv file[] = {PAIR_ENV, {"PEER_KEY_FILE", path}, {NULL, NULL}};
    assert_int_equal(load(file, &c, err, sizeof(err)), 0);
    assert_string_equal(c.peer_key, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
    struct kv both[] = {PAIR_ENV,
                        {"PEER_KEY_FILE", path},
                        {"PEER_KEY", "0123456789abcdef0123456789abcdef"},
                        {NULL, NULL}};
    assert_int_equal(load(both, &c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not both"));
    f = fopen(path, "w");
    fputs("short\n", f);
    fclose(f);
    assert_int_equal(load(file, &c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "PEER_KEY_FILE: shorter"));
    unlink(path);
    assert_int_equal(load(file, &c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "cannot open"));
}

/* LEDGER_RESERVE: 0 alone; in a pair min(8192, MAX_CONNS) unless set; it must
 * leave room in LEDGER_CAPACITY. */
static void test_ledger_reserve(void **state)
{
    struct config c;
    char err[256] = "";
#define KEY                                                                                        \
    {                                                                                              \
        "PEER_KEY", "0123456789abcdef0123456789abcdef"                                             \
    }
    struct kv alone[] = {{NULL, NULL}};
    assert_int_equal(load(alone, &c, err, sizeof(err)), 0);
    assert_int_equal(c.ledger_reserve, 0);
    struct kv pair[] = {PAIR_ENV, KEY, {NULL, NULL}};
    assert_int_equal(load(pair, &c, err, sizeof(err)), 0);
    assert_int_equal(c.ledger_reserve, 2048); /* MAX_CONNS's default */
    struct kv few[] = {PAIR_ENV, KEY, {"MAX_CONNS", "100"}, {NULL, NULL}};
    assert_int_equal(load(few, &c, err, sizeof(err)), 0);
    assert_int_equal(c.ledger_reserve, 100);
    struct kv many[] = {PAIR_ENV, KEY, {"MAX_CONNS", "20000"}, {NULL, NULL}};
    assert_int_equal(load(many, &c, err, sizeof(err)), 0);
    assert_int_equal(c.ledger_reserve, CONFIG_PEER_HOLD_CAP);
    struct kv set[] = {PAIR_ENV, KEY, {"LEDGER_RESERVE", "0"}, {NULL, NULL}};
    assert_int_equal(load(set, &c, err, sizeof(err)), 0);
    assert_int_equal(c.ledger_reserve, 0);
    struct kv set_alone[] = {{"LEDGER_RESERVE", "10"}, {NULL, NULL}};
    assert_int_equal(load(set_alone, &c, err, sizeof(err)), 0);
    assert_int_equal(c.ledger_reserve, 10);
    /* No room left: a clear refusal, naming what to change. */
    struct kv small[] = {PAIR_ENV, KEY, {"LEDGER_CAPACITY", "1024"}, {NULL, NULL}};
    assert_int_equal(load(small, &c, err, sizeof(err)), -EINVAL);
    assert_non_null(
        strstr(err, "LEDGER_RESERVE: 2048 (by default min(8192, MAX_CONNS) in a pair)"));
    assert_non_null(strstr(err, "LEDGER_CAPACITY 1024"));
    struct kv equal[] = {{"LEDGER_CAPACITY", "1024"}, {"LEDGER_RESERVE", "1024"}, {NULL, NULL}};
    assert_int_equal(load(equal, &c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "LEDGER_RESERVE: 1024 (as set)"));
    struct kv nan[] = {{"LEDGER_RESERVE", "lots"}, {NULL, NULL}};
    assert_int_equal(load(nan, &c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "LEDGER_RESERVE: not a number"));
#undef KEY
}

/* PURGE_TOKEN: empty by default (the route is open), kept as given. */
static void test_purge_token(void **state)
{
    struct config c;
    char err[512] = "";
    struct kv none[] = {{NULL, NULL}};
    assert_int_equal(load(none, &c, err, sizeof(err)), 0);
    assert_string_equal(c.purge_token, "");
    struct kv set[] = {{"PURGE_TOKEN", "a-token"}, {NULL, NULL}};
    assert_int_equal(load(set, &c, err, sizeof(err)), 0);
    assert_string_equal(c.purge_token, "a-token");
    static char longer[CONFIG_TOKEN_MAX + 1];
    memset(longer, 'x', CONFIG_TOKEN_MAX);
    struct kv too_long[] = {{"PURGE_TOKEN", longer}, {NULL, NULL}};
    assert_int_equal(load(too_long, &c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "PURGE_TOKEN: longer than"));
}

/* Tracing: off by default; the traces endpoint wins over the base one (which
 * gets /v1/traces); the sampler and the batch sizes are validated. */
static void test_otel(void **state)
{
    struct config c;
    char err[256] = "";
    struct kv none[] = {{NULL, NULL}};
    assert_int_equal(load(none, &c, err, sizeof(err)), 0);
    assert_string_equal(c.otel_traces_url, "");
    assert_string_equal(c.otel_service_name, "paynode");
    assert_int_equal(c.otel_sampler.kind, TRACE_SAMPLER_PARENT_ALWAYS_ON);
    assert_int_equal(c.otel_queue_size, 2048);
    assert_int_equal(c.otel_batch_size, 512);
    assert_int_equal(c.otel_delay_ms, 5000);
    assert_int_equal(c.otel_timeout_ms, 30000);

    struct kv base[] = {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4318/"},
                        {"OTEL_SERVICE_NAME", "pay-1"},
                        {"OTEL_TRACES_SAMPLER", "parentbased_traceidratio"},
                        {"OTEL_TRACES_SAMPLER_ARG", "0.01"},
                        {"OTEL_BSP_SCHEDULE_DELAY", "200ms"},
                        {NULL, NULL}};
    assert_int_equal(load(base, &c, err, sizeof(err)), 0);
    assert_string_equal(c.otel_traces_url, "http://jaeger:4318/v1/traces");
    assert_string_equal(c.otel_service_name, "pay-1");
    assert_int_equal(c.otel_sampler.kind, TRACE_SAMPLER_PARENT_RATIO);
    assert_true(c.otel_sampler.ratio == 0.01);
    assert_int_equal(c.otel_delay_ms, 200);
    struct kv both[] = {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4318"},
                        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:9000/traces"},
                        {NULL, NULL}};
    assert_int_equal(load(both, &c, err, sizeof(err)), 0);
    assert_string_equal(c.otel_traces_url, "http://collector:9000/traces");

    const struct {
        struct kv env[3];
        const char *why;
    } bad[] = {
        {{{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://jaeger:4318"}}, "OTEL_EXPORTER_OTLP_ENDPOINT"},
        {{{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "jaeger:4318"}}, "not an http:// URL"},
        {{{"OTEL_TRACES_SAMPLER", "sometimes"}}, "OTEL_TRACES_SAMPLER"},
        {{{"OTEL_TRACES_SAMPLER", "traceidratio"}, {"OTEL_TRACES_SAMPLER_ARG", "2"}},
         "ratio in [0, 1]"},
        {{{"OTEL_BSP_MAX_QUEUE_SIZE", "100"}, {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "200"}},
         "more than OTEL_BSP_MAX_QUEUE_SIZE"},
        {{{"OTEL_BSP_MAX_QUEUE_SIZE", "1"}}, "out of range"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct kv env[3];
        memcpy(env, bad[i].env, sizeof(env));
        err[0] = '\0';
        assert_int_equal(load(env, &c, err, sizeof(err)), -EINVAL);
        if (!strstr(err, bad[i].why))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].why);
    }
}

static void test_binary_exits_2(void **state)
{
#ifdef PAYNODE_BIN
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "SERVER_PORT=notaport %s 2>/dev/null >/dev/null", PAYNODE_BIN);
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 2);
#else
    skip();
#endif
}

/* OVERFLOW_DRAIN_MS: 1 s by default, 0 turns overflow off (the previous
 * policy), a duration up to a minute; PROCESSOR_MAX_CONNS sized with it. */
static void test_overflow_drain(void **state)
{
    struct config c;
    char err[256] = "";
    struct kv none[] = {{NULL, NULL}};
    assert_int_equal(config_load(&c, get, none, err, sizeof(err)), 0);
    assert_int_equal(c.overflow_drain_ms, 1000);
    assert_int_equal(c.processor_max_conns, 400); /* 2 nodes x 400 = a processor's 800 */
    struct kv off[] = {{"OVERFLOW_DRAIN_MS", "0"}, {NULL, NULL}};
    assert_int_equal(config_load(&c, get, off, err, sizeof(err)), 0);
    assert_int_equal(c.overflow_drain_ms, 0);
    struct kv secs[] = {{"OVERFLOW_DRAIN_MS", "2s"}, {NULL, NULL}};
    assert_int_equal(config_load(&c, get, secs, err, sizeof(err)), 0);
    assert_int_equal(c.overflow_drain_ms, 2000);
    struct kv big[] = {{"OVERFLOW_DRAIN_MS", "61s"}, {NULL, NULL}};
    assert_int_equal(config_load(&c, get, big, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "OVERFLOW_DRAIN_MS"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),       cmocka_unit_test(test_values),
        cmocka_unit_test(test_bad_values),     cmocka_unit_test(test_peer_key),
        cmocka_unit_test(test_ledger_reserve), cmocka_unit_test(test_purge_token),
        cmocka_unit_test(test_binary_exits_2), cmocka_unit_test(test_otel),
        cmocka_unit_test(test_overflow_drain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
