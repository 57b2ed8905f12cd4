/* core/connlimit.c: see connlimit.h. */
#include "core/connlimit.h"

#include "core/base/base.h"

#include <stdatomic.h>
#include <string.h>

#define SLOTS 65536

static _Atomic unsigned total;
static _Atomic unsigned per_ip[SLOTS];

static unsigned slot(const unsigned char k[16])
{
    return (unsigned)(sl_hash_bytes(k, 16) % SLOTS);
}

bool sl_connlimit_acquire(const unsigned char ip_key[16], unsigned total_max, unsigned per_ip_max)
{
    unsigned t = atomic_fetch_add(&total, 1);
    if (t >= total_max) {
        atomic_fetch_sub(&total, 1);
        return false;
    }
    static const unsigned char zero[16];
    if (memcmp(ip_key, zero, 16) == 0) {
        return true; /* UNIX socket peers are one local client: no per-IP limit */
    }
    unsigned s = slot(ip_key);
    unsigned c = atomic_fetch_add(&per_ip[s], 1);
    if (c >= per_ip_max) {
        atomic_fetch_sub(&per_ip[s], 1);
        atomic_fetch_sub(&total, 1);
        return false;
    }
    return true;
}

void sl_connlimit_release(const unsigned char ip_key[16])
{
    static const unsigned char zero[16];
    if (memcmp(ip_key, zero, 16) != 0) {
        unsigned prev = atomic_fetch_sub(&per_ip[slot(ip_key)], 1);
        SL_ASSERT(prev > 0);
    }
    unsigned prev = atomic_fetch_sub(&total, 1);
    SL_ASSERT(prev > 0);
}

unsigned sl_connlimit_total(void)
{
    return atomic_load(&total);
}
