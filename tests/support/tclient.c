/* Blocking HTTP/1.1 test client: non-blocking sockets driven by poll(2) so that
 * every step has a bound, parsing just enough of a response (status line,
 * Content-Length, Connection) for tests. */
#include "tclient.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for `events` on fd until deadline; 0, or -ETIMEDOUT. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

int tclient_connect(struct tclient *c, const char *addr, int timeout_ms)
{
    c->fd = -1;
    c->len = 0;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
    if (!addr)
        return -EINVAL;
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof(ss));
    bool is_unix = strchr(addr, '/') != NULL;
    if (is_unix) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;
        if (strlen(addr) >= sizeof(un->sun_path))
            return -ENAMETOOLONG;
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, addr);
        sl = sizeof(*un);
    } else {
        const char *colon = strrchr(addr, ':');
        if (!colon || colon == addr || (size_t)(colon - addr) >= 64)
            return -EINVAL;
        char host[64];
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end || port <= 0 || port > 65535)
            return -EINVAL;
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        if (strcmp(host, "localhost") == 0)
            strcpy(host, "127.0.0.1");
        if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
            return -EINVAL;
        sl = sizeof(*in);
    }
    int fd = socket(is_unix ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (!is_unix) {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    long long deadline = now_ms() + c->timeout_ms;
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
        int e = errno;
        if (e != EINPROGRESS && e != EAGAIN) {
            close(fd);
            return -e;
        }
        int rv = wait_fd(fd, POLLOUT, deadline);
        if (rv < 0) {
            close(fd);
            return rv;
        }
        int err = 0;
        socklen_t el = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
            err = errno;
        if (err) {
            close(fd);
            return -err;
        }
    }
    c->fd = fd;
    return 0;
}

int tclient_send_raw(struct tclient *c, const void *data, size_t len)
{
    if (c->fd < 0)
        return -EBADF;
    const char *p = data;
    long long deadline = now_ms() + c->timeout_ms;
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rv = wait_fd(c->fd, POLLOUT, deadline);
            if (rv < 0)
                return rv;
            continue;
        }
        return n < 0 ? -errno : -EPIPE;
    }
    return 0;
}

/* Reads more bytes into c->buf. Returns bytes read, 0 on EOF, or -errno. */
static int fill(struct tclient *c, long long deadline)
{
    if (c->len == sizeof(c->buf))
        return -ENOBUFS;
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
        if (n >= 0) {
            c->len += (size_t)n;
            return (int)n;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rv = wait_fd(c->fd, POLLIN, deadline);
        if (rv < 0)
            return rv;
    }
}

static void consume(struct tclient *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Finds header `name` in a NUL-terminated head; returns a pointer to its
 * (untrimmed) value and its length through vlen. */
static const char *find_header(const char *head, const char *name, size_t *vlen)
{
    size_t n = strlen(name);
    const char *line = strstr(head, "\r\n");
    while (line) {
        line += 2;
        const char *eol = strstr(line, "\r\n");
        if (!eol)
            eol = line + strlen(line);
        if ((size_t)(eol - line) > n && line[n] == ':' && strncasecmp(line, name, n) == 0) {
            const char *v = line + n + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *e = eol;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            *vlen = (size_t)(e - v);
            return v;
        }
        line = *eol ? eol : NULL;
    }
    return NULL;
}

bool tclient_header(const struct tclient_resp *r, const char *name, char *out, size_t out_cap)
{
    size_t vlen;
    const char *v = find_header(r->head, name, &vlen);
    if (!v || vlen + 1 > out_cap)
        return false;
    memcpy(out, v, vlen);
    out[vlen] = '\0';
    return true;
}

int tclient_read_response(struct tclient *c, bool head_request, struct tclient_resp *r,
                          char *body_buf, size_t body_cap)
{
    memset(r, 0, sizeof(*r));
    if (body_buf && body_cap)
        body_buf[0] = '\0';
    if (c->fd < 0)
        return -EBADF;
    long long deadline = now_ms() + c->timeout_ms;
    size_t head_len = 0;
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end) {
            head_len = (size_t)(end - c->buf) + 4;
            break;
        }
        if (c->len > TCLIENT_HEAD_MAX)
            return -EPROTO;
        int n = fill(c, deadline);
        if (n < 0)
            return n;
        if (n == 0)
            return c->len ? -EPROTO : -ECONNRESET;
    }
    if (head_len - 2 > TCLIENT_HEAD_MAX)
        return -EPROTO;
    memcpy(r->head, c->buf, head_len - 2);
    r->head[head_len - 2] = '\0';
    int major, minor, status;
    if (sscanf(r->head, "HTTP/%d.%d %d", &major, &minor, &status) != 3 || status < 100 ||
        status > 999)
        return -EPROTO;
    r->status = status;
    consume(c, head_len);

    char val[64];
    if (tclient_header(r, "Transfer-Encoding", val, sizeof(val)) && strcasecmp(val, "identity"))
        return -EPROTONOSUPPORT;
    if (tclient_header(r, "Connection", val, sizeof(val)) && strcasecmp(val, "close") == 0)
        r->server_close = true;
    bool no_body = head_request || status == 204 || status == 304 || status < 200;
    bool to_eof = false;
    size_t want = 0;
    if (!no_body) {
        if (tclient_header(r, "Content-Length", val, sizeof(val))) {
            char *e;
            unsigned long long v = strtoull(val, &e, 10);
            if (*e || val[0] == '\0' || val[0] == '-')
                return -EPROTO;
            want = (size_t)v;
        } else {
            to_eof = true;
            r->server_close = true;
        }
    }
    size_t got = 0;
    for (;;) {
        size_t take = c->len;
        if (!to_eof && take > want - got)
            take = want - got;
        if (body_buf && body_cap > 1 && got < body_cap - 1) {
            size_t room = body_cap - 1 - got;
            memcpy(body_buf + got, c->buf, take < room ? take : room);
        }
        got += take;
        consume(c, take);
        if (!to_eof && got == want)
            break;
        int n = fill(c, deadline);
        if (n < 0)
            return n;
        if (n == 0) {
            if (to_eof)
                break;
            return -ECONNRESET;
        }
    }
    r->body_len = got;
    if (body_buf && body_cap) {
        size_t k = got < body_cap - 1 ? got : body_cap - 1;
        body_buf[k] = '\0';
        r->truncated = got > body_cap - 1;
    } else {
        r->truncated = got > 0;
    }
    if (r->server_close)
        tclient_close(c);
    return 0;
}

int tclient_request(struct tclient *c, const char *method, const char *path, const char *headers,
                    const char *body, size_t body_len, struct tclient_resp *r, char *body_buf,
                    size_t body_cap)
{
    if (!method || !path || c->fd < 0)
        return c->fd < 0 ? -EBADF : -EINVAL;
    char head[16384];
    const char *hdrs = headers ? headers : "";
    bool has_ct = false;
    for (const char *p = hdrs; *p; p++) {
        if ((p == hdrs || p[-1] == '\n') && strncasecmp(p, "content-type:", 13) == 0)
            has_ct = true;
    }
    int n;
    if (body)
        n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: test\r\nContent-Length: %zu\r\n%s%s\r\n", method,
                     path, body_len, has_ct ? "" : "Content-Type: application/json\r\n", hdrs);
    else
        n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: test\r\n%s\r\n", method, path,
                     hdrs);
    if (n < 0 || (size_t)n >= sizeof(head))
        return -EINVAL;
    int rv = tclient_send_raw(c, head, (size_t)n);
    if (rv == 0 && body && body_len)
        rv = tclient_send_raw(c, body, body_len);
    if (rv < 0)
        return rv;
    return tclient_read_response(c, strcmp(method, "HEAD") == 0, r, body_buf, body_cap);
}

int tclient_wait_closed(struct tclient *c, int timeout_ms)
{
    if (c->fd < 0)
        return 0;
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        char b[512];
        ssize_t n = recv(c->fd, b, sizeof(b), 0);
        if (n == 0)
            return 0;
        if (n > 0)
            return -EPROTO;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return 0; /* reset counts as closed */
        int rv = wait_fd(c->fd, POLLIN, deadline);
        if (rv < 0)
            return rv;
    }
}

void tclient_close(struct tclient *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->len = 0;
}

int tclient_fetch(const char *addr, int timeout_ms, const char *method, const char *path,
                  const char *headers, const char *body, size_t body_len, struct tclient_resp *r,
                  char *body_buf, size_t body_cap)
{
    struct tclient *c = malloc(sizeof(*c));
    if (!c)
        return -ENOMEM;
    int rv = tclient_connect(c, addr, timeout_ms);
    if (rv == 0)
        rv = tclient_request(c, method, path, headers, body, body_len, r, body_buf, body_cap);
    tclient_close(c);
    free(c);
    return rv;
}
