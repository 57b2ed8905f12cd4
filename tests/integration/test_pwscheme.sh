#!/usr/bin/env bash
# Password schemes against Dovecot itself: for every scheme both `doveadm pw`
# and sluice-pw know, a value made by doveadm must verify in sluice-pw (right
# password exit 0, wrong password exit 1), and a value made by sluice-pw must
# verify in `doveadm pw -t` (and fail there with a wrong password). Also the
# .HEX/.B64 encodings, a non-ASCII password, values without a prefix, and
# sluice-pw's exit codes and stdin handling. doveadm pw needs no running
# Dovecot, and nothing here needs io_uring, so this test does not call t_init.
source "$(dirname "$0")/lib.sh"
SLUICE_PW=${SLUICE_PW:-$SLUICE_SRC/build/tools/sluice-pw}
T_NAME=$(basename "$0" .sh)
T_START=$SECONDS
t_need "$SLUICE_PW" doveadm timeout

PASSWORDS=('secret' $'p\xc3\xa4ss w\xc3\xb6rd "$x" \\') # UTF-8, space, quotes, backslash
WRONG='not-the-password'
DIGEST_USER='user@realm'

# pw_user_args SCHEME: the -u option a scheme needs
pw_user_args() {
    case ${1%%.*} in
    DIGEST-MD5) printf '%s\n' -u "$DIGEST_USER" ;;
    esac
}

# rc CMD...: prints CMD's exit status (output discarded), bounded in time
rc() {
    timeout 60 "$@" >/dev/null 2>&1
    echo $?
}

mapfile -t dove_schemes < <(doveadm pw -l | tr ' ' '\n' | sed '/^$/d' | sort)
mapfile -t our_schemes < <("$SLUICE_PW" -l | sort)
t_eq "sluice-pw -l lists schemes" "$([ ${#our_schemes[@]} -ge 30 ] && echo yes)" yes
# compare COMM_FLAG: schemes in doveadm's and/or sluice-pw's lists
compare() {
    comm "$1" <(printf '%s\n' "${dove_schemes[@]}") <(printf '%s\n' "${our_schemes[@]}")
}
mapfile -t common < <(compare -12)
t_log "schemes known to both: ${common[*]}"
t_log "doveadm only: $(compare -23 | tr '\n' ' ')"
t_log "sluice only: $(compare -13 | tr '\n' ' ')"
t_eq "at least 28 schemes in common with doveadm" "$([ ${#common[@]} -ge 28 ] && echo yes)" yes

# Both directions for one scheme (with an optional encoding suffix) and password.
cross_check() {
    local s=$1 pw=$2 what=$3 v got
    local -a u
    mapfile -t u < <(pw_user_args "$s")
    if [ "${s%%.*}" != PLAIN-TRUNC ]; then
        # doveadm's own PLAIN-TRUNC output lacks the "<length>-" its verifier wants
        v=$(timeout 60 doveadm pw -s "$s" "${u[@]}" -p "$pw" 2>&1)
        t_match "$s$what: doveadm pw makes a value" "$v" "^\{$s\}"
        t_eq "$s$what: doveadm value verifies in sluice-pw" \
            "$(rc "$SLUICE_PW" -t "$v" "${u[@]}" -p "$pw")" 0
        t_eq "$s$what: doveadm value, wrong password: sluice-pw exits 1" \
            "$(rc "$SLUICE_PW" -t "$v" "${u[@]}" -p "$WRONG")" 1
    fi
    v=$(timeout 60 "$SLUICE_PW" -s "$s" "${u[@]}" -p "$pw" 2>&1)
    t_match "$s$what: sluice-pw makes a value" "$v" "^\{$s\}"
    t_eq "$s$what: sluice-pw value verifies in doveadm pw -t" \
        "$(rc doveadm pw -t "$v" "${u[@]}" -p "$pw")" 0
    got=$(rc doveadm pw -t "$v" "${u[@]}" -p "$WRONG")
    t_eq "$s$what: sluice-pw value, wrong password: doveadm pw -t fails" \
        "$([ "$got" != 0 ] && echo fails)" fails
}

for s in "${common[@]}"; do
    case $s in
    OTP) continue ;; # not supported by sluice: checked below
    esac
    cross_check "$s" "${PASSWORDS[0]}" ""
done

# A password with UTF-8, spaces, quotes and a backslash, for a spread of families.
for s in PLAIN CRAM-MD5 DIGEST-MD5 SCRAM-SHA-256 SHA512-CRYPT BLF-CRYPT ARGON2ID SSHA512 \
    PBKDF2 PLAIN-MD4; do
    cross_check "$s" "${PASSWORDS[1]}" " (non-ASCII password)"
done

# Encoding suffixes, both ways.
for s in SSHA.HEX SHA256.B64 PLAIN.B64 SSHA512.BASE64 CRAM-MD5.B64 PLAIN-MD5.B64 LDAP-MD5.HEX \
    SHA.HEX SMD5.HEX; do
    cross_check "$s" secret " (encoding)"
done

# Values without a {SCHEME} prefix: a default scheme, or Dovecot's "$1$" rule.
v=$(doveadm pw -s SHA512-CRYPT -p secret)
t_eq "unprefixed \$6\$ value under -s CRYPT" \
    "$(rc "$SLUICE_PW" -t "${v#\{*\}}" -s CRYPT -p secret)" 0
v=$(doveadm pw -s MD5-CRYPT -p secret)
t_eq "unprefixed \$1\$ value under the default (MD5)" \
    "$(rc "$SLUICE_PW" -t "${v#\{*\}}" -p secret)" 0
t_eq "unprefixed \$1\$ value under -s PLAIN (always MD5-CRYPT)" \
    "$(rc "$SLUICE_PW" -t "${v#\{*\}}" -s PLAIN -p secret)" 0
v=$(doveadm pw -s PLAIN-MD5 -p secret)
t_eq "unprefixed hex MD5 under the default (MD5 = PLAIN-MD5 here)" \
    "$(rc "$SLUICE_PW" -t "${v#\{*\}}" -p secret)" 0
t_eq "unprefixed plaintext under -s plain" "$(rc "$SLUICE_PW" -t secret -s plain -p secret)" 0

# What sluice does not support, and malformed values: exit 2.
v=$(doveadm pw -s OTP -p secret 2>/dev/null)
t_eq "OTP (unsupported) gives exit 2" "$(rc "$SLUICE_PW" -t "$v" -p secret)" 2
t_eq "unknown scheme gives exit 2" "$(rc "$SLUICE_PW" -t '{NOPE}x' -p secret)" 2
t_eq "bad base64 gives exit 2" "$(rc "$SLUICE_PW" -t '{SHA}!!!!' -p secret)" 2
t_eq "making an unknown scheme gives exit 2" "$(rc "$SLUICE_PW" -s NOPE -p secret)" 2
t_eq "DIGEST-MD5 without -u gives exit 2" "$(rc "$SLUICE_PW" -s DIGEST-MD5 -p secret)" 2
t_eq "a stray argument gives exit 2" "$(rc "$SLUICE_PW" extra)" 2

# The password from standard input (first line) when -p is absent.
v=$(printf 'secret\nsecond line\n' | timeout 60 "$SLUICE_PW" -s SSHA256)
t_eq "password from stdin: value verifies in doveadm" "$(rc doveadm pw -t "$v" -p secret)" 0
t_eq "verify with the password from stdin" \
    "$(printf 'secret\r\n' | timeout 60 "$SLUICE_PW" -t "$v" >/dev/null 2>&1; echo $?)" 0
t_eq "verify with a wrong password from stdin" \
    "$(printf 'nope\n' | timeout 60 "$SLUICE_PW" -t "$v" >/dev/null 2>&1; echo $?)" 1
t_eq "no password on stdin gives exit 2" \
    "$(timeout 60 "$SLUICE_PW" -t "$v" </dev/null >/dev/null 2>&1; echo $?)" 2
t_done
