/* Load generator end to end: two processor simulators and a third one as the
 * target (it answers POST /payments itself and 404s /payments-summary). Runs
 * short compressed schedules and a fixed-rate run, then checks the exit codes,
 * that the report is valid JSON with consistent figures, that the accepted-id
 * file matches, and that the schedule's last stage reached the processors.
 * Needs PROCSIM_BIN and LOADGEN_BIN; skips otherwise. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/uuid.h"
#include "ops/loadgen/report.h"
#include "proc.h"
#include "tclient.h"

#if defined(PROCSIM_BIN) && defined(LOADGEN_BIN)

enum { SIM_DEFAULT = 0, SIM_FALLBACK, SIM_TARGET, SIM_COUNT };

struct env {
    struct proc sim[SIM_COUNT];
    int port[SIM_COUNT];
    char url[SIM_COUNT][64];
    char dir[64];
};

static int start_sim(struct env *e, int i, const char *name, const char *fee)
{
    char log[128], port_s[16];
    snprintf(log, sizeof(log), "%s/sim%d.log", e->dir, i);
    for (int attempt = 0; attempt < 5; attempt++) {
        int port = proc_free_port();
        if (port <= 0)
            return -EADDRNOTAVAIL;
        snprintf(port_s, sizeof(port_s), "%d", port);
        char *argv[] = {(char *)PROCSIM_BIN,
                        (char *)"--host",
                        (char *)"127.0.0.1",
                        (char *)"--port",
                        port_s,
                        (char *)"--name",
                        (char *)name,
                        (char *)"--fee",
                        (char *)fee,
                        (char *)"--health-window-ms",
                        (char *)"1",
                        NULL};
        if (proc_spawn(&e->sim[i], argv, NULL, log) != 0)
            return -ECHILD;
        if (proc_wait_tcp(&e->sim[i], "127.0.0.1", port, 5000) == 0) {
            e->port[i] = port;
            snprintf(e->url[i], sizeof(e->url[i]), "http://127.0.0.1:%d", port);
            return 0;
        }
        (void)proc_stop(&e->sim[i], 1000); /* port taken meanwhile: try another */
    }
    return -EADDRINUSE;
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    snprintf(e->dir, sizeof(e->dir), "/tmp/test_loadgen.XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    assert_int_equal(start_sim(e, SIM_DEFAULT, "default", "0.05"), 0);
    assert_int_equal(start_sim(e, SIM_FALLBACK, "fallback", "0.15"), 0);
    assert_int_equal(start_sim(e, SIM_TARGET, "default", "0"), 0);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    for (int i = 0; i < SIM_COUNT; i++)
        (void)proc_stop(&e->sim[i], 2000);
    free(e);
    return 0;
}

/* Runs loadgen with extra args; returns its exit status. */
static int run_loadgen(struct env *e, const char *const *extra, const char *tag)
{
    char log[128];
    snprintf(log, sizeof(log), "%s/loadgen-%s.log", e->dir, tag);
    char *argv[48];
    int n = 0;
    argv[n++] = (char *)LOADGEN_BIN;
    for (; *extra && n < 47; extra++)
        argv[n++] = (char *)*extra;
    argv[n] = NULL;
    struct proc p;
    assert_int_equal(proc_spawn(&p, argv, NULL, log), 0);
    int st = proc_wait_exit(&p, 120000);
    if (st == -ETIMEDOUT) {
        (void)proc_stop(&p, 1000);
        fail_msg("loadgen did not finish");
    }
    return st;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The number after `key` following the sequence of anchors (each searched
 * after the previous one), e.g. num(js, "\"payments\":{", "\"ok\":"). */
static long long num_after(const char *js, const char *anchor, const char *key)
{
    const char *p = anchor ? strstr(js, anchor) : js;
    assert_non_null(p);
    p = strstr(p, key);
    assert_non_null(p);
    return strtoll(p + strlen(key), NULL, 10);
}

static int count_occurrences(const char *js, const char *needle)
{
    int n = 0;
    for (const char *p = js; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void health(struct env *e, int i, bool *failing, long *min_rt)
{
    char addr[32], body[256];
    struct tclient_resp r;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", e->port[i]);
    assert_int_equal(tclient_fetch(addr, 2000, "GET", "/payments/service-health", NULL, NULL, 0, &r,
                                   body, sizeof(body)),
                     0);
    assert_int_equal(r.status, 200);
    *failing = strstr(body, "\"failing\":true") != NULL;
    const char *m = strstr(body, "\"minResponseTime\":");
    assert_non_null(m);
    *min_rt = strtol(m + strlen("\"minResponseTime\":"), NULL, 10);
}

static long long admin_count(struct env *e, int i)
{
    char addr[32], body[512];
    struct tclient_resp r;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", e->port[i]);
    assert_int_equal(tclient_fetch(addr, 2000, "GET", "/admin/payments-summary",
                                   "X-Rinha-Token: 123\r\n", NULL, 0, &r, body, sizeof(body)),
                     0);
    assert_int_equal(r.status, 200);
    return num_after(body, NULL, "\"totalRequests\":");
}

static void test_schedule_run(void **state)
{
    struct env *e = *state;
    char report[128], accepted[128];
    snprintf(report, sizeof(report), "%s/report.json", e->dir);
    snprintf(accepted, sizeof(accepted), "%s/accepted.txt", e->dir);
    /* preview stages replaced by two: at 10 s and 30 s of 60, i.e. 1 s and 3 s of 6 */
    const char *args[] = {"--target",
                          e->url[SIM_TARGET],
                          "--default-url",
                          e->url[SIM_DEFAULT],
                          "--fallback-url",
                          e->url[SIM_FALLBACK],
                          "--duration",
                          "6",
                          "--users",
                          "20",
                          "--stages",
                          "10:0/n,0/n;30:37/y,41/n",
                          "--audit-interval-s",
                          "2",
                          "--with-requested-at",
                          "--drain-s",
                          "0.5",
                          "--report",
                          report,
                          "--accepted-file",
                          accepted,
                          NULL};
    assert_int_equal(run_loadgen(e, args, "schedule"), 0);

    size_t len;
    char *js = slurp(report, &len);
    assert_non_null(js);
    assert_true(lg_json_valid(js, len));
    assert_non_null(strstr(js, "\"completed\":true"));
    assert_non_null(strstr(js, "\"schedule\":\"custom\""));

    long long sent = num_after(js, "\"payments\":{", "\"sent\":");
    long long ok = num_after(js, "\"payments\":{", "\"ok\":");
    long long failed = num_after(js, "\"payments\":{", "\"failed\":");
    assert_true(ok > 0);
    assert_int_equal(ok + failed, sent);
    long long errs = 0;
    static const char *const kinds[] = {
        "\"timeout\":", "\"connection\":", "\"clientBusy\":", "\"4xx\":", "\"5xx\":", "\"other\":"};
    for (size_t k = 0; k < 6; k++)
        errs += num_after(js, "\"payments\":{", kinds[k]);
    assert_int_equal(errs, failed);
    /* 20 users ramping over 6 s, one post per user per second: at least a few dozen */
    assert_true(sent >= 20);
    assert_int_equal(num_after(js, NULL, "\"accepted\":"), ok);
    assert_int_equal(num_after(js, "\"payments\":{", "\"count\":"), ok);

    /* stages: both applied */
    assert_int_equal(num_after(js, "\"stages\":{", "\"planned\":"), 2);
    assert_int_equal(num_after(js, "\"stages\":{", "\"applied\":"), 2);
    bool failing;
    long min_rt;
    health(e, SIM_DEFAULT, &failing, &min_rt);
    assert_true(failing);
    assert_int_equal(min_rt, 37);
    health(e, SIM_FALLBACK, &failing, &min_rt);
    assert_false(failing);
    assert_int_equal(min_rt, 41);

    /* audits at 2, 4, 6 s: the simulator target has no /payments-summary */
    int naudits = count_occurrences(js, "\"atS\":");
    assert_true(naudits >= 2 && naudits <= 3);
    assert_int_equal(num_after(js, NULL, "\"auditErrors\":"), naudits);
    assert_int_equal(count_occurrences(js, "target summary: status 404"), naudits);

    /* score: the processors answered, but nothing was forwarded to them */
    assert_non_null(strstr(js, "\"grossAmount\":0.00,\"fees\":0.00"));
    assert_int_equal(num_after(js, "\"score\":{", "\"lag\":"), ok);
    assert_non_null(strstr(js, "\"lagTrustworthy\":"));
    /* the target recorded what it accepted (delay 0, so nothing is in doubt) */
    if (failed == 0)
        assert_int_equal(admin_count(e, SIM_TARGET), ok);

    /* the accepted file: ok lines, each a UUID v4 */
    size_t alen;
    char *acc = slurp(accepted, &alen);
    assert_non_null(acc);
    assert_int_equal(alen, (size_t)ok * (UUID_TEXT_LEN + 1));
    for (size_t off = 0; off < alen; off += UUID_TEXT_LEN + 1) {
        uint8_t id[16];
        assert_int_equal(uuid_parse(acc + off, UUID_TEXT_LEN, id), 0);
        assert_int_equal(id[6] >> 4, 4);
        assert_int_equal(acc[off + UUID_TEXT_LEN], '\n');
    }
    free(acc);
    free(js);
}

static void test_rate_run(void **state)
{
    struct env *e = *state;
    char report[128];
    snprintf(report, sizeof(report), "%s/rate.json", e->dir);
    const char *args[] = {"--target",
                          e->url[SIM_TARGET],
                          "--default-url",
                          e->url[SIM_DEFAULT],
                          "--fallback-url",
                          e->url[SIM_FALLBACK],
                          "--rate",
                          "100",
                          "--duration",
                          "2",
                          "--no-purge",
                          "--with-requested-at",
                          "--report",
                          report,
                          NULL};
    assert_int_equal(run_loadgen(e, args, "rate"), 0);
    size_t len;
    char *js = slurp(report, &len);
    assert_non_null(js);
    assert_true(lg_json_valid(js, len));
    assert_non_null(strstr(js, "\"schedule\":\"rate\""));
    assert_int_equal(num_after(js, "\"payments\":{", "\"sent\":"), 200); /* open loop: exactly */
    long long ok = num_after(js, "\"payments\":{", "\"ok\":");
    assert_int_equal(ok + num_after(js, "\"payments\":{", "\"failed\":"), 200);
    assert_true(ok > 0);
    assert_non_null(strstr(js, "\"score\":null"));            /* not asked */
    assert_non_null(strstr(js, "\"stages\":{\"planned\":0")); /* never touches processors */
    free(js);
}

static void test_exit_codes(void **state)
{
    struct env *e = *state;
    const char *bad[] = {"--users", "zero", NULL};
    assert_int_equal(run_loadgen(e, bad, "badflag"), 2);
    /* a port nobody listens on: the run cannot be done */
    int port = proc_free_port();
    assert_true(port > 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    const char *dead[] = {"--target",
                          url,
                          "--default-url",
                          e->url[SIM_DEFAULT],
                          "--fallback-url",
                          e->url[SIM_FALLBACK],
                          "--duration",
                          "1",
                          NULL};
    assert_int_equal(run_loadgen(e, dead, "unreachable"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule_run),
        cmocka_unit_test(test_rate_run),
        cmocka_unit_test(test_exit_codes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

#else

static void test_skipped(void **state)
{
    (void)state;
    skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_skipped)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
