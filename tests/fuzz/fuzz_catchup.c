/* proto/catchup: both decoders on any bytes (each refuses the other's type
 * byte). What a decoder accepts re-encodes, through the public encoder or
 * writer, to exactly the input, and decodes again to the same fields and
 * events; a response's iterator returns exactly count events. */
#include <errno.h>
#include <string.h>

#include "fuzz_proto_common.h"
#include "proto/catchup.h"

static uint8_t frame[CATCHUP_RESPONSE_MAX];

static void request_round_trip(const uint8_t *data, size_t size)
{
    struct catchup_request rq;
    int rv = catchup_request_decode(&rq, data, size);
    if (rv != 0) {
        FUZZ_CHECK(rv == -EINVAL || rv == -EMSGSIZE);
        return;
    }
    FUZZ_CHECK(size == CATCHUP_REQUEST_LEN);
    uint8_t buf[CATCHUP_REQUEST_LEN];
    FUZZ_CHECK(catchup_request_encode(&rq, buf, sizeof(buf)) == CATCHUP_REQUEST_LEN);
    FUZZ_CHECK(memcmp(buf, data, size) == 0);
    struct catchup_request again;
    FUZZ_CHECK(catchup_request_decode(&again, buf, sizeof(buf)) == 0);
    FUZZ_CHECK(again.requester_id == rq.requester_id && again.origin == rq.origin);
    FUZZ_CHECK(again.incarnation == rq.incarnation && again.from_seq == rq.from_seq);
    FUZZ_CHECK(again.max_count == rq.max_count);
}

static void response_round_trip(const uint8_t *data, size_t size)
{
    struct catchup_response h;
    struct catchup_iter it;
    int rv = catchup_response_decode(&h, &it, data, size);
    if (rv != 0) {
        FUZZ_CHECK(rv == -EINVAL || rv == -EMSGSIZE);
        return;
    }
    FUZZ_CHECK(size >= CATCHUP_RESPONSE_HDR_LEN && size <= CATCHUP_RESPONSE_MAX);
    struct catchup_writer w;
    FUZZ_CHECK(catchup_writer_init(&w, frame, sizeof(frame), h.responder_id, h.incarnation,
                                   h.origin, h.first_seq) == 0);
    struct event ev;
    uint32_t n = 0;
    while ((rv = catchup_iter_next(&it, &ev)) == 1) {
        FUZZ_CHECK(ev.origin == h.origin && ev.seq == h.first_seq + n);
        FUZZ_CHECK(catchup_writer_add(&w, &ev) == 0);
        n++;
    }
    FUZZ_CHECK(rv == 0 && n == h.count);
    int len = catchup_writer_finish(&w, h.last_seq);
    FUZZ_CHECK(len >= 0 && (size_t)len == size);
    FUZZ_CHECK(memcmp(frame, data, size) == 0);

    struct catchup_response h2;
    struct catchup_iter it2;
    FUZZ_CHECK(catchup_response_decode(&h2, &it2, frame, (size_t)len) == 0);
    FUZZ_CHECK(h2.responder_id == h.responder_id && h2.origin == h.origin);
    FUZZ_CHECK(h2.more == h.more && h2.incarnation == h.incarnation);
    FUZZ_CHECK(h2.first_seq == h.first_seq && h2.count == h.count);
    FUZZ_CHECK(h2.last_seq == h.last_seq);
    /* the same events again, from the original bytes and from the copy */
    FUZZ_CHECK(catchup_response_decode(&h, &it, data, size) == 0);
    struct event a, b;
    int ra, rb;
    while ((ra = catchup_iter_next(&it, &a)) == 1) {
        rb = catchup_iter_next(&it2, &b);
        FUZZ_CHECK(rb == 1);
        fuzz_event_same(&a, &b);
    }
    FUZZ_CHECK(ra == 0 && catchup_iter_next(&it2, &b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    request_round_trip(data, size);
    response_round_trip(data, size);
    return 0;
}
