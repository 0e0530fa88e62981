/* Benchmark of node/ledger: N payments (argv[1], default 1,000,000) through
 * ACCEPTED + SENDING + RECORDED with requestedAt spread over 300 s, roughly in
 * order; prints ns per apply and per find, summary latency percentiles over
 * 10,000 random windows, and resident memory per payment. Measures, asserts
 * nothing (beyond the events applying). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "node/ledger.h"

static uint64_t rng_state = 0xBE7C4ULL;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long rss_bytes(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void must(int rv, const char *what, size_t i)
{
    if (rv != 0) {
        fprintf(stderr, "bench_ledger: %s of payment %zu failed: %s\n", what, i, strerror(-rv));
        exit(1);
    }
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    if (n == 0) {
        fprintf(stderr, "usage: %s [payments]\n", argv[0]);
        return 2;
    }
    const int64_t t0 = 1752582896000LL, span_ms = 300000;
    const int nwin = 10000;

    /* Inputs first, so the RSS delta is the ledger's alone. */
    uint8_t(*ids)[16] = malloc(n * sizeof(*ids));
    uint32_t *order = malloc(n * sizeof(*order));
    uint64_t *lat = malloc((size_t)nwin * sizeof(*lat));
    if (ids == NULL || order == NULL || lat == NULL)
        return 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t a = rnd(), b = rnd();
        memcpy(ids[i], &a, 8);
        memcpy(ids[i] + 8, &b, 8);
        ids[i][6] = (uint8_t)((ids[i][6] & 0x0F) | 0x40); /* UUID v4 layout */
        ids[i][8] = (uint8_t)((ids[i][8] & 0x3F) | 0x80);
        order[i] = (uint32_t)i;
    }
    for (size_t i = n - 1; i > 0; i--) { /* random lookup order */
        size_t j = rnd() % (i + 1);
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }

    long rss0 = rss_bytes();
    struct ledger *l = ledger_new(n);
    if (l == NULL) {
        fprintf(stderr, "bench_ledger: ledger_new(%zu) failed\n", n);
        return 1;
    }
    long rss_new = rss_bytes();

    struct event ev = {.type = EVENT_ACCEPTED, .origin = 1};
    uint64_t t = now_ns();
    for (size_t i = 0; i < n; i++) {
        memcpy(ev.id, ids[i], 16);
        ev.seq = i + 1;
        ev.amount_cents = 1990;
        ev.at_ms = t0 + (int64_t)(i * (uint64_t)span_ms / n);
        must(ledger_apply(l, &ev, NULL), "ACCEPTED", i);
    }
    uint64_t accept_ns = now_ns() - t;

    /* requestedAt: in order of acceptance, jitter up to 50 ms either way. */
    t = now_ns();
    for (size_t i = 0; i < n; i++) {
        int64_t at = t0 + (int64_t)(i * (uint64_t)span_ms / n) + (int64_t)(rnd() % 101) - 50;
        memcpy(ev.id, ids[i], 16);
        ev.type = EVENT_SENDING;
        ev.processor = (uint8_t)(i % 5 == 0);
        ev.at_ms = at;
        must(ledger_apply(l, &ev, NULL), "SENDING", i);
        ev.type = EVENT_RECORDED;
        ev.amount_cents = 1990;
        must(ledger_apply(l, &ev, NULL), "RECORDED", i);
    }
    uint64_t send_record_ns = now_ns() - t;
    long rss1 = rss_bytes();

    size_t found = 0;
    t = now_ns();
    for (size_t i = 0; i < n; i++)
        found += ledger_find(l, ids[order[i]]) != NULL;
    uint64_t find_ns = now_ns() - t;

    size_t missed = 0;
    t = now_ns();
    for (size_t i = 0; i < n; i++) {
        uint8_t id[16];
        uint64_t a = rnd(), b = rnd();
        memcpy(id, &a, 8);
        memcpy(id + 8, &b, 8);
        missed += ledger_find(l, id) == NULL;
    }
    uint64_t miss_ns = now_ns() - t; /* includes two rnd() per lookup */

    /* A second ACCEPTED of a held id (the nginx retry path): dedup only. */
    t = now_ns();
    ev.type = EVENT_ACCEPTED;
    size_t dups = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(ev.id, ids[order[i]], 16);
        dups += ledger_apply(l, &ev, NULL) == -EEXIST;
    }
    uint64_t dup_ns = now_ns() - t;

    int64_t check = 0;
    for (int w = 0; w < nwin; w++) {
        int64_t from = t0 - 1000 + (int64_t)(rnd() % (uint64_t)(span_ms + 2000));
        int64_t len = (int64_t)(rnd() % 20000); /* audit windows are ~13 s */
        if (w % 10 == 0)
            len = (int64_t)(rnd() % (uint64_t)span_ms);
        struct ledger_totals tot;
        uint64_t a = now_ns();
        ledger_summary(l, from, from + len, &tot);
        lat[w] = now_ns() - a;
        check += tot.count[0] + tot.count[1];
    }
    qsort(lat, (size_t)nwin, sizeof(*lat), cmp_u64);
    struct ledger_totals all;
    ledger_summary(l, INT64_MIN, INT64_MAX, &all);

    printf("bench_ledger: %zu payments, requestedAt over %" PRId64 " s\n", n, span_ms / 1000);
    printf("  ledger_apply(ACCEPTED)          %8.1f ns/op\n", (double)accept_ns / (double)n);
    printf("  ledger_apply(SENDING+RECORDED)  %8.1f ns/pair\n", (double)send_record_ns / (double)n);
    printf("  ledger_find (hit, random order) %8.1f ns/op  (%zu found)\n",
           (double)find_ns / (double)n, found);
    printf("  ledger_find (miss, incl. rng)   %8.1f ns/op  (%zu missed)\n",
           (double)miss_ns / (double)n, missed);
    printf("  ledger_apply(ACCEPTED, dup)     %8.1f ns/op  (%zu -EEXIST)\n",
           (double)dup_ns / (double)n, dups);
    printf("  ledger_summary over %d windows: p50 %" PRIu64 " ns, p99 %" PRIu64 " ns, max %" PRIu64
           " ns (sum of counts %" PRId64 ")\n",
           nwin, lat[nwin / 2], lat[nwin * 99 / 100], lat[nwin - 1], check);
    /* Sums are 128-bit; these (n payments of 19.90) fit 64 bits. */
    printf("  all: default %" PRId64 " / %" PRIu64 " cents, fallback %" PRId64 " / %" PRIu64
           " cents\n",
           all.count[0], (uint64_t)all.cents[0], all.count[1], (uint64_t)all.cents[1]);
    printf("  RSS: %ld KiB before, %ld KiB after ledger_new, %ld KiB after %zu payments: "
           "%.1f bytes/payment\n",
           rss0 / 1024, rss_new / 1024, rss1 / 1024, n, (double)(rss1 - rss0) / (double)n);

    ledger_free(l);
    free(ids);
    free(order);
    free(lat);
    return 0;
}
