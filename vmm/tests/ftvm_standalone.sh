#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# ftvm --standalone in the test VM (no ftd, no kvm_ft), and ftvm's answers
# to bad command lines. Proves: the guest runs in long mode on real KVM,
# takes timer and DMA interrupts, checks every DMA block's checksum (a bad
# one is a guest assertion: exit 4), and the output stream is exactly
# "out 1 <hash>" .. "out N <hash>"; usage errors exit 1, setup errors 2.
# Prints TAP; the seed of the host devices is printed and taken from
# KVM_FT_SEED.

. "$(dirname "$0")/tap.sh"

# lines_ok FILE N: exactly "out 1 <hash>" .. "out N <hash>", 16 hex digits each.
lines_ok() {
	awk -v want="$2" '
		$1 != "out" || $2 != NR || NF != 3 || length($3) != 16 || $3 !~ /^[0-9a-f]+$/ {
			print "# bad line " NR ": " $0; bad = 1
		}
		END { exit bad || NR != want }' "$1"
}

# stat FIELD: the number before FIELD in ftvm's stats lines.
stat() {
	sed -n "s/.* \([0-9][0-9]*\) $1.*/\1/p" /tmp/ftvm.err | head -n1
}

tap_seed ftvm_standalone

rm -f /tmp/ftvm.out
timeout 240 ftvm --name demo --standalone --seed "$seed" --outputs 300 --out /tmp/ftvm.out \
	2> /tmp/ftvm.err
rc=$?
sed 's/^/# /' /tmp/ftvm.err
point "standalone ftvm exits 0 after output 300 (exit $rc)" [ "$rc" = 0 ]
point "the output stream is out 1 .. out 300, one hash each" lines_ok /tmp/ftvm.out 300
timer=$(stat "timer irqs,")
blocks=$(stat "dma blocks checked")
point "the guest took timer interrupts ($timer)" [ "${timer:-0}" -gt 0 ]
point "the guest checked DMA blocks ($blocks)" [ "${blocks:-0}" -gt 0 ]

usage() {	# expected-exit message-regex args...
	want=$1 re=$2
	shift 2
	timeout 20 ftvm "$@" > /dev/null 2> /tmp/ftvm.err
	rc=$?
	sed 's/^/# /' /tmp/ftvm.err
	[ "$rc" = "$want" ] && grep -q "^ftvm: .*$re" /tmp/ftvm.err
}
point "no --name: exit 1" usage 1 "--name NAME is required" --standalone
point "--outputs 0: exit 1" usage 1 "--outputs: not a positive number" --name x --outputs 0
point "--seed junk: exit 1" usage 1 "--seed: not a number" --name x --seed 12x
point "unknown option: exit 1" usage 1 "" --name x --frobnicate
point "a name of 32 bytes: exit 1" usage 1 "--name NAME is required" \
	--name 0123456789abcdef0123456789abcdef
point "no ftd at the socket: exit 2" usage 2 "connect to ftd at /tmp/nosuch.sock" \
	--name x --ftd-socket /tmp/nosuch.sock
point "--out in a missing directory: exit 2" usage 2 "--out /nonexistent/out: No such file" \
	--name x --standalone --out /nonexistent/out

tap_done
