/* Child processes for integration tests: spawn a binary with extra environment
 * variables and its stdout+stderr appended to a log file, wait (bounded) until
 * it accepts connections on a TCP port or unix socket, stop it by PID with
 * SIGTERM then SIGKILL. The child gets PR_SET_PDEATHSIG=SIGKILL, so a test that
 * crashes does not leave servers behind. Not thread-safe; call from the test's
 * main thread. Functions return 0 or a negative errno unless stated. */
#ifndef TESTS_SUPPORT_PROC_H
#define TESTS_SUPPORT_PROC_H

#include <stdbool.h>
#include <sys/types.h>

struct proc {
    pid_t pid;   /* > 0 while started and not reaped */
    int status;  /* after reaping: exit code, or 128 + signal number */
    bool exited; /* reaped */
};

/* Starts argv[0] (a path; not searched in PATH) with argv, the current
 * environment plus `env` ("NAME=value" strings, NULL-terminated; NULL for
 * none; they override inherited ones), stdin from /dev/null and stdout+stderr
 * appended to log_path (NULL: /dev/null). */
int proc_spawn(struct proc *p, char *const argv[], char *const env[], const char *log_path)
    __attribute__((warn_unused_result));

/* Polls (every 10 ms) until host:port accepts a TCP connection. Returns 0;
 * -ECHILD when the process exited meanwhile (p may be NULL to skip that check);
 * -ETIMEDOUT after timeout_ms. */
int proc_wait_tcp(struct proc *p, const char *host, int port, int timeout_ms)
    __attribute__((warn_unused_result));

/* Same for a unix socket path. */
int proc_wait_unix(struct proc *p, const char *path, int timeout_ms)
    __attribute__((warn_unused_result));

/* True while the process runs; reaps it (setting status) when it has exited. */
bool proc_running(struct proc *p);

/* Waits up to timeout_ms for the process to exit on its own. Returns its
 * status (exit code, or 128 + signal), or -ETIMEDOUT (still running). */
int proc_wait_exit(struct proc *p, int timeout_ms);

/* SIGTERM, wait up to grace_ms, then SIGKILL and wait. Returns the status (exit
 * code, or 128 + signal), or a negative errno. Safe to call twice. */
int proc_stop(struct proc *p, int grace_ms);

/* A TCP port that was free a moment ago on 127.0.0.1 (bind to port 0, read it,
 * close). Returns the port or a negative errno. Racy by nature: prefer servers
 * that bind port 0 themselves when you can. */
int proc_free_port(void);

#endif
