#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Failure detection on a healthy link must not fire: two ftd with the
# default heartbeat (100 ms) and peer timeout (500 ms) replicate a steady
# log stream for $FT_HB_SECS seconds (default 15) while busy loops keep
# both CPUs of the machine saturated (2 hogs per core, same priority as
# ftd). Proves: no "declared dead" on either side, the channel never
# dropped, and reports the longest silence each side saw between frames.
set -u
. "$(dirname "$0")/ftdlib.sh.inc"
need
secs=${FT_HB_SECS:-15}
hogs=$(( $(nproc) * 2 ))
setup ""
start 2 && start 1
ok $? "both ftd started (default heartbeat and timeout)"
wait_for 5 1 channel up
ok $? "authenticated channel up"
[ "$(st 1 peer_timeout_ms)" = 500 ] && [ "$(st 1 heartbeat_interval_ms)" = 100 ]
ok $? "defaults in effect: heartbeat 100 ms, peer timeout 500 ms"

seed=$RANDOM$RANDOM
echo "# seed $seed, $secs s, $hogs CPU hogs"
for _ in $(seq "$hogs"); do
	( end=$((SECONDS + secs)); while [ $SECONDS -lt $end ]; do :; done ) &
	pids+=($!)
done
total=$((secs * 2000))
"$RING" produce "$work/n1.ring" "$seed" "$total" 2000 &
pids+=($!)
got=$("$RING" verify "$work/n2.ring" "$seed" "$total" $((secs + 30)))
ok $? "$total records at 2000/s under load, verified ($got)"
g1=$(st 1 max_heartbeat_gap_ms) g2=$(st 2 max_heartbeat_gap_ms)
echo "# longest silence between frames: primary saw $g1 ms, backup saw $g2 ms"
dead=$(cat "$work/n1.log" "$work/n2.log" | grep -c "declared dead")
ok $((dead != 0)) "no false 'declared dead' under load ($dead)"
[ "$(st 1 sessions)" = 1 ] && [ "$(st 2 sessions)" = 1 ]
ok $? "one session each: the channel never dropped"
[ "$(st 1 role)" = primary ] && [ "$(st 2 role)" = backup ]
ok $? "roles unchanged"
[ -n "$g1" ] && [ -n "$g2" ] && [ "$g1" -lt 500 ] && [ "$g2" -lt 500 ]
ok $? "longest gaps ($g1, $g2 ms) below the 500 ms timeout"
cleanup
trap - EXIT
pids=()

setup "ring_order = 16
max_lag_bytes = 256K"
start 2 && start 1 && wait_for 5 1 channel up
ok $? "pair with a 64 KiB replay ring up"
seed=$RANDOM$RANDOM
echo "# seed $seed"
"$RING" produce "$work/n1.ring" "$seed" 30000 &
pids+=($!)
# Nobody consumes the replay ring for at least 1.5 s (3 peer timeouts) and
# until the primary's window has filled: how fast 256 KiB crosses depends on
# the machine's load, so wait for the state (bounded) rather than assume it.
sleep 1.5
for _ in $(seq 300); do
	[ "$(st 1 window_full)" -gt 0 ] 2>/dev/null && break
	sleep 0.1
done
[ "$(st 2 stalled)" = replay-ring-full ] && [ "$(st 2 role)" = backup ] && [ "$(st 1 role)" = primary ]
ok $? "replay consumer absent: backup stalled on its full replay ring, roles unchanged"
"$RING" verify "$work/n2.ring" "$seed" 30000 60 >"$work/verified"
ok $? "consumer resumed: all 30000 records verified ($(cat "$work/verified"))"
dead=$(cat "$work/n1.log" "$work/n2.log" | grep -c "declared dead")
ok $((dead != 0)) "no 'declared dead' during the stall ($dead)"
[ "$(st 1 window_full)" -gt 0 ]
ok $? "the primary's window filled ($(st 1 window_full) times) instead of buffering"
cleanup; trap - EXIT; pids=()

# The dialer retries often enough for the detector: a peer port that accepts
# and closes at once (no session) sees the primary's attempts at most
# peer_timeout/8 apart (backoff capped), never the 2 s of the channel's
# default backoff that outlasts a short peer_timeout (a peer back within the
# timeout, e.g. the new backup after a planned swap, was declared dead).
setup "peer_timeout = 800ms"
python3 - "$p2" 4 >"$work/accepts" <<'PY' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
s.settimeout(0.1)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    try:
        c, _ = s.accept()
        print(int(time.monotonic() * 1000), flush=True)
        c.close()
    except socket.timeout:
        pass
PY
lpid=$!
pids+=($lpid)
for _ in $(seq 100); do ss -ltn | grep -q ":$p2 " && break; sleep 0.05; done
start 1
wait "$lpid"
gaps=$(awk 'NR > 1 && $1 - first > 1000 { g = $1 - prev; if (g > max) max = g } NR == 1 { first = $1 }
	    { prev = $1 } END { print NR, max + 0 }' "$work/accepts")
echo "# redial: $gaps (attempts in 4 s, longest gap in ms after the first second)"
[ "${gaps% *}" -ge 10 ] && [ "${gaps#* }" -le 400 ]
ok $? "the primary redials at least every peer_timeout/2 (800 ms timeout): ${gaps% *} attempts, longest gap ${gaps#* } ms"
finish
