/* trace: traceparent parsing (W3C's example, every malformation refused, later
 * versions' extra fields ignored) and formatting; the samplers' parsing and
 * decisions (fixed ids at the ratio's edge, a measured rate, the parent-based
 * rules); the tracer's ids, times, attributes, children, the ring filling up
 * and dropping (counted), and its notify callback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/trace.h"

#define W3C_EXAMPLE "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static int parse(const char *s, struct trace_ctx *c)
{
    return trace_parse_traceparent(s, strlen(s), c);
}

static void test_traceparent_valid(void **state)
{
    struct trace_ctx c;
    assert_int_equal(parse(W3C_EXAMPLE, &c), 0);
    static const uint8_t tid[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                    0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
    static const uint8_t sid[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
    assert_memory_equal(c.trace_id, tid, 16);
    assert_memory_equal(c.span_id, sid, 8);
    assert_int_equal(c.flags, TRACE_FLAG_SAMPLED);
    char buf[TRACE_TRACEPARENT_LEN + 1];
    assert_int_equal(trace_format_traceparent(&c, buf), TRACE_TRACEPARENT_LEN);
    assert_string_equal(buf, W3C_EXAMPLE);

    /* Not sampled; surrounding white space; a later version with more fields. */
    assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &c), 0);
    assert_int_equal(c.flags, 0);
    assert_int_equal(parse(" \t" W3C_EXAMPLE "  ", &c), 0);
    assert_int_equal(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever", &c),
                     0);
    assert_int_equal(parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09", &c), 0);
    assert_int_equal(c.flags, 9);
}

static void test_traceparent_invalid(void **state)
{
    static const char *const bad[] = {
        "",
        "00",
        /* version ff, uppercase, non-hex */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
        "0X-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
        /* all-zero ids */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        /* lengths and separators */
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        /* version 00 takes nothing after the flags; later versions need a '-' */
        W3C_EXAMPLE "-",
        W3C_EXAMPLE "x",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
    };
    struct trace_ctx c, before;
    memset(&c, 0x5a, sizeof(c));
    before = c;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], &c) != -EINVAL)
            fail_msg("accepted: \"%s\"", bad[i]);
        assert_memory_equal(&c, &before, sizeof(c)); /* untouched */
    }
    /* Every truncation of a valid header is refused, without reading past it. */
    for (size_t n = 0; n < TRACE_TRACEPARENT_LEN; n++)
        assert_int_equal(trace_parse_traceparent(W3C_EXAMPLE, n, &c), -EINVAL);
}

static void test_sampler_parse(void **state)
{
    struct trace_sampler s;
    assert_int_equal(trace_sampler_parse(NULL, NULL, &s), 0);
    assert_string_equal(trace_sampler_name(&s), "parentbased_always_on");
    assert_int_equal(trace_sampler_parse("", "", &s), 0);
    assert_int_equal(s.kind, TRACE_SAMPLER_PARENT_ALWAYS_ON);
    static const char *const names[] = {"always_on",
                                        "always_off",
                                        "traceidratio",
                                        "parentbased_always_on",
                                        "parentbased_always_off",
                                        "parentbased_traceidratio"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        assert_int_equal(trace_sampler_parse(names[i], NULL, &s), 0);
        assert_string_equal(trace_sampler_name(&s), names[i]);
    }
    assert_int_equal(trace_sampler_parse("traceidratio", "0.01", &s), 0);
    assert_true(s.ratio == 0.01 && !s.all);
    assert_int_equal(trace_sampler_parse("traceidratio", NULL, &s), 0); /* default 1.0 */
    assert_true(s.all);
    assert_int_equal(trace_sampler_parse("parentbased_traceidratio", ".5", &s), 0);
    assert_true(s.ratio == 0.5 && s.bound == (1ULL << 63));
    assert_int_equal(trace_sampler_parse("traceidratio", "1", &s), 0);
    assert_true(s.all);
    assert_int_equal(trace_sampler_parse("traceidratio", "0", &s), 0);
    assert_true(!s.all && s.bound == 0);
    /* An argument is not read by the other kinds. */
    assert_int_equal(trace_sampler_parse("always_on", "junk", &s), 0);

    static const char *const bad_names[] = {"ALWAYS_ON", "always on", "jaeger_remote", "ratio"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
        assert_int_equal(trace_sampler_parse(bad_names[i], NULL, &s), -EINVAL);
    static const char *const bad_args[] = {"1.5", "-0.1", "abc", "1e-2",
                                           "nan", "inf",  ".",   "0.1.2"};
    for (size_t i = 0; i < sizeof(bad_args) / sizeof(bad_args[0]); i++)
        if (trace_sampler_parse("traceidratio", bad_args[i], &s) != -EINVAL)
            fail_msg("accepted ratio \"%s\"", bad_args[i]);
}

/* A trace id whose last 8 bytes are v, big-endian. */
static void id_with_low(uint8_t id[16], uint64_t v)
{
    memset(id, 0xab, 8);
    for (int i = 15; i >= 8; i--, v >>= 8)
        id[i] = (uint8_t)v;
}

static void test_sampler_decide(void **state)
{
    struct trace_sampler s;
    uint8_t id[16];
    struct trace_ctx yes = {.flags = TRACE_FLAG_SAMPLED}, no = {.flags = 0};

    assert_int_equal(trace_sampler_parse("traceidratio", "0.5", &s), 0);
    id_with_low(id, (1ULL << 63) - 1);
    assert_true(trace_sampler_decide(&s, NULL, id));
    id_with_low(id, 1ULL << 63);
    assert_false(trace_sampler_decide(&s, NULL, id));
    /* A plain ratio sampler ignores the parent's flag. */
    assert_false(trace_sampler_decide(&s, &yes, id));

    assert_int_equal(trace_sampler_parse("traceidratio", "0", &s), 0);
    id_with_low(id, 0);
    assert_false(trace_sampler_decide(&s, NULL, id));
    assert_int_equal(trace_sampler_parse("traceidratio", "1", &s), 0);
    id_with_low(id, UINT64_MAX);
    assert_true(trace_sampler_decide(&s, NULL, id));

    assert_int_equal(trace_sampler_parse("always_on", NULL, &s), 0);
    assert_true(trace_sampler_decide(&s, &no, id));
    assert_int_equal(trace_sampler_parse("always_off", NULL, &s), 0);
    assert_false(trace_sampler_decide(&s, &yes, id));

    /* Parent-based: the parent decides; without one, the root rule. */
    assert_int_equal(trace_sampler_parse("parentbased_always_on", NULL, &s), 0);
    assert_true(trace_sampler_decide(&s, NULL, id));
    assert_true(trace_sampler_decide(&s, &yes, id));
    assert_false(trace_sampler_decide(&s, &no, id));
    assert_int_equal(trace_sampler_parse("parentbased_always_off", NULL, &s), 0);
    assert_false(trace_sampler_decide(&s, NULL, id));
    assert_true(trace_sampler_decide(&s, &yes, id));
    assert_int_equal(trace_sampler_parse("parentbased_traceidratio", "0.5", &s), 0);
    id_with_low(id, 1ULL << 63);
    assert_false(trace_sampler_decide(&s, NULL, id));
    assert_true(trace_sampler_decide(&s, &yes, id));
    id_with_low(id, 5);
    assert_true(trace_sampler_decide(&s, NULL, id));
    assert_false(trace_sampler_decide(&s, &no, id));
}

/* A 1 % ratio over 100,000 new traces samples about 1,000 (10 sigma apart). */
static void test_sampler_rate(void **state)
{
    struct trace_config cfg = {.ring_cap = 16};
    assert_int_equal(trace_sampler_parse("traceidratio", "0.01", &cfg.sampler), 0);
    struct tracer *t = trace_new(&cfg);
    assert_non_null(t);
    struct trace_span sp;
    unsigned sampled = 0;
    for (int i = 0; i < 100000; i++) {
        trace_span_start(t, &sp, "x", TRACE_KIND_SERVER, NULL, 0);
        sampled += sp.sampled;
        assert_int_equal(sp.ctx.flags, sp.sampled ? TRACE_FLAG_SAMPLED : 0);
    }
    assert_in_range(sampled, 700, 1300);
    struct trace_stats st;
    trace_get_stats(t, &st);
    assert_int_equal(st.started, 100000);
    assert_int_equal(st.sampled, sampled);
    trace_free(t);
}

static uint64_t now_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct tracer *new_tracer(const char *sampler, unsigned cap)
{
    struct trace_config cfg = {.ring_cap = cap};
    assert_int_equal(trace_sampler_parse(sampler, NULL, &cfg.sampler), 0);
    struct tracer *t = trace_new(&cfg);
    assert_non_null(t);
    return t;
}

static void test_span_recorded(void **state)
{
    struct tracer *t = new_tracer("parentbased_always_on", 8);
    struct trace_ctx remote;
    assert_int_equal(parse(W3C_EXAMPLE, &remote), 0);
    struct trace_span sp;
    uint64_t mono = now_ns(CLOCK_MONOTONIC), wall = now_ns(CLOCK_REALTIME);
    trace_span_start(t, &sp, "POST /payments", TRACE_KIND_SERVER, &remote, mono);
    assert_true(sp.sampled);
    assert_memory_equal(sp.ctx.trace_id, remote.trace_id, 16);
    assert_memory_equal(sp.parent_span_id, remote.span_id, 8);
    assert_true(sp.has_parent);
    assert_memory_not_equal(sp.ctx.span_id, remote.span_id, 8);
    trace_span_str(&sp, "paynode.result", "accepted", 8);
    trace_span_int(&sp, "http.response.status_code", 202);
    trace_span_status(&sp, TRACE_STATUS_OK);
    trace_span_end(t, &sp, mono + 1500000);
    assert_int_equal(trace_pending(t), 1);

    const struct trace_span *r = trace_peek(t, 0);
    assert_string_equal(r->name, "POST /payments");
    assert_int_equal(r->kind, TRACE_KIND_SERVER);
    assert_int_equal(r->status, TRACE_STATUS_OK);
    assert_int_equal(r->end_ns - r->start_ns, 1500000);
    /* Wall time from the monotonic one: within 50 ms of the clock read above. */
    assert_true(r->start_ns + 50000000 > wall && r->start_ns < wall + 50000000);
    assert_int_equal(r->nattrs, 2);
    assert_string_equal(r->attrs[0].key, "paynode.result");
    assert_false(r->attrs[0].is_int);
    assert_string_equal(r->attrs[0].s, "accepted");
    assert_true(r->attrs[1].is_int && r->attrs[1].i == 202);

    /* A child of the recorded span: same trace and decision, new id. */
    struct trace_span child;
    trace_span_child(t, &child, "processor attempt", TRACE_KIND_CLIENT, &r->ctx, 0);
    assert_true(child.sampled);
    assert_memory_equal(child.ctx.trace_id, remote.trace_id, 16);
    assert_memory_equal(child.parent_span_id, r->ctx.span_id, 8);
    trace_span_end(t, &child, 0);
    assert_int_equal(trace_pending(t), 2);
    /* A child whose id was chosen (and propagated) before it was timed. */
    uint8_t id[TRACE_SPAN_ID_LEN], zero[TRACE_SPAN_ID_LEN] = {0};
    trace_new_span_id(t, id);
    assert_memory_not_equal(id, zero, sizeof(id));
    trace_span_child_id(t, &child, "processor POST", TRACE_KIND_CLIENT, &r->ctx, id, mono);
    assert_true(child.sampled);
    assert_memory_equal(child.ctx.span_id, id, sizeof(id));
    assert_memory_equal(child.ctx.trace_id, remote.trace_id, 16);
    assert_memory_equal(child.parent_span_id, r->ctx.span_id, 8);
    trace_span_end(t, &child, mono + 2000);
    assert_int_equal(trace_pending(t), 3);
    assert_int_equal(trace_peek(t, 2)->end_ns - trace_peek(t, 2)->start_ns, 2000);
    trace_consume(t, 3);
    assert_int_equal(trace_pending(t), 0);

    /* A new root: fresh non-zero ids, no parent. */
    trace_span_start(t, &sp, "GET /payments-summary", TRACE_KIND_SERVER, NULL, 0);
    assert_false(sp.has_parent);
    assert_memory_not_equal(sp.ctx.trace_id, remote.trace_id, 16);
    trace_span_end(t, &sp, 0);
    assert_true(trace_peek(t, 0)->end_ns >= trace_peek(t, 0)->start_ns);
    trace_free(t);
}

static void test_span_attrs_bounded(void **state)
{
    struct tracer *t = new_tracer("always_on", 4);
    struct trace_span sp;
    trace_span_start(t, &sp, "x", TRACE_KIND_INTERNAL, NULL, 0);
    char long_value[200];
    memset(long_value, 'v', sizeof(long_value));
    trace_span_str(&sp, "long", long_value, sizeof(long_value));
    for (int i = 0; i < TRACE_ATTRS_MAX + 3; i++)
        trace_span_int(&sp, "n", i);
    assert_int_equal(sp.nattrs, TRACE_ATTRS_MAX);
    assert_int_equal(strlen(sp.attrs[0].s), TRACE_STR_MAX - 1);
    assert_int_equal(sp.attrs[TRACE_ATTRS_MAX - 1].i, TRACE_ATTRS_MAX - 2);
    trace_span_end(t, &sp, 0);
    assert_int_equal(trace_peek(t, 0)->nattrs, TRACE_ATTRS_MAX);
    trace_free(t);
}

static void test_unsampled_and_off(void **state)
{
    struct tracer *t = new_tracer("always_off", 4);
    struct trace_span sp;
    trace_span_start(t, &sp, "x", TRACE_KIND_SERVER, NULL, 0);
    assert_false(sp.sampled);
    assert_int_equal(sp.ctx.flags, 0);
    trace_span_str(&sp, "k", "v", 1);
    trace_span_end(t, &sp, 0);
    assert_int_equal(trace_pending(t), 0);
    /* A child of an unsampled span is not sampled either. */
    struct trace_span child;
    trace_span_child(t, &child, "y", TRACE_KIND_CLIENT, &sp.ctx, 0);
    assert_false(child.sampled);
    struct trace_stats st;
    trace_get_stats(t, &st);
    assert_int_equal(st.started, 2);
    assert_int_equal(st.sampled, 0);
    assert_int_equal(st.recorded, 0);
    trace_free(t);

    /* Tracing off: NULL tracer, every call a no-op. */
    trace_span_start(NULL, &sp, "x", TRACE_KIND_SERVER, NULL, 0);
    assert_false(sp.sampled);
    trace_span_int(&sp, "k", 1);
    trace_span_end(NULL, &sp, 0);
    trace_free(NULL);
}

static unsigned notified;
static void on_notify(void *arg)
{
    assert_ptr_equal(arg, &notified);
    notified++;
}

static void test_ring_overflow(void **state)
{
    struct tracer *t = new_tracer("always_on", 3); /* rounded up to 4 */
    trace_set_notify(t, 3, on_notify, &notified);
    struct trace_span sp;
    for (int i = 0; i < 6; i++) {
        trace_span_start(t, &sp, "x", TRACE_KIND_SERVER, NULL, 0);
        trace_span_int(&sp, "i", i);
        trace_span_end(t, &sp, 0);
    }
    struct trace_stats st;
    trace_get_stats(t, &st);
    assert_int_equal(st.ring_cap, 4);
    assert_int_equal(st.pending, 4);
    assert_int_equal(st.recorded, 4);
    assert_int_equal(st.dropped, 2);
    assert_int_equal(notified, 1); /* once, on reaching 3 */
    /* The oldest are kept, the newest dropped. */
    assert_int_equal(trace_peek(t, 0)->attrs[0].i, 0);
    assert_int_equal(trace_peek(t, 3)->attrs[0].i, 3);
    trace_consume(t, 2);
    trace_span_start(t, &sp, "x", TRACE_KIND_SERVER, NULL, 0);
    trace_span_int(&sp, "i", 6);
    trace_span_end(t, &sp, 0);
    assert_int_equal(trace_pending(t), 3);
    assert_int_equal(notified, 2);
    assert_int_equal(trace_peek(t, 2)->attrs[0].i, 6);
    trace_get_stats(t, &st);
    assert_int_equal(st.dropped, 2);
    trace_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traceparent_valid),  cmocka_unit_test(test_traceparent_invalid),
        cmocka_unit_test(test_sampler_parse),      cmocka_unit_test(test_sampler_decide),
        cmocka_unit_test(test_sampler_rate),       cmocka_unit_test(test_span_recorded),
        cmocka_unit_test(test_span_attrs_bounded), cmocka_unit_test(test_unsampled_and_off),
        cmocka_unit_test(test_ring_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
