/* Fast non-cryptographic PRNG (xoshiro256**) seeded from the kernel, and
 * random UUID v4 text for correlation ids. Not thread-safe: one per loop. */
#ifndef LG_RNG_H
#define LG_RNG_H

#include <stdint.h>

struct lg_rng {
    uint64_t s[4];
};

/* Seeds from getrandom(2); falls back to time and pid if that fails. */
void lg_rng_seed(struct lg_rng *r);
/* Deterministic seed, for tests. */
void lg_rng_seed_with(struct lg_rng *r, uint64_t seed);
uint64_t lg_rng_next(struct lg_rng *r);

/* Writes a random version-4, variant-1 UUID as 36 lower-case chars (no NUL). */
void lg_uuid_v4(struct lg_rng *r, char out[36]);

#endif
