/* core/stats.c: see stats.h. */
#include "core/stats.h"

#include "core/alloc.h"
#include "core/base/base.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Latency bucket upper bounds in microseconds (Prometheus renders seconds). */
static const uint64_t latency_bounds_us[SL_HIST_LATENCY_BUCKETS - 1] = {
    100,    250,    500,     1000,    2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};
static const uint64_t batch_bounds[SL_HIST_BATCH_BUCKETS - 1] = {1, 2, 4, 8, 16, 32, 64, 128, 256};

static void observe(sl_hist *h, const uint64_t *bounds, size_t nb, uint64_t v)
{
    size_t i = 0;
    while (i < nb && v > bounds[i]) {
        i++;
    }
    sl_stat_add(&h->buckets[i], 1);
    sl_stat_add(&h->count, 1);
    sl_stat_add(&h->sum, v);
}

void sl_hist_latency_us(sl_hist *h, uint64_t us)
{
    observe(h, latency_bounds_us, SL_ARRAY_LEN(latency_bounds_us), us);
}

void sl_hist_batch(sl_hist *h, uint64_t items)
{
    observe(h, batch_bounds, SL_ARRAY_LEN(batch_bounds), items);
}

typedef struct buf {
    char *p;
    size_t len;
    size_t cap;
} buf;

__attribute__((format(printf, 2, 3))) static void put(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    SL_ASSERT(n >= 0);
    if (b->len + (size_t)n + 1 > b->cap) {
        b->cap = (b->len + (size_t)n + 1) * 2;
        b->p = sl_realloc(b->p, b->cap);
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static uint64_t rd(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

#define SUM(field)                                                                                 \
    ({                                                                                             \
        uint64_t s_ = 0;                                                                           \
        for (size_t i_ = 0; i_ < n; i_++) {                                                        \
            s_ += rd(&shards[i_]->field);                                                          \
        }                                                                                          \
        s_;                                                                                        \
    })

static void head(buf *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(buf *b, const char *name, const char *help, uint64_t v)
{
    head(b, name, "counter", help);
    put(b, "%s %llu\n", name, (unsigned long long)v);
}

/* A histogram summed over shards; scale divides sums and bounds (1e6 turns
 * microseconds into seconds, 1 keeps counts). */
static void histogram(buf *b, const sl_stats_core *const *shards, size_t n, size_t offset,
                      const uint64_t *bounds, size_t nb, double scale, const char *name,
                      const char *help)
{
    head(b, name, "histogram", help);
    uint64_t cum = 0;
    for (size_t k = 0; k <= nb; k++) {
        for (size_t i = 0; i < n; i++) {
            const sl_hist *h = (const sl_hist *)((const char *)shards[i] + offset);
            cum += rd(&h->buckets[k]);
        }
        if (k < nb) {
            put(b, "%s_bucket{le=\"%g\"} %llu\n", name, (double)bounds[k] / scale,
                (unsigned long long)cum);
        } else {
            put(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
        }
    }
    uint64_t count = 0;
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        const sl_hist *h = (const sl_hist *)((const char *)shards[i] + offset);
        count += rd(&h->count);
        sum += rd(&h->sum);
    }
    put(b, "%s_sum %g\n%s_count %llu\n", name, (double)sum / scale, name,
        (unsigned long long)count);
}

static void render_conns(buf *b, const sl_stats_core *const *shards, size_t n)
{
    head(b, "sluice_connections_open", "gauge", "LMTP connections open now.");
    put(b, "sluice_connections_open %llu\n", (unsigned long long)SUM(conns_open));
    counter(b, "sluice_connections_total", "LMTP connections accepted.", SUM(conns_total));
    head(b, "sluice_connections_refused_total", "counter",
         "LMTP connections closed at accept, by reason.");
    put(b, "sluice_connections_refused_total{reason=\"allowlist\"} %llu\n",
        (unsigned long long)SUM(conns_refused_allow));
    put(b, "sluice_connections_refused_total{reason=\"limit\"} %llu\n",
        (unsigned long long)SUM(conns_refused_limit));
}

static void render_mail(buf *b, const sl_stats_core *const *shards, size_t n)
{
    static const char *const outcome[SL_RCPT_OUTCOMES] = {
        "delivered", "unknown", "inactive", "over_quota", "tempfail", "rejected"};
    static const char *const result[SL_LOOKUP_RESULTS] = {"found", "notfound", "inactive",
                                                          "tempfail"};
    static const char *const tier[SL_TIERS] = {"core", "redis", "sql"};
    static const char *const redis[SL_REDIS_RESULTS] = {"hit", "miss", "error"};
    counter(b, "sluice_transactions_total", "Mail transactions that reached end of data.",
            SUM(transactions));
    head(b, "sluice_recipients_total", "counter", "Recipients by final outcome.");
    for (size_t o = 0; o < SL_RCPT_OUTCOMES; o++) {
        put(b, "sluice_recipients_total{outcome=\"%s\"} %llu\n", outcome[o],
            (unsigned long long)SUM(rcpts[o]));
    }
    counter(b, "sluice_delivered_bytes_total", "Bytes stored, counted once per recipient.",
            SUM(bytes_delivered));
    head(b, "sluice_userdb_lookups_total", "counter",
         "Recipient lookups by the tier that answered and the result.");
    for (size_t t = 0; t < SL_TIERS; t++) {
        for (size_t r = 0; r < SL_LOOKUP_RESULTS; r++) {
            put(b, "sluice_userdb_lookups_total{tier=\"%s\",result=\"%s\"} %llu\n", tier[t],
                result[r], (unsigned long long)SUM(lookups[t][r]));
        }
    }
    head(b, "sluice_redis_lookups_total", "counter",
         "Lookups sent to Redis, by answer (miss and error go on to SQL).");
    for (size_t r = 0; r < SL_REDIS_RESULTS; r++) {
        put(b, "sluice_redis_lookups_total{result=\"%s\"} %llu\n", redis[r],
            (unsigned long long)SUM(redis_lookups[r]));
    }
    counter(b, "sluice_userdb_stale_served_total",
            "Expired cache entries served because SQL was unavailable.", SUM(lookups_stale));
    histogram(b, shards, n, offsetof(sl_stats_core, redis_us), latency_bounds_us,
              SL_ARRAY_LEN(latency_bounds_us), 1e6, "sluice_redis_lookup_seconds",
              "Redis lookup latency, send to reply.");
    histogram(b, shards, n, offsetof(sl_stats_core, sql_us), latency_bounds_us,
              SL_ARRAY_LEN(latency_bounds_us), 1e6, "sluice_sql_lookup_seconds",
              "Duration of the SQL query behind each lookup it answered (a shared query counts once per lookup).");
}

static void render_store(buf *b, const sl_stats_core *const *shards, size_t n)
{
    counter(b, "sluice_commit_batches_total", "Group commits run.", SUM(commit_batches));
    counter(b, "sluice_fsyncs_total", "fsync calls on files and directories (sync_method = fsync).",
            SUM(fsyncs));
    counter(b, "sluice_store_errors_total", "Recipients whose store step failed.",
            SUM(store_errors));
    histogram(b, shards, n, offsetof(sl_stats_core, batch_size), batch_bounds,
              SL_ARRAY_LEN(batch_bounds), 1, "sluice_commit_batch_transactions",
              "Transactions per group commit.");
    histogram(b, shards, n, offsetof(sl_stats_core, fsync_us), latency_bounds_us,
              SL_ARRAY_LEN(latency_bounds_us), 1e6, "sluice_fsync_seconds",
              "Latency of one durability wait, submission to completion: an fsync, or with "
              "sync_method = syncfs a wait for a syncfs round.");
    histogram(b, shards, n, offsetof(sl_stats_core, delivery_us), latency_bounds_us,
              SL_ARRAY_LEN(latency_bounds_us), 1e6, "sluice_delivery_seconds",
              "End of DATA to the per-recipient replies (includes the group commit).");
}

static void render_cores(buf *b, const sl_stats_core *const *shards, size_t n)
{
    head(b, "sluice_core_busy_seconds_total", "counter",
         "Time each delivery core spent handling completions (rate() = utilisation).");
    for (size_t i = 0; i < n; i++) {
        put(b, "sluice_core_busy_seconds_total{core=\"%zu\"} %.6f\n", i,
            (double)rd(&shards[i]->loop_busy_ns) / 1e9);
    }
    head(b, "sluice_core_loop_iterations_total", "counter", "Event loop iterations per core.");
    for (size_t i = 0; i < n; i++) {
        put(b, "sluice_core_loop_iterations_total{core=\"%zu\"} %llu\n", i,
            (unsigned long long)rd(&shards[i]->loop_iterations));
    }
}

static void render_auth(buf *b, const sl_stats_core *a)
{
    static const char *const mech[SL_AUTH_MECHS] = {
        "PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256", "NTLM",
        "unknown"};
    static const char *const result[SL_AUTH_RESULTS] = {"ok", "fail", "tempfail", "cancel"};
    head(b, "sluice_auth_requests_total", "counter",
         "SMTP AUTH requests by mechanism and result (tempfail: connection closed).");
    for (size_t m = 0; m < SL_AUTH_MECHS; m++) {
        for (size_t r = 0; r < SL_AUTH_RESULTS; r++) {
            put(b, "sluice_auth_requests_total{mechanism=\"%s\",result=\"%s\"} %llu\n", mech[m],
                result[r], (unsigned long long)rd(&a->auth_requests[m][r]));
        }
    }
    counter(b, "sluice_auth_penalties_total",
            "AUTH requests held back by the per-client-IP failure penalty.", rd(&a->auth_penalties));
    head(b, "sluice_auth_connections_open", "gauge", "Auth client connections open now.");
    put(b, "sluice_auth_connections_open %llu\n", (unsigned long long)rd(&a->auth_conns_open));
    counter(b, "sluice_auth_connections_total", "Auth client connections accepted.",
            rd(&a->auth_conns_total));
    counter(b, "sluice_auth_connections_refused_total",
            "Auth client connections closed at accept (allowlist or limit).",
            rd(&a->auth_conns_refused));
    counter(b, "sluice_auth_cache_hits_total", "Password lookups answered by the auth cache.",
            rd(&a->auth_cache_hits));
    counter(b, "sluice_auth_redis_hits_total", "Password lookups answered by Redis.",
            rd(&a->auth_redis_hits));
}

void sl_stats_render(const sl_stats_core *const *shards, size_t n, const sl_stats_info *info,
                     char **out, size_t *len_out)
{
    buf b = {0};
    head(&b, "sluice_build_info", "gauge", "Build information; the value is always 1.");
    put(&b, "sluice_build_info{version=\"%s\"} 1\n", info->version);
    head(&b, "sluice_start_time_seconds", "gauge", "Start time of the process, Unix seconds.");
    put(&b, "sluice_start_time_seconds %lld\n", (long long)info->start_time_s);
    head(&b, "sluice_fsync_enabled", "gauge",
         "1 when acknowledged mail is fsynced (fsync = yes), 0 when durability is off.");
    put(&b, "sluice_fsync_enabled %d\n", info->fsync ? 1 : 0);
    head(&b, "sluice_sync_method", "gauge",
         "How acknowledged mail is made durable: per-file and per-directory fsync, or shared "
         "syncfs rounds; the value is always 1.");
    put(&b, "sluice_sync_method{method=\"%s\"} 1\n",
        info->sync_method != NULL ? info->sync_method : "fsync");
    counter(&b, "sluice_syncfs_rounds_total",
            "syncfs rounds run (sync_method = syncfs): one syncfs and one fsync per filesystem.",
            info->syncfs_rounds);
    counter(&b, "sluice_syncfs_waits_total", "Durability waits answered by syncfs rounds.",
            info->syncfs_waits);
    counter(&b, "sluice_syncfs_failed_total", "syncfs rounds that reported an error.",
            info->syncfs_failed);
    head(&b, "sluice_syncfs_busy_seconds_total", "counter",
         "Time spent in syncfs rounds, summed over the syncing threads.");
    put(&b, "sluice_syncfs_busy_seconds_total %.6f\n", (double)info->syncfs_busy_us / 1e6);
    head(&b, "sluice_delivery_cores", "gauge", "Delivery cores (threads with their own ring).");
    put(&b, "sluice_delivery_cores %zu\n", n);
    render_conns(&b, shards, n);
    render_mail(&b, shards, n);
    counter(&b, "sluice_userdb_sql_queries_total", "Queries the resolver threads ran (userdb and passdb).",
            info->sql_queries);
    counter(&b, "sluice_userdb_sql_shared_total",
            "Lookups that joined a query already under way for the same user (single flight).",
            info->sql_shared);
    render_store(&b, shards, n);
    render_cores(&b, shards, n);
    if (info->auth != NULL) {
        render_auth(&b, info->auth);
    }
    *out = b.p;
    *len_out = b.len;
}
