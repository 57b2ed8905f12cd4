/* tests/unit/core/test_base64.c: core/base/base64.c against the RFC 4648
 * section 10 vectors, the strict decoder's rejects, room checks, and round
 * trips of every byte value and of seeded random data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/base/base.h"
#include "core/base/base64.h"

#define U8(s) ((const uint8_t *)(s))

static const struct {
    const char *plain;
    const char *encoded;
} rfc4648_vectors[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void test_encode_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(rfc4648_vectors); i++) {
        const char *plain = rfc4648_vectors[i].plain;
        const char *want = rfc4648_vectors[i].encoded;
        uint8_t out[16];
        memset(out, '#', sizeof(out));
        ptrdiff_t n = sl_base64_encode(U8(plain), strlen(plain), out, sizeof(out));
        if (n != (ptrdiff_t)strlen(want) || memcmp(out, want, strlen(want)) != 0) {
            fail_msg("encode \"%s\": got %td \"%.*s\", want \"%s\"", plain, n, n > 0 ? (int)n : 0,
                     (const char *)out, want);
        }
        if (SL_BASE64_ENCODED_LEN(strlen(plain)) != strlen(want)) {
            fail_msg("SL_BASE64_ENCODED_LEN(%zu) = %zu, want %zu", strlen(plain),
                     SL_BASE64_ENCODED_LEN(strlen(plain)), strlen(want));
        }
        if (out[strlen(want)] != '#') {
            fail_msg("encode \"%s\" wrote past its result", plain);
        }
    }
}

static void test_decode_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(rfc4648_vectors); i++) {
        const char *in = rfc4648_vectors[i].encoded;
        const char *want = rfc4648_vectors[i].plain;
        uint8_t out[16];
        memset(out, '#', sizeof(out));
        ptrdiff_t n = sl_base64_decode(U8(in), strlen(in), out, sizeof(out));
        if (n != (ptrdiff_t)strlen(want) || memcmp(out, want, strlen(want)) != 0) {
            fail_msg("decode \"%s\": got %td \"%.*s\", want \"%s\"", in, n, n > 0 ? (int)n : 0,
                     (const char *)out, want);
        }
        if (out[strlen(want)] != '#') {
            fail_msg("decode \"%s\" wrote past its result", in);
        }
        if (SL_BASE64_DECODED_LEN_MAX(strlen(in)) < strlen(want)) {
            fail_msg("SL_BASE64_DECODED_LEN_MAX(%zu) = %zu, below %zu", strlen(in),
                     SL_BASE64_DECODED_LEN_MAX(strlen(in)), strlen(want));
        }
    }
}

static void test_decode_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len; /* 0: strlen(in) */
        const char *why;
    } cases[] = {
        {"Z", 0, "length 1"},
        {"Zg", 0, "no padding"},
        {"Zg=", 0, "short padding"},
        {"Zm9vY", 0, "length 5"},
        {"Zh==", 0, "nonzero bits under '=='"},
        {"Zm9=", 0, "nonzero bits under '='"},
        {"====", 0, "padding only"},
        {"Z===", 0, "three '='"},
        {"=Zg=", 0, "'=' first"},
        {"Z=g=", 0, "'=' inside the quantum"},
        {"Zg==Zg==", 0, "padding before the end"},
        {"Zm9v====", 0, "a quantum of padding"},
        {"Zm9 v", 0, "space"},
        {"Zm9v\n", 0, "trailing LF"},
        {"Zm9v\r\nYmFy", 0, "CRLF inside"},
        {"Zm-v", 0, "url-safe '-'"},
        {"Zm_v", 0, "url-safe '_'"},
        {"Zm9\0", 4, "NUL"},
        {"Zm9\xc3", 0, "8-bit byte"},
        {"Zm9vYmF*", 0, "'*' in the last quantum"},
        {"Zm9vY!==", 0, "'!' in a padded quantum"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        size_t len = cases[i].len != 0 ? cases[i].len : strlen(cases[i].in);
        uint8_t out[16];
        ptrdiff_t n = sl_base64_decode(U8(cases[i].in), len, out, sizeof(out));
        if (n != SL_BASE64_INVALID) {
            fail_msg("decode of %s: got %td, want SL_BASE64_INVALID", cases[i].why, n);
        }
    }
}

static void test_room(void **state)
{
    (void)state;
    uint8_t out[8];
    memset(out, '#', sizeof(out));
    ptrdiff_t n = sl_base64_encode(U8("foobar"), 6, out, 7);
    if (n != -1 || out[0] != '#') {
        fail_msg("encode into 7 of 8 bytes: got %td (first byte %#x), want -1 and nothing written",
                 n, out[0]);
    }
    n = sl_base64_decode(U8("Zm9vYmFy"), 8, out, 5);
    if (n != SL_BASE64_NO_ROOM || out[0] != '#') {
        fail_msg("decode 6 bytes into 5: got %td, want SL_BASE64_NO_ROOM and nothing written", n);
    }
    n = sl_base64_decode(U8("Zm9vYmE="), 8, out, 5);
    if (n != 5 || memcmp(out, "fooba", 5) != 0) {
        fail_msg("decode 5 bytes into exactly 5: got %td", n);
    }
    /* Room is judged before content: an invalid input that cannot fit says so. */
    n = sl_base64_decode(U8("!!!!!!!!"), 8, out, 2);
    if (n != SL_BASE64_NO_ROOM) {
        fail_msg("decode of 8 bad bytes into 2: got %td, want SL_BASE64_NO_ROOM", n);
    }
    n = sl_base64_decode(NULL, 0, NULL, 0);
    if (n != 0) {
        fail_msg("decode of nothing: got %td, want 0", n);
    }
    n = sl_base64_encode(NULL, 0, NULL, 0);
    if (n != 0) {
        fail_msg("encode of nothing: got %td, want 0", n);
    }
}

/* A failed decode leaves none of the decoded bytes behind (they may be a password). */
static void test_wipe_on_invalid(void **state)
{
    (void)state;
    uint8_t out[12];
    memset(out, 0xaa, sizeof(out));
    ptrdiff_t n = sl_base64_decode(U8("c2VjcmV0cGFzcw*="), 16, out, sizeof(out));
    if (n != SL_BASE64_INVALID) {
        fail_msg("got %td, want SL_BASE64_INVALID", n);
    }
    for (size_t i = 0; i < 9; i++) {
        if (out[i] != 0) {
            fail_msg("byte %zu of the decoded prefix left as %#x, want 0", i, out[i]);
        }
    }
    for (size_t i = 9; i < sizeof(out); i++) {
        if (out[i] != 0xaa) {
            fail_msg("byte %zu past the decoded prefix changed to %#x", i, out[i]);
        }
    }
}

static void test_in_place(void **state)
{
    (void)state;
    uint8_t buf[] = "AGZvbwBiYXI=";
    ptrdiff_t n = sl_base64_decode(buf, 12, buf, 12);
    if (n != 8 || memcmp(buf, "\0foo\0bar", 8) != 0) {
        fail_msg("in-place decode: got %td", n);
    }
}

static uint64_t xorshift64(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void round_trip(const uint8_t *in, size_t len, const char *what)
{
    uint8_t enc[SL_BASE64_ENCODED_LEN(300)];
    uint8_t dec[300];
    SL_ASSERT(len <= sizeof(dec));
    ptrdiff_t e = sl_base64_encode(in, len, enc, sizeof(enc));
    if (e != (ptrdiff_t)SL_BASE64_ENCODED_LEN(len)) {
        fail_msg("%s: encode of %zu bytes gave %td", what, len, e);
    }
    for (ptrdiff_t i = 0; i < e; i++) {
        bool ok = (enc[i] >= 'A' && enc[i] <= 'Z') || (enc[i] >= 'a' && enc[i] <= 'z') ||
                  (enc[i] >= '0' && enc[i] <= '9') || enc[i] == '+' || enc[i] == '/' ||
                  (enc[i] == '=' && i >= e - 2);
        if (!ok) {
            fail_msg("%s: encoded byte %td is %#x", what, i, enc[i]);
        }
    }
    ptrdiff_t d = sl_base64_decode(enc, (size_t)e, dec, SL_BASE64_DECODED_LEN_MAX((size_t)e));
    if (d != (ptrdiff_t)len || (len > 0 && memcmp(dec, in, len) != 0)) {
        fail_msg("%s: round trip of %zu bytes gave %td bytes that differ", what, len, d);
    }
}

static void test_round_trips(void **state)
{
    (void)state;
    uint8_t all[256];
    for (size_t i = 0; i < sizeof(all); i++) {
        all[i] = (uint8_t)i;
    }
    round_trip(all, sizeof(all), "every byte value");
    for (size_t skip = 1; skip <= 3; skip++) {
        round_trip(all + skip, sizeof(all) - skip, "every byte value, shifted");
    }
    uint64_t s = 0x5eed;
    uint8_t buf[300];
    for (int iter = 0; iter < 2000; iter++) {
        size_t len = (size_t)(xorshift64(&s) % (sizeof(buf) + 1));
        for (size_t i = 0; i < len; i++) {
            buf[i] = (uint8_t)xorshift64(&s);
        }
        char what[64];
        snprintf(what, sizeof(what), "random iteration %d", iter);
        round_trip(buf, len, what);
    }
}

/* Flipping any one byte of a valid encoding to any other byte either gives a
 * different valid encoding that decodes differently, or is rejected: the
 * decoder accepts only canonical forms, so no two inputs decode alike. */
static void test_canonical(void **state)
{
    (void)state;
    const char *base = "Zm9vYmE=";
    uint8_t want[8];
    ptrdiff_t wn = sl_base64_decode(U8(base), 8, want, sizeof(want));
    assert_int_equal(wn, 5);
    for (size_t pos = 0; pos < 8; pos++) {
        for (int b = 0; b < 256; b++) {
            uint8_t in[8];
            memcpy(in, base, 8);
            if (in[pos] == (uint8_t)b) {
                continue;
            }
            in[pos] = (uint8_t)b;
            uint8_t got[8];
            ptrdiff_t n = sl_base64_decode(in, 8, got, sizeof(got));
            if (n == wn && memcmp(got, want, (size_t)wn) == 0) {
                fail_msg("byte %zu changed to %#x still decodes to \"fooba\"", pos, b);
            }
        }
    }
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_vectors),  cmocka_unit_test(test_decode_vectors),
        cmocka_unit_test(test_decode_rejects),  cmocka_unit_test(test_room),
        cmocka_unit_test(test_wipe_on_invalid), cmocka_unit_test(test_in_place),
        cmocka_unit_test(test_round_trips),     cmocka_unit_test(test_canonical),
    };
    return cmocka_run_group_tests_name("base64", tests, NULL, NULL);
}
