/* Wall-clock time and strict ISO-8601 UTC parse/format, integer arithmetic
 * only (no timegm/mktime, no locale, no time zone database). Accepts only the
 * UTC forms the service exchanges; offsets other than +00:00 are rejected. */
#include "lib/clock.h"

#include <errno.h>
#include <stdbool.h>
#include <time.h>

#define NS_PER_SEC INT64_C(1000000000)
#define MS_PER_DAY INT64_C(86400000)
/* clock_format_iso_ms clamps to 0000-01-01 .. 9999-12-31T23:59:59.999 so the
 * output is always exactly CLOCK_ISO_LEN bytes. */
#define FMT_MIN_MS INT64_C(-62167219200000)
#define FMT_MAX_MS INT64_C(253402300799999)

int64_t clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12, d 1..31).
 * Counts in 400-year eras that start on March 1st, so the leap day is last. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    if (m <= 2)
        y -= 1;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                         /* 0..399 */
    int64_t mp = (m + 9) % 12;                           /* March = 0 */
    int64_t doy = (153 * mp + 2) / 5 + d - 1;            /* 0..365 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; /* 0..146096 */
    return era * 146097 + doe - 719468; /* 719468 = days from 0000-03-01 to 1970-01-01 */
}

/* Inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;                                      /* 0..146096 */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0..399 */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* 0..365 */
    int64_t mp = (5 * doy + 2) / 153;                                    /* 0..11 */
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* Reads exactly n digits at s into *out; false if any is not a digit. */
static bool read_digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

int clock_parse_iso(const char *s, size_t len, int round_up, int64_t *out_ns)
{
    /* "YYYY-MM-DDTHH:MM:SS" is 19 bytes, then fraction, then "Z" or "+00:00". */
    if (s == NULL || len < 20)
        return -EINVAL;
    int y, mo, d, h, mi, sec;
    if (!read_digits(s, 4, &y) || s[4] != '-' || !read_digits(s + 5, 2, &mo) || s[7] != '-' ||
        !read_digits(s + 8, 2, &d) || s[10] != 'T' || !read_digits(s + 11, 2, &h) || s[13] != ':' ||
        !read_digits(s + 14, 2, &mi) || s[16] != ':' || !read_digits(s + 17, 2, &sec))
        return -EINVAL;
    if (y < 1970 || y > 2200 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
        mi > 59 || sec > 59)
        return -EINVAL;
    size_t i = 19;
    int64_t frac_ns = 0;
    if (s[i] == '.') {
        i++;
        size_t fb = i;
        bool beyond_nonzero = false;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            size_t k = i - fb;
            if (k < 9)
                frac_ns = frac_ns * 10 + (s[i] - '0');
            else if (s[i] != '0')
                beyond_nonzero = true;
            i++;
        }
        size_t nf = i - fb;
        if (nf == 0)
            return -EINVAL;
        for (size_t k = nf; k < 9; k++)
            frac_ns *= 10;
        if (beyond_nonzero && round_up)
            frac_ns += 1; /* at most 999999999 + 1: carries into the seconds below */
    }
    size_t rest = len - i;
    if (!(rest == 1 && s[i] == 'Z') &&
        !(rest == 6 && s[i] == '+' && s[i + 1] == '0' && s[i + 2] == '0' && s[i + 3] == ':' &&
          s[i + 4] == '0' && s[i + 5] == '0'))
        return -EINVAL;
    int64_t days = days_from_civil(y, mo, d);
    int64_t secs = days * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + sec;
    *out_ns = secs * NS_PER_SEC + frac_ns;
    return 0;
}

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

size_t clock_format_iso_ms(int64_t ms, char *buf)
{
    if (ms < FMT_MIN_MS)
        ms = FMT_MIN_MS;
    if (ms > FMT_MAX_MS)
        ms = FMT_MAX_MS;
    int64_t days = ms / MS_PER_DAY;
    int64_t rem = ms % MS_PER_DAY;
    if (rem < 0) {
        rem += MS_PER_DAY;
        days -= 1;
    }
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    int msec = (int)(rem % 1000);
    int64_t sod = rem / 1000;
    int yy = (int)y; /* 0..9999 after the clamp */
    buf[0] = (char)('0' + yy / 1000);
    buf[1] = (char)('0' + yy / 100 % 10);
    buf[2] = (char)('0' + yy / 10 % 10);
    buf[3] = (char)('0' + yy % 10);
    buf[4] = '-';
    put2(buf + 5, m);
    buf[7] = '-';
    put2(buf + 8, d);
    buf[10] = 'T';
    put2(buf + 11, (int)(sod / 3600));
    buf[13] = ':';
    put2(buf + 14, (int)(sod / 60 % 60));
    buf[16] = ':';
    put2(buf + 17, (int)(sod % 60));
    buf[19] = '.';
    buf[20] = (char)('0' + msec / 100);
    buf[21] = (char)('0' + msec / 10 % 10);
    buf[22] = (char)('0' + msec % 10);
    buf[23] = 'Z';
    buf[24] = '\0';
    return CLOCK_ISO_LEN;
}
