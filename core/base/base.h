/* core/base/base.h: the few words every layer shares: slices, always-on
 * assertions, result codes. Pure: no I/O, no allocation, no globals, so the
 * parsers in proto/ may include it. */
#ifndef SL_BASE_H
#define SL_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A borrowed run of bytes. Never owns its memory; the API that hands one out
 * says how long it stays valid. */
typedef struct sl_slice {
    const uint8_t *ptr;
    size_t len;
} sl_slice;

#define SL_SLICE_LIT(s) ((sl_slice){(const uint8_t *)(s), sizeof(s) - 1})

__attribute__((noreturn)) void sl_assert_fail(const char *expr, const char *file, int line);

/* Assertions stay on in production: a broken contract aborts with a core. */
#define SL_ASSERT(e) ((e) ? (void)0 : sl_assert_fail(#e, __FILE__, __LINE__))

/* The struct that embeds member m, from a pointer to that member. */
#define SL_CONTAINER_OF(p, T, m) ((T *)(void *)((char *)(p) - offsetof(T, m)))

#define SL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SL_MAX(a, b) ((a) > (b) ? (a) : (b))

/* FNV-1a, 64 bit: for hash tables keyed by short strings or addresses.
 * SL_HASH_INIT then sl_hash_more over several pieces hashes them as one. */
#define SL_HASH_INIT 14695981039346656037ull

static inline uint64_t sl_hash_step(uint64_t h, uint8_t b)
{
    return (h ^ b) * 1099511628211ull;
}

static inline uint64_t sl_hash_more(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h = sl_hash_step(h, b[i]);
    }
    return h;
}

static inline uint64_t sl_hash_bytes(const void *p, size_t n)
{
    return sl_hash_more(SL_HASH_INIT, p, n);
}

static inline uint64_t sl_hash_str(const char *s)
{
    uint64_t h = SL_HASH_INIT;
    for (; *s != '\0'; s++) {
        h = sl_hash_step(h, (uint8_t)*s);
    }
    return h;
}

static inline bool sl_slice_eq_nocase(sl_slice s, const char *lit)
{
    size_t i = 0;
    for (; lit[i] != '\0'; i++) {
        if (i >= s.len) {
            return false;
        }
        uint8_t a = s.ptr[i];
        uint8_t b = (uint8_t)lit[i];
        if (a >= 'A' && a <= 'Z') {
            a = (uint8_t)(a + 32);
        }
        if (b >= 'A' && b <= 'Z') {
            b = (uint8_t)(b + 32);
        }
        if (a != b) {
            return false;
        }
    }
    return i == s.len;
}

#endif
