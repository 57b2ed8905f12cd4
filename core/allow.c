/* core/allow.c: see allow.h. */
#include "core/allow.h"

#include "core/alloc.h"
#include "core/base/base.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void v4_mapped(const void *v4, uint8_t out[16])
{
    memset(out, 0, 10);
    out[10] = 0xff;
    out[11] = 0xff;
    memcpy(out + 12, v4, 4);
}

static int parse_one(const char *tok, sl_allow_entry *e)
{
    char buf[128];
    if (strlen(tok) >= sizeof(buf)) {
        return -1;
    }
    strcpy(buf, tok);
    char *slash = strchr(buf, '/');
    long prefix = -1;
    if (slash != NULL) {
        *slash = '\0';
        char *end;
        prefix = strtol(slash + 1, &end, 10);
        if (slash[1] == '\0' || *end != '\0' || prefix < 0) {
            return -1;
        }
    }
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        if (prefix > 32) {
            return -1;
        }
        v4_mapped(&a4, e->addr);
        e->prefix = (unsigned)(prefix < 0 ? 32 : prefix) + 96;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, &a6) == 1) {
        if (prefix > 128) {
            return -1;
        }
        memcpy(e->addr, &a6, 16);
        e->prefix = (unsigned)(prefix < 0 ? 128 : prefix);
        return 0;
    }
    return -1;
}

int sl_allow_parse(const char *text, sl_allow *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    char *copy = sl_strdup(text);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ", \t", &save); tok != NULL;
         tok = strtok_r(NULL, ", \t", &save)) {
        out->entries = sl_realloc(out->entries, (out->n + 1) * sizeof(*out->entries));
        if (parse_one(tok, &out->entries[out->n]) != 0) {
            snprintf(err, err_len, "bad address or network '%s' (want a.b.c.d/n or v6/n)", tok);
            free(copy);
            sl_allow_deinit(out);
            return -1;
        }
        out->n++;
    }
    free(copy);
    return 0;
}

void sl_allow_deinit(sl_allow *a)
{
    sl_free(&a->entries);
    a->n = 0;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned bytes = bits / 8;
    if (memcmp(a, b, bytes) != 0) {
        return false;
    }
    unsigned rest = bits % 8;
    if (rest == 0) {
        return true;
    }
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

bool sl_allow_match(const sl_allow *a, const struct sockaddr *sa)
{
    uint8_t addr[16];
    if (sa->sa_family == AF_UNIX) {
        return true;
    }
    if (a->n == 0) {
        return true;
    }
    if (sa->sa_family == AF_INET) {
        v4_mapped(&((const struct sockaddr_in *)sa)->sin_addr, addr);
    } else if (sa->sa_family == AF_INET6) {
        memcpy(addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    } else {
        return false;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (prefix_match(addr, a->entries[i].addr, a->entries[i].prefix)) {
            return true;
        }
    }
    return false;
}
