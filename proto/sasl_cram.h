/* proto/sasl_cram.h: CRAM-MD5 (RFC 2195) against Dovecot's {CRAM-MD5} stored contexts.
 * Driven through proto/sasl_mech.h; sasl_cram_md5_context is for the password-scheme code
 * and tests. */
#ifndef SL_SASL_CRAM_H
#define SL_SASL_CRAM_H

#include "proto/sasl_mech.h"

/* The 32-byte context Dovecot stores as {CRAM-MD5} (64 hex digits) for a plaintext secret:
 * HMAC-MD5's outer then inner MD5 state words A, B, C, D after absorbing the padded key
 * (a key longer than 64 bytes is first replaced by its MD5, as HMAC does), each word
 * little-endian. Pure; any thread. */
void sasl_cram_md5_context(const uint8_t *secret, size_t secret_len,
                           uint8_t out[SASL_CRAM_MD5_CRED_BYTES]);

sasl_status sasl_cram_step(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out);
sasl_status sasl_cram_set_credentials(sasl_mech *m, const void *cred, size_t cred_len,
                                      sasl_out *out);

#endif
