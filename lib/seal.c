/* Sealed messages between the two nodes (contract in seal.h). */
#include "lib/seal.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>


#define SEAL_NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
_Static_assert(SEAL_TAG_LEN == crypto_aead_xchacha20poly1305_ietf_ABYTES, "tag length");
_Static_assert(SEAL_KEY_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key length");
_Static_assert(SEAL_NONCE_LEN == 24, "nonce layout below");

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Header: magic, version, sender, channel, incarnation (u64), counter (u64),
 * big-endian. */
static void put_header(uint8_t *h, uint8_t sender, uint8_t channel, uint64_t inc, uint64_t ctr)
{
    h[0] = SEAL_MAGIC;
    h[1] = SEAL_VERSION;
    h[2] = sender;
    h[3] = channel;
    put_u64(h + 4, inc);
    put_u64(h + 12, ctr);
}

/* incarnation | counter | sender | channel | 6 zero bytes. */
static void make_nonce(uint8_t *n, const uint8_t *hdr)
{
    memcpy(n, hdr + 4, 16);
    n[16] = hdr[2];
    n[17] = hdr[3];
    memset(n + 18, 0, SEAL_NONCE_LEN - 18);
}

int seal_global_init(void)
{
    return sodium_init() < 0 ? -EIO : 0;
}

int seal_key_derive(struct seal_key *key, const void *material, size_t len)
{
    static const char context[] = "paynode peer key v1";
    if (material == NULL || len < SEAL_KEY_MATERIAL_MIN)
        return -EINVAL;
    crypto_generichash_state st;
    if (crypto_generichash_init(&st, (const unsigned char *)context, sizeof(context) - 1,
                                SEAL_KEY_LEN) != 0 ||
        crypto_generichash_update(&st, material, len) != 0 ||
        crypto_generichash_final(&st, key->k, SEAL_KEY_LEN) != 0)
        return -EINVAL;
    return 0;
}

void seal_tx_init(struct seal_tx *tx, const struct seal_key *key, uint8_t sender,
                  enum seal_channel channel, uint64_t incarnation)
{
    *tx = (struct seal_tx){
        .key = key, .sender = sender, .channel = (uint8_t)channel, .incarnation = incarnation};
}

int seal_wrap(struct seal_tx *tx, const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    if (cap < SEAL_OVERHEAD || len > cap - SEAL_OVERHEAD || len > INT32_MAX)
        return -ENOSPC;
    put_header(out, tx->sender, tx->channel, tx->incarnation, ++tx->counter);
    uint8_t nonce[SEAL_NONCE_LEN];
    make_nonce(nonce, out);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + SEAL_HDR_LEN, &clen, in, len, out,
                                               SEAL_HDR_LEN, NULL, nonce, tx->key->k);
    return (int)(SEAL_HDR_LEN + clen);
}

void seal_rx_init(struct seal_rx *rx, const struct seal_key *key, uint8_t self,
                  enum seal_channel channel)
{
    *rx = (struct seal_rx){.key = key, .self = self, .channel = (uint8_t)channel};
}

void seal_rx_reset(struct seal_rx *rx)
{
    rx->have = false;
    rx->window = 0;
    rx->top = 0;
}

/* Whether counter ctr of the current incarnation was seen or is too old. */
static int replay_check(const struct seal_rx *rx, uint64_t ctr)
{
    if (ctr > rx->top)
        return 0;
    uint64_t back = rx->top - ctr;
    if (back >= SEAL_WINDOW)
        return -EALREADY;
    return (rx->window >> back) & 1u ? -EALREADY : 0;
}

static void replay_mark(struct seal_rx *rx, uint64_t ctr)
{
    if (ctr > rx->top) {
        uint64_t shift = ctr - rx->top;
        rx->window = shift >= SEAL_WINDOW ? 0 : rx->window << shift;
        rx->top = ctr;
    }
    rx->window |= 1ull << (rx->top - ctr);
}

int seal_open(struct seal_rx *rx, const uint8_t *in, size_t len, uint8_t *out, size_t cap,
              size_t *out_len, struct seal_from *from)
{
    if (len < SEAL_OVERHEAD || in[0] != SEAL_MAGIC || in[1] != SEAL_VERSION ||
        in[3] != rx->channel || in[2] == 0 || in[2] == rx->self)
        return -EBADMSG;
    size_t plen = len - SEAL_OVERHEAD;
    if (cap < plen)
        return -EBADMSG;
    uint8_t sender = in[2];
    uint64_t inc = get_u64(in + 4);
    uint64_t ctr = get_u64(in + 12);
    if (ctr == 0)
        return -EBADMSG; /* counters start at 1 */
    uint8_t nonce[SEAL_NONCE_LEN];
    make_nonce(nonce, in);
    unsigned long long mlen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &mlen, NULL, in + SEAL_HDR_LEN,
                                                   len - SEAL_HDR_LEN, in, SEAL_HDR_LEN, nonce,
                                                   rx->key->k) != 0)
        return -EBADMSG;
    bool same = rx->have && sender == rx->sender && inc == rx->incarnation;
    if (rx->have && sender == rx->sender && inc < rx->incarnation)
        return -ESTALE;
    if (same) {
        int rv = replay_check(rx, ctr);
        if (rv != 0)
            return rv;
    } else {
        /* A new incarnation (or the first message, or another sender):
         * its counters start afresh. */
        rx->have = true;
        rx->sender = sender;
        rx->incarnation = inc;
        rx->top = 0;
        rx->window = 0;
    }
    replay_mark(rx, ctr);
    *out_len = (size_t)mlen;
    if (from)
        *from = (struct seal_from){.sender = sender, .incarnation = inc, .counter = ctr};
    return 0;
}
