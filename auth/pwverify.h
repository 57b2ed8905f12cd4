/* auth/pwverify.h: worker threads for slow password work (crypt(3),
 * argon2, PBKDF2/SCRAM derivation), so one slow hash never stalls the auth
 * thread's other clients.
 *
 * The auth thread submits jobs into a bounded queue (copied in; -EAGAIN
 * when full) and polls pwverify_eventfd() with its ring; workers run
 * auth/pwscheme.h and put finished jobs on a done queue, bumping the
 * eventfd; the auth thread drains them in batches. Every job slot is wiped
 * (explicit_bzero) when it is drained or dropped: jobs carry plaintext
 * passwords and stored hashes.
 *
 * pwverify_submit / pwverify_drain / pwverify_eventfd: the owning (auth)
 * thread only. */
#ifndef SL_PWVERIFY_H
#define SL_PWVERIFY_H

#include "auth/pwscheme.h"
#include "auth/userdb.h"

#define PWVERIFY_PLAIN_BYTES_MAX 1024 /* the SASL mechanisms hand over at most this */
#define PWVERIFY_SCHEME_BYTES_MAX 32
#define PWVERIFY_REALM_BYTES_MAX 256

typedef struct pwverify pwverify;

typedef enum pwverify_op {
    PWVERIFY_PLAIN = 0,  /* pw_verify(stored, scheme, user, plain) */
    PWVERIFY_CREDENTIALS, /* pw_credentials(stored, scheme, kind, user, realm) */
} pwverify_op;

typedef struct pwverify_job {
    uint64_t token; /* opaque, echoed */
    pwverify_op op;
    /* in */
    char stored[USERDB_PASSWORD_BYTES_MAX];
    char scheme[PWVERIFY_SCHEME_BYTES_MAX]; /* default_pass_scheme */
    char user[USERDB_ADDR_BYTES_MAX];
    char realm[PWVERIFY_REALM_BYTES_MAX];
    pw_cred_kind kind;
    size_t plain_len;
    uint8_t plain[PWVERIFY_PLAIN_BYTES_MAX];
    /* out */
    pw_status status;
    size_t cred_len;
    uint8_t cred[PW_CRED_BYTES_MAX];
} pwverify_job;

/* Start threads_n (>= 1) workers; at most queue_max (>= 1) jobs may be
 * submitted and not yet drained. */
pwverify *pwverify_new(unsigned threads_n, size_t queue_max);

/* Stop and join the workers, wipe and drop every job, free. */
void pwverify_free(pwverify **v);

/* Copy job in (its output fields are ignored). 0, or -EAGAIN when
 * queue_max jobs are in the queue, running or waiting to be drained. The
 * caller wipes its own copy. */
int pwverify_submit(pwverify *v, const pwverify_job *job);

/* Readable when finished jobs wait; the caller reads it (its ring polls it). */
int pwverify_eventfd(const pwverify *v);

/* Move up to max finished jobs into out (wiping their slots); returns how
 * many. The caller wipes out[] after use (explicit_bzero). */
size_t pwverify_drain(pwverify *v, pwverify_job *out, size_t max);

/* Run one job on the calling thread (the fast path and the workers). */
void pwverify_run(pwverify_job *job);

#endif
