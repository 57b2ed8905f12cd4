#!/usr/bin/env bash
# bench/durable-floor, the yardstick of bench/RESULTS.md, on a tiny load so
# that its numbers keep meaning what they say: per method (fsync, fsync
# without the tmp/ fsync, syncfs, none) and with 1 and 3 recipients, every
# delivery it counts is exactly one name per recipient in new/ and nothing is
# left in tmp/ (counted here, and by its own --verify); syncfs waits for two
# rounds per message at most; a failed syscall is exit 1 with the path.
source "$(dirname "$0")/lib.sh"
t_init
FLOOR=${DURABLE_FLOOR:-$(dirname "$SLUICE_BIN")/bench/durable-floor}
t_need "$FLOOR"

for rcpts in 1 3; do
    for m in fsync fsync-notmp syncfs none; do
        args=(--method "$m")
        [ "$m" = fsync-notmp ] && args=(--method fsync --no-tmp-fsync)
        D=$T_WORK/$m-$rcpts
        out=$("$FLOOR" --dir "$D" "${args[@]}" --threads 3 --rcpts "$rcpts" --users 12 \
            --duration 0.5 --warmup 0.2 --json --verify 2>"$T_WORK/err")
        t_eq "$m, $rcpts rcpt: exit status" "$?" 0
        t_match "$m, $rcpts rcpt: its own verification" "$(cat "$T_WORK/err")" 'verify: ok'
        names=$(find "$D" -path "$D/*/new/*" -type f | wc -l)
        left=$(find "$D" -path "$D/*/tmp/*" -type f | wc -l)
        t_eq "$m, $rcpts rcpt: names in new/ = finished messages x recipients, none in tmp/" \
            "$names $left" "$(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["messages_total"] * j["rcpts"], 0)' "$out")"
        t_eq "$m, $rcpts rcpt: measured some messages, deliveries = messages x rcpts" \
            "$(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["messages"] > 0 and j["deliveries"] == j["messages"] * j["rcpts"])' "$out")" True
        if [ "$m" = syncfs ]; then
            t_eq "syncfs, $rcpts rcpt: rounds counted, at most two per message" \
                "$(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(0 < j["rounds_per_msg"] <= 2.5)' "$out")" True
        fi
    done
done

touch "$T_WORK/file"
"$FLOOR" --dir "$T_WORK/file" --duration 0.2 2>"$T_WORK/err"
t_eq "a file where the maildirs go: exit status" "$?" 1
t_match "a file where the maildirs go: the failing path is named" "$(cat "$T_WORK/err")" \
    "^durable-floor: .*$T_WORK/file"
"$FLOOR" --dir "$T_WORK/x" --rcpts 65 2>/dev/null
t_eq "65 recipients: usage error" "$?" 2
t_done
