/* The processors' wire format (see processor.h): built with snprintf and
 * lib/ formatters, parsed with lib/json. */
#include "node/processor.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/clock.h"
#include "lib/json.h"
#include "lib/money.h"
#include "lib/uuid.h"

const char *const processor_json_headers[] = {"Content-Type: application/json", NULL};

int processor_url(char *out, size_t cap, const char *base, enum processor_url which,
                  const uint8_t id[16])
{
    int n;
    switch (which) {
    case PROCESSOR_URL_PAYMENTS:
        n = snprintf(out, cap, "%s/payments", base);
        break;
    case PROCESSOR_URL_PAYMENT: {
        char idtxt[UUID_TEXT_LEN + 1];
        uuid_format(id, idtxt);
        idtxt[UUID_TEXT_LEN] = 0;
        n = snprintf(out, cap, "%s/payments/%s", base, idtxt);
        break;
    }
    case PROCESSOR_URL_HEALTH:
        n = snprintf(out, cap, "%s/payments/service-health", base);
        break;
    default:
        return -EINVAL;
    }
    return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

size_t processor_payment_body(char out[PROCESSOR_BODY_MAX], const uint8_t id[16],
                              int64_t amount_cents, int64_t requested_at_ms)
{
    char idtxt[UUID_TEXT_LEN + 1], amount[MONEY_FMT_MAX], at[CLOCK_ISO_LEN + 1];
    uuid_format(id, idtxt);
    idtxt[UUID_TEXT_LEN] = 0;
    money_format(amount_cents, amount);
    clock_format_iso_ms(requested_at_ms, at);
    at[CLOCK_ISO_LEN] = 0;
    int len = snprintf(out, PROCESSOR_BODY_MAX,
                       "{\"correlationId\":\"%s\",\"amount\":%s,\"requestedAt\":\"%s\"}", idtxt,
                       amount, at);
    assert(len > 0 && len < PROCESSOR_BODY_MAX);
    return (size_t)len;
}

bool processor_record_requested_at(const char *body, size_t len, int64_t *at_ms)
{
    struct json_doc doc;
    struct slice s;
    bool esc;
    int64_t ns;
    if (!body || json_parse(&doc, body, len) != 0 ||
        !json_string(&doc, json_member(&doc, 0, "requestedAt"), &s, &esc) || esc ||
        clock_parse_iso(s.ptr, s.len, 0, &ns) != 0)
        return false;
    *at_ms = ns >= 0 ? ns / 1000000 : -((-ns + 999999) / 1000000);
    return true;
}

bool processor_parse_health(const char *body, size_t len, bool *failing, uint32_t *min_ms)
{
    struct json_doc doc;
    if (json_parse(&doc, body, len) != 0)
        return false;
    long long ms;
    if (!json_bool(&doc, json_member(&doc, 0, "failing"), failing) ||
        !json_int(&doc, json_member(&doc, 0, "minResponseTime"), &ms) || ms > UINT32_MAX)
        return false;
    *min_ms = (uint32_t)ms;
    return true;
}
