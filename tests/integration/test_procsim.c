/* Integration tests of the payment processor simulator (ops/procsim): each test
 * starts its own procsim process on a free loopback port (tests/support/proc),
 * talks to it with the blocking test client (tests/support/tclient) and stops
 * it with SIGTERM, asserting a clean exit 0. Timing is asserted only as lower
 * bounds (a delay is respected), never as upper bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "tclient.h"

#ifndef PROCSIM_BIN
#error "PROCSIM_BIN must be defined by the build"
#endif

#define TIMEOUT_MS 10000
#define TOKEN_HDR "X-Rinha-Token: 123\r\n"

struct sim {
    struct proc p;
    char addr[64];
    char log[128];
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts procsim with extra flags (NULL-terminated list) and extra env. */
static void sim_start_env(struct sim *s, const char *const *flags, char *const *env)
{
    static int seq;
    int port = proc_free_port();
    assert_true(port > 0);
    snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%d", port);
    snprintf(s->log, sizeof(s->log), "/tmp/test_procsim_%d_%d.log", (int)getpid(), seq++);
    unlink(s->log);
    char portbuf[16];
    snprintf(portbuf, sizeof(portbuf), "%d", port);
    const char *argv[32] = {PROCSIM_BIN, "--host", "127.0.0.1", "--port", portbuf};
    int n = 5;
    for (int i = 0; flags && flags[i]; i++) {
        assert_true(n < 30);
        argv[n++] = flags[i];
    }
    argv[n] = NULL;
    assert_int_equal(proc_spawn(&s->p, (char *const *)argv, env, s->log), 0);
    int rv = proc_wait_tcp(&s->p, "127.0.0.1", port, TIMEOUT_MS);
    if (rv != 0) {
        fprintf(stderr, "procsim did not start (%d), log %s\n", rv, s->log);
        (void)proc_stop(&s->p, 1000);
    }
    assert_int_equal(rv, 0);
}

static void sim_start(struct sim *s, const char *const *flags)
{
    sim_start_env(s, flags, NULL);
}

static void sim_stop(struct sim *s)
{
    assert_int_equal(proc_stop(&s->p, 5000), 0); /* SIGTERM -> exit 0 */
    unlink(s->log);
}

static int req(struct sim *s, const char *method, const char *path, const char *headers,
               const char *body, char *out, size_t out_cap)
{
    struct tclient_resp r;
    int rv = tclient_fetch(s->addr, TIMEOUT_MS, method, path, headers, body,
                           body ? strlen(body) : 0, &r, out, out_cap);
    assert_int_equal(rv, 0);
    return r.status;
}

static int post_payment(struct sim *s, const char *id, const char *amount, const char *at)
{
    char body[256], out[256];
    snprintf(body, sizeof(body), "{\"correlationId\":\"%s\",\"amount\":%s,\"requestedAt\":\"%s\"}",
             id, amount, at);
    return req(s, "POST", "/payments", NULL, body, out, sizeof(out));
}

/* Reads an integer member of a flat JSON object (test-grade). */
static long long json_num(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(json, pat);
    assert_non_null(p);
    return strtoll(p + strlen(pat), NULL, 10);
}

static long long stat_of(struct sim *s, const char *key)
{
    char out[512];
    assert_int_equal(req(s, "GET", "/admin/stats", TOKEN_HDR, NULL, out, sizeof(out)), 200);
    return json_num(out, key);
}

static void summary(struct sim *s, const char *query, char *out, size_t cap)
{
    char path[256];
    snprintf(path, sizeof(path), "/admin/payments-summary%s", query);
    assert_int_equal(req(s, "GET", path, TOKEN_HDR, NULL, out, cap), 200);
}

#define ID1 "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3"
#define ID2 "0e1f6a2c-0000-4000-8000-000000000002"
#define ID3 "0e1f6a2c-0000-4000-8000-000000000003"
#define ID4 "0e1f6a2c-0000-4000-8000-000000000004"
#define AT "2025-07-15T12:34:56.000Z"

/* ---------- payments ---------- */

static void test_record_and_200(void **state)
{
    struct sim s;
    sim_start(&s, NULL);
    char out[512];
    const char *body =
        "{\"correlationId\":\"" ID1 "\",\"amount\":19.90,\"requestedAt\":\"" AT "\"}";
    assert_int_equal(req(&s, "POST", "/payments", NULL, body, out, sizeof(out)), 200);
    assert_string_equal(out, "{\"message\":\"payment processed successfully\"}");
    assert_int_equal(req(&s, "GET", "/payments/" ID1, NULL, NULL, out, sizeof(out)), 200);
    assert_string_equal(out, "{\"correlationId\":\"" ID1 "\",\"amount\":19.90,\"requestedAt\":\"" AT
                             "\"}");
    summary(&s, "", out, sizeof(out));
    assert_string_equal(out, "{\"totalRequests\":1,\"totalAmount\":19.90,\"totalFee\":0.995,"
                             "\"feePerTransaction\":0.05}");
    assert_int_equal(stat_of(&s, "payments200"), 1);
    sim_stop(&s);
}

/* /admin/stats counts the valid traceparents that POST /payments and GET
 * /payments/{id} brought and shows the last (what the nodes propagate). */
static void test_traceparent_seen(void **state)
{
    struct sim s;
    sim_start(&s, NULL);
    char out[512];
    const char *tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const char *body =
        "{\"correlationId\":\"" ID1 "\",\"amount\":19.90,\"requestedAt\":\"" AT "\"}";
    assert_int_equal(req(&s, "POST", "/payments", NULL, body, out, sizeof(out)), 200);
    assert_int_equal(stat_of(&s, "traceparents"), 0);
    char hdr[96];
    snprintf(hdr, sizeof(hdr), "traceparent: %s\r\n", tp);
    assert_int_equal(req(&s, "POST", "/payments", hdr, body, out, sizeof(out)), 422);
    assert_int_equal(req(&s, "GET", "/payments/" ID1,
                         "traceparent: 00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01\r\n",
                         NULL, out, sizeof(out)),
                     200); /* an invalid one (zero span id) is not counted */
    assert_int_equal(stat_of(&s, "traceparents"), 1);
    assert_int_equal(req(&s, "GET", "/admin/stats", TOKEN_HDR, NULL, out, sizeof(out)), 200);
    char want[128];
    snprintf(want, sizeof(want), "\"lastTraceparent\":\"%s\"", tp);
    assert_non_null(strstr(out, want));
    sim_stop(&s);
}

static void test_duplicate_422(void **state)
{
    struct sim s;
    sim_start(&s, NULL);
    assert_int_equal(post_payment(&s, ID1, "10.00", AT), 200);
    assert_int_equal(post_payment(&s, ID1, "10.00", AT), 422);
    assert_int_equal(post_payment(&s, ID1, "99.99", "2025-07-15T13:00:00Z"), 422);
    char out[512];
    summary(&s, "", out, sizeof(out));
    assert_int_equal(json_num(out, "totalRequests"), 1);
    assert_non_null(strstr(out, "\"totalAmount\":10.00"));
    assert_int_equal(stat_of(&s, "payments422"), 2);
    sim_stop(&s);
}

static void test_bad_input_400(void **state)
{
    struct sim s;
    sim_start(&s, NULL);
    const char *bad[] = {
        "not json",
        "[1,2]",
        "{\"amount\":19.90,\"requestedAt\":\"" AT "\"}",
        "{\"correlationId\":\"nope\",\"amount\":19.90,\"requestedAt\":\"" AT "\"}",
        "{\"correlationId\":\"" ID1 "\",\"requestedAt\":\"" AT "\"}",
        "{\"correlationId\":\"" ID1 "\",\"amount\":\"19.90\",\"requestedAt\":\"" AT "\"}",
        "{\"correlationId\":\"" ID1 "\",\"amount\":-1,\"requestedAt\":\"" AT "\"}",
        "{\"correlationId\":\"" ID1 "\",\"amount\":19.90}",
        "{\"correlationId\":\"" ID1 "\",\"amount\":19.90,\"requestedAt\":\"yesterday\"}",
        "{\"correlationId\":\"" ID1 "\",\"amount\":19.90,\"requestedAt\":12345}",
        "",
    };
    char out[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int st = req(&s, "POST", "/payments", NULL, bad[i], out, sizeof(out));
        if (st != 400)
            fprintf(stderr, "case %zu: %s -> %d\n", i, bad[i], st);
        assert_int_equal(st, 400);
    }
    assert_int_equal(req(&s, "GET", "/payments/" ID1, NULL, NULL, out, sizeof(out)), 404);
    assert_int_equal(stat_of(&s, "stored"), 0);
    /* wrong method, unknown path */
    assert_int_equal(req(&s, "GET", "/payments", NULL, NULL, out, sizeof(out)), 405);
    assert_int_equal(req(&s, "GET", "/nothing", NULL, NULL, out, sizeof(out)), 404);
    sim_stop(&s);
}

static void test_delay_respected(void **state)
{
    struct sim s;
    const char *flags[] = {"--delay-ms", "300", NULL};
    sim_start(&s, flags);
    long long t0 = now_ms();
    assert_int_equal(post_payment(&s, ID1, "1.00", AT), 200);
    /* >= 299, not 300: both clocks count whole ms (truncated), and procsim's
     * libuv timer runs against its own truncated loop clock. */
    assert_true(now_ms() - t0 >= 299);
    /* a duplicate also waits its delay before the 422 */
    t0 = now_ms();
    assert_int_equal(post_payment(&s, ID1, "1.00", AT), 422);
    assert_true(now_ms() - t0 >= 299);
    /* health reports the delay */
    char out[256];
    assert_int_equal(req(&s, "GET", "/payments/service-health", NULL, NULL, out, sizeof(out)), 200);
    assert_string_equal(out, "{\"failing\":false,\"minResponseTime\":300}");
    sim_stop(&s);
}

static void test_failing_500(void **state)
{
    struct sim s;
    const char *flags[] = {"--failing", NULL};
    sim_start(&s, flags);
    char out[256];
    assert_int_equal(post_payment(&s, ID1, "5.00", AT), 500);
    assert_int_equal(req(&s, "GET", "/payments/" ID1, NULL, NULL, out, sizeof(out)), 404);
    summary(&s, "", out, sizeof(out));
    assert_int_equal(json_num(out, "totalRequests"), 0);
    assert_int_equal(stat_of(&s, "payments500"), 1);
    /* healed: the same payment is accepted now */
    assert_int_equal(req(&s, "PUT", "/admin/configurations/failure", TOKEN_HDR,
                         "{\"failure\":false}", out, sizeof(out)),
                     200);
    assert_int_equal(post_payment(&s, ID1, "5.00", AT), 200);
    sim_stop(&s);
}

/* Sends a POST /payments on an open connection without reading the answer. */
static void send_payment(struct tclient *c, const char *id)
{
    char body[256], buf[512];
    int bl = snprintf(body, sizeof(body),
                      "{\"correlationId\":\"%s\",\"amount\":1.00,\"requestedAt\":\"" AT "\"}", id);
    int n = snprintf(buf, sizeof(buf),
                     "POST /payments HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n%s",
                     bl, body);
    assert_int_equal(tclient_send_raw(c, buf, (size_t)n), 0);
}

static void test_429_over_capacity(void **state)
{
    struct sim s;
    const char *flags[] = {"--delay-ms", "400", "--max-in-flight", "2", "--max-queued", "1", NULL};
    sim_start(&s, flags);
    struct tclient *c = calloc(3, sizeof(*c));
    assert_non_null(c);
    const char *ids[] = {ID1, ID2, ID3};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tclient_connect(&c[i], s.addr, TIMEOUT_MS), 0);
        send_payment(&c[i], ids[i]);
    }
    /* wait until the simulator holds 2 in flight and 1 queued */
    int i;
    for (i = 0; i < 500; i++) {
        if (stat_of(&s, "inFlight") == 2 && stat_of(&s, "queued") == 1)
            break;
        sleep_ms(5);
    }
    assert_true(i < 500);
    char out[256];
    assert_int_equal(post_payment(&s, ID4, "1.00", AT), 429);
    for (int k = 0; k < 3; k++) {
        struct tclient_resp r;
        assert_int_equal(tclient_read_response(&c[k], false, &r, out, sizeof(out)), 0);
        assert_int_equal(r.status, 200);
        tclient_close(&c[k]);
    }
    free(c);
    assert_int_equal(req(&s, "GET", "/payments/" ID4, NULL, NULL, out, sizeof(out)), 404);
    assert_int_equal(req(&s, "GET", "/payments/" ID3, NULL, NULL, out, sizeof(out)), 200);
    assert_int_equal(stat_of(&s, "payments429"), 1);
    assert_int_equal(stat_of(&s, "payments200"), 3);
    sim_stop(&s);
}

static void test_hangup_still_records(void **state)
{
    struct sim s;
    const char *flags[] = {"--delay-ms", "300", NULL};
    sim_start(&s, flags);
    struct tclient *c = malloc(sizeof(*c));
    assert_non_null(c);
    assert_int_equal(tclient_connect(c, s.addr, TIMEOUT_MS), 0);
    send_payment(c, ID2);
    int i;
    for (i = 0; i < 500 && stat_of(&s, "inFlight") != 1; i++)
        sleep_ms(5);
    assert_true(i < 500);
    tclient_close(c); /* the client gives up before the delay ends */
    free(c);
    char out[256];
    int st = 0;
    for (i = 0; i < 200; i++) {
        st = req(&s, "GET", "/payments/" ID2, NULL, NULL, out, sizeof(out));
        if (st == 200)
            break;
        sleep_ms(20);
    }
    assert_int_equal(st, 200);
    assert_int_equal(stat_of(&s, "payments200"), 1);
    sim_stop(&s);
}

/* ---------- service-health ---------- */

static void send_health(struct tclient *c)
{
    const char *r = "GET /payments/service-health HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(tclient_send_raw(c, r, strlen(r)), 0);
}

static void test_health_rate_limit(void **state)
{
    struct sim s;
    const char *flags[] = {"--health-window-ms", "300", NULL};
    sim_start(&s, flags);
    char out[256];
    long long t0 = now_ms();
    assert_int_equal(req(&s, "GET", "/payments/service-health", NULL, NULL, out, sizeof(out)), 200);
    assert_string_equal(out, "{\"failing\":false,\"minResponseTime\":0}");
    struct tclient *c = calloc(2, sizeof(*c));
    assert_non_null(c);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(tclient_connect(&c[k], s.addr, TIMEOUT_MS), 0);
        send_health(&c[k]);
        int i;
        for (i = 0; i < 500 && stat_of(&s, "healthQueued") != k + 1; i++)
            sleep_ms(2);
        assert_true(i < 500);
    }
    /* the queue of 2 is full: the fourth call is refused at once */
    struct tclient_resp r;
    assert_int_equal(tclient_fetch(s.addr, TIMEOUT_MS, "GET", "/payments/service-health", NULL,
                                   NULL, 0, &r, out, sizeof(out)),
                     0);
    assert_int_equal(r.status, 429);
    char ra[16];
    assert_true(tclient_header(&r, "Retry-After", ra, sizeof(ra)));
    assert_true(atoi(ra) >= 1);
    /* the two waiting calls are answered in the next two windows */
    for (int k = 0; k < 2; k++) {
        assert_int_equal(tclient_read_response(&c[k], false, &r, out, sizeof(out)), 0);
        assert_int_equal(r.status, 200);
        assert_true(now_ms() - t0 >= 300 * (k + 1) - 2);
        tclient_close(&c[k]);
    }
    free(c);
    assert_int_equal(stat_of(&s, "healthOk"), 3);
    assert_int_equal(stat_of(&s, "health429"), 1);
    sim_stop(&s);
}

/* ---------- GET /payments/{id} ---------- */

static void test_get_payment(void **state)
{
    struct sim s;
    sim_start(&s, NULL);
    char out[256];
    assert_int_equal(post_payment(&s, ID3, "0.01", "2025-07-15T12:34:56.123456Z"), 200);
    assert_int_equal(req(&s, "GET", "/payments/" ID3, NULL, NULL, out, sizeof(out)), 200);
    assert_string_equal(out, "{\"correlationId\":\"" ID3
                             "\",\"amount\":0.01,\"requestedAt\":\"2025-07-15T12:34:56.123456Z\"}");
    /* upper-case UUID finds the same record */
    assert_int_equal(req(&s, "GET", "/payments/0E1F6A2C-0000-4000-8000-000000000003", NULL, NULL,
                         out, sizeof(out)),
                     200);
    assert_int_equal(req(&s, "GET", "/payments/" ID4, NULL, NULL, out, sizeof(out)), 404);
    assert_int_equal(req(&s, "GET", "/payments/not-a-uuid", NULL, NULL, out, sizeof(out)), 404);
    sim_stop(&s);
}

/* ---------- admin ---------- */

static void test_admin_token_401(void **state)
{
    struct sim s;
    sim_start(&s, NULL);
    char out[256];
    assert_int_equal(req(&s, "GET", "/admin/payments-summary", NULL, NULL, out, sizeof(out)), 401);
    assert_int_equal(req(&s, "GET", "/admin/payments-summary", "X-Rinha-Token: 1234\r\n", NULL, out,
                         sizeof(out)),
                     401);
    assert_int_equal(req(&s, "POST", "/admin/purge-payments", NULL, NULL, out, sizeof(out)), 401);
    assert_int_equal(
        req(&s, "PUT", "/admin/configurations/delay", NULL, "{\"delay\":5}", out, sizeof(out)),
        401);
    assert_int_equal(req(&s, "GET", "/admin/stats", NULL, NULL, out, sizeof(out)), 401);
    /* nothing changed */
    assert_int_equal(req(&s, "GET", "/payments/service-health", NULL, NULL, out, sizeof(out)), 200);
    assert_string_equal(out, "{\"failing\":false,\"minResponseTime\":0}");
    sim_stop(&s);
}

static void test_token_change(void **state)
{
    struct sim s;
    const char *flags[] = {"--token", "first", NULL};
    sim_start(&s, flags);
    char out[256];
    assert_int_equal(req(&s, "GET", "/admin/payments-summary", TOKEN_HDR, NULL, out, sizeof(out)),
                     401);
    assert_int_equal(req(&s, "PUT", "/admin/configurations/token", "X-Rinha-Token: first\r\n",
                         "{\"token\":\"second\"}", out, sizeof(out)),
                     204);
    assert_int_equal(req(&s, "GET", "/admin/payments-summary", "X-Rinha-Token: first\r\n", NULL,
                         out, sizeof(out)),
                     401);
    assert_int_equal(req(&s, "GET", "/admin/payments-summary", "X-Rinha-Token: second\r\n", NULL,
                         out, sizeof(out)),
                     200);
    assert_int_equal(req(&s, "PUT", "/admin/configurations/token", "X-Rinha-Token: second\r\n",
                         "{\"token\":42}", out, sizeof(out)),
                     400);
    sim_stop(&s);
}

static void test_config_responses(void **state)
{
    struct sim s;
    sim_start(&s, NULL);
    char out[256];
    assert_int_equal(req(&s, "PUT", "/admin/configurations/delay", TOKEN_HDR, "{\"delay\":250}",
                         out, sizeof(out)),
                     200);
    assert_string_equal(out, "{\"config\":\"delay\",\"was\":0,\"is\":250}");
    assert_int_equal(
        req(&s, "PUT", "/admin/configurations/delay", TOKEN_HDR, "{\"delay\":0}", out, sizeof(out)),
        200);
    assert_string_equal(out, "{\"config\":\"delay\",\"was\":250,\"is\":0}");
    assert_int_equal(req(&s, "PUT", "/admin/configurations/failure", TOKEN_HDR,
                         "{\"failure\":true}", out, sizeof(out)),
                     200);
    assert_string_equal(out, "{\"config\":\"failure\",\"was\":false,\"is\":true}");
    assert_int_equal(req(&s, "GET", "/payments/service-health", NULL, NULL, out, sizeof(out)), 200);
    assert_string_equal(out, "{\"failing\":true,\"minResponseTime\":0}");
    assert_int_equal(post_payment(&s, ID1, "1.00", AT), 500);
    assert_int_equal(req(&s, "PUT", "/admin/configurations/delay", TOKEN_HDR, "{\"delay\":-1}", out,
                         sizeof(out)),
                     400);
    assert_int_equal(req(&s, "PUT", "/admin/configurations/failure", TOKEN_HDR,
                         "{\"failure\":\"yes\"}", out, sizeof(out)),
                     400);
    assert_int_equal(
        req(&s, "PUT", "/admin/configurations/other", TOKEN_HDR, "{}", out, sizeof(out)), 404);
    sim_stop(&s);
}

static void test_summary_windows(void **state)
{
    struct sim s;
    const char *flags[] = {"--fee", "0.15", NULL};
    sim_start(&s, flags);
    assert_int_equal(post_payment(&s, ID1, "10.10", "2025-07-15T12:00:00.000Z"), 200);
    assert_int_equal(post_payment(&s, ID2, "20.20", "2025-07-15T12:00:00.500Z"), 200);
    assert_int_equal(post_payment(&s, ID3, "30.33", "2025-07-15T12:00:01.000Z"), 200);
    char out[512];
    /* both ends inclusive */
    summary(&s, "?from=2025-07-15T12:00:00.000Z&to=2025-07-15T12:00:01.000Z", out, sizeof(out));
    assert_string_equal(out, "{\"totalRequests\":3,\"totalAmount\":60.63,\"totalFee\":9.0945,"
                             "\"feePerTransaction\":0.15}");
    summary(&s, "?from=2025-07-15T12:00:00.500Z&to=2025-07-15T12:00:00.500Z", out, sizeof(out));
    assert_string_equal(out, "{\"totalRequests\":1,\"totalAmount\":20.20,\"totalFee\":3.03,"
                             "\"feePerTransaction\":0.15}");
    summary(&s, "?from=2025-07-15T12:00:00.001Z&to=2025-07-15T12:00:00.999Z", out, sizeof(out));
    assert_int_equal(json_num(out, "totalRequests"), 1);
    /* fraction of any length, missing fraction, percent-encoded colons */
    summary(&s, "?from=2025-07-15T12%3A00%3A00Z&to=2025-07-15T12:00:00.9999999999Z", out,
            sizeof(out));
    assert_string_equal(out, "{\"totalRequests\":2,\"totalAmount\":30.30,\"totalFee\":4.545,"
                             "\"feePerTransaction\":0.15}");
    summary(&s, "?from=2025-07-15T12:00:01.001Z&to=2025-07-15T13:00:00Z", out, sizeof(out));
    assert_string_equal(out, "{\"totalRequests\":0,\"totalAmount\":0.00,\"totalFee\":0.00,"
                             "\"feePerTransaction\":0.15}");
    /* either bound missing: everything */
    summary(&s, "?from=2025-07-15T12:00:00.600Z", out, sizeof(out));
    assert_int_equal(json_num(out, "totalRequests"), 3);
    summary(&s, "", out, sizeof(out));
    assert_int_equal(json_num(out, "totalRequests"), 3);
    /* bad timestamps */
    assert_int_equal(req(&s, "GET", "/admin/payments-summary?from=garbage&to=2025-07-15T12:00:00Z",
                         TOKEN_HDR, NULL, out, sizeof(out)),
                     400);
    assert_int_equal(req(&s, "GET", "/admin/payments-summary?to=2025-13-15T12:00:00Z", TOKEN_HDR,
                         NULL, out, sizeof(out)),
                     400);
    sim_stop(&s);
}

static void test_fee_exact_from_env(void **state)
{
    struct sim s;
    char *env[] = {"PROCSIM_FEE=0.0123", NULL};
    sim_start_env(&s, NULL, env);
    assert_int_equal(post_payment(&s, ID1, "19.90", AT), 200);
    char out[512];
    summary(&s, "", out, sizeof(out));
    /* 19.90 * 0.0123 = 0.24477 exactly */
    assert_string_equal(out, "{\"totalRequests\":1,\"totalAmount\":19.90,\"totalFee\":0.24477,"
                             "\"feePerTransaction\":0.0123}");
    sim_stop(&s);
}

static void test_purge(void **state)
{
    struct sim s;
    sim_start(&s, NULL);
    assert_int_equal(post_payment(&s, ID1, "1.00", AT), 200);
    assert_int_equal(post_payment(&s, ID2, "2.00", AT), 200);
    char out[256];
    assert_int_equal(req(&s, "POST", "/admin/purge-payments", TOKEN_HDR, NULL, out, sizeof(out)),
                     200);
    assert_string_equal(out, "{\"message\":\"All payments purged.\"}");
    summary(&s, "", out, sizeof(out));
    assert_int_equal(json_num(out, "totalRequests"), 0);
    assert_int_equal(req(&s, "GET", "/payments/" ID1, NULL, NULL, out, sizeof(out)), 404);
    assert_int_equal(post_payment(&s, ID1, "1.00", AT), 200); /* no longer a duplicate */
    sim_stop(&s);
}

/* ---------- process ---------- */

static void test_unix_socket(void **state)
{
    struct sim s;
    char path[108];
    snprintf(path, sizeof(path), "/tmp/test_procsim_%d.sock", (int)getpid());
    const char *flags[] = {"--unix", path, NULL};
    sim_start(&s, flags);
    assert_int_equal(proc_wait_unix(&s.p, path, TIMEOUT_MS), 0);
    struct tclient_resp r;
    char out[256];
    const char *body = "{\"correlationId\":\"" ID1 "\",\"amount\":3.00,\"requestedAt\":\"" AT "\"}";
    assert_int_equal(tclient_fetch(path, TIMEOUT_MS, "POST", "/payments", NULL, body, strlen(body),
                                   &r, out, sizeof(out)),
                     0);
    assert_int_equal(r.status, 200);
    assert_int_equal(req(&s, "GET", "/payments/" ID1, NULL, NULL, out, sizeof(out)), 200);
    sim_stop(&s);
}

static void test_bad_flags_exit_2(void **state)
{
    const char *cases[][3] = {
        {"--port", "abc", NULL},         {"--fee", "1.5", NULL},     {"--fee", "0.1234567", NULL},
        {"--bogus", "1", NULL},          {"--delay-ms", "-3", NULL}, {"--max-in-flight", "0", NULL},
        {"--failing=maybe", NULL, NULL}, {"--port", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *argv[4] = {PROCSIM_BIN, cases[i][0], cases[i][1], NULL};
        struct proc p;
        assert_int_equal(proc_spawn(&p, (char *const *)argv, NULL, NULL), 0);
        int st = proc_wait_exit(&p, TIMEOUT_MS);
        if (st == -ETIMEDOUT)
            (void)proc_stop(&p, 1000);
        assert_int_equal(st, 2);
    }
    /* a bad environment value is refused too */
    const char *argv[] = {PROCSIM_BIN, NULL};
    char *env[] = {"PROCSIM_PORT=70000", NULL};
    struct proc p;
    assert_int_equal(proc_spawn(&p, (char *const *)argv, env, NULL), 0);
    int st = proc_wait_exit(&p, TIMEOUT_MS);
    if (st == -ETIMEDOUT)
        (void)proc_stop(&p, 1000);
    assert_int_equal(st, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_and_200),
        cmocka_unit_test(test_traceparent_seen),
        cmocka_unit_test(test_duplicate_422),
        cmocka_unit_test(test_bad_input_400),
        cmocka_unit_test(test_delay_respected),
        cmocka_unit_test(test_failing_500),
        cmocka_unit_test(test_429_over_capacity),
        cmocka_unit_test(test_hangup_still_records),
        cmocka_unit_test(test_health_rate_limit),
        cmocka_unit_test(test_get_payment),
        cmocka_unit_test(test_admin_token_401),
        cmocka_unit_test(test_token_change),
        cmocka_unit_test(test_config_responses),
        cmocka_unit_test(test_summary_windows),
        cmocka_unit_test(test_fee_exact_from_env),
        cmocka_unit_test(test_purge),
        cmocka_unit_test(test_unix_socket),
        cmocka_unit_test(test_bad_flags_exit_2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
