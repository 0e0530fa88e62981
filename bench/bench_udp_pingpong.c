/* The physical floor of a round trip to a peer on this machine: two processes
 * (this one and a forked child), each on its own libuv loop, exchange UDP
 * datagrams on the loopback. The pinger sends one datagram at a fixed rate, each
 * at its own due time (an absolute timerfd, ns resolution, not a 1 ms tick); the
 * echoer sends every datagram back. Prints one JSON object: the round trip
 * (actual send -> echo received), how late each send left (due -> send), and
 * each process's CPU and context switches over the timed phase, read from
 * /proc like bench/decompose.sh reads every other process. No HTTP, no nng,
 * no payload work: what is left is wake-ups and the loopback.
 *
 *   bench_udp_pingpong [--rate R] [--duration S] [--rt-priority N]
 *   defaults: --rate 300 --duration 10; --rt-priority applies to the pinger only
 *   (as loadgen's does), the echoer runs at normal priority (as a node does). */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "lib/container.h"
#include "ops/loadgen/hist.h"

#define PP_MSG_LEN 16 /* seq (8 bytes) + send time (8 bytes) */
#define PP_STOP 'Q'   /* a 1-byte datagram: the echoer exits */
#define PP_DRAIN_NS UINT64_C(200000000)

struct proc_sample {
    uint64_t cpu_ticks; /* utime + stime, clock ticks */
    uint64_t vcs, ivcs; /* voluntary / involuntary context switches */
};

struct pinger {
    uv_loop_t loop;
    uv_udp_t udp;
    uv_poll_t tpoll;
    int tfd;
    uint64_t t0_ns, period_ns, count; /* schedule: ping i is due at t0 + i * period */
    uint64_t next;                    /* pings sent so far */
    uint64_t received;
    uint64_t *sent_ns; /* actual send time per ping, 0 until sent */
    struct lg_hist *rtt, *late;
    bool draining;
};

/* ---------------------------------------------------------------- /proc */

static int proc_read(pid_t pid, struct proc_sample *s)
{
    char path[64], buf[1024];
    memset(s, 0, sizeof(*s));
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -errno;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* fields after the command name (which may contain spaces): state is field 3,
     * utime and stime are fields 14 and 15 */
    const char *p = strrchr(buf, ')');
    if (p == NULL)
        return -EINVAL;
    unsigned long long ut, st;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -EINVAL;
    s->cpu_ticks = ut + st;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -errno;
    char line[256];
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long long v;
        if (sscanf(line, "voluntary_ctxt_switches: %llu", &v) == 1)
            s->vcs = v;
        else if (sscanf(line, "nonvoluntary_ctxt_switches: %llu", &v) == 1)
            s->ivcs = v;
    }
    fclose(f);
    return 0;
}

/* ---------------------------------------------------------------- echoer */

static void on_echo_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char mem[256];
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(mem, sizeof(mem));
}

static void on_echo_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
                         const struct sockaddr *addr, unsigned flags)
{
    (void)flags;
    if (nread <= 0 || addr == NULL)
        return;
    if (nread == 1 && buf->base[0] == PP_STOP) {
        uv_udp_recv_stop(u);
        uv_close((uv_handle_t *)u, NULL);
        return;
    }
    uv_buf_t out = uv_buf_init(buf->base, (unsigned)nread);
    (void)uv_udp_try_send(u, &out, 1, addr);
}

static int echoer_main(int fd)
{
    uv_loop_t loop;
    uv_udp_t udp;
    if (uv_loop_init(&loop) != 0 || uv_udp_init(&loop, &udp) != 0 || uv_udp_open(&udp, fd) != 0)
        return 1;
    if (uv_udp_recv_start(&udp, on_echo_alloc, on_echo_recv) != 0)
        return 1;
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : 1;
}

/* ---------------------------------------------------------------- pinger */

static void arm(struct pinger *p, uint64_t at_ns)
{
    struct itimerspec its = {
        .it_value = {.tv_sec = (time_t)(at_ns / 1000000000), .tv_nsec = (long)(at_ns % 1000000000)},
    };
    (void)timerfd_settime(p->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void on_ping_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf,
                         const struct sockaddr *addr, unsigned flags)
{
    struct pinger *p = container_of(u, struct pinger, udp);
    (void)addr;
    (void)flags;
    if (nread != PP_MSG_LEN)
        return;
    uint64_t now = uv_hrtime(), seq, sent;
    memcpy(&seq, buf->base, 8);
    memcpy(&sent, buf->base + 8, 8);
    if (seq >= p->count || p->sent_ns[seq] != sent)
        return;
    lg_hist_record(p->rtt, (now - sent) / 1000);
    p->sent_ns[seq] = 0; /* a duplicate is not counted twice */
    p->received++;
}

static void on_ping_timer(uv_poll_t *h, int status, int events)
{
    struct pinger *p = container_of(h, struct pinger, tpoll);
    uint64_t n;
    (void)events;
    if (status < 0 || read(p->tfd, &n, sizeof(n)) != (ssize_t)sizeof(n))
        return;
    if (p->draining) {
        uv_stop(&p->loop);
        return;
    }
    uint64_t now = uv_hrtime();
    while (p->next < p->count && p->t0_ns + p->next * p->period_ns <= now) {
        uint64_t due = p->t0_ns + p->next * p->period_ns;
        char msg[PP_MSG_LEN];
        uint64_t sent = uv_hrtime();
        memcpy(msg, &p->next, 8);
        memcpy(msg + 8, &sent, 8);
        p->sent_ns[p->next] = sent;
        uv_buf_t b = uv_buf_init(msg, sizeof(msg));
        (void)uv_udp_try_send(&p->udp, &b, 1, NULL);
        lg_hist_record(p->late, (sent - due) / 1000);
        p->next++;
    }
    if (p->next < p->count) {
        arm(p, p->t0_ns + p->next * p->period_ns);
    } else {
        p->draining = true; /* late echoes still count for a little while */
        arm(p, now + PP_DRAIN_NS);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char mem[256];
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(mem, sizeof(mem));
}

static void print_ms(const char *name, const struct lg_hist *h, bool last)
{
    printf("\"%s\":{\"count\":%" PRIu64, name, h->count);
    static const struct {
        const char *k;
        uint32_t pcm;
    } q[] = {{"p50", 50000}, {"p90", 90000}, {"p99", 99000}, {"p999", 99900}};
    for (unsigned i = 0; i < sizeof(q) / sizeof(q[0]); i++)
        printf(",\"%s\":%.3f", q[i].k, (double)lg_hist_percentile_ns(h, q[i].pcm) / 1e6);
    printf(",\"max\":%.3f}%s", (double)h->max_us / 1e3, last ? "" : ",");
}

static void print_proc(const char *name, pid_t pid, const struct proc_sample *a,
                       const struct proc_sample *b, bool last)
{
    long hz = sysconf(_SC_CLK_TCK);
    printf("\"%s\":{\"pid\":%d,\"cpuTicks\":%" PRIu64 ",\"ticksPerS\":%ld,\"voluntary\":%" PRIu64
           ",\"involuntary\":%" PRIu64 "}%s",
           name, (int)pid, b->cpu_ticks - a->cpu_ticks, hz, b->vcs - a->vcs, b->ivcs - a->ivcs,
           last ? "" : ",");
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_udp_pingpong [--rate R] [--duration S] [--rt-priority N]\n");
    return 2;
}

int main(int argc, char **argv)
{
    unsigned long rate = 300, rt = 0;
    double duration_s = 10;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--rate") == 0)
            rate = strtoul(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--duration") == 0)
            duration_s = strtod(argv[++i], NULL);
        else if (i + 1 < argc && strcmp(argv[i], "--rt-priority") == 0)
            rt = strtoul(argv[++i], NULL, 10);
        else
            return usage();
    }
    if (rate == 0 || rate > 1000000 || !(duration_s > 0 && duration_s <= 3600))
        return usage();

    /* The echoer's socket is bound here, so the pinger knows its port before
     * the fork. */
    int efd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in ea = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t elen = sizeof(ea);
    if (efd < 0 || bind(efd, (struct sockaddr *)&ea, sizeof(ea)) != 0 ||
        getsockname(efd, (struct sockaddr *)&ea, &elen) != 0) {
        perror("bench_udp_pingpong: echo socket");
        return 1;
    }
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        perror("bench_udp_pingpong: fork");
        return 1;
    }
    if (child == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        _exit(echoer_main(efd));
    }
    close(efd);

    static struct pinger p;
    p.period_ns = 1000000000ull / rate;
    p.count = (uint64_t)(duration_s * (double)rate);
    p.sent_ns = calloc(p.count, sizeof(*p.sent_ns));
    p.rtt = malloc(sizeof(*p.rtt));
    p.late = malloc(sizeof(*p.late));
    p.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (p.sent_ns == NULL || p.rtt == NULL || p.late == NULL || p.tfd < 0) {
        fprintf(stderr, "bench_udp_pingpong: setup failed\n");
        kill(child, SIGKILL);
        return 1;
    }
    lg_hist_init(p.rtt);
    lg_hist_init(p.late);
    int rc = uv_loop_init(&p.loop);
    if (rc == 0)
        rc = uv_udp_init(&p.loop, &p.udp);
    struct sockaddr_in pa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (rc == 0)
        rc = uv_udp_bind(&p.udp, (struct sockaddr *)&pa, 0);
    if (rc == 0)
        rc = uv_udp_connect(&p.udp, (struct sockaddr *)&ea);
    if (rc == 0)
        rc = uv_udp_recv_start(&p.udp, on_alloc, on_ping_recv);
    if (rc == 0)
        rc = uv_poll_init(&p.loop, &p.tpoll, p.tfd);
    if (rc != 0) {
        fprintf(stderr, "bench_udp_pingpong: %s\n", uv_strerror(rc));
        kill(child, SIGKILL);
        return 1;
    }
    bool realtime = false;
    if (rt > 0) {
        struct sched_param sp = {.sched_priority = (int)rt};
        realtime = sched_setscheduler(0, SCHED_FIFO, &sp) == 0;
        if (!realtime)
            fprintf(stderr, "bench_udp_pingpong: SCHED_FIFO %lu refused: %s\n", rt,
                    strerror(errno));
    }
    usleep(100000); /* the echoer is in its loop by now; nothing is lost if not */

    struct proc_sample me0, me1, ch0, ch1;
    (void)proc_read(getpid(), &me0);
    (void)proc_read(child, &ch0);
    p.t0_ns = uv_hrtime() + 1000000;
    uv_poll_start(&p.tpoll, UV_READABLE, on_ping_timer);
    arm(&p, p.t0_ns); /* uv_hrtime() is CLOCK_MONOTONIC, as the timerfd */
    uv_run(&p.loop, UV_RUN_DEFAULT);
    (void)proc_read(getpid(), &me1);
    (void)proc_read(child, &ch1);

    char stop = PP_STOP;
    uv_buf_t sb = uv_buf_init(&stop, 1);
    (void)uv_udp_try_send(&p.udp, &sb, 1, NULL);
    int wst = 0;
    for (int i = 0; i < 50 && waitpid(child, &wst, WNOHANG) == 0; i++)
        usleep(10000);
    if (waitpid(child, &wst, WNOHANG) == 0) {
        kill(child, SIGKILL);
        waitpid(child, &wst, 0);
    }

    printf("{\"rate\":%lu,\"durationS\":%.3f,\"realtime\":%s,\"sent\":%" PRIu64
           ",\"received\":%" PRIu64 ",",
           rate, duration_s, realtime ? "true" : "false", p.next, p.received);
    print_ms("rttMs", p.rtt, false);
    print_ms("sendLateMs", p.late, false);
    printf("\"processes\":{");
    print_proc("pinger", getpid(), &me0, &me1, false);
    print_proc("echoer", child, &ch0, &ch1, true);
    printf("}}\n");

    uv_close((uv_handle_t *)&p.udp, NULL);
    uv_close((uv_handle_t *)&p.tpoll, NULL);
    uv_run(&p.loop, UV_RUN_DEFAULT);
    close(p.tfd);
    rc = uv_loop_close(&p.loop) == 0 ? 0 : 1;
    free(p.sent_ns);
    free(p.rtt);
    free(p.late);
    return rc;
}
