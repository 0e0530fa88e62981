/* The summary's query string: http_query_param and http_query_decode on any
 * bytes, then clock_parse_iso on each decoded from/to value rounded both
 * ways. Checked: decoding never grows the text nor overflows its buffer, a
 * parsed time lies within the documented years, rounding up never lands below
 * rounding down (and by at most 1 ns), and the whole milliseconds of a parsed
 * time format back to a timestamp that parses to the same milliseconds. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "lib/clock.h"
#include "lib/http.h"

#define NS_1970 INT64_C(0)
#define NS_2201 INT64_C(7289654400000000000) /* 2201-01-01T00:00:00Z */

static void check_time(const char *s, size_t len)
{
    int64_t down, up;
    int rd = clock_parse_iso(s, len, 0, &down);
    int ru = clock_parse_iso(s, len, 1, &up);
    FUZZ_CHECK(rd == 0 || rd == -EINVAL);
    FUZZ_CHECK(rd == ru); /* the rounding direction never decides validity */
    if (rd != 0)
        return;
    /* 2200-12-31T23:59:59.999999999 and more digits rounds up to 2201 itself */
    FUZZ_CHECK(down >= NS_1970 && down < NS_2201 && up <= NS_2201);
    FUZZ_CHECK(up >= down && up - down <= 1);
    int64_t ms = down / 1000000;
    char text[CLOCK_ISO_LEN + 1];
    FUZZ_CHECK(clock_format_iso_ms(ms, text) == CLOCK_ISO_LEN);
    int64_t back;
    FUZZ_CHECK(clock_parse_iso(text, CLOCK_ISO_LEN, 0, &back) == 0 && back == ms * 1000000);
}

static void check_param(struct slice query, const char *key)
{
    struct slice v;
    if (!http_query_param(query, key, &v))
        return;
    FUZZ_CHECK(v.ptr >= query.ptr && v.ptr + v.len <= query.ptr + query.len);
    char buf[256]; /* as api.c */
    int n = http_query_decode(v, buf, sizeof(buf));
    FUZZ_CHECK(n == -EINVAL || (n >= 0 && (size_t)n <= v.len && (size_t)n < sizeof(buf)));
    if (n < 0)
        return;
    FUZZ_CHECK(buf[n] == '\0');
    check_time(buf, (size_t)n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct slice q = {(const char *)data, size};
    check_param(q, "from");
    check_param(q, "to");
    check_time((const char *)data, size); /* the parser on raw bytes too */
    return 0;
}
