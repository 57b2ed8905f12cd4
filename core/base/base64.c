/* core/base/base64.c: RFC 4648 base64 (see the header for the contract).
 *
 * Decoding works one 4-byte quantum at a time through a 256-entry table in
 * which every byte outside the alphabet is marked invalid, so a bad byte costs
 * one lookup and no special case. */
#include "core/base/base64.h"

#include "core/base/base.h"

#include <string.h>

static const char alphabet[65] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Each alphabet byte maps to its value + 1; every other byte to 0 (invalid). */
static const uint8_t values_plus1[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};

ptrdiff_t sl_base64_encode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_size)
{
    SL_ASSERT(src != NULL || src_len == 0);
    SL_ASSERT(src_len <= SL_BASE64_ENCODE_SRC_MAX);
    size_t need = SL_BASE64_ENCODED_LEN(src_len);
    if (need > dst_size) {
        return -1;
    }
    size_t i = 0;
    size_t o = 0;
    for (; i + 3 <= src_len; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
        dst[o++] = (uint8_t)alphabet[v >> 18];
        dst[o++] = (uint8_t)alphabet[(v >> 12) & 63];
        dst[o++] = (uint8_t)alphabet[(v >> 6) & 63];
        dst[o++] = (uint8_t)alphabet[v & 63];
    }
    size_t tail = src_len - i;
    if (tail > 0) {
        uint32_t v = (uint32_t)src[i] << 16 | (tail == 2 ? (uint32_t)src[i + 1] << 8 : 0);
        dst[o++] = (uint8_t)alphabet[v >> 18];
        dst[o++] = (uint8_t)alphabet[(v >> 12) & 63];
        dst[o++] = tail == 2 ? (uint8_t)alphabet[(v >> 6) & 63] : '=';
        dst[o++] = '=';
    }
    SL_ASSERT(o == need);
    return (ptrdiff_t)o;
}

/* Padding bytes at the end of src (0, 1 or 2 are possible in valid input). */
static size_t padding_len(const uint8_t *src, size_t src_len)
{
    size_t pad = 0;
    while (pad < 2 && pad < src_len && src[src_len - 1 - pad] == '=') {
        pad++;
    }
    return pad;
}

/* One full quantum q[0..4) into dst[0..3); false if a byte is not in the alphabet. */
static bool decode_quantum(const uint8_t *q, uint8_t *dst)
{
    uint8_t a = values_plus1[q[0]];
    uint8_t b = values_plus1[q[1]];
    uint8_t c = values_plus1[q[2]];
    uint8_t d = values_plus1[q[3]];
    if (a == 0 || b == 0 || c == 0 || d == 0) {
        return false;
    }
    a--, b--, c--, d--;
    dst[0] = (uint8_t)(a << 2 | b >> 4);
    dst[1] = (uint8_t)(b << 4 | c >> 2);
    dst[2] = (uint8_t)(c << 6 | d);
    return true;
}

/* The last quantum, with pad '=' bytes at its end: pad == 2 carries one byte,
 * pad == 1 two. The bits the padding leaves unused must be zero, or the
 * encoding is not the canonical one. */
static bool decode_last(const uint8_t *q, size_t pad, uint8_t *dst)
{
    uint8_t a = values_plus1[q[0]];
    uint8_t b = values_plus1[q[1]];
    uint8_t c = pad == 1 ? values_plus1[q[2]] : 1;
    if (a == 0 || b == 0 || c == 0) {
        return false;
    }
    a--, b--, c--;
    if (pad == 2) {
        if ((b & 0x0f) != 0) {
            return false;
        }
        dst[0] = (uint8_t)(a << 2 | b >> 4);
        return true;
    }
    if ((c & 0x03) != 0) {
        return false;
    }
    dst[0] = (uint8_t)(a << 2 | b >> 4);
    dst[1] = (uint8_t)(b << 4 | c >> 2);
    return true;
}

ptrdiff_t sl_base64_decode(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_size)
{
    SL_ASSERT(src != NULL || src_len == 0);
    if (src_len % 4 != 0) {
        return SL_BASE64_INVALID;
    }
    size_t pad = padding_len(src, src_len);
    size_t out_len = SL_BASE64_DECODED_LEN_MAX(src_len) - pad;
    if (out_len > dst_size) {
        return SL_BASE64_NO_ROOM;
    }
    size_t full = pad > 0 ? src_len - 4 : src_len; /* the quanta without padding */
    size_t o = 0;
    for (size_t i = 0; i < full; i += 4, o += 3) {
        /* In place, dst + o <= src + i: the quantum is read before it is overwritten. */
        if (!decode_quantum(src + i, dst + o)) {
            explicit_bzero(dst, o);
            return SL_BASE64_INVALID;
        }
    }
    if (pad > 0 && !decode_last(src + full, pad, dst + o)) {
        explicit_bzero(dst, o);
        return SL_BASE64_INVALID;
    }
    return (ptrdiff_t)out_len;
}
