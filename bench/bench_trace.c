/* bench_trace: the CPU of tracing per request, measured in isolation (the
 * whole-node figure in docs/BENCHMARKS.md, "Cost of tracing", is noisier than
 * the effect): a request with tracing off (the NULL tracer), an unsampled span
 * (ratio 0), a sampled span with two attributes into the ring, and the OTLP
 * JSON encoding of one span. Prints one JSON line, ns per operation, the best
 * of --reps repetitions of --n operations each.
 *
 * usage: bench_trace [--n 1000000] [--reps 5] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/otlp.h"
#include "lib/trace.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct tracer *tracer(const char *sampler, const char *arg)
{
    struct trace_config c = {.ring_cap = 4096};
    if (trace_sampler_parse(sampler, arg, &c.sampler) != 0)
        abort();
    struct tracer *t = trace_new(&c);
    if (!t)
        abort();
    return t;
}

/* ns per request: start, two attributes, end; the ring drained every 1024. */
static double spans(struct tracer *t, long n)
{
    struct trace_span sp;
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        trace_span_start(t, &sp, "POST /payments", TRACE_KIND_SERVER, NULL, 0);
        trace_span_str(&sp, "paynode.result", "accepted", 8);
        trace_span_int(&sp, "i", i);
        trace_span_end(t, &sp, 0);
        if (t && (i & 1023) == 1023)
            trace_consume(t, trace_pending(t));
    }
    return (double)(now_ns() - t0) / (double)n;
}

/* ns per span encoded, in batches of 512. */
static double encode(long n)
{
    struct tracer *t = tracer("always_on", NULL);
    struct trace_span sp;
    trace_span_start(t, &sp, "POST /payments", TRACE_KIND_SERVER, NULL, 0);
    trace_span_str(&sp, "paynode.result", "accepted", 8);
    trace_span_end(t, &sp, 0);
    static char mem[1 << 20];
    struct buf b;
    buf_init(&b, mem, sizeof(mem));
    struct otlp_resource res = {.service_name = "paynode", .instance_id = "1"};
    size_t bytes = 0;
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i += 512) {
        struct otlp_enc e;
        buf_reset(&b);
        otlp_enc_begin(&e, &b, &res);
        for (int k = 0; k < 512; k++)
            otlp_enc_span(&e, trace_peek(t, 0));
        if (otlp_enc_end(&e) != 0)
            abort();
        bytes = b.len;
    }
    double ns = (double)(now_ns() - t0) / (double)n;
    fprintf(stderr, "bench_trace: a batch of 512 spans is %zu bytes\n", bytes);
    trace_free(t);
    return ns;
}

int main(int argc, char **argv)
{
    long n = 1000000;
    int reps = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--n") == 0)
            n = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[i + 1]);
    }
    struct tracer *never = tracer("traceidratio", "0"), *always = tracer("always_on", NULL);
    double best[4] = {1e18, 1e18, 1e18, 1e18};
    for (int r = 0; r < reps; r++) {
        double v[4] = {spans(NULL, n), spans(never, n), spans(always, n), encode(n)};
        for (int k = 0; k < 4; k++)
            if (v[k] < best[k])
                best[k] = v[k];
    }
    printf("{\"n\":%ld,\"reps\":%d,\"offNs\":%.1f,\"unsampledNs\":%.1f,\"sampledNs\":%.1f,"
           "\"encodeNsPerSpan\":%.1f}\n",
           n, reps, best[0], best[1], best[2], best[3]);
    trace_free(never);
    trace_free(always);
    return 0;
}
