/* proto/auth_parser.h: the server side of the Dovecot authentication client
 * protocol (what Postfix speaks with smtpd_sasl_type = dovecot): a pure,
 * resumable parser for the client's lines, value (un)escaping, and builders
 * for the server's replies.
 *
 * Bytes in, at most one event out per call. Lines end at LF; a CR right before
 * the LF is dropped. Fields are separated by TAB. A line that lies inside one
 * input buffer is parsed in place; only a line split across input buffers is
 * copied, into the parser's own embedded line buffer (p->line, bounded by
 * limits.line_bytes_max), so the caller may release an input buffer as soon as
 * everything in it is consumed.
 *
 * Event slices are raw wire bytes, still \001-escaped (auth_parser_unescape()
 * turns a value into bytes). They point into the buffer passed to auth_parse()
 * or into p->line, and stay valid until the next auth_parse() or
 * auth_parser_clear() call on this parser (and only while the caller keeps its
 * input buffer alive). p->line may hold a password (resp=, CONT data): the
 * parser wipes the line an event came from at the start of the next call, and
 * auth_parser_clear() wipes everything it holds; the caller wipes its own
 * receive buffers.
 *
 * Defined behaviour, following Dovecot 2.3 where it is stricter or looser:
 *  - Command names and parameter names are case-sensitive, as in Dovecot.
 *  - A line longer than limits.line_bytes_max (LF included) is an error as
 *    soon as the limit is passed, without waiting for the LF; if the caller
 *    goes on, the rest of that line is skipped without another event.
 *  - A raw NUL byte anywhere in a line is an error (NUL travels as \0010).
 *  - AUTH parameters: unknown ones are ignored; a later duplicate wins; a
 *    port that is not 1..65535 is ignored, as Dovecot ignores it; bare
 *    booleans are set whatever value they carry. "resp" must be the last field
 *    (even an empty field after it is an error). A missing or empty service is
 *    an error (Dovecot accepts an empty one; no passdb can use it).
 *  - Initial response (Dovecot 2.3 auth-request-handler.c): "resp=" with an
 *    empty value (or a bare "resp") means "no initial response" when the
 *    client's VERSION minor is below 2 (Postfix sends 1.0; Exim sends the
 *    empty field for "none"), and "empty response" from minor 2 on; "resp=="
 *    is always an empty response. The parser remembers the minor of the last
 *    well-formed VERSION line (0 before one) to decide.
 *  - CONT data is the rest of the line after "CONT\t<id>\t", TABs included
 *    (as in Dovecot); it is base64 text, still to be decoded and checked.
 *  - CANCEL takes exactly one field; VERSION and CPID ignore extra fields.
 *
 * Includes only core/base. Safe to call from any thread on its own parser. */
#ifndef SL_AUTH_PARSER_H
#define SL_AUTH_PARSER_H

#include "core/base/base.h"

/* AUTH_CLIENT_MAX_LINE_LENGTH in Dovecot's auth-client-interface.h. */
#define AUTH_PARSER_LINE_BYTES_DEFAULT 16384
#define AUTH_PARSER_LINE_BYTES_MIN 256
#define AUTH_PARSER_LINE_BYTES_CAP 65536

/* What the server announces in its VERSION line. */
#define AUTH_PROTOCOL_MAJOR 1
#define AUTH_PROTOCOL_MINOR 2

typedef struct auth_parser_limits {
    /* A line, LF (and CR) included: [AUTH_PARSER_LINE_BYTES_MIN, AUTH_PARSER_LINE_BYTES_CAP]. */
    size_t line_bytes_max;
} auth_parser_limits;

typedef enum auth_cmd {
    AUTH_CMD_NONE = 0, /* no command could be read (an over-long line) */
    AUTH_CMD_VERSION,
    AUTH_CMD_CPID,
    AUTH_CMD_AUTH,
    AUTH_CMD_CONT,
    AUTH_CMD_CANCEL,
    AUTH_CMD_UNKNOWN, /* any other first field (ev.name): the session decides */
} auth_cmd;

/* Why a line broke the protocol (rc AUTH_PARSE_ERROR). Dovecot logs each as
 * "BUG: Authentication client ..." and disconnects; auth_parser_error_text()
 * gives the text. */
typedef enum auth_error {
    AUTH_ERR_NONE = 0,
    AUTH_ERR_LINE_TOO_LONG,    /* no LF within limits.line_bytes_max bytes */
    AUTH_ERR_NUL,              /* a raw NUL byte in the line */
    AUTH_ERR_SYNTAX,           /* too few fields (or CANCEL with extra fields) */
    AUTH_ERR_BAD_NUMBER,       /* VERSION numbers or CPID pid not 32-bit decimal; CPID 0 */
    AUTH_ERR_BAD_ID,           /* request id not a nonzero 32-bit decimal */
    AUTH_ERR_NO_SERVICE,       /* AUTH without service= (or with an empty one) */
    AUTH_ERR_PARAM_AFTER_RESP, /* AUTH with a field after resp= */
} auth_error;

typedef enum auth_secured {
    AUTH_SECURED_NO = 0,
    AUTH_SECURED_YES, /* "secured" bare or with a value other than "tls" (e.g. localhost) */
    AUTH_SECURED_TLS, /* "secured=tls" */
} auth_secured;

typedef enum auth_resp {
    AUTH_RESP_NONE = 0, /* no initial response: the mechanism starts with a challenge */
    AUTH_RESP_EMPTY,    /* an empty initial response */
    AUTH_RESP_DATA,     /* ev.auth.resp holds base64 text, still to be decoded and checked */
} auth_resp;

/* AUTH parameters. An empty slice means absent; a port of 0 means absent. */
typedef struct auth_params {
    sl_slice service; /* never empty in an AUTH event */
    sl_slice lip;
    sl_slice rip;
    uint16_t lport;
    uint16_t rport;
    sl_slice real_lip; /* real_*: the addresses before a proxy */
    sl_slice real_rip;
    uint16_t real_lport;
    uint16_t real_rport;
    sl_slice local_name; /* TLS SNI name */
    sl_slice session;
    sl_slice client_id;
    auth_secured secured;
    bool nologin; /* sent by Postfix; Dovecot 2.3 ignores it in requests */
    bool no_penalty;
    bool valid_client_cert;
    sl_slice cert_username;
    sl_slice transport;
    sl_slice tls_cipher;
    sl_slice tls_cipher_bits;
    sl_slice tls_pfs;
    sl_slice tls_protocol;
    auth_resp resp_kind;
    sl_slice resp; /* AUTH_RESP_DATA only */
} auth_params;

typedef struct auth_event {
    auth_cmd cmd;
    auth_error error; /* AUTH_ERR_NONE unless rc was AUTH_PARSE_ERROR */
    /* VERSION: the client's numbers. The server speaks major 1 only; Dovecot
     * disconnects on another major (the session decides). */
    uint32_t version_major;
    uint32_t version_minor;
    uint32_t cpid; /* CPID: the client's pid, nonzero */
    uint32_t id;   /* AUTH, CONT, CANCEL: the request id, nonzero */
    sl_slice mech; /* AUTH: the mechanism name as sent (may be empty: unknown mechanism) */
    auth_params auth;
    sl_slice data; /* CONT: base64 text, still to be decoded and checked */
    sl_slice name; /* UNKNOWN: the first field of the line (may be empty) */
} auth_event;

typedef enum auth_parse_rc {
    AUTH_PARSE_NEED_MORE = 0, /* all input consumed, no event */
    AUTH_PARSE_EVENT = 1,     /* a well-formed line: *ev_out */
    AUTH_PARSE_ERROR = 2,     /* a line that breaks the protocol: ev_out->error, ev_out->cmd */
} auth_parse_rc;

typedef enum auth_parser_mode {
    AUTH_PARSER_MODE_LINE = 0,
    AUTH_PARSER_MODE_DISCARD, /* skipping the rest of an over-long line */
} auth_parser_mode;

typedef struct auth_parser {
    auth_parser_limits limits;
    auth_parser_mode mode;
    uint32_t version_minor; /* of the last well-formed VERSION line; 0 before one */
    size_t line_len;        /* bytes of a partial line held in line[] */
    size_t line_used;       /* bytes of line[] the last event may point at */
    uint8_t line[AUTH_PARSER_LINE_BYTES_CAP];
} auth_parser;

/* Initialise on caller storage (about 64 KiB: the line buffer is embedded). */
void auth_parser_init(auth_parser *p, const auth_parser_limits *limits);

/* Parse from buf[0..len). Sets *consumed_out to the bytes used (<= len) and,
 * on AUTH_PARSE_EVENT or AUTH_PARSE_ERROR, fills *ev_out. Call again with the
 * rest of the buffer until it returns AUTH_PARSE_NEED_MORE. After an error the
 * parser can go on with the next line; the session normally disconnects.
 * Every event and error consumes at least one byte. */
auth_parse_rc auth_parse(auth_parser *p, const uint8_t *buf, size_t len, size_t *consumed_out,
                         auth_event *ev_out);

/* Wipe every byte the parser holds (explicit_bzero) and drop a partial line;
 * the parser is then as after init (the remembered VERSION minor is kept).
 * Call it when the connection ends. Earlier event slices into p->line die. */
void auth_parser_clear(auth_parser *p);

/* Text names for logs: "AUTH", "CONT", ...; and what an error means, e.g.
 * "sent AUTH parameters after 'resp'". */
const char *auth_parser_cmd_name(auth_cmd cmd);
const char *auth_parser_error_text(auth_error err);

/* ---- values ---- */

/* The most bytes auth_escape() writes for n input bytes. */
#define AUTH_ESCAPED_LEN_MAX(n) (2 * (size_t)(n))

/* Undo Dovecot's tab-escaping: \001 then '0' NUL, '1' \001, 't' TAB, 'r' CR,
 * 'n' or 'l' LF (Dovecot's code writes 'n'; its 2.3 protocol document says
 * 'l'), and any other byte stands for itself. Writes to dst and returns the
 * length (never more than src.len), or -1 if dst_size is too small or src ends
 * in a lone \001. dst may be src.ptr (in place) but must not overlap it
 * otherwise. */
ptrdiff_t auth_parser_unescape(sl_slice src, uint8_t *dst, size_t dst_size);

/* Tab-escape a value for a reply: NUL, \001, TAB, CR and LF become \001 and
 * '0', '1', 't', 'r', 'n' (LF as 'n', as Dovecot writes it). Returns the bytes
 * written, or -1 (nothing useful in dst) if dst_size is too small;
 * AUTH_ESCAPED_LEN_MAX(src.len) always suffices. dst must not overlap src. */
ptrdiff_t auth_escape(sl_slice src, uint8_t *dst, size_t dst_size);

/* ---- replies ----
 * Each builder writes whole LF-terminated lines into dst[0..dst_size) and
 * returns the bytes written, or -1 if they do not fit (dst then holds nothing
 * useful). Values are tab-escaped. Pure; any thread. */

/* MECH flags. The handshake writes them in this order, Dovecot's (mech.c). */
enum {
    AUTH_MECH_FLAG_PRIVATE = 1u << 0, /* not offered to SASL clients (Postfix skips it) */
    AUTH_MECH_FLAG_ANONYMOUS = 1u << 1,
    AUTH_MECH_FLAG_PLAINTEXT = 1u << 2,
    AUTH_MECH_FLAG_DICTIONARY = 1u << 3,
    AUTH_MECH_FLAG_ACTIVE = 1u << 4,
    AUTH_MECH_FLAG_FORWARD_SECRECY = 1u << 5,
    AUTH_MECH_FLAG_MUTUAL_AUTH = 1u << 6,
    AUTH_MECH_FLAGS_ALL = (1u << 7) - 1,
};

typedef struct auth_reply_mech {
    const char *name; /* e.g. "PLAIN"; non-empty */
    unsigned flags;   /* AUTH_MECH_FLAG_* */
} auth_reply_mech;

typedef struct auth_reply_handshake {
    const auth_reply_mech *mechs; /* in the order to announce */
    size_t mechs_len;
    uint32_t spid;      /* the server's pid */
    uint32_t cuid;      /* this connection's number, unique in the process */
    uint8_t cookie[16]; /* random bytes from the caller; sent as 32 lowercase hex digits */
} auth_reply_handshake;

/* "VERSION\t1\t2", one "MECH\t<name>[\t<flag>...]" per mechanism, "SPID",
 * "CUID", "COOKIE", "DONE": MECH lines come before SPID because Postfix takes
 * an SPID before any MECH for the auth-master socket and gives up. */
ptrdiff_t auth_parser_write_handshake(const auth_reply_handshake *h, uint8_t *dst, size_t dst_size);

/* "CONT\t<id>\t<base64 of challenge[0..len)>". */
ptrdiff_t auth_parser_write_cont(uint32_t id, const uint8_t *challenge, size_t len, uint8_t *dst,
                                 size_t dst_size);

/* An extra field of OK: "<name>=<escaped value>", or a bare "<name>" when
 * value.ptr is NULL. The name is written as is: non-empty, and without TAB,
 * CR, LF, NUL, \001 or '='. */
typedef struct auth_reply_field {
    const char *name;
    sl_slice value;
} auth_reply_field;

/* "OK\t<id>\tuser=<user>[\t<field>...]". Postfix treats an OK without a user
 * as a backend error, so user should not be empty. */
ptrdiff_t auth_parser_write_ok(uint32_t id, sl_slice user, const auth_reply_field *extra,
                               size_t extra_len, uint8_t *dst, size_t dst_size);

/* FAIL codes (auth-client-interface.h, 2.3). */
#define AUTH_FAIL_CODE_TEMP_FAIL "temp_fail"
#define AUTH_FAIL_CODE_AUTHZ_FAIL "authz_fail"
#define AUTH_FAIL_CODE_USER_DISABLED "user_disabled"
#define AUTH_FAIL_CODE_PASS_EXPIRED "pass_expired"
#define AUTH_FAIL_CODE_INVALID_BASE64 "invalid_base64"
#define AUTH_FAIL_CODE_MECH_INVALID "auth_mech_invalid"
#define AUTH_FAIL_CODE_MECH_SSL_REQUIRED "auth_mech_ssl_required"
#define AUTH_FAIL_CODE_ANONYMOUS_DENIED "anonymous_denied"

typedef struct auth_reply_fail {
    uint32_t id;
    sl_slice user;    /* omitted when empty */
    const char *code; /* AUTH_FAIL_CODE_*, omitted when NULL */
    sl_slice reason;  /* shown to the user: never say whether the user exists; omitted when empty */
    bool nodelay;     /* skip the client's failure delay */
} auth_reply_fail;

/* "FAIL\t<id>[\tuser=..][\tcode=..][\treason=..][\tnodelay]". */
ptrdiff_t auth_parser_write_fail(const auth_reply_fail *f, uint8_t *dst, size_t dst_size);

#endif
