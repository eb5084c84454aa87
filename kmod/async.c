// SPDX-License-Identifier: GPL-2.0
/*
 * Asynchronous inputs: interrupts and DMA writes that the VMM hands over
 * with KVM_FT_QUEUE_ASYNC, applied by the vCPU thread only at landmarks
 * (RECORD: logged there) or at the next entry (LIVE). See uapi/linux/kvm_ft.h
 * "ASYNCHRONOUS INPUTS" and README "Asynchronous inputs".
 *
 * Where each part runs:
 *   ioctl (any thread)   validates, copies the data, appends to ft->aq;
 *                        in LIVE mode kicks the vCPU.
 *   async_work           task_work on the vCPU thread before its next entry
 *                        (queued by the sync record that makes a landmark,
 *                        at the start of KVM_RUN, and in LIVE at each exit):
 *                        writes the queued DMA into guest memory, logs it.
 *                        It writes only with the vCPU loaded (dirty logging
 *                        needs a running vCPU), so not on the way out to
 *                        user space: the next KVM_RUN queues it again.
 *   kvm_entry probe      the first entry after a landmark injects the first
 *                        queued IRQ if no DMA is queued before it and the
 *                        guest can take it now; logs it.
 *   kvm_exit probe       notices when our injected IRQ was delivered.
 */
#include <linux/kvm_host.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "kvm_cache_regs.h"
#include "ft.h"

void ft_async_init(struct ft_vm *ft)
{
	spin_lock_init(&ft->aq_lock);
	INIT_LIST_HEAD(&ft->aq);
}

/* Release: nothing runs for this VM any more. */
void ft_async_destroy(struct ft_vm *ft)
{
	struct ft_async_item *it, *tmp;

	list_for_each_entry_safe(it, tmp, &ft->aq, node)
		kfree(it);
	INIT_LIST_HEAD(&ft->aq);
}

/* The mode that decides how inputs apply: a detached VM runs live. */
static u32 apply_mode(struct ft_vm *ft)
{
	return test_bit(FT_S_DETACHED, &ft->state) ? KVM_FT_MODE_LIVE :
						     READ_ONCE(ft->mode);
}

/* [gpa, gpa + len) lies in user memslots the guest can see and write. */
static bool dma_range_ok(struct kvm *kvm, u64 gpa, u32 len)
{
	gfn_t gfn, last = (gpa + len - 1) >> PAGE_SHIFT;
	bool ok = true;
	int idx;

	idx = srcu_read_lock(&kvm->srcu);
	for (gfn = gpa >> PAGE_SHIFT; ok && gfn <= last; gfn++) {
		struct kvm_memory_slot *slot = gfn_to_memslot(kvm, gfn);

		ok = kvm_is_visible_gfn(kvm, gfn) && slot &&
		     !(slot->flags & KVM_MEM_READONLY);
	}
	srcu_read_unlock(&kvm->srcu, idx);
	return ok;
}

long ft_async_queue(struct ft_vm *ft, const struct kvm_ft_async __user *uarg)
{
	struct ft_async_item *it;
	struct kvm_ft_async a;
	unsigned long irqf;
	long r = 0;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	if ((a.type != KVM_FT_ASYNC_IRQ && a.type != KVM_FT_ASYNC_DMA) ||
	    a.flags || a.reserved[0] || a.reserved[1])
		return -EOPNOTSUPP;
	if (a.type == KVM_FT_ASYNC_IRQ) {
		if (a.vector < 32 || a.vector > 255 || a.gpa || a.data || a.len ||
		    ft->kvm->arch.irqchip_mode != KVM_IRQCHIP_NONE)
			return -EINVAL;
	} else {
		if (a.vector || !a.len || a.len > KVM_FT_DMA_MAX ||
		    a.gpa + a.len < a.gpa || !dma_range_ok(ft->kvm, a.gpa, a.len))
			return -EINVAL;
	}
	it = kmalloc(struct_size(it, data, a.type == KVM_FT_ASYNC_DMA ? a.len : 0),
		     GFP_KERNEL_ACCOUNT);
	if (!it)
		return -ENOMEM;
	it->type = a.type;
	it->vector = a.vector;
	it->gpa = a.gpa;
	it->len = a.len;
	it->queued = ktime_get();
	if (a.type == KVM_FT_ASYNC_DMA &&
	    copy_from_user(it->data, u64_to_user_ptr(a.data), a.len)) {
		kfree(it);
		return -EFAULT;
	}

	/* Against set_mode() and detach: the mode seen here is the one applied. */
	mutex_lock(&ft->lock);
	if (test_bit(FT_S_DETACHED, &ft->state))
		r = -ENODEV;
	else if (ft->mode == KVM_FT_MODE_REPLAY)
		r = -EBUSY;
	if (!r) {
		spin_lock_irqsave(&ft->aq_lock, irqf);
		if (ft->aq_count >= KVM_FT_ASYNC_QUEUE_MAX) {
			r = -EAGAIN;
		} else {
			list_add_tail(&it->node, &ft->aq);
			WRITE_ONCE(ft->aq_count, ft->aq_count + 1);
			if (it->type == KVM_FT_ASYNC_DMA)
				WRITE_ONCE(ft->aq_dma, ft->aq_dma + 1);
			/* RECORD: bounded wait, even if the guest never exits. */
			ft_pos_input_queued(ft);
		}
		spin_unlock_irqrestore(&ft->aq_lock, irqf);
	}
	/* Live: the vCPU's next exit applies it (a landmark is not needed). */
	if (!r && ft->mode == KVM_FT_MODE_LIVE)
		kvm_vcpu_kick(ft->vcpu);
	mutex_unlock(&ft->lock);
	if (r)
		kfree(it);
	return r;
}

/*
 * Dequeue the first DMA item (DMA may overtake IRQs), or the first item if
 * it is an IRQ (an IRQ never overtakes anything); NULL if there is none, or
 * if the log lacks @need_space bytes beyond its reserve.
 */
static struct ft_async_item *aq_take(struct ft_vm *ft, u32 type, u64 need_space)
{
	struct ft_async_item *it, *found = NULL;
	unsigned long irqf;

	spin_lock_irqsave(&ft->aq_lock, irqf);
	list_for_each_entry(it, &ft->aq, node) {
		if (it->type == type)
			found = it;
		if (found || type == KVM_FT_ASYNC_IRQ)
			break;
	}
	if (found && need_space &&
	    !ft_ring_has_space(&ft->ring, need_space + KVM_FT_RING_RESERVE))
		found = NULL;	/* the vCPU waits for space first; a later landmark */
	if (found) {
		list_del(&found->node);
		WRITE_ONCE(ft->aq_count, ft->aq_count - 1);
		if (found->type == KVM_FT_ASYNC_DMA)
			WRITE_ONCE(ft->aq_dma, ft->aq_dma - 1);
	}
	spin_unlock_irqrestore(&ft->aq_lock, irqf);
	return found;
}

/* vCPU thread, sleepable, vCPU loaded: write (and log) every queued DMA. */
static void apply_dma(struct ft_vm *ft)
{
	u32 mode = apply_mode(ft);
	struct ft_async_item *it;
	int idx, r;

	if (mode == KVM_FT_MODE_REPLAY)
		return;
	/* RECORD: only at a landmark, i.e. no entry since the last sync record. */
	if (mode == KVM_FT_MODE_RECORD &&
	    READ_ONCE(ft->ring.landmark) == ft->entry_lm)
		return;
	for (;;) {
		struct kvm_ft_rec_dma rec = { .hdr.type = KVM_FT_REC_DMA,
					      .hdr.flags = KVM_FT_RF_ASYNC };

		it = aq_take(ft, KVM_FT_ASYNC_DMA,
			     mode == KVM_FT_MODE_RECORD ? sizeof(rec) + KVM_FT_DMA_MAX : 0);
		if (!it)
			break;
		idx = srcu_read_lock(&ft->kvm->srcu);
		r = kvm_write_guest(ft->kvm, it->gpa, it->data, it->len);
		srcu_read_unlock(&ft->kvm->srcu, idx);
		if (r) {
			/* The memslot went away after the ioctl checked it. */
			pr_warn_ratelimited("vm %u: DMA to gpa %#llx len %u failed: %d\n",
					    ft->id, it->gpa, it->len, r);
			if (mode == KVM_FT_MODE_RECORD)
				ft_record_fail(ft, KVM_FT_ERR_UNSUPPORTED);
			kfree(it);
			break;
		}
		if (mode == KVM_FT_MODE_RECORD) {
			rec.gpa = it->gpa;
			rec.len = it->len;
			ft_record(ft, &rec.hdr, sizeof(rec), it->data, it->len, false);
		}
		kfree(it);
	}
}

static void async_work(struct callback_head *cb)
{
	struct ft_vm *ft = container_of(cb, struct ft_vm, async_work);
	struct file *file = ft->file;

	if (kvm_get_running_vcpu() == ft->vcpu) {
		if (test_bit(FT_S_RP_ASYNC, &ft->state))
			ft_replay_async(ft);
		apply_dma(ft);
	}
	clear_bit_unlock(FT_S_ASYNC_QUEUED, &ft->state);
	fput(file);
}

/*
 * Probe context on the vCPU thread: apply queued DMA (replay: the
 * landmark's asynchronous records) before the next entry.
 */
void ft_async_kick(struct ft_vm *ft)
{
	if ((READ_ONCE(ft->aq_dma) && apply_mode(ft) != KVM_FT_MODE_REPLAY) ||
	    test_bit(FT_S_RP_ASYNC, &ft->state))
		ft_queue_task(ft, &ft->async_work, FT_S_ASYNC_QUEUED, async_work);
}

/* kvm_fpu probe: load=1 at the start of KVM_RUN, vCPU loaded. */
void ft_probe_kvm_fpu(void *data, int load)
{
	struct kvm_vcpu *vcpu = kvm_get_running_vcpu();
	struct ft_vm *ft;

	if (!load || !vcpu)
		return;
	ft = ft_vm_lookup(vcpu->kvm);
	if (ft && vcpu == ft->vcpu) {
		ft_record_run(ft);
		ft_async_kick(ft);
	}
}

/* kvm_entry probe, interrupts off, right before VMRUN, not in guest mode. */
void ft_async_entry(struct ft_vm *ft, struct kvm_vcpu *vcpu)
{
	u64 lm = READ_ONCE(ft->ring.landmark);
	bool at_landmark = lm != ft->entry_lm;
	u32 mode = apply_mode(ft);
	struct ft_async_item *it;

	ft->entry_lm = lm;
	ft_pos_entry(ft, vcpu);		/* replay: a POSITION's breakpoint */
	if (ft->rp_intr_pending) {	/* replay: the log's IRQ for this landmark */
		ft_replay_intr_entry(ft, vcpu);
		return;
	}
	if (mode == KVM_FT_MODE_REPLAY || !READ_ONCE(ft->aq_count) ||
	    (mode == KVM_FT_MODE_RECORD && !at_landmark) ||
	    !ft_svm_irq_allowed(vcpu))
		return;
	it = aq_take(ft, KVM_FT_ASYNC_IRQ, mode == KVM_FT_MODE_RECORD ?
		     sizeof(struct kvm_ft_rec_intr) : 0);
	if (!it)
		return;
	if (mode == KVM_FT_MODE_RECORD) {
		struct kvm_ft_rec_intr rec = {
			.hdr.type = KVM_FT_REC_INTR,
			.hdr.flags = KVM_FT_RF_ASYNC,
			.rip = kvm_rip_read(vcpu),
			.vector = it->vector,
			.flags = KVM_FT_INTR_F_LANDMARK,
		};

		ft_record(ft, &rec.hdr, sizeof(rec), NULL, 0, false);
	}
	ft_svm_inject_irq(vcpu, it->vector);
	ft->own_vector = it->vector;
	kfree(it);
}

/*
 * position.c, RECORD, before the next entry: would a landmark logged now
 * (its record @first_len bytes) apply an input? Every queued DMA is applied
 * if the log has room for one more; an IRQ first in the queue is injected
 * if the guest can take it (the caller checked that nothing else is being
 * injected, so RFLAGS.IF decides, as ft_svm_irq_allowed() at the entry).
 */
bool ft_async_would_apply(struct ft_vm *ft, struct kvm_vcpu *vcpu, u32 first_len)
{
	struct ft_async_item *first;
	unsigned long irqf;
	bool irq;

	if (READ_ONCE(ft->aq_dma))
		return ft_ring_has_space(&ft->ring, first_len + sizeof(struct kvm_ft_rec_dma) +
					 KVM_FT_DMA_MAX + KVM_FT_RING_RESERVE);
	spin_lock_irqsave(&ft->aq_lock, irqf);
	first = list_first_entry_or_null(&ft->aq, struct ft_async_item, node);
	irq = first && first->type == KVM_FT_ASYNC_IRQ;
	spin_unlock_irqrestore(&ft->aq_lock, irqf);
	return irq && (kvm_get_rflags(vcpu) & X86_EFLAGS_IF) &&
	       ft_ring_has_space(&ft->ring, first_len + sizeof(struct kvm_ft_rec_intr) +
				 KVM_FT_RING_RESERVE);
}

/* kvm_exit probe: was our IRQ delivered (else KVM injects it again)? */
void ft_async_exit(struct ft_vm *ft, struct kvm_vcpu *vcpu)
{
	if (ft->own_vector && !ft_svm_intr_redelivered(vcpu, ft->own_vector))
		ft->own_vector = 0;
	if (apply_mode(ft) == KVM_FT_MODE_LIVE)
		ft_async_kick(ft);
}

/* kvm_inj_virq probe: KVM re-injects the IRQ we injected. */
bool ft_async_own_irq(struct ft_vm *ft, u32 vector)
{
	return ft->own_vector && ft->own_vector == vector;
}
