/* proto/catchup: requests and responses round-trip with random values, golden
 * bytes, every truncation and bad header rejected, inconsistent responses
 * (count, seqs, origins, prefixes, more flag) rejected before any event is
 * handed out, and random or mutated input never crashes (each input sits in
 * its own exact-size heap block, so the sanitizer build catches over-reads). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include <cmocka.h>

#include "proto/catchup.h"
#include "proto/wire.h"

static uint64_t rng_state = 0x13198a2e03707344ull;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

static uint8_t *dup_exact(const uint8_t *buf, size_t len)
{
    uint8_t *copy = malloc(len == 0 ? 1 : len);
    assert_non_null(copy);
    memcpy(copy, buf, len);
    return copy;
}

static int request_decode_exact(struct catchup_request *rq, const uint8_t *buf, size_t len)
{
    uint8_t *copy = dup_exact(buf, len);
    int rv = catchup_request_decode(rq, copy, len);
    free(copy);
    return rv;
}

/* Decodes a response held in an exact heap block and walks all its events;
 * returns the decode result, and checks the walk agrees with the header. */
static int response_decode_exact(struct catchup_response *hdr, const uint8_t *buf, size_t len)
{
    uint8_t *copy = dup_exact(buf, len);
    struct catchup_iter it;
    int rv = catchup_response_decode(hdr, &it, copy, len);
    if (rv == 0) {
        struct event ev;
        uint32_t n = 0;
        int r;
        while ((r = catchup_iter_next(&it, &ev)) == 1) {
            assert_int_equal(ev.origin, hdr->origin);
            assert_true(ev.seq == hdr->first_seq + n);
            n++;
        }
        assert_int_equal(r, 0);
        assert_int_equal(n, hdr->count);
    }
    free(copy);
    return rv;
}

/* A canonical random event (fields its type does not carry are zero). */
static void random_event(struct event *ev, uint8_t origin, uint64_t seq)
{
    memset(ev, 0, sizeof(*ev));
    ev->type = (enum event_type)(1 + rnd() % EVENT_TYPE_MAX);
    ev->origin = origin;
    ev->seq = seq;
    if (ev->type == EVENT_PURGED) {
        ev->epoch = rnd();
        return;
    }
    for (int i = 0; i < 16; i++)
        ev->id[i] = (uint8_t)rnd();
    if (ev->type != EVENT_ACCEPTED)
        ev->processor = (uint8_t)(rnd() & 1);
    if (ev->type != EVENT_FAILED)
        ev->at_ms = (int64_t)(rnd() >> 20);
    if (ev->type == EVENT_ACCEPTED || ev->type == EVENT_RECORDED)
        ev->amount_cents = (int64_t)(1 + rnd() % 100000000);
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
    assert_true(a->epoch == b->epoch);
}

/* ---- requests ---- */

static const struct catchup_request golden_rq = {
    .requester_id = 2,
    .origin = 1,
    .incarnation = 0x1122334455667788ull,
    .from_seq = 1000,
    .max_count = 512,
};

static const uint8_t golden_rq_bytes[CATCHUP_REQUEST_LEN] = {
    0xb7, 0x01, 0x20, 0x00, 0x1b,                   /* magic, version, type, length 27 */
    0x02, 0x01,                                     /* requester, origin */
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, /* incarnation */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, /* from_seq 1000 */
    0x00, 0x00, 0x02, 0x00,                         /* max_count 512 */
};

static void test_request_golden(void **state)
{
    uint8_t buf[64];
    assert_int_equal(catchup_request_encode(&golden_rq, buf, sizeof(buf)), CATCHUP_REQUEST_LEN);
    assert_memory_equal(buf, golden_rq_bytes, CATCHUP_REQUEST_LEN);
    struct catchup_request rq;
    assert_int_equal(request_decode_exact(&rq, golden_rq_bytes, CATCHUP_REQUEST_LEN), 0);
    assert_int_equal(rq.requester_id, 2);
    assert_int_equal(rq.origin, 1);
    assert_true(rq.incarnation == golden_rq.incarnation);
    assert_true(rq.from_seq == 1000);
    assert_int_equal(rq.max_count, 512);
}

static void test_request_round_trip_random(void **state)
{
    for (int n = 0; n < 20000; n++) {
        struct catchup_request in = {
            .requester_id = (uint8_t)(1 + rnd() % 255),
            .origin = (uint8_t)(1 + rnd() % 255),
            .incarnation = rnd(),
            .from_seq = 1 + (rnd() >> (rnd() % 64)),
            .max_count = (uint32_t)(1 + rnd() % UINT32_MAX),
        };
        if (in.from_seq == 0)
            in.from_seq = 1;
        uint8_t buf[CATCHUP_REQUEST_LEN];
        assert_int_equal(catchup_request_encode(&in, buf, sizeof(buf)), CATCHUP_REQUEST_LEN);
        struct catchup_request out;
        assert_int_equal(request_decode_exact(&out, buf, sizeof(buf)), 0);
        assert_int_equal(out.requester_id, in.requester_id);
        assert_int_equal(out.origin, in.origin);
        assert_true(out.incarnation == in.incarnation);
        assert_true(out.from_seq == in.from_seq);
        assert_int_equal(out.max_count, in.max_count);
    }
}

static int request_patched(size_t off, uint8_t v)
{
    uint8_t buf[CATCHUP_REQUEST_LEN];
    memcpy(buf, golden_rq_bytes, sizeof(buf));
    buf[off] = v;
    struct catchup_request rq;
    return request_decode_exact(&rq, buf, sizeof(buf));
}

static void test_request_rejects(void **state)
{
    struct catchup_request rq;
    memset(&rq, 0x5a, sizeof(rq));
    for (size_t len = 0; len < CATCHUP_REQUEST_LEN; len++)
        assert_int_equal(request_decode_exact(&rq, golden_rq_bytes, len), -EMSGSIZE);
    assert_int_equal(rq.origin, 0x5a); /* untouched on failure */

    uint8_t longer[CATCHUP_REQUEST_LEN + 1];
    memcpy(longer, golden_rq_bytes, CATCHUP_REQUEST_LEN);
    longer[CATCHUP_REQUEST_LEN] = 0;
    assert_int_equal(request_decode_exact(&rq, longer, sizeof(longer)), -EINVAL);

    assert_int_equal(request_patched(0, 0x00), -EINVAL); /* magic */
    assert_int_equal(request_patched(1, 0x02), -EINVAL); /* version */
    assert_int_equal(request_patched(2, 0x21), -EINVAL); /* a response type */
    assert_int_equal(request_patched(2, 0x10), -EINVAL); /* a heartbeat */
    assert_int_equal(request_patched(4, 0x1c), -EINVAL); /* length */
    assert_int_equal(request_patched(5, 0x00), -EINVAL); /* requester 0 */
    assert_int_equal(request_patched(6, 0x00), -EINVAL); /* origin 0 */
    uint8_t zero_from[CATCHUP_REQUEST_LEN];
    memcpy(zero_from, golden_rq_bytes, sizeof(zero_from));
    memset(zero_from + 15, 0, 8);
    assert_int_equal(request_decode_exact(&rq, zero_from, sizeof(zero_from)), -EINVAL);
    uint8_t zero_max[CATCHUP_REQUEST_LEN];
    memcpy(zero_max, golden_rq_bytes, sizeof(zero_max));
    memset(zero_max + 23, 0, 4);
    assert_int_equal(request_decode_exact(&rq, zero_max, sizeof(zero_max)), -EINVAL);

    uint8_t buf[CATCHUP_REQUEST_LEN];
    assert_int_equal(catchup_request_encode(&golden_rq, buf, CATCHUP_REQUEST_LEN - 1), -ENOSPC);
    struct catchup_request bad = golden_rq;
    bad.max_count = 0;
    assert_int_equal(catchup_request_encode(&bad, buf, sizeof(buf)), -EINVAL);
    bad = golden_rq;
    bad.from_seq = 0;
    assert_int_equal(catchup_request_encode(&bad, buf, sizeof(buf)), -EINVAL);
}

/* ---- responses ---- */

/* Builds a response of n random events of origin from first, with last_seq. */
static int build_response(uint8_t *buf, size_t cap, struct event *evs, uint32_t n, uint8_t origin,
                          uint64_t first, uint64_t last_seq)
{
    struct catchup_writer w;
    assert_int_equal(catchup_writer_init(&w, buf, cap, 1, 77, origin, first), 0);
    for (uint32_t i = 0; i < n; i++) {
        random_event(&evs[i], origin, first + i);
        assert_int_equal(catchup_writer_add(&w, &evs[i]), 0);
    }
    return catchup_writer_finish(&w, last_seq);
}

static void test_response_golden(void **state)
{
    /* One FAILED event; its bytes come from event_encode (proto/event owns
     * them), everything around it is written here by hand. */
    struct event ev = {.type = EVENT_FAILED, .origin = 2, .processor = 1, .seq = 5};
    for (int i = 0; i < 16; i++)
        ev.id[i] = (uint8_t)i;
    uint8_t evbuf[EVENT_WIRE_MAX];
    int evlen = event_encode(&ev, evbuf, sizeof(evbuf));
    assert_true(evlen > 0);

    uint8_t want[CATCHUP_RESPONSE_HDR_LEN + 1 + EVENT_WIRE_MAX];
    size_t frame = CATCHUP_RESPONSE_HDR_LEN + 1 + (size_t)evlen;
    const uint8_t head[CATCHUP_RESPONSE_HDR_LEN] = {
        0xb7, 0x01, 0x21, 0x00, (uint8_t)frame, /* header */
        0x01, 0x02, 0x01,                       /* responder, origin, flags: more */
        0x11, 0x22, 0x33, 0x44, 0x55,           0x66, 0x77, 0x88, /* incarnation */
        0x00, 0x00, 0x00, 0x00, 0x00,           0x00, 0x00, 0x05, /* first_seq */
        0x00, 0x00, 0x00, 0x01,                                   /* count */
        0x00, 0x00, 0x00, 0x00, 0x00,           0x00, 0x00, 0x09, /* responder's last seq */
    };
    memcpy(want, head, sizeof(head));
    want[CATCHUP_RESPONSE_HDR_LEN] = (uint8_t)evlen;
    memcpy(want + CATCHUP_RESPONSE_HDR_LEN + 1, evbuf, (size_t)evlen);

    uint8_t buf[256];
    struct catchup_writer w;
    assert_int_equal(catchup_writer_init(&w, buf, sizeof(buf), 1, 0x1122334455667788ull, 2, 5), 0);
    assert_int_equal(catchup_writer_add(&w, &ev), 0);
    assert_int_equal(catchup_writer_finish(&w, 9), (int)frame);
    assert_memory_equal(buf, want, frame);

    struct catchup_response h;
    struct catchup_iter it;
    assert_int_equal(catchup_response_decode(&h, &it, want, frame), 0);
    assert_int_equal(h.responder_id, 1);
    assert_int_equal(h.origin, 2);
    assert_true(h.more);
    assert_true(h.incarnation == 0x1122334455667788ull);
    assert_true(h.first_seq == 5);
    assert_int_equal(h.count, 1);
    assert_true(h.last_seq == 9);
    struct event out;
    assert_int_equal(catchup_iter_next(&it, &out), 1);
    assert_event_equal(&out, &ev);
    assert_int_equal(catchup_iter_next(&it, &out), 0);
    assert_int_equal(catchup_iter_next(&it, &out), 0);
}

static void test_response_round_trip_random(void **state)
{
    static uint8_t buf[CATCHUP_RESPONSE_MAX];
    static struct event evs[1500];
    for (int n = 0; n < 300; n++) {
        uint32_t count = (uint32_t)(rnd() % 200);
        uint8_t origin = (uint8_t)(1 + rnd() % 255);
        uint64_t first = 1 + rnd() % 1000000;
        uint64_t last = first + count - 1 + (rnd() % 3 == 0 ? 0 : rnd() % 50);
        if (count == 0)
            last = rnd() % 3 == 0 ? 0 : first - 1;
        int len = build_response(buf, sizeof(buf), evs, count, origin, first, last);
        assert_true(len >= CATCHUP_RESPONSE_HDR_LEN);

        struct catchup_response h;
        struct catchup_iter it;
        uint8_t *copy = dup_exact(buf, (size_t)len);
        assert_int_equal(catchup_response_decode(&h, &it, copy, (size_t)len), 0);
        assert_int_equal(h.origin, origin);
        assert_int_equal(h.count, count);
        assert_true(h.first_seq == first);
        assert_true(h.last_seq == last);
        assert_int_equal(h.more, count > 0 && first + count - 1 < last);
        struct event out;
        for (uint32_t i = 0; i < count; i++) {
            assert_int_equal(catchup_iter_next(&it, &out), 1);
            assert_event_equal(&out, &evs[i]);
        }
        assert_int_equal(catchup_iter_next(&it, &out), 0);
        free(copy);
    }
}

static void test_writer_limits(void **state)
{
    static uint8_t buf[CATCHUP_RESPONSE_MAX + 1000];
    struct catchup_writer w;
    uint8_t small[CATCHUP_RESPONSE_MIN_CAP];
    assert_int_equal(catchup_writer_init(&w, small, sizeof(small) - 1, 1, 1, 2, 1), -ENOSPC);
    assert_int_equal(catchup_writer_init(&w, small, sizeof(small), 0, 1, 2, 1), -EINVAL);
    assert_int_equal(catchup_writer_init(&w, small, sizeof(small), 1, 1, 0, 1), -EINVAL);
    assert_int_equal(catchup_writer_init(&w, small, sizeof(small), 1, 1, 2, 0), -EINVAL);

    /* The minimum buffer always takes one event, of any type. */
    struct event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = EVENT_ACCEPTED;
    ev.origin = 2;
    ev.seq = 1;
    ev.amount_cents = 1990;
    assert_int_equal(catchup_writer_init(&w, small, sizeof(small), 1, 1, 2, 1), 0);
    assert_int_equal(catchup_writer_add(&w, &ev), 0);

    /* Fill the largest frame: adding stops with -ENOSPC, the writer unchanged,
     * the frame stays under the u16 limit and decodes with "more". */
    assert_int_equal(catchup_writer_init(&w, buf, sizeof(buf), 1, 1, 2, 1), 0);
    uint64_t seq = 1;
    int rv;
    for (;;) {
        ev.seq = seq;
        size_t before = w.len;
        rv = catchup_writer_add(&w, &ev);
        if (rv != 0) {
            assert_int_equal(rv, -ENOSPC);
            assert_int_equal(w.len, before);
            break;
        }
        seq++;
        assert_true(seq < 100000);
    }
    assert_int_equal(w.hdr.count, seq - 1);
    int len = catchup_writer_finish(&w, 1000000);
    assert_true(len > 60000 && len <= CATCHUP_RESPONSE_MAX);
    struct catchup_response h;
    assert_int_equal(response_decode_exact(&h, buf, (size_t)len), 0);
    assert_true(h.more);
    assert_int_equal(h.count, seq - 1);

    /* Wrong origin, out of sequence, invalid event. */
    assert_int_equal(catchup_writer_init(&w, buf, 4096, 1, 1, 2, 10), 0);
    ev.seq = 11;
    assert_int_equal(catchup_writer_add(&w, &ev), -EINVAL);
    ev.seq = 10;
    ev.origin = 3;
    assert_int_equal(catchup_writer_add(&w, &ev), -EINVAL);
    ev.origin = 2;
    ev.amount_cents = 0;
    assert_int_equal(catchup_writer_add(&w, &ev), -EINVAL);
    ev.amount_cents = 5;
    assert_int_equal(catchup_writer_add(&w, &ev), 0);
    ev.seq = 11;
    assert_int_equal(catchup_writer_add(&w, &ev), 0);
    assert_int_equal(w.hdr.count, 2);
    /* last_seq below what was sent is a responder bug. */
    assert_int_equal(catchup_writer_finish(&w, 10), -EINVAL);
    assert_true(catchup_writer_finish(&w, 11) > 0);
    assert_int_equal(response_decode_exact(&h, buf, w.len), 0);
    assert_false(h.more);

    /* Nothing to send: count 0, never "more". */
    assert_int_equal(catchup_writer_init(&w, buf, 4096, 1, 1, 2, 50), 0);
    len = catchup_writer_finish(&w, 49);
    assert_int_equal(len, CATCHUP_RESPONSE_HDR_LEN);
    assert_int_equal(response_decode_exact(&h, buf, (size_t)len), 0);
    assert_int_equal(h.count, 0);
    assert_false(h.more);
    assert_true(h.last_seq == 49);
}

/* A valid response of 3 events to mutate: origin 2, seqs 7..9, last 20. */
static size_t sample_response(uint8_t *buf, size_t cap)
{
    struct event evs[3];
    int len = build_response(buf, cap, evs, 3, 2, 7, 20);
    assert_true(len > 0);
    return (size_t)len;
}

static void test_response_truncations_rejected(void **state)
{
    uint8_t buf[1024];
    size_t len = sample_response(buf, sizeof(buf));
    struct catchup_response h;
    memset(&h, 0x5a, sizeof(h));
    for (size_t l = 0; l < len; l++)
        assert_int_equal(response_decode_exact(&h, buf, l), -EMSGSIZE);
    assert_int_equal(h.origin, 0x5a);
    buf[len] = 0;
    assert_int_equal(response_decode_exact(&h, buf, len + 1), -EINVAL);
    assert_int_equal(response_decode_exact(&h, buf, len), 0);
}

static int response_patched(const uint8_t *orig, size_t len, size_t off, uint8_t v)
{
    uint8_t buf[1024];
    memcpy(buf, orig, len);
    buf[off] = v;
    struct catchup_response h;
    return response_decode_exact(&h, buf, len);
}

static void test_response_malformed_rejected(void **state)
{
    uint8_t buf[1024];
    size_t len = sample_response(buf, sizeof(buf));
    const size_t ev0 = CATCHUP_RESPONSE_HDR_LEN; /* first length prefix */
    const size_t ev1 = ev0 + 1 + buf[ev0];
    assert_int_equal(response_patched(buf, len, 0, 0xb8), -EINVAL);  /* magic */
    assert_int_equal(response_patched(buf, len, 1, 0x00), -EINVAL);  /* version */
    assert_int_equal(response_patched(buf, len, 2, 0x20), -EINVAL);  /* a request */
    assert_int_equal(response_patched(buf, len, 5, 0x00), -EINVAL);  /* responder 0 */
    assert_int_equal(response_patched(buf, len, 6, 0x03), -EINVAL);  /* origin != events' */
    assert_int_equal(response_patched(buf, len, 6, 0x00), -EINVAL);  /* origin 0 */
    assert_int_equal(response_patched(buf, len, 7, 0x00), -EINVAL);  /* more flag cleared */
    assert_int_equal(response_patched(buf, len, 7, 0x03), -EINVAL);  /* unknown flag */
    assert_int_equal(response_patched(buf, len, 23, 8), -EINVAL);    /* first_seq 8 */
    assert_int_equal(response_patched(buf, len, 27, 2), -EINVAL);    /* count 2 */
    assert_int_equal(response_patched(buf, len, 27, 4), -EINVAL);    /* count 4 */
    assert_int_equal(response_patched(buf, len, 24, 0xff), -EINVAL); /* count huge */
    assert_int_equal(response_patched(buf, len, 35, 8), -EINVAL);    /* last_seq < 9 */
    assert_int_equal(response_patched(buf, len, 35, 9), -EINVAL);    /* "more" but 9 = last */
    assert_int_equal(response_patched(buf, len, ev0, 0), -EINVAL);   /* prefix 0 */
    assert_int_equal(response_patched(buf, len, ev0, buf[ev0] + 1), -EINVAL);
    assert_int_equal(response_patched(buf, len, ev0, buf[ev0] - 1), -EINVAL);
    assert_int_equal(response_patched(buf, len, ev0, 0xff), -EINVAL);
    assert_int_equal(response_patched(buf, len, ev1 + 1 + 5, 3), -EINVAL);    /* event origin */
    assert_int_equal(response_patched(buf, len, ev1 + 1 + 14, 9), -EINVAL);   /* event seq */
    assert_int_equal(response_patched(buf, len, ev1 + 1 + 0, 0x00), -EINVAL); /* event magic */
    /* Length field one shorter than the buffer: the last byte is trailing. */
    uint8_t shorter[1024];
    memcpy(shorter, buf, len);
    wire_put_u16(shorter + 3, (uint16_t)(len - 1));
    struct catchup_response h;
    assert_true(response_decode_exact(&h, shorter, len) < 0);
    assert_true(response_decode_exact(&h, shorter, len - 1) < 0);
    /* A prefix covering the event plus a padding byte (frame length adjusted)
     * is not canonical: each prefix is exactly its event's length. */
    uint8_t padded[1024];
    memcpy(padded, buf, ev0 + 1 + buf[ev0]);
    padded[ev0] = (uint8_t)(buf[ev0] + 1);
    padded[ev0 + 1 + buf[ev0]] = 0;
    memcpy(padded + ev0 + 2 + buf[ev0], buf + ev0 + 1 + buf[ev0], len - (ev0 + 1 + buf[ev0]));
    wire_put_u16(padded + 3, (uint16_t)(len + 1));
    assert_int_equal(response_decode_exact(&h, padded, len + 1), -EINVAL);
    /* Seqs near the top of the range cannot wrap. */
    uint8_t top[CATCHUP_RESPONSE_HDR_LEN];
    memcpy(top, buf, CATCHUP_RESPONSE_HDR_LEN);
    wire_put_u16(top + 3, CATCHUP_RESPONSE_HDR_LEN);
    wire_put_u8(top + 7, 0);
    wire_put_u64(top + 16, UINT64_MAX);
    wire_put_u32(top + 24, 0);
    wire_put_u64(top + 28, UINT64_MAX);
    assert_int_equal(response_decode_exact(&h, top, sizeof(top)), 0);
    assert_int_equal(h.count, 0);
}

static void test_iter_detects_changed_buffer(void **state)
{
    uint8_t buf[1024];
    size_t len = sample_response(buf, sizeof(buf));
    struct catchup_response h;
    struct catchup_iter it;
    assert_int_equal(catchup_response_decode(&h, &it, buf, len), 0);
    struct event ev;
    assert_int_equal(catchup_iter_next(&it, &ev), 1);
    size_t ev1 = CATCHUP_RESPONSE_HDR_LEN + 1 + buf[CATCHUP_RESPONSE_HDR_LEN];
    buf[ev1] = 0xff; /* the second event's prefix now runs past the frame */
    assert_int_equal(catchup_iter_next(&it, &ev), -EINVAL);
}

static void test_garbage_and_mutations(void **state)
{
    static uint8_t buf[4096];
    struct catchup_response h;
    struct catchup_request rq;
    int accepted = 0;
    for (int n = 0; n < 100000; n++) {
        size_t len = (size_t)(rnd() % 700);
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)rnd();
        if (n % 2 == 0 && len >= WIRE_HDR_LEN)
            wire_put_header(buf, (uint8_t)(0x20 + n % 4 / 2), (uint16_t)len);
        int rv = response_decode_exact(&h, buf, len);
        assert_true(rv == 0 || rv == -EINVAL || rv == -EMSGSIZE);
        rv = request_decode_exact(&rq, buf, len);
        assert_true(rv == 0 || rv == -EINVAL || rv == -EMSGSIZE);
    }
    /* Mutations of valid responses: anything accepted walks cleanly (checked
     * inside response_decode_exact). */
    for (int n = 0; n < 30000; n++) {
        size_t len = sample_response(buf, sizeof(buf));
        int flips = 1 + (int)(rnd() % 3);
        for (int f = 0; f < flips; f++)
            buf[rnd() % len] = (uint8_t)rnd();
        int rv = response_decode_exact(&h, buf, len);
        assert_true(rv == 0 || rv == -EINVAL || rv == -EMSGSIZE);
        accepted += rv == 0;
    }
    assert_true(accepted > 0); /* some mutations hit free fields (ids, amounts) */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_golden),
        cmocka_unit_test(test_request_round_trip_random),
        cmocka_unit_test(test_request_rejects),
        cmocka_unit_test(test_response_golden),
        cmocka_unit_test(test_response_round_trip_random),
        cmocka_unit_test(test_writer_limits),
        cmocka_unit_test(test_response_truncations_rejected),
        cmocka_unit_test(test_response_malformed_rejected),
        cmocka_unit_test(test_iter_detects_changed_buffer),
        cmocka_unit_test(test_garbage_and_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
