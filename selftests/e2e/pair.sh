# SPDX-License-Identifier: GPL-2.0
#
# A protected pair on the two-host bed (sourced by scenarios.sh and demo.sh,
# after bed.sh): start it, fail it, measure it, check what the survivor and
# the observer show. Sets seed (KVM_FT_SEED or random; RANDOM is seeded).

. "$(dirname "${BASH_SOURCE[0]}")/bed.sh"

seed=${KVM_FT_SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$seed

# The guest runs when ftvm is built and ftd takes its log from a VMM (it
# knows the config key vmm_socket); else the test producer fills the ring.
with_vm=0 vm_why=
if [ ! -x "$FTVM" ]; then
	vm_why="no $FTVM"
elif ! grep -qa vmm_socket "$FTD"; then
	vm_why="ftd does not serve a VMM yet (no vmm_socket)"
else
	with_vm=1
fi
ring=vm
[ $with_vm = 1 ] || ring=file

# pair_up TAG: a fresh protected pair, A primary, B backup, in sync.
pair_up() {
	local h s
	for h in A B; do on $h 20 hostctl stop > /dev/null; done
	link gaps off	# the last pair's window, if still open, ends
	# A new guest: its numbers start again (after what the old one's last
	# lines may still have in flight on the serial ports).
	sleep 1
	obs reset "$1" > /dev/null
	"$FTCTL" format-disk "$w/shared.img" --first-primary 1 > /dev/null || return 1
	on B 10 hostctl ftd backup $ring && on A 10 hostctl ftd primary $ring || return 1
	# The silences on the link count from the first frame of this pair on
	# (its first session, the VMs' attach, the session restart) until the
	# failure (gaps_window) or the next pair.
	link gaps on
	if [ $with_vm = 1 ]; then
		# Both run the same guest (same seed: the devices' random choices
		# on the backup come from the log, but the image must match).
		s=$RANDOM
		on B 10 hostctl vm e2e "$s" > /dev/null && on A 10 hostctl vm e2e "$s" > /dev/null || return 1
		e2e_log "$1: ftd and ftvm started on both hosts"
	else
		s=$RANDOM
		on B 10 hostctl consume "$s" > /dev/null && on A 10 hostctl produce "$s" 100000000 2000 > /dev/null ||
			return 1
	fi
	wait_st 90 A channel up || { e2e_log "$1: channel never came up"; return 1; }
	[ $with_vm = 1 ] || return 0
	# The guest's outputs flow from A before anything is done to the pair.
	local end=$((SECONDS + 120))
	while [ $SECONDS -le $end ]; do
		[ "$(obs_get new)" -ge 3 ] 2>/dev/null && [ "$(obs_get owner)" = A ] && return 0
		sleep 0.5
	done
	e2e_log "$1: no outputs from A within 120 s"
	return 1
}

# figures TAG SURVIVOR T_FAIL LAG: failure-to-event times from the survivor's
# ftd; its detection must come after the failure (else the pair had failed
# over already: a false detection, whatever the checks before saw).
figures() {
	local tag=$1 s=$2 t=$3 lag=$4 off d l
	off=$(clock_offset "$s")
	d=$(event_ms "$s" "$off" "declared dead")
	l=$(event_ms "$s" "$off" "LIVE alone")
	events_since "$s" "$off" "$t" | tail -n 8
	detect_ms=$([ -n "$d" ] && echo $((d - t)) || echo -)
	golive_ms=$([ -n "$l" ] && echo $((l - t)) || echo -)
	obs note detect_ms "$detect_ms" > /dev/null
	obs note golive_ms "$golive_ms" > /dev/null
	obs note backup_lag_records "${lag:--}" > /dev/null
	echo "# figures $tag: detection ${detect_ms} ms, go-live ${golive_ms} ms after the failure (peer_timeout $e2e_peer_timeout), backup lag ${lag:--} records"
	[ "$detect_ms" != - ] && [ "$detect_ms" -gt 0 ]
	ok $? "$tag: $s declared its peer dead after the failure, not before (${detect_ms} ms)"
}

# outputs_continue TAG HOST: the stream goes on from HOST, invariants held.
outputs_continue() {
	local tag=$1 h=$2 r end=$((SECONDS + 60))
	[ $with_vm = 1 ] || { skip "$tag: outputs continue from $h" "$vm_why"; return; }
	while [ $SECONDS -le $end ]; do
		r=$(obs report)
		[ "$(kv new <<< "$r")" -ge 5 ] 2>/dev/null &&
			[[ $r == *" owner=$h "* ]] && break
		sleep 0.5
	done
	echo "# $r"
	obs_trouble "$r"
	if [ "$(kv switches <<< "$r")" = 1 ]; then
		echo "# figures $tag: outputs: take-over by $h at output $(kv takeover <<< "$r")," \
			"$(kv takeover_gap_ms <<< "$r") ms after the old primary's last output," \
			"$(kv takeover_ms <<< "$r") ms after the kill; $(kv dups <<< "$r") duplicates"
	else
		echo "# figures $tag: outputs: $h went on; longest silence $(kv max_gap_ms <<< "$r") ms;" \
			"$(kv dups <<< "$r") duplicates"
	fi
	[[ $r == *" owner=$h "* ]] && [[ $r == *" violations=0 "* ]] &&
		[ "$(kv new <<< "$r")" -ge 5 ]
	ok $? "$tag: outputs continue from $h: no gap, no contradiction, one host live"
}

# gaps_window TAG: end the link proxy's silence measurement that started
# with the pair's ftd (pair_up); print its longest silences.
gaps_window() {
	echo "# figures $1: link before the failure: $(link_ask "gaps off" 1) (load $(cut -d' ' -f1-3 /proc/loadavg))"
}

# kill_host TAG VICTIM SURVIVOR [PRIMARY BACKUP]: kill -9 the victim's QEMU
# at a random moment; the survivor goes live alone, the outputs continue
# from it. The pair's roles before the kill: A primary, B backup, unless
# given (after a planned failover).
kill_host() {
	local tag=$1 victim=$2 surv=$3 pri=${4:-A} bak=${5:-B} lag t
	sleep "$((RANDOM % 3)).$((RANDOM % 10))"
	# Just before: the pair is in sync (no false detection so far).
	on A 10 hostctl status > "$w/A.status"
	on B 10 hostctl status > "$w/B.status"
	lag=$(json lag_records < "$w/$pri.status")
	[ "$(json role < "$w/$pri.status")" = primary ] && [ "$(json role < "$w/$bak.status")" = backup ] &&
		[ "$(json channel < "$w/$pri.status")" = up ]
	ok $? "$tag: before the kill $pri is primary, $bak backup, channel up (longest heartbeat gap so far: A $(json max_heartbeat_gap_ms < "$w/A.status") ms, B $(json max_heartbeat_gap_ms < "$w/B.status") ms)"
	if [ $with_vm = 0 ]; then
		on B 10 hostctl consumer > "$w/consumer"
		ok $? "$tag: the backup verified every record it received byte-exact ($(cat "$w/consumer"))"
	fi
	gaps_window "$tag"
	t=$(e2e_now)
	obs mark "$tag" "$t" > /dev/null
	t=$(bed_kill "$victim")
	e2e_log "$tag: killed host $victim's QEMU (lag $lag records)"
	wait_st 30 "$surv" role live-alone
	ok $? "$tag: $surv declared $victim dead, won the disk, live alone ($(st "$surv" arbitration))"
	figures "$tag" "$surv" "$t" "$lag"
	outputs_continue "$tag" "$surv"
}

# planned_failover TAG: ftctl failover on A (the primary): the roles swap
# (ftctl status on both), the outputs go on from B with no output lost and
# none repeated. Figures: each ftvm's pause and swap time, the output gap.
# Returns 2 (a TAP SKIP) if ftd refuses a planned failover.
planned_failover() {
	local tag=$1 r t end rc
	sleep "$((RANDOM % 3)).$((RANDOM % 10))"
	t=$(e2e_now)
	obs mark "$tag" "$t" > /dev/null
	on A 60 ftctl failover > "$w/failover.out" 2>&1
	rc=$?
	if [ $rc = 4 ]; then
		skip "$tag: planned failover" "ftd refuses it: $(head -n1 "$w/failover.out")"
		return 2
	fi
	ok $rc "$tag: ftctl failover on A: $(head -n1 "$w/failover.out")"
	wait_st 30 A role backup && wait_st 30 B role primary
	ok $? "$tag: roles swapped in ftctl status: A $(st A role), B $(st B role)"
	[ $with_vm = 1 ] || { skip "$tag: outputs continue from B, none lost or repeated" "$vm_why"; return; }
	end=$((SECONDS + 60))
	while [ $SECONDS -le $end ]; do
		r=$(obs report)
		[ "$(kv new <<< "$r")" -ge 5 ] 2>/dev/null && [[ $r == *" owner=B "* ]] && break
		sleep 0.5
	done
	echo "# $r"
	obs_trouble "$r"
	on A 10 hostctl vmswap | sed 's/^/# figures '"$tag"': A (was primary): /'
	on B 10 hostctl vmswap | sed 's/^/# figures '"$tag"': B (was backup): /'
	echo "# figures $tag: outputs: B's first output $(kv takeover <<< "$r")," \
		"$(kv takeover_gap_ms <<< "$r") ms after A's last (the output gap)," \
		"$(kv takeover_ms <<< "$r") ms after ftctl failover; $(kv dups <<< "$r") duplicates"
	[[ $r == *" owner=B "* ]] && [[ $r == *" violations=0 "* ]] &&
		[ "$(kv dups <<< "$r")" = 0 ] && [ "$(kv switches <<< "$r")" = 1 ]
	ok $? "$tag: outputs continue from B: none lost, none repeated, one host live"
}

# restart TAG HOST ROLE OTHER [kill]: HOST (killed before) boots again and
# its ftd and VM start; it finds the epoch moved on and never goes live.
# With a VM it asks to be re-protected: OTHER snapshots its live VM and
# seeds HOST's, wins the next epoch, and the pair is protected again (HOST
# backup, OTHER primary). With "kill", OTHER is then killed: HOST goes live
# from the seeded state, the outputs continue without a gap; OTHER boots
# again for the next trial.
restart() {
	local tag=$1 h=$2 role=$3 other=$4 then=${5:-} live=0 r ro end t
	bed_boot "$h"
	ok $? "$tag: host $h booted again"
	t=$(e2e_now)
	on "$h" 10 hostctl ftd "$role" $ring > /dev/null
	[ $with_vm = 1 ] && on "$h" 10 hostctl vm e2e 1 > /dev/null
	end=$((SECONDS + 120))
	while [ $SECONDS -le $end ]; do
		r=$(st "$h" role) ro=$(st "$other" role)
		[ "$r" = live-alone ] && live=1
		[ $with_vm = 0 ] && [ "$r" = halted ] && break
		[ "$r" = backup ] && [ "$ro" = primary ] && break
		sleep 0.5
	done
	e2e_log "$tag: restarted $h is $r ($(st "$h" arbitration)), $other is $ro, $(( $(e2e_now) - t )) ms after its ftd started"
	if [ $with_vm = 0 ]; then
		[ $live = 0 ] && [ "$(st "$other" role)" = live-alone ]
		ok $? "$tag: restarted $h never went live ($r), $other still live alone"
		return
	fi
	on "$other" 10 hostctl status > "$w/$other.status"
	events_since "$other" "$(clock_offset "$other")" "$t" "re-protection|sync|snapshot|seed|SYNCING|syncing" |
		tail -n 10
	[ $live = 0 ] && [ "$r" = backup ] && [ "$ro" = primary ]
	ok $? "$tag: restarted $h never went live; re-protected: $h backup, $other primary (epoch $(json epoch < "$w/$other.status"), sync $(json sync < "$w/$other.status"))"
	# One word: the observer's marks take one.
	outputs_continue "$tag/re-protected" "$other"
	[ "$then" = kill ] || return 0
	kill_host "$tag/re-protected" "$other" "$h" "$other" "$h"
	bed_boot "$other"
	ok $? "$tag: host $other booted again"
}


# delay_figures: the output delay (guest's OUT exit -> line written) on a
# primary whose backup is in sync, against ftvm alone without ftd or kvm_ft:
# the difference is what the output rule adds.
delay_figures() {
	local p a
	pair_up delay || { ok 1 "delay: pair up"; return; }
	sleep 10
	p=$(on A 20 hostctl vmstats)
	for h in A B; do on $h 20 hostctl stop > /dev/null; done
	a=$(on A 180 hostctl standalone 100)
	ok $? "delay: ftvm standalone ran 100 outputs"
	echo "# figures protected primary, $p"
	echo "# figures standalone ftvm, $a"
}
