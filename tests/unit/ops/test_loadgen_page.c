/* Load generator: the HTML report, rendered from synthetic results and checked
 * for structure: well-formed markup (every element closed, attributes quoted,
 * only known character references), one <svg> per chart, the data drawn, the
 * outside strings escaped, no external asset, no NaN coordinates; also a run
 * that could not be done and a fixed-rate run. And the text buffer's escaping. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ops/loadgen/html.h"
#include "ops/loadgen/opts.h"
#include "ops/loadgen/run.h"
#include "ops/loadgen/sbuf.h"
#include "ops/loadgen/score.h"

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == ':';
}

/* Length of a character reference at p ("&amp;", "&#183;"...), 0 if none. */
static size_t entity_len(const char *p)
{
    static const char *const named[] = {"&amp;", "&lt;", "&gt;", "&quot;"};
    for (size_t i = 0; i < 4; i++)
        if (strncmp(p, named[i], strlen(named[i])) == 0)
            return strlen(named[i]);
    if (p[1] != '#')
        return 0;
    size_t n = 2;
    while (p[n] >= '0' && p[n] <= '9')
        n++;
    return n > 2 && p[n] == ';' ? n + 1 : 0;
}

/* Checks the page is well-formed in the XML sense (what we promise to write):
 * returns NULL, or what is wrong and where (in *where). <script> and <style>
 * hold raw text up to their end tag. */
static const char *check_markup(const char *h, const char **where)
{
    enum { MAXD = 64 };
    char stack[MAXD][16];
    int depth = 0;
    const char *p = h;
    const char *doctype = "<!DOCTYPE html>";
    if (strncmp(p, doctype, strlen(doctype)) != 0)
        return "no doctype";
    p += strlen(doctype);
    while (*p) {
        *where = p;
        if (*p == '&') {
            size_t n = entity_len(p);
            if (n == 0)
                return "bare &";
            p += n;
            continue;
        }
        if (*p == '>')
            return "bare >";
        if (*p != '<') {
            p++;
            continue;
        }
        bool closing = p[1] == '/';
        const char *n0 = p + (closing ? 2 : 1), *n1 = n0;
        while (is_name_char(*n1))
            n1++;
        size_t nlen = (size_t)(n1 - n0);
        if (nlen == 0 || nlen >= sizeof(stack[0]))
            return "bad tag name";
        if (closing) {
            if (*n1 != '>')
                return "junk in end tag";
            if (depth == 0 || strlen(stack[depth - 1]) != nlen ||
                strncmp(stack[depth - 1], n0, nlen) != 0)
                return "end tag does not match";
            depth--;
            p = n1 + 1;
            continue;
        }
        /* attributes: name="value" */
        const char *q = n1;
        bool self_closed = false;
        for (;;) {
            while (*q == ' ' || *q == '\n')
                q++;
            if (q[0] == '/' && q[1] == '>') {
                self_closed = true;
                q += 2;
                break;
            }
            if (*q == '>') {
                q++;
                break;
            }
            const char *a = q;
            while (is_name_char(*q))
                q++;
            if (q == a || q[0] != '=' || q[1] != '"')
                return "unquoted or malformed attribute";
            q += 2;
            while (*q != '"') {
                if (*q == '\0' || *q == '<')
                    return "< or end of text in an attribute";
                if (*q == '&') {
                    size_t n = entity_len(q);
                    if (n == 0)
                        return "bare & in an attribute";
                    q += n;
                } else {
                    q++;
                }
            }
            q++;
        }
        p = q;
        if (self_closed)
            continue;
        if ((nlen == 6 && strncmp(n0, "script", 6) == 0) ||
            (nlen == 5 && strncmp(n0, "style", 5) == 0)) {
            char end[16];
            snprintf(end, sizeof(end), "</%.*s>", (int)nlen, n0);
            const char *e = strstr(p, end);
            if (e == NULL)
                return "raw text element not closed";
            p = e + strlen(end);
            continue;
        }
        if (depth == MAXD)
            return "too deep";
        memcpy(stack[depth], n0, nlen);
        stack[depth][nlen] = '\0';
        depth++;
    }
    return depth == 0 ? NULL : "unclosed element";
}

static void test_checker(void **state)
{
    (void)state;
    static const char *const good[] = {
        "<!DOCTYPE html><p a=\"1&amp;2\">x &#183; y<br/></p>",
        "<!DOCTYPE html><script>if(a<b&&c>d)x();</script><i></i>",
    };
    static const char *const bad[] = {
        "<p>",
        "<!DOCTYPE html><p>a & b</p>",
        "<!DOCTYPE html><p>a</i>",
        "<!DOCTYPE html><p a=1></p>",
        "<!DOCTYPE html><p a=\"<\"></p>",
        "<!DOCTYPE html><p>1 > 0</p>",
        "<!DOCTYPE html><p><b></p></b>",
        "<!DOCTYPE html><p>",
        "<!DOCTYPE html><script>x",
    };
    const char *where;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_null(check_markup(good[i], &where));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_non_null(check_markup(bad[i], &where));
}

static void assert_markup(const char *h)
{
    const char *where = h;
    const char *why = check_markup(h, &where);
    if (why != NULL)
        fail_msg("%s at: %.80s", why, where);
}

static int count(const char *h, const char *needle)
{
    int n = 0;
    for (const char *p = h; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* The d attribute of the path whose class is cls, copied into buf. */
static void path_d(const char *h, const char *cls, char *buf, size_t cap)
{
    char key[64];
    snprintf(key, sizeof(key), "class=\"%s\"", cls);
    const char *p = strstr(h, key);
    assert_non_null(p);
    p = strstr(p, " d=\"");
    assert_non_null(p);
    p += 4;
    const char *e = strchr(p, '"');
    assert_non_null(e);
    size_t n = (size_t)(e - p);
    assert_true(n < cap);
    memcpy(buf, p, n);
    buf[n] = '\0';
}

static void assert_self_contained(const char *h)
{
    static const char *const banned[] = {"src=",  "href=", "url(", "@import",
                                         "xlink", "<link", "<img", "<iframe"};
    for (size_t i = 0; i < sizeof(banned) / sizeof(banned[0]); i++)
        if (strstr(h, banned[i]) != NULL)
            fail_msg("external reference '%s' in the page", banned[i]);
    /* no NaN or infinite coordinate from an empty range */
    assert_null(strstr(h, "nan"));
    assert_null(strstr(h, "inf"));
}

static const char *const chart_ids[LG_HTML_CHARTS] = {"latency", "throughput", "share", "audits",
                                                      "score"};

static void assert_charts(const char *h)
{
    assert_int_equal(count(h, "<svg"), LG_HTML_CHARTS);
    assert_int_equal(count(h, "<svg class=\"chart\""), LG_HTML_CHARTS);
    assert_int_equal(count(h, "</svg>"), LG_HTML_CHARTS);
    for (int i = 0; i < LG_HTML_CHARTS; i++) {
        char id[40];
        snprintf(id, sizeof(id), "id=\"%s\"", chart_ids[i]);
        assert_int_equal(count(h, id), 1);
    }
}

static void test_sb_html(void **state)
{
    (void)state;
    struct lg_sb b;
    lg_sb_init(&b);
    lg_sb_html(&b, "a<b>&\"c'd");
    lg_sb_puts(&b, "|");
    lg_sb_html(&b, "");
    lg_sb_printf(&b, "%d", 42);
    lg_sb_html(&b, "plain");
    char *s = lg_sb_take(&b);
    assert_non_null(s);
    assert_string_equal(s, "a&lt;b&gt;&amp;&quot;c&#39;d|42plain");
    free(s);
    /* empty buffer: an empty string, not NULL */
    lg_sb_init(&b);
    s = lg_sb_take(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
    /* growth past the first allocation */
    lg_sb_init(&b);
    for (int i = 0; i < 5000; i++)
        lg_sb_puts(&b, "0123456789");
    assert_int_equal(b.len, 50000);
    s = lg_sb_take(&b);
    assert_non_null(s);
    assert_int_equal(strlen(s), 50000);
    free(s);
}

static struct lg_results *synthetic(const struct lg_opts *o)
{
    struct lg_results *r = lg_results_new(o);
    assert_non_null(r);
    r->start_wall_ms = INT64_C(1752582896000);
    r->ran_ms = 10000;
    r->stages_started = o->sched.nstages;
    /* ten seconds: 100..190 ok/s, p99 rising 5 -> 14 ms, one second without 2xx */
    uint64_t ok = 0, failed = 0;
    for (uint32_t t = 1; t <= 10; t++) {
        uint32_t n = t == 6 ? 0 : 90 + 10 * t;
        for (uint32_t i = 0; i < n; i++)
            lg_series_record(&r->series, 1000 + (uint64_t)i * t * 10);
        ok += n;
        failed += t == 7 ? 25 : 0;
        assert_non_null(lg_series_roll(&r->series, t * 1000, ok, failed, 10 * t, false));
    }
    lg_series_record(&r->series, 2000);
    assert_non_null(lg_series_roll(&r->series, 10040, ok + 1, failed, 0, true));
    r->payments.ok = ok + 1;
    r->payments.failed = failed;
    r->payments.sent = ok + 1 + failed;
    for (uint64_t v = 1; v <= 100; v++) {
        lg_hist_record(&r->pay_hist, v * 50);
        lg_hist_record(&r->all_hist, v * 50);
    }
    r->naudits = 3;
    r->audits[0] =
        (struct lg_audit){.at_ms = 4000, .ok = true, .ours = {300, 20}, .procs = {300, 20}};
    r->audits[1] = (struct lg_audit){
        .at_ms = 8000, .ok = true, .ours = {500, 90}, .procs = {497, 90}, .inconsistencies = 3};
    r->audits[2] = (struct lg_audit){.at_ms = 10000, .ok = false};
    snprintf(r->audits[2].error, sizeof(r->audits[2].error),
             "target summary: <script>alert('x')</script> & more");
    r->inconsistencies = 3;
    r->audit_errors = 1;
    r->have_final = true;
    r->final[0] = (struct lg_proc_summary){.count = 1000,
                                           .amount = 1000 * 1990 * LG_DEC_CENT,
                                           .fee_rate = 5 * LG_DEC_CENT,
                                           .has_fee_rate = true};
    r->final[1] = (struct lg_proc_summary){.count = 200,
                                           .amount = 200 * 1990 * LG_DEC_CENT,
                                           .fee_rate = 15 * LG_DEC_CENT,
                                           .has_fee_rate = true};
    struct lg_score_in in = {.proc = {r->final[0], r->final[1]},
                             .p99_ns = lg_hist_percentile_ns(&r->all_hist, 99000),
                             .inconsistencies = r->inconsistencies,
                             .ok_posts = (int64_t)r->payments.ok};
    lg_score_compute(&in, &r->score);
    return r;
}

static void test_schedule_page(void **state)
{
    (void)state;
    struct lg_opts o;
    char err[256];
    char *argv[] = {(char *)"loadgen",
                    (char *)"--target",
                    (char *)"http://h/<b>&\"x'",
                    (char *)"--duration",
                    (char *)"10",
                    (char *)"--users",
                    (char *)"100",
                    (char *)"--stages",
                    (char *)"12:0/n,0/n;30:1200/y,20/n;48:50/n,0/n", /* of 60 s: 2, 5, 8 s */
                    (char *)"--audit-interval-s",
                    (char *)"4",
                    NULL};
    assert_int_equal(lg_opts_parse(11, argv, &o, err, sizeof(err)), 0);
    struct lg_results *r = synthetic(&o);
    char *h = lg_html_render(&o, r, 0);
    assert_non_null(h);
    const char *sample = getenv("LG_HTML_SAMPLE"); /* to look at the page: a file to write */
    if (sample != NULL) {
        FILE *f = fopen(sample, "w");
        assert_non_null(f);
        fputs(h, f);
        fclose(f);
    }
    assert_markup(h);
    assert_charts(h);
    assert_self_contained(h);
    assert_non_null(strstr(h, "</html>\n"));

    /* outside strings escaped, never raw */
    assert_null(strstr(h, "<b>&\"x'"));
    assert_non_null(strstr(h, "http://h/&lt;b&gt;&amp;&quot;x&#39;"));
    assert_int_equal(count(h, "<script"), 1); /* ours only */
    assert_non_null(strstr(h, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more"));

    /* title with the run's parameters */
    assert_non_null(strstr(h, "<h1>loadgen: schedule custom, 10.0 s, ramp to 100 VUs</h1>"));

    /* latency: one point per second with 2xx, the path broken at second 6; the
     * wind-down is a dot of its own */
    char d[8192];
    path_d(h, "line p99", d, sizeof(d));
    assert_int_equal(count(d, "M"), 2);
    assert_int_equal(count(d, "M") + count(d, "L"), 9);
    path_d(h, "line p50", d, sizeof(d));
    assert_int_equal(count(d, "M") + count(d, "L"), 9);
    assert_non_null(strstr(h, "10.0-10.0 s (after the load): p50 2.00 ms"));
    /* three stages: three bands, two strips each */
    assert_int_equal(count(h, "class=\"band\""), 3);
    assert_int_equal(count(h, "class=\"lane\""), 6);
    assert_non_null(strstr(h, "1200 ms fail"));
    assert_non_null(strstr(h, "stage 2 at 5.0 s: default delay 1200 ms, failing"));
    /* throughput: ten full seconds (the 40 ms wind-down gives no rate), one error bar */
    path_d(h, "line ok", d, sizeof(d));
    assert_int_equal(count(d, "L") + 1, 10);
    assert_int_equal(count(h, "class=\"err\""), 1);
    assert_non_null(strstr(h, "7.0 s: 25 failed"));
    /* share: two audits with counts; the failed one has none */
    assert_int_equal(count(h, "<g class=\"share\""), 2);
    assert_non_null(strstr(h, "default 300, fallback 20 (93.8% default)"));
    assert_non_null(strstr(h, "default 1000 (83.3%), fallback 200 (16.7%)"));
    /* audits: one good, one bad, one not done */
    assert_int_equal(count(h, "class=\"audit good\""), 1);
    assert_int_equal(count(h, "class=\"audit bad\""), 1);
    assert_int_equal(count(h, "class=\"audit failed\""), 1);
    /* score: five bars; gross 23880.00, fees 995 + 597 = 1592.00 */
    assert_int_equal(count(h, "class=\"score\""), 5);
    assert_non_null(strstr(h, ">23880.00<"));
    assert_non_null(strstr(h, ">-1592.00<"));
    assert_non_null(strstr(h, "- fine 35% (inconsistent audit)"));
    char net[LG_DEC_FMT_MAX];
    __int128 half = LG_DEC_CENT / 2;
    lg_dec_format((r->score.net + half) / LG_DEC_CENT * LG_DEC_CENT, 2, net);
    char needle[LG_DEC_FMT_MAX + 8];
    snprintf(needle, sizeof(needle), ">%s<", net);
    assert_non_null(strstr(h, needle));
    free(h);
    lg_results_free(r);
}

static void test_failed_run_page(void **state)
{
    (void)state;
    struct lg_opts o;
    char err[256];
    char *argv[] = {(char *)"loadgen", (char *)"--duration", (char *)"3", NULL};
    assert_int_equal(lg_opts_parse(3, argv, &o, err, sizeof(err)), 0);
    struct lg_results *r = lg_results_new(&o);
    assert_non_null(r);
    snprintf(r->setup_error, sizeof(r->setup_error), "target http://x unreachable: <refused>");
    char *h = lg_html_render(&o, r, -EHOSTUNREACH);
    assert_non_null(h);
    assert_markup(h);
    assert_charts(h);
    assert_self_contained(h);
    assert_non_null(
        strstr(h, "The run was not done: target http://x unreachable: &lt;refused&gt;"));
    assert_non_null(strstr(h, "no 2xx payment in this run"));
    assert_non_null(strstr(h, "no audits in this run"));
    assert_non_null(strstr(h, "no score: the run did not complete"));
    assert_int_equal(count(h, "class=\"band\""), 0); /* stages not reached: ran 0 s */
    free(h);
    lg_results_free(r);
}

static void test_rate_page(void **state)
{
    (void)state;
    struct lg_opts o;
    char err[256];
    char *argv[] = {(char *)"loadgen",    (char *)"--rate", (char *)"50",
                    (char *)"--duration", (char *)"2",      NULL};
    assert_int_equal(lg_opts_parse(5, argv, &o, err, sizeof(err)), 0);
    struct lg_results *r = lg_results_new(&o);
    assert_non_null(r);
    r->ran_ms = 2000;
    for (uint32_t t = 1; t <= 2; t++) {
        for (int i = 0; i < 50; i++)
            lg_series_record(&r->series, 800);
        assert_non_null(lg_series_roll(&r->series, t * 1000, 50 * t, 0, 1, false));
    }
    r->payments.ok = r->payments.sent = 100;
    char *h = lg_html_render(&o, r, 0);
    assert_non_null(h);
    assert_markup(h);
    assert_charts(h);
    assert_self_contained(h);
    assert_non_null(strstr(h, "loadgen: fixed rate 50 payments/s for 2.0 s"));
    assert_non_null(strstr(h, "payments in flight (right axis)"));
    assert_non_null(strstr(h, "no score: --rate without --score"));
    assert_int_equal(count(h, "class=\"band\""), 0);
    char d[1024];
    path_d(h, "line ok", d, sizeof(d));
    assert_int_equal(count(d, "L"), 1);
    free(h);

    /* --score against a target that forwarded nothing: an all-zero score
     * still draws an axis, no NaN */
    o.score = true;
    r->have_final = true;
    struct lg_score_in in = {.ok_posts = 100};
    lg_score_compute(&in, &r->score);
    h = lg_html_render(&o, r, 0);
    assert_non_null(h);
    assert_markup(h);
    assert_self_contained(h);
    assert_int_equal(count(h, "class=\"score\""), 5);
    assert_non_null(strstr(h, ">0.00<"));
    free(h);
    lg_results_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sb_html),       cmocka_unit_test(test_checker),
        cmocka_unit_test(test_schedule_page), cmocka_unit_test(test_failed_run_page),
        cmocka_unit_test(test_rate_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
