/* tests/unit/auth/test_redis_entry.c: auth/redis_entry.c, the Redis key and
 * value encoding: keys, round trips of every status, every malformed shape
 * (table-driven, with the reason each must be refused for), length limits,
 * seeded mutations of valid values (any value that decodes must re-encode to
 * the same bytes: the format is canonical), and glob escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/redis_entry.h"

#define MUTATION_SEEDS 8
#define MUTATIONS_PER_SEED 4000

/* ---- keys ---- */

typedef struct key_case {
    const char *prefix;
    redis_entry_kind kind;
    const char *user;
    const char *want; /* NULL = refused (returns 0) */
} key_case;

static void test_key_table(void **state)
{
    (void)state;
    static const key_case cases[] = {
        {NULL, REDIS_ENTRY_USER, "alice@example.test", "sluice:v1:user:alice@example.test"},
        {"", REDIS_ENTRY_PASS, "alice@example.test", "sluice:v1:pass:alice@example.test"},
        {"mx2", REDIS_ENTRY_USER, "Bob@Example.TEST", "mx2:v1:user:bob@example.test"},
        {NULL, REDIS_ENTRY_GEN, "ignored", "sluice:v1:gen"},
        {NULL, REDIS_ENTRY_GEN, NULL, "sluice:v1:gen"},
        {NULL, REDIS_ENTRY_USER, "a|b*c@d", "sluice:v1:user:a|b*c@d"},
        {NULL, REDIS_ENTRY_USER, "\"a b\"@d", "sluice:v1:user:\"a b\"@d"},
        {NULL, REDIS_ENTRY_USER, "", NULL},
        {NULL, REDIS_ENTRY_USER, NULL, NULL},
        {NULL, REDIS_ENTRY_USER, "a\r\n@d", NULL},
        {NULL, REDIS_ENTRY_USER, "a\x7f@d", NULL},
        {NULL, REDIS_ENTRY_PASS, "tab\t@d", NULL},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        const key_case *c = &cases[i];
        char out[REDIS_ENTRY_KEY_BYTES_MAX];
        size_t n = redis_entry_key(c->prefix, c->kind, c->user, out, sizeof(out));
        if (c->want == NULL) {
            if (n != 0 || out[0] != '\0') {
                fail_msg("case %zu: got %zu \"%s\", want refused", i, n, out);
            }
            continue;
        }
        if (n != strlen(c->want) || strcmp(out, c->want) != 0) {
            fail_msg("case %zu: got %zu \"%s\", want \"%s\"", i, n, out, c->want);
        }
    }
}

static void test_key_limits(void **state)
{
    (void)state;
    /* The longest user userdb can hand over fits the documented maximum. */
    char user[USERDB_ADDR_BYTES_MAX];
    memset(user, 'u', sizeof(user) - 1);
    user[sizeof(user) - 1] = '\0';
    char prefix[REDIS_ENTRY_PREFIX_BYTES_MAX];
    memset(prefix, 'p', sizeof(prefix) - 1);
    prefix[sizeof(prefix) - 1] = '\0';
    char out[REDIS_ENTRY_KEY_BYTES_MAX];
    size_t n = redis_entry_key(prefix, REDIS_ENTRY_PASS, user, out, sizeof(out));
    assert_int_equal(n, strlen(prefix) + strlen(":v1:pass:") + strlen(user));
    assert_int_equal(strlen(out), n);

    /* One byte short of room: refused, never truncated. */
    char small[32];
    const char *want = "sluice:v1:user:abcdefghijklmnop"; /* 31 bytes */
    assert_int_equal(
        redis_entry_key(NULL, REDIS_ENTRY_USER, "abcdefghijklmnop", small, sizeof(small)),
        strlen(want));
    assert_string_equal(small, want);
    assert_int_equal(
        redis_entry_key(NULL, REDIS_ENTRY_USER, "abcdefghijklmnopq", small, sizeof(small)), 0);
    assert_string_equal(small, "");
    assert_int_equal(redis_entry_key(NULL, REDIS_ENTRY_GEN, NULL, small, 8), 0);
}

/* ---- userdb values ---- */

static userdb_result mk_user(userdb_status st, uint64_t quota, const char *maildir)
{
    userdb_result r;
    memset(&r, 0x5a, sizeof(r));
    r.status = st;
    r.quota_bytes = quota;
    snprintf(r.maildir, sizeof(r.maildir), "%s", maildir);
    return r;
}

typedef struct user_rt_case {
    userdb_result in;
    const char *want_value;
} user_rt_case;

static void check_user_round_trip(const userdb_result *in, const char *want_value)
{
    char v[REDIS_ENTRY_VALUE_BYTES_MAX];
    size_t n = redis_entry_encode_user(in, v, sizeof(v));
    if (want_value != NULL && (n != strlen(want_value) || strcmp(v, want_value) != 0)) {
        fail_msg("encode: got %zu \"%s\", want \"%s\"", n, v, want_value);
    }
    assert_true(n > 0);
    userdb_result out = mk_user(USERDB_TEMPFAIL, 7, "junk");
    redis_entry_rc rc = redis_entry_decode_user((const uint8_t *)v, n, &out);
    if (rc != REDIS_ENTRY_OK) {
        fail_msg("decode \"%s\": got %s, want ok", v, redis_entry_rc_text(rc));
    }
    assert_int_equal(out.status, in->status);
    if (in->status == USERDB_FOUND) {
        assert_true(out.quota_bytes == in->quota_bytes);
        assert_string_equal(out.maildir, in->maildir);
    } else {
        assert_true(out.quota_bytes == 0);
        assert_string_equal(out.maildir, "");
    }
}

static void test_user_round_trips(void **state)
{
    (void)state;
    user_rt_case cases[] = {
        {mk_user(USERDB_FOUND, 0, "example.test/alice/"), "1|F|0|example.test/alice/"},
        {mk_user(USERDB_FOUND, 1048576, "/var/vmail/d/u"), "1|F|1048576|/var/vmail/d/u"},
        {mk_user(USERDB_FOUND, UINT64_MAX, "x"), "1|F|18446744073709551615|x"},
        {mk_user(USERDB_FOUND, 5, "a|b||c|"), "1|F|5|a|b||c|"},
        {mk_user(USERDB_FOUND, 5, "|"), "1|F|5||"},
        {mk_user(USERDB_FOUND, 9, ""), "1|F|9|"},
        {mk_user(USERDB_FOUND, 1, "sp ace/\xc3\xa9t\xc3\xa9/"), "1|F|1|sp ace/\xc3\xa9t\xc3\xa9/"},
        {mk_user(USERDB_INACTIVE, 77, "ignored"), "1|I"},
        {mk_user(USERDB_NOTFOUND, 77, "ignored"), "1|N"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        check_user_round_trip(&cases[i].in, cases[i].want_value);
    }
    /* The longest maildir a userdb_result holds. */
    userdb_result big = mk_user(USERDB_FOUND, 123, "");
    memset(big.maildir, 'm', sizeof(big.maildir) - 1);
    big.maildir[sizeof(big.maildir) - 1] = '\0';
    check_user_round_trip(&big, NULL);
    big.quota_bytes = UINT64_MAX;
    check_user_round_trip(&big, NULL);
}

static void test_user_not_encoded(void **state)
{
    (void)state;
    char v[REDIS_ENTRY_VALUE_BYTES_MAX];
    userdb_result r = mk_user(USERDB_TEMPFAIL, 0, "x");
    memcpy(v, "junk", 5);
    assert_int_equal(redis_entry_encode_user(&r, v, sizeof(v)), 0);

    /* A maildir with no NUL inside its buffer is refused, not overread. */
    r = mk_user(USERDB_FOUND, 0, "");
    memset(r.maildir, 'm', sizeof(r.maildir));
    assert_int_equal(redis_entry_encode_user(&r, v, sizeof(v)), 0);

    /* Too small an output: refused whole, never truncated. */
    r = mk_user(USERDB_FOUND, 10, "abc");
    char small[10]; /* "1|F|10|abc" needs 11 */
    assert_int_equal(redis_entry_encode_user(&r, small, sizeof(small)), 0);
    assert_string_equal(small, "");
    char exact[11];
    assert_int_equal(redis_entry_encode_user(&r, exact, sizeof(exact)), 10);
    assert_string_equal(exact, "1|F|10|abc");
    r = mk_user(USERDB_NOTFOUND, 0, "");
    assert_int_equal(redis_entry_encode_user(&r, small, 3), 0);
    assert_int_equal(redis_entry_encode_user(&r, small, 4), 3);
}

typedef struct bad_case {
    const char *value;
    size_t len; /* 0 = strlen(value) */
    redis_entry_rc want;
} bad_case;

static const bad_case bad_user_cases[] = {
    {"", 0, REDIS_ENTRY_BAD_FIELDS},
    {"1", 0, REDIS_ENTRY_BAD_FIELDS},
    {"N", 0, REDIS_ENTRY_BAD_FIELDS},
    {"2|N", 0, REDIS_ENTRY_BAD_VERSION},
    {"0|N", 0, REDIS_ENTRY_BAD_VERSION},
    {"11|N", 0, REDIS_ENTRY_BAD_VERSION},
    {"|N", 0, REDIS_ENTRY_BAD_VERSION},
    {" 1|N", 0, REDIS_ENTRY_BAD_VERSION},
    {"\0|N", 3, REDIS_ENTRY_BAD_VERSION},
    {"1|", 0, REDIS_ENTRY_BAD_KIND},
    {"1||", 0, REDIS_ENTRY_BAD_KIND},
    {"1|X", 0, REDIS_ENTRY_BAD_KIND},
    {"1|n", 0, REDIS_ENTRY_BAD_KIND},
    {"1|f|0|m", 0, REDIS_ENTRY_BAD_KIND},
    {"1|NN", 0, REDIS_ENTRY_BAD_KIND},
    {"1|FOUND|0|m", 0, REDIS_ENTRY_BAD_KIND},
    {"1|P|secret", 0, REDIS_ENTRY_BAD_KIND}, /* a pass value under a user key */
    {"1|N|", 0, REDIS_ENTRY_BAD_FIELDS},
    {"1|N|x", 0, REDIS_ENTRY_BAD_FIELDS},
    {"1|I|", 0, REDIS_ENTRY_BAD_FIELDS},
    {"1|I|0|m", 0, REDIS_ENTRY_BAD_FIELDS},
    {"1|F", 0, REDIS_ENTRY_BAD_FIELDS},
    {"1|F|", 0, REDIS_ENTRY_BAD_FIELDS},
    {"1|F|12", 0, REDIS_ENTRY_BAD_FIELDS},
    {"1|F||m", 0, REDIS_ENTRY_BAD_NUMBER},
    {"1|F|-1|m", 0, REDIS_ENTRY_BAD_NUMBER},
    {"1|F|+1|m", 0, REDIS_ENTRY_BAD_NUMBER},
    {"1|F|01|m", 0, REDIS_ENTRY_BAD_NUMBER},
    {"1|F|00|m", 0, REDIS_ENTRY_BAD_NUMBER},
    {"1|F|1a|m", 0, REDIS_ENTRY_BAD_NUMBER},
    {"1|F|1 |m", 0, REDIS_ENTRY_BAD_NUMBER},
    {"1|F| 1|m", 0, REDIS_ENTRY_BAD_NUMBER},
    {"1|F|0x10|m", 0, REDIS_ENTRY_BAD_NUMBER},
    {"1|F|1.5|m", 0, REDIS_ENTRY_BAD_NUMBER},
    {"1|F|18446744073709551616|m", 0, REDIS_ENTRY_BAD_NUMBER},  /* UINT64_MAX + 1 */
    {"1|F|99999999999999999999|m", 0, REDIS_ENTRY_BAD_NUMBER},  /* 20 digits, too big */
    {"1|F|100000000000000000000|m", 0, REDIS_ENTRY_BAD_NUMBER}, /* 21 digits */
    {"1|F|1\0|m", 8, REDIS_ENTRY_BAD_NUMBER},
    {"1|F|1|a\0b", 9, REDIS_ENTRY_BAD_TEXT},
    {"1|F|1|\0", 7, REDIS_ENTRY_BAD_TEXT},
};

static void check_bad(const bad_case *c, size_t i, bool pass)
{
    size_t len = c->len != 0 ? c->len : strlen(c->value);
    redis_entry_rc rc;
    if (pass) {
        passdb_result out;
        memset(&out, 0x5a, sizeof(out));
        out.status = USERDB_FOUND;
        rc = redis_entry_decode_pass((const uint8_t *)c->value, len, &out);
        /* Garbage never leaves a usable result behind. */
        assert_int_equal(out.status, USERDB_TEMPFAIL);
        assert_string_equal(out.password, "");
    } else {
        userdb_result out = mk_user(USERDB_FOUND, 99, "stale");
        rc = redis_entry_decode_user((const uint8_t *)c->value, len, &out);
        assert_int_equal(out.status, USERDB_TEMPFAIL);
        assert_true(out.quota_bytes == 0);
        assert_string_equal(out.maildir, "");
    }
    if (rc != c->want) {
        fail_msg("case %zu (%s) \"%.*s\": got %s, want %s", i, pass ? "pass" : "user", (int)len,
                 c->value, redis_entry_rc_text(rc), redis_entry_rc_text(c->want));
    }
}

static void test_user_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(bad_user_cases); i++) {
        check_bad(&bad_user_cases[i], i, false);
    }
}

/* A buffer "1|F|1|" followed by fill bytes, total length len. */
static uint8_t *mk_long(size_t len, const char *head)
{
    uint8_t *v = malloc(len + 1);
    assert_non_null(v);
    memset(v, 'm', len);
    memcpy(v, head, strlen(head));
    v[len] = '\0';
    return v;
}

static void test_lengths(void **state)
{
    (void)state;
    userdb_result out;
    passdb_result pout;
    /* maildir of USERDB_MAILDIR_BYTES_MAX - 1 bytes: fits; one more: does not. */
    size_t head = strlen("1|F|1|");
    uint8_t *v = mk_long(head + USERDB_MAILDIR_BYTES_MAX - 1, "1|F|1|");
    assert_int_equal(redis_entry_decode_user(v, head + USERDB_MAILDIR_BYTES_MAX - 1, &out),
                     REDIS_ENTRY_OK);
    assert_int_equal(strlen(out.maildir), USERDB_MAILDIR_BYTES_MAX - 1);
    free(v);
    v = mk_long(head + USERDB_MAILDIR_BYTES_MAX, "1|F|1|");
    assert_int_equal(redis_entry_decode_user(v, head + USERDB_MAILDIR_BYTES_MAX, &out),
                     REDIS_ENTRY_BAD_TEXT);
    free(v);

    /* Whole values: at the limit the shape decides, past it the length does. */
    size_t max = REDIS_ENTRY_VALUE_BYTES_MAX - 1;
    v = mk_long(max, "1|F|1|");
    assert_int_equal(redis_entry_decode_user(v, max, &out), REDIS_ENTRY_BAD_TEXT);
    free(v);
    v = mk_long(max + 1, "1|F|1|");
    assert_int_equal(redis_entry_decode_user(v, max + 1, &out), REDIS_ENTRY_TOO_LONG);
    assert_int_equal(out.status, USERDB_TEMPFAIL);
    free(v);
    v = mk_long(1 << 20, "1|N");
    assert_int_equal(redis_entry_decode_user(v, 1 << 20, &out), REDIS_ENTRY_TOO_LONG);
    assert_int_equal(redis_entry_decode_pass(v, 1 << 20, &pout), REDIS_ENTRY_TOO_LONG);
    free(v);

    /* Password of USERDB_PASSWORD_BYTES_MAX - 1 bytes: fits; one more: does not. */
    head = strlen("1|P|");
    v = mk_long(head + USERDB_PASSWORD_BYTES_MAX - 1, "1|P|");
    assert_int_equal(redis_entry_decode_pass(v, head + USERDB_PASSWORD_BYTES_MAX - 1, &pout),
                     REDIS_ENTRY_OK);
    assert_int_equal(strlen(pout.password), USERDB_PASSWORD_BYTES_MAX - 1);
    free(v);
    v = mk_long(head + USERDB_PASSWORD_BYTES_MAX, "1|P|");
    assert_int_equal(redis_entry_decode_pass(v, head + USERDB_PASSWORD_BYTES_MAX, &pout),
                     REDIS_ENTRY_BAD_TEXT);
    free(v);

    /* Empty input with no buffer at all. */
    assert_int_equal(redis_entry_decode_user(NULL, 0, &out), REDIS_ENTRY_BAD_FIELDS);
}

/* ---- passdb values ---- */

static passdb_result mk_pass(userdb_status st, const char *password)
{
    passdb_result r;
    memset(&r, 0x5a, sizeof(r));
    r.status = st;
    snprintf(r.password, sizeof(r.password), "%s", password);
    return r;
}

static void test_pass_round_trips(void **state)
{
    (void)state;
    struct {
        passdb_result in;
        const char *want;
    } cases[] = {
        {mk_pass(USERDB_FOUND, "{PLAIN}secret"), "1|P|{PLAIN}secret"},
        {mk_pass(USERDB_FOUND, "{SHA512-CRYPT}$6$salt$h|a|s|h"),
         "1|P|{SHA512-CRYPT}$6$salt$h|a|s|h"},
        {mk_pass(USERDB_FOUND, ""), "1|P|"},
        {mk_pass(USERDB_INACTIVE, "x"), "1|I"},
        {mk_pass(USERDB_NOTFOUND, "x"), "1|N"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        char v[REDIS_ENTRY_VALUE_BYTES_MAX];
        size_t n = redis_entry_encode_pass(&cases[i].in, v, sizeof(v));
        if (n != strlen(cases[i].want) || strcmp(v, cases[i].want) != 0) {
            fail_msg("case %zu: encode got %zu \"%s\", want \"%s\"", i, n, v, cases[i].want);
        }
        passdb_result out = mk_pass(USERDB_TEMPFAIL, "junk");
        assert_int_equal(redis_entry_decode_pass((const uint8_t *)v, n, &out), REDIS_ENTRY_OK);
        assert_int_equal(out.status, cases[i].in.status);
        assert_string_equal(out.password,
                            cases[i].in.status == USERDB_FOUND ? cases[i].in.password : "");
    }
    char v[REDIS_ENTRY_VALUE_BYTES_MAX];
    passdb_result t = mk_pass(USERDB_TEMPFAIL, "x");
    assert_int_equal(redis_entry_encode_pass(&t, v, sizeof(v)), 0);
    t = mk_pass(USERDB_FOUND, "");
    memset(t.password, 'p', sizeof(t.password));
    assert_int_equal(redis_entry_encode_pass(&t, v, sizeof(v)), 0);
}

static void test_pass_malformed(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        {"", 0, REDIS_ENTRY_BAD_FIELDS},      {"2|P|x", 0, REDIS_ENTRY_BAD_VERSION},
        {"1|F|0|m", 0, REDIS_ENTRY_BAD_KIND}, /* a user value under a pass key */
        {"1|p|x", 0, REDIS_ENTRY_BAD_KIND},   {"1|P", 0, REDIS_ENTRY_BAD_FIELDS},
        {"1|N|x", 0, REDIS_ENTRY_BAD_FIELDS}, {"1|P|a\0b", 7, REDIS_ENTRY_BAD_TEXT},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        check_bad(&cases[i], i, true);
    }
}

/* ---- mutations: decode is total, and canonical ---- */

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: a fixed, seedable sequence so a failure reproduces. */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static void test_mutations(void **state)
{
    (void)state;
    static const char *seeds[] = {
        "1|F|1048576|example.test/alice/", "1|F|0|a|b", "1|I", "1|N", "1|P|{PLAIN}pw",
        "1|F|18446744073709551615|m"};
    static const char alphabet[] = "01|FINP9\0x-+ ";
    for (uint64_t seed = 1; seed <= MUTATION_SEEDS; seed++) {
        uint64_t s = seed * 0x9e3779b97f4a7c15ull;
        for (int m = 0; m < MUTATIONS_PER_SEED; m++) {
            uint8_t v[64];
            const char *base = seeds[rng_next(&s) % SL_ARRAY_LEN(seeds)];
            size_t len = strlen(base);
            memcpy(v, base, len);
            int edits = 1 + (int)(rng_next(&s) % 3);
            for (int e = 0; e < edits; e++) {
                uint8_t ch = (uint8_t)alphabet[rng_next(&s) % (sizeof(alphabet) - 1)];
                size_t at = len == 0 ? 0 : rng_next(&s) % len;
                switch (rng_next(&s) % 3) {
                case 0: /* replace */
                    if (len > 0) {
                        v[at] = ch;
                    }
                    break;
                case 1: /* insert */
                    if (len < sizeof(v)) {
                        memmove(v + at + 1, v + at, len - at);
                        v[at] = ch;
                        len++;
                    }
                    break;
                default: /* delete */
                    if (len > 0) {
                        memmove(v + at, v + at + 1, len - at - 1);
                        len--;
                    }
                    break;
                }
            }
            userdb_result u;
            if (redis_entry_decode_user(v, len, &u) == REDIS_ENTRY_OK) {
                char again[REDIS_ENTRY_VALUE_BYTES_MAX];
                size_t n = redis_entry_encode_user(&u, again, sizeof(again));
                if (n != len || memcmp(again, v, len) != 0) {
                    fail_msg("seed %llu mutation %d: \"%.*s\" decodes but re-encodes as \"%s\"",
                             (unsigned long long)seed, m, (int)len, v, again);
                }
            } else {
                assert_int_equal(u.status, USERDB_TEMPFAIL);
            }
            passdb_result p;
            if (redis_entry_decode_pass(v, len, &p) == REDIS_ENTRY_OK) {
                char again[REDIS_ENTRY_VALUE_BYTES_MAX];
                size_t n = redis_entry_encode_pass(&p, again, sizeof(again));
                if (n != len || memcmp(again, v, len) != 0) {
                    fail_msg("seed %llu mutation %d: pass \"%.*s\" re-encodes as \"%s\"",
                             (unsigned long long)seed, m, (int)len, v, again);
                }
            } else {
                assert_int_equal(p.status, USERDB_TEMPFAIL);
            }
        }
    }
}

/* ---- glob escaping ---- */

static void test_glob_escape(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *want; /* NULL = refused */
    } cases[] = {
        {"example.test", "example.test"},
        {"a*b?c[d]e\\f", "a\\*b\\?c\\[d\\]e\\\\f"},
        {"*", "\\*"},
        {"[a-z]", "\\[a-z\\]"},
        {"^x", "^x"},
        {"", NULL},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        char out[64];
        size_t n = redis_entry_glob_escape(cases[i].in, out, sizeof(out));
        const char *want = cases[i].want != NULL ? cases[i].want : "";
        if (n != strlen(want) || strcmp(out, want) != 0) {
            fail_msg("case %zu \"%s\": got %zu \"%s\", want \"%s\"", i, cases[i].in, n, out, want);
        }
    }
    char out[4];
    assert_int_equal(redis_entry_glob_escape("abc", out, sizeof(out)), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(redis_entry_glob_escape("abcd", out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(redis_entry_glob_escape("ab*", out, sizeof(out)), 0); /* needs 5 */
    assert_int_equal(redis_entry_glob_escape("a*", out, sizeof(out)), 3);
    assert_string_equal(out, "a\\*");
}

static void test_rc_text(void **state)
{
    (void)state;
    for (int rc = REDIS_ENTRY_OK; rc <= REDIS_ENTRY_BAD_TEXT; rc++) {
        const char *t = redis_entry_rc_text((redis_entry_rc)rc);
        assert_non_null(t);
        assert_string_not_equal(t, "?");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_table),        cmocka_unit_test(test_key_limits),
        cmocka_unit_test(test_user_round_trips), cmocka_unit_test(test_user_not_encoded),
        cmocka_unit_test(test_user_malformed),   cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_pass_round_trips), cmocka_unit_test(test_pass_malformed),
        cmocka_unit_test(test_mutations),        cmocka_unit_test(test_glob_escape),
        cmocka_unit_test(test_rc_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
