/* tests/unit/store/test_commit.c: store transactions on a real io_uring and
 * real filesystems: one file per filesystem, hard links per recipient, the
 * group commit, exact bytes, a full disk (a small tmpfs) answered as
 * STORE_NOSPACE with nothing in new/, and an abandoned transaction leaving
 * nothing behind; the same with durability by syncfs rounds (fs_barrier),
 * and the barrier's own answers and error rule. Needs root for the tmpfs
 * mount (CI runs as root). */
#include "core/base/base.h"
#include "core/bufring.h"
#include "core/ring.h"
#include "store/fsbarrier.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct fixture {
    char root[64];
    sl_ring ring;
    sl_bufring bufs;
    store *st;
    fs_barrier *barrier; /* sync_method = syncfs, else NULL */
    sl_stats_core stats;
    int done;
    int progress;
} fixture;

static void on_event(void *owner, store_txn *t, store_event ev)
{
    fixture *f = owner;
    if (ev == STORE_EV_DONE) {
        f->done++;
    } else {
        f->progress++;
    }
}

static int setup_with(void **state, bool syncfs)
{
    fixture *f = calloc(1, sizeof(*f));
    if (syncfs) {
        char err[256];
        f->barrier = fs_barrier_new(2, err, sizeof(err));
        assert_non_null(f->barrier);
    }
    snprintf(f->root, sizeof(f->root), "/tmp/sluice-commit-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    assert_int_equal(sl_ring_init(&f->ring, 256), 0);
    assert_int_equal(sl_bufring_init(&f->bufs, &f->ring, 1, 16, 65536), 0);
    store_config cfg = {.fsync = true, .crlf = false, .hostname = "test.host", .core_id = 0,
                        .cores_n = 1, .stats = &f->stats, .barrier = f->barrier};
    f->st = store_new(&f->ring, &f->bufs, &cfg);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, false);
}

static int setup_syncfs(void **state)
{
    return setup_with(state, true);
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_free(&f->st);
    fs_barrier_free(&f->barrier);
    sl_bufring_deinit(&f->bufs);
    sl_ring_deinit(&f->ring);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "umount %s/full 2>/dev/null; rm -rf %s", f->root, f->root);
    int rc = system(cmd);
    (void)rc;
    free(f);
    return 0;
}

static void run_until_done(fixture *f, int want_done)
{
    for (int i = 0; i < 1000 && f->done < want_done; i++) {
        store_kick(f->st);
        assert_true(sl_ring_run_once(&f->ring, 1000) >= 0);
        store_kick(f->st);
    }
    assert_int_equal(f->done, want_done);
}

static size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return 0;
    }
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    return n;
}

/* The single file in dir/new; returns its path in out. */
static void only_file(const char *maildir, char *out, size_t out_len)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/new", maildir);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] != '.') {
            snprintf(out, out_len, "%s/%s", dir, e->d_name);
            n++;
        }
    }
    closedir(d);
    if (n != 1) {
        fail_msg("%s: got %d files, want 1", dir, n);
    }
}

static void read_all(const char *path, char *out, size_t out_len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, out, out_len - 1);
    assert_true(n >= 0);
    out[n] = '\0';
    close(fd);
}

/* Feed "line1\r\nline2" style content from receive buffer 0 as the session
 * does: one span per line, line endings as eol. */
static void feed(fixture *f, store_txn *t, const char *const *lines, size_t n)
{
    uint8_t *buf = sl_bufring_take(&f->bufs, 0);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(lines[i]);
        memcpy(buf + off, lines[i], len);
        store_txn_append(t, buf + off, len, 0);
        store_txn_eol(t);
        off += len + 2;
    }
    sl_bufring_unpin(&f->bufs, 0); /* the "connection" lets go; the store keeps its pin */
}

static void test_multi_rcpt_links(void **state)
{
    fixture *f = *state;
    char a[PATH_MAX], b[PATH_MAX], shm[PATH_MAX];
    snprintf(a, sizeof(a), "%s/example.test/alice", f->root);
    snprintf(b, sizeof(b), "%s/example.test/bob", f->root);
    snprintf(shm, sizeof(shm), "/dev/shm/sluice-test-%d/carol", (int)getpid());
    store_txn *t = store_txn_new(f->st, f, on_event);
    store_outcome o;
    assert_int_equal(store_txn_add_rcpt(t, a, false, &o), 0);
    assert_int_equal(store_txn_add_rcpt(t, b, false, &o), 1);
    assert_int_equal(store_txn_add_rcpt(t, shm, false, &o), 2);
    const char hdr[] = "Return-Path: <s@x>\n";
    store_txn_begin(t, (const uint8_t *)hdr, sizeof(hdr) - 1);
    static const char *const lines[] = {"Subject: hi", "", "body line", ".leading dot kept"};
    feed(f, t, lines, 4);
    const char want[] = "Return-Path: <s@x>\nSubject: hi\n\nbody line\n.leading dot kept\n";
    store_txn_finish(t, strlen(want), strlen(want) + 5);
    run_until_done(f, 1);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(store_txn_outcome(t, i), STORE_OK);
    }
    char pa[PATH_MAX], pb[PATH_MAX], pc[PATH_MAX], got[512];
    only_file(a, pa, sizeof(pa));
    only_file(b, pb, sizeof(pb));
    only_file(shm, pc, sizeof(pc));
    read_all(pa, got, sizeof(got));
    assert_string_equal(got, want);
    read_all(pc, got, sizeof(got));
    assert_string_equal(got, want);
    char suffix[64];
    snprintf(suffix, sizeof(suffix), ",S=%zu,W=%zu", strlen(want), strlen(want) + 5);
    assert_non_null(strstr(pa, suffix));
    struct stat sa, sb, sc;
    assert_int_equal(stat(pa, &sa), 0);
    assert_int_equal(stat(pb, &sb), 0);
    assert_int_equal(stat(pc, &sc), 0);
    assert_int_equal(sa.st_ino, sb.st_ino); /* same filesystem: one inode, hard links */
    assert_int_equal(sa.st_nlink, 2);
    assert_int_equal(sc.st_nlink, 1); /* other filesystem: its own copy */
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s/tmp", a);
    assert_int_equal(count_files(tmp), 0);
    snprintf(tmp, sizeof(tmp), "%s/tmp", shm);
    assert_int_equal(count_files(tmp), 0);
    assert_int_equal(f->bufs.refs[0], 0); /* the buffer went back to the ring */
    if (f->barrier == NULL) {
        /* 2 files, the one with two names again (its link count), 3 new/ and
         * 2 tmp/ directories (the renames took names out of them) */
        assert_int_equal(f->stats.fsyncs, 8);
        assert_int_equal(f->stats.fsync_us.count, 8);
    } else {
        /* No fsync at all: 2 barrier waits for the files' data (one per
         * filesystem), then 2 for the names (one per filesystem again). */
        assert_int_equal(f->stats.fsyncs, 0);
        assert_int_equal(f->stats.fsync_us.count, 4);
        fs_barrier_stats bs;
        fs_barrier_get_stats(f->barrier, &bs);
        assert_int_equal(bs.requests, 4);
        assert_true(bs.rounds >= 2 && bs.rounds <= 4); /* data before names: 2 rounds at least */
        assert_int_equal(bs.errors, 0);
    }
    assert_int_equal(f->stats.commit_batches, 1);
    store_txn_free(&t);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf /dev/shm/sluice-test-%d", (int)getpid());
    assert_int_equal(system(cmd), 0);
}

static void test_full_disk(void **state)
{
    fixture *f = *state;
    char full[PATH_MAX];
    snprintf(full, sizeof(full), "%s/full", f->root);
    assert_int_equal(mkdir(full, 0700), 0);
    if (mount("tmpfs", full, "tmpfs", 0, "size=64k") != 0) {
        fail_msg("mount tmpfs on %s: %s (the test needs root)", full, strerror(errno));
    }
    char md[PATH_MAX];
    snprintf(md, sizeof(md), "%s/user", full);
    store_txn *t = store_txn_new(f->st, f, on_event);
    store_outcome o;
    assert_int_equal(store_txn_add_rcpt(t, md, false, &o), 0);
    store_txn_begin(t, (const uint8_t *)"", 0);
    uint8_t *buf = sl_bufring_take(&f->bufs, 1);
    memset(buf, 'x', 65536);
    for (int i = 0; i < 4; i++) {
        store_txn_append(t, buf, 65536, 1); /* 256 KiB into a 64 KiB filesystem */
        store_txn_append(t, buf, 1, 1);
        for (int k = 0; k < 50 && store_txn_congested(t); k++) {
            sl_ring_run_once(&f->ring, 100);
        }
    }
    sl_bufring_unpin(&f->bufs, 1);
    store_txn_finish(t, 4 * 65537, 4 * 65537);
    run_until_done(f, 1);
    assert_int_equal(store_txn_outcome(t, 0), STORE_NOSPACE);
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/new", md);
    assert_int_equal(count_files(dir), 0); /* nothing partial is ever visible */
    snprintf(dir, sizeof(dir), "%s/tmp", md);
    assert_int_equal(count_files(dir), 0);
    assert_int_equal(f->bufs.refs[1], 0);
    store_txn_free(&t);
}

static void test_abandon(void **state)
{
    fixture *f = *state;
    char md[PATH_MAX];
    snprintf(md, sizeof(md), "%s/dave", f->root);
    store_txn *t = store_txn_new(f->st, f, on_event);
    store_outcome o;
    assert_int_equal(store_txn_add_rcpt(t, md, false, &o), 0);
    store_txn_begin(t, (const uint8_t *)"H: 1\n", 5);
    static const char *const lines[] = {"partial"};
    feed(f, t, lines, 1);
    store_txn_abandon(&t);
    assert_null(t);
    for (int i = 0; i < 20 && store_txns_alive(f->st) > 0; i++) {
        sl_ring_run_once(&f->ring, 100);
    }
    assert_int_equal(store_txns_alive(f->st), 0);
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/tmp", md);
    assert_int_equal(count_files(dir), 0);
    snprintf(dir, sizeof(dir), "%s/new", md);
    assert_int_equal(count_files(dir), 0);
    assert_int_equal(f->bufs.refs[0], 0);
    assert_int_equal(f->done, 0);
}

static void test_bad_maildir(void **state)
{
    fixture *f = *state;
    char md[PATH_MAX];
    snprintf(md, sizeof(md), "%s/file", f->root);
    int fd = open(md, O_CREAT | O_WRONLY, 0600); /* a file where a directory should be */
    assert_true(fd >= 0);
    close(fd);
    char sub[PATH_MAX];
    snprintf(sub, sizeof(sub), "%s/user", md);
    store_txn *t = store_txn_new(f->st, f, on_event);
    store_outcome o = STORE_OK;
    assert_int_equal(store_txn_add_rcpt(t, sub, false, &o), -1);
    assert_int_equal(o, STORE_TEMPFAIL);
    assert_int_equal(store_txn_rcpt_count(t), 0);
    store_txn_abandon(&t);
    assert_int_equal(store_txns_alive(f->st), 0);
}

/* The barrier thread answered on a ring of its own. */
typedef struct answer {
    sl_op op;
    int res;
    int n;
} answer;

static void on_answer(sl_op *op, int res, uint32_t flags)
{
    answer *a = SL_CONTAINER_OF(op, answer, op);
    a->res = res;
    a->n++;
}

static void wait_answers(sl_ring *ring, answer *a, size_t n)
{
    for (int i = 0; i < 200; i++) {
        size_t done = 0;
        for (size_t k = 0; k < n; k++) {
            done += a[k].n > 0;
        }
        if (done == n) {
            return;
        }
        assert_true(sl_ring_run_once(ring, 100) >= 0);
    }
    fail_msg("barrier answers missing");
}

/* Good answers, a directory that cannot be opened (-EIO, the round fails),
 * and a request whose error count is behind the barrier's (-EIO: an error
 * reached an earlier round while its files were open). */
static void test_barrier_answers(void **state)
{
    fixture *f = *state;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/d", f->root);
    assert_int_equal(mkdir(dir, 0700), 0);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    answer a[8];
    memset(a, 0, sizeof(a));
    for (size_t i = 0; i < 6; i++) {
        a[i].op.fn = on_answer;
        a[i].res = 1;
        fs_barrier_request(f->barrier, f->ring.ring.ring_fd, &a[i].op, st.st_dev, dir,
                           strlen(dir), fs_barrier_errors(f->barrier));
    }
    wait_answers(&f->ring, a, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(a[i].n, 1);
        assert_int_equal(a[i].res, 0);
    }
    assert_int_equal(fs_barrier_errors(f->barrier), 0);

    /* A device number of its own whose directory does not exist yet. */
    char missing[PATH_MAX];
    snprintf(missing, sizeof(missing), "%s/later", f->root);
    a[6].op.fn = on_answer;
    fs_barrier_request(f->barrier, f->ring.ring.ring_fd, &a[6].op, st.st_dev + 12345, missing,
                       strlen(missing), 0);
    wait_answers(&f->ring, &a[6], 1);
    assert_int_equal(a[6].res, -EIO);
    assert_int_equal(fs_barrier_errors(f->barrier), 1);

    /* The filesystem is fine, but the caller opened its files before that
     * error was reported. */
    a[7].op.fn = on_answer;
    fs_barrier_request(f->barrier, f->ring.ring.ring_fd, &a[7].op, st.st_dev, dir, strlen(dir),
                       0);
    wait_answers(&f->ring, &a[7], 1);
    assert_int_equal(a[7].res, -EIO);

    /* Once the directory exists, the next request opens it and succeeds. */
    assert_int_equal(mkdir(missing, 0700), 0);
    memset(&a[6], 0, sizeof(a[6]));
    a[6].op.fn = on_answer;
    fs_barrier_request(f->barrier, f->ring.ring.ring_fd, &a[6].op, st.st_dev + 12345, missing,
                       strlen(missing), fs_barrier_errors(f->barrier));
    wait_answers(&f->ring, &a[6], 1);
    assert_int_equal(a[6].res, 0);
    fs_barrier_stats bs;
    fs_barrier_get_stats(f->barrier, &bs);
    assert_int_equal(bs.requests, 9);
    assert_int_equal(bs.errors, 1);
    assert_true(bs.rounds >= 4 && bs.rounds <= 9);
}

static void test_multi_rcpt_links_syncfs(void **state)
{
    test_multi_rcpt_links(state);
}

static void test_full_disk_syncfs(void **state)
{
    test_full_disk(state);
}

static void test_abandon_syncfs(void **state)
{
    test_abandon(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_multi_rcpt_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abandon, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_maildir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multi_rcpt_links_syncfs, setup_syncfs, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_syncfs, setup_syncfs, teardown),
        cmocka_unit_test_setup_teardown(test_abandon_syncfs, setup_syncfs, teardown),
        cmocka_unit_test_setup_teardown(test_barrier_answers, setup_syncfs, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
