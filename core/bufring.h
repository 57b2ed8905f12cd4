/* core/bufring.h: one core's provided-buffer ring for multishot recv.
 *
 * A buffer has one owner at a time: the kernel (in the ring), then the
 * connection whose recv filled it, which may pin it further (body spans
 * waiting to be written). sl_bufring_take() moves a buffer from the kernel
 * to the caller with one reference; sl_bufring_pin()/sl_bufring_unpin()
 * count further holders; at zero the buffer goes back to the kernel. */
#ifndef SL_BUFRING_H
#define SL_BUFRING_H

#include "core/ring.h"

#include <stddef.h>
#include <stdint.h>

typedef struct sl_bufring {
    sl_ring *ring;
    struct io_uring_buf_ring *br;
    int bgid;
    unsigned count;      /* power of two */
    size_t buf_bytes;
    uint8_t *mem;        /* count * buf_bytes */
    uint32_t *refs;      /* 0 = owned by the kernel */
    unsigned out;        /* buffers currently outside the kernel */
    unsigned returned;   /* buffers added since the last advance */
} sl_bufring;

int sl_bufring_init(sl_bufring *b, sl_ring *ring, int bgid, unsigned count, size_t buf_bytes);
void sl_bufring_deinit(sl_bufring *b);

/* A recv CQE handed us buffer bid: take ownership (refs = 1). */
uint8_t *sl_bufring_take(sl_bufring *b, uint16_t bid);
uint8_t *sl_bufring_ptr(const sl_bufring *b, uint16_t bid);
void sl_bufring_pin(sl_bufring *b, uint16_t bid);
/* Drop one reference; at zero the buffer is handed back to the kernel. */
void sl_bufring_unpin(sl_bufring *b, uint16_t bid);
/* Make returned buffers visible to the kernel (once per loop iteration). */
void sl_bufring_publish(sl_bufring *b);

#endif
