/* auth/userdb_redis.h: the Redis tier of the recipient lookup (core cache ->
 * Redis -> SQL), in two halves:
 *
 * - userdb_redis: one per delivery core, driven by that core's own sl_ring.
 *   Every function, and every callback, runs on that core's thread only.
 *   Lookups queued in one event-loop turn leave in one send (pipelining);
 *   replies come back in order. hiredis only formats commands and parses
 *   replies here: all I/O goes through the ring.
 * - userdb_redis_sync: a blocking writer for resolver threads, which store
 *   what SQL answered. One per resolver thread; never shared.
 *
 * Keys and values are those of auth/redis_entry.h.
 *
 * Wiring on a delivery core, per event-loop iteration:
 *     sl_ring_run_once(ring, ...);      completions, including lookup answers
 *     ... sessions call userdb_redis_lookup() ...
 *     userdb_redis_flush(r);            once, after dispatching completions
 *     every second: userdb_redis_tick(r, sl_clock_ms());
 * A lookup that returns an error code (not connected is NOT one: that is an
 * ERROR callback) goes straight to SQL; so does every ERROR or MISS answer. */
#ifndef SL_USERDB_REDIS_H
#define SL_USERDB_REDIS_H

#include "auth/userdb.h"
#include "core/ring.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct userdb_redis_config {
    const char *host;        /* numeric address or name (resolved once, by _new) */
    unsigned port;           /* TCP port; used when unix_path is NULL or "" */
    const char *unix_path;   /* a UNIX socket path; wins over host/port */
    unsigned timeout_ms;     /* per request (and connect); 0 = 500 */
    unsigned positive_ttl_s; /* EX for FOUND and INACTIVE writes; 0 = never stored */
    unsigned negative_ttl_s; /* EX for NOTFOUND writes; 0 = never stored */
    const char *key_prefix;  /* NULL or "" = "sluice" */
    size_t queue_max;        /* requests waiting for a reply; 0 = 4096 */
    size_t out_bytes_max;    /* unsent command bytes; 0 = 1 MiB */
} userdb_redis_config;

typedef enum userdb_redis_status {
    USERDB_REDIS_HIT = 0, /* a cached entry: result is FOUND, NOTFOUND or INACTIVE */
    USERDB_REDIS_MISS,    /* no entry: ask SQL (and store its answer) */
    USERDB_REDIS_ERROR,   /* not connected, timeout, Redis error, garbage value: ask SQL */
} userdb_redis_status;

/* The answer to one lookup. result is non-NULL only for HIT and is valid
 * only during the call. latency_us is send -> reply (0 when the request was
 * never sent). Called on the owning core from ring dispatch, from
 * userdb_redis_flush() or userdb_redis_tick(), never from inside
 * userdb_redis_lookup() or _store(); the callback may queue new lookups and
 * stores, but must not free the client. */
typedef void (*userdb_redis_lookup_fn)(void *ctx, uint64_t token, userdb_redis_status status,
                                       const userdb_result *result, uint64_t latency_us);

/* The answer to one passdb lookup (userdb_redis_lookup_pass), the same way:
 * result is non-NULL only for HIT and valid only during the call. */
typedef void (*userdb_redis_pass_fn)(void *ctx, uint64_t token, userdb_redis_status status,
                                     const passdb_result *result, uint64_t latency_us);

/* The generation counter changed (a flush tool ran): drop the core's
 * in-process cache. Not called for the first value seen after start. */
typedef void (*userdb_redis_generation_fn)(void *ctx);

typedef struct userdb_redis_callbacks {
    userdb_redis_lookup_fn on_lookup;                /* required for userdb_redis_lookup */
    userdb_redis_generation_fn on_generation_change; /* may be NULL */
    void *ctx;
    userdb_redis_pass_fn on_pass_lookup; /* required for userdb_redis_lookup_pass */
} userdb_redis_callbacks;

/* Plain counters, read by the owning core for its stats shard. */
typedef struct userdb_redis_counters {
    uint64_t lookups; /* lookups accepted (not counting -EAGAIN/-EINVAL) */
    uint64_t hits;
    uint64_t misses;
    uint64_t errors;     /* lookups answered ERROR, for any reason */
    uint64_t timeouts;   /* of those, failed because a request timed out */
    uint64_t garbage;    /* of those, a value of the wrong shape */
    uint64_t queue_full; /* lookups refused with -EAGAIN */
    uint64_t reconnects; /* connections established after the first */
    uint64_t connect_failures;
    uint64_t stores;       /* SETs queued */
    uint64_t store_errors; /* SETs dropped (down, queue full) or refused by Redis */
    uint64_t sends;        /* send operations submitted */
    uint64_t generation_changes;
} userdb_redis_counters;

typedef struct userdb_redis userdb_redis;

/* Create the client of the calling core and start connecting in the
 * background. cfg's strings are copied. Returns NULL with a message in err
 * when the config is unusable (no address, host does not resolve, UNIX path
 * too long). Blocking only for a host name lookup: call at core setup. */
userdb_redis *userdb_redis_new(sl_ring *ring, const userdb_redis_config *cfg,
                               const userdb_redis_callbacks *cb, char *err, size_t err_len);

/* Detach and NULL the pointer. Callbacks are never called again; requests in
 * flight are abandoned. Operations the kernel still holds are cancelled and
 * the memory is released when their completions arrive, so the ring must
 * keep running (a few iterations) for the release. Not from a callback. */
void userdb_redis_free(userdb_redis **r);

/* Queue a GET for user ("local@domain", lower-cased). The answer comes later
 * through on_lookup with token. Returns 0, -EAGAIN when the queue or the
 * output buffer is full, or -EINVAL when user cannot be a key: in both cases
 * there will be no callback, and the caller goes to SQL now. */
int userdb_redis_lookup(userdb_redis *r, uint64_t token, const char *user);

/* Queue a GET of user's passdb entry (the pass key the resolver threads
 * store); the answer comes through on_pass_lookup. Returns 0, or -EAGAIN
 * while not connected (no fail queue here: the caller asks SQL at once) or
 * when the queue is full, or -EINVAL: then there is no callback. */
int userdb_redis_lookup_pass(userdb_redis *r, uint64_t token, const char *user);

/* Queue a SET of result with the configured TTL (fire and forget: failures
 * are only counted). TEMPFAIL and kinds whose TTL is 0 are not stored. */
void userdb_redis_store(userdb_redis *r, const char *user, const userdb_result *result);

/* Write everything queued since the last flush in one send (if no send is in
 * flight; otherwise when it completes and flush is called again), and answer
 * lookups made while disconnected with ERROR. Call once per loop iteration,
 * after dispatching completions. */
void userdb_redis_flush(userdb_redis *r);

/* The core's periodic tick (about 1 s): reconnect when due, expire requests
 * past their timeout (also done by a ring timer), and poll the generation
 * counter. Flushes what it queues. */
void userdb_redis_tick(userdb_redis *r, uint64_t now_ms);

bool userdb_redis_connected(const userdb_redis *r);

const userdb_redis_counters *userdb_redis_counters_get(const userdb_redis *r);

/* ---- the blocking writer, for resolver threads ---- */

typedef struct userdb_redis_sync userdb_redis_sync;

/* Create a writer; connects lazily. cfg's strings are copied (queue_max and
 * out_bytes_max are not used). Returns NULL with a message in err when cfg
 * has no address. */
userdb_redis_sync *userdb_redis_sync_new(const userdb_redis_config *cfg, char *err, size_t err_len);
void userdb_redis_sync_free(userdb_redis_sync **s);

/* Store result for user with the configured TTL. Blocks at most timeout_ms
 * (connect included). Returns 0 when stored or when there is nothing to store
 * (TEMPFAIL, or a TTL of 0); -EAGAIN while backing off after a failure (no
 * attempt made); -EIO on a failure (the connection is dropped and retried
 * after a backoff of 100 ms doubling to 5 s); -EINVAL for a user that cannot
 * be a key. */
int userdb_redis_sync_set(userdb_redis_sync *s, const char *user, const userdb_result *result);

/* The same for a passdb result, under the pass key, with the same TTLs
 * (positive for FOUND and INACTIVE, negative for NOTFOUND). */
int userdb_redis_sync_set_pass(userdb_redis_sync *s, const char *user, const passdb_result *result);

#endif
