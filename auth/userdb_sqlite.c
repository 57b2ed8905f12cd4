/* auth/userdb_sqlite.c: the SQLite userdb driver.
 *
 * The operator writes a Dovecot-style user_query; values are never spliced
 * into SQL text: every %u/%n/%d becomes a bound parameter, so an address
 * like "o'brien@x" or "x' OR '1'='1@y" is just a key that does not match.
 * The file is opened read-only: sluice never writes the userdb. Any SQLite
 * error is TEMPFAIL (451, the sender retries) and drops the connection so
 * the next lookup starts clean, e.g. after the file was replaced. */
#include "auth/userdb_sqlite.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USERDB_SQLITE_BUSY_TIMEOUT_MS 2000

typedef struct userdb_sqlite_stmt {
    userdb_query q; /* q.sql NULL: this query is not configured */
    sqlite3_stmt *stmt;
    userdb_columns cols;
} userdb_sqlite_stmt;

typedef struct userdb_sqlite {
    userdb_driver base; /* first: the driver pointer is this struct */
    char *path;
    userdb_sqlite_stmt user;
    userdb_sqlite_stmt pass;
    sqlite3 *db; /* NULL after an error: reopened on the next lookup */
} userdb_sqlite;

static void userdb_sqlite_close(userdb_sqlite *s)
{
    sqlite3_finalize(s->user.stmt);
    s->user.stmt = NULL;
    sqlite3_finalize(s->pass.stmt);
    s->pass.stmt = NULL;
    sqlite3_close_v2(s->db);
    s->db = NULL;
}

static void userdb_sqlite_columns(userdb_sqlite_stmt *st)
{
    const char *names[64];
    int cols = sqlite3_column_count(st->stmt);
    size_t n = (size_t)SL_MIN(cols, (int)SL_ARRAY_LEN(names));
    for (size_t i = 0; i < n; i++) {
        names[i] = sqlite3_column_name(st->stmt, (int)i);
    }
    userdb_columns_map(names, n, &st->cols);
}

static bool userdb_sqlite_prepare(userdb_sqlite *s, userdb_sqlite_stmt *st, const char *what,
                                  char *err, size_t err_len)
{
    const char *tail = NULL;
    int rc = sqlite3_prepare_v3(s->db, st->q.sql, -1, SQLITE_PREPARE_PERSISTENT, &st->stmt, &tail);
    if (rc != SQLITE_OK || st->stmt == NULL) {
        /* The message names tables/columns of the query, never a value. */
        userdb_errf(err, err_len, "userdb sqlite: %s does not prepare: %s", what,
                          rc == SQLITE_OK ? "empty statement" : sqlite3_errmsg(s->db));
        return false;
    }
    tail += strspn(tail, " \t\r\n;");
    if (*tail != '\0') {
        userdb_errf(err, err_len, "userdb sqlite: %s must be one statement", what);
        return false;
    }
    if ((size_t)sqlite3_bind_parameter_count(st->stmt) != st->q.params_n) {
        userdb_errf(err, err_len, "userdb sqlite: %s must not hold SQL parameters of its own",
                          what);
        return false;
    }
    userdb_sqlite_columns(st);
    return true;
}

static bool userdb_sqlite_prepare_all(userdb_sqlite *s, char *err, size_t err_len)
{
    if (!userdb_sqlite_prepare(s, &s->user, "user_query", err, err_len)) {
        return false;
    }
    if (s->user.cols.maildir < 0) {
        userdb_errf(err, err_len,
                          "userdb sqlite: user_query returns no maildir, home or mail column");
        return false;
    }
    if (s->pass.q.sql == NULL) {
        return true;
    }
    if (!userdb_sqlite_prepare(s, &s->pass, "password_query", err, err_len)) {
        return false;
    }
    if (s->pass.cols.password < 0) {
        userdb_errf(err, err_len, "userdb sqlite: password_query returns no password column");
        return false;
    }
    return true;
}

/* Opens the file and prepares the statements; on failure leaves nothing open. */
static bool userdb_sqlite_open(userdb_sqlite *s, char *err, size_t err_len)
{
    SL_ASSERT(s->db == NULL);
    int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(s->path, &s->db, flags, NULL);
    if (rc != SQLITE_OK) {
        userdb_errf(err, err_len, "userdb sqlite: cannot open %s: %s", s->path,
                          sqlite3_errstr(rc));
        userdb_sqlite_close(s);
        return false;
    }
    sqlite3_busy_timeout(s->db, USERDB_SQLITE_BUSY_TIMEOUT_MS);
    if (!userdb_sqlite_prepare_all(s, err, err_len)) {
        userdb_sqlite_close(s);
        return false;
    }
    return true;
}

/* Column col of the current row; ptr NULL for SQL NULL or no such column. */
static userdb_text userdb_sqlite_text(sqlite3_stmt *stmt, int col)
{
    userdb_text t = {NULL, 0};
    if (col < 0 || sqlite3_column_type(stmt, col) == SQLITE_NULL) {
        return t;
    }
    t.ptr = (const char *)sqlite3_column_text(stmt, col);
    t.len = (size_t)sqlite3_column_bytes(stmt, col);
    return t;
}

/* Binds and steps st (opening the file first if an error closed it). On
 * SQLITE_ROW the row stays readable until userdb_sqlite_done(). */
static int userdb_sqlite_step(userdb_sqlite *s, userdb_sqlite_stmt *st, const char *user,
                              const char *localpart, const char *domain)
{
    SL_ASSERT(user != NULL);
    SL_ASSERT(localpart != NULL);
    SL_ASSERT(domain != NULL);
    if (s->db == NULL && !userdb_sqlite_open(s, NULL, 0)) {
        return SQLITE_CANTOPEN;
    }
    for (size_t i = 0; i < st->q.params_n; i++) {
        const char *v = userdb_param_value(st->q.params[i], user, localpart, domain);
        /* STATIC is safe: the statement is reset before the lookup returns. */
        int rc = sqlite3_bind_text(st->stmt, (int)i + 1, v, -1, SQLITE_STATIC);
        if (rc != SQLITE_OK) {
            return rc;
        }
    }
    return sqlite3_step(st->stmt);
}

/* Reset releases the read lock and drops the borrowed bindings; an error
 * drops the connection so the next lookup starts clean. */
static void userdb_sqlite_done(userdb_sqlite *s, userdb_sqlite_stmt *st, int rc)
{
    if (st->stmt != NULL) {
        sqlite3_reset(st->stmt);
        sqlite3_clear_bindings(st->stmt);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        userdb_sqlite_close(s);
    }
}

static int userdb_sqlite_lookup(userdb_driver *d, const char *user, const char *localpart,
                                const char *domain, userdb_result *out)
{
    userdb_sqlite *s = (userdb_sqlite *)d;
    SL_ASSERT(out != NULL);
    out->status = USERDB_TEMPFAIL;
    out->maildir[0] = '\0';
    out->quota_bytes = 0;
    int rc = userdb_sqlite_step(s, &s->user, user, localpart, domain);
    if (rc == SQLITE_ROW) {
        sqlite3_stmt *st = s->user.stmt;
        userdb_result_fill(out, userdb_sqlite_text(st, s->user.cols.maildir),
                           userdb_sqlite_text(st, s->user.cols.quota),
                           userdb_sqlite_text(st, s->user.cols.active));
    } else if (rc == SQLITE_DONE) {
        out->status = USERDB_NOTFOUND;
    }
    userdb_sqlite_done(s, &s->user, rc);
    return 0;
}

static int userdb_sqlite_passdb_lookup(userdb_driver *d, const char *user, const char *localpart,
                                       const char *domain, passdb_result *out)
{
    userdb_sqlite *s = (userdb_sqlite *)d;
    SL_ASSERT(out != NULL);
    out->status = USERDB_TEMPFAIL;
    out->password[0] = '\0';
    if (s->pass.q.sql == NULL) {
        return -ENOTSUP;
    }
    int rc = userdb_sqlite_step(s, &s->pass, user, localpart, domain);
    if (rc == SQLITE_ROW) {
        sqlite3_stmt *st = s->pass.stmt;
        passdb_result_fill(out, userdb_sqlite_text(st, s->pass.cols.password),
                           userdb_sqlite_text(st, s->pass.cols.active));
    } else if (rc == SQLITE_DONE) {
        out->status = USERDB_NOTFOUND;
    }
    userdb_sqlite_done(s, &s->pass, rc);
    return 0;
}

static void userdb_sqlite_destroy(userdb_driver *d)
{
    userdb_sqlite *s = (userdb_sqlite *)d;
    userdb_sqlite_close(s);
    userdb_query_deinit(&s->user.q);
    userdb_query_deinit(&s->pass.q);
    free(s->path);
    free(s);
}

static const userdb_driver_ops userdb_sqlite_ops = {
    .lookup = userdb_sqlite_lookup,
    .passdb_lookup = userdb_sqlite_passdb_lookup,
    .destroy = userdb_sqlite_destroy,
};

static bool userdb_sqlite_check_cfg(const userdb_config *cfg, char *err, size_t err_len)
{
    if (cfg->connect == NULL || cfg->connect[0] == '\0') {
        userdb_errf(err, err_len, "userdb sqlite: no database file (connect) configured");
        return false;
    }
    if (cfg->user_query == NULL || cfg->user_query[0] == '\0') {
        userdb_errf(err, err_len, "userdb sqlite: no user_query configured");
        return false;
    }
    return true;
}

userdb_driver *userdb_sqlite_new(const userdb_config *cfg, char *err, size_t err_len)
{
    SL_ASSERT(cfg != NULL);
    if (!userdb_sqlite_check_cfg(cfg, err, err_len)) {
        return NULL;
    }
    userdb_sqlite *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        abort();
    }
    s->base.ops = &userdb_sqlite_ops;
    s->path = strdup(cfg->connect);
    if (s->path == NULL) {
        abort();
    }
    bool has_pass = cfg->password_query != NULL && cfg->password_query[0] != '\0';
    bool ok = userdb_query_init(&s->user.q, cfg->user_query, USERDB_DIALECT_SQLITE, "sqlite",
                                "user_query", err, err_len);
    ok = ok && (!has_pass || userdb_query_init(&s->pass.q, cfg->password_query,
                                               USERDB_DIALECT_SQLITE, "sqlite",
                                               "password_query", err, err_len));
    if (ok && userdb_sqlite_open(s, err, err_len)) {
        return &s->base;
    }
    userdb_sqlite_destroy(&s->base);
    return NULL;
}
