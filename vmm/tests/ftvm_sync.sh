#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# ftvm's re-protection (SNAPSHOT, SNAPSHOT_READY, SEED in daemon/ftd_vmm.h)
# on real KVM, against ftvm_syncdrv (a stand-in for the two ftd, see
# tests/ftvm_syncdrv.c): A runs live alone; three times it is snapshotted
# and switched to RECORD at exactly the captured state, and a new ftvm is
# seeded with the snapshot: B1 gets it corrupted and B2 truncated (each must
# refuse it with one clear line and exit 2; A goes live again and loses
# nothing), B3 gets it intact, builds its VM from it and replays A's new log
# (the driver has digests of all guest memory compared at once and twice
# more 5 s apart: ftvm attaches without register digests). Then A is killed, B3
# goes live. Checks: the
# pair's stream (A's and B3's --out) has every n from 1 on, no gap, each n
# with one hash (B3 may repeat A's tail, the same lines); each file in
# order; B3 continues the stream (its first n <= A's last + 1); B3 exits 0
# on SIGTERM (no divergence, no guest assertion); the guest took DMA blocks
# after the go-live (the device state came with the snapshot). Prints the
# snapshot's size and the pause it cost. All of it twice: A the survivor of
# its primary role (attached in RECORD, then live) and of its backup role
# (attached in REPLAY, live before any record). KVM_FT_SEED fixes the seeds.

. "$(dirname "$0")/tap.sh"
need ftvm ftvm_syncdrv
tap_seed ftvm_sync
LOGS="ftvma.log ftvmb1.log ftvmb2.log ftvmb3.log drv.log"
grown() { [ "$(lines $1)" -ge "$2" ]; }
said() { grep -q "$1" $W/drv.log; }
# refused LOG WHAT EXIT: exit 2 and exactly one "snapshot refused" line, saying WHAT.
refused() {
	[ $3 = 2 -a "$(grep -c 'snapshot refused' $1)" = 1 ] && grep -q "snapshot refused: .*$2" $1
}

# scenario ROLE: A was the ROLE of a pair before it went live alone.
scenario() {
	role=$1 s=$2
	W=/tmp/sync/$role
	rm -rf $W
	mkdir -p $W
	driver "$role: the driver listens" env KVM_FT_SEED=$seed ftvm_syncdrv $W/a.vmm $W/b.vmm 2000 $role
	ftvm --name demo --ftd-socket $W/a.vmm --out $W/outa --seed $((s + 1)) 2> $W/ftvma.log &
	vma=$!
	pids="$pids $vma"
	wait_until 60 grown $W/outa 10
	point "$role: A runs live alone ($(lines $W/outa) outputs)" [ $? = 0 ] || give_up

	# B1, B2: a corrupted and a truncated snapshot are refused.
	k=1
	for what in "checksum mismatch" "truncated"; do
		wait_until 60 said "waiting for B$k"
		point "$role: A snapshotted for B$k" [ $? = 0 ] || give_up
		ftvm --name demo --ftd-socket $W/b.vmm --out $W/outb$k --seed $((s + 1 + k)) \
			2> $W/ftvmb$k.log
		rc=$?
		sed -n 's/^ftvm: \(snapshot refused.*\)/# B'$k': \1/p' $W/ftvmb$k.log
		point "$role: B$k refuses the snapshot ($what) with one line and exits 2 (exit $rc)" \
			refused $W/ftvmb$k.log "$what" $rc
		point "$role: B$k emitted nothing" [ "$(lines $W/outb$k)" = 0 ]
		wait_until 30 said "attempt $k: B$k refused"
		point "$role: A is live alone again after B$k" [ $? = 0 ] || give_up
		k=$((k + 1))
	done

	# B3: seeded with the intact snapshot, the pair runs.
	wait_until 60 said "waiting for B3"
	point "$role: A snapshotted for B3" [ $? = 0 ] || give_up
	ftvm --name demo --ftd-socket $W/b.vmm --out $W/outb --seed $((s + 4)) 2> $W/ftvmb3.log &
	vmb=$!
	pids="$pids $vmb"
	wait_until 120 said "the pair is protected"
	point "$role: B3 is built from the snapshot and attached" [ $? = 0 ] || give_up
	sed -n 's/^syncdrv: \(attempt 3.*\)/# \1/p' $W/drv.log
	after=$(( $(lines $W/outa) + 30 ))
	wait_until 120 grown $W/outa $after
	point "$role: A emits with B3 acknowledging its log ($(lines $W/outa) outputs)" [ $? = 0 ] || give_up
	kill -9 $vma
	wait $vma 2> /dev/null
	wait_until 60 said "B is live"
	point "$role: B3 goes live after A is killed" [ $? = 0 ] || give_up
	sed -n 's/^syncdrv: \(B replayed.*\)/# \1/p' $W/drv.log
	base=$(lines $W/outb)
	wait_until 120 grown $W/outb $((base + 30))
	point "$role: B3 emits live ($(lines $W/outb) outputs)" [ $? = 0 ]
	kill $vmb
	wait $vmb
	rb=$?
	point "$role: B3 exits 0 on SIGTERM (exit $rb): no divergence, no guest assertion" [ $rb = 0 ]
	wait $drv
	point "$role: the driver saw every step (exit $?)" [ $? = 0 ]
	pids=

	sed -n "s/^ftvm: \(SNAPSHOT: .*\)/# $role: A: \1/p" $W/ftvma.log
	sed -n "s/^ftvm: \(SEED: .*\|snapshot: restored.*\)/# $role: B3: \1/p" $W/ftvmb3.log
	# Together: every n from 1 to the last, each with one hash.
	cat $W/outa $W/outb | awk '
		$1 != "out" || length($3) != 16 { print "# bad line: " $0; bad = 1; next }
		{ if (($2 in h) && h[$2] != $3) { print "# output " $2 " has two hashes"; bad = 1 }
		  h[$2] = $3; if ($2 > max) max = $2 }
		END {
			for (i = 1; i <= max; i++)
				if (!(i in h)) { printf "# output %d is missing\n", i; bad = 1 }
			printf "# %d outputs in all\n", max
			exit bad
		}'
	point "$role: no output lost, none contradicted" [ $? = 0 ]
	for f in outa outb; do
		awk 'NR > 1 && $2 != prev + 1 { print "# '$f' not gapless at line " NR; bad = 1 }
			{ prev = $2 } END { exit bad }' $W/$f
		point "$role: $f in order and gapless" [ $? = 0 ]
	done
	la=$(tail -n1 $W/outa | awk '{ print $2 }')
	fb=$(head -n1 $W/outb | awk '{ print $2 }')
	point "$role: B3 continues A's stream (A's last $la, B3's first $fb)" [ "${fb:-0}" -ge 1 -a "${fb:-0}" -le $((la + 1)) ]
	g=$(sed -n 's/^ftvm: stats: guest: \([0-9]*\) timer irqs, \([0-9]*\) dma irqs, \([0-9]*\) dma blocks.*/\3/p' $W/ftvmb3.log)
	g0=$(sed -n 's/^ftvm: snapshot: restored .* \([0-9]*\) dma blocks checked.*/\1/p' $W/ftvmb3.log)
	d=$(sed -n 's/^ftvm: stats: devices: .* \([0-9]*\) dma blocks sent.*/\1/p' $W/ftvmb3.log)
	echo "# B3's guest checked ${g0:-?} DMA blocks at the snapshot, ${g:-?} at the end; B3's device sent ${d:-0} live"
	point "$role: B3's guest took B3's live DMA blocks (the device state came with the snapshot)" \
		[ "${d:-0}" -gt 0 -a "${g:-0}" -gt "${g0:-0}" ]
	[ "$failed" = 0 ] || show_logs
}

# A survivor that was the primary (RECORD before live) and one that was
# the backup (REPLAY before live): both re-attach in RECORD.
scenario primary $seed
scenario backup $((seed + 10))
tap_done
