/* Payment table of the simulator: records in one array (index 0 is the null
 * node), an open-addressing hash of record indices by correlationId, and a
 * treap keyed by (requestedAt, insertion order) whose nodes carry subtree
 * count and cents, so that a window sum is two root-to-leaf walks. */
#include "psim_store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/uuid.h"

struct rec {
    uint8_t id[16];
    int64_t cents;
    int64_t at_ns;
    int64_t sub_cents; /* sum over the subtree rooted here */
    uint32_t sub_cnt;  /* nodes in the subtree rooted here */
    uint32_t left, right;
    uint32_t prio; /* heap order: parent >= child */
};

struct psim_store {
    struct rec *rec; /* rec[1..n]; rec[0] is the null node (zero counts) */
    uint32_t n;
    uint32_t cap;    /* records allocated, including rec[0] */
    uint32_t *slots; /* hash: record index or 0 (empty); power-of-two size */
    uint32_t nslots;
    uint32_t root;
    uint64_t rng; /* xorshift state for priorities */
};

struct psim_store *psim_store_new(size_t initial_cap)
{
    if (initial_cap < 16)
        initial_cap = 16;
    if (initial_cap > (1u << 30))
        return NULL;
    struct psim_store *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->cap = (uint32_t)initial_cap + 1;
    st->rec = calloc(st->cap, sizeof(*st->rec));
    uint32_t ns = 32;
    while (ns < 2 * st->cap)
        ns *= 2;
    st->nslots = ns;
    st->slots = calloc(ns, sizeof(*st->slots));
    if (!st->rec || !st->slots) {
        psim_store_free(st);
        return NULL;
    }
    st->rng = 0x2545f4914f6cdd1dULL;
    return st;
}

void psim_store_free(struct psim_store *st)
{
    if (!st)
        return;
    free(st->rec);
    free(st->slots);
    free(st);
}

static uint32_t find_slot(const struct psim_store *st, const uint8_t id[16])
{
    uint32_t mask = st->nslots - 1;
    uint32_t i = (uint32_t)uuid_hash(id) & mask;
    while (st->slots[i] != 0 && memcmp(st->rec[st->slots[i]].id, id, 16) != 0)
        i = (i + 1) & mask;
    return i;
}

static int grow(struct psim_store *st)
{
    if (st->n + 1 >= st->cap) {
        if (st->cap > (1u << 30))
            return -ENOMEM;
        uint32_t cap = st->cap * 2;
        struct rec *r = realloc(st->rec, (size_t)cap * sizeof(*r));
        if (!r)
            return -ENOMEM;
        st->rec = r;
        st->cap = cap;
    }
    if ((uint64_t)(st->n + 1) * 2 > st->nslots) {
        uint32_t ns = st->nslots * 2;
        uint32_t *slots = calloc(ns, sizeof(*slots));
        if (!slots)
            return -ENOMEM;
        free(st->slots);
        st->slots = slots;
        st->nslots = ns;
        for (uint32_t k = 1; k <= st->n; k++)
            st->slots[find_slot(st, st->rec[k].id)] = k;
    }
    return 0;
}

static void update(struct rec *r, uint32_t t)
{
    r[t].sub_cnt = r[r[t].left].sub_cnt + r[r[t].right].sub_cnt + 1;
    r[t].sub_cents = r[r[t].left].sub_cents + r[r[t].right].sub_cents + r[t].cents;
}

/* Splits t into nodes with at_ns <= at (l) and the rest (r). */
static void split(struct rec *r, uint32_t t, int64_t at, uint32_t *l, uint32_t *rr)
{
    if (!t) {
        *l = *rr = 0;
        return;
    }
    if (r[t].at_ns <= at) {
        split(r, r[t].right, at, &r[t].right, rr);
        *l = t;
    } else {
        split(r, r[t].left, at, l, &r[t].left);
        *rr = t;
    }
    update(r, t);
}

/* Every key of a precedes every key of b. */
static uint32_t merge(struct rec *r, uint32_t a, uint32_t b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    if (r[a].prio >= r[b].prio) {
        r[a].right = merge(r, r[a].right, b);
        update(r, a);
        return a;
    }
    r[b].left = merge(r, a, r[b].left);
    update(r, b);
    return b;
}

int psim_store_insert(struct psim_store *st, const uint8_t id[16], int64_t cents, int64_t at_ns)
{
    uint32_t slot = find_slot(st, id);
    if (st->slots[slot] != 0)
        return -EEXIST;
    int rv = grow(st);
    if (rv < 0)
        return rv;
    slot = find_slot(st, id); /* the table may have been rebuilt */
    uint32_t k = ++st->n;
    struct rec *r = st->rec;
    memset(&r[k], 0, sizeof(r[k]));
    memcpy(r[k].id, id, 16);
    r[k].cents = cents;
    r[k].at_ns = at_ns;
    st->rng ^= st->rng << 13;
    st->rng ^= st->rng >> 7;
    st->rng ^= st->rng << 17;
    r[k].prio = (uint32_t)(st->rng >> 16);
    update(r, k);
    st->slots[slot] = k;
    /* Equal times: the newest goes after the older ones (split keeps <= left). */
    uint32_t a, b;
    split(r, st->root, at_ns, &a, &b);
    st->root = merge(r, merge(r, a, k), b);
    return 0;
}

bool psim_store_get(const struct psim_store *st, const uint8_t id[16], struct psim_payment *out)
{
    uint32_t k = st->slots[find_slot(st, id)];
    if (!k)
        return false;
    memcpy(out->id, st->rec[k].id, 16);
    out->cents = st->rec[k].cents;
    out->at_ns = st->rec[k].at_ns;
    return true;
}

/* Count and sum of nodes with at_ns <= at (inclusive) or < at (!inclusive). */
static void prefix(const struct psim_store *st, int64_t at, bool inclusive, uint64_t *cnt,
                   int64_t *cents)
{
    const struct rec *r = st->rec;
    uint64_t c = 0;
    int64_t s = 0;
    uint32_t t = st->root;
    while (t) {
        bool in = inclusive ? r[t].at_ns <= at : r[t].at_ns < at;
        if (in) {
            c += (uint64_t)r[r[t].left].sub_cnt + 1;
            s += r[r[t].left].sub_cents + r[t].cents;
            t = r[t].right;
        } else {
            t = r[t].left;
        }
    }
    *cnt = c;
    *cents = s;
}

void psim_store_sum(const struct psim_store *st, int64_t from_ns, int64_t to_ns, uint64_t *count,
                    int64_t *cents)
{
    if (from_ns > to_ns) {
        *count = 0;
        *cents = 0;
        return;
    }
    uint64_t c_hi, c_lo;
    int64_t s_hi, s_lo;
    prefix(st, to_ns, true, &c_hi, &s_hi);
    prefix(st, from_ns, false, &c_lo, &s_lo);
    *count = c_hi - c_lo;
    *cents = s_hi - s_lo;
}

void psim_store_total(const struct psim_store *st, uint64_t *count, int64_t *cents)
{
    *count = st->rec[st->root].sub_cnt;
    *cents = st->rec[st->root].sub_cents;
}

size_t psim_store_count(const struct psim_store *st)
{
    return st->n;
}

void psim_store_purge(struct psim_store *st)
{
    memset(st->slots, 0, (size_t)st->nslots * sizeof(*st->slots));
    st->n = 0;
    st->root = 0;
}
