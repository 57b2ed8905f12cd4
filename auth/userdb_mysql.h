/* auth/userdb_mysql.h: the MariaDB/MySQL userdb driver (MariaDB
 * Connector/C). Reached through userdb_driver_new() with driver "mysql" or
 * "mariadb"; the connect string parser is declared for tests. */
#ifndef SL_USERDB_MYSQL_H
#define SL_USERDB_MYSQL_H

#include "auth/userdb.h"

/* A parsed connect string. Empty text = not given (the library default:
 * host "localhost" means the UNIX socket, as in the mysql client). */
typedef struct userdb_mysql_conninfo {
    char host[256];
    char user[256];
    char password[256];
    char dbname[256];
    char unix_socket[108]; /* sun_path */
    unsigned port;         /* 0 = default (3306) */
} userdb_mysql_conninfo;

/* Parse a connect string the way Dovecot's dovecot-sql.conf.ext writes it:
 * space-separated key=value with the keys host, port, dbname, user,
 * password and unix_socket. A value may be single-quoted ('a b', with \' and
 * \\ inside) to hold spaces. Fails (false, a message naming the key but
 * never a value) on an unknown or repeated key, a missing '=', an unclosed
 * quote, a value too long, or a port outside 1..65535. Pure. */
bool userdb_mysql_conninfo_parse(const char *s, userdb_mysql_conninfo *out, char *err,
                                 size_t err_len);

/* Check the connect string and the queries, then connect and prepare. Fails
 * (NULL, a message in err) on a bad connect string or % escape or, when the
 * server answers, a query it rejects or that lacks its column. A server
 * that cannot be reached is no failure: lookups answer TEMPFAIL and
 * reconnect with backoff. Timeouts go to the library in whole seconds
 * (rounded up). Used by one thread at a time. */
userdb_driver *userdb_mysql_new(const userdb_config *cfg, char *err, size_t err_len);

#endif
