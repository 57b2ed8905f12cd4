/* proto/sasl_mech.c: the mechanism table, the state checks every step goes through, and the
 * small helpers the mechanism files share (bounded writer, base64, hex, HMAC). The
 * mechanisms themselves live in one file per family: sasl_plain.c, sasl_cram.c,
 * sasl_digest.c, sasl_scram.c, sasl_ntlm.c. */
#include "proto/sasl_mech.h"

#include "core/base/base64.h"
#include "core/base/hex.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "proto/sasl_cram.h"
#include "proto/sasl_digest.h"
#include "proto/sasl_ntlm.h"
#include "proto/sasl_plain.h"
#include "proto/sasl_scram.h"

/* Flags as Dovecot's mech-*.c modules declare them (reference protocols.md 3.2; NTLM from
 * mech-ntlm.c: dictionary, active). */
static const sasl_mech_info mech_table[SASL_MECH_COUNT] = {
    [SASL_MECH_PLAIN] = {SASL_MECH_PLAIN, "PLAIN", SASL_MECH_FLAG_PLAINTEXT, SASL_CRED_NONE},
    [SASL_MECH_LOGIN] = {SASL_MECH_LOGIN, "LOGIN", SASL_MECH_FLAG_PLAINTEXT, SASL_CRED_NONE},
    [SASL_MECH_CRAM_MD5] = {SASL_MECH_CRAM_MD5, "CRAM-MD5",
                            SASL_MECH_FLAG_DICTIONARY | SASL_MECH_FLAG_ACTIVE, SASL_CRED_CRAM_MD5},
    [SASL_MECH_DIGEST_MD5] = {SASL_MECH_DIGEST_MD5, "DIGEST-MD5",
                              SASL_MECH_FLAG_DICTIONARY | SASL_MECH_FLAG_ACTIVE |
                                  SASL_MECH_FLAG_MUTUAL_AUTH,
                              SASL_CRED_DIGEST_MD5},
    [SASL_MECH_SCRAM_SHA1] = {SASL_MECH_SCRAM_SHA1, "SCRAM-SHA-1", SASL_MECH_FLAG_MUTUAL_AUTH,
                              SASL_CRED_SCRAM_SHA1},
    [SASL_MECH_SCRAM_SHA256] = {SASL_MECH_SCRAM_SHA256, "SCRAM-SHA-256", SASL_MECH_FLAG_MUTUAL_AUTH,
                                SASL_CRED_SCRAM_SHA256},
    [SASL_MECH_NTLM] = {SASL_MECH_NTLM, "NTLM", SASL_MECH_FLAG_DICTIONARY | SASL_MECH_FLAG_ACTIVE,
                        SASL_CRED_NTLM},
};

static const char *const flag_names[SASL_MECH_FLAG_COUNT] = {
    "private", "anonymous", "plaintext", "dictionary", "active", "forward-secrecy", "mutual-auth",
};

const sasl_mech_info *sasl_mech_info_get(sasl_mech_id id)
{
    SL_ASSERT((unsigned)id < SASL_MECH_COUNT);
    return &mech_table[id];
}

const sasl_mech_info *sasl_mech_lookup(sl_slice name)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(mech_table); i++) {
        if (sl_slice_eq_nocase(name, mech_table[i].name)) {
            return &mech_table[i];
        }
    }
    return NULL;
}

const char *sasl_mech_flag_name(uint32_t flag)
{
    for (unsigned i = 0; i < SASL_MECH_FLAG_COUNT; i++) {
        if (flag == (1u << i)) {
            return flag_names[i];
        }
    }
    return NULL;
}

static size_t param_len(const char *s, size_t max)
{
    size_t n = s == NULL ? 0 : strnlen(s, max + 1);
    SL_ASSERT(n <= max);
    return n;
}

void sasl_mech_init(sasl_mech *m, sasl_mech_id id, const sasl_params *params, const uint8_t *random,
                    size_t random_len)
{
    SL_ASSERT((unsigned)id < SASL_MECH_COUNT);
    SL_ASSERT(random_len <= SASL_RANDOM_BYTES_MAX);
    SL_ASSERT(random != NULL || random_len == 0);
    if (id == SASL_MECH_NTLM) {
        SL_ASSERT(random_len >= 8);
    } else if (id == SASL_MECH_CRAM_MD5 || id == SASL_MECH_DIGEST_MD5 ||
               id == SASL_MECH_SCRAM_SHA1 || id == SASL_MECH_SCRAM_SHA256) {
        SL_ASSERT(random_len >= 1);
    }
    param_len(params->hostname, SASL_HOSTNAME_BYTES_MAX);
    param_len(params->realm, SASL_REALM_BYTES_MAX);
    param_len(params->digest_service, SASL_SERVICE_BYTES_MAX);

    explicit_bzero(m, sizeof(*m));
    m->id = id;
    m->params = *params;
    m->random_len = random_len;
    if (random_len > 0) {
        memcpy(m->random, random, random_len);
    }
}

static sasl_status dispatch_step(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out)
{
    switch (m->id) {
    case SASL_MECH_PLAIN:
        return sasl_plain_step(m, in, in_len, out);
    case SASL_MECH_LOGIN:
        return sasl_plain_login_step(m, in, in_len, out);
    case SASL_MECH_CRAM_MD5:
        return sasl_cram_step(m, in, in_len, out);
    case SASL_MECH_DIGEST_MD5:
        return sasl_digest_step(m, in, in_len, out);
    case SASL_MECH_SCRAM_SHA1:
    case SASL_MECH_SCRAM_SHA256:
        return sasl_scram_step(m, in, in_len, out);
    case SASL_MECH_NTLM:
        return sasl_ntlm_step(m, in, in_len, out);
    case SASL_MECH_COUNT:
        break;
    }
    SL_ASSERT(!"unknown mechanism");
    return SASL_FAIL;
}

sasl_status sasl_mech_step(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out)
{
    SL_ASSERT(m->waiting == 0);
    SL_ASSERT(in != NULL || in_len == 0);
    if (m->done) {
        return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
    }
    if (m->final_pending) {
        /* The reply to a final message sent as a challenge must be empty. */
        m->final_pending = false;
        if (in_len != 0) {
            return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
        }
        return sasl_mech_success(m, 0, out);
    }
    if (in_len > SASL_INPUT_BYTES_MAX) {
        return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
    }
    return dispatch_step(m, in, in_len, out);
}

sasl_status sasl_mech_verify_result(sasl_mech *m, bool ok, sasl_out *out)
{
    SL_ASSERT(m->waiting == SASL_NEED_VERIFY_PLAIN);
    m->waiting = 0;
    if (m->password.len > 0) {
        explicit_bzero((void *)m->password.ptr, m->password.len);
    }
    m->password = (sl_slice){0};
    if (!ok) {
        return sasl_mech_fail(m, SASL_FAIL_CREDENTIALS, out);
    }
    return sasl_mech_success(m, 0, out);
}

sasl_status sasl_mech_set_credentials(sasl_mech *m, sasl_cred_kind kind, const void *cred,
                                      size_t cred_len, sasl_out *out)
{
    SL_ASSERT(m->waiting == SASL_NEED_CREDENTIALS);
    SL_ASSERT(kind == mech_table[m->id].cred);
    SL_ASSERT(cred != NULL || cred_len == 0);
    m->waiting = 0;
    switch (m->id) {
    case SASL_MECH_CRAM_MD5:
        return sasl_cram_set_credentials(m, cred, cred_len, out);
    case SASL_MECH_DIGEST_MD5:
        return sasl_digest_set_credentials(m, cred, cred_len, out);
    case SASL_MECH_SCRAM_SHA1:
    case SASL_MECH_SCRAM_SHA256:
        return sasl_scram_set_credentials(m, cred, cred_len, out);
    case SASL_MECH_NTLM:
        return sasl_ntlm_set_credentials(m, cred, cred_len, out);
    default:
        break;
    }
    SL_ASSERT(!"mechanism takes no credentials");
    return SASL_FAIL;
}

void sasl_mech_clear(sasl_mech *m)
{
    explicit_bzero(m, sizeof(*m));
}

/* ---- finishing a step ---- */

static void fill_identity(const sasl_mech *m, sasl_out *out)
{
    out->authcid = m->authcid;
    out->authzid = m->authzid;
    out->realm = m->realm;
    out->digest_username = m->digest_username;
}

sasl_status sasl_mech_challenge(sasl_mech *m, size_t out_len, sasl_out *out)
{
    SL_ASSERT(out_len <= sizeof(m->out));
    *out = (sasl_out){0};
    fill_identity(m, out);
    out->data = (sl_slice){m->out, out_len};
    return SASL_CHALLENGE;
}

sasl_status sasl_mech_fail(sasl_mech *m, sasl_fail_reason reason, sasl_out *out)
{
    SL_ASSERT(reason != SASL_FAIL_NONE);
    m->done = true;
    m->waiting = 0;
    m->final_pending = false;
    *out = (sasl_out){0};
    fill_identity(m, out);
    out->reason = reason;
    return SASL_FAIL;
}

sasl_status sasl_mech_need(sasl_mech *m, sasl_status need, sasl_cred_kind kind, sasl_out *out)
{
    SL_ASSERT(need == SASL_NEED_VERIFY_PLAIN || need == SASL_NEED_CREDENTIALS);
    SL_ASSERT(m->authcid.len > 0);
    m->waiting = need;
    *out = (sasl_out){0};
    fill_identity(m, out);
    out->password = m->password;
    out->cred_kind = kind;
    return need;
}

sasl_status sasl_mech_success(sasl_mech *m, size_t final_len, sasl_out *out)
{
    SL_ASSERT(final_len <= sizeof(m->out));
    if (final_len > 0 && (m->params.options & SASL_OPT_FINAL_AS_CHALLENGE) != 0) {
        m->final_pending = true;
        return sasl_mech_challenge(m, final_len, out);
    }
    m->done = true;
    *out = (sasl_out){0};
    fill_identity(m, out);
    out->data = (sl_slice){m->out, final_len};
    return SASL_OK;
}

bool sasl_mech_authzid_ok(const sasl_mech *m, sl_slice authcid, sl_slice authzid)
{
    if (authzid.len == 0) {
        return true;
    }
    if (authzid.len == authcid.len && memcmp(authzid.ptr, authcid.ptr, authcid.len) == 0) {
        return true;
    }
    return (m->params.options & SASL_OPT_ALLOW_AUTHZID) != 0;
}

bool sasl_mech_keep(sasl_mech *m, const void *p, size_t n, sl_slice *slice_out)
{
    if (n > sizeof(m->store) - m->store_len) {
        return false;
    }
    uint8_t *dst = m->store + m->store_len;
    if (n > 0) {
        memcpy(dst, p, n);
    }
    m->store_len += n;
    *slice_out = (sl_slice){dst, n};
    return true;
}

/* ---- writer ---- */

void sasl_wbuf_init(sasl_wbuf *w, uint8_t *ptr, size_t cap)
{
    *w = (sasl_wbuf){.ptr = ptr, .cap = cap};
}

void sasl_wbuf_put(sasl_wbuf *w, const void *p, size_t n)
{
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    if (n > 0) {
        memcpy(w->ptr + w->len, p, n);
    }
    w->len += n;
}

void sasl_wbuf_str(sasl_wbuf *w, const char *s)
{
    sasl_wbuf_put(w, s, strlen(s));
}

void sasl_wbuf_u64(sasl_wbuf *w, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    sasl_wbuf_put(w, tmp + i, sizeof(tmp) - i);
}

void sasl_wbuf_hex(sasl_wbuf *w, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char two[2];
        sl_hex_encode(p + i, 1, two);
        sasl_wbuf_put(w, two, 2);
    }
}

const char sasl_mech_b64_alphabet[65] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void sasl_wbuf_b64(sasl_wbuf *w, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i += 3) {
        uint8_t four[4];
        ptrdiff_t len = sl_base64_encode(p + i, SL_MIN(n - i, (size_t)3), four, sizeof(four));
        SL_ASSERT(len == 4);
        sasl_wbuf_put(w, (const char *)four, 4);
    }
}

bool sasl_mech_b64_decode(sl_slice in, uint8_t *out, size_t cap, size_t *len_out)
{
    ptrdiff_t n = sl_base64_decode(in.ptr, in.len, out, cap);
    if (n < 0) {
        return false;
    }
    *len_out = (size_t)n;
    return true;
}

bool sasl_mech_hex_decode(sl_slice in, uint8_t *out, size_t n)
{
    return in.len == 2 * n && sl_hex_decode((const char *)in.ptr, in.len, out, n) == (ptrdiff_t)n;
}

/* ---- hashing ---- */

void sasl_mech_hmac(const char *md, const uint8_t *key, size_t key_len, const sl_slice *parts,
                    size_t n, uint8_t *out)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    SL_ASSERT(mac != NULL);
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    SL_ASSERT(ctx != NULL);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)md, 0),
        OSSL_PARAM_construct_end(),
    };
    int ok = EVP_MAC_init(ctx, key, key_len, params);
    SL_ASSERT(ok == 1);
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len > 0) {
            ok = EVP_MAC_update(ctx, parts[i].ptr, parts[i].len);
            SL_ASSERT(ok == 1);
        }
    }
    size_t out_len = 0;
    ok = EVP_MAC_final(ctx, out, &out_len, EVP_MAX_MD_SIZE);
    SL_ASSERT(ok == 1);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
}

void sasl_mech_hash(const char *md, const sl_slice *parts, size_t n, uint8_t *out)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    SL_ASSERT(ctx != NULL);
    int ok = EVP_DigestInit_ex2(ctx, EVP_get_digestbyname(md), NULL);
    SL_ASSERT(ok == 1);
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len > 0) {
            ok = EVP_DigestUpdate(ctx, parts[i].ptr, parts[i].len);
            SL_ASSERT(ok == 1);
        }
    }
    ok = EVP_DigestFinal_ex(ctx, out, NULL);
    SL_ASSERT(ok == 1);
    EVP_MD_CTX_free(ctx);
}
