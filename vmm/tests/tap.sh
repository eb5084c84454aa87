# SPDX-License-Identifier: GPL-2.0
#
# TAP helpers sourced by the tests in this directory (busybox sh): n counts
# the points, failed the failed ones; the plan comes last (tap_done). The
# tests keep their files in $W and name their logs in $LOGS.

n=0 failed=0

# point DESCRIPTION COMMAND...: one point from the command's status, which
# it returns (`point ... || give_up` stops at a failure).
point() {
	d=$1
	shift
	n=$((n + 1))
	if "$@"; then
		echo "ok $n $d"
	else
		echo "not ok $n $d"
		failed=$((failed + 1))
		return 1
	fi
}

# skip_all REASON: the whole test is skipped (exit 4: SKIP for vm/init).
skip_all() { echo "1..0 # SKIP $1"; exit 4; }

# need PROGRAM...: skip the whole test unless each is in the image.
need() {
	for b in "$@"; do
		command -v $b > /dev/null || skip_all "$b not in the image"
	done
}

# The test's background processes go in $pids: killed when it exits, then
# $CLEANUP (a command) runs.
pids=
cleanup() {
	for p in $pids; do kill -9 "$p" 2> /dev/null; done
	wait 2> /dev/null
	eval "${CLEANUP:-}"
}
trap cleanup EXIT

# tap_seed NAME: $seed is KVM_FT_SEED, else time-based; printed.
tap_seed() {
	seed=${KVM_FT_SEED:-$(($(date +%s) % 1000000))}
	echo "# $1: seed $seed (re-run with KVM_FT_SEED=$seed)"
}

# tap_done: the plan; true iff no point failed (the test's exit status).
tap_done() {
	echo "1..$n"
	[ "$failed" = 0 ]
}

# show FILE: the file into the TAP output as comments.
show() { [ -e "$1" ] && sed "s|^|# ${1##*/}: |" "$1"; }

# show_logs: each of $LOGS (in $W), in that order: put the most telling
# last, a CI log shows only its tail.
show_logs() { [ -n "${W:-}" ] && for f in $LOGS; do show "$W/$f"; done; }

# give_up: a step everything after depends on failed; show the logs, stop.
give_up() {
	show_logs
	echo "1..$n"
	exit 1
}

# lines FILE: its number of lines, 0 if it does not exist (yet).
lines() { if [ -e "$1" ]; then wc -l < "$1"; else echo 0; fi; }

# wait_until SECONDS COMMAND...: poll every 50 ms (COMMAND is re-run each
# time) until it succeeds or SECONDS of uptime passed.
wait_until() {
	end=$(( $(cut -d. -f1 /proc/uptime) + $1 ))
	shift
	while :; do
		"$@" && return 0
		[ "$(cut -d. -f1 /proc/uptime)" -lt "$end" ] || return 1
		usleep 50000
	done
}

# driver DESCRIPTION COMMAND...: start a stand-in for the two ftd in the
# background (output in $W/drv.log, pid in $drv and $pids) and wait for its
# sockets $W/a.vmm and $W/b.vmm: one point; without them, give up.
driver() {
	d=$1
	shift
	"$@" > $W/drv.log 2>&1 &
	drv=$!
	pids=$drv
	wait_until 10 [ -S $W/a.vmm -a -S $W/b.vmm ]
	point "$d" [ $? = 0 ] || give_up
}
