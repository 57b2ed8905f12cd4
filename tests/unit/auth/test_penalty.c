/* tests/unit/auth/test_penalty.c: auth/penalty.c, the per-IP brute-force
 * penalty: keys (IPv4, IPv4-mapped, IPv6 /48 masking, garbage), the delay
 * schedule (doubling, cap, time since the last failure counts), reset on
 * success, expiry, independence of IPs, and the bound on tracked IPs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "auth/penalty.h"

static const penalty_config cfg_default = {
    .entries_max = 64, .init_ms = 2000, .max_ms = 6000, .expire_ms = 3600000};

static void key_of(const char *ip, uint8_t key[PENALTY_KEY_BYTES])
{
    if (!penalty_key_from_text(ip, key)) {
        fail_msg("penalty_key_from_text(%s): got false, want true", ip);
    }
}

static void test_keys(void **state)
{
    (void)state;
    static const struct {
        const char *a;
        const char *b;
        bool same;
    } cases[] = {
        {"192.0.2.1", "192.0.2.1", true},
        {"192.0.2.1", "192.0.2.2", false},
        {"192.0.2.1", "::ffff:192.0.2.1", true},
        {"2001:db8:1::1", "2001:db8:1:ffff::2", true},  /* same /48 */
        {"2001:db8:1::1", "2001:db8:2::1", false},      /* other /48 */
        {"2001:db8:1::1", "2001:0db8:0001:abcd:0:0:0:9", true},
        {"::1", "::2", true},                            /* both in ::/48 */
        {"192.0.2.1", "2001:db8:1::1", false},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        uint8_t ka[PENALTY_KEY_BYTES];
        uint8_t kb[PENALTY_KEY_BYTES];
        key_of(cases[i].a, ka);
        key_of(cases[i].b, kb);
        bool got = memcmp(ka, kb, sizeof(ka)) == 0;
        if (got != cases[i].same) {
            fail_msg("keys of %s and %s: got same=%d, want %d", cases[i].a, cases[i].b, got,
                     cases[i].same);
        }
    }
    static const char *const bad[] = {"", "example.test", "192.0.2", "192.0.2.1/24", "::g",
                                      "1.2.3.4 "};
    for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
        uint8_t k[PENALTY_KEY_BYTES];
        memset(k, 0xaa, sizeof(k));
        if (penalty_key_from_text(bad[i], k)) {
            fail_msg("penalty_key_from_text('%s'): got true, want false", bad[i]);
        }
        static const uint8_t zero[PENALTY_KEY_BYTES];
        assert_memory_equal(k, zero, sizeof(zero));
    }
}

/* Failures at t = 0 and right after each wait: the waits double and stop at the cap. */
static void test_schedule(void **state)
{
    (void)state;
    penalty *p = penalty_new(&cfg_default);
    uint8_t k[PENALTY_KEY_BYTES];
    key_of("198.51.100.7", k);
    static const uint64_t want_wait[] = {2000, 4000, 6000, 6000, 6000};
    uint64_t now = 1000;
    if (penalty_delay_ms(p, k, now) != 0) {
        fail_msg("unknown IP: got delay %llu, want 0",
                 (unsigned long long)penalty_delay_ms(p, k, now));
    }
    for (size_t i = 0; i < SL_ARRAY_LEN(want_wait); i++) {
        penalty_failure(p, k, 0, now);
        uint64_t got = penalty_delay_ms(p, k, now);
        if (got != want_wait[i]) {
            fail_msg("after %zu failures: got delay %llu, want %llu", i + 1,
                     (unsigned long long)got, (unsigned long long)want_wait[i]);
        }
        assert_int_equal(penalty_level(p, k, now), i + 1);
        /* Time since the failure counts toward the wait. */
        got = penalty_delay_ms(p, k, now + 1500);
        if (got != want_wait[i] - 1500) {
            fail_msg("after %zu failures, 1.5 s later: got delay %llu, want %llu", i + 1,
                     (unsigned long long)got, (unsigned long long)(want_wait[i] - 1500));
        }
        assert_int_equal(penalty_delay_ms(p, k, now + want_wait[i]), 0);
        now += want_wait[i];
    }
    penalty_free(&p);
    assert_null(p);
}

static void test_level_saturates(void **state)
{
    (void)state;
    penalty_config cfg = cfg_default;
    cfg.max_ms = UINT64_MAX / 2;
    penalty *p = penalty_new(&cfg);
    uint8_t k[PENALTY_KEY_BYTES];
    key_of("203.0.113.9", k);
    for (int i = 0; i < 100; i++) {
        penalty_failure(p, k, 0, 5);
    }
    assert_int_equal(penalty_level(p, k, 5), PENALTY_LEVEL_MAX);
    uint64_t want = 2000ull << (PENALTY_LEVEL_MAX - 1);
    uint64_t got = penalty_delay_ms(p, k, 5);
    if (got != want) {
        fail_msg("level %d: got delay %llu, want %llu", PENALTY_LEVEL_MAX,
                 (unsigned long long)got, (unsigned long long)want);
    }
    penalty_free(&p);
}

static void test_success_resets_and_ips_independent(void **state)
{
    (void)state;
    penalty *p = penalty_new(&cfg_default);
    uint8_t a[PENALTY_KEY_BYTES];
    uint8_t b[PENALTY_KEY_BYTES];
    uint8_t a6[PENALTY_KEY_BYTES];
    uint8_t a6_same48[PENALTY_KEY_BYTES];
    key_of("192.0.2.10", a);
    key_of("192.0.2.11", b);
    key_of("2001:db8:aa::1", a6);
    key_of("2001:db8:aa:1::99", a6_same48);
    penalty_failure(p, a, 0, 100);
    penalty_failure(p, a, 0, 100);
    penalty_failure(p, a6, 0, 100);
    assert_int_equal(penalty_delay_ms(p, a, 100), 4000);
    assert_int_equal(penalty_delay_ms(p, b, 100), 0);
    assert_int_equal(penalty_delay_ms(p, a6_same48, 100), 2000);
    assert_int_equal(penalty_count(p), 2);
    penalty_success(p, a);
    assert_int_equal(penalty_delay_ms(p, a, 100), 0);
    assert_int_equal(penalty_level(p, a, 100), 0);
    assert_int_equal(penalty_count(p), 1);
    /* After a reset the schedule starts over. */
    penalty_failure(p, a, 0, 200);
    assert_int_equal(penalty_delay_ms(p, a, 200), 2000);
    penalty_success(p, b); /* unknown: no effect */
    assert_int_equal(penalty_count(p), 2);
    penalty_free(&p);
}

static void test_expiry(void **state)
{
    (void)state;
    penalty_config cfg = cfg_default;
    cfg.expire_ms = 60000;
    penalty *p = penalty_new(&cfg);
    uint8_t k[PENALTY_KEY_BYTES];
    key_of("192.0.2.77", k);
    penalty_failure(p, k, 0, 0);
    penalty_failure(p, k, 0, 10000);
    assert_int_equal(penalty_level(p, k, 69999), 2);
    assert_int_equal(penalty_level(p, k, 70000), 0);
    assert_int_equal(penalty_count(p), 0);
    /* A failure after expiry starts at level 1. */
    penalty_failure(p, k, 0, 80000);
    assert_int_equal(penalty_level(p, k, 80000), 1);
    penalty_free(&p);
}

/* Full table: the IP whose last failure is oldest goes; a fresh failure
 * moves an IP to the young end. */
static void test_bounded_lru(void **state)
{
    (void)state;
    penalty_config cfg = cfg_default;
    cfg.entries_max = 4;
    penalty *p = penalty_new(&cfg);
    uint8_t k[6][PENALTY_KEY_BYTES];
    for (int i = 0; i < 6; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.0.0.%d", i + 1);
        key_of(ip, k[i]);
    }
    for (int i = 0; i < 4; i++) {
        penalty_failure(p, k[i], 0, (uint64_t)i);
    }
    penalty_failure(p, k[0], 0, 10); /* k[0] is now the youngest; k[1] the oldest */
    penalty_failure(p, k[4], 0, 11); /* evicts k[1] */
    assert_int_equal(penalty_count(p), 4);
    assert_int_equal(penalty_level(p, k[0], 12), 2);
    assert_int_equal(penalty_level(p, k[1], 12), 0);
    assert_int_equal(penalty_level(p, k[2], 12), 1);
    penalty_failure(p, k[5], 0, 13); /* evicts k[2] */
    assert_int_equal(penalty_level(p, k[2], 14), 0);
    assert_int_equal(penalty_level(p, k[3], 14), 1);
    assert_int_equal(penalty_level(p, k[5], 14), 1);
    assert_int_equal(penalty_count(p), 4);
    /* Many distinct IPs never grow the table past its bound. */
    for (int i = 0; i < 1000; i++) {
        uint8_t kk[PENALTY_KEY_BYTES];
        char ip[32];
        snprintf(ip, sizeof(ip), "172.16.%d.%d", i / 256, i % 256);
        key_of(ip, kk);
        penalty_failure(p, kk, 0, 100 + (uint64_t)i);
        assert_true(penalty_count(p) <= 4);
    }
    penalty_free(&p);
}

static uint32_t sum_of(const penalty *p, const char *user, const char *password)
{
    sl_slice u = {(const uint8_t *)user, strlen(user)};
    sl_slice pw = {(const uint8_t *)password, strlen(password)};
    return penalty_attempt_sum(p, u, pw);
}

/* A repeated user+password does not raise the level; a new one does. Only
 * the last PENALTY_SUMS attempts count, and the wait restarts either way. */
static void test_repeated_attempt(void **state)
{
    (void)state;
    penalty *p = penalty_new(&cfg_default);
    uint8_t k[PENALTY_KEY_BYTES];
    key_of("203.0.113.9", k);
    uint32_t stale = sum_of(p, "alice@example.test", "old-password");
    assert_int_not_equal(stale, 0);
    assert_int_not_equal(stale, sum_of(p, "alice@example.test", "old-passwore"));
    assert_int_not_equal(stale, sum_of(p, "bob@example.test", "old-password"));
    assert_int_not_equal(sum_of(p, "ab", "c"), sum_of(p, "a", "bc"));
    for (int i = 0; i < 5; i++) {
        penalty_failure(p, k, stale, 1000 * (uint64_t)i);
        if (penalty_level(p, k, 1000 * (uint64_t)i) != 1) {
            fail_msg("stale password, failure %d: got level %u, want 1", i,
                     penalty_level(p, k, 1000 * (uint64_t)i));
        }
    }
    assert_int_equal(penalty_delay_ms(p, k, 4000), 2000); /* from the last failure */
    /* PENALTY_SUMS distinct guesses: each raises the level (up to the maximum). */
    char guess[32];
    for (int i = 0; i < PENALTY_SUMS; i++) {
        snprintf(guess, sizeof(guess), "guess%d", i);
        penalty_failure(p, k, sum_of(p, "alice@example.test", guess), 5000);
    }
    unsigned level = penalty_level(p, k, 5000);
    assert_int_equal(level, 1 + PENALTY_SUMS);
    /* The stale one has been pushed out of the last PENALTY_SUMS: it counts again. */
    penalty_failure(p, k, stale, 5000);
    assert_int_equal(penalty_level(p, k, 5000), level + 1);
    /* No sum (a challenge-response mechanism): always raises. */
    penalty_failure(p, k, 0, 5000);
    penalty_failure(p, k, 0, 5000);
    assert_int_equal(penalty_level(p, k, 5000), level + 3);
    /* The secret keys the sum. */
    penalty_config other = cfg_default;
    other.sum_secret = cfg_default.sum_secret + 1;
    penalty *q = penalty_new(&other);
    assert_int_not_equal(sum_of(q, "alice@example.test", "old-password"), stale);
    penalty_free(&q);
    penalty_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_level_saturates),
        cmocka_unit_test(test_success_resets_and_ips_independent),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_bounded_lru),
        cmocka_unit_test(test_repeated_attempt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
