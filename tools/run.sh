#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run sluice
# on its embedded default (SQLite userdb with 1,000 demo users, in-process
# cache, Maildirs under var/ in the repository) on 127.0.0.1:2424.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
if [ ! -d build ]; then
    meson setup build
fi
ninja -C build
mkdir -p var/mail
if [ ! -f var/userdb.sqlite ]; then
    build/tools/sluice-userdb demo var/userdb.sqlite 1000
fi
echo "sluice: LMTP on 127.0.0.1:2424, users user0000..user0999@example.test, mail in var/mail" >&2
exec build/sluice -c tools/sluice.conf
