/* tools/sluice-cache.c: inspect and flush sluice's Redis userdb cache.
 *
 * flush deletes the matching keys (SCAN MATCH + UNLINK in batches, so a
 * large cache never blocks Redis in one command) and then increments the
 * generation counter, which every delivery core polls: a change makes each
 * core drop its in-process cache, so the flush reaches those copies too.
 * The counter is incremented even when no key matched, because a core may
 * still hold an entry that Redis has already expired. */
#include "auth/redis_entry.h"

#include <ctype.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLUICE_CACHE_PORT_DEFAULT 6379
#define SLUICE_CACHE_TIMEOUT_MS_DEFAULT 5000
#define SLUICE_CACHE_SCAN_COUNT "1000"
#define SLUICE_CACHE_PATTERN_BYTES_MAX (3 * REDIS_ENTRY_KEY_BYTES_MAX)

enum { EXIT_FAIL = 1, EXIT_USAGE = 2 };

static const char sluice_cache_usage[] =
    "usage: sluice-cache [-s host:port | -S /path/redis.sock] [-p prefix] [-t timeout_ms] COMMAND\n"
    "  flush --user user@domain     remove that user's userdb and passdb entries\n"
    "  flush --domain domain        remove every entry of users @domain\n"
    "  flush --all                  remove every userdb and passdb entry\n"
    "  get user@domain              print the cached entries of a user\n"
    "Every flush then increments <prefix>:v1:gen, so each delivery core drops its\n"
    "in-process cache within a second or so. Defaults: -s 127.0.0.1:6379, -p sluice,\n"
    "-t 5000.\n";

typedef struct sluice_cache_opts {
    char host[256];
    int port;
    const char *unix_path;
    const char *prefix;
    int timeout_ms;
} sluice_cache_opts;

__attribute__((format(printf, 1, 2))) static void sluice_cache_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sluice-cache: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int sluice_cache_usage_fail(const char *why)
{
    sluice_cache_err("%s", why);
    fputs(sluice_cache_usage, stderr);
    return EXIT_USAGE;
}

/* "host:port", "[v6]:port", "host" (default port). */
static bool sluice_cache_parse_server(const char *text, sluice_cache_opts *o)
{
    const char *host = text;
    size_t host_len;
    const char *port = NULL;
    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':')) {
            return false;
        }
        host = text + 1;
        host_len = (size_t)(end - host);
        port = end[1] == ':' ? end + 2 : NULL;
    } else {
        const char *colon = strrchr(text, ':');
        host_len = colon != NULL ? (size_t)(colon - text) : strlen(text);
        port = colon != NULL ? colon + 1 : NULL;
    }
    if (host_len == 0 || host_len >= sizeof(o->host)) {
        return false;
    }
    memcpy(o->host, host, host_len);
    o->host[host_len] = '\0';
    o->port = SLUICE_CACHE_PORT_DEFAULT;
    if (port != NULL) {
        char *end = NULL;
        long p = strtol(port, &end, 10);
        if (*port == '\0' || *end != '\0' || p <= 0 || p > 65535) {
            return false;
        }
        o->port = (int)p;
    }
    return true;
}

static redisContext *sluice_cache_connect(const sluice_cache_opts *o)
{
    struct timeval tv = {o->timeout_ms / 1000, (o->timeout_ms % 1000) * 1000};
    redisContext *c = o->unix_path != NULL ? redisConnectUnixWithTimeout(o->unix_path, tv)
                                           : redisConnectWithTimeout(o->host, o->port, tv);
    if (c == NULL || c->err != 0) {
        if (o->unix_path != NULL) {
            sluice_cache_err("connect %s: %s", o->unix_path, c != NULL ? c->errstr : "no memory");
        } else {
            sluice_cache_err("connect %s:%d: %s", o->host, o->port,
                             c != NULL ? c->errstr : "no memory");
        }
        if (c != NULL) {
            redisFree(c);
        }
        return NULL;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        sluice_cache_err("set timeout: %s", c->errstr);
        redisFree(c);
        return NULL;
    }
    return c;
}

/* Run a command; NULL (after a message) on a connection error or an error
 * reply. */
static redisReply *sluice_cache_cmd(redisContext *c, int argc, const char **argv,
                                    const size_t *lens)
{
    redisReply *r = redisCommandArgv(c, argc, argv, lens);
    if (r == NULL) {
        sluice_cache_err("%s: %s", argv[0], c->errstr);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        sluice_cache_err("%s: %s", argv[0], r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static void sluice_cache_lower(const char *in, char *out, size_t out_len)
{
    size_t i = 0;
    for (; in[i] != '\0' && i + 1 < out_len; i++) {
        out[i] = (char)tolower((unsigned char)in[i]);
    }
    out[i] = '\0';
}

/* UNLINK the keys of one SCAN page; adds the count removed. */
static int sluice_cache_unlink(redisContext *c, const redisReply *keys, long long *removed)
{
    if (keys->elements == 0) {
        return 0;
    }
    size_t n = keys->elements + 1;
    const char **argv = calloc(n, sizeof(*argv));
    size_t *lens = calloc(n, sizeof(*lens));
    if (argv == NULL || lens == NULL) {
        free(argv);
        free(lens);
        sluice_cache_err("out of memory");
        return -1;
    }
    argv[0] = "UNLINK";
    lens[0] = 6;
    for (size_t i = 0; i < keys->elements; i++) {
        argv[i + 1] = keys->element[i]->str;
        lens[i + 1] = keys->element[i]->len;
    }
    redisReply *r = sluice_cache_cmd(c, (int)n, argv, lens);
    free(argv);
    free(lens);
    if (r == NULL) {
        return -1;
    }
    if (r->type == REDIS_REPLY_INTEGER) {
        *removed += r->integer;
    }
    freeReplyObject(r);
    return 0;
}

/* Remove every key matching pattern, a page at a time. SCAN may return a key
 * twice; UNLINK counts it once. */
static int sluice_cache_scan_unlink(redisContext *c, const char *pattern, long long *removed)
{
    char cursor[32] = "0";
    do {
        const char *argv[6] = {"SCAN", cursor, "MATCH", pattern, "COUNT", SLUICE_CACHE_SCAN_COUNT};
        size_t lens[6] = {
            4, strlen(cursor), 5, strlen(pattern), 5, strlen(SLUICE_CACHE_SCAN_COUNT)};
        redisReply *r = sluice_cache_cmd(c, 6, argv, lens);
        if (r == NULL) {
            return -1;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof(cursor) ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            sluice_cache_err("SCAN: unexpected reply");
            freeReplyObject(r);
            return -1;
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len);
        cursor[r->element[0]->len] = '\0';
        int rc = sluice_cache_unlink(c, r->element[1], removed);
        freeReplyObject(r);
        if (rc != 0) {
            return -1;
        }
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

/* The user's keys are known exactly: no SCAN over the whole keyspace. */
static int sluice_cache_flush_user(redisContext *c, const sluice_cache_opts *o, const char *user,
                                   long long *removed)
{
    char user_key[REDIS_ENTRY_KEY_BYTES_MAX];
    char pass_key[REDIS_ENTRY_KEY_BYTES_MAX];
    size_t user_len =
        redis_entry_key(o->prefix, REDIS_ENTRY_USER, user, user_key, sizeof(user_key));
    size_t pass_len =
        redis_entry_key(o->prefix, REDIS_ENTRY_PASS, user, pass_key, sizeof(pass_key));
    if (user_len == 0 || pass_len == 0 || strchr(user, '@') == NULL) {
        sluice_cache_err("not a user@domain: %s", user);
        return -1;
    }
    const char *argv[3] = {"UNLINK", user_key, pass_key};
    size_t lens[3] = {6, user_len, pass_len};
    redisReply *r = sluice_cache_cmd(c, 3, argv, lens);
    if (r == NULL) {
        return -1;
    }
    if (r->type == REDIS_REPLY_INTEGER) {
        *removed += r->integer;
    }
    freeReplyObject(r);
    return 0;
}

/* domain NULL: every user. Both kinds of entry, never the generation key
 * (deleting it could let the INCR that follows land on the value the cores
 * already saw). */
static int sluice_cache_flush_scan(redisContext *c, const sluice_cache_opts *o, const char *domain,
                                   long long *removed)
{
    char prefix[2 * REDIS_ENTRY_PREFIX_BYTES_MAX];
    char dom[2 * USERDB_ADDR_BYTES_MAX];
    if (redis_entry_glob_escape(o->prefix, prefix, sizeof(prefix)) == 0) {
        sluice_cache_err("bad prefix: %s", o->prefix);
        return -1;
    }
    if (domain != NULL && (domain[0] == '\0' || strchr(domain, '@') != NULL ||
                           redis_entry_glob_escape(domain, dom, sizeof(dom)) == 0)) {
        sluice_cache_err("not a domain: %s", domain);
        return -1;
    }
    static const char *const kinds[] = {"user", "pass"};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        char pattern[SLUICE_CACHE_PATTERN_BYTES_MAX];
        if (domain != NULL) {
            snprintf(pattern, sizeof(pattern), "%s:v1:%s:*@%s", prefix, kinds[i], dom);
        } else {
            snprintf(pattern, sizeof(pattern), "%s:v1:%s:*", prefix, kinds[i]);
        }
        if (sluice_cache_scan_unlink(c, pattern, removed) != 0) {
            return -1;
        }
    }
    return 0;
}

static int sluice_cache_flush(redisContext *c, const sluice_cache_opts *o, int argc, char **argv)
{
    long long removed = 0;
    int rc;
    char arg[USERDB_ADDR_BYTES_MAX];
    if (argc == 1 && strcmp(argv[0], "--all") == 0) {
        rc = sluice_cache_flush_scan(c, o, NULL, &removed);
    } else if (argc == 2 && strcmp(argv[0], "--user") == 0) {
        sluice_cache_lower(argv[1], arg, sizeof(arg));
        rc = sluice_cache_flush_user(c, o, arg, &removed);
    } else if (argc == 2 && strcmp(argv[0], "--domain") == 0) {
        sluice_cache_lower(argv[1], arg, sizeof(arg));
        rc = sluice_cache_flush_scan(c, o, arg, &removed);
    } else {
        return sluice_cache_usage_fail("flush needs --user U, --domain D or --all");
    }
    if (rc != 0) {
        return EXIT_FAIL;
    }
    char gen[REDIS_ENTRY_KEY_BYTES_MAX];
    size_t gen_len = redis_entry_key(o->prefix, REDIS_ENTRY_GEN, NULL, gen, sizeof(gen));
    const char *incr[2] = {"INCR", gen};
    size_t lens[2] = {4, gen_len};
    redisReply *r = sluice_cache_cmd(c, 2, incr, lens);
    if (r == NULL) {
        printf("removed %lld keys; generation not incremented\n", removed);
        return EXIT_FAIL;
    }
    printf("removed %lld keys; generation %lld\n", removed, r->integer);
    freeReplyObject(r);
    return 0;
}

/* Prints one entry as "<kind> <user>: <what>[ ttl=Ns]". Passwords are never
 * printed. */
static int sluice_cache_show(redisContext *c, const sluice_cache_opts *o, redis_entry_kind kind,
                             const char *user)
{
    char key[REDIS_ENTRY_KEY_BYTES_MAX];
    size_t key_len = redis_entry_key(o->prefix, kind, user, key, sizeof(key));
    if (key_len == 0) {
        sluice_cache_err("not a user@domain: %s", user);
        return -1;
    }
    const char *word = kind == REDIS_ENTRY_USER ? "user" : "pass";
    const char *get[2] = {"GET", key};
    size_t lens[2] = {3, key_len};
    redisReply *r = sluice_cache_cmd(c, 2, get, lens);
    if (r == NULL) {
        return -1;
    }
    if (r->type == REDIS_REPLY_NIL) {
        printf("%s %s: not cached\n", word, user);
        freeReplyObject(r);
        return 0;
    }
    if (r->type != REDIS_REPLY_STRING) {
        printf("%s %s: garbage (a reply of type %d)\n", word, user, r->type);
        freeReplyObject(r);
        return 0;
    }
    const char *status_word[] = {"FOUND", "NOTFOUND", "INACTIVE", "TEMPFAIL"};
    redis_entry_rc rc;
    if (kind == REDIS_ENTRY_USER) {
        userdb_result u;
        rc = redis_entry_decode_user((const uint8_t *)r->str, r->len, &u);
        if (rc == REDIS_ENTRY_OK && u.status == USERDB_FOUND) {
            printf("%s %s: FOUND quota_bytes=%llu maildir=%s", word, user,
                   (unsigned long long)u.quota_bytes, u.maildir);
        } else if (rc == REDIS_ENTRY_OK) {
            printf("%s %s: %s", word, user, status_word[u.status]);
        }
    } else {
        passdb_result p;
        rc = redis_entry_decode_pass((const uint8_t *)r->str, r->len, &p);
        if (rc == REDIS_ENTRY_OK) {
            printf("%s %s: %s%s", word, user, status_word[p.status],
                   p.status == USERDB_FOUND ? " (password hidden)" : "");
        }
        explicit_bzero(&p, sizeof(p));
    }
    if (rc != REDIS_ENTRY_OK) {
        printf("%s %s: garbage (%s, %zu bytes)", word, user, redis_entry_rc_text(rc), r->len);
    }
    freeReplyObject(r);
    const char *ttl[2] = {"TTL", key};
    r = sluice_cache_cmd(c, 2, ttl, lens);
    if (r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
        printf(" ttl=%llds", r->integer);
    }
    printf("\n");
    if (r != NULL) {
        freeReplyObject(r);
    }
    return 0;
}

static int sluice_cache_get(redisContext *c, const sluice_cache_opts *o, int argc, char **argv)
{
    if (argc != 1) {
        return sluice_cache_usage_fail("get needs one user@domain");
    }
    char user[USERDB_ADDR_BYTES_MAX];
    sluice_cache_lower(argv[0], user, sizeof(user));
    if (sluice_cache_show(c, o, REDIS_ENTRY_USER, user) != 0 ||
        sluice_cache_show(c, o, REDIS_ENTRY_PASS, user) != 0) {
        return EXIT_FAIL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    sluice_cache_opts o = {.host = "127.0.0.1",
                           .port = SLUICE_CACHE_PORT_DEFAULT,
                           .prefix = REDIS_ENTRY_PREFIX_DEFAULT,
                           .timeout_ms = SLUICE_CACHE_TIMEOUT_MS_DEFAULT};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0) {
            fputs(sluice_cache_usage, stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            return sluice_cache_usage_fail("option needs a value");
        }
        const char *val = argv[++i];
        if (strcmp(opt, "-s") == 0) {
            if (!sluice_cache_parse_server(val, &o)) {
                return sluice_cache_usage_fail("-s wants host:port");
            }
            o.unix_path = NULL;
        } else if (strcmp(opt, "-S") == 0) {
            o.unix_path = val;
        } else if (strcmp(opt, "-p") == 0) {
            if (val[0] == '\0' || strlen(val) >= REDIS_ENTRY_PREFIX_BYTES_MAX) {
                return sluice_cache_usage_fail("-p wants a prefix of 1 to 63 bytes");
            }
            o.prefix = val;
        } else if (strcmp(opt, "-t") == 0) {
            char *end = NULL;
            long t = strtol(val, &end, 10);
            if (*end != '\0' || t <= 0 || t > 3600000) {
                return sluice_cache_usage_fail("-t wants milliseconds");
            }
            o.timeout_ms = (int)t;
        } else {
            return sluice_cache_usage_fail("unknown option");
        }
    }
    if (i >= argc) {
        return sluice_cache_usage_fail("missing command");
    }
    const char *cmd = argv[i++];
    int rest = argc - i;
    bool flush_ok =
        strcmp(cmd, "flush") == 0 &&
        ((rest == 1 && strcmp(argv[i], "--all") == 0) ||
         (rest == 2 && (strcmp(argv[i], "--user") == 0 || strcmp(argv[i], "--domain") == 0)));
    bool get_ok = strcmp(cmd, "get") == 0 && rest == 1;
    if (!flush_ok && !get_ok) {
        return sluice_cache_usage_fail(strcmp(cmd, "flush") == 0
                                           ? "flush needs --user U, --domain D or --all"
                                       : strcmp(cmd, "get") == 0 ? "get needs one user@domain"
                                                                 : "unknown command");
    }
    redisContext *c = sluice_cache_connect(&o);
    if (c == NULL) {
        return EXIT_FAIL;
    }
    int rc = strcmp(cmd, "flush") == 0 ? sluice_cache_flush(c, &o, argc - i, argv + i)
                                       : sluice_cache_get(c, &o, argc - i, argv + i);
    redisFree(c);
    return rc;
}
