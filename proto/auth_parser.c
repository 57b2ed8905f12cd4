/* proto/auth_parser.c: the Dovecot auth client protocol parser, value
 * escaping and reply builders (see the header for the contract).
 *
 * auth_parse() finds one line and parses it as a whole: the protocol has no
 * state inside a line worth keeping across buffers, so resumability comes
 * from the line framing alone. Bytes of a line that arrive in pieces are
 * copied once into p->line and never scanned again: only new bytes are
 * searched for the LF. */
#include "proto/auth_parser.h"

#include "core/base/base.h"
#include "core/base/base64.h"

#include <string.h>

#define ESC 0x01 /* Dovecot's tab-escape byte */

static const char *const cmd_names[] = {
    [AUTH_CMD_NONE] = "NONE",       [AUTH_CMD_VERSION] = "VERSION", [AUTH_CMD_CPID] = "CPID",
    [AUTH_CMD_AUTH] = "AUTH",       [AUTH_CMD_CONT] = "CONT",       [AUTH_CMD_CANCEL] = "CANCEL",
    [AUTH_CMD_UNKNOWN] = "UNKNOWN",
};

static const char *const error_texts[] = {
    [AUTH_ERR_NONE] = "no error",
    [AUTH_ERR_LINE_TOO_LONG] = "sent a line longer than the limit",
    [AUTH_ERR_NUL] = "sent a NUL byte",
    [AUTH_ERR_SYNTAX] = "sent a broken request",
    [AUTH_ERR_BAD_NUMBER] = "sent a broken VERSION or CPID",
    [AUTH_ERR_BAD_ID] = "sent a broken request id",
    [AUTH_ERR_NO_SERVICE] = "didn't specify service in request",
    [AUTH_ERR_PARAM_AFTER_RESP] = "sent AUTH parameters after 'resp'",
};

/* ---- slices and fields ---- */

static sl_slice slice_from(sl_slice s, size_t off)
{
    SL_ASSERT(off <= s.len);
    return (sl_slice){s.ptr + off, s.len - off};
}

static sl_slice slice_head(sl_slice s, size_t n)
{
    SL_ASSERT(n <= s.len);
    return (sl_slice){s.ptr, n};
}

static size_t slice_find(sl_slice s, uint8_t b)
{
    const uint8_t *hit = s.len > 0 ? memchr(s.ptr, b, s.len) : NULL;
    return hit != NULL ? (size_t)(hit - s.ptr) : s.len;
}

/* Exact, case-sensitive comparison with a literal. */
static bool slice_is(sl_slice s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && (n == 0 || memcmp(s.ptr, lit, n) == 0);
}

/* Decimal digits only (no sign, no spaces), value <= max. */
static bool parse_u32(sl_slice s, uint32_t max, uint32_t *out)
{
    uint32_t v = 0;
    if (s.len == 0) {
        return false;
    }
    for (size_t i = 0; i < s.len; i++) {
        uint32_t d = (uint32_t)s.ptr[i] - '0';
        if (d > 9 || v > (max - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* The TAB-separated fields of a line, taken one at a time. */
typedef struct fields {
    sl_slice rest; /* what follows the last TAB taken */
    bool more;     /* rest is a field (possibly empty) */
} fields;

static bool field_next(fields *f, sl_slice *out)
{
    if (!f->more) {
        return false;
    }
    size_t tab = slice_find(f->rest, '\t');
    *out = slice_head(f->rest, tab);
    f->more = tab < f->rest.len;
    f->rest = slice_from(f->rest, f->more ? tab + 1 : tab);
    return true;
}

/* ---- commands ---- */

static auth_error parse_version(fields *f, auth_event *ev)
{
    sl_slice major = {0};
    sl_slice minor = {0};
    if (!field_next(f, &major) || !field_next(f, &minor)) {
        return AUTH_ERR_SYNTAX;
    }
    if (!parse_u32(major, UINT32_MAX, &ev->version_major) ||
        !parse_u32(minor, UINT32_MAX, &ev->version_minor)) {
        return AUTH_ERR_BAD_NUMBER;
    }
    return AUTH_ERR_NONE;
}

static auth_error parse_cpid(fields *f, auth_event *ev)
{
    sl_slice pid = {0};
    if (!field_next(f, &pid)) {
        return AUTH_ERR_SYNTAX;
    }
    if (!parse_u32(pid, UINT32_MAX, &ev->cpid) || ev->cpid == 0) {
        return AUTH_ERR_BAD_NUMBER;
    }
    return AUTH_ERR_NONE;
}

/* The request id field of AUTH, CONT and CANCEL. */
static auth_error parse_id(fields *f, auth_event *ev)
{
    sl_slice id = {0};
    if (!field_next(f, &id)) {
        return AUTH_ERR_SYNTAX;
    }
    if (!parse_u32(id, UINT32_MAX, &ev->id) || ev->id == 0) {
        return AUTH_ERR_BAD_ID;
    }
    return AUTH_ERR_NONE;
}

static auth_error parse_cont(fields *f, auth_event *ev)
{
    auth_error err = parse_id(f, ev);
    if (err != AUTH_ERR_NONE) {
        return err;
    }
    if (!f->more) {
        return AUTH_ERR_SYNTAX;
    }
    ev->data = f->rest;
    return AUTH_ERR_NONE;
}

static auth_error parse_cancel(fields *f, auth_event *ev)
{
    auth_error err = parse_id(f, ev);
    if (err != AUTH_ERR_NONE) {
        return err;
    }
    return f->more ? AUTH_ERR_SYNTAX : AUTH_ERR_NONE;
}

/* ---- AUTH parameters ---- */

typedef enum param_kind {
    PARAM_SLICE,
    PARAM_PORT,
    PARAM_FLAG,
    PARAM_SECURED,
} param_kind;

typedef struct param_def {
    const char *name;
    param_kind kind;
    size_t offset; /* of the field in auth_params */
} param_def;

static const param_def param_defs[] = {
    {"service", PARAM_SLICE, offsetof(auth_params, service)},
    {"lip", PARAM_SLICE, offsetof(auth_params, lip)},
    {"rip", PARAM_SLICE, offsetof(auth_params, rip)},
    {"lport", PARAM_PORT, offsetof(auth_params, lport)},
    {"rport", PARAM_PORT, offsetof(auth_params, rport)},
    {"real_lip", PARAM_SLICE, offsetof(auth_params, real_lip)},
    {"real_rip", PARAM_SLICE, offsetof(auth_params, real_rip)},
    {"real_lport", PARAM_PORT, offsetof(auth_params, real_lport)},
    {"real_rport", PARAM_PORT, offsetof(auth_params, real_rport)},
    {"local_name", PARAM_SLICE, offsetof(auth_params, local_name)},
    {"session", PARAM_SLICE, offsetof(auth_params, session)},
    {"client_id", PARAM_SLICE, offsetof(auth_params, client_id)},
    {"secured", PARAM_SECURED, offsetof(auth_params, secured)},
    {"nologin", PARAM_FLAG, offsetof(auth_params, nologin)},
    {"no-penalty", PARAM_FLAG, offsetof(auth_params, no_penalty)},
    {"valid-client-cert", PARAM_FLAG, offsetof(auth_params, valid_client_cert)},
    {"cert_username", PARAM_SLICE, offsetof(auth_params, cert_username)},
    {"transport", PARAM_SLICE, offsetof(auth_params, transport)},
    {"tls_cipher", PARAM_SLICE, offsetof(auth_params, tls_cipher)},
    {"tls_cipher_bits", PARAM_SLICE, offsetof(auth_params, tls_cipher_bits)},
    {"tls_pfs", PARAM_SLICE, offsetof(auth_params, tls_pfs)},
    {"tls_protocol", PARAM_SLICE, offsetof(auth_params, tls_protocol)},
};

static void import_param(sl_slice name, sl_slice value, auth_params *a)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(param_defs); i++) {
        const param_def *d = &param_defs[i];
        if (!slice_is(name, d->name)) {
            continue;
        }
        void *field = (char *)a + d->offset;
        uint32_t port = 0;
        switch (d->kind) {
        case PARAM_SLICE:
            *(sl_slice *)field = value;
            break;
        case PARAM_PORT:
            if (parse_u32(value, UINT16_MAX, &port) && port != 0) {
                *(uint16_t *)field = (uint16_t)port;
            }
            break;
        case PARAM_FLAG:
            *(bool *)field = true;
            break;
        case PARAM_SECURED:
            *(auth_secured *)field = slice_is(value, "tls") ? AUTH_SECURED_TLS : AUTH_SECURED_YES;
            break;
        }
        return;
    }
}

/* resp=<value>: see the header for the empty-value rule. */
static void set_resp(const auth_parser *p, sl_slice value, auth_params *a)
{
    if (value.len == 0) {
        a->resp_kind = p->version_minor < 2 ? AUTH_RESP_NONE : AUTH_RESP_EMPTY;
    } else if (slice_is(value, "=")) {
        a->resp_kind = AUTH_RESP_EMPTY;
    } else {
        a->resp_kind = AUTH_RESP_DATA;
        a->resp = value;
    }
}

static auth_error parse_auth(const auth_parser *p, fields *f, auth_event *ev)
{
    auth_error err = parse_id(f, ev);
    if (err != AUTH_ERR_NONE) {
        return err;
    }
    if (!field_next(f, &ev->mech)) {
        return AUTH_ERR_SYNTAX;
    }
    sl_slice field = {0};
    while (field_next(f, &field)) {
        size_t eq = slice_find(field, '=');
        sl_slice name = slice_head(field, eq);
        sl_slice value = slice_from(field, eq < field.len ? eq + 1 : eq);
        if (slice_is(name, "resp")) {
            if (f->more) {
                return AUTH_ERR_PARAM_AFTER_RESP;
            }
            set_resp(p, value, &ev->auth);
            break;
        }
        import_param(name, value, &ev->auth);
    }
    if (ev->auth.service.len == 0) {
        return AUTH_ERR_NO_SERVICE;
    }
    return AUTH_ERR_NONE;
}

static auth_cmd lookup_cmd(sl_slice name)
{
    for (size_t i = AUTH_CMD_VERSION; i < AUTH_CMD_UNKNOWN; i++) {
        if (slice_is(name, cmd_names[i])) {
            return (auth_cmd)i;
        }
    }
    return AUTH_CMD_UNKNOWN;
}

static auth_error parse_args(auth_parser *p, auth_cmd cmd, fields *f, auth_event *ev)
{
    switch (cmd) {
    case AUTH_CMD_VERSION:
        return parse_version(f, ev);
    case AUTH_CMD_CPID:
        return parse_cpid(f, ev);
    case AUTH_CMD_AUTH:
        return parse_auth(p, f, ev);
    case AUTH_CMD_CONT:
        return parse_cont(f, ev);
    case AUTH_CMD_CANCEL:
        return parse_cancel(f, ev);
    case AUTH_CMD_NONE:
    case AUTH_CMD_UNKNOWN:
        break;
    }
    SL_ASSERT(!"auth_parser: parse_args without a command");
    return AUTH_ERR_SYNTAX;
}

static auth_parse_rc set_error(auth_event *ev, auth_cmd cmd, auth_error err)
{
    memset(ev, 0, sizeof(*ev));
    ev->cmd = cmd;
    ev->error = err;
    return AUTH_PARSE_ERROR;
}

/* line: one line without its LF. */
static auth_parse_rc parse_line(auth_parser *p, sl_slice line, auth_event *ev)
{
    if (line.len > 0 && line.ptr[line.len - 1] == '\r') {
        line.len--;
    }
    fields f = {.rest = line, .more = true};
    sl_slice name = {0};
    field_next(&f, &name);
    auth_cmd cmd = lookup_cmd(name);
    if (slice_find(line, '\0') < line.len) {
        return set_error(ev, cmd, AUTH_ERR_NUL);
    }
    ev->cmd = cmd;
    if (cmd == AUTH_CMD_UNKNOWN) {
        ev->name = name;
        return AUTH_PARSE_EVENT;
    }
    auth_error err = parse_args(p, cmd, &f, ev);
    if (err != AUTH_ERR_NONE) {
        return set_error(ev, cmd, err);
    }
    if (cmd == AUTH_CMD_VERSION) {
        p->version_minor = ev->version_minor;
    }
    return AUTH_PARSE_EVENT;
}

/* ---- framing ---- */

/* Skip to the end of an over-long line; returns the bytes used. */
static size_t discard(auth_parser *p, const uint8_t *buf, size_t len)
{
    const uint8_t *lf = len > 0 ? memchr(buf, '\n', len) : NULL;
    if (lf == NULL) {
        return len;
    }
    p->mode = AUTH_PARSER_MODE_LINE;
    return (size_t)(lf - buf) + 1;
}

void auth_parser_init(auth_parser *p, const auth_parser_limits *limits)
{
    SL_ASSERT(limits->line_bytes_max >= AUTH_PARSER_LINE_BYTES_MIN);
    SL_ASSERT(limits->line_bytes_max <= AUTH_PARSER_LINE_BYTES_CAP);
    p->limits = *limits;
    p->mode = AUTH_PARSER_MODE_LINE;
    p->version_minor = 0;
    p->line_len = 0;
    p->line_used = 0;
}

auth_parse_rc auth_parse(auth_parser *p, const uint8_t *buf, size_t len, size_t *consumed_out,
                         auth_event *ev_out)
{
    SL_ASSERT(buf != NULL || len == 0);
    memset(ev_out, 0, sizeof(*ev_out));
    if (p->line_used > 0) {
        /* The last event's line may hold a password and is no longer borrowed. */
        explicit_bzero(p->line, p->line_used);
        p->line_used = 0;
    }
    size_t pos = 0;
    if (p->mode == AUTH_PARSER_MODE_DISCARD) {
        pos = discard(p, buf, len);
    }
    size_t left = len - pos;
    if (left == 0) {
        *consumed_out = len;
        return AUTH_PARSE_NEED_MORE;
    }
    SL_ASSERT(p->line_len < p->limits.line_bytes_max);
    size_t room = p->limits.line_bytes_max - p->line_len; /* bytes still allowed, LF included */
    const uint8_t *start = buf + pos;
    const uint8_t *lf = memchr(start, '\n', SL_MIN(left, room));
    if (lf != NULL) {
        size_t n = (size_t)(lf - start);
        sl_slice line = {start, n};
        if (p->line_len > 0) {
            memcpy(p->line + p->line_len, start, n);
            line = (sl_slice){p->line, p->line_len + n};
            p->line_used = line.len;
            p->line_len = 0;
        }
        *consumed_out = pos + n + 1;
        return parse_line(p, line, ev_out);
    }
    if (left >= room) {
        explicit_bzero(p->line, p->line_len);
        p->line_len = 0;
        p->mode = AUTH_PARSER_MODE_DISCARD;
        *consumed_out = pos + room;
        return set_error(ev_out, AUTH_CMD_NONE, AUTH_ERR_LINE_TOO_LONG);
    }
    memcpy(p->line + p->line_len, start, left);
    p->line_len += left;
    *consumed_out = len;
    return AUTH_PARSE_NEED_MORE;
}

void auth_parser_clear(auth_parser *p)
{
    explicit_bzero(p->line, SL_MAX(p->line_len, p->line_used));
    p->line_len = 0;
    p->line_used = 0;
    p->mode = AUTH_PARSER_MODE_LINE;
}

const char *auth_parser_cmd_name(auth_cmd cmd)
{
    SL_ASSERT((size_t)cmd < SL_ARRAY_LEN(cmd_names));
    return cmd_names[cmd];
}

const char *auth_parser_error_text(auth_error err)
{
    SL_ASSERT((size_t)err < SL_ARRAY_LEN(error_texts));
    return error_texts[err];
}

/* ---- values ---- */

ptrdiff_t auth_parser_unescape(sl_slice src, uint8_t *dst, size_t dst_size)
{
    SL_ASSERT(src.ptr != NULL || src.len == 0);
    size_t o = 0;
    for (size_t i = 0; i < src.len; i++) {
        uint8_t b = src.ptr[i];
        if (b == ESC) {
            if (++i == src.len) {
                return -1;
            }
            switch (src.ptr[i]) {
            case '0':
                b = '\0';
                break;
            case '1':
                b = ESC;
                break;
            case 't':
                b = '\t';
                break;
            case 'r':
                b = '\r';
                break;
            case 'n':
            case 'l':
                b = '\n';
                break;
            default:
                b = src.ptr[i];
                break;
            }
        }
        if (o == dst_size) {
            return -1;
        }
        dst[o++] = b;
    }
    return (ptrdiff_t)o;
}

/* The letter after \001 for a byte that must be escaped, or 0. */
static uint8_t escape_letter(uint8_t b)
{
    switch (b) {
    case '\0':
        return '0';
    case ESC:
        return '1';
    case '\t':
        return 't';
    case '\r':
        return 'r';
    case '\n':
        return 'n';
    default:
        return 0;
    }
}

ptrdiff_t auth_escape(sl_slice src, uint8_t *dst, size_t dst_size)
{
    SL_ASSERT(src.ptr != NULL || src.len == 0);
    size_t o = 0;
    for (size_t i = 0; i < src.len; i++) {
        uint8_t letter = escape_letter(src.ptr[i]);
        size_t need = letter != 0 ? 2 : 1;
        if (dst_size - o < need) {
            return -1;
        }
        if (letter != 0) {
            dst[o++] = ESC;
            dst[o++] = letter;
        } else {
            dst[o++] = src.ptr[i];
        }
    }
    return (ptrdiff_t)o;
}

/* ---- replies ---- */

/* A bounded writer: once something does not fit, every later write is
 * dropped and the result is -1. */
typedef struct writer {
    uint8_t *dst;
    size_t size;
    size_t len;
    bool full;
} writer;

static void put_bytes(writer *w, const void *src, size_t n)
{
    if (w->full || w->size - w->len < n) {
        w->full = true;
        return;
    }
    if (n > 0) {
        memcpy(w->dst + w->len, src, n);
    }
    w->len += n;
}

static void put_str(writer *w, const char *s)
{
    put_bytes(w, s, strlen(s));
}

static void put_u32(writer *w, uint32_t v)
{
    char tmp[10];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put_bytes(w, tmp + sizeof(tmp) - n, n);
}

static void put_escaped(writer *w, sl_slice value)
{
    if (w->full) {
        return;
    }
    ptrdiff_t n = auth_escape(value, w->dst + w->len, w->size - w->len);
    if (n < 0) {
        w->full = true;
        return;
    }
    w->len += (size_t)n;
}

/* "\t<name>=<escaped value>" */
static void put_field(writer *w, const char *name, sl_slice value)
{
    put_str(w, "\t");
    put_str(w, name);
    put_str(w, "=");
    put_escaped(w, value);
}

static ptrdiff_t writer_end(const writer *w)
{
    return w->full ? -1 : (ptrdiff_t)w->len;
}

/* A token written without escaping must not be able to break the line. */
static bool is_plain_token(const char *s, bool allow_eq)
{
    if (s == NULL || s[0] == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (escape_letter((uint8_t)*s) != 0 || (*s == '=' && !allow_eq)) {
            return false;
        }
    }
    return true;
}

static const char *const mech_flag_names[] = {
    "private", "anonymous", "plaintext", "dictionary", "active", "forward-secrecy", "mutual-auth",
};

static void put_mech(writer *w, const auth_reply_mech *m)
{
    SL_ASSERT(m->name != NULL && m->name[0] != '\0');
    SL_ASSERT((m->flags & ~(unsigned)AUTH_MECH_FLAGS_ALL) == 0);
    put_str(w, "MECH\t");
    put_escaped(w, (sl_slice){(const uint8_t *)m->name, strlen(m->name)});
    for (size_t bit = 0; bit < SL_ARRAY_LEN(mech_flag_names); bit++) {
        if ((m->flags & (1u << bit)) != 0) {
            put_str(w, "\t");
            put_str(w, mech_flag_names[bit]);
        }
    }
    put_str(w, "\n");
}

ptrdiff_t auth_parser_write_handshake(const auth_reply_handshake *h, uint8_t *dst, size_t dst_size)
{
    static const char hex[] = "0123456789abcdef";
    SL_ASSERT(h->mechs != NULL || h->mechs_len == 0);
    writer w = {.dst = dst, .size = dst_size};
    put_str(&w, "VERSION\t");
    put_u32(&w, AUTH_PROTOCOL_MAJOR);
    put_str(&w, "\t");
    put_u32(&w, AUTH_PROTOCOL_MINOR);
    put_str(&w, "\n");
    for (size_t i = 0; i < h->mechs_len; i++) {
        put_mech(&w, &h->mechs[i]);
    }
    put_str(&w, "SPID\t");
    put_u32(&w, h->spid);
    put_str(&w, "\nCUID\t");
    put_u32(&w, h->cuid);
    put_str(&w, "\nCOOKIE\t");
    char cookie[2 * sizeof(h->cookie)];
    for (size_t i = 0; i < sizeof(h->cookie); i++) {
        cookie[2 * i] = hex[h->cookie[i] >> 4];
        cookie[2 * i + 1] = hex[h->cookie[i] & 0x0f];
    }
    put_bytes(&w, cookie, sizeof(cookie));
    put_str(&w, "\nDONE\n");
    return writer_end(&w);
}

ptrdiff_t auth_parser_write_cont(uint32_t id, const uint8_t *challenge, size_t len, uint8_t *dst,
                                 size_t dst_size)
{
    SL_ASSERT(challenge != NULL || len == 0);
    writer w = {.dst = dst, .size = dst_size};
    put_str(&w, "CONT\t");
    put_u32(&w, id);
    put_str(&w, "\t");
    if (!w.full) {
        ptrdiff_t n = len <= SL_BASE64_ENCODE_SRC_MAX
                          ? sl_base64_encode(challenge, len, w.dst + w.len, w.size - w.len)
                          : -1;
        if (n < 0) {
            w.full = true;
        } else {
            w.len += (size_t)n;
        }
    }
    put_str(&w, "\n");
    return writer_end(&w);
}

ptrdiff_t auth_parser_write_ok(uint32_t id, sl_slice user, const auth_reply_field *extra,
                               size_t extra_len, uint8_t *dst, size_t dst_size)
{
    SL_ASSERT(extra != NULL || extra_len == 0);
    writer w = {.dst = dst, .size = dst_size};
    put_str(&w, "OK\t");
    put_u32(&w, id);
    put_field(&w, "user", user);
    for (size_t i = 0; i < extra_len; i++) {
        const auth_reply_field *f = &extra[i];
        SL_ASSERT(is_plain_token(f->name, false));
        if (f->value.ptr == NULL) {
            put_str(&w, "\t");
            put_str(&w, f->name);
        } else {
            put_field(&w, f->name, f->value);
        }
    }
    put_str(&w, "\n");
    return writer_end(&w);
}

ptrdiff_t auth_parser_write_fail(const auth_reply_fail *f, uint8_t *dst, size_t dst_size)
{
    writer w = {.dst = dst, .size = dst_size};
    put_str(&w, "FAIL\t");
    put_u32(&w, f->id);
    if (f->user.len > 0) {
        put_field(&w, "user", f->user);
    }
    if (f->code != NULL) {
        SL_ASSERT(is_plain_token(f->code, true));
        put_str(&w, "\tcode=");
        put_str(&w, f->code);
    }
    if (f->reason.len > 0) {
        put_field(&w, "reason", f->reason);
    }
    if (f->nodelay) {
        put_str(&w, "\tnodelay");
    }
    put_str(&w, "\n");
    return writer_end(&w);
}
