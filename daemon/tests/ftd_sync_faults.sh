#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Re-protection's failures, between two real ftd with tool_ftvmm VMs, the
# snapshot transfer paced (sync_rate) so that "mid-transfer" is checked in
# ftctl status --json before anything is killed. Proves the invariants hold
# (never two live, nothing acked lost, nothing emitted twice):
#  - the live node killed mid-transfer: the returning node halts and never
#    goes live (it has no acked state), the disk stays at epoch 1;
#  - the returning node killed mid-transfer: the live node goes back to
#    live alone, its VM gets GO_LIVE (its held outputs leave), and a later
#    return is re-protected;
#  - a corrupt snapshot: the new backup's VMM refuses it, its node says so
#    and halts, the live node goes live alone again;
#  - the live VMM refuses SNAPSHOT: live alone again, the VM never stopped
#    being live (no GO_LIVE), the returning node halts.
# ftctl status of both nodes mid-transfer matches tests/golden/status-syncing.txt
# and status-seeding.txt (numbers masked).
set -u
. "$(dirname "$0")/ftdlib.sh.inc"
need
. "$here/ftdvm.sh.inc"
rate=$((1000 + RANDOM % 1000))
echo "# seed $seed: stream of $rate records/s, 8 MiB snapshots sent at 1 MiB/s"
export FTVMM_SNAP_MB=8
conf=$(vm_conf 1500ms 300ms "sync_rate = 1M
sync_timeout = 30s")
count() { grep -c -- "$1" "$2"; }
# returning NAME: node 1's ftd and a fresh VMM (tool NAME), asking to be seeded
returning() {
	start 1
	tool 1 "$1" vm "$seed" 100000000 "$rate" 0 "$work/$1.state"
	vr=$tool_pid
}

# ---- the live node dies mid-transfer
live_alone "$conf" "$rate"
ok $? "node 2 live alone"
returning v1b
mid_transfer 30
rc=$?
kill -KILL "$pid2" "$v2"; wait "$pid2" "$v2" 2>/dev/null
ok $rc "node 1 receiving ($mid) when node 2 is killed"
wait_for 20 1 sync gave-up && [ "$(st 1 role)" = halted ]
ok $? "the live node killed mid-transfer: node 1 gives up and halts ($(st 1 halt_reason))"
sleep 3
[ "$(st 1 role)" = halted ] && ! grep -q GO_LIVE "$work/v1b.out" && grep -q "^HALT epoch 1" "$work/v1b.out"
ok $? "node 1 never goes live (it has no acked state): its VMM got $(head -1 "$work/v1b.out")"
"$FTCTL" disk "$work/disk" >"$work/disk.txt" 2>&1
grep -q "^current epoch 1 " "$work/disk.txt"
ok $? "the disk stays at epoch 1: $(grep '^current' "$work/disk.txt")"
[ "$(count FT_REASON=sync-refused "$work/n1.log")" = 1 ]
ok $? "one line says why: $(grep FT_REASON=sync-refused "$work/n1.log" | cut -c1-120)"
cleanup; trap - EXIT; pids=()

# ---- the returning node dies mid-transfer, then comes back
live_alone "$conf" "$rate"
ok $? "node 2 live alone"
returning v1b
mid_transfer 30
ok $? "node 1 receiving ($mid)"
ftc 2 status --color=never | sed "s|$work|W|g" | check_golden status-syncing.txt
ok $? "ftctl status of the live node while it sends the snapshot: matches golden"
ftc 1 status --color=never | sed "s|$work|W|g" | check_golden status-seeding.txt
ok $? "ftctl status of the returning node while it receives it: matches golden"
mid_transfer 30
rc=$?
kill -KILL "$pid1" "$vr"; wait "$pid1" "$vr" 2>/dev/null
ok $rc "node 1 still receiving ($mid) when it is killed"
wait_for 20 2 role live-alone && for _ in $(seq 100); do [ "$(count GO_LIVE "$work/v2.out")" = 2 ] && break; sleep 0.1; done
gl=$(grep GO_LIVE "$work/v2.out" | tail -1)
[ "$(count GO_LIVE "$work/v2.out")" = 2 ] && [[ $gl == "GO_LIVE epoch 1 seq 0 emitted 0 produced "* ]] &&
	[ "$(st 2 vm_mode)" = live ]
ok $? "node 2 live alone again, its VM released what it held: $gl"
[ "$(count FT_REASON=sync-abandoned "$work/n2.log")" = 1 ] && [[ $(st 2 sync_last) == abandoned* ]]
ok $? "one sync-abandoned line; ftctl: $(st 2 sync_last)"
returning v1c
wait_for 40 1 role backup && wait_for 20 2 role primary && [ "$(st 1 epoch)" = 2 ]
ok $? "a later return is re-protected: node 1 $(st 1 role), node 2 $(st 2 role), epoch $(st 1 epoch)"
for _ in $(seq 400); do [ "$(st 2 ring_consumed)" -ge 200 ] 2>/dev/null && break; sleep 0.05; done
[ "$(st 2 ring_consumed)" -ge 200 ] && grep -q "^SEED len .* ok$" "$work/v1c.out"
ok $? "and its log flows: $(st 2 ring_consumed) acked"
! grep -q FAIL "$work/v2.out" "$work/v1c.out"
ok $? "tool invariants held"
cleanup; trap - EXIT; pids=()

# ---- a corrupt snapshot
FTVMM_SNAP=corrupt live_alone "$conf" "$rate"
ok $? "node 2 live alone (its VMM corrupts snapshots)"
returning v1b
wait_for 40 1 sync gave-up && [ "$(st 1 role)" = halted ]
ok $? "node 1 halts: $(st 1 halt_reason)"
grep -q "^SEED_REFUSED" "$work/v1b.out" && grep -q "(corrupted)" "$work/v2.out"
ok $? "its VMM refused the snapshot: $(grep SEED_REFUSED "$work/v1b.out")"
[ "$(count FT_REASON=sync-refused "$work/n1.log")" = 1 ]
ok $? "one sync-refused line on node 1"
wait_for 20 2 role live-alone && for _ in $(seq 100); do [ "$(count GO_LIVE "$work/v2.out")" = 2 ] && break; sleep 0.1; done
[ "$(count GO_LIVE "$work/v2.out")" = 2 ] && [ "$(count FT_REASON=sync-abandoned "$work/n2.log")" = 1 ] &&
	grep -q "sync-abandoned" <(grep "refused the snapshot" "$work/n2.log")
ok $? "node 2 live alone again with GO_LIVE: $(grep FT_REASON=sync-abandoned "$work/n2.log" | cut -c1-120)"
cleanup; trap - EXIT; pids=()

# ---- the live VMM refuses SNAPSHOT
FTVMM_SNAP=refuse live_alone "$conf" "$rate"
ok $? "node 2 live alone (its VMM refuses SNAPSHOT)"
returning v1b
wait_for 30 1 sync gave-up && [ "$(st 1 role)" = halted ]
ok $? "node 1 halts: $(st 1 halt_reason)"
wait_for 10 2 role live-alone && grep -q "SNAPSHOT refused" "$work/v2.out" &&
	[ "$(count GO_LIVE "$work/v2.out")" = 1 ] && [ "$(count FT_REASON=sync-abandoned "$work/n2.log")" = 1 ]
ok $? "node 2 live alone, its VM never stopped being live (one GO_LIVE): $(st 2 sync_last)"
sleep 2
[ "$(count "asks to be seeded as the new backup" "$work/n2.log")" = 1 ]
ok $? "one attempt only (bounded)"
cleanup; trap - EXIT; pids=()
finish
