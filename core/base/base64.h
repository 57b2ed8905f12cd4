/* core/base/base64.h: base64 (RFC 4648 section 4: standard alphabet, with
 * padding), encode and strict decode. The auth endpoint and the SASL
 * mechanisms move every challenge and response through it.
 *
 * The decoder accepts only the canonical encoding: the length is a multiple of
 * 4, every byte is from the alphabet, '=' appears only as the last one or two
 * bytes, and the bits that padding leaves unused are zero (RFC 4648 3.5). So
 * each byte string has exactly one accepted encoding, and no whitespace or
 * line breaks are skipped.
 *
 * Pure: no allocation, no globals, no errno; callable from any thread. */
#ifndef SL_BASE64_H
#define SL_BASE64_H

#include "core/base/base.h"

/* Bytes the encoding of n input bytes takes (no NUL is written). */
#define SL_BASE64_ENCODED_LEN(n) ((((size_t)(n) + 2) / 3) * 4)
/* The most bytes that n base64 bytes can decode to. */
#define SL_BASE64_DECODED_LEN_MAX(n) (((size_t)(n) / 4) * 3)
/* The longest input sl_base64_encode() takes: its result must fit a ptrdiff_t. */
#define SL_BASE64_ENCODE_SRC_MAX ((size_t)PTRDIFF_MAX / 4 * 3 - 2)

/* sl_base64_decode() results below zero. */
#define SL_BASE64_INVALID (-1) /* src is not canonical base64 */
#define SL_BASE64_NO_ROOM (-2) /* dst_size is smaller than the decoded length */

/* Writes the encoding of src[0..src_len) to dst and returns its length
 * (SL_BASE64_ENCODED_LEN(src_len)), or -1 without writing anything when
 * dst_size is smaller than that. src_len must be <= SL_BASE64_ENCODE_SRC_MAX. */
ptrdiff_t sl_base64_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_size);

/* Decodes src[0..src_len) into dst and returns the decoded length (0 for an
 * empty src). SL_BASE64_NO_ROOM when dst_size is smaller than the decoded
 * length (found from the length and padding alone, before any byte is
 * written); SL_BASE64_INVALID when src is not canonical base64, and then the
 * bytes already decoded into dst are wiped, since decoded data is often a
 * password. dst_size >= SL_BASE64_DECODED_LEN_MAX(src_len) always has room.
 * dst may be src itself (decoding in place) but must not overlap it otherwise. */
ptrdiff_t sl_base64_decode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_size);

#endif
