/* auth/userdb.c: the driver dispatch and the address split every lookup
 * starts with. The split is pure (no allocation, no globals) so it can run on
 * a ring thread before the cache is consulted. */
#include "auth/userdb.h"

#include "auth/userdb_sqlite.h"

#include <stdio.h>
#include <string.h>

userdb_driver *userdb_driver_new(const userdb_config *cfg, char *err, size_t err_len)
{
    SL_ASSERT(cfg != NULL);
    if (cfg->driver == NULL || cfg->driver[0] == '\0') {
        snprintf(err, err_len, "userdb: no driver configured (known: sqlite)");
        return NULL;
    }
    if (strcmp(cfg->driver, "sqlite") == 0) {
        return userdb_sqlite_new(cfg, err, err_len);
    }
    snprintf(err, err_len, "userdb: unknown driver \"%.64s\" (known: sqlite)", cfg->driver);
    return NULL;
}

void userdb_driver_free(userdb_driver **d)
{
    SL_ASSERT(d != NULL);
    if (*d == NULL) {
        return;
    }
    SL_ASSERT((*d)->ops != NULL);
    (*d)->ops->destroy(*d);
    *d = NULL;
}

static char userdb_lower(uint8_t c)
{
    if (c >= 'A' && c <= 'Z') {
        return (char)(c + ('a' - 'A'));
    }
    return (char)c;
}

/* Copies src[0..len) into out as NUL-terminated text, lower-cased if asked.
 * False if it does not fit. */
static bool userdb_copy(const uint8_t *src, size_t len, bool lower, char *out, size_t out_len)
{
    if (len >= out_len) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        out[i] = lower ? userdb_lower(src[i]) : (char)src[i];
    }
    out[len] = '\0';
    return true;
}

/* The domain cannot contain '@' but a (quoted) localpart can, so the last
 * '@' is the separator. */
static bool userdb_find_at(sl_slice addr, size_t *at_out)
{
    for (size_t i = addr.len; i > 0; i--) {
        if (addr.ptr[i - 1] == '@') {
            *at_out = i - 1;
            return true;
        }
    }
    return false;
}

/* Length of the localpart before the first delimiter character, or local_len
 * when there is none. */
static size_t userdb_detail_at(const uint8_t *local, size_t local_len, const char *delimiters)
{
    if (delimiters == NULL || delimiters[0] == '\0') {
        return local_len;
    }
    for (size_t i = 0; i < local_len; i++) {
        if (local[i] != '\0' && strchr(delimiters, local[i]) != NULL) {
            return i;
        }
    }
    return local_len;
}

bool userdb_split_address(sl_slice addr, const char *delimiters, char *user_out, size_t user_len,
                          char *local_out, size_t local_len, char *detail_out, size_t detail_len)
{
    SL_ASSERT(user_out != NULL);
    SL_ASSERT(local_out != NULL);
    SL_ASSERT(detail_out != NULL);
    size_t at = 0;
    /* An embedded NUL would silently shorten the lookup key: refuse it. */
    if (addr.ptr == NULL || memchr(addr.ptr, '\0', addr.len) != NULL ||
        !userdb_find_at(addr, &at)) {
        return false;
    }
    const uint8_t *domain = addr.ptr + at + 1;
    size_t domain_n = addr.len - at - 1;
    size_t base_n = userdb_detail_at(addr.ptr, at, delimiters);
    size_t detail_n = base_n < at ? at - base_n - 1 : 0;
    if (base_n == 0 || domain_n == 0) {
        return false;
    }
    /* user = base '@' domain: both lengths plus '@' plus NUL must fit. */
    if (base_n + 1 + domain_n >= user_len) {
        return false;
    }
    userdb_copy(addr.ptr, base_n, true, user_out, user_len);
    user_out[base_n] = '@';
    userdb_copy(domain, domain_n, true, user_out + base_n + 1, user_len - base_n - 1);
    if (!userdb_copy(addr.ptr, base_n, true, local_out, local_len)) {
        return false;
    }
    return userdb_copy(addr.ptr + base_n + 1, detail_n, false, detail_out, detail_len);
}
