/* log: every line written to a pipe is one valid JSON object (checked with
 * json_parse) with the documented fields; escaping, truncation at 1 KiB,
 * level filtering, raw fields, and the per-module WARN/ERROR rate limit with a
 * fake clock. Includes log.c to reach the clock hook and the rate table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.c"

#include "lib/clock.h"
#include "lib/json.h"

#define CAP (256 * 1024)

static int64_t fake_ms;

static int64_t fake_now(void)
{
    return fake_ms;
}

struct fixture {
    int rd, wr;
    char buf[CAP];
    size_t len;
    size_t off; /* next line to hand out */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    int p[2];
    if (f == NULL || pipe(p) != 0)
        return -1;
    f->rd = p[0];
    f->wr = p[1];
    fcntl(f->rd, F_SETFL, O_NONBLOCK);
    fcntl(f->wr, F_SETPIPE_SZ, 1024 * 1024); /* best effort; tests drain often anyway */
    memset(log_rates, 0, sizeof(log_rates));
    fake_ms = 1000000;
    log_now_ms = fake_now;
    log_init(LOG_DEBUG, f->wr);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    log_init(LOG_INFO, 1);
    log_now_ms = log_mono_ms;
    close(f->rd);
    close(f->wr);
    free(f);
    return 0;
}

/* Reads everything written so far. */
static void drain(struct fixture *f)
{
    for (int i = 0; i < 1000; i++) {
        ssize_t n = read(f->rd, f->buf + f->len, CAP - f->len);
        if (n <= 0)
            break;
        f->len += (size_t)n;
    }
}

/* Next complete line (without '\n') into a NUL-terminated copy, or NULL. */
static char *next_line(struct fixture *f, char *out, size_t cap)
{
    if (f->off == f->len)
        f->off = f->len = 0; /* all consumed: reuse the buffer */
    drain(f);
    if (f->off >= f->len)
        return NULL;
    char *nl = memchr(f->buf + f->off, '\n', f->len - f->off);
    assert_non_null(nl);
    size_t n = (size_t)(nl - (f->buf + f->off));
    assert_true(n + 1 <= LOG_LINE_MAX); /* newline included */
    assert_true(n < cap);
    memcpy(out, f->buf + f->off, n);
    out[n] = '\0';
    f->off += n + 1;
    return out;
}

static int count_lines(struct fixture *f)
{
    char line[LOG_LINE_MAX + 1];
    int n = 0;
    while (next_line(f, line, sizeof(line)) != NULL)
        n++;
    return n;
}

/* Parses a line and checks the four mandatory members. */
static void check_line(struct json_doc *d, const char *line, const char *level, const char *module)
{
    int rv = json_parse(d, line, strlen(line));
    if (rv != 0)
        fail_msg("not JSON (%d): %s", rv, line);
    assert_int_equal(d->tok[0].type, JSON_OBJECT);
    struct slice s;
    assert_true(json_string(d, json_member(d, 0, "ts"), &s, NULL));
    int64_t ns;
    assert_int_equal(s.len, CLOCK_ISO_LEN);
    assert_int_equal(clock_parse_iso(s.ptr, s.len, 0, &ns), 0);
    int64_t now = clock_wall_ms();
    assert_true(ns / 1000000 <= now && ns / 1000000 > now - 60000);
    assert_true(json_string(d, json_member(d, 0, "level"), &s, NULL));
    assert_true(slice_eq(s, level));
    assert_true(json_string(d, json_member(d, 0, "module"), &s, NULL));
    assert_true(slice_eq(s, module));
    assert_true(json_member(d, 0, "msg") > 0);
}

static struct slice msg_of(const struct json_doc *d)
{
    struct slice s = {NULL, 0};
    assert_true(json_string(d, json_member(d, 0, "msg"), &s, NULL));
    return s;
}

static void test_basic_line(void **state)
{
    struct fixture *f = *state;
    char line[LOG_LINE_MAX + 1];
    struct json_doc d;
    log_info("test", "hello %d", 42);
    assert_non_null(next_line(f, line, sizeof(line)));
    check_line(&d, line, "info", "test");
    assert_int_equal(d.tok[0].size, 4);
    assert_true(slice_eq(msg_of(&d), "hello 42"));
    assert_memory_equal(line, "{\"ts\":\"", 7);
    assert_null(next_line(f, line, sizeof(line)));

    log_debug("a", "d");
    log_warn("b", "w");
    log_error("c", "e");
    log_msg(LOG_INFO, NULL, "no module");
    assert_non_null(next_line(f, line, sizeof(line)));
    check_line(&d, line, "debug", "a");
    assert_non_null(next_line(f, line, sizeof(line)));
    check_line(&d, line, "warn", "b");
    assert_non_null(next_line(f, line, sizeof(line)));
    check_line(&d, line, "error", "c");
    assert_non_null(next_line(f, line, sizeof(line)));
    check_line(&d, line, "info", "-");
}

static void test_levels(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *s;
        int rv;
        enum log_level l;
    } c[] = {
        {"debug", 0, LOG_DEBUG}, {"info", 0, LOG_INFO}, {"warn", 0, LOG_WARN},
        {"error", 0, LOG_ERROR}, {"INFO", -EINVAL, 0},  {"warning", -EINVAL, 0},
        {"", -EINVAL, 0},        {"info ", -EINVAL, 0}, {"err", -EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        enum log_level l = LOG_ERROR;
        assert_int_equal(log_level_parse(c[i].s, &l), c[i].rv);
        if (c[i].rv == 0)
            assert_int_equal(l, c[i].l);
    }
    enum log_level l;
    assert_int_equal(log_level_parse(NULL, &l), -EINVAL);

    for (int lv = LOG_DEBUG; lv <= LOG_ERROR; lv++) {
        log_init((enum log_level)lv, f->wr);
        log_debug("lv", "x");
        log_info("lv", "x");
        log_warn("lv", "x");
        log_error("lv", "x");
        assert_int_equal(count_lines(f), 4 - lv);
    }
}

static void test_escaping(void **state)
{
    struct fixture *f = *state;
    char line[LOG_LINE_MAX + 1];
    struct json_doc d;
    log_info("esc\"mod", "q\" b\\ n\n t\t r\r c\x01 d\x7f e\xc3\xa9 bad\xff end");
    assert_non_null(next_line(f, line, sizeof(line)));
    check_line(&d, line, "info", "esc\\\"mod");
    assert_true(slice_eq(msg_of(&d), "q\\\" b\\\\ n\\n t\\t r\\r c\\u0001 d\\u007f e\xc3\xa9 "
                                     "bad\\ufffd end"));
    /* every byte value, one at a time */
    for (int c = 1; c < 256; c++) {
        char m[4] = {'<', (char)c, '>', 0};
        log_info("bytes", "%s", m);
        assert_non_null(next_line(f, line, sizeof(line)));
        check_line(&d, line, "info", "bytes");
    }
}

/* Messages around and far beyond the limit, made of characters with escapes of
 * every width, always give one valid line of at most LOG_LINE_MAX bytes. */
static void test_truncation(void **state)
{
    struct fixture *f = *state;
    static const char *pieces[] = {"a", "\"", "\x01", "\xc3\xa9", "\xe2\x82\xac", "\xff", "ab\n"};
    char msg[3000], line[LOG_LINE_MAX + 1];
    struct json_doc d;
    for (size_t p = 0; p < sizeof(pieces) / sizeof(pieces[0]); p++) {
        for (size_t target = 150; target < sizeof(msg) - 8; target += 37) {
            size_t n = 0;
            while (n + strlen(pieces[p]) < target) {
                memcpy(msg + n, pieces[p], strlen(pieces[p]));
                n += strlen(pieces[p]);
            }
            msg[n] = '\0';
            log_warn("trunc", "%s", msg);
            fake_ms += 1000; /* stay under the rate limit */
            assert_non_null(next_line(f, line, sizeof(line)));
            assert_true(strlen(line) + 1 <= LOG_LINE_MAX);
            check_line(&d, line, "warn", "trunc");
            bool t = false;
            int ti = json_member(&d, 0, "truncated");
            if (ti >= 0)
                assert_true(json_bool(&d, ti, &t) && t);
            if (n * 6 < 800) /* fits even at 6 bytes per escaped byte */
                assert_int_equal(ti, -1);
            if (n > LOG_LINE_MAX)
                assert_true(t);
        }
    }
    /* a long message keeps as much as fits */
    memset(msg, 'x', 2000);
    msg[2000] = '\0';
    log_info("trunc", "%s", msg);
    assert_non_null(next_line(f, line, sizeof(line)));
    check_line(&d, line, "info", "trunc");
    assert_true(msg_of(&d).len > 800);
    assert_true(strlen(line) + 1 >= LOG_LINE_MAX - 64);
    /* a long module name is cut, not allowed to push out the message */
    char mod[200];
    memset(mod, 'm', sizeof(mod) - 1);
    mod[sizeof(mod) - 1] = '\0';
    log_info(mod, "short");
    assert_non_null(next_line(f, line, sizeof(line)));
    assert_int_equal(json_parse(&d, line, strlen(line)), 0);
    assert_true(slice_eq(msg_of(&d), "short"));
}

static void test_fields(void **state)
{
    struct fixture *f = *state;
    char line[LOG_LINE_MAX + 1];
    struct json_doc d;
    long long v = 0;
    struct slice s;
    log_fields(LOG_INFO, "config", "start", "\"port\":%d,\"name\":\"%s\"", 9999, "node-a");
    assert_non_null(next_line(f, line, sizeof(line)));
    check_line(&d, line, "info", "config");
    assert_int_equal(d.tok[0].size, 6);
    assert_true(slice_eq(msg_of(&d), "start"));
    assert_true(json_int(&d, json_member(&d, 0, "port"), &v));
    assert_int_equal(v, 9999);
    assert_true(json_string(&d, json_member(&d, 0, "name"), &s, NULL));
    assert_true(slice_eq(s, "node-a"));

    /* empty fields add nothing */
    log_fields(LOG_INFO, "config", "none", "%s", "");
    assert_non_null(next_line(f, line, sizeof(line)));
    check_line(&d, line, "info", "config");
    assert_int_equal(d.tok[0].size, 4);

    /* fields that cannot fit are dropped whole, and the line says so */
    char big[1500];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    log_fields(LOG_INFO, "config", "big", "\"blob\":\"%s\"", big);
    assert_non_null(next_line(f, line, sizeof(line)));
    check_line(&d, line, "info", "config");
    assert_int_equal(json_member(&d, 0, "blob"), -1);
    bool t = false;
    assert_true(json_bool(&d, json_member(&d, 0, "truncated"), &t) && t);

    /* fields that fit are kept whole even if the message must be cut */
    char longmsg[1200];
    memset(longmsg, 'y', sizeof(longmsg) - 1);
    longmsg[sizeof(longmsg) - 1] = '\0';
    log_fields(LOG_ERROR, "config", longmsg, "\"k\":%d", 7);
    assert_non_null(next_line(f, line, sizeof(line)));
    check_line(&d, line, "error", "config");
    assert_true(json_int(&d, json_member(&d, 0, "k"), &v));
    assert_int_equal(v, 7);
    assert_true(json_bool(&d, json_member(&d, 0, "truncated"), &t) && t);
}

static long long suppressed_of(const struct json_doc *d)
{
    long long v = 0;
    int i = json_member(d, 0, "suppressed");
    if (i < 0)
        return 0;
    assert_true(json_int(d, i, &v));
    return v;
}

static void test_rate_limit(void **state)
{
    struct fixture *f = *state;
    char line[LOG_LINE_MAX + 1];
    struct json_doc d;

    for (int i = 0; i < 60; i++)
        log_warn("flood", "w %d", i);
    assert_int_equal(count_lines(f), 50);
    /* other modules and INFO lines are unaffected */
    log_error("quiet", "e");
    for (int i = 0; i < 100; i++)
        log_info("flood", "i");
    drain(f);
    assert_non_null(next_line(f, line, sizeof(line)));
    check_line(&d, line, "error", "quiet");
    assert_int_equal(suppressed_of(&d), 0);
    /* the first INFO line of the module reports the 10 drops, later ones nothing */
    assert_non_null(next_line(f, line, sizeof(line)));
    check_line(&d, line, "info", "flood");
    assert_int_equal(suppressed_of(&d), 10);
    assert_int_equal(count_lines(f), 99);

    /* still in the same window: more warnings are dropped */
    fake_ms += 999;
    for (int i = 0; i < 5; i++)
        log_error("flood", "e");
    assert_int_equal(count_lines(f), 0);
    /* next window: the count of drops rides on the next line */
    fake_ms += 1;
    log_error("flood", "back");
    assert_non_null(next_line(f, line, sizeof(line)));
    check_line(&d, line, "error", "flood");
    assert_int_equal(suppressed_of(&d), 5);
    log_error("flood", "again");
    assert_non_null(next_line(f, line, sizeof(line)));
    check_line(&d, line, "error", "flood");
    assert_int_equal(suppressed_of(&d), 0);

    /* the same name at another address shares the budget */
    char name[8];
    strcpy(name, "flood");
    for (int i = 0; i < 60; i++)
        log_warn(name, "w");
    assert_int_equal(count_lines(f), 48);
    /* and a reused buffer holding another name gets its own budget */
    strcpy(name, "other");
    log_warn(name, "w");
    assert_int_equal(count_lines(f), 1);
}

static void test_rate_table_full(void **state)
{
    struct fixture *f = *state;
    static char names[80][16];
    for (int i = 0; i < 80; i++) {
        snprintf(names[i], sizeof(names[i]), "mod%02d", i);
        log_warn(names[i], "w");
    }
    /* 31 modules get their own slot; the other 49 share the last one, whose
     * budget of 50 per second still covers them */
    assert_int_equal(count_lines(f), 80);
    /* modules beyond the table share the last slot: bounded all the same */
    for (int i = 0; i < 200; i++)
        log_warn(names[40 + i % 40], "w");
    assert_int_equal(count_lines(f), LOG_RATE_PER_SEC - 49);
    /* modules with their own slot keep their own budget */
    for (int i = 0; i < 60; i++)
        log_warn(names[0], "w");
    assert_int_equal(count_lines(f), LOG_RATE_PER_SEC - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_basic_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_table_full, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
