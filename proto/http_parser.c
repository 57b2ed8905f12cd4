/* proto/http_parser.c: see http_parser.h. */
#include "proto/http_parser.h"

#include <string.h>

void http_parser_init(http_parser *p, size_t head_bytes_max)
{
    p->head_bytes_max = head_bytes_max;
    p->scanned = 0;
}

/* The end of the head: CRLFCRLF, or LFLF from lenient clients. */
static bool find_end(http_parser *p, const uint8_t *buf, size_t len, size_t *end_out)
{
    size_t i = p->scanned >= 3 ? p->scanned - 3 : 0;
    for (; i < len; i++) {
        if (buf[i] != '\n') {
            continue;
        }
        if (i >= 1 && buf[i - 1] == '\n') {
            *end_out = i + 1;
            return true;
        }
        if (i >= 3 && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            *end_out = i + 1;
            return true;
        }
    }
    p->scanned = len;
    return false;
}

static bool token_char(uint8_t c)
{
    return c > 0x20 && c < 0x7f;
}

static http_rc request_line(const uint8_t *buf, size_t len, http_request *req)
{
    size_t i = 0;
    size_t m0 = i;
    while (i < len && token_char(buf[i])) {
        i++;
    }
    if (i == m0 || i >= len || buf[i] != ' ') {
        return HTTP_BAD;
    }
    req->method = (sl_slice){buf + m0, i - m0};
    size_t t0 = ++i;
    while (i < len && token_char(buf[i])) {
        i++;
    }
    if (i == t0 || i >= len || buf[i] != ' ') {
        return HTTP_BAD;
    }
    req->target = (sl_slice){buf + t0, i - t0};
    i++;
    static const char ver[] = "HTTP/1.";
    if (len - i < sizeof(ver) || memcmp(buf + i, ver, sizeof(ver) - 1) != 0) {
        return HTTP_BAD;
    }
    uint8_t d = buf[i + sizeof(ver) - 1];
    if (d < '0' || d > '9') {
        return HTTP_BAD;
    }
    req->minor = d - '0';
    i += sizeof(ver);
    if (i < len && buf[i] == '\r') {
        i++;
    }
    return i < len && buf[i] == '\n' ? HTTP_DONE : HTTP_BAD;
}

http_rc http_parse(http_parser *p, const uint8_t *buf, size_t len, http_request *req_out)
{
    size_t end = 0;
    if (!find_end(p, buf, len, &end)) {
        return len > p->head_bytes_max ? HTTP_TOO_LONG : HTTP_NEED_MORE;
    }
    if (end > p->head_bytes_max) {
        return HTTP_TOO_LONG;
    }
    return request_line(buf, end, req_out);
}
