/* store/fsbarrier.h: durability barriers by syncfs(), one thread for the
 * whole process (sync_method = syncfs).
 *
 * A core asks for a barrier on the filesystem of a directory; the answer
 * comes back as a CQE on the core's own ring (IORING_OP_MSG_RING from the
 * barrier thread) with user_data = the caller's sl_op and res = 0 or
 * -errno. An answer of 0 means every write and every namespace change the
 * caller finished on that filesystem before asking is on stable storage.
 *
 * The thread serves everything that arrived before a round with one
 * syncfs() per filesystem, then one fsync() of a directory there: without a
 * journal, ext4's syncfs() issues its cache flush before it writes the last
 * metadata buffers, and that fsync's flush covers them. Requests arriving
 * during a round wait for the next one, so cores of the whole process share
 * each round: a group commit across cores.
 *
 * Errors: syncfs() reports a writeback error on the filesystem once, to
 * the round that sees it. Each caller passes the error count it read
 * (fs_barrier_errors) when it opened its files; a round answers -EIO to
 * every request whose count is behind, so an error that reached an earlier
 * round still fails the transactions that were open when it happened.
 * Errors anywhere on the filesystem count: a 4xx is the safe side. */
#ifndef SL_FSBARRIER_H
#define SL_FSBARRIER_H

#include "core/ring.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct fs_barrier fs_barrier;

typedef struct fs_barrier_stats {
    uint64_t rounds;   /* syncfs rounds run */
    uint64_t requests; /* requests answered */
    uint64_t errors;   /* syncs that failed (the count fs_barrier_errors gives) */
    uint64_t busy_us;  /* time spent in syncfs() + fsync() */
} fs_barrier_stats;

/* Start the thread. NULL with a message in err on failure. */
fs_barrier *fs_barrier_new(unsigned threads, char *err, size_t err_len);
/* Answer what is queued, stop and join the thread. */
void fs_barrier_free(fs_barrier **b);

/* Queue a barrier on the filesystem dev, which holds the directory named
 * by the first dir_len bytes of dir; dir must stay valid until the answer
 * (it is read only when dev is new, or its directory could not be opened
 * before). The answer is a CQE for op on the ring
 * whose fd is ring_fd. errors_seen: fs_barrier_errors() read before the
 * caller's first write. Any thread. */
void fs_barrier_request(fs_barrier *b, int ring_fd, sl_op *op, dev_t dev, const char *dir,
                        size_t dir_len, uint64_t errors_seen);

/* Writeback errors reported so far. Any thread. */
uint64_t fs_barrier_errors(const fs_barrier *b);

void fs_barrier_get_stats(const fs_barrier *b, fs_barrier_stats *out);

#endif
