#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# ftvm's planned failover (PAUSE, PAUSED, RESUME in daemon/ftd_vmm.h) on
# real KVM: two ftvm, A the primary (RECORD) and B the backup (REPLAY),
# served by ftvm_swapdrv, a stand-in for the two ftd that copies A's log
# into B's replay ring and acknowledges it. Every few seconds the driver
# swaps the roles as ftd does for `ftctl failover`: both pause at the same
# landmark (the primary with its devices held and the module's async queue
# empty, the backup once it replayed the primary's last record), then
# detach and attach again in the other mode without copying state. After
# the swaps, the pair's output stream (A's and B's --out together) must
# hold every output exactly once (a planned failover loses nothing and
# repeats nothing), each file in order, both hosts having emitted (the
# roles did swap), and the guest's DMA checksums held (exit 0 on SIGTERM,
# not 4). Prints the pause and swap times. KVM_FT_SEED fixes the seeds.

. "$(dirname "$0")/tap.sh"
need ftvm ftvm_swapdrv
tap_seed ftvm_swap
SWAPS=${FTVM_SWAPS:-4}
W=/tmp/swap
rm -rf $W
mkdir -p $W
LOGS="ftvma.log ftvmb.log drv.log"
total() { echo $(( $(lines $W/outa) + $(lines $W/outb) )); }
swapped() { grep -q "swap $1 at" $W/drv.log; }
grown() { [ "$(total)" -ge "$1" ]; }

driver "the driver listens for both ftvm" ftvm_swapdrv $W/a.vmm $W/b.vmm $SWAPS 3000
ftvm --name demo --ftd-socket $W/a.vmm --out $W/outa --seed $((seed + 1)) 2> $W/ftvma.log &
vma=$!
ftvm --name demo --ftd-socket $W/b.vmm --out $W/outb --seed $((seed + 2)) 2> $W/ftvmb.log &
vmb=$!
pids="$pids $vma $vmb"
wait_until 60 grown 20
point "the primary emits ($(total) outputs)" [ $? = 0 ] || give_up
wait_until $((60 + 40 * SWAPS)) swapped $SWAPS
point "$SWAPS planned failovers made" [ $? = 0 ] || give_up
sed -n 's/^swapdrv: /# /p' $W/drv.log
after=$(( $(total) + 30 ))
wait_until 60 grown $after
point "the pair emits after the last swap ($(total) outputs)" [ $? = 0 ]
kill $vma $vmb
wait $vma
ra=$?
wait $vmb
rb=$?
point "both ftvm exit 0 on SIGTERM (A $ra, B $rb): no guest assertion, no divergence" \
	[ $ra = 0 -a $rb = 0 ]
wait $drv
point "the driver saw every swap through" [ $? = 0 ]
pids=
for f in a b; do
	echo "# ftvm $f: $(grep -c '^ftvm: PAUSED at' $W/ftvm$f.log) pauses, $(grep -c 'RESUME: swapped' $W/ftvm$f.log) swaps"
	sed -n 's/^ftvm: \(PAUSED at .*\|RESUME: swapped .*\)/# ftvm '$f': \1/p' $W/ftvm$f.log
done
point "both hosts emitted (A $(lines $W/outa), B $(lines $W/outb) outputs)" \
	[ "$(lines $W/outa)" -gt 0 -a "$(lines $W/outb)" -gt 0 ]
# Each file in order; together every n from 1 to the last exactly once.
cat $W/outa $W/outb | awk '
	$1 != "out" { print "# bad line: " $0; bad = 1; next }
	{ c[$2]++; if ($2 > max) max = $2 }
	END {
		for (i = 1; i <= max; i++)
			if (c[i] != 1) { printf "# output %d appears %d times\n", i, c[i]; bad = 1 }
		printf "# %d outputs in all\n", max
		exit bad
	}'
point "no output lost, none repeated" [ $? = 0 ]
for f in outa outb; do
	awk 'NR > 1 && $2 <= prev { print "# '$f' out of order at line " NR; bad = 1 } { prev = $2 }
		END { exit bad }' $W/$f
	point "$f in order" [ $? = 0 ]
done
g=$(sed -n 's/^ftvm: stats: guest: \([0-9]*\) timer irqs, \([0-9]*\) dma irqs, \([0-9]*\) dma blocks.*/\1 \2 \3/p' $W/ftvma.log)
echo "# A's guest: timer irqs, dma irqs, dma blocks checked: $g"
set -- $g
point "the guest took timer and DMA interrupts and checked DMA blocks" \
	[ "${1:-0}" -gt 0 -a "${2:-0}" -gt 0 -a "${3:-0}" -gt 0 ]
[ "$failed" = 0 ] || show_logs
tap_done
