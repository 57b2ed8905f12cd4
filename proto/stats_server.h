/* proto/stats_server.h: serves GET /metrics (Prometheus text format) on the
 * stats thread's own ring, so a scrape never runs on a delivery core. One
 * request per connection; the response closes it. */
#ifndef SL_STATS_SERVER_H
#define SL_STATS_SERVER_H

#include "core/allow.h"
#include "core/ring.h"

#include <stddef.h>

typedef struct stats_server stats_server;

/* Produce the exposition into a malloc'd buffer the server frees. */
typedef void (*stats_render_fn)(void *ctx, char **out, size_t *len_out);

stats_server *stats_server_new(sl_ring *ring, const sl_allow *allow, stats_render_fn render,
                               void *ctx);
void stats_server_listen(stats_server *s, int fd);
void stats_server_set_allow(stats_server *s, const sl_allow *allow);
/* Stop accepting and close idle connections. */
void stats_server_shutdown(stats_server *s);
bool stats_server_idle(const stats_server *s);
void stats_server_free(stats_server **s);

#endif
