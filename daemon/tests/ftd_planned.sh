#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Planned failover (ftctl failover) between two real ftd, each with
# tool_ftvmm standing in for the FT-aware VMM and the module on memfd rings
# (ftd_vmm.h: PAUSE, PAUSED, RESUME and the re-attach with a new fd).
# Proves: repeated swaps back and forth with a stream running keep every
# record exactly once (both VMs stop at the same total, the backup checks
# every record byte for byte, the new log restarts at seq 1 of the next
# epoch), epochs increase by one per swap on both nodes and on the disk,
# ftctl status tells the truth on both sides after each swap, and the
# refusals have their exit codes. Randomised: the seed, the number of swaps
# and the stream rate (printed).
set -u
. "$(dirname "$0")/ftdlib.sh.inc"
need
. "$here/ftdvm.sh.inc"
swaps=$((4 + RANDOM % 3)) rate=$((1000 + RANDOM % 2000))
echo "# seed $seed: $swaps planned failovers, stream of $rate records/s"

vm_pair "$(vm_conf 1500ms 300ms "failover_timeout = 3s")"
ok $? "pair started"
tool 1 v1 vm "$seed" 100000000 "$rate" 0 "$work/v1.state"
tool 2 v2 vm "$seed" 100000000 "$rate" 0 "$work/v2.state"
wait_for 10 1 vmm attached && wait_for 10 2 vmm attached && wait_for 10 1 channel up
ok $? "both VMs attached, channel up"

out=$(ftc 2 failover 2>&1); rc=$?
[ $rc -eq 8 ] && [[ $out == *"this node is the backup: ask the primary (node 1"* ]]
ok $? "failover asked on the backup: exit 8, '$out'"

prim=1 back=2 epoch=1
for i in $(seq "$swaps"); do
	# let the stream run a little in this epoch
	for _ in $(seq 200); do [ "$(st $prim ring_consumed)" -ge 200 ] 2>/dev/null && break; sleep 0.05; done
	before=$(st $prim ring_consumed)
	t0=$(now_ms)
	out=$(ftc $prim failover 2>&1); rc=$?
	echo "# swap $i: $out ($(( $(now_ms) - t0 )) ms wall, node $prim had $before acked)"
	[ $rc -eq 0 ] && [[ $out == *"now backup in epoch $((epoch + 1))"* ]]
	ok $? "swap $i asked on node $prim: exit 0"
	epoch=$((epoch + 1))
	tmp=$prim prim=$back back=$tmp
	wait_for 10 $prim role primary && wait_for 10 $back role backup &&
		wait_for 10 $prim vmm attached && wait_for 10 $back vmm attached &&
		wait_for 10 $prim channel up && wait_for 10 $back channel up
	ok $? "swap $i: node $prim primary, node $back backup, both VMs re-attached, channel up"
	[ "$(st 1 epoch)" = $epoch ] && [ "$(st 2 epoch)" = $epoch ]
	ok $? "swap $i: both nodes in epoch $epoch"
	s1=$(grep "^SWAP" "$work/v1.out" | sed -n "${i}p") s2=$(grep "^SWAP" "$work/v2.out" | sed -n "${i}p")
	t1=${s1##* total } t2=${s2##* total }
	[ -n "$s1" ] && [ "$t1" = "$t2" ] && [[ $s1 == *"epoch $epoch "* ]] && [[ $s2 == *"epoch $epoch "* ]]
	ok $? "swap $i: both VMs stopped at the same state: '$s1' / '$s2'"
	for _ in $(seq 200); do [ "$(st $prim ring_consumed)" -ge 50 ] 2>/dev/null && break; sleep 0.05; done
	[ "$(field epoch "$work/v$prim.state")" = $epoch ] && [ "$(st $prim ring_consumed)" -ge 50 ] &&
		[ "$(st $prim log_seq)" -lt $((before + 100000)) ]
	ok $? "swap $i: the new log starts at seq 1 in epoch $epoch and flows node $prim -> node $back ($(st $prim ring_consumed) acked)"
	h=$(ftc $((3 - prim)) status --color=never)
	[[ $h == *"failover     last: swapped"*"epoch $epoch"* ]] && [[ $h == *": backup, epoch $epoch"* ]]
	ok $? "swap $i: ftctl status on node $back: $(echo "$h" | grep -m1 'failover ')"
	[ "$(st $prim failover_last)" = swapped ] && [ "$(st $prim failover)" = idle ] &&
		[ "$(st $prim failover_last_seq)" = "$(st $back failover_last_seq)" ]
	ok $? "swap $i: ftctl --json on node $prim: swapped at seq $(st $prim failover_last_seq), no failover running"
done
"$FTCTL" disk "$work/disk" >"$work/disk.txt" 2>&1
grep -q "epoch $epoch" "$work/disk.txt"
ok $? "the shared disk is at epoch $epoch: $(grep -m1 -i 'epoch' "$work/disk.txt")"
! grep -q FAIL "$work/v1.out" "$work/v2.out"
ok $? "tool invariants held across all swaps (every record byte-exact and in order, ACKED published first, no output held at a swap)"
[ "$(grep -c 'FT_REASON=failover-swapped' "$work/n1.log")" = $swaps ] &&
	[ "$(grep -c 'FT_REASON=failover-swapped' "$work/n2.log")" = $swaps ]
ok $? "one failover-swapped line per swap on each node"
[ "$(st 1 rejects)" = 0 ] && [ "$(st 2 rejects)" = 0 ]
ok $? "no frame rejected on either node"
cleanup; trap - EXIT; pids=()
finish
