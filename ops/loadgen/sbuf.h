/* A growable text buffer for the reports: printf-style appends that remember
 * an allocation failure instead of returning it at every call (check once, at
 * the end, with lg_sb_take()). Not for the request path. */
#ifndef LG_SBUF_H
#define LG_SBUF_H

#include <stdbool.h>
#include <stddef.h>

struct lg_sb {
    char *buf;
    size_t len, cap; /* buf[len] == '\0' once anything was appended */
    bool oom;        /* an append failed: the text is incomplete */
};

/* Empty buffer; allocates nothing until the first append. */
void lg_sb_init(struct lg_sb *b);
void lg_sb_release(struct lg_sb *b);

void lg_sb_printf(struct lg_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lg_sb_puts(struct lg_sb *b, const char *s);

/* Appends s with & < > " ' replaced by HTML character references (safe in
 * element text and in double- or single-quoted attribute values). */
void lg_sb_html(struct lg_sb *b, const char *s);

/* Hands the NUL-terminated text to the caller (free it), or NULL when an
 * append ran out of memory; b is empty afterwards either way. */
char *lg_sb_take(struct lg_sb *b);

#endif
