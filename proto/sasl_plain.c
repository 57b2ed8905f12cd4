/* proto/sasl_plain.c: PLAIN and LOGIN. Both end in SASL_NEED_VERIFY_PLAIN: the caller owns
 * the password schemes, so the mechanism only splits and bounds the fields and copies them
 * into the mechanism (the caller's input buffer may go away before the check finishes). */
#include "proto/sasl_plain.h"

#include <string.h>

enum { PLAIN_START = 0, PLAIN_WAIT_MESSAGE };
enum { LOGIN_START = 0, LOGIN_WAIT_USER, LOGIN_WAIT_PASS };

static bool has_nul(const uint8_t *p, size_t n)
{
    return n > 0 && memchr(p, '\0', n) != NULL;
}

/* RFC 4616: message = [authzid] NUL authcid NUL passwd. Exactly two NULs; authcid and
 * passwd non-empty. */
static sasl_status plain_message(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out)
{
    const uint8_t *nul1 = in_len > 0 ? memchr(in, '\0', in_len) : NULL;
    if (nul1 == NULL) {
        return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
    }
    size_t zid_len = (size_t)(nul1 - in);
    const uint8_t *cid = nul1 + 1;
    size_t rest = in_len - zid_len - 1;
    const uint8_t *nul2 = rest > 0 ? memchr(cid, '\0', rest) : NULL;
    if (nul2 == NULL) {
        return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
    }
    size_t cid_len = (size_t)(nul2 - cid);
    const uint8_t *pw = nul2 + 1;
    size_t pw_len = rest - cid_len - 1;
    if (has_nul(pw, pw_len) || cid_len == 0 || pw_len == 0 || zid_len > SASL_USER_BYTES_MAX ||
        cid_len > SASL_USER_BYTES_MAX || pw_len > SASL_PASSWORD_BYTES_MAX) {
        return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
    }
    if (!sasl_mech_authzid_ok(m, (sl_slice){cid, cid_len}, (sl_slice){in, zid_len})) {
        return sasl_mech_fail(m, SASL_FAIL_AUTHZID, out);
    }
    bool kept = sasl_mech_keep(m, cid, cid_len, &m->authcid) &&
                sasl_mech_keep(m, in, zid_len, &m->authzid) &&
                sasl_mech_keep(m, pw, pw_len, &m->password);
    SL_ASSERT(kept); /* the limits above fit the store */
    return sasl_mech_need(m, SASL_NEED_VERIFY_PLAIN, SASL_CRED_NONE, out);
}

sasl_status sasl_plain_step(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out)
{
    if (m->step == PLAIN_START && in_len == 0) {
        /* No initial response: ask for the message with an empty challenge. */
        m->step = PLAIN_WAIT_MESSAGE;
        return sasl_mech_challenge(m, 0, out);
    }
    m->step = PLAIN_WAIT_MESSAGE;
    return plain_message(m, in, in_len, out);
}

static sasl_status login_prompt(sasl_mech *m, const char *prompt, sasl_out *out)
{
    size_t n = strlen(prompt);
    memcpy(m->out, prompt, n);
    return sasl_mech_challenge(m, n, out);
}

static sasl_status login_user(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out)
{
    if (in_len == 0 || in_len > SASL_USER_BYTES_MAX || has_nul(in, in_len)) {
        return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
    }
    bool kept = sasl_mech_keep(m, in, in_len, &m->authcid);
    SL_ASSERT(kept);
    m->step = LOGIN_WAIT_PASS;
    return login_prompt(m, SASL_LOGIN_PROMPT_PASS, out);
}

sasl_status sasl_plain_login_step(sasl_mech *m, const uint8_t *in, size_t in_len, sasl_out *out)
{
    switch (m->step) {
    case LOGIN_START:
        if (in_len > 0) {
            return login_user(m, in, in_len, out); /* initial response = user name */
        }
        m->step = LOGIN_WAIT_USER;
        return login_prompt(m, SASL_LOGIN_PROMPT_USER, out);
    case LOGIN_WAIT_USER:
        return login_user(m, in, in_len, out);
    case LOGIN_WAIT_PASS:
        if (in_len > SASL_PASSWORD_BYTES_MAX || has_nul(in, in_len)) {
            return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
        }
        bool kept = sasl_mech_keep(m, in, in_len, &m->password);
        SL_ASSERT(kept);
        return sasl_mech_need(m, SASL_NEED_VERIFY_PLAIN, SASL_CRED_NONE, out);
    default:
        break;
    }
    return sasl_mech_fail(m, SASL_FAIL_SYNTAX, out);
}
