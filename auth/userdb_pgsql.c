/* auth/userdb_pgsql.c: the PostgreSQL userdb driver (libpq).
 *
 * One connection per driver, so one per resolver thread. The queries are
 * prepared once per connection with every %u/%n/%d as a $n parameter:
 * values are never spliced into SQL text. Every step runs through libpq's
 * asynchronous calls and poll(), so each is bounded: connect_timeout_ms for
 * the connection, query_timeout_ms for each round trip, and the same as
 * statement_timeout on the server. Any failure drops the connection and
 * answers TEMPFAIL; a later lookup reconnects (and prepares again) once the
 * backoff allows it, so a dead server costs a quick 451, not a hang. */
#include "auth/userdb_pgsql.h"

#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USERDB_PGSQL_MSG_BYTES 512

typedef struct userdb_pgsql_stmt {
    const char *name; /* of the prepared statement */
    const char *what; /* of the config key, for messages */
    userdb_query q;   /* q.sql NULL: not configured */
    userdb_columns cols;
} userdb_pgsql_stmt;

typedef struct userdb_pgsql {
    userdb_driver base; /* first: the driver pointer is this struct */
    char *conninfo;
    userdb_pgsql_stmt user;
    userdb_pgsql_stmt pass;
    uint64_t query_timeout_ms;
    uint64_t connect_timeout_ms;
    PGconn *conn; /* NULL while disconnected */
    userdb_conn_state health;
} userdb_pgsql;

/* How opening a connection ended: BAD is the server refusing the
 * configuration (a query that does not prepare), DOWN anything else. */
typedef enum userdb_pgsql_open_rc {
    USERDB_PGSQL_OPEN_OK,
    USERDB_PGSQL_OPEN_DOWN,
    USERDB_PGSQL_OPEN_BAD,
} userdb_pgsql_open_rc;

/* libpq's messages end in a newline and may span lines: one log line. */
static void userdb_pgsql_msg(char *out, size_t out_len, const char *msg)
{
    snprintf(out, out_len, "%s", msg != NULL && msg[0] != '\0' ? msg : "unknown error");
    for (char *p = out; *p != '\0'; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            *p = ' ';
        }
    }
    for (size_t n = strlen(out); n > 0 && out[n - 1] == ' '; n--) {
        out[n - 1] = '\0';
    }
}

/* Notices (e.g. from a function the query calls) must not reach stderr. */
static void userdb_pgsql_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static void userdb_pgsql_close(userdb_pgsql *s)
{
    PQfinish(s->conn);
    s->conn = NULL;
}

/* Waits until the socket is ready for events. 1 ready, 0 deadline passed,
 * -1 error. */
static int userdb_pgsql_poll(PGconn *c, short events, uint64_t deadline_ms)
{
    for (;;) {
        uint64_t now = sl_clock_ms();
        if (now >= deadline_ms) {
            return 0;
        }
        struct pollfd p = {.fd = PQsocket(c), .events = events};
        if (p.fd < 0) {
            return -1;
        }
        int rc = poll(&p, 1, (int)SL_MIN(deadline_ms - now, (uint64_t)INT_MAX));
        if (rc > 0) {
            return 1;
        }
        if (rc < 0 && errno != EINTR) {
            return -1;
        }
    }
}

/* Drives PQconnectPoll to the end within connect_timeout_ms. */
static bool userdb_pgsql_connect(userdb_pgsql *s, char *err, size_t err_len)
{
    /* The connect string expands in place of dbname, so it overrides the
     * fallback name and keeps every key the operator wrote. */
    static const char *const keys[] = {"fallback_application_name", "dbname", NULL};
    const char *const vals[] = {"sluice", s->conninfo, NULL};
    uint64_t deadline_ms = sl_clock_ms() + s->connect_timeout_ms;
    SL_ASSERT(s->conn == NULL);
    s->conn = PQconnectStartParams(keys, vals, 1);
    if (s->conn == NULL) {
        abort(); /* libpq could not allocate: out of memory */
    }
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (PQstatus(s->conn) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
           st != PGRES_POLLING_FAILED) {
        int rc = userdb_pgsql_poll(s->conn, st == PGRES_POLLING_READING ? POLLIN : POLLOUT,
                                   deadline_ms);
        if (rc == 0) {
            userdb_errf(err, err_len, "connect timed out after %llu ms",
                        (unsigned long long)s->connect_timeout_ms);
            return false;
        }
        st = rc > 0 ? PQconnectPoll(s->conn) : PGRES_POLLING_FAILED;
    }
    if (st != PGRES_POLLING_OK || PQstatus(s->conn) != CONNECTION_OK) {
        userdb_pgsql_msg(err, err_len, PQerrorMessage(s->conn));
        return false;
    }
    PQsetNoticeProcessor(s->conn, userdb_pgsql_notice, NULL);
    return true;
}

static bool userdb_pgsql_res_ok(const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* Collects the results of the command just sent, until libpq says there
 * are no more, bounded by deadline_ms. Returns the first failed result, or
 * the last one; NULL on a timeout or a broken connection (message in err). */
static PGresult *userdb_pgsql_collect(userdb_pgsql *s, uint64_t deadline_ms, char *err,
                                      size_t err_len)
{
    PGresult *keep = NULL;
    for (;;) {
        while (!PQisBusy(s->conn)) {
            PGresult *r = PQgetResult(s->conn);
            if (r == NULL) {
                if (keep == NULL) {
                    userdb_pgsql_msg(err, err_len, PQerrorMessage(s->conn));
                }
                return keep;
            }
            if (keep != NULL && !userdb_pgsql_res_ok(keep)) {
                PQclear(r);
            } else {
                PQclear(keep);
                keep = r;
            }
        }
        int rc = userdb_pgsql_poll(s->conn, POLLIN, deadline_ms);
        if (rc <= 0 || !PQconsumeInput(s->conn)) {
            if (rc == 0) {
                userdb_errf(err, err_len, "no answer within %llu ms",
                            (unsigned long long)s->query_timeout_ms);
            } else {
                userdb_pgsql_msg(err, err_len, PQerrorMessage(s->conn));
            }
            PQclear(keep);
            return NULL;
        }
    }
}

/* Waits for the command just handed to a PQsend* call (sent is its return
 * value). Returns its successful result (caller PQclears) or NULL with a
 * message in err; *rejected_out says the server answered with an error on
 * a healthy connection (a bad query), as opposed to a lost connection. */
static PGresult *userdb_pgsql_finish(userdb_pgsql *s, int sent, bool *rejected_out, char *err,
                                     size_t err_len)
{
    *rejected_out = false;
    if (!sent) {
        userdb_pgsql_msg(err, err_len, PQerrorMessage(s->conn));
        return NULL;
    }
    PGresult *r = userdb_pgsql_collect(s, sl_clock_ms() + s->query_timeout_ms, err, err_len);
    if (r != NULL && !userdb_pgsql_res_ok(r)) {
        userdb_pgsql_msg(err, err_len, PQresultErrorMessage(r));
        *rejected_out = PQstatus(s->conn) == CONNECTION_OK;
        PQclear(r);
        return NULL;
    }
    return r;
}

/* Maps the described statement's columns; checks the parameter count and
 * that the column the query exists for is there. */
static bool userdb_pgsql_describe(userdb_pgsql_stmt *st, const PGresult *r, char *err,
                                  size_t err_len)
{
    const char *names[64];
    size_t n = (size_t)SL_MIN(PQnfields(r), (int)SL_ARRAY_LEN(names));
    for (size_t i = 0; i < n; i++) {
        names[i] = PQfname(r, (int)i);
    }
    userdb_columns_map(names, n, &st->cols);
    if ((size_t)PQnparams(r) != st->q.params_n) {
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

static userdb_pgsql_open_rc userdb_pgsql_prepare(userdb_pgsql *s, userdb_pgsql_stmt *st,
                                                 char *err, size_t err_len)
{
    char msg[USERDB_PGSQL_MSG_BYTES];
    bool rejected = false;
    PGresult *r = userdb_pgsql_finish(s, PQsendPrepare(s->conn, st->name, st->q.sql, 0, NULL),
                                      &rejected, msg, sizeof(msg));
    if (r == NULL) {
        userdb_errf(err, err_len, "%s does not prepare: %s", st->what, msg);
        return rejected ? USERDB_PGSQL_OPEN_BAD : USERDB_PGSQL_OPEN_DOWN;
    }
    PQclear(r);
    r = userdb_pgsql_finish(s, PQsendDescribePrepared(s->conn, st->name), &rejected, msg,
                            sizeof(msg));
    if (r == NULL) {
        userdb_errf(err, err_len, "%s: describe: %s", st->what, msg);
        return rejected ? USERDB_PGSQL_OPEN_BAD : USERDB_PGSQL_OPEN_DOWN;
    }
    bool ok = userdb_pgsql_describe(st, r, err, err_len);
    PQclear(r);
    return ok ? USERDB_PGSQL_OPEN_OK : USERDB_PGSQL_OPEN_BAD;
}

/* The server cancels a statement that runs longer than the query timeout,
 * so a slow query ends on both sides. */
static userdb_pgsql_open_rc userdb_pgsql_setup(userdb_pgsql *s, char *err, size_t err_len)
{
    char sql[64];
    char msg[USERDB_PGSQL_MSG_BYTES];
    bool rejected = false;
    snprintf(sql, sizeof(sql), "SET statement_timeout = %llu",
             (unsigned long long)s->query_timeout_ms);
    PGresult *r =
        userdb_pgsql_finish(s, PQsendQuery(s->conn, sql), &rejected, msg, sizeof(msg));
    if (r == NULL) {
        userdb_errf(err, err_len, "set statement_timeout: %s", msg);
        return USERDB_PGSQL_OPEN_DOWN;
    }
    PQclear(r);
    userdb_pgsql_open_rc rc = userdb_pgsql_prepare(s, &s->user, err, err_len);
    if (rc == USERDB_PGSQL_OPEN_OK && s->pass.q.sql != NULL) {
        rc = userdb_pgsql_prepare(s, &s->pass, err, err_len);
    }
    return rc;
}

/* Connects and prepares; on failure nothing stays open. */
static userdb_pgsql_open_rc userdb_pgsql_open(userdb_pgsql *s, char *err, size_t err_len)
{
    userdb_pgsql_open_rc rc = USERDB_PGSQL_OPEN_DOWN;
    if (userdb_pgsql_connect(s, err, err_len)) {
        rc = userdb_pgsql_setup(s, err, err_len);
    }
    if (rc != USERDB_PGSQL_OPEN_OK) {
        userdb_pgsql_close(s);
    }
    return rc;
}

static bool userdb_pgsql_open_cb(void *ctx, char *err, size_t err_len)
{
    return userdb_pgsql_open(ctx, err, err_len) == USERDB_PGSQL_OPEN_OK;
}

/* True when connected, reconnecting first if the backoff allows it. */
static bool userdb_pgsql_ready(userdb_pgsql *s)
{
    if (s->conn != NULL) {
        return true;
    }
    return userdb_conn_reopen(&s->health, "userdb pgsql", userdb_pgsql_open_cb, s);
}

/* Runs st for the address; NULL (TEMPFAIL) when not connected or on any
 * error, which also drops the connection. */
static PGresult *userdb_pgsql_run(userdb_pgsql *s, userdb_pgsql_stmt *st, const char *user,
                                  const char *localpart, const char *domain)
{
    SL_ASSERT(user != NULL);
    SL_ASSERT(localpart != NULL);
    SL_ASSERT(domain != NULL);
    bool was_open = s->conn != NULL;
    if (!userdb_pgsql_ready(s)) {
        return NULL;
    }
    const char *values[USERDB_QUERY_PARAMS_MAX];
    for (size_t i = 0; i < st->q.params_n; i++) {
        values[i] = userdb_param_value(st->q.params[i], user, localpart, domain);
    }
    char msg[USERDB_PGSQL_MSG_BYTES];
    bool rejected = false;
    int sent =
        PQsendQueryPrepared(s->conn, st->name, (int)st->q.params_n, values, NULL, NULL, 0);
    PGresult *r = userdb_pgsql_finish(s, sent, &rejected, msg, sizeof(msg));
    if (r == NULL && was_open && !rejected && PQstatus(s->conn) == CONNECTION_BAD) {
        /* The server closed a connection that sat idle (a restart, an idle
         * timeout): one fresh connection now, rather than a 451 for a
         * database that is up. A dead server fails that connect at once. */
        sl_info("userdb pgsql: %s: the connection was closed (%s); reconnecting now", st->what,
                msg);
        userdb_pgsql_close(s);
        return userdb_pgsql_run(s, st, user, localpart, domain);
    }
    if (r == NULL) {
        sl_warn("userdb pgsql: %s failed, reconnecting: %s", st->what, msg);
        userdb_pgsql_close(s);
        userdb_conn_lost(&s->health);
    }
    return r;
}

static userdb_text userdb_pgsql_text(const PGresult *r, int col)
{
    userdb_text t = {NULL, 0};
    if (col < 0 || col >= PQnfields(r) || PQgetisnull(r, 0, col)) {
        return t;
    }
    t.ptr = PQgetvalue(r, 0, col);
    t.len = (size_t)PQgetlength(r, 0, col);
    return t;
}

static int userdb_pgsql_lookup(userdb_driver *d, const char *user, const char *localpart,
                               const char *domain, userdb_result *out)
{
    userdb_pgsql *s = (userdb_pgsql *)d;
    SL_ASSERT(out != NULL);
    out->status = USERDB_TEMPFAIL;
    out->maildir[0] = '\0';
    out->quota_bytes = 0;
    PGresult *r = userdb_pgsql_run(s, &s->user, user, localpart, domain);
    if (r == NULL) {
        return 0;
    }
    if (PQntuples(r) == 0) {
        out->status = USERDB_NOTFOUND;
    } else {
        userdb_result_fill(out, userdb_pgsql_text(r, s->user.cols.maildir),
                           userdb_pgsql_text(r, s->user.cols.quota),
                           userdb_pgsql_text(r, s->user.cols.active));
    }
    PQclear(r);
    return 0;
}

static int userdb_pgsql_passdb_lookup(userdb_driver *d, const char *user, const char *localpart,
                                      const char *domain, passdb_result *out)
{
    userdb_pgsql *s = (userdb_pgsql *)d;
    SL_ASSERT(out != NULL);
    out->status = USERDB_TEMPFAIL;
    out->password[0] = '\0';
    if (s->pass.q.sql == NULL) {
        return -ENOTSUP;
    }
    PGresult *r = userdb_pgsql_run(s, &s->pass, user, localpart, domain);
    if (r == NULL) {
        return 0;
    }
    if (PQntuples(r) == 0) {
        out->status = USERDB_NOTFOUND;
    } else {
        passdb_result_fill(out, userdb_pgsql_text(r, s->pass.cols.password),
                           userdb_pgsql_text(r, s->pass.cols.active));
    }
    PQclear(r);
    return 0;
}

static void userdb_pgsql_destroy(userdb_driver *d)
{
    userdb_pgsql *s = (userdb_pgsql *)d;
    userdb_pgsql_close(s);
    userdb_query_deinit(&s->user.q);
    userdb_query_deinit(&s->pass.q);
    free(s->conninfo);
    free(s);
}

static const userdb_driver_ops userdb_pgsql_ops = {
    .lookup = userdb_pgsql_lookup,
    .passdb_lookup = userdb_pgsql_passdb_lookup,
    .destroy = userdb_pgsql_destroy,
};

/* Checks what can be checked without a server: the keys, the connect
 * string's syntax, the queries' escapes. */
static bool userdb_pgsql_check_cfg(const userdb_config *cfg, char *err, size_t err_len)
{
    if (cfg->connect == NULL || cfg->connect[0] == '\0') {
        userdb_errf(err, err_len, "userdb pgsql: no connect string configured");
        return false;
    }
    if (cfg->user_query == NULL || cfg->user_query[0] == '\0') {
        userdb_errf(err, err_len, "userdb pgsql: no user_query configured");
        return false;
    }
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(cfg->connect, &perr);
    if (opts == NULL) {
        char msg[USERDB_PGSQL_MSG_BYTES];
        userdb_pgsql_msg(msg, sizeof(msg), perr);
        userdb_errf(err, err_len, "userdb pgsql: bad connect string: %s", msg);
        PQfreemem(perr);
        return false;
    }
    PQconninfoFree(opts);
    return true;
}

static userdb_pgsql *userdb_pgsql_alloc(const userdb_config *cfg)
{
    userdb_pgsql *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        abort();
    }
    s->base.ops = &userdb_pgsql_ops;
    s->conninfo = strdup(cfg->connect);
    if (s->conninfo == NULL) {
        abort();
    }
    s->user.name = "sluice_user";
    s->user.what = "user_query";
    s->pass.name = "sluice_password";
    s->pass.what = "password_query";
    s->query_timeout_ms =
        cfg->query_timeout_ms != 0 ? cfg->query_timeout_ms : USERDB_QUERY_TIMEOUT_MS_DEFAULT;
    s->connect_timeout_ms = cfg->connect_timeout_ms != 0 ? cfg->connect_timeout_ms
                                                         : USERDB_CONNECT_TIMEOUT_MS_DEFAULT;
    return s;
}

userdb_driver *userdb_pgsql_new(const userdb_config *cfg, char *err, size_t err_len)
{
    SL_ASSERT(cfg != NULL);
    if (!userdb_pgsql_check_cfg(cfg, err, err_len)) {
        return NULL;
    }
    userdb_pgsql *s = userdb_pgsql_alloc(cfg);
    bool has_pass = cfg->password_query != NULL && cfg->password_query[0] != '\0';
    bool ok = userdb_query_init(&s->user.q, cfg->user_query, USERDB_DIALECT_PGSQL, "pgsql",
                                "user_query", err, err_len);
    ok = ok && (!has_pass || userdb_query_init(&s->pass.q, cfg->password_query,
                                               USERDB_DIALECT_PGSQL, "pgsql", "password_query",
                                               err, err_len));
    if (!ok) {
        userdb_pgsql_destroy(&s->base);
        return NULL;
    }
    char msg[USERDB_PGSQL_MSG_BYTES];
    userdb_pgsql_open_rc rc = userdb_pgsql_open(s, msg, sizeof(msg));
    if (rc == USERDB_PGSQL_OPEN_BAD) {
        userdb_errf(err, err_len, "userdb pgsql: %s", msg);
        userdb_pgsql_destroy(&s->base);
        return NULL;
    }
    if (rc == USERDB_PGSQL_OPEN_DOWN) {
        sl_warn("userdb pgsql: %s (lookups answer TEMPFAIL until it is reachable)", msg);
        userdb_conn_lost(&s->health);
    }
    return &s->base;
}
