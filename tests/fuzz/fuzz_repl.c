/* proto/repl: the batch, snapshot-request and snapshot-response decoders on
 * any bytes. What each accepts re-encodes (writer or encoder) to exactly the
 * input and decodes again to the same header, events and records. */
#include <errno.h>
#include <string.h>

#include "fuzz_proto_common.h"
#include "proto/repl.h"

static uint8_t frame[REPL_FRAME_MAX];
static struct snap_record recs[SNAP_MAX_RECORDS];

static void batch_round_trip(const uint8_t *data, size_t size)
{
    struct repl_batch h;
    struct repl_iter it;
    int rv = repl_batch_decode(&h, &it, data, size);
    if (rv != 0) {
        FUZZ_CHECK(rv == -EINVAL || rv == -EMSGSIZE);
        return;
    }
    struct repl_writer w;
    FUZZ_CHECK(repl_writer_init(&w, frame, sizeof(frame), &h) == 0);
    struct event ev;
    unsigned n = 0;
    uint64_t last_seq = 0;
    while ((rv = repl_iter_next(&it, &ev)) == 1) {
        FUZZ_CHECK(ev.origin == h.sender_id && ev.seq > last_seq);
        last_seq = ev.seq;
        FUZZ_CHECK(repl_writer_add(&w, &ev) == 0);
        n++;
    }
    FUZZ_CHECK(rv == 0 && n == h.count);
    size_t len = repl_writer_finish(&w);
    FUZZ_CHECK(len == size && memcmp(frame, data, size) == 0);

    struct repl_batch h2;
    struct repl_iter it2;
    FUZZ_CHECK(repl_batch_decode(&h2, &it2, frame, len) == 0);
    FUZZ_CHECK(h2.sender_id == h.sender_id && h2.incarnation == h.incarnation);
    FUZZ_CHECK(h2.ack_incarnation == h.ack_incarnation && h2.ack_seq == h.ack_seq);
    FUZZ_CHECK(h2.count == h.count);
    FUZZ_CHECK(repl_batch_decode(&h, &it, data, size) == 0);
    struct event a, b;
    while ((rv = repl_iter_next(&it, &a)) == 1) {
        FUZZ_CHECK(repl_iter_next(&it2, &b) == 1);
        fuzz_event_same(&a, &b);
    }
    FUZZ_CHECK(rv == 0 && repl_iter_next(&it2, &b) == 0);
}

static void snap_request_round_trip(const uint8_t *data, size_t size)
{
    struct snap_request rq;
    int rv = snap_request_decode(&rq, data, size);
    if (rv != 0) {
        FUZZ_CHECK(rv == -EINVAL || rv == -EMSGSIZE);
        return;
    }
    uint8_t buf[SNAP_REQUEST_LEN];
    FUZZ_CHECK(snap_request_encode(&rq, buf, sizeof(buf)) == SNAP_REQUEST_LEN);
    FUZZ_CHECK(size == SNAP_REQUEST_LEN && memcmp(buf, data, size) == 0);
    struct snap_request again;
    FUZZ_CHECK(snap_request_decode(&again, buf, sizeof(buf)) == 0);
    FUZZ_CHECK(again.requester_id == rq.requester_id && again.incarnation == rq.incarnation);
    FUZZ_CHECK(again.cursor == rq.cursor && again.max_count == rq.max_count);
}

static void record_same(const struct snap_record *a, const struct snap_record *b)
{
    FUZZ_CHECK(memcmp(a->id, b->id, sizeof(a->id)) == 0);
    FUZZ_CHECK(a->amount_cents == b->amount_cents && a->accepted_ms == b->accepted_ms);
    FUZZ_CHECK(a->requested_at_ms == b->requested_at_ms && a->state == b->state);
    FUZZ_CHECK(a->processor == b->processor && a->owner == b->owner && a->failed == b->failed);
}

static void snap_response_round_trip(const uint8_t *data, size_t size)
{
    struct snap_response h;
    int rv = snap_response_decode(&h, data, size);
    if (rv != 0) {
        FUZZ_CHECK(rv == -EINVAL || rv == -EMSGSIZE);
        return;
    }
    FUZZ_CHECK(h.count <= SNAP_MAX_RECORDS);
    FUZZ_CHECK(size == SNAP_RESPONSE_HDR_LEN + (size_t)h.count * SNAP_RECORD_LEN);
    for (uint16_t i = 0; i < h.count; i++)
        snap_response_record(data, i, &recs[i]);
    int len = snap_response_encode(&h, recs, frame, sizeof(frame));
    FUZZ_CHECK(len >= 0 && (size_t)len == size && memcmp(frame, data, size) == 0);
    struct snap_response h2;
    FUZZ_CHECK(snap_response_decode(&h2, frame, (size_t)len) == 0);
    FUZZ_CHECK(h2.responder_id == h.responder_id && h2.incarnation == h.incarnation);
    FUZZ_CHECK(h2.purge_epoch == h.purge_epoch && h2.own_seq == h.own_seq);
    FUZZ_CHECK(h2.next_cursor == h.next_cursor && h2.done == h.done && h2.count == h.count);
    for (uint16_t i = 0; i < h.count; i++) {
        struct snap_record r;
        snap_response_record(frame, i, &r);
        record_same(&r, &recs[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    batch_round_trip(data, size);
    snap_request_round_trip(data, size);
    snap_response_round_trip(data, size);
    return 0;
}
