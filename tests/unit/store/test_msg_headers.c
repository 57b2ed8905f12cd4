/* tests/unit/store/test_msg_headers.c: table-driven tests of store/msg_headers.c.
 *
 * Header blocks are compared byte for byte with Dovecot's layout, for one and
 * several recipients, LF and CRLF storage, the null sender, a UNIX socket
 * peer and values carrying CR/LF/NUL from the wire. Dates are checked at
 * epochs whose expected text came from GNU date(1), an independent oracle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/base.h"
#include "store/msg_headers.h"

#define OUT_LEN_MAX 2048
#define POISON 0xA5

/* Control bytes made visible, so a got/want message shows line endings. */
static void show(char *dst, size_t dst_len, const uint8_t *p, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < dst_len; i++) {
        if (p[i] == '\r') {
            o += (size_t)snprintf(dst + o, dst_len - o, "\\r");
        } else if (p[i] == '\n') {
            o += (size_t)snprintf(dst + o, dst_len - o, "\\n");
        } else if (p[i] == '\t') {
            o += (size_t)snprintf(dst + o, dst_len - o, "\\t");
        } else if (p[i] < 0x20) {
            o += (size_t)snprintf(dst + o, dst_len - o, "\\x%02x", p[i]);
        } else {
            dst[o++] = (char)p[i];
        }
    }
    dst[o] = '\0';
}

static void check_bytes(const char *what, const uint8_t *got, size_t got_len, const char *want)
{
    size_t want_len = strlen(want);
    if (got_len == want_len && memcmp(got, want, want_len) == 0) {
        return;
    }
    char g[4 * OUT_LEN_MAX];
    char w[4 * OUT_LEN_MAX];
    show(g, sizeof(g), got, got_len);
    show(w, sizeof(w), (const uint8_t *)want, want_len);
    fail_msg("%s:\n got  (%zu) \"%s\"\n want (%zu) \"%s\"", what, got_len, g, want_len, w);
}

static sl_slice str_slice(const char *s)
{
    return (sl_slice){(const uint8_t *)s, strlen(s)};
}

/* 2026-11-23 20:30:00 UTC, shown at +0100 as in the header comment. */
#define NOW_SEC 1795465800
#define DATE_TEXT "Mon, 23 Nov 2026 21:30:00 +0100"

static msg_headers_in base_in(void)
{
    return (msg_headers_in){
        .sender = SL_SLICE_LIT("alice@example.org"),
        .rcpt = SL_SLICE_LIT("bob@example.net"),
        .single_rcpt = true,
        .lhlo_name = "mx.example.org",
        .client_ip = "192.0.2.1",
        .hostname = "mail.example.net",
        .trans_id = "AbCdEf0123",
        .smtputf8 = false,
        .now_sec = NOW_SEC,
        .tz_offset_min = 60,
        .crlf = false,
    };
}

/* ---- whole blocks ---- */

typedef struct format_case {
    const char *name;
    void (*edit)(msg_headers_in *in);
    const char *want;
    size_t want_lines;
} format_case;

static void edit_none(msg_headers_in *in)
{
    (void)in;
}

static void edit_multi(msg_headers_in *in)
{
    in->single_rcpt = false;
}

static void edit_crlf(msg_headers_in *in)
{
    in->crlf = true;
}

static void edit_multi_crlf(msg_headers_in *in)
{
    in->single_rcpt = false;
    in->crlf = true;
}

static void edit_null_sender(msg_headers_in *in)
{
    in->sender = (sl_slice){NULL, 0};
}

static void edit_unix_peer(msg_headers_in *in)
{
    in->client_ip = "";
    in->single_rcpt = false;
}

static void edit_utf8(msg_headers_in *in)
{
    in->smtputf8 = true;
    in->sender = str_slice("j\xc3\xb6rg@example.org");
    in->rcpt = str_slice("\xc3\xa5sa@example.net");
}

static void edit_ipv6_empty_lhlo(msg_headers_in *in)
{
    in->client_ip = "2001:db8::1";
    in->lhlo_name = "";
}

/* A client trying to forge header lines through every wire-borne field. */
static void edit_injection(msg_headers_in *in)
{
    in->lhlo_name = "evil\r\nX-Injected: 1";
    in->sender = (sl_slice){(const uint8_t *)"a\r\nb@x\0y", 8};
    in->rcpt = str_slice("c\nd@e");
    in->trans_id = "id\rX";
}

static const format_case format_cases[] = {
    {"single recipient", edit_none,
     "Return-Path: <alice@example.org>\n"
     "Delivered-To: bob@example.net\n"
     "Received: from mx.example.org ([192.0.2.1])\n"
     "\tby mail.example.net with LMTP\n"
     "\tid AbCdEf0123\n"
     "\t(envelope-from <alice@example.org>)\n"
     "\tfor <bob@example.net>; " DATE_TEXT "\n",
     7},
    {"multiple recipients", edit_multi,
     "Return-Path: <alice@example.org>\n"
     "Received: from mx.example.org ([192.0.2.1])\n"
     "\tby mail.example.net with LMTP\n"
     "\tid AbCdEf0123\n"
     "\t(envelope-from <alice@example.org>); " DATE_TEXT "\n",
     5},
    {"single recipient, crlf", edit_crlf,
     "Return-Path: <alice@example.org>\r\n"
     "Delivered-To: bob@example.net\r\n"
     "Received: from mx.example.org ([192.0.2.1])\r\n"
     "\tby mail.example.net with LMTP\r\n"
     "\tid AbCdEf0123\r\n"
     "\t(envelope-from <alice@example.org>)\r\n"
     "\tfor <bob@example.net>; " DATE_TEXT "\r\n",
     7},
    {"multiple recipients, crlf", edit_multi_crlf,
     "Return-Path: <alice@example.org>\r\n"
     "Received: from mx.example.org ([192.0.2.1])\r\n"
     "\tby mail.example.net with LMTP\r\n"
     "\tid AbCdEf0123\r\n"
     "\t(envelope-from <alice@example.org>); " DATE_TEXT "\r\n",
     5},
    {"null sender", edit_null_sender,
     "Return-Path: <>\n"
     "Delivered-To: bob@example.net\n"
     "Received: from mx.example.org ([192.0.2.1])\n"
     "\tby mail.example.net with LMTP\n"
     "\tid AbCdEf0123\n"
     "\t(envelope-from <>)\n"
     "\tfor <bob@example.net>; " DATE_TEXT "\n",
     7},
    {"unix socket peer", edit_unix_peer,
     "Return-Path: <alice@example.org>\n"
     "Received: from mx.example.org\n"
     "\tby mail.example.net with LMTP\n"
     "\tid AbCdEf0123\n"
     "\t(envelope-from <alice@example.org>); " DATE_TEXT "\n",
     5},
    {"smtputf8", edit_utf8,
     "Return-Path: <j\xc3\xb6rg@example.org>\n"
     "Delivered-To: \xc3\xa5sa@example.net\n"
     "Received: from mx.example.org ([192.0.2.1])\n"
     "\tby mail.example.net with UTF8LMTP\n"
     "\tid AbCdEf0123\n"
     "\t(envelope-from <j\xc3\xb6rg@example.org>)\n"
     "\tfor <\xc3\xa5sa@example.net>; " DATE_TEXT "\n",
     7},
    {"ipv6, empty lhlo", edit_ipv6_empty_lhlo,
     "Return-Path: <alice@example.org>\n"
     "Delivered-To: bob@example.net\n"
     "Received: from unknown ([2001:db8::1])\n"
     "\tby mail.example.net with LMTP\n"
     "\tid AbCdEf0123\n"
     "\t(envelope-from <alice@example.org>)\n"
     "\tfor <bob@example.net>; " DATE_TEXT "\n",
     7},
    {"cr, lf and nul replaced", edit_injection,
     "Return-Path: <a  b@x y>\n"
     "Delivered-To: c d@e\n"
     "Received: from evil  X-Injected: 1 ([192.0.2.1])\n"
     "\tby mail.example.net with LMTP\n"
     "\tid id X\n"
     "\t(envelope-from <a  b@x y>)\n"
     "\tfor <c d@e>; " DATE_TEXT "\n",
     7},
};

static size_t count_eol(const uint8_t *p, size_t n)
{
    size_t lines = 0;
    for (size_t i = 0; i < n; i++) {
        lines += p[i] == '\n';
    }
    return lines;
}

static void run_format_case(const format_case *c)
{
    msg_headers_in in = base_in();
    c->edit(&in);
    uint8_t out[OUT_LEN_MAX];
    size_t lines = 0;
    size_t len = msg_headers_format(&in, out, sizeof(out), &lines);
    check_bytes(c->name, out, len, c->want);
    if (lines != c->want_lines) {
        fail_msg("%s: lines got %zu, want %zu", c->name, lines, c->want_lines);
    }
    /* The count is the number of line endings actually written. */
    assert_int_equal(lines, count_eol(out, len));
}

static void test_format(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(format_cases); i++) {
        run_format_case(&format_cases[i]);
    }
}

/* In CRLF mode the stored size is the virtual size; in LF mode the two differ
 * by exactly one byte per line. */
static void test_lines_give_vsize(void **state)
{
    (void)state;
    msg_headers_in in = base_in();
    size_t lf_lines = 0;
    size_t crlf_lines = 0;
    size_t lf_len = msg_headers_format(&in, NULL, 0, &lf_lines);
    in.crlf = true;
    size_t crlf_len = msg_headers_format(&in, NULL, 0, &crlf_lines);
    assert_int_equal(lf_lines, crlf_lines);
    assert_int_equal(lf_len + lf_lines, crlf_len);
}

/* ---- sizing ---- */

static void test_sizing(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(format_cases); i++) {
        const format_case *c = &format_cases[i];
        msg_headers_in in = base_in();
        c->edit(&in);
        size_t lines = 0;
        size_t need = msg_headers_format(&in, NULL, 0, &lines);
        assert_int_equal(need, strlen(c->want));
        assert_int_equal(lines, c->want_lines);

        /* One byte short: the size is still reported and out is untouched. */
        uint8_t out[OUT_LEN_MAX];
        memset(out, POISON, sizeof(out));
        size_t got = msg_headers_format(&in, out, need - 1, NULL);
        assert_int_equal(got, need);
        for (size_t b = 0; b < sizeof(out); b++) {
            if (out[b] != POISON) {
                fail_msg("%s: short buffer written at byte %zu", c->name, b);
            }
        }
        /* Exactly the size: written, nothing past it. */
        got = msg_headers_format(&in, out, need, NULL);
        check_bytes(c->name, out, got, c->want);
        assert_int_equal(out[need], POISON);
    }
}

/* ---- dates ---- */

typedef struct date_case {
    int64_t sec;
    int tz_offset_min;
    const char *want;
} date_case;

/* Expected text from `TZ=... date -R -d @sec`. */
static const date_case date_cases[] = {
    {0, 0, "Thu, 01 Jan 1970 00:00:00 +0000"},
    {-1, 0, "Wed, 31 Dec 1969 23:59:59 +0000"},
    {951782400, 0, "Tue, 29 Feb 2000 00:00:00 +0000"},
    {1709208000, -300, "Thu, 29 Feb 2024 07:00:00 -0500"},
    {INT64_C(-2203891201), 0, "Wed, 28 Feb 1900 23:59:59 +0000"},
    {INT64_C(4107542399), 0, "Sun, 28 Feb 2100 23:59:59 +0000"},
    {INT64_C(4107542400), 0, "Mon, 01 Mar 2100 00:00:00 +0000"},
    {INT64_C(13574606400), 0, "Tue, 29 Feb 2400 12:00:00 +0000"},
    {INT64_C(-11670998400), 0, "Tue, 29 Feb 1600 00:00:00 +0000"},
    {INT64_C(2147483648), 0, "Tue, 19 Jan 2038 03:14:08 +0000"},
    {1767227400, -60, "Wed, 31 Dec 2025 23:30:00 -0100"},
    {1785000000, 345, "Sat, 25 Jul 2026 23:05:00 +0545"},
    {1785000000, -90, "Sat, 25 Jul 2026 15:50:00 -0130"},
    {NOW_SEC, 60, DATE_TEXT},
    {1700000000, 839, "Wed, 15 Nov 2023 12:12:20 +1359"},
    {1700000000, -839, "Tue, 14 Nov 2023 08:14:20 -1359"},
    {INT64_C(253402300799), 0, "Fri, 31 Dec 9999 23:59:59 +0000"},
    {INT64_C(-62135596800), 0, "Mon, 01 Jan 0001 00:00:00 +0000"},
};

static void test_date(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(date_cases); i++) {
        const date_case *c = &date_cases[i];
        char got[MSG_HEADERS_DATE_LEN_MAX];
        memset(got, POISON, sizeof(got));
        size_t len = msg_headers_date(c->sec, c->tz_offset_min, got, sizeof(got));
        if (strcmp(got, c->want) != 0) {
            fail_msg("date(%lld, %d): got \"%s\", want \"%s\"", (long long)c->sec,
                     c->tz_offset_min, got, c->want);
        }
        assert_int_equal(len, strlen(c->want));
    }
}

/* Every day for 400 years (one full Gregorian cycle) against a plain
 * day-by-day calendar walk: catches any off-by-one the table misses. */
static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static void test_date_walk(void **state)
{
    (void)state;
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    static const char *const wdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    /* Start 1900-01-01, a Monday: -2208988800. */
    int64_t sec = INT64_C(-2208988800);
    int wday = 1;
    for (int64_t y = 1900; y < 2300; y++) {
        for (int m = 0; m < 12; m++) {
            int days = mdays[m] + (m == 1 && is_leap(y) ? 1 : 0);
            for (int d = 1; d <= days; d++) {
                char want[MSG_HEADERS_DATE_LEN_MAX];
                snprintf(want, sizeof(want), "%s, %02d %s %04lld 12:00:00 +0000", wdays[wday], d,
                         months[m], (long long)y);
                char got[MSG_HEADERS_DATE_LEN_MAX];
                msg_headers_date(sec + 12 * 3600, 0, got, sizeof(got));
                if (strcmp(got, want) != 0) {
                    fail_msg("day walk: got \"%s\", want \"%s\"", got, want);
                }
                sec += 86400;
                wday = (wday + 1) % 7;
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),     cmocka_unit_test(test_lines_give_vsize),
        cmocka_unit_test(test_sizing),     cmocka_unit_test(test_date),
        cmocka_unit_test(test_date_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
