/* auth/userdb.h: what a recipient resolves to, and the driver interface that
 * every userdb backend (SQLite, PostgreSQL, MariaDB/MySQL) implements.
 *
 * Drivers are blocking and run only on resolver threads (auth/resolver.h),
 * never on a ring thread. The second half of this header holds what the SQL
 * drivers share (query rewrite, column rules, reconnect backoff) so the
 * three backends answer the same row the same way. */
#ifndef SL_USERDB_H
#define SL_USERDB_H

#include "core/base/base.h"

#define USERDB_ADDR_BYTES_MAX 320     /* user@domain, NUL included */
#define USERDB_MAILDIR_BYTES_MAX 512  /* maildir path as stored, NUL included */
#define USERDB_PASSWORD_BYTES_MAX 256 /* password (scheme prefix and hash), NUL included */

/* Used when userdb_config leaves a timeout at 0. */
#define USERDB_QUERY_TIMEOUT_MS_DEFAULT 5000
#define USERDB_CONNECT_TIMEOUT_MS_DEFAULT 5000

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

/* The answer of a password_query. password is the column as stored
 * (e.g. "{SHA512-CRYPT}$6$..."): comparing it is the caller's job. */
typedef struct passdb_result {
    userdb_status status; /* FOUND, NOTFOUND, INACTIVE or TEMPFAIL, as for userdb */
    char password[USERDB_PASSWORD_BYTES_MAX];
} passdb_result;

typedef struct userdb_driver userdb_driver;

typedef struct userdb_driver_ops {
    /* Look up user ("local@domain", lower-cased, detail removed). Blocking,
     * bounded by the configured timeouts. Fills *out; returns 0, or
     * -errno-like on a programming error only (backend trouble is
     * USERDB_TEMPFAIL in out->status). Called from one resolver thread at a
     * time per driver instance. */
    int (*lookup)(userdb_driver *d, const char *user, const char *localpart, const char *domain,
                  userdb_result *out);
    /* The same for password_query. Returns -ENOTSUP (out->status TEMPFAIL)
     * when no password_query is configured. */
    int (*passdb_lookup)(userdb_driver *d, const char *user, const char *localpart,
                         const char *domain, passdb_result *out);
    void (*destroy)(userdb_driver *d);
} userdb_driver_ops;

struct userdb_driver {
    const userdb_driver_ops *ops;
};

typedef struct userdb_config {
    const char *driver;         /* "sqlite", "pgsql", "mysql" (alias "mariadb") */
    const char *connect;        /* sqlite: the file; pgsql/mysql: "host=... dbname=..." */
    const char *user_query;     /* Dovecot style, %u %n %d bound as parameters */
    const char *password_query; /* the same; NULL or "" = no passdb */
    uint64_t query_timeout_ms;  /* 0 = USERDB_QUERY_TIMEOUT_MS_DEFAULT */
    uint64_t connect_timeout_ms; /* 0 = USERDB_CONNECT_TIMEOUT_MS_DEFAULT */
} userdb_config;

/* Create a driver from the config. On failure returns NULL and writes a
 * message into err (NUL-terminated, at most err_len bytes). Each resolver
 * thread creates its own instance (connections are never shared). A server
 * that cannot be reached is not an error here: the driver answers TEMPFAIL
 * and reconnects; a query the server rejects is. */
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

/* ---- shared by the SQL drivers ---------------------------------------- */

/* snprintf into err (when err is not NULL and err_len > 0). */
__attribute__((format(printf, 3, 4))) void userdb_errf(char *err, size_t err_len,
                                                      const char *fmt, ...);

/* Most %u/%n/%d occurrences one query may hold. */
#define USERDB_QUERY_PARAMS_MAX 16

/* How a rewritten query spells a parameter and a concatenation. */
typedef enum userdb_dialect {
    USERDB_DIALECT_SQLITE, /* ?, a || b */
    USERDB_DIALECT_PGSQL,  /* $1 $2 ..., a || b */
    USERDB_DIALECT_MYSQL,  /* ?, CONCAT(a, b); "..." is a string literal too */
} userdb_dialect;

/* Rewrite a Dovecot-style query into SQL for dialect with one parameter per
 * %u/%n/%d (also %{user} %{username} %{domain}), '%u' in quotes included: a
 * quoted literal mixing text and escapes becomes a concatenation. %% is one
 * '%'. params_out receives 'u', 'n' or 'd' per parameter, in order. Returns
 * the malloc'd SQL (caller frees) or NULL with a message in err. Pure. */
char *userdb_query_convert(const char *query, userdb_dialect dialect,
                           char params_out[USERDB_QUERY_PARAMS_MAX], size_t *params_n_out,
                           char *err, size_t err_len);

/* A configured query, rewritten for one driver. */
typedef struct userdb_query {
    char *sql; /* NULL when the query is not configured */
    char params[USERDB_QUERY_PARAMS_MAX];
    size_t params_n;
} userdb_query;

/* Rewrite text into q. what names the query in messages ("user_query").
 * Fails (false, message "userdb <driver>: <what> ...") on a bad escape or
 * a query that uses none of %u %n %d. */
bool userdb_query_init(userdb_query *q, const char *text, userdb_dialect dialect,
                       const char *driver, const char *what, char *err, size_t err_len);
void userdb_query_deinit(userdb_query *q);

/* The value bound for param 'u', 'n' or 'd'. */
const char *userdb_param_value(char param, const char *user, const char *localpart,
                               const char *domain);

/* Which result column is which, by name, case-insensitive; -1 = none.
 * maildir: "maildir", else "home", else "mail"; quota: "quota_bytes", else
 * "quota"; active: "active"; password: "password". */
typedef struct userdb_columns {
    int maildir;
    int quota;
    int active;
    int password;
} userdb_columns;

/* names[i] is the name of result column i (a NULL name matches nothing). */
void userdb_columns_map(const char *const *names, size_t names_n, userdb_columns *out);

/* One column value of a row as text; ptr NULL = SQL NULL or no such column.
 * Borrowed from the driver's row for the duration of the fill call. */
typedef struct userdb_text {
    const char *ptr;
    size_t len;
} userdb_text;

/* Active unless the text is one of "0" "f" "false" "n" "no" "off" (any case)
 * or an integer equal to 0; NULL is active. */
bool userdb_text_active(userdb_text t);

/* The quota in bytes, 0 = no limit. Either a number of bytes (its leading
 * decimal integer; NULL, negative or no digits = 0), or a Dovecot quota rule
 * as a userdb returns it for the quota plugin ("*:storage=1G",
 * "*:bytes=1048576", "storage=512M"): the rule for "*" or "?" (or one with
 * no mailbox name), where storage= counts KiB and bytes= bytes unless a unit
 * follows (b, k, M, G, T; any case), and "ignore" means no limit. Relative
 * (+/-) and percentage limits, messages=, and rules for one mailbox say
 * nothing about the whole mailbox: they give 0. */
uint64_t userdb_text_quota(userdb_text t);

/* Fills out from one row. An empty, NULL, too long or NUL-holding maildir is
 * TEMPFAIL: delivering to a truncated or empty path would put mail in the
 * wrong place; deferring lets the operator fix the row. */
void userdb_result_fill(userdb_result *out, userdb_text maildir, userdb_text quota,
                        userdb_text active);

/* Fills out from one password_query row: a NULL password is NOTFOUND (no
 * password, no login), a too long or NUL-holding one TEMPFAIL. */
void passdb_result_fill(passdb_result *out, userdb_text password, userdb_text active);

/* Reconnect pacing of a networked driver: after a failure the next attempt
 * waits USERDB_BACKOFF_MIN_MS, doubling per failure up to
 * USERDB_BACKOFF_MAX_MS; lookups in between answer TEMPFAIL at once. */
#define USERDB_BACKOFF_MIN_MS 100
#define USERDB_BACKOFF_MAX_MS 5000

typedef struct userdb_backoff {
    uint64_t delay_ms;    /* 0 = last attempt succeeded */
    uint64_t retry_at_ms; /* monotonic; no attempt before it */
} userdb_backoff;

/* True while an attempt must wait (now_ms < retry_at_ms). */
bool userdb_backoff_waiting(const userdb_backoff *b, uint64_t now_ms);
void userdb_backoff_failed(userdb_backoff *b, uint64_t now_ms);
void userdb_backoff_reset(userdb_backoff *b);

/* A networked driver's connection health: the reconnect backoff, and whether
 * the server is known to be down (logged once, until it is back). */
typedef struct userdb_conn_state {
    userdb_backoff backoff;
    bool down;
} userdb_conn_state;

/* Opens the driver's connection: true when open, else false with a message
 * in err and nothing left open. */
typedef bool (*userdb_conn_open_fn)(void *ctx, char *err, size_t err_len);

/* For a driver that is not connected: when the backoff allows, calls open
 * and logs the change ("<name>: connected again", or the first failure).
 * True when the connection is open now. Called from the driver's thread. */
bool userdb_conn_reopen(userdb_conn_state *c, const char *name, userdb_conn_open_fn open,
                        void *ctx);

/* The server was lost (or never reached): TEMPFAIL until the backoff allows a
 * new attempt. The caller logs why and closes its connection. */
void userdb_conn_lost(userdb_conn_state *c);

#endif
