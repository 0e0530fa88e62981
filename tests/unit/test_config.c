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
                       {NULL, NULL}};
    assert_int_equal(config_load(&c, get, env, err, sizeof(err)), 0);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_binary_exits_2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
