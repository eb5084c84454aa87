#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The end-to-end scenarios on the two-host bed (bed.sh), one boot of the pair
# for all of them; each trial starts a fresh protected pair (A primary, B
# backup, the shared disk re-formatted) and checks its invariants:
#
#   kill-primary  kill -9 A's QEMU at a random moment: B declares A dead,
#                 wins the disk and goes live alone; the outputs continue
#                 from B without a gap or a contradiction. Then A boots
#                 again: its ftd finds the epoch moved on and never goes live.
#   kill-backup   kill -9 B's QEMU: A goes live alone, outputs continue from A.
#   cut-link      the link proxy drops everything, both hosts alive: exactly
#                 one goes live, the other halts, never both.
#   failover      ftctl failover: roles swap, no loss, no duplicate (skipped
#                 while ftd refuses it).
#
# Without ftvm ($BUILD/vmm/ftvm), or an ftd that serves no VMM, the primary's
# log is the test producer's (daemon/tests/tool_ftring) and the output checks
# are skipped (TAP SKIP, with the reason).
# Figures per trial: detection and go-live time (the survivor's ftd events,
# clocks compared over the side channel), backup lag just before the failure,
# output gap and resume time (the observer).
#
# Environment: KVM_FT_SEED (re-run), E2E_TRIALS (trials per scenario, 1),
# E2E_SCENARIOS (default "kill-primary kill-backup cut-link failover").
set -u
. "$(dirname "$0")/bed.sh"

seed=${KVM_FT_SEED:-$((RANDOM * 32768 + RANDOM))}
echo "TAP version 13"
echo "# seed $seed (re-run with KVM_FT_SEED=$seed)"
RANDOM=$seed
trials=${E2E_TRIALS:-1}
scenarios=${E2E_SCENARIOS:-kill-primary kill-backup cut-link failover}
# The guest runs when ftvm is built and ftd takes its log from a VMM (it
# knows the config key vmm_socket); else the test producer fills the ring.
with_vm=0
if [ ! -x "$FTVM" ]; then
	echo "# no $FTVM: the primary's log comes from the test producer; output checks skipped"
elif ! grep -qa vmm_socket "$FTD"; then
	echo "# ftd does not serve a VMM yet (no vmm_socket): the test producer's log; output checks skipped"
else
	with_vm=1
fi

# pair_up TAG: a fresh protected pair, A primary, B backup, in sync.
pair_up() {
	local h
	for h in A B; do on $h 20 hostctl stop > /dev/null; done
	"$FTCTL" format-disk "$w/shared.img" --first-primary 1 > /dev/null || return 1
	on B 10 hostctl ftd backup && on A 10 hostctl ftd primary || return 1
	wait_st 30 A channel up || { e2e_log "$1: channel never came up"; return 1; }
	if [ $with_vm = 1 ]; then
		on B 10 hostctl vm e2e "$RANDOM" > /dev/null && on A 10 hostctl vm e2e "$RANDOM" > /dev/null
	else
		on A 10 hostctl produce "$RANDOM" 100000000 2000 > /dev/null
	fi
}

# figures TAG SURVIVOR T_KILL LAG: failure-to-event times from the survivor's ftd.
figures() {
	local tag=$1 s=$2 t=$3 lag=$4 off d l
	off=$(clock_offset "$s")
	d=$(event_ms "$s" "$off" "declared dead")
	l=$(event_ms "$s" "$off" "LIVE alone")
	detect_ms=$([ -n "$d" ] && echo $((d - t)) || echo -)
	golive_ms=$([ -n "$l" ] && echo $((l - t)) || echo -)
	obs note detect_ms "$detect_ms" > /dev/null
	obs note golive_ms "$golive_ms" > /dev/null
	obs note backup_lag_records "${lag:--}" > /dev/null
	echo "# figures $tag: detection ${detect_ms} ms, go-live ${golive_ms} ms after the kill (peer_timeout ${E2E_PEER_TIMEOUT:-1000ms}), backup lag ${lag:--} records"
}

# outputs_continue TAG HOST: the stream goes on from HOST, invariants held.
outputs_continue() {
	local tag=$1 h=$2 r end=$((SECONDS + 60))
	[ $with_vm = 1 ] || { skip "$tag: outputs continue from $h" "no ftvm"; return; }
	while [ $SECONDS -le $end ]; do
		r=$(obs report)
		[ "$(sed -n 's/.*\bnew=\([0-9]*\).*/\1/p' <<< "$r")" -ge 5 ] 2>/dev/null &&
			[[ $r == *" owner=$h "* ]] && break
		sleep 0.5
	done
	echo "# $r"
	[[ $r == *" owner=$h "* ]] && [[ $r == *" violations=0 "* ]] &&
		[ "$(sed -n 's/.*\bnew=\([0-9]*\).*/\1/p' <<< "$r")" -ge 5 ]
	ok $? "$tag: outputs continue from $h: no gap, no contradiction, one host live"
}

# kill_host TAG VICTIM SURVIVOR: kill -9 the victim's QEMU at a random
# moment; the survivor goes live alone, the outputs continue from it.
kill_host() {
	local tag=$1 victim=$2 surv=$3 lag t
	sleep "$((RANDOM % 3)).$((RANDOM % 10))"
	lag=$(st A lag_records)
	t=$(e2e_now)
	obs mark "$tag" "$t" > /dev/null
	t=$(bed_kill "$victim")
	e2e_log "$tag: killed host $victim's QEMU (lag $lag records)"
	wait_st 30 "$surv" role live-alone
	ok $? "$tag: $surv declared $victim dead, won the disk, live alone ($(st "$surv" arbitration))"
	figures "$tag" "$surv" "$t" "$lag"
	outputs_continue "$tag" "$surv"
}

# restart TAG HOST ROLE OTHER: boot the dead host again, start its ftd: it must
# not go live (the epoch moved on), the survivor stays the only live node.
restart() {
	local tag=$1 h=$2 role=$3 other=$4 live=0 r end
	bed_boot "$h"
	ok $? "$tag: host $h booted again"
	on "$h" 10 hostctl ftd "$role" > /dev/null
	end=$((SECONDS + 10))
	while [ $SECONDS -le $end ]; do
		r=$(st "$h" role)
		[ "$r" = live-alone ] && live=1
		[ "$r" = halted ] && break
		sleep 0.5
	done
	e2e_log "$tag: restarted $h is $r ($(st "$h" arbitration)), $other is $(st "$other" role)"
	[ $live = 0 ] && [ "$(st "$other" role)" = live-alone ]
	ok $? "$tag: restarted $h never went live ($r), $other still live alone"
}

bed_start
bed_boot A B
ok $? "hosts A and B booted (nested KVM, kvm_ft, virtio net/blk)"
on A 10 hostctl ping > /dev/null && on B 10 hostctl ping > /dev/null
ok $? "the link works both ways (192.0.2.1 <-> 192.0.2.2 through the proxy)"

for trial in $(seq "$trials"); do
	for sc in $scenarios; do
		tag="$sc#$trial"
		pair_up "$tag"
		ok $? "$tag: pair up, channel up"
		case $sc in
		kill-primary)
			kill_host "$tag" A B
			restart "$tag" A primary B ;;
		kill-backup)
			kill_host "$tag" B A
			restart "$tag" B backup A ;;
		cut-link)
			sleep "$((RANDOM % 3)).$((RANDOM % 10))"
			t=$(e2e_now)
			obs mark "$tag" "$t" > /dev/null
			link cut
			e2e_log "$tag: link cut"
			for i in $(seq 60); do
				ra=$(st A role) rb=$(st B role)
				[ "$ra" = live-alone ] && [ "$rb" = live-alone ] && break
				[ "$ra" = halted ] || [ "$rb" = halted ] && [ "$ra" != "$rb" ] &&
					{ [ "$ra" = live-alone ] || [ "$rb" = live-alone ]; } && break
				sleep 0.5
			done
			e2e_log "$tag: A is $ra ($(st A arbitration)), B is $rb ($(st B arbitration))"
			{ [ "$ra" = live-alone ] && [ "$rb" = halted ]; } || { [ "$ra" = halted ] && [ "$rb" = live-alone ]; }
			ok $? "$tag: exactly one live ($ra / $rb), the other halted"
			sleep 2
			[ "$(st A role)" = "$ra" ] && [ "$(st B role)" = "$rb" ]
			ok $? "$tag: 2 s later still so"
			live=A; [ "$rb" = live-alone ] && live=B
			outputs_continue "$tag" "$live"
			link heal ;;
		failover)
			on A 20 ftctl failover > "$w/failover.out"
			rc=$?
			if [ $rc = 4 ]; then
				skip "$tag: planned failover" "ftd refuses it: $(head -n1 "$w/failover.out")"
			else
				ok $rc "$tag: ftctl failover"
			fi ;;
		*) echo "scenarios: unknown scenario $sc" >&2; exit 2 ;;
		esac
	done
done

for h in A B; do
	bed_alive $h || continue
	on $h 10 hostctl scan > "$w/scan" && console_clean $h
	ok $? "host $h: no kernel splat"
done
r=$(obs report)
echo "# observer: $r"
[[ $r == *" violations=0 "* ]]
ok $? "observer: no invariant broken over the run"
finish
