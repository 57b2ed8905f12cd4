/* core/clock.h: the two clocks: monotonic milliseconds for timeouts and TTLs,
 * wall time for Maildir names and Date headers. */
#ifndef SL_CLOCK_H
#define SL_CLOCK_H

#include <stdint.h>

uint64_t sl_clock_ms(void);
uint64_t sl_clock_us(void);
/* Wall clock as seconds and microseconds since the epoch. */
void sl_clock_wall(int64_t *sec_out, uint32_t *usec_out);
/* Local UTC offset in minutes east (for Date headers), read once at start. */
int sl_clock_tz_offset_min(void);

#endif
