/* uuid: canonical text parse (table of good and bad inputs) and format round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/uuid.h"

struct uuid_case {
    const char *text;
    int rv;
};

static const struct uuid_case cases[] = {
    {"123e4567-e89b-12d3-a456-426614174000", 0},
    {"123E4567-E89B-12D3-A456-426614174000", 0},
    {"00000000-0000-0000-0000-000000000000", 0},
    {"ffffffff-ffff-ffff-ffff-ffffffffffff", 0},
    {"FfFfFfFf-fFfF-AbCd-eF01-23456789aBcD", 0},
    {"{123e4567-e89b-12d3-a456-426614174000}", -EINVAL},
    {"{123e4567-e89b-12d3-a456-42661417400}", -EINVAL},
    {"123e4567e89b12d3a456426614174000", -EINVAL},
    {"123e4567e89b-12d3-a456-426614174000", -EINVAL},
    {"123e4567-e89b-12d3-a456-42661417400", -EINVAL},
    {"123e4567-e89b-12d3-a456-4266141740000", -EINVAL},
    {"123e4567-e89b-12d3-a456-42661417400g", -EINVAL},
    {"123e4567-e89b-12d3-a456_426614174000", -EINVAL},
    {"123e456-7e89b-12d3-a456-426614174000", -EINVAL},
    {"123e4567-e89b-12d3-a4564-26614174000", -EINVAL},
    {"123e4567 e89b 12d3 a456 426614174000", -EINVAL},
    {" 23e4567-e89b-12d3-a456-426614174000", -EINVAL},
    {"123e4567-e89b-12d3-a456-42661417400 ", -EINVAL},
    {"123e4567-e89b-12d3-a456-4266141740-0", -EINVAL},
    {"-23e4567-e89b-12d3-a456-426614174000", -EINVAL},
    {"123e4567-+89b-12d3-a456-426614174000", -EINVAL},
    {"urn:uuid:123e4567-e89b-12d3-a456-426614174000", -EINVAL},
    {"", -EINVAL},
    {"------------------------------------", -EINVAL},
};

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t id[16];
        int rv = uuid_parse(cases[i].text, strlen(cases[i].text), id);
        if (rv != cases[i].rv)
            fail_msg("case %zu \"%s\": got %d want %d", i, cases[i].text, rv, cases[i].rv);
    }
}

static void test_parse_bytes(void **state)
{
    (void)state;
    const uint8_t want[16] = {0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3,
                              0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00};
    uint8_t id[16];
    assert_int_equal(uuid_parse("123E4567-e89b-12D3-a456-426614174000", 36, id), 0);
    assert_memory_equal(id, want, 16);
    char buf[UUID_TEXT_LEN + 1];
    memset(buf, 'x', sizeof(buf));
    uuid_format(id, buf);
    assert_int_equal(buf[UUID_TEXT_LEN], 'x'); /* no NUL written */
    assert_memory_equal(buf, "123e4567-e89b-12d3-a456-426614174000", UUID_TEXT_LEN);
}

static void test_len_not_nul(void **state)
{
    (void)state;
    /* Length is what counts, not a terminator: a valid prefix with a short len fails,
     * and 36 bytes out of a longer buffer succeed. */
    const char *s = "123e4567-e89b-12d3-a456-426614174000trailing";
    uint8_t id[16];
    assert_int_equal(uuid_parse(s, 36, id), 0);
    assert_int_equal(uuid_parse(s, 35, id), -EINVAL);
    assert_int_equal(uuid_parse(s, 37, id), -EINVAL);
    assert_int_equal(uuid_parse(NULL, 36, id), -EINVAL);
}

static void test_failed_parse_leaves_output(void **state)
{
    (void)state;
    uint8_t id[16];
    memset(id, 0xAA, sizeof(id));
    assert_int_equal(uuid_parse("123e4567-e89b-12d3-a456-42661417400z", 36, id), -EINVAL);
    for (int i = 0; i < 16; i++)
        assert_int_equal(id[i], 0xAA);
}

static void test_round_trip_random(void **state)
{
    (void)state;
    srand(12345);
    for (int n = 0; n < 2000; n++) {
        uint8_t id[16], back[16];
        for (int i = 0; i < 16; i++)
            id[i] = (uint8_t)(rand() & 0xff);
        char buf[UUID_TEXT_LEN];
        uuid_format(id, buf);
        for (int i = 0; i < UUID_TEXT_LEN; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23)
                assert_int_equal(buf[i], '-');
            else
                assert_true((buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f'));
        }
        assert_int_equal(uuid_parse(buf, UUID_TEXT_LEN, back), 0);
        assert_memory_equal(id, back, 16);
    }
}

static void test_every_byte_value_per_position(void **state)
{
    (void)state;
    /* Replace each position with each byte value: only hex digits (at hex
     * positions) or '-' (at dash positions) may parse. */
    const char *good = "0123abcd-ef01-2345-6789-abcdefABCDEF";
    for (int pos = 0; pos < UUID_TEXT_LEN; pos++) {
        for (int c = 0; c < 256; c++) {
            char buf[UUID_TEXT_LEN];
            memcpy(buf, good, UUID_TEXT_LEN);
            buf[pos] = (char)c;
            uint8_t id[16];
            int dash = pos == 8 || pos == 13 || pos == 18 || pos == 23;
            int ok =
                dash ? c == '-'
                     : (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
            assert_int_equal(uuid_parse(buf, UUID_TEXT_LEN, id), ok ? 0 : -EINVAL);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_bytes),
        cmocka_unit_test(test_len_not_nul),
        cmocka_unit_test(test_failed_parse_leaves_output),
        cmocka_unit_test(test_round_trip_random),
        cmocka_unit_test(test_every_byte_value_per_position),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
