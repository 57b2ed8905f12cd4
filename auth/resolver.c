/* auth/resolver.c: resolver threads that run the blocking userdb drivers.
 *
 * One global bounded job queue (mutex + condvar: it is off the ring's hot
 * path, a core only touches it once per uncached recipient) feeds threads_n
 * workers, each with its own driver (SQLite connections are not shared).
 * Answers go to a per-core reply ring, then the core's eventfd is bumped so
 * its io_uring wakes up.
 *
 * Bounds: the job queue holds at most queue_max jobs, and each core may have
 * at most queue_max requests submitted but not yet drained ("inflight"), so
 * a reply ring of queue_max slots can never overflow and a worker never
 * waits on a slow core.
 *
 * Reload hands each worker a ready-made driver through worker.next; the
 * worker swaps it in between jobs, so a lookup never sees a driver change
 * under it and the old connection is closed by the thread that used it. */
#include "auth/resolver.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct resolver_job {
    unsigned core_id;
    resolver_request req;
} resolver_job;

typedef struct resolver_core {
    pthread_mutex_t lock; /* guards replies/head/count */
    resolver_reply *replies;
    size_t head;
    size_t count;
    int efd;
    size_t inflight; /* submitted, not yet drained: only the core's thread touches it */
} resolver_core;

typedef struct resolver_worker {
    resolver *r;
    pthread_t thread;
    bool started;
    userdb_driver *driver; /* the worker thread's own, once started */
    userdb_driver *next;   /* under resolver.lock: set by reload, taken by the worker */
} resolver_worker;

struct resolver {
    pthread_mutex_t lock; /* guards jobs, stopping, workers[].next */
    pthread_cond_t cond;
    resolver_job *jobs;
    size_t jobs_head;
    size_t jobs_n;
    size_t queue_max;
    bool stopping;
    bool stopped; /* owner thread only: threads joined, leftovers answered */
    resolver_worker *workers;
    unsigned threads_n;
    resolver_core *cores;
    unsigned cores_n;
};

static void *resolver_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL) {
        abort();
    }
    return p;
}

static void resolver_signal(int efd)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is saturated: the core is signalled anyway. */
    while (write(efd, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
}

/* Appends a reply to core_id's ring and wakes the core. */
static void resolver_push(resolver *r, unsigned core_id, const resolver_reply *reply)
{
    resolver_core *c = &r->cores[core_id];
    pthread_mutex_lock(&c->lock);
    SL_ASSERT(c->count < r->queue_max);
    c->replies[(c->head + c->count) % r->queue_max] = *reply;
    c->count++;
    pthread_mutex_unlock(&c->lock);
    resolver_signal(c->efd);
}

static void resolver_reply_init(resolver_reply *reply, const resolver_job *job)
{
    reply->token = job->req.token;
    memcpy(reply->user, job->req.user, sizeof(reply->user));
    reply->result.status = USERDB_TEMPFAIL;
    reply->result.maildir[0] = '\0';
    reply->result.quota_bytes = 0;
}

static void resolver_answer(resolver *r, userdb_driver *d, const resolver_job *job)
{
    resolver_reply reply;
    resolver_reply_init(&reply, job);
    int rc = d->ops->lookup(d, job->req.user, job->req.localpart, job->req.domain, &reply.result);
    if (rc != 0) {
        reply.result.status = USERDB_TEMPFAIL;
    }
    resolver_push(r, job->core_id, &reply);
}

/* Called with r->lock held and jobs_n > 0. */
static void resolver_pop(resolver *r, resolver_job *job_out)
{
    SL_ASSERT(r->jobs_n > 0);
    *job_out = r->jobs[r->jobs_head];
    r->jobs_head = (r->jobs_head + 1) % r->queue_max;
    r->jobs_n--;
}

/* Waits for a job, swapping in a reloaded driver first if one is waiting.
 * False when the resolver is stopping. */
static bool resolver_next_job(resolver *r, resolver_worker *w, resolver_job *job_out)
{
    for (;;) {
        pthread_mutex_lock(&r->lock);
        while (!r->stopping && r->jobs_n == 0 && w->next == NULL) {
            pthread_cond_wait(&r->cond, &r->lock);
        }
        bool stopping = r->stopping;
        userdb_driver *old = NULL;
        if (!stopping && w->next != NULL) {
            old = w->driver;
            w->driver = w->next;
            w->next = NULL;
        }
        bool got = !stopping && r->jobs_n > 0;
        if (got) {
            resolver_pop(r, job_out);
        }
        pthread_mutex_unlock(&r->lock);
        userdb_driver_free(&old);
        if (stopping || got) {
            return got;
        }
    }
}

static void *resolver_worker_main(void *arg)
{
    resolver_worker *w = arg;
    resolver_job job;
    while (resolver_next_job(w->r, w, &job)) {
        resolver_answer(w->r, w->driver, &job);
    }
    return NULL;
}

/* Workers must not take process signals (SIGHUP, SIGTERM, ...) meant for
 * the main thread's handling; faults still reach the faulting thread. */
static int resolver_start_threads(resolver *r, char *err, size_t err_len)
{
    sigset_t all;
    sigset_t old;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = 0;
    for (unsigned i = 0; i < r->threads_n && rc == 0; i++) {
        resolver_worker *w = &r->workers[i];
        rc = pthread_create(&w->thread, NULL, resolver_worker_main, w);
        if (rc != 0) {
            snprintf(err, err_len, "resolver: cannot start thread: %s", strerror(rc));
            break;
        }
        w->started = true;
        char name[16];
        snprintf(name, sizeof(name), "sl-resolver%u", i % 1000);
        pthread_setname_np(w->thread, name);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc == 0 ? 0 : -1;
}

static int resolver_cores_init(resolver *r, char *err, size_t err_len)
{
    for (unsigned i = 0; i < r->cores_n; i++) {
        r->cores[i].efd = -1;
        pthread_mutex_init(&r->cores[i].lock, NULL);
        r->cores[i].replies = resolver_xcalloc(r->queue_max, sizeof(resolver_reply));
    }
    for (unsigned i = 0; i < r->cores_n; i++) {
        r->cores[i].efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (r->cores[i].efd < 0) {
            snprintf(err, err_len, "resolver: eventfd: %s", strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int resolver_workers_init(resolver *r, const userdb_config *cfg, char *err, size_t err_len)
{
    for (unsigned i = 0; i < r->threads_n; i++) {
        r->workers[i].r = r;
        r->workers[i].driver = userdb_driver_new(cfg, err, err_len);
        if (r->workers[i].driver == NULL) {
            return -1;
        }
    }
    return 0;
}

resolver *resolver_new(const userdb_config *cfg, unsigned threads_n, unsigned cores_n,
                       size_t queue_max, char *err, size_t err_len)
{
    SL_ASSERT(cfg != NULL);
    if (threads_n == 0 || cores_n == 0 || queue_max == 0) {
        snprintf(err, err_len, "resolver: threads, cores and queue_max must all be at least 1");
        return NULL;
    }
    resolver *r = resolver_xcalloc(1, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->queue_max = queue_max;
    r->jobs = resolver_xcalloc(queue_max, sizeof(*r->jobs));
    r->threads_n = threads_n;
    r->workers = resolver_xcalloc(threads_n, sizeof(*r->workers));
    r->cores_n = cores_n;
    r->cores = resolver_xcalloc(cores_n, sizeof(*r->cores));
    if (resolver_cores_init(r, err, err_len) != 0 ||
        resolver_workers_init(r, cfg, err, err_len) != 0 ||
        resolver_start_threads(r, err, err_len) != 0) {
        resolver_free(&r);
        return NULL;
    }
    return r;
}

void resolver_stop(resolver *r)
{
    SL_ASSERT(r != NULL);
    if (r->stopped) {
        return;
    }
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    for (unsigned i = 0; i < r->threads_n; i++) {
        if (r->workers[i].started) {
            pthread_join(r->workers[i].thread, NULL);
            r->workers[i].started = false;
        }
    }
    r->stopped = true;
    /* No worker is left; the lock only orders us after late submitters,
     * which now see stopping and get -EAGAIN. */
    pthread_mutex_lock(&r->lock);
    while (r->jobs_n > 0) {
        resolver_job job;
        resolver_reply reply;
        resolver_pop(r, &job);
        resolver_reply_init(&reply, &job);
        resolver_push(r, job.core_id, &reply);
    }
    pthread_mutex_unlock(&r->lock);
}

static void resolver_cores_free(resolver *r)
{
    for (unsigned i = 0; i < r->cores_n; i++) {
        resolver_core *c = &r->cores[i];
        if (c->efd >= 0) {
            close(c->efd);
        }
        pthread_mutex_destroy(&c->lock);
        free(c->replies);
    }
    free(r->cores);
}

void resolver_free(resolver **rp)
{
    SL_ASSERT(rp != NULL);
    resolver *r = *rp;
    if (r == NULL) {
        return;
    }
    resolver_stop(r);
    for (unsigned i = 0; i < r->threads_n; i++) {
        userdb_driver_free(&r->workers[i].driver);
        userdb_driver_free(&r->workers[i].next);
    }
    free(r->workers);
    resolver_cores_free(r);
    free(r->jobs);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    free(r);
    *rp = NULL;
}

static void resolver_drivers_free(userdb_driver **drivers, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        userdb_driver_free(&drivers[i]);
    }
    free(drivers);
}

int resolver_reload(resolver *r, const userdb_config *cfg, char *err, size_t err_len)
{
    SL_ASSERT(r != NULL);
    SL_ASSERT(cfg != NULL);
    /* All drivers are made up front, so a bad config changes nothing. */
    userdb_driver **fresh = resolver_xcalloc(r->threads_n, sizeof(*fresh));
    for (unsigned i = 0; i < r->threads_n; i++) {
        fresh[i] = userdb_driver_new(cfg, err, err_len);
        if (fresh[i] == NULL) {
            resolver_drivers_free(fresh, r->threads_n);
            return -1;
        }
    }
    pthread_mutex_lock(&r->lock);
    bool stopping = r->stopping;
    for (unsigned i = 0; i < r->threads_n && !stopping; i++) {
        /* A driver from an earlier reload not yet picked up is never used. */
        userdb_driver *displaced = r->workers[i].next;
        r->workers[i].next = fresh[i];
        fresh[i] = displaced;
    }
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    resolver_drivers_free(fresh, r->threads_n);
    if (stopping) {
        snprintf(err, err_len, "resolver: stopped, reload ignored");
        return -1;
    }
    return 0;
}

static void resolver_request_check(const resolver_request *req)
{
    SL_ASSERT(memchr(req->user, '\0', sizeof(req->user)) != NULL);
    SL_ASSERT(memchr(req->localpart, '\0', sizeof(req->localpart)) != NULL);
    SL_ASSERT(memchr(req->domain, '\0', sizeof(req->domain)) != NULL);
}

int resolver_submit(resolver *r, unsigned core_id, const resolver_request *req)
{
    SL_ASSERT(r != NULL);
    SL_ASSERT(core_id < r->cores_n);
    resolver_request_check(req);
    resolver_core *c = &r->cores[core_id];
    if (c->inflight >= r->queue_max) {
        return -EAGAIN;
    }
    pthread_mutex_lock(&r->lock);
    if (r->stopping || r->jobs_n == r->queue_max) {
        pthread_mutex_unlock(&r->lock);
        return -EAGAIN;
    }
    resolver_job *job = &r->jobs[(r->jobs_head + r->jobs_n) % r->queue_max];
    job->core_id = core_id;
    job->req = *req;
    r->jobs_n++;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    c->inflight++;
    return 0;
}

int resolver_core_eventfd(const resolver *r, unsigned core_id)
{
    SL_ASSERT(r != NULL);
    SL_ASSERT(core_id < r->cores_n);
    return r->cores[core_id].efd;
}

size_t resolver_drain(resolver *r, unsigned core_id, resolver_reply *out, size_t max)
{
    SL_ASSERT(r != NULL);
    SL_ASSERT(core_id < r->cores_n);
    resolver_core *c = &r->cores[core_id];
    pthread_mutex_lock(&c->lock);
    size_t n = SL_MIN(c->count, max);
    for (size_t i = 0; i < n; i++) {
        out[i] = c->replies[(c->head + i) % r->queue_max];
    }
    c->head = (c->head + n) % r->queue_max;
    c->count -= n;
    pthread_mutex_unlock(&c->lock);
    SL_ASSERT(c->inflight >= n);
    c->inflight -= n;
    return n;
}
