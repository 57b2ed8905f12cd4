/* tests/unit/auth/test_userdb.c: the userdb layer against real SQLite files
 * built here with the postfixadmin schema: address split, query rewrite for
 * all three dialects, the shared column and value rules, the reconnect
 * backoff, the MySQL connect string, the SQLite driver (userdb and
 * password_query), the PostgreSQL and MariaDB drivers without a server
 * (config errors, TEMPFAIL, bounded and paced reconnects; with real servers
 * they are tested by tests/integration/test_sql_userdb.sh), the per-core
 * cache and the resolver threads. */
#include "auth/resolver.h"
#include "auth/userdb.h"
#include "auth/userdb_cache.h"
#include "auth/userdb_mysql.h"
#include "auth/userdb_sqlite.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#define TEST_QUERY "SELECT maildir, quota, active FROM mailbox WHERE username = '%u'"
#define TEST_WAIT_MS 10000

static char test_dir[256];

static const char test_schema[] =
    "CREATE TABLE domain (domain VARCHAR(255) NOT NULL PRIMARY KEY,"
    "  description VARCHAR(255) NOT NULL DEFAULT '', active TINYINT NOT NULL DEFAULT 1);"
    "CREATE TABLE mailbox (username VARCHAR(255) NOT NULL PRIMARY KEY,"
    "  password VARCHAR(255) NOT NULL DEFAULT '', name VARCHAR(255) NOT NULL DEFAULT '',"
    "  maildir VARCHAR(255) NOT NULL DEFAULT '', quota BIGINT NOT NULL DEFAULT 0,"
    "  local_part VARCHAR(255) NOT NULL DEFAULT '', domain VARCHAR(255) NOT NULL DEFAULT '',"
    "  created DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,"
    "  modified DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,"
    "  active TINYINT NOT NULL DEFAULT 1);";

/* ---- helpers ---- */

static uint64_t test_now_ms(void);

static void test_path(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", test_dir, name);
}

static void test_sql(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        fail_msg("sql %s: %s", sql, msg);
    }
}

static void test_add_user(sqlite3 *db, const char *user, const char *maildir, int64_t quota,
                          int active)
{
    sqlite3_stmt *st = NULL;
    const char *at = strchr(user, '@');
    assert_non_null(at);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO mailbox (username, maildir, quota, active,"
                                        " local_part, domain) VALUES (?, ?, ?, ?, ?, ?)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, maildir, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, quota);
    sqlite3_bind_int(st, 4, active);
    sqlite3_bind_text(st, 5, user, (int)(at - user), SQLITE_STATIC);
    sqlite3_bind_text(st, 6, at + 1, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
}

/* A fresh DB file with the standard users; maildirs are prefixed with tag
 * so tests can tell two files apart. */
static sqlite3 *test_make_db(const char *name, const char *tag, char *path_out, size_t len)
{
    char m[128];
    sqlite3 *db = NULL;
    test_path(path_out, len, name);
    unlink(path_out);
    assert_int_equal(sqlite3_open(path_out, &db), SQLITE_OK);
    test_sql(db, test_schema);
    snprintf(m, sizeof(m), "%s/alice/", tag);
    test_add_user(db, "alice@example.test", m, 1000000, 1);
    snprintf(m, sizeof(m), "%s/bob/", tag);
    test_add_user(db, "bob@example.test", m, 0, 0);
    test_add_user(db, "o'brien@example.test", "example.test/o'brien/", 5, 1);
    test_add_user(db, "carol@other.test", "/var/vmail/carol", 0, 1);
    return db;
}

static userdb_driver *test_driver(const char *path, const char *query)
{
    char err[256] = "";
    userdb_config cfg = {.driver = "sqlite", .connect = path, .user_query = query};
    userdb_driver *d = userdb_driver_new(&cfg, err, sizeof(err));
    if (d == NULL) {
        fail_msg("driver: %s", err);
    }
    return d;
}

static userdb_result test_lookup(userdb_driver *d, const char *user)
{
    char local[USERDB_ADDR_BYTES_MAX];
    const char *at = strchr(user, '@');
    assert_non_null(at);
    snprintf(local, sizeof(local), "%.*s", (int)(at - user), user);
    userdb_result r;
    memset(&r, 0xAA, sizeof(r));
    assert_int_equal(d->ops->lookup(d, user, local, at + 1, &r), 0);
    return r;
}

static int test_group_setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(test_dir, sizeof(test_dir), "%s/test_userdb.XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    return mkdtemp(test_dir) != NULL ? 0 : -1;
}

static int test_group_teardown(void **state)
{
    (void)state;
    DIR *dir = opendir(test_dir);
    if (dir == NULL) {
        return -1;
    }
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        char p[512];
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(p, sizeof(p), "%s/%s", test_dir, e->d_name);
            unlink(p);
        }
    }
    closedir(dir);
    return rmdir(test_dir);
}

/* ---- userdb_split_address ---- */

typedef struct split_case {
    const char *addr;
    const char *delims;
    bool ok;
    const char *user;
    const char *local;
    const char *detail;
} split_case;

static void test_split_table(void **state)
{
    (void)state;
    static const split_case cases[] = {
        {"User+Lists@Example.TEST", "+", true, "user@example.test", "user", "Lists"},
        {"alice@example.test", "+", true, "alice@example.test", "alice", ""},
        {"alice@example.test", "", true, "alice@example.test", "alice", ""},
        {"alice+x@example.test", NULL, true, "alice+x@example.test", "alice+x", ""},
        {"a-b+c-d@x.test", "+-", true, "a@x.test", "a", "b+c-d"},
        {"a+b-c@x.test", "-+", true, "a@x.test", "a", "b-c"},
        {"ALICE@EXAMPLE.TEST", "+", true, "alice@example.test", "alice", ""},
        {"alice+@example.test", "+", true, "alice@example.test", "alice", ""},
        {"\"a@b\"@example.test", "+", true, "\"a@b\"@example.test", "\"a@b\"", ""},
        {"o'Brien+Tag@x.test", "+", true, "o'brien@x.test", "o'brien", "Tag"},
        {"no-at-sign", "+", false, NULL, NULL, NULL},
        {"", "+", false, NULL, NULL, NULL},
        {"@example.test", "+", false, NULL, NULL, NULL},
        {"+detail@example.test", "+", false, NULL, NULL, NULL},
        {"alice@", "+", false, NULL, NULL, NULL},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        const split_case *c = &cases[i];
        char user[USERDB_ADDR_BYTES_MAX] = "", local[USERDB_ADDR_BYTES_MAX] = "";
        char detail[USERDB_ADDR_BYTES_MAX] = "";
        sl_slice s = {(const uint8_t *)c->addr, strlen(c->addr)};
        bool got = userdb_split_address(s, c->delims, user, sizeof(user), local, sizeof(local),
                                        detail, sizeof(detail));
        if (got != c->ok) {
            fail_msg("case %zu %s: got ok=%d want %d", i, c->addr, got, c->ok);
        }
        if (c->ok && (strcmp(user, c->user) != 0 || strcmp(local, c->local) != 0 ||
                      strcmp(detail, c->detail) != 0)) {
            fail_msg("case %zu %s: got %s|%s|%s want %s|%s|%s", i, c->addr, user, local, detail,
                     c->user, c->local, c->detail);
        }
    }
}

static void test_split_too_long(void **state)
{
    (void)state;
    char addr[USERDB_ADDR_BYTES_MAX + 16];
    char user[USERDB_ADDR_BYTES_MAX], local[USERDB_ADDR_BYTES_MAX];
    char detail[USERDB_ADDR_BYTES_MAX];
    /* Exactly fits: 300 + '@' + 18 = 319 bytes plus NUL. */
    memset(addr, 'a', 300);
    snprintf(addr + 300, sizeof(addr) - 300, "@%s", "example.test.longx");
    sl_slice s = {(const uint8_t *)addr, strlen(addr)};
    assert_int_equal(s.len, USERDB_ADDR_BYTES_MAX - 1);
    assert_true(userdb_split_address(s, "+", user, sizeof(user), local, sizeof(local), detail,
                                     sizeof(detail)));
    /* One byte more does not fit. */
    snprintf(addr + 300, sizeof(addr) - 300, "@%s", "example.test.longxy");
    s.len = strlen(addr);
    assert_false(userdb_split_address(s, "+", user, sizeof(user), local, sizeof(local), detail,
                                      sizeof(detail)));
    /* Small output buffers are respected for each part. */
    s = SL_SLICE_LIT("alice+detail@example.test");
    assert_false(userdb_split_address(s, "+", user, 10, local, sizeof(local), detail,
                                      sizeof(detail)));
    assert_false(userdb_split_address(s, "+", user, sizeof(user), local, 5, detail,
                                      sizeof(detail)));
    assert_false(userdb_split_address(s, "+", user, sizeof(user), local, sizeof(local), detail,
                                      6));
    assert_true(userdb_split_address(s, "+", user, sizeof(user), local, 6, detail, 7));
    assert_string_equal(detail, "detail");
}

static void test_split_embedded_nul(void **state)
{
    (void)state;
    static const char raw[] = "alice\0x@example.test";
    char user[64], local[64], detail[64];
    sl_slice s = {(const uint8_t *)raw, sizeof(raw) - 1};
    assert_false(userdb_split_address(s, "+", user, sizeof(user), local, sizeof(local), detail,
                                      sizeof(detail)));
}

/* ---- query rewrite ---- */

typedef struct convert_case {
    const char *query;
    const char *sql; /* NULL: must be rejected */
    const char *params;
} convert_case;

static void test_convert_check(userdb_dialect dialect, const convert_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const convert_case *c = &cases[i];
        char params[USERDB_QUERY_PARAMS_MAX];
        size_t params_n = 0;
        char err[200] = "";
        char *sql = userdb_query_convert(c->query, dialect, params, &params_n, err, sizeof(err));
        if (c->sql == NULL) {
            if (sql != NULL || err[0] == '\0') {
                fail_msg("dialect %d case %zu %s: got %s, want an error", dialect, i, c->query,
                         sql);
            }
            continue;
        }
        if (sql == NULL || strcmp(sql, c->sql) != 0 || params_n != strlen(c->params) ||
            memcmp(params, c->params, params_n) != 0) {
            fail_msg("dialect %d case %zu %s: got [%s] want [%s] (err %s)", dialect, i, c->query,
                     sql, c->sql, err);
        }
        free(sql);
    }
}

static void test_convert_table(void **state)
{
    (void)state;
    static const convert_case cases[] = {
        {"SELECT m FROM t WHERE u = '%u'", "SELECT m FROM t WHERE u = ?", "u"},
        {"SELECT m FROM t WHERE u = %u", "SELECT m FROM t WHERE u = ?", "u"},
        {"WHERE l = '%n' AND d = '%d'", "WHERE l = ? AND d = ?", "nd"},
        {"WHERE u = '%n@%d'", "WHERE u = (? || '@' || ?)", "nd"},
        {"WHERE u = 'x%u'", "WHERE u = ('x' || ?)", "u"},
        {"WHERE u = 'it''s %u'", "WHERE u = ('it''s ' || ?)", "u"},
        {"WHERE x LIKE 'a%%b' AND u = '%u'", "WHERE x LIKE 'a%b' AND u = ?", "u"},
        {"WHERE q %% 2 = 0 AND u = %u", "WHERE q % 2 = 0 AND u = ?", "u"},
        {"WHERE x = '' AND u = '%u'", "WHERE x = '' AND u = ?", "u"},
        {"WHERE u = '%u' OR u = '%u'", "WHERE u = ? OR u = ?", "uu"},
        {"WHERE u = '%{user}'", "WHERE u = ?", "u"},
        {"WHERE l = '%{username}' AND d = %{domain}", "WHERE l = ? AND d = ?", "nd"},
        {"SELECT \"maildir\" FROM t WHERE u = '%u'", "SELECT \"maildir\" FROM t WHERE u = ?", "u"},
        {"WHERE u = '%x'", NULL, NULL},
        {"WHERE u = %Lu", NULL, NULL},
        {"WHERE u = '%{usr}'", NULL, NULL},
        {"WHERE u = '%{user'", NULL, NULL},
        {"WHERE u = %", NULL, NULL},
        {"WHERE u = '%u", NULL, NULL},
        {"WHERE u = 'abc%'", NULL, NULL},
        {"WHERE \"%u\" = 1", NULL, NULL},
        {"SELECT \"m FROM t WHERE u = %u", NULL, NULL},
    };
    test_convert_check(USERDB_DIALECT_SQLITE, cases, SL_ARRAY_LEN(cases));
}

static void test_convert_pgsql(void **state)
{
    (void)state;
    static const convert_case cases[] = {
        {"SELECT m FROM t WHERE u = '%u'", "SELECT m FROM t WHERE u = $1", "u"},
        {"WHERE l = %n AND d = '%d' OR u = '%u'", "WHERE l = $1 AND d = $2 OR u = $3", "ndu"},
        {"WHERE u = '%n@%d'", "WHERE u = ($1 || '@' || $2)", "nd"},
        {"WHERE u = 'it''s %{user}'", "WHERE u = ('it''s ' || $1)", "u"},
        {"WHERE active = '1' AND u = '%u'", "WHERE active = '1' AND u = $1", "u"},
        {"WHERE q %% 2 = 0 AND u = %u", "WHERE q % 2 = 0 AND u = $1", "u"},
        {"SELECT \"Maildir\" FROM t WHERE u = '%u'", "SELECT \"Maildir\" FROM t WHERE u = $1", "u"},
        {"WHERE u = \"%u\"", NULL, NULL},
    };
    test_convert_check(USERDB_DIALECT_PGSQL, cases, SL_ARRAY_LEN(cases));
}

static void test_convert_mysql(void **state)
{
    (void)state;
    static const convert_case cases[] = {
        {"SELECT m FROM t WHERE u = '%u'", "SELECT m FROM t WHERE u = ?", "u"},
        {"WHERE u = '%n@%d'", "WHERE u = CONCAT(?, '@', ?)", "nd"},
        {"WHERE u = 'it''s %u'", "WHERE u = CONCAT('it''s ', ?)", "u"},
        /* MySQL admins also quote with "...": a string holding an escape. */
        {"WHERE u = \"%u\" AND x = \"y\"", "WHERE u = ? AND x = \"y\"", "u"},
        {"WHERE u = \"a\"\"%n\"", "WHERE u = CONCAT('a\"', ?)", "n"},
        {"WHERE u = \"it's %u\"", "WHERE u = CONCAT('it''s ', ?)", "u"},
        {"WHERE u = '%u' AND active = '1'", "WHERE u = ? AND active = '1'", "u"},
        {"WHERE u = \"%u", NULL, NULL},
    };
    test_convert_check(USERDB_DIALECT_MYSQL, cases, SL_ARRAY_LEN(cases));
}

static void test_convert_too_many(void **state)
{
    (void)state;
    char q[256] = "SELECT maildir FROM mailbox WHERE 1";
    for (int i = 0; i <= USERDB_QUERY_PARAMS_MAX; i++) {
        strcat(q, " OR u=%u");
    }
    char params[USERDB_QUERY_PARAMS_MAX];
    size_t n = 0;
    char err[200] = "";
    assert_null(userdb_query_convert(q, USERDB_DIALECT_PGSQL, params, &n, err, sizeof(err)));
    assert_non_null(strstr(err, "more than"));
}

/* ---- shared column and value rules ---- */

static void test_columns_map(void **state)
{
    (void)state;
    static const char *const a[] = {"Home", "quota", "MAIL", "x", "maildir", "active"};
    static const char *const b[] = {"quota", "quota_bytes", "password", NULL, "mail"};
    static const char *const c[] = {"username", "created"};
    userdb_columns got;
    userdb_columns_map(a, SL_ARRAY_LEN(a), &got);
    assert_int_equal(got.maildir, 4);
    assert_int_equal(got.quota, 1);
    assert_int_equal(got.active, 5);
    assert_int_equal(got.password, -1);
    userdb_columns_map(b, SL_ARRAY_LEN(b), &got);
    assert_int_equal(got.maildir, 4);
    assert_int_equal(got.quota, 1);
    assert_int_equal(got.active, -1);
    assert_int_equal(got.password, 2);
    userdb_columns_map(c, SL_ARRAY_LEN(c), &got);
    assert_int_equal(got.maildir, -1);
    assert_int_equal(got.quota, -1);
    /* Dovecot's userdb field name; quota_bytes or quota win over it. */
    static const char *const d[] = {"maildir", "quota_rule"};
    static const char *const e[] = {"quota_rule", "maildir", "quota"};
    userdb_columns_map(d, SL_ARRAY_LEN(d), &got);
    assert_int_equal(got.quota, 1);
    userdb_columns_map(e, SL_ARRAY_LEN(e), &got);
    assert_int_equal(got.quota, 2);
}

static userdb_text test_text(const char *s)
{
    userdb_text t = {s, s != NULL ? strlen(s) : 0};
    return t;
}

static void test_text_rules(void **state)
{
    (void)state;
    static const struct {
        const char *v;
        bool active;
        uint64_t quota;
    } cases[] = {
        {NULL, true, 0},     {"1", true, 1},         {"0", false, 0},      {"00", false, 0},
        {"-0", false, 0},    {"t", true, 0},         {"f", false, 0},      {"FALSE", false, 0},
        {"No", false, 0},    {"off", false, 0},      {"n", false, 0},      {"yes", true, 0},
        {"", true, 0},       {"2048", true, 2048},   {"-1", true, 0},      {"12abc", true, 12},
        {"+7", true, 7},     {"0.0", true, 0},       {"1073741824", true, 1073741824ULL},
        {"99999999999999999999999", true, UINT64_MAX},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        userdb_text t = test_text(cases[i].v);
        bool a = userdb_text_active(t);
        uint64_t q = userdb_text_quota(t);
        if (a != cases[i].active || q != cases[i].quota) {
            fail_msg("value %s: got active=%d quota=%" PRIu64 ", want %d %" PRIu64,
                     cases[i].v ? cases[i].v : "NULL", a, q, cases[i].active, cases[i].quota);
        }
    }
    /* Dovecot quota rules, as a userdb returns them for the quota plugin. */
    static const struct {
        const char *v;
        uint64_t quota;
    } rules[] = {
        {"*:storage=1G", 1073741824ULL},
        {"*:storage=1024", 1048576},         /* a bare storage= counts KiB */
        {"*:bytes=1048576", 1048576},
        {"*:bytes=10M", 10485760},
        {"?:storage=512m", 536870912},
        {"storage=2k", 2048},                 /* no mailbox name: the default rule */
        {"*:storage=100B", 100},
        {"*:messages=1000 storage=1T", 1099511627776ULL},
        {"*:storage=1G messages=10", 1073741824ULL},
        {"*:storage=1G ignore", 0},
        {"*:ignore", 0},
        {"Trash:storage=+100M", 0},           /* one mailbox's rule: not the limit */
        {"INBOX:storage=1G", 0},
        {"*:storage=+100M", 0},               /* relative */
        {"*:storage=10%", 0},                 /* a percentage */
        {"*:storage=1X", 0},
        {"*:storage=1GB", 0},
        {"*:storage=", 0},
        {"*:messages=100", 0},
        {"*:storage=99999999999999999999G", UINT64_MAX},
        {"*:storage=17179869184T", UINT64_MAX},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(rules); i++) {
        uint64_t q = userdb_text_quota(test_text(rules[i].v));
        if (q != rules[i].quota) {
            fail_msg("quota rule '%s': got %" PRIu64 ", want %" PRIu64, rules[i].v, q,
                     rules[i].quota);
        }
    }
    userdb_text nul_unit = {"*:storage=1\0", 12};
    assert_int_equal(userdb_text_quota(nul_unit), 0);
    /* Only the given length counts: "0" followed by more bytes is not "0". */
    userdb_text part = {"0x", 1};
    assert_false(userdb_text_active(part));
}

static void test_result_fill(void **state)
{
    (void)state;
    userdb_result r;
    userdb_result_fill(&r, test_text("example.test/a/"), test_text("5"), test_text("1"));
    assert_int_equal(r.status, USERDB_FOUND);
    assert_string_equal(r.maildir, "example.test/a/");
    assert_int_equal(r.quota_bytes, 5);
    userdb_result_fill(&r, test_text("m/"), test_text(NULL), test_text("f"));
    assert_int_equal(r.status, USERDB_INACTIVE);
    assert_string_equal(r.maildir, "m/");
    userdb_text nul = {"ab\0cd", 5};
    userdb_result_fill(&r, nul, test_text(NULL), test_text(NULL));
    assert_int_equal(r.status, USERDB_TEMPFAIL);
    assert_string_equal(r.maildir, "");
    /* A length past the limit is refused before a byte is read (the
     * pointer here has far fewer bytes behind it). */
    userdb_text huge = {"abc", USERDB_MAILDIR_BYTES_MAX};
    userdb_result_fill(&r, huge, test_text(NULL), test_text(NULL));
    assert_int_equal(r.status, USERDB_TEMPFAIL);
    userdb_result_fill(&r, test_text(""), test_text("1"), test_text("1"));
    assert_int_equal(r.status, USERDB_TEMPFAIL);
    userdb_result_fill(&r, test_text(NULL), test_text("1"), test_text("1"));
    assert_int_equal(r.status, USERDB_TEMPFAIL);

    passdb_result p;
    passdb_result_fill(&p, test_text("{PLAIN}x"), test_text(NULL));
    assert_int_equal(p.status, USERDB_FOUND);
    assert_string_equal(p.password, "{PLAIN}x");
    passdb_result_fill(&p, test_text("{PLAIN}x"), test_text("0"));
    assert_int_equal(p.status, USERDB_INACTIVE);
    passdb_result_fill(&p, test_text(NULL), test_text("1"));
    assert_int_equal(p.status, USERDB_NOTFOUND);
    passdb_result_fill(&p, test_text(""), test_text("1"));
    assert_int_equal(p.status, USERDB_FOUND);
    assert_string_equal(p.password, "");
    userdb_text long_pw = {"abc", USERDB_PASSWORD_BYTES_MAX};
    passdb_result_fill(&p, long_pw, test_text(NULL));
    assert_int_equal(p.status, USERDB_TEMPFAIL);
    assert_string_equal(p.password, "");
}

static void test_backoff(void **state)
{
    (void)state;
    static const uint64_t want_delay_ms[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000};
    userdb_backoff b = {0};
    assert_false(userdb_backoff_waiting(&b, 0));
    uint64_t now = 1000;
    for (size_t i = 0; i < SL_ARRAY_LEN(want_delay_ms); i++) {
        userdb_backoff_failed(&b, now);
        if (b.delay_ms != want_delay_ms[i]) {
            fail_msg("failure %zu: got delay %" PRIu64 " want %" PRIu64, i, b.delay_ms,
                     want_delay_ms[i]);
        }
        assert_true(userdb_backoff_waiting(&b, now));
        assert_true(userdb_backoff_waiting(&b, now + b.delay_ms - 1));
        assert_false(userdb_backoff_waiting(&b, now + b.delay_ms));
        now += b.delay_ms;
    }
    userdb_backoff_reset(&b);
    assert_false(userdb_backoff_waiting(&b, now));
    userdb_backoff_failed(&b, now);
    assert_int_equal(b.delay_ms, USERDB_BACKOFF_MIN_MS);
}

/* ---- MySQL connect string ---- */

static void test_mysql_conninfo(void **state)
{
    (void)state;
    userdb_mysql_conninfo ci;
    char err[256] = "";
    assert_true(userdb_mysql_conninfo_parse(
        "host=127.0.0.1 port=3307 dbname=mail user=postfix password=s3cr=t", &ci, err,
        sizeof(err)));
    assert_string_equal(ci.host, "127.0.0.1");
    assert_int_equal(ci.port, 3307);
    assert_string_equal(ci.dbname, "mail");
    assert_string_equal(ci.user, "postfix");
    assert_string_equal(ci.password, "s3cr=t");
    assert_string_equal(ci.unix_socket, "");
    assert_true(userdb_mysql_conninfo_parse(
        "  unix_socket=/run/mysqld/mysqld.sock\tdbname=mail user=x password='a b\\'c\\\\' ", &ci,
        err, sizeof(err)));
    assert_string_equal(ci.unix_socket, "/run/mysqld/mysqld.sock");
    assert_string_equal(ci.password, "a b'c\\");
    assert_string_equal(ci.host, "");
    assert_int_equal(ci.port, 0);
    assert_true(userdb_mysql_conninfo_parse("password=''", &ci, err, sizeof(err)));
    assert_string_equal(ci.password, "");

    static const struct {
        const char *s;
        const char *want;
    } bad[] = {
        {"host=a sslmode=require", "unknown key \"sslmode\""},
        {"host=a host=b", "host given twice"},
        {"host", "expected key=value"},
        {"port=0", "port"},
        {"port=65536", "port"},
        {"port=33o6", "port"},
        {"port=", "port"},
        {"password='abc", "password has an unclosed quote"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        bool ok = userdb_mysql_conninfo_parse(bad[i].s, &ci, err, sizeof(err));
        if (ok || strstr(err, bad[i].want) == NULL) {
            fail_msg("%s: got ok=%d err \"%s\", want \"%s\"", bad[i].s, ok, err, bad[i].want);
        }
    }
    char longv[400] = "unix_socket=";
    memset(longv + strlen(longv), 's', 120);
    assert_false(userdb_mysql_conninfo_parse(longv, &ci, err, sizeof(err)));
    assert_non_null(strstr(err, "unix_socket is too long"));
    /* Messages never echo a password. */
    assert_false(userdb_mysql_conninfo_parse("password='hunter2", &ci, err, sizeof(err)));
    assert_null(strstr(err, "hunter2"));
}

/* ---- SQLite driver ---- */

static void test_sqlite_found_notfound_inactive(void **state)
{
    (void)state;
    char path[300];
    sqlite3_close(test_make_db("basic.db", "one", path, sizeof(path)));
    userdb_driver *d = test_driver(path, TEST_QUERY);
    userdb_result r = test_lookup(d, "alice@example.test");
    assert_int_equal(r.status, USERDB_FOUND);
    assert_string_equal(r.maildir, "one/alice/");
    assert_int_equal(r.quota_bytes, 1000000);
    r = test_lookup(d, "nobody@example.test");
    assert_int_equal(r.status, USERDB_NOTFOUND);
    r = test_lookup(d, "bob@example.test");
    assert_int_equal(r.status, USERDB_INACTIVE);
    r = test_lookup(d, "carol@other.test");
    assert_int_equal(r.status, USERDB_FOUND);
    assert_string_equal(r.maildir, "/var/vmail/carol");
    assert_int_equal(r.quota_bytes, 0);
    userdb_driver_free(&d);
    assert_null(d);
}

static void test_sqlite_bind_forms(void **state)
{
    (void)state;
    static const char *const queries[] = {
        TEST_QUERY,
        "SELECT maildir, quota, active FROM mailbox WHERE username = %u",
        "SELECT maildir, quota, active FROM mailbox WHERE local_part = '%n' AND domain = '%d'",
        "SELECT maildir, quota, active FROM mailbox WHERE username = '%n@%d'",
        "SELECT maildir AS home, quota FROM mailbox WHERE username = '%u' AND active = 1",
    };
    char path[300];
    sqlite3_close(test_make_db("forms.db", "f", path, sizeof(path)));
    for (size_t i = 0; i < SL_ARRAY_LEN(queries); i++) {
        userdb_driver *d = test_driver(path, queries[i]);
        userdb_result r = test_lookup(d, "alice@example.test");
        if (r.status != USERDB_FOUND || strcmp(r.maildir, "f/alice/") != 0) {
            fail_msg("query %zu: got status %d maildir %s", i, r.status, r.maildir);
        }
        r = test_lookup(d, "o'brien@example.test");
        if (r.status != USERDB_FOUND || r.quota_bytes != 5) {
            fail_msg("query %zu: o'brien got status %d", i, r.status);
        }
        r = test_lookup(d, "alice@other.test");
        if (r.status != USERDB_NOTFOUND) {
            fail_msg("query %zu: alice@other got status %d", i, r.status);
        }
        userdb_driver_free(&d);
    }
}

static void test_sqlite_injection(void **state)
{
    (void)state;
    static const char *const evil[] = {
        "x' OR '1'='1@example.test",
        "' OR 1=1 --@example.test",
        "alice@example.test' --@x",
        "x'; DROP TABLE mailbox; --@example.test",
        "%u@example.test",
        "?@example.test",
    };
    char path[300];
    sqlite3_close(test_make_db("inject.db", "i", path, sizeof(path)));
    userdb_driver *d = test_driver(path, TEST_QUERY);
    userdb_driver *nd = test_driver(
        path, "SELECT maildir FROM mailbox WHERE local_part = '%n' AND domain = '%d'");
    for (size_t i = 0; i < SL_ARRAY_LEN(evil); i++) {
        userdb_result r = test_lookup(d, evil[i]);
        if (r.status != USERDB_NOTFOUND) {
            fail_msg("%s: got status %d want NOTFOUND", evil[i], r.status);
        }
        r = test_lookup(nd, evil[i]);
        if (r.status != USERDB_NOTFOUND) {
            fail_msg("%s (%%n/%%d): got status %d want NOTFOUND", evil[i], r.status);
        }
    }
    /* The table is still there. */
    assert_int_equal(test_lookup(d, "alice@example.test").status, USERDB_FOUND);
    userdb_driver_free(&d);
    userdb_driver_free(&nd);
}

static void test_sqlite_active_and_columns(void **state)
{
    (void)state;
    char path[300];
    sqlite3 *db = test_make_db("cols.db", "c", path, sizeof(path));
    test_sql(db, "CREATE TABLE u2 (u TEXT, mail TEXT, quota, active);"
                 "INSERT INTO u2 VALUES ('t0@x', 'm0', '2048', '0');"
                 "INSERT INTO u2 VALUES ('tf@x', 'mf', NULL, 'f');"
                 "INSERT INTO u2 VALUES ('tn@x', 'mn', -1, NULL);"
                 "INSERT INTO u2 VALUES ('t1@x', 'm1', 7, 'yes');"
                 "INSERT INTO u2 VALUES ('te@x', '', 7, 1);"
                 "INSERT INTO u2 VALUES ('tz@x', NULL, 7, 1);");
    sqlite3_close(db);
    userdb_driver *d = test_driver(path, "SELECT Quota, ACTIVE, mail FROM u2 WHERE u = '%u'");
    userdb_result r = test_lookup(d, "t0@x");
    assert_int_equal(r.status, USERDB_INACTIVE);
    assert_string_equal(r.maildir, "m0");
    assert_int_equal(r.quota_bytes, 2048);
    assert_int_equal(test_lookup(d, "tf@x").status, USERDB_INACTIVE);
    r = test_lookup(d, "tn@x");
    assert_int_equal(r.status, USERDB_FOUND);
    assert_int_equal(r.quota_bytes, 0);
    assert_int_equal(test_lookup(d, "t1@x").status, USERDB_FOUND);
    /* An empty or NULL maildir would misdeliver: deferred instead. */
    assert_int_equal(test_lookup(d, "te@x").status, USERDB_TEMPFAIL);
    assert_int_equal(test_lookup(d, "tz@x").status, USERDB_TEMPFAIL);
    assert_int_equal(test_lookup(d, "t1@x").status, USERDB_FOUND);
    userdb_driver_free(&d);
}

static void test_sqlite_long_maildir(void **state)
{
    (void)state;
    char path[300];
    char m[USERDB_MAILDIR_BYTES_MAX + 1];
    sqlite3 *db = test_make_db("long.db", "l", path, sizeof(path));
    memset(m, 'm', sizeof(m) - 1);
    m[sizeof(m) - 1] = '\0';
    test_add_user(db, "big@example.test", m, 0, 1);
    m[USERDB_MAILDIR_BYTES_MAX - 1] = '\0';
    test_add_user(db, "fits@example.test", m, 0, 1);
    sqlite3_close(db);
    userdb_driver *d = test_driver(path, TEST_QUERY);
    assert_int_equal(test_lookup(d, "big@example.test").status, USERDB_TEMPFAIL);
    userdb_result r = test_lookup(d, "fits@example.test");
    assert_int_equal(r.status, USERDB_FOUND);
    assert_int_equal(strlen(r.maildir), USERDB_MAILDIR_BYTES_MAX - 1);
    userdb_driver_free(&d);
}

/* A table that disappears under a running driver is TEMPFAIL; once it is
 * back, the driver reopens and answers again. */
static void test_sqlite_missing_table_tempfail(void **state)
{
    (void)state;
    char path[300];
    sqlite3 *db = test_make_db("gone.db", "g", path, sizeof(path));
    userdb_driver *d = test_driver(path, TEST_QUERY);
    assert_int_equal(test_lookup(d, "alice@example.test").status, USERDB_FOUND);
    test_sql(db, "ALTER TABLE mailbox RENAME TO mailbox_old");
    assert_int_equal(test_lookup(d, "alice@example.test").status, USERDB_TEMPFAIL);
    assert_int_equal(test_lookup(d, "alice@example.test").status, USERDB_TEMPFAIL);
    test_sql(db, "ALTER TABLE mailbox_old RENAME TO mailbox");
    assert_int_equal(test_lookup(d, "alice@example.test").status, USERDB_FOUND);
    /* A write lock held past the busy timeout is TEMPFAIL too. */
    test_sql(db, "BEGIN EXCLUSIVE");
    assert_int_equal(test_lookup(d, "alice@example.test").status, USERDB_TEMPFAIL);
    test_sql(db, "COMMIT");
    assert_int_equal(test_lookup(d, "alice@example.test").status, USERDB_FOUND);
    sqlite3_close(db);
    userdb_driver_free(&d);
}

static void test_sqlite_file_replaced(void **state)
{
    (void)state;
    char path[300];
    sqlite3_close(test_make_db("swap.db", "before", path, sizeof(path)));
    userdb_driver *d = test_driver(path, TEST_QUERY);
    assert_string_equal(test_lookup(d, "alice@example.test").maildir, "before/alice/");
    unlink(path);
    /* The open connection keeps reading the old (unlinked) file. */
    assert_string_equal(test_lookup(d, "alice@example.test").maildir, "before/alice/");
    userdb_driver_free(&d);
}

typedef struct create_fail_case {
    const char *driver;
    const char *file; /* under test_dir; NULL: none */
    const char *query;
    const char *want; /* substring of the error */
} create_fail_case;

static void test_sqlite_create_errors(void **state)
{
    (void)state;
    static const create_fail_case cases[] = {
        {"mysql-ish", "errs.db", TEST_QUERY, "unknown driver"},
        {NULL, "errs.db", TEST_QUERY, "no driver"},
        {"sqlite", NULL, TEST_QUERY, "no database"},
        {"sqlite", "does-not-exist.db", TEST_QUERY, "cannot open"},
        {"sqlite", "errs.db", NULL, "no user_query"},
        {"sqlite", "errs.db", "SELECT maildir FROM mailbox WHERE username = '%x'", "%x"},
        {"sqlite", "errs.db", "SELECT maildir FROM mailbox WHERE username = '%Lu'", "%L"},
        {"sqlite", "errs.db", "SELECT maildir FROM nosuch WHERE username = '%u'", "no such table"},
        {"sqlite", "errs.db", "SELECT quota FROM mailbox WHERE username = '%u'", "maildir"},
        {"sqlite", "errs.db", "SELECT maildir FROM mailbox", "none of"},
        {"sqlite", "errs.db", "SELECT maildir FROM mailbox WHERE username = ? OR username = %u",
         "parameters"},
        {"sqlite", "errs.db", "SELECT maildir FROM mailbox WHERE username = %u; DELETE FROM x",
         "one statement"},
        {"sqlite", "errs.db", "SELEC maildir FROM mailbox WHERE username = %u", "prepare"},
    };
    char path[300];
    sqlite3_close(test_make_db("errs.db", "e", path, sizeof(path)));
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        const create_fail_case *c = &cases[i];
        char file[300];
        char err[256] = "";
        test_path(file, sizeof(file), c->file != NULL ? c->file : "");
        userdb_config cfg = {.driver = c->driver,
                             .connect = c->file != NULL ? file : NULL,
                             .user_query = c->query};
        userdb_driver *d = userdb_driver_new(&cfg, err, sizeof(err));
        if (d != NULL || strstr(err, c->want) == NULL) {
            fail_msg("case %zu: got driver %p err \"%s\", want NULL and \"%s\"", i, (void *)d,
                     err, c->want);
        }
    }
}

/* ---- password_query (SQLite) ---- */

#define TEST_PASS_QUERY "SELECT password, active FROM mailbox WHERE username = '%u'"

static passdb_result test_passdb(userdb_driver *d, const char *user)
{
    char local[USERDB_ADDR_BYTES_MAX];
    const char *at = strchr(user, '@');
    assert_non_null(at);
    snprintf(local, sizeof(local), "%.*s", (int)(at - user), user);
    passdb_result r;
    memset(&r, 0xAA, sizeof(r));
    assert_int_equal(d->ops->passdb_lookup(d, user, local, at + 1, &r), 0);
    return r;
}

static userdb_driver *test_driver_pass(const char *path, const char *pass_query)
{
    char err[256] = "";
    userdb_config cfg = {.driver = "sqlite",
                         .connect = path,
                         .user_query = TEST_QUERY,
                         .password_query = pass_query};
    userdb_driver *d = userdb_driver_new(&cfg, err, sizeof(err));
    if (d == NULL) {
        fail_msg("driver: %s", err);
    }
    return d;
}

static void test_sqlite_passdb(void **state)
{
    (void)state;
    char path[300];
    char big[USERDB_PASSWORD_BYTES_MAX + 40];
    sqlite3 *db = test_make_db("pass.db", "p", path, sizeof(path));
    test_sql(db, "UPDATE mailbox SET password = '{SHA512-CRYPT}$6$salt$hash'"
                 " WHERE username = 'alice@example.test';"
                 "UPDATE mailbox SET password = '{PLAIN}bobpw' WHERE username = 'bob@example.test';"
                 "UPDATE mailbox SET password = 'o''pw' WHERE username = 'o''brien@example.test';"
                 "CREATE TABLE pw2 (u TEXT, password TEXT);"
                 "INSERT INTO pw2 VALUES ('null@x', NULL);");
    snprintf(big, sizeof(big), "INSERT INTO pw2 VALUES ('big@x', '%0*d');",
             USERDB_PASSWORD_BYTES_MAX, 7);
    test_sql(db, big);
    sqlite3_close(db);

    userdb_driver *d = test_driver_pass(path, TEST_PASS_QUERY);
    passdb_result r = test_passdb(d, "alice@example.test");
    assert_int_equal(r.status, USERDB_FOUND);
    assert_string_equal(r.password, "{SHA512-CRYPT}$6$salt$hash");
    r = test_passdb(d, "bob@example.test");
    assert_int_equal(r.status, USERDB_INACTIVE);
    r = test_passdb(d, "o'brien@example.test");
    assert_int_equal(r.status, USERDB_FOUND);
    assert_string_equal(r.password, "o'pw");
    r = test_passdb(d, "nobody@example.test");
    assert_int_equal(r.status, USERDB_NOTFOUND);
    assert_string_equal(r.password, "");
    r = test_passdb(d, "x' OR '1'='1@example.test");
    assert_int_equal(r.status, USERDB_NOTFOUND);
    /* The userdb side of the same driver still answers. */
    assert_int_equal(test_lookup(d, "alice@example.test").status, USERDB_FOUND);
    userdb_driver_free(&d);

    /* Dovecot's usual form filters inactive users in SQL: they are unknown. */
    d = test_driver_pass(path, "SELECT password FROM mailbox WHERE local_part = '%n'"
                               " AND domain = '%d' AND active = '1'");
    assert_int_equal(test_passdb(d, "alice@example.test").status, USERDB_FOUND);
    assert_int_equal(test_passdb(d, "bob@example.test").status, USERDB_NOTFOUND);
    userdb_driver_free(&d);

    d = test_driver_pass(path, "SELECT password FROM pw2 WHERE u = %{user}");
    assert_int_equal(test_passdb(d, "null@x").status, USERDB_NOTFOUND);
    r = test_passdb(d, "big@x");
    assert_int_equal(r.status, USERDB_TEMPFAIL);
    assert_string_equal(r.password, "");
    userdb_driver_free(&d);

    /* No password_query: the op says so instead of guessing. */
    d = test_driver(path, TEST_QUERY);
    passdb_result none;
    assert_int_equal(d->ops->passdb_lookup(d, "alice@example.test", "alice", "example.test",
                                           &none),
                     -ENOTSUP);
    assert_int_equal(none.status, USERDB_TEMPFAIL);
    userdb_driver_free(&d);
}

static void test_sqlite_passdb_errors(void **state)
{
    (void)state;
    static const struct {
        const char *query;
        const char *want;
    } cases[] = {
        {"SELECT maildir FROM mailbox WHERE username = '%u'", "no password column"},
        {"SELECT password FROM mailbox", "password_query uses none of"},
        {"SELECT password FROM mailbox WHERE username = '%q'", "password_query has unsupported"},
        {"SELECT password FROM nosuch WHERE username = '%u'", "password_query does not prepare"},
    };
    char path[300];
    sqlite3_close(test_make_db("passerr.db", "pe", path, sizeof(path)));
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        char err[256] = "";
        userdb_config cfg = {.driver = "sqlite",
                             .connect = path,
                             .user_query = TEST_QUERY,
                             .password_query = cases[i].query};
        userdb_driver *d = userdb_driver_new(&cfg, err, sizeof(err));
        if (d != NULL || strstr(err, cases[i].want) == NULL) {
            fail_msg("case %zu: got driver %p err \"%s\", want NULL and \"%s\"", i, (void *)d,
                     err, cases[i].want);
        }
    }
}

/* ---- networked drivers without a server ---- */

/* A loopback TCP socket: listening (connections complete, nothing ever
 * answers) or only bound (connections are refused). The port stays ours
 * while the socket is open. */
static int test_socket(bool listening, unsigned *port_out)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    if (listening) {
        assert_int_equal(listen(fd, 128), 0);
    }
    *port_out = ntohs(a.sin_port);
    return fd;
}

/* Connections the listening socket holds, accepted and closed. */
static unsigned test_accept_all(int fd)
{
    unsigned n = 0;
    for (;;) {
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            return n;
        }
        close(c);
        n++;
    }
}

static void test_net_config_errors(void **state)
{
    (void)state;
    static const create_fail_case cases[] = {
        {"pgsql", NULL, TEST_QUERY, "no connect string"},
        {"pgsql", "host=127.0.0.1 bogus_key=1", TEST_QUERY, "bad connect string"},
        {"pgsql", "host=127.0.0.1 dbname='mail", TEST_QUERY, "bad connect string"},
        {"pgsql", "host=127.0.0.1", NULL, "no user_query"},
        {"pgsql", "host=127.0.0.1", "SELECT maildir FROM mailbox WHERE u = '%x'",
         "userdb pgsql: user_query has unsupported escape '%x'"},
        {"pgsql", "host=127.0.0.1", "SELECT maildir FROM mailbox", "none of"},
        {"mysql", NULL, TEST_QUERY, "no connect string"},
        {"mysql", "", TEST_QUERY, "no connect string"},
        {"mysql", "host=127.0.0.1 sslmode=x", TEST_QUERY, "unknown key \"sslmode\""},
        {"mariadb", "host=127.0.0.1 port=x", TEST_QUERY, "userdb mysql: connect string: port"},
        {"mariadb", "host=127.0.0.1", "SELECT maildir FROM mailbox WHERE u = \"%u",
         "userdb mysql: user_query has an unclosed \""},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        const create_fail_case *c = &cases[i];
        char err[256] = "";
        userdb_config cfg = {.driver = c->driver, .connect = c->file, .user_query = c->query};
        userdb_driver *d = userdb_driver_new(&cfg, err, sizeof(err));
        if (d != NULL || strstr(err, c->want) == NULL) {
            fail_msg("case %zu: got driver %p err \"%s\", want NULL and \"%s\"", i, (void *)d,
                     err, c->want);
        }
    }
}

/* A server that does not answer: creating the driver still works (the
 * server may come later), every lookup is TEMPFAIL and bounded by the
 * connect timeout, and reconnects are paced by the backoff instead of one
 * per lookup. */
static void test_net_backoff(const char *driver, uint64_t connect_timeout_ms, uint64_t run_ms,
                             unsigned attempts_max)
{
    unsigned port = 0;
    int fd = test_socket(true, &port);
    char conn[128];
    snprintf(conn, sizeof(conn), "host=127.0.0.1 port=%u dbname=mail user=sluice password=x",
             port);
    userdb_config cfg = {.driver = driver,
                         .connect = conn,
                         .user_query = TEST_QUERY,
                         .password_query = TEST_PASS_QUERY,
                         .connect_timeout_ms = connect_timeout_ms};
    char err[256] = "";
    uint64_t t0 = test_now_ms();
    userdb_driver *d = userdb_driver_new(&cfg, err, sizeof(err));
    if (d == NULL) {
        fail_msg("%s: driver_new: %s", driver, err);
    }
    uint64_t took = test_now_ms() - t0;
    if (took < connect_timeout_ms / 2 || took > connect_timeout_ms + 2000) {
        fail_msg("%s: creation took %" PRIu64 " ms, want about %" PRIu64, driver, took,
                 connect_timeout_ms);
    }
    unsigned lookups = 0;
    uint64_t slowest_ms = 0;
    for (uint64_t end = test_now_ms() + run_ms; test_now_ms() < end; lookups++) {
        uint64_t s = test_now_ms();
        userdb_result r = test_lookup(d, "alice@example.test");
        passdb_result p = test_passdb(d, "alice@example.test");
        slowest_ms = SL_MAX(slowest_ms, test_now_ms() - s);
        if (r.status != USERDB_TEMPFAIL || p.status != USERDB_TEMPFAIL) {
            fail_msg("%s: got status %d/%d want TEMPFAIL", driver, r.status, p.status);
        }
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    unsigned attempts = test_accept_all(fd);
    printf("# %s: %u connection attempts, %u lookups in %" PRIu64 " ms, slowest %" PRIu64
           " ms\n",
           driver, attempts, lookups, run_ms, slowest_ms);
    if (slowest_ms > connect_timeout_ms + 2000) {
        fail_msg("%s: a lookup took %" PRIu64 " ms, want <= connect timeout %" PRIu64, driver,
                 slowest_ms, connect_timeout_ms);
    }
    if (attempts < 2 || attempts > attempts_max || lookups < 4 * attempts) {
        fail_msg("%s: %u connection attempts for %u lookups, want 2..%u", driver, attempts,
                 lookups, attempts_max);
    }
    userdb_driver_free(&d);
    close(fd);
}

static void test_pgsql_unreachable(void **state)
{
    (void)state;
    /* Attempts at about 0, +0.1, +0.3, +0.7, +1.3 s (each 0.2 s long). */
    test_net_backoff("pgsql", 200, 1500, 7);
    /* Refused: answered at once, no waiting at all. */
    unsigned port = 0;
    int fd = test_socket(false, &port);
    char conn[128];
    snprintf(conn, sizeof(conn), "host=127.0.0.1 port=%u dbname=mail user=x", port);
    userdb_config cfg = {.driver = "pgsql", .connect = conn, .user_query = TEST_QUERY};
    char err[256] = "";
    userdb_driver *d = userdb_driver_new(&cfg, err, sizeof(err));
    assert_non_null(d);
    struct timespec ts = {0, 150000000};
    nanosleep(&ts, NULL);
    uint64_t t0 = test_now_ms();
    assert_int_equal(test_lookup(d, "alice@example.test").status, USERDB_TEMPFAIL);
    assert_true(test_now_ms() - t0 < 1000);
    passdb_result p;
    assert_int_equal(d->ops->passdb_lookup(d, "a@x", "a", "x", &p), -ENOTSUP);
    userdb_driver_free(&d);
    close(fd);
}

static void test_mysql_unreachable(void **state)
{
    (void)state;
    /* The library counts in whole seconds: attempts at 0 and +1.1 s. */
    test_net_backoff("mysql", 1000, 1500, 4);
    unsigned port = 0;
    int fd = test_socket(false, &port);
    char conn[128];
    snprintf(conn, sizeof(conn), "host=127.0.0.1 port=%u dbname=mail user=x", port);
    userdb_config cfg = {.driver = "mariadb", .connect = conn, .user_query = TEST_QUERY};
    char err[256] = "";
    userdb_driver *d = userdb_driver_new(&cfg, err, sizeof(err));
    assert_non_null(d);
    struct timespec ts = {0, 150000000};
    nanosleep(&ts, NULL);
    uint64_t t0 = test_now_ms();
    assert_int_equal(test_lookup(d, "alice@example.test").status, USERDB_TEMPFAIL);
    assert_true(test_now_ms() - t0 < 1000);
    userdb_driver_free(&d);
    close(fd);
}

/* ---- cache ---- */

static userdb_result test_result(userdb_status s, const char *maildir, uint64_t quota)
{
    userdb_result r;
    memset(&r, 0, sizeof(r));
    r.status = s;
    snprintf(r.maildir, sizeof(r.maildir), "%s", maildir);
    r.quota_bytes = quota;
    return r;
}

static void test_cache_hit_miss_ttl(void **state)
{
    (void)state;
    userdb_cache *c = userdb_cache_new(16, 1000, 100);
    userdb_result got;
    userdb_result found = test_result(USERDB_FOUND, "x/alice/", 42);
    userdb_result inactive = test_result(USERDB_INACTIVE, "x/bob/", 0);
    userdb_result notfound = test_result(USERDB_NOTFOUND, "", 0);
    assert_false(userdb_cache_get(c, "alice@x", 0, &got));
    userdb_cache_put(c, "alice@x", &found, 0);
    userdb_cache_put(c, "bob@x", &inactive, 0);
    userdb_cache_put(c, "nobody@x", &notfound, 0);
    assert_int_equal(userdb_cache_count(c), 3);
    assert_true(userdb_cache_get(c, "alice@x", 99, &got));
    assert_int_equal(got.status, USERDB_FOUND);
    assert_string_equal(got.maildir, "x/alice/");
    assert_int_equal(got.quota_bytes, 42);
    assert_true(userdb_cache_get(c, "nobody@x", 99, &got));
    assert_int_equal(got.status, USERDB_NOTFOUND);
    /* Negative entries expire first. */
    assert_false(userdb_cache_get(c, "nobody@x", 100, &got));
    assert_true(userdb_cache_get(c, "alice@x", 100, &got));
    assert_true(userdb_cache_get(c, "bob@x", 999, &got));
    assert_int_equal(got.status, USERDB_INACTIVE);
    assert_false(userdb_cache_get(c, "alice@x", 1000, &got));
    assert_false(userdb_cache_get(c, "bob@x", 1000, &got));
    assert_int_equal(userdb_cache_count(c), 0);
    assert_false(userdb_cache_get(c, "ALICE@x", 0, &got));
    userdb_cache_free(&c);
    assert_null(c);
}

static void test_cache_tempfail_and_update(void **state)
{
    (void)state;
    userdb_cache *c = userdb_cache_new(4, 1000, 1000);
    userdb_result got;
    userdb_result tf = test_result(USERDB_TEMPFAIL, "", 0);
    userdb_cache_put(c, "alice@x", &tf, 0);
    assert_int_equal(userdb_cache_count(c), 0);
    assert_false(userdb_cache_get(c, "alice@x", 0, &got));
    userdb_result a1 = test_result(USERDB_FOUND, "one/", 1);
    userdb_result a2 = test_result(USERDB_INACTIVE, "a-much-longer-maildir/", 2);
    userdb_cache_put(c, "alice@x", &a1, 0);
    userdb_cache_put(c, "alice@x", &a2, 500);
    assert_int_equal(userdb_cache_count(c), 1);
    /* The update also renewed the TTL. */
    assert_true(userdb_cache_get(c, "alice@x", 1499, &got));
    assert_int_equal(got.status, USERDB_INACTIVE);
    assert_string_equal(got.maildir, "a-much-longer-maildir/");
    /* A TEMPFAIL does not replace a good entry either. */
    userdb_cache_put(c, "alice@x", &tf, 600);
    assert_true(userdb_cache_get(c, "alice@x", 700, &got));
    userdb_cache_free(&c);
}

static void test_cache_eviction(void **state)
{
    (void)state;
    enum { MAX = 8 };
    userdb_cache *c = userdb_cache_new(MAX, 10000, 10000);
    userdb_result got;
    char key[32];
    for (int i = 0; i < MAX * 3; i++) {
        snprintf(key, sizeof(key), "u%d@x", i);
        userdb_result r = test_result(USERDB_FOUND, key, (uint64_t)i);
        userdb_cache_put(c, key, &r, 0);
        assert_true(userdb_cache_count(c) <= MAX);
    }
    assert_int_equal(userdb_cache_count(c), MAX);
    /* The oldest are gone, the youngest MAX remain with their own data. */
    for (int i = 0; i < MAX * 3; i++) {
        snprintf(key, sizeof(key), "u%d@x", i);
        bool hit = userdb_cache_get(c, key, 1, &got);
        if (hit != (i >= MAX * 2)) {
            fail_msg("key %s: got hit=%d", key, hit);
        }
        if (hit && (got.quota_bytes != (uint64_t)i || strcmp(got.maildir, key) != 0)) {
            fail_msg("key %s: wrong entry", key);
        }
    }
    /* Refreshing the oldest makes it youngest: the next insert evicts u17. */
    userdb_result r = test_result(USERDB_FOUND, "again", 0);
    userdb_cache_put(c, "u16@x", &r, 2);
    userdb_cache_put(c, "new@x", &r, 2);
    assert_true(userdb_cache_get(c, "u16@x", 3, &got));
    assert_false(userdb_cache_get(c, "u17@x", 3, &got));
    assert_true(userdb_cache_get(c, "u18@x", 3, &got));
    userdb_cache_free(&c);
}

static void test_cache_clear_and_zero(void **state)
{
    (void)state;
    userdb_cache *c = userdb_cache_new(4, 1000, 0);
    userdb_result got;
    userdb_result f = test_result(USERDB_FOUND, "m/", 0);
    userdb_result nf = test_result(USERDB_NOTFOUND, "", 0);
    userdb_cache_put(c, "a@x", &f, 0);
    userdb_cache_put(c, "b@x", &f, 0);
    /* A negative TTL of 0 disables negative caching. */
    userdb_cache_put(c, "c@x", &nf, 0);
    assert_int_equal(userdb_cache_count(c), 2);
    userdb_cache_clear(c);
    assert_int_equal(userdb_cache_count(c), 0);
    assert_false(userdb_cache_get(c, "a@x", 0, &got));
    for (int round = 0; round < 3; round++) {
        userdb_cache_put(c, "a@x", &f, 0);
        userdb_cache_put(c, "b@x", &f, 0);
        userdb_cache_put(c, "d@x", &f, 0);
        userdb_cache_put(c, "e@x", &f, 0);
        userdb_cache_put(c, "g@x", &f, 0);
        assert_int_equal(userdb_cache_count(c), 4);
        assert_false(userdb_cache_get(c, "a@x", 0, &got));
        assert_true(userdb_cache_get(c, "g@x", 0, &got));
    }
    userdb_cache_free(&c);
    userdb_cache *none = userdb_cache_new(0, 1000, 1000);
    userdb_cache_put(none, "a@x", &f, 0);
    assert_int_equal(userdb_cache_count(none), 0);
    assert_false(userdb_cache_get(none, "a@x", 0, &got));
    userdb_cache_free(&none);
}

/* ---- resolver ---- */

static uint64_t test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static resolver_request test_request(uint64_t token, const char *user)
{
    return resolver_request_make(RESOLVER_USERDB, token, user);
}

/* The split at the last '@': a quoted localpart may hold one. */
static void test_resolver_request_make(void **state)
{
    (void)state;
    resolver_request q = resolver_request_make(RESOLVER_PASSDB, 42, "\"a@b\"@example.test");
    assert_int_equal(q.kind, RESOLVER_PASSDB);
    assert_int_equal(q.token, 42);
    assert_string_equal(q.user, "\"a@b\"@example.test");
    assert_string_equal(q.localpart, "\"a@b\"");
    assert_string_equal(q.domain, "example.test");
    q = resolver_request_make(RESOLVER_USERDB, 1, "postmaster");
    assert_string_equal(q.localpart, "postmaster");
    assert_string_equal(q.domain, "");
}

/* Waits on the cores' eventfds the way a ring would, and drains until each
 * core has want[core] replies (or the deadline passes). */
static void test_collect(resolver *r, unsigned cores_n, const size_t *want, resolver_reply **out,
                         size_t *got)
{
    uint64_t deadline = test_now_ms() + TEST_WAIT_MS;
    for (;;) {
        bool done = true;
        struct pollfd pfd[4];
        for (unsigned c = 0; c < cores_n; c++) {
            done = done && got[c] >= want[c];
            pfd[c] = (struct pollfd){.fd = resolver_core_eventfd(r, c), .events = POLLIN};
        }
        if (done || test_now_ms() > deadline) {
            break;
        }
        assert_true(poll(pfd, cores_n, 100) >= 0);
        for (unsigned c = 0; c < cores_n; c++) {
            uint64_t n = 0;
            if ((pfd[c].revents & POLLIN) == 0) {
                continue;
            }
            assert_int_equal(read(pfd[c].fd, &n, sizeof(n)), sizeof(n));
            assert_true(n > 0);
            got[c] += resolver_drain(r, c, out[c] + got[c], 64 - got[c]);
        }
    }
}

static resolver *test_resolver(const char *path, unsigned threads_n, unsigned cores_n,
                               size_t queue_max)
{
    char err[256] = "";
    userdb_config cfg = {.driver = "sqlite", .connect = path, .user_query = TEST_QUERY};
    resolver *r = resolver_new(&cfg, NULL, threads_n, cores_n, queue_max, err, sizeof(err));
    if (r == NULL) {
        fail_msg("resolver: %s", err);
    }
    return r;
}

static void test_resolver_routes(void **state)
{
    (void)state;
    static const char *const users[] = {"alice@example.test", "nobody@example.test",
                                        "bob@example.test", "o'brien@example.test"};
    static const userdb_status want_status[] = {USERDB_FOUND, USERDB_NOTFOUND, USERDB_INACTIVE,
                                                USERDB_FOUND};
    char path[300];
    sqlite3_close(test_make_db("resolve.db", "r", path, sizeof(path)));
    resolver *r = test_resolver(path, 2, 2, 64);
    enum { PER_CORE = 20 };
    for (unsigned i = 0; i < PER_CORE; i++) {
        for (unsigned c = 0; c < 2; c++) {
            resolver_request q = test_request(c * 1000 + i, users[i % 4]);
            assert_int_equal(resolver_submit(r, c, &q), 0);
        }
    }
    resolver_reply buf0[64], buf1[64];
    resolver_reply *out[2] = {buf0, buf1};
    size_t want[2] = {PER_CORE, PER_CORE};
    size_t got[2] = {0, 0};
    test_collect(r, 2, want, out, got);
    for (unsigned c = 0; c < 2; c++) {
        assert_int_equal(got[c], PER_CORE);
        bool seen[PER_CORE] = {false};
        for (size_t k = 0; k < got[c]; k++) {
            const resolver_reply *p = &out[c][k];
            uint64_t i = p->token - c * 1000;
            if (p->token < c * 1000 || i >= PER_CORE || seen[i]) {
                fail_msg("core %u: unexpected token %" PRIu64, c, p->token);
            }
            seen[i] = true;
            assert_string_equal(p->user, users[i % 4]);
            assert_int_equal(p->result.status, want_status[i % 4]);
        }
    }
    assert_int_equal(resolver_drain(r, 0, buf0, 64), 0);
    resolver_free(&r);
    assert_null(r);
}

/* Waits until core has been signalled n times: each reply bumps the
 * eventfd by one, so the counts add up to the replies pushed. */
static void test_wait_signals(resolver *r, unsigned core, uint64_t n)
{
    uint64_t deadline = test_now_ms() + TEST_WAIT_MS;
    uint64_t seen = 0;
    while (seen < n && test_now_ms() < deadline) {
        struct pollfd pfd = {.fd = resolver_core_eventfd(r, core), .events = POLLIN};
        uint64_t v = 0;
        if (poll(&pfd, 1, 100) == 1 && read(pfd.fd, &v, sizeof(v)) == sizeof(v)) {
            seen += v;
        }
    }
    assert_int_equal(seen, n);
}

/* A core may have queue_max requests outstanding (submitted, not drained),
 * even when the shared job queue is empty again. */
static void test_resolver_core_bound(void **state)
{
    (void)state;
    char path[300];
    sqlite3_close(test_make_db("bound.db", "b", path, sizeof(path)));
    resolver *r = test_resolver(path, 2, 2, 4);
    resolver_request q = test_request(1, "alice@example.test");
    for (int i = 0; i < 4; i++) {
        assert_int_equal(resolver_submit(r, 0, &q), 0);
    }
    test_wait_signals(r, 0, 4);
    assert_int_equal(resolver_submit(r, 0, &q), -EAGAIN);
    /* The other core is not affected. */
    assert_int_equal(resolver_submit(r, 1, &q), 0);
    resolver_reply out[4];
    assert_int_equal(resolver_drain(r, 0, out, 1), 1);
    assert_int_equal(out[0].result.status, USERDB_FOUND);
    assert_int_equal(resolver_submit(r, 0, &q), 0);
    assert_int_equal(resolver_submit(r, 0, &q), -EAGAIN);
    test_wait_signals(r, 0, 1);
    assert_int_equal(resolver_drain(r, 0, out, 4), 4);
    resolver_free(&r);
}

/* With the DB write-locked the workers stall, the queue fills (-EAGAIN),
 * and stopping answers every accepted request TEMPFAIL on its own core. */
static void test_resolver_queue_full_and_stop(void **state)
{
    (void)state;
    enum { QMAX = 4 };
    char path[300];
    sqlite3 *db = test_make_db("full.db", "q", path, sizeof(path));
    resolver *r = test_resolver(path, 1, 2, QMAX);
    test_sql(db, "BEGIN EXCLUSIVE");
    size_t accepted[2] = {0, 0};
    int rc = 0;
    unsigned n = 0;
    for (; n < 2 * QMAX && rc == 0; n++) {
        /* Distinct users: requests for one user would share a flight. */
        char user[64];
        snprintf(user, sizeof(user), "user%u@example.test", n);
        resolver_request q = test_request(n, user);
        rc = resolver_submit(r, n % 2, &q);
        accepted[n % 2] += rc == 0;
    }
    assert_int_equal(rc, -EAGAIN);
    /* QMAX queued, plus at most one job the worker holds. */
    assert_true(accepted[0] + accepted[1] >= QMAX);
    assert_true(accepted[0] + accepted[1] <= QMAX + 1);
    resolver_stop(r);
    test_sql(db, "COMMIT");
    sqlite3_close(db);
    resolver_request late = test_request(99, "alice@example.test");
    assert_int_equal(resolver_submit(r, 0, &late), -EAGAIN);
    for (unsigned c = 0; c < 2; c++) {
        resolver_reply out[16];
        uint64_t ev = 0;
        assert_int_equal(read(resolver_core_eventfd(r, c), &ev, sizeof(ev)), sizeof(ev));
        size_t got = resolver_drain(r, c, out, SL_ARRAY_LEN(out));
        assert_int_equal(got, accepted[c]);
        for (size_t k = 0; k < got; k++) {
            assert_int_equal(out[k].token % 2, c);
            assert_int_equal(out[k].result.status, USERDB_TEMPFAIL);
        }
    }
    resolver_free(&r);
}

/* With the DB write-locked, requests for one user from both cores while its
 * query is queued or running share it: one query, every waiter answered on
 * its own core; another user gets a flight of its own. */
static void test_resolver_single_flight(void **state)
{
    (void)state;
    char path[300];
    sqlite3 *db = test_make_db("flight.db", "f", path, sizeof(path));
    resolver *r = test_resolver(path, 2, 2, 8);
    test_sql(db, "BEGIN EXCLUSIVE");
    enum { PER_CORE = 6 };
    for (unsigned i = 0; i < PER_CORE; i++) {
        for (unsigned c = 0; c < 2; c++) {
            resolver_request q = test_request(c * 1000 + i, "alice@example.test");
            assert_int_equal(resolver_submit(r, c, &q), 0);
        }
    }
    resolver_request other = test_request(500, "bob@example.test");
    assert_int_equal(resolver_submit(r, 0, &other), 0);
    test_sql(db, "COMMIT");
    sqlite3_close(db);
    resolver_reply buf0[64], buf1[64];
    resolver_reply *out[2] = {buf0, buf1};
    size_t want[2] = {PER_CORE + 1, PER_CORE};
    size_t got[2] = {0, 0};
    test_collect(r, 2, want, out, got);
    assert_int_equal(got[0], PER_CORE + 1);
    assert_int_equal(got[1], PER_CORE);
    for (unsigned c = 0; c < 2; c++) {
        for (size_t k = 0; k < got[c]; k++) {
            const resolver_reply *p = &out[c][k];
            if (p->token == 500) {
                assert_string_equal(p->user, "bob@example.test");
                assert_int_equal(p->result.status, USERDB_INACTIVE);
                continue;
            }
            assert_int_equal(p->token / 1000, c);
            assert_string_equal(p->user, "alice@example.test");
            assert_int_equal(p->result.status, USERDB_FOUND);
            assert_string_equal(p->result.maildir, "f/alice/");
        }
    }
    resolver_stats st;
    resolver_stats_get(r, &st);
    assert_int_equal(st.requests, 2 * PER_CORE + 1);
    /* One query for alice (or two, if a worker took the first request before
     * the rest were queued: the lock makes the query wait, not the submit),
     * one for bob. */
    assert_true(st.queries >= 2 && st.queries <= 3);
    assert_int_equal(st.joined + st.queries, st.requests);
    resolver_free(&r);
}

static userdb_result test_resolve_one(resolver *r, const char *user)
{
    resolver_request q = test_request(7, user);
    assert_int_equal(resolver_submit(r, 1, &q), 0);
    resolver_reply buf0[64], buf1[64];
    resolver_reply *out[2] = {buf0, buf1};
    size_t want[2] = {0, 1};
    size_t got[2] = {0, 0};
    test_collect(r, 2, want, out, got);
    assert_int_equal(got[1], 1);
    assert_int_equal(buf1[0].token, 7);
    return buf1[0].result;
}

static void test_resolver_reload(void **state)
{
    (void)state;
    char one[300], two[300];
    sqlite3_close(test_make_db("reload1.db", "one", one, sizeof(one)));
    sqlite3 *db = test_make_db("reload2.db", "two", two, sizeof(two));
    test_sql(db, "DELETE FROM mailbox WHERE username = 'carol@other.test'");
    sqlite3_close(db);
    resolver *r = test_resolver(one, 2, 2, 16);
    assert_string_equal(test_resolve_one(r, "alice@example.test").maildir, "one/alice/");
    char err[256] = "";
    userdb_config bad = {.driver = "sqlite", .connect = two, .user_query = "SELECT %x"};
    assert_int_equal(resolver_reload(r, &bad, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "%x"));
    assert_string_equal(test_resolve_one(r, "alice@example.test").maildir, "one/alice/");
    userdb_config good = {.driver = "sqlite", .connect = two, .user_query = TEST_QUERY};
    assert_int_equal(resolver_reload(r, &good, err, sizeof(err)), 0);
    /* Two reloads in a row: the unused intermediate drivers are freed. */
    assert_int_equal(resolver_reload(r, &good, err, sizeof(err)), 0);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(test_resolve_one(r, "alice@example.test").maildir, "two/alice/");
        assert_int_equal(test_resolve_one(r, "carol@other.test").status, USERDB_NOTFOUND);
    }
    resolver_free(&r);
}

static void test_resolver_new_errors(void **state)
{
    (void)state;
    char err[256] = "";
    char path[300];
    test_path(path, sizeof(path), "absent.db");
    userdb_config cfg = {.driver = "sqlite", .connect = path, .user_query = TEST_QUERY};
    assert_null(resolver_new(&cfg, NULL, 2, 2, 16, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot open"));
    assert_null(resolver_new(&cfg, NULL, 0, 2, 16, err, sizeof(err)));
    assert_non_null(strstr(err, "at least 1"));
    resolver *none = NULL;
    resolver_free(&none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_table),
        cmocka_unit_test(test_split_too_long),
        cmocka_unit_test(test_split_embedded_nul),
        cmocka_unit_test(test_convert_table),
        cmocka_unit_test(test_convert_pgsql),
        cmocka_unit_test(test_convert_mysql),
        cmocka_unit_test(test_convert_too_many),
        cmocka_unit_test(test_columns_map),
        cmocka_unit_test(test_text_rules),
        cmocka_unit_test(test_result_fill),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_mysql_conninfo),
        cmocka_unit_test(test_sqlite_found_notfound_inactive),
        cmocka_unit_test(test_sqlite_bind_forms),
        cmocka_unit_test(test_sqlite_injection),
        cmocka_unit_test(test_sqlite_active_and_columns),
        cmocka_unit_test(test_sqlite_long_maildir),
        cmocka_unit_test(test_sqlite_missing_table_tempfail),
        cmocka_unit_test(test_sqlite_file_replaced),
        cmocka_unit_test(test_sqlite_create_errors),
        cmocka_unit_test(test_sqlite_passdb),
        cmocka_unit_test(test_sqlite_passdb_errors),
        cmocka_unit_test(test_net_config_errors),
        cmocka_unit_test(test_pgsql_unreachable),
        cmocka_unit_test(test_mysql_unreachable),
        cmocka_unit_test(test_cache_hit_miss_ttl),
        cmocka_unit_test(test_cache_tempfail_and_update),
        cmocka_unit_test(test_cache_eviction),
        cmocka_unit_test(test_cache_clear_and_zero),
        cmocka_unit_test(test_resolver_request_make),
        cmocka_unit_test(test_resolver_routes),
        cmocka_unit_test(test_resolver_core_bound),
        cmocka_unit_test(test_resolver_queue_full_and_stop),
        cmocka_unit_test(test_resolver_reload),
        cmocka_unit_test(test_resolver_new_errors),
        cmocka_unit_test(test_resolver_single_flight),
    };
    return cmocka_run_group_tests(tests, test_group_setup, test_group_teardown);
}
