/* auth/userdb_pgsql.h: the PostgreSQL userdb driver (libpq). Reached
 * through userdb_driver_new() with driver "pgsql". */
#ifndef SL_USERDB_PGSQL_H
#define SL_USERDB_PGSQL_H

#include "auth/userdb.h"

/* cfg->connect is a libpq connection string as Dovecot admins write it
 * ("host=127.0.0.1 port=5432 dbname=mail user=x password=y", or a
 * postgresql:// URI), handed to libpq unchanged. Fails (NULL, a message in
 * err) on a malformed connection string, a bad % escape, or, when the server
 * answers, a query it rejects or that lacks its column. A server that cannot
 * be reached is no failure: lookups answer TEMPFAIL and reconnect with
 * backoff. Used by one thread at a time. */
userdb_driver *userdb_pgsql_new(const userdb_config *cfg, char *err, size_t err_len);

#endif
