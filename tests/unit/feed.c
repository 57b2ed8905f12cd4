/* tests/unit/feed.c: see feed.h. */
#include "tests/unit/feed.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tb_put(tbuf *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->ptr = realloc(t->ptr, t->cap);
        assert_non_null(t->ptr);
    }
    memcpy(t->ptr + t->len, s, n);
    t->len += n;
    t->ptr[t->len] = '\0';
}

void tb_str(tbuf *t, const char *s)
{
    tb_put(t, s, strlen(s));
}

void tb_fmt(tbuf *t, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(tmp));
    tb_put(t, tmp, (size_t)n);
}

bool feed_within(const uint8_t *ptr, size_t len, const uint8_t *base, size_t base_len)
{
    return ptr >= base && ptr <= base + base_len && len <= (size_t)(base + base_len - ptr);
}

static void feed_piece(const feed_ops *ops, const uint8_t *src, size_t n)
{
    uint8_t *piece = malloc(n > 0 ? n : 1);
    assert_non_null(piece);
    if (n > 0) {
        memcpy(piece, src, n);
    }
    ops->piece(ops->ctx, piece, n);
    memset(piece, 0xa5, n);
    free(piece);
}

static void expect_transcript(const char *name, const char *how, char *got, const char *want)
{
    if (strcmp(got, want) != 0) {
        print_error("case %s, fed %s:\n--- got:\n%s--- want:\n%s---\n", name, how, got, want);
        free(got);
        fail();
    }
    free(got);
}

/* Feeds in[0..len) cut at the given split offsets (ascending, each in 0..len). */
static char *feed_split(const feed_ops *ops, const uint8_t *in, size_t len, const size_t *cuts,
                        size_t ncuts, const char *how, bool whole)
{
    ops->begin(ops->ctx, how, whole);
    size_t at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        feed_piece(ops, in + at, end - at);
        at = end;
    }
    return ops->finish(ops->ctx);
}

uint64_t feed_xorshift64(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static char *feed_bytewise(const feed_ops *ops, const uint8_t *in, size_t len)
{
    ops->begin(ops->ctx, "byte by byte", false);
    for (size_t i = 0; i < len; i++) {
        feed_piece(ops, in + i, 1);
    }
    return ops->finish(ops->ctx);
}

static char *feed_random(const feed_ops *ops, const uint8_t *in, size_t len, uint64_t seed)
{
    ops->begin(ops->ctx, "in random splits", false);
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    size_t at = 0;
    while (at < len) {
        size_t want_n = (size_t)(feed_xorshift64(&s) % ops->random_piece_bytes_max);
        size_t n = SL_MIN(len - at, want_n); /* SL_MIN evaluates twice: no call inside */
        feed_piece(ops, in + at, n);         /* n may be 0: an empty read must be harmless */
        at += n;
    }
    return ops->finish(ops->ctx);
}

void feed_check_all_ways(const feed_ops *ops, const char *name, const uint8_t *in, size_t len,
                         const char *want)
{
    SL_ASSERT(ops->random_piece_bytes_max > 0);
    expect_transcript(name, "whole", feed_split(ops, in, len, NULL, 0, "whole", true), want);
    expect_transcript(name, "byte by byte", feed_bytewise(ops, in, len), want);
    for (uint64_t seed = 1; seed <= FEED_RANDOM_SEEDS; seed++) {
        char how[64];
        snprintf(how, sizeof(how), "in random splits, seed %" PRIu64, seed);
        expect_transcript(name, how, feed_random(ops, in, len, seed), want);
    }
    if (len > FEED_TWO_PIECE_LEN_MAX) {
        return;
    }
    for (size_t k = 0; k <= len; k++) {
        char how[64];
        snprintf(how, sizeof(how), "in two pieces cut at %zu", k);
        expect_transcript(name, how, feed_split(ops, in, len, &k, 1, how, false), want);
    }
}
