/* core/base/hex.h: base16 (RFC 4648 section 8) as stored password hashes and
 * the SASL mechanisms use it: lower-case out, either case in.
 *
 * Pure: no allocation, no globals, no errno; callable from any thread. */
#ifndef SL_HEX_H
#define SL_HEX_H

#include "core/base/base.h"

/* Writes the 2 * src_len lower-case hex digits of src to dst (no NUL). */
void sl_hex_encode(const uint8_t *src, size_t src_len, char *dst);

/* Decodes src[0..src_len) (digits of either case) into dst and returns the
 * decoded length, src_len / 2. -1 when src_len is odd, when dst_size is
 * smaller than src_len / 2 (both found before any byte is written) or when a
 * byte is not a hex digit (dst may then hold part of the result). */
ptrdiff_t sl_hex_decode(const char *src, size_t src_len, uint8_t *dst, size_t dst_size);

#endif
