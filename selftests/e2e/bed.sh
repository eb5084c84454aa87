# SPDX-License-Identifier: GPL-2.0
#
# The two-host test bed (sourced by the scenarios and the demo, not run).
#
# Two QEMU "hosts" (TCG, -cpu max: nested SVM + NPT, so real KVM runs
# inside), each booting Debian's 6.1 kernel with one initramfs (e2e/hostinit
# as /init): busybox, the KVM stack, kvm_ft.ko, virtio net/blk, ftd, ftctl,
# ftvm and their shared libraries. They share one raw disk for arbitration
# (share-rw, no locking, cache=none) and are linked through linkproxy on
# loopback (which can cut the link). Host A is node 1 (192.0.2.1), host B
# node 2 (192.0.2.2). Per host, three serial ports: the console (a file), the
# side channel (FIFOs: READY, then commands; see hostinit) and the guest's
# output stream (a FIFO read by the observer).
#
# Environment: TOP BUILD KVER (from make), E2E_PEER_TIMEOUT (ftd's
# peer_timeout in the hosts, default 5000ms: nested TCG hosts sharing 2 cores
# with other work (load 9-10) fall silent on a healthy link for up to 3.1 s,
# which failed a pair over falsely at 3000ms; see README.md), E2E_MEM (MiB per host, 1536),
# KEEP=1 keeps the work directory; FTD, FTCTL, FTRING, FTVM: other builds of them.

e2e_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$e2e_here/../vm/lib.sh"
vm_defaults
e2e_out=$BUILD/e2e
E2E_VIRTIO="drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev
	drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci net/core/failover
	drivers/net/net_failover drivers/net/virtio_net drivers/block/virtio_blk"
FTD=${FTD:-$TOP/daemon/ftd}
FTCTL=${FTCTL:-$TOP/daemon/ftctl}
FTRING=${FTRING:-$TOP/daemon/tests/tool_ftring}
FTVM=${FTVM:-$BUILD/vmm/ftvm}
e2e_peer_timeout=${E2E_PEER_TIMEOUT:-5000ms}

declare -A qpid console ctl_in ctl_out boot_t0
agent_id=0
n=0 fails=0

ok() {	# ok EXIT-STATUS DESCRIPTION: one TAP line
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi
}
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
finish() {
	echo "1..$n"
	echo "# e2e: $((n - fails)) passed, $fails failed"
	[ "$fails" -eq 0 ]
}

e2e_now() { date +%s%3N; }
e2e_log() { echo "# $(date -u +%T.%3N) $*"; }

# bed_start: build the host image, start the link proxy and the observer,
# lay out the shared disk. Sets $w (the work directory).
bed_start() {
	local f inputs
	vm_need_base $E2E_VIRTIO
	for f in "$vm_ftko" "$FTD" "$FTCTL" "$FTRING" "$e2e_out/linkproxy" "$e2e_out/observer"; do
		[ -e "$f" ] || { echo "bed: missing $f (make modules daemon selftests, make -C selftests/e2e)" >&2; exit 2; }
	done
	mkdir -p "$e2e_out"
	w=$(mktemp -d "$e2e_out/run.XXXXXX")
	trap bed_stop EXIT
	inputs=$w/inputs
	{
		vm_inputs_base $E2E_VIRTIO
		echo "$e2e_here/hostinit init"
		echo "$e2e_here/hostctl bin/hostctl"
		echo "$FTD bin/ftd"
		echo "$FTCTL bin/ftctl"
		echo "$FTRING bin/tool_ftring"
		[ -x "$FTVM" ] && echo "$FTVM bin/ftvm"
		vm_inputs_libs "$FTD" "$FTCTL" "$FTRING"
	} > "$inputs"
	e2e_rundir=$(vm_image "$e2e_out/image" "$inputs")
	e2e_key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

	mkfifo "$w/proxy.ctl" "$w/obs.in" "$w/obs.out"
	for h in A B; do mkfifo "$w/$h.ctl.in" "$w/$h.ctl.out" "$w/$h.out.in" "$w/$h.out.out"; done
	"$e2e_out/linkproxy" "$w/ports" "$w/proxy.ctl" > "$w/proxy.log" 2>&1 &
	proxy_pid=$!
	"$e2e_out/observer" "$w/observer.log" "$w/obs.in" "$w/obs.out" A="$w/A.out.out" B="$w/B.out.out" \
		> "$w/observer.out" 2>&1 &
	obs_pid=$!
	exec {obs_w}<>"$w/obs.in" {obs_r}<>"$w/obs.out" {proxy_w}<>"$w/proxy.ctl"
	for _ in $(seq 50); do [ -s "$w/ports" ] && break; sleep 0.1; done
	read -r port_A port_B < "$w/ports" || { echo "bed: linkproxy did not start" >&2; exit 1; }
	truncate -s 16M "$w/shared.img"
	"$FTCTL" format-disk "$w/shared.img" --first-primary 1 > "$w/format.log" 2>&1 ||
		{ cat "$w/format.log" >&2; exit 1; }
	e2e_log "bed in $w: link proxy on ports $port_A/$port_B, shared disk formatted, first primary node 1"
}

bed_stop() {
	local h
	for h in A B; do [ -n "${qpid[$h]:-}" ] && kill -9 "${qpid[$h]}" 2>/dev/null; done
	[ -n "${proxy_pid:-}" ] && kill "$proxy_pid" 2>/dev/null
	[ -n "${obs_pid:-}" ] && kill "$obs_pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "${e2e_rundir:-/nonexistent}"
	if [ -n "${KEEP:-}" ]; then echo "# bed: kept $w" >&2; else rm -rf "${w:-/nonexistent}"; fi
}

# bed_boot HOST...: boot them (in parallel), wait for each to be ready.
bed_boot() {
	local h
	for h in "$@"; do bed_launch "$h"; done
	for h in "$@"; do bed_ready "$h" || return 1; done
}

# bed_launch HOST (A|B): start its QEMU.
bed_launch() {
	local h=$1 node=1 port=$port_A mac fd
	[ "$h" = B ] && node=2 port=$port_B
	mac=52:54:00:fe:00:0$node
	console[$h]=$w/$h.console.$(date +%s%N)
	# A restarted host gets fresh FIFO readers: drop what the old one left.
	if [ -n "${ctl_in[$h]:-}" ]; then
		fd=${ctl_in[$h]}; exec {fd}>&-
		fd=${ctl_out[$h]}; exec {fd}<&-
	fi
	rm -f "$w/$h.ctl.in" "$w/$h.ctl.out" && mkfifo "$w/$h.ctl.in" "$w/$h.ctl.out"
	exec {fd}<>"$w/$h.ctl.in"; ctl_in[$h]=$fd
	exec {fd}<>"$w/$h.ctl.out"; ctl_out[$h]=$fd
	boot_t0[$h]=$SECONDS
	qemu-system-x86_64 -accel tcg -cpu max -m "${E2E_MEM:-1536}" -smp 1 \
		-display none -monitor none -no-reboot -nodefaults \
		-kernel "$vm_kernel" -initrd "$e2e_rundir/initrd.gz" \
		-append "$vm_append ft.node=$node ft.key=$e2e_key ft.nonce=$e2e_nonce ft.peer_timeout=$e2e_peer_timeout" \
		-chardev file,id=con,path="${console[$h]}" -serial chardev:con \
		-chardev pipe,id=side,path="$w/$h.ctl" -serial chardev:side \
		-chardev pipe,id=out,path="$w/$h.out" -serial chardev:out \
		-drive file="$w/shared.img",format=raw,if=none,id=d0,cache=none,file.locking=off \
		-device virtio-blk-pci,drive=d0,share-rw=on \
		-netdev socket,id=n0,connect=127.0.0.1:$port -device virtio-net-pci,netdev=n0,mac=$mac \
		> "$w/$h.qemu.log" 2>&1 < /dev/null &
	qpid[$h]=$!
	disown "${qpid[$h]}"	# its death is the test, not news for the shell
}

# bed_ready HOST: wait (up to 240 s: the machine may be busy) for READY on its side channel.
bed_ready() {
	local h=$1 line
	while read -r -t 240 -u "${ctl_out[$h]}" line; do
		case $line in
		"READY $e2e_nonce")
			e2e_log "host $h booted in $((SECONDS - boot_t0[$h])) s (qemu pid ${qpid[$h]})"
			return 0 ;;
		"BOOTFAIL $e2e_nonce"*)
			e2e_log "host $h failed to boot: ${line#BOOTFAIL * }"
			tail -n 40 "${console[$h]}" | sed 's/^/# console: /'
			return 1 ;;
		esac
	done
	e2e_log "host $h: no READY within 240 s"
	tail -n 40 "${console[$h]}" | sed 's/^/# console: /'
	return 1
}

# bed_kill HOST: kill -9 its QEMU (a fail-stop of the whole host); prints the
# time in ms. The observer then drops the line the host was writing, if any.
bed_kill() {
	local t
	t=$(e2e_now)
	kill -9 "${qpid[$1]}"
	while kill -0 "${qpid[$1]}" 2>/dev/null; do sleep 0.05; done
	qpid[$1]=
	obs cut "$1" > /dev/null
	echo "$t"
}

# bed_alive HOST: its QEMU still runs.
bed_alive() { [ -n "${qpid[$1]:-}" ] && kill -0 "${qpid[$1]}" 2>/dev/null; }

# on HOST SECONDS COMMAND...: run COMMAND on the host (through hostinit's
# side channel), print its output; its exit status, or 124 on timeout.
on() {
	local h=$1 t=$2 tag id rest end
	shift 2
	agent_id=$((agent_id + 1))
	bed_alive "$h" || { echo "bed: host $h is not running" >&2; return 125; }
	echo "$agent_id $*" >&"${ctl_in[$h]}"
	end=$((SECONDS + t))
	while [ $SECONDS -le $end ] && read -r -t "$t" -u "${ctl_out[$h]}" tag id rest; do
		[ "$id" = "$agent_id" ] || continue
		case $tag in
		R) printf '%s\n' "$rest" ;;
		E) return "$rest" ;;
		esac
	done
	return 124
}

# json KEY: one value from the JSON object on stdin.
json() { python3 -c "import json,sys; print(json.load(sys.stdin).get('$1',''))" 2>/dev/null; }

# st HOST KEY: one value of ftd's status on the host.
st() { on "$1" 10 hostctl status | json "$2"; }

# wait_st SECONDS HOST KEY VALUE
wait_st() {
	local end=$((SECONDS + $1))
	while [ $SECONDS -le $end ]; do
		[ "$(st "$2" "$3")" = "$4" ] && return 0
		sleep 0.2
	done
	return 1
}

# clock_offset HOST: the host's CLOCK_REALTIME minus ours, in ms: the
# midpoint of the shortest of 5 round trips (printed: the error bar is half).
clock_offset() {
	local t0 t1 g i best=999999 off
	for i in 1 2 3 4 5; do
		t0=$(e2e_now)
		g=$(on "$1" 10 clock) || return 1
		t1=$(e2e_now)
		[ $((t1 - t0)) -lt $best ] && best=$((t1 - t0)) off=$((g - (t0 + t1) / 2))
	done
	echo "$off"
	echo "# clock of host $1: offset $off ms, best round trip $best ms" >&2
}

# event_ms HOST OFFSET PATTERN: when (our clock, ms) the host's ftd logged
# the first event matching PATTERN; empty if none.
event_ms() {
	events_since "$1" "$2" 0 "$3" | awk '{ print $4; exit }'
}

# events_since HOST OFFSET T [PATTERN]: the host's ftd events (those
# matching PATTERN), each as "# HOST events: MS message", MS from T (our clock).
events_since() {
	on "$1" 10 hostctl events | python3 -c '
import json, re, sys
host, off, t, pat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
for l in sys.stdin:
    try:
        e = json.loads(l)
    except ValueError:
        continue
    if re.search(pat, e.get("message", "")):
        print("# %s events: %d ms %s" % (host, int(e["time_ms"]) - off - t, e["message"]))' \
		"$1" "$2" "$3" "${4:-}"
}

# obs COMMAND...: ask the observer; prints its one-line answer.
obs() {
	local line
	echo "$*" >&"$obs_w"
	read -r -t 10 -u "$obs_r" line || { echo "bed: observer did not answer '$*'" >&2; return 1; }
	echo "$line"
}

# obs_trouble REPORT: if the observer's REPORT counts a violation or noise,
# print the last of them (and of the dropped unfinished lines) from its log,
# each with the two lines before it,
# control bytes shown (a garbled line is evidence; the work directory is
# gone after the run unless KEEP=1).
obs_trouble() {
	[[ $1 == *" violations=0 "* && $1 == *" noise=0"* ]] && return 0
	grep -a -B2 -E "^[0-9]+ ([AB] noise|[AB] cut|VIOLATION) " "$w/observer.log" | tail -n 24 |
		cat -v | sed 's/^/# observer.log: /'
}

# obs_get KEY: one key=value of the observer's report.
obs_get() { obs report | kv "$1"; }

# kv KEY: one value of a "key=value ..." line on stdin.
kv() { tr ' ' '\n' | sed -n "s/^$1=//p"; }

# link COMMAND: tell the link proxy (cut, heal, ...).
link() { echo "$*" >&"$proxy_w"; }

# link_ask COMMAND N: tell the link proxy, print the N lines it logs in
# answer (without its timestamp), waiting up to 5 s for them.
link_ask() {
	local before i
	before=$(wc -l < "$w/proxy.log")
	link "$1"
	for i in $(seq 50); do
		[ "$(tail -n +$((before + 1)) "$w/proxy.log" | grep -c "linkproxy: $1")" -ge "$2" ] && break
		sleep 0.1
	done
	tail -n +$((before + 1)) "$w/proxy.log" | sed -n "s/^[0-9.]* linkproxy: \($1.*\)/\1/p"
}

# console_clean HOST: the host's console shows no splat or panic.
console_clean() {
	! grep -q -E "Kernel panic|$(sed -n "s/^splat_re='\(.*\)'$/\1/p" "$TOP/selftests/vm/guestlib.sh")" "${console[$1]}"
}

e2e_nonce=$(vm_nonce)
