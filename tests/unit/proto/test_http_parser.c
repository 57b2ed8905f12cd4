/* tests/unit/proto/test_http_parser.c: the /metrics request parser, each
 * case fed whole, one byte at a time, and in seeded random splits (the
 * caller accumulates; the parser must give the same answer every way). */
#include "proto/http_parser.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef struct hcase {
    const char *name;
    const char *in;
    http_rc want;
    const char *method;
    const char *target;
    int minor;
} hcase;

static const hcase cases[] = {
    {"get metrics", "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", HTTP_DONE, "GET",
     "/metrics", 1},
    {"http/1.0 no headers", "GET /metrics HTTP/1.0\r\n\r\n", HTTP_DONE, "GET", "/metrics", 0},
    {"bare LF", "HEAD /metrics?x=1 HTTP/1.1\nHost: y\n\n", HTTP_DONE, "HEAD", "/metrics?x=1", 1},
    {"post", "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", HTTP_DONE, "POST", "/metrics",
     1},
    {"incomplete", "GET /metrics HTTP/1.1\r\nHost: x\r\n", HTTP_NEED_MORE, NULL, NULL, 0},
    {"http/2 preface", "PRI * HTTP/2.0\r\n\r\n", HTTP_BAD, NULL, NULL, 0},
    {"no version", "GET /metrics\r\n\r\n", HTTP_BAD, NULL, NULL, 0},
    {"garbage", "\x01\x02 \r\n\r\n", HTTP_BAD, NULL, NULL, 0},
    {"double space", "GET  /metrics HTTP/1.1\r\n\r\n", HTTP_BAD, NULL, NULL, 0},
};

/* Feed s in pieces whose ends are given by cuts; return the final answer. */
static http_rc feed(const char *s, const size_t *cuts, size_t ncuts, http_request *req)
{
    http_parser p;
    http_parser_init(&p, 256);
    size_t len = strlen(s);
    http_rc rc = HTTP_NEED_MORE;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t upto = i < ncuts ? cuts[i] : len;
        rc = http_parse(&p, (const uint8_t *)s, upto, req);
        if (rc != HTTP_NEED_MORE) {
            return rc;
        }
    }
    return rc;
}

static void check(const hcase *c, http_rc rc, const http_request *req, const char *how)
{
    if (rc != c->want) {
        fail_msg("%s (%s): got rc %d, want %d", c->name, how, rc, c->want);
    }
    if (rc != HTTP_DONE) {
        return;
    }
    if (req->method.len != strlen(c->method) ||
        memcmp(req->method.ptr, c->method, req->method.len) != 0 ||
        req->target.len != strlen(c->target) ||
        memcmp(req->target.ptr, c->target, req->target.len) != 0 || req->minor != c->minor) {
        fail_msg("%s (%s): got %.*s %.*s 1.%d, want %s %s 1.%d", c->name, how,
                 (int)req->method.len, req->method.ptr, (int)req->target.len, req->target.ptr,
                 req->minor, c->method, c->target, c->minor);
    }
}

static void test_cases(void **state)
{
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const hcase *c = &cases[k];
        size_t len = strlen(c->in);
        http_request req;
        check(c, feed(c->in, NULL, 0, &req), &req, "whole");
        size_t *cuts = malloc(len * sizeof(size_t));
        for (size_t i = 0; i < len; i++) {
            cuts[i] = i;
        }
        check(c, feed(c->in, cuts, len, &req), &req, "byte by byte");
        for (unsigned seed = 1; seed <= 8; seed++) {
            srand(seed);
            size_t n = 0;
            for (size_t i = 1; i < len; i++) {
                if (rand() % 3 == 0) {
                    cuts[n++] = i;
                }
            }
            check(c, feed(c->in, cuts, n, &req), &req, "random splits");
        }
        free(cuts);
    }
}

static void test_too_long(void **state)
{
    char big[600];
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /", 5);
    http_parser p;
    http_parser_init(&p, 256);
    http_request req;
    assert_int_equal(http_parse(&p, (const uint8_t *)big, 200, &req), HTTP_NEED_MORE);
    assert_int_equal(http_parse(&p, (const uint8_t *)big, sizeof(big), &req), HTTP_TOO_LONG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_too_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
