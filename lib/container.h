/* container_of: from a pointer to a member (an embedded libuv handle, say) back
 * to the struct that embeds it. Never cast a handle to its container on a
 * first-member assumption. */
#ifndef LIB_CONTAINER_H
#define LIB_CONTAINER_H

#include <stddef.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
