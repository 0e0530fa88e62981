/* seal: round trip; every flipped byte, every truncation, another key, another
 * channel and our own id are refused; replays and counters older than the
 * window are refused, reordering within it is not; an older incarnation is
 * refused until a reset, a newer one starts its counters afresh. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/seal.h"

static const char material[] = "0123456789abcdef0123456789abcdef-test";

static struct seal_key key_of(const char *m)
{
    struct seal_key k;
    assert_int_equal(seal_key_derive(&k, m, strlen(m)), 0);
    return k;
}

static int setup(void **state)
{
    return seal_global_init();
}

static void test_key_material_too_short(void **state)
{
    struct seal_key k;
    assert_int_equal(seal_key_derive(&k, "short", 5), -EINVAL);
    assert_int_equal(seal_key_derive(&k, NULL, 40), -EINVAL);
    struct seal_key a = key_of(material), b = key_of(material);
    assert_memory_equal(a.k, b.k, SEAL_KEY_LEN);
}

static void test_round_trip_and_privacy(void **state)
{
    struct seal_key k = key_of(material);
    struct seal_tx tx;
    seal_tx_init(&tx, &k, 1, SEAL_CH_STREAM, 777);
    const char msg[] = "4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3 1990 cents";
    uint8_t sealed[256], out[256];
    int n = seal_wrap(&tx, (const uint8_t *)msg, sizeof(msg), sealed, sizeof(sealed));
    assert_int_equal(n, (int)sizeof(msg) + SEAL_OVERHEAD);
    /* The payload is not readable in the sealed bytes. */
    assert_null(memmem(sealed, (size_t)n, "4a7901b8", 8));
    struct seal_rx rx;
    seal_rx_init(&rx, &k, 2, SEAL_CH_STREAM);
    size_t len = 0;
    struct seal_from from;
    assert_int_equal(seal_open(&rx, sealed, (size_t)n, out, sizeof(out), &len, &from), 0);
    assert_int_equal(len, sizeof(msg));
    assert_memory_equal(out, msg, sizeof(msg));
    assert_int_equal(from.sender, 1);
    assert_int_equal(from.incarnation, 777);
    assert_int_equal(from.counter, 1);
    /* The same bytes again are a replay. */
    assert_int_equal(seal_open(&rx, sealed, (size_t)n, out, sizeof(out), &len, NULL), -EALREADY);
    /* Too small an output buffer, or an output cap of 0 for an empty message. */
    assert_int_equal(seal_wrap(&tx, (const uint8_t *)msg, sizeof(msg), sealed, 20), -ENOSPC);
}

static void test_tamper_truncate_wrong_key_channel_self(void **state)
{
    struct seal_key k = key_of(material);
    struct seal_key other = key_of("another key that is long enough to be accepted");
    struct seal_tx tx;
    seal_tx_init(&tx, &k, 1, SEAL_CH_UDP, 5);
    uint8_t msg[100], sealed[200], out[200];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7);
    int n = seal_wrap(&tx, msg, sizeof(msg), sealed, sizeof(sealed));
    assert_true(n > 0);
    size_t len;
    for (int i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            uint8_t copy[200];
            memcpy(copy, sealed, (size_t)n);
            copy[i] ^= (uint8_t)(1u << bit);
            struct seal_rx rx;
            seal_rx_init(&rx, &k, 2, SEAL_CH_UDP);
            assert_int_equal(seal_open(&rx, copy, (size_t)n, out, sizeof(out), &len, NULL),
                             -EBADMSG);
            assert_false(rx.have);
        }
    }
    for (int cut = 0; cut < n; cut++) {
        struct seal_rx rx;
        seal_rx_init(&rx, &k, 2, SEAL_CH_UDP);
        assert_int_equal(seal_open(&rx, sealed, (size_t)cut, out, sizeof(out), &len, NULL),
                         -EBADMSG);
    }
    struct seal_rx rx;
    seal_rx_init(&rx, &other, 2, SEAL_CH_UDP);
    assert_int_equal(seal_open(&rx, sealed, (size_t)n, out, sizeof(out), &len, NULL), -EBADMSG);
    seal_rx_init(&rx, &k, 2, SEAL_CH_STREAM); /* another channel */
    assert_int_equal(seal_open(&rx, sealed, (size_t)n, out, sizeof(out), &len, NULL), -EBADMSG);
    seal_rx_init(&rx, &k, 1, SEAL_CH_UDP); /* claims to be us */
    assert_int_equal(seal_open(&rx, sealed, (size_t)n, out, sizeof(out), &len, NULL), -EBADMSG);
    seal_rx_init(&rx, &k, 2, SEAL_CH_UDP);
    assert_int_equal(seal_open(&rx, sealed, (size_t)n, out, 10, &len, NULL), -EBADMSG);
    assert_int_equal(seal_open(&rx, sealed, (size_t)n, out, sizeof(out), &len, NULL), 0);
}

static int wrap_n(struct seal_tx *tx, uint8_t (*sealed)[64], int count)
{
    uint8_t msg[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int n = 0;
    for (int i = 0; i < count; i++)
        n = seal_wrap(tx, msg, sizeof(msg), sealed[i], sizeof(sealed[i]));
    return n;
}

static void test_window_and_incarnations(void **state)
{
    struct seal_key k = key_of(material);
    struct seal_tx tx;
    seal_tx_init(&tx, &k, 1, SEAL_CH_UDP, 1000);
    enum { N = 200 };
    static uint8_t sealed[N][64];
    int n = wrap_n(&tx, sealed, N);
    struct seal_rx rx;
    seal_rx_init(&rx, &k, 2, SEAL_CH_UDP);
    uint8_t out[64];
    size_t len;
    /* 10, then 5 (reordered, within the window), then 5 again (replay). */
    assert_int_equal(seal_open(&rx, sealed[9], (size_t)n, out, sizeof(out), &len, NULL), 0);
    assert_int_equal(seal_open(&rx, sealed[4], (size_t)n, out, sizeof(out), &len, NULL), 0);
    assert_int_equal(seal_open(&rx, sealed[4], (size_t)n, out, sizeof(out), &len, NULL), -EALREADY);
    /* 150 moves the window: 10 + 64 and older are out of it. */
    assert_int_equal(seal_open(&rx, sealed[149], (size_t)n, out, sizeof(out), &len, NULL), 0);
    assert_int_equal(seal_open(&rx, sealed[20], (size_t)n, out, sizeof(out), &len, NULL),
                     -EALREADY);
    assert_int_equal(
        seal_open(&rx, sealed[149 - SEAL_WINDOW + 1], (size_t)n, out, sizeof(out), &len, NULL), 0);
    assert_int_equal(
        seal_open(&rx, sealed[149 - SEAL_WINDOW], (size_t)n, out, sizeof(out), &len, NULL),
        -EALREADY);

    /* A newer incarnation (a restart) starts at counter 1 and is accepted;
     * the old one is then refused, until a reset. */
    struct seal_tx tx2;
    seal_tx_init(&tx2, &k, 1, SEAL_CH_UDP, 2000);
    static uint8_t sealed2[1][64];
    int n2 = wrap_n(&tx2, sealed2, 1);
    assert_int_equal(seal_open(&rx, sealed2[0], (size_t)n2, out, sizeof(out), &len, NULL), 0);
    assert_int_equal(seal_open(&rx, sealed[199], (size_t)n, out, sizeof(out), &len, NULL), -ESTALE);
    seal_rx_reset(&rx);
    assert_int_equal(seal_open(&rx, sealed[199], (size_t)n, out, sizeof(out), &len, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_material_too_short),
        cmocka_unit_test(test_round_trip_and_privacy),
        cmocka_unit_test(test_tamper_truncate_wrong_key_channel_self),
        cmocka_unit_test(test_window_and_incarnations),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
