/* tests/fuzz/fuzz_split.h: how the streaming-parser fuzz targets read one
 * input. The first FUZZ_SPLIT_HEADER_BYTES bytes are not parser input: byte 0
 * bits 0-1 give the number of cuts (0 to 3), bit 2 is a flag each target uses
 * for its own choice (a line limit); bytes 1 to 3 place the cuts as fractions
 * of the rest. Each target then feeds the rest whole, cut into the four pieces
 * the cuts make, and byte by byte, and checks that all runs agree. */
#ifndef SL_FUZZ_SPLIT_H
#define SL_FUZZ_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FUZZ_SPLIT_HEADER_BYTES 4
#define FUZZ_SPLIT_BYTEWISE_LEN_MAX 1024 /* longer inputs skip the byte-by-byte run */

typedef struct fuzz_split {
    const uint8_t *in; /* the parser input: data past the header */
    size_t len;
    size_t cuts[3]; /* ascending; unused cuts are len */
    bool flag;
} fuzz_split;

/* False when data is too short to hold the header. */
static inline bool fuzz_split_init(fuzz_split *f, const uint8_t *data, size_t size)
{
    if (size < FUZZ_SPLIT_HEADER_BYTES) {
        return false;
    }
    size_t ncuts = data[0] & 3;
    f->flag = (data[0] & 4) != 0;
    f->in = data + FUZZ_SPLIT_HEADER_BYTES;
    f->len = size - FUZZ_SPLIT_HEADER_BYTES;
    for (size_t i = 0; i < 3; i++) {
        f->cuts[i] = i < ncuts ? data[1 + i] * f->len / 256 : f->len;
    }
    for (size_t i = 0; i < 3; i++) {
        for (size_t j = i + 1; j < 3; j++) {
            if (f->cuts[j] < f->cuts[i]) {
                size_t t = f->cuts[i];
                f->cuts[i] = f->cuts[j];
                f->cuts[j] = t;
            }
        }
    }
    return true;
}

/* The end of piece i (0 to 3) of the cut run; piece i starts where i - 1 ended. */
static inline size_t fuzz_split_end(const fuzz_split *f, size_t i)
{
    return i < 3 ? f->cuts[i] : f->len;
}

#endif
