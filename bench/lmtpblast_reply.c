/* bench/lmtpblast_reply.c: see lmtpblast_reply.h. */
#include "bench/lmtpblast_reply.h"

#include <string.h>

enum { ST_CODE, ST_SEP, ST_TEXT };

void lmtpblast_reply_init(lmtpblast_reply_parser *p)
{
    memset(p, 0, sizeof(*p));
    p->state = ST_CODE;
}

/* The line is complete: check it belongs to the reply in progress. */
static lmtpblast_reply_rc line_done(lmtpblast_reply_parser *p)
{
    lmtpblast_reply_line *l = &p->line;
    if (p->reply_code != 0 && p->reply_code != p->code) {
        return LMTPBLAST_REPLY_ERROR;
    }
    /* A CR that was kept is the line's terminator, not text. */
    if (l->text_len > 0 && l->text[l->text_len - 1] == '\r') {
        l->text_len--;
    }
    l->text[l->text_len] = '\0';
    l->code = p->code;
    p->reply_code = l->last ? 0 : p->code;
    p->state = ST_CODE;
    p->digits = 0;
    p->code = 0;
    p->line_bytes = 0;
    return LMTPBLAST_REPLY_LINE;
}

lmtpblast_reply_rc lmtpblast_reply_feed(lmtpblast_reply_parser *p, const uint8_t *buf, size_t len,
                                        size_t *consumed_out)
{
    size_t i = 0;
    while (i < len) {
        uint8_t ch = buf[i];
        if (p->state == ST_CODE) {
            bool ok = p->digits == 0 ? (ch >= '1' && ch <= '5') : (ch >= '0' && ch <= '9');
            if (!ok) {
                return LMTPBLAST_REPLY_ERROR;
            }
            p->code = (uint16_t)(p->code * 10 + (ch - '0'));
            p->digits++;
            p->line_bytes++;
            i++;
            if (p->digits == 3) {
                p->state = ST_SEP;
            }
            continue;
        }
        if (p->state == ST_SEP) {
            p->line.text_len = 0;
            p->line_bytes++;
            i++;
            if (ch == '\n') {
                p->line.last = true;
                *consumed_out = i;
                return line_done(p);
            }
            if (ch != ' ' && ch != '-' && ch != '\r') {
                return LMTPBLAST_REPLY_ERROR;
            }
            p->line.last = ch != '-';
            if (ch == '\r') {
                p->line.text[p->line.text_len++] = '\r';
            }
            p->state = ST_TEXT;
            continue;
        }
        /* ST_TEXT: copy what fits, look for the end of the line. */
        const uint8_t *nl = memchr(buf + i, '\n', len - i);
        size_t take = nl != NULL ? (size_t)(nl - (buf + i)) : len - i;
        size_t room = LMTPBLAST_REPLY_TEXT_MAX - p->line.text_len;
        size_t copy = take < room ? take : room;
        memcpy(p->line.text + p->line.text_len, buf + i, copy);
        p->line.text_len = (uint16_t)(p->line.text_len + copy);
        p->line_bytes += (uint32_t)take;
        i += take;
        if (p->line_bytes > LMTPBLAST_REPLY_LINE_BYTES_MAX) {
            return LMTPBLAST_REPLY_ERROR;
        }
        if (nl != NULL) {
            i++;
            *consumed_out = i;
            return line_done(p);
        }
    }
    *consumed_out = i;
    return LMTPBLAST_REPLY_MORE;
}
