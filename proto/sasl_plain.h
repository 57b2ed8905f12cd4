/* proto/sasl_plain.h: PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login), the two
 * mechanisms that hand the caller a plaintext password to check. Driven through
 * proto/sasl_mech.h; only sasl_mech.c calls these. */
#ifndef SL_SASL_PLAIN_H
#define SL_SASL_PLAIN_H

#include "proto/sasl_mech.h"

/* The prompts Dovecot sends for LOGIN (and Postfix relays as-is). */
#define SASL_LOGIN_PROMPT_USER "Username:"
#define SASL_LOGIN_PROMPT_PASS "Password:"

sasl_status sasl_plain_step(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out);
sasl_status sasl_plain_login_step(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out);

#endif
