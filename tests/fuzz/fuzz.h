/* Shared by the libFuzzer harnesses in tests/fuzz: the entry point's prototype
 * (the tree builds with -Wmissing-prototypes) and FUZZ_CHECK, which aborts with
 * a message so that libFuzzer records the input as a crash. A harness checks
 * properties of the code under test, never just that it returns. */
#ifndef TESTS_FUZZ_FUZZ_H
#define TESTS_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
