/* auth/userdb.h: what a recipient resolves to, and the driver interface that
 * every userdb backend (SQLite now; PostgreSQL, MariaDB later) implements.
 *
 * Drivers are blocking and run only on resolver threads (auth/resolver.h),
 * never on a ring thread. */
#ifndef SL_USERDB_H
#define SL_USERDB_H

#include "core/base/base.h"

#define USERDB_ADDR_BYTES_MAX 320    /* user@domain, NUL included */
#define USERDB_MAILDIR_BYTES_MAX 512 /* maildir path as stored, NUL included */

typedef enum userdb_status {
    USERDB_FOUND = 0, /* active user */
    USERDB_NOTFOUND,  /* definitely unknown: 550 5.1.1 */
    USERDB_INACTIVE,  /* exists, active = 0: 550 5.2.1 */
    USERDB_TEMPFAIL,  /* backend trouble: 451 4.3.0, never cached */
} userdb_status;

typedef struct userdb_result {
    userdb_status status;
    char maildir[USERDB_MAILDIR_BYTES_MAX]; /* as the query returned it; relative to mail_root unless absolute */
    uint64_t quota_bytes;                   /* 0 = no limit */
} userdb_result;

typedef struct userdb_driver userdb_driver;

typedef struct userdb_driver_ops {
    /* Look up user ("local@domain", lower-cased, detail removed). Blocking.
     * Fills *out; returns 0, or -errno-like on a programming error only
     * (backend trouble is USERDB_TEMPFAIL in out->status). Called from one
     * resolver thread at a time per driver instance. */
    int (*lookup)(userdb_driver *d, const char *user, const char *localpart, const char *domain,
                  userdb_result *out);
    void (*destroy)(userdb_driver *d);
} userdb_driver_ops;

struct userdb_driver {
    const userdb_driver_ops *ops;
};

typedef struct userdb_config {
    const char *driver;     /* "sqlite" */
    const char *connect;    /* sqlite: the database file path */
    const char *user_query; /* Dovecot style, %u %n %d bound as parameters */
} userdb_config;

/* Create a driver from the config. On failure returns NULL and writes a
 * message into err (NUL-terminated, at most err_len bytes). Each resolver
 * thread creates its own instance (SQLite connections are not shared). */
userdb_driver *userdb_driver_new(const userdb_config *cfg, char *err, size_t err_len);

/* Destroy and NULL the pointer. */
void userdb_driver_free(userdb_driver **d);

/* Split "local+detail@Domain" into the lookup key "local@domain" (lower-cased),
 * the localpart and the detail, using any character of delimiters as the
 * separator (Dovecot's recipient_delimiter; empty = no detail). Returns false
 * if addr has no '@' or a part does not fit. Outputs are NUL-terminated. */
bool userdb_split_address(sl_slice addr, const char *delimiters, char *user_out,
                          size_t user_len, char *local_out, size_t local_len, char *detail_out,
                          size_t detail_len);

#endif
