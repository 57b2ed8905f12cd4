/* proto/lmtp_session.h: the LMTP service of one delivery core: accepting
 * connections, receiving into the core's provided buffers, driving the
 * parser, resolving recipients, handing content to store/ and sending the
 * replies. Everything here runs on the owning core's thread; the only
 * cross-thread inputs are resolver replies (drained by
 * lmtp_server_resolver_ready) and the shared, immutable config. */
#ifndef SL_LMTP_SESSION_H
#define SL_LMTP_SESSION_H

#include "auth/resolver.h"
#include "auth/userdb_cache.h"
#include "auth/userdb_redis.h"
#include "core/allow.h"
#include "core/bufring.h"
#include "core/config.h"
#include "core/ring.h"
#include "core/stats.h"
#include "store/store.h"

#include <stdint.h>

typedef struct lmtp_server lmtp_server;

typedef struct lmtp_server_deps {
    unsigned core_id;
    sl_ring *ring;
    sl_bufring *bufs;
    store *store;
    resolver *resolver;
    userdb_cache *cache;
    const sl_config *cfg;  /* borrowed; replaced by lmtp_server_reload */
    const sl_allow *allow; /* borrowed; replaced by lmtp_server_reload */
    sl_stats_core *stats;  /* the core's shard; this server writes its counters */
} lmtp_server_deps;

lmtp_server *lmtp_server_new(const lmtp_server_deps *deps);
/* Only after lmtp_server_idle() is true. */
void lmtp_server_free(lmtp_server **s);

/* Arm a multishot accept on a listening socket (not owned). */
void lmtp_server_listen(lmtp_server *s, int listen_fd);

/* Once per second: idle and DATA timeouts. */
void lmtp_server_tick(lmtp_server *s, uint64_t now_ms);
/* The resolver signalled this core: take its replies. */
void lmtp_server_resolver_ready(lmtp_server *s);
/* Once per loop iteration, after completions were dispatched. */
void lmtp_server_after_dispatch(lmtp_server *s);

/* New limits, allowlist and greeting for new and existing sessions. */
void lmtp_server_reload(lmtp_server *s, const sl_config *cfg, const sl_allow *allow);

/* Use a new userdb cache (the old one is being freed on reload). */
void lmtp_server_set_cache(lmtp_server *s, userdb_cache *cache);

/* The core's Redis client (NULL: none). Lookups go core cache -> Redis ->
 * SQL; the core's userdb_redis callback must call lmtp_server_redis_answer. */
void lmtp_server_set_redis(lmtp_server *s, userdb_redis *redis);

/* A Redis lookup answer (the userdb_redis_lookup_fn of the core's client):
 * a hit answers the RCPT, a miss or an error asks SQL. Owning core only. */
void lmtp_server_redis_answer(lmtp_server *s, uint64_t token, userdb_redis_status status,
                              const userdb_result *result, uint64_t latency_us);

/* Stop accepting; idle sessions get 421 4.3.2 and are closed, sessions in
 * a transaction finish it first. force: close everything now. */
void lmtp_server_shutdown(lmtp_server *s, bool force);
/* No connection left and nothing in flight. */
bool lmtp_server_idle(const lmtp_server *s);


#endif
