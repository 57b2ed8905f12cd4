#!/usr/bin/env bash
# Checks the include edges of STYLE.md's layering, so it cannot rot:
#   core/ (except core/main.c) includes only core/
#   proto/*_parser.c/.h include only core/base/ (and themselves)
#   store/ and auth/ include core/ and their own folder, never proto/
#   auth/ never includes store/, store/ never includes auth/
# Prints each violation as file:line and exits 1 if there is any.
set -u
cd "${1:-$(dirname "$0")/..}"
bad=0
check() { # file allowed-regex
    local f=$1 allow=$2
    while IFS=: read -r line inc; do
        if ! [[ $inc =~ $allow ]]; then
            echo "$f:$line: includes \"$inc\", outside its layer" >&2
            bad=1
        fi
    done < <(grep -n '^#include "' "$f" | sed -E 's/^([0-9]+):#include "([^"]+)".*/\1:\2/')
}
for f in core/*.c core/*.h core/base/*; do
    [ "$f" = core/main.c ] && continue
    check "$f" '^core/'
done
for f in proto/*_parser.c proto/*_parser.h; do
    [ -e "$f" ] || continue
    check "$f" '^(core/base/|proto/[a-z_]+_parser\.h$)'
done
for f in store/*.c store/*.h; do check "$f" '^(core/|store/)'; done
for f in auth/*.c auth/*.h; do check "$f" '^(core/|auth/)'; done
for f in proto/*.c proto/*.h; do check "$f" '^(core/|proto/|store/|auth/)'; done
if [ $bad -eq 0 ]; then
    echo "include layering ok"
fi
exit $bad
