/* proto/sasl_digest.c: DIGEST-MD5 (RFC 2831), authentication only.
 *
 * The server offers one realm, a nonce, qop="auth" and md5-sess; the client's directives are
 * parsed strictly enough to be unambiguous (quoted strings with backslash escapes, empty list
 * elements, whitespace around '=' and ',', every known directive at most once, no NUL) and
 * leniently where RFC 2831 clients differ (quoted or bare values, unknown directives
 * ignored). Subsequent authentication is not offered, so nc must be 00000001. The digest-uri
 * serv-type must be params.digest_service ("smtp" for SMTP AUTH); its host part is not
 * checked, as in Dovecot, because the realm already binds the credential.
 *
 * The credential is Dovecot's MD5(user:realm:password); like Dovecot, the lookup name is
 * "user@realm" when the client sent a non-empty realm and a user name without '@'. User
 * names and passwords are taken as bytes: with charset=utf-8 they are UTF-8; without it
 * ISO-8859-1 is not converted (same bytes for ASCII). */
#include "proto/sasl_digest.h"

#include <string.h>

#include <openssl/crypto.h>

enum { DIGEST_START = 0, DIGEST_WAIT_RESPONSE };

#define DIGEST_NONCE_CHARS_MAX SASL_RANDOM_BYTES_MAX
#define DIGEST_CNONCE_BYTES_MAX 256
#define DIGEST_URI_BYTES_MAX 512
#define DIGEST_VALUE_BYTES_MAX 1024

void sasl_digest_md5_secret(sl_slice user, sl_slice realm, sl_slice password,
                            uint8_t out[SASL_DIGEST_MD5_CRED_BYTES])
{
    sl_slice parts[] = {user, SL_SLICE_LIT(":"), realm, SL_SLICE_LIT(":"), password};
    sasl_mech_hash("MD5", parts, SL_ARRAY_LEN(parts), out);
}

/* ---- challenge ---- */

static void put_quoted(sasl_wbuf *w, const char *s)
{
    sasl_wbuf_str(w, "\"");
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\') {
            sasl_wbuf_str(w, "\\");
        }
        sasl_wbuf_put(w, s, 1);
    }
    sasl_wbuf_str(w, "\"");
}

static sasl_status digest_challenge(sasl_mech *m, sasl_out *out)
{
    char nonce[DIGEST_NONCE_CHARS_MAX];
    for (size_t i = 0; i < m->random_len; i++) {
        nonce[i] = sasl_mech_b64_alphabet[m->random[i] % 64];
    }
    bool kept = sasl_mech_keep(m, nonce, m->random_len, &m->u.digest.nonce);
    SL_ASSERT(kept);

    sasl_wbuf w;
    sasl_wbuf_init(&w, m->out, sizeof(m->out));
    sasl_wbuf_str(&w, "realm=");
    put_quoted(&w, m->params.realm != NULL ? m->params.realm : "");
    sasl_wbuf_str(&w, ",nonce=\"");
    sasl_wbuf_put(&w, nonce, m->random_len);
    sasl_wbuf_str(&w, "\",qop=\"auth\",algorithm=md5-sess,charset=utf-8");
    SL_ASSERT(!w.overflow); /* realm and nonce are bounded by init */
    m->step = DIGEST_WAIT_RESPONSE;
    return sasl_mech_challenge(m, w.len, out);
}

/* ---- directive parser ---- */

typedef struct digest_fields {
    sl_slice username, realm, nonce, cnonce, nc, qop, digest_uri, response, maxbuf, charset,
        authzid;
    bool has_username, has_realm, has_nonce, has_cnonce, has_nc, has_qop, has_digest_uri,
        has_response, has_maxbuf, has_charset, has_authzid, has_cipher;
} digest_fields;

typedef struct digest_lexer {
    const uint8_t *in;
    size_t len;
    size_t pos;
    uint8_t *scratch; /* unescaped values, one after the other */
    size_t scratch_len;
    size_t scratch_cap;
} digest_lexer;

static bool is_lws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* RFC 2616 token characters. */
static bool is_tchar(uint8_t c)
{
    if (c <= 0x20 || c >= 0x7f) {
        return false;
    }
    return strchr("()<>@,;:\\\"/[]?={}", c) == NULL;
}

static void skip_lws(digest_lexer *lx)
{
    while (lx->pos < lx->len && is_lws(lx->in[lx->pos])) {
        lx->pos++;
    }
}

/* A quoted-string (escapes removed, copied to scratch) or a bare value (a slice of the
 * input: anything up to ',' or whitespace, no quote or control). */
static bool lex_value(digest_lexer *lx, sl_slice *value_out)
{
    if (lx->pos < lx->len && lx->in[lx->pos] == '"') {
        lx->pos++;
        uint8_t *start = lx->scratch + lx->scratch_len;
        size_t n = 0;
        for (;;) {
            if (lx->pos >= lx->len) {
                return false; /* unterminated */
            }
            uint8_t c = lx->in[lx->pos++];
            if (c == '"') {
                break;
            }
            if (c == '\\') {
                if (lx->pos >= lx->len) {
                    return false;
                }
                c = lx->in[lx->pos++];
            }
            if (lx->scratch_len + n >= lx->scratch_cap) {
                return false;
            }
            start[n++] = c;
        }
        lx->scratch_len += n;
        *value_out = (sl_slice){start, n};
        return true;
    }
    size_t start = lx->pos;
    while (lx->pos < lx->len) {
        uint8_t c = lx->in[lx->pos];
        if (c == ',' || is_lws(c)) {
            break;
        }
        if (c == '"' || c < 0x20 || c == 0x7f) {
            return false;
        }
        lx->pos++;
    }
    *value_out = (sl_slice){lx->in + start, lx->pos - start};
    return lx->pos > start;
}

/* Record one directive; false on a duplicate. Unknown directives are ignored. */
static bool take_field(digest_fields *f, sl_slice key, sl_slice value)
{
    static const struct {
        const char *name;
        size_t seen_off;
        size_t value_off;
    } known[] = {
#define DIGEST_FIELD(n, m) {n, offsetof(digest_fields, has_##m), offsetof(digest_fields, m)}
        DIGEST_FIELD("username", username),
        DIGEST_FIELD("realm", realm),
        DIGEST_FIELD("nonce", nonce),
        DIGEST_FIELD("cnonce", cnonce),
        DIGEST_FIELD("nc", nc),
        DIGEST_FIELD("qop", qop),
        DIGEST_FIELD("digest-uri", digest_uri),
        DIGEST_FIELD("response", response),
        DIGEST_FIELD("maxbuf", maxbuf),
        DIGEST_FIELD("charset", charset),
        DIGEST_FIELD("authzid", authzid),
#undef DIGEST_FIELD
    };
    if (sl_slice_eq_nocase(key, "cipher")) {
        if (f->has_cipher) {
            return false;
        }
        f->has_cipher = true; /* only with auth-conf, which is not offered */
        return true;
    }
    for (size_t i = 0; i < SL_ARRAY_LEN(known); i++) {
        if (!sl_slice_eq_nocase(key, known[i].name)) {
            continue;
        }
        bool *seen = (bool *)((char *)f + known[i].seen_off);
        if (*seen) {
            return false;
        }
        *seen = true;
        *(sl_slice *)((char *)f + known[i].value_off) = value;
        return true;
    }
    return true;
}

static bool parse_directives(digest_lexer *lx, digest_fields *f)
{
    for (;;) {
        skip_lws(lx);
        if (lx->pos >= lx->len) {
            return true;
        }
        if (lx->in[lx->pos] == ',') {
            lx->pos++; /* empty list element */
            continue;
        }
        size_t key_start = lx->pos;
        while (lx->pos < lx->len && is_tchar(lx->in[lx->pos])) {
            lx->pos++;
        }
        sl_slice key = {lx->in + key_start, lx->pos - key_start};
        skip_lws(lx);
        if (key.len == 0 || lx->pos >= lx->len || lx->in[lx->pos] != '=') {
            return false;
        }
        lx->pos++;
        skip_lws(lx);
        sl_slice value;
        if (!lex_value(lx, &value)) {
            return false;
        }
        skip_lws(lx);
        if (lx->pos < lx->len && lx->in[lx->pos] != ',') {
            return false;
        }
        if (!take_field(f, key, value)) {
            return false;
        }
    }
}

/* ---- checks ---- */

static bool slice_eq(sl_slice a, sl_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static bool has_byte(sl_slice s, uint8_t c)
{
    return s.len > 0 && memchr(s.ptr, c, s.len) != NULL;
}

/* digest-uri = serv-type "/" host [ "/" serv-name ], serv-type as configured. */
static sasl_fail_reason check_digest_uri(const sasl_mech *m, sl_slice uri)
{
    const uint8_t *slash = uri.len > 0 ? memchr(uri.ptr, '/', uri.len) : NULL;
    if (slash == NULL || slash == uri.ptr || slash + 1 == uri.ptr + uri.len || slash[1] == '/') {
        return SASL_FAIL_SYNTAX;
    }
    sl_slice serv_type = {uri.ptr, (size_t)(slash - uri.ptr)};
    const char *want = m->params.digest_service;
    if (want != NULL && want[0] != '\0' && !sl_slice_eq_nocase(serv_type, want)) {
        return SASL_FAIL_CREDENTIALS;
    }
    return SASL_FAIL_NONE;
}

static sasl_fail_reason check_fields(const sasl_mech *m, const digest_fields *f)
{
    if (!f->has_username || !f->has_nonce || !f->has_cnonce || !f->has_nc || !f->has_digest_uri ||
        !f->has_response) {
        return SASL_FAIL_SYNTAX;
    }
    if (f->username.len == 0 || f->username.len > SASL_USER_BYTES_MAX ||
        f->realm.len > SASL_REALM_BYTES_MAX || f->cnonce.len == 0 ||
        f->cnonce.len > DIGEST_CNONCE_BYTES_MAX || f->digest_uri.len > DIGEST_URI_BYTES_MAX ||
        f->authzid.len > SASL_USER_BYTES_MAX || (f->has_authzid && f->authzid.len == 0)) {
        return SASL_FAIL_SYNTAX;
    }
    if (f->has_charset && !sl_slice_eq_nocase(f->charset, "utf-8")) {
        return SASL_FAIL_SYNTAX;
    }
    if (f->has_qop && !sl_slice_eq_nocase(f->qop, "auth")) {
        if (sl_slice_eq_nocase(f->qop, "auth-int") || sl_slice_eq_nocase(f->qop, "auth-conf")) {
            return SASL_FAIL_UNSUPPORTED;
        }
        return SASL_FAIL_SYNTAX;
    }
    uint8_t nc[4];
    if (!sasl_mech_hex_decode(f->nc, nc, sizeof(nc))) {
        return SASL_FAIL_SYNTAX;
    }
    if (nc[0] != 0 || nc[1] != 0 || nc[2] != 0 || nc[3] != 1) {
        return SASL_FAIL_UNSUPPORTED; /* subsequent authentication is not offered */
    }
    if (!slice_eq(f->nonce, m->u.digest.nonce)) {
        return SASL_FAIL_CREDENTIALS; /* a nonce from another exchange: replay */
    }
    return check_digest_uri(m, f->digest_uri);
}

/* Copy what set_credentials needs into the mechanism: the caller's input goes away. */
static bool keep_fields(sasl_mech *m, const digest_fields *f)
{
    sasl_digest_state *d = &m->u.digest;
    sl_slice qop = f->has_qop ? f->qop : SL_SLICE_LIT("auth");
    bool ok = sasl_mech_keep(m, f->username.ptr, f->username.len, &m->digest_username) &&
              sasl_mech_keep(m, f->realm.ptr, f->realm.len, &m->realm) &&
              sasl_mech_keep(m, f->authzid.ptr, f->authzid.len, &m->authzid) &&
              sasl_mech_keep(m, f->cnonce.ptr, f->cnonce.len, &d->cnonce) &&
              sasl_mech_keep(m, f->nc.ptr, f->nc.len, &d->nc) &&
              sasl_mech_keep(m, qop.ptr, qop.len, &d->qop) &&
              sasl_mech_keep(m, f->digest_uri.ptr, f->digest_uri.len, &d->digest_uri);
    if (!ok) {
        return false;
    }
    /* The lookup name: user@realm as Dovecot forms it. */
    size_t start = m->store_len;
    ok = sasl_mech_keep(m, f->username.ptr, f->username.len, &m->authcid);
    if (ok && f->realm.len > 0 && !has_byte(f->username, '@')) {
        sl_slice tail;
        ok = sasl_mech_keep(m, "@", 1, &tail) &&
             sasl_mech_keep(m, f->realm.ptr, f->realm.len, &tail);
        m->authcid = (sl_slice){m->store + start, m->store_len - start};
    }
    return ok;
}

static sasl_status digest_response(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out)
{
    if (in_len == 0 || memchr(in, '\0', in_len) != NULL) {
        return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
    }
    uint8_t scratch[SASL_INPUT_BYTES_MAX];
    digest_lexer lx = {.in = in, .len = in_len, .scratch = scratch, .scratch_cap = in_len};
    digest_fields f = {0};
    if (!parse_directives(&lx, &f)) {
        return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
    }
    sasl_fail_reason why = check_fields(m, &f);
    if (why == SASL_FAIL_NONE &&
        !sasl_mech_hex_decode(f.response, m->u.digest.response, sizeof(m->u.digest.response))) {
        why = SASL_FAIL_SYNTAX;
    }
    if (why == SASL_FAIL_NONE && !keep_fields(m, &f)) {
        why = SASL_FAIL_SYNTAX;
    }
    explicit_bzero(scratch, lx.scratch_len);
    if (why != SASL_FAIL_NONE) {
        return sasl_mech_fail(m, why, out);
    }
    if (!slice_eq(m->authzid, m->digest_username) &&
        !sasl_mech_authzid_ok(m, m->authcid, m->authzid)) {
        return sasl_mech_fail(m, SASL_FAIL_AUTHZID, out);
    }
    return sasl_mech_need(m, SASL_NEED_CREDENTIALS, SASL_CRED_DIGEST_MD5, out);
}

sasl_status sasl_digest_step(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out)
{
    if (m->step == DIGEST_START) {
        if (in_len != 0) {
            return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out); /* server-first mechanism */
        }
        return digest_challenge(m, out);
    }
    return digest_response(m, in, in_len, out);
}

/* ---- verification ---- */

static void hex32(const uint8_t digest[16], uint8_t out[32])
{
    sasl_wbuf w;
    sasl_wbuf_init(&w, out, 32);
    sasl_wbuf_hex(&w, digest, 16);
    SL_ASSERT(!w.overflow && w.len == 32);
}

/* KD(HEX(H(A1)), nonce:nc:cnonce:qop:HEX(H(a2_prefix digest-uri))) for the response
 * (prefix "AUTHENTICATE:") and for rspauth (prefix ":"). */
static void digest_kd(const sasl_mech *m, const uint8_t ha1_hex[32], sl_slice a2_prefix,
                      uint8_t out[16])
{
    const sasl_digest_state *d = &m->u.digest;
    sl_slice a2[] = {a2_prefix, d->digest_uri};
    uint8_t ha2[16];
    uint8_t ha2_hex[32];
    sasl_mech_hash("MD5", a2, SL_ARRAY_LEN(a2), ha2);
    hex32(ha2, ha2_hex);
    sl_slice colon = SL_SLICE_LIT(":");
    sl_slice kd[] = {{ha1_hex, 32}, colon, d->nonce, colon, d->nc,        colon,
                     d->cnonce,     colon, d->qop,   colon, {ha2_hex, 32}};
    sasl_mech_hash("MD5", kd, SL_ARRAY_LEN(kd), out);
}

sasl_status sasl_digest_set_credentials(sasl_mech *m, const void *cred, size_t cred_len,
                                        sasl_out *out)
{
    if (cred_len != SASL_DIGEST_MD5_CRED_BYTES) {
        return sasl_mech_fail(m, SASL_FAIL_STORED, out);
    }
    const sasl_digest_state *d = &m->u.digest;
    sl_slice colon = SL_SLICE_LIT(":");
    sl_slice a1[] = {{cred, cred_len}, colon, d->nonce, colon, d->cnonce, colon, m->authzid};
    uint8_t ha1[16];
    uint8_t ha1_hex[32];
    sasl_mech_hash("MD5", a1, m->authzid.len > 0 ? 7 : 5, ha1);
    hex32(ha1, ha1_hex);

    uint8_t want[16];
    digest_kd(m, ha1_hex, SL_SLICE_LIT("AUTHENTICATE:"), want);
    bool match = CRYPTO_memcmp(want, d->response, sizeof(want)) == 0;
    uint8_t rspauth[16];
    digest_kd(m, ha1_hex, colon, rspauth);
    explicit_bzero(ha1, sizeof(ha1));
    explicit_bzero(ha1_hex, sizeof(ha1_hex));
    if (!match) {
        return sasl_mech_fail(m, SASL_FAIL_CREDENTIALS, out);
    }
    sasl_wbuf w;
    sasl_wbuf_init(&w, m->out, sizeof(m->out));
    sasl_wbuf_str(&w, "rspauth=");
    sasl_wbuf_hex(&w, rspauth, sizeof(rspauth));
    SL_ASSERT(!w.overflow);
    return sasl_mech_success(m, w.len, out);
}
