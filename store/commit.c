/* store/commit.c: store transactions and the per-core group commit
 * (see store.h). Each step waits for every completion of the previous one
 * (some failed ops do not cancel linked SQEs on this kernel, so nothing
 * here relies on links). Per transaction, as soon as its writes are done:
 *   1. fdatasync its tmp/ file(s);
 *   2. hard-link each file into the new/ of every recipient but the last;
 *   3. rename it into the last recipient's new/; a file with more than one
 *      name then gets a full fsync (its link count), and it is closed.
 * Then the group commit, per batch of such transactions of all connections:
 *   4. open each touched new/ and tmp/ directory, fsync them all, close them;
 *   5. report every recipient's outcome.
 * A name in new/ never exists before its file is durable, and no reply goes
 * out before the directories holding its names are. Transactions finishing
 * while a batch waits for the disk form the next batch (up to COMMITS_MAX
 * run at once): that is what makes the directory fsyncs a group commit.
 *
 * Why rename and tmp/: the rename saves a syscall per message over link +
 * unlink, and on a filesystem without a journal (ext4 nojournal) a tmp/
 * name that survived a crash beside the new/ one would, once the janitor
 * removed it, free an inode whose on-disk link count never counted the new/
 * name. Making tmp/ durable too closes that, and so does the full fsync of
 * a file with several names.
 *
 * With a barrier (sync_method = syncfs) step 1 is a wait for a syncfs round
 * instead of fdatasync, a file with several names gets no fsync of its own,
 * and step 4 is one wait per filesystem of the batch for a later round:
 * rounds start only after the request, so the data is durable before the
 * renames are made, and the names before the replies go out. */
#include "store/store.h"

#include "core/alloc.h"
#include "core/base/base.h"
#include "core/clock.h"
#include "core/log.h"
#include "store/fsbarrier.h"
#include "store/maildir.h"
#include "store/maildir_name.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>


#define COPIES_MAX 8
#define WRITE_IOV_MAX 1024
#define FLUSH_BYTES (256 * 1024)
#define FLUSH_PINS 16
#define CONGESTED_BYTES (1024 * 1024)
#define CONGESTED_PINS 48
#define BATCH_TXNS_DEFAULT 256
#define COMMITS_MAX 4

typedef struct commit commit;

typedef struct pin {
    uint16_t bid;
    size_t iov_end; /* the pin may go once every copy has written iovs [0, iov_end) */
} pin;

typedef struct copy {
    store_txn *t;
    dev_t dev;
    int fd;
    int err; /* 0 or -errno */
    char *tmp_path;
    size_t cur_iov;
    size_t cur_off;
    uint64_t offset;
    bool opening;
    bool writing;
    bool renamed;       /* the tmp/ name is gone: tmp/ joins the group commit */
    size_t rename_rcpt; /* recipient named by the rename, SIZE_MAX = none */
    size_t names;       /* new/ names linked or renamed to */
    struct iovec *scratch;
    sl_op op;
    sl_op op2;
} copy;

typedef struct rcpt {
    store_txn *t;
    char *path;
    char *new_path;
    size_t copy;
    size_t dir; /* index in the commit's dir table */
    store_outcome outcome;
    sl_op op;
} rcpt;

typedef enum txn_state {
    TXN_BUILDING = 0,
    TXN_FINISHING, /* last writes in flight */
    TXN_SYNCING,   /* file fsyncs in flight */
    TXN_LINKING,   /* links into new/ in flight */
    TXN_CLEANING,  /* close + unlink of tmp/ in flight */
    TXN_READY,
    TXN_COMMITTING,
    TXN_DONE,
} txn_state;

struct store_txn {
    store *s;
    void *owner;
    store_event_fn fn;
    txn_state state;
    bool abandoned;
    bool begun;
    unsigned inflight;
    uint64_t stage_start_us;
    store_txn *next; /* ready list / batch */
    commit *cm;      /* the commit this transaction is in */

    rcpt *rcpts;
    size_t rcpts_n;
    size_t rcpts_cap;
    copy copies[COPIES_MAX];
    size_t copies_n;

    char base[256];
    char final[320];
    uint8_t *hdr;

    struct iovec *iov;
    size_t iov_n;
    size_t iov_cap;
    pin *pins;
    size_t pins_head;
    size_t pins_n;
    size_t pins_cap;
    uint64_t unwritten_bytes;
    uint64_t errors_seen; /* fs_barrier_errors() before the first write */
};

typedef struct dir_entry {
    char *path;
    dev_t dev;
    uint64_t hash;
    int fd;
    int err;
    commit *cm;
    sl_op op;
} dir_entry;

typedef enum commit_phase {
    PH_IDLE = 0,
    PH_DIROPEN,
    PH_DIRSYNC,
    PH_DIRCLOSE,
} commit_phase;

/* One group commit in flight. A core runs up to COMMITS_MAX at once, so
 * messages that finish while one batch waits for the disk start their own
 * batch instead of waiting for it (each batch fsyncs its own directories). */
struct commit {
    store *s;
    commit_phase phase;
    unsigned outstanding;
    uint64_t phase_start_us; /* for the fsync latency histogram */
    store_txn *batch;
    dir_entry *dirs;
    size_t dirs_n;
    size_t dirs_cap;
    size_t *dir_index; /* open addressing over dirs, SIZE_MAX = empty */
    size_t dir_index_cap;
};

struct store {
    sl_ring *ring;
    sl_bufring *bufs;
    store_config cfg;
    maildir_namer namer;
    maildir_cache *mdcache;
    sl_stats_core *stats;
    size_t alive;

    store_txn *ready_head;
    store_txn *ready_tail;

    commit commits[COMMITS_MAX];
};

static const char eol_lf[] = "\n";
static const char eol_crlf[] = "\r\n";

static void txn_check_written(store_txn *t);
static void commit_next(commit *cm);

/* Durability by syncfs() barriers rather than per-file fsyncs. */
static bool use_barrier(const store *s)
{
    return s->cfg.fsync && s->cfg.barrier != NULL;
}

/* The length of the directory part of file path (before its last '/'). */
static ptrdiff_t parent_len(const char *file)
{
    return strrchr(file, '/') - file;
}

/* dir (its first dir_len bytes) names a directory on dev; it stays valid
 * until the answer (a tmp/ path of the transaction, or a commit's entry). */
static void barrier_request(store *s, sl_op *op, dev_t dev, const char *dir, ptrdiff_t dir_len,
                            uint64_t seen)
{
    SL_ASSERT(dir_len > 0);
    fs_barrier_request(s->cfg.barrier, s->ring->ring.ring_fd, op, dev, dir, (size_t)dir_len,
                       seen);
}

/* ---- store ---------------------------------------------------------- */

store *store_new(sl_ring *ring, sl_bufring *bufs, const store_config *cfg)
{
    store *s = sl_calloc(1, sizeof(*s));
    s->ring = ring;
    s->bufs = bufs;
    s->cfg = *cfg;
    SL_ASSERT(cfg->stats != NULL);
    s->stats = cfg->stats;
    maildir_namer_init(&s->namer, cfg->hostname, (long)getpid(), cfg->core_id, cfg->cores_n);
    s->mdcache = maildir_cache_new();
    for (size_t i = 0; i < COMMITS_MAX; i++) {
        s->commits[i].s = s;
    }
    return s;
}

void store_free(store **s)
{
    if (*s == NULL) {
        return;
    }
    SL_ASSERT((*s)->alive == 0);
    maildir_cache_free(&(*s)->mdcache);
    for (size_t i = 0; i < COMMITS_MAX; i++) {
        free((*s)->commits[i].dirs);
        free((*s)->commits[i].dir_index);
    }
    sl_free(s);
}

void store_set_fsync(store *s, bool fsync)
{
    s->cfg.fsync = fsync;
}

size_t store_txns_alive(const store *s)
{
    return s->alive;
}

bool store_folder_exists(store *s, const char *path)
{
    return maildir_exists(s->mdcache, path);
}

/* ---- building a transaction ----------------------------------------- */

store_txn *store_txn_new(store *s, void *owner, store_event_fn fn)
{
    store_txn *t = sl_calloc(1, sizeof(*t));
    t->s = s;
    t->owner = owner;
    t->fn = fn;
    for (size_t i = 0; i < COPIES_MAX; i++) {
        t->copies[i].fd = -1;
        t->copies[i].t = t;
    }
    s->alive++;
    return t;
}

size_t store_txn_rcpt_count(const store_txn *t)
{
    return t->rcpts_n;
}

static store_outcome outcome_of(int err)
{
    if (err == -ENOSPC || err == -EDQUOT || err == -EFBIG) {
        return STORE_NOSPACE;
    }
    return STORE_TEMPFAIL;
}

static size_t copy_for_dev(store_txn *t, dev_t dev)
{
    for (size_t i = 0; i < t->copies_n; i++) {
        if (t->copies[i].dev == dev) {
            return i;
        }
    }
    if (t->copies_n == COPIES_MAX) {
        return SIZE_MAX;
    }
    t->copies[t->copies_n].dev = dev;
    return t->copies_n++;
}

int store_txn_add_rcpt(store_txn *t, const char *path, bool folder, store_outcome *outcome_out)
{
    SL_ASSERT(!t->begun);
    dev_t dev = 0;
    int rc = maildir_prepare(t->s->mdcache, path, folder, &dev);
    if (rc != 0) {
        sl_warn("maildir %s: cannot create: %s", path, strerror(-rc));
        *outcome_out = outcome_of(rc);
        return -1;
    }
    size_t c = copy_for_dev(t, dev);
    if (c == SIZE_MAX) {
        *outcome_out = STORE_TEMPFAIL;
        return -1;
    }
    if (t->copies[c].tmp_path == NULL) {
        /* The file for this filesystem lives in its first recipient's tmp/. */
        t->copies[c].tmp_path = sl_strdup(path);
    }
    if (t->rcpts_n == t->rcpts_cap) {
        t->rcpts_cap = t->rcpts_cap == 0 ? 4 : t->rcpts_cap * 2;
        t->rcpts = sl_realloc(t->rcpts, t->rcpts_cap * sizeof(*t->rcpts));
    }
    rcpt *r = &t->rcpts[t->rcpts_n];
    memset(r, 0, sizeof(*r));
    r->t = t;
    r->path = sl_strdup(path);
    r->copy = c;
    r->outcome = STORE_OK;
    return (int)t->rcpts_n++;
}

static void push_iov(store_txn *t, const void *p, size_t n)
{
    if (t->iov_n == t->iov_cap) {
        t->iov_cap = t->iov_cap == 0 ? 64 : t->iov_cap * 2;
        t->iov = sl_realloc(t->iov, t->iov_cap * sizeof(*t->iov));
    }
    t->iov[t->iov_n].iov_base = (void *)p;
    t->iov[t->iov_n].iov_len = n;
    t->iov_n++;
    t->unwritten_bytes += n;
}

static void on_open(sl_op *op, int res, uint32_t flags);

void store_txn_begin(store_txn *t, const uint8_t *hdr, size_t hdr_len)
{
    SL_ASSERT(!t->begun);
    SL_ASSERT(t->rcpts_n > 0);
    t->begun = true;
    if (t->s->cfg.barrier != NULL) {
        t->errors_seen = fs_barrier_errors(t->s->cfg.barrier);
    }
    int64_t sec;
    uint32_t usec;
    sl_clock_wall(&sec, &usec);
    size_t n = maildir_name_base(&t->s->namer, sec, usec, t->base, sizeof(t->base));
    SL_ASSERT(n > 0);
    for (size_t i = 0; i < t->copies_n; i++) {
        copy *c = &t->copies[i];
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/tmp/%s", c->tmp_path, t->base);
        free(c->tmp_path);
        c->tmp_path = sl_strdup(path);
        c->opening = true;
        c->op.fn = on_open;
        struct io_uring_sqe *sqe = sl_ring_sqe(t->s->ring, &c->op);
        io_uring_prep_openat(sqe, AT_FDCWD, c->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                             0600);
        t->inflight++;
    }
    t->hdr = sl_malloc(hdr_len == 0 ? 1 : hdr_len);
    memcpy(t->hdr, hdr, hdr_len);
    if (hdr_len > 0) {
        push_iov(t, t->hdr, hdr_len);
    }
}

static void kick_writes(store_txn *t, bool force);

void store_txn_append(store_txn *t, const uint8_t *p, size_t n, uint16_t bid)
{
    SL_ASSERT(t->state == TXN_BUILDING);
    SL_ASSERT(t->begun);
    if (n == 0) {
        return;
    }
    pin *last = t->pins_n > t->pins_head ? &t->pins[t->pins_n - 1] : NULL;
    struct iovec *liov = t->iov_n > 0 ? &t->iov[t->iov_n - 1] : NULL;
    if (last != NULL && last->bid == bid && last->iov_end == t->iov_n && liov != NULL &&
        (const uint8_t *)liov->iov_base + liov->iov_len == p) {
        liov->iov_len += n; /* contiguous in the same buffer: grow the last iovec */
        t->unwritten_bytes += n;
    } else {
        push_iov(t, p, n);
        if (last == NULL || last->bid != bid) {
            sl_bufring_pin(t->s->bufs, bid);
            if (t->pins_n == t->pins_cap) {
                t->pins_cap = t->pins_cap == 0 ? 16 : t->pins_cap * 2;
                t->pins = sl_realloc(t->pins, t->pins_cap * sizeof(*t->pins));
            }
            t->pins[t->pins_n].bid = bid;
            t->pins_n++;
        }
        t->pins[t->pins_n - 1].iov_end = t->iov_n;
    }
    if (t->unwritten_bytes >= FLUSH_BYTES || t->pins_n - t->pins_head >= FLUSH_PINS) {
        kick_writes(t, true);
    }
}

void store_txn_eol(store_txn *t)
{
    SL_ASSERT(t->state == TXN_BUILDING);
    if (t->s->cfg.crlf) {
        push_iov(t, eol_crlf, 2);
    } else {
        push_iov(t, eol_lf, 1);
    }
}

bool store_txn_congested(const store_txn *t)
{
    return t->unwritten_bytes >= CONGESTED_BYTES || t->pins_n - t->pins_head >= CONGESTED_PINS;
}

/* ---- writing -------------------------------------------------------- */

static bool copy_active(const copy *c)
{
    return c->err == 0 && c->fd >= 0;
}

/* Release pins whose bytes every live copy has written. */
static void release_pins(store_txn *t)
{
    size_t min_iov = t->iov_n;
    for (size_t i = 0; i < t->copies_n; i++) {
        const copy *c = &t->copies[i];
        if (c->opening || c->writing || copy_active(c)) {
            min_iov = SL_MIN(min_iov, c->cur_iov);
        }
    }
    bool released = false;
    while (t->pins_head < t->pins_n && t->pins[t->pins_head].iov_end <= min_iov) {
        sl_bufring_unpin(t->s->bufs, t->pins[t->pins_head].bid);
        t->pins_head++;
        released = true;
    }
    if (t->pins_head == t->pins_n && min_iov == t->iov_n) {
        /* Everything written everywhere: start the vectors over. */
        t->pins_head = 0;
        t->pins_n = 0;
        t->iov_n = 0;
        t->unwritten_bytes = 0;
        for (size_t i = 0; i < t->copies_n; i++) {
            t->copies[i].cur_iov = 0;
            t->copies[i].cur_off = 0;
        }
    }
    if (released && t->state == TXN_BUILDING && !t->abandoned) {
        t->fn(t->owner, t, STORE_EV_PROGRESS);
    }
}

static void on_write(sl_op *op, int res, uint32_t flags);

static void submit_write(store_txn *t, copy *c)
{
    if (c->scratch == NULL) {
        c->scratch = sl_malloc(WRITE_IOV_MAX * sizeof(struct iovec));
    }
    size_t n = SL_MIN(t->iov_n - c->cur_iov, (size_t)WRITE_IOV_MAX);
    memcpy(c->scratch, &t->iov[c->cur_iov], n * sizeof(struct iovec));
    c->scratch[0].iov_base = (char *)c->scratch[0].iov_base + c->cur_off;
    c->scratch[0].iov_len -= c->cur_off;
    c->writing = true;
    c->op.fn = on_write;
    struct io_uring_sqe *sqe = sl_ring_sqe(t->s->ring, &c->op);
    io_uring_prep_writev(sqe, c->fd, c->scratch, (unsigned)n, c->offset);
    t->inflight++;
}

static void kick_writes(store_txn *t, bool force)
{
    if (t->abandoned && t->state == TXN_BUILDING) {
        return;
    }
    for (size_t i = 0; i < t->copies_n; i++) {
        copy *c = &t->copies[i];
        if (copy_active(c) && !c->writing && c->cur_iov < t->iov_n && force) {
            submit_write(t, c);
        }
    }
}

/* Advance c's cursor by res bytes. */
static void advance(store_txn *t, copy *c, size_t res)
{
    c->offset += res;
    while (res > 0) {
        SL_ASSERT(c->cur_iov < t->iov_n);
        size_t left = t->iov[c->cur_iov].iov_len - c->cur_off;
        if (res < left) {
            c->cur_off += res;
            return;
        }
        res -= left;
        c->cur_iov++;
        c->cur_off = 0;
    }
    while (c->cur_iov < t->iov_n && t->iov[c->cur_iov].iov_len == 0) {
        c->cur_iov++;
    }
}

static void txn_after_io(store_txn *t);

static void on_open(sl_op *op, int res, uint32_t flags)
{
    copy *c = SL_CONTAINER_OF(op, copy, op);
    store_txn *t = c->t;
    t->inflight--;
    c->opening = false;
    if (res < 0) {
        c->err = res;
        sl_warn("open %s: %s", c->tmp_path, strerror(-res));
    } else {
        c->fd = res;
    }
    txn_after_io(t);
}

static void on_write(sl_op *op, int res, uint32_t flags)
{
    copy *c = SL_CONTAINER_OF(op, copy, op);
    store_txn *t = c->t;
    t->inflight--;
    c->writing = false;
    if (res < 0) {
        c->err = res;
        sl_warn("write %s: %s", c->tmp_path, strerror(-res));
    } else if (res == 0) {
        c->err = -EIO;
    } else {
        size_t before = t->iov_n;
        advance(t, c, (size_t)res);
        SL_ASSERT(before == t->iov_n);
    }
    txn_after_io(t);
}

static void abandon_cleanup(store_txn *t);

static void txn_after_io(store_txn *t)
{
    if (t->abandoned && t->state == TXN_BUILDING) {
        if (t->inflight == 0) {
            abandon_cleanup(t);
        }
        return;
    }
    release_pins(t);
    bool force = t->state == TXN_FINISHING || t->unwritten_bytes >= FLUSH_BYTES ||
                 t->pins_n - t->pins_head >= FLUSH_PINS;
    kick_writes(t, force);
    txn_check_written(t);
}

void store_txn_finish(store_txn *t, uint64_t size, uint64_t vsize)
{
    SL_ASSERT(t->state == TXN_BUILDING);
    SL_ASSERT(t->begun);
    t->state = TXN_FINISHING;
    size_t n = maildir_name_final(t->base, size, vsize, t->final, sizeof(t->final));
    SL_ASSERT(n > 0);
    kick_writes(t, true);
    txn_check_written(t);
}

static void txn_stage_fsync(store_txn *t);

static void txn_check_written(store_txn *t)
{
    if (t->state != TXN_FINISHING || t->inflight > 0) {
        return;
    }
    for (size_t i = 0; i < t->copies_n; i++) {
        const copy *c = &t->copies[i];
        if (copy_active(c) && c->cur_iov < t->iov_n) {
            return;
        }
    }
    release_pins(t);
    SL_ASSERT(t->pins_head == t->pins_n);
    txn_stage_fsync(t);
}

/* ---- abandoning ----------------------------------------------------- */

static void free_txn(store_txn *t)
{
    for (size_t i = 0; i < t->copies_n; i++) {
        free(t->copies[i].tmp_path);
        free(t->copies[i].scratch);
    }
    for (size_t i = 0; i < t->rcpts_n; i++) {
        free(t->rcpts[i].path);
        free(t->rcpts[i].new_path);
    }
    free(t->rcpts);
    free(t->hdr);
    free(t->iov);
    free(t->pins);
    t->s->alive--;
    free(t);
}

/* An unfinished transaction whose owner left: nothing was promised, so the
 * tmp files go. Rare (a client dropping mid-DATA), hence plain syscalls. */
static void abandon_cleanup(store_txn *t)
{
    for (size_t i = 0; i < t->copies_n; i++) {
        copy *c = &t->copies[i];
        if (c->fd >= 0) {
            close(c->fd);
            if (c->tmp_path != NULL) {
                unlink(c->tmp_path);
            }
        }
    }
    while (t->pins_head < t->pins_n) {
        sl_bufring_unpin(t->s->bufs, t->pins[t->pins_head++].bid);
    }
    free_txn(t);
}

void store_txn_abandon(store_txn **tp)
{
    store_txn *t = *tp;
    *tp = NULL;
    if (t == NULL) {
        return;
    }
    t->abandoned = true;
    if (t->state == TXN_BUILDING && t->inflight == 0) {
        abandon_cleanup(t);
    } else if (t->state == TXN_DONE) {
        free_txn(t);
    }
}

store_outcome store_txn_outcome(const store_txn *t, size_t rcpt_index)
{
    SL_ASSERT(rcpt_index < t->rcpts_n);
    SL_ASSERT(t->state == TXN_DONE);
    return t->rcpts[rcpt_index].outcome;
}

const char *store_txn_name(const store_txn *t)
{
    return t->base;
}

void store_txn_free(store_txn **t)
{
    if (*t == NULL) {
        return;
    }
    SL_ASSERT((*t)->state == TXN_DONE);
    free_txn(*t);
    *t = NULL;
}

/* ---- per-transaction stages: fsync, link, clean --------------------- */

static void txn_stage_link(store_txn *t);
static void txn_stage_clean(store_txn *t);
static void txn_ready(store_txn *t);

static void stage_op_done(store_txn *t)
{
    SL_ASSERT(t->inflight > 0);
    if (--t->inflight > 0) {
        return;
    }
    switch (t->state) {
    case TXN_SYNCING:
        txn_stage_link(t);
        break;
    case TXN_LINKING:
        txn_stage_clean(t);
        break;
    case TXN_CLEANING:
        txn_ready(t);
        break;
    default:
        SL_ASSERT(false);
    }
}

static void on_fsync(sl_op *op, int res, uint32_t flags)
{
    copy *c = SL_CONTAINER_OF(op, copy, op);
    store_txn *t = c->t;
    if (res < 0) {
        c->err = res;
        sl_error("%s %s: %s", use_barrier(t->s) ? "syncfs" : "fsync", c->tmp_path,
                 strerror(-res));
    }
    if (!use_barrier(t->s)) {
        sl_stat_add(&t->s->stats->fsyncs, 1);
    }
    sl_hist_latency_us(&t->s->stats->fsync_us, sl_clock_us() - t->stage_start_us);
    stage_op_done(t);
}

static void txn_stage_fsync(store_txn *t)
{
    t->state = TXN_SYNCING;
    t->stage_start_us = sl_clock_us();
    if (t->s->cfg.fsync) {
        for (size_t i = 0; i < t->copies_n; i++) {
            copy *c = &t->copies[i];
            if (!copy_active(c)) {
                continue;
            }
            c->op.fn = on_fsync;
            t->inflight++;
            if (use_barrier(t->s)) {
                /* Data durable before any name in new/ points at it. */
                barrier_request(t->s, &c->op, c->dev, c->tmp_path, parent_len(c->tmp_path),
                                t->errors_seen);
            } else {
                /* fdatasync: data plus the metadata needed to read it back
                 * (size, extents), which is all a new file needs. */
                io_uring_prep_fsync(sl_ring_sqe(t->s->ring, &c->op), c->fd,
                                    IORING_FSYNC_DATASYNC);
            }
        }
    }
    if (t->inflight == 0) {
        txn_stage_link(t);
    }
}

static void on_link(sl_op *op, int res, uint32_t flags)
{
    rcpt *r = SL_CONTAINER_OF(op, rcpt, op);
    if (res < 0) {
        r->outcome = outcome_of(res);
        sl_error("link %s: %s", r->new_path, strerror(-res));
    }
    stage_op_done(r->t);
}

/* The recipient whose new/ name the copy's tmp/ file is renamed to: the
 * last one on that filesystem. */
static void pick_rename_targets(store_txn *t)
{
    for (size_t i = 0; i < t->copies_n; i++) {
        t->copies[i].rename_rcpt = SIZE_MAX;
        t->copies[i].names = 0;
    }
    for (size_t i = 0; i < t->rcpts_n; i++) {
        rcpt *r = &t->rcpts[i];
        if (r->outcome == STORE_OK && copy_active(&t->copies[r->copy])) {
            t->copies[r->copy].rename_rcpt = i;
        }
    }
}

static void txn_stage_link(store_txn *t)
{
    t->state = TXN_LINKING;
    pick_rename_targets(t);
    for (size_t i = 0; i < t->rcpts_n; i++) {
        rcpt *r = &t->rcpts[i];
        copy *c = &t->copies[r->copy];
        if (!copy_active(c)) {
            r->outcome = outcome_of(c->err != 0 ? c->err : -EIO);
            continue;
        }
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/new/%s", r->path, t->final);
        r->new_path = sl_strdup(path);
        if (c->rename_rcpt == i) {
            continue; /* named by the rename in the next stage */
        }
        r->op.fn = on_link;
        io_uring_prep_linkat(sl_ring_sqe(t->s->ring, &r->op), AT_FDCWD, c->tmp_path, AT_FDCWD,
                             r->new_path, 0);
        t->inflight++;
    }
    if (t->inflight == 0) {
        txn_stage_clean(t);
    }
}

static void on_rename(sl_op *op, int res, uint32_t flags)
{
    rcpt *r = SL_CONTAINER_OF(op, rcpt, op);
    copy *c = &r->t->copies[r->copy];
    if (res < 0) {
        r->outcome = outcome_of(res);
        sl_error("rename %s: %s", r->new_path, strerror(-res));
    } else {
        c->renamed = true;
    }
    stage_op_done(r->t);
}

static void on_close(sl_op *op, int res, uint32_t flags)
{
    copy *c = SL_CONTAINER_OF(op, copy, op);
    stage_op_done(c->t);
}

static void submit_close(store_txn *t, copy *c)
{
    c->op.fn = on_close;
    io_uring_prep_close(sl_ring_sqe(t->s->ring, &c->op), c->fd);
    c->fd = -1;
    t->inflight++;
}

/* The full fsync of a file with several names, then its close. */
static void on_names_sync(sl_op *op, int res, uint32_t flags)
{
    copy *c = SL_CONTAINER_OF(op, copy, op);
    store_txn *t = c->t;
    sl_stat_add(&t->s->stats->fsyncs, 1);
    sl_hist_latency_us(&t->s->stats->fsync_us, sl_clock_us() - t->stage_start_us);
    if (res < 0) {
        sl_error("fsync %s: %s", c->tmp_path, strerror(-res));
        for (size_t i = 0; i < t->rcpts_n; i++) {
            if (&t->copies[t->rcpts[i].copy] == c && t->rcpts[i].outcome == STORE_OK) {
                t->rcpts[i].outcome = outcome_of(res);
            }
        }
    }
    submit_close(t, c);
    stage_op_done(t);
}

static void on_unlink(sl_op *op, int res, uint32_t flags)
{
    copy *c = SL_CONTAINER_OF(op, copy, op2);
    if (res < 0 && res != -ENOENT) {
        sl_warn("unlink %s: %s", c->tmp_path, strerror(-res));
    }
    stage_op_done(c->t);
}

/* Rename each file to its last name and close it; a file that failed (or
 * has no recipient left) loses its tmp/ name instead. */
static void txn_stage_clean(store_txn *t)
{
    t->state = TXN_CLEANING;
    t->stage_start_us = sl_clock_us();
    for (size_t i = 0; i < t->rcpts_n; i++) {
        const rcpt *r = &t->rcpts[i];
        if (r->outcome == STORE_OK && r->new_path != NULL) {
            t->copies[r->copy].names++;
        }
    }
    for (size_t i = 0; i < t->copies_n; i++) {
        copy *c = &t->copies[i];
        if (c->fd < 0) {
            continue;
        }
        if (c->rename_rcpt == SIZE_MAX) {
            c->op2.fn = on_unlink;
            io_uring_prep_unlinkat(sl_ring_sqe(t->s->ring, &c->op2), AT_FDCWD, c->tmp_path, 0);
            t->inflight++;
            submit_close(t, c);
            continue;
        }
        rcpt *r = &t->rcpts[c->rename_rcpt];
        r->op.fn = on_rename;
        io_uring_prep_renameat(sl_ring_sqe(t->s->ring, &r->op), AT_FDCWD, c->tmp_path, AT_FDCWD,
                               r->new_path, 0);
        t->inflight++;
        if (c->names > 1 && t->s->cfg.fsync && !use_barrier(t->s)) {
            /* The rename leaves the link count alone, so this may run beside it. */
            c->op.fn = on_names_sync;
            io_uring_prep_fsync(sl_ring_sqe(t->s->ring, &c->op), c->fd, 0);
            t->inflight++;
        } else {
            submit_close(t, c);
        }
    }
    if (t->inflight == 0) {
        txn_ready(t);
    }
}

static void txn_ready(store_txn *t)
{
    store *s = t->s;
    t->state = TXN_READY;
    t->next = NULL;
    if (s->ready_tail == NULL) {
        s->ready_head = t;
    } else {
        s->ready_tail->next = t;
    }
    s->ready_tail = t;
}

/* ---- group commit of the new/ directories --------------------------- */

static void phase_op_done(commit *cm)
{
    SL_ASSERT(cm->outstanding > 0);
    if (--cm->outstanding == 0) {
        commit_next(cm);
    }
}

static void on_dir(sl_op *op, int res, uint32_t flags)
{
    dir_entry *d = SL_CONTAINER_OF(op, dir_entry, op);
    commit *cm = d->cm;
    if (cm->phase == PH_DIROPEN) {
        if (res < 0) {
            d->err = res;
            sl_error("open %s: %s", d->path, strerror(-res));
        } else {
            d->fd = res;
        }
    } else if (cm->phase == PH_DIRSYNC) {
        if (res < 0) {
            d->err = res;
            sl_error("%s %s: %s", use_barrier(cm->s) ? "syncfs" : "fsync", d->path,
                     strerror(-res));
        }
        if (!use_barrier(cm->s)) {
            sl_stat_add(&cm->s->stats->fsyncs, 1);
        }
        sl_hist_latency_us(&cm->s->stats->fsync_us, sl_clock_us() - cm->phase_start_us);
    }
    phase_op_done(cm);
}

static void dir_index_rebuild(commit *cm, size_t cap)
{
    free(cm->dir_index);
    cm->dir_index_cap = cap;
    cm->dir_index = sl_malloc(cap * sizeof(size_t));
    memset(cm->dir_index, 0xff, cap * sizeof(size_t));
    for (size_t i = 0; i < cm->dirs_n; i++) {
        size_t j = cm->dirs[i].hash & (cap - 1);
        while (cm->dir_index[j] != SIZE_MAX) {
            j = (j + 1) & (cap - 1);
        }
        cm->dir_index[j] = i;
    }
}

/* The commit's entry for the directory holding file (on dev), added if new. */
static size_t dir_for(commit *cm, const char *file, dev_t dev)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%.*s", (int)parent_len(file), file);
    if ((cm->dirs_n + 1) * 2 > cm->dir_index_cap) {
        dir_index_rebuild(cm, cm->dir_index_cap == 0 ? 64 : cm->dir_index_cap * 2);
    }
    uint64_t h = sl_hash_str(path);
    size_t j = h & (cm->dir_index_cap - 1);
    while (cm->dir_index[j] != SIZE_MAX) {
        dir_entry *d = &cm->dirs[cm->dir_index[j]];
        if (d->hash == h && strcmp(d->path, path) == 0) {
            return cm->dir_index[j];
        }
        j = (j + 1) & (cm->dir_index_cap - 1);
    }
    if (cm->dirs_n == cm->dirs_cap) {
        cm->dirs_cap = cm->dirs_cap == 0 ? 64 : cm->dirs_cap * 2;
        cm->dirs = sl_realloc(cm->dirs, cm->dirs_cap * sizeof(*cm->dirs));
    }
    dir_entry *d = &cm->dirs[cm->dirs_n];
    memset(d, 0, sizeof(*d));
    d->path = sl_strdup(path);
    d->hash = h;
    d->dev = dev;
    d->fd = -1;
    d->cm = cm;
    d->op.fn = on_dir;
    cm->dir_index[j] = cm->dirs_n;
    return cm->dirs_n++;
}

/* With syncfs rounds one entry per filesystem is enough: the first new/
 * directory seen there names it. */
static size_t dev_entry(commit *cm, const char *new_path, dev_t dev)
{
    for (size_t i = 0; i < cm->dirs_n; i++) {
        if (cm->dirs[i].dev == dev) {
            return i;
        }
    }
    return dir_for(cm, new_path, dev);
}

static void phase_diropen(commit *cm)
{
    for (store_txn *t = cm->batch; t != NULL; t = t->next) {
        for (size_t i = 0; i < t->rcpts_n; i++) {
            rcpt *r = &t->rcpts[i];
            r->dir = SIZE_MAX;
            if (r->outcome == STORE_OK && use_barrier(cm->s)) {
                r->dir = dev_entry(cm, r->new_path, t->copies[r->copy].dev);
            } else if (r->outcome == STORE_OK && cm->s->cfg.fsync) {
                SL_ASSERT(r->new_path != NULL);
                r->dir = dir_for(cm, r->new_path, t->copies[r->copy].dev);
            }
        }
        for (size_t i = 0; i < t->copies_n; i++) {
            const copy *c = &t->copies[i];
            if (c->renamed && cm->s->cfg.fsync && !use_barrier(cm->s)) {
                (void)dir_for(cm, c->tmp_path, c->dev);
            }
        }
    }
    if (use_barrier(cm->s)) {
        /* One barrier per filesystem touched by the batch. */
        cm->phase = PH_DIRSYNC;
        uint64_t seen = UINT64_MAX;
        for (store_txn *t = cm->batch; t != NULL; t = t->next) {
            seen = SL_MIN(seen, t->errors_seen);
        }
        for (size_t i = 0; i < cm->dirs_n; i++) {
            dir_entry *d = &cm->dirs[i];
            barrier_request(cm->s, &d->op, d->dev, d->path, (ptrdiff_t)strlen(d->path), seen);
            cm->outstanding++;
        }
        return;
    }
    for (size_t i = 0; i < cm->dirs_n; i++) {
        dir_entry *d = &cm->dirs[i];
        io_uring_prep_openat(sl_ring_sqe(cm->s->ring, &d->op), AT_FDCWD, d->path,
                             O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
        cm->outstanding++;
    }
}

static void phase_dirsync(commit *cm)
{
    for (size_t i = 0; i < cm->dirs_n; i++) {
        dir_entry *d = &cm->dirs[i];
        if (d->fd >= 0) {
            /* A full fsync: on ext4 an fdatasync of a directory need not
             * commit an entry added to an existing block. It also commits
             * every earlier journal transaction, the file's creation too. */
            io_uring_prep_fsync(sl_ring_sqe(cm->s->ring, &d->op), d->fd, 0);
            cm->outstanding++;
        }
    }
}

static void phase_dirclose(commit *cm)
{
    for (size_t i = 0; i < cm->dirs_n; i++) {
        dir_entry *d = &cm->dirs[i];
        if (d->fd >= 0) {
            io_uring_prep_close(sl_ring_sqe(cm->s->ring, &d->op), d->fd);
            d->fd = -1;
            cm->outstanding++;
        }
    }
}

/* Report outcomes: a recipient whose new/ directory could not be made
 * durable is told 4xx (the file may still show up: a duplicate is better
 * than a loss). */
static void commit_finish(commit *cm)
{
    store *s = cm->s;
    store_txn *t = cm->batch;
    cm->batch = NULL;
    while (t != NULL) {
        store_txn *next = t->next;
        for (size_t i = 0; i < t->rcpts_n; i++) {
            rcpt *r = &t->rcpts[i];
            if (r->dir != SIZE_MAX && cm->dirs[r->dir].err != 0) {
                r->outcome = outcome_of(cm->dirs[r->dir].err);
            }
            if (r->outcome != STORE_OK) {
                sl_stat_add(&s->stats->store_errors, 1);
            }
        }
        t->state = TXN_DONE;
        t->cm = NULL;
        if (t->abandoned) {
            free_txn(t);
        } else {
            t->fn(t->owner, t, STORE_EV_DONE);
        }
        t = next;
    }
    for (size_t i = 0; i < cm->dirs_n; i++) {
        free(cm->dirs[i].path);
    }
    cm->dirs_n = 0;
    if (cm->dir_index != NULL) {
        memset(cm->dir_index, 0xff, cm->dir_index_cap * sizeof(size_t));
    }
    cm->phase = PH_IDLE;
}

/* Run phases until one has operations in flight. */
static void commit_next(commit *cm)
{
    while (cm->outstanding == 0) {
        cm->phase_start_us = sl_clock_us();
        switch (cm->phase) {
        case PH_IDLE:
            SL_ASSERT(false);
            return;
        case PH_DIROPEN:
            cm->phase = PH_DIRSYNC;
            phase_dirsync(cm);
            break;
        case PH_DIRSYNC:
            cm->phase = PH_DIRCLOSE;
            phase_dirclose(cm);
            break;
        case PH_DIRCLOSE:
            commit_finish(cm);
            store_kick(cm->s);
            return;
        }
    }
}

static void commit_start(commit *cm)
{
    store *s = cm->s;
    SL_ASSERT(cm->phase == PH_IDLE);
    SL_ASSERT(cm->batch == NULL);
    store_txn *tail = NULL;
    size_t n = 0;
    size_t max = s->cfg.batch_max != 0 ? s->cfg.batch_max : BATCH_TXNS_DEFAULT;
    while (s->ready_head != NULL && n < max) {
        store_txn *t = s->ready_head;
        s->ready_head = t->next;
        t->next = NULL;
        t->state = TXN_COMMITTING;
        t->cm = cm;
        if (tail == NULL) {
            cm->batch = t;
        } else {
            tail->next = t;
        }
        tail = t;
        n++;
    }
    if (s->ready_head == NULL) {
        s->ready_tail = NULL;
    }
    sl_stat_add(&s->stats->commit_batches, 1);
    sl_hist_batch(&s->stats->batch_size, n);
    cm->phase = PH_DIROPEN;
    cm->phase_start_us = sl_clock_us();
    phase_diropen(cm);
    commit_next(cm);
}

void store_kick(store *s)
{
    for (size_t i = 0; i < COMMITS_MAX && s->ready_head != NULL; i++) {
        if (s->commits[i].phase == PH_IDLE) {
            commit_start(&s->commits[i]);
        }
    }
}
