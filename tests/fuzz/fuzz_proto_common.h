/* Field-by-field comparison of decoded proto structs for the round-trip
 * harnesses (memcmp would compare padding). */
#ifndef TESTS_FUZZ_PROTO_COMMON_H
#define TESTS_FUZZ_PROTO_COMMON_H

#include <string.h>

#include "fuzz.h"
#include "proto/event.h"

static inline void fuzz_event_same(const struct event *a, const struct event *b)
{
    FUZZ_CHECK(a->type == b->type && a->origin == b->origin && a->processor == b->processor);
    FUZZ_CHECK(a->seq == b->seq && memcmp(a->id, b->id, sizeof(a->id)) == 0);
    FUZZ_CHECK(a->amount_cents == b->amount_cents && a->at_ms == b->at_ms);
    FUZZ_CHECK(a->trace_flags == b->trace_flags);
    if (a->type == EVENT_PURGED)
        FUZZ_CHECK(a->epoch == b->epoch);
    else
        FUZZ_CHECK(memcmp(&a->trace, &b->trace, sizeof(a->trace)) == 0);
}

#endif
