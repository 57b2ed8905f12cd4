/* proto/lmtp_parser.c: the LMTP command, DATA and BDAT parser (see the header
 * for the contract).
 *
 * lmtp_parse() is a loop of small steps. Each step looks at the mode and the
 * unread input, and either consumes bytes (or changes state) and lets the loop
 * go on, produces one event, or stops because it needs input it does not have.
 * Nothing already consumed is scanned again: a partial command line is copied
 * into p->line, and DATA/BDAT line state lives in p->body_state and
 * p->pending_cr, so any split of the input gives the same byte stream. */
#include "proto/lmtp_parser.h"

#include "core/base/base.h"

#include <string.h>

/* DATA line state, kept in p->body_state. */
enum {
    DATA_BOL = 0, /* at the start of a line */
    DATA_DOT,     /* a '.' at the start of the line was consumed */
    DATA_DOT_CR,  /* ".\r" at the start of the line was consumed */
    DATA_MID,     /* inside a line (dot handling is done for it) */
};

typedef enum step {
    STEP_CONTINUE = 0, /* consumed input or changed state: run the next step */
    STEP_EVENT,        /* *ev is filled */
    STEP_NEED_MORE,    /* no unread input can be used: return to the caller */
} step;

typedef struct cursor {
    const uint8_t *buf;
    size_t len;
    size_t pos;
} cursor;

/* A CR held back at the end of one buffer that turned out to be content: the
 * input that held it may be gone, so the span points here instead. */
static const uint8_t lmtp_parser_cr[1] = {'\r'};

static const char *const cmd_names[] = {
    [LMTP_CMD_NONE] = "NONE",         [LMTP_CMD_LHLO] = "LHLO", [LMTP_CMD_HELO] = "HELO",
    [LMTP_CMD_EHLO] = "EHLO",         [LMTP_CMD_MAIL] = "MAIL", [LMTP_CMD_RCPT] = "RCPT",
    [LMTP_CMD_DATA] = "DATA",         [LMTP_CMD_BDAT] = "BDAT", [LMTP_CMD_RSET] = "RSET",
    [LMTP_CMD_NOOP] = "NOOP",         [LMTP_CMD_VRFY] = "VRFY", [LMTP_CMD_QUIT] = "QUIT",
    [LMTP_CMD_STARTTLS] = "STARTTLS", [LMTP_CMD_AUTH] = "AUTH", [LMTP_CMD_UNKNOWN] = "UNKNOWN",
};

/* Verbs looked up by name; LMTP_CMD_NONE and LMTP_CMD_UNKNOWN are not verbs. */
static const lmtp_cmd verbs[] = {
    LMTP_CMD_LHLO, LMTP_CMD_HELO,     LMTP_CMD_EHLO, LMTP_CMD_MAIL, LMTP_CMD_RCPT,
    LMTP_CMD_DATA, LMTP_CMD_BDAT,     LMTP_CMD_RSET, LMTP_CMD_NOOP, LMTP_CMD_VRFY,
    LMTP_CMD_QUIT, LMTP_CMD_STARTTLS, LMTP_CMD_AUTH,
};

/* ---- small slice helpers ---- */

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

static sl_slice skip_spaces(sl_slice s)
{
    size_t i = 0;
    while (i < s.len && s.ptr[i] == ' ') {
        i++;
    }
    return slice_from(s, i);
}

static sl_slice trim_trailing_spaces(sl_slice s)
{
    while (s.len > 0 && s.ptr[s.len - 1] == ' ') {
        s.len--;
    }
    return s;
}

static bool slice_has_prefix_nocase(sl_slice s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len >= n && sl_slice_eq_nocase(slice_head(s, n), lit);
}

static bool is_ctl(uint8_t b)
{
    return b < 0x20 || b == 0x7f;
}

static bool has_ctl(sl_slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        if (is_ctl(s.ptr[i])) {
            return true;
        }
    }
    return false;
}

/* Specials of RFC 5322 plus space: never allowed unquoted in a path. */
static const char path_specials[] = "()<>[]:;@\\,\" ";

static bool is_path_special(uint8_t b)
{
    return is_ctl(b) || memchr(path_specials, b, sizeof(path_specials) - 1) != NULL;
}

/* Decimal digits only (no sign, no spaces), with a value that fits in uint64_t. */
static bool parse_u64(sl_slice s, uint64_t *out)
{
    uint64_t v = 0;
    if (s.len == 0) {
        return false;
    }
    for (size_t i = 0; i < s.len; i++) {
        uint8_t d = (uint8_t)(s.ptr[i] - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* ---- paths ---- */

/* Domain of a mailbox or source route: an address literal "[...]" or a run of
 * non-special bytes. 8-bit bytes pass (UTF-8 domains under SMTPUTF8). */
static bool domain_ok(sl_slice d)
{
    if (d.len == 0) {
        return false;
    }
    if (d.ptr[0] == '[') {
        if (d.len < 3 || d.ptr[d.len - 1] != ']') {
            return false;
        }
        for (size_t i = 1; i + 1 < d.len; i++) {
            uint8_t b = d.ptr[i];
            if (b == '[' || b == ']' || b == '\\' || b == ' ' || is_ctl(b)) {
                return false;
            }
        }
        return true;
    }
    for (size_t i = 0; i < d.len; i++) {
        if (is_path_special(d.ptr[i])) {
            return false;
        }
    }
    return true;
}

/* "@a,@b" (the part before ':' of a source route). */
static bool route_ok(sl_slice r)
{
    while (true) {
        size_t comma = slice_find(r, ',');
        sl_slice hop = slice_head(r, comma);
        if (hop.len < 2 || hop.ptr[0] != '@' || !domain_ok(slice_from(hop, 1))) {
            return false;
        }
        if (comma == r.len) {
            return true;
        }
        r = slice_from(r, comma + 1);
    }
}

/* Length of a quoted local part starting at s.ptr[0] == '"', closing quote
 * included; 0 if it is not closed. Control bytes were refused earlier. */
static size_t quoted_len(sl_slice s)
{
    SL_ASSERT(s.len > 0 && s.ptr[0] == '"');
    for (size_t i = 1; i < s.len; i++) {
        if (s.ptr[i] == '\\') {
            i++;
        } else if (s.ptr[i] == '"') {
            return i + 1;
        }
    }
    return 0;
}

/* Length of the local part of mailbox m, or 0 when it is malformed. */
static size_t local_part_len(sl_slice m)
{
    if (m.len > 0 && m.ptr[0] == '"') {
        return quoted_len(m);
    }
    size_t i = 0;
    while (i < m.len && !is_path_special(m.ptr[i])) {
        i++;
    }
    return i;
}

static bool has_8bit(sl_slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] >= 0x80) {
            return true;
        }
    }
    return false;
}

/* The mailbox after any source route: local "@" domain, or (RCPT only) a bare
 * "Postmaster". */
static lmtp_error parse_mailbox(sl_slice m, bool is_rcpt, lmtp_event *ev)
{
    if (is_rcpt && sl_slice_eq_nocase(m, "postmaster")) {
        ev->path_is_postmaster = true;
    } else {
        size_t local = local_part_len(m);
        if (local == 0 || local >= m.len || m.ptr[local] != '@') {
            return LMTP_ERR_SYNTAX;
        }
        if (!domain_ok(slice_from(m, local + 1))) {
            return LMTP_ERR_SYNTAX;
        }
    }
    ev->path = m;
    ev->path_has_8bit = has_8bit(m);
    return LMTP_ERR_NONE;
}

/* inner: what stood between '<' and '>'. */
static lmtp_error parse_path_inner(sl_slice inner, bool is_rcpt, lmtp_event *ev)
{
    if (inner.len == 0) {
        ev->path = inner;
        return LMTP_ERR_NONE;
    }
    if (inner.ptr[0] == '@') {
        size_t colon = slice_find(inner, ':');
        if (colon == inner.len || !route_ok(slice_head(inner, colon))) {
            return LMTP_ERR_SYNTAX;
        }
        inner = slice_from(inner, colon + 1);
    }
    return parse_mailbox(inner, is_rcpt, ev);
}

/* Offset of the '>' that closes a path starting at s.ptr[0] == '<', skipping
 * quoted strings; s.len if there is none. */
static size_t path_end(sl_slice s)
{
    bool quoted = false;
    for (size_t i = 1; i < s.len; i++) {
        uint8_t b = s.ptr[i];
        if (quoted && b == '\\') {
            i++;
        } else if (b == '"') {
            quoted = !quoted;
        } else if (!quoted && b == '>') {
            return i;
        }
    }
    return s.len;
}

/* args: what follows "FROM:" or "TO:". On success *params_out is what follows
 * the path, leading spaces skipped. */
static lmtp_error parse_path(sl_slice args, bool is_rcpt, lmtp_event *ev, sl_slice *params_out)
{
    args = skip_spaces(args); /* "MAIL FROM: <a@b>" is common enough */
    if (args.len == 0 || args.ptr[0] != '<') {
        return LMTP_ERR_SYNTAX;
    }
    size_t end = path_end(args);
    if (end == args.len) {
        return LMTP_ERR_SYNTAX;
    }
    lmtp_error err = parse_path_inner(slice_from(slice_head(args, end), 1), is_rcpt, ev);
    if (err != LMTP_ERR_NONE) {
        return err;
    }
    sl_slice rest = slice_from(args, end + 1);
    if (rest.len > 0 && rest.ptr[0] != ' ') {
        return LMTP_ERR_SYNTAX;
    }
    *params_out = skip_spaces(rest);
    return LMTP_ERR_NONE;
}

/* ---- MAIL / RCPT parameters ---- */

typedef struct param {
    sl_slice key;
    sl_slice value;
    bool has_value;
} param;

/* Takes the next space-separated "KEY[=VALUE]" from *rest. */
static param next_param(sl_slice *rest)
{
    size_t sp = slice_find(*rest, ' ');
    sl_slice tok = slice_head(*rest, sp);
    *rest = skip_spaces(slice_from(*rest, sp));
    size_t eq = slice_find(tok, '=');
    param prm = {.key = slice_head(tok, eq), .has_value = eq < tok.len};
    prm.value = prm.has_value ? slice_from(tok, eq + 1) : (sl_slice){tok.ptr + tok.len, 0};
    return prm;
}

static lmtp_error mail_body_param(param prm, lmtp_event *ev)
{
    static const char *const names[] = {
        [LMTP_BODY_7BIT] = "7BIT",
        [LMTP_BODY_8BITMIME] = "8BITMIME",
        [LMTP_BODY_BINARYMIME] = "BINARYMIME",
    };
    if (ev->body != LMTP_BODY_NONE) {
        return LMTP_ERR_BAD_PARAM;
    }
    for (size_t i = LMTP_BODY_7BIT; i < SL_ARRAY_LEN(names); i++) {
        if (sl_slice_eq_nocase(prm.value, names[i])) {
            ev->body = (lmtp_body_type)i;
            return LMTP_ERR_NONE;
        }
    }
    return LMTP_ERR_BAD_PARAM;
}

static lmtp_error mail_param(param prm, lmtp_event *ev)
{
    if (sl_slice_eq_nocase(prm.key, "BODY")) {
        return mail_body_param(prm, ev);
    }
    if (sl_slice_eq_nocase(prm.key, "SIZE")) {
        if (ev->has_size || !parse_u64(prm.value, &ev->size)) {
            return LMTP_ERR_BAD_PARAM;
        }
        ev->has_size = true;
        return LMTP_ERR_NONE;
    }
    if (sl_slice_eq_nocase(prm.key, "SMTPUTF8")) {
        if (ev->smtputf8 || prm.has_value) {
            return LMTP_ERR_BAD_PARAM;
        }
        ev->smtputf8 = true;
        return LMTP_ERR_NONE;
    }
    return LMTP_ERR_UNSUPPORTED_PARAM;
}

/* ORCPT=addr-type;xtext (RFC 3461): kept as given for the session. */
static lmtp_error rcpt_param(param prm, lmtp_event *ev)
{
    if (!sl_slice_eq_nocase(prm.key, "ORCPT")) {
        return LMTP_ERR_UNSUPPORTED_PARAM;
    }
    size_t semi = slice_find(prm.value, ';');
    if (ev->orcpt.len > 0 || semi == 0 || semi + 1 >= prm.value.len) {
        return LMTP_ERR_BAD_PARAM;
    }
    ev->orcpt = prm.value;
    return LMTP_ERR_NONE;
}

static lmtp_error parse_params(sl_slice rest, bool is_rcpt, lmtp_event *ev)
{
    while (rest.len > 0) {
        param prm = next_param(&rest);
        if (prm.key.len == 0) {
            return LMTP_ERR_SYNTAX;
        }
        lmtp_error err = is_rcpt ? rcpt_param(prm, ev) : mail_param(prm, ev);
        if (err != LMTP_ERR_NONE) {
            return err;
        }
    }
    return LMTP_ERR_NONE;
}

/* ---- commands ---- */

/* MAIL FROM:<path> [params] and RCPT TO:<path> [params]. */
static lmtp_error parse_mail_rcpt(sl_slice args, bool is_rcpt, lmtp_event *ev)
{
    const char *lead = is_rcpt ? "TO:" : "FROM:";
    if (!slice_has_prefix_nocase(args, lead)) {
        return LMTP_ERR_SYNTAX;
    }
    sl_slice params = {0};
    lmtp_error err = parse_path(slice_from(args, strlen(lead)), is_rcpt, ev, &params);
    if (err != LMTP_ERR_NONE) {
        return err;
    }
    return parse_params(params, is_rcpt, ev);
}

/* BDAT <size> [LAST]: a bad size is a syntax error, and no chunk follows. */
static lmtp_error parse_bdat(sl_slice args, lmtp_event *ev)
{
    size_t sp = slice_find(args, ' ');
    if (!parse_u64(slice_head(args, sp), &ev->bdat_size)) {
        return LMTP_ERR_SYNTAX;
    }
    sl_slice rest = skip_spaces(slice_from(args, sp));
    if (rest.len == 0) {
        return LMTP_ERR_NONE;
    }
    if (!sl_slice_eq_nocase(rest, "LAST")) {
        return LMTP_ERR_SYNTAX;
    }
    ev->bdat_last = true;
    return LMTP_ERR_NONE;
}

static lmtp_error parse_args(lmtp_cmd cmd, sl_slice args, lmtp_event *ev)
{
    switch (cmd) {
    case LMTP_CMD_LHLO:
    case LMTP_CMD_HELO:
    case LMTP_CMD_EHLO:
        ev->arg = args;
        return args.len == 0 ? LMTP_ERR_NEEDS_ARG : LMTP_ERR_NONE;
    case LMTP_CMD_MAIL:
        return parse_mail_rcpt(args, false, ev);
    case LMTP_CMD_RCPT:
        return parse_mail_rcpt(args, true, ev);
    case LMTP_CMD_BDAT:
        return parse_bdat(args, ev);
    case LMTP_CMD_VRFY:
        ev->arg = args;
        return args.len == 0 ? LMTP_ERR_SYNTAX : LMTP_ERR_NONE;
    case LMTP_CMD_NOOP:
    case LMTP_CMD_AUTH:
        ev->arg = args;
        return LMTP_ERR_NONE;
    case LMTP_CMD_DATA:
    case LMTP_CMD_RSET:
    case LMTP_CMD_QUIT:
    case LMTP_CMD_STARTTLS:
        return args.len == 0 ? LMTP_ERR_NONE : LMTP_ERR_EXTRA_ARG;
    case LMTP_CMD_NONE:
    case LMTP_CMD_UNKNOWN:
        break;
    }
    SL_ASSERT(!"parse_args: not a verb");
    return LMTP_ERR_UNKNOWN_CMD;
}

static lmtp_cmd lookup_verb(sl_slice verb)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(verbs); i++) {
        if (sl_slice_eq_nocase(verb, cmd_names[verbs[i]])) {
            return verbs[i];
        }
    }
    return LMTP_CMD_UNKNOWN;
}

static void set_bad(lmtp_event *ev, lmtp_cmd cmd, lmtp_error err)
{
    memset(ev, 0, sizeof(*ev));
    ev->type = LMTP_EV_BAD_COMMAND;
    ev->cmd = cmd;
    ev->error = err;
}

/* What a command does to the parser once it is accepted as well-formed. */
static void apply_command(lmtp_parser *p, const lmtp_event *ev)
{
    if (ev->cmd == LMTP_CMD_BDAT) {
        p->mode = LMTP_MODE_CHUNK;
        p->chunk_left = ev->bdat_size;
        p->chunk_last = ev->bdat_last;
    } else if (ev->cmd == LMTP_CMD_RSET || ev->cmd == LMTP_CMD_LHLO) {
        /* The BDAT transaction is gone: a CR held from its last chunk too. */
        p->pending_cr = false;
    }
}

/* line: one command line without its LF. */
static void parse_line(lmtp_parser *p, sl_slice line, lmtp_event *ev)
{
    if (line.len > 0 && line.ptr[line.len - 1] == '\r') {
        line.len--;
    }
    size_t sp = slice_find(line, ' ');
    lmtp_cmd cmd = lookup_verb(slice_head(line, sp));
    if (cmd == LMTP_CMD_UNKNOWN) {
        set_bad(ev, cmd, LMTP_ERR_UNKNOWN_CMD);
        return;
    }
    sl_slice args = trim_trailing_spaces(skip_spaces(slice_from(line, sp)));
    /* Arguments end up in logs and trace headers: no CR, NUL or other controls. */
    lmtp_error err = has_ctl(args) ? LMTP_ERR_SYNTAX : parse_args(cmd, args, ev);
    if (err != LMTP_ERR_NONE) {
        set_bad(ev, cmd, err);
        return;
    }
    ev->type = LMTP_EV_COMMAND;
    ev->cmd = cmd;
    apply_command(p, ev);
}

/* ---- modes ---- */

static size_t cursor_left(const cursor *c)
{
    return c->len - c->pos;
}

static step step_command(lmtp_parser *p, cursor *c, lmtp_event *ev)
{
    size_t left = cursor_left(c);
    if (left == 0) {
        return STEP_NEED_MORE;
    }
    SL_ASSERT(p->line_len < p->limits.line_bytes_max);
    size_t room = p->limits.line_bytes_max - p->line_len; /* bytes still allowed, LF included */
    const uint8_t *start = c->buf + c->pos;
    const uint8_t *lf = memchr(start, '\n', SL_MIN(left, room));
    if (lf != NULL) {
        size_t n = (size_t)(lf - start);
        sl_slice line = {start, n};
        if (p->line_len > 0) {
            memcpy(p->line + p->line_len, start, n);
            line = (sl_slice){p->line, p->line_len + n};
        }
        p->line_len = 0;
        c->pos += n + 1;
        parse_line(p, line, ev);
        return STEP_EVENT;
    }
    if (left >= room) {
        /* Reached the limit without an LF: skip to the end of the line. */
        p->line_len = 0;
        p->mode = LMTP_MODE_DISCARD_LINE;
        c->pos += room;
        return STEP_CONTINUE;
    }
    memcpy(p->line + p->line_len, start, left);
    p->line_len += left;
    c->pos += left;
    return STEP_NEED_MORE;
}

static step step_discard(lmtp_parser *p, cursor *c, lmtp_event *ev)
{
    size_t left = cursor_left(c);
    const uint8_t *start = c->buf + c->pos;
    const uint8_t *lf = left > 0 ? memchr(start, '\n', left) : NULL;
    if (lf == NULL) {
        c->pos = c->len;
        return STEP_NEED_MORE;
    }
    c->pos += (size_t)(lf - start) + 1;
    p->mode = LMTP_MODE_COMMAND;
    set_bad(ev, LMTP_CMD_UNKNOWN, LMTP_ERR_LINE_TOO_LONG);
    return STEP_EVENT;
}

static void set_span(lmtp_event *ev, const uint8_t *ptr, size_t len, bool eol)
{
    ev->type = LMTP_EV_BODY_SPAN;
    ev->span = (sl_slice){ptr, len};
    ev->eol = eol;
}

/* Content up to the end of the line, within the next n unread bytes (DATA and
 * BDAT alike). A CR as the last of those bytes is held in p->pending_cr until
 * the next byte shows whether it ends the line. */
static step body_line(lmtp_parser *p, cursor *c, size_t n, lmtp_event *ev)
{
    const uint8_t *start = c->buf + c->pos;
    if (n == 0) {
        return STEP_NEED_MORE;
    }
    if (p->pending_cr) {
        p->pending_cr = false;
        if (start[0] == '\n') {
            c->pos++;
            set_span(ev, start, 0, true);
        } else {
            set_span(ev, lmtp_parser_cr, 1, false);
        }
        return STEP_EVENT;
    }
    const uint8_t *lf = memchr(start, '\n', n);
    if (lf != NULL) {
        size_t len = (size_t)(lf - start);
        c->pos += len + 1;
        set_span(ev, start, len > 0 && start[len - 1] == '\r' ? len - 1 : len, true);
        return STEP_EVENT;
    }
    c->pos += n;
    if (start[n - 1] == '\r') {
        p->pending_cr = true;
        n--;
    }
    if (n == 0) {
        return STEP_CONTINUE;
    }
    set_span(ev, start, n, false);
    return STEP_EVENT;
}

static step data_end(lmtp_parser *p, cursor *c, size_t n, lmtp_event *ev)
{
    c->pos += n;
    p->mode = LMTP_MODE_COMMAND;
    p->body_state = DATA_BOL;
    p->pending_cr = false;
    ev->type = LMTP_EV_DATA_END;
    return STEP_EVENT;
}

/* A '.' opened the line. ".\r\n" and ".\n" end the data; otherwise the dot is
 * dropped and the rest of the line is content, a CR included. */
static step data_after_dot(lmtp_parser *p, cursor *c, lmtp_event *ev)
{
    size_t left = cursor_left(c);
    const uint8_t *b = c->buf + c->pos;
    if (left == 0) {
        return STEP_NEED_MORE;
    }
    if (b[0] == '\n') {
        return data_end(p, c, 1, ev);
    }
    if (b[0] == '\r' && left == 1) {
        c->pos++;
        p->body_state = DATA_DOT_CR;
        return STEP_CONTINUE;
    }
    if (b[0] == '\r' && b[1] == '\n') {
        return data_end(p, c, 2, ev);
    }
    p->body_state = DATA_MID;
    return STEP_CONTINUE;
}

/* ".\r" was consumed from an earlier buffer. */
static step data_after_dot_cr(lmtp_parser *p, cursor *c, lmtp_event *ev)
{
    if (cursor_left(c) == 0) {
        return STEP_NEED_MORE;
    }
    if (c->buf[c->pos] == '\n') {
        return data_end(p, c, 1, ev);
    }
    /* The CR is content of a dot-unstuffed line; body_line emits it. */
    p->body_state = DATA_MID;
    p->pending_cr = true;
    return STEP_CONTINUE;
}

static step step_data(lmtp_parser *p, cursor *c, lmtp_event *ev)
{
    switch (p->body_state) {
    case DATA_BOL:
        if (cursor_left(c) == 0) {
            return STEP_NEED_MORE;
        }
        if (c->buf[c->pos] == '.') {
            c->pos++;
            p->body_state = DATA_DOT;
        } else {
            p->body_state = DATA_MID;
        }
        return STEP_CONTINUE;
    case DATA_DOT:
        return data_after_dot(p, c, ev);
    case DATA_DOT_CR:
        return data_after_dot_cr(p, c, ev);
    default:
        break;
    }
    SL_ASSERT(p->body_state == DATA_MID);
    step rc = body_line(p, c, cursor_left(c), ev);
    if (rc == STEP_EVENT && ev->eol) {
        p->body_state = DATA_BOL;
    }
    return rc;
}

static step chunk_end(lmtp_parser *p, lmtp_event *ev)
{
    if (p->chunk_last && p->pending_cr) {
        /* The message ends here, so a held CR can only be content. */
        p->pending_cr = false;
        set_span(ev, lmtp_parser_cr, 1, false);
        return STEP_EVENT;
    }
    ev->type = LMTP_EV_CHUNK_END;
    ev->bdat_last = p->chunk_last;
    p->mode = LMTP_MODE_COMMAND;
    p->chunk_last = false;
    return STEP_EVENT;
}

static step step_chunk(lmtp_parser *p, cursor *c, lmtp_event *ev)
{
    if (p->chunk_left == 0) {
        return chunk_end(p, ev);
    }
    size_t n = (size_t)SL_MIN((uint64_t)cursor_left(c), p->chunk_left);
    size_t before = c->pos;
    step rc = body_line(p, c, n, ev);
    p->chunk_left -= c->pos - before;
    return rc;
}

static step run_step(lmtp_parser *p, cursor *c, lmtp_event *ev)
{
    switch (p->mode) {
    case LMTP_MODE_COMMAND:
        return step_command(p, c, ev);
    case LMTP_MODE_DATA:
        return step_data(p, c, ev);
    case LMTP_MODE_CHUNK:
        return step_chunk(p, c, ev);
    case LMTP_MODE_DISCARD_LINE:
        return step_discard(p, c, ev);
    }
    SL_ASSERT(!"lmtp_parser: bad mode");
    return STEP_NEED_MORE;
}

/* ---- public API ---- */

void lmtp_parser_init(lmtp_parser *p, const lmtp_limits *limits)
{
    SL_ASSERT(limits->line_bytes_max >= 512);
    SL_ASSERT(limits->line_bytes_max <= LMTP_LINE_BYTES_CAP);
    p->limits = *limits;
    p->mode = LMTP_MODE_COMMAND;
    p->line_len = 0;
    p->body_state = DATA_BOL;
    p->chunk_left = 0;
    p->chunk_last = false;
    p->pending_cr = false;
}

lmtp_parse_rc lmtp_parse(lmtp_parser *p, const uint8_t *buf, size_t len, size_t *consumed_out,
                         lmtp_event *ev_out)
{
    static const uint8_t no_bytes[1] = {0};
    SL_ASSERT(buf != NULL || len == 0);
    /* (NULL, 0) is a valid empty input, but NULL + 0 is not valid C. */
    cursor c = {.buf = buf != NULL ? buf : no_bytes, .len = len, .pos = 0};
    memset(ev_out, 0, sizeof(*ev_out));
    step rc = STEP_CONTINUE;
    while (rc == STEP_CONTINUE) {
        rc = run_step(p, &c, ev_out);
        SL_ASSERT(c.pos <= len);
    }
    *consumed_out = c.pos;
    if (rc == STEP_EVENT) {
        return LMTP_PARSE_EVENT;
    }
    SL_ASSERT(c.pos == len);
    return LMTP_PARSE_NEED_MORE;
}

void lmtp_parser_begin_data(lmtp_parser *p)
{
    SL_ASSERT(p->mode == LMTP_MODE_COMMAND);
    SL_ASSERT(p->line_len == 0);
    p->mode = LMTP_MODE_DATA;
    p->body_state = DATA_BOL;
    p->pending_cr = false;
}

lmtp_mode lmtp_parser_mode(const lmtp_parser *p)
{
    return p->mode;
}

const char *lmtp_cmd_name(lmtp_cmd cmd)
{
    SL_ASSERT((size_t)cmd < SL_ARRAY_LEN(cmd_names));
    return cmd_names[cmd];
}
