/* Trace context, samplers and the span ring (see trace.h). Ids come from a
 * xoshiro256** generator seeded once from getrandom(): ids need to be unique
 * and unpredictable enough for sampling, not secret. Wall-clock span times are
 * the caller's monotonic times shifted by an offset taken at trace_new(), so a
 * span costs no clock_gettime(CLOCK_REALTIME) and its duration is exact. */
#include "lib/trace.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "lib/text.h"

struct tracer {
    struct trace_sampler sampler;
    struct trace_span *ring; /* ring_cap slots */
    size_t ring_cap;         /* power of two */
    uint64_t head, tail;     /* spans written / consumed (tail <= head <= tail + cap) */
    uint64_t rng[4];         /* xoshiro256** state, never all zero */
    int64_t wall_minus_mono; /* ns: CLOCK_REALTIME - CLOCK_MONOTONIC at trace_new() */
    unsigned notify_at;
    trace_notify_cb *notify;
    void *notify_arg;
    struct trace_stats stats; /* pending and ring_cap filled in by trace_get_stats() */
};

/* ---------------------------------------------------------------- traceparent */

/* n bytes from 2n lowercase hex digits; false on anything else. */
static bool lower_hex(const char *s, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < 2 * n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(text_hex_digit(s[2 * i]) << 4 | text_hex_digit(s[2 * i + 1]));
    return true;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

int trace_parse_traceparent(const char *s, size_t len, struct trace_ctx *out)
{
    while (len > 0 && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    uint8_t version;
    struct trace_ctx c;
    if (len < TRACE_TRACEPARENT_LEN || !lower_hex(s, 1, &version) || version == 0xff)
        return -EINVAL;
    if (version == 0 && len != TRACE_TRACEPARENT_LEN)
        return -EINVAL;
    if (len > TRACE_TRACEPARENT_LEN && s[TRACE_TRACEPARENT_LEN] != '-')
        return -EINVAL;
    if (s[2] != '-' || s[35] != '-' || s[52] != '-')
        return -EINVAL;
    if (!lower_hex(s + 3, TRACE_ID_LEN, c.trace_id) ||
        !lower_hex(s + 36, TRACE_SPAN_ID_LEN, c.span_id) || !lower_hex(s + 53, 1, &c.flags))
        return -EINVAL;
    if (all_zero(c.trace_id, TRACE_ID_LEN) || all_zero(c.span_id, TRACE_SPAN_ID_LEN))
        return -EINVAL;
    *out = c;
    return 0;
}

void trace_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

size_t trace_format_traceparent(const struct trace_ctx *c, char *buf)
{
    memcpy(buf, "00-", 3);
    trace_hex(c->trace_id, TRACE_ID_LEN, buf + 3);
    buf[35] = '-';
    trace_hex(c->span_id, TRACE_SPAN_ID_LEN, buf + 36);
    buf[52] = '-';
    trace_hex(&c->flags, 1, buf + 53);
    return TRACE_TRACEPARENT_LEN;
}

/* ---------------------------------------------------------------- sampler */

static const struct {
    const char *name;
    enum trace_sampler_kind kind;
} sampler_names[] = {
    {"always_on", TRACE_SAMPLER_ALWAYS_ON},
    {"always_off", TRACE_SAMPLER_ALWAYS_OFF},
    {"traceidratio", TRACE_SAMPLER_RATIO},
    {"parentbased_always_on", TRACE_SAMPLER_PARENT_ALWAYS_ON},
    {"parentbased_always_off", TRACE_SAMPLER_PARENT_ALWAYS_OFF},
    {"parentbased_traceidratio", TRACE_SAMPLER_PARENT_RATIO},
};

/* A plain decimal ("0.01", "1", ".5", "1.0"); no sign, exponent, inf or nan. */
static int parse_ratio(const char *v, double *out)
{
    bool digits = false, dot = false;
    for (const char *p = v; *p; p++) {
        if (*p >= '0' && *p <= '9')
            digits = true;
        else if (*p == '.' && !dot)
            dot = true;
        else
            return -EINVAL;
    }
    if (!digits)
        return -EINVAL;
    double r = strtod(v, NULL);
    if (!(r >= 0.0 && r <= 1.0))
        return -EINVAL;
    *out = r;
    return 0;
}

int trace_sampler_parse(const char *name, const char *arg, struct trace_sampler *out)
{
    struct trace_sampler s = {.kind = TRACE_SAMPLER_PARENT_ALWAYS_ON, .ratio = 1.0};
    if (name && *name) {
        size_t i = 0, n = sizeof(sampler_names) / sizeof(sampler_names[0]);
        while (i < n && strcmp(name, sampler_names[i].name) != 0)
            i++;
        if (i == n)
            return -EINVAL;
        s.kind = sampler_names[i].kind;
    }
    bool ratio_kind = s.kind == TRACE_SAMPLER_RATIO || s.kind == TRACE_SAMPLER_PARENT_RATIO;
    if (ratio_kind && arg && *arg && parse_ratio(arg, &s.ratio) != 0)
        return -EINVAL;
    s.all = s.ratio >= 1.0;
    /* ratio * 2^64, below 2^64 since ratio < 1 here. */
    s.bound = s.all ? UINT64_MAX : (uint64_t)ldexp(s.ratio, 64);
    *out = s;
    return 0;
}

const char *trace_sampler_name(const struct trace_sampler *s)
{
    for (size_t i = 0; i < sizeof(sampler_names) / sizeof(sampler_names[0]); i++)
        if (sampler_names[i].kind == s->kind)
            return sampler_names[i].name;
    return "?";
}

static bool ratio_decide(const struct trace_sampler *s, const uint8_t trace_id[TRACE_ID_LEN])
{
    if (s->all)
        return true;
    uint64_t v = 0;
    for (int i = 8; i < 16; i++)
        v = v << 8 | trace_id[i];
    return v < s->bound;
}

bool trace_sampler_decide(const struct trace_sampler *s, const struct trace_ctx *parent,
                          const uint8_t trace_id[TRACE_ID_LEN])
{
    switch (s->kind) {
    case TRACE_SAMPLER_ALWAYS_ON:
        return true;
    case TRACE_SAMPLER_ALWAYS_OFF:
        return false;
    case TRACE_SAMPLER_RATIO:
        return ratio_decide(s, trace_id);
    case TRACE_SAMPLER_PARENT_ALWAYS_ON:
        return parent ? (parent->flags & TRACE_FLAG_SAMPLED) != 0 : true;
    case TRACE_SAMPLER_PARENT_ALWAYS_OFF:
        return parent ? (parent->flags & TRACE_FLAG_SAMPLED) != 0 : false;
    case TRACE_SAMPLER_PARENT_RATIO:
        return parent ? (parent->flags & TRACE_FLAG_SAMPLED) != 0 : ratio_decide(s, trace_id);
    }
    return false;
}

/* ---------------------------------------------------------------- ids, time */

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next_u64(struct tracer *t)
{
    uint64_t *s = t->rng;
    uint64_t r = rotl(s[1] * 5, 7) * 9, x = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= x;
    s[3] = rotl(s[3], 45);
    return r;
}

/* n random bytes, never all zero (an all-zero id is invalid). */
static void random_id(struct tracer *t, uint8_t *out, size_t n)
{
    do {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t v = next_u64(t);
            memcpy(out + i, &v, n - i < 8 ? n - i : 8);
        }
    } while (all_zero(out, n));
}

static uint64_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t to_wall(const struct tracer *t, uint64_t mono_ns)
{
    return (uint64_t)((int64_t)(mono_ns ? mono_ns : mono_now()) + t->wall_minus_mono);
}

/* ---------------------------------------------------------------- tracer */

struct tracer *trace_new(const struct trace_config *cfg)
{
    size_t cap = 2;
    while (cap < cfg->ring_cap)
        cap *= 2;
    struct tracer *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->ring = calloc(cap, sizeof(*t->ring));
    if (!t->ring) {
        free(t);
        return NULL;
    }
    t->ring_cap = cap;
    t->sampler = cfg->sampler;
    if (getrandom(t->rng, sizeof(t->rng), 0) != (ssize_t)sizeof(t->rng) ||
        all_zero((const uint8_t *)t->rng, sizeof(t->rng))) {
        /* No entropy: the clock is enough to keep ids apart between runs. */
        t->rng[0] = mono_now() | 1;
        t->rng[1] = 0x9e3779b97f4a7c15ULL ^ (uint64_t)time(NULL);
    }
    struct timespec w;
    clock_gettime(CLOCK_REALTIME, &w);
    uint64_t m = mono_now();
    t->wall_minus_mono =
        (int64_t)((uint64_t)w.tv_sec * 1000000000u + (uint64_t)w.tv_nsec) - (int64_t)m;
    return t;
}

void trace_free(struct tracer *t)
{
    if (!t)
        return;
    free(t->ring);
    free(t);
}

const struct trace_sampler *trace_sampler(const struct tracer *t)
{
    return &t->sampler;
}

/* span_id NULL: a new one. */
static void span_init(struct tracer *t, struct trace_span *sp, const char *name,
                      enum trace_kind kind, const uint8_t *span_id, uint64_t start_mono_ns)
{
    if (span_id)
        memcpy(sp->ctx.span_id, span_id, TRACE_SPAN_ID_LEN);
    else
        random_id(t, sp->ctx.span_id, TRACE_SPAN_ID_LEN);
    sp->kind = (uint8_t)kind;
    sp->status = TRACE_STATUS_UNSET;
    sp->nattrs = 0;
    sp->name = name;
    sp->start_ns = sp->sampled ? to_wall(t, start_mono_ns) : 0;
    sp->end_ns = 0;
    t->stats.started++;
    t->stats.sampled += sp->sampled;
}

void trace_span_start(struct tracer *t, struct trace_span *sp, const char *name,
                      enum trace_kind kind, const struct trace_ctx *remote, uint64_t start_mono_ns)
{
    sp->sampled = false;
    if (!t)
        return;
    if (remote) {
        memcpy(sp->ctx.trace_id, remote->trace_id, TRACE_ID_LEN);
        memcpy(sp->parent_span_id, remote->span_id, TRACE_SPAN_ID_LEN);
        sp->has_parent = true;
    } else {
        random_id(t, sp->ctx.trace_id, TRACE_ID_LEN);
        sp->has_parent = false;
    }
    sp->sampled = trace_sampler_decide(&t->sampler, remote, sp->ctx.trace_id);
    sp->ctx.flags = sp->sampled ? TRACE_FLAG_SAMPLED : 0;
    span_init(t, sp, name, kind, NULL, start_mono_ns);
}

void trace_new_span_id(struct tracer *t, uint8_t out[TRACE_SPAN_ID_LEN])
{
    random_id(t, out, TRACE_SPAN_ID_LEN);
}

void trace_span_child_id(struct tracer *t, struct trace_span *sp, const char *name,
                         enum trace_kind kind, const struct trace_ctx *parent,
                         const uint8_t span_id[TRACE_SPAN_ID_LEN], uint64_t start_mono_ns)
{
    sp->sampled = false;
    if (!t)
        return;
    memcpy(sp->ctx.trace_id, parent->trace_id, TRACE_ID_LEN);
    memcpy(sp->parent_span_id, parent->span_id, TRACE_SPAN_ID_LEN);
    sp->has_parent = true;
    sp->ctx.flags = parent->flags;
    sp->sampled = (parent->flags & TRACE_FLAG_SAMPLED) != 0;
    span_init(t, sp, name, kind, span_id, start_mono_ns);
}

void trace_span_child(struct tracer *t, struct trace_span *sp, const char *name,
                      enum trace_kind kind, const struct trace_ctx *parent, uint64_t start_mono_ns)
{
    trace_span_child_id(t, sp, name, kind, parent, NULL, start_mono_ns);
}

static struct trace_attr *new_attr(struct trace_span *sp, const char *key)
{
    if (!sp->sampled || sp->nattrs == TRACE_ATTRS_MAX)
        return NULL;
    struct trace_attr *a = &sp->attrs[sp->nattrs++];
    a->key = key;
    return a;
}

void trace_span_str(struct trace_span *sp, const char *key, const char *v, size_t len)
{
    struct trace_attr *a = new_attr(sp, key);
    if (!a)
        return;
    if (len >= TRACE_STR_MAX)
        len = TRACE_STR_MAX - 1;
    a->is_int = false;
    memcpy(a->s, v, len);
    a->s[len] = '\0';
}

void trace_span_int(struct trace_span *sp, const char *key, int64_t v)
{
    struct trace_attr *a = new_attr(sp, key);
    if (!a)
        return;
    a->is_int = true;
    a->i = v;
}

void trace_span_status(struct trace_span *sp, enum trace_status status)
{
    if (sp->sampled)
        sp->status = (uint8_t)status;
}

void trace_span_end(struct tracer *t, struct trace_span *sp, uint64_t end_mono_ns)
{
    if (!t || !sp->sampled)
        return;
    sp->end_ns = to_wall(t, end_mono_ns);
    if (sp->end_ns < sp->start_ns)
        sp->end_ns = sp->start_ns;
    if (t->head - t->tail == t->ring_cap) {
        t->stats.dropped++;
        return;
    }
    /* Copy what is used: the attributes past nattrs are stale bytes. */
    struct trace_span *dst = &t->ring[t->head & (t->ring_cap - 1)];
    memcpy(dst, sp, offsetof(struct trace_span, attrs) + sp->nattrs * sizeof(sp->attrs[0]));
    dst->nattrs = sp->nattrs;
    t->head++;
    t->stats.recorded++;
    if (t->notify && t->head - t->tail == t->notify_at)
        t->notify(t->notify_arg);
}

void trace_set_notify(struct tracer *t, unsigned at, trace_notify_cb *cb, void *arg)
{
    t->notify_at = at;
    t->notify = at ? cb : NULL;
    t->notify_arg = arg;
}

size_t trace_pending(const struct tracer *t)
{
    return (size_t)(t->head - t->tail);
}

const struct trace_span *trace_peek(const struct tracer *t, size_t i)
{
    assert(i < trace_pending(t));
    return &t->ring[(t->tail + i) & (t->ring_cap - 1)];
}

void trace_consume(struct tracer *t, size_t n)
{
    assert(n <= trace_pending(t));
    t->tail += n;
}

void trace_get_stats(const struct tracer *t, struct trace_stats *out)
{
    *out = t->stats;
    out->pending = trace_pending(t);
    out->ring_cap = t->ring_cap;
}
