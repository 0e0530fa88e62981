/* Prometheus text writer (see metrics.h). Each sample is appended piece by
 * piece and, on an allocation failure, the buffer is cut back to where the
 * sample (with its HELP/TYPE lines) started, so the text stays whole lines. */
#include "lib/metrics.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#ifndef NDEBUG /* used in assert() only */
static bool name_ok(const char *s)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == ':'))
            return false;
    }
    return true;
}
#endif

void metrics_init(struct metrics *m, struct buf *out)
{
    *m = (struct metrics){.out = out};
}

int metrics_error(const struct metrics *m)
{
    return m->err;
}

static void put(struct metrics *m, const char *s, size_t n)
{
    if (m->err == 0)
        m->err = buf_append(m->out, s, n);
}

static void puts_(struct metrics *m, const char *s)
{
    put(m, s, strlen(s));
}

/* A label value: backslash, double quote and line feed are escaped. */
static void put_label_value(struct metrics *m, const char *v)
{
    for (const char *run = v;; v++) {
        const char *esc = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;
        if (esc || *v == '\0') {
            put(m, run, (size_t)(v - run));
            if (!esc)
                return;
            puts_(m, esc);
            run = v + 1;
        }
    }
}

/* One sample: HELP and TYPE first if it starts a family, then the line
 * with the formatted value num. */
static void sample(struct metrics *m, const char *name, const char *help, enum metrics_type type,
                   const char *const *labels, const char *num)
{
    assert(name_ok(name) && strlen(name) < METRICS_NAME_MAX);
    assert(help && !strchr(help, '\n') && !strchr(help, '\\'));
    size_t start = m->out->len;
    if (strcmp(m->family, name) != 0) {
        puts_(m, "# HELP ");
        puts_(m, name);
        puts_(m, " ");
        puts_(m, help);
        puts_(m, "\n# TYPE ");
        puts_(m, name);
        puts_(m, type == METRICS_COUNTER ? " counter\n" : " gauge\n");
    }
    puts_(m, name);
    if (labels && labels[0]) {
        puts_(m, "{");
        for (int i = 0; labels[i]; i += 2) {
            assert(name_ok(labels[i]) && labels[i + 1]);
            if (i > 0)
                puts_(m, ",");
            puts_(m, labels[i]);
            puts_(m, "=\"");
            put_label_value(m, labels[i + 1]);
            puts_(m, "\"");
        }
        puts_(m, "}");
    }
    puts_(m, " ");
    puts_(m, num);
    puts_(m, "\n");
    if (m->err != 0) {
        m->out->len = start; /* whole lines only */
        return;
    }
    snprintf(m->family, sizeof(m->family), "%s", name);
}

void metrics_u64(struct metrics *m, const char *name, const char *help, enum metrics_type type,
                 const char *const *labels, uint64_t value)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRIu64, value);
    sample(m, name, help, type, labels, num);
}

void metrics_i64(struct metrics *m, const char *name, const char *help, enum metrics_type type,
                 const char *const *labels, int64_t value)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRId64, value);
    sample(m, name, help, type, labels, num);
}
