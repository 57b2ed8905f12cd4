/* core/config.c: see config.h. A table maps each key to a field and a type,
 * so adding a key is one line. */
#include "core/config.h"

#include "core/alloc.h"
#include "core/base/base.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum key_type {
    K_STR,
    K_PATH,
    K_UINT,
    K_SIZE_T,
    K_SIZE64,
    K_DURATION,
    K_DURATION_S,
    K_BOOL,
    K_OCTAL,
    K_CORES,
} key_type;

typedef struct key_def {
    const char *name;
    key_type type;
    size_t offset;
    const char *dflt;
} key_def;

#define F(field) offsetof(sl_config, field)

static const key_def keys[] = {
    {"lmtp_listen", K_STR, F(lmtp_listen), "127.0.0.1:2424"},
    {"lmtp_unix_mode", K_OCTAL, F(lmtp_unix_mode), "0666"},
    {"lmtp_allow", K_STR, F(lmtp_allow), "127.0.0.0/8, ::1/128"},
    {"stats_listen", K_STR, F(stats_listen), ""},
    {"stats_allow", K_STR, F(stats_allow), "127.0.0.0/8, ::1/128"},
    {"auth_listen", K_STR, F(auth_listen), ""},
    {"auth_unix_mode", K_OCTAL, F(auth_unix_mode), "0660"},
    {"auth_unix_owner", K_STR, F(auth_unix_owner), ""},
    {"auth_unix_group", K_STR, F(auth_unix_group), ""},
    {"auth_allow", K_STR, F(auth_allow), "127.0.0.0/8, ::1/128"},
    {"auth_mechanisms", K_STR, F(auth_mechanisms), "PLAIN LOGIN"},
    {"auth_ntlm", K_BOOL, F(auth_ntlm), "no"},
    {"default_pass_scheme", K_STR, F(default_pass_scheme), "MD5"},
    {"auth_realm", K_STR, F(auth_realm), ""},
    {"auth_failure_delay", K_DURATION, F(auth_failure_delay_ms), "2s"},
    {"auth_penalty_max", K_DURATION, F(auth_penalty_max_ms), "8s"},
    {"auth_requests_per_conn_max", K_UINT, F(auth_requests_per_conn_max), "16"},
    {"auth_worker_threads", K_UINT, F(auth_worker_threads), "2"},
    {"auth_cache_size", K_SIZE_T, F(auth_cache_size), "10000"},
    {"auth_cache_ttl", K_DURATION, F(auth_cache_ttl_ms), "5m"},
    {"auth_cache_negative_ttl", K_DURATION, F(auth_cache_negative_ttl_ms), "1m"},
    {"auth_cache_serve_stale", K_BOOL, F(auth_cache_serve_stale), "yes"},
    {"cores", K_CORES, F(cores), "auto"},
    {"hostname", K_STR, F(hostname), ""},
    {"greeting", K_STR, F(greeting), "sluice ready."},
    {"mail_root", K_PATH, F(mail_root), "/var/vmail"},
    {"mail_user", K_STR, F(mail_user), ""},
    {"userdb_driver", K_STR, F(userdb_driver), "sqlite"},
    /* A path only for sqlite: resolved in resolve_userdb_connect(). */
    {"userdb_connect", K_STR, F(userdb_connect), "userdb.sqlite"},
    {"user_query", K_STR, F(user_query),
     "SELECT maildir, quota, active FROM mailbox WHERE username = '%u'"},
    {"password_query", K_STR, F(password_query), ""},
    {"userdb_query_timeout_ms", K_SIZE64, F(userdb_query_timeout_ms), "5000"},
    {"userdb_connect_timeout_ms", K_SIZE64, F(userdb_connect_timeout_ms), "5000"},
    {"userdb_cache_size", K_SIZE_T, F(userdb_cache_size), "100000"},
    {"userdb_cache_ttl", K_DURATION, F(userdb_cache_ttl_ms), "5m"},
    {"userdb_cache_negative_ttl", K_DURATION, F(userdb_cache_negative_ttl_ms), "1m"},
    {"userdb_cache_serve_stale", K_BOOL, F(userdb_cache_serve_stale), "no"},
    {"redis", K_STR, F(redis), ""},
    {"redis_timeout_ms", K_UINT, F(redis_timeout_ms), "200"},
    {"redis_ttl", K_DURATION, F(redis_ttl_ms), "1h"},
    {"redis_negative_ttl", K_DURATION, F(redis_negative_ttl_ms), "5m"},
    {"redis_prefix", K_STR, F(redis_prefix), "sluice"},
    {"resolver_threads", K_UINT, F(resolver_threads), "2"},
    {"resolver_queue_max", K_SIZE_T, F(resolver_queue_max), "10000"},
    {"recipient_delimiter", K_STR, F(recipient_delimiter), "+"},
    {"detail_mailbox", K_BOOL, F(detail_mailbox), "yes"},
    {"detail_mailbox_create", K_BOOL, F(detail_mailbox_create), "no"},
    {"line_length_max", K_SIZE_T, F(line_length_max), "4096"},
    {"message_size_max", K_SIZE64, F(message_size_max), "50M"},
    {"recipients_max", K_UINT, F(recipients_max), "1000"},
    {"connections_max", K_UINT, F(connections_max), "1000"},
    {"connections_per_ip_max", K_UINT, F(connections_per_ip_max), "200"},
    {"idle_timeout", K_DURATION, F(idle_timeout_ms), "5m"},
    {"data_timeout", K_DURATION, F(data_timeout_ms), "10m"},
    {"bad_commands_max", K_UINT, F(bad_commands_max), "10"},
    {"fsync", K_BOOL, F(fsync), "yes"},
    {"sync_method", K_STR, F(sync_method), "fsync"},
    {"sync_threads", K_UINT, F(sync_threads), "2"},
    {"mail_crlf", K_BOOL, F(mail_crlf), "no"},
    {"tmp_max_age", K_DURATION_S, F(tmp_max_age_s), "36h"},
    {"commit_batch_max", K_UINT, F(commit_batch_max), "256"},
    {"log", K_STR, F(log), "stderr"},
    {"log_level", K_STR, F(log_level), "info"},
};

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) {
        s[--n] = '\0';
    }
    return s;
}

static int parse_u64(const char *s, uint64_t *out, const char **end_out)
{
    if (!isdigit((unsigned char)*s)) {
        return -1;
    }
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0) {
        return -1;
    }
    *out = v;
    *end_out = end;
    return 0;
}

static int scaled(const char *s, uint64_t *out, const char *suffixes, const uint64_t *factors)
{
    uint64_t v;
    const char *end;
    if (parse_u64(s, &v, &end) != 0) {
        return -1;
    }
    uint64_t f = 1;
    if (*end != '\0') {
        const char *hit = strchr(suffixes, *end);
        if (hit == NULL || end[1] != '\0') {
            return -1;
        }
        f = factors[hit - suffixes];
    }
    if (f != 0 && v > UINT64_MAX / f) {
        return -1;
    }
    *out = v * f;
    return 0;
}

int sl_config_parse_duration_ms(const char *s, uint64_t *out)
{
    static const uint64_t f[] = {1000, 60000, 3600000, 86400000};
    if (strlen(s) > 2 && strcmp(s + strlen(s) - 2, "ms") == 0) {
        char tmp[32];
        snprintf(tmp, sizeof(tmp), "%.*s", (int)strlen(s) - 2, s);
        return scaled(tmp, out, "", f);
    }
    uint64_t v;
    const char *end;
    if (parse_u64(s, &v, &end) == 0 && *end == '\0') {
        *out = v * 1000;
        return 0;
    }
    return scaled(s, out, "smhd", f);
}

int sl_config_parse_size(const char *s, uint64_t *out)
{
    static const uint64_t f[] = {1024, 1024, 1024 * 1024, 1024 * 1024 * 1024};
    return scaled(s, out, "kKMG", f);
}

int sl_config_parse_bool(const char *s, bool *out)
{
    if (strcmp(s, "yes") == 0 || strcmp(s, "true") == 0 || strcmp(s, "1") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(s, "no") == 0 || strcmp(s, "false") == 0 || strcmp(s, "0") == 0) {
        *out = false;
        return 0;
    }
    return -1;
}

static char *resolve_path(const sl_config *cfg, const char *v)
{
    if (v[0] == '/' || v[0] == '\0') {
        return sl_strdup(v);
    }
    const char *slash = strrchr(cfg->path, '/');
    char buf[PATH_MAX];
    if (slash == NULL) {
        snprintf(buf, sizeof(buf), "%s", v);
    } else {
        snprintf(buf, sizeof(buf), "%.*s/%s", (int)(slash - cfg->path), cfg->path, v);
    }
    return sl_strdup(buf);
}

static int set_key(sl_config *cfg, const key_def *k, const char *v)
{
    void *field = (char *)cfg + k->offset;
    uint64_t n = 0;
    switch (k->type) {
    case K_STR:
        free(*(char **)field);
        *(char **)field = sl_strdup(v);
        return 0;
    case K_PATH:
        free(*(char **)field);
        *(char **)field = resolve_path(cfg, v);
        return 0;
    case K_UINT:
    case K_SIZE_T:
    case K_SIZE64:
        if (sl_config_parse_size(v, &n) != 0) {
            return -1;
        }
        if (k->type == K_UINT) {
            if (n > UINT32_MAX) {
                return -1;
            }
            *(unsigned *)field = (unsigned)n;
        } else if (k->type == K_SIZE_T) {
            *(size_t *)field = (size_t)n;
        } else {
            *(uint64_t *)field = n;
        }
        return 0;
    case K_DURATION:
        return sl_config_parse_duration_ms(v, (uint64_t *)field);
    case K_DURATION_S:
        if (sl_config_parse_duration_ms(v, &n) != 0) {
            return -1;
        }
        *(uint64_t *)field = n / 1000;
        return 0;
    case K_BOOL:
        return sl_config_parse_bool(v, (bool *)field);
    case K_OCTAL: {
        char *end;
        unsigned long m = strtoul(v, &end, 8);
        if (*v == '\0' || *end != '\0' || m > 07777) {
            return -1;
        }
        *(unsigned *)field = (unsigned)m;
        return 0;
    }
    case K_CORES:
        if (strcmp(v, "auto") == 0) {
            *(unsigned *)field = 0;
            return 0;
        }
        if (sl_config_parse_size(v, &n) != 0 || n == 0 || n > 256) {
            return -1;
        }
        *(unsigned *)field = (unsigned)n;
        return 0;
    }
    return -1;
}

static const key_def *find_key(const char *name)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(keys); i++) {
        if (strcmp(keys[i].name, name) == 0) {
            return &keys[i];
        }
    }
    return NULL;
}

static int check(const sl_config *cfg, char *err, size_t err_len)
{
    if (cfg->line_length_max < 512 || cfg->line_length_max > 65536) {
        snprintf(err, err_len, "%s: line_length_max must be between 512 and 65536", cfg->path);
        return -1;
    }
    if (cfg->recipients_max < 1 || cfg->connections_max < 1 || cfg->resolver_threads < 1) {
        snprintf(err, err_len, "%s: recipients_max, connections_max and resolver_threads must be >= 1",
                 cfg->path);
        return -1;
    }
    if (cfg->connections_max > 1000000) {
        snprintf(err, err_len, "%s: connections_max must be at most 1000000", cfg->path);
        return -1;
    }
    if (cfg->auth_requests_per_conn_max < 1 || cfg->auth_worker_threads < 1) {
        snprintf(err, err_len, "%s: auth_requests_per_conn_max and auth_worker_threads must be >= 1",
                 cfg->path);
        return -1;
    }
    /* Postfix gives up on an AUTH after 10 s (AUTH_TIMEOUT) and answers 454:
     * a delay that long would turn every penalised failure into a timeout. */
    if (cfg->auth_penalty_max_ms >= 10000 || cfg->auth_failure_delay_ms > cfg->auth_penalty_max_ms) {
        snprintf(err, err_len,
                 "%s: auth_failure_delay must not exceed auth_penalty_max, which must be below 10s",
                 cfg->path);
        return -1;
    }
    if (strcmp(cfg->sync_method, "syncfs") != 0 && strcmp(cfg->sync_method, "fsync") != 0) {
        snprintf(err, err_len, "%s: sync_method must be syncfs or fsync", cfg->path);
        return -1;
    }
    if (cfg->sync_threads < 1 || cfg->sync_threads > 4) {
        snprintf(err, err_len, "%s: sync_threads must be 1 to 4", cfg->path);
        return -1;
    }
    if (strcmp(cfg->log_level, "debug") != 0 && strcmp(cfg->log_level, "info") != 0 &&
        strcmp(cfg->log_level, "warning") != 0 && strcmp(cfg->log_level, "error") != 0) {
        snprintf(err, err_len, "%s: log_level must be debug, info, warning or error", cfg->path);
        return -1;
    }
    if (strcmp(cfg->log, "stderr") != 0 && strcmp(cfg->log, "syslog") != 0) {
        snprintf(err, err_len, "%s: log must be stderr or syslog", cfg->path);
        return -1;
    }
    return 0;
}

/* The sqlite connect string is a file, relative to the config's folder;
 * pgsql/mysql ones ("host=... dbname=...") must reach the driver unchanged. */
static void resolve_userdb_connect(sl_config *cfg)
{
    if (strcmp(cfg->userdb_driver, "sqlite") != 0) {
        return;
    }
    char *path = resolve_path(cfg, cfg->userdb_connect);
    free(cfg->userdb_connect);
    cfg->userdb_connect = path;
}

static void set_hostname_default(sl_config *cfg)
{
    if (cfg->hostname[0] != '\0') {
        return;
    }
    char h[256] = "localhost";
    gethostname(h, sizeof(h) - 1);
    free(cfg->hostname);
    cfg->hostname = sl_strdup(h);
}

/* A '#' starts a comment at the start of a line or after a space or tab,
 * outside double quotes: a password or a query may hold "a#b" unquoted. */
static void strip_comment(char *line)
{
    bool quoted = false;
    for (char *p = line; *p != '\0'; p++) {
        if (quoted && *p == '\\' && p[1] != '\0') {
            p++;
        } else if (*p == '"') {
            quoted = !quoted;
        } else if (!quoted && *p == '#' && (p == line || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            return;
        }
    }
}

/* A value in double quotes keeps its spaces and '#'; \" and \\ stand for
 * themselves. Unquotes in place; -1 if the closing quote is not last. */
static int unquote(char *value)
{
    if (value[0] != '"') {
        return 0;
    }
    char *out = value;
    for (const char *p = value + 1; *p != '\0'; p++) {
        if (*p == '\\' && (p[1] == '"' || p[1] == '\\')) {
            *out++ = *++p;
        } else if (*p == '"') {
            if (p[1] != '\0') {
                return -1;
            }
            *out = '\0';
            return 0;
        } else {
            *out++ = *p;
        }
    }
    return -1;
}

static int parse_line(sl_config *cfg, char *line, unsigned lineno, char *err, size_t err_len)
{
    strip_comment(line);
    char *s = trim(line);
    if (*s == '\0') {
        return 0;
    }
    char *eq = strchr(s, '=');
    if (eq == NULL) {
        snprintf(err, err_len, "%s:%u: expected 'key = value'", cfg->path, lineno);
        return -1;
    }
    *eq = '\0';
    char *name = trim(s);
    char *value = trim(eq + 1);
    if (unquote(value) != 0) {
        snprintf(err, err_len, "%s:%u: unterminated quote in the value of %s", cfg->path, lineno,
                 name);
        return -1;
    }
    const key_def *k = find_key(name);
    if (k == NULL) {
        snprintf(err, err_len, "%s:%u: unknown key '%s'", cfg->path, lineno, name);
        return -1;
    }
    if (set_key(cfg, k, value) != 0) {
        snprintf(err, err_len, "%s:%u: bad value for %s: '%s'", cfg->path, lineno, name, value);
        return -1;
    }
    return 0;
}

int sl_config_load(const char *path, sl_config *cfg, char *err, size_t err_len)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->path = sl_strdup(path);
    for (size_t i = 0; i < SL_ARRAY_LEN(keys); i++) {
        int rc = set_key(cfg, &keys[i], keys[i].dflt);
        SL_ASSERT(rc == 0);
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        sl_config_deinit(cfg);
        return -1;
    }
    char line[8192];
    unsigned lineno = 0;
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        rc = parse_line(cfg, line, lineno, err, err_len);
    }
    fclose(f);
    if (rc == 0) {
        resolve_userdb_connect(cfg);
        set_hostname_default(cfg);
        rc = check(cfg, err, err_len);
    }
    if (rc != 0) {
        sl_config_deinit(cfg);
    }
    return rc;
}

void sl_config_deinit(sl_config *cfg)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(keys); i++) {
        if (keys[i].type == K_STR || keys[i].type == K_PATH) {
            sl_free((char *)cfg + keys[i].offset);
        }
    }
    sl_free(&cfg->path);
}
