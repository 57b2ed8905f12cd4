/* auth/pwscheme.h: password schemes as Dovecot stores them, so a passdb
 * written for Dovecot (postfixadmin, doveadm pw) works unchanged.
 *
 * A stored value is "{SCHEME}value" or "{SCHEME.ENC}value": the scheme name is
 * case-insensitive, ENC is HEX, B64 or BASE64 and overrides the scheme's own
 * encoding. A value without a "{...}" prefix is read with the configured
 * default scheme, except that "$1$salt$hash" is always MD5-CRYPT (as in
 * Dovecot). A NULL default scheme means "MD5", Dovecot SQL's default, which
 * reads "$1$..." as MD5-CRYPT and a bare hex/base64 digest as PLAIN-MD5.
 *
 * Schemes: PLAIN CLEAR CLEARTEXT PLAIN-TRUNC CRAM-MD5 HMAC-MD5 DIGEST-MD5
 * SCRAM-SHA-1 SCRAM-SHA-256 MD5 MD5-CRYPT SHA256-CRYPT SHA512-CRYPT BLF-CRYPT
 * CRYPT DES-CRYPT ARGON2I ARGON2ID SHA SHA1 SHA256 SHA512 SSHA SSHA256 SSHA512
 * SMD5 PLAIN-MD5 LDAP-MD5 PLAIN-MD4 NTLM PBKDF2. Dovecot's OTP is not
 * supported (PW_UNSUPPORTED).
 *
 * Passwords are bytes (plain, plain_len): a NUL inside never matches a crypt(3)
 * scheme, whose API is C strings. No SASLprep is applied (Dovecot applies none).
 *
 * Thread-safety: every function is reentrant and may run on any thread at
 * once, except pw_scram_secret_set(), which must run before any concurrent use.
 * Nothing returned borrows from the arguments; callers own every buffer.
 * Intermediate secrets are wiped before return. Comparisons are constant-time
 * (CRYPTO_memcmp; plaintext is compared through SHA-256 so its length does not
 * leak either). */
#ifndef SL_PWSCHEME_H
#define SL_PWSCHEME_H

#include "core/base/base.h"

#define PW_STORED_BYTES_MAX 1024    /* a stored value, NUL excluded; longer is PW_BAD_STORED */
#define PW_PLAIN_BYTES_MAX 4096     /* a longer password never verifies */
#define PW_HASH_PLAIN_BYTES_MAX 256 /* pw_hash refuses longer passwords */
#define PW_HASH_BYTES_MAX 1024      /* pw_hash output buffer, NUL included */
#define PW_CRED_BYTES_MAX 256       /* pw_credentials output buffer */
#define PW_CRAM_MD5_BYTES 32        /* PW_CRED_CRAM_MD5 */
#define PW_DIGEST_MD5_BYTES 16      /* PW_CRED_DIGEST_MD5 */
#define PW_NTLM_BYTES 16            /* PW_CRED_NTLM */
#define PW_SCRAM_ITERATIONS 4096    /* derived from plaintext; also the minimum accepted */
#define PW_SCRAM_SALT_BYTES 16      /* derived from plaintext */
#define PW_SCRAM_SALT_BYTES_MAX 64  /* in a stored {SCRAM-*} value; longer is PW_BAD_STORED */
#define PW_SCRAM_KEY_BYTES_MAX 32   /* SHA-256 */

typedef enum pw_status {
    PW_OK = 0,      /* the password matches / the output was produced */
    PW_MISMATCH,    /* wrong password */
    PW_UNSUPPORTED, /* unknown scheme or encoding, or this operation cannot be done from it */
    PW_BAD_STORED,  /* the stored value is malformed for its scheme */
    PW_INTERNAL,    /* a library failed (allocation, RNG): a temporary failure */
} pw_status;

/* What a non-plaintext SASL mechanism needs from the passdb. Byte formats:
 *  CRAM_MD5   32 bytes: Dovecot's CRAM-MD5 context. With K the HMAC-MD5 key
 *             (the password, or MD5 of it when longer than 64 bytes, zero
 *             padded to 64), the MD5 state words A,B,C,D after absorbing the
 *             one block K^0x5c (outer), then A,B,C,D after K^0x36 (inner),
 *             each word little-endian. {CRAM-MD5} stores these 32 bytes as hex.
 *  DIGEST_MD5 16 bytes: MD5("user:realm:password") (RFC 2831 H(A1) input).
 *             A stored {DIGEST-MD5} value was made for one user and realm:
 *             Dovecot splits the login name at its last '@' ("a@b@realm" is
 *             user "a@b", realm "realm"; no '@' is realm ""). It is returned
 *             as stored; the realm passed is not checked against it.
 *  SCRAM_SHA1, SCRAM_SHA256: a pw_scram struct (below), cred_len =
 *             sizeof(pw_scram), read back with pw_scram_unpack() or memcpy. Its
 *             layout (uint32 iterations, size_t salt_len, salt[64],
 *             stored_key[32], server_key[32]; SHA-1 keys use the first 20
 *             bytes, the rest and all padding zero) is the SASL mechanisms'
 *             sasl_scram_cred, so the bytes pass through unchanged.
 *  NTLM       16 bytes: MD4(UTF-16LE(password)), the NT hash; the password
 *             must be valid UTF-8. */
typedef enum pw_cred_kind {
    PW_CRED_CRAM_MD5 = 0,
    PW_CRED_DIGEST_MD5,
    PW_CRED_SCRAM_SHA1,
    PW_CRED_SCRAM_SHA256,
    PW_CRED_NTLM,
} pw_cred_kind;

/* Static text for logs: "ok", "mismatch", "unsupported", "bad stored value", "internal". */
const char *pw_status_name(pw_status status);

/* Check plain (plain_len bytes; plain may be NULL only when plain_len is 0)
 * against a stored value. user is the login name; only DIGEST-MD5 needs it
 * (NULL there gives PW_UNSUPPORTED). Crypt, argon2, SCRAM and PBKDF2 values
 * take milliseconds to hundreds of them: see pw_is_slow(). */
pw_status pw_verify(const char *stored, const char *default_scheme, const char *user,
                    const uint8_t *plain, size_t plain_len);

/* True when pw_verify() on this stored value runs an iterated or
 * memory-hard function (crypt(3), argon2, SCRAM, PBKDF2), so the caller
 * should run it on a worker thread rather than an event loop. False for
 * unknown or malformed values (those fail at once). */
bool pw_is_slow(const char *stored, const char *default_scheme);

/* Derive what mechanism `kind` needs (formats above) from a stored value.
 * A plaintext value (PLAIN, CLEAR, CLEARTEXT) gives any kind; {CRAM-MD5},
 * {HMAC-MD5}, {DIGEST-MD5}, {SCRAM-SHA-1}, {SCRAM-SHA-256} and {NTLM} give only
 * their own kind; anything else is PW_UNSUPPORTED. user must not be NULL;
 * realm may be NULL (""); both are used only when deriving DIGEST_MD5 (user,
 * realm as given) and SCRAM (the salt is pw_scram_salt(user)) from plaintext.
 * Writes at most PW_CRED_BYTES_MAX bytes to cred_out (cred_bytes_max must be
 * at least that) and the length to *cred_len_out; cred_out holds a secret
 * equivalent to the password for that mechanism: wipe it after use. */
pw_status pw_credentials(const char *stored, const char *default_scheme, pw_cred_kind kind,
                         const char *user, const char *realm, uint8_t *cred_out,
                         size_t cred_bytes_max, size_t *cred_len_out);

/* True when pw_credentials() for this value and kind runs PBKDF2 (SCRAM from
 * plaintext): run it on a worker thread. */
bool pw_credentials_is_slow(const char *stored, const char *default_scheme, pw_cred_kind kind);

/* Whether values stored under this default scheme can ever give `kind`, so
 * the endpoint offers only mechanisms it can serve. Unknown scheme: false. */
bool pw_can_serve(const char *default_scheme, pw_cred_kind kind);

/* Make a new stored value "{SCHEME}..." (SCHEME as given, upper-cased, with
 * its .HEX/.B64 suffix if any) with a fresh random salt, NUL-terminated in
 * stored_out (stored_bytes_max >= PW_HASH_BYTES_MAX). user is needed only by
 * DIGEST-MD5 (Dovecot's split, see above). Crypt schemes take their salt and
 * default cost from crypt_gensalt_rn (MD5-CRYPT and the plain CRYPT scheme
 * as Dovecot 2.3: CRYPT makes bcrypt "$2y$05$", DES-CRYPT makes DES); ARGON2I
 * uses t=4 m=32 MiB, ARGON2ID t=3 m=64 MiB (p=1, 16-byte salt, 32-byte hash);
 * SCRAM 4096 iterations, 16-byte salt; PBKDF2 5000 rounds. PW_UNSUPPORTED for
 * an unknown scheme, a password longer than PW_HASH_PLAIN_BYTES_MAX, or a
 * password a scheme cannot hold (NUL for crypt, or in unencoded plaintext). */
pw_status pw_hash(const char *scheme, const uint8_t *plain, size_t plain_len, const char *user,
                  char *stored_out, size_t stored_bytes_max);

/* Whether scheme (with an optional encoding suffix) is known. */
bool pw_scheme_known(const char *scheme);

/* The i-th scheme name (canonical, upper-case), or NULL past the last. */
const char *pw_scheme_name(size_t i);

/* Key for the per-user SCRAM salt derived for plaintext passwords:
 * salt = first 16 bytes of HMAC-SHA256(SHA-256(secret), "sluice-scram-salt" 0x00 user).
 * A stable configured secret keeps the salt the same across restarts and
 * hosts (clients may cache the salted password); unset, a random secret is
 * drawn once per process, so salts are stable for the process's lifetime.
 * The salt is also what to send for an unknown user, so as not to reveal it.
 * Call before any concurrent use of this module. */
void pw_scram_secret_set(const uint8_t *secret, size_t secret_len);

void pw_scram_salt(const char *user, uint8_t salt_out[PW_SCRAM_SALT_BYTES]);

/* A PW_CRED_SCRAM_* credential. */
typedef struct pw_scram {
    uint32_t iterations; /* >= PW_SCRAM_ITERATIONS */
    size_t salt_len;     /* 1..PW_SCRAM_SALT_BYTES_MAX */
    uint8_t salt[PW_SCRAM_SALT_BYTES_MAX];
    uint8_t stored_key[PW_SCRAM_KEY_BYTES_MAX]; /* 20 bytes used for SHA-1, 32 for SHA-256 */
    uint8_t server_key[PW_SCRAM_KEY_BYTES_MAX];
} pw_scram;

/* Copy a SCRAM credential out of pw_credentials()'s bytes; false if cred is
 * not one (wrong length, salt length or iteration count). */
bool pw_scram_unpack(const uint8_t *cred, size_t cred_len, pw_scram *out);

#endif
