/* core/log.h: one line per event, to stderr or syslog. Safe from any thread:
 * each line is formatted on the stack and written with one write(2). Each
 * thread names itself ("core0", "main") with sl_log_thread_name(). */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <stdbool.h>

typedef enum sl_log_level {
    SL_LOG_DEBUG = 0,
    SL_LOG_INFO,
    SL_LOG_WARN,
    SL_LOG_ERROR,
} sl_log_level;

/* dest: "stderr" or "syslog". Called by the main thread before cores start,
 * and again on reload. */
void sl_log_init(const char *dest, sl_log_level level);
void sl_log_thread_name(const char *name);
bool sl_log_enabled(sl_log_level level);

__attribute__((format(printf, 2, 3))) void sl_log(sl_log_level level, const char *fmt, ...);

#define sl_debug(...) (sl_log_enabled(SL_LOG_DEBUG) ? sl_log(SL_LOG_DEBUG, __VA_ARGS__) : (void)0)
#define sl_info(...) sl_log(SL_LOG_INFO, __VA_ARGS__)
#define sl_warn(...) sl_log(SL_LOG_WARN, __VA_ARGS__)
#define sl_error(...) sl_log(SL_LOG_ERROR, __VA_ARGS__)

#endif
