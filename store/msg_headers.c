/* store/msg_headers.c: the per-delivery header block (see msg_headers.h).
 *
 * The block is emitted twice through one writer: a counting pass, then (only
 * if it fits) a writing pass. One code path for both means the size reported
 * can never disagree with the bytes written. */
#include "store/msg_headers.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the range a 4-digit year covers. */
#define MSG_HEADERS_SEC_MIN INT64_C(-62135596800)
#define MSG_HEADERS_SEC_MAX INT64_C(253402300799)
#define MSG_HEADERS_DAY_SEC 86400
/* Days from 0000-03-01 to 1970-01-01 in the proleptic Gregorian calendar. */
#define MSG_HEADERS_EPOCH_SHIFT_DAYS 719468
#define MSG_HEADERS_ERA_DAYS 146097

typedef struct msg_headers_writer {
    uint8_t *out; /* NULL in the counting pass */
    size_t len;
    size_t lines;
    bool crlf;
} msg_headers_writer;

static void msg_headers_put(msg_headers_writer *w, const void *p, size_t n)
{
    if (w->out != NULL) {
        memcpy(w->out + w->len, p, n);
    }
    w->len += n;
}

/* Our own text: literals and numbers, trusted. */
static void msg_headers_put_str(msg_headers_writer *w, const char *s)
{
    msg_headers_put(w, s, strlen(s));
}

/* A value that came from the wire: a CR or LF would end the header and let the
 * client forge its own lines, a NUL would cut it short for C readers. */
static void msg_headers_put_value(msg_headers_writer *w, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == '\r' || c == '\n' || c == '\0') {
            c = ' ';
        }
        msg_headers_put(w, &c, 1);
    }
}

static void msg_headers_put_value_str(msg_headers_writer *w, const char *s)
{
    msg_headers_put_value(w, (const uint8_t *)s, strlen(s));
}

static void msg_headers_put_eol(msg_headers_writer *w)
{
    if (w->crlf) {
        msg_headers_put(w, "\r\n", 2);
    } else {
        msg_headers_put(w, "\n", 1);
    }
    w->lines++;
}

/* A continuation line of a folded header. */
static void msg_headers_put_fold(msg_headers_writer *w)
{
    msg_headers_put_eol(w);
    msg_headers_put(w, "\t", 1);
}

static void msg_headers_put_path(msg_headers_writer *w, sl_slice addr)
{
    msg_headers_put(w, "<", 1);
    msg_headers_put_value(w, addr.ptr, addr.len);
    msg_headers_put(w, ">", 1);
}

/* "Received: from <lhlo> ([<ip>])" as Dovecot writes it; an empty LHLO
 * argument becomes "unknown", as in Dovecot. */
static void msg_headers_put_received_from(msg_headers_writer *w, const msg_headers_in *in)
{
    msg_headers_put_str(w, "Received: from ");
    if (in->lhlo_name[0] == '\0') {
        msg_headers_put_str(w, "unknown");
    } else {
        msg_headers_put_value_str(w, in->lhlo_name);
    }
    if (in->client_ip[0] != '\0') {
        msg_headers_put_str(w, " ([");
        msg_headers_put_value_str(w, in->client_ip);
        msg_headers_put_str(w, "])");
    }
}

static void msg_headers_put_received(msg_headers_writer *w, const msg_headers_in *in)
{
    msg_headers_put_received_from(w, in);
    msg_headers_put_fold(w);
    msg_headers_put_str(w, "by ");
    msg_headers_put_value_str(w, in->hostname);
    msg_headers_put_str(w, in->smtputf8 ? " with UTF8LMTP" : " with LMTP");
    msg_headers_put_fold(w);
    msg_headers_put_str(w, "id ");
    msg_headers_put_value_str(w, in->trans_id);
    msg_headers_put_fold(w);
    msg_headers_put_str(w, "(envelope-from ");
    msg_headers_put_path(w, in->sender);
    msg_headers_put_str(w, ")");
    if (in->single_rcpt) {
        msg_headers_put_fold(w);
        msg_headers_put_str(w, "for ");
        msg_headers_put_path(w, in->rcpt);
    }
    char date[MSG_HEADERS_DATE_LEN_MAX];
    size_t date_len = msg_headers_date(in->now_sec, in->tz_offset_min, date, sizeof(date));
    msg_headers_put_str(w, "; ");
    msg_headers_put(w, date, date_len);
    msg_headers_put_eol(w);
}

static void msg_headers_emit(msg_headers_writer *w, const msg_headers_in *in)
{
    msg_headers_put_str(w, "Return-Path: ");
    msg_headers_put_path(w, in->sender);
    msg_headers_put_eol(w);
    if (in->single_rcpt) {
        msg_headers_put_str(w, "Delivered-To: ");
        msg_headers_put_value(w, in->rcpt.ptr, in->rcpt.len);
        msg_headers_put_eol(w);
    }
    msg_headers_put_received(w, in);
}

size_t msg_headers_format(const msg_headers_in *in, uint8_t *out, size_t out_len,
                          size_t *lines_out)
{
    SL_ASSERT(in->lhlo_name != NULL);
    SL_ASSERT(in->client_ip != NULL);
    SL_ASSERT(in->hostname != NULL);
    SL_ASSERT(in->trans_id != NULL);
    SL_ASSERT(out != NULL || out_len == 0);

    msg_headers_writer count = {.out = NULL, .crlf = in->crlf};
    msg_headers_emit(&count, in);
    if (lines_out != NULL) {
        *lines_out = count.lines;
    }
    if (count.len <= out_len) {
        msg_headers_writer write = {.out = out, .crlf = in->crlf};
        msg_headers_emit(&write, in);
        SL_ASSERT(write.len == count.len);
    }
    return count.len;
}

/* Gregorian date of a day count since 1970-01-01 (H. Hinnant's
 * civil_from_days): shift to eras of 400 years starting 0000-03-01, so the
 * leap day is the last day of a year and every era has the same layout. */
static void msg_headers_civil(int64_t days, int64_t *year_out, unsigned *month_out,
                              unsigned *mday_out)
{
    int64_t z = days + MSG_HEADERS_EPOCH_SHIFT_DAYS;
    int64_t era = (z >= 0 ? z : z - (MSG_HEADERS_ERA_DAYS - 1)) / MSG_HEADERS_ERA_DAYS;
    unsigned doe = (unsigned)(z - era * MSG_HEADERS_ERA_DAYS);             /* [0, 146096] */
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    unsigned mp = (5 * doy + 2) / 153;                                     /* Mar = 0 */
    unsigned month = mp < 10 ? mp + 3 : mp - 9;

    *mday_out = doy - (153 * mp + 2) / 5 + 1;
    *month_out = month;
    *year_out = (int64_t)yoe + era * 400 + (month <= 2 ? 1 : 0);
}

size_t msg_headers_date(int64_t sec, int tz_offset_min, char *out, size_t out_len)
{
    static const char *const wdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    SL_ASSERT(out_len >= MSG_HEADERS_DATE_LEN_MAX);
    SL_ASSERT(tz_offset_min > -24 * 60);
    SL_ASSERT(tz_offset_min < 24 * 60);
    SL_ASSERT(sec >= MSG_HEADERS_SEC_MIN - MSG_HEADERS_DAY_SEC);
    SL_ASSERT(sec <= MSG_HEADERS_SEC_MAX + MSG_HEADERS_DAY_SEC);

    int64_t local = sec + (int64_t)tz_offset_min * 60;
    SL_ASSERT(local >= MSG_HEADERS_SEC_MIN);
    SL_ASSERT(local <= MSG_HEADERS_SEC_MAX);
    /* Floor division: C truncates toward zero, dates before 1970 need floor. */
    int64_t days = local / MSG_HEADERS_DAY_SEC;
    int64_t sod = local % MSG_HEADERS_DAY_SEC;
    if (sod < 0) {
        sod += MSG_HEADERS_DAY_SEC;
        days--;
    }
    int64_t year;
    unsigned month;
    unsigned mday;
    msg_headers_civil(days, &year, &month, &mday);
    /* 1970-01-01 was a Thursday (index 4). */
    int64_t wday = ((days % 7) + 7 + 4) % 7;
    int off = tz_offset_min < 0 ? -tz_offset_min : tz_offset_min;

    int n = snprintf(out, out_len, "%s, %02u %s %04" PRId64 " %02u:%02u:%02u %c%02d%02d",
                     wdays[wday], mday, months[month - 1], year, (unsigned)(sod / 3600),
                     (unsigned)(sod / 60 % 60), (unsigned)(sod % 60),
                     tz_offset_min < 0 ? '-' : '+', off / 60, off % 60);
    SL_ASSERT(n > 0);
    SL_ASSERT((size_t)n < out_len);
    return (size_t)n;
}
