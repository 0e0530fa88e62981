/* Growable text buffer: doubling, sticky out-of-memory flag. */
#include "sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lg_sb_init(struct lg_sb *b)
{
    memset(b, 0, sizeof(*b));
}

void lg_sb_release(struct lg_sb *b)
{
    free(b->buf);
    lg_sb_init(b);
}

/* Room for need more bytes plus the NUL. */
static bool reserve(struct lg_sb *b, size_t need)
{
    if (b->oom)
        return false;
    if (b->cap - b->len > need)
        return true;
    size_t ncap = b->cap ? b->cap : 4096;
    while (ncap - b->len <= need)
        ncap *= 2;
    char *nb = realloc(b->buf, ncap);
    if (nb == NULL) {
        b->oom = true;
        return false;
    }
    b->buf = nb;
    b->cap = ncap;
    return true;
}

void lg_sb_printf(struct lg_sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void lg_sb_puts(struct lg_sb *b, const char *s)
{
    size_t n = strlen(s);
    if (!reserve(b, n))
        return;
    memcpy(b->buf + b->len, s, n + 1);
    b->len += n;
}

void lg_sb_html(struct lg_sb *b, const char *s)
{
    for (const char *run = s;; s++) {
        const char *ref = NULL;
        switch (*s) {
        case '&':
            ref = "&amp;";
            break;
        case '<':
            ref = "&lt;";
            break;
        case '>':
            ref = "&gt;";
            break;
        case '"':
            ref = "&quot;";
            break;
        case '\'':
            ref = "&#39;";
            break;
        case '\0':
            break;
        default:
            continue;
        }
        size_t n = (size_t)(s - run);
        if (n > 0 && reserve(b, n)) {
            memcpy(b->buf + b->len, run, n);
            b->len += n;
            b->buf[b->len] = '\0';
        }
        if (ref == NULL)
            return;
        lg_sb_puts(b, ref);
        run = s + 1;
    }
}

char *lg_sb_take(struct lg_sb *b)
{
    char *out = NULL;
    if (!b->oom) {
        if (b->buf == NULL)
            lg_sb_puts(b, "");
        out = b->oom ? NULL : b->buf;
        if (out != NULL)
            b->buf = NULL;
    }
    lg_sb_release(b);
    return out;
}
