/* tests/unit/store/test_maildir_clean.c: tests of store/maildir_clean.c.
 *
 * Each test builds a small tree under a fresh temp dir from a table (dirs,
 * files aged with utimensat, symlinks), runs the cleaner and checks, node by
 * node, what must be gone and what must stay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/base/base.h"
#include "store/maildir_clean.h"

#define MAX_AGE_SEC (36 * 3600)
#define OLD_SEC (40 * 3600)
#define FRESH_SEC 3600
#define PATH_LEN_MAX 512

typedef enum node_kind {
    NODE_DIR,
    NODE_FILE,
    NODE_LINK,
} node_kind;

typedef struct node {
    const char *path;   /* relative to the test's base dir; parents listed first */
    node_kind kind;
    int64_t age_sec;    /* mtime = now - age_sec (files and links) */
    const char *target; /* NODE_LINK only */
    bool want_gone;     /* removed by the cleaner */
} node;

#define DIR_(p) {p, NODE_DIR, 0, NULL, false}
#define KEEP(p, age) {p, NODE_FILE, age, NULL, false}
#define GONE(p, age) {p, NODE_FILE, age, NULL, true}
#define LINK(p, t) {p, NODE_LINK, OLD_SEC, t, false}
#define MAILDIR(p) DIR_(p), DIR_(p "/new"), DIR_(p "/cur"), DIR_(p "/tmp")

static const node tree[] = {
    DIR_("root"),
    /* An ordinary maildir. */
    DIR_("root/u1"),
    MAILDIR("root/u1/Maildir"),
    GONE("root/u1/Maildir/tmp/1.M1P1Q0.h", OLD_SEC),
    GONE("root/u1/Maildir/tmp/1.M1P1Q1.h", OLD_SEC),
    KEEP("root/u1/Maildir/tmp/fresh", FRESH_SEC),
    /* The cutoff is strict: exactly max_age is not yet stale. */
    KEEP("root/u1/Maildir/tmp/edge", MAX_AGE_SEC),
    GONE("root/u1/Maildir/tmp/past-edge", MAX_AGE_SEC + 1),
    /* Only regular files directly in tmp/. */
    LINK("root/u1/Maildir/tmp/oldlink", "../new/msg"),
    DIR_("root/u1/Maildir/tmp/sub"),
    KEEP("root/u1/Maildir/tmp/sub/old", OLD_SEC),
    /* Delivered mail is never touched, however old. */
    KEEP("root/u1/Maildir/new/msg", OLD_SEC),
    KEEP("root/u1/Maildir/cur/msg:2,S", OLD_SEC),
    /* A Maildir++ folder. */
    MAILDIR("root/u1/Maildir/.Sent"),
    GONE("root/u1/Maildir/.Sent/tmp/old", OLD_SEC),
    /* Not maildirs: a lone tmp/, one without cur/, one whose new/ is a link. */
    DIR_("root/plain"),
    DIR_("root/plain/tmp"),
    KEEP("root/plain/tmp/old", OLD_SEC),
    DIR_("root/half"),
    DIR_("root/half/new"),
    DIR_("root/half/tmp"),
    KEEP("root/half/tmp/old", OLD_SEC),
    DIR_("root/fake"),
    DIR_("root/fake/cur"),
    DIR_("root/fake/tmp"),
    LINK("root/fake/new", "../u1/Maildir/new"),
    KEEP("root/fake/tmp/old", OLD_SEC),
    /* root itself a maildir (depth 1). */
    DIR_("root/new"),
    DIR_("root/cur"),
    DIR_("root/tmp"),
    GONE("root/tmp/old", OLD_SEC),
    /* A symlink below root is not followed, even to a maildir. */
    DIR_("outside"),
    MAILDIR("outside/Maildir"),
    KEEP("outside/Maildir/tmp/old", OLD_SEC),
    LINK("root/link", "../outside"),
    LINK("root/maildirlink", "../outside/Maildir"),
    /* Depth: a tmp/ 6 levels below root is cleaned, 7 levels is not. */
    DIR_("root/d1"),
    DIR_("root/d1/d2"),
    DIR_("root/d1/d2/d3"),
    DIR_("root/d1/d2/d3/d4"),
    MAILDIR("root/d1/d2/d3/d4/d5"),
    GONE("root/d1/d2/d3/d4/d5/tmp/old", OLD_SEC),
    MAILDIR("root/d1/d2/d3/d4/d5/d6"),
    KEEP("root/d1/d2/d3/d4/d5/d6/tmp/old", OLD_SEC),
};

static void join(char *out, const char *base, const char *rel)
{
    int n = snprintf(out, PATH_LEN_MAX, "%s/%s", base, rel);
    assert_true(n > 0 && n < PATH_LEN_MAX);
}

static void age_node(const char *path, int64_t now, int64_t age_sec)
{
    struct timespec ts[2] = {{.tv_sec = (time_t)(now - age_sec)},
                             {.tv_sec = (time_t)(now - age_sec)}};
    if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) != 0) {
        fail_msg("utimensat %s: %s", path, strerror(errno));
    }
}

static void make_node(const char *base, const node *nd, int64_t now)
{
    char path[PATH_LEN_MAX];
    join(path, base, nd->path);
    if (nd->kind == NODE_DIR) {
        assert_int_equal(mkdir(path, 0700), 0);
        return;
    }
    if (nd->kind == NODE_FILE) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "x\n", 2), 2);
        close(fd);
    } else {
        assert_int_equal(symlink(nd->target, path), 0);
    }
    age_node(path, now, nd->age_sec);
}

static void make_tree(const char *base, const node *nodes, size_t count, int64_t now)
{
    for (size_t i = 0; i < count; i++) {
        make_node(base, &nodes[i], now);
    }
}

static void check_tree(const char *base, const node *nodes, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        char path[PATH_LEN_MAX];
        join(path, base, nodes[i].path);
        struct stat st;
        bool gone = lstat(path, &st) != 0;
        if (gone != nodes[i].want_gone) {
            fail_msg("%s: got %s, want %s", nodes[i].path, gone ? "gone" : "present",
                     nodes[i].want_gone ? "gone" : "present");
        }
    }
}

static long count_gone(const node *nodes, size_t count)
{
    long n = 0;
    for (size_t i = 0; i < count; i++) {
        n += nodes[i].want_gone;
    }
    return n;
}

/* Open fds of this process, to catch a directory fd the walk forgot. */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d) != NULL) {
        n++;
    }
    closedir(d);
    return n;
}

/* ---- fixture: a temp base dir, removed afterwards ---- */

static int remove_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    char tmpl[] = "/tmp/sluice-test-clean-XXXXXX";
    char *base = mkdtemp(tmpl);
    if (base == NULL) {
        return -1;
    }
    *state = strdup(base);
    return *state == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    int rc = nftw(*state, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(*state);
    return rc;
}

/* ---- tests ---- */

static void test_tree(void **state)
{
    const char *base = *state;
    int64_t now = (int64_t)time(NULL);
    make_tree(base, tree, SL_ARRAY_LEN(tree), now);

    char root[PATH_LEN_MAX];
    join(root, base, "root");
    int fds_before = count_fds();
    long got = maildir_clean_tmp(root, MAX_AGE_SEC, now);
    assert_int_equal(count_fds(), fds_before);
    long want = count_gone(tree, SL_ARRAY_LEN(tree));
    if (got != want) {
        fail_msg("removed: got %ld, want %ld", got, want);
    }
    check_tree(base, tree, SL_ARRAY_LEN(tree));

    /* A second pass finds nothing left to do. */
    got = maildir_clean_tmp(root, MAX_AGE_SEC, now);
    if (got != 0) {
        fail_msg("second pass removed: got %ld, want 0", got);
    }
}

/* root itself may be a symlink (an operator's choice of mail root). */
static const node root_link_tree[] = {
    MAILDIR("real"),
    GONE("real/tmp/old", OLD_SEC),
    KEEP("real/tmp/fresh", FRESH_SEC),
    LINK("root", "real"),
};

static void test_root_symlink_followed(void **state)
{
    const char *base = *state;
    int64_t now = (int64_t)time(NULL);
    make_tree(base, root_link_tree, SL_ARRAY_LEN(root_link_tree), now);

    char root[PATH_LEN_MAX];
    join(root, base, "root");
    long got = maildir_clean_tmp(root, MAX_AGE_SEC, now);
    assert_int_equal(got, 1);
    check_tree(base, root_link_tree, SL_ARRAY_LEN(root_link_tree));
}

typedef struct root_error_case {
    const char *rel;
    long want;
} root_error_case;

static const node root_error_tree[] = {
    KEEP("file", OLD_SEC),
};

static void test_root_errors(void **state)
{
    const char *base = *state;
    make_tree(base, root_error_tree, SL_ARRAY_LEN(root_error_tree), (int64_t)time(NULL));
    static const root_error_case cases[] = {
        {"missing", -ENOENT},
        {"file", -ENOTDIR},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        char root[PATH_LEN_MAX];
        join(root, base, cases[i].rel);
        long got = maildir_clean_tmp(root, MAX_AGE_SEC, (int64_t)time(NULL));
        if (got != cases[i].want) {
            fail_msg("root %s: got %ld, want %ld", cases[i].rel, got, cases[i].want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_symlink_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
