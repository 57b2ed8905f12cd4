/* bench/lmtpblast_msg.c: see lmtpblast_msg.h. */
#include "bench/lmtpblast_msg.h"

#include "core/base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIDTH_MAX 20

/* Appends ch to a bounded literal part; false when it would not fit. */
static bool lit_add(char *buf, size_t *len, char ch)
{
    if (*len + 1 >= LMTPBLAST_MSG_ADDR_MAX) {
        return false;
    }
    buf[(*len)++] = ch;
    buf[*len] = '\0';
    return true;
}

int lmtpblast_msg_pattern_parse(const char *pat, lmtpblast_pattern *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    bool seen_conv = false;
    for (const char *s = pat; *s != '\0'; s++) {
        char *buf = seen_conv ? out->suffix : out->prefix;
        size_t *len = seen_conv ? &out->suffix_len : &out->prefix_len;
        if (*s != '%' || s[1] == '%') {
            s += *s == '%';
            if (!lit_add(buf, len, *s)) {
                snprintf(err, err_len, "user pattern too long");
                return -1;
            }
            continue;
        }
        if (seen_conv) {
            snprintf(err, err_len, "user pattern has more than one %% conversion");
            return -1;
        }
        s++;
        if (*s == '0') {
            out->zero_pad = true;
            s++;
        }
        while (*s >= '0' && *s <= '9') {
            out->width = out->width * 10 + (unsigned)(*s - '0');
            if (out->width > WIDTH_MAX) {
                snprintf(err, err_len, "user pattern width above %d", WIDTH_MAX);
                return -1;
            }
            s++;
        }
        if (*s != 'd' && *s != 'u' && *s != 'i') {
            snprintf(err, err_len, "user pattern needs %%d, %%u or %%0Nd");
            return -1;
        }
        seen_conv = true;
    }
    if (!seen_conv) {
        snprintf(err, err_len, "user pattern has no %%d conversion");
        return -1;
    }
    return 0;
}

size_t lmtpblast_msg_format_user(const lmtpblast_pattern *p, uint32_t n, uint8_t *out)
{
    char digits[WIDTH_MAX + 1];
    unsigned nd = 0;
    do {
        digits[nd++] = (char)('0' + n % 10);
        n /= 10;
    } while (n != 0);
    size_t len = 0;
    memcpy(out, p->prefix, p->prefix_len);
    len += p->prefix_len;
    for (unsigned pad = nd; pad < p->width; pad++) {
        out[len++] = p->zero_pad ? '0' : ' ';
    }
    while (nd > 0) {
        out[len++] = (uint8_t)digits[--nd];
    }
    memcpy(out + len, p->suffix, p->suffix_len);
    return len + p->suffix_len;
}

/* Body line i, LMTPBLAST_MSG_LINE_CHARS long or shorter for the last one.
 * Every 29th line starts with a dot so DATA's dot-stuffing is exercised. */
static size_t body_line(uint8_t *out, size_t i, size_t chars)
{
    static const char alphabet[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
    char head[32];
    int hl = snprintf(head, sizeof(head), "%slmtpblast line %06zu ", i % 29 == 5 ? "." : "", i);
    size_t n = 0;
    for (; n < chars && n < (size_t)hl; n++) {
        out[n] = (uint8_t)head[n];
    }
    for (; n < chars; n++) {
        out[n] = (uint8_t)alphabet[(n + i) % (sizeof(alphabet) - 1)];
    }
    out[n++] = '\r';
    out[n++] = '\n';
    return n;
}

static void build_raw(lmtpblast_tmpl *t, size_t var_bytes, const char *from, time_t date)
{
    char datebuf[64];
    struct tm tm;
    localtime_r(&date, &tm);
    strftime(datebuf, sizeof(datebuf), "%a, %d %b %Y %H:%M:%S %z", &tm);
    char hdr[1024];
    int hl = snprintf(hdr, sizeof(hdr),
                      "From: <%s>\r\nSubject: lmtpblast %zu bytes\r\nDate: %s\r\n"
                      "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
                      from, t->size_target, datebuf);
    SL_ASSERT(hl > 0);
    SL_ASSERT((size_t)hl < sizeof(hdr));
    size_t fixed = var_bytes + (size_t)hl;
    size_t body = t->size_target > fixed ? t->size_target - fixed : 0;
    t->raw = malloc((size_t)hl + body + LMTPBLAST_MSG_LINE_CHARS + 2);
    SL_ASSERT(t->raw != NULL);
    memcpy(t->raw, hdr, (size_t)hl);
    size_t len = (size_t)hl;
    size_t left = body;
    /* Full lines, then one shorter line for the rest; a remainder under 3
     * bytes (no room for a character and CRLF) is dropped: "about" the size. */
    for (size_t i = 0; left >= 3; i++) {
        size_t chars = left >= LMTPBLAST_MSG_LINE_CHARS + 2 ? LMTPBLAST_MSG_LINE_CHARS : left - 2;
        size_t n = body_line(t->raw + len, i, chars);
        len += n;
        left -= n;
    }
    t->raw_len = len;
}

/* The DATA form: a line starting with '.' gets another '.', then ".\r\n". */
static void build_stuffed(lmtpblast_tmpl *t)
{
    size_t dots = 0;
    for (size_t i = 0; i < t->raw_len; i++) {
        bool line_start = i == 0 || t->raw[i - 1] == '\n';
        dots += line_start && t->raw[i] == '.';
    }
    t->stuffed = malloc(t->raw_len + dots + 3);
    SL_ASSERT(t->stuffed != NULL);
    size_t o = 0;
    for (size_t i = 0; i < t->raw_len; i++) {
        bool line_start = i == 0 || t->raw[i - 1] == '\n';
        if (line_start && t->raw[i] == '.') {
            t->stuffed[o++] = '.';
        }
        t->stuffed[o++] = t->raw[i];
    }
    memcpy(t->stuffed + o, ".\r\n", 3);
    t->stuffed_len = o + 3;
}

void lmtpblast_msg_tmpl_init(lmtpblast_tmpl *t, size_t size_target, size_t var_bytes,
                             const char *from, time_t date)
{
    memset(t, 0, sizeof(*t));
    t->size_target = size_target;
    build_raw(t, var_bytes, from, date);
    /* The raw form must end a line so the stuffed form's ".\r\n" ends DATA. */
    SL_ASSERT(t->raw_len >= 2);
    SL_ASSERT(t->raw[t->raw_len - 1] == '\n');
    build_stuffed(t);
}

void lmtpblast_msg_tmpl_deinit(lmtpblast_tmpl *t)
{
    free(t->raw);
    free(t->stuffed);
    memset(t, 0, sizeof(*t));
}

size_t lmtpblast_msg_addr_len_max(const lmtpblast_pattern *p)
{
    /* A uint32_t has at most 10 digits; the width may ask for more. */
    return p->prefix_len + (p->width > 10 ? p->width : 10) + p->suffix_len;
}

size_t lmtpblast_msg_var_bytes_max(unsigned rcpts, size_t addr_len_max)
{
    /* Message-ID with two 20-digit numbers and "To: " fit in 128; each
     * address adds "<>" and ",\r\n ", and the header ends with CRLF. */
    return 128 + (size_t)rcpts * (addr_len_max + 6) + 2;
}

size_t lmtpblast_msg_var_build(uint8_t *out, unsigned conn, uint64_t n, uint64_t seed,
                               const uint8_t *const *addrs, const size_t *addr_lens, unsigned rcpts)
{
    SL_ASSERT(rcpts > 0);
    int l = snprintf((char *)out, 128, "Message-ID: <blast.%u.%llu.%llu@lmtpblast>\r\nTo: ", conn,
                     (unsigned long long)n, (unsigned long long)seed);
    SL_ASSERT(l > 0);
    SL_ASSERT(l < 128);
    size_t len = (size_t)l;
    for (unsigned i = 0; i < rcpts; i++) {
        if (i > 0) {
            /* Folded: one address per line keeps lines short for any count. */
            memcpy(out + len, ",\r\n ", 4);
            len += 4;
        }
        out[len++] = '<';
        memcpy(out + len, addrs[i], addr_lens[i]);
        len += addr_lens[i];
        out[len++] = '>';
    }
    out[len++] = '\r';
    out[len++] = '\n';
    return len;
}
