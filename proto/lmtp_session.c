/* proto/lmtp_session.c: see lmtp_session.h.
 *
 * A connection processes its input in order and stops at the first command
 * whose answer is not ready yet (a userdb lookup that missed the core's
 * cache, a message waiting for its group commit, a write backlog). Replies
 * accumulate in order in the connection's output and leave together when
 * processing stops, so a pipelined MAIL/RCPT.../DATA group gets one send.
 *
 * Lookups: a RCPT that misses the core's cache waits for its answer, but
 * before it does, the RCPT lines already received behind it are read ahead
 * and their users looked up at once (Redis pipelines them, the resolver
 * threads take them in parallel). Their answers wait in the connection's
 * lookup table for their RCPT, which still runs in order: replies and
 * transaction state never run ahead of the input.
 *
 * Lifetime: a connection counts its operations in flight; close marks it,
 * cancels its receive and frees it only when nothing the kernel can still
 * touch refers to it. A transaction handed to store/ is abandoned (store
 * keeps committing it) if the connection goes away first. */
#include "proto/lmtp_session.h"

#include "core/acceptor.h"
#include "core/alloc.h"
#include "core/base/base.h"
#include "core/clock.h"
#include "core/connlimit.h"
#include "core/log.h"
#include "core/net.h"
#include "proto/lmtp_parser.h"
#include "proto/lmtp_reply.h"
#include "store/msg_headers.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>


#define LISTENERS_MAX 16
#define INQ_INITIAL 16
#define INQ_PAUSE 32     /* stop receiving while this many buffers wait unparsed */
#define OUT_PAUSE 65536  /* stop parsing while this many reply bytes wait to be sent */
#define RESOLVER_DRAIN 64

typedef enum conn_wait {
    WAIT_NONE = 0,
    WAIT_LOOKUP, /* a RCPT's userdb answer */
    WAIT_STORE,  /* content writes are behind */
    WAIT_COMMIT, /* end of data: the group commit */
} conn_wait;

typedef struct inbuf {
    uint16_t bid;
    uint32_t off;
    uint32_t len;
} inbuf;

typedef struct rcpt_ent {
    char *addr;   /* RCPT path as given, for replies */
    char *dest;   /* maildir or folder path */
    char *folder; /* for logs: "INBOX" or the folder name */
    int dup_of;   /* earlier recipient with the same destination, or -1 */
    int store_idx;
    store_outcome outcome;
} rcpt_ent;

/* A recipient lookup of the current transaction (see the top comment). */
#define LOOKUPS_MAX 64

typedef enum lookup_state {
    LOOKUP_FREE = 0, /* unused, or a read-ahead that could not be queued */
    LOOKUP_INFLIGHT,
    LOOKUP_DONE,
} lookup_state;

typedef struct lookup {
    lookup_state state;
    char user[USERDB_ADDR_BYTES_MAX];
    userdb_result result;
} lookup;

typedef struct pending_rcpt {
    char *addr;
    char user[USERDB_ADDR_BYTES_MAX];
    char detail[USERDB_ADDR_BYTES_MAX];
} pending_rcpt;

typedef struct conn {
    lmtp_server *srv;
    uint32_t slot;
    uint32_t gen;
    int fd;
    char ip[64];
    unsigned char ipkey[16];
    char sid[24];
    char tid[48];
    unsigned trans_n;

    sl_op op_recv;
    sl_op op_send;
    sl_op op_close;
    unsigned inflight;
    bool recv_armed;
    bool recv_cancelled;
    bool send_inflight;
    bool closing;
    bool close_after_send;
    bool eof;
    bool limited;

    /* Received buffers not yet parsed, oldest first. A ring that grows:
     * after recv is cancelled the kernel may still complete what the socket
     * holds; the core's buffer ring bounds the total. */
    inbuf *inq;
    unsigned inq_cap; /* power of two */
    unsigned inq_head;
    unsigned inq_n;
    lmtp_parser *parser;
    lmtp_out out;
    uint64_t last_ms;
    unsigned bad_cmds;
    conn_wait wait;

    char lhlo[256];
    bool has_lhlo;

    bool has_mail;
    char *sender;
    bool smtputf8;
    lmtp_body_type body;
    rcpt_ent *rcpts;
    size_t rcpts_n;
    size_t rcpts_cap;
    pending_rcpt pending;
    lookup *lookups; /* LOOKUPS_MAX entries once needed, else NULL */
    unsigned lookups_n;
    uint8_t lookups_epoch; /* answers of an earlier table are ignored */
    unsigned lookup_wait;  /* the entry the pending RCPT waits for */

    bool in_data;  /* DATA accepted or BDAT chunks being taken */
    bool chunking; /* a BDAT was seen in this transaction */
    bool chunk_failed;
    const char *chunk_reply; /* this chunk is rejected with this reply */
    uint64_t chunk_bytes;
    store_txn *txn;
    uint64_t size;
    uint64_t vsize;
    bool too_big;
    uint64_t data_end_us;
    bool line_start;
    bool in_headers;
    char msgid[128];
} conn;

struct lmtp_server {
    unsigned core_id;
    sl_ring *ring;
    sl_bufring *bufs;
    store *store;
    resolver *resolver;
    userdb_cache *cache;
    userdb_redis *redis; /* NULL without Redis */
    const sl_config *cfg;
    const sl_allow *allow;
    sl_stats_core *st;

    sl_acceptor listeners[LISTENERS_MAX];
    size_t listeners_n;
    bool shutting_down;

    conn **conns; /* slot table, connections_max entries per core */
    uint32_t conns_cap;
    uint32_t *free_slots;
    uint32_t free_n;
    uint32_t gen;
    size_t open_n;
    uint64_t rng;

    conn **starved; /* connections whose recv ran out of buffers */
    size_t starved_n;
};

static void conn_process(conn *c);
static void conn_close(conn *c);
static void conn_flush(conn *c);

/* ---- ids ------------------------------------------------------------- */

static uint64_t rng_next(lmtp_server *s)
{
    /* xorshift64*: session ids need to be unique, not secret. */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * 2685821657736338717ull;
}

static void make_session_id(lmtp_server *s, char out[24])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint64_t a = rng_next(s);
    uint64_t b = rng_next(s);
    for (int i = 0; i < 22; i++) {
        uint64_t *w = i < 11 ? &a : &b;
        out[i] = b64[*w & 63];
        *w >>= 6;
    }
    out[22] = '\0';
}

/* ---- server ----------------------------------------------------------- */

lmtp_server *lmtp_server_new(const lmtp_server_deps *d)
{
    lmtp_server *s = sl_calloc(1, sizeof(*s));
    s->core_id = d->core_id;
    s->ring = d->ring;
    s->bufs = d->bufs;
    s->store = d->store;
    s->resolver = d->resolver;
    s->cache = d->cache;
    s->cfg = d->cfg;
    s->allow = d->allow;
    s->st = d->stats;
    SL_ASSERT(s->st != NULL);
    s->conns_cap = d->cfg->connections_max;
    SL_ASSERT(s->conns_cap < (1u << 24)); /* a slot fits its 24 bits of a lookup token */
    s->conns = sl_calloc(s->conns_cap, sizeof(*s->conns));
    s->free_slots = sl_malloc(s->conns_cap * sizeof(*s->free_slots));
    for (uint32_t i = 0; i < s->conns_cap; i++) {
        s->free_slots[i] = s->conns_cap - 1 - i;
    }
    s->free_n = s->conns_cap;
    s->starved = sl_calloc(s->conns_cap, sizeof(*s->starved));
    if (getrandom(&s->rng, sizeof(s->rng), 0) != sizeof(s->rng) || s->rng == 0) {
        s->rng = sl_clock_ms() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
    }
    s->rng ^= (uint64_t)d->core_id << 48;
    return s;
}

void lmtp_server_free(lmtp_server **sp)
{
    lmtp_server *s = *sp;
    if (s == NULL) {
        return;
    }
    SL_ASSERT(s->open_n == 0);
    free(s->conns);
    free(s->free_slots);
    free(s->starved);
    sl_free(sp);
}

bool lmtp_server_idle(const lmtp_server *s)
{
    if (s->open_n != 0) {
        return false;
    }
    for (size_t i = 0; i < s->listeners_n; i++) {
        if (sl_acceptor_armed(&s->listeners[i])) {
            return false;
        }
    }
    return true;
}

void lmtp_server_reload(lmtp_server *s, const sl_config *cfg, const sl_allow *allow)
{
    /* connections_max sizes the slot table: it takes effect at restart. */
    s->cfg = cfg;
    s->allow = allow;
}

void lmtp_server_set_cache(lmtp_server *s, userdb_cache *cache)
{
    s->cache = cache;
}

void lmtp_server_set_redis(lmtp_server *s, userdb_redis *redis)
{
    s->redis = redis;
}

/* ---- accept ----------------------------------------------------------- */

static void refused_log(const char *why, const char *ip)
{
    sl_info("lmtp: refused connection from %s: %s", ip[0] != '\0' ? ip : "local", why);
}

/* Over the limit: tell the client to come back later, then close. */
static void refuse_busy(lmtp_server *s, int fd, const char *ip)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "421 4.7.0 %s Too many connections\r\n",
                     s->cfg->hostname);
    ssize_t w = send(fd, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)w;
    refused_log("connection limit", ip);
    close(fd);
}

static void conn_arm_recv(conn *c);

static conn *conn_new(lmtp_server *s, int fd, const struct sockaddr *sa)
{
    SL_ASSERT(s->free_n > 0);
    conn *c = sl_calloc(1, sizeof(*c));
    c->srv = s;
    c->slot = s->free_slots[--s->free_n];
    c->gen = ++s->gen;
    s->conns[c->slot] = c;
    s->open_n++;
    c->fd = fd;
    sl_net_addr_text(sa, c->ip, sizeof(c->ip));
    sl_net_addr_key(sa, c->ipkey);
    make_session_id(s, c->sid);
    snprintf(c->tid, sizeof(c->tid), "%s", c->sid);
    lmtp_limits lim = {.line_bytes_max = s->cfg->line_length_max};
    c->inq_cap = INQ_INITIAL;
    c->inq = sl_malloc(c->inq_cap * sizeof(*c->inq));
    c->parser = sl_malloc(sizeof(*c->parser));
    lmtp_parser_init(c->parser, &lim);
    lmtp_out_init(&c->out);
    c->last_ms = sl_clock_ms();
    return c;
}

static void on_refused(sl_acceptor *a, int fd, const char *ip)
{
    (void)fd;
    lmtp_server *s = a->cfg.ctx;
    sl_stat_add(&s->st->conns_refused_allow, 1);
    refused_log("not in lmtp_allow", ip);
}

static void on_conn(sl_acceptor *a, int fd, const struct sockaddr *sa, const char *ip)
{
    lmtp_server *s = a->cfg.ctx;
    unsigned char key[16];
    sl_net_addr_key(sa, key);
    if (s->free_n == 0 ||
        !sl_connlimit_acquire(key, s->cfg->connections_max, s->cfg->connections_per_ip_max)) {
        sl_stat_add(&s->st->conns_refused_limit, 1);
        refuse_busy(s, fd, ip);
        return;
    }
    if (sa->sa_family != AF_UNIX) {
        /* Replies are small and often follow one another before the first
         * is acknowledged: without this, Nagle holds them for the peer's
         * delayed ACK (about 40 ms). */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    conn *c = conn_new(s, fd, sa);
    c->limited = true;
    sl_stat_add(&s->st->conns_total, 1);
    sl_stat_add(&s->st->conns_open, 1);
    sl_debug("lmtp(%s): connect from %s", c->sid, c->ip[0] != '\0' ? c->ip : "local");
    lmtp_out_printf(&c->out, "220 %s %s\r\n", s->cfg->hostname, s->cfg->greeting);
    conn_flush(c);
    conn_arm_recv(c);
}

void lmtp_server_listen(lmtp_server *s, int listen_fd)
{
    SL_ASSERT(s->listeners_n < LISTENERS_MAX);
    sl_acceptor_cfg cfg = {.allow_ref = &s->allow,
                           .on_conn = on_conn,
                           .on_refused = on_refused,
                           .ctx = s,
                           .warn_errors = true};
    sl_acceptor_start(&s->listeners[s->listeners_n++], s->ring, listen_fd, &cfg);
}

/* ---- receive ---------------------------------------------------------- */

static void on_recv(sl_op *op, int res, uint32_t flags);

static void conn_arm_recv(conn *c)
{
    if (c->recv_armed || c->closing || c->eof || c->inq_n >= INQ_PAUSE) {
        return;
    }
    c->op_recv.fn = on_recv;
    struct io_uring_sqe *sqe = sl_ring_sqe(c->srv->ring, &c->op_recv);
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = (uint16_t)c->srv->bufs->bgid;
    c->recv_armed = true;
    c->recv_cancelled = false;
    c->inflight++;
}

static void conn_cancel_recv(conn *c)
{
    if (!c->recv_armed || c->recv_cancelled) {
        return;
    }
    sl_ring_cancel(c->srv->ring, &c->op_recv);
    c->recv_cancelled = true;
}

static void inq_push(conn *c, inbuf b)
{
    if (c->inq_n == c->inq_cap) {
        inbuf *n = sl_malloc(2 * c->inq_cap * sizeof(*n));
        for (unsigned i = 0; i < c->inq_n; i++) {
            n[i] = c->inq[(c->inq_head + i) & (c->inq_cap - 1)];
        }
        free(c->inq);
        c->inq = n;
        c->inq_head = 0;
        c->inq_cap *= 2;
    }
    c->inq[(c->inq_head + c->inq_n) & (c->inq_cap - 1)] = b;
    c->inq_n++;
}

static void inq_pop(conn *c)
{
    SL_ASSERT(c->inq_n > 0);
    sl_bufring_unpin(c->srv->bufs, c->inq[c->inq_head].bid);
    c->inq_head = (c->inq_head + 1) & (c->inq_cap - 1);
    c->inq_n--;
}

static void on_recv(sl_op *op, int res, uint32_t flags)
{
    conn *c = SL_CONTAINER_OF(op, conn, op_recv);
    lmtp_server *s = c->srv;
    if (!(flags & IORING_CQE_F_MORE)) {
        c->recv_armed = false;
        c->inflight--;
    }
    if (res > 0) {
        SL_ASSERT(flags & IORING_CQE_F_BUFFER);
        uint16_t bid = (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT);
        sl_bufring_take(s->bufs, bid);
        if (c->closing) {
            sl_bufring_unpin(s->bufs, bid);
        } else {
            inq_push(c, (inbuf){bid, 0, (uint32_t)res});
            c->last_ms = sl_clock_ms();
            if (c->inq_n >= INQ_PAUSE) {
                conn_cancel_recv(c);
            }
        }
    } else if (res == 0) {
        c->eof = true;
    } else if (res == -ENOBUFS) {
        /* Back-pressure, not failure: re-armed when buffers come back. */
        if (!c->recv_armed && !c->closing) {
            s->starved[s->starved_n++] = c;
        }
    } else if (res != -ECANCELED) {
        c->eof = true;
        sl_debug("lmtp(%s): recv: %s", c->sid, strerror(-res));
    }
    if (c->closing) {
        conn_close(c);
        return;
    }
    conn_process(c);
}

/* ---- send ------------------------------------------------------------- */

static void on_send(sl_op *op, int res, uint32_t flags)
{
    conn *c = SL_CONTAINER_OF(op, conn, op_send);
    c->send_inflight = false;
    c->inflight--;
    if (res <= 0) {
        c->eof = true;
        c->close_after_send = true;
        c->out.sending_len = 0;
        c->out.len = 0;
    } else if (!lmtp_out_sent(&c->out, (size_t)res)) {
        /* Partial send: push out the rest. */
        c->send_inflight = true;
        c->inflight++;
        io_uring_prep_send(sl_ring_sqe(c->srv->ring, &c->op_send),
                           c->fd, c->out.sending + c->out.sending_off,
                           c->out.sending_len - c->out.sending_off, MSG_NOSIGNAL);
        return;
    }
    if (c->closing) {
        conn_close(c);
        return;
    }
    if (c->close_after_send && c->out.len == 0) {
        conn_close(c);
        return;
    }
    conn_flush(c);
    conn_process(c);
}

static void conn_flush(conn *c)
{
    if (c->send_inflight || c->closing || !lmtp_out_start_send(&c->out)) {
        if (!c->send_inflight && c->out.len == 0 && c->close_after_send && !c->closing) {
            conn_close(c);
        }
        return;
    }
    c->op_send.fn = on_send;
    c->send_inflight = true;
    c->inflight++;
    io_uring_prep_send(sl_ring_sqe(c->srv->ring, &c->op_send), c->fd, c->out.sending,
                       c->out.sending_len, MSG_NOSIGNAL);
}

/* ---- close ------------------------------------------------------------ */

static void txn_reset(conn *c);
static void lookups_reset(conn *c);

static void conn_free(conn *c)
{
    lmtp_server *s = c->srv;
    while (c->inq_n > 0) {
        inq_pop(c);
    }
    free(c->inq);
    txn_reset(c);
    free(c->pending.addr);
    free(c->lookups);
    free(c->parser);
    lmtp_out_deinit(&c->out);
    if (c->limited) {
        sl_connlimit_release(c->ipkey);
    }
    for (size_t i = 0; i < s->starved_n; i++) {
        if (s->starved[i] == c) {
            s->starved[i] = s->starved[--s->starved_n];
            break;
        }
    }
    s->conns[c->slot] = NULL;
    s->free_slots[s->free_n++] = c->slot;
    s->open_n--;
    sl_stat_sub(&s->st->conns_open, 1);
    free(c);
}

static void on_close(sl_op *op, int res, uint32_t flags)
{
    conn *c = SL_CONTAINER_OF(op, conn, op_close);
    c->inflight--;
    SL_ASSERT(c->inflight == 0);
    conn_free(c);
}

/* Idempotent: called again from every completion until nothing is left in
 * flight, then the socket is closed and the connection freed. */
static void conn_close(conn *c)
{
    if (!c->closing) {
        c->closing = true;
        sl_debug("lmtp(%s): disconnect", c->sid);
        if (c->txn != NULL) {
            store_txn_abandon(&c->txn);
        }
    }
    conn_cancel_recv(c);
    if (c->inflight > 0 || c->fd < 0) {
        return;
    }
    c->op_close.fn = on_close;
    c->inflight++;
    io_uring_prep_close(sl_ring_sqe(c->srv->ring, &c->op_close), c->fd);
    c->fd = -1;
}

/* ---- transaction state ------------------------------------------------ */

static void txn_reset(conn *c)
{
    for (size_t i = 0; i < c->rcpts_n; i++) {
        free(c->rcpts[i].addr);
        free(c->rcpts[i].dest);
        free(c->rcpts[i].folder);
    }
    free(c->rcpts);
    c->rcpts = NULL;
    c->rcpts_n = 0;
    c->rcpts_cap = 0;
    sl_free(&c->sender);
    if (c->txn != NULL) {
        store_txn_abandon(&c->txn);
    }
    c->has_mail = false;
    c->smtputf8 = false;
    c->body = LMTP_BODY_NONE;
    c->in_data = false;
    c->chunking = false;
    c->chunk_failed = false;
    c->chunk_reply = NULL;
    c->size = 0;
    c->vsize = 0;
    c->too_big = false;
    c->msgid[0] = '\0';
    lookups_reset(c);
}

static void next_transaction_id(conn *c)
{
    c->trans_n++;
    if (c->trans_n == 1) {
        snprintf(c->tid, sizeof(c->tid), "%s", c->sid);
    } else {
        snprintf(c->tid, sizeof(c->tid), "%s:T%u", c->sid, c->trans_n);
    }
}

/* ---- commands --------------------------------------------------------- */

static void reply(conn *c, const char *text)
{
    lmtp_out_raw(&c->out, text, strlen(text));
    lmtp_out_raw(&c->out, "\r\n", 2);
}

static void bad_command(conn *c, const char *text)
{
    reply(c, text);
    c->bad_cmds++;
    if (c->bad_cmds >= c->srv->cfg->bad_commands_max) {
        lmtp_out_printf(&c->out, "421 4.7.0 %s Too many invalid commands.\r\n",
                        c->srv->cfg->hostname);
        sl_info("lmtp(%s): too many invalid commands from %s", c->sid, c->ip);
        c->close_after_send = true;
    }
}

static void cmd_lhlo(conn *c, const lmtp_event *ev)
{
    const sl_config *cfg = c->srv->cfg;
    snprintf(c->lhlo, sizeof(c->lhlo), "%.*s", (int)SL_MIN(ev->arg.len, 255), ev->arg.ptr);
    for (char *p = c->lhlo; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20) {
            *p = '?';
        }
    }
    c->has_lhlo = true;
    txn_reset(c);
    lmtp_out_printf(&c->out,
                    "250-%s\r\n250-8BITMIME\r\n250-CHUNKING\r\n250-ENHANCEDSTATUSCODES\r\n"
                    "250-PIPELINING\r\n250-SIZE %llu\r\n250 SMTPUTF8\r\n",
                    cfg->hostname, (unsigned long long)cfg->message_size_max);
}

static void cmd_mail(conn *c, const lmtp_event *ev)
{
    if (!c->has_lhlo) {
        bad_command(c, "503 5.5.1 Send LHLO first");
        return;
    }
    if (c->has_mail) {
        reply(c, "503 5.5.0 MAIL already given");
        return;
    }
    if (ev->has_size && ev->size > c->srv->cfg->message_size_max) {
        reply(c, "552 5.3.4 Message size exceeds fixed maximum message size");
        return;
    }
    if (ev->path_has_8bit && !ev->smtputf8) {
        reply(c, "553 5.6.7 Non-ASCII address requires SMTPUTF8");
        return;
    }
    if (ev->body == LMTP_BODY_BINARYMIME) {
        reply(c, "555 5.5.4 Unsupported parameters");
        return;
    }
    txn_reset(c);
    next_transaction_id(c);
    c->has_mail = true;
    c->sender = sl_malloc(ev->path.len + 1);
    memcpy(c->sender, ev->path.ptr, ev->path.len);
    c->sender[ev->path.len] = '\0';
    c->smtputf8 = ev->smtputf8;
    c->body = ev->body;
    reply(c, "250 2.1.0 OK");
}

static void rcpt_answer(conn *c, const userdb_result *r);

static sl_lookup_result lookup_result(userdb_status st)
{
    switch (st) {
    case USERDB_FOUND:
        return SL_LOOKUP_FOUND;
    case USERDB_NOTFOUND:
        return SL_LOOKUP_NOTFOUND;
    case USERDB_INACTIVE:
        return SL_LOOKUP_INACTIVE;
    case USERDB_TEMPFAIL:
        return SL_LOOKUP_TEMPFAIL;
    }
    return SL_LOOKUP_TEMPFAIL;
}

/* A lookup's token: the connection (slot and the low 24 bits of its
 * generation), the table's epoch and the entry. */
static uint64_t lookup_token(const conn *c, unsigned idx)
{
    return ((uint64_t)c->slot << 40) | ((uint64_t)(c->gen & 0xffffff) << 16) |
           ((uint64_t)c->lookups_epoch << 8) | idx;
}

/* The connection a lookup answer is for, with its entry in *idx_out, or
 * NULL if the connection went away or the transaction moved on meanwhile. */
static conn *conn_of_token(lmtp_server *s, uint64_t token, unsigned *idx_out)
{
    uint32_t slot = (uint32_t)(token >> 40);
    uint32_t gen = (uint32_t)(token >> 16) & 0xffffff;
    uint8_t epoch = (uint8_t)(token >> 8);
    unsigned idx = (unsigned)(token & 0xff);
    conn *c = slot < s->conns_cap ? s->conns[slot] : NULL;
    if (c == NULL || (c->gen & 0xffffff) != gen || c->lookups_epoch != epoch ||
        idx >= c->lookups_n || c->lookups[idx].state != LOOKUP_INFLIGHT) {
        return NULL;
    }
    *idx_out = idx;
    return c;
}

/* A lookup that found no usable answer (resolver queue full, SQL down):
 * 451, unless the operator lets an expired cache entry stand in. */
static void lookup_failed(conn *c, const userdb_result *r)
{
    lmtp_server *s = c->srv;
    userdb_result stale;
    if (s->cfg->userdb_cache_serve_stale && userdb_cache_get_stale(s->cache, c->pending.user, &stale)) {
        sl_stat_add(&s->st->lookups_stale, 1);
        sl_info("lmtp(%s): userdb unavailable, serving the expired entry of %s", c->sid,
                c->pending.user);
        rcpt_answer(c, &stale);
        return;
    }
    rcpt_answer(c, r);
}

/* The pending RCPT's answer, from its table entry. */
static void lookup_use(conn *c, unsigned idx)
{
    const userdb_result *r = &c->lookups[idx].result;
    if (r->status == USERDB_TEMPFAIL) {
        lookup_failed(c, r);
    } else {
        rcpt_answer(c, r);
    }
}

/* Entry idx has its answer; the RCPT waiting for it goes on. */
static void lookup_done(conn *c, unsigned idx, const userdb_result *r)
{
    lookup *l = &c->lookups[idx];
    l->result = *r;
    l->state = LOOKUP_DONE;
    if (c->wait == WAIT_LOOKUP && c->lookup_wait == idx) {
        lookup_use(c, idx);
        if (!c->closing) {
            conn_process(c);
        }
    }
}

/* Ask a resolver thread (SQL); the answer comes to lmtp_server_resolver_ready.
 * False if its queue is full. */
static bool lookup_sql(conn *c, unsigned idx)
{
    lmtp_server *s = c->srv;
    resolver_request req =
        resolver_request_make(RESOLVER_USERDB, lookup_token(c, idx), c->lookups[idx].user);
    if (resolver_submit(s->resolver, s->core_id, &req) != 0) {
        sl_warn("lmtp(%s): resolver queue full", c->sid);
        return false;
    }
    return true;
}

/* Forget the table (and its memory, until a transaction misses again):
 * answers still under way are ignored when they come. */
static void lookups_reset(conn *c)
{
    sl_free(&c->lookups);
    c->lookups_n = 0;
    c->lookups_epoch++;
}

static int lookup_find(const conn *c, const char *user)
{
    for (unsigned i = 0; i < c->lookups_n; i++) {
        if (c->lookups[i].state != LOOKUP_FREE && strcmp(c->lookups[i].user, user) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Start a lookup of user (Redis, else SQL) in a new entry; -1 when the
 * table is full. A read-ahead that cannot be queued leaves its entry FREE
 * (its RCPT asks again); the RCPT's own lookup gets a TEMPFAIL answer. */
static int lookup_start(conn *c, const char *user, bool own)
{
    lmtp_server *s = c->srv;
    if (c->lookups_n == LOOKUPS_MAX) {
        return -1;
    }
    if (c->lookups == NULL) {
        c->lookups = sl_malloc(LOOKUPS_MAX * sizeof(*c->lookups));
    }
    unsigned idx = c->lookups_n++;
    lookup *l = &c->lookups[idx];
    l->state = LOOKUP_INFLIGHT;
    snprintf(l->user, sizeof(l->user), "%s", user);
    if (s->redis != NULL && userdb_redis_lookup(s->redis, lookup_token(c, idx), user) == 0) {
        return (int)idx; /* answered by lmtp_server_redis_answer */
    }
    if (!lookup_sql(c, idx)) {
        l->state = own ? LOOKUP_DONE : LOOKUP_FREE;
        l->result.status = USERDB_TEMPFAIL;
    }
    return (int)idx;
}

/* Look up, now, the users of the RCPT lines already received behind the
 * current one, up to the first line that is not a RCPT (after DATA comes
 * content) or is not whole in one buffer. A line read wrong here costs only
 * a lookup: its RCPT is parsed for real when its turn comes. */
static void lookup_read_ahead(conn *c)
{
    lmtp_server *s = c->srv;
    if (lmtp_parser_mode(c->parser) != LMTP_MODE_COMMAND || c->parser->line_len != 0) {
        return;
    }
    uint64_t now = sl_clock_ms();
    for (unsigned k = 0; k < c->inq_n && c->lookups_n < LOOKUPS_MAX; k++) {
        const inbuf *b = &c->inq[(c->inq_head + k) & (c->inq_cap - 1)];
        const char *p = (const char *)sl_bufring_ptr(s->bufs, b->bid) + b->off;
        size_t n = b->len - b->off;
        while (n > 0 && c->lookups_n < LOOKUPS_MAX) {
            const char *eol = memchr(p, '\n', n);
            if (eol == NULL || n < 9 || strncasecmp(p, "RCPT TO:", 8) != 0) {
                return;
            }
            const char *lt = memchr(p, '<', (size_t)(eol - p));
            const char *gt = lt != NULL ? memchr(lt, '>', (size_t)(eol - lt)) : NULL;
            char user[USERDB_ADDR_BYTES_MAX];
            char local[USERDB_ADDR_BYTES_MAX];
            char detail[USERDB_ADDR_BYTES_MAX];
            userdb_result r;
            if (gt != NULL &&
                userdb_split_address((sl_slice){(const uint8_t *)lt + 1, (size_t)(gt - lt - 1)},
                                     s->cfg->recipient_delimiter, user, sizeof(user), local,
                                     sizeof(local), detail, sizeof(detail)) &&
                lookup_find(c, user) < 0 && !userdb_cache_get(s->cache, user, now, &r)) {
                lookup_start(c, user, false);
            }
            n -= (size_t)(eol - p) + 1;
            p = eol + 1;
        }
    }
}

void lmtp_server_redis_answer(lmtp_server *s, uint64_t token, userdb_redis_status status,
                              const userdb_result *result, uint64_t latency_us)
{
    unsigned idx = 0;
    conn *c = conn_of_token(s, token, &idx);
    static const sl_redis_result tally[] = {
        [USERDB_REDIS_HIT] = SL_REDIS_HIT,
        [USERDB_REDIS_MISS] = SL_REDIS_MISS,
        [USERDB_REDIS_ERROR] = SL_REDIS_ERROR,
    };
    sl_stat_add(&s->st->redis_lookups[tally[status]], 1);
    if (latency_us > 0) {
        sl_hist_latency_us(&s->st->redis_us, latency_us);
    }
    if (c == NULL) {
        return;
    }
    if (status != USERDB_REDIS_HIT) {
        if (!lookup_sql(c, idx)) {
            userdb_result r = {.status = USERDB_TEMPFAIL};
            lookup_done(c, idx, &r);
        }
        return;
    }
    sl_stat_add(&s->st->lookups[SL_TIER_REDIS][lookup_result(result->status)], 1);
    userdb_cache_put(s->cache, c->lookups[idx].user, result, sl_clock_ms());
    lookup_done(c, idx, result);
}

static void cmd_rcpt(conn *c, const lmtp_event *ev)
{
    lmtp_server *s = c->srv;
    if (!c->has_mail) {
        reply(c, "503 5.5.0 MAIL needed first");
        return;
    }
    if (ev->path.len == 0) {
        reply(c, "550 5.1.1 <> Unacceptable TO: Empty path not allowed");
        return;
    }
    if (ev->path_has_8bit && !c->smtputf8) {
        reply(c, "553 5.6.7 Non-ASCII address requires SMTPUTF8");
        return;
    }
    if (c->rcpts_n >= s->cfg->recipients_max) {
        reply(c, "452 4.5.3 Too many recipients");
        return;
    }
    pending_rcpt *p = &c->pending;
    char local[USERDB_ADDR_BYTES_MAX];
    sl_slice addr = ev->path;
    char pm[USERDB_ADDR_BYTES_MAX];
    if (ev->path_is_postmaster) {
        /* RFC 5321 4.1.1.3: <Postmaster> is postmaster of this host. */
        int n = snprintf(pm, sizeof(pm), "postmaster@%s", s->cfg->hostname);
        addr = (sl_slice){(const uint8_t *)pm, (size_t)SL_MIN(n, (int)sizeof(pm) - 1)};
    }
    if (!userdb_split_address(addr, s->cfg->recipient_delimiter, p->user, sizeof(p->user), local,
                              sizeof(local), p->detail, sizeof(p->detail))) {
        bad_command(c, "501 5.5.4 Invalid TO: Invalid address");
        return;
    }
    free(p->addr);
    p->addr = sl_malloc(ev->path.len + 1);
    memcpy(p->addr, ev->path.ptr, ev->path.len);
    p->addr[ev->path.len] = '\0';
    userdb_result r;
    if (userdb_cache_get(s->cache, p->user, sl_clock_ms(), &r)) {
        sl_stat_add(&s->st->lookups[SL_TIER_CORE][lookup_result(r.status)], 1);
        rcpt_answer(c, &r);
        return;
    }
    int idx = lookup_find(c, p->user);
    if (idx >= 0 && c->lookups[idx].state == LOOKUP_DONE) {
        lookup_use(c, (unsigned)idx); /* read ahead, already answered */
        return;
    }
    if (idx < 0) {
        idx = lookup_start(c, p->user, true);
        if (idx < 0) {
            lookups_reset(c); /* a full table: read-aheads under way are dropped */
            idx = lookup_start(c, p->user, true);
            SL_ASSERT(idx >= 0);
        }
        if (c->lookups[idx].state == LOOKUP_DONE) {
            lookup_use(c, (unsigned)idx); /* could not even be queued */
            return;
        }
    }
    c->wait = WAIT_LOOKUP;
    c->lookup_wait = (unsigned)idx;
    lookup_read_ahead(c);
}

/* A detail must name a plain Maildir++ folder: no path tricks. */
static bool detail_ok(const char *d)
{
    if (d[0] == '\0' || d[0] == '.' || strlen(d) > 200) {
        return false;
    }
    for (const char *p = d; *p != '\0'; p++) {
        if (*p == '/' || (unsigned char)*p < 0x20) {
            return false;
        }
    }
    return true;
}

static void rcpt_resolve_dest(conn *c, rcpt_ent *e, const userdb_result *r, const char *detail)
{
    const sl_config *cfg = c->srv->cfg;
    char base[PATH_MAX];
    const char *md = r->maildir;
    size_t len = strlen(md);
    while (len > 1 && md[len - 1] == '/') {
        len--;
    }
    if (md[0] == '/') {
        snprintf(base, sizeof(base), "%.*s", (int)len, md);
    } else {
        snprintf(base, sizeof(base), "%s/%.*s", cfg->mail_root, (int)len, md);
    }
    if (cfg->detail_mailbox && detail_ok(detail)) {
        char folder[PATH_MAX];
        int n = snprintf(folder, sizeof(folder), "%s/.%s", base, detail);
        if (n < (int)sizeof(folder) &&
            (cfg->detail_mailbox_create || store_folder_exists(c->srv->store, folder))) {
            e->dest = sl_strdup(folder);
            e->folder = sl_strdup(detail);
            return;
        }
    }
    e->dest = sl_strdup(base);
    e->folder = sl_strdup("INBOX");
}

static void rcpt_answer(conn *c, const userdb_result *r)
{
    lmtp_server *s = c->srv;
    pending_rcpt *p = &c->pending;
    c->wait = WAIT_NONE;
    sl_slice addr = {(const uint8_t *)p->addr, strlen(p->addr)};
    if (r->status != USERDB_FOUND) {
        lmtp_out_printf(&c->out, "%s <", lmtp_reply_userdb_code(r->status));
        lmtp_out_addr(&c->out, addr);
        if (r->status == USERDB_NOTFOUND) {
            sl_stat_add(&s->st->rcpts[SL_RCPT_UNKNOWN], 1);
            lmtp_out_printf(&c->out, "> User doesn't exist: %s\r\n", p->user);
        } else if (r->status == USERDB_INACTIVE) {
            sl_stat_add(&s->st->rcpts[SL_RCPT_INACTIVE], 1);
            lmtp_out_printf(&c->out, "> Mailbox disabled\r\n");
        } else {
            sl_stat_add(&s->st->rcpts[SL_RCPT_TEMPFAIL], 1);
            lmtp_out_printf(&c->out, "> Temporary internal error\r\n");
        }
        sl_debug("lmtp(%s): rcpt=<%s> rejected: %s", c->sid, p->addr,
                 lmtp_reply_userdb_code(r->status));
        return;
    }
    if (c->rcpts_n == c->rcpts_cap) {
        c->rcpts_cap = c->rcpts_cap == 0 ? 4 : c->rcpts_cap * 2;
        c->rcpts = sl_realloc(c->rcpts, c->rcpts_cap * sizeof(*c->rcpts));
    }
    rcpt_ent *e = &c->rcpts[c->rcpts_n++];
    memset(e, 0, sizeof(*e));
    e->addr = p->addr;
    p->addr = NULL;
    e->dup_of = -1;
    e->store_idx = -1;
    rcpt_resolve_dest(c, e, r, p->detail);
    reply(c, "250 2.1.5 OK");
}

void lmtp_server_resolver_ready(lmtp_server *s)
{
    resolver_reply batch[RESOLVER_DRAIN];
    size_t n;
    do {
        n = resolver_drain(s->resolver, s->core_id, batch, RESOLVER_DRAIN);
        uint64_t now = sl_clock_ms();
        for (size_t i = 0; i < n; i++) {
            const resolver_reply *rp = &batch[i];
            SL_ASSERT(rp->kind == RESOLVER_USERDB);
            userdb_cache_put(s->cache, rp->user, &rp->result, now);
            sl_stat_add(&s->st->lookups[SL_TIER_SQL][lookup_result(rp->result.status)], 1);
            sl_hist_latency_us(&s->st->sql_us, rp->sql_us);
            unsigned idx = 0;
            conn *c = conn_of_token(s, rp->token, &idx);
            if (c == NULL || strcmp(c->lookups[idx].user, rp->user) != 0) {
                continue; /* the connection or its transaction went away meanwhile */
            }
            lookup_done(c, idx, &rp->result);
        }
    } while (n == RESOLVER_DRAIN);
}

/* ---- content ---------------------------------------------------------- */

static void on_store_event(void *owner, store_txn *t, store_event ev);

/* Number of distinct destinations; duplicates share the first's delivery. */
static size_t mark_duplicates(conn *c)
{
    size_t unique = 0;
    for (size_t i = 0; i < c->rcpts_n; i++) {
        c->rcpts[i].dup_of = -1;
        for (size_t j = 0; j < i; j++) {
            if (c->rcpts[j].dup_of < 0 && strcmp(c->rcpts[j].dest, c->rcpts[i].dest) == 0) {
                c->rcpts[i].dup_of = (int)j;
                break;
            }
        }
        if (c->rcpts[i].dup_of < 0) {
            unique++;
        }
    }
    return unique;
}

static void build_headers(conn *c, bool single, sl_slice rcpt, uint8_t **hdr_out,
                          size_t *len_out, size_t *lines_out)
{
    const sl_config *cfg = c->srv->cfg;
    int64_t sec;
    uint32_t usec;
    sl_clock_wall(&sec, &usec);
    msg_headers_in in = {
        .sender = {(const uint8_t *)c->sender, strlen(c->sender)},
        .rcpt = rcpt,
        .single_rcpt = single,
        .lhlo_name = c->lhlo,
        .client_ip = c->ip,
        .hostname = cfg->hostname,
        .trans_id = c->tid,
        .smtputf8 = c->smtputf8,
        .now_sec = sec,
        .tz_offset_min = sl_clock_tz_offset_min(),
        .crlf = cfg->mail_crlf,
    };
    size_t need = msg_headers_format(&in, NULL, 0, lines_out);
    uint8_t *hdr = sl_malloc(need);
    size_t got = msg_headers_format(&in, hdr, need, lines_out);
    SL_ASSERT(got == need);
    *hdr_out = hdr;
    *len_out = need;
}

/* Start the content of the transaction: prepare each destination and open
 * the files. Recipients whose maildir cannot be prepared keep their
 * failure for the end-of-data reply. */
static void content_begin(conn *c)
{
    size_t unique = mark_duplicates(c);
    c->txn = store_txn_new(c->srv->store, c, on_store_event);
    for (size_t i = 0; i < c->rcpts_n; i++) {
        rcpt_ent *e = &c->rcpts[i];
        if (e->dup_of >= 0) {
            continue;
        }
        bool folder = strcmp(e->folder, "INBOX") != 0;
        e->store_idx = store_txn_add_rcpt(c->txn, e->dest, folder, &e->outcome);
    }
    c->in_data = true;
    c->size = 0;
    c->vsize = 0;
    c->too_big = false;
    c->line_start = true;
    c->in_headers = true;
    c->msgid[0] = '\0';
    if (store_txn_rcpt_count(c->txn) == 0) {
        store_txn_abandon(&c->txn); /* nothing can be stored: reply at the end */
        return;
    }
    bool single = unique == 1 && c->rcpts_n == 1;
    sl_slice rcpt = {(const uint8_t *)c->rcpts[0].addr, strlen(c->rcpts[0].addr)};
    uint8_t *hdr;
    size_t hdr_len;
    size_t lines;
    build_headers(c, single, rcpt, &hdr, &hdr_len, &lines);
    store_txn_begin(c->txn, hdr, hdr_len);
    c->size = hdr_len;
    c->vsize = hdr_len + (c->srv->cfg->mail_crlf ? 0 : lines);
    free(hdr);
}

static void note_msgid(conn *c, sl_slice span)
{
    static const char key[] = "message-id:";
    if (span.len < sizeof(key) - 1) {
        return;
    }
    if (!sl_slice_eq_nocase((sl_slice){span.ptr, sizeof(key) - 1}, key)) {
        return;
    }
    size_t i = sizeof(key) - 1;
    while (i < span.len && (span.ptr[i] == ' ' || span.ptr[i] == '\t')) {
        i++;
    }
    size_t n = SL_MIN(span.len - i, sizeof(c->msgid) - 1);
    for (size_t k = 0; k < n; k++) {
        uint8_t ch = span.ptr[i + k];
        c->msgid[k] = (char)(ch < 0x20 || ch == 0x7f ? '?' : ch);
    }
    c->msgid[n] = '\0';
}

static void content_span(conn *c, const lmtp_event *ev, uint16_t bid)
{
    uint64_t eol_bytes = ev->eol ? (c->srv->cfg->mail_crlf ? 2 : 1) : 0;
    if (c->in_headers && c->line_start) {
        if (ev->span.len == 0 && ev->eol) {
            c->in_headers = false;
        } else if (c->msgid[0] == '\0') {
            note_msgid(c, ev->span);
        }
    }
    c->line_start = ev->eol;
    c->size += ev->span.len + eol_bytes;
    c->vsize += ev->span.len + (ev->eol ? 2 : 0);
    if (c->too_big) {
        return;
    }
    if (c->size > c->srv->cfg->message_size_max + 4096) {
        /* Header bytes we add do not count against the sender's limit. */
        c->too_big = true;
        if (c->txn != NULL) {
            store_txn_abandon(&c->txn);
        }
        return;
    }
    if (c->txn == NULL) {
        return;
    }
    store_txn_append(c->txn, ev->span.ptr, ev->span.len, bid);
    if (ev->eol) {
        store_txn_eol(c->txn);
    }
    if (store_txn_congested(c->txn)) {
        c->wait = WAIT_STORE;
    }
}

static void log_delivery(conn *c, const rcpt_ent *e, const char *result)
{
    sl_info("lmtp(%s): rcpt=<%s> msgid=%s size=%llu folder=%s file=%s result=%s", c->tid, e->addr,
            c->msgid[0] != '\0' ? c->msgid : "-", (unsigned long long)c->size, e->folder,
            c->txn != NULL ? store_txn_name(c->txn) : "-", result);
}

static void recipient_session_id(conn *c, size_t i, char *out, size_t out_len)
{
    if (i == 0) {
        snprintf(out, out_len, "%s", c->tid);
    } else {
        snprintf(out, out_len, "%s:R%zu", c->tid, i + 1);
    }
}

/* One reply per accepted RCPT, in RCPT order (RFC 2033 4.2). */
static void content_replies(conn *c)
{
    lmtp_server *s = c->srv;
    for (size_t i = 0; i < c->rcpts_n; i++) {
        rcpt_ent *e = &c->rcpts[i];
        const rcpt_ent *src = e->dup_of >= 0 ? &c->rcpts[e->dup_of] : e;
        sl_slice addr = {(const uint8_t *)e->addr, strlen(e->addr)};
        if (c->too_big) {
            lmtp_out_raw(&c->out, "552 5.3.4 <", 11);
            lmtp_out_addr(&c->out, addr);
            lmtp_out_printf(&c->out, "> Message size exceeds fixed maximum message size\r\n");
            sl_stat_add(&s->st->rcpts[SL_RCPT_REJECTED], 1);
            log_delivery(c, e, "rejected (too big)");
            continue;
        }
        store_outcome o = src->outcome;
        if (o == STORE_OK && src->store_idx < 0) {
            o = STORE_TEMPFAIL;
        } else if (o == STORE_OK && c->txn != NULL) {
            o = store_txn_outcome(c->txn, (size_t)src->store_idx);
        }
        lmtp_out_printf(&c->out, "%s <", lmtp_reply_store_code(o));
        lmtp_out_addr(&c->out, addr);
        if (o == STORE_OK) {
            char rsid[64];
            recipient_session_id(c, i, rsid, sizeof(rsid));
            lmtp_out_printf(&c->out, "> %s Saved\r\n", rsid);
            sl_stat_add(&s->st->rcpts[SL_RCPT_DELIVERED], 1);
            sl_stat_add(&s->st->bytes_delivered, c->size);
            log_delivery(c, e, "saved");
        } else {
            lmtp_out_printf(&c->out, "> %s\r\n",
                            o == STORE_NOSPACE ? "Mailbox temporarily out of disk space"
                                               : "Temporary internal error");
            sl_stat_add(&s->st->rcpts[SL_RCPT_TEMPFAIL], 1);
            log_delivery(c, e, o == STORE_NOSPACE ? "failed (no space)" : "failed");
        }
    }
    sl_stat_add(&s->st->transactions, 1);
}

/* The final "." or BDAT LAST: hand the content to the group commit, or
 * answer at once when nothing was stored. */
static void content_end(conn *c)
{
    c->in_data = false;
    if (c->txn == NULL || c->too_big) {
        content_replies(c);
        txn_reset(c);
        return;
    }
    store_txn_finish(c->txn, c->size, c->vsize);
    c->data_end_us = sl_clock_us();
    c->wait = WAIT_COMMIT;
}

static void on_store_event(void *owner, store_txn *t, store_event ev)
{
    conn *c = owner;
    SL_ASSERT(c->txn == t);
    if (ev == STORE_EV_PROGRESS) {
        if (c->wait == WAIT_STORE && !store_txn_congested(t)) {
            c->wait = WAIT_NONE;
            conn_process(c);
        }
        return;
    }
    SL_ASSERT(c->wait == WAIT_COMMIT);
    c->wait = WAIT_NONE;
    sl_hist_latency_us(&c->srv->st->delivery_us, sl_clock_us() - c->data_end_us);
    content_replies(c);
    store_txn_free(&c->txn);
    txn_reset(c);
    conn_process(c);
}

static void cmd_data(conn *c)
{
    if (!c->has_mail) {
        reply(c, "503 5.5.0 MAIL needed first");
        return;
    }
    if (c->chunking) {
        reply(c, "503 5.5.0 Bad sequence of commands");
        return;
    }
    if (c->rcpts_n == 0) {
        reply(c, "503 5.5.0 No valid recipients");
        return;
    }
    content_begin(c);
    reply(c, "354 OK");
    lmtp_parser_begin_data(c->parser);
}

/* BDAT: the parser takes the chunk whatever we answer (RFC 3030); a
 * rejected chunk is answered once it has been consumed. */
static void cmd_bdat(conn *c, const lmtp_event *ev)
{
    c->chunk_reply = NULL;
    c->chunk_bytes = ev->bdat_size;
    if (!c->has_mail) {
        c->chunk_reply = "503 5.5.0 MAIL needed first";
    } else if (c->chunk_failed) {
        c->chunk_reply = "503 5.5.0 Previous data chunk failed, issue RSET first";
    } else if (c->rcpts_n == 0) {
        c->chunk_reply = ev->bdat_last ? "" : "503 5.5.0 No valid recipients";
    }
    if (c->chunk_reply != NULL) {
        if (c->has_mail) {
            c->chunk_failed = true;
        }
        return;
    }
    if (!c->chunking) {
        c->chunking = true;
        content_begin(c);
    }
}

static void chunk_end(conn *c, const lmtp_event *ev)
{
    if (c->chunk_reply != NULL) {
        if (c->chunk_reply[0] != '\0') {
            reply(c, c->chunk_reply); /* BDAT LAST without recipients: no reply */
        }
        c->chunk_reply = NULL;
        if (ev->bdat_last) {
            txn_reset(c);
        }
        return;
    }
    if (!ev->bdat_last) {
        lmtp_out_printf(&c->out, "250 2.0.0 Added %llu octets\r\n",
                        (unsigned long long)c->chunk_bytes);
        return;
    }
    content_end(c);
}

/* ---- dispatch --------------------------------------------------------- */

static void on_command(conn *c, const lmtp_event *ev)
{
    switch (ev->cmd) {
    case LMTP_CMD_LHLO:
        cmd_lhlo(c, ev);
        break;
    case LMTP_CMD_HELO:
    case LMTP_CMD_EHLO:
        /* RFC 2033 4.1: LMTP has its own greeting so a mismatch is seen. */
        bad_command(c, "500 5.5.1 Unknown command");
        break;
    case LMTP_CMD_MAIL:
        cmd_mail(c, ev);
        break;
    case LMTP_CMD_RCPT:
        cmd_rcpt(c, ev);
        break;
    case LMTP_CMD_DATA:
        cmd_data(c);
        break;
    case LMTP_CMD_BDAT:
        cmd_bdat(c, ev);
        break;
    case LMTP_CMD_RSET:
        txn_reset(c);
        reply(c, "250 2.0.0 OK");
        break;
    case LMTP_CMD_NOOP:
        reply(c, "250 2.0.0 OK");
        break;
    case LMTP_CMD_VRFY:
        reply(c, "252 2.3.3 Try RCPT instead");
        break;
    case LMTP_CMD_QUIT:
        reply(c, "221 2.0.0 Bye");
        c->close_after_send = true;
        break;
    case LMTP_CMD_STARTTLS:
    case LMTP_CMD_AUTH:
        reply(c, "502 5.5.1 Unsupported command");
        break;
    case LMTP_CMD_UNKNOWN:
    case LMTP_CMD_NONE:
        bad_command(c, "500 5.5.1 Unknown command");
        break;
    }
}

static void on_event(conn *c, const lmtp_event *ev, uint16_t bid)
{
    switch (ev->type) {
    case LMTP_EV_COMMAND:
        on_command(c, ev);
        break;
    case LMTP_EV_BAD_COMMAND:
        bad_command(c, lmtp_reply_bad_command(ev->cmd, ev->error));
        break;
    case LMTP_EV_BODY_SPAN:
        if (c->in_data && c->chunk_reply == NULL) {
            content_span(c, ev, bid);
        }
        break;
    case LMTP_EV_DATA_END:
        content_end(c);
        break;
    case LMTP_EV_CHUNK_END:
        chunk_end(c, ev);
        break;
    }
}

static bool idle_session(const conn *c)
{
    return !c->has_mail && c->wait == WAIT_NONE && c->txn == NULL &&
           lmtp_parser_mode(c->parser) == LMTP_MODE_COMMAND;
}

static void say_shutdown(conn *c)
{
    lmtp_out_printf(&c->out, "421 4.3.2 %s Shutting down\r\n", c->srv->cfg->hostname);
    c->close_after_send = true;
}

/* Parse what has arrived until a command must wait, then send. */
static void conn_process(conn *c)
{
    lmtp_server *s = c->srv;
    while (!c->closing && !c->close_after_send && c->wait == WAIT_NONE && c->inq_n > 0 &&
           c->out.len < OUT_PAUSE) {
        if (s->shutting_down && idle_session(c)) {
            say_shutdown(c);
            break;
        }
        inbuf *b = &c->inq[c->inq_head];
        const uint8_t *base = sl_bufring_ptr(s->bufs, b->bid);
        size_t used = 0;
        lmtp_event ev;
        lmtp_parse_rc rc = lmtp_parse(c->parser, base + b->off, b->len - b->off, &used, &ev);
        SL_ASSERT(used <= b->len - b->off);
        b->off += (uint32_t)used;
        if (rc == LMTP_PARSE_EVENT) {
            /* Parse again even at the end of the buffer: some events (the
             * end of a BDAT chunk, a held CR) take no further bytes. */
            on_event(c, &ev, b->bid);
            continue;
        }
        SL_ASSERT(b->off == b->len);
        inq_pop(c);
    }
    if (c->closing) {
        return;
    }
    if (s->shutting_down && !c->close_after_send && idle_session(c) && c->inq_n == 0) {
        say_shutdown(c);
    }
    if (c->eof && c->inq_n == 0 && c->wait != WAIT_COMMIT && c->wait != WAIT_LOOKUP) {
        /* The peer sent all it will (it may have only half-closed): answer
         * what it sent, then close. */
        c->close_after_send = true;
    }
    conn_flush(c);
    if (!c->closing) {
        conn_arm_recv(c);
    }
}

/* ---- per-loop work, timers, shutdown ---------------------------------- */

void lmtp_server_after_dispatch(lmtp_server *s)
{
    store_kick(s->store);
    sl_bufring_publish(s->bufs);
    if (s->bufs->out >= s->bufs->count) {
        return; /* still no buffer free: starved connections keep waiting */
    }
    /* Buffers came back: give starved connections their recv again. */
    size_t n = s->starved_n;
    s->starved_n = 0;
    for (size_t i = 0; i < n; i++) {
        conn *c = s->starved[i];
        conn_arm_recv(c);
    }
}

void lmtp_server_tick(lmtp_server *s, uint64_t now_ms)
{
    for (uint32_t i = 0; i < s->conns_cap; i++) {
        conn *c = s->conns[i];
        if (c == NULL || c->closing || c->close_after_send) {
            continue;
        }
        if (c->wait != WAIT_NONE) {
            continue; /* waiting on us (userdb, disk), not on the peer */
        }
        bool data = c->in_data || lmtp_parser_mode(c->parser) != LMTP_MODE_COMMAND;
        uint64_t limit = data ? s->cfg->data_timeout_ms : s->cfg->idle_timeout_ms;
        if (now_ms - c->last_ms < limit) {
            continue;
        }
        sl_info("lmtp(%s): %s timeout, disconnecting %s", c->sid, data ? "data" : "idle", c->ip);
        lmtp_out_printf(&c->out, "421 4.4.2 %s Disconnected for inactivity\r\n", s->cfg->hostname);
        c->close_after_send = true;
        if (c->txn != NULL && c->wait != WAIT_COMMIT) {
            store_txn_abandon(&c->txn);
        }
        conn_flush(c);
    }
}

static void cancel_accepts(lmtp_server *s)
{
    for (size_t i = 0; i < s->listeners_n; i++) {
        sl_acceptor_stop(&s->listeners[i]);
    }
}

void lmtp_server_shutdown(lmtp_server *s, bool force)
{
    if (!s->shutting_down) {
        s->shutting_down = true;
        cancel_accepts(s);
    }
    for (uint32_t i = 0; i < s->conns_cap; i++) {
        conn *c = s->conns[i];
        if (c == NULL || c->closing) {
            continue;
        }
        if (force) {
            conn_close(c);
        } else if (idle_session(c) && !c->close_after_send) {
            say_shutdown(c);
            conn_flush(c);
        }
    }
}
