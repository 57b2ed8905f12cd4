/* store/maildir_name.h: unique Maildir file names, as Dovecot writes them.
 *
 * tmp/ gets "<sec>.M<usec>P<pid>Q<n>.<host>"; new/ gets that base plus
 * ",S=<size>,W=<vsize>" so Dovecot (and other readers) can skip computing the
 * sizes. Uniqueness comes from the time and pid (across processes and
 * restarts) and from Q (within one process: each delivery core counts in its
 * own residue class, so cores never share a number and never need a lock).
 * Pure: no I/O, no clock; the caller passes the time in. */
#ifndef SL_MAILDIR_NAME_H
#define SL_MAILDIR_NAME_H

#include <stddef.h>
#include <stdint.h>

/* Longest hostname accepted, before escaping (DNS allows 253). */
#define MAILDIR_NAME_HOST_LEN_MAX 255
/* Escaping turns one byte into at most four ("\057"). */
#define MAILDIR_NAME_HOST_ESC_LEN_MAX (4 * MAILDIR_NAME_HOST_LEN_MAX)
/* A buffer of this size always holds a base name (20-digit numbers, the
 * separators, the escaped host and the NUL). */
#define MAILDIR_NAME_BASE_LEN_MAX (4 * 20 + 8 + MAILDIR_NAME_HOST_ESC_LEN_MAX + 1)
/* ... and this one a final name. */
#define MAILDIR_NAME_FINAL_LEN_MAX (MAILDIR_NAME_BASE_LEN_MAX + 2 * 20 + 6)

/* One per delivery core; not thread-safe, lives on its core. */
typedef struct maildir_namer {
    char host[MAILDIR_NAME_HOST_ESC_LEN_MAX + 1]; /* escaped, NUL-terminated */
    long pid;
    uint64_t q_next;  /* the Q of the next name */
    uint64_t q_step;  /* cores_n */
} maildir_namer;

/* hostname is escaped DJB-style: '/' -> "\057", ':' -> "\072" (a ':' would
 * collide with the info suffix); control bytes are escaped the same way, so a
 * name never holds a newline. hostname must be non-empty and at most
 * MAILDIR_NAME_HOST_LEN_MAX bytes; it is copied. core_id/cores_n make Q<n>
 * unique across delivery cores of one process: n runs core_id,
 * core_id + cores_n, ... (core_id < cores_n). */
void maildir_namer_init(maildir_namer *n, const char *hostname, long pid, unsigned core_id,
                        unsigned cores_n);

/* Writes the NUL-terminated base name for time (sec, usec) into out; returns
 * its length, or 0 if out_len is too small. Each call advances Q, even one that
 * fails (a gap in Q is harmless; a repeat would not be). sec >= 0,
 * usec < 1000000. */
size_t maildir_name_base(maildir_namer *n, int64_t sec, uint32_t usec, char *out, size_t out_len);

/* base + ",S=<size>,W=<vsize>" into out, NUL-terminated; returns the length,
 * or 0 if out_len is too small. size is the file's bytes, vsize the same
 * message counted with CRLF line endings (RFC822.SIZE). */
size_t maildir_name_final(const char *base, uint64_t size, uint64_t vsize, char *out,
                          size_t out_len);

#endif
