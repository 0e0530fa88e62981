/* The JSON payment body: json_parse on any bytes, then the reads POST
 * /payments makes (correlationId as a UUID, amount as cents). Checked: the
 * result codes, the token layout of an accepted document (bounds, parents,
 * member counts, no key twice in an object), that whitespace after a document
 * is accepted and anything else is not, and that a parsed UUID and amount
 * format back to text that parses to the same value. */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "lib/json.h"
#include "lib/money.h"
#include "lib/uuid.h"

#define FUZZ_JSON_MAX 4096 /* the node's body limit */

static char copy[FUZZ_JSON_MAX + 2];

static void check_layout(const struct json_doc *d, size_t len)
{
    FUZZ_CHECK(d->ntok >= 1 && d->ntok <= JSON_MAX_TOKENS);
    FUZZ_CHECK(d->tok[0].parent == -1);
    for (int i = 0; i < d->ntok; i++) {
        const struct json_tok *t = &d->tok[i];
        FUZZ_CHECK(t->type != JSON_NONE);
        FUZZ_CHECK(t->start >= 0 && t->start <= t->end && (size_t)t->end <= len);
        FUZZ_CHECK(t->parent < i);
        if (i > 0) {
            /* within the enclosing object or array (a member value's parent is its key) */
            const struct json_tok *p = &d->tok[t->parent];
            if (p->type == JSON_STRING) {
                FUZZ_CHECK(p->end < t->start);
                p = &d->tok[p->parent];
            }
            FUZZ_CHECK(p->type == JSON_OBJECT || p->type == JSON_ARRAY);
            FUZZ_CHECK(t->start > p->start && t->end < p->end);
        }
        if (t->type != JSON_OBJECT && t->type != JSON_ARRAY)
            continue;
        int members = 0;
        for (int j = i + 1; j < d->ntok; j++) {
            const struct json_tok *m = &d->tok[j];
            if (m->parent != i)
                continue;
            members++;
            if (t->type != JSON_OBJECT)
                continue;
            FUZZ_CHECK(m->type == JSON_STRING && m->size == 1); /* a key */
            for (int k = i + 1; k < j; k++) {
                const struct json_tok *o = &d->tok[k];
                if (o->parent == i)
                    FUZZ_CHECK(o->end - o->start != m->end - m->start ||
                               memcmp(d->js + o->start, d->js + m->start,
                                      (size_t)(m->end - m->start)) != 0);
            }
        }
        FUZZ_CHECK(members == t->size);
    }
}

static void check_payment(const struct json_doc *d)
{
    if (d->tok[0].type != JSON_OBJECT)
        return;
    struct slice s;
    bool esc;
    uint8_t id[16];
    if (json_string(d, json_member(d, 0, "correlationId"), &s, &esc) && !esc &&
        uuid_parse(s.ptr, s.len, id) == 0) {
        char text[UUID_TEXT_LEN];
        uuid_format(id, text);
        FUZZ_CHECK(s.len == UUID_TEXT_LEN);
        for (size_t i = 0; i < UUID_TEXT_LEN; i++)
            FUZZ_CHECK(text[i] == tolower((unsigned char)s.ptr[i]));
    }
    if (json_number(d, json_member(d, 0, "amount"), &s)) {
        int64_t cents;
        int rv = money_parse_cents(s.ptr, s.len, &cents);
        FUZZ_CHECK(rv == 0 || rv == -EINVAL || rv == -EDOM);
        if (rv == 0) {
            FUZZ_CHECK(cents >= 1 && cents <= MONEY_MAX_CENTS);
            char text[MONEY_FMT_MAX];
            size_t n = money_format(cents, text);
            int64_t again;
            FUZZ_CHECK(money_parse_cents(text, n, &again) == 0 && again == cents);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_JSON_MAX)
        return 0;
    const char *js = (const char *)data;
    struct json_doc d;
    int rv = json_parse(&d, js, size);
    FUZZ_CHECK(rv == 0 || rv == -EINVAL || rv == -E2BIG);
    if (rv != 0)
        return 0;
    check_layout(&d, size);
    check_payment(&d);

    memcpy(copy, data, size);
    copy[size] = '\n';
    struct json_doc d2;
    FUZZ_CHECK(json_parse(&d2, copy, size + 1) == 0 && d2.ntok == d.ntok);
    copy[size] = 'x';
    FUZZ_CHECK(json_parse(&d2, copy, size + 1) != 0);
    return 0;
}
