/* core/ring.c: see ring.h. */
#include "core/ring.h"

#include "core/base/base.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define RING_REAP_BATCH 256

int sl_ring_init(sl_ring *r, unsigned entries)
{
    memset(r, 0, sizeof(*r));
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL |
              IORING_SETUP_CQSIZE;
    p.cq_entries = entries * 4;
    return io_uring_queue_init_params(entries, &r->ring, &p);
}

void sl_ring_deinit(sl_ring *r)
{
    io_uring_queue_exit(&r->ring);
}

int sl_ring_submit(sl_ring *r)
{
    if (r->pending == 0) {
        return 0;
    }
    int rc;
    do {
        rc = io_uring_submit(&r->ring);
    } while (rc == -EINTR);
    if (rc >= 0) {
        r->pending = 0;
    }
    return rc;
}

struct io_uring_sqe *sl_ring_sqe(sl_ring *r, sl_op *op)
{
    SL_ASSERT(op != NULL);
    SL_ASSERT(op->fn != NULL);
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    while (sqe == NULL) {
        int rc = io_uring_submit(&r->ring);
        SL_ASSERT(rc >= 0 || rc == -EINTR || rc == -EBUSY || rc == -EAGAIN);
        if (rc == -EBUSY || rc == -EAGAIN) {
            /* CQ overflow: completions must be reaped before more can go in. */
            io_uring_get_events(&r->ring);
        }
        if (rc > 0) {
            r->pending = 0;
        }
        sqe = io_uring_get_sqe(&r->ring);
    }
    io_uring_sqe_set_data(sqe, op);
    r->pending++;
    return sqe;
}

typedef struct reaped {
    sl_op *op;
    int res;
    uint32_t flags;
} reaped;

static unsigned reap(sl_ring *r, reaped *out, unsigned max)
{
    struct io_uring_cqe *cqe;
    unsigned head;
    unsigned n = 0;
    io_uring_for_each_cqe(&r->ring, head, cqe)
    {
        if (n == max) {
            break;
        }
        out[n].op = io_uring_cqe_get_data(cqe);
        out[n].res = cqe->res;
        out[n].flags = cqe->flags;
        n++;
    }
    io_uring_cq_advance(&r->ring, n);
    return n;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int sl_ring_run_once(sl_ring *r, unsigned timeout_ms)
{
    struct io_uring_cqe *cqe = NULL;
    struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                   .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
    SL_ASSERT(timeout_ms > 0);
    int rc = io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, &ts, NULL);
    r->pending = 0;
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
        return rc;
    }
    uint64_t t0 = now_ns();
    reaped batch[RING_REAP_BATCH];
    int total = 0;
    unsigned n;
    do {
        n = reap(r, batch, RING_REAP_BATCH);
        for (unsigned i = 0; i < n; i++) {
            batch[i].op->fn(batch[i].op, batch[i].res, batch[i].flags);
        }
        total += (int)n;
    } while (n == RING_REAP_BATCH);
    r->loops++;
    r->busy_ns += now_ns() - t0;
    return total;
}

static void ignore_cqe(sl_op *op, int res, uint32_t flags)
{
    (void)op;
    (void)res;
    (void)flags;
}

static sl_op ignore_op = {ignore_cqe};

void sl_ring_cancel(sl_ring *r, sl_op *target)
{
    io_uring_prep_cancel(sl_ring_sqe(r, &ignore_op), target, 0);
}

struct io_uring_buf_ring *sl_ring_setup_buf_ring(sl_ring *r, unsigned entries, int bgid,
                                                 int *err_out)
{
    size_t len = entries * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) {
        *err_out = -errno;
        return NULL;
    }
    struct io_uring_buf_reg reg = {.ring_addr = (unsigned long)mem,
                                   .ring_entries = entries,
                                   .bgid = (uint16_t)bgid};
    int rc = io_uring_register_buf_ring(&r->ring, &reg, 0);
    if (rc != 0) {
        munmap(mem, len);
        *err_out = rc;
        return NULL;
    }
    struct io_uring_buf_ring *br = mem;
    io_uring_buf_ring_init(br);
    *err_out = 0;
    return br;
}

void sl_ring_free_buf_ring(sl_ring *r, struct io_uring_buf_ring *br, unsigned entries, int bgid)
{
    io_uring_unregister_buf_ring(&r->ring, bgid);
    munmap(br, entries * sizeof(struct io_uring_buf));
}
