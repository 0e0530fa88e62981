/* A small BLOCKING HTTP/1.1 client for tests: TCP "host:port" or a unix socket
 * path, bounded by a timeout on every step, one connection per struct tclient
 * (keep-alive: several requests in a row, or raw pipelined bytes). Responses
 * are read by Content-Length (or to EOF when there is none); chunked
 * transfer-encoding is not supported (-EPROTONOSUPPORT). Not for production:
 * no TLS, no redirects, no 100-continue.
 *
 * Every function returns 0 or a negative errno: -ETIMEDOUT (a step exceeded
 * the timeout), -ECONNREFUSED/-ENOENT (nothing listening), -ECONNRESET or
 * -EPIPE (peer closed before a full response), -EPROTO (malformed response),
 * -EINVAL (bad arguments). */
#ifndef TESTS_SUPPORT_TCLIENT_H
#define TESTS_SUPPORT_TCLIENT_H

#include <stdbool.h>
#include <stddef.h>

#define TCLIENT_HEAD_MAX 8192   /* status line + headers of one response */
#define TCLIENT_BUF_BYTES 65536 /* read buffer; bytes of a next response stay here */

struct tclient {
    int fd;         /* -1 when closed */
    int timeout_ms; /* bound on connect and on each read/write wait */
    size_t len;     /* bytes held in buf (start of the next response) */
    char buf[TCLIENT_BUF_BYTES];
};

struct tclient_resp {
    int status;
    size_t body_len;   /* the full body length, even if it did not fit */
    bool truncated;    /* body_len > body_cap - 1: only the head of the body was copied */
    bool server_close; /* "Connection: close", or no Content-Length (read to EOF) */
    char head[TCLIENT_HEAD_MAX + 1]; /* status line and headers, NUL-terminated */
};

/* Connects to addr: "host:port" (IPv4 literal or "localhost"), or a unix socket
 * path (anything containing '/'). timeout_ms bounds the connect and every later
 * read/write wait on this connection. */
int tclient_connect(struct tclient *c, const char *addr, int timeout_ms)
    __attribute__((warn_unused_result));

/* Sends "method path HTTP/1.1" with Host, Content-Length (when body != NULL),
 * Content-Type: application/json (when body != NULL and `headers` has no
 * Content-Type), then `headers` verbatim (each line ending "\r\n"; NULL for
 * none), then body; reads the response into r and copies up to body_cap - 1
 * body bytes into body_buf, always NUL-terminated (body_buf may be NULL when
 * body_cap is 0). The connection stays open for the next request unless the
 * server closed it. */
int tclient_request(struct tclient *c, const char *method, const char *path, const char *headers,
                    const char *body, size_t body_len, struct tclient_resp *r, char *body_buf,
                    size_t body_cap) __attribute__((warn_unused_result));

/* Writes raw bytes (pipelining, malformed requests, split writes). */
int tclient_send_raw(struct tclient *c, const void *data, size_t len)
    __attribute__((warn_unused_result));

/* Reads one response (as tclient_request does after sending). A HEAD response
 * has no body: set head_request so that Content-Length is not waited for. */
int tclient_read_response(struct tclient *c, bool head_request, struct tclient_resp *r,
                          char *body_buf, size_t body_cap) __attribute__((warn_unused_result));

/* Waits until the server closes the connection: 0 on EOF or reset, -ETIMEDOUT
 * if still open after the timeout, -EPROTO if data arrives instead. */
int tclient_wait_closed(struct tclient *c, int timeout_ms) __attribute__((warn_unused_result));

/* Copies the value of response header `name` (case-insensitive), trimmed and
 * NUL-terminated, into out; false when absent or it does not fit. */
bool tclient_header(const struct tclient_resp *r, const char *name, char *out, size_t out_cap);

/* Closes the connection (idempotent). */
void tclient_close(struct tclient *c);

/* One request on a fresh connection, closed afterwards. The struct tclient
 * lives on the heap inside (64 KiB). */
int tclient_fetch(const char *addr, int timeout_ms, const char *method, const char *path,
                  const char *headers, const char *body, size_t body_len, struct tclient_resp *r,
                  char *body_buf, size_t body_cap) __attribute__((warn_unused_result));

#endif
