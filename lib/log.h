/* JSON-lines logging to a file descriptor (stdout by default): one object per
 * line with ts, level, module and msg. Fixed buffer, no malloc, no blocking
 * beyond one write(2) per line. Warnings and errors are rate-limited per
 * module name so that a failing dependency cannot flood the log. */
#ifndef LIB_LOG_H
#define LIB_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the process-wide level and output fd. Callable any time; defaults are
 * LOG_INFO and fd 1. */
void log_init(enum log_level level, int fd);

/* Parses "debug" | "info" | "warn" | "error"; returns -EINVAL otherwise. */
int log_level_parse(const char *s, enum log_level *out);

/* Writes {"ts":"<ISO-8601>","level":"info","module":"<module>","msg":"<formatted>"}.
 * The message is JSON-escaped. Lines over 1 KiB are truncated, never split. */
void log_msg(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like log_msg, but fields_fmt expands to raw JSON members appended after msg,
 * e.g. log_fields(LOG_INFO, "config", "start", "\"port\":%d", port). The caller
 * guarantees the expansion is valid JSON members (strings escaped). */
void log_fields(enum log_level level, const char *module, const char *msg, const char *fields_fmt,
                ...) __attribute__((format(printf, 4, 5)));

#define log_debug(mod, ...) log_msg(LOG_DEBUG, mod, __VA_ARGS__)
#define log_info(mod, ...) log_msg(LOG_INFO, mod, __VA_ARGS__)
#define log_warn(mod, ...) log_msg(LOG_WARN, mod, __VA_ARGS__)
#define log_error(mod, ...) log_msg(LOG_ERROR, mod, __VA_ARGS__)

#endif
