/* proto/stats_server.c: see stats_server.h. Scrapes are rare and small, so
 * each connection has a plain 8 KiB receive buffer and single-shot recvs. */
#include "proto/stats_server.h"

#include "core/acceptor.h"
#include "core/alloc.h"
#include "core/base/base.h"
#include "core/log.h"
#include "proto/http_parser.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_BYTES_MAX 8192
#define LISTENERS_MAX 8
#define CONNS_MAX 64

typedef struct sconn {
    stats_server *srv;
    int fd;
    sl_op op;
    unsigned inflight;
    bool closing;
    bool responded;
    http_parser parser;
    size_t len;
    uint8_t in[HEAD_BYTES_MAX];
    char *out;
    size_t out_len;
    size_t out_off;
    struct sconn *next;
} sconn;

struct stats_server {
    sl_ring *ring;
    const sl_allow *allow;
    stats_render_fn render;
    void *ctx;
    sl_acceptor listeners[LISTENERS_MAX];
    size_t listeners_n;
    sconn *conns;
    size_t conns_n;
    bool stopping;
};

stats_server *stats_server_new(sl_ring *ring, const sl_allow *allow, stats_render_fn render,
                               void *ctx)
{
    stats_server *s = sl_calloc(1, sizeof(*s));
    s->ring = ring;
    s->allow = allow;
    s->render = render;
    s->ctx = ctx;
    return s;
}

void stats_server_set_allow(stats_server *s, const sl_allow *allow)
{
    s->allow = allow;
}

static void on_recv(sl_op *op, int res, uint32_t flags);
static void on_send(sl_op *op, int res, uint32_t flags);
static void on_close(sl_op *op, int res, uint32_t flags);

static void conn_close(sconn *c)
{
    if (c->inflight > 0) {
        c->closing = true;
        return;
    }
    c->op.fn = on_close;
    c->inflight++;
    io_uring_prep_close(sl_ring_sqe(c->srv->ring, &c->op), c->fd);
}

static void conn_free(sconn *c)
{
    stats_server *s = c->srv;
    for (sconn **pp = &s->conns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    s->conns_n--;
    free(c->out);
    free(c);
}

static void on_close(sl_op *op, int res, uint32_t flags)
{
    sconn *c = SL_CONTAINER_OF(op, sconn, op);
    conn_free(c);
}

static void arm_recv(sconn *c)
{
    c->op.fn = on_recv;
    c->inflight++;
    io_uring_prep_recv(sl_ring_sqe(c->srv->ring, &c->op), c->fd, c->in + c->len,
                       sizeof(c->in) - c->len, 0);
}

static void send_rest(sconn *c)
{
    c->op.fn = on_send;
    c->inflight++;
    io_uring_prep_send(sl_ring_sqe(c->srv->ring, &c->op), c->fd, c->out + c->out_off,
                       c->out_len - c->out_off, MSG_NOSIGNAL);
}

static void respond(sconn *c, const char *status, const char *ctype, const char *body,
                    size_t body_len)
{
    int n = snprintf(NULL, 0,
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, ctype, body_len);
    c->out = sl_malloc((size_t)n + 1 + body_len);
    snprintf(c->out, (size_t)n + 1,
             "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
             status, ctype, body_len);
    memcpy(c->out + n, body, body_len);
    c->out_len = (size_t)n + body_len;
    c->out_off = 0;
    c->responded = true;
    send_rest(c);
}

static void handle(sconn *c, const http_request *req)
{
    static const char text[] = "text/plain; charset=utf-8";
    bool is_get = sl_slice_eq_nocase(req->method, "GET");
    bool is_head = sl_slice_eq_nocase(req->method, "HEAD");
    if (!is_get && !is_head) {
        static const char msg[] = "only GET /metrics is served here\n";
        respond(c, "405 Method Not Allowed", text, msg, sizeof(msg) - 1);
        return;
    }
    sl_slice path = req->target;
    for (size_t i = 0; i < path.len; i++) {
        if (path.ptr[i] == '?') {
            path.len = i;
        }
    }
    if (!sl_slice_eq_nocase(path, "/metrics")) {
        static const char msg[] = "not found: try /metrics\n";
        respond(c, "404 Not Found", text, msg, sizeof(msg) - 1);
        return;
    }
    char *body = NULL;
    size_t len = 0;
    c->srv->render(c->srv->ctx, &body, &len);
    respond(c, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body, is_head ? 0 : len);
    free(body);
}

static void on_recv(sl_op *op, int res, uint32_t flags)
{
    sconn *c = SL_CONTAINER_OF(op, sconn, op);
    c->inflight--;
    if (res <= 0 || c->closing) {
        conn_close(c);
        return;
    }
    c->len += (size_t)res;
    http_request req;
    http_rc rc = http_parse(&c->parser, c->in, c->len, &req);
    if (rc == HTTP_NEED_MORE && c->len < sizeof(c->in)) {
        arm_recv(c);
        return;
    }
    if (rc == HTTP_DONE) {
        handle(c, &req);
        return;
    }
    static const char bad[] = "bad request\n";
    respond(c, rc == HTTP_BAD ? "400 Bad Request" : "431 Request Header Fields Too Large",
            "text/plain", bad, sizeof(bad) - 1);
}

static void on_send(sl_op *op, int res, uint32_t flags)
{
    sconn *c = SL_CONTAINER_OF(op, sconn, op);
    c->inflight--;
    if (res > 0 && !c->closing) {
        c->out_off += (size_t)res;
        if (c->out_off < c->out_len) {
            send_rest(c);
            return;
        }
    }
    conn_close(c);
}

static void on_conn(sl_acceptor *a, int fd, const struct sockaddr *sa, const char *ip)
{
    (void)sa;
    (void)ip;
    stats_server *s = a->cfg.ctx;
    if (s->stopping || s->conns_n >= CONNS_MAX) {
        close(fd);
        return;
    }
    sconn *c = sl_calloc(1, sizeof(*c));
    c->srv = s;
    c->fd = fd;
    http_parser_init(&c->parser, HEAD_BYTES_MAX);
    c->next = s->conns;
    s->conns = c;
    s->conns_n++;
    arm_recv(c);
}

void stats_server_listen(stats_server *s, int fd)
{
    SL_ASSERT(s->listeners_n < LISTENERS_MAX);
    sl_acceptor_cfg cfg = {.allow_ref = &s->allow, .on_conn = on_conn, .ctx = s};
    sl_acceptor_start(&s->listeners[s->listeners_n++], s->ring, fd, &cfg);
}

void stats_server_shutdown(stats_server *s)
{
    s->stopping = true;
    for (size_t i = 0; i < s->listeners_n; i++) {
        sl_acceptor_stop(&s->listeners[i]);
    }
    for (sconn *c = s->conns; c != NULL; c = c->next) {
        if (!c->responded && c->op.fn == on_recv && c->inflight > 0) {
            c->closing = true;
            sl_ring_cancel(s->ring, &c->op);
        }
    }
}

bool stats_server_idle(const stats_server *s)
{
    if (s->conns_n > 0) {
        return false;
    }
    for (size_t i = 0; i < s->listeners_n; i++) {
        if (sl_acceptor_armed(&s->listeners[i])) {
            return false;
        }
    }
    return true;
}

void stats_server_free(stats_server **s)
{
    if (*s == NULL) {
        return;
    }
    SL_ASSERT((*s)->conns_n == 0);
    sl_free(s);
}
