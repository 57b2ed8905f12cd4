/* auth/userdb_sqlite.c: the SQLite userdb driver.
 *
 * The operator writes a Dovecot-style user_query; values are never spliced
 * into SQL text: every %u/%n/%d becomes a bound parameter, so an address
 * like "o'brien@x" or "x' OR '1'='1@y" is just a key that does not match.
 * The file is opened read-only: sluice never writes the userdb. Any SQLite
 * error is TEMPFAIL (451, the sender retries) and drops the connection so
 * the next lookup starts clean, e.g. after the file was replaced. */
#include "auth/userdb_sqlite.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define USERDB_SQLITE_BUSY_TIMEOUT_MS 2000

typedef struct userdb_sqlite {
    userdb_driver base; /* first: the driver pointer is this struct */
    char *path;
    char *sql;
    char params[USERDB_SQLITE_PARAMS_MAX];
    size_t params_n;
    sqlite3 *db; /* NULL after an error: reopened on the next lookup */
    sqlite3_stmt *stmt;
    int col_maildir;
    int col_quota;  /* -1 if the query has none */
    int col_active; /* -1 if the query has none */
} userdb_sqlite;

/* A growable text buffer for the query rewrite; aborts on OOM. */
typedef struct userdb_sqlite_buf {
    char *ptr;
    size_t len;
    size_t cap;
} userdb_sqlite_buf;

__attribute__((format(printf, 3, 4))) static void userdb_sqlite_err(char *err, size_t err_len,
                                                                    const char *fmt, ...)
{
    if (err == NULL || err_len == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

static void *userdb_sqlite_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL) {
        abort();
    }
    return q;
}

static void userdb_sqlite_buf_put(userdb_sqlite_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = SL_MAX(b->cap * 2, b->len + n + 1);
        b->ptr = userdb_sqlite_xrealloc(b->ptr, b->cap);
    }
    memcpy(b->ptr + b->len, s, n);
    b->len += n;
    b->ptr[b->len] = '\0';
}

static void userdb_sqlite_buf_putc(userdb_sqlite_buf *b, char c)
{
    userdb_sqlite_buf_put(b, &c, 1);
}

/* Parses the escape at q[0] == '%'. Sets *param_out to 'u'/'n'/'d', or to
 * '%' for "%%". False (with a message) for anything else. */
static bool userdb_sqlite_escape(const char *q, char *param_out, char *err, size_t err_len)
{
    char c = q[1];
    if (c == 'u' || c == 'n' || c == 'd' || c == '%') {
        *param_out = c;
        return true;
    }
    if (c == '\0') {
        userdb_sqlite_err(err, err_len, "userdb sqlite: user_query ends in a lone '%%'");
    } else if (c > ' ' && c < 0x7f) {
        userdb_sqlite_err(err, err_len,
                          "userdb sqlite: user_query has unsupported escape '%%%c' "
                          "(supported: %%u %%n %%d %%%%)",
                          c);
    } else {
        userdb_sqlite_err(err, err_len,
                          "userdb sqlite: user_query has an unsupported escape after '%%'");
    }
    return false;
}

static bool userdb_sqlite_add_param(char *params, size_t *params_n, char p, char *err,
                                    size_t err_len)
{
    if (*params_n >= USERDB_SQLITE_PARAMS_MAX) {
        userdb_sqlite_err(err, err_len, "userdb sqlite: user_query has more than %d escapes",
                          USERDB_SQLITE_PARAMS_MAX);
        return false;
    }
    params[(*params_n)++] = p;
    return true;
}

/* Separates pieces of a rewritten literal with the SQL concatenation. */
static void userdb_sqlite_sep(userdb_sqlite_buf *out, size_t *pieces)
{
    if ((*pieces)++ > 0) {
        userdb_sqlite_buf_put(out, " || ", 4);
    }
}

/* Emits the text collected so far inside a quoted literal as 'text'
 * (re-escaping quotes) and empties it. */
static void userdb_sqlite_flush_text(userdb_sqlite_buf *out, userdb_sqlite_buf *text,
                                     size_t *pieces)
{
    if (text->len == 0) {
        return;
    }
    userdb_sqlite_sep(out, pieces);
    userdb_sqlite_buf_putc(out, '\'');
    for (size_t i = 0; i < text->len; i++) {
        if (text->ptr[i] == '\'') {
            userdb_sqlite_buf_putc(out, '\'');
        }
        userdb_sqlite_buf_putc(out, text->ptr[i]);
    }
    userdb_sqlite_buf_putc(out, '\'');
    text->len = 0;
}

/* Finds the end of the quoted literal starting at q[0] == '\'' ('' is an
 * escaped quote). Returns the index of the closing quote, or 0 if none. */
static size_t userdb_sqlite_literal_end(const char *q)
{
    size_t i = 1;
    for (; q[i] != '\0'; i++) {
        if (q[i] != '\'') {
            continue;
        }
        if (q[i + 1] != '\'') {
            return i;
        }
        i++;
    }
    return 0;
}

/* Rewrites the literal q[0..end] (quotes included). A literal that is one
 * escape becomes "?"; one mixing text and escapes becomes ('a' || ? || 'b'),
 * since a '?' inside quotes would be text, not a parameter. */
static bool userdb_sqlite_literal(const char *q, size_t end, userdb_sqlite_buf *out, char *params,
                                  size_t *params_n, char *err, size_t err_len)
{
    userdb_sqlite_buf text = {0};
    userdb_sqlite_buf body = {0};
    size_t pieces = 0;
    bool ok = true;
    for (size_t i = 1; i < end && ok; i++) {
        char p = 0;
        if (q[i] == '\'') {
            userdb_sqlite_buf_putc(&text, q[i++]); /* '' is one quote */
        } else if (q[i] != '%') {
            userdb_sqlite_buf_putc(&text, q[i]);
        } else if ((ok = userdb_sqlite_escape(q + i++, &p, err, err_len)) && p == '%') {
            userdb_sqlite_buf_putc(&text, '%');
        } else if (ok && (ok = userdb_sqlite_add_param(params, params_n, p, err, err_len))) {
            userdb_sqlite_flush_text(&body, &text, &pieces);
            userdb_sqlite_sep(&body, &pieces);
            userdb_sqlite_buf_putc(&body, '?');
        }
    }
    userdb_sqlite_flush_text(&body, &text, &pieces);
    if (pieces == 0) {
        userdb_sqlite_buf_put(out, "''", 2);
    } else if (pieces == 1) {
        userdb_sqlite_buf_put(out, body.ptr, body.len);
    } else {
        userdb_sqlite_buf_putc(out, '(');
        userdb_sqlite_buf_put(out, body.ptr, body.len);
        userdb_sqlite_buf_putc(out, ')');
    }
    free(text.ptr);
    free(body.ptr);
    return ok;
}

char *userdb_sqlite_convert_query(const char *query, char params_out[USERDB_SQLITE_PARAMS_MAX],
                                  size_t *params_n_out, char *err, size_t err_len)
{
    SL_ASSERT(query != NULL);
    SL_ASSERT(params_n_out != NULL);
    userdb_sqlite_buf out = {0};
    userdb_sqlite_buf_put(&out, "", 0);
    *params_n_out = 0;
    bool ok = true;
    for (size_t i = 0; query[i] != '\0' && ok;) {
        char p = 0;
        if (query[i] == '\'') {
            size_t end = userdb_sqlite_literal_end(query + i);
            if (end == 0) {
                userdb_sqlite_err(err, err_len, "userdb sqlite: user_query has an unclosed quote");
                ok = false;
                break;
            }
            ok =
                userdb_sqlite_literal(query + i, end, &out, params_out, params_n_out, err, err_len);
            i += end + 1;
        } else if (query[i] != '%') {
            userdb_sqlite_buf_putc(&out, query[i++]);
        } else if ((ok = userdb_sqlite_escape(query + i, &p, err, err_len))) {
            userdb_sqlite_buf_putc(&out, p == '%' ? '%' : '?');
            ok = p == '%' || userdb_sqlite_add_param(params_out, params_n_out, p, err, err_len);
            i += 2;
        }
    }
    if (!ok) {
        free(out.ptr);
        return NULL;
    }
    return out.ptr;
}

/* Finds the first column named like one of names (case-insensitive), in the
 * order of names, so "maildir" wins over "home" wins over "mail". */
static int userdb_sqlite_column(sqlite3_stmt *stmt, const char *const *names, size_t names_n)
{
    int cols = sqlite3_column_count(stmt);
    for (size_t n = 0; n < names_n; n++) {
        for (int i = 0; i < cols; i++) {
            const char *name = sqlite3_column_name(stmt, i);
            if (name != NULL && strcasecmp(name, names[n]) == 0) {
                return i;
            }
        }
    }
    return -1;
}

static void userdb_sqlite_close(userdb_sqlite *s)
{
    sqlite3_finalize(s->stmt);
    s->stmt = NULL;
    sqlite3_close_v2(s->db);
    s->db = NULL;
}

static bool userdb_sqlite_columns(userdb_sqlite *s, char *err, size_t err_len)
{
    static const char *const maildir_names[] = {"maildir", "home", "mail"};
    static const char *const quota_names[] = {"quota"};
    static const char *const active_names[] = {"active"};
    s->col_maildir = userdb_sqlite_column(s->stmt, maildir_names, SL_ARRAY_LEN(maildir_names));
    s->col_quota = userdb_sqlite_column(s->stmt, quota_names, 1);
    s->col_active = userdb_sqlite_column(s->stmt, active_names, 1);
    if (s->col_maildir < 0) {
        userdb_sqlite_err(err, err_len,
                          "userdb sqlite: user_query returns no maildir, home or mail column");
        return false;
    }
    return true;
}

static bool userdb_sqlite_prepare(userdb_sqlite *s, char *err, size_t err_len)
{
    const char *tail = NULL;
    int rc = sqlite3_prepare_v3(s->db, s->sql, -1, SQLITE_PREPARE_PERSISTENT, &s->stmt, &tail);
    if (rc != SQLITE_OK || s->stmt == NULL) {
        /* The message names tables/columns of the query, never a value. */
        userdb_sqlite_err(err, err_len, "userdb sqlite: user_query does not prepare: %s",
                          rc == SQLITE_OK ? "empty statement" : sqlite3_errmsg(s->db));
        return false;
    }
    tail += strspn(tail, " \t\r\n;");
    if (*tail != '\0') {
        userdb_sqlite_err(err, err_len, "userdb sqlite: user_query must be one statement");
        return false;
    }
    if ((size_t)sqlite3_bind_parameter_count(s->stmt) != s->params_n) {
        userdb_sqlite_err(err, err_len,
                          "userdb sqlite: user_query must not hold SQL parameters of its own");
        return false;
    }
    return userdb_sqlite_columns(s, err, err_len);
}

/* Opens the file and prepares the statement; on failure leaves nothing open. */
static bool userdb_sqlite_open(userdb_sqlite *s, char *err, size_t err_len)
{
    SL_ASSERT(s->db == NULL);
    int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(s->path, &s->db, flags, NULL);
    if (rc != SQLITE_OK) {
        userdb_sqlite_err(err, err_len, "userdb sqlite: cannot open %s: %s", s->path,
                          sqlite3_errstr(rc));
        userdb_sqlite_close(s);
        return false;
    }
    sqlite3_busy_timeout(s->db, USERDB_SQLITE_BUSY_TIMEOUT_MS);
    if (!userdb_sqlite_prepare(s, err, err_len)) {
        userdb_sqlite_close(s);
        return false;
    }
    return true;
}

static const char *userdb_sqlite_param_value(char p, const char *user, const char *localpart,
                                             const char *domain)
{
    switch (p) {
    case 'u':
        return user;
    case 'n':
        return localpart;
    case 'd':
        return domain;
    default:
        SL_ASSERT(!"unknown userdb param");
        return NULL;
    }
}

/* Text "0", "f", "false", "n", "no", "off" (any case) and integer 0 are
 * inactive; NULL and anything else are active. The textual false words let
 * a PostgreSQL boolean exported as 'f' keep its meaning. */
static bool userdb_sqlite_active(sqlite3_stmt *stmt, int col)
{
    static const char *const no[] = {"0", "f", "false", "n", "no", "off"};
    if (col < 0 || sqlite3_column_type(stmt, col) == SQLITE_NULL) {
        return true;
    }
    if (sqlite3_column_type(stmt, col) != SQLITE_TEXT) {
        return sqlite3_column_int64(stmt, col) != 0;
    }
    const char *t = (const char *)sqlite3_column_text(stmt, col);
    for (size_t i = 0; t != NULL && i < SL_ARRAY_LEN(no); i++) {
        if (strcasecmp(t, no[i]) == 0) {
            return false;
        }
    }
    return true;
}

/* Negative or NULL quota means no limit (0). */
static uint64_t userdb_sqlite_quota(sqlite3_stmt *stmt, int col)
{
    if (col < 0 || sqlite3_column_type(stmt, col) == SQLITE_NULL) {
        return 0;
    }
    int64_t q = sqlite3_column_int64(stmt, col);
    return q > 0 ? (uint64_t)q : 0;
}

/* Fills out from the current row. An empty, NULL, too long or NUL-holding
 * maildir is TEMPFAIL: delivering to a truncated or empty path would put
 * mail in the wrong place, deferring it lets the operator fix the row. */
static void userdb_sqlite_row(userdb_sqlite *s, userdb_result *out)
{
    const unsigned char *m = sqlite3_column_text(s->stmt, s->col_maildir);
    size_t m_len = (size_t)sqlite3_column_bytes(s->stmt, s->col_maildir);
    if (m == NULL || m_len == 0 || m_len >= sizeof(out->maildir) ||
        strlen((const char *)m) != m_len) {
        out->status = USERDB_TEMPFAIL;
        return;
    }
    memcpy(out->maildir, m, m_len + 1);
    out->quota_bytes = userdb_sqlite_quota(s->stmt, s->col_quota);
    out->status = userdb_sqlite_active(s->stmt, s->col_active) ? USERDB_FOUND : USERDB_INACTIVE;
}

static int userdb_sqlite_bind(userdb_sqlite *s, const char *user, const char *localpart,
                              const char *domain)
{
    for (size_t i = 0; i < s->params_n; i++) {
        const char *v = userdb_sqlite_param_value(s->params[i], user, localpart, domain);
        /* STATIC is safe: the statement is reset before lookup returns. */
        int rc = sqlite3_bind_text(s->stmt, (int)i + 1, v, -1, SQLITE_STATIC);
        if (rc != SQLITE_OK) {
            return rc;
        }
    }
    return SQLITE_OK;
}

static int userdb_sqlite_lookup(userdb_driver *d, const char *user, const char *localpart,
                                const char *domain, userdb_result *out)
{
    userdb_sqlite *s = (userdb_sqlite *)d;
    SL_ASSERT(user != NULL);
    SL_ASSERT(localpart != NULL);
    SL_ASSERT(domain != NULL);
    SL_ASSERT(out != NULL);
    out->status = USERDB_TEMPFAIL;
    out->maildir[0] = '\0';
    out->quota_bytes = 0;
    if (s->db == NULL && !userdb_sqlite_open(s, NULL, 0)) {
        return 0;
    }
    int rc = userdb_sqlite_bind(s, user, localpart, domain);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s->stmt);
    }
    if (rc == SQLITE_ROW) {
        userdb_sqlite_row(s, out);
    } else if (rc == SQLITE_DONE) {
        out->status = USERDB_NOTFOUND;
    }
    /* Reset releases the read lock and drops the borrowed bindings. */
    sqlite3_reset(s->stmt);
    sqlite3_clear_bindings(s->stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        userdb_sqlite_close(s);
    }
    return 0;
}

static void userdb_sqlite_destroy(userdb_driver *d)
{
    userdb_sqlite *s = (userdb_sqlite *)d;
    userdb_sqlite_close(s);
    free(s->path);
    free(s->sql);
    free(s);
}

static const userdb_driver_ops userdb_sqlite_ops = {
    .lookup = userdb_sqlite_lookup,
    .destroy = userdb_sqlite_destroy,
};

static bool userdb_sqlite_check_cfg(const userdb_config *cfg, char *err, size_t err_len)
{
    if (cfg->connect == NULL || cfg->connect[0] == '\0') {
        userdb_sqlite_err(err, err_len, "userdb sqlite: no database file (connect) configured");
        return false;
    }
    if (cfg->user_query == NULL || cfg->user_query[0] == '\0') {
        userdb_sqlite_err(err, err_len, "userdb sqlite: no user_query configured");
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
    s->sql = userdb_sqlite_convert_query(cfg->user_query, s->params, &s->params_n, err, err_len);
    s->path = strdup(cfg->connect);
    if (s->path == NULL) {
        abort();
    }
    if (s->sql != NULL && s->params_n == 0) {
        userdb_sqlite_err(err, err_len, "userdb sqlite: user_query uses none of %%u %%n %%d");
    } else if (s->sql != NULL && userdb_sqlite_open(s, err, err_len)) {
        return &s->base;
    }
    userdb_sqlite_destroy(&s->base);
    return NULL;
}
