/* bench/authblast.c: a load client for the Dovecot auth client protocol (the
 * one Postfix's smtpd_sasl_type = dovecot speaks), against sluice's auth
 * endpoint or Dovecot's auth service.
 *
 * One thread per connection with blocking I/O: each connection behaves like
 * one smtpd process (one request in flight, closed loop), and at the few
 * dozen connections an auth server sees per host the client's own cost is
 * small next to a password hash. Each connection does the handshake once,
 * then AUTH PLAIN with an initial response, one after the other, users taken
 * in turn from --user-pattern. A dropped connection is counted and reopened.
 * `authblast --help` lists the options. */
#include "bench/lmtpblast_hist.h"
#include "core/base/base.h"
#include "core/base/base64.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define AUTHBLAST_LINE_BYTES_MAX 16384 /* AUTH_CLIENT_MAX_LINE_LENGTH */
#define AUTHBLAST_CONNECTIONS_MAX 1024
#define AUTHBLAST_IO_TIMEOUT_S 30 /* longer than any failure delay + penalty */

typedef struct authblast_opts {
    const char *target;
    const char *user_pattern;
    const char *password;
    const char *rip;
    unsigned connections;
    unsigned users;
    double duration_s;
    bool json;
} authblast_opts;

typedef struct authblast_conn {
    unsigned idx;
    int fd;
    uint64_t next_user;
    uint32_t next_id;
    size_t have;
    char buf[AUTHBLAST_LINE_BYTES_MAX + 1];
    /* results, read by main after join */
    uint64_t ok;
    uint64_t fail;
    uint64_t errors; /* dropped connections, bad replies */
    lmtpblast_hist hist;
    pthread_t thread;
} authblast_conn;

static authblast_opts g_opts;
static uint64_t g_end_ns;
static _Atomic bool g_stop;
static pthread_mutex_t g_err_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_last_error[256];

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("authblast: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void conn_error(authblast_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void conn_error(authblast_conn *c, const char *fmt, ...)
{
    char text[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    c->errors++;
    pthread_mutex_lock(&g_err_lock);
    snprintf(g_last_error, sizeof(g_last_error), "conn %u: %s", c->idx, text);
    pthread_mutex_unlock(&g_err_lock);
}

/* A connected socket to "host:port" or "unix:/path", or -1 with errno set. */
static int authblast_connect(const char *target)
{
    if (strncmp(target, "unix:", 5) == 0) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        if (strlen(target + 5) >= sizeof(sun.sun_path)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        strcpy(sun.sun_path, target + 5);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        return fd;
    }
    char host[256];
    const char *colon = strrchr(target, ':');
    if (colon == NULL || (size_t)(colon - target) >= sizeof(host)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(host, target, (size_t)(colon - target));
    host[colon - target] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || ai == NULL) {
        errno = EHOSTUNREACH;
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        int e = errno;
        close(fd);
        fd = -1;
        errno = e;
    }
    freeaddrinfo(ai);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads the next LF-terminated line into line_out (NUL-terminated, no LF).
 * 0, or -1 on EOF, error, timeout or an over-long line. */
static int read_line(authblast_conn *c, char *line_out, size_t line_size)
{
    for (;;) {
        char *lf = memchr(c->buf, '\n', c->have);
        if (lf != NULL) {
            size_t n = (size_t)(lf - c->buf);
            if (n >= line_size) {
                return -1;
            }
            memcpy(line_out, c->buf, n);
            line_out[n] = '\0';
            c->have -= n + 1;
            memmove(c->buf, lf + 1, c->have);
            return 0;
        }
        if (c->have >= AUTHBLAST_LINE_BYTES_MAX) {
            return -1;
        }
        ssize_t r = recv(c->fd, c->buf + c->have, AUTHBLAST_LINE_BYTES_MAX - c->have, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        c->have += (size_t)r;
    }
}

/* Connects and does the client handshake: 0 once DONE arrived. */
static int conn_open(authblast_conn *c)
{
    c->fd = authblast_connect(g_opts.target);
    if (c->fd < 0) {
        conn_error(c, "connect %s: %s", g_opts.target, strerror(errno));
        return -1;
    }
    struct timeval tv = {.tv_sec = AUTHBLAST_IO_TIMEOUT_S};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    c->have = 0;
    char hello[64];
    int n = snprintf(hello, sizeof(hello), "VERSION\t1\t0\nCPID\t%ld\n", (long)getpid());
    if (send_all(c->fd, hello, (size_t)n) != 0) {
        conn_error(c, "send handshake: %s", strerror(errno));
        return -1;
    }
    for (;;) {
        char l[AUTHBLAST_LINE_BYTES_MAX + 1];
        if (read_line(c, l, sizeof(l)) != 0) {
            conn_error(c, "handshake: connection closed or timed out");
            return -1;
        }
        if (strcmp(l, "DONE") == 0) {
            return 0;
        }
    }
}

static void conn_close(authblast_conn *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

/* One AUTH PLAIN: 1 OK, 0 FAIL, -1 connection trouble. */
static int conn_auth_one(authblast_conn *c)
{
    char user[256];
    char resp[600];
    char b64[820];
    char cmd[1024];
    uint64_t u = c->next_user % g_opts.users;
    c->next_user += g_opts.connections;
    /* the pattern was checked in parse_args: prefix, %[0][width]u, suffix */
    const char *pct = strchr(g_opts.user_pattern, '%');
    size_t span = strspn(pct + 1, "0123456789");
    int width = span > 0 ? atoi(pct + 1) : 0;
    if (span > 0 && pct[1] == '0') {
        snprintf(user, sizeof(user), "%.*s%0*u%s", (int)(pct - g_opts.user_pattern),
                 g_opts.user_pattern, width, (unsigned)u, pct + 2 + span);
    } else {
        snprintf(user, sizeof(user), "%.*s%*u%s", (int)(pct - g_opts.user_pattern),
                 g_opts.user_pattern, width, (unsigned)u, pct + 2 + span);
    }
    size_t ulen = strlen(user);
    size_t plen = strlen(g_opts.password);
    SL_ASSERT(2 + ulen + plen <= sizeof(resp));
    resp[0] = '\0';
    memcpy(resp + 1, user, ulen);
    resp[1 + ulen] = '\0';
    memcpy(resp + 2 + ulen, g_opts.password, plen);
    ptrdiff_t blen = sl_base64_encode((const uint8_t *)resp, 2 + ulen + plen, (uint8_t *)b64,
                                      sizeof(b64) - 1);
    SL_ASSERT(blen >= 0);
    b64[blen] = '\0';
    uint32_t id = ++c->next_id;
    int n = snprintf(cmd, sizeof(cmd),
                     "AUTH\t%u\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=%s\tresp=%s\n",
                     id, g_opts.rip, b64);
    SL_ASSERT(n > 0 && (size_t)n < sizeof(cmd));
    uint64_t t0 = now_ns();
    if (send_all(c->fd, cmd, (size_t)n) != 0) {
        conn_error(c, "send AUTH: %s", strerror(errno));
        return -1;
    }
    for (;;) {
        char l[AUTHBLAST_LINE_BYTES_MAX + 1];
        if (read_line(c, l, sizeof(l)) != 0) {
            conn_error(c, "connection closed or timed out waiting for the reply to AUTH %u", id);
            return -1;
        }
        char verb[8];
        unsigned rid = 0;
        if (sscanf(l, "%7[A-Z]\t%u", verb, &rid) != 2 || rid != id) {
            continue; /* unknown lines are ignored, as Postfix does */
        }
        lmtpblast_hist_record(&c->hist, now_ns() - t0);
        if (strcmp(verb, "OK") == 0) {
            return 1;
        }
        if (strcmp(verb, "FAIL") == 0) {
            return 0;
        }
        conn_error(c, "unexpected reply to a PLAIN AUTH: %.80s", l);
        return -1;
    }
}

static void *conn_main(void *arg)
{
    authblast_conn *c = arg;
    while (!atomic_load(&g_stop) && now_ns() < g_end_ns) {
        if (c->fd < 0 && conn_open(c) != 0) {
            conn_close(c);
            usleep(100000); /* do not spin on a server that is down */
            continue;
        }
        int rc = conn_auth_one(c);
        if (rc < 0) {
            conn_close(c);
        } else if (rc == 1) {
            c->ok++;
        } else {
            c->fail++;
        }
    }
    conn_close(c);
    return NULL;
}

static void usage(FILE *f)
{
    fputs("usage: authblast --target HOST:PORT|unix:PATH [options]\n"
          "  --connections N     concurrent connections, one request in flight each (8)\n"
          "  --duration S        seconds to run (5)\n"
          "  --mech PLAIN        the mechanism (PLAIN only: one round trip per attempt)\n"
          "  --user-pattern FMT  printf pattern for the user name, one %u (user%04u@example.test)\n"
          "  --users U           users user 0..U-1, taken in turn (1000)\n"
          "  --password P        the password sent for every user (demo)\n"
          "  --rip ADDR          the rip= sent (127.0.0.1): the penalty is per rip\n"
          "  --json              one JSON object on stdout instead of text\n",
          f);
}

static double parse_num(const char *s, const char *what, double lo, double hi)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        die("%s: want a number in [%g, %g], got '%s'", what, lo, hi, s);
    }
    return v;
}

static void parse_args(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"target", required_argument, NULL, 't'},   {"connections", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'}, {"mech", required_argument, NULL, 'm'},
        {"user-pattern", required_argument, NULL, 'u'}, {"users", required_argument, NULL, 'U'},
        {"password", required_argument, NULL, 'p'}, {"rip", required_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},           {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    g_opts = (authblast_opts){.user_pattern = "user%04u@example.test", .password = "demo",
                              .rip = "127.0.0.1", .connections = 8, .users = 1000,
                              .duration_s = 5};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 't': g_opts.target = optarg; break;
        case 'c':
            g_opts.connections =
                (unsigned)parse_num(optarg, "--connections", 1, AUTHBLAST_CONNECTIONS_MAX);
            break;
        case 'd': g_opts.duration_s = parse_num(optarg, "--duration", 0.1, 86400); break;
        case 'm':
            if (strcmp(optarg, "PLAIN") != 0) {
                die("--mech: only PLAIN is supported, got '%s'", optarg);
            }
            break;
        case 'u': g_opts.user_pattern = optarg; break;
        case 'U': g_opts.users = (unsigned)parse_num(optarg, "--users", 1, 1e9); break;
        case 'p': g_opts.password = optarg; break;
        case 'r': g_opts.rip = optarg; break;
        case 'j': g_opts.json = true; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (g_opts.target == NULL || optind != argc) {
        usage(stderr);
        exit(2);
    }
    /* The pattern is used as a format: exactly one %u (or %0Nu) and no other conversion. */
    const char *pct = strchr(g_opts.user_pattern, '%');
    size_t span = pct == NULL ? 0 : strspn(pct + 1, "0123456789");
    if (pct == NULL || pct[1 + span] != 'u' || strchr(pct + 2 + span, '%') != NULL ||
        strlen(g_opts.user_pattern) > 200 || strlen(g_opts.password) > 300) {
        die("--user-pattern wants one %%u (e.g. user%%04u@example.test), at most 200 bytes; "
            "--password at most 300");
    }
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    authblast_conn *conns = calloc(g_opts.connections, sizeof(*conns));
    SL_ASSERT(conns != NULL);
    uint64_t t0 = now_ns();
    g_end_ns = t0 + (uint64_t)(g_opts.duration_s * 1e9);
    for (unsigned i = 0; i < g_opts.connections; i++) {
        authblast_conn *c = &conns[i];
        c->idx = i;
        c->fd = -1;
        c->next_user = i;
        lmtpblast_hist_init(&c->hist);
        if (pthread_create(&c->thread, NULL, conn_main, c) != 0) {
            die("pthread_create failed");
        }
    }
    lmtpblast_hist *all = calloc(1, sizeof(*all));
    SL_ASSERT(all != NULL);
    lmtpblast_hist_init(all);
    uint64_t ok = 0;
    uint64_t fail = 0;
    uint64_t errors = 0;
    for (unsigned i = 0; i < g_opts.connections; i++) {
        authblast_conn *c = &conns[i];
        pthread_join(c->thread, NULL);
        ok += c->ok;
        fail += c->fail;
        errors += c->errors;
        all->count += c->hist.count;
        all->clamped += c->hist.clamped;
        all->max_ns = c->hist.max_ns > all->max_ns ? c->hist.max_ns : all->max_ns;
        for (size_t b = 0; b < LMTPBLAST_HIST_BUCKETS; b++) {
            all->counts[b] += c->hist.counts[b];
        }
    }
    double elapsed_s = (double)(now_ns() - t0) / 1e9;
    double rate = (double)(ok + fail) / elapsed_s;
    double p50 = (double)lmtpblast_hist_quantile_ns(all, 0.50) / 1e6;
    double p99 = (double)lmtpblast_hist_quantile_ns(all, 0.99) / 1e6;
    double max_ms = (double)all->max_ns / 1e6;
    if (g_opts.json) {
        printf("{\"target\":\"%s\",\"connections\":%u,\"users\":%u,\"mech\":\"PLAIN\","
               "\"elapsed_s\":%.3f,\"auths\":%" PRIu64 ",\"auths_per_s\":%.1f,\"ok\":%" PRIu64
               ",\"fail\":%" PRIu64 ",\"errors\":%" PRIu64
               ",\"latency_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f}}\n",
               g_opts.target, g_opts.connections, g_opts.users, elapsed_s, ok + fail, rate, ok,
               fail, errors, p50, p99, max_ms);
    } else {
        printf("target %s, %u connections, %.1f s: %" PRIu64 " auths (%.1f/s), ok %" PRIu64
               ", fail %" PRIu64 ", errors %" PRIu64 "\n"
               "latency ms: p50 %.3f  p99 %.3f  max %.3f\n",
               g_opts.target, g_opts.connections, elapsed_s, ok + fail, rate, ok, fail, errors,
               p50, p99, max_ms);
    }
    if (errors > 0) {
        fprintf(stderr, "authblast: %" PRIu64 " errors, last: %s\n", errors, g_last_error);
    }
    free(all);
    free(conns);
    return ok + fail > 0 ? 0 : 1;
}
