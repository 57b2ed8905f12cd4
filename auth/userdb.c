/* auth/userdb.c: the driver dispatch, the address split every lookup starts
 * with, and what the SQL drivers share: the Dovecot query rewrite, the
 * column rules and the reconnect backoff. The split and the rewrite are pure
 * (no globals; the split does not allocate) so the split can run on a ring
 * thread before the cache is consulted. */
#include "auth/userdb.h"

#include "auth/userdb_mysql.h"
#include "auth/userdb_pgsql.h"
#include "auth/userdb_sqlite.h"
#include "core/clock.h"
#include "core/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define USERDB_DRIVERS_KNOWN "sqlite, pgsql, mysql, mariadb"

userdb_driver *userdb_driver_new(const userdb_config *cfg, char *err, size_t err_len)
{
    SL_ASSERT(cfg != NULL);
    if (cfg->driver == NULL || cfg->driver[0] == '\0') {
        snprintf(err, err_len, "userdb: no driver configured (known: " USERDB_DRIVERS_KNOWN ")");
        return NULL;
    }
    if (strcmp(cfg->driver, "sqlite") == 0) {
        return userdb_sqlite_new(cfg, err, err_len);
    }
    if (strcmp(cfg->driver, "pgsql") == 0) {
        return userdb_pgsql_new(cfg, err, err_len);
    }
    if (strcmp(cfg->driver, "mysql") == 0 || strcmp(cfg->driver, "mariadb") == 0) {
        return userdb_mysql_new(cfg, err, err_len);
    }
    snprintf(err, err_len, "userdb: unknown driver \"%.64s\" (known: " USERDB_DRIVERS_KNOWN ")",
             cfg->driver);
    return NULL;
}

void userdb_driver_free(userdb_driver **d)
{
    SL_ASSERT(d != NULL);
    if (*d == NULL) {
        return;
    }
    SL_ASSERT((*d)->ops != NULL);
    (*d)->ops->destroy(*d);
    *d = NULL;
}

static char userdb_lower(uint8_t c)
{
    if (c >= 'A' && c <= 'Z') {
        return (char)(c + ('a' - 'A'));
    }
    return (char)c;
}

/* Copies src[0..len) into out as NUL-terminated text, lower-cased if asked.
 * False if it does not fit. */
static bool userdb_copy(const uint8_t *src, size_t len, bool lower, char *out, size_t out_len)
{
    if (len >= out_len) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        out[i] = lower ? userdb_lower(src[i]) : (char)src[i];
    }
    out[len] = '\0';
    return true;
}

/* The domain cannot contain '@' but a (quoted) localpart can, so the last
 * '@' is the separator. */
static bool userdb_find_at(sl_slice addr, size_t *at_out)
{
    for (size_t i = addr.len; i > 0; i--) {
        if (addr.ptr[i - 1] == '@') {
            *at_out = i - 1;
            return true;
        }
    }
    return false;
}

/* Length of the localpart before the first delimiter character, or local_len
 * when there is none. */
static size_t userdb_detail_at(const uint8_t *local, size_t local_len, const char *delimiters)
{
    if (delimiters == NULL || delimiters[0] == '\0') {
        return local_len;
    }
    for (size_t i = 0; i < local_len; i++) {
        if (local[i] != '\0' && strchr(delimiters, local[i]) != NULL) {
            return i;
        }
    }
    return local_len;
}

bool userdb_split_address(sl_slice addr, const char *delimiters, char *user_out, size_t user_len,
                          char *local_out, size_t local_len, char *detail_out, size_t detail_len)
{
    SL_ASSERT(user_out != NULL);
    SL_ASSERT(local_out != NULL);
    SL_ASSERT(detail_out != NULL);
    size_t at = 0;
    /* An embedded NUL would silently shorten the lookup key: refuse it. */
    if (addr.ptr == NULL || memchr(addr.ptr, '\0', addr.len) != NULL ||
        !userdb_find_at(addr, &at)) {
        return false;
    }
    const uint8_t *domain = addr.ptr + at + 1;
    size_t domain_n = addr.len - at - 1;
    size_t base_n = userdb_detail_at(addr.ptr, at, delimiters);
    size_t detail_n = base_n < at ? at - base_n - 1 : 0;
    if (base_n == 0 || domain_n == 0) {
        return false;
    }
    /* user = base '@' domain: both lengths plus '@' plus NUL must fit. */
    if (base_n + 1 + domain_n >= user_len) {
        return false;
    }
    userdb_copy(addr.ptr, base_n, true, user_out, user_len);
    user_out[base_n] = '@';
    userdb_copy(domain, domain_n, true, user_out + base_n + 1, user_len - base_n - 1);
    if (!userdb_copy(addr.ptr, base_n, true, local_out, local_len)) {
        return false;
    }
    return userdb_copy(addr.ptr + base_n + 1, detail_n, false, detail_out, detail_len);
}

/* ---- query rewrite ------------------------------------------------------ */

void userdb_errf(char *err, size_t err_len, const char *fmt, ...)
{
    if (err == NULL || err_len == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* A growable text buffer for the rewrite; aborts on OOM. */
typedef struct userdb_buf {
    char *ptr;
    size_t len;
    size_t cap;
} userdb_buf;

static void userdb_buf_put(userdb_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = SL_MAX(b->cap * 2, b->len + n + 1);
        char *p = realloc(b->ptr, b->cap);
        if (p == NULL) {
            abort();
        }
        b->ptr = p;
    }
    memcpy(b->ptr + b->len, s, n);
    b->len += n;
    b->ptr[b->len] = '\0';
}

static void userdb_buf_putc(userdb_buf *b, char c)
{
    userdb_buf_put(b, &c, 1);
}

typedef struct userdb_conv {
    userdb_dialect dialect;
    char *params;
    size_t *params_n;
    char *err;
    size_t err_len;
} userdb_conv;

/* Dovecot's long names for the three values sluice binds. */
static const struct {
    const char *name;
    char param;
} userdb_long_escapes[] = {{"user", 'u'}, {"username", 'n'}, {"domain", 'd'}};

#define USERDB_ESCAPES_SUPPORTED "%%u %%n %%d %%{user} %%{username} %%{domain} %%%%"

/* Parses "%{name}" at q[0] == '%', q[1] == '{'. */
static bool userdb_conv_long_escape(userdb_conv *c, const char *q, char *param_out,
                                    size_t *len_out)
{
    size_t n = 0;
    while ((q[2 + n] >= 'a' && q[2 + n] <= 'z') || q[2 + n] == '_') {
        n++;
    }
    for (size_t i = 0; q[2 + n] == '}' && i < SL_ARRAY_LEN(userdb_long_escapes); i++) {
        const char *name = userdb_long_escapes[i].name;
        if (strlen(name) == n && memcmp(q + 2, name, n) == 0) {
            *param_out = userdb_long_escapes[i].param;
            *len_out = n + 3;
            return true;
        }
    }
    userdb_errf(c->err, c->err_len,
                "has unsupported escape '%%{%.*s' (supported: " USERDB_ESCAPES_SUPPORTED ")",
                (int)SL_MIN(n, 32), q + 2);
    return false;
}

/* Parses the escape at q[0] == '%'. Sets *param_out to 'u'/'n'/'d', or to
 * '%' for "%%", and *len_out to its length. False (with a message) for
 * anything else. */
static bool userdb_conv_escape(userdb_conv *c, const char *q, char *param_out, size_t *len_out)
{
    char ch = q[1];
    if (ch == 'u' || ch == 'n' || ch == 'd' || ch == '%') {
        *param_out = ch;
        *len_out = 2;
        return true;
    }
    if (ch == '{') {
        return userdb_conv_long_escape(c, q, param_out, len_out);
    }
    if (ch == '\0') {
        userdb_errf(c->err, c->err_len, "ends in a lone '%%'");
    } else if (ch > ' ' && ch < 0x7f) {
        userdb_errf(c->err, c->err_len,
                    "has unsupported escape '%%%c' (supported: " USERDB_ESCAPES_SUPPORTED ")", ch);
    } else {
        userdb_errf(c->err, c->err_len, "has an unsupported escape after '%%'");
    }
    return false;
}

/* Records parameter p and writes its placeholder into dst. */
static bool userdb_conv_param(userdb_conv *c, char p, userdb_buf *dst)
{
    if (*c->params_n >= USERDB_QUERY_PARAMS_MAX) {
        userdb_errf(c->err, c->err_len, "has more than %d escapes", USERDB_QUERY_PARAMS_MAX);
        return false;
    }
    c->params[(*c->params_n)++] = p;
    if (c->dialect != USERDB_DIALECT_PGSQL) {
        userdb_buf_putc(dst, '?');
        return true;
    }
    char ph[16];
    int n = snprintf(ph, sizeof(ph), "$%zu", *c->params_n);
    userdb_buf_put(dst, ph, (size_t)n);
    return true;
}

/* Separates pieces of a rewritten literal with the dialect's concatenation.
 * MySQL reads || as OR unless PIPES_AS_CONCAT is set, so it gets CONCAT(). */
static void userdb_conv_sep(const userdb_conv *c, userdb_buf *out, size_t *pieces)
{
    if ((*pieces)++ > 0) {
        if (c->dialect == USERDB_DIALECT_MYSQL) {
            userdb_buf_put(out, ", ", 2);
        } else {
            userdb_buf_put(out, " || ", 4);
        }
    }
}

/* Emits the text collected so far inside a quoted literal as 'text'
 * (re-escaping quotes) and empties it. */
static void userdb_conv_flush_text(const userdb_conv *c, userdb_buf *out, userdb_buf *text,
                                   size_t *pieces)
{
    if (text->len == 0) {
        return;
    }
    userdb_conv_sep(c, out, pieces);
    userdb_buf_putc(out, '\'');
    for (size_t i = 0; i < text->len; i++) {
        if (text->ptr[i] == '\'') {
            userdb_buf_putc(out, '\'');
        }
        userdb_buf_putc(out, text->ptr[i]);
    }
    userdb_buf_putc(out, '\'');
    text->len = 0;
}

/* Finds the end of the quoted text starting at q[0] (a doubled quote is an
 * escaped one). Returns the index of the closing quote, or 0 if none. */
static size_t userdb_conv_quoted_end(const char *q)
{
    size_t i = 1;
    for (; q[i] != '\0'; i++) {
        if (q[i] != q[0]) {
            continue;
        }
        if (q[i + 1] != q[0]) {
            return i;
        }
        i++;
    }
    return 0;
}

/* Writes the collected pieces of one literal: '' when empty, the piece
 * itself when alone, else a parenthesized || chain or a CONCAT(). */
static void userdb_conv_pieces(const userdb_conv *c, userdb_buf *out, const userdb_buf *body,
                               size_t pieces)
{
    if (pieces == 0) {
        userdb_buf_put(out, "''", 2);
    } else if (pieces == 1) {
        userdb_buf_put(out, body->ptr, body->len);
    } else {
        const char *open = c->dialect == USERDB_DIALECT_MYSQL ? "CONCAT(" : "(";
        userdb_buf_put(out, open, strlen(open));
        userdb_buf_put(out, body->ptr, body->len);
        userdb_buf_putc(out, ')');
    }
}

/* Rewrites the string literal q[0..end] (quotes included). A literal that
 * is one escape becomes a bare parameter, since a placeholder inside quotes
 * would be text, not a parameter. */
static bool userdb_conv_literal(userdb_conv *c, const char *q, size_t end, userdb_buf *out)
{
    userdb_buf text = {0};
    userdb_buf body = {0};
    size_t pieces = 0;
    bool ok = true;
    for (size_t i = 1; i < end && ok;) {
        char p = 0;
        size_t n = 0;
        if (q[i] == q[0]) {
            userdb_buf_putc(&text, q[i]); /* a doubled quote is one quote */
            i += 2;
        } else if (q[i] != '%') {
            userdb_buf_putc(&text, q[i++]);
        } else if ((ok = userdb_conv_escape(c, q + i, &p, &n)) && p == '%') {
            userdb_buf_putc(&text, '%');
            i += n;
        } else if (ok) {
            userdb_conv_flush_text(c, &body, &text, &pieces);
            userdb_conv_sep(c, &body, &pieces);
            ok = userdb_conv_param(c, p, &body);
            i += n;
        }
    }
    userdb_conv_flush_text(c, &body, &text, &pieces);
    userdb_conv_pieces(c, out, &body, pieces);
    free(text.ptr);
    free(body.ptr);
    return ok;
}

/* A double-quoted identifier (SQLite, PostgreSQL) is copied as it is; an
 * escape inside one could never become a parameter, so it is an error. */
static bool userdb_conv_identifier(userdb_conv *c, const char *q, size_t end, userdb_buf *out)
{
    if (memchr(q, '%', end) != NULL) {
        userdb_errf(c->err, c->err_len,
                    "has an escape inside a double-quoted identifier (quote values with ')");
        return false;
    }
    userdb_buf_put(out, q, end + 1);
    return true;
}

/* Handles the quoted run at q[0] (' or "); sets *len_out to its length. */
static bool userdb_conv_quoted(userdb_conv *c, const char *q, userdb_buf *out, size_t *len_out)
{
    size_t end = userdb_conv_quoted_end(q);
    if (end == 0) {
        userdb_errf(c->err, c->err_len, "has an unclosed %s", q[0] == '"' ? "\"" : "quote");
        return false;
    }
    *len_out = end + 1;
    /* MySQL reads "..." as a string, unless ANSI_QUOTES makes it an
     * identifier: only one holding an escape is rewritten as a string. */
    bool mysql_string = c->dialect == USERDB_DIALECT_MYSQL && memchr(q, '%', end) != NULL;
    if (q[0] == '\'' || mysql_string) {
        return userdb_conv_literal(c, q, end, out);
    }
    return userdb_conv_identifier(c, q, end, out);
}

char *userdb_query_convert(const char *query, userdb_dialect dialect,
                           char params_out[USERDB_QUERY_PARAMS_MAX], size_t *params_n_out,
                           char *err, size_t err_len)
{
    SL_ASSERT(query != NULL);
    SL_ASSERT(params_n_out != NULL);
    userdb_conv c = {dialect, params_out, params_n_out, err, err_len};
    userdb_buf out = {0};
    userdb_buf_put(&out, "", 0);
    *params_n_out = 0;
    bool ok = true;
    for (size_t i = 0; query[i] != '\0' && ok;) {
        char p = 0;
        size_t n = 0;
        if (query[i] == '\'' || query[i] == '"') {
            ok = userdb_conv_quoted(&c, query + i, &out, &n);
        } else if (query[i] != '%') {
            userdb_buf_putc(&out, query[i]);
            n = 1;
        } else if ((ok = userdb_conv_escape(&c, query + i, &p, &n)) && p == '%') {
            userdb_buf_putc(&out, '%');
        } else if (ok) {
            ok = userdb_conv_param(&c, p, &out);
        }
        i += n;
    }
    if (!ok) {
        free(out.ptr);
        return NULL;
    }
    return out.ptr;
}

bool userdb_query_init(userdb_query *q, const char *text, userdb_dialect dialect,
                       const char *driver, const char *what, char *err, size_t err_len)
{
    SL_ASSERT(q != NULL);
    SL_ASSERT(text != NULL);
    memset(q, 0, sizeof(*q));
    char msg[256] = "";
    q->sql = userdb_query_convert(text, dialect, q->params, &q->params_n, msg, sizeof(msg));
    if (q->sql == NULL) {
        userdb_errf(err, err_len, "userdb %s: %s %s", driver, what, msg);
        return false;
    }
    if (q->params_n == 0) {
        userdb_errf(err, err_len, "userdb %s: %s uses none of %%u %%n %%d", driver, what);
        userdb_query_deinit(q);
        return false;
    }
    return true;
}

void userdb_query_deinit(userdb_query *q)
{
    SL_ASSERT(q != NULL);
    free(q->sql);
    q->sql = NULL;
    q->params_n = 0;
}

const char *userdb_param_value(char param, const char *user, const char *localpart,
                               const char *domain)
{
    switch (param) {
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

/* ---- column rules --------------------------------------------------------- */

/* The first column named like one of want (case-insensitive), in the order
 * of want, so "maildir" wins over "home" wins over "mail". */
static int userdb_column_find(const char *const *names, size_t names_n, const char *const *want,
                              size_t want_n)
{
    for (size_t w = 0; w < want_n; w++) {
        for (size_t i = 0; i < names_n; i++) {
            if (names[i] != NULL && strcasecmp(names[i], want[w]) == 0) {
                return (int)i;
            }
        }
    }
    return -1;
}

void userdb_columns_map(const char *const *names, size_t names_n, userdb_columns *out)
{
    static const char *const maildir[] = {"maildir", "home", "mail"};
    static const char *const quota[] = {"quota_bytes", "quota", "quota_rule"};
    static const char *const active[] = {"active"};
    static const char *const password[] = {"password"};
    SL_ASSERT(out != NULL);
    SL_ASSERT(names != NULL || names_n == 0);
    out->maildir = userdb_column_find(names, names_n, maildir, SL_ARRAY_LEN(maildir));
    out->quota = userdb_column_find(names, names_n, quota, SL_ARRAY_LEN(quota));
    out->active = userdb_column_find(names, names_n, active, SL_ARRAY_LEN(active));
    out->password = userdb_column_find(names, names_n, password, SL_ARRAY_LEN(password));
}

/* The textual false words let a PostgreSQL boolean ('f') and the usual
 * spellings keep their meaning whatever the column type is. */
bool userdb_text_active(userdb_text t)
{
    static const char *const no[] = {"0", "f", "false", "n", "no", "off"};
    if (t.ptr == NULL) {
        return true;
    }
    for (size_t i = 0; i < SL_ARRAY_LEN(no); i++) {
        if (strlen(no[i]) == t.len && strncasecmp(t.ptr, no[i], t.len) == 0) {
            return false;
        }
    }
    size_t i = t.len > 0 && (t.ptr[0] == '-' || t.ptr[0] == '+') ? 1 : 0;
    if (i == t.len) {
        return true;
    }
    for (; i < t.len; i++) {
        if (t.ptr[i] != '0') {
            return true;
        }
    }
    return false;
}

/* a * b, saturating. */
static uint64_t userdb_mul_sat(uint64_t a, uint64_t b)
{
    return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

/* The decimal digits p[0..n) starts with, saturating at UINT64_MAX; how many
 * there are in *digits_out. */
static uint64_t userdb_leading_u64(const char *p, size_t n, size_t *digits_out)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        uint64_t d = (uint64_t)(p[i] - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *digits_out = i;
    return v;
}

/* One "storage=V" or "bytes=V" value (unit is its default multiplier):
 * digits, then at most one unit letter. 0 when relative, a percentage or
 * malformed. */
static uint64_t userdb_rule_limit(const char *p, size_t n, uint64_t unit)
{
    size_t i = 0;
    uint64_t v = userdb_leading_u64(p, n, &i);
    if (i == 0) {
        return 0; /* "+100M", "-10%" and the like are relative to another rule */
    }
    if (i == n) {
        return userdb_mul_sat(v, unit);
    }
    if (i + 1 != n) {
        return 0;
    }
    static const char units[] = "bkmgt";
    const char *u = p[i] != '\0' ? strchr(units, tolower((unsigned char)p[i])) : NULL;
    if (u == NULL) {
        return 0;
    }
    return userdb_mul_sat(v, (uint64_t)1 << (10 * (u - units)));
}

/* A Dovecot quota rule: "[<mailbox>:]<limit> <limit>...". */
static uint64_t userdb_quota_rule(const char *p, size_t n)
{
    const char *colon = memchr(p, ':', n);
    if (colon != NULL) {
        size_t name_len = (size_t)(colon - p);
        if (name_len != 1 || (p[0] != '*' && p[0] != '?')) {
            return 0;
        }
        n -= name_len + 1;
        p = colon + 1;
    }
    uint64_t limit = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && (p[i] == ' ' || p[i] == '\t')) {
            i++;
        }
        size_t start = i;
        while (i < n && p[i] != ' ' && p[i] != '\t') {
            i++;
        }
        const char *w = p + start;
        size_t wn = i - start;
        if (wn == 6 && strncasecmp(w, "ignore", 6) == 0) {
            return 0;
        }
        if (wn > 8 && strncasecmp(w, "storage=", 8) == 0) {
            limit = userdb_rule_limit(w + 8, wn - 8, 1024);
        } else if (wn > 6 && strncasecmp(w, "bytes=", 6) == 0) {
            limit = userdb_rule_limit(w + 6, wn - 6, 1);
        }
    }
    return limit;
}

uint64_t userdb_text_quota(userdb_text t)
{
    if (t.ptr == NULL || t.len == 0 || t.ptr[0] == '-') {
        return 0;
    }
    if (memchr(t.ptr, '=', t.len) != NULL) {
        return userdb_quota_rule(t.ptr, t.len);
    }
    size_t sign = t.ptr[0] == '+' ? 1 : 0;
    size_t digits = 0;
    return userdb_leading_u64(t.ptr + sign, t.len - sign, &digits);
}

/* Copies t into out (size out_len) as NUL-terminated text; false if it is
 * NULL, empty, too long or holds a NUL. The length is checked before the
 * bytes are read: a driver may hand over a truncated buffer with its full
 * length. */
static bool userdb_text_copy(userdb_text t, char *out, size_t out_len)
{
    if (t.ptr == NULL || t.len == 0 || t.len >= out_len || memchr(t.ptr, '\0', t.len) != NULL) {
        return false;
    }
    memcpy(out, t.ptr, t.len);
    out[t.len] = '\0';
    return true;
}

void userdb_result_fill(userdb_result *out, userdb_text maildir, userdb_text quota,
                        userdb_text active)
{
    SL_ASSERT(out != NULL);
    out->maildir[0] = '\0';
    out->quota_bytes = 0;
    if (!userdb_text_copy(maildir, out->maildir, sizeof(out->maildir))) {
        out->maildir[0] = '\0';
        out->status = USERDB_TEMPFAIL;
        return;
    }
    out->quota_bytes = userdb_text_quota(quota);
    out->status = userdb_text_active(active) ? USERDB_FOUND : USERDB_INACTIVE;
}

void passdb_result_fill(passdb_result *out, userdb_text password, userdb_text active)
{
    SL_ASSERT(out != NULL);
    out->password[0] = '\0';
    if (password.ptr == NULL) {
        out->status = USERDB_NOTFOUND;
        return;
    }
    /* An empty password is a value the caller must see (and refuse). */
    bool ok = password.len == 0 || userdb_text_copy(password, out->password, sizeof(out->password));
    if (!ok) {
        out->password[0] = '\0';
        out->status = USERDB_TEMPFAIL;
        return;
    }
    out->status = userdb_text_active(active) ? USERDB_FOUND : USERDB_INACTIVE;
}

/* ---- reconnect backoff ----------------------------------------------------- */

bool userdb_backoff_waiting(const userdb_backoff *b, uint64_t now_ms)
{
    SL_ASSERT(b != NULL);
    return b->delay_ms > 0 && now_ms < b->retry_at_ms;
}

void userdb_backoff_failed(userdb_backoff *b, uint64_t now_ms)
{
    SL_ASSERT(b != NULL);
    b->delay_ms = b->delay_ms == 0 ? USERDB_BACKOFF_MIN_MS
                                   : SL_MIN(b->delay_ms * 2, (uint64_t)USERDB_BACKOFF_MAX_MS);
    b->retry_at_ms = now_ms + b->delay_ms;
}

void userdb_backoff_reset(userdb_backoff *b)
{
    SL_ASSERT(b != NULL);
    b->delay_ms = 0;
    b->retry_at_ms = 0;
}

/* ---- connection health ------------------------------------------------------ */

#define USERDB_CONN_MSG_BYTES 512

bool userdb_conn_reopen(userdb_conn_state *c, const char *name, userdb_conn_open_fn open,
                        void *ctx)
{
    SL_ASSERT(c != NULL);
    SL_ASSERT(open != NULL);
    if (userdb_backoff_waiting(&c->backoff, sl_clock_ms())) {
        return false;
    }
    char msg[USERDB_CONN_MSG_BYTES];
    if (open(ctx, msg, sizeof(msg))) {
        if (c->down) {
            sl_info("%s: connected again", name);
        }
        c->down = false;
        userdb_backoff_reset(&c->backoff);
        return true;
    }
    if (!c->down) {
        sl_warn("%s: %s (lookups answer TEMPFAIL until it is back)", name, msg);
    }
    userdb_conn_lost(c);
    return false;
}

void userdb_conn_lost(userdb_conn_state *c)
{
    SL_ASSERT(c != NULL);
    c->down = true;
    userdb_backoff_failed(&c->backoff, sl_clock_ms());
}
