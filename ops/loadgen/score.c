/* Exact decimal parsing/formatting and the challenge's score formula. Every
 * rounding is explicit and half away from zero. */
#include "score.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define DEC_LIMIT ((__int128)100000000000000000LL * 1000 * LG_DEC_ONE) /* 10^20 units */

int lg_dec_parse(const char *s, size_t len, __int128 *out)
{
    size_t i = 0;
    bool neg = false;
    if (s == NULL || len == 0)
        return -EINVAL;
    if (s[i] == '-') {
        neg = true;
        i++;
    }
    /* JSON: int = "0" | [1-9][0-9]* */
    if (i >= len || s[i] < '0' || s[i] > '9')
        return -EINVAL;
    if (s[i] == '0' && i + 1 < len && s[i + 1] >= '0' && s[i + 1] <= '9')
        return -EINVAL;
    /* Collect significant digits as mantissa with a decimal exponent. */
    __int128 mant = 0;
    int exp10 = 0;
    bool overflow = false;
    bool nonzero_dropped = false;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        if (mant < DEC_LIMIT)
            mant = mant * 10 + (s[i] - '0');
        else
            overflow = true;
    }
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len || s[i] < '0' || s[i] > '9')
            return -EINVAL;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            if (mant < DEC_LIMIT) {
                mant = mant * 10 + (s[i] - '0');
                exp10--;
            } else if (s[i] != '0') {
                nonzero_dropped = true;
            }
        }
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool eneg = false;
        if (i < len && (s[i] == '+' || s[i] == '-')) {
            eneg = s[i] == '-';
            i++;
        }
        if (i >= len || s[i] < '0' || s[i] > '9')
            return -EINVAL;
        int e = 0;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            if (e < 10000)
                e = e * 10 + (s[i] - '0');
        }
        exp10 += eneg ? -e : e;
    }
    if (i != len)
        return -EINVAL;
    if (overflow || nonzero_dropped)
        return -EDOM;
    /* value = mant * 10^exp10; scale to 10^LG_DEC_FRAC */
    int shift = exp10 + LG_DEC_FRAC;
    while (shift > 0 && mant != 0) {
        if (mant >= DEC_LIMIT)
            return -EDOM;
        mant *= 10;
        shift--;
    }
    while (shift < 0) {
        if (mant % 10 != 0)
            return -EDOM;
        mant /= 10;
        shift++;
    }
    if (mant >= DEC_LIMIT)
        return -EDOM;
    *out = neg ? -mant : mant;
    return 0;
}

size_t lg_dec_format(__int128 v, int min_frac, char *buf)
{
    char tmp[LG_DEC_FMT_MAX];
    size_t n = 0;
    bool neg = v < 0;
    unsigned __int128 u = neg ? (unsigned __int128)(-(v + 1)) + 1 : (unsigned __int128)v;
    /* digits, least significant first; at least LG_DEC_FRAC + 1 of them */
    do {
        tmp[n++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u != 0 || n < LG_DEC_FRAC + 1);
    if (min_frac < 0)
        min_frac = 0;
    if (min_frac > LG_DEC_FRAC)
        min_frac = LG_DEC_FRAC;
    int frac = LG_DEC_FRAC;
    size_t skip = 0; /* trailing fraction zeros trimmed */
    while (frac > min_frac && tmp[skip] == '0') {
        skip++;
        frac--;
    }
    size_t o = 0;
    if (neg)
        buf[o++] = '-';
    for (size_t k = n; k-- > LG_DEC_FRAC;)
        buf[o++] = tmp[k];
    if (frac > 0) {
        buf[o++] = '.';
        for (size_t k = LG_DEC_FRAC; k-- > skip;)
            buf[o++] = tmp[k];
    }
    buf[o] = '\0';
    return o;
}

__int128 lg_dec_mul(__int128 a, __int128 b)
{
    bool neg = (a < 0) != (b < 0);
    unsigned __int128 ua = a < 0 ? (unsigned __int128)(-a) : (unsigned __int128)a;
    unsigned __int128 ub = b < 0 ? (unsigned __int128)(-b) : (unsigned __int128)b;
    unsigned __int128 one = (unsigned __int128)LG_DEC_ONE;
    /* (ai*ONE + af) * ub / ONE = ai*ub + af*ub/ONE; keeps products in range for
     * the magnitudes we handle (amounts < 10^20, rates <= a few units) */
    unsigned __int128 ai = ua / one, af = ua % one;
    unsigned __int128 whole = ai * ub;
    unsigned __int128 part = af * ub;
    unsigned __int128 q = part / one, r = part % one;
    if (r * 2 >= one)
        q++;
    unsigned __int128 res = whole + q;
    return neg ? -(__int128)res : (__int128)res;
}

int lg_score_p99_cms(uint64_t p99_ns)
{
    uint64_t cms = (p99_ns + 5000) / 10000;
    return cms > INT32_MAX ? INT32_MAX : (int)cms;
}

int lg_score_bonus_h(int p99_cms)
{
    /* (11 - p99/100) * 0.02 in hundredths = (1100 - p99_cms) * 2 / 100
     * = (1100 - p99_cms) / 50, rounded half-up; negative means no bonus */
    long d = 1100L - p99_cms;
    if (d <= 0)
        return 0;
    return (int)((d + 25) / 50);
}

void lg_score_compute(const struct lg_score_in *in, struct lg_score *out)
{
    memset(out, 0, sizeof(*out));
    int64_t recorded = 0;
    for (int p = 0; p < 2; p++) {
        const struct lg_proc_summary *ps = &in->proc[p];
        out->gross += ps->amount;
        if (ps->has_fee_rate)
            out->fees += lg_dec_mul(ps->fee_rate, ps->amount);
        else if (ps->has_total_fee)
            out->fees += ps->total_fee;
        recorded += ps->count;
    }
    out->p99_cms = lg_score_p99_cms(in->p99_ns);
    out->bonus_h = lg_score_bonus_h(out->p99_cms);
    out->fine_h = in->inconsistencies > 0 ? 35 : 0;
    out->lag = in->ok_posts - recorded;
    __int128 partial = out->gross - out->fees;
    __int128 m = 100 + out->bonus_h - out->fine_h; /* hundredths */
    __int128 num = partial * m;
    __int128 q = num / 100, r = num % 100;
    if (r >= 50)
        q++;
    else if (r <= -50)
        q--;
    out->net = q;
}
