/* tests/unit/proto/test_sasl_mech.c: the SASL mechanisms of proto/sasl_*.c against the
 * exchanges published in their RFCs (RFC 4616, RFC 2195, RFC 2831, RFC 5802, RFC 7677),
 * MS-NLMP section 4.2 for NTLM, and values printed by Dovecot 2.3's `doveadm pw`, plus the
 * failures a server must catch: wrong secrets, malformed, truncated and over-long input,
 * replayed nonces and authzid mismatches.
 *
 * Text mechanisms are table-driven scripts: each action is a client message, a plaintext
 * verdict or a credential, each with the status and output it must produce. NTLM messages
 * are binary and are built by helpers. Every input is copied into its own heap buffer that
 * is poisoned and freed right after the call, so an output slice that pointed into the input
 * would show up as wrong bytes (or as a use-after-free under ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/base/base.h"
#include "proto/sasl_cram.h"
#include "proto/sasl_digest.h"
#include "proto/sasl_mech.h"
#include "proto/sasl_ntlm.h"
#include "proto/sasl_plain.h"
#include "proto/sasl_scram.h"

/* ---- small helpers ---- */

static const char *status_name(sasl_status st)
{
    switch (st) {
    case SASL_CHALLENGE:
        return "CHALLENGE";
    case SASL_NEED_VERIFY_PLAIN:
        return "NEED_VERIFY_PLAIN";
    case SASL_NEED_CREDENTIALS:
        return "NEED_CREDENTIALS";
    case SASL_OK:
        return "OK";
    case SASL_FAIL:
        return "FAIL";
    }
    return "?";
}

static const char *reason_name(sasl_fail_reason r)
{
    static const char *const names[] = {
        [SASL_FAIL_NONE] = "NONE",           [SASL_FAIL_SYNTAX] = "SYNTAX",
        [SASL_FAIL_CREDENTIALS] = "CREDENTIALS", [SASL_FAIL_AUTHZID] = "AUTHZID",
        [SASL_FAIL_UNSUPPORTED] = "UNSUPPORTED", [SASL_FAIL_STORED] = "STORED",
    };
    return (unsigned)r < SL_ARRAY_LEN(names) ? names[r] : "?";
}

/* Printable rendering of bytes for failure messages. */
static const char *show(sl_slice s, char *buf, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len && n + 5 < cap; i++) {
        uint8_t c = s.ptr[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            buf[n++] = (char)c;
        } else {
            n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", c);
        }
    }
    buf[n] = '\0';
    return buf;
}

static void expect_slice(const char *what, sl_slice got, const uint8_t *want, size_t want_len)
{
    char g[1024];
    char w[1024];
    if (got.len != want_len || (want_len > 0 && memcmp(got.ptr, want, want_len) != 0)) {
        fail_msg("%s: got \"%s\", want \"%s\"", what, show(got, g, sizeof(g)),
                 show((sl_slice){want, want_len}, w, sizeof(w)));
    }
}

static void expect_str(const char *what, sl_slice got, const char *want)
{
    expect_slice(what, got, (const uint8_t *)want, strlen(want));
}

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2;
    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n;
}

static void expect_hex(const char *what, const uint8_t *got, size_t n, const char *want_hex)
{
    uint8_t want[256];
    size_t want_len = unhex(want_hex, want, sizeof(want));
    expect_slice(what, (sl_slice){got, n}, want, want_len);
}

static size_t b64_decode(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    assert_true(sasl_mech_b64_decode((sl_slice){(const uint8_t *)s, strlen(s)}, out, cap, &n));
    return n;
}

/* Step with input copied to its own heap buffer, poisoned and freed after the call. */
static sasl_status step_copy(sasl_mech *m, const void *in, size_t len, sasl_out *out)
{
    uint8_t *copy = malloc(len + 1);
    assert_non_null(copy);
    if (len > 0) {
        memcpy(copy, in, len);
    }
    sasl_status st = sasl_mech_step(m, len > 0 ? copy : NULL, len, out);
    memset(copy, 0xa5, len + 1);
    free(copy);
    return st;
}

/* ---- credentials used by the scripts ---- */

typedef enum cred_id {
    CRED_NONE = 0,
    CRED_CRAM_TIM,        /* context of "tanstaaftanstaaf" computed here */
    CRED_CRAM_TIM_DOVEADM, /* the same, as `doveadm pw -s CRAM-MD5` printed it */
    CRED_CRAM_SHORT,      /* 31 bytes: unusable */
    CRED_DIGEST_CHRIS,    /* doveadm pw -s DIGEST-MD5 -u chris@elwood.innosoft.com -p secret */
    CRED_DIGEST_WRONG,    /* MD5("chris:elwood.innosoft.com:wrong") */
    CRED_SCRAM1_PENCIL,   /* RFC 5802: pencil, salt QSXCR+Q6sek8bf92, 4096 */
    CRED_SCRAM1_WRONG,    /* same salt, password "pencils" */
    CRED_SCRAM256_PENCIL, /* RFC 7677: pencil, salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 */
    CRED_SCRAM256_ZERO_ITER,
} cred_id;

typedef struct cred_buf {
    sasl_cred_kind kind;
    size_t len;
    union {
        uint8_t bytes[64];
        sasl_scram_cred scram;
    } u;
} cred_buf;

static void scram_cred(cred_buf *c, sasl_cred_kind kind, const char *pass, const char *salt_b64)
{
    uint8_t salt[64];
    size_t salt_len = b64_decode(salt_b64, salt, sizeof(salt));
    c->kind = kind;
    c->len = sizeof(c->u.scram);
    sasl_scram_derive(kind, (sl_slice){(const uint8_t *)pass, strlen(pass)}, salt, salt_len, 4096,
                      &c->u.scram);
}

static void make_cred(cred_id id, cred_buf *c)
{
    memset(c, 0, sizeof(*c));
    switch (id) {
    case CRED_NONE:
        break;
    case CRED_CRAM_TIM:
        c->kind = SASL_CRED_CRAM_MD5;
        c->len = 32;
        sasl_cram_md5_context((const uint8_t *)"tanstaaftanstaaf", 16, c->u.bytes);
        break;
    case CRED_CRAM_TIM_DOVEADM:
        c->kind = SASL_CRED_CRAM_MD5;
        c->len = unhex("d06d4e1b26fccaa4b0b61801132340a354b21152711fb604ca3e035e7015116b",
                       c->u.bytes, sizeof(c->u.bytes));
        break;
    case CRED_CRAM_SHORT:
        c->kind = SASL_CRED_CRAM_MD5;
        c->len = 31;
        break;
    case CRED_DIGEST_CHRIS:
        c->kind = SASL_CRED_DIGEST_MD5;
        c->len = unhex("eb5a750053e4d2c34aa84bbc9b0b6ee7", c->u.bytes, sizeof(c->u.bytes));
        break;
    case CRED_DIGEST_WRONG:
        c->kind = SASL_CRED_DIGEST_MD5;
        c->len = 16;
        sasl_digest_md5_secret(SL_SLICE_LIT("chris"), SL_SLICE_LIT("elwood.innosoft.com"),
                               SL_SLICE_LIT("wrong"), c->u.bytes);
        break;
    case CRED_SCRAM1_PENCIL:
        scram_cred(c, SASL_CRED_SCRAM_SHA1, "pencil", "QSXCR+Q6sek8bf92");
        break;
    case CRED_SCRAM1_WRONG:
        scram_cred(c, SASL_CRED_SCRAM_SHA1, "pencils", "QSXCR+Q6sek8bf92");
        break;
    case CRED_SCRAM256_PENCIL:
        scram_cred(c, SASL_CRED_SCRAM_SHA256, "pencil", "W22ZaJ0SNY7soEsUEjb6gQ==");
        break;
    case CRED_SCRAM256_ZERO_ITER:
        scram_cred(c, SASL_CRED_SCRAM_SHA256, "pencil", "W22ZaJ0SNY7soEsUEjb6gQ==");
        c->u.scram.iterations = 0;
        break;
    }
}

/* ---- random bytes that reproduce a published nonce ---- */

typedef enum random_form {
    RANDOM_NONE = 0,
    RANDOM_HEX,         /* the bytes, in hex */
    RANDOM_DIGEST_NONCE, /* the DIGEST-MD5 nonce wanted: base64-alphabet index per char */
    RANDOM_SCRAM_NONCE, /* the SCRAM server nonce wanted: index into '!'..'~' minus ',' */
} random_form;

static size_t make_random(random_form form, const char *spec, uint8_t *out)
{
    size_t n = 0;
    switch (form) {
    case RANDOM_NONE:
        break;
    case RANDOM_HEX:
        n = unhex(spec, out, SASL_RANDOM_BYTES_MAX);
        break;
    case RANDOM_DIGEST_NONCE:
        for (; spec[n] != '\0'; n++) {
            const char *at = strchr(sasl_mech_b64_alphabet, spec[n]);
            assert_non_null(at);
            out[n] = (uint8_t)(at - sasl_mech_b64_alphabet);
        }
        break;
    case RANDOM_SCRAM_NONCE:
        for (; spec[n] != '\0'; n++) {
            uint8_t c = (uint8_t)spec[n];
            assert_true(c >= '!' && c <= '~' && c != ',');
            out[n] = (uint8_t)(c < ',' ? c - '!' : c - '!' - 1);
        }
        break;
    }
    return n;
}

/* ---- scripts ---- */

typedef enum act_kind {
    ACT_END = 0,
    ACT_STEP,   /* send in[0..in_len) */
    ACT_VERIFY, /* sasl_mech_verify_result(verify_ok) */
    ACT_CRED,   /* sasl_mech_set_credentials with the case's credential */
} act_kind;

typedef struct test_act {
    act_kind kind;
    const char *in;
    size_t in_len;
    bool verify_ok;
    sasl_status want;
    const char *want_data; /* NULL: not checked */
    const char *want_authcid;
    const char *want_authzid;
    const char *want_password;
    sasl_fail_reason want_reason;
} test_act;

#define IN(s) .in = (s), .in_len = sizeof(s) - 1
#define STEP(s, ...) {ACT_STEP, IN(s), __VA_ARGS__}
#define VERIFY(ok, ...) {ACT_VERIFY, .verify_ok = (ok), __VA_ARGS__}
#define CRED(...) {ACT_CRED, __VA_ARGS__}
#define FAILS(r) .want = SASL_FAIL, .want_reason = (r)

typedef struct test_case {
    const char *name;
    sasl_mech_id id;
    uint32_t options;
    random_form random_form;
    const char *random;
    const char *hostname;
    const char *realm;
    const char *service;
    uint64_t timestamp_s;
    cred_id cred;
    test_act acts[8];
} test_case;

/* RFC 2831 section 4 (its digest-uri uses the imap service). */
#define RFC2831_CHALLENGE                                                                      \
    "realm=\"elwood.innosoft.com\",nonce=\"OA6MG9tEQGm2hh\",qop=\"auth\",algorithm=md5-sess,"  \
    "charset=utf-8"
#define RFC2831_RESPONSE                                                                       \
    "charset=utf-8,username=\"chris\",realm=\"elwood.innosoft.com\",nonce=\"OA6MG9tEQGm2hh\","  \
    "nc=00000001,cnonce=\"OA6MHXh6VqTrRk\",digest-uri=\"imap/elwood.innosoft.com\","          \
    "response=d388dad90d4bbd760a152321f2143af7,qop=auth"
#define DIGEST_CASE(n)                                                                         \
    .name = (n), .id = SASL_MECH_DIGEST_MD5, .random_form = RANDOM_DIGEST_NONCE,               \
    .random = "OA6MG9tEQGm2hh", .realm = "elwood.innosoft.com", .service = "imap"
#define DIGEST_START STEP("", .want = SASL_CHALLENGE, .want_data = RFC2831_CHALLENGE)
#define DIGEST_NEED                                                                            \
    .want = SASL_NEED_CREDENTIALS, .want_authcid = "chris@elwood.innosoft.com"

/* RFC 5802 section 5 and RFC 7677 section 3. */
#define RFC5802_FIRST "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
#define RFC5802_SERVER_FIRST                                                                   \
    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
#define RFC5802_FINAL_NO_PROOF "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j"
#define RFC5802_FINAL RFC5802_FINAL_NO_PROOF ",p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
#define RFC5802_SERVER_FINAL "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="
#define SCRAM1_CASE(n, rnd, c)                                                                 \
    .name = (n), .id = SASL_MECH_SCRAM_SHA1, .random_form = RANDOM_SCRAM_NONCE, .random = (rnd),  \
    .cred = (c)
#define RFC5802_RANDOM "3rfcNHYJY1ZVvWVs7j"
#define SCRAM1_NEED STEP(RFC5802_FIRST, .want = SASL_NEED_CREDENTIALS, .want_authcid = "user")
#define SCRAM1_SERVER_FIRST CRED(.want = SASL_CHALLENGE, .want_data = RFC5802_SERVER_FIRST)

#define RFC7677_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC7677_SERVER_FIRST                                                                   \
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC7677_FINAL                                                                          \
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"                            \
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC7677_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static const test_case cases[] = {
    /* ---- PLAIN (RFC 4616 section 4 examples) ---- */
    {.name = "plain rfc4616 tim",
     .id = SASL_MECH_PLAIN,
     .acts = {STEP("\0tim\0tanstaaftanstaaf", .want = SASL_NEED_VERIFY_PLAIN,
                   .want_authcid = "tim", .want_authzid = "", .want_password = "tanstaaftanstaaf"),
              VERIFY(true, .want = SASL_OK, .want_authcid = "tim", .want_data = "")}},
    {.name = "plain rfc4616 authzid Ursel allowed",
     .id = SASL_MECH_PLAIN,
     .options = SASL_OPT_ALLOW_AUTHZID,
     .acts = {STEP("Ursel\0Kurt\0xipj3plmq", .want = SASL_NEED_VERIFY_PLAIN,
                   .want_authcid = "Kurt", .want_authzid = "Ursel", .want_password = "xipj3plmq"),
              VERIFY(true, .want = SASL_OK, .want_authcid = "Kurt", .want_authzid = "Ursel")}},
    {.name = "plain rfc4616 authzid Ursel refused",
     .id = SASL_MECH_PLAIN,
     .acts = {STEP("Ursel\0Kurt\0xipj3plmq", FAILS(SASL_FAIL_AUTHZID))}},
    {.name = "plain authzid equal to authcid",
     .id = SASL_MECH_PLAIN,
     .acts = {STEP("tim\0tim\0pw", .want = SASL_NEED_VERIFY_PLAIN, .want_authzid = "tim"),
              VERIFY(true, .want = SASL_OK)}},
    {.name = "plain empty initial response",
     .id = SASL_MECH_PLAIN,
     .acts = {STEP("", .want = SASL_CHALLENGE, .want_data = ""),
              STEP("\0tim\0pw", .want = SASL_NEED_VERIFY_PLAIN, .want_password = "pw"),
              VERIFY(true, .want = SASL_OK, .want_authcid = "tim")}},
    {.name = "plain wrong password",
     .id = SASL_MECH_PLAIN,
     .acts = {STEP("\0tim\0nope", .want = SASL_NEED_VERIFY_PLAIN),
              VERIFY(false, FAILS(SASL_FAIL_CREDENTIALS)),
              STEP("\0tim\0again", FAILS(SASL_FAIL_SYNTAX))}},
    {.name = "plain empty response after empty challenge",
     .id = SASL_MECH_PLAIN,
     .acts = {STEP("", .want = SASL_CHALLENGE), STEP("", FAILS(SASL_FAIL_SYNTAX))}},
    {.name = "plain no NUL",
     .id = SASL_MECH_PLAIN,
     .acts = {STEP("timpw", FAILS(SASL_FAIL_SYNTAX))}},
    {.name = "plain one NUL (truncated)",
     .id = SASL_MECH_PLAIN,
     .acts = {STEP("\0tim", FAILS(SASL_FAIL_SYNTAX))}},
    {.name = "plain empty authcid",
     .id = SASL_MECH_PLAIN,
     .acts = {STEP("\0\0pw", FAILS(SASL_FAIL_SYNTAX))}},
    {.name = "plain empty password",
     .id = SASL_MECH_PLAIN,
     .acts = {STEP("\0tim\0", FAILS(SASL_FAIL_SYNTAX))}},
    {.name = "plain third NUL",
     .id = SASL_MECH_PLAIN,
     .acts = {STEP("\0tim\0pw\0x", FAILS(SASL_FAIL_SYNTAX))}},

    /* ---- LOGIN ---- */
    {.name = "login without initial response",
     .id = SASL_MECH_LOGIN,
     .acts = {STEP("", .want = SASL_CHALLENGE, .want_data = "Username:"),
              STEP("tim", .want = SASL_CHALLENGE, .want_data = "Password:"),
              STEP("tanstaaftanstaaf", .want = SASL_NEED_VERIFY_PLAIN, .want_authcid = "tim",
                   .want_authzid = "", .want_password = "tanstaaftanstaaf"),
              VERIFY(true, .want = SASL_OK, .want_authcid = "tim", .want_data = "")}},
    {.name = "login initial response is the user",
     .id = SASL_MECH_LOGIN,
     .acts = {STEP("tim", .want = SASL_CHALLENGE, .want_data = "Password:"),
              STEP("secret", .want = SASL_NEED_VERIFY_PLAIN, .want_password = "secret"),
              VERIFY(false, FAILS(SASL_FAIL_CREDENTIALS))}},
    {.name = "login empty user",
     .id = SASL_MECH_LOGIN,
     .acts = {STEP("", .want = SASL_CHALLENGE), STEP("", FAILS(SASL_FAIL_SYNTAX))}},
    {.name = "login NUL in password",
     .id = SASL_MECH_LOGIN,
     .acts = {STEP("tim", .want = SASL_CHALLENGE), STEP("a\0b", FAILS(SASL_FAIL_SYNTAX))}},

    /* ---- CRAM-MD5 (RFC 2195 section 2) ---- */
    {.name = "cram-md5 rfc2195",
     .id = SASL_MECH_CRAM_MD5,
     .random_form = RANDOM_HEX,
     .random = "0768", /* 1896 */
     .hostname = "postoffice.reston.mci.net",
     .timestamp_s = 697170952,
     .cred = CRED_CRAM_TIM,
     .acts = {STEP("", .want = SASL_CHALLENGE,
                   .want_data = "<1896.697170952@postoffice.reston.mci.net>"),
              STEP("tim b913a602c7eda7a495b4e6e7334d3890", .want = SASL_NEED_CREDENTIALS,
                   .want_authcid = "tim"),
              CRED(.want = SASL_OK, .want_authcid = "tim", .want_data = "")}},
    {.name = "cram-md5 rfc2195 with doveadm's stored context, upper-case hex",
     .id = SASL_MECH_CRAM_MD5,
     .random_form = RANDOM_HEX,
     .random = "0768",
     .hostname = "postoffice.reston.mci.net",
     .timestamp_s = 697170952,
     .cred = CRED_CRAM_TIM_DOVEADM,
     .acts = {STEP("", .want = SASL_CHALLENGE),
              STEP("tim B913A602C7EDA7A495B4E6E7334D3890", .want = SASL_NEED_CREDENTIALS),
              CRED(.want = SASL_OK, .want_authcid = "tim")}},
    {.name = "cram-md5 wrong digest",
     .id = SASL_MECH_CRAM_MD5,
     .random_form = RANDOM_HEX,
     .random = "0768",
     .hostname = "postoffice.reston.mci.net",
     .timestamp_s = 697170952,
     .cred = CRED_CRAM_TIM,
     .acts = {STEP("", .want = SASL_CHALLENGE),
              STEP("tim b913a602c7eda7a495b4e6e7334d3891", .want = SASL_NEED_CREDENTIALS),
              CRED(FAILS(SASL_FAIL_CREDENTIALS))}},
    {.name = "cram-md5 replayed response to a new challenge",
     .id = SASL_MECH_CRAM_MD5,
     .random_form = RANDOM_HEX,
     .random = "0769",
     .hostname = "postoffice.reston.mci.net",
     .timestamp_s = 697170952,
     .cred = CRED_CRAM_TIM,
     .acts = {STEP("", .want = SASL_CHALLENGE,
                   .want_data = "<1897.697170952@postoffice.reston.mci.net>"),
              STEP("tim b913a602c7eda7a495b4e6e7334d3890", .want = SASL_NEED_CREDENTIALS),
              CRED(FAILS(SASL_FAIL_CREDENTIALS))}},
    {.name = "cram-md5 user with spaces splits at the last space",
     .id = SASL_MECH_CRAM_MD5,
     .random_form = RANDOM_HEX,
     .random = "01",
     .hostname = "h",
     .acts = {STEP("", .want = SASL_CHALLENGE, .want_data = "<1.0@h>"),
              STEP("tim smith 00000000000000000000000000000000", .want = SASL_NEED_CREDENTIALS,
                   .want_authcid = "tim smith")}},
    {.name = "cram-md5 initial response refused",
     .id = SASL_MECH_CRAM_MD5,
     .random_form = RANDOM_HEX,
     .random = "01",
     .acts = {STEP("tim", FAILS(SASL_FAIL_SYNTAX))}},
    {.name = "cram-md5 no digest",
     .id = SASL_MECH_CRAM_MD5,
     .random_form = RANDOM_HEX,
     .random = "01",
     .acts = {STEP("", .want = SASL_CHALLENGE), STEP("tim", FAILS(SASL_FAIL_SYNTAX))}},
    {.name = "cram-md5 truncated digest",
     .id = SASL_MECH_CRAM_MD5,
     .random_form = RANDOM_HEX,
     .random = "01",
     .acts = {STEP("", .want = SASL_CHALLENGE),
              STEP("tim b913a602c7eda7a495b4e6e7334d389", FAILS(SASL_FAIL_SYNTAX))}},
    {.name = "cram-md5 non-hex digest",
     .id = SASL_MECH_CRAM_MD5,
     .random_form = RANDOM_HEX,
     .random = "01",
     .acts = {STEP("", .want = SASL_CHALLENGE),
              STEP("tim g913a602c7eda7a495b4e6e7334d3890", FAILS(SASL_FAIL_SYNTAX))}},
    {.name = "cram-md5 empty user",
     .id = SASL_MECH_CRAM_MD5,
     .random_form = RANDOM_HEX,
     .random = "01",
     .acts = {STEP("", .want = SASL_CHALLENGE),
              STEP(" b913a602c7eda7a495b4e6e7334d3890", FAILS(SASL_FAIL_SYNTAX))}},
    {.name = "cram-md5 unusable stored context",
     .id = SASL_MECH_CRAM_MD5,
     .random_form = RANDOM_HEX,
     .random = "01",
     .cred = CRED_CRAM_SHORT,
     .acts = {STEP("", .want = SASL_CHALLENGE),
              STEP("tim b913a602c7eda7a495b4e6e7334d3890", .want = SASL_NEED_CREDENTIALS),
              CRED(FAILS(SASL_FAIL_STORED))}},

    /* ---- DIGEST-MD5 (RFC 2831 section 4) ---- */
    {DIGEST_CASE("digest-md5 rfc2831"),
     .cred = CRED_DIGEST_CHRIS,
     .acts = {DIGEST_START, STEP(RFC2831_RESPONSE, DIGEST_NEED, .want_authzid = ""),
              CRED(.want = SASL_OK, .want_authcid = "chris@elwood.innosoft.com",
                   .want_data = "rspauth=ea40f60335c427b5527b84dbabcdfffd")}},
    {DIGEST_CASE("digest-md5 rfc2831 final message as a challenge"),
     .options = SASL_OPT_FINAL_AS_CHALLENGE,
     .cred = CRED_DIGEST_CHRIS,
     .acts = {DIGEST_START, STEP(RFC2831_RESPONSE, DIGEST_NEED),
              CRED(.want = SASL_CHALLENGE, .want_data = "rspauth=ea40f60335c427b5527b84dbabcdfffd"),
              STEP("", .want = SASL_OK, .want_data = "",
                   .want_authcid = "chris@elwood.innosoft.com")}},
    {DIGEST_CASE("digest-md5 final message as a challenge, non-empty reply"),
     .options = SASL_OPT_FINAL_AS_CHALLENGE,
     .cred = CRED_DIGEST_CHRIS,
     .acts = {DIGEST_START, STEP(RFC2831_RESPONSE, DIGEST_NEED),
              CRED(.want = SASL_CHALLENGE), STEP("x", FAILS(SASL_FAIL_SYNTAX))}},
    {DIGEST_CASE("digest-md5 whitespace, escapes, empty elements, any order"),
     .cred = CRED_DIGEST_CHRIS,
     .acts = {DIGEST_START,
              STEP(" , qop = auth ,, Username = \"ch\\ris\" , realm=\"elwood.innosoft.com\","
                   "NONCE=\"OA6MG9tEQGm2hh\" ,nc=00000001,cnonce=OA6MHXh6VqTrRk, "
                   "digest-uri=\"imap/elwood.innosoft.com\",maxbuf=65536,"
                   "response=\"D388DAD90D4BBD760A152321F2143AF7\",future=\"x,y\" ",
                   DIGEST_NEED),
              CRED(.want = SASL_OK, .want_data = "rspauth=ea40f60335c427b5527b84dbabcdfffd")}},
    {DIGEST_CASE("digest-md5 wrong password"),
     .cred = CRED_DIGEST_WRONG,
     .acts = {DIGEST_START, STEP(RFC2831_RESPONSE, DIGEST_NEED),
              CRED(FAILS(SASL_FAIL_CREDENTIALS))}},
    {.name = "digest-md5 service must be smtp",
     .id = SASL_MECH_DIGEST_MD5,
     .random_form = RANDOM_DIGEST_NONCE,
     .random = "OA6MG9tEQGm2hh",
     .realm = "elwood.innosoft.com",
     .service = "smtp",
     .acts = {DIGEST_START, STEP(RFC2831_RESPONSE, FAILS(SASL_FAIL_CREDENTIALS))}},
    {.name = "digest-md5 replayed response to a new nonce",
     .id = SASL_MECH_DIGEST_MD5,
     .random_form = RANDOM_DIGEST_NONCE,
     .random = "QB7NH0uFRHn3ii",
     .realm = "elwood.innosoft.com",
     .service = "imap",
     .acts = {STEP("", .want = SASL_CHALLENGE,
                   .want_data = "realm=\"elwood.innosoft.com\",nonce=\"QB7NH0uFRHn3ii\","
                                "qop=\"auth\",algorithm=md5-sess,charset=utf-8"),
              STEP(RFC2831_RESPONSE, FAILS(SASL_FAIL_CREDENTIALS))}},
    {DIGEST_CASE("digest-md5 nonce count 2"),
     .acts = {DIGEST_START,
              STEP("username=\"chris\",nonce=\"OA6MG9tEQGm2hh\",nc=00000002,cnonce=\"x\","
                   "digest-uri=\"imap/h\",response=d388dad90d4bbd760a152321f2143af7",
                   FAILS(SASL_FAIL_UNSUPPORTED))}},
    {DIGEST_CASE("digest-md5 qop auth-int"),
     .acts = {DIGEST_START,
              STEP("username=\"chris\",nonce=\"OA6MG9tEQGm2hh\",nc=00000001,cnonce=\"x\","
                   "qop=auth-int,digest-uri=\"imap/h\","
                   "response=d388dad90d4bbd760a152321f2143af7",
                   FAILS(SASL_FAIL_UNSUPPORTED))}},
    {DIGEST_CASE("digest-md5 duplicate username"),
     .acts = {DIGEST_START,
              STEP("username=\"chris\",username=\"eve\",nonce=\"OA6MG9tEQGm2hh\",nc=00000001,"
                   "cnonce=\"x\",digest-uri=\"imap/h\","
                   "response=d388dad90d4bbd760a152321f2143af7",
                   FAILS(SASL_FAIL_SYNTAX))}},
    {DIGEST_CASE("digest-md5 unterminated quoted string"),
     .acts = {DIGEST_START,
              STEP("username=\"chris,nonce=\"OA6MG9tEQGm2hh\"", FAILS(SASL_FAIL_SYNTAX))}},
    {DIGEST_CASE("digest-md5 missing cnonce"),
     .acts = {DIGEST_START,
              STEP("username=\"chris\",nonce=\"OA6MG9tEQGm2hh\",nc=00000001,"
                   "digest-uri=\"imap/h\",response=d388dad90d4bbd760a152321f2143af7",
                   FAILS(SASL_FAIL_SYNTAX))}},
    {DIGEST_CASE("digest-md5 truncated after a key"),
     .acts = {DIGEST_START, STEP("username=\"chris\",nonce", FAILS(SASL_FAIL_SYNTAX))}},
    {DIGEST_CASE("digest-md5 garbage after a value"),
     .acts = {DIGEST_START,
              STEP("username=\"chris\" x,nonce=\"OA6MG9tEQGm2hh\"", FAILS(SASL_FAIL_SYNTAX))}},
    {DIGEST_CASE("digest-md5 charset other than utf-8"),
     .acts = {DIGEST_START,
              STEP("charset=latin1,username=\"chris\",nonce=\"OA6MG9tEQGm2hh\",nc=00000001,"
                   "cnonce=\"x\",digest-uri=\"imap/h\","
                   "response=d388dad90d4bbd760a152321f2143af7",
                   FAILS(SASL_FAIL_SYNTAX))}},
    {DIGEST_CASE("digest-md5 authzid of another user refused"),
     .acts = {DIGEST_START,
              STEP("username=\"chris\",authzid=\"eve\",nonce=\"OA6MG9tEQGm2hh\",nc=00000001,"
                   "cnonce=\"x\",digest-uri=\"imap/h\","
                   "response=d388dad90d4bbd760a152321f2143af7",
                   FAILS(SASL_FAIL_AUTHZID))}},
    {DIGEST_CASE("digest-md5 initial response refused"),
     .acts = {STEP("username=\"chris\"", FAILS(SASL_FAIL_SYNTAX))}},

    /* ---- SCRAM-SHA-1 (RFC 5802 section 5) ---- */
    {SCRAM1_CASE("scram-sha-1 rfc5802", RFC5802_RANDOM, CRED_SCRAM1_PENCIL),
     .acts = {SCRAM1_NEED, SCRAM1_SERVER_FIRST,
              STEP(RFC5802_FINAL, .want = SASL_OK, .want_authcid = "user", .want_authzid = "",
                   .want_data = RFC5802_SERVER_FINAL)}},
    {SCRAM1_CASE("scram-sha-1 rfc5802 after an empty initial response", RFC5802_RANDOM,
                 CRED_SCRAM1_PENCIL),
     .acts = {STEP("", .want = SASL_CHALLENGE, .want_data = ""), SCRAM1_NEED, SCRAM1_SERVER_FIRST,
              STEP(RFC5802_FINAL, .want = SASL_OK, .want_data = RFC5802_SERVER_FINAL)}},
    {SCRAM1_CASE("scram-sha-1 wrong password", RFC5802_RANDOM, CRED_SCRAM1_WRONG),
     .acts = {SCRAM1_NEED, SCRAM1_SERVER_FIRST, STEP(RFC5802_FINAL, FAILS(SASL_FAIL_CREDENTIALS))}},
    {SCRAM1_CASE("scram-sha-1 altered proof", RFC5802_RANDOM, CRED_SCRAM1_PENCIL),
     .acts = {SCRAM1_NEED, SCRAM1_SERVER_FIRST,
              STEP(RFC5802_FINAL_NO_PROOF ",p=v0X8v3Bz2T0CJGbJQyF0X+HI4Tt=",
                   FAILS(SASL_FAIL_SYNTAX))}}, /* non-canonical base64 */
    {SCRAM1_CASE("scram-sha-1 proof of another exchange", RFC5802_RANDOM, CRED_SCRAM1_PENCIL),
     .acts = {SCRAM1_NEED, SCRAM1_SERVER_FIRST,
              STEP(RFC5802_FINAL_NO_PROOF ",p=AAX8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                   FAILS(SASL_FAIL_CREDENTIALS))}},
    {SCRAM1_CASE("scram-sha-1 replayed final to a new server nonce", "4sgdOIZKZ2aWwXWt8k",
                 CRED_SCRAM1_PENCIL),
     .acts = {SCRAM1_NEED,
              CRED(.want = SASL_CHALLENGE,
                   .want_data = "r=fyko+d2lbbFgONRv9qkxdawL4sgdOIZKZ2aWwXWt8k,"
                                "s=QSXCR+Q6sek8bf92,i=4096"),
              STEP(RFC5802_FINAL, FAILS(SASL_FAIL_CREDENTIALS))}},
    {SCRAM1_CASE("scram-sha-1 proof truncated", RFC5802_RANDOM, CRED_SCRAM1_PENCIL),
     .acts = {SCRAM1_NEED, SCRAM1_SERVER_FIRST,
              STEP(RFC5802_FINAL_NO_PROOF ",p=v0X8v3Bz2T0CJGbJ", FAILS(SASL_FAIL_SYNTAX))}},
    {SCRAM1_CASE("scram-sha-1 final without proof", RFC5802_RANDOM, CRED_SCRAM1_PENCIL),
     .acts = {SCRAM1_NEED, SCRAM1_SERVER_FIRST,
              STEP(RFC5802_FINAL_NO_PROOF, FAILS(SASL_FAIL_SYNTAX))}},
    {SCRAM1_CASE("scram-sha-1 channel binding data mismatch", RFC5802_RANDOM, CRED_SCRAM1_PENCIL),
     .acts = {SCRAM1_NEED, SCRAM1_SERVER_FIRST,
              STEP("c=eSws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
                   "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                   FAILS(SASL_FAIL_SYNTAX))}},
    {SCRAM1_CASE("scram-sha-1 channel binding requested", RFC5802_RANDOM, CRED_SCRAM1_PENCIL),
     .acts = {STEP("p=tls-unique,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
                   FAILS(SASL_FAIL_UNSUPPORTED))}},
    {SCRAM1_CASE("scram-sha-1 mandatory extension", RFC5802_RANDOM, CRED_SCRAM1_PENCIL),
     .acts = {STEP("n,,m=ext,n=user,r=abc", FAILS(SASL_FAIL_UNSUPPORTED))}},
    {SCRAM1_CASE("scram-sha-1 bad gs2 flag", RFC5802_RANDOM, CRED_SCRAM1_PENCIL),
     .acts = {STEP("x,,n=user,r=abc", FAILS(SASL_FAIL_SYNTAX))}},
    {SCRAM1_CASE("scram-sha-1 bad username escape", RFC5802_RANDOM, CRED_SCRAM1_PENCIL),
     .acts = {STEP("n,,n=us=2Xer,r=abc", FAILS(SASL_FAIL_SYNTAX))}},
    {SCRAM1_CASE("scram-sha-1 username escapes", RFC5802_RANDOM, CRED_SCRAM1_PENCIL),
     .acts = {STEP("n,,n=a=2Cb=3Dc,r=abc", .want = SASL_NEED_CREDENTIALS,
                   .want_authcid = "a,b=c")}},
    {SCRAM1_CASE("scram-sha-1 empty username", RFC5802_RANDOM, CRED_SCRAM1_PENCIL),
     .acts = {STEP("n,,n=,r=abc", FAILS(SASL_FAIL_SYNTAX))}},
    {SCRAM1_CASE("scram-sha-1 truncated client-first", RFC5802_RANDOM, CRED_SCRAM1_PENCIL),
     .acts = {STEP("n,,n=user", FAILS(SASL_FAIL_SYNTAX))}},
    {SCRAM1_CASE("scram-sha-1 authzid of another user refused", RFC5802_RANDOM, CRED_SCRAM1_PENCIL),
     .acts = {STEP("n,a=admin,n=user,r=abc", FAILS(SASL_FAIL_AUTHZID))}},
    {SCRAM1_CASE("scram-sha-1 authzid of another user allowed", RFC5802_RANDOM, CRED_SCRAM1_PENCIL),
     .options = SASL_OPT_ALLOW_AUTHZID,
     .acts = {STEP("n,a=admin,n=user,r=abc", .want = SASL_NEED_CREDENTIALS,
                   .want_authcid = "user", .want_authzid = "admin")}},
    {.name = "scram-sha-256 unusable stored iterations",
     .id = SASL_MECH_SCRAM_SHA256,
     .random_form = RANDOM_SCRAM_NONCE,
     .random = RFC5802_RANDOM,
     .cred = CRED_SCRAM256_ZERO_ITER,
     .acts = {STEP(RFC7677_FIRST, .want = SASL_NEED_CREDENTIALS), CRED(FAILS(SASL_FAIL_STORED))}},

    /* ---- SCRAM-SHA-256 (RFC 7677 section 3) ---- */
    {.name = "scram-sha-256 rfc7677",
     .id = SASL_MECH_SCRAM_SHA256,
     .random_form = RANDOM_SCRAM_NONCE,
     .random = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
     .cred = CRED_SCRAM256_PENCIL,
     .acts = {STEP(RFC7677_FIRST, .want = SASL_NEED_CREDENTIALS, .want_authcid = "user"),
              CRED(.want = SASL_CHALLENGE, .want_data = RFC7677_SERVER_FIRST),
              STEP(RFC7677_FINAL, .want = SASL_OK, .want_authcid = "user",
                   .want_data = RFC7677_SERVER_FINAL)}},
    {.name = "scram-sha-256 rfc7677 final message as a challenge",
     .id = SASL_MECH_SCRAM_SHA256,
     .options = SASL_OPT_FINAL_AS_CHALLENGE,
     .random_form = RANDOM_SCRAM_NONCE,
     .random = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
     .cred = CRED_SCRAM256_PENCIL,
     .acts = {STEP(RFC7677_FIRST, .want = SASL_NEED_CREDENTIALS),
              CRED(.want = SASL_CHALLENGE, .want_data = RFC7677_SERVER_FIRST),
              STEP(RFC7677_FINAL, .want = SASL_CHALLENGE, .want_data = RFC7677_SERVER_FINAL),
              STEP("", .want = SASL_OK, .want_data = "", .want_authcid = "user")}},
    {.name = "scram-sha-256 with the sha-1 exchange",
     .id = SASL_MECH_SCRAM_SHA256,
     .random_form = RANDOM_SCRAM_NONCE,
     .random = "3rfcNHYJY1ZVvWVs7j",
     .cred = CRED_SCRAM256_PENCIL,
     .acts = {STEP(RFC5802_FIRST, .want = SASL_NEED_CREDENTIALS), CRED(.want = SASL_CHALLENGE),
              STEP(RFC5802_FINAL, FAILS(SASL_FAIL_SYNTAX))}}, /* 20-byte proof */
};

static void check_out(const test_case *tc, size_t i, const test_act *a, sasl_status st,
                      const sasl_out *out)
{
    if (st != a->want) {
        fail_msg("%s, action %zu: status got %s (reason %s), want %s", tc->name, i,
                 status_name(st), reason_name(out->reason), status_name(a->want));
    }
    if (st == SASL_FAIL && out->reason != a->want_reason) {
        fail_msg("%s, action %zu: reason got %s, want %s", tc->name, i,
                 reason_name(out->reason), reason_name(a->want_reason));
    }
    char what[256];
    if (a->want_data != NULL) {
        snprintf(what, sizeof(what), "%s, action %zu: data", tc->name, i);
        expect_str(what, out->data, a->want_data);
    }
    if (a->want_authcid != NULL) {
        snprintf(what, sizeof(what), "%s, action %zu: authcid", tc->name, i);
        expect_str(what, out->authcid, a->want_authcid);
    }
    if (a->want_authzid != NULL) {
        snprintf(what, sizeof(what), "%s, action %zu: authzid", tc->name, i);
        expect_str(what, out->authzid, a->want_authzid);
    }
    if (a->want_password != NULL) {
        snprintf(what, sizeof(what), "%s, action %zu: password", tc->name, i);
        expect_str(what, out->password, a->want_password);
    }
    if (st == SASL_NEED_CREDENTIALS) {
        assert_int_equal(out->cred_kind, sasl_mech_info_get(tc->id)->cred);
    }
}

static void run_case(const test_case *tc)
{
    uint8_t random[SASL_RANDOM_BYTES_MAX];
    size_t random_len = make_random(tc->random_form, tc->random, random);
    sasl_params params = {.options = tc->options,
                          .hostname = tc->hostname,
                          .realm = tc->realm,
                          .digest_service = tc->service,
                          .timestamp_s = tc->timestamp_s};
    sasl_mech *m = malloc(sizeof(*m));
    assert_non_null(m);
    sasl_mech_init(m, tc->id, &params, random, random_len);
    for (size_t i = 0; i < SL_ARRAY_LEN(tc->acts) && tc->acts[i].kind != ACT_END; i++) {
        const test_act *a = &tc->acts[i];
        sasl_out out;
        sasl_status st = SASL_FAIL;
        if (a->kind == ACT_STEP) {
            st = step_copy(m, a->in, a->in_len, &out);
        } else if (a->kind == ACT_VERIFY) {
            st = sasl_mech_verify_result(m, a->verify_ok, &out);
        } else {
            cred_buf c;
            make_cred(tc->cred, &c);
            assert_int_equal(c.kind, sasl_mech_info_get(tc->id)->cred);
            st = sasl_mech_set_credentials(m, c.kind, &c.u, c.len, &out);
        }
        check_out(tc, i, a, st, &out);
    }
    sasl_mech_clear(m);
    free(m);
}

static void test_scripts(void **state)
{
    (void)state;
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        run_case(&cases[i]);
    }
}

/* ---- table, flags, derived credentials ---- */

static void test_table(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *flags;
        sasl_cred_kind cred;
    } want[SASL_MECH_COUNT] = {
        [SASL_MECH_PLAIN] = {"PLAIN", "plaintext", SASL_CRED_NONE},
        [SASL_MECH_LOGIN] = {"LOGIN", "plaintext", SASL_CRED_NONE},
        [SASL_MECH_CRAM_MD5] = {"CRAM-MD5", "dictionary active", SASL_CRED_CRAM_MD5},
        [SASL_MECH_DIGEST_MD5] = {"DIGEST-MD5", "dictionary active mutual-auth",
                                  SASL_CRED_DIGEST_MD5},
        [SASL_MECH_SCRAM_SHA1] = {"SCRAM-SHA-1", "mutual-auth", SASL_CRED_SCRAM_SHA1},
        [SASL_MECH_SCRAM_SHA256] = {"SCRAM-SHA-256", "mutual-auth", SASL_CRED_SCRAM_SHA256},
        [SASL_MECH_NTLM] = {"NTLM", "dictionary active", SASL_CRED_NTLM},
    };
    for (unsigned id = 0; id < SASL_MECH_COUNT; id++) {
        const sasl_mech_info *info = sasl_mech_info_get((sasl_mech_id)id);
        assert_int_equal(info->id, id);
        assert_string_equal(info->name, want[id].name);
        assert_int_equal(info->cred, want[id].cred);
        char flags[128] = "";
        for (unsigned bit = 0; bit < 32; bit++) {
            if (info->flags & (1u << bit)) {
                const char *word = sasl_mech_flag_name(1u << bit);
                assert_non_null(word);
                if (flags[0] != '\0') {
                    strcat(flags, " ");
                }
                strcat(flags, word);
            }
        }
        if (strcmp(flags, want[id].flags) != 0) {
            fail_msg("%s flags: got \"%s\", want \"%s\"", info->name, flags, want[id].flags);
        }
    }
    assert_ptr_equal(sasl_mech_lookup(SL_SLICE_LIT("scram-sha-256")),
                     sasl_mech_info_get(SASL_MECH_SCRAM_SHA256));
    assert_ptr_equal(sasl_mech_lookup(SL_SLICE_LIT("Digest-MD5")),
                     sasl_mech_info_get(SASL_MECH_DIGEST_MD5));
    assert_null(sasl_mech_lookup(SL_SLICE_LIT("SCRAM-SHA-256-PLUS")));
    assert_null(sasl_mech_lookup(SL_SLICE_LIT("")));
    assert_null(sasl_mech_flag_name(3));
    assert_string_equal(sasl_mech_flag_name(SASL_MECH_FLAG_PRIVATE), "private");
    assert_string_equal(sasl_mech_flag_name(SASL_MECH_FLAG_FORWARD_SECRECY), "forward-secrecy");
}

/* Values printed by Dovecot 2.3.19's doveadm pw. */
static void test_dovecot_schemes(void **state)
{
    (void)state;
    uint8_t got[64];
    static const struct {
        const char *secret;
        const char *want_hex;
    } cram[] = {
        {"secret", "cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56"},
        {"tanstaaftanstaaf", "d06d4e1b26fccaa4b0b61801132340a354b21152711fb604ca3e035e7015116b"},
        /* 100 bytes: longer than the HMAC block, so the key is hashed first */
        {"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
         "kkkkkkkkkkkkkkkk",
         "3ae21d35bcb420cc10d678a30813dfaff1c856d356b2c5f8429dc6087392415f"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cram); i++) {
        sasl_cram_md5_context((const uint8_t *)cram[i].secret, strlen(cram[i].secret), got);
        expect_hex(cram[i].secret, got, 32, cram[i].want_hex);
    }

    /* doveadm pw -s DIGEST-MD5 -u user@realm -p secret, and -u user (no realm). */
    sasl_digest_md5_secret(SL_SLICE_LIT("user"), SL_SLICE_LIT("realm"), SL_SLICE_LIT("secret"),
                           got);
    expect_hex("digest user@realm", got, 16, "fb6cb9e166c6c764ff2bdea12175a8aa");
    sasl_digest_md5_secret(SL_SLICE_LIT("user"), SL_SLICE_LIT(""), SL_SLICE_LIT("secret"), got);
    expect_hex("digest user", got, 16, "20b4b61d3f0126b9aac227a68dbe3e26");

    /* doveadm pw -s SCRAM-SHA-256 / SCRAM-SHA-1 -p secret, salts as printed. */
    static const struct {
        sasl_cred_kind kind;
        const char *salt, *stored, *server;
    } scram[] = {
        {SASL_CRED_SCRAM_SHA256, "TbVe5QAOM0iEtumF3iJPaA==",
         "k2VfREfcOVa4C8/dQQCpFb2DZ3okaxLaG/XGzlGzqw0=",
         "YABt7O7zj0txas/HRbzkC6Scnv+Z9P7L1c0P6/TTjgA="},
        {SASL_CRED_SCRAM_SHA1, "2wzLqov+usN+aWq2pJlykw==", "H/QMwYwnwvQwBlXrOCLKfOxNbiI=",
         "YHvmeWLBPOTANv0dlYAy7f8O79M="},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(scram); i++) {
        uint8_t salt[64];
        uint8_t want[32];
        size_t salt_len = b64_decode(scram[i].salt, salt, sizeof(salt));
        sasl_scram_cred c;
        sasl_scram_derive(scram[i].kind, SL_SLICE_LIT("secret"), salt, salt_len, 4096, &c);
        assert_int_equal(c.iterations, 4096);
        expect_slice("scram salt", (sl_slice){c.salt, c.salt_len}, salt, salt_len);
        size_t n = b64_decode(scram[i].stored, want, sizeof(want));
        expect_slice("scram StoredKey", (sl_slice){c.stored_key, n}, want, n);
        n = b64_decode(scram[i].server, want, sizeof(want));
        expect_slice("scram ServerKey", (sl_slice){c.server_key, n}, want, n);
    }

    /* MS-NLMP 4.2.2.1.2: NTOWFv1("Password"); and a non-ASCII password via UTF-16. */
    assert_true(sasl_ntlm_hash(SL_SLICE_LIT("Password"), got));
    expect_hex("nt hash", got, 16, "a4f49c406510bdcab6824ee7c30fd852");
    assert_false(sasl_ntlm_hash(SL_SLICE_LIT("\xc3("), got));
    assert_false(sasl_ntlm_hash(SL_SLICE_LIT("\xed\xa0\x80"), got)); /* UTF-8 surrogate */
}

static void test_base64(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bool ok;
        const char *want;
    } cases_b64[] = {
        {"", true, ""},         {"YQ==", true, "a"},    {"YWI=", true, "ab"},
        {"YWJj", true, "abc"},  {"YQ", false, NULL},    {"YR==", false, NULL},
        {"Y===", false, NULL},  {"YQ==YQ==", false, NULL}, {"Y Q=", false, NULL},
        {"=QQQ", false, NULL},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases_b64); i++) {
        uint8_t out[16];
        size_t n = 0;
        sl_slice in = {(const uint8_t *)cases_b64[i].in, strlen(cases_b64[i].in)};
        bool ok = sasl_mech_b64_decode(in, out, sizeof(out), &n);
        if (ok != cases_b64[i].ok) {
            fail_msg("b64 \"%s\": got %d, want %d", cases_b64[i].in, ok, cases_b64[i].ok);
        }
        if (ok) {
            expect_str(cases_b64[i].in, (sl_slice){out, n}, cases_b64[i].want);
            uint8_t enc[32];
            sasl_wbuf w;
            sasl_wbuf_init(&w, enc, sizeof(enc));
            sasl_wbuf_b64(&w, out, n);
            expect_str("b64 round trip", (sl_slice){enc, w.len}, cases_b64[i].in);
        }
    }
    uint8_t small[2];
    size_t n = 0;
    assert_false(sasl_mech_b64_decode(SL_SLICE_LIT("YWJj"), small, sizeof(small), &n));
}

/* ---- limits, built at run time ---- */

static void test_limits(void **state)
{
    (void)state;
    static uint8_t buf[SASL_INPUT_BYTES_MAX + 2];
    sasl_params params = {0};
    sasl_mech m;
    sasl_out out;
    static const struct {
        size_t zid, cid, pw;
        sasl_status want;
    } sizes[] = {
        {0, SASL_USER_BYTES_MAX, SASL_PASSWORD_BYTES_MAX, SASL_NEED_VERIFY_PLAIN},
        {0, SASL_USER_BYTES_MAX + 1, 8, SASL_FAIL},
        {0, 8, SASL_PASSWORD_BYTES_MAX + 1, SASL_FAIL},
        {SASL_USER_BYTES_MAX + 1, 8, 8, SASL_FAIL},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(sizes); i++) {
        size_t n = 0;
        memset(buf, 'z', sizes[i].zid);
        n += sizes[i].zid;
        buf[n++] = 0;
        memset(buf + n, 'c', sizes[i].cid);
        n += sizes[i].cid;
        buf[n++] = 0;
        memset(buf + n, 'p', sizes[i].pw);
        n += sizes[i].pw;
        params.options = SASL_OPT_ALLOW_AUTHZID;
        sasl_mech_init(&m, SASL_MECH_PLAIN, &params, NULL, 0);
        sasl_status st = step_copy(&m, buf, n, &out);
        if (st != sizes[i].want) {
            fail_msg("plain sizes %zu/%zu/%zu: got %s, want %s", sizes[i].zid, sizes[i].cid,
                     sizes[i].pw, status_name(st), status_name(sizes[i].want));
        }
        if (st == SASL_FAIL) {
            assert_int_equal(out.reason, SASL_FAIL_SYNTAX);
        } else {
            assert_int_equal(out.password.len, SASL_PASSWORD_BYTES_MAX);
            /* The password copy is wiped once the verdict is in. */
            const uint8_t *pw = out.password.ptr;
            assert_int_equal(sasl_mech_verify_result(&m, true, &out), SASL_OK);
            for (size_t k = 0; k < SASL_PASSWORD_BYTES_MAX; k++) {
                assert_int_equal(pw[k], 0);
            }
        }
        sasl_mech_clear(&m);
    }

    /* Any mechanism: a message over SASL_INPUT_BYTES_MAX fails as syntax. */
    memset(buf, 'a', sizeof(buf));
    sasl_mech_init(&m, SASL_MECH_LOGIN, &params, NULL, 0);
    assert_int_equal(step_copy(&m, buf, SASL_INPUT_BYTES_MAX + 1, &out), SASL_FAIL);
    assert_int_equal(out.reason, SASL_FAIL_SYNTAX);

    /* clear wipes the whole state. */
    sasl_mech_init(&m, SASL_MECH_PLAIN, &params, NULL, 0);
    assert_int_equal(step_copy(&m, "\0tim\0secret", 11, &out), SASL_NEED_VERIFY_PLAIN);
    sasl_mech_clear(&m);
    const uint8_t *raw = (const uint8_t *)&m;
    for (size_t k = 0; k < sizeof(m); k++) {
        assert_int_equal(raw[k], 0);
    }
}

/* ---- NTLM (MS-NLMP section 4.2: User / Domain / Password, server challenge
 * 0123456789abcdef, client challenge aaaaaaaaaaaaaaaa) ---- */

#define NTLM_UNICODE 0x00000001u
#define NTLM_REQUEST_TARGET 0x00000004u
#define NTLM_NTLM 0x00000200u
#define NTLM_ESS 0x00080000u

static size_t ntlm_negotiate(uint32_t flags, uint8_t *out)
{
    memset(out, 0, 32);
    memcpy(out, "NTLMSSP", 8);
    out[8] = 1;
    for (int i = 0; i < 4; i++) {
        out[12 + i] = (uint8_t)(flags >> (8 * i));
    }
    return 32;
}

static size_t wide(const char *s, uint8_t *out)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = (uint8_t)s[i];
        out[2 * i + 1] = 0;
    }
    return 2 * n;
}

static void put_buffer(uint8_t *msg, size_t at, size_t *payload, const uint8_t *p, size_t n)
{
    msg[at] = (uint8_t)n;
    msg[at + 1] = (uint8_t)(n >> 8);
    msg[at + 2] = (uint8_t)n;
    msg[at + 3] = (uint8_t)(n >> 8);
    msg[at + 4] = (uint8_t)*payload;
    msg[at + 5] = (uint8_t)(*payload >> 8);
    memcpy(msg + *payload, p, n);
    *payload += n;
}

/* An AUTHENTICATE message with the user name given as raw UTF-16LE bytes. */
static size_t ntlm_authenticate_raw(const uint8_t *u, size_t u_len, const char *domain,
                                    const char *lm_hex, const char *nt_hex, uint8_t *out)
{
    uint8_t lm[64];
    uint8_t nt[256];
    uint8_t d[64];
    uint8_t ws[16];
    size_t lm_len = unhex(lm_hex, lm, sizeof(lm));
    size_t nt_len = unhex(nt_hex, nt, sizeof(nt));
    size_t d_len = wide(domain, d);
    size_t ws_len = wide("COMPUTER", ws);
    memset(out, 0, 64);
    memcpy(out, "NTLMSSP", 8);
    out[8] = 3;
    size_t payload = 64;
    put_buffer(out, 12, &payload, lm, lm_len);
    put_buffer(out, 20, &payload, nt, nt_len);
    put_buffer(out, 28, &payload, d, d_len);
    put_buffer(out, 36, &payload, u, u_len);
    put_buffer(out, 44, &payload, ws, ws_len);
    return payload;
}

static size_t ntlm_authenticate(const char *user, const char *domain, const char *lm_hex,
                                const char *nt_hex, uint8_t *out)
{
    uint8_t u[64];
    size_t u_len = wide(user, u);
    return ntlm_authenticate_raw(u, u_len, domain, lm_hex, nt_hex, out);
}

/* MS-NLMP 4.2.4.1.3 temp: version, zero time, client challenge, NbDomainName "Domain",
 * NbComputerName "Server", EOL. */
#define NTLM_V2_BLOB                                                                           \
    "01010000000000000000000000000000aaaaaaaaaaaaaaaa00000000"                                \
    "02000c0044006f006d00610069006e0001000c0053006500720076006500720000000000"                \
    "00000000"

static sasl_status ntlm_run(uint32_t neg_flags, const char *user, const char *domain,
                            const char *lm_hex, const char *nt_hex, const char *password,
                            sasl_out *out, sasl_fail_reason *reason_at_auth)
{
    static const uint8_t random[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
    sasl_params params = {.hostname = "server.example.org"};
    sasl_mech m;
    uint8_t msg[512];
    sasl_mech_init(&m, SASL_MECH_NTLM, &params, random, sizeof(random));
    assert_int_equal(step_copy(&m, NULL, 0, out), SASL_CHALLENGE);
    assert_int_equal(out->data.len, 0);
    size_t n = ntlm_negotiate(neg_flags, msg);
    sasl_status st = step_copy(&m, msg, n, out);
    if (st != SASL_CHALLENGE) {
        sasl_mech_clear(&m);
        return st;
    }
    /* CHALLENGE: signature, type 2, the server challenge, the flags granted. */
    const uint8_t *c = out->data.ptr;
    assert_true(out->data.len > 48);
    assert_memory_equal(c, "NTLMSSP", 8);
    assert_int_equal(c[8], 2);
    assert_memory_equal(c + 24, random, 8);
    uint32_t flags = (uint32_t)c[20] | (uint32_t)c[21] << 8 | (uint32_t)c[22] << 16 |
                     (uint32_t)c[23] << 24;
    assert_int_equal(flags & NTLM_ESS, neg_flags & NTLM_ESS);
    assert_true(flags & NTLM_UNICODE);
    size_t info_len = c[40] | c[41] << 8;
    size_t info_off = c[44] | c[45] << 8;
    assert_int_equal(info_off + info_len, out->data.len);
    if (neg_flags & NTLM_REQUEST_TARGET) {
        size_t name_len = c[12] | c[13] << 8;
        size_t name_off = c[16] | c[17] << 8;
        uint8_t want[32];
        size_t want_len = wide("SERVER", want);
        assert_int_equal(name_len, want_len);
        assert_memory_equal(c + name_off, want, want_len);
    }

    n = ntlm_authenticate(user, domain, lm_hex, nt_hex, msg);
    st = step_copy(&m, msg, n, out);
    *reason_at_auth = out->reason;
    if (st == SASL_NEED_CREDENTIALS) {
        expect_str("ntlm authcid", out->authcid, user);
        assert_int_equal(out->cred_kind, SASL_CRED_NTLM);
        uint8_t hash[16];
        assert_true(sasl_ntlm_hash((sl_slice){(const uint8_t *)password, strlen(password)}, hash));
        st = sasl_mech_set_credentials(&m, SASL_CRED_NTLM, hash, sizeof(hash), out);
        if (st == SASL_OK) {
            expect_str("ntlm ok authcid", out->authcid, user);
            assert_int_equal(out->data.len, 0);
        }
    }
    sasl_mech_clear(&m);
    return st;
}

/* NTOWFv2 without a domain, as Dovecot computes it, for the same blob. */
static void ntlm_v2_no_domain(char *nt_hex_out)
{
    uint8_t nt_hash[16];
    assert_true(sasl_ntlm_hash(SL_SLICE_LIT("Password"), nt_hash));
    uint8_t id[8];
    size_t id_len = wide("USER", id);
    uint8_t owf[16];
    unsigned len = 0;
    assert_non_null(HMAC(EVP_md5(), nt_hash, 16, id, id_len, owf, &len));
    uint8_t msg[128];
    size_t msg_len = unhex("0123456789abcdef" NTLM_V2_BLOB, msg, sizeof(msg));
    uint8_t proof[16];
    assert_non_null(HMAC(EVP_md5(), owf, 16, msg, msg_len, proof, &len));
    for (size_t i = 0; i < 16; i++) {
        snprintf(nt_hex_out + 2 * i, 3, "%02x", proof[i]);
    }
    strcat(nt_hex_out, NTLM_V2_BLOB);
}

static void test_ntlm(void **state)
{
    (void)state;
    const uint32_t base = NTLM_UNICODE | NTLM_NTLM | NTLM_REQUEST_TARGET;
    char v2_no_domain[512];
    ntlm_v2_no_domain(v2_no_domain);
    static const char v1_lm[] = "98def7b87f88aa5dafe2df779688a172def11c7d5ccdef13";
    static const char v1_nt[] = "67c43011f30298a2ad35ece64f16331c44bdbed927841f94";
    static const char ess_lm[] = "aaaaaaaaaaaaaaaa00000000000000000000000000000000";
    static const char ess_nt[] = "7537f803ae367128ca458204bde7caf81e97ed2683267232";
    static const char v2_lm[] = "86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa";
    static const char v2_nt[] = "68cd0ab851e51c96aabc927bebef6a1c" NTLM_V2_BLOB;
    const struct {
        const char *name;
        uint32_t flags;
        const char *user, *domain, *lm, *nt, *password;
        sasl_status want;
        sasl_fail_reason reason;
    } ntlm_cases[] = {
        {"v1 4.2.2", base, "User", "Domain", v1_lm, v1_nt, "Password", SASL_OK, 0},
        {"v1 wrong password", base, "User", "Domain", v1_lm, v1_nt, "password", SASL_FAIL,
         SASL_FAIL_CREDENTIALS},
        {"ntlm2 session 4.2.3", base | NTLM_ESS, "User", "Domain", ess_lm, ess_nt, "Password",
         SASL_OK, 0},
        {"v1 response when ESS was negotiated", base | NTLM_ESS, "User", "Domain", v1_lm, v1_nt,
         "Password", SASL_FAIL, SASL_FAIL_CREDENTIALS},
        {"ntlm2 session without client challenge", base | NTLM_ESS, "User", "Domain", "",
         ess_nt, "Password", SASL_FAIL, SASL_FAIL_SYNTAX},
        {"v2 4.2.4", base, "User", "Domain", v2_lm, v2_nt, "Password", SASL_OK, 0},
        {"v2 user name case-insensitive", base, "USER", "Domain", v2_lm, v2_nt, "Password",
         SASL_OK, 0},
        {"v2 domain is case-sensitive", base, "User", "DOMAIN", v2_lm, v2_nt, "Password",
         SASL_FAIL, SASL_FAIL_CREDENTIALS},
        {"v2 without domain (Dovecot)", base, "User", "Domain", v2_lm, v2_no_domain, "Password",
         SASL_OK, 0},
        {"v2 wrong password", base, "User", "Domain", v2_lm, v2_nt, "Passwort", SASL_FAIL,
         SASL_FAIL_CREDENTIALS},
        {"v2 short blob", base, "User", "Domain", v2_lm, "68cd0ab851e51c96aabc927bebef6a1c0101",
         "Password", SASL_FAIL, SASL_FAIL_SYNTAX},
        {"LM only", base, "User", "Domain", v1_lm, "", "Password", SASL_FAIL,
         SASL_FAIL_UNSUPPORTED},
        {"empty user", base, "", "Domain", v1_lm, v1_nt, "Password", SASL_FAIL,
         SASL_FAIL_SYNTAX},
        {"no unicode", NTLM_NTLM, "User", "Domain", v1_lm, v1_nt, "Password", SASL_FAIL,
         SASL_FAIL_UNSUPPORTED},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(ntlm_cases); i++) {
        sasl_out out;
        sasl_fail_reason at_auth = SASL_FAIL_NONE;
        sasl_status st = ntlm_run(ntlm_cases[i].flags, ntlm_cases[i].user, ntlm_cases[i].domain,
                                  ntlm_cases[i].lm, ntlm_cases[i].nt, ntlm_cases[i].password,
                                  &out, &at_auth);
        if (st != ntlm_cases[i].want ||
            (st == SASL_FAIL && out.reason != ntlm_cases[i].reason)) {
            fail_msg("ntlm %s: got %s/%s, want %s/%s", ntlm_cases[i].name, status_name(st),
                     reason_name(out.reason), status_name(ntlm_cases[i].want),
                     reason_name(ntlm_cases[i].reason));
        }
    }
}

/* Truncated and out-of-bounds NTLM messages. */
static void test_ntlm_malformed(void **state)
{
    (void)state;
    static const uint8_t random[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    sasl_params params = {.hostname = "h"};
    uint8_t neg[32];
    uint8_t msg[512];
    size_t neg_len = ntlm_negotiate(NTLM_UNICODE | NTLM_NTLM, neg);
    size_t full = ntlm_authenticate("User", "Domain", "",
                                    "67c43011f30298a2ad35ece64f16331c44bdbed927841f94", msg);
    const struct {
        const char *name;
        size_t len;    /* bytes of msg sent */
        size_t patch;  /* offset to overwrite, 0 = none */
        uint8_t value;
    } bad[] = {
        {"header only", 40, 0, 0},
        {"payload cut", full - 1, 0, 0},
        {"offset past end", full, 24, 0xff},  /* NT response offset */
        {"odd user length", full, 36, 7},
        {"wrong type", full, 8, 1},
        {"bad signature", full, 0 + 1, 'X'},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
        sasl_mech m;
        sasl_out out;
        uint8_t copy[512];
        memcpy(copy, msg, full);
        if (bad[i].patch != 0) {
            copy[bad[i].patch] = bad[i].value;
        }
        sasl_mech_init(&m, SASL_MECH_NTLM, &params, random, sizeof(random));
        assert_int_equal(step_copy(&m, neg, neg_len, &out), SASL_CHALLENGE);
        sasl_status st = step_copy(&m, copy, bad[i].len, &out);
        if (st != SASL_FAIL || out.reason != SASL_FAIL_SYNTAX) {
            fail_msg("ntlm %s: got %s/%s, want FAIL/SYNTAX", bad[i].name, status_name(st),
                     reason_name(out.reason));
        }
        sasl_mech_clear(&m);
    }
    /* A NEGOTIATE cut short. */
    sasl_mech m;
    sasl_out out;
    sasl_mech_init(&m, SASL_MECH_NTLM, &params, random, sizeof(random));
    assert_int_equal(step_copy(&m, neg, 15, &out), SASL_FAIL);
    assert_int_equal(out.reason, SASL_FAIL_SYNTAX);
    sasl_mech_clear(&m);
}

/* User names arrive as UTF-16LE and leave as UTF-8; broken UTF-16 is refused. */
static void test_ntlm_unicode_user(void **state)
{
    (void)state;
    static const uint8_t random[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const struct {
        const char *name;
        const char *user16_hex;
        sasl_status want;
        const char *want_authcid;
    } users[] = {
        {"latin-1 and astral", "4a00fc0072003dd800de", SASL_NEED_CREDENTIALS,
         "J\xc3\xbcr\xf0\x9f\x98\x80"},
        {"unpaired high surrogate", "4a003dd84a00", SASL_FAIL, NULL},
        {"lone low surrogate", "00de", SASL_FAIL, NULL},
        {"NUL unit", "4a0000004a00", SASL_FAIL, NULL},
    };
    sasl_params params = {.hostname = "h"};
    for (size_t i = 0; i < SL_ARRAY_LEN(users); i++) {
        uint8_t neg[32];
        uint8_t user16[32];
        uint8_t msg[512];
        size_t u_len = unhex(users[i].user16_hex, user16, sizeof(user16));
        size_t n = ntlm_authenticate_raw(user16, u_len, "D", "",
                                         "67c43011f30298a2ad35ece64f16331c44bdbed927841f94", msg);
        sasl_mech m;
        sasl_out out;
        sasl_mech_init(&m, SASL_MECH_NTLM, &params, random, sizeof(random));
        assert_int_equal(step_copy(&m, neg, ntlm_negotiate(NTLM_UNICODE | NTLM_NTLM, neg), &out),
                         SASL_CHALLENGE);
        sasl_status st = step_copy(&m, msg, n, &out);
        if (st != users[i].want) {
            fail_msg("ntlm user %s: got %s/%s, want %s", users[i].name, status_name(st),
                     reason_name(out.reason), status_name(users[i].want));
        }
        if (users[i].want_authcid != NULL) {
            expect_str(users[i].name, out.authcid, users[i].want_authcid);
        } else {
            assert_int_equal(out.reason, SASL_FAIL_SYNTAX);
        }
        sasl_mech_clear(&m);
    }
}

/* ---- SCRAM with a client computed here: 'y' flag, authzid, escaped names ---- */

static void scram_client_proof(const char *md_name, const char *password, const char *salt_b64,
                               const char *auth_message, char *proof_b64_out, size_t cap)
{
    const EVP_MD *md = EVP_get_digestbyname(md_name);
    size_t dlen = (size_t)EVP_MD_get_size(md);
    uint8_t salt[64];
    size_t salt_len = b64_decode(salt_b64, salt, sizeof(salt));
    uint8_t salted[32];
    assert_int_equal(PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len,
                                       4096, md, (int)dlen, salted),
                     1);
    uint8_t client_key[32];
    uint8_t stored[32];
    uint8_t sig[32];
    unsigned len = 0;
    assert_non_null(HMAC(md, salted, (int)dlen, (const uint8_t *)"Client Key", 10, client_key,
                         &len));
    assert_int_equal(EVP_Digest(client_key, dlen, stored, NULL, md, NULL), 1);
    assert_non_null(HMAC(md, stored, (int)dlen, (const uint8_t *)auth_message,
                         strlen(auth_message), sig, &len));
    uint8_t proof[32];
    for (size_t i = 0; i < dlen; i++) {
        proof[i] = client_key[i] ^ sig[i];
    }
    sasl_wbuf w;
    sasl_wbuf_init(&w, (uint8_t *)proof_b64_out, cap - 1);
    sasl_wbuf_b64(&w, proof, dlen);
    assert_false(w.overflow);
    proof_b64_out[w.len] = '\0';
}

static void test_scram_client(void **state)
{
    (void)state;
    const struct {
        sasl_mech_id id;
        uint32_t options;
        const char *first;  /* client-first-message */
        const char *cbind;  /* c= value */
        const char *authcid, *authzid;
    } runs[] = {
        {SASL_MECH_SCRAM_SHA256, 0, "y,,n=user,r=abc", "eSws", "user", ""},
        {SASL_MECH_SCRAM_SHA256, 0, "n,a=user,n=user,r=abc", "bixhPXVzZXIs", "user", "user"},
        {SASL_MECH_SCRAM_SHA1, SASL_OPT_ALLOW_AUTHZID, "n,a=ad=2Cmin,n=u=3Dser,r=abc,x=ext",
         "bixhPWFkPTJDbWluLA==", "u=ser", "ad,min"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(runs); i++) {
        static const uint8_t random[4] = {0, 1, 2, 3};
        sasl_params params = {.options = runs[i].options};
        sasl_mech m;
        sasl_out out;
        sasl_mech_init(&m, runs[i].id, &params, random, sizeof(random));
        assert_int_equal(step_copy(&m, runs[i].first, strlen(runs[i].first), &out),
                         SASL_NEED_CREDENTIALS);
        bool sha1 = runs[i].id == SASL_MECH_SCRAM_SHA1;
        sasl_cred_kind kind = sha1 ? SASL_CRED_SCRAM_SHA1 : SASL_CRED_SCRAM_SHA256;
        const char *salt_b64 = "c2FsdHNhbHQ=";
        uint8_t salt[16];
        size_t salt_len = b64_decode(salt_b64, salt, sizeof(salt));
        sasl_scram_cred cred;
        sasl_scram_derive(kind, SL_SLICE_LIT("pa ss"), salt, salt_len, 4096, &cred);
        assert_int_equal(sasl_mech_set_credentials(&m, kind, &cred, sizeof(cred), &out),
                         SASL_CHALLENGE);
        expect_str("server-first", out.data, "r=abc!\"#$,s=c2FsdHNhbHQ=,i=4096");

        char final[256];
        char auth_message[512];
        const char *bare = strchr(strchr(runs[i].first, ',') + 1, ',') + 1; /* past gs2 */
        snprintf(final, sizeof(final), "c=%s,r=abc!\"#$", runs[i].cbind);
        snprintf(auth_message, sizeof(auth_message), "%s,r=abc!\"#$,s=c2FsdHNhbHQ=,i=4096,%s",
                 bare, final);
        char proof[64];
        scram_client_proof(sha1 ? "SHA1" : "SHA256", "pa ss", salt_b64, auth_message, proof,
                           sizeof(proof));
        strcat(final, ",p=");
        strcat(final, proof);
        sasl_status st = step_copy(&m, final, strlen(final), &out);
        if (st != SASL_OK) {
            fail_msg("scram client %zu (%s): got %s/%s", i, runs[i].first, status_name(st),
                     reason_name(out.reason));
        }
        expect_str("scram authcid", out.authcid, runs[i].authcid);
        expect_str("scram authzid", out.authzid, runs[i].authzid);
        assert_true(out.data.len > 2 && memcmp(out.data.ptr, "v=", 2) == 0);
        sasl_mech_clear(&m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),         cmocka_unit_test(test_dovecot_schemes),
        cmocka_unit_test(test_base64),        cmocka_unit_test(test_scripts),
        cmocka_unit_test(test_limits),        cmocka_unit_test(test_ntlm),
        cmocka_unit_test(test_ntlm_malformed), cmocka_unit_test(test_ntlm_unicode_user),
        cmocka_unit_test(test_scram_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
