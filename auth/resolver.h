/* auth/resolver.h: resolver threads that run the blocking userdb drivers so
 * ring threads never block. Delivery cores submit requests (bounded queue;
 * submit fails with -EAGAIN when full: the caller answers 451 4.3.0) and
 * get answers through their own reply queue, signalled on an eventfd the
 * core polls with its ring.
 *
 * resolver_submit / resolver_drain / resolver_core_eventfd may be called
 * from delivery core threads (each core only with its own core_id). */
#ifndef SL_RESOLVER_H
#define SL_RESOLVER_H

#include "auth/userdb.h"

typedef struct resolver resolver;

typedef enum resolver_kind {
    RESOLVER_USERDB = 0, /* user_query: result */
    RESOLVER_PASSDB,     /* password_query: pass */
} resolver_kind;

typedef struct resolver_request {
    uint64_t token; /* opaque to the resolver, echoed in the reply */
    resolver_kind kind;
    char user[USERDB_ADDR_BYTES_MAX];
    char localpart[USERDB_ADDR_BYTES_MAX];
    char domain[USERDB_ADDR_BYTES_MAX];
} resolver_request;

typedef struct resolver_reply {
    uint64_t token;
    resolver_kind kind;
    uint64_t sql_us;   /* how long the query took (shared by every waiter) */
    bool redis_stored; /* the answer was written to Redis */
    char user[USERDB_ADDR_BYTES_MAX];
    userdb_result result; /* RESOLVER_USERDB */
    passdb_result pass;   /* RESOLVER_PASSDB */
} resolver_reply;

/* Totals since start, for the stats endpoint. */
typedef struct resolver_stats {
    uint64_t requests; /* accepted submits */
    uint64_t joined;   /* of those, answered by a flight already under way */
    uint64_t queries;  /* SQL queries run */
    uint64_t query_us_total;
    uint64_t redis_stores;
} resolver_stats;

/* Start threads_n threads, each with its own driver made from cfg, serving
 * cores_n cores (delivery cores and the auth core each have an id).
 * queue_max bounds the distinct lookups under way (all cores) and each
 * core's undrained requests. With redis non-NULL every worker stores what
 * SQL answered in Redis (auth/userdb_redis.h). Returns NULL with a message
 * in err if a driver cannot be created. */
struct userdb_redis_config;
resolver *resolver_new(const userdb_config *cfg, const struct userdb_redis_config *redis,
                       unsigned threads_n, unsigned cores_n, size_t queue_max, char *err,
                       size_t err_len);

/* A snapshot of the totals (any thread). */
void resolver_stats_get(resolver *r, resolver_stats *out);

/* Stop the threads (pending requests are answered TEMPFAIL) and free. */
void resolver_free(resolver **r);

/* Added: the first half of resolver_free. Stops and joins the threads and
 * answers every still-queued request TEMPFAIL into its core's reply queue
 * (eventfd signalled), so cores can drain those answers before
 * resolver_free discards what is left. Later submits return -EAGAIN.
 * Idempotent; call from the thread that owns the resolver. */
void resolver_stop(resolver *r);

/* Replace the drivers with ones made from cfg (SIGHUP). On error the old
 * drivers stay and -1 is returned with a message in err. */
int resolver_reload(resolver *r, const userdb_config *cfg, char *err, size_t err_len);

/* A request of kind for user ("local@domain"), split into localpart and
 * domain at the last '@' (a quoted localpart may hold one). */
resolver_request resolver_request_make(resolver_kind kind, uint64_t token, const char *user);

/* Queue a request from core core_id. A request for the same (kind, user) as
 * one queued or running, from any core, joins it: one query answers both.
 * 0, or -EAGAIN if the queue is full or the core has queue_max requests
 * undrained. */
int resolver_submit(resolver *r, unsigned core_id, const resolver_request *req);

/* The eventfd that becomes readable when core core_id has replies. */
int resolver_core_eventfd(const resolver *r, unsigned core_id);

/* Move up to max replies for core_id into out; returns how many. The
 * caller reads the eventfd itself (its ring does) before draining. */
size_t resolver_drain(resolver *r, unsigned core_id, resolver_reply *out, size_t max);

#endif
