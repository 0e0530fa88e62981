/* A strict JSON reader over jsmn (the only file that compiles jsmn is json.c).
 * jsmn is a tokenizer that accepts some malformed input (missing commas,
 * unchecked literals, trailing commas); json_parse also validates the grammar,
 * so a document that parses here is RFC 8259 JSON. Strings are not unescaped:
 * getters return the raw bytes between the quotes and say whether they contain
 * a backslash. */
#ifndef LIB_JSON_H
#define LIB_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/slice.h"

#define JSON_MAX_TOKENS 64

enum json_type {
    JSON_NONE = 0,
    JSON_OBJECT,
    JSON_ARRAY,
    JSON_STRING,
    JSON_NUMBER,
    JSON_TRUE,
    JSON_FALSE,
    JSON_NULL
};

struct json_tok {
    enum json_type type;
    int start;  /* byte offset of the value (for strings: after the opening quote) */
    int end;    /* byte offset one past the value (strings: at the closing quote) */
    int size;   /* objects: number of members; arrays: number of elements */
    int parent; /* index of the enclosing object/array token, or -1; for a member value, the key */
};

struct json_doc {
    const char *js;
    size_t len;
    int ntok;
    struct json_tok tok[JSON_MAX_TOKENS];
};

/* Parses and validates js[0..len). Leading/trailing whitespace is allowed,
 * anything else after the top-level value is not. An object with the same key
 * twice (compared after unescaping: "a" and "\u0061" are the same key) is
 * refused like malformed JSON: RFC 8259 leaves its meaning open, and a reader
 * that picks one value may not be the reader that checked it. Returns 0;
 * -EINVAL for malformed JSON or a duplicate key; -E2BIG when it needs more than
 * JSON_MAX_TOKENS tokens. The doc refers to js, which must outlive it. */
int json_parse(struct json_doc *d, const char *js, size_t len) __attribute__((warn_unused_result));

/* Index of the value of member `key` in the object at token `obj`, or -1 when
 * obj is not an object or has no such key. Keys are compared raw (no escapes):
 * a key written with escapes is not found by its plain spelling. */
int json_member(const struct json_doc *d, int obj, const char *key);

/* Typed views of token i. Each returns false when i < 0 or the type differs. */
bool json_string(const struct json_doc *d, int i, struct slice *out, bool *has_escape);
bool json_number(const struct json_doc *d, int i, struct slice *out); /* the raw number text */
bool json_bool(const struct json_doc *d, int i, bool *out);
/* A JSON number that is a non-negative integer fitting in long long. */
bool json_int(const struct json_doc *d, int i, long long *out);

#endif
