/* core/main.c: the composition root, the one file that wires every layer.
 *
 * Threads: the main thread owns signals and configuration; one pinned
 * thread per delivery core runs its own io_uring loop with its own
 * listeners, buffer ring, store (group commit), userdb cache and LMTP
 * sessions; resolver threads run the blocking userdb driver; a janitor
 * thread removes stale tmp/ files. Cores never share mutable state: the
 * main thread talks to them through an eventfd each and an immutable,
 * reference-counted config snapshot. */
#include "auth/resolver.h"
#include "auth/userdb_cache.h"
#include "core/allow.h"
#include "core/alloc.h"
#include "core/base/base.h"
#include "core/bufring.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/net.h"
#include "core/ring.h"
#include "core/stats.h"
#include "proto/auth_session.h"
#include "proto/lmtp_session.h"
#include "proto/stats_server.h"
#include "store/fsbarrier.h"
#include "store/maildir_clean.h"
#include "store/store.h"

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LISTEN_MAX 8
#define CORES_MAX 256
#define RING_ENTRIES 4096
#define BUF_COUNT 1024
#define BUF_BYTES 16384
#define BUF_GROUP 1
#define SHUTDOWN_GRACE_MS 30000


/* An immutable config snapshot shared by the cores. */
typedef struct shared_cfg {
    sl_config cfg;
    sl_allow allow;
    sl_allow stats_allow;
    sl_allow auth_allow;
    _Atomic int refs;
} shared_cfg;

enum {
    CTL_NONE = 0,
    CTL_RELOAD = 1,
    CTL_SHUTDOWN = 2,
    CTL_STATS = 4,
};

/* What the main thread shares with each thread that has a ring: a control
 * eventfd with pending CTL_ flags, the next config snapshot, and the
 * listening sockets handed over at start. */
typedef struct thread_ctl {
    pthread_t thread;
    int fd;
    _Atomic int flags;
    _Atomic(shared_cfg *) next_cfg;
    shared_cfg *cfg;
    int listen_fds[LISTEN_MAX];
    size_t listen_n;
} thread_ctl;

typedef struct core {
    unsigned id;
    thread_ctl ctl;
    resolver *resolver;

    sl_ring ring;
    sl_bufring bufs;
    sl_stats_core stats;
    store *store;
    userdb_cache *cache;
    userdb_redis *redis; /* NULL without Redis */
    lmtp_server *server;
    sl_op op_ctl;
    sl_op op_resolver;
    bool stopping;
    int rc;
} core;

static core *cores;
static unsigned cores_n;
static resolver *userdb_resolver; /* for the stats thread's totals */
static _Atomic bool fsync_enabled;
/* sync_method = syncfs: the process-wide barrier thread, else NULL. */
static fs_barrier *sync_barrier;
static int64_t start_time_s;

/* The stats thread, also the auth core: its own ring serving /metrics
 * (reading the shards) and SMTP AUTH (proto/auth_session.h). */
typedef struct stats_thread {
    thread_ctl ctl;
    sl_ring ring;
    stats_server *server;
    sl_op op_ctl;
    bool stopping;
    int auth_fds[LISTEN_MAX];
    size_t auth_n;
    resolver *resolver;
    auth_server *auth;
    userdb_redis *redis; /* the auth core's own Redis client, NULL without */
    sl_stats_core stats; /* the auth core's shard */
    int rc;
} stats_thread;

static stats_thread stats_th;
static _Atomic bool janitor_stop;
static _Atomic uint64_t janitor_max_age_s;

static void shared_cfg_put(shared_cfg *sc)
{
    if (sc != NULL && atomic_fetch_sub(&sc->refs, 1) == 1) {
        sl_allow_deinit(&sc->allow);
        sl_allow_deinit(&sc->stats_allow);
        sl_allow_deinit(&sc->auth_allow);
        sl_config_deinit(&sc->cfg);
        free(sc);
    }
}

/* The stats thread runs when it serves metrics or SMTP AUTH. */
static bool stats_thread_on(void)
{
    return stats_th.ctl.listen_n > 0 || stats_th.auth_n > 0;
}

static shared_cfg *shared_cfg_load(const char *path, char *err, size_t err_len)
{
    shared_cfg *sc = sl_calloc(1, sizeof(*sc));
    if (sl_config_load(path, &sc->cfg, err, err_len) != 0) {
        free(sc);
        return NULL;
    }
    char aerr[256];
    if (sl_allow_parse(sc->cfg.lmtp_allow, &sc->allow, aerr, sizeof(aerr)) != 0) {
        snprintf(err, err_len, "%s: lmtp_allow: %s", path, aerr);
        sl_config_deinit(&sc->cfg);
        free(sc);
        return NULL;
    }
    if (sl_allow_parse(sc->cfg.stats_allow, &sc->stats_allow, aerr, sizeof(aerr)) != 0) {
        snprintf(err, err_len, "%s: stats_allow: %s", path, aerr);
        sl_allow_deinit(&sc->allow);
        sl_config_deinit(&sc->cfg);
        free(sc);
        return NULL;
    }
    if (sl_allow_parse(sc->cfg.auth_allow, &sc->auth_allow, aerr, sizeof(aerr)) != 0) {
        snprintf(err, err_len, "%s: auth_allow: %s", path, aerr);
        sl_allow_deinit(&sc->stats_allow);
        sl_allow_deinit(&sc->allow);
        sl_config_deinit(&sc->cfg);
        free(sc);
        return NULL;
    }
    atomic_store(&sc->refs, 1);
    return sc;
}

static sl_log_level level_of(const char *s)
{
    if (strcmp(s, "debug") == 0) {
        return SL_LOG_DEBUG;
    }
    if (strcmp(s, "warning") == 0) {
        return SL_LOG_WARN;
    }
    if (strcmp(s, "error") == 0) {
        return SL_LOG_ERROR;
    }
    return SL_LOG_INFO;
}

static userdb_config userdb_cfg_of(const sl_config *cfg)
{
    userdb_config u = {
        .driver = cfg->userdb_driver,
        .connect = cfg->userdb_connect,
        .user_query = cfg->user_query,
        .password_query = cfg->password_query,
        .query_timeout_ms = cfg->userdb_query_timeout_ms,
        .connect_timeout_ms = cfg->userdb_connect_timeout_ms,
    };
    return u;
}

/* ---- delivery core ----------------------------------------------------- */

static unsigned long long rd(const _Atomic uint64_t *c)
{
    return (unsigned long long)atomic_load_explicit(c, memory_order_relaxed);
}

static void core_log_stats(core *co)
{
    const sl_stats_core *s = &co->stats;
    sl_info("stats: conns_open=%llu conns_total=%llu refused_allow=%llu refused_limit=%llu "
            "transactions=%llu delivered=%llu unknown=%llu inactive=%llu tempfail=%llu "
            "rejected=%llu bytes=%llu batches=%llu batch_txns=%llu fsyncs=%llu "
            "store_errors=%llu fsync=%s loops=%llu busy_ms=%llu",
            rd(&s->conns_open), rd(&s->conns_total), rd(&s->conns_refused_allow),
            rd(&s->conns_refused_limit), rd(&s->transactions),
            rd(&s->rcpts[SL_RCPT_DELIVERED]), rd(&s->rcpts[SL_RCPT_UNKNOWN]),
            rd(&s->rcpts[SL_RCPT_INACTIVE]), rd(&s->rcpts[SL_RCPT_TEMPFAIL]),
            rd(&s->rcpts[SL_RCPT_REJECTED]), rd(&s->bytes_delivered), rd(&s->commit_batches),
            rd(&s->batch_size.sum), rd(&s->fsyncs), rd(&s->store_errors),
            co->ctl.cfg->cfg.fsync ? "yes" : "no", rd(&s->loop_iterations),
            rd(&s->loop_busy_ns) / 1000000);
}

static void arm_poll(core *co, sl_op *op, int fd)
{
    io_uring_prep_poll_multishot(sl_ring_sqe(&co->ring, op), fd, POLLIN);
}

static void drain_eventfd(int fd)
{
    uint64_t v;
    ssize_t n = read(fd, &v, sizeof(v));
    (void)n;
}

/* Take the pending CTL_ flags. A CTL_RELOAD also swaps in the next config
 * snapshot: returns the old one, which the caller releases after it stopped
 * using it (NULL when there is none). */
static int ctl_take(thread_ctl *ctl, shared_cfg **old_out)
{
    drain_eventfd(ctl->fd);
    int f = atomic_exchange(&ctl->flags, CTL_NONE);
    *old_out = NULL;
    if (f & CTL_RELOAD) {
        shared_cfg *next = atomic_exchange(&ctl->next_cfg, NULL);
        if (next != NULL) {
            *old_out = ctl->cfg;
            ctl->cfg = next;
        }
    }
    return f;
}

static void core_apply_reload(core *co, shared_cfg *old)
{
    shared_cfg *next = co->ctl.cfg;
    lmtp_server_reload(co->server, &next->cfg, &next->allow);
    store_set_fsync(co->store, next->cfg.fsync);
    userdb_cache_free(&co->cache);
    co->cache = userdb_cache_new(next->cfg.userdb_cache_size, next->cfg.userdb_cache_ttl_ms,
                                 next->cfg.userdb_cache_negative_ttl_ms);
    userdb_cache_set_keep_stale(co->cache, next->cfg.userdb_cache_serve_stale);
    lmtp_server_set_cache(co->server, co->cache);
    shared_cfg_put(old);
    sl_info("configuration reloaded");
}

static void on_ctl(sl_op *op, int res, uint32_t flags)
{
    core *co = SL_CONTAINER_OF(op, core, op_ctl);
    if (!(flags & IORING_CQE_F_MORE)) {
        arm_poll(co, &co->op_ctl, co->ctl.fd);
    }
    shared_cfg *old = NULL;
    int f = ctl_take(&co->ctl, &old);
    if (old != NULL) {
        core_apply_reload(co, old);
    }
    if (f & CTL_STATS) {
        core_log_stats(co);
    }
    if ((f & CTL_SHUTDOWN) && !co->stopping) {
        co->stopping = true;
        lmtp_server_shutdown(co->server, false);
    }
}

static void on_resolver(sl_op *op, int res, uint32_t flags)
{
    core *co = SL_CONTAINER_OF(op, core, op_resolver);
    int fd = resolver_core_eventfd(co->resolver, co->id);
    if (!(flags & IORING_CQE_F_MORE)) {
        arm_poll(co, &co->op_resolver, fd);
    }
    drain_eventfd(fd);
    lmtp_server_resolver_ready(co->server);
}

/* ---- Redis ------------------------------------------------------------- */

/* The parts of the config's "redis" key, and what userdb_redis needs. The
 * strings point into storage, which must outlive the use of out. */
static bool redis_config_from(const sl_config *cfg, userdb_redis_config *out, char *storage,
                              size_t storage_len)
{
    memset(out, 0, sizeof(*out));
    if (cfg->redis[0] == '\0') {
        return false;
    }
    snprintf(storage, storage_len, "%s", cfg->redis);
    if (strncmp(storage, "unix:", 5) == 0) {
        out->unix_path = storage + 5;
    } else {
        char *colon = strrchr(storage, ':');
        out->port = 6379;
        if (colon != NULL) {
            *colon = '\0';
            out->port = (unsigned)strtoul(colon + 1, NULL, 10);
        }
        out->host = storage;
    }
    out->timeout_ms = cfg->redis_timeout_ms;
    out->positive_ttl_s = (unsigned)SL_MAX(cfg->redis_ttl_ms / 1000, 1);
    out->negative_ttl_s = (unsigned)SL_MAX(cfg->redis_negative_ttl_ms / 1000, 1);
    out->key_prefix = cfg->redis_prefix;
    return true;
}

static void on_redis_lookup(void *ctx, uint64_t token, userdb_redis_status status,
                            const userdb_result *result, uint64_t latency_us)
{
    core *co = ctx;
    lmtp_server_redis_answer(co->server, token, status, result, latency_us);
}

/* A flush tool ran: what this core remembers may be stale. */
static void on_redis_generation(void *ctx)
{
    core *co = ctx;
    userdb_cache_clear(co->cache);
    sl_info("userdb cache flushed (Redis generation changed)");
}

static int core_redis_setup(core *co, const sl_config *cfg)
{
    userdb_redis_config rc;
    char storage[512];
    if (!redis_config_from(cfg, &rc, storage, sizeof(storage))) {
        return 0;
    }
    userdb_redis_callbacks cb = {.on_lookup = on_redis_lookup,
                                 .on_generation_change = on_redis_generation, .ctx = co};
    char err[256] = "";
    co->redis = userdb_redis_new(&co->ring, &rc, &cb, err, sizeof(err));
    if (co->redis == NULL) {
        sl_error("redis: %s", err);
        return -1;
    }
    lmtp_server_set_redis(co->server, co->redis);
    return 0;
}

static int core_setup(core *co)
{
    const sl_config *cfg = &co->ctl.cfg->cfg;
    int rc = sl_ring_init(&co->ring, RING_ENTRIES);
    if (rc != 0) {
        sl_error("io_uring setup: %s", strerror(-rc));
        return -1;
    }
    rc = sl_bufring_init(&co->bufs, &co->ring, BUF_GROUP, BUF_COUNT, BUF_BYTES);
    if (rc != 0) {
        sl_error("provided buffer ring: %s", strerror(-rc));
        return -1;
    }
    store_config sc = {.fsync = cfg->fsync, .crlf = cfg->mail_crlf, .hostname = cfg->hostname,
                       .core_id = co->id, .cores_n = cores_n, .barrier = sync_barrier,
                       .batch_max = cfg->commit_batch_max, .stats = &co->stats};
    co->store = store_new(&co->ring, &co->bufs, &sc);
    co->cache = userdb_cache_new(cfg->userdb_cache_size, cfg->userdb_cache_ttl_ms,
                                 cfg->userdb_cache_negative_ttl_ms);
    userdb_cache_set_keep_stale(co->cache, cfg->userdb_cache_serve_stale);
    lmtp_server_deps deps = {.core_id = co->id, .ring = &co->ring, .bufs = &co->bufs,
                             .store = co->store, .resolver = co->resolver, .cache = co->cache,
                             .cfg = cfg, .allow = &co->ctl.cfg->allow,
                             .stats = &co->stats};
    co->server = lmtp_server_new(&deps);
    if (core_redis_setup(co, cfg) != 0) {
        return -1;
    }
    for (size_t i = 0; i < co->ctl.listen_n; i++) {
        lmtp_server_listen(co->server, co->ctl.listen_fds[i]);
    }
    co->op_ctl.fn = on_ctl;
    co->op_resolver.fn = on_resolver;
    arm_poll(co, &co->op_ctl, co->ctl.fd);
    arm_poll(co, &co->op_resolver, resolver_core_eventfd(co->resolver, co->id));
    return 0;
}

/* Free a ring's Redis client (its owner no longer points to it), then let
 * the kernel hand back what the client still had in flight. */
static void redis_client_free(userdb_redis **r, sl_ring *ring)
{
    userdb_redis_free(r);
    for (int i = 0; i < 4; i++) {
        (void)sl_ring_run_once(ring, 10);
    }
}

static void core_teardown(core *co)
{
    if (co->redis != NULL) {
        if (co->server != NULL) {
            lmtp_server_set_redis(co->server, NULL);
        }
        redis_client_free(&co->redis, &co->ring);
    }
    if (co->server != NULL) {
        core_log_stats(co);
        lmtp_server_free(&co->server);
    }
    store_free(&co->store);
    userdb_cache_free(&co->cache);
    sl_bufring_deinit(&co->bufs);
    sl_ring_deinit(&co->ring);
}

static void core_pin(unsigned id)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu <= 0) {
        return;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(id % (unsigned)ncpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *core_main(void *arg)
{
    core *co = arg;
    char name[16];
    snprintf(name, sizeof(name), "core%u", co->id);
    sl_log_thread_name(name);
    core_pin(co->id);
    if (core_setup(co) != 0) {
        co->rc = 1;
        kill(getpid(), SIGTERM);
        return NULL;
    }
    uint64_t next_tick = sl_clock_ms() + 1000;
    uint64_t stop_deadline = 0;
    for (;;) {
        int rc = sl_ring_run_once(&co->ring, 1000);
        if (rc < 0) {
            sl_error("io_uring: %s", strerror(-rc));
            co->rc = 1;
            break;
        }
        lmtp_server_after_dispatch(co->server);
        if (co->redis != NULL) {
            userdb_redis_flush(co->redis);
        }
        atomic_store_explicit(&co->stats.loop_iterations, co->ring.loops, memory_order_relaxed);
        atomic_store_explicit(&co->stats.loop_busy_ns, co->ring.busy_ns, memory_order_relaxed);
        uint64_t now = sl_clock_ms();
        if (now >= next_tick) {
            lmtp_server_tick(co->server, now);
            if (co->redis != NULL) {
                userdb_redis_tick(co->redis, now);
            }
            next_tick = now + 1000;
        }
        if (co->stopping) {
            if (stop_deadline == 0) {
                stop_deadline = now + SHUTDOWN_GRACE_MS;
            } else if (now >= stop_deadline) {
                lmtp_server_shutdown(co->server, true);
            }
            if (lmtp_server_idle(co->server) && store_txns_alive(co->store) == 0) {
                break;
            }
        }
    }
    core_teardown(co);
    return NULL;
}

/* ---- janitor ------------------------------------------------------------ */

static void *janitor_main(void *arg)
{
    const char *root = arg;
    sl_log_thread_name("janitor");
    for (unsigned tick = 0; !atomic_load(&janitor_stop); tick++) {
        if (tick % 3600 == 0) {
            uint64_t max_age = atomic_load(&janitor_max_age_s);
            long n = maildir_clean_tmp(root, (int64_t)max_age, (int64_t)time(NULL));
            if (n > 0) {
                sl_info("removed %ld stale tmp/ files older than %llus", n,
                        (unsigned long long)max_age);
            }
        }
        sleep(1);
    }
    return NULL;
}

/* ---- stats thread ---------------------------------------------------------- */

static void stats_render(void *ctx, char **out, size_t *len_out)
{
    const sl_stats_core *shards[CORES_MAX];
    for (unsigned i = 0; i < cores_n; i++) {
        shards[i] = &cores[i].stats;
    }
    resolver_stats rs = {0};
    if (userdb_resolver != NULL) {
        resolver_stats_get(userdb_resolver, &rs);
    }
    fs_barrier_stats bs = {0};
    if (sync_barrier != NULL) {
        fs_barrier_get_stats(sync_barrier, &bs);
    }
    sl_stats_info info = {.version = "0.1.0",
                          .fsync = atomic_load(&fsync_enabled),
                          .sync_method = sync_barrier != NULL ? "syncfs" : "fsync",
                          .syncfs_rounds = bs.rounds,
                          .syncfs_waits = bs.requests,
                          .syncfs_failed = bs.errors,
                          .syncfs_busy_us = bs.busy_us,
                          .start_time_s = start_time_s,
                          .sql_queries = rs.queries,
                          .sql_shared = rs.joined,
                          .auth = stats_th.auth_n > 0 ? &stats_th.stats : NULL};
    sl_stats_render(shards, cores_n, &info, out, len_out);
}

static void on_stats_ctl(sl_op *op, int res, uint32_t flags)
{
    stats_thread *st = SL_CONTAINER_OF(op, stats_thread, op_ctl);
    if (!(flags & IORING_CQE_F_MORE)) {
        io_uring_prep_poll_multishot(sl_ring_sqe(&st->ring, &st->op_ctl), st->ctl.fd, POLLIN);
    }
    shared_cfg *old = NULL;
    int f = ctl_take(&st->ctl, &old);
    if (old != NULL) {
        stats_server_set_allow(st->server, &st->ctl.cfg->stats_allow);
        if (st->auth != NULL) {
            auth_server_reload(st->auth, &st->ctl.cfg->cfg, &st->ctl.cfg->auth_allow);
        }
        shared_cfg_put(old);
    }
    if ((f & CTL_SHUTDOWN) && !st->stopping) {
        st->stopping = true;
        stats_server_shutdown(st->server);
        if (st->auth != NULL) {
            auth_server_shutdown(st->auth);
        }
    }
}

static void on_auth_redis_pass(void *ctx, uint64_t token, userdb_redis_status status,
                               const passdb_result *result, uint64_t latency_us)
{
    stats_thread *st = ctx;
    auth_server_redis_pass_answer(st->auth, token, status, result);
}

/* The auth core's Redis client (pass entries), when the config has Redis.
 * A client that cannot be made only costs the Redis tier: SQL answers. */
static void auth_redis_setup(stats_thread *st, const sl_config *cfg)
{
    userdb_redis_config rc;
    char storage[512];
    if (st->auth == NULL || !redis_config_from(cfg, &rc, storage, sizeof(storage))) {
        return;
    }
    userdb_redis_callbacks cb = {.ctx = st, .on_pass_lookup = on_auth_redis_pass};
    char err[256] = "";
    st->redis = userdb_redis_new(&st->ring, &rc, &cb, err, sizeof(err));
    if (st->redis == NULL) {
        sl_warn("auth: redis: %s: passwords come from SQL only", err);
        return;
    }
    auth_server_set_redis(st->auth, st->redis);
}

static void *stats_main(void *arg)
{
    stats_thread *st = arg;
    sl_log_thread_name(st->auth_n > 0 ? "auth" : "stats");
    /* The auth core gets a CPU of its own when the delivery cores leave one
     * free, so a flood of logins never competes with delivery. */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu > 0 && cores_n < (unsigned)ncpu) {
        core_pin(cores_n);
    }
    int rc = sl_ring_init(&st->ring, 1024);
    if (rc != 0) {
        sl_error("stats: io_uring setup: %s", strerror(-rc));
        st->rc = 1;
        kill(getpid(), SIGTERM);
        return NULL;
    }
    st->server = stats_server_new(&st->ring, &st->ctl.cfg->stats_allow, stats_render, NULL);
    for (size_t i = 0; i < st->ctl.listen_n; i++) {
        stats_server_listen(st->server, st->ctl.listen_fds[i]);
    }
    if (st->auth_n > 0) {
        char err[256];
        auth_server_deps deps = {.ring = &st->ring, .resolver = st->resolver,
                                 .resolver_core_id = cores_n, .cfg = &st->ctl.cfg->cfg,
                                 .allow = &st->ctl.cfg->auth_allow, .stats = &st->stats};
        st->auth = auth_server_new(&deps, err, sizeof(err));
        if (st->auth == NULL) {
            sl_error("%s", err);
            st->rc = 1;
            kill(getpid(), SIGTERM);
        }
        for (size_t i = 0; st->auth != NULL && i < st->auth_n; i++) {
            auth_server_listen(st->auth, st->auth_fds[i]);
        }
        auth_redis_setup(st, &st->ctl.cfg->cfg);
    }
    st->op_ctl.fn = on_stats_ctl;
    io_uring_prep_poll_multishot(sl_ring_sqe(&st->ring, &st->op_ctl), st->ctl.fd, POLLIN);
    uint64_t next_tick = 0;
    while (!(st->stopping && stats_server_idle(st->server) &&
             (st->auth == NULL || auth_server_idle(st->auth)))) {
        if (sl_ring_run_once(&st->ring, 1000) < 0) {
            break;
        }
        if (st->auth != NULL) {
            auth_server_after_dispatch(st->auth);
        }
        if (st->redis != NULL) {
            userdb_redis_flush(st->redis);
            uint64_t now = sl_clock_ms();
            if (now >= next_tick) {
                userdb_redis_tick(st->redis, now);
                next_tick = now + 1000;
            }
        }
    }
    if (st->redis != NULL) {
        auth_server_set_redis(st->auth, NULL);
        redis_client_free(&st->redis, &st->ring);
    }
    auth_server_free(&st->auth);
    stats_server_free(&st->server);
    sl_ring_deinit(&st->ring);
    return NULL;
}

/* Open the stats and SMTP AUTH listeners (before privileges are dropped): both
 * are served by the stats thread. 0 when none. */
static int open_stats_listeners(const sl_config *cfg)
{
    sl_listen_spec specs[LISTEN_MAX];
    char err[256];
    int n = sl_net_parse_listen(cfg->stats_listen, specs, LISTEN_MAX, err, sizeof(err));
    if (n < 0) {
        fprintf(stderr, "sluice: %s: stats_listen: %s\n", cfg->path, err);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int fd = sl_net_listen(&specs[i], 0660, 64);
        if (fd < 0) {
            fprintf(stderr, "sluice: cannot listen on %s%s%s for stats: %s\n", specs[i].addr,
                    specs[i].is_unix ? "" : ":", specs[i].port, strerror(-fd));
            return -1;
        }
        stats_th.ctl.listen_fds[stats_th.ctl.listen_n++] = fd;
        sl_info("stats on %s%s%s/metrics", specs[i].is_unix ? "unix:" : specs[i].addr,
                specs[i].is_unix ? specs[i].addr : ":", specs[i].port);
    }
    char aerr[512];
    int n_auth = auth_server_open_listeners(cfg, stats_th.auth_fds, LISTEN_MAX, aerr, sizeof(aerr));
    if (n_auth < 0) {
        fprintf(stderr, "sluice: %s: %s\n", cfg->path, aerr);
        return -1;
    }
    stats_th.auth_n = (size_t)n_auth;
    return 0;
}

/* ---- process ------------------------------------------------------------ */

static int open_listeners(const sl_config *cfg)
{
    sl_listen_spec specs[LISTEN_MAX];
    char err[256];
    int n = sl_net_parse_listen(cfg->lmtp_listen, specs, LISTEN_MAX, err, sizeof(err));
    if (n <= 0) {
        fprintf(stderr, "sluice: %s: lmtp_listen: %s\n", cfg->path,
                n == 0 ? "no address given" : err);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int shared = -1;
        for (unsigned c = 0; c < cores_n; c++) {
            int fd = shared;
            if (fd < 0) {
                fd = sl_net_listen(&specs[i], cfg->lmtp_unix_mode, 1024);
            }
            if (fd < 0) {
                fprintf(stderr, "sluice: cannot listen on %s%s%s: %s\n", specs[i].addr,
                        specs[i].is_unix ? "" : ":", specs[i].port, strerror(-fd));
                return -1;
            }
            if (specs[i].is_unix) {
                shared = fd; /* one UNIX socket, accepted on by every core */
            }
            cores[c].ctl.listen_fds[cores[c].ctl.listen_n++] = fd;
        }
        sl_info("listening on %s%s%s", specs[i].is_unix ? "unix:" : specs[i].addr,
                specs[i].is_unix ? specs[i].addr : ":", specs[i].port);
    }
    return 0;
}

static int drop_privileges(const sl_config *cfg)
{
    if (cfg->mail_user[0] == '\0' || geteuid() != 0) {
        return 0;
    }
    struct passwd *pw = getpwnam(cfg->mail_user);
    if (pw == NULL) {
        fprintf(stderr, "sluice: mail_user %s: no such user\n", cfg->mail_user);
        return -1;
    }
    if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        fprintf(stderr, "sluice: cannot become %s: %s\n", cfg->mail_user, strerror(errno));
        return -1;
    }
    return 0;
}

static void notify(int fd, _Atomic int *flags, int flag)
{
    atomic_fetch_or(flags, flag);
    uint64_t one = 1;
    ssize_t w = write(fd, &one, sizeof(one));
    (void)w;
}

static void notify_cores(int flag)
{
    for (unsigned i = 0; i < cores_n; i++) {
        notify(cores[i].ctl.fd, &cores[i].ctl.flags, flag);
    }
    if (stats_thread_on() && (flag & (CTL_RELOAD | CTL_SHUTDOWN))) {
        notify(stats_th.ctl.fd, &stats_th.ctl.flags, flag & (CTL_RELOAD | CTL_SHUTDOWN));
    }
}

static void reload(const char *path, resolver *res)
{
    char err[512];
    shared_cfg *sc = shared_cfg_load(path, err, sizeof(err));
    if (sc == NULL) {
        sl_error("reload failed, keeping the running configuration: %s", err);
        return;
    }
    userdb_config u = userdb_cfg_of(&sc->cfg);
    if (resolver_reload(res, &u, err, sizeof(err)) != 0) {
        sl_error("reload failed, keeping the running configuration: userdb: %s", err);
        shared_cfg_put(sc);
        return;
    }
    sl_log_init(sc->cfg.log, level_of(sc->cfg.log_level));
    atomic_store(&janitor_max_age_s, sc->cfg.tmp_max_age_s);
    atomic_store(&fsync_enabled, sc->cfg.fsync);
    atomic_store(&sc->refs, (int)cores_n + (stats_thread_on() ? 1 : 0));
    for (unsigned i = 0; i < cores_n; i++) {
        shared_cfg_put(atomic_exchange(&cores[i].ctl.next_cfg, sc));
    }
    if (stats_thread_on()) {
        shared_cfg_put(atomic_exchange(&stats_th.ctl.next_cfg, sc));
    }
    notify_cores(CTL_RELOAD);
}

static void usage(void)
{
    fprintf(stderr, "usage: sluice -c CONFIG [-t]\n"
                    "  -c CONFIG  configuration file (see tools/sluice.conf)\n"
                    "  -t         check the configuration and exit\n"
                    "  -v         print the version\n");
}

/* The signals the main thread takes with sigwait(); blocked in every thread. */
static void control_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR1);
}

static int wait_signals(const char *path, resolver *res)
{
    sigset_t set;
    control_signals(&set);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) {
            continue;
        }
        if (sig == SIGHUP) {
            sl_info("SIGHUP: reloading %s", path);
            reload(path, res);
        } else if (sig == SIGUSR1) {
            notify_cores(CTL_STATS);
        } else {
            sl_info("%s: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            notify_cores(CTL_SHUTDOWN);
            return 0;
        }
    }
}

static int run(shared_cfg *sc, const char *path)
{
    const sl_config *cfg = &sc->cfg;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cores_n = cfg->cores != 0 ? cfg->cores : (unsigned)(ncpu > 0 ? ncpu : 1);
    SL_ASSERT(cores_n <= CORES_MAX);
    cores = sl_calloc(cores_n, sizeof(*cores));
    if (open_listeners(cfg) != 0 || open_stats_listeners(cfg) != 0 || drop_privileges(cfg) != 0) {
        return 1;
    }
    char err[512];
    userdb_config u = userdb_cfg_of(cfg);
    userdb_redis_config rcfg;
    char rstorage[512];
    bool with_redis = redis_config_from(cfg, &rcfg, rstorage, sizeof(rstorage));
    /* Ids 0..cores_n-1 are the delivery cores, cores_n the auth core. */
    resolver *res = resolver_new(&u, with_redis ? &rcfg : NULL, cfg->resolver_threads, cores_n + 1,
                                 cfg->resolver_queue_max,
                                 err, sizeof(err));
    if (res == NULL) {
        fprintf(stderr, "sluice: userdb: %s\n", err);
        return 1;
    }
    userdb_resolver = res;
    if (!cfg->fsync) {
        sl_warn("fsync = no: acknowledged mail is NOT guaranteed to survive a crash");
    }
    mkdir(cfg->mail_root, 0700);
    if (strcmp(cfg->sync_method, "syncfs") == 0) {
        sync_barrier = fs_barrier_new(cfg->sync_threads, err, sizeof(err));
        if (sync_barrier == NULL) {
            fprintf(stderr, "sluice: %s\n", err);
            resolver_free(&res);
            return 1;
        }
    }
    atomic_store(&fsync_enabled, cfg->fsync);
    start_time_s = (int64_t)time(NULL);
    atomic_store(&sc->refs, (int)cores_n + 1 + (stats_thread_on() ? 1 : 0));
    for (unsigned i = 0; i < cores_n; i++) {
        core *co = &cores[i];
        co->id = i;
        co->ctl.cfg = sc;
        co->resolver = res;
        co->ctl.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        SL_ASSERT(co->ctl.fd >= 0);
        pthread_create(&co->ctl.thread, NULL, core_main, co);
    }
    if (stats_thread_on()) {
        stats_th.resolver = res;
        stats_th.ctl.cfg = sc;
        stats_th.ctl.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        SL_ASSERT(stats_th.ctl.fd >= 0);
        pthread_create(&stats_th.ctl.thread, NULL, stats_main, &stats_th);
    }
    pthread_t janitor;
    atomic_store(&janitor_max_age_s, cfg->tmp_max_age_s);
    pthread_create(&janitor, NULL, janitor_main, cfg->mail_root);
    sl_info("sluice started: %u delivery cores, hostname %s, mail_root %s", cores_n, cfg->hostname,
            cfg->mail_root);
    wait_signals(path, res);
    int rc = 0;
    for (unsigned i = 0; i < cores_n; i++) {
        pthread_join(cores[i].ctl.thread, NULL);
        rc |= cores[i].rc;
        shared_cfg_put(cores[i].ctl.cfg);
        shared_cfg_put(atomic_exchange(&cores[i].ctl.next_cfg, NULL));
    }
    if (stats_thread_on()) {
        pthread_join(stats_th.ctl.thread, NULL);
        rc |= stats_th.rc;
        shared_cfg_put(stats_th.ctl.cfg);
        shared_cfg_put(atomic_exchange(&stats_th.ctl.next_cfg, NULL));
    }
    atomic_store(&janitor_stop, true);
    pthread_join(janitor, NULL);
    userdb_resolver = NULL;
    resolver_free(&res);
    fs_barrier_free(&sync_barrier);
    sl_info("sluice stopped");
    return rc;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    bool check_only = false;
    int opt;
    while ((opt = getopt(argc, argv, "c:tvh")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            check_only = true;
            break;
        case 'v':
            printf("sluice 0.1.0\n");
            return 0;
        default:
            usage();
            return 2;
        }
    }
    if (path == NULL) {
        usage();
        return 2;
    }
    char err[512];
    shared_cfg *sc = shared_cfg_load(path, err, sizeof(err));
    if (sc == NULL) {
        fprintf(stderr, "sluice: %s\n", err);
        return 1;
    }
    sl_listen_spec specs[LISTEN_MAX];
    if (sl_net_parse_listen(sc->cfg.lmtp_listen, specs, LISTEN_MAX, err, sizeof(err)) < 0) {
        fprintf(stderr, "sluice: %s: lmtp_listen: %s\n", path, err);
        return 1;
    }
    if (check_only) {
        printf("%s: configuration ok\n", path);
        return 0;
    }
    sl_log_init(sc->cfg.log, level_of(sc->cfg.log_level));
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    control_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int rc = run(sc, path);
    shared_cfg_put(sc);
    return rc;
}
