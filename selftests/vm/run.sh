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
# KVM_FT_SEED to re-run a randomised test, KVM_FT_BP_RECORDS).
set -euo pipefail

mode=${1:?usage: run.sh check|bench BINARY...}
shift
here=$(cd "$(dirname "$0")" && pwd)
TOP=${TOP:-$(cd "$here/../.." && pwd)}
BUILD=${BUILD:-$TOP/build}
KVER=${KVER:-$(ls -d /lib/modules/6.1.*/build 2>/dev/null | sed 's|/lib/modules/||;s|/build||' | sort -V | tail -n1)}
out=$BUILD/selftests
vmdir=$BUILD/vm/$mode
kernel=/boot/vmlinuz-$KVER
kmods=/lib/modules/$KVER/kernel
ftko=$TOP/kmod/kvm_ft.ko
busybox=$(command -v busybox || true)

case $mode in
check) vm_timeout=${VM_TIMEOUT:-570}; test_timeout=${TEST_TIMEOUT:-300} ;;
bench) vm_timeout=${VM_TIMEOUT:-600}; test_timeout=${TEST_TIMEOUT:-400} ;;
*) echo "run.sh: unknown mode $mode" >&2; exit 2 ;;
esac

for f in "$kernel" "$busybox" "$kmods/virt/lib/irqbypass.ko" "$kmods/drivers/crypto/ccp/ccp.ko" \
	 "$kmods/arch/x86/kvm/kvm.ko" "$kmods/arch/x86/kvm/kvm-amd.ko"; do
	[ -n "$f" ] && [ -e "$f" ] || { echo "run.sh: missing $f (make deps)" >&2; exit 2; }
done
command -v qemu-system-x86_64 >/dev/null || { echo "run.sh: no qemu-system-x86_64 (make deps)" >&2; exit 2; }
[ -e "$ftko" ] || echo "run.sh: warning: $ftko not built; the VM will report it" >&2

# Files of the initramfs as "source destination" pairs.
inputs=$(mktemp)
trap 'rm -f "$inputs"' EXIT
{
	echo "$busybox bin/busybox"
	echo "$here/init init"
	echo "$kmods/virt/lib/irqbypass.ko lib/modules/irqbypass.ko"
	echo "$kmods/drivers/crypto/ccp/ccp.ko lib/modules/ccp.ko"
	echo "$kmods/arch/x86/kvm/kvm.ko lib/modules/kvm.ko"
	echo "$kmods/arch/x86/kvm/kvm-amd.ko lib/modules/kvm-amd.ko"
	[ -e "$ftko" ] && echo "$ftko lib/modules/kvm_ft.ko"
	for b in "$@"; do echo "$b tests/${b#"$out"/}"; done
} > "$inputs"
names=$(for b in "$@"; do echo "${b#"$out"/}"; done)

# Rebuild the image only when an input's content, the test list or the
# timeout changed. Several runs may share $BUILD (engineers and CI in one
# tree): the build is serialised with a lock and the image replaced
# atomically; every run has its own side channel and console log.
key=$( { cat "$inputs"; echo "$test_timeout"; cut -d' ' -f1 "$inputs" | xargs sha256sum; } | sha256sum | cut -d' ' -f1)
mkdir -p "$vmdir"
initrd=$vmdir/initrd.gz
exec 9> "$vmdir/.lock"
flock 9
if [ ! -e "$initrd" ] || [ "$(cat "$vmdir/initrd.key" 2>/dev/null)" != "$key" ]; then
	root=$(mktemp -d "$vmdir/root.XXXXXX")
	mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc/ft,lib/modules,tests}
	while read -r src dst; do
		mkdir -p "$root/$(dirname "$dst")"
		cp "$src" "$root/$dst"
	done < "$inputs"
	for a in $("$busybox" --list); do
		[ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
	done
	echo "$mode" > "$root/etc/ft/mode"
	echo "$test_timeout" > "$root/etc/ft/timeout"
	echo "$names" > "$root/etc/ft/tests"
	(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) > "$initrd.tmp"
	rm -rf "$root"
	mv "$initrd.tmp" "$initrd"
	echo "$key" > "$vmdir/initrd.key"
	echo "run.sh: built $initrd ($(du -k "$initrd" | cut -f1) KiB)" >&2
fi
# Our own hard link: a concurrent rebuild replaces the name, not this file.
rundir=$(mktemp -d "$vmdir/run.XXXXXX")
ln "$initrd" "$rundir/initrd.gz"
flock -u 9
exec 9>&-
initrd=$rundir/initrd.gz
trap 'rm -f "$inputs"; rm -rf "$rundir"' EXIT

nonce=$(od -An -tx8 -N8 /dev/urandom | tr -d ' ')
side=$rundir/side-channel
console=$rundir/console.log
append="console=ttyS0 quiet panic=-1 panic_on_warn=1 oops=panic softlockup_panic=1 ft.nonce=$nonce"
# KVM_FT_* variables (KVM_FT_SEED, KVM_FT_BP_RECORDS, ...) reach the tests.
for v in $(compgen -e | grep '^KVM_FT_' || true); do
	append="$append ftenv.$v=${!v}"
done

start=$(date +%s)
set +e
timeout -k 5 "$vm_timeout" qemu-system-x86_64 -accel tcg -cpu max -m 1024 -smp "${VM_SMP:-1}" \
	-nographic -no-reboot -kernel "$kernel" -initrd "$initrd" -append "$append" \
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
