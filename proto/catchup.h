/* Catch-up over nng req/rep: a node that missed events (a gap in pub/sub, a
 * digest showing the peer ahead, a restart) asks "events of origin X from
 * sequence N, at most M"; the peer answers with a header and up to count
 * consecutive events of that origin, each a length-prefixed proto/event frame.
 * Encode/decode only, libc only; what to ask and when belongs to node/peer. */
#ifndef PROTO_CATCHUP_H
#define PROTO_CATCHUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/event.h"

#define CATCHUP_REQUEST_LEN 27      /* exact frame length of a request */
#define CATCHUP_RESPONSE_HDR_LEN 36 /* response frame without its events */
#define CATCHUP_RESPONSE_MAX 65535  /* a response frame never exceeds this (u16 length) */
/* Smallest buffer a response writer accepts: room for at least one event. */
#define CATCHUP_RESPONSE_MIN_CAP (CATCHUP_RESPONSE_HDR_LEN + 1 + EVENT_WIRE_MAX)

struct catchup_request {
    uint8_t requester_id; /* node id asking, 1..255 */
    uint8_t origin;       /* whose events, 1..255 */
    uint64_t incarnation; /* requester's incarnation (start time, ns) */
    uint64_t from_seq;    /* first sequence wanted, >= 1 */
    uint32_t max_count;   /* at most this many events, >= 1 */
};

/* Encodes rq; returns CATCHUP_REQUEST_LEN, -ENOSPC (cap too small) or -EINVAL
 * (an id 0, from_seq 0, max_count 0). */
int catchup_request_encode(const struct catchup_request *rq, uint8_t *buf, size_t cap)
    __attribute__((warn_unused_result));

/* Decodes one request frame of exactly len bytes into rq (written only on
 * success). Returns 0, -EMSGSIZE (truncated) or -EINVAL (bad magic, version,
 * type, length, trailing bytes, invalid field). Never reads past len. */
int catchup_request_decode(struct catchup_request *rq, const uint8_t *buf, size_t len)
    __attribute__((warn_unused_result));

struct catchup_response {
    uint8_t responder_id; /* node id answering, 1..255 */
    uint8_t origin;       /* as asked */
    bool more;            /* more events of origin follow the last one sent:
                             count > 0 && first_seq + count - 1 < last_seq */
    uint64_t incarnation; /* responder's incarnation */
    uint64_t first_seq;   /* seq of the first event (the request's from_seq), >= 1 */
    uint32_t count;       /* events in the frame, seqs first_seq .. first_seq + count - 1 */
    uint64_t last_seq;    /* responder's last seq for origin when it answered; 0 = none.
                             count 0 with first_seq <= last_seq: it cannot serve the range */
};

/* Builds a response frame in caller storage: init, add events in order, finish. */
struct catchup_writer {
    uint8_t *buf;
    size_t cap; /* min(buffer size, CATCHUP_RESPONSE_MAX) */
    size_t len; /* bytes written so far, header included */
    struct catchup_response hdr;
};

/* Starts a response in buf[0..cap). Returns 0, -ENOSPC when cap is below
 * CATCHUP_RESPONSE_MIN_CAP, -EINVAL for an id 0 or first_seq 0. */
int catchup_writer_init(struct catchup_writer *w, uint8_t *buf, size_t cap, uint8_t responder_id,
                        uint64_t incarnation, uint8_t origin, uint64_t first_seq)
    __attribute__((warn_unused_result));

/* Appends ev, which must be of the response's origin with seq first_seq +
 * count. Returns 0, -ENOSPC when the frame is full (the writer is unchanged:
 * finish it and let the requester ask again), -EINVAL for an event that is
 * invalid, of another origin or out of sequence. */
int catchup_writer_add(struct catchup_writer *w, const struct event *ev)
    __attribute__((warn_unused_result));

/* Completes the frame with the responder's last seq for the origin and sets
 * `more` from it. Returns the frame length, or -EINVAL when last_seq is below
 * the last event added. */
int catchup_writer_finish(struct catchup_writer *w, uint64_t last_seq)
    __attribute__((warn_unused_result));

/* Walks the events of a decoded response. Points into the caller's buffer. */
struct catchup_iter {
    const uint8_t *buf;
    size_t len;
    size_t off;    /* next event's length prefix */
    uint32_t left; /* events not yet returned */
    uint8_t origin;
    uint64_t next_seq; /* seq the next event must carry */
};

/* Decodes a response frame of exactly len bytes: the header into hdr and an
 * iterator over its events into it. The whole frame is validated first (every
 * event decodes, belongs to origin, carries the expected consecutive seq, and
 * the prefixes add up to the frame length), so a caller can apply events as it
 * iterates without a partial apply on bad input. Returns 0, -EMSGSIZE
 * (truncated) or -EINVAL (anything malformed). hdr and it are written only on
 * success. buf must stay unchanged while iterating. */
int catchup_response_decode(struct catchup_response *hdr, struct catchup_iter *it,
                            const uint8_t *buf, size_t len) __attribute__((warn_unused_result));

/* Next event into ev: returns 1, 0 at the end, or -EINVAL if the buffer was
 * changed since decode (checks are repeated, never an over-read). */
int catchup_iter_next(struct catchup_iter *it, struct event *ev)
    __attribute__((warn_unused_result));

#endif
