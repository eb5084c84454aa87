#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run.sh — install kvm_ft like a real system and test it under systemd.
#
# 1. base root (cached, keyed on the package list, the mirror and this
#    script's base_recipe number): debootstrap Debian 12 from the mirror the host's
#    apt uses, plus systemd, udev, dkms, linux-headers and linux-source of the
#    test kernel, with the .debs kept in $BUILD/packaging/debs.
# 2. image (cached, keyed on the base, the built .debs, vm-test.sh and
#    image_recipe): a copy of the base, the kernel's modules copied from the host
#    (the VM boots the host's /boot/vmlinuz and initrd), our .debs installed
#    with dpkg, kvm_ft.ko built by DKMS *in the chroot at image-build time*
#    (`dkms install -k $KVER`), a oneshot test unit; made into a raw ext4.
# 3. boot: QEMU TCG (-cpu max: SVM for kvm_amd), systemd as PID 1 on a
#    throw-away qcow2 overlay, a second virtio disk as the shared disk. The
#    unit runs vm-test.sh, which prints TAP on the console and writes
#    "PASS <nonce>" to ttyS1 only when every point passed. The host decides
#    from that token alone.
#
# Environment: TOP BUILD KVER (from make), DEB_DIR (default $BUILD/deb),
# VM_TIMEOUT (seconds for the boot, default 420).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
TOP=${TOP:-$(cd "$here/../.." && pwd)}
BUILD=${BUILD:-$TOP/build}
KVER=${KVER:-6.1.0-56-amd64}
DEB_DIR=${DEB_DIR:-$BUILD/deb}
dir=$BUILD/packaging
suite=bookworm
vm_timeout=${VM_TIMEOUT:-420}
kernel=/boot/vmlinuz-$KVER
initrd=/boot/initrd.img-$KVER

say() { echo "packaging: $*" >&2; }
die() { say "$*"; echo "packaging: 0 passed, 1 failed"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot)"
for t in debootstrap qemu-system-x86_64 qemu-img mkfs.ext4 dpkg-deb sha256sum flock; do
	command -v $t >/dev/null || die "no $t (make deps)"
done
for f in "$kernel" "$initrd" "/lib/modules/$KVER/kernel/arch/x86/kvm/kvm-amd.ko"; do
	[ -e "$f" ] || die "missing $f (make deps)"
done
debs=$(ls "$DEB_DIR"/kvm-ft-dkms_*_all.deb "$DEB_DIR"/ftd_*_amd64.deb 2>/dev/null || true)
[ "$(echo "$debs" | grep -c .)" = 2 ] || die "no kvm-ft-dkms/ftd .debs in $DEB_DIR (make deb)"

# The mirror the host's apt is configured with (deb822 or one-line format).
mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
	awk '/^URIs:/ {u=$2} /^Suites:/ && $0 ~ /[ \t]'$suite'([ \t]|$)/ {print u; exit}')
[ -n "$mirror" ] || mirror=$(grep -h "^deb .* $suite " /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
	awk '{print $2; exit}')
[ -n "$mirror" ] || die "no $suite mirror in /etc/apt/sources.list*"

mkdir -p "$dir/debs" "$dir/archives/partial"
exec 9> "$dir/.lock"
flock 9

mounted=()
umount_all() {
	local i
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
		umount -l "${mounted[i]}" 2>/dev/null || true
	done
	mounted=()
}
bind() { mount --bind "$1" "$2"; mounted+=("$2"); }
chroot_mounts() {	# root
	mount -t proc proc "$1/proc"; mounted+=("$1/proc")
	mount -t sysfs sysfs "$1/sys"; mounted+=("$1/sys")
	bind /dev "$1/dev"
	mount -t devpts devpts "$1/dev/pts" -o newinstance; mounted+=("$1/dev/pts")
}
tmp_root=""
cleanup() {
	umount_all
	[ -n "$tmp_root" ] && rm -rf --one-file-system "$tmp_root"
	return 0
}
trap cleanup EXIT

# ---- 1. base root --------------------------------------------------------
base_pkgs="systemd-sysv udev dbus kmod procps iproute2 dkms make gcc libc6-dev
linux-headers-$KVER linux-headers-amd64 linux-source-6.1 xz-utils libnl-3-200 libnl-genl-3-200
libsodium23 libsystemd0"
base_recipe=4
base_key=$(echo "$suite $mirror $base_pkgs $base_recipe $(sha256sum /etc/apt/sources.list.d/*.sources 2>/dev/null)" |
	sha256sum | cut -c1-16)
base=$dir/base-$base_key
if [ ! -e "$base/.done" ]; then
	t0=$(date +%s)
	say "building base root $base (debootstrap $suite from $mirror)"
	rm -rf --one-file-system "$dir"/base-* "$dir"/image-*
	tmp_root=$dir/base.tmp
	rm -rf --one-file-system "$tmp_root"
	timeout 1200 debootstrap --variant=minbase --cache-dir="$dir/debs" \
		--include=systemd-sysv,udev,kmod,procps "$suite" "$tmp_root" "$mirror" >&2 ||
		die "debootstrap failed"
	# Same apt sources as the host: linux-headers-$KVER may be in -security.
	rm -f "$tmp_root"/etc/apt/sources.list
	cp /etc/apt/sources.list.d/*.sources "$tmp_root"/etc/apt/sources.list.d/ 2>/dev/null ||
		echo "deb $mirror $suite main" > "$tmp_root"/etc/apt/sources.list
	cp /etc/resolv.conf "$tmp_root"/etc/resolv.conf
	chroot_mounts "$tmp_root"
	bind "$dir/archives" "$tmp_root/var/cache/apt/archives"
	# No services may start inside the chroot.
	printf '#!/bin/sh\nexit 101\n' > "$tmp_root"/usr/sbin/policy-rc.d
	chmod +x "$tmp_root"/usr/sbin/policy-rc.d
	# shellcheck disable=SC2086
	chroot "$tmp_root" /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -c \
		"apt-get update -q && apt-get install -y -q --no-install-recommends $(echo $base_pkgs)" >&2 ||
		die "apt-get install in the base root failed"
	umount_all
	rm -f "$tmp_root"/usr/sbin/policy-rc.d "$tmp_root"/etc/resolv.conf
	mv "$tmp_root" "$base"
	tmp_root=""
	touch "$base/.done"
	say "base root built in $(( $(date +%s) - t0 ))s"
fi

# ---- 2. image --------------------------------------------------------------
# Bump image_recipe when this stage changes.
image_recipe=1
img_key=$( { echo "$base_key $KVER $image_recipe"; sha256sum $debs "$here/vm-test.sh" \
	"/lib/modules/$KVER/modules.dep" | cut -d' ' -f1; } | sha256sum | cut -c1-16)
image=$dir/image-$img_key.raw
if [ ! -e "$image" ]; then
	t0=$(date +%s)
	rm -f "$dir"/image-*.raw
	tmp_root=$dir/root.tmp
	rm -rf --one-file-system "$tmp_root"
	say "building image $image"
	cp -a "$base" "$tmp_root"
	rm -f "$tmp_root/.done"
	# The VM boots the host's kernel: its modules, config and System.map.
	mkdir -p "$tmp_root/lib/modules/$KVER"
	cp -a "/lib/modules/$KVER/kernel" "/lib/modules/$KVER"/modules.order \
		"/lib/modules/$KVER"/modules.builtin* "$tmp_root/lib/modules/$KVER/"
	cp "/boot/config-$KVER" "/boot/System.map-$KVER" "$tmp_root/boot/"
	chroot "$tmp_root" depmod -a "$KVER"
	mkdir -p "$tmp_root/tmp/debs"
	cp $debs "$tmp_root/tmp/debs/"
	chroot_mounts "$tmp_root"
	printf '#!/bin/sh\nexit 101\n' > "$tmp_root"/usr/sbin/policy-rc.d
	chmod +x "$tmp_root"/usr/sbin/policy-rc.d
	chroot "$tmp_root" /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -c 'dpkg -i /tmp/debs/*.deb' >&2 ||
		die "dpkg -i of the built packages failed"
	# DKMS at image-build time, in the chroot, for the VM's kernel. The
	# package's postinst may already have done it; then this is a no-op.
	if ! chroot "$tmp_root" dkms status -k "$KVER" kvm-ft | grep -q ': installed'; then
		chroot "$tmp_root" dkms install kvm-ft/"$(dpkg-deb -f "$DEB_DIR"/kvm-ft-dkms_*_all.deb Version)" \
			-k "$KVER" >&2 || die "dkms install in the chroot failed"
	fi
	umount_all
	rm -rf "$tmp_root"/usr/sbin/policy-rc.d "$tmp_root"/tmp/debs
	# The guest: root autologin nowhere, the test unit, a clean console.
	echo ftpkg > "$tmp_root/etc/hostname"
	echo "/dev/vda / ext4 rw 0 1" > "$tmp_root/etc/fstab"
	install -m 0755 "$here/vm-test.sh" "$tmp_root/usr/local/sbin/ft-packaging-test"
	cat > "$tmp_root/etc/systemd/system/ft-packaging-test.service" <<-'UNIT'
	[Unit]
	Description=kvm_ft packaging test
	After=multi-user.target
	[Service]
	Type=oneshot
	ExecStart=/usr/local/sbin/ft-packaging-test
	StandardOutput=tty
	StandardError=tty
	TTYPath=/dev/ttyS0
	[Install]
	WantedBy=multi-user.target
	UNIT
	ln -sf /etc/systemd/system/ft-packaging-test.service \
		"$tmp_root/etc/systemd/system/multi-user.target.wants/ft-packaging-test.service"
	ln -sf /dev/null "$tmp_root/etc/systemd/system/serial-getty@ttyS0.service"
	ln -sf /dev/null "$tmp_root/etc/systemd/system/getty@tty1.service"
	# The mirror is not reachable from the VM; apt timers have nothing to do.
	ln -sf /dev/null "$tmp_root/etc/systemd/system/apt-daily.timer"
	ln -sf /dev/null "$tmp_root/etc/systemd/system/apt-daily-upgrade.timer"
	size_mb=$(( $(du -sm "$tmp_root" | cut -f1) + 768 ))
	mkfs.ext4 -q -F -L ftroot -d "$tmp_root" "$image.tmp" "${size_mb}M" || die "mkfs.ext4 -d failed"
	mv "$image.tmp" "$image"
	rm -rf --one-file-system "$tmp_root"
	tmp_root=""
	say "image built in $(( $(date +%s) - t0 ))s (${size_mb} MiB)"
fi
flock -u 9
exec 9>&-

# ---- 3. boot ---------------------------------------------------------------
run=$(mktemp -d "$dir/run.XXXXXX")
trap 'cleanup; rm -rf "$run"' EXIT
qemu-img create -q -f qcow2 -b "$image" -F raw "$run/root.qcow2"
truncate -s 64M "$run/shared.img"
nonce=$(od -An -tx8 -N8 /dev/urandom | tr -d ' ')
side=$run/side-channel
append="root=/dev/vda rw console=ttyS0 panic_on_warn=1 oops=panic panic=-1 softlockup_panic=1 ft.nonce=$nonce"
start=$(date +%s)
set +e
timeout -k 5 "$vm_timeout" qemu-system-x86_64 -accel tcg -cpu max -m 2048 -smp 1 \
	-nographic -no-reboot -kernel "$kernel" -initrd "$initrd" -append "$append" \
	-drive file="$run/root.qcow2",format=qcow2,if=none,id=root -device virtio-blk-pci,drive=root \
	-drive file="$run/shared.img",format=raw,if=none,id=shared,cache=none \
	-device virtio-blk-pci,drive=shared,serial=ftshared \
	-serial mon:stdio -serial "file:$side" < /dev/null 2>&1 | tr -d '\r' | tee "$run/console.log" |
	sed -n '/^TAP version/,/^# packaging-vm: end/{/^\(TAP version\|ok \|not ok \|#\|1\.\.\)/p}'
qrc=${PIPESTATUS[0]}
set -e
elapsed=$(( $(date +%s) - start ))
cp "$run/console.log" "$dir/console.log"

passed=$(grep -c '^ok ' "$run/console.log" || true)
failed=$(grep -c '^not ok ' "$run/console.log" || true)
say "boot and test took ${elapsed}s (qemu exit $qrc); console in $dir/console.log"
if grep -qx "PASS $nonce" "$side" 2>/dev/null; then
	echo "packaging: $passed passed, $failed failed"
	exit 0
fi
say "no PASS token on the side channel: a point failed, or the VM died or timed out"
[ "$failed" -gt 0 ] || failed=1
echo "packaging: $passed passed, $failed failed"
exit 1
