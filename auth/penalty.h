/* auth/penalty.h: the per-client-IP brute-force penalty of the SMTP AUTH
 * endpoint, after Dovecot's anvil penalty (auth-penalty.c).
 *
 * Each failed login from an IP raises its level by one; a success resets it.
 * As in Dovecot, a failure that repeats one of the IP's last PENALTY_SUMS
 * user+password attempts does not raise the level (a client retrying a
 * stale password is not guessing); it only restarts the wait.
 * An AUTH from an IP at level n >= 1 must wait until
 *   last_failure + min(init_ms * 2^(n-1), max_ms)
 * before it is processed: the time since the last failure (the failure delay
 * already spent, the client's own round trips) counts toward the wait, as
 * in Dovecot. IPv4 addresses are keyed whole, IPv6 addresses by their /48,
 * because one end site usually gets a whole /48.
 *
 * Bounded: at most entries_max IPs are tracked; when full, the IP whose
 * last failure is oldest is forgotten. An entry also expires expire_ms
 * after its last failure.
 *
 * Pure (no clock, no I/O: the caller passes now_ms) and single-threaded:
 * the auth thread owns its table. */
#ifndef SL_PENALTY_H
#define SL_PENALTY_H

#include "core/base/base.h"

#define PENALTY_KEY_BYTES 16
#define PENALTY_LEVEL_MAX 16 /* further failures keep the level (the delay is capped long before) */
#define PENALTY_SUMS 10      /* attempts remembered per IP */

typedef struct penalty penalty;

typedef struct penalty_config {
    size_t entries_max;  /* >= 1 */
    uint64_t init_ms;    /* the wait at level 1 */
    uint64_t max_ms;     /* no wait is longer */
    uint64_t expire_ms;  /* an IP without failures for this long is forgotten */
    uint64_t sum_secret; /* keys the attempt sums (random per process) */
} penalty_config;

penalty *penalty_new(const penalty_config *cfg);
void penalty_free(penalty **p);

/* The key of a textual IP address ("192.0.2.1", "2001:db8::1",
 * "::ffff:192.0.2.1"): IPv4 as ::ffff:a.b.c.d, IPv6 masked to /48. False
 * (key zeroed) when text is not an IP address. */
bool penalty_key_from_text(const char *text, uint8_t key_out[PENALTY_KEY_BYTES]);

/* How long an AUTH from key must still wait at now_ms (0: process now). */
uint64_t penalty_delay_ms(penalty *p, const uint8_t key[PENALTY_KEY_BYTES], uint64_t now_ms);

/* The sum that identifies a user+password attempt (never 0), keyed with
 * the config's sum_secret so it says nothing outside this process. */
uint32_t penalty_attempt_sum(const penalty *p, sl_slice user, sl_slice password);

/* A failed login from key at now_ms: level + 1 (up to PENALTY_LEVEL_MAX),
 * unless attempt_sum (0: not known, e.g. a challenge-response mechanism)
 * is among the IP's last PENALTY_SUMS attempts. */
void penalty_failure(penalty *p, const uint8_t key[PENALTY_KEY_BYTES], uint32_t attempt_sum,
                     uint64_t now_ms);

/* A successful login from key: forget it. */
void penalty_success(penalty *p, const uint8_t key[PENALTY_KEY_BYTES]);

/* The level of key at now_ms (0: none), for logs and tests. */
unsigned penalty_level(penalty *p, const uint8_t key[PENALTY_KEY_BYTES], uint64_t now_ms);

/* IPs tracked now (expired ones included until they are looked at or evicted). */
size_t penalty_count(const penalty *p);

#endif
