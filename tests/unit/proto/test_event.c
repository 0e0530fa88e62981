/* proto/event: golden bytes per type, random round trips, field validation,
 * every truncation (from exactly-sized heap copies, so the sanitizer build sees
 * any over-read) and random garbage. Seed: TEST_SEED env, printed on failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/event.h"
#include "proto/wire.h"

static uint64_t seed = 0x5eed0e7e57ULL;
static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void rng_reset(void)
{
    const char *s = getenv("TEST_SEED");
    if (s != NULL && *s != '\0')
        seed = strtoull(s, NULL, 0);
    rng_state = seed;
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            print_error("seed %" PRIu64 " (TEST_SEED=%" PRIu64 " to replay): ", seed, seed);       \
            print_error(__VA_ARGS__);                                                              \
            print_error("\n");                                                                     \
            fail_msg("%s", #cond);                                                                 \
        }                                                                                          \
    } while (0)

/* A random valid event of type t; fields the type does not carry are zero. */
static struct event random_event(enum event_type t)
{
    struct event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = t;
    ev.origin = (uint8_t)(1 + rnd() % 255);
    ev.seq = rnd() % 4 == 0 ? 1 + rnd() % 1000 : (rnd() | 1);
    if (t == EVENT_PURGED) {
        ev.epoch = rnd() % 3 == 0 ? 0 : rnd();
        return ev;
    }
    for (int i = 0; i < 16; i++)
        ev.id[i] = (uint8_t)rnd();
    if (t != EVENT_ACCEPTED)
        ev.processor = (uint8_t)(rnd() % 2);
    if (t == EVENT_FAILED)
        return ev;
    ev.at_ms = rnd() % 4 == 0 ? (int64_t)rnd() : 1752582896000 + (int64_t)(rnd() % 100000000);
    if (t == EVENT_ACCEPTED || t == EVENT_RECORDED) {
        uint64_t r = rnd() % 4;
        ev.amount_cents = r == 0 ? INT64_MAX : r == 1 ? 1 : 1 + (int64_t)(rnd() % 100000000);
    }
    return ev;
}

static void assert_event_equal(const struct event *a, const struct event *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->origin, b->origin);
    assert_int_equal(a->processor, b->processor);
    assert_true(a->seq == b->seq);
    assert_memory_equal(a->id, b->id, 16);
    assert_true(a->amount_cents == b->amount_cents);
    assert_true(a->at_ms == b->at_ms);
    assert_int_equal(a->trace_flags, b->trace_flags);
    if (a->type == EVENT_PURGED)
        assert_true(a->epoch == b->epoch);
    else
        assert_memory_equal(&a->trace, &b->trace, sizeof(a->trace));
}

/* A random valid ACCEPTED carrying a trace context. */
static struct event random_traced(void)
{
    struct event ev = random_event(EVENT_ACCEPTED);
    for (size_t i = 0; i < sizeof(ev.trace.trace_id); i++)
        ev.trace.trace_id[i] = (uint8_t)rnd();
    for (size_t i = 0; i < sizeof(ev.trace.span_id); i++)
        ev.trace.span_id[i] = (uint8_t)rnd();
    ev.trace.trace_id[rnd() % 16] |= 1; /* never all zero */
    ev.trace.span_id[rnd() % 8] |= 1;
    ev.trace_flags = (uint8_t)(EVENT_TRACE_SAMPLED | (rnd() & 0xfe));
    return ev;
}

static size_t expected_len(enum event_type t)
{
    switch (t) {
    case EVENT_ACCEPTED:
    case EVENT_RECORDED:
        return 47;
    case EVENT_SENDING:
        return 39;
    case EVENT_FAILED:
        return 31;
    case EVENT_PURGED:
        return 23;
    default:
        return 0;
    }
}

/* Decodes from a heap copy of exactly len bytes. */
static int decode_exact(struct event *ev, const uint8_t *bytes, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, bytes, len);
    int rv = event_decode(ev, copy, len);
    free(copy);
    return rv;
}

static void check_golden(const struct event *ev, const uint8_t *want, size_t want_len)
{
    uint8_t buf[EVENT_WIRE_MAX];
    int n = event_encode(ev, buf, sizeof(buf));
    assert_int_equal(n, (int)want_len);
    assert_memory_equal(buf, want, want_len);
    struct event back;
    assert_int_equal(decode_exact(&back, want, want_len), (int)want_len);
    assert_event_equal(&back, ev);
}

static const uint8_t golden_id[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                      0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};

static void test_golden_accepted(void **state)
{
    struct event ev = {.type = EVENT_ACCEPTED,
                       .origin = 1,
                       .seq = 0x0102030405060708ULL,
                       .amount_cents = 1990,
                       .at_ms = 1752582896000};
    memcpy(ev.id, golden_id, 16);
    static const uint8_t want[] = {
        0xB7, 0x01, 0x01, 0x00, 0x2F,                   /* magic, version, type 1, len 47 */
        0x01, 0x00,                                     /* origin 1, processor (none) */
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* seq */
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, /* id */
        0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, /* id */
        0x00, 0x00, 0x01, 0x98, 0x0e, 0x14, 0xb9, 0x80, /* at_ms 1752582896000 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0xc6, /* amount 1990 */
    };
    check_golden(&ev, want, sizeof(want));
}

static void test_golden_sending(void **state)
{
    struct event ev = {.type = EVENT_SENDING, .origin = 2, .processor = 1, .seq = 7, .at_ms = -1};
    memcpy(ev.id, golden_id, 16);
    static const uint8_t want[] = {
        0xB7, 0x01, 0x02, 0x00, 0x27,                   /* magic, version, type 2, len 39 */
        0x02, 0x01,                                     /* origin 2, fallback */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, /* seq 7 */
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, /* id */
        0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, /* id */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* at_ms -1 */
    };
    check_golden(&ev, want, sizeof(want));
}

static void test_golden_recorded(void **state)
{
    struct event ev = {.type = EVENT_RECORDED,
                       .origin = 255,
                       .processor = 0,
                       .seq = UINT64_MAX,
                       .amount_cents = INT64_MAX,
                       .at_ms = 1752582896123};
    memcpy(ev.id, golden_id, 16);
    static const uint8_t want[] = {
        0xB7, 0x01, 0x03, 0x00, 0x2F,                   /* magic, version, type 3, len 47 */
        0xff, 0x00,                                     /* origin 255, default */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* seq */
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, /* id */
        0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, /* id */
        0x00, 0x00, 0x01, 0x98, 0x0e, 0x14, 0xb9, 0xfb, /* at_ms 1752582896123 */
        0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* amount INT64_MAX */
    };
    check_golden(&ev, want, sizeof(want));
}

static void test_golden_failed(void **state)
{
    struct event ev = {.type = EVENT_FAILED, .origin = 1, .processor = 1, .seq = 0x100};
    memcpy(ev.id, golden_id, 16);
    static const uint8_t want[] = {
        0xB7, 0x01, 0x04, 0x00, 0x1F,                   /* magic, version, type 4, len 31 */
        0x01, 0x01,                                     /* origin 1, fallback */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, /* seq 256 */
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, /* id */
        0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, /* id */
    };
    check_golden(&ev, want, sizeof(want));
}

static void test_golden_purged(void **state)
{
    struct event ev = {.type = EVENT_PURGED, .origin = 2, .seq = 3, .epoch = 0xA1B2C3D4E5F60718ULL};
    static const uint8_t want[] = {
        0xB7, 0x01, 0x05, 0x00, 0x17,                   /* magic, version, type 5, len 23 */
        0x02, 0x00,                                     /* origin 2, processor (none) */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, /* seq 3 */
        0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18, /* epoch */
    };
    check_golden(&ev, want, sizeof(want));
}

static void test_roundtrip_random(void **state)
{
    rng_reset();
    for (int i = 0; i < 100000; i++) {
        enum event_type t = (enum event_type)(1 + rnd() % EVENT_TYPE_MAX);
        struct event ev = random_event(t);
        uint8_t buf[EVENT_WIRE_MAX];
        int n = event_encode(&ev, buf, sizeof(buf));
        CHECK(n == (int)expected_len(t), "iteration %d type %d: encode gave %d", i, t, n);
        struct event back;
        memset(&back, 0xAA, sizeof(back));
        int m = decode_exact(&back, buf, (size_t)n);
        CHECK(m == n, "iteration %d type %d: decode gave %d", i, t, m);
        assert_event_equal(&back, &ev);
    }
}

static void test_encode_normalises_unused_fields(void **state)
{
    /* Fields a type does not carry are neither encoded nor decoded. */
    struct event ev = {.type = EVENT_ACCEPTED,
                       .origin = 1,
                       .processor = 1,
                       .seq = 1,
                       .amount_cents = 5,
                       .at_ms = 9,
                       .epoch = 77};
    uint8_t buf[EVENT_WIRE_MAX];
    int n = event_encode(&ev, buf, sizeof(buf));
    assert_int_equal(n, 47);
    struct event back;
    assert_int_equal(event_decode(&back, buf, (size_t)n), 47);
    assert_int_equal(back.processor, 0);
    assert_true(back.epoch == 0);
    assert_true(back.amount_cents == 5 && back.at_ms == 9);

    struct event f = {.type = EVENT_FAILED, .origin = 1, .processor = 1, .seq = 1};
    f.amount_cents = 100;
    f.at_ms = 100;
    n = event_encode(&f, buf, sizeof(buf));
    assert_int_equal(n, 31);
    assert_int_equal(event_decode(&back, buf, (size_t)n), 31);
    assert_true(back.amount_cents == 0 && back.at_ms == 0);
}

static void test_encode_rejects(void **state)
{
    uint8_t buf[EVENT_WIRE_MAX];
    for (int t = EVENT_ACCEPTED; t <= EVENT_TYPE_MAX; t++) {
        struct event good = random_event((enum event_type)t);
        struct event ev = good;
        ev.origin = 0;
        assert_int_equal(event_encode(&ev, buf, sizeof(buf)), -EINVAL);
        ev = good;
        ev.seq = 0;
        assert_int_equal(event_encode(&ev, buf, sizeof(buf)), -EINVAL);
        if (t == EVENT_SENDING || t == EVENT_RECORDED || t == EVENT_FAILED) {
            ev = good;
            ev.processor = 2;
            assert_int_equal(event_encode(&ev, buf, sizeof(buf)), -EINVAL);
        }
        if (t == EVENT_ACCEPTED || t == EVENT_RECORDED) {
            ev = good;
            ev.amount_cents = 0;
            assert_int_equal(event_encode(&ev, buf, sizeof(buf)), -EINVAL);
            ev.amount_cents = -1;
            assert_int_equal(event_encode(&ev, buf, sizeof(buf)), -EINVAL);
            ev.amount_cents = INT64_MIN;
            assert_int_equal(event_encode(&ev, buf, sizeof(buf)), -EINVAL);
        }
        /* Every capacity short of the length: -ENOSPC, nothing written past cap. */
        size_t len = expected_len((enum event_type)t);
        for (size_t cap = 0; cap < len; cap++) {
            uint8_t *small = malloc(cap ? cap : 1);
            assert_non_null(small);
            assert_int_equal(event_encode(&good, small, cap), -ENOSPC);
            free(small);
        }
        assert_int_equal(event_encode(&good, buf, len), (int)len);
    }
    struct event ev = random_event(EVENT_ACCEPTED);
    ev.type = EVENT_NONE;
    assert_int_equal(event_encode(&ev, buf, sizeof(buf)), -EINVAL);
    ev.type = (enum event_type)(EVENT_TYPE_MAX + 1);
    assert_int_equal(event_encode(&ev, buf, sizeof(buf)), -EINVAL);
}

static void test_truncations(void **state)
{
    rng_reset();
    for (int round = 0; round < 200; round++) {
        for (int t = EVENT_ACCEPTED; t <= EVENT_TYPE_MAX; t++) {
            struct event ev = random_event((enum event_type)t);
            uint8_t buf[EVENT_WIRE_MAX];
            int n = event_encode(&ev, buf, sizeof(buf));
            assert_true(n > 0);
            for (int k = 0; k < n; k++) {
                struct event out;
                int rv = decode_exact(&out, buf, (size_t)k);
                CHECK(rv == -EMSGSIZE, "type %d truncated to %d of %d: got %d", t, k, n, rv);
            }
        }
    }
}

static void test_trailing_bytes_and_streams(void **state)
{
    rng_reset();
    /* Several frames back to back decode one by one; each returns its length. */
    uint8_t stream[EVENT_WIRE_MAX * 20];
    struct event sent[20];
    size_t off = 0;
    for (int i = 0; i < 20; i++) {
        sent[i] = random_event((enum event_type)(1 + i % EVENT_TYPE_MAX));
        int n = event_encode(&sent[i], stream + off, sizeof(stream) - off);
        assert_true(n > 0);
        off += (size_t)n;
    }
    uint8_t *copy = malloc(off);
    assert_non_null(copy);
    memcpy(copy, stream, off);
    size_t pos = 0;
    for (int i = 0; i < 20; i++) {
        struct event got;
        int n = event_decode(&got, copy + pos, off - pos);
        assert_int_equal(n, (int)expected_len(sent[i].type));
        assert_event_equal(&got, &sent[i]);
        pos += (size_t)n;
    }
    assert_int_equal(pos, off);
    free(copy);
}

/* Encodes a fresh event of type t, lets edit() change the bytes, decodes. */
static int decode_edited(enum event_type t, size_t at, uint8_t value)
{
    struct event ev = random_event(t);
    uint8_t buf[EVENT_WIRE_MAX];
    int n = event_encode(&ev, buf, sizeof(buf));
    assert_true(n > 0 && at < (size_t)n);
    buf[at] = value;
    struct event out;
    memset(&out, 0x5A, sizeof(out));
    struct event before = out;
    int rv = decode_exact(&out, buf, (size_t)n);
    if (rv < 0)
        assert_memory_equal(&out, &before, sizeof(out)); /* untouched on error */
    return rv;
}

static void set_u64(uint8_t *p, uint64_t v)
{
    wire_put_u64(p, v);
}

/* GCC 12 at -O3 loses the bound on n (15..EVENT_WIRE_MAX, checked below) when
 * it inlines the writes and reports "writing 8 bytes into a region of size 0"
 * for buf + n - 8: a false positive, silenced for this function only. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
static void test_decode_rejects_fields(void **state)
{
    rng_reset();
    for (int t = EVENT_ACCEPTED; t <= EVENT_TYPE_MAX; t++) {
        enum event_type ty = (enum event_type)t;
        int len = (int)expected_len(ty);
        assert_int_equal(decode_edited(ty, 0, 0xB6), -EINVAL); /* magic */
        assert_int_equal(decode_edited(ty, 1, 0), -EINVAL);    /* version */
        assert_int_equal(decode_edited(ty, 1, 2), -EINVAL);    /* version */
        assert_int_equal(decode_edited(ty, 2, 0), -EINVAL);    /* type 0 */
        assert_int_equal(decode_edited(ty, 2, 6), -EINVAL);    /* type 6 */
        assert_int_equal(decode_edited(ty, 2, 0x10), -EINVAL); /* heartbeat */
        assert_int_equal(decode_edited(ty, 3, 1), -EINVAL);    /* length hi */
        assert_int_equal(decode_edited(ty, 4, (uint8_t)(len - 1)), -EINVAL);
        assert_int_equal(decode_edited(ty, 4, (uint8_t)(len + 1)), -EINVAL);
        assert_int_equal(decode_edited(ty, 4, 0), -EINVAL);
        assert_int_equal(decode_edited(ty, 5, 0), -EINVAL); /* origin 0 */
        assert_int_equal(decode_edited(ty, 6, 2), -EINVAL); /* processor 2 */
        assert_int_equal(decode_edited(ty, 6, 0xFF), -EINVAL);
        if (ty == EVENT_ACCEPTED || ty == EVENT_PURGED)
            assert_int_equal(decode_edited(ty, 6, 1), -EINVAL); /* no processor field */
        else
            assert_true(decode_edited(ty, 6, 1) > 0);

        /* seq 0 */
        struct event ev = random_event(ty);
        uint8_t buf[EVENT_WIRE_MAX];
        struct event out;
        int n = event_encode(&ev, buf, sizeof(buf));
        /* Also tells the optimizer n is a valid length (else -O3 warns about
         * writes at negative offsets below). */
        if (n < 15 || (size_t)n > sizeof(buf))
            fail_msg("encode gave %d", n);
        set_u64(buf + 7, 0);
        assert_int_equal(decode_exact(&out, buf, (size_t)n), -EINVAL);
        set_u64(buf + 7, 1);
        assert_int_equal(decode_exact(&out, buf, (size_t)n), n);

        if (ty == EVENT_ACCEPTED || ty == EVENT_RECORDED) {
            /* amount is the last 8 bytes */
            uint8_t *amount = buf + (size_t)n - 8;
            set_u64(amount, 0);
            assert_int_equal(decode_exact(&out, buf, (size_t)n), -EINVAL);
            set_u64(amount, UINT64_MAX); /* -1 */
            assert_int_equal(decode_exact(&out, buf, (size_t)n), -EINVAL);
            set_u64(amount, (uint64_t)1 << 63); /* INT64_MIN */
            assert_int_equal(decode_exact(&out, buf, (size_t)n), -EINVAL);
            set_u64(amount, 1);
            assert_int_equal(decode_exact(&out, buf, (size_t)n), n);
            assert_true(out.amount_cents == 1);
        }
    }
    struct event out;
    assert_int_equal(event_decode(&out, NULL, 0), -EMSGSIZE);
}
#pragma GCC diagnostic pop

/* A decoded event must be valid, and decoding canonical: re-encoding gives the
 * same bytes. */
static void check_decoded(const struct event *ev, const uint8_t *bytes, int n, int iter)
{
    CHECK(ev->type >= EVENT_ACCEPTED && ev->type <= EVENT_TYPE_MAX, "iter %d: type", iter);
    CHECK(ev->origin != 0 && ev->seq != 0, "iter %d: origin/seq", iter);
    CHECK(ev->processor <= 1, "iter %d: processor", iter);
    if (ev->type == EVENT_ACCEPTED || ev->type == EVENT_RECORDED)
        CHECK(ev->amount_cents > 0, "iter %d: amount", iter);
    CHECK(n == (int)expected_len(ev->type) + (ev->trace_flags ? 25 : 0), "iter %d: length %d", iter,
          n);
    CHECK(ev->trace_flags == 0 || (ev->type == EVENT_ACCEPTED && (ev->trace_flags & 1)),
          "iter %d: trace flags", iter);
    uint8_t again[EVENT_WIRE_MAX];
    int m = event_encode(ev, again, sizeof(again));
    CHECK(m == n && memcmp(again, bytes, (size_t)n) == 0, "iter %d: not canonical", iter);
}

static void test_garbage(void **state)
{
    rng_reset();
    int decoded = 0;
    for (int i = 0; i < 100000; i++) {
        size_t len = (size_t)(rnd() % 80);
        uint8_t *buf = malloc(len ? len : 1);
        assert_non_null(buf);
        for (size_t k = 0; k < len; k++)
            buf[k] = (uint8_t)rnd();
        uint64_t mode = rnd() % 4;
        if (mode >= 1 && len >= 2) { /* plausible header so the deeper checks run */
            buf[0] = WIRE_MAGIC;
            buf[1] = WIRE_VERSION;
        }
        if (mode >= 2 && len >= 5) {
            uint8_t t = (uint8_t)(1 + rnd() % EVENT_TYPE_MAX);
            buf[2] = t;
            buf[3] = 0;
            buf[4] = (uint8_t)expected_len((enum event_type)t);
        }
        if (mode == 3 && len >= 7) {
            buf[6] = (uint8_t)(rnd() % 2);
            if (buf[2] == EVENT_ACCEPTED || buf[2] == EVENT_PURGED)
                buf[6] = 0;
        }
        struct event ev;
        int rv = event_decode(&ev, buf, len);
        CHECK(rv == -EINVAL || rv == -EMSGSIZE || (rv > 0 && (size_t)rv <= len),
              "iter %d len %zu: rv %d", i, len, rv);
        if (rv > 0) {
            check_decoded(&ev, buf, rv, i);
            decoded++;
        }
        free(buf);
    }
    /* mode 3 frames are mostly valid: make sure the deep path really ran */
    assert_true(decoded > 1000);
}

static void test_bit_flips(void **state)
{
    /* Valid frames with random bytes changed: valid or rejected, never more. */
    rng_reset();
    for (int i = 0; i < 100000; i++) {
        struct event ev = random_event((enum event_type)(1 + rnd() % EVENT_TYPE_MAX));
        uint8_t frame[EVENT_WIRE_MAX];
        int n = event_encode(&ev, frame, sizeof(frame));
        assert_true(n > 0);
        int flips = 1 + (int)(rnd() % 3);
        for (int f = 0; f < flips; f++)
            frame[rnd() % (uint64_t)n] ^= (uint8_t)(1u << (rnd() % 8));
        size_t len = rnd() % 2 ? (size_t)n : (size_t)(rnd() % (uint64_t)(n + 1));
        uint8_t *buf = malloc(len ? len : 1);
        assert_non_null(buf);
        memcpy(buf, frame, len);
        struct event out;
        int rv = event_decode(&out, buf, len);
        CHECK(rv == -EINVAL || rv == -EMSGSIZE || (rv > 0 && (size_t)rv <= len), "iter %d: rv %d",
              i, rv);
        if (rv > 0)
            check_decoded(&out, buf, rv, i);
        free(buf);
    }
}

static void test_golden_accepted_traced(void **state)
{
    struct event ev = {.type = EVENT_ACCEPTED,
                       .origin = 1,
                       .trace_flags = EVENT_TRACE_SAMPLED,
                       .seq = 0x0102030405060708ULL,
                       .amount_cents = 1990,
                       .at_ms = 1752582896000};
    memcpy(ev.id, golden_id, 16);
    static const uint8_t tid[16] = {0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd,
                                    0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c};
    static const uint8_t sid[8] = {0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31};
    memcpy(ev.trace.trace_id, tid, 16);
    memcpy(ev.trace.span_id, sid, 8);
    static const uint8_t want[] = {
        0xB7, 0x01, 0x01, 0x00, 0x48,                   /* magic, version, type 1, len 72 */
        0x01, 0x01,                                     /* origin 1, flags: trace context */
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* seq */
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, /* id */
        0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, /* id */
        0x00, 0x00, 0x01, 0x98, 0x0e, 0x14, 0xb9, 0x80, /* at_ms 1752582896000 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0xc6, /* amount 1990 */
        0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, /* trace id */
        0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c, /* trace id */
        0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31, /* span id */
        0x01,                                           /* trace-flags: sampled */
    };
    check_golden(&ev, want, sizeof(want));
    /* Without the context, the frame is the one from before trace contexts. */
    ev.trace_flags = 0;
    uint8_t buf[EVENT_WIRE_MAX];
    assert_int_equal(event_encode(&ev, buf, sizeof(buf)), 47);
    assert_int_equal(buf[6], 0);
    assert_memory_equal(buf + 5 + 2, want + 5 + 2, 40);
}

static void test_traced_roundtrip_and_truncations(void **state)
{
    rng_reset();
    for (int i = 0; i < 20000; i++) {
        struct event ev = random_traced();
        uint8_t buf[EVENT_WIRE_MAX];
        int n = event_encode(&ev, buf, sizeof(buf));
        CHECK(n == 72, "iteration %d: encode gave %d", i, n);
        struct event back;
        memset(&back, 0xAA, sizeof(back));
        CHECK(decode_exact(&back, buf, (size_t)n) == n, "iteration %d: decode", i);
        assert_event_equal(&back, &ev);
        if (i < 200) {
            for (int k = 0; k < n; k++) {
                int rv = decode_exact(&back, buf, (size_t)k);
                CHECK(rv == -EMSGSIZE, "truncated to %d of %d: got %d", k, n, rv);
            }
            for (int cap = 0; cap < n; cap++)
                assert_int_equal(event_encode(&ev, buf, (size_t)cap), -ENOSPC);
        }
    }
}

static void test_traced_rejects(void **state)
{
    rng_reset();
    struct event good = random_traced();
    uint8_t buf[EVENT_WIRE_MAX], frame[EVENT_WIRE_MAX];
    struct event out, ev;
    /* Encode: only ACCEPTED carries one, only a sampled one, valid ids only. */
    for (int t = EVENT_SENDING; t <= EVENT_TYPE_MAX; t++) {
        ev = random_event((enum event_type)t);
        ev.trace_flags = EVENT_TRACE_SAMPLED;
        if (t != EVENT_PURGED)
            ev.trace = good.trace;
        assert_int_equal(event_encode(&ev, buf, sizeof(buf)), -EINVAL);
    }
    ev = good;
    ev.trace_flags = 0x02; /* not sampled */
    assert_int_equal(event_encode(&ev, buf, sizeof(buf)), -EINVAL);
    ev = good;
    memset(ev.trace.trace_id, 0, sizeof(ev.trace.trace_id));
    assert_int_equal(event_encode(&ev, buf, sizeof(buf)), -EINVAL);
    ev = good;
    memset(ev.trace.span_id, 0, sizeof(ev.trace.span_id));
    assert_int_equal(event_encode(&ev, buf, sizeof(buf)), -EINVAL);

    /* Decode: edits of a valid traced frame. */
    int n = event_encode(&good, frame, sizeof(frame));
    assert_int_equal(n, 72);
    struct {
        size_t at;
        uint8_t value;
    } edits[] = {
        {6, 0},    /* flags byte says "no context" but the length has one */
        {6, 2},    /* unknown flag */
        {6, 3},    /* unknown flag beside the trace bit */
        {4, 47},   /* short length with the trace bit set */
        {4, 73},   /* neither length */
        {71, 0},   /* trace-flags 0: a context that is not carried */
        {71, 0xfe} /* not sampled */
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        memcpy(buf, frame, (size_t)n);
        buf[edits[i].at] = edits[i].value;
        memset(&out, 0x5A, sizeof(out));
        struct event before = out;
        int rv = decode_exact(&out, buf, (size_t)n);
        if (rv != -EINVAL)
            fail_msg("edit %zu (byte %zu = %u): got %d", i, edits[i].at, edits[i].value, rv);
        assert_memory_equal(&out, &before, sizeof(out));
    }
    memcpy(buf, frame, (size_t)n);
    memset(buf + 47, 0, 16); /* zero trace id */
    assert_int_equal(decode_exact(&out, buf, (size_t)n), -EINVAL);
    memcpy(buf, frame, (size_t)n);
    memset(buf + 63, 0, 8); /* zero span id */
    assert_int_equal(decode_exact(&out, buf, (size_t)n), -EINVAL);
    /* A 72-byte frame of another type is refused whatever its flags byte. */
    memcpy(buf, frame, (size_t)n);
    buf[2] = EVENT_RECORDED;
    assert_int_equal(decode_exact(&out, buf, (size_t)n), -EINVAL);
}

static void test_wire_helpers(void **state)
{
    uint8_t b[8];
    wire_put_i64(b, INT64_MIN);
    assert_true(wire_get_i64(b) == INT64_MIN);
    wire_put_i64(b, -2);
    assert_true(wire_get_i64(b) == -2);
    assert_int_equal(b[0], 0xFF);
    assert_int_equal(b[7], 0xFE);
    wire_put_u32(b, 0x01020304u);
    assert_int_equal(wire_get_u32(b), 0x01020304u);
    assert_int_equal(b[0], 1);
    wire_put_u16(b, 0xBEEF);
    assert_int_equal(wire_get_u16(b), 0xBEEF);
    assert_int_equal(b[0], 0xBE);
}

int main(void)
{
    rng_reset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_helpers),
        cmocka_unit_test(test_golden_accepted),
        cmocka_unit_test(test_golden_sending),
        cmocka_unit_test(test_golden_recorded),
        cmocka_unit_test(test_golden_failed),
        cmocka_unit_test(test_golden_purged),
        cmocka_unit_test(test_golden_accepted_traced),
        cmocka_unit_test(test_traced_roundtrip_and_truncations),
        cmocka_unit_test(test_traced_rejects),
        cmocka_unit_test(test_roundtrip_random),
        cmocka_unit_test(test_encode_normalises_unused_fields),
        cmocka_unit_test(test_encode_rejects),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_trailing_bytes_and_streams),
        cmocka_unit_test(test_decode_rejects_fields),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_bit_flips),
    };
    return cmocka_run_group_tests_name("event", tests, NULL, NULL);
}
