/* tests/unit/core/test_config.c: the config file reader, its value parsers,
 * the client allowlist and listen-address parsing. */
#include "core/allow.h"
#include "core/config.h"
#include "core/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static void test_durations(void **state)
{
    static const struct {
        const char *in;
        int rc;
        uint64_t want;
    } cases[] = {
        {"30", 0, 30000},        {"30s", 0, 30000}, {"5m", 0, 300000}, {"2h", 0, 7200000},
        {"1d", 0, 86400000},     {"250ms", 0, 250}, {"", -1, 0},       {"5x", -1, 0},
        {"m", -1, 0},            {"-3", -1, 0},     {"5mm", -1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t got = 0;
        int rc = sl_config_parse_duration_ms(cases[i].in, &got);
        if (rc != cases[i].rc || (rc == 0 && got != cases[i].want)) {
            fail_msg("duration '%s': got rc=%d %llu, want rc=%d %llu", cases[i].in, rc,
                     (unsigned long long)got, cases[i].rc, (unsigned long long)cases[i].want);
        }
    }
}

static void test_sizes(void **state)
{
    static const struct {
        const char *in;
        int rc;
        uint64_t want;
    } cases[] = {
        {"100", 0, 100}, {"64k", 0, 65536}, {"50M", 0, 52428800}, {"1G", 0, 1073741824},
        {"1T", -1, 0},   {"k", -1, 0},      {"99999999999999999999", -1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t got = 0;
        int rc = sl_config_parse_size(cases[i].in, &got);
        if (rc != cases[i].rc || (rc == 0 && got != cases[i].want)) {
            fail_msg("size '%s': got rc=%d %llu, want rc=%d %llu", cases[i].in, rc,
                     (unsigned long long)got, cases[i].rc, (unsigned long long)cases[i].want);
        }
    }
}

static char *write_conf(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/sluice-test-conf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_load_ok(void **state)
{
    char *path = write_conf("# comment\n"
                            "lmtp_listen = 127.0.0.1:2525 , unix:/tmp/x.sock  # trailing\n"
                            "message_size_max = 10M\n"
                            "idle_timeout = 2s\n"
                            "fsync = no\n"
                            "mail_root = mail\n"
                            "hostname = mx.example\n");
    sl_config cfg;
    char err[256] = "";
    assert_int_equal(sl_config_load(path, &cfg, err, sizeof(err)), 0);
    assert_string_equal(cfg.lmtp_listen, "127.0.0.1:2525 , unix:/tmp/x.sock");
    assert_int_equal(cfg.message_size_max, 10u * 1024 * 1024);
    assert_int_equal(cfg.idle_timeout_ms, 2000);
    assert_false(cfg.fsync);
    assert_string_equal(cfg.mail_root, "/tmp/mail"); /* relative to the file's directory */
    assert_string_equal(cfg.hostname, "mx.example");
    assert_int_equal(cfg.recipients_max, 1000); /* default */
    sl_config_deinit(&cfg);
    unlink(path);
}

/* '#' is a comment only at the start or after a blank, outside quotes. */
static void test_load_hash_and_quotes(void **state)
{
    char *path = write_conf("hostname = mx#1.example   # the '#' before this is not a comment\n"
                            "userdb_driver = pgsql\n"
                            "userdb_connect = \"host=db password=a #b \\\"c\\\\d\" # comment\n"
                            "  # indented comment\n"
                            "auth_realm = \"\"\n");
    sl_config cfg;
    char err[256] = "";
    if (sl_config_load(path, &cfg, err, sizeof(err)) != 0) {
        fail_msg("load: %s", err);
    }
    assert_string_equal(cfg.hostname, "mx#1.example");
    assert_string_equal(cfg.userdb_connect, "host=db password=a #b \"c\\d");
    assert_string_equal(cfg.auth_realm, "");
    sl_config_deinit(&cfg);
    unlink(path);
}

static void test_load_errors(void **state)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"no_such_key = 1\n", "unknown key 'no_such_key'"},
        {"fsync = maybe\n", "bad value for fsync"},
        {"just words\n", "expected 'key = value'"},
        {"line_length_max = 100\n", "line_length_max must be between"},
        {"connections_max = 1000001\n", "connections_max must be at most 1000000"},
        {"\n\nidle_timeout = soon\n", ":3: bad value for idle_timeout"},
        {"hostname = \"mx.example\n", ":1: unterminated quote in the value of hostname"},
        {"hostname = \"mx\" example\n", ":1: unterminated quote in the value of hostname"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *path = write_conf(cases[i].text);
        sl_config cfg;
        char err[256] = "";
        int rc = sl_config_load(path, &cfg, err, sizeof(err));
        if (rc != -1 || strstr(err, cases[i].want) == NULL) {
            fail_msg("case %zu: got rc=%d err='%s', want -1 and '%s'", i, rc, err, cases[i].want);
        }
        unlink(path);
    }
}

static struct sockaddr_storage v4(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    sin6->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
    return ss;
}

static void test_allow(void **state)
{
    sl_allow a;
    char err[128];
    assert_int_equal(sl_allow_parse("127.0.0.0/8, 10.0.0.80/32 2001:db8::/32", &a, err, sizeof(err)),
                     0);
    static const struct {
        const char *ip;
        bool is6;
        bool want;
    } cases[] = {
        {"127.0.0.1", false, true},     {"127.255.1.2", false, true}, {"10.0.0.80", false, true},
        {"10.0.0.81", false, false},    {"192.168.1.1", false, false},
        {"::ffff:127.0.0.1", true, true}, {"2001:db8::1", true, true}, {"2001:db9::1", true, false},
        {"::1", true, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_storage ss = cases[i].is6 ? v6(cases[i].ip) : v4(cases[i].ip);
        bool got = sl_allow_match(&a, (struct sockaddr *)&ss);
        if (got != cases[i].want) {
            fail_msg("allow %s: got %d want %d", cases[i].ip, got, cases[i].want);
        }
    }
    sl_allow_deinit(&a);
    assert_int_equal(sl_allow_parse("10.0.0.0/33", &a, err, sizeof(err)), -1);
    assert_int_equal(sl_allow_parse("10.0.0/8", &a, err, sizeof(err)), -1);
    assert_int_equal(sl_allow_parse("", &a, err, sizeof(err)), 0);
    struct sockaddr_storage any = v4("203.0.113.9");
    assert_true(sl_allow_match(&a, (struct sockaddr *)&any)); /* empty list allows all */
    sl_allow_deinit(&a);
}

static void test_listen_parse(void **state)
{
    sl_listen_spec s[4];
    char err[128];
    int n = sl_net_parse_listen("127.0.0.1:24, [::1]:2424, unix:/run/sluice/lmtp", s, 4, err,
                                sizeof(err));
    assert_int_equal(n, 3);
    assert_string_equal(s[0].addr, "127.0.0.1");
    assert_string_equal(s[0].port, "24");
    assert_string_equal(s[1].addr, "::1");
    assert_true(s[2].is_unix);
    assert_string_equal(s[2].addr, "/run/sluice/lmtp");
    assert_int_equal(sl_net_parse_listen("nohostport", s, 4, err, sizeof(err)), -1);
    assert_int_equal(sl_net_parse_listen("a:1,b:2,c:3,d:4,e:5", s, 4, err, sizeof(err)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_load_ok),
        cmocka_unit_test(test_load_hash_and_quotes),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_allow),
        cmocka_unit_test(test_listen_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
