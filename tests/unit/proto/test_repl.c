/* proto/repl: batches and snapshot frames round-trip, and every truncation or
 * corruption of a valid frame is rejected without an over-read. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/repl.h"

static struct event mk_event(uint8_t origin, uint64_t seq, enum event_type t)
{
    struct event ev = {.type = t, .origin = origin, .seq = seq, .processor = (uint8_t)(seq & 1)};
    for (int i = 0; i < 16; i++)
        ev.id[i] = (uint8_t)(seq * 31 + (uint64_t)i);
    ev.amount_cents = (int64_t)(seq * 100 + 5);
    ev.at_ms = 1752582896000 + (int64_t)seq;
    ev.epoch = seq;
    return ev;
}

static size_t build_batch(uint8_t *buf, size_t cap, uint16_t n)
{
    struct repl_writer w;
    struct repl_batch h = {.sender_id = 2, .incarnation = 77, .ack_incarnation = 99, .ack_seq = 12};
    assert_int_equal(repl_writer_init(&w, buf, cap, &h), 0);
    static const enum event_type types[] = {EVENT_ACCEPTED, EVENT_SENDING, EVENT_RECORDED,
                                            EVENT_FAILED, EVENT_PURGED};
    for (uint16_t i = 0; i < n; i++) {
        struct event ev = mk_event(2, 10 + i, types[i % 5]);
        assert_int_equal(repl_writer_add(&w, &ev), 0);
    }
    return repl_writer_finish(&w);
}

static void test_batch_round_trip(void **state)
{
    uint8_t buf[REPL_FRAME_MAX];
    size_t len = build_batch(buf, sizeof(buf), 25);
    struct repl_batch h;
    struct repl_iter it;
    assert_int_equal(repl_batch_decode(&h, &it, buf, len), 0);
    assert_int_equal(h.sender_id, 2);
    assert_int_equal(h.incarnation, 77);
    assert_int_equal(h.ack_incarnation, 99);
    assert_int_equal(h.ack_seq, 12);
    assert_int_equal(h.count, 25);
    struct event ev;
    for (uint16_t i = 0; i < 25; i++) {
        assert_int_equal(repl_iter_next(&it, &ev), 1);
        assert_int_equal(ev.seq, 10 + i);
        assert_int_equal(ev.origin, 2);
    }
    assert_int_equal(repl_iter_next(&it, &ev), 0);
}

static void test_pure_ack(void **state)
{
    uint8_t buf[128];
    size_t len = build_batch(buf, sizeof(buf), 0);
    assert_int_equal(len, REPL_BATCH_HDR_LEN);
    struct repl_batch h;
    struct repl_iter it;
    assert_int_equal(repl_batch_decode(&h, &it, buf, len), 0);
    assert_int_equal(h.count, 0);
}

/* The ack-wanted flag travels in the type byte, and only there. */
static void test_ack_wanted_round_trip(void **state)
{
    uint8_t buf[512];
    struct repl_writer w;
    struct repl_batch h = {.sender_id = 1, .incarnation = 5, .ack_wanted = true};
    assert_int_equal(repl_writer_init(&w, buf, sizeof(buf), &h), 0);
    size_t len = repl_writer_finish(&w);
    assert_int_equal(buf[2], WIRE_T_REPL_BATCH_ACK);
    struct repl_batch out;
    struct repl_iter it;
    assert_int_equal(repl_batch_decode(&out, &it, buf, len), 0);
    assert_true(out.ack_wanted);
    len = build_batch(buf, sizeof(buf), 3);
    assert_int_equal(buf[2], WIRE_T_REPL_BATCH);
    assert_int_equal(repl_batch_decode(&out, &it, buf, len), 0);
    assert_false(out.ack_wanted);
    buf[2] = WIRE_T_SNAP_REQUEST; /* any other type is not a batch */
    assert_int_equal(repl_batch_decode(&out, &it, buf, len), -EINVAL);
}

static void test_writer_refuses_foreign_and_full(void **state)
{
    uint8_t buf[REPL_BATCH_HDR_LEN + EVENT_WIRE_MAX];
    struct repl_writer w;
    struct repl_batch h = {.sender_id = 1};
    assert_int_equal(repl_writer_init(&w, buf, sizeof(buf), &h), 0);
    struct event other = mk_event(2, 1, EVENT_ACCEPTED);
    assert_int_equal(repl_writer_add(&w, &other), -EINVAL);
    struct event a = mk_event(1, 1, EVENT_ACCEPTED), b = mk_event(1, 2, EVENT_ACCEPTED);
    assert_int_equal(repl_writer_add(&w, &a), 0);
    assert_int_equal(repl_writer_add(&w, &b), -ENOSPC);
    uint8_t small[16];
    assert_int_equal(repl_writer_init(&w, small, sizeof(small), &h), -ENOSPC);
    h.sender_id = 0;
    assert_int_equal(repl_writer_init(&w, buf, sizeof(buf), &h), -EINVAL);
}

static void test_batch_truncations_rejected(void **state)
{
    uint8_t buf[4096];
    size_t len = build_batch(buf, sizeof(buf), 7);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        struct repl_batch h;
        struct repl_iter it;
        int rv = repl_batch_decode(&h, &it, copy, cut);
        assert_true(rv == -EMSGSIZE || rv == -EINVAL);
        free(copy);
    }
    /* Trailing garbage and a seq going backwards are malformed. */
    buf[len] = 0;
    struct repl_batch h;
    struct repl_iter it;
    assert_int_equal(repl_batch_decode(&h, &it, buf, len + 1), -EINVAL);
}

static void test_batch_corruption_never_crashes(void **state)
{
    uint8_t buf[4096];
    size_t len = build_batch(buf, sizeof(buf), 9);
    srand(1234);
    for (int round = 0; round < 20000; round++) {
        uint8_t *copy = malloc(len);
        memcpy(copy, buf, len);
        int flips = 1 + rand() % 4;
        for (int f = 0; f < flips; f++)
            copy[(size_t)rand() % len] = (uint8_t)rand();
        struct repl_batch h;
        struct repl_iter it;
        if (repl_batch_decode(&h, &it, copy, len) == 0) {
            struct event ev;
            int rv;
            uint64_t last = 0;
            while ((rv = repl_iter_next(&it, &ev)) == 1) {
                assert_int_equal(ev.origin, h.sender_id);
                assert_true(ev.seq > last);
                last = ev.seq;
            }
            assert_int_equal(rv, 0);
        }
        free(copy);
    }
}

static void test_snapshot_round_trip(void **state)
{
    struct snap_request rq = {.requester_id = 1, .incarnation = 5, .cursor = 1000, .max_count = 64};
    uint8_t rbuf[SNAP_REQUEST_LEN];
    assert_int_equal(snap_request_encode(&rq, rbuf, sizeof(rbuf)), SNAP_REQUEST_LEN);
    struct snap_request back;
    assert_int_equal(snap_request_decode(&back, rbuf, sizeof(rbuf)), 0);
    assert_int_equal(back.cursor, 1000);
    assert_int_equal(back.max_count, 64);
    for (size_t cut = 0; cut < SNAP_REQUEST_LEN; cut++)
        assert_int_not_equal(snap_request_decode(&back, rbuf, cut), 0);
    rq.max_count = 0;
    assert_int_equal(snap_request_encode(&rq, rbuf, sizeof(rbuf)), -EINVAL);

    struct snap_record recs[3];
    for (int i = 0; i < 3; i++) {
        memset(&recs[i], 0, sizeof(recs[i]));
        recs[i].id[0] = (uint8_t)i;
        recs[i].amount_cents = 1990 + i;
        recs[i].accepted_ms = -5 + i; /* negative times survive */
        recs[i].requested_at_ms = INT64_MAX - i;
        recs[i].state = (uint8_t)i;
        recs[i].processor = (uint8_t)(i & 1);
        recs[i].owner = 2;
        recs[i].failed = (uint8_t)i;
    }
    struct snap_response h = {.responder_id = 2,
                              .incarnation = 9,
                              .purge_epoch = 3,
                              .own_seq = 4242,
                              .next_cursor = 1003,
                              .done = true,
                              .count = 3};
    uint8_t buf[SNAP_RESPONSE_HDR_LEN + 3 * SNAP_RECORD_LEN];
    int len = snap_response_encode(&h, recs, buf, sizeof(buf));
    assert_int_equal(len, (int)sizeof(buf));
    struct snap_response hb;
    assert_int_equal(snap_response_decode(&hb, buf, (size_t)len), 0);
    assert_int_equal(hb.own_seq, 4242);
    assert_true(hb.done);
    for (uint16_t i = 0; i < 3; i++) {
        struct snap_record r;
        snap_response_record(buf, i, &r);
        assert_memory_equal(&r.id, recs[i].id, 16);
        assert_int_equal(r.amount_cents, recs[i].amount_cents);
        assert_int_equal(r.accepted_ms, recs[i].accepted_ms);
        assert_int_equal(r.requested_at_ms, recs[i].requested_at_ms);
        assert_int_equal(r.state, recs[i].state);
        assert_int_equal(r.failed, recs[i].failed);
    }
    for (size_t cut = 0; cut < (size_t)len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        assert_int_not_equal(snap_response_decode(&hb, copy, cut), 0);
        free(copy);
    }
    /* An invalid record (owner 0) is refused on both sides. */
    recs[1].owner = 0;
    assert_int_equal(snap_response_encode(&h, recs, buf, sizeof(buf)), -EINVAL);
    buf[SNAP_RESPONSE_HDR_LEN + SNAP_RECORD_LEN + 42] = 0;
    assert_int_equal(snap_response_decode(&hb, buf, (size_t)len), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_round_trip),
        cmocka_unit_test(test_pure_ack),
        cmocka_unit_test(test_ack_wanted_round_trip),
        cmocka_unit_test(test_writer_refuses_foreign_and_full),
        cmocka_unit_test(test_batch_truncations_rejected),
        cmocka_unit_test(test_batch_corruption_never_crashes),
        cmocka_unit_test(test_snapshot_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
