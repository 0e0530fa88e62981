/* A pair at capacity (issue 11, item 8): both nodes take payments at once
 * until their ledgers (LEDGER_CAPACITY 1024) are full and they answer 503.
 * Each node keeps LEDGER_RESERVE slots for the peer's payments (by default
 * min(8192, MAX_CONNS)), so every payment a node answered 2xx fits in its
 * peer's ledger too: no event is refused by the peer
 * (paynode_peer_refused_total 0), every 2xx waited for the peer's ack
 * (paynode_peer_replies_unacked_total 0), every 2xx'd payment is at a
 * processor, and both nodes' summaries equal the processors'. Run with the
 * default rule at two sizes: MAX_CONNS 64 and a tight MAX_CONNS 8. (With
 * LEDGER_RESERVE=0 instead, the same run answered 1,025 payments 2xx for a
 * ledger of 1,024: one of them was refused by the peer.) */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tclient.h"
#include "topo.h"

#define CAP_LEDGER 1024
#define CAP_CLIENTS 4      /* keep-alive connections posting to each node at once */
#define CAP_STOP_503 20    /* a client stops after this many 503s */
#define CAP_MAX_POSTS 2000 /* and in any case after this many POSTs */
#define CAP_TIMEOUT_MS 5000
#define CAP_KEY "PEER_KEY=test_capacity key: 32 bytes or more, not secret"
#define CAP_FULL_503 "{\"error\":\"ledger full: the room left is kept for the peer's payments\"}"

static struct topo_sim def, fb;

struct pair {
    struct topo_node node[2];
    int nng[2], gossip[2];
};

/* What a client saw for one POST, sent to the parent through a pipe. */
struct outcome {
    uint32_t num;   /* the payment's number (its correlationId is made from it) */
    int32_t status; /* 2xx or 503 (anything else fails the client) */
    int32_t full;   /* 503 with the ledger-full body */
};

static int setup_all(void **state)
{
    srand((unsigned)getpid());
    topo_sims_start(&def, &fb, "test_capacity");
    return 0;
}

static int teardown_all(void **state)
{
    topo_sims_stop(&def, &fb);
    return 0;
}

static void pair_start(struct pair *pr, const char *max_conns)
{
    for (int i = 0; i < 2; i++) {
        pr->nng[i] = topo_free_port_pair();
        pr->gossip[i] = topo_free_port_pair();
    }
    for (int i = 0; i < 2; i++) {
        char id[32], lis[64], peer[64], glis[64], gpeer[64], log[64];
        int j = 1 - i;
        snprintf(id, sizeof(id), "NODE_ID=%d", i + 1);
        snprintf(lis, sizeof(lis), "NNG_LISTEN=tcp://127.0.0.1:%d", pr->nng[i]);
        snprintf(peer, sizeof(peer), "PEER_NNG_URL=tcp://127.0.0.1:%d", pr->nng[j]);
        snprintf(glis, sizeof(glis), "GOSSIP_LISTEN=127.0.0.1:%d", pr->gossip[i]);
        snprintf(gpeer, sizeof(gpeer), "PEER_GOSSIP=127.0.0.1:%d", pr->gossip[j]);
        snprintf(log, sizeof(log), "test_capacity.node%d.log", i + 1);
        const char *env[] = {id,        lis, peer, glis, gpeer, CAP_KEY, "LEDGER_CAPACITY=1024",
                             max_conns, NULL};
        topo_node_start(&pr->node[i], &def, &fb, env, log);
    }
    for (int i = 0; i < 2; i++) {
        struct topo_counts c;
        int k = 0;
        while (topo_node_summary(pr->node[i].addr, INT64_MIN, INT64_MAX, &c) != 0 && k++ < 100)
            topo_sleep_ms(50);
        assert_true(k <= 100);
    }
    topo_sleep_ms(300); /* gossip sees both alive: POSTs then wait for acks */
}

/* Payment num's correlationId; parent (the test's pid) keeps runs apart. */
static void payment_id(uint32_t num, pid_t parent, char out[37])
{
    snprintf(out, 37, "%08" PRIx32 "-ca9a-4000-8000-%012x", num, (unsigned)parent & 0xffffff);
}

/* One client: POSTs payments numbered client * CAP_MAX_POSTS + k to addr on a
 * keep-alive connection until CAP_STOP_503 503s, writing each outcome to fd.
 * Returns 0, or 1 on anything but a 2xx or a 503. */
static int client_run(const char *addr, uint32_t client, pid_t parent, int fd)
{
    struct tclient *c = malloc(sizeof(*c));
    if (!c || tclient_connect(c, addr, CAP_TIMEOUT_MS) != 0)
        return 1;
    int n503 = 0;
    for (uint32_t k = 0; k < CAP_MAX_POSTS && n503 < CAP_STOP_503; k++) {
        uint32_t num = client * CAP_MAX_POSTS + k;
        char id[37], body[128], rb[256];
        payment_id(num, parent, id);
        int len = snprintf(body, sizeof(body), "{\"correlationId\":\"%s\",\"amount\":%u.%02u}", id,
                           1 + num % 97, num % 100);
        struct tclient_resp r;
        if (tclient_request(c, "POST", "/payments", NULL, body, (size_t)len, &r, rb, sizeof(rb)) !=
            0)
            return 1;
        if (r.status / 100 != 2 && r.status != 503)
            return 1;
        struct outcome o = {.num = num, .status = r.status, .full = strcmp(rb, CAP_FULL_503) == 0};
        n503 += r.status == 503;
        if (write(fd, &o, sizeof(o)) != (ssize_t)sizeof(o))
            return 1;
        if (r.server_close) {
            tclient_close(c);
            if (tclient_connect(c, addr, CAP_TIMEOUT_MS) != 0)
                return 1;
        }
    }
    tclient_close(c);
    free(c);
    return 0;
}

static void at_capacity(const char *max_conns)
{
    struct pair pr;
    pair_start(&pr, max_conns);
    int64_t reserve = topo_metric(&pr.node[0], "paynode_ledger_reserve");
    assert_true(reserve > 0);
    assert_int_equal(topo_metric(&pr.node[1], "paynode_ledger_reserve"), reserve);

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pids[2 * CAP_CLIENTS];
    pid_t parent = getpid();
    for (int k = 0; k < 2 * CAP_CLIENTS; k++) {
        pids[k] = fork();
        assert_true(pids[k] >= 0);
        if (pids[k] == 0) {
            close(fds[0]);
            _exit(client_run(pr.node[k % 2].addr, (uint32_t)k, parent, fds[1]));
        }
    }
    close(fds[1]);
    /* Read while the clients run: the pipe must not fill up. */
    static struct outcome seen[2 * CAP_CLIENTS * CAP_MAX_POSTS];
    size_t nseen = 0;
    for (;;) {
        ssize_t r = read(fds[0], &seen[nseen], sizeof(seen[0]));
        if (r == 0)
            break;
        assert_int_equal(r, sizeof(seen[0]));
        nseen++;
        assert_true(nseen < sizeof(seen) / sizeof(seen[0]));
    }
    close(fds[0]);
    for (int k = 0; k < 2 * CAP_CLIENTS; k++) {
        int st;
        assert_int_equal(waitpid(pids[k], &st, 0), pids[k]);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fail_msg("client %d got something other than 2xx or 503", k);
    }
    int64_t ok = 0, full = 0, other503 = 0;
    for (size_t i = 0; i < nseen; i++) {
        ok += seen[i].status / 100 == 2;
        full += seen[i].status == 503 && seen[i].full;
        other503 += seen[i].status == 503 && !seen[i].full;
    }
    print_message("%s: reserve %" PRId64 ", %" PRId64 " answered 2xx, %" PRId64
                  " refused (ledger full)\n",
                  max_conns, reserve, ok, full);
    assert_int_equal(other503, 0);
    assert_true(full > 0);
    /* A node refuses only once it holds capacity - reserve; all it holds
     * was answered 2xx by one of the two. */
    assert_true(ok >= CAP_LEDGER - reserve);
    assert_true(ok <= CAP_LEDGER);

    /* Both nodes hold and have recorded every 2xx'd payment, and nothing else. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(topo_wait_total(pr.node[i].addr, ok, 20000), ok);
        assert_int_equal(topo_metric(&pr.node[i], "paynode_ledger_payments"), ok);
    }
    topo_sleep_ms(100);
    struct topo_counts theirs, ours;
    assert_int_equal(topo_sims_summary(&def, &fb, INT64_MIN, INT64_MAX, &theirs), 0);
    assert_int_equal(theirs.count[0] + theirs.count[1], ok);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(topo_node_summary(pr.node[i].addr, INT64_MIN, INT64_MAX, &ours), 0);
        for (int p = 0; p < 2; p++) {
            assert_int_equal(ours.count[p], theirs.count[p]);
            assert_int_equal(ours.cents[p], theirs.cents[p]);
        }
    }
    /* Every 2xx'd payment is at a processor (so, with the counts equal,
     * nothing refused is). */
    for (size_t i = 0; i < nseen; i++) {
        if (seen[i].status / 100 != 2)
            continue;
        char id[37];
        payment_id(seen[i].num, parent, id);
        if (!topo_sim_has(&def, id) && !topo_sim_has(&fb, id))
            fail_msg("payment %s answered 2xx is at no processor", id);
    }
    /* No event refused by the peer, no 2xx without the peer's ack. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(topo_metric(&pr.node[i], "paynode_peer_refused_total"), 0);
        assert_int_equal(topo_metric(&pr.node[i], "paynode_peer_replies_unacked_total"), 0);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(topo_node_stop(&pr.node[i]), 0);
    topo_sim_purge(&def);
    topo_sim_purge(&fb);
}

static void test_at_capacity_max_conns_64(void **state)
{
    at_capacity("MAX_CONNS=64");
}

static void test_at_capacity_max_conns_8(void **state)
{
    at_capacity("MAX_CONNS=8");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_at_capacity_max_conns_64),
        cmocka_unit_test(test_at_capacity_max_conns_8),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
