/* tests/unit/proto/test_auth_parser.c: table-driven tests of proto/auth_parser.c.
 *
 * Every case is fed (tests/unit/feed.h) whole, one byte at a time, in seeded random splits and in
 * every two-piece split. Each run renders its events into a transcript and
 * every transcript must equal the case's expected one. Each input piece is
 * copied into its own heap buffer and poisoned and freed once consumed, so a
 * slice that outlives its buffer is caught. Then the value escaping, the
 * secret wiping and the reply builders' exact bytes. */
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
#include "proto/auth_parser.h"

#define LINE_MAX_TEST 1024

#define U8(s) ((const uint8_t *)(s))
#define SLICE(s) ((sl_slice){U8(s), strlen(s)})

/* ---- transcript text ---- */

/* Printable ASCII as is; everything else escaped, so an event is one line. */
static void tb_bytes(tbuf *t, sl_slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        uint8_t b = s.ptr[i];
        if (b == '\\') {
            tb_str(t, "\\\\");
        } else if (b == '\t') {
            tb_str(t, "\\t");
        } else if (b == '\r') {
            tb_str(t, "\\r");
        } else if (b < 0x20 || b >= 0x7f) {
            tb_fmt(t, "\\x%02x", b);
        } else {
            tb_put(t, (const char *)&b, 1);
        }
    }
}

/* ---- rendering events ---- */

static const char *const error_names[] = {
    [AUTH_ERR_NONE] = "NONE",
    [AUTH_ERR_LINE_TOO_LONG] = "LINE_TOO_LONG",
    [AUTH_ERR_NUL] = "NUL",
    [AUTH_ERR_SYNTAX] = "SYNTAX",
    [AUTH_ERR_BAD_NUMBER] = "BAD_NUMBER",
    [AUTH_ERR_BAD_ID] = "BAD_ID",
    [AUTH_ERR_NO_SERVICE] = "NO_SERVICE",
    [AUTH_ERR_PARAM_AFTER_RESP] = "PARAM_AFTER_RESP",
};

static void render_slice(tbuf *t, const char *name, sl_slice s, bool always)
{
    if (s.len == 0 && !always) {
        return;
    }
    tb_fmt(t, " %s=", name);
    tb_bytes(t, s);
}

static void render_port(tbuf *t, const char *name, uint16_t port)
{
    if (port != 0) {
        tb_fmt(t, " %s=%u", name, (unsigned)port);
    }
}

static void render_flag(tbuf *t, const char *name, bool on)
{
    if (on) {
        tb_fmt(t, " %s", name);
    }
}

static void render_params(tbuf *t, const auth_params *a)
{
    render_slice(t, "service", a->service, false);
    render_slice(t, "lip", a->lip, false);
    render_slice(t, "rip", a->rip, false);
    render_port(t, "lport", a->lport);
    render_port(t, "rport", a->rport);
    render_slice(t, "real_lip", a->real_lip, false);
    render_slice(t, "real_rip", a->real_rip, false);
    render_port(t, "real_lport", a->real_lport);
    render_port(t, "real_rport", a->real_rport);
    render_slice(t, "local_name", a->local_name, false);
    render_slice(t, "session", a->session, false);
    render_slice(t, "client_id", a->client_id, false);
    render_flag(t, "secured", a->secured == AUTH_SECURED_YES);
    render_flag(t, "secured=tls", a->secured == AUTH_SECURED_TLS);
    render_flag(t, "nologin", a->nologin);
    render_flag(t, "no-penalty", a->no_penalty);
    render_flag(t, "valid-client-cert", a->valid_client_cert);
    render_slice(t, "cert_username", a->cert_username, false);
    render_slice(t, "transport", a->transport, false);
    render_slice(t, "tls_cipher", a->tls_cipher, false);
    render_slice(t, "tls_cipher_bits", a->tls_cipher_bits, false);
    render_slice(t, "tls_pfs", a->tls_pfs, false);
    render_slice(t, "tls_protocol", a->tls_protocol, false);
    render_flag(t, "resp:empty", a->resp_kind == AUTH_RESP_EMPTY);
    render_slice(t, "resp", a->resp, a->resp_kind == AUTH_RESP_DATA);
}

/* Every field that differs from its zero value is shown, so a stray field
 * makes a transcript differ. */
static void render_event(tbuf *t, auth_parse_rc rc, const auth_event *ev)
{
    if (rc == AUTH_PARSE_ERROR) {
        tb_fmt(t, "ERR %s %s", auth_parser_cmd_name(ev->cmd), error_names[ev->error]);
    } else {
        assert_int_equal(ev->error, AUTH_ERR_NONE);
        tb_str(t, auth_parser_cmd_name(ev->cmd));
    }
    bool ok = rc == AUTH_PARSE_EVENT;
    if ((ok && ev->cmd == AUTH_CMD_VERSION) || ev->version_major != 0 || ev->version_minor != 0) {
        tb_fmt(t, " %" PRIu32 ".%" PRIu32, ev->version_major, ev->version_minor);
    }
    if (ev->cpid != 0) {
        tb_fmt(t, " pid=%" PRIu32, ev->cpid);
    }
    if (ev->id != 0) {
        tb_fmt(t, " id=%" PRIu32, ev->id);
    }
    render_slice(t, "mech", ev->mech, ok && ev->cmd == AUTH_CMD_AUTH);
    render_params(t, &ev->auth);
    render_slice(t, "data", ev->data, ok && ev->cmd == AUTH_CMD_CONT);
    render_slice(t, "name", ev->name, ok && ev->cmd == AUTH_CMD_UNKNOWN);
    tb_str(t, "\n");
}

/* ---- feeding ---- */

typedef struct run {
    auth_parser *p;
    tbuf tr;
    bool whole; /* the input is one buffer: no slice may point into p->line */
    const char *how;
    size_t line_max;
} run;

static bool within(sl_slice s, const uint8_t *base, size_t base_len)
{
    return feed_within(s.ptr, s.len, base, base_len);
}

static void check_slice(const run *r, sl_slice s, const uint8_t *piece, size_t n)
{
    if (s.len == 0) {
        return;
    }
    bool in_piece = within(s, piece, n);
    bool in_line = within(s, r->p->line, sizeof(r->p->line));
    if (!in_piece && !(in_line && !r->whole)) {
        fail_msg("%s: slice outside the input (in line buffer: %d)", r->how, in_line);
    }
}

static void check_slices(const run *r, const auth_event *ev, const uint8_t *piece, size_t n)
{
    const auth_params *a = &ev->auth;
    const sl_slice all[] = {
        ev->mech,     ev->data,         ev->name,     a->service,    a->lip,
        a->rip,       a->real_lip,      a->real_rip,  a->local_name, a->session,
        a->client_id, a->cert_username, a->transport, a->tls_cipher, a->tls_cipher_bits,
        a->tls_pfs,   a->tls_protocol,  a->resp,
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(all); i++) {
        check_slice(r, all[i], piece, n);
    }
}

static void run_piece(void *ctx, const uint8_t *piece, size_t n)
{
    run *r = ctx;
    size_t off = 0;
    while (true) {
        auth_event ev;
        size_t used = SIZE_MAX;
        auth_parse_rc rc = auth_parse(r->p, piece + off, n - off, &used, &ev);
        assert_true(used <= n - off);
        if (rc == AUTH_PARSE_NEED_MORE) {
            assert_int_equal(used, n - off);
            break;
        }
        assert_true(rc == AUTH_PARSE_EVENT || rc == AUTH_PARSE_ERROR);
        assert_true(used > 0); /* every event consumes input */
        check_slices(r, &ev, piece + off, n - off);
        render_event(&r->tr, rc, &ev);
        off += used;
    }
}

static void run_begin(void *ctx, const char *how, bool whole)
{
    run *r = ctx;
    r->tr = (tbuf){0};
    r->p = malloc(sizeof(*r->p));
    assert_non_null(r->p);
    auth_parser_init(r->p, &(auth_parser_limits){.line_bytes_max = r->line_max});
    r->how = how;
    r->whole = whole;
}

/* Ends the run and returns its transcript (caller frees). */
static char *run_finish(void *ctx)
{
    run *r = ctx;
    tb_str(&r->tr, "");
    auth_parser_clear(r->p);
    free(r->p);
    return r->tr.ptr;
}

static void check_all_ways_limit(const char *name, const uint8_t *in, size_t len, const char *want,
                                 size_t line_max)
{
    run r = {.line_max = line_max};
    const feed_ops ops = {.begin = run_begin,
                          .piece = run_piece,
                          .finish = run_finish,
                          .ctx = &r,
                          .random_piece_bytes_max = 40};
    feed_check_all_ways(&ops, name, in, len, want);
}

static void check_all_ways(const char *name, const uint8_t *in, size_t len, const char *want)
{
    check_all_ways_limit(name, in, len, want, LINE_MAX_TEST);
}

/* ---- the table ---- */

typedef struct ap_case {
    const char *name;
    const char *in;
    size_t in_len;
    const char *want;
} ap_case;

/* sizeof keeps NUL bytes inside the input. */
#define IN(s) s, sizeof(s) - 1

static const ap_case cases[] = {
    /* What Postfix sends (xsasl_dovecot_server.c). */
    {"postfix handshake and AUTH",
     IN("VERSION\t1\t0\nCPID\t1234\n"
        "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=127.0.0.1\tsecured\t"
        "resp=AGZvbwBiYXI=\n"),
     "VERSION 1.0\nCPID pid=1234\n"
     "AUTH id=1 mech=PLAIN service=smtp lip=127.0.0.1 rip=127.0.0.1 secured nologin "
     "resp=AGZvbwBiYXI=\n"},
    {"postfix AUTH without TLS or initial response",
     IN("AUTH\t2\tLOGIN\tservice=smtp\tnologin\tlip=192.0.2.1\trip=2001:db8::7\n"),
     "AUTH id=2 mech=LOGIN service=smtp lip=192.0.2.1 rip=2001:db8::7 nologin\n"},
    {"postfix LOGIN exchange",
     IN("AUTH\t3\tLOGIN\tservice=smtp\tnologin\tlip=::1\trip=::1\n"
        "CONT\t3\tdXNlcg==\nCONT\t3\tcGFzcw==\n"),
     "AUTH id=3 mech=LOGIN service=smtp lip=::1 rip=::1 nologin\n"
     "CONT id=3 data=dXNlcg==\nCONT id=3 data=cGFzcw==\n"},
    {"handshake, CRLF", IN("VERSION\t1\t2\r\nCPID\t77\r\n"), "VERSION 1.2\nCPID pid=77\n"},
    {"version other major is reported", IN("VERSION\t2\t0\nVERSION\t0\t9\n"),
     "VERSION 2.0\nVERSION 0.9\n"},
    {"version extra fields ignored", IN("VERSION\t1\t1\tx\n"), "VERSION 1.1\n"},
    {"version max numbers", IN("VERSION\t4294967295\t0004294967295\n"),
     "VERSION 4294967295.4294967295\n"},
    {"version broken",
     IN("VERSION\t1\nVERSION\nVERSION\t1\tx\nVERSION\t-1\t0\nVERSION\t\t0\n"
        "VERSION\t4294967296\t0\nVERSION\t1 \t0\n"),
     "ERR VERSION SYNTAX\nERR VERSION SYNTAX\nERR VERSION BAD_NUMBER\nERR VERSION BAD_NUMBER\n"
     "ERR VERSION BAD_NUMBER\nERR VERSION BAD_NUMBER\nERR VERSION BAD_NUMBER\n"},
    {"cpid extra field ignored", IN("CPID\t5\tjunk\n"), "CPID pid=5\n"},
    {"cpid broken", IN("CPID\nCPID\t0\nCPID\tabc\nCPID\t\nCPID\t+5\n"),
     "ERR CPID SYNTAX\nERR CPID BAD_NUMBER\nERR CPID BAD_NUMBER\nERR CPID BAD_NUMBER\n"
     "ERR CPID BAD_NUMBER\n"},

    /* AUTH */
    {"auth minimal", IN("AUTH\t7\tPLAIN\tservice=imap\n"), "AUTH id=7 mech=PLAIN service=imap\n"},
    {"auth every known param",
     IN("AUTH\t9\tSCRAM-SHA-256\tservice=smtp\tlip=10.0.0.1\trip=10.0.0.2\tlport=25\t"
        "rport=54321\treal_lip=1.1.1.1\treal_rip=2.2.2.2\treal_lport=587\treal_rport=1\t"
        "local_name=mx.example.com\tsession=abc123\tclient_id=cid\tsecured=tls\tnologin\t"
        "no-penalty\tvalid-client-cert\tcert_username=alice\ttransport=TLS\t"
        "tls_cipher=TLS_AES_256_GCM_SHA384\ttls_cipher_bits=256\ttls_pfs=X25519\t"
        "tls_protocol=TLSv1.3\tresp=biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdM\n"),
     "AUTH id=9 mech=SCRAM-SHA-256 service=smtp lip=10.0.0.1 rip=10.0.0.2 lport=25 rport=54321"
     " real_lip=1.1.1.1 real_rip=2.2.2.2 real_lport=587 real_rport=1"
     " local_name=mx.example.com session=abc123 client_id=cid secured=tls nologin no-penalty"
     " valid-client-cert cert_username=alice transport=TLS tls_cipher=TLS_AES_256_GCM_SHA384"
     " tls_cipher_bits=256 tls_pfs=X25519 tls_protocol=TLSv1.3"
     " resp=biwsbj11c2VyLHI9ZnlrbytkMmxiYkZnT05Sdjlxa3hkYXdM\n"},
    {"auth unknown params ignored",
     IN("AUTH\t1\tPLAIN\tdebug\tforward_x=1\tfinal-resp-ok\tSERVICE=x\tservice=smtp\t\t=v\t"
        "future_thing=a=b\n"),
     "AUTH id=1 mech=PLAIN service=smtp\n"},
    {"auth param values keep '=' and escapes",
     IN("AUTH\t1\tPLAIN\tservice=smtp\tsession=a=b\tcert_username=x\001ty\n"),
     "AUTH id=1 mech=PLAIN service=smtp session=a=b cert_username=x\\x01ty\n"},
    {"auth later duplicate wins", IN("AUTH\t1\tPLAIN\tservice=a\tservice=smtp\tlip=1\tlip=2\n"),
     "AUTH id=1 mech=PLAIN service=smtp lip=2\n"},
    {"auth secured values",
     IN("AUTH\t1\tX\tservice=s\tsecured=yes\nAUTH\t2\tX\tservice=s\tsecured=\n"
        "AUTH\t3\tX\tsecured=tls\tsecured\tservice=s\n"),
     "AUTH id=1 mech=X service=s secured\nAUTH id=2 mech=X service=s secured\n"
     "AUTH id=3 mech=X service=s secured\n"},
    {"auth flags with values still set",
     IN("AUTH\t1\tX\tservice=s\tnologin=no\tno-penalty=0\tvalid-client-cert=\n"),
     "AUTH id=1 mech=X service=s nologin no-penalty valid-client-cert\n"},
    {"auth bad ports ignored",
     IN("AUTH\t1\tX\tservice=s\tlport=0\trport=65536\treal_lport=x\treal_rport=\n"
        "AUTH\t2\tX\tservice=s\tlport=65535\tlport=99999\trport=-1\n"),
     "AUTH id=1 mech=X service=s\nAUTH id=2 mech=X service=s lport=65535\n"},
    {"auth empty mech passes to the session", IN("AUTH\t1\t\tservice=s\n"),
     "AUTH id=1 mech= service=s\n"},
    {"auth max id", IN("AUTH\t4294967295\tPLAIN\tservice=s\n"),
     "AUTH id=4294967295 mech=PLAIN service=s\n"},
    {"auth bad ids",
     IN("AUTH\t0\tPLAIN\tservice=s\nAUTH\tx\tPLAIN\tservice=s\nAUTH\t4294967296\tPLAIN\tservice=s\n"
        "AUTH\t\tPLAIN\tservice=s\nAUTH\t-1\tPLAIN\tservice=s\nAUTH\t1 \tPLAIN\tservice=s\n"),
     "ERR AUTH BAD_ID\nERR AUTH BAD_ID\nERR AUTH BAD_ID\nERR AUTH BAD_ID\nERR AUTH BAD_ID\n"
     "ERR AUTH BAD_ID\n"},
    {"auth too few fields", IN("AUTH\nAUTH\t1\n"), "ERR AUTH SYNTAX\nERR AUTH SYNTAX\n"},
    {"auth missing service",
     IN("AUTH\t1\tPLAIN\nAUTH\t1\tPLAIN\tlip=1.2.3.4\tresp=AA==\nAUTH\t1\tPLAIN\tservice=\n"
        "AUTH\t1\tPLAIN\tservice\n"),
     "ERR AUTH NO_SERVICE\nERR AUTH NO_SERVICE\nERR AUTH NO_SERVICE\nERR AUTH NO_SERVICE\n"},
    {"auth params after resp",
     IN("AUTH\t1\tPLAIN\tservice=smtp\tresp=AGZvbwBiYXI=\tsecured\n"
        "AUTH\t1\tPLAIN\tresp=\tservice=smtp\nAUTH\t1\tPLAIN\tservice=smtp\tresp=AA==\t\n"),
     "ERR AUTH PARAM_AFTER_RESP\nERR AUTH PARAM_AFTER_RESP\nERR AUTH PARAM_AFTER_RESP\n"},
    {"auth params after resp win over missing service", IN("AUTH\t1\tPLAIN\tresp=AA==\tlip=1\n"),
     "ERR AUTH PARAM_AFTER_RESP\n"},
    {"auth field after an odd resp", IN("AUTH\t1\tPLAIN\tservice=s\tresp=!!\tx\001y\n"),
     "ERR AUTH PARAM_AFTER_RESP\n"},
    {"auth resp kept raw", IN("AUTH\t1\tPLAIN\tservice=s\tresp=!not base64\n"),
     "AUTH id=1 mech=PLAIN service=s resp=!not base64\n"},
    /* An empty resp means "none" for minor < 2, "empty" from minor 2 on. */
    {"auth empty resp before any VERSION",
     IN("AUTH\t1\tPLAIN\tservice=s\tresp=\nAUTH\t2\tPLAIN\tservice=s\tresp\n"
        "AUTH\t3\tPLAIN\tservice=s\tresp==\n"),
     "AUTH id=1 mech=PLAIN service=s\nAUTH id=2 mech=PLAIN service=s\n"
     "AUTH id=3 mech=PLAIN service=s resp:empty\n"},
    {"auth empty resp with minor 0 and 1",
     IN("VERSION\t1\t0\nAUTH\t1\tPLAIN\tservice=s\tresp=\nVERSION\t1\t1\n"
        "AUTH\t2\tPLAIN\tservice=s\tresp=\nAUTH\t3\tPLAIN\tservice=s\tresp==\n"),
     "VERSION 1.0\nAUTH id=1 mech=PLAIN service=s\nVERSION 1.1\nAUTH id=2 mech=PLAIN service=s\n"
     "AUTH id=3 mech=PLAIN service=s resp:empty\n"},
    {"auth empty resp with minor 2",
     IN("VERSION\t1\t2\nAUTH\t1\tPLAIN\tservice=s\tresp=\nAUTH\t2\tPLAIN\tservice=s\tresp\n"
        "AUTH\t3\tPLAIN\tservice=s\tresp==\nAUTH\t4\tPLAIN\tservice=s\n"),
     "VERSION 1.2\nAUTH id=1 mech=PLAIN service=s resp:empty\n"
     "AUTH id=2 mech=PLAIN service=s resp:empty\nAUTH id=3 mech=PLAIN service=s resp:empty\n"
     "AUTH id=4 mech=PLAIN service=s\n"},
    {"auth broken VERSION keeps the earlier minor",
     IN("VERSION\t1\t2\nVERSION\t1\tx\nAUTH\t1\tPLAIN\tservice=s\tresp=\n"),
     "VERSION 1.2\nERR VERSION BAD_NUMBER\nAUTH id=1 mech=PLAIN service=s resp:empty\n"},
    {"auth resp '===' is data", IN("AUTH\t1\tPLAIN\tservice=s\tresp===\n"),
     "AUTH id=1 mech=PLAIN service=s resp===\n"},

    /* CONT and CANCEL */
    {"cont", IN("CONT\t12\tAGZvbwBiYXI=\n"), "CONT id=12 data=AGZvbwBiYXI=\n"},
    {"cont empty data", IN("CONT\t12\t\n"), "CONT id=12 data=\n"},
    {"cont data keeps tabs", IN("CONT\t12\tab\tcd\t\n"), "CONT id=12 data=ab\\tcd\\t\n"},
    {"cont broken", IN("CONT\t12\nCONT\nCONT\t0\tAA==\nCONT\tx\tAA==\nCONT\t\tAA==\n"),
     "ERR CONT SYNTAX\nERR CONT SYNTAX\nERR CONT BAD_ID\nERR CONT BAD_ID\nERR CONT BAD_ID\n"},
    {"cancel", IN("CANCEL\t5\nCANCEL\t4294967295\r\n"), "CANCEL id=5\nCANCEL id=4294967295\n"},
    {"cancel broken", IN("CANCEL\nCANCEL\t5\tx\nCANCEL\t0\nCANCEL\t5x\nCANCEL\t\n"),
     "ERR CANCEL SYNTAX\nERR CANCEL SYNTAX\nERR CANCEL BAD_ID\nERR CANCEL BAD_ID\n"
     "ERR CANCEL BAD_ID\n"},

    /* Unknown commands and framing */
    {"unknown commands",
     IN("XYZZY\nauth\t1\tPLAIN\tservice=s\nAUTH 1 PLAIN\n\n\r\nVERSION1\t0\nDONE\n"),
     "UNKNOWN name=XYZZY\nUNKNOWN name=auth\nUNKNOWN name=AUTH 1 PLAIN\nUNKNOWN name=\n"
     "UNKNOWN name=\nUNKNOWN name=VERSION1\nUNKNOWN name=DONE\n"},
    {"unknown with fields", IN("MECH\tPLAIN\tplaintext\n"), "UNKNOWN name=MECH\n"},
    {"CR only before LF is dropped", IN("CANCEL\t5\r\r\nCONT\t1\tAA==\r\nXY\rZ\n"),
     "ERR CANCEL BAD_ID\nCONT id=1 data=AA==\nUNKNOWN name=XY\\rZ\n"},
    {"NUL bytes", IN("CPID\t1\0\nAUTH\t1\tPLAIN\tservice=s\0mtp\n\0\nCONT\t1\tAA==\n"),
     "ERR CPID NUL\nERR AUTH NUL\nERR UNKNOWN NUL\nCONT id=1 data=AA==\n"},
    {"incomplete last line", IN("CPID\t1\nCANCEL\t2"), "CPID pid=1\n"},
    {"8-bit bytes pass", IN("AUTH\t1\tPL\xc3\xa4IN\tservice=s\xff\n"),
     "AUTH id=1 mech=PL\\xc3\\xa4IN service=s\\xff\n"},
};

/* ---- generated cases: line length ---- */

/* "CONT\t1\t" + 'A' fill + end: a line of exactly total bytes, end included. */
static size_t make_cont_line(uint8_t *out, size_t total, const char *end)
{
    size_t end_len = strlen(end);
    size_t fill = total - 7 - end_len;
    memcpy(out, "CONT\t1\t", 7);
    memset(out + 7, 'A', fill);
    memcpy(out + 7 + fill, end, end_len);
    return total;
}

static void check_line_limit(const char *end, size_t total, size_t line_max, bool too_long)
{
    uint8_t *in = malloc(total + 16);
    assert_non_null(in);
    size_t len = make_cont_line(in, total, end);
    memcpy(in + len, "CANCEL\t1\n", 9);
    len += 9;
    tbuf want = {0};
    if (too_long) {
        tb_str(&want, "ERR NONE LINE_TOO_LONG\n");
    } else {
        tb_str(&want, "CONT id=1 data=");
        tb_put(&want, (const char *)in + 7, total - 7 - strlen(end));
        tb_str(&want, "\n");
    }
    tb_str(&want, "CANCEL id=1\n");
    char name[96];
    snprintf(name, sizeof(name), "line of %zu bytes ending %s, limit %zu", total,
             end[0] == '\r' ? "CRLF" : "LF", line_max);
    check_all_ways_limit(name, in, len, want.ptr, line_max);
    free(want.ptr);
    free(in);
}

static void test_line_limit(void **state)
{
    (void)state;
    check_line_limit("\n", LINE_MAX_TEST, LINE_MAX_TEST, false);
    check_line_limit("\n", LINE_MAX_TEST + 1, LINE_MAX_TEST, true);
    check_line_limit("\r\n", LINE_MAX_TEST, LINE_MAX_TEST, false);
    check_line_limit("\r\n", LINE_MAX_TEST + 1, LINE_MAX_TEST, true);
    check_line_limit("\n", 1500, LINE_MAX_TEST, true);
    /* The default, Dovecot's 16384. */
    check_line_limit("\n", AUTH_PARSER_LINE_BYTES_DEFAULT, AUTH_PARSER_LINE_BYTES_DEFAULT, false);
    check_line_limit("\r\n", AUTH_PARSER_LINE_BYTES_DEFAULT + 1, AUTH_PARSER_LINE_BYTES_DEFAULT,
                     true);
    check_line_limit("\n", 40000, AUTH_PARSER_LINE_BYTES_DEFAULT, true);
}

/* The error comes once the limit is passed, before any LF arrives. */
static void test_long_line_reported_early(void **state)
{
    (void)state;
    static auth_parser p;
    auth_parser_init(&p, &(auth_parser_limits){.line_bytes_max = LINE_MAX_TEST});
    uint8_t junk[LINE_MAX_TEST + 50];
    memset(junk, 'j', sizeof(junk));
    auth_event ev;
    size_t used = 0;
    auth_parse_rc rc = auth_parse(&p, junk, 100, &used, &ev);
    assert_int_equal(rc, AUTH_PARSE_NEED_MORE);
    assert_int_equal(used, 100);
    rc = auth_parse(&p, junk, sizeof(junk), &used, &ev);
    assert_int_equal(rc, AUTH_PARSE_ERROR);
    assert_int_equal(ev.error, AUTH_ERR_LINE_TOO_LONG);
    assert_int_equal(used, LINE_MAX_TEST - 100);
    for (size_t i = 0; i < LINE_MAX_TEST; i++) {
        if (p.line[i] != 0) {
            fail_msg("line buffer byte %zu not wiped after the over-long line", i);
        }
    }
    rc = auth_parse(&p, junk, sizeof(junk), &used, &ev);
    assert_int_equal(rc, AUTH_PARSE_NEED_MORE);
    assert_int_equal(p.mode, AUTH_PARSER_MODE_DISCARD);
    const char rest[] = "jjj\nCANCEL\t3\n";
    rc = auth_parse(&p, U8(rest), strlen(rest), &used, &ev);
    assert_int_equal(rc, AUTH_PARSE_EVENT);
    assert_int_equal(ev.cmd, AUTH_CMD_CANCEL);
    assert_int_equal(ev.id, 3);
    assert_int_equal(used, strlen(rest));
}

/* ---- direct tests ---- */

static auth_event parse_one(auth_parser *p, const char *s, size_t *used_out)
{
    auth_event ev;
    auth_parse_rc rc = auth_parse(p, U8(s), strlen(s), used_out, &ev);
    assert_int_equal(rc, AUTH_PARSE_EVENT);
    return ev;
}

/* A line inside one buffer is a slice of it; a split line is copied, and the
 * copy (it holds the password) is wiped at the next call. */
static void test_split_line_copied_and_wiped(void **state)
{
    (void)state;
    static auth_parser p;
    auth_parser_init(&p, &(auth_parser_limits){.line_bytes_max = AUTH_PARSER_LINE_BYTES_DEFAULT});
    char whole[] = "CONT\t1\tc2VjcmV0\n";
    size_t used = 0;
    auth_event ev = parse_one(&p, whole, &used);
    assert_int_equal(used, strlen(whole));
    assert_ptr_equal(ev.data.ptr, U8(whole) + 7);

    char first[] = "AUTH\t2\tPLAIN\tservice=smtp\tresp=AGFsaWNl";
    auth_parse_rc rc = auth_parse(&p, U8(first), strlen(first), &used, &ev);
    assert_int_equal(rc, AUTH_PARSE_NEED_MORE);
    assert_int_equal(used, strlen(first));
    memset(first, 'Z', strlen(first));
    ev = parse_one(&p, "AHNlY3JldA==\nCANCEL\t2\n", &used);
    assert_int_equal(used, 13);
    assert_int_equal(ev.cmd, AUTH_CMD_AUTH);
    assert_true(within(ev.auth.resp, p.line, sizeof(p.line)));
    assert_int_equal(ev.auth.resp.len, 20);
    assert_memory_equal(ev.auth.resp.ptr, "AGFsaWNlAHNlY3JldA==", 20);

    ev = parse_one(&p, "CANCEL\t2\n", &used);
    assert_int_equal(ev.cmd, AUTH_CMD_CANCEL);
    for (size_t i = 0; i < sizeof(first) + 20; i++) {
        if (p.line[i] != 0) {
            fail_msg("line buffer byte %zu (%#x) not wiped after the next call", i, p.line[i]);
        }
    }
}

static void test_clear(void **state)
{
    (void)state;
    static auth_parser p;
    auth_parser_init(&p, &(auth_parser_limits){.line_bytes_max = AUTH_PARSER_LINE_BYTES_DEFAULT});
    const char part[] = "CONT\t1\tcGFzc3dvcmQ=";
    auth_event ev;
    size_t used = 0;
    assert_int_equal(auth_parse(&p, U8(part), strlen(part), &used, &ev), AUTH_PARSE_NEED_MORE);
    assert_int_equal(p.line_len, strlen(part));
    auth_parser_clear(&p);
    for (size_t i = 0; i < strlen(part); i++) {
        if (p.line[i] != 0) {
            fail_msg("byte %zu of the partial line not wiped by auth_parser_clear", i);
        }
    }
    /* The partial line is gone: what follows starts a new line. */
    ev = parse_one(&p, "CANCEL\t9\n", &used);
    assert_int_equal(ev.cmd, AUTH_CMD_CANCEL);
    assert_int_equal(ev.id, 9);

    /* After a split line's event, clear wipes it too (slices into it die). */
    assert_int_equal(auth_parse(&p, U8(part), strlen(part), &used, &ev), AUTH_PARSE_NEED_MORE);
    ev = parse_one(&p, "\n", &used);
    assert_int_equal(ev.cmd, AUTH_CMD_CONT);
    assert_true(within(ev.data, p.line, sizeof(p.line)));
    auth_parser_clear(&p);
    for (size_t i = 0; i < strlen(part); i++) {
        if (p.line[i] != 0) {
            fail_msg("byte %zu of the last line not wiped by auth_parser_clear", i);
        }
    }
    /* An over-long line's discard mode ends too. */
    uint8_t junk[LINE_MAX_TEST + 1];
    memset(junk, 'x', sizeof(junk));
    static auth_parser q;
    auth_parser_init(&q, &(auth_parser_limits){.line_bytes_max = LINE_MAX_TEST});
    assert_int_equal(auth_parse(&q, junk, sizeof(junk), &used, &ev), AUTH_PARSE_ERROR);
    auth_parser_clear(&q);
    ev = parse_one(&q, "CPID\t4\n", &used);
    assert_int_equal(ev.cmd, AUTH_CMD_CPID);
}

static void test_consumed_stops_at_event(void **state)
{
    (void)state;
    static auth_parser p;
    auth_parser_init(&p, &(auth_parser_limits){.line_bytes_max = LINE_MAX_TEST});
    const char in[] = "VERSION\t1\t0\nCPID\t1\nBAD\t\0\nCANCEL\t1\n";
    size_t len = sizeof(in) - 1;
    size_t off = 0;
    static const struct {
        auth_parse_rc rc;
        size_t used;
    } want[] = {
        {AUTH_PARSE_EVENT, 12}, {AUTH_PARSE_EVENT, 7},     {AUTH_PARSE_ERROR, 6},
        {AUTH_PARSE_EVENT, 9},  {AUTH_PARSE_NEED_MORE, 0},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(want); i++) {
        auth_event ev;
        size_t used = SIZE_MAX;
        auth_parse_rc rc = auth_parse(&p, U8(in) + off, len - off, &used, &ev);
        if (rc != want[i].rc || used != want[i].used) {
            fail_msg("call %zu: got rc %d used %zu, want rc %d used %zu", i, (int)rc, used,
                     (int)want[i].rc, want[i].used);
        }
        off += used;
    }
    auth_event ev;
    size_t used = 1;
    assert_int_equal(auth_parse(&p, NULL, 0, &used, &ev), AUTH_PARSE_NEED_MORE);
    assert_int_equal(used, 0);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(auth_parser_cmd_name(AUTH_CMD_VERSION), "VERSION");
    assert_string_equal(auth_parser_cmd_name(AUTH_CMD_CANCEL), "CANCEL");
    assert_string_equal(auth_parser_cmd_name(AUTH_CMD_UNKNOWN), "UNKNOWN");
    assert_string_equal(auth_parser_error_text(AUTH_ERR_PARAM_AFTER_RESP),
                        "sent AUTH parameters after 'resp'");
    assert_string_equal(auth_parser_error_text(AUTH_ERR_NO_SERVICE),
                        "didn't specify service in request");
    for (int e = AUTH_ERR_NONE; e <= AUTH_ERR_PARAM_AFTER_RESP; e++) {
        const char *text = auth_parser_error_text((auth_error)e);
        if (text == NULL || text[0] == '\0') {
            fail_msg("auth_parser_error_text(%d) is empty", e);
        }
    }
}

/* ---- escaping ---- */

static void test_unescape(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t in_len;
        const char *want; /* NULL: -1 */
        size_t want_len;
    } ucases[] = {
        {IN(""), "", 0},
        {IN("plain"), "plain", 5},
        {IN("a\0010b"), "a\0b", 3},
        {IN("\0011"), "\001", 1},
        {IN("x\001ty\001rz\001n"), "x\ty\rz\n", 6},
        {IN("\001l"), "\n", 1},
        {IN("\001x\001=\001\001"), "x=\001", 3},
        {IN("\001\0011"), "\0011", 2},
        {IN("ab\001"), NULL, 0},
        {IN("\001"), NULL, 0},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(ucases); i++) {
        uint8_t out[16];
        memset(out, '#', sizeof(out));
        sl_slice src = {U8(ucases[i].in), ucases[i].in_len};
        ptrdiff_t n = auth_parser_unescape(src, out, sizeof(out));
        if (ucases[i].want == NULL) {
            if (n != -1) {
                fail_msg("unescape case %zu: got %td, want -1", i, n);
            }
            continue;
        }
        if (n != (ptrdiff_t)ucases[i].want_len || memcmp(out, ucases[i].want, ucases[i].want_len)) {
            fail_msg("unescape case %zu: got %td bytes, want %zu", i, n, ucases[i].want_len);
        }
        if (out[ucases[i].want_len] != '#') {
            fail_msg("unescape case %zu wrote past its result", i);
        }
        /* Room: exactly the result's length is enough, one less is not. */
        if (auth_parser_unescape(src, out, ucases[i].want_len) != n) {
            fail_msg("unescape case %zu into exactly %zu bytes failed", i, ucases[i].want_len);
        }
        if (ucases[i].want_len > 0 &&
            auth_parser_unescape(src, out, ucases[i].want_len - 1) != -1) {
            fail_msg("unescape case %zu into one byte too few did not fail", i);
        }
    }
    /* In place. */
    uint8_t buf[] = "u\001tv\0010w";
    ptrdiff_t n = auth_parser_unescape((sl_slice){buf, 7}, buf, 7);
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "u\tv\0w", 5);
}

static void test_escape(void **state)
{
    (void)state;
    uint8_t out[32];
    const char in[] = "a\tb\nc\rd\001e\0f=g\\";
    ptrdiff_t n = auth_escape((sl_slice){U8(in), sizeof(in) - 1}, out, sizeof(out));
    const char want[] = "a\001tb\001nc\001rd\0011e\0010f=g\\";
    if (n != (ptrdiff_t)(sizeof(want) - 1) || memcmp(out, want, sizeof(want) - 1) != 0) {
        fail_msg("escape: got %td bytes, want %zu", n, sizeof(want) - 1);
    }
    for (size_t size = 0; size < sizeof(want) - 1; size++) {
        if (auth_escape((sl_slice){U8(in), sizeof(in) - 1}, out, size) != -1) {
            fail_msg("escape into %zu bytes (need %zu) did not fail", size, sizeof(want) - 1);
        }
    }
    assert_int_equal(auth_escape((sl_slice){NULL, 0}, NULL, 0), 0);
}

/* Every byte value, and seeded random values: escaped output never holds a
 * byte that could end a field or a line, and unescaping gives the input back. */
static void test_escape_round_trip(void **state)
{
    (void)state;
    uint8_t in[512];
    uint8_t esc[AUTH_ESCAPED_LEN_MAX(sizeof(in))];
    uint8_t back[sizeof(in)];
    uint64_t s = 42;
    for (int iter = 0; iter < 500; iter++) {
        size_t len = 256;
        if (iter == 0) {
            for (size_t i = 0; i < 256; i++) {
                in[i] = (uint8_t)i;
            }
        } else {
            len = (size_t)(feed_xorshift64(&s) % sizeof(in));
            for (size_t i = 0; i < len; i++) {
                uint64_t r = feed_xorshift64(&s);
                in[i] = (r & 1) != 0 ? (uint8_t)((r >> 8) % 14) : (uint8_t)(r >> 8);
            }
        }
        ptrdiff_t e = auth_escape((sl_slice){in, len}, esc, sizeof(esc));
        assert_true(e >= (ptrdiff_t)len && e <= (ptrdiff_t)AUTH_ESCAPED_LEN_MAX(len));
        for (ptrdiff_t i = 0; i < e; i++) {
            if (esc[i] == '\t' || esc[i] == '\n' || esc[i] == '\r' || esc[i] == '\0') {
                fail_msg("iteration %d: escaped byte %td is %#x", iter, i, esc[i]);
            }
        }
        ptrdiff_t b = auth_parser_unescape((sl_slice){esc, (size_t)e}, back, sizeof(back));
        if (b != (ptrdiff_t)len || (len > 0 && memcmp(back, in, len) != 0)) {
            fail_msg("iteration %d: round trip of %zu bytes gave %td", iter, len, b);
        }
    }
}

/* ---- reply builders ---- */

/* Builds with every buffer size from 0 up: -1 below want's length with no
 * byte written past the size, the exact bytes at it. */
typedef ptrdiff_t (*build_fn)(const void *arg, uint8_t *dst, size_t dst_size);

static void check_build(const char *what, build_fn fn, const void *arg, const char *want)
{
    size_t want_len = strlen(want);
    uint8_t *buf = malloc(want_len + 16);
    assert_non_null(buf);
    for (size_t size = 0; size <= want_len + 8; size++) {
        memset(buf, '#', want_len + 16);
        ptrdiff_t n = fn(arg, buf, size);
        if (size < want_len && n != -1) {
            fail_msg("%s into %zu bytes (need %zu): got %td, want -1", what, size, want_len, n);
        }
        for (size_t i = size; i < want_len + 16; i++) {
            if (buf[i] != '#') {
                fail_msg("%s into %zu bytes wrote byte %zu", what, size, i);
            }
        }
        if (size >= want_len && (n != (ptrdiff_t)want_len || memcmp(buf, want, want_len) != 0)) {
            tbuf got = {0};
            tb_bytes(&got, (sl_slice){buf, n > 0 ? (size_t)n : 0});
            tbuf w = {0};
            tb_bytes(&w, (sl_slice){U8(want), want_len});
            print_error("%s into %zu bytes:\n got %td: %s\nwant %zu: %s\n", what, size, n,
                        got.ptr != NULL ? got.ptr : "", want_len, w.ptr);
            free(got.ptr);
            free(w.ptr);
            fail();
        }
    }
    free(buf);
}

static ptrdiff_t build_handshake(const void *arg, uint8_t *dst, size_t dst_size)
{
    return auth_parser_write_handshake(arg, dst, dst_size);
}

static void test_write_handshake(void **state)
{
    (void)state;
    static const auth_reply_mech mechs[] = {
        {"PLAIN", AUTH_MECH_FLAG_PLAINTEXT},
        {"LOGIN", AUTH_MECH_FLAG_PLAINTEXT},
        {"CRAM-MD5", AUTH_MECH_FLAG_DICTIONARY | AUTH_MECH_FLAG_ACTIVE},
        {"DIGEST-MD5",
         AUTH_MECH_FLAG_MUTUAL_AUTH | AUTH_MECH_FLAG_ACTIVE | AUTH_MECH_FLAG_DICTIONARY},
        {"SCRAM-SHA-256", AUTH_MECH_FLAG_MUTUAL_AUTH},
        {"ANONYMOUS", AUTH_MECH_FLAG_ANONYMOUS},
        {"APOP", AUTH_MECH_FLAG_ACTIVE | AUTH_MECH_FLAG_DICTIONARY | AUTH_MECH_FLAG_PRIVATE},
        {"EXTERNAL", 0},
        {"ALL", AUTH_MECH_FLAGS_ALL},
    };
    auth_reply_handshake h = {
        .mechs = mechs,
        .mechs_len = SL_ARRAY_LEN(mechs),
        .spid = 4242,
        .cuid = 7,
        .cookie = {0x00, 0x01, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc,
                   0xdd, 0xee, 0xff},
    };
    check_build("handshake", build_handshake, &h,
                "VERSION\t1\t2\n"
                "MECH\tPLAIN\tplaintext\n"
                "MECH\tLOGIN\tplaintext\n"
                "MECH\tCRAM-MD5\tdictionary\tactive\n"
                "MECH\tDIGEST-MD5\tdictionary\tactive\tmutual-auth\n"
                "MECH\tSCRAM-SHA-256\tmutual-auth\n"
                "MECH\tANONYMOUS\tanonymous\n"
                "MECH\tAPOP\tprivate\tdictionary\tactive\n"
                "MECH\tEXTERNAL\n"
                "MECH\tALL\tprivate\tanonymous\tplaintext\tdictionary\tactive\tforward-secrecy"
                "\tmutual-auth\n"
                "SPID\t4242\n"
                "CUID\t7\n"
                "COOKIE\t00012233445566778899aabbccddeeff\n"
                "DONE\n");

    auth_reply_handshake none = {.spid = 4294967295u, .cuid = 0};
    check_build("handshake without mechanisms", build_handshake, &none,
                "VERSION\t1\t2\nSPID\t4294967295\nCUID\t0\n"
                "COOKIE\t00000000000000000000000000000000\nDONE\n");
}

typedef struct cont_arg {
    uint32_t id;
    const char *challenge;
    size_t len;
} cont_arg;

static ptrdiff_t build_cont(const void *arg, uint8_t *dst, size_t dst_size)
{
    const cont_arg *c = arg;
    return auth_parser_write_cont(c->id, U8(c->challenge), c->len, dst, dst_size);
}

static void test_write_cont(void **state)
{
    (void)state;
    cont_arg c = {3, "Username:", 9};
    check_build("CONT", build_cont, &c, "CONT\t3\tVXNlcm5hbWU6\n");
    cont_arg e = {4294967295u, NULL, 0};
    check_build("CONT empty", build_cont, &e, "CONT\t4294967295\t\n");
    cont_arg b = {12, "\0\t\n\xff", 4};
    check_build("CONT binary", build_cont, &b, "CONT\t12\tAAkK/w==\n");
}

typedef struct ok_arg {
    uint32_t id;
    const char *user;
    const auth_reply_field *extra;
    size_t extra_len;
} ok_arg;

static ptrdiff_t build_ok(const void *arg, uint8_t *dst, size_t dst_size)
{
    const ok_arg *o = arg;
    return auth_parser_write_ok(o->id, SLICE(o->user), o->extra, o->extra_len, dst, dst_size);
}

static void test_write_ok(void **state)
{
    (void)state;
    ok_arg plain = {1, "alice@example.com", NULL, 0};
    check_build("OK", build_ok, &plain, "OK\t1\tuser=alice@example.com\n");
    static const auth_reply_field extra[] = {
        {"nologin", {NULL, 0}},
        {"original_user", {U8("Al\tice"), 6}},
        {"empty", {U8(""), 0}},
    };
    ok_arg more = {99, "a\nb", extra, SL_ARRAY_LEN(extra)};
    check_build("OK with extra fields", build_ok, &more,
                "OK\t99\tuser=a\001nb\tnologin\toriginal_user=Al\001tice\tempty=\n");
}

static ptrdiff_t build_fail(const void *arg, uint8_t *dst, size_t dst_size)
{
    return auth_parser_write_fail(arg, dst, dst_size);
}

static void test_write_fail(void **state)
{
    (void)state;
    auth_reply_fail bare = {.id = 5};
    check_build("FAIL bare", build_fail, &bare, "FAIL\t5\n");
    auth_reply_fail all = {
        .id = 6,
        .user = SLICE("bob"),
        .code = AUTH_FAIL_CODE_TEMP_FAIL,
        .reason = SLICE("Try\tagain\nlater"),
        .nodelay = true,
    };
    check_build("FAIL with every field", build_fail, &all,
                "FAIL\t6\tuser=bob\tcode=temp_fail\treason=Try\001tagain\001nlater\tnodelay\n");
    auth_reply_fail b64 = {
        .id = 7,
        .code = AUTH_FAIL_CODE_INVALID_BASE64,
        .reason = SLICE("Invalid base64 data in initial response"),
    };
    check_build("FAIL invalid base64", build_fail, &b64,
                "FAIL\t7\tcode=invalid_base64\treason=Invalid base64 data in initial response\n");
    auth_reply_fail timeout = {.id = 8, .reason = SLICE("Authentication request timed out")};
    check_build("FAIL timeout", build_fail, &timeout,
                "FAIL\t8\treason=Authentication request timed out\n");
}

/* What the server writes parses back through a line splitter the way a
 * client would: fields split at TAB, values unescaped. */
static void test_reply_fields_survive_escaping(void **state)
{
    (void)state;
    uint8_t user[64];
    for (size_t i = 0; i < sizeof(user); i++) {
        user[i] = (uint8_t)(i * 7 % 16); /* lots of control bytes */
    }
    uint8_t out[512];
    ptrdiff_t n =
        auth_parser_write_ok(1, (sl_slice){user, sizeof(user)}, NULL, 0, out, sizeof(out));
    assert_true(n > 0);
    assert_int_equal(out[n - 1], '\n');
    assert_null(memchr(out, '\n', (size_t)n - 1));
    const char head[] = "OK\t1\tuser=";
    assert_memory_equal(out, head, sizeof(head) - 1);
    sl_slice value = {out + sizeof(head) - 1, (size_t)n - sizeof(head)};
    assert_null(memchr(value.ptr, '\t', value.len));
    uint8_t back[64];
    ptrdiff_t b = auth_parser_unescape(value, back, sizeof(back));
    assert_int_equal(b, sizeof(user));
    assert_memory_equal(back, user, sizeof(user));
}

static void test_case(void **state)
{
    const ap_case *c = *state;
    check_all_ways(c->name, U8(c->in), c->in_len, c->want);
}

static const struct CMUnitTest fixed_tests[] = {
    cmocka_unit_test(test_line_limit),
    cmocka_unit_test(test_long_line_reported_early),
    cmocka_unit_test(test_split_line_copied_and_wiped),
    cmocka_unit_test(test_clear),
    cmocka_unit_test(test_consumed_stops_at_event),
    cmocka_unit_test(test_names),
    cmocka_unit_test(test_unescape),
    cmocka_unit_test(test_escape),
    cmocka_unit_test(test_escape_round_trip),
    cmocka_unit_test(test_write_handshake),
    cmocka_unit_test(test_write_cont),
    cmocka_unit_test(test_write_ok),
    cmocka_unit_test(test_write_fail),
    cmocka_unit_test(test_reply_fields_survive_escaping),
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
    return cmocka_run_group_tests_name("auth_parser", tests, NULL, NULL);
}
