/* tests/unit/proto/test_lmtp_parser.c: table-driven tests of proto/lmtp_parser.c.
 *
 * Every case is fed (tests/unit/feed.h) whole, one byte at a time, in seeded random splits and in
 * every two-piece split. Each run renders its events into a transcript (body
 * spans joined per line, so split points do not show) and every transcript
 * must equal the case's expected one. Each input piece is copied into its own
 * heap buffer and freed once consumed, so a slice that outlives its buffer is
 * caught (by ASan, or by the poison written before the free). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/base.h"
#include "tests/unit/feed.h"
#include "proto/lmtp_parser.h"

#define LINE_MAX_TEST 512

/* ---- transcript text ---- */

/* Printable ASCII as is; everything else escaped so a transcript is one line
 * per event. */
static void tb_bytes(tbuf *t, sl_slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        uint8_t b = s.ptr[i];
        if (b == '\\') {
            tb_str(t, "\\\\");
        } else if (b == '\r') {
            tb_str(t, "\\r");
        } else if (b == '\0') {
            tb_str(t, "\\0");
        } else if (b < 0x20 || b >= 0x7f) {
            tb_fmt(t, "\\x%02x", b);
        } else {
            tb_put(t, (const char *)&b, 1);
        }
    }
}

/* ---- rendering events ---- */

static const char *const error_names[] = {
    [LMTP_ERR_NONE] = "NONE",
    [LMTP_ERR_LINE_TOO_LONG] = "LINE_TOO_LONG",
    [LMTP_ERR_UNKNOWN_CMD] = "UNKNOWN_CMD",
    [LMTP_ERR_SYNTAX] = "SYNTAX",
    [LMTP_ERR_BAD_PARAM] = "BAD_PARAM",
    [LMTP_ERR_UNSUPPORTED_PARAM] = "UNSUPPORTED_PARAM",
    [LMTP_ERR_NEEDS_ARG] = "NEEDS_ARG",
    [LMTP_ERR_EXTRA_ARG] = "EXTRA_ARG",
};

static const char *const body_names[] = {
    [LMTP_BODY_NONE] = "NONE",
    [LMTP_BODY_7BIT] = "7BIT",
    [LMTP_BODY_8BITMIME] = "8BITMIME",
    [LMTP_BODY_BINARYMIME] = "BINARYMIME",
};

static void render_slice_field(tbuf *t, const char *name, sl_slice s, bool always)
{
    if (s.len == 0 && !always) {
        return;
    }
    tb_fmt(t, " %s=", name);
    tb_bytes(t, s);
}

/* Every field that differs from its zero value is shown, so a stray field
 * makes a transcript differ. */
static void render_fields(tbuf *t, const lmtp_event *ev)
{
    bool is_path_cmd =
        ev->type == LMTP_EV_COMMAND && (ev->cmd == LMTP_CMD_MAIL || ev->cmd == LMTP_CMD_RCPT);
    render_slice_field(t, "arg", ev->arg, false);
    render_slice_field(t, "path", ev->path, is_path_cmd);
    if (ev->path_has_8bit) {
        tb_str(t, " 8bit");
    }
    if (ev->path_is_postmaster) {
        tb_str(t, " postmaster");
    }
    if (ev->body != LMTP_BODY_NONE) {
        tb_fmt(t, " body=%s", body_names[ev->body]);
    }
    if (ev->has_size) {
        tb_fmt(t, " size=%" PRIu64, ev->size);
    }
    if (ev->smtputf8) {
        tb_str(t, " smtputf8");
    }
    render_slice_field(t, "orcpt", ev->orcpt, false);
    if ((ev->type == LMTP_EV_COMMAND && ev->cmd == LMTP_CMD_BDAT) || ev->bdat_size != 0) {
        tb_fmt(t, " n=%" PRIu64, ev->bdat_size);
    }
    if (ev->bdat_last) {
        tb_str(t, " last");
    }
}

typedef struct transcript {
    tbuf text;
    bool line_open; /* body content was written without its eol yet */
} transcript;

static void close_body_line(transcript *tr)
{
    if (tr->line_open) {
        tb_str(&tr->text, "[noeol]\n");
        tr->line_open = false;
    }
}

static void render_span(transcript *tr, const lmtp_event *ev)
{
    if (!tr->line_open) {
        tb_str(&tr->text, "> ");
        tr->line_open = true;
    }
    tb_bytes(&tr->text, ev->span);
    if (ev->eol) {
        tb_str(&tr->text, "\n");
        tr->line_open = false;
    }
}

static void render_event(transcript *tr, const lmtp_event *ev)
{
    if (ev->type == LMTP_EV_BODY_SPAN) {
        render_span(tr, ev);
        return;
    }
    close_body_line(tr);
    tbuf *t = &tr->text;
    switch (ev->type) {
    case LMTP_EV_COMMAND:
        tb_fmt(t, "CMD %s", lmtp_cmd_name(ev->cmd));
        render_fields(t, ev);
        break;
    case LMTP_EV_BAD_COMMAND:
        tb_fmt(t, "BAD %s %s", lmtp_cmd_name(ev->cmd), error_names[ev->error]);
        render_fields(t, ev);
        break;
    case LMTP_EV_DATA_END:
        tb_str(t, "DATA_END");
        break;
    case LMTP_EV_CHUNK_END:
        tb_str(t, ev->bdat_last ? "CHUNK_END last" : "CHUNK_END");
        break;
    default:
        fail_msg("unknown event type %d", (int)ev->type);
    }
    tb_str(t, "\n");
}

/* ---- feeding ---- */

typedef struct run {
    lmtp_parser *p;
    transcript tr;
    bool whole; /* the input is one buffer: no slice may point into p->line */
    const char *how;
} run;

static void check_slice(const run *r, sl_slice s, const uint8_t *piece, size_t n)
{
    if (s.len == 0) {
        return;
    }
    bool in_piece = feed_within(s.ptr, s.len, piece, n);
    bool in_line = feed_within(s.ptr, s.len, r->p->line, sizeof(r->p->line));
    if (!in_piece && !(in_line && !r->whole)) {
        fail_msg("%s: command slice outside the input (in line buffer: %d)", r->how, in_line);
    }
}

static void check_event(const run *r, const lmtp_event *ev, const uint8_t *piece, size_t n)
{
    if (ev->type == LMTP_EV_BODY_SPAN) {
        if (ev->span.len == 0 && !ev->eol) {
            fail_msg("%s: empty body span without eol", r->how);
        }
        bool is_cr = ev->span.len == 1 && ev->span.ptr[0] == '\r';
        if (!feed_within(ev->span.ptr, ev->span.len, piece, n) && !is_cr) {
            fail_msg("%s: body span outside the input", r->how);
        }
        return;
    }
    check_slice(r, ev->arg, piece, n);
    check_slice(r, ev->path, piece, n);
    check_slice(r, ev->orcpt, piece, n);
}

/* What the session would do: accept every well-formed DATA. */
static void act_on_event(run *r, const lmtp_event *ev)
{
    if (ev->type == LMTP_EV_COMMAND && ev->cmd == LMTP_CMD_DATA) {
        lmtp_parser_begin_data(r->p);
        assert_int_equal(lmtp_parser_mode(r->p), LMTP_MODE_DATA);
    }
}

static void run_piece(void *ctx, const uint8_t *piece, size_t n)
{
    run *r = ctx;
    size_t off = 0;
    int idle_events = 0; /* events in a row that consumed nothing */
    while (true) {
        lmtp_event ev;
        size_t used = SIZE_MAX;
        lmtp_parse_rc rc = lmtp_parse(r->p, piece + off, n - off, &used, &ev);
        assert_true(used <= n - off);
        if (rc == LMTP_PARSE_NEED_MORE) {
            assert_int_equal(used, n - off);
            break;
        }
        assert_int_equal(rc, LMTP_PARSE_EVENT);
        idle_events = used == 0 ? idle_events + 1 : 0;
        assert_true(idle_events <= 2);
        check_event(r, &ev, piece + off, n - off);
        render_event(&r->tr, &ev);
        act_on_event(r, &ev);
        off += used;
    }
}

static void run_begin(void *ctx, const char *how, bool whole)
{
    run *r = ctx;
    memset(r, 0, sizeof(*r));
    r->p = malloc(sizeof(*r->p));
    assert_non_null(r->p);
    lmtp_parser_init(r->p, &(lmtp_limits){.line_bytes_max = LINE_MAX_TEST});
    r->how = how;
    r->whole = whole;
}

/* Ends the run and returns its transcript (caller frees). */
static char *run_finish(void *ctx)
{
    run *r = ctx;
    close_body_line(&r->tr);
    tb_str(&r->tr.text, "");
    free(r->p);
    return r->tr.text.ptr;
}

static void check_all_ways(const char *name, const uint8_t *in, size_t len, const char *want)
{
    run r;
    const feed_ops ops = {.begin = run_begin,
                          .piece = run_piece,
                          .finish = run_finish,
                          .ctx = &r,
                          .random_piece_bytes_max = 24};
    feed_check_all_ways(&ops, name, in, len, want);
}

/* ---- the table ---- */

typedef struct lp_case {
    const char *name;
    const char *in;
    size_t in_len;
    const char *want;
} lp_case;

/* sizeof keeps NUL bytes inside the input. */
#define IN(s) s, sizeof(s) - 1

static const lp_case cases[] = {
    /* LHLO, HELO, EHLO */
    {"lhlo", IN("LHLO mx.example.com\r\n"), "CMD LHLO arg=mx.example.com\n"},
    {"lhlo lower case, bare LF", IN("lhlo a\n"), "CMD LHLO arg=a\n"},
    {"lhlo extra spaces", IN("LHLO   a.b  \r\n"), "CMD LHLO arg=a.b\n"},
    {"lhlo no arg", IN("LHLO\r\nLHLO   \r\n"), "BAD LHLO NEEDS_ARG\nBAD LHLO NEEDS_ARG\n"},
    {"lhlo control char", IN("LHLO a\rb\r\n"), "BAD LHLO SYNTAX\n"},
    {"helo and ehlo", IN("HELO a\r\nEhLo b\r\nEHLO\r\n"),
     "CMD HELO arg=a\nCMD EHLO arg=b\nBAD EHLO NEEDS_ARG\n"},

    /* MAIL */
    {"mail", IN("MAIL FROM:<a@b>\r\n"), "CMD MAIL path=a@b\n"},
    {"mail lower case", IN("mail from:<a@b.c>\r\n"), "CMD MAIL path=a@b.c\n"},
    {"mail space after colon", IN("MAIL FROM:  <a@b>\r\n"), "CMD MAIL path=a@b\n"},
    {"mail null path", IN("MAIL FROM:<>\r\n"), "CMD MAIL path=\n"},
    {"mail all params", IN("MAIL FROM:<a@b> BODY=8BITMIME SIZE=10 SMTPUTF8\r\n"),
     "CMD MAIL path=a@b body=8BITMIME size=10 smtputf8\n"},
    {"mail params lower case", IN("MAIL FROM:<a@b> body=7bit  size=0 smtputf8  \r\n"),
     "CMD MAIL path=a@b body=7BIT size=0 smtputf8\n"},
    {"mail body binarymime", IN("MAIL FROM:<> BODY=BinaryMIME\r\n"),
     "CMD MAIL path= body=BINARYMIME\n"},
    {"mail bad body", IN("MAIL FROM:<a@b> BODY=9BIT\r\nMAIL FROM:<a@b> BODY\r\n"),
     "BAD MAIL BAD_PARAM\nBAD MAIL BAD_PARAM\n"},
    {"mail size max", IN("MAIL FROM:<a@b> SIZE=18446744073709551615\r\n"),
     "CMD MAIL path=a@b size=18446744073709551615\n"},
    {"mail size overflow", IN("MAIL FROM:<a@b> SIZE=18446744073709551616\r\n"),
     "BAD MAIL BAD_PARAM\n"},
    {"mail size long overflow", IN("MAIL FROM:<a@b> SIZE=99999999999999999999999\r\n"),
     "BAD MAIL BAD_PARAM\n"},
    {"mail size not digits",
     IN("MAIL FROM:<a@b> SIZE=12a\r\nMAIL FROM:<a@b> SIZE=\r\nMAIL FROM:<a@b> SIZE\r\n"
        "MAIL FROM:<a@b> SIZE=-1\r\n"),
     "BAD MAIL BAD_PARAM\nBAD MAIL BAD_PARAM\nBAD MAIL BAD_PARAM\nBAD MAIL BAD_PARAM\n"},
    {"mail duplicate param", IN("MAIL FROM:<a@b> SIZE=1 SIZE=2\r\n"), "BAD MAIL BAD_PARAM\n"},
    {"mail smtputf8 with value", IN("MAIL FROM:<a@b> SMTPUTF8=yes\r\n"), "BAD MAIL BAD_PARAM\n"},
    {"mail unsupported params",
     IN("MAIL FROM:<a@b> RET=FULL\r\nMAIL FROM:<a@b> AUTH=<>\r\nMAIL FROM:<a@b> ORCPT=x;y\r\n"),
     "BAD MAIL UNSUPPORTED_PARAM\nBAD MAIL UNSUPPORTED_PARAM\nBAD MAIL UNSUPPORTED_PARAM\n"},
    {"mail first param error wins", IN("MAIL FROM:<a@b> XX=1 SIZE=z\r\n"),
     "BAD MAIL UNSUPPORTED_PARAM\n"},
    {"mail empty param keyword", IN("MAIL FROM:<a@b> =1\r\n"), "BAD MAIL SYNTAX\n"},
    {"mail unbracketed", IN("MAIL FROM:a@b\r\nMAIL FROM: a@b\r\n"),
     "BAD MAIL SYNTAX\nBAD MAIL SYNTAX\n"},
    {"mail wrong keyword", IN("MAIL TO:<a@b>\r\nMAIL\r\nMAIL FROM <a@b>\r\n"),
     "BAD MAIL SYNTAX\nBAD MAIL SYNTAX\nBAD MAIL SYNTAX\n"},
    {"mail unclosed path", IN("MAIL FROM:<a@b\r\n"), "BAD MAIL SYNTAX\n"},
    {"mail no at", IN("MAIL FROM:<ab>\r\nMAIL FROM:<Postmaster>\r\n"),
     "BAD MAIL SYNTAX\nBAD MAIL SYNTAX\n"},
    {"mail empty local or domain", IN("MAIL FROM:<@b>\r\nMAIL FROM:<a@>\r\n"),
     "BAD MAIL SYNTAX\nBAD MAIL SYNTAX\n"},
    {"mail space in path", IN("MAIL FROM:<a b@c>\r\nMAIL FROM:<a@b c>\r\n"),
     "BAD MAIL SYNTAX\nBAD MAIL SYNTAX\n"},
    {"mail junk after path", IN("MAIL FROM:<a@b>SIZE=1\r\n"), "BAD MAIL SYNTAX\n"},
    {"mail two at signs", IN("MAIL FROM:<a@b@c>\r\n"), "BAD MAIL SYNTAX\n"},
    {"mail nul in path", IN("MAIL FROM:<a\0@b>\r\n"), "BAD MAIL SYNTAX\n"},
    {"mail tab in path", IN("MAIL FROM:<a\t@b>\r\n"), "BAD MAIL SYNTAX\n"},
    {"mail address literal", IN("MAIL FROM:<a@[IPv6:::1]>\r\n"), "CMD MAIL path=a@[IPv6:::1]\n"},
    {"mail 8-bit path", IN("MAIL FROM:<j\xc3\xb8rn@d> SMTPUTF8\r\n"),
     "CMD MAIL path=j\\xc3\\xb8rn@d 8bit smtputf8\n"},

    /* RCPT */
    {"rcpt", IN("RCPT TO:<u@d>\r\n"), "CMD RCPT path=u@d\n"},
    {"rcpt lower case and space", IN("rcpt to: <u@d>\r\n"), "CMD RCPT path=u@d\n"},
    {"rcpt null path", IN("RCPT TO:<>\r\n"), "CMD RCPT path=\n"},
    {"rcpt postmaster", IN("RCPT TO:<Postmaster>\r\nRCPT TO:<POSTMASTER>\r\n"),
     "CMD RCPT path=Postmaster postmaster\nCMD RCPT path=POSTMASTER postmaster\n"},
    {"rcpt postmaster with domain", IN("RCPT TO:<postmaster@d>\r\n"),
     "CMD RCPT path=postmaster@d\n"},
    {"rcpt other bare name", IN("RCPT TO:<root>\r\n"), "BAD RCPT SYNTAX\n"},
    {"rcpt source route", IN("RCPT TO:<@a,@b.c:u@d>\r\nRCPT TO:<@a:u@d>\r\n"),
     "CMD RCPT path=u@d\nCMD RCPT path=u@d\n"},
    {"rcpt bad source route",
     IN("RCPT TO:<@a,b:u@d>\r\nRCPT TO:<@a>\r\nRCPT TO:<@:u@d>\r\nRCPT TO:<@a:>\r\n"),
     "BAD RCPT SYNTAX\nBAD RCPT SYNTAX\nBAD RCPT SYNTAX\nBAD RCPT SYNTAX\n"},
    {"rcpt quoted local part", IN("RCPT TO:<\"a b\"@d>\r\n"), "CMD RCPT path=\"a b\"@d\n"},
    {"rcpt quoted specials", IN("RCPT TO:<\"a>\\\"b@c\"@d>\r\n"),
     "CMD RCPT path=\"a>\\\\\"b@c\"@d\n"},
    {"rcpt unclosed quote", IN("RCPT TO:<\"a b@d>\r\n"), "BAD RCPT SYNTAX\n"},
    {"rcpt quote inside atom", IN("RCPT TO:<a\"b\"@d>\r\n"), "BAD RCPT SYNTAX\n"},
    {"rcpt 8-bit path", IN("RCPT TO:<u@\xc3\xa9.fr>\r\n"), "CMD RCPT path=u@\\xc3\\xa9.fr 8bit\n"},
    {"rcpt orcpt", IN("RCPT TO:<u@d> ORCPT=rfc822;u+2Bx@d\r\n"),
     "CMD RCPT path=u@d orcpt=rfc822;u+2Bx@d\n"},
    {"rcpt bad orcpt",
     IN("RCPT TO:<u@d> ORCPT=\r\nRCPT TO:<u@d> ORCPT=rfc822\r\nRCPT TO:<u@d> ORCPT=;x\r\n"
        "RCPT TO:<u@d> ORCPT=a;b ORCPT=a;b\r\n"),
     "BAD RCPT BAD_PARAM\nBAD RCPT BAD_PARAM\nBAD RCPT BAD_PARAM\nBAD RCPT BAD_PARAM\n"},
    {"rcpt unsupported params", IN("RCPT TO:<u@d> NOTIFY=NEVER\r\nRCPT TO:<u@d> SIZE=1\r\n"),
     "BAD RCPT UNSUPPORTED_PARAM\nBAD RCPT UNSUPPORTED_PARAM\n"},
    {"rcpt wrong keyword", IN("RCPT FROM:<u@d>\r\nRCPT\r\nRCPT TO:u@d\r\n"),
     "BAD RCPT SYNTAX\nBAD RCPT SYNTAX\nBAD RCPT SYNTAX\n"},

    /* Commands without much to parse */
    {"data rset quit", IN("RSET\r\nQUIT\r\nDATA\r\n"), "CMD RSET\nCMD QUIT\nCMD DATA\n"},
    {"extra args", IN("DATA x\r\nRSET x\r\nQUIT now\r\nSTARTTLS x\r\n"),
     "BAD DATA EXTRA_ARG\nBAD RSET EXTRA_ARG\nBAD QUIT EXTRA_ARG\nBAD STARTTLS EXTRA_ARG\n"},
    {"trailing spaces are not args", IN("RSET  \r\nquit \n"), "CMD RSET\nCMD QUIT\n"},
    {"noop", IN("NOOP\r\nnoop hello there\r\n"), "CMD NOOP\nCMD NOOP arg=hello there\n"},
    {"noop nul byte", IN("NOOP a\0b\r\n"), "BAD NOOP SYNTAX\n"},
    {"vrfy", IN("VRFY u@d\r\nVRFY\r\n"), "CMD VRFY arg=u@d\nBAD VRFY SYNTAX\n"},
    {"starttls and auth", IN("STARTTLS\r\nAUTH PLAIN AGEAYg==\r\nauth\r\n"),
     "CMD STARTTLS\nCMD AUTH arg=PLAIN AGEAYg==\nCMD AUTH\n"},
    {"unknown commands", IN("XYZZY\r\nMAILFROM:<a@b>\r\n\r\n DATA\r\nDATA\r\r\n"),
     "BAD UNKNOWN UNKNOWN_CMD\nBAD UNKNOWN UNKNOWN_CMD\nBAD UNKNOWN UNKNOWN_CMD\n"
     "BAD UNKNOWN UNKNOWN_CMD\nBAD UNKNOWN UNKNOWN_CMD\n"},
    {"nul in verb", IN("NO\0OP\r\nNOOP\r\n"), "BAD UNKNOWN UNKNOWN_CMD\nCMD NOOP\n"},
    {"bare LF commands", IN("NOOP\nQUIT\n"), "CMD NOOP\nCMD QUIT\n"},
    {"incomplete last line", IN("NOOP\r\nQUIT"), "CMD NOOP\n"},

    /* Pipelining and DATA */
    {"pipelined transaction",
     IN("LHLO x\r\nMAIL FROM:<a@b> BODY=8BITMIME\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\nDATA\r\n"
        "Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n"),
     "CMD LHLO arg=x\nCMD MAIL path=a@b body=8BITMIME\nCMD RCPT path=c@d\nCMD RCPT path=e@f\n"
     "CMD DATA\n> Subject: hi\n> \n> body\nDATA_END\nCMD QUIT\n"},
    {"data dot-stuffing", IN("DATA\r\n..leading\r\n.x\r\n...\r\n..\r\na.\r\n. \r\n.\r\n"),
     "CMD DATA\n> .leading\n> x\n> ..\n> .\n> a.\n>  \nDATA_END\n"},
    {"data empty", IN("DATA\r\n.\r\nNOOP\r\n"), "CMD DATA\nDATA_END\nCMD NOOP\n"},
    {"data bare LF", IN("DATA\nline\n\n.x\n.\nNOOP\n"),
     "CMD DATA\n> line\n> \n> x\nDATA_END\nCMD NOOP\n"},
    {"data mixed line ends", IN("DATA\r\na\nb\r\n.\n"), "CMD DATA\n> a\n> b\nDATA_END\n"},
    {"data CR not before LF", IN("DATA\r\na\rb\r\n\r\r\nc\r\r\r\n.\r\n"),
     "CMD DATA\n> a\\rb\n> \\r\n> c\\r\\r\nDATA_END\n"},
    {"data dot CR is not the end", IN("DATA\r\n.\r.\r\n.\r\r\nab\r.\r\n.\r\n"),
     "CMD DATA\n> \\r.\n> \\r\n> ab\\r.\nDATA_END\n"},
    {"data empty lines", IN("DATA\r\n\r\n\n\r\n.\r\n"), "CMD DATA\n> \n> \n> \nDATA_END\n"},
    {"data nul and 8-bit", IN("DATA\r\na\0b\xff\r\n\0\r\n.\r\n"),
     "CMD DATA\n> a\\0b\\xff\n> \\0\nDATA_END\n"},
    {"data commands are content", IN("DATA\r\nQUIT\r\nRSET\r\n.\r\nRSET\r\n"),
     "CMD DATA\n> QUIT\n> RSET\nDATA_END\nCMD RSET\n"},
    {"data unterminated", IN("DATA\r\nabc"), "CMD DATA\n> abc[noeol]\n"},
    {"data unterminated CR", IN("DATA\r\nabc\r"), "CMD DATA\n> abc[noeol]\n"},
    {"data unterminated dot", IN("DATA\r\nx\r\n.\r"), "CMD DATA\n> x\n"},
    {"data rejected stays commands", IN("DATA x\r\n.\r\n"),
     "BAD DATA EXTRA_ARG\nBAD UNKNOWN UNKNOWN_CMD\n"},
    {"data long body line", IN("DATA\r\n0123456789012345678901234567890123456789\r\n.\r\n"),
     "CMD DATA\n> 0123456789012345678901234567890123456789\nDATA_END\n"},

    /* BDAT */
    {"bdat last", IN("BDAT 5 LAST\r\nhello"),
     "CMD BDAT n=5 last\n> hello[noeol]\nCHUNK_END last\n"},
    {"bdat lower case", IN("bdat 2 last\r\nhiNOOP\r\n"),
     "CMD BDAT n=2 last\n> hi[noeol]\nCHUNK_END last\nCMD NOOP\n"},
    {"bdat two chunks", IN("BDAT 6\r\nab\r\ncdBDAT 3 LAST\r\nef\n"),
     "CMD BDAT n=6\n> ab\n> cd[noeol]\nCHUNK_END\nCMD BDAT n=3 last\n> ef\nCHUNK_END last\n"},
    {"bdat CRLF across chunks", IN("BDAT 3\r\nab\rBDAT 3 LAST\r\n\ncd"),
     "CMD BDAT n=3\n> ab[noeol]\nCHUNK_END\nCMD BDAT n=3 last\n> \n> cd[noeol]\n"
     "CHUNK_END last\n"},
    {"bdat CR then content across chunks", IN("BDAT 2\r\na\rBDAT 1 LAST\r\nx"),
     "CMD BDAT n=2\n> a[noeol]\nCHUNK_END\nCMD BDAT n=1 last\n> \\rx[noeol]\nCHUNK_END last\n"},
    {"bdat CR at last end", IN("BDAT 3 LAST\r\nab\rNOOP\r\n"),
     "CMD BDAT n=3 last\n> ab\\r[noeol]\nCHUNK_END last\nCMD NOOP\n"},
    {"bdat CR then BDAT 0 LAST", IN("BDAT 1\r\n\rBDAT 0 LAST\r\n"),
     "CMD BDAT n=1\nCHUNK_END\nCMD BDAT n=0 last\n> \\r[noeol]\nCHUNK_END last\n"},
    {"bdat rset drops held CR", IN("BDAT 2\r\na\rRSET\r\nBDAT 1 LAST\r\nx"),
     "CMD BDAT n=2\n> a[noeol]\nCHUNK_END\nCMD RSET\nCMD BDAT n=1 last\n> x[noeol]\n"
     "CHUNK_END last\n"},
    {"bdat 0 last", IN("BDAT 0 LAST\r\nQUIT\r\n"), "CMD BDAT n=0 last\nCHUNK_END last\nCMD QUIT\n"},
    {"bdat 0 at end of input", IN("BDAT 0\r\n"), "CMD BDAT n=0\nCHUNK_END\n"},
    {"bdat no dot-stuffing", IN("BDAT 14 LAST\r\n..x\r\n.\r\nQUIT\r\n"),
     "CMD BDAT n=14 last\n> ..x\n> .\n> QUIT\nCHUNK_END last\n"},
    {"bdat bare LF, CR, NUL", IN("BDAT 8 LAST\r\na\nb\r\0\r\n\n"),
     "CMD BDAT n=8 last\n> a\n> b\\r\\0\n> \nCHUNK_END last\n"},
    {"bdat incomplete chunk", IN("BDAT 10 LAST\r\nabc"), "CMD BDAT n=10 last\n> abc[noeol]\n"},
    {"bdat bad size",
     IN("BDAT x\r\nBDAT\r\nBDAT -1\r\nBDAT 18446744073709551616 LAST\r\nBDAT 1x\r\nNOOP\r\n"),
     "BAD BDAT SYNTAX\nBAD BDAT SYNTAX\nBAD BDAT SYNTAX\nBAD BDAT SYNTAX\nBAD BDAT SYNTAX\n"
     "CMD NOOP\n"},
    {"bdat bad keyword", IN("BDAT 5 FIRST\r\nBDAT 5 LAST x\r\nNOOP\r\n"),
     "BAD BDAT SYNTAX\nBAD BDAT SYNTAX\nCMD NOOP\n"},
    {"bdat then data mode is separate", IN("BDAT 4 LAST\r\n.\r\n\nDATA\r\n.\r\n"),
     "CMD BDAT n=4 last\n> .\n> \nCHUNK_END last\nCMD DATA\nDATA_END\n"},
};

/* ---- generated cases: line length limits ---- */

/* "NOOP " + fill 'x' + end: a line of exactly total bytes, end included. */
static size_t make_noop_line(uint8_t *out, size_t total, const char *end)
{
    size_t end_len = strlen(end);
    size_t fill = total - 5 - end_len;
    memcpy(out, "NOOP ", 5);
    memset(out + 5, 'x', fill);
    memcpy(out + 5 + fill, end, end_len);
    return total;
}

static void check_line_limit(const char *end, size_t total, bool too_long)
{
    uint8_t in[2048];
    size_t len = make_noop_line(in, total, end);
    memcpy(in + len, "QUIT\r\n", 6);
    len += 6;
    tbuf want = {0};
    if (too_long) {
        tb_str(&want, "BAD UNKNOWN LINE_TOO_LONG\n");
    } else {
        tb_str(&want, "CMD NOOP arg=");
        tb_put(&want, (const char *)in + 5, total - 5 - strlen(end));
        tb_str(&want, "\n");
    }
    tb_str(&want, "CMD QUIT\n");
    char name[64];
    const char *end_name = end[0] == '\r' ? "CRLF" : "LF";
    snprintf(name, sizeof(name), "line of %zu bytes ending %s", total, end_name);
    check_all_ways(name, in, len, want.ptr);
    free(want.ptr);
}

static void test_line_limit(void **state)
{
    (void)state;
    check_line_limit("\r\n", LINE_MAX_TEST, false);
    check_line_limit("\r\n", LINE_MAX_TEST + 1, true);
    check_line_limit("\n", LINE_MAX_TEST, false);
    check_line_limit("\n", LINE_MAX_TEST + 1, true);
    check_line_limit("\r\n", 1500, true);
}

/* A too-long line in the middle of a pipeline, then a valid command. */
static void test_long_line_then_command(void **state)
{
    (void)state;
    uint8_t in[4096];
    size_t len = 0;
    memcpy(in, "NOOP\r\n", 6);
    len += 6;
    memcpy(in + len, "RCPT TO:<", 9);
    len += 9;
    memset(in + len, 'a', 3000);
    len += 3000;
    memcpy(in + len, "@d>\r\nRCPT TO:<u@d>\r\n", 20);
    len += 20;
    check_all_ways("long line then command", in, len,
                   "CMD NOOP\nBAD UNKNOWN LINE_TOO_LONG\nCMD RCPT path=u@d\n");
}

/* Body lines are not limited by line_bytes_max. */
static void test_long_body_line(void **state)
{
    (void)state;
    uint8_t in[4096];
    memcpy(in, "DATA\r\n", 6);
    memset(in + 6, 'b', 3000);
    memcpy(in + 3006, "\r\n.\r\n", 5);
    tbuf want = {0};
    tb_str(&want, "CMD DATA\n> ");
    tb_put(&want, (const char *)in + 6, 3000);
    tb_str(&want, "\nDATA_END\n");
    check_all_ways("long body line", in, 3011, want.ptr);
    free(want.ptr);
}

/* ---- direct tests ---- */

static lmtp_event parse_one(lmtp_parser *p, const char *s, size_t *used_out)
{
    lmtp_event ev;
    lmtp_parse_rc rc = lmtp_parse(p, (const uint8_t *)s, strlen(s), used_out, &ev);
    assert_int_equal(rc, LMTP_PARSE_EVENT);
    return ev;
}

/* A line inside one buffer is a slice of it; a line split across two buffers is
 * copied, so the first buffer may be released before the second arrives. */
static void test_split_line_is_copied(void **state)
{
    (void)state;
    static lmtp_parser p;
    lmtp_parser_init(&p, &(lmtp_limits){.line_bytes_max = LINE_MAX_TEST});
    char whole[] = "MAIL FROM:<a@b>\r\n";
    size_t used = 0;
    lmtp_event ev = parse_one(&p, whole, &used);
    assert_int_equal(used, strlen(whole));
    assert_ptr_equal(ev.path.ptr, (const uint8_t *)whole + 11);

    char first[] = "RCPT TO:<u@";
    lmtp_parse_rc rc = lmtp_parse(&p, (const uint8_t *)first, strlen(first), &used, &ev);
    assert_int_equal(rc, LMTP_PARSE_NEED_MORE);
    assert_int_equal(used, strlen(first));
    memset(first, 'Z', strlen(first));
    ev = parse_one(&p, "d>\r\n", &used);
    assert_int_equal(used, 4);
    assert_int_equal(ev.type, LMTP_EV_COMMAND);
    assert_true(ev.path.ptr >= p.line && ev.path.ptr < p.line + sizeof(p.line));
    assert_int_equal(ev.path.len, 3);
    assert_memory_equal(ev.path.ptr, "u@d", 3);
}

/* Only the bytes of one event are consumed; the rest is left for the next call. */
static void test_consumed_stops_at_event(void **state)
{
    (void)state;
    static lmtp_parser p;
    lmtp_parser_init(&p, &(lmtp_limits){.line_bytes_max = LINE_MAX_TEST});
    size_t used = 0;
    parse_one(&p, "NOOP\r\nQUIT\r\n", &used);
    assert_int_equal(used, 6);
    lmtp_event ev = parse_one(&p, "DATA\r\nab\r\n.\r\n", &used);
    assert_int_equal(ev.cmd, LMTP_CMD_DATA);
    assert_int_equal(used, 6);
    assert_int_equal(lmtp_parser_mode(&p), LMTP_MODE_COMMAND);
    lmtp_parser_begin_data(&p);
    ev = parse_one(&p, "ab\r\n.\r\n", &used);
    assert_int_equal(ev.type, LMTP_EV_BODY_SPAN);
    assert_int_equal(used, 4);
    ev = parse_one(&p, ".\r\nNOOP\r\n", &used);
    assert_int_equal(ev.type, LMTP_EV_DATA_END);
    assert_int_equal(used, 3);
    assert_int_equal(lmtp_parser_mode(&p), LMTP_MODE_COMMAND);
}

static void test_modes(void **state)
{
    (void)state;
    static lmtp_parser p;
    lmtp_parser_init(&p, &(lmtp_limits){.line_bytes_max = LINE_MAX_TEST});
    size_t used = 0;
    lmtp_event ev = parse_one(&p, "BDAT 3\r\n", &used);
    assert_int_equal(ev.cmd, LMTP_CMD_BDAT);
    assert_int_equal(lmtp_parser_mode(&p), LMTP_MODE_CHUNK);
    ev = parse_one(&p, "abc", &used);
    assert_int_equal(ev.type, LMTP_EV_BODY_SPAN);
    lmtp_parse_rc rc = lmtp_parse(&p, NULL, 0, &used, &ev); /* an empty read may be NULL */
    assert_int_equal(rc, LMTP_PARSE_EVENT);
    assert_int_equal(ev.type, LMTP_EV_CHUNK_END);
    assert_int_equal(used, 0);
    assert_int_equal(lmtp_parser_mode(&p), LMTP_MODE_COMMAND);

    uint8_t junk[600];
    memset(junk, 'j', sizeof(junk));
    rc = lmtp_parse(&p, junk, sizeof(junk), &used, &ev);
    assert_int_equal(rc, LMTP_PARSE_NEED_MORE);
    assert_int_equal(used, sizeof(junk));
    assert_int_equal(lmtp_parser_mode(&p), LMTP_MODE_DISCARD_LINE);
    ev = parse_one(&p, "jj\nNOOP\n", &used);
    assert_int_equal(ev.error, LMTP_ERR_LINE_TOO_LONG);
    assert_int_equal(used, 3);
    assert_int_equal(lmtp_parser_mode(&p), LMTP_MODE_COMMAND);
}

static void test_cmd_names(void **state)
{
    (void)state;
    static const struct {
        lmtp_cmd cmd;
        const char *name;
    } names[] = {
        {LMTP_CMD_NONE, "NONE"}, {LMTP_CMD_LHLO, "LHLO"},         {LMTP_CMD_MAIL, "MAIL"},
        {LMTP_CMD_RCPT, "RCPT"}, {LMTP_CMD_BDAT, "BDAT"},         {LMTP_CMD_QUIT, "QUIT"},
        {LMTP_CMD_AUTH, "AUTH"}, {LMTP_CMD_STARTTLS, "STARTTLS"}, {LMTP_CMD_UNKNOWN, "UNKNOWN"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(names); i++) {
        const char *got = lmtp_cmd_name(names[i].cmd);
        if (strcmp(got, names[i].name) != 0) {
            fail_msg("lmtp_cmd_name(%d): got %s, want %s", (int)names[i].cmd, got, names[i].name);
        }
    }
}

static void test_case(void **state)
{
    const lp_case *c = *state;
    check_all_ways(c->name, (const uint8_t *)c->in, c->in_len, c->want);
}

static const struct CMUnitTest fixed_tests[] = {
    cmocka_unit_test(test_line_limit),
    cmocka_unit_test(test_long_line_then_command),
    cmocka_unit_test(test_long_body_line),
    cmocka_unit_test(test_split_line_is_copied),
    cmocka_unit_test(test_consumed_stops_at_event),
    cmocka_unit_test(test_modes),
    cmocka_unit_test(test_cmd_names),
};

int main(void)
{
    static struct CMUnitTest tests[SL_ARRAY_LEN(cases) + SL_ARRAY_LEN(fixed_tests)];
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        tests[i] = (struct CMUnitTest){
            .name = cases[i].name,
            .test_func = test_case,
            .initial_state = (void *)&cases[i],
        };
    }
    for (size_t i = 0; i < SL_ARRAY_LEN(fixed_tests); i++) {
        tests[SL_ARRAY_LEN(cases) + i] = fixed_tests[i];
    }
    return cmocka_run_group_tests_name("lmtp_parser", tests, NULL, NULL);
}
