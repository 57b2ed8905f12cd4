/* tests/integration/redis_client_driver.c: drives auth/userdb_redis.c on a
 * real sl_ring against a real redis-server, the way a delivery core does
 * (run the ring, flush once per turn, tick), and prints one ok/FAIL line per
 * check for test_redis_client.sh.
 *
 * usage: redis_client_driver PORT UNIX_SOCKET CTL_DIR REDIS_PID
 *
 * Steps that need the script (restarting redis, running sluice-cache) are
 * requested by printing "wait NAME" and waiting, ring still running, for the
 * file CTL_DIR/go-NAME; for a restart it holds the new redis pid. The driver
 * itself stops, continues and kills redis by pid. */
#include "auth/userdb_redis.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/ring.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DRV_TIMEOUT_MS 300
#define DRV_TICK_MS 1000
#define DRV_PIPELINE_N 1000
#define DRV_POSITIVE_TTL_S 3600
#define DRV_NEGATIVE_TTL_S 60
#define DRV_STEP_WAIT_MS 60000

typedef struct drv_answer {
    uint64_t token;
    userdb_redis_status status;
    userdb_result result;
    uint64_t latency_us;
    uint64_t at_ms;
} drv_answer;

typedef struct drv {
    sl_ring ring;
    userdb_redis *r;
    drv_answer *answers;
    size_t answers_n;
    size_t answers_cap;
    unsigned gen_changes;
    uint64_t next_tick_ms;
    int checks;
    int fails;
    const char *ctl_dir;
    int port;
    const char *sock;
    redisContext *admin;
} drv;

static pid_t drv_redis_pid;
static bool drv_redis_stopped;

/* ---- reporting ---- */

static void drv_ok(drv *d, const char *what)
{
    d->checks++;
    printf("ok   - %s\n", what);
}

__attribute__((format(printf, 4, 5))) static void drv_check(drv *d, bool cond, const char *what,
                                                            const char *fmt, ...)
{
    if (cond) {
        drv_ok(d, what);
        return;
    }
    d->checks++;
    d->fails++;
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    printf("FAIL - %s\n       %s\n", what, detail);
}

static void drv_uint(drv *d, const char *what, uint64_t got, uint64_t want)
{
    drv_check(d, got == want, what, "got: %llu  want: %llu", (unsigned long long)got,
              (unsigned long long)want);
}

static const char *drv_status_word(userdb_redis_status st)
{
    switch (st) {
    case USERDB_REDIS_HIT:
        return "HIT";
    case USERDB_REDIS_MISS:
        return "MISS";
    case USERDB_REDIS_ERROR:
        return "ERROR";
    }
    return "?";
}

/* ---- the core's loop ---- */

static void drv_on_lookup(void *ctx, uint64_t token, userdb_redis_status st,
                          const userdb_result *res, uint64_t latency_us)
{
    drv *d = ctx;
    if (d->answers_n == d->answers_cap) {
        d->answers_cap = d->answers_cap == 0 ? 256 : d->answers_cap * 2;
        d->answers = realloc(d->answers, d->answers_cap * sizeof(*d->answers));
        if (d->answers == NULL) {
            abort();
        }
    }
    drv_answer *a = &d->answers[d->answers_n++];
    memset(a, 0, sizeof(*a));
    a->token = token;
    a->status = st;
    a->latency_us = latency_us;
    a->at_ms = sl_clock_ms();
    if (res != NULL) {
        a->result = *res;
    }
}

static void drv_on_gen(void *ctx)
{
    drv *d = ctx;
    d->gen_changes++;
}

/* One event-loop turn, as core/main.c runs it. */
static void drv_turn(drv *d, userdb_redis *r, unsigned wait_ms)
{
    int rc = sl_ring_run_once(&d->ring, wait_ms);
    if (rc < 0) {
        fprintf(stderr, "sl_ring_run_once: %s\n", strerror(-rc));
        exit(2);
    }
    if (r != NULL) {
        userdb_redis_flush(r);
        uint64_t now = sl_clock_ms();
        if (now >= d->next_tick_ms) {
            userdb_redis_tick(r, now);
            d->next_tick_ms = now + DRV_TICK_MS;
        }
    }
}

static bool drv_wait_answers(drv *d, size_t n, uint64_t max_ms)
{
    uint64_t end = sl_clock_ms() + max_ms;
    while (d->answers_n < n && sl_clock_ms() < end) {
        drv_turn(d, d->r, 10);
    }
    return d->answers_n >= n;
}

static bool drv_wait_connected(drv *d, userdb_redis *r, uint64_t max_ms)
{
    uint64_t end = sl_clock_ms() + max_ms;
    while (!userdb_redis_connected(r) && sl_clock_ms() < end) {
        drv_turn(d, r, 10);
    }
    return userdb_redis_connected(r);
}

static void drv_spin(drv *d, userdb_redis *r, uint64_t ms)
{
    uint64_t end = sl_clock_ms() + ms;
    while (sl_clock_ms() < end) {
        drv_turn(d, r, 10);
    }
}

/* Ask the script for step name; returns the go file's first number (or 0). */
static long drv_step(drv *d, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/go-%s", d->ctl_dir, name);
    printf("wait %s\n", name);
    uint64_t end = sl_clock_ms() + DRV_STEP_WAIT_MS;
    while (access(path, F_OK) != 0) {
        if (sl_clock_ms() > end) {
            printf("FAIL - the script answers step %s\n", name);
            exit(1);
        }
        drv_turn(d, d->r, 20);
    }
    long v = 0;
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        if (fscanf(f, "%ld", &v) != 1) {
            v = 0;
        }
        fclose(f);
    }
    return v;
}

static void drv_cont_redis(void)
{
    if (drv_redis_stopped && drv_redis_pid > 0) {
        kill(drv_redis_pid, SIGCONT);
        drv_redis_stopped = false;
    }
}

/* ---- direct access to redis, to seed and inspect ---- */

static redisReply *drv_admin(drv *d, const char *fmt, ...)
{
    if (d->admin == NULL || d->admin->err != 0) {
        if (d->admin != NULL) {
            redisFree(d->admin);
        }
        struct timeval tv = {2, 0};
        d->admin = redisConnectWithTimeout("127.0.0.1", d->port, tv);
        if (d->admin == NULL || d->admin->err != 0) {
            fprintf(stderr, "admin connect failed\n");
            exit(2);
        }
        redisSetTimeout(d->admin, tv);
    }
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(d->admin, fmt, ap);
    va_end(ap);
    if (r == NULL) {
        fprintf(stderr, "admin command failed: %s\n", d->admin->errstr);
        exit(2);
    }
    return r;
}

static void drv_admin_do(drv *d, const char *fmt, const char *a, const char *b)
{
    freeReplyObject(drv_admin(d, fmt, a, b));
}

/* ---- checks ---- */

static userdb_result drv_found(uint64_t quota, const char *maildir)
{
    userdb_result r;
    memset(&r, 0, sizeof(r));
    r.status = USERDB_FOUND;
    r.quota_bytes = quota;
    snprintf(r.maildir, sizeof(r.maildir), "%s", maildir);
    return r;
}

/* One lookup in its own turn; returns the answer (status ERROR and token
 * UINT64_MAX if none came within max_ms). */
static drv_answer drv_lookup_one(drv *d, uint64_t token, const char *user, uint64_t max_ms)
{
    size_t before = d->answers_n;
    int rc = userdb_redis_lookup(d->r, token, user);
    drv_answer none = {.token = UINT64_MAX, .status = USERDB_REDIS_ERROR};
    if (rc != 0) {
        printf("# lookup %s: %s\n", user, strerror(-rc));
        return none;
    }
    if (!drv_wait_answers(d, before + 1, max_ms)) {
        return none;
    }
    return d->answers[before];
}

static void check_store_hit(drv *d)
{
    userdb_result alice = drv_found(1048576, "example.test/alice/");
    userdb_result bob;
    memset(&bob, 0, sizeof(bob));
    bob.status = USERDB_NOTFOUND;
    userdb_result carol = bob;
    carol.status = USERDB_INACTIVE;
    userdb_redis_store(d->r, "alice@example.test", &alice);
    userdb_redis_store(d->r, "bob@example.test", &bob);
    userdb_redis_store(d->r, "carol@example.test", &carol);
    /* Same turn: the GETs follow the SETs on the same connection. */
    size_t before = d->answers_n;
    userdb_redis_lookup(d->r, 1, "alice@example.test");
    userdb_redis_lookup(d->r, 2, "bob@example.test");
    userdb_redis_lookup(d->r, 3, "carol@example.test");
    bool got = drv_wait_answers(d, before + 3, 2000);
    drv_check(d, got, "store then lookup: three answers", "got %zu answers", d->answers_n - before);
    if (!got) {
        return;
    }
    drv_answer *a = &d->answers[before];
    drv_check(d,
              a[0].token == 1 && a[0].status == USERDB_REDIS_HIT &&
                  a[0].result.status == USERDB_FOUND && a[0].result.quota_bytes == 1048576 &&
                  strcmp(a[0].result.maildir, "example.test/alice/") == 0,
              "store+lookup round trip: FOUND, quota, maildir",
              "got: token %llu %s status %d quota %llu maildir \"%s\"  want: token 1 HIT FOUND "
              "1048576 \"example.test/alice/\"",
              (unsigned long long)a[0].token, drv_status_word(a[0].status), a[0].result.status,
              (unsigned long long)a[0].result.quota_bytes, a[0].result.maildir);
    drv_check(d, a[0].latency_us > 0 && a[0].latency_us < DRV_TIMEOUT_MS * 1000u,
              "latency reported (send -> reply)", "got: %llu us  want: 0 < latency < %u us",
              (unsigned long long)a[0].latency_us, DRV_TIMEOUT_MS * 1000u);
    drv_check(d,
              a[1].token == 2 && a[1].status == USERDB_REDIS_HIT &&
                  a[1].result.status == USERDB_NOTFOUND,
              "store+lookup round trip: NOTFOUND", "got: token %llu %s status %d",
              (unsigned long long)a[1].token, drv_status_word(a[1].status), a[1].result.status);
    drv_check(d,
              a[2].token == 3 && a[2].status == USERDB_REDIS_HIT &&
                  a[2].result.status == USERDB_INACTIVE,
              "store+lookup round trip: INACTIVE", "got: token %llu %s status %d",
              (unsigned long long)a[2].token, drv_status_word(a[2].status), a[2].result.status);

    redisReply *v = drv_admin(d, "GET sluice:v1:user:alice@example.test");
    drv_check(
        d, v->type == REDIS_REPLY_STRING && strcmp(v->str, "1|F|1048576|example.test/alice/") == 0,
        "stored value as documented", "got: %s  want: 1|F|1048576|example.test/alice/",
        v->type == REDIS_REPLY_STRING ? v->str : "(not a string)");
    freeReplyObject(v);
    redisReply *t1 = drv_admin(d, "TTL sluice:v1:user:alice@example.test");
    redisReply *t2 = drv_admin(d, "TTL sluice:v1:user:bob@example.test");
    drv_check(d,
              t1->integer > DRV_NEGATIVE_TTL_S && t1->integer <= DRV_POSITIVE_TTL_S &&
                  t2->integer > 0 && t2->integer <= DRV_NEGATIVE_TTL_S,
              "positive and negative TTLs", "got: %lld / %lld  want: (%d, %d] / (0, %d]",
              t1->integer, t2->integer, DRV_NEGATIVE_TTL_S, DRV_POSITIVE_TTL_S, DRV_NEGATIVE_TTL_S);
    freeReplyObject(t1);
    freeReplyObject(t2);

    /* TEMPFAIL is never written. */
    userdb_result tf;
    memset(&tf, 0, sizeof(tf));
    tf.status = USERDB_TEMPFAIL;
    uint64_t stores = userdb_redis_counters_get(d->r)->stores;
    userdb_redis_store(d->r, "temp@example.test", &tf);
    drv_uint(d, "TEMPFAIL is not stored", userdb_redis_counters_get(d->r)->stores, stores);
}

static void check_miss_and_invalid(drv *d)
{
    drv_answer a = drv_lookup_one(d, 7, "nobody@example.test", 2000);
    drv_check(d, a.token == 7 && a.status == USERDB_REDIS_MISS, "unknown key: MISS",
              "got: token %llu %s", (unsigned long long)a.token, drv_status_word(a.status));
    int rc1 = userdb_redis_lookup(d->r, 8, "");
    int rc2 = userdb_redis_lookup(d->r, 9, "bad\r\n@example.test");
    drv_check(d, rc1 == -EINVAL && rc2 == -EINVAL, "a user that cannot be a key: -EINVAL",
              "got: %d %d  want: %d", rc1, rc2, -EINVAL);
}

static void check_pipeline(drv *d)
{
    /* Seed DRV_PIPELINE_N users in one pipeline of our own. */
    freeReplyObject(drv_admin(d, "PING"));
    for (int i = 0; i < DRV_PIPELINE_N; i++) {
        redisAppendCommand(d->admin, "SET sluice:v1:user:p%04d@example.test 1|F|%d|p/%04d/", i, i,
                           i);
    }
    for (int i = 0; i < DRV_PIPELINE_N; i++) {
        void *reply = NULL;
        if (redisGetReply(d->admin, &reply) != REDIS_OK) {
            fprintf(stderr, "seed failed\n");
            exit(2);
        }
        freeReplyObject(reply);
    }
    uint64_t sends = userdb_redis_counters_get(d->r)->sends;
    size_t before = d->answers_n;
    int refused = 0;
    for (int i = 0; i < DRV_PIPELINE_N; i++) {
        char user[64];
        snprintf(user, sizeof(user), "P%04d@Example.test", i);
        if (userdb_redis_lookup(d->r, 1000 + (uint64_t)i, user) != 0) {
            refused++;
        }
    }
    drv_uint(d, "1000 lookups queued in one turn", (uint64_t)refused, 0);
    bool all = drv_wait_answers(d, before + DRV_PIPELINE_N, 5000);
    uint64_t sent = userdb_redis_counters_get(d->r)->sends - sends;
    drv_check(d, all, "1000 lookups all answered", "got %zu answers", d->answers_n - before);
    /* One send for the batch (the kernel may take it in a few pieces); the
     * generation poll of a tick may add one more. */
    drv_check(d, sent >= 1 && sent <= 3, "1000 lookups written in few sends",
              "got: %llu sends  want: 1..3", (unsigned long long)sent);
    if (!all) {
        return;
    }
    int bad = -1;
    for (int i = 0; i < DRV_PIPELINE_N && bad < 0; i++) {
        drv_answer *a = &d->answers[before + (size_t)i];
        char want[32];
        snprintf(want, sizeof(want), "p/%04d/", i);
        if (a->token != 1000 + (uint64_t)i || a->status != USERDB_REDIS_HIT ||
            a->result.quota_bytes != (uint64_t)i || strcmp(a->result.maildir, want) != 0) {
            bad = i;
        }
    }
    drv_check(d, bad < 0, "1000 answers in order, each its own entry",
              "first wrong answer at %d: token %llu %s maildir %s", bad,
              bad < 0 ? 0ull : (unsigned long long)d->answers[before + (size_t)bad].token,
              bad < 0 ? "" : drv_status_word(d->answers[before + (size_t)bad].status),
              bad < 0 ? "" : d->answers[before + (size_t)bad].result.maildir);
}

static void check_queue_bound(drv *d, const userdb_redis_config *base)
{
    userdb_redis_config cfg = *base;
    cfg.queue_max = 8;
    userdb_redis_callbacks cb = {drv_on_lookup, NULL, d};
    char err[256];
    userdb_redis *r = userdb_redis_new(&d->ring, &cfg, &cb, err, sizeof(err));
    if (r == NULL) {
        drv_check(d, false, "small client created", "%s", err);
        return;
    }
    bool up = drv_wait_connected(d, r, 2000);
    drv_spin(d, r, 100); /* let the first generation poll come back */
    int rcs[9];
    for (int i = 0; i < 9; i++) {
        rcs[i] = userdb_redis_lookup(r, 500 + (uint64_t)i, "alice@example.test");
    }
    drv_check(d, up && rcs[0] == 0 && rcs[7] == 0 && rcs[8] == -EAGAIN,
              "bounded queue: the 9th of 8 lookups is refused with -EAGAIN",
              "got: up %d rc[0] %d rc[7] %d rc[8] %d", up, rcs[0], rcs[7], rcs[8]);
    drv_uint(d, "bounded queue: refusal counted", userdb_redis_counters_get(r)->queue_full, 1);
    size_t before = d->answers_n;
    uint64_t end = sl_clock_ms() + 2000;
    while (d->answers_n < before + 8 && sl_clock_ms() < end) {
        drv_turn(d, r, 10);
    }
    drv_uint(d, "bounded queue: the 8 accepted are answered", d->answers_n - before, 8);
    userdb_redis_free(&r);
    drv_spin(d, NULL, 50);
}

static void check_unix_socket(drv *d, const userdb_redis_config *base)
{
    userdb_redis_config cfg = *base;
    cfg.unix_path = d->sock;
    userdb_redis_callbacks cb = {drv_on_lookup, NULL, d};
    char err[256];
    userdb_redis *r = userdb_redis_new(&d->ring, &cfg, &cb, err, sizeof(err));
    if (r == NULL) {
        drv_check(d, false, "unix socket client created", "%s", err);
        return;
    }
    size_t before = d->answers_n;
    userdb_redis_lookup(r, 77, "alice@example.test"); /* queued while connecting */
    uint64_t end = sl_clock_ms() + 2000;
    while (d->answers_n < before + 1 && sl_clock_ms() < end) {
        drv_turn(d, r, 10);
    }
    drv_check(d,
              d->answers_n == before + 1 && d->answers[before].status == USERDB_REDIS_HIT &&
                  d->answers[before].result.quota_bytes == 1048576,
              "unix socket: lookup queued while connecting is a HIT", "got %zu answers, %s",
              d->answers_n - before,
              d->answers_n > before ? drv_status_word(d->answers[before].status) : "-");
    userdb_redis_free(&r);
    drv_spin(d, NULL, 50);
}

static void check_garbage(drv *d)
{
    drv_admin_do(d, "SET %s %s", "sluice:v1:user:g1@example.test", "2|F|0|x");
    drv_admin_do(d, "SET %s %s", "sluice:v1:user:g2@example.test", "1|F|-5|m");
    drv_admin_do(d, "SET %s %s", "sluice:v1:user:g3@example.test", "not an entry at all");
    drv_admin_do(d, "HSET %s f %s", "sluice:v1:user:g4@example.test", "v");
    uint64_t garbage = userdb_redis_counters_get(d->r)->garbage;
    uint64_t reconnects = userdb_redis_counters_get(d->r)->reconnects;
    size_t before = d->answers_n;
    static const char *users[] = {"g1@example.test", "g2@example.test", "g3@example.test",
                                  "g4@example.test"};
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < 4; i++) {
            userdb_redis_lookup(d->r, 200 + i, users[i]);
        }
        drv_wait_answers(d, before + 4 * (size_t)(round + 1), 2000);
    }
    int errors = 0;
    for (size_t i = before; i < d->answers_n; i++) {
        errors += d->answers[i].status == USERDB_REDIS_ERROR;
    }
    drv_uint(d, "garbage values and a wrong-type key answer ERROR", (uint64_t)errors, 8);
    drv_uint(d, "garbage counted per lookup (wrong type included)",
             userdb_redis_counters_get(d->r)->garbage - garbage, 6);
    drv_answer a = drv_lookup_one(d, 300, "alice@example.test", 2000);
    drv_check(d,
              a.status == USERDB_REDIS_HIT &&
                  userdb_redis_counters_get(d->r)->reconnects == reconnects,
              "garbage does not cost the connection", "got: %s, reconnects %llu -> %llu",
              drv_status_word(a.status), (unsigned long long)reconnects,
              (unsigned long long)userdb_redis_counters_get(d->r)->reconnects);
    printf("# garbage checked\n");
}

static void check_huge_value(drv *d)
{
    size_t n = 1 << 20;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    drv_admin_do(d, "SET %s %s", "sluice:v1:user:huge@example.test", big);
    free(big);
    drv_answer a = drv_lookup_one(d, 301, "huge@example.test", 2000);
    drv_check(d, a.status == USERDB_REDIS_ERROR, "a 1 MiB value: ERROR, not buffered whole",
              "got: %s", drv_status_word(a.status));
    drv_admin_do(d, "DEL %s%s", "sluice:v1:user:huge@example.test", "");
    bool up = drv_wait_connected(d, d->r, 3000);
    a = drv_lookup_one(d, 302, "alice@example.test", 2000);
    drv_check(d, up && a.status == USERDB_REDIS_HIT, "after the huge value: reconnected, HIT",
              "got: up %d %s", up, drv_status_word(a.status));
}

/* The resolver threads' blocking writer: same encoding and TTLs, bounded by
 * timeout_ms, backing off after a failure. */
static void check_sync(drv *d, const userdb_redis_config *cfg)
{
    char err[256];
    userdb_redis_sync *s = userdb_redis_sync_new(cfg, err, sizeof(err));
    if (s == NULL) {
        drv_check(d, false, "sync writer created", "%s", err);
        return;
    }
    userdb_result dave = drv_found(5, "example.test/dave/");
    int rc = userdb_redis_sync_set(s, "Dave@Example.test", &dave);
    redisReply *v = drv_admin(d, "GET sluice:v1:user:dave@example.test");
    redisReply *t = drv_admin(d, "TTL sluice:v1:user:dave@example.test");
    drv_check(d,
              rc == 0 && v->type == REDIS_REPLY_STRING &&
                  strcmp(v->str, "1|F|5|example.test/dave/") == 0 &&
                  t->integer > DRV_NEGATIVE_TTL_S && t->integer <= DRV_POSITIVE_TTL_S,
              "sync set: value and positive TTL", "got: rc %d value %s ttl %lld", rc,
              v->type == REDIS_REPLY_STRING ? v->str : "-", t->integer);
    freeReplyObject(v);
    freeReplyObject(t);

    userdb_result gone;
    memset(&gone, 0, sizeof(gone));
    gone.status = USERDB_NOTFOUND;
    rc = userdb_redis_sync_set(s, "gone@example.test", &gone);
    t = drv_admin(d, "TTL sluice:v1:user:gone@example.test");
    drv_check(d, rc == 0 && t->integer > 0 && t->integer <= DRV_NEGATIVE_TTL_S,
              "sync set: NOTFOUND with the negative TTL", "got: rc %d ttl %lld", rc, t->integer);
    freeReplyObject(t);

    gone.status = USERDB_TEMPFAIL;
    rc = userdb_redis_sync_set(s, "temp@example.test", &gone);
    v = drv_admin(d, "EXISTS sluice:v1:user:temp@example.test");
    drv_check(d, rc == 0 && v->integer == 0, "sync set: TEMPFAIL is not written",
              "got: rc %d exists %lld", rc, v->integer);
    freeReplyObject(v);

    passdb_result pw;
    memset(&pw, 0, sizeof(pw));
    pw.status = USERDB_FOUND;
    snprintf(pw.password, sizeof(pw.password), "{PLAIN}a|b");
    rc = userdb_redis_sync_set_pass(s, "dave@example.test", &pw);
    v = drv_admin(d, "GET sluice:v1:pass:dave@example.test");
    drv_check(d, rc == 0 && v->type == REDIS_REPLY_STRING && strcmp(v->str, "1|P|{PLAIN}a|b") == 0,
              "sync set_pass: value under the pass key", "got: rc %d value %s", rc,
              v->type == REDIS_REPLY_STRING ? v->str : "-");
    freeReplyObject(v);
    rc = userdb_redis_sync_set_pass(s, "", &pw);
    drv_uint(d, "sync set_pass: bad user is -EINVAL", (uint64_t)-rc, EINVAL);

    /* A stopped redis: the call returns -EIO at the timeout, the next one
     * at once with -EAGAIN (backoff), and writes work again after SIGCONT. */
    kill(drv_redis_pid, SIGSTOP);
    drv_redis_stopped = true;
    uint64_t t0 = sl_clock_ms();
    rc = userdb_redis_sync_set(s, "dave@example.test", &dave);
    uint64_t took = sl_clock_ms() - t0;
    drv_check(d, rc == -EIO && took + 5 >= DRV_TIMEOUT_MS && took <= DRV_TIMEOUT_MS + 100,
              "sync set, redis stopped: -EIO within timeout_ms",
              "got: rc %d after %llu ms  want: %d after %d..%d ms", rc, (unsigned long long)took,
              -EIO, DRV_TIMEOUT_MS - 5, DRV_TIMEOUT_MS + 100);
    t0 = sl_clock_ms();
    rc = userdb_redis_sync_set(s, "dave@example.test", &dave);
    took = sl_clock_ms() - t0;
    drv_check(d, rc == -EAGAIN && took < 5, "sync set right after a failure: -EAGAIN at once",
              "got: rc %d after %llu ms", rc, (unsigned long long)took);
    drv_cont_redis();
    uint64_t end = sl_clock_ms() + 3000;
    do {
        drv_spin(d, d->r, 50);
        rc = userdb_redis_sync_set(s, "dave@example.test", &dave);
    } while (rc != 0 && sl_clock_ms() < end);
    drv_check(d, rc == 0, "sync set after SIGCONT: works again", "got: rc %d", rc);
    userdb_redis_sync_free(&s);
    drv_check(d, drv_wait_connected(d, d->r, 3000), "ring client connected after the pause",
              "still down");
}

static void check_redis_killed(drv *d)
{
    /* Requests on the wire when redis dies fail at once, not at the timeout. */
    kill(drv_redis_pid, SIGSTOP);
    drv_redis_stopped = true;
    uint64_t timeouts = userdb_redis_counters_get(d->r)->timeouts;
    size_t before = d->answers_n;
    uint64_t t0 = sl_clock_ms();
    for (int i = 0; i < 5; i++) {
        userdb_redis_lookup(d->r, 400 + (uint64_t)i, "alice@example.test");
    }
    drv_spin(d, d->r, 50);
    kill(drv_redis_pid, SIGKILL);
    drv_redis_stopped = false;
    bool got = drv_wait_answers(d, before + 5, 2000);
    uint64_t took = got ? d->answers[before + 4].at_ms - t0 : 0;
    int errors = 0;
    for (size_t i = before; i < d->answers_n; i++) {
        errors += d->answers[i].status == USERDB_REDIS_ERROR;
    }
    drv_check(d, got && errors == 5, "redis killed: lookups in flight answer ERROR",
              "got %zu answers, %d ERROR", d->answers_n - before, errors);
    drv_check(d, got && took < DRV_TIMEOUT_MS, "redis killed: answered before the timeout",
              "got: %llu ms  want: < %d ms", (unsigned long long)took, DRV_TIMEOUT_MS);
    drv_uint(d, "redis killed: not counted as timeouts",
             userdb_redis_counters_get(d->r)->timeouts - timeouts, 0);

    /* While down: ERROR from the next flush, in the same turn. */
    drv_spin(d, d->r, 20);
    before = d->answers_n;
    t0 = sl_clock_ms();
    int rc = userdb_redis_lookup(d->r, 450, "alice@example.test");
    bool sync_answer = d->answers_n != before;
    drv_turn(d, d->r, 1);
    drv_check(d,
              rc == 0 && !sync_answer && d->answers_n == before + 1 &&
                  d->answers[before].status == USERDB_REDIS_ERROR &&
                  d->answers[before].at_ms - t0 < 50,
              "redis down: lookup answers ERROR from the next flush, not inside lookup()",
              "got: rc %d, answered inside lookup %d, answers %zu", rc, sync_answer,
              d->answers_n - before);
}

static void check_restart(drv *d)
{
    uint64_t reconnects = userdb_redis_counters_get(d->r)->reconnects;
    long pid = drv_step(d, "restart");
    drv_check(d, pid > 0, "the script restarted redis", "go file holds %ld", pid);
    drv_redis_pid = (pid_t)pid;
    bool up = drv_wait_connected(d, d->r, 8000);
    drv_check(d, up, "reconnects after redis is restarted", "still down after 8 s");
    drv_check(d, userdb_redis_counters_get(d->r)->reconnects > reconnects, "reconnect counted",
              "got: %llu  want: > %llu",
              (unsigned long long)userdb_redis_counters_get(d->r)->reconnects,
              (unsigned long long)reconnects);
    /* A fresh redis has no data: MISS, then a store makes it a HIT again. */
    drv_answer a = drv_lookup_one(d, 460, "alice@example.test", 2000);
    drv_check(d, a.status == USERDB_REDIS_MISS, "after restart: MISS (no persistence)", "got: %s",
              drv_status_word(a.status));
    userdb_result alice = drv_found(1048576, "example.test/alice/");
    userdb_redis_store(d->r, "alice@example.test", &alice);
    a = drv_lookup_one(d, 461, "alice@example.test", 2000);
    drv_check(d, a.status == USERDB_REDIS_HIT, "after restart: store then HIT", "got: %s",
              drv_status_word(a.status));
}

static void check_stopped(drv *d)
{
    uint64_t timeouts = userdb_redis_counters_get(d->r)->timeouts;
    kill(drv_redis_pid, SIGSTOP);
    drv_redis_stopped = true;
    size_t before = d->answers_n;
    uint64_t t0 = sl_clock_ms();
    for (int i = 0; i < 3; i++) {
        userdb_redis_lookup(d->r, 600 + (uint64_t)i, "alice@example.test");
    }
    bool got = drv_wait_answers(d, before + 3, 3 * DRV_TIMEOUT_MS);
    uint64_t took = got ? d->answers[before + 2].at_ms - t0 : 0;
    int errors = 0;
    for (size_t i = before; i < d->answers_n; i++) {
        errors += d->answers[i].status == USERDB_REDIS_ERROR;
    }
    drv_check(d, got && errors == 3, "redis stopped: lookups answer ERROR",
              "got %zu answers, %d ERROR", d->answers_n - before, errors);
    /* The ring timer fires at the deadline; allow a little for the turn. */
    drv_check(d, got && took + 5 >= DRV_TIMEOUT_MS && took <= DRV_TIMEOUT_MS + 100,
              "redis stopped: answered at the timeout", "got: %llu ms  want: %d..%d ms",
              (unsigned long long)took, DRV_TIMEOUT_MS - 5, DRV_TIMEOUT_MS + 100);
    drv_uint(d, "redis stopped: counted as timeouts",
             userdb_redis_counters_get(d->r)->timeouts - timeouts, 3);
    drv_spin(d, d->r, 2 * DRV_TIMEOUT_MS);
    drv_cont_redis();
    /* Back to normal once redis runs again: poll until a HIT. */
    uint64_t end = sl_clock_ms() + 8000;
    drv_answer a = {.status = USERDB_REDIS_ERROR};
    while (sl_clock_ms() < end) {
        a = drv_lookup_one(d, 650, "alice@example.test", 2000);
        if (a.status == USERDB_REDIS_HIT) {
            break;
        }
        drv_spin(d, d->r, 100);
    }
    drv_check(d, a.status == USERDB_REDIS_HIT, "after SIGCONT: lookups succeed again",
              "got: %s after 8 s", drv_status_word(a.status));
}

static void check_generation(drv *d)
{
    drv_uint(d, "no generation change before any flush", d->gen_changes, 0);
    /* Wait for a tick so the current value is known before the flush. */
    drv_spin(d, d->r, DRV_TICK_MS + 100);
    drv_step(d, "flush-all");
    uint64_t end = sl_clock_ms() + 3 * DRV_TICK_MS;
    while (d->gen_changes == 0 && sl_clock_ms() < end) {
        drv_turn(d, d->r, 20);
    }
    drv_uint(d, "generation callback fires once after sluice-cache flush --all", d->gen_changes, 1);
    drv_uint(d, "generation change counted", userdb_redis_counters_get(d->r)->generation_changes,
             1);
    drv_answer a = drv_lookup_one(d, 700, "alice@example.test", 2000);
    drv_check(d, a.status == USERDB_REDIS_MISS, "after flush --all: MISS", "got: %s",
              drv_status_word(a.status));
    drv_spin(d, d->r, DRV_TICK_MS + 100);
    drv_uint(d, "no second callback without a new flush", d->gen_changes, 1);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s PORT UNIX_SOCKET CTL_DIR REDIS_PID\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    sl_log_init("stderr", SL_LOG_INFO);
    sl_log_thread_name("core0");
    static drv d;
    d.port = atoi(argv[1]);
    d.sock = argv[2];
    d.ctl_dir = argv[3];
    drv_redis_pid = (pid_t)atol(argv[4]);
    atexit(drv_cont_redis);
    int rc = sl_ring_init(&d.ring, 256);
    if (rc != 0) {
        fprintf(stderr, "sl_ring_init: %s\n", strerror(-rc));
        return 2;
    }
    userdb_redis_config cfg = {.host = "127.0.0.1",
                               .port = (unsigned)d.port,
                               .timeout_ms = DRV_TIMEOUT_MS,
                               .positive_ttl_s = DRV_POSITIVE_TTL_S,
                               .negative_ttl_s = DRV_NEGATIVE_TTL_S};
    userdb_redis_callbacks cb = {drv_on_lookup, drv_on_gen, &d};
    char err[256];
    d.r = userdb_redis_new(&d.ring, &cfg, &cb, err, sizeof(err));
    if (d.r == NULL) {
        fprintf(stderr, "userdb_redis_new: %s\n", err);
        return 2;
    }
    d.next_tick_ms = sl_clock_ms() + DRV_TICK_MS;
    drv_check(&d, drv_wait_connected(&d, d.r, 2000), "connects through the ring",
              "not connected after 2 s");

    check_store_hit(&d);
    check_miss_and_invalid(&d);
    check_pipeline(&d);
    check_queue_bound(&d, &cfg);
    check_unix_socket(&d, &cfg);
    check_garbage(&d);
    check_huge_value(&d);
    check_sync(&d, &cfg);
    check_redis_killed(&d);
    if (d.admin != NULL) {
        redisFree(d.admin);
        d.admin = NULL;
    }
    check_restart(&d);
    check_stopped(&d);
    check_generation(&d);

    const userdb_redis_counters *c = userdb_redis_counters_get(d.r);
    printf("# counters: lookups %llu hits %llu misses %llu errors %llu timeouts %llu garbage "
           "%llu reconnects %llu sends %llu\n",
           (unsigned long long)c->lookups, (unsigned long long)c->hits,
           (unsigned long long)c->misses, (unsigned long long)c->errors,
           (unsigned long long)c->timeouts, (unsigned long long)c->garbage,
           (unsigned long long)c->reconnects, (unsigned long long)c->sends);
    drv_uint(&d, "every accepted lookup answered exactly once", c->hits + c->misses + c->errors,
             c->lookups);
    userdb_redis_free(&d.r);
    drv_spin(&d, NULL, 50);
    if (d.admin != NULL) {
        redisFree(d.admin);
    }
    sl_ring_deinit(&d.ring);
    free(d.answers);
    printf("%d passed, %d failed\n", d.checks - d.fails, d.fails);
    return d.fails == 0 ? 0 : 1;
}
