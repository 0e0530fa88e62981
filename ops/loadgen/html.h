/* Renders a run as one self-contained HTML page (--html PATH): a header with
 * the run's parameters, summary tiles, and five inline SVG charts drawn here
 * (latency p50/p99 per second over the processor stages, payments/s and
 * errors, the default/fallback share per audit window, the audits, the score
 * breakdown). No external asset, no web font; one tiny inline script only
 * marks, for tests, that the charts laid out. Every outside string is escaped.
 * Runs once after the load, never on the request path. */
#ifndef LG_HTML_H
#define LG_HTML_H

#include "opts.h"
#include "run.h"

#define LG_HTML_CHARTS 5 /* <svg class="chart"> elements in every page */

/* Returns a malloc'ed NUL-terminated page (caller frees), or NULL on ENOMEM.
 * rc is lg_run()'s result; a run that could not be done still renders, with
 * its reason and empty charts. */
char *lg_html_render(const struct lg_opts *o, const struct lg_results *r, int rc);

#endif
