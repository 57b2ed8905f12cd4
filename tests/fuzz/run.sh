#!/bin/sh
# tests/fuzz/run.sh [SECONDS]: build the parser fuzz targets (LMTP, Dovecot
# auth, SASL mechanisms) with clang and run each from a small generated seed corpus, the
# SECONDS (default 30) split between them. Needs no meson. Exits non-zero if
# a fuzzer finds a crash; the work dir with the crashing input is then kept
# and its path printed.
set -eu

secs=${1:-30}
root=$(cd "$(dirname "$0")/../.." && pwd)
cc=${CC:-clang-14}
work=$(mktemp -d "${TMPDIR:-/tmp}/sluice-fuzz.XXXXXX")

# build NAME SOURCE...: compile one fuzz target to $work/NAME
build() {
    name=$1
    shift
    "$cc" -std=gnu17 -g -O1 -fno-omit-frame-pointer \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        -Wall -Wextra -Wshadow -Werror -Wno-unused-parameter -Wno-missing-field-initializers \
        -I "$root" "$@" -o "$work/$name"
}

if ! build fuzz_lmtp_parser "$root/tests/fuzz/fuzz_lmtp_parser.c" \
    "$root/proto/lmtp_parser.c" "$root/core/base/assert.c" ||
    ! build fuzz_auth_parser "$root/tests/fuzz/fuzz_auth_parser.c" \
        "$root/proto/auth_parser.c" "$root/core/base/base64.c" "$root/core/base/assert.c" ||
    ! build fuzz_sasl_mech "$root/tests/fuzz/fuzz_sasl_mech.c" "$root"/proto/sasl_*.c \
        "$root/core/base/assert.c" "$root/core/base/base64.c" "$root/core/base/hex.c" -lcrypto; then
    rm -rf "$work"
    exit 1
fi

# The seconds are split between the targets; LMTP gets any remainder.
auth_secs=$((secs / 3))
sasl_secs=$((secs / 3))
lmtp_secs=$((secs - auth_secs - sasl_secs))
[ "$auth_secs" -ge 1 ] || auth_secs=1
[ "$sasl_secs" -ge 1 ] || sasl_secs=1

# Seeds: 4 header bytes (flags: cut count and line limit; 3 cut positions)
# followed by a session. See the comment at the top of fuzz_lmtp_parser.c.
mkdir "$work/corpus" "$work/auth_corpus" "$work/sasl_corpus"
corpus="$work/corpus"
seed() {
    name=$1
    shift
    printf '%b' "$@" >"$corpus/$name"
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

# Auth seeds: the same 4 header bytes (bit 2 of the flags: line limit 16384
# instead of 256), then client lines. See fuzz_auth_parser.c.
corpus="$work/auth_corpus"
seed postfix '\007\100\200\300VERSION\t1\t0\nCPID\t1234\n' \
    'AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=127.0.0.1\tsecured\t' \
    'resp=AGZvbwBiYXI=\n'
seed login '\006\060\220\000AUTH\t2\tLOGIN\tservice=smtp\tnologin\tlip=::1\trip=::1\n' \
    'CONT\t2\tdXNlcg==\nCONT\t2\tcGFzcw==\r\nCANCEL\t2\n'
seed params '\005\200\000\000AUTH\t3\tSCRAM-SHA-256\tservice=imap\tlport=25\trport=65535\t' \
    'real_lip=1.2.3.4\treal_rip=::1\treal_lport=1\treal_rport=2\tlocal_name=mx\tsession=s\t' \
    'client_id=c\tsecured=tls\tno-penalty\tvalid-client-cert\tcert_username=u\t' \
    'transport=TLS\ttls_cipher=x\ttls_cipher_bits=256\ttls_pfs=y\ttls_protocol=TLSv1.3\t' \
    'debug\tforward_x=1\tresp==\n'
seed minor2 '\002\040\140\000VERSION\t1\t2\nAUTH\t4\tPLAIN\tservice=s\tresp=\n' \
    'AUTH\t5\tPLAIN\tservice=s\tresp\nCONT\t5\t\n'
seed bad '\003\020\120\220VERSION\t1\nCPID\t0\nAUTH\t0\tX\tservice=s\n' \
    'AUTH\t1\tPLAIN\tresp=AA==\tservice=s\nAUTH\t1\tPLAIN\nCANCEL\t1\tx\nXYZZY\n\0\n' \
    'CONT\t4294967296\tAA==\n'
seed escape '\001\200\000\000AUTH\t6\tPLAIN\tservice=sm\001ttp\tsession=\001\n' \
    'CONT\t6\t\001lAA\00010=\001\nCONT\t6\tZm9vYmE=\n'
seed long "\\000\\200\\000\\000CONT\\t7\\t$long\\nCANCEL\\t7\\n"

cat >"$work/auth.dict" <<'DICT'
"VERSION\x09"
"CPID\x09"
"AUTH\x09"
"CONT\x09"
"CANCEL\x09"
"\x09service="
"\x09resp="
"\x09resp=="
"\x09lip="
"\x09rip="
"\x09lport="
"\x09rport="
"\x09real_lip="
"\x09real_lport="
"\x09secured"
"\x09secured=tls"
"\x09nologin"
"\x09no-penalty"
"\x09valid-client-cert"
"\x09cert_username="
"\x09session="
"\x09local_name="
"\x09transport="
"\x09tls_cipher="
"\x09PLAIN"
"\x094294967295"
"\x094294967296"
"\x01"
"\x01t"
"\x01n"
"\x0d\x0a"
"=="
DICT

# SASL seeds: mechanism byte, flags byte, then client messages separated by
# \177~\177; the published exchanges that fuzz_sasl_mech.c replays to success.
corpus="$work/sasl_corpus"
s='\177~\177'
seed plain '\000\004\0tim\0tanstaaftanstaaf'
seed plain_authzid "\\000\\005${s}Ursel\\0Kurt\\0xipj3plmq"
seed login "\\001\\004${s}tim${s}tanstaaftanstaaf"
seed cram "\\002\\000${s}tim b913a602c7eda7a495b4e6e7334d3890"
seed digest "\\003\\002${s}charset=utf-8,username=\"chris\",realm=\"elwood.innosoft.com\"," \
    'nonce="OA6MG9tEQGm2hh",nc=00000001,cnonce="OA6MHXh6VqTrRk",' \
    "digest-uri=\"imap/elwood.innosoft.com\",response=d388dad90d4bbd760a152321f2143af7," \
    "qop=auth${s}"
seed scram1 '\004\000n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL' \
    "${s}c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
seed scram256 "\\005\\002${s}n,,n=user,r=rOprNGfwEbeRWgbNEkqO${s}c=biws," \
    'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,' \
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=${s}"
# hexseed NAME HEX...: binary seeds (NTLM messages), from hex.
hexseed() {
    name=$1
    shift
    h=$(printf '%s' "$@")
    while [ -n "$h" ]; do
        b=${h%"${h#??}"}
        h=${h#??}
        printf "\\$(printf %03o "0x$b")"
    done >"$corpus/$name"
}
ntlm_neg=4e544c4d53535000010000000502000000000000000000000000000000000000
hexseed ntlm_v1 0600 "$ntlm_neg" 7f7e7f \
    4e544c4d5353500003000000180018004000000018001800580000000c000c0070000000 \
    080008007c00000000000000840000000000000084000000050200009 \
    8def7b87f88aa5dafe2df779688a172def11c7d5ccdef1367c43011f30298a2ad35ece64f \
    16331c44bdbed927841f9444006f006d00610069006e005500730065007200
hexseed ntlm_ess 0600 4e544c4d53535000010000000502080000000000000000000000000000000000 \
    7f7e7f 4e544c4d5353500003000000180018004000000018001800580000000c000c007000 \
    0000080008007c0000000000000084000000000000008400000005020000aaaaaaaaaaaaaa \
    aa000000000000000000000000000000007537f803ae367128ca458204bde7caf81e97ed26 \
    8326723244006f006d00610069006e005500730065007200
hexseed ntlm_v2 0600 7f7e7f "$ntlm_neg" 7f7e7f \
    4e544c4d5353500003000000180018004000000054005400580000000c000c00ac000000 \
    08000800b800000000000000c000000000000000c00000000502000086c35097ac9cec1025 \
    54764a57cccc19aaaaaaaaaaaaaaaa68cd0ab851e51c96aabc927bebef6a1c010100000000 \
    00000000000000000000aaaaaaaaaaaaaaaa0000000002000c0044006f006d00610069006e \
    0001000c00530065007200760065007200000000000000000044006f006d00610069006e00 \
    5500730065007200

cat >"$work/sasl.dict" <<'DICT'
"\x7f~\x7f"
"\x00"
"n,,"
"y,,"
"p=tls-unique,,"
"n,a="
"n=user,"
",r="
"c=biws,"
",p="
"=2C"
"=3D"
"username="
"realm="
"nonce="
"cnonce="
"nc=00000001"
"qop=auth"
"qop=auth-int"
"digest-uri=\"imap/"
"response="
"authzid="
"charset=utf-8"
"NTLMSSP\x00"
"\x01\x00\x00\x00"
"\x03\x00\x00\x00"
"\x05\x02\x08\x00"
DICT

# Every input piece is its own heap buffer (so stale slices are caught as
# use-after-free); a smaller quarantine keeps the RSS of that churn low.
export ASAN_OPTIONS="quarantine_size_mb=32:${ASAN_OPTIONS:-}"
failed=0
# run NAME SECONDS CORPUS DICT
run() {
    status=0
    "$work/$1" -max_total_time="$2" -max_len=4096 -timeout=10 \
        -dict="$4" -artifact_prefix="$work/$1-" -print_final_stats=1 \
        "$3" || status=$?
    # libFuzzer reports a crash with 77, which test harnesses read as "skipped".
    if [ "$status" -ne 0 ]; then
        echo "$1 failed (exit $status); inputs kept in $work" >&2
        failed=1
    fi
}
run fuzz_lmtp_parser "$lmtp_secs" "$work/corpus" "$work/lmtp.dict"
run fuzz_auth_parser "$auth_secs" "$work/auth_corpus" "$work/auth.dict"
run fuzz_sasl_mech "$sasl_secs" "$work/sasl_corpus" "$work/sasl.dict"

if [ "$failed" -ne 0 ]; then
    exit 1
fi
rm -rf "$work"
