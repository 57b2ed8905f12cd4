/* bench/lmtpblast_reply.h: a resumable parser for SMTP/LMTP server replies,
 * for lmtpblast.
 *
 * Bytes in, one reply line out at a time: the code, whether the line ends the
 * reply ("250 ..." rather than "250-..."), and the first bytes of its text (a
 * copy, so the receive buffer can go back to the kernel at once). Lines may
 * be split anywhere across feeds; nothing already seen is rescanned. Every
 * line of a multi-line reply must carry the same code. */
#ifndef LMTPBLAST_REPLY_H
#define LMTPBLAST_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Text kept per line: enough for LHLO keywords and an error message. */
#define LMTPBLAST_REPLY_TEXT_MAX 127
/* RFC 5321 says 512; be lenient, but a line must end somewhere. */
#define LMTPBLAST_REPLY_LINE_BYTES_MAX 4096

typedef enum lmtpblast_reply_rc {
    LMTPBLAST_REPLY_MORE = 0, /* every byte consumed, no complete line */
    LMTPBLAST_REPLY_LINE = 1, /* p->line holds a complete line */
    LMTPBLAST_REPLY_ERROR = -1,
} lmtpblast_reply_rc;

typedef struct lmtpblast_reply_line {
    uint16_t code;
    bool last;
    uint16_t text_len;
    char text[LMTPBLAST_REPLY_TEXT_MAX + 1]; /* after "DDD " / "DDD-", no CRLF */
} lmtpblast_reply_line;

typedef struct lmtpblast_reply_parser {
    uint8_t state;
    uint8_t digits;
    uint16_t code;
    uint16_t reply_code; /* code of the reply in progress, 0 between replies */
    uint32_t line_bytes;
    lmtpblast_reply_line line;
} lmtpblast_reply_parser;

void lmtpblast_reply_init(lmtpblast_reply_parser *p);

/* Parse from buf[0..len). On LMTPBLAST_REPLY_LINE, *consumed_out bytes were
 * used (the rest is for the next call) and p->line is valid until the next
 * call. On LMTPBLAST_REPLY_MORE all len bytes were used. After
 * LMTPBLAST_REPLY_ERROR the parser must be re-initialised. */
lmtpblast_reply_rc lmtpblast_reply_feed(lmtpblast_reply_parser *p, const uint8_t *buf, size_t len,
                                        size_t *consumed_out);

#endif
