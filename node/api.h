/* The node's HTTP API: the routes POST /payments, GET /payments-summary,
 * POST /purge-payments (behind PURGE_TOKEN when it is set), GET /healthz and
 * GET /metrics on top of lib/http. Validates input, turns it into ledger
 * events through node_emit() and answers; accepted payments go to dispatch.
 * New payments stop at the ledger's limit (node_has_room()). No routing
 * policy and no processor I/O here. Loop thread only. */
#ifndef NODE_API_H
#define NODE_API_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "node/ledger.h"

struct http_exchange;
struct http_request;
struct node;

#define API_MAGIC 0x41504921u   /* "API!" */
#define API_METRICS_FIXED 16384 /* /metrics text is ~8 KiB; beyond, it grows on the heap */

/* The API's own state; embedded in struct node, initialised by api_init(). */
struct api {
    uint32_t magic;
    struct node *node;                     /* borrowed: outlives the api */
    struct buf metrics;                    /* the /metrics text, rebuilt per request */
    char metrics_fixed[API_METRICS_FIXED]; /* its usual storage */
};

/* Binds a to n (which must outlive it). Cannot fail. */
void api_init(struct api *a, struct node *n);
/* Frees what /metrics may have grown onto the heap. */
void api_release(struct api *a);

/* The HTTP handler (an http_handler_cb): arg is the struct api. Answers every
 * request exactly once, now or (a payment's 2xx, a purge's 200) when the
 * peer has acknowledged the event. */
void api_handle(struct http_exchange *x, const struct http_request *req, void *arg);

/* Writes an exact sum of cents as a JSON number with two fraction digits
 * ("0.00", "92234000000000000.00") plus NUL into buf, which must hold
 * API_CENTS_FMT_MAX bytes; returns the length without the NUL. Pure. */
#define API_CENTS_FMT_MAX 42 /* 2^128 has 39 digits, + '.' + NUL, rounded up */
size_t api_format_cents_sum(ledger_cents_sum cents, char *buf);

/* Answers a POST /payments with its 2xx (also used for held answers). */
void api_reply_accepted(struct http_exchange *x);

#endif
