/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The state of a whole ftvm VM, for re-protection (a new backup seeded from
 * the live VM, daemon/ftd_vmm.h SNAPSHOT and SEED).
 *
 * A snapshot lives in a sealed memfd (F_SEAL_WRITE | F_SEAL_SHRINK |
 * F_SEAL_GROW) and travels as bytes: ftd streams it to the peer's ftd, which
 * hands it to its VMM in a memfd again. Its format is ftvm's own, versioned
 * and checksummed; every field is little-endian (x86-64 only):
 *
 *   struct ftvm_snap_hdr               magic, version, total length, CRC32C
 *   sections, each struct ftvm_snap_sect + payload padded to 8 bytes:
 *     REGS      struct kvm_regs
 *     SREGS     struct kvm_sregs
 *     XSAVE     struct kvm_xsave (FPU, SSE, AVX...: KVM_GET_XSAVE)
 *     XCRS      struct kvm_xcrs
 *     MSRS      __u32 count, __u32 0, struct kvm_msr_entry[count]: the MSRs
 *               of ftvm_snap_msrs[] the host's KVM could read
 *     EVENTS    struct kvm_vcpu_events (pending/injected exception,
 *               interrupt, NMI, interrupt shadow)
 *     DEBUGREGS struct kvm_debugregs
 *     DEVICES   struct ftvm_snap_dev (ftvm's device and output state)
 *     MEM       __u64 mem_size, a bitmap of its 4 KiB pages (bit set: the
 *               page is not all zero; mem_size / 32768 bytes, padded to 8),
 *               then the set pages in address order
 *   Each type exactly once. The VM has no in-kernel irqchip (no LAPIC, PIT
 *   or IOAPIC state: interrupts come from ftvm through kvm_ft).
 *
 * The CRC covers the whole snapshot with the crc field zero. It finds
 * corruption and truncation; the transport (ftd's authenticated channel)
 * keeps forgeries out.
 */
#ifndef FTVM_SNAPSHOT_H
#define FTVM_SNAPSHOT_H

#include <stdint.h>
#include <linux/types.h>

#define FTVM_SNAP_MAGIC		0x50414e534d565446ULL	/* "FTVMSNAP" */
#define FTVM_SNAP_VERSION	1
/* A snapshot is at most this big (64 MiB of memory and the rest). */
#define FTVM_SNAP_MAX		(1ULL << 30)

struct ftvm_snap_hdr {
	__u64 magic;
	__u32 version;
	__u32 nsect;		/* sections that follow */
	__u64 total_len;	/* bytes, this header included */
	__u32 crc;		/* CRC32C of total_len bytes, this field zero */
	__u32 reserved;
};

enum ftvm_snap_type {
	FTVM_SNAP_REGS = 1,
	FTVM_SNAP_SREGS,
	FTVM_SNAP_XSAVE,
	FTVM_SNAP_XCRS,
	FTVM_SNAP_MSRS,
	FTVM_SNAP_EVENTS,
	FTVM_SNAP_DEBUGREGS,
	FTVM_SNAP_DEVICES,
	FTVM_SNAP_MEM,
	FTVM_SNAP_NTYPES
};

struct ftvm_snap_sect {
	__u32 type;		/* enum ftvm_snap_type */
	__u32 reserved;
	__u64 len;		/* payload bytes (unpadded) */
};

/* ftvm's own state that the guest's future depends on. */
struct ftvm_snap_dev {
	__u64 rng;		/* RANDOM_PORT's generator (vCPU thread) */
	__u64 dma_seq;		/* last DMA block sent: the guest takes only newer ones */
	__u32 out_lo, out_hi;	/* halves of the output being assembled */
	__u64 last_n;		/* n of the last output written */
	__u64 emitted;		/* outputs written */
};

struct ftvm;

/*
 * The vCPU is parked (not in KVM_RUN) and nothing else changes the VM:
 * capture it into a new sealed memfd. Returns the fd and the length in
 * *len, or -1 (logged).
 */
int ftvm_snap_capture(struct ftvm *v, uint64_t *len);

/*
 * Check the snapshot in fd (len bytes, as ftd announced) completely, then
 * build v->vm from it: guest memory, vCPU and device state. 0, or -1 with
 * one log line saying why it was refused.
 */
int ftvm_snap_restore(struct ftvm *v, int fd, uint64_t len);

#endif
