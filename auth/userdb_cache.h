/* auth/userdb_cache.h: the in-process, per-core recipient cache. One per
 * delivery core, touched only by that core's thread: no locks. Positive and
 * negative entries have their own TTLs; TEMPFAIL results are never stored.
 * Bounded: at most entries_max entries, evicting the oldest. */
#ifndef SL_USERDB_CACHE_H
#define SL_USERDB_CACHE_H

#include "auth/userdb.h"

typedef struct userdb_cache userdb_cache;

userdb_cache *userdb_cache_new(size_t entries_max, uint64_t positive_ttl_ms,
                               uint64_t negative_ttl_ms);
void userdb_cache_free(userdb_cache **c);

/* On a fresh hit copies the entry to *out and returns true. now_ms is a
 * monotonic clock in milliseconds. */
bool userdb_cache_get(userdb_cache *c, const char *user, uint64_t now_ms, userdb_result *out);

/* Store a result (FOUND/INACTIVE with the positive TTL, NOTFOUND with the
 * negative TTL; TEMPFAIL is ignored). */
void userdb_cache_put(userdb_cache *c, const char *user, const userdb_result *r, uint64_t now_ms);

/* Keep expired entries (until evicted by size) so that, while the backend
 * is down, userdb_cache_get_stale can serve them (Dovecot's behaviour). */
void userdb_cache_set_keep_stale(userdb_cache *c, bool keep);

/* An entry for user whatever its age, but only a FOUND one: a stale
 * "unknown" must never turn a backend outage into a 550. */
bool userdb_cache_get_stale(userdb_cache *c, const char *user, userdb_result *out);

/* Drop everything (SIGHUP reload, flush commands). */
void userdb_cache_clear(userdb_cache *c);

size_t userdb_cache_count(const userdb_cache *c);

#endif
