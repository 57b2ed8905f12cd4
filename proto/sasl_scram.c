/* proto/sasl_scram.c: SCRAM-SHA-1 (RFC 5802) and SCRAM-SHA-256 (RFC 7677).
 *
 * No channel binding: Postfix passes no TLS channel-binding data over the Dovecot auth
 * protocol, so the -PLUS variants are never offered. A gs2 flag of 'n' (client has none)
 * or 'y' (client could bind but believes the server cannot, which is true) is accepted; 'p'
 * fails as unsupported. A mandatory extension (m=) fails as unsupported; optional
 * extensions are ignored.
 *
 * SASLprep (RFC 4013) is not applied: user names and passwords are used as the bytes the
 * client sent. That is exact for ASCII, which SASLprep leaves unchanged except for control
 * characters; a non-ASCII name or password that a client normalises differently from the
 * stored form does not match.
 *
 * The server never runs PBKDF2 during an exchange: it gets StoredKey and ServerKey (Dovecot's
 * stored form) and checks the proof with one hash and one HMAC. */
#include "proto/sasl_scram.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

enum { SCRAM_START = 0, SCRAM_WAIT_FIRST, SCRAM_WAIT_FINAL };

#define SCRAM_CNONCE_BYTES_MAX 256
#define SCRAM_MESSAGE_BYTES_MAX 2048

static const char *scram_md(sasl_cred_kind kind)
{
    SL_ASSERT(kind == SASL_CRED_SCRAM_SHA1 || kind == SASL_CRED_SCRAM_SHA256);
    return kind == SASL_CRED_SCRAM_SHA1 ? "SHA1" : "SHA256";
}

static size_t scram_digest_len(sasl_cred_kind kind)
{
    return kind == SASL_CRED_SCRAM_SHA1 ? 20 : 32;
}

static sasl_cred_kind mech_kind(const sasl_mech *m)
{
    return m->id == SASL_MECH_SCRAM_SHA1 ? SASL_CRED_SCRAM_SHA1 : SASL_CRED_SCRAM_SHA256;
}

void sasl_scram_derive(sasl_cred_kind kind, sl_slice password, const uint8_t *salt, size_t salt_len,
                       uint32_t iterations, sasl_scram_cred *out)
{
    SL_ASSERT(salt_len >= 1 && salt_len <= SASL_SCRAM_SALT_BYTES_MAX);
    SL_ASSERT(iterations >= 1 && iterations <= INT32_MAX);
    const char *md = scram_md(kind);
    size_t dlen = scram_digest_len(kind);
    uint8_t salted[SASL_SCRAM_KEY_BYTES_MAX];
    int ok = PKCS5_PBKDF2_HMAC((const char *)password.ptr, (int)password.len, salt, (int)salt_len,
                               (int)iterations, EVP_get_digestbyname(md), (int)dlen, salted);
    SL_ASSERT(ok == 1);

    *out = (sasl_scram_cred){.iterations = iterations, .salt_len = salt_len};
    memcpy(out->salt, salt, salt_len);
    uint8_t client_key[SASL_SCRAM_KEY_BYTES_MAX];
    sl_slice ck = SL_SLICE_LIT("Client Key");
    sl_slice sk = SL_SLICE_LIT("Server Key");
    sasl_mech_hmac(md, salted, dlen, &ck, 1, client_key);
    sasl_mech_hmac(md, salted, dlen, &sk, 1, out->server_key);
    sl_slice ck_part = {client_key, dlen};
    sasl_mech_hash(md, &ck_part, 1, out->stored_key);
    explicit_bzero(salted, sizeof(salted));
    explicit_bzero(client_key, sizeof(client_key));
}

/* ---- field helpers ---- */

/* The next ','-separated field of s from *pos; *pos moves past the comma. */
static bool next_field(sl_slice s, size_t *pos, sl_slice *field_out)
{
    if (*pos > s.len) {
        return false;
    }
    const uint8_t *start = s.ptr + *pos;
    size_t left = s.len - *pos;
    const uint8_t *comma = left > 0 ? memchr(start, ',', left) : NULL;
    size_t n = comma != NULL ? (size_t)(comma - start) : left;
    *field_out = (sl_slice){start, n};
    *pos += n + 1; /* past the comma, or past the end (then the next call fails) */
    return true;
}

static bool has_prefix(sl_slice s, const char *p)
{
    size_t n = strlen(p);
    return s.len >= n && memcmp(s.ptr, p, n) == 0;
}

static sl_slice after(sl_slice s, size_t n)
{
    return (sl_slice){s.ptr + n, s.len - n};
}

/* saslname: "=2C" is ',' and "=3D" is '='; any other '=' is malformed. */
static bool unescape_saslname(sl_slice in, uint8_t *out, size_t cap, size_t *len_out)
{
    size_t n = 0;
    for (size_t i = 0; i < in.len; i++) {
        uint8_t c = in.ptr[i];
        if (c == '=') {
            if (i + 2 >= in.len) {
                return false;
            }
            if (in.ptr[i + 1] == '2' && (in.ptr[i + 2] == 'C' || in.ptr[i + 2] == 'c')) {
                c = ',';
            } else if (in.ptr[i + 1] == '3' && (in.ptr[i + 2] == 'D' || in.ptr[i + 2] == 'd')) {
                c = '=';
            } else {
                return false;
            }
            i += 2;
        }
        if (n >= cap) {
            return false;
        }
        out[n++] = c;
    }
    *len_out = n;
    return true;
}

/* printable = %x21-2B / %x2D-7E: visible ASCII except ','. */
static bool is_printable_nonce(sl_slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < 0x21 || s.ptr[i] > 0x7e || s.ptr[i] == ',') {
            return false;
        }
    }
    return s.len > 0;
}

/* attr-val for an optional extension: ALPHA "=" value. */
static bool is_extension(sl_slice s)
{
    if (s.len < 2 || s.ptr[1] != '=') {
        return false;
    }
    uint8_t c = s.ptr[0];
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ---- client-first-message ---- */

static sasl_fail_reason parse_gs2(sasl_mech *m, sl_slice in, size_t *pos)
{
    sl_slice flag;
    sl_slice zid;
    if (!next_field(in, pos, &flag)) {
        return SASL_FAIL_SYNTAX;
    }
    if (has_prefix(flag, "p=")) {
        return SASL_FAIL_UNSUPPORTED; /* channel binding */
    }
    if (!(flag.len == 1 && (flag.ptr[0] == 'n' || flag.ptr[0] == 'y'))) {
        return SASL_FAIL_SYNTAX;
    }
    if (!next_field(in, pos, &zid) || *pos > in.len) {
        return SASL_FAIL_SYNTAX;
    }
    if (zid.len > 0) {
        uint8_t buf[SASL_USER_BYTES_MAX];
        size_t n = 0;
        if (!has_prefix(zid, "a=") || !unescape_saslname(after(zid, 2), buf, sizeof(buf), &n) ||
            n == 0 || !sasl_mech_keep(m, buf, n, &m->authzid)) {
            return SASL_FAIL_SYNTAX;
        }
    }
    if (!sasl_mech_keep(m, in.ptr, *pos, &m->u.scram.gs2_header)) {
        return SASL_FAIL_SYNTAX;
    }
    return SASL_FAIL_NONE;
}

static sasl_fail_reason parse_bare(sasl_mech *m, sl_slice bare)
{
    size_t pos = 0;
    sl_slice f;
    if (!next_field(bare, &pos, &f)) {
        return SASL_FAIL_SYNTAX;
    }
    if (has_prefix(f, "m=")) {
        return SASL_FAIL_UNSUPPORTED; /* a mandatory extension we do not know */
    }
    uint8_t user[SASL_USER_BYTES_MAX];
    size_t user_len = 0;
    if (!has_prefix(f, "n=") || !unescape_saslname(after(f, 2), user, sizeof(user), &user_len) ||
        user_len == 0) {
        return SASL_FAIL_SYNTAX;
    }
    sl_slice nonce;
    if (!next_field(bare, &pos, &nonce) || !has_prefix(nonce, "r=") ||
        !is_printable_nonce(after(nonce, 2)) || nonce.len - 2 > SCRAM_CNONCE_BYTES_MAX) {
        return SASL_FAIL_SYNTAX;
    }
    while (pos <= bare.len) {
        if (!next_field(bare, &pos, &f) || !is_extension(f)) {
            return SASL_FAIL_SYNTAX;
        }
    }
    sasl_scram_state *s = &m->u.scram;
    if (!sasl_mech_keep(m, user, user_len, &m->authcid) ||
        !sasl_mech_keep(m, nonce.ptr + 2, nonce.len - 2, &s->nonce) ||
        !sasl_mech_keep(m, bare.ptr, bare.len, &s->client_first_bare)) {
        return SASL_FAIL_SYNTAX;
    }
    return SASL_FAIL_NONE;
}

static sasl_status client_first(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out)
{
    if (in_len == 0 || in_len > SCRAM_MESSAGE_BYTES_MAX || memchr(in, '\0', in_len) != NULL) {
        return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
    }
    sl_slice msg = {in, in_len};
    size_t pos = 0;
    sasl_fail_reason why = parse_gs2(m, msg, &pos);
    if (why == SASL_FAIL_NONE) {
        why = parse_bare(m, after(msg, pos));
    }
    if (why != SASL_FAIL_NONE) {
        return sasl_mech_fail(m, why, out);
    }
    if (!sasl_mech_authzid_ok(m, m->authcid, m->authzid)) {
        return sasl_mech_fail(m, SASL_FAIL_AUTHZID, out);
    }
    return sasl_mech_need(m, SASL_NEED_CREDENTIALS, mech_kind(m), out);
}

/* ---- server-first-message ---- */

/* One server-nonce character per random byte: '!'..'~' without ','. */
static uint8_t nonce_char(uint8_t b)
{
    uint8_t i = (uint8_t)(b % 93);
    return (uint8_t)(i < ',' - '!' ? '!' + i : '!' + i + 1);
}

sasl_status sasl_scram_set_credentials(sasl_mech *m, const void *cred, size_t cred_len,
                                       sasl_out *out)
{
    if (cred_len != sizeof(sasl_scram_cred)) {
        return sasl_mech_fail(m, SASL_FAIL_STORED, out);
    }
    const sasl_scram_cred *c = cred;
    if (c->iterations == 0 || c->salt_len == 0 || c->salt_len > SASL_SCRAM_SALT_BYTES_MAX) {
        return sasl_mech_fail(m, SASL_FAIL_STORED, out);
    }
    sasl_scram_state *s = &m->u.scram;
    s->digest_len = scram_digest_len(mech_kind(m));
    memcpy(s->stored_key, c->stored_key, s->digest_len);
    memcpy(s->server_key, c->server_key, s->digest_len);

    uint8_t snonce[SASL_RANDOM_BYTES_MAX];
    for (size_t i = 0; i < m->random_len; i++) {
        snonce[i] = nonce_char(m->random[i]);
    }
    size_t start = m->store_len;
    sl_slice part;
    bool kept = sasl_mech_keep(m, s->nonce.ptr, s->nonce.len, &part) &&
                sasl_mech_keep(m, snonce, m->random_len, &part);
    SL_ASSERT(kept); /* bounded client nonce and random */
    s->nonce = (sl_slice){m->store + start, m->store_len - start};

    sasl_wbuf w;
    sasl_wbuf_init(&w, m->out, sizeof(m->out));
    sasl_wbuf_str(&w, "r=");
    sasl_wbuf_put(&w, s->nonce.ptr, s->nonce.len);
    sasl_wbuf_str(&w, ",s=");
    sasl_wbuf_b64(&w, c->salt, c->salt_len);
    sasl_wbuf_str(&w, ",i=");
    sasl_wbuf_u64(&w, c->iterations);
    SL_ASSERT(!w.overflow);
    kept = sasl_mech_keep(m, m->out, w.len, &s->server_first);
    SL_ASSERT(kept);
    m->step = SCRAM_WAIT_FINAL;
    return sasl_mech_challenge(m, w.len, out);
}

/* ---- client-final-message ---- */

static sasl_fail_reason check_final(const sasl_mech *m, sl_slice without_proof)
{
    const sasl_scram_state *s = &m->u.scram;
    size_t pos = 0;
    sl_slice f;
    uint8_t cbind[SCRAM_MESSAGE_BYTES_MAX];
    size_t cbind_len = 0;
    if (!next_field(without_proof, &pos, &f) || !has_prefix(f, "c=") ||
        !sasl_mech_b64_decode(after(f, 2), cbind, sizeof(cbind), &cbind_len)) {
        return SASL_FAIL_SYNTAX;
    }
    /* cbind-input is exactly the gs2 header for 'n' and 'y'. */
    if (cbind_len != s->gs2_header.len || memcmp(cbind, s->gs2_header.ptr, cbind_len) != 0) {
        return SASL_FAIL_SYNTAX;
    }
    if (!next_field(without_proof, &pos, &f) || !has_prefix(f, "r=")) {
        return SASL_FAIL_SYNTAX;
    }
    sl_slice nonce = after(f, 2);
    if (nonce.len != s->nonce.len || memcmp(nonce.ptr, s->nonce.ptr, nonce.len) != 0) {
        return SASL_FAIL_CREDENTIALS; /* not this exchange's nonce */
    }
    while (pos <= without_proof.len) {
        if (!next_field(without_proof, &pos, &f) || !is_extension(f)) {
            return SASL_FAIL_SYNTAX;
        }
    }
    return SASL_FAIL_NONE;
}

static bool proof_ok(const sasl_mech *m, const sl_slice *auth_message, size_t n,
                     const uint8_t *proof)
{
    const sasl_scram_state *s = &m->u.scram;
    const char *md = scram_md(mech_kind(m));
    uint8_t signature[SASL_SCRAM_KEY_BYTES_MAX];
    uint8_t client_key[SASL_SCRAM_KEY_BYTES_MAX];
    uint8_t stored[SASL_SCRAM_KEY_BYTES_MAX];
    sasl_mech_hmac(md, s->stored_key, s->digest_len, auth_message, n, signature);
    for (size_t i = 0; i < s->digest_len; i++) {
        client_key[i] = proof[i] ^ signature[i];
    }
    sl_slice ck = {client_key, s->digest_len};
    sasl_mech_hash(md, &ck, 1, stored);
    bool ok = CRYPTO_memcmp(stored, s->stored_key, s->digest_len) == 0;
    explicit_bzero(signature, sizeof(signature));
    explicit_bzero(client_key, sizeof(client_key));
    explicit_bzero(stored, sizeof(stored));
    return ok;
}

static sasl_status client_final(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out)
{
    if (in_len == 0 || in_len > SCRAM_MESSAGE_BYTES_MAX || memchr(in, '\0', in_len) != NULL) {
        return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
    }
    size_t last = in_len;
    while (last > 0 && in[last - 1] != ',') {
        last--;
    }
    if (last == 0) {
        return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
    }
    sl_slice without_proof = {in, last - 1};
    sl_slice proof_field = {in + last, in_len - last};
    sasl_scram_state *s = &m->u.scram;
    uint8_t proof[SASL_SCRAM_KEY_BYTES_MAX];
    size_t proof_len = 0;
    if (!has_prefix(proof_field, "p=") ||
        !sasl_mech_b64_decode(after(proof_field, 2), proof, sizeof(proof), &proof_len) ||
        proof_len != s->digest_len) {
        return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
    }
    sasl_fail_reason why = check_final(m, without_proof);
    if (why != SASL_FAIL_NONE) {
        return sasl_mech_fail(m, why, out);
    }
    sl_slice comma = SL_SLICE_LIT(",");
    sl_slice auth_message[] = {s->client_first_bare, comma, s->server_first, comma, without_proof};
    if (!proof_ok(m, auth_message, SL_ARRAY_LEN(auth_message), proof)) {
        return sasl_mech_fail(m, SASL_FAIL_CREDENTIALS, out);
    }
    uint8_t server_signature[SASL_SCRAM_KEY_BYTES_MAX];
    sasl_mech_hmac(scram_md(mech_kind(m)), s->server_key, s->digest_len, auth_message,
                   SL_ARRAY_LEN(auth_message), server_signature);
    sasl_wbuf w;
    sasl_wbuf_init(&w, m->out, sizeof(m->out));
    sasl_wbuf_str(&w, "v=");
    sasl_wbuf_b64(&w, server_signature, s->digest_len);
    SL_ASSERT(!w.overflow);
    explicit_bzero(s->stored_key, sizeof(s->stored_key));
    explicit_bzero(s->server_key, sizeof(s->server_key));
    return sasl_mech_success(m, w.len, out);
}

sasl_status sasl_scram_step(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out)
{
    switch (m->step) {
    case SCRAM_START:
        m->step = SCRAM_WAIT_FIRST;
        if (in_len == 0) {
            return sasl_mech_challenge(m, 0, out); /* no initial response: ask for it */
        }
        return client_first(m, in, in_len, out);
    case SCRAM_WAIT_FIRST:
        return client_first(m, in, in_len, out);
    case SCRAM_WAIT_FINAL:
        return client_final(m, in, in_len, out);
    default:
        break;
    }
    return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
}
