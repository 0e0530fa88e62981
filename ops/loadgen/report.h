/* Renders a run's results as one JSON document (the report printed to stdout
 * and optionally written to --report PATH). */
#ifndef LG_REPORT_H
#define LG_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "opts.h"
#include "run.h"

/* Returns a malloc'ed NUL-terminated JSON text (caller frees), or NULL on
 * ENOMEM. rc is lg_run()'s result (a failed setup is reported as such). */
char *lg_report_render(const struct lg_opts *o, const struct lg_results *r, int rc);

/* Latency in microseconds (fractional ns allowed) as milliseconds text with 3
 * decimals, e.g. 1234567 ns -> "1.235". buf holds 32 bytes. */
void lg_report_ms(uint64_t ns, char *buf);

/* True when js[0..len) is exactly one RFC 8259 JSON value (whitespace around
 * allowed), nesting at most 64 deep. Used to self-check reports and in tests. */
bool lg_json_valid(const char *js, size_t len);

#endif
