# SPDX-License-Identifier: GPL-2.0
#
# Shell helpers shared by the VM runners (sourced, not run): vm/run.sh (the
# in-VM kselftests) and e2e/bed.sh (the two-host test bed). Build-machine
# side only; the guest side is vm/guestlib.sh.
#
# Needs TOP, BUILD and KVER set (vm_defaults sets what is missing).

vm_defaults() {
	TOP=${TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
	BUILD=${BUILD:-$TOP/build}
	KVER=${KVER:-$(ls -d /lib/modules/6.1.*/build 2>/dev/null | sed 's|/lib/modules/||;s|/build||' | sort -V | tail -n1)}
	vm_kernel=/boot/vmlinuz-$KVER
	vm_kmods=/lib/modules/$KVER/kernel
	vm_busybox=$(command -v busybox || true)
	vm_ftko=$TOP/kmod/kvm_ft.ko
}

# The KVM stack in load order (vm/guestlib.sh loads them in this order).
vm_kvm_mods="virt/lib/irqbypass drivers/crypto/ccp/ccp arch/x86/kvm/kvm arch/x86/kvm/kvm-amd"

# vm_need_base [MODULE-PATH...]: the kernel, busybox, QEMU and the KVM
# modules (plus the given ones, paths under kernel/ without .ko) exist.
vm_need_base() {
	local f
	for f in "$vm_kernel" "$vm_busybox"; do
		[ -n "$f" ] && [ -e "$f" ] || { echo "${0##*/}: missing $f (make deps)" >&2; exit 2; }
	done
	for f in $vm_kvm_mods "$@"; do
		[ -e "$vm_kmods/$f.ko" ] || { echo "${0##*/}: missing $vm_kmods/$f.ko (make deps)" >&2; exit 2; }
	done
	command -v qemu-system-x86_64 >/dev/null || { echo "${0##*/}: no qemu-system-x86_64 (make deps)" >&2; exit 2; }
}

# vm_inputs_base [MODULE-PATH...]: "source destination" lines for busybox,
# the guest library, the KVM stack, the given modules, and kvm_ft.ko when built.
vm_inputs_base() {
	local m here
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	echo "$vm_busybox bin/busybox"
	echo "$here/guestlib.sh lib/ft/guestlib.sh"
	for m in $vm_kvm_mods "$@"; do
		echo "$vm_kmods/$m.ko lib/modules/${m##*/}.ko"
	done
	[ -e "$vm_ftko" ] && echo "$vm_ftko lib/modules/kvm_ft.ko"
	return 0
}

# vm_inputs_libs BINARY...: "source destination" lines for the shared
# libraries and the dynamic loader the binaries need (ldd), at their paths.
vm_inputs_libs() {
	ldd "$@" 2>/dev/null | grep -v ':$' | grep -o '/[^ ]*' | sort -u | while read -r l; do
		echo "$(readlink -f "$l") ${l#/}"
	done
}

# vm_image VMDIR INPUTS: build VMDIR/initrd.gz from the "source destination"
# lines in the file INPUTS (plus busybox's applet links) unless an image of
# the same inputs and contents exists. Several runs may share $BUILD: the
# build is serialised with a lock and the image replaced atomically. Prints a
# new private run directory holding a hard link initrd.gz to the image (a
# concurrent rebuild replaces the name, not this file); the caller removes it.
vm_image() {
	local vmdir=$1 inputs=$2 key root src dst a rundir
	# Keyed on destinations, modes and contents, not on source paths
	# (temporary): a script made executable since is a new image.
	key=$(while read -r src dst; do echo "$dst $(stat -Lc %a "$src") $(sha256sum < "$src")"; done < "$inputs" |
		sha256sum | cut -d' ' -f1)
	mkdir -p "$vmdir"
	exec {lockfd}> "$vmdir/.lock"
	flock "$lockfd"
	if [ ! -e "$vmdir/initrd.gz" ] || [ "$(cat "$vmdir/initrd.key" 2>/dev/null)" != "$key" ]; then
		root=$(mktemp -d "$vmdir/root.XXXXXX")
		mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc,lib/modules}
		while read -r src dst; do
			mkdir -p "$root/$(dirname "$dst")"
			cp "$src" "$root/$dst"
		done < "$inputs"
		for a in $("$vm_busybox" --list); do
			[ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
		done
		(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) > "$vmdir/initrd.gz.tmp"
		rm -rf "$root"
		mv "$vmdir/initrd.gz.tmp" "$vmdir/initrd.gz"
		echo "$key" > "$vmdir/initrd.key"
		echo "${0##*/}: built $vmdir/initrd.gz ($(du -k "$vmdir/initrd.gz" | cut -f1) KiB)" >&2
	fi
	rundir=$(mktemp -d "$vmdir/run.XXXXXX")
	ln "$vmdir/initrd.gz" "$rundir/initrd.gz"
	flock -u "$lockfd"
	exec {lockfd}>&-
	echo "$rundir"
}

# The kernel command line every test VM boots with: a WARN or oops panics the
# VM (so it never reports a pass), and the VM never reboots.
vm_append="console=ttyS0 quiet panic=-1 panic_on_warn=1 oops=panic softlockup_panic=1"

vm_nonce() { od -An -tx8 -N8 /dev/urandom | tr -d ' '; }
