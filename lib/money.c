/* Decimal text <-> int64 cents, exact both ways, integer arithmetic only.
 * Parsing takes the raw text of a JSON number token and checks the JSON number
 * grammar itself; it does not skip whitespace or accept anything JSON would not. */
#include "lib/money.h"

#include <errno.h>
#include <stdbool.h>

#define EXP_CLAMP INT64_C(1000000000) /* saturate huge exponents: far beyond any valid scale */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Digit k of the significand, counting across the integer and fraction parts. */
static char sig_digit(const char *s, size_t ib, size_t ilen, size_t fb, size_t k)
{
    return k < ilen ? s[ib + k] : s[fb + (k - ilen)];
}

int money_parse_cents(const char *s, size_t len, int64_t *out_cents)
{
    if (s == NULL || len == 0)
        return -EINVAL;
    size_t i = 0;
    bool neg = false;
    if (s[i] == '-') {
        neg = true;
        i++;
    }
    /* int part: 0 | [1-9][0-9]* */
    size_t ib = i;
    if (i >= len || !is_digit(s[i]))
        return -EINVAL;
    if (s[i] == '0') {
        i++;
    } else {
        while (i < len && is_digit(s[i]))
            i++;
    }
    size_t ilen = i - ib;
    /* fraction: \.[0-9]+ */
    size_t fb = i, flen = 0;
    if (i < len && s[i] == '.') {
        i++;
        fb = i;
        while (i < len && is_digit(s[i]))
            i++;
        flen = i - fb;
        if (flen == 0)
            return -EINVAL;
    }
    /* exponent: [eE][+-]?[0-9]+, saturated so that 1e99999999999 cannot overflow */
    int64_t exp = 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool eneg = false;
        if (i < len && (s[i] == '+' || s[i] == '-')) {
            eneg = s[i] == '-';
            i++;
        }
        size_t eb = i;
        while (i < len && is_digit(s[i])) {
            if (exp < EXP_CLAMP)
                exp = exp * 10 + (s[i] - '0');
            i++;
        }
        if (i == eb)
            return -EINVAL;
        if (eneg)
            exp = -exp;
    }
    if (i != len)
        return -EINVAL;

    /* Grammar is fine; now the value. */
    if (neg)
        return -EDOM; /* negative, or -0 */
    size_t ndig = ilen + flen;
    size_t first = 0;
    while (first < ndig && sig_digit(s, ib, ilen, fb, first) == '0')
        first++;
    if (first == ndig)
        return -EDOM; /* zero */
    size_t last = ndig - 1;
    while (sig_digit(s, ib, ilen, fb, last) == '0')
        last--;
    size_t nsig = last - first + 1;
    size_t trailing = ndig - 1 - last;
    /* value = D * 10^(exp - flen + trailing); cents = D * 10^scale */
    if (flen > (size_t)EXP_CLAMP || trailing > (size_t)EXP_CLAMP || nsig > 15)
        return -EDOM; /* more than 15 significant digits never fits 1..1e14 exactly */
    int64_t scale = exp - (int64_t)flen + (int64_t)trailing + 2;
    if (scale < 0)
        return -EDOM; /* last significant digit is below a cent */
    if ((int64_t)nsig + scale > 15)
        return -EDOM; /* at least 10^15 cents */
    int64_t v = 0;
    for (size_t k = first; k <= last; k++)
        v = v * 10 + (sig_digit(s, ib, ilen, fb, k) - '0');
    for (int64_t k = 0; k < scale; k++)
        v *= 10;
    if (v > MONEY_MAX_CENTS)
        return -EDOM;
    *out_cents = v;
    return 0;
}

size_t money_format(int64_t cents, char *buf)
{
    /* Work on the magnitude as uint64 so INT64_MIN has no overflow. */
    uint64_t mag = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
    char tmp[MONEY_FMT_MAX];
    size_t n = 0;
    tmp[n++] = (char)('0' + mag % 10);
    mag /= 10;
    tmp[n++] = (char)('0' + mag % 10);
    mag /= 10;
    tmp[n++] = '.';
    do {
        tmp[n++] = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag != 0);
    if (cents < 0)
        tmp[n++] = '-';
    for (size_t k = 0; k < n; k++)
        buf[k] = tmp[n - 1 - k];
    buf[n] = '\0';
    return n;
}
