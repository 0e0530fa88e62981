/* A growable byte buffer that starts in storage the caller provides (so that
 * init cannot fail and the usual case never allocates) and moves to the heap
 * only when that is too small. It can be pinned while someone else (a
 * uv_write in flight) reads its bytes: growing then keeps the old block alive
 * until buf_unpin(). No formatting, no I/O. */
#ifndef LIB_BUF_H
#define LIB_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct buf {
    char *ptr;        /* the bytes: fixed, or a heap block while they do not fit in it */
    size_t len;       /* bytes held */
    size_t cap;       /* capacity of ptr */
    char *fixed;      /* the caller's storage; never freed here */
    size_t fixed_cap; /* its size */
    char *retired;    /* heap block still pinned by a reader, freed by buf_unpin() */
    bool pinned;      /* ptr is being read by someone else: do not free or move it */
};

/* Empty buffer over the caller's storage (fixed may be NULL when fixed_cap is
 * 0). Cannot fail; fixed must outlive b. */
void buf_init(struct buf *b, char *fixed, size_t fixed_cap);
/* Frees the heap blocks and empties b (back to the fixed storage). Not while
 * pinned: call buf_unpin() first, or know that the reader is gone. */
void buf_reset(struct buf *b);

/* Makes room for n more bytes (ptr + len .. ptr + cap). Returns 0 or -ENOMEM
 * (b unchanged). A pinned heap block is retired, not freed. */
int buf_reserve(struct buf *b, size_t n) __attribute__((warn_unused_result));
/* Appends n bytes of p. Returns 0 or -ENOMEM (b unchanged). */
int buf_append(struct buf *b, const void *p, size_t n) __attribute__((warn_unused_result));
/* Marks n more bytes after len as written (after buf_reserve()). */
void buf_commit(struct buf *b, size_t n);
/* Drops the first n bytes; moves back to the fixed storage once the rest fits
 * there. Not while pinned. */
void buf_consume(struct buf *b, size_t n);

/* While pinned, ptr[0..len) stays where it is until buf_unpin(), even if the
 * buffer grows meanwhile. One reader at a time. */
void buf_pin(struct buf *b);
/* Ends the pin; frees a block retired meanwhile. */
void buf_unpin(struct buf *b);

#endif
