/* Wire encoding of the gossip heartbeat: a proto/wire.h header of type
 * WIRE_T_HEARTBEAT and one fixed layout, so every valid datagram has exactly
 * HEARTBEAT_WIRE_LEN bytes. Layout after the header (all big-endian):
 *   node_id u8, checker_id u8, flags u8, incarnation u64, counter u64,
 *   last_seq u64 x HEARTBEAT_MAX_ORIGINS,
 *   per processor: count u64, amount_cents i64,
 *   per processor: hflags u8 (bit0 valid, bit1 failing), min_response_ms u32, age_ms u32.
 * Decoding is canonical: only bytes the encoder could produce are accepted. */
#include "proto/heartbeat.h"

#include <errno.h>
#include <string.h>

#include "proto/wire.h"

#define HB_OFF_NODE WIRE_HDR_LEN
#define HB_OFF_CHECKER (HB_OFF_NODE + 1)
#define HB_OFF_FLAGS (HB_OFF_CHECKER + 1)
#define HB_OFF_INC (HB_OFF_FLAGS + 1)
#define HB_OFF_COUNTER (HB_OFF_INC + 8)
#define HB_OFF_SEQ (HB_OFF_COUNTER + 8)
#define HB_OFF_TOTALS (HB_OFF_SEQ + 8 * HEARTBEAT_MAX_ORIGINS)
#define HB_TOTALS_LEN 16
#define HB_OFF_HEALTH (HB_OFF_TOTALS + HB_TOTALS_LEN * HEARTBEAT_PROCESSORS)
#define HB_HEALTH_LEN 9
#define HB_END (HB_OFF_HEALTH + HB_HEALTH_LEN * HEARTBEAT_PROCESSORS)

#define HB_H_VALID 0x01
#define HB_H_FAILING 0x02

_Static_assert(HB_END == HEARTBEAT_WIRE_LEN, "HEARTBEAT_WIRE_LEN matches the layout");
_Static_assert(HEARTBEAT_WIRE_LEN < 512, "a heartbeat fits any UDP datagram");

static int heartbeat_check(const struct heartbeat *hb)
{
    if (hb->node_id == 0 || (hb->flags & ~HEARTBEAT_F_ALL) != 0)
        return -EINVAL;
    for (int i = 0; i < HEARTBEAT_PROCESSORS; i++)
        if (hb->totals[i].amount_cents < 0)
            return -EINVAL;
    return 0;
}

int heartbeat_encode(const struct heartbeat *hb, uint8_t *buf, size_t cap)
{
    if (heartbeat_check(hb) != 0)
        return -EINVAL;
    if (cap < HEARTBEAT_WIRE_LEN)
        return -ENOSPC;
    wire_put_header(buf, WIRE_T_HEARTBEAT, HEARTBEAT_WIRE_LEN);
    wire_put_u8(buf + HB_OFF_NODE, hb->node_id);
    wire_put_u8(buf + HB_OFF_CHECKER, hb->checker_id);
    wire_put_u8(buf + HB_OFF_FLAGS, hb->flags);
    wire_put_u64(buf + HB_OFF_INC, hb->incarnation);
    wire_put_u64(buf + HB_OFF_COUNTER, hb->counter);
    for (int i = 0; i < HEARTBEAT_MAX_ORIGINS; i++)
        wire_put_u64(buf + HB_OFF_SEQ + 8 * i, hb->last_seq[i]);
    for (int i = 0; i < HEARTBEAT_PROCESSORS; i++) {
        uint8_t *p = buf + HB_OFF_TOTALS + HB_TOTALS_LEN * i;
        wire_put_u64(p, hb->totals[i].count);
        wire_put_i64(p + 8, hb->totals[i].amount_cents);
    }
    for (int i = 0; i < HEARTBEAT_PROCESSORS; i++) {
        uint8_t *p = buf + HB_OFF_HEALTH + HB_HEALTH_LEN * i;
        const struct heartbeat_health *h = &hb->health[i];
        wire_put_u8(p, (uint8_t)((h->valid ? HB_H_VALID : 0) | (h->failing ? HB_H_FAILING : 0)));
        wire_put_u32(p + 1, h->min_response_ms);
        wire_put_u32(p + 5, h->age_ms);
    }
    return HEARTBEAT_WIRE_LEN;
}

int heartbeat_decode(struct heartbeat *hb, const uint8_t *buf, size_t len)
{
    uint8_t type;
    uint16_t frame_len;
    int rv = wire_get_header(buf, len, &type, &frame_len);
    if (rv < 0) {
        if (rv == -EMSGSIZE && len > 2 && buf[2] != WIRE_T_HEARTBEAT)
            return -EINVAL;
        return rv;
    }
    if (type != WIRE_T_HEARTBEAT || frame_len != HEARTBEAT_WIRE_LEN)
        return -EINVAL;
    rv = wire_need(len, frame_len);
    if (rv < 0)
        return rv;
    if (len != frame_len)
        return -EINVAL; /* one datagram is one frame: trailing bytes are an error */

    struct heartbeat h;
    memset(&h, 0, sizeof(h));
    h.node_id = wire_get_u8(buf + HB_OFF_NODE);
    h.checker_id = wire_get_u8(buf + HB_OFF_CHECKER);
    h.flags = wire_get_u8(buf + HB_OFF_FLAGS);
    h.incarnation = wire_get_u64(buf + HB_OFF_INC);
    h.counter = wire_get_u64(buf + HB_OFF_COUNTER);
    for (int i = 0; i < HEARTBEAT_MAX_ORIGINS; i++)
        h.last_seq[i] = wire_get_u64(buf + HB_OFF_SEQ + 8 * i);
    for (int i = 0; i < HEARTBEAT_PROCESSORS; i++) {
        const uint8_t *p = buf + HB_OFF_TOTALS + HB_TOTALS_LEN * i;
        h.totals[i].count = wire_get_u64(p);
        h.totals[i].amount_cents = wire_get_i64(p + 8);
    }
    for (int i = 0; i < HEARTBEAT_PROCESSORS; i++) {
        const uint8_t *p = buf + HB_OFF_HEALTH + HB_HEALTH_LEN * i;
        uint8_t f = wire_get_u8(p);
        if ((f & ~(HB_H_VALID | HB_H_FAILING)) != 0)
            return -EINVAL;
        h.health[i].valid = (f & HB_H_VALID) != 0;
        h.health[i].failing = (f & HB_H_FAILING) != 0;
        h.health[i].min_response_ms = wire_get_u32(p + 1);
        h.health[i].age_ms = wire_get_u32(p + 5);
    }
    if (heartbeat_check(&h) != 0)
        return -EINVAL;
    *hb = h;
    return 0;
}
