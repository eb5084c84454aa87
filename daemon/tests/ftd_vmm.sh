#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# ftd attached to VMs through the VMM socket (ftd_vmm.h), with tool_ftvmm
# standing in for the FT-aware VMM and the module (a memfd ring, the same
# code path in ftd as the kernel's ring). Proves: every malformed exchange
# closes the connection with one log line and leaves ftd serving; a second
# VMM is refused; the ring replicates byte-exact into the backup's replay
# ring; ACKED follows the acked seq (published in the consumer page first)
# and EMITTED reaches the backup; on primary loss the backup drains every
# received record into the replay ring, the module consumes them all, then
# GO_LIVE carries the won epoch and the old primary's last EMITTED; the old
# primary gets HALT (never two live); no acked record is lost; a lost
# backup VMM halts its node and the primary goes live alone; a returning
# host finds its epoch decided for the other node and refuses its VMM.
set -u
. "$(dirname "$0")/ftdlib.sh.inc"
need
. "$here/ftdvm.sh.inc"
conf=$(vm_conf 500ms 200ms)
count() { grep -c -- "$1" "$2"; }

# ---- handshake errors against a lone primary, started as in a busybox
# initramfs: no systemd, no journald (env -i), the VMM socket's directory missing;
# a long peer_timeout: it stays a primary waiting for its backup throughout
vm_setup "$conf
vmm_socket = @W@/run/ftd@N@/vmm.sock
peer_timeout = 60s"
env -i "$FTD" -c "$work/n1.conf" 2>>"$work/n1.log" &
pid1=$!; pids+=($pid1)
for _ in $(seq 100); do [ -S "$work/n1.sock" ] && break; sleep 0.05; done
ok $? "primary ftd started in the foreground without systemd (env -i), ring = vm"
grep -q "^ftd\[1\]: node 1 started as primary.*waiting for the VMM" "$work/n1.log"
ok $? "without journald it logs to stderr: $(head -1 "$work/n1.log" | cut -c1-80)"
ln -s "$work/run/ftd1/vmm.sock" "$work/n1.vmm"
[ "$(stat -c %a "$work/run/ftd1")" = 700 ] && [ "$(stat -L -c %a "$work/n1.vmm")" = 600 ]
ok $? "VMM socket mode 0600 in a directory ftd created 0700"
for c in size:vmm-bad-size type:vmm-bad-message version:vmm-bad-version reserved:vmm-bad-message \
	 name:vmm-bad-message order:vmm-bad-message fd-on-hello:vmm-bad-message no-fd:vmm-bad-message \
	 wrong-mode:vmm-bad-mode not-a-ring:vmm-bad-fd emitted-unacked:vmm-output-rule; do
	case=${c%%:*} reason=${c#*:}
	before=$(count "FT_REASON=$reason" "$work/n1.log")
	out=$("$VMM" "$work/n1.vmm" bad "$case" 2>&1); rc=$?
	sleep 0.05
	after=$(count "FT_REASON=$reason" "$work/n1.log")
	# emitted-unacked attaches first: that VM is then lost and the node halts
	[ $rc -eq 0 ] && [ $((after - before)) -eq 1 ]
	ok $? "bad $case: ftd closed the connection ($out), one $reason line: $(grep "FT_REASON=$reason" "$work/n1.log" | tail -1 | cut -c1-110)"
done
[ "$(st 1 role)" = halted ] && [[ "$(st 1 halt_reason)" == *"local VM is gone"* ]]
ok $? "a VM attached and then lost halts its node ($(st 1 halt_reason))"
out=$("$VMM" "$work/n1.vmm" probe)
[ "$out" = "HALT epoch 1" ] || [ "$out" = "EOF" ]
ok $? "a VMM after that is refused: '$out'"
cleanup; trap - EXIT; pids=()

# ---- replication, EMITTED, failover with a replay backlog, fencing
count=$((30000 + RANDOM % 10000)) rate=0 crate=$((1000 + RANDOM % 500))
echo "# seed $seed: $count records as fast as the ring allows, backup replays at $crate/s"
vm_pair "$conf"
ok $? "pair started"
wait_for 10 1 channel up && wait_for 10 2 channel up && [ "$(st 2 peer_state)" = alive ]
ok $? "channel up with heartbeats before any VM attached (vmm $(st 1 vmm), $(st 2 vmm))"
"$VMM" "$work/n2.vmm" backup "$seed" "$crate" "$work/b.state" >"$work/b.out" 2>&1 &
bpid=$!; pids+=($bpid)
"$VMM" "$work/n1.vmm" primary "$seed" "$count" "$rate" "$work/p.state" >"$work/p.out" 2>&1 &
ppid=$!; pids+=($ppid)
wait_for 5 1 vmm attached && wait_for 5 2 vmm attached
ok $? "both VMMs attached (primary $(st 1 vm_mode), backup $(st 2 vm_mode))"
# the first VM to attach ends the heartbeat-only session (the other one may
# find it down already): one line for each session ended so
r1=$(count FT_REASON=ring-attached "$work/n1.log") r2=$(count FT_REASON=ring-attached "$work/n2.log")
wait_for 5 1 channel up && [ $((r1 + r2)) -ge 1 ] && [ "$r1" -le 1 ] && [ "$r2" -le 1 ]
ok $? "the heartbeat-only session ended with a ring-attached line ($r1 on the primary, $r2 on the backup)"
out=$("$VMM" "$work/n1.vmm" probe); rc=$?
[ $rc -ne 0 ] && [ "$out" = EOF ] && grep -q "FT_REASON=vmm-second" "$work/n1.log"
ok $? "a second VMM is refused while one is attached ('$out')"
# the rings are 64 KiB: the primary runs only as far as the slow replay lets acks come
for _ in $(seq 600); do [ "$(field produced "$work/p.state")" -ge 3000 ] 2>/dev/null && break; sleep 0.05; done
ok $? "the primary VM produced 3000 of its $count records ($(field produced "$work/p.state"))"
# Freeze the backup's module while the primary ftd stops, so that what was
# acked and what was replayed are read at the same moment: the primary VMM's
# acked (its state file, rewritten after the stop) and the backup's replayed
# seq (ftd's status, from the ring's own control page).
kill -STOP "$bpid"
kill -STOP "$pid1"
t0=$(now_ms)
touch "$work/stopped"
for _ in $(seq 100); do [ "$work/p.state" -nt "$work/stopped" ] && break; sleep 0.05; done
sleep 0.1
p_acked=$(field acked "$work/p.state") b_consumed=$(st 2 ring_consumed)
kill -CONT "$bpid"
echo "# at SIGSTOP of the primary ftd: acked $p_acked, replayed by the backup $b_consumed"
[ "$p_acked" -gt "$b_consumed" ]
ok $? "records acked but not yet replayed: $((p_acked - b_consumed)) (the drain has work to do)"
wait_for 30 2 go_live done
ok $? "backup went live after draining ($(st 2 arbitration))"
p_acked=$(field acked "$work/p.state") p_emitted=$(field emitted "$work/p.state")
gl=$(grep GO_LIVE "$work/b.out")
echo "# $gl ($(( $(now_ms) - t0 )) ms after SIGSTOP); primary VMM: acked $p_acked emitted $p_emitted"
[ "$(echo "$gl" | wc -l)" -eq 1 ] && [ "$(echo "$gl" | awk '{print $3}')" = 1 ]
ok $? "one GO_LIVE, epoch 1 (the epoch won)"
[ "$(echo "$gl" | awk '{print $9}')" = 0 ]
ok $? "GO_LIVE came after the module consumed every stored record (left $(echo "$gl" | awk '{print $9}'))"
consumed=$(echo "$gl" | awk '{print $7}')
[ "$consumed" -ge "$p_acked" ]
ok $? "no acked record lost: replayed $consumed >= acked $p_acked"
glseq=$(echo "$gl" | awk '{print $5}')
[ "$glseq" -le "$p_emitted" ] && [ "$glseq" -ge $((p_emitted > 0 ? 1 : 0)) ] && [ "$glseq" -le "$consumed" ]
ok $? "GO_LIVE seq $glseq is the old primary's EMITTED (<= $p_emitted, <= replayed $consumed)"
kill -CONT "$pid1"
wait_for 10 1 role halted
ok $? "old primary halted ($(st 1 halt_reason))"
for _ in $(seq 50); do grep -q HALT "$work/p.out" && break; sleep 0.1; done
grep -q "^HALT epoch 1$" "$work/p.out" && ! grep -q GO_LIVE "$work/p.out"
ok $? "its VMM got HALT epoch 1 and never GO_LIVE: never two live"
! grep -q FAIL "$work/p.out" "$work/b.out"
ok $? "tool invariants held (replay byte-exact, ACKED monotonic and published first)"

# ---- the returning host: node 1 restarts, the disk says epoch 1 went to node 2;
# without re-protection (reprotect = no; ftd_sync.sh has it) it stays halted
kill "$pid1"; wait "$pid1" 2>/dev/null
echo "reprotect = no" >>"$work/n1.conf"
start 1
wait_for 5 1 role halted
ok $? "restarted node 1 comes up halted: $(st 1 halt_reason)"
out=$("$VMM" "$work/n1.vmm" probe)
[ "$out" = "HALT epoch 1" ]
ok $? "its new VMM is told HALT, not a role ('$out')"
grep -q "FT_REASON=returning-fenced" "$work/n1.log"
ok $? "it logged why"
cleanup; trap - EXIT; pids=()

# ---- the backup's VMM dies: the backup halts, the primary goes live alone
vm_pair "$conf"
"$VMM" "$work/n2.vmm" backup "$seed" 0 "$work/b.state" >"$work/b.out" 2>&1 &
bpid=$!; pids+=($bpid)
"$VMM" "$work/n1.vmm" primary "$seed" 5000 0 "$work/p.state" >"$work/p.out" 2>&1 &
pids+=($!)
wait_for 10 1 ring_consumed 5000
ok $? "second pair replicated 5000 records"
kill -KILL "$bpid"; wait "$bpid" 2>/dev/null
wait_for 5 2 role halted
ok $? "backup whose VMM died halts: $(st 2 halt_reason)"
wait_for 10 1 role live-alone
saw_golive p
gl=$(grep GO_LIVE "$work/p.out")
[ "$(echo "$gl" | awk '{print $5}')" = 5000 ] && [ "$(st 1 vm_mode)" = live ]
ok $? "primary live alone, module live, GO_LIVE with its own EMITTED: $gl"
finish
