/* auth/userdb_redis.c: see userdb_redis.h.
 *
 * The ring client keeps one connection and a FIFO of requests: Redis answers
 * a connection's commands in order, so the head of the FIFO owns the next
 * reply. Commands are formatted into `out` as they are queued; flush hands
 * `out` to the kernel as `sending` (one send in flight at a time, never
 * reallocated while the kernel may read it) and starts filling the other
 * buffer. Both buffers and the FIFO are bounded.
 *
 * Every request carries a deadline. Because replies are ordered, only the
 * head's deadline matters: one ring timer is armed for it (or for the
 * connect deadline, or the next reconnect attempt), and when it passes, the
 * connection is dropped and every request in flight is answered ERROR.
 *
 * Lifetime: ops count themselves in `inflight` (connection ops also in
 * `conn_ops`); the socket is closed only when no connection op is left, and
 * the client is freed only when nothing at all is left in flight. */
#include "auth/userdb_redis.h"

#include "auth/redis_entry.h"
#include "core/alloc.h"
#include "core/base/base.h"
#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define UR_TIMEOUT_MS_DEFAULT 500
#define UR_QUEUE_MAX_DEFAULT 4096
#define UR_OUT_BYTES_MAX_DEFAULT (1024 * 1024)
#define UR_OUT_BYTES_MIN 4096
#define UR_IN_BYTES 16384
/* Unparsed reply bytes we are willing to hold: our values are under 1 KiB,
 * so anything near this is a foreign key or a broken peer. */
#define UR_READER_BYTES_MAX (256 * 1024)
#define UR_BACKOFF_MS_MIN 100
#define UR_BACKOFF_MS_MAX 5000
#define UR_GARBAGE_KEYS_MAX 64
#define UR_PEER_BYTES_MAX 320

typedef enum ur_state {
    UR_DOWN = 0,   /* no socket; retry_at_ms says when to dial */
    UR_CONNECTING, /* connect in flight; requests queue up */
    UR_UP,
    UR_CLOSING, /* failed: waiting for connection ops, then the close */
} ur_state;

typedef enum ur_kind {
    UR_LOOKUP = 0,
    UR_LOOKUP_PASS,
    UR_STORE,
    UR_GEN,
} ur_kind;

typedef struct ur_req {
    ur_kind kind;
    uint64_t token;
    uint64_t deadline_ms;
    uint64_t sent_us;                 /* 0 until its bytes are handed to a send */
    char user[USERDB_ADDR_BYTES_MAX]; /* lookups: for the garbage log line */
} ur_req;

typedef struct ur_buf {
    char *ptr;
    size_t len;
    size_t cap;
} ur_buf;

struct userdb_redis {
    sl_ring *ring;
    userdb_redis_callbacks cb;
    char prefix[REDIS_ENTRY_PREFIX_BYTES_MAX];
    char gen_key[REDIS_ENTRY_KEY_BYTES_MAX];
    size_t gen_key_len;
    unsigned timeout_ms;
    unsigned positive_ttl_s;
    unsigned negative_ttl_s;
    size_t queue_max;
    size_t out_bytes_max;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char peer[UR_PEER_BYTES_MAX];

    ur_state state;
    int fd;
    bool detached;
    bool ever_connected;
    bool down_logged;  /* the outage was logged; quiet until connected again */
    unsigned inflight; /* every op the kernel holds, timer and close included */
    unsigned conn_ops; /* connect, recv, send */
    bool connect_inflight;
    bool recv_armed;
    bool send_inflight;
    uint64_t connect_deadline_ms;
    uint64_t retry_at_ms;
    unsigned backoff_ms;

    sl_op op_connect;
    sl_op op_recv;
    sl_op op_send;
    sl_op op_close;
    sl_op op_timer;
    bool timer_armed;
    bool timer_cancelled;
    uint64_t timer_at_ms;
    struct __kernel_timespec timer_ts; /* read by the kernel at submission */

    ur_req *fifo;
    size_t fifo_head;
    size_t fifo_n;
    size_t fifo_sent; /* the first fifo_sent requests are on the wire */
    uint64_t *failq;  /* tokens of lookups made while down, answered by flush */
    size_t failq_head;
    size_t failq_n;
    ur_buf out;
    ur_buf sending;
    size_t sending_off;
    redisReader *reader;

    bool gen_pending;
    bool gen_known;
    uint64_t gen_sig; /* hash of the last value seen; 0 for "no key" */

    uint64_t garbage_keys[UR_GARBAGE_KEYS_MAX];
    size_t garbage_n;
    size_t garbage_next;

    userdb_redis_counters counters;
    uint8_t in[UR_IN_BYTES];
};

static void ur_on_connect(sl_op *op, int res, uint32_t flags);
static void ur_on_recv(sl_op *op, int res, uint32_t flags);
static void ur_on_send(sl_op *op, int res, uint32_t flags);
static void ur_on_close(sl_op *op, int res, uint32_t flags);
static void ur_on_timer(sl_op *op, int res, uint32_t flags);
static void ur_timer_update(userdb_redis *r);
static void ur_maybe_close(userdb_redis *r);

/* ---- setup ------------------------------------------------------------ */

static int ur_resolve(userdb_redis *r, const userdb_redis_config *cfg, char *err, size_t err_len)
{
    if (cfg->unix_path != NULL && cfg->unix_path[0] != '\0') {
        struct sockaddr_un *sun = (struct sockaddr_un *)&r->addr;
        if (strlen(cfg->unix_path) >= sizeof(sun->sun_path)) {
            snprintf(err, err_len, "redis: unix socket path too long: %s", cfg->unix_path);
            return -1;
        }
        sun->sun_family = AF_UNIX;
        memcpy(sun->sun_path, cfg->unix_path, strlen(cfg->unix_path) + 1);
        r->addr_len = (socklen_t)sizeof(*sun);
        snprintf(r->peer, sizeof(r->peer), "unix:%s", cfg->unix_path);
        return 0;
    }
    if (cfg->host == NULL || cfg->host[0] == '\0' || cfg->port == 0 || cfg->port > 65535) {
        snprintf(err, err_len, "redis: no address (host and port, or a unix socket path)");
        return -1;
    }
    char port[8];
    snprintf(port, sizeof(port), "%u", cfg->port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(cfg->host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, err_len, "redis: cannot resolve %s: %s", cfg->host, gai_strerror(rc));
        return -1;
    }
    SL_ASSERT(res->ai_addrlen <= sizeof(r->addr));
    memcpy(&r->addr, res->ai_addr, res->ai_addrlen);
    r->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    snprintf(r->peer, sizeof(r->peer), "%s:%u", cfg->host, cfg->port);
    return 0;
}

static void ur_start_connect(userdb_redis *r);

userdb_redis *userdb_redis_new(sl_ring *ring, const userdb_redis_config *cfg,
                               const userdb_redis_callbacks *cb, char *err, size_t err_len)
{
    SL_ASSERT(ring != NULL);
    SL_ASSERT(cb != NULL && (cb->on_lookup != NULL || cb->on_pass_lookup != NULL));
    userdb_redis *r = sl_calloc(1, sizeof(*r));
    if (ur_resolve(r, cfg, err, err_len) != 0) {
        free(r);
        return NULL;
    }
    const char *prefix = cfg->key_prefix;
    if (prefix != NULL && strlen(prefix) >= sizeof(r->prefix)) {
        snprintf(err, err_len, "redis: key prefix too long");
        free(r);
        return NULL;
    }
    snprintf(r->prefix, sizeof(r->prefix), "%s",
             prefix == NULL || prefix[0] == '\0' ? REDIS_ENTRY_PREFIX_DEFAULT : prefix);
    r->gen_key_len =
        redis_entry_key(r->prefix, REDIS_ENTRY_GEN, NULL, r->gen_key, sizeof(r->gen_key));
    SL_ASSERT(r->gen_key_len > 0);
    r->ring = ring;
    r->cb = *cb;
    r->timeout_ms = cfg->timeout_ms == 0 ? UR_TIMEOUT_MS_DEFAULT : cfg->timeout_ms;
    r->positive_ttl_s = cfg->positive_ttl_s;
    r->negative_ttl_s = cfg->negative_ttl_s;
    r->queue_max = cfg->queue_max == 0 ? UR_QUEUE_MAX_DEFAULT : cfg->queue_max;
    r->out_bytes_max = cfg->out_bytes_max == 0 ? UR_OUT_BYTES_MAX_DEFAULT : cfg->out_bytes_max;
    r->out_bytes_max = SL_MAX(r->out_bytes_max, UR_OUT_BYTES_MIN);
    r->fifo = sl_calloc(r->queue_max, sizeof(*r->fifo));
    r->failq = sl_calloc(r->queue_max, sizeof(*r->failq));
    r->fd = -1;
    r->backoff_ms = UR_BACKOFF_MS_MIN;
    r->op_connect.fn = ur_on_connect;
    r->op_recv.fn = ur_on_recv;
    r->op_send.fn = ur_on_send;
    r->op_close.fn = ur_on_close;
    r->op_timer.fn = ur_on_timer;
    r->state = UR_DOWN;
    ur_start_connect(r);
    return r;
}

static void ur_destroy(userdb_redis *r)
{
    if (r->reader != NULL) {
        redisReaderFree(r->reader);
    }
    free(r->out.ptr);
    free(r->sending.ptr);
    free(r->fifo);
    free(r->failq);
    free(r);
}

/* A detached client goes away once the kernel holds nothing of it. */
static void ur_release_check(userdb_redis *r)
{
    SL_ASSERT(r->detached);
    if (r->conn_ops == 0 && r->fd >= 0) {
        r->inflight++;
        io_uring_prep_close(sl_ring_sqe(r->ring, &r->op_close), r->fd);
        r->fd = -1;
        return;
    }
    if (r->inflight == 0) {
        ur_destroy(r);
    }
}

void userdb_redis_free(userdb_redis **rp)
{
    userdb_redis *r = *rp;
    if (r == NULL) {
        return;
    }
    *rp = NULL;
    SL_ASSERT(!r->detached);
    r->detached = true;
    if (r->connect_inflight) {
        sl_ring_cancel(r->ring, &r->op_connect);
    }
    if (r->recv_armed) {
        sl_ring_cancel(r->ring, &r->op_recv);
    }
    if (r->send_inflight) {
        sl_ring_cancel(r->ring, &r->op_send);
    }
    if (r->timer_armed && !r->timer_cancelled) {
        sl_ring_cancel(r->ring, &r->op_timer);
        r->timer_cancelled = true;
    }
    ur_release_check(r);
}

bool userdb_redis_connected(const userdb_redis *r)
{
    return r->state == UR_UP;
}

const userdb_redis_counters *userdb_redis_counters_get(const userdb_redis *r)
{
    return &r->counters;
}

/* ---- the request FIFO --------------------------------------------------- */

static ur_req *ur_fifo_at(userdb_redis *r, size_t i)
{
    SL_ASSERT(i < r->fifo_n);
    return &r->fifo[(r->fifo_head + i) % r->queue_max];
}

/* Remove the head, returning a copy of what callers need after a callback
 * may have reused the slot. */
static ur_req ur_fifo_pop(userdb_redis *r)
{
    SL_ASSERT(r->fifo_n > 0);
    ur_req *head = &r->fifo[r->fifo_head];
    ur_req copy;
    copy.kind = head->kind;
    copy.token = head->token;
    copy.deadline_ms = head->deadline_ms;
    copy.sent_us = head->sent_us;
    copy.user[0] = '\0';
    r->fifo_head = (r->fifo_head + 1) % r->queue_max;
    r->fifo_n--;
    if (r->fifo_sent > 0) {
        r->fifo_sent--;
    }
    return copy;
}

static bool ur_buf_reserve(ur_buf *b, size_t more, size_t max)
{
    if (b->len + more > max) {
        return false;
    }
    if (b->len + more > b->cap) {
        size_t cap = b->cap == 0 ? UR_OUT_BYTES_MIN : b->cap;
        while (cap < b->len + more) {
            cap *= 2;
        }
        cap = SL_MIN(cap, max);
        b->ptr = sl_realloc(b->ptr, cap);
        b->cap = cap;
    }
    return true;
}

/* Format one command into `out` and give it a FIFO slot. */
static int ur_queue(userdb_redis *r, ur_kind kind, uint64_t token, const char *user, int argc,
                    const char **argv, const size_t *lens)
{
    SL_ASSERT(r->state == UR_UP || r->state == UR_CONNECTING);
    if (r->fifo_n == r->queue_max) {
        return -EAGAIN;
    }
    char *cmd = NULL;
    int n = redisFormatCommandArgv(&cmd, argc, argv, lens);
    SL_ASSERT(n > 0 && cmd != NULL);
    if (!ur_buf_reserve(&r->out, (size_t)n, r->out_bytes_max)) {
        redisFreeCommand(cmd);
        return -EAGAIN;
    }
    memcpy(r->out.ptr + r->out.len, cmd, (size_t)n);
    r->out.len += (size_t)n;
    redisFreeCommand(cmd);
    r->fifo_n++;
    ur_req *q = ur_fifo_at(r, r->fifo_n - 1);
    q->kind = kind;
    q->token = token;
    q->deadline_ms = sl_clock_ms() + r->timeout_ms;
    q->sent_us = 0;
    snprintf(q->user, sizeof(q->user), "%s", user != NULL ? user : "");
    if (r->fifo_n == 1) {
        ur_timer_update(r);
    }
    return 0;
}

/* res is a userdb_result for UR_LOOKUP, a passdb_result for UR_LOOKUP_PASS. */
static void ur_answer(userdb_redis *r, ur_kind kind, uint64_t token, userdb_redis_status st,
                      const void *res, uint64_t sent_us)
{
    uint64_t latency_us = 0;
    if (sent_us != 0) {
        uint64_t now = sl_clock_us();
        latency_us = now > sent_us ? now - sent_us : 0;
    }
    switch (st) {
    case USERDB_REDIS_HIT:
        r->counters.hits++;
        break;
    case USERDB_REDIS_MISS:
        r->counters.misses++;
        break;
    case USERDB_REDIS_ERROR:
        r->counters.errors++;
        break;
    }
    if (kind == UR_LOOKUP_PASS) {
        r->cb.on_pass_lookup(r->cb.ctx, token, st, res, latency_us);
    } else {
        r->cb.on_lookup(r->cb.ctx, token, st, res, latency_us);
    }
}

/* ---- connection --------------------------------------------------------- */

static void ur_went_down(userdb_redis *r)
{
    r->state = UR_DOWN;
    r->sending.len = 0;
    r->sending_off = 0;
    r->retry_at_ms = sl_clock_ms() + r->backoff_ms;
    r->backoff_ms = SL_MIN(r->backoff_ms * 2, UR_BACKOFF_MS_MAX);
    ur_timer_update(r);
}

static void ur_start_connect(userdb_redis *r)
{
    SL_ASSERT(r->state == UR_DOWN);
    SL_ASSERT(r->fd < 0);
    int fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        r->counters.connect_failures++;
        sl_warn("redis %s: socket: %s", r->peer, strerror(errno));
        ur_went_down(r);
        return;
    }
    if (r->addr.ss_family != AF_UNIX) {
        /* Pipelined requests must not wait for Nagle. */
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (r->reader != NULL) {
        redisReaderFree(r->reader);
    }
    r->reader = redisReaderCreate();
    SL_ASSERT(r->reader != NULL);
    r->fd = fd;
    r->state = UR_CONNECTING;
    r->connect_deadline_ms = sl_clock_ms() + r->timeout_ms;
    r->connect_inflight = true;
    r->conn_ops++;
    r->inflight++;
    io_uring_prep_connect(sl_ring_sqe(r->ring, &r->op_connect), fd,
                          (const struct sockaddr *)&r->addr, r->addr_len);
    ur_timer_update(r);
}

/* Answer every queued request ERROR. State is already CLOSING, so lookups
 * the callbacks make go to the fail queue, not to this FIFO. */
static void ur_fail_pending(userdb_redis *r, bool timed_out)
{
    while (r->fifo_n > 0) {
        ur_req q = ur_fifo_pop(r);
        switch (q.kind) {
        case UR_LOOKUP:
        case UR_LOOKUP_PASS:
            if (timed_out) {
                r->counters.timeouts++;
            }
            ur_answer(r, q.kind, q.token, USERDB_REDIS_ERROR, NULL, q.sent_us);
            break;
        case UR_STORE:
            r->counters.store_errors++;
            break;
        case UR_GEN:
            r->gen_pending = false;
            break;
        }
    }
    r->fifo_sent = 0;
}

__attribute__((format(printf, 3, 4))) static void ur_conn_fail(userdb_redis *r, bool timed_out,
                                                               const char *fmt, ...)
{
    if (r->state == UR_DOWN || r->state == UR_CLOSING) {
        return;
    }
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (!r->down_logged) {
        sl_warn("redis %s: %s; %zu requests failed; reconnecting in the background", r->peer, why,
                r->fifo_n);
        r->down_logged = true;
    } else {
        sl_debug("redis %s: %s", r->peer, why);
    }
    r->state = UR_CLOSING;
    r->out.len = 0;
    if (r->connect_inflight) {
        sl_ring_cancel(r->ring, &r->op_connect);
    }
    if (r->recv_armed) {
        sl_ring_cancel(r->ring, &r->op_recv);
    }
    if (r->send_inflight) {
        sl_ring_cancel(r->ring, &r->op_send);
    }
    ur_fail_pending(r, timed_out);
    ur_maybe_close(r);
}

static void ur_maybe_close(userdb_redis *r)
{
    if (r->state != UR_CLOSING || r->conn_ops > 0) {
        return;
    }
    if (r->fd >= 0) {
        r->inflight++;
        io_uring_prep_close(sl_ring_sqe(r->ring, &r->op_close), r->fd);
        r->fd = -1;
        return;
    }
    ur_went_down(r);
}

static void ur_on_close(sl_op *op, int res, uint32_t flags)
{
    userdb_redis *r = SL_CONTAINER_OF(op, userdb_redis, op_close);
    r->inflight--;
    if (r->detached) {
        ur_release_check(r);
        return;
    }
    SL_ASSERT(r->state == UR_CLOSING);
    ur_went_down(r);
}

static void ur_arm_recv(userdb_redis *r)
{
    SL_ASSERT(!r->recv_armed);
    r->recv_armed = true;
    r->conn_ops++;
    r->inflight++;
    io_uring_prep_recv(sl_ring_sqe(r->ring, &r->op_recv), r->fd, r->in, sizeof(r->in), 0);
}

static void ur_queue_gen(userdb_redis *r)
{
    if (r->gen_pending || r->state != UR_UP) {
        return;
    }
    const char *argv[2] = {"GET", r->gen_key};
    size_t lens[2] = {3, r->gen_key_len};
    if (ur_queue(r, UR_GEN, 0, NULL, 2, argv, lens) == 0) {
        r->gen_pending = true;
    }
}

/* Every completion of a connection op starts here: the op is no longer in
 * flight. false when the completion is stale (the client is being freed, or
 * the connection left the state the op was for), and then it was dealt with. */
static bool ur_conn_op_done(userdb_redis *r, ur_state expected)
{
    r->inflight--;
    r->conn_ops--;
    if (r->detached) {
        ur_release_check(r);
        return false;
    }
    if (r->state != expected) {
        ur_maybe_close(r);
        return false;
    }
    return true;
}

static void ur_on_connect(sl_op *op, int res, uint32_t flags)
{
    userdb_redis *r = SL_CONTAINER_OF(op, userdb_redis, op_connect);
    r->connect_inflight = false;
    if (!ur_conn_op_done(r, UR_CONNECTING)) {
        return;
    }
    if (res < 0) {
        r->counters.connect_failures++;
        ur_conn_fail(r, false, "connect: %s", strerror(-res));
        return;
    }
    r->state = UR_UP;
    if (r->ever_connected) {
        r->counters.reconnects++;
    }
    r->ever_connected = true;
    if (r->down_logged) {
        sl_info("redis %s: connected again", r->peer);
        r->down_logged = false;
    }
    ur_arm_recv(r);
    /* The counter may have moved while we were away. */
    ur_queue_gen(r);
    ur_timer_update(r);
}

/* ---- replies ------------------------------------------------------------ */

/* True the first time key is seen (then remembered, in a small ring). */
static bool ur_garbage_first(userdb_redis *r, const char *user)
{
    uint64_t h = sl_hash_str(user);
    for (size_t i = 0; i < r->garbage_n; i++) {
        if (r->garbage_keys[i] == h) {
            return false;
        }
    }
    r->garbage_keys[r->garbage_next] = h;
    r->garbage_next = (r->garbage_next + 1) % UR_GARBAGE_KEYS_MAX;
    if (r->garbage_n < UR_GARBAGE_KEYS_MAX) {
        r->garbage_n++;
    }
    return true;
}

/* The reply to a GET of a user (UR_LOOKUP) or pass (UR_LOOKUP_PASS) key. */
static void ur_reply_lookup(userdb_redis *r, const redisReply *reply)
{
    ur_req *head = ur_fifo_at(r, 0);
    bool pass = head->kind == UR_LOOKUP_PASS;
    const char *key_kind = pass ? "pass" : "user";
    userdb_result user_res;
    passdb_result pass_res;
    userdb_redis_status st = USERDB_REDIS_ERROR;
    if (reply->type == REDIS_REPLY_NIL) {
        st = USERDB_REDIS_MISS;
    } else if (reply->type == REDIS_REPLY_STRING) {
        const uint8_t *v = (const uint8_t *)reply->str;
        redis_entry_rc rc = pass ? redis_entry_decode_pass(v, reply->len, &pass_res)
                                 : redis_entry_decode_user(v, reply->len, &user_res);
        if (rc == REDIS_ENTRY_OK) {
            st = USERDB_REDIS_HIT;
        } else {
            r->counters.garbage++;
            if (ur_garbage_first(r, head->user)) {
                sl_warn("redis %s: garbage value for %s:v1:%s:%s (%s): ignored, SQL answers",
                        r->peer, r->prefix, key_kind, head->user, redis_entry_rc_text(rc));
            }
        }
    } else {
        /* An error reply (WRONGTYPE, OOM, ...) or a reply of a type GET does
         * not give: logged once per key like a garbage value. */
        bool first = ur_garbage_first(r, head->user);
        if (reply->type != REDIS_REPLY_ERROR) {
            r->counters.garbage++;
        }
        if (first && reply->type == REDIS_REPLY_ERROR) {
            sl_warn("redis %s: GET %s:v1:%s:%s: %.*s", r->peer, r->prefix, key_kind, head->user,
                    (int)SL_MIN(reply->len, 200), reply->str);
        } else if (first) {
            sl_warn("redis %s: GET %s:v1:%s:%s: reply of type %d: ignored, SQL answers", r->peer,
                    r->prefix, key_kind, head->user, reply->type);
        }
    }
    ur_req q = ur_fifo_pop(r);
    const void *res = st != USERDB_REDIS_HIT ? NULL : pass ? (const void *)&pass_res : &user_res;
    ur_answer(r, q.kind, q.token, st, res, q.sent_us);
    if (pass) {
        explicit_bzero(&pass_res, sizeof(pass_res));
    }
}

static void ur_reply_gen(userdb_redis *r, const redisReply *reply)
{
    (void)ur_fifo_pop(r);
    r->gen_pending = false;
    uint64_t sig;
    if (reply->type == REDIS_REPLY_NIL) {
        sig = 0;
    } else if (reply->type == REDIS_REPLY_STRING) {
        sig = sl_hash_bytes(reply->str, reply->len) | 1;
    } else {
        return;
    }
    bool changed = r->gen_known && sig != r->gen_sig;
    r->gen_known = true;
    r->gen_sig = sig;
    if (changed) {
        r->counters.generation_changes++;
        if (r->cb.on_generation_change != NULL) {
            r->cb.on_generation_change(r->cb.ctx);
        }
    }
}

static void ur_reply(userdb_redis *r, const redisReply *reply)
{
    switch (ur_fifo_at(r, 0)->kind) {
    case UR_LOOKUP:
    case UR_LOOKUP_PASS:
        ur_reply_lookup(r, reply);
        break;
    case UR_STORE:
        (void)ur_fifo_pop(r);
        if (reply->type != REDIS_REPLY_STATUS) {
            r->counters.store_errors++;
        }
        break;
    case UR_GEN:
        ur_reply_gen(r, reply);
        break;
    }
}

static void ur_on_recv(sl_op *op, int res, uint32_t flags)
{
    userdb_redis *r = SL_CONTAINER_OF(op, userdb_redis, op_recv);
    r->recv_armed = false;
    if (!ur_conn_op_done(r, UR_UP)) {
        return;
    }
    if (res <= 0) {
        ur_conn_fail(r, false, "%s", res == 0 ? "closed by the server" : strerror(-res));
        return;
    }
    if (redisReaderFeed(r->reader, (const char *)r->in, (size_t)res) != REDIS_OK) {
        ur_conn_fail(r, false, "reply buffer: %s", r->reader->errstr);
        return;
    }
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(r->reader, &reply) != REDIS_OK) {
            ur_conn_fail(r, false, "protocol error: %s", r->reader->errstr);
            return;
        }
        if (reply == NULL) {
            break;
        }
        if (r->fifo_sent == 0) {
            freeReplyObject(reply);
            ur_conn_fail(r, false, "a reply nobody asked for");
            return;
        }
        r->backoff_ms = UR_BACKOFF_MS_MIN;
        ur_reply(r, reply);
        freeReplyObject(reply);
        if (r->state != UR_UP) {
            return;
        }
    }
    if (r->reader->len - r->reader->pos > UR_READER_BYTES_MAX) {
        ur_conn_fail(r, false, "a reply larger than %d bytes", UR_READER_BYTES_MAX);
        return;
    }
    ur_arm_recv(r);
    ur_timer_update(r);
}

/* ---- send --------------------------------------------------------------- */

static void ur_send_rest(userdb_redis *r)
{
    r->send_inflight = true;
    r->conn_ops++;
    r->inflight++;
    r->counters.sends++;
    io_uring_prep_send(sl_ring_sqe(r->ring, &r->op_send), r->fd, r->sending.ptr + r->sending_off,
                       r->sending.len - r->sending_off, MSG_NOSIGNAL);
}

static void ur_on_send(sl_op *op, int res, uint32_t flags)
{
    userdb_redis *r = SL_CONTAINER_OF(op, userdb_redis, op_send);
    r->send_inflight = false;
    if (!ur_conn_op_done(r, UR_UP)) {
        return;
    }
    if (res <= 0) {
        ur_conn_fail(r, false, "send: %s", res == 0 ? "nothing sent" : strerror(-res));
        return;
    }
    r->sending_off += (size_t)res;
    SL_ASSERT(r->sending_off <= r->sending.len);
    if (r->sending_off < r->sending.len) {
        ur_send_rest(r);
        return;
    }
    r->sending.len = 0;
    r->sending_off = 0;
}

static void ur_send(userdb_redis *r)
{
    if (r->state != UR_UP || r->send_inflight || r->out.len == 0) {
        return;
    }
    SL_ASSERT(r->sending.len == 0);
    ur_buf t = r->sending;
    r->sending = r->out;
    r->out = t;
    r->sending_off = 0;
    uint64_t now_us = sl_clock_us();
    for (size_t i = r->fifo_sent; i < r->fifo_n; i++) {
        ur_fifo_at(r, i)->sent_us = now_us;
    }
    r->fifo_sent = r->fifo_n;
    ur_send_rest(r);
}

/* ---- timer -------------------------------------------------------------- */

/* The earliest moment something must happen, or 0. */
static uint64_t ur_timer_want(const userdb_redis *r)
{
    uint64_t head = r->fifo_n > 0 ? r->fifo[r->fifo_head].deadline_ms : 0;
    switch (r->state) {
    case UR_DOWN:
        return r->retry_at_ms;
    case UR_CONNECTING:
        return head != 0 ? SL_MIN(head, r->connect_deadline_ms) : r->connect_deadline_ms;
    case UR_UP:
        return head;
    case UR_CLOSING:
        return 0;
    }
    return 0;
}

static void ur_timer_update(userdb_redis *r)
{
    if (r->detached) {
        return;
    }
    uint64_t want = ur_timer_want(r);
    if (want == 0) {
        return;
    }
    if (r->timer_armed) {
        /* A later timer is cancelled and re-armed from its completion; an
         * earlier one fires and re-evaluates. */
        if (r->timer_at_ms > want && !r->timer_cancelled) {
            sl_ring_cancel(r->ring, &r->op_timer);
            r->timer_cancelled = true;
        }
        return;
    }
    uint64_t now = sl_clock_ms();
    uint64_t delay_ms = want > now ? want - now : 1;
    r->timer_ts.tv_sec = (long long)(delay_ms / 1000);
    r->timer_ts.tv_nsec = (long long)(delay_ms % 1000) * 1000000;
    r->timer_armed = true;
    r->timer_cancelled = false;
    r->timer_at_ms = now + delay_ms;
    r->inflight++;
    io_uring_prep_timeout(sl_ring_sqe(r->ring, &r->op_timer), &r->timer_ts, 0, 0);
}

static void ur_expire(userdb_redis *r, uint64_t now_ms)
{
    bool live = r->state == UR_UP || r->state == UR_CONNECTING;
    if (live && r->fifo_n > 0 && r->fifo[r->fifo_head].deadline_ms <= now_ms) {
        if (r->state == UR_CONNECTING) {
            r->counters.connect_failures++;
        }
        ur_conn_fail(r, true, "no reply within %u ms", r->timeout_ms);
    } else if (r->state == UR_CONNECTING && r->connect_deadline_ms <= now_ms) {
        r->counters.connect_failures++;
        ur_conn_fail(r, true, "connect timed out after %u ms", r->timeout_ms);
    }
    if (r->state == UR_DOWN && r->retry_at_ms <= now_ms) {
        ur_start_connect(r);
    }
}

static void ur_on_timer(sl_op *op, int res, uint32_t flags)
{
    userdb_redis *r = SL_CONTAINER_OF(op, userdb_redis, op_timer);
    r->inflight--;
    r->timer_armed = false;
    r->timer_cancelled = false;
    if (r->detached) {
        ur_release_check(r);
        return;
    }
    ur_expire(r, sl_clock_ms());
    ur_timer_update(r);
}

/* ---- the API the core calls --------------------------------------------- */

/* Queue a GET of user's key of the kind the request kind reads. While down,
 * a user lookup waits in the fail queue (answered ERROR at the next flush);
 * a pass lookup is refused (-EAGAIN): its caller asks SQL at once. */
static int ur_lookup(userdb_redis *r, ur_kind kind, uint64_t token, const char *user)
{
    SL_ASSERT(!r->detached);
    bool pass = kind == UR_LOOKUP_PASS;
    char key[REDIS_ENTRY_KEY_BYTES_MAX];
    size_t key_len = redis_entry_key(r->prefix, pass ? REDIS_ENTRY_PASS : REDIS_ENTRY_USER, user,
                                     key, sizeof(key));
    if (key_len == 0 || strlen(user) >= USERDB_ADDR_BYTES_MAX) {
        return -EINVAL;
    }
    if (r->state == UR_DOWN || r->state == UR_CLOSING) {
        if (pass) {
            return -EAGAIN;
        }
        if (r->failq_n == r->queue_max) {
            r->counters.queue_full++;
            return -EAGAIN;
        }
        r->failq[(r->failq_head + r->failq_n) % r->queue_max] = token;
        r->failq_n++;
        r->counters.lookups++;
        return 0;
    }
    const char *argv[2] = {"GET", key};
    size_t lens[2] = {3, key_len};
    int rc = ur_queue(r, kind, token, user, 2, argv, lens);
    if (rc != 0) {
        r->counters.queue_full++;
        return rc;
    }
    r->counters.lookups++;
    return 0;
}

int userdb_redis_lookup(userdb_redis *r, uint64_t token, const char *user)
{
    SL_ASSERT(r->cb.on_lookup != NULL);
    return ur_lookup(r, UR_LOOKUP, token, user);
}

int userdb_redis_lookup_pass(userdb_redis *r, uint64_t token, const char *user)
{
    SL_ASSERT(r->cb.on_pass_lookup != NULL);
    return ur_lookup(r, UR_LOOKUP_PASS, token, user);
}

void userdb_redis_store(userdb_redis *r, const char *user, const userdb_result *result)
{
    SL_ASSERT(!r->detached);
    unsigned ttl_s = result->status == USERDB_NOTFOUND ? r->negative_ttl_s : r->positive_ttl_s;
    char value[REDIS_ENTRY_VALUE_BYTES_MAX];
    size_t value_len = redis_entry_encode_user(result, value, sizeof(value));
    if (ttl_s == 0 || value_len == 0) {
        return;
    }
    char key[REDIS_ENTRY_KEY_BYTES_MAX];
    size_t key_len = redis_entry_key(r->prefix, REDIS_ENTRY_USER, user, key, sizeof(key));
    if (key_len == 0) {
        r->counters.store_errors++;
        return;
    }
    if (r->state != UR_UP && r->state != UR_CONNECTING) {
        r->counters.store_errors++;
        return;
    }
    char ttl[16];
    int ttl_len = snprintf(ttl, sizeof(ttl), "%u", ttl_s);
    const char *argv[5] = {"SET", key, value, "EX", ttl};
    size_t lens[5] = {3, key_len, value_len, 2, (size_t)ttl_len};
    if (ur_queue(r, UR_STORE, 0, NULL, 5, argv, lens) != 0) {
        r->counters.store_errors++;
        return;
    }
    r->counters.stores++;
}

void userdb_redis_flush(userdb_redis *r)
{
    SL_ASSERT(!r->detached);
    /* A callback may look up again while still down: those wait for the
     * next round of this loop, not for the next event-loop turn. */
    while (r->failq_n > 0) {
        uint64_t token = r->failq[r->failq_head];
        r->failq_head = (r->failq_head + 1) % r->queue_max;
        r->failq_n--;
        ur_answer(r, UR_LOOKUP, token, USERDB_REDIS_ERROR, NULL, 0);
    }
    ur_send(r);
}

void userdb_redis_tick(userdb_redis *r, uint64_t now_ms)
{
    SL_ASSERT(!r->detached);
    ur_expire(r, now_ms);
    ur_queue_gen(r);
    ur_timer_update(r);
    userdb_redis_flush(r);
}

/* ---- the blocking writer ------------------------------------------------ */

struct userdb_redis_sync {
    char *host;
    unsigned port;
    char *unix_path;
    unsigned timeout_ms;
    unsigned positive_ttl_s;
    unsigned negative_ttl_s;
    char prefix[REDIS_ENTRY_PREFIX_BYTES_MAX];
    redisContext *ctx;
    uint64_t retry_at_ms;
    unsigned backoff_ms;
    bool down_logged;
};

userdb_redis_sync *userdb_redis_sync_new(const userdb_redis_config *cfg, char *err, size_t err_len)
{
    bool is_unix = cfg->unix_path != NULL && cfg->unix_path[0] != '\0';
    if (!is_unix &&
        (cfg->host == NULL || cfg->host[0] == '\0' || cfg->port == 0 || cfg->port > 65535)) {
        snprintf(err, err_len, "redis: no address (host and port, or a unix socket path)");
        return NULL;
    }
    if (cfg->key_prefix != NULL && strlen(cfg->key_prefix) >= REDIS_ENTRY_PREFIX_BYTES_MAX) {
        snprintf(err, err_len, "redis: key prefix too long");
        return NULL;
    }
    userdb_redis_sync *s = sl_calloc(1, sizeof(*s));
    s->host = is_unix ? NULL : sl_strdup(cfg->host);
    s->port = cfg->port;
    s->unix_path = is_unix ? sl_strdup(cfg->unix_path) : NULL;
    s->timeout_ms = cfg->timeout_ms == 0 ? UR_TIMEOUT_MS_DEFAULT : cfg->timeout_ms;
    s->positive_ttl_s = cfg->positive_ttl_s;
    s->negative_ttl_s = cfg->negative_ttl_s;
    snprintf(s->prefix, sizeof(s->prefix), "%s",
             cfg->key_prefix == NULL || cfg->key_prefix[0] == '\0' ? REDIS_ENTRY_PREFIX_DEFAULT
                                                                   : cfg->key_prefix);
    s->backoff_ms = UR_BACKOFF_MS_MIN;
    return s;
}

void userdb_redis_sync_free(userdb_redis_sync **sp)
{
    userdb_redis_sync *s = *sp;
    if (s == NULL) {
        return;
    }
    if (s->ctx != NULL) {
        redisFree(s->ctx);
    }
    free(s->host);
    free(s->unix_path);
    sl_free(sp);
}

/* Wait for events on fd until deadline_ms. 0, or -ETIMEDOUT / -errno. */
static int urs_wait(int fd, short events, uint64_t deadline_ms)
{
    for (;;) {
        uint64_t now = sl_clock_ms();
        if (now >= deadline_ms) {
            return -ETIMEDOUT;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)(deadline_ms - now));
        if (n > 0) {
            return 0;
        }
        if (n < 0 && errno != EINTR) {
            return -errno;
        }
    }
}

/* A non-blocking context, so that one deadline bounds connect, write and
 * read together (the blocking API's timeouts apply to each step). */
static int urs_connect(userdb_redis_sync *s, uint64_t deadline_ms)
{
    redisContext *c = s->unix_path != NULL ? redisConnectUnixNonBlock(s->unix_path)
                                           : redisConnectNonBlock(s->host, (int)s->port);
    if (c == NULL) {
        return -ENOMEM;
    }
    if (c->err != 0) {
        sl_debug("redis: connect: %s", c->errstr);
        redisFree(c);
        return -ECONNREFUSED;
    }
    int rc = urs_wait(c->fd, POLLOUT, deadline_ms);
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (rc == 0 && getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr != 0) {
        rc = -soerr;
    }
    if (rc != 0) {
        redisFree(c);
        return rc;
    }
    s->ctx = c;
    return 0;
}

static int urs_roundtrip(redisContext *c, uint64_t deadline_ms, redisReply **reply_out)
{
    int done = 0;
    while (!done) {
        if (redisBufferWrite(c, &done) != REDIS_OK) {
            return -EIO;
        }
        if (!done) {
            int rc = urs_wait(c->fd, POLLOUT, deadline_ms);
            if (rc != 0) {
                return rc;
            }
        }
    }
    for (;;) {
        void *reply = NULL;
        if (redisGetReplyFromReader(c, &reply) != REDIS_OK) {
            return -EIO;
        }
        if (reply != NULL) {
            *reply_out = reply;
            return 0;
        }
        int rc = urs_wait(c->fd, POLLIN, deadline_ms);
        if (rc != 0) {
            return rc;
        }
        if (redisBufferRead(c) != REDIS_OK) {
            return -EIO;
        }
    }
}

/* SET key value EX ttl_s within timeout_ms, connecting first if needed. */
static int urs_set(userdb_redis_sync *s, const char *key, size_t key_len, const char *value,
                   size_t value_len, unsigned ttl_s)
{
    uint64_t now = sl_clock_ms();
    if (s->ctx == NULL && now < s->retry_at_ms) {
        return -EAGAIN;
    }
    uint64_t deadline = now + s->timeout_ms;
    int rc = s->ctx == NULL ? urs_connect(s, deadline) : 0;
    redisReply *reply = NULL;
    if (rc == 0) {
        char ttl[16];
        int ttl_len = snprintf(ttl, sizeof(ttl), "%u", ttl_s);
        const char *argv[5] = {"SET", key, value, "EX", ttl};
        size_t lens[5] = {3, key_len, value_len, 2, (size_t)ttl_len};
        redisAppendCommandArgv(s->ctx, 5, argv, lens);
        rc = urs_roundtrip(s->ctx, deadline, &reply);
    }
    if (rc != 0) {
        if (!s->down_logged) {
            sl_warn("redis: cache write failed: %s; retrying in the background",
                    s->ctx != NULL && s->ctx->err != 0 ? s->ctx->errstr : strerror(-rc));
            s->down_logged = true;
        }
        if (s->ctx != NULL) {
            redisFree(s->ctx);
            s->ctx = NULL;
        }
        s->retry_at_ms = sl_clock_ms() + s->backoff_ms;
        s->backoff_ms = SL_MIN(s->backoff_ms * 2, UR_BACKOFF_MS_MAX);
        return -EIO;
    }
    s->backoff_ms = UR_BACKOFF_MS_MIN;
    if (s->down_logged) {
        sl_info("redis: cache writes work again");
        s->down_logged = false;
    }
    bool ok = reply->type == REDIS_REPLY_STATUS;
    if (!ok) {
        sl_debug("redis: SET %s: reply type %d: %.*s", key, reply->type,
                 reply->str != NULL ? (int)SL_MIN(reply->len, 200) : 0,
                 reply->str != NULL ? reply->str : "");
    }
    freeReplyObject(reply);
    return ok ? 0 : -EIO;
}

/* Stores an encoded entry of kind for user with the TTL its status calls
 * for (nothing to store: 0). */
static int urs_store(userdb_redis_sync *s, redis_entry_kind kind, const char *user,
                     userdb_status status, const char *value, size_t value_len)
{
    unsigned ttl_s = status == USERDB_NOTFOUND ? s->negative_ttl_s : s->positive_ttl_s;
    if (ttl_s == 0 || value_len == 0) {
        return 0;
    }
    char key[REDIS_ENTRY_KEY_BYTES_MAX];
    size_t key_len = redis_entry_key(s->prefix, kind, user, key, sizeof(key));
    if (key_len == 0) {
        return -EINVAL;
    }
    return urs_set(s, key, key_len, value, value_len, ttl_s);
}

int userdb_redis_sync_set(userdb_redis_sync *s, const char *user, const userdb_result *result)
{
    char value[REDIS_ENTRY_VALUE_BYTES_MAX];
    size_t value_len = redis_entry_encode_user(result, value, sizeof(value));
    return urs_store(s, REDIS_ENTRY_USER, user, result->status, value, value_len);
}

int userdb_redis_sync_set_pass(userdb_redis_sync *s, const char *user, const passdb_result *result)
{
    char value[REDIS_ENTRY_VALUE_BYTES_MAX];
    size_t value_len = redis_entry_encode_pass(result, value, sizeof(value));
    int rc = urs_store(s, REDIS_ENTRY_PASS, user, result->status, value, value_len);
    explicit_bzero(value, sizeof(value));
    return rc;
}
