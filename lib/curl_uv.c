/* libcurl multi <-> libuv glue (see curl_uv.h). Follows the shape of curl's
 * docs/examples/multi-uv.c with the fixes that matter on this machine
 * (DEPENDENCIES.md §3): curl's 0 ms timeout stays 0 (a 1 ms timer costs ~1 ms
 * per request at low concurrency), info messages are drained after every
 * socket_action, poll errors become CURL_CSELECT_ERR, and nothing here calls
 * curl from inside curl's own callbacks. Knows nothing about HTTP semantics. */
#include "lib/curl_uv.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "lib/container.h"

#define CURL_UV_MAGIC 0x43555631u /* "CUV1" */
#define CU_SOCK_MAGIC 0x43555353u /* "CUSS" */

/* One watched socket. Pooled: taken when curl first reports a socket, returned
 * to the free list in the poll handle's close callback (never earlier: libuv
 * owns the handle until then). */
struct cu_sock {
    uint32_t magic;
    struct curl_uv *cu;
    uv_poll_t poll;
    curl_socket_t fd;
    struct cu_sock *prev, *next; /* live list, or free list (next only) */
};

struct curl_uv {
    uint32_t magic;
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    curl_uv_done_cb *done;
    void *done_arg;
    struct cu_sock *live;     /* sockets with an open poll handle */
    struct cu_sock *free_sks; /* closed poll handles, ready for reuse */
    bool closing;             /* curl_uv_close() called: no more curl calls */
    bool cleaning;            /* inside curl_multi_cleanup(): ignore callbacks */
    unsigned pending_closes;  /* uv_close callbacks still to come (sockets + timer) */
    curl_uv_closed_cb *closed_cb;
    void *closed_arg;
    struct curl_uv_stats stats;
};

static pthread_once_t cu_global_once = PTHREAD_ONCE_INIT;
static CURLcode cu_global_rc = CURLE_FAILED_INIT;

static void cu_global_init_once(void)
{
    cu_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int curl_uv_global_init(void)
{
    pthread_once(&cu_global_once, cu_global_init_once);
    return cu_global_rc == CURLE_OK ? 0 : -EIO;
}

void curl_uv_global_cleanup(void)
{
    if (cu_global_rc == CURLE_OK)
        curl_global_cleanup();
}

static int cu_errno(CURLMcode mc)
{
    switch (mc) {
    case CURLM_OK:
        return 0;
    case CURLM_OUT_OF_MEMORY:
        return -ENOMEM;
    case CURLM_BAD_HANDLE:
    case CURLM_BAD_EASY_HANDLE:
    case CURLM_ADDED_ALREADY:
        return -EINVAL;
    case CURLM_RECURSIVE_API_CALL:
        return -EDEADLK;
    default:
        return -EIO;
    }
}

/* Reports finished transfers. Runs only after curl_multi_socket_action (or in
 * curl_uv_collect), so the done callback may call back into curl. The message
 * is copied before the handle is removed: remove_handle invalidates it. */
static void cu_drain(struct curl_uv *cu)
{
    CURLMsg *msg;
    int left;
    while (!cu->closing && (msg = curl_multi_info_read(cu->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        CURLMcode mc = curl_multi_remove_handle(cu->multi, easy);
        assert(mc == CURLM_OK);
        (void)mc;
        cu->stats.transfers--;
        cu->stats.completions++;
        cu->done(cu->done_arg, easy, result);
    }
}

static void cu_action(struct curl_uv *cu, curl_socket_t fd, int ev_bitmask)
{
    int running;
    cu->stats.socket_actions++;
    /* Errors here are CURLM_BAD_SOCKET (a socket already gone: harmless) or
     * out of memory inside curl; either way the affected transfers finish with
     * an error through the info queue, so there is nothing else to do. */
    (void)curl_multi_socket_action(cu->multi, fd, ev_bitmask, &running);
    cu_drain(cu);
}

static void on_poll_event(uv_poll_t *h, int status, int events)
{
    struct cu_sock *sk = container_of(h, struct cu_sock, poll);
    assert(sk->magic == CU_SOCK_MAGIC);
    struct curl_uv *cu = sk->cu;
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    /* sk may be closed by curl's socket callback during the action: only cu
     * (which outlives every poll handle) is used from here on. */
    cu_action(cu, sk->fd, flags);
}

static void on_curl_timer(uv_timer_t *t)
{
    struct curl_uv *cu = container_of(t, struct curl_uv, timer);
    assert(cu->magic == CURL_UV_MAGIC);
    cu_action(cu, CURL_SOCKET_TIMEOUT, 0);
}

static void cu_maybe_finish(struct curl_uv *cu)
{
    if (cu->pending_closes != 0)
        return;
    struct cu_sock *sk = cu->free_sks;
    while (sk != NULL) {
        struct cu_sock *next = sk->next;
        free(sk);
        sk = next;
    }
    curl_uv_closed_cb *cb = cu->closed_cb;
    void *arg = cu->closed_arg;
    cu->magic = 0;
    free(cu);
    if (cb != NULL)
        cb(arg);
}

static void on_sock_closed(uv_handle_t *h)
{
    struct cu_sock *sk = container_of((uv_poll_t *)h, struct cu_sock, poll);
    assert(sk->magic == CU_SOCK_MAGIC);
    struct curl_uv *cu = sk->cu;
    sk->next = cu->free_sks;
    cu->free_sks = sk;
    assert(cu->pending_closes > 0);
    cu->pending_closes--;
    if (cu->closing)
        cu_maybe_finish(cu);
}

static void cu_sock_unlink(struct curl_uv *cu, struct cu_sock *sk)
{
    if (sk->prev != NULL)
        sk->prev->next = sk->next;
    else
        cu->live = sk->next;
    if (sk->next != NULL)
        sk->next->prev = sk->prev;
    sk->prev = sk->next = NULL;
}

/* Closes the poll handle while the fd is still curl's (curl reports REMOVE
 * before it closes a socket): uv_close() deregisters the fd from epoll at once,
 * so a later reuse of the fd number by anyone is unaffected. */
static void cu_sock_close(struct curl_uv *cu, struct cu_sock *sk)
{
    cu_sock_unlink(cu, sk);
    cu->stats.sockets--;
    cu->pending_closes++;
    uv_close((uv_handle_t *)&sk->poll, on_sock_closed);
}

static struct cu_sock *cu_sock_open(struct curl_uv *cu, curl_socket_t fd)
{
    struct cu_sock *sk = cu->free_sks;
    if (sk != NULL) {
        cu->free_sks = sk->next;
    } else {
        sk = malloc(sizeof(*sk));
        if (sk == NULL)
            return NULL;
        sk->magic = CU_SOCK_MAGIC;
        sk->cu = cu;
    }
    if (uv_poll_init_socket(cu->loop, &sk->poll, fd) != 0) {
        sk->next = cu->free_sks;
        cu->free_sks = sk;
        return NULL;
    }
    sk->fd = fd;
    sk->prev = NULL;
    sk->next = cu->live;
    if (cu->live != NULL)
        cu->live->prev = sk;
    cu->live = sk;
    cu->stats.sockets++;
    cu->stats.polls_opened++;
    return sk;
}

/* CURLMOPT_SOCKETFUNCTION: called from inside curl. Only libuv calls here. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct curl_uv *cu = userp;
    struct cu_sock *sk = socketp;
    assert(cu->magic == CURL_UV_MAGIC);
    (void)easy;
    if (cu->cleaning)
        return 0; /* poll handles were closed before curl_multi_cleanup */
    cu->stats.socket_cbs++;
    if (what == CURL_POLL_REMOVE) {
        if (sk != NULL) {
            assert(sk->magic == CU_SOCK_MAGIC && sk->fd == fd);
            cu_sock_close(cu, sk);
            curl_multi_assign(cu->multi, fd, NULL);
        }
        return 0;
    }
    if (sk == NULL) {
        sk = cu_sock_open(cu, fd);
        if (sk == NULL)
            return -1; /* curl fails the transfers on this socket */
        curl_multi_assign(cu->multi, fd, sk);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    if (uv_poll_start(&sk->poll, events, on_poll_event) != 0)
        return -1;
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: called from inside curl, so it only arms the timer.
 * 0 stays 0: libuv runs a 0 ms timer on the next loop iteration, which is the
 * "as soon as possible, but not from in here" that curl asks for. */
static int on_curl_timeout(CURLM *multi, long timeout_ms, void *userp)
{
    struct curl_uv *cu = userp;
    assert(cu->magic == CURL_UV_MAGIC);
    (void)multi;
    if (cu->cleaning || cu->closing)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&cu->timer);
    else
        uv_timer_start(&cu->timer, on_curl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

struct curl_uv *curl_uv_new(uv_loop_t *loop, curl_uv_done_cb *done, void *arg)
{
    assert(loop != NULL && done != NULL);
    if (curl_uv_global_init() != 0)
        return NULL;
    struct curl_uv *cu = calloc(1, sizeof(*cu));
    if (cu == NULL)
        return NULL;
    cu->magic = CURL_UV_MAGIC;
    cu->loop = loop;
    cu->done = done;
    cu->done_arg = arg;
    cu->multi = curl_multi_init();
    if (cu->multi == NULL)
        goto out_free;
    if (curl_multi_setopt(cu->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
        curl_multi_setopt(cu->multi, CURLMOPT_SOCKETDATA, cu) != CURLM_OK ||
        curl_multi_setopt(cu->multi, CURLMOPT_TIMERFUNCTION, on_curl_timeout) != CURLM_OK ||
        curl_multi_setopt(cu->multi, CURLMOPT_TIMERDATA, cu) != CURLM_OK)
        goto out_multi;
    if (uv_timer_init(loop, &cu->timer) != 0)
        goto out_multi;
    return cu;
out_multi:
    curl_multi_cleanup(cu->multi);
out_free:
    free(cu);
    return NULL;
}

CURLM *curl_uv_multi(struct curl_uv *cu)
{
    assert(cu->magic == CURL_UV_MAGIC);
    return cu->multi;
}

int curl_uv_add(struct curl_uv *cu, CURL *easy)
{
    assert(cu->magic == CURL_UV_MAGIC);
    if (cu->closing)
        return -ECANCELED;
    int rv = cu_errno(curl_multi_add_handle(cu->multi, easy));
    if (rv == 0)
        cu->stats.transfers++;
    return rv;
}

int curl_uv_remove(struct curl_uv *cu, CURL *easy)
{
    assert(cu->magic == CURL_UV_MAGIC);
    if (cu->closing)
        return -ECANCELED;
    int rv = cu_errno(curl_multi_remove_handle(cu->multi, easy));
    if (rv == 0)
        cu->stats.transfers--;
    return rv;
}

void curl_uv_collect(struct curl_uv *cu)
{
    assert(cu->magic == CURL_UV_MAGIC);
    cu_drain(cu);
}

void curl_uv_stats(const struct curl_uv *cu, struct curl_uv_stats *out)
{
    assert(cu->magic == CURL_UV_MAGIC);
    *out = cu->stats;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct curl_uv *cu = container_of((uv_timer_t *)h, struct curl_uv, timer);
    assert(cu->magic == CURL_UV_MAGIC && cu->pending_closes > 0);
    cu->pending_closes--;
    cu_maybe_finish(cu);
}

void curl_uv_close(struct curl_uv *cu, curl_uv_closed_cb *cb, void *arg)
{
    assert(cu->magic == CURL_UV_MAGIC && !cu->closing);
    assert(cu->stats.transfers == 0); /* the caller removes its transfers first */
    cu->closing = true;
    cu->closed_cb = cb;
    cu->closed_arg = arg;
    /* Poll handles first, while their fds are still open (see cu_sock_close);
     * then the multi handle, which closes the cached connections and would
     * report REMOVE for sockets whose handles are already closing. */
    while (cu->live != NULL)
        cu_sock_close(cu, cu->live);
    cu->pending_closes++;
    uv_close((uv_handle_t *)&cu->timer, on_timer_closed);
    cu->cleaning = true;
    curl_multi_cleanup(cu->multi);
    cu->multi = NULL;
}
