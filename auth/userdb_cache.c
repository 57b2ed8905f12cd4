/* auth/userdb_cache.c: the per-core recipient cache.
 *
 * A chained hash table over a fixed array of entries_max slots. The slots
 * also form a doubly linked list in insertion order, so evicting the oldest
 * entry and refreshing an entry (moved to the young end) are O(1) and a
 * refresh never leaves a hole that would shrink the cache. Each entry owns
 * one malloc'd blob "user\0maildir\0", so an entry costs its strings, not
 * the fixed USERDB_MAILDIR_BYTES_MAX of a userdb_result.
 *
 * A TTL of 0 disables that kind of entry (nothing is stored). */
#include "auth/userdb_cache.h"

#include <stdlib.h>
#include <string.h>

#define USERDB_CACHE_NONE UINT32_MAX

typedef struct userdb_cache_entry {
    char *key;     /* blob: key, NUL, maildir, NUL; NULL when the slot is free */
    char *maildir; /* points into the blob */
    uint64_t hash;
    uint64_t expires_ms;
    uint64_t quota_bytes;
    userdb_status status;
    uint32_t chain; /* next entry in the same bucket */
    uint32_t older; /* age list (or free list via younger) */
    uint32_t younger;
} userdb_cache_entry;

struct userdb_cache {
    userdb_cache_entry *entries;
    uint32_t *buckets;
    size_t buckets_n; /* a power of two */
    size_t entries_max;
    size_t count;
    uint32_t oldest;
    uint32_t youngest;
    uint32_t free_head; /* free slots chained through .younger */
    uint64_t positive_ttl_ms;
    uint64_t negative_ttl_ms;
    bool keep_stale; /* expired entries stay (until evicted) for userdb_cache_get_stale */
};

static void *userdb_cache_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size);
    if (p == NULL) {
        abort();
    }
    return p;
}

/* FNV-1a: keys are short addresses, nothing adversarial gets to pick many
 * colliding keys cheaply without also being told 550 for each. */
static uint64_t userdb_cache_hash(const char *s)
{
    return sl_hash_str(s);
}

static void userdb_cache_reset_lists(userdb_cache *c)
{
    c->count = 0;
    c->oldest = USERDB_CACHE_NONE;
    c->youngest = USERDB_CACHE_NONE;
    c->free_head = c->entries_max > 0 ? 0 : USERDB_CACHE_NONE;
    for (size_t i = 0; i < c->entries_max; i++) {
        c->entries[i].younger = i + 1 < c->entries_max ? (uint32_t)(i + 1) : USERDB_CACHE_NONE;
    }
    for (size_t i = 0; i < c->buckets_n; i++) {
        c->buckets[i] = USERDB_CACHE_NONE;
    }
}

userdb_cache *userdb_cache_new(size_t entries_max, uint64_t positive_ttl_ms,
                               uint64_t negative_ttl_ms)
{
    SL_ASSERT(entries_max < USERDB_CACHE_NONE);
    userdb_cache *c = userdb_cache_xcalloc(1, sizeof(*c));
    c->entries_max = entries_max;
    c->positive_ttl_ms = positive_ttl_ms;
    c->negative_ttl_ms = negative_ttl_ms;
    /* Twice as many buckets as entries keeps chains short. */
    c->buckets_n = 8;
    while (c->buckets_n < entries_max * 2) {
        c->buckets_n *= 2;
    }
    c->entries = userdb_cache_xcalloc(entries_max, sizeof(*c->entries));
    c->buckets = userdb_cache_xcalloc(c->buckets_n, sizeof(*c->buckets));
    userdb_cache_reset_lists(c);
    return c;
}

void userdb_cache_free(userdb_cache **c)
{
    SL_ASSERT(c != NULL);
    if (*c == NULL) {
        return;
    }
    userdb_cache_clear(*c);
    free((*c)->entries);
    free((*c)->buckets);
    free(*c);
    *c = NULL;
}

static uint32_t *userdb_cache_bucket(userdb_cache *c, uint64_t hash)
{
    return &c->buckets[hash & (c->buckets_n - 1)];
}

static uint32_t userdb_cache_find(userdb_cache *c, const char *user, uint64_t hash)
{
    uint32_t i = *userdb_cache_bucket(c, hash);
    while (i != USERDB_CACHE_NONE) {
        userdb_cache_entry *e = &c->entries[i];
        if (e->hash == hash && strcmp(e->key, user) == 0) {
            return i;
        }
        i = e->chain;
    }
    return USERDB_CACHE_NONE;
}

static void userdb_cache_unlink_age(userdb_cache *c, uint32_t i)
{
    userdb_cache_entry *e = &c->entries[i];
    if (e->older != USERDB_CACHE_NONE) {
        c->entries[e->older].younger = e->younger;
    } else {
        c->oldest = e->younger;
    }
    if (e->younger != USERDB_CACHE_NONE) {
        c->entries[e->younger].older = e->older;
    } else {
        c->youngest = e->older;
    }
}

static void userdb_cache_append_age(userdb_cache *c, uint32_t i)
{
    userdb_cache_entry *e = &c->entries[i];
    e->older = c->youngest;
    e->younger = USERDB_CACHE_NONE;
    if (c->youngest != USERDB_CACHE_NONE) {
        c->entries[c->youngest].younger = i;
    } else {
        c->oldest = i;
    }
    c->youngest = i;
}

static void userdb_cache_unlink_bucket(userdb_cache *c, uint32_t i)
{
    uint32_t *link = userdb_cache_bucket(c, c->entries[i].hash);
    while (*link != i) {
        SL_ASSERT(*link != USERDB_CACHE_NONE);
        link = &c->entries[*link].chain;
    }
    *link = c->entries[i].chain;
}

/* Removes entry i from the table and puts its slot on the free list. */
static void userdb_cache_remove(userdb_cache *c, uint32_t i)
{
    userdb_cache_entry *e = &c->entries[i];
    SL_ASSERT(e->key != NULL);
    userdb_cache_unlink_bucket(c, i);
    userdb_cache_unlink_age(c, i);
    free(e->key);
    memset(e, 0, sizeof(*e));
    e->younger = c->free_head;
    c->free_head = i;
    c->count--;
}

static void userdb_cache_copy_out(const userdb_cache_entry *e, userdb_result *out)
{
    out->status = e->status;
    out->quota_bytes = e->quota_bytes;
    size_t n = strlen(e->maildir);
    SL_ASSERT(n < sizeof(out->maildir));
    memcpy(out->maildir, e->maildir, n + 1);
}

bool userdb_cache_get(userdb_cache *c, const char *user, uint64_t now_ms, userdb_result *out)
{
    SL_ASSERT(c != NULL);
    SL_ASSERT(user != NULL);
    uint32_t i = userdb_cache_find(c, user, userdb_cache_hash(user));
    if (i == USERDB_CACHE_NONE) {
        return false;
    }
    userdb_cache_entry *e = &c->entries[i];
    if (now_ms >= e->expires_ms) {
        if (!c->keep_stale) {
            userdb_cache_remove(c, i);
        }
        return false;
    }
    userdb_cache_copy_out(e, out);
    return true;
}

void userdb_cache_set_keep_stale(userdb_cache *c, bool keep)
{
    SL_ASSERT(c != NULL);
    c->keep_stale = keep;
}

bool userdb_cache_get_stale(userdb_cache *c, const char *user, userdb_result *out)
{
    SL_ASSERT(c != NULL);
    SL_ASSERT(user != NULL);
    uint32_t i = userdb_cache_find(c, user, userdb_cache_hash(user));
    if (i == USERDB_CACHE_NONE || c->entries[i].status != USERDB_FOUND) {
        return false;
    }
    const userdb_cache_entry *e = &c->entries[i];
    userdb_cache_copy_out(e, out);
    return true;
}

/* A free slot, evicting the oldest entry when there is none. */
static uint32_t userdb_cache_slot(userdb_cache *c)
{
    if (c->free_head == USERDB_CACHE_NONE) {
        SL_ASSERT(c->oldest != USERDB_CACHE_NONE);
        userdb_cache_remove(c, c->oldest);
    }
    uint32_t i = c->free_head;
    c->free_head = c->entries[i].younger;
    return i;
}

static char *userdb_cache_blob(const char *user, const userdb_result *r, char **maildir_out)
{
    size_t u = strlen(user);
    size_t m = strnlen(r->maildir, sizeof(r->maildir));
    SL_ASSERT(m < sizeof(r->maildir));
    char *blob = malloc(u + 1 + m + 1);
    if (blob == NULL) {
        abort();
    }
    memcpy(blob, user, u + 1);
    memcpy(blob + u + 1, r->maildir, m + 1);
    *maildir_out = blob + u + 1;
    return blob;
}

static uint64_t userdb_cache_ttl(const userdb_cache *c, userdb_status s)
{
    switch (s) {
    case USERDB_FOUND:
    case USERDB_INACTIVE:
        return c->positive_ttl_ms;
    case USERDB_NOTFOUND:
        return c->negative_ttl_ms;
    case USERDB_TEMPFAIL:
        return 0;
    }
    SL_ASSERT(!"unknown userdb_status");
    return 0;
}

void userdb_cache_put(userdb_cache *c, const char *user, const userdb_result *r, uint64_t now_ms)
{
    SL_ASSERT(c != NULL);
    SL_ASSERT(user != NULL);
    uint64_t ttl_ms = userdb_cache_ttl(c, r->status);
    if (ttl_ms == 0 || c->entries_max == 0) {
        return;
    }
    uint64_t hash = userdb_cache_hash(user);
    uint32_t old = userdb_cache_find(c, user, hash);
    if (old != USERDB_CACHE_NONE) {
        userdb_cache_remove(c, old);
    }
    uint32_t i = userdb_cache_slot(c);
    userdb_cache_entry *e = &c->entries[i];
    e->key = userdb_cache_blob(user, r, &e->maildir);
    e->hash = hash;
    e->expires_ms = now_ms > UINT64_MAX - ttl_ms ? UINT64_MAX : now_ms + ttl_ms;
    e->quota_bytes = r->quota_bytes;
    e->status = r->status;
    uint32_t *bucket = userdb_cache_bucket(c, hash);
    e->chain = *bucket;
    *bucket = i;
    userdb_cache_append_age(c, i);
    c->count++;
}

void userdb_cache_clear(userdb_cache *c)
{
    SL_ASSERT(c != NULL);
    for (size_t i = 0; i < c->entries_max; i++) {
        free(c->entries[i].key);
        memset(&c->entries[i], 0, sizeof(c->entries[i]));
    }
    userdb_cache_reset_lists(c);
}

size_t userdb_cache_count(const userdb_cache *c)
{
    SL_ASSERT(c != NULL);
    return c->count;
}
