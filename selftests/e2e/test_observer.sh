#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The observer's invariants on made-up streams (no VM): it accepts a
# consecutive stream and a duplicate of the tail with the same hash, one
# change of the emitting host per period; it reports a second change (two
# live hosts), a gap and a contradicting hash, each exactly once; "cut"
# drops a dead host's unfinished line.
set -u
BUILD=${BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}
OBS=$BUILD/e2e/observer
[ -x "$OBS" ] || { echo "1..0 # SKIP $OBS not built"; exit 4; }
n=0 fails=0
ok() { n=$((n + 1)); if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi; }

w=$(mktemp -d /tmp/observer.XXXXXX)
mkfifo "$w/in" "$w/out" "$w/A" "$w/B"
"$OBS" "$w/log" "$w/in" "$w/out" A="$w/A" B="$w/B" > "$w/stdout" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$w"' EXIT
exec {cin}<>"$w/in" {cout}<>"$w/out" {a}<>"$w/A" {b}<>"$w/B"

ask() { echo "$*" >&$cin; read -r -t 5 -u $cout line && echo "$line"; }
# expect PATTERN: the report matches it within 5 s (lines arrive on other FIFOs)
expect() {
	local r
	for _ in $(seq 50); do
		r=$(ask report)
		[[ " $r " == *"$1"* ]] && return 0
		sleep 0.1
	done
	echo "# report: $r"
	return 1
}
h() { printf '%016x' $(( $1 * 2654435761 )); }	# the hash of output n in these streams

for i in 1 2 3 4 5; do echo "out $i $(h $i)" >&$a; done
expect " top=5 owner=A " && expect " violations=0 "
ok $? "5 consecutive outputs from A: no violation"

[ "$(ask mark kill 1000)" = ok ]
ok $? "mark answers ok"
echo "out 5 $(h 5)" >&$b
echo "out 6 $(h 6)" >&$b
expect " top=6 owner=B owner_at_mark=A top_at_mark=5 new=1 first_new=6 first_new_host=B " &&
	expect " takeover=6 " && expect " switches=1 dups=1 " && expect " violations=0 "
ok $? "B repeats the tail (same hash) and continues: one switch, one duplicate, no violation"

echo "noise line" >&$b
echo "out 7 $(h 7)" >&$a
expect " top=7 owner=A " && expect " switches=2 " && expect " violations=1 noise=1"
ok $? "A emits a new output after B took over: 'both hosts emit' reported"

echo "out 9 $(h 9)" >&$a
expect " top=9 " && expect " switches=2 " && expect " violations=2 "
ok $? "a gap (7 -> 9) is reported"

echo "out 3 0123456789abcdef" >&$b
expect " outputs=8 " && expect " dups_total=2 " && expect " violations=3 "
ok $? "output 3 with another hash is reported as a contradiction"

[ "$(ask note detect_ms 512)" = ok ] && expect " detect_ms=512"
ok $? "a note appears in the report"

grep -c VIOLATION "$w/stdout" | grep -qx 3 && grep -q "gap, output 9 after 7" "$w/stdout" &&
	grep -q "contradicts" "$w/stdout" && grep -q "both hosts emit" "$w/stdout"
ok $? "each violation printed once, with its reason"

[ "$(ask reset guest2)" = ok ] && echo "out 1 fedcba9876543210" >&$b && echo "out 2 $(h 2)" >&$b &&
	expect "label=guest2 outputs=10 top=2 owner=B owner_at_mark=- top_at_mark=0 new=2 first_new=1 " &&
	expect " switches=0 dups=0 dups_total=2 violations=3 "
ok $? "reset: a new guest's stream starts again at 1, no new violation"

# A host killed mid-line: the bed says "cut" once its QEMU is gone, and the
# unfinished line must not swallow the first line of the host's next life.
printf 'out 3 %s' "$(h 3 | head -c 9)" >&$b
sleep 0.3
[ "$(ask cut B)" = ok ] && echo "out 3 $(h 3)" >&$b &&
	expect " top=3 owner=B " && expect " violations=3 noise=1 cut=1"
ok $? "cut: B's unfinished line is dropped (cut=1, not noise) and its next line counts"

printf 'out 4 %s' "$(h 4 | head -c 5)" >&$b
echo "out 4 $(h 4)" >&$b
expect " noise=2 cut=1" && expect " top=3 "
ok $? "without cut the unfinished line garbles the next one (noise, output 4 lost)"

[ "$(ask cut C)" != ok ]
ok $? "cut of an unknown host is refused"

[ "$(ask quit)" = bye ] && ! wait $pid
ok $? "quit: exit status non-zero after violations"

echo "1..$n"
[ $fails -eq 0 ]
