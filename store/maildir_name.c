/* store/maildir_name.c: unique Maildir names (see maildir_name.h).
 *
 * Dovecot's layout "<sec>.M<usec>P<pid>.<host>" makes a name unique by
 * bumping usec when the clock has not moved. We add DJB's Q<n> (deliveries by
 * this process) instead, so several cores can name files in the same
 * microsecond without sharing a clock or a lock. Readers must not parse the
 * name, so the extra field is safe for Dovecot and every other reader. */
#include "store/maildir_name.h"

#include "core/base/base.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* DJB: '/' and ':' may not appear in a name; a control byte (newline above
 * all) would break every tool that lists a maildir line by line. */
static bool maildir_name_host_must_escape(uint8_t c)
{
    return c == '/' || c == ':' || c < 0x20 || c == 0x7f;
}

static void maildir_name_host_escape(const char *hostname, char *out, size_t out_len)
{
    size_t o = 0;
    for (const char *p = hostname; *p != '\0'; p++) {
        uint8_t c = (uint8_t)*p;
        SL_ASSERT(o + 4 < out_len);
        if (maildir_name_host_must_escape(c)) {
            out[o++] = '\\';
            out[o++] = (char)('0' + ((c >> 6) & 7));
            out[o++] = (char)('0' + ((c >> 3) & 7));
            out[o++] = (char)('0' + (c & 7));
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

void maildir_namer_init(maildir_namer *n, const char *hostname, long pid, unsigned core_id,
                        unsigned cores_n)
{
    SL_ASSERT(hostname != NULL);
    size_t host_len = strlen(hostname);
    SL_ASSERT(host_len > 0);
    SL_ASSERT(host_len <= MAILDIR_NAME_HOST_LEN_MAX);
    SL_ASSERT(pid > 0);
    SL_ASSERT(cores_n > 0);
    SL_ASSERT(core_id < cores_n);

    memset(n, 0, sizeof(*n));
    maildir_name_host_escape(hostname, n->host, sizeof(n->host));
    n->pid = pid;
    n->q_next = core_id;
    n->q_step = cores_n;
}

/* snprintf into out; returns the length, or 0 (and an empty string) when it
 * did not fit, so a caller never sees a truncated name. */
static size_t maildir_name_fit(int written, char *out, size_t out_len)
{
    SL_ASSERT(written > 0);
    if ((size_t)written >= out_len) {
        if (out_len > 0) {
            out[0] = '\0';
        }
        return 0;
    }
    return (size_t)written;
}

size_t maildir_name_base(maildir_namer *n, int64_t sec, uint32_t usec, char *out, size_t out_len)
{
    SL_ASSERT(sec >= 0);
    SL_ASSERT(usec < 1000000);

    uint64_t q = n->q_next;
    n->q_next += n->q_step;
    int written = snprintf(out, out_len, "%" PRId64 ".M%" PRIu32 "P%ldQ%" PRIu64 ".%s", sec,
                           usec, n->pid, q, n->host);
    return maildir_name_fit(written, out, out_len);
}

size_t maildir_name_final(const char *base, uint64_t size, uint64_t vsize, char *out,
                          size_t out_len)
{
    SL_ASSERT(base != NULL);
    SL_ASSERT(base[0] != '\0');

    int written = snprintf(out, out_len, "%s,S=%" PRIu64 ",W=%" PRIu64, base, size, vsize);
    return maildir_name_fit(written, out, out_len);
}
