/* proto/heartbeat: round trip with random values, golden bytes, every
 * truncation and bad header rejected, strict field checks, and random or
 * mutated input never crashes (each input sits in its own exact-size heap
 * block, so the sanitizer build catches any over-read). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include <cmocka.h>

#include "proto/heartbeat.h"
#include "proto/wire.h"

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

static void random_hb(struct heartbeat *hb)
{
    memset(hb, 0, sizeof(*hb));
    hb->node_id = (uint8_t)(1 + rnd() % 255);
    hb->checker_id = (uint8_t)rnd();
    hb->flags = (uint8_t)(rnd() & HEARTBEAT_F_ALL);
    hb->incarnation = rnd();
    hb->counter = rnd();
    for (int i = 0; i < HEARTBEAT_MAX_ORIGINS; i++)
        hb->last_seq[i] = rnd() >> (rnd() % 64);
    for (int i = 0; i < HEARTBEAT_PROCESSORS; i++) {
        hb->totals[i].count = rnd();
        hb->totals[i].amount_cents = (int64_t)(rnd() >> 1);
        hb->health[i].valid = rnd() & 1;
        hb->health[i].failing = rnd() & 1;
        hb->health[i].min_response_ms = (uint32_t)rnd();
        hb->health[i].age_ms = (uint32_t)rnd();
    }
}

static void assert_hb_equal(const struct heartbeat *a, const struct heartbeat *b)
{
    assert_int_equal(a->node_id, b->node_id);
    assert_int_equal(a->checker_id, b->checker_id);
    assert_int_equal(a->flags, b->flags);
    assert_true(a->incarnation == b->incarnation);
    assert_true(a->counter == b->counter);
    for (int i = 0; i < HEARTBEAT_MAX_ORIGINS; i++)
        assert_true(a->last_seq[i] == b->last_seq[i]);
    for (int i = 0; i < HEARTBEAT_PROCESSORS; i++) {
        assert_true(a->totals[i].count == b->totals[i].count);
        assert_true(a->totals[i].amount_cents == b->totals[i].amount_cents);
        assert_int_equal(a->health[i].valid, b->health[i].valid);
        assert_int_equal(a->health[i].failing, b->health[i].failing);
        assert_int_equal(a->health[i].min_response_ms, b->health[i].min_response_ms);
        assert_int_equal(a->health[i].age_ms, b->health[i].age_ms);
    }
}

/* Decodes a copy of buf[0..len) held in a heap block of exactly len bytes. */
static int decode_exact(struct heartbeat *hb, const uint8_t *buf, size_t len)
{
    uint8_t *copy = malloc(len == 0 ? 1 : len);
    assert_non_null(copy);
    memcpy(copy, buf, len);
    int rv = heartbeat_decode(hb, copy, len);
    free(copy);
    return rv;
}

static const struct heartbeat golden_hb = {
    .node_id = 1,
    .checker_id = 1,
    .flags = HEARTBEAT_F_READY,
    .incarnation = 0x0102030405060708ull,
    .counter = 42,
    .last_seq = {10, 20, 0, 0},
    .totals = {{3, 4990}, {1, 1990}},
    .health = {{true, false, 10, 250}, {true, true, 1500, 4000}},
};

/* Written by hand from the layout in proto/heartbeat.c, not by the encoder. */
static const uint8_t golden_bytes[HEARTBEAT_WIRE_LEN] = {
    0xb7, 0x01, 0x10, 0x00, 0x6a,                         /* magic, version, type, length 106 */
    0x01, 0x01, 0x01,                                     /* node, checker, flags */
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,       /* incarnation */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a,       /* counter */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a,       /* last_seq origin 1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14,       /* origin 2 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,       /* origin 3 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,       /* origin 4 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,       /* default count */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x13, 0x7e,       /* default cents 4990 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,       /* fallback count */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0xc6,       /* fallback cents 1990 */
    0x01, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0xfa, /* default: valid, 10, 250 */
    0x03, 0x00, 0x00, 0x05, 0xdc, 0x00, 0x00, 0x0f, 0xa0, /* fallback: valid failing 1500 4000 */
};

static void test_golden(void **state)
{
    uint8_t buf[256];
    assert_int_equal(heartbeat_encode(&golden_hb, buf, sizeof(buf)), HEARTBEAT_WIRE_LEN);
    assert_memory_equal(buf, golden_bytes, HEARTBEAT_WIRE_LEN);
    struct heartbeat hb;
    assert_int_equal(decode_exact(&hb, golden_bytes, sizeof(golden_bytes)), 0);
    assert_hb_equal(&hb, &golden_hb);
}

static void test_round_trip_random(void **state)
{
    for (int n = 0; n < 20000; n++) {
        struct heartbeat in, out;
        random_hb(&in);
        uint8_t buf[HEARTBEAT_WIRE_LEN];
        assert_int_equal(heartbeat_encode(&in, buf, sizeof(buf)), HEARTBEAT_WIRE_LEN);
        assert_int_equal(decode_exact(&out, buf, sizeof(buf)), 0);
        assert_hb_equal(&in, &out);
    }
}

static void test_encode_limits(void **state)
{
    uint8_t buf[HEARTBEAT_WIRE_LEN];
    assert_int_equal(heartbeat_encode(&golden_hb, buf, HEARTBEAT_WIRE_LEN - 1), -ENOSPC);
    assert_int_equal(heartbeat_encode(&golden_hb, buf, 0), -ENOSPC);
    struct heartbeat hb = golden_hb;
    hb.node_id = 0;
    assert_int_equal(heartbeat_encode(&hb, buf, sizeof(buf)), -EINVAL);
    hb = golden_hb;
    hb.flags = 0x08;
    assert_int_equal(heartbeat_encode(&hb, buf, sizeof(buf)), -EINVAL);
    hb = golden_hb;
    hb.totals[1].amount_cents = -1;
    assert_int_equal(heartbeat_encode(&hb, buf, sizeof(buf)), -EINVAL);
    hb = golden_hb;
    hb.totals[0].amount_cents = INT64_MAX;
    hb.totals[0].count = UINT64_MAX;
    hb.incarnation = UINT64_MAX;
    assert_int_equal(heartbeat_encode(&hb, buf, sizeof(buf)), HEARTBEAT_WIRE_LEN);
    struct heartbeat out;
    assert_int_equal(decode_exact(&out, buf, sizeof(buf)), 0);
    assert_hb_equal(&hb, &out);
}

static void test_every_truncation_rejected(void **state)
{
    struct heartbeat hb;
    memset(&hb, 0x5a, sizeof(hb));
    for (size_t len = 0; len < HEARTBEAT_WIRE_LEN; len++) {
        int rv = decode_exact(&hb, golden_bytes, len);
        assert_int_equal(rv, -EMSGSIZE);
    }
    /* The output is untouched on failure. */
    assert_int_equal(hb.node_id, 0x5a);
}

static void test_trailing_bytes_rejected(void **state)
{
    uint8_t buf[HEARTBEAT_WIRE_LEN + 1];
    memcpy(buf, golden_bytes, HEARTBEAT_WIRE_LEN);
    buf[HEARTBEAT_WIRE_LEN] = 0;
    struct heartbeat hb;
    assert_int_equal(decode_exact(&hb, buf, sizeof(buf)), -EINVAL);
}

/* Decodes golden_bytes with byte off replaced by v. */
static int decode_patched(size_t off, uint8_t v)
{
    uint8_t buf[HEARTBEAT_WIRE_LEN];
    memcpy(buf, golden_bytes, sizeof(buf));
    buf[off] = v;
    struct heartbeat hb;
    return decode_exact(&hb, buf, sizeof(buf));
}

static void test_bad_header_and_fields_rejected(void **state)
{
    assert_int_equal(decode_patched(0, 0xb6), -EINVAL); /* magic */
    assert_int_equal(decode_patched(1, 0x02), -EINVAL); /* version */
    assert_int_equal(decode_patched(1, 0x00), -EINVAL);
    assert_int_equal(decode_patched(2, 0x11), -EINVAL); /* type */
    assert_int_equal(decode_patched(2, 0x01), -EINVAL); /* an event type */
    assert_int_equal(decode_patched(4, 0x6b), -EINVAL); /* length field */
    assert_int_equal(decode_patched(4, 0x69), -EINVAL);
    assert_int_equal(decode_patched(3, 0x01), -EINVAL);
    assert_int_equal(decode_patched(5, 0x00), -EINVAL); /* node id 0 */
    assert_int_equal(decode_patched(7, 0x08), -EINVAL); /* unknown state flag */
    assert_int_equal(decode_patched(7, 0x80), -EINVAL);
    assert_int_equal(decode_patched(88, 0x04), -EINVAL); /* unknown health flag */
    assert_int_equal(decode_patched(97, 0x83), -EINVAL);
    assert_int_equal(decode_patched(64, 0x80), -EINVAL); /* negative cents */
    /* Truncated headers with a wrong magic, version or type say so at once. */
    struct heartbeat hb;
    const uint8_t bad_magic[1] = {0x00};
    const uint8_t bad_version[2] = {0xb7, 0x09};
    const uint8_t bad_type[3] = {0xb7, 0x01, 0x20};
    assert_int_equal(decode_exact(&hb, bad_magic, 1), -EINVAL);
    assert_int_equal(decode_exact(&hb, bad_version, 2), -EINVAL);
    assert_int_equal(decode_exact(&hb, bad_type, 3), -EINVAL);
    /* Every field value the encoder allows decodes. */
    assert_int_equal(decode_patched(6, 0x00), 0); /* checker "none" */
    assert_int_equal(decode_patched(7, HEARTBEAT_F_ALL), 0);
    assert_int_equal(decode_patched(88, 0x00), 0);
}

/* Random garbage and single-byte mutations never crash; anything accepted is
 * canonical (re-encodes to the same bytes). */
static void test_garbage_and_mutations(void **state)
{
    uint8_t buf[600];
    struct heartbeat hb;
    int accepted = 0;
    for (int n = 0; n < 200000; n++) {
        size_t len = (size_t)(rnd() % sizeof(buf));
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)rnd();
        if (n % 2 == 0 && len >= WIRE_HDR_LEN) {
            /* Half with a plausible header, so the field checks get exercised. */
            wire_put_header(buf, WIRE_T_HEARTBEAT, (uint16_t)(n % 4 == 0 ? len : rnd()));
            if (n % 8 == 0 && len >= HEARTBEAT_WIRE_LEN) {
                len = HEARTBEAT_WIRE_LEN;
                wire_put_header(buf, WIRE_T_HEARTBEAT, HEARTBEAT_WIRE_LEN);
                buf[5] |= 1;
                buf[7] &= HEARTBEAT_F_ALL;
                buf[64] &= 0x7f;
                buf[80] &= 0x7f;
                buf[88] &= 3;
                buf[97] &= 3;
            }
        }
        int rv = decode_exact(&hb, buf, len);
        assert_true(rv == 0 || rv == -EINVAL || rv == -EMSGSIZE);
        if (rv == 0) {
            accepted++;
            uint8_t again[HEARTBEAT_WIRE_LEN];
            assert_int_equal(heartbeat_encode(&hb, again, sizeof(again)), (int)len);
            assert_memory_equal(again, buf, len);
        }
    }
    assert_true(accepted > 1000); /* the shaped inputs did reach the success path */

    for (int n = 0; n < 50000; n++) {
        memcpy(buf, golden_bytes, HEARTBEAT_WIRE_LEN);
        size_t off = (size_t)(rnd() % HEARTBEAT_WIRE_LEN);
        buf[off] = (uint8_t)rnd();
        int rv = decode_exact(&hb, buf, HEARTBEAT_WIRE_LEN);
        assert_true(rv == 0 || rv == -EINVAL);
        if (rv == 0) {
            uint8_t again[HEARTBEAT_WIRE_LEN];
            assert_int_equal(heartbeat_encode(&hb, again, sizeof(again)), HEARTBEAT_WIRE_LEN);
            assert_memory_equal(again, buf, HEARTBEAT_WIRE_LEN);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_round_trip_random),
        cmocka_unit_test(test_encode_limits),
        cmocka_unit_test(test_every_truncation_rejected),
        cmocka_unit_test(test_trailing_bytes_rejected),
        cmocka_unit_test(test_bad_header_and_fields_rejected),
        cmocka_unit_test(test_garbage_and_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
