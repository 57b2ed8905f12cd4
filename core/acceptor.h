/* core/acceptor.h: one multishot accept on a listening socket, with the peer
 * checked against the client allowlist before the owner sees it. The LMTP,
 * auth and stats servers each embed one per listener; the owner keeps its
 * per-connection limits and what it does with an admitted connection.
 *
 * An acceptor lives on one core: init, start, stop and every callback run on
 * the thread that owns ring. The kernel ends a multishot accept on its own
 * now and then (a CQE without IORING_CQE_F_MORE); the acceptor re-arms it
 * unless it was stopped or the listening fd is gone. */
#ifndef SL_ACCEPTOR_H
#define SL_ACCEPTOR_H

#include "core/allow.h"
#include "core/ring.h"

#include <stdbool.h>
#include <sys/socket.h>

/* Long enough for any IPv6 peer in text form. */
#define SL_ACCEPTOR_IP_BYTES 64

typedef struct sl_acceptor sl_acceptor;

/* An admitted connection: the callback owns fd from here on. sa and ip (""
 * for UNIX peers) are valid only during the call. */
typedef void (*sl_acceptor_conn_fn)(sl_acceptor *a, int fd, const struct sockaddr *sa,
                                    const char *ip);
/* A peer the allowlist refused, for the owner's log and counters; the
 * acceptor closes fd right after the call. */
typedef void (*sl_acceptor_refused_fn)(sl_acceptor *a, int fd, const char *ip);

typedef struct sl_acceptor_cfg {
    /* Points at the owner's current list, read at each accept, so a reload
     * that swaps the owner's pointer applies from the next connection. */
    const sl_allow *const *allow_ref;
    sl_acceptor_conn_fn on_conn;
    sl_acceptor_refused_fn on_refused; /* NULL: refuse silently */
    void *ctx;                         /* the owner, for the callbacks */
    bool warn_errors;                  /* log failed accepts (not cancels) */
} sl_acceptor_cfg;

struct sl_acceptor {
    sl_ring *ring;
    int fd;
    bool armed;
    bool stopped;
    sl_acceptor_cfg cfg;
    sl_op op;
};

/* Set up a on caller storage for the listening socket fd (still owned by the
 * caller, which closes it) and arm the accept. */
void sl_acceptor_start(sl_acceptor *a, sl_ring *ring, int fd, const sl_acceptor_cfg *cfg);

/* Stop accepting: no re-arm and no more callbacks; the pending accept is
 * cancelled. Idempotent. */
void sl_acceptor_stop(sl_acceptor *a);

/* true while the kernel may still complete an accept for a (the owner must
 * not free a before this turns false). */
bool sl_acceptor_armed(const sl_acceptor *a);

#endif
