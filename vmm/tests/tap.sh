# SPDX-License-Identifier: GPL-2.0
#
# TAP helpers sourced by the tests in this directory (busybox sh): n counts
# the points, failed the failed ones; the plan comes last (tap_done).

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
