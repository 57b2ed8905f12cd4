/* auth/redis_entry.h: how userdb (and passdb) results are stored in Redis.
 * Pure: no I/O, no allocation, no globals; any thread may call it.
 *
 * Keys are namespaced and versioned, "<prefix>:v1:user:<user>" and
 * "<prefix>:v1:pass:<user>", with user the lower-cased "local@domain"; the
 * generation counter that tells every core to drop its in-process cache is
 * "<prefix>:v1:gen". The prefix is "sluice" unless configured.
 *
 * Values are short, self-describing, versioned strings:
 *   "1|F|<quota_bytes>|<maildir>"   USERDB_FOUND (maildir last: it may hold '|')
 *   "1|I"                           USERDB_INACTIVE
 *   "1|N"                           USERDB_NOTFOUND
 * and for passdb entries:
 *   "1|P|<password>"                USERDB_FOUND (password last: it may hold '|')
 *   "1|I", "1|N"                    as above
 * USERDB_TEMPFAIL is never encoded. Anything else, including a userdb value
 * under a pass key and the reverse, decodes as garbage, which callers treat
 * as a miss (and log). */
#ifndef SL_REDIS_ENTRY_H
#define SL_REDIS_ENTRY_H

#include "auth/userdb.h"

#include <stdbool.h>
#include <stddef.h>

#define REDIS_ENTRY_PREFIX_DEFAULT "sluice"
#define REDIS_ENTRY_PREFIX_BYTES_MAX 64 /* NUL included */
/* "<prefix>:v1:user:" + user, NUL included. */
#define REDIS_ENTRY_KEY_BYTES_MAX (REDIS_ENTRY_PREFIX_BYTES_MAX + 16 + USERDB_ADDR_BYTES_MAX)
/* "1|F|" + 20 quota digits + "|" + maildir, NUL included. */
#define REDIS_ENTRY_VALUE_BYTES_MAX (32 + USERDB_MAILDIR_BYTES_MAX)

typedef enum redis_entry_kind {
    REDIS_ENTRY_USER = 0, /* userdb_result */
    REDIS_ENTRY_PASS,     /* passdb lookups */
    REDIS_ENTRY_GEN,      /* the generation counter (user is ignored) */
} redis_entry_kind;

/* Why a value did not decode. REDIS_ENTRY_OK is the only success. */
typedef enum redis_entry_rc {
    REDIS_ENTRY_OK = 0,
    REDIS_ENTRY_TOO_LONG,    /* longer than REDIS_ENTRY_VALUE_BYTES_MAX - 1 */
    REDIS_ENTRY_BAD_VERSION, /* not "1|..." */
    REDIS_ENTRY_BAD_KIND,    /* unknown status letter */
    REDIS_ENTRY_BAD_FIELDS,  /* wrong number of fields for the status */
    REDIS_ENTRY_BAD_NUMBER,  /* quota not a canonical decimal uint64 */
    REDIS_ENTRY_BAD_TEXT,    /* NUL byte in maildir/password, or one too long */
} redis_entry_rc;

/* A short lower-case word for logs ("bad quota", ...). Never NULL. */
const char *redis_entry_rc_text(redis_entry_rc rc);

/* Write the key of kind for user into out (NUL-terminated), user lower-cased
 * (ASCII). prefix NULL or "" means REDIS_ENTRY_PREFIX_DEFAULT. Returns the
 * key's length, or 0 when user is empty (unless kind is REDIS_ENTRY_GEN),
 * holds a control byte, or the key does not fit out_len. */
size_t redis_entry_key(const char *prefix, redis_entry_kind kind, const char *user, char *out,
                       size_t out_len);

/* Encode r into out (NUL-terminated). Returns the value's length, or 0 when r
 * must not be cached (USERDB_TEMPFAIL), its maildir is not NUL-terminated
 * within USERDB_MAILDIR_BYTES_MAX, or out_len is too small
 * (REDIS_ENTRY_VALUE_BYTES_MAX always suffices). */
size_t redis_entry_encode_user(const userdb_result *r, char *out, size_t out_len);

/* Decode the len bytes at v (binary, not NUL-terminated). On REDIS_ENTRY_OK
 * *out holds FOUND, NOTFOUND or INACTIVE; on any other code *out is set to
 * USERDB_TEMPFAIL with an empty maildir, so a caller that ignores the code
 * still never delivers on garbage. */
redis_entry_rc redis_entry_decode_user(const uint8_t *v, size_t len, userdb_result *out);

/* The same for passdb results: the password must be NUL-terminated within
 * USERDB_PASSWORD_BYTES_MAX. */
size_t redis_entry_encode_pass(const passdb_result *r, char *out, size_t out_len);

/* The same as redis_entry_decode_user, for passdb values: on any code but
 * REDIS_ENTRY_OK, *out is TEMPFAIL with an empty password. */
redis_entry_rc redis_entry_decode_pass(const uint8_t *v, size_t len, passdb_result *out);

/* Copy text into out with the glob metacharacters of Redis' MATCH
 * (* ? [ ] \) escaped by a backslash. Returns the length written, or 0 when
 * it does not fit out_len (NUL included) or text is empty. */
size_t redis_entry_glob_escape(const char *text, char *out, size_t out_len);

#endif
