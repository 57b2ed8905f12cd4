/* bench/lmtpblast_hist.c: see lmtpblast_hist.h. */
#include "bench/lmtpblast_hist.h"

#include "core/base/base.h"

#include <string.h>

#define SUB_COUNT (1u << LMTPBLAST_HIST_SUB_BITS)

void lmtpblast_hist_init(lmtpblast_hist *h)
{
    memset(h, 0, sizeof(*h));
}

static unsigned bucket_of(uint64_t v)
{
    if (v < 2 * SUB_COUNT) {
        return (unsigned)v;
    }
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - LMTPBLAST_HIST_SUB_BITS;
    return shift * SUB_COUNT + (unsigned)(v >> shift);
}

/* The midpoint of bucket i: the inverse of bucket_of. */
static uint64_t bucket_mid(unsigned i)
{
    if (i < 2 * SUB_COUNT) {
        return i;
    }
    unsigned shift = i / SUB_COUNT - 1;
    uint64_t lo = (uint64_t)(i - shift * SUB_COUNT) << shift;
    return lo + (((uint64_t)1 << shift) - 1) / 2;
}

void lmtpblast_hist_record(lmtpblast_hist *h, uint64_t value_ns)
{
    if (value_ns > h->max_ns) {
        h->max_ns = value_ns;
    }
    if (value_ns > LMTPBLAST_HIST_MAX_NS) {
        h->clamped++;
        value_ns = LMTPBLAST_HIST_MAX_NS;
    }
    unsigned i = bucket_of(value_ns);
    SL_ASSERT(i < LMTPBLAST_HIST_BUCKETS);
    h->counts[i]++;
    h->count++;
}

uint64_t lmtpblast_hist_quantile_ns(const lmtpblast_hist *h, double q)
{
    SL_ASSERT(q > 0.0);
    SL_ASSERT(q <= 1.0);
    if (h->count == 0) {
        return 0;
    }
    double want = q * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want) {
        rank++;
    }
    if (rank < 1) {
        rank = 1;
    }
    if (rank > h->count) {
        rank = h->count;
    }
    uint64_t seen = 0;
    for (unsigned i = 0; i < LMTPBLAST_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t mid = bucket_mid(i);
            return mid < h->max_ns ? mid : h->max_ns;
        }
    }
    return h->max_ns;
}
