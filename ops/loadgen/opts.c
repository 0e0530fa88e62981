/* Flag parsing for the load generator. Validates ranges and combinations; knows
 * nothing about running. */
#include "opts.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "score.h"

static const char usage[] =
    "usage: loadgen [options]\n"
    "  --target URL            service under test (default http://127.0.0.1:9999)\n"
    "  --default-url URL       default processor (default http://127.0.0.1:8001)\n"
    "  --fallback-url URL      fallback processor (default http://127.0.0.1:8002)\n"
    "  --schedule NAME         preview | final (default preview)\n"
    "  --stages LIST           custom stages 'AT:DD/DF,FD/FF;...' (s, ms, y|n)\n"
    "  --duration S            run length; compresses the schedule proportionally\n"
    "  --users N               virtual users at the end of the ramp\n"
    "  --amount X              payment amount (e.g. 19.90)\n"
    "  --rate R                fixed-rate mode: R payments/s (needs --duration)\n"
    "  --score                 fixed-rate mode: also fetch summaries and score\n"
    "  --token T               X-Rinha-Token (default 123)\n"
    "  --accepted-file PATH    write every 2xx correlationId, one per line\n"
    "  --report PATH           also write the JSON report to PATH\n"
    "  --html PATH             also write an HTML report to PATH: one self-contained\n"
    "                          page of charts (latency over the processor stages,\n"
    "                          throughput, processor share, audits, score)\n"
    "  --drain-s S             wait before the final summaries (default 3)\n"
    "  --audit-interval-s S    seconds between audits, 0 = none (default 10)\n"
    "  --timeout-ms MS         per-request timeout (default 1500)\n"
    "  --no-schedule           do not change the processors' delay/failure\n"
    "  --no-purge              do not purge processors or target at setup\n"
    "  --rt-priority N         run the generator SCHED_FIFO at priority N (1..99) so\n"
    "                          a busy machine does not delay its loop (needs root)\n"
    "  --with-requested-at     add requestedAt to each payment (for a processor\n"
    "                          simulator as target; the challenge does not send it)\n"
    "  --help\n"
    "On a terminal, a progress line on stderr shows each second: elapsed/total, VUs\n"
    "(or payments in flight), 2xx payments/s, that second's p99, errors, the stage.\n";

const char *lg_opts_usage(void)
{
    return usage;
}

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (cap > 0)
        vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* Non-negative decimal seconds (ms precision) to ms. */
static int parse_ms(const char *v, uint32_t max_ms, uint32_t *out)
{
    __int128 d;
    if (lg_dec_parse(v, strlen(v), &d) != 0 || d < 0)
        return -EINVAL;
    __int128 unit = LG_DEC_ONE / 1000;
    if (d % unit != 0 || d / unit > max_ms)
        return -EINVAL;
    *out = (uint32_t)(d / unit);
    return 0;
}

static int parse_u32(const char *v, uint32_t min, uint32_t max, uint32_t *out)
{
    __int128 d;
    if (lg_dec_parse(v, strlen(v), &d) != 0 || d % LG_DEC_ONE != 0)
        return -EINVAL;
    d /= LG_DEC_ONE;
    if (d < min || d > max)
        return -EINVAL;
    *out = (uint32_t)d;
    return 0;
}

static bool valid_url(const char *u)
{
    size_t n = strlen(u);
    return strncmp(u, "http://", 7) == 0 && n > 7 && n < LG_URL_MAX;
}

int lg_opts_parse(int argc, char **argv, struct lg_opts *o, char *err, size_t errcap)
{
    memset(o, 0, sizeof(*o));
    o->target = "http://127.0.0.1:9999";
    o->proc_url[LG_PROC_DEFAULT] = "http://127.0.0.1:8001";
    o->proc_url[LG_PROC_FALLBACK] = "http://127.0.0.1:8002";
    o->token = "123";
    o->timeout_ms = 1500;
    o->drain_ms = 3000;
    o->audit_interval_ms = 10000;
    const char *schedule = "preview", *stages = NULL;
    uint32_t duration_ms = 0, users = 0;
    int64_t amount_cents = 0;
    if (err != NULL && errcap > 0)
        err[0] = '\0';

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char name[40];
        const char *val = NULL;
        if (strncmp(a, "--", 2) != 0)
            return fail(err, errcap, "unexpected argument '%s'", a);
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        if (nlen >= sizeof(name))
            return fail(err, errcap, "unknown flag '%s'", a);
        memcpy(name, a, nlen);
        name[nlen] = '\0';
        if (eq)
            val = eq + 1;

        /* flags without a value */
        bool *flag = NULL;
        if (strcmp(name, "--no-schedule") == 0)
            flag = &o->no_schedule;
        else if (strcmp(name, "--no-purge") == 0)
            flag = &o->no_purge;
        else if (strcmp(name, "--score") == 0)
            flag = &o->score;
        else if (strcmp(name, "--with-requested-at") == 0)
            flag = &o->with_requested_at;
        else if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
            flag = &o->help;
        if (flag != NULL) {
            if (val != NULL)
                return fail(err, errcap, "%s takes no value", name);
            *flag = true;
            continue;
        }
        if (val == NULL) {
            if (i + 1 >= argc)
                return fail(err, errcap, "%s needs a value", name);
            val = argv[++i];
        }

        if (strcmp(name, "--target") == 0 || strcmp(name, "--default-url") == 0 ||
            strcmp(name, "--fallback-url") == 0) {
            if (!valid_url(val))
                return fail(err, errcap, "%s: want http://host:port, got '%s'", name, val);
            if (name[2] == 't')
                o->target = val;
            else if (name[2] == 'd')
                o->proc_url[LG_PROC_DEFAULT] = val;
            else
                o->proc_url[LG_PROC_FALLBACK] = val;
        } else if (strcmp(name, "--schedule") == 0) {
            schedule = val;
        } else if (strcmp(name, "--stages") == 0) {
            stages = val;
        } else if (strcmp(name, "--duration") == 0) {
            if (parse_ms(val, 86400000, &duration_ms) != 0 || duration_ms == 0)
                return fail(err, errcap, "--duration: want seconds > 0, got '%s'", val);
        } else if (strcmp(name, "--users") == 0) {
            if (parse_u32(val, 1, 100000, &users) != 0)
                return fail(err, errcap, "--users: want 1..100000, got '%s'", val);
        } else if (strcmp(name, "--amount") == 0) {
            __int128 d;
            if (lg_dec_parse(val, strlen(val), &d) != 0 || d <= 0 || d % LG_DEC_CENT != 0 ||
                d / LG_DEC_CENT > INT64_C(100000000000))
                return fail(err, errcap, "--amount: want a positive amount in cents, got '%s'",
                            val);
            amount_cents = (int64_t)(d / LG_DEC_CENT);
        } else if (strcmp(name, "--rate") == 0) {
            if (parse_u32(val, 1, 1000000, &o->rate) != 0)
                return fail(err, errcap, "--rate: want 1..1000000 per second, got '%s'", val);
        } else if (strcmp(name, "--token") == 0) {
            if (*val == '\0' || strlen(val) >= LG_TOKEN_MAX || strpbrk(val, "\"\\\r\n") != NULL)
                return fail(err, errcap, "--token: bad token");
            o->token = val;
        } else if (strcmp(name, "--accepted-file") == 0) {
            o->accepted_file = val;
        } else if (strcmp(name, "--report") == 0) {
            o->report_path = val;
        } else if (strcmp(name, "--html") == 0) {
            o->html_path = val;
        } else if (strcmp(name, "--drain-s") == 0) {
            if (parse_ms(val, 3600000, &o->drain_ms) != 0)
                return fail(err, errcap, "--drain-s: want seconds >= 0, got '%s'", val);
        } else if (strcmp(name, "--audit-interval-s") == 0) {
            if (parse_ms(val, 3600000, &o->audit_interval_ms) != 0)
                return fail(err, errcap, "--audit-interval-s: want seconds >= 0, got '%s'", val);
        } else if (strcmp(name, "--rt-priority") == 0) {
            if (parse_u32(val, 0, 99, &o->rt_priority) != 0)
                return fail(err, errcap, "--rt-priority: want 0..99, got '%s'", val);
        } else if (strcmp(name, "--timeout-ms") == 0) {
            if (parse_u32(val, 1, 600000, &o->timeout_ms) != 0)
                return fail(err, errcap, "--timeout-ms: want 1..600000, got '%s'", val);
        } else {
            return fail(err, errcap, "unknown flag '%s'", name);
        }
    }
    if (o->help)
        return 0;

    if (lg_schedule_builtin(schedule, &o->sched) != 0)
        return fail(err, errcap, "--schedule: want preview or final, got '%s'", schedule);
    if (stages != NULL && lg_schedule_parse_stages(stages, &o->sched) != 0)
        return fail(err, errcap, "--stages: bad stage list '%s'", stages);
    if (o->rate > 0 && duration_ms == 0)
        return fail(err, errcap, "--rate needs --duration");
    if (o->rate == 0 && o->score)
        return fail(err, errcap,
                    "--score only applies to --rate mode (the schedule always scores)");
    if (duration_ms != 0)
        lg_schedule_compress(&o->sched, duration_ms);
    if (users != 0)
        o->sched.users = users;
    if (amount_cents != 0)
        o->sched.amount_cents = amount_cents;
    if (o->rate > 0)
        o->sched.nstages = 0; /* fixed-rate mode never changes the processors */
    return 0;
}
