/* Strict JSON reader: jsmn finds the token boundaries, then a small walker
 * re-reads every byte of the document (token contents and the gaps between
 * tokens) against the RFC 8259 grammar, so jsmn's leniency never leaks out.
 * Strings are validated (escapes, control characters, UTF-8) but not unescaped;
 * a key repeated within one object (compared unescaped) makes the document bad.
 * No allocation: the jsmn tokens live on the stack, the result in the caller's doc. */
#include "lib/json.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "lib/text.h"

/* Default (non-strict) mode on purpose: the walker checks everything, and
 * non-strict jsmn accepts top-level scalars that strict mode reports as PART. */
#define JSMN_STATIC
#include <jsmn.h>

struct walk {
    const char *js;
    size_t len;
    size_t pos;
    const jsmntok_t *jt; /* jsmn's tokens, in document order */
    int njt;
    int next; /* next jsmn token to consume */
    struct json_tok *out;
};

static void skip_ws(struct walk *w)
{
    while (w->pos < w->len) {
        char c = w->js[w->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        w->pos++;
    }
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? over exactly s[0..n). */
static bool number_ok(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n || !is_digit(s[i]))
        return false;
    if (s[i] == '0') {
        i++;
    } else {
        while (i < n && is_digit(s[i]))
            i++;
    }
    if (i < n && s[i] == '.') {
        size_t b = ++i;
        while (i < n && is_digit(s[i]))
            i++;
        if (i == b)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t b = i;
        while (i < n && is_digit(s[i]))
            i++;
        if (i == b)
            return false;
    }
    return i == n;
}

/* Validates string content s[0..n) (between the quotes). */
static bool string_ok(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned char c = u[i];
        if (c == '"' || c < 0x20)
            return false;
        if (c == '\\') {
            if (i + 1 >= n)
                return false;
            char e = s[i + 1];
            if (e == 'u') {
                if (i + 6 > n || text_hex_digit(s[i + 2]) < 0 || text_hex_digit(s[i + 3]) < 0 ||
                    text_hex_digit(s[i + 4]) < 0 || text_hex_digit(s[i + 5]) < 0)
                    return false;
                i += 6;
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                       e == 'r' || e == 't') {
                i += 2;
            } else {
                return false;
            }
        } else if (c >= 0x80) {
            size_t k = text_utf8_seq(u + i, n - i);
            if (k == 0)
                return false;
            i += k;
        } else {
            i++;
        }
    }
    return true;
}

static enum json_type literal_type(const char *s, size_t n)
{
    if (n == 4 && memcmp(s, "true", 4) == 0)
        return JSON_TRUE;
    if (n == 5 && memcmp(s, "false", 5) == 0)
        return JSON_FALSE;
    if (n == 4 && memcmp(s, "null", 4) == 0)
        return JSON_NULL;
    if (number_ok(s, n))
        return JSON_NUMBER;
    return JSON_NONE;
}

/* Consumes the string token that must start at w->pos (the opening quote). */
static int walk_string(struct walk *w, int idx, int parent)
{
    const jsmntok_t *t = &w->jt[idx];
    if (t->type != JSMN_STRING || w->pos >= w->len || w->js[w->pos] != '"' ||
        (size_t)t->start != w->pos + 1 || (size_t)t->end >= w->len || w->js[t->end] != '"')
        return -EINVAL;
    if (!string_ok(w->js + t->start, (size_t)(t->end - t->start)))
        return -EINVAL;
    w->out[idx] = (struct json_tok){JSON_STRING, t->start, t->end, 0, parent};
    w->pos = (size_t)t->end + 1;
    return 0;
}

/* Next code point of a string already accepted by string_ok, from s[*i]: an
 * escape (a \uD8xx\uDCxx pair is one code point; a lone surrogate stands for
 * itself), a UTF-8 sequence, or an ASCII byte. */
static uint32_t key_next(const char *s, size_t n, size_t *i)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t k = *i;
    if (u[k] == '\\') {
        char e = s[k + 1];
        if (e != 'u') {
            *i = k + 2;
            switch (e) {
            case 'b':
                return '\b';
            case 'f':
                return '\f';
            case 'n':
                return '\n';
            case 'r':
                return '\r';
            case 't':
                return '\t';
            default:
                return (uint32_t)e; /* '"', '\\', '/' */
            }
        }
        uint32_t cp = 0;
        for (int d = 2; d < 6; d++)
            cp = cp * 16 + (uint32_t)text_hex_digit(s[k + d]);
        k += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF && k + 6 <= n && s[k] == '\\' && s[k + 1] == 'u') {
            uint32_t lo = 0;
            for (int d = 2; d < 6; d++)
                lo = lo * 16 + (uint32_t)text_hex_digit(s[k + d]);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                k += 6;
            }
        }
        *i = k;
        return cp;
    }
    if (u[k] < 0x80) {
        *i = k + 1;
        return u[k];
    }
    size_t len = text_utf8_seq(u + k, n - k); /* 2..4: string_ok checked it */
    uint32_t cp = u[k] & (0xFF >> (len + 1));
    for (size_t j = 1; j < len; j++)
        cp = cp << 6 | (u[k + j] & 0x3F);
    *i = k + len;
    return cp;
}

/* Whether two validated strings name the same key once unescaped, so that
 * "a" and "\u0061" are one key. */
static bool key_equal(const char *a, size_t an, const char *b, size_t bn)
{
    size_t i = 0, j = 0;
    while (i < an && j < bn)
        if (key_next(a, an, &i) != key_next(b, bn, &j))
            return false;
    return i == an && j == bn;
}

/* Whether key token k repeats an earlier key of object obj. The object's keys
 * are the tokens between them whose parent is obj (values hang off their key). */
static bool key_repeated(const struct walk *w, int obj, int k)
{
    const struct json_tok *kt = &w->out[k];
    for (int j = obj + 1; j < k; j++) {
        const struct json_tok *t = &w->out[j];
        if (t->parent == obj && key_equal(w->js + t->start, (size_t)(t->end - t->start),
                                          w->js + kt->start, (size_t)(kt->end - kt->start)))
            return true;
    }
    return false;
}

static int walk_value(struct walk *w, int parent);

static int walk_object(struct walk *w, int idx, int parent)
{
    const jsmntok_t *t = &w->jt[idx];
    int count = 0;
    w->pos++; /* '{' */
    skip_ws(w);
    if (w->pos < w->len && w->js[w->pos] == '}') {
        w->pos++;
    } else {
        for (;;) {
            skip_ws(w);
            if (w->next >= w->njt)
                return -EINVAL;
            int k = w->next++;
            int rv = walk_string(w, k, idx);
            if (rv != 0)
                return rv;
            w->out[k].size = 1; /* a key has one value */
            if (key_repeated(w, idx, k))
                return -EINVAL; /* which value would count is anyone's guess */
            skip_ws(w);
            if (w->pos >= w->len || w->js[w->pos] != ':')
                return -EINVAL;
            w->pos++;
            rv = walk_value(w, k);
            if (rv != 0)
                return rv;
            count++;
            skip_ws(w);
            if (w->pos >= w->len)
                return -EINVAL;
            char c = w->js[w->pos++];
            if (c == '}')
                break;
            if (c != ',')
                return -EINVAL;
        }
    }
    if ((size_t)t->end != w->pos)
        return -EINVAL;
    w->out[idx] = (struct json_tok){JSON_OBJECT, t->start, t->end, count, parent};
    return 0;
}

static int walk_array(struct walk *w, int idx, int parent)
{
    const jsmntok_t *t = &w->jt[idx];
    int count = 0;
    w->pos++; /* '[' */
    skip_ws(w);
    if (w->pos < w->len && w->js[w->pos] == ']') {
        w->pos++;
    } else {
        for (;;) {
            int rv = walk_value(w, idx);
            if (rv != 0)
                return rv;
            count++;
            skip_ws(w);
            if (w->pos >= w->len)
                return -EINVAL;
            char c = w->js[w->pos++];
            if (c == ']')
                break;
            if (c != ',')
                return -EINVAL;
        }
    }
    if ((size_t)t->end != w->pos)
        return -EINVAL;
    w->out[idx] = (struct json_tok){JSON_ARRAY, t->start, t->end, count, parent};
    return 0;
}

static int walk_value(struct walk *w, int parent)
{
    skip_ws(w);
    if (w->next >= w->njt || w->pos >= w->len)
        return -EINVAL;
    int idx = w->next++;
    const jsmntok_t *t = &w->jt[idx];
    switch (t->type) {
    case JSMN_OBJECT:
        if ((size_t)t->start != w->pos || w->js[w->pos] != '{')
            return -EINVAL;
        return walk_object(w, idx, parent);
    case JSMN_ARRAY:
        if ((size_t)t->start != w->pos || w->js[w->pos] != '[')
            return -EINVAL;
        return walk_array(w, idx, parent);
    case JSMN_STRING:
        return walk_string(w, idx, parent);
    case JSMN_PRIMITIVE: {
        if ((size_t)t->start != w->pos || t->end < t->start || (size_t)t->end > w->len)
            return -EINVAL;
        enum json_type ty = literal_type(w->js + t->start, (size_t)(t->end - t->start));
        if (ty == JSON_NONE)
            return -EINVAL;
        w->out[idx] = (struct json_tok){ty, t->start, t->end, 0, parent};
        w->pos = (size_t)t->end;
        return 0;
    }
    default:
        return -EINVAL;
    }
}

int json_parse(struct json_doc *d, const char *js, size_t len)
{
    d->js = js;
    d->len = len;
    d->ntok = 0;
    if (js == NULL || len > (size_t)INT_MAX) /* jsmn offsets are int */
        return -EINVAL;
    jsmn_parser p;
    jsmntok_t jt[JSON_MAX_TOKENS];
    jsmn_init(&p);
    int n = jsmn_parse(&p, js, len, jt, JSON_MAX_TOKENS);
    if (n == JSMN_ERROR_NOMEM)
        return -E2BIG;
    if (n <= 0)
        return -EINVAL; /* INVAL, PART, or no value at all */
    struct walk w = {js, len, 0, jt, n, 0, d->tok};
    int rv = walk_value(&w, -1);
    if (rv != 0)
        return rv;
    skip_ws(&w);
    if (w.pos != len || w.next != n)
        return -EINVAL;
    d->ntok = n;
    return 0;
}

static bool tok_ok(const struct json_doc *d, int i, enum json_type ty)
{
    return i >= 0 && i < d->ntok && d->tok[i].type == ty;
}

int json_member(const struct json_doc *d, int obj, const char *key)
{
    if (!tok_ok(d, obj, JSON_OBJECT) || key == NULL)
        return -1;
    size_t klen = strlen(key);
    int end = d->tok[obj].end;
    for (int j = obj + 1; j < d->ntok && d->tok[j].start < end; j++) {
        const struct json_tok *t = &d->tok[j];
        if (t->parent != obj)
            continue;
        if ((size_t)(t->end - t->start) == klen && memcmp(d->js + t->start, key, klen) == 0)
            return j + 1; /* the value follows its key; keys are unique */
    }
    return -1;
}

bool json_string(const struct json_doc *d, int i, struct slice *out, bool *has_escape)
{
    if (!tok_ok(d, i, JSON_STRING))
        return false;
    const struct json_tok *t = &d->tok[i];
    size_t n = (size_t)(t->end - t->start);
    out->ptr = d->js + t->start;
    out->len = n;
    if (has_escape != NULL)
        *has_escape = memchr(out->ptr, '\\', n) != NULL;
    return true;
}

bool json_number(const struct json_doc *d, int i, struct slice *out)
{
    if (!tok_ok(d, i, JSON_NUMBER))
        return false;
    out->ptr = d->js + d->tok[i].start;
    out->len = (size_t)(d->tok[i].end - d->tok[i].start);
    return true;
}

bool json_bool(const struct json_doc *d, int i, bool *out)
{
    if (i < 0 || i >= d->ntok)
        return false;
    if (d->tok[i].type == JSON_TRUE)
        *out = true;
    else if (d->tok[i].type == JSON_FALSE)
        *out = false;
    else
        return false;
    return true;
}

bool json_int(const struct json_doc *d, int i, long long *out)
{
    struct slice s;
    if (!json_number(d, i, &s))
        return false;
    unsigned long long v = 0;
    for (size_t k = 0; k < s.len; k++) {
        char c = s.ptr[k];
        if (!is_digit(c))
            return false; /* sign, fraction or exponent: not a plain integer */
        unsigned dig = (unsigned)(c - '0');
        if (v > ((unsigned long long)LLONG_MAX - dig) / 10)
            return false;
        v = v * 10 + dig;
    }
    *out = (long long)v;
    return true;
}
