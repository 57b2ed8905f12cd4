/* proto/sasl_cram.c: CRAM-MD5 (RFC 2195).
 *
 * Dovecot stores {CRAM-MD5} not as a password but as the two MD5 states HMAC-MD5 reaches
 * after absorbing the padded key, so verifying means resuming MD5 from a saved state. EVP
 * cannot be seeded with a state; OpenSSL's low-level MD5_CTX (deprecated in 3.0, still
 * exported) can, so the deprecation warning is silenced around those calls only.
 *
 * Exchange: server challenge "<random.timestamp@hostname>"; client "user SP hexdigest",
 * split at the rightmost space (a user name may contain spaces, as Dovecot allows). */
#include "proto/sasl_cram.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/md5.h>

enum { CRAM_START = 0, CRAM_WAIT_RESPONSE };

#define CRAM_BLOCK_BYTES 64

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

/* The MD5 state after one block of key ^ pad, as four words. */
static void absorb_pad(const uint8_t key[CRAM_BLOCK_BYTES], uint8_t pad, uint8_t out[16])
{
    uint8_t block[CRAM_BLOCK_BYTES];
    for (size_t i = 0; i < sizeof(block); i++) {
        block[i] = key[i] ^ pad;
    }
    MD5_CTX ctx;
    MD5_Init(&ctx);
    MD5_Update(&ctx, block, sizeof(block));
    put_le32(out, ctx.A);
    put_le32(out + 4, ctx.B);
    put_le32(out + 8, ctx.C);
    put_le32(out + 12, ctx.D);
    explicit_bzero(block, sizeof(block));
    explicit_bzero(&ctx, sizeof(ctx));
}

/* MD5 resumed from a saved state that has absorbed exactly one 64-byte block. */
static void resume_md5(const uint8_t state[16], const uint8_t *p, size_t n, uint8_t out[16])
{
    MD5_CTX ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.A = get_le32(state);
    ctx.B = get_le32(state + 4);
    ctx.C = get_le32(state + 8);
    ctx.D = get_le32(state + 12);
    ctx.Nl = CRAM_BLOCK_BYTES * 8; /* bit count so far */
    MD5_Update(&ctx, p, n);
    MD5_Final(out, &ctx);
    explicit_bzero(&ctx, sizeof(ctx));
}

#pragma GCC diagnostic pop

void sasl_cram_md5_context(const uint8_t *secret, size_t secret_len,
                           uint8_t out[SASL_CRAM_MD5_CRED_BYTES])
{
    SL_ASSERT(secret != NULL || secret_len == 0);
    uint8_t key[CRAM_BLOCK_BYTES] = {0};
    if (secret_len > CRAM_BLOCK_BYTES) {
        sl_slice part = {secret, secret_len};
        sasl_mech_hash("MD5", &part, 1, key);
    } else if (secret_len > 0) {
        memcpy(key, secret, secret_len);
    }
    absorb_pad(key, 0x5c, out);      /* outer first, as Dovecot stores it */
    absorb_pad(key, 0x36, out + 16); /* then inner */
    explicit_bzero(key, sizeof(key));
}

static sasl_status cram_challenge(sasl_mech *m, sasl_out *out)
{
    uint64_t r = 0;
    for (size_t i = 0; i < m->random_len && i < 8; i++) {
        r = r << 8 | m->random[i];
    }
    sasl_wbuf w;
    sasl_wbuf_init(&w, m->out, sizeof(m->out));
    sasl_wbuf_str(&w, "<");
    sasl_wbuf_u64(&w, r);
    sasl_wbuf_str(&w, ".");
    sasl_wbuf_u64(&w, m->params.timestamp_s);
    sasl_wbuf_str(&w, "@");
    sasl_wbuf_str(&w, m->params.hostname != NULL ? m->params.hostname : "");
    sasl_wbuf_str(&w, ">");
    SL_ASSERT(!w.overflow); /* hostname is bounded by init */
    bool kept = sasl_mech_keep(m, m->out, w.len, &m->u.cram.challenge);
    SL_ASSERT(kept);
    m->step = CRAM_WAIT_RESPONSE;
    return sasl_mech_challenge(m, w.len, out);
}

static sasl_status cram_response(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out)
{
    if (in_len == 0 || memchr(in, '\0', in_len) != NULL) {
        return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
    }
    size_t space = in_len;
    while (space > 0 && in[space - 1] != ' ') {
        space--;
    }
    if (space == 0) {
        return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out); /* no space: no digest */
    }
    size_t user_len = space - 1;
    sl_slice hex = {in + space, in_len - space};
    if (user_len == 0 || user_len > SASL_USER_BYTES_MAX ||
        !sasl_mech_hex_decode(hex, m->u.cram.response, sizeof(m->u.cram.response))) {
        return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
    }
    bool kept = sasl_mech_keep(m, in, user_len, &m->authcid);
    SL_ASSERT(kept);
    return sasl_mech_need(m, SASL_NEED_CREDENTIALS, SASL_CRED_CRAM_MD5, out);
}

sasl_status sasl_cram_step(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out)
{
    if (m->step == CRAM_START) {
        /* A server-first mechanism: an initial response is a protocol error. */
        if (in_len != 0) {
            return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
        }
        return cram_challenge(m, out);
    }
    return cram_response(m, in, in_len, out);
}

sasl_status sasl_cram_set_credentials(sasl_mech *m, const void *cred, size_t cred_len,
                                      sasl_out *out)
{
    if (cred_len != SASL_CRAM_MD5_CRED_BYTES) {
        return sasl_mech_fail(m, SASL_FAIL_STORED, out);
    }
    const uint8_t *ctx = cred;
    uint8_t inner[16];
    uint8_t digest[16];
    resume_md5(ctx + 16, m->u.cram.challenge.ptr, m->u.cram.challenge.len, inner);
    resume_md5(ctx, inner, sizeof(inner), digest);
    bool match = CRYPTO_memcmp(digest, m->u.cram.response, sizeof(digest)) == 0;
    explicit_bzero(inner, sizeof(inner));
    explicit_bzero(digest, sizeof(digest));
    if (!match) {
        return sasl_mech_fail(m, SASL_FAIL_CREDENTIALS, out);
    }
    return sasl_mech_success(m, 0, out);
}
