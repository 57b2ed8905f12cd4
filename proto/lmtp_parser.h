/* proto/lmtp_parser.h: a pure, resumable parser for LMTP (RFC 2033) commands,
 * DATA content (RFC 5321 dot-stuffing) and BDAT chunks (RFC 3030).
 *
 * Bytes in, at most one event out per call. The parser never allocates and
 * never copies message content: body events are slices of the caller's buffer,
 * already dot-unstuffed, with line endings removed and reported as a flag, so
 * the caller can write LF or CRLF as it likes. Only a command line that is
 * split across two input buffers is copied, into the parser's own line buffer
 * (bounded by limits.line_bytes_max), so the caller may release an input
 * buffer as soon as everything in it is consumed.
 *
 * Defined behaviour for odd input:
 *  - Command lines end at LF; a CR before it is dropped. A bare LF ends a line.
 *  - In DATA, "\r\n" and a bare "\n" both end a line. A CR not followed by LF
 *    is content. NUL bytes and 8-bit bytes are content, passed through.
 *  - The terminating line is "." alone (".\r\n" or ".\n").
 *  - BDAT chunks are not dot-unstuffed; "\r\n" and bare "\n" end lines as in
 *    DATA (line state carries across chunks of one message).
 *
 * Includes only core/base. Safe to call from any thread on its own parser. */
#ifndef SL_LMTP_PARSER_H
#define SL_LMTP_PARSER_H

#include "core/base/base.h"

typedef struct lmtp_limits {
    size_t line_bytes_max; /* command line incl. CRLF; >= 512 (RFC 5321), <= 65536 */
} lmtp_limits;

typedef enum lmtp_cmd {
    LMTP_CMD_NONE = 0,
    LMTP_CMD_LHLO,
    LMTP_CMD_HELO,
    LMTP_CMD_EHLO,
    LMTP_CMD_MAIL,
    LMTP_CMD_RCPT,
    LMTP_CMD_DATA,
    LMTP_CMD_BDAT,
    LMTP_CMD_RSET,
    LMTP_CMD_NOOP,
    LMTP_CMD_VRFY,
    LMTP_CMD_QUIT,
    LMTP_CMD_STARTTLS, /* recognised, not implemented: 502 */
    LMTP_CMD_AUTH,     /* recognised, not implemented: 502 */
    LMTP_CMD_UNKNOWN,
} lmtp_cmd;

typedef enum lmtp_ev_type {
    LMTP_EV_COMMAND = 1, /* a well-formed command line: see ev.cmd and fields */
    LMTP_EV_BAD_COMMAND, /* a command line that failed to parse: see ev.cmd, ev.error */
    LMTP_EV_BODY_SPAN,   /* DATA/BDAT content: ev.span, ev.eol */
    LMTP_EV_DATA_END,    /* the "." line of DATA was seen; parser is in command mode again */
    LMTP_EV_CHUNK_END,   /* all octets of one BDAT chunk consumed; ev.bdat_last says if LAST */
} lmtp_ev_type;

typedef enum lmtp_error {
    LMTP_ERR_NONE = 0,
    LMTP_ERR_LINE_TOO_LONG,  /* 500 5.5.2 Line too long (rest of the line was discarded) */
    LMTP_ERR_UNKNOWN_CMD,    /* 500 5.5.1 Unknown command */
    LMTP_ERR_SYNTAX,         /* 501 5.5.4: bad path or argument (see ev.cmd) */
    LMTP_ERR_BAD_PARAM,      /* 501 5.5.4 Invalid parameters: bad value of a known parameter */
    LMTP_ERR_UNSUPPORTED_PARAM, /* 555 5.5.4 Unsupported parameters */
    LMTP_ERR_NEEDS_ARG,      /* LHLO without a domain: 501 Missing hostname */
    LMTP_ERR_EXTRA_ARG,      /* RSET/QUIT/DATA with arguments: 501 5.5.4 Invalid parameters */
} lmtp_error;

typedef enum lmtp_body_type {
    LMTP_BODY_NONE = 0, /* not given */
    LMTP_BODY_7BIT,
    LMTP_BODY_8BITMIME,
    LMTP_BODY_BINARYMIME,
} lmtp_body_type;

/* One event. Slices point into the buffer passed to lmtp_parse() or into the
 * parser's own line buffer; they stay valid until the next lmtp_parse() call
 * on this parser, and (for body spans) as long as the caller keeps the input
 * buffer alive. */
typedef struct lmtp_event {
    lmtp_ev_type type;
    lmtp_cmd cmd;
    lmtp_error error;

    /* LHLO/HELO/EHLO: the domain. VRFY: the argument. */
    sl_slice arg;
    /* MAIL/RCPT: the path without angle brackets and without a source route
     * ("@a,@b:" prefix); empty for "<>". */
    sl_slice path;
    bool path_has_8bit; /* path contains bytes >= 0x80 */
    bool path_is_postmaster; /* RCPT TO:<Postmaster> without a domain (RFC 5321 4.1.1.3) */

    /* MAIL parameters. */
    lmtp_body_type body;
    bool has_size;
    uint64_t size;
    bool smtputf8;
    /* RCPT parameters. */
    sl_slice orcpt; /* ORCPT= value as given, empty if absent */

    /* BDAT. */
    uint64_t bdat_size;
    bool bdat_last;

    /* BODY_SPAN: content bytes (may be empty only when eol is true);
     * eol: a line ending followed this span. */
    sl_slice span;
    bool eol;
} lmtp_event;

typedef enum lmtp_parse_rc {
    LMTP_PARSE_NEED_MORE = 0, /* all input consumed, no event */
    LMTP_PARSE_EVENT = 1,     /* *ev_out is filled; *consumed_out bytes were used */
} lmtp_parse_rc;

typedef enum lmtp_mode {
    LMTP_MODE_COMMAND = 0,
    LMTP_MODE_DATA,
    LMTP_MODE_CHUNK,
    LMTP_MODE_DISCARD_LINE, /* skipping the rest of an over-long line */
} lmtp_mode;

#define LMTP_LINE_BYTES_CAP 65536

typedef struct lmtp_parser {
    lmtp_limits limits;
    lmtp_mode mode;
    /* Partial command line carried across input buffers. */
    size_t line_len;
    uint8_t line[LMTP_LINE_BYTES_CAP];
    /* DATA/BDAT line state: implementation-defined, zeroed by init. */
    uint32_t body_state;
    uint64_t chunk_left;
    bool chunk_last;
    bool pending_cr;
} lmtp_parser;

/* Initialise on caller storage. limits.line_bytes_max must be in [512, LMTP_LINE_BYTES_CAP]. */
void lmtp_parser_init(lmtp_parser *p, const lmtp_limits *limits);

/* Parse from buf[0..len). Sets *consumed_out to the bytes used (<= len) and,
 * on LMTP_PARSE_EVENT, fills *ev_out. Call again with the rest of the buffer
 * until it returns LMTP_PARSE_NEED_MORE. Never fails: malformed commands
 * become LMTP_EV_BAD_COMMAND events. After a BDAT command event the parser is
 * in chunk mode for bdat_size octets whatever the caller replies (RFC 3030). */
lmtp_parse_rc lmtp_parse(lmtp_parser *p, const uint8_t *buf, size_t len, size_t *consumed_out,
                         lmtp_event *ev_out);

/* Enter DATA mode: call right after accepting a DATA command (reply 354). */
void lmtp_parser_begin_data(lmtp_parser *p);

/* The parser's mode, for callers that need to know (e.g. idle vs in DATA). */
lmtp_mode lmtp_parser_mode(const lmtp_parser *p);

/* Text name of a command, for logs ("MAIL", "RCPT", ...). */
const char *lmtp_cmd_name(lmtp_cmd cmd);

#endif
