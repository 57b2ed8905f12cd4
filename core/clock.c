#include "core/clock.h"

#include <time.h>

uint64_t sl_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t sl_clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void sl_clock_wall(int64_t *sec_out, uint32_t *usec_out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *sec_out = ts.tv_sec;
    *usec_out = (uint32_t)(ts.tv_nsec / 1000);
}

int sl_clock_tz_offset_min(void)
{
    static int cached = -100000;
    if (cached == -100000) {
        time_t now = time(NULL);
        struct tm lt;
        localtime_r(&now, &lt);
        cached = (int)(lt.tm_gmtoff / 60);
    }
    return cached;
}
