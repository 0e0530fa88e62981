/* proto/event: event_decode on any bytes never reads past the input, and what
 * it accepts re-encodes to exactly the bytes it consumed (decoding is
 * canonical), which decode again to the same event. */
#include <errno.h>
#include <string.h>

#include "fuzz_proto_common.h"
#include "proto/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct event ev;
    int n = event_decode(&ev, data, size);
    if (n < 0) {
        FUZZ_CHECK(n == -EINVAL || n == -EMSGSIZE);
        return 0;
    }
    FUZZ_CHECK(n > 0 && (size_t)n <= size && n <= EVENT_WIRE_MAX);
    uint8_t buf[EVENT_WIRE_MAX];
    int m = event_encode(&ev, buf, sizeof(buf));
    FUZZ_CHECK(m == n);
    FUZZ_CHECK(memcmp(buf, data, (size_t)n) == 0);
    /* Every shorter buffer is refused as truncated, never half-decoded. */
    FUZZ_CHECK(event_encode(&ev, buf, (size_t)n - 1) == -ENOSPC);
    struct event again;
    FUZZ_CHECK(event_decode(&again, buf, (size_t)m) == m);
    fuzz_event_same(&ev, &again);
    for (int cut = 0; cut < n; cut++) {
        struct event part;
        FUZZ_CHECK(event_decode(&part, buf, (size_t)cut) < 0);
    }
    return 0;
}
