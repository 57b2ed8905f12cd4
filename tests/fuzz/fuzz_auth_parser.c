/* tests/fuzz/fuzz_auth_parser.c: libFuzzer target for proto/auth_parser.c
 * (and, through it, core/base/base64.c).
 *
 * The first bytes of an input choose how the rest is cut into pieces; the rest
 * is fed three ways (whole, in those pieces, and one byte at a time when
 * short) like a session would: each piece in its own heap buffer, freed once
 * consumed. Besides the parser's own assertions it checks the contract:
 * consumed counts and progress, slices that lie in the input or in the line
 * buffer, field invariants per command, that every value unescapes and
 * re-escapes to itself, that base64 the session would decode is canonical
 * (decode then encode gives the same text), that replies built from the
 * values are single well-formed lines, that all three runs give the same
 * events and end in the same state, and that auth_parser_clear() wipes.
 *
 * Input layout: byte 0 = flags (bits 0-1: number of cuts, bit 2: line limit
 * 256 or 16384), bytes 1-3 = cut positions as fractions of the rest. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/base.h"
#include "core/base/base64.h"
#include "proto/auth_parser.h"
#include "tests/fuzz/fuzz_split.h"

#define SCRATCH_BYTES (2 * AUTH_PARSER_LINE_BYTES_CAP + 64)

typedef struct fuzz_run {
    auth_parser parser;
    uint64_t hash;
} fuzz_run;

static fuzz_run runs[3];
static uint8_t scratch_a[SCRATCH_BYTES];
static uint8_t scratch_b[SCRATCH_BYTES];
static uint8_t scratch_c[SCRATCH_BYTES];

static void hash_u64(fuzz_run *r, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        r->hash = (r->hash ^ ((v >> (8 * i)) & 0xff)) * 0x100000001b3ull;
    }
}

static void hash_slice(fuzz_run *r, sl_slice s)
{
    hash_u64(r, s.len);
    for (size_t i = 0; i < s.len; i++) {
        r->hash = (r->hash ^ s.ptr[i]) * 0x100000001b3ull;
    }
}

/* Every slice of an event, in a fixed order. */
static size_t event_slices(const auth_event *ev, sl_slice *out)
{
    const auth_params *a = &ev->auth;
    const sl_slice all[] = {
        ev->mech,     ev->data,         ev->name,     a->service,    a->lip,
        a->rip,       a->real_lip,      a->real_rip,  a->local_name, a->session,
        a->client_id, a->cert_username, a->transport, a->tls_cipher, a->tls_cipher_bits,
        a->tls_pfs,   a->tls_protocol,  a->resp,
    };
    memcpy(out, all, sizeof(all));
    return SL_ARRAY_LEN(all);
}

static void hash_event(fuzz_run *r, auth_parse_rc rc, const auth_event *ev)
{
    const auth_params *a = &ev->auth;
    hash_u64(r, (uint64_t)rc << 48 | (uint64_t)ev->cmd << 32 | (uint64_t)ev->error);
    hash_u64(r, (uint64_t)ev->version_major << 32 | ev->version_minor);
    hash_u64(r, (uint64_t)ev->cpid << 32 | ev->id);
    hash_u64(r, (uint64_t)a->lport << 48 | (uint64_t)a->rport << 32 |
                    (uint64_t)a->real_lport << 16 | a->real_rport);
    hash_u64(r, (uint64_t)a->secured | (uint64_t)a->nologin << 8 | (uint64_t)a->no_penalty << 9 |
                    (uint64_t)a->valid_client_cert << 10 | (uint64_t)a->resp_kind << 16);
    sl_slice s[32];
    size_t n = event_slices(ev, s);
    for (size_t i = 0; i < n; i++) {
        hash_slice(r, s[i]);
    }
}

static bool within(sl_slice s, const uint8_t *base, size_t len)
{
    return s.ptr >= base && s.ptr <= base + len && s.len <= (size_t)(base + len - s.ptr);
}

/* A value unescapes (unless it ends in a lone \001) to at most its length,
 * and the result escapes and unescapes back to itself. */
static void check_value(sl_slice v)
{
    ptrdiff_t u = auth_parser_unescape(v, scratch_a, v.len);
    bool lone_esc = v.len > 0 && v.ptr[v.len - 1] == 0x01;
    if (u < 0) {
        SL_ASSERT(lone_esc);
        return;
    }
    SL_ASSERT((size_t)u <= v.len);
    sl_slice plain = {scratch_a, (size_t)u};
    ptrdiff_t e = auth_escape(plain, scratch_b, sizeof(scratch_b));
    SL_ASSERT(e >= u && (size_t)e <= AUTH_ESCAPED_LEN_MAX((size_t)u));
    for (ptrdiff_t i = 0; i < e; i++) {
        SL_ASSERT(scratch_b[i] != '\t' && scratch_b[i] != '\n' && scratch_b[i] != '\r');
        SL_ASSERT(scratch_b[i] != '\0');
    }
    ptrdiff_t back = auth_parser_unescape((sl_slice){scratch_b, (size_t)e}, scratch_c, (size_t)u);
    SL_ASSERT(back == u);
    SL_ASSERT(u == 0 || memcmp(scratch_c, scratch_a, (size_t)u) == 0);
}

/* What the session does with base64 from the client: decode strictly. What
 * decodes must re-encode to the very same text, and go out in a CONT. */
static void check_base64(sl_slice b64)
{
    ptrdiff_t d = sl_base64_decode(b64.ptr, b64.len, scratch_a, sizeof(scratch_a));
    SL_ASSERT(d != SL_BASE64_NO_ROOM);
    if (d < 0) {
        SL_ASSERT(d == SL_BASE64_INVALID);
        return;
    }
    SL_ASSERT((size_t)d <= SL_BASE64_DECODED_LEN_MAX(b64.len));
    ptrdiff_t e = sl_base64_encode(scratch_a, (size_t)d, scratch_b, sizeof(scratch_b));
    SL_ASSERT(e == (ptrdiff_t)b64.len);
    SL_ASSERT(e == 0 || memcmp(scratch_b, b64.ptr, b64.len) == 0);

    ptrdiff_t n = auth_parser_write_cont(7, scratch_a, (size_t)d, scratch_c, sizeof(scratch_c));
    SL_ASSERT(n == (ptrdiff_t)(7 + b64.len + 1));
    SL_ASSERT(memcmp(scratch_c, "CONT\t7\t", 7) == 0);
    SL_ASSERT(b64.len == 0 || memcmp(scratch_c + 7, b64.ptr, b64.len) == 0);
    SL_ASSERT(scratch_c[n - 1] == '\n');
}

/* A reply with a fuzzed value is one line whose fields are intact. */
static void check_reply(uint32_t id, sl_slice value)
{
    auth_reply_fail f = {.id = id == 0 ? 1 : id, .user = value, .reason = value, .nodelay = true};
    ptrdiff_t n = auth_parser_write_fail(&f, scratch_a, sizeof(scratch_a));
    SL_ASSERT(n > 0);
    SL_ASSERT(memchr(scratch_a, '\n', (size_t)n) == scratch_a + n - 1);
    size_t tabs = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        tabs += scratch_a[i] == '\t';
        SL_ASSERT(scratch_a[i] != '\r' && scratch_a[i] != '\0');
    }
    SL_ASSERT(tabs == (value.len > 0 ? 4u : 2u));
    /* Too small a buffer fails cleanly. */
    SL_ASSERT(auth_parser_write_fail(&f, scratch_b, (size_t)n - 1) == -1);
}

static void check_event(const fuzz_run *r, auth_parse_rc rc, const auth_event *ev,
                        const uint8_t *piece, size_t n)
{
    sl_slice s[32];
    size_t count = event_slices(ev, s);
    for (size_t i = 0; i < count; i++) {
        if (s[i].len > 0) {
            SL_ASSERT(within(s[i], piece, n) ||
                      within(s[i], r->parser.line, sizeof(r->parser.line)));
        }
    }
    if (rc == AUTH_PARSE_ERROR) {
        SL_ASSERT(ev->error != AUTH_ERR_NONE);
        for (size_t i = 0; i < count; i++) {
            SL_ASSERT(s[i].len == 0);
        }
        SL_ASSERT((ev->cmd == AUTH_CMD_NONE) == (ev->error == AUTH_ERR_LINE_TOO_LONG));
        return;
    }
    SL_ASSERT(ev->error == AUTH_ERR_NONE);
    switch (ev->cmd) {
    case AUTH_CMD_AUTH:
        SL_ASSERT(ev->id != 0);
        SL_ASSERT(ev->auth.service.len > 0);
        SL_ASSERT((ev->auth.resp_kind == AUTH_RESP_DATA) == (ev->auth.resp.len > 0));
        SL_ASSERT(!(ev->auth.resp.len == 1 && ev->auth.resp.ptr[0] == '='));
        check_base64(ev->auth.resp);
        break;
    case AUTH_CMD_CONT:
        SL_ASSERT(ev->id != 0);
        check_base64(ev->data);
        break;
    case AUTH_CMD_CANCEL:
        SL_ASSERT(ev->id != 0);
        break;
    case AUTH_CMD_CPID:
        SL_ASSERT(ev->cpid != 0);
        break;
    case AUTH_CMD_VERSION:
        SL_ASSERT(r->parser.version_minor == ev->version_minor);
        break;
    case AUTH_CMD_UNKNOWN:
        break;
    default:
        SL_ASSERT(!"unexpected command in an event");
    }
    for (size_t i = 0; i < count; i++) {
        SL_ASSERT(memchr(s[i].ptr != NULL ? s[i].ptr : (const uint8_t *)"", '\n', s[i].len) ==
                  NULL);
        check_value(s[i]);
    }
    check_reply(ev->id, ev->auth.service);
}

static void feed_piece(fuzz_run *r, const uint8_t *src, size_t n)
{
    uint8_t *piece = malloc(n > 0 ? n : 1);
    SL_ASSERT(piece != NULL);
    if (n > 0) {
        memcpy(piece, src, n);
    }
    size_t off = 0;
    while (true) {
        auth_event ev;
        size_t used = SIZE_MAX;
        auth_parse_rc rc = auth_parse(&r->parser, piece + off, n - off, &used, &ev);
        SL_ASSERT(used <= n - off);
        if (rc == AUTH_PARSE_NEED_MORE) {
            SL_ASSERT(used == n - off);
            break;
        }
        SL_ASSERT(rc == AUTH_PARSE_EVENT || rc == AUTH_PARSE_ERROR);
        SL_ASSERT(used > 0);
        check_event(r, rc, &ev, piece + off, n - off);
        hash_event(r, rc, &ev);
        off += used;
    }
    free(piece);
}

static void run_init(fuzz_run *r, size_t line_bytes_max)
{
    auth_parser_init(&r->parser, &(auth_parser_limits){.line_bytes_max = line_bytes_max});
    r->hash = 0xcbf29ce484222325ull;
}

static void check_same(const fuzz_run *a, const fuzz_run *b)
{
    SL_ASSERT(a->hash == b->hash);
    SL_ASSERT(a->parser.mode == b->parser.mode);
    SL_ASSERT(a->parser.version_minor == b->parser.version_minor);
    SL_ASSERT(a->parser.line_len == b->parser.line_len);
    SL_ASSERT(memcmp(a->parser.line, b->parser.line, a->parser.line_len) == 0);
}

/* auth_parser_clear() leaves nothing behind. */
static void check_clear(fuzz_run *r)
{
    auth_parser_clear(&r->parser);
    SL_ASSERT(r->parser.line_len == 0);
    SL_ASSERT(r->parser.mode == AUTH_PARSER_MODE_LINE);
    for (size_t i = 0; i < r->parser.limits.line_bytes_max; i++) {
        SL_ASSERT(r->parser.line[i] == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_split f;
    if (!fuzz_split_init(&f, data, size)) {
        return 0;
    }
    size_t line_max = f.flag ? AUTH_PARSER_LINE_BYTES_DEFAULT : 256;
    const uint8_t *in = f.in;
    size_t len = f.len;

    /* runs[1] and runs[2] end every input cleared (and start in zeroed static
     * storage), so check_clear sees every byte the parser wrote. */
    run_init(&runs[0], line_max);
    feed_piece(&runs[0], in, len);

    run_init(&runs[1], line_max);
    size_t at = 0;
    for (size_t i = 0; i <= 3; i++) {
        size_t end = fuzz_split_end(&f, i);
        feed_piece(&runs[1], in + at, end - at);
        at = end;
    }
    check_same(&runs[0], &runs[1]);

    if (len <= FUZZ_SPLIT_BYTEWISE_LEN_MAX) {
        run_init(&runs[2], line_max);
        for (size_t i = 0; i < len; i++) {
            feed_piece(&runs[2], in + i, 1);
        }
        check_same(&runs[0], &runs[2]);
        check_clear(&runs[2]);
    }
    check_clear(&runs[1]);
    return 0;
}
