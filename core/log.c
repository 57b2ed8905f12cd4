/* core/log.c: see log.h. */
#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = SL_LOG_INFO;
static _Atomic bool log_syslog = false;
static _Thread_local char thread_name[16] = "main";

void sl_log_init(const char *dest, sl_log_level level)
{
    bool use_syslog = dest != NULL && strcmp(dest, "syslog") == 0;
    if (use_syslog && !atomic_load(&log_syslog)) {
        openlog("sluice", LOG_PID | LOG_NDELAY, LOG_MAIL);
    }
    atomic_store(&log_syslog, use_syslog);
    atomic_store(&log_level, (int)level);
}

void sl_log_thread_name(const char *name)
{
    snprintf(thread_name, sizeof(thread_name), "%s", name);
}

bool sl_log_enabled(sl_log_level level)
{
    return (int)level >= atomic_load(&log_level);
}

static const char *level_word(sl_log_level level)
{
    switch (level) {
    case SL_LOG_DEBUG:
        return "debug";
    case SL_LOG_INFO:
        return "info";
    case SL_LOG_WARN:
        return "warning";
    case SL_LOG_ERROR:
        return "error";
    }
    return "?";
}

static int syslog_priority(sl_log_level level)
{
    switch (level) {
    case SL_LOG_DEBUG:
        return LOG_DEBUG;
    case SL_LOG_INFO:
        return LOG_INFO;
    case SL_LOG_WARN:
        return LOG_WARNING;
    case SL_LOG_ERROR:
        return LOG_ERR;
    }
    return LOG_INFO;
}

void sl_log(sl_log_level level, const char *fmt, ...)
{
    if (!sl_log_enabled(level)) {
        return;
    }
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (atomic_load(&log_syslog)) {
        syslog(syslog_priority(level), "%s: %s", thread_name, msg);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[2200];
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ sluice %s %s: %s\n",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, thread_name, level_word(level), msg);
    if (n > (int)sizeof(line) - 1) {
        n = (int)sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
