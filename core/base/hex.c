/* core/base/hex.c: see hex.h. */
#include "core/base/hex.h"

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

void sl_hex_encode(const uint8_t *src, size_t src_len, char *dst)
{
    SL_ASSERT(src != NULL || src_len == 0);
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < src_len; i++) {
        dst[2 * i] = digits[src[i] >> 4];
        dst[2 * i + 1] = digits[src[i] & 0xf];
    }
}

ptrdiff_t sl_hex_decode(const char *src, size_t src_len, uint8_t *dst, size_t dst_size)
{
    SL_ASSERT(src != NULL || src_len == 0);
    if (src_len % 2 != 0 || src_len / 2 > dst_size) {
        return -1;
    }
    for (size_t i = 0; i < src_len; i += 2) {
        int hi = hex_value(src[i]);
        int lo = hex_value(src[i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        dst[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return (ptrdiff_t)(src_len / 2);
}
