/* Writes the seed corpora of the fuzz harnesses: seedgen <dir> creates
 * <dir>/<harness>/<seed> files, a handful of valid and near-valid inputs per
 * harness, binary ones made with the proto/ encoders so that they follow the
 * current formats. Run by hand after a format change, then commit the files:
 *   build-fuzz/tests/fuzz/fuzz_seedgen tests/fuzz/corpus */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "proto/catchup.h"
#include "proto/event.h"
#include "proto/heartbeat.h"
#include "proto/repl.h"

static const char *root;

static void put(const char *harness, const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", root, harness);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/%s/%s", root, harness, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void put_str(const char *harness, const char *name, const char *s)
{
    put(harness, name, s, strlen(s));
}

static void must(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "seedgen: %s failed\n", what);
        exit(1);
    }
}

static struct event ev_make(enum event_type t, uint8_t origin, uint64_t seq)
{
    struct event ev = {.type = t, .origin = origin, .seq = seq};
    for (int i = 0; i < 16; i++)
        ev.id[i] = (uint8_t)(0x11 * (i + 1) + seq);
    if (t == EVENT_ACCEPTED || t == EVENT_RECORDED)
        ev.amount_cents = 1990;
    if (t != EVENT_PURGED && t != EVENT_FAILED)
        ev.at_ms = INT64_C(1752582896000);
    if (t == EVENT_SENDING || t == EVENT_RECORDED || t == EVENT_FAILED)
        ev.processor = 1;
    if (t == EVENT_PURGED)
        ev.epoch = 3;
    return ev;
}

static void events(void)
{
    static const char *names[] = {"", "accepted", "sending", "recorded", "failed", "purged"};
    uint8_t buf[EVENT_WIRE_MAX];
    for (int t = EVENT_ACCEPTED; t <= EVENT_TYPE_MAX; t++) {
        struct event ev = ev_make((enum event_type)t, 1, 7);
        int n = event_encode(&ev, buf, sizeof(buf));
        must(n > 0, "event_encode");
        put("event", names[t], buf, (size_t)n);
        if (t == EVENT_ACCEPTED) {
            put("event", "accepted-truncated", buf, (size_t)n - 3);
            buf[1] = 2; /* another version */
            put("event", "accepted-version-2", buf, (size_t)n);
            /* With a trace context (docs/REPLICATION.md, "Trace context"). */
            ev.trace_flags = EVENT_TRACE_SAMPLED;
            for (int i = 0; i < 16; i++)
                ev.trace.trace_id[i] = (uint8_t)(0xa0 + i);
            for (int i = 0; i < 8; i++)
                ev.trace.span_id[i] = (uint8_t)(0x50 + i);
            n = event_encode(&ev, buf, sizeof(buf));
            must(n > 0, "event_encode traced");
            put("event", "accepted-traced", buf, (size_t)n);
        }
    }
}

static struct heartbeat hb_make(uint8_t id, uint64_t inc, uint64_t counter)
{
    struct heartbeat hb = {.node_id = id,
                           .checker_id = 1,
                           .flags = HEARTBEAT_F_READY,
                           .incarnation = inc,
                           .counter = counter,
                           .last_seq = {42, 17, 0, 0},
                           .totals = {{10, 19900}, {2, 3980}},
                           .health = {{true, false, 5, 100}, {true, true, 0, 2300}}};
    return hb;
}

static void heartbeats(void)
{
    uint8_t buf[HEARTBEAT_WIRE_LEN + 1];
    struct heartbeat hb = hb_make(1, 1752582896000000000ull, 9);
    must(heartbeat_encode(&hb, buf, sizeof(buf)) == HEARTBEAT_WIRE_LEN, "heartbeat_encode");
    put("heartbeat", "valid", buf, HEARTBEAT_WIRE_LEN);
    buf[HEARTBEAT_WIRE_LEN] = 0;
    put("heartbeat", "trailing-byte", buf, HEARTBEAT_WIRE_LEN + 1);
    hb.flags = HEARTBEAT_F_SHUTTING_DOWN;
    hb.health[1].valid = false;
    must(heartbeat_encode(&hb, buf, sizeof(buf)) == HEARTBEAT_WIRE_LEN, "heartbeat_encode");
    put("heartbeat", "draining", buf, HEARTBEAT_WIRE_LEN);

    /* gossip: { advance, length, datagram } records from peer 1 to us (2) */
    uint8_t seq[8 * (HEARTBEAT_WIRE_LEN + 2)];
    size_t n = 0;
    static const struct {
        uint8_t advance, id;
        uint64_t inc, counter;
    } steps[] = {
        {12, 1, 100, 1}, {12, 1, 100, 2},  {12, 1, 100, 2}, /* fresh, fresh, stale */
        {40, 1, 100, 3}, {200, 1, 100, 4},                  /* after SUSPECT, after DEAD */
        {12, 1, 200, 1}, {12, 2, 300, 1},  {12, 1, 50, 9},  /* restart, our id, older inc */
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct heartbeat h = hb_make(steps[i].id, steps[i].inc, steps[i].counter);
        seq[n++] = steps[i].advance;
        seq[n++] = HEARTBEAT_WIRE_LEN;
        must(heartbeat_encode(&h, seq + n, HEARTBEAT_WIRE_LEN) == HEARTBEAT_WIRE_LEN, "hb");
        n += HEARTBEAT_WIRE_LEN;
        if (i == 1)
            put("gossip", "two-fresh", seq, n);
    }
    put("gossip", "life-cycle", seq, n);
    uint8_t junk[] = {5, 4, 0xB7, 1, 0x10, 0};
    put("gossip", "malformed", junk, sizeof(junk));
}

static void catchups(void)
{
    uint8_t buf[CATCHUP_RESPONSE_MAX];
    struct catchup_request rq = {2, 1, 1752582896000000000ull, 5, 100};
    must(catchup_request_encode(&rq, buf, sizeof(buf)) == CATCHUP_REQUEST_LEN, "request");
    put("catchup", "request", buf, CATCHUP_REQUEST_LEN);
    put("catchup", "request-truncated", buf, CATCHUP_REQUEST_LEN - 1);

    struct catchup_writer w;
    must(catchup_writer_init(&w, buf, sizeof(buf), 1, 77, 1, 5) == 0, "writer");
    for (uint64_t s = 5; s < 8; s++) {
        struct event ev = ev_make(s == 7 ? EVENT_RECORDED : EVENT_ACCEPTED, 1, s);
        must(catchup_writer_add(&w, &ev) == 0, "writer_add");
    }
    int n = catchup_writer_finish(&w, 9);
    must(n > 0, "writer_finish");
    put("catchup", "response-3-more", buf, (size_t)n);
    buf[7] ^= 1; /* the 'more' flag contradicts last_seq */
    put("catchup", "response-bad-more", buf, (size_t)n);
    must(catchup_writer_init(&w, buf, sizeof(buf), 1, 77, 1, 5) == 0, "writer");
    n = catchup_writer_finish(&w, 4);
    must(n > 0, "writer_finish");
    put("catchup", "response-empty", buf, (size_t)n);
}

static void repls(void)
{
    static uint8_t buf[REPL_FRAME_MAX];
    struct repl_batch h = {.sender_id = 1, .incarnation = 5, .ack_incarnation = 6, .ack_seq = 3};
    struct repl_writer w;
    must(repl_writer_init(&w, buf, sizeof(buf), &h) == 0, "repl init");
    size_t n = repl_writer_finish(&w);
    put("repl", "batch-ack-only", buf, n);
    must(repl_writer_init(&w, buf, sizeof(buf), &h) == 0, "repl init");
    struct event a = ev_make(EVENT_ACCEPTED, 1, 10), b = ev_make(EVENT_PURGED, 1, 11);
    must(repl_writer_add(&w, &a) == 0 && repl_writer_add(&w, &b) == 0, "repl add");
    n = repl_writer_finish(&w);
    put("repl", "batch-2", buf, n);
    put("repl", "batch-2-truncated", buf, n - 1);

    struct snap_request rq = {2, 99, 0, 100};
    must(snap_request_encode(&rq, buf, sizeof(buf)) == SNAP_REQUEST_LEN, "snap request");
    put("repl", "snap-request", buf, SNAP_REQUEST_LEN);
    struct snap_record recs[2] = {
        {.amount_cents = 1990, .accepted_ms = 1752582896000, .state = 0, .owner = 1},
        {.amount_cents = 500,
         .accepted_ms = 1752582896000,
         .requested_at_ms = 1752582896100,
         .state = 2,
         .processor = 1,
         .owner = 2,
         .failed = 1},
    };
    recs[0].id[0] = 1;
    recs[1].id[0] = 2;
    struct snap_response sh = {.responder_id = 1,
                               .incarnation = 99,
                               .purge_epoch = 2,
                               .own_seq = 40,
                               .next_cursor = 2,
                               .done = true,
                               .count = 2};
    int len = snap_response_encode(&sh, recs, buf, sizeof(buf));
    must(len > 0, "snap response");
    put("repl", "snap-response-2", buf, (size_t)len);
}

static void texts(void)
{
    put_str("json", "payment",
            "{\"correlationId\":\"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3\",\"amount\":19.90}");
    put_str("json", "payment-spaced-exponent",
            " {\n \"amount\" : 1.99e1 , \"correlationId\" : "
            "\"4A7901B8-7D26-4D9D-AA19-4DC1C7CF60B3\" }\n");
    put_str("json", "duplicate-escaped-key",
            "{\"correlationId\":\"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3\",\"amount\":1,"
            "\"\\u0061mount\":2}");
    put_str("json", "nested", "{\"a\":[1,{\"b\":\"\\ud83d\\ude00\xc3\xa9\"},null,true],\"c\":{}}");
    put_str("json", "trailing-comma", "{\"amount\":1.00,}");

    put_str("query", "both", "from=2025-07-15T12:34:56.000Z&to=2025-07-15T12:35:00.000Z");
    put_str("query", "escaped-offset", "to=2025-07-15T12:34:56.123456789123%2B00%3A00&from=");
    put_str("query", "bad-escape", "from=2025-07-15T12:34:56Z%2");
    put_str("query", "edges", "from=1970-01-01T00:00:00Z&to=2200-12-31T23:59:59.999999999Z");
    put_str("query", "leap-day", "from=2024-02-29T23:59:60Z");
    /* rounded up, the last representable instant of 2200 becomes 2201-01-01 */
    put_str("query", "round-up-2201", "to=2200-12-31T23:59:59.9999999990001Z");
}

/* HTTP inputs: byte 0 = fake behaviour (fuzz_http.c's MODE_*), byte 1 = seed. */
static void http(const char *name, unsigned char mode, const char *req)
{
    char buf[4096];
    size_t n = strlen(req);
    must(n + 2 <= sizeof(buf), "http seed size");
    buf[0] = (char)mode;
    buf[1] = 0x5a;
    memcpy(buf + 2, req, n);
    put("http", name, buf, n + 2);
}

#define PAY_BODY "{\"correlationId\":\"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3\",\"amount\":19.90}"

static void https(void)
{
    http("payment-then-summary", 0,
         "POST /payments HTTP/1.1\r\nHost: n\r\nContent-Type: application/json\r\n"
         "Content-Length: 71\r\n\r\n" PAY_BODY
         "GET /payments-summary?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00.000Z HTTP/1.1\r\n"
         "Host: n\r\n\r\n");
    http("conflict-purge-health", 0x02,
         "POST /payments HTTP/1.1\r\nContent-Length: 71\r\n\r\n" PAY_BODY
         "POST /payments HTTP/1.1\r\nContent-Length: 71\r\n\r\n"
         "{\"correlationId\":\"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3\",\"amount\":19.91}"
         "POST /purge-payments HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
         "HEAD /healthz HTTP/1.1\r\n\r\nGET /metrics HTTP/1.0\r\n\r\n");
    http("chunked-payment", 0x04,
         "POST /payments HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
         "10\r\n{\"correlationId\"\r\n37\r\n:\"4a7901b8-7d26-4d9d-aa19-4dc1c7cf60b3\",\"amount\":"
         "19.90}"
         "\r\n0\r\n\r\nGET /nope HTTP/1.1\r\n\r\n");
    http("no-room-503", 0x01, "POST /payments HTTP/1.1\r\nContent-Length: 71\r\n\r\n" PAY_BODY);
    http("chunk-too-big", 0x08,
         "POST /payments HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffff\r\n");
    http("bad-query-and-verbs", 0x10,
         "GET /payments-summary?from=garbage HTTP/1.1\r\n\r\n"
         "DELETE /payments HTTP/1.1\r\n\r\nPUT /payments-summary HTTP/1.1\r\n\r\n"
         "GET /payments-summary?to=2025-07-15T12%3A34%3A56%2B00%3A00 HTTP/1.1\r\n\r\n");
    http("malformed", 0, "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <corpus-dir>\n", argv[0]);
        return 2;
    }
    root = argv[1];
    if (mkdir(root, 0755) != 0 && errno != EEXIST) {
        perror(root);
        return 1;
    }
    events();
    heartbeats();
    catchups();
    repls();
    texts();
    https();
    return 0;
}
