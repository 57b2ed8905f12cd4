/* store/fsbarrier.c: the syncfs() barrier thread (see fsbarrier.h). */
#include "store/fsbarrier.h"

#include "core/alloc.h"
#include "core/base/base.h"
#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ANSWER_RING_ENTRIES 256
#define BARRIER_THREADS_MAX 4

typedef struct request {
    size_t fs; /* index in the syncing thread's table, set by its round */
    int ring_fd;
    sl_op *op;
    dev_t dev;
    uint64_t errors_seen;
    const char *dir; /* the caller's, valid until the answer */
    size_t dir_len;
} request;

typedef struct fs_entry {
    dev_t dev;
    int fd;
    bool wanted;
    int res;
} fs_entry;

typedef struct fs_barrier fs_barrier;

/* One syncing thread and what only it touches. */
typedef struct syncer {
    fs_barrier *b;
    pthread_t thread;
    request *round;
    size_t round_cap;
    fs_entry *fs;
    size_t fs_n;
    struct io_uring answers;
} syncer;

struct fs_barrier {
    syncer th[BARRIER_THREADS_MAX];
    unsigned threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    request *queue; /* under mu */
    size_t queue_n;
    size_t queue_cap;

    _Atomic uint64_t errors;
    _Atomic uint64_t rounds;
    _Atomic uint64_t requests;
    _Atomic uint64_t busy_us;
};

static fs_entry *fs_for(syncer *b, const request *rq)
{
    fs_entry *e = NULL;
    for (size_t i = 0; i < b->fs_n && e == NULL; i++) {
        if (b->fs[i].dev == rq->dev) {
            e = &b->fs[i];
        }
    }
    if (e == NULL) {
        b->fs = sl_realloc(b->fs, (b->fs_n + 1) * sizeof(*b->fs));
        e = &b->fs[b->fs_n++];
        e->dev = rq->dev;
        e->wanted = false;
        e->res = 0;
        e->fd = -1;
    }
    if (e->fd < 0) {
        /* Opened once and kept: syncfs() reports each error to an open
         * file once, and a new file still sees an error nobody has seen
         * yet. A failed open is tried again by the next request. */
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%.*s", (int)rq->dir_len, rq->dir);
        e->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (e->fd < 0) {
            sl_error("sync barrier: open %s: %s", path, strerror(errno));
        }
    }
    return e;
}

static int sync_one(fs_entry *e)
{
    if (e->fd < 0) {
        return -EIO;
    }
    if (syncfs(e->fd) != 0) {
        return -errno;
    }
    if (fsync(e->fd) != 0) {
        return -errno;
    }
    return 0;
}

static struct io_uring_sqe *answer_sqe(syncer *b)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&b->answers);
    while (sqe == NULL) {
        (void)io_uring_submit(&b->answers);
        struct io_uring_cqe *cqe;
        while (io_uring_peek_cqe(&b->answers, &cqe) == 0) {
            io_uring_cqe_seen(&b->answers, cqe);
        }
        sqe = io_uring_get_sqe(&b->answers);
    }
    return sqe;
}

static void answer(syncer *b, const request *rq, int res)
{
    struct io_uring_sqe *sqe = answer_sqe(b);
    io_uring_prep_msg_ring(sqe, rq->ring_fd, (unsigned)res, (uint64_t)(uintptr_t)rq->op, 0);
}

static void run_round(syncer *y, request *rq, size_t n)
{
    fs_barrier *b = y->b;
    for (size_t i = 0; i < n; i++) {
        fs_entry *e = fs_for(y, &rq[i]);
        e->wanted = true;
        rq[i].fs = (size_t)(e - y->fs);
    }
    uint64_t t0 = sl_clock_us();
    for (size_t i = 0; i < y->fs_n; i++) {
        fs_entry *e = &y->fs[i];
        if (e->wanted) {
            e->wanted = false;
            e->res = sync_one(e);
            if (e->res != 0) {
                sl_error("sync barrier: syncfs: %s", strerror(-e->res));
                atomic_fetch_add(&b->errors, 1);
            }
        }
    }
    atomic_fetch_add(&b->busy_us, sl_clock_us() - t0);
    atomic_fetch_add(&b->rounds, 1);
    uint64_t errors = atomic_load(&b->errors);
    for (size_t i = 0; i < n; i++) {
        int res = y->fs[rq[i].fs].res;
        if (res == 0 && rq[i].errors_seen != errors) {
            res = -EIO; /* an error reported to an earlier round */
        }
        answer(y, &rq[i], res);
    }
    atomic_fetch_add(&b->requests, n);
    int rc = io_uring_submit(&y->answers);
    if (rc < 0) {
        sl_error("sync barrier: answers: %s", strerror(-rc));
    }
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&y->answers, &cqe) == 0) {
        if (cqe->res < 0) {
            sl_error("sync barrier: answer: %s", strerror(-cqe->res));
        }
        io_uring_cqe_seen(&y->answers, cqe);
    }
}

static void *barrier_main(void *arg)
{
    syncer *y = arg;
    fs_barrier *b = y->b;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (b->queue_n == 0 && !b->stop) {
            pthread_cond_wait(&b->cv, &b->mu);
        }
        if (b->queue_n == 0) {
            break;
        }
        /* Swap the queue for the round buffer: requests from here on wait
         * for the next round. */
        request *rq = b->queue;
        size_t n = b->queue_n;
        size_t cap = b->queue_cap;
        b->queue = y->round;
        b->queue_cap = y->round_cap;
        b->queue_n = 0;
        y->round = rq;
        y->round_cap = cap;
        pthread_mutex_unlock(&b->mu);
        run_round(y, rq, n);
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

fs_barrier *fs_barrier_new(unsigned threads, char *err, size_t err_len)
{
    fs_barrier *b = sl_calloc(1, sizeof(*b));
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->threads = threads < 1 ? 1 : threads > BARRIER_THREADS_MAX ? BARRIER_THREADS_MAX : threads;
    for (unsigned i = 0; i < b->threads; i++) {
        syncer *y = &b->th[i];
        y->b = b;
        int rc = io_uring_queue_init(ANSWER_RING_ENTRIES, &y->answers, 0);
        if (rc < 0) {
            snprintf(err, err_len, "sync barrier: io_uring: %s", strerror(-rc));
            b->threads = i;
            fs_barrier_free(&b);
            return NULL;
        }
        rc = pthread_create(&y->thread, NULL, barrier_main, y);
        if (rc != 0) {
            snprintf(err, err_len, "sync barrier: thread: %s", strerror(rc));
            io_uring_queue_exit(&y->answers);
            b->threads = i;
            fs_barrier_free(&b);
            return NULL;
        }
        pthread_setname_np(y->thread, "syncfs");
    }
    return b;
}

void fs_barrier_free(fs_barrier **bp)
{
    fs_barrier *b = *bp;
    if (b == NULL) {
        return;
    }
    pthread_mutex_lock(&b->mu);
    b->stop = true;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    for (unsigned t = 0; t < b->threads; t++) {
        syncer *y = &b->th[t];
        pthread_join(y->thread, NULL);
        for (size_t i = 0; i < y->fs_n; i++) {
            if (y->fs[i].fd >= 0) {
                close(y->fs[i].fd);
            }
        }
        io_uring_queue_exit(&y->answers);
        free(y->fs);
        free(y->round);
    }
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    free(b->queue);
    sl_free(bp);
}

void fs_barrier_request(fs_barrier *b, int ring_fd, sl_op *op, dev_t dev, const char *dir,
                        size_t dir_len, uint64_t errors_seen)
{
    pthread_mutex_lock(&b->mu);
    if (b->queue_n == b->queue_cap) {
        b->queue_cap = b->queue_cap == 0 ? 64 : b->queue_cap * 2;
        b->queue = sl_realloc(b->queue, b->queue_cap * sizeof(*b->queue));
    }
    b->queue[b->queue_n++] = (request){.ring_fd = ring_fd, .op = op, .dev = dev,
                                       .errors_seen = errors_seen, .dir = dir, .dir_len = dir_len};
    if (b->queue_n == 1) {
        pthread_cond_signal(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
}

uint64_t fs_barrier_errors(const fs_barrier *b)
{
    return atomic_load(&b->errors);
}

void fs_barrier_get_stats(const fs_barrier *b, fs_barrier_stats *out)
{
    out->rounds = atomic_load(&b->rounds);
    out->requests = atomic_load(&b->requests);
    out->errors = atomic_load(&b->errors);
    out->busy_us = atomic_load(&b->busy_us);
}
