/* proto/lmtp_reply.c: see lmtp_reply.h. Texts follow Dovecot's LMTP so that
 * Postfix's logs and verify cache read the same (reference/protocols.md). */
#include "proto/lmtp_reply.h"

#include "core/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lmtp_out_init(lmtp_out *o)
{
    memset(o, 0, sizeof(*o));
}

void lmtp_out_deinit(lmtp_out *o)
{
    sl_free(&o->buf);
    sl_free(&o->sending);
}

static void reserve(lmtp_out *o, size_t extra)
{
    if (o->len + extra <= o->cap) {
        return;
    }
    size_t cap = o->cap == 0 ? 512 : o->cap;
    while (cap < o->len + extra) {
        cap *= 2;
    }
    o->buf = sl_realloc(o->buf, cap);
    o->cap = cap;
}

void lmtp_out_raw(lmtp_out *o, const char *s, size_t n)
{
    reserve(o, n);
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

void lmtp_out_printf(lmtp_out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    SL_ASSERT(n >= 0);
    reserve(o, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(o->buf + o->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    o->len += (size_t)n;
}

void lmtp_out_addr(lmtp_out *o, sl_slice addr)
{
    reserve(o, addr.len);
    for (size_t i = 0; i < addr.len; i++) {
        uint8_t c = addr.ptr[i];
        o->buf[o->len++] = (char)(c < 0x20 || c == 0x7f ? '?' : c);
    }
}

bool lmtp_out_start_send(lmtp_out *o)
{
    if (o->sending_len > 0 || o->len == 0) {
        return false;
    }
    char *b = o->sending;
    size_t cap = o->sending_cap;
    o->sending = o->buf;
    o->sending_cap = o->cap;
    o->sending_len = o->len;
    o->sending_off = 0;
    o->buf = b;
    o->cap = cap;
    o->len = 0;
    return true;
}

bool lmtp_out_sent(lmtp_out *o, size_t n)
{
    SL_ASSERT(o->sending_off + n <= o->sending_len);
    o->sending_off += n;
    if (o->sending_off < o->sending_len) {
        return false;
    }
    o->sending_len = 0;
    o->sending_off = 0;
    return true;
}

const char *lmtp_reply_userdb_code(userdb_status st)
{
    switch (st) {
    case USERDB_FOUND:
        return "250 2.1.5";
    case USERDB_NOTFOUND:
        return "550 5.1.1";
    case USERDB_INACTIVE:
        return "550 5.2.1";
    case USERDB_TEMPFAIL:
        return "451 4.3.0";
    }
    return "451 4.3.0";
}

const char *lmtp_reply_store_code(store_outcome o)
{
    switch (o) {
    case STORE_OK:
        return "250 2.0.0";
    case STORE_NOSPACE:
        return "452 4.3.1";
    case STORE_TEMPFAIL:
        return "451 4.3.0";
    }
    return "451 4.3.0";
}

const char *lmtp_reply_bad_command(lmtp_cmd cmd, lmtp_error err)
{
    switch (err) {
    case LMTP_ERR_LINE_TOO_LONG:
        return "500 5.5.2 Line too long";
    case LMTP_ERR_UNKNOWN_CMD:
        return "500 5.5.1 Unknown command";
    case LMTP_ERR_SYNTAX:
        if (cmd == LMTP_CMD_MAIL) {
            return "501 5.5.4 Invalid FROM: Invalid address";
        }
        if (cmd == LMTP_CMD_RCPT) {
            return "501 5.5.4 Invalid TO: Invalid address";
        }
        return "501 5.5.4 Invalid parameters";
    case LMTP_ERR_BAD_PARAM:
    case LMTP_ERR_EXTRA_ARG:
        return "501 5.5.4 Invalid parameters";
    case LMTP_ERR_UNSUPPORTED_PARAM:
        return "555 5.5.4 Unsupported parameters";
    case LMTP_ERR_NEEDS_ARG:
        return "501 Missing hostname";
    case LMTP_ERR_NONE:
        break;
    }
    return "500 5.5.2 Invalid command syntax";
}
