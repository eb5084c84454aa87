#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# ftvm as primary and backup of a real ftd pair in one test VM: two ftd on
# loopback, a RAM block device as the shared arbitration disk, the
# primary's ftvm in RECORD mode and the backup's in REPLAY mode on real KVM.
# The guest takes every kind of input: port reads, RDTSC, timer interrupts
# and DMA blocks (KVM_FT_QUEUE_ASYNC on the primary, replayed at their
# landmarks on the backup).
# In every case the primary has emitted 50 outputs first (it emits only
# what the backup acknowledged: the whole chain works) and the backup has
# emitted nothing (it only keeps what it replays). Then, at a random moment:
#   primary-killed  SIGKILL to the primary's ftvm and ftd: the backup's ftd
#                   wins the arbitration, its ftvm gets GO_LIVE and goes on;
#   backup-killed   SIGKILL to the backup's ftvm and ftd: the primary goes
#                   on alone (GO_LIVE on the primary), exits 0 on SIGTERM
#                   with its output-delay statistics;
#   primary-fenced  SIGSTOP to the primary's ftd: the backup goes live; on
#                   SIGCONT the old primary's ftd finds the epoch decided
#                   for the other node and its ftvm gets HALT (exit 3);
#   planned         ftctl failover on the primary: the roles swap (PAUSE,
#                   PAUSED, RESUME), the new primary's first output is
#                   exactly one past the old one's last; then SIGKILL to
#                   the new primary: the old one goes live (skipped while
#                   ftd refuses a planned failover).
# Each case checks the pair's output stream: no gap (the new primary's
# first line is at most one past the old primary's last, then gapless), no
# contradiction (an n both emitted has the same hash: the backup replayed
# the same guest state), and the guest's state continues (50 more
# outputs). Prints TAP; KVM_FT_SEED fixes the device seeds and the moments.

. "$(dirname "$0")/tap.sh"
need ftd ftctl ftvm
# An ftd from before the VMM socket (config key vmm_socket) cannot serve ftvm.
grep -q vmm_socket "$(command -v ftd)" || skip_all "this ftd serves no VMM (no vmm_socket)"

tap_seed ftvm_failover
rm -rf /tmp/failover
CLEANUP="rmmod brd 2> /dev/null"
LOGS="ftd1.log ftd2.log ftvm1.log ftvm2.log"
last_n() { tail -n1 "$1" 2> /dev/null | awk '{ print $2 + 0 } END { if (!NR) print 0 }'; }

# The test VM has one vCPU and both guests' vCPU threads never idle: the
# ftvms run at nice 19 so the ftds get the CPU for heartbeats, and the peer
# timeout is 3 s (under TCG on a busy machine a 500 ms timeout fires
# without a failure).
ip link set lo up
insmod /lib/modules/brd.ko rd_nr=1 rd_size=4096 && [ -b /dev/ram0 ]
point "RAM block device for the arbitration disk (ftd uses O_DIRECT: no tmpfs)" [ $? = 0 ] ||
	give_up
has() { [ "$(lines "$1")" -ge "$2" ]; }
reached() { [ "$(last_n "$1")" -ge "$2" ]; }
uptime_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }

# start_pair CASE: fresh disk, key and configs; both ftd, then both ftvm,
# and the primary's first 50 outputs.
k=0
start_pair() {
	c=$1
	t_case=$(( $(uptime_ms) / 1000 ))
	k=$((k + 1))	# own ports per case: no TIME_WAIT surprises
	W=/tmp/failover/$c
	mkdir -p $W
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > $W/key
	chmod 600 $W/key
	for i in 1 2; do
		role=primary me=$((7100 + 10 * k + 1)) other=$((7100 + 10 * k + 2))
		[ $i = 2 ] && role=backup me=$((7100 + 10 * k + 2)) other=$((7100 + 10 * k + 1))
		cat > $W/n$i.conf <<CONF
node_id = $i
role = $role
listen = 127.0.0.1:$me
peer = 127.0.0.1:$other
key_file = $W/key
ring = vm
vmm_socket = $W/n$i.vmm
status_socket = $W/n$i.sock
shared_disk = /dev/ram0
peer_timeout = 3s
backup_delay = 1s
CONF
	done
	renice -n 0 -p $$ > /dev/null
	ftctl format-disk /dev/ram0 --first-primary 1 > /dev/null
	point "$c: shared disk formatted" [ $? = 0 ] || give_up
	ftd -c $W/n2.conf 2> $W/ftd2.log &
	ftd2=$!
	ftd -c $W/n1.conf 2> $W/ftd1.log &
	ftd1=$!
	pids="$ftd1 $ftd2"
	wait_until 10 [ -S $W/n1.vmm -a -S $W/n2.vmm ]
	point "$c: both ftd listen for their VMM" [ $? = 0 ] || give_up
	renice -n 19 -p $$ > /dev/null	# busybox has renice, not nice
	ftvm --name demo --ftd-socket $W/n2.vmm --out $W/out2 --seed $((seed + 2)) \
		2> $W/ftvm2.log &
	vm2=$!
	ftvm --name demo --ftd-socket $W/n1.vmm --out $W/out1 --seed $((seed + 1)) \
		2> $W/ftvm1.log &
	vm1=$!
	pids="$pids $vm1 $vm2"
	wait_until 90 has $W/out1 50
	point "$c: the primary emitted 50 outputs ($(lines $W/out1))" [ $? = 0 ] || give_up
	usleep $(( (seed * 7 % 1000) * 1000 ))
}

# stop_pair: show the logs, kill what is left.
stop_pair() {
	echo "# $c: took $(( $(uptime_ms) / 1000 - t_case )) s"
	for f in ftvm1.log ftvm2.log; do show $W/$f; done
	for i in 1 2; do
		[ -e $W/ftd$i.log ] || continue
		grep -E "declared dead|decided|LIVE|HALT|go-live|halt" $W/ftd$i.log > $W/ftd$i.events
		show $W/ftd$i.events
	done
	for p in $pids; do kill -9 "$p" 2> /dev/null; done
	wait 2> /dev/null
	pids=
}

# check_stream OLD NEW [FIRST]: OLD gapless from FIRST (default 1); NEW
# gapless from at most one past OLD's last; equal hashes where both emitted
# the same n.
check_stream() {
	awk -v first0="${3:-1}" '
		FNR == 1 { file++ }
		file == 1 {
			if ($1 != "out" || $2 != first0 + FNR - 1) { print "# " FILENAME " line " FNR ": " $0; bad = 1 }
			h[$2] = $3
			a = $2
			next
		}
		FNR == 1 {
			first = $2
			if (first > a + 1 || first < 1) {
				print "# gap: the old primary ends at " a ", the new starts at " first; bad = 1
			}
			printf "# the new primary starts at %d: %d duplicates\n", first, a - first + 1
		}
		{
			if ($1 != "out" || $2 != first + FNR - 1) { print "# " FILENAME " line " FNR ": " $0; bad = 1 }
			if (($2 in h) && h[$2] != $3) { print "# output " $2 " differs: " h[$2] " vs " $3; bad = 1 }
		}
		END { exit bad || file != 2 }' "$1" "$2"
}

case_primary_killed() {
	start_pair primary-killed
	kill -9 $vm1 $ftd1
	t_kill=$(uptime_ms)
	before=$(lines $W/out2)
	a=$(last_n $W/out1)
	point "$c: the backup emitted nothing while the primary lived ($before lines)" [ "$before" = 0 ]
	wait_until 90 has $W/out2 1
	point "$c: the backup emits after the kill" [ $? = 0 ] || give_up
	echo "# $c: primary killed after output $a; the backup's first output $(( $(uptime_ms) - t_kill )) ms later (peer timeout 3 s)"
	wait_until 90 reached $W/out2 $((a + 50))
	point "$c: the backup went live and reached output $((a + 50)) ($(last_n $W/out2))" [ $? = 0 ]
	grep -q "GO_LIVE" $W/ftvm2.log
	point "$c: the backup's ftvm got GO_LIVE" [ $? = 0 ]
	kill $vm2
	wait $vm2
	rc=$?
	point "$c: the new primary's ftvm exits 0 on SIGTERM ($rc)" [ $rc = 0 ]
	check_stream $W/out1 $W/out2
	point "$c: no gap, no contradiction in the pair's output stream" [ $? = 0 ]
	g=$(sed -n 's/^ftvm: stats: guest: \([0-9]*\) timer irqs, \([0-9]*\) dma irqs, \([0-9]*\) dma blocks.*/\1 \2 \3/p' $W/ftvm2.log)
	echo "# $c: the new primary's guest: timer irqs, dma irqs, dma blocks checked: $g"
	set -- $g
	point "$c: its guest took timer and DMA interrupts and checked DMA blocks" \
		[ "${1:-0}" -gt 0 -a "${2:-0}" -gt 0 -a "${3:-0}" -gt 0 ]
	stop_pair
}

case_backup_killed() {
	start_pair backup-killed
	kill -9 $vm2 $ftd2
	a=$(last_n $W/out1)
	wait_until 90 reached $W/out1 $((a + 50))
	point "$c: the primary goes on alone to output $((a + 50)) ($(last_n $W/out1))" [ $? = 0 ]
	grep -q "GO_LIVE" $W/ftvm1.log
	point "$c: the primary's ftvm got GO_LIVE" [ $? = 0 ]
	kill $vm1
	wait $vm1
	rc=$?
	point "$c: the primary's ftvm exits 0 on SIGTERM ($rc)" [ $rc = 0 ]
	point "$c: the backup never emitted" [ "$(lines $W/out2)" = 0 ]
	awk '$1 != "out" || $2 != NR || length($3) != 16 { bad = 1 } END { exit bad }' $W/out1
	point "$c: the primary's stream is gapless from 1" [ $? = 0 ]
	sed -n 's/^ftvm: stats: \(output-rule delay.*\)/# backup-killed: primary: \1/p' $W/ftvm1.log
	stop_pair
}

case_primary_fenced() {
	start_pair primary-fenced
	kill -STOP $ftd1
	wait_until 90 has $W/out2 1
	point "$c: the backup goes live while the primary's ftd is stopped" [ $? = 0 ] || give_up
	kill -CONT $ftd1
	t=0
	while kill -0 $vm1 2> /dev/null && [ $t -lt 600 ]; do usleep 50000; t=$((t + 1)); done
	wait $vm1
	rc=$?
	point "$c: the old primary's ftvm is halted (exit $rc, want 3)" [ $rc = 3 ]
	grep -q "HALT from ftd" $W/ftvm1.log
	point "$c: ... by HALT from its ftd" [ $? = 0 ]
	a=$(last_n $W/out1)
	wait_until 90 reached $W/out2 $((a + 50))
	point "$c: the new primary reached output $((a + 50))" [ $? = 0 ]
	check_stream $W/out1 $W/out2
	point "$c: no gap, no contradiction in the pair's output stream" [ $? = 0 ]
	stop_pair
}

# role_is SOCK ROLE: that ftd's ftctl status says ROLE.
role_is() {
	ftctl -s "$1" --json status 2> /dev/null | grep -q "\"role\": *\"$2\""
}

# planned: ftctl failover on the primary; both pause at the same landmark and
# swap roles (PAUSE/PAUSED/RESUME, re-attach in the other mode); the new
# primary's stream starts exactly one past the old one's (nothing lost,
# nothing repeated). Then SIGKILL to the new primary: the old primary, now
# the backup, goes live (a duplicate allowed, no gap, no contradiction).
case_planned() {
	start_pair planned
	ftctl -s $W/n1.sock failover > $W/fo.out 2>&1
	rc=$?
	sed 's/^/# planned: ftctl failover: /' $W/fo.out
	if [ $rc = 4 ]; then	# an ftd without planned failover refuses it
		n=$((n + 1))
		echo "ok $n $c: ftctl failover # SKIP ftd refuses it: $(head -n1 $W/fo.out)"
		stop_pair
		return
	fi
	point "$c: ftctl failover on the primary (exit $rc)" [ $rc = 0 ] || { stop_pair; return; }
	wait_until 30 role_is $W/n1.sock backup && wait_until 30 role_is $W/n2.sock primary
	point "$c: roles swapped in ftctl status on both" [ $? = 0 ]
	wait_until 90 has $W/out2 20
	point "$c: the new primary emits ($(lines $W/out2) outputs)" [ $? = 0 ] || { stop_pair; return; }
	a=$(last_n $W/out1)
	first=$(head -n1 $W/out2 | awk '{ print $2 }')
	point "$c: the new primary starts at output $first, the old one ended at $a: nothing lost, nothing repeated" \
		[ "$first" = $((a + 1)) ]
	check_stream $W/out1 $W/out2
	point "$c: each stream gapless" [ $? = 0 ]
	for i in 1 2; do
		sed -n 's/^ftvm: \(PAUSED at .*\|RESUME: swapped .*\)/# planned: ftvm'$i': \1/p' $W/ftvm$i.log
	done
	# The new primary dies: the old primary (now the backup) takes over.
	cp $W/out1 $W/out1.before
	kill -9 $vm2 $ftd2
	b=$(last_n $W/out2)
	wait_until 90 reached $W/out1 $((b + 20))
	point "$c: after SIGKILL to the new primary the old one goes live to output $((b + 20)) ($(last_n $W/out1))" [ $? = 0 ]
	tail -n +$(( $(lines $W/out1.before) + 1 )) $W/out1 > $W/out1.after
	check_stream $W/out2 $W/out1.after $first
	point "$c: no gap, no contradiction across the second failover" [ $? = 0 ]
	stop_pair
}

# KVM_FT_CASES=a,b runs only those cases (default: all).
for c in $(echo "${KVM_FT_CASES:-primary-killed backup-killed primary-fenced planned}" | tr , " "); do
	case $c in
	planned) case_planned ;;
	primary-killed) case_primary_killed ;;
	backup-killed) case_backup_killed ;;
	primary-fenced) case_primary_fenced ;;
	*) echo "# unknown case $c"; failed=$((failed + 1)) ;;
	esac
done

tap_done
