/* A strict checker of the Prometheus text exposition format (0.0.4), for
 * tests: every line is a "# HELP", a "# TYPE" or a sample; HELP and TYPE at
 * most once per family and before its samples; the samples of a family
 * together; names and label names well formed; label values quoted with only
 * \\, \" and \n escapes; values are numbers; no series twice; text ends with
 * a line feed. A histogram family's samples are its name_bucket (with an le
 * label), name_sum and name_count lines. */
#ifndef TESTS_PROMCHECK_H
#define TESTS_PROMCHECK_H

#include <stddef.h>

/* 0 if text (len bytes) is valid; else -1 with a one-line reason (naming the
 * line number) in why. */
int promcheck(const char *text, size_t len, char *why, size_t why_cap);

#endif
