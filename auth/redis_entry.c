/* auth/redis_entry.c: see redis_entry.h.
 *
 * The decoder trusts nothing it reads: a value written by another version, by
 * hand or by a bug must come out as one of the REDIS_ENTRY_BAD_* codes, never
 * as a result with half-filled fields. Every field is located first, then
 * checked for count, length and range, and only then copied out. */
#include "auth/redis_entry.h"

#include <stdio.h>
#include <string.h>

#define REDIS_ENTRY_VERSION "1"

const char *redis_entry_rc_text(redis_entry_rc rc)
{
    switch (rc) {
    case REDIS_ENTRY_OK:
        return "ok";
    case REDIS_ENTRY_TOO_LONG:
        return "value too long";
    case REDIS_ENTRY_BAD_VERSION:
        return "unknown version";
    case REDIS_ENTRY_BAD_KIND:
        return "unknown status";
    case REDIS_ENTRY_BAD_FIELDS:
        return "wrong field count";
    case REDIS_ENTRY_BAD_NUMBER:
        return "bad quota";
    case REDIS_ENTRY_BAD_TEXT:
        return "bad text field";
    }
    return "?";
}

static const char *redis_entry_kind_word(redis_entry_kind kind)
{
    switch (kind) {
    case REDIS_ENTRY_USER:
        return "user:";
    case REDIS_ENTRY_PASS:
        return "pass:";
    case REDIS_ENTRY_GEN:
        return "gen";
    }
    return NULL;
}

size_t redis_entry_key(const char *prefix, redis_entry_kind kind, const char *user, char *out,
                       size_t out_len)
{
    SL_ASSERT(out != NULL);
    SL_ASSERT(out_len > 0);
    const char *word = redis_entry_kind_word(kind);
    SL_ASSERT(word != NULL);
    if (prefix == NULL || prefix[0] == '\0') {
        prefix = REDIS_ENTRY_PREFIX_DEFAULT;
    }
    out[0] = '\0';
    if (kind == REDIS_ENTRY_GEN) {
        user = "";
    } else if (user == NULL || user[0] == '\0') {
        return 0;
    }
    int head = snprintf(out, out_len, "%s:v1:%s", prefix, word);
    if (head < 0 || (size_t)head >= out_len) {
        out[0] = '\0';
        return 0;
    }
    size_t n = (size_t)head;
    for (const char *p = user; *p != '\0'; p++) {
        unsigned char ch = (unsigned char)*p;
        /* Control bytes have no business in an address and would make the
         * key hard to read back in redis-cli. */
        if (ch < 0x20 || ch == 0x7f || n + 1 >= out_len) {
            out[0] = '\0';
            return 0;
        }
        out[n++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch);
    }
    out[n] = '\0';
    return n;
}

/* "1|I" or "1|N": the same for every kind of entry. */
static int redis_entry_encode_negative(userdb_status status, char *out, size_t out_len)
{
    SL_ASSERT(status == USERDB_INACTIVE || status == USERDB_NOTFOUND);
    return snprintf(out, out_len, REDIS_ENTRY_VERSION "|%c",
                    status == USERDB_INACTIVE ? 'I' : 'N');
}

/* The length of an entry snprintf returned n for; 0 (and out emptied) when it
 * did not fit, so a truncated value is never stored. */
static size_t redis_entry_encoded_len(int n, char *out, size_t out_len)
{
    if (n < 0 || (size_t)n >= out_len) {
        if (out_len > 0) {
            out[0] = '\0';
        }
        return 0;
    }
    return (size_t)n;
}

size_t redis_entry_encode_user(const userdb_result *r, char *out, size_t out_len)
{
    SL_ASSERT(r != NULL);
    SL_ASSERT(out != NULL);
    int n = -1;
    switch (r->status) {
    case USERDB_FOUND:
        if (memchr(r->maildir, '\0', sizeof(r->maildir)) == NULL) {
            return 0;
        }
        n = snprintf(out, out_len, REDIS_ENTRY_VERSION "|F|%llu|%s",
                     (unsigned long long)r->quota_bytes, r->maildir);
        break;
    case USERDB_INACTIVE:
    case USERDB_NOTFOUND:
        n = redis_entry_encode_negative(r->status, out, out_len);
        break;
    case USERDB_TEMPFAIL:
        /* Backend trouble is a fact about this moment, not about the user. */
        return 0;
    }
    return redis_entry_encoded_len(n, out, out_len);
}

/* A canonical decimal uint64: digits only, no sign, no leading zero (except
 * "0" itself), no overflow. */
static bool redis_entry_parse_u64(const uint8_t *p, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20 || (len > 1 && p[0] == '0')) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return false;
        }
        uint64_t d = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Index of the next '|' at or after from, or len when there is none. */
static size_t redis_entry_next_bar(const uint8_t *v, size_t len, size_t from)
{
    const uint8_t *bar = from < len ? memchr(v + from, '|', len - from) : NULL;
    return bar == NULL ? len : (size_t)(bar - v);
}

/* What a value says, located and checked but not yet copied out. */
typedef struct redis_entry_fields {
    userdb_status status;
    uint64_t quota;
    const uint8_t *text; /* maildir or password, not NUL-terminated */
    size_t text_len;
} redis_entry_fields;

/* The shape of one kind of value: the status letter of a found entry,
 * whether a quota field precedes the text, and the text's buffer size. */
typedef struct redis_entry_shape {
    uint8_t found;
    bool quota;
    size_t text_bytes_max;
} redis_entry_shape;

static redis_entry_rc redis_entry_parse_found(const uint8_t *v, size_t len, size_t at,
                                              const redis_entry_shape *shape, redis_entry_fields *f)
{
    /* at is just past "1|<letter>|": [quota '|'] text (the rest, '|' allowed). */
    if (shape->quota) {
        size_t quota_end = redis_entry_next_bar(v, len, at);
        if (quota_end == len) {
            return REDIS_ENTRY_BAD_FIELDS;
        }
        if (!redis_entry_parse_u64(v + at, quota_end - at, &f->quota)) {
            return REDIS_ENTRY_BAD_NUMBER;
        }
        at = quota_end + 1;
    }
    f->text = v + at;
    f->text_len = len - at;
    if (f->text_len >= shape->text_bytes_max || memchr(f->text, '\0', f->text_len) != NULL) {
        return REDIS_ENTRY_BAD_TEXT;
    }
    f->status = USERDB_FOUND;
    return REDIS_ENTRY_OK;
}

static redis_entry_rc redis_entry_parse(const uint8_t *v, size_t len,
                                        const redis_entry_shape *shape, redis_entry_fields *f)
{
    if (len > REDIS_ENTRY_VALUE_BYTES_MAX - 1) {
        return REDIS_ENTRY_TOO_LONG;
    }
    size_t ver_end = redis_entry_next_bar(v, len, 0);
    if (ver_end == len) {
        return REDIS_ENTRY_BAD_FIELDS;
    }
    if (ver_end != 1 || v[0] != REDIS_ENTRY_VERSION[0]) {
        return REDIS_ENTRY_BAD_VERSION;
    }
    size_t kind_at = ver_end + 1;
    size_t kind_end = redis_entry_next_bar(v, len, kind_at);
    if (kind_end - kind_at != 1) {
        return REDIS_ENTRY_BAD_KIND;
    }
    uint8_t letter = v[kind_at];
    if (letter == shape->found) {
        if (kind_end == len) {
            return REDIS_ENTRY_BAD_FIELDS;
        }
        return redis_entry_parse_found(v, len, kind_end + 1, shape, f);
    }
    if (letter != 'I' && letter != 'N') {
        return REDIS_ENTRY_BAD_KIND;
    }
    if (kind_end != len) {
        return REDIS_ENTRY_BAD_FIELDS;
    }
    f->status = letter == 'I' ? USERDB_INACTIVE : USERDB_NOTFOUND;
    return REDIS_ENTRY_OK;
}

/* Parses v as shape into f and copies the text into text_out (NUL-terminated,
 * shape->text_bytes_max bytes). Whatever the error, f says TEMPFAIL, quota 0
 * and the text is empty. */
static redis_entry_rc redis_entry_decode(const uint8_t *v, size_t len,
                                         const redis_entry_shape *shape, redis_entry_fields *f,
                                         char *text_out)
{
    SL_ASSERT(v != NULL || len == 0);
    *f = (redis_entry_fields){USERDB_TEMPFAIL, 0, NULL, 0};
    redis_entry_rc rc = redis_entry_parse(v, len, shape, f);
    if (rc != REDIS_ENTRY_OK) {
        *f = (redis_entry_fields){USERDB_TEMPFAIL, 0, NULL, 0};
    }
    if (f->text_len > 0) {
        memcpy(text_out, f->text, f->text_len);
    }
    text_out[f->text_len] = '\0';
    return rc;
}

redis_entry_rc redis_entry_decode_user(const uint8_t *v, size_t len, userdb_result *out)
{
    SL_ASSERT(out != NULL);
    static const redis_entry_shape shape = {'F', true, USERDB_MAILDIR_BYTES_MAX};
    redis_entry_fields f;
    redis_entry_rc rc = redis_entry_decode(v, len, &shape, &f, out->maildir);
    out->status = f.status;
    out->quota_bytes = f.quota;
    return rc;
}

size_t redis_entry_encode_pass(const passdb_result *r, char *out, size_t out_len)
{
    SL_ASSERT(r != NULL);
    SL_ASSERT(out != NULL);
    int n = -1;
    switch (r->status) {
    case USERDB_FOUND:
        if (memchr(r->password, '\0', sizeof(r->password)) == NULL) {
            return 0;
        }
        n = snprintf(out, out_len, REDIS_ENTRY_VERSION "|P|%s", r->password);
        break;
    case USERDB_INACTIVE:
    case USERDB_NOTFOUND:
        n = redis_entry_encode_negative(r->status, out, out_len);
        break;
    case USERDB_TEMPFAIL:
        return 0;
    }
    return redis_entry_encoded_len(n, out, out_len);
}

redis_entry_rc redis_entry_decode_pass(const uint8_t *v, size_t len, passdb_result *out)
{
    SL_ASSERT(out != NULL);
    static const redis_entry_shape shape = {'P', false, USERDB_PASSWORD_BYTES_MAX};
    redis_entry_fields f;
    redis_entry_rc rc = redis_entry_decode(v, len, &shape, &f, out->password);
    out->status = f.status;
    return rc;
}

size_t redis_entry_glob_escape(const char *text, char *out, size_t out_len)
{
    SL_ASSERT(text != NULL);
    SL_ASSERT(out != NULL);
    size_t n = 0;
    for (const char *p = text; *p != '\0'; p++) {
        bool meta = strchr("*?[]\\", *p) != NULL;
        if (n + (meta ? 2 : 1) >= out_len) {
            if (out_len > 0) {
                out[0] = '\0';
            }
            return 0;
        }
        if (meta) {
            out[n++] = '\\';
        }
        out[n++] = *p;
    }
    if (n == 0 || n >= out_len) {
        if (out_len > 0) {
            out[0] = '\0';
        }
        return 0;
    }
    out[n] = '\0';
    return n;
}
