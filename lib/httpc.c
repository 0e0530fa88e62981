/* Asynchronous HTTP client (see httpc.h): a fixed pool of curl easy handles,
 * each with its own request-body and response-body buffers, driven by one
 * curl_uv multi. This file holds the client policy (options on every transfer,
 * outcome classification, the pool, deferred teardown); curl_uv.c only moves
 * events between libuv and libcurl. It knows nothing about payments. */
#include "lib/httpc.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "lib/curl_uv.h"

#define HTTPC_MAGIC 0x48545043u /* "HTPC" */
#define HREQ_MAGIC 0x48524551u  /* "HREQ" */

enum hreq_state {
    HREQ_FREE = 0, /* in the free list */
    HREQ_ACTIVE,   /* added to the multi, transfer running */
    HREQ_DEFERRED, /* finished or aborted during httpc_close, callback pending */
};

/* One pooled request slot. The response buffer stays untouched from completion
 * until the next transfer on this slot actually starts (reset in on_prereq),
 * so the body handed to a callback stays valid even if the callback reuses the
 * slot at once with httpc_request(). */
struct hreq {
    uint32_t magic;
    enum hreq_state state;
    struct httpc *c;
    CURL *easy;
    struct hreq *next; /* free list or deferred list */
    httpc_done_cb *cb;
    void *arg;
    uint64_t start_ns;       /* uv_hrtime() at httpc_request() */
    bool prereq_called;      /* curl reached the point of sending the request */
    bool truncated;          /* response body longer than max_resp_body */
    char *req_body;          /* max_req_body bytes */
    char *resp;              /* max_resp_body + 1 bytes */
    size_t resp_len;         /* <= max_resp_body */
    struct curl_slist *hdrs; /* user headers + "Expect:", reused while unchanged */
    CURLcode result;         /* HREQ_DEFERRED: curl's result */
    bool aborted;            /* HREQ_DEFERRED: removed by httpc_close, not finished */
    char errbuf[CURL_ERROR_SIZE];
};

struct httpc {
    uint32_t magic;
    uv_loop_t *loop;
    struct httpc_config cfg;
    struct curl_uv *cu;
    struct hreq *reqs; /* cfg.max_handles slots */
    char *bufs;        /* every slot's buffers, one allocation */
    struct hreq *free_list;
    struct hreq *deferred_head, *deferred_tail;
    unsigned in_flight; /* slots not free */
    bool closing;
    uv_timer_t defer_timer; /* delivers httpc_close's callbacks from the loop */
    httpc_closed_cb *closed_cb;
    void *closed_arg;
    struct httpc_stats stats;
};

#define HTTPC_EXPECT_NONE "Expect:" /* never wait for 100-continue */

void httpc_config_default(struct httpc_config *cfg)
{
    cfg->max_handles = 256;
    cfg->max_host_conns = 256;
    cfg->max_req_body = 1024;
    cfg->max_resp_body = 4096;
}

/* CURLOPT_WRITEFUNCTION: keeps the first max_resp_body bytes, drops the rest
 * (returning the full size so that curl does not fail the transfer). */
static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct hreq *r = userdata;
    size_t n = size * nmemb;
    size_t room = r->c->cfg.max_resp_body - r->resp_len;
    size_t k = n < room ? n : room;
    memcpy(r->resp + r->resp_len, ptr, k);
    r->resp_len += k;
    if (k < n)
        r->truncated = true;
    return n;
}

/* CURLOPT_PREREQFUNCTION: curl calls it in its DO state, on an established (or
 * reused) connection, immediately before it writes the request. Until it has
 * been called, no byte of this request has left the process: that is the proof
 * behind HTTPC_NOT_SENT. Called again if curl retries on a fresh connection;
 * the flag then simply stays set. */
static int on_prereq(void *clientp, char *conn_primary_ip, char *conn_local_ip,
                     int conn_primary_port, int conn_local_port)
{
    struct hreq *r = clientp;
    (void)conn_primary_ip, (void)conn_local_ip, (void)conn_primary_port, (void)conn_local_port;
    assert(r->magic == HREQ_MAGIC && r->state == HREQ_ACTIVE);
    r->prereq_called = true;
    r->resp_len = 0;
    r->truncated = false;
    return CURL_PREREQFUNC_OK;
}

/* Outcome of a finished transfer. NOT_SENT needs proof that the request never
 * left: the prereq callback was never reached, so the transfer failed while
 * resolving or connecting (CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT,
 * or CURLE_OPERATION_TIMEDOUT during connect). The curl code alone is not
 * proof: on a reused connection that dies before any response byte, curl
 * retries the request on a new connection, and if that connect fails the code
 * is CURLE_COULDNT_CONNECT although the first copy may have been processed. */
static enum httpc_outcome classify(const struct hreq *r, CURLcode rc, bool aborted)
{
    if (!aborted && rc == CURLE_OK)
        return HTTPC_OK;
    if (!r->prereq_called)
        return HTTPC_NOT_SENT;
    return HTTPC_UNKNOWN;
}

static void release(struct httpc *c, struct hreq *r)
{
    r->state = HREQ_FREE;
    r->cb = NULL;
    r->arg = NULL;
    r->next = c->free_list;
    c->free_list = r;
    assert(c->in_flight > 0);
    c->in_flight--;
}

/* Builds the result, returns the slot to the pool, then calls the user. The
 * slot is free before the callback so that the callback can issue the next
 * request even with a pool of one; body and error stay valid meanwhile (body:
 * see struct hreq; error: copied to this stack frame). */
static void deliver(struct httpc *c, struct hreq *r, CURLcode rc, bool aborted)
{
    char err[CURL_ERROR_SIZE];
    struct httpc_result res = {.outcome = classify(r, rc, aborted), .body = "", .error = ""};
    res.elapsed_us = (uv_hrtime() - r->start_ns) / 1000;
    if (res.outcome == HTTPC_OK) {
        long status = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        res.status = (int)status;
        r->resp[r->resp_len] = '\0';
        res.body = r->resp;
        res.body_len = r->resp_len;
        c->stats.ok++;
        if (r->truncated)
            c->stats.truncated++;
    } else {
        const char *msg = aborted             ? "aborted by httpc_close"
                          : r->errbuf[0] != 0 ? r->errbuf
                                              : curl_easy_strerror(rc);
        size_t n = strnlen(msg, sizeof(err) - 1);
        memcpy(err, msg, n);
        err[n] = '\0';
        res.error = err;
        if (res.outcome == HTTPC_NOT_SENT)
            c->stats.not_sent++;
        else
            c->stats.unknown++;
        if (rc == CURLE_OPERATION_TIMEDOUT)
            c->stats.timeouts++;
        if (aborted)
            c->stats.aborted++;
    }
    httpc_done_cb *cb = r->cb;
    void *arg = r->arg;
    release(c, r);
    cb(arg, &res);
}

static void defer(struct httpc *c, struct hreq *r, CURLcode rc, bool aborted)
{
    r->state = HREQ_DEFERRED;
    r->result = rc;
    r->aborted = aborted;
    r->next = NULL;
    if (c->deferred_tail != NULL)
        c->deferred_tail->next = r;
    else
        c->deferred_head = r;
    c->deferred_tail = r;
}

static void on_transfer_done(void *arg, CURL *easy, CURLcode rc)
{
    struct httpc *c = arg;
    char *priv = NULL;
    assert(c->magic == HTTPC_MAGIC);
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    struct hreq *r = (struct hreq *)(void *)priv;
    assert(r != NULL && r->magic == HREQ_MAGIC && r->state == HREQ_ACTIVE && r->easy == easy);
    if (c->closing)
        defer(c, r, rc, false); /* finished before httpc_close could abort it */
    else
        deliver(c, r, rc, false);
}

/* Options that never change for a slot. */
static int hreq_setup(struct httpc *c, struct hreq *r)
{
    CURL *e = r->easy;
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_PRIVATE, (void *)r);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_WRITEFUNCTION, on_write);
    SET(CURLOPT_WRITEDATA, (void *)r);
    SET(CURLOPT_PREREQFUNCTION, on_prereq);
    SET(CURLOPT_PREREQDATA, (void *)r);
    SET(CURLOPT_ERRORBUFFER, r->errbuf);
    SET(CURLOPT_PROTOCOLS_STR, "http");
    SET(CURLOPT_PROXY, ""); /* ignore http_proxy & co. from the environment */
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
#undef SET
    (void)c;
    return rc == CURLE_OK ? 0 : -ENOMEM;
}

struct httpc *httpc_new(uv_loop_t *loop, const struct httpc_config *cfg)
{
    assert(loop != NULL && cfg != NULL);
    if (cfg->max_handles == 0 || cfg->max_resp_body == SIZE_MAX)
        return NULL;
    struct httpc *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->magic = HTTPC_MAGIC;
    c->loop = loop;
    c->cfg = *cfg;
    size_t per = cfg->max_req_body + cfg->max_resp_body + 1;
    c->reqs = calloc(cfg->max_handles, sizeof(*c->reqs));
    c->bufs = malloc(per * cfg->max_handles);
    if (c->reqs == NULL || c->bufs == NULL)
        goto out_free;
    c->cu = curl_uv_new(loop, on_transfer_done, c);
    if (c->cu == NULL)
        goto out_free;
    CURLM *m = curl_uv_multi(c->cu);
    /* The connection cache must hold at least one connection per slot, or
     * connections are closed and reopened under load (DEPENDENCIES.md §3). */
    if (curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)cfg->max_handles) != CURLM_OK ||
        curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)cfg->max_host_conns) != CURLM_OK)
        goto out_cu;
    for (unsigned i = 0; i < cfg->max_handles; i++) {
        struct hreq *r = &c->reqs[i];
        r->magic = HREQ_MAGIC;
        r->c = c;
        r->req_body = c->bufs + per * i;
        r->resp = r->req_body + cfg->max_req_body;
        r->resp[0] = '\0';
        r->easy = curl_easy_init();
        if (r->easy == NULL || hreq_setup(c, r) != 0)
            goto out_easy;
        r->next = c->free_list;
        c->free_list = r;
    }
    if (uv_timer_init(loop, &c->defer_timer) != 0)
        goto out_easy;
    return c;
out_easy:
    for (unsigned i = 0; i < cfg->max_handles; i++)
        curl_easy_cleanup(c->reqs[i].easy); /* NULL-safe */
out_cu:
    curl_uv_close(c->cu, NULL, NULL); /* frees itself on the next loop run */
out_free:
    free(c->bufs);
    free(c->reqs);
    free(c);
    return NULL;
}

/* True when the slot's cached header list is exactly headers + "Expect:". */
static bool headers_same(const struct curl_slist *l, const char *const *headers)
{
    if (headers != NULL) {
        for (; *headers != NULL; headers++, l = l->next) {
            if (l == NULL || strcmp(l->data, *headers) != 0)
                return false;
        }
    }
    return l != NULL && l->next == NULL && strcmp(l->data, HTTPC_EXPECT_NONE) == 0;
}

/* Allocates only when the header set differs from this slot's previous
 * request; callers that always send the same headers pay once per slot. */
static int set_headers(struct hreq *r, const char *const *headers)
{
    if (r->hdrs != NULL && headers_same(r->hdrs, headers))
        return 0;
    struct curl_slist *l = NULL;
    for (const char *const *h = headers; h != NULL && *h != NULL; h++) {
        struct curl_slist *n = curl_slist_append(l, *h);
        if (n == NULL)
            goto out_nomem;
        l = n;
    }
    struct curl_slist *n = curl_slist_append(l, HTTPC_EXPECT_NONE);
    if (n == NULL)
        goto out_nomem;
    l = n;
    if (curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, l) != CURLE_OK)
        goto out_nomem;
    curl_slist_free_all(r->hdrs); /* no transfer refers to it any more */
    r->hdrs = l;
    return 0;
out_nomem:
    curl_slist_free_all(l);
    return -ENOMEM;
}

enum hmethod { HM_GET = 0, HM_POST, HM_PUT };

static int set_request(struct hreq *r, enum hmethod m, const char *url, size_t body_len,
                       unsigned timeout_ms)
{
    CURL *e = r->easy;
    CURLcode rc = curl_easy_setopt(e, CURLOPT_URL, url);
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    if (m == HM_GET) {
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else {
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)body_len);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->req_body);
    }
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m == HM_PUT ? "PUT" : NULL);
    if (rc == CURLE_OUT_OF_MEMORY)
        return -ENOMEM;
    return rc == CURLE_OK ? 0 : -EINVAL;
}

int httpc_request(struct httpc *c, const char *method, const char *url, const char *const *headers,
                  const char *body, size_t body_len, unsigned timeout_ms, httpc_done_cb *cb,
                  void *arg)
{
    if (c == NULL || method == NULL || url == NULL || cb == NULL || timeout_ms == 0 ||
        (body == NULL && body_len != 0))
        return -EINVAL;
    assert(c->magic == HTTPC_MAGIC);
    if (c->closing)
        return -ECANCELED;
    enum hmethod m;
    if (strcmp(method, "GET") == 0)
        m = HM_GET;
    else if (strcmp(method, "POST") == 0)
        m = HM_POST;
    else if (strcmp(method, "PUT") == 0)
        m = HM_PUT;
    else
        return -EINVAL;
    if (m == HM_GET && body_len != 0)
        return -EINVAL;
    if (strncasecmp(url, "http://", 7) != 0 || url[7] == '\0')
        return -EINVAL;
    if (body_len > c->cfg.max_req_body)
        return -EMSGSIZE;
    struct hreq *r = c->free_list;
    if (r == NULL) {
        c->stats.rejected_busy++;
        return -EAGAIN;
    }
    assert(r->magic == HREQ_MAGIC && r->state == HREQ_FREE);
    if (body_len != 0)
        memcpy(r->req_body, body, body_len);
    int rv = set_headers(r, headers);
    if (rv == 0)
        rv = set_request(r, m, url, body_len, timeout_ms);
    if (rv != 0)
        return rv;
    r->prereq_called = false;
    r->errbuf[0] = '\0';
    r->cb = cb;
    r->arg = arg;
    r->start_ns = uv_hrtime();
    r->state = HREQ_ACTIVE;
    c->free_list = r->next;
    c->in_flight++;
    rv = curl_uv_add(c->cu, r->easy);
    if (rv != 0) {
        release(c, r);
        return rv;
    }
    c->stats.requests++;
    return 0;
}

unsigned httpc_in_flight(const struct httpc *c)
{
    assert(c->magic == HTTPC_MAGIC);
    return c->in_flight;
}

void httpc_stats(const struct httpc *c, struct httpc_stats *out)
{
    assert(c->magic == HTTPC_MAGIC);
    struct curl_uv_stats cs;
    curl_uv_stats(c->cu, &cs);
    *out = c->stats;
    out->sockets_watched = cs.polls_opened;
    out->in_flight = c->in_flight;
}

/* Teardown, step 4: the timer is closed; free everything, tell the owner. */
static void on_defer_timer_closed(uv_handle_t *h)
{
    struct httpc *c = h->data;
    assert(c->magic == HTTPC_MAGIC);
    httpc_closed_cb *cb = c->closed_cb;
    void *arg = c->closed_arg;
    free(c->bufs);
    free(c->reqs);
    c->magic = 0;
    free(c);
    if (cb != NULL)
        cb(arg);
}

/* Teardown, step 3: the multi handle and its sockets are gone. */
static void on_cu_closed(void *arg)
{
    struct httpc *c = arg;
    assert(c->magic == HTTPC_MAGIC);
    c->cu = NULL;
    for (unsigned i = 0; i < c->cfg.max_handles; i++) {
        curl_easy_cleanup(c->reqs[i].easy);
        c->reqs[i].easy = NULL;
        curl_slist_free_all(c->reqs[i].hdrs);
        c->reqs[i].hdrs = NULL;
    }
    c->defer_timer.data = c;
    uv_close((uv_handle_t *)&c->defer_timer, on_defer_timer_closed);
}

/* Teardown, step 2, from the loop: deliver every pending callback, then close
 * the multi. A callback that calls httpc_request() gets -ECANCELED. */
static void on_defer_timer(uv_timer_t *t)
{
    struct httpc *c = (struct httpc *)((char *)t - offsetof(struct httpc, defer_timer));
    assert(c->magic == HTTPC_MAGIC && c->closing);
    while (c->deferred_head != NULL) {
        struct hreq *r = c->deferred_head;
        c->deferred_head = r->next;
        if (c->deferred_head == NULL)
            c->deferred_tail = NULL;
        deliver(c, r, r->result, r->aborted);
    }
    assert(c->in_flight == 0);
    curl_uv_close(c->cu, on_cu_closed, c);
}

/* Teardown, step 1 (may run inside a request callback): collect what curl has
 * already finished, abort the rest, and leave the callbacks to the loop. */
void httpc_close(struct httpc *c, httpc_closed_cb *cb, void *arg)
{
    assert(c != NULL && c->magic == HTTPC_MAGIC && !c->closing);
    c->closing = true;
    c->closed_cb = cb;
    c->closed_arg = arg;
    curl_uv_collect(c->cu);
    for (unsigned i = 0; i < c->cfg.max_handles; i++) {
        struct hreq *r = &c->reqs[i];
        if (r->state != HREQ_ACTIVE)
            continue;
        int rv = curl_uv_remove(c->cu, r->easy);
        assert(rv == 0);
        (void)rv;
        defer(c, r, CURLE_ABORTED_BY_CALLBACK, true);
    }
    uv_timer_start(&c->defer_timer, on_defer_timer, 0, 0);
}
