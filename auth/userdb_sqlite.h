/* auth/userdb_sqlite.h: the SQLite userdb driver (the embedded default).
 * Reached through userdb_driver_new(); declared here so userdb.c can
 * dispatch to it and tests can name it. */
#ifndef SL_USERDB_SQLITE_H
#define SL_USERDB_SQLITE_H

#include "auth/userdb.h"

/* Most %u/%n/%d occurrences one user_query may hold. */
#define USERDB_SQLITE_PARAMS_MAX 16

/* Open cfg->connect read-only and prepare cfg->user_query. Fails (NULL, a
 * message in err) if the file cannot be opened, the query has an unknown %
 * escape, is not one statement, does not prepare, or returns no maildir /
 * home / mail column. The driver is then used by one thread at a time. */
userdb_driver *userdb_sqlite_new(const userdb_config *cfg, char *err, size_t err_len);

/* Rewrite a Dovecot-style query into SQL with one '?' per %u/%n/%d ('%u' in
 * quotes included; a quoted literal mixing text and escapes becomes a ||
 * concatenation). params_out receives 'u', 'n' or 'd' per '?', in order.
 * Returns the malloc'd SQL (caller frees) or NULL with a message in err. */
char *userdb_sqlite_convert_query(const char *query, char params_out[USERDB_SQLITE_PARAMS_MAX],
                                  size_t *params_n_out, char *err, size_t err_len);

#endif
