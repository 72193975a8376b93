/* protobuf.c - bounded protobuf wire-format reader (see protobuf.h). */
#include "kube/protobuf.h"

/* Reads a base-128 varint at pb->off. Returns BL_OK or BL_ERROR. */
static int bl_pb_varint(bl_pb_t *pb, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (pb->off >= pb->len)
            return BL_ERROR;
        unsigned char b = pb->p[pb->off++];
        if (i == 9 && b > 1)
            return BL_ERROR;   /* would overflow 64 bits */
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            *out = v;
            return BL_OK;
        }
    }
    return BL_ERROR;
}

/* Advances over n bytes. Returns BL_OK or BL_ERROR if fewer remain. */
static int bl_pb_skip(bl_pb_t *pb, uint64_t n)
{
    if (n > pb->len - pb->off)
        return BL_ERROR;
    pb->off += (size_t)n;
    return BL_OK;
}

int bl_pb_next(bl_pb_t *pb, bl_pb_field_t *f)
{
    uint64_t key, v = 0;
    if (pb->off >= pb->len)
        return BL_DECLINED;
    if (bl_pb_varint(pb, &key) != BL_OK || (key >> 3) == 0 || (key >> 3) > UINT32_MAX)
        return BL_ERROR;
    f->field = (uint32_t)(key >> 3);
    f->wire = (int)(key & 7);
    f->num = 0;
    f->bytes = BL_STR_NULL;
    switch (f->wire) {
    case BL_PB_VARINT:
        return bl_pb_varint(pb, &f->num);
    case BL_PB_FIXED64:
    case BL_PB_FIXED32: {
        unsigned n = f->wire == BL_PB_FIXED64 ? 8 : 4;
        if (pb->len - pb->off < n)
            return BL_ERROR;
        for (unsigned i = 0; i < n; i++)   /* little-endian */
            v |= (uint64_t)pb->p[pb->off + i] << (8 * i);
        f->num = v;
        pb->off += n;
        return BL_OK;
    }
    case BL_PB_LEN:
        if (bl_pb_varint(pb, &v) != BL_OK)
            return BL_ERROR;
        f->bytes = (bl_str_t){ (const char *)pb->p + pb->off, 0 };
        if (bl_pb_skip(pb, v) != BL_OK)
            return BL_ERROR;
        f->bytes.len = (size_t)v;
        return BL_OK;
    default:
        return BL_ERROR;
    }
}
