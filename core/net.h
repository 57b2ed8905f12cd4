/* core/net.h: listening sockets. TCP listeners are opened once per core with
 * SO_REUSEPORT so the kernel spreads connections over cores; a UNIX socket
 * is opened once and shared (every core arms its own accept on it). */
#ifndef SL_NET_H
#define SL_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct sl_listen_spec {
    bool is_unix;
    char addr[256]; /* host or /path */
    char port[16];
} sl_listen_spec;

/* Parse "127.0.0.1:2424, [::1]:2424, unix:/path". Returns the count (0..max)
 * or -1 with a message in err. */
int sl_net_parse_listen(const char *text, sl_listen_spec *out, size_t max, char *err,
                        size_t err_len);

/* Open a listening socket. Returns the fd or -errno. */
int sl_net_listen(const sl_listen_spec *spec, unsigned unix_mode, int backlog);

/* Format a peer address as text ("" for UNIX peers). */
void sl_net_addr_text(const struct sockaddr *sa, char *out, size_t out_len);

/* A key for per-IP accounting: 16 bytes, IPv4 mapped; all-zero for UNIX. */
void sl_net_addr_key(const struct sockaddr *sa, unsigned char out[16]);

#endif
