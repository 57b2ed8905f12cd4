/* proto/sasl_scram.h: SCRAM-SHA-1 (RFC 5802) and SCRAM-SHA-256 (RFC 7677) without channel
 * binding, against Dovecot's {SCRAM-SHA-*} stored keys. Driven through proto/sasl_mech.h;
 * sasl_scram_derive is for the password-scheme code and tests. */
#ifndef SL_SASL_SCRAM_H
#define SL_SASL_SCRAM_H

#include "proto/sasl_mech.h"

/* Derive the stored form from a plaintext: SaltedPassword = PBKDF2-HMAC(password, salt,
 * iterations), StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey =
 * HMAC(SaltedPassword, "Server Key"). kind is SASL_CRED_SCRAM_SHA1 or _SHA256; salt_len
 * 1..SASL_SCRAM_SALT_BYTES_MAX, iterations >= 1 (contract). The password is used as given:
 * no SASLprep (see sasl_scram.c). Pure; any thread. */
void sasl_scram_derive(sasl_cred_kind kind, sl_slice password, const uint8_t *salt, size_t salt_len,
                       uint32_t iterations, sasl_scram_cred *out);

sasl_status sasl_scram_step(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out);
sasl_status sasl_scram_set_credentials(sasl_mech *m, const void *cred, size_t cred_len,
                                       sasl_out *out);

#endif
