/* core/ring.h: the one io_uring wrapper. Each delivery core owns one sl_ring
 * (SINGLE_ISSUER + DEFER_TASKRUN) and only that core's thread touches it.
 *
 * Every submission carries a pointer to an sl_op embedded in its owner (no
 * per-op malloc). Completions are reaped into a batch first and dispatched
 * afterwards, so a handler may submit freely. Only this file calls
 * io_uring_get_sqe(): sl_ring_sqe() never returns NULL (a full SQ is
 * submitted and retried, never dropped). */
#ifndef SL_RING_H
#define SL_RING_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct sl_op sl_op;
/* Called on the owning core for every CQE of op. flags are the CQE flags
 * (IORING_CQE_F_MORE, buffer id, ...). */
typedef void (*sl_op_fn)(sl_op *op, int res, uint32_t flags);

struct sl_op {
    sl_op_fn fn;
};

typedef struct sl_ring {
    struct io_uring ring;
    unsigned pending; /* SQEs prepared but not yet submitted */
    uint64_t loops;
    uint64_t busy_ns; /* time spent dispatching, for loop utilisation */
} sl_ring;

/* Set up a ring with entries SQEs. Returns 0 or -errno. */
int sl_ring_init(sl_ring *r, unsigned entries);
void sl_ring_deinit(sl_ring *r);

/* A fresh SQE whose user_data is op. Never NULL. */
struct io_uring_sqe *sl_ring_sqe(sl_ring *r, sl_op *op);

/* Submit what is pending, wait for at least one completion (or timeout_ms,
 * 0 = do not wait), then dispatch every reaped CQE. Returns the number of
 * CQEs dispatched, or -errno from io_uring_enter other than EINTR/ETIME. */
int sl_ring_run_once(sl_ring *r, unsigned timeout_ms);

/* Submit what is pending now. */
int sl_ring_submit(sl_ring *r);

/* Ask the kernel to cancel the operation of target (its own CQE then comes
 * with -ECANCELED, or normally if it already finished); the cancel's own
 * completion is ignored. */
void sl_ring_cancel(sl_ring *r, sl_op *target);

/* Helpers the kernel supports but liburing 2.3 does not wrap. */

/* Set up a provided-buffer ring (liburing 2.4's io_uring_setup_buf_ring). */
struct io_uring_buf_ring *sl_ring_setup_buf_ring(sl_ring *r, unsigned entries, int bgid,
                                                 int *err_out);
void sl_ring_free_buf_ring(sl_ring *r, struct io_uring_buf_ring *br, unsigned entries, int bgid);

#endif
