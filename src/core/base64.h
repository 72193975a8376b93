/* base64.h - base64url (RFC 4648 section 5) decoding, padding optional. */
#ifndef BL_CORE_BASE64_H
#define BL_CORE_BASE64_H

#include "core/common.h"

/* Decodes base64url `in` into out[0..cap). Returns the decoded length, or
 * BL_ERROR on a character outside the alphabet, a bad length, or when
 * the result would not fit. Standard '+' '/' are refused. */
long bl_b64url_decode(bl_str_t in, unsigned char *out, size_t cap);

#endif
