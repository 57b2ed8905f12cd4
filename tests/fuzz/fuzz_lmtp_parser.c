/* tests/fuzz/fuzz_lmtp_parser.c: libFuzzer target for proto/lmtp_parser.c.
 *
 * The first bytes of an input choose how the rest is cut into pieces; the rest
 * is fed three ways (whole, in those pieces, and one byte at a time when short)
 * like a session would: each piece in its own heap buffer, freed once consumed,
 * and lmtp_parser_begin_data() after every DATA command. Besides the parser's
 * own assertions it checks the contract: consumed counts, progress, spans that
 * lie in the input, modes, BDAT octet counts, and that all three runs describe
 * the same byte stream and end in the same state.
 *
 * Input layout: byte 0 = flags (bits 0-1: number of cuts, bit 2: line limit
 * 512 or 1000), bytes 1-3 = cut positions as fractions of the rest. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/base.h"
#include "proto/lmtp_parser.h"
#include "tests/fuzz/fuzz_split.h"


/* What one run saw, reduced to a hash of its normalised transcript. */
typedef struct fuzz_run {
    lmtp_parser parser;
    uint64_t hash;
    bool line_open;      /* body bytes hashed since the last eol */
    uint64_t chunk_seen; /* octets consumed in the current BDAT chunk */
    uint64_t chunk_want; /* the size announced by the last BDAT */
} fuzz_run;

static fuzz_run runs[3];

/* FNV-1a over 16-bit units: body bytes are >= 0x100, markers below. */
static void hash_unit(fuzz_run *r, uint16_t u)
{
    r->hash = (r->hash ^ (u & 0xff)) * 0x100000001b3ull;
    r->hash = (r->hash ^ (u >> 8)) * 0x100000001b3ull;
}

static void hash_u64(fuzz_run *r, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        hash_unit(r, (uint16_t)(v >> (8 * i)) & 0xff);
    }
}

static void hash_slice(fuzz_run *r, sl_slice s)
{
    hash_u64(r, s.len);
    for (size_t i = 0; i < s.len; i++) {
        hash_unit(r, s.ptr[i]);
    }
}

static void hash_span(fuzz_run *r, const lmtp_event *ev)
{
    if (!r->line_open) {
        hash_unit(r, 'B');
        r->line_open = true;
    }
    for (size_t i = 0; i < ev->span.len; i++) {
        hash_unit(r, (uint16_t)(0x100 | ev->span.ptr[i]));
    }
    if (ev->eol) {
        hash_unit(r, 'E');
        r->line_open = false;
    }
}

static void hash_event(fuzz_run *r, const lmtp_event *ev)
{
    if (ev->type == LMTP_EV_BODY_SPAN) {
        hash_span(r, ev);
        return;
    }
    if (r->line_open) {
        hash_unit(r, 'N');
        r->line_open = false;
    }
    uint64_t flags = (uint64_t)ev->path_has_8bit | (uint64_t)ev->path_is_postmaster << 1 |
                     (uint64_t)ev->has_size << 2 | (uint64_t)ev->smtputf8 << 3 |
                     (uint64_t)ev->bdat_last << 4;
    hash_u64(r, (uint64_t)ev->type << 32 | (uint64_t)ev->cmd << 16 | (uint64_t)ev->error);
    hash_u64(r, flags | (uint64_t)ev->body << 8);
    hash_u64(r, ev->size);
    hash_u64(r, ev->bdat_size);
    hash_slice(r, ev->arg);
    hash_slice(r, ev->path);
    hash_slice(r, ev->orcpt);
}

static bool within(sl_slice s, const uint8_t *base, size_t len)
{
    return s.ptr >= base && s.ptr <= base + len && s.len <= (size_t)(base + len - s.ptr);
}

static void check_command_slice(const fuzz_run *r, sl_slice s, const uint8_t *piece, size_t n)
{
    if (s.len > 0) {
        SL_ASSERT(within(s, piece, n) || within(s, r->parser.line, sizeof(r->parser.line)));
    }
}

/* The event fits the mode the parser was in before the call. */
static void check_event(const fuzz_run *r, const lmtp_event *ev, lmtp_mode before,
                        const uint8_t *piece, size_t n)
{
    switch (ev->type) {
    case LMTP_EV_BODY_SPAN:
        SL_ASSERT(before == LMTP_MODE_DATA || before == LMTP_MODE_CHUNK);
        SL_ASSERT(ev->span.len > 0 || ev->eol);
        SL_ASSERT(within(ev->span, piece, n) || (ev->span.len == 1 && ev->span.ptr[0] == '\r'));
        break;
    case LMTP_EV_DATA_END:
        SL_ASSERT(before == LMTP_MODE_DATA);
        break;
    case LMTP_EV_CHUNK_END:
        SL_ASSERT(before == LMTP_MODE_CHUNK);
        SL_ASSERT(r->chunk_seen == r->chunk_want);
        break;
    case LMTP_EV_COMMAND:
    case LMTP_EV_BAD_COMMAND:
        SL_ASSERT(before == LMTP_MODE_COMMAND || before == LMTP_MODE_DISCARD_LINE);
        check_command_slice(r, ev->arg, piece, n);
        check_command_slice(r, ev->path, piece, n);
        check_command_slice(r, ev->orcpt, piece, n);
        break;
    default:
        SL_ASSERT(!"unknown event type");
    }
}

/* What a session does after an event. */
static void act_on_event(fuzz_run *r, const lmtp_event *ev)
{
    lmtp_mode mode = lmtp_parser_mode(&r->parser);
    if (ev->type == LMTP_EV_COMMAND && ev->cmd == LMTP_CMD_DATA) {
        lmtp_parser_begin_data(&r->parser);
    } else if (ev->type == LMTP_EV_COMMAND && ev->cmd == LMTP_CMD_BDAT) {
        SL_ASSERT(mode == LMTP_MODE_CHUNK);
        r->chunk_seen = 0;
        r->chunk_want = ev->bdat_size;
    } else if (ev->type == LMTP_EV_DATA_END || ev->type == LMTP_EV_CHUNK_END) {
        SL_ASSERT(mode == LMTP_MODE_COMMAND);
    }
}

static void feed_piece(fuzz_run *r, const uint8_t *src, size_t n)
{
    uint8_t *piece = malloc(n > 0 ? n : 1);
    SL_ASSERT(piece != NULL);
    if (n > 0) {
        memcpy(piece, src, n);
    }
    size_t off = 0;
    int idle = 0; /* events in a row that consumed nothing */
    while (true) {
        lmtp_event ev;
        size_t used = SIZE_MAX;
        lmtp_mode before = lmtp_parser_mode(&r->parser);
        lmtp_parse_rc rc = lmtp_parse(&r->parser, piece + off, n - off, &used, &ev);
        SL_ASSERT(used <= n - off);
        if (before == LMTP_MODE_CHUNK) {
            r->chunk_seen += used;
        }
        if (rc == LMTP_PARSE_NEED_MORE) {
            SL_ASSERT(used == n - off);
            break;
        }
        SL_ASSERT(rc == LMTP_PARSE_EVENT);
        idle = used == 0 ? idle + 1 : 0;
        SL_ASSERT(idle <= 2);
        check_event(r, &ev, before, piece + off, n - off);
        hash_event(r, &ev);
        act_on_event(r, &ev);
        off += used;
    }
    free(piece);
}

static void run_init(fuzz_run *r, size_t line_bytes_max)
{
    lmtp_parser_init(&r->parser, &(lmtp_limits){.line_bytes_max = line_bytes_max});
    r->hash = 0xcbf29ce484222325ull;
    r->line_open = false;
    r->chunk_seen = 0;
    r->chunk_want = 0;
}

/* Runs that saw the same bytes must agree on events and on the state left. */
static void check_same(const fuzz_run *a, const fuzz_run *b)
{
    SL_ASSERT(a->hash == b->hash);
    SL_ASSERT(a->line_open == b->line_open);
    SL_ASSERT(a->parser.mode == b->parser.mode);
    SL_ASSERT(a->parser.line_len == b->parser.line_len);
    SL_ASSERT(memcmp(a->parser.line, b->parser.line, a->parser.line_len) == 0);
    SL_ASSERT(a->parser.body_state == b->parser.body_state);
    SL_ASSERT(a->parser.chunk_left == b->parser.chunk_left);
    SL_ASSERT(a->parser.chunk_last == b->parser.chunk_last);
    SL_ASSERT(a->parser.pending_cr == b->parser.pending_cr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_split f;
    if (!fuzz_split_init(&f, data, size)) {
        return 0;
    }
    size_t line_max = f.flag ? 1000 : 512;
    const uint8_t *in = f.in;
    size_t len = f.len;

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
    }
    return 0;
}
