/* store/maildir_clean.c: stale tmp/ cleanup (see maildir_clean.h).
 *
 * Every step is relative to an open directory fd (openat, fstatat, unlinkat)
 * and never follows a symlink below root, so a user who can rename or plant
 * links inside a mail tree cannot steer the unlinks outside it. */
#include "store/maildir_clean.h"

#include "core/base/base.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct maildir_clean_walk {
    int64_t cutoff_sec; /* files last modified before this are stale */
    long removed;
} maildir_clean_walk;

static int maildir_clean_open_dir(int dir_fd, const char *name)
{
    return openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

static bool maildir_clean_is_dir(int dir_fd, const char *name)
{
    struct stat st;
    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return false;
    }
    return S_ISDIR(st.st_mode);
}

/* A "tmp" alone is not a maildir's: only clean it beside "new" and "cur". */
static bool maildir_clean_is_maildir(int dir_fd)
{
    return maildir_clean_is_dir(dir_fd, "new") && maildir_clean_is_dir(dir_fd, "cur");
}

static bool maildir_clean_is_dot(const char *name)
{
    return strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
}

/* Unlinking by name after the stat is safe: maildir names are never reused,
 * so the name cannot meanwhile point at a fresh delivery. */
static void maildir_clean_tmp_entry(maildir_clean_walk *w, int tmp_fd, const char *name)
{
    struct stat st;
    if (fstatat(tmp_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        return;
    }
    if (st.st_mtim.tv_sec >= w->cutoff_sec) {
        return;
    }
    if (unlinkat(tmp_fd, name, 0) == 0) {
        w->removed++;
    }
}

/* Cleans maildir_fd/tmp. Subdirectories of tmp/ are not entered: deliveries
 * only ever create files there. */
static void maildir_clean_tmp_dir(maildir_clean_walk *w, int maildir_fd)
{
    int tmp_fd = maildir_clean_open_dir(maildir_fd, "tmp");
    if (tmp_fd < 0) {
        return;
    }
    DIR *d = fdopendir(tmp_fd);
    if (d == NULL) {
        close(tmp_fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        maildir_clean_tmp_entry(w, tmp_fd, e->d_name);
    }
    closedir(d);
}

static void maildir_clean_walk_dir(maildir_clean_walk *w, int dir_fd, unsigned depth);

/* One entry of a directory at depth. Its children are at depth + 1: a maildir
 * tmp/ there is cleaned while depth + 1 <= MAILDIR_CLEAN_DEPTH_MAX, other
 * directories are entered only if they could still hold such a tmp/. */
static void maildir_clean_walk_entry(maildir_clean_walk *w, int dir_fd, const struct dirent *e,
                                     unsigned depth, bool maildir)
{
    if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) {
        return;
    }
    if (maildir_clean_is_dot(e->d_name)) {
        return;
    }
    if (maildir && strcmp(e->d_name, "tmp") == 0) {
        maildir_clean_tmp_dir(w, dir_fd);
        return;
    }
    /* A maildir's new/ and cur/ hold only messages, often very many. */
    if (maildir && (strcmp(e->d_name, "new") == 0 || strcmp(e->d_name, "cur") == 0)) {
        return;
    }
    if (depth + 1 >= MAILDIR_CLEAN_DEPTH_MAX) {
        return;
    }
    int child_fd = maildir_clean_open_dir(dir_fd, e->d_name);
    if (child_fd < 0) {
        return;
    }
    maildir_clean_walk_dir(w, child_fd, depth + 1);
}

/* Takes ownership of dir_fd. Recursion depth is bounded by
 * MAILDIR_CLEAN_DEPTH_MAX, and so are the fds held open at once. */
static void maildir_clean_walk_dir(maildir_clean_walk *w, int dir_fd, unsigned depth)
{
    SL_ASSERT(depth < MAILDIR_CLEAN_DEPTH_MAX);
    DIR *d = fdopendir(dir_fd);
    if (d == NULL) {
        close(dir_fd);
        return;
    }
    bool maildir = maildir_clean_is_maildir(dir_fd);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        maildir_clean_walk_entry(w, dir_fd, e, depth, maildir);
    }
    closedir(d);
}

long maildir_clean_tmp(const char *root, int64_t max_age_sec, int64_t now_sec)
{
    SL_ASSERT(root != NULL);
    SL_ASSERT(max_age_sec >= 0);
    SL_ASSERT(now_sec >= 0);

    /* root itself may be a symlink (an operator's choice); nothing below it. */
    int root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
        return -errno;
    }
    maildir_clean_walk w = {.cutoff_sec = now_sec - max_age_sec, .removed = 0};
    maildir_clean_walk_dir(&w, root_fd, 0);
    return w.removed;
}
