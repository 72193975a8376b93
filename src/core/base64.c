/* base64.c - base64url decoding without allocation. */
#include "core/base64.h"

static int bl_b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long bl_b64url_decode(bl_str_t in, unsigned char *out, size_t cap)
{
    size_t n = in.len;
    while (n > 0 && in.p[n - 1] == '=')
        n--;
    if (n % 4 == 1 || n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) > cap)
        return BL_ERROR;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = bl_b64url_val((unsigned char)in.p[i]);
        if (v < 0)
            return BL_ERROR;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return (long)o;
}
