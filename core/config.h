/* core/config.h: sluice's configuration file: "key = value" lines, '#'
 * comments, in the spirit of Postfix's main.cf. Every key is documented in
 * tools/sluice.conf. Relative paths are resolved against the directory of
 * the config file. Unknown keys are errors (a typo must not be silent). */
#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sl_config {
    char *path; /* the file this was read from */

    char *lmtp_listen;      /* comma list: host:port, [v6]:port, unix:/path */
    unsigned lmtp_unix_mode;
    char *lmtp_allow;       /* comma list of CIDRs; empty = allow all */
    char *stats_listen;     /* Prometheus /metrics: host:port or unix:/path; empty = off */
    char *stats_allow;      /* who may scrape; empty = everyone */

    /* SMTP AUTH (the Dovecot auth client protocol), served on the auth thread. */
    char *auth_listen;      /* comma list: host:port, [v6]:port, unix:/path; empty = off */
    unsigned auth_unix_mode;
    char *auth_unix_owner;  /* owner of UNIX auth sockets; empty = unchanged */
    char *auth_unix_group;
    char *auth_allow;       /* CIDRs allowed on TCP auth listeners; empty = everyone */
    char *auth_mechanisms;  /* space/comma list, announced in this order */
    bool auth_ntlm;         /* NTLM may be offered (it must also be in auth_mechanisms) */
    char *default_pass_scheme;
    char *auth_realm;       /* DIGEST-MD5 realm */
    uint64_t auth_failure_delay_ms;
    uint64_t auth_penalty_max_ms; /* penalty + failure delay of one AUTH, at most */
    unsigned auth_requests_per_conn_max;
    unsigned auth_worker_threads;
    size_t auth_cache_size;
    uint64_t auth_cache_ttl_ms;
    uint64_t auth_cache_negative_ttl_ms;
    bool auth_cache_serve_stale;
    unsigned cores;         /* 0 = auto (one per CPU) */
    char *hostname;
    char *greeting;

    char *mail_root;
    char *mail_user;        /* drop privileges to this user after binding; empty = stay */

    char *userdb_driver;
    char *userdb_connect;
    char *user_query;
    char *password_query;               /* empty = no passdb */
    uint64_t userdb_query_timeout_ms;   /* pgsql/mysql: each query round trip */
    uint64_t userdb_connect_timeout_ms; /* pgsql/mysql: each connection attempt */
    size_t userdb_cache_size;
    uint64_t userdb_cache_ttl_ms;
    uint64_t userdb_cache_negative_ttl_ms;
    bool userdb_cache_serve_stale; /* SQL down: an expired FOUND entry still answers */
    char *redis;                   /* "host:port" or "unix:/path"; empty = no Redis tier */
    unsigned redis_timeout_ms;     /* per lookup; past it the lookup goes to SQL */
    uint64_t redis_ttl_ms;         /* Redis EX for found/inactive users */
    uint64_t redis_negative_ttl_ms; /* Redis EX for unknown users */
    char *redis_prefix;            /* key namespace */
    unsigned resolver_threads;
    size_t resolver_queue_max;

    char *recipient_delimiter;
    bool detail_mailbox;
    bool detail_mailbox_create;

    size_t line_length_max;
    uint64_t message_size_max;
    unsigned recipients_max;
    unsigned connections_max;
    unsigned connections_per_ip_max;
    uint64_t idle_timeout_ms;
    uint64_t data_timeout_ms;
    unsigned bad_commands_max;

    bool fsync;
    char *sync_method;     /* "fsync" or "syncfs" (read at start only) */
    unsigned sync_threads; /* syncfs: threads running rounds, 1..4 */
    bool mail_crlf;
    uint64_t tmp_max_age_s;
    unsigned commit_batch_max;

    char *log;
    char *log_level;
} sl_config;

/* Read path into *cfg (which is overwritten). On error returns -1 and puts a
 * message naming the file and line into err. */
int sl_config_load(const char *path, sl_config *cfg, char *err, size_t err_len);
void sl_config_deinit(sl_config *cfg);

/* Value parsers, exported for tests and tools. Each returns 0 or -1. */
int sl_config_parse_duration_ms(const char *s, uint64_t *out);
int sl_config_parse_size(const char *s, uint64_t *out);
int sl_config_parse_bool(const char *s, bool *out);

#endif
