/* store/store.h: Maildir delivery for one delivery core, with group commit.
 *
 * A transaction (store_txn) is one message for one or more recipient
 * maildirs. Its content is written once per filesystem into a tmp/ file
 * straight from the receive buffers (writev; the buffers are pinned in the
 * core's sl_bufring until their bytes are written). Finished transactions
 * of every connection on the core are committed together: fsync of each
 * file, a hard link into each recipient's new/, fsync of each touched new/
 * directory, and only then the owner hears the per-recipient outcomes.
 *
 * Everything here runs on the owning core's thread. Maildir creation
 * (mkdir of tmp/new/cur) happens synchronously the first time a core sees a
 * maildir; the result is cached per core. */
#ifndef SL_STORE_H
#define SL_STORE_H

#include "core/bufring.h"
#include "core/ring.h"
#include "core/stats.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum store_outcome {
    STORE_OK = 0,
    STORE_TEMPFAIL, /* 451 4.3.0 */
    STORE_NOSPACE,  /* 452 4.3.1 */
} store_outcome;

typedef struct fs_barrier fs_barrier;

typedef struct store_config {
    bool fsync;
    /* Not NULL: durability by syncfs() barriers (store/fsbarrier.h) instead
     * of per-file and per-directory fsyncs. */
    fs_barrier *barrier;
    bool crlf;
    const char *hostname;
    unsigned core_id;
    unsigned cores_n;
    unsigned batch_max;   /* transactions per group commit at most; 0 = 256 */
    sl_stats_core *stats; /* the core's shard: batches, fsyncs, their histograms */
} store_config;

typedef struct store store;
typedef struct store_txn store_txn;

typedef enum store_event {
    STORE_EV_PROGRESS, /* some pinned buffers were written and released */
    STORE_EV_DONE,     /* committed or failed: read outcomes, then store_txn_free() */
} store_event;

typedef void (*store_event_fn)(void *owner, store_txn *t, store_event ev);

store *store_new(sl_ring *ring, sl_bufring *bufs, const store_config *cfg);
/* Only when no transaction is alive. */
void store_free(store **s);
void store_set_fsync(store *s, bool fsync);

/* Start a commit of the transactions that finished writing, unless one is
 * already running. The core calls this once per loop iteration, so every
 * transaction that finished in that iteration shares one batch. */
void store_kick(store *s);
/* Transactions alive (for shutdown). */
size_t store_txns_alive(const store *s);

store_txn *store_txn_new(store *s, void *owner, store_event_fn fn);

/* Does the maildir folder at path exist (cached per core once seen)? */
bool store_folder_exists(store *s, const char *path);

/* Add a recipient whose mail goes to the maildir (or Maildir++ folder) at
 * path, creating it if needed. Returns the recipient's index, or -1 with
 * *outcome_out set if the maildir cannot be prepared (the recipient is then
 * not part of the transaction). folder: true for a Maildir++ subfolder
 * (gets a "maildirfolder" file when created). Call before store_txn_begin. */
int store_txn_add_rcpt(store_txn *t, const char *path, bool folder, store_outcome *outcome_out);
size_t store_txn_rcpt_count(const store_txn *t);

/* Open the tmp/ files and queue the header block (copied). */
void store_txn_begin(store_txn *t, const uint8_t *hdr, size_t hdr_len);
/* Queue content bytes that live in receive buffer bid (pinned here until
 * written). */
void store_txn_append(store_txn *t, const uint8_t *p, size_t n, uint16_t bid);
/* Queue one line ending ("\n", or "\r\n" when crlf). */
void store_txn_eol(store_txn *t);
/* true while too many bytes/buffers wait for their write: stop reading. */
bool store_txn_congested(const store_txn *t);
/* No more content. size/vsize go into the file name (,S= ,W=). */
void store_txn_finish(store_txn *t, uint64_t size, uint64_t vsize);
/* The owner goes away. Unfinished: files are removed and the transaction
 * freed. Finished: it commits, then frees itself without calling back. */
void store_txn_abandon(store_txn **t);

store_outcome store_txn_outcome(const store_txn *t, size_t rcpt_index);
/* The stored file name (base, without ,S=) for logs. */
const char *store_txn_name(const store_txn *t);
/* After STORE_EV_DONE. */
void store_txn_free(store_txn **t);

#endif
