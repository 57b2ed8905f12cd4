/* bench/durable-floor.c: the fastest rate at which this disk makes Maildir
 * deliveries durable with the ordering a correct LMTP server needs (data
 * durable before its name, name durable before the reply), with no protocol
 * and no server around it: the yardstick for sluice's own numbers.
 *
 * N worker threads each keep one delivery in flight. A delivery picks R
 * distinct users out of U, then:
 *   1. creates <dir>/uNNNN/tmp/<name> (in the last recipient's maildir) and
 *      writes SIZE bytes;
 *   2. makes the data durable;
 *   3. links the file into new/ of recipients 1..R-1 and renames it into
 *      new/ of recipient R, so the tmp/ name goes;
 *   4. makes the names durable, closes the file;
 *   5. counts one message, R deliveries, and the latency of steps 1-4.
 * How steps 2 and 4 are done is the method, matching sluice's sync_method:
 *   fsync   fdatasync the file; then a full fsync of the file when it has
 *           several names (its link count), and an fsync of every touched
 *           new/ directory and of the tmp/ directory, one after the other,
 *           through directory fds opened before the clock starts;
 *   syncfs  wait for a barrier round that starts after the request: a round
 *           takes every pending request, runs syncfs() then fsync() on
 *           <dir>, and wakes the requesters (a group commit across workers);
 *   none    nothing: page cache only, the CPU floor of the file operations.
 * Every syscall is checked; a failure prints what, the path and the error,
 * and exits 1. `durable-floor --help` lists the options. */
#include "core/base/base.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FLOOR_THREADS_MAX 1024
#define FLOOR_SYNC_THREADS_MAX 16
#define FLOOR_RCPTS_MAX 64
#define FLOOR_USERS_MAX 1000000
#define FLOOR_SIZE_BYTES_MAX (64ull << 20)
#define FLOOR_DIR_BYTES_MAX 3000 /* leaves room for /uNNNNNN/tmp/<name> */
#define FLOOR_NAME_BYTES_MAX 64
#define FLOOR_FDS_SPARE 64 /* stdio, the files in flight, the barrier's dir */

/* Latency histogram: log-linear on nanoseconds, 64 linear sub-buckets per
 * power of two, so a reported value is within 1.6% of the recorded ones.
 * Values from 2^40 ns (18 minutes) up share the top bucket; the exact
 * maximum is kept separately. */
#define FLOOR_HIST_SUB_BITS 6
#define FLOOR_HIST_SUB (1u << FLOOR_HIST_SUB_BITS)
#define FLOOR_HIST_TOP_BIT 40
#define FLOOR_HIST_BUCKETS ((FLOOR_HIST_TOP_BIT - FLOOR_HIST_SUB_BITS + 2) * FLOOR_HIST_SUB)

typedef enum floor_method {
    FLOOR_FSYNC,
    FLOOR_SYNCFS,
    FLOOR_NONE,
} floor_method;

enum {
    FLOOR_PHASE_WARMUP,
    FLOOR_PHASE_MEASURE,
    FLOOR_PHASE_STOP,
};

typedef struct floor_opts {
    const char *dir;
    floor_method method;
    unsigned threads;
    unsigned sync_threads;
    unsigned rcpts;
    unsigned users;
    uint64_t size_bytes;
    double duration_s;
    uint64_t messages; /* 0: run for duration_s */
    double warmup_s;
    bool json;
    bool verify;
    bool no_tmp_fsync; /* fsync method: leave tmp/ out (the least any server must do) */
} floor_opts;

typedef struct floor_hist {
    uint64_t count;
    uint64_t max_ns;
    uint64_t counts[FLOOR_HIST_BUCKETS];
} floor_hist;

/* A worker waiting for a syncfs round; both fields under the barrier's mu. */
typedef struct floor_waiter {
    pthread_cond_t cv;
    bool done;
} floor_waiter;

/* One syncing thread and the round it runs: it swaps its array for the
 * queue, so requests arriving during a round wait for the next one. */
typedef struct floor_syncer {
    pthread_t thread;
    floor_waiter **round;
} floor_syncer;

typedef struct floor_barrier {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* syncers wait here for requests */
    floor_waiter **queue; /* under mu; room for one request per worker */
    size_t queue_n;
    bool stop;
    int dir_fd;
    _Atomic uint64_t rounds;
    floor_syncer syncers[FLOOR_SYNC_THREADS_MAX];
    unsigned syncers_n;
} floor_barrier;

typedef struct floor_worker {
    unsigned idx;
    pthread_t thread;
    uint64_t rng;
    uint64_t seq;
    uint8_t *buf;
    floor_waiter waiter;
    /* read by main after the join */
    uint64_t msgs_done; /* every completed message, warm-up and tail too */
    uint64_t msgs_measured;
    floor_hist hist;
} floor_worker;

/* Time, CPU and rounds at one edge of the measured window. */
typedef struct floor_snap {
    uint64_t t_ns;
    uint64_t cpu_us;
    uint64_t rounds;
} floor_snap;

typedef struct floor_run {
    floor_opts o;
    uint64_t run_id; /* makes names unique across runs into the same dirs */
    int *new_fds;    /* fsync: per user, new/ and tmp/, open for the run */
    int *tmp_fds;
    floor_barrier barrier;
    floor_worker *workers;
    _Atomic int phase;
    _Atomic uint64_t measured;
    uint64_t messages_cap; /* measured messages that end the run */
    floor_snap start;
    floor_snap end;
} floor_run;

static floor_run g;

static void die_errno(const char *what, const char *path, int err) __attribute__((noreturn));
static void die_errno(const char *what, const char *path, int err)
{
    fprintf(stderr, "durable-floor: %s %s: %s\n", what, path, strerror(err));
    exit(1);
}

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("durable-floor: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        die_errno("clock_gettime", "CLOCK_MONOTONIC", errno);
    }
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_us(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        die_errno("getrusage", "RUSAGE_SELF", errno);
    }
    uint64_t us = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec;
    return us + (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
}

static void snap(floor_snap *s)
{
    s->t_ns = now_ns();
    s->cpu_us = cpu_us();
    s->rounds = atomic_load(&g.barrier.rounds);
}

static void sleep_until_ns(uint64_t t_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(t_ns / 1000000000ull),
                          .tv_nsec = (long)(t_ns % 1000000000ull)};
    int rc;
    while ((rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)) == EINTR) {
    }
    if (rc != 0) {
        die_errno("clock_nanosleep", "CLOCK_MONOTONIC", rc);
    }
}

static void check_pthread(int rc, const char *what)
{
    if (rc != 0) {
        die_errno(what, "(pthread)", rc);
    }
}

/* ---- paths ---------------------------------------------------------- */

/* <dir>/uNNNN/<sub>[/<name>] into buf (PATH_MAX bytes). */
static void user_path(char *buf, unsigned user, const char *sub, const char *name)
{
    int n;
    if (name != NULL) {
        n = snprintf(buf, PATH_MAX, "%s/u%04u/%s/%s", g.o.dir, user, sub, name);
    } else if (sub != NULL) {
        n = snprintf(buf, PATH_MAX, "%s/u%04u/%s", g.o.dir, user, sub);
    } else {
        n = snprintf(buf, PATH_MAX, "%s/u%04u", g.o.dir, user);
    }
    SL_ASSERT(n > 0);
    SL_ASSERT(n < PATH_MAX); /* the --dir length limit leaves room */
}

/* Only on the error path: the directory's name for the message. */
static void die_user_dir(const char *what, unsigned user, const char *sub, int err)
    __attribute__((noreturn));
static void die_user_dir(const char *what, unsigned user, const char *sub, int err)
{
    char path[PATH_MAX];
    user_path(path, user, sub, NULL);
    die_errno(what, path, err);
}

/* ---- histogram ------------------------------------------------------ */

static size_t hist_index(uint64_t v_ns)
{
    if (v_ns >= (1ull << (FLOOR_HIST_TOP_BIT + 1))) {
        v_ns = (1ull << (FLOOR_HIST_TOP_BIT + 1)) - 1;
    }
    if (v_ns < FLOOR_HIST_SUB) {
        return (size_t)v_ns;
    }
    unsigned bit = 63u - (unsigned)__builtin_clzll(v_ns); /* >= FLOOR_HIST_SUB_BITS */
    unsigned shift = bit - FLOOR_HIST_SUB_BITS;
    return (size_t)shift * FLOOR_HIST_SUB + (size_t)(v_ns >> shift);
}

/* The midpoint of a bucket, in nanoseconds. */
static uint64_t hist_value_ns(size_t idx)
{
    if (idx < 2 * FLOOR_HIST_SUB) {
        return idx;
    }
    unsigned shift = (unsigned)(idx / FLOOR_HIST_SUB) - 1;
    uint64_t low = (uint64_t)(idx % FLOOR_HIST_SUB + FLOOR_HIST_SUB) << shift;
    return low + ((1ull << shift) >> 1);
}

static void hist_record(floor_hist *h, uint64_t v_ns)
{
    size_t i = hist_index(v_ns);
    SL_ASSERT(i < FLOOR_HIST_BUCKETS);
    h->counts[i]++;
    h->count++;
    h->max_ns = SL_MAX(h->max_ns, v_ns);
}

static void hist_merge(floor_hist *into, const floor_hist *from)
{
    for (size_t i = 0; i < FLOOR_HIST_BUCKETS; i++) {
        into->counts[i] += from->counts[i];
    }
    into->count += from->count;
    into->max_ns = SL_MAX(into->max_ns, from->max_ns);
}

/* The ceil(q * count)-th smallest value (its bucket's midpoint, never above
 * the exact maximum), in milliseconds; 0 when nothing was recorded. */
static double hist_quantile_ms(const floor_hist *h, double q)
{
    if (h->count == 0) {
        return 0;
    }
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.999999);
    rank = SL_MAX(rank, 1);
    uint64_t seen = 0;
    for (size_t i = 0; i < FLOOR_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            return (double)SL_MIN(hist_value_ns(i), h->max_ns) / 1e6;
        }
    }
    return (double)h->max_ns / 1e6;
}

/* ---- syncfs barrier ------------------------------------------------- */

static void *syncer_main(void *arg)
{
    floor_syncer *y = arg;
    floor_barrier *b = &g.barrier;
    check_pthread(pthread_mutex_lock(&b->mu), "pthread_mutex_lock");
    for (;;) {
        while (b->queue_n == 0 && !b->stop) {
            check_pthread(pthread_cond_wait(&b->cv, &b->mu), "pthread_cond_wait");
        }
        if (b->queue_n == 0) {
            break;
        }
        floor_waiter **round = b->queue;
        size_t n = b->queue_n;
        b->queue = y->round;
        b->queue_n = 0;
        y->round = round;
        check_pthread(pthread_mutex_unlock(&b->mu), "pthread_mutex_unlock");
        /* Without a journal ext4's syncfs() flushes the cache before its
         * last metadata writes; the fsync's flush covers those. */
        if (syncfs(b->dir_fd) != 0) {
            die_errno("syncfs", g.o.dir, errno);
        }
        if (fsync(b->dir_fd) != 0) {
            die_errno("fsync", g.o.dir, errno);
        }
        atomic_fetch_add(&b->rounds, 1);
        check_pthread(pthread_mutex_lock(&b->mu), "pthread_mutex_lock");
        for (size_t i = 0; i < n; i++) {
            round[i]->done = true;
            check_pthread(pthread_cond_signal(&round[i]->cv), "pthread_cond_signal");
        }
    }
    check_pthread(pthread_mutex_unlock(&b->mu), "pthread_mutex_unlock");
    return NULL;
}

/* Returns once a round that started after this call has finished: then
 * everything the caller wrote or renamed before calling is durable. */
static void barrier_wait(floor_waiter *w)
{
    floor_barrier *b = &g.barrier;
    check_pthread(pthread_mutex_lock(&b->mu), "pthread_mutex_lock");
    SL_ASSERT(b->queue_n < g.o.threads);
    w->done = false;
    b->queue[b->queue_n++] = w;
    if (b->queue_n == 1) {
        check_pthread(pthread_cond_signal(&b->cv), "pthread_cond_signal");
    }
    while (!w->done) {
        check_pthread(pthread_cond_wait(&w->cv, &b->mu), "pthread_cond_wait");
    }
    check_pthread(pthread_mutex_unlock(&b->mu), "pthread_mutex_unlock");
}

static void barrier_start(void)
{
    floor_barrier *b = &g.barrier;
    check_pthread(pthread_mutex_init(&b->mu, NULL), "pthread_mutex_init");
    check_pthread(pthread_cond_init(&b->cv, NULL), "pthread_cond_init");
    b->queue = calloc(g.o.threads, sizeof(*b->queue));
    SL_ASSERT(b->queue != NULL);
    b->dir_fd = open(g.o.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (b->dir_fd < 0) {
        die_errno("open", g.o.dir, errno);
    }
    b->syncers_n = g.o.sync_threads;
    for (unsigned i = 0; i < b->syncers_n; i++) {
        floor_syncer *y = &b->syncers[i];
        y->round = calloc(g.o.threads, sizeof(*y->round));
        SL_ASSERT(y->round != NULL);
        check_pthread(pthread_create(&y->thread, NULL, syncer_main, y), "pthread_create");
    }
}

static void barrier_stop(void)
{
    floor_barrier *b = &g.barrier;
    check_pthread(pthread_mutex_lock(&b->mu), "pthread_mutex_lock");
    b->stop = true;
    check_pthread(pthread_cond_broadcast(&b->cv), "pthread_cond_broadcast");
    check_pthread(pthread_mutex_unlock(&b->mu), "pthread_mutex_unlock");
    for (unsigned i = 0; i < b->syncers_n; i++) {
        check_pthread(pthread_join(b->syncers[i].thread, NULL), "pthread_join");
        free(b->syncers[i].round);
    }
    if (close(b->dir_fd) != 0) {
        die_errno("close", g.o.dir, errno);
    }
    free(b->queue);
}

/* ---- deliveries ----------------------------------------------------- */

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* R distinct users; R <= 64 makes the quadratic check cheap. */
static void pick_users(floor_worker *w, unsigned *users_out)
{
    for (unsigned i = 0; i < g.o.rcpts; i++) {
        bool dup;
        do {
            users_out[i] = (unsigned)(rng_next(&w->rng) % g.o.users);
            dup = false;
            for (unsigned j = 0; j < i && !dup; j++) {
                dup = users_out[j] == users_out[i];
            }
        } while (dup);
    }
}

static void write_all(int fd, const uint8_t *buf, uint64_t len, const char *path)
{
    uint64_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, buf + off, (size_t)(len - off));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            die_errno("write", path, errno);
        }
        if (n == 0) {
            die_errno("write", path, EIO); /* no progress on a regular file */
        }
        off += (uint64_t)n;
    }
}

/* Count a finished message. The measured window is by completion: what
 * finishes while the phase is MEASURE counts, up to --messages. */
static void record(floor_worker *w, uint64_t latency_ns)
{
    w->msgs_done++;
    if (atomic_load(&g.phase) != FLOOR_PHASE_MEASURE) {
        return;
    }
    uint64_t n = atomic_fetch_add(&g.measured, 1) + 1;
    if (n > g.messages_cap) {
        return;
    }
    w->msgs_measured++;
    hist_record(&w->hist, latency_ns);
    if (n == g.messages_cap) {
        snap(&g.end);
        atomic_store(&g.phase, FLOOR_PHASE_STOP);
    }
}

/* Step 4 of the fsync method: the link count, then every directory that
 * gained or lost a name. */
static void names_durable_fsync(int fd, const unsigned *users, const char *new_path)
{
    unsigned last = users[g.o.rcpts - 1];
    if (g.o.rcpts > 1 && fsync(fd) != 0) {
        die_errno("fsync", new_path, errno);
    }
    for (unsigned i = 0; i < g.o.rcpts; i++) {
        if (fsync(g.new_fds[users[i]]) != 0) {
            die_user_dir("fsync", users[i], "new", errno);
        }
    }
    if (!g.o.no_tmp_fsync && fsync(g.tmp_fds[last]) != 0) {
        die_user_dir("fsync", last, "tmp", errno);
    }
}

static void deliver(floor_worker *w)
{
    unsigned users[FLOOR_RCPTS_MAX];
    char name[FLOOR_NAME_BYTES_MAX];
    char tmp_path[PATH_MAX];
    char new_path[PATH_MAX];
    pick_users(w, users);
    unsigned last = users[g.o.rcpts - 1];
    int n = snprintf(name, sizeof(name), "%016" PRIx64 ".%u.%" PRIu64 ".floor", g.run_id, w->idx,
                     w->seq++);
    SL_ASSERT(n > 0 && (size_t)n < sizeof(name));
    user_path(tmp_path, last, "tmp", name);

    uint64_t t0 = now_ns();
    int fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        die_errno("open", tmp_path, errno);
    }
    write_all(fd, w->buf, g.o.size_bytes, tmp_path);
    if (g.o.method == FLOOR_FSYNC && fdatasync(fd) != 0) {
        die_errno("fdatasync", tmp_path, errno);
    } else if (g.o.method == FLOOR_SYNCFS) {
        barrier_wait(&w->waiter);
    }
    for (unsigned i = 0; i + 1 < g.o.rcpts; i++) {
        user_path(new_path, users[i], "new", name);
        if (link(tmp_path, new_path) != 0) {
            die_errno("link", new_path, errno);
        }
    }
    user_path(new_path, last, "new", name);
    if (rename(tmp_path, new_path) != 0) {
        die_errno("rename", new_path, errno);
    }
    if (g.o.method == FLOOR_FSYNC) {
        names_durable_fsync(fd, users, new_path);
    }
    if (close(fd) != 0) {
        die_errno("close", new_path, errno);
    }
    if (g.o.method == FLOOR_SYNCFS) {
        barrier_wait(&w->waiter);
    }
    record(w, now_ns() - t0);
}

static void *worker_main(void *arg)
{
    floor_worker *w = arg;
    while (atomic_load(&g.phase) != FLOOR_PHASE_STOP) {
        deliver(w);
    }
    return NULL;
}

/* ---- setup ---------------------------------------------------------- */

static void mkdir_if_missing(const char *path)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        die_errno("mkdir", path, errno);
    }
}

static int open_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        die_errno("open", path, errno);
    }
    return fd;
}

/* The fsync method keeps two directory fds per user open. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        die_errno("getrlimit", "RLIMIT_NOFILE", errno);
    }
    rlim_t want = 2 * (rlim_t)g.o.users + g.o.threads + FLOOR_FDS_SPARE;
    if (rl.rlim_cur >= want) {
        return;
    }
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
        die_errno("setrlimit", "RLIMIT_NOFILE (2 fds per user; lower --users)", EMFILE);
    }
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        die_errno("setrlimit", "RLIMIT_NOFILE", errno);
    }
}

static void setup_dirs(void)
{
    static const char *const subs[] = {"tmp", "new", "cur"};
    char path[PATH_MAX];
    mkdir_if_missing(g.o.dir);
    for (unsigned u = 0; u < g.o.users; u++) {
        user_path(path, u, NULL, NULL);
        mkdir_if_missing(path);
        for (size_t i = 0; i < SL_ARRAY_LEN(subs); i++) {
            user_path(path, u, subs[i], NULL);
            mkdir_if_missing(path);
        }
    }
    if (g.o.method != FLOOR_FSYNC) {
        return;
    }
    raise_fd_limit();
    g.new_fds = calloc(g.o.users, sizeof(*g.new_fds));
    g.tmp_fds = calloc(g.o.users, sizeof(*g.tmp_fds));
    SL_ASSERT(g.new_fds != NULL);
    SL_ASSERT(g.tmp_fds != NULL);
    for (unsigned u = 0; u < g.o.users; u++) {
        user_path(path, u, "new", NULL);
        g.new_fds[u] = open_dir(path);
        user_path(path, u, "tmp", NULL);
        g.tmp_fds[u] = open_dir(path);
    }
}

static void close_dirs(void)
{
    if (g.new_fds == NULL) {
        return;
    }
    for (unsigned u = 0; u < g.o.users; u++) {
        if (close(g.new_fds[u]) != 0) {
            die_user_dir("close", u, "new", errno);
        }
        if (close(g.tmp_fds[u]) != 0) {
            die_user_dir("close", u, "tmp", errno);
        }
    }
    free(g.new_fds);
    free(g.tmp_fds);
}

/* Names in <sub>/ of every user, "." and ".." not counted. */
static uint64_t count_names(const char *sub)
{
    char path[PATH_MAX];
    uint64_t total = 0;
    for (unsigned u = 0; u < g.o.users; u++) {
        user_path(path, u, sub, NULL);
        DIR *d = opendir(path);
        if (d == NULL) {
            die_errno("opendir", path, errno);
        }
        for (;;) {
            errno = 0;
            struct dirent *e = readdir(d);
            if (e == NULL) {
                if (errno != 0) {
                    die_errno("readdir", path, errno);
                }
                break;
            }
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                total++;
            }
        }
        if (closedir(d) != 0) {
            die_errno("closedir", path, errno);
        }
    }
    return total;
}

/* ---- options -------------------------------------------------------- */

static void usage(FILE *f)
{
    fputs("usage: durable-floor --dir DIR [options]\n"
          "  --dir DIR            maildirs DIR/u0000.. (tmp/ new/ cur/ made if missing)\n"
          "  --method M           fsync (default), syncfs or none\n"
          "  --threads N          deliveries in flight, one thread each (default 8)\n"
          "  --sync-threads K     syncfs: threads running rounds (default 1)\n"
          "  --rcpts R            recipients per message, 1..64 (default 1)\n"
          "  --users U            recipients drawn from U users (default 1000)\n"
          "  --size BYTES         message size (default 4096)\n"
          "  --duration S         measured seconds (default 5)\n"
          "  --messages M         measure M messages instead of a duration\n"
          "  --warmup S           unmeasured seconds first (default 1)\n"
          "  --json               also print one JSON line (the text line goes to stderr)\n"
          "  --verify             at the end, check new/ gained one name per delivery and\n"
          "                       tmp/ kept none\n"
          "  --no-tmp-fsync       fsync: no fsync of tmp/ after the rename (enough with a\n"
          "                       journal; without one the link count may be wrong after\n"
          "                       a crash): the least any server must do\n"
          "Exit status: 0 on success, 1 on a failed syscall or verification, 2 on bad usage.\n",
          f);
}

static uint64_t parse_u64(const char *name, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > max) {
        die_usage("--%s: want an integer in %" PRIu64 "..%" PRIu64 ", got '%s'", name, min, max,
                  s);
    }
    return v;
}

static double parse_seconds(const char *name, const char *s, double min)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= min) || v > 86400) {
        die_usage("--%s: want seconds in %g..86400, got '%s'", name, min, s);
    }
    return v;
}

static const char *const method_names[] = {
    [FLOOR_FSYNC] = "fsync",
    [FLOOR_SYNCFS] = "syncfs",
    [FLOOR_NONE] = "none",
};

static floor_method parse_method(const char *s)
{
    for (size_t m = 0; m < SL_ARRAY_LEN(method_names); m++) {
        if (strcmp(s, method_names[m]) == 0) {
            return (floor_method)m;
        }
    }
    die_usage("--method: want fsync, syncfs or none, got '%s'", s);
}

static const char *method_name(floor_method m)
{
    SL_ASSERT((size_t)m < SL_ARRAY_LEN(method_names));
    return method_names[m];
}

enum {
    O_DIR = 256,
    O_METHOD,
    O_THREADS,
    O_SYNC_THREADS,
    O_RCPTS,
    O_USERS,
    O_SIZE,
    O_DURATION,
    O_MESSAGES,
    O_WARMUP,
    O_JSON,
    O_VERIFY,
    O_NO_TMP_FSYNC,
    O_HELP,
};

static void parse_opts(int argc, char **argv, floor_opts *o)
{
    static const struct option longs[] = {
        {"dir", required_argument, NULL, O_DIR},
        {"method", required_argument, NULL, O_METHOD},
        {"threads", required_argument, NULL, O_THREADS},
        {"sync-threads", required_argument, NULL, O_SYNC_THREADS},
        {"rcpts", required_argument, NULL, O_RCPTS},
        {"users", required_argument, NULL, O_USERS},
        {"size", required_argument, NULL, O_SIZE},
        {"duration", required_argument, NULL, O_DURATION},
        {"messages", required_argument, NULL, O_MESSAGES},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"json", no_argument, NULL, O_JSON},
        {"verify", no_argument, NULL, O_VERIFY},
        {"no-tmp-fsync", no_argument, NULL, O_NO_TMP_FSYNC},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    *o = (floor_opts){.method = FLOOR_FSYNC, .threads = 8, .sync_threads = 1, .rcpts = 1,
                      .users = 1000, .size_bytes = 4096, .duration_s = 5, .warmup_s = 1};
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case O_DIR:
            o->dir = optarg;
            break;
        case O_METHOD:
            o->method = parse_method(optarg);
            break;
        case O_THREADS:
            o->threads = (unsigned)parse_u64("threads", optarg, 1, FLOOR_THREADS_MAX);
            break;
        case O_SYNC_THREADS:
            o->sync_threads = (unsigned)parse_u64("sync-threads", optarg, 1,
                                                  FLOOR_SYNC_THREADS_MAX);
            break;
        case O_RCPTS:
            o->rcpts = (unsigned)parse_u64("rcpts", optarg, 1, FLOOR_RCPTS_MAX);
            break;
        case O_USERS:
            o->users = (unsigned)parse_u64("users", optarg, 1, FLOOR_USERS_MAX);
            break;
        case O_SIZE:
            o->size_bytes = parse_u64("size", optarg, 0, FLOOR_SIZE_BYTES_MAX);
            break;
        case O_DURATION:
            o->duration_s = parse_seconds("duration", optarg, 0.001);
            break;
        case O_MESSAGES:
            o->messages = parse_u64("messages", optarg, 1, UINT64_MAX / 2);
            break;
        case O_WARMUP:
            o->warmup_s = parse_seconds("warmup", optarg, 0);
            break;
        case O_JSON:
            o->json = true;
            break;
        case O_VERIFY:
            o->verify = true;
            break;
        case O_NO_TMP_FSYNC:
            o->no_tmp_fsync = true;
            break;
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind != argc) {
        die_usage("unexpected argument '%s' (see --help)", argv[optind]);
    }
    if (o->dir == NULL) {
        die_usage("--dir is required (see --help)");
    }
    if (strlen(o->dir) > FLOOR_DIR_BYTES_MAX) {
        die_usage("--dir: longer than %d bytes", FLOOR_DIR_BYTES_MAX);
    }
    if (o->users < o->rcpts) {
        die_usage("--users (%u) must be at least --rcpts (%u)", o->users, o->rcpts);
    }
}

/* ---- the run -------------------------------------------------------- */

static void start_workers(void)
{
    g.workers = calloc(g.o.threads, sizeof(*g.workers));
    SL_ASSERT(g.workers != NULL);
    for (unsigned i = 0; i < g.o.threads; i++) {
        floor_worker *w = &g.workers[i];
        w->idx = i;
        w->rng = g.run_id ^ ((uint64_t)(i + 1) << 32);
        w->buf = malloc(g.o.size_bytes > 0 ? g.o.size_bytes : 1);
        SL_ASSERT(w->buf != NULL);
        /* Not zeros: a filesystem may treat zero pages specially. */
        for (uint64_t b = 0; b < g.o.size_bytes; b++) {
            w->buf[b] = (uint8_t)('a' + (b + i) % 26);
        }
        check_pthread(pthread_cond_init(&w->waiter.cv, NULL), "pthread_cond_init");
    }
    for (unsigned i = 0; i < g.o.threads; i++) {
        check_pthread(pthread_create(&g.workers[i].thread, NULL, worker_main, &g.workers[i]),
                      "pthread_create");
    }
}

/* Warm up, open the window, and in --duration mode close it. */
static void run_window(void)
{
    uint64_t t = now_ns();
    if (g.o.warmup_s > 0) {
        sleep_until_ns(t + (uint64_t)(g.o.warmup_s * 1e9));
    }
    snap(&g.start);
    atomic_store(&g.phase, FLOOR_PHASE_MEASURE);
    if (g.o.messages == 0) {
        sleep_until_ns(g.start.t_ns + (uint64_t)(g.o.duration_s * 1e9));
        snap(&g.end);
        atomic_store(&g.phase, FLOOR_PHASE_STOP);
    }
}

typedef struct floor_result {
    double elapsed_s;
    uint64_t messages;
    uint64_t messages_done;
    floor_hist hist;
} floor_result;

static void report(const floor_result *r)
{
    const floor_opts *o = &g.o;
    double secs = r->elapsed_s > 0 ? r->elapsed_s : 1e-9;
    double msgs = (double)r->messages;
    double rate = msgs / secs;
    uint64_t deliveries = r->messages * o->rcpts;
    double cpu_ms = r->messages > 0 ? (double)(g.end.cpu_us - g.start.cpu_us) / 1e3 / msgs : 0;
    uint64_t rounds = g.end.rounds - g.start.rounds;
    double rounds_per_msg = r->messages > 0 ? (double)rounds / msgs : 0;
    double p50 = hist_quantile_ms(&r->hist, 0.50);
    double p99 = hist_quantile_ms(&r->hist, 0.99);
    double max = (double)r->hist.max_ns / 1e6;
    FILE *text = o->json ? stderr : stdout;
    fprintf(text,
            "durable-floor: %s, %u threads, %u rcpts, %u users, %" PRIu64 " B: %.0f msg/s "
            "(%.0f deliveries/s), p50 %.3f ms, p99 %.3f ms, max %.3f ms, cpu %.4f ms/msg, "
            "%" PRIu64 " msgs in %.3f s",
            method_name(o->method), o->threads, o->rcpts, o->users, o->size_bytes, rate,
            rate * o->rcpts, p50, p99, max, cpu_ms, r->messages, r->elapsed_s);
    if (o->method == FLOOR_SYNCFS) {
        fprintf(text, ", %" PRIu64 " rounds (%.3f/msg)", rounds, rounds_per_msg);
    }
    fputc('\n', text);
    if (!o->json) {
        return;
    }
    printf("{\"method\":\"%s\",\"threads\":%u,\"rcpts\":%u,\"users\":%u,\"size\":%" PRIu64
           ",\"elapsed_s\":%.6f,\"messages\":%" PRIu64 ",\"deliveries\":%" PRIu64
           ",\"msgs_per_s\":%.3f,\"deliveries_per_s\":%.3f,\"p50_ms\":%.4f,\"p99_ms\":%.4f"
           ",\"max_ms\":%.4f,\"cpu_ms_per_msg\":%.5f,\"messages_total\":%" PRIu64,
           method_name(o->method), o->threads, o->rcpts, o->users, o->size_bytes, r->elapsed_s,
           r->messages, deliveries, rate, rate * o->rcpts, p50, p99, max, cpu_ms,
           r->messages_done);
    if (o->method == FLOOR_FSYNC) {
        printf(",\"tmp_fsync\":%s", o->no_tmp_fsync ? "false" : "true");
    }
    if (o->method == FLOOR_SYNCFS) {
        printf(",\"sync_threads\":%u,\"rounds\":%" PRIu64 ",\"rounds_per_msg\":%.5f",
               o->sync_threads, rounds, rounds_per_msg);
    }
    printf("}\n");
}

/* new/ must hold one more name per delivery than before the run, and tmp/
 * as many as before: every file ended under its new/ names. */
static void verify(uint64_t new_before, uint64_t tmp_before, uint64_t deliveries)
{
    uint64_t new_after = count_names("new");
    uint64_t tmp_after = count_names("tmp");
    if (new_after - new_before != deliveries) {
        fprintf(stderr,
                "durable-floor: verify: new/ gained %" PRIu64 " names, want %" PRIu64
                " (one per delivery)\n",
                new_after - new_before, deliveries);
        exit(1);
    }
    if (tmp_after != tmp_before) {
        fprintf(stderr,
                "durable-floor: verify: tmp/ holds %" PRIu64 " names, want %" PRIu64 "\n",
                tmp_after, tmp_before);
        exit(1);
    }
    fprintf(stderr, "durable-floor: verify: ok, new/ gained %" PRIu64 " names, tmp/ unchanged\n",
            deliveries);
}

int main(int argc, char **argv)
{
    parse_opts(argc, argv, &g.o);
    struct timespec rt;
    if (clock_gettime(CLOCK_REALTIME, &rt) != 0) {
        die_errno("clock_gettime", "CLOCK_REALTIME", errno);
    }
    g.run_id = ((uint64_t)rt.tv_sec * 1000000000ull + (uint64_t)rt.tv_nsec) ^
               ((uint64_t)getpid() << 40);
    g.messages_cap = g.o.messages > 0 ? g.o.messages : UINT64_MAX;
    atomic_store(&g.phase, FLOOR_PHASE_WARMUP);

    setup_dirs();
    uint64_t new_before = 0;
    uint64_t tmp_before = 0;
    if (g.o.verify) {
        new_before = count_names("new");
        tmp_before = count_names("tmp");
    }
    /* Whatever setup left dirty is flushed now, not by the first round. */
    sync();
    if (g.o.method == FLOOR_SYNCFS) {
        barrier_start();
    }
    start_workers();
    run_window();

    floor_result r = {0};
    for (unsigned i = 0; i < g.o.threads; i++) {
        floor_worker *w = &g.workers[i];
        check_pthread(pthread_join(w->thread, NULL), "pthread_join");
        r.messages += w->msgs_measured;
        r.messages_done += w->msgs_done;
        hist_merge(&r.hist, &w->hist);
    }
    if (g.o.method == FLOOR_SYNCFS) {
        barrier_stop();
    }
    SL_ASSERT(r.messages == r.hist.count);
    r.elapsed_s = (double)(g.end.t_ns - g.start.t_ns) / 1e9;
    report(&r);
    if (g.o.verify) {
        verify(new_before, tmp_before, r.messages_done * g.o.rcpts);
    }
    close_dirs();
    for (unsigned i = 0; i < g.o.threads; i++) {
        check_pthread(pthread_cond_destroy(&g.workers[i].waiter.cv), "pthread_cond_destroy");
        free(g.workers[i].buf);
    }
    free(g.workers);
    if (fflush(stdout) != 0) {
        die_errno("write", "stdout", errno);
    }
    return 0;
}
