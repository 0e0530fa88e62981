/* proto/heartbeat: heartbeat_decode on any bytes, and the re-encode round trip
 * of what it accepts (same bytes, same struct). The gossip state machine that
 * consumes it is fuzzed by fuzz_gossip. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "proto/heartbeat.h"

static void heartbeat_same(const struct heartbeat *a, const struct heartbeat *b)
{
    FUZZ_CHECK(a->node_id == b->node_id && a->checker_id == b->checker_id);
    FUZZ_CHECK(a->flags == b->flags && a->incarnation == b->incarnation);
    FUZZ_CHECK(a->counter == b->counter);
    for (int i = 0; i < HEARTBEAT_MAX_ORIGINS; i++)
        FUZZ_CHECK(a->last_seq[i] == b->last_seq[i]);
    for (int i = 0; i < HEARTBEAT_PROCESSORS; i++) {
        FUZZ_CHECK(a->totals[i].count == b->totals[i].count);
        FUZZ_CHECK(a->totals[i].amount_cents == b->totals[i].amount_cents);
        FUZZ_CHECK(a->health[i].valid == b->health[i].valid);
        FUZZ_CHECK(a->health[i].failing == b->health[i].failing);
        FUZZ_CHECK(a->health[i].min_response_ms == b->health[i].min_response_ms);
        FUZZ_CHECK(a->health[i].age_ms == b->health[i].age_ms);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct heartbeat hb;
    int rv = heartbeat_decode(&hb, data, size);
    if (rv != 0) {
        FUZZ_CHECK(rv == -EINVAL || rv == -EMSGSIZE);
        return 0;
    }
    FUZZ_CHECK(size == HEARTBEAT_WIRE_LEN); /* exact length, no trailing bytes */
    FUZZ_CHECK(hb.node_id != 0 && (hb.flags & ~HEARTBEAT_F_ALL) == 0);
    uint8_t buf[HEARTBEAT_WIRE_LEN];
    FUZZ_CHECK(heartbeat_encode(&hb, buf, sizeof(buf)) == HEARTBEAT_WIRE_LEN);
    FUZZ_CHECK(memcmp(buf, data, HEARTBEAT_WIRE_LEN) == 0);
    struct heartbeat again;
    FUZZ_CHECK(heartbeat_decode(&again, buf, sizeof(buf)) == 0);
    heartbeat_same(&hb, &again);
    return 0;
}
