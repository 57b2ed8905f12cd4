/* auth/passdb_cache.c: see passdb_cache.h.
 *
 * A chained hash table over a fixed array of entries_max slots; the slots
 * in use also form a list in storing order, so evicting the oldest and
 * refreshing an entry are O(1). Each entry owns one malloc'd blob
 * "user\0password\0", so an entry costs its strings only. */
#include "auth/passdb_cache.h"

#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>

#define PASSDB_CACHE_NONE UINT32_MAX

typedef struct passdb_cache_entry {
    char *key;      /* blob: user, NUL, password, NUL; NULL when the slot is free */
    char *password; /* points into the blob */
    size_t blob_len;
    uint64_t hash;
    uint64_t expires_ms;
    userdb_status status;
    uint32_t chain;
    uint32_t older;
    uint32_t younger; /* also the free list */
} passdb_cache_entry;

struct passdb_cache {
    passdb_cache_entry *entries;
    uint32_t *buckets;
    size_t buckets_n;
    size_t entries_max;
    size_t count;
    uint32_t oldest;
    uint32_t youngest;
    uint32_t free_head;
    uint64_t ttl_ms;
    uint64_t negative_ttl_ms;
};

static void passdb_cache_reset(passdb_cache *c)
{
    c->count = 0;
    c->oldest = PASSDB_CACHE_NONE;
    c->youngest = PASSDB_CACHE_NONE;
    c->free_head = c->entries_max > 0 ? 0 : PASSDB_CACHE_NONE;
    for (size_t i = 0; i < c->entries_max; i++) {
        c->entries[i].younger = i + 1 < c->entries_max ? (uint32_t)(i + 1) : PASSDB_CACHE_NONE;
    }
    for (size_t i = 0; i < c->buckets_n; i++) {
        c->buckets[i] = PASSDB_CACHE_NONE;
    }
}

passdb_cache *passdb_cache_new(size_t entries_max, uint64_t ttl_ms, uint64_t negative_ttl_ms)
{
    SL_ASSERT(entries_max < PASSDB_CACHE_NONE);
    passdb_cache *c = sl_calloc(1, sizeof(*c));
    c->entries_max = entries_max;
    c->ttl_ms = ttl_ms;
    c->negative_ttl_ms = negative_ttl_ms;
    c->entries = sl_calloc(entries_max > 0 ? entries_max : 1, sizeof(*c->entries));
    c->buckets_n = 16;
    while (c->buckets_n < entries_max) {
        c->buckets_n *= 2;
    }
    c->buckets = sl_calloc(c->buckets_n, sizeof(*c->buckets));
    passdb_cache_reset(c);
    return c;
}

static void passdb_cache_drop_blob(passdb_cache_entry *e)
{
    if (e->key != NULL) {
        explicit_bzero(e->key, e->blob_len);
        free(e->key);
    }
    e->key = NULL;
    e->password = NULL;
    e->blob_len = 0;
}

void passdb_cache_clear(passdb_cache *c)
{
    for (size_t i = 0; i < c->entries_max; i++) {
        passdb_cache_drop_blob(&c->entries[i]);
    }
    passdb_cache_reset(c);
}

void passdb_cache_free(passdb_cache **cp)
{
    passdb_cache *c = *cp;
    if (c == NULL) {
        return;
    }
    passdb_cache_clear(c);
    free(c->entries);
    free(c->buckets);
    sl_free(cp);
}

size_t passdb_cache_count(const passdb_cache *c)
{
    return c->count;
}

static uint32_t passdb_cache_find(const passdb_cache *c, const char *user, uint64_t h)
{
    for (uint32_t i = c->buckets[h & (c->buckets_n - 1)]; i != PASSDB_CACHE_NONE;
         i = c->entries[i].chain) {
        if (c->entries[i].hash == h && strcmp(c->entries[i].key, user) == 0) {
            return i;
        }
    }
    return PASSDB_CACHE_NONE;
}

static void passdb_cache_unlink_age(passdb_cache *c, uint32_t i)
{
    passdb_cache_entry *e = &c->entries[i];
    if (e->older != PASSDB_CACHE_NONE) {
        c->entries[e->older].younger = e->younger;
    } else {
        c->oldest = e->younger;
    }
    if (e->younger != PASSDB_CACHE_NONE) {
        c->entries[e->younger].older = e->older;
    } else {
        c->youngest = e->older;
    }
}

static void passdb_cache_link_young(passdb_cache *c, uint32_t i)
{
    passdb_cache_entry *e = &c->entries[i];
    e->older = c->youngest;
    e->younger = PASSDB_CACHE_NONE;
    if (c->youngest != PASSDB_CACHE_NONE) {
        c->entries[c->youngest].younger = i;
    } else {
        c->oldest = i;
    }
    c->youngest = i;
}

static void passdb_cache_remove_at(passdb_cache *c, uint32_t i)
{
    passdb_cache_entry *e = &c->entries[i];
    uint32_t *pp = &c->buckets[e->hash & (c->buckets_n - 1)];
    while (*pp != i) {
        SL_ASSERT(*pp != PASSDB_CACHE_NONE);
        pp = &c->entries[*pp].chain;
    }
    *pp = e->chain;
    passdb_cache_unlink_age(c, i);
    passdb_cache_drop_blob(e);
    e->younger = c->free_head;
    c->free_head = i;
    c->count--;
}

passdb_cache_rc passdb_cache_get(passdb_cache *c, const char *user, uint64_t now_ms,
                                 passdb_result *out)
{
    if (c->entries_max == 0) {
        return PASSDB_CACHE_MISS;
    }
    uint32_t i = passdb_cache_find(c, user, sl_hash_str(user));
    if (i == PASSDB_CACHE_NONE) {
        return PASSDB_CACHE_MISS;
    }
    const passdb_cache_entry *e = &c->entries[i];
    out->status = e->status;
    size_t n = strlen(e->password);
    SL_ASSERT(n < sizeof(out->password));
    memcpy(out->password, e->password, n + 1);
    return now_ms < e->expires_ms ? PASSDB_CACHE_HIT : PASSDB_CACHE_STALE;
}

void passdb_cache_put(passdb_cache *c, const char *user, const passdb_result *r, uint64_t now_ms)
{
    uint64_t ttl = r->status == USERDB_NOTFOUND ? c->negative_ttl_ms : c->ttl_ms;
    if (c->entries_max == 0 || r->status == USERDB_TEMPFAIL || ttl == 0) {
        return;
    }
    uint64_t h = sl_hash_str(user);
    uint32_t i = passdb_cache_find(c, user, h);
    if (i != PASSDB_CACHE_NONE) {
        passdb_cache_remove_at(c, i);
    }
    if (c->free_head == PASSDB_CACHE_NONE) {
        passdb_cache_remove_at(c, c->oldest);
    }
    i = c->free_head;
    passdb_cache_entry *e = &c->entries[i];
    c->free_head = e->younger;
    size_t ulen = strlen(user);
    size_t plen = strnlen(r->password, sizeof(r->password) - 1);
    e->blob_len = ulen + 1 + plen + 1;
    e->key = sl_malloc(e->blob_len);
    memcpy(e->key, user, ulen + 1);
    e->password = e->key + ulen + 1;
    memcpy(e->password, r->password, plen);
    e->password[plen] = '\0';
    e->hash = h;
    e->status = r->status;
    e->expires_ms = now_ms + ttl;
    size_t b = h & (c->buckets_n - 1);
    e->chain = c->buckets[b];
    c->buckets[b] = i;
    passdb_cache_link_young(c, i);
    c->count++;
}

void passdb_cache_remove(passdb_cache *c, const char *user)
{
    if (c->entries_max == 0) {
        return;
    }
    uint32_t i = passdb_cache_find(c, user, sl_hash_str(user));
    if (i != PASSDB_CACHE_NONE) {
        passdb_cache_remove_at(c, i);
    }
}
