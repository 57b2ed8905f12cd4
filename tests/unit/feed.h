/* tests/unit/feed.h: the harness every streaming parser test shares
 * (STYLE.md: each case fed whole, one byte at a time and in seeded random
 * splits, plus every two-piece split of short inputs).
 *
 * A test renders the events of each run into a transcript (tbuf) and every
 * transcript must equal the case's expected text. Each piece is copied into
 * its own heap buffer, poisoned and freed once fed, so a slice that outlives
 * its buffer is caught (by ASan, or by the poison). Used from cmocka tests:
 * failures end the test through cmocka's fail(). */
#ifndef SL_TEST_FEED_H
#define SL_TEST_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/base.h"

#define FEED_RANDOM_SEEDS 8
#define FEED_TWO_PIECE_LEN_MAX 2048 /* longer inputs skip the two-piece splits */

/* A growable NUL-terminated transcript; ptr is NULL until the first put. */
typedef struct tbuf {
    char *ptr;
    size_t len;
    size_t cap;
} tbuf;

void tb_put(tbuf *t, const char *s, size_t n);
void tb_str(tbuf *t, const char *s);
void tb_fmt(tbuf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* true if [ptr, ptr + len) lies inside [base, base + base_len). */
bool feed_within(const uint8_t *ptr, size_t len, const uint8_t *base, size_t base_len);

/* The seeded generator behind the random splits: *state must start non-zero. */
uint64_t feed_xorshift64(uint64_t *state);

/* One parser under test. begin starts a run (whole: the input comes as one
 * buffer), piece feeds one heap copy of part of the input (valid only during
 * the call), finish ends the run and returns its transcript (caller frees). */
typedef struct feed_ops {
    void (*begin)(void *ctx, const char *how, bool whole);
    void (*piece)(void *ctx, const uint8_t *piece, size_t n);
    char *(*finish)(void *ctx);
    void *ctx;
    size_t random_piece_bytes_max; /* random pieces take 0..max-1 bytes */
} feed_ops;

/* Feeds in[0..len) every way and fails the test, naming the case and the
 * way, unless every transcript equals want. */
void feed_check_all_ways(const feed_ops *ops, const char *name, const uint8_t *in, size_t len,
                         const char *want);

#endif
