#!/usr/bin/env bash
# Installs every Debian package sluice needs to build, run and test.
# Idempotent: packages already present are skipped by apt.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
want=(build-essential pkg-config meson ninja-build cmake
      liburing-dev libssl-dev libhiredis-dev libmimalloc-dev libcmocka-dev libsqlite3-dev
      libargon2-dev libpq-dev libmariadb-dev
      sqlite3 clang libclang-rt-14-dev prometheus curl
      redis-server redis-tools postgresql mariadb-server
      postfix dovecot-core dovecot-imapd dovecot-lmtpd swaks iproute2 python3
      libauthen-sasl-perl libauthen-ntlm-perl libdigest-hmac-perl)
missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get -o DPkg::Lock::Timeout=900 update -q
    apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}"
fi
