/* Growable buffer over caller storage (see buf.h). Grows by doubling; shrinks
 * back to the fixed storage only in buf_consume() and buf_reset(). */
#include "lib/buf.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, char *fixed, size_t fixed_cap)
{
    assert(fixed || fixed_cap == 0);
    *b = (struct buf){.ptr = fixed, .cap = fixed_cap, .fixed = fixed, .fixed_cap = fixed_cap};
}

void buf_reset(struct buf *b)
{
    if (b->ptr != b->fixed)
        free(b->ptr);
    free(b->retired);
    buf_init(b, b->fixed, b->fixed_cap);
}

int buf_reserve(struct buf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    if (n > SIZE_MAX / 2 - b->len)
        return -ENOMEM;
    size_t need = b->len + n;
    size_t cap = b->cap * 2 > need ? b->cap * 2 : need;
    char *nb = malloc(cap);
    if (!nb)
        return -ENOMEM;
    if (b->len)
        memcpy(nb, b->ptr, b->len);
    if (b->ptr != b->fixed) {
        if (b->pinned) {
            assert(!b->retired); /* the new block is not pinned: only one retires */
            b->retired = b->ptr;
        } else {
            free(b->ptr);
        }
    }
    b->pinned = false; /* the reader holds the old block, not this one */
    b->ptr = nb;
    b->cap = cap;
    return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    int rv = buf_reserve(b, n);
    if (rv != 0)
        return rv;
    memcpy(b->ptr + b->len, p, n);
    b->len += n;
    return 0;
}

void buf_commit(struct buf *b, size_t n)
{
    assert(n <= b->cap - b->len);
    b->len += n;
}

void buf_consume(struct buf *b, size_t n)
{
    assert(n <= b->len && !b->pinned);
    if (n > 0)
        memmove(b->ptr, b->ptr + n, b->len - n);
    b->len -= n;
    if (b->ptr != b->fixed && b->len <= b->fixed_cap) {
        if (b->len)
            memcpy(b->fixed, b->ptr, b->len);
        free(b->ptr);
        b->ptr = b->fixed;
        b->cap = b->fixed_cap;
    }
}

void buf_pin(struct buf *b)
{
    assert(!b->pinned && !b->retired);
    b->pinned = true;
}

void buf_unpin(struct buf *b)
{
    free(b->retired);
    b->retired = NULL;
    b->pinned = false;
}
