/* core/net.c: see net.h. */
#include "core/net.h"

#include "core/base/base.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int parse_one(char *tok, sl_listen_spec *s)
{
    memset(s, 0, sizeof(*s));
    if (strncmp(tok, "unix:", 5) == 0) {
        s->is_unix = true;
        if (strlen(tok + 5) == 0 || strlen(tok + 5) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            return -1;
        }
        snprintf(s->addr, sizeof(s->addr), "%s", tok + 5);
        return 0;
    }
    char *colon = strrchr(tok, ':');
    if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) >= sizeof(s->port)) {
        return -1;
    }
    *colon = '\0';
    char *host = tok;
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        host++;
    }
    if (strlen(host) >= sizeof(s->addr)) {
        return -1;
    }
    snprintf(s->addr, sizeof(s->addr), "%s", host);
    snprintf(s->port, sizeof(s->port), "%s", colon + 1);
    return 0;
}

int sl_net_parse_listen(const char *text, sl_listen_spec *out, size_t max, char *err,
                        size_t err_len)
{
    char copy[4096];
    snprintf(copy, sizeof(copy), "%s", text);
    size_t n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ", \t", &save); tok != NULL;
         tok = strtok_r(NULL, ", \t", &save)) {
        if (n == max) {
            snprintf(err, err_len, "too many listen addresses (max %zu)", max);
            return -1;
        }
        if (parse_one(tok, &out[n]) != 0) {
            snprintf(err, err_len, "bad listen address '%s' (want host:port or unix:/path)", tok);
            return -1;
        }
        n++;
    }
    return (int)n;
}

static int listen_unix(const sl_listen_spec *spec, unsigned mode, int backlog)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t len = strlen(spec->addr);
    if (len >= sizeof(sun.sun_path)) {
        close(fd);
        return -ENAMETOOLONG;
    }
    memcpy(sun.sun_path, spec->addr, len + 1);
    unlink(spec->addr);
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 || chmod(spec->addr, mode) != 0 ||
        listen(fd, backlog) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static int listen_tcp(const sl_listen_spec *spec, int backlog)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    const char *host = spec->addr[0] == '\0' || strcmp(spec->addr, "*") == 0 ? NULL : spec->addr;
    if (getaddrinfo(host, spec->port, &hints, &res) != 0 || res == NULL) {
        return -EADDRNOTAVAIL;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        return -errno;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (res->ai_family == AF_INET6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    int rc = bind(fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (rc != 0 || listen(fd, backlog) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int sl_net_listen(const sl_listen_spec *spec, unsigned unix_mode, int backlog)
{
    return spec->is_unix ? listen_unix(spec, unix_mode, backlog) : listen_tcp(spec, backlog);
}

void sl_net_addr_text(const struct sockaddr *sa, char *out, size_t out_len)
{
    out[0] = '\0';
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)out_len);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)out_len);
        } else {
            inet_ntop(AF_INET6, a, out, (socklen_t)out_len);
        }
    }
}

void sl_net_addr_key(const struct sockaddr *sa, unsigned char out[16])
{
    memset(out, 0, 16);
    if (sa->sa_family == AF_INET) {
        out[10] = 0xff;
        out[11] = 0xff;
        memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    }
}
