/* proto/sasl_digest.h: DIGEST-MD5 (RFC 2831), authentication only (qop=auth), against
 * Dovecot's {DIGEST-MD5} stored MD5("user:realm:password"). Driven through
 * proto/sasl_mech.h; sasl_digest_md5_secret is for the password-scheme code and tests. */
#ifndef SL_SASL_DIGEST_H
#define SL_SASL_DIGEST_H

#include "proto/sasl_mech.h"

/* MD5("user:realm:password"), the 16 bytes Dovecot stores hex-encoded as {DIGEST-MD5}
 * (doveadm pw -u user@realm splits the name at '@': user is the part before it). When a
 * password store holds plaintext, call it with out.digest_username and out.realm from
 * SASL_NEED_CREDENTIALS. Pure; any thread. */
void sasl_digest_md5_secret(sl_slice user, sl_slice realm, sl_slice password,
                            uint8_t out[SASL_DIGEST_MD5_CRED_BYTES]);

sasl_status sasl_digest_step(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out);
sasl_status sasl_digest_set_credentials(sasl_mech *m, const void *cred, size_t cred_len,
                                        sasl_out *out);

#endif
