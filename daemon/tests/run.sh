#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs host tests: every test binary given on the command line and every
# tests/*.sh beside this script. Each prints TAP; a test passes when it exits 0
# (4 = skipped, as in kselftest). Ends with the plain "N passed, N failed" line.
set -u
here=$(cd "$(dirname "$0")" && pwd)
pass=0 fail=0 skip=0 n=0
tests=("$@")
for s in "$here"/*.sh; do
	[ "$s" = "$here/run.sh" ] || tests+=("$s")
done
echo "TAP version 13"
echo "1..${#tests[@]}"
for t in "${tests[@]}"; do
	n=$((n + 1))
	name=$(basename "$t")
	echo "# ---- $name"
	timeout --kill-after=10 "${FT_TEST_TIMEOUT:-600}" "$t" 2>&1 | sed 's/^/# /'
	rc=${PIPESTATUS[0]}
	case $rc in
	0) pass=$((pass + 1)); echo "ok $n $name" ;;
	4) skip=$((skip + 1)); echo "ok $n $name # SKIP" ;;
	*) fail=$((fail + 1)); echo "not ok $n $name # exit $rc" ;;
	esac
done
echo "host: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
