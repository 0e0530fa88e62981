/* Watching and spoofing UDP on loopback for the attack tests (see rawnet.h). */
#include "rawnet.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int neg_errno(void)
{
    return errno == EACCES ? -EPERM : -errno;
}

/* The UDP payload of an IPv4 packet, or NULL. */
static const uint8_t *udp_payload(const uint8_t *pkt, size_t len, uint16_t *sport, uint16_t *dport,
                                  size_t *plen)
{
    if (len < 20 || (pkt[0] >> 4) != 4 || pkt[9] != IPPROTO_UDP)
        return NULL;
    size_t ihl = (size_t)(pkt[0] & 0x0f) * 4;
    if (ihl < 20 || len < ihl + 8)
        return NULL;
    const uint8_t *u = pkt + ihl;
    size_t ulen = (size_t)u[4] << 8 | u[5];
    if (ulen < 8 || ihl + ulen > len)
        return NULL;
    *sport = (uint16_t)(u[0] << 8 | u[1]);
    *dport = (uint16_t)(u[2] << 8 | u[3]);
    *plen = ulen - 8;
    return u + 8;
}

static void *capture_main(void *arg)
{
    struct rawnet_capture *c = arg;
    static _Thread_local uint8_t pkt[65536];
    while (!atomic_load(&c->stop)) {
        struct sockaddr_ll from;
        socklen_t flen = sizeof(from);
        ssize_t n = recvfrom(c->fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&from, &flen);
        if (n <= 0)
            continue; /* timeout: look at stop again */
        if (from.sll_pkttype == PACKET_OUTGOING)
            continue; /* loopback shows each packet twice: keep the incoming copy */
        uint16_t sp, dp;
        size_t plen;
        const uint8_t *p = udp_payload(pkt, (size_t)n, &sp, &dp, &plen);
        if (!p || !((sp == c->port_a && dp == c->port_b) || (sp == c->port_b && dp == c->port_a)))
            continue;
        size_t i = atomic_load(&c->count);
        if (i < c->cap && plen <= RAWNET_MAX_DGRAM) {
            struct rawnet_dgram *d = &c->dgrams[i];
            d->src_port = sp;
            d->dst_port = dp;
            d->len = plen;
            memcpy(d->data, p, plen);
        }
        atomic_store(&c->count, i + 1);
    }
    return NULL;
}

int rawnet_capture_start(struct rawnet_capture *c, int port_a, int port_b, size_t cap)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
    if (c->fd < 0)
        return neg_errno();
    struct sockaddr_ll sll = {.sll_family = AF_PACKET,
                              .sll_protocol = htons(ETH_P_IP),
                              .sll_ifindex = (int)if_nametoindex("lo")};
    struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
    int rcvbuf = 8 << 20;
    int rv = 0;
    if (bind(c->fd, (struct sockaddr *)&sll, sizeof(sll)) != 0 ||
        setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) {
        rv = neg_errno();
        goto out_close;
    }
    (void)setsockopt(c->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
    c->port_a = (uint16_t)port_a;
    c->port_b = (uint16_t)port_b;
    c->cap = cap;
    c->dgrams = calloc(cap ? cap : 1, sizeof(*c->dgrams));
    if (!c->dgrams) {
        rv = -ENOMEM;
        goto out_close;
    }
    atomic_init(&c->count, 0);
    atomic_init(&c->stop, false);
    rv = pthread_create(&c->thread, NULL, capture_main, c);
    if (rv != 0) {
        rv = -rv;
        goto out_free;
    }
    return 0;
out_free:
    free(c->dgrams);
    c->dgrams = NULL;
out_close:
    close(c->fd);
    c->fd = -1;
    return rv;
}

void rawnet_capture_stop(struct rawnet_capture *c)
{
    if (c->fd < 0)
        return;
    atomic_store(&c->stop, true);
    pthread_join(c->thread, NULL);
    close(c->fd);
    c->fd = -1;
}

void rawnet_capture_release(struct rawnet_capture *c)
{
    rawnet_capture_stop(c);
    free(c->dgrams);
    c->dgrams = NULL;
}

int rawnet_udp_spoof(int src_port, int dst_port, const void *data, size_t len)
{
    if (len > RAWNET_MAX_DGRAM)
        return -EMSGSIZE;
    int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW); /* IP_HDRINCL implied */
    if (fd < 0)
        return neg_errno();
    uint8_t pkt[20 + 8 + RAWNET_MAX_DGRAM];
    memset(pkt, 0, 28);
    pkt[0] = 0x45; /* IPv4, 20-byte header; the kernel fills length, id, checksum */
    pkt[8] = 64;   /* TTL */
    pkt[9] = IPPROTO_UDP;
    uint32_t lo = htonl(INADDR_LOOPBACK);
    memcpy(pkt + 12, &lo, 4);
    memcpy(pkt + 16, &lo, 4);
    uint8_t *u = pkt + 20;
    size_t ulen = 8 + len;
    u[0] = (uint8_t)(src_port >> 8);
    u[1] = (uint8_t)src_port;
    u[2] = (uint8_t)(dst_port >> 8);
    u[3] = (uint8_t)dst_port;
    u[4] = (uint8_t)(ulen >> 8);
    u[5] = (uint8_t)ulen; /* checksum 0: none, allowed over IPv4 */
    memcpy(u + 8, data, len);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr.s_addr = lo};
    ssize_t n = sendto(fd, pkt, 20 + ulen, 0, (struct sockaddr *)&to, sizeof(to));
    int rv = n == (ssize_t)(20 + ulen) ? 0 : (n < 0 ? neg_errno() : -EIO);
    close(fd);
    return rv;
}
