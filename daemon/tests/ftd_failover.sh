#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Two real ftd on loopback sharing an arbitration file. Proves: the pair
# replicates a ring byte-exact; a SIGSTOPped primary is declared dead by the
# backup within peer_timeout + 250 ms; the backup wins the shared-disk
# ballot and goes live; the resumed old primary learns it lost and halts
# (never two live nodes); the decision records on disk agree. Then the
# mirror case: a SIGSTOPped backup, the primary goes live alone, the old
# backup halts.
set -u
. "$(dirname "$0")/ftdlib.sh.inc"
need
timeout_ms=500

run_case() {	# run_case VICTIM SURVIVOR
	local victim=$1 surv=$2 seed=$RANDOM$RANDOM
	setup "shared_disk = @W@/disk
peer_timeout = ${timeout_ms}ms
backup_delay = 200ms"
	"$FTCTL" format-disk "$work/disk" --first-primary 1 >/dev/null
	start 2 && start 1
	ok $? "case $victim: both ftd started"
	wait_for 5 1 channel up
	ok $? "case $victim: authenticated channel up"
	echo "# seed $seed"
	"$RING" produce "$work/n1.ring" "$seed" 20000 &
	pids+=($!)	# killed at cleanup: a producer left waiting for ring space would hang its wait
	got=$("$RING" verify "$work/n2.ring" "$seed" 20000 30)
	ok $? "case $victim: 20000 records replicated byte-exact (got $got)"
	wait_for 5 1 acked_seq 20000
	ok $? "case $victim: primary saw all 20000 acked"
	local vp
	eval "vp=\$pid$victim"
	t0=$(now_ms)
	kill -STOP "$vp"
	wait_for 5 "$surv" peer_state dead
	ok $? "case $victim: node $surv declares node $victim dead"
	# when ftd itself logged it, not when this polling loop noticed
	tdead=$(FTD_SOCKET=$work/n$surv.sock "$FTCTL" events --json |
		python3 -c 'import json,sys
for l in sys.stdin:
    e = json.loads(l)
    if "declared dead" in e["message"]: print(e["time_ms"]); break')
	dt=$(( tdead - t0 ))
	echo "# detection took $dt ms after SIGSTOP (timeout $timeout_ms ms)"
	[ "$dt" -le $((timeout_ms + 250)) ] && [ "$dt" -ge $((timeout_ms - 150)) ]
	ok $? "case $victim: detected within [timeout - 150, timeout + 250] ms ($dt ms)"
	wait_for 10 "$surv" role live-alone
	ok $? "case $victim: node $surv won the ballot and is live alone ($(st "$surv" arbitration))"
	kill -CONT "$vp"
	wait_for 10 "$victim" role halted
	ok $? "case $victim: resumed node $victim halted ($(st "$victim" arbitration))"
	[ "$(st "$surv" role)" = live-alone ]
	ok $? "case $victim: node $surv still the only live node"
	"$FTCTL" disk "$work/disk" >"$work/dump" 2>&1
	grep -i decision "$work/dump" | sed 's/^/# /'
	[ "$(grep -ci "winner=$surv\|winner $surv" "$work/dump")" -ge 1 ]
	ok $? "case $victim: the disk's decision names node $surv"
	cleanup
	trap - EXIT
	pids=()
}

run_case 1 2
run_case 2 1

# Without a shared disk nobody may go live (ARBITRATION.md invariant 5).
setup "peer_timeout = ${timeout_ms}ms
backup_delay = 100ms"
start 2 && start 1 && wait_for 5 1 channel up
ok $? "no disk: pair up"
kill -STOP "$pid1"
wait_for 5 2 role arbitrating
ok $? "no disk: backup suspects the stopped primary and arbitrates"
sleep 1.5
[ "$(st 2 role)" = arbitrating ] && [[ "$(st 2 arbitration)" == *"no shared_disk"* ]]
ok $? "no disk: 1.5 s later still arbitrating, never live ($(st 2 arbitration))"
kill -CONT "$pid1"
finish
