/* tests/fuzz/fuzz_sasl_mech.c: libFuzzer target for the SASL mechanisms (proto/sasl_*.c).
 *
 * Each input is one exchange with one mechanism, driven as the SMTP AUTH endpoint would:
 * client messages are stepped in order, every SASL_NEED_CREDENTIALS gets the fixed
 * credential of its kind and every SASL_NEED_VERIFY_PLAIN a verdict from the flags. The
 * random bytes, realm, hostname and credentials are those of the published exchanges (RFC
 * 2195, 2831, 5802, 7677, MS-NLMP 4.2), so seeds made from them run to success and the
 * fuzzer mutates from there. Each message lives in its own heap buffer, freed right after
 * its step, so an output slice into the input would be a use-after-free. Checked besides
 * the mechanisms' own assertions: statuses and reasons agree, every output slice lies in
 * the mechanism, credentials are asked for by the right kind, OK and FAIL are final.
 *
 * Input layout: byte 0 = mechanism (mod SASL_MECH_COUNT), byte 1 = flags (bit 0: allow
 * authzid, bit 1: final message as challenge, bit 2: plaintext verdict ok, bit 3: give a
 * credential of the wrong size), then client messages separated by the three bytes
 * 0x7f '~' 0x7f. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/base.h"
#include "proto/sasl_cram.h"
#include "proto/sasl_digest.h"
#include "proto/sasl_mech.h"
#include "proto/sasl_ntlm.h"
#include "proto/sasl_scram.h"

#define HEADER_BYTES 2
#define MESSAGES_MAX 8

static const uint8_t separator[3] = {0x7f, '~', 0x7f};

typedef struct fuzz_creds {
    bool ready;
    uint8_t cram[SASL_CRAM_MD5_CRED_BYTES];
    uint8_t digest[SASL_DIGEST_MD5_CRED_BYTES];
    uint8_t ntlm[SASL_NTLM_CRED_BYTES];
    sasl_scram_cred scram1;
    sasl_scram_cred scram256;
} fuzz_creds;

static fuzz_creds creds;

static size_t b64(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    bool ok = sasl_mech_b64_decode((sl_slice){(const uint8_t *)s, strlen(s)}, out, cap, &n);
    SL_ASSERT(ok);
    return n;
}

/* PBKDF2 is slow on purpose: derive the SCRAM keys once. */
static void creds_init(void)
{
    if (creds.ready) {
        return;
    }
    sasl_cram_md5_context((const uint8_t *)"tanstaaftanstaaf", 16, creds.cram);
    sasl_digest_md5_secret(SL_SLICE_LIT("chris"), SL_SLICE_LIT("elwood.innosoft.com"),
                           SL_SLICE_LIT("secret"), creds.digest);
    bool ok = sasl_ntlm_hash(SL_SLICE_LIT("Password"), creds.ntlm);
    SL_ASSERT(ok);
    uint8_t salt[32];
    size_t n = b64("QSXCR+Q6sek8bf92", salt, sizeof(salt));
    sasl_scram_derive(SASL_CRED_SCRAM_SHA1, SL_SLICE_LIT("pencil"), salt, n, 4096, &creds.scram1);
    n = b64("W22ZaJ0SNY7soEsUEjb6gQ==", salt, sizeof(salt));
    sasl_scram_derive(SASL_CRED_SCRAM_SHA256, SL_SLICE_LIT("pencil"), salt, n, 4096,
                      &creds.scram256);
    creds.ready = true;
}

/* The random bytes that reproduce each published exchange (see sasl_mech_init). */
static size_t random_for(sasl_mech_id id, uint8_t *out)
{
    const char *nonce = NULL;
    switch (id) {
    case SASL_MECH_CRAM_MD5:
        out[0] = 0x07;
        out[1] = 0x68;
        return 2;
    case SASL_MECH_NTLM:
        for (int i = 0; i < 8; i++) {
            out[i] = (uint8_t)(0x01 + 0x22 * i); /* 01 23 45 67 89 ab cd ef */
        }
        return 8;
    case SASL_MECH_DIGEST_MD5: {
        nonce = "OA6MG9tEQGm2hh";
        size_t n = strlen(nonce);
        for (size_t i = 0; i < n; i++) {
            out[i] = (uint8_t)(strchr(sasl_mech_b64_alphabet, nonce[i]) - sasl_mech_b64_alphabet);
        }
        return n;
    }
    case SASL_MECH_SCRAM_SHA1:
        nonce = "3rfcNHYJY1ZVvWVs7j";
        break;
    case SASL_MECH_SCRAM_SHA256:
        nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        break;
    default:
        return 0;
    }
    size_t n = strlen(nonce);
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)nonce[i];
        out[i] = (uint8_t)(c < ',' ? c - '!' : c - '!' - 1);
    }
    return n;
}

static void check_slice(const sasl_mech *m, sl_slice s)
{
    if (s.len == 0) {
        return;
    }
    const uint8_t *lo = (const uint8_t *)m;
    const uint8_t *hi = lo + sizeof(*m);
    if (!(s.ptr >= lo && s.ptr + s.len <= hi)) {
        abort();
    }
}

static void check_out(const sasl_mech *m, sasl_status st, const sasl_out *out)
{
    check_slice(m, out->data);
    check_slice(m, out->authcid);
    check_slice(m, out->authzid);
    check_slice(m, out->password);
    check_slice(m, out->realm);
    check_slice(m, out->digest_username);
    const sasl_mech_info *info = sasl_mech_info_get(m->id);
    switch (st) {
    case SASL_CHALLENGE:
        SL_ASSERT(out->reason == SASL_FAIL_NONE);
        break;
    case SASL_NEED_VERIFY_PLAIN:
        SL_ASSERT(info->cred == SASL_CRED_NONE);
        SL_ASSERT(out->authcid.len > 0);
        break;
    case SASL_NEED_CREDENTIALS:
        SL_ASSERT(out->cred_kind == info->cred && info->cred != SASL_CRED_NONE);
        SL_ASSERT(out->authcid.len > 0);
        break;
    case SASL_OK:
        SL_ASSERT(out->authcid.len > 0 && out->reason == SASL_FAIL_NONE);
        break;
    case SASL_FAIL:
        SL_ASSERT(out->reason != SASL_FAIL_NONE);
        break;
    default:
        abort();
    }
}

static sasl_status give_credentials(sasl_mech *m, uint8_t flags, sasl_out *out)
{
    sasl_cred_kind kind = sasl_mech_info_get(m->id)->cred;
    const void *cred = NULL;
    size_t len = 0;
    switch (kind) {
    case SASL_CRED_CRAM_MD5:
        cred = creds.cram;
        len = sizeof(creds.cram);
        break;
    case SASL_CRED_DIGEST_MD5:
        cred = creds.digest;
        len = sizeof(creds.digest);
        break;
    case SASL_CRED_NTLM:
        cred = creds.ntlm;
        len = sizeof(creds.ntlm);
        break;
    case SASL_CRED_SCRAM_SHA1:
        cred = &creds.scram1;
        len = sizeof(creds.scram1);
        break;
    case SASL_CRED_SCRAM_SHA256:
        cred = &creds.scram256;
        len = sizeof(creds.scram256);
        break;
    case SASL_CRED_NONE:
        abort();
    }
    if (flags & 8) {
        len--; /* unusable stored value */
    }
    return sasl_mech_set_credentials(m, kind, cred, len, out);
}

/* One step with its own heap copy of the message, then answer any NEED_* at once. */
static sasl_status drive(sasl_mech *m, uint8_t flags, const uint8_t *msg, size_t len)
{
    uint8_t *copy = malloc(len + 1);
    SL_ASSERT(copy != NULL);
    if (len > 0) {
        memcpy(copy, msg, len);
    }
    sasl_out out;
    sasl_status st = sasl_mech_step(m, len > 0 ? copy : NULL, len, &out);
    free(copy);
    check_out(m, st, &out);
    while (st == SASL_NEED_CREDENTIALS || st == SASL_NEED_VERIFY_PLAIN) {
        if (st == SASL_NEED_VERIFY_PLAIN) {
            st = sasl_mech_verify_result(m, (flags & 4) != 0, &out);
        } else {
            st = give_credentials(m, flags, &out);
        }
        check_out(m, st, &out);
    }
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HEADER_BYTES) {
        return 0;
    }
    creds_init();
    sasl_mech_id id = (sasl_mech_id)(data[0] % SASL_MECH_COUNT);
    uint8_t flags = data[1];
    sasl_params params = {
        .options = (flags & 1 ? SASL_OPT_ALLOW_AUTHZID : 0) |
                   (flags & 2 ? SASL_OPT_FINAL_AS_CHALLENGE : 0),
        .hostname = "postoffice.reston.mci.net",
        .realm = "elwood.innosoft.com",
        .digest_service = "imap",
        .timestamp_s = 697170952,
    };
    uint8_t random[SASL_RANDOM_BYTES_MAX];
    size_t random_len = random_for(id, random);
    static sasl_mech m;
    sasl_mech_init(&m, id, &params, random, random_len);

    const uint8_t *p = data + HEADER_BYTES;
    size_t left = size - HEADER_BYTES;
    bool ended = false;
    for (int i = 0; i < MESSAGES_MAX; i++) {
        size_t n = left;
        for (size_t k = 0; k + sizeof(separator) <= left; k++) {
            if (memcmp(p + k, separator, sizeof(separator)) == 0) {
                n = k;
                break;
            }
        }
        sasl_status st = drive(&m, flags, p, n);
        if (ended) {
            SL_ASSERT(st == SASL_FAIL); /* nothing moves after OK or FAIL */
        }
        ended = ended || st == SASL_OK || st == SASL_FAIL;
        if (n == left) {
            break;
        }
        p += n + sizeof(separator);
        left -= n + sizeof(separator);
    }
    sasl_mech_clear(&m);
    return 0;
}
