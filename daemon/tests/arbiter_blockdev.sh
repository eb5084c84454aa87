#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs test_arbiter on loop block devices with 512 B and 4 KiB logical
# sectors, so that BLKSSZGET detection and sector-sized O_DIRECT record I/O
# are exercised on real block devices, not only on files. Skips (exit 4)
# without root or loop devices.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/test_arbiter
if [ ! -x "$bin" ]; then
	echo "1..0 # SKIP $bin not built"
	exit 4
fi
if [ "$(id -u)" -ne 0 ] || ! command -v losetup >/dev/null 2>&1; then
	echo "1..0 # SKIP needs root and losetup"
	exit 4
fi
work=$(mktemp -d /var/tmp/ftarb_blk.XXXXXX)
loops=()
cleanup() {
	for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT

echo "1..2"
fail=0 n=0
for ss in 512 4096; do
	n=$((n + 1))
	truncate -s 2M "$work/img$ss"
	if ! l=$(losetup -f --show --sector-size "$ss" "$work/img$ss" 2>&1); then
		echo "# losetup: $l"
		if [ $n -eq 1 ]; then
			echo "1..0 # SKIP no loop device"
			exit 4
		fi
		echo "not ok $n - loop device with $ss B sectors"
		fail=1
		continue
	fi
	loops+=("$l")
	got=$(blockdev --getss "$l")
	FT_ARB_DEV=$l FT_ARB_TRIALS=${FT_ARB_TRIALS:-150} "$bin" >"$work/out" 2>&1
	rc=$?
	sed 's/^/# /' "$work/out" | grep -E "seed|area|not ok|races:|passed"
	if [ $rc -eq 0 ] && [ "$got" = "$ss" ]; then
		echo "ok $n - test_arbiter on $l ($got B logical sectors)"
	else
		echo "not ok $n - test_arbiter on $l ($got B sectors) exit $rc"
		fail=1
	fi
done
exit $fail
