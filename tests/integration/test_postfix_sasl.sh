#!/usr/bin/env bash
# SMTP AUTH through a real Postfix 3.7 (temp config dir, no chroot, no TLS)
# with smtpd_sasl_type = dovecot against an auth endpoint: sluice's
# (auth_listen) and a real Dovecot 2.3 auth service with the same users,
# passwords and mechanisms. Each endpoint is reached twice, over
# smtpd_sasl_path = inet:127.0.0.1:PORT and over an absolute UNIX socket path,
# each through its own smtpd service (own port) of one Postfix.
#
# Per endpoint, a case table run with swaks (PLAIN, LOGIN, CRAM-MD5,
# DIGEST-MD5, NTLM when enabled) and a python SCRAM client (SCRAM-SHA-1/-256,
# server signature verified): right password 235 2.7.0, wrong password and
# unknown user 535 5.7.8 with one and the same text, EHLO offers exactly the
# configured mechanisms, and Postfix's log has sasl_method= sasl_username= for
# each success. Every case comes from its own 127.x.y.z source address, so no
# case raises another's brute-force penalty. When both backends run, their
# code tables must be equal.
#
# Backend down: sluice with a PostgreSQL passdb that is stopped must make
# Postfix answer 454 4.7.0 (it drops the auth connection); Dovecot with its
# passwd-file gone answers FAIL code=temp_fail, which Postfix turns into 535
# (Postfix does not read code=; reference/protocols.md §3.4): checked and
# logged as Dovecot's behaviour.
#
# AUTH_BACKEND=dovecot runs against Dovecot only. With the default
# (AUTH_BACKEND=sluice) both run; until sluice's auth endpoint is in the tree
# (lib_auth.sh auth_have_sluice: proto/auth_session.c wired into core/main.c, auth_listen in \$SLUICE_BIN) the table runs against Dovecot only and
# the test says so in a NOTE line.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_sql.sh"
source "$(dirname "$0")/lib_auth.sh"
t_init
t_need postfix postconf swaks dovecot doveadm perl
t_cmd "perl SASL modules for swaks (libauthen-sasl-perl, libauthen-ntlm-perl)" \
    perl -MAuthen::SASL -MAuthen::NTLM -MDigest::HMAC_MD5 -e 1

BACKENDS=()
case $AUTH_BACKEND in
dovecot) BACKENDS=(dovecot) ;;
sluice)
    if auth_have_sluice; then
        BACKENDS=(sluice dovecot)
    else
        echo "NOTE - sluice's auth endpoint is not in the tree yet (lib_auth.sh auth_have_sluice: proto/auth_session.c wired into core/main.c, auth_listen in \$SLUICE_BIN):" \
            "the case table runs against Dovecot only"
        BACKENDS=(dovecot)
    fi
    ;;
*) t_fail "AUTH_BACKEND known" "$AUTH_BACKEND" "sluice or dovecot"; t_done ;;
esac

# ---------------------------------------------------------------- users
P_PLAIN=secret-1
P_CRYPT='crypt pw 2'
P_SCRAM=scram-3
P_CRAM=cram-4
auth_user user0001@example.test "{PLAIN}$P_PLAIN"
auth_user crypt@example.test "$(auth_pw SHA512-CRYPT "$P_CRYPT")"
auth_user scram@example.test "$(auth_pw SCRAM-SHA-256 "$P_SCRAM")"
auth_user cram@example.test "$(auth_pw CRAM-MD5 "$P_CRAM")"
auth_user off@example.test "{PLAIN}off-5" --inactive
t_match "passwd-file holds the hashed values" "$(cut -d: -f2 "$AUTH_PASSWD" | cut -c1-17 | tr '\n' ' ')" \
    '^\{PLAIN\}secret-1 \{SHA512-CRYPT\}\$6\$ \{SCRAM-SHA-256\}[0-9]+ \{CRAM-MD5\}[0-9a-f]+ $'

# ---------------------------------------------------------------- endpoints
declare -A EP_MECHS    # endpoint -> mechanisms it is configured with
EPS=()                 # endpoint names: <backend>-inet, <backend>-unix
declare -A EP_PATH
for b in "${BACKENDS[@]}"; do
    if [ "$b" = sluice ]; then
        # The UNIX socket is Postfix's alone (smtpd runs as mail_owner
        # postfix): the case table over it proves auth_unix_owner/group/mode.
        auth_start "$b" sluice auth_ntlm=yes "auth_mechanisms=$AUTH_MECHS_DEFAULT NTLM" \
            "auth_failure_delay=1s" auth_unix_owner=postfix auth_unix_group=postfix \
            auth_unix_mode=0600
        EP_MECHS[$b]="$AUTH_MECHS_DEFAULT NTLM"
        t_eq "sluice's auth socket: owner, group and mode" "$(stat -c '%U %G %a' "$AUTH_UNIX")" \
            "postfix postfix 600"
    else
        auth_start "$b" dovecot "auth_failure_delay=1 secs"
        EP_MECHS[$b]=$AUTH_MECHS_DEFAULT
    fi
    EP_PATH[$b-inet]=inet:$AUTH_INET
    EP_PATH[$b-unix]=$AUTH_UNIX
    EPS+=("$b-inet" "$b-unix")
done

# One Postfix; one smtpd service per endpoint on its own port.
mapfile -t PORTS < <(free_ports $((${#EPS[@]} + 1)))
PF=$T_WORK/postfix
if ! postfix_start "$PF" "${PORTS[0]}" "inet:127.0.0.1:9" "smtpd_peername_lookup = no
smtpd_delay_open_until_valid_rcpt = no
smtpd_sasl_security_options = noanonymous
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination"; then
    t_fail "postfix starts on 127.0.0.1:${PORTS[0]}" "$(tail -n 5 "$PF/log/postfix.log" "$PF/log/start-fg.out" 2>&1)" "listening"
    t_done
fi
PFLOG=$PF/log/postfix.log
declare -A EP_PORT
i=1
for ep in "${EPS[@]}"; do
    p=${PORTS[$i]}
    i=$((i + 1))
    EP_PORT[$ep]=$p
    postconf -c "$PF/etc" -Me "127.0.0.1:$p/inet = 127.0.0.1:$p inet n - n - - smtpd -o syslog_name=postfix/$ep -o smtpd_sasl_auth_enable=yes -o smtpd_sasl_type=dovecot -o smtpd_sasl_path=${EP_PATH[$ep]} -o smtpd_sasl_security_options=noanonymous"
done
timeout 30 postfix -c "$PF/etc" reload >/dev/null 2>&1
for ep in "${EPS[@]}"; do
    wait_tcp 127.0.0.1 "${EP_PORT[$ep]}" 20 ||
        { t_fail "postfix smtpd for $ep listens on ${EP_PORT[$ep]}" "not listening" "listening"; t_done; }
done
t_ok "postfix: one smtpd service per endpoint (${EPS[*]})"

# ---------------------------------------------------------------- cases
# name mech user password want(235|535)
CASES=(
    "plain-ok PLAIN user0001@example.test $P_PLAIN 235"
    "login-ok LOGIN user0001@example.test $P_PLAIN 235"
    "cram-ok CRAM-MD5 user0001@example.test $P_PLAIN 235"
    "digest-ok DIGEST-MD5 user0001@example.test $P_PLAIN 235"
    "crypt-plain-ok PLAIN crypt@example.test ${P_CRYPT// /%20} 235"
    "crypt-login-ok LOGIN crypt@example.test ${P_CRYPT// /%20} 235"
    "cramstored-ok CRAM-MD5 cram@example.test $P_CRAM 235"
    "scramstored-plain-ok PLAIN scram@example.test $P_SCRAM 235"
    "plain-wrong PLAIN user0001@example.test wrong 535"
    "login-wrong LOGIN user0001@example.test wrong 535"
    "cram-wrong CRAM-MD5 user0001@example.test wrong 535"
    "digest-wrong DIGEST-MD5 user0001@example.test wrong 535"
    "crypt-wrong PLAIN crypt@example.test wrong 535"
    "cram-on-crypt CRAM-MD5 crypt@example.test ${P_CRYPT// /%20} 535"
    "plain-unknown PLAIN nobody@example.test wrong 535"
    "login-unknown LOGIN nobody@example.test wrong 535"
    "cram-unknown CRAM-MD5 nobody@example.test wrong 535"
    "digest-unknown DIGEST-MD5 nobody@example.test wrong 535"
    "plain-inactive PLAIN off@example.test off-5 535"
)
NTLM_CASES=(
    "ntlm-ok NTLM user0001@example.test $P_PLAIN 235"
    "ntlm-wrong NTLM user0001@example.test wrong 535"
    "ntlm-unknown NTLM nobody@example.test wrong 535"
)
SCRAM_CASES=(
    "scram256-ok SCRAM-SHA-256 user0001@example.test $P_PLAIN 235"
    "scram1-ok SCRAM-SHA-1 user0001@example.test $P_PLAIN 235"
    "scram256-stored-ok SCRAM-SHA-256 scram@example.test $P_SCRAM 235"
    "scram256-wrong SCRAM-SHA-256 user0001@example.test wrong 535"
    "scram1-wrong SCRAM-SHA-1 user0001@example.test wrong 535"
    "scram256-unknown SCRAM-SHA-256 nobody@example.test wrong 535"
)

# swaks_case EP IP MECH USER PASS OUT: one SMTP session; on success it goes on
# to MAIL FROM, so that Postfix logs sasl_method/sasl_username with a queue id
swaks_case() {
    local ep=$1 ip=$2 mech=$3 user=$4 pass=${5//%20/ } out=$6
    timeout 60 swaks --server 127.0.0.1 --port "${EP_PORT[$ep]}" --local-interface "$ip" \
        --helo client.test --from sender@example.org --to user0001@example.test \
        --auth "$mech" --auth-user "$user" --auth-password "$pass" --quit-after MAIL \
        >"$out" 2>&1
}

# auth_reply FILE: the server's reply to the AUTH exchange in a swaks transcript
auth_reply() {
    sed -n '/^ *[-~]> AUTH /,$p' "$1" | grep -E '^ *<[-~*]+ +[0-9]{3} ' | grep -vE ' 334( |$)' |
        head -n 1 | sed -E 's/^ *<[-~*]+ +//'
}

SCRAM_PY=$T_WORK/scram_cases.py
cat >"$SCRAM_PY" <<'PY'
import sys, threading
from authproto import smtp_scram
port, out = int(sys.argv[1]), sys.argv[2]
cases = [a.split("|") for a in sys.argv[3:]]   # name|mech|user|pass|ip
res = {}
def one(name, mech, user, pw, ip):
    try:
        code, text, offered, verified = smtp_scram("127.0.0.1", port, mech, user, pw, source=ip,
                                                   mail_from="sender@example.org")
        res[name] = f"{code} {text}\t{' '.join(offered)}\t{verified}"
    except Exception as e:  # a failed server signature lands here too
        res[name] = f"error {type(e).__name__}: {e}\t\tFalse"
ts = [threading.Thread(target=one, args=c) for c in cases]
for t in ts: t.start()
for t in ts: t.join(90)
with open(out, "w") as f:
    for c in cases:
        f.write(f"{c[0]}\t{res.get(c[0], 'no result')}\n")
PY

declare -A GOT   # "ep name" -> code
declare -A TEXT535
run_endpoint() {
    local ep=$1 n=$2 b=${1%-*} dir=$T_WORK/cases-$1 c name mech user pass want ip k=10
    mkdir -p "$dir"
    local -a cases=("${CASES[@]}") pids=() scram=()
    [[ " ${EP_MECHS[$b]} " == *" NTLM "* ]] && cases+=("${NTLM_CASES[@]}")
    declare -gA CASE_IP
    for c in "${cases[@]}"; do
        read -r name mech user pass want <<<"$c"
        ip=127.$n.0.$k
        k=$((k + 1))
        CASE_IP[$ep $name]=$ip
        swaks_case "$ep" "$ip" "$mech" "$user" "$pass" "$dir/$name.out" &
        pids+=($!)
    done
    for c in "${SCRAM_CASES[@]}"; do
        read -r name mech user pass want <<<"$c"
        ip=127.$n.0.$k
        k=$((k + 1))
        CASE_IP[$ep $name]=$ip
        scram+=("$name|$mech|$user|$pass|$ip")
    done
    timeout -k 5 120 python3 "$SCRAM_PY" "${EP_PORT[$ep]}" "$dir/scram.tsv" "${scram[@]}" &
    pids+=($!)
    for p in "${pids[@]}"; do wait "$p"; done

    local reply text first535=
    for c in "${cases[@]}"; do
        read -r name mech user pass want <<<"$c"
        reply=$(auth_reply "$dir/$name.out")
        GOT[$ep $name]=${reply%% *}
        if [ "$want" = 235 ]; then
            t_eq "$ep $name: $mech $user -> 235 2.7.0" "$reply" "235 2.7.0 Authentication successful" ||
                sed -n '1,40p' "$dir/$name.out"
        else
            t_match "$ep $name: $mech $user -> 535 5.7.8" "$reply" '^535 5\.7\.8 Error: authentication failed: ' ||
                sed -n '1,40p' "$dir/$name.out"
            [ -z "$first535" ] && first535=$reply
            t_eq "$ep $name: the same 535 text as every other failure" "$reply" "$first535"
        fi
    done
    TEXT535[$ep]=$first535
    local line got offered verified
    for c in "${SCRAM_CASES[@]}"; do
        read -r name mech user pass want <<<"$c"
        line=$(grep -P "^$name\t" "$dir/scram.tsv")
        IFS=$'\t' read -r _ got offered verified <<<"$line"
        GOT[$ep $name]=${got%% *}
        if [ "$want" = 235 ]; then
            t_eq "$ep $name: $mech $user -> 235 2.7.0 (python SCRAM client)" "$got" "235 2.7.0 Authentication successful"
            t_eq "$ep $name: the server's SCRAM signature verifies" "$verified" True
        else
            t_eq "$ep $name: $mech $user -> 535 with the common text" "$got" "$first535"
        fi
    done
    # EHLO: exactly the configured mechanisms (as sets: the order is the server's)
    t_eq "$ep: EHLO offers the configured mechanisms" \
        "$(tr ' ' '\n' <<<"$offered" | sort | tr '\n' ' ')" \
        "$(tr ' ' '\n' <<<"${EP_MECHS[$b]}" | sort | tr '\n' ' ')"
}

n=1
for ep in "${EPS[@]}"; do
    t_log "case table against $ep (smtpd on 127.0.0.1:${EP_PORT[$ep]}, smtpd_sasl_path=${EP_PATH[$ep]})"
    run_endpoint "$ep" "$n"
    n=$((n + 1))
done

# ---------------------------------------------------------------- postfix log
sleep 1   # postlogd writes asynchronously
for ep in "${EPS[@]}"; do
    b=${ep%-*}
    all=("${CASES[@]}" "${SCRAM_CASES[@]}")
    [[ " ${EP_MECHS[$b]} " == *" NTLM "* ]] && all+=("${NTLM_CASES[@]}")
    for c in "${all[@]}"; do
        read -r name mech user pass want <<<"$c"
        ip=${CASE_IP[$ep $name]}
        if [ "$want" = 235 ]; then
            t_match "$ep $name: postfix log has sasl_method=$mech, sasl_username=$user" \
                "$(grep -F "client=unknown[$ip]" "$PFLOG" | head -n 1)" \
                "postfix/$ep/smtpd\[[0-9]+\]: [0-9A-F]+: client=unknown\[${ip//./\\.}\], sasl_method=$mech, sasl_username=$user\$"
        else
            t_match "$ep $name: postfix log has the SASL $mech failure" \
                "$(grep -F "unknown[$ip]: SASL $mech authentication failed" "$PFLOG" | head -n 1)" \
                "warning: unknown\[${ip//./\\.}\]: SASL $mech authentication failed"
        fi
    done
done
t_eq "postfix log: no auth-server trouble (connect, timeout, protocol)" \
    "$(grep -E 'postfix/.*smtpd' "$PFLOG" | grep -Ei 'auth server|Connected to wrong|timeout|protocol error|fatal' | head -n 3)" ""

# ---------------------------------------------------------------- same codes
if [ ${#BACKENDS[@]} -ge 2 ]; then
    for kind in inet unix; do
        a=sluice-$kind d=dovecot-$kind
        rows_a= rows_d=
        for c in "${CASES[@]}" "${SCRAM_CASES[@]}"; do
            read -r name _ <<<"$c"
            [ "$name" = plain-inactive ] && continue
            rows_a+="$name=${GOT[$a $name]} "
            rows_d+="$name=${GOT[$d $name]} "
        done
        t_eq "same codes from sluice and Dovecot over $kind" "$rows_a" "$rows_d"
        t_eq "same 535 text from sluice and Dovecot over $kind" "${TEXT535[$a]}" "${TEXT535[$d]}"
    done
else
    t_log "one backend only (${BACKENDS[*]}): no cross-backend comparison"
fi

# ---------------------------------------------------------------- wire shape
# Two details of the exchange, spoken directly and checked against each
# backend: an empty initial response (resp=) is answered with a CONT asking
# for one, and SCRAM's server-final message comes as a CONT whose empty answer
# gets the OK (Postfix relays both as 334 lines).
WIRE=$T_WORK/wire.py
cat >"$WIRE" <<'PY'
import base64, sys
from authproto import AuthConn, Scram
from itest import CHECK
name, target, user, password = sys.argv[1:5]
c = AuthConn(target)
c.handshake()
c.sock.sendall(b"AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=127.0.0.1\tresp=\n")
verb, rid, _, _, raw = c.reply()
CHECK.eq(f"{name}: AUTH PLAIN with an empty resp=: a CONT with no data", raw, "CONT\t1\t")
c.close()
c = AuthConn(target)
c.handshake()
sc = Scram("SCRAM-SHA-256", user, password)
rid = c.auth("SCRAM-SHA-256", sc.first())
verbs = []
verb, _, _, _, raw = c.reply()
verbs.append(verb)
c.cont(rid, sc.final(base64.b64decode(raw.split("\t")[2])))
verb, _, _, _, raw = c.reply()
verbs.append(verb)
if verb == "CONT":
    try:
        sc.check_server_final(base64.b64decode(raw.split("\t")[2]))
        CHECK.ok(f"{name}: the CONT holds SCRAM's server-final, and it verifies")
    except Exception as e:  # ScramError, or not base64 at all
        CHECK.fail(f"{name}: the CONT holds SCRAM's server-final, and it verifies", f"{raw}: {e}",
                   "v=<server signature>")
    c.cont(rid, b"")
    verb, _, kv, _, raw = c.reply()
    verbs.append(verb)
CHECK.eq(f"{name}: SCRAM-SHA-256 replies", verbs, ["CONT", "CONT", "OK"])
c.close()
CHECK.done()
PY
for b in "${BACKENDS[@]}"; do
    t_py "$b: wire shape" "$WIRE" "$b" "${EP_PATH[$b-inet]#inet:}" user0001@example.test "$P_PLAIN"
done

# ---------------------------------------------------------------- backend down
# auth_down_reply PORT IP USER PASS: the AUTH PLAIN reply through postfix
auth_down_reply() {
    local out=$T_WORK/down-$2.out
    swaks_case "$1" "$2" PLAIN "$3" "$4" "$out"
    auth_reply "$out"
}

# Dovecot: its passdb fails (a checkpassword program that exits 111, "temporary
# problem", once $T_WORK/passdb-down exists) -> FAIL code=temp_fail -> postfix 535.
if [[ " ${BACKENDS[*]} " == *" dovecot "* ]]; then
    CHECKPW=$T_WORK/checkpassword.py
    cat >"$CHECKPW" <<PY
#!/usr/bin/python3
import os, sys
if os.path.exists("$T_WORK/passdb-down"):
    sys.exit(111)
user, pw = os.read(3, 4096).split(b"\\0")[:2]
if (user, pw) != (b"down@example.test", b"down-6"):
    sys.exit(1)
os.execv(sys.argv[1], sys.argv[1:])
PY
    chmod 755 "$CHECKPW"
    auth_start dovecot-down dovecot "auth_failure_delay=1 secs"
    pid_stop "$AUTH_PID" 10
    D=${AUTH_DIRS[dovecot-down]}
    python3 - "$D/dovecot.conf" "$CHECKPW" <<'PY'
import re, sys
conf = open(sys.argv[1]).read()
conf = re.sub(r"passdb \{.*?\n\}", "passdb {\n  driver = checkpassword\n  args = %s\n}" % sys.argv[2],
              conf, flags=re.S)
open(sys.argv[1], "w").write(conf)
PY
    dovecot -F -c "$D/dovecot.conf" >>"$D/log" 2>&1 &
    AUTH_PID=$!
    AUTH_PIDS[dovecot-down]=$AUTH_PID
    t_bg_add "$AUTH_PID"
    wait_tcp 127.0.0.1 "${AUTH_INET#*:}" 20 "$AUTH_PID"
    DOWN_INET=$AUTH_INET
    port=$(free_port)
    postconf -c "$PF/etc" -Me "127.0.0.1:$port/inet = 127.0.0.1:$port inet n - n - - smtpd -o syslog_name=postfix/dovecot-down -o smtpd_sasl_auth_enable=yes -o smtpd_sasl_type=dovecot -o smtpd_sasl_path=inet:$DOWN_INET"
    timeout 30 postfix -c "$PF/etc" reload >/dev/null 2>&1
    wait_tcp 127.0.0.1 "$port" 20
    EP_PORT[dovecot-down]=$port
    t_eq "dovecot-down: before the outage 235" \
        "$(auth_down_reply dovecot-down 127.200.0.1 down@example.test down-6)" "235 2.7.0 Authentication successful"
    touch "$T_WORK/passdb-down"
    got=$(python3 - "$DOWN_INET" <<'PY'
import sys
from authproto import AuthConn
c = AuthConn(sys.argv[1])
c.handshake()
verb, rid, kv, bare, raw = c.plain("down@example.test", "down-6", rip="127.200.0.2")
print(verb, kv.get("code", "-"))
PY
)
    t_eq "dovecot-down: passdb failing: Dovecot answers FAIL code=temp_fail" "$got" "FAIL temp_fail"
    reply=$(auth_down_reply dovecot-down 127.200.0.3 down@example.test down-6)
    t_match "dovecot-down: postfix turns temp_fail into 535 5.7.8 (it ignores code=)" "$reply" '^535 5\.7\.8 '
    t_log "Dovecot with its passdb failing: FAIL code=temp_fail; postfix answers: $reply"
    rm -f "$T_WORK/passdb-down"
    auth_stop dovecot-down
fi

# sluice: a PostgreSQL passdb that stops -> sluice drops the connection -> 454.
if [[ " ${BACKENDS[*]} " == *" sluice "* ]]; then
    pg_start
    sql_add_users 3 pg
    auth_start sluice-down sluice userdb_driver=pgsql "userdb_connect=$PG_CONNECT" \
        "user_query=SELECT maildir, quota, active FROM mailbox WHERE username = '%u'" \
        userdb_query_timeout_ms=1000 userdb_connect_timeout_ms=1000 "auth_failure_delay=1s"
    port=$(free_port)
    postconf -c "$PF/etc" -Me "127.0.0.1:$port/inet = 127.0.0.1:$port inet n - n - - smtpd -o syslog_name=postfix/sluice-down -o smtpd_sasl_auth_enable=yes -o smtpd_sasl_type=dovecot -o smtpd_sasl_path=inet:$AUTH_INET"
    timeout 30 postfix -c "$PF/etc" reload >/dev/null 2>&1
    wait_tcp 127.0.0.1 "$port" 20
    EP_PORT[sluice-down]=$port
    t_eq "sluice-down: before the outage 235" \
        "$(auth_down_reply sluice-down 127.201.0.1 user0001@example.test secret)" "235 2.7.0 Authentication successful"
    pg_stop
    t_match "sluice-down: passdb unreachable: postfix answers 454 4.7.0" \
        "$(auth_down_reply sluice-down 127.201.0.2 user0002@example.test secret)" '^454 4\.7\.0 '
    pg_run
    # The database connection is retried with a backoff (100 ms doubling):
    # logins work again within a few seconds, without a restart.
    got=
    for _ in $(seq 20); do
        got=$(auth_down_reply sluice-down 127.201.0.3 user0002@example.test secret)
        [ "$got" = "235 2.7.0 Authentication successful" ] && break
        sleep 0.5
    done
    t_eq "sluice-down: after the outage 235 again (within 10 s)" "$got" "235 2.7.0 Authentication successful"
    auth_stop sluice-down
fi

postfix_stop "$PF"
T_POSTFIX_DIRS=()
for b in "${BACKENDS[@]}"; do auth_stop "$b"; done
t_done
