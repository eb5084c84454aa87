// SPDX-License-Identifier: GPL-2.0
/*
 * POSITION landmarks: a guest that runs without exiting still gets its
 * queued interrupts and DMA within a bound. See uapi/linux/kvm_ft.h
 * "POSITIONS" and README "Positions".
 *
 * RECORD. An input that waited pos.us without being applied makes the
 * hrtimer kick the vCPU; at the next host-interrupt exit (SVM_EXIT_INTR:
 * the guest is between two instructions) pos_work, before the next entry,
 * logs a POSITION record - RIP, RFLAGS, CR3 and the GPRs - if the guest can
 * be found there again and an input will be applied there. The record is a
 * landmark: the queued inputs apply after it exactly as after a
 * synchronous record (async.c).
 *
 * REPLAY. After landmark L, a POSITION next in the ring is taken and armed
 * (replay.c): every entry carries an instruction breakpoint at its RIP
 * (DR0 + the VMCB's DR7); #DB is always intercepted on SVM, and each hit
 * comes to ft_pos_db() in the exit hook: registers equal -> this is
 * landmark L + 1 (its INTR/DMA records follow, as for a synchronous
 * record); else the next entry sets RFLAGS.RF so the instruction runs once
 * without trapping again. A synchronous exit before it is a divergence.
 */
#include <linux/file.h>
#include <linux/hrtimer.h>
#include <linux/kvm_host.h>
#include <asm/svm.h>
#include "kvm_cache_regs.h"
#include "x86.h"		/* arch/x86/kvm: kvm_read_guest_virt() */
#include "ft.h"

/* ---- record ---- */

/*
 * hrtimer (hard irq): the oldest queued input has waited pos.us: ask for a
 * position and kick the vCPU out of the guest; again every pos.us while an
 * input waits (the position may not be possible at this exit).
 */
static enum hrtimer_restart pos_timer_fn(struct hrtimer *t)
{
	struct ft_vm *ft = container_of(t, struct ft_vm, pos.timer);
	struct ft_async_item *first;
	unsigned long irqf;
	ktime_t due = 0;

	spin_lock_irqsave(&ft->aq_lock, irqf);
	first = list_first_entry_or_null(&ft->aq, struct ft_async_item, node);
	if (first && ft_vm_recording(ft))
		due = ktime_add_us(first->queued, ft->pos.us);
	else
		ft->pos.timer_on = false;
	spin_unlock_irqrestore(&ft->aq_lock, irqf);
	if (!due)
		return HRTIMER_NORESTART;
	if (ktime_before(ktime_get(), due)) {
		hrtimer_set_expires(t, due);
		return HRTIMER_RESTART;
	}
	set_bit(FT_S_POS_REQ, &ft->state);
	atomic64_inc(&ft->pos.kicks);
	kvm_vcpu_kick(ft->vcpu);
	hrtimer_forward_now(t, ns_to_ktime((u64)ft->pos.us * NSEC_PER_USEC));
	return HRTIMER_RESTART;
}

void ft_pos_init(struct ft_vm *ft, u32 us)
{
	ft->pos.us = us;
	hrtimer_init(&ft->pos.timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL_HARD);
	ft->pos.timer.function = pos_timer_fn;
}

/* Release: after it the timer cannot run. */
void ft_pos_destroy(struct ft_vm *ft)
{
	hrtimer_cancel(&ft->pos.timer);
}

void ft_pos_input_queued(struct ft_vm *ft)
{
	lockdep_assert_held(&ft->aq_lock);
	if (!ft->pos.us || ft->pos.timer_on || READ_ONCE(ft->mode) != KVM_FT_MODE_RECORD)
		return;
	ft->pos.timer_on = true;
	hrtimer_start(&ft->pos.timer, ns_to_ktime((u64)ft->pos.us * NSEC_PER_USEC), HRTIMER_MODE_REL_HARD);
}

/*
 * Is RIP a point the backup may not find again? True when:
 *  - a REP string instruction is at RIP: it may be stopped half-way (RCX
 *    partly counted), and the backup's breakpoint only sees its start;
 *  - the instruction before RIP may have been POP SS (0x17) or MOV SS
 *    from a register (0x8e, ModRM mod 3, reg 2): their shadow suppresses
 *    the backup's #DB there, and the primary's exit need not show it
 *    (see ft_pos_db() for the STI shadow, which the backup ends instead);
 *  - the bytes cannot be read or decoded.
 * Refusing costs only a retry at the next kick.
 */
static bool unfindable_at_rip(struct ft_vm *ft, struct kvm_vcpu *vcpu)
{
	struct x86_exception e;
	bool rep = false;
	u8 b[2 + 15], *at = b + 2;
	int i, idx, r;

	idx = srcu_read_lock(&ft->kvm->srcu);
	r = kvm_read_guest_virt(vcpu, ft_svm_linear_rip(vcpu) - 2, b, sizeof(b), &e);
	srcu_read_unlock(&ft->kvm->srcu, idx);
	if (r)
		return true;
	if (b[1] == 0x17 || (b[0] == 0x8e && (b[1] & 0xf8) == 0xd0))
		return true;
	for (i = 0; i < 15; i++) {
		switch (at[i]) {
		case 0xf2: case 0xf3:
			rep = true;
			continue;
		case 0x26: case 0x2e: case 0x36: case 0x3e: case 0x64: case 0x65:
		case 0x66: case 0x67: case 0xf0:
			continue;
		}
		if (at[i] >= 0x40 && at[i] <= 0x4f)	/* REX (or INC/DEC: refused too) */
			continue;
		break;
	}
	if (i == 15)
		return true;
	return rep && ((at[i] >= 0x6c && at[i] <= 0x6f) || (at[i] >= 0xa4 && at[i] <= 0xa7) ||
		       (at[i] >= 0xaa && at[i] <= 0xaf));
}

/*
 * vCPU thread before the next entry, vCPU loaded, guest untouched since the
 * INTR exit. Log a position if one is possible here; else the request
 * stays and the next INTR exit (the timer kicks again) tries again.
 */
static void log_position(struct ft_vm *ft, struct kvm_vcpu *vcpu)
{
	struct kvm_ft_rec_position rec = { .hdr.type = KVM_FT_REC_POSITION };

	if (READ_ONCE(ft->ring.landmark) != ft->entry_lm)
		return;		/* a landmark already: the inputs apply there */
	if (!READ_ONCE(ft->aq_count)) {
		clear_bit(FT_S_POS_REQ, &ft->state);
		return;
	}
	if (!ft_svm_pos_clean(vcpu, false) || unfindable_at_rip(ft, vcpu) ||
	    !ft_async_would_apply(ft, vcpu, sizeof(rec)))
		return;
	ft_svm_pos_state(vcpu, &rec);
	/* A landmark: async.c applies the inputs before the next entry. */
	ft_record(ft, &rec.hdr, sizeof(rec), NULL, 0, true);
	clear_bit(FT_S_POS_REQ, &ft->state);
	atomic64_inc(&ft->pos.positions);
}

static void pos_work(struct callback_head *cb)
{
	struct ft_vm *ft = container_of(cb, struct ft_vm, pos.work);
	struct file *file = ft->file;

	/* Not on the way out to user space: the vCPU must be loaded. */
	if (kvm_get_running_vcpu() == ft->vcpu && ft_vm_recording(ft) &&
	    test_bit(FT_S_POS_REQ, &ft->state))
		log_position(ft, ft->vcpu);
	clear_bit_unlock(FT_S_POS_QUEUED, &ft->state);
	fput(file);
}

void ft_pos_exit(struct ft_vm *ft, struct kvm_vcpu *vcpu)
{
	if (test_bit(FT_S_POS_REQ, &ft->state) && !is_guest_mode(vcpu) &&
	    ft_svm_exit_code(vcpu) == SVM_EXIT_INTR)
		ft_queue_task(ft, &ft->pos.work, FT_S_POS_QUEUED, pos_work);
}

/* ---- replay ---- */

void ft_pos_arm(struct ft_vm *ft, const struct kvm_ft_rec_position *rec, u64 pos)
{
	ft->pos.rec = *rec;
	ft->pos.rec_pos = pos;
	ft->pos.armed = true;
	ft->pos.step_over = false;
}

void ft_pos_entry(struct ft_vm *ft, struct kvm_vcpu *vcpu)
{
	struct ft_pos *p = &ft->pos;

	if (p->armed && !ft_vm_replaying(ft))
		p->armed = false;	/* LIVE or detached: run free */
	if (!p->armed) {
		if (p->hw_on)
			ft_svm_pos_disarm(vcpu);
		p->hw_on = false;
		return;
	}
	if (ft_svm_guest_debugs(vcpu)) {
		/* Its breakpoints or single-steps would be ours to swallow. */
		p->armed = false;
		ft_replay_unsupported(ft, KVM_FT_REC_POSITION, p->rec.rip, 0);
		smp_send_reschedule(smp_processor_id());
		return;
	}
	ft_svm_pos_arm(vcpu, p->rec.rip, p->step_over);
	p->hw_on = true;
	p->step_over = false;
}

static bool same_state(const struct kvm_ft_rec_position *a,
		       const struct kvm_ft_rec_position *b)
{
	return a->rip == b->rip && a->rflags == b->rflags && a->cr3 == b->cr3 &&
	       !memcmp(a->gpr, b->gpr, sizeof(a->gpr));
}

enum ft_replay_act ft_pos_db(struct ft_vm *ft, struct kvm_vcpu *vcpu)
{
	struct kvm_ft_rec_position now = {};
	struct ft_pos *p = &ft->pos;

	if (!p->armed)
		return FT_RP_KVM;	/* the guest's own #DB: KVM reflects it */
	if (!ft_svm_db_ours(vcpu)) {
		ft_replay_unsupported(ft, KVM_FT_REC_POSITION, kvm_rip_read(vcpu), 0);
		return FT_RP_ABANDON;
	}
	atomic64_inc(&p->kicks);
	ft_svm_pos_state(vcpu, &now);
	/*
	 * An STI shadow does not keep the hit from matching: right after an
	 * STI the breakpoint hits inside it, while the primary's exit at the
	 * same point, kicked again there before the guest ran an instruction,
	 * may show none (seen on the test bed: a random replay seed's position
	 * right after an STI was never found). The primary logs a position
	 * only without a shadow, so the backup ends it here too.
	 */
	if (!same_state(&now, &p->rec) || !ft_svm_pos_clean(vcpu, true)) {
		p->step_over = true;
		return FT_RP_ABANDON;
	}
	ft_svm_pos_end_shadow(vcpu);
	/* Landmark p->rec.hdr.landmark: its inputs follow it in the ring. */
	p->armed = false;
	p->need_input = true;
	atomic64_inc(&p->positions);
	ft_replay_landmark(ft);
	return FT_RP_ABANDON;
}
