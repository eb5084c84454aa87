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
#                 again: its ftd finds the epoch moved on and never goes
#                 live; it is re-protected (B snapshots its VM, seeds A's,
#                 wins the next epoch: A backup, B primary). Then B is
#                 killed: A goes live from the seeded state, no gap.
#   kill-backup   kill -9 B's QEMU: A goes live alone, outputs continue from A;
#                 B boots again and is re-protected as A's backup.
#   cut-link      the link proxy drops everything, both hosts alive: exactly
#                 one goes live, the other halts, never both.
#   failover      ftctl failover on A: roles swap (ftctl status on both), the
#                 outputs continue from B with none lost and none repeated;
#                 then kill -9 the new primary B: A (now backup) goes live
#                 alone as in kill-primary; B boots again, never goes live,
#                 and is re-protected (skipped while ftd refuses a planned
#                 failover).
#   steady        the pair left alone E2E_STEADY seconds (30): no false
#                 detection on a healthy link (roles, channel, no peer
#                 declared dead), the outputs go on. Run in the first trial
#                 only: it is mostly waiting, and every other trial checks
#                 that no peer was declared dead before its failure.
#
# Without ftvm ($BUILD/vmm/ftvm), or an ftd that serves no VMM, the primary's
# log is the test producer's (daemon/tests/tool_ftring) and the output checks
# are skipped (TAP SKIP, with the reason).
# Figures per trial: detection and go-live time (the survivor's ftd events,
# clocks compared over the side channel), backup lag just before the failure,
# output gap and resume time (the observer); the silences on the link from
# the pair's start to the failure (the link proxy: the longest per trial,
# each one of 500 ms or more, a histogram over the run) and as each ftd saw
# them (max_heartbeat_gap_ms); for
# failover each ftvm's pause and swap time and the output gap.
#
# Environment: KVM_FT_SEED (re-run), E2E_TRIALS (trials per scenario, 3),
# E2E_SCENARIOS (default "steady kill-primary kill-backup cut-link failover"),
# E2E_STEADY (seconds of the steady scenario, 30).
set -u
. "$(dirname "$0")/pair.sh"

echo "TAP version 13"
echo "# seed $seed (re-run with KVM_FT_SEED=$seed)"
[ $with_vm = 1 ] || echo "# $vm_why: the primary's log comes from the test producer; output checks skipped"
trials=${E2E_TRIALS:-3}
scenarios=${E2E_SCENARIOS:-steady kill-primary kill-backup cut-link failover}
bed_start
bed_boot A B
ok $? "hosts A and B booted (nested KVM, kvm_ft, virtio net/blk)"
on A 10 hostctl ping > /dev/null && on B 10 hostctl ping > /dev/null
ok $? "the link works both ways (192.0.2.1 <-> 192.0.2.2 through the proxy)"
if [ -x "$FTVM" ]; then
	r=$(on A 180 hostctl standalone 20)
	ok $? "ftvm runs the guest on host A without ftd (nested KVM): 20 outputs"
	echo "$r" | sed 's/^/# standalone ftvm: /'
fi

for trial in $(seq "$trials"); do
	for sc in $scenarios; do
		[ "$sc" = steady ] && [ "$trial" -gt 1 ] && continue
		tag="$sc#$trial"
		pair_up "$tag"
		ok $? "$tag: pair up, channel up"
		case $sc in
		steady)
			sleep "${E2E_STEADY:-30}"
			gaps_window "$tag"
			on A 10 hostctl status > "$w/A.status"
			on B 10 hostctl status > "$w/B.status"
			dead=$( (on A 10 hostctl events; on B 10 hostctl events) | grep -c "declared dead")
			[ "$(json role < "$w/A.status")" = primary ] && [ "$(json role < "$w/B.status")" = backup ] &&
				[ "$(json channel < "$w/A.status")" = up ] && [ "$dead" = 0 ]
			ok $? "$tag: ${E2E_STEADY:-30} s left alone: A primary, B backup, channel up, $dead peers declared dead (longest heartbeat gap: A $(json max_heartbeat_gap_ms < "$w/A.status") ms, B $(json max_heartbeat_gap_ms < "$w/B.status") ms)"
			outputs_continue "$tag" A ;;
		kill-primary)
			kill_host "$tag" A B
			restart "$tag" A primary B kill ;;
		kill-backup)
			kill_host "$tag" B A
			restart "$tag" B backup A ;;
		cut-link)
			sleep "$((RANDOM % 3)).$((RANDOM % 10))"
			gaps_window "$tag"
			echo "# $tag: longest heartbeat gap so far: A $(st A max_heartbeat_gap_ms) ms, B $(st B max_heartbeat_gap_ms) ms"
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
			figures "$tag" "$live" "$t" ""
			outputs_continue "$tag" "$live"
			link heal ;;
		failover)
			planned_failover "$tag"
			[ $? = 2 ] && continue	# ftd refuses it
			kill_host "$tag" B A B A
			restart "$tag" B backup A ;;
		*) echo "scenarios: unknown scenario $sc" >&2; exit 2 ;;
		esac
	done
done

link_ask gaps 2 | sed 's/^/# figures link silences over the run: /'
grep " linkproxy: silence " "$w/proxy.log" | while read -r t _ what; do
	echo "# $(date -u -d "@${t%.*}" +%T).${t#*.} link $what"
done
[ $with_vm = 1 ] && delay_figures
for h in A B; do
	bed_alive $h || continue
	on $h 10 hostctl scan > "$w/scan" && console_clean $h
	ok $? "host $h: no kernel splat"
done
r=$(obs report)
echo "# observer: $r"
obs_trouble "$r"
[[ $r == *" violations=0 "* ]]
ok $? "observer: no invariant broken over the run"
finish
