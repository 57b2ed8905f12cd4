/* auth/pwverify.c: see pwverify.h.
 *
 * queue_max job slots, preallocated. A slot is free, pending (FIFO for the
 * workers), running, or done (FIFO for the auth thread). One mutex guards
 * the index queues only: a worker holds it to take or hand back an index,
 * never while hashing. Since every slot that is not free counts against
 * queue_max, the done queue can never overflow. */
#include "auth/pwverify.h"

#include "core/alloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct pwverify_fifo {
    uint32_t *idx;
    size_t head;
    size_t n;
} pwverify_fifo;

struct pwverify {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stopping;
    int efd;
    size_t slots_n;
    pwverify_job *slots;
    uint32_t *free_idx; /* a stack */
    size_t free_n;
    pwverify_fifo pending;
    pwverify_fifo done;
    unsigned threads_n;
    pthread_t *threads;
};

static void pwverify_fifo_push(pwverify *v, pwverify_fifo *f, uint32_t i)
{
    SL_ASSERT(f->n < v->slots_n);
    f->idx[(f->head + f->n) % v->slots_n] = i;
    f->n++;
}

static uint32_t pwverify_fifo_pop(pwverify *v, pwverify_fifo *f)
{
    SL_ASSERT(f->n > 0);
    uint32_t i = f->idx[f->head];
    f->head = (f->head + 1) % v->slots_n;
    f->n--;
    return i;
}

void pwverify_run(pwverify_job *job)
{
    job->cred_len = 0;
    if (job->op == PWVERIFY_PLAIN) {
        job->status = pw_verify(job->stored, job->scheme, job->user, job->plain, job->plain_len);
    } else {
        job->status = pw_credentials(job->stored, job->scheme, job->kind, job->user, job->realm,
                                     job->cred, sizeof(job->cred), &job->cred_len);
    }
    /* The plaintext is no longer needed once it has been checked. */
    explicit_bzero(job->plain, sizeof(job->plain));
    job->plain_len = 0;
}

static void *pwverify_main(void *arg)
{
    pwverify *v = arg;
    for (;;) {
        pthread_mutex_lock(&v->lock);
        while (!v->stopping && v->pending.n == 0) {
            pthread_cond_wait(&v->cond, &v->lock);
        }
        if (v->stopping) {
            pthread_mutex_unlock(&v->lock);
            return NULL;
        }
        uint32_t i = pwverify_fifo_pop(v, &v->pending);
        pthread_mutex_unlock(&v->lock);
        pwverify_run(&v->slots[i]);
        pthread_mutex_lock(&v->lock);
        pwverify_fifo_push(v, &v->done, i);
        pthread_mutex_unlock(&v->lock);
        uint64_t one = 1;
        ssize_t w = write(v->efd, &one, sizeof(one));
        (void)w;
    }
}

pwverify *pwverify_new(unsigned threads_n, size_t queue_max)
{
    SL_ASSERT(threads_n >= 1);
    SL_ASSERT(queue_max >= 1);
    SL_ASSERT(queue_max < UINT32_MAX);
    pwverify *v = sl_calloc(1, sizeof(*v));
    pthread_mutex_init(&v->lock, NULL);
    pthread_cond_init(&v->cond, NULL);
    v->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    SL_ASSERT(v->efd >= 0);
    v->slots_n = queue_max;
    v->slots = sl_calloc(queue_max, sizeof(*v->slots));
    v->free_idx = sl_calloc(queue_max, sizeof(*v->free_idx));
    v->pending.idx = sl_calloc(queue_max, sizeof(uint32_t));
    v->done.idx = sl_calloc(queue_max, sizeof(uint32_t));
    for (size_t i = 0; i < queue_max; i++) {
        v->free_idx[i] = (uint32_t)(queue_max - 1 - i);
    }
    v->free_n = queue_max;
    v->threads_n = threads_n;
    v->threads = sl_calloc(threads_n, sizeof(*v->threads));
    for (unsigned i = 0; i < threads_n; i++) {
        int rc = pthread_create(&v->threads[i], NULL, pwverify_main, v);
        SL_ASSERT(rc == 0);
    }
    return v;
}

void pwverify_free(pwverify **vp)
{
    pwverify *v = *vp;
    if (v == NULL) {
        return;
    }
    pthread_mutex_lock(&v->lock);
    v->stopping = true;
    pthread_cond_broadcast(&v->cond);
    pthread_mutex_unlock(&v->lock);
    for (unsigned i = 0; i < v->threads_n; i++) {
        pthread_join(v->threads[i], NULL);
    }
    explicit_bzero(v->slots, v->slots_n * sizeof(*v->slots));
    free(v->slots);
    free(v->free_idx);
    free(v->pending.idx);
    free(v->done.idx);
    free(v->threads);
    close(v->efd);
    pthread_cond_destroy(&v->cond);
    pthread_mutex_destroy(&v->lock);
    sl_free(vp);
}

int pwverify_submit(pwverify *v, const pwverify_job *job)
{
    pthread_mutex_lock(&v->lock);
    if (v->free_n == 0 || v->stopping) {
        pthread_mutex_unlock(&v->lock);
        return -EAGAIN;
    }
    uint32_t i = v->free_idx[--v->free_n];
    /* The slot is neither pending nor done, so no worker touches it: copy
     * under the lock anyway, it is a few KiB. */
    v->slots[i] = *job;
    pwverify_fifo_push(v, &v->pending, i);
    pthread_cond_signal(&v->cond);
    pthread_mutex_unlock(&v->lock);
    return 0;
}

int pwverify_eventfd(const pwverify *v)
{
    return v->efd;
}

size_t pwverify_drain(pwverify *v, pwverify_job *out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&v->lock);
    while (n < max && v->done.n > 0) {
        uint32_t i = pwverify_fifo_pop(v, &v->done);
        out[n++] = v->slots[i];
        explicit_bzero(&v->slots[i], sizeof(v->slots[i]));
        v->free_idx[v->free_n++] = i;
    }
    pthread_mutex_unlock(&v->lock);
    return n;
}
