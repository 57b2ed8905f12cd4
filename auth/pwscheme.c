/* auth/pwscheme.c: Dovecot-compatible password schemes (see pwscheme.h).
 *
 * Every primitive comes from a library: digests, HMAC, PBKDF2 and random
 * bytes from OpenSSL's libcrypto, crypt(3) hashes from libxcrypt, argon2 from
 * libargon2. What is here is Dovecot's storage format around them: the
 * "{SCHEME.ENC}" prefix, hex/base64 with Dovecot's guessing rule, salted
 * digests (digest ‖ salt), SCRAM's "iter,salt,StoredKey,ServerKey", and the
 * CRAM-MD5 context. Encoding and hex use core/base; base64 decoding stays on
 * OpenSSL's EVP_DecodeBlock behind a strict validator (Dovecot rejects
 * unpadded or stray characters) because, unlike core/base/base64.h, it takes
 * stored hashes whose padding leaves non-zero bits, which must keep verifying. */
#include "auth/pwscheme.h"

#include "core/alloc.h"
#include "core/base/base64.h"
#include "core/base/hex.h"

#include <argon2.h>
#include <crypt.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define PW_NAME_BYTES_MAX 32
#define PW_SALTED_SALT_BYTES 8 /* new SSHA/SSHA256/SSHA512/SMD5 values */
#define PW_PBKDF2_ROUNDS 5000
#define PW_PBKDF2_SALT_CHARS 16
#define PW_PBKDF2_KEY_BYTES 20
#define PW_ARGON2_SALT_BYTES 16
#define PW_ARGON2_HASH_BYTES 32
#define PW_MD5_BYTES 16
#define PW_DIGEST_BYTES_MAX 64

typedef enum pw_alg {
    PW_ALG_PLAIN,
    PW_ALG_PLAIN_TRUNC,
    PW_ALG_CRAM_MD5,
    PW_ALG_DIGEST_MD5,
    PW_ALG_SCRAM_SHA1,
    PW_ALG_SCRAM_SHA256,
    PW_ALG_MD5,   /* "$1$" is MD5-CRYPT, anything else PLAIN-MD5 */
    PW_ALG_CRYPT, /* whatever crypt(3) accepts */
    PW_ALG_ARGON2,
    PW_ALG_DIGEST, /* digest(password) */
    PW_ALG_SALTED, /* digest(password ‖ salt) ‖ salt */
    PW_ALG_NTLM,
    PW_ALG_PBKDF2,
} pw_alg;

typedef enum pw_enc {
    PW_ENC_NONE,
    PW_ENC_HEX,
    PW_ENC_B64,
} pw_enc;

typedef enum pw_md {
    PW_MD_NONE,
    PW_MD_MD4,
    PW_MD_MD5,
    PW_MD_SHA1,
    PW_MD_SHA256,
    PW_MD_SHA512,
} pw_md;

#define PW_F_SLOW 1u

typedef struct pw_scheme_def {
    const char *name;
    pw_alg alg;
    pw_enc enc;      /* default encoding */
    uint8_t raw_len; /* fixed decoded length, 0 = any */
    pw_md md;        /* digest for PW_ALG_DIGEST / PW_ALG_SALTED */
    unsigned flags;
    const char *gensalt; /* crypt_gensalt_rn prefix / argon2 variant for pw_hash */
} pw_scheme_def;

static const pw_scheme_def pw_schemes[] = {
    {"PLAIN", PW_ALG_PLAIN, PW_ENC_NONE, 0, PW_MD_NONE, 0, NULL},
    {"CLEAR", PW_ALG_PLAIN, PW_ENC_NONE, 0, PW_MD_NONE, 0, NULL},
    {"CLEARTEXT", PW_ALG_PLAIN, PW_ENC_NONE, 0, PW_MD_NONE, 0, NULL},
    {"PLAIN-TRUNC", PW_ALG_PLAIN_TRUNC, PW_ENC_NONE, 0, PW_MD_NONE, 0, NULL},
    {"CRAM-MD5", PW_ALG_CRAM_MD5, PW_ENC_HEX, PW_CRAM_MD5_BYTES, PW_MD_NONE, 0, NULL},
    {"HMAC-MD5", PW_ALG_CRAM_MD5, PW_ENC_HEX, PW_CRAM_MD5_BYTES, PW_MD_NONE, 0, NULL},
    {"DIGEST-MD5", PW_ALG_DIGEST_MD5, PW_ENC_HEX, PW_DIGEST_MD5_BYTES, PW_MD_NONE, 0, NULL},
    {"SCRAM-SHA-1", PW_ALG_SCRAM_SHA1, PW_ENC_NONE, 0, PW_MD_SHA1, PW_F_SLOW, NULL},
    {"SCRAM-SHA-256", PW_ALG_SCRAM_SHA256, PW_ENC_NONE, 0, PW_MD_SHA256, PW_F_SLOW, NULL},
    {"MD5", PW_ALG_MD5, PW_ENC_NONE, 0, PW_MD_NONE, 0, "$1$"},
    {"MD5-CRYPT", PW_ALG_CRYPT, PW_ENC_NONE, 0, PW_MD_NONE, PW_F_SLOW, "$1$"},
    {"SHA256-CRYPT", PW_ALG_CRYPT, PW_ENC_NONE, 0, PW_MD_NONE, PW_F_SLOW, "$5$"},
    {"SHA512-CRYPT", PW_ALG_CRYPT, PW_ENC_NONE, 0, PW_MD_NONE, PW_F_SLOW, "$6$"},
    {"BLF-CRYPT", PW_ALG_CRYPT, PW_ENC_NONE, 0, PW_MD_NONE, PW_F_SLOW, "$2y$"},
    {"CRYPT", PW_ALG_CRYPT, PW_ENC_NONE, 0, PW_MD_NONE, PW_F_SLOW, "$2y$"},
    {"DES-CRYPT", PW_ALG_CRYPT, PW_ENC_NONE, 0, PW_MD_NONE, PW_F_SLOW, ""},
    {"ARGON2I", PW_ALG_ARGON2, PW_ENC_NONE, 0, PW_MD_NONE, PW_F_SLOW, "i"},
    {"ARGON2ID", PW_ALG_ARGON2, PW_ENC_NONE, 0, PW_MD_NONE, PW_F_SLOW, "id"},
    {"SHA", PW_ALG_DIGEST, PW_ENC_B64, 20, PW_MD_SHA1, 0, NULL},
    {"SHA1", PW_ALG_DIGEST, PW_ENC_B64, 20, PW_MD_SHA1, 0, NULL},
    {"SHA256", PW_ALG_DIGEST, PW_ENC_B64, 32, PW_MD_SHA256, 0, NULL},
    {"SHA512", PW_ALG_DIGEST, PW_ENC_B64, 64, PW_MD_SHA512, 0, NULL},
    {"SSHA", PW_ALG_SALTED, PW_ENC_B64, 0, PW_MD_SHA1, 0, NULL},
    {"SSHA256", PW_ALG_SALTED, PW_ENC_B64, 0, PW_MD_SHA256, 0, NULL},
    {"SSHA512", PW_ALG_SALTED, PW_ENC_B64, 0, PW_MD_SHA512, 0, NULL},
    {"SMD5", PW_ALG_SALTED, PW_ENC_B64, 0, PW_MD_MD5, 0, NULL},
    {"PLAIN-MD5", PW_ALG_DIGEST, PW_ENC_HEX, 16, PW_MD_MD5, 0, NULL},
    {"LDAP-MD5", PW_ALG_DIGEST, PW_ENC_B64, 16, PW_MD_MD5, 0, NULL},
    {"PLAIN-MD4", PW_ALG_DIGEST, PW_ENC_HEX, 16, PW_MD_MD4, 0, NULL},
    {"NTLM", PW_ALG_NTLM, PW_ENC_HEX, PW_NTLM_BYTES, PW_MD_NONE, 0, NULL},
    {"PBKDF2", PW_ALG_PBKDF2, PW_ENC_NONE, 0, PW_MD_NONE, PW_F_SLOW, NULL},
};

/* A stored value split into scheme, encoding and body (a slice of stored). */
typedef struct pw_parsed {
    const pw_scheme_def *def;
    pw_enc enc;
    bool enc_explicit;
    const char *body;
    size_t body_len;
} pw_parsed;

/* Decodes one UTF-8 sequence at p: its length, or 0 if it is invalid
 * (truncated, overlong, a surrogate, or past U+10FFFF). */
static size_t pw_utf8_next(const uint8_t *p, size_t len, uint32_t *cp_out)
{
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t n = 0;
    uint32_t cp = 0;
    if (p[0] < 0x80) {
        *cp_out = p[0];
        return 1;
    } else if ((p[0] & 0xe0) == 0xc0) {
        n = 2;
        cp = p[0] & 0x1fu;
    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = p[0] & 0x0fu;
    } else if ((p[0] & 0xf8) == 0xf0) {
        n = 4;
        cp = p[0] & 0x07u;
    } else {
        return 0;
    }
    if (n > len) {
        return 0;
    }
    for (size_t k = 1; k < n; k++) {
        if ((p[k] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[k] & 0x3fu);
    }
    if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    *cp_out = cp;
    return n;
}

/* ---- the low-level MD4/MD5 API ----
 * OpenSSL 3 deprecates it, but it is the only way to read MD5's chaining
 * state (the CRAM-MD5 context), and its MD4 works without the legacy provider
 * that EVP's MD4 needs. Both are kept to this block. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <openssl/md4.h>
#include <openssl/md5.h>

static void pw_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* The state of an MD5 that has absorbed one 64-byte block of key ^ pad. */
static void pw_md5_pad_state(const uint8_t key[64], uint8_t pad, uint8_t state_out[16])
{
    uint8_t block[64];
    MD5_CTX c;
    for (size_t i = 0; i < sizeof(block); i++) {
        block[i] = key[i] ^ pad;
    }
    MD5_Init(&c);
    MD5_Update(&c, block, sizeof(block));
    pw_put_le32(state_out, c.A);
    pw_put_le32(state_out + 4, c.B);
    pw_put_le32(state_out + 8, c.C);
    pw_put_le32(state_out + 12, c.D);
    OPENSSL_cleanse(block, sizeof(block));
    OPENSSL_cleanse(&c, sizeof(c));
}

static void pw_cram_md5_context(const uint8_t *pw, size_t pw_len,
                                uint8_t ctx_out[PW_CRAM_MD5_BYTES])
{
    uint8_t key[64] = {0};
    if (pw_len > sizeof(key)) {
        MD5(pw, pw_len, key); /* HMAC: a key longer than the block is hashed */
    } else if (pw_len > 0) {
        memcpy(key, pw, pw_len);
    }
    pw_md5_pad_state(key, 0x5c, ctx_out);
    pw_md5_pad_state(key, 0x36, ctx_out + 16);
    OPENSSL_cleanse(key, sizeof(key));
}

static void pw_md4(const uint8_t *p, size_t n, uint8_t out[16])
{
    MD4(p, n, out);
}

/* NT hash: MD4 over UTF-16LE(password), fed one code unit at a time so no
 * buffer has to hold the converted password. False if not valid UTF-8. */
static bool pw_ntlm_hash(const uint8_t *pw, size_t pw_len, uint8_t out[PW_NTLM_BYTES])
{
    MD4_CTX c;
    bool ok = true;
    MD4_Init(&c);
    for (size_t i = 0; i < pw_len;) {
        uint32_t cp = 0;
        size_t n = pw_utf8_next(pw + i, pw_len - i, &cp);
        if (n == 0) {
            ok = false;
            break;
        }
        uint8_t u[4];
        size_t u_len = 2;
        if (cp >= 0x10000) {
            uint32_t hi = 0xd800 | ((cp - 0x10000) >> 10);
            uint32_t lo = 0xdc00 | ((cp - 0x10000) & 0x3ff);
            u[0] = (uint8_t)hi;
            u[1] = (uint8_t)(hi >> 8);
            u[2] = (uint8_t)lo;
            u[3] = (uint8_t)(lo >> 8);
            u_len = 4;
        } else {
            u[0] = (uint8_t)cp;
            u[1] = (uint8_t)(cp >> 8);
        }
        MD4_Update(&c, u, u_len);
        OPENSSL_cleanse(u, sizeof(u));
        i += n;
    }
    MD4_Final(out, &c);
    OPENSSL_cleanse(&c, sizeof(c));
    if (!ok) {
        OPENSSL_cleanse(out, PW_NTLM_BYTES);
    }
    return ok;
}
#pragma GCC diagnostic pop

/* ---- encodings ---- */

static bool pw_hex_decode(const char *s, size_t len, uint8_t *out, size_t out_max, size_t *len_out)
{
    ptrdiff_t n = sl_hex_decode(s, len, out, out_max);
    if (n < 0) {
        return false;
    }
    *len_out = (size_t)n;
    return true;
}

/* Writes 2n lower-case hex digits and a NUL. */
static void pw_hex_encode(const uint8_t *p, size_t n, char *out)
{
    sl_hex_encode(p, n, out);
    out[2 * n] = '\0';
}

static bool pw_b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* Strict: padded to a multiple of 4, '=' only as the last one or two. The
 * last quantum is decoded apart, since EVP_DecodeBlock writes the bytes that
 * padding stands for and out may be sized for the real length only. */
static bool pw_b64_decode(const char *s, size_t len, uint8_t *out, size_t out_max, size_t *len_out)
{
    if (len == 0) {
        *len_out = 0;
        return true;
    }
    if (len % 4 != 0 || len > INT_MAX) {
        return false;
    }
    size_t pad = s[len - 1] != '=' ? 0 : s[len - 2] == '=' ? 2 : 1;
    size_t n = len / 4 * 3 - pad;
    if (n > out_max) {
        return false;
    }
    for (size_t i = 0; i < len - pad; i++) {
        if (!pw_b64_char(s[i])) {
            return false;
        }
    }
    size_t head = len - 4;
    uint8_t last[3];
    if ((head > 0 &&
         EVP_DecodeBlock(out, (const unsigned char *)s, (int)head) != (int)(head / 4 * 3)) ||
        EVP_DecodeBlock(last, (const unsigned char *)s + head, 4) != 3) {
        return false;
    }
    memcpy(out + head / 4 * 3, last, 3 - pad);
    OPENSSL_cleanse(last, sizeof(last));
    *len_out = n;
    return true;
}

/* Writes the base64 of p and a NUL: 4 * ceil(n / 3) + 1 bytes. */
static void pw_b64_encode(const uint8_t *p, size_t n, char *out)
{
    ptrdiff_t len = sl_base64_encode(p, n, (uint8_t *)out, SL_BASE64_ENCODED_LEN(n));
    SL_ASSERT(len >= 0);
    out[len] = '\0';
}

static size_t pw_b64_len(size_t n)
{
    return SL_BASE64_ENCODED_LEN(n);
}

/* ---- scheme lookup and parsing ---- */

static const pw_scheme_def *pw_def_find(const char *name, size_t len)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(pw_schemes); i++) {
        if (strlen(pw_schemes[i].name) == len && strncasecmp(pw_schemes[i].name, name, len) == 0) {
            return &pw_schemes[i];
        }
    }
    return NULL;
}

/* "NAME" or "NAME.ENC": the definition, the encoding and whether it was given. */
static const pw_scheme_def *pw_lookup(const char *name, size_t len, pw_enc *enc_out,
                                      bool *explicit_out)
{
    const char *dot = memchr(name, '.', len);
    size_t base_len = dot != NULL ? (size_t)(dot - name) : len;
    const pw_scheme_def *def = pw_def_find(name, base_len);
    if (def == NULL) {
        return NULL;
    }
    *enc_out = def->enc;
    *explicit_out = false;
    if (dot == NULL) {
        return def;
    }
    const char *suf = dot + 1;
    size_t suf_len = len - base_len - 1;
    *explicit_out = true;
    if ((suf_len == 3 && strncasecmp(suf, "B64", 3) == 0) ||
        (suf_len == 6 && strncasecmp(suf, "BASE64", 6) == 0)) {
        *enc_out = PW_ENC_B64;
    } else if (suf_len == 3 && strncasecmp(suf, "HEX", 3) == 0) {
        *enc_out = PW_ENC_HEX;
    } else {
        return NULL; /* an unknown encoding is an unknown scheme, as in Dovecot */
    }
    return def;
}

static pw_status pw_parse(const char *stored, const char *default_scheme, pw_parsed *out)
{
    SL_ASSERT(stored != NULL);
    size_t len = strnlen(stored, PW_STORED_BYTES_MAX + 1);
    if (len > PW_STORED_BYTES_MAX) {
        return PW_BAD_STORED;
    }
    const char *name = NULL;
    size_t name_len = 0;
    const char *close = stored[0] == '{' ? memchr(stored, '}', len) : NULL;
    out->body = stored;
    out->body_len = len;
    if (close != NULL) {
        name = stored + 1;
        name_len = (size_t)(close - name);
        out->body = close + 1;
        out->body_len = len - name_len - 2;
    } else if (strncmp(stored, "$1$", 3) == 0 && strchr(stored + 3, '$') != NULL) {
        /* Dovecot reads an unprefixed "$1$salt$hash[$ignored]" as MD5-CRYPT
         * whatever the default scheme. */
        name = "MD5-CRYPT";
        name_len = strlen(name);
        const char *end = strchr(strchr(stored + 3, '$') + 1, '$');
        if (end != NULL) {
            out->body_len = (size_t)(end - stored);
        }
    } else {
        name = default_scheme != NULL ? default_scheme : "MD5";
        name_len = strlen(name);
    }
    if (name_len == 0 || name_len > PW_NAME_BYTES_MAX) {
        return PW_UNSUPPORTED;
    }
    out->def = pw_lookup(name, name_len, &out->enc, &out->enc_explicit);
    return out->def != NULL ? PW_OK : PW_UNSUPPORTED;
}

/* Decode a body with a scheme's encoding. A fixed-length scheme without an
 * explicit suffix guesses as Dovecot does: hex when the length is twice the
 * raw length (falling back to base64 if that fails), else base64. */
static pw_status pw_decode(const pw_scheme_def *def, pw_enc enc, bool enc_explicit,
                           const char *body, size_t body_len, uint8_t *raw_out, size_t raw_max,
                           size_t *raw_len_out)
{
    bool guessed = false;
    if (enc != PW_ENC_NONE && def->raw_len != 0 && !enc_explicit) {
        enc = body_len == (size_t)def->raw_len * 2 ? PW_ENC_HEX : PW_ENC_B64;
        guessed = true;
    }
    bool ok = false;
    switch (enc) {
    case PW_ENC_NONE:
        ok = body_len <= raw_max;
        if (ok) {
            memcpy(raw_out, body, body_len);
            *raw_len_out = body_len;
        }
        break;
    case PW_ENC_HEX:
        ok = pw_hex_decode(body, body_len, raw_out, raw_max, raw_len_out);
        if (!ok && guessed) {
            ok = pw_b64_decode(body, body_len, raw_out, raw_max, raw_len_out);
        }
        break;
    case PW_ENC_B64:
        ok = pw_b64_decode(body, body_len, raw_out, raw_max, raw_len_out);
        break;
    }
    if (!ok || (def->raw_len != 0 && *raw_len_out != def->raw_len)) {
        return PW_BAD_STORED;
    }
    return PW_OK;
}

/* ---- primitives around libcrypto ---- */

static const EVP_MD *pw_evp(pw_md md)
{
    switch (md) {
    case PW_MD_MD5:
        return EVP_md5();
    case PW_MD_SHA1:
        return EVP_sha1();
    case PW_MD_SHA256:
        return EVP_sha256();
    case PW_MD_SHA512:
        return EVP_sha512();
    case PW_MD_MD4:
    case PW_MD_NONE:
        break;
    }
    SL_ASSERT(!"no EVP digest for this scheme");
    return NULL;
}

static size_t pw_md_len(pw_md md)
{
    switch (md) {
    case PW_MD_MD4:
    case PW_MD_MD5:
        return 16;
    case PW_MD_SHA1:
        return 20;
    case PW_MD_SHA256:
        return 32;
    case PW_MD_SHA512:
        return 64;
    case PW_MD_NONE:
        break;
    }
    SL_ASSERT(!"digest length of no digest");
    return 0;
}

/* digest(a ‖ b) into out (pw_md_len(md) bytes). */
static bool pw_digest2(pw_md md, const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len,
                       uint8_t *out)
{
    if (md == PW_MD_MD4) {
        SL_ASSERT(b_len == 0);
        pw_md4(a, a_len, out);
        return true;
    }
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c == NULL) {
        return false;
    }
    bool ok = EVP_DigestInit_ex(c, pw_evp(md), NULL) == 1 && EVP_DigestUpdate(c, a, a_len) == 1 &&
              EVP_DigestUpdate(c, b, b_len) == 1 && EVP_DigestFinal_ex(c, out, NULL) == 1;
    EVP_MD_CTX_free(c);
    return ok;
}

/* MD5("user:realm:password"). */
static bool pw_digest_md5(const char *user, size_t user_len, const char *realm, const uint8_t *pw,
                          size_t pw_len, uint8_t out[PW_DIGEST_MD5_BYTES])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c == NULL) {
        return false;
    }
    bool ok = EVP_DigestInit_ex(c, EVP_md5(), NULL) == 1 &&
              EVP_DigestUpdate(c, user, user_len) == 1 && EVP_DigestUpdate(c, ":", 1) == 1 &&
              EVP_DigestUpdate(c, realm, strlen(realm)) == 1 && EVP_DigestUpdate(c, ":", 1) == 1 &&
              EVP_DigestUpdate(c, pw, pw_len) == 1 && EVP_DigestFinal_ex(c, out, NULL) == 1;
    EVP_MD_CTX_free(c);
    return ok;
}

/* Dovecot's DIGEST-MD5 split of a login name: realm after the last '@'. */
static bool pw_digest_md5_login(const char *login, const uint8_t *pw, size_t pw_len,
                                uint8_t out[PW_DIGEST_MD5_BYTES])
{
    const char *at = strrchr(login, '@');
    if (at == NULL) {
        return pw_digest_md5(login, strlen(login), "", pw, pw_len, out);
    }
    return pw_digest_md5(login, (size_t)(at - login), at + 1, pw, pw_len, out);
}

static bool pw_ct_eq(const uint8_t *a, const uint8_t *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

/* Plaintext equality without leaking the length: compare SHA-256 of both. */
static pw_status pw_plain_eq(const uint8_t *stored, size_t stored_len, const uint8_t *plain,
                             size_t plain_len)
{
    uint8_t a[32];
    uint8_t b[32];
    if (!pw_digest2(PW_MD_SHA256, stored, stored_len, NULL, 0, a) ||
        !pw_digest2(PW_MD_SHA256, plain, plain_len, NULL, 0, b)) {
        return PW_INTERNAL;
    }
    bool eq = pw_ct_eq(a, b, sizeof(a));
    OPENSSL_cleanse(a, sizeof(a));
    OPENSSL_cleanse(b, sizeof(b));
    return eq ? PW_OK : PW_MISMATCH;
}

/* SCRAM's SaltedPassword = Hi() = PBKDF2 with dkLen = hLen, then
 * StoredKey = H(HMAC(SP, "Client Key")), ServerKey = HMAC(SP, "Server Key"). */
static bool pw_scram_keys(pw_md md, const uint8_t *pw, size_t pw_len, const uint8_t *salt,
                          size_t salt_len, uint32_t iterations, uint8_t *stored_key_out,
                          uint8_t *server_key_out)
{
    const EVP_MD *evp = pw_evp(md);
    size_t hlen = pw_md_len(md);
    uint8_t salted[PW_SCRAM_KEY_BYTES_MAX];
    uint8_t client_key[PW_SCRAM_KEY_BYTES_MAX];
    unsigned int n = 0;
    SL_ASSERT(iterations <= INT_MAX);
    bool ok =
        pw_len <= INT_MAX && salt_len <= INT_MAX &&
        PKCS5_PBKDF2_HMAC(pw_len > 0 ? (const char *)pw : "", (int)pw_len, salt, (int)salt_len,
                          (int)iterations, evp, (int)hlen, salted) == 1 &&
        HMAC(evp, salted, (int)hlen, (const uint8_t *)"Client Key", 10, client_key, &n) != NULL &&
        EVP_Digest(client_key, hlen, stored_key_out, NULL, evp, NULL) == 1 &&
        HMAC(evp, salted, (int)hlen, (const uint8_t *)"Server Key", 10, server_key_out, &n) != NULL;
    OPENSSL_cleanse(salted, sizeof(salted));
    OPENSSL_cleanse(client_key, sizeof(client_key));
    return ok;
}

/* Parses "iter,salt_b64,storedkey_b64,serverkey_b64" (Dovecot's format). */
static pw_status pw_scram_parse(pw_md md, const uint8_t *raw, size_t raw_len, pw_scram *out)
{
    const char *s = (const char *)raw;
    const char *field[4];
    size_t flen[4];
    size_t f = 0;
    size_t start = 0;
    for (size_t i = 0; i <= raw_len; i++) {
        if (i == raw_len || s[i] == ',') {
            if (f == 4) {
                return PW_BAD_STORED;
            }
            field[f] = s + start;
            flen[f] = i - start;
            f++;
            start = i + 1;
        }
    }
    if (f != 4 || flen[0] == 0 || flen[0] > 10) {
        return PW_BAD_STORED;
    }
    uint64_t iter = 0;
    for (size_t i = 0; i < flen[0]; i++) {
        if (field[0][i] < '0' || field[0][i] > '9') {
            return PW_BAD_STORED;
        }
        iter = iter * 10 + (uint64_t)(field[0][i] - '0');
    }
    if (iter < PW_SCRAM_ITERATIONS || iter > INT_MAX) {
        return PW_BAD_STORED;
    }
    memset(out, 0, sizeof(*out)); /* padding too: the struct is handed out as bytes */
    out->iterations = (uint32_t)iter;
    size_t key_len = pw_md_len(md);
    size_t n = 0;
    if (!pw_b64_decode(field[1], flen[1], out->salt, sizeof(out->salt), &out->salt_len) ||
        out->salt_len == 0 ||
        !pw_b64_decode(field[2], flen[2], out->stored_key, sizeof(out->stored_key), &n) ||
        n != key_len ||
        !pw_b64_decode(field[3], flen[3], out->server_key, sizeof(out->server_key), &n) ||
        n != key_len) {
        return PW_BAD_STORED;
    }
    return PW_OK;
}

static size_t pw_scram_pack(const pw_scram *sc, uint8_t *out)
{
    memcpy(out, sc, sizeof(*sc));
    return sizeof(*sc);
}

bool pw_scram_unpack(const uint8_t *cred, size_t cred_len, pw_scram *out)
{
    if (cred_len != sizeof(*out)) {
        return false;
    }
    memcpy(out, cred, sizeof(*out));
    return out->salt_len >= 1 && out->salt_len <= PW_SCRAM_SALT_BYTES_MAX &&
           out->iterations >= PW_SCRAM_ITERATIONS;
}

/* ---- the SCRAM salt secret ---- */

static uint8_t pw_secret[32];
static bool pw_secret_is_set;
static pthread_once_t pw_secret_once = PTHREAD_ONCE_INIT;

static void pw_secret_init_random(void)
{
    if (!pw_secret_is_set) {
        SL_ASSERT(RAND_bytes(pw_secret, sizeof(pw_secret)) == 1);
    }
}

void pw_scram_secret_set(const uint8_t *secret, size_t secret_len)
{
    SL_ASSERT(secret != NULL || secret_len == 0);
    SL_ASSERT(EVP_Digest(secret_len > 0 ? secret : (const uint8_t *)"", secret_len, pw_secret, NULL,
                         EVP_sha256(), NULL) == 1);
    pw_secret_is_set = true;
}

void pw_scram_salt(const char *user, uint8_t salt_out[PW_SCRAM_SALT_BYTES])
{
    static const char label[] = "sluice-scram-salt"; /* the NUL is part of the message */
    SL_ASSERT(user != NULL);
    pthread_once(&pw_secret_once, pw_secret_init_random);
    EVP_MAC *alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = alg != NULL ? EVP_MAC_CTX_new(alg) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    uint8_t mac[32];
    size_t mac_len = 0;
    bool ok = c != NULL && EVP_MAC_init(c, pw_secret, sizeof(pw_secret), params) == 1 &&
              EVP_MAC_update(c, (const uint8_t *)label, sizeof(label)) == 1 &&
              EVP_MAC_update(c, (const uint8_t *)user, strlen(user)) == 1 &&
              EVP_MAC_final(c, mac, &mac_len, sizeof(mac)) == 1;
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(alg);
    /* Only an allocation failure inside libcrypto gets here; a salt cannot be
     * made up, and out of memory ends the process elsewhere too. */
    SL_ASSERT(ok && mac_len == sizeof(mac));
    memcpy(salt_out, mac, PW_SCRAM_SALT_BYTES);
    OPENSSL_cleanse(mac, sizeof(mac));
}

/* ---- verification ---- */

/* ok: the computation succeeded; then a and b (n bytes) are compared. */
static pw_status pw_match(bool ok, const uint8_t *a, const uint8_t *b, size_t n)
{
    if (!ok) {
        return PW_INTERNAL;
    }
    return pw_ct_eq(a, b, n) ? PW_OK : PW_MISMATCH;
}

/* crypt(3) wants C strings: copies both, NUL-terminated, into buffers that
 * are wiped afterwards. The 32 KiB crypt_data lives on the heap so worker
 * threads with small stacks can verify too. */
static pw_status pw_crypt_verify(const uint8_t *raw, size_t raw_len, const uint8_t *plain,
                                 size_t plain_len)
{
    if (raw_len == 0 || memchr(raw, '\0', raw_len) != NULL) {
        return PW_BAD_STORED;
    }
    if (memchr(plain, '\0', plain_len) != NULL) {
        return PW_MISMATCH;
    }
    char setting[PW_STORED_BYTES_MAX + 1];
    char pw[PW_PLAIN_BYTES_MAX + 1];
    SL_ASSERT(raw_len <= PW_STORED_BYTES_MAX && plain_len <= PW_PLAIN_BYTES_MAX);
    memcpy(setting, raw, raw_len);
    setting[raw_len] = '\0';
    memcpy(pw, plain, plain_len);
    pw[plain_len] = '\0';
    struct crypt_data *data = sl_calloc(1, sizeof(*data));
    const char *r = crypt_rn(pw, setting, data, (int)sizeof(*data));
    pw_status st = PW_BAD_STORED; /* NULL or a "*0"-style failure token: not a valid setting */
    if (r != NULL && r[0] != '*') {
        st = strlen(r) == raw_len && pw_ct_eq((const uint8_t *)r, raw, raw_len) ? PW_OK
                                                                                : PW_MISMATCH;
    }
    OPENSSL_cleanse(data, sizeof(*data));
    sl_free(&data);
    explicit_bzero(pw, sizeof(pw));
    return st;
}

static pw_status pw_argon2_verify(const uint8_t *raw, size_t raw_len, const uint8_t *plain,
                                  size_t plain_len)
{
    char enc[PW_STORED_BYTES_MAX + 1];
    if (memchr(raw, '\0', raw_len) != NULL) {
        return PW_BAD_STORED;
    }
    memcpy(enc, raw, raw_len);
    enc[raw_len] = '\0';
    argon2_type type;
    /* The variant comes from the value, not the scheme name, as libsodium
     * (Dovecot's argon2) reads it. */
    if (strncmp(enc, "$argon2id$", 10) == 0) {
        type = Argon2_id;
    } else if (strncmp(enc, "$argon2i$", 9) == 0) {
        type = Argon2_i;
    } else {
        return PW_BAD_STORED;
    }
    int rc = argon2_verify(enc, plain_len > 0 ? plain : (const uint8_t *)"", plain_len, type);
    switch (rc) {
    case ARGON2_OK:
        return PW_OK;
    case ARGON2_VERIFY_MISMATCH:
        return PW_MISMATCH;
    case ARGON2_MEMORY_ALLOCATION_ERROR:
    case ARGON2_THREAD_FAIL:
        return PW_INTERNAL;
    case ARGON2_PWD_TOO_LONG:
        return PW_MISMATCH;
    default:
        return PW_BAD_STORED;
    }
}

/* Parses up to `digits` decimal digits at s (stopping at the first
 * non-digit); false if there are none or too many. */
static bool pw_parse_uint(const char *s, size_t len, size_t digits_max, uint64_t *v_out,
                          size_t *used_out)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        if (i == digits_max) {
            return false;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *v_out = v;
    *used_out = i;
    return i > 0;
}

/* "<length>-<password>": a password cut to <length> bytes when stored; any
 * password that starts with it matches then, as in Dovecot. */
static pw_status pw_plain_trunc_verify(const uint8_t *raw, size_t raw_len, const uint8_t *plain,
                                       size_t plain_len)
{
    uint64_t trunc = 0;
    size_t used = 0;
    if (!pw_parse_uint((const char *)raw, raw_len, 9, &trunc, &used) || used == raw_len ||
        raw[used] != '-') {
        return PW_BAD_STORED;
    }
    const uint8_t *pw = raw + used + 1;
    size_t pw_len = raw_len - used - 1;
    if (pw_len == trunc && plain_len >= trunc) {
        return pw_plain_eq(pw, pw_len, plain, pw_len);
    }
    return pw_plain_eq(pw, pw_len, plain, plain_len);
}

/* "$1$salt$rounds$hex": PBKDF2-HMAC-SHA1 of the password with the salt text. */
static pw_status pw_pbkdf2_parse(const uint8_t *raw, size_t raw_len, const char **salt_out,
                                 size_t *salt_len_out, uint32_t *rounds_out,
                                 uint8_t key_out[PW_PBKDF2_KEY_BYTES])
{
    const char *s = (const char *)raw;
    if (raw_len < 3 || memcmp(s, "$1$", 3) != 0) {
        return PW_BAD_STORED;
    }
    const char *salt = s + 3;
    const char *d1 = memchr(salt, '$', raw_len - 3);
    if (d1 == NULL) {
        return PW_BAD_STORED;
    }
    const char *rounds = d1 + 1;
    size_t rest = raw_len - (size_t)(rounds - s);
    uint64_t v = 0;
    size_t used = 0;
    if (!pw_parse_uint(rounds, rest, 10, &v, &used) || used == rest || rounds[used] != '$' ||
        v == 0 || v > INT_MAX) {
        return PW_BAD_STORED;
    }
    const char *hex = rounds + used + 1;
    size_t hex_len = rest - used - 1;
    size_t n = 0;
    if (hex_len != 2 * PW_PBKDF2_KEY_BYTES ||
        !pw_hex_decode(hex, hex_len, key_out, PW_PBKDF2_KEY_BYTES, &n)) {
        return PW_BAD_STORED;
    }
    *salt_out = salt;
    *salt_len_out = (size_t)(d1 - salt);
    *rounds_out = (uint32_t)v;
    return PW_OK;
}

static bool pw_pbkdf2(const uint8_t *pw, size_t pw_len, const char *salt, size_t salt_len,
                      uint32_t rounds, uint8_t key_out[PW_PBKDF2_KEY_BYTES])
{
    return pw_len <= INT_MAX && salt_len <= INT_MAX && rounds <= INT_MAX &&
           PKCS5_PBKDF2_HMAC(pw_len > 0 ? (const char *)pw : "", (int)pw_len, (const uint8_t *)salt,
                             (int)salt_len, (int)rounds, EVP_sha1(), PW_PBKDF2_KEY_BYTES,
                             key_out) == 1;
}

static pw_status pw_pbkdf2_verify(const uint8_t *raw, size_t raw_len, const uint8_t *plain,
                                  size_t plain_len)
{
    const char *salt = NULL;
    size_t salt_len = 0;
    uint32_t rounds = 0;
    uint8_t want[PW_PBKDF2_KEY_BYTES];
    uint8_t got[PW_PBKDF2_KEY_BYTES];
    pw_status st = pw_pbkdf2_parse(raw, raw_len, &salt, &salt_len, &rounds, want);
    if (st == PW_OK) {
        st = pw_match(pw_pbkdf2(plain, plain_len, salt, salt_len, rounds, got), got, want,
                      sizeof(got));
    }
    OPENSSL_cleanse(got, sizeof(got));
    return st;
}

static pw_status pw_scram_verify(pw_md md, const uint8_t *raw, size_t raw_len, const uint8_t *plain,
                                 size_t plain_len)
{
    pw_scram sc;
    uint8_t stored_key[PW_SCRAM_KEY_BYTES_MAX];
    uint8_t server_key[PW_SCRAM_KEY_BYTES_MAX];
    pw_status st = pw_scram_parse(md, raw, raw_len, &sc);
    if (st == PW_OK) {
        bool ok = pw_scram_keys(md, plain, plain_len, sc.salt, sc.salt_len, sc.iterations,
                                stored_key, server_key);
        st = pw_match(ok, stored_key, sc.stored_key, pw_md_len(md));
    }
    OPENSSL_cleanse(&sc, sizeof(sc));
    OPENSSL_cleanse(stored_key, sizeof(stored_key));
    OPENSSL_cleanse(server_key, sizeof(server_key));
    return st;
}

static pw_status pw_verify_raw(const pw_scheme_def *def, const uint8_t *raw, size_t raw_len,
                               const char *user, const uint8_t *plain, size_t plain_len);

/* {MD5}: "$1$..." is MD5-CRYPT, anything else a PLAIN-MD5 digest. */
static pw_status pw_md5_verify(const uint8_t *raw, size_t raw_len, const uint8_t *plain,
                               size_t plain_len)
{
    if (raw_len >= 3 && memcmp(raw, "$1$", 3) == 0) {
        return pw_crypt_verify(raw, raw_len, plain, plain_len);
    }
    const pw_scheme_def *md5 = pw_def_find("PLAIN-MD5", 9);
    uint8_t digest[PW_MD5_BYTES];
    size_t n = 0;
    pw_status st =
        pw_decode(md5, md5->enc, false, (const char *)raw, raw_len, digest, sizeof(digest), &n);
    if (st != PW_OK) {
        return st;
    }
    return pw_verify_raw(md5, digest, n, NULL, plain, plain_len);
}

static pw_status pw_verify_raw(const pw_scheme_def *def, const uint8_t *raw, size_t raw_len,
                               const char *user, const uint8_t *plain, size_t plain_len)
{
    uint8_t d[PW_DIGEST_BYTES_MAX];
    pw_status st = PW_INTERNAL;
    size_t mdlen = 0;
    switch (def->alg) {
    case PW_ALG_PLAIN:
        return pw_plain_eq(raw, raw_len, plain, plain_len);
    case PW_ALG_PLAIN_TRUNC:
        return pw_plain_trunc_verify(raw, raw_len, plain, plain_len);
    case PW_ALG_CRAM_MD5:
        pw_cram_md5_context(plain, plain_len, d);
        st = pw_match(true, d, raw, PW_CRAM_MD5_BYTES);
        break;
    case PW_ALG_DIGEST_MD5:
        if (user == NULL) {
            return PW_UNSUPPORTED;
        }
        st = pw_match(pw_digest_md5_login(user, plain, plain_len, d), d, raw, PW_DIGEST_MD5_BYTES);
        break;
    case PW_ALG_SCRAM_SHA1:
    case PW_ALG_SCRAM_SHA256:
        return pw_scram_verify(def->md, raw, raw_len, plain, plain_len);
    case PW_ALG_MD5:
        return pw_md5_verify(raw, raw_len, plain, plain_len);
    case PW_ALG_CRYPT:
        return pw_crypt_verify(raw, raw_len, plain, plain_len);
    case PW_ALG_ARGON2:
        return pw_argon2_verify(raw, raw_len, plain, plain_len);
    case PW_ALG_DIGEST:
        SL_ASSERT(raw_len == pw_md_len(def->md));
        st = pw_match(pw_digest2(def->md, plain, plain_len, NULL, 0, d), d, raw, raw_len);
        break;
    case PW_ALG_SALTED:
        mdlen = pw_md_len(def->md);
        if (raw_len <= mdlen) {
            return PW_BAD_STORED; /* digest ‖ salt, with a salt of at least one byte */
        }
        st = pw_match(pw_digest2(def->md, plain, plain_len, raw + mdlen, raw_len - mdlen, d), d,
                      raw, mdlen);
        break;
    case PW_ALG_NTLM:
        st =
            pw_ntlm_hash(plain, plain_len, d) ? pw_match(true, d, raw, PW_NTLM_BYTES) : PW_MISMATCH;
        break;
    case PW_ALG_PBKDF2:
        return pw_pbkdf2_verify(raw, raw_len, plain, plain_len);
    }
    OPENSSL_cleanse(d, sizeof(d));
    return st;
}

pw_status pw_verify(const char *stored, const char *default_scheme, const char *user,
                    const uint8_t *plain, size_t plain_len)
{
    SL_ASSERT(plain != NULL || plain_len == 0);
    pw_parsed p;
    pw_status st = pw_parse(stored, default_scheme, &p);
    if (st != PW_OK) {
        return st;
    }
    if (plain == NULL) {
        plain = (const uint8_t *)"";
    }
    uint8_t raw[PW_STORED_BYTES_MAX];
    size_t raw_len = 0;
    st = pw_decode(p.def, p.enc, p.enc_explicit, p.body, p.body_len, raw, sizeof(raw), &raw_len);
    if (st == PW_OK) {
        st = plain_len > PW_PLAIN_BYTES_MAX
                 ? PW_MISMATCH
                 : pw_verify_raw(p.def, raw, raw_len, user, plain, plain_len);
    }
    OPENSSL_cleanse(raw, sizeof(raw));
    return st;
}

bool pw_is_slow(const char *stored, const char *default_scheme)
{
    pw_parsed p;
    if (pw_parse(stored, default_scheme, &p) != PW_OK) {
        return false;
    }
    if (p.def->alg != PW_ALG_MD5) {
        return (p.def->flags & PW_F_SLOW) != 0;
    }
    uint8_t raw[PW_STORED_BYTES_MAX];
    size_t raw_len = 0;
    bool slow = pw_decode(p.def, p.enc, p.enc_explicit, p.body, p.body_len, raw, sizeof(raw),
                          &raw_len) == PW_OK &&
                raw_len >= 3 && memcmp(raw, "$1$", 3) == 0;
    OPENSSL_cleanse(raw, sizeof(raw));
    return slow;
}

/* ---- credentials ---- */

static pw_alg pw_kind_alg(pw_cred_kind kind)
{
    switch (kind) {
    case PW_CRED_CRAM_MD5:
        return PW_ALG_CRAM_MD5;
    case PW_CRED_DIGEST_MD5:
        return PW_ALG_DIGEST_MD5;
    case PW_CRED_SCRAM_SHA1:
        return PW_ALG_SCRAM_SHA1;
    case PW_CRED_SCRAM_SHA256:
        return PW_ALG_SCRAM_SHA256;
    case PW_CRED_NTLM:
        return PW_ALG_NTLM;
    }
    SL_ASSERT(!"unknown credential kind");
    return PW_ALG_PLAIN;
}

static pw_status pw_cred_from_plain(pw_cred_kind kind, const uint8_t *pw, size_t pw_len,
                                    const char *user, const char *realm, uint8_t *cred_out,
                                    size_t *cred_len_out)
{
    pw_scram sc;
    pw_md md = kind == PW_CRED_SCRAM_SHA1 ? PW_MD_SHA1 : PW_MD_SHA256;
    pw_status st = PW_OK;
    switch (kind) {
    case PW_CRED_CRAM_MD5:
        pw_cram_md5_context(pw, pw_len, cred_out);
        *cred_len_out = PW_CRAM_MD5_BYTES;
        return PW_OK;
    case PW_CRED_DIGEST_MD5:
        if (!pw_digest_md5(user, strlen(user), realm != NULL ? realm : "", pw, pw_len, cred_out)) {
            return PW_INTERNAL;
        }
        *cred_len_out = PW_DIGEST_MD5_BYTES;
        return PW_OK;
    case PW_CRED_NTLM:
        if (!pw_ntlm_hash(pw, pw_len, cred_out)) {
            return PW_UNSUPPORTED; /* not UTF-8: no UTF-16 form to hash */
        }
        *cred_len_out = PW_NTLM_BYTES;
        return PW_OK;
    case PW_CRED_SCRAM_SHA1:
    case PW_CRED_SCRAM_SHA256:
        memset(&sc, 0, sizeof(sc)); /* padding too: the struct is handed out as bytes */
        sc.iterations = PW_SCRAM_ITERATIONS;
        sc.salt_len = PW_SCRAM_SALT_BYTES;
        pw_scram_salt(user, sc.salt);
        if (pw_scram_keys(md, pw, pw_len, sc.salt, sc.salt_len, sc.iterations, sc.stored_key,
                          sc.server_key)) {
            *cred_len_out = pw_scram_pack(&sc, cred_out);
        } else {
            st = PW_INTERNAL;
        }
        OPENSSL_cleanse(&sc, sizeof(sc));
        return st;
    }
    return PW_UNSUPPORTED;
}

pw_status pw_credentials(const char *stored, const char *default_scheme, pw_cred_kind kind,
                         const char *user, const char *realm, uint8_t *cred_out,
                         size_t cred_bytes_max, size_t *cred_len_out)
{
    SL_ASSERT(user != NULL);
    SL_ASSERT(cred_out != NULL && cred_len_out != NULL);
    SL_ASSERT(cred_bytes_max >= PW_CRED_BYTES_MAX);
    *cred_len_out = 0;
    pw_parsed p;
    pw_status st = pw_parse(stored, default_scheme, &p);
    if (st != PW_OK) {
        return st;
    }
    pw_alg alg = p.def->alg;
    if (alg != PW_ALG_PLAIN && alg != pw_kind_alg(kind)) {
        return PW_UNSUPPORTED;
    }
    uint8_t raw[PW_STORED_BYTES_MAX];
    size_t raw_len = 0;
    st = pw_decode(p.def, p.enc, p.enc_explicit, p.body, p.body_len, raw, sizeof(raw), &raw_len);
    if (st == PW_OK && alg == PW_ALG_PLAIN) {
        st = pw_cred_from_plain(kind, raw, raw_len, user, realm, cred_out, cred_len_out);
    } else if (st == PW_OK && (alg == PW_ALG_SCRAM_SHA1 || alg == PW_ALG_SCRAM_SHA256)) {
        pw_scram sc;
        st = pw_scram_parse(p.def->md, raw, raw_len, &sc);
        if (st == PW_OK) {
            *cred_len_out = pw_scram_pack(&sc, cred_out);
        }
        OPENSSL_cleanse(&sc, sizeof(sc));
    } else if (st == PW_OK) {
        /* CRAM-MD5, DIGEST-MD5, NTLM: the decoded value is the credential
         * (pw_decode checked its fixed length). */
        memcpy(cred_out, raw, raw_len);
        *cred_len_out = raw_len;
    }
    OPENSSL_cleanse(raw, sizeof(raw));
    return st;
}

bool pw_credentials_is_slow(const char *stored, const char *default_scheme, pw_cred_kind kind)
{
    pw_parsed p;
    return pw_parse(stored, default_scheme, &p) == PW_OK && p.def->alg == PW_ALG_PLAIN &&
           (kind == PW_CRED_SCRAM_SHA1 || kind == PW_CRED_SCRAM_SHA256);
}

bool pw_can_serve(const char *default_scheme, pw_cred_kind kind)
{
    pw_enc enc;
    bool enc_explicit;
    SL_ASSERT(default_scheme != NULL);
    size_t len = strlen(default_scheme);
    const pw_scheme_def *def =
        len <= PW_NAME_BYTES_MAX ? pw_lookup(default_scheme, len, &enc, &enc_explicit) : NULL;
    return def != NULL && (def->alg == PW_ALG_PLAIN || def->alg == pw_kind_alg(kind));
}

/* ---- making new values ---- */

static bool pw_random(uint8_t *p, size_t n)
{
    return n <= INT_MAX && RAND_bytes(p, (int)n) == 1;
}

static pw_status pw_hash_crypt(const char *prefix, const uint8_t *plain, size_t plain_len,
                               uint8_t *raw_out, size_t raw_max, size_t *raw_len_out)
{
    if (memchr(plain, '\0', plain_len) != NULL) {
        return PW_UNSUPPORTED;
    }
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    char pw[PW_HASH_PLAIN_BYTES_MAX + 1];
    memcpy(pw, plain, plain_len);
    pw[plain_len] = '\0';
    pw_status st = PW_INTERNAL;
    struct crypt_data *data = sl_calloc(1, sizeof(*data));
    if (crypt_gensalt_rn(prefix, 0, NULL, 0, setting, (int)sizeof(setting)) != NULL) {
        const char *r = crypt_rn(pw, setting, data, (int)sizeof(*data));
        size_t n = r != NULL ? strlen(r) : 0;
        if (r != NULL && r[0] != '*' && n <= raw_max) {
            memcpy(raw_out, r, n);
            *raw_len_out = n;
            st = PW_OK;
        }
    }
    OPENSSL_cleanse(data, sizeof(*data));
    sl_free(&data);
    explicit_bzero(pw, sizeof(pw));
    return st;
}

static pw_status pw_hash_argon2(const char *variant, const uint8_t *plain, size_t plain_len,
                                uint8_t *raw_out, size_t raw_max, size_t *raw_len_out)
{
    /* Dovecot's (libsodium's) interactive limits: argon2i t=4 m=32 MiB,
     * argon2id t=3 m=64 MiB. */
    bool id = strcmp(variant, "id") == 0;
    uint32_t t = id ? 3 : 4;
    uint32_t m_kib = id ? 65536 : 32768;
    argon2_type type = id ? Argon2_id : Argon2_i;
    uint8_t salt[PW_ARGON2_SALT_BYTES];
    if (!pw_random(salt, sizeof(salt))) {
        return PW_INTERNAL;
    }
    size_t need = argon2_encodedlen(t, m_kib, 1, sizeof(salt), PW_ARGON2_HASH_BYTES, type);
    SL_ASSERT(need <= raw_max);
    int rc = argon2_hash(t, m_kib, 1, plain_len > 0 ? plain : (const uint8_t *)"", plain_len, salt,
                         sizeof(salt), NULL, PW_ARGON2_HASH_BYTES, (char *)raw_out, raw_max, type,
                         ARGON2_VERSION_NUMBER);
    if (rc != ARGON2_OK) {
        return PW_INTERNAL;
    }
    *raw_len_out = strlen((const char *)raw_out);
    return PW_OK;
}

/* "4096,salt,StoredKey,ServerKey", all base64. */
static pw_status pw_hash_scram(pw_md md, const uint8_t *plain, size_t plain_len, uint8_t *raw_out,
                               size_t raw_max, size_t *raw_len_out)
{
    pw_scram sc;
    memset(&sc, 0, sizeof(sc));
    sc.iterations = PW_SCRAM_ITERATIONS;
    sc.salt_len = PW_SCRAM_SALT_BYTES;
    size_t key_len = pw_md_len(md);
    pw_status st = PW_INTERNAL;
    if (pw_random(sc.salt, sc.salt_len) &&
        pw_scram_keys(md, plain, plain_len, sc.salt, sc.salt_len, sc.iterations, sc.stored_key,
                      sc.server_key)) {
        char *o = (char *)raw_out;
        size_t need = 11 + 3 + pw_b64_len(sc.salt_len) + 2 * pw_b64_len(key_len) + 1;
        SL_ASSERT(need <= raw_max);
        size_t n = (size_t)snprintf(o, raw_max, "%u,", sc.iterations);
        pw_b64_encode(sc.salt, sc.salt_len, o + n);
        n += strlen(o + n);
        o[n++] = ',';
        pw_b64_encode(sc.stored_key, key_len, o + n);
        n += strlen(o + n);
        o[n++] = ',';
        pw_b64_encode(sc.server_key, key_len, o + n);
        n += strlen(o + n);
        *raw_len_out = n;
        st = PW_OK;
    }
    OPENSSL_cleanse(&sc, sizeof(sc));
    return st;
}

static pw_status pw_hash_pbkdf2(const uint8_t *plain, size_t plain_len, uint8_t *raw_out,
                                size_t raw_max, size_t *raw_len_out)
{
    static const char chars[] = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    char salt[PW_PBKDF2_SALT_CHARS + 1];
    uint8_t rnd[PW_PBKDF2_SALT_CHARS];
    uint8_t key[PW_PBKDF2_KEY_BYTES];
    char key_hex[2 * PW_PBKDF2_KEY_BYTES + 1];
    if (!pw_random(rnd, sizeof(rnd))) {
        return PW_INTERNAL;
    }
    for (size_t i = 0; i < sizeof(rnd); i++) {
        salt[i] = chars[rnd[i] % 64]; /* 64 symbols: no modulo bias */
    }
    salt[PW_PBKDF2_SALT_CHARS] = '\0';
    if (!pw_pbkdf2(plain, plain_len, salt, PW_PBKDF2_SALT_CHARS, PW_PBKDF2_ROUNDS, key)) {
        return PW_INTERNAL;
    }
    pw_hex_encode(key, sizeof(key), key_hex);
    int n = snprintf((char *)raw_out, raw_max, "$1$%s$%u$%s", salt, PW_PBKDF2_ROUNDS, key_hex);
    SL_ASSERT(n > 0 && (size_t)n < raw_max);
    *raw_len_out = (size_t)n;
    OPENSSL_cleanse(key, sizeof(key));
    return PW_OK;
}

static pw_status pw_hash_raw(const pw_scheme_def *def, const uint8_t *plain, size_t plain_len,
                             const char *user, uint8_t *raw_out, size_t raw_max,
                             size_t *raw_len_out)
{
    uint8_t salt[PW_SALTED_SALT_BYTES];
    size_t mdlen = 0;
    int n = 0;
    SL_ASSERT(raw_max >= PW_HASH_PLAIN_BYTES_MAX + 16);
    switch (def->alg) {
    case PW_ALG_PLAIN:
        memcpy(raw_out, plain, plain_len);
        *raw_len_out = plain_len;
        return PW_OK;
    case PW_ALG_PLAIN_TRUNC:
        n = snprintf((char *)raw_out, raw_max, "%zu-", plain_len);
        memcpy(raw_out + n, plain, plain_len);
        *raw_len_out = (size_t)n + plain_len;
        return PW_OK;
    case PW_ALG_CRAM_MD5:
        pw_cram_md5_context(plain, plain_len, raw_out);
        *raw_len_out = PW_CRAM_MD5_BYTES;
        return PW_OK;
    case PW_ALG_DIGEST_MD5:
        if (user == NULL) {
            return PW_UNSUPPORTED;
        }
        *raw_len_out = PW_DIGEST_MD5_BYTES;
        return pw_digest_md5_login(user, plain, plain_len, raw_out) ? PW_OK : PW_INTERNAL;
    case PW_ALG_SCRAM_SHA1:
    case PW_ALG_SCRAM_SHA256:
        return pw_hash_scram(def->md, plain, plain_len, raw_out, raw_max, raw_len_out);
    case PW_ALG_MD5:
    case PW_ALG_CRYPT:
        return pw_hash_crypt(def->gensalt, plain, plain_len, raw_out, raw_max, raw_len_out);
    case PW_ALG_ARGON2:
        return pw_hash_argon2(def->gensalt, plain, plain_len, raw_out, raw_max, raw_len_out);
    case PW_ALG_DIGEST:
        *raw_len_out = pw_md_len(def->md);
        return pw_digest2(def->md, plain, plain_len, NULL, 0, raw_out) ? PW_OK : PW_INTERNAL;
    case PW_ALG_SALTED:
        mdlen = pw_md_len(def->md);
        if (!pw_random(salt, sizeof(salt)) ||
            !pw_digest2(def->md, plain, plain_len, salt, sizeof(salt), raw_out)) {
            return PW_INTERNAL;
        }
        memcpy(raw_out + mdlen, salt, sizeof(salt));
        *raw_len_out = mdlen + sizeof(salt);
        return PW_OK;
    case PW_ALG_NTLM:
        *raw_len_out = PW_NTLM_BYTES;
        return pw_ntlm_hash(plain, plain_len, raw_out) ? PW_OK : PW_UNSUPPORTED;
    case PW_ALG_PBKDF2:
        return pw_hash_pbkdf2(plain, plain_len, raw_out, raw_max, raw_len_out);
    }
    return PW_UNSUPPORTED;
}

/* "{NAME}" + raw in the chosen encoding, NUL-terminated. */
static pw_status pw_format(const char *name, size_t name_len, pw_enc enc, const uint8_t *raw,
                           size_t raw_len, char *out, size_t out_max)
{
    size_t enc_len = enc == PW_ENC_HEX   ? 2 * raw_len
                     : enc == PW_ENC_B64 ? pw_b64_len(raw_len)
                                         : raw_len;
    if (2 + name_len + enc_len + 1 > out_max) {
        return PW_UNSUPPORTED;
    }
    if (enc == PW_ENC_NONE && memchr(raw, '\0', raw_len) != NULL) {
        return PW_UNSUPPORTED; /* a stored value is text */
    }
    out[0] = '{';
    for (size_t i = 0; i < name_len; i++) {
        char c = name[i];
        out[1 + i] = c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
    }
    out[1 + name_len] = '}';
    char *body = out + 2 + name_len;
    if (enc == PW_ENC_HEX) {
        pw_hex_encode(raw, raw_len, body);
    } else if (enc == PW_ENC_B64) {
        pw_b64_encode(raw, raw_len, body);
    } else {
        memcpy(body, raw, raw_len);
        body[raw_len] = '\0';
    }
    return PW_OK;
}

pw_status pw_hash(const char *scheme, const uint8_t *plain, size_t plain_len, const char *user,
                  char *stored_out, size_t stored_bytes_max)
{
    SL_ASSERT(scheme != NULL && stored_out != NULL);
    SL_ASSERT(plain != NULL || plain_len == 0);
    SL_ASSERT(stored_bytes_max >= PW_HASH_BYTES_MAX);
    stored_out[0] = '\0';
    size_t name_len = strlen(scheme);
    pw_enc enc;
    bool enc_explicit;
    const pw_scheme_def *def = name_len > 0 && name_len <= PW_NAME_BYTES_MAX
                                   ? pw_lookup(scheme, name_len, &enc, &enc_explicit)
                                   : NULL;
    if (def == NULL || plain_len > PW_HASH_PLAIN_BYTES_MAX) {
        return PW_UNSUPPORTED;
    }
    if (plain == NULL) {
        plain = (const uint8_t *)"";
    }
    uint8_t raw[PW_HASH_BYTES_MAX];
    size_t raw_len = 0;
    pw_status st = pw_hash_raw(def, plain, plain_len, user, raw, sizeof(raw), &raw_len);
    if (st == PW_OK) {
        st = pw_format(scheme, name_len, enc, raw, raw_len, stored_out, stored_bytes_max);
    }
    OPENSSL_cleanse(raw, sizeof(raw));
    if (st != PW_OK) {
        explicit_bzero(stored_out, stored_bytes_max);
    }
    return st;
}

/* ---- names ---- */

const char *pw_status_name(pw_status status)
{
    switch (status) {
    case PW_OK:
        return "ok";
    case PW_MISMATCH:
        return "mismatch";
    case PW_UNSUPPORTED:
        return "unsupported";
    case PW_BAD_STORED:
        return "bad stored value";
    case PW_INTERNAL:
        return "internal";
    }
    return "?";
}

bool pw_scheme_known(const char *scheme)
{
    pw_enc enc;
    bool enc_explicit;
    size_t len = strlen(scheme);
    return len > 0 && len <= PW_NAME_BYTES_MAX &&
           pw_lookup(scheme, len, &enc, &enc_explicit) != NULL;
}

const char *pw_scheme_name(size_t i)
{
    return i < SL_ARRAY_LEN(pw_schemes) ? pw_schemes[i].name : NULL;
}
