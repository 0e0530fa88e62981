/* What a stranger with CAP_NET_RAW can do on loopback, for the attack tests:
 * watch the UDP datagrams between two ports (a packet socket, in a thread)
 * and send a UDP datagram with any source port (a raw IPv4 socket, so the
 * datagram claims to come from the peer's address). Loopback only. Both need
 * CAP_NET_RAW: without it the functions return -EPERM and the caller skips
 * what depends on them. Not thread-safe beyond the one capture thread. */
#ifndef TESTS_SUPPORT_RAWNET_H
#define TESTS_SUPPORT_RAWNET_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define RAWNET_MAX_DGRAM 2048

/* One captured datagram's payload. */
struct rawnet_dgram {
    uint16_t src_port, dst_port;
    size_t len;
    uint8_t data[RAWNET_MAX_DGRAM];
};

/* A capture of the datagrams between port_a and port_b (both directions) on
 * 127.0.0.1, each payload kept up to cap datagrams (later ones are counted,
 * not kept). */
struct rawnet_capture {
    int fd;
    uint16_t port_a, port_b;
    struct rawnet_dgram *dgrams; /* cap entries, owned */
    size_t cap;
    atomic_size_t count; /* datagrams seen (may exceed cap) */
    atomic_bool stop;
    pthread_t thread;
};

/* Starts capturing in a thread. 0, -EPERM (no CAP_NET_RAW), -ENOMEM, or
 * another negative errno. */
int rawnet_capture_start(struct rawnet_capture *c, int port_a, int port_b, size_t cap)
    __attribute__((warn_unused_result));
/* Stops the thread (within ~100 ms) and closes the socket; the datagrams stay
 * readable (c->dgrams[0 .. min(count, cap))) until rawnet_capture_release. */
void rawnet_capture_stop(struct rawnet_capture *c);
void rawnet_capture_release(struct rawnet_capture *c);

/* Sends data as one UDP datagram from 127.0.0.1:src_port to 127.0.0.1:dst_port,
 * whoever holds src_port. 0, -EPERM (no CAP_NET_RAW) or a negative errno. */
int rawnet_udp_spoof(int src_port, int dst_port, const void *data, size_t len)
    __attribute__((warn_unused_result));

#endif
