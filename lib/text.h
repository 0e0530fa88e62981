/* Byte-level text helpers shared by the parsers and the logger: UTF-8
 * validation and hex digits. Pure, libc only. */
#ifndef LIB_TEXT_H
#define LIB_TEXT_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s[0..n) (s[0] >= 0x80), or 0.
 * Rejects overlong forms, surrogates and code points above U+10FFFF. */
size_t text_utf8_seq(const unsigned char *s, size_t n);

/* Value of a hex digit (either case), or -1. */
int text_hex_digit(int c);

#endif
