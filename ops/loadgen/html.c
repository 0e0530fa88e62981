/* The HTML report: a page of inline SVG charts computed here from the results.
 * Layout is fixed-size SVG (1060 px wide, scaled down by CSS on narrow
 * screens); coordinates are printed with one decimal. No libm: axis steps are
 * found by repeated multiplication. */
#include "html.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/clock.h"
#include "sbuf.h"
#include "score.h"

#define SVG_W 1060.0
#define PLOT_L 72.0          /* left margin: y labels and title */
#define PLOT_R 72.0          /* right margin: the right axis of the throughput chart */
#define MIN_RATE_SPAN_MS 200 /* shorter buckets give no meaningful per-second rate */

/* Colours: one palette for the page. */
#define C_P50 "#2b6cb0"
#define C_P99 "#dd6b20"
#define C_OK "#2b6cb0"
#define C_ERR "#e53e3e"
#define C_VUS "#718096"
#define C_DEFAULT "#3182ce"
#define C_FALLBACK "#ed8936"
#define C_GOOD "#38a169"
#define C_BAD "#e53e3e"
#define C_GRID "#e2e8f0"
#define C_AXIS "#4a5568"

struct plot {
    double x0, y0, w, h; /* plot area in SVG px; y0 is the top */
    double t1_s;         /* x axis: 0 .. t1_s seconds */
    double y1;           /* left axis: 0 .. y1 */
    double y1r;          /* right axis: 0 .. y1r; 0 = none */
    double ystep;        /* left axis tick step; 0 = choose */
};

static double px(const struct plot *p, double t_s)
{
    return p->x0 + p->w * t_s / p->t1_s;
}

static double py(const struct plot *p, double v)
{
    if (v > p->y1)
        v = p->y1;
    return p->y0 + p->h - p->h * v / p->y1;
}

static double pyr(const struct plot *p, double v)
{
    if (v > p->y1r)
        v = p->y1r;
    return p->y0 + p->h - p->h * v / p->y1r;
}

/* A 1-2-5 step giving about nticks intervals over [0, span]. */
static double nice_step(double span, int nticks)
{
    if (!(span > 0))
        span = 1;
    double raw = span / nticks, mag = 1;
    while (mag * 10 <= raw)
        mag *= 10;
    while (mag > raw)
        mag /= 10;
    double f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

/* The smallest multiple of step >= v (at least one step). */
static double round_up(double v, double step)
{
    double k = (double)(long long)(v / step);
    if (k * step < v - step * 1e-9)
        k += 1;
    return k < 1 ? step : k * step;
}

static int decimals_for(double step)
{
    return step >= 1 ? 0 : step >= 0.1 ? 1 : step >= 0.01 ? 2 : 3;
}

/* Money (LG_DEC units) rounded half away from zero to cents, as text. */
static void money_text(__int128 v, char *buf)
{
    __int128 half = LG_DEC_CENT / 2;
    __int128 c = (v >= 0 ? v + half : v - half) / LG_DEC_CENT;
    lg_dec_format(c * LG_DEC_CENT, 2, buf);
}

static double dec_double(__int128 v)
{
    return (double)v / (double)LG_DEC_ONE;
}

/* "4.21" ms from microseconds, 2 decimals below 100 ms, none above. */
static void ms_text(uint64_t us, char *buf, size_t cap)
{
    uint64_t cms = (us + 5) / 10;
    if (us < 100000)
        snprintf(buf, cap, "%" PRIu64 ".%02" PRIu64, cms / 100, cms % 100);
    else
        snprintf(buf, cap, "%" PRIu64, (us + 500) / 1000);
}

/* ---- SVG pieces ---- */

static void svg_open(struct lg_sb *b, const char *id, double height, const char *label)
{
    lg_sb_printf(b,
                 "<svg class=\"chart\" id=\"%s\" viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" "
                 "height=\"%.0f\" role=\"img\" aria-label=\"",
                 id, SVG_W, height, SVG_W, height);
    lg_sb_html(b, label);
    lg_sb_puts(b, "\">\n");
}

static void text_at(struct lg_sb *b, double x, double y, const char *anchor, const char *cls,
                    const char *s)
{
    lg_sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s%s%s>", x, y, anchor,
                 cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
    lg_sb_html(b, s);
    lg_sb_puts(b, "</text>\n");
}

/* Horizontal grid lines and labels of the left (or right) axis, and its
 * rotated title. */
static void axis_y(struct lg_sb *b, const struct plot *p, bool right, const char *title)
{
    double top = right ? p->y1r : p->y1;
    double step = !right && p->ystep > 0 ? p->ystep : nice_step(top, 4);
    int dec = decimals_for(step);
    for (double v = 0; v <= top + step * 1e-6; v += step) {
        double y = right ? pyr(p, v) : py(p, v);
        if (!right)
            lg_sb_printf(b,
                         "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" C_GRID
                         "\"/>\n",
                         p->x0, y, p->x0 + p->w, y);
        char t[32];
        snprintf(t, sizeof(t), "%.*f", dec, v);
        if (right)
            text_at(b, p->x0 + p->w + 8, y + 4, "start", NULL, t);
        else
            text_at(b, p->x0 - 8, y + 4, "end", NULL, t);
    }
    double cx = right ? p->x0 + p->w + 56 : 18, cy = p->y0 + p->h / 2;
    lg_sb_printf(b,
                 "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" text-anchor=\"middle\" "
                 "class=\"axis-title\">",
                 cx, cy);
    lg_sb_html(b, title);
    lg_sb_puts(b, "</text>\n");
}

/* The time axis: frame, ticks every nice step, title. */
static void axis_t(struct lg_sb *b, const struct plot *p)
{
    double step = nice_step(p->t1_s, 10);
    int dec = decimals_for(step);
    double base = p->y0 + p->h;
    for (double t = 0; t <= p->t1_s + step * 1e-6; t += step) {
        double x = px(p, t);
        lg_sb_printf(
            b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" C_AXIS "\"/>\n", x,
            base, x, base + 5);
        char s[32];
        snprintf(s, sizeof(s), "%.*f", dec, t);
        text_at(b, x, base + 18, "middle", NULL, s);
    }
    lg_sb_printf(b,
                 "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                 "stroke=\"" C_AXIS "\"/>\n",
                 p->x0, p->y0, p->w, p->h);
    text_at(b, p->x0 + p->w / 2, base + 36, "middle", "axis-title", "time since start (s)");
}

/* One legend entry at (x, y): a short line, a dashed line or a square. Returns
 * the x of the next entry. */
static double legend(struct lg_sb *b, double x, double y, const char *color, char kind,
                     const char *label)
{
    if (kind == 'l' || kind == 'd')
        lg_sb_printf(b,
                     "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                     "stroke-width=\"2.5\"%s/>\n",
                     x, y - 4, x + 18, y - 4, color,
                     kind == 'd' ? " stroke-dasharray=\"5 3\"" : "");
    else if (kind == 'c')
        lg_sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\"/>\n", x + 9, y - 4,
                     color);
    else
        lg_sb_printf(b,
                     "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\" "
                     "stroke=\"#a0aec0\" stroke-width=\"0.5\"/>\n",
                     x + 3, y - 10, color);
    text_at(b, x + 24, y, "start", NULL, label);
    return x + 24 + 6.6 * (double)strlen(label) + 18;
}

static void no_data(struct lg_sb *b, const struct plot *p, const char *why)
{
    text_at(b, p->x0 + p->w / 2, p->y0 + p->h / 2, "middle", "nodata", why);
}

/* ---- what the run knows ---- */

struct view {
    const struct lg_opts *o;
    const struct lg_results *r;
    const struct lg_series *s;
    double t1_s;      /* time axis length */
    unsigned nstages; /* stages started by the run */
};

static bool sec_has_rate(const struct lg_sec *sec)
{
    return sec->end_ms >= sec->start_ms + MIN_RATE_SPAN_MS;
}

static double sec_mid_s(const struct lg_sec *sec)
{
    return (sec->start_ms + sec->end_ms) / 2000.0;
}

static double sec_rate(const struct lg_sec *sec, uint32_t n)
{
    return n * 1000.0 / (double)(sec->end_ms - sec->start_ms);
}

/* Processor state colours: strong for the strips, light for the bands. */
static const char *state_color(uint32_t delay_ms, bool failing, bool strong)
{
    if (failing)
        return strong ? "#fc8181" : "#fed7d7";
    if (delay_ms >= 1000)
        return strong ? "#f6ad55" : "#feebc8";
    if (delay_ms > 0)
        return strong ? "#f6e05e" : "#fefcbf";
    return strong ? "#9ae6b4" : "#f0fff4";
}

static double stage_end_s(const struct view *v, unsigned i)
{
    const struct lg_schedule *s = &v->o->sched;
    uint32_t end = i + 1 < v->nstages ? s->stages[i + 1].at_ms : s->duration_ms;
    return end / 1000.0;
}

/* Dashed lines at each stage's start, so every time chart lines up with the
 * latency chart's bands. */
static void stage_lines(struct lg_sb *b, const struct view *v, const struct plot *p)
{
    for (unsigned i = 0; i < v->nstages; i++) {
        double x = px(p, v->o->sched.stages[i].at_ms / 1000.0);
        lg_sb_printf(b,
                     "<line class=\"stage-line\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                     "stroke=\"#a0aec0\" stroke-dasharray=\"3 3\"/>\n",
                     x, p->y0, x, p->y0 + p->h);
    }
}

static void end_of_load(struct lg_sb *b, const struct view *v, const struct plot *p)
{
    /* only where the wind-down after the load shows on the axis */
    if (v->r->ran_ms == 0 || v->r->ran_ms / 1000.0 >= p->t1_s * 0.99)
        return;
    double x = px(p, v->r->ran_ms / 1000.0);
    lg_sb_printf(b,
                 "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" C_AXIS
                 "\" stroke-dasharray=\"6 3\"/>\n",
                 x, p->y0, x, p->y0 + p->h);
    text_at(b, x - 4, p->y0 + 12, "end", "note", "end of load");
}

/* ---- the charts ---- */

static void chart_latency(struct lg_sb *b, const struct view *v)
{
    const struct lg_series *s = v->s;
    double ymax = 0;
    for (unsigned i = 0; i < s->n; i++)
        if (s->sec[i].ok && s->sec[i].p99_us / 1000.0 > ymax)
            ymax = s->sec[i].p99_us / 1000.0;
    struct plot p = {
        .x0 = PLOT_L, .y0 = 70, .w = SVG_W - PLOT_L - PLOT_R, .h = 240, .t1_s = v->t1_s};
    p.y1 = round_up(ymax * 1.08, nice_step(ymax * 1.08, 4));
    if (p.y1 <= 0)
        p.y1 = 1;
    double height = p.y0 + p.h + 46;
    svg_open(b, "latency", height, "latency p50 and p99 per second, with the processor stages");

    /* stage bands (the default's state) and the two processor strips */
    const struct lg_schedule *sc = &v->o->sched;
    static const char *const lane_name[LG_PROC_COUNT] = {"default", "fallback"};
    for (int q = 0; q < LG_PROC_COUNT; q++)
        text_at(b, p.x0 - 8, p.y0 - 34 + q * 16 + 10, "end", "lane-label", lane_name[q]);
    for (unsigned i = 0; i < v->nstages; i++) {
        const struct lg_stage *st = &sc->stages[i];
        double xa = px(&p, st->at_ms / 1000.0), xb = px(&p, stage_end_s(v, i));
        if (xb > p.x0 + p.w)
            xb = p.x0 + p.w;
        lg_sb_printf(b,
                     "<rect class=\"band\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                     "fill=\"%s\"/>\n",
                     xa, p.y0, xb - xa, p.h, state_color(st->delay_ms[0], st->failing[0], false));
        for (int q = 0; q < LG_PROC_COUNT; q++) {
            double y = p.y0 - 34 + q * 16;
            lg_sb_printf(b,
                         "<rect class=\"lane\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                         "height=\"13\" fill=\"%s\" stroke=\"#fff\"><title>stage %u at %.1f s: "
                         "%s delay %" PRIu32 " ms%s</title></rect>\n",
                         xa, y, xb - xa, state_color(st->delay_ms[q], st->failing[q], true), i + 1,
                         st->at_ms / 1000.0, lane_name[q], st->delay_ms[q],
                         st->failing[q] ? ", failing" : "");
            char t[40];
            snprintf(t, sizeof(t), "%" PRIu32 " ms%s", st->delay_ms[q],
                     st->failing[q] ? " fail" : "");
            if (xb - xa > 6.2 * (double)strlen(t) + 6)
                text_at(b, (xa + xb) / 2, y + 10, "middle", "lane-text", t);
        }
    }
    axis_y(b, &p, false, "latency (ms)");
    stage_lines(b, v, &p);

    /* p50 and p99: one path each, broken where a second had no 2xx */
    unsigned points = 0;
    for (int k = 0; k < 2; k++) {
        lg_sb_printf(b,
                     "<path class=\"line %s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
                     "stroke-linejoin=\"round\" d=\"",
                     k ? "p99" : "p50", k ? C_P99 : C_P50);
        bool pen = false;
        for (unsigned i = 0; i < s->n; i++) {
            const struct lg_sec *sec = &s->sec[i];
            if (sec->ok == 0 || sec->after) { /* the wind-down: a dot only, below */
                pen = false;
                continue;
            }
            double ms = (k ? sec->p99_us : sec->p50_us) / 1000.0;
            lg_sb_printf(b, "%s%.1f %.1f ", pen ? "L" : "M", px(&p, sec_mid_s(sec)), py(&p, ms));
            pen = true;
            points += k == 0;
        }
        lg_sb_puts(b, "\"/>\n");
    }
    /* a dot per second with its figures as a tooltip, when there are few */
    for (unsigned i = 0; i < s->n; i++) {
        const struct lg_sec *sec = &s->sec[i];
        if (sec->ok == 0 || (s->n > 120 && !sec->after))
            continue;
        char p50[24], p99[24], mx[24];
        ms_text(sec->p50_us, p50, sizeof(p50));
        ms_text(sec->p99_us, p99, sizeof(p99));
        ms_text(sec->max_us, mx, sizeof(mx));
        lg_sb_printf(b,
                     "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"" C_P99
                     "\"><title>%.1f-%.1f s%s: p50 %s ms, p99 %s ms, max %s ms (%" PRIu32
                     " payments)</title></circle>\n",
                     px(&p, sec_mid_s(sec)), py(&p, sec->p99_us / 1000.0), sec->start_ms / 1000.0,
                     sec->end_ms / 1000.0, sec->after ? " (after the load)" : "", p50, p99, mx,
                     sec->ok);
    }
    if (points == 0)
        no_data(b, &p, "no 2xx payment in this run");
    end_of_load(b, v, &p);
    axis_t(b, &p);
    double x = p.x0;
    x = legend(b, x, 16, C_P50, 'l', "p50");
    x = legend(b, x, 16, C_P99, 'l', "p99");
    if (v->nstages > 0) {
        x = legend(b, x + 12, 16, state_color(0, false, true), 's', "delay 0");
        x = legend(b, x, 16, state_color(1, false, true), 's', "slow");
        x = legend(b, x, 16, state_color(1000, false, true), 's', "slow >= 1 s");
        legend(b, x, 16, state_color(0, true, true), 's', "failing");
    }
    lg_sb_puts(b, "</svg>\n");
}

static void chart_throughput(struct lg_sb *b, const struct view *v)
{
    const struct lg_series *s = v->s;
    double ymax = 0, vmax = 0;
    for (unsigned i = 0; i < s->n; i++) {
        const struct lg_sec *sec = &s->sec[i];
        if (sec->vus > vmax)
            vmax = sec->vus;
        if (!sec_has_rate(sec))
            continue;
        double ok = sec_rate(sec, sec->ok), bad = sec_rate(sec, sec->failed);
        if (ok > ymax)
            ymax = ok;
        if (bad > ymax)
            ymax = bad;
    }
    struct plot p = {
        .x0 = PLOT_L, .y0 = 30, .w = SVG_W - PLOT_L - PLOT_R, .h = 200, .t1_s = v->t1_s};
    p.y1 = round_up(ymax * 1.08, nice_step(ymax * 1.08, 4));
    p.y1r = round_up(vmax * 1.08, nice_step(vmax * 1.08, 4));
    double height = p.y0 + p.h + 46;
    svg_open(b, "throughput", height, "payments per second and errors per second");
    axis_y(b, &p, false, "per second");
    axis_y(b, &p, true, v->o->rate ? "in flight" : "virtual users");
    stage_lines(b, v, &p);

    /* errors: one bar per second */
    for (unsigned i = 0; i < s->n; i++) {
        const struct lg_sec *sec = &s->sec[i];
        if (!sec_has_rate(sec) || sec->failed == 0)
            continue;
        double xa = px(&p, sec->start_ms / 1000.0), xb = px(&p, sec->end_ms / 1000.0);
        double y = py(&p, sec_rate(sec, sec->failed));
        lg_sb_printf(b,
                     "<rect class=\"err\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                     "fill=\"" C_ERR "\" opacity=\"0.8\"><title>%.1f-%.1f s: %" PRIu32
                     " failed</title></rect>\n",
                     xa + 1, y, xb - xa > 3 ? xb - xa - 2 : 1, p.y0 + p.h - y,
                     sec->start_ms / 1000.0, sec->end_ms / 1000.0, sec->failed);
    }
    /* 2xx/s as a line over a light area */
    struct lg_sb line;
    lg_sb_init(&line);
    double first_x = 0, last_x = 0;
    unsigned points = 0;
    for (unsigned i = 0; i < s->n; i++) {
        const struct lg_sec *sec = &s->sec[i];
        if (!sec_has_rate(sec))
            continue;
        double x = px(&p, sec_mid_s(sec));
        lg_sb_printf(&line, "%s%.1f %.1f ", points ? "L" : "M", x, py(&p, sec_rate(sec, sec->ok)));
        if (points++ == 0)
            first_x = x;
        last_x = x;
    }
    if (points > 0 && line.buf != NULL) {
        lg_sb_printf(b,
                     "<path class=\"area\" fill=\"" C_OK "\" opacity=\"0.12\" d=\"%sL%.1f %.1f "
                     "L%.1f %.1f Z\"/>\n",
                     line.buf, last_x, p.y0 + p.h, first_x, p.y0 + p.h);
        lg_sb_printf(b,
                     "<path class=\"line ok\" fill=\"none\" stroke=\"" C_OK
                     "\" stroke-width=\"2\" stroke-linejoin=\"round\" d=\"%s\"/>\n",
                     line.buf);
    }
    b->oom |= line.oom;
    lg_sb_release(&line);
    /* users or in flight, on the right axis */
    lg_sb_puts(b, "<path class=\"line vus\" fill=\"none\" stroke=\"" C_VUS
                  "\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\" d=\"");
    bool pen = false;
    for (unsigned i = 0; i < s->n; i++) {
        const struct lg_sec *sec = &s->sec[i];
        if (sec->after)
            continue;
        lg_sb_printf(b, "%s%.1f %.1f ", pen ? "L" : "M", px(&p, sec->end_ms / 1000.0),
                     pyr(&p, sec->vus));
        pen = true;
    }
    lg_sb_puts(b, "\"/>\n");
    if (points == 0)
        no_data(b, &p, "no full second of load in this run");
    end_of_load(b, v, &p);
    axis_t(b, &p);
    double x = p.x0;
    x = legend(b, x, 16, C_OK, 'l', "2xx payments/s");
    x = legend(b, x, 16, C_ERR, 's', "failed payments/s");
    legend(b, x, 16, C_VUS, 'd',
           v->o->rate ? "payments in flight (right axis)" : "virtual users (right axis)");
    lg_sb_puts(b, "</svg>\n");
}

/* Default vs fallback share per audit window, from the processors' own admin
 * summaries: loadgen never sees which processor took a payment. */
static void chart_share(struct lg_sb *b, const struct view *v)
{
    const struct lg_results *r = v->r;
    struct plot p = {
        .x0 = PLOT_L, .y0 = 30, .w = SVG_W - PLOT_L - PLOT_R, .h = 150, .t1_s = v->t1_s, .y1 = 100};
    svg_open(b, "share", p.y0 + p.h + 46, "default versus fallback share per audit window");
    axis_y(b, &p, false, "share (%)");
    stage_lines(b, v, &p);
    double bw = v->o->audit_interval_ms ? px(&p, v->o->audit_interval_ms / 1000.0) - p.x0 : 20;
    bw *= 0.6;
    if (bw > 28)
        bw = 28;
    if (bw < 4)
        bw = 4;
    unsigned bars = 0;
    for (unsigned i = 0; i < r->naudits; i++) {
        const struct lg_audit *a = &r->audits[i];
        int64_t d = a->procs[0], f = a->procs[1];
        if (!a->ok || d < 0 || f < 0 || d + f == 0)
            continue;
        double share_d = 100.0 * (double)d / (double)(d + f);
        double x = px(&p, a->at_ms / 1000.0) - bw / 2;
        if (x + bw > p.x0 + p.w)
            x = p.x0 + p.w - bw; /* an audit at the very end stays inside the frame */
        double yd = py(&p, share_d);
        lg_sb_printf(b,
                     "<g class=\"share\"><title>audit at %.1f s, processors' window [t-15 s, t-2 "
                     "s]: default %" PRId64 ", fallback %" PRId64 " (%.1f%% default)</title>\n",
                     a->at_ms / 1000.0, d, f, share_d);
        lg_sb_printf(b,
                     "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"" C_FALLBACK
                     "\"/>\n",
                     x, p.y0, bw, yd - p.y0);
        lg_sb_printf(b,
                     "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"" C_DEFAULT
                     "\"/></g>\n",
                     x, yd, bw, p.y0 + p.h - yd);
        bars++;
    }
    if (bars == 0)
        no_data(b, &p,
                r->naudits ? "no audit got the processors' counts (or they recorded nothing)"
                           : "no audits in this run (--audit-interval-s 0, or --rate without "
                             "--score)");
    end_of_load(b, v, &p);
    axis_t(b, &p);
    double x = p.x0;
    x = legend(b, x, 16, C_DEFAULT, 's', "default");
    legend(b, x, 16, C_FALLBACK, 's', "fallback");
    lg_sb_puts(b, "</svg>\n");
}

static void chart_audits(struct lg_sb *b, const struct view *v)
{
    const struct lg_results *r = v->r;
    uint64_t imax = 0;
    for (unsigned i = 0; i < r->naudits; i++)
        if (r->audits[i].ok && r->audits[i].inconsistencies > imax)
            imax = r->audits[i].inconsistencies;
    struct plot p = {
        .x0 = PLOT_L, .y0 = 30, .w = SVG_W - PLOT_L - PLOT_R, .h = 110, .t1_s = v->t1_s};
    p.ystep = nice_step((double)imax, 3);
    if (p.ystep < 1)
        p.ystep = 1; /* whole payments */
    p.y1 = round_up((double)imax, p.ystep);
    svg_open(b, "audits", p.y0 + p.h + 46, "audits: inconsistencies found by each check");
    axis_y(b, &p, false, "inconsistencies");
    stage_lines(b, v, &p);
    for (unsigned i = 0; i < r->naudits; i++) {
        const struct lg_audit *a = &r->audits[i];
        double x = px(&p, a->at_ms / 1000.0);
        if (a->ok) {
            double y = py(&p, (double)a->inconsistencies);
            lg_sb_printf(b,
                         "<circle class=\"audit %s\" cx=\"%.1f\" cy=\"%.1f\" r=\"6\" "
                         "fill=\"%s\" stroke=\"#fff\"><title>audit at %.1f s: target default "
                         "%" PRId64 ", fallback %" PRId64 "; processors default %" PRId64
                         ", fallback %" PRId64 "; %" PRIu64 " inconsistent</title></circle>\n",
                         a->inconsistencies ? "bad" : "good", x, y,
                         a->inconsistencies ? C_BAD : C_GOOD, a->at_ms / 1000.0, a->ours[0],
                         a->ours[1], a->procs[0], a->procs[1], a->inconsistencies);
        } else {
            double y = p.y0 + p.h - 8;
            lg_sb_printf(b, "<g class=\"audit failed\"><title>audit at %.1f s not done: ",
                         a->at_ms / 1000.0);
            lg_sb_html(b, a->error);
            lg_sb_printf(b,
                         "</title><circle cx=\"%.1f\" cy=\"%.1f\" r=\"6\" fill=\"#fff\" "
                         "stroke=\"#718096\" stroke-width=\"1.5\"/><path d=\"M%.1f %.1fL%.1f "
                         "%.1fM%.1f %.1fL%.1f %.1f\" stroke=\"#718096\" stroke-width=\"1.5\"/>"
                         "</g>\n",
                         x, y, x - 3.5, y - 3.5, x + 3.5, y + 3.5, x - 3.5, y + 3.5, x + 3.5,
                         y - 3.5);
        }
    }
    if (r->naudits == 0)
        no_data(b, &p, "no audits in this run (--audit-interval-s 0, or --rate without --score)");
    end_of_load(b, v, &p);
    axis_t(b, &p);
    double x = p.x0;
    x = legend(b, x, 16, C_GOOD, 'c', "consistent");
    x = legend(b, x, 16, C_BAD, 'c', "inconsistent");
    legend(b, x, 16, "#cbd5e0", 'c', "not done (summary unavailable)");
    lg_sb_puts(b, "</svg>\n");
}

struct score_row {
    const char *label;
    double from, to; /* bar extent in currency units */
    const char *color;
    char value[LG_DEC_FMT_MAX + 8];
};

static void chart_score(struct lg_sb *b, const struct view *v, int rc)
{
    const struct lg_results *r = v->r;
    const double left = 240, row_h = 30, top = 12;
    struct plot p = {
        .x0 = left, .y0 = top, .w = SVG_W - left - 200, .h = 5 * row_h, .t1_s = 1, .y1 = 1};
    svg_open(b, "score", top + p.h + 44, "score breakdown");
    if (rc != 0 || !r->have_final) {
        lg_sb_printf(b,
                     "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                     "fill=\"none\" stroke=\"" C_GRID "\"/>\n",
                     p.x0, p.y0, p.w, p.h);
        const char *why = v->o->rate && !v->o->score ? "no score: --rate without --score"
                          : r->final_error[0]        ? r->final_error
                                                     : "no score: the run did not complete";
        no_data(b, &p, why);
        lg_sb_puts(b, "</svg>\n");
        return;
    }
    const struct lg_score *sc = &r->score;
    __int128 base = sc->gross - sc->fees;
    __int128 bonus = lg_dec_mul(base, (__int128)sc->bonus_h * LG_DEC_CENT);
    __int128 fine = lg_dec_mul(base, (__int128)sc->fine_h * LG_DEC_CENT);
    double g = dec_double(sc->gross), f = dec_double(sc->fees), bs = dec_double(base);
    double bo = dec_double(bonus), fi = dec_double(fine), net = dec_double(sc->net);
    struct score_row rows[5] = {
        {"gross (processors' total)", 0, g, "#4a5568", ""},
        {"- fees", g - f, g, C_BAD, ""},
        {"", bs, bs + bo, C_GOOD, ""},
        {"", bs + bo - fi, bs + bo, C_BAD, ""},
        {"= net", 0, net, C_P50, ""},
    };
    char bonus_label[64], fine_label[64], t[LG_DEC_FMT_MAX];
    snprintf(bonus_label, sizeof(bonus_label), "+ p99 bonus %d%% (p99 %d.%02d ms)", sc->bonus_h,
             sc->p99_cms / 100, sc->p99_cms % 100);
    snprintf(fine_label, sizeof(fine_label), "- fine %d%%%s", sc->fine_h,
             sc->fine_h ? " (inconsistent audit)" : "");
    rows[2].label = bonus_label;
    rows[3].label = fine_label;
    __int128 vals[5] = {sc->gross, -sc->fees, bonus, -fine, sc->net};
    for (int i = 0; i < 5; i++) {
        money_text(vals[i], t);
        snprintf(rows[i].value, sizeof(rows[i].value), "%s", t);
    }
    double xmax = 0;
    for (int i = 0; i < 5; i++) {
        if (rows[i].to > xmax)
            xmax = rows[i].to;
        if (rows[i].from > xmax)
            xmax = rows[i].from;
    }
    double step = nice_step(xmax, 6);
    p.t1_s = round_up(xmax, step); /* the x axis here is money */
    int dec = decimals_for(step);
    for (double m = 0; m <= p.t1_s + step * 1e-6; m += step) {
        double x = px(&p, m);
        lg_sb_printf(
            b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"" C_GRID "\"/>\n", x,
            p.y0, x, p.y0 + p.h + 4);
        char s[40];
        snprintf(s, sizeof(s), "%.*f", dec, m);
        text_at(b, x, p.y0 + p.h + 18, "middle", NULL, s);
    }
    text_at(b, p.x0 + p.w / 2, p.y0 + p.h + 36, "middle", "axis-title",
            "amount (same currency as the payments)");
    for (int i = 0; i < 5; i++) {
        double y = p.y0 + i * row_h + 6, h = row_h - 12;
        double xa = px(&p, rows[i].from), xb = px(&p, rows[i].to);
        if (xb < xa) {
            double tmp = xa;
            xa = xb;
            xb = tmp;
        }
        text_at(b, p.x0 - 10, y + h / 2 + 4, "end", i == 4 ? "strong" : NULL, rows[i].label);
        lg_sb_printf(b,
                     "<rect class=\"score\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                     "fill=\"%s\"/>\n",
                     xa, y, xb - xa > 0.5 ? xb - xa : 0.5, h, rows[i].color);
        text_at(b, xb + 8, y + h / 2 + 4, "start", i == 4 ? "strong" : NULL, rows[i].value);
        if (i < 4) /* connector to the next row */
            lg_sb_printf(b,
                         "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#a0aec0\" "
                         "stroke-dasharray=\"2 2\"/>\n",
                         px(&p, i == 0   ? g
                                : i == 1 ? bs
                                : i == 2 ? bs + bo
                                         : bs + bo - fi),
                         y + h,
                         px(&p, i == 0   ? g
                                : i == 1 ? bs
                                : i == 2 ? bs + bo
                                         : bs + bo - fi),
                         y + row_h);
    }
    lg_sb_puts(b, "</svg>\n");
}

/* ---- the page ---- */

static const char css[] =
    "body{font:14px/1.45 'DejaVu Sans',system-ui,sans-serif;color:#1a202c;background:#fff;"
    "max-width:1100px;margin:20px auto;padding:0 16px}"
    "h1{font-size:22px;margin:0 0 4px}"
    "h2{font-size:16px;margin:0 0 4px}"
    ".sub{color:#4a5568;margin:0 0 14px}"
    ".bad{color:#c53030}"
    ".tiles{display:flex;flex-wrap:wrap;gap:10px;margin:0 0 16px}"
    ".tile{flex:1 1 auto;border:1px solid #e2e8f0;border-radius:6px;padding:6px 10px}"
    ".tile b{display:block;font-size:18px;white-space:nowrap}"
    ".tile span{color:#718096;font-size:12px}"
    "figure{margin:0 0 16px;border:1px solid #e2e8f0;border-radius:6px;padding:10px 12px}"
    "figcaption{color:#4a5568;font-size:12.5px;margin-top:2px}"
    "svg{display:block;max-width:100%;height:auto}"
    "svg text{font-size:11.5px;fill:#2d3748}"
    "svg .axis-title{font-size:12px;fill:#4a5568}"
    "svg .nodata{font-size:14px;fill:#718096}"
    "svg .note,svg .lane-text{font-size:10.5px;fill:#2d3748}"
    "svg .strong{font-weight:bold}"
    ".foot{color:#718096;font-size:12px}";

/* Sets data-charts ("drawn/total": charts with a non-empty box) and data-lines
 * (data lines with a length) on <body>: a check for tests, nothing else. */
static const char self_check[] =
    "(function(){var n=0,l=0,c=document.querySelectorAll('svg.chart');"
    "c.forEach(function(s){var b=s.getBBox();if(b.width>0&&b.height>0)n++;});"
    "document.querySelectorAll('svg.chart path.line').forEach(function(p){"
    "if(p.getTotalLength()>0)l++;});"
    "document.body.setAttribute('data-charts',n+'/'+c.length);"
    "document.body.setAttribute('data-lines',String(l));})();";

static void tile(struct lg_sb *b, const char *value, const char *label, bool bad)
{
    lg_sb_printf(b, "<div class=\"tile\"><b%s>", bad ? " class=\"bad\"" : "");
    lg_sb_html(b, value);
    lg_sb_puts(b, "</b><span>");
    lg_sb_html(b, label);
    lg_sb_puts(b, "</span></div>\n");
}

static void header(struct lg_sb *b, const struct view *v, int rc)
{
    const struct lg_opts *o = v->o;
    const struct lg_results *r = v->r;
    char title[160];
    if (o->rate)
        snprintf(title, sizeof(title), "loadgen: fixed rate %" PRIu32 " payments/s for %.1f s",
                 o->rate, o->sched.duration_ms / 1000.0);
    else
        snprintf(title, sizeof(title), "loadgen: schedule %s, %.1f s, ramp to %" PRIu32 " VUs",
                 o->sched.name, o->sched.duration_ms / 1000.0, o->sched.users);
    lg_sb_puts(b, "<title>");
    lg_sb_html(b, title);
    lg_sb_printf(b, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>", css);
    lg_sb_html(b, title);
    lg_sb_puts(b, "</h1>\n<p class=\"sub\">target ");
    lg_sb_html(b, o->target);
    lg_sb_puts(b, " &#183; default ");
    lg_sb_html(b, o->proc_url[LG_PROC_DEFAULT]);
    lg_sb_puts(b, " &#183; fallback ");
    lg_sb_html(b, o->proc_url[LG_PROC_FALLBACK]);
    if (r->start_wall_ms > 0) {
        char at[CLOCK_ISO_LEN + 1];
        clock_format_iso_ms(r->start_wall_ms, at);
        at[CLOCK_ISO_LEN] = '\0';
        lg_sb_printf(b, "<br/>started %s &#183; ran %.1f s", at, r->ran_ms / 1000.0);
    }
    char amount[LG_DEC_FMT_MAX];
    lg_dec_format((__int128)o->sched.amount_cents * LG_DEC_CENT, 2, amount);
    lg_sb_printf(b, " &#183; amount %s &#183; timeout %" PRIu32 " ms", amount, o->timeout_ms);
    if (!o->rate && !o->no_schedule)
        lg_sb_printf(b, " &#183; %u processor stages", o->sched.nstages);
    lg_sb_puts(b, "</p>\n");
    if (rc != 0) {
        lg_sb_puts(b, "<p class=\"bad\">The run was not done: ");
        lg_sb_html(b, r->setup_error[0] ? r->setup_error : "setup failed");
        lg_sb_puts(b, "</p>\n");
    } else if (r->interrupted) {
        lg_sb_puts(b, "<p class=\"bad\">Interrupted: the figures cover the part that ran.</p>\n");
    }
}

static void tiles(struct lg_sb *b, const struct view *v)
{
    const struct lg_results *r = v->r;
    char t[96], a[24], c[24];
    lg_sb_puts(b, "<div class=\"tiles\">\n");
    snprintf(t, sizeof(t), "%" PRIu64, r->payments.ok);
    tile(b, t, "payments 2xx", false);
    snprintf(t, sizeof(t), "%" PRIu64, r->payments.failed);
    tile(b, t, "payments failed", r->payments.failed > 0);
    snprintf(t, sizeof(t), "%.1f", r->ran_ms ? r->payments.ok * 1000.0 / r->ran_ms : 0.0);
    tile(b, t, "2xx/s (average)", false);
    ms_text(lg_hist_percentile_ns(&r->pay_hist, 50000) / 1000, a, sizeof(a));
    ms_text(lg_hist_percentile_ns(&r->pay_hist, 99000) / 1000, c, sizeof(c));
    snprintf(t, sizeof(t), "%s / %s ms", a, c);
    tile(b, t, "latency p50 / p99", false);
    ms_text(r->pay_hist.max_us, a, sizeof(a));
    snprintf(t, sizeof(t), "%s ms", a);
    tile(b, t, "latency max", false);
    snprintf(t, sizeof(t), "%u / %u", r->naudits - r->audit_errors, r->naudits);
    tile(b, t, "audits done", r->audit_errors > 0);
    snprintf(t, sizeof(t), "%" PRIu64, r->inconsistencies);
    tile(b, t, "inconsistencies", r->inconsistencies > 0);
    if (r->have_final) {
        money_text(r->score.net, t);
        tile(b, t, "net score", false);
    }
    lg_sb_puts(b, "</div>\n");
}

static void share_caption(struct lg_sb *b, const struct view *v)
{
    const struct lg_results *r = v->r;
    lg_sb_puts(b, "<figcaption>loadgen cannot see which processor took a payment, so this is "
                  "derived from the audits: each bar is the share in the processors' own admin "
                  "summaries over the audit's window, from 15 s to 2 s before the audit (it "
                  "trails the run).");
    if (r->have_final) {
        int64_t d = r->final[0].count, f = r->final[1].count;
        double pd = d + f > 0 ? 100.0 * (double)d / (double)(d + f) : 0;
        lg_sb_printf(b,
                     " Whole run (final admin summaries): default %" PRId64 " (%.1f%%), "
                     "fallback %" PRId64 " (%.1f%%).",
                     d, pd, f, d + f > 0 ? 100.0 - pd : 0.0);
    }
    lg_sb_puts(b, "</figcaption>\n");
}

char *lg_html_render(const struct lg_opts *o, const struct lg_results *r, int rc)
{
    struct lg_sb sb, *b = &sb;
    lg_sb_init(b);
    struct view v = {.o = o, .r = r, .s = &r->series};
    uint32_t t1 = o->sched.duration_ms;
    if (r->series.n > 0 && r->series.sec[r->series.n - 1].end_ms > t1)
        t1 = r->series.sec[r->series.n - 1].end_ms;
    if (r->naudits > 0 && r->audits[r->naudits - 1].at_ms > t1)
        t1 = r->audits[r->naudits - 1].at_ms;
    v.t1_s = t1 > 0 ? t1 / 1000.0 : 1;
    /* the stages the run started (their calls were made), in time order */
    if (!o->no_schedule && !o->rate)
        v.nstages = r->stages_started < o->sched.nstages ? r->stages_started : o->sched.nstages;

    lg_sb_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
                  "<meta name=\"viewport\" content=\"width=device-width\"/>\n");
    header(b, &v, rc);
    tiles(b, &v);

    lg_sb_puts(b, "<figure>\n<h2>Latency per second (2xx payments)</h2>\n");
    chart_latency(b, &v);
    lg_sb_puts(b, "<figcaption>p50 and p99 of the payments answered 2xx in each second");
    if (o->rate)
        lg_sb_puts(b, ", counted from when each payment was due (open loop)");
    if (v.nstages > 0)
        lg_sb_puts(b, ". Background: the default processor's state in each stage; the strips "
                      "above give each processor's delay and failure as set by the schedule");
    else
        lg_sb_puts(b, ". No processor stages in this run");
    lg_sb_puts(b, ".</figcaption>\n</figure>\n");

    lg_sb_puts(b, "<figure>\n<h2>Throughput and errors</h2>\n");
    chart_throughput(b, &v);
    lg_sb_printf(b,
                 "<figcaption>Payments finished per second: 2xx, and failed (timeouts, "
                 "connection errors, 4xx/5xx, our own pool full). Dashed: %s.</figcaption>\n"
                 "</figure>\n",
                 o->rate ? "payments in flight at the end of each second"
                         : "virtual users of the ramp");

    lg_sb_puts(b, "<figure>\n<h2>Default vs fallback</h2>\n");
    chart_share(b, &v);
    share_caption(b, &v);
    lg_sb_puts(b, "</figure>\n");

    lg_sb_puts(b, "<figure>\n<h2>Audits</h2>\n");
    chart_audits(b, &v);
    lg_sb_puts(b, "<figcaption>Each audit compares the target's payments-summary with the "
                  "processors' admin summaries over the same window; any difference is an "
                  "inconsistency and costs the fine.</figcaption>\n</figure>\n");

    lg_sb_puts(b, "<figure>\n<h2>Score</h2>\n");
    chart_score(b, &v, rc);
    if (rc == 0 && r->have_final)
        lg_sb_printf(b,
                     "<figcaption>net = (gross - fees) x (1 + bonus - fine); the bonus uses "
                     "the p99 of every 2xx request of the run, admin calls included, as the "
                     "challenge's test does. Lag (2xx posts the processors did not record): "
                     "%" PRId64 "%s.</figcaption>\n",
                     r->score.lag, r->score.lag < 0 ? " (negative: disqualified)" : "");
    lg_sb_puts(b, "</figure>\n");

    lg_sb_printf(b,
                 "<p class=\"foot\">Generated by loadgen. The JSON report (stdout, --report) "
                 "has the exact figures.</p>\n<script>%s</script>\n</body>\n</html>\n",
                 self_check);
    return lg_sb_take(b);
}
