#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh check|bench BINARY...
#
# Boot the Debian kernel once under QEMU (TCG, -cpu max: SVM + NPT, so real
# nested KVM) with an initramfs holding busybox, KVM's modules, kvm_ft.ko and
# the given static binaries; /init (vm/init) runs them all and prints TAP.
# The verdict comes only from the side channel (ttyS1 -> a file): the run
# passed iff it holds "PASS <nonce>" with this run's nonce. The console is
# printed for people and for the counts when the VM died.
#
# Environment: TOP BUILD KVER (from make), VM_TIMEOUT (seconds, whole boot),
# VM_SMP (vCPUs of the test VM, default 1),
# TEST_TIMEOUT (seconds per binary), KVM_FT_* (exported to the tests, e.g.
# KVM_FT_SEED to re-run a randomised test, KVM_FT_BP_RECORDS),
# VM_FILES ("SRC=DST ..." more files for the tests, e.g. bin/ftvm, with the
# shared libraries of the dynamic ones; not run).
set -euo pipefail

mode=${1:?usage: run.sh check|bench BINARY...}
shift
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
vm_defaults
out=$BUILD/selftests
vmdir=$BUILD/vm/$mode

case $mode in
check) vm_timeout=${VM_TIMEOUT:-570}; test_timeout=${TEST_TIMEOUT:-300} ;;
bench) vm_timeout=${VM_TIMEOUT:-600}; test_timeout=${TEST_TIMEOUT:-400} ;;
*) echo "run.sh: unknown mode $mode" >&2; exit 2 ;;
esac

vm_need_base
[ -e "$vm_ftko" ] || echo "run.sh: warning: $vm_ftko not built; the VM will report it" >&2

# Files of the initramfs as "source destination" pairs; the run's settings
# are files too, so a changed test list or timeout rebuilds the image.
etc=$(mktemp -d)
inputs=$etc/inputs
trap 'rm -rf "$etc"' EXIT
names=$(for b in "$@"; do echo "${b#"$out"/}"; done)
echo "$mode" > "$etc/mode"
echo "$test_timeout" > "$etc/timeout"
echo "$names" > "$etc/tests"
{
	vm_inputs_base
	echo "$here/init init"
	for f in mode timeout tests; do echo "$etc/$f etc/ft/$f"; done
	for b in "$@"; do echo "$b tests/${b#"$out"/}"; done
	for f in ${VM_FILES:-}; do echo "${f%%=*} ${f#*=}"; done
	for f in ${VM_FILES:-}; do vm_inputs_libs "${f%%=*}" || true; done
} > "$inputs"
rundir=$(vm_image "$vmdir" "$inputs")
initrd=$rundir/initrd.gz
trap 'rm -rf "$etc" "$rundir"' EXIT

nonce=$(vm_nonce)
side=$rundir/side-channel
console=$rundir/console.log
append="$vm_append ft.nonce=$nonce"
# KVM_FT_* variables (KVM_FT_SEED, KVM_FT_BP_RECORDS, ...) reach the tests.
for v in $(compgen -e | grep '^KVM_FT_' || true); do
	append="$append ftenv.$v=${!v}"
done

start=$(date +%s)
set +e
timeout -k 5 "$vm_timeout" qemu-system-x86_64 -accel tcg -cpu max -m 1024 -smp "${VM_SMP:-1}" \
	-nographic -no-reboot -kernel "$vm_kernel" -initrd "$initrd" -append "$append" \
	-serial mon:stdio -serial "file:$side" < /dev/null 2>&1 | tr -d '\r' | tee "$console"
qrc=${PIPESTATUS[0]}
set -e
elapsed=$(( $(date +%s) - start ))
cp "$console" "$vmdir/console.log.tmp.$$" && mv "$vmdir/console.log.tmp.$$" "$vmdir/console.log"

result=$(grep '^RESULT ' "$side" 2>/dev/null | tail -n1 || true)
if [ -n "$result" ]; then
	passed=$(sed -n 's/.*passed=\([0-9]*\).*/\1/p' <<< "$result")
	failed=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' <<< "$result")
	skipped=$(sed -n 's/.*skipped=\([0-9]*\).*/\1/p' <<< "$result")
else
	# The VM died (panic, timeout): count what the console shows, plus
	# one failure for the death itself.
	passed=$(grep -c -E '^(# )?ok ' "$console" || true)
	skipped=$(grep -c -E '^(# )?ok .*# SKIP' "$console" || true)
	passed=$((passed - skipped))
	failed=$(( $(grep -c -E '^(# )?not ok ' "$console" || true) + 1 ))
	echo "run.sh: no result on the side channel (qemu exit $qrc after ${elapsed}s): the VM crashed or timed out" >&2
fi

echo "vm: $mode took ${elapsed}s, $skipped skipped"
if grep -qx "PASS $nonce" "$side" 2>/dev/null; then
	echo "vm: $passed passed, $failed failed"
	exit 0
fi
[ "$failed" -gt 0 ] || failed=1
echo "vm: $passed passed, $failed failed"
exit 1
