// SPDX-License-Identifier: GPL-2.0
/*
 * Capture and restore of a whole ftvm VM (format: snapshot.h).
 *
 * Capture runs on the control thread while the vCPU is parked at a
 * landmark (out of KVM_RUN, its last exit complete) and the devices are
 * held: KVM's vCPU ioctls then read a state nobody changes. Guest memory
 * is copied page by page, all-zero pages left out (most of the 64 MiB is
 * never touched). Restore checks everything (magic, version, length, CRC,
 * every section's type, size and count) before it changes the new VM.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ftvm.h"
#include "snapshot.h"
#include "workload.h"
#include "../daemon/crc32c.h"

#define PAGE		4096ULL
#define ALIGN8(x)	(((x) + 7) & ~7ULL)

/* The MSRs the guest may use that KVM_GET/SET_SREGS do not carry. */
static const uint32_t snap_msrs[] = {
	0x00000010,	/* IA32_TSC */
	0x00000174,	/* IA32_SYSENTER_CS */
	0x00000175,	/* IA32_SYSENTER_ESP */
	0x00000176,	/* IA32_SYSENTER_EIP */
	0x000001a0,	/* IA32_MISC_ENABLE */
	0x00000277,	/* IA32_PAT */
	0x000002ff,	/* IA32_MTRR_DEF_TYPE */
	0xc0000081,	/* STAR */
	0xc0000082,	/* LSTAR */
	0xc0000083,	/* CSTAR */
	0xc0000084,	/* SYSCALL_MASK */
	0xc0000102,	/* KERNEL_GS_BASE */
};
#define NMSRS	(sizeof(snap_msrs) / sizeof(snap_msrs[0]))

struct msrs {
	__u32 count, pad;
	struct kvm_msr_entry e[NMSRS];
};

/* The vCPU state, in the order it is restored. */
struct vcpu_state {
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_xsave xsave;
	struct kvm_regs regs;
	struct msrs msrs;
	struct kvm_vcpu_events events;
	struct kvm_debugregs dregs;
};

static bool page_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;

	for (size_t i = 0; i < PAGE / 8; i++)
		if (q[i])
			return false;
	return true;
}

static int get_vcpu(struct ftvm *v, struct vcpu_state *s)
{
	int fd = v->vm->vcpu_fd;
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e[1];
	} one;

	memset(s, 0, sizeof(*s));
	if (ioctl(fd, KVM_GET_SREGS, &s->sregs) || ioctl(fd, KVM_GET_XCRS, &s->xcrs) ||
	    ioctl(fd, KVM_GET_XSAVE, &s->xsave) || ioctl(fd, KVM_GET_REGS, &s->regs) ||
	    ioctl(fd, KVM_GET_VCPU_EVENTS, &s->events) ||
	    ioctl(fd, KVM_GET_DEBUGREGS, &s->dregs)) {
		ftvm_log("snapshot: reading the vCPU state: %s", strerror(errno));
		return -1;
	}
	/* One at a time: an MSR this host's KVM does not know is left out. */
	for (size_t i = 0; i < NMSRS; i++) {
		memset(&one, 0, sizeof(one));
		one.h.nmsrs = 1;
		one.e[0].index = snap_msrs[i];
		if (ioctl(fd, KVM_GET_MSRS, &one) == 1)
			s->msrs.e[s->msrs.count++] = one.e[0];
	}
	return 0;
}

/* A section at p: header, payload (copied if data), padding; returns what follows. */
static uint8_t *put_sect(uint8_t *p, uint32_t type, const void *data, uint64_t len)
{
	struct ftvm_snap_sect h = { .type = type, .len = len };

	memcpy(p, &h, sizeof(h));
	if (data)
		memcpy(p + sizeof(h), data, len);
	return p + sizeof(h) + ALIGN8(len);
}

int ftvm_snap_capture(struct ftvm *v, uint64_t *len_out)
{
	uint64_t npages = v->vm->mem_size / PAGE, bm_len = ALIGN8((npages + 7) / 8), set = 0;
	struct ftvm_snap_dev dev = {
		.rng = v->rng, .dma_seq = v->dma_seq, .out_lo = v->out_lo, .out_hi = v->out_hi,
		.last_n = v->out.last_n, .emitted = v->out.emitted,
	};
	struct ftvm_snap_hdr *h;
	struct vcpu_state s;
	uint64_t total, msrs_len;
	uint8_t *map, *p, *bm, *nz = NULL;
	int fd;

	if (get_vcpu(v, &s))
		return -1;
	/* One pass over guest memory: which pages are not all zero. */
	nz = calloc(1, bm_len);
	if (!nz) {
		ftvm_log("snapshot: %s", strerror(errno));
		return -1;
	}
	for (uint64_t i = 0; i < npages; i++) {
		if (page_zero(v->vm->mem + i * PAGE))
			continue;
		nz[i / 8] |= 1 << (i % 8);
		set++;
	}
	msrs_len = 8 + s.msrs.count * sizeof(struct kvm_msr_entry);
	total = sizeof(*h) + (FTVM_SNAP_NTYPES - 1) * sizeof(struct ftvm_snap_sect) +
		ALIGN8(sizeof(s.regs)) + ALIGN8(sizeof(s.sregs)) + ALIGN8(sizeof(s.xsave)) +
		ALIGN8(sizeof(s.xcrs)) + ALIGN8(msrs_len) + ALIGN8(sizeof(s.events)) +
		ALIGN8(sizeof(s.dregs)) + ALIGN8(sizeof(dev)) + 8 + bm_len + set * PAGE;
	fd = memfd_create("ftvm-snapshot", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, total)) {
		ftvm_log("snapshot: memfd of %llu bytes: %s", (unsigned long long)total,
			 strerror(errno));
		goto fail_fd;
	}
	map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		ftvm_log("snapshot: mmap: %s", strerror(errno));
		goto fail_fd;
	}
	h = (struct ftvm_snap_hdr *)map;
	*h = (struct ftvm_snap_hdr){ .magic = FTVM_SNAP_MAGIC, .version = FTVM_SNAP_VERSION,
				     .nsect = FTVM_SNAP_NTYPES - 1, .total_len = total };
	p = map + sizeof(*h);
	p = put_sect(p, FTVM_SNAP_REGS, &s.regs, sizeof(s.regs));
	p = put_sect(p, FTVM_SNAP_SREGS, &s.sregs, sizeof(s.sregs));
	p = put_sect(p, FTVM_SNAP_XSAVE, &s.xsave, sizeof(s.xsave));
	p = put_sect(p, FTVM_SNAP_XCRS, &s.xcrs, sizeof(s.xcrs));
	p = put_sect(p, FTVM_SNAP_MSRS, &s.msrs, msrs_len);
	p = put_sect(p, FTVM_SNAP_EVENTS, &s.events, sizeof(s.events));
	p = put_sect(p, FTVM_SNAP_DEBUGREGS, &s.dregs, sizeof(s.dregs));
	p = put_sect(p, FTVM_SNAP_DEVICES, &dev, sizeof(dev));
	/* MEM last: its payload is written in place. */
	put_sect(p, FTVM_SNAP_MEM, NULL, 8 + bm_len + set * PAGE);
	p += sizeof(struct ftvm_snap_sect);
	memcpy(p, &v->vm->mem_size, 8);
	bm = p + 8;
	p = bm + bm_len;
	memcpy(bm, nz, bm_len);
	for (uint64_t i = 0; i < npages; i++) {
		if (!((nz[i / 8] >> (i % 8)) & 1))
			continue;
		memcpy(p, v->vm->mem + i * PAGE, PAGE);
		p += PAGE;
	}
	if ((uint64_t)(p - map) != total) {
		ftvm_log("snapshot: wrote %llu of %llu bytes",
			 (unsigned long long)(p - map), (unsigned long long)total);
		munmap(map, total);
		goto fail_fd;
	}
	h->crc = ft_crc32c(0, map, total);
	munmap(map, total);
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) {
		ftvm_log("snapshot: sealing the memfd: %s", strerror(errno));
		goto fail_fd;
	}
	ftvm_log("snapshot: %llu bytes: %llu of %llu guest pages, %u MSRs, rip %#llx",
		 (unsigned long long)total, (unsigned long long)set, (unsigned long long)npages,
		 s.msrs.count, (unsigned long long)s.regs.rip);
	*len_out = total;
	free(nz);
	return fd;
fail_fd:
	if (fd >= 0)
		close(fd);
	free(nz);
	return -1;
}

/* The sections of a mapped snapshot, checked. */
struct parsed {
	const uint8_t *payload[FTVM_SNAP_NTYPES];
	uint64_t len[FTVM_SNAP_NTYPES];
};

static const char *parse(const uint8_t *map, uint64_t total, uint64_t mem_size, struct parsed *ps)
{
	static char why[160];
	const struct ftvm_snap_hdr *h = (const void *)map;
	struct ftvm_snap_hdr hc;
	uint64_t off = sizeof(*h), npages = mem_size / PAGE, bm_len = ALIGN8((npages + 7) / 8);
	uint64_t set = 0, fixed[FTVM_SNAP_NTYPES] = {
		[FTVM_SNAP_REGS] = sizeof(struct kvm_regs),
		[FTVM_SNAP_SREGS] = sizeof(struct kvm_sregs),
		[FTVM_SNAP_XSAVE] = sizeof(struct kvm_xsave),
		[FTVM_SNAP_XCRS] = sizeof(struct kvm_xcrs),
		[FTVM_SNAP_EVENTS] = sizeof(struct kvm_vcpu_events),
		[FTVM_SNAP_DEBUGREGS] = sizeof(struct kvm_debugregs),
		[FTVM_SNAP_DEVICES] = sizeof(struct ftvm_snap_dev),
	};
	uint32_t crc;

	memset(ps, 0, sizeof(*ps));
	if (total < sizeof(*h))
		return "shorter than its header";
	if (h->magic != FTVM_SNAP_MAGIC)
		return "not an ftvm snapshot (bad magic)";
	if (h->version != FTVM_SNAP_VERSION) {
		snprintf(why, sizeof(why), "version %u, this ftvm reads version %u", h->version,
			 FTVM_SNAP_VERSION);
		return why;
	}
	if (h->total_len != total) {
		snprintf(why, sizeof(why), "truncated or padded: %llu bytes, the header says %llu",
			 (unsigned long long)total, (unsigned long long)h->total_len);
		return why;
	}
	hc = *h;
	hc.crc = 0;
	crc = ft_crc32c(0, &hc, sizeof(hc));
	crc = ft_crc32c(crc, map + sizeof(hc), total - sizeof(hc));
	if (crc != h->crc) {
		snprintf(why, sizeof(why), "checksum mismatch (CRC32C %08x, the header says %08x)",
			 crc, h->crc);
		return why;
	}
	if (h->reserved || h->nsect != FTVM_SNAP_NTYPES - 1)
		return "bad header (reserved field or section count)";
	for (uint32_t i = 0; i < h->nsect; i++) {
		struct ftvm_snap_sect s;

		if (total - off < sizeof(s))
			return "a section header runs past the end";
		memcpy(&s, map + off, sizeof(s));
		off += sizeof(s);
		if (!s.type || s.type >= FTVM_SNAP_NTYPES || s.reserved || ps->payload[s.type]) {
			snprintf(why, sizeof(why), "bad or repeated section type %u", s.type);
			return why;
		}
		if (s.len > total - off || ALIGN8(s.len) > total - off) {
			snprintf(why, sizeof(why), "section %u runs past the end", s.type);
			return why;
		}
		if (fixed[s.type] && s.len != fixed[s.type]) {
			snprintf(why, sizeof(why), "section %u is %llu bytes, not %llu", s.type,
				 (unsigned long long)s.len, (unsigned long long)fixed[s.type]);
			return why;
		}
		ps->payload[s.type] = map + off;
		ps->len[s.type] = s.len;
		off += ALIGN8(s.len);
	}
	if (off != total)
		return "bytes after the last section";
	/* MSRS: a count that matches its length. */
	{
		uint32_t n;

		memcpy(&n, ps->payload[FTVM_SNAP_MSRS], 4);
		if (ps->len[FTVM_SNAP_MSRS] < 8 || n > NMSRS ||
		    ps->len[FTVM_SNAP_MSRS] != 8 + n * sizeof(struct kvm_msr_entry))
			return "bad MSR section";
	}
	/* MEM: this VM's size, a bitmap and exactly its pages. */
	{
		const uint8_t *m = ps->payload[FTVM_SNAP_MEM];
		uint64_t ms;

		if (ps->len[FTVM_SNAP_MEM] < 8 + bm_len)
			return "memory section shorter than its bitmap";
		memcpy(&ms, m, 8);
		if (ms != mem_size) {
			snprintf(why, sizeof(why), "guest memory of %llu bytes, this VM has %llu",
				 (unsigned long long)ms, (unsigned long long)mem_size);
			return why;
		}
		for (uint64_t i = 0; i < npages; i++)
			set += (m[8 + i / 8] >> (i % 8)) & 1;
		for (uint64_t i = npages; i < bm_len * 8; i++)
			if ((m[8 + i / 8] >> (i % 8)) & 1)
				return "memory bitmap has bits past the end of memory";
		if (ps->len[FTVM_SNAP_MEM] != 8 + bm_len + set * PAGE)
			return "memory section length does not match its bitmap";
	}
	return NULL;
}

static int set_vcpu(struct ftvm *v, const struct parsed *ps)
{
	int fd = v->vm->vcpu_fd;
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e[NMSRS];
	} msrs;
	uint32_t n;
	int r;

#define SET(ioc, type, what) do { \
		if (ioctl(fd, ioc, ps->payload[type])) { \
			ftvm_log("snapshot refused: %s: %s", what, strerror(errno)); \
			return -1; \
		} \
	} while (0)
	/*
	 * The payloads are 8-byte aligned in the mapping (page-aligned
	 * start, sections padded to 8), as the ioctls' structures want.
	 */
	SET(KVM_SET_SREGS, FTVM_SNAP_SREGS, "KVM_SET_SREGS");
	SET(KVM_SET_XCRS, FTVM_SNAP_XCRS, "KVM_SET_XCRS");
	SET(KVM_SET_XSAVE, FTVM_SNAP_XSAVE, "KVM_SET_XSAVE");
	SET(KVM_SET_REGS, FTVM_SNAP_REGS, "KVM_SET_REGS");
	memcpy(&n, ps->payload[FTVM_SNAP_MSRS], 4);
	memset(&msrs, 0, sizeof(msrs));
	msrs.h.nmsrs = n;
	memcpy(msrs.e, ps->payload[FTVM_SNAP_MSRS] + 8, n * sizeof(struct kvm_msr_entry));
	r = ioctl(fd, KVM_SET_MSRS, &msrs);
	if (r != (int)n) {
		ftvm_log("snapshot refused: KVM_SET_MSRS: %s", r < 0 ? strerror(errno) :
			 "this host's KVM refused an MSR");
		if (r >= 0)
			ftvm_log("snapshot: MSR %#x = %#llx refused", msrs.e[r].index,
				 (unsigned long long)msrs.e[r].data);
		return -1;
	}
	SET(KVM_SET_VCPU_EVENTS, FTVM_SNAP_EVENTS, "KVM_SET_VCPU_EVENTS");
	SET(KVM_SET_DEBUGREGS, FTVM_SNAP_DEBUGREGS, "KVM_SET_DEBUGREGS");
#undef SET
	return 0;
}

int ftvm_snap_restore(struct ftvm *v, int fd, uint64_t len)
{
	uint64_t npages = v->vm->mem_size / PAGE, bm_len = ALIGN8((npages + 7) / 8), loaded = 0;
	struct ftvm_guest_stats g;
	struct ftvm_snap_dev dev;
	struct parsed ps;
	const uint8_t *map, *bm, *pg;
	const char *why;
	struct stat st;

	if (fstat(fd, &st)) {
		ftvm_log("snapshot refused: fstat: %s", strerror(errno));
		return -1;
	}
	if (!len || len > FTVM_SNAP_MAX || (uint64_t)st.st_size != len) {
		ftvm_log("snapshot refused: truncated: the memfd has %lld bytes, ftd announced %llu",
			 (long long)st.st_size, (unsigned long long)len);
		return -1;
	}
	map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		ftvm_log("snapshot refused: mmap: %s", strerror(errno));
		return -1;
	}
	why = parse(map, len, v->vm->mem_size, &ps);
	if (why) {
		ftvm_log("snapshot refused: %s", why);
		munmap((void *)map, len);
		return -1;
	}
	/* Guest memory: all zero, then the pages of the snapshot. */
	if (madvise(v->vm->mem, v->vm->mem_size, MADV_DONTNEED)) {
		ftvm_log("snapshot: clearing guest memory: %s", strerror(errno));
		munmap((void *)map, len);
		return -1;
	}
	bm = ps.payload[FTVM_SNAP_MEM] + 8;
	pg = bm + bm_len;
	for (uint64_t i = 0; i < npages; i++) {
		if (!((bm[i / 8] >> (i % 8)) & 1))
			continue;
		memcpy(v->vm->mem + i * PAGE, pg, PAGE);
		pg += PAGE;
		loaded++;
	}
	if (set_vcpu(v, &ps)) {
		munmap((void *)map, len);
		return -1;
	}
	memcpy(&dev, ps.payload[FTVM_SNAP_DEVICES], sizeof(dev));
	v->rng = dev.rng;
	v->dma_seq = dev.dma_seq;
	v->out_lo = dev.out_lo;
	v->out_hi = dev.out_hi;
	v->rlog.lo = dev.out_lo;
	v->rlog.hi = dev.out_hi;
	vm_read(v->vm, &ftvm_gstats, &g, sizeof(g));
	ftvm_log("snapshot: restored %llu bytes: %llu guest pages, rip %#llx; the primary had "
		 "written %llu outputs (last n %llu); guest at output %llu, %llu dma blocks checked",
		 (unsigned long long)len, (unsigned long long)loaded,
		 (unsigned long long)((const struct kvm_regs *)ps.payload[FTVM_SNAP_REGS])->rip,
		 (unsigned long long)dev.emitted, (unsigned long long)dev.last_n,
		 (unsigned long long)g.outputs, (unsigned long long)g.dma_blocks);
	munmap((void *)map, len);
	return 0;
}
