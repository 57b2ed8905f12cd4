/* bench/lmtpblast_hist.h: a fixed-size log-linear latency histogram in the
 * spirit of HdrHistogram, for lmtpblast.
 *
 * Values are nanoseconds. Each power-of-two range is split into 128 linear
 * sub-buckets, so a bucket is at most 1/128 of its value wide and the value
 * reported for it (its midpoint) is within 0.4% of any value recorded there.
 * Values above LMTPBLAST_HIST_MAX_NS (100 s) are clamped into the top bucket;
 * the exact maximum is kept separately. No allocation: the counts live in
 * the struct (about 30 KiB), so recording is two shifts and an increment. */
#ifndef LMTPBLAST_HIST_H
#define LMTPBLAST_HIST_H

#include <stdint.h>

#define LMTPBLAST_HIST_SUB_BITS 7
#define LMTPBLAST_HIST_MAX_NS 100000000000ull /* 100 s */
/* Values below 256 ns get one bucket each; above, a value with top bit b
 * lands in range b - 7. 100 s < 2^37 makes 29 the top range: 256 + 29 * 128. */
#define LMTPBLAST_HIST_BUCKETS ((29 + 2) << LMTPBLAST_HIST_SUB_BITS)

typedef struct lmtpblast_hist {
    uint64_t count;
    uint64_t max_ns;
    uint64_t clamped; /* values above LMTPBLAST_HIST_MAX_NS */
    uint64_t counts[LMTPBLAST_HIST_BUCKETS];
} lmtpblast_hist;

void lmtpblast_hist_init(lmtpblast_hist *h);
void lmtpblast_hist_record(lmtpblast_hist *h, uint64_t value_ns);

/* The value at quantile q (0 < q <= 1) in nanoseconds: the midpoint of the
 * bucket holding the ceil(q * count)-th smallest value, never above the exact
 * maximum. 0 when nothing was recorded. */
uint64_t lmtpblast_hist_quantile_ns(const lmtpblast_hist *h, double q);

#endif
