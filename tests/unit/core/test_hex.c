/* tests/unit/core/test_hex.c: core/base/hex.c: known encodings, decoding of
 * either case, the rejects (odd length, non-digits, no room) and round trips
 * of every byte value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/base/base.h"
#include "core/base/hex.h"

#define U8(s) ((const uint8_t *)(s))

static void test_encode(void **state)
{
    (void)state;
    static const struct {
        const char *plain;
        size_t len;
        const char *want;
    } cases[] = {{"", 0, ""}, {"f", 1, "66"}, {"\x00\xff\x10", 3, "00ff10"},
                 {"\xab\xcd\xef", 3, "abcdef"}};
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        size_t n = cases[i].len;
        char got[16];
        memset(got, 'X', sizeof(got));
        sl_hex_encode(U8(cases[i].plain), n, got);
        if (memcmp(got, cases[i].want, 2 * n) != 0 || got[2 * n] != 'X') {
            fail_msg("case %zu: got %.*s, want %s (and nothing written past it)", i, (int)(2 * n),
                     got, cases[i].want);
        }
    }
}

static void test_decode(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        ptrdiff_t want_len;
        const char *want;
    } cases[] = {
        {"", 0, ""},           {"66", 1, "f"},     {"AbCdEf", 3, "\xab\xcd\xef"},
        {"6", -1, NULL},       {"6g", -1, NULL},   {"g6", -1, NULL},
        {"66 ", -1, NULL},     {"0x66", -1, NULL}, {"6:", -1, NULL},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        uint8_t out[8];
        ptrdiff_t got = sl_hex_decode(cases[i].in, strlen(cases[i].in), out, sizeof(out));
        if (got != cases[i].want_len) {
            fail_msg("case \"%s\": got %td, want %td", cases[i].in, got, cases[i].want_len);
        }
        if (got > 0 && memcmp(out, cases[i].want, (size_t)got) != 0) {
            fail_msg("case \"%s\": wrong bytes", cases[i].in);
        }
    }
}

static void test_no_room(void **state)
{
    (void)state;
    uint8_t out[2] = {0x11, 0x22};
    ptrdiff_t got = sl_hex_decode("aabbcc", 6, out, 2);
    if (got != -1) {
        fail_msg("got %td, want -1 when dst holds 2 of 3 bytes", got);
    }
    if (out[0] != 0x11 || out[1] != 0x22) {
        fail_msg("dst written although there was no room");
    }
    assert_int_equal(sl_hex_decode("aabb", 4, out, 2), 2);
}

static void test_round_trip_every_byte(void **state)
{
    (void)state;
    uint8_t all[256];
    for (size_t i = 0; i < sizeof(all); i++) {
        all[i] = (uint8_t)i;
    }
    char text[2 * sizeof(all)];
    sl_hex_encode(all, sizeof(all), text);
    for (size_t i = 0; i < sizeof(text); i++) {
        if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f'))) {
            fail_msg("digit %zu is '%c', want lower-case hex", i, text[i]);
        }
    }
    uint8_t back[sizeof(all)];
    assert_int_equal(sl_hex_decode(text, sizeof(text), back, sizeof(back)), (ptrdiff_t)sizeof(all));
    assert_memory_equal(back, all, sizeof(all));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_no_room),
        cmocka_unit_test(test_round_trip_every_byte),
    };
    return cmocka_run_group_tests_name("hex", tests, NULL, NULL);
}
