/* Strict Prometheus text checker (see promcheck.h). Quadratic in the number of
 * families and series, which is fine for a test. */
#include "promcheck.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PC_MAX_FAMILIES 256
#define PC_MAX_SERIES 1024
#define PC_NAME_MAX 128
#define PC_SERIES_MAX 512

struct family {
    char name[PC_NAME_MAX];
    bool help, type, samples, closed;
    bool histogram; /* # TYPE histogram: its samples are name_bucket, _sum, _count */
};

struct pc {
    struct family fam[PC_MAX_FAMILIES];
    int nfam;
    int cur; /* family whose samples came last, -1 none */
    char (*series)[PC_SERIES_MAX];
    int nseries;
    char *why;
    size_t why_cap;
    int line;
};

static int fail(struct pc *c, const char *fmt, ...)
{
    int n = snprintf(c->why, c->why_cap, "line %d: ", c->line);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < c->why_cap)
        vsnprintf(c->why + n, c->why_cap - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static bool is_name_start(char ch, bool colon)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
           (colon && ch == ':');
}

/* Length of the metric (colon) or label (no colon) name at s, 0 if none. */
static size_t name_len(const char *s, const char *end, bool colon)
{
    if (s >= end || !is_name_start(*s, colon))
        return 0;
    size_t n = 1;
    while (s + n < end && (is_name_start(s[n], colon) || (s[n] >= '0' && s[n] <= '9')))
        n++;
    return n;
}

static struct family *family(struct pc *c, const char *name, size_t len, int *idx)
{
    for (int i = 0; i < c->nfam; i++) {
        if (strlen(c->fam[i].name) == len && memcmp(c->fam[i].name, name, len) == 0) {
            *idx = i;
            return &c->fam[i];
        }
    }
    if (c->nfam == PC_MAX_FAMILIES || len >= PC_NAME_MAX)
        return NULL;
    struct family *f = &c->fam[c->nfam];
    memset(f, 0, sizeof(*f));
    memcpy(f->name, name, len);
    *idx = c->nfam++;
    return f;
}

static int comment(struct pc *c, const char *s, const char *end)
{
    bool help = (size_t)(end - s) > 7 && memcmp(s, "# HELP ", 7) == 0;
    bool type = (size_t)(end - s) > 7 && memcmp(s, "# TYPE ", 7) == 0;
    if (!help && !type)
        return 0; /* other comments are allowed and ignored */
    s += 7;
    size_t n = name_len(s, end, true);
    if (n == 0 || (s + n < end && s[n] != ' '))
        return fail(c, "bad metric name after # %s", help ? "HELP" : "TYPE");
    int idx;
    struct family *f = family(c, s, n, &idx);
    if (!f)
        return fail(c, "too many families or name too long");
    if (f->samples)
        return fail(c, "# %s for %s after its samples", help ? "HELP" : "TYPE", f->name);
    if (help) {
        if (f->help)
            return fail(c, "second # HELP for %s", f->name);
        f->help = true;
        for (const char *p = s + n; p < end; p++)
            if (*p == '\\' && (p + 1 >= end || (p[1] != '\\' && p[1] != 'n')))
                return fail(c, "bad escape in # HELP %s", f->name);
        return 0;
    }
    if (f->type)
        return fail(c, "second # TYPE for %s", f->name);
    f->type = true;
    if (s + n >= end)
        return fail(c, "# TYPE %s without a type", f->name);
    const char *t = s + n + 1;
    size_t tl = (size_t)(end - t);
    static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strlen(types[i]) == tl && memcmp(t, types[i], tl) == 0) {
            f->histogram = i == 2;
            return 0;
        }
    return fail(c, "unknown type '%.*s' for %s", (int)tl, t, f->name);
}

/* The histogram family that name (n bytes) is a _bucket, _sum or _count line
 * of, or NULL; *bucket says which. */
static struct family *histogram_of(struct pc *c, const char *name, size_t n, int *idx, bool *bucket)
{
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    for (int k = 0; k < 3; k++) {
        size_t l = strlen(sfx[k]);
        if (n <= l || memcmp(name + n - l, sfx[k], l) != 0)
            continue;
        for (int i = 0; i < c->nfam; i++)
            if (c->fam[i].histogram && strlen(c->fam[i].name) == n - l &&
                memcmp(c->fam[i].name, name, n - l) == 0) {
                *idx = i;
                *bucket = k == 0;
                return &c->fam[i];
            }
    }
    return NULL;
}

static int sample(struct pc *c, const char *s, const char *end)
{
    const char *line = s;
    size_t n = name_len(s, end, true);
    if (n == 0)
        return fail(c, "sample does not start with a metric name");
    int idx;
    bool bucket = false;
    struct family *f = histogram_of(c, s, n, &idx, &bucket);
    if (!f)
        f = family(c, s, n, &idx);
    if (!f)
        return fail(c, "too many families or name too long");
    if (f->histogram && (size_t)(strlen(f->name)) == n)
        return fail(c, "histogram %s has a sample without _bucket, _sum or _count", f->name);
    bool has_le = false;
    if (f->closed)
        return fail(c, "samples of %s are not together", f->name);
    if (c->cur >= 0 && c->cur != idx)
        c->fam[c->cur].closed = true;
    c->cur = idx;
    f->samples = true;
    s += n;
    if (s < end && *s == '{') {
        s++;
        bool first = true;
        while (s < end && *s != '}') {
            if (!first) {
                if (*s != ',')
                    return fail(c, "expected ',' between labels");
                s++;
            }
            first = false;
            size_t ln = name_len(s, end, false);
            if (ln == 0)
                return fail(c, "bad label name");
            has_le = has_le || (ln == 2 && memcmp(s, "le", 2) == 0);
            s += ln;
            if (s + 1 >= end || s[0] != '=' || s[1] != '"')
                return fail(c, "expected =\" after a label name");
            s += 2;
            while (s < end && *s != '"') {
                if (*s == '\\') {
                    if (s + 1 >= end || (s[1] != '\\' && s[1] != '"' && s[1] != 'n'))
                        return fail(c, "bad escape in a label value");
                    s++;
                }
                s++;
            }
            if (s >= end)
                return fail(c, "unterminated label value");
            s++;
        }
        if (s >= end)
            return fail(c, "unterminated label set");
        s++;
    }
    size_t key_len = (size_t)(s - line);
    if (bucket && !has_le)
        return fail(c, "%s_bucket without an le label", f->name);
    if (s >= end || *s != ' ')
        return fail(c, "expected one space before the value");
    s++;
    const char *v = s;
    while (s < end && *s != ' ')
        s++;
    size_t vl = (size_t)(s - v);
    char num[64];
    if (vl == 0 || vl >= sizeof(num))
        return fail(c, "missing or overlong value");
    memcpy(num, v, vl);
    num[vl] = 0;
    if (strcmp(num, "+Inf") != 0 && strcmp(num, "-Inf") != 0 && strcmp(num, "NaN") != 0) {
        char *e;
        strtod(num, &e);
        if (*e != 0 || strchr(num, 'n') || strchr(num, 'N') || strchr(num, 'x'))
            return fail(c, "value '%s' is not a number", num);
    }
    if (s < end) { /* optional integer timestamp */
        s++;
        if (s >= end)
            return fail(c, "trailing space");
        for (const char *p = s; p < end; p++)
            if (!((*p >= '0' && *p <= '9') || (p == s && *p == '-')))
                return fail(c, "bad timestamp");
    }
    if (key_len >= PC_SERIES_MAX || c->nseries == PC_MAX_SERIES)
        return fail(c, "too many series or series too long");
    for (int i = 0; i < c->nseries; i++)
        if (strlen(c->series[i]) == key_len && memcmp(c->series[i], line, key_len) == 0)
            return fail(c, "series %.*s twice", (int)key_len, line);
    memcpy(c->series[c->nseries], line, key_len);
    c->series[c->nseries++][key_len] = 0;
    return 0;
}

int promcheck(const char *text, size_t len, char *why, size_t why_cap)
{
    struct pc *c = calloc(1, sizeof(*c));
    char(*series)[PC_SERIES_MAX] = calloc(PC_MAX_SERIES, sizeof(*series));
    int rv = -1;
    if (!c || !series) {
        snprintf(why, why_cap, "out of memory");
        goto out;
    }
    c->series = series;
    c->why = why;
    c->why_cap = why_cap;
    c->cur = -1;
    rv = 0;
    if (len > 0 && text[len - 1] != '\n') {
        c->line = 0;
        rv = fail(c, "text does not end with a line feed");
    }
    for (const char *s = text, *end = text + len; rv == 0 && s < end;) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *le = nl ? nl : end;
        c->line++;
        if (le == s)
            rv = fail(c, "empty line");
        else if (memchr(s, '\0', (size_t)(le - s)))
            rv = fail(c, "NUL byte");
        else if (*s == '#')
            rv = comment(c, s, le);
        else
            rv = sample(c, s, le);
        s = le + 1;
    }
out:
    free(series);
    free(c);
    return rv;
}
