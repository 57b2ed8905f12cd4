/* core/alloc.h: allocation that never returns NULL. Out of memory is not an
 * operating error sluice can answer to a peer, so it ends the process. */
#ifndef SL_ALLOC_H
#define SL_ALLOC_H

#include <stddef.h>

void *sl_malloc(size_t n);
void *sl_calloc(size_t count, size_t size);
void *sl_realloc(void *p, size_t n);
char *sl_strdup(const char *s);
/* Frees *pp and NULLs it. */
void sl_free(void *pp);

#endif
