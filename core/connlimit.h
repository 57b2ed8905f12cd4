/* core/connlimit.h: process-wide connection counts (total and per client
 * IP), shared by all delivery cores. Touched only at accept and close, never
 * per message, so atomics are enough: no locks. Per-IP counts live in a
 * fixed table indexed by a hash of the address; two addresses sharing a slot
 * count together, which can only make the limit stricter. */
#ifndef SL_CONNLIMIT_H
#define SL_CONNLIMIT_H

#include <stdbool.h>
#include <stdint.h>

/* Try to count one more connection from ip_key (16 bytes). Returns false,
 * counting nothing, if either limit would be exceeded. */
bool sl_connlimit_acquire(const unsigned char ip_key[16], unsigned total_max, unsigned per_ip_max);
void sl_connlimit_release(const unsigned char ip_key[16]);
unsigned sl_connlimit_total(void);

#endif
