#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Re-protection between two real ftd, each with tool_ftvmm standing in for
# the FT-aware VMM and the module (ftd_vmm.h: SNAPSHOT, SNAPSHOT_READY,
# SEED). Proves: after the primary host dies and the backup goes live
# alone, the old primary's host comes back and is seeded with the live
# VM's snapshot (SNAP frames, byte-exact, checked by its VMM), the live node
# writes the next epoch naming it backup (read back from the disk), the
# roles are PRIMARY/BACKUP in that epoch, the log that waited in the live
# node's ring replicates byte-exact from seq 1 and ACKED releases its
# outputs; then the new primary dies and the re-protected node goes live
# with no acked record lost.
set -u
. "$(dirname "$0")/ftdlib.sh.inc"
need
. "$here/ftdvm.sh.inc"
rate=$((1000 + RANDOM % 1000)) mb=$((4 + RANDOM % 4))
echo "# seed $seed: stream of $rate records/s, snapshots of $mb MiB and a bit"
export FTVMM_SNAP_MB=$mb
count() { grep -c -- "$1" "$2"; }

live_alone "$(vm_conf 1500ms 300ms "sync_timeout = 20s")" "$rate"
ok $? "primary host killed: node 2 live alone in epoch $(st 2 epoch) ($(grep GO_LIVE "$work/v2.out"))"

# ---- it comes back: seeded, then BACKUP of epoch 2
start 1
tool 1 v1b vm "$seed" 100000000 "$rate" 0 "$work/v1b.state"
v1b=$tool_pid
wait_for 30 1 role backup && wait_for 30 2 role primary
ok $? "returning node 1 re-protected: node 1 $(st 1 role), node 2 $(st 2 role)"
[ "$(st 1 epoch)" = 2 ] && [ "$(st 2 epoch)" = 2 ]
ok $? "both nodes in epoch 2"
"$FTCTL" disk "$work/disk" >"$work/disk.txt" 2>&1
grep -q "^current epoch 2 primary 2 backup 1$" "$work/disk.txt"
ok $? "the shared disk: $(grep '^current' "$work/disk.txt")"
snap=$(grep '^SNAPSHOT len' "$work/v2.out") seedl=$(grep '^SEED len' "$work/v1b.out")
[ -n "$snap" ] && [ "$(echo "$snap" | awk '{print $3}')" = "$(echo "$seedl" | awk '{print $3}')" ] &&
	[[ $seedl == *" ok" ]]
ok $? "the live VM's snapshot reached the new backup's VM byte-exact: '$snap' / '$seedl'"
for _ in $(seq 400); do [ "$(st 2 ring_consumed)" -ge 500 ] 2>/dev/null && break; sleep 0.05; done
acked=$(st 2 ring_consumed)
[ "$acked" -ge 500 ] && [ "$(field acked "$work/v2.state")" -ge 1 ] && [ "$(field consumed "$work/v1b.state")" -ge 1 ]
ok $? "the log flows node 2 -> node 1 from seq 1 in epoch 2: acked $acked, ACKED to the VMM $(field acked "$work/v2.state"), replayed $(field consumed "$work/v1b.state")"
[ "$(count 're-protected in.*FT_REASON=sync-done' "$work/n1.log")" = 1 ] &&
	[ "$(count 're-protected in.*FT_REASON=sync-done' "$work/n2.log")" = 1 ]
ok $? "one re-protected line on each node: $(grep -h 're-protected in' "$work/n2.log" | cut -c1-90)"
[ "$(st 2 sync_last)" = done ] && [ "$(st 2 sync)" = idle ] && [ "$(st 1 sync_last)" = done ]
ok $? "ftctl --json: sync_last done on both ($(st 2 sync_last_bytes) bytes in $(st 2 sync_last_ms) ms)"
h=$(ftc 2 status --color=never)
[[ $h == *"  sync         last: done, "*" ms (1 started)"* ]] && [[ $h != *"!! re-protection"* ]]
ok $? "ftctl status on node 2: $(echo "$h" | grep 'sync ')"

# ---- the new primary dies: the re-protected node goes live, nothing acked lost
kill -STOP "$v1b"
kill -KILL "$pid2" "$v2"; wait "$pid2" "$v2" 2>/dev/null
sleep 0.2
p_acked=$(field acked "$work/v2.state")
kill -CONT "$v1b"
wait_for 30 1 role live-alone && wait_for 30 1 go_live done && saw_golive v1b
gl=$(grep GO_LIVE "$work/v1b.out")
consumed=$(echo "$gl" | awk '{print $7}')
[ -n "$consumed" ] && [ "$consumed" -ge "$p_acked" ] && [ "$(echo "$gl" | awk '{print $9}')" = 0 ]
ok $? "node 1 live alone after the new primary died, no acked record lost: replayed $consumed >= acked $p_acked ($gl)"
! grep -q FAIL "$work/v1.out" "$work/v2.out" "$work/v1b.out"
ok $? "tool invariants held (every record byte-exact and in order, ACKED published first)"
[ "$(st 1 rejects)" = 0 ]
ok $? "no frame rejected"
cleanup; trap - EXIT; pids=()
finish
