/* tests/unit/store/test_maildir_name.c: table-driven tests of store/maildir_name.c.
 *
 * Exact names for known inputs, the shape every name must have (a regex),
 * uniqueness over many calls in the same microsecond on one core and across
 * cores, hostname escaping, and the final new/ name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/base.h"
#include "store/maildir_name.h"

#define NAME_SHAPE "^[0-9]+\\.M[0-9]+P[0-9]+Q[0-9]+\\.[^/:]+$"
#define UNIQUE_CALLS 20000

static void check_str(const char *what, const char *got, const char *want)
{
    assert_non_null(got);
    assert_non_null(want);
    if (strcmp(got, want) != 0) {
        /* the ?: keeps gcc's sanitizer builds from seeing a NULL path */
        fail_msg("%s: got \"%s\", want \"%s\"", what, got != NULL ? got : "(null)",
                 want != NULL ? want : "(null)");
    }
}

static void check_shape(const char *name)
{
    regex_t re;
    assert_int_equal(regcomp(&re, NAME_SHAPE, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, name, 0, NULL, 0);
    regfree(&re);
    if (rc != 0) {
        fail_msg("name \"%s\" does not match %s", name, NAME_SHAPE);
    }
}

/* ---- exact base names ---- */

typedef struct base_case {
    const char *name;
    const char *host;
    long pid;
    unsigned core_id;
    unsigned cores_n;
    int64_t sec;
    uint32_t usec;
    const char *want_first;
    const char *want_second; /* the next call, same time: only Q moves */
} base_case;

static const base_case base_cases[] = {
    {"dovecot example", "mx1", 4242, 0, 1, 1724400000, 123456,
     "1724400000.M123456P4242Q0.mx1", "1724400000.M123456P4242Q1.mx1"},
    {"usec not padded", "mx1", 7, 0, 1, 1724400000, 5, "1724400000.M5P7Q0.mx1",
     "1724400000.M5P7Q1.mx1"},
    {"core 2 of 4", "mail.example.org", 99, 2, 4, 1, 999999, "1.M999999P99Q2.mail.example.org",
     "1.M999999P99Q6.mail.example.org"},
    {"last core", "h", 1, 7, 8, 0, 0, "0.M0P1Q7.h", "0.M0P1Q15.h"},
    {"slash and colon escaped", "a/b:c", 12, 0, 1, 1700000000, 1,
     "1700000000.M1P12Q0.a\\057b\\072c", "1700000000.M1P12Q1.a\\057b\\072c"},
    {"control bytes escaped", "x\ny\tz", 12, 0, 1, 10, 2, "10.M2P12Q0.x\\012y\\011z",
     "10.M2P12Q1.x\\012y\\011z"},
    {"backslash kept", "a\\b", 3, 0, 1, 10, 2, "10.M2P3Q0.a\\b", "10.M2P3Q1.a\\b"},
    {"large values", "h", 2147483647, 0, 1, INT64_C(9223372036854775807), 999999,
     "9223372036854775807.M999999P2147483647Q0.h", "9223372036854775807.M999999P2147483647Q1.h"},
};

static void test_base_exact(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(base_cases); i++) {
        const base_case *c = &base_cases[i];
        maildir_namer n;
        maildir_namer_init(&n, c->host, c->pid, c->core_id, c->cores_n);
        char got[MAILDIR_NAME_BASE_LEN_MAX];
        size_t len = maildir_name_base(&n, c->sec, c->usec, got, sizeof(got));
        print_message("case %s\n", c->name);
        check_str(c->name, got, c->want_first);
        assert_int_equal(len, strlen(c->want_first));
        len = maildir_name_base(&n, c->sec, c->usec, got, sizeof(got));
        check_str(c->name, got, c->want_second);
        assert_int_equal(len, strlen(c->want_second));
        check_shape(got);
    }
}

/* ---- buffer too small ---- */

static void test_base_too_small(void **state)
{
    (void)state;
    maildir_namer n;
    maildir_namer_init(&n, "mx1", 4242, 0, 1);
    const char *want = "1724400000.M123456P4242Q0.mx1";
    size_t want_len = strlen(want);
    char buf[64];

    /* Exactly the length leaves no room for the NUL. */
    size_t got = maildir_name_base(&n, 1724400000, 123456, buf, want_len);
    assert_int_equal(got, 0);
    assert_string_equal(buf, "");
    got = maildir_name_base(&n, 1724400000, 123456, NULL, 0);
    assert_int_equal(got, 0);
    /* Each call advanced Q, failed or not: the next name is Q2. */
    got = maildir_name_base(&n, 1724400000, 123456, buf, want_len + 1);
    assert_int_equal(got, want_len);
    check_str("after two failures", buf, "1724400000.M123456P4242Q2.mx1");
}

/* ---- shape and uniqueness ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void check_unique(char **names, size_t count)
{
    qsort(names, count, sizeof(names[0]), cmp_str);
    for (size_t i = 1; i < count; i++) {
        if (strcmp(names[i - 1], names[i]) == 0) {
            fail_msg("duplicate name \"%s\"", names[i]);
        }
    }
}

static void free_names(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(names[i]);
    }
    free(names);
}

static char *next_name(maildir_namer *n, int64_t sec, uint32_t usec)
{
    char buf[MAILDIR_NAME_BASE_LEN_MAX];
    size_t len = maildir_name_base(n, sec, usec, buf, sizeof(buf));
    assert_true(len > 0);
    char *copy = strdup(buf);
    assert_non_null(copy);
    return copy;
}

/* One core, the clock standing still: Q alone must keep names apart. */
static void test_unique_one_core(void **state)
{
    (void)state;
    maildir_namer n;
    maildir_namer_init(&n, "mx1.example.org", 4242, 0, 1);
    char **names = calloc(UNIQUE_CALLS, sizeof(names[0]));
    assert_non_null(names);
    for (size_t i = 0; i < UNIQUE_CALLS; i++) {
        names[i] = next_name(&n, 1724400000, 123456);
        check_shape(names[i]);
    }
    check_unique(names, UNIQUE_CALLS);
    free_names(names, UNIQUE_CALLS);
}

/* Cores of one process share pid and clock; their Q classes must not meet. */
static void test_unique_across_cores(void **state)
{
    (void)state;
    enum { CORES_N = 3 };
    maildir_namer namers[CORES_N];
    for (unsigned c = 0; c < CORES_N; c++) {
        maildir_namer_init(&namers[c], "mx1", 4242, c, CORES_N);
    }
    size_t count = (size_t)UNIQUE_CALLS;
    char **names = calloc(count, sizeof(names[0]));
    assert_non_null(names);
    for (size_t i = 0; i < count; i++) {
        /* Uneven interleaving: core 0 runs ahead of the others. */
        unsigned c = (unsigned)((i * 7 / 5) % CORES_N);
        names[i] = next_name(&namers[c], 1724400000, 1);
        check_shape(names[i]);
    }
    check_unique(names, count);
    free_names(names, count);
}

static void test_shape_of_escaped_hosts(void **state)
{
    (void)state;
    static const char *const hosts[] = {"a/b", ":", "x:y/z", "tab\there", "mx1", ".dot"};
    for (size_t i = 0; i < SL_ARRAY_LEN(hosts); i++) {
        maildir_namer n;
        maildir_namer_init(&n, hosts[i], 1, 0, 1);
        char buf[MAILDIR_NAME_BASE_LEN_MAX];
        assert_true(maildir_name_base(&n, 1, 2, buf, sizeof(buf)) > 0);
        check_shape(buf);
    }
}

/* The longest hostname, every byte escaped, still fits the documented size. */
static void test_longest_host(void **state)
{
    (void)state;
    char host[MAILDIR_NAME_HOST_LEN_MAX + 1];
    memset(host, '/', MAILDIR_NAME_HOST_LEN_MAX);
    host[MAILDIR_NAME_HOST_LEN_MAX] = '\0';
    maildir_namer n;
    maildir_namer_init(&n, host, 2147483647, 0, 1);
    n.q_next = UINT64_MAX;
    char buf[MAILDIR_NAME_BASE_LEN_MAX];
    size_t len = maildir_name_base(&n, INT64_MAX, 999999, buf, sizeof(buf));
    assert_true(len > 0);
    check_shape(buf);
    char fin[MAILDIR_NAME_FINAL_LEN_MAX];
    assert_true(maildir_name_final(buf, UINT64_MAX, UINT64_MAX, fin, sizeof(fin)) > 0);
}

/* ---- final names ---- */

typedef struct final_case {
    const char *name;
    const char *base;
    uint64_t size;
    uint64_t vsize;
    const char *want;
} final_case;

static const final_case final_cases[] = {
    {"dovecot example", "1724400000.M123456P4242Q0.mx1", 1355, 1394,
     "1724400000.M123456P4242Q0.mx1,S=1355,W=1394"},
    {"crlf storage: S equals W", "1.M2P3Q4.h", 10, 10, "1.M2P3Q4.h,S=10,W=10"},
    {"empty message", "1.M2P3Q4.h", 0, 0, "1.M2P3Q4.h,S=0,W=0"},
    {"huge", "b", UINT64_MAX, UINT64_MAX,
     "b,S=18446744073709551615,W=18446744073709551615"},
};

static void test_final(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(final_cases); i++) {
        const final_case *c = &final_cases[i];
        char got[MAILDIR_NAME_FINAL_LEN_MAX];
        size_t len = maildir_name_final(c->base, c->size, c->vsize, got, sizeof(got));
        check_str(c->name, got, c->want);
        assert_int_equal(len, strlen(c->want));
        /* One byte short (no room for the NUL) fails cleanly. */
        char small[MAILDIR_NAME_FINAL_LEN_MAX];
        assert_int_equal(maildir_name_final(c->base, c->size, c->vsize, small, len), 0);
        assert_string_equal(small, "");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_exact),
        cmocka_unit_test(test_base_too_small),
        cmocka_unit_test(test_unique_one_core),
        cmocka_unit_test(test_unique_across_cores),
        cmocka_unit_test(test_shape_of_escaped_hosts),
        cmocka_unit_test(test_longest_host),
        cmocka_unit_test(test_final),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
