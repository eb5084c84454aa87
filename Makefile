# SPDX-License-Identifier: GPL-2.0
#
# kvm_ft — one entry point:
#   make              build kvm_ft.ko, ftd, ftctl and the tests
#   make check        install what is missing, build, run host tests, the
#                     in-VM kselftests (nested KVM under QEMU), the two-host
#                     end-to-end scenarios, then the
#                     packaging test (the .debs under systemd in a VM)
#   make check-host / check-vm / check-packaging   one part of check
#   make check-vmm    ftvm's tests in one VM (standalone, failover with two ftd)
#   make check-e2e    the two-host end-to-end scenarios (selftests/e2e)
#   make soak-e2e     the same, E2E_TRIALS (default 20) trials of each
#   make bench        ratios measured in one run (in the VM and on the host)
#   make demo         the two-host failover demo: a protected guest survives
#                     kill -9 of its host (selftests/e2e/demo.sh)
#   make install      install ftd/ftctl (DESTDIR honoured)
#   make dkms-install install the module source into DKMS and build it
#   make deb          kvm-ft-dkms and ftd .debs under build/deb (lintian-checked)

SHELL := /bin/bash
TOP := $(CURDIR)
BUILD := $(TOP)/build
export TOP BUILD

# Target kernel: the machine may run a kernel without headers (CI runs in a
# microVM), so default to the newest installed Debian 6.1 kernel with a kbuild
# tree instead of `uname -r`.
KVER ?= $(shell ls -d /lib/modules/6.1.*/build 2>/dev/null | sed 's|/lib/modules/||;s|/build||' | sort -V | tail -n1)
KDIR ?= /lib/modules/$(KVER)/build
# linux-source tree for KVM's private headers (arch/x86/kvm), unpacked once.
KSRC_TAR ?= /usr/src/linux-source-6.1.tar.xz
KVM_SRC ?= $(BUILD)/linux-source
export KVER KDIR KVM_SRC

# Debian packages `make check`/`make demo` need. Installed only when missing.
DEPS := gcc make pkg-config xz-utils linux-image-amd64 linux-headers-amd64 \
	linux-source-6.1 libsystemd-dev libnl-genl-3-dev libsodium-dev \
	qemu-system-x86 busybox-static cpio kmod spin \
	dkms dh-dkms debhelper dpkg-dev lintian debootstrap qemu-utils e2fsprogs \
	libxxhash-dev

.PHONY: all deps modules daemon selftests vmm check check-host check-vm check-vmm check-e2e soak-e2e bench demo \
	install dkms-install deb check-packaging clean soak

all: modules daemon selftests vmm

# A marker file per package set, so a second run costs one dpkg-query.
deps:
	@missing=$$(for p in $(DEPS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
		grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "deps: installing $$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(KVM_SRC)/.unpacked: $(KSRC_TAR)
	@mkdir -p $(KVM_SRC)
	@echo "  UNPACK  $(KSRC_TAR) (arch/x86/kvm, virt/kvm)"
	@tar -xJf $(KSRC_TAR) -C $(KVM_SRC) --strip-components=1 \
		linux-source-6.1/arch/x86/kvm linux-source-6.1/virt/kvm
	@touch $@

modules: $(KVM_SRC)/.unpacked
	@test -n "$(KVER)" || { echo "no Debian 6.1 kernel headers found: run 'make deps'"; exit 1; }
	$(MAKE) -C $(KDIR) M=$(TOP) KVM_SRC=$(KVM_SRC) modules

daemon:
	$(MAKE) -C daemon

selftests:
	$(MAKE) -C selftests

# ftvm, the FT-aware VMM (vmm/README.md); `make -C vmm check` runs its
# tests in the test VM.
vmm: selftests
	$(MAKE) -C vmm

check-host: daemon
	$(MAKE) -C daemon check

check-vm: modules selftests
	$(MAKE) -C selftests check

# ftvm's tests in one VM: standalone, and a failover with two real ftd.
check-vmm: modules daemon selftests vmm
	$(MAKE) -C vmm check

# Two nested hosts under QEMU sharing a disk, ftd on each, the link through
# a proxy that can cut it; kill/cut scenarios with their invariants.
check-e2e: modules daemon selftests vmm
	$(MAKE) -C selftests/e2e check

soak-e2e: modules daemon selftests vmm
	$(MAKE) -C selftests/e2e soak

check: deps
	$(MAKE) check-host
	$(MAKE) check-vm
	$(MAKE) check-vmm
	$(MAKE) check-e2e
	$(MAKE) check-packaging

# Not part of check: the randomised record/replay equivalence test of
# selftests/kvm_ft/replay.c with KVM_FT_SEEDS seeds (make check runs 200), in
# one VM boot; prints every seed and the counts.
KVM_FT_SEEDS ?= 2000
soak: deps
	$(MAKE) modules selftests
	KVM_FT_SEEDS=$(KVM_FT_SEEDS) VM_TIMEOUT=$${VM_TIMEOUT:-14400} \
		TEST_TIMEOUT=$${TEST_TIMEOUT:-14000} \
		selftests/vm/run.sh check $(BUILD)/selftests/kvm_ft/replay

bench: deps
	$(MAKE) modules selftests daemon
	$(MAKE) -C selftests bench
	$(MAKE) -C daemon bench

# Boots the two nested hosts, runs the guest protected, kills the primary's
# host, shows the backup live and the output going on; exit 0 iff the
# invariants held.
demo: deps
	@echo "==> building kvm_ft.ko, ftd, ftctl, ftvm, the bed's tools"
	@mkdir -p $(BUILD)
	@$(MAKE) -s modules daemon selftests vmm > $(BUILD)/demo-build.log 2>&1 || \
		{ tail -n 30 $(BUILD)/demo-build.log; exit 1; }
	@$(MAKE) -s -C selftests/e2e
	@selftests/e2e/demo.sh

install: daemon
	$(MAKE) -C daemon install

# The module source as DKMS wants it under /usr/src/kvm-ft-<version>/, then
# add/build/install for $(KVER). With DESTDIR only the files are installed.
DKMS_VER = $(shell sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' $(TOP)/dkms.conf)
dkms-install:
	@test -n "$(DKMS_VER)" || { echo "dkms-install: no PACKAGE_VERSION in dkms.conf"; exit 1; }
	rm -rf $(DESTDIR)/usr/src/kvm-ft-$(DKMS_VER)
	install -d $(DESTDIR)/usr/src/kvm-ft-$(DKMS_VER)/kmod $(DESTDIR)/usr/src/kvm-ft-$(DKMS_VER)/uapi/linux
	install -m 0644 Kbuild dkms.conf $(DESTDIR)/usr/src/kvm-ft-$(DKMS_VER)/
	install -m 0644 kmod/Kbuild kmod/README kmod/*.c kmod/*.h $(DESTDIR)/usr/src/kvm-ft-$(DKMS_VER)/kmod/
	install -m 0644 uapi/linux/*.h $(DESTDIR)/usr/src/kvm-ft-$(DKMS_VER)/uapi/linux/
	@if [ -z "$(DESTDIR)" ]; then \
		test -n "$(KVER)" || { echo "dkms-install: no Debian 6.1 kernel headers: run 'make deps'"; exit 1; }; \
		set -x; dkms remove kvm-ft/$(DKMS_VER) --all >/dev/null 2>&1; \
		dkms add kvm-ft/$(DKMS_VER) && dkms build kvm-ft/$(DKMS_VER) -k $(KVER) && \
		dkms install kvm-ft/$(DKMS_VER) -k $(KVER); \
	fi

# Debian packages kvm-ft-dkms and ftd from a staged copy of the tree
# (packaging/debian becomes debian/), then lintian; errors fail the build.
DEB_DIR := $(BUILD)/deb
deb:
	@v=$$(dpkg-parsechangelog -l packaging/debian/changelog -S Version); \
	test "$$v" = "$(DKMS_VER)" || { echo "deb: changelog says $$v, dkms.conf $(DKMS_VER)"; exit 1; }
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src/kvm-ft-$(DKMS_VER)
	git ls-files -co --exclude-standard Kbuild dkms.conf kmod uapi daemon packaging | \
		grep -v '^packaging/debian/' | tar -cf - -T - | tar -xf - -C $(DEB_DIR)/src/kvm-ft-$(DKMS_VER)
	cp -r packaging/debian $(DEB_DIR)/src/kvm-ft-$(DKMS_VER)/debian
	cd $(DEB_DIR)/src/kvm-ft-$(DKMS_VER) && dpkg-buildpackage -us -uc -b -j2
	mv $(DEB_DIR)/src/*.deb $(DEB_DIR)/src/*.changes $(DEB_DIR)/src/*.buildinfo $(DEB_DIR)/
	lintian --fail-on error --display-info $(DEB_DIR)/kvm-ft_$(DKMS_VER)_amd64.changes

# The .debs installed into a debootstrapped Debian 12 (cached under
# build/packaging/) booted under QEMU with systemd: DKMS, modprobe, ftd.service.
check-packaging: deps
	$(MAKE) deb
	selftests/packaging/run.sh

clean:
	-$(MAKE) -C $(KDIR) M=$(TOP) clean 2>/dev/null
	-$(MAKE) -C daemon clean
	-$(MAKE) -C selftests clean
	rm -rf $(BUILD)
