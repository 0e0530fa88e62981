/* The gossip datagram: one small fixed-size UDP payload a node sends to its
 * peer every ~100 ms with its identity (node id, incarnation), its replication
 * digest (last sequence per origin, totals per processor), its health view,
 * whom it believes is the checker, its state flags and a send counter.
 * Encode/decode only, libc only; liveness and election live in node/gossip. */
#ifndef PROTO_HEARTBEAT_H
#define PROTO_HEARTBEAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEARTBEAT_MAX_ORIGINS 4 /* last_seq[i] is origin (node id) i + 1 */
#define HEARTBEAT_PROCESSORS 2  /* index = enum event_processor */

/* State flags of the sender (heartbeat.flags). Unknown bits are rejected. */
#define HEARTBEAT_F_READY 0x01         /* caught up, serving summaries */
#define HEARTBEAT_F_CATCHING_UP 0x02   /* restarted, still asking the peer for events */
#define HEARTBEAT_F_SHUTTING_DOWN 0x04 /* draining; do not elect it checker */
#define HEARTBEAT_F_ALL 0x07

/* One processor as the sender sees it. When valid is false the other fields
 * are ignored by consumers (but still carried as given). */
struct heartbeat_health {
    bool valid;               /* the sender has a result for this processor */
    bool failing;             /* last service-health answer: failing */
    uint32_t min_response_ms; /* last service-health answer: minResponseTime */
    uint32_t age_ms;          /* how old that answer was when this datagram was made */
};

/* Informative only: no node decides anything from them (a summary is always
 * answered from the node's own ledger, exactly, in 128 bits). The sender
 * saturates amount_cents at INT64_MAX when the true sum is larger, so a
 * heartbeat can always be encoded; INT64_MAX reads as "at least that". */
struct heartbeat_totals {
    uint64_t count;       /* payments RECORDED on this processor, all origins */
    int64_t amount_cents; /* their sum, cents, saturated at INT64_MAX; never negative */
};

struct heartbeat {
    uint8_t node_id;      /* sender, 1..255 */
    uint8_t checker_id;   /* node the sender believes is checker; 0 = none */
    uint8_t flags;        /* HEARTBEAT_F_* */
    uint64_t incarnation; /* sender start time, ns since epoch; restart = change */
    uint64_t counter;     /* datagrams sent by this incarnation, from 1 */
    uint64_t last_seq[HEARTBEAT_MAX_ORIGINS]; /* last seq the sender holds per origin; 0 = none */
    struct heartbeat_totals totals[HEARTBEAT_PROCESSORS];
    struct heartbeat_health health[HEARTBEAT_PROCESSORS];
};

/* Exact size of an encoded heartbeat (wire header included): every datagram
 * has this length. Far below the 512 bytes safe for any UDP path. */
#define HEARTBEAT_WIRE_LEN 106

/* Encodes hb into buf as one proto/wire.h frame of type WIRE_T_HEARTBEAT;
 * returns HEARTBEAT_WIRE_LEN, -ENOSPC when cap is too small, -EINVAL when hb
 * is invalid (node_id 0, unknown flag bits, negative totals). Pure. */
int heartbeat_encode(const struct heartbeat *hb, uint8_t *buf, size_t cap)
    __attribute__((warn_unused_result));

/* Decodes one datagram buf[0..len) into hb (written only on success). Returns
 * 0, -EMSGSIZE when len is shorter than the frame, -EINVAL for anything else
 * (bad magic, version, type or length field, trailing bytes, node_id 0,
 * unknown flag bits, negative totals). Never reads past len. */
int heartbeat_decode(struct heartbeat *hb, const uint8_t *buf, size_t len)
    __attribute__((warn_unused_result));

#endif
