# SPDX-License-Identifier: GPL-2.0
#
# Guest-side helpers shared by the VMs' /init scripts (vm/init, e2e/hostinit),
# installed as /lib/ft/guestlib.sh by vm/lib.sh. busybox sh.

# Kernel log patterns that fail a run wherever they appear.
splat_re='BUG:|WARNING:|Oops|general protection|RCU stall|rcu: INFO|detected stall|Slab cache still has objects|lockdep|possible recursive locking|possible circular locking|KASAN|UBSAN|Call Trace|kernel BUG|refcount_t:|list_add corruption|list_del corruption|soft lockup|hung_task|blocked for more than'

# mount_basics: proc, sys, dev, tmp, tracefs, /dev/shm.
mount_basics() {
	mount -t proc proc /proc
	mount -t sysfs sysfs /sys
	mount -t devtmpfs devtmpfs /dev
	mount -t tmpfs tmpfs /tmp
	mount -t tracefs tracefs /sys/kernel/tracing
	mkdir -p /dev/shm && mount -t tmpfs tmpfs /dev/shm
}

# load_kvm: the KVM stack in order; true iff /dev/kvm exists with nested paging.
load_kvm() {
	local m=/lib/modules
	insmod $m/irqbypass.ko && insmod $m/ccp.ko && insmod $m/kvm.ko && insmod $m/kvm-amd.ko &&
		[ -c /dev/kvm ] && [ "$(cat /sys/module/kvm_amd/parameters/npt)" = Y ]
}

# dmesg_splat FILE: read and clear the kernel log into FILE; true iff it
# holds a splat.
dmesg_splat() {
	dmesg -c > "$1" 2>&1
	grep -q -E "$splat_re" "$1"
}
