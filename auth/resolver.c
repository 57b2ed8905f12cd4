/* auth/resolver.c: resolver threads that run the blocking userdb drivers.
 *
 * One global bounded queue of "flights" (mutex + condvar: it is off the
 * ring's hot path, a core only touches it once per uncached recipient)
 * feeds threads_n workers, each with its own driver (SQL connections are
 * not shared). A flight is one (kind, user) lookup; every request for the
 * same (kind, user) made while that flight is queued or running joins it
 * as a waiter instead of asking SQL again (single flight, across cores).
 * When the answer comes, every waiter gets a reply in its core's reply
 * ring, then that core's eventfd is bumped so its io_uring wakes up. With
 * Redis configured the worker also stores the answer there, once.
 *
 * Bounds: at most queue_max flights exist at once, and each core may have
 * at most queue_max requests submitted but not yet drained ("inflight"), so
 * a reply ring of queue_max slots can never overflow, the waiter pool
 * (cores_n * queue_max) never runs dry, and a worker never waits on a slow
 * core.
 *
 * Reload hands each worker a ready-made driver through worker.next; the
 * worker swaps it in between jobs, so a lookup never sees a driver change
 * under it and the old connection is closed by the thread that used it. */
#include "auth/resolver.h"

#include "auth/userdb_redis.h"
#include "core/clock.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define RESOLVER_NONE UINT32_MAX

typedef struct resolver_waiter {
    unsigned core_id;
    uint64_t token;
    uint32_t next;
} resolver_waiter;

typedef struct resolver_flight {
    resolver_request req; /* the first request's fields; token unused */
    uint64_t hash;
    uint32_t hash_next;    /* chain in buckets, or the free list */
    uint32_t waiters_head; /* FIFO of waiters */
    uint32_t waiters_tail;
} resolver_flight;

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
    userdb_driver *driver;   /* the worker thread's own, once started */
    userdb_driver *next;     /* under resolver.lock: set by reload, taken by the worker */
    userdb_redis_sync *redis; /* the worker's Redis writer, or NULL */
} resolver_worker;

struct resolver {
    pthread_mutex_t lock; /* guards flights, waiters, pending, stopping, stats, workers[].next */
    pthread_cond_t cond;
    size_t queue_max;
    resolver_flight *flights; /* queue_max */
    uint32_t flights_free;    /* free list through hash_next */
    uint32_t *buckets;        /* buckets_n heads of hash chains */
    size_t buckets_n;         /* power of two */
    uint32_t *pending;        /* FIFO of flight indices not yet taken by a worker */
    size_t pending_head;
    size_t pending_n;
    resolver_waiter *waiters; /* cores_n * queue_max */
    uint32_t waiters_free;
    resolver_stats stats;
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

static void resolver_reply_init(resolver_reply *reply, const resolver_request *req,
                                uint64_t token)
{
    memset(reply, 0, offsetof(resolver_reply, user));
    reply->token = token;
    reply->kind = req->kind;
    memcpy(reply->user, req->user, sizeof(reply->user));
    reply->result.status = USERDB_TEMPFAIL;
    reply->result.maildir[0] = '\0';
    reply->result.quota_bytes = 0;
    reply->pass.status = USERDB_TEMPFAIL;
    reply->pass.password[0] = '\0';
}

static uint64_t resolver_hash(resolver_kind kind, const char *user)
{
    return sl_hash_str(user) ^ ((uint64_t)kind * 0x9e3779b97f4a7c15ULL);
}

/* Called with r->lock held. */
static uint32_t resolver_find(const resolver *r, resolver_kind kind, const char *user, uint64_t h)
{
    uint32_t i = r->buckets[h & (r->buckets_n - 1)];
    while (i != RESOLVER_NONE) {
        const resolver_flight *f = &r->flights[i];
        if (f->hash == h && f->req.kind == kind && strcmp(f->req.user, user) == 0) {
            return i;
        }
        i = f->hash_next;
    }
    return RESOLVER_NONE;
}

/* Called with r->lock held: unlink flight fi from its hash chain. */
static void resolver_unhash(resolver *r, uint32_t fi)
{
    uint32_t *link = &r->buckets[r->flights[fi].hash & (r->buckets_n - 1)];
    while (*link != fi) {
        SL_ASSERT(*link != RESOLVER_NONE);
        link = &r->flights[*link].hash_next;
    }
    *link = r->flights[fi].hash_next;
}

static void resolver_add_waiter(resolver *r, resolver_flight *f, unsigned core_id, uint64_t token)
{
    uint32_t wi = r->waiters_free;
    SL_ASSERT(wi != RESOLVER_NONE);
    r->waiters_free = r->waiters[wi].next;
    r->waiters[wi] = (resolver_waiter){.core_id = core_id, .token = token, .next = RESOLVER_NONE};
    if (f->waiters_tail == RESOLVER_NONE) {
        f->waiters_head = wi;
    } else {
        r->waiters[f->waiters_tail].next = wi;
    }
    f->waiters_tail = wi;
}

/* Called with r->lock held: answer every waiter of flight fi with (a copy
 * of) reply, then free the flight and its waiters. */
static void resolver_land(resolver *r, uint32_t fi, resolver_reply *reply)
{
    resolver_flight *f = &r->flights[fi];
    uint32_t wi = f->waiters_head;
    while (wi != RESOLVER_NONE) {
        resolver_waiter *w = &r->waiters[wi];
        uint32_t next = w->next;
        reply->token = w->token;
        resolver_push(r, w->core_id, reply);
        w->next = r->waiters_free;
        r->waiters_free = wi;
        wi = next;
    }
    f->hash_next = r->flights_free;
    r->flights_free = fi;
}

static void resolver_query(resolver_worker *w, const resolver_request *req, resolver_reply *reply)
{
    userdb_driver *d = w->driver;
    uint64_t start_us = sl_clock_us();
    if (req->kind == RESOLVER_PASSDB) {
        if (d->ops->passdb_lookup(d, req->user, req->localpart, req->domain, &reply->pass) != 0) {
            reply->pass.status = USERDB_TEMPFAIL;
        }
    } else if (d->ops->lookup(d, req->user, req->localpart, req->domain, &reply->result) != 0) {
        reply->result.status = USERDB_TEMPFAIL;
    }
    reply->sql_us = sl_clock_us() - start_us;
    if (w->redis == NULL) {
        return;
    }
    /* Stored once per flight, whatever the number of waiters; a Redis
     * failure costs only the cache entry (the writer backs off). */
    int rc = req->kind == RESOLVER_PASSDB ? userdb_redis_sync_set_pass(w->redis, req->user, &reply->pass)
                                          : userdb_redis_sync_set(w->redis, req->user, &reply->result);
    reply->redis_stored = rc == 0;
}

/* Waits for a flight, swapping in a reloaded driver first if one is
 * waiting. RESOLVER_NONE when the resolver is stopping. */
static uint32_t resolver_next_flight(resolver *r, resolver_worker *w)
{
    for (;;) {
        pthread_mutex_lock(&r->lock);
        while (!r->stopping && r->pending_n == 0 && w->next == NULL) {
            pthread_cond_wait(&r->cond, &r->lock);
        }
        bool stopping = r->stopping;
        userdb_driver *old = NULL;
        if (!stopping && w->next != NULL) {
            old = w->driver;
            w->driver = w->next;
            w->next = NULL;
        }
        uint32_t fi = RESOLVER_NONE;
        if (!stopping && r->pending_n > 0) {
            fi = r->pending[r->pending_head];
            r->pending_head = (r->pending_head + 1) % r->queue_max;
            r->pending_n--;
        }
        pthread_mutex_unlock(&r->lock);
        userdb_driver_free(&old);
        if (stopping || fi != RESOLVER_NONE) {
            return fi;
        }
    }
}

static void *resolver_worker_main(void *arg)
{
    resolver_worker *w = arg;
    resolver *r = w->r;
    uint32_t fi;
    while ((fi = resolver_next_flight(r, w)) != RESOLVER_NONE) {
        /* The flight stays findable (and joinable) while its query runs; its
         * request fields do not change until it lands. */
        const resolver_request *req = &r->flights[fi].req;
        resolver_reply reply;
        resolver_reply_init(&reply, req, 0);
        resolver_query(w, req, &reply);
        pthread_mutex_lock(&r->lock);
        resolver_unhash(r, fi);
        r->stats.queries++;
        r->stats.query_us_total += reply.sql_us;
        r->stats.redis_stores += reply.redis_stored;
        resolver_land(r, fi, &reply);
        pthread_mutex_unlock(&r->lock);
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

static void resolver_tables_init(resolver *r)
{
    size_t qmax = r->queue_max;
    r->flights = resolver_xcalloc(qmax, sizeof(*r->flights));
    for (size_t i = 0; i < qmax; i++) {
        r->flights[i].hash_next = i + 1 < qmax ? (uint32_t)(i + 1) : RESOLVER_NONE;
    }
    r->flights_free = 0;
    r->buckets_n = 16;
    while (r->buckets_n < qmax * 2) {
        r->buckets_n *= 2;
    }
    r->buckets = resolver_xcalloc(r->buckets_n, sizeof(*r->buckets));
    memset(r->buckets, 0xff, r->buckets_n * sizeof(*r->buckets));
    r->pending = resolver_xcalloc(qmax, sizeof(*r->pending));
    size_t wn = qmax * r->cores_n;
    r->waiters = resolver_xcalloc(wn, sizeof(*r->waiters));
    for (size_t i = 0; i < wn; i++) {
        r->waiters[i].next = i + 1 < wn ? (uint32_t)(i + 1) : RESOLVER_NONE;
    }
    r->waiters_free = 0;
}

static int resolver_workers_init(resolver *r, const userdb_config *cfg,
                                 const struct userdb_redis_config *redis, char *err,
                                 size_t err_len)
{
    for (unsigned i = 0; i < r->threads_n; i++) {
        r->workers[i].r = r;
        r->workers[i].driver = userdb_driver_new(cfg, err, err_len);
        if (r->workers[i].driver == NULL) {
            return -1;
        }
        if (redis != NULL) {
            r->workers[i].redis = userdb_redis_sync_new(redis, err, err_len);
            if (r->workers[i].redis == NULL) {
                return -1;
            }
        }
    }
    return 0;
}

resolver *resolver_new(const userdb_config *cfg, const struct userdb_redis_config *redis,
                       unsigned threads_n, unsigned cores_n, size_t queue_max, char *err,
                       size_t err_len)
{
    SL_ASSERT(cfg != NULL);
    if (threads_n == 0 || cores_n == 0 || queue_max == 0) {
        snprintf(err, err_len, "resolver: threads, cores and queue_max must all be at least 1");
        return NULL;
    }
    if (queue_max > (1u << 20) || cores_n > 1024) {
        snprintf(err, err_len, "resolver: queue_max (at most 1048576) or cores too large");
        return NULL;
    }
    resolver *r = resolver_xcalloc(1, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->queue_max = queue_max;
    r->threads_n = threads_n;
    r->workers = resolver_xcalloc(threads_n, sizeof(*r->workers));
    r->cores_n = cores_n;
    r->cores = resolver_xcalloc(cores_n, sizeof(*r->cores));
    resolver_tables_init(r);
    if (resolver_cores_init(r, err, err_len) != 0 ||
        resolver_workers_init(r, cfg, redis, err, err_len) != 0 ||
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
    /* No worker is left, so every flight is pending; the lock only orders us
     * after late submitters, which now see stopping and get -EAGAIN. */
    pthread_mutex_lock(&r->lock);
    while (r->pending_n > 0) {
        uint32_t fi = r->pending[r->pending_head];
        r->pending_head = (r->pending_head + 1) % r->queue_max;
        r->pending_n--;
        resolver_reply reply;
        resolver_reply_init(&reply, &r->flights[fi].req, 0);
        resolver_unhash(r, fi);
        resolver_land(r, fi, &reply);
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
        userdb_redis_sync_free(&r->workers[i].redis);
    }
    free(r->workers);
    resolver_cores_free(r);
    free(r->flights);
    free(r->buckets);
    free(r->pending);
    free(r->waiters);
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

resolver_request resolver_request_make(resolver_kind kind, uint64_t token, const char *user)
{
    resolver_request q;
    memset(&q, 0, sizeof(q));
    q.token = token;
    q.kind = kind;
    snprintf(q.user, sizeof(q.user), "%s", user);
    const char *at = strrchr(user, '@');
    size_t local_len = at != NULL ? (size_t)(at - user) : strlen(user);
    snprintf(q.localpart, sizeof(q.localpart), "%.*s", (int)local_len, user);
    snprintf(q.domain, sizeof(q.domain), "%s", at != NULL ? at + 1 : "");
    return q;
}

int resolver_submit(resolver *r, unsigned core_id, const resolver_request *req)
{
    SL_ASSERT(r != NULL);
    SL_ASSERT(core_id < r->cores_n);
    SL_ASSERT(req->kind == RESOLVER_USERDB || req->kind == RESOLVER_PASSDB);
    resolver_request_check(req);
    resolver_core *c = &r->cores[core_id];
    if (c->inflight >= r->queue_max) {
        return -EAGAIN;
    }
    uint64_t h = resolver_hash(req->kind, req->user);
    pthread_mutex_lock(&r->lock);
    if (r->stopping) {
        pthread_mutex_unlock(&r->lock);
        return -EAGAIN;
    }
    uint32_t fi = resolver_find(r, req->kind, req->user, h);
    if (fi != RESOLVER_NONE) {
        r->stats.joined++;
    } else {
        if (r->flights_free == RESOLVER_NONE) {
            pthread_mutex_unlock(&r->lock);
            return -EAGAIN;
        }
        fi = r->flights_free;
        resolver_flight *f = &r->flights[fi];
        r->flights_free = f->hash_next;
        f->req = *req;
        f->hash = h;
        f->waiters_head = RESOLVER_NONE;
        f->waiters_tail = RESOLVER_NONE;
        uint32_t *bucket = &r->buckets[h & (r->buckets_n - 1)];
        f->hash_next = *bucket;
        *bucket = fi;
        SL_ASSERT(r->pending_n < r->queue_max);
        r->pending[(r->pending_head + r->pending_n) % r->queue_max] = fi;
        r->pending_n++;
        pthread_cond_signal(&r->cond);
    }
    resolver_add_waiter(r, &r->flights[fi], core_id, req->token);
    r->stats.requests++;
    pthread_mutex_unlock(&r->lock);
    c->inflight++;
    return 0;
}

void resolver_stats_get(resolver *r, resolver_stats *out)
{
    pthread_mutex_lock(&r->lock);
    *out = r->stats;
    pthread_mutex_unlock(&r->lock);
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
