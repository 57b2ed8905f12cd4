#!/bin/sh
# tests/fuzz/run.sh [SECONDS]: build the LMTP parser fuzz target with clang and
# run it for SECONDS (default 30) from a small generated seed corpus.
# Needs no meson. Exits non-zero if the fuzzer finds a crash; the work dir
# with the crashing input is then kept and its path printed.
set -eu

secs=${1:-30}
root=$(cd "$(dirname "$0")/../.." && pwd)
cc=${CC:-clang-14}
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-fuzz.XXXXXX")

if ! "$cc" -std=gnu17 -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -Wall -Wextra -Wshadow -Werror -Wno-unused-parameter -Wno-missing-field-initializers \
    -I "$root" \
    "$root/tests/fuzz/fuzz_lmtp_parser.c" "$root/proto/lmtp_parser.c" \
    "$root/core/base/assert.c" \
    -o "$work/fuzz_lmtp_parser"; then
    rm -rf "$work"
    exit 1
fi

# Seeds: 4 header bytes (flags: cut count and line limit; 3 cut positions)
# followed by a session. See the comment at the top of fuzz_lmtp_parser.c.
mkdir "$work/corpus"
seed() {
    name=$1
    shift
    printf '%b' "$@" >"$work/corpus/$name"
}
seed lhlo '\003\100\200\300LHLO mx.example.com\r\nNOOP\r\nVRFY u@d\r\nQUIT\r\n'
seed mail '\002\020\220\000MAIL FROM:<a@b> BODY=8BITMIME SIZE=10 SMTPUTF8\r\n' \
    'RCPT TO:<@r,@s:"a b"@d> ORCPT=rfc822;a@d\r\nRCPT TO:<Postmaster>\r\n'
seed data '\003\030\140\250LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<u@d>\r\nDATA\r\n' \
    'Subject: hi\r\n\r\n..dot\r\n.\rx\r\na\rb\n\r\n.\r\nQUIT\r\n'
seed data_lf '\001\177\000\000DATA\nline\n.\nRSET\n'
seed bdat '\003\050\120\240BDAT 6\r\nab\r\ncdBDAT 3\r\nef\rBDAT 2 LAST\r\n\nzNOOP\r\n'
seed bdat0 '\001\200\000\000BDAT 0 LAST\r\nBDAT x\r\nBDAT 1\r\n\rRSET\r\n'
seed bad '\002\010\370\000XYZZY\r\nMAIL FROM:a@b\r\nRCPT TO:<u@d> NOTIFY=NEVER\r\n' \
    'MAIL FROM:<a@b> SIZE=99999999999999999999\r\nDATA x\r\n'
long=$(head -c 700 /dev/zero | tr '\0' 'x')
seed long "\\001\\200\\000\\000NOOP $long\\r\\nNOOP\\r\\n"

cat >"$work/lmtp.dict" <<'DICT'
"LHLO "
"MAIL FROM:"
"RCPT TO:"
"DATA"
"BDAT "
" LAST"
"RSET"
"NOOP"
"VRFY "
"QUIT"
"STARTTLS"
"AUTH "
"HELO "
"EHLO "
" BODY=8BITMIME"
" BODY=BINARYMIME"
" SIZE="
" SMTPUTF8"
" ORCPT=rfc822;"
"<Postmaster>"
"<@a,@b:"
"<>"
"\x0d\x0a"
"\x0d\x0a.\x0d\x0a"
"\x0a.\x0a"
"\x0d\x0a.."
DICT

# Every input piece is its own heap buffer (so stale slices are caught as
# use-after-free); a smaller quarantine keeps the RSS of that churn low.
export ASAN_OPTIONS="quarantine_size_mb=32:${ASAN_OPTIONS:-}"
status=0
"$work/fuzz_lmtp_parser" -max_total_time="$secs" -max_len=4096 -timeout=10 \
    -dict="$work/lmtp.dict" -artifact_prefix="$work/" -print_final_stats=1 \
    "$work/corpus" || status=$?

# libFuzzer reports a crash with 77, which test harnesses read as "skipped".
if [ "$status" -ne 0 ]; then
    echo "fuzz_lmtp_parser failed (exit $status); inputs kept in $work" >&2
    exit 1
fi
rm -rf "$work"
