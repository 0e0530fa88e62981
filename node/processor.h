/* The payment processors' HTTP wire format: the URLs we call, the body of a
 * POST /payments, and what we read from their answers (a GET /payments/{id}
 * record's requestedAt, a service-health answer). Pure functions over
 * strings: no I/O, no policy (what a status means is dispatch_classify()'s
 * business, when to call is dispatch's and health's). */
#ifndef NODE_PROCESSOR_H
#define NODE_PROCESSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROCESSOR_BODY_MAX 160 /* a POST /payments body always fits */

/* Request headers of a POST /payments (NULL-terminated, for httpc). */
extern const char *const processor_json_headers[];

/* Which URL of a processor whose base URL (no trailing slash) is given. */
enum processor_url {
    PROCESSOR_URL_PAYMENTS = 0, /* <base>/payments (POST) */
    PROCESSOR_URL_PAYMENT,      /* <base>/payments/<id> (GET one record) */
    PROCESSOR_URL_HEALTH,       /* <base>/payments/service-health (GET) */
};

/* Writes the URL, NUL-terminated, into out (cap bytes); id is needed only
 * for PROCESSOR_URL_PAYMENT. Returns its length, or -ENOSPC when it does not
 * fit (out is then unspecified). */
int processor_url(char *out, size_t cap, const char *base, enum processor_url which,
                  const uint8_t id[16]) __attribute__((warn_unused_result));

/* The POST /payments body: {"correlationId":"<id>","amount":<amount>,
 * "requestedAt":"<ISO-8601 UTC, ms>"}. out must hold PROCESSOR_BODY_MAX
 * bytes; returns the length (not NUL-terminated beyond it). */
size_t processor_payment_body(char out[PROCESSOR_BODY_MAX], const uint8_t id[16],
                              int64_t amount_cents, int64_t requested_at_ms);

/* requestedAt of a GET /payments/{id} record, in ms (floor); false if the
 * body is absent, not JSON, or has no readable requestedAt. */
bool processor_record_requested_at(const char *body, size_t len, int64_t *at_ms);

/* A service-health answer: {"failing":<bool>,"minResponseTime":<int ms>};
 * false if body is not that. */
bool processor_parse_health(const char *body, size_t len, bool *failing, uint32_t *min_ms);

#endif
