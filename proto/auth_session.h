/* proto/auth_session.h: the SMTP AUTH endpoint: the server side of the
 * Dovecot auth client protocol (Postfix smtpd_sasl_type = dovecot), on the
 * auth thread's own ring.
 *
 * Per connection: the handshake (VERSION 1 2, MECH lines, SPID, CUID,
 * COOKIE, DONE); the client's VERSION (major 1, else disconnect) and CPID;
 * then AUTH / CONT / CANCEL per request id, each driving one SASL mechanism
 * (proto/sasl_mech.h). Passwords come from the passdb (password_query) via
 * the auth cache (auth/passdb_cache.h) or a resolver thread; fast schemes
 * are checked inline, slow ones on auth/pwverify.h workers.
 *
 * Policy, in one place:
 *  - FAIL for a wrong password, an unknown or inactive user, or a malformed
 *    SASL message carries the same reason text, so a client cannot tell
 *    whether a user exists; it is held for auth_failure_delay (released by
 *    a 100 ms ring tick, so the failures of one tick go out together).
 *  - Per client IP (rip=, IPv6 by /48) a penalty (auth/penalty.h) holds each
 *    new AUTH before it is processed: 2 s after the first failure, doubling,
 *    capped so penalty + failure delay <= auth_penalty_max; reset on success.
 *  - passdb TEMPFAIL (backend down) with no usable cached entry closes the
 *    connection: Postfix turns a lost connection into 454 4.7.0, but any
 *    FAIL into a permanent-looking 535.
 *  - More than auth_requests_per_conn_max requests under way on one
 *    connection: the extra AUTH gets FAIL code=temp_fail at once (no
 *    delay, no penalty); the connection stays.
 *  - Protocol violations (no VERSION first, major != 1, AUTH before CPID,
 *    duplicate id, params after resp=, no service=, over-long line, NUL,
 *    unknown command) close the connection, as Dovecot does ("BUG: ...").
 *
 * Everything here runs on the auth thread. */
#ifndef SL_AUTH_SESSION_H
#define SL_AUTH_SESSION_H

#include "auth/resolver.h"
#include "auth/userdb_redis.h"
#include "core/allow.h"
#include "core/config.h"
#include "core/ring.h"
#include "core/stats.h"

#include <stddef.h>

#define AUTH_SESSION_CONNS_MAX 1024 /* connections at once; more are closed at accept */

typedef struct auth_server auth_server;

typedef struct auth_server_deps {
    sl_ring *ring;            /* the auth thread's ring */
    resolver *resolver;       /* passdb lookups */
    unsigned resolver_core_id; /* this thread's id at the resolver */
    const sl_config *cfg;     /* must outlive the server or the next reload */
    const sl_allow *allow;    /* auth_allow, parsed; the same lifetime */
    sl_stats_core *stats;     /* the auth thread's shard */
} auth_server_deps;

/* Create the server: buffer ring, worker threads, cache, penalty table,
 * polls on the resolver's and the workers' eventfds. NULL with a message in
 * err when the configuration cannot be served (an unknown mechanism in
 * auth_mechanisms, or none left to offer). */
auth_server *auth_server_new(const auth_server_deps *deps, char *err, size_t err_len);

/* Open the auth_listen sockets (before privileges are dropped): UNIX
 * sockets get auth_unix_mode and, when set, auth_unix_owner/group. Writes
 * up to max fds; returns how many (0: auth is off), or -1 with a message in
 * err (nothing left open). Any thread. */
int auth_server_open_listeners(const sl_config *cfg, int *fds_out, size_t max, char *err,
                               size_t err_len);

/* Accept on a listening socket (TCP or UNIX); the server owns fd from now. */
void auth_server_listen(auth_server *s, int fd);

/* A new config snapshot (SIGHUP): mechanisms (for new connections),
 * allowlist, delays, limits; the auth cache is flushed, as Dovecot does.
 * On a bad mechanism list the old list stays (logged). */
void auth_server_reload(auth_server *s, const sl_config *cfg, const sl_allow *allow);

/* Ask Redis (the pass entries the resolver threads store) before SQL on a
 * passdb cache miss; NULL = no Redis. r runs on this server's ring; the
 * caller flushes and ticks it and routes its on_pass_lookup answers to
 * auth_server_redis_pass_answer. */
void auth_server_set_redis(auth_server *s, userdb_redis *r);

/* A Redis answer to a pass lookup: a HIT is used as the passdb's answer, a
 * MISS or an ERROR goes on to SQL. */
void auth_server_redis_pass_answer(auth_server *s, uint64_t token, userdb_redis_status status,
                                   const passdb_result *result);

/* Once per loop iteration, after the ring dispatched its completions:
 * hands receive buffers back to the kernel and re-arms starved receives. */
void auth_server_after_dispatch(auth_server *s);

/* Stop accepting, close every connection, cancel the polls and the timer. */
void auth_server_shutdown(auth_server *s);

/* True after shutdown once nothing the kernel holds refers to the server. */
bool auth_server_idle(const auth_server *s);

/* Free (after idle); joins the worker threads. */
void auth_server_free(auth_server **s);

#endif
