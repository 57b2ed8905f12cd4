/* store/msg_headers.h: the header block sluice prepends to each stored
 * message: Return-Path, Delivered-To (one recipient only) and Received, laid
 * out as Dovecot's LMTP server writes them, so mail filters and users see the
 * same trace whichever server delivered. These are the only bytes of a stored
 * message that sluice writes itself. Pure: the caller passes the clock in. */
#ifndef SL_MSG_HEADERS_H
#define SL_MSG_HEADERS_H

#include "core/base/base.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A buffer of this size holds any date msg_headers_date() writes. */
#define MSG_HEADERS_DATE_LEN_MAX 40

/* Everything borrowed; only read during the call. */
typedef struct msg_headers_in {
    sl_slice sender;       /* MAIL FROM path without brackets; may be empty (null sender) */
    sl_slice rcpt;         /* the recipient address as given in RCPT; used only if single_rcpt */
    bool single_rcpt;      /* exactly one recipient in the transaction: add Delivered-To and
                              "for <rcpt>" */
    const char *lhlo_name; /* the client's LHLO argument ("" is written as "unknown") */
    const char *client_ip; /* textual IP of the client, or "" for a UNIX socket peer */
    const char *hostname;  /* our hostname */
    const char *trans_id;  /* transaction id (session id, Dovecot style) */
    bool smtputf8;         /* "with UTF8LMTP" instead of "with LMTP" (RFC 6531) */
    int64_t now_sec;       /* wall clock for the date */
    int tz_offset_min;     /* local offset east of UTC in minutes, e.g. 60 for +0100 */
    bool crlf;             /* line endings of the stored file: CRLF if true, else LF */
} msg_headers_in;

/* Formats "Return-Path: <sender>", then "Delivered-To: <rcpt>" (single_rcpt
 * only, no brackets), then the Received header in Dovecot's layout:
 *
 *   Received: from <lhlo> ([<ip>])
 *   \tby <hostname> with LMTP
 *   \tid <trans_id>
 *   \t(envelope-from <sender>)
 *   \tfor <rcpt>; <RFC 5322 date>
 *
 * (the "for <rcpt>" line only when single_rcpt, else the "; <date>" follows
 * the envelope-from line; for a UNIX socket peer the first line is just
 * "from <lhlo>"). Returns the number of bytes the full block needs; writes it
 * (not NUL-terminated) only if that fits in out_len, and otherwise leaves out
 * untouched, so call with out == NULL, out_len 0 to size. Values are copied
 * verbatim except that CR, LF and NUL (they come from the wire and would
 * forge header lines) become a space. *lines_out (may be NULL) gets the
 * number of line endings in the block, so the caller can compute the
 * CRLF-counted virtual size. */
size_t msg_headers_format(const msg_headers_in *in, uint8_t *out, size_t out_len,
                          size_t *lines_out);

/* "Mon, 23 Nov 2026 21:30:00 +0100" for (sec, tz offset in minutes east of
 * UTC, |offset| < 24 h); the local date must fall in the years 1..9999.
 * Returns the length and NUL-terminates; out_len >= MSG_HEADERS_DATE_LEN_MAX.
 * Pure arithmetic (no localtime/gmtime), so thread-safe. */
size_t msg_headers_date(int64_t sec, int tz_offset_min, char *out, size_t out_len);

#endif
