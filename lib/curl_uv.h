/* libcurl multi <-> libuv glue: one CURLM driven by curl_multi_socket_action,
 * one uv_poll_t per socket curl asks us to watch, one uv_timer_t for curl's
 * timeouts. Completed transfers are collected after curl_multi_socket_action
 * returns and handed to one done callback. No policy: which options the easy
 * handles carry, how results are classified and what is retried belong to the
 * caller (httpc.c). Single loop thread; no allocation per request once the
 * socket-context pool has grown to the number of sockets in use. */
#ifndef LIB_CURL_UV_H
#define LIB_CURL_UV_H

#include <stdint.h>
#include <curl/curl.h>
#include <uv.h>

struct curl_uv;

/* Called from the loop, after curl_multi_socket_action() has returned (never
 * from inside a curl callback), once per finished transfer. The easy handle has
 * already been removed from the multi handle: the callee may reuse it at once
 * (set options, curl_uv_add() it again) or clean it up. It may also call
 * curl_uv_add(), curl_uv_remove() and curl_uv_close(). */
typedef void curl_uv_done_cb(void *arg, CURL *easy, CURLcode result);
typedef void curl_uv_closed_cb(void *arg);

struct curl_uv_stats {
    uint64_t socket_actions; /* curl_multi_socket_action calls (poll + timer) */
    uint64_t socket_cbs;     /* CURLMOPT_SOCKETFUNCTION calls */
    uint64_t polls_opened;   /* uv_poll_init calls, i.e. sockets newly watched */
    uint64_t completions;    /* done callbacks made */
    unsigned sockets;        /* sockets watched right now */
    unsigned transfers;      /* easy handles in the multi right now */
};

/* curl_global_init(CURL_GLOBAL_DEFAULT), once per process, thread-safe
 * (pthread_once). curl_uv_new() calls it, so nobody else has to; main() may
 * call it early to fail fast. Returns 0 or -EIO (the result of the first call
 * is remembered). */
int curl_uv_global_init(void) __attribute__((warn_unused_result));

/* curl_global_cleanup() for the end of main(), after every curl_uv is closed
 * and the loop has stopped. Optional (it only silences leak checkers). Not
 * thread-safe; call once. */
void curl_uv_global_cleanup(void);

/* Creates the multi handle and the timer on loop. done is required. Returns
 * NULL on failure (curl global init, out of memory). Policy options (caps,
 * connection cache size) are set by the caller through curl_uv_multi(); the
 * socket and timer functions belong to this module and must not be changed. */
struct curl_uv *curl_uv_new(uv_loop_t *loop, curl_uv_done_cb *done, void *arg);

/* The multi handle, for curl_multi_setopt() of policy options only. */
CURLM *curl_uv_multi(struct curl_uv *cu);

/* Adds a configured easy handle; the transfer starts on a later loop iteration
 * (curl is never driven from inside this call, so done is never called from
 * it). Must not be called from inside a curl callback (write, header, prereq
 * ...). Returns 0, -ECANCELED after curl_uv_close(), -EINVAL (handle already
 * added, bad handle), -ENOMEM, or -EIO for any other curl error. */
int curl_uv_add(struct curl_uv *cu, CURL *easy) __attribute__((warn_unused_result));

/* Aborts a transfer in progress: removes easy from the multi without calling
 * done. Same calling rules as curl_uv_add(). Returns 0 or -EINVAL. */
int curl_uv_remove(struct curl_uv *cu, CURL *easy);

/* Collects transfers that curl has finished but not yet reported, calling done
 * for each, now. Needed only before tearing down (httpc_close) so that finished
 * transfers are reported as finished, not aborted. Same calling rules. */
void curl_uv_collect(struct curl_uv *cu);

void curl_uv_stats(const struct curl_uv *cu, struct curl_uv_stats *out);

/* Stops all loop activity, closes every watched socket's poll handle and the
 * timer, and cleans up the multi handle (closing cached connections); frees cu
 * in the last close callback, then calls cb(arg) (cb may be NULL). Every easy
 * handle must have been removed (or have completed) before: the caller still
 * owns them and cleans them up. Safe to call from the done callback. */
void curl_uv_close(struct curl_uv *cu, curl_uv_closed_cb *cb, void *arg);

#endif
