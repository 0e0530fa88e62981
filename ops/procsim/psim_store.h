/* The payment processor simulator's payment table, in memory only: records
 * live as long as the process (a restart forgets everything, unlike the real
 * processor's database). A hash by correlationId answers duplicates and
 * lookups in O(1); a treap ordered by requestedAt, augmented with subtree
 * counts and sums, answers a summary window in O(log n). Inserts only; purge
 * clears everything. Growth reallocates (a simulator, not the hot path of the
 * service). Not thread-safe. */
#ifndef OPS_PROCSIM_PSIM_STORE_H
#define OPS_PROCSIM_PSIM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct psim_payment {
    uint8_t id[16];
    int64_t cents;
    int64_t at_ns; /* requestedAt, ns since the epoch */
};

struct psim_store;

/* initial_cap: records allocated up front (grows by doubling). NULL on OOM. */
struct psim_store *psim_store_new(size_t initial_cap);
void psim_store_free(struct psim_store *st);

/* Records a payment. Returns 0, -EEXIST when the id is already recorded
 * (nothing changes), or -ENOMEM. */
int psim_store_insert(struct psim_store *st, const uint8_t id[16], int64_t cents, int64_t at_ns)
    __attribute__((warn_unused_result));

/* Looks a payment up by id. */
bool psim_store_get(const struct psim_store *st, const uint8_t id[16], struct psim_payment *out);

/* Count and sum of cents of the payments with from_ns <= at_ns <= to_ns. */
void psim_store_sum(const struct psim_store *st, int64_t from_ns, int64_t to_ns, uint64_t *count,
                    int64_t *cents);

/* Everything recorded. */
void psim_store_total(const struct psim_store *st, uint64_t *count, int64_t *cents);

size_t psim_store_count(const struct psim_store *st);

/* Forgets every payment; keeps the memory. */
void psim_store_purge(struct psim_store *st);

#endif
