/* auth/penalty.c: see penalty.h.
 *
 * A chained hash table over a fixed array of entries_max slots; the slots
 * in use also form a list ordered by last failure, so evicting the oldest
 * and moving a fresh failure to the young end are O(1). */
#include "auth/penalty.h"

#include "core/alloc.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#define PENALTY_NONE UINT32_MAX

typedef struct penalty_entry {
    uint8_t key[PENALTY_KEY_BYTES];
    bool used;
    unsigned level;
    uint64_t last_ms; /* time of the last failure */
    uint32_t sums[PENALTY_SUMS]; /* the last attempts, 0 = empty */
    uint32_t sums_next;
    uint32_t chain;   /* next entry in the same bucket */
    uint32_t older;   /* age list; the free list runs through younger */
    uint32_t younger;
} penalty_entry;

struct penalty {
    penalty_config cfg;
    penalty_entry *entries;
    uint32_t *buckets;
    size_t buckets_n; /* a power of two */
    size_t count;
    uint32_t oldest;
    uint32_t youngest;
    uint32_t free_head;
};

penalty *penalty_new(const penalty_config *cfg)
{
    SL_ASSERT(cfg->entries_max >= 1);
    SL_ASSERT(cfg->entries_max < PENALTY_NONE);
    penalty *p = sl_calloc(1, sizeof(*p));
    p->cfg = *cfg;
    p->entries = sl_calloc(cfg->entries_max, sizeof(*p->entries));
    p->buckets_n = 16;
    while (p->buckets_n < cfg->entries_max) {
        p->buckets_n *= 2;
    }
    p->buckets = sl_calloc(p->buckets_n, sizeof(*p->buckets));
    for (size_t i = 0; i < p->buckets_n; i++) {
        p->buckets[i] = PENALTY_NONE;
    }
    for (size_t i = 0; i < cfg->entries_max; i++) {
        p->entries[i].younger = i + 1 < cfg->entries_max ? (uint32_t)(i + 1) : PENALTY_NONE;
    }
    p->free_head = 0;
    p->oldest = PENALTY_NONE;
    p->youngest = PENALTY_NONE;
    return p;
}

void penalty_free(penalty **pp)
{
    penalty *p = *pp;
    if (p == NULL) {
        return;
    }
    free(p->entries);
    free(p->buckets);
    sl_free(pp);
}

bool penalty_key_from_text(const char *text, uint8_t key_out[PENALTY_KEY_BYTES])
{
    memset(key_out, 0, PENALTY_KEY_BYTES);
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, text, &a4) == 1) {
        key_out[10] = 0xff;
        key_out[11] = 0xff;
        memcpy(key_out + 12, &a4, 4);
        return true;
    }
    if (inet_pton(AF_INET6, text, &a6) != 1) {
        return false;
    }
    memcpy(key_out, &a6, 16);
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(key_out, mapped, sizeof(mapped)) != 0) {
        /* One site: its /48. */
        memset(key_out + 6, 0, PENALTY_KEY_BYTES - 6);
    }
    return true;
}

static size_t penalty_bucket(const penalty *p, const uint8_t key[PENALTY_KEY_BYTES])
{
    return (size_t)(sl_hash_bytes(key, PENALTY_KEY_BYTES) & (p->buckets_n - 1));
}

static uint32_t penalty_find(const penalty *p, const uint8_t key[PENALTY_KEY_BYTES])
{
    for (uint32_t i = p->buckets[penalty_bucket(p, key)]; i != PENALTY_NONE;
         i = p->entries[i].chain) {
        if (memcmp(p->entries[i].key, key, PENALTY_KEY_BYTES) == 0) {
            return i;
        }
    }
    return PENALTY_NONE;
}

static void penalty_unlink_age(penalty *p, uint32_t i)
{
    penalty_entry *e = &p->entries[i];
    if (e->older != PENALTY_NONE) {
        p->entries[e->older].younger = e->younger;
    } else {
        p->oldest = e->younger;
    }
    if (e->younger != PENALTY_NONE) {
        p->entries[e->younger].older = e->older;
    } else {
        p->youngest = e->older;
    }
}

static void penalty_link_young(penalty *p, uint32_t i)
{
    penalty_entry *e = &p->entries[i];
    e->older = p->youngest;
    e->younger = PENALTY_NONE;
    if (p->youngest != PENALTY_NONE) {
        p->entries[p->youngest].younger = i;
    } else {
        p->oldest = i;
    }
    p->youngest = i;
}

static void penalty_remove(penalty *p, uint32_t i)
{
    penalty_entry *e = &p->entries[i];
    SL_ASSERT(e->used);
    uint32_t *pp = &p->buckets[penalty_bucket(p, e->key)];
    while (*pp != i) {
        SL_ASSERT(*pp != PENALTY_NONE);
        pp = &p->entries[*pp].chain;
    }
    *pp = e->chain;
    penalty_unlink_age(p, i);
    memset(e, 0, sizeof(*e));
    e->younger = p->free_head;
    p->free_head = i;
    p->count--;
}

/* The entry of key, or NONE; an expired one is removed on the way. */
static uint32_t penalty_live(penalty *p, const uint8_t key[PENALTY_KEY_BYTES], uint64_t now_ms)
{
    uint32_t i = penalty_find(p, key);
    if (i != PENALTY_NONE && now_ms >= p->entries[i].last_ms &&
        now_ms - p->entries[i].last_ms >= p->cfg.expire_ms) {
        penalty_remove(p, i);
        return PENALTY_NONE;
    }
    return i;
}

static uint64_t penalty_wait_ms(const penalty *p, unsigned level)
{
    if (level == 0) {
        return 0;
    }
    uint64_t ms = p->cfg.init_ms;
    for (unsigned l = 1; l < level && ms < p->cfg.max_ms; l++) {
        ms *= 2;
    }
    return ms < p->cfg.max_ms ? ms : p->cfg.max_ms;
}

uint64_t penalty_delay_ms(penalty *p, const uint8_t key[PENALTY_KEY_BYTES], uint64_t now_ms)
{
    uint32_t i = penalty_live(p, key, now_ms);
    if (i == PENALTY_NONE) {
        return 0;
    }
    const penalty_entry *e = &p->entries[i];
    uint64_t until = e->last_ms + penalty_wait_ms(p, e->level);
    return until > now_ms ? until - now_ms : 0;
}

uint32_t penalty_attempt_sum(const penalty *p, sl_slice user, sl_slice password)
{
    /* Secret, user, a separator no user name holds, password. */
    uint64_t h = sl_hash_more(SL_HASH_INIT, &p->cfg.sum_secret, sizeof(p->cfg.sum_secret));
    h = sl_hash_more(h, user.ptr, user.len);
    h = sl_hash_more(h, "", 1);
    h = sl_hash_more(h, password.ptr, password.len);
    uint32_t sum = (uint32_t)(h ^ (h >> 32));
    return sum != 0 ? sum : 1;
}

/* Whether sum is one of e's remembered attempts; if not, remember it. */
static bool penalty_seen_sum(penalty_entry *e, uint32_t sum)
{
    for (size_t i = 0; i < PENALTY_SUMS; i++) {
        if (e->sums[i] == sum) {
            return true;
        }
    }
    e->sums[e->sums_next] = sum;
    e->sums_next = (e->sums_next + 1) % PENALTY_SUMS;
    return false;
}

void penalty_failure(penalty *p, const uint8_t key[PENALTY_KEY_BYTES], uint32_t attempt_sum,
                     uint64_t now_ms)
{
    uint32_t i = penalty_live(p, key, now_ms);
    if (i == PENALTY_NONE) {
        if (p->free_head == PENALTY_NONE) {
            penalty_remove(p, p->oldest);
        }
        i = p->free_head;
        penalty_entry *e = &p->entries[i];
        p->free_head = e->younger;
        memcpy(e->key, key, PENALTY_KEY_BYTES);
        e->used = true;
        e->level = 0;
        memset(e->sums, 0, sizeof(e->sums));
        e->sums_next = 0;
        size_t b = penalty_bucket(p, key);
        e->chain = p->buckets[b];
        p->buckets[b] = i;
        p->count++;
    } else {
        penalty_unlink_age(p, i);
    }
    penalty_entry *e = &p->entries[i];
    bool repeat = attempt_sum != 0 && penalty_seen_sum(e, attempt_sum);
    if (!repeat && e->level < PENALTY_LEVEL_MAX) {
        e->level++;
    }
    e->last_ms = now_ms;
    penalty_link_young(p, i);
}

void penalty_success(penalty *p, const uint8_t key[PENALTY_KEY_BYTES])
{
    uint32_t i = penalty_find(p, key);
    if (i != PENALTY_NONE) {
        penalty_remove(p, i);
    }
}

unsigned penalty_level(penalty *p, const uint8_t key[PENALTY_KEY_BYTES], uint64_t now_ms)
{
    uint32_t i = penalty_live(p, key, now_ms);
    return i == PENALTY_NONE ? 0 : p->entries[i].level;
}

size_t penalty_count(const penalty *p)
{
    return p->count;
}
