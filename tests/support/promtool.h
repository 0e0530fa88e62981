/* Runs Prometheus's own checker, `promtool check metrics` (Debian's
 * prometheus package, installed by scripts/deps.sh), on exposition text: it
 * parses the text with Prometheus's parser and lints it (counters end in
 * _total, every family has HELP, ...). For tests; blocking. */
#ifndef TESTS_SUPPORT_PROMTOOL_H
#define TESTS_SUPPORT_PROMTOOL_H

#include <stddef.h>

/* 0 when promtool accepts text (no parse error, no lint problem); -1 with its
 * output in why otherwise; -ENOENT when promtool is not installed. */
int promtool_check(const char *text, size_t len, char *why, size_t why_cap);

#endif
