/* Wall-clock time for payment timestamps and ISO-8601 UTC parse/format.
 * Monotonic time for timeouts comes from uv_now(); this module is for the
 * timestamps that cross the wire (requestedAt, summary bounds). */
#ifndef LIB_CLOCK_H
#define LIB_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#define CLOCK_ISO_LEN 24 /* "2025-07-15T12:34:56.000Z" without the NUL */

/* Milliseconds since the Unix epoch, UTC (CLOCK_REALTIME). */
int64_t clock_wall_ms(void);

/* Parses an ISO-8601 UTC timestamp "YYYY-MM-DDTHH:MM:SS[.fraction]Z" (fraction
 * of any length, or none; 'Z' or "+00:00" accepted) into nanoseconds since the
 * epoch. Digits beyond nanoseconds are dropped toward -inf, or toward +inf when
 * round_up is true, so that a bound compares exactly with any stored time.
 * Returns 0, or -EINVAL for anything else (out-of-range fields, junk, trailing
 * bytes). Years 1970..2200 only. */
int clock_parse_iso(const char *s, size_t len, int round_up, int64_t *out_ns)
    __attribute__((warn_unused_result));

/* Formats ms since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (at least
 * CLOCK_ISO_LEN + 1 bytes); returns CLOCK_ISO_LEN. */
size_t clock_format_iso_ms(int64_t ms, char *buf);

#endif
