/* Frame header and byte-order helpers shared by every proto/ format. A frame is
 * WIRE_HDR_LEN bytes of header (magic, version, type, total length as a
 * big-endian u16) followed by the type's fields, all big-endian. The type byte
 * is unique across all formats, so one receiver can tell frames apart. Helpers
 * only, static inline, libc only; each format checks its own fields. */
#ifndef PROTO_WIRE_H
#define PROTO_WIRE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_MAGIC 0xB7 /* first byte of every frame */
#define WIRE_VERSION 1  /* second byte; a decoder rejects any other */
#define WIRE_HDR_LEN 5  /* magic, version, type, u16 length (whole frame) */
#define WIRE_MAX_LEN 0xFFFF

/* Frame types (third byte): every type byte of every format is here and
 * nowhere else. An event frame's type byte is its enum event_type
 * (proto/event.h takes its values from here); other formats take the ranges
 * below. */
enum wire_type {
    WIRE_T_NONE = 0,
    WIRE_T_EVENT_ACCEPTED = 1, /* proto/event */
    WIRE_T_EVENT_SENDING = 2,
    WIRE_T_EVENT_RECORDED = 3,
    WIRE_T_EVENT_FAILED = 4,
    WIRE_T_EVENT_PURGED = 5,
    WIRE_T_EVENT_FIRST = WIRE_T_EVENT_ACCEPTED,
    WIRE_T_EVENT_LAST = WIRE_T_EVENT_PURGED,
    WIRE_T_HEARTBEAT = 0x10,       /* proto/heartbeat (UDP gossip) */
    WIRE_T_CATCHUP_REQUEST = 0x20, /* proto/catchup; 0x20..0x2F reserved for it */
    WIRE_T_CATCHUP_RESPONSE = 0x21,
    WIRE_T_REPL_BATCH = 0x30,     /* proto/repl, nng pub/sub and the fast lane's datagrams */
    WIRE_T_REPL_BATCH_ACK = 0x31, /* the same batch, asking for an acknowledgement at once */
    WIRE_T_SNAP_REQUEST = 0x40, /* proto/repl, nng req/rep */
    WIRE_T_SNAP_RESPONSE = 0x41,
};

static inline void wire_put_u8(uint8_t *p, uint8_t v)
{
    p[0] = v;
}

static inline void wire_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void wire_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void wire_put_u64(uint8_t *p, uint64_t v)
{
    wire_put_u32(p, (uint32_t)(v >> 32));
    wire_put_u32(p + 4, (uint32_t)v);
}

/* Two's complement, big-endian. */
static inline void wire_put_i64(uint8_t *p, int64_t v)
{
    wire_put_u64(p, (uint64_t)v);
}

static inline uint8_t wire_get_u8(const uint8_t *p)
{
    return p[0];
}

static inline uint16_t wire_get_u16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t wire_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t wire_get_u64(const uint8_t *p)
{
    return (uint64_t)wire_get_u32(p) << 32 | wire_get_u32(p + 4);
}

static inline int64_t wire_get_i64(const uint8_t *p)
{
    uint64_t u = wire_get_u64(p);
    /* Portable conversion back from two's complement (no implementation-defined cast). */
    if (u <= (uint64_t)INT64_MAX)
        return (int64_t)u;
    return -(int64_t)(~u) - 1;
}

/* Writes the header of a frame of frame_len bytes in total (header included);
 * buf must hold WIRE_HDR_LEN bytes. */
static inline void wire_put_header(uint8_t *buf, uint8_t type, uint16_t frame_len)
{
    buf[0] = WIRE_MAGIC;
    buf[1] = WIRE_VERSION;
    buf[2] = type;
    wire_put_u16(buf + 3, frame_len);
}

/* Reads the header from buf[0..len). Returns 0 with *type and *frame_len set,
 * -EINVAL for a wrong magic or version or a length field shorter than the
 * header, -EMSGSIZE when fewer than WIRE_HDR_LEN bytes are there (after the
 * bytes that are there checked out). Reads only what len allows. It does not
 * check that len covers frame_len: the caller first checks frame_len against
 * its type, then calls wire_need(). */
static inline int wire_get_header(const uint8_t *buf, size_t len, uint8_t *type,
                                  uint16_t *frame_len)
{
    if (len >= 1 && buf[0] != WIRE_MAGIC)
        return -EINVAL;
    if (len >= 2 && buf[1] != WIRE_VERSION)
        return -EINVAL;
    if (len < WIRE_HDR_LEN)
        return -EMSGSIZE;
    *type = buf[2];
    *frame_len = wire_get_u16(buf + 3);
    if (*frame_len < WIRE_HDR_LEN)
        return -EINVAL;
    return 0;
}

/* 0 when len bytes hold a whole frame of frame_len bytes, else -EMSGSIZE. */
static inline int wire_need(size_t len, size_t frame_len)
{
    return len >= frame_len ? 0 : -EMSGSIZE;
}

#endif
