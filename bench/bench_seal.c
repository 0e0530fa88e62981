/* Benchmark of the peer links' sealing: ns per message to seal and to open
 * messages of 64, 256, 1400 and 16384 bytes with lib/seal (libsodium's
 * XChaCha20-Poly1305 plus the header, nonce and replay window), with the bare
 * libsodium AEAD calls under it, and, for comparison, with OpenSSL's EVP
 * ChaCha20-Poly1305 (the library libcurl already brings). Each figure is the
 * median of several runs; each run seals a batch of messages, then opens them
 * all in order. Measures, asserts nothing beyond every message opening.
 * Usage: bench_seal [runs (default 5)] */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "lib/seal.h"

#define KEY_MATERIAL "bench_seal: a key of 32 bytes or more, not secret"
#define RUNS_MAX 21

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_seal: %s\n", what);
    exit(1);
}

/* One way to seal: seal msgs[i] (len bytes) into out + i * stride, then open
 * them back; each returns the time taken for count messages in ns. */
struct method {
    const char *name;
    uint64_t (*seal)(const uint8_t *msg, size_t len, uint8_t *out, size_t stride, size_t count,
                     int run);
    uint64_t (*open)(uint8_t *out, size_t len, size_t stride, size_t count, int run);
};

static struct seal_key key;
static uint8_t raw_key[32];
static uint8_t plain[16384 + 64];

/* ---- lib/seal ------------------------------------------------------------ */

static uint64_t lib_seal(const uint8_t *msg, size_t len, uint8_t *out, size_t stride, size_t count,
                         int run)
{
    struct seal_tx tx;
    seal_tx_init(&tx, &key, 1, SEAL_CH_STREAM, (uint64_t)run + 1);
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < count; i++)
        if (seal_wrap(&tx, msg, len, out + i * stride, stride) != (int)(len + SEAL_OVERHEAD))
            die("seal_wrap failed");
    return now_ns() - t0;
}

static uint64_t lib_open(uint8_t *out, size_t len, size_t stride, size_t count, int run)
{
    struct seal_rx rx;
    seal_rx_init(&rx, &key, 2, SEAL_CH_STREAM);
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < count; i++) {
        size_t plen;
        if (seal_open(&rx, out + i * stride, len + SEAL_OVERHEAD, plain, sizeof(plain), &plen,
                      NULL) != 0 ||
            plen != len)
            die("seal_open failed");
    }
    return now_ns() - t0;
}

/* ---- libsodium's XChaCha20-Poly1305, bare -------------------------------- */

#define AD_LEN 20 /* as lib/seal's header */

static void nonce24(uint8_t *n, size_t i, int run)
{
    memset(n, 0, 24);
    memcpy(n, &i, sizeof(i));
    n[23] = (uint8_t)run;
}

static uint64_t sodium_seal(const uint8_t *msg, size_t len, uint8_t *out, size_t stride,
                            size_t count, int run)
{
    uint8_t ad[AD_LEN] = {0}, n[24];
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < count; i++) {
        unsigned long long clen;
        nonce24(n, i, run);
        crypto_aead_xchacha20poly1305_ietf_encrypt(out + i * stride, &clen, msg, len, ad, AD_LEN,
                                                   NULL, n, raw_key);
    }
    return now_ns() - t0;
}

static uint64_t sodium_open(uint8_t *out, size_t len, size_t stride, size_t count, int run)
{
    uint8_t ad[AD_LEN] = {0}, n[24];
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < count; i++) {
        unsigned long long mlen;
        nonce24(n, i, run);
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &mlen, NULL, out + i * stride,
                                                       len + 16, ad, AD_LEN, n, raw_key) != 0)
            die("libsodium decrypt failed");
    }
    return now_ns() - t0;
}

/* ---- OpenSSL EVP ChaCha20-Poly1305 (12-byte nonce) ------------------------ */

static EVP_CIPHER_CTX *ectx, *dctx;

static uint64_t evp_seal(const uint8_t *msg, size_t len, uint8_t *out, size_t stride, size_t count,
                         int run)
{
    uint8_t ad[AD_LEN] = {0}, n[24];
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < count; i++) {
        uint8_t *o = out + i * stride;
        int l = 0;
        nonce24(n, i, run);
        n[11] = (uint8_t)run;
        if (EVP_EncryptInit_ex(ectx, NULL, NULL, NULL, n) != 1 ||
            EVP_EncryptUpdate(ectx, NULL, &l, ad, AD_LEN) != 1 ||
            EVP_EncryptUpdate(ectx, o, &l, msg, (int)len) != 1 ||
            EVP_EncryptFinal_ex(ectx, o + l, &l) != 1 ||
            EVP_CIPHER_CTX_ctrl(ectx, EVP_CTRL_AEAD_GET_TAG, 16, o + len) != 1)
            die("EVP encrypt failed");
    }
    return now_ns() - t0;
}

static uint64_t evp_open(uint8_t *out, size_t len, size_t stride, size_t count, int run)
{
    uint8_t ad[AD_LEN] = {0}, n[24];
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < count; i++) {
        uint8_t *o = out + i * stride;
        int l = 0;
        nonce24(n, i, run);
        n[11] = (uint8_t)run;
        if (EVP_DecryptInit_ex(dctx, NULL, NULL, NULL, n) != 1 ||
            EVP_DecryptUpdate(dctx, NULL, &l, ad, AD_LEN) != 1 ||
            EVP_DecryptUpdate(dctx, plain, &l, o, (int)len) != 1 ||
            EVP_CIPHER_CTX_ctrl(dctx, EVP_CTRL_AEAD_SET_TAG, 16, o + len) != 1 ||
            EVP_DecryptFinal_ex(dctx, plain + l, &l) != 1)
            die("EVP decrypt failed (tag)");
    }
    return now_ns() - t0;
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    if (runs < 1 || runs > RUNS_MAX)
        die("runs: 1..21");
    if (seal_global_init() != 0 || seal_key_derive(&key, KEY_MATERIAL, strlen(KEY_MATERIAL)) != 0)
        die("key set-up failed");
    memcpy(raw_key, key.k, sizeof(raw_key));
    ectx = EVP_CIPHER_CTX_new();
    dctx = EVP_CIPHER_CTX_new();
    if (!ectx || !dctx ||
        EVP_EncryptInit_ex(ectx, EVP_chacha20_poly1305(), NULL, raw_key, NULL) != 1 ||
        EVP_DecryptInit_ex(dctx, EVP_chacha20_poly1305(), NULL, raw_key, NULL) != 1)
        die("EVP set-up failed");

    static const size_t sizes[] = {64, 256, 1400, 16384};
    static const struct method methods[] = {
        {"lib/seal (libsodium XChaCha20-Poly1305 + header, replay window)", lib_seal, lib_open},
        {"libsodium XChaCha20-Poly1305, bare", sodium_seal, sodium_open},
        {"OpenSSL 3 EVP ChaCha20-Poly1305", evp_seal, evp_open},
    };
    printf("bench_seal: %s, libsodium %s; median of %d runs, ns per message\n",
           OpenSSL_version(OPENSSL_VERSION), sodium_version_string(), runs);
    printf("%-66s %6s %9s %9s %8s\n", "method", "bytes", "seal ns", "open ns", "messages");
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t len = sizes[s];
        size_t count = 8000000 / len;
        if (count > 100000)
            count = 100000;
        size_t stride = len + SEAL_OVERHEAD;
        uint8_t *msg = malloc(len), *out = malloc(stride * count);
        if (!msg || !out)
            die("out of memory");
        randombytes_buf(msg, len);
        for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
            double seal_ns[RUNS_MAX], open_ns[RUNS_MAX];
            for (int r = 0; r < runs; r++) {
                seal_ns[r] = (double)methods[m].seal(msg, len, out, stride, count, r) / count;
                open_ns[r] = (double)methods[m].open(out, len, stride, count, r) / count;
            }
            printf("%-66s %6zu %9.0f %9.0f %8zu\n", methods[m].name, len, median(seal_ns, runs),
                   median(open_ns, runs), count);
        }
        free(msg);
        free(out);
    }
    EVP_CIPHER_CTX_free(ectx);
    EVP_CIPHER_CTX_free(dctx);
    return 0;
}
