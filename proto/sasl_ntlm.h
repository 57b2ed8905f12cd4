/* proto/sasl_ntlm.h: NTLM (MS-NLMP) over SASL, verifying NTLMv1, NTLM2 session and NTLMv2
 * responses from the NT hash. Driven through proto/sasl_mech.h; sasl_ntlm_hash is for the
 * password-scheme code and tests. */
#ifndef SL_SASL_NTLM_H
#define SL_SASL_NTLM_H

#include "proto/sasl_mech.h"

/* The NT hash MD4(UTF-16LE(password)) of a UTF-8 password. False if the password is not
 * valid UTF-8 (out is then zeroed). Pure; any thread. */
bool sasl_ntlm_hash(sl_slice password, uint8_t out[SASL_NTLM_CRED_BYTES]);

sasl_status sasl_ntlm_step(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out);
sasl_status sasl_ntlm_set_credentials(sasl_mech *m, const void *cred, size_t cred_len,
                                      sasl_out *out);

#endif
