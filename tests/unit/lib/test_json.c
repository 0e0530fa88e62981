/* json: a table of valid and invalid documents (the cases jsmn alone gets
 * wrong), token layout, getters, member lookup, token limits, and a mutation
 * sweep checking that no corruption crashes or is misreported. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"

struct doc_case {
    const char *js;
    int rv;
};

static const struct doc_case docs[] = {
    /* valid */
    {"{}", 0},
    {"[]", 0},
    {" { } ", 0},
    {"\t\r\n[\t\r\n]\t\r\n", 0},
    {"42", 0},
    {"-0", 0},
    {"0", 0},
    {"-1.5e+10", 0},
    {"1E-7", 0},
    {"0.0", 0},
    {"123456789012345678901234567890", 0},
    {"true", 0},
    {"false", 0},
    {"null", 0},
    {" true ", 0},
    {"\"\"", 0},
    {"\"abc\"", 0},
    {"\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\\u00e9\\uD83D\\uDE00\"", 0},
    {"\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", 0},
    {"{\"correlationId\":\"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3\",\"amount\":19.90}", 0},
    {"{ \"correlationId\" : \"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3\" , \"amount\" : 19.90 }", 0},
    {"{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":{}},\"e\":\"\"}", 0},
    {"[[[[[[[[[[1]]]]]]]]]]", 0},
    {"[{}, [], \"\", 0, -0.0e0, true]", 0},
    {"{\"a\":1,\"b\":{\"a\":2}}", 0},  /* same key, different objects */
    {"[{\"a\":1},{\"a\":2}]", 0},      /* likewise */
    {"{\"a\":1,\"A\":2,\"a \":3}", 0}, /* keys differ by case or a space */
    {"{\"\\u00e9\":1,\"e\":2}", 0},    /* an escape that is not the other key */
    {"{\"\":0}", 0},
    {"[1,[2,[3]],{\"x\":[4]}]", 0},
    {"{\"a\":{\"b\":1},\"c\":2}", 0},
    {"{\"a\":[1,2],\"b\":3}", 0},
    {"[\"a\",\"b\"]", 0},
    {"{\"k:\":\",]}\"}", 0},
    /* structure */
    {"", -EINVAL},
    {"   ", -EINVAL},
    {"{", -EINVAL},
    {"}", -EINVAL},
    {"[", -EINVAL},
    {"]", -EINVAL},
    {"{\"a\":1", -EINVAL},
    {"{\"a\":1]", -EINVAL},
    {"[1}", -EINVAL},
    {"[1,2", -EINVAL},
    {"{\"a\":1 \"b\":2}", -EINVAL},
    {"[1 2]", -EINVAL},
    {"[\"a\" \"b\"]", -EINVAL},
    {"[1,2,]", -EINVAL},
    {"{\"a\":1,}", -EINVAL},
    {"[,]", -EINVAL},
    {"[,1]", -EINVAL},
    {"[1,,2]", -EINVAL},
    {"{,}", -EINVAL},
    {"{\"a\"}", -EINVAL},
    {"{\"a\":}", -EINVAL},
    {"{\"a\" 1}", -EINVAL},
    {"{\"a\"::1}", -EINVAL},
    {"{\"a\":1:2}", -EINVAL},
    {"{a:1}", -EINVAL},
    {"{1:1}", -EINVAL},
    {"{true:1}", -EINVAL},
    {"{{}:1}", -EINVAL},
    {"{[]:1}", -EINVAL},
    {"{\"a\":1,\"b\"}", -EINVAL},
    {"[\"a\":1]", -EINVAL},
    {"[1]:", -EINVAL},
    {"\"a\":1", -EINVAL},
    {"1,2", -EINVAL},
    {"1 2", -EINVAL},
    {"{} {}", -EINVAL},
    {"{}[]", -EINVAL},
    {"{\"a\":1} trailing", -EINVAL},
    {"{\"a\":1}x", -EINVAL},
    {"[1]]", -EINVAL},
    {"{}}", -EINVAL},
    {"\xef\xbb\xbf{}", -EINVAL},
    {"{}\f", -EINVAL},
    {"\v[]", -EINVAL},
    /* literals */
    {"tru", -EINVAL},
    {"nul", -EINVAL},
    {"fals", -EINVAL},
    {"truee", -EINVAL},
    {"True", -EINVAL},
    {"NULL", -EINVAL},
    {"{\"a\":tru}", -EINVAL},
    {"[nul]", -EINVAL},
    {"[undefined]", -EINVAL},
    {"[NaN]", -EINVAL},
    {"[Infinity]", -EINVAL},
    {"[-Infinity]", -EINVAL},
    {"[true false]", -EINVAL},
    {"[truefalse]", -EINVAL},
    {"[abc]", -EINVAL},
    {"['a']", -EINVAL},
    /* numbers */
    {"01", -EINVAL},
    {"[01]", -EINVAL},
    {"-01", -EINVAL},
    {"00", -EINVAL},
    {"1.", -EINVAL},
    {"[1.]", -EINVAL},
    {".5", -EINVAL},
    {"[.5]", -EINVAL},
    {"+1", -EINVAL},
    {"[+1]", -EINVAL},
    {"1e", -EINVAL},
    {"[1e]", -EINVAL},
    {"1e+", -EINVAL},
    {"1E-", -EINVAL},
    {"-", -EINVAL},
    {"[-]", -EINVAL},
    {"--1", -EINVAL},
    {"1.2.3", -EINVAL},
    {"0x1F", -EINVAL},
    {"1e5.5", -EINVAL},
    {"[1-2]", -EINVAL},
    {"{\"amount\":19,90}", -EINVAL},
    {"{\"amount\":19.90.1}", -EINVAL},
    {"{\"amount\":1_000}", -EINVAL},
    /* strings */
    {"\"abc", -EINVAL},
    {"\"", -EINVAL},
    {"abc\"", -EINVAL},
    {"\"a\tb\"", -EINVAL},
    {"\"a\nb\"", -EINVAL},
    {"\"a\x01\"", -EINVAL},
    {"\"a\x1f\"", -EINVAL},
    {"\"\\q\"", -EINVAL},
    {"\"\\x41\"", -EINVAL},
    {"\"\\'\"", -EINVAL},
    {"\"\\u12\"", -EINVAL},
    {"\"\\u12G4\"", -EINVAL},
    {"\"\\U0041\"", -EINVAL},
    {"\"\\\"", -EINVAL},
    {"\"abc\\", -EINVAL},
    {"[\"a\\\"]", -EINVAL},
    {"'abc'", -EINVAL},
    {"\"\xff\"", -EINVAL},
    {"\"\xc3\"", -EINVAL},
    {"\"\xc0\xaf\"", -EINVAL},
    {"\"\xe0\x80\xaf\"", -EINVAL},
    {"\"\xed\xa0\x80\"", -EINVAL},
    {"\"\xf4\x90\x80\x80\"", -EINVAL},
    {"\"\x80\"", -EINVAL},
    {"{\"a\nb\":1}", -EINVAL},
    /* duplicate keys in one object, compared unescaped */
    {"{\"a\":1,\"a\":2}", -EINVAL},
    {"{\"a\":1,\"a\":1}", -EINVAL},
    {"{\"a\":1,\"b\":2,\"a\":3}", -EINVAL},
    {"{\"x\":{\"k\":1,\"k\":2}}", -EINVAL},
    {"[{\"k\":[],\"k\":{}}]", -EINVAL},
    {"{\"\":0,\"\":1}", -EINVAL},
    {"{\"a\":1,\"\\u0061\":2}", -EINVAL},
    {"{\"\\/\":1,\"/\":2}", -EINVAL},
    {"{\"\\u00E9\":1,\"\xc3\xa9\":2}", -EINVAL},
    {"{\"\\uD83D\\uDE00\":1,\"\xf0\x9f\x98\x80\":2}", -EINVAL},
    {"{\"amount\":1,\"correlationId\":\"x\",\"amount\":2}", -EINVAL},
};

static void test_doc_table(void **state)
{
    (void)state;
    size_t n = sizeof(docs) / sizeof(docs[0]);
    for (size_t i = 0; i < n; i++) {
        struct json_doc d;
        int rv = json_parse(&d, docs[i].js, strlen(docs[i].js));
        if (rv != docs[i].rv)
            fail_msg("case %zu '%s': got %d want %d", i, docs[i].js, rv, docs[i].rv);
        if (rv != 0)
            assert_int_equal(d.ntok, 0);
    }
}

static void test_embedded_nul(void **state)
{
    (void)state;
    struct json_doc d;
    assert_int_equal(json_parse(&d, "{}\0", 3), -EINVAL);
    assert_int_equal(json_parse(&d, "[1,\0 2]", 7), -EINVAL);
    assert_int_equal(json_parse(&d, "\"a\0b\"", 5), -EINVAL);
    assert_int_equal(json_parse(&d, "{\"a\":1}", 7), 0);
    assert_int_equal(json_parse(&d, "{\"a\":1}garbage", 7), 0); /* only len bytes count */
    assert_int_equal(json_parse(&d, "{\"a\":1}", 6), -EINVAL);
    assert_int_equal(json_parse(&d, "1234", 2), 0);
    assert_int_equal(json_parse(&d, NULL, 0), -EINVAL);
}

static void test_payment_body(void **state)
{
    (void)state;
    const char *js =
        "{\"correlationId\":\"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3\",\"amount\":19.90}";
    struct json_doc d;
    assert_int_equal(json_parse(&d, js, strlen(js)), 0);
    assert_int_equal(d.ntok, 5);
    assert_int_equal(d.tok[0].type, JSON_OBJECT);
    assert_int_equal(d.tok[0].size, 2);
    assert_int_equal(d.tok[0].parent, -1);
    assert_int_equal(d.tok[0].start, 0);
    assert_int_equal(d.tok[0].end, (int)strlen(js));

    int id = json_member(&d, 0, "correlationId");
    int amount = json_member(&d, 0, "amount");
    assert_int_equal(id, 2);
    assert_int_equal(amount, 4);
    assert_int_equal(d.tok[1].parent, 0); /* key -> object */
    assert_int_equal(d.tok[2].parent, 1); /* value -> key */

    struct slice s;
    bool esc = true;
    assert_true(json_string(&d, id, &s, &esc));
    assert_false(esc);
    assert_true(slice_eq(s, "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3"));
    assert_true(json_number(&d, amount, &s));
    assert_true(slice_eq(s, "19.90"));

    /* wrong types and missing members */
    assert_false(json_number(&d, id, &s));
    assert_false(json_string(&d, amount, &s, NULL));
    long long v;
    assert_false(json_int(&d, amount, &v));
    bool b;
    assert_false(json_bool(&d, amount, &b));
    assert_int_equal(json_member(&d, 0, "amoun"), -1);
    assert_int_equal(json_member(&d, 0, "amountt"), -1);
    assert_int_equal(json_member(&d, 0, ""), -1);
    assert_int_equal(json_member(&d, 2, "amount"), -1); /* not an object */
    assert_int_equal(json_member(&d, -1, "amount"), -1);
    assert_int_equal(json_member(&d, 99, "amount"), -1);
    assert_false(json_string(&d, -1, &s, NULL));
    assert_false(json_string(&d, 5, &s, NULL));
}

static void test_member_nested_and_duplicates(void **state)
{
    (void)state;
    const char *js = "{\"a\":{\"x\":1,\"b\":2},\"d\":[{\"b\":3}],\"c\":\"b\",\"b\":4}";
    struct json_doc d;
    assert_int_equal(json_parse(&d, js, strlen(js)), 0);
    long long v = 0;
    /* top-level "b": nested "b"s are not members of the root */
    int b = json_member(&d, 0, "b");
    assert_true(json_int(&d, b, &v));
    assert_int_equal(v, 4);
    int a = json_member(&d, 0, "a");
    assert_int_equal(d.tok[a].type, JSON_OBJECT);
    assert_int_equal(d.tok[a].size, 2);
    assert_true(json_int(&d, json_member(&d, a, "b"), &v));
    assert_int_equal(v, 2);
    assert_int_equal(json_member(&d, a, "c"), -1);
    int c = json_member(&d, 0, "c");
    struct slice s;
    assert_true(json_string(&d, c, &s, NULL));
    assert_true(slice_eq(s, "b"));
    /* member of an object inside an array */
    const char *js2 = "[{\"k\":true},{\"k\":false}]";
    assert_int_equal(json_parse(&d, js2, strlen(js2)), 0);
    assert_int_equal(d.tok[0].size, 2);
    bool bv = false;
    assert_true(json_bool(&d, json_member(&d, 1, "k"), &bv));
    assert_true(bv);
    assert_true(json_bool(&d, json_member(&d, 4, "k"), &bv));
    assert_false(bv);
    assert_int_equal(json_member(&d, 0, "k"), -1); /* an array, not an object */
    /* keys are compared raw */
    const char *js3 = "{\"\\u0061\":1}";
    assert_int_equal(json_parse(&d, js3, strlen(js3)), 0);
    assert_int_equal(json_member(&d, 0, "a"), -1);
    assert_int_equal(json_member(&d, 0, "\\u0061"), 2);
}

static void test_token_layout(void **state)
{
    (void)state;
    const char *js = " [ \"s\\n\" , 12 , true , false , null , { } , [ 1 ] ] ";
    struct json_doc d;
    assert_int_equal(json_parse(&d, js, strlen(js)), 0);
    assert_int_equal(d.ntok, 9);
    static const enum json_type want[] = {JSON_ARRAY,  JSON_STRING, JSON_NUMBER,
                                          JSON_TRUE,   JSON_FALSE,  JSON_NULL,
                                          JSON_OBJECT, JSON_ARRAY,  JSON_NUMBER};
    static const int parent[] = {-1, 0, 0, 0, 0, 0, 0, 0, 7};
    for (int i = 0; i < 9; i++) {
        assert_int_equal(d.tok[i].type, want[i]);
        assert_int_equal(d.tok[i].parent, parent[i]);
    }
    assert_int_equal(d.tok[0].size, 7);
    assert_int_equal(d.tok[6].size, 0);
    assert_int_equal(d.tok[7].size, 1);
    /* string offsets exclude the quotes; the raw escape is kept */
    struct slice s;
    bool esc = false;
    assert_true(json_string(&d, 1, &s, &esc));
    assert_true(esc);
    assert_true(slice_eq(s, "s\\n"));
    assert_int_equal(js[d.tok[1].start - 1], '"');
    assert_int_equal(js[d.tok[1].end], '"');
    /* containers span their brackets */
    assert_int_equal(js[d.tok[0].start], '[');
    assert_int_equal(js[d.tok[0].end - 1], ']');
    assert_int_equal(js[d.tok[6].start], '{');
    assert_int_equal(js[d.tok[6].end - 1], '}');
    bool b = false;
    assert_true(json_bool(&d, 3, &b));
    assert_true(b);
    assert_true(json_bool(&d, 4, &b));
    assert_false(b);
    assert_false(json_bool(&d, 5, &b));
}

static void test_top_level_scalars(void **state)
{
    (void)state;
    struct json_doc d;
    long long v = 0;
    assert_int_equal(json_parse(&d, "42", 2), 0);
    assert_int_equal(d.ntok, 1);
    assert_int_equal(d.tok[0].parent, -1);
    assert_true(json_int(&d, 0, &v));
    assert_int_equal(v, 42);
    assert_int_equal(json_parse(&d, " 7 ", 3), 0);
    assert_true(json_int(&d, 0, &v));
    assert_int_equal(v, 7);
    bool b = false;
    assert_int_equal(json_parse(&d, "true", 4), 0);
    assert_true(json_bool(&d, 0, &b));
    assert_true(b);
    assert_int_equal(json_parse(&d, "null", 4), 0);
    assert_int_equal(d.tok[0].type, JSON_NULL);
    struct slice s;
    assert_int_equal(json_parse(&d, "\"x\"", 3), 0);
    assert_true(json_string(&d, 0, &s, NULL));
    assert_true(slice_eq(s, "x"));
}

static void test_json_int(void **state)
{
    (void)state;
    static const struct {
        const char *js;
        bool ok;
        long long v;
    } c[] = {
        {"0", true, 0},
        {"7", true, 7},
        {"1234567890", true, 1234567890},
        {"9223372036854775807", true, LLONG_MAX},
        {"9223372036854775808", false, 0},
        {"99999999999999999999", false, 0},
        {"-1", false, 0},
        {"-0", false, 0},
        {"1.0", false, 0},
        {"1e3", false, 0},
        {"\"1\"", false, 0},
        {"true", false, 0},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        struct json_doc d;
        assert_int_equal(json_parse(&d, c[i].js, strlen(c[i].js)), 0);
        long long v = -5;
        bool ok = json_int(&d, 0, &v);
        if (ok != c[i].ok)
            fail_msg("json_int(%s) = %d", c[i].js, ok);
        if (ok)
            assert_true(v == c[i].v);
        else
            assert_true(v == -5);
    }
}

static void test_token_limit(void **state)
{
    (void)state;
    char buf[1024];
    struct json_doc d;
    /* an array token plus n elements */
    for (int n = JSON_MAX_TOKENS - 2; n <= JSON_MAX_TOKENS + 2; n++) {
        size_t o = 0;
        buf[o++] = '[';
        for (int i = 0; i < n; i++)
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, i ? ",%d" : "%d", i);
        buf[o++] = ']';
        int rv = json_parse(&d, buf, o);
        if (n + 1 <= JSON_MAX_TOKENS) {
            assert_int_equal(rv, 0);
            assert_int_equal(d.ntok, n + 1);
            assert_int_equal(d.tok[0].size, n);
        } else {
            assert_int_equal(rv, -E2BIG);
        }
    }
    /* deep nesting within the limit */
    size_t o = 0;
    for (int i = 0; i < JSON_MAX_TOKENS; i++)
        buf[o++] = '[';
    for (int i = 0; i < JSON_MAX_TOKENS; i++)
        buf[o++] = ']';
    assert_int_equal(json_parse(&d, buf, o), 0);
    assert_int_equal(d.tok[JSON_MAX_TOKENS - 1].parent, JSON_MAX_TOKENS - 2);
    buf[o] = ']';
    assert_int_equal(json_parse(&d, buf, o + 1), -EINVAL);
}

/* Every truncation of valid documents fails cleanly, except prefixes that are
 * themselves complete documents. Every single-byte mutation returns 0 or
 * -EINVAL, never crashes; ASan checks for over-reads on exact-size copies. */
static void test_truncation_and_mutation(void **state)
{
    (void)state;
    static const char *valid[] = {
        "{\"correlationId\":\"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3\",\"amount\":19.90}",
        "[1,[2,[3]],{\"x\":[4,\"y\\u00e9\"]},true,false,null,-1.5e-3]",
        "\"caf\xc3\xa9\"",
    };
    static const char bytes[] = "{}[]\":,.-+eE0129tfnrul\\ \t\n\x01\x7f\x80\xc3\xff";
    struct json_doc d;
    for (size_t v = 0; v < sizeof(valid) / sizeof(valid[0]); v++) {
        size_t n = strlen(valid[v]);
        for (size_t cut = 0; cut < n; cut++) {
            char *p = malloc(cut ? cut : 1);
            assert_non_null(p);
            memcpy(p, valid[v], cut);
            int rv = json_parse(&d, p, cut);
            assert_int_equal(rv, -EINVAL);
            free(p);
        }
        for (size_t pos = 0; pos < n; pos++) {
            for (size_t b = 0; b < sizeof(bytes) - 1; b++) {
                char *p = malloc(n);
                assert_non_null(p);
                memcpy(p, valid[v], n);
                p[pos] = bytes[b];
                int rv = json_parse(&d, p, n);
                assert_true(rv == 0 || rv == -EINVAL);
                if (rv == 0)
                    assert_true(d.ntok > 0 && d.ntok <= JSON_MAX_TOKENS);
                free(p);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doc_table),
        cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_payment_body),
        cmocka_unit_test(test_member_nested_and_duplicates),
        cmocka_unit_test(test_token_layout),
        cmocka_unit_test(test_top_level_scalars),
        cmocka_unit_test(test_json_int),
        cmocka_unit_test(test_token_limit),
        cmocka_unit_test(test_truncation_and_mutation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
