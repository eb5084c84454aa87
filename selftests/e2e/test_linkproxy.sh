#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The link proxy on made-up frames (no VM): it forwards QEMU socket frames
# both ways, drops them while cut, and measures the silences of each
# direction between TCP frames with a payload only (a pure TCP ack or an
# ICMP frame does not end a silence), per window and as a histogram.
set -u
BUILD=${BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}
PROXY=$BUILD/e2e/linkproxy
[ -x "$PROXY" ] || { echo "1..0 # SKIP $PROXY not built"; exit 4; }
command -v python3 > /dev/null || { echo "1..0 # SKIP no python3"; exit 4; }
n=0 fails=0
ok() { n=$((n + 1)); if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi; }

w=$(mktemp -d /tmp/linkproxy.XXXXXX)
mkfifo "$w/ctl"
"$PROXY" "$w/ports" "$w/ctl" > "$w/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$w"' EXIT
for _ in $(seq 50); do [ -s "$w/ports" ] && break; sleep 0.1; done

# Two fake hosts: A sends a script of frames with pauses, B sends one frame;
# each reports what it received. The proxy's commands go in between.
python3 - "$w/ports" "$w/ctl" > "$w/hosts" <<'EOF'
import os, socket, struct, sys, time
pa, pb = map(int, open(sys.argv[1]).read().split())
ctl = os.open(sys.argv[2], os.O_WRONLY)
a = socket.create_connection(("127.0.0.1", pa))
b = socket.create_connection(("127.0.0.1", pb))

def frame(payload, proto=6):
    l4 = bytes([0] * 12 + [8 << 4] + [0] * 19) if proto == 6 else bytes(8)
    ip = bytes([0x45, 0]) + struct.pack(">H", 20 + len(l4) + payload) + bytes(5) + bytes([proto]) + bytes(10)
    f = bytes(12) + b"\x08\x00" + ip + l4 + bytes(payload)
    return struct.pack(">I", len(f)) + f

def cmd(c):
    os.write(ctl, (c + "\n").encode())
    time.sleep(0.3)

def got(s):
    s.settimeout(0.5)
    n = 0
    try:
        while True:
            h = s.recv(4, socket.MSG_WAITALL)
            if len(h) < 4:
                break
            s.recv(struct.unpack(">I", h)[0], socket.MSG_WAITALL)
            n += 1
    except socket.timeout:
        pass
    return n

time.sleep(0.3)
cmd("gaps on")
a.sendall(frame(40))            # starts the silence
time.sleep(0.1)
a.sendall(frame(0))             # a pure ack: the silence goes on
time.sleep(0.6)
a.sendall(frame(0, proto=1))    # not TCP: the silence goes on
time.sleep(0.1)
a.sendall(frame(40))            # ends it: about 800 ms
a.sendall(frame(40))            # about 0 ms
b.sendall(frame(10))            # B's first: no silence yet
time.sleep(0.2)
cmd("gaps off")
print("b_got", got(b))
print("a_got", got(a))
cmd("cut")
a.sendall(frame(40))
time.sleep(0.2)
print("b_got_cut", got(b))
cmd("heal")
a.sendall(frame(40))
time.sleep(0.2)
print("b_got_healed", got(b))
cmd("gaps")
EOF
ok $? "two fake hosts ran their frames through the proxy"
v() { sed -n "s/^$1 //p" "$w/hosts"; }
[ "$(v b_got)" = 5 ] && [ "$(v a_got)" = 1 ]
ok $? "every frame forwarded to the other side (B got $(v b_got) of 5, A got $(v a_got) of 1)"
[ "$(v b_got_cut)" = 0 ] && [ "$(v b_got_healed)" = 1 ]
ok $? "nothing forwarded while cut, forwarded again after heal"

s=$(sed -n 's/.*linkproxy: silence A->B \([0-9]*\) ms$/\1/p' "$w/log")
[ -n "$s" ] && [ "$s" -ge 750 ] && [ "$s" -lt 1500 ] && [ "$(grep -c 'linkproxy: silence' "$w/log")" = 1 ]
ok $? "one silence logged: A->B ${s:-none} ms (a pure ack and an ICMP frame did not end it)"
grep -q "gaps off: longest silence this window A->B $s ms, B->A 0 ms" "$w/log"
ok $? "gaps off: the window's longest silence per direction"
# count DIRECTION: the silences in that direction's histogram
count() { sed -n "s/.*linkproxy: gaps $1 ms: \(.*\) max .*/\1/p" "$w/log" | tr ' ' '\n' | awk -F: '{ c += $2 } END { print c + 0 }'; }
grep -q "gaps A->B ms: <=50:1 .* max $s$" "$w/log" && [ "$(count 'A->B')" = 2 ] &&
	grep -q "gaps B->A ms: .* max 0$" "$w/log" && [ "$(count 'B->A')" = 0 ]
ok $? "gaps: the histogram counts the two silences of A->B, none of B->A"
[ "$(grep -c "linkproxy: silence" "$w/log")" = 1 ]
ok $? "frames outside the window (cut, heal) are not measured"
sed 's/^/# /' "$w/log"

echo "1..$n"
[ $fails -eq 0 ]
