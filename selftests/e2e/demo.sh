#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: a protected guest survives the death of its host.
#
# Boots the two nested test hosts (bed.sh), starts ftd on both (A primary, B
# backup) and the guest under ftvm, shows `ftctl status` on both and the
# guest's output as the observer receives it, kills host A's QEMU with
# SIGKILL, shows host B live and the output continuing, prints the figures;
# then boots A again: it never goes live, B seeds it with a snapshot of the
# live VM and the pair is protected again (A backup, B primary).
# Exit status 0 only if every invariant held (observer: no gap, no
# contradiction, never two hosts live; B live alone, then A re-protected;
# no kernel splat).
#
# Environment: KVM_FT_SEED (the run's random choices), DEMO_RUN (seconds of
# output shown before and after the kill, default 10), KEEP=1.
set -u
. "$(dirname "$0")/pair.sh"

run_s=${DEMO_RUN:-10}
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# show_output SECONDS: the observer's lines, live, for that long.
show_output() {
	local t
	# every 100th output (the guest emits hundreds a second) and every
	# line that is not an output (take-over, violation)
	tail -n 0 -f "$w/observer.out" |
		awk '$3 == "out" && $4 % 100 != 0 { next } { print "    observer: " $0; fflush() }' &
	t=$!
	sleep "$1"
	kill "$t" 2>/dev/null
	wait "$t" 2>/dev/null
}

# status HOST: ftctl status on the host, as a person sees it.
status() {
	echo "  -- host $1: ftctl status"
	on "$1" 10 ftctl status | sed 's/^/    /'
}

echo "# seed $seed (KVM_FT_SEED=$seed repeats this run's choices)"
step "booting hosts A (192.0.2.1) and B (192.0.2.2): nested KVM under QEMU, kvm_ft, ftd, ftvm"
bed_start
bed_boot A B || exit 1
on A 10 hostctl ping | sed -n 's/^/    /;2p'

step "starting the protected pair: ftd on both (A primary, B backup), the guest under ftvm"
pair_up demo || { echo "demo: the pair did not come up"; exit 1; }
[ "$with_vm" = 1 ] || echo "    (no guest: $vm_why; the primary's log comes from the test producer)"
status A
status B

step "the guest runs on A; its outputs leave A only once B has the log (the output rule)"
show_output "$run_s"

[ "$with_vm" = 1 ] && on A 10 "grep 'output-rule delay' /tmp/ftvm.log | tail -n 1" | sed 's/.*stats: /    ftvm on A: /'

step "kill -9 host A's QEMU (the whole host dies); B must detect it, win the disk, go live"
kill_host demo A B
status B

step "the guest goes on, on B"
show_output "$run_s"

step "figures"
r=$(obs report)
echo "    $r" | tr ' ' '\n' | grep -E '^(detect_ms|golive_ms|backup_lag_records|takeover|takeover_gap_ms|takeover_ms|max_gap_ms|dups|outputs|violations)=' |
	sed 's/^/    /'
echo "    (detection and go-live: from the kill to ftd's events on B; takeover: B's first new"
echo "     output, takeover_gap_ms after A's last one, takeover_ms after the kill)"
step "host A comes back: its epoch moved on, so it never goes live; B seeds it as the new backup"
restart demo A primary B
status A
status B
for h in A B; do
	on $h 10 hostctl scan > /dev/null && console_clean $h
	ok $? "host $h: no kernel splat"
done
[[ $r == *" violations=0 "* ]]
ok $? "observer: no gap, no contradiction, never two hosts live"
step "result"
finish
