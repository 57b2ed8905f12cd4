/* core/bufring.c: see bufring.h. */
#include "core/bufring.h"

#include "core/alloc.h"
#include "core/base/base.h"

#include <stdlib.h>
#include <string.h>

int sl_bufring_init(sl_bufring *b, sl_ring *ring, int bgid, unsigned count, size_t buf_bytes)
{
    SL_ASSERT(count > 0 && (count & (count - 1)) == 0);
    SL_ASSERT(count <= 32768);
    memset(b, 0, sizeof(*b));
    int err = 0;
    b->br = sl_ring_setup_buf_ring(ring, count, bgid, &err);
    if (b->br == NULL) {
        return err;
    }
    b->ring = ring;
    b->bgid = bgid;
    b->count = count;
    b->buf_bytes = buf_bytes;
    b->mem = sl_malloc(count * buf_bytes);
    b->refs = sl_calloc(count, sizeof(*b->refs));
    unsigned mask = io_uring_buf_ring_mask(count);
    for (unsigned i = 0; i < count; i++) {
        io_uring_buf_ring_add(b->br, b->mem + i * buf_bytes, (unsigned)buf_bytes, (unsigned short)i,
                              mask, (int)i);
    }
    io_uring_buf_ring_advance(b->br, (int)count);
    return 0;
}

void sl_bufring_deinit(sl_bufring *b)
{
    if (b->br != NULL) {
        sl_ring_free_buf_ring(b->ring, b->br, b->count, b->bgid);
    }
    sl_free(&b->mem);
    sl_free(&b->refs);
}

uint8_t *sl_bufring_take(sl_bufring *b, uint16_t bid)
{
    SL_ASSERT(bid < b->count);
    SL_ASSERT(b->refs[bid] == 0);
    b->refs[bid] = 1;
    b->out++;
    return b->mem + (size_t)bid * b->buf_bytes;
}

uint8_t *sl_bufring_ptr(const sl_bufring *b, uint16_t bid)
{
    SL_ASSERT(bid < b->count);
    return b->mem + (size_t)bid * b->buf_bytes;
}

void sl_bufring_pin(sl_bufring *b, uint16_t bid)
{
    SL_ASSERT(bid < b->count);
    SL_ASSERT(b->refs[bid] > 0);
    b->refs[bid]++;
}

void sl_bufring_unpin(sl_bufring *b, uint16_t bid)
{
    SL_ASSERT(bid < b->count);
    SL_ASSERT(b->refs[bid] > 0);
    if (--b->refs[bid] > 0) {
        return;
    }
    io_uring_buf_ring_add(b->br, sl_bufring_ptr(b, bid), (unsigned)b->buf_bytes, bid,
                          io_uring_buf_ring_mask(b->count), (int)b->returned);
    b->returned++;
    b->out--;
}

void sl_bufring_publish(sl_bufring *b)
{
    if (b->returned > 0) {
        io_uring_buf_ring_advance(b->br, (int)b->returned);
        b->returned = 0;
    }
}
