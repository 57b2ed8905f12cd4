/* proto/sasl_mech.h: server-side SASL mechanisms as pure state machines, for the SMTP AUTH
 * endpoint (the Dovecot auth protocol that Postfix speaks).
 *
 * A mechanism takes the client's decoded bytes and returns what the session must do next.
 * It does no I/O, keeps no globals, reads no clock and draws no random numbers: the caller
 * gives it random bytes and the time at init, so published test vectors replay exactly.
 * base64 on the wire is the session's job; this API is binary in, binary out.
 *
 * Driving it (one sasl_mech per AUTH request, on caller storage, never moved while in use):
 *
 *   sasl_mech_init(&m, id, &params, random, random_len);
 *   st = sasl_mech_step(&m, initial_response, len, &out);   // len 0: no initial response
 *   loop:
 *     SASL_CHALLENGE         send out.data as CONT; step again with the client's reply.
 *     SASL_NEED_VERIFY_PLAIN check out.password against the stored hash of out.authcid,
 *                            then st = sasl_mech_verify_result(&m, ok, &out).
 *     SASL_NEED_CREDENTIALS  fetch the credential of kind out.cred_kind for out.authcid
 *                            (a sasl_cred_kind, byte formats below), then
 *                            st = sasl_mech_set_credentials(&m, kind, cred, len, &out).
 *                            An unknown user or one without such a credential: end the
 *                            request as a failure without calling the mechanism again.
 *     SASL_OK                out.authcid is the authenticated user; out.authzid the identity
 *                            to act as (empty: none); out.data the final server message for
 *                            mutual-auth mechanisms (empty otherwise), sent with OK.
 *     SASL_FAIL              out.reason says why. The request is over.
 *   sasl_mech_clear(&m);   // always, also after OK/FAIL: wipes every secret
 *
 * Slices in sasl_out point into the sasl_mech itself (never into the caller's input), so the
 * caller may free or reuse its input buffer as soon as a call returns. out.data and
 * out.password stay valid until the next call on the mechanism; out.authcid, out.authzid,
 * out.realm and out.digest_username stay valid until sasl_mech_clear(). The caller wipes its
 * own copies of client input (which may hold a password).
 *
 * Includes only core/base plus OpenSSL's libcrypto. sluice code here never allocates;
 * OpenSSL's EVP layer allocates internally, and an OpenSSL failure (out of memory) aborts
 * like any allocation failure. Safe on any thread, one mechanism per thread at a time. */
#ifndef SL_SASL_MECH_H
#define SL_SASL_MECH_H

#include "core/base/base.h"

/* Limits on client-supplied fields; longer input fails with SASL_FAIL_SYNTAX. */
#define SASL_USER_BYTES_MAX 255 /* authcid, authzid, DIGEST-MD5 username */
#define SASL_PASSWORD_BYTES_MAX 1024
#define SASL_REALM_BYTES_MAX 255    /* DIGEST-MD5 realm, configured or sent */
#define SASL_HOSTNAME_BYTES_MAX 255 /* params.hostname */
#define SASL_SERVICE_BYTES_MAX 32   /* params.digest_service */
#define SASL_INPUT_BYTES_MAX 8192   /* one decoded client message */

/* Random bytes: the session passes SASL_RANDOM_BYTES from a CSPRNG; sasl_mech_init says how
 * each mechanism uses them. Tests pass fewer to replay published exchanges. */
#define SASL_RANDOM_BYTES 32
#define SASL_RANDOM_BYTES_MAX 64

/* Internal buffer sizes: one outgoing message, and what a mechanism keeps between steps. */
#define SASL_OUT_BYTES_MAX 2048
#define SASL_STORE_BYTES_MAX 6144

typedef enum sasl_mech_id {
    SASL_MECH_PLAIN = 0,
    SASL_MECH_LOGIN,
    SASL_MECH_CRAM_MD5,
    SASL_MECH_DIGEST_MD5,
    SASL_MECH_SCRAM_SHA1,
    SASL_MECH_SCRAM_SHA256,
    SASL_MECH_NTLM,
    SASL_MECH_COUNT,
} sasl_mech_id;

/* Dovecot's MECH line flags, one bit each, in the order Dovecot prints them
 * (sasl_mech_flag_name gives the word). */
#define SASL_MECH_FLAG_PRIVATE (1u << 0)
#define SASL_MECH_FLAG_ANONYMOUS (1u << 1)
#define SASL_MECH_FLAG_PLAINTEXT (1u << 2)
#define SASL_MECH_FLAG_DICTIONARY (1u << 3)
#define SASL_MECH_FLAG_ACTIVE (1u << 4)
#define SASL_MECH_FLAG_FORWARD_SECRECY (1u << 5)
#define SASL_MECH_FLAG_MUTUAL_AUTH (1u << 6)
#define SASL_MECH_FLAG_COUNT 7

/* What a mechanism needs from the password store, and the exact bytes of each kind (the
 * decoded form of Dovecot's {SCHEME} values, so `doveadm pw` output works):
 *  - NONE:         no credential: the mechanism hands over a plaintext (PLAIN, LOGIN).
 *  - CRAM_MD5:     32 bytes, Dovecot's {CRAM-MD5} context hex-decoded: the HMAC-MD5 outer,
 *                  then inner, MD5 state words A B C D after absorbing the padded key, each
 *                  word little-endian (see sasl_cram_md5_context).
 *  - DIGEST_MD5:   16 bytes, Dovecot's {DIGEST-MD5} hex-decoded: MD5("user:realm:password")
 *                  where user is the name without "@realm" (doveadm pw -u user@realm splits
 *                  it). The lookup name (out.authcid) is "user@realm" as in Dovecot
 *                  (up to USER + 1 + REALM bytes) when the client sent a realm and a
 *                  user name without '@'; out.digest_username and out.realm are the parts.
 *  - SCRAM_SHA1,
 *    SCRAM_SHA256: a sasl_scram_cred (cred_len = sizeof(sasl_scram_cred)), decoded from
 *                  Dovecot's {SCRAM-SHA-256}iter,salt_b64,storedkey_b64,serverkey_b64.
 *  - NTLM:         16 bytes, the NT hash MD4(UTF-16LE(password)) (see sasl_ntlm_hash). */
typedef enum sasl_cred_kind {
    SASL_CRED_NONE = 0,
    SASL_CRED_CRAM_MD5,
    SASL_CRED_DIGEST_MD5,
    SASL_CRED_SCRAM_SHA1,
    SASL_CRED_SCRAM_SHA256,
    SASL_CRED_NTLM,
} sasl_cred_kind;

#define SASL_CRAM_MD5_CRED_BYTES 32
#define SASL_DIGEST_MD5_CRED_BYTES 16
#define SASL_NTLM_CRED_BYTES 16
#define SASL_SCRAM_SALT_BYTES_MAX 64
#define SASL_SCRAM_KEY_BYTES_MAX 32 /* SHA-256; SHA-1 uses the first 20 */

typedef struct sasl_scram_cred {
    uint32_t iterations; /* >= 1; Dovecot's default and minimum is 4096 */
    size_t salt_len;     /* 1..SASL_SCRAM_SALT_BYTES_MAX */
    uint8_t salt[SASL_SCRAM_SALT_BYTES_MAX];
    uint8_t stored_key[SASL_SCRAM_KEY_BYTES_MAX];
    uint8_t server_key[SASL_SCRAM_KEY_BYTES_MAX];
} sasl_scram_cred;

typedef struct sasl_mech_info {
    sasl_mech_id id;
    const char *name;    /* as in the AUTH command and the MECH line */
    uint32_t flags;      /* SASL_MECH_FLAG_* */
    sasl_cred_kind cred; /* what the password store must provide; NONE: a plaintext check */
} sasl_mech_info;

typedef enum sasl_status {
    SASL_CHALLENGE = 1,
    SASL_NEED_VERIFY_PLAIN,
    SASL_NEED_CREDENTIALS,
    SASL_OK,
    SASL_FAIL,
} sasl_status;

typedef enum sasl_fail_reason {
    SASL_FAIL_NONE = 0,
    SASL_FAIL_SYNTAX,      /* malformed, truncated or over-long client message, or out of turn */
    SASL_FAIL_CREDENTIALS, /* wrong password, response, proof, nonce or service */
    SASL_FAIL_AUTHZID,     /* authzid differs from authcid and params do not allow that */
    SASL_FAIL_UNSUPPORTED, /* well-formed but not offered: channel binding, auth-int, LM-only */
    SASL_FAIL_STORED,      /* the credential the caller supplied is unusable (e.g. bad length) */
} sasl_fail_reason;

/* Options in sasl_params.options. */
/* Hand an authzid that differs from the authcid to the caller (which must then check that
 * authcid may act as authzid) instead of failing with SASL_FAIL_AUTHZID. */
#define SASL_OPT_ALLOW_AUTHZID (1u << 0)
/* For transports that cannot carry data with success: a mutual-auth mechanism returns its
 * final message as SASL_CHALLENGE, expects an empty reply, then returns SASL_OK with empty
 * out.data (RFC 4422 section 5). */
#define SASL_OPT_FINAL_AS_CHALLENGE (1u << 1)

/* The endpoint's configuration. The strings must outlive every mechanism initialised with
 * them (they are read, not copied). NULL strings count as "". */
typedef struct sasl_params {
    uint32_t options;           /* SASL_OPT_* */
    const char *hostname;       /* CRAM-MD5 challenge, NTLM target name (<= HOSTNAME max) */
    const char *realm;          /* DIGEST-MD5 realm offered (Dovecot offers realm="" if none) */
    const char *digest_service; /* DIGEST-MD5 digest-uri serv-type required, e.g. "smtp" */
    uint64_t timestamp_s;       /* CRAM-MD5 challenge time, seconds since the epoch */
} sasl_params;

typedef struct sasl_out {
    sl_slice data;            /* CHALLENGE: bytes to send; OK: final server message or empty */
    sl_slice authcid;         /* NEED_*, OK: the authentication identity (lookup name) */
    sl_slice authzid;         /* NEED_*, OK: requested authorization identity, empty if none */
    sl_slice password;        /* NEED_VERIFY_PLAIN: the plaintext password */
    sl_slice realm;           /* DIGEST-MD5: realm-value the client used (may be empty) */
    sl_slice digest_username; /* DIGEST-MD5: username-value as sent (authcid minus @realm) */
    sasl_cred_kind cred_kind; /* NEED_CREDENTIALS */
    sasl_fail_reason reason;  /* FAIL */
} sasl_out;

/* Per-family state; implementation-defined, zeroed by init. Slices point into m->store. */
typedef struct sasl_digest_state {
    sl_slice nonce, cnonce, nc, qop, digest_uri;
    uint8_t response[16];
} sasl_digest_state;

typedef struct sasl_scram_state {
    sl_slice gs2_header;        /* "n,," or "y,a=...," as received */
    sl_slice client_first_bare; /* client-first-message-bare */
    sl_slice server_first;      /* server-first-message as sent */
    sl_slice nonce;             /* c-nonce followed by s-nonce */
    size_t digest_len;
    uint8_t stored_key[SASL_SCRAM_KEY_BYTES_MAX];
    uint8_t server_key[SASL_SCRAM_KEY_BYTES_MAX];
} sasl_scram_state;

typedef struct sasl_ntlm_state {
    uint32_t flags;       /* flags sent in the CHALLENGE message */
    uint8_t challenge[8]; /* server challenge */
    sl_slice user16, domain16, nt_response, lm_response;
} sasl_ntlm_state;

typedef struct sasl_mech {
    sasl_mech_id id;
    sasl_params params;
    uint32_t step;       /* mechanism-specific position in the exchange */
    sasl_status waiting; /* NEED_* status the caller must answer, 0 when none */
    bool done;           /* OK or FAIL was returned */
    bool final_pending;  /* FINAL_AS_CHALLENGE: waiting for the empty reply */
    size_t random_len;
    uint8_t random[SASL_RANDOM_BYTES_MAX];
    sl_slice authcid, authzid, password, realm, digest_username;
    size_t store_len;
    uint8_t store[SASL_STORE_BYTES_MAX];
    uint8_t out[SASL_OUT_BYTES_MAX];
    union {
        struct {
            sl_slice challenge;
            uint8_t response[16];
        } cram;
        sasl_digest_state digest;
        sasl_scram_state scram;
        sasl_ntlm_state ntlm;
    } u;
} sasl_mech;

/* The mechanism table, indexed by id. Never NULL for a valid id. */
const sasl_mech_info *sasl_mech_info_get(sasl_mech_id id);

/* Find a mechanism by name (ASCII case-insensitive). NULL if unknown. */
const sasl_mech_info *sasl_mech_lookup(sl_slice name);

/* The Dovecot word for one flag bit ("plaintext", "mutual-auth", ...); NULL if the bit is
 * not a single known flag. Print set bits from the lowest up to match Dovecot's order. */
const char *sasl_mech_flag_name(uint32_t flag);

/* Initialise m for mechanism id. params is copied (its strings are not, see sasl_params).
 * random[0..random_len) (<= SASL_RANDOM_BYTES_MAX) is copied and used as:
 *  - CRAM-MD5: the first up to 8 bytes, read as a big-endian number, printed in decimal as the
 *    challenge's random part "<random.timestamp@hostname>" (needs >= 1 byte);
 *  - DIGEST-MD5: one nonce character per byte, from the base64 alphabet (byte % 64);
 *  - SCRAM-*: one server-nonce character per byte, printable ASCII except ',' (byte % 93
 *    into '!'..'~' without ','), appended to the client nonce;
 *  - NTLM: the first 8 bytes are the server challenge (needs >= 8 bytes);
 *  - PLAIN, LOGIN: unused.
 * Contract violations (unknown id, too few random bytes, over-long params strings) abort. */
void sasl_mech_init(sasl_mech *m, sasl_mech_id id, const sasl_params *params, const uint8_t *random,
                    size_t random_len);

/* Feed one client message (already base64-decoded; in_len 0 = empty message, or on the first
 * call: no initial response). Returns the next status and fills *out as described above.
 * Must not be called while the mechanism waits for verify_result or set_credentials (abort);
 * after OK or FAIL it returns SASL_FAIL (SYNTAX). */
sasl_status sasl_mech_step(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out);

/* Answer SASL_NEED_VERIFY_PLAIN: ok says whether out.password matched. The password copy
 * inside m is wiped before this returns. Returns SASL_OK or SASL_FAIL (CREDENTIALS). */
sasl_status sasl_mech_verify_result(sasl_mech *m, bool ok, sasl_out *out);

/* Answer SASL_NEED_CREDENTIALS. kind must be the kind asked for (abort otherwise); cred
 * points to the bytes of that kind (a sasl_scram_cred for SCRAM), cred_len is their size;
 * a wrong size or unusable value gives SASL_FAIL (STORED). The credential is copied only as
 * far as needed and wiped from m when no longer needed. Returns the next status. */
sasl_status sasl_mech_set_credentials(sasl_mech *m, sasl_cred_kind kind, const void *cred,
                                      size_t cred_len, sasl_out *out);

/* Wipe everything m holds (explicit_bzero); m may be initialised again afterwards. */
void sasl_mech_clear(sasl_mech *m);

/* ---- for proto/sasl_*.c only: shared plumbing of the mechanism files ---- */

/* A bounded writer into caller memory; overflow is sticky and checked once at the end. */
typedef struct sasl_wbuf {
    uint8_t *ptr;
    size_t len;
    size_t cap;
    bool overflow;
} sasl_wbuf;

void sasl_wbuf_init(sasl_wbuf *w, uint8_t *ptr, size_t cap);
void sasl_wbuf_put(sasl_wbuf *w, const void *p, size_t n);
void sasl_wbuf_str(sasl_wbuf *w, const char *s);
void sasl_wbuf_u64(sasl_wbuf *w, uint64_t v);
void sasl_wbuf_hex(sasl_wbuf *w, const uint8_t *p, size_t n); /* lower-case */
void sasl_wbuf_b64(sasl_wbuf *w, const uint8_t *p, size_t n); /* RFC 4648, padded */

/* "A-Za-z0-9+/": the RFC 4648 base64 alphabet, also used to pick nonce characters. */
extern const char sasl_mech_b64_alphabet[65];

/* Strict RFC 4648 base64 (padding required, no whitespace). Returns false if malformed or
 * if the result would exceed cap. */
bool sasl_mech_b64_decode(sl_slice in, uint8_t *out, size_t cap, size_t *len_out);
/* Hex of either case into n bytes; false unless in.len == 2 * n and all digits are hex. */
bool sasl_mech_hex_decode(sl_slice in, uint8_t *out, size_t n);

/* Copy n bytes into m->store; false when the store is full. */
bool sasl_mech_keep(sasl_mech *m, const void *p, size_t n, sl_slice *slice_out);

/* Finish a step: fill *out from m and record the status. */
sasl_status sasl_mech_challenge(sasl_mech *m, size_t out_len, sasl_out *out);
sasl_status sasl_mech_fail(sasl_mech *m, sasl_fail_reason reason, sasl_out *out);
sasl_status sasl_mech_need(sasl_mech *m, sasl_status need, sasl_cred_kind kind, sasl_out *out);
/* Success; final (may be empty, pointing into m->out) is the mutual-auth message. */
sasl_status sasl_mech_success(sasl_mech *m, size_t final_len, sasl_out *out);

/* authzid policy shared by all mechanisms: empty or equal to authcid passes; otherwise
 * only with SASL_OPT_ALLOW_AUTHZID. */
bool sasl_mech_authzid_ok(const sasl_mech *m, sl_slice authcid, sl_slice authzid);

/* HMAC with the named digest ("MD5", "SHA1", "SHA256") over parts[0..n); out gets the
 * digest size of md. */
void sasl_mech_hmac(const char *md, const uint8_t *key, size_t key_len, const sl_slice *parts,
                    size_t n, uint8_t *out);
/* A plain digest of parts[0..n). */
void sasl_mech_hash(const char *md, const sl_slice *parts, size_t n, uint8_t *out);

#endif
