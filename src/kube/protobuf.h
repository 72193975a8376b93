/*
 * protobuf.h - a tiny bounded reader for the protobuf wire format, enough to
 * walk the Kubernetes envelope (runtime.Unknown) and pick a few fields out
 * of an object. It reads only [p, p+len) of memory the caller owns and never
 * allocates.
 */
#ifndef BL_KUBE_PROTOBUF_H
#define BL_KUBE_PROTOBUF_H

#include "core/common.h"

enum {
    BL_PB_VARINT = 0,
    BL_PB_FIXED64 = 1,
    BL_PB_LEN = 2,
    BL_PB_FIXED32 = 5,
};

typedef struct {
    const unsigned char *p;
    size_t len;
    size_t off;
} bl_pb_t;

typedef struct {
    uint32_t field;    /* field number, >= 1 */
    int wire;          /* BL_PB_* */
    uint64_t num;      /* value of VARINT / FIXED64 / FIXED32 fields */
    bl_str_t bytes;    /* payload of LEN fields (points into the message) */
} bl_pb_field_t;

static inline void bl_pb_init(bl_pb_t *pb, const void *p, size_t len)
{
    pb->p = p;
    pb->len = len;
    pb->off = 0;
}

/*
 * Reads the next field of the message. Returns BL_OK with *f filled,
 * BL_DECLINED at the clean end of the message, or BL_ERROR on anything
 * malformed: a truncated field, a varint longer than 10 bytes, field number
 * 0, or group wire types (which Kubernetes never uses).
 */
int bl_pb_next(bl_pb_t *pb, bl_pb_field_t *f);

#endif
