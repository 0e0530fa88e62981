/* The payment log. Three arrays sized once at ledger_new() (calloc: pages are
 * only backed once touched): the pool of payments, filled in order; an
 * open-addressing hash of pool indexes keyed by correlationId; and one treap
 * node per pool index, linked into one time tree per processor when the payment
 * is RECORDED, each node carrying its subtree's count and cents so a summary is
 * two root-to-leaf walks per processor. No removal except PURGED, which resets
 * everything in O(payments held). No allocation, no I/O after ledger_new(). */
#include "node/ledger.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/uuid.h"

#define LEDGER_NIL UINT32_MAX
#define LEDGER_MAX_CAPACITY ((size_t)1 << 30) /* hash table stays within u32 */

/* A subtree's cents, 128 bits (ledger_cents_sum) kept 8-byte aligned so that a
 * tree node is 40 bytes, not 48: a typedef may lower the alignment. */
__extension__ typedef unsigned __int128 tnode_sum __attribute__((aligned(8)));

/* Time index node, parallel to the pool (node i is payment i). Key is
 * (key_ms, i): unique even with equal timestamps. */
struct tnode {
    int64_t key_ms; /* requested_at_ms of the RECORDED payment */
    tnode_sum sum;  /* cents of the subtree, exact (see ledger_cents_sum) */
    uint32_t left;  /* LEDGER_NIL = none */
    uint32_t right;
    uint32_t cnt;  /* payments in the subtree */
    uint32_t prio; /* treap heap priority (max at the root) */
};

/* 32 bytes with an int64 sum; the exact sum costs 8 bytes per payment held
 * (8 MiB for a full default ledger of 1,048,576 payments). */
_Static_assert(sizeof(struct tnode) == 40, "the 128-bit sum adds 8 bytes, not 16");

struct ledger {
    size_t cap;
    uint32_t used;        /* pool[0..used) hold payments */
    uint32_t hash_mask;   /* hash table size - 1 (power of two >= 2 * cap) */
    struct payment *pool; /* cap entries */
    uint32_t *hash;       /* pool index + 1; 0 = empty slot */
    struct tnode *tree;   /* cap entries */
    uint32_t root[LEDGER_NPROC];
    size_t nstate[LEDGER_RECORDED + 1];

    /* Trace contexts of sampled payments (ledger_traces_reserve()). */
    struct ledger_tslot *tslots; /* ntslots entries, NULL = tracing off */
    uint32_t *tfree;             /* stack of free slot indexes */
    uint32_t ntslots, ntfree;
    uint64_t untracked;
};

struct ledger_tslot {
    struct event_trace t;
    uint8_t flags;
};

_Static_assert(sizeof(struct payment) == 56, "the trace slot index fills padding");

/* --- dedup index ---------------------------------------------------------- */

/* Slot holding id, or the empty slot where it would go. */
static uint32_t hash_slot(const struct ledger *l, const uint8_t id[16])
{
    uint32_t s = (uint32_t)uuid_hash(id) & l->hash_mask;
    for (;;) {
        uint32_t v = l->hash[s];
        if (v == 0 || memcmp(l->pool[v - 1].id, id, 16) == 0)
            return s;
        s = (s + 1) & l->hash_mask; /* load <= 1/2: always ends */
    }
}

/* --- time index ------------------------------------------------------------ */

static uint32_t tree_prio(uint32_t i)
{
    uint32_t x = i * 0x9E3779B1u + 0x7F4A7C15u;
    x ^= x >> 16;
    x *= 0x85EBCA6Bu;
    x ^= x >> 13;
    x *= 0xC2B2AE35u;
    x ^= x >> 16;
    return x;
}

static uint32_t tcnt(const struct ledger *l, uint32_t t)
{
    return t == LEDGER_NIL ? 0 : l->tree[t].cnt;
}

static ledger_cents_sum tsum(const struct ledger *l, uint32_t t)
{
    return t == LEDGER_NIL ? 0 : l->tree[t].sum;
}

static void tree_pull(struct ledger *l, uint32_t t)
{
    struct tnode *n = &l->tree[t];
    n->cnt = 1 + tcnt(l, n->left) + tcnt(l, n->right);
    n->sum = (ledger_cents_sum)l->pool[t].amount_cents + tsum(l, n->left) + tsum(l, n->right);
}

static bool key_less(const struct ledger *l, uint32_t a, int64_t key_ms, uint32_t b)
{
    int64_t ka = l->tree[a].key_ms;
    return ka < key_ms || (ka == key_ms && a < b);
}

/* Splits subtree t into keys below (key_ms, x) -> *lo and above -> *hi. The
 * recursion depth is the treap's depth, O(log n) expected. */
static void tree_split(struct ledger *l, uint32_t t, int64_t key_ms, uint32_t x, uint32_t *lo,
                       uint32_t *hi)
{
    if (t == LEDGER_NIL) {
        *lo = *hi = LEDGER_NIL;
        return;
    }
    if (key_less(l, t, key_ms, x)) {
        *lo = t;
        tree_split(l, l->tree[t].right, key_ms, x, &l->tree[t].right, hi);
    } else {
        *hi = t;
        tree_split(l, l->tree[t].left, key_ms, x, lo, &l->tree[t].left);
    }
    tree_pull(l, t);
}

static void tree_insert(struct ledger *l, uint32_t x, int proc, int64_t key_ms)
{
    struct tnode *n = &l->tree[x];
    n->key_ms = key_ms;
    n->prio = tree_prio(x);
    ledger_cents_sum amount = (ledger_cents_sum)l->pool[x].amount_cents;

    /* Descend while the path outranks x, counting x into every subtree it joins. */
    uint32_t *link = &l->root[proc];
    while (*link != LEDGER_NIL && l->tree[*link].prio >= n->prio) {
        struct tnode *t = &l->tree[*link];
        t->cnt++;
        t->sum += amount;
        link = key_less(l, *link, key_ms, x) ? &t->right : &t->left;
    }
    tree_split(l, *link, key_ms, x, &n->left, &n->right);
    tree_pull(l, x);
    *link = x;
}

/* Count and cents of keys < bound (or <= bound when inclusive). */
static void tree_prefix(const struct ledger *l, uint32_t t, int64_t bound, bool inclusive,
                        int64_t *cnt, ledger_cents_sum *sum)
{
    int64_t c = 0;
    ledger_cents_sum s = 0;
    while (t != LEDGER_NIL) {
        const struct tnode *n = &l->tree[t];
        if (n->key_ms < bound || (inclusive && n->key_ms == bound)) {
            /* n and its left subtree are in: the node minus its right subtree. */
            c += n->cnt - tcnt(l, n->right);
            s += n->sum - tsum(l, n->right);
            t = n->right;
        } else {
            t = n->left;
        }
    }
    *cnt = c;
    *sum = s;
}

/* --- lifecycle ------------------------------------------------------------- */

struct ledger *ledger_new(size_t capacity)
{
    if (capacity == 0 || capacity > LEDGER_MAX_CAPACITY)
        return NULL;
    size_t hsize = 16;
    while (hsize < 2 * capacity)
        hsize *= 2;

    struct ledger *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->cap = capacity;
    l->hash_mask = (uint32_t)(hsize - 1);
    l->pool = calloc(capacity, sizeof(*l->pool));
    l->hash = calloc(hsize, sizeof(*l->hash));
    l->tree = calloc(capacity, sizeof(*l->tree));
    if (l->pool == NULL || l->hash == NULL || l->tree == NULL) {
        ledger_free(l);
        return NULL;
    }
    for (int p = 0; p < LEDGER_NPROC; p++)
        l->root[p] = LEDGER_NIL;
    return l;
}

void ledger_free(struct ledger *l)
{
    if (l == NULL)
        return;
    free(l->pool);
    free(l->hash);
    free(l->tree);
    free(l->tslots);
    free(l->tfree);
    free(l);
}

int ledger_traces_reserve(struct ledger *l, size_t n)
{
    assert(l->tslots == NULL && n > 0 && n < UINT32_MAX);
    l->tslots = calloc(n, sizeof(*l->tslots));
    l->tfree = calloc(n, sizeof(*l->tfree));
    if (!l->tslots || !l->tfree) {
        free(l->tslots);
        free(l->tfree);
        l->tslots = NULL;
        l->tfree = NULL;
        return -ENOMEM;
    }
    l->ntslots = (uint32_t)n;
    for (uint32_t i = 0; i < l->ntslots; i++)
        l->tfree[i] = l->ntslots - 1 - i;
    l->ntfree = l->ntslots;
    return 0;
}

static void trace_keep(struct ledger *l, struct payment *p, const struct event *ev)
{
    if (!ev->trace_flags || !l->tslots)
        return;
    if (l->ntfree == 0) {
        l->untracked++;
        return;
    }
    uint32_t slot = l->tfree[--l->ntfree];
    l->tslots[slot].t = ev->trace;
    l->tslots[slot].flags = ev->trace_flags;
    p->trace = slot + 1;
}

static void trace_drop(struct ledger *l, struct payment *p)
{
    if (p->trace == 0)
        return;
    assert(p->trace <= l->ntslots && l->ntfree < l->ntslots);
    l->tfree[l->ntfree++] = p->trace - 1;
    p->trace = 0;
}

const struct event_trace *ledger_trace(const struct ledger *l, const struct payment *p,
                                       uint8_t *flags)
{
    if (p->trace == 0)
        return NULL;
    const struct ledger_tslot *s = &l->tslots[p->trace - 1];
    *flags = s->flags;
    return &s->t;
}

void ledger_trace_stats(const struct ledger *l, struct ledger_trace_stats *out)
{
    out->slots = l->ntslots;
    out->used = l->ntslots - l->ntfree;
    out->untracked = l->untracked;
}

/* Empties the ledger touching only what was used. */
static void ledger_reset(struct ledger *l)
{
    /* Find every entry's slot while the table is intact, then clear them:
     * clearing as we go would break the probe chains of later entries. */
    for (uint32_t i = 0; i < l->used; i++)
        l->pool[i].index = hash_slot(l, l->pool[i].id);
    for (uint32_t i = 0; i < l->used; i++)
        l->hash[l->pool[i].index] = 0;
    for (uint32_t i = 0; i < l->used; i++)
        trace_drop(l, &l->pool[i]);
    memset(l->pool, 0, (size_t)l->used * sizeof(*l->pool));
    memset(l->tree, 0, (size_t)l->used * sizeof(*l->tree));
    l->used = 0;
    for (int p = 0; p < LEDGER_NPROC; p++)
        l->root[p] = LEDGER_NIL;
    memset(l->nstate, 0, sizeof(l->nstate));
}

/* --- events ---------------------------------------------------------------- */

static void set_state(struct ledger *l, struct payment *p, enum ledger_state s)
{
    l->nstate[p->state]--;
    l->nstate[s]++;
    p->state = (uint8_t)s;
}

static int apply_accepted(struct ledger *l, const struct event *ev, struct payment **out)
{
    if (ev->amount_cents <= 0)
        return -EINVAL;
    uint32_t s = hash_slot(l, ev->id);
    if (l->hash[s] != 0) {
        *out = &l->pool[l->hash[s] - 1];
        return -EEXIST;
    }
    if (l->used >= l->cap)
        return -ENOSPC;
    uint32_t i = l->used++;
    struct payment *p = &l->pool[i];
    memcpy(p->id, ev->id, 16);
    p->amount_cents = ev->amount_cents;
    p->accepted_ms = ev->at_ms;
    p->requested_at_ms = 0;
    p->state = LEDGER_ACCEPTED;
    p->processor = 0;
    p->owner = ev->origin;
    p->failed = 0;
    p->shared = 0;
    p->index = i;
    p->trace = 0;
    trace_keep(l, p, ev);
    l->hash[s] = i + 1;
    l->nstate[LEDGER_ACCEPTED]++;
    *out = p;
    return 0;
}

int ledger_apply(struct ledger *l, const struct event *ev, struct payment **out)
{
    struct payment *dummy;
    if (out == NULL)
        out = &dummy;
    *out = NULL;

    switch (ev->type) {
    case EVENT_ACCEPTED:
        return apply_accepted(l, ev, out);
    case EVENT_PURGED:
        ledger_reset(l);
        return 0;
    case EVENT_SENDING:
    case EVENT_RECORDED:
    case EVENT_FAILED:
        break;
    default:
        return -EINVAL;
    }

    if (ev->processor >= LEDGER_NPROC)
        return -EINVAL;
    if (ev->type == EVENT_RECORDED && ev->amount_cents <= 0)
        return -EINVAL;
    struct payment *p = ledger_find(l, ev->id);
    if (p == NULL)
        return -ENOENT;
    *out = p;
    uint8_t bit = (uint8_t)(1u << ev->processor);

    switch (ev->type) {
    case EVENT_SENDING:
        if (p->state == LEDGER_RECORDED)
            return -EPROTO;
        set_state(l, p, LEDGER_SENDING);
        p->processor = ev->processor;
        p->requested_at_ms = ev->at_ms;
        p->owner = ev->origin;
        p->failed &= (uint8_t)~bit;
        return 0;

    case EVENT_RECORDED:
        if (ev->amount_cents != p->amount_cents)
            return -EINVAL;
        if (p->state == LEDGER_RECORDED)
            return p->processor == ev->processor ? -EEXIST : -EPROTO;
        set_state(l, p, LEDGER_RECORDED);
        p->processor = ev->processor;
        p->requested_at_ms = ev->at_ms;
        p->failed &= (uint8_t)~bit;
        tree_insert(l, p->index, ev->processor, ev->at_ms);
        trace_drop(l, p); /* final: no span of the payment comes after */
        return 0;

    case EVENT_FAILED:
        if (p->state == LEDGER_RECORDED)
            return -EEXIST; /* final already: a late answer to an earlier attempt */
        p->failed |= bit;
        /* Only the owner's own attempts can be known to have failed: after a
         * takeover, the old owner's late "not recorded" says nothing about the
         * new owner's attempt, which keeps the payment pinned. */
        if (p->state == LEDGER_SENDING && p->processor == ev->processor && p->owner == ev->origin)
            set_state(l, p, LEDGER_ACCEPTED);
        return 0;

    default:
        return -EINVAL; /* not reached */
    }
}

/* --- queries --------------------------------------------------------------- */

struct payment *ledger_find(const struct ledger *l, const uint8_t id[16])
{
    uint32_t v = l->hash[hash_slot(l, id)];
    return v == 0 ? NULL : &l->pool[v - 1];
}

struct payment *ledger_at(const struct ledger *l, uint32_t index)
{
    return index < l->used ? &l->pool[index] : NULL;
}

void ledger_summary(const struct ledger *l, int64_t from_ms, int64_t to_ms,
                    struct ledger_totals *out)
{
    memset(out, 0, sizeof(*out));
    if (from_ms > to_ms)
        return;
    for (int p = 0; p < LEDGER_NPROC; p++) {
        int64_t hi_c, lo_c = 0;
        ledger_cents_sum hi_s, lo_s = 0;
        tree_prefix(l, l->root[p], to_ms, true, &hi_c, &hi_s);
        if (from_ms != INT64_MIN)
            tree_prefix(l, l->root[p], from_ms, false, &lo_c, &lo_s);
        out->count[p] = hi_c - lo_c;
        out->cents[p] = hi_s - lo_s;
    }
}

size_t ledger_size(const struct ledger *l)
{
    return l->used;
}

size_t ledger_capacity(const struct ledger *l)
{
    return l->cap;
}

size_t ledger_count_state(const struct ledger *l, enum ledger_state s)
{
    return (unsigned)s <= LEDGER_RECORDED ? l->nstate[s] : 0;
}

void ledger_foreach_unrecorded(struct ledger *l, ledger_visit_cb *cb, void *arg)
{
    for (uint32_t i = 0; i < l->used; i++) {
        if (l->pool[i].state != LEDGER_RECORDED)
            cb(&l->pool[i], arg);
    }
}

/* --- self-check (O(n), for asserts and tests) ------------------------------ */

/* Checks the subtree at t; returns its size or -1. Bounds are exclusive keys
 * (lo_k, lo_i) < t < (hi_k, hi_i); lo_i == LEDGER_NIL means unbounded. */
static int64_t check_tree(const struct ledger *l, uint32_t t, int proc, uint32_t parent_prio,
                          const uint32_t *lo, const uint32_t *hi, int depth)
{
    if (t == LEDGER_NIL)
        return 0;
    if (t >= l->used || depth > 1000)
        return -1;
    const struct tnode *n = &l->tree[t];
    const struct payment *p = &l->pool[t];
    if (p->state != LEDGER_RECORDED || p->processor != proc || n->key_ms != p->requested_at_ms)
        return -1;
    if (n->prio != tree_prio(t) || n->prio > parent_prio)
        return -1;
    if (lo != NULL && !key_less(l, *lo, n->key_ms, t))
        return -1;
    if (hi != NULL && !key_less(l, t, l->tree[*hi].key_ms, *hi))
        return -1;
    int64_t a = check_tree(l, n->left, proc, n->prio, lo, &t, depth + 1);
    int64_t b = check_tree(l, n->right, proc, n->prio, &t, hi, depth + 1);
    if (a < 0 || b < 0 || n->cnt != a + b + 1)
        return -1;
    if (n->sum != (ledger_cents_sum)p->amount_cents + tsum(l, n->left) + tsum(l, n->right))
        return -1;
    return n->cnt;
}

bool ledger_check(const struct ledger *l)
{
    size_t nstate[LEDGER_RECORDED + 1] = {0};
    size_t recorded[LEDGER_NPROC] = {0};
    size_t traced = 0;
    for (uint32_t i = 0; i < l->used; i++) {
        const struct payment *p = &l->pool[i];
        if (p->index != i || p->state > LEDGER_RECORDED || p->amount_cents <= 0)
            return false;
        if (p->trace != 0 && (p->trace > l->ntslots || p->state == LEDGER_RECORDED))
            return false;
        traced += p->trace != 0;
        if (p->state != LEDGER_ACCEPTED && p->processor >= LEDGER_NPROC)
            return false;
        nstate[p->state]++;
        if (p->state == LEDGER_RECORDED)
            recorded[p->processor]++;
        if (ledger_find(l, p->id) != p)
            return false;
    }
    size_t inhash = 0;
    for (uint32_t s = 0; s <= l->hash_mask; s++) {
        if (l->hash[s] != 0 && l->hash[s] - 1 >= l->used)
            return false;
        inhash += l->hash[s] != 0;
    }
    if (inhash != l->used || memcmp(nstate, l->nstate, sizeof(nstate)) != 0)
        return false;
    if (traced != l->ntslots - l->ntfree)
        return false;
    for (int p = 0; p < LEDGER_NPROC; p++) {
        int64_t n = check_tree(l, l->root[p], p, UINT32_MAX, NULL, NULL, 0);
        if (n < 0 || (size_t)n != recorded[p])
            return false;
    }
    return true;
}
