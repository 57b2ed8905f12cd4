/* auth/userdb_mysql.c: the MariaDB/MySQL userdb driver (Connector/C).
 *
 * One connection per driver, so one per resolver thread. The queries are
 * server-side prepared statements with every %u/%n/%d as a '?' parameter:
 * values are never spliced into SQL text. The library bounds each step in
 * whole seconds (connect, read and write timeouts); MariaDB also stops a
 * statement at max_statement_time. Any failure drops the connection and
 * answers TEMPFAIL; a later lookup reconnects (and prepares again) once the
 * backoff allows it. The library's own reconnect stays off: it would
 * silently lose the prepared statements. */
#include "auth/userdb_mysql.h"

#include "core/log.h"

#include <errno.h>
#include <errmsg.h>
#include <mysql.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USERDB_MYSQL_MSG_BYTES 512
/* Room for one result value. Larger than any maildir or password sluice
 * keeps, so a value that does not fit is one that must be refused anyway. */
#define USERDB_MYSQL_VALUE_BYTES 1024
#define USERDB_MYSQL_COLUMNS_MAX 64

_Static_assert(USERDB_MYSQL_VALUE_BYTES > USERDB_MAILDIR_BYTES_MAX, "value buffer too small");
_Static_assert(USERDB_MYSQL_VALUE_BYTES > USERDB_PASSWORD_BYTES_MAX, "value buffer too small");

/* ---- connect string ------------------------------------------------------- */

typedef struct userdb_mysql_key {
    const char *name;
    size_t offset; /* of the char array in userdb_mysql_conninfo; port: SIZE_MAX */
    size_t size;
} userdb_mysql_key;

#define USERDB_MYSQL_KEY(k)                                                                      \
    {#k, offsetof(userdb_mysql_conninfo, k), sizeof(((userdb_mysql_conninfo *)0)->k)}

static const userdb_mysql_key userdb_mysql_keys[] = {
    USERDB_MYSQL_KEY(host),     USERDB_MYSQL_KEY(user),        USERDB_MYSQL_KEY(password),
    USERDB_MYSQL_KEY(dbname),   USERDB_MYSQL_KEY(unix_socket), {"port", SIZE_MAX, 6},
};

#define USERDB_MYSQL_KEYS_KNOWN "host, port, dbname, user, password, unix_socket"

static bool userdb_mysql_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Reads the value at s[*i] into out (at most out_len bytes with the NUL):
 * a single-quoted one with \x escapes, or a run up to the next space. */
static bool userdb_mysql_value(const char *s, size_t *i, char *out, size_t out_len,
                               bool *too_long_out)
{
    size_t n = 0;
    bool quoted = s[*i] == '\'';
    *too_long_out = false;
    if (quoted) {
        (*i)++;
    }
    for (; s[*i] != '\0'; (*i)++) {
        char c = s[*i];
        if (quoted && c == '\'') {
            break;
        }
        if (!quoted && userdb_mysql_space(c)) {
            break;
        }
        if (quoted && c == '\\' && s[*i + 1] != '\0') {
            c = s[++*i];
        }
        if (n + 1 >= out_len) {
            *too_long_out = true;
            return false;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    if (quoted && s[*i] != '\'') {
        return false;
    }
    *i += quoted ? 1 : 0;
    return true;
}

static bool userdb_mysql_port(const char *v, unsigned *port_out)
{
    unsigned long p = 0;
    if (v[0] == '\0') {
        return false;
    }
    for (size_t i = 0; v[i] != '\0'; i++) {
        if (v[i] < '0' || v[i] > '9' || p > 65535) {
            return false;
        }
        p = p * 10 + (unsigned long)(v[i] - '0');
    }
    if (p < 1 || p > 65535) {
        return false;
    }
    *port_out = (unsigned)p;
    return true;
}

/* Stores value v under key k. */
static bool userdb_mysql_set(userdb_mysql_conninfo *out, const userdb_mysql_key *k, const char *v,
                             char *err, size_t err_len)
{
    if (k->offset == SIZE_MAX) {
        if (!userdb_mysql_port(v, &out->port)) {
            userdb_errf(err, err_len, "connect string: port must be a number from 1 to 65535");
            return false;
        }
        return true;
    }
    char *field = (char *)out + k->offset;
    SL_ASSERT(strlen(v) < k->size);
    memcpy(field, v, strlen(v) + 1);
    return true;
}

static const userdb_mysql_key *userdb_mysql_find_key(const char *name, size_t len)
{
    for (size_t k = 0; k < SL_ARRAY_LEN(userdb_mysql_keys); k++) {
        const char *kn = userdb_mysql_keys[k].name;
        if (strlen(kn) == len && memcmp(kn, name, len) == 0) {
            return &userdb_mysql_keys[k];
        }
    }
    return NULL;
}

/* Parses one key=value pair at s[*i]; seen marks the keys already given. */
static bool userdb_mysql_pair(const char *s, size_t *i, userdb_mysql_conninfo *out, bool *seen,
                              char *err, size_t err_len)
{
    size_t key_len = 0;
    while (s[*i + key_len] != '\0' && s[*i + key_len] != '=' &&
           !userdb_mysql_space(s[*i + key_len])) {
        key_len++;
    }
    const char *key = s + *i;
    if (s[*i + key_len] != '=') {
        userdb_errf(err, err_len, "connect string: expected key=value at \"%.*s\"",
                    (int)SL_MIN(key_len, 32), key);
        return false;
    }
    const userdb_mysql_key *k = userdb_mysql_find_key(key, key_len);
    if (k == NULL) {
        userdb_errf(err, err_len, "connect string: unknown key \"%.*s\" (known: %s)",
                    (int)SL_MIN(key_len, 32), key, USERDB_MYSQL_KEYS_KNOWN);
        return false;
    }
    size_t idx = (size_t)(k - userdb_mysql_keys);
    if (seen[idx]) {
        userdb_errf(err, err_len, "connect string: %s given twice (one server per driver)",
                    k->name);
        return false;
    }
    seen[idx] = true;
    *i += key_len + 1;
    char v[256];
    bool too_long = false;
    if (!userdb_mysql_value(s, i, v, SL_MIN(sizeof(v), k->size), &too_long)) {
        userdb_errf(err, err_len, "connect string: %s %s", k->name,
                    too_long ? "is too long" : "has an unclosed quote");
        return false;
    }
    return userdb_mysql_set(out, k, v, err, err_len);
}

bool userdb_mysql_conninfo_parse(const char *s, userdb_mysql_conninfo *out, char *err,
                                 size_t err_len)
{
    SL_ASSERT(s != NULL);
    SL_ASSERT(out != NULL);
    bool seen[SL_ARRAY_LEN(userdb_mysql_keys)] = {false};
    memset(out, 0, sizeof(*out));
    size_t i = 0;
    for (;;) {
        while (userdb_mysql_space(s[i])) {
            i++;
        }
        if (s[i] == '\0') {
            return true;
        }
        if (!userdb_mysql_pair(s, &i, out, seen, err, err_len)) {
            return false;
        }
    }
}

/* ---- driver ----------------------------------------------------------------- */

typedef struct userdb_mysql_stmt {
    const char *what; /* of the config key, for messages */
    userdb_query q;   /* q.sql NULL: not configured */
    MYSQL_STMT *stmt; /* NULL while disconnected */
    userdb_columns cols;
    size_t cols_n;
    MYSQL_BIND res[USERDB_MYSQL_COLUMNS_MAX];
    unsigned long lens[USERDB_MYSQL_COLUMNS_MAX];
    my_bool nulls[USERDB_MYSQL_COLUMNS_MAX];
    my_bool errors[USERDB_MYSQL_COLUMNS_MAX];
    char *values; /* cols_n * USERDB_MYSQL_VALUE_BYTES */
} userdb_mysql_stmt;

typedef struct userdb_mysql {
    userdb_driver base; /* first: the driver pointer is this struct */
    userdb_mysql_conninfo ci;
    userdb_mysql_stmt user;
    userdb_mysql_stmt pass;
    uint64_t query_timeout_ms;
    uint64_t connect_timeout_ms;
    MYSQL *db; /* NULL while disconnected */
    userdb_conn_state health;
} userdb_mysql;

typedef enum userdb_mysql_open_rc {
    USERDB_MYSQL_OPEN_OK,
    USERDB_MYSQL_OPEN_DOWN,
    USERDB_MYSQL_OPEN_BAD, /* the server refused a query: a configuration error */
} userdb_mysql_open_rc;

/* Client-side errors (CR_*, 2000..2999) are about the connection; the
 * server's own codes lie outside that range. */
static bool userdb_mysql_server_error(unsigned int code)
{
    return code != 0 && (code < 2000 || code >= 3000);
}

static void userdb_mysql_stmt_close(userdb_mysql_stmt *st)
{
    if (st->stmt != NULL) {
        mysql_stmt_close(st->stmt);
        st->stmt = NULL;
    }
    free(st->values);
    st->values = NULL;
    st->cols_n = 0;
}

static void userdb_mysql_close(userdb_mysql *s)
{
    userdb_mysql_stmt_close(&s->user);
    userdb_mysql_stmt_close(&s->pass);
    if (s->db != NULL) {
        mysql_close(s->db);
        s->db = NULL;
    }
}

static unsigned int userdb_mysql_secs(uint64_t ms)
{
    uint64_t s = (ms + 999) / 1000;
    return (unsigned int)SL_MAX(SL_MIN(s, (uint64_t)86400), (uint64_t)1);
}

static const char *userdb_mysql_opt(const char *v)
{
    return v[0] != '\0' ? v : NULL;
}

static bool userdb_mysql_connect(userdb_mysql *s, char *err, size_t err_len)
{
    SL_ASSERT(s->db == NULL);
    s->db = mysql_init(NULL);
    if (s->db == NULL) {
        abort(); /* the library could not allocate: out of memory */
    }
    unsigned int connect_s = userdb_mysql_secs(s->connect_timeout_ms);
    unsigned int query_s = userdb_mysql_secs(s->query_timeout_ms);
    my_bool reconnect = 0;
    mysql_options(s->db, MYSQL_OPT_CONNECT_TIMEOUT, &connect_s);
    mysql_options(s->db, MYSQL_OPT_READ_TIMEOUT, &query_s);
    mysql_options(s->db, MYSQL_OPT_WRITE_TIMEOUT, &query_s);
    mysql_options(s->db, MYSQL_OPT_RECONNECT, &reconnect);
    mysql_options(s->db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    const userdb_mysql_conninfo *ci = &s->ci;
    if (mysql_real_connect(s->db, userdb_mysql_opt(ci->host), userdb_mysql_opt(ci->user),
                           userdb_mysql_opt(ci->password), userdb_mysql_opt(ci->dbname),
                           ci->port, userdb_mysql_opt(ci->unix_socket), 0) == NULL) {
        userdb_errf(err, err_len, "cannot connect: %s", mysql_error(s->db));
        return false;
    }
    /* MariaDB stops a statement that runs past the query timeout; MySQL
     * has no such variable and answers an error, which is harmless. */
    char sql[80];
    snprintf(sql, sizeof(sql), "SET SESSION max_statement_time = %llu.%03llu",
             (unsigned long long)(s->query_timeout_ms / 1000),
             (unsigned long long)(s->query_timeout_ms % 1000));
    if (mysql_query(s->db, sql) != 0 && !userdb_mysql_server_error(mysql_errno(s->db))) {
        userdb_errf(err, err_len, "set max_statement_time: %s", mysql_error(s->db));
        return false;
    }
    return true;
}

/* Binds every result column as text into st->values. */
static bool userdb_mysql_bind_result(userdb_mysql_stmt *st, MYSQL_RES *meta, char *err,
                                     size_t err_len)
{
    unsigned int n = mysql_num_fields(meta);
    MYSQL_FIELD *fields = mysql_fetch_fields(meta);
    const char *names[USERDB_MYSQL_COLUMNS_MAX];
    if (n == 0 || n > USERDB_MYSQL_COLUMNS_MAX) {
        userdb_errf(err, err_len, "%s must return 1 to %d columns", st->what,
                    USERDB_MYSQL_COLUMNS_MAX);
        return false;
    }
    st->cols_n = n;
    st->values = calloc(n, USERDB_MYSQL_VALUE_BYTES);
    if (st->values == NULL) {
        abort();
    }
    memset(st->res, 0, sizeof(st->res));
    for (unsigned int i = 0; i < n; i++) {
        names[i] = fields[i].name;
        st->res[i].buffer_type = MYSQL_TYPE_STRING;
        st->res[i].buffer = st->values + (size_t)i * USERDB_MYSQL_VALUE_BYTES;
        st->res[i].buffer_length = USERDB_MYSQL_VALUE_BYTES;
        st->res[i].length = &st->lens[i];
        st->res[i].is_null = &st->nulls[i];
        st->res[i].error = &st->errors[i];
    }
    userdb_columns_map(names, n, &st->cols);
    if (mysql_stmt_bind_result(st->stmt, st->res) != 0) {
        userdb_errf(err, err_len, "%s: bind result: %s", st->what, mysql_stmt_error(st->stmt));
        return false;
    }
    return true;
}

/* Checks the parameter count and the column the query exists for. */
static bool userdb_mysql_check_stmt(userdb_mysql_stmt *st, char *err, size_t err_len)
{
    if (mysql_stmt_param_count(st->stmt) != st->q.params_n) {
        userdb_errf(err, err_len, "%s must not hold SQL parameters of its own", st->what);
        return false;
    }
    bool is_user = strcmp(st->what, "user_query") == 0;
    if (is_user && st->cols.maildir < 0) {
        userdb_errf(err, err_len, "user_query returns no maildir, home or mail column");
        return false;
    }
    if (!is_user && st->cols.password < 0) {
        userdb_errf(err, err_len, "password_query returns no password column");
        return false;
    }
    return true;
}

static userdb_mysql_open_rc userdb_mysql_prepare(userdb_mysql *s, userdb_mysql_stmt *st,
                                                 char *err, size_t err_len)
{
    st->stmt = mysql_stmt_init(s->db);
    if (st->stmt == NULL) {
        userdb_errf(err, err_len, "%s: %s", st->what, mysql_error(s->db));
        return USERDB_MYSQL_OPEN_DOWN;
    }
    if (mysql_stmt_prepare(st->stmt, st->q.sql, strlen(st->q.sql)) != 0) {
        userdb_errf(err, err_len, "%s does not prepare: %s", st->what, mysql_stmt_error(st->stmt));
        return userdb_mysql_server_error(mysql_stmt_errno(st->stmt)) ? USERDB_MYSQL_OPEN_BAD
                                                                      : USERDB_MYSQL_OPEN_DOWN;
    }
    MYSQL_RES *meta = mysql_stmt_result_metadata(st->stmt);
    if (meta == NULL) {
        userdb_errf(err, err_len, "%s returns no rows (not a SELECT?)", st->what);
        return USERDB_MYSQL_OPEN_BAD;
    }
    bool ok = userdb_mysql_bind_result(st, meta, err, err_len);
    mysql_free_result(meta);
    if (!ok || !userdb_mysql_check_stmt(st, err, err_len)) {
        return USERDB_MYSQL_OPEN_BAD;
    }
    return USERDB_MYSQL_OPEN_OK;
}

/* Connects and prepares; on failure nothing stays open. */
static userdb_mysql_open_rc userdb_mysql_open(userdb_mysql *s, char *err, size_t err_len)
{
    userdb_mysql_open_rc rc = USERDB_MYSQL_OPEN_DOWN;
    if (userdb_mysql_connect(s, err, err_len)) {
        rc = userdb_mysql_prepare(s, &s->user, err, err_len);
        if (rc == USERDB_MYSQL_OPEN_OK && s->pass.q.sql != NULL) {
            rc = userdb_mysql_prepare(s, &s->pass, err, err_len);
        }
    }
    if (rc != USERDB_MYSQL_OPEN_OK) {
        userdb_mysql_close(s);
    }
    return rc;
}

static bool userdb_mysql_open_cb(void *ctx, char *err, size_t err_len)
{
    return userdb_mysql_open(ctx, err, err_len) == USERDB_MYSQL_OPEN_OK;
}

/* True when connected, reconnecting first if the backoff allows it. */
static bool userdb_mysql_ready(userdb_mysql *s)
{
    if (s->db != NULL) {
        return true;
    }
    return userdb_conn_reopen(&s->health, "userdb mysql", userdb_mysql_open_cb, s);
}

/* Binds the address and runs st. 1: a row is in the bound buffers, 0: no
 * row, -1: an error (message in err). */
static int userdb_mysql_exec(userdb_mysql_stmt *st, const char *user, const char *localpart,
                             const char *domain)
{
    MYSQL_BIND params[USERDB_QUERY_PARAMS_MAX];
    unsigned long lens[USERDB_QUERY_PARAMS_MAX];
    memset(params, 0, sizeof(params));
    for (size_t i = 0; i < st->q.params_n; i++) {
        const char *v = userdb_param_value(st->q.params[i], user, localpart, domain);
        lens[i] = (unsigned long)strlen(v);
        params[i].buffer_type = MYSQL_TYPE_STRING;
        params[i].buffer = (void *)v; /* read only: the library sends it */
        params[i].buffer_length = lens[i];
        params[i].length = &lens[i];
    }
    if (mysql_stmt_bind_param(st->stmt, params) != 0 || mysql_stmt_execute(st->stmt) != 0 ||
        mysql_stmt_store_result(st->stmt) != 0) {
        return -1;
    }
    int rc = mysql_stmt_fetch(st->stmt);
    if (rc == 0 || rc == MYSQL_DATA_TRUNCATED) {
        return 1;
    }
    return rc == MYSQL_NO_DATA ? 0 : -1;
}

/* Runs st for the address: 1 row, 0 none, -1 TEMPFAIL (not connected, or
 * an error, which also drops the connection). After 1 or 0 the caller
 * calls mysql_stmt_free_result(). */
static int userdb_mysql_run(userdb_mysql *s, userdb_mysql_stmt *st, const char *user,
                            const char *localpart, const char *domain)
{
    SL_ASSERT(user != NULL);
    SL_ASSERT(localpart != NULL);
    SL_ASSERT(domain != NULL);
    bool was_open = s->db != NULL;
    if (!userdb_mysql_ready(s)) {
        return -1;
    }
    int rc = userdb_mysql_exec(st, user, localpart, domain);
    unsigned err = rc < 0 ? mysql_stmt_errno(st->stmt) : 0;
    if (rc < 0 && was_open && (err == CR_SERVER_GONE_ERROR || err == CR_SERVER_LOST)) {
        /* The server closed a connection that sat idle (a restart,
         * wait_timeout): one fresh connection now, rather than a 451 for a
         * database that is up. A dead server fails that connect at once. */
        sl_info("userdb mysql: %s: the connection was closed (%s); reconnecting now", st->what,
                mysql_stmt_error(st->stmt));
        userdb_mysql_close(s);
        return userdb_mysql_run(s, st, user, localpart, domain);
    }
    if (rc < 0) {
        sl_warn("userdb mysql: %s failed, reconnecting: %s", st->what, mysql_stmt_error(st->stmt));
        userdb_mysql_close(s);
        userdb_conn_lost(&s->health);
    }
    return rc;
}

/* Column col of the fetched row. A value longer than its buffer keeps a
 * length of the whole buffer, which is too long for any field that has a
 * limit, so it is refused, never truncated. */
static userdb_text userdb_mysql_text(const userdb_mysql_stmt *st, int col)
{
    userdb_text t = {NULL, 0};
    if (col < 0 || (size_t)col >= st->cols_n || st->nulls[col]) {
        return t;
    }
    t.ptr = st->values + (size_t)col * USERDB_MYSQL_VALUE_BYTES;
    t.len = SL_MIN(st->lens[col], (unsigned long)USERDB_MYSQL_VALUE_BYTES);
    return t;
}

static int userdb_mysql_lookup(userdb_driver *d, const char *user, const char *localpart,
                               const char *domain, userdb_result *out)
{
    userdb_mysql *s = (userdb_mysql *)d;
    SL_ASSERT(out != NULL);
    out->status = USERDB_TEMPFAIL;
    out->maildir[0] = '\0';
    out->quota_bytes = 0;
    userdb_mysql_stmt *st = &s->user;
    int rc = userdb_mysql_run(s, st, user, localpart, domain);
    if (rc < 0) {
        return 0;
    }
    if (rc == 0) {
        out->status = USERDB_NOTFOUND;
    } else {
        userdb_result_fill(out, userdb_mysql_text(st, st->cols.maildir),
                           userdb_mysql_text(st, st->cols.quota),
                           userdb_mysql_text(st, st->cols.active));
    }
    mysql_stmt_free_result(st->stmt);
    return 0;
}

static int userdb_mysql_passdb_lookup(userdb_driver *d, const char *user, const char *localpart,
                                      const char *domain, passdb_result *out)
{
    userdb_mysql *s = (userdb_mysql *)d;
    SL_ASSERT(out != NULL);
    out->status = USERDB_TEMPFAIL;
    out->password[0] = '\0';
    userdb_mysql_stmt *st = &s->pass;
    if (st->q.sql == NULL) {
        return -ENOTSUP;
    }
    int rc = userdb_mysql_run(s, st, user, localpart, domain);
    if (rc < 0) {
        return 0;
    }
    if (rc == 0) {
        out->status = USERDB_NOTFOUND;
    } else {
        passdb_result_fill(out, userdb_mysql_text(st, st->cols.password),
                           userdb_mysql_text(st, st->cols.active));
    }
    /* The password stays in the value buffer until the next fetch. */
    explicit_bzero(st->values, st->cols_n * USERDB_MYSQL_VALUE_BYTES);
    mysql_stmt_free_result(st->stmt);
    return 0;
}

static void userdb_mysql_destroy(userdb_driver *d)
{
    userdb_mysql *s = (userdb_mysql *)d;
    userdb_mysql_close(s);
    userdb_query_deinit(&s->user.q);
    userdb_query_deinit(&s->pass.q);
    explicit_bzero(&s->ci, sizeof(s->ci));
    free(s);
}

static const userdb_driver_ops userdb_mysql_ops = {
    .lookup = userdb_mysql_lookup,
    .passdb_lookup = userdb_mysql_passdb_lookup,
    .destroy = userdb_mysql_destroy,
};

/* The library's global setup is not thread-safe; drivers are created on
 * the main thread, before resolver threads use them. */
static pthread_once_t userdb_mysql_once = PTHREAD_ONCE_INIT;

static void userdb_mysql_library_init(void)
{
    if (mysql_library_init(0, NULL, NULL) != 0) {
        abort();
    }
}

static bool userdb_mysql_init_queries(userdb_mysql *s, const userdb_config *cfg, char *err,
                                      size_t err_len)
{
    if (cfg->user_query == NULL || cfg->user_query[0] == '\0') {
        userdb_errf(err, err_len, "userdb mysql: no user_query configured");
        return false;
    }
    bool has_pass = cfg->password_query != NULL && cfg->password_query[0] != '\0';
    if (!userdb_query_init(&s->user.q, cfg->user_query, USERDB_DIALECT_MYSQL, "mysql",
                           "user_query", err, err_len)) {
        return false;
    }
    return !has_pass || userdb_query_init(&s->pass.q, cfg->password_query, USERDB_DIALECT_MYSQL,
                                          "mysql", "password_query", err, err_len);
}

static userdb_mysql *userdb_mysql_alloc(const userdb_config *cfg)
{
    userdb_mysql *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        abort();
    }
    s->base.ops = &userdb_mysql_ops;
    s->user.what = "user_query";
    s->pass.what = "password_query";
    s->query_timeout_ms =
        cfg->query_timeout_ms != 0 ? cfg->query_timeout_ms : USERDB_QUERY_TIMEOUT_MS_DEFAULT;
    s->connect_timeout_ms = cfg->connect_timeout_ms != 0 ? cfg->connect_timeout_ms
                                                         : USERDB_CONNECT_TIMEOUT_MS_DEFAULT;
    return s;
}

userdb_driver *userdb_mysql_new(const userdb_config *cfg, char *err, size_t err_len)
{
    SL_ASSERT(cfg != NULL);
    pthread_once(&userdb_mysql_once, userdb_mysql_library_init);
    userdb_mysql *s = userdb_mysql_alloc(cfg);
    char msg[USERDB_MYSQL_MSG_BYTES];
    bool given = cfg->connect != NULL && cfg->connect[0] != '\0';
    bool ok = given && userdb_mysql_conninfo_parse(cfg->connect, &s->ci, msg, sizeof(msg));
    if (!ok) {
        userdb_errf(err, err_len, "userdb mysql: %s",
                    given ? msg : "no connect string configured");
    }
    if (!ok || !userdb_mysql_init_queries(s, cfg, err, err_len)) {
        userdb_mysql_destroy(&s->base);
        return NULL;
    }
    userdb_mysql_open_rc rc = userdb_mysql_open(s, msg, sizeof(msg));
    if (rc == USERDB_MYSQL_OPEN_BAD) {
        userdb_errf(err, err_len, "userdb mysql: %s", msg);
        userdb_mysql_destroy(&s->base);
        return NULL;
    }
    if (rc == USERDB_MYSQL_OPEN_DOWN) {
        sl_warn("userdb mysql: %s (lookups answer TEMPFAIL until it is reachable)", msg);
        userdb_conn_lost(&s->health);
    }
    return &s->base;
}
