/* Canonical UUID text <-> 16 bytes. Strict: exactly 8-4-4-4-12 hex digits with
 * dashes, either case; no braces, no "urn:uuid:" prefix, no surrounding space.
 * Does not check the version or variant bits. */
#include "lib/uuid.h"

#include <errno.h>
#include <string.h>

#include "lib/text.h"

static int is_dash_pos(size_t i)
{
    return i == 8 || i == 13 || i == 18 || i == 23;
}

int uuid_parse(const char *s, size_t len, uint8_t out[16])
{
    if (s == NULL || len != UUID_TEXT_LEN)
        return -EINVAL;
    uint8_t tmp[16];
    size_t nib = 0;
    for (size_t i = 0; i < UUID_TEXT_LEN; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_dash_pos(i)) {
            if (c != '-')
                return -EINVAL;
            continue;
        }
        int v = text_hex_digit(c);
        if (v < 0)
            return -EINVAL;
        if ((nib & 1) == 0)
            tmp[nib / 2] = (uint8_t)(v << 4);
        else
            tmp[nib / 2] |= (uint8_t)v;
        nib++;
    }
    for (size_t i = 0; i < 16; i++)
        out[i] = tmp[i];
    return 0;
}

void uuid_format(const uint8_t id[16], char *buf)
{
    static const char digits[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            buf[o++] = '-';
        buf[o++] = digits[id[i] >> 4];
        buf[o++] = digits[id[i] & 0x0f];
    }
}

uint64_t uuid_hash(const uint8_t id[16])
{
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    uint64_t h = a ^ (b * 0x9E3779B97F4A7C15ULL);
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ULL;
    h ^= h >> 33;
    return h;
}
