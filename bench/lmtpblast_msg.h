/* bench/lmtpblast_msg.h: the messages lmtpblast sends.
 *
 * A message is a small per-message part (Message-ID and To, built into the
 * connection's buffer) followed by a template shared by every message of the
 * same size (From, Subject, Date, the body). Templates are built once at
 * start, in two forms: raw (the BDAT chunk) and dot-stuffed with the final
 * ".\r\n" (the DATA stream), so sending a message copies only the small part. */
#ifndef LMTPBLAST_MSG_H
#define LMTPBLAST_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Body lines are 76 characters plus CRLF, as the task asks. */
#define LMTPBLAST_MSG_LINE_CHARS 76
#define LMTPBLAST_MSG_ADDR_MAX 256

/* A user pattern such as "user%04d@example.test": a prefix, one decimal
 * conversion (%d, %u, %Nd, %0Nd) and a suffix; "%%" is a literal '%'.
 * Formatted here rather than by printf so the pattern is never a format. */
typedef struct lmtpblast_pattern {
    char prefix[LMTPBLAST_MSG_ADDR_MAX];
    char suffix[LMTPBLAST_MSG_ADDR_MAX];
    size_t prefix_len;
    size_t suffix_len;
    unsigned width;
    bool zero_pad;
} lmtpblast_pattern;

/* Returns 0, or -1 with a reason in err. */
int lmtpblast_msg_pattern_parse(const char *pat, lmtpblast_pattern *out, char *err, size_t err_len);

/* Writes the address for user n to out (lmtpblast_msg_addr_len_max(p)
 * bytes at most), not NUL-terminated; returns its length. */
size_t lmtpblast_msg_addr_len_max(const lmtpblast_pattern *p);
size_t lmtpblast_msg_format_user(const lmtpblast_pattern *p, uint32_t n, uint8_t *out);

typedef struct lmtpblast_tmpl {
    size_t size_target; /* the --size this template is for */
    uint8_t *raw;       /* static headers + body, as the recipient sees it */
    size_t raw_len;
    uint8_t *stuffed; /* raw, dot-stuffed, then ".\r\n" */
    size_t stuffed_len;
} lmtpblast_tmpl;

/* Builds a template so that var_bytes (the expected per-message part) plus
 * raw_len comes to about size_target. Allocates; lives until _deinit. */
void lmtpblast_msg_tmpl_init(lmtpblast_tmpl *t, size_t size_target, size_t var_bytes,
                             const char *from, time_t date);
void lmtpblast_msg_tmpl_deinit(lmtpblast_tmpl *t);

/* The per-message header part: Message-ID <blast.CONN.N.SEED@lmtpblast> and
 * a To: header folded one address per line. addrs[i] has addr_lens[i] bytes.
 * out must hold lmtpblast_msg_var_bytes_max(); returns the length. */
size_t lmtpblast_msg_var_build(uint8_t *out, unsigned conn, uint64_t n, uint64_t seed,
                               const uint8_t *const *addrs, const size_t *addr_lens,
                               unsigned rcpts);
size_t lmtpblast_msg_var_bytes_max(unsigned rcpts, size_t addr_len_max);

#endif
