/* A stranger on the pair's network against a real pair with a shared key
 * (issue 11's attacks on the peer links, docs/SECURITY.md): forged and
 * replayed heartbeats, from its own address, from the peer's spoofed address
 * and from the dead peer's squatted port; a stranger subscribing to a node's
 * stream or asking its rep port for a snapshot; stranger connections held
 * through a kill; forged events and a forged purge from a squatter on the
 * dialled address. After each, both nodes' books equal the processors' and
 * the pair still converges. Also: a pair refuses to start without a key, and
 * PEER_INSECURE=1 says loudly what it gives up.
 * The raw-socket parts (watching the pair's datagrams, spoofing the peer's
 * address) need CAP_NET_RAW; without it they are skipped with a message and
 * the rest still runs. TOPO_PORT_BASE/TOPO_PORT_SPAN choose where the
 * nodes' nng and gossip ports are picked (default 20000/12000). */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "lib/clock.h"
#include "lib/seal.h"
#include "lib/uuid.h"
#include "proto/catchup.h"
#include "proto/heartbeat.h"
#include "proto/repl.h"
#include "rawnet.h"
#include "tclient.h"
#include "topo.h"

#ifndef PAYNODE_BIN
#define PAYNODE_BIN "/nonexistent/paynode"
#endif

#define PAIR_KEY_MATERIAL "test_attacks pair key: 32 bytes or more, not secret"
#define WRONG_KEY_MATERIAL "a stranger's guess at the pair key, 32+ bytes"
#define NO_ANSWER_MS 1500 /* a stranger's request waits this long for an answer */

static struct topo_sim def, fb;
static struct seal_key wrong_key;

struct pair {
    struct topo_node node[2];
    int nng[2], gossip[2];
    uint64_t spawned_ns[2]; /* wall clock just before each node's start */
};

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int setup_all(void **state)
{
    srand((unsigned)getpid());
    assert_int_equal(seal_global_init(), 0);
    assert_int_equal(seal_key_derive(&wrong_key, WRONG_KEY_MATERIAL, strlen(WRONG_KEY_MATERIAL)),
                     0);
    topo_sims_start(&def, &fb, "test_attacks");
    return 0;
}

static int teardown_all(void **state)
{
    topo_sims_stop(&def, &fb);
    return 0;
}

static int reset_sims(void **state)
{
    topo_sims_reset(&def, &fb);
    return 0;
}

/* ---- the pair ------------------------------------------------------------ */

static void node_start(struct pair *pr, int i)
{
    char id[32], lis[64], peer[64], glis[64], gpeer[64], log[64];
    int j = 1 - i;
    snprintf(id, sizeof(id), "NODE_ID=%d", i + 1);
    snprintf(lis, sizeof(lis), "NNG_LISTEN=tcp://127.0.0.1:%d", pr->nng[i]);
    snprintf(peer, sizeof(peer), "PEER_NNG_URL=tcp://127.0.0.1:%d", pr->nng[j]);
    snprintf(glis, sizeof(glis), "GOSSIP_LISTEN=127.0.0.1:%d", pr->gossip[i]);
    snprintf(gpeer, sizeof(gpeer), "PEER_GOSSIP=127.0.0.1:%d", pr->gossip[j]);
    snprintf(log, sizeof(log), "test_attacks.node%d.log", i + 1);
    const char *env[] = {id, lis, peer, glis, gpeer, "PEER_KEY=" PAIR_KEY_MATERIAL, NULL};
    pr->spawned_ns[i] = wall_ns();
    topo_node_start(&pr->node[i], &def, &fb, env, log);
}

static void pair_start(struct pair *pr)
{
    memset(pr, 0, sizeof(*pr));
    for (int i = 0; i < 2; i++) {
        pr->nng[i] = topo_free_port_pair();
        pr->gossip[i] = topo_free_port_pair();
    }
    node_start(pr, 0);
    node_start(pr, 1);
    topo_node_wait_ready(&pr->node[0], 200);
    topo_node_wait_ready(&pr->node[1], 200);
    topo_sleep_ms(300); /* gossip sees both alive: POSTs then wait for acks */
}

static void pair_stop(struct pair *pr)
{
    for (int i = 0; i < 2; i++)
        assert_int_equal(topo_node_stop(&pr->node[i]), 0);
}

static void kill_node(struct pair *pr, int i)
{
    kill(pr->node[i].proc.pid, SIGKILL);
    assert_int_equal(proc_wait_exit(&pr->node[i].proc, 5000), 128 + SIGKILL);
}

/* Polls until the metric reaches at least want (or timeout); returns the last value. */
static int64_t wait_metric(const struct topo_node *n, const char *name, int64_t want,
                           int timeout_ms)
{
    int64_t t0 = topo_now_ms(), v;
    while ((v = topo_metric(n, name)) < want && topo_now_ms() - t0 < timeout_ms)
        topo_sleep_ms(50);
    return v;
}

#define M_UNAUTH "paynode_peer_unauthentic_total"
#define M_G_FOREIGN "paynode_gossip_dropped_total{reason=\"foreign\"}"
#define M_G_UNAUTH "paynode_gossip_dropped_total{reason=\"unauthentic\"}"
#define M_G_STALE "paynode_gossip_dropped_total{reason=\"stale\"}"
#define M_G_RECEIVED "paynode_gossip_heartbeats_received_total"

static void assert_all_agree(const struct pair *pr, const bool alive[2])
{
    struct topo_counts theirs, ours;
    assert_int_equal(topo_sims_summary(&def, &fb, INT64_MIN, INT64_MAX, &theirs), 0);
    for (int i = 0; i < 2; i++) {
        if (!alive[i])
            continue;
        assert_int_equal(topo_node_summary(pr->node[i].addr, INT64_MIN, INT64_MAX, &ours), 0);
        for (int p = 0; p < 2; p++) {
            if (ours.count[p] != theirs.count[p] || ours.cents[p] != theirs.cents[p])
                fail_msg("node %d processor %d: %" PRId64 "/%" PRId64 " vs %" PRId64 "/%" PRId64,
                         i + 1, p, ours.count[p], ours.cents[p], theirs.count[p], theirs.cents[p]);
        }
    }
}

static const bool BOTH[2] = {true, true};
static const bool NODE2_ONLY[2] = {false, true};

static int64_t fallback_count(void)
{
    struct topo_counts theirs;
    assert_int_equal(topo_sims_summary(&def, &fb, INT64_MIN, INT64_MAX, &theirs), 0);
    return theirs.count[1];
}

/* Posts n payments to the given nodes in turn (mask bit i: node i); every
 * one must get a 2xx. Ids go to ids (may be NULL). */
static void post_payments(const struct pair *pr, unsigned mask, int n, const char *amount,
                          char (*ids)[37])
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        char id[37];
        topo_uuid(id);
        while (!(mask & (1u << (k % 2))))
            k++;
        assert_int_equal(topo_post_payment(pr->node[k % 2].addr, id, amount) / 100, 2);
        k++;
        if (ids)
            memcpy(ids[i], id, 37);
    }
}

/* The pair converges: new payments on both nodes land on both, and both
 * nodes' books equal the processors'. */
static void assert_converges(const struct pair *pr)
{
    int64_t before = topo_node_total(pr->node[0].addr);
    assert_int_equal(topo_node_total(pr->node[1].addr), before);
    post_payments(pr, 3, 20, "2.50", NULL);
    for (int i = 0; i < 2; i++)
        assert_int_equal(topo_wait_total(pr->node[i].addr, before + 20, 10000), before + 20);
    topo_sleep_ms(200);
    assert_all_agree(pr, BOTH);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(topo_metric(&pr->node[i], "paynode_peer_alive"), 1);
        assert_int_equal(topo_metric(&pr->node[i], "paynode_peer_keyed"), 1);
    }
}

/* ---- forgeries ----------------------------------------------------------- */

/* A heartbeat claiming to be node 1's: plain, or sealed with the wrong key
 * (sender 1, seal counter ctr) when key is not NULL. Its health view says the
 * default is failing, its digest that node 1 has a million events. */
static size_t forge_heartbeat(uint8_t *out, size_t cap, uint64_t inc, uint64_t ctr,
                              const struct seal_key *key)
{
    struct heartbeat hb;
    memset(&hb, 0, sizeof(hb));
    hb.node_id = 1;
    hb.checker_id = 1;
    hb.flags = HEARTBEAT_F_READY;
    hb.incarnation = inc;
    hb.counter = ctr;
    hb.last_seq[0] = 1000000;
    hb.health[0] = (struct heartbeat_health){.valid = true, .failing = true};
    hb.health[1] = (struct heartbeat_health){.valid = true, .failing = false};
    uint8_t plain[HEARTBEAT_WIRE_LEN];
    assert_int_equal(heartbeat_encode(&hb, plain, sizeof(plain)), HEARTBEAT_WIRE_LEN);
    if (!key) {
        assert_true(cap >= sizeof(plain));
        memcpy(out, plain, sizeof(plain));
        return sizeof(plain);
    }
    struct seal_tx tx;
    seal_tx_init(&tx, key, 1, SEAL_CH_UDP, inc);
    tx.counter = ctr - 1;
    int n = seal_wrap(&tx, plain, sizeof(plain), out, cap);
    assert_true(n > 0);
    return (size_t)n;
}

/* A batch claiming to be node 1's (incarnation inc, events from first_seq):
 * two payments RECORDED for 2^62 cents each, then PURGED(2^64 - 1). Plain,
 * or sealed with key on the stream channel. */
static size_t forge_batch(uint8_t *out, size_t cap, uint64_t inc, uint64_t first_seq,
                          const struct seal_key *key, uint64_t seal_ctr)
{
    static uint8_t plain[4096];
    struct repl_writer w;
    struct repl_batch h = {.sender_id = 1, .incarnation = inc};
    assert_int_equal(repl_writer_init(&w, plain, sizeof(plain), &h), 0);
    uint64_t seq = first_seq;
    int64_t now = clock_wall_ms();
    for (int k = 0; k < 2; k++) {
        struct event ev = {.origin = 1, .amount_cents = INT64_C(1) << 62, .at_ms = now};
        for (int b = 0; b < 16; b++)
            ev.id[b] = (uint8_t)rand();
        ev.type = EVENT_ACCEPTED;
        ev.seq = seq++;
        assert_int_equal(repl_writer_add(&w, &ev), 0);
        ev.type = EVENT_SENDING;
        ev.seq = seq++;
        assert_int_equal(repl_writer_add(&w, &ev), 0);
        ev.type = EVENT_RECORDED;
        ev.seq = seq++;
        assert_int_equal(repl_writer_add(&w, &ev), 0);
    }
    struct event purge = {.type = EVENT_PURGED, .origin = 1, .seq = seq, .epoch = UINT64_MAX};
    assert_int_equal(repl_writer_add(&w, &purge), 0);
    size_t len = repl_writer_finish(&w);
    if (!key) {
        assert_true(cap >= len);
        memcpy(out, plain, len);
        return len;
    }
    struct seal_tx tx;
    seal_tx_init(&tx, key, 1, SEAL_CH_STREAM, inc);
    tx.counter = seal_ctr - 1;
    int n = seal_wrap(&tx, plain, len, out, cap);
    assert_true(n > 0);
    return (size_t)n;
}

/* A UDP socket of the stranger's, bound to 127.0.0.1:port (0: any port). */
static int stranger_udp(int port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rv = -1;
    for (int i = 0; i < 100 && rv != 0; i++) {
        rv = bind(fd, (struct sockaddr *)&a, sizeof(a));
        if (rv != 0)
            topo_sleep_ms(20);
    }
    assert_int_equal(rv, 0);
    return fd;
}

static void udp_send(int fd, int port, const uint8_t *data, size_t len)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(sendto(fd, data, len, 0, (struct sockaddr *)&to, sizeof(to)), (ssize_t)len);
}

static uint64_t get_u64_be(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Node 1's real sealed heartbeats to node 2, as a stranger watching the
 * network would see them. Returns how many (0 without CAP_NET_RAW). */
enum { CAPTURE_MAX = 16 };
static int capture_heartbeats(const struct pair *pr, struct rawnet_dgram *out)
{
    struct rawnet_capture c;
    int rv = rawnet_capture_start(&c, pr->gossip[0], pr->gossip[1], 256);
    if (rv != 0) {
        print_message("no packet socket (%s): the replay parts are skipped\n", strerror(-rv));
        return 0;
    }
    topo_sleep_ms(1000);
    rawnet_capture_stop(&c);
    int n = 0;
    size_t seen = atomic_load(&c.count);
    for (size_t i = 0; i < seen && i < c.cap && n < CAPTURE_MAX; i++) {
        const struct rawnet_dgram *d = &c.dgrams[i];
        if (d->src_port == pr->gossip[0] && d->len == HEARTBEAT_WIRE_LEN + SEAL_OVERHEAD &&
            d->data[0] == SEAL_MAGIC)
            out[n++] = *d;
    }
    rawnet_capture_release(&c);
    assert_true(n > 0); /* an idle pair sends ~10 heartbeats a second */
    return n;
}

/* ---- 1. forged heartbeats ----------------------------------------------- */

/* Node 2 hears forged heartbeats "from node 1": a new incarnation (a forged
 * restart would make it take over node 1's payments), node 1's incarnation
 * with a huge counter (node 1's real ones would then be stale for good), a
 * health view saying the default fails (payments would move to the
 * fallback); plain and sealed with a wrong key; from the stranger's own port,
 * spoofed from node 1's address, and, once node 1 is killed, from node 1's
 * squatted port together with replays of node 1's real datagrams. */
static void test_forged_heartbeats(void **state)
{
    struct pair pr;
    pair_start(&pr);
    post_payments(&pr, 3, 10, "1.00", NULL);
    for (int i = 0; i < 2; i++)
        assert_int_equal(topo_wait_total(pr.node[i].addr, 10, 5000), 10);

    static struct rawnet_dgram real[CAPTURE_MAX];
    int nreal = capture_heartbeats(&pr, real);
    /* Node 1's incarnation is in the clear in every sealed header; without
     * the capture, its start time is a close guess. */
    uint64_t inc1 = nreal > 0 ? get_u64_be(real[0].data + 4) : pr.spawned_ns[0];
    uint64_t huge = UINT64_C(1) << 62;

    const struct topo_node *n2 = &pr.node[1];
    int64_t foreign0 = topo_metric(n2, M_G_FOREIGN), unauth0 = topo_metric(n2, M_G_UNAUTH);
    int64_t takeovers0 = topo_metric(n2, "paynode_peer_takeovers_total");
    int stranger = stranger_udp(0);
    bool spoofing = true;
    int sent_foreign = 0, sent_spoofed = 0;
    uint8_t dg[HEARTBEAT_WIRE_LEN + SEAL_OVERHEAD];
    for (int round = 0; round < 10; round++) {
        struct {
            uint64_t inc, ctr;
            const struct seal_key *key;
        } forged[] = {
            {inc1 + 1000000000u + (uint64_t)round, 1, NULL}, /* a restart */
            {inc1, huge + (uint64_t)round, NULL},            /* a huge counter */
            {inc1 + 1000000000u + (uint64_t)round, 1, &wrong_key},
            {inc1, huge + (uint64_t)round, &wrong_key},
        };
        for (size_t f = 0; f < sizeof(forged) / sizeof(forged[0]); f++) {
            size_t len =
                forge_heartbeat(dg, sizeof(dg), forged[f].inc, forged[f].ctr, forged[f].key);
            udp_send(stranger, pr.gossip[1], dg, len);
            sent_foreign++;
            if (spoofing) {
                int rv = rawnet_udp_spoof(pr.gossip[0], pr.gossip[1], dg, len);
                if (rv != 0) {
                    print_message("no raw socket (%s): spoofing skipped\n", strerror(-rv));
                    spoofing = false;
                } else {
                    sent_spoofed++;
                }
            }
        }
        /* Node 1's own datagrams, replayed: from elsewhere, and as if from it. */
        for (int r = 0; r < nreal; r++) {
            udp_send(stranger, pr.gossip[1], real[r].data, real[r].len);
            sent_foreign++;
            if (spoofing &&
                rawnet_udp_spoof(pr.gossip[0], pr.gossip[1], real[r].data, real[r].len) == 0)
                sent_spoofed++;
        }
        topo_sleep_ms(30);
    }
    topo_sleep_ms(300);
    /* Node 1 is still node 2's live peer, its real heartbeats still count,
     * nothing was taken over, one node polls the processors. */
    int64_t rx = topo_metric(n2, M_G_RECEIVED);
    topo_sleep_ms(500);
    assert_true(topo_metric(n2, M_G_RECEIVED) > rx + 2);
    assert_int_equal(topo_metric(n2, "paynode_peer_alive"), 1);
    assert_int_equal(topo_metric(n2, "paynode_peer_takeovers_total"), takeovers0);
    assert_int_equal(topo_metric(&pr.node[0], "paynode_health_checker") +
                         topo_metric(n2, "paynode_health_checker"),
                     1);
    /* Payments still go to the default and wait for the peer's ack. */
    post_payments(&pr, 2, 10, "1.00", NULL);
    for (int i = 0; i < 2; i++)
        assert_int_equal(topo_wait_total(pr.node[i].addr, 20, 5000), 20);
    assert_int_equal(fallback_count(), 0);
    assert_int_equal(topo_metric(n2, "paynode_peer_replies_unacked_total"), 0);
    assert_all_agree(&pr, BOTH);
    /* Every datagram was dropped: by address, or (spoofed) by the seal. */
    assert_int_equal(topo_metric(n2, M_G_FOREIGN) - foreign0, sent_foreign);
    assert_int_equal(topo_metric(n2, M_G_UNAUTH) - unauth0, sent_spoofed);

    /* Node 1 dies; the stranger takes its UDP port and speaks from there. */
    kill_node(&pr, 0);
    close(stranger);
    int squat = stranger_udp(pr.gossip[0]);
    unauth0 = topo_metric(n2, M_G_UNAUTH);
    int64_t stale0 = topo_metric(n2, M_G_STALE);
    int64_t t0 = topo_now_ms();
    int posted = 0, replayed_after_dead = 0;
    for (int round = 0; topo_now_ms() - t0 < 3000; round++) {
        size_t len = forge_heartbeat(dg, sizeof(dg), inc1 + 2000000000u + (uint64_t)round, 1, NULL);
        udp_send(squat, pr.gossip[1], dg, len);
        len = forge_heartbeat(dg, sizeof(dg), inc1, huge + 100 + (uint64_t)round, NULL);
        udp_send(squat, pr.gossip[1], dg, len);
        len = forge_heartbeat(dg, sizeof(dg), inc1 + 2000000000u + (uint64_t)round, 1, &wrong_key);
        udp_send(squat, pr.gossip[1], dg, len);
        len = forge_heartbeat(dg, sizeof(dg), inc1, huge + 100 + (uint64_t)round, &wrong_key);
        udp_send(squat, pr.gossip[1], dg, len);
        for (int r = 0; r < nreal; r++)
            udp_send(squat, pr.gossip[1], real[r].data, real[r].len);
        bool dead = topo_now_ms() - t0 > 1500; /* gossip's dead_ms is 1000 */
        if (dead) {
            replayed_after_dead += nreal;
            assert_int_equal(topo_metric(n2, "paynode_peer_alive"), 0);
            if (posted < 10 && round % 3 == 0) {
                post_payments(&pr, 2, 1, "1.00", NULL);
                posted++;
            }
        }
        topo_sleep_ms(50);
    }
    topo_sleep_ms(200);
    assert_int_equal(topo_metric(n2, "paynode_peer_alive"), 0);
    /* One takeover: node 1's death; no forged restart after it. */
    assert_int_equal(topo_metric(n2, "paynode_peer_takeovers_total"), takeovers0 + 1);
    /* Node 1's real datagrams, replayed after its death, are refused by the
     * seal itself (it never forgets the peer's incarnation and counters). */
    assert_true(topo_metric(n2, M_G_UNAUTH) - unauth0 >= 4 * 20 + replayed_after_dead);
    assert_int_equal(topo_metric(n2, M_G_STALE), stale0);
    assert_int_equal(topo_metric(n2, "paynode_health_checker"), 1);
    assert_int_equal(topo_wait_total(n2->addr, 20 + posted, 5000), 20 + posted);
    assert_int_equal(fallback_count(), 0);
    assert_all_agree(&pr, NODE2_ONLY);
    close(squat);

    /* Node 1 comes back with the same key: the pair converges. */
    node_start(&pr, 0);
    topo_node_wait_ready(&pr.node[0], 200);
    assert_int_equal(wait_metric(n2, "paynode_peer_alive", 1, 5000), 1);
    topo_sleep_ms(300);
    assert_converges(&pr);
    pair_stop(&pr);
}

/* ---- 2. reading the stream, asking for a snapshot ------------------------ */

static nng_socket stranger_sub(int port)
{
    nng_socket s;
    char url[64];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
    assert_int_equal(nng_sub0_open(&s), 0);
    assert_int_equal(nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, "", 0), 0);
    assert_int_equal(nng_socket_set_int(s, NNG_OPT_RECVBUF, 8192), 0);
    assert_int_equal(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 50), 0);
    assert_int_equal(nng_dial(s, url, NULL, 0), 0);
    return s;
}

struct heard {
    uint8_t *buf;
    size_t len, cap;
    int msgs, sealed; /* messages; those that start like a sealed message */
};

/* Reads what the stranger's subscription got until it stays quiet for
 * idle_ms (at most max_ms). */
static void drain_sub(nng_socket s, struct heard *h, int idle_ms, int max_ms)
{
    int64_t t0 = topo_now_ms(), last = t0;
    while (topo_now_ms() - last < idle_ms && topo_now_ms() - t0 < max_ms) {
        nng_msg *m;
        if (nng_recvmsg(s, &m, 0) != 0)
            continue;
        last = topo_now_ms();
        size_t len = nng_msg_len(m);
        const uint8_t *b = nng_msg_body(m);
        h->msgs++;
        h->sealed += len >= SEAL_OVERHEAD && b[0] == SEAL_MAGIC && b[1] == SEAL_VERSION;
        if (h->len + len > h->cap) {
            h->cap = (h->len + len) * 2;
            h->buf = realloc(h->buf, h->cap);
            assert_non_null(h->buf);
        }
        memcpy(h->buf + h->len, b, len);
        h->len += len;
        nng_msg_free(m);
    }
}

/* Sends one request to a node's rep port from a stranger's REQ socket and
 * asserts that no answer comes within NO_ANSWER_MS. */
static void assert_no_answer(int rep_port, const uint8_t *req, size_t len)
{
    nng_socket s;
    char url[64];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", rep_port);
    assert_int_equal(nng_req0_open(&s), 0);
    assert_int_equal(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, NO_ANSWER_MS), 0);
    assert_int_equal(nng_dial(s, url, NULL, 0), 0);
    assert_int_equal(nng_send(s, (void *)req, len, 0), 0);
    char *answer = NULL;
    size_t alen = 0;
    int rv = nng_recv(s, &answer, &alen, NNG_FLAG_ALLOC);
    if (rv == 0)
        nng_free(answer, alen);
    assert_int_equal(rv, NNG_ETIMEDOUT);
    nng_close(s);
}

/* A stranger subscribed to both nodes' streams while payments flow reads
 * only sealed messages: no correlationId, as text or as its 16 bytes, and
 * no amount. A stranger's snapshot or range request, plain or sealed with a
 * wrong key, gets no answer. */
static void test_stranger_reads_nothing(void **state)
{
    struct pair pr;
    pair_start(&pr);
    nng_socket sub[2] = {stranger_sub(pr.nng[0]), stranger_sub(pr.nng[1])};
    struct rawnet_capture cap;
    bool capturing = rawnet_capture_start(&cap, pr.gossip[0], pr.gossip[1], 4096) == 0;
    if (!capturing)
        print_message("no packet socket: the datagrams are not watched\n");
    enum { N = 60 };
    static char ids[N][37];
    post_payments(&pr, 3, N, "3.33", ids);
    for (int i = 0; i < 2; i++)
        assert_int_equal(topo_wait_total(pr.node[i].addr, N, 5000), N);
    struct heard h = {0};
    for (int i = 0; i < 2; i++)
        drain_sub(sub[i], &h, 500, 5000);
    if (capturing) {
        rawnet_capture_stop(&cap);
        size_t seen = atomic_load(&cap.count);
        print_message("stranger: %d stream messages, %zu bytes; %zu datagrams watched\n", h.msgs,
                      h.len, seen);
        assert_true(seen > 0);
        for (size_t i = 0; i < seen && i < cap.cap; i++) {
            const struct rawnet_dgram *d = &cap.dgrams[i];
            assert_int_equal(d->data[0], SEAL_MAGIC);
            if (h.len + d->len > h.cap) {
                h.cap = (h.len + d->len) * 2;
                h.buf = realloc(h.buf, h.cap);
                assert_non_null(h.buf);
            }
            memcpy(h.buf + h.len, d->data, d->len);
            h.len += d->len;
        }
        rawnet_capture_release(&cap);
    }
    /* It heard the stream (every event, every ack), and only sealed messages. */
    assert_true(h.msgs > 0);
    assert_int_equal(h.sealed, h.msgs);
    for (int i = 0; i < N; i++) {
        uint8_t raw[16];
        assert_int_equal(uuid_parse(ids[i], strlen(ids[i]), raw), 0);
        assert_null(memmem(h.buf, h.len, ids[i], 36));
        assert_null(memmem(h.buf, h.len, raw, 16));
    }
    uint8_t cents[8] = {0, 0, 0, 0, 0, 0, 333 >> 8, 333 & 0xff}; /* 3.33 as on the wire */
    assert_null(memmem(h.buf, h.len, cents, sizeof(cents)));
    free(h.buf);

    /* Requests to node 1's rep port: a snapshot, a range of node 1's events. */
    int64_t unauth0 = topo_metric(&pr.node[0], M_UNAUTH);
    uint8_t snap[SNAP_REQUEST_LEN], range[CATCHUP_REQUEST_LEN], sealed[128];
    struct snap_request srq = {
        .requester_id = 2, .incarnation = wall_ns(), .cursor = 0, .max_count = SNAP_MAX_RECORDS};
    struct catchup_request crq = {
        .requester_id = 2, .origin = 1, .incarnation = wall_ns(), .from_seq = 1, .max_count = 1000};
    assert_int_equal(snap_request_encode(&srq, snap, sizeof(snap)), SNAP_REQUEST_LEN);
    assert_int_equal(catchup_request_encode(&crq, range, sizeof(range)), CATCHUP_REQUEST_LEN);
    assert_no_answer(pr.nng[0] + 1, snap, sizeof(snap));
    assert_no_answer(pr.nng[0] + 1, range, sizeof(range));
    struct seal_tx tx;
    seal_tx_init(&tx, &wrong_key, 2, SEAL_CH_REQ, wall_ns());
    int n = seal_wrap(&tx, snap, sizeof(snap), sealed, sizeof(sealed));
    assert_true(n > 0);
    assert_no_answer(pr.nng[0] + 1, sealed, (size_t)n);
    n = seal_wrap(&tx, range, sizeof(range), sealed, sizeof(sealed));
    assert_true(n > 0);
    assert_no_answer(pr.nng[0] + 1, sealed, (size_t)n);
    assert_int_equal(topo_metric(&pr.node[0], M_UNAUTH) - unauth0, 4);

    assert_all_agree(&pr, BOTH);
    assert_converges(&pr);
    for (int i = 0; i < 2; i++)
        nng_close(sub[i]);
    pair_stop(&pr);
}

/* ---- 3. stranger connections held through a kill ------------------------ */

/* A quiet stranger listening where node 2 dials node 1 (pub and rep). */
struct squatter {
    nng_socket pub, rep;
};

static void squat_nng(struct squatter *s, int pub_port)
{
    char url[64];
    assert_int_equal(nng_pub0_open(&s->pub), 0);
    assert_int_equal(nng_rep0_open(&s->rep), 0);
    nng_socket all[2] = {s->pub, s->rep};
    for (int k = 0; k < 2; k++) {
        snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", pub_port + k);
        int rv = -1;
        for (int i = 0; i < 100 && rv != 0; i++) {
            rv = nng_listen(all[k], url, NULL, 0);
            if (rv != 0)
                topo_sleep_ms(20);
        }
        assert_int_equal(rv, 0);
    }
}

static void squat_close(struct squatter *s)
{
    nng_close(s->pub);
    nng_close(s->rep);
}

/* Strangers hold subscriptions to both nodes' streams, node 1 is killed with
 * payments in flight to the (slow) default, and a stranger then listens on
 * node 1's ports, so node 2's dialler is connected to something: node 2
 * still takes over, and every 2xx'd payment is recorded exactly once. */
static void test_stranger_connections_do_not_block_takeover(void **state)
{
    struct pair pr;
    pair_start(&pr);
    nng_socket sub[2] = {stranger_sub(pr.nng[0]), stranger_sub(pr.nng[1])};
    topo_sim_set_delay(&def, 1500);
    enum { N = 20 };
    static char ids[N][37];
    post_payments(&pr, 1, N, "4.00", ids);
    topo_sleep_ms(200);
    assert_true(topo_metric(&pr.node[0], "paynode_ledger_state{state=\"sending\"}") > 0);
    assert_true(topo_metric(&pr.node[1], "paynode_peer_subscribers") >=
                2); /* node 1 and the stranger */
    kill_node(&pr, 0);
    struct squatter sq;
    squat_nng(&sq, pr.nng[0]);
    topo_sim_set_delay(&def, 0);
    const struct topo_node *n2 = &pr.node[1];
    assert_true(wait_metric(n2, "paynode_peer_takeovers_total", 1, 5000) >= 1);
    assert_true(topo_metric(n2, "paynode_peer_subscribers") >= 1); /* the stranger is still there */
    assert_int_equal(topo_wait_total(n2->addr, N, 15000), N);
    topo_sleep_ms(300);
    int lost = 0, dbl = 0;
    for (int i = 0; i < N; i++) {
        bool a = topo_sim_has(&def, ids[i]), b = topo_sim_has(&fb, ids[i]);
        lost += !a && !b;
        dbl += a && b;
    }
    print_message("%d payments in flight at the kill: lost %d, double %d; taken over %" PRId64 "\n",
                  N, lost, dbl, topo_metric(n2, "paynode_peer_taken_over_total"));
    assert_int_equal(lost, 0);
    assert_int_equal(dbl, 0);
    assert_all_agree(&pr, NODE2_ONLY);
    squat_close(&sq);

    node_start(&pr, 0);
    topo_node_wait_ready(&pr.node[0], 200);
    topo_sleep_ms(300);
    assert_converges(&pr);
    for (int i = 0; i < 2; i++)
        nng_close(sub[i]);
    pair_stop(&pr);
}

/* ---- 4. forged events and a forged purge --------------------------------- */

/* Node 1 is killed and a stranger listens on its pub address, where node 2
 * dials: it publishes batches "from node 1" (a new incarnation and node 1's
 * guessed one, seqs from 1) with payments RECORDED for 2^62 cents and
 * PURGED(2^64 - 1), plain and sealed with a wrong key, before and after node 2
 * takes node 1 for dead. Node 2's books do not move, its own purge still
 * works, and after node 1 comes back node 1's real purge empties node 2 too. */
static void test_forged_events_from_squatter(void **state)
{
    struct pair pr;
    pair_start(&pr);
    post_payments(&pr, 3, 20, "5.00", NULL);
    for (int i = 0; i < 2; i++)
        assert_int_equal(topo_wait_total(pr.node[i].addr, 20, 5000), 20);
    topo_sleep_ms(200);
    assert_all_agree(&pr, BOTH);

    const struct topo_node *n2 = &pr.node[1];
    kill_node(&pr, 0);
    struct squatter sq;
    squat_nng(&sq, pr.nng[0]);
    int64_t unauth0 = topo_metric(n2, M_UNAUTH),
            refused0 = topo_metric(n2, "paynode_peer_refused_total");
    static uint8_t msg[8192];
    int64_t t0 = topo_now_ms();
    int sent = 0;
    for (uint64_t round = 0; topo_now_ms() - t0 < 3000; round++) {
        uint64_t incs[2] = {wall_ns(), pr.spawned_ns[0]};
        for (int k = 0; k < 2; k++) {
            for (int sealed = 0; sealed < 2; sealed++) {
                size_t len = forge_batch(msg, sizeof(msg), incs[k], 1 + round * 7,
                                         sealed ? &wrong_key : NULL, round + 1);
                nng_msg *m;
                assert_int_equal(nng_msg_alloc(&m, len), 0);
                memcpy(nng_msg_body(m), msg, len);
                if (nng_sendmsg(sq.pub, m, 0) != 0)
                    nng_msg_free(m);
                else
                    sent++;
            }
        }
        topo_sleep_ms(20);
    }
    int64_t unauth = wait_metric(n2, M_UNAUTH, unauth0 + 40, 2000) - unauth0;
    print_message("squatter: %d forged batches published, %" PRId64 " refused as unauthentic\n",
                  sent, unauth);
    assert_int_equal(topo_metric(n2, "paynode_peer_alive"), 0);
    assert_int_equal(topo_node_total(n2->addr), 20);
    assert_all_agree(&pr, NODE2_ONLY);
    assert_true(unauth >= 40); /* they reached node 2, before and after it took node 1 for dead */
    assert_int_equal(topo_metric(n2, "paynode_peer_refused_total"), refused0); /* none was opened */

    /* Node 2's own purge works, and it still takes payments. */
    assert_int_equal(topo_node_purge_status(n2->addr), 200);
    topo_sim_purge(&def);
    topo_sim_purge(&fb);
    assert_int_equal(topo_node_total(n2->addr), 0);
    post_payments(&pr, 2, 5, "1.00", NULL);
    assert_int_equal(topo_wait_total(n2->addr, 5, 5000), 5);
    squat_close(&sq);

    /* Node 1 comes back: it catches up, and its real purge reaches node 2 (a
     * forged purge epoch of 2^64 - 1 would have made node 2 skip it). */
    node_start(&pr, 0);
    topo_node_wait_ready(&pr.node[0], 200);
    assert_int_equal(wait_metric(n2, "paynode_peer_alive", 1, 5000), 1);
    topo_sleep_ms(300);
    assert_int_equal(topo_wait_total(pr.node[0].addr, 5, 5000), 5);
    int64_t skipped0 = topo_metric(n2, "paynode_peer_purges_skipped_total");
    assert_int_equal(topo_node_purge_status(pr.node[0].addr), 200);
    topo_sim_purge(&def);
    topo_sim_purge(&fb);
    for (int i = 0; i < 2; i++)
        assert_int_equal(topo_wait_total(pr.node[i].addr, 0, 5000), 0);
    assert_int_equal(topo_metric(n2, "paynode_peer_purges_skipped_total"), skipped0);
    assert_converges(&pr);
    pair_stop(&pr);
}

/* ---- the key is required ------------------------------------------------- */

/* Whether a line of the log holds both a and b (b may be NULL), waiting up
 * to 5 s for it: the node may write it after it accepts connections. */
static bool log_has_line(const char *path, const char *a, const char *b)
{
    for (int tries = 0; tries < 100; tries++) {
        FILE *f = fopen(path, "r");
        char line[4096];
        bool found = false;
        while (f && !found && fgets(line, sizeof(line), f))
            found = strstr(line, a) && (!b || strstr(line, b));
        if (f)
            fclose(f);
        if (found)
            return true;
        topo_sleep_ms(50);
    }
    return false;
}

/* In pair mode, no key: exit 2 with a message naming PEER_KEY. With an
 * explicit PEER_INSECURE=1 it starts, and its log says at warn level what
 * that gives up. */
static void test_pair_needs_a_key(void **state)
{
    int nng = topo_free_port_pair(), gossip = topo_free_port_pair();
    char port[32], durl[80], furl[80], lis[64], peer[64], glis[64], gpeer[64];
    snprintf(port, sizeof(port), "SERVER_PORT=%d", proc_free_port());
    snprintf(durl, sizeof(durl), "DEFAULT_PROCESSOR_URL=%s", def.url);
    snprintf(furl, sizeof(furl), "FALLBACK_PROCESSOR_URL=%s", fb.url);
    snprintf(lis, sizeof(lis), "NNG_LISTEN=tcp://127.0.0.1:%d", nng);
    snprintf(peer, sizeof(peer), "PEER_NNG_URL=tcp://127.0.0.1:%d", nng + 2);
    snprintf(glis, sizeof(glis), "GOSSIP_LISTEN=127.0.0.1:%d", gossip);
    snprintf(gpeer, sizeof(gpeer), "PEER_GOSSIP=127.0.0.1:%d", gossip + 1);
    const char *log = "test_attacks.nokey.log";
    unlink(log);
    const char *env[] = {port,
                         durl,
                         "SERVER_HOST=127.0.0.1",
                         furl,
                         "NODE_ID=1",
                         lis,
                         peer,
                         glis,
                         gpeer,
                         "PEER_KEY=",
                         "PEER_KEY_FILE=",
                         "PEER_INSECURE=0",
                         NULL};
    const char *argv[] = {PAYNODE_BIN, NULL};
    struct proc p;
    assert_int_equal(proc_spawn(&p, (char *const *)argv, (char *const *)env, log), 0);
    assert_int_equal(proc_wait_exit(&p, 5000), 2);
    assert_true(log_has_line(log, "bad configuration", "a pair needs the shared key"));

    const char *log2 = "test_attacks.insecure.log";
    unlink(log2);
    const char *env2[] = {"NODE_ID=1",       lis, peer, glis, gpeer, "PEER_KEY=", "PEER_KEY_FILE=",
                          "PEER_INSECURE=1", NULL};
    struct topo_node n;
    topo_node_start(&n, &def, &fb, env2, log2);
    assert_true(log_has_line(log2, "\"level\":\"warn\"",
                             "PEER_INSECURE=1: the links to the peer are NOT authenticated"));
    assert_int_equal(topo_metric(&n, "paynode_peer_keyed"), 0);
    assert_int_equal(topo_node_stop(&n), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_pair_needs_a_key, reset_sims),
        cmocka_unit_test_setup(test_forged_heartbeats, reset_sims),
        cmocka_unit_test_setup(test_stranger_reads_nothing, reset_sims),
        cmocka_unit_test_setup(test_stranger_connections_do_not_block_takeover, reset_sims),
        cmocka_unit_test_setup(test_forged_events_from_squatter, reset_sims),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
