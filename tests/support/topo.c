/* Integration-test topology helpers; see topo.h. */
#include "topo.h"

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "lib/clock.h"
#include "lib/json.h"
#include "lib/money.h"
#include "tclient.h"

#define TOPO_TIMEOUT_MS 5000

#ifndef PROCSIM_BIN
#define PROCSIM_BIN "/nonexistent/procsim" /* target not built: spawning fails loudly */
#endif
#ifndef PAYNODE_BIN
#define PAYNODE_BIN "/nonexistent/paynode"
#endif

int64_t topo_now_ms(void)
{
    return clock_wall_ms();
}

void topo_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void topo_uuid(char out[37])
{
    static int seeded;
    if (!seeded) {
        srand((unsigned)(time(NULL) ^ (getpid() << 8)));
        seeded = 1;
    }
    unsigned char b[16];
    for (int i = 0; i < 16; i++)
        b[i] = (unsigned char)(rand() >> 3);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

void topo_sim_start(struct topo_sim *s, const char *name, const char *fee,
                    const char *const *extra_flags, const char *log_path)
{
    memset(s, 0, sizeof(*s));
    for (int attempt = 0; attempt < 5; attempt++) {
        s->port = proc_free_port();
        assert_true(s->port > 0);
        char port[16];
        snprintf(port, sizeof(port), "%d", s->port);
        const char *argv[32] = {PROCSIM_BIN, "--port", port, "--name", name, "--fee", fee};
        int argc = 7;
        for (int i = 0; extra_flags && extra_flags[i] && argc < 31; i++)
            argv[argc++] = extra_flags[i];
        argv[argc] = NULL;
        assert_int_equal(proc_spawn(&s->proc, (char *const *)argv, NULL, log_path), 0);
        if (proc_wait_tcp(&s->proc, "127.0.0.1", s->port, TOPO_TIMEOUT_MS) == 0)
            break;
        proc_stop(&s->proc, 1000); /* port taken meanwhile: try another */
        s->port = 0;
    }
    assert_true(s->port > 0);
    snprintf(s->addr, sizeof(s->addr), "127.0.0.1:%d", s->port);
    snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
}

void topo_sim_stop(struct topo_sim *s)
{
    proc_stop(&s->proc, 3000);
}

void topo_node_start(struct topo_node *n, const struct topo_sim *def, const struct topo_sim *fb,
                     const char *const *extra_env, const char *log_path)
{
    memset(n, 0, sizeof(*n));
    snprintf(n->log_path, sizeof(n->log_path), "%s", log_path ? log_path : "/dev/null");
    for (int attempt = 0; attempt < 5; attempt++) {
        n->port = proc_free_port();
        assert_true(n->port > 0);
        char port[32], durl[80], furl[80];
        snprintf(port, sizeof(port), "SERVER_PORT=%d", n->port);
        snprintf(durl, sizeof(durl), "DEFAULT_PROCESSOR_URL=%s", def->url);
        snprintf(furl, sizeof(furl), "FALLBACK_PROCESSOR_URL=%s", fb->url);
        const char *env[40] = {port, durl, furl, "SERVER_HOST=127.0.0.1", "LOG_LEVEL=info"};
        int ne = 5;
        for (int i = 0; extra_env && extra_env[i] && ne < 39; i++)
            env[ne++] = extra_env[i];
        env[ne] = NULL;
        const char *argv[] = {PAYNODE_BIN, NULL};
        assert_int_equal(proc_spawn(&n->proc, (char *const *)argv, (char *const *)env, n->log_path),
                         0);
        if (proc_wait_tcp(&n->proc, "127.0.0.1", n->port, TOPO_TIMEOUT_MS) == 0)
            break;
        proc_stop(&n->proc, 1000);
        n->port = 0;
    }
    assert_true(n->port > 0);
    snprintf(n->addr, sizeof(n->addr), "127.0.0.1:%d", n->port);
}

int topo_node_stop(struct topo_node *n)
{
    return proc_stop(&n->proc, 8000);
}

int topo_post_payment(const char *addr, const char *id, const char *amount)
{
    char body[160];
    int len = snprintf(body, sizeof(body), "{\"correlationId\":\"%s\",\"amount\":%s}", id, amount);
    struct tclient_resp r;
    char rb[256];
    int rv = tclient_fetch(addr, TOPO_TIMEOUT_MS, "POST", "/payments", NULL, body, (size_t)len, &r,
                           rb, sizeof(rb));
    return rv < 0 ? rv : r.status;
}

static void window_query(char *q, size_t cap, const char *path, int64_t from_ms, int64_t to_ms)
{
    char f[CLOCK_ISO_LEN + 1], t[CLOCK_ISO_LEN + 1];
    size_t n = (size_t)snprintf(q, cap, "%s", path);
    if (from_ms != INT64_MIN) {
        clock_format_iso_ms(from_ms, f);
        n += (size_t)snprintf(q + n, cap - n, "%sfrom=%s", strchr(q, '?') ? "&" : "?", f);
    }
    if (to_ms != INT64_MAX) {
        clock_format_iso_ms(to_ms, t);
        snprintf(q + n, cap - n, "%sto=%s", strchr(q, '?') ? "&" : "?", t);
    }
}

static bool member_count(const struct json_doc *d, int obj, const char *key, int64_t *count,
                         int64_t *cents)
{
    long long c;
    struct slice amt;
    int ti = obj < 0 ? -1 : json_member(d, obj, "totalRequests");
    int ta = obj < 0 ? -1 : json_member(d, obj, "totalAmount");
    (void)key;
    if (!json_int(d, ti, &c) || !json_number(d, ta, &amt))
        return false;
    *count = c;
    if (c == 0) {
        *cents = 0;
        return true;
    }
    return money_parse_cents(amt.ptr, amt.len, cents) == 0;
}

int topo_node_summary(const char *addr, int64_t from_ms, int64_t to_ms, struct topo_counts *out)
{
    char q[160], body[1024];
    struct tclient_resp r;
    window_query(q, sizeof(q), "/payments-summary", from_ms, to_ms);
    int rv = tclient_fetch(addr, TOPO_TIMEOUT_MS, "GET", q, NULL, NULL, 0, &r, body, sizeof(body));
    if (rv < 0)
        return rv;
    if (r.status != 200)
        return -r.status;
    struct json_doc d;
    if (json_parse(&d, body, strlen(body)) != 0)
        return -EPROTO;
    static const char *const names[2] = {"default", "fallback"};
    for (int p = 0; p < 2; p++)
        if (!member_count(&d, json_member(&d, 0, names[p]), names[p], &out->count[p],
                          &out->cents[p]))
            return -EPROTO;
    return 0;
}

int topo_sims_summary(const struct topo_sim *def, const struct topo_sim *fb, int64_t from_ms,
                      int64_t to_ms, struct topo_counts *out)
{
    const struct topo_sim *sims[2] = {def, fb};
    for (int p = 0; p < 2; p++) {
        char q[160], body[1024];
        struct tclient_resp r;
        window_query(q, sizeof(q), "/admin/payments-summary", from_ms, to_ms);
        int rv =
            tclient_fetch(sims[p]->addr, TOPO_TIMEOUT_MS, "GET", q,
                          "X-Rinha-Token: " TOPO_TOKEN "\r\n", NULL, 0, &r, body, sizeof(body));
        if (rv < 0)
            return rv;
        if (r.status != 200)
            return -r.status;
        struct json_doc d;
        if (json_parse(&d, body, strlen(body)) != 0 ||
            !member_count(&d, 0, "", &out->count[p], &out->cents[p]))
            return -EPROTO;
    }
    return 0;
}

bool topo_sim_has(const struct topo_sim *s, const char *id)
{
    char path[80];
    struct tclient_resp r;
    snprintf(path, sizeof(path), "/payments/%s", id);
    int rv = tclient_fetch(s->addr, TOPO_TIMEOUT_MS, "GET", path, NULL, NULL, 0, &r, NULL, 0);
    assert_int_equal(rv, 0);
    assert_true(r.status == 200 || r.status == 404);
    return r.status == 200;
}

static void admin_put(const struct topo_sim *s, const char *path, const char *body)
{
    struct tclient_resp r;
    int rv = tclient_fetch(s->addr, TOPO_TIMEOUT_MS, "PUT", path,
                           "X-Rinha-Token: " TOPO_TOKEN "\r\n", body, strlen(body), &r, NULL, 0);
    assert_int_equal(rv, 0);
    assert_int_equal(r.status, 200);
}

void topo_sim_set_delay(const struct topo_sim *s, int delay_ms)
{
    char body[48];
    snprintf(body, sizeof(body), "{\"delay\":%d}", delay_ms);
    admin_put(s, "/admin/configurations/delay", body);
}

void topo_sim_set_failure(const struct topo_sim *s, bool failing)
{
    admin_put(s, "/admin/configurations/failure",
              failing ? "{\"failure\":true}" : "{\"failure\":false}");
}

void topo_sim_purge(const struct topo_sim *s)
{
    struct tclient_resp r;
    int rv = tclient_fetch(s->addr, TOPO_TIMEOUT_MS, "POST", "/admin/purge-payments",
                           "X-Rinha-Token: " TOPO_TOKEN "\r\n", NULL, 0, &r, NULL, 0);
    assert_int_equal(rv, 0);
    assert_int_equal(r.status, 200);
}

int topo_node_purge_status(const char *addr)
{
    struct tclient_resp r;
    int rv =
        tclient_fetch(addr, TOPO_TIMEOUT_MS, "POST", "/purge-payments", NULL, NULL, 0, &r, NULL, 0);
    assert_int_equal(rv, 0);
    return r.status;
}

void topo_node_purge(const char *addr)
{
    assert_int_equal(topo_node_purge_status(addr), 200);
}

int64_t topo_node_total(const char *addr)
{
    struct topo_counts c;
    assert_int_equal(topo_node_summary(addr, INT64_MIN, INT64_MAX, &c), 0);
    return c.count[0] + c.count[1];
}

int64_t topo_wait_total(const char *addr, int64_t want, int timeout_ms)
{
    int64_t deadline = topo_now_ms() + timeout_ms, total = -1;
    do {
        struct topo_counts c;
        if (topo_node_summary(addr, INT64_MIN, INT64_MAX, &c) == 0) {
            total = c.count[0] + c.count[1];
            if (total == want)
                return total;
        }
        topo_sleep_ms(50);
    } while (topo_now_ms() < deadline);
    return total;
}

static bool port_free(int port, int type)
{
    int fd = socket(AF_INET, type, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static int env_int(const char *name, int dflt)
{
    const char *s = getenv(name);
    return s && *s ? atoi(s) : dflt;
}

int topo_free_port_pair(void)
{
    int base = env_int("TOPO_PORT_BASE", 20000), span = env_int("TOPO_PORT_SPAN", 12000);
    for (int i = 0; i < 400; i++) {
        int p = base + rand() % (span - 1);
        if (port_free(p, SOCK_STREAM) && port_free(p + 1, SOCK_STREAM) &&
            port_free(p, SOCK_DGRAM) && port_free(p + 1, SOCK_DGRAM))
            return p;
    }
    fail_msg("no free port pair");
    return -1;
}

int64_t topo_metric(const struct topo_node *n, const char *name)
{
    static char body[65536];
    struct tclient_resp r;
    assert_int_equal(
        tclient_fetch(n->addr, 5000, "GET", "/metrics", NULL, NULL, 0, &r, body, sizeof(body)), 0);
    assert_int_equal(r.status, 200);
    assert_false(r.truncated);
    size_t nl = strlen(name);
    for (char *line = body; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, name, nl) == 0 && line[nl] == ' ')
            return strtoll(line + nl + 1, NULL, 10);
    fail_msg("metric %s not found", name);
    return -1;
}

void topo_sims_start(struct topo_sim *def, struct topo_sim *fb, const char *test)
{
    char log[128];
    snprintf(log, sizeof(log), "%s.default.log", test);
    topo_sim_start(def, "default", "0.05", NULL, log);
    snprintf(log, sizeof(log), "%s.fallback.log", test);
    topo_sim_start(fb, "fallback", "0.15", NULL, log);
}

void topo_sims_stop(struct topo_sim *def, struct topo_sim *fb)
{
    topo_sim_stop(def);
    topo_sim_stop(fb);
}

void topo_sims_reset(const struct topo_sim *def, const struct topo_sim *fb)
{
    topo_sim_set_failure(def, false);
    topo_sim_set_failure(fb, false);
    topo_sim_set_delay(def, 0);
    topo_sim_set_delay(fb, 0);
    topo_sim_purge(def);
    topo_sim_purge(fb);
}

void topo_node_wait_ready(const struct topo_node *n, int tries)
{
    for (int i = 0; i < tries; i++) {
        struct topo_counts c;
        if (topo_node_summary(n->addr, INT64_MIN, INT64_MAX, &c) == 0)
            return;
        topo_sleep_ms(50);
    }
    fail_msg("node %s never became ready", n->addr);
}
