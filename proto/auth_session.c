/* proto/auth_session.c: see auth_session.h.
 *
 * Lifetimes. A connection counts the ring operations the kernel holds for
 * it (recv, send, close); it is freed only when that count is zero and its
 * close completed. A request (auth_req) lives in its connection's list;
 * while a resolver or worker job carries its pointer as the token it must
 * not be freed, so a request whose connection goes away (or that is
 * cancelled) then is moved to the server's orphan list and freed when the
 * answer comes back. Requests waiting on the timer (penalty hold, failure
 * delay) are also on the timer list, which a 100 ms ring timeout walks
 * while it is not empty.
 *
 * Receive buffers come from a provided-buffer ring; each one is parsed
 * whole as soon as it arrives (the parser copies a line split across
 * buffers), then wiped, since it may hold a password, and handed back. */
#include "proto/auth_session.h"

#include "auth/passdb_cache.h"
#include "auth/penalty.h"
#include "auth/pwscheme.h"
#include "auth/pwverify.h"
#include "core/acceptor.h"
#include "core/alloc.h"
#include "core/base/base.h"
#include "core/base/base64.h"
#include "core/bufring.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/net.h"
#include "proto/auth_parser.h"
#include "proto/sasl_mech.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* pw_credentials() writes a pw_scram; the SCRAM mechanism reads a
 * sasl_scram_cred: the same bytes, so they pass through with memcpy. */
_Static_assert(sizeof(pw_scram) == sizeof(sasl_scram_cred), "pw_scram layout");
_Static_assert(offsetof(pw_scram, iterations) == offsetof(sasl_scram_cred, iterations),
               "pw_scram.iterations");
_Static_assert(offsetof(pw_scram, salt_len) == offsetof(sasl_scram_cred, salt_len),
               "pw_scram.salt_len");
_Static_assert(offsetof(pw_scram, salt) == offsetof(sasl_scram_cred, salt), "pw_scram.salt");
_Static_assert(offsetof(pw_scram, stored_key) == offsetof(sasl_scram_cred, stored_key),
               "pw_scram.stored_key");
_Static_assert(offsetof(pw_scram, server_key) == offsetof(sasl_scram_cred, server_key),
               "pw_scram.server_key");
_Static_assert(PW_SCRAM_SALT_BYTES_MAX == SASL_SCRAM_SALT_BYTES_MAX, "SCRAM salt size");
_Static_assert(PW_SCRAM_KEY_BYTES_MAX == SASL_SCRAM_KEY_BYTES_MAX, "SCRAM key size");
/* Stats are indexed by mechanism id; the flags are written as they are. */
_Static_assert((int)SASL_MECH_COUNT == (int)SL_AUTH_MECH_UNKNOWN, "stats mechanism order");
_Static_assert((int)SASL_MECH_SCRAM_SHA256 == (int)SL_AUTH_MECH_SCRAM_SHA256, "stats order");
_Static_assert(SASL_MECH_FLAG_PRIVATE == AUTH_MECH_FLAG_PRIVATE, "MECH flags");
_Static_assert(SASL_MECH_FLAG_PLAINTEXT == AUTH_MECH_FLAG_PLAINTEXT, "MECH flags");
_Static_assert(SASL_MECH_FLAG_MUTUAL_AUTH == AUTH_MECH_FLAG_MUTUAL_AUTH, "MECH flags");
_Static_assert(PWVERIFY_PLAIN_BYTES_MAX >= SASL_PASSWORD_BYTES_MAX, "plaintext fits a job");

#define AUTH_LISTENERS_MAX 8
#define AUTH_BUF_GROUP 1
#define AUTH_BUF_COUNT 64
#define AUTH_BUF_BYTES 4096
#define AUTH_TICK_MS 100
#define AUTH_DRAIN_BATCH 16
#define AUTH_OUT_BYTES_MAX (1024 * 1024) /* a client that stops reading is dropped */
#define AUTH_PENALTY_INIT_MS 2000        /* Dovecot's AUTH_PENALTY_INIT_SECS */
#define AUTH_PENALTY_ENTRIES 16384
#define AUTH_PENALTY_EXPIRE_MS (60 * 60 * 1000)
#define AUTH_PWVERIFY_QUEUE 256
#define AUTH_IP_BYTES 64
#define AUTH_LOG_USER_BYTES 96

/* The one text every credential failure carries: it must not tell an
 * unknown user from a wrong password. */

typedef enum req_state {
    REQ_HELD_PENALTY = 0, /* on the timer: the client IP's penalty */
    REQ_WAIT_CLIENT,      /* CONT sent: the client's CONT is next */
    REQ_WAIT_PASSDB,      /* a resolver lookup carries this request */
    REQ_WAIT_WORKER,      /* a pwverify job carries this request */
    REQ_HELD_FAIL,        /* FAIL built, on the timer: the failure delay */
} req_state;

typedef struct auth_conn auth_conn;

typedef struct auth_req {
    auth_conn *c; /* NULL once orphaned */
    struct auth_req *prev, *next;   /* connection's list, or the orphan list */
    struct auth_req *tprev, *tnext; /* timer list */
    bool on_timer;
    bool in_due; /* on the timer, in the batch being released */
    req_state state;
    uint32_t id;
    int mech; /* sasl_mech_id, or -1: not offered */
    uint64_t due_ms;
    bool no_penalty;
    bool has_key;
    bool from_cache;
    bool requeried;
    bool mech_started;
    uint32_t attempt_sum; /* user+password of a plaintext attempt, 0 = none (penalty.h) */
    uint8_t key[PENALTY_KEY_BYTES];
    char service[SASL_SERVICE_BYTES_MAX + 1];
    char lip[AUTH_IP_BYTES];
    char rip[AUTH_IP_BYTES];
    char user[USERDB_ADDR_BYTES_MAX]; /* the lookup name: authcid, lower-cased */
    char log_user[AUTH_LOG_USER_BYTES];
    sasl_status need; /* NEED_VERIFY_PLAIN or NEED_CREDENTIALS while one is answered */
    sasl_out out;     /* of the last mechanism call */
    passdb_result pass;
    size_t resp_len;
    uint8_t resp[SASL_INPUT_BYTES_MAX]; /* the decoded initial response, kept over a penalty */
    size_t fail_len;
    uint8_t fail[512]; /* the FAIL line, built when the request failed */
    sasl_mech m;
} auth_req;

struct auth_conn {
    auth_server *srv;
    auth_conn *prev, *next;
    int fd;
    unsigned cuid;
    sl_op op_recv;
    sl_op op_send;
    sl_op op_close;
    unsigned inflight;
    bool recv_armed;
    bool recv_cancelled;
    bool starved;
    bool send_inflight;
    bool closing;
    bool close_submitted;
    bool overflow;
    bool got_version;
    bool got_cpid;
    char ip[AUTH_IP_BYTES]; /* TCP peer; "" for UNIX */
    auth_req *reqs;
    size_t reqs_n;
    uint8_t *out; /* appended to while a send is in flight */
    size_t out_len;
    size_t out_cap;
    uint8_t *sending;
    size_t sending_len;
    size_t sending_off;
    size_t sending_cap;
    auth_parser parser; /* last: 64 KiB */
};

struct auth_server {
    sl_ring *ring;
    resolver *resolver;
    unsigned resolver_id;
    const sl_config *cfg;
    const sl_allow *allow;
    sl_stats_core *st;
    sl_bufring bufs;
    bool bufs_ok;
    pwverify *pw;
    passdb_cache *cache;
    penalty *pen;
    userdb_redis *redis; /* NULL without Redis */
    sl_acceptor listeners[AUTH_LISTENERS_MAX];
    size_t listeners_n;
    auth_conn *conns;
    size_t conns_n;
    bool starved_any;
    auth_req *orphans;
    auth_req *timer_head;
    size_t timer_n;
    auth_req *due_head; /* the batch on_timer is releasing */
    sl_op op_timer;
    struct __kernel_timespec timer_ts;
    bool timer_armed;
    sl_op op_resolver;
    bool resolver_armed;
    sl_op op_pw;
    bool pw_armed;
    bool stopping;
    unsigned next_cuid;
    auth_reply_mech mechs[SASL_MECH_COUNT];
    size_t mechs_n;
    bool offered[SASL_MECH_COUNT];
    resolver_reply replies[AUTH_DRAIN_BATCH];
    pwverify_job jobs[AUTH_DRAIN_BATCH];
};

static void conn_close(auth_conn *c, const char *why);
static void conn_flush(auth_conn *c);
static void req_status(auth_req *r, sasl_status st);
static void req_passdb_answer(auth_req *r, const passdb_result *pass, bool from_cache);
static void req_free(auth_req *r);
static void timer_arm(auth_server *s);

/* ---- mechanisms ----------------------------------------------------------- */

static bool mech_cred_kind(sasl_cred_kind k, pw_cred_kind *out)
{
    switch (k) {
    case SASL_CRED_CRAM_MD5:
        *out = PW_CRED_CRAM_MD5;
        return true;
    case SASL_CRED_DIGEST_MD5:
        *out = PW_CRED_DIGEST_MD5;
        return true;
    case SASL_CRED_SCRAM_SHA1:
        *out = PW_CRED_SCRAM_SHA1;
        return true;
    case SASL_CRED_SCRAM_SHA256:
        *out = PW_CRED_SCRAM_SHA256;
        return true;
    case SASL_CRED_NTLM:
        *out = PW_CRED_NTLM;
        return true;
    case SASL_CRED_NONE:
        break;
    }
    return false;
}

/* Fill the offered list from cfg: the configured order, minus NTLM unless
 * auth_ntlm, minus what default_pass_scheme can never serve. */
static int mechs_configure(auth_server *s, const sl_config *cfg, char *err, size_t err_len)
{
    auth_reply_mech mechs[SASL_MECH_COUNT];
    bool offered[SASL_MECH_COUNT] = {false};
    size_t n = 0;
    char copy[1024];
    snprintf(copy, sizeof(copy), "%s", cfg->auth_mechanisms);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ", \t", &save); tok != NULL;
         tok = strtok_r(NULL, ", \t", &save)) {
        const sasl_mech_info *mi = sasl_mech_lookup((sl_slice){(const uint8_t *)tok, strlen(tok)});
        if (mi == NULL) {
            snprintf(err, err_len, "auth_mechanisms: unknown mechanism '%s'", tok);
            return -1;
        }
        if (offered[mi->id]) {
            continue;
        }
        if (mi->id == SASL_MECH_NTLM && !cfg->auth_ntlm) {
            sl_warn("auth: NTLM not offered: set auth_ntlm = yes to allow it");
            continue;
        }
        pw_cred_kind kind;
        if (mech_cred_kind(mi->cred, &kind) && !pw_can_serve(cfg->default_pass_scheme, kind)) {
            sl_warn("auth: %s not offered: default_pass_scheme %s cannot serve it", mi->name,
                    cfg->default_pass_scheme);
            continue;
        }
        offered[mi->id] = true;
        mechs[n].name = mi->name;
        mechs[n].flags = mi->flags;
        n++;
    }
    if (n == 0) {
        snprintf(err, err_len, "auth_mechanisms: no mechanism left to offer");
        return -1;
    }
    memcpy(s->mechs, mechs, sizeof(mechs));
    memcpy(s->offered, offered, sizeof(offered));
    s->mechs_n = n;
    return 0;
}

static const char *mech_name(int mech)
{
    return mech < 0 ? "unknown" : sasl_mech_info_get((sasl_mech_id)mech)->name;
}

/* ---- small helpers -------------------------------------------------------- */

/* Copy a wire value into a bounded printable string for logs and keys. */
static void text_copy(sl_slice v, char *dst, size_t dst_size)
{
    size_t n = 0;
    for (size_t i = 0; i < v.len && n + 1 < dst_size; i++) {
        uint8_t ch = v.ptr[i];
        dst[n++] = (ch >= 0x21 && ch < 0x7f) ? (char)ch : '?';
    }
    dst[n] = '\0';
}

static void stat_result(auth_server *s, int mech, sl_auth_result res)
{
    size_t m = mech < 0 ? SL_AUTH_MECH_UNKNOWN : (size_t)mech;
    sl_stat_add(&s->st->auth_requests[m][res], 1);
}

/* One line per finished AUTH, like Dovecot's: never a password or response data. */
static void req_log(const auth_req *r, const char *result, const char *detail)
{
    unsigned cuid = r->c != NULL ? r->c->cuid : 0;
    sl_info("auth(%u/%u): %s %s user=<%s> service=%s lip=%s rip=%s%s%s", cuid, r->id,
            mech_name(r->mech), result, r->log_user, r->service, r->lip[0] ? r->lip : "-",
            r->rip[0] ? r->rip : "-", detail != NULL ? ": " : "", detail != NULL ? detail : "");
}

/* ---- output --------------------------------------------------------------- */

static void conn_append(auth_conn *c, const uint8_t *p, size_t n)
{
    if (c->closing) {
        return;
    }
    if (c->overflow || c->out_len + n > AUTH_OUT_BYTES_MAX) {
        /* Closed by the next conn_flush: closing here would free requests
         * the caller still holds. */
        c->overflow = true;
        return;
    }
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap == 0 ? 1024 : c->out_cap;
        while (cap < c->out_len + n) {
            cap *= 2;
        }
        c->out = sl_realloc(c->out, cap);
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

static void on_send(sl_op *op, int res, uint32_t flags)
{
    auth_conn *c = SL_CONTAINER_OF(op, auth_conn, op_send);
    c->send_inflight = false;
    c->inflight--;
    if (res <= 0) {
        conn_close(c, NULL);
        return;
    }
    c->sending_off += (size_t)res;
    conn_flush(c);
}

static void conn_flush(auth_conn *c)
{
    if (c->overflow && !c->closing) {
        conn_close(c, "client does not read its replies");
        return;
    }
    if (c->send_inflight) {
        return;
    }
    if (c->closing) {
        conn_close(c, NULL); /* submits the close once nothing is in flight */
        return;
    }
    if (c->sending_off >= c->sending_len) {
        if (c->out_len == 0) {
            return;
        }
        /* Swap the buffers: the filled one goes out, the other takes appends. */
        uint8_t *tmp = c->sending;
        size_t tmp_cap = c->sending_cap;
        c->sending = c->out;
        c->sending_cap = c->out_cap;
        c->sending_len = c->out_len;
        c->sending_off = 0;
        c->out = tmp;
        c->out_cap = tmp_cap;
        c->out_len = 0;
    }
    c->op_send.fn = on_send;
    c->send_inflight = true;
    c->inflight++;
    io_uring_prep_send(sl_ring_sqe(c->srv->ring, &c->op_send), c->fd, c->sending + c->sending_off,
                       c->sending_len - c->sending_off, MSG_NOSIGNAL);
}

/* ---- requests: lists ------------------------------------------------------ */

static void list_add(auth_req **head, auth_req *r)
{
    r->prev = NULL;
    r->next = *head;
    if (*head != NULL) {
        (*head)->prev = r;
    }
    *head = r;
}

static void list_del(auth_req **head, auth_req *r)
{
    if (r->prev != NULL) {
        r->prev->next = r->next;
    } else {
        *head = r->next;
    }
    if (r->next != NULL) {
        r->next->prev = r->prev;
    }
    r->prev = NULL;
    r->next = NULL;
}

static void timer_add(auth_req *r, uint64_t due_ms)
{
    auth_server *s = r->c->srv;
    SL_ASSERT(!r->on_timer);
    r->due_ms = due_ms;
    r->on_timer = true;
    r->tprev = NULL;
    r->tnext = s->timer_head;
    if (s->timer_head != NULL) {
        s->timer_head->tprev = r;
    }
    s->timer_head = r;
    s->timer_n++;
    timer_arm(s);
}

static void timer_del(auth_server *s, auth_req *r)
{
    if (!r->on_timer) {
        return;
    }
    auth_req **head = r->in_due ? &s->due_head : &s->timer_head;
    if (r->tprev != NULL) {
        r->tprev->tnext = r->tnext;
    } else {
        *head = r->tnext;
    }
    if (r->tnext != NULL) {
        r->tnext->tprev = r->tprev;
    }
    r->tprev = NULL;
    r->tnext = NULL;
    if (!r->in_due) {
        s->timer_n--;
    }
    r->on_timer = false;
    r->in_due = false;
}

static auth_req *req_find(auth_conn *c, uint32_t id)
{
    for (auth_req *r = c->reqs; r != NULL; r = r->next) {
        if (r->id == id) {
            return r;
        }
    }
    return NULL;
}

static bool req_async(const auth_req *r)
{
    return r->state == REQ_WAIT_PASSDB || r->state == REQ_WAIT_WORKER;
}

/* Wipe and free; the request must be on no list. */
static void req_free(auth_req *r)
{
    if (r->mech_started) {
        sasl_mech_clear(&r->m);
    }
    explicit_bzero(r, sizeof(*r));
    free(r);
}

/* Take r off its connection. A request an async job still carries becomes
 * an orphan (freed when the answer arrives); any other is freed now. */
static void req_detach(auth_req *r)
{
    auth_conn *c = r->c;
    auth_server *s = c->srv;
    timer_del(s, r);
    list_del(&c->reqs, r);
    c->reqs_n--;
    r->c = NULL;
    if (req_async(r)) {
        list_add(&s->orphans, r);
    } else {
        req_free(r);
    }
}

/* ---- requests: outcomes ---------------------------------------------------- */

static void req_ok(auth_req *r)
{
    auth_conn *c = r->c;
    auth_server *s = c->srv;
    uint8_t line[1024];
    sl_slice user = {(const uint8_t *)r->user, strlen(r->user)};
    ptrdiff_t n = auth_parser_write_ok(r->id, user, NULL, 0, line, sizeof(line));
    SL_ASSERT(n > 0);
    conn_append(c, line, (size_t)n);
    if (r->has_key) {
        penalty_success(s->pen, r->key);
    }
    stat_result(s, r->mech, SL_AUTH_OK);
    req_log(r, "ok", NULL);
    req_detach(r);
    conn_flush(c);
}

/* Build FAIL; hold it for the failure delay unless now. detail goes to the
 * log only. A credential failure raises the client IP's penalty. */
static void req_fail_ex(auth_req *r, const char *code, const char *reason, bool now,
                        bool penalise, const char *detail)
{
    auth_conn *c = r->c;
    auth_server *s = c->srv;
    auth_reply_fail f = {.id = r->id,
                         .code = code,
                         .reason = {(const uint8_t *)reason, reason != NULL ? strlen(reason) : 0}};
    ptrdiff_t n = auth_parser_write_fail(&f, r->fail, sizeof(r->fail));
    SL_ASSERT(n > 0);
    r->fail_len = (size_t)n;
    uint64_t now_ms = sl_clock_ms();
    if (penalise && r->has_key && !r->no_penalty) {
        penalty_failure(s->pen, r->key, r->attempt_sum, now_ms);
    }
    stat_result(s, r->mech, SL_AUTH_FAIL);
    req_log(r, "failed", detail);
    if (r->mech_started) {
        sasl_mech_clear(&r->m);
        r->mech_started = false;
    }
    if (now || s->cfg->auth_failure_delay_ms == 0) {
        conn_append(c, r->fail, r->fail_len);
        req_detach(r);
        conn_flush(c);
        return;
    }
    r->state = REQ_HELD_FAIL;
    timer_add(r, now_ms + s->cfg->auth_failure_delay_ms);
}

static void req_fail_auth(auth_req *r, const char *detail)
{
    /* No reason, as Dovecot: Postfix then says "(reason unavailable)", and
     * nothing tells an unknown user from a wrong password. */
    req_fail_ex(r, NULL, NULL, false, true, detail);
}

/* The passdb cannot answer: drop the connection, so Postfix says 454. */
static void req_tempfail(auth_req *r, const char *detail)
{
    auth_conn *c = r->c;
    stat_result(c->srv, r->mech, SL_AUTH_TEMPFAIL);
    req_log(r, "tempfail", detail);
    sl_warn("auth(%u): closing the connection: the passdb is unavailable (the client answers "
            "454 4.7.0)", c->cuid);
    req_detach(r);
    conn_close(c, NULL);
}

/* ---- requests: passdb and verification ------------------------------------ */

/* SQL, through a resolver thread. */
static void req_lookup_sql(auth_req *r)
{
    auth_server *s = r->c->srv;
    resolver_request q = resolver_request_make(RESOLVER_PASSDB, (uint64_t)(uintptr_t)r, r->user);
    r->state = REQ_WAIT_PASSDB;
    if (resolver_submit(s->resolver, s->resolver_id, &q) != 0) {
        /* The resolver queue is full: as good as a backend that is down. */
        sl_warn("auth(%u/%u): passdb queue full", r->c->cuid, r->id);
        passdb_result down = {.status = USERDB_TEMPFAIL};
        req_passdb_answer(r, &down, false);
    }
}

/* Redis first when there is one (its answer comes to
 * auth_server_redis_pass_answer with the same token), else SQL. */
static void req_lookup_backend(auth_req *r)
{
    auth_server *s = r->c->srv;
    if (s->redis != NULL && userdb_redis_lookup_pass(s->redis, (uint64_t)(uintptr_t)r, r->user) == 0) {
        r->state = REQ_WAIT_PASSDB;
        return;
    }
    req_lookup_sql(r);
}

void auth_server_set_redis(auth_server *s, userdb_redis *r)
{
    s->redis = r;
}

void auth_server_redis_pass_answer(auth_server *s, uint64_t token, userdb_redis_status status,
                                   const passdb_result *result)
{
    auth_req *r = (auth_req *)(uintptr_t)token;
    SL_ASSERT(r != NULL && r->state == REQ_WAIT_PASSDB);
    if (r->c == NULL) {
        list_del(&s->orphans, r);
        req_free(r);
        return;
    }
    if (status != USERDB_REDIS_HIT) {
        req_lookup_sql(r);
        return;
    }
    sl_stat_add(&s->st->auth_redis_hits, 1);
    req_passdb_answer(r, result, true);
}

static void req_job_done(auth_req *r, pwverify_job *job);

/* Run a password job inline when it is fast, else hand it to a worker. */
static void req_run_job(auth_req *r, pwverify_job *job, bool slow)
{
    auth_server *s = r->c->srv;
    if (!slow) {
        pwverify_run(job);
        req_job_done(r, job);
        return;
    }
    job->token = (uint64_t)(uintptr_t)r;
    if (pwverify_submit(s->pw, job) != 0) {
        req_tempfail(r, "password workers busy");
        return;
    }
    r->state = REQ_WAIT_WORKER;
}

static void req_have_pass(auth_req *r)
{
    auth_server *s = r->c->srv;
    const sl_config *cfg = s->cfg;
    if (r->pass.status == USERDB_NOTFOUND) {
        req_fail_auth(r, "unknown user");
        return;
    }
    if (r->pass.status == USERDB_INACTIVE) {
        req_fail_auth(r, "user inactive");
        return;
    }
    pwverify_job job;
    memset(&job, 0, sizeof(job));
    snprintf(job.stored, sizeof(job.stored), "%s", r->pass.password);
    snprintf(job.scheme, sizeof(job.scheme), "%s", cfg->default_pass_scheme);
    snprintf(job.user, sizeof(job.user), "%s", r->user);
    bool slow;
    if (r->need == SASL_NEED_VERIFY_PLAIN) {
        job.op = PWVERIFY_PLAIN;
        SL_ASSERT(r->out.password.len <= sizeof(job.plain));
        memcpy(job.plain, r->out.password.ptr, r->out.password.len);
        job.plain_len = r->out.password.len;
        slow = pw_is_slow(job.stored, job.scheme);
    } else {
        job.op = PWVERIFY_CREDENTIALS;
        bool known = mech_cred_kind(r->out.cred_kind, &job.kind);
        SL_ASSERT(known);
        snprintf(job.realm, sizeof(job.realm), "%.*s", (int)r->out.realm.len,
                 (const char *)r->out.realm.ptr);
        slow = pw_credentials_is_slow(job.stored, job.scheme, job.kind);
    }
    req_run_job(r, &job, slow);
    explicit_bzero(&job, sizeof(job));
}

static void req_job_done(auth_req *r, pwverify_job *job)
{
    auth_server *s = r->c->srv;
    r->state = REQ_WAIT_CLIENT;
    if (job->status == PW_INTERNAL) {
        req_tempfail(r, "password check failed internally");
        return;
    }
    if (job->op == PWVERIFY_PLAIN) {
        if (job->status == PW_MISMATCH && r->from_cache && !r->requeried) {
            /* The password may have changed since it was cached (here or in
             * Redis): ask SQL, whose answer replaces both. */
            passdb_cache_remove(s->cache, r->user);
            r->requeried = true;
            r->from_cache = false;
            req_lookup_sql(r);
            return;
        }
        if (job->status == PW_UNSUPPORTED || job->status == PW_BAD_STORED) {
            sl_warn("auth(%u/%u): user <%s>: stored password: %s", r->c->cuid, r->id, r->log_user,
                    pw_status_name(job->status));
        }
        const char *detail = job->status == PW_MISMATCH ? "password mismatch" : "stored password unusable";
        sasl_status st = sasl_mech_verify_result(&r->m, job->status == PW_OK, &r->out);
        if (st == SASL_FAIL) {
            req_fail_auth(r, detail);
            return;
        }
        req_status(r, st);
        return;
    }
    if (job->status != PW_OK) {
        req_fail_auth(r, "stored password cannot serve this mechanism");
        return;
    }
    sasl_scram_cred scram;
    const void *cred = job->cred;
    size_t cred_len = job->cred_len;
    if (r->out.cred_kind == SASL_CRED_SCRAM_SHA1 || r->out.cred_kind == SASL_CRED_SCRAM_SHA256) {
        if (job->cred_len != sizeof(scram)) {
            req_fail_auth(r, "stored SCRAM credential unusable");
            return;
        }
        memcpy(&scram, job->cred, sizeof(scram));
        cred = &scram;
        cred_len = sizeof(scram);
    }
    sasl_status st = sasl_mech_set_credentials(&r->m, r->out.cred_kind, cred, cred_len, &r->out);
    explicit_bzero(&scram, sizeof(scram));
    req_status(r, st);
}

static void req_lookup(auth_req *r)
{
    auth_server *s = r->c->srv;
    if (passdb_cache_get(s->cache, r->user, sl_clock_ms(), &r->pass) == PASSDB_CACHE_HIT) {
        sl_stat_add(&s->st->auth_cache_hits, 1);
        r->from_cache = true;
        req_have_pass(r);
        return;
    }
    req_lookup_backend(r);
}

/* from_cache: the answer came from Redis, which may be older than SQL. */
static void req_passdb_answer(auth_req *r, const passdb_result *pass, bool from_cache)
{
    auth_server *s = r->c->srv;
    r->state = REQ_WAIT_CLIENT;
    if (pass->status == USERDB_TEMPFAIL) {
        if (s->cfg->auth_cache_serve_stale &&
            passdb_cache_get(s->cache, r->user, sl_clock_ms(), &r->pass) != PASSDB_CACHE_MISS) {
            sl_warn("auth(%u/%u): passdb unavailable: using the expired cache entry of <%s>",
                    r->c->cuid, r->id, r->log_user);
            sl_stat_add(&s->st->auth_cache_hits, 1);
            r->from_cache = false; /* no second lookup: the backend is down */
            r->requeried = true;
            req_have_pass(r);
            return;
        }
        req_tempfail(r, "passdb unavailable");
        return;
    }
    r->pass = *pass;
    r->from_cache = from_cache;
    passdb_cache_put(s->cache, r->user, pass, sl_clock_ms());
    req_have_pass(r);
}

/* ---- requests: driving the mechanism -------------------------------------- */

static void req_set_user(auth_req *r, sl_slice authcid)
{
    text_copy(authcid, r->log_user, sizeof(r->log_user));
    size_t n = authcid.len < sizeof(r->user) - 1 ? authcid.len : sizeof(r->user) - 1;
    for (size_t i = 0; i < n; i++) {
        r->user[i] = (char)tolower(authcid.ptr[i]);
    }
    r->user[n] = '\0';
}

static bool user_usable(sl_slice authcid)
{
    if (authcid.len == 0 || authcid.len >= USERDB_ADDR_BYTES_MAX) {
        return false;
    }
    return memchr(authcid.ptr, '\0', authcid.len) == NULL;
}

static void req_status(auth_req *r, sasl_status st)
{
    auth_conn *c = r->c;
    switch (st) {
    case SASL_CHALLENGE: {
        size_t cap = 32 + SL_BASE64_ENCODED_LEN(r->out.data.len);
        uint8_t *line = sl_malloc(cap);
        ptrdiff_t n = auth_parser_write_cont(r->id, r->out.data.ptr, r->out.data.len, line, cap);
        SL_ASSERT(n > 0);
        conn_append(c, line, (size_t)n);
        free(line);
        r->state = REQ_WAIT_CLIENT;
        conn_flush(c);
        return;
    }
    case SASL_NEED_VERIFY_PLAIN:
    case SASL_NEED_CREDENTIALS:
        req_set_user(r, r->out.authcid);
        if (!user_usable(r->out.authcid)) {
            req_fail_auth(r, "unusable user name");
            return;
        }
        r->need = st;
        if (st == SASL_NEED_VERIFY_PLAIN) {
            sl_slice user = {(const uint8_t *)r->user, strlen(r->user)};
            r->attempt_sum = penalty_attempt_sum(c->srv->pen, user, r->out.password);
        }
        req_lookup(r);
        return;
    case SASL_OK:
        req_set_user(r, r->out.authcid);
        req_ok(r);
        return;
    case SASL_FAIL:
        if (r->out.authcid.len > 0) {
            text_copy(r->out.authcid, r->log_user, sizeof(r->log_user));
        }
        req_fail_auth(r, r->out.reason == SASL_FAIL_CREDENTIALS ? "wrong response"
                         : r->out.reason == SASL_FAIL_SYNTAX ? "malformed SASL message"
                                                              : "mechanism refused");
        return;
    }
    SL_ASSERT(false);
}

static void req_start(auth_req *r)
{
    auth_server *s = r->c->srv;
    const sl_config *cfg = s->cfg;
    uint8_t random[SASL_RANDOM_BYTES];
    if (getrandom(random, sizeof(random), 0) != (ssize_t)sizeof(random)) {
        req_tempfail(r, "no random bytes");
        return;
    }
    sasl_params params = {
        .options = SASL_OPT_FINAL_AS_CHALLENGE,
        .hostname = strlen(cfg->hostname) <= SASL_HOSTNAME_BYTES_MAX ? cfg->hostname : "localhost",
        .realm = strlen(cfg->auth_realm) <= SASL_REALM_BYTES_MAX ? cfg->auth_realm : "",
        .digest_service = r->service,
        .timestamp_s = (uint64_t)time(NULL),
    };
    sasl_mech_init(&r->m, (sasl_mech_id)r->mech, &params, random, sizeof(random));
    explicit_bzero(random, sizeof(random));
    r->mech_started = true;
    sasl_status st = sasl_mech_step(&r->m, r->resp, r->resp_len, &r->out);
    explicit_bzero(r->resp, r->resp_len);
    r->resp_len = 0;
    req_status(r, st);
}

/* ---- protocol ----------------------------------------------------------------- */

static void conn_violation(auth_conn *c, const char *what)
{
    sl_warn("auth(%u): client %s: %s: disconnecting", c->cuid, c->ip[0] ? c->ip : "local", what);
    conn_close(c, NULL);
}

static void handle_auth(auth_conn *c, const auth_event *ev)
{
    auth_server *s = c->srv;
    if (!c->got_cpid) {
        conn_violation(c, "sent AUTH before CPID");
        return;
    }
    if (req_find(c, ev->id) != NULL) {
        conn_violation(c, "sent a duplicate request id");
        return;
    }
    const sasl_mech_info *mi = sasl_mech_lookup(ev->mech);
    auth_req *r = sl_calloc(1, sizeof(*r));
    r->c = c;
    r->id = ev->id;
    r->mech = mi != NULL && s->offered[mi->id] ? (int)mi->id : -1;
    r->state = REQ_WAIT_CLIENT;
    r->no_penalty = ev->auth.no_penalty;
    text_copy(ev->auth.lip, r->lip, sizeof(r->lip));
    text_copy(ev->auth.rip, r->rip, sizeof(r->rip));
    text_copy(ev->auth.service, r->service, sizeof(r->service));
    r->has_key = r->rip[0] != '\0' && penalty_key_from_text(r->rip, r->key);
    list_add(&c->reqs, r);
    c->reqs_n++;
    if (c->reqs_n > s->cfg->auth_requests_per_conn_max) {
        req_fail_ex(r, AUTH_FAIL_CODE_TEMP_FAIL, "Too many concurrent requests", true, false,
                    "over auth_requests_per_conn_max");
        return;
    }
    if (r->mech < 0) {
        req_fail_ex(r, AUTH_FAIL_CODE_MECH_INVALID, "Unsupported authentication mechanism", true,
                    false, "mechanism not offered");
        return;
    }
    if (ev->auth.service.len > SASL_SERVICE_BYTES_MAX) {
        req_fail_ex(r, NULL, NULL, true, false, "service name too long");
        return;
    }
    if (ev->auth.resp_kind == AUTH_RESP_DATA) {
        ptrdiff_t n = sl_base64_decode(ev->auth.resp.ptr, ev->auth.resp.len, r->resp,
                                       sizeof(r->resp));
        if (n < 0) {
            req_fail_ex(r, AUTH_FAIL_CODE_INVALID_BASE64,
                        "Invalid base64 data in initial response", false, false,
                        n == SL_BASE64_NO_ROOM ? "initial response too long" : "invalid base64");
            return;
        }
        r->resp_len = (size_t)n;
    }
    if (r->has_key && !r->no_penalty) {
        uint64_t now = sl_clock_ms();
        uint64_t delay = penalty_delay_ms(s->pen, r->key, now);
        if (delay > 0) {
            sl_stat_add(&s->st->auth_penalties, 1);
            sl_debug("auth(%u/%u): rip %s penalised: held %llu ms (level %u)", c->cuid, r->id,
                     r->rip, (unsigned long long)delay, penalty_level(s->pen, r->key, now));
            r->state = REQ_HELD_PENALTY;
            timer_add(r, now + delay);
            return;
        }
    }
    req_start(r);
}

static void handle_cont(auth_conn *c, const auth_event *ev)
{
    auth_req *r = req_find(c, ev->id);
    if (r == NULL) {
        /* As Dovecot answers a CONT for a request it no longer has. */
        static const char timed_out[] = "Authentication request timed out";
        uint8_t line[256];
        auth_reply_fail f = {.id = ev->id,
                             .reason = {(const uint8_t *)timed_out, sizeof(timed_out) - 1}};
        ptrdiff_t n = auth_parser_write_fail(&f, line, sizeof(line));
        SL_ASSERT(n > 0);
        conn_append(c, line, (size_t)n);
        conn_flush(c);
        return;
    }
    if (r->state == REQ_HELD_FAIL) {
        return; /* its FAIL is on the way */
    }
    if (r->state != REQ_WAIT_CLIENT || !r->mech_started) {
        conn_violation(c, "sent CONT while no continuation was asked for");
        return;
    }
    size_t cap = SL_BASE64_DECODED_LEN_MAX(ev->data.len) + 1;
    uint8_t *buf = sl_malloc(cap);
    ptrdiff_t n = sl_base64_decode(ev->data.ptr, ev->data.len, buf, cap);
    if (n < 0) {
        free(buf);
        req_fail_ex(r, AUTH_FAIL_CODE_INVALID_BASE64, "Invalid base64 data in continued response",
                    false, false, "invalid base64");
        return;
    }
    sasl_status st = sasl_mech_step(&r->m, buf, (size_t)n, &r->out);
    explicit_bzero(buf, cap);
    free(buf);
    req_status(r, st);
}

static void handle_cancel(auth_conn *c, const auth_event *ev)
{
    auth_req *r = req_find(c, ev->id);
    if (r == NULL) {
        return;
    }
    if (r->state == REQ_HELD_FAIL) {
        /* Already counted and logged as a failure; the FAIL is dropped. */
        req_detach(r);
        return;
    }
    stat_result(c->srv, r->mech, SL_AUTH_CANCEL);
    req_log(r, "cancelled", NULL);
    req_detach(r);
}

static void conn_event(auth_conn *c, const auth_event *ev)
{
    if (!c->got_version) {
        if (ev->cmd != AUTH_CMD_VERSION) {
            conn_violation(c, "did not send VERSION first");
            return;
        }
        if (ev->version_major != AUTH_PROTOCOL_MAJOR) {
            conn_violation(c, "speaks another protocol major version");
            return;
        }
        c->got_version = true;
        return;
    }
    switch (ev->cmd) {
    case AUTH_CMD_CPID:
        if (c->got_cpid) {
            conn_violation(c, "sent CPID twice");
            return;
        }
        c->got_cpid = true;
        sl_debug("auth(%u): client pid %u", c->cuid, ev->cpid);
        return;
    case AUTH_CMD_AUTH:
        handle_auth(c, ev);
        return;
    case AUTH_CMD_CONT:
        handle_cont(c, ev);
        return;
    case AUTH_CMD_CANCEL:
        handle_cancel(c, ev);
        return;
    case AUTH_CMD_VERSION:
        conn_violation(c, "sent VERSION twice");
        return;
    case AUTH_CMD_NONE:
    case AUTH_CMD_UNKNOWN:
        break;
    }
    conn_violation(c, "sent an unknown command");
}

static void conn_input(auth_conn *c, const uint8_t *p, size_t len)
{
    size_t off = 0;
    while (off < len && !c->closing) {
        size_t used = 0;
        auth_event ev;
        auth_parse_rc rc = auth_parse(&c->parser, p + off, len - off, &used, &ev);
        off += used;
        if (rc == AUTH_PARSE_NEED_MORE) {
            break;
        }
        if (rc == AUTH_PARSE_ERROR) {
            conn_violation(c, auth_parser_error_text(ev.error));
            break;
        }
        conn_event(c, &ev);
    }
}

/* ---- connections -------------------------------------------------------------- */

static void on_recv(sl_op *op, int res, uint32_t flags);

static void conn_arm_recv(auth_conn *c)
{
    if (c->recv_armed || c->closing) {
        return;
    }
    c->op_recv.fn = on_recv;
    struct io_uring_sqe *sqe = sl_ring_sqe(c->srv->ring, &c->op_recv);
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = (uint16_t)c->srv->bufs.bgid;
    c->recv_armed = true;
    c->recv_cancelled = false;
    c->starved = false;
    c->inflight++;
}

static void conn_free(auth_conn *c)
{
    auth_server *s = c->srv;
    SL_ASSERT(c->inflight == 0);
    SL_ASSERT(c->reqs == NULL);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        s->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    s->conns_n--;
    sl_stat_sub(&s->st->auth_conns_open, 1);
    free(c->out);
    free(c->sending);
    free(c);
}

static void on_close(sl_op *op, int res, uint32_t flags)
{
    auth_conn *c = SL_CONTAINER_OF(op, auth_conn, op_close);
    c->inflight--;
    conn_free(c);
}

/* Start closing (once): drop the requests, stop receiving; the close is
 * submitted once the kernel holds nothing else of the connection. */
static void conn_close(auth_conn *c, const char *why)
{
    if (!c->closing) {
        c->closing = true;
        if (why != NULL) {
            sl_info("auth(%u): closing: %s", c->cuid, why);
        }
        while (c->reqs != NULL) {
            auth_req *r = c->reqs;
            if (r->state != REQ_HELD_FAIL) {
                stat_result(c->srv, r->mech, SL_AUTH_CANCEL);
                req_log(r, "aborted", "connection closed");
            }
            req_detach(r);
        }
        auth_parser_clear(&c->parser);
        if (c->recv_armed && !c->recv_cancelled) {
            sl_ring_cancel(c->srv->ring, &c->op_recv);
            c->recv_cancelled = true;
        }
    }
    if (c->inflight == 0 && !c->close_submitted) {
        c->close_submitted = true;
        c->op_close.fn = on_close;
        c->inflight++;
        io_uring_prep_close(sl_ring_sqe(c->srv->ring, &c->op_close), c->fd);
    }
}

static void on_recv(sl_op *op, int res, uint32_t flags)
{
    auth_conn *c = SL_CONTAINER_OF(op, auth_conn, op_recv);
    auth_server *s = c->srv;
    if (!(flags & IORING_CQE_F_MORE)) {
        c->recv_armed = false;
        c->inflight--;
    }
    if (res > 0) {
        SL_ASSERT(flags & IORING_CQE_F_BUFFER);
        uint16_t bid = (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT);
        uint8_t *p = sl_bufring_take(&s->bufs, bid);
        if (!c->closing) {
            conn_input(c, p, (size_t)res);
        }
        explicit_bzero(p, (size_t)res);
        sl_bufring_unpin(&s->bufs, bid);
    } else if (res == -ENOBUFS) {
        /* Back-pressure: re-armed after this dispatch hands buffers back. */
        if (!c->recv_armed && !c->closing) {
            c->starved = true;
            s->starved_any = true;
        }
    } else if (res != -ECANCELED || !c->closing) {
        conn_close(c, NULL); /* EOF or a receive error */
    }
    if (c->closing) {
        conn_close(c, NULL);
        return;
    }
    if (!c->recv_armed && !c->starved) {
        conn_arm_recv(c);
    }
}

static void conn_send_handshake(auth_conn *c)
{
    auth_server *s = c->srv;
    auth_reply_handshake h = {.mechs = s->mechs,
                              .mechs_len = s->mechs_n,
                              .spid = (uint32_t)getpid(),
                              .cuid = c->cuid};
    if (getrandom(h.cookie, sizeof(h.cookie), 0) != (ssize_t)sizeof(h.cookie)) {
        conn_close(c, "no random bytes for the cookie");
        return;
    }
    uint8_t buf[2048];
    ptrdiff_t n = auth_parser_write_handshake(&h, buf, sizeof(buf));
    SL_ASSERT(n > 0);
    conn_append(c, buf, (size_t)n);
    conn_flush(c);
}

/* Refusals by the allowlist and by the connection limit share one log line. */
static void refused(auth_server *s, const char *ip)
{
    sl_stat_add(&s->st->auth_conns_refused, 1);
    sl_warn("auth: refused connection from %s: %s", ip,
            s->conns_n >= AUTH_SESSION_CONNS_MAX ? "connection limit" : "not in auth_allow");
}

static void on_refused(sl_acceptor *a, int fd, const char *ip)
{
    (void)fd;
    refused(a->cfg.ctx, ip);
}

static void on_conn(sl_acceptor *a, int fd, const struct sockaddr *sa, const char *ip)
{
    auth_server *s = a->cfg.ctx;
    if (s->conns_n >= AUTH_SESSION_CONNS_MAX) {
        refused(s, ip);
        close(fd);
        return;
    }
    if (sa->sa_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    auth_conn *c = sl_calloc(1, sizeof(*c));
    c->srv = s;
    c->fd = fd;
    c->cuid = ++s->next_cuid;
    snprintf(c->ip, sizeof(c->ip), "%s", ip);
    auth_parser_limits lim = {.line_bytes_max = AUTH_PARSER_LINE_BYTES_DEFAULT};
    auth_parser_init(&c->parser, &lim);
    c->next = s->conns;
    if (s->conns != NULL) {
        s->conns->prev = c;
    }
    s->conns = c;
    s->conns_n++;
    sl_stat_add(&s->st->auth_conns_total, 1);
    sl_stat_add(&s->st->auth_conns_open, 1);
    sl_debug("auth(%u): connect from %s", c->cuid, ip[0] ? ip : "local");
    conn_send_handshake(c);
    conn_arm_recv(c);
}

void auth_server_listen(auth_server *s, int fd)
{
    SL_ASSERT(s->listeners_n < AUTH_LISTENERS_MAX);
    sl_acceptor_cfg cfg = {
        .allow_ref = &s->allow, .on_conn = on_conn, .on_refused = on_refused, .ctx = s};
    sl_acceptor_start(&s->listeners[s->listeners_n++], s->ring, fd, &cfg);
}

/* ---- timer, resolver and worker completions -------------------------------------- */

static void on_timer(sl_op *op, int res, uint32_t flags);

static void timer_arm(auth_server *s)
{
    if (s->timer_armed || s->timer_n == 0) {
        return;
    }
    s->timer_ts.tv_sec = 0;
    s->timer_ts.tv_nsec = (long long)AUTH_TICK_MS * 1000000;
    s->op_timer.fn = on_timer;
    io_uring_prep_timeout(sl_ring_sqe(s->ring, &s->op_timer), &s->timer_ts, 0, 0);
    s->timer_armed = true;
}

/* Release what is due: held AUTHs start, held FAILs go out together. */
static void on_timer(sl_op *op, int res, uint32_t flags)
{
    auth_server *s = SL_CONTAINER_OF(op, auth_server, op_timer);
    s->timer_armed = false;
    uint64_t now = sl_clock_ms();
    /* Move what is due to the due list first: releasing one request may
     * close its connection, which takes that connection's other requests
     * off whichever list they are on. */
    for (auth_req *r = s->timer_head, *next; r != NULL; r = next) {
        next = r->tnext;
        if (r->due_ms <= now) {
            timer_del(s, r);
            r->on_timer = true;
            r->in_due = true;
            r->tprev = NULL;
            r->tnext = s->due_head;
            if (s->due_head != NULL) {
                s->due_head->tprev = r;
            }
            s->due_head = r;
        }
    }
    while (s->due_head != NULL) {
        auth_req *r = s->due_head;
        timer_del(s, r);
        auth_conn *c = r->c;
        if (r->state == REQ_HELD_FAIL) {
            conn_append(c, r->fail, r->fail_len);
            req_detach(r);
            conn_flush(c);
        } else {
            SL_ASSERT(r->state == REQ_HELD_PENALTY);
            r->state = REQ_WAIT_CLIENT;
            req_start(r);
        }
    }
    if (!s->stopping) {
        timer_arm(s);
    }
}

static void arm_poll(auth_server *s, sl_op *op, int fd)
{
    io_uring_prep_poll_multishot(sl_ring_sqe(s->ring, op), fd, POLLIN);
}

static void drain_eventfd(int fd)
{
    uint64_t v;
    ssize_t n = read(fd, &v, sizeof(v));
    (void)n;
}

static void on_resolver(sl_op *op, int res, uint32_t flags)
{
    auth_server *s = SL_CONTAINER_OF(op, auth_server, op_resolver);
    int fd = resolver_core_eventfd(s->resolver, s->resolver_id);
    if (!(flags & IORING_CQE_F_MORE)) {
        s->resolver_armed = false;
        if (!s->stopping && res != -ECANCELED) {
            arm_poll(s, &s->op_resolver, fd);
            s->resolver_armed = true;
        }
    }
    drain_eventfd(fd);
    size_t n;
    while ((n = resolver_drain(s->resolver, s->resolver_id, s->replies, AUTH_DRAIN_BATCH)) > 0) {
        for (size_t i = 0; i < n; i++) {
            auth_req *r = (auth_req *)(uintptr_t)s->replies[i].token;
            if (s->replies[i].kind != RESOLVER_PASSDB || r == NULL) {
                continue;
            }
            SL_ASSERT(r->state == REQ_WAIT_PASSDB);
            if (r->c == NULL) {
                list_del(&s->orphans, r);
                req_free(r);
            } else {
                req_passdb_answer(r, &s->replies[i].pass, false);
            }
        }
        explicit_bzero(s->replies, n * sizeof(s->replies[0]));
    }
}

static void on_pwverify(sl_op *op, int res, uint32_t flags)
{
    auth_server *s = SL_CONTAINER_OF(op, auth_server, op_pw);
    int fd = pwverify_eventfd(s->pw);
    if (!(flags & IORING_CQE_F_MORE)) {
        s->pw_armed = false;
        if (!s->stopping && res != -ECANCELED) {
            arm_poll(s, &s->op_pw, fd);
            s->pw_armed = true;
        }
    }
    drain_eventfd(fd);
    size_t n;
    while ((n = pwverify_drain(s->pw, s->jobs, AUTH_DRAIN_BATCH)) > 0) {
        for (size_t i = 0; i < n; i++) {
            auth_req *r = (auth_req *)(uintptr_t)s->jobs[i].token;
            SL_ASSERT(r->state == REQ_WAIT_WORKER);
            if (r->c == NULL) {
                list_del(&s->orphans, r);
                req_free(r);
            } else {
                req_job_done(r, &s->jobs[i]);
            }
        }
        explicit_bzero(s->jobs, n * sizeof(s->jobs[0]));
    }
}

/* ---- server ------------------------------------------------------------------------ */

static void server_make_cache(auth_server *s, const sl_config *cfg)
{
    s->cache = passdb_cache_new(cfg->auth_cache_size, cfg->auth_cache_ttl_ms,
                                cfg->auth_cache_negative_ttl_ms);
}

static void server_make_penalty(auth_server *s, const sl_config *cfg)
{
    uint64_t max = cfg->auth_penalty_max_ms > cfg->auth_failure_delay_ms
                       ? cfg->auth_penalty_max_ms - cfg->auth_failure_delay_ms
                       : 0;
    penalty_config pc = {.entries_max = AUTH_PENALTY_ENTRIES,
                         .init_ms = max < AUTH_PENALTY_INIT_MS ? max : AUTH_PENALTY_INIT_MS,
                         .max_ms = max,
                         .expire_ms = AUTH_PENALTY_EXPIRE_MS};
    if (getrandom(&pc.sum_secret, sizeof(pc.sum_secret), 0) != (ssize_t)sizeof(pc.sum_secret)) {
        pc.sum_secret = sl_clock_us() ^ (uint64_t)getpid() << 32; /* only keys the sums */
    }
    s->pen = penalty_new(&pc);
}

auth_server *auth_server_new(const auth_server_deps *deps, char *err, size_t err_len)
{
    auth_server *s = sl_calloc(1, sizeof(*s));
    s->ring = deps->ring;
    s->resolver = deps->resolver;
    s->resolver_id = deps->resolver_core_id;
    s->cfg = deps->cfg;
    s->allow = deps->allow;
    s->st = deps->stats;
    if (mechs_configure(s, deps->cfg, err, err_len) != 0) {
        free(s);
        return NULL;
    }
    int rc = sl_bufring_init(&s->bufs, s->ring, AUTH_BUF_GROUP, AUTH_BUF_COUNT, AUTH_BUF_BYTES);
    if (rc != 0) {
        snprintf(err, err_len, "auth: provided buffer ring: %s", strerror(-rc));
        free(s);
        return NULL;
    }
    s->bufs_ok = true;
    s->pw = pwverify_new(deps->cfg->auth_worker_threads, AUTH_PWVERIFY_QUEUE);
    server_make_cache(s, deps->cfg);
    server_make_penalty(s, deps->cfg);
    s->op_resolver.fn = on_resolver;
    s->op_pw.fn = on_pwverify;
    arm_poll(s, &s->op_resolver, resolver_core_eventfd(s->resolver, s->resolver_id));
    s->resolver_armed = true;
    arm_poll(s, &s->op_pw, pwverify_eventfd(s->pw));
    s->pw_armed = true;
    return s;
}

void auth_server_reload(auth_server *s, const sl_config *cfg, const sl_allow *allow)
{
    char err[256];
    if (mechs_configure(s, cfg, err, sizeof(err)) != 0) {
        sl_error("auth: reload: %s: keeping the mechanisms offered before", err);
    }
    /* The penalty table survives a reload unless its delays change: a
     * SIGHUP must not wipe the slate of a client that is guessing. */
    bool same_delays = cfg->auth_failure_delay_ms == s->cfg->auth_failure_delay_ms &&
                       cfg->auth_penalty_max_ms == s->cfg->auth_penalty_max_ms;
    if (!same_delays) {
        penalty_free(&s->pen);
        server_make_penalty(s, cfg);
    }
    s->cfg = cfg;
    s->allow = allow;
    passdb_cache_free(&s->cache);
    server_make_cache(s, cfg);
}

void auth_server_after_dispatch(auth_server *s)
{
    sl_bufring_publish(&s->bufs);
    if (!s->starved_any) {
        return;
    }
    s->starved_any = false;
    for (auth_conn *c = s->conns; c != NULL; c = c->next) {
        if (c->starved && !c->closing) {
            conn_arm_recv(c);
        }
    }
}

void auth_server_shutdown(auth_server *s)
{
    if (s->stopping) {
        return;
    }
    s->stopping = true;
    for (size_t i = 0; i < s->listeners_n; i++) {
        sl_acceptor_stop(&s->listeners[i]);
    }
    for (auth_conn *c = s->conns, *next; c != NULL; c = next) {
        next = c->next;
        conn_close(c, NULL);
    }
    if (s->resolver_armed) {
        sl_ring_cancel(s->ring, &s->op_resolver);
    }
    if (s->pw_armed) {
        sl_ring_cancel(s->ring, &s->op_pw);
    }
}

bool auth_server_idle(const auth_server *s)
{
    if (s->conns_n > 0 || s->timer_armed || s->resolver_armed || s->pw_armed) {
        return false;
    }
    for (size_t i = 0; i < s->listeners_n; i++) {
        if (sl_acceptor_armed(&s->listeners[i])) {
            return false;
        }
    }
    return true;
}

void auth_server_free(auth_server **sp)
{
    auth_server *s = *sp;
    if (s == NULL) {
        return;
    }
    SL_ASSERT(s->conns_n == 0);
    pwverify_free(&s->pw);
    while (s->orphans != NULL) {
        auth_req *r = s->orphans;
        list_del(&s->orphans, r);
        req_free(r);
    }
    for (size_t i = 0; i < s->listeners_n; i++) {
        close(s->listeners[i].fd);
    }
    passdb_cache_free(&s->cache);
    penalty_free(&s->pen);
    if (s->bufs_ok) {
        sl_bufring_deinit(&s->bufs);
    }
    explicit_bzero(s->replies, sizeof(s->replies));
    sl_free(sp);
}

/* ---- listeners ---------------------------------------------------------------------- */

int auth_server_open_listeners(const sl_config *cfg, int *fds_out, size_t max, char *err,
                               size_t err_len)
{
    sl_listen_spec specs[AUTH_LISTENERS_MAX];
    char perr[256];
    int n = sl_net_parse_listen(cfg->auth_listen, specs, AUTH_LISTENERS_MAX, perr, sizeof(perr));
    if (n < 0) {
        snprintf(err, err_len, "auth_listen: %s", perr);
        return -1;
    }
    if ((size_t)n > max) {
        snprintf(err, err_len, "auth_listen: at most %zu addresses", max);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int fd = sl_net_listen(&specs[i], cfg->auth_unix_mode, 128);
        if (fd < 0) {
            snprintf(err, err_len, "cannot listen on %s%s%s for auth: %s", specs[i].addr,
                     specs[i].is_unix ? "" : ":", specs[i].port, strerror(-fd));
            for (int j = 0; j < i; j++) {
                close(fds_out[j]);
            }
            return -1;
        }
        fds_out[i] = fd;
        if (specs[i].is_unix && (cfg->auth_unix_owner[0] != '\0' || cfg->auth_unix_group[0] != '\0')) {
            uid_t uid = (uid_t)-1;
            gid_t gid = (gid_t)-1;
            struct passwd *pw = cfg->auth_unix_owner[0] ? getpwnam(cfg->auth_unix_owner) : NULL;
            struct group *gr = cfg->auth_unix_group[0] ? getgrnam(cfg->auth_unix_group) : NULL;
            if ((cfg->auth_unix_owner[0] && pw == NULL) || (cfg->auth_unix_group[0] && gr == NULL)) {
                snprintf(err, err_len, "auth_unix_owner/auth_unix_group: no such user or group");
                for (int j = 0; j <= i; j++) {
                    close(fds_out[j]);
                }
                return -1;
            }
            uid = pw != NULL ? pw->pw_uid : uid;
            gid = gr != NULL ? gr->gr_gid : gid;
            if (chown(specs[i].addr, uid, gid) != 0) {
                snprintf(err, err_len, "chown %s: %s", specs[i].addr, strerror(errno));
                for (int j = 0; j <= i; j++) {
                    close(fds_out[j]);
                }
                return -1;
            }
        }
        sl_info("auth on %s%s%s", specs[i].is_unix ? "unix:" : specs[i].addr,
                specs[i].is_unix ? specs[i].addr : ":", specs[i].port);
    }
    return n;
}
