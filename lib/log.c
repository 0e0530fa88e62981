/* JSON-lines logging: one object per line, built in a fixed stack buffer and
 * written with one write(2), so lines from several threads never interleave
 * (a line is at most LOG_LINE_MAX bytes, well under PIPE_BUF). WARN and ERROR
 * are rate-limited per module; the count of dropped lines is reported on the
 * module's next line. No malloc; does not buffer or retry partial writes. */
#include "lib/log.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/text.h"

#define LOG_LINE_MAX 1024   /* bytes per line including the newline */
#define LOG_MODULE_MAX 64   /* module names are cut to this many bytes minus one */
#define LOG_RATE_SLOTS 32   /* modules tracked by the rate limiter; the last is shared */
#define LOG_RATE_PER_SEC 50 /* WARN/ERROR lines per module per one-second window */

/* What may follow the message: "suppressed" (up to 20 digits), "truncated", "}\n". */
#define LOG_TAIL_RESERVE                                                                           \
    (sizeof("\",\"suppressed\":18446744073709551615") - 1 + sizeof(",\"truncated\":true") - 1 +    \
     sizeof("}\n") - 1)

/* The fixed prefix ({"ts":..,"level":..,"module":<escaped, 6 bytes per byte at
 * worst>,"msg":") plus the tail always fit, so only msg and fields are ever cut. */
static_assert(7 + CLOCK_ISO_LEN + 11 + 5 + 12 + 6 * LOG_MODULE_MAX + 9 + LOG_TAIL_RESERVE + 64 <
                  LOG_LINE_MAX,
              "log line prefix too long");

static atomic_int log_level_cur = LOG_INFO;
static atomic_int log_fd = 1;

struct log_rate {
    bool used;                 /* slot claimed by name */
    char name[LOG_MODULE_MAX]; /* module name, cut to LOG_MODULE_MAX - 1 bytes */
    int64_t window_ms;         /* start of the current one-second window (monotonic) */
    uint32_t count;            /* WARN/ERROR lines written in this window */
    uint64_t suppressed;       /* lines dropped since the last line written */
};

static pthread_mutex_t log_rate_lock = PTHREAD_MUTEX_INITIALIZER;
static struct log_rate log_rates[LOG_RATE_SLOTS];

static int64_t log_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Time source for the rate limiter; tests that include this file replace it. */
static int64_t (*log_now_ms)(void) = log_mono_ms;

static const char *const log_level_names[] = {"debug", "info", "warn", "error"};

void log_init(enum log_level level, int fd)
{
    if ((int)level < LOG_DEBUG || level > LOG_ERROR)
        level = LOG_INFO;
    atomic_store_explicit(&log_level_cur, (int)level, memory_order_relaxed);
    atomic_store_explicit(&log_fd, fd, memory_order_relaxed);
}

int log_level_parse(const char *s, enum log_level *out)
{
    if (s == NULL)
        return -EINVAL;
    for (int i = LOG_DEBUG; i <= LOG_ERROR; i++) {
        if (strcmp(s, log_level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* Finds (or claims) the slot of a module by name (callers may pass names from
 * reused buffers, so pointers are not trusted); the last slot is shared by
 * every module that finds the table full. Called with log_rate_lock held. */
static struct log_rate *rate_slot(const char *module, bool claim)
{
    for (int i = 0; i < LOG_RATE_SLOTS; i++) {
        struct log_rate *r = &log_rates[i];
        if (!r->used) {
            if (!claim)
                return NULL;
            r->used = true;
            snprintf(r->name, sizeof(r->name), "%s", module);
            r->window_ms = log_now_ms();
            r->count = 0;
            r->suppressed = 0;
            return r;
        }
        if (r->name[0] == module[0] && strncmp(r->name, module, sizeof(r->name) - 1) == 0)
            return r;
    }
    return &log_rates[LOG_RATE_SLOTS - 1];
}

/* Decides whether a line for module may be written. On yes, *suppressed gets
 * the number of lines dropped since its previous line (and is reset). */
static bool rate_admit(enum log_level level, const char *module, uint64_t *suppressed)
{
    *suppressed = 0;
    bool limited = level >= LOG_WARN;
    bool ok = true;
    pthread_mutex_lock(&log_rate_lock);
    struct log_rate *r = rate_slot(module, limited);
    if (r != NULL) {
        if (limited) {
            int64_t now = log_now_ms();
            if (now - r->window_ms >= 1000 || now < r->window_ms) {
                r->window_ms = now;
                r->count = 0;
            }
            if (r->count >= LOG_RATE_PER_SEC) {
                r->suppressed++;
                ok = false;
            } else {
                r->count++;
            }
        }
        if (ok) {
            *suppressed = r->suppressed;
            r->suppressed = 0;
        }
    }
    pthread_mutex_unlock(&log_rate_lock);
    return ok;
}

/* Appends src[0..n) JSON-escaped to dst[*pos..cap). Never splits an escape or
 * a UTF-8 sequence; invalid UTF-8 bytes become U+FFFD. Returns false when it
 * had to stop early. */
static bool put_escaped(char *dst, size_t *pos, size_t cap, const char *src, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)src;
    size_t o = *pos;
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        char esc[8];
        const char *out = esc;
        size_t len, adv = 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            len = 2;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            len = 2;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            len = 6;
        } else if (c < 0x80) {
            esc[0] = (char)c;
            len = 1;
        } else {
            adv = text_utf8_seq(u + i, n - i);
            if (adv == 0) {
                out = "\\ufffd";
                len = 6;
                adv = 1;
            } else {
                out = src + i;
                len = adv;
            }
        }
        if (cap - o < len) {
            *pos = o;
            return false;
        }
        memcpy(dst + o, out, len);
        o += len;
        i += adv;
    }
    *pos = o;
    return true;
}

static void put_raw(char *dst, size_t *pos, const char *s, size_t n)
{
    memcpy(dst + *pos, s, n);
    *pos += n;
}

/* Builds and writes one line. msg is already formatted (msg_trunc: it was cut);
 * fields, if not NULL, are raw JSON members (fields_len bytes). */
static void log_emit(enum log_level level, const char *module, const char *msg, size_t msg_len,
                     bool msg_trunc, const char *fields, size_t fields_len)
{
    uint64_t suppressed;
    if (!rate_admit(level, module, &suppressed))
        return;
    char line[LOG_LINE_MAX];
    size_t pos = 0;
    bool trunc = msg_trunc;

    put_raw(line, &pos, "{\"ts\":\"", 7);
    char ts[CLOCK_ISO_LEN + 1];
    put_raw(line, &pos, ts, clock_format_iso_ms(clock_wall_ms(), ts));
    put_raw(line, &pos, "\",\"level\":\"", 11);
    put_raw(line, &pos, log_level_names[level], strlen(log_level_names[level]));
    put_raw(line, &pos, "\",\"module\":\"", 12);
    size_t mod_len = strnlen(module, LOG_MODULE_MAX - 1);
    /* at most 6 * LOG_MODULE_MAX bytes: always fits before the message */
    put_escaped(line, &pos, LOG_LINE_MAX - LOG_TAIL_RESERVE, module, mod_len);
    put_raw(line, &pos, "\",\"msg\":\"", 9);

    /* Fields are kept whole or dropped; they go before the message in the budget. */
    size_t budget = LOG_LINE_MAX - LOG_TAIL_RESERVE;
    if (fields != NULL && fields_len > 0) {
        if (pos + fields_len + 1 > budget) {
            fields = NULL;
            trunc = true;
        } else {
            budget -= fields_len + 1;
        }
    }
    if (!put_escaped(line, &pos, budget, msg, msg_len))
        trunc = true;
    line[pos++] = '"';
    if (suppressed > 0)
        pos += (size_t)snprintf(line + pos, LOG_LINE_MAX - pos, ",\"suppressed\":%llu",
                                (unsigned long long)suppressed);
    if (fields != NULL && fields_len > 0) {
        line[pos++] = ',';
        put_raw(line, &pos, fields, fields_len);
    }
    if (trunc)
        put_raw(line, &pos, ",\"truncated\":true", 17);
    put_raw(line, &pos, "}\n", 2);

    int fd = atomic_load_explicit(&log_fd, memory_order_relaxed);
    ssize_t w;
    do {
        w = write(fd, line, pos);
    } while (w < 0 && errno == EINTR);
}

static bool log_enabled(enum log_level level)
{
    return (int)level >= atomic_load_explicit(&log_level_cur, memory_order_relaxed);
}

static enum log_level log_clamp(enum log_level level)
{
    return (int)level < LOG_DEBUG ? LOG_DEBUG : level > LOG_ERROR ? LOG_ERROR : level;
}

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
    level = log_clamp(level);
    if (!log_enabled(level))
        return;
    char msg[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    bool cut = (size_t)n >= sizeof(msg);
    log_emit(level, module != NULL ? module : "-", msg, cut ? sizeof(msg) - 1 : (size_t)n, cut,
             NULL, 0);
}

void log_fields(enum log_level level, const char *module, const char *msg, const char *fields_fmt,
                ...)
{
    level = log_clamp(level);
    if (!log_enabled(level))
        return;
    char fields[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fields_fmt);
    int n = vsnprintf(fields, sizeof(fields), fields_fmt, ap);
    va_end(ap);
    size_t flen = n < 0 ? 0 : (size_t)n;
    bool dropped = flen >= sizeof(fields); /* cannot cut raw JSON safely: drop it */
    if (msg == NULL)
        msg = "";
    log_emit(level, module != NULL ? module : "-", msg, strlen(msg), dropped,
             dropped ? NULL : fields, dropped ? 0 : flen);
}
