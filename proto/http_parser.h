/* proto/http_parser.h: the tiny HTTP/1.x request parser behind /metrics.
 * Pure: the caller accumulates the request bytes in its own buffer and
 * calls again with the whole buffer; the parser remembers how far it
 * scanned, so no byte is looked at twice. The request line's slices point
 * into that buffer and stay valid while it does. Headers are skipped. */
#ifndef SL_HTTP_PARSER_H
#define SL_HTTP_PARSER_H

#include "core/base/base.h"

typedef enum http_rc {
    HTTP_NEED_MORE = 0,
    HTTP_DONE,     /* a complete request head: *req is filled */
    HTTP_TOO_LONG, /* the head exceeds the limit: answer 431 and close */
    HTTP_BAD,      /* not an HTTP/1.x request line: answer 400 and close */
} http_rc;

typedef struct http_request {
    sl_slice method;
    sl_slice target; /* path and query as sent */
    int minor;       /* HTTP/1.<minor> */
} http_request;

typedef struct http_parser {
    size_t head_bytes_max;
    size_t scanned; /* bytes already searched for the end of the head */
} http_parser;

void http_parser_init(http_parser *p, size_t head_bytes_max);

/* buf holds every byte received so far on this request (len of them). */
http_rc http_parse(http_parser *p, const uint8_t *buf, size_t len, http_request *req_out);

#endif
