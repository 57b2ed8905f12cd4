/* store/maildir.c: see maildir.h. */
#include "store/maildir.h"

#include "core/alloc.h"
#include "core/base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CACHE_MAX 65536

typedef struct entry {
    char *path;
    dev_t dev;
    uint64_t hash;
} entry;

struct maildir_cache {
    entry *slots;
    size_t cap;
    size_t n;
};

maildir_cache *maildir_cache_new(void)
{
    maildir_cache *c = sl_calloc(1, sizeof(*c));
    c->cap = 1024;
    c->slots = sl_calloc(c->cap, sizeof(entry));
    return c;
}

static void clear_slots(maildir_cache *c)
{
    for (size_t i = 0; i < c->cap; i++) {
        free(c->slots[i].path);
        c->slots[i].path = NULL;
    }
    c->n = 0;
}

void maildir_cache_free(maildir_cache **c)
{
    if (*c == NULL) {
        return;
    }
    clear_slots(*c);
    free((*c)->slots);
    sl_free(c);
}

static entry *find(maildir_cache *c, const char *path, uint64_t h)
{
    size_t i = h & (c->cap - 1);
    while (c->slots[i].path != NULL) {
        if (c->slots[i].hash == h && strcmp(c->slots[i].path, path) == 0) {
            return &c->slots[i];
        }
        i = (i + 1) & (c->cap - 1);
    }
    return &c->slots[i];
}

static void grow(maildir_cache *c)
{
    entry *old = c->slots;
    size_t old_cap = c->cap;
    c->cap *= 2;
    c->slots = sl_calloc(c->cap, sizeof(entry));
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].path != NULL) {
            *find(c, old[i].path, old[i].hash) = old[i];
        }
    }
    free(old);
}

static void remember(maildir_cache *c, const char *path, dev_t dev)
{
    if (c->n >= CACHE_MAX) {
        clear_slots(c); /* bounded: start over rather than grow without end */
    }
    if ((c->n + 1) * 2 > c->cap) {
        grow(c);
    }
    uint64_t h = sl_hash_str(path);
    entry *e = find(c, path, h);
    if (e->path == NULL) {
        e->path = sl_strdup(path);
        e->hash = h;
        c->n++;
    }
    e->dev = dev;
}

static int mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
        return -ENAMETOOLONG;
    }
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/') {
            continue;
        }
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
            return -errno;
        }
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
        return -errno;
    }
    return 0;
}

static int make_maildir(const char *path, bool folder)
{
    int rc = mkdir_p(path);
    if (rc != 0) {
        return rc;
    }
    static const char *const subs[] = {"tmp", "cur", "new"};
    char sub[PATH_MAX];
    for (size_t i = 0; i < SL_ARRAY_LEN(subs); i++) {
        if (snprintf(sub, sizeof(sub), "%s/%s", path, subs[i]) >= (int)sizeof(sub)) {
            return -ENAMETOOLONG;
        }
        if (mkdir(sub, 0700) != 0 && errno != EEXIST) {
            return -errno;
        }
    }
    if (folder) {
        snprintf(sub, sizeof(sub), "%s/maildirfolder", path);
        int fd = open(sub, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) {
            close(fd);
        }
    }
    return 0;
}

int maildir_prepare(maildir_cache *c, const char *path, bool folder, dev_t *dev_out)
{
    uint64_t h = sl_hash_str(path);
    entry *e = find(c, path, h);
    if (e->path != NULL) {
        *dev_out = e->dev;
        return 0;
    }
    char newdir[PATH_MAX];
    if (snprintf(newdir, sizeof(newdir), "%s/new", path) >= (int)sizeof(newdir)) {
        return -ENAMETOOLONG;
    }
    struct stat st;
    if (stat(newdir, &st) != 0) {
        int rc = make_maildir(path, folder);
        if (rc != 0) {
            return rc;
        }
        if (stat(newdir, &st) != 0) {
            return -errno;
        }
    } else {
        /* new/ exists; tmp/ may not (some tools create only new/ and cur/). */
        int rc = make_maildir(path, folder);
        if (rc != 0) {
            return rc;
        }
    }
    remember(c, path, st.st_dev);
    *dev_out = st.st_dev;
    return 0;
}

bool maildir_exists(maildir_cache *c, const char *path)
{
    uint64_t h = sl_hash_str(path);
    if (find(c, path, h)->path != NULL) {
        return true;
    }
    char newdir[PATH_MAX];
    if (snprintf(newdir, sizeof(newdir), "%s/new", path) >= (int)sizeof(newdir)) {
        return false;
    }
    struct stat st;
    return stat(newdir, &st) == 0 && S_ISDIR(st.st_mode);
}
