#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# ftd's journald entries, read as journald would: in a private mount
# namespace (unshare -m) a tmpfs hides /run/systemd and a test listener binds
# /run/systemd/journal/socket, where sd_journal_send() writes its native
# datagrams. ftd runs there with JOURNAL_STREAM set (as under systemd), alone
# as a primary whose backup never answers. Proves: every line is a structured
# entry (MESSAGE, PRIORITY, SYSLOG_IDENTIFIER=ftd) with the FT_* fields the
# line is about (FT_NODE=1 on all, FT_ROLE and FT_EPOCH at start, FT_PEER, ERRNO and
# FT_REASON=connect-failed, FT_REASON=peer-never-seen at PRIORITY 4), and
# nothing goes to stderr. Needs root (mount namespace); skipped otherwise.
set -u
. "$(dirname "$0")/ftdlib.sh.inc"
need
if [ "$(id -u)" != 0 ] || ! unshare -m --propagation private true 2>/dev/null; then
	echo "1..0 # SKIP needs root and unshare -m"
	exit 4
fi
setup "peer_timeout = 300ms"

# Inside the namespace: the listener, then ftd for 1.5 s, then SIGTERM.
unshare -m --propagation private bash -s "$FTD" "$work" <<'NS'
set -u
ftd=$1 work=$2
mount -t tmpfs tmpfs /run/systemd && mkdir -p /run/systemd/journal || exit 1
python3 - "$work/journal.jsonl" <<'PY' &
import json, socket, struct, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/run/systemd/journal/socket")
s.settimeout(0.2)
out = open(sys.argv[1], "w")
end = time.time() + 4
while time.time() < end:
    try:
        d = s.recv(65536)
    except socket.timeout:
        continue
    e, i = {}, 0
    while i < len(d):               # native protocol: KEY=value\n, or KEY\n<le64 size>value\n
        nl = d.index(b"\n", i)
        line = d[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            n = struct.unpack("<Q", d[nl + 1:nl + 9])[0]
            k, v = line, d[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        e[k.decode()] = v.decode()
    out.write(json.dumps(e) + "\n")
    out.flush()
PY
lpid=$!
for _ in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
JOURNAL_STREAM=8:1 "$ftd" -c "$work/n1.conf" 2>"$work/n1.stderr" &
fpid=$!
sleep 1.5
kill -TERM "$fpid"
wait "$fpid"
kill "$lpid"
wait "$lpid" 2>/dev/null
exit 0
NS
ok $? "ftd ran in a mount namespace with a test journal socket"
# jq-free field checks: one python run per assertion
has() {	# has PYTHON-CONDITION-ON-e: some entry satisfies it
	python3 -c "
import json, sys
es = [json.loads(l) for l in open('$work/journal.jsonl')]
sys.exit(0 if any($1 for e in es) else 1)"
}
[ -s "$work/journal.jsonl" ] && [ ! -s "$work/n1.stderr" ]
ok $? "$(wc -l <"$work/journal.jsonl") journal entries, nothing on stderr"
python3 -c "
import json, sys
es = [json.loads(l) for l in open('$work/journal.jsonl')]
sys.exit(0 if all(e.get('SYSLOG_IDENTIFIER') == 'ftd' and e.get('FT_NODE') == '1' and
                  e.get('PRIORITY', '').isdigit() and e.get('MESSAGE') for e in es) else 1)"
ok $? "every entry has MESSAGE, PRIORITY, SYSLOG_IDENTIFIER=ftd and FT_NODE=1"
has "e['MESSAGE'].startswith('node 1 started as primary') and e.get('FT_ROLE') == 'primary' and e.get('FT_EPOCH') == '1'"
ok $? "start: FT_ROLE=primary FT_EPOCH=1"
has "e.get('FT_REASON') == 'connect-failed' and e.get('ERRNO') == '111' and e.get('FT_PEER') == '127.0.0.1:$p2'"
ok $? "connect failure: FT_REASON=connect-failed ERRNO=111 FT_PEER=127.0.0.1:$p2"
has "e.get('FT_REASON') == 'peer-never-seen' and e.get('PRIORITY') == '4' and e.get('FT_ROLE') == 'primary' and 'never answered' in e['MESSAGE']"
ok $? "backup never answered: FT_REASON=peer-never-seen PRIORITY=4 FT_ROLE=primary"
has "e['MESSAGE'] == 'received Terminated, stopping'"
ok $? "SIGTERM logged"
finish
