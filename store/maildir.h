/* store/maildir.h: creating maildirs and remembering, per core, which ones
 * exist (and on which filesystem), so steady-state deliveries make no
 * mkdir/stat calls. Owned by one core's store; not thread-safe. */
#ifndef SL_MAILDIR_H
#define SL_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct maildir_cache maildir_cache;

maildir_cache *maildir_cache_new(void);
void maildir_cache_free(maildir_cache **c);

/* Make sure path/{tmp,new,cur} exist (mode 0700, parents as needed; for a
 * Maildir++ folder also the "maildirfolder" marker) and report the device
 * it lives on. Returns 0 or -errno. Blocking on a cache miss only. */
int maildir_prepare(maildir_cache *c, const char *path, bool folder, dev_t *dev_out);

/* Does path/new exist? Positive answers are cached. */
bool maildir_exists(maildir_cache *c, const char *path);

#endif
