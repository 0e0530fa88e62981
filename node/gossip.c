/* UDP heartbeats, peer liveness and checker election (contract in gossip.h).
 * One uv_udp_t both sends and receives; one jittered one-shot timer drives the
 * sends, another is armed for the next liveness deadline so that SUSPECT and
 * DEAD are reported on time without polling. Sends use uv_udp_try_send: a
 * heartbeat that cannot be handed to the kernel at once is simply counted and
 * skipped, the next one follows within an interval. */
#include "node/gossip.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/container.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "proto/wire.h"

#define GOSSIP_MAGIC 0x47535350u /* "GSSP" */
#define GOSSIP_RXBUF 2048        /* larger than any valid datagram: bigger ones are truncated */
#define GOSSIP_HOST_MAX 256
#define GOSSIP_PORT_MAX 8

#define GOSSIP_CHECK(g) assert((g) != NULL && (g)->magic == GOSSIP_MAGIC)

struct gossip {
    uint32_t magic;
    uv_loop_t *loop;
    struct gossip_config cfg; /* defaults applied; string members point into the copies below */
    char listen_copy[GOSSIP_HOST_MAX + GOSSIP_PORT_MAX + 4];
    char peer_copy[GOSSIP_HOST_MAX + GOSSIP_PORT_MAX + 4];
    struct gossip_callbacks cbs;
    void *arg;

    uv_udp_t udp;
    uv_timer_t tick; /* next send */
    uv_timer_t live; /* next liveness deadline */
    uv_getaddrinfo_t gai;
    bool gai_busy;    /* gai in flight: g is freed only after its callback */
    bool gai_stale;   /* the peer address changed while gai was in flight */
    int open_handles; /* handles initialised and not closed yet */
    bool started;
    bool closing;
    gossip_close_cb *close_cb;
    void *close_arg;

    char peer_host[GOSSIP_HOST_MAX];
    char peer_port[GOSSIP_PORT_MAX];
    bool peer_numeric;  /* peer_sa fixed at start, never re-resolved */
    bool peer_resolved; /* peer_sa usable */
    struct sockaddr_storage peer_sa;
    int family; /* of the bound socket; resolution asks for it */
    uint64_t next_resolve_ms;

    uint64_t counter; /* heartbeats built by this incarnation */
    uint64_t rng;     /* xorshift64 state for the jitter */
    uint64_t start_ms;

    enum gossip_peer_state state;
    bool have_peer; /* at least one valid datagram since start */
    uint8_t peer_id;
    uint64_t peer_incarnation;
    uint64_t peer_counter;
    uint64_t last_rx_ms;     /* uv_now of the last valid datagram */
    uint64_t alive_since_ms; /* uv_now when the peer last entered ALIVE */
    bool settled;            /* peer counts as live for the election (see gossip.h) */
    bool peer_draining;      /* its last heartbeat carried HEARTBEAT_F_SHUTTING_DOWN */
    bool is_checker;
    struct heartbeat last; /* valid when have_peer */

    struct gossip_stats st;
    struct seal_tx tx; /* with cfg.key */
    struct seal_rx rx;
    uint8_t rxbuf[GOSSIP_RXBUF];
    uint8_t plain[GOSSIP_RXBUF];                      /* an opened datagram */
    uint8_t sealed[GOSSIP_FRAME_MAX + SEAL_OVERHEAD]; /* one datagram being sent */
};

static void on_tick(uv_timer_t *t);
static void on_live(uv_timer_t *t);

const char *gossip_peer_state_name(enum gossip_peer_state s)
{
    switch (s) {
    case GOSSIP_PEER_UNKNOWN:
        return "unknown";
    case GOSSIP_PEER_ALIVE:
        return "alive";
    case GOSSIP_PEER_SUSPECT:
        return "suspect";
    case GOSSIP_PEER_DEAD:
        return "dead";
    }
    return "?";
}

/* Splits "host:port" or "[v6]:port" into its parts. The port must be decimal
 * 0..65535; a bare IPv6 address without brackets is ambiguous and refused. */
static int split_hostport(const char *s, char *host, size_t host_cap, char *port, size_t port_cap)
{
    const char *h, *hend, *p;
    if (s[0] == '[') {
        h = s + 1;
        hend = strchr(h, ']');
        if (hend == NULL || hend[1] != ':')
            return -EINVAL;
        p = hend + 2;
    } else {
        hend = strrchr(s, ':');
        if (hend == NULL || memchr(s, ':', (size_t)(hend - s)) != NULL)
            return -EINVAL;
        h = s;
        p = hend + 1;
    }
    size_t hlen = (size_t)(hend - h);
    size_t plen = strlen(p);
    if (hlen >= host_cap || plen == 0 || plen > 5 || plen >= port_cap)
        return -EINVAL;
    unsigned long v = 0;
    for (size_t i = 0; i < plen; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned long)(p[i] - '0');
    }
    if (v > 65535)
        return -EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    memcpy(port, p, plen + 1);
    return 0;
}

/* Numeric address only: IPv4 first, then IPv6. */
static int numeric_addr(const char *host, int port, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0)
        return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0)
        return 0;
    return -EINVAL;
}

static uint64_t rng_next(struct gossip *g)
{
    uint64_t x = g->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    g->rng = x;
    return x;
}

static uint64_t jittered_interval(struct gossip *g)
{
    uint64_t iv = g->cfg.interval_ms;
    uint64_t pct = 90 + rng_next(g) % 21; /* 90..110 % */
    uint64_t d = iv * pct / 100;
    return d == 0 ? 1 : d;
}

struct gossip *gossip_new(uv_loop_t *loop, const struct gossip_config *cfg,
                          const struct gossip_callbacks *cbs, void *arg)
{
    assert(loop != NULL && cfg != NULL && cbs != NULL);
    if (cfg->self_id == 0 || cbs->fill == NULL || cfg->listen_addr == NULL)
        return NULL;
    struct gossip_config c = *cfg;
    if (c.interval_ms == 0)
        c.interval_ms = GOSSIP_DEFAULT_INTERVAL_MS;
    if (c.suspect_ms == 0)
        c.suspect_ms = GOSSIP_DEFAULT_SUSPECT_MS;
    if (c.dead_ms == 0)
        c.dead_ms = GOSSIP_DEFAULT_DEAD_MS;
    if (c.handback_ms == 0)
        c.handback_ms = 2 * c.interval_ms;
    if (c.suspect_ms <= c.interval_ms || c.dead_ms <= c.suspect_ms)
        return NULL;

    struct gossip *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    if (strlen(c.listen_addr) >= sizeof(g->listen_copy) ||
        (c.peer_addr != NULL && strlen(c.peer_addr) >= sizeof(g->peer_copy))) {
        free(g);
        return NULL;
    }
    g->magic = GOSSIP_MAGIC;
    g->loop = loop;
    strcpy(g->listen_copy, c.listen_addr);
    c.listen_addr = g->listen_copy;
    if (c.peer_addr != NULL) {
        strcpy(g->peer_copy, c.peer_addr);
        c.peer_addr = g->peer_copy;
    }
    g->cfg = c;
    g->cbs = *cbs;
    g->arg = arg;
    g->state = GOSSIP_PEER_UNKNOWN;
    g->is_checker = true;
    g->rng = (c.incarnation ^ ((uint64_t)c.self_id << 56) ^ 0x9e3779b97f4a7c15ull) | 1;
    if (c.key) {
        seal_tx_init(&g->tx, c.key, c.self_id, SEAL_CH_UDP, c.incarnation);
        seal_rx_init(&g->rx, c.key, c.self_id, SEAL_CH_UDP);
    }

    /* These cannot fail on a valid loop; they create no socket yet. */
    int rv = uv_udp_init(loop, &g->udp);
    assert(rv == 0);
    rv = uv_timer_init(loop, &g->tick);
    assert(rv == 0);
    rv = uv_timer_init(loop, &g->live);
    assert(rv == 0);
    (void)rv;
    g->open_handles = 3;
    return g;
}

/* Starts an asynchronous resolution of the peer's host name when one is due:
 * until the first success, and again every GOSSIP_RESOLVE_RETRY_MS while the
 * peer is not heard from (its container may come back with another address). */
static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res);

static void maybe_resolve(struct gossip *g)
{
    if (!g->started || g->peer_host[0] == '\0' || g->peer_numeric || g->gai_busy || g->closing)
        return;
    if (g->peer_resolved && (g->state == GOSSIP_PEER_ALIVE || g->state == GOSSIP_PEER_SUSPECT))
        return;
    uint64_t now = uv_now(g->loop);
    if (now < g->next_resolve_ms)
        return;
    g->next_resolve_ms = now + GOSSIP_RESOLVE_RETRY_MS;
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = g->family;
    hints.ai_socktype = SOCK_DGRAM;
    int rv = uv_getaddrinfo(g->loop, &g->gai, on_resolved, g->peer_host, g->peer_port, &hints);
    if (rv != 0) {
        log_warn("gossip", "resolve %s failed: %s", g->peer_host, uv_strerror(rv));
        return;
    }
    g->gai_busy = true;
}

static void maybe_finish_close(struct gossip *g)
{
    if (g->open_handles > 0 || g->gai_busy)
        return;
    gossip_close_cb *cb = g->close_cb;
    void *arg = g->close_arg;
    if (cb != NULL)
        cb(g, arg);
    g->magic = 0;
    free(g);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct gossip *g = container_of(req, struct gossip, gai);
    GOSSIP_CHECK(g);
    g->gai_busy = false;
    if (g->gai_stale && !g->closing) {
        g->gai_stale = false;
        g->next_resolve_ms = 0;
        if (res != NULL)
            uv_freeaddrinfo(res);
        maybe_resolve(g);
        return;
    }
    if (g->closing) {
        if (res != NULL)
            uv_freeaddrinfo(res);
        maybe_finish_close(g);
        return;
    }
    if (status != 0) {
        log_warn("gossip", "resolve %s failed: %s", g->peer_host, uv_strerror(status));
        return;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_family == g->family && ai->ai_addrlen <= sizeof(g->peer_sa)) {
            bool first = !g->peer_resolved;
            memset(&g->peer_sa, 0, sizeof(g->peer_sa));
            memcpy(&g->peer_sa, ai->ai_addr, ai->ai_addrlen);
            g->peer_resolved = true;
            if (first)
                log_info("gossip", "peer %s resolved", g->peer_host);
            break;
        }
    }
    uv_freeaddrinfo(res);
}

/* Builds and sends one heartbeat. Returns 0 or a negative errno. */
/* One datagram to the peer, sealed when there is a key. */
static int send_datagram(struct gossip *g, const uint8_t *data, size_t len)
{
    if (g->cfg.key) {
        int n = seal_wrap(&g->tx, data, len, g->sealed, sizeof(g->sealed));
        if (n < 0) {
            g->st.send_errors++;
            return n;
        }
        data = g->sealed;
        len = (size_t)n;
    }
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int rv = uv_udp_try_send(&g->udp, &b, 1, (const struct sockaddr *)&g->peer_sa);
    if (rv < 0) {
        g->st.send_errors++;
        return rv;
    }
    return 0;
}

static int send_heartbeat(struct gossip *g)
{
    if (!g->peer_resolved) {
        g->st.send_errors++;
        return -EAGAIN;
    }
    struct heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    g->cbs.fill(&hb, g->arg);
    if (g->closing)
        return -ESHUTDOWN;
    hb.node_id = g->cfg.self_id;
    hb.incarnation = g->cfg.incarnation;
    hb.counter = ++g->counter;
    hb.checker_id = g->is_checker ? g->cfg.self_id : g->peer_id;
    uint8_t buf[HEARTBEAT_WIRE_LEN];
    int n = heartbeat_encode(&hb, buf, sizeof(buf));
    if (n < 0) {
        /* Only an invalid digest from fill (unknown flag bits) gets here. */
        log_error("gossip", "encode heartbeat failed: %d", n);
        g->st.send_errors++;
        return n;
    }
    int rv = send_datagram(g, buf, (size_t)n);
    if (rv < 0)
        return rv;
    g->st.sent++;
    return 0;
}

int gossip_send_frame(struct gossip *g, const uint8_t *frame, size_t len)
{
    GOSSIP_CHECK(g);
    if (!g->started || g->closing)
        return -ESHUTDOWN;
    if (!g->peer_resolved)
        return -EAGAIN;
    if (len > GOSSIP_FRAME_MAX)
        return -EMSGSIZE;
    int rv = send_datagram(g, frame, len);
    if (rv < 0)
        return rv;
    g->st.frames_sent++;
    return 0;
}

static void update_checker(struct gossip *g)
{
    bool peer_counts =
        g->have_peer && g->settled && !g->peer_draining && g->state != GOSSIP_PEER_DEAD;
    bool c = !(peer_counts && g->peer_id < g->cfg.self_id);
    if (c == g->is_checker)
        return;
    g->is_checker = c;
    log_info("gossip", "checker is now %s (peer %u %s)", c ? "self" : "peer", g->peer_id,
             gossip_peer_state_name(g->state));
    if (g->cbs.on_checker != NULL)
        g->cbs.on_checker(c, g->arg);
}

/* Changes the liveness state without a datagram (timer path). */
static void set_state(struct gossip *g, enum gossip_peer_state s)
{
    enum gossip_peer_state old = g->state;
    if (old == s)
        return;
    g->state = s;
    /* The seal's window keeps the peer's incarnation even now: a recorded
     * datagram of an earlier process must never pass again (docs/SECURITY.md,
     * "Replays and restarts"). */
    if (s == GOSSIP_PEER_DEAD)
        g->settled = false;
    log_info("gossip", "peer %u %s -> %s", g->peer_id, gossip_peer_state_name(old),
             gossip_peer_state_name(s));
    if (g->cbs.on_peer_state != NULL)
        g->cbs.on_peer_state(old, s, false, g->arg);
    if (g->closing)
        return;
    update_checker(g);
}

static void arm_live(struct gossip *g, uint64_t delay_ms)
{
    int rv = uv_timer_start(&g->live, on_live, delay_ms == 0 ? 1 : delay_ms, 0);
    assert(rv == 0);
    (void)rv;
}

static void on_live(uv_timer_t *t)
{
    struct gossip *g = container_of(t, struct gossip, live);
    GOSSIP_CHECK(g);
    if (g->closing)
        return;
    uint64_t now = uv_now(g->loop);
    if (!g->have_peer) {
        uint64_t el = now - g->start_ms;
        if (el >= g->cfg.dead_ms)
            set_state(g, GOSSIP_PEER_DEAD);
        else
            arm_live(g, g->cfg.dead_ms - el);
        return;
    }
    uint64_t el = now - g->last_rx_ms;
    if (el >= g->cfg.dead_ms) {
        /* Always through SUSPECT, even when the loop was late for it. */
        if (g->state == GOSSIP_PEER_ALIVE)
            set_state(g, GOSSIP_PEER_SUSPECT);
        if (!g->closing)
            set_state(g, GOSSIP_PEER_DEAD);
    } else if (el >= g->cfg.suspect_ms) {
        set_state(g, GOSSIP_PEER_SUSPECT);
        if (!g->closing)
            arm_live(g, g->cfg.dead_ms - el);
    } else {
        arm_live(g, g->cfg.suspect_ms - el);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct gossip *g = container_of(t, struct gossip, tick);
    GOSSIP_CHECK(g);
    if (g->closing)
        return;
    maybe_resolve(g);
    (void)send_heartbeat(g);
    if (g->closing)
        return;
    int rv = uv_timer_start(&g->tick, on_tick, jittered_interval(g), 0);
    assert(rv == 0);
    (void)rv;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct gossip *g = container_of(h, struct gossip, udp);
    buf->base = (char *)g->rxbuf;
    buf->len = sizeof(g->rxbuf);
}

static void drop(struct gossip *g, uint64_t *counter)
{
    (*counter)++;
    g->st.dropped++;
}

static void on_datagram(struct gossip *g, const uint8_t *data, size_t len)
{
    struct heartbeat hb;
    int rv = heartbeat_decode(&hb, data, len);
    if (rv != 0) {
        drop(g, &g->st.dropped_malformed);
        log_debug("gossip", "malformed datagram dropped: %d", rv);
        return;
    }
    if (hb.node_id == g->cfg.self_id) {
        drop(g, &g->st.dropped_self);
        log_warn("gossip", "datagram with our own id %u dropped", hb.node_id);
        return;
    }
    bool restarted = false;
    if (g->have_peer) {
        if (hb.node_id != g->peer_id) {
            restarted = true;
            g->settled = false; /* another node: it has to prove itself */
        } else if (hb.incarnation != g->peer_incarnation) {
            /* An older incarnation is a late datagram of the previous process,
             * unless the current one is dead (clock stepped back at restart). */
            if (hb.incarnation < g->peer_incarnation && g->state != GOSSIP_PEER_DEAD) {
                drop(g, &g->st.dropped_stale);
                return;
            }
            restarted = true;
        } else if (hb.counter <= g->peer_counter) {
            drop(g, &g->st.dropped_stale);
            return;
        }
    }
    uint64_t now = uv_now(g->loop);
    g->st.received++;
    g->have_peer = true;
    g->peer_id = hb.node_id;
    g->peer_incarnation = hb.incarnation;
    g->peer_counter = hb.counter;
    g->last_rx_ms = now;
    g->peer_draining = (hb.flags & HEARTBEAT_F_SHUTTING_DOWN) != 0;
    g->last = hb;

    enum gossip_peer_state old = g->state;
    if (old != GOSSIP_PEER_ALIVE || (restarted && !g->settled))
        g->alive_since_ms = now;
    g->state = GOSSIP_PEER_ALIVE;
    arm_live(g, g->cfg.suspect_ms);
    if (old != GOSSIP_PEER_ALIVE || restarted) {
        log_info("gossip", "peer %u %s -> alive%s", hb.node_id, gossip_peer_state_name(old),
                 restarted ? " (restarted)" : "");
        if (g->cbs.on_peer_state != NULL)
            g->cbs.on_peer_state(old, GOSSIP_PEER_ALIVE, restarted, g->arg);
        if (g->closing)
            return;
    }
    if (!g->settled && now - g->alive_since_ms >= g->cfg.handback_ms)
        g->settled = true;
    if (g->cbs.on_peer != NULL) {
        g->cbs.on_peer(&g->last, g->arg);
        if (g->closing)
            return;
    }
    update_checker(g);
}

/* Whether addr is the peer's resolved address (family, address and port). */
static bool from_peer(const struct gossip *g, const struct sockaddr *addr)
{
    if (!g->peer_resolved || addr == NULL || addr->sa_family != g->peer_sa.ss_family)
        return false;
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)addr;
        const struct sockaddr_in *b = (const struct sockaddr_in *)&g->peer_sa;
        return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
    }
    if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)addr;
        const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)&g->peer_sa;
        return a->sin6_port == b->sin6_port &&
               memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0;
    }
    return false;
}

/* A frame that is not a heartbeat goes to the owner, if it comes from the
 * peer's address and its header holds together. Returns false when data is
 * not such a frame (then it is decoded as a heartbeat). */
static bool maybe_frame(struct gossip *g, const uint8_t *data, size_t len)
{
    uint8_t type;
    uint16_t flen;
    if (g->cbs.on_frame == NULL || wire_get_header(data, len, &type, &flen) != 0 ||
        type == WIRE_T_HEARTBEAT)
        return false;
    if (flen != len) {
        drop(g, &g->st.dropped_malformed);
        return true;
    }
    if (!g->peer_resolved) {
        drop(g, &g->st.dropped_foreign); /* no peer to come from yet */
        return true;
    }
    g->st.frames_received++;
    g->cbs.on_frame(data, len, g->arg);
    return true;
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags)
{
    struct gossip *g = container_of(h, struct gossip, udp);
    GOSSIP_CHECK(g);
    if (g->closing)
        return;
    if (nread == 0 && addr == NULL)
        return; /* nothing more to read */
    if (nread < 0 || (flags & UV_UDP_PARTIAL) != 0) {
        drop(g, &g->st.dropped_malformed);
        return;
    }
    const uint8_t *data = (const uint8_t *)buf->base;
    size_t len = (size_t)nread;
    /* Only the peer's address speaks to us, once we know it. */
    if (g->peer_resolved && !from_peer(g, addr)) {
        drop(g, &g->st.dropped_foreign);
        return;
    }
    if (g->cfg.key) {
        size_t plen = 0;
        if (seal_open(&g->rx, data, len, g->plain, sizeof(g->plain), &plen, NULL) != 0) {
            drop(g, &g->st.dropped_unauthentic);
            return;
        }
        data = g->plain;
        len = plen;
    }
    if (maybe_frame(g, data, len))
        return;
    on_datagram(g, data, len);
}

/* A parsed peer address. */
struct peer_addr {
    char host[GOSSIP_HOST_MAX];
    char port[GOSSIP_PORT_MAX];
    bool numeric;
    struct sockaddr_storage sa; /* when numeric */
};

/* Parses "host:port" for the peer; family is the bound socket's, or AF_UNSPEC
 * before the bind (then only the syntax is checked). */
static int parse_peer(const char *addr, int family, struct peer_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (split_hostport(addr, out->host, sizeof(out->host), out->port, sizeof(out->port)) != 0 ||
        out->host[0] == '\0' || atoi(out->port) == 0)
        return -EINVAL;
    if (numeric_addr(out->host, atoi(out->port), &out->sa) == 0) {
        /* An IPv4 socket cannot reach an IPv6 peer and the other way round. */
        if (family != AF_UNSPEC && out->sa.ss_family != family)
            return -EINVAL;
        out->numeric = true;
    }
    return 0;
}

static void commit_peer(struct gossip *g, const struct peer_addr *pa)
{
    memcpy(g->peer_host, pa->host, sizeof(g->peer_host));
    memcpy(g->peer_port, pa->port, sizeof(g->peer_port));
    g->peer_numeric = pa->numeric;
    g->peer_resolved = pa->numeric;
    if (pa->numeric)
        g->peer_sa = pa->sa;
    g->next_resolve_ms = 0;
    if (g->gai_busy)
        g->gai_stale = true; /* that answer is for the previous address */
    maybe_resolve(g);
}

int gossip_set_peer(struct gossip *g, const char *addr)
{
    GOSSIP_CHECK(g);
    if (addr == NULL || strlen(addr) >= sizeof(g->peer_copy) || g->closing)
        return -EINVAL;
    struct peer_addr pa;
    if (parse_peer(addr, g->started ? g->family : AF_UNSPEC, &pa) != 0)
        return -EINVAL;
    strcpy(g->peer_copy, addr);
    g->cfg.peer_addr = g->peer_copy;
    if (g->started) {
        commit_peer(g, &pa);
        log_info("gossip", "peer address now %s", g->peer_copy);
    }
    return 0;
}

int gossip_start(struct gossip *g)
{
    GOSSIP_CHECK(g);
    if (g->started || g->closing)
        return -EALREADY;
    char host[GOSSIP_HOST_MAX], port[GOSSIP_PORT_MAX];
    struct sockaddr_storage lsa;
    if (split_hostport(g->cfg.listen_addr, host, sizeof(host), port, sizeof(port)) != 0)
        return -EINVAL;
    if (host[0] == '\0' || strcmp(host, "*") == 0)
        strcpy(host, "0.0.0.0");
    if (numeric_addr(host, atoi(port), &lsa) != 0)
        return -EINVAL;
    struct peer_addr pa;
    bool have_peer_addr = g->cfg.peer_addr != NULL;
    if (have_peer_addr && parse_peer(g->cfg.peer_addr, lsa.ss_family, &pa) != 0)
        return -EINVAL;
    int rv = uv_udp_bind(&g->udp, (const struct sockaddr *)&lsa, 0);
    if (rv != 0)
        return rv;
    rv = uv_udp_recv_start(&g->udp, on_alloc, on_recv);
    if (rv != 0)
        return rv;
    g->family = lsa.ss_family;
    g->started = true;
    g->start_ms = uv_now(g->loop);
    if (have_peer_addr)
        commit_peer(g, &pa);
    rv = uv_timer_start(&g->tick, on_tick, 0, 0);
    assert(rv == 0);
    arm_live(g, g->cfg.dead_ms);
    log_info("gossip", "listening on udp port %d, peer %s, id %u", gossip_port(g),
             have_peer_addr ? g->cfg.peer_addr : "(none yet)", g->cfg.self_id);
    return 0;
}

int gossip_send_now(struct gossip *g)
{
    GOSSIP_CHECK(g);
    if (!g->started || g->closing)
        return -ESHUTDOWN;
    return send_heartbeat(g);
}

int gossip_port(const struct gossip *g)
{
    GOSSIP_CHECK(g);
    if (!g->started)
        return 0;
    struct sockaddr_storage sa;
    int len = sizeof(sa);
    if (uv_udp_getsockname(&g->udp, (struct sockaddr *)&sa, &len) != 0)
        return 0;
    if (sa.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&sa)->sin_port);
    if (sa.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
    return 0;
}

bool gossip_is_checker(const struct gossip *g)
{
    GOSSIP_CHECK(g);
    return g->is_checker;
}

enum gossip_peer_state gossip_peer_state(const struct gossip *g)
{
    GOSSIP_CHECK(g);
    return g->state;
}

const struct heartbeat *gossip_last_peer(const struct gossip *g)
{
    GOSSIP_CHECK(g);
    return g->have_peer ? &g->last : NULL;
}

void gossip_stats(const struct gossip *g, struct gossip_stats *out)
{
    GOSSIP_CHECK(g);
    *out = g->st;
}

void gossip_metrics(const struct gossip *g, struct metrics *m)
{
    GOSSIP_CHECK(g);
    const struct gossip_stats *s = &g->st;
    static const char dg[] = "Datagrams sent and received on the gossip socket (heartbeats and "
                             "fast-lane frames).";
    metrics_u64(m, "paynode_gossip_datagrams_total", dg, METRICS_COUNTER,
                (const char *[]){"dir", "out", NULL}, s->sent + s->frames_sent);
    metrics_u64(m, "paynode_gossip_datagrams_total", dg, METRICS_COUNTER,
                (const char *[]){"dir", "in", NULL}, s->received + s->frames_received);
    metrics_u64(m, "paynode_gossip_send_errors_total", "Datagrams that could not be sent.",
                METRICS_COUNTER, NULL, s->send_errors);
    metrics_u64(m, "paynode_gossip_heartbeats_received_total",
                "Valid, fresh heartbeats from the peer.", METRICS_COUNTER, NULL, s->received);
    const struct {
        const char *reason;
        uint64_t v;
    } drops[] = {
        {"malformed", s->dropped_malformed},
        {"self", s->dropped_self},
        {"stale", s->dropped_stale},
        {"foreign", s->dropped_foreign},
        {"unauthentic", s->dropped_unauthentic},
    };
    for (size_t i = 0; i < sizeof(drops) / sizeof(drops[0]); i++)
        metrics_u64(m, "paynode_gossip_dropped_total", "Datagrams dropped, by reason.",
                    METRICS_COUNTER, (const char *[]){"reason", drops[i].reason, NULL}, drops[i].v);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct gossip *g = h->data;
    GOSSIP_CHECK(g);
    assert(g->open_handles > 0);
    g->open_handles--;
    maybe_finish_close(g);
}

void gossip_close(struct gossip *g, gossip_close_cb *cb, void *arg)
{
    GOSSIP_CHECK(g);
    assert(!g->closing);
    g->closing = true;
    g->close_cb = cb;
    g->close_arg = arg;
    g->udp.data = g;
    g->tick.data = g;
    g->live.data = g;
    uv_close((uv_handle_t *)&g->udp, on_handle_closed);
    uv_close((uv_handle_t *)&g->tick, on_handle_closed);
    uv_close((uv_handle_t *)&g->live, on_handle_closed);
    if (g->gai_busy)
        (void)uv_cancel((uv_req_t *)&g->gai); /* on_resolved still runs, with UV_EAI_CANCELED */
}
