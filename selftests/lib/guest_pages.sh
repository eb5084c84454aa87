#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# guest_pages.sh BINARY FUNCTION...
#
# Fails if an instruction of one of the guest's FUNCTIONs crosses a page
# boundary, or if one of them calls a function not in the list (whose
# instructions would go unchecked). Why: GUEST_CODE in guest.h.
set -euo pipefail

bin=$1; shift
[ $# -gt 0 ] || { echo "usage: $0 BINARY FUNCTION..." >&2; exit 2; }

# objdump prints each function as "ADDR <NAME>:" then its instructions as
# "ADDR:<tab>BYTES<tab>MNEMONIC OPERANDS" (long encodings continue on a
# line of bytes alone, which the awk script adds to the instruction).
for f in "$@"; do
	out=$(objdump -d "--disassemble=$f" "$bin")
	grep -q "<$f>:" <<<"$out" || { echo "guest_pages: $bin has no function $f" >&2; exit 1; }
	printf '%s\n' "$out"
done | awk -v fns="$*" '
	function flush() {
		if (start != "" && int(start / 4096) != int((start + len - 1) / 4096)) {
			printf "guest_pages: %s: %s bytes at %#x cross a page: %s\n", fn, len, start, text
			bad = 1
		}
		start = ""
	}
	function hex(s,   i, c, v) {
		v = 0
		for (i = 1; i <= length(s); i++) {
			c = index("0123456789abcdef", substr(s, i, 1)) - 1
			v = v * 16 + c
		}
		return v
	}
	BEGIN { n = split(fns, l, " "); for (i = 1; i <= n; i++) listed[l[i]] = 1 }
	/^[0-9a-f]+ <[^>]+>:$/ { flush(); fn = $2; gsub(/[<>:]/, "", fn); next }
	/^ *[0-9a-f]+:\t/ {
		split($0, p, "\t")
		addr = p[1]; gsub(/[ :]/, "", addr)
		nb = split(p[2], b, " ")
		if (p[3] == "") { len += nb; next }	# the rest of the bytes
		flush()
		start = hex(addr); len = nb; text = p[3]
		if (text ~ /^(call|jmp)[a-z]* +[0-9a-f]+ </) {
			t = text; sub(/.*</, "", t); sub(/[+>].*/, "", t)
			if (!(t in listed)) { printf "guest_pages: %s calls %s, which is not checked\n", fn, t; bad = 1 }
		}
	}
	END { flush(); exit bad }
'
