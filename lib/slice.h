/* A view into bytes owned by someone else: (ptr, len), never NUL-terminated by
 * contract. Valid only as long as the owner says (see each function's header). */
#ifndef LIB_SLICE_H
#define LIB_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct slice {
    const char *ptr;
    size_t len;
};

#define SLICE_LIT(s) ((struct slice){(s), sizeof(s) - 1})

static inline bool slice_eq(struct slice a, const char *lit)
{
    size_t n = strlen(lit);
    return a.len == n && memcmp(a.ptr, lit, n) == 0;
}

#endif
