/* processor: the processors' wire format. Golden URLs and POST body, the cap
 * on URL length, and the answers we read (a record's requestedAt, a
 * service-health body), good and bad. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "lib/uuid.h"
#include "node/processor.h"

#define ID "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3"

static void test_urls(void **state)
{
    uint8_t id[16];
    assert_int_equal(uuid_parse(ID, strlen(ID), id), 0);
    char out[128];
    int n = processor_url(out, sizeof(out), "http://p:8080", PROCESSOR_URL_PAYMENTS, NULL);
    assert_int_equal(n, strlen("http://p:8080/payments"));
    assert_string_equal(out, "http://p:8080/payments");
    n = processor_url(out, sizeof(out), "http://p:8080", PROCESSOR_URL_PAYMENT, id);
    assert_string_equal(out, "http://p:8080/payments/" ID);
    assert_int_equal(n, strlen(out));
    n = processor_url(out, sizeof(out), "http://p", PROCESSOR_URL_HEALTH, NULL);
    assert_string_equal(out, "http://p/payments/service-health");
    /* exactly fitting, and one byte short */
    size_t need = strlen("http://p/payments/" ID) + 1;
    assert_int_equal(processor_url(out, need, "http://p", PROCESSOR_URL_PAYMENT, id),
                     (int)need - 1);
    assert_int_equal(processor_url(out, need - 1, "http://p", PROCESSOR_URL_PAYMENT, id), -ENOSPC);
}

static void test_payment_body(void **state)
{
    uint8_t id[16];
    assert_int_equal(uuid_parse(ID, strlen(ID), id), 0);
    char body[PROCESSOR_BODY_MAX];
    size_t n = processor_payment_body(body, id, 1990, 1700000000123);
    const char *want = "{\"correlationId\":\"" ID "\",\"amount\":19.90,"
                       "\"requestedAt\":\"2023-11-14T22:13:20.123Z\"}";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(body, want, n);
    /* the largest amount still fits */
    n = processor_payment_body(body, id, INT64_MAX, 253402300799999); /* 9999-12-31 */
    assert_true(n < PROCESSOR_BODY_MAX);
}

static void test_record_requested_at(void **state)
{
    int64_t at = 7;
    const char *ok = "{\"correlationId\":\"" ID "\",\"amount\":19.9,"
                     "\"requestedAt\":\"2023-11-14T22:13:20.123Z\"}";
    assert_true(processor_record_requested_at(ok, strlen(ok), &at));
    assert_int_equal(at, 1700000000123);
    /* sub-millisecond digits round down */
    const char *fine = "{\"requestedAt\":\"2023-11-14T22:13:20.1239Z\"}";
    assert_true(processor_record_requested_at(fine, strlen(fine), &at));
    assert_int_equal(at, 1700000000123);
    static const char *const bad[] = {
        "",
        "not json",
        "{}",
        "{\"requestedAt\":17}",
        "{\"requestedAt\":\"yesterday\"}",
        "{\"requestedAt\":\"2023-11-14T22:13:20\\u002e123Z\"}", /* escaped: refused */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        at = 7;
        assert_false(processor_record_requested_at(bad[i], strlen(bad[i]), &at));
        assert_int_equal(at, 7);
    }
    assert_false(processor_record_requested_at(NULL, 0, &at));
}

static void test_parse_health(void **state)
{
    bool failing = true;
    uint32_t ms = 0;
    const char *ok = "{\"failing\":false,\"minResponseTime\":120}";
    assert_true(processor_parse_health(ok, strlen(ok), &failing, &ms));
    assert_false(failing);
    assert_int_equal(ms, 120);
    const char *f = "{\"minResponseTime\":0,\"failing\":true}";
    assert_true(processor_parse_health(f, strlen(f), &failing, &ms));
    assert_true(failing);
    assert_int_equal(ms, 0);
    static const char *const bad[] = {
        "",
        "{\"failing\":false}",
        "{\"minResponseTime\":5}",
        "{\"failing\":\"no\",\"minResponseTime\":5}",
        "{\"failing\":false,\"minResponseTime\":\"5\"}",
        "{\"failing\":false,\"minResponseTime\":4294967296}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(processor_parse_health(bad[i], strlen(bad[i]), &failing, &ms));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_payment_body),
        cmocka_unit_test(test_record_requested_at),
        cmocka_unit_test(test_parse_health),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
