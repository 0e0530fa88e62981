/* The challenge's score, computed exactly: money as fixed-point decimals in a
 * 128-bit integer (LG_DEC_ONE units per currency unit), no floating point.
 *   gross = sum of the processors' recorded amounts
 *   fees  = sum over processors of feePerTransaction x amount (or their totalFee
 *           when the rate is unknown)
 *   p99   = p99 of every 2xx request, rounded half-up to 0.01 ms
 *   bonus = max(round((11 - p99) x 0.02, 2), 0), half-up
 *   fine  = 0.35 when any audit found an inconsistency, else 0
 *   lag   = successful posts - payments recorded by the processors
 *   net   = (gross - fees) x (1 + bonus - fine)
 * Pure arithmetic: no I/O, no allocation. */
#ifndef LG_SCORE_H
#define LG_SCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LG_DEC_FRAC 14                           /* fraction digits kept */
#define LG_DEC_ONE ((__int128)100000000000000LL) /* 1.0 = 10^14 */
#define LG_DEC_CENT ((__int128)1000000000000LL)  /* 0.01 */
#define LG_DEC_FMT_MAX 64                        /* buffer for lg_dec_format */

/* Parses a JSON number's text (sign, digits, fraction, exponent) exactly.
 * Returns 0; -EINVAL for text that is not a JSON number; -EDOM when the value
 * has more than LG_DEC_FRAC fraction digits that are not zero, or is too large
 * (magnitude >= 10^20). */
int lg_dec_parse(const char *s, size_t len, __int128 *out) __attribute__((warn_unused_result));

/* Writes v in plain decimal notation with at least min_frac and at most
 * LG_DEC_FRAC fraction digits (trailing zeros beyond min_frac trimmed), plus NUL,
 * into buf (LG_DEC_FMT_MAX bytes). Returns the length. */
size_t lg_dec_format(__int128 v, int min_frac, char *buf);

/* a x b for two decimals, rounded half away from zero to LG_DEC_FRAC digits. */
__int128 lg_dec_mul(__int128 a, __int128 b);

/* What one processor's admin summary says. */
struct lg_proc_summary {
    int64_t count;     /* totalRequests */
    __int128 amount;   /* totalAmount */
    __int128 fee_rate; /* feePerTransaction, e.g. 0.05 */
    bool has_fee_rate;
    __int128 total_fee; /* totalFee */
    bool has_total_fee;
};

struct lg_score_in {
    struct lg_proc_summary proc[2]; /* [0] default, [1] fallback */
    uint64_t p99_ns;                /* p99 over every 2xx request */
    uint64_t inconsistencies;       /* sum over audits */
    int64_t ok_posts;               /* POST /payments answered 2xx */
};

struct lg_score {
    __int128 gross;
    __int128 fees;
    int p99_cms; /* p99 in hundredths of a millisecond */
    int bonus_h; /* bonus in hundredths (0..22) */
    int fine_h;  /* fine in hundredths (0 or 35) */
    int64_t lag; /* ok_posts - recorded; negative means recorded more than accepted */
    __int128 net;
};

/* Rounds nanoseconds half-up to hundredths of a millisecond. */
int lg_score_p99_cms(uint64_t p99_ns);
/* max(round((11 - p99) x 0.02, 2), 0) in hundredths, for p99 in hundredths of ms. */
int lg_score_bonus_h(int p99_cms);
void lg_score_compute(const struct lg_score_in *in, struct lg_score *out);

#endif
