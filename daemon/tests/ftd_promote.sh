#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Who may compete for the shared disk, and a promotion that cannot finish,
# with real ftd and tool_ftvmm. Proves: a primary whose backup never
# answered is declared alone after peer_timeout from its start and goes
# live alone through the ballot, but not before its VM attached (no VM, no
# ballot: one no-vm line); a backup that never saw its primary never
# competes (one peer-never-seen line, no ballot, its VMM never GO_LIVE); a
# backup whose VM never attached does not compete when the primary dies,
# and does once its VM attaches (nothing was ever acked, so its VM's start
# state is the primary's last released state); a go-live whose module
# replays nothing for go_live_timeout halts instead of going live with
# records left (one go-live-stalled line, HALT to its VMM, never GO_LIVE),
# and the old primary loses the ballot and halts too: never two live, no
# acked record run past.
set -u
. "$(dirname "$0")/ftdlib.sh.inc"
need
. "$here/ftdvm.sh.inc"
echo "# seed $seed"
conf=$(vm_conf 500ms 200ms "go_live_timeout = 1s")
lines() { grep -c "FT_REASON=$1" "$work/n$2.log"; }
wait_line() {	# wait_line SECONDS REASON NODE
	for _ in $(seq $(($1 * 20))); do [ "$(lines "$2" "$3")" -ge 1 ] && return 0; sleep 0.05; done
	return 1
}
old_primary_halts() {	# old_primary_halts WHAT: node 1 (stopped) resumes, loses the ballot; end of case
	kill -CONT "$pid1"
	wait_for 10 1 role halted && wait_out p "^HALT epoch 1" && ! grep -q GO_LIVE "$work/p.out"
	ok $? "the old primary resumed, lost the ballot and halted: $1"
	! grep -q FAIL "$work/p.out" "$work/b.out"
	ok $? "tool invariants held"
	cleanup; trap - EXIT; pids=()
}
wait_out() {	# wait_out NAME PATTERN
	for _ in $(seq 100); do grep -q "$2" "$work/$1.out" && return 0; sleep 0.05; done
	return 1
}

# ---- a primary alone from the start
vm_setup "$conf"
start 1
ok $? "primary started alone"
wait_line 5 no-vm 1 && sleep 0.3
[ "$(st 1 role)" = primary ] && [ "$(st 1 arbitration_attempts)" = 0 ] && [ "$(st 1 peer_state)" = dead ] &&
	[ "$(lines peer-never-seen 1)" = 1 ]
ok $? "no backup within peer_timeout, no VM: declared alone, not competing: $(grep -m1 FT_REASON=no-vm "$work/n1.log" | cut -c1-110)"
tool 1 p primary "$seed" 2000 0 "$work/p.state"
wait_for 10 1 role live-alone && wait_out p "^GO_LIVE epoch 1 "
ok $? "its VM attached: ballot won, live alone: $(grep GO_LIVE "$work/p.out")"
grep -q "node 1 decided for epoch 1: going live" "$work/n1.log" && [ "$(st 1 vm_mode)" = live ]
ok $? "it won the ballot, module in live mode"
cleanup; trap - EXIT; pids=()

# ---- a backup alone from the start; then its primary comes
vm_setup "$conf"
start 2
tool 2 b backup "$seed" 0 "$work/b.state"
wait_for 10 2 vmm attached && wait_line 5 peer-never-seen 2 && sleep 1
[ "$(st 2 role)" = backup ] && [ "$(st 2 arbitration_attempts)" = 0 ] &&
	[ "$(st 2 peer_state)" = never-seen ] && [ "$(lines peer-never-seen 2)" = 1 ] && ! grep -q GO_LIVE "$work/b.out"
ok $? "a backup that never saw its primary does not compete: $(grep -m1 FT_REASON=peer-never-seen "$work/n2.log" | cut -c1-120)"
start 1
tool 1 p primary "$seed" 2000 0 "$work/p.state"
wait_for 10 1 ring_consumed 2000
ok $? "its primary came: the pair replicated 2000 records"
! grep -q FAIL "$work/p.out" "$work/b.out"
ok $? "tool invariants held"
cleanup; trap - EXIT; pids=()

# ---- the backup's VM never attached when the primary dies
vm_pair "$conf"
ok $? "pair started"
tool 1 p primary "$seed" 2000 0 "$work/p.state"
wait_for 10 1 vmm attached && wait_for 10 2 channel up
ok $? "primary VM attached, channel up, no VM on the backup"
kill -STOP "$pid1"
wait_line 5 no-vm 2 && sleep 1
[ "$(st 2 role)" = backup ] && [ "$(st 2 arbitration_attempts)" = 0 ] && [ "$(st 2 peer_state)" = dead ]
ok $? "primary dead, no VM: the backup does not compete: $(grep -m1 FT_REASON=no-vm "$work/n2.log" | cut -c1-110)"
tool 2 b backup "$seed" 0 "$work/b.state"
wait_for 10 2 role live-alone && wait_out b "^GO_LIVE epoch 1 "
ok $? "its VM attached: it competed and won: $(grep GO_LIVE "$work/b.out")"
old_primary_halts "its VMM got HALT, never GO_LIVE: never two live"

# ---- go-live with a module that stops replaying (the whole log fits in the
# rings: all of it stored and acked, no stall before the primary dies)
vm_pair "$conf"
ok $? "pair started"
tool 2 b backup "$seed" 5 "$work/b.state"
bpid=$tool_pid
tool 1 p primary "$seed" 300 0 "$work/p.state"
wait_for 10 1 vmm attached && wait_for 10 2 vmm attached && wait_for 10 2 log_seq 300 &&
	for _ in $(seq 100); do [ "$(field consumed "$work/b.state")" -ge 5 ] 2>/dev/null && break; sleep 0.05; done
[ "$(field consumed "$work/b.state")" -ge 5 ] && [ -z "$(st 2 stalled)" ]
ok $? "300 records stored on the backup, its module replays slowly ($(field consumed "$work/b.state") so far)"
kill -STOP "$bpid"
kill -STOP "$pid1"
t0=$(now_ms)
wait_for 20 2 role halted
ok $? "primary stopped, the backup's module stopped: halted $(( $(now_ms) - t0 )) ms later: $(st 2 halt_reason)"
grep -q "node 2 decided for epoch 1: going live" "$work/n2.log"
ok $? "it had won the ballot and was going live"
[ "$(lines go-live-stalled 2)" = 1 ] && [ "$(st 2 vm_mode)" = replay ] && [ "$(st 2 ring_lag)" -gt 0 ]
ok $? "one go-live-stalled line, the module never switched to live, $(st 2 ring_lag) records left: $(grep -m1 FT_REASON=go-live-stalled "$work/n2.log" | cut -c1-150)"
kill -CONT "$bpid"
wait_out b "^HALT epoch 1" && ! grep -q GO_LIVE "$work/b.out"
ok $? "its VMM got HALT epoch 1, never GO_LIVE"
old_primary_halts "no VM runs, never two live"
finish
