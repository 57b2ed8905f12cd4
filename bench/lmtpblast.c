/* bench/lmtpblast.c: an io_uring LMTP load generator.
 *
 * One thread and one ring drive every connection: the client must never be
 * the bottleneck it is measuring, and a single ring turns a batch of sends
 * and replies across all connections into one io_uring_enter. Replies arrive
 * through one multishot recv per connection from a provided-buffer ring and
 * are parsed at once, so a buffer goes back to the kernel in the same loop
 * iteration. A message is its connection's small buffer (commands,
 * Message-ID, To) plus a template shared by all messages of that size, sent
 * together in one send: no per-message allocation and no copy of the body.
 *
 * Closed loop by default: a connection starts its next message after the
 * last reply of the previous one. With --rate, messages are scheduled on a
 * global clock and latency counts from the scheduled time, so a slow server
 * cannot hide its stalls by slowing the client down (coordinated omission).
 * `lmtpblast --help` lists the options. */
#include "bench/lmtpblast_hist.h"
#include "bench/lmtpblast_msg.h"
#include "bench/lmtpblast_reply.h"
#include "core/base/base.h"

#include <liburing.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull

/* Replies are small (an LHLO reply is the largest, ~200 bytes), so 4 KiB per
 * buffer holds many pipelined replies; a few buffers per connection cover a
 * burst before the loop hands them back. */
#define RECV_BUF_BYTES 4096
#define RECV_BUFS_PER_CONN 4
#define RECV_BUFS_MIN 64
#define RECV_BUFS_MAX 32768 /* the kernel's limit for one buffer ring */
#define RECV_BGID 0

#define RECONNECT_DELAY_NS (100 * NS_PER_MS)
/* Timeouts and reconnects are checked on this tick, not per operation. */
#define HOUSEKEEP_NS (50 * NS_PER_MS)
#define PROGRESS_NS NS_PER_S
#define REAP_BATCH 512

#define CONNECTIONS_MAX 65536
#define RCPTS_MAX 1000
#define SIZE_MIX_MAX 16
#define SIZE_BYTES_MAX (256ull << 20)
#define CODES 600 /* reply codes are 100..599 */
#define SEND_IOV_MAX 3
#define ERROR_TEXT_MAX 256

/* user_data is (connection index << OP_BITS) | op kind: no op records. */
enum op_kind { OP_CONNECT, OP_RECV, OP_SEND, OP_CANCEL };
#define OP_BITS 2
#define OP_MASK ((1u << OP_BITS) - 1)

typedef enum conn_state {
    CS_DOWN, /* no socket; (re)connect at reconnect_at_ns */
    CS_CONNECTING,
    CS_GREETING,
    CS_LHLO,
    CS_READY, /* between transactions */
    CS_MAIL,
    CS_RCPT,
    CS_DATA,
    CS_FINAL, /* waiting for the per-recipient replies to the content */
    CS_RSET,  /* transaction rejected before its content, resetting */
    CS_QUIT,
    CS_CLOSING, /* socket shut down, waiting for in-flight ops to end */
    CS_DONE,
} conn_state;

static const char *const state_names[] = {
    [CS_DOWN] = "down", [CS_CONNECTING] = "connect", [CS_GREETING] = "greeting",
    [CS_LHLO] = "LHLO", [CS_READY] = "ready",        [CS_MAIL] = "MAIL",
    [CS_RCPT] = "RCPT", [CS_DATA] = "DATA",          [CS_FINAL] = "end of data",
    [CS_RSET] = "RSET", [CS_QUIT] = "QUIT",          [CS_CLOSING] = "closing",
    [CS_DONE] = "done",
};

typedef enum err_kind {
    ERR_CONNECT,
    ERR_CLOSED,
    ERR_IO,
    ERR_TIMEOUT,
    ERR_PROTOCOL,
    ERR_KINDS
} err_kind;
static const char *const err_names[ERR_KINDS] = {"connect", "closed", "io", "timeout", "protocol"};

typedef struct opts {
    const char *target;
    unsigned connections;
    uint64_t messages; /* 0: not given */
    double duration_s; /* 0: not given */
    unsigned rcpts;
    uint32_t users;
    const char *user_pattern;
    uint64_t seed;
    size_t sizes[SIZE_MIX_MAX];
    unsigned weights[SIZE_MIX_MAX];
    unsigned nsizes;
    const char *size_mix;
    bool pipeline;
    bool bdat;
    bool json;
    bool reconnect;
    double rate; /* messages per second; 0: closed loop */
    const char *lhlo;
    const char *from;
    double timeout_s;
} opts;

typedef struct conn {
    unsigned idx;
    int fd;
    conn_state state;
    unsigned inflight; /* ops the kernel still holds */
    bool want_reconnect;
    bool fatal; /* retrying cannot help (e.g. the server lacks CHUNKING) */
    bool cap_size;
    bool cap_chunking;
    bool cap_pipelining;
    lmtpblast_reply_parser rp;

    /* The send in flight, and at most one queued behind it. */
    bool send_busy;
    bool send_ends_msg;
    struct msghdr msg;
    struct iovec iov[SEND_IOV_MAX];
    unsigned iov_n;
    unsigned iov_first;
    bool next_pending;
    bool next_ends_msg;
    struct iovec next_iov[SEND_IOV_MAX];
    unsigned next_iov_n;

    /* Messages: assigned to this connection so far, and started. */
    uint64_t assigned;
    uint64_t started;

    /* The transaction in progress. */
    uint64_t msg_n;
    const lmtpblast_tmpl *tmpl;
    size_t msg_bytes;
    unsigned rcpt_replied;
    unsigned rcpt_ok;
    unsigned final_expected;
    unsigned final_replied;
    unsigned final_ok;
    bool content_sent; /* DATA body or BDAT chunk handed over */
    bool last_byte_sent;
    bool replies_done;
    uint64_t sched_ns; /* open loop: when this message was due */
    uint64_t last_byte_ns;
    uint64_t replies_done_ns;

    /* Buffers, allocated once. */
    uint8_t *cmd;      /* MAIL, RCPT..., DATA or BDAT lines */
    uint32_t *cmd_off; /* line ends; cmd_off[0] = 0 */
    uint8_t *var;      /* Message-ID and To */
    size_t var_len;
    uint8_t *addrs; /* rcpts * addr_len_max */
    const uint8_t **addr_ptr;
    size_t *addr_lens;
    uint32_t *users;

    uint64_t rng;
    uint64_t last_progress_ns; /* for the reply timeout */
    uint64_t reconnect_at_ns;
    uint64_t fail_since_ns; /* first failure since the last good LHLO; 0 = none */
} conn;

typedef struct blast {
    opts o;
    lmtpblast_pattern pattern;
    size_t addr_len_max;
    size_t cmd_bytes_max;
    size_t var_bytes_max;
    lmtpblast_tmpl tmpl[SIZE_MIX_MAX];
    unsigned weight_total;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    bool is_tcp;
    char lhlo_cmd[300];

    struct io_uring ring;
    struct io_uring_buf_ring *br;
    unsigned buf_count;
    uint8_t *bufs;
    unsigned buf_returned;

    conn *conns;
    unsigned conns_done;

    uint64_t now_ns;
    uint64_t t_start_ns;
    uint64_t t_end_ns; /* --duration: no new messages after this; 0 = none */
    uint64_t t_last_msg_ns;
    uint64_t timeout_ns;
    uint64_t next_housekeep_ns;
    uint64_t next_progress_ns;
    bool progress;

    /* Scheduling: sched_done means no message will be assigned any more. */
    bool sched_done;
    uint64_t next_k;
    double ns_per_msg;

    uint64_t messages; /* transactions finished, rejected ones included */
    uint64_t rejected_msgs;
    uint64_t deliveries;
    uint64_t bytes;
    uint64_t aborted; /* transactions cut off by a connection error */
    uint64_t unsent;
    uint64_t gave_up; /* connections that kept failing for a whole timeout */
    uint64_t errors[ERR_KINDS];
    uint64_t mail_codes[CODES];
    uint64_t rcpt_codes[CODES];
    uint64_t datacmd_codes[CODES];
    uint64_t final_codes[CODES];
    lmtpblast_hist hist;
    char last_error[ERROR_TEXT_MAX];
} blast;

static blast g;
static volatile sig_atomic_t g_interrupts;

static uint64_t clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* splitmix64: seeds each connection's stream from --seed and its index, so a
 * run is reproducible whatever order the replies come in. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) by multiply-shift: the bias is below 2^-32 * n. */
static uint32_t rng_below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(((rng_next(s) >> 32) * (uint64_t)n) >> 32);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("lmtpblast: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL) {
        die("out of memory");
    }
    return p;
}

/* ------------------------------------------------------------------ ring */

static struct io_uring_sqe *get_sqe(conn *c, enum op_kind kind)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&g.ring);
    while (sqe == NULL) {
        /* A full SQ is submitted and retried, never dropped. */
        int rc = io_uring_submit(&g.ring);
        if (rc == -EBUSY || rc == -EAGAIN) {
            io_uring_get_events(&g.ring);
        }
        sqe = io_uring_get_sqe(&g.ring);
    }
    io_uring_sqe_set_data64(sqe, ((uint64_t)c->idx << OP_BITS) | kind);
    c->inflight++;
    return sqe;
}

static void ring_setup(void)
{
    unsigned sq = 64;
    while (sq < 2 * g.o.connections && sq < 4096) {
        sq *= 2;
    }
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL |
              IORING_SETUP_CQSIZE;
    p.cq_entries = sq * 8;
    int rc = io_uring_queue_init_params(sq, &g.ring, &p);
    if (rc == -EINVAL) {
        /* Older kernels: no DEFER_TASKRUN. Slower, still correct. */
        memset(&p, 0, sizeof(p));
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = sq * 8;
        rc = io_uring_queue_init_params(sq, &g.ring, &p);
    }
    if (rc != 0) {
        die("io_uring_queue_init: %s", strerror(-rc));
    }
    /* Saves an fd lookup per io_uring_enter; optional. */
    (void)io_uring_register_ring_fd(&g.ring);

    unsigned want = g.o.connections * RECV_BUFS_PER_CONN;
    g.buf_count = RECV_BUFS_MIN;
    while (g.buf_count < want && g.buf_count < RECV_BUFS_MAX) {
        g.buf_count *= 2;
    }
    size_t ring_bytes = g.buf_count * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) {
        die("mmap: %s", strerror(errno));
    }
    struct io_uring_buf_reg reg = {
        .ring_addr = (unsigned long)mem, .ring_entries = g.buf_count, .bgid = RECV_BGID};
    rc = io_uring_register_buf_ring(&g.ring, &reg, 0);
    if (rc != 0) {
        die("io_uring_register_buf_ring: %s", strerror(-rc));
    }
    g.br = mem;
    io_uring_buf_ring_init(g.br);
    g.bufs = xcalloc(g.buf_count, RECV_BUF_BYTES);
    int mask = io_uring_buf_ring_mask(g.buf_count);
    for (unsigned i = 0; i < g.buf_count; i++) {
        io_uring_buf_ring_add(g.br, g.bufs + (size_t)i * RECV_BUF_BYTES, RECV_BUF_BYTES,
                              (unsigned short)i, mask, (int)i);
    }
    io_uring_buf_ring_advance(g.br, (int)g.buf_count);
}

/* Hands buffer bid back to the kernel; published once per loop iteration. */
static void buf_return(unsigned bid)
{
    io_uring_buf_ring_add(g.br, g.bufs + (size_t)bid * RECV_BUF_BYTES, RECV_BUF_BYTES,
                          (unsigned short)bid, io_uring_buf_ring_mask(g.buf_count),
                          (int)g.buf_returned);
    g.buf_returned++;
}

/* ------------------------------------------------------------ connections */

static void conn_kick(conn *c);
static void conn_fail(conn *c, err_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool conn_work_done(const conn *c)
{
    return g.sched_done && c->started >= c->assigned;
}

static bool conn_in_txn(const conn *c)
{
    return c->state >= CS_MAIL && c->state <= CS_RSET;
}

static void conn_set_done(conn *c)
{
    SL_ASSERT(c->state != CS_DONE);
    SL_ASSERT(c->inflight == 0);
    c->state = CS_DONE;
    g.conns_done++;
}

static void conn_arm_recv(conn *c)
{
    struct io_uring_sqe *sqe = get_sqe(c, OP_RECV);
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = RECV_BGID;
}

static void conn_connect(conn *c)
{
    SL_ASSERT(c->state == CS_DOWN);
    SL_ASSERT(c->inflight == 0);
    int fd = socket(g.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        /* Out of fds or ports: a connect error, retried like a refusal. */
        g.errors[ERR_CONNECT]++;
        snprintf(g.last_error, sizeof(g.last_error), "conn %u: socket: %s", c->idx,
                 strerror(errno));
        if (c->fail_since_ns == 0) {
            c->fail_since_ns = g.now_ns;
        }
        c->reconnect_at_ns = g.now_ns + RECONNECT_DELAY_NS;
        return;
    }
    if (g.is_tcp) {
        /* Commands are written whole; Nagle would only delay the last bytes. */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    c->fd = fd;
    c->state = CS_CONNECTING;
    c->last_progress_ns = g.now_ns;
    c->send_busy = false;
    c->next_pending = false;
    c->want_reconnect = g.o.reconnect;
    lmtpblast_reply_init(&c->rp);
    struct io_uring_sqe *sqe = get_sqe(c, OP_CONNECT);
    io_uring_prep_connect(sqe, fd, (const struct sockaddr *)&g.addr, g.addr_len);
}

/* Closing: every op the kernel holds must end before the fd is closed, so a
 * later socket cannot receive a stale completion. */
static void conn_maybe_finish_close(conn *c)
{
    if (c->state != CS_CLOSING || c->inflight > 0) {
        return;
    }
    close(c->fd);
    c->fd = -1;
    if (c->want_reconnect && !c->fatal && !conn_work_done(c)) {
        c->state = CS_DOWN;
        c->reconnect_at_ns = g.now_ns + RECONNECT_DELAY_NS;
        return;
    }
    conn_set_done(c);
}

static void conn_begin_close(conn *c)
{
    SL_ASSERT(c->fd >= 0);
    c->state = CS_CLOSING;
    /* shutdown wakes a pending recv or send at once; the cancel covers a
     * connect still in progress. */
    shutdown(c->fd, SHUT_RDWR);
    if (c->inflight > 0) {
        struct io_uring_sqe *sqe = get_sqe(c, OP_CANCEL);
        io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
    }
    conn_maybe_finish_close(c);
}

static void conn_fail(conn *c, err_kind kind, const char *fmt, ...)
{
    if (c->state == CS_CLOSING || c->state == CS_DOWN || c->state == CS_DONE) {
        return;
    }
    g.errors[kind]++;
    if (conn_in_txn(c)) {
        g.aborted++;
    }
    if (c->fail_since_ns == 0) {
        c->fail_since_ns = g.now_ns;
    }
    char text[ERROR_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    snprintf(g.last_error, sizeof(g.last_error), "conn %u (%s): %s", c->idx, state_names[c->state],
             text);
    c->want_reconnect = g.o.reconnect;
    conn_begin_close(c);
}

static void send_submit(conn *c)
{
    SL_ASSERT(!c->send_busy);
    SL_ASSERT(c->iov_first < c->iov_n);
    struct io_uring_sqe *sqe = get_sqe(c, OP_SEND);
    /* MSG_WAITALL makes the kernel finish a large send itself; a short one
     * is still handled in on_send. */
    const int flags = MSG_NOSIGNAL | MSG_WAITALL;
    const struct iovec *v = c->iov + c->iov_first;
    if (c->iov_n - c->iov_first == 1) {
        /* A plain send skips copying and checking a msghdr. */
        io_uring_prep_send(sqe, c->fd, v->iov_base, v->iov_len, flags);
    } else {
        memset(&c->msg, 0, sizeof(c->msg));
        c->msg.msg_iov = (struct iovec *)v;
        c->msg.msg_iovlen = c->iov_n - c->iov_first;
        io_uring_prep_sendmsg(sqe, c->fd, &c->msg, flags);
    }
    c->send_busy = true;
}

/* Sends iov[0..n) (which must stay valid until sent). One send is in flight
 * at a time; a send asked for before the previous one's completion was seen
 * waits behind it. ends_msg marks the send carrying the message's last byte. */
static void conn_send(conn *c, const struct iovec *iov, unsigned n, bool ends_msg)
{
    SL_ASSERT(n > 0);
    SL_ASSERT(n <= SEND_IOV_MAX);
    if (c->send_busy) {
        if (c->next_pending) {
            /* Only a reply to an unsent command could get us here. */
            conn_fail(c, ERR_PROTOCOL, "reply arrived before its command was sent");
            return;
        }
        memcpy(c->next_iov, iov, n * sizeof(*iov));
        c->next_iov_n = n;
        c->next_ends_msg = ends_msg;
        c->next_pending = true;
        return;
    }
    memcpy(c->iov, iov, n * sizeof(*iov));
    c->iov_n = n;
    c->iov_first = 0;
    c->send_ends_msg = ends_msg;
    send_submit(c);
}

static void conn_send_text(conn *c, const char *text, bool ends_msg)
{
    struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text)};
    conn_send(c, &iov, 1, ends_msg);
}

/* Sends cmd lines [from, to) of the current transaction. */
static void conn_send_lines(conn *c, unsigned from, unsigned to)
{
    struct iovec iov = {.iov_base = c->cmd + c->cmd_off[from],
                        .iov_len = c->cmd_off[to] - c->cmd_off[from]};
    conn_send(c, &iov, 1, false);
}

/* ------------------------------------------------------------- messages */

static uint64_t sched_time_ns(uint64_t k)
{
    return g.t_start_ns + (uint64_t)((double)k * g.ns_per_msg);
}

static const lmtpblast_tmpl *pick_tmpl(conn *c)
{
    if (g.o.nsizes == 1) {
        return &g.tmpl[0];
    }
    uint32_t r = rng_below(&c->rng, g.weight_total);
    for (unsigned i = 0; i < g.o.nsizes; i++) {
        if (r < g.o.weights[i]) {
            return &g.tmpl[i];
        }
        r -= g.o.weights[i];
    }
    return &g.tmpl[g.o.nsizes - 1];
}

/* Distinct users by rejection: rcpts is small next to users in any sane
 * run, and the check is over at most RCPTS_MAX entries. */
static void pick_users(conn *c)
{
    for (unsigned i = 0; i < g.o.rcpts; i++) {
        uint32_t u;
        bool dup;
        do {
            u = rng_below(&c->rng, g.o.users);
            dup = false;
            for (unsigned j = 0; j < i && !dup; j++) {
                dup = c->users[j] == u;
            }
        } while (dup);
        c->users[i] = u;
        uint8_t *a = c->addrs + (size_t)i * g.addr_len_max;
        c->addr_ptr[i] = a;
        c->addr_lens[i] = lmtpblast_msg_format_user(&g.pattern, u, a);
    }
}

static size_t put(uint8_t *out, const void *p, size_t n)
{
    memcpy(out, p, n);
    return n;
}

/* Builds the commands and the per-message header into the connection's
 * buffers. cmd_off[1] ends MAIL, cmd_off[i + 2] ends RCPT i, and
 * cmd_off[rcpts + 2] ends DATA or BDAT. */
static void build_msg(conn *c)
{
    const unsigned r = g.o.rcpts;
    c->tmpl = pick_tmpl(c);
    pick_users(c);
    c->var_len =
        lmtpblast_msg_var_build(c->var, c->idx, c->msg_n, g.o.seed, c->addr_ptr, c->addr_lens, r);
    SL_ASSERT(c->var_len <= g.var_bytes_max);
    c->msg_bytes = c->var_len + c->tmpl->raw_len;

    size_t o = 0;
    int n;
    if (c->cap_size) {
        n = snprintf((char *)c->cmd, g.cmd_bytes_max, "MAIL FROM:<%s> SIZE=%zu\r\n", g.o.from,
                     c->msg_bytes);
    } else {
        n = snprintf((char *)c->cmd, g.cmd_bytes_max, "MAIL FROM:<%s>\r\n", g.o.from);
    }
    SL_ASSERT(n > 0);
    o = (size_t)n;
    c->cmd_off[0] = 0;
    c->cmd_off[1] = (uint32_t)o;
    for (unsigned i = 0; i < r; i++) {
        o += put(c->cmd + o, "RCPT TO:<", 9);
        o += put(c->cmd + o, c->addr_ptr[i], c->addr_lens[i]);
        o += put(c->cmd + o, ">\r\n", 3);
        c->cmd_off[i + 2] = (uint32_t)o;
    }
    if (g.o.bdat) {
        n = snprintf((char *)c->cmd + o, g.cmd_bytes_max - o, "BDAT %zu LAST\r\n", c->msg_bytes);
        SL_ASSERT(n > 0);
        o += (size_t)n;
    } else {
        o += put(c->cmd + o, "DATA\r\n", 6);
    }
    SL_ASSERT(o <= g.cmd_bytes_max);
    c->cmd_off[r + 2] = (uint32_t)o;
}

static void start_msg(conn *c)
{
    SL_ASSERT(c->state == CS_READY);
    SL_ASSERT(c->started < c->assigned);
    c->msg_n = c->started;
    c->sched_ns = g.o.rate > 0 ? sched_time_ns(c->idx + c->msg_n * g.o.connections) : 0;
    c->started++;
    build_msg(c);
    c->rcpt_replied = 0;
    c->rcpt_ok = 0;
    c->final_expected = 0;
    c->final_replied = 0;
    c->final_ok = 0;
    c->content_sent = false;
    c->last_byte_sent = false;
    c->replies_done = false;
    c->state = CS_MAIL;
    c->last_progress_ns = g.now_ns;
    const unsigned end = g.o.rcpts + 2;
    if (g.o.bdat) {
        /* MAIL, RCPTs, BDAT and the chunk in one write. */
        struct iovec iov[3] = {
            {.iov_base = c->cmd, .iov_len = c->cmd_off[end]},
            {.iov_base = c->var, .iov_len = c->var_len},
            {.iov_base = c->tmpl->raw, .iov_len = c->tmpl->raw_len},
        };
        c->content_sent = true;
        conn_send(c, iov, 3, true);
    } else if (g.o.pipeline) {
        conn_send_lines(c, 0, end);
    } else {
        conn_send_lines(c, 0, 1);
    }
}

static void send_body(conn *c)
{
    struct iovec iov[2] = {
        {.iov_base = c->var, .iov_len = c->var_len},
        {.iov_base = c->tmpl->stuffed, .iov_len = c->tmpl->stuffed_len},
    };
    c->content_sent = true;
    conn_send(c, iov, 2, true);
}

/* A transaction is over (delivered, partly or wholly rejected). */
static void msg_finished(conn *c, bool with_content)
{
    g.messages++;
    g.t_last_msg_ns = g.now_ns;
    if (with_content) {
        g.bytes += c->msg_bytes;
        g.deliveries += c->final_ok;
        uint64_t from = g.o.rate > 0 ? c->sched_ns : c->last_byte_ns;
        uint64_t done = c->replies_done_ns;
        lmtpblast_hist_record(&g.hist, done > from ? done - from : 0);
    }
    if (!with_content || c->final_ok < g.o.rcpts) {
        g.rejected_msgs++;
    }
    c->state = CS_READY;
    conn_kick(c);
}

/* The last per-recipient reply is in. The latency needs the send's
 * completion too, which in practice always comes first. */
static void final_replies_done(conn *c)
{
    c->replies_done = true;
    c->replies_done_ns = g.now_ns;
    if (c->last_byte_sent) {
        msg_finished(c, true);
    }
}

static void conn_reset_txn(conn *c)
{
    c->state = CS_RSET;
    conn_send_text(c, "RSET\r\n", false);
}

static void conn_quit(conn *c)
{
    c->state = CS_QUIT;
    c->last_progress_ns = g.now_ns;
    conn_send_text(c, "QUIT\r\n", false);
}

/* A connection between transactions: start the next message, wait for the
 * scheduler, or leave. */
static void conn_kick(conn *c)
{
    if (c->state != CS_READY) {
        return;
    }
    if (c->started < c->assigned) {
        start_msg(c);
    } else if (conn_work_done(c)) {
        conn_quit(c);
    }
}

/* ---------------------------------------------------------------- replies */

static bool is_keyword(const char *text, const char *kw)
{
    size_t n = strlen(kw);
    return strncasecmp(text, kw, n) == 0 && (text[n] == '\0' || text[n] == ' ');
}

static void count_code(uint64_t *codes, uint16_t code)
{
    SL_ASSERT(code < CODES);
    codes[code]++;
}

static void on_lhlo_reply(conn *c, const lmtpblast_reply_line *l)
{
    if (l->code / 100 != 2) {
        conn_fail(c, ERR_PROTOCOL, "LHLO rejected: %u %s", l->code, l->text);
        return;
    }
    if (g.o.bdat && !c->cap_chunking) {
        c->fatal = true;
        conn_fail(c, ERR_PROTOCOL, "--bdat but the server does not announce CHUNKING");
        return;
    }
    static bool warned;
    if (g.o.pipeline && !c->cap_pipelining && !warned) {
        warned = true;
        fprintf(stderr, "lmtpblast: the server does not announce PIPELINING; pipelining anyway\n");
    }
    c->state = CS_READY;
    c->fail_since_ns = 0;
    conn_kick(c);
}

static void on_mail_reply(conn *c, const lmtpblast_reply_line *l)
{
    count_code(g.mail_codes, l->code);
    bool ok = l->code / 100 == 2;
    if (g.o.pipeline || g.o.bdat) {
        c->state = CS_RCPT; /* the RCPTs are on their way already */
    } else if (!ok) {
        conn_reset_txn(c);
    } else {
        c->state = CS_RCPT;
        conn_send_lines(c, 1, 2);
    }
}

static void on_rcpt_reply(conn *c, const lmtpblast_reply_line *l)
{
    count_code(g.rcpt_codes, l->code);
    c->rcpt_replied++;
    c->rcpt_ok += l->code / 100 == 2;
    bool pipelined = g.o.pipeline || g.o.bdat;
    if (c->rcpt_replied < g.o.rcpts) {
        if (!pipelined) {
            conn_send_lines(c, c->rcpt_replied + 1, c->rcpt_replied + 2);
        }
        return;
    }
    if (g.o.bdat) {
        /* LMTP answers BDAT LAST once per accepted recipient, or once with
         * an error when there is none. */
        c->state = CS_FINAL;
        c->final_expected = c->rcpt_ok > 0 ? c->rcpt_ok : 1;
        return;
    }
    if (!pipelined && c->rcpt_ok == 0) {
        conn_reset_txn(c);
        return;
    }
    c->state = CS_DATA;
    if (!pipelined) {
        conn_send_lines(c, g.o.rcpts + 1, g.o.rcpts + 2);
    }
}

static void on_data_reply(conn *c, const lmtpblast_reply_line *l)
{
    count_code(g.datacmd_codes, l->code);
    if (l->code != 354) {
        conn_reset_txn(c);
        return;
    }
    c->state = CS_FINAL;
    c->final_expected = c->rcpt_ok > 0 ? c->rcpt_ok : 1;
    send_body(c);
}

static void on_final_reply(conn *c, const lmtpblast_reply_line *l)
{
    count_code(g.final_codes, l->code);
    c->final_replied++;
    c->final_ok += l->code / 100 == 2;
    if (c->final_replied == c->final_expected) {
        final_replies_done(c);
    }
}

/* Every complete reply line, in order. Only a reply's last line moves the
 * state, except LHLO whose every line names an extension. */
static void on_line(conn *c, const lmtpblast_reply_line *l)
{
    if (c->state == CS_LHLO) {
        c->cap_pipelining |= is_keyword(l->text, "PIPELINING");
        c->cap_chunking |= is_keyword(l->text, "CHUNKING");
        c->cap_size |= is_keyword(l->text, "SIZE");
    }
    if (!l->last) {
        return;
    }
    switch (c->state) {
    case CS_GREETING:
        if (l->code != 220) {
            conn_fail(c, ERR_PROTOCOL, "greeting: %u %s", l->code, l->text);
            return;
        }
        c->state = CS_LHLO;
        c->cap_pipelining = false;
        c->cap_chunking = false;
        c->cap_size = false;
        conn_send_text(c, g.lhlo_cmd, false);
        return;
    case CS_LHLO:
        on_lhlo_reply(c, l);
        return;
    case CS_MAIL:
        on_mail_reply(c, l);
        return;
    case CS_RCPT:
        on_rcpt_reply(c, l);
        return;
    case CS_DATA:
        on_data_reply(c, l);
        return;
    case CS_FINAL:
        on_final_reply(c, l);
        return;
    case CS_RSET:
        msg_finished(c, false);
        return;
    case CS_QUIT:
        c->want_reconnect = false;
        conn_begin_close(c);
        return;
    default:
        conn_fail(c, ERR_PROTOCOL, "unexpected reply: %u %s", l->code, l->text);
        return;
    }
}

static bool conn_live(const conn *c)
{
    return c->state > CS_CONNECTING && c->state < CS_CLOSING;
}

static void parse_bytes(conn *c, const uint8_t *buf, size_t len)
{
    size_t off = 0;
    while (off < len && conn_live(c)) {
        size_t used = 0;
        lmtpblast_reply_rc rc = lmtpblast_reply_feed(&c->rp, buf + off, len - off, &used);
        off += used;
        if (rc == LMTPBLAST_REPLY_ERROR) {
            conn_fail(c, ERR_PROTOCOL, "malformed reply");
            return;
        }
        if (rc == LMTPBLAST_REPLY_LINE) {
            on_line(c, &c->rp.line);
        }
    }
}

/* ------------------------------------------------------------ completions */

static void on_connect(conn *c, int res)
{
    if (c->state != CS_CONNECTING) {
        conn_maybe_finish_close(c);
        return;
    }
    if (res < 0) {
        conn_fail(c, ERR_CONNECT, "connect: %s", strerror(-res));
        return;
    }
    c->state = CS_GREETING;
    c->last_progress_ns = g.now_ns;
    conn_arm_recv(c);
}

static void on_recv(conn *c, int res, uint32_t flags)
{
    bool more = (flags & IORING_CQE_F_MORE) != 0;
    if (!more) {
        c->inflight--; /* the multishot recv has ended */
    }
    if (flags & IORING_CQE_F_BUFFER) {
        unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
        if (res > 0 && conn_live(c)) {
            c->last_progress_ns = g.now_ns;
            parse_bytes(c, g.bufs + (size_t)bid * RECV_BUF_BYTES, (size_t)res);
        }
        buf_return(bid);
    }
    if (!conn_live(c)) {
        conn_maybe_finish_close(c);
        return;
    }
    if (res == 0) {
        conn_fail(c, ERR_CLOSED, "connection closed by the server");
        return;
    }
    if (res < 0 && res != -ENOBUFS) {
        conn_fail(c, ERR_IO, "recv: %s", strerror(-res));
        return;
    }
    if (!more) {
        /* Out of buffers, or the kernel ended the multishot: re-arm. */
        conn_arm_recv(c);
    }
}

static void on_send(conn *c, int res)
{
    c->send_busy = false;
    if (c->state == CS_CLOSING) {
        conn_maybe_finish_close(c);
        return;
    }
    if (res < 0) {
        conn_fail(c, ERR_IO, "send: %s", strerror(-res));
        return;
    }
    size_t left = (size_t)res;
    while (c->iov_first < c->iov_n && left >= c->iov[c->iov_first].iov_len) {
        left -= c->iov[c->iov_first].iov_len;
        c->iov_first++;
    }
    if (c->iov_first < c->iov_n) {
        c->iov[c->iov_first].iov_base = (uint8_t *)c->iov[c->iov_first].iov_base + left;
        c->iov[c->iov_first].iov_len -= left;
        send_submit(c);
        return;
    }
    c->last_progress_ns = g.now_ns;
    bool ended_msg = c->send_ends_msg;
    if (c->next_pending) {
        c->next_pending = false;
        memcpy(c->iov, c->next_iov, c->next_iov_n * sizeof(c->iov[0]));
        c->iov_n = c->next_iov_n;
        c->iov_first = 0;
        c->send_ends_msg = c->next_ends_msg;
        send_submit(c);
    }
    if (ended_msg) {
        c->last_byte_sent = true;
        c->last_byte_ns = g.now_ns;
        if (c->replies_done && c->state == CS_FINAL) {
            msg_finished(c, true);
        }
    }
}

static void dispatch(uint64_t ud, int res, uint32_t flags)
{
    unsigned idx = (unsigned)(ud >> OP_BITS);
    SL_ASSERT(idx < g.o.connections);
    conn *c = &g.conns[idx];
    switch ((enum op_kind)(ud & OP_MASK)) {
    case OP_CONNECT:
        c->inflight--;
        on_connect(c, res);
        return;
    case OP_RECV:
        on_recv(c, res, flags);
        return;
    case OP_SEND:
        c->inflight--;
        on_send(c, res);
        return;
    case OP_CANCEL:
        c->inflight--;
        conn_maybe_finish_close(c);
        return;
    }
}

typedef struct reaped {
    uint64_t ud;
    int res;
    uint32_t flags;
} reaped;

/* Completions are copied out first and handled after, so a handler may
 * submit (and so flush the SQ) without disturbing the walk of the CQ. */
static void reap_all(void)
{
    reaped batch[REAP_BATCH];
    unsigned n;
    do {
        struct io_uring_cqe *cqe;
        unsigned head;
        n = 0;
        io_uring_for_each_cqe(&g.ring, head, cqe)
        {
            if (n == REAP_BATCH) {
                break;
            }
            batch[n].ud = cqe->user_data;
            batch[n].res = cqe->res;
            batch[n].flags = cqe->flags;
            n++;
        }
        io_uring_cq_advance(&g.ring, n);
        for (unsigned i = 0; i < n; i++) {
            dispatch(batch[i].ud, batch[i].res, batch[i].flags);
        }
    } while (n == REAP_BATCH);
    if (g.buf_returned > 0) {
        io_uring_buf_ring_advance(g.br, (int)g.buf_returned);
        g.buf_returned = 0;
    }
}

/* ------------------------------------------------------------ scheduling */

/* No new messages from now on. The end of --duration lets an open loop
 * drain what is already due (those latencies are the honest ones); ^C
 * drops it and counts it as unsent. */
static void stop_new_messages(bool drop)
{
    g.sched_done = true;
    for (unsigned i = 0; i < g.o.connections; i++) {
        conn *c = &g.conns[i];
        /* A closed loop's share ends here; UINT64_MAX means "until the end". */
        if (c->assigned == UINT64_MAX || (!drop && g.o.rate <= 0)) {
            c->assigned = c->started;
        } else if (drop && c->assigned > c->started) {
            g.unsent += c->assigned - c->started;
            c->assigned = c->started;
        }
        conn_kick(c);
    }
}

/* Open loop: message k is due at t_start + k / rate, on connection k % C. */
static void schedule(void)
{
    while (!g.sched_done) {
        if (g.o.messages > 0 && g.next_k >= g.o.messages) {
            stop_new_messages(false);
            return;
        }
        uint64_t due = sched_time_ns(g.next_k);
        if (g.t_end_ns != 0 && due >= g.t_end_ns) {
            stop_new_messages(false);
            return;
        }
        if (due > g.now_ns) {
            return;
        }
        conn *c = &g.conns[g.next_k % g.o.connections];
        g.next_k++;
        c->assigned++;
        conn_kick(c);
    }
}

static void housekeep(void)
{
    for (unsigned i = 0; i < g.o.connections; i++) {
        conn *c = &g.conns[i];
        if (c->state == CS_DOWN) {
            if (conn_work_done(c)) {
                conn_set_done(c);
            } else if (c->fail_since_ns != 0 && g.now_ns - c->fail_since_ns > g.timeout_ns) {
                /* Failing for a whole timeout: give up rather than spin. */
                g.gave_up++;
                conn_set_done(c);
            } else if (g.now_ns >= c->reconnect_at_ns) {
                conn_connect(c);
            }
            continue;
        }
        bool waiting = c->state >= CS_CONNECTING && c->state <= CS_QUIT && c->state != CS_READY;
        if (waiting && g.now_ns - c->last_progress_ns > g.timeout_ns) {
            conn_fail(c, ERR_TIMEOUT, "no reply within %.1f s", g.o.timeout_s);
        }
    }
}

static uint64_t errors_total(void)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < ERR_KINDS; i++) {
        n += g.errors[i];
    }
    return n;
}

static void show_progress(void)
{
    static uint64_t prev_msgs;
    static uint64_t prev_ns;
    double dt = (double)(g.now_ns - (prev_ns != 0 ? prev_ns : g.t_start_ns)) / 1e9;
    double rate = dt > 0 ? (double)(g.messages - prev_msgs) / dt : 0;
    unsigned up = 0;
    for (unsigned i = 0; i < g.o.connections; i++) {
        up += g.conns[i].state >= CS_READY && g.conns[i].state <= CS_QUIT;
    }
    fprintf(stderr,
            "\r\033[K%7.1fs  %" PRIu64 " msgs  %.0f msg/s  %" PRIu64 " deliveries  %" PRIu64
            " rejected  %" PRIu64 " errors  %u/%u conns up",
            (double)(g.now_ns - g.t_start_ns) / 1e9, g.messages, rate, g.deliveries,
            g.rejected_msgs, errors_total(), up, g.o.connections);
    prev_msgs = g.messages;
    prev_ns = g.now_ns;
}

static uint64_t next_wake_ns(void)
{
    uint64_t wake = g.next_housekeep_ns;
    if (g.progress && g.next_progress_ns < wake) {
        wake = g.next_progress_ns;
    }
    if (g.t_end_ns != 0 && !g.sched_done && g.t_end_ns < wake) {
        wake = g.t_end_ns;
    }
    if (g.o.rate > 0 && !g.sched_done) {
        uint64_t due = sched_time_ns(g.next_k);
        if (due < wake) {
            wake = due;
        }
    }
    return wake;
}

static void run(void)
{
    for (unsigned i = 0; i < g.o.connections; i++) {
        conn_connect(&g.conns[i]);
    }
    int seen_interrupts = 0;
    while (g.conns_done < g.o.connections) {
        uint64_t wake = next_wake_ns();
        uint64_t wait = wake > g.now_ns ? wake - g.now_ns : 0;
        struct __kernel_timespec ts = {.tv_sec = (long long)(wait / NS_PER_S),
                                       .tv_nsec = (long long)(wait % NS_PER_S)};
        struct io_uring_cqe *cqe = NULL;
        int rc = io_uring_submit_and_wait_timeout(&g.ring, &cqe, 1, &ts, NULL);
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
            die("io_uring_enter: %s", strerror(-rc));
        }
        g.now_ns = clock_ns();
        reap_all();
        if (g_interrupts != seen_interrupts) {
            seen_interrupts = g_interrupts;
            if (seen_interrupts > 1) {
                break; /* a second ^C: report what we have now */
            }
            stop_new_messages(true);
        }
        if (g.t_end_ns != 0 && !g.sched_done && g.now_ns >= g.t_end_ns) {
            stop_new_messages(false);
        }
        if (g.o.rate > 0) {
            schedule();
        }
        if (g.now_ns >= g.next_housekeep_ns) {
            housekeep();
            g.next_housekeep_ns = g.now_ns + HOUSEKEEP_NS;
        }
        if (g.progress && g.now_ns >= g.next_progress_ns) {
            show_progress();
            g.next_progress_ns += PROGRESS_NS;
        }
    }
    if (g.progress) {
        fputs("\r\033[K", stderr);
    }
    for (unsigned i = 0; i < g.o.connections; i++) {
        conn *c = &g.conns[i];
        if (c->assigned != UINT64_MAX && c->assigned > c->started) {
            g.unsent += c->assigned - c->started;
        }
    }
}

/* ---------------------------------------------------------------- report */

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            printf("\\%c", ch);
        } else if (ch < 0x20) {
            printf("\\u%04x", ch);
        } else {
            putchar(ch);
        }
    }
    putchar('"');
}

static void print_codes_json(const char *name, const uint64_t *codes)
{
    printf("\"%s\":{", name);
    const char *sep = "";
    for (unsigned i = 0; i < CODES; i++) {
        if (codes[i] != 0) {
            printf("%s\"%u\":%" PRIu64, sep, i, codes[i]);
            sep = ",";
        }
    }
    putchar('}');
}

static void print_codes_text(const char *name, const uint64_t *codes)
{
    bool any = false;
    for (unsigned i = 0; i < CODES; i++) {
        if (codes[i] != 0) {
            printf("%s%u:%" PRIu64, any ? "  " : name, i, codes[i]);
            any = true;
        }
    }
    if (any) {
        putchar('\n');
    }
}

static size_t mean_size(void)
{
    double sum = 0;
    for (unsigned i = 0; i < g.o.nsizes; i++) {
        sum += (double)g.o.sizes[i] * g.o.weights[i];
    }
    return (size_t)(sum / g.weight_total);
}

/* The numbers both reports print. */
typedef struct summary {
    double elapsed_s;
    double per_s; /* 1 / elapsed_s, or 0 */
    double cpu_ms;
    double cpu_ms_per_msg;
    double q_ms[4]; /* p50, p90, p99, p99.9 */
    double max_ms;
} summary;

static summary summarize(double cpu_ms)
{
    /* A run ends with its last message, not with the QUITs after it. */
    uint64_t end = g.t_last_msg_ns != 0 ? g.t_last_msg_ns : g.now_ns;
    summary s = {.elapsed_s = (double)(end - g.t_start_ns) / 1e9, .cpu_ms = cpu_ms};
    s.per_s = s.elapsed_s > 0 ? 1.0 / s.elapsed_s : 0;
    s.cpu_ms_per_msg = g.messages > 0 ? cpu_ms / (double)g.messages : 0;
    static const double qs[4] = {0.50, 0.90, 0.99, 0.999};
    for (unsigned i = 0; i < 4; i++) {
        s.q_ms[i] = ms(lmtpblast_hist_quantile_ns(&g.hist, qs[i]));
    }
    s.max_ms = ms(g.hist.max_ns);
    return s;
}

static void report_json(const summary *s)
{
    printf("{\"target\":");
    print_json_string(g.o.target);
    printf(",\"connections\":%u,\"rcpts\":%u,\"size\":%zu,", g.o.connections, g.o.rcpts,
           mean_size());
    if (g.o.size_mix != NULL) {
        printf("\"size_mix\":");
        print_json_string(g.o.size_mix);
        putchar(',');
    }
    printf("\"pipeline\":%s,\"bdat\":%s,\"rate\":%.3f,", g.o.pipeline ? "true" : "false",
           g.o.bdat ? "true" : "false", g.o.rate);
    printf("\"elapsed_s\":%.3f,\"messages\":%" PRIu64 ",\"deliveries\":%" PRIu64
           ",\"rejected\":%" PRIu64 ",\"msgs_per_s\":%.1f,\"deliveries_per_s\":%.1f,"
           "\"mb_per_s\":%.3f,",
           s->elapsed_s, g.messages, g.deliveries, g.rejected_msgs, (double)g.messages * s->per_s,
           (double)g.deliveries * s->per_s, (double)g.bytes / 1e6 * s->per_s);
    printf("\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f},",
           s->q_ms[0], s->q_ms[1], s->q_ms[2], s->q_ms[3], s->max_ms);
    print_codes_json("replies", g.final_codes);
    putchar(',');
    print_codes_json("rcpt_replies", g.rcpt_codes);
    putchar(',');
    print_codes_json("mail_replies", g.mail_codes);
    putchar(',');
    print_codes_json("data_cmd_replies", g.datacmd_codes);
    printf(",\"errors\":%" PRIu64 ",\"error_kinds\":{", errors_total());
    for (unsigned i = 0; i < ERR_KINDS; i++) {
        printf("%s\"%s\":%" PRIu64, i > 0 ? "," : "", err_names[i], g.errors[i]);
    }
    printf("},\"aborted\":%" PRIu64 ",\"unsent\":%" PRIu64 ",\"gave_up\":%" PRIu64 ",", g.aborted,
           g.unsent, g.gave_up);
    if (g.last_error[0] != '\0') {
        printf("\"last_error\":");
        print_json_string(g.last_error);
        putchar(',');
    }
    printf("\"client_cpu_ms\":%.1f,\"client_cpu_ms_per_msg\":%.4f}\n", s->cpu_ms,
           s->cpu_ms_per_msg);
}

static void report_text(const summary *s)
{
    printf("target         %s, %u connections, %u rcpt/msg, size %zu%s%s%s\n", g.o.target,
           g.o.connections, g.o.rcpts, mean_size(), g.o.size_mix != NULL ? " (mix mean)" : "",
           g.o.bdat ? ", BDAT" : (g.o.pipeline ? ", pipelined" : ""),
           g.o.rate > 0 ? ", open loop" : ", closed loop");
    printf("elapsed        %.3f s\n", s->elapsed_s);
    printf("messages       %" PRIu64 "  %.1f/s  (%" PRIu64 " with a rejection)\n", g.messages,
           (double)g.messages * s->per_s, g.rejected_msgs);
    printf("deliveries     %" PRIu64 "  %.1f/s\n", g.deliveries, (double)g.deliveries * s->per_s);
    printf("throughput     %.2f MB/s\n", (double)g.bytes / 1e6 * s->per_s);
    printf("latency ms     p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (%s)\n", s->q_ms[0],
           s->q_ms[1], s->q_ms[2], s->q_ms[3], s->max_ms,
           g.o.rate > 0 ? "from scheduled time" : "from last byte sent");
    print_codes_text("MAIL replies   ", g.mail_codes);
    print_codes_text("RCPT replies   ", g.rcpt_codes);
    print_codes_text("DATA replies   ", g.datacmd_codes);
    print_codes_text("final replies  ", g.final_codes);
    printf("errors         %" PRIu64 " (", errors_total());
    for (unsigned i = 0; i < ERR_KINDS; i++) {
        printf("%s%s %" PRIu64, i > 0 ? ", " : "", err_names[i], g.errors[i]);
    }
    printf("); aborted %" PRIu64 ", unsent %" PRIu64 ", connections given up %" PRIu64 "\n",
           g.aborted, g.unsent, g.gave_up);
    if (g.last_error[0] != '\0') {
        printf("last error     %s\n", g.last_error);
    }
    printf("client cpu     %.0f ms, %.4f ms/msg\n", s->cpu_ms, s->cpu_ms_per_msg);
}

/* ----------------------------------------------------------------- setup */

static void usage(FILE *f)
{
    fputs("usage: lmtpblast --target HOST:PORT|unix:/path [options]\n"
          "  --connections N        parallel connections (default 8)\n"
          "  --messages M           total messages, split over the connections\n"
          "  --duration S           run for S seconds (default 10 if no --messages)\n"
          "  --rcpts R              recipients per message (default 1)\n"
          "  --users U              recipients are drawn from users 0..U-1 (default 1000)\n"
          "  --user-pattern P       address pattern (default user%04d@example.test)\n"
          "  --seed N               random seed (default 1)\n"
          "  --size BYTES           message size (default 4096; k/m suffixes: KiB/MiB)\n"
          "  --size-mix S:W,...     sizes with weights, e.g. 4096:80,65536:15,1048576:5\n"
          "  --pipeline             MAIL, RCPTs and DATA in one write\n"
          "  --bdat                 BDAT n LAST instead of DATA, with MAIL and RCPTs\n"
          "                         in the same write (implies --pipeline)\n"
          "  --rate MSGS_PER_S      open loop at this global rate (default closed loop)\n"
          "  --lhlo NAME            LHLO argument (default lmtpblast.test)\n"
          "  --from ADDR            envelope sender (default blast@lmtpblast.test)\n"
          "  --timeout S            seconds to wait for a reply (default 30)\n"
          "  --no-reconnect         do not reconnect a failed connection\n"
          "  --json                 print one JSON object instead of the text report\n"
          "Exit status: 0 when every message completed without an error (rejections\n"
          "are not errors), 1 otherwise, 2 on bad usage.\n",
          f);
}

static uint64_t parse_u64(const char *name, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > max) {
        die("--%s: want an integer in %" PRIu64 "..%" PRIu64 ", got '%s'", name, min, max, s);
    }
    return v;
}

static double parse_pos_double(const char *name, const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v > 0) || v > 1e9) {
        die("--%s: want a positive number, got '%s'", name, s);
    }
    return v;
}

/* BYTES with an optional k or m suffix (KiB, MiB). */
static size_t parse_size(const char *s, const char **end_out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || s[0] == '-') {
        die("bad size '%s'", s);
    }
    if (*end == 'k' || *end == 'K') {
        v <<= 10;
        end++;
    } else if (*end == 'm' || *end == 'M') {
        v <<= 20;
        end++;
    }
    if (v == 0 || v > SIZE_BYTES_MAX) {
        die("size must be 1..%llu bytes, got '%s'", SIZE_BYTES_MAX, s);
    }
    *end_out = end;
    return (size_t)v;
}

static void parse_size_mix(opts *o, const char *s)
{
    o->nsizes = 0;
    o->size_mix = s;
    const char *p = s;
    while (*p != '\0') {
        if (o->nsizes == SIZE_MIX_MAX) {
            die("--size-mix: at most %d sizes", SIZE_MIX_MAX);
        }
        const char *end;
        size_t size = parse_size(p, &end);
        if (*end != ':') {
            die("--size-mix: want SIZE:WEIGHT[,...], got '%s'", s);
        }
        char *wend;
        unsigned long w = strtoul(end + 1, &wend, 10);
        if (wend == end + 1 || w == 0 || w > 1000000 || (*wend != ',' && *wend != '\0')) {
            die("--size-mix: weights are integers 1..1000000, got '%s'", s);
        }
        o->sizes[o->nsizes] = size;
        o->weights[o->nsizes] = (unsigned)w;
        o->nsizes++;
        p = *wend == ',' ? wend + 1 : wend;
    }
    if (o->nsizes == 0) {
        die("--size-mix: empty");
    }
}

static void parse_args(int argc, char **argv, opts *o)
{
    enum {
        O_TARGET = 256,
        O_CONNECTIONS,
        O_MESSAGES,
        O_DURATION,
        O_RCPTS,
        O_USERS,
        O_PATTERN,
        O_SEED,
        O_SIZE,
        O_SIZE_MIX,
        O_PIPELINE,
        O_BDAT,
        O_RATE,
        O_LHLO,
        O_FROM,
        O_JSON,
        O_TIMEOUT,
        O_NO_RECONNECT,
        O_HELP,
    };
    static const struct option longopts[] = {
        {"target", required_argument, NULL, O_TARGET},
        {"connections", required_argument, NULL, O_CONNECTIONS},
        {"messages", required_argument, NULL, O_MESSAGES},
        {"duration", required_argument, NULL, O_DURATION},
        {"rcpts", required_argument, NULL, O_RCPTS},
        {"users", required_argument, NULL, O_USERS},
        {"user-pattern", required_argument, NULL, O_PATTERN},
        {"seed", required_argument, NULL, O_SEED},
        {"size", required_argument, NULL, O_SIZE},
        {"size-mix", required_argument, NULL, O_SIZE_MIX},
        {"pipeline", no_argument, NULL, O_PIPELINE},
        {"bdat", no_argument, NULL, O_BDAT},
        {"rate", required_argument, NULL, O_RATE},
        {"lhlo", required_argument, NULL, O_LHLO},
        {"from", required_argument, NULL, O_FROM},
        {"json", no_argument, NULL, O_JSON},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"no-reconnect", no_argument, NULL, O_NO_RECONNECT},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    *o = (opts){
        .connections = 8,
        .rcpts = 1,
        .users = 1000,
        .user_pattern = "user%04d@example.test",
        .seed = 1,
        .sizes = {4096},
        .weights = {1},
        .nsizes = 1,
        .reconnect = true,
        .lhlo = "lmtpblast.test",
        .from = "blast@lmtpblast.test",
        .timeout_s = 30,
    };
    bool size_given = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        const char *end;
        switch (ch) {
        case O_TARGET:
            o->target = optarg;
            break;
        case O_CONNECTIONS:
            o->connections = (unsigned)parse_u64("connections", optarg, 1, CONNECTIONS_MAX);
            break;
        case O_MESSAGES:
            o->messages = parse_u64("messages", optarg, 1, UINT64_MAX / 2);
            break;
        case O_DURATION:
            o->duration_s = parse_pos_double("duration", optarg);
            break;
        case O_RCPTS:
            o->rcpts = (unsigned)parse_u64("rcpts", optarg, 1, RCPTS_MAX);
            break;
        case O_USERS:
            o->users = (uint32_t)parse_u64("users", optarg, 1, UINT32_MAX);
            break;
        case O_PATTERN:
            o->user_pattern = optarg;
            break;
        case O_SEED:
            o->seed = parse_u64("seed", optarg, 0, UINT64_MAX);
            break;
        case O_SIZE:
            o->sizes[0] = parse_size(optarg, &end);
            if (*end != '\0') {
                die("--size: bad value '%s'", optarg);
            }
            size_given = true;
            break;
        case O_SIZE_MIX:
            parse_size_mix(o, optarg);
            break;
        case O_PIPELINE:
            o->pipeline = true;
            break;
        case O_BDAT:
            o->bdat = true;
            break;
        case O_RATE:
            o->rate = parse_pos_double("rate", optarg);
            break;
        case O_LHLO:
            o->lhlo = optarg;
            break;
        case O_FROM:
            o->from = optarg;
            break;
        case O_JSON:
            o->json = true;
            break;
        case O_TIMEOUT:
            o->timeout_s = parse_pos_double("timeout", optarg);
            break;
        case O_NO_RECONNECT:
            o->reconnect = false;
            break;
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind != argc) {
        die("unexpected argument '%s' (see --help)", argv[optind]);
    }
    if (o->target == NULL) {
        usage(stderr);
        exit(2);
    }
    if (size_given && o->size_mix != NULL) {
        die("--size and --size-mix exclude each other");
    }
    if (o->size_mix == NULL) {
        o->nsizes = 1;
        o->weights[0] = 1;
    }
    if (o->messages == 0 && o->duration_s == 0) {
        o->duration_s = 10;
    }
    if (o->rcpts > o->users) {
        die("--rcpts %u needs at least as many --users", o->rcpts);
    }
    if (strlen(o->lhlo) > 255 || strlen(o->from) > 255) {
        die("--lhlo and --from are limited to 255 bytes");
    }
}

static void resolve_target(const char *target)
{
    memset(&g.addr, 0, sizeof(g.addr));
    if (strncmp(target, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&g.addr;
        const char *path = target + 5;
        if (strlen(path) == 0 || strlen(path) >= sizeof(un->sun_path)) {
            die("--target: bad unix socket path '%s'", path);
        }
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, path, strlen(path) + 1);
        g.addr_len = (socklen_t)sizeof(*un);
        g.is_tcp = false;
        return;
    }
    char host[256];
    const char *colon = strrchr(target, ':');
    if (colon == NULL || colon == target || colon[1] == '\0' ||
        (size_t)(colon - target) >= sizeof(host)) {
        die("--target: want HOST:PORT or unix:/path, got '%s'", target);
    }
    const char *h = target;
    size_t hl = (size_t)(colon - target);
    if (h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0) {
        die("--target %s: %s", target, gai_strerror(rc));
    }
    memcpy(&g.addr, res->ai_addr, res->ai_addrlen);
    g.addr_len = res->ai_addrlen;
    g.is_tcp = true;
    freeaddrinfo(res);
}

static void setup_messages(void)
{
    char err[128];
    if (lmtpblast_msg_pattern_parse(g.o.user_pattern, &g.pattern, err, sizeof(err)) != 0) {
        die("--user-pattern '%s': %s", g.o.user_pattern, err);
    }
    g.addr_len_max = lmtpblast_msg_addr_len_max(&g.pattern);
    g.var_bytes_max = lmtpblast_msg_var_bytes_max(g.o.rcpts, g.addr_len_max);
    /* MAIL with SIZE, RCPT lines, and DATA or BDAT with a 20-digit size. */
    g.cmd_bytes_max = 64 + strlen(g.o.from) + (size_t)g.o.rcpts * (g.addr_len_max + 16) + 64;

    /* The size target covers the whole message: estimate the per-message
     * part from a typical one (the highest user number, mid-run numbers). */
    uint8_t *scratch = xcalloc(1, g.var_bytes_max + (size_t)g.o.rcpts * g.addr_len_max);
    const uint8_t **ptrs = xcalloc(g.o.rcpts, sizeof(*ptrs));
    size_t *lens = xcalloc(g.o.rcpts, sizeof(*lens));
    uint8_t *a = scratch + g.var_bytes_max;
    for (unsigned i = 0; i < g.o.rcpts; i++) {
        ptrs[i] = a + (size_t)i * g.addr_len_max;
        lens[i] = lmtpblast_msg_format_user(&g.pattern, g.o.users - 1, a + i * g.addr_len_max);
    }
    size_t var = lmtpblast_msg_var_build(scratch, g.o.connections / 2, 1000, g.o.seed, ptrs, lens,
                                         g.o.rcpts);
    free(scratch);
    free(ptrs);
    free(lens);

    time_t now = time(NULL);
    g.weight_total = 0;
    for (unsigned i = 0; i < g.o.nsizes; i++) {
        lmtpblast_msg_tmpl_init(&g.tmpl[i], g.o.sizes[i], var, g.o.from, now);
        g.weight_total += g.o.weights[i];
    }
}

static void setup_conns(void)
{
    g.conns = xcalloc(g.o.connections, sizeof(conn));
    uint64_t share = g.o.messages / g.o.connections;
    uint64_t extra = g.o.messages % g.o.connections;
    for (unsigned i = 0; i < g.o.connections; i++) {
        conn *c = &g.conns[i];
        c->idx = i;
        c->fd = -1;
        c->state = CS_DOWN;
        c->rng = g.o.seed * 0x100000001b3ull + i;
        rng_next(&c->rng);
        if (g.o.rate > 0) {
            c->assigned = 0; /* the scheduler hands them out */
        } else if (g.o.messages > 0) {
            c->assigned = share + (i < extra ? 1 : 0);
        } else {
            c->assigned = UINT64_MAX; /* until --duration ends */
        }
        c->cmd = xcalloc(1, g.cmd_bytes_max);
        c->cmd_off = xcalloc(g.o.rcpts + 3, sizeof(uint32_t));
        c->var = xcalloc(1, g.var_bytes_max);
        c->addrs = xcalloc(g.o.rcpts, g.addr_len_max);
        c->addr_ptr = xcalloc(g.o.rcpts, sizeof(*c->addr_ptr));
        c->addr_lens = xcalloc(g.o.rcpts, sizeof(*c->addr_lens));
        c->users = xcalloc(g.o.rcpts, sizeof(*c->users));
    }
    /* Closed loop with --messages knows every assignment up front. */
    g.sched_done = g.o.rate <= 0 && g.o.messages > 0;
}

static void on_signal(int sig)
{
    (void)sig;
    g_interrupts++;
}

static double cpu_ms_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

int main(int argc, char **argv)
{
    parse_args(argc, argv, &g.o);
    resolve_target(g.o.target);
    setup_messages();
    setup_conns();
    ring_setup();

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: the wait must return */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    g.progress = isatty(STDERR_FILENO) == 1;
    snprintf(g.lhlo_cmd, sizeof(g.lhlo_cmd), "LHLO %s\r\n", g.o.lhlo);
    g.timeout_ns = (uint64_t)(g.o.timeout_s * 1e9);
    g.ns_per_msg = g.o.rate > 0 ? 1e9 / g.o.rate : 0;
    g.now_ns = clock_ns();
    g.t_start_ns = g.now_ns;
    g.t_end_ns = g.o.duration_s > 0 ? g.t_start_ns + (uint64_t)(g.o.duration_s * 1e9) : 0;
    g.next_housekeep_ns = g.now_ns + HOUSEKEEP_NS;
    g.next_progress_ns = g.now_ns + PROGRESS_NS;
    lmtpblast_hist_init(&g.hist);

    run();
    summary sum = summarize(cpu_ms_self());
    if (g.o.json) {
        report_json(&sum);
    } else {
        report_text(&sum);
    }

    bool complete = g.o.messages == 0 || g.o.duration_s > 0 || g.messages == g.o.messages;
    return errors_total() == 0 && g.aborted == 0 && g.unsent == 0 && complete ? 0 : 1;
}
