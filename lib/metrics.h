/* Prometheus text exposition (format 0.0.4) into a struct buf: one call per
 * sample (name, help, type, labels, value), or per histogram series. The "# HELP" and "# TYPE"
 * lines are written once, before the first sample of each family; the samples of a family must
 * therefore be written one after the other. Label values are escaped; names are the caller's
 * constants and only checked by assert(). No I/O, no allocation beyond the buffer's growth. */
#ifndef LIB_METRICS_H
#define LIB_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define METRICS_NAME_MAX 96 /* longest metric name, NUL included */

enum metrics_type {
    METRICS_COUNTER = 0,
    METRICS_GAUGE,
    METRICS_HISTOGRAM, /* written by metrics_histogram() only */
};

/* The content type of what this module writes (an HTTP Content-Type value). */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4"

struct metrics {
    struct buf *out;               /* borrowed; the text is appended here */
    char family[METRICS_NAME_MAX]; /* family of the last sample written */
    int err;                       /* first error (-ENOMEM), sticky */
};

/* Starts writing into out (appends after what out holds). Cannot fail. */
void metrics_init(struct metrics *m, struct buf *out);

/* One sample. labels is NULL or a NULL-terminated list of name, value
 * pairs: (const char *[]){"result", "accepted", NULL}. help must be one line
 * without a backslash. On error the text is cut at the last whole line and
 * metrics_error() says why. */
void metrics_u64(struct metrics *m, const char *name, const char *help, enum metrics_type type,
                 const char *const *labels, uint64_t value);
void metrics_i64(struct metrics *m, const char *name, const char *help, enum metrics_type type,
                 const char *const *labels, int64_t value);

/* One histogram series: name_bucket{labels...,le="<bound>"} with the
 * cumulative count for each of the nbounds ascending finite bounds and for
 * "+Inf", then name_sum and name_count, under one "# TYPE name histogram".
 * counts holds nbounds + 1 per-bucket (not cumulative) counts, the last one
 * for the values above every bound; sum is the sum of the values. Bounds and
 * sum are written in plain decimal (no exponent). labels as for metrics_u64()
 * and must not contain "le". The series of one family follow each other.
 * On error the whole series is cut, as a sample is. */
void metrics_histogram(struct metrics *m, const char *name, const char *help,
                       const char *const *labels, const double *bounds, size_t nbounds,
                       const uint64_t *counts, double sum);

/* 0, or the first error (-ENOMEM) met since metrics_init(). */
int metrics_error(const struct metrics *m);

#endif
