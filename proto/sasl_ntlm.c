/* proto/sasl_ntlm.c: NTLM (MS-NLMP) as a SASL mechanism, the way Dovecot's mech-ntlm serves
 * it: NEGOTIATE in, CHALLENGE out, AUTHENTICATE in, verified from the NT hash alone.
 *
 * Accepted responses (by NtChallengeResponse length):
 *  - 24 bytes without extended session security: NTLMv1, DESL(NT hash, server challenge);
 *  - 24 bytes when the client asked for extended session security (and the challenge
 *    granted it): NTLM2 session response, DESL(NT hash, MD5(server || client challenge)[0..8])
 *    with the client challenge in the first 8 bytes of the LM response;
 *  - 16 + >= 28 bytes: NTLMv2, HMAC-MD5(NTOWFv2, server challenge || blob) where
 *    NTOWFv2 = HMAC-MD5(NT hash, UTF-16LE(upper(user) || domain)). The domain the client
 *    sent is tried first, then an empty one (Dovecot computes NTOWFv2 without a domain, as a
 *    standalone server). upper() maps ASCII letters only; Windows upper-cases all of Unicode,
 *    so a user name with non-ASCII lower-case letters fails NTLMv2. The blob's timestamp is
 *    not checked (no clock here); the fresh server challenge already prevents replay.
 * Refused: LM-only or anonymous responses (no LM hashes are stored) and clients without
 * Unicode. No signing or sealing is negotiated: SMTP uses NTLM for authentication only.
 *
 * DES and MD4 come from OpenSSL's low-level API (DES_ecb_encrypt, MD4), deprecated in 3.0
 * but still exported; their EVP forms need the legacy provider, which a pure module must not
 * load. The deprecation warning is silenced around those calls only. */
#include "proto/sasl_ntlm.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/des.h>
#include <openssl/md4.h>

enum { NTLM_START = 0, NTLM_WAIT_NEGOTIATE, NTLM_WAIT_AUTHENTICATE };

#define NTLM_NEGOTIATE_UNICODE 0x00000001u
#define NTLM_REQUEST_TARGET 0x00000004u
#define NTLM_NEGOTIATE_NTLM 0x00000200u
#define NTLM_TARGET_TYPE_SERVER 0x00020000u
#define NTLM_NEGOTIATE_ESS 0x00080000u /* extended session security (NTLM2) */
#define NTLM_NEGOTIATE_TARGET_INFO 0x00800000u

#define NTLM_NEGOTIATE_BYTES_MIN 16
#define NTLM_AUTHENTICATE_BYTES_MIN 52 /* five security buffers; flags may follow */
#define NTLM_CHALLENGE_HEADER_BYTES 48
#define NTLM_V2_BLOB_BYTES_MIN 28
#define NTLM_RESPONSE_BYTES_MAX 2048
#define NTLM_NETBIOS_CHARS_MAX 15

#define AV_EOL 0
#define AV_NB_COMPUTER 1
#define AV_NB_DOMAIN 2
#define AV_DNS_COMPUTER 3

static const uint8_t ntlm_signature[8] = {'N', 'T', 'L', 'M', 'S', 'S', 'P', 0};

static uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void set_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void set_le32(uint8_t *p, uint32_t v)
{
    set_le16(p, (uint16_t)v);
    set_le16(p + 2, (uint16_t)(v >> 16));
}

/* ---- UTF-8 <-> UTF-16LE ---- */

/* One code point from s at *i; -1 if malformed (overlong, surrogate, > U+10FFFF). */
static int32_t utf8_next(sl_slice s, size_t *i)
{
    uint8_t c = s.ptr[*i];
    size_t n = c < 0x80             ? 1
               : (c & 0xe0) == 0xc0 ? 2
               : (c & 0xf0) == 0xe0 ? 3
               : (c & 0xf8) == 0xf0 ? 4
                                    : 0;
    if (n == 0 || n > s.len - *i) {
        return -1;
    }
    static const int32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    int32_t cp = n == 1 ? c : c & (0x7f >> n);
    for (size_t k = 1; k < n; k++) {
        uint8_t cc = s.ptr[*i + k];
        if ((cc & 0xc0) != 0x80) {
            return -1;
        }
        cp = cp << 6 | (cc & 0x3f);
    }
    if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return -1;
    }
    *i += n;
    return cp;
}

/* UTF-16LE of a UTF-8 string into out[0..cap); false if malformed or too long. */
static bool utf8_to_utf16(sl_slice s, uint8_t *out, size_t cap, size_t *len_out)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len;) {
        int32_t cp = utf8_next(s, &i);
        if (cp < 0) {
            return false;
        }
        uint16_t units[2];
        size_t count = 1;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            units[0] = (uint16_t)(0xd800 | (cp >> 10));
            units[1] = (uint16_t)(0xdc00 | (cp & 0x3ff));
            count = 2;
        } else {
            units[0] = (uint16_t)cp;
        }
        if (2 * count > cap - n) {
            return false;
        }
        for (size_t k = 0; k < count; k++) {
            set_le16(out + n, units[k]);
            n += 2;
        }
    }
    *len_out = n;
    return true;
}

static void put_utf8(uint8_t *out, size_t *n, uint32_t cp)
{
    if (cp < 0x80) {
        out[(*n)++] = (uint8_t)cp;
    } else if (cp < 0x800) {
        out[(*n)++] = (uint8_t)(0xc0 | cp >> 6);
        out[(*n)++] = (uint8_t)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out[(*n)++] = (uint8_t)(0xe0 | cp >> 12);
        out[(*n)++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        out[(*n)++] = (uint8_t)(0x80 | (cp & 0x3f));
    } else {
        out[(*n)++] = (uint8_t)(0xf0 | cp >> 18);
        out[(*n)++] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
        out[(*n)++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        out[(*n)++] = (uint8_t)(0x80 | (cp & 0x3f));
    }
}

/* UTF-8 of UTF-16LE text; false on NUL, unpaired surrogates or more than cap bytes. */
static bool utf16_to_utf8(sl_slice s, uint8_t *out, size_t cap, size_t *len_out)
{
    size_t n = 0;
    for (size_t i = 0; i + 1 < s.len; i += 2) {
        uint32_t cp = get_le16(s.ptr + i);
        if (cp >= 0xd800 && cp <= 0xdbff && i + 3 < s.len) {
            uint32_t lo = get_le16(s.ptr + i + 2);
            if (lo < 0xdc00 || lo > 0xdfff) {
                return false;
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            i += 2;
        } else if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        size_t need = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        if (need > cap - n) {
            return false;
        }
        put_utf8(out, &n, cp);
    }
    *len_out = n;
    return true;
}

/* ---- crypto ---- */

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

bool sasl_ntlm_hash(sl_slice password, uint8_t out[SASL_NTLM_CRED_BYTES])
{
    uint8_t wide[2 * 2 * SASL_PASSWORD_BYTES_MAX];
    size_t wide_len = 0;
    memset(out, 0, SASL_NTLM_CRED_BYTES);
    if (!utf8_to_utf16(password, wide, sizeof(wide), &wide_len)) {
        explicit_bzero(wide, sizeof(wide));
        return false;
    }
    MD4(wide, wide_len, out);
    explicit_bzero(wide, sizeof(wide));
    return true;
}

/* DES of one block under a 56-bit key spread over 8 bytes (parity bits unused). */
static void des_block(const uint8_t key7[7], const uint8_t in[8], uint8_t out[8])
{
    DES_cblock key;
    key[0] = key7[0];
    for (int i = 1; i < 7; i++) {
        key[i] = (uint8_t)(key7[i - 1] << (8 - i) | key7[i] >> i);
    }
    key[7] = (uint8_t)(key7[6] << 1);
    DES_key_schedule ks;
    DES_set_key_unchecked(&key, &ks);
    DES_cblock block;
    memcpy(block, in, 8);
    DES_cblock result;
    DES_ecb_encrypt(&block, &result, &ks, DES_ENCRYPT);
    memcpy(out, result, 8);
    explicit_bzero(key, sizeof(key));
    explicit_bzero(&ks, sizeof(ks));
}

#pragma GCC diagnostic pop

/* DESL(K, D): the 16-byte key zero-padded to 21, three DES blocks (MS-NLMP 6). */
static void desl(const uint8_t key[16], const uint8_t data[8], uint8_t out[24])
{
    uint8_t k21[21] = {0};
    memcpy(k21, key, 16);
    des_block(k21, data, out);
    des_block(k21 + 7, data, out + 8);
    des_block(k21 + 14, data, out + 16);
    explicit_bzero(k21, sizeof(k21));
}

/* ---- CHALLENGE ---- */

static void put_wide_ascii(sasl_wbuf *w, const char *s, size_t n, bool upper)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        if (upper && c >= 'a' && c <= 'z') {
            c = (uint8_t)(c - 32);
        }
        uint8_t unit[2] = {c, 0};
        sasl_wbuf_put(w, unit, 2);
    }
}

static void put_av(sasl_wbuf *w, uint16_t id, const char *s, size_t n, bool upper)
{
    uint8_t head[4];
    set_le16(head, id);
    set_le16(head + 2, (uint16_t)(2 * n));
    sasl_wbuf_put(w, head, 4);
    put_wide_ascii(w, s, n, upper);
}

/* The CHALLENGE message: target name (if asked for) and target info carry the NetBIOS form
 * of params.hostname (first label, upper case, at most 15 characters) and the DNS name. */
static size_t build_challenge(sasl_mech *m, uint32_t flags)
{
    const char *host = m->params.hostname != NULL ? m->params.hostname : "";
    size_t host_len = strlen(host);
    size_t nb_len = strcspn(host, ".");
    nb_len = SL_MIN(nb_len, (size_t)NTLM_NETBIOS_CHARS_MAX);

    sasl_wbuf w;
    sasl_wbuf_init(&w, m->out, sizeof(m->out));
    uint8_t head[NTLM_CHALLENGE_HEADER_BYTES] = {0};
    sasl_wbuf_put(&w, head, sizeof(head));
    size_t name_off = w.len;
    if (flags & NTLM_REQUEST_TARGET) {
        put_wide_ascii(&w, host, nb_len, true);
    }
    size_t info_off = w.len;
    put_av(&w, AV_NB_DOMAIN, host, nb_len, true);
    put_av(&w, AV_NB_COMPUTER, host, nb_len, true);
    put_av(&w, AV_DNS_COMPUTER, host, host_len, false);
    put_av(&w, AV_EOL, "", 0, false);
    SL_ASSERT(!w.overflow); /* hostname is bounded by init */

    uint8_t *h = m->out;
    memcpy(h, ntlm_signature, 8);
    set_le32(h + 8, 2);
    set_le16(h + 12, (uint16_t)(info_off - name_off));
    set_le16(h + 14, (uint16_t)(info_off - name_off));
    set_le32(h + 16, (uint32_t)name_off);
    set_le32(h + 20, flags);
    memcpy(h + 24, m->u.ntlm.challenge, 8);
    set_le16(h + 40, (uint16_t)(w.len - info_off));
    set_le16(h + 42, (uint16_t)(w.len - info_off));
    set_le32(h + 44, (uint32_t)info_off);
    return w.len;
}

static sasl_status negotiate(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out)
{
    if (in_len < NTLM_NEGOTIATE_BYTES_MIN || memcmp(in, ntlm_signature, 8) != 0 ||
        get_le32(in + 8) != 1) {
        return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
    }
    uint32_t client = get_le32(in + 12);
    if ((client & NTLM_NEGOTIATE_UNICODE) == 0 || (client & NTLM_NEGOTIATE_NTLM) == 0) {
        return sasl_mech_fail(m, SASL_FAIL_UNSUPPORTED, out);
    }
    uint32_t flags = NTLM_NEGOTIATE_UNICODE | NTLM_NEGOTIATE_NTLM | NTLM_NEGOTIATE_TARGET_INFO;
    if (client & NTLM_REQUEST_TARGET) {
        flags |= NTLM_REQUEST_TARGET | NTLM_TARGET_TYPE_SERVER;
    }
    if (client & NTLM_NEGOTIATE_ESS) {
        flags |= NTLM_NEGOTIATE_ESS;
    }
    m->u.ntlm.flags = flags;
    memcpy(m->u.ntlm.challenge, m->random, 8);
    m->step = NTLM_WAIT_AUTHENTICATE;
    return sasl_mech_challenge(m, build_challenge(m, flags), out);
}

/* ---- AUTHENTICATE ---- */

/* A security buffer (len, maxlen, offset) at header offset at; false if out of bounds. */
static bool security_buffer(const uint8_t *in, size_t in_len, size_t at, sl_slice *out)
{
    size_t len = get_le16(in + at);
    size_t off = get_le32(in + at + 4);
    if (len == 0) {
        *out = (sl_slice){in, 0};
        return true;
    }
    if (off > in_len || len > in_len - off) {
        return false;
    }
    *out = (sl_slice){in + off, len};
    return true;
}

static sasl_fail_reason check_responses(const sasl_mech *m, sl_slice lm, sl_slice nt)
{
    if (nt.len == 0) {
        return SASL_FAIL_UNSUPPORTED; /* LM-only or anonymous */
    }
    if (nt.len == 24) {
        bool ess = (m->u.ntlm.flags & NTLM_NEGOTIATE_ESS) != 0;
        return ess && lm.len < 8 ? SASL_FAIL_SYNTAX : SASL_FAIL_NONE;
    }
    if (nt.len < 16 + NTLM_V2_BLOB_BYTES_MIN || nt.len > NTLM_RESPONSE_BYTES_MAX) {
        return SASL_FAIL_SYNTAX;
    }
    if (nt.ptr[16] != 1 || nt.ptr[17] != 1) {
        return SASL_FAIL_SYNTAX; /* blob RespType / HiRespType */
    }
    return SASL_FAIL_NONE;
}

static sasl_status authenticate(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out)
{
    if (in_len < NTLM_AUTHENTICATE_BYTES_MIN || memcmp(in, ntlm_signature, 8) != 0 ||
        get_le32(in + 8) != 3) {
        return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
    }
    sl_slice lm, nt, domain, user, workstation;
    if (!security_buffer(in, in_len, 12, &lm) || !security_buffer(in, in_len, 20, &nt) ||
        !security_buffer(in, in_len, 28, &domain) || !security_buffer(in, in_len, 36, &user) ||
        !security_buffer(in, in_len, 44, &workstation)) {
        return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
    }
    if (user.len == 0 || user.len % 2 != 0 || user.len > 2 * SASL_USER_BYTES_MAX ||
        domain.len % 2 != 0 || domain.len > 2 * SASL_REALM_BYTES_MAX) {
        return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
    }
    sasl_fail_reason why = check_responses(m, lm, nt);
    if (why != SASL_FAIL_NONE) {
        return sasl_mech_fail(m, why, out);
    }
    uint8_t name[SASL_USER_BYTES_MAX];
    size_t name_len = 0;
    uint8_t domain8[SASL_REALM_BYTES_MAX * 2];
    size_t domain8_len = 0;
    if (!utf16_to_utf8(user, name, sizeof(name), &name_len) ||
        !utf16_to_utf8(domain, domain8, sizeof(domain8), &domain8_len)) {
        return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
    }
    sasl_ntlm_state *s = &m->u.ntlm;
    bool kept = sasl_mech_keep(m, name, name_len, &m->authcid) &&
                sasl_mech_keep(m, user.ptr, user.len, &s->user16) &&
                sasl_mech_keep(m, domain.ptr, domain.len, &s->domain16) &&
                sasl_mech_keep(m, nt.ptr, nt.len, &s->nt_response) &&
                sasl_mech_keep(m, lm.ptr, SL_MIN(lm.len, (size_t)24), &s->lm_response);
    SL_ASSERT(kept); /* all bounded above */
    return sasl_mech_need(m, SASL_NEED_CREDENTIALS, SASL_CRED_NTLM, out);
}

sasl_status sasl_ntlm_step(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out)
{
    switch (m->step) {
    case NTLM_START:
        m->step = NTLM_WAIT_NEGOTIATE;
        if (in_len == 0) {
            return sasl_mech_challenge(m, 0, out); /* no initial response: ask for it */
        }
        return negotiate(m, in, in_len, out);
    case NTLM_WAIT_NEGOTIATE:
        return negotiate(m, in, in_len, out);
    case NTLM_WAIT_AUTHENTICATE:
        return authenticate(m, in, in_len, out);
    default:
        break;
    }
    return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
}

/* ---- verification ---- */

static bool v1_ok(const sasl_mech *m, const uint8_t nt_hash[16])
{
    const sasl_ntlm_state *s = &m->u.ntlm;
    uint8_t chal[16];
    memcpy(chal, s->challenge, 8);
    if (s->flags & NTLM_NEGOTIATE_ESS) {
        sl_slice parts[] = {{s->challenge, 8}, {s->lm_response.ptr, 8}};
        sasl_mech_hash("MD5", parts, 2, chal);
    }
    uint8_t want[24];
    desl(nt_hash, chal, want);
    bool ok = CRYPTO_memcmp(want, s->nt_response.ptr, sizeof(want)) == 0;
    explicit_bzero(want, sizeof(want));
    return ok;
}

static bool v2_ok_domain(const sasl_mech *m, const uint8_t nt_hash[16], sl_slice domain16)
{
    const sasl_ntlm_state *s = &m->u.ntlm;
    uint8_t upper[2 * SASL_USER_BYTES_MAX];
    for (size_t i = 0; i < s->user16.len; i += 2) {
        uint8_t lo = s->user16.ptr[i];
        uint8_t hi = s->user16.ptr[i + 1];
        upper[i] = hi == 0 && lo >= 'a' && lo <= 'z' ? (uint8_t)(lo - 32) : lo;
        upper[i + 1] = hi;
    }
    sl_slice id[] = {{upper, s->user16.len}, domain16};
    uint8_t ntowf2[16];
    sasl_mech_hmac("MD5", nt_hash, 16, id, 2, ntowf2);
    sl_slice msg[] = {{s->challenge, 8}, {s->nt_response.ptr + 16, s->nt_response.len - 16}};
    uint8_t proof[16];
    sasl_mech_hmac("MD5", ntowf2, sizeof(ntowf2), msg, 2, proof);
    bool ok = CRYPTO_memcmp(proof, s->nt_response.ptr, sizeof(proof)) == 0;
    explicit_bzero(ntowf2, sizeof(ntowf2));
    explicit_bzero(proof, sizeof(proof));
    return ok;
}

sasl_status sasl_ntlm_set_credentials(sasl_mech *m, const void *cred, size_t cred_len,
                                      sasl_out *out)
{
    if (cred_len != SASL_NTLM_CRED_BYTES) {
        return sasl_mech_fail(m, SASL_FAIL_STORED, out);
    }
    const sasl_ntlm_state *s = &m->u.ntlm;
    bool ok;
    if (s->nt_response.len == 24) {
        ok = v1_ok(m, cred);
    } else {
        bool with_domain = v2_ok_domain(m, cred, s->domain16);
        bool without = s->domain16.len > 0 && v2_ok_domain(m, cred, (sl_slice){NULL, 0});
        ok = with_domain || without;
    }
    if (!ok) {
        return sasl_mech_fail(m, SASL_FAIL_CREDENTIALS, out);
    }
    return sasl_mech_success(m, 0, out);
}
