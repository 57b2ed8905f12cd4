/* proto/lmtp_reply.h: a connection's pending replies. Replies of pipelined
 * commands accumulate here and leave in one send (RFC 2920). While a send is
 * in flight its bytes stay put in the "sending" half; new replies go to the
 * other half. Mapping outcomes to reply texts happens in exactly one place
 * per outcome type, here. */
#ifndef SL_LMTP_REPLY_H
#define SL_LMTP_REPLY_H

#include "auth/userdb.h"
#include "core/base/base.h"
#include "proto/lmtp_parser.h"
#include "store/store.h"

#include <stddef.h>

typedef struct lmtp_out {
    char *buf;
    size_t len;
    size_t cap;
    char *sending;
    size_t sending_len;
    size_t sending_off;
    size_t sending_cap;
} lmtp_out;

void lmtp_out_init(lmtp_out *o);
void lmtp_out_deinit(lmtp_out *o);
__attribute__((format(printf, 2, 3))) void lmtp_out_printf(lmtp_out *o, const char *fmt, ...);
/* Append "<prefix><address><suffix>": an address is wire data, printed with
 * control characters replaced. */
void lmtp_out_addr(lmtp_out *o, sl_slice addr);
void lmtp_out_raw(lmtp_out *o, const char *s, size_t n);
/* Move queued bytes to the sending half. false if a send is in flight or
 * nothing is queued. */
bool lmtp_out_start_send(lmtp_out *o);
/* n bytes of the in-flight send went out; true when all of it has. */
bool lmtp_out_sent(lmtp_out *o, size_t n);

/* The reply text for a RCPT lookup result that is not FOUND (code and
 * enhanced code included, no address, no CRLF), e.g. "550 5.1.1". */
const char *lmtp_reply_userdb_code(userdb_status st);
/* "451 4.3.0" / "452 4.3.1" for a store outcome other than OK. */
const char *lmtp_reply_store_code(store_outcome o);
/* The reply to a malformed command line (whole line, no CRLF). */
const char *lmtp_reply_bad_command(lmtp_cmd cmd, lmtp_error err);

#endif
