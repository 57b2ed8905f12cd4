/* core/alloc.c: see alloc.h. malloc itself is mimalloc when linked. */
#include "core/alloc.h"

#include "core/base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    fprintf(stderr, "sluice: out of memory allocating %zu bytes\n", n);
    abort();
}

void *sl_malloc(size_t n)
{
    void *p = malloc(n == 0 ? 1 : n);
    if (p == NULL) {
        oom(n);
    }
    return p;
}

void *sl_calloc(size_t count, size_t size)
{
    void *p = calloc(count == 0 ? 1 : count, size == 0 ? 1 : size);
    if (p == NULL) {
        oom(count * size);
    }
    return p;
}

void *sl_realloc(void *p, size_t n)
{
    void *q = realloc(p, n == 0 ? 1 : n);
    if (q == NULL) {
        oom(n);
    }
    return q;
}

char *sl_strdup(const char *s)
{
    SL_ASSERT(s != NULL);
    size_t n = strlen(s) + 1;
    char *d = sl_malloc(n);
    memcpy(d, s, n);
    return d;
}

void sl_free(void *pp)
{
    void **p = pp;
    free(*p);
    *p = NULL;
}
