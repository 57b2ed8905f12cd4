/* auth/passdb_cache.h: the auth thread's password cache, after Dovecot's
 * auth cache: the passdb answer of a user (status and stored password) is
 * kept for ttl_ms when found or inactive, negative_ttl_ms when unknown;
 * TEMPFAIL answers are never stored. Bounded: at most entries_max users,
 * evicting the one stored longest ago. An expired entry stays until evicted
 * or replaced, so the caller may still use it when the backend answers
 * TEMPFAIL (Dovecot serves expired entries on a database failure).
 *
 * Stored passwords are hashes (or plaintext, for {PLAIN}): every copy the
 * cache drops is wiped. Owned by one thread (the auth thread): no locks. */
#ifndef SL_PASSDB_CACHE_H
#define SL_PASSDB_CACHE_H

#include "auth/userdb.h"

typedef struct passdb_cache passdb_cache;

typedef enum passdb_cache_rc {
    PASSDB_CACHE_MISS = 0,
    PASSDB_CACHE_HIT,   /* fresh */
    PASSDB_CACHE_STALE, /* expired: use only when the backend cannot answer */
} passdb_cache_rc;

/* entries_max 0 disables the cache (nothing is stored); a TTL of 0 disables
 * that kind of entry. */
passdb_cache *passdb_cache_new(size_t entries_max, uint64_t ttl_ms, uint64_t negative_ttl_ms);
void passdb_cache_free(passdb_cache **c);

/* Look user up at now_ms (monotonic). On HIT or STALE copies the entry to
 * *out (status and password). */
passdb_cache_rc passdb_cache_get(passdb_cache *c, const char *user, uint64_t now_ms,
                                 passdb_result *out);

/* Store (or replace) user's answer; TEMPFAIL is ignored. */
void passdb_cache_put(passdb_cache *c, const char *user, const passdb_result *r, uint64_t now_ms);

/* Forget user (a cached password that no longer verifies: ask the backend). */
void passdb_cache_remove(passdb_cache *c, const char *user);

void passdb_cache_clear(passdb_cache *c);
size_t passdb_cache_count(const passdb_cache *c);

#endif
