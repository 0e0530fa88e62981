/* Replication frames between the two nodes (libc only):
 *  - a batch, published on nng pub/sub or sent as one datagram: the sender's
 *    id and incarnation, a cumulative acknowledgement of the receiver's events
 *    ("I hold your incarnation I up to seq N"), then 0..n event frames
 *    (proto/event.h) back to back. A batch with no events is a pure
 *    acknowledgement. Its type byte says whether the sender waits for an
 *    acknowledgement (WIRE_T_REPL_BATCH_ACK) or not (WIRE_T_REPL_BATCH).
 *  - a snapshot request/response, over nng req/rep: a restarted node asks for
 *    the peer's whole ledger in chunks of payment records, walking the peer's
 *    pool by a cursor.
 * Every frame starts with a proto/wire.h header; decoding validates the whole
 * frame before anything is returned and never reads past the given length. */
#ifndef PROTO_REPL_H
#define PROTO_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/event.h"
#include "proto/wire.h" /* WIRE_T_REPL_BATCH, WIRE_T_SNAP_* */

#define REPL_BATCH_HDR_LEN                                                                         \
    32                       /* wire header, sender, incarnation, ack_incarnation, ack_seq, count */
#define REPL_FRAME_MAX 65535 /* u16 frame length */

struct repl_batch {
    uint8_t sender_id;        /* 1..255 */
    uint64_t incarnation;     /* sender's incarnation */
    uint64_t ack_incarnation; /* incarnation of the receiver being acknowledged; 0 = no ack */
    uint64_t ack_seq;         /* receiver's events held by the sender, cumulative */
    uint16_t count;           /* events in the frame */
    bool ack_wanted;          /* the sender waits for an acknowledgement: answer at once
                                 (sent as type WIRE_T_REPL_BATCH_ACK) */
};

struct repl_writer {
    uint8_t *buf;
    size_t cap; /* min(buffer size, REPL_FRAME_MAX) */
    size_t len;
    struct repl_batch hdr;
};

/* Starts a batch in buf[0..cap); hdr.count is ignored (counted by add).
 * Returns 0, -ENOSPC (cap below header + one event), -EINVAL (sender 0). */
int repl_writer_init(struct repl_writer *w, uint8_t *buf, size_t cap, const struct repl_batch *hdr)
    __attribute__((warn_unused_result));
/* Appends an event of the sender's origin. -ENOSPC when full (unchanged), -EINVAL. */
int repl_writer_add(struct repl_writer *w, const struct event *ev)
    __attribute__((warn_unused_result));
/* Returns the frame length. */
size_t repl_writer_finish(struct repl_writer *w);

struct repl_iter {
    const uint8_t *buf;
    size_t len, off;
    uint16_t left;
};

/* Decodes a batch frame of exactly len bytes (all its events are checked to
 * decode, to be of origin sender_id and to have increasing seqs). Returns 0,
 * -EMSGSIZE (truncated), -EINVAL (malformed). */
int repl_batch_decode(struct repl_batch *hdr, struct repl_iter *it, const uint8_t *buf, size_t len)
    __attribute__((warn_unused_result));
/* Next event: 1, 0 at the end, -EINVAL if the buffer changed under the iterator. */
int repl_iter_next(struct repl_iter *it, struct event *ev) __attribute__((warn_unused_result));

/* Snapshot. */
#define SNAP_REQUEST_LEN 22
#define SNAP_RESPONSE_HDR_LEN 37
#define SNAP_RECORD_LEN 44
#define SNAP_MAX_RECORDS ((REPL_FRAME_MAX - SNAP_RESPONSE_HDR_LEN) / SNAP_RECORD_LEN)

struct snap_request {
    uint8_t requester_id;
    uint64_t incarnation;
    uint32_t cursor;    /* first pool index wanted (0 to start) */
    uint32_t max_count; /* 1..SNAP_MAX_RECORDS */
};

struct snap_record {
    uint8_t id[16];
    int64_t amount_cents; /* > 0 */
    int64_t accepted_ms;
    int64_t requested_at_ms;
    uint8_t state;     /* 0 accepted, 1 sending, 2 recorded (node/ledger.h enum values) */
    uint8_t processor; /* 0/1 */
    uint8_t owner;     /* node id, 1..255 */
    uint8_t failed;    /* bit mask of processors, 0..3 */
};

struct snap_response {
    uint8_t responder_id;
    uint64_t incarnation; /* responder's */
    uint64_t purge_epoch; /* responder's purge epoch; a change mid-walk restarts it */
    uint64_t own_seq;     /* responder's last seq of its own events when it answered */
    uint32_t next_cursor; /* where to continue; == cursor end when done */
    bool done;            /* no more records after these */
    uint16_t count;
};

int snap_request_encode(const struct snap_request *rq, uint8_t *buf, size_t cap)
    __attribute__((warn_unused_result));
int snap_request_decode(struct snap_request *rq, const uint8_t *buf, size_t len)
    __attribute__((warn_unused_result));

/* Encodes header + count records; returns the length, -ENOSPC, -EINVAL. */
int snap_response_encode(const struct snap_response *hdr, const struct snap_record *recs,
                         uint8_t *buf, size_t cap) __attribute__((warn_unused_result));
/* Decodes the header and validates every record; records are then read with
 * snap_response_record(buf, i). Returns 0, -EMSGSIZE, -EINVAL. */
int snap_response_decode(struct snap_response *hdr, const uint8_t *buf, size_t len)
    __attribute__((warn_unused_result));
/* Record i (< hdr.count) of a frame that snap_response_decode accepted. */
void snap_response_record(const uint8_t *buf, uint16_t i, struct snap_record *out);

#endif
