// SPDX-License-Identifier: GPL-2.0
/*
 * Replay mode: the backup's vCPU takes its synchronous inputs from the
 * replay ring that user space fills, and every synchronous exit is checked
 * against the next record. See uapi/linux/kvm_ft.h "THE REPLAY RING".
 *
 * ft_replay_exit() runs from the ftrace callback on svm_invoke_exit_handler
 * (svm.c), preemption disabled, before KVM handles the exit. For PIO,
 * RDTSC, CPUID and RDMSR it emulates the instruction from the record and
 * the hook skips it; for HLT it only checks; when no record is published
 * yet, or the VM is stopped, the hook abandons the exit without any side
 * effect and the guest re-executes the instruction after the vCPU waited
 * (task_work before the next entry, as the recorder's wait for space).
 */
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/kvm_host.h>
#include <linux/ktime.h>
#include <linux/sched/signal.h>
#include <linux/task_work.h>
#include <asm/svm.h>
#include "kvm_cache_regs.h"
#include "ft.h"

static_assert(SVM_EXIT_IOIO == 0x7b && SVM_EXIT_CPUID == 0x72 &&
	      SVM_EXIT_MSR == 0x7c);

/* The attachment to replay for, or NULL; enforces the single-vCPU rule. */
struct ft_vm *ft_replay_target(struct kvm_vcpu *vcpu)
{
	struct ft_vm *ft = ft_vm_lookup(vcpu->kvm);

	if (!ft || !ft_vm_replaying(ft))
		return NULL;
	if (unlikely(vcpu != ft->vcpu)) {
		ft_record_fail(ft, KVM_FT_ERR_MULTI_VCPU);
		return NULL;
	}
	return ft;
}

static const char *const err_name[] = {
	[KVM_FT_ERR_DIVERGENCE] = "divergence",
	[KVM_FT_ERR_BAD_RECORD] = "bad record",
	[KVM_FT_ERR_UNSUPPORTED] = "unsupported",
};

/* Stop the VM with @error; the first report of the ring is kept. */
void ft_replay_fail(struct ft_vm *ft, u32 error, u32 reason, u64 pos,
		    const struct kvm_ft_rec *taken,
		    const struct kvm_ft_div_event *exp,
		    const struct kvm_ft_div_event *act)
{
	struct ft_ring *r = &ft->ring;
	unsigned long irqf;
	bool first;

	spin_lock_irqsave(&r->lock, irqf);
	first = !r->error && !ft->div.error;
	if (first) {
		ft->div.error = error;
		ft->div.reason = reason;
		/* A taken record was consumed: name it, not the next one. */
		ft->div.seq = taken ? taken->seq : r->next_seq;
		ft->div.landmark = taken ? taken->landmark : r->landmark + 1;
		ft->div.pos = pos;
		if (exp)
			ft->div.expected = *exp;
		if (act)
			ft->div.actual = *act;
	}
	spin_unlock_irqrestore(&r->lock, irqf);
	if (first)
		pr_warn_ratelimited("vm %u: replay %s (reason %u) at seq %llu landmark %llu: record type %u rip %#llx addr %#llx size %u value %#llx, exit type %u rip %#llx addr %#llx size %u value %#llx\n",
				    ft->id, err_name[error], reason, ft->div.seq,
				    ft->div.landmark, ft->div.expected.type,
				    ft->div.expected.rip, ft->div.expected.addr,
				    ft->div.expected.size, ft->div.expected.value,
				    ft->div.actual.type, ft->div.actual.rip,
				    ft->div.actual.addr, ft->div.actual.size,
				    ft->div.actual.value);
	ft_record_fail(ft, error);	/* error, genl event, VM stopped */
}

void ft_replay_unsupported(struct ft_vm *ft, u32 type, u64 addr, u32 size)
{
	struct kvm_ft_div_event act = {
		.type = type, .rip = kvm_rip_read(ft->vcpu),
		.addr = addr, .size = size,
	};

	ft_replay_fail(ft, KVM_FT_ERR_UNSUPPORTED, KVM_FT_DIV_UNSUPPORTED,
		       READ_ONCE(ft->ring.tail), NULL, NULL, &act);
}

long ft_replay_get_divergence(struct ft_vm *ft, void __user *uarg)
{
	struct kvm_ft_divergence d;
	unsigned long irqf;

	spin_lock_irqsave(&ft->ring.lock, irqf);
	d = ft->div;
	spin_unlock_irqrestore(&ft->ring.lock, irqf);
	return copy_to_user(uarg, &d, sizeof(d)) ? -EFAULT : 0;
}

/* ---- waiting for records ---- */

static bool wait_done(struct ft_vm *ft)
{
	return !ft_vm_replaying(ft) || ft_ring_error(&ft->ring) ||
	       ft_orphaned(ft) || (current->flags & PF_EXITING) ||
	       READ_ONCE(ft->ring.cons->consumer) != READ_ONCE(ft->rp_wait_from);
}

/*
 * vCPU thread, sleepable: wait until the producer leaves ft->rp_wait_from,
 * or replay ends (detach, LIVE, error, orphaned file, exiting task).
 */
static void wait_for_records(struct ft_vm *ft)
{
	struct ft_ring *r = &ft->ring;
	u64 t0;

	if (!wait_done(ft)) {
		ft_ring_wait_begin(r);
		/* Pollers see POLLOUT (everything consumed). */
		wake_up_interruptible_poll(&r->read_wq, EPOLLOUT | EPOLLWRNORM);
		t0 = ktime_get_ns();
		/*
		 * The writer's store is plain: re-check every jiffy. Any
		 * signal ends the wait at the landmark: KVM_RUN returns EINTR
		 * before the entry and the next KVM_RUN waits again.
		 */
		while (!wait_done(ft)) {
			if (wait_event_interruptible_timeout(r->space_wq, wait_done(ft),
							     1) < 0)
				break;
		}
		ft_ring_wait_end(r, ktime_get_ns() - t0);
		if (ft_orphaned(ft))
			ft_vm_detach(ft);
	}
}

/* task_work on the vCPU thread, sleepable; holds a reference to the file. */
static void wait_records(struct callback_head *cb)
{
	struct ft_vm *ft = container_of(cb, struct ft_vm, wait_work);
	struct file *file = ft->file;

	/*
	 * Only before an entry (vCPU loaded): on the way out to user space a
	 * signal may be dequeued already. The abandoned exit happens again at
	 * the next entry and waits then.
	 */
	if (kvm_get_running_vcpu() == ft->vcpu)
		wait_for_records(ft);
	clear_bit_unlock(FT_S_WAIT_QUEUED, &ft->state);
	fput(file);
}

/*
 * Probe context: before the vCPU enters again, wait until the producer
 * leaves @from (the consumer position, or what an emulated exit found too
 * short, see ft_ring_emul_ready()).
 */
void ft_replay_queue_wait(struct ft_vm *ft, u64 from)
{
	WRITE_ONCE(ft->rp_wait_from, from);
	ft_queue_wait(ft, wait_records);
}

/* ---- checking and replaying one exit ---- */

/* Record length each type must have; PIO is checked separately. */
static u32 fixed_len(u16 type)
{
	switch (type) {
	case KVM_FT_REC_MMIO_READ:
	case KVM_FT_REC_MMIO_WRITE:
		return sizeof(struct kvm_ft_rec_mmio);
	case KVM_FT_REC_RDTSC:
		return sizeof(struct kvm_ft_rec_tsc);
	case KVM_FT_REC_CPUID:
		return sizeof(struct kvm_ft_rec_cpuid);
	case KVM_FT_REC_RDMSR:
		return sizeof(struct kvm_ft_rec_msr);
	case KVM_FT_REC_HLT:
		return sizeof(struct kvm_ft_rec_hlt);
	case KVM_FT_REC_INTR:
		return sizeof(struct kvm_ft_rec_intr);
	case KVM_FT_REC_DMA:
		return sizeof(struct kvm_ft_rec_dma);
	case KVM_FT_REC_RDRAND:
		return sizeof(struct kvm_ft_rec_rand);
	case KVM_FT_REC_REG_DIGEST:
	case KVM_FT_REC_MEM_DIGEST:
		return sizeof(struct kvm_ft_rec_digest);
	case KVM_FT_REC_POSITION:
		return sizeof(struct kvm_ft_rec_position);
	}
	return 0;
}

/* Type-specific format of a record copied by ft_ring_take(). */
static bool rec_valid(const struct kvm_ft_rec *h)
{
	bool out = h->type == KVM_FT_REC_PIO_OUT || h->type == KVM_FT_REC_MMIO_WRITE;
	u16 want_flags = out ? KVM_FT_RF_OUTPUT : ft_rec_async(h->type) ? KVM_FT_RF_ASYNC : 0;

	/* Where the recorder may announce a memory digest (digest.c). */
	if ((h->flags & ~KVM_FT_RF_MEM_DIGEST) != want_flags)
		return false;
	if ((h->flags & KVM_FT_RF_MEM_DIGEST) && !ft_digest_mem_point(h))
		return false;
	if (h->type == KVM_FT_REC_DMA) {
		const struct kvm_ft_rec_dma *d = (const void *)h;

		if (h->len < sizeof(*d) || !d->len || d->len > KVM_FT_DMA_MAX ||
		    d->reserved || h->len != ALIGN(sizeof(*d) + d->len, 8) ||
		    d->gpa + d->len < d->gpa)
			return false;
		return !memchr_inv(d->data + d->len, 0, h->len - sizeof(*d) - d->len);
	}
	if (h->type == KVM_FT_REC_INTR) {
		const struct kvm_ft_rec_intr *in = (const void *)h;

		if (in->vector < 32 || in->vector > 255 ||
		    (in->flags & ~KVM_FT_INTR_F_LANDMARK))
			return false;
	}
	if (h->type == KVM_FT_REC_PIO_IN || h->type == KVM_FT_REC_PIO_OUT) {
		const struct kvm_ft_rec_pio *p = (const void *)h;
		u64 bytes;

		if (h->len < sizeof(*p))
			return false;
		bytes = (u64)p->size * p->count;
		if (!(p->size == 1 || p->size == 2 || p->size == 4) ||
		    !p->count || bytes > PAGE_SIZE || p->reserved ||
		    h->len != ALIGN(sizeof(*p) + bytes, 8))
			return false;
		/* The padding is zero, as the recorder writes it. */
		return !memchr_inv(p->data + bytes, 0, h->len - sizeof(*p) - bytes);
	}
	if (h->type == KVM_FT_REC_MMIO_READ || h->type == KVM_FT_REC_MMIO_WRITE) {
		const struct kvm_ft_rec_mmio *m = (const void *)h;

		if (h->len != sizeof(*m) || !m->len || m->len > sizeof(m->data) ||
		    m->reserved)
			return false;
		/* The rest of data is zero, as the recorder writes it. */
		return !memchr_inv(m->data + m->len, 0, sizeof(m->data) - m->len);
	}
	if (h->type == KVM_FT_REC_RDMSR &&
	    ((((const struct kvm_ft_rec_msr *)h)->flags & ~KVM_FT_MSR_F_GP) ||
	     ((((const struct kvm_ft_rec_msr *)h)->flags & KVM_FT_MSR_F_GP) &&
	      ((const struct kvm_ft_rec_msr *)h)->value)))
		return false;
	if (h->type == KVM_FT_REC_RDTSC &&
	    (((const struct kvm_ft_rec_tsc *)h)->aux ||
	     ((const struct kvm_ft_rec_tsc *)h)->insn != KVM_FT_INSN_RDTSC))
		return false;
	return fixed_len(h->type) && h->len == fixed_len(h->type);
}

/* The record's side of a report. */
static void rec_event(const struct kvm_ft_rec *h, struct kvm_ft_div_event *e)
{
	const struct kvm_ft_rec_pio *pio = (const void *)h;
	const struct kvm_ft_rec_tsc *tsc = (const void *)h;
	const struct kvm_ft_rec_cpuid *cpuid = (const void *)h;
	const struct kvm_ft_rec_msr *msr = (const void *)h;
	const struct kvm_ft_rec_hlt *hlt = (const void *)h;
	const struct kvm_ft_rec_intr *in = (const void *)h;
	const struct kvm_ft_rec_dma *dma = (const void *)h;
	const struct kvm_ft_rec_digest *dig = (const void *)h;
	const struct kvm_ft_rec_mmio *mmio = (const void *)h;
	u64 v = 0;

	memset(e, 0, sizeof(*e));
	e->type = h->type;
	switch (h->type) {
	case KVM_FT_REC_PIO_IN:
	case KVM_FT_REC_PIO_OUT:
		e->rip = pio->rip;
		e->addr = pio->port;
		e->size = pio->size;
		memcpy(&v, pio->data, pio->size);
		e->value = v;
		break;
	case KVM_FT_REC_MMIO_READ:
	case KVM_FT_REC_MMIO_WRITE:
		e->rip = mmio->rip;
		e->addr = mmio->gpa;
		e->size = mmio->len;
		memcpy(&v, mmio->data, min_t(u32, mmio->len, sizeof(v)));
		e->value = v;
		break;
	case KVM_FT_REC_RDTSC:
		e->rip = tsc->rip;
		e->value = tsc->tsc;
		break;
	case KVM_FT_REC_CPUID:
		e->rip = cpuid->rip;
		e->addr = cpuid->function;
		e->size = cpuid->index;
		break;
	case KVM_FT_REC_RDMSR:
		e->rip = msr->rip;
		e->addr = msr->msr;
		e->value = msr->value;
		break;
	case KVM_FT_REC_INTR:
		e->rip = in->rip;
		e->addr = in->vector;
		break;
	case KVM_FT_REC_DMA:
		e->addr = dma->gpa;
		e->size = dma->len;
		break;
	case KVM_FT_REC_REG_DIGEST:
	case KVM_FT_REC_MEM_DIGEST:
		e->rip = dig->rip;
		e->addr = dig->bytes;
		e->value = dig->digest;
		break;
	default:	/* every other type starts with rip, or is unsupported */
		e->rip = hlt->rip;
		break;
	}
}

static enum ft_replay_act diverge(struct ft_vm *ft, u32 reason, u64 pos,
				  const struct kvm_ft_rec *h,
				  const struct kvm_ft_div_event *act)
{
	struct kvm_ft_div_event exp;

	rec_event(h, &exp);
	ft_replay_fail(ft, KVM_FT_ERR_DIVERGENCE, reason, pos, h, &exp, act);
	return FT_RP_ABANDON;
}

enum ft_replay_act ft_replay_diverge(struct ft_vm *ft, u32 reason, u64 pos,
				     const struct kvm_ft_rec *h,
				     const struct kvm_ft_div_event *act)
{
	return diverge(ft, reason, pos, h, act);
}

/*
 * Take the next synchronous record for the access or exit @act (type and
 * RIP filled in) and check its format, type and RIP. Returns the record
 * (in ft->rbuf, its ring position in *pos), ERR_PTR(-EAGAIN) if none is
 * published yet, or ERR_PTR(-EIO) when the VM is stopping (a report was
 * made, or the ring was in error already).
 */
struct kvm_ft_rec *ft_replay_take(struct ft_vm *ft, struct kvm_vcpu *vcpu,
				  const struct kvm_ft_div_event *act, u64 *pos)
{
	struct kvm_ft_rec *h = ft->rbuf;
	struct ft_take_err err;
	int len;

	/* A POSITION is the next landmark: the guest exited before it. */
	if (ft->pos.armed) {
		diverge(ft, KVM_FT_DIV_TYPE, ft->pos.rec_pos, &ft->pos.rec.hdr, act);
		return ERR_PTR(-EIO);
	}
	*pos = READ_ONCE(ft->ring.tail);
	len = ft_digest_take(ft, vcpu, &err);
	if (len == -EAGAIN)
		return ERR_PTR(-EAGAIN);
	if (len == -EBADMSG) {
		ft_replay_fail(ft, KVM_FT_ERR_BAD_RECORD, err.reason, err.pos,
			       NULL, NULL, act);
		return ERR_PTR(-EIO);
	}
	if (len < 0)		/* ring in error: the VM is stopping */
		return ERR_PTR(-EIO);
	*pos = READ_ONCE(ft->ring.tail) - len;	/* digests before it were consumed */
	if (!rec_valid(h)) {
		struct kvm_ft_div_event exp = { .type = h->type };

		ft_replay_fail(ft, KVM_FT_ERR_BAD_RECORD, KVM_FT_DIV_FORMAT, *pos,
			       h, &exp, act);
		return ERR_PTR(-EIO);
	}
	if ((h->type == KVM_FT_REC_INTR &&
	     !(((const struct kvm_ft_rec_intr *)h)->flags & KVM_FT_INTR_F_LANDMARK)) ||
	    h->type == KVM_FT_REC_RDRAND) {
		struct kvm_ft_div_event exp;

		rec_event(h, &exp);
		ft_replay_fail(ft, KVM_FT_ERR_UNSUPPORTED, KVM_FT_DIV_UNSUPPORTED,
			       *pos, h, &exp, act);
		return ERR_PTR(-EIO);
	}
	if (h->type != act->type) {
		diverge(ft, KVM_FT_DIV_TYPE, *pos, h, act);
		return ERR_PTR(-EIO);
	}
	/* Every synchronous record has rip right after the header. */
	if (((const struct kvm_ft_rec_hlt *)h)->rip != act->rip) {
		diverge(ft, KVM_FT_DIV_RIP, *pos, h, act);
		return ERR_PTR(-EIO);
	}
	return h;
}

static enum ft_replay_act replay_one(struct ft_vm *ft, struct kvm_vcpu *vcpu,
				     u64 exit_code)
{
	struct kvm_ft_div_event act = { .rip = kvm_rip_read(vcpu) };
	struct kvm_ft_rec *h;
	u64 pos, rax = kvm_rax_read(vcpu);
	u32 io = 0;

	switch (exit_code) {
	case SVM_EXIT_IOIO:
		io = ft_svm_exit_info(vcpu, 1);
		/* String PIO is emulated: iobus.c replays each chunk. */
		if (io & SVM_IOIO_STR_MASK)
			return ft_iobus_exit(ft, vcpu, exit_code);
		act.type = (io & SVM_IOIO_TYPE_MASK) ? KVM_FT_REC_PIO_IN :
						       KVM_FT_REC_PIO_OUT;
		act.addr = io >> 16;
		act.size = (io & SVM_IOIO_SIZE_MASK) >> SVM_IOIO_SIZE_SHIFT;
		if (act.type == KVM_FT_REC_PIO_OUT)
			act.value = rax & (act.size == 4 ? 0xffffffffULL :
					   (1ULL << (8 * act.size)) - 1);
		break;
	case SVM_EXIT_NPF:	/* MMIO is emulated: iobus.c replays each access */
		return ft_iobus_exit(ft, vcpu, exit_code);
	case SVM_EXIT_RDTSC:
		act.type = KVM_FT_REC_RDTSC;
		break;
	case SVM_EXIT_CPUID:
		act.type = KVM_FT_REC_CPUID;
		act.addr = (u32)rax;
		act.size = (u32)kvm_rcx_read(vcpu);
		break;
	case SVM_EXIT_MSR:
		if (ft_svm_exit_info(vcpu, 1))
			return FT_RP_KVM;	/* WRMSR: deterministic */
		act.type = KVM_FT_REC_RDMSR;
		act.addr = (u32)kvm_rcx_read(vcpu);
		break;
	case SVM_EXIT_HLT:
		act.type = KVM_FT_REC_HLT;
		break;
	default:
		return FT_RP_KVM;
	}

	h = ft_replay_take(ft, vcpu, &act, &pos);
	if (IS_ERR(h)) {
		if (PTR_ERR(h) == -EAGAIN)
			ft_replay_queue_wait(ft, READ_ONCE(ft->ring.tail));
		return FT_RP_ABANDON;
	}
	/* Before the instruction's effects: its registers are the digest point. */
	ft_digest_replayed(ft, vcpu, h);

	switch (h->type) {
	case KVM_FT_REC_PIO_IN:
	case KVM_FT_REC_PIO_OUT: {
		const struct kvm_ft_rec_pio *p = (const void *)h;
		u64 v = 0;

		if (p->port != act.addr)
			return diverge(ft, KVM_FT_DIV_ADDR, pos, h, &act);
		if (p->size != act.size || p->count != 1)
			return diverge(ft, KVM_FT_DIV_SIZE, pos, h, &act);
		memcpy(&v, p->data, p->size);
		if (h->type == KVM_FT_REC_PIO_OUT) {
			if (v != act.value)
				return diverge(ft, KVM_FT_DIV_DATA, pos, h, &act);
			/* Checked: KVM emits it (device or VMM), or nobody. */
			return ft->info_flags & KVM_FT_INFO_F_REPLAY_OUTPUTS ?
			       FT_RP_KVM : FT_RP_SKIP;
		}
		/* As complete_fast_pio_in(): a 32-bit IN zero-extends. */
		if (p->size == 4)
			rax = v;
		else
			rax = (rax & ~((1ULL << (8 * p->size)) - 1)) | v;
		kvm_rax_write(vcpu, rax);
		return FT_RP_SKIP;
	}
	case KVM_FT_REC_RDTSC: {
		const struct kvm_ft_rec_tsc *t = (const void *)h;

		kvm_rax_write(vcpu, (u32)t->tsc);
		kvm_rdx_write(vcpu, t->tsc >> 32);
		return FT_RP_SKIP;
	}
	case KVM_FT_REC_CPUID: {
		const struct kvm_ft_rec_cpuid *c = (const void *)h;

		if (c->function != act.addr || c->index != act.size)
			return diverge(ft, KVM_FT_DIV_ADDR, pos, h, &act);
		kvm_rax_write(vcpu, c->eax);
		kvm_rbx_write(vcpu, c->ebx);
		kvm_rcx_write(vcpu, c->ecx);
		kvm_rdx_write(vcpu, c->edx);
		return FT_RP_SKIP;
	}
	case KVM_FT_REC_RDMSR: {
		const struct kvm_ft_rec_msr *m = (const void *)h;

		if (m->msr != act.addr)
			return diverge(ft, KVM_FT_DIV_ADDR, pos, h, &act);
		if (m->flags & KVM_FT_MSR_F_GP) {
			/* As kvm_emulate_rdmsr() on a failed read; no RIP change. */
			kvm_inject_gp(vcpu, 0);
			return FT_RP_FAULT;
		}
		kvm_rax_write(vcpu, (u32)m->value);
		kvm_rdx_write(vcpu, m->value >> 32);
		return FT_RP_SKIP;
	}
	case KVM_FT_REC_HLT:
		return FT_RP_KVM;
	}
	/* Not reached: every other type was handled above. */
	return diverge(ft, KVM_FT_DIV_TYPE, pos, h, &act);
}

enum ft_replay_act ft_replay_exit(struct ft_vm *ft, struct kvm_vcpu *vcpu,
				  u64 exit_code)
{
	u64 lm = READ_ONCE(ft->ring.landmark);
	enum ft_replay_act act = replay_one(ft, vcpu, exit_code);

	/* Record lm + 1 replayed: this is a landmark. */
	if (act != FT_RP_ABANDON && READ_ONCE(ft->ring.landmark) != lm)
		ft_replay_landmark(ft);
	return act;
}

/* The next record is a POSITION (peeked): take it; the vCPU runs to it. */
static void take_position(struct ft_vm *ft)
{
	struct kvm_ft_rec *h = ft->rbuf;
	struct ft_take_err err;
	int len = ft_digest_take(ft, ft->vcpu, &err);
	u64 pos;

	if (len == -EBADMSG) {
		ft_replay_fail(ft, KVM_FT_ERR_BAD_RECORD, err.reason, err.pos,
			       NULL, NULL, NULL);
		return;
	}
	if (len < 0)		/* reported already, or the ring is in error */
		return;
	pos = READ_ONCE(ft->ring.tail) - len;
	if (!rec_valid(h)) {
		struct kvm_ft_div_event exp = { .type = h->type };

		ft_replay_fail(ft, KVM_FT_ERR_BAD_RECORD, KVM_FT_DIV_FORMAT, pos,
			       h, &exp, NULL);
		return;
	}
	if (h->type != KVM_FT_REC_POSITION) {	/* rewritten since the peek */
		struct kvm_ft_div_event act = { .type = KVM_FT_REC_POSITION };

		diverge(ft, KVM_FT_DIV_TYPE, pos, h, &act);
		return;
	}
	ft_pos_arm(ft, (const void *)h, pos);
}

/*
 * The landmark's asynchronous records are done (or there were none) and
 * the next record, not asynchronous, is of @type: a position reached must
 * have had an input; a POSITION next is armed.
 */
static void after_async(struct ft_vm *ft, u16 type)
{
	if (ft->pos.need_input) {
		struct kvm_ft_div_event act = { .type = type };

		ft->pos.need_input = false;
		diverge(ft, KVM_FT_DIV_TYPE, ft->pos.rec_pos, &ft->pos.rec.hdr, &act);
		return;
	}
	if (type == KVM_FT_REC_POSITION)
		take_position(ft);
}

/*
 * A landmark was reached: a synchronous record replayed (here or in
 * iobus.c), or a position found (position.c). Its asynchronous records follow it in the ring; the
 * vCPU does not enter before it knows whether there are any (the backup
 * lags by one record). A POSITION right after it is armed at once.
 */
void ft_replay_landmark(struct ft_vm *ft)
{
	u16 next;

	if (ft_ring_error(&ft->ring))
		return;
	if (!ft_ring_peek(&ft->ring, &next) || ft_rec_async(next)) {
		set_bit(FT_S_RP_ASYNC, &ft->state);
		ft_async_kick(ft);
		return;
	}
	after_async(ft, next);
}

/* ---- asynchronous records ---- */

/* The primary applies no input before its first landmark. */
static bool before_first_landmark(struct ft_vm *ft, const struct kvm_ft_rec *h, u64 pos)
{
	struct kvm_ft_div_event act = {};

	if (h->landmark)
		return false;
	diverge(ft, KVM_FT_DIV_TYPE, pos, h, &act);
	return true;
}

/*
 * async_work on the vCPU thread (sleepable, vCPU loaded) after landmark L:
 * wait for the record after L, write every DMA record at L into guest
 * memory, and leave an INTR record at L for the kvm_entry probe.
 */
void ft_replay_async(struct ft_vm *ft)
{
	struct kvm_ft_rec *h = ft->rbuf;
	struct ft_take_err err;
	bool intr = false;
	int len, idx, r;
	u16 type;
	u64 pos;

	while (ft_vm_replaying(ft) && !ft_ring_error(&ft->ring)) {
		if (!ft_ring_peek(&ft->ring, &type)) {
			WRITE_ONCE(ft->rp_wait_from, READ_ONCE(ft->ring.tail));
			wait_for_records(ft);
			if (ft_ring_replay_ready(&ft->ring))
				continue;
			/* A signal: still due; the next KVM_RUN waits again. */
			if (signal_pending(current) && ft_vm_replaying(ft) &&
			    !ft_ring_error(&ft->ring))
				return;
			break;	/* replay ended */
		}
		if (!ft_rec_async(type)) {
			after_async(ft, type);
			break;
		}
		if (intr)	/* the INTR is the landmark's last input */
			break;
		pos = READ_ONCE(ft->ring.tail);
		len = ft_ring_take(&ft->ring, h, &err);
		if (len == -EBADMSG) {
			ft_replay_fail(ft, KVM_FT_ERR_BAD_RECORD, err.reason, err.pos,
				       NULL, NULL, NULL);
			break;
		}
		if (len < 0)
			break;
		if (!rec_valid(h)) {
			struct kvm_ft_div_event exp = { .type = h->type };

			ft_replay_fail(ft, KVM_FT_ERR_BAD_RECORD, KVM_FT_DIV_FORMAT,
				       pos, h, &exp, NULL);
			break;
		}
		/* Digests come first: before this landmark's DMA and INTR. */
		r = ft_digest_async(ft, h, pos);
		if (r < 0)
			break;
		if (r > 0)
			continue;
		if (h->type == KVM_FT_REC_DMA) {
			const struct kvm_ft_rec_dma *d = (const void *)h;

			if (before_first_landmark(ft, h, pos))
				break;
			idx = srcu_read_lock(&ft->kvm->srcu);
			r = kvm_write_guest(ft->kvm, d->gpa, d->data, d->len);
			srcu_read_unlock(&ft->kvm->srcu, idx);
			if (r) {	/* not guest memory here */
				struct kvm_ft_div_event exp;

				rec_event(h, &exp);
				ft_replay_fail(ft, KVM_FT_ERR_DIVERGENCE, KVM_FT_DIV_ADDR,
					       pos, h, &exp, NULL);
				break;
			}
			ft->pos.need_input = false;
			continue;
		}
		if (!(((const struct kvm_ft_rec_intr *)h)->flags & KVM_FT_INTR_F_LANDMARK)) {
			struct kvm_ft_div_event exp;

			rec_event(h, &exp);
			ft_replay_fail(ft, KVM_FT_ERR_UNSUPPORTED, KVM_FT_DIV_UNSUPPORTED,
				       pos, h, &exp, NULL);
			break;
		}
		if (before_first_landmark(ft, h, pos))
			break;
		/*
		 * At most one INTR per landmark: it is delivered at this entry.
		 * What follows it must be known before the entry too: a
		 * POSITION is armed for it.
		 */
		ft->pos.need_input = false;
		memcpy(&ft->rp_intr, h, sizeof(ft->rp_intr));
		ft->rp_intr_pos = pos;
		ft->rp_intr_pending = true;
		intr = true;
	}
	clear_bit(FT_S_RP_ASYNC, &ft->state);
}

/*
 * kvm_entry probe, the entry right after the landmark of ft->rp_intr: the
 * primary injected it here, so the guest must be able to take it at the
 * same RIP; then inject it the same way.
 */
void ft_replay_intr_entry(struct ft_vm *ft, struct kvm_vcpu *vcpu)
{
	const struct kvm_ft_rec_intr *in = &ft->rp_intr;
	struct kvm_ft_div_event act = {
		.type = KVM_FT_REC_INTR, .rip = kvm_rip_read(vcpu),
		.addr = in->vector,
	};
	u32 reason = 0;

	ft->rp_intr_pending = false;
	if (in->rip != act.rip)
		reason = KVM_FT_DIV_RIP;
	else if (!ft_svm_irq_allowed(vcpu))
		reason = KVM_FT_DIV_BLOCKED;
	if (reason) {
		diverge(ft, reason, ft->rp_intr_pos, &in->hdr, &act);
		/* Stopped: leave the guest at once instead of running on. */
		smp_send_reschedule(smp_processor_id());
		return;
	}
	ft_svm_inject_irq(vcpu, in->vector);
	ft->own_vector = in->vector;
}
