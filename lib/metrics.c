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

static const char *type_name(enum metrics_type type)
{
    return type == METRICS_COUNTER ? "counter" : type == METRICS_GAUGE ? "gauge" : "histogram";
}

/* "# HELP" and "# TYPE" when name starts a new family. */
static void family_head(struct metrics *m, const char *name, const char *help,
                        enum metrics_type type)
{
    assert(name_ok(name) && strlen(name) < METRICS_NAME_MAX);
    assert(help && !strchr(help, '\n') && !strchr(help, '\\'));
    if (strcmp(m->family, name) == 0)
        return;
    puts_(m, "# HELP ");
    puts_(m, name);
    puts_(m, " ");
    puts_(m, help);
    puts_(m, "\n# TYPE ");
    puts_(m, name);
    puts_(m, " ");
    puts_(m, type_name(type));
    puts_(m, "\n");
}

/* One line: name, suffix, the labels plus an optional last one (extra, NULL
 * for none, with its value extra_v), and the formatted value num. */
static void line(struct metrics *m, const char *name, const char *suffix, const char *const *labels,
                 const char *extra, const char *extra_v, const char *num)
{
    puts_(m, name);
    puts_(m, suffix);
    bool any = labels && labels[0];
    if (any || extra) {
        puts_(m, "{");
        int i = 0;
        for (; any && labels[i]; i += 2) {
            assert(name_ok(labels[i]) && labels[i + 1]);
            assert(!extra || strcmp(labels[i], extra) != 0);
            if (i > 0)
                puts_(m, ",");
            puts_(m, labels[i]);
            puts_(m, "=\"");
            put_label_value(m, labels[i + 1]);
            puts_(m, "\"");
        }
        if (extra) {
            if (i > 0)
                puts_(m, ",");
            puts_(m, extra);
            puts_(m, "=\"");
            put_label_value(m, extra_v);
            puts_(m, "\"");
        }
        puts_(m, "}");
    }
    puts_(m, " ");
    puts_(m, num);
    puts_(m, "\n");
}

/* Ends what started at byte start: cut back on error (whole lines only),
 * else the family is now name. */
static void finish(struct metrics *m, const char *name, size_t start)
{
    if (m->err != 0) {
        m->out->len = start;
        return;
    }
    snprintf(m->family, sizeof(m->family), "%s", name);
}

/* One sample: HELP and TYPE first if it starts a family, then the line
 * with the formatted value num. */
static void sample(struct metrics *m, const char *name, const char *help, enum metrics_type type,
                   const char *const *labels, const char *num)
{
    assert(type != METRICS_HISTOGRAM);
    size_t start = m->out->len;
    family_head(m, name, help, type);
    line(m, name, "", labels, NULL, NULL, num);
    finish(m, name, start);
}

/* v in plain decimal, at most 9 digits after the point, no trailing zeros
 * ("0.00005", "10", "1.5"). */
static void fmt_decimal(double v, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%.9f", v);
    if (n <= 0 || (size_t)n >= cap)
        return;
    char *dot = strchr(out, '.');
    if (!dot)
        return;
    char *e = out + n;
    while (e > dot + 1 && e[-1] == '0')
        e--;
    if (e == dot + 1)
        e = dot;
    *e = '\0';
}

void metrics_histogram(struct metrics *m, const char *name, const char *help,
                       const char *const *labels, const double *bounds, size_t nbounds,
                       const uint64_t *counts, double sum)
{
    char le[48], num[48];
    size_t start = m->out->len;
    family_head(m, name, help, METRICS_HISTOGRAM);
    uint64_t cum = 0;
    for (size_t i = 0; i <= nbounds; i++) {
        assert(i == 0 || i == nbounds || bounds[i] > bounds[i - 1]);
        cum += counts[i];
        if (i < nbounds)
            fmt_decimal(bounds[i], le, sizeof(le));
        else
            snprintf(le, sizeof(le), "+Inf");
        snprintf(num, sizeof(num), "%" PRIu64, cum);
        line(m, name, "_bucket", labels, "le", le, num);
    }
    fmt_decimal(sum, num, sizeof(num));
    line(m, name, "_sum", labels, NULL, NULL, num);
    snprintf(num, sizeof(num), "%" PRIu64, cum);
    line(m, name, "_count", labels, NULL, NULL, num);
    finish(m, name, start);
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
