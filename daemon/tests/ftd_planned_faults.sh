#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Planned failover under faults, two real ftd with tool_ftvmm (see
# ftd_planned.sh for the good path). Each case: the invariants hold (never
# two live, no acked record lost, the stream goes on where the pair
# survives), ftctl failover exits with its documented code, and the node
# that gave up logs one FT_REASON=failover-abandoned line saying why.
#   a VMM that never answers PAUSE, a wrong PAUSED seq, a backup VMM that
#   never pauses, a backup whose replay diverges while catching up, the
#   backup ftd killed mid-way, the primary ftd killed while pausing and
#   after handing over; a VMM slow to re-attach after the swap (its node
#   must not look dead meanwhile); and the refusals: no peer, one already
#   running.
set -u
. "$(dirname "$0")/ftdlib.sh.inc"
need
. "$here/ftdvm.sh.inc"
echo "# seed $seed"
conf=$(vm_conf 1500ms 300ms)
abandoned() { grep -c "FT_REASON=failover-abandoned" "$work/n$1.log"; }
wait_fo() {	# wait_fo NODE STEP: poll the raw status (no python: fast under load)
	for _ in $(seq 500); do
		FTD_SOCKET=$work/n$1.sock "$FTCTL" --json status 2>/dev/null | grep -q "\"failover\": \"$2\"" &&
			return 0
		sleep 0.01
	done
	return 1
}
vm() {	# vm NODE PAUSE-MODE: the node's VM, answering PAUSE as told
	FTVMM_PAUSE=$2 tool "$1" "v$1" vm "$seed" 100000000 2000 0 "$work/v$1.state"
}
pair() {	# pair PRIMARY-PAUSE-MODE BACKUP-PAUSE-MODE [TIMEOUT]: a fresh pair, streaming
	vm_pair "$conf
failover_timeout = ${3:-2s}" && vm 2 "$2" && vm 1 "$1" &&
		wait_for 10 1 vmm attached && wait_for 10 2 vmm attached && wait_for 10 1 channel up &&
		for _ in $(seq 200); do [ "$(st 1 ring_consumed)" -ge 100 ] 2>/dev/null && break; sleep 0.05; done
	[ "$(st 1 ring_consumed)" -ge 100 ]
}
flows() {	# flows NODE: its acked seq still moves
	local a=$(st "$1" ring_consumed)
	for _ in $(seq 100); do [ "$(st "$1" ring_consumed)" -gt "$a" ] && return 0; sleep 0.05; done
	return 1
}
unchanged() {	# the pair as before: node 1 primary, node 2 backup, epoch 1, the stream flowing
	[ "$(st 1 role)" = primary ] && [ "$(st 2 role)" = backup ] && [ "$(st 1 epoch)" = 1 ] &&
		[ "$(st 2 epoch)" = 1 ] && flows 1 && ! grep -q "^SWAP" "$work/v1.out" "$work/v2.out"
}
done_case() { ! grep -q FAIL "$work/v1.out" "$work/v2.out"; ok $? "$1: tool invariants held"; cleanup; trap - EXIT; pids=(); }

# ---- no peer yet, then a VMM that never answers PAUSE (and a second request meanwhile);
# a long peer_timeout: alone that long, the primary would go live alone
vm_setup "$conf
failover_timeout = 2s
peer_timeout = 30s"
start 1 && vm 1 never && wait_for 10 1 vmm attached
out=$(ftc 1 failover 2>&1); rc=$?
[ $rc -eq 7 ] && [[ $out == *"no peer"* ]]
ok $? "no peer: exit 7, '$out'"
start 2 && vm 2 ok && wait_for 10 2 vmm attached && wait_for 10 1 channel up
ok $? "backup started"
ftc 1 failover >"$work/fo.out" 2>&1 &
fpid=$!
for _ in $(seq 100); do
	h=$(ftc 1 status --color=never)
	[[ $h == *"planned failover in progress"* ]] && break
	sleep 0.01
done
out=$(ftc 1 failover 2>&1); rc=$?
[ $rc -eq 9 ] && [[ $out == *"already running"* ]]
ok $? "a second request while one runs: exit 9, '$out'"
[[ $h == *"ftd node 1: handover, epoch 1"*"!! planned failover in progress: pausing, paused at seq 0"* ]]
ok $? "status shows it: $(echo "$h" | grep -m1 'planned failover')"
wait $fpid; rc=$?
[ $rc -eq 10 ] && grep -q "did not answer PAUSE within 2000 ms" "$work/fo.out"
ok $? "VMM that never pauses: exit 10 after the timeout: $(cat "$work/fo.out")"
[ "$(abandoned 1)" = 1 ] && grep -q "RESUME role 1 epoch 1 (same)" "$work/v1.out"
ok $? "one abandoned line, the VMM got RESUME in its old role: $(grep -m1 failover-abandoned "$work/n1.log" | cut -c1-150)"
unchanged
ok $? "the pair goes on unchanged: roles, epoch 1, the stream flows"
done_case "never-pause"

# ---- a wrong PAUSED seq
pair wrong ok
ok $? "pair streaming (the primary's VMM answers PAUSED 7 past its log)"
out=$(ftc 1 failover 2>&1); rc=$?
[ $rc -eq 10 ] && [[ $out == *"said PAUSED at seq"*"but its log ends at"* ]]
ok $? "wrong PAUSED seq: exit 10, '$out'"
[ "$(abandoned 1)" = 1 ] && unchanged
ok $? "one abandoned line; the pair goes on unchanged"
done_case "wrong-seq"

# ---- the backup's VMM never pauses: the backup gives up, the primary resumes
pair ok never
ok $? "pair streaming (the backup's VMM never pauses)"
out=$(ftc 1 failover 2>&1); rc=$?
[ $rc -eq 10 ] && [[ $out == *"backup refused or abandoned"* ]]
ok $? "backup VMM that never pauses: exit 10, '$out'"
[ "$(abandoned 2)" = 1 ] && [ "$(abandoned 1)" = 1 ] &&
	grep -q "did not answer PAUSE" "$work/n2.log"
ok $? "one abandoned line on each node: $(grep -m1 failover-abandoned "$work/n2.log" | cut -c1-120)"
unchanged && [ "$(st 1 acked_seq)" -gt 0 ]
ok $? "the pair goes on unchanged, the backup acks again"
done_case "backup-never-pause"

# ---- the backup's replay diverges while catching up: it abandons and halts
pair ok diverge
ok $? "pair streaming (the backup's replay will fail)"
out=$(ftc 1 failover 2>&1); rc=$?
[ $rc -eq 10 ]
ok $? "diverged backup: exit 10, '$out'"
wait_for 10 2 role halted && grep -q "replay stopped with error 1 while catching up" "$work/n2.log"
ok $? "the backup halts: $(st 2 halt_reason)"
wait_for 10 1 role live-alone
saw_golive v1
grep -q "^GO_LIVE epoch 1" "$work/v1.out" && ! grep -q GO_LIVE "$work/v2.out"
ok $? "the primary resumed, then went live alone: never two live"
done_case "diverge"

# ---- the backup ftd dies mid-way (its VMM is pausing): the primary resumes and the ballot decides
pair ok never 20s
ok $? "pair streaming"
ftc 1 failover >"$work/fo.out" 2>&1 &
fpid=$!
wait_fo 2 pausing
ok $? "the backup took the handover and is pausing"
kill -KILL "$pid2"
wait $fpid; rc=$?
[ $rc -eq 10 ] && grep -q "peer is gone" "$work/fo.out"
ok $? "backup killed mid-way: exit 10: $(cat "$work/fo.out")"
wait_for 10 1 role live-alone
saw_golive v1
grep -q "^RESUME role 1 epoch 1 (same)" "$work/v1.out" && grep -q "^GO_LIVE epoch 1" "$work/v1.out"
ok $? "the primary's VM resumed, then went live alone in epoch 1"
done_case "backup-killed"

# ---- the primary ftd dies while its VMM is pausing: the backup takes over by the ballot
pair never ok 20s
ok $? "pair streaming"
ftc 1 failover >"$work/fo.out" 2>&1 &
fpid=$!
wait_fo 1 pausing
acked=$(st 1 acked_seq)
kill -KILL "$pid1"
wait $fpid; rc=$?
[ $rc -eq 2 ]
ok $? "primary killed while pausing: ftctl exit 2: $(cat "$work/fo.out")"
wait_for 15 2 role live-alone && wait_for 10 2 go_live done
saw_golive v2
gl=$(grep GO_LIVE "$work/v2.out")
[[ $gl == "GO_LIVE epoch 1 "* ]] && [ "$(echo "$gl" | awk '{print $7}')" -ge "$acked" ]
ok $? "the backup went live in epoch 1 with every acked record ($gl; $acked acked)"
done_case "primary-killed-pausing"

# ---- the primary ftd dies after handing over (the backup's VMM is slow to pause)
pair ok never 20s
ok $? "pair streaming"
ftc 1 failover >"$work/fo.out" 2>&1 &
fpid=$!
wait_fo 1 handed-over && wait_fo 2 pausing
ok $? "the primary handed over, the backup is pausing"
kill -KILL "$pid1"
wait $fpid
wait_for 15 2 role live-alone && wait_for 10 2 go_live done
ok $? "the backup abandoned, resumed and won the ballot: live alone"
[ "$(abandoned 2)" = 1 ] && grep -q "^RESUME role 2 epoch 1 (same)" "$work/v2.out" &&
	grep -q "^GO_LIVE epoch 1" "$work/v2.out"
ok $? "one abandoned line; its VM resumed, then GO_LIVE epoch 1"
done_case "primary-killed-handed"

# ---- a VMM slow to re-attach after the swap: the channel of the new epoch
# does not wait for it, so neither node looks dead to the other meanwhile
vm_pair "$conf
failover_timeout = 2s" && FTVMM_REATTACH_MS=2500 vm 1 ok && vm 2 ok &&
	wait_for 10 1 vmm attached && wait_for 10 2 vmm attached && wait_for 10 1 channel up
ok $? "pair up (node 1's VMM takes 2.5 s to re-attach after a swap; peer_timeout 1.5 s)"
out=$(ftc 1 failover 2>&1); rc=$?
[ $rc -eq 0 ]
ok $? "swap: exit 0, '$out'"
wait_for 15 1 vmm attached && wait_for 10 1 channel up && wait_for 10 2 channel up && flows 2
ok $? "node 1's VMM re-attached late, the channel is up, the stream flows node 2 -> node 1"
[ "$(st 2 role)" = primary ] && [ "$(st 1 role)" = backup ] && [ "$(st 1 epoch)" = 2 ] &&
	! grep -q "declared dead" "$work/n1.log" "$work/n2.log"
ok $? "node 2 primary, node 1 backup, epoch 2; nobody declared dead"
done_case "slow-reattach"
finish
