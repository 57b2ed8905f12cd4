/* core/allow.h: the client allowlist (lmtp_allow = 127.0.0.0/8, ::1/128).
 * IPv4-mapped IPv6 peers match IPv4 entries. An empty list allows everyone.
 * Immutable once parsed: cores share one list read-only and swap the
 * pointer on reload. */
#ifndef SL_ALLOW_H
#define SL_ALLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct sl_allow_entry {
    uint8_t addr[16]; /* IPv4 as ::ffff:a.b.c.d */
    unsigned prefix;  /* 0..128, IPv4 prefixes stored +96 */
} sl_allow_entry;

typedef struct sl_allow {
    size_t n;
    sl_allow_entry *entries;
} sl_allow;

/* Parse a comma/space separated list. -1 with a message in err on error. */
int sl_allow_parse(const char *text, sl_allow *out, char *err, size_t err_len);
void sl_allow_deinit(sl_allow *a);
/* true if sa is allowed. UNIX socket peers are always allowed (file
 * permissions guard those). */
bool sl_allow_match(const sl_allow *a, const struct sockaddr *sa);

#endif
