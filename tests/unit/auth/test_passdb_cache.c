/* tests/unit/auth/test_passdb_cache.c: auth/passdb_cache.c, the auth
 * thread's password cache: positive and negative TTLs, TEMPFAIL never
 * stored, expired entries reported STALE (not HIT), replace and remove,
 * the bound (oldest stored goes first), and a size of 0 disabling it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "auth/passdb_cache.h"

static passdb_result pass_of(userdb_status st, const char *pw)
{
    passdb_result r;
    memset(&r, 0, sizeof(r));
    r.status = st;
    snprintf(r.password, sizeof(r.password), "%s", pw);
    return r;
}

static void expect(passdb_cache *c, const char *user, uint64_t now, passdb_cache_rc want_rc,
                   userdb_status want_st, const char *want_pw)
{
    passdb_result got = pass_of(USERDB_TEMPFAIL, "untouched");
    passdb_cache_rc rc = passdb_cache_get(c, user, now, &got);
    if (rc != want_rc) {
        fail_msg("get(%s, t=%llu): got rc %d, want %d", user, (unsigned long long)now, rc,
                 want_rc);
    }
    if (rc != PASSDB_CACHE_MISS && (got.status != want_st || strcmp(got.password, want_pw) != 0)) {
        fail_msg("get(%s): got status %d '%s', want %d '%s'", user, got.status, got.password,
                 want_st, want_pw);
    }
}

static void test_ttls(void **state)
{
    (void)state;
    passdb_cache *c = passdb_cache_new(16, 1000, 300);
    passdb_result found = pass_of(USERDB_FOUND, "{PLAIN}demo");
    passdb_result unknown = pass_of(USERDB_NOTFOUND, "");
    passdb_result inactive = pass_of(USERDB_INACTIVE, "{PLAIN}x");
    passdb_result temp = pass_of(USERDB_TEMPFAIL, "");
    passdb_cache_put(c, "a@x", &found, 0);
    passdb_cache_put(c, "n@x", &unknown, 0);
    passdb_cache_put(c, "i@x", &inactive, 0);
    passdb_cache_put(c, "t@x", &temp, 0);
    assert_int_equal(passdb_cache_count(c), 3);
    expect(c, "a@x", 999, PASSDB_CACHE_HIT, USERDB_FOUND, "{PLAIN}demo");
    expect(c, "a@x", 1000, PASSDB_CACHE_STALE, USERDB_FOUND, "{PLAIN}demo");
    expect(c, "n@x", 299, PASSDB_CACHE_HIT, USERDB_NOTFOUND, "");
    expect(c, "n@x", 300, PASSDB_CACHE_STALE, USERDB_NOTFOUND, "");
    expect(c, "i@x", 999, PASSDB_CACHE_HIT, USERDB_INACTIVE, "{PLAIN}x");
    expect(c, "t@x", 0, PASSDB_CACHE_MISS, USERDB_TEMPFAIL, "");
    expect(c, "other@x", 0, PASSDB_CACHE_MISS, USERDB_TEMPFAIL, "");
    /* Replacing refreshes the entry; removing forgets it. */
    passdb_result changed = pass_of(USERDB_FOUND, "{PLAIN}new");
    passdb_cache_put(c, "a@x", &changed, 5000);
    expect(c, "a@x", 5999, PASSDB_CACHE_HIT, USERDB_FOUND, "{PLAIN}new");
    assert_int_equal(passdb_cache_count(c), 3);
    passdb_cache_remove(c, "a@x");
    expect(c, "a@x", 5000, PASSDB_CACHE_MISS, USERDB_TEMPFAIL, "");
    passdb_cache_remove(c, "a@x");
    assert_int_equal(passdb_cache_count(c), 2);
    passdb_cache_clear(c);
    assert_int_equal(passdb_cache_count(c), 0);
    passdb_cache_free(&c);
    assert_null(c);
}

static void test_bounded(void **state)
{
    (void)state;
    passdb_cache *c = passdb_cache_new(3, 1000, 1000);
    passdb_result r = pass_of(USERDB_FOUND, "{PLAIN}p");
    passdb_cache_put(c, "u1", &r, 1);
    passdb_cache_put(c, "u2", &r, 2);
    passdb_cache_put(c, "u3", &r, 3);
    passdb_cache_put(c, "u1", &r, 4); /* u1 is now the youngest, u2 the oldest */
    passdb_cache_put(c, "u4", &r, 5);
    assert_int_equal(passdb_cache_count(c), 3);
    expect(c, "u2", 6, PASSDB_CACHE_MISS, USERDB_TEMPFAIL, "");
    expect(c, "u1", 6, PASSDB_CACHE_HIT, USERDB_FOUND, "{PLAIN}p");
    expect(c, "u3", 6, PASSDB_CACHE_HIT, USERDB_FOUND, "{PLAIN}p");
    for (int i = 0; i < 500; i++) {
        char u[32];
        snprintf(u, sizeof(u), "bulk%d", i);
        passdb_cache_put(c, u, &r, 10 + (uint64_t)i);
        assert_true(passdb_cache_count(c) <= 3);
    }
    expect(c, "bulk499", 600, PASSDB_CACHE_HIT, USERDB_FOUND, "{PLAIN}p");
    passdb_cache_free(&c);
}

static void test_disabled(void **state)
{
    (void)state;
    passdb_cache *c = passdb_cache_new(0, 1000, 1000);
    passdb_result r = pass_of(USERDB_FOUND, "{PLAIN}p");
    passdb_cache_put(c, "u", &r, 0);
    expect(c, "u", 0, PASSDB_CACHE_MISS, USERDB_TEMPFAIL, "");
    assert_int_equal(passdb_cache_count(c), 0);
    passdb_cache_free(&c);
    /* A TTL of 0 disables that kind of entry. */
    c = passdb_cache_new(4, 1000, 0);
    passdb_result n = pass_of(USERDB_NOTFOUND, "");
    passdb_cache_put(c, "n", &n, 0);
    expect(c, "n", 0, PASSDB_CACHE_MISS, USERDB_TEMPFAIL, "");
    passdb_cache_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ttls),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_disabled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
