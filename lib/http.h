/* HTTP/1.1 server on a libuv loop: accepts on TCP and unix sockets, parses with
 * http-parser (keep-alive, pipelining, bodies split across reads), enforces
 * limits (header bytes -> 431, body bytes -> 413, a whole-request deadline ->
 * 408, idle timeout, connection slots) and writes responses. Knows nothing about routes: each
 * complete request goes to one handler callback, which answers now or later through http_reply*().
 * Requests on one connection are answered in order: while a request is unanswered the connection
 * reads no further requests.
 *
 * No allocation per request: connection slots and their buffers are allocated
 * once at http_server_new(). */
#ifndef LIB_HTTP_H
#define LIB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/slice.h"

enum http_verb {
    HTTP_VERB_OTHER = 0,
    HTTP_VERB_GET,
    HTTP_VERB_POST,
    HTTP_VERB_PUT,
    HTTP_VERB_DELETE,
    HTTP_VERB_HEAD
};

#define HTTP_MAX_HEADERS 24 /* headers kept per request; more are parsed but not kept */

struct http_header {
    struct slice name; /* as received; compare with http_request_header() (case-insensitive) */
    struct slice value;
};

struct http_request {
    enum http_verb verb;
    struct slice path;  /* up to '?', raw (not percent-decoded) */
    struct slice query; /* after '?', raw; empty when absent */
    struct slice body;
    struct http_header headers[HTTP_MAX_HEADERS];
    unsigned nheaders;
    bool keep_alive;
    uint64_t received_ns; /* uv_hrtime() when the request was complete */
};

/* Value of header `name` (case-insensitive), or false. */
bool http_request_header(const struct http_request *req, const char *name, struct slice *out);

/* Value of query parameter `key` in `query` (raw, not decoded), or false. An
 * empty value ("from=") is returned as an empty slice with true. */
bool http_query_param(struct slice query, const char *key, struct slice *out);

/* Percent-decodes a raw query value into out (cap bytes, NUL-terminated).
 * '+' stays '+' (query strings are not form bodies: "+00:00" must survive).
 * Returns the decoded length, or -EINVAL for a bad escape or when it does not
 * fit. */
int http_query_decode(struct slice v, char *out, size_t cap) __attribute__((warn_unused_result));

/* One request awaiting its answer. Valid from the handler call until the
 * http_reply*() that answers it; answer exactly once. If the client has gone,
 * the reply is dropped and the exchange released all the same. */
struct http_exchange;

/* The request's fields (slices) are valid only until the handler returns.
 * Copy what must outlive it. */
typedef void http_handler_cb(struct http_exchange *x, const struct http_request *req, void *arg);

struct http_server_config {
    unsigned max_conns;           /* connection slots; when full, new connections are closed */
    size_t max_header_bytes;      /* request line + headers; beyond -> 431 and close */
    size_t max_body_bytes;        /* beyond -> 413 and close; a chunk announced beyond it is
                                     refused as soon as its size line shows it */
    unsigned idle_timeout_ms;     /* an idle keep-alive connection is closed after this */
    unsigned request_deadline_ms; /* a request (line, headers, body) not wholly received
                                     this long after its first byte -> 408 and close, however
                                     steadily its bytes trickle in (slowloris); the sweep
                                     that checks it runs every quarter of the shorter of
                                     this and idle_timeout_ms (10 ms..1 s), so it fires at
                                     most that much late */
    size_t out_buf_bytes;         /* per-connection output buffer; stop reading while fuller */
};

/* Sensible defaults: 1024 conns, 8 KiB headers, 64 KiB body, 60 s idle, 10 s
 * request deadline, 64 KiB out. */
void http_server_config_default(struct http_server_config *cfg);

struct http_server;

/* Allocates all slots. Returns NULL on allocation failure or bad config.
 * Sets SIGPIPE to SIG_IGN process-wide: libuv writes with write(2), and a peer
 * that resets mid-write must not kill the process. */
struct http_server *http_server_new(uv_loop_t *loop, const struct http_server_config *cfg,
                                    http_handler_cb *cb, void *arg);

/* Starts listening. port 0 picks an ephemeral port (see http_server_port()).
 * host NULL means 0.0.0.0. Returns 0 or a negative errno (UV_E*). */
int http_server_listen_tcp(struct http_server *s, const char *host, int port)
    __attribute__((warn_unused_result));
/* Unlinks a stale socket file first, chmods 0666 after bind. */
int http_server_listen_unix(struct http_server *s, const char *path)
    __attribute__((warn_unused_result));
int http_server_port(const struct http_server *s); /* bound TCP port, or -1 */

/* Stops accepting new connections; existing ones finish their pending
 * exchanges (answers still go out) and then close. */
void http_server_stop_accepting(struct http_server *s);

/* Number of exchanges handed to the handler and not yet answered. */
unsigned http_server_pending(const struct http_server *s);

typedef void http_server_closed_cb(struct http_server *s, void *arg);
/* Closes listeners and every connection (pending exchanges are released: later
 * http_reply calls on them must not happen). In the last close callback, calls
 * cb (s may still be read during the call, not kept) and then frees s. */
void http_server_close(struct http_server *s, http_server_closed_cb *cb, void *arg);

/* Answers with status, Content-Type application/json (when body_len > 0 or
 * body != NULL, unless extra_headers has its own Content-Type), Content-Length, and Connection as
 * the request asked. extra_headers, if not NULL, is inserted verbatim and must end with "\r\n". The
 * body is copied. */
void http_reply(struct http_exchange *x, int status, const char *extra_headers, const char *body,
                size_t body_len);
/* http_reply with a NUL-terminated JSON body. */
void http_reply_json(struct http_exchange *x, int status, const char *json);
/* {"error":"<msg>"} with status. msg must need no JSON escaping. */
void http_reply_error(struct http_exchange *x, int status, const char *msg);

/* Whether the exchange's client connection is still open. */
bool http_exchange_client_open(const struct http_exchange *x);

#endif
