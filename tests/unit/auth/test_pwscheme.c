/* tests/unit/auth/test_pwscheme.c: Dovecot password schemes against fixed
 * vectors made independently of sluice: `doveadm pw` output (Dovecot 2.3.19,
 * libsodium for argon2), `openssl dgst` / `openssl passwd`, the crypt(3)
 * samples Dovecot checks at start-up, the RFC 5802 / RFC 7677 SCRAM
 * exchanges, and Python's hashlib for the derived SCRAM keys. Then prefix,
 * encoding and default-scheme handling, malformed values, credentials, and
 * round trips through pw_hash. */
#include "auth/pwscheme.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define TEST_SECRET "secret"
#define TEST_WRONG "wrong-password"

/* ---- helpers ---- */

static void test_hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(out + 2 * i, 3, "%02x", p[i]);
    }
    out[2 * n] = '\0';
}

static size_t test_unb64(const char *b64, uint8_t *out)
{
    int n = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)strlen(b64));
    assert_true(n >= 0);
    size_t len = strlen(b64);
    size_t pad = (len > 0 && b64[len - 1] == '=') + (len > 1 && b64[len - 2] == '=');
    return (size_t)n - pad;
}

static pw_status test_verify_str(const char *stored, const char *def, const char *user,
                                 const char *pw)
{
    return pw_verify(stored, def, user, (const uint8_t *)pw, strlen(pw));
}

/* ---- pw_verify against fixed vectors ---- */

typedef struct verify_case {
    const char *stored;
    const char *default_scheme;
    const char *user;
    const char *password; /* NULL: "secret" */
    size_t password_len;  /* 0: strlen */
    pw_status want;
    const char *wrong; /* for want == PW_OK: a password that must not match; NULL: TEST_WRONG */
} verify_case;

static const verify_case verify_cases[] = {
    /* plaintext, names case-insensitive, encodings */
    {"{PLAIN}secret", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{CLEAR}secret", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{CLEARTEXT}secret", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{plain}secret", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{Plain.B64}c2VjcmV0", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{PLAIN.BASE64}c2VjcmV0", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{PLAIN.hex}736563726574", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{PLAIN}secret", NULL, NULL, "secre", 0, PW_MISMATCH, NULL},
    {"{PLAIN}secret", NULL, NULL, "secret\0x", 8, PW_MISMATCH, NULL},
    {"{PLAIN}", NULL, NULL, "", 0, PW_OK, "x"},
    {"{PLAIN-TRUNC}6-secret", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{PLAIN-TRUNC}3-sec", NULL, NULL, NULL, 0, PW_OK, "sex"},
    {"{PLAIN-TRUNC}3-sec", NULL, NULL, "se", 0, PW_MISMATCH, NULL},
    /* doveadm pw -s CRAM-MD5 / HMAC-MD5 -p secret */
    {"{CRAM-MD5}cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56", NULL, NULL, NULL,
     0, PW_OK, NULL},
    {"{hmac-md5}CD3BA7DEAAD6E5CA23448BA42E379747A9E0F7F1FBC00C8A81BBAAC395731B56", NULL, NULL, NULL,
     0, PW_OK, NULL},
    /* a 100-byte password: the HMAC key is MD5(password) */
    {"{CRAM-MD5}52197db948d0932512a61b183e7d05b04e94d60a3bb0d00f92d3df52a5d275ca", NULL, NULL,
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxx",
     0, PW_OK, NULL},
    {"{CRAM-MD5}00747cf2ffaf11c5ea4a64979c3901fc1d20dee13f480bb598f7d8575b23e61b", NULL, NULL, "",
     0, PW_OK, NULL},
    /* doveadm pw -s DIGEST-MD5 -u user@realm / -u user / -u a@b@realm */
    {"{DIGEST-MD5}fb6cb9e166c6c764ff2bdea12175a8aa", NULL, "user@realm", NULL, 0, PW_OK, NULL},
    {"{DIGEST-MD5}20b4b61d3f0126b9aac227a68dbe3e26", NULL, "user", NULL, 0, PW_OK, NULL},
    {"{DIGEST-MD5}32c0f60d5fe1e96d3ec46b4172363b72", NULL, "a@b@realm", NULL, 0, PW_OK, NULL},
    {"{DIGEST-MD5}fb6cb9e166c6c764ff2bdea12175a8aa", NULL, "user", NULL, 0, PW_MISMATCH, NULL},
    {"{DIGEST-MD5}fb6cb9e166c6c764ff2bdea12175a8aa", NULL, NULL, NULL, 0, PW_UNSUPPORTED, NULL},
    /* doveadm pw -s SCRAM-SHA-1 / SCRAM-SHA-256 -p secret; RFC 5802 / 7677 ("pencil") */
    {"{SCRAM-SHA-1}4096,HK+OUYIdj9MbaHmplb9E8A==,jJsLLoqgtQcEvHi3gAQqeFj3OHE=,"
     "4YdXWYVRRfD7tIGUoECJV2ijN2k=",
     NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{SCRAM-SHA-256}4096,ZSxHTwb6YdymIyQwlJS6mw==,Ruwyux1/ikEZCwPdm02crDegS9Rw6+sopb6MRbeX2Mk=,"
     "zgU1qPFNAwrk/6fDzMXYCRXEXWSA0FEKAYhUteU3+iA=",
     NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{SCRAM-SHA-1}4096,QSXCR+Q6sek8bf92,6dlGYMOdZcOPutkcNY8U2g7vK9Y=,D+CSWLOshSulAsxiupA+qs2/fTE=",
     NULL, NULL, "pencil", 0, PW_OK, NULL},
    {"{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,"
     "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
     NULL, NULL, "pencil", 0, PW_OK, NULL},
    /* MD5 = MD5-CRYPT, or PLAIN-MD5 when not "$1$" (doveadm; openssl passwd -1) */
    {"{MD5}$1$4AHUwLPm$txQYQWSVVUmbycrVxhuP21", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{MD5}5ebe2294ecd0e0f08eab7690d2a6ee69", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{MD5-CRYPT}$1$t.WW2gky$.lrlZSUOkMk3FHRgfBc49/", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{MD5-CRYPT}$1$saltsalt$9xy1btjgzLYfb7hivXtC//", NULL, NULL, NULL, 0, PW_OK, NULL},
    /* SHA-crypt (doveadm; openssl passwd -5 / -6) */
    {"{SHA256-CRYPT}$5$uuN/p5dKSTDeTCgr$RUSBad3j3ttk7NGjlp2C44FKeH46kGaCmIMoqpuEjzD", NULL, NULL,
     NULL, 0, PW_OK, NULL},
    {"{SHA256-CRYPT}$5$saltsaltsaltsalt$X0ra9qlY7TJaGBDgorLevriQfwysW8fXnbybcO4mF4/", NULL, NULL,
     NULL, 0, PW_OK, NULL},
    {"{SHA512-CRYPT}$6$5dDGec48q6tUUCYf$9X9MrMtFmkIBndzYMcVkBKK1owyDiMfAY.dXDHLGPf4m.cB3CWq0QYWC"
     "TadzLEM0ZuMI3tkF6HP163LOEKU6S.",
     NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{SHA512-CRYPT}$6$saltsaltsaltsalt$ph0yGsyjzqdeFaon7.gJZo8eAG5/rj9/JdzOu1Rl7dKzBYg3xgvl7T2V"
     "Q2Rt81bc5AXkdA54r0p8QvC1omD6R1",
     NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{SHA512-CRYPT}$6$rounds=1000$abc$MqEcPZUYRGGcOeq7PhMpfjfu/F0HrVEI0OlZBijWvO8mSG77iNUDP5Mq"
     "FceKpJTBc8iITVtNyLiNTRNCxv6oh0",
     NULL, NULL, NULL, 0, PW_OK, NULL},
    /* bcrypt and DES (doveadm) */
    {"{BLF-CRYPT}$2y$05$jDLjjkiomMWeO/OrldqPjuWZU38Ju9fhovde9JALjgxSJL.9YcKyy", NULL, NULL, NULL, 0,
     PW_OK, NULL},
    {"{CRYPT}$2y$05$E/rK4bYFsz3RAcMu.905M.8.u55ChmKG6zsd9dn4TJRASZmgOxVC.", NULL, NULL, NULL, 0,
     PW_OK, NULL},
    {"{DES-CRYPT}JKEjasbxn80.o", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{CRYPT}JKEjasbxn80.o", NULL, NULL, NULL, 0, PW_OK, NULL},
    /* the samples Dovecot checks its crypt() with (password-scheme-crypt.c) */
    {"{CRYPT}JBOZ0DgmtucwE", NULL, NULL, "08/15!test~4711", 0, PW_OK, NULL},
    {"{BLF-CRYPT}$2a$04$0123456789abcdefABCDE.N.drYX5yIAL1LkTaaZotW3yI0hQhZru", NULL, NULL,
     "08/15!test~4711", 0, PW_OK, NULL},
    {"{SHA256-CRYPT}$5$rounds=1000$0123456789abcdef$K/DksR0DT01hGc8g/kt9McEgrbFMKi9qrb1jehe7hn4",
     NULL, NULL, "08/15!test~4711", 0, PW_OK, NULL},
    {"{SHA512-CRYPT}$6$rounds=1000$0123456789abcdef$ZIAd5WqfyLkpvsVCVUU1GrvqaZTqvhJoouxdSqJO71l9"
     "Ld3tVrfOatEjarhghvEYADkq//LpDnTeO90tcbtHR1",
     NULL, NULL, "08/15!test~4711", 0, PW_OK, NULL},
    /* a NUL inside the password never matches a crypt value */
    {"{SHA512-CRYPT}$6$saltsaltsaltsalt$ph0yGsyjzqdeFaon7.gJZo8eAG5/rj9/JdzOu1Rl7dKzBYg3xgvl7T2V"
     "Q2Rt81bc5AXkdA54r0p8QvC1omD6R1",
     NULL, NULL, "secret\0", 7, PW_MISMATCH, NULL},
    /* argon2 from doveadm (libsodium) */
    {"{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$eIkeaFHXy8k+nPMPz3v62A$vXgltXKO3vbnoz5+TaUciNh+YaCp+e"
     "JZ95iiLuzpXgY",
     NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$/kfEUw5jk3+NAuE2jqweAA$n0mwDDAicCpG0XElz9MZWSLnt8/v"
     "bifMuWWN/Pv72Qg",
     NULL, NULL, NULL, 0, PW_OK, NULL},
    /* digests (openssl dgst; doveadm for .HEX); hex is guessed by length */
    {"{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{SHA1}5en6G6MezRroT3XKqkdPOmY/BfQ=", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{SHA}e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{SHA.HEX}e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{SHA256.HEX}2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b", NULL, NULL,
     NULL, 0, PW_OK, NULL},
    {"{SHA512}vSsar3708Jvp9Szi2NWZZ02Bqp1qRCFpbcTZPdBhnWgs5WtNZKnvCXdhztmeD2cmW192CF5bDufKRpayrW/"
     "isg==",
     NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{PLAIN-MD5}5ebe2294ecd0e0f08eab7690d2a6ee69", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{PLAIN-MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{LDAP-MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{LDAP-MD5}5ebe2294ecd0e0f08eab7690d2a6ee69", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{PLAIN-MD4}67d3dafef63ff00603aeef3769cfbf0d", NULL, NULL, NULL, 0, PW_OK, NULL},
    /* salted digests: doveadm, and openssl with the salt "NaCl4u!x" */
    {"{SSHA}7JDR3ASBr+2JabRMuevbP/yHSDf7h3d5", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{SSHA.HEX}4cb670cec9762728eceacaf5c65ed3274877547f9b2809d8", NULL, NULL, NULL, 0, PW_OK,
     NULL},
    {"{SSHA256}qlzGBeIA+1J6JvgD+gPUpvPUUXxkBtZDG5H5CfWu6trGeagy", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{SSHA512}56CJ6d1zEZdeRTCmrTFIB07QlVcHdynW2NJi9+HZVYmFqb+L3tyAfK6sb3WwdYsv+2LqsW3GlfIiwAH80hom"
     "/tU1jZc=",
     NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{SMD5}iBSgkSA/9/gRalm/7SnzjRWmQRE=", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{SSHA}sOGoTHhsp1NINkFUzoAc4ikoBl9OYUNsNHUheA==", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{SSHA256}VhBEEvxArTMmoHioT5n7rZB1AeWysERWgB1R/Rnj7H1OYUNsNHUheA==", NULL, NULL, NULL, 0,
     PW_OK, NULL},
    {"{SSHA512}4YYYbsfnIlSArx4R36fleSIZeqVHb4n7gqhx9oF8yb/k4S8usML+CMZ2Q5wOWpzmB8uI0KNqNmlmNebqHJr7"
     "iE5hQ2w0dSF4",
     NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{SMD5}VJOZ2pg+rPyk1UN9UtuH9E5hQ2w0dSF4", NULL, NULL, NULL, 0, PW_OK, NULL},
    /* NT hash (well-known "password"; iconv + openssl md4 for the rest) */
    {"{NTLM}8846f7eaee8fb117ad06bdd830b7586c", NULL, NULL, "password", 0, PW_OK, NULL},
    {"{NTLM}878d8014606cda29677a44efa1353fc7", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"{NTLM}343b5f56098bef0de4739d82d102f3ca", NULL, NULL,
     "p\xc3\xa4sssw\xc3\xb6rd\xe2\x82\xac\xf0\x9f\x98\x80", 0, PW_MISMATCH, NULL},
    {"{NTLM}343b5f56098bef0de4739d82d102f3ca", NULL, NULL,
     "p\xc3\xa4ssw\xc3\xb6rd\xe2\x82\xac\xf0\x9f\x98\x80", 0, PW_OK, NULL},
    {"{NTLM}878d8014606cda29677a44efa1353fc7", NULL, NULL, "\xff\xfe", 0, PW_MISMATCH, NULL},
    /* PBKDF2 (doveadm; Python hashlib agrees) */
    {"{PBKDF2}$1$OHHzP7gSBsWkndEx$5000$f4a6811ff81ff31da8aeaaf1df6814c283a2361c", NULL, NULL, NULL,
     0, PW_OK, NULL},
    /* default schemes for values without a prefix */
    {"secret", "PLAIN", NULL, NULL, 0, PW_OK, NULL},
    {"c2VjcmV0", "plain.b64", NULL, NULL, 0, PW_OK, NULL},
    {"5ebe2294ecd0e0f08eab7690d2a6ee69", NULL, NULL, NULL, 0, PW_OK, NULL},
    {"5ebe2294ecd0e0f08eab7690d2a6ee69", "MD5", NULL, NULL, 0, PW_OK, NULL},
    {"$1$t.WW2gky$.lrlZSUOkMk3FHRgfBc49/", "MD5", NULL, NULL, 0, PW_OK, NULL},
    {"$1$t.WW2gky$.lrlZSUOkMk3FHRgfBc49/", "PLAIN", NULL, NULL, 0, PW_OK, NULL},
    {"$1$t.WW2gky$.lrlZSUOkMk3FHRgfBc49/$ignored", "SHA", NULL, NULL, 0, PW_OK, NULL},
    {"$6$saltsaltsaltsalt$ph0yGsyjzqdeFaon7.gJZo8eAG5/rj9/JdzOu1Rl7dKzBYg3xgvl7T2VQ2Rt81bc5AXkdA5"
     "4r0p8QvC1omD6R1",
     "CRYPT", NULL, NULL, 0, PW_OK, NULL},
    {"$2y$05$jDLjjkiomMWeO/OrldqPjuWZU38Ju9fhovde9JALjgxSJL.9YcKyy", "BLF-CRYPT", NULL, NULL, 0,
     PW_OK, NULL},
    {"JKEjasbxn80.o", "crypt", NULL, NULL, 0, PW_OK, NULL},
    {"5en6G6MezRroT3XKqkdPOmY/BfQ=", "SHA", NULL, NULL, 0, PW_OK, NULL},
    {"{SHA", "PLAIN", NULL, "{SHA", 0, PW_OK, NULL}, /* no closing brace: not a prefix */
    {"secret", "NOPE", NULL, NULL, 0, PW_UNSUPPORTED, NULL},
    /* unknown schemes and encodings */
    {"{FOO}secret", NULL, NULL, NULL, 0, PW_UNSUPPORTED, NULL},
    {"{}secret", NULL, NULL, NULL, 0, PW_UNSUPPORTED, NULL},
    {"{SHA.XYZ}5en6G6MezRroT3XKqkdPOmY/BfQ=", NULL, NULL, NULL, 0, PW_UNSUPPORTED, NULL},
    {"{SHA.}5en6G6MezRroT3XKqkdPOmY/BfQ=", NULL, NULL, NULL, 0, PW_UNSUPPORTED, NULL},
    {"{OTP}md5 99 seed 0123456789abcdef", NULL, NULL, NULL, 0, PW_UNSUPPORTED, NULL},
    {"{SHA-CRYPT}x", NULL, NULL, NULL, 0, PW_UNSUPPORTED, NULL},
    /* malformed stored values */
    {"{SHA}!!!!", NULL, NULL, NULL, 0, PW_BAD_STORED, NULL},
    {"{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ", NULL, NULL, NULL, 0, PW_BAD_STORED, NULL}, /* unpadded */
    {"{SHA}5en6G6MezRroT3XKq=dPOmY/BfQ=", NULL, NULL, NULL, 0, PW_BAD_STORED, NULL},
    {"{SHA}c2VjcmV0", NULL, NULL, NULL, 0, PW_BAD_STORED, NULL}, /* 6 bytes, not 20 */
    {"{SHA}=", NULL, NULL, NULL, 0, PW_BAD_STORED, NULL},
    {"{SHA}====", NULL, NULL, NULL, 0, PW_BAD_STORED, NULL},
    {"{PLAIN.B64}=", NULL, NULL, NULL, 0, PW_BAD_STORED, NULL},
    {"{PLAIN.B64}", NULL, NULL, "", 0, PW_OK, "x"},
    {"{SHA.HEX}5en6G6MezRroT3XKqkdPOmY/BfQ=", NULL, NULL, NULL, 0, PW_BAD_STORED, NULL},
    {"{SHA256.B64}2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b", NULL, NULL,
     NULL, 0, PW_BAD_STORED, NULL},
    {"{CRAM-MD5}zd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56", NULL, NULL, NULL,
     0, PW_BAD_STORED, NULL},
    {"{CRAM-MD5}cd3ba7de", NULL, NULL, NULL, 0, PW_BAD_STORED, NULL},
    {"{DIGEST-MD5}fb6cb9e166c6c764ff2bdea12175a8", NULL, "user@realm", NULL, 0, PW_BAD_STORED,
     NULL},
    {"{PLAIN.HEX}7365637", NULL, NULL, NULL, 0, PW_BAD_STORED, NULL},
    {"{SSHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", NULL, NULL, NULL, 0, PW_BAD_STORED, NULL}, /* no salt */
    {"{SMD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==", NULL, NULL, NULL, 0, PW_BAD_STORED, NULL},
    {"{MD5}not-md5", NULL, NULL, NULL, 0, PW_BAD_STORED, NULL},
    {"{SCRAM-SHA-1}1000,HK+OUYIdj9MbaHmplb9E8A==,jJsLLoqgtQcEvHi3gAQqeFj3OHE=,"
     "4YdXWYVRRfD7tIGUoECJV2ijN2k=",
     NULL, NULL, NULL, 0, PW_BAD_STORED, NULL},
    {"{SCRAM-SHA-1}4096,HK+OUYIdj9MbaHmplb9E8A==,jJsLLoqgtQcEvHi3gAQqeFj3OHE=", NULL, NULL, NULL, 0,
     PW_BAD_STORED, NULL},
    {"{SCRAM-SHA-1}4096,HK+OUYIdj9MbaHmplb9E8A==,jJsLLoqgtQcEvHi3gAQqeFj3OHE=,"
     "4YdXWYVRRfD7tIGUoECJV2ijN2k=,x",
     NULL, NULL, NULL, 0, PW_BAD_STORED, NULL},
    {"{SCRAM-SHA-1}4x96,HK+OUYIdj9MbaHmplb9E8A==,jJsLLoqgtQcEvHi3gAQqeFj3OHE=,"
     "4YdXWYVRRfD7tIGUoECJV2ijN2k=",
     NULL, NULL, NULL, 0, PW_BAD_STORED, NULL},
    {"{SCRAM-SHA-1}4096,,jJsLLoqgtQcEvHi3gAQqeFj3OHE=,4YdXWYVRRfD7tIGUoECJV2ijN2k=", NULL, NULL,
     NULL, 0, PW_BAD_STORED, NULL},
    {"{SCRAM-SHA-256}4096,HK+OUYIdj9MbaHmplb9E8A==,jJsLLoqgtQcEvHi3gAQqeFj3OHE=,"
     "4YdXWYVRRfD7tIGUoECJV2ijN2k=",
     NULL, NULL, NULL, 0, PW_BAD_STORED, NULL}, /* SHA-1 sized keys */
    {"{SHA512-CRYPT}", NULL, NULL, NULL, 0, PW_BAD_STORED, NULL},
    {"{CRYPT}*", NULL, NULL, NULL, 0, PW_BAD_STORED, NULL},
    {"{CRYPT}$9$nonsense", NULL, NULL, NULL, 0, PW_BAD_STORED, NULL},
    {"{ARGON2ID}$argon2x$v=19$m=65536,t=3,p=1$/kfEUw5jk3+NAuE2jqweAA$n0mwDDAicCpG0XElz9MZWSLnt8",
     NULL, NULL, NULL, 0, PW_BAD_STORED, NULL},
    {"{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$!!!", NULL, NULL, NULL, 0, PW_BAD_STORED, NULL},
    {"{PBKDF2}$1$OHHzP7gSBsWkndEx$5000$f4a6811ff81f", NULL, NULL, NULL, 0, PW_BAD_STORED, NULL},
    {"{PBKDF2}$1$OHHzP7gSBsWkndEx$x$f4a6811ff81ff31da8aeaaf1df6814c283a2361c", NULL, NULL, NULL, 0,
     PW_BAD_STORED, NULL},
    {"{PBKDF2}$2$OHHzP7gSBsWkndEx$5000$f4a6811ff81ff31da8aeaaf1df6814c283a2361c", NULL, NULL, NULL,
     0, PW_BAD_STORED, NULL},
    {"{PLAIN-TRUNC}secret", NULL, NULL, NULL, 0, PW_BAD_STORED, NULL},
    {"{NTLM}878d8014606cda29", NULL, NULL, NULL, 0, PW_BAD_STORED, NULL},
};

static void test_verify_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(verify_cases) / sizeof(verify_cases[0]); i++) {
        const verify_case *c = &verify_cases[i];
        const char *pw = c->password != NULL ? c->password : TEST_SECRET;
        size_t pw_len = c->password_len != 0 ? c->password_len : strlen(pw);
        pw_status got =
            pw_verify(c->stored, c->default_scheme, c->user, (const uint8_t *)pw, pw_len);
        if (got != c->want) {
            fail_msg("case %zu: pw_verify(%s, default %s, user %s): got %s, want %s", i, c->stored,
                     c->default_scheme ? c->default_scheme : "NULL", c->user ? c->user : "NULL",
                     pw_status_name(got), pw_status_name(c->want));
        }
        if (c->want != PW_OK) {
            continue;
        }
        const char *wrong = c->wrong != NULL ? c->wrong : TEST_WRONG;
        got = test_verify_str(c->stored, c->default_scheme, c->user, wrong);
        if (got != PW_MISMATCH) {
            fail_msg("case %zu: pw_verify(%s) with a wrong password: got %s, want mismatch", i,
                     c->stored, pw_status_name(got));
        }
    }
}

static void test_verify_limits(void **state)
{
    (void)state;
    /* a stored value longer than PW_STORED_BYTES_MAX */
    char *big = malloc(PW_STORED_BYTES_MAX + 16);
    assert_non_null(big);
    memcpy(big, "{PLAIN}", 7);
    memset(big + 7, 'a', PW_STORED_BYTES_MAX);
    big[PW_STORED_BYTES_MAX + 7] = '\0';
    assert_int_equal(test_verify_str(big, NULL, NULL, "a"), PW_BAD_STORED);
    /* exactly at the limit is fine */
    big[PW_STORED_BYTES_MAX] = '\0';
    uint8_t *pw = (uint8_t *)big + 7;
    assert_int_equal(pw_verify(big, NULL, NULL, pw, PW_STORED_BYTES_MAX - 7), PW_OK);
    free(big);
    /* a password longer than PW_PLAIN_BYTES_MAX never matches, even a digest */
    uint8_t *long_pw = calloc(1, PW_PLAIN_BYTES_MAX + 1);
    assert_non_null(long_pw);
    assert_int_equal(
        pw_verify("{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", NULL, NULL, long_pw, PW_PLAIN_BYTES_MAX + 1),
        PW_MISMATCH);
    free(long_pw);
    /* empty password, NULL pointer */
    assert_int_equal(pw_verify("{PLAIN}", NULL, NULL, NULL, 0), PW_OK);
    assert_int_equal(pw_verify("{PLAIN}x", NULL, NULL, NULL, 0), PW_MISMATCH);
}

/* ---- pw_is_slow ---- */

typedef struct slow_case {
    const char *stored;
    const char *default_scheme;
    bool want;
} slow_case;

static const slow_case slow_cases[] = {
    {"{PLAIN}secret", NULL, false},
    {"{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", NULL, false},
    {"{SSHA512}x", NULL, false},
    {"{CRAM-MD5}x", NULL, false},
    {"{NTLM}x", NULL, false},
    {"{MD5}5ebe2294ecd0e0f08eab7690d2a6ee69", NULL, false},
    {"{MD5}$1$4AHUwLPm$txQYQWSVVUmbycrVxhuP21", NULL, true},
    {"$1$t.WW2gky$.lrlZSUOkMk3FHRgfBc49/", "PLAIN", true},
    {"5ebe2294ecd0e0f08eab7690d2a6ee69", NULL, false},
    {"$6$x$y", "CRYPT", true},
    {"{SHA512-CRYPT}$6$x$y", NULL, true},
    {"{sha256-crypt}$5$x$y", NULL, true},
    {"{BLF-CRYPT}$2y$05$x", NULL, true},
    {"{DES-CRYPT}JKEjasbxn80.o", NULL, true},
    {"{ARGON2I}$argon2i$", NULL, true},
    {"{ARGON2ID}$argon2id$", NULL, true},
    {"{SCRAM-SHA-256}4096,a,b,c", NULL, true},
    {"{PBKDF2}$1$a$5000$b", NULL, true},
    {"{FOO}x", NULL, false},
    {"x", "NOPE", false},
};

static void test_is_slow_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(slow_cases) / sizeof(slow_cases[0]); i++) {
        const slow_case *c = &slow_cases[i];
        bool got = pw_is_slow(c->stored, c->default_scheme);
        if (got != c->want) {
            fail_msg("case %zu: pw_is_slow(%s): got %d, want %d", i, c->stored, got, c->want);
        }
    }
}

/* ---- pw_credentials ---- */

#define TEST_SCRAM_SECRET "test-secret"
#define TEST_SCRAM_USER "user@example.test"

typedef struct cred_case {
    const char *stored;
    const char *default_scheme;
    pw_cred_kind kind;
    const char *user;
    const char *realm;
    pw_status want;
    const char *want_hex; /* CRAM/DIGEST/NTLM bytes; NULL for SCRAM or a failure */
} cred_case;

#define CRAM_SECRET "cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56"

static const cred_case cred_cases[] = {
    /* from plaintext: every kind */
    {"{PLAIN}secret", NULL, PW_CRED_CRAM_MD5, "u", NULL, PW_OK, CRAM_SECRET},
    {"{PLAIN.B64}c2VjcmV0", NULL, PW_CRED_CRAM_MD5, "u", NULL, PW_OK, CRAM_SECRET},
    {"secret", "cleartext", PW_CRED_CRAM_MD5, "u", NULL, PW_OK, CRAM_SECRET},
    {"{PLAIN}secret", NULL, PW_CRED_DIGEST_MD5, "user", "realm", PW_OK,
     "fb6cb9e166c6c764ff2bdea12175a8aa"},
    {"{PLAIN}secret", NULL, PW_CRED_DIGEST_MD5, "user", NULL, PW_OK,
     "20b4b61d3f0126b9aac227a68dbe3e26"},
    {"{PLAIN}secret", NULL, PW_CRED_NTLM, "u", NULL, PW_OK, "878d8014606cda29677a44efa1353fc7"},
    {"{PLAIN}\xff\xfe", NULL, PW_CRED_NTLM, "u", NULL, PW_UNSUPPORTED, NULL},
    {"{PLAIN}secret", NULL, PW_CRED_SCRAM_SHA1, TEST_SCRAM_USER, NULL, PW_OK, NULL},
    {"{PLAIN}secret", NULL, PW_CRED_SCRAM_SHA256, TEST_SCRAM_USER, NULL, PW_OK, NULL},
    /* stored credentials: only their own kind */
    {"{CRAM-MD5}" CRAM_SECRET, NULL, PW_CRED_CRAM_MD5, "u", NULL, PW_OK, CRAM_SECRET},
    {"{HMAC-MD5}" CRAM_SECRET, NULL, PW_CRED_CRAM_MD5, "u", NULL, PW_OK, CRAM_SECRET},
    {"{CRAM-MD5}" CRAM_SECRET, NULL, PW_CRED_DIGEST_MD5, "u", NULL, PW_UNSUPPORTED, NULL},
    {"{CRAM-MD5}" CRAM_SECRET, NULL, PW_CRED_SCRAM_SHA256, "u", NULL, PW_UNSUPPORTED, NULL},
    {"{CRAM-MD5}cd3b", NULL, PW_CRED_CRAM_MD5, "u", NULL, PW_BAD_STORED, NULL},
    {"{DIGEST-MD5}fb6cb9e166c6c764ff2bdea12175a8aa", NULL, PW_CRED_DIGEST_MD5, "user", "realm",
     PW_OK, "fb6cb9e166c6c764ff2bdea12175a8aa"},
    {"{DIGEST-MD5}fb6cb9e166c6c764ff2bdea12175a8aa", NULL, PW_CRED_CRAM_MD5, "user", NULL,
     PW_UNSUPPORTED, NULL},
    {"{NTLM}878d8014606cda29677a44efa1353fc7", NULL, PW_CRED_NTLM, "u", NULL, PW_OK,
     "878d8014606cda29677a44efa1353fc7"},
    {"{NTLM}878d8014606cda29677a44efa1353fc7", NULL, PW_CRED_CRAM_MD5, "u", NULL, PW_UNSUPPORTED,
     NULL},
    {"{SCRAM-SHA-1}4096,QSXCR+Q6sek8bf92,6dlGYMOdZcOPutkcNY8U2g7vK9Y=,D+CSWLOshSulAsxiupA+qs2/fTE=",
     NULL, PW_CRED_SCRAM_SHA256, "u", NULL, PW_UNSUPPORTED, NULL},
    {"{SCRAM-SHA-1}4096,QSXCR+Q6sek8bf92,6dlGYMOdZcOPutkcNY8U2g7vK9Y=", NULL, PW_CRED_SCRAM_SHA1,
     "u", NULL, PW_BAD_STORED, NULL},
    /* hashes give nothing */
    {"{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", NULL, PW_CRED_CRAM_MD5, "u", NULL, PW_UNSUPPORTED, NULL},
    {"{SHA512-CRYPT}$6$x$y", NULL, PW_CRED_SCRAM_SHA1, "u", NULL, PW_UNSUPPORTED, NULL},
    {"{MD5}5ebe2294ecd0e0f08eab7690d2a6ee69", NULL, PW_CRED_NTLM, "u", NULL, PW_UNSUPPORTED, NULL},
    {"5ebe2294ecd0e0f08eab7690d2a6ee69", NULL, PW_CRED_CRAM_MD5, "u", NULL, PW_UNSUPPORTED, NULL},
    {"{PLAIN-TRUNC}6-secret", NULL, PW_CRED_CRAM_MD5, "u", NULL, PW_UNSUPPORTED, NULL},
    {"{FOO}x", NULL, PW_CRED_CRAM_MD5, "u", NULL, PW_UNSUPPORTED, NULL},
};

static void test_credentials_table(void **state)
{
    (void)state;
    pw_scram_secret_set((const uint8_t *)TEST_SCRAM_SECRET, strlen(TEST_SCRAM_SECRET));
    for (size_t i = 0; i < sizeof(cred_cases) / sizeof(cred_cases[0]); i++) {
        const cred_case *c = &cred_cases[i];
        uint8_t cred[PW_CRED_BYTES_MAX];
        size_t len = 99;
        pw_status got = pw_credentials(c->stored, c->default_scheme, c->kind, c->user, c->realm,
                                       cred, sizeof(cred), &len);
        if (got != c->want) {
            fail_msg("case %zu: pw_credentials(%s, kind %d): got %s, want %s", i, c->stored,
                     (int)c->kind, pw_status_name(got), pw_status_name(c->want));
        }
        if (got != PW_OK) {
            assert_int_equal(len, 0);
            continue;
        }
        if (c->want_hex != NULL) {
            char hex[2 * PW_CRED_BYTES_MAX + 1];
            test_hex(cred, len, hex);
            if (strcmp(hex, c->want_hex) != 0) {
                fail_msg("case %zu: %s kind %d: got %s, want %s", i, c->stored, (int)c->kind, hex,
                         c->want_hex);
            }
        } else {
            pw_scram sc;
            assert_int_equal(len, sizeof(pw_scram));
            assert_true(pw_scram_unpack(cred, len, &sc));
        }
    }
}

/* SCRAM from plaintext: salt = HMAC-SHA256(SHA-256(secret), "sluice-scram-salt\0" user)[:16],
 * keys from PBKDF2 4096; expected values computed with Python's hashlib/hmac. */
static void test_credentials_scram_from_plain(void **state)
{
    (void)state;
    static const struct {
        pw_cred_kind kind;
        size_t key_len;
        const char *stored_hex;
        const char *server_hex;
    } want[] = {
        {PW_CRED_SCRAM_SHA1, 20, "4598b4f1b7911c6d331da1ffb2a1e5bd3f4aa9bf",
         "10d23c2ff92961a08a859cd48551b30dbb7f92d8"},
        {PW_CRED_SCRAM_SHA256, 32,
         "fe7f8416c3101a8529576885b3324503a1313af302062184b7d3b74ce548e51b",
         "12be5426a6b8fee6dcaa5ea75b17a2a8606025d0277b3ba0576723dbd08ab089"},
    };
    pw_scram_secret_set((const uint8_t *)TEST_SCRAM_SECRET, strlen(TEST_SCRAM_SECRET));
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        uint8_t cred[PW_CRED_BYTES_MAX];
        size_t len = 0;
        pw_scram sc;
        char hex[2 * PW_SCRAM_SALT_BYTES_MAX + 1];
        assert_true(pw_credentials_is_slow("{PLAIN}secret", NULL, want[i].kind));
        assert_int_equal(pw_credentials("{PLAIN}secret", NULL, want[i].kind, TEST_SCRAM_USER, NULL,
                                        cred, sizeof(cred), &len),
                         PW_OK);
        assert_true(pw_scram_unpack(cred, len, &sc));
        assert_int_equal(sc.iterations, PW_SCRAM_ITERATIONS);
        assert_int_equal(sc.salt_len, PW_SCRAM_SALT_BYTES);
        test_hex(sc.salt, sc.salt_len, hex);
        assert_string_equal(hex, "43da2fedad57fdd6fc0d800334cef738");
        test_hex(sc.stored_key, want[i].key_len, hex);
        assert_string_equal(hex, want[i].stored_hex);
        test_hex(sc.server_key, want[i].key_len, hex);
        assert_string_equal(hex, want[i].server_hex);
        /* the unused tail of a SHA-1 key is zero: the struct is handed out as bytes */
        for (size_t k = want[i].key_len; k < PW_SCRAM_KEY_BYTES_MAX; k++) {
            assert_int_equal(sc.stored_key[k], 0);
        }
        uint8_t salt[PW_SCRAM_SALT_BYTES];
        pw_scram_salt(TEST_SCRAM_USER, salt);
        assert_memory_equal(salt, sc.salt, sizeof(salt));
    }
    assert_false(pw_credentials_is_slow("{PLAIN}secret", NULL, PW_CRED_CRAM_MD5));
    assert_false(pw_credentials_is_slow("{SCRAM-SHA-1}4096,a,b,c", NULL, PW_CRED_SCRAM_SHA1));
}

static void test_scram_salt(void **state)
{
    (void)state;
    uint8_t a[PW_SCRAM_SALT_BYTES];
    uint8_t b[PW_SCRAM_SALT_BYTES];
    uint8_t c[PW_SCRAM_SALT_BYTES];
    pw_scram_secret_set((const uint8_t *)"one", 3);
    pw_scram_salt("alice@example.test", a);
    pw_scram_salt("alice@example.test", b);
    assert_memory_equal(a, b, sizeof(a));
    pw_scram_salt("bob@example.test", c);
    assert_memory_not_equal(a, c, sizeof(a));
    pw_scram_secret_set((const uint8_t *)"two", 3);
    pw_scram_salt("alice@example.test", c);
    assert_memory_not_equal(a, c, sizeof(a));
}

/* The server side of RFC 5802 / RFC 7677 with the credential pw_credentials
 * gives: the client's proof must check out against StoredKey, and the
 * ServerSignature made with ServerKey must be the RFC's. */
static void test_credentials_scram_rfc(void **state)
{
    (void)state;
    static const struct {
        const char *stored;
        pw_cred_kind kind;
        const char *auth_message;
        const char *proof_b64;
        const char *server_sig_b64;
    } rfc[] = {
        {"{SCRAM-SHA-1}4096,QSXCR+Q6sek8bf92,6dlGYMOdZcOPutkcNY8U2g7vK9Y=,"
         "D+CSWLOshSulAsxiupA+qs2/fTE=",
         PW_CRED_SCRAM_SHA1,
         "n=user,r=fyko+d2lbbFgONRv9qkxdawL,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
         "s=QSXCR+Q6sek8bf92,i=4096,c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j",
         "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "rmF9pqV8S7suAoZWja4dJRkFsKQ="},
        {"{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
         ","
         "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
         PW_CRED_SCRAM_SHA256,
         "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
         "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,"
         "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
         "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
         "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="},
    };
    for (size_t i = 0; i < sizeof(rfc) / sizeof(rfc[0]); i++) {
        const EVP_MD *md = rfc[i].kind == PW_CRED_SCRAM_SHA1 ? EVP_sha1() : EVP_sha256();
        size_t hlen = (size_t)EVP_MD_get_size(md);
        uint8_t cred[PW_CRED_BYTES_MAX];
        size_t len = 0;
        pw_scram sc;
        assert_int_equal(pw_credentials(rfc[i].stored, NULL, rfc[i].kind, "user", NULL, cred,
                                        sizeof(cred), &len),
                         PW_OK);
        assert_true(pw_scram_unpack(cred, len, &sc));
        assert_int_equal(sc.iterations, 4096);
        uint8_t proof[64];
        uint8_t sig[64];
        uint8_t client_key[64];
        uint8_t h[64];
        unsigned int n = 0;
        assert_int_equal(test_unb64(rfc[i].proof_b64, proof), hlen);
        const char *am = rfc[i].auth_message;
        assert_non_null(
            HMAC(md, sc.stored_key, (int)hlen, (const uint8_t *)am, strlen(am), sig, &n));
        for (size_t k = 0; k < hlen; k++) {
            client_key[k] = proof[k] ^ sig[k];
        }
        assert_int_equal(EVP_Digest(client_key, hlen, h, NULL, md, NULL), 1);
        assert_memory_equal(h, sc.stored_key, hlen);
        uint8_t want_sig[64];
        assert_int_equal(test_unb64(rfc[i].server_sig_b64, want_sig), hlen);
        assert_non_null(
            HMAC(md, sc.server_key, (int)hlen, (const uint8_t *)am, strlen(am), sig, &n));
        assert_memory_equal(sig, want_sig, hlen);
    }
}

/* ---- pw_can_serve ---- */

static void test_can_serve(void **state)
{
    (void)state;
    static const struct {
        const char *scheme;
        pw_cred_kind kind;
        bool want;
    } cases[] = {
        {"PLAIN", PW_CRED_CRAM_MD5, true},
        {"plain", PW_CRED_SCRAM_SHA256, true},
        {"CLEAR", PW_CRED_NTLM, true},
        {"CLEARTEXT", PW_CRED_DIGEST_MD5, true},
        {"PLAIN.B64", PW_CRED_SCRAM_SHA1, true},
        {"CRAM-MD5", PW_CRED_CRAM_MD5, true},
        {"HMAC-MD5", PW_CRED_CRAM_MD5, true},
        {"CRAM-MD5", PW_CRED_DIGEST_MD5, false},
        {"DIGEST-MD5", PW_CRED_DIGEST_MD5, true},
        {"DIGEST-MD5", PW_CRED_NTLM, false},
        {"SCRAM-SHA-1", PW_CRED_SCRAM_SHA1, true},
        {"SCRAM-SHA-1", PW_CRED_SCRAM_SHA256, false},
        {"SCRAM-SHA-256", PW_CRED_SCRAM_SHA256, true},
        {"NTLM", PW_CRED_NTLM, true},
        {"MD5", PW_CRED_CRAM_MD5, false},
        {"SHA512-CRYPT", PW_CRED_SCRAM_SHA256, false},
        {"SHA", PW_CRED_NTLM, false},
        {"PLAIN-TRUNC", PW_CRED_CRAM_MD5, false},
        {"NOPE", PW_CRED_CRAM_MD5, false},
        {"PLAIN.XYZ", PW_CRED_CRAM_MD5, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got = pw_can_serve(cases[i].scheme, cases[i].kind);
        if (got != cases[i].want) {
            fail_msg("pw_can_serve(%s, %d): got %d, want %d", cases[i].scheme, (int)cases[i].kind,
                     got, cases[i].want);
        }
    }
}

/* ---- pw_hash round trips ---- */

/* Schemes whose output depends only on the password (and user). */
static bool test_deterministic(const char *name)
{
    static const char *const names[] = {
        "PLAIN", "CLEAR",  "CLEARTEXT", "PLAIN-TRUNC", "CRAM-MD5", "HMAC-MD5",  "DIGEST-MD5", "SHA",
        "SHA1",  "SHA256", "SHA512",    "PLAIN-MD5",   "LDAP-MD5", "PLAIN-MD4", "NTLM",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(names[i], name) == 0) {
            return true;
        }
    }
    return false;
}

static void test_hash_roundtrip_all(void **state)
{
    (void)state;
    const char *pw = "p\xc3\xa4ss word";
    size_t n = 0;
    for (size_t i = 0; pw_scheme_name(i) != NULL; i++, n++) {
        const char *name = pw_scheme_name(i);
        char a[PW_HASH_BYTES_MAX];
        char b[PW_HASH_BYTES_MAX];
        char prefix[64];
        pw_status st = pw_hash(name, (const uint8_t *)pw, strlen(pw), "u@realm", a, sizeof(a));
        if (st != PW_OK) {
            fail_msg("pw_hash(%s): %s", name, pw_status_name(st));
        }
        snprintf(prefix, sizeof(prefix), "{%s}", name);
        if (strncmp(a, prefix, strlen(prefix)) != 0) {
            fail_msg("pw_hash(%s) = %s: want prefix %s", name, a, prefix);
        }
        if (test_verify_str(a, NULL, "u@realm", pw) != PW_OK ||
            test_verify_str(a, NULL, "u@realm", "pass word") != PW_MISMATCH) {
            fail_msg("pw_hash(%s) = %s does not verify", name, a);
        }
        assert_int_equal(pw_hash(name, (const uint8_t *)pw, strlen(pw), "u@realm", b, sizeof(b)),
                         PW_OK);
        if ((strcmp(a, b) == 0) != test_deterministic(name)) {
            fail_msg("pw_hash(%s) twice: %s and %s (a fresh salt each time is wanted for "
                     "salted schemes)",
                     name, a, b);
        }
    }
    assert_true(n >= 31);
}

static void test_hash_forms(void **state)
{
    (void)state;
    char out[PW_HASH_BYTES_MAX];
    const uint8_t *pw = (const uint8_t *)TEST_SECRET;
    size_t pw_len = strlen(TEST_SECRET);
    static const struct {
        const char *scheme;
        const char *want; /* exact output, or a prefix when want_prefix */
        bool want_prefix;
    } cases[] = {
        {"sha", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", false},
        {"SHA256.hex",
         "{SHA256.HEX}2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b", false},
        {"PLAIN-MD5.b64", "{PLAIN-MD5.B64}Xr4ilOzQ4PCOq3aQ0qbuaQ==", false},
        {"PLAIN.BASE64", "{PLAIN.BASE64}c2VjcmV0", false},
        {"PLAIN.HEX", "{PLAIN.HEX}736563726574", false},
        {"cram-md5", "{CRAM-MD5}" CRAM_SECRET, false},
        {"PLAIN-TRUNC", "{PLAIN-TRUNC}6-secret", false},
        {"NTLM", "{NTLM}878d8014606cda29677a44efa1353fc7", false},
        {"MD5", "{MD5}$1$", true},
        {"MD5-CRYPT", "{MD5-CRYPT}$1$", true},
        {"SHA256-CRYPT", "{SHA256-CRYPT}$5$", true},
        {"SHA512-CRYPT", "{SHA512-CRYPT}$6$", true},
        {"BLF-CRYPT", "{BLF-CRYPT}$2y$05$", true},
        {"CRYPT", "{CRYPT}$2y$05$", true},
        {"ARGON2I", "{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$", true},
        {"ARGON2ID", "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$", true},
        {"SCRAM-SHA-256", "{SCRAM-SHA-256}4096,", true},
        {"PBKDF2", "{PBKDF2}$1$", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(pw_hash(cases[i].scheme, pw, pw_len, NULL, out, sizeof(out)), PW_OK);
        bool ok = cases[i].want_prefix ? strncmp(out, cases[i].want, strlen(cases[i].want)) == 0
                                       : strcmp(out, cases[i].want) == 0;
        if (!ok) {
            fail_msg("pw_hash(%s): got %s, want %s%s", cases[i].scheme, out, cases[i].want,
                     cases[i].want_prefix ? "..." : "");
        }
        assert_int_equal(test_verify_str(out, NULL, NULL, TEST_SECRET), PW_OK);
    }
    /* DES: 13 characters; the SSHA family: digest ‖ 8-byte salt */
    assert_int_equal(pw_hash("DES-CRYPT", pw, pw_len, NULL, out, sizeof(out)), PW_OK);
    assert_int_equal(strlen(out), strlen("{DES-CRYPT}") + 13);
    assert_int_equal(pw_hash("SSHA256.HEX", pw, pw_len, NULL, out, sizeof(out)), PW_OK);
    assert_int_equal(strlen(out), strlen("{SSHA256.HEX}") + 2 * (32 + 8));
    assert_int_equal(test_verify_str(out, NULL, NULL, TEST_SECRET), PW_OK);
}

static void test_hash_refusals(void **state)
{
    (void)state;
    char out[PW_HASH_BYTES_MAX];
    const uint8_t *pw = (const uint8_t *)TEST_SECRET;
    uint8_t big[PW_HASH_PLAIN_BYTES_MAX + 1];
    memset(big, 'a', sizeof(big));
    assert_int_equal(pw_hash("NOPE", pw, 6, NULL, out, sizeof(out)), PW_UNSUPPORTED);
    assert_string_equal(out, "");
    assert_int_equal(pw_hash("SHA.XYZ", pw, 6, NULL, out, sizeof(out)), PW_UNSUPPORTED);
    assert_int_equal(pw_hash("", pw, 6, NULL, out, sizeof(out)), PW_UNSUPPORTED);
    assert_int_equal(pw_hash("DIGEST-MD5", pw, 6, NULL, out, sizeof(out)), PW_UNSUPPORTED);
    assert_int_equal(pw_hash("SHA", big, sizeof(big), NULL, out, sizeof(out)), PW_UNSUPPORTED);
    assert_int_equal(pw_hash("SHA", big, sizeof(big) - 1, NULL, out, sizeof(out)), PW_OK);
    assert_int_equal(pw_hash("SHA512-CRYPT", (const uint8_t *)"a\0b", 3, NULL, out, sizeof(out)),
                     PW_UNSUPPORTED);
    assert_int_equal(pw_hash("PLAIN", (const uint8_t *)"a\0b", 3, NULL, out, sizeof(out)),
                     PW_UNSUPPORTED);
    assert_int_equal(pw_hash("PLAIN.HEX", (const uint8_t *)"a\0b", 3, NULL, out, sizeof(out)),
                     PW_OK);
    assert_string_equal(out, "{PLAIN.HEX}610062");
    assert_int_equal(pw_hash("NTLM", (const uint8_t *)"\xc3", 1, NULL, out, sizeof(out)),
                     PW_UNSUPPORTED);
    /* DIGEST-MD5 with a user: Dovecot's split at the last '@' */
    assert_int_equal(pw_hash("DIGEST-MD5", pw, 6, "a@b@realm", out, sizeof(out)), PW_OK);
    assert_string_equal(out, "{DIGEST-MD5}32c0f60d5fe1e96d3ec46b4172363b72");
}

/* ---- names ---- */

static void test_scheme_names(void **state)
{
    (void)state;
    static const char *const required[] = {
        "PLAIN",       "CLEAR",         "CLEARTEXT", "CRAM-MD5", "HMAC-MD5",     "DIGEST-MD5",
        "SCRAM-SHA-1", "SCRAM-SHA-256", "MD5-CRYPT", "MD5",      "SHA256-CRYPT", "SHA512-CRYPT",
        "BLF-CRYPT",   "CRYPT",         "ARGON2I",   "ARGON2ID", "SHA",          "SHA1",
        "SHA256",      "SHA512",        "SSHA",      "SSHA256",  "SSHA512",      "SMD5",
        "PLAIN-MD5",   "LDAP-MD5",      "NTLM",
    };
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        bool listed = false;
        for (size_t k = 0; pw_scheme_name(k) != NULL; k++) {
            listed = listed || strcmp(pw_scheme_name(k), required[i]) == 0;
        }
        if (!listed || !pw_scheme_known(required[i])) {
            fail_msg("scheme %s: listed %d, known %d", required[i], listed,
                     pw_scheme_known(required[i]));
        }
    }
    assert_true(pw_scheme_known("ssha256.hex"));
    assert_true(pw_scheme_known("Plain.Base64"));
    assert_false(pw_scheme_known("PLAIN.b32"));
    assert_false(pw_scheme_known("OTP"));
    assert_false(pw_scheme_known(""));
    assert_string_equal(pw_status_name(PW_BAD_STORED), "bad stored value");
}

/* ---- concurrency: every call is reentrant ---- */

static void *test_thread(void *arg)
{
    const char *stored = arg;
    for (int i = 0; i < 8; i++) {
        if (test_verify_str(stored, NULL, NULL, TEST_SECRET) != PW_OK ||
            test_verify_str(stored, NULL, NULL, TEST_WRONG) != PW_MISMATCH) {
            return (void *)1;
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    static const char *const stored[] = {
        "{SHA512-CRYPT}$6$saltsaltsaltsalt$ph0yGsyjzqdeFaon7.gJZo8eAG5/rj9/JdzOu1Rl7dKzBYg3xgvl7T2V"
        "Q2Rt81bc5AXkdA54r0p8QvC1omD6R1",
        "{MD5-CRYPT}$1$saltsalt$9xy1btjgzLYfb7hivXtC//",
        "{SCRAM-SHA-256}4096,ZSxHTwb6YdymIyQwlJS6mw==,Ruwyux1/ikEZCwPdm02crDegS9Rw6+sopb6MRbeX2Mk=,"
        "zgU1qPFNAwrk/6fDzMXYCRXEXWSA0FEKAYhUteU3+iA=",
        "{CRAM-MD5}" CRAM_SECRET,
    };
    pthread_t t[4];
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, test_thread, (void *)stored[i]), 0);
    }
    for (size_t i = 0; i < 4; i++) {
        void *rc = NULL;
        assert_int_equal(pthread_join(t[i], &rc), 0);
        if (rc != NULL) {
            fail_msg("thread verifying %s got a wrong answer", stored[i]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify_table),
        cmocka_unit_test(test_verify_limits),
        cmocka_unit_test(test_is_slow_table),
        cmocka_unit_test(test_credentials_table),
        cmocka_unit_test(test_credentials_scram_from_plain),
        cmocka_unit_test(test_scram_salt),
        cmocka_unit_test(test_credentials_scram_rfc),
        cmocka_unit_test(test_can_serve),
        cmocka_unit_test(test_hash_roundtrip_all),
        cmocka_unit_test(test_hash_forms),
        cmocka_unit_test(test_hash_refusals),
        cmocka_unit_test(test_scheme_names),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
