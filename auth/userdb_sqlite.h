/* auth/userdb_sqlite.h: the SQLite userdb driver (the embedded default).
 * Reached through userdb_driver_new(); declared here so userdb.c can
 * dispatch to it and tests can name it. */
#ifndef SL_USERDB_SQLITE_H
#define SL_USERDB_SQLITE_H

#include "auth/userdb.h"

/* Open cfg->connect read-only and prepare cfg->user_query (and
 * cfg->password_query when set). Fails (NULL, a message in err) if the file
 * cannot be opened, a query has an unknown % escape, is not one statement,
 * does not prepare, or lacks its column (maildir / home / mail for
 * user_query, password for password_query). The driver is then used by one
 * thread at a time. */
userdb_driver *userdb_sqlite_new(const userdb_config *cfg, char *err, size_t err_len);

#endif
