/* core/acceptor.c: see acceptor.h. */
#include "core/acceptor.h"

#include "core/base/base.h"
#include "core/log.h"
#include "core/net.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static void arm(sl_acceptor *a)
{
    io_uring_prep_multishot_accept(sl_ring_sqe(a->ring, &a->op), a->fd, NULL, NULL,
                                   SOCK_CLOEXEC);
    a->armed = true;
}

static void on_accept(sl_op *op, int res, uint32_t flags)
{
    sl_acceptor *a = SL_CONTAINER_OF(op, sl_acceptor, op);
    if (!(flags & IORING_CQE_F_MORE)) {
        a->armed = false;
        /* EBADF/EINVAL: the listening socket is closed or no longer listens. */
        if (!a->stopped && res != -EBADF && res != -EINVAL) {
            arm(a);
        }
    }
    if (res < 0) {
        if (a->cfg.warn_errors && res != -ECANCELED) {
            sl_warn("accept: %s", strerror(-res));
        }
        return;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    if (a->stopped || getpeername(res, (struct sockaddr *)&ss, &sl) != 0) {
        close(res);
        return;
    }
    const struct sockaddr *sa = (const struct sockaddr *)&ss;
    char ip[SL_ACCEPTOR_IP_BYTES];
    sl_net_addr_text(sa, ip, sizeof(ip));
    if (!sl_allow_match(*a->cfg.allow_ref, sa)) {
        if (a->cfg.on_refused != NULL) {
            a->cfg.on_refused(a, res, ip);
        }
        close(res);
        return;
    }
    a->cfg.on_conn(a, res, sa, ip);
}

void sl_acceptor_start(sl_acceptor *a, sl_ring *ring, int fd, const sl_acceptor_cfg *cfg)
{
    SL_ASSERT(fd >= 0);
    SL_ASSERT(cfg->allow_ref != NULL);
    SL_ASSERT(cfg->on_conn != NULL);
    memset(a, 0, sizeof(*a));
    a->ring = ring;
    a->fd = fd;
    a->cfg = *cfg;
    a->op.fn = on_accept;
    arm(a);
}

void sl_acceptor_stop(sl_acceptor *a)
{
    if (a->stopped) {
        return;
    }
    a->stopped = true;
    if (a->armed) {
        sl_ring_cancel(a->ring, &a->op);
    }
}

bool sl_acceptor_armed(const sl_acceptor *a)
{
    return a->armed;
}
