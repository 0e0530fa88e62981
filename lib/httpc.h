/* Asynchronous HTTP client on a libuv loop, over one libcurl multi handle
 * (the libcurl <-> libuv glue is in curl_uv.c; this module owns the pool of
 * easy handles and the request/response buffers). Keep-alive connection reuse,
 * per-host connection caps, a timeout on every request. No threads besides
 * curl's resolver; no allocation per request after httpc_new().
 *
 * Knows nothing about payments: callers decide what a status means.
 * One loop thread; nothing here is thread-safe. (curl itself still allocates
 * inside a transfer; what is preallocated is everything of ours.) */
#ifndef LIB_HTTPC_H
#define LIB_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct httpc_config {
    unsigned max_handles;    /* requests in flight at once (pool size); more -> -EAGAIN */
    unsigned max_host_conns; /* connections per host (0 = no cap); extra requests wait
                                inside curl, their timeout running */
    size_t max_req_body;     /* bytes; a longer body -> -EMSGSIZE */
    size_t max_resp_body;    /* bytes kept of a response body; the rest is dropped */
};

void httpc_config_default(struct httpc_config *cfg); /* 256 handles, 256/host, 1 KiB, 4 KiB */

enum httpc_outcome {
    HTTPC_OK = 0,   /* a complete HTTP response arrived (any status) */
    HTTPC_NOT_SENT, /* failed before the request could reach the server
                       (resolve/connect failure): the server did not see it */
    HTTPC_UNKNOWN,  /* failed after the request may have reached the server
                       (timeout, reset, truncated response): fate unknown */
};
/* How NOT_SENT is proven: curl calls CURLOPT_PREREQFUNCTION on an established
 * connection just before it writes the request; a transfer that failed before
 * that call never wrote a byte of it (resolve failure, refused connect, timeout
 * while connecting). Any failure after it is UNKNOWN, whatever curl's error
 * code: curl 7.88 silently retries a request once on a new connection when a
 * reused keep-alive connection closes before any response byte, so a request
 * can reach a server twice and an error such as CURLE_COULDNT_CONNECT can come
 * after a first copy was delivered. Requests with side effects must therefore
 * be idempotent at the server (the payment processors dedup correlationId). */

struct httpc_result {
    enum httpc_outcome outcome;
    int status;       /* HTTP status when outcome == HTTPC_OK, else 0 */
    const char *body; /* response body (NUL-terminated, possibly truncated); valid during
                         cb, even if cb starts another request; "" unless HTTPC_OK */
    size_t body_len;
    uint64_t elapsed_us; /* from httpc_request() to completion */
    const char *error;   /* curl's message when outcome != HTTPC_OK, else "" */
};

typedef void httpc_done_cb(void *arg, const struct httpc_result *res);

struct httpc;

/* Allocates the pool (max_handles easy handles with their buffers) and the
 * curl multi (CURLMOPT_MAXCONNECTS = max_handles, MAX_HOST_CONNECTIONS =
 * max_host_conns). Calls curl_global_init once per process (curl_uv.h).
 * Returns NULL on failure; run the loop once before closing it then. */
struct httpc *httpc_new(uv_loop_t *loop, const struct httpc_config *cfg);

/* Starts a request. method "GET"/"POST"/"PUT"; url absolute http://; headers an
 * optional NULL-terminated list of "Name: value" strings (copied); body copied
 * (may be NULL). cb is called exactly once, from the loop, never from inside
 * httpc_request(). Returns 0, -EAGAIN when all handles are busy, -EMSGSIZE,
 * -EINVAL for a bad argument, -ECANCELED after httpc_close().
 * timeout_ms (> 0) bounds the whole transfer, including any wait for a
 * connection under max_host_conns. "Expect:" is always sent empty (no
 * 100-continue wait). Each slot reuses its header list while a request brings
 * the same headers as the slot's previous one; other headers cost a malloc.
 * May be called from a cb: the slot of the request being reported is already
 * free then, so a pool of one can chain requests. */
int httpc_request(struct httpc *c, const char *method, const char *url, const char *const *headers,
                  const char *body, size_t body_len, unsigned timeout_ms, httpc_done_cb *cb,
                  void *arg) __attribute__((warn_unused_result));

unsigned httpc_in_flight(const struct httpc *c);

/* Counters since httpc_new(), for metrics. Callable any time before close. */
struct httpc_stats {
    uint64_t requests;        /* accepted by httpc_request() */
    uint64_t ok;              /* completions with HTTPC_OK */
    uint64_t not_sent;        /* completions with HTTPC_NOT_SENT */
    uint64_t unknown;         /* completions with HTTPC_UNKNOWN */
    uint64_t timeouts;        /* completions that hit timeout_ms (NOT_SENT or UNKNOWN) */
    uint64_t aborted;         /* completions forced by httpc_close() */
    uint64_t truncated;       /* HTTPC_OK responses cut at max_resp_body */
    uint64_t rejected_busy;   /* httpc_request() -> -EAGAIN */
    uint64_t sockets_watched; /* sockets newly registered with the loop by curl */
    unsigned in_flight;
};
void httpc_stats(const struct httpc *c, struct httpc_stats *out);

typedef void httpc_closed_cb(void *arg);
/* Aborts requests in flight (their callbacks run with HTTPC_UNKNOWN, or
 * HTTPC_NOT_SENT if never started), closes every handle and frees c, then
 * calls cb from the loop. Transfers that curl had already finished keep their
 * real outcome. No callback runs inside httpc_close() itself; they run on the
 * next loop iteration, where httpc_request() returns -ECANCELED. May be called
 * from a request callback. Call once. */
void httpc_close(struct httpc *c, httpc_closed_cb *cb, void *arg);

#endif
