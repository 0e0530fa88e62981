/* buf: starts in the caller's storage, spills to the heap, comes back once the
 * rest fits; a pinned block survives growth until buf_unpin(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "lib/buf.h"

static void test_stays_in_fixed_storage(void **state)
{
    char fixed[8];
    struct buf b;
    buf_init(&b, fixed, sizeof(fixed));
    assert_int_equal(buf_append(&b, "abcd", 4), 0);
    assert_int_equal(buf_append(&b, "efgh", 4), 0);
    assert_ptr_equal(b.ptr, fixed);
    assert_int_equal(b.len, 8);
    assert_memory_equal(b.ptr, "abcdefgh", 8);
    assert_int_equal(buf_append(&b, NULL, 0), 0); /* nothing to add: no growth */
    assert_ptr_equal(b.ptr, fixed);
    buf_reset(&b);
}

static void test_grows_and_comes_back(void **state)
{
    char fixed[8];
    struct buf b;
    buf_init(&b, fixed, sizeof(fixed));
    assert_int_equal(buf_append(&b, "0123456789", 10), 0);
    assert_ptr_not_equal(b.ptr, fixed);
    assert_true(b.cap >= 10);
    assert_memory_equal(b.ptr, "0123456789", 10);
    buf_consume(&b, 1); /* 9 left: still too many for the fixed 8 */
    assert_ptr_not_equal(b.ptr, fixed);
    assert_memory_equal(b.ptr, "123456789", 9);
    buf_consume(&b, 3); /* 6 left: back to the fixed storage */
    assert_ptr_equal(b.ptr, fixed);
    assert_int_equal(b.cap, sizeof(fixed));
    assert_memory_equal(b.ptr, "456789", 6);
    buf_consume(&b, 6);
    assert_int_equal(b.len, 0);
    buf_reset(&b);
}

static void test_reserve_commit(void **state)
{
    struct buf b;
    buf_init(&b, NULL, 0); /* no fixed storage: the heap from the start */
    assert_int_equal(buf_reserve(&b, 5), 0);
    assert_true(b.cap - b.len >= 5);
    memcpy(b.ptr + b.len, "hello", 5);
    buf_commit(&b, 5);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.ptr, "hello", 5);
    assert_int_equal(buf_reserve(&b, SIZE_MAX), -ENOMEM);
    assert_int_equal(b.len, 5); /* unchanged */
    buf_reset(&b);
    assert_null(b.ptr);
    assert_int_equal(b.len, 0);
}

static void test_pinned_block_survives_growth(void **state)
{
    char fixed[4];
    struct buf b;
    buf_init(&b, fixed, sizeof(fixed));
    assert_int_equal(buf_append(&b, "abcdef", 6), 0); /* on the heap */
    char *flight = b.ptr;
    buf_pin(&b); /* a write reads flight[0..6) */
    assert_int_equal(buf_append(&b, "0123456789abcdef", 16), 0);
    assert_ptr_not_equal(b.ptr, flight);
    assert_ptr_equal(b.retired, flight); /* kept alive, not freed */
    assert_memory_equal(flight, "abcdef", 6);
    assert_memory_equal(b.ptr, "abcdef0123456789abcdef", 22);
    buf_unpin(&b); /* the write ended: the old block goes */
    assert_null(b.retired);
    buf_consume(&b, 6);
    assert_memory_equal(b.ptr, "0123456789abcdef", 16);
    /* Growing again while unpinned frees the old block at once. */
    assert_int_equal(buf_append(&b, "x", 1), 0);
    assert_null(b.retired);
    buf_reset(&b);
    assert_ptr_equal(b.ptr, fixed);
}

static void test_pinned_fixed_storage(void **state)
{
    char fixed[4];
    struct buf b;
    buf_init(&b, fixed, sizeof(fixed));
    assert_int_equal(buf_append(&b, "ab", 2), 0);
    buf_pin(&b); /* the fixed storage is never freed: nothing to retire */
    assert_int_equal(buf_append(&b, "cdefgh", 6), 0);
    assert_null(b.retired);
    assert_memory_equal(fixed, "ab", 2);
    buf_unpin(&b);
    buf_consume(&b, 2);
    assert_memory_equal(b.ptr, "cdefgh", 6);
    buf_reset(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stays_in_fixed_storage),
        cmocka_unit_test(test_grows_and_comes_back),
        cmocka_unit_test(test_reserve_commit),
        cmocka_unit_test(test_pinned_block_survives_growth),
        cmocka_unit_test(test_pinned_fixed_storage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
