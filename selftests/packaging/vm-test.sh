#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs inside the packaging test VM (Debian 12, systemd as PID 1) from
# ft-packaging-test.service. Prints TAP on the console and writes
# "PASS <nonce>" to ttyS1 only when every point passed; then powers off.
#
# What it proves, on a system installed from the .debs:
#  - DKMS built and installed kvm_ft for the running kernel (in the chroot at
#    image-build time) and systemd-modules-load loaded it at boot;
#  - modprobe kvm_ft works again after a removal, with kvm_amd loaded;
#  - the shipped /etc/ftd/ftd.conf is valid once its keys are uncommented;
#  - ftd.service (with its hardening) reaches active with READY, serves
#    ftctl, uses the shared disk, stops cleanly, and is restarted by the
#    watchdog when it hangs (SIGSTOP);
#  - no kernel splat in the whole boot.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

nonce=$(sed -n 's/.*ft\.nonce=\([0-9a-f]*\).*/\1/p' /proc/cmdline)
side=/dev/ttyS1
kver=$(uname -r)
n=0 passed=0 failed=0

point() {	# 0|nonzero "description"
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n $2"; passed=$((passed + 1))
	else
		echo "not ok $n $2"; failed=$((failed + 1))
	fi
}
# check "description" command...: a point from a command's status; its
# output is shown as TAP comments when it fails.
check() {
	local d=$1 out rc
	shift
	out=$("$@" 2>&1); rc=$?
	[ $rc = 0 ] || sed 's/^/# /' <<< "$out"
	point $rc "$d"
}
# wait_for SECONDS command...: poll until the command succeeds.
wait_for() {
	local t=$1
	shift
	for ((i = 0; i < t * 5; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}
prop() { systemctl show -p "$2" --value "$1"; }

echo "TAP version 13"
echo "# kvm_ft packaging test, kernel $kver, $(systemctl --version | head -n1)"

ver=$(dpkg-query -W -f='${Version}' kvm-ft-dkms)
check "dkms status: kvm-ft/$ver installed for $kver" \
	bash -c "dkms status -k $kver kvm-ft | tee /dev/stderr | grep -q '^kvm-ft/$ver, $kver, x86_64: installed'"
check "kvm_ft.ko is DKMS's, under updates/dkms" \
	bash -c "modinfo -n kvm_ft | grep -qx '/lib/modules/$kver/updates/dkms/kvm_ft.ko'"
check "systemd-modules-load loaded kvm_ft at boot (modules-load.d/kvm_ft.conf)" \
	bash -c "[ -d /sys/module/kvm_ft ] && [ \"\$(systemctl is-active systemd-modules-load)\" = active ]"
check "modprobe -r kvm_ft, then modprobe kvm_ft: loaded after kvm_amd, /dev/kvm_ft appears" \
	bash -c "modprobe -r kvm_ft && [ ! -d /sys/module/kvm_ft ] && modprobe kvm_ft &&
		[ -d /sys/module/kvm_amd ] && [ -c /dev/kvm_ft ] &&
		grep -q '^kvm_amd ' /proc/modules && grep -q '^kvm_ft ' /proc/modules"

# The shipped example, every key uncommented, must be a valid configuration.
check "the shipped /etc/ftd/ftd.conf is valid with every key uncommented" \
	bash -c "sed 's/^#\([a-z_]* = \)/\1/' /etc/ftd/ftd.conf > /tmp/all.conf &&
		[ \$(grep -c '^[a-z_]* = ' /tmp/all.conf) = 18 ] && ftd -c /tmp/all.conf --check-config"

# A backup whose peer never comes: ftd must still start and serve ftctl.
(umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > /etc/ftd/psk)
sed -e 's/^#\([a-z_]* = \)/\1/' \
    -e 's/^node_id = .*/node_id = 2/' -e 's/^role = .*/role = backup/' \
    -e 's/^listen = .*/listen = 127.0.0.1:7000/' -e 's/^peer = .*/peer = 192.0.2.1:7000/' \
    -e 's|^shared_disk = .*|shared_disk = /dev/disk/by-id/virtio-ftshared|' \
    /etc/ftd/ftd.conf > /etc/ftd/ftd.conf.new && mv /etc/ftd/ftd.conf.new /etc/ftd/ftd.conf
check "ftctl format-disk on the shared virtio disk" \
	ftctl format-disk /dev/disk/by-id/virtio-ftshared --first-primary 1

check "systemctl start ftd returns (READY=1) and the unit is active" \
	bash -c "timeout 60 systemctl start ftd && [ \"\$(systemctl is-active ftd)\" = active ]"
systemctl status --no-pager ftd | sed 's/^/# /'
check "ftd's STATUS= reaches systemd" \
	bash -c "systemctl show -p StatusText --value ftd | grep -q ."
check "ftctl status answers: node 2, backup" \
	bash -c "ftctl status | tee /dev/stderr | grep -q '^ftd node 2: backup'"
check "ftctl --json status: backup with the shared disk" \
	bash -c "ftctl --json status | grep -q '\"role\": \"backup\"' &&
		ftctl --json status | grep -q '\"shared_disk\": \"/dev/disk/by-id/virtio-ftshared\"'"
check "the backup created its ring in StateDirectory (/var/lib/ftd)" \
	bash -c "[ -s /var/lib/ftd/ring ] && [ \$(stat -c %a /var/lib/ftd) = 700 ]"
check "the control socket lives in RuntimeDirectory /run/ftd (0700)" \
	bash -c "[ -S /run/ftd/ftd.sock ] && [ \$(stat -c %a /run/ftd) = 700 ]"

check "systemctl stop ftd: clean exit, result success, socket removed" \
	bash -c "timeout 60 systemctl stop ftd && [ \"\$(systemctl show -p Result --value ftd)\" = success ] &&
		[ \"\$(systemctl show -p ExecMainStatus --value ftd)\" = 0 ] && [ ! -e /run/ftd ]"

# Watchdog: a short WatchdogSec in a drop-in; SIGSTOP hangs the loop.
mkdir -p /run/systemd/system/ftd.service.d
printf '[Service]\nWatchdogSec=2s\nTimeoutAbortSec=2s\n' > /run/systemd/system/ftd.service.d/watchdog.conf
systemctl daemon-reload
timeout 60 systemctl start ftd
pid=$(prop ftd MainPID)
r0=$(prop ftd NRestarts)
echo "# ftd pid $pid, NRestarts $r0, WatchdogUSec $(prop ftd WatchdogUSec)"
check "ftd runs with the drop-in's 2 s watchdog" \
	bash -c "[ $pid -gt 0 ] && [ \"\$(systemctl show -p WatchdogUSec --value ftd)\" = 2s ]"
kill -STOP "$pid"
restarted() {
	local p
	p=$(prop ftd MainPID)
	[ "$(prop ftd NRestarts)" -gt "$r0" ] && [ "$(systemctl is-active ftd)" = active ] &&
		[ "$p" -gt 0 ] && [ "$p" != "$pid" ]
}
wait_for 40 restarted
point $? "the watchdog restarts a hung ftd: NRestarts $r0 -> $(prop ftd NRestarts), active again as pid $(prop ftd MainPID)"
check "journal names the watchdog timeout" \
	bash -c "journalctl -b -u ftd --no-pager | grep -q 'Watchdog timeout'"
check "ftctl status answers the restarted ftd" wait_for 20 ftctl status
timeout 60 systemctl stop ftd
rm -rf /run/systemd/system/ftd.service.d
systemctl daemon-reload

splat_re='BUG:|WARNING:|Oops|general protection|RCU stall|rcu: INFO|detected stall|lockdep|possible recursive locking|possible circular locking|KASAN|UBSAN|Call Trace|kernel BUG|refcount_t:|list_add corruption|list_del corruption|soft lockup|hung_task|blocked for more than'
if journalctl -k -b --no-pager | grep -E "$splat_re" > /tmp/splat; then
	sed 's/^/# dmesg: /' /tmp/splat
	point 1 "no kernel splat during the boot and the tests"
else
	point 0 "no kernel splat during the boot and the tests"
fi
failed_units=$(systemctl list-units --failed --plain --no-legend | awk '{print $1}' | tr '\n' ' ')
[ -z "$failed_units" ] || echo "# failed units: $failed_units"
point "$([ -z "$failed_units" ]; echo $?)" "no failed systemd unit"

echo "1..$n"
echo "# packaging-vm: $passed passed, $failed failed"
stty -F $side raw -echo 2>/dev/null
echo "RESULT passed=$passed failed=$failed" > $side
[ "$failed" -eq 0 ] && echo "PASS $nonce" > $side
sync
echo "# packaging-vm: end"
systemctl --no-block poweroff
