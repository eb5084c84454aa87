// SPDX-License-Identifier: GPL-2.0
/*
 * Divergence detection by digests (uapi/linux/kvm_ft.h, "DIGESTS").
 *
 * A digest point is an exit at which replay takes a record: IOIO, RDTSC,
 * CPUID, RDMSR, HLT (not in guest mode). The first synchronous record of
 * such an exit is "at a digest point" on both sides.
 *
 * Register digests. Record: the kvm_exit probe hashes the registers at a
 * digest point (only when one is due); after the exit's first record is
 * appended, a REG_DIGEST record with the same landmark follows it. Replay:
 * ft_replay_exit() hashes the registers at the same exit before applying
 * the record, and the next record must be that REG_DIGEST. Both sides use
 * the attach's interval: the first record at a digest point, then the first
 * one at least interval landmarks later, so a missing digest is detected
 * too.
 *
 * Memory digests. KVM_FT_REQUEST_MEM_DIGEST on the primary: the next record
 * at a digest point of an instruction that does not write guest memory
 * (PIO of one element, RDTSC, CPUID, RDMSR) carries KVM_FT_RF_MEM_DIGEST;
 * task_work hashes guest memory before the vCPU next enters the guest (or
 * returns to user space, before the VMM completes the exit) and appends a
 * MEM_DIGEST record. On the backup the digests of a landmark are taken by
 * ft_replay_async() (replay.c) before the next entry, like its DMA and INTR
 * records, which follow them; it waits for them if they are not published
 * yet (the backup lags one record). The flag makes it hash memory there.
 *
 * The per-exit state (struct ft_digest) belongs to the vCPU thread; what
 * KVM_FT_GET_DIGEST reports is under the ring lock.
 */
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/kvm_host.h>
#include <linux/sched/signal.h>
#include <linux/task_work.h>
#include <linux/uaccess.h>
#include <linux/xxhash.h>
#include <asm/svm.h>
#include "svm/svm.h"		/* arch/x86/kvm: struct vcpu_svm */
#include "kvm_cache_regs.h"
#include "ft.h"

static_assert(VCPU_REGS_R15 == 15 && VCPU_REGS_RIP == 16);

/* Exits at which replay takes a record. */
static bool digest_point(struct kvm_vcpu *vcpu)
{
	if (is_guest_mode(vcpu))
		return false;
	switch (ft_svm_exit_code(vcpu)) {
	case SVM_EXIT_IOIO:
	case SVM_EXIT_RDTSC:
	case SVM_EXIT_CPUID:
	case SVM_EXIT_HLT:
		return true;
	case SVM_EXIT_MSR:
		return !ft_svm_exit_info(vcpu, 1);	/* RDMSR */
	}
	return false;
}

/*
 * xxh64 of the registers at an exit, before KVM handled it, as 34
 * little-endian u64: RAX RCX RDX RBX RSP RBP RSI RDI R8..R15, RIP, RFLAGS,
 * CR0, CR3, CR4, EFER, then selector and base of CS SS DS ES FS GS.
 */
static u64 regs_digest(struct kvm_vcpu *vcpu, u64 *rip)
{
	struct vcpu_svm *svm = to_svm(vcpu);
	const struct vmcb_save_area *s = &svm->vmcb01.ptr->save;
	const struct vmcb_seg *seg[] = { &s->cs, &s->ss, &s->ds, &s->es, &s->fs, &s->gs };
	__le64 v[16 + 6 + 2 * ARRAY_SIZE(seg)];
	int i, n = 0;

	for (i = 0; i <= VCPU_REGS_R15; i++)
		v[n++] = cpu_to_le64(vcpu->arch.regs[i]);
	*rip = vcpu->arch.regs[VCPU_REGS_RIP];
	v[n++] = cpu_to_le64(*rip);
	v[n++] = cpu_to_le64(s->rflags);
	/*
	 * The kvm_exit probe runs before svm_handle_exit() refreshes CR0 and
	 * CR3 from the VMCB; take them where that code would.
	 */
	v[n++] = cpu_to_le64(svm_is_intercept(svm, INTERCEPT_CR0_WRITE) ?
			     vcpu->arch.cr0 : s->cr0);
	v[n++] = cpu_to_le64((svm->vmcb01.ptr->control.nested_ctl &
			      SVM_NESTED_CTL_NP_ENABLE) ? s->cr3 : vcpu->arch.cr3);
	v[n++] = cpu_to_le64(vcpu->arch.cr4);
	v[n++] = cpu_to_le64(vcpu->arch.efer);
	for (i = 0; i < ARRAY_SIZE(seg); i++) {
		v[n++] = cpu_to_le64(seg[i]->selector);
		v[n++] = cpu_to_le64(seg[i]->base);
	}
	return xxh64(v, sizeof(v), 0);
}

/*
 * xxh64 of guest memory: for every user memslot of address space 0 in
 * ascending guest-physical order, its gpa and size (little-endian u64)
 * then its bytes. A page that cannot be read is hashed as zeros. Sleeps.
 */
static int mem_digest(struct ft_vm *ft, u64 *digest, u64 *bytes)
{
	struct kvm *kvm = ft->kvm;
	struct kvm_memslot_iter iter;
	struct xxh64_state st;
	int idx, r = 0;
	void *buf;

	buf = (void *)__get_free_page(GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	xxh64_reset(&st, 0);
	*bytes = 0;
	idx = srcu_read_lock(&kvm->srcu);
	kvm_for_each_memslot_in_gfn_range(&iter, __kvm_memslots(kvm, 0), 0, U64_MAX) {
		const struct kvm_memory_slot *slot = iter.slot;
		u64 size = slot->npages << PAGE_SHIFT, off;
		__le64 head[2] = {
			cpu_to_le64(slot->base_gfn << PAGE_SHIFT), cpu_to_le64(size),
		};

		if (slot->id >= KVM_USER_MEM_SLOTS)
			continue;
		xxh64_update(&st, head, sizeof(head));
		for (off = 0; off < size; off += PAGE_SIZE) {
			const void __user *src =
				(const void __user *)(slot->userspace_addr + off);

			if (copy_from_user(buf, src, PAGE_SIZE))
				memset(buf, 0, PAGE_SIZE);
			xxh64_update(&st, buf, PAGE_SIZE);
			if (fatal_signal_pending(current)) {
				r = -EINTR;
				goto out;
			}
			cond_resched();
		}
		*bytes += size;
	}
out:
	srcu_read_unlock(&kvm->srcu, idx);
	free_page((unsigned long)buf);
	*digest = xxh64_digest(&st);
	return r;
}

static void publish(struct ft_vm *ft, bool mem, u64 landmark, u64 digest,
		    u64 bytes)
{
	struct kvm_ft_digest *i = &ft->dg.info;
	unsigned long irqf;

	spin_lock_irqsave(&ft->ring.lock, irqf);
	if (mem) {
		i->mem_count++;
		i->mem_landmark = landmark;
		i->mem_digest = digest;
		i->mem_bytes = bytes;
	} else {
		i->reg_count++;
		i->reg_landmark = landmark;
		i->reg_digest = digest;
	}
	spin_unlock_irqrestore(&ft->ring.lock, irqf);
}

void ft_digest_init(struct ft_vm *ft, u32 interval)
{
	ft->dg.interval = interval;
	ft->dg.next_due = 1;
}

/* Instructions that do not write guest memory: a memory digest may follow. */
bool ft_digest_mem_point(const struct kvm_ft_rec *h)
{
	switch (h->type) {
	case KVM_FT_REC_PIO_IN:
	case KVM_FT_REC_PIO_OUT:
		return ((const struct kvm_ft_rec_pio *)h)->count == 1;
	case KVM_FT_REC_RDMSR:	/* not a #GP: its frame is written at entry */
		return !(((const struct kvm_ft_rec_msr *)h)->flags & KVM_FT_MSR_F_GP);
	case KVM_FT_REC_RDTSC:
	case KVM_FT_REC_CPUID:
		return true;
	}
	return false;
}

/* ---- record ---- */

/* kvm_exit probe of a recorded vCPU: remember a digest point. */
void ft_digest_exit(struct ft_vm *ft, struct kvm_vcpu *vcpu)
{
	struct ft_digest *d = &ft->dg;

	d->regs_valid = digest_point(vcpu);
	/* Only the vCPU thread appends: landmark + 1 is the next record's. */
	if (d->regs_valid && d->interval &&
	    READ_ONCE(ft->ring.landmark) + 1 >= d->next_due)
		d->regs = regs_digest(vcpu, &d->regs_rip);
}

/* Before a synchronous record is appended: announce a memory digest. */
void ft_digest_mark(struct ft_vm *ft, struct kvm_ft_rec *hdr)
{
	if (ft->dg.regs_valid && test_bit(FT_S_MEM_DIGEST_REQ, &ft->state) &&
	    !test_bit(FT_S_DIGEST_QUEUED, &ft->state) && ft_digest_mem_point(hdr))
		hdr->flags |= KVM_FT_RF_MEM_DIGEST;
}

/* task_work on the recorded vCPU's thread: hash memory, log the digest. */
static void record_mem(struct callback_head *cb)
{
	struct ft_vm *ft = container_of(cb, struct ft_vm, dg.work);
	struct kvm_ft_rec_digest rec = {
		.hdr.type = KVM_FT_REC_MEM_DIGEST,
		.hdr.flags = KVM_FT_RF_ASYNC,
	};
	struct file *file = ft->file;

	/* No synchronous record can come before us: the guest has not run. */
	if (ft_vm_recording(ft) && !(current->flags & PF_EXITING) &&
	    READ_ONCE(ft->ring.landmark) == ft->dg.mem_landmark) {
		if (!mem_digest(ft, &rec.digest, &rec.bytes)) {
			ft_record(ft, &rec.hdr, sizeof(rec), NULL, 0, false);
			publish(ft, true, ft->dg.mem_landmark, rec.digest, rec.bytes);
		}
	}
	clear_bit_unlock(FT_S_DIGEST_QUEUED, &ft->state);
	fput(file);
}

/* After a synchronous record was appended: the digests that follow it. */
void ft_digest_recorded(struct ft_vm *ft, const struct kvm_ft_rec *hdr)
{
	struct ft_digest *d = &ft->dg;
	bool point = d->regs_valid;

	d->regs_valid = false;		/* the exit's first record only */
	if (point && d->interval && hdr->landmark >= d->next_due) {
		struct kvm_ft_rec_digest rec = {
			.hdr.type = KVM_FT_REC_REG_DIGEST,
			.hdr.flags = KVM_FT_RF_ASYNC,
			.rip = d->regs_rip,
			.digest = d->regs,
		};

		d->next_due = hdr->landmark + d->interval;
		ft_record(ft, &rec.hdr, sizeof(rec), NULL, 0, false);
		publish(ft, false, hdr->landmark, rec.digest, 0);
	}
	if (hdr->flags & KVM_FT_RF_MEM_DIGEST) {
		clear_bit(FT_S_MEM_DIGEST_REQ, &ft->state);
		d->mem_landmark = hdr->landmark;
		ft_queue_task(ft, &d->work, FT_S_DIGEST_QUEUED, record_mem);
	}
}

/* ---- replay ---- */

static void dig_event(const struct kvm_ft_rec_digest *rec, struct kvm_ft_div_event *e)
{
	memset(e, 0, sizeof(*e));
	e->type = rec->hdr.type;
	e->rip = rec->rip;
	e->addr = rec->bytes;
	e->value = rec->digest;
}

static bool dig_valid(const struct kvm_ft_rec_digest *rec)
{
	return rec->hdr.len == sizeof(*rec) && rec->hdr.flags == KVM_FT_RF_ASYNC &&
	       (rec->hdr.type == KVM_FT_REC_REG_DIGEST ? !rec->bytes : !rec->rip);
}

static void diverge(struct ft_vm *ft, u32 reason, u64 pos,
		    const struct kvm_ft_rec *h, const struct kvm_ft_div_event *exp,
		    const struct kvm_ft_div_event *act)
{
	ft_replay_fail(ft, KVM_FT_ERR_DIVERGENCE, reason, pos, h, exp, act);
}

/* A register digest record: expected now, and equal to ours. */
static bool check_reg(struct ft_vm *ft, const struct kvm_ft_rec_digest *rec, u64 pos)
{
	struct ft_digest *d = &ft->dg;
	struct kvm_ft_div_event exp, act = { .type = KVM_FT_REC_REG_DIGEST };

	dig_event(rec, &exp);
	if (d->expect_reg) {
		act.rip = d->regs_rip;
		act.value = d->regs;
	}
	/* Unexpected (the actual side is empty), or different. */
	if (!d->expect_reg || rec->digest != d->regs || rec->rip != d->regs_rip) {
		diverge(ft, KVM_FT_DIV_REG_DIGEST, pos, &rec->hdr, &exp, &act);
		return false;
	}
	d->expect_reg = false;
	publish(ft, false, rec->hdr.landmark, rec->digest, 0);
	return true;
}

/* Sleepable: a memory digest record, announced, equal to ours. */
static bool check_mem(struct ft_vm *ft, const struct kvm_ft_rec_digest *rec, u64 pos)
{
	struct ft_digest *d = &ft->dg;
	struct kvm_ft_div_event exp, act = { .type = KVM_FT_REC_MEM_DIGEST };

	dig_event(rec, &exp);
	if (d->expect_mem && mem_digest(ft, &act.value, &act.addr))
		return false;		/* fatal signal: no verdict */
	if (!d->expect_mem || act.value != rec->digest || act.addr != rec->bytes) {
		diverge(ft, KVM_FT_DIV_MEM_DIGEST, pos, &rec->hdr, &exp, &act);
		return false;
	}
	d->expect_mem = false;
	publish(ft, true, rec->hdr.landmark, rec->digest, rec->bytes);
	return true;
}

/* @h is not a digest: report a digest that was due before it. */
static bool none_missing(struct ft_vm *ft, const struct kvm_ft_rec *h, u64 pos)
{
	struct ft_digest *d = &ft->dg;
	struct kvm_ft_div_event exp = {}, act = { .type = h->type };

	if (!d->expect_reg && !d->expect_mem)
		return true;
	exp.type = d->expect_reg ? KVM_FT_REC_REG_DIGEST : KVM_FT_REC_MEM_DIGEST;
	diverge(ft, d->expect_reg ? KVM_FT_DIV_REG_DIGEST : KVM_FT_DIV_MEM_DIGEST,
		pos, h, &exp, &act);
	return false;
}

static bool check_format(struct ft_vm *ft, const struct kvm_ft_rec_digest *rec, u64 pos)
{
	struct kvm_ft_div_event exp = { .type = rec->hdr.type };

	if (dig_valid(rec))
		return true;
	ft_replay_fail(ft, KVM_FT_ERR_BAD_RECORD, KVM_FT_DIV_FORMAT, pos, &rec->hdr,
		       &exp, NULL);
	return false;
}

/*
 * ft_replay_exit() (atomic): the next record, register digests on the way
 * checked. The digests of a landmark are normally taken by
 * ft_replay_async() before the next entry; a memory digest found here came
 * too late (the guest ran) and diverges. Returns ft_ring_take()'s results,
 * or -EIO after a report.
 */
int ft_digest_take(struct ft_vm *ft, struct kvm_vcpu *vcpu, struct ft_take_err *err)
{
	const struct kvm_ft_rec_digest *rec = ft->rbuf;
	struct kvm_ft_div_event exp = {}, act = {};
	u64 pos;
	int len;

	for (;;) {
		len = ft_ring_take(&ft->ring, ft->rbuf, err);
		if (len < 0)
			return len;
		pos = READ_ONCE(ft->ring.tail) - len;
		if (rec->hdr.type == KVM_FT_REC_REG_DIGEST) {
			if (!check_format(ft, rec, pos) || !check_reg(ft, rec, pos))
				return -EIO;
			continue;
		}
		if (!none_missing(ft, &rec->hdr, pos))
			return -EIO;
		if (rec->hdr.type == KVM_FT_REC_MEM_DIGEST) {	/* not announced */
			dig_event(rec, &exp);
			act.type = KVM_FT_REC_MEM_DIGEST;
			diverge(ft, KVM_FT_DIV_MEM_DIGEST, pos, &rec->hdr, &exp, &act);
			return -EIO;
		}
		return len;
	}
}

/*
 * ft_replay_async() took asynchronous record @h at @pos (sleepable, before
 * the next entry). Returns 1 if it was a digest and matched, 0 if it is
 * not a digest (and none was due before it), -1 after a report.
 */
int ft_digest_async(struct ft_vm *ft, const struct kvm_ft_rec *h, u64 pos)
{
	const struct kvm_ft_rec_digest *rec = (const void *)h;

	switch (h->type) {
	case KVM_FT_REC_REG_DIGEST:
		return check_format(ft, rec, pos) && check_reg(ft, rec, pos) ? 1 : -1;
	case KVM_FT_REC_MEM_DIGEST:
		if (!check_format(ft, rec, pos))
			return -1;
		/* A register digest due at this landmark comes first. */
		if (ft->dg.expect_reg) {
			none_missing(ft, h, pos);
			return -1;
		}
		return check_mem(ft, rec, pos) ? 1 : -1;
	}
	return none_missing(ft, h, pos) ? 0 : -1;
}

/*
 * ft_replay_exit() took @h at a digest point and checked its RIP; the
 * instruction has no effect yet. Hash the registers when a digest is due;
 * note an announced memory digest (ft_replay_async() waits for it).
 */
void ft_digest_replayed(struct ft_vm *ft, struct kvm_vcpu *vcpu,
			const struct kvm_ft_rec *h)
{
	struct ft_digest *d = &ft->dg;

	if (d->interval && h->landmark >= d->next_due) {
		d->regs = regs_digest(vcpu, &d->regs_rip);
		d->next_due = h->landmark + d->interval;
		d->expect_reg = true;
	}
	d->expect_mem = h->flags & KVM_FT_RF_MEM_DIGEST;
}

/* ---- ioctls ---- */

long ft_digest_request(struct ft_vm *ft)
{
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (!ft_vm_recording(ft))
		return -EINVAL;
	set_bit(FT_S_MEM_DIGEST_REQ, &ft->state);
	return 0;
}

long ft_digest_get(struct ft_vm *ft, void __user *uarg)
{
	struct kvm_ft_digest i;
	unsigned long irqf;

	spin_lock_irqsave(&ft->ring.lock, irqf);
	i = ft->dg.info;
	spin_unlock_irqrestore(&ft->ring.lock, irqf);
	i.interval = ft->dg.interval ? ft->dg.interval : KVM_FT_DIGEST_OFF;
	i.flags = test_bit(FT_S_MEM_DIGEST_REQ, &ft->state) ?
		  KVM_FT_DIGEST_F_MEM_PENDING : 0;
	memset(i.reserved, 0, sizeof(i.reserved));
	return copy_to_user(uarg, &i, sizeof(i)) ? -EFAULT : 0;
}
