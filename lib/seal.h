/* Authenticated encryption of the messages between the two nodes (gossip
 * datagrams, the fast lane, the nng stream and its repairs), with libsodium's
 * XChaCha20-Poly1305. A sealed message is a 20-byte header in the clear
 * (magic, version, sender id, channel, sender incarnation, counter), bound to
 * the ciphertext as associated data, then the ciphertext, then a 16-byte tag.
 * The nonce is made of the header's incarnation, counter, sender and channel,
 * so it never repeats under one key as long as a sender's incarnation (its
 * start time in ns) is new at every start and its counter only grows.
 *
 * Receiving checks, in this order: the frame holds together, the tag (so
 * nothing unauthenticated is ever looked at), then replays: per channel, the
 * sender's incarnation must not go back, and within an incarnation a counter
 * is accepted once, in a window of the last SEAL_WINDOW counters (datagrams
 * may be reordered). It does not decide who the sender may be beyond "not
 * ourselves": the caller knows its peer. */
#ifndef LIB_SEAL_H
#define LIB_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEAL_KEY_LEN 32
#define SEAL_KEY_MATERIAL_MIN 32 /* bytes of PEER_KEY at least */
#define SEAL_MAGIC 0xB8 /* not proto/wire.h's 0xB7: a plain frame is never taken for sealed */
#define SEAL_VERSION 1
#define SEAL_HDR_LEN 20
#define SEAL_TAG_LEN 16
#define SEAL_OVERHEAD (SEAL_HDR_LEN + SEAL_TAG_LEN)
#define SEAL_WINDOW 64 /* counters remembered below the highest seen */

/* Channels: each has its own counter at the sender and its own replay window
 * at the receiver. */
enum seal_channel {
    SEAL_CH_NONE = 0,
    SEAL_CH_UDP,    /* gossip's socket: heartbeats and fast-lane frames */
    SEAL_CH_STREAM, /* nng pub/sub */
    SEAL_CH_REQ,    /* nng req -> rep */
    SEAL_CH_REP,    /* nng rep -> req */
    SEAL_CH_COUNT,
};

struct seal_key {
    uint8_t k[SEAL_KEY_LEN];
};

/* Initialises libsodium once; 0 or -EIO. Safe to call more than once. */
int seal_global_init(void) __attribute__((warn_unused_result));

/* Derives the key from the shared secret material (at least
 * SEAL_KEY_MATERIAL_MIN bytes, e.g. PEER_KEY) with BLAKE2b. 0 or -EINVAL. */
int seal_key_derive(struct seal_key *key, const void *material, size_t len)
    __attribute__((warn_unused_result));

/* One sender on one channel. */
struct seal_tx {
    const struct seal_key *key;
    uint8_t sender;       /* our node id, 1..255 */
    uint8_t channel;      /* enum seal_channel */
    uint64_t incarnation; /* ours, new at every start */
    uint64_t counter;     /* last used; the next message gets counter + 1 */
};

void seal_tx_init(struct seal_tx *tx, const struct seal_key *key, uint8_t sender,
                  enum seal_channel channel, uint64_t incarnation);

/* Seals in[0..len) into out (cap >= len + SEAL_OVERHEAD; in and out must not
 * overlap). Returns the sealed length, or -ENOSPC. */
int seal_wrap(struct seal_tx *tx, const uint8_t *in, size_t len, uint8_t *out, size_t cap)
    __attribute__((warn_unused_result));

/* One receiver on one channel. */
struct seal_rx {
    const struct seal_key *key;
    uint8_t self;         /* our node id: messages claiming it are refused */
    uint8_t channel;      /* enum seal_channel */
    bool have;            /* something accepted since init or reset */
    uint8_t sender;       /* of the last accepted message */
    uint64_t incarnation; /* of the last accepted message */
    uint64_t top;         /* highest counter accepted in that incarnation */
    uint64_t window;      /* bit i: counter top - i accepted */
};

void seal_rx_init(struct seal_rx *rx, const struct seal_key *key, uint8_t self,
                  enum seal_channel channel);
/* Forgets the sender's incarnation, so that any incarnation is taken again (a
 * new pairing). The node never calls it on a peer's death: an older
 * incarnation must stay refused (docs/SECURITY.md, "Replays and restarts"). */
void seal_rx_reset(struct seal_rx *rx);

/* What seal_open tells of the sender (valid when it returns 0). */
struct seal_from {
    uint8_t sender;
    uint64_t incarnation;
    uint64_t counter;
};

/* Opens a sealed message in[0..len) into out (cap >= len - SEAL_OVERHEAD; may
 * not overlap in). Returns 0 with *out_len and *from set; -EBADMSG when it is
 * not a sealed frame of this channel, claims our own id, or fails
 * authentication (wrong key, tampered, truncated); -EALREADY for a replay or a
 * counter older than the window; -ESTALE for an older incarnation than the
 * last accepted. Only an authentic, fresh message changes rx. */
int seal_open(struct seal_rx *rx, const uint8_t *in, size_t len, uint8_t *out, size_t cap,
              size_t *out_len, struct seal_from *from) __attribute__((warn_unused_result));

#endif
