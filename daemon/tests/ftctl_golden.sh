#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# ftctl against real ftd processes, and ftd's process contract. Proves:
# documented exit codes (2 no ftd, 1 usage, 4 and 8 refused failover), status
# human output and --json keys match the golden files in tests/golden/
# (numbers masked), the control socket is 0600, sd_notify READY=1,
# STATUS= and WATCHDOG=1 pings when WATCHDOG_USEC is set, clean SIGTERM
# exit with the socket removed, and clear config errors.
# Regenerate the golden files with FT_GOLDEN_UPDATE=1 (then review them).
set -u
. "$(dirname "$0")/ftdlib.sh.inc"
need

setup ""
# node 1 runs alone for a while: a long peer_timeout keeps it a primary that
# has not seen its backup yet (after peer_timeout alone it would ballot)
echo "peer_timeout = 10s" >>"$work/n1.conf"
out=$(FTD_SOCKET=$work/n1.sock "$FTCTL" 2>&1); rc=$?
[ $rc -eq 2 ] && [[ $out == *"ftd is not running"* ]]
ok $? "no ftd: exit 2, '$out'"
if [ ! -d /sys/module/kvm_ft ]; then
	out=$("$FTCTL" vms 2>&1); rc=$?
	[ $rc -eq 6 ] && [[ $out == *"kvm_ft module is not loaded"* ]]
	ok $? "vms without the module: exit 6, '$out'"
else
	"$FTCTL" vms --json >/dev/null
	ok $? "vms lists the module's VMs over generic netlink"
fi

# ftd under a fake systemd: notify socket and a 200 ms watchdog
python3 - "$work/notify" 3 >"$work/notify.log" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); s.settimeout(0.2)
end = time.time() + float(sys.argv[2])
while time.time() < end:
    try: print(s.recv(4096).decode().replace("\n", "|"), flush=True)
    except socket.timeout: pass
PY
pids+=($!)
for _ in $(seq 100); do [ -S "$work/notify" ] && break; sleep 0.05; done
NOTIFY_SOCKET=$work/notify WATCHDOG_USEC=200000 start 1
ok $? "primary started"
sleep 1.5
grep -q '^READY=1' "$work/notify.log"
ok $? "sd_notify READY=1"
grep -q '^STATUS=primary, epoch 1; peer 127.0.0.1:[0-9]* not seen yet' "$work/notify.log"
ok $? "sd_notify STATUS line: $(grep -m1 STATUS "$work/notify.log")"
wd=$(grep -c '^WATCHDOG=1' "$work/notify.log")
[ "$wd" -ge 8 ]
ok $? "WATCHDOG=1 every 100 ms (half of WatchdogSec): $wd pings in 1.5 s"
[ "$(stat -c %a "$work/n1.sock")" = 600 ]
ok $? "control socket mode 0600"

FTD_SOCKET=$work/n1.sock "$FTCTL" status --color=never | check_golden status-alone.txt
ok $? "status, peer never seen: matches golden"
start 2
wait_for 5 1 channel up && wait_for 5 2 channel up
ok $? "backup started, channel up"
sleep 0.3
FTD_SOCKET=$work/n2.sock "$FTCTL" --color=never | check_golden status-backup.txt
ok $? "status of the paired backup: matches golden"
FTD_SOCKET=$work/n1.sock "$FTCTL" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
for k, v in d.items(): print(k, type(v).__name__)' | check_golden status-json-keys.txt
ok $? "status --json: keys and value types match golden"
FTD_SOCKET=$work/n1.sock "$FTCTL" status --json | python3 -c '
import json, sys; d = json.load(sys.stdin)
assert d["role"] == "primary" and d["peer_state"] == "alive" and d["epoch"] == 1' 2>/dev/null
ok $? "status --json parses, role primary, peer alive, epoch 1"

out=$(FTD_SOCKET=$work/n1.sock "$FTCTL" failover 2>&1); rc=$?
[ $rc -eq 4 ] && [[ $out == *"no shared_disk configured"* ]]
ok $? "failover without a shared disk: exit 4 with the reason ('$out')"
out=$(FTD_SOCKET=$work/n2.sock "$FTCTL" failover 2>&1); rc=$?
[ $rc -eq 8 ] && [[ $out == *"this node is the backup: ask the primary (node 1"* ]]
ok $? "failover asked on the backup: exit 8 ('$out')"
FTD_SOCKET=$work/n1.sock "$FTCTL" bogus >/dev/null 2>&1
ok $(( $? != 1 )) "unknown command: exit 1"
FTD_SOCKET=$work/n1.sock "$FTCTL" events | grep -q "authenticated session with node 2"
ok $? "events: dump includes the session start"
FTD_SOCKET=$work/n1.sock "$FTCTL" events --json | python3 -c '
import json, sys; [json.loads(l) for l in sys.stdin]' 2>/dev/null
ok $? "events --json: one JSON object per line"
timeout 3 env FTD_SOCKET=$work/n2.sock "$FTCTL" events --follow >"$work/follow" &
fpid=$!
sleep 0.3
kill -STOP "$pid1"; sleep 0.8; kill -CONT "$pid1"
wait "$fpid"
grep -q "declared dead" "$work/follow"
ok $? "events --follow streams a new event as it happens"

kill -TERM "$pid1"
wait "$pid1"; rc=$?
[ $rc -eq 0 ] && [ ! -e "$work/n1.sock" ] && grep -q "received Terminated, stopping" "$work/n1.log"
ok $? "SIGTERM: clean exit 0, socket removed (rc $rc)"

printf 'node_id = 1\nrole = primary\nheartbeat_interval = 5ms\n' >"$work/bad.conf"
out=$("$FTD" -c "$work/bad.conf" 2>&1); rc=$?
[ $rc -eq 2 ] && [[ $out == *"bad.conf:3: heartbeat_interval = '5ms' is invalid: expected 10ms..10s"* ]]
ok $? "bad config: exit 2, '$out'"
"$FTD" -c "$work/n2.conf" --check-config >/dev/null
ok $? "--check-config accepts a good file"
finish
