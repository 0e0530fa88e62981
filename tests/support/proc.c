/* Spawning and stopping test child processes (fork + execve, by PID only), and
 * bounded readiness waits. The environment array is built before fork so the
 * child only calls async-signal-safe functions before execve. */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

extern char **environ;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static bool overridden(const char *entry, char *const env[])
{
    const char *eq = strchr(entry, '=');
    size_t n = eq ? (size_t)(eq - entry) : strlen(entry);
    for (size_t i = 0; env && env[i]; i++) {
        if (strncmp(env[i], entry, n) == 0 && env[i][n] == '=')
            return true;
    }
    return false;
}

int proc_spawn(struct proc *p, char *const argv[], char *const env[], const char *log_path)
{
    p->pid = -1;
    p->status = -1;
    p->exited = false;
    if (!argv || !argv[0])
        return -EINVAL;
    size_t nenv = 0, nextra = 0;
    while (environ[nenv])
        nenv++;
    while (env && env[nextra])
        nextra++;
    char **envp = calloc(nenv + nextra + 1, sizeof(*envp));
    if (!envp)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < nenv; i++) {
        if (!overridden(environ[i], env))
            envp[k++] = environ[i];
    }
    for (size_t i = 0; i < nextra; i++)
        envp[k++] = env[i];
    envp[k] = NULL;

    int logfd =
        open(log_path ? log_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0) {
        int e = errno;
        free(envp);
        return -e;
    }
    int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (nullfd < 0) {
        int e = errno;
        close(logfd);
        free(envp);
        return -e;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(logfd);
        close(nullfd);
        free(envp);
        return -e;
    }
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        /* A clean signal state: the test may have blocked or ignored some. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        dup2(nullfd, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    close(logfd);
    close(nullfd);
    free(envp);
    p->pid = pid;
    return 0;
}

static int decode_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

bool proc_running(struct proc *p)
{
    if (p->exited || p->pid <= 0)
        return false;
    int st;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid) {
        p->status = decode_status(st);
        p->exited = true;
        return false;
    }
    if (r < 0 && errno == ECHILD) {
        p->exited = true;
        return false;
    }
    return true;
}

int proc_wait_exit(struct proc *p, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        if (!proc_running(p))
            return p->status;
        if (now_ms() >= deadline)
            return -ETIMEDOUT;
        sleep_ms(5);
    }
}

int proc_stop(struct proc *p, int grace_ms)
{
    if (p->pid <= 0)
        return -ESRCH;
    if (!proc_running(p))
        return p->status;
    if (kill(p->pid, SIGTERM) < 0 && errno != ESRCH)
        return -errno;
    int rv = proc_wait_exit(p, grace_ms);
    if (rv != -ETIMEDOUT)
        return rv;
    if (kill(p->pid, SIGKILL) < 0 && errno != ESRCH)
        return -errno;
    rv = proc_wait_exit(p, 10000);
    return rv;
}

static int try_connect(const struct sockaddr *sa, socklen_t sl)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rv = connect(fd, sa, sl) == 0 ? 0 : -errno;
    close(fd);
    return rv;
}

static int wait_connect(struct proc *p, const struct sockaddr *sa, socklen_t sl, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        if (try_connect(sa, sl) == 0)
            return 0;
        if (p && !proc_running(p))
            return -ECHILD;
        if (now_ms() >= deadline)
            return -ETIMEDOUT;
        sleep_ms(10);
    }
}

int proc_wait_tcp(struct proc *p, const char *host, int port, int timeout_ms)
{
    struct sockaddr_in in;
    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host ? host : "127.0.0.1", &in.sin_addr) != 1)
        return -EINVAL;
    return wait_connect(p, (struct sockaddr *)&in, sizeof(in), timeout_ms);
}

int proc_wait_unix(struct proc *p, const char *path, int timeout_ms)
{
    struct sockaddr_un un;
    memset(&un, 0, sizeof(un));
    if (strlen(path) >= sizeof(un.sun_path))
        return -ENAMETOOLONG;
    un.sun_family = AF_UNIX;
    strcpy(un.sun_path, path);
    return wait_connect(p, (struct sockaddr *)&un, sizeof(un), timeout_ms);
}

int proc_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in in;
    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(in);
    int rv = 0;
    if (bind(fd, (struct sockaddr *)&in, sizeof(in)) < 0 ||
        getsockname(fd, (struct sockaddr *)&in, &sl) < 0)
        rv = -errno;
    close(fd);
    return rv < 0 ? rv : ntohs(in.sin_port);
}
