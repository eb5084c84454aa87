#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# A peer that is down, not hostile: node 1 dials an address whose SYNs go
# unanswered (a listener whose accept queue is full), so each dial stays in
# connect until the handshake timeout (2 s). Proves: that is one
# "cannot connect" line (ERRNO 110), then quiet retries; no "frames
# rejected" count and no handshake-timeout line, which `ftctl status` would
# show as abnormal (a live node re-dialing a dead peer to offer it a seed
# does this for as long as the peer is down).
set -u
. "$(dirname "$0")/ftdlib.sh.inc"
need
setup "peer_timeout = 60s"
# The black hole: backlog 0 holds one connection, which we make and never
# accept; every later SYN to the port is dropped.
python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(0)
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
open(sys.argv[2], "w").close()
time.sleep(120)' "$p2" "$work/hole" &
pids+=($!)
for _ in $(seq 50); do [ -e "$work/hole" ] && break; sleep 0.1; done
start 1
ok $? "node 1 started, its peer's port a black hole"
sleep 9	# four or more handshake timeouts, with redial backoff between them
tries=$(grep -c "cannot connect\|handshake-timeout" "$work/n1.log")
echo "# node 1's log: $(grep -c 'cannot connect' "$work/n1.log") 'cannot connect', $(grep -c 'handshake-timeout\|no authenticated session' "$work/n1.log") handshake timeouts; sessions $(st 1 sessions)"
[ "$(grep -c 'cannot connect to the peer: Connection timed out' "$work/n1.log")" = 1 ] && [ "$tries" = 1 ]
ok $? "one 'cannot connect ... Connection timed out' line, nothing else about the dials"
[ "$(st 1 rejects)" = 0 ] && [ "$(st 1 channel)" != up ]
ok $? "no frame counted as rejected ($(st 1 rejects)), channel $(st 1 channel)"
finish
