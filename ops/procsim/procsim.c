/* The payment processor simulator: routes, the delay/queue/429 model for
 * POST /payments, the fixed-window rate limit of service-health, the admin
 * endpoints and the flag/env configuration. One loop, no blocking: delays are
 * uv timers embedded in a preallocated request pool (max_in_flight +
 * max_queued entries). Payments live in memory only (psim_store). */
#include "procsim.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/container.h"
#include "lib/clock.h"
#include "lib/http.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/money.h"
#include "lib/trace.h"
#include "lib/uuid.h"
#include "psim_store.h"

#define PROCSIM_MAGIC 0x5053494du  /* "PSIM" */
#define PSIM_REQ_MAGIC 0x50524551u /* "PREQ" */
#define PSIM_MAX_DELAY_MS 600000u  /* 10 min: anything larger is a typo */
#define PSIM_TS_MAX 64             /* longest timestamp text accepted in a query */

struct psim_req {
    uint32_t magic;
    uv_timer_t timer;
    struct procsim *ps;
    struct http_exchange *x;
    uint8_t id[16];
    int64_t cents;
    int64_t at_ns;
    struct psim_req *next; /* free list or wait queue */
};

struct procsim {
    uint32_t magic;
    uv_loop_t *loop;
    struct procsim_config cfg;
    struct http_server *srv;
    struct psim_store *store;

    /* POST /payments: in_flight wait their delay; queued wait for a place. */
    struct psim_req *reqs;
    unsigned nreqs;
    struct psim_req *free_reqs;
    struct psim_req *q_head, *q_tail;
    unsigned in_flight, queued;

    /* service-health: windows of health_window_ms from the first call. */
    struct psim_req *hreqs;
    unsigned nhreqs;
    struct psim_req *free_hreqs;
    bool health_started;
    unsigned health_waiting; /* calls waiting for their window */
    uint64_t health_t0;      /* uv_now() of the first call: window 0 starts here */
    int64_t health_last_win; /* latest window whose one slot is taken */

    /* live configuration (admin endpoints change it) */
    unsigned delay_ms;
    bool failing;
    char token[64];

    uint64_t health_ok, health_429;
    uint64_t pay_200, pay_500, pay_422, pay_429;
    /* W3C traceparent on POST /payments and GET /payments/{id} (for tests of
     * the nodes' propagation): how many carried a valid one, and the last. */
    uint64_t traceparents;
    char last_traceparent[TRACE_TRACEPARENT_LEN + 1];

    unsigned nhandles;
    bool closing;
    void (*closed_cb)(void *);
    void *closed_arg;
};

/* ---------- configuration ---------- */

int procsim_fee_parse(const char *s, uint32_t *ppm)
{
    if (!s || !isdigit((unsigned char)s[0]))
        return -EINVAL;
    uint64_t ip = 0;
    const char *p = s;
    while (isdigit((unsigned char)*p)) {
        ip = ip * 10 + (uint64_t)(*p - '0');
        if (ip > 1)
            return -EINVAL;
        p++;
    }
    uint64_t frac = 0;
    int nd = 0;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        while (isdigit((unsigned char)*p)) {
            if (nd == 6)
                return -EINVAL;
            frac = frac * 10 + (uint64_t)(*p - '0');
            nd++;
            p++;
        }
    }
    if (*p)
        return -EINVAL;
    while (nd < 6) {
        frac *= 10;
        nd++;
    }
    uint64_t v = ip * PROCSIM_FEE_SCALE + frac;
    if (v > PROCSIM_FEE_SCALE)
        return -EINVAL;
    *ppm = (uint32_t)v;
    return 0;
}

size_t procsim_fee_format(int64_t total_cents, uint32_t ppm, char *buf)
{
    /* fee = cents/100 * ppm/1e6 = (cents * ppm) / 1e8, exact in 128 bits */
    bool neg = total_cents < 0;
    unsigned __int128 n = (unsigned __int128)(neg ? -(__int128)total_cents : total_cents) * ppm;
    unsigned __int128 ip = n / 100000000u;
    unsigned frac = (unsigned)(n % 100000000u);
    char digits[48];
    int nd = 0;
    do {
        digits[nd++] = (char)('0' + (int)(ip % 10));
        ip /= 10;
    } while (ip > 0);
    size_t len = 0;
    if (neg)
        buf[len++] = '-';
    while (nd > 0)
        buf[len++] = digits[--nd];
    char f[9];
    snprintf(f, sizeof(f), "%08u", frac);
    int keep = 8;
    while (keep > 2 && f[keep - 1] == '0')
        keep--;
    buf[len++] = '.';
    memcpy(buf + len, f, (size_t)keep);
    len += (size_t)keep;
    buf[len] = '\0';
    return len;
}

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    if (!s || !isdigit((unsigned char)s[0]))
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    if (!s || strcmp(s, "true") == 0 || strcmp(s, "1") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0) {
        *out = false;
        return 0;
    }
    return -EINVAL;
}

static bool text_ok(const char *s, size_t cap, bool name_chars)
{
    size_t n = strlen(s);
    if (n == 0 || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (name_chars) {
            if (!isalnum(ch) && ch != '_' && ch != '.' && ch != '-')
                return false;
        } else if (ch < 0x20 || ch == '"' || ch == '\\' || ch >= 0x7f) {
            return false;
        }
    }
    return true;
}

enum opt_kind { OPT_UINT = 0, OPT_TEXT, OPT_NAME, OPT_FEE, OPT_BOOL };

struct opt {
    const char *flag;
    const char *env;
    enum opt_kind kind;
    unsigned long min, max;
};

static const struct opt opts[] = {
    {"host", "PROCSIM_HOST", OPT_TEXT, 0, 0},
    {"port", "PROCSIM_PORT", OPT_UINT, 0, 65535},
    {"name", "PROCSIM_NAME", OPT_NAME, 0, 0},
    {"fee", "PROCSIM_FEE", OPT_FEE, 0, 0},
    {"token", "PROCSIM_TOKEN", OPT_TEXT, 0, 0},
    {"health-window-ms", "PROCSIM_HEALTH_WINDOW_MS", OPT_UINT, 1, 3600000},
    {"health-queue", "PROCSIM_HEALTH_QUEUE", OPT_UINT, 0, 1000},
    {"delay-ms", "PROCSIM_DELAY_MS", OPT_UINT, 0, PSIM_MAX_DELAY_MS},
    {"failing", "PROCSIM_FAILING", OPT_BOOL, 0, 0},
    {"unix", "PROCSIM_UNIX", OPT_TEXT, 0, 0},
    {"max-in-flight", "PROCSIM_MAX_IN_FLIGHT", OPT_UINT, 1, 1000000},
    {"max-queued", "PROCSIM_MAX_QUEUED", OPT_UINT, 0, 1000000},
    {"max-conns", "PROCSIM_MAX_CONNS", OPT_UINT, 1, 1000000},
};

static int apply_opt(struct procsim_config *cfg, const struct opt *o, const char *v, char *err,
                     size_t err_len)
{
    unsigned long u = 0;
    bool b = false;
    int rv = 0;
    switch (o->kind) {
    case OPT_UINT:
        rv = parse_uint(v, o->min, o->max, &u);
        break;
    case OPT_BOOL:
        rv = parse_bool(v, &b);
        break;
    default:
        rv = v ? 0 : -EINVAL;
        break;
    }
    if (rv == 0) {
        const char *f = o->flag;
        if (strcmp(f, "host") == 0) {
            rv = text_ok(v, sizeof(cfg->host), false) ? 0 : -EINVAL;
            if (rv == 0)
                strcpy(cfg->host, v);
        } else if (strcmp(f, "port") == 0) {
            cfg->port = (int)u;
        } else if (strcmp(f, "name") == 0) {
            rv = text_ok(v, sizeof(cfg->name), true) ? 0 : -EINVAL;
            if (rv == 0)
                strcpy(cfg->name, v);
        } else if (strcmp(f, "fee") == 0) {
            rv = strlen(v) < sizeof(cfg->fee_text) ? procsim_fee_parse(v, &cfg->fee_ppm) : -EINVAL;
            if (rv == 0)
                strcpy(cfg->fee_text, v);
        } else if (strcmp(f, "token") == 0) {
            rv = text_ok(v, sizeof(cfg->token), false) ? 0 : -EINVAL;
            if (rv == 0)
                strcpy(cfg->token, v);
        } else if (strcmp(f, "health-window-ms") == 0) {
            cfg->health_window_ms = (unsigned)u;
        } else if (strcmp(f, "health-queue") == 0) {
            cfg->health_queue = (unsigned)u;
        } else if (strcmp(f, "delay-ms") == 0) {
            cfg->delay_ms = (unsigned)u;
        } else if (strcmp(f, "failing") == 0) {
            cfg->failing = b;
        } else if (strcmp(f, "unix") == 0) {
            rv = text_ok(v, sizeof(cfg->unix_path), false) ? 0 : -EINVAL;
            if (rv == 0)
                strcpy(cfg->unix_path, v);
        } else if (strcmp(f, "max-in-flight") == 0) {
            cfg->max_in_flight = (unsigned)u;
        } else if (strcmp(f, "max-queued") == 0) {
            cfg->max_queued = (unsigned)u;
        } else if (strcmp(f, "max-conns") == 0) {
            cfg->max_conns = (unsigned)u;
        }
    }
    if (rv < 0)
        snprintf(err, err_len, "bad value for --%s: '%s'", o->flag, v ? v : "(missing)");
    return rv;
}

int procsim_config_parse(struct procsim_config *cfg, int argc, char **argv, char *err,
                         size_t err_len)
{
    memset(cfg, 0, sizeof(*cfg));
    strcpy(cfg->host, "0.0.0.0");
    cfg->port = 8001;
    strcpy(cfg->name, "default");
    strcpy(cfg->fee_text, "0.05");
    cfg->fee_ppm = 50000;
    strcpy(cfg->token, "123");
    cfg->health_window_ms = 5000;
    cfg->health_queue = 2;
    cfg->max_in_flight = 800;
    cfg->max_queued = 500;
    cfg->max_conns = 4096;
    size_t nopts = sizeof(opts) / sizeof(opts[0]);
    for (size_t i = 0; i < nopts; i++) {
        const char *v = getenv(opts[i].env);
        if (v && *v && apply_opt(cfg, &opts[i], v, err, err_len) < 0) {
            size_t n = strlen(err);
            snprintf(err + n, err_len - n, " (from %s)", opts[i].env);
            return -EINVAL;
        }
    }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, err_len, "unexpected argument '%s'", arg);
            return -EINVAL;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const struct opt *o = NULL;
        for (size_t i = 0; i < nopts; i++) {
            if (strlen(opts[i].flag) == nlen && strncmp(opts[i].flag, name, nlen) == 0)
                o = &opts[i];
        }
        if (!o) {
            snprintf(err, err_len, "unknown flag '%s'", arg);
            return -EINVAL;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v && o->kind != OPT_BOOL) {
            if (a + 1 >= argc) {
                snprintf(err, err_len, "missing value for --%s", o->flag);
                return -EINVAL;
            }
            v = argv[++a];
        }
        if (apply_opt(cfg, o, v, err, err_len) < 0)
            return -EINVAL;
    }
    return 0;
}

/* ---------- helpers ---------- */

/* ISO-8601 with 3, 6 or 9 fraction digits, as few as represent at_ns exactly. */
static size_t format_ns(int64_t at_ns, char *buf, size_t cap)
{
    int64_t sec = at_ns / 1000000000;
    int64_t ns = at_ns % 1000000000;
    if (ns < 0) {
        ns += 1000000000;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    int n;
    if (ns % 1000000 == 0)
        n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(ns / 1000000));
    else if (ns % 1000 == 0)
        n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ns / 1000));
    else
        n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%09dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ns);
    return n > 0 ? (size_t)n : 0;
}

static bool token_ok(const struct procsim *ps, const struct http_request *req)
{
    struct slice v;
    return http_request_header(req, "X-Rinha-Token", &v) && slice_eq(v, ps->token);
}

/* ---------- POST /payments ---------- */

static void payment_finish(struct procsim *ps, struct http_exchange *x, const uint8_t id[16],
                           int64_t cents, int64_t at_ns)
{
    if (ps->failing) {
        ps->pay_500++;
        http_reply_json(x, 500, "{\"message\":\"payment processing failed\"}");
        return;
    }
    int rv = psim_store_insert(ps->store, id, cents, at_ns);
    if (rv == -EEXIST) {
        ps->pay_422++;
        http_reply_json(x, 422, "{\"message\":\"correlationId already exists\"}");
        return;
    }
    if (rv < 0) {
        ps->pay_500++;
        http_reply_json(x, 500, "{\"message\":\"out of memory\"}");
        return;
    }
    ps->pay_200++;
    http_reply_json(x, 200, "{\"message\":\"payment processed successfully\"}");
}

static void on_payment_timer(uv_timer_t *t);

static void payment_start(struct procsim *ps, struct psim_req *r)
{
    ps->in_flight++;
    uv_timer_start(&r->timer, on_payment_timer, ps->delay_ms, 0);
}

static void on_payment_timer(uv_timer_t *t)
{
    struct psim_req *r = container_of(t, struct psim_req, timer);
    assert(r->magic == PSIM_REQ_MAGIC);
    struct procsim *ps = r->ps;
    ps->in_flight--;
    /* The client may have hung up: we record all the same and http.c drops
     * the reply. */
    payment_finish(ps, r->x, r->id, r->cents, r->at_ns);
    r->x = NULL;
    r->next = ps->free_reqs;
    ps->free_reqs = r;
    if (ps->q_head && ps->in_flight < ps->cfg.max_in_flight) {
        struct psim_req *q = ps->q_head;
        ps->q_head = q->next;
        if (!ps->q_head)
            ps->q_tail = NULL;
        q->next = NULL;
        ps->queued--;
        payment_start(ps, q);
    }
}

static void handle_payment(struct procsim *ps, struct http_exchange *x,
                           const struct http_request *req)
{
    struct json_doc d;
    if (json_parse(&d, req->body.ptr, req->body.len) < 0 || d.ntok < 1 ||
        d.tok[0].type != JSON_OBJECT) {
        http_reply_error(x, 400, "body must be a JSON object");
        return;
    }
    struct slice s;
    bool esc;
    uint8_t id[16];
    if (!json_string(&d, json_member(&d, 0, "correlationId"), &s, &esc) || esc ||
        uuid_parse(s.ptr, s.len, id) < 0) {
        http_reply_error(x, 400, "correlationId must be a UUID");
        return;
    }
    int64_t cents;
    if (!json_number(&d, json_member(&d, 0, "amount"), &s) ||
        money_parse_cents(s.ptr, s.len, &cents) < 0) {
        http_reply_error(x, 400, "amount must be a positive number of cents");
        return;
    }
    int64_t at_ns;
    if (!json_string(&d, json_member(&d, 0, "requestedAt"), &s, &esc) || esc ||
        clock_parse_iso(s.ptr, s.len, 0, &at_ns) < 0) {
        http_reply_error(x, 400, "requestedAt must be an ISO-8601 UTC timestamp");
        return;
    }
    if (ps->delay_ms == 0 && !ps->q_head && ps->in_flight < ps->cfg.max_in_flight) {
        payment_finish(ps, x, id, cents, at_ns); /* nothing to wait for */
        return;
    }
    if (ps->in_flight >= ps->cfg.max_in_flight && ps->queued >= ps->cfg.max_queued) {
        ps->pay_429++;
        http_reply_json(x, 429, "{\"message\":\"too many requests\"}");
        return;
    }
    struct psim_req *r = ps->free_reqs;
    assert(r); /* the pool holds max_in_flight + max_queued entries */
    ps->free_reqs = r->next;
    r->next = NULL;
    r->x = x;
    memcpy(r->id, id, 16);
    r->cents = cents;
    r->at_ns = at_ns;
    if (ps->in_flight < ps->cfg.max_in_flight) {
        payment_start(ps, r);
        return;
    }
    if (ps->q_tail)
        ps->q_tail->next = r;
    else
        ps->q_head = r;
    ps->q_tail = r;
    ps->queued++;
}

/* ---------- GET /payments/service-health ---------- */

static void health_answer(struct procsim *ps, struct http_exchange *x)
{
    char body[96];
    snprintf(body, sizeof(body), "{\"failing\":%s,\"minResponseTime\":%u}",
             ps->failing ? "true" : "false", ps->delay_ms);
    ps->health_ok++;
    http_reply_json(x, 200, body);
}

static void on_health_timer(uv_timer_t *t)
{
    struct psim_req *r = container_of(t, struct psim_req, timer);
    assert(r->magic == PSIM_REQ_MAGIC);
    struct procsim *ps = r->ps;
    ps->health_waiting--;
    health_answer(ps, r->x);
    r->x = NULL;
    r->next = ps->free_hreqs;
    ps->free_hreqs = r;
}

/* Fixed windows of health_window_ms starting at the first call; one call per
 * window. A call that finds its window's slot taken takes the next free
 * window's slot and waits for it (at most health_queue waiting), else 429. */
static void handle_health(struct procsim *ps, struct http_exchange *x)
{
    uint64_t now = uv_now(ps->loop);
    uint64_t w = ps->cfg.health_window_ms;
    if (!ps->health_started) {
        ps->health_started = true;
        ps->health_t0 = now;
        ps->health_last_win = -1;
    }
    int64_t k = (int64_t)((now - ps->health_t0) / w);
    if (ps->health_last_win < k) {
        ps->health_last_win = k;
        health_answer(ps, x);
        return;
    }
    if (ps->health_last_win - k < (int64_t)ps->cfg.health_queue && ps->free_hreqs) {
        struct psim_req *r = ps->free_hreqs;
        ps->free_hreqs = r->next;
        r->next = NULL;
        r->x = x;
        ps->health_last_win++;
        ps->health_waiting++;
        uint64_t at = ps->health_t0 + (uint64_t)ps->health_last_win * w;
        uv_timer_start(&r->timer, on_health_timer, at > now ? at - now : 0, 0);
        return;
    }
    uint64_t next = ps->health_t0 + (uint64_t)(k + 1) * w;
    uint64_t secs = (next - now + 999) / 1000;
    if (secs == 0)
        secs = 1;
    char extra[48];
    snprintf(extra, sizeof(extra), "Retry-After: %llu\r\n", (unsigned long long)secs);
    ps->health_429++;
    static const char body[] = "{\"message\":\"too many requests\"}";
    http_reply(x, 429, extra, body, sizeof(body) - 1);
}

/* ---------- GET /payments/{id} ---------- */

static void handle_get_payment(struct procsim *ps, struct http_exchange *x, struct slice idtext)
{
    uint8_t id[16];
    struct psim_payment p;
    if (uuid_parse(idtext.ptr, idtext.len, id) < 0 || !psim_store_get(ps->store, id, &p)) {
        http_reply_error(x, 404, "payment not found");
        return;
    }
    char uuid[UUID_TEXT_LEN + 1], amount[MONEY_FMT_MAX], at[64], body[256];
    uuid_format(p.id, uuid);
    uuid[UUID_TEXT_LEN] = '\0';
    money_format(p.cents, amount);
    format_ns(p.at_ns, at, sizeof(at));
    snprintf(body, sizeof(body), "{\"correlationId\":\"%s\",\"amount\":%s,\"requestedAt\":\"%s\"}",
             uuid, amount, at);
    http_reply_json(x, 200, body);
}

/* ---------- admin ---------- */

static int query_time(struct slice q, const char *key, int round_up, bool *present, int64_t *ns)
{
    struct slice v;
    *present = false;
    if (!http_query_param(q, key, &v) || v.len == 0)
        return 0;
    char buf[PSIM_TS_MAX];
    int dlen;
    if ((dlen = http_query_decode(v, buf, sizeof(buf))) < 0)
        return -EINVAL;
    if (clock_parse_iso(buf, (size_t)dlen, round_up, ns) < 0)
        return -EINVAL;
    *present = true;
    return 0;
}

static void handle_summary(struct procsim *ps, struct http_exchange *x,
                           const struct http_request *req)
{
    bool has_from, has_to;
    int64_t from = 0, to = 0;
    /* Inclusive bounds: digits beyond ns round `from` up and `to` down, so that
     * from <= t <= to holds for a stored t exactly when it does for the text. */
    if (query_time(req->query, "from", 1, &has_from, &from) < 0 ||
        query_time(req->query, "to", 0, &has_to, &to) < 0) {
        http_reply_error(x, 400, "from/to must be ISO-8601 UTC timestamps");
        return;
    }
    uint64_t count;
    int64_t cents;
    if (has_from && has_to)
        psim_store_sum(ps->store, from, to, &count, &cents);
    else
        psim_store_total(ps->store, &count, &cents);
    char amount[MONEY_FMT_MAX], fee[48], body[256];
    money_format(cents, amount);
    procsim_fee_format(cents, ps->cfg.fee_ppm, fee);
    snprintf(body, sizeof(body),
             "{\"totalRequests\":%llu,\"totalAmount\":%s,\"totalFee\":%s,"
             "\"feePerTransaction\":%s}",
             (unsigned long long)count, amount, fee, ps->cfg.fee_text);
    http_reply_json(x, 200, body);
}

static bool parse_body_object(struct json_doc *d, const struct http_request *req)
{
    return json_parse(d, req->body.ptr, req->body.len) == 0 && d->ntok >= 1 &&
           d->tok[0].type == JSON_OBJECT;
}

static void handle_config(struct procsim *ps, struct http_exchange *x,
                          const struct http_request *req, struct slice what)
{
    struct json_doc d;
    char body[128];
    if (!parse_body_object(&d, req)) {
        http_reply_error(x, 400, "body must be a JSON object");
        return;
    }
    if (slice_eq(what, "token")) {
        struct slice s;
        bool esc;
        if (!json_string(&d, json_member(&d, 0, "token"), &s, &esc) || esc || s.len == 0 ||
            s.len >= sizeof(ps->token)) {
            http_reply_error(x, 400, "token must be a non-empty string");
            return;
        }
        for (size_t i = 0; i < s.len; i++) {
            if ((unsigned char)s.ptr[i] < 0x20) {
                http_reply_error(x, 400, "token must be printable");
                return;
            }
        }
        memcpy(ps->token, s.ptr, s.len);
        ps->token[s.len] = '\0';
        http_reply(x, 204, NULL, NULL, 0);
        return;
    }
    if (slice_eq(what, "delay")) {
        long long v;
        if (!json_int(&d, json_member(&d, 0, "delay"), &v) || v > PSIM_MAX_DELAY_MS) {
            http_reply_error(x, 400, "delay must be an integer number of ms");
            return;
        }
        unsigned was = ps->delay_ms;
        ps->delay_ms = (unsigned)v;
        snprintf(body, sizeof(body), "{\"config\":\"delay\",\"was\":%u,\"is\":%u}", was,
                 ps->delay_ms);
        http_reply_json(x, 200, body);
        return;
    }
    if (slice_eq(what, "failure")) {
        bool v;
        if (!json_bool(&d, json_member(&d, 0, "failure"), &v)) {
            http_reply_error(x, 400, "failure must be a boolean");
            return;
        }
        bool was = ps->failing;
        ps->failing = v;
        snprintf(body, sizeof(body), "{\"config\":\"failure\",\"was\":%s,\"is\":%s}",
                 was ? "true" : "false", v ? "true" : "false");
        http_reply_json(x, 200, body);
        return;
    }
    http_reply_error(x, 404, "no such configuration");
}

static void handle_stats(struct procsim *ps, struct http_exchange *x)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"healthOk\":%llu,\"health429\":%llu,\"payments200\":%llu,\"payments500\":%llu,"
             "\"payments422\":%llu,\"payments429\":%llu,\"inFlight\":%u,\"queued\":%u,"
             "\"healthQueued\":%u,\"stored\":%zu,\"traceparents\":%llu,"
             "\"lastTraceparent\":\"%s\"}",
             (unsigned long long)ps->health_ok, (unsigned long long)ps->health_429,
             (unsigned long long)ps->pay_200, (unsigned long long)ps->pay_500,
             (unsigned long long)ps->pay_422, (unsigned long long)ps->pay_429, ps->in_flight,
             ps->queued, ps->health_waiting, psim_store_count(ps->store),
             (unsigned long long)ps->traceparents, ps->last_traceparent);
    http_reply_json(x, 200, body);
}

/* Counts and keeps a valid traceparent (re-formatted: only hex and dashes
 * reach the stats body). */
static void note_traceparent(struct procsim *ps, const struct http_request *req)
{
    struct slice v;
    struct trace_ctx c;
    if (!http_request_header(req, "traceparent", &v) ||
        trace_parse_traceparent(v.ptr, v.len, &c) != 0)
        return;
    ps->traceparents++;
    trace_format_traceparent(&c, ps->last_traceparent);
    ps->last_traceparent[TRACE_TRACEPARENT_LEN] = '\0';
}

/* ---------- routing ---------- */

static bool has_prefix(struct slice s, const char *p, struct slice *rest)
{
    size_t n = strlen(p);
    if (s.len < n || memcmp(s.ptr, p, n) != 0)
        return false;
    *rest = (struct slice){s.ptr + n, s.len - n};
    return true;
}

static void on_request(struct http_exchange *x, const struct http_request *req, void *arg)
{
    struct procsim *ps = arg;
    assert(ps->magic == PROCSIM_MAGIC);
    struct slice rest;
    enum http_verb v = req->verb;
    if (slice_eq(req->path, "/payments")) {
        if (v == HTTP_VERB_POST) {
            note_traceparent(ps, req);
            handle_payment(ps, x, req);
        } else {
            http_reply_error(x, 405, "method not allowed");
        }
        return;
    }
    if (slice_eq(req->path, "/payments/service-health")) {
        if (v == HTTP_VERB_GET)
            handle_health(ps, x);
        else
            http_reply_error(x, 405, "method not allowed");
        return;
    }
    if (has_prefix(req->path, "/payments/", &rest)) {
        if (v == HTTP_VERB_GET) {
            note_traceparent(ps, req);
            handle_get_payment(ps, x, rest);
        } else {
            http_reply_error(x, 405, "method not allowed");
        }
        return;
    }
    if (has_prefix(req->path, "/admin/", &rest)) {
        if (!token_ok(ps, req)) {
            http_reply_error(x, 401, "invalid token");
            return;
        }
        struct slice what;
        if (slice_eq(rest, "payments-summary") && v == HTTP_VERB_GET)
            handle_summary(ps, x, req);
        else if (has_prefix(rest, "configurations/", &what) && v == HTTP_VERB_PUT)
            handle_config(ps, x, req, what);
        else if (slice_eq(rest, "purge-payments") && v == HTTP_VERB_POST) {
            psim_store_purge(ps->store);
            http_reply_json(x, 200, "{\"message\":\"All payments purged.\"}");
        } else if (slice_eq(rest, "stats") && v == HTTP_VERB_GET)
            handle_stats(ps, x);
        else
            http_reply_error(x, 404, "not found");
        return;
    }
    http_reply_error(x, 404, "not found");
}

/* ---------- lifecycle ---------- */

static void free_all(struct procsim *ps)
{
    psim_store_free(ps->store);
    free(ps->reqs);
    free(ps->hreqs);
    free(ps);
}

struct procsim *procsim_new(uv_loop_t *loop, const struct procsim_config *cfg)
{
    struct procsim *ps = calloc(1, sizeof(*ps));
    if (!ps)
        return NULL;
    ps->magic = PROCSIM_MAGIC;
    ps->loop = loop;
    ps->cfg = *cfg;
    ps->delay_ms = cfg->delay_ms;
    ps->failing = cfg->failing;
    strcpy(ps->token, cfg->token);
    ps->health_last_win = -1;
    ps->nreqs = cfg->max_in_flight + cfg->max_queued;
    ps->nhreqs = cfg->health_queue ? cfg->health_queue : 1;
    ps->reqs = calloc(ps->nreqs, sizeof(*ps->reqs));
    ps->hreqs = calloc(ps->nhreqs, sizeof(*ps->hreqs));
    ps->store = psim_store_new(1 << 16);
    struct http_server_config hc;
    http_server_config_default(&hc);
    hc.max_conns = cfg->max_conns;
    hc.max_header_bytes = 8 * 1024;
    hc.max_body_bytes = 4 * 1024;
    hc.out_buf_bytes = 4 * 1024;
    if (ps->reqs && ps->hreqs && ps->store)
        ps->srv = http_server_new(loop, &hc, on_request, ps);
    if (!ps->srv) {
        free_all(ps);
        return NULL;
    }
    ps->nhandles = 1; /* the http server */
    for (unsigned i = 0; i < ps->nreqs; i++) {
        struct psim_req *r = &ps->reqs[i];
        r->magic = PSIM_REQ_MAGIC;
        r->ps = ps;
        uv_timer_init(loop, &r->timer);
        r->next = ps->free_reqs;
        ps->free_reqs = r;
        ps->nhandles++;
    }
    for (unsigned i = 0; i < ps->nhreqs; i++) {
        struct psim_req *r = &ps->hreqs[i];
        r->magic = PSIM_REQ_MAGIC;
        r->ps = ps;
        uv_timer_init(loop, &r->timer);
        r->next = ps->free_hreqs;
        ps->free_hreqs = r;
        ps->nhandles++;
    }
    return ps;
}

int procsim_start(struct procsim *ps)
{
    int rv = http_server_listen_tcp(ps->srv, ps->cfg.host, ps->cfg.port);
    if (rv < 0) {
        log_error("procsim", "listen on %s:%d failed: %s", ps->cfg.host, ps->cfg.port,
                  uv_strerror(rv));
        return rv;
    }
    if (ps->cfg.unix_path[0]) {
        rv = http_server_listen_unix(ps->srv, ps->cfg.unix_path);
        if (rv < 0) {
            log_error("procsim", "listen on %s failed: %s", ps->cfg.unix_path, uv_strerror(rv));
            return rv;
        }
    }
    log_fields(LOG_INFO, "procsim", "start",
               "\"name\":\"%s\",\"host\":\"%s\",\"port\":%d,\"unix\":\"%s\",\"fee\":%s,"
               "\"delayMs\":%u,\"failing\":%s,\"healthWindowMs\":%u,\"healthQueue\":%u,"
               "\"maxInFlight\":%u,\"maxQueued\":%u,\"maxConns\":%u,\"storage\":\"memory\"",
               ps->cfg.name, ps->cfg.host, http_server_port(ps->srv), ps->cfg.unix_path,
               ps->cfg.fee_text, ps->delay_ms, ps->failing ? "true" : "false",
               ps->cfg.health_window_ms, ps->cfg.health_queue, ps->cfg.max_in_flight,
               ps->cfg.max_queued, ps->cfg.max_conns);
    return 0;
}

int procsim_port(const struct procsim *ps)
{
    return http_server_port(ps->srv);
}

static void handle_gone(struct procsim *ps)
{
    if (--ps->nhandles > 0)
        return;
    void (*cb)(void *) = ps->closed_cb;
    void *arg = ps->closed_arg;
    free_all(ps);
    if (cb)
        cb(arg);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct psim_req *r = container_of((uv_timer_t *)h, struct psim_req, timer);
    assert(r->magic == PSIM_REQ_MAGIC);
    handle_gone(r->ps);
}

static void on_server_closed(struct http_server *s, void *arg)
{
    handle_gone(arg);
}

void procsim_close(struct procsim *ps, void (*cb)(void *arg), void *arg)
{
    assert(ps->magic == PROCSIM_MAGIC);
    if (ps->closing)
        return;
    ps->closing = true;
    ps->closed_cb = cb;
    ps->closed_arg = arg;
    log_fields(LOG_INFO, "procsim", "stop",
               "\"name\":\"%s\",\"payments200\":%llu,\"stored\":%zu,\"inFlight\":%u,"
               "\"queued\":%u",
               ps->cfg.name, (unsigned long long)ps->pay_200, psim_store_count(ps->store),
               ps->in_flight, ps->queued);
    http_server_close(ps->srv, on_server_closed, ps);
    for (unsigned i = 0; i < ps->nreqs; i++)
        uv_close((uv_handle_t *)&ps->reqs[i].timer, on_timer_closed);
    for (unsigned i = 0; i < ps->nhreqs; i++)
        uv_close((uv_handle_t *)&ps->hreqs[i].timer, on_timer_closed);
}
