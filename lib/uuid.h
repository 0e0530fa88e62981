/* Canonical UUID text (8-4-4-4-12 hex, either case) <-> 16 bytes. */
#ifndef LIB_UUID_H
#define LIB_UUID_H

#include <stddef.h>
#include <stdint.h>

#define UUID_TEXT_LEN 36

/* Returns 0, or -EINVAL unless s is exactly 36 chars of canonical form. */
int uuid_parse(const char *s, size_t len, uint8_t out[16]) __attribute__((warn_unused_result));

/* A well-mixed 64-bit hash of the 16 bytes (murmur3's finaliser over both
 * halves): UUIDs are mostly random, but ids from tests or other clients may
 * not be. For hash tables keyed by correlationId. */
uint64_t uuid_hash(const uint8_t id[16]);

/* Writes 36 lower-case chars (no NUL) into buf. */
void uuid_format(const uint8_t id[16], char *buf);

#endif
