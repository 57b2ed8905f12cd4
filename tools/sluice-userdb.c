/* tools/sluice-userdb.c: manage the SQLite userdb that sluice reads.
 *
 * The schema is postfixadmin's `mailbox` and `domain` tables, so the same
 * file (or a dump of it) also serves Postfix lookups and Dovecot, and a
 * postfixadmin-managed database can be pointed at directly. Usernames are
 * stored lower-case because sluice looks users up lower-cased. */
#include "auth/userdb.h"

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SLUICE_USERDB_LOCAL_BYTES_MAX 64 /* RFC 5321 4.5.3.1.1 */
#define SLUICE_USERDB_ADDR_BYTES_MAX 254 /* RFC 5321 path limit without <> */
#define SLUICE_USERDB_DEMO_USERS_MAX 1000000
#define SLUICE_USERDB_BUSY_TIMEOUT_MS 5000
#define SLUICE_USERDB_DEMO_DOMAIN "example.test"

enum { EXIT_FAIL = 1, EXIT_USAGE = 2 };

static const char sluice_userdb_schema[] =
    "CREATE TABLE IF NOT EXISTS domain (\n"
    "  domain VARCHAR(255) NOT NULL PRIMARY KEY,\n"
    "  description VARCHAR(255) NOT NULL DEFAULT '',\n"
    "  aliases INT NOT NULL DEFAULT 0,\n"
    "  mailboxes INT NOT NULL DEFAULT 0,\n"
    "  maxquota BIGINT NOT NULL DEFAULT 0,\n"
    "  quota BIGINT NOT NULL DEFAULT 0,\n"
    "  transport VARCHAR(255) DEFAULT NULL,\n"
    "  backupmx TINYINT NOT NULL DEFAULT 0,\n"
    "  created DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,\n"
    "  modified DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,\n"
    "  active TINYINT NOT NULL DEFAULT 1\n"
    ");\n"
    "CREATE TABLE IF NOT EXISTS mailbox (\n"
    "  username VARCHAR(255) NOT NULL PRIMARY KEY,\n"
    "  password VARCHAR(255) NOT NULL DEFAULT '',\n"
    "  name VARCHAR(255) NOT NULL DEFAULT '',\n"
    "  maildir VARCHAR(255) NOT NULL DEFAULT '',\n"
    "  quota BIGINT NOT NULL DEFAULT 0,\n"
    "  local_part VARCHAR(255) NOT NULL DEFAULT '',\n"
    "  domain VARCHAR(255) NOT NULL DEFAULT '',\n"
    "  created DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,\n"
    "  modified DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,\n"
    "  active TINYINT NOT NULL DEFAULT 1\n"
    ");\n"
    "CREATE INDEX IF NOT EXISTS mailbox_domain ON mailbox (domain);\n";

static const char sluice_userdb_usage[] =
    "usage: sluice-userdb COMMAND DB [ARGS]\n"
    "  create DB                      create the postfixadmin mailbox/domain tables\n"
    "  add DB user@domain [--password P|-] [--maildir PATH] [--quota BYTES] [--inactive]\n"
    "                                 P is stored as {PLAIN}P unless it already starts\n"
    "                                 with a {SCHEME}; '-' reads it from stdin (keeps it\n"
    "                                 out of ps); maildir defaults to domain/local/\n"
    "  del DB user@domain             delete a mailbox\n"
    "  set-active DB user@domain 0|1  disable or enable a mailbox\n"
    "  demo DB [N]                    add user0000..user(N-1) and postmaster @"
    SLUICE_USERDB_DEMO_DOMAIN " (default N 1000, password demo)\n"
    "  list DB                        list mailboxes (never passwords)\n";

typedef struct sluice_userdb_addr {
    char user[SLUICE_USERDB_ADDR_BYTES_MAX + 1];
    char local[SLUICE_USERDB_LOCAL_BYTES_MAX + 1];
    char domain[SLUICE_USERDB_ADDR_BYTES_MAX + 1];
} sluice_userdb_addr;

typedef struct sluice_userdb_add_opts {
    const char *password; /* NULL: empty */
    const char *maildir;  /* NULL: domain/local/ */
    int64_t quota_bytes;
    int active;
} sluice_userdb_add_opts;

__attribute__((format(printf, 1, 2))) static void sluice_userdb_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sluice-userdb: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int sluice_userdb_usage_fail(const char *why)
{
    sluice_userdb_err("%s", why);
    fputs(sluice_userdb_usage, stderr);
    return EXIT_USAGE;
}

/* Opens DB; create says whether a missing file may be created. */
static sqlite3 *sluice_userdb_open(const char *path, bool create, bool readonly)
{
    int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    if (create) {
        flags |= SQLITE_OPEN_CREATE;
    }
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        sluice_userdb_err("cannot open %s: %s%s", path, sqlite3_errstr(rc),
                          create ? "" : " (create it with: sluice-userdb create DB)");
        sqlite3_close_v2(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, SLUICE_USERDB_BUSY_TIMEOUT_MS);
    return db;
}

static int sluice_userdb_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        sluice_userdb_err("%s", msg != NULL ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static sqlite3_stmt *sluice_userdb_prepare(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *stmt = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        /* "no such table" is the usual cause: say how to get one. */
        sluice_userdb_err("%s (is this a sluice userdb? see: sluice-userdb create DB)",
                          sqlite3_errmsg(db));
        return NULL;
    }
    return stmt;
}

/* RFC 5322 atext plus '.', and UTF-8 bytes for SMTPUTF8 addresses. */
static bool sluice_userdb_local_char(unsigned char c)
{
    return c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL;
}

static bool sluice_userdb_domain_char(unsigned char c)
{
    return c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.';
}

static bool sluice_userdb_valid(const char *s, bool (*ok)(unsigned char))
{
    for (; *s != '\0'; s++) {
        if (!ok((unsigned char)*s)) {
            return false;
        }
    }
    return true;
}

/* Parses and lower-cases user@domain. */
static int sluice_userdb_parse_addr(const char *in, sluice_userdb_addr *out)
{
    size_t n = strlen(in);
    const char *at = strchr(in, '@');
    if (n > SLUICE_USERDB_ADDR_BYTES_MAX || at == NULL || strchr(at + 1, '@') != NULL ||
        at == in || at[1] == '\0' || (size_t)(at - in) > SLUICE_USERDB_LOCAL_BYTES_MAX) {
        sluice_userdb_err("bad address \"%s\": want local@domain, local at most %d and "
                          "the whole at most %d bytes",
                          in, SLUICE_USERDB_LOCAL_BYTES_MAX, SLUICE_USERDB_ADDR_BYTES_MAX);
        return -1;
    }
    for (size_t i = 0; i <= n; i++) {
        char c = in[i];
        out->user[i] = (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
    }
    size_t local_n = (size_t)(at - in);
    memcpy(out->local, out->user, local_n);
    out->local[local_n] = '\0';
    strcpy(out->domain, out->user + local_n + 1);
    if (!sluice_userdb_valid(out->local, sluice_userdb_local_char) ||
        !sluice_userdb_valid(out->domain, sluice_userdb_domain_char)) {
        sluice_userdb_err("bad address \"%s\": unexpected character", in);
        return -1;
    }
    return 0;
}

static int sluice_userdb_parse_u64(const char *s, const char *what, uint64_t max,
                                   uint64_t *value_out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v > max) {
        sluice_userdb_err("bad %s \"%s\": want a whole number from 0 to %" PRIu64, what, s,
                          max);
        return -1;
    }
    *value_out = v;
    return 0;
}

static int sluice_userdb_cmd_create(int argc, char **argv)
{
    (void)argc;
    sqlite3 *db = sluice_userdb_open(argv[2], true, false);
    if (db == NULL) {
        return EXIT_FAIL;
    }
    int rc = sluice_userdb_exec(db, sluice_userdb_schema);
    sqlite3_close_v2(db);
    if (rc != 0) {
        return EXIT_FAIL;
    }
    printf("%s: userdb tables ready\n", argv[2]);
    return 0;
}

/* Reads one line from stdin into buf (newline stripped). */
static int sluice_userdb_read_password(char *buf, size_t len)
{
    if (fgets(buf, (int)len, stdin) == NULL) {
        sluice_userdb_err("--password -: no password on stdin");
        return -1;
    }
    size_t n = strcspn(buf, "\r\n");
    if (buf[n] == '\0' && n + 1 == len) {
        sluice_userdb_err("--password -: password longer than %zu bytes", len - 2);
        return -1;
    }
    buf[n] = '\0';
    return 0;
}

/* Stores P as {PLAIN}P unless it already names a scheme ("{SHA512-CRYPT}..."
 * from doveadm pw), so pre-hashed passwords can be added as they are. */
static char *sluice_userdb_password(const char *p)
{
    static char line[256];
    static char out[sizeof(line) + 8];
    if (p == NULL) {
        return "";
    }
    if (strcmp(p, "-") == 0) {
        if (sluice_userdb_read_password(line, sizeof(line)) != 0) {
            return NULL;
        }
        p = line;
    }
    bool has_scheme = p[0] == '{' && strchr(p, '}') != NULL;
    if (snprintf(out, sizeof(out), "%s%s", has_scheme ? "" : "{PLAIN}", p) >= (int)sizeof(out)) {
        sluice_userdb_err("password too long (at most %zu bytes)", sizeof(line) - 2);
        return NULL;
    }
    return out;
}

static int sluice_userdb_opt_value(int argc, char **argv, int *i, const char **value_out)
{
    if (*i + 1 >= argc) {
        sluice_userdb_err("%s needs a value", argv[*i]);
        return -1;
    }
    *i += 1;
    *value_out = argv[*i];
    return 0;
}

static int sluice_userdb_parse_add_opts(int argc, char **argv, sluice_userdb_add_opts *o)
{
    o->active = 1;
    for (int i = 4; i < argc; i++) {
        uint64_t q = 0;
        const char *v = NULL;
        if (strcmp(argv[i], "--inactive") == 0) {
            o->active = 0;
        } else if (strcmp(argv[i], "--password") == 0) {
            if (sluice_userdb_opt_value(argc, argv, &i, &o->password) != 0) {
                return -1;
            }
        } else if (strcmp(argv[i], "--maildir") == 0) {
            if (sluice_userdb_opt_value(argc, argv, &i, &o->maildir) != 0) {
                return -1;
            }
        } else if (strcmp(argv[i], "--quota") == 0) {
            if (sluice_userdb_opt_value(argc, argv, &i, &v) != 0 ||
                sluice_userdb_parse_u64(v, "quota", INT64_MAX, &q) != 0) {
                return -1;
            }
            o->quota_bytes = (int64_t)q;
        } else {
            sluice_userdb_err("unknown option \"%s\"", argv[i]);
            return -1;
        }
    }
    return 0;
}

static int sluice_userdb_check_maildir(const char *m)
{
    size_t n = strlen(m);
    if (n == 0 || n >= USERDB_MAILDIR_BYTES_MAX) {
        sluice_userdb_err("bad maildir: want 1 to %d bytes", USERDB_MAILDIR_BYTES_MAX - 1);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)m[i] < 0x20 || m[i] == 0x7f) {
            sluice_userdb_err("bad maildir: control character");
            return -1;
        }
    }
    return 0;
}

static int sluice_userdb_bind_texts(sqlite3_stmt *stmt, const char *const *v, int n)
{
    for (int i = 0; i < n; i++) {
        if (sqlite3_bind_text(stmt, i + 1, v[i], -1, SQLITE_TRANSIENT) != SQLITE_OK) {
            return -1;
        }
    }
    return 0;
}

static int sluice_userdb_step_done(sqlite3 *db, sqlite3_stmt *stmt, const char *what)
{
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) {
        return 0;
    }
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        sluice_userdb_err("%s: already exists", what);
    } else {
        sluice_userdb_err("%s: %s", what, sqlite3_errmsg(db));
    }
    return -1;
}

static int sluice_userdb_insert_domain(sqlite3 *db, const char *domain)
{
    sqlite3_stmt *stmt = sluice_userdb_prepare(db, "INSERT OR IGNORE INTO domain (domain) "
                                                   "VALUES (?)");
    if (stmt == NULL) {
        return -1;
    }
    int rc = sqlite3_bind_text(stmt, 1, domain, -1, SQLITE_TRANSIENT) == SQLITE_OK
                 ? sluice_userdb_step_done(db, stmt, domain)
                 : -1;
    sqlite3_finalize(stmt);
    return rc;
}

static const char sluice_userdb_insert_sql[] =
    "INSERT %s INTO mailbox (username, password, maildir, local_part, domain, quota, active) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)";

/* Inserts one mailbox; or_ignore makes an existing username a no-op. */
static int sluice_userdb_insert(sqlite3 *db, const sluice_userdb_addr *a, const char *password,
                                const char *maildir, const sluice_userdb_add_opts *o,
                                bool or_ignore)
{
    char sql[sizeof(sluice_userdb_insert_sql) + 16];
    snprintf(sql, sizeof(sql), sluice_userdb_insert_sql, or_ignore ? "OR IGNORE" : "");
    sqlite3_stmt *stmt = sluice_userdb_prepare(db, sql);
    if (stmt == NULL) {
        return -1;
    }
    const char *texts[] = {a->user, password, maildir, a->local, a->domain};
    int rc = -1;
    if (sluice_userdb_bind_texts(stmt, texts, 5) == 0 &&
        sqlite3_bind_int64(stmt, 6, o->quota_bytes) == SQLITE_OK &&
        sqlite3_bind_int(stmt, 7, o->active) == SQLITE_OK) {
        rc = sluice_userdb_step_done(db, stmt, a->user);
    }
    sqlite3_finalize(stmt);
    return rc;
}

/* The domain row and the mailbox row go in together or not at all. */
static int sluice_userdb_add_tx(sqlite3 *db, const sluice_userdb_addr *a, const char *password,
                                const char *maildir, const sluice_userdb_add_opts *o)
{
    if (sluice_userdb_exec(db, "BEGIN IMMEDIATE") != 0) {
        return -1;
    }
    if (sluice_userdb_insert_domain(db, a->domain) != 0 ||
        sluice_userdb_insert(db, a, password, maildir, o, false) != 0) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return sluice_userdb_exec(db, "COMMIT");
}

static int sluice_userdb_cmd_add(int argc, char **argv)
{
    sluice_userdb_addr a;
    sluice_userdb_add_opts o = {0};
    if (sluice_userdb_parse_addr(argv[3], &a) != 0 ||
        sluice_userdb_parse_add_opts(argc, argv, &o) != 0) {
        return EXIT_USAGE;
    }
    char maildir[USERDB_MAILDIR_BYTES_MAX];
    snprintf(maildir, sizeof(maildir), "%s/%s/", a.domain, a.local);
    const char *m = o.maildir != NULL ? o.maildir : maildir;
    const char *password = sluice_userdb_password(o.password);
    if (sluice_userdb_check_maildir(m) != 0 || password == NULL) {
        return EXIT_USAGE;
    }
    sqlite3 *db = sluice_userdb_open(argv[2], false, false);
    if (db == NULL) {
        return EXIT_FAIL;
    }
    int rc = sluice_userdb_add_tx(db, &a, password, m, &o);
    sqlite3_close_v2(db);
    if (rc != 0) {
        return EXIT_FAIL;
    }
    printf("added %s (maildir %s)\n", a.user, m);
    return 0;
}

/* Runs an UPDATE/DELETE keyed by username; no row changed is an error. */
static int sluice_userdb_change(const char *path, const char *sql, const char *user, int value)
{
    sqlite3 *db = sluice_userdb_open(path, false, false);
    if (db == NULL) {
        return EXIT_FAIL;
    }
    sqlite3_stmt *stmt = sluice_userdb_prepare(db, sql);
    int rc = -1;
    if (stmt != NULL && sqlite3_bind_text(stmt, 1, user, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
        (sqlite3_bind_parameter_count(stmt) < 2 || sqlite3_bind_int(stmt, 2, value) == SQLITE_OK)) {
        rc = sluice_userdb_step_done(db, stmt, user);
    }
    if (rc == 0 && sqlite3_changes(db) == 0) {
        sluice_userdb_err("no such user: %s", user);
        rc = -1;
    }
    sqlite3_finalize(stmt);
    sqlite3_close_v2(db);
    return rc == 0 ? 0 : EXIT_FAIL;
}

static int sluice_userdb_cmd_del(int argc, char **argv)
{
    (void)argc;
    sluice_userdb_addr a;
    if (sluice_userdb_parse_addr(argv[3], &a) != 0) {
        return EXIT_USAGE;
    }
    int rc = sluice_userdb_change(argv[2], "DELETE FROM mailbox WHERE username = ?", a.user, 0);
    if (rc == 0) {
        printf("deleted %s (its maildir is left on disk)\n", a.user);
    }
    return rc;
}

static int sluice_userdb_cmd_set_active(int argc, char **argv)
{
    (void)argc;
    sluice_userdb_addr a;
    if (sluice_userdb_parse_addr(argv[3], &a) != 0) {
        return EXIT_USAGE;
    }
    if (strcmp(argv[4], "0") != 0 && strcmp(argv[4], "1") != 0) {
        sluice_userdb_err("set-active wants 0 or 1, not \"%s\"", argv[4]);
        return EXIT_USAGE;
    }
    int active = argv[4][0] - '0';
    int rc = sluice_userdb_change(argv[2],
                                  "UPDATE mailbox SET active = ?2, modified = CURRENT_TIMESTAMP "
                                  "WHERE username = ?1",
                                  a.user, active);
    if (rc == 0) {
        printf("%s is now %s\n", a.user, active ? "active" : "inactive");
    }
    return rc;
}

/* Inserts the demo users; existing ones are kept as they are. */
static int sluice_userdb_demo_users(sqlite3 *db, uint64_t n, uint64_t *added_out)
{
    sluice_userdb_add_opts o = {.active = 1};
    *added_out = 0;
    for (uint64_t i = 0; i <= n; i++) {
        char addr[64];
        sluice_userdb_addr a;
        /* The last round is postmaster, which every domain must have. */
        if (i == n) {
            snprintf(addr, sizeof(addr), "postmaster@%s", SLUICE_USERDB_DEMO_DOMAIN);
        } else {
            snprintf(addr, sizeof(addr), "user%04" PRIu64 "@%s", i, SLUICE_USERDB_DEMO_DOMAIN);
        }
        if (sluice_userdb_parse_addr(addr, &a) != 0) {
            return -1;
        }
        char maildir[USERDB_MAILDIR_BYTES_MAX];
        snprintf(maildir, sizeof(maildir), "%s/%s/", a.domain, a.local);
        if (sluice_userdb_insert(db, &a, "{PLAIN}demo", maildir, &o, true) != 0) {
            return -1;
        }
        *added_out += (uint64_t)sqlite3_changes(db);
    }
    return 0;
}

static int sluice_userdb_demo_tx(sqlite3 *db, uint64_t n, uint64_t *added_out)
{
    if (sluice_userdb_exec(db, sluice_userdb_schema) != 0 ||
        sluice_userdb_exec(db, "BEGIN IMMEDIATE") != 0) {
        return -1;
    }
    if (sluice_userdb_insert_domain(db, SLUICE_USERDB_DEMO_DOMAIN) != 0 ||
        sluice_userdb_demo_users(db, n, added_out) != 0) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return sluice_userdb_exec(db, "COMMIT");
}

static int sluice_userdb_cmd_demo(int argc, char **argv)
{
    uint64_t n = 1000;
    if (argc == 4 &&
        sluice_userdb_parse_u64(argv[3], "user count", SLUICE_USERDB_DEMO_USERS_MAX, &n) != 0) {
        return EXIT_USAGE;
    }
    sqlite3 *db = sluice_userdb_open(argv[2], true, false);
    if (db == NULL) {
        return EXIT_FAIL;
    }
    uint64_t added = 0;
    int rc = sluice_userdb_demo_tx(db, n, &added);
    sqlite3_close_v2(db);
    if (rc != 0) {
        return EXIT_FAIL;
    }
    printf("%s: %" PRIu64 " demo users added @%s (password demo)\n", argv[2], added,
           SLUICE_USERDB_DEMO_DOMAIN);
    return 0;
}

static int sluice_userdb_cmd_list(int argc, char **argv)
{
    (void)argc;
    sqlite3 *db = sluice_userdb_open(argv[2], false, true);
    if (db == NULL) {
        return EXIT_FAIL;
    }
    sqlite3_stmt *stmt = sluice_userdb_prepare(
        db, "SELECT username, active, quota, maildir FROM mailbox ORDER BY username");
    int rc = stmt != NULL ? SQLITE_ROW : SQLITE_ERROR;
    if (stmt != NULL) {
        printf("username\tactive\tquota_bytes\tmaildir\n");
    }
    while (rc == SQLITE_ROW && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        printf("%s\t%lld\t%lld\t%s\n", (const char *)sqlite3_column_text(stmt, 0),
               (long long)sqlite3_column_int64(stmt, 1), (long long)sqlite3_column_int64(stmt, 2),
               (const char *)sqlite3_column_text(stmt, 3));
    }
    if (stmt != NULL && rc != SQLITE_DONE) {
        sluice_userdb_err("list: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(stmt);
    sqlite3_close_v2(db);
    return rc == SQLITE_DONE ? 0 : EXIT_FAIL;
}

typedef struct sluice_userdb_cmd {
    const char *name;
    int argc_min; /* counting argv[0], the command and DB */
    int argc_max;
    int (*run)(int argc, char **argv);
} sluice_userdb_cmd;

static const sluice_userdb_cmd sluice_userdb_cmds[] = {
    {"create", 3, 3, sluice_userdb_cmd_create},
    {"add", 4, 12, sluice_userdb_cmd_add},
    {"del", 4, 4, sluice_userdb_cmd_del},
    {"set-active", 5, 5, sluice_userdb_cmd_set_active},
    {"demo", 3, 4, sluice_userdb_cmd_demo},
    {"list", 3, 3, sluice_userdb_cmd_list},
};

int main(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        fputs(sluice_userdb_usage, stdout);
        return 0;
    }
    if (argc < 3) {
        return sluice_userdb_usage_fail("missing command or database");
    }
    /* The file holds password hashes: no world access to what we create. */
    mode_t mask = umask(0);
    umask(mask | 027);
    for (size_t i = 0; i < sizeof(sluice_userdb_cmds) / sizeof(sluice_userdb_cmds[0]); i++) {
        const sluice_userdb_cmd *c = &sluice_userdb_cmds[i];
        if (strcmp(argv[1], c->name) != 0) {
            continue;
        }
        if (argc < c->argc_min || argc > c->argc_max) {
            return sluice_userdb_usage_fail("wrong number of arguments");
        }
        return c->run(argc, argv);
    }
    sluice_userdb_err("unknown command \"%s\"", argv[1]);
    fputs(sluice_userdb_usage, stderr);
    return EXIT_USAGE;
}
