/* Two nodes replicating to each other, against two processor simulators:
 * both nodes answer the same books as the processors; lost replication
 * messages are repaired; a node killed with SIGKILL while payments flow loses
 * nothing and records nothing twice, and catches up when it comes back; only
 * one node polls the processors' health. */
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
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

#include "lib/json.h"
#include "tclient.h"
#include "topo.h"

static struct topo_sim def, fb;

struct pair {
    struct topo_node node[2];
    int nng[2], gossip[2];
};

static int setup_all(void **state)
{
    srand((unsigned)getpid());
    topo_sims_start(&def, &fb, "test_pair");
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

/* The pair's shared key (PEER_KEY): the links are authenticated as deployed. */
#define PAIR_KEY "PEER_KEY=test_pair key: 32 bytes or more, not secret"

static void node_start2(struct pair *pr, int i, const char *extra, const char *extra_b)
{
    char id[32], lis[64], peer[64], glis[64], gpeer[64], log[64];
    int j = 1 - i;
    snprintf(id, sizeof(id), "NODE_ID=%d", i + 1);
    snprintf(lis, sizeof(lis), "NNG_LISTEN=tcp://127.0.0.1:%d", pr->nng[i]);
    snprintf(peer, sizeof(peer), "PEER_NNG_URL=tcp://127.0.0.1:%d", pr->nng[j]);
    snprintf(glis, sizeof(glis), "GOSSIP_LISTEN=127.0.0.1:%d", pr->gossip[i]);
    snprintf(gpeer, sizeof(gpeer), "PEER_GOSSIP=127.0.0.1:%d", pr->gossip[j]);
    snprintf(log, sizeof(log), "test_pair.node%d.log", i + 1);
    const char *env[] = {id, lis, peer, glis, gpeer, PAIR_KEY, extra, extra_b, NULL};
    if (!extra) {
        env[6] = extra_b;
        env[7] = NULL;
    }
    topo_node_start(&pr->node[i], &def, &fb, env, log);
}

static void node_start(struct pair *pr, int i, const char *extra)
{
    node_start2(pr, i, extra, NULL);
}

/* Starts both nodes, extra1/extra2 ("NAME=value" or NULL) in node 1's/2's
 * environment. */
static void pair_start_env(struct pair *pr, const char *extra1, const char *extra2)
{
    for (int i = 0; i < 2; i++) {
        pr->nng[i] = topo_free_port_pair();
        pr->gossip[i] = topo_free_port_pair(); /* UDP; TCP-checked as a proxy */
    }
    node_start(pr, 0, extra1);
    node_start(pr, 1, extra2);
    topo_node_wait_ready(&pr->node[0], 100);
    topo_node_wait_ready(&pr->node[1], 100);
    topo_sleep_ms(300); /* gossip sees both alive: POSTs then wait for acks */
}

static void pair_start(struct pair *pr, const char *extra2)
{
    pair_start_env(pr, NULL, extra2);
}

static void pair_stop(struct pair *pr)
{
    for (int i = 0; i < 2; i++)
        assert_int_equal(topo_node_stop(&pr->node[i]), 0);
}

static void assert_all_agree(const struct pair *pr, int64_t from, int64_t to)
{
    struct topo_counts theirs, ours;
    assert_int_equal(topo_sims_summary(&def, &fb, from, to, &theirs), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(topo_node_summary(pr->node[i].addr, from, to, &ours), 0);
        for (int p = 0; p < 2; p++) {
            if (ours.count[p] != theirs.count[p] || ours.cents[p] != theirs.cents[p])
                fail_msg("node %d processor %d: %" PRId64 "/%" PRId64 " vs %" PRId64 "/%" PRId64,
                         i + 1, p, ours.count[p], ours.cents[p], theirs.count[p], theirs.cents[p]);
        }
    }
}

/* Payments on both nodes, both nodes' books equal the processors'; extra
 * goes to both nodes' environment. */
static void both_nodes_match_processors(const char *extra, struct pair *out)
{
    struct pair pr;
    pair_start_env(&pr, extra, extra);
    int64_t t0 = topo_now_ms();
    enum { N = 300 };
    for (int i = 0; i < N; i++) {
        char id[37];
        topo_uuid(id);
        assert_int_equal(topo_post_payment(pr.node[i % 2].addr, id, "3.33") / 100, 2);
    }
    int64_t t1 = topo_now_ms();
    for (int i = 0; i < 2; i++)
        assert_int_equal(topo_wait_total(pr.node[i].addr, N, 10000), N);
    topo_sleep_ms(100);
    assert_all_agree(&pr, INT64_MIN, INT64_MAX);
    assert_all_agree(&pr, t0, (t0 + t1) / 2);
    assert_all_agree(&pr, (t0 + t1) / 2 + 1, t1 + 1000);
    /* Every 2xx waited for the peer's ack: none went out unacknowledged. */
    for (int i = 0; i < 2; i++)
        assert_int_equal(topo_metric(&pr.node[i], "paynode_peer_replies_unacked_total"), 0);
    *out = pr;
}

/* With the fast lane (the default), the acks a POST waits for came as
 * datagrams, and the stream still carried every event. */
static void test_both_nodes_match_processors(void **state)
{
    struct pair pr;
    both_nodes_match_processors(NULL, &pr);
    for (int i = 0; i < 2; i++) {
        assert_true(topo_metric(&pr.node[i], "paynode_peer_datagrams_total{dir=\"in\"}") > 0);
        assert_int_equal(topo_metric(&pr.node[i], "paynode_peer_events_total{dir=\"in\"}"),
                         topo_metric(&pr.node[1 - i], "paynode_peer_acked_seq"));
        assert_true(topo_metric(&pr.node[i], "paynode_peer_batches_total{dir=\"in\"}") > 0);
    }
    pair_stop(&pr);
}

/* The nng stream alone (PEER_FAST_LANE=0) keeps the same guarantees. */
static void test_both_nodes_match_without_fast_lane(void **state)
{
    struct pair pr;
    both_nodes_match_processors("PEER_FAST_LANE=0", &pr);
    for (int i = 0; i < 2; i++)
        assert_int_equal(topo_metric(&pr.node[i], "paynode_peer_datagrams_total{dir=\"in\"}"), 0);
    pair_stop(&pr);
}

/* Node 2 drops every third batch of the stream (the fast lane off, so that
 * every loss is a gap in the stream): range repairs bring everything. */
static void test_lost_replication_is_repaired(void **state)
{
    struct pair pr;
    for (int i = 0; i < 2; i++) {
        pr.nng[i] = topo_free_port_pair();
        pr.gossip[i] = topo_free_port_pair();
    }
    node_start2(&pr, 0, "PEER_FAST_LANE=0", NULL);
    node_start2(&pr, 1, "PEER_FAST_LANE=0", "PAYNODE_TEST_DROP_BATCHES=3");
    topo_node_wait_ready(&pr.node[0], 100);
    topo_node_wait_ready(&pr.node[1], 100);
    topo_sleep_ms(300);
    enum { N = 300 };
    for (int i = 0; i < N; i++) {
        char id[37];
        topo_uuid(id);
        assert_int_equal(topo_post_payment(pr.node[i % 2].addr, id, "1.00") / 100, 2);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(topo_wait_total(pr.node[i].addr, N, 10000), N);
    topo_sleep_ms(300);
    assert_all_agree(&pr, INT64_MIN, INT64_MAX);
    /* Node 2 dropped a third of what it received and repaired it. */
    assert_true(topo_metric(&pr.node[1], "paynode_peer_gaps_total") > 0);
    assert_true(topo_metric(&pr.node[1], "paynode_peer_range_repairs_total") > 0);
    assert_int_equal(topo_metric(&pr.node[1], "paynode_peer_applied_seq"),
                     topo_metric(&pr.node[0], "paynode_peer_acked_seq"));
    pair_stop(&pr);
}

/* Node 2 drops every third datagram and every third stream batch of the
 * pair's default setting (fast lane on): a lost datagram's events and its
 * request for an ack come again on the stream, so the books agree and no 2xx
 * went out before the peer held the payment. */
static void test_lost_datagrams_are_covered_by_the_stream(void **state)
{
    struct pair pr;
    pair_start(&pr, "PAYNODE_TEST_DROP_BATCHES=3");
    enum { N = 300 };
    for (int i = 0; i < N; i++) {
        char id[37];
        topo_uuid(id);
        assert_int_equal(topo_post_payment(pr.node[0].addr, id, "1.00") / 100, 2);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(topo_wait_total(pr.node[i].addr, N, 10000), N);
    topo_sleep_ms(300);
    assert_all_agree(&pr, INT64_MIN, INT64_MAX);
    assert_int_equal(topo_metric(&pr.node[0], "paynode_peer_replies_unacked_total"), 0);
    assert_true(topo_metric(&pr.node[1], "paynode_peer_datagram_gaps_total") +
                    topo_metric(&pr.node[1], "paynode_peer_gaps_total") >
                0);
    assert_int_equal(topo_metric(&pr.node[1], "paynode_peer_applied_seq"),
                     topo_metric(&pr.node[0], "paynode_peer_acked_seq"));
    pair_stop(&pr);
}

/* A purge on one node empties both; a payment sent to the other node right
 * after the purge's answer survives on both (the answer waits for the peer);
 * two purges at once, one on each node, are one purge. */
static void test_purge_reaches_both_nodes(void **state)
{
    struct pair pr;
    pair_start(&pr, NULL);
    for (int round = 0; round < 20; round++) {
        char id[37];
        topo_uuid(id);
        assert_int_equal(topo_post_payment(pr.node[round % 2].addr, id, "1.00") / 100, 2);
        if (round % 4 == 3) {
            assert_int_equal(topo_node_purge_status(pr.node[0].addr), 200);
            assert_int_equal(topo_node_purge_status(pr.node[1].addr), 200);
        } else {
            assert_int_equal(topo_node_purge_status(pr.node[round % 2].addr), 200);
        }
        topo_uuid(id);
        assert_int_equal(topo_post_payment(pr.node[(round + 1) % 2].addr, id, "2.00") / 100, 2);
        for (int i = 0; i < 2; i++)
            assert_int_equal(topo_wait_total(pr.node[i].addr, 1, 5000), 1);
    }
    topo_sleep_ms(200);
    assert_int_equal(topo_node_total(pr.node[0].addr), 1);
    assert_int_equal(topo_node_total(pr.node[1].addr), 1);
    assert_int_equal(topo_metric(&pr.node[0], "paynode_ledger_state{state=\"accepted\"}") +
                         topo_metric(&pr.node[0], "paynode_ledger_state{state=\"sending\"}"),
                     0);
    pair_stop(&pr);
}

/* Node 2 is frozen while node 1 dies with attempts in flight: on waking, node 2
 * hears nothing from node 1 before its own stall is over, and must still take
 * node 1 for dead (once it stays silent) and finish its payments. */
static void test_peer_dies_while_we_are_frozen(void **state)
{
    struct pair pr;
    pair_start(&pr, NULL);
    topo_sim_set_delay(&def, 600); /* node 1's attempts are in flight when it dies */
    enum { N = 30 };
    for (int i = 0; i < N; i++) {
        char id[37];
        topo_uuid(id);
        assert_int_equal(topo_post_payment(pr.node[0].addr, id, "4.00") / 100, 2);
    }
    kill(pr.node[1].proc.pid, SIGSTOP);
    kill(pr.node[0].proc.pid, SIGKILL);
    proc_wait_exit(&pr.node[0].proc, 5000);
    topo_sleep_ms(1500); /* longer than gossip's dead_ms */
    kill(pr.node[1].proc.pid, SIGCONT);
    assert_int_equal(topo_wait_total(pr.node[1].addr, N, 15000), N);
    struct topo_counts ours, theirs;
    assert_int_equal(topo_node_summary(pr.node[1].addr, INT64_MIN, INT64_MAX, &ours), 0);
    assert_int_equal(topo_sims_summary(&def, &fb, INT64_MIN, INT64_MAX, &theirs), 0);
    for (int p = 0; p < 2; p++) {
        assert_int_equal(ours.count[p], theirs.count[p]);
        assert_int_equal(ours.cents[p], theirs.cents[p]);
    }
    assert_int_equal(topo_node_stop(&pr.node[1]), 0);
}

enum { MAX_POSTS = 4000 };
static char posted_ids[MAX_POSTS][37];
static int posted_status[MAX_POSTS];

/* Posts to both nodes in turn for run_ms; SIGKILLs `victim` at kill_ms and
 * restarts it at restart_ms. Then checks, from the client's record, that
 * every 2xx is recorded by exactly one processor and nothing else is. */
static void kill_restart(int victim)
{
    struct pair pr;
    pair_start(&pr, NULL);
    int64_t start = topo_now_ms();
    int n = 0, ok = 0;
    bool killed = false, restarted = false;
    while (topo_now_ms() - start < 4000 && n < MAX_POSTS) {
        int64_t el = topo_now_ms() - start;
        if (!killed && el >= 1000) {
            kill(pr.node[victim].proc.pid, SIGKILL);
            proc_wait_exit(&pr.node[victim].proc, 5000);
            killed = true;
        }
        if (killed && !restarted && el >= 2000) {
            node_start(&pr, victim, NULL);
            restarted = true;
        }
        topo_uuid(posted_ids[n]);
        const struct topo_node *to = &pr.node[n % 2];
        if (killed && !restarted && to == &pr.node[victim])
            to = &pr.node[1 - victim]; /* nginx would skip the dead node */
        posted_status[n] = topo_post_payment(to->addr, posted_ids[n], "7.00");
        ok += posted_status[n] / 100 == 2;
        n++;
        topo_sleep_ms(2);
    }
    topo_node_wait_ready(&pr.node[victim], 100);
    for (int i = 0; i < 2; i++)
        assert_int_equal(topo_wait_total(pr.node[i].addr, ok, 15000), ok);
    int lost = 0, dbl = 0, phantom = 0;
    for (int i = 0; i < n; i++) {
        bool a = topo_sim_has(&def, posted_ids[i]), b = topo_sim_has(&fb, posted_ids[i]);
        if (posted_status[i] / 100 == 2) {
            lost += !a && !b;
            dbl += a && b;
        } else {
            phantom += a || b;
        }
    }
    print_message("victim node %d: %d posts, %d 2xx, lost %d, double %d, phantom %d\n", victim + 1,
                  n, ok, lost, dbl, phantom);
    assert_int_equal(lost, 0);
    assert_int_equal(dbl, 0);
    assert_int_equal(phantom, 0);
    assert_all_agree(&pr, INT64_MIN, INT64_MAX);
    pair_stop(&pr);
}

static void test_kill_node2_mid_run(void **state)
{
    kill_restart(1);
}

static void test_kill_node1_checker_mid_run(void **state)
{
    kill_restart(0);
}

static int64_t sim_stat(const struct topo_sim *s, const char *key)
{
    char body[1024];
    struct tclient_resp r;
    assert_int_equal(tclient_fetch(s->addr, 5000, "GET", "/admin/stats",
                                   "X-Rinha-Token: " TOPO_TOKEN "\r\n", NULL, 0, &r, body,
                                   sizeof(body)),
                     0);
    struct json_doc d;
    long long v;
    assert_int_equal(json_parse(&d, body, strlen(body)), 0);
    assert_true(json_int(&d, json_member(&d, 0, key), &v));
    return v;
}

/* Only one node polls the processors' health, about once per 5 s window, and
 * no call is refused. Instead of watching for a fixed time, the simulators'
 * counters are read until each has answered HEALTH_WINDOWS_SEEN calls (three
 * polling windows), bounded by HEALTH_OBSERVE_MS; no 429 and the rate bound
 * are checked at every read, not only at the end. */
#define HEALTH_WINDOWS_SEEN 3
#define HEALTH_OBSERVE_MS 30000

static void test_one_health_checker(void **state)
{
    const struct topo_sim *sims[2] = {&def, &fb};
    int64_t ok0[2], bad0[2], ok[2] = {0, 0}, bad[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        ok0[i] = sim_stat(sims[i], "healthOk");
        bad0[i] = sim_stat(sims[i], "health429");
    }
    struct pair pr;
    pair_start(&pr, NULL);
    int64_t t0 = topo_now_ms(), secs = 0;
    for (;;) {
        secs = (topo_now_ms() - t0) / 1000;
        bool enough = true;
        for (int i = 0; i < 2; i++) {
            ok[i] = sim_stat(sims[i], "healthOk") - ok0[i];
            bad[i] = sim_stat(sims[i], "health429") - bad0[i];
            assert_int_equal(bad[i], 0);
            assert_true(ok[i] <= secs / 5 + 2); /* only one node polls */
            enough = enough && ok[i] >= HEALTH_WINDOWS_SEEN;
        }
        if (enough || topo_now_ms() - t0 >= HEALTH_OBSERVE_MS)
            break;
        topo_sleep_ms(200);
    }
    for (int i = 0; i < 2; i++) {
        print_message("processor %d: %" PRId64 " health calls in %" PRId64 " s, %" PRId64
                      " refused\n",
                      i, ok[i], secs, bad[i]);
        assert_true(ok[i] >= HEALTH_WINDOWS_SEEN); /* somebody polls */
        assert_true(ok[i] >= secs / 5 - 1);        /* at the interval */
    }
    assert_int_equal(topo_metric(&pr.node[0], "paynode_health_checker") +
                         topo_metric(&pr.node[1], "paynode_health_checker"),
                     1);
    pair_stop(&pr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* First, while the simulators' rate-limit windows hold no earlier calls. */
        cmocka_unit_test_setup(test_one_health_checker, reset_sims),
        cmocka_unit_test_setup(test_both_nodes_match_processors, reset_sims),
        cmocka_unit_test_setup(test_both_nodes_match_without_fast_lane, reset_sims),
        cmocka_unit_test_setup(test_lost_replication_is_repaired, reset_sims),
        cmocka_unit_test_setup(test_lost_datagrams_are_covered_by_the_stream, reset_sims),
        cmocka_unit_test_setup(test_purge_reaches_both_nodes, reset_sims),
        cmocka_unit_test_setup(test_peer_dies_while_we_are_frozen, reset_sims),
        cmocka_unit_test_setup(test_kill_node2_mid_run, reset_sims),
        cmocka_unit_test_setup(test_kill_node1_checker_mid_run, reset_sims),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
