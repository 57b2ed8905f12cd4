/* store/maildir_clean.h: removal of stale files in maildir tmp/ folders.
 *
 * A crash between creating a tmp/ file and renaming it into new/ leaves the
 * file behind; by design it is never visible to readers, so it is deleted
 * once old enough, as qmail's maildir(5) and Dovecot do. Blocking filesystem
 * walk: call it from a background thread, never from a ring thread. */
#ifndef SL_MAILDIR_CLEAN_H
#define SL_MAILDIR_CLEAN_H

#include <stdint.h>

/* How many directory levels below root are examined. Enough for
 * root/domain/user/Maildir/.Folder/tmp; deeper trees are left alone. */
#define MAILDIR_CLEAN_DEPTH_MAX 6

/* Walks root recursively (directories up to MAILDIR_CLEAN_DEPTH_MAX levels
 * below it; symlinks below root are never followed), and in every directory
 * named "tmp" whose parent also has "new" and "cur" directories, unlinks the
 * regular files whose mtime is older than now_sec - max_age_sec. A subtree
 * that cannot be read is skipped. Returns the number of files removed, or
 * -errno if root cannot be opened. Thread-safe (no shared state, no chdir). */
long maildir_clean_tmp(const char *root, int64_t max_age_sec, int64_t now_sec);

#endif
