/* Decimal text <-> int64 cents, exact both ways. No floating point anywhere. */
#ifndef LIB_MONEY_H
#define LIB_MONEY_H

#include <stddef.h>
#include <stdint.h>

#define MONEY_MAX_CENTS INT64_C(100000000000000) /* 1e12 units: room for sums of billions */
#define MONEY_FMT_MAX 24                         /* enough for "-92233720368547758.08" + NUL */

/* Parses a JSON number's text as an amount: digits, optional '.', optional
 * exponent (e/E, sign). The value must be exactly representable in cents
 * (19.9, 19.90, 19.900 and 1.99e1 are all 1990; 19.901 is not) and within
 * 1..MONEY_MAX_CENTS. Returns 0; -EINVAL for text that is not a JSON number;
 * -EDOM for a valid number that is not a positive whole number of cents or is
 * too large (the caller answers 422 for -EDOM, 400 for -EINVAL). */
int money_parse_cents(const char *s, size_t len, int64_t *out_cents)
    __attribute__((warn_unused_result));

/* Writes cents as a decimal with exactly two fraction digits ("0.00",
 * "19.90", "-3.05") plus NUL; returns the length without the NUL. buf must
 * hold MONEY_FMT_MAX bytes. */
size_t money_format(int64_t cents, char *buf);

#endif
