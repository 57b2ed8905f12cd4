/* core/base/assert.c: the one place an assertion failure ends the process. */
#include "core/base/base.h"

#include <stdio.h>
#include <stdlib.h>

void sl_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "sluice: assertion failed: %s (%s:%d)\n", expr, file, line);
    fflush(stderr);
    abort();
}
