/* core/stats.h: per-core statistics shards and their Prometheus rendering.
 *
 * Each delivery core owns one sl_stats_core and is its only writer; the
 * stats thread reads every shard without locks (relaxed atomic loads of
 * single-writer counters) and sums them at scrape time, so a scrape never
 * makes a delivery core wait. Histograms count observations per bucket and
 * are made cumulative only when rendered. */
#ifndef SL_STATS_H
#define SL_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_HIST_LATENCY_BUCKETS 17 /* 16 bounds + Inf */
#define SL_HIST_BATCH_BUCKETS 10   /* 9 bounds + Inf */

typedef struct sl_hist {
    _Atomic uint64_t buckets[SL_HIST_LATENCY_BUCKETS];
    _Atomic uint64_t count;
    _Atomic uint64_t sum; /* in the histogram's unit: microseconds, or items */
} sl_hist;

typedef enum sl_rcpt_outcome {
    SL_RCPT_DELIVERED = 0,
    SL_RCPT_UNKNOWN,   /* 550 5.1.1 at RCPT */
    SL_RCPT_INACTIVE,  /* 550 5.2.1 at RCPT */
    SL_RCPT_OVERQUOTA, /* 552 5.2.2 */
    SL_RCPT_TEMPFAIL,  /* any 4xx for the recipient */
    SL_RCPT_REJECTED,  /* other 5xx after acceptance, e.g. message too big */
    SL_RCPT_OUTCOMES,
} sl_rcpt_outcome;

typedef enum sl_lookup_result {
    SL_LOOKUP_FOUND = 0,
    SL_LOOKUP_NOTFOUND,
    SL_LOOKUP_INACTIVE,
    SL_LOOKUP_TEMPFAIL,
    SL_LOOKUP_RESULTS,
} sl_lookup_result;

typedef enum sl_lookup_tier {
    SL_TIER_CORE = 0, /* the core's in-process cache */
    SL_TIER_REDIS,    /* the core's Redis connection */
    SL_TIER_SQL,      /* a resolver thread ran the userdb query */
    SL_TIERS,
} sl_lookup_tier;

typedef enum sl_redis_result {
    SL_REDIS_HIT = 0,
    SL_REDIS_MISS,  /* no entry: asked SQL */
    SL_REDIS_ERROR, /* down, slow, garbage or refused: asked SQL */
    SL_REDIS_RESULTS,
} sl_redis_result;

/* SMTP AUTH requests, by mechanism (the order of proto/sasl_mech.h's
 * sasl_mech_id, checked there) and result. */
typedef enum sl_auth_mech {
    SL_AUTH_MECH_PLAIN = 0,
    SL_AUTH_MECH_LOGIN,
    SL_AUTH_MECH_CRAM_MD5,
    SL_AUTH_MECH_DIGEST_MD5,
    SL_AUTH_MECH_SCRAM_SHA1,
    SL_AUTH_MECH_SCRAM_SHA256,
    SL_AUTH_MECH_NTLM,
    SL_AUTH_MECH_UNKNOWN, /* a mechanism not offered */
    SL_AUTH_MECHS,
} sl_auth_mech;

typedef enum sl_auth_result {
    SL_AUTH_OK = 0,
    SL_AUTH_FAIL,     /* FAIL sent: wrong password, unknown user, bad input */
    SL_AUTH_TEMPFAIL, /* backend down: the connection was closed */
    SL_AUTH_CANCEL,   /* CANCEL, or the client left mid-request */
    SL_AUTH_RESULTS,
} sl_auth_result;

typedef struct sl_stats_core {
    _Atomic uint64_t conns_open;
    _Atomic uint64_t conns_total;
    _Atomic uint64_t conns_refused_allow;
    _Atomic uint64_t conns_refused_limit;
    _Atomic uint64_t transactions;
    _Atomic uint64_t rcpts[SL_RCPT_OUTCOMES];
    _Atomic uint64_t bytes_delivered;
    _Atomic uint64_t lookups[SL_TIERS][SL_LOOKUP_RESULTS];
    _Atomic uint64_t redis_lookups[SL_REDIS_RESULTS];
    _Atomic uint64_t lookups_stale; /* expired cache entries served while SQL was down */
    _Atomic uint64_t commit_batches;
    _Atomic uint64_t fsyncs;
    _Atomic uint64_t store_errors;
    _Atomic uint64_t loop_iterations;
    _Atomic uint64_t loop_busy_ns;
    sl_hist batch_size;      /* transactions per group commit */
    sl_hist fsync_us;        /* one fsync, submission to completion */
    sl_hist delivery_us;     /* end of DATA to the replies */
    sl_hist redis_us;        /* Redis lookup, send to reply */
    sl_hist sql_us;          /* SQL lookup, as the resolver ran it */
    /* The auth thread's shard only. */
    _Atomic uint64_t auth_requests[SL_AUTH_MECHS][SL_AUTH_RESULTS];
    _Atomic uint64_t auth_penalties; /* AUTHs held back by a per-IP penalty */
    _Atomic uint64_t auth_conns_open;
    _Atomic uint64_t auth_conns_total;
    _Atomic uint64_t auth_conns_refused; /* allowlist or connection cap */
    _Atomic uint64_t auth_cache_hits;    /* passdb answers from the auth cache (stale included) */
    _Atomic uint64_t auth_redis_hits;    /* passdb answers from Redis */
} sl_stats_core;

/* Single-writer increment: the owning core only. */
static inline void sl_stat_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void sl_stat_sub(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - n,
                          memory_order_relaxed);
}

/* Record one observation (owning core only). */
void sl_hist_latency_us(sl_hist *h, uint64_t us);
void sl_hist_batch(sl_hist *h, uint64_t items);

typedef struct sl_stats_info {
    const char *version;
    bool fsync;
    const char *sync_method;   /* "fsync" or "syncfs" */
    uint64_t syncfs_rounds;    /* sync_method = syncfs: rounds run, */
    uint64_t syncfs_waits;     /* barrier requests answered, */
    uint64_t syncfs_failed;    /* rounds that failed, */
    uint64_t syncfs_busy_us;   /* time in syncfs() + fsync() */
    int64_t start_time_s;
    uint64_t sql_queries; /* userdb/passdb queries the resolver ran */
    uint64_t sql_shared;  /* lookups answered by a query already under way */
    const sl_stats_core *auth; /* the auth thread's shard; NULL: SMTP AUTH is off */
} sl_stats_info;

/* Render the Prometheus text exposition (format 0.0.4) of n shards into a
 * malloc'd buffer (*out, *len_out); the caller frees it. Any thread. */
void sl_stats_render(const sl_stats_core *const *shards, size_t n, const sl_stats_info *info,
                     char **out, size_t *len_out);

#endif
