/* SPDX-License-Identifier: GPL-2.0 */
/*
 * POSITION landmarks (position.c): bounded delivery of asynchronous inputs
 * to a guest that runs without exiting. See README "Positions".
 */
#ifndef FT_POSITION_H
#define FT_POSITION_H

#include <linux/hrtimer.h>
#include <linux/atomic.h>
#include <linux/task_work.h>
#include <linux/kvm_ft.h>

struct ft_vm;
struct kvm_vcpu;

struct ft_pos {
	u32 us;				/* RECORD: the bound; 0 = no positions */
	struct hrtimer timer;		/* RECORD: kicks the vCPU while inputs wait */
	bool timer_on;			/* under ft_vm.aq_lock */
	atomic64_t positions;		/* logged (RECORD) or reached (REPLAY) */
	atomic64_t kicks;		/* RECORD: timer kicks; REPLAY: breakpoint hits */
	struct callback_head work;	/* RECORD: logs a position before the next entry */
	/* REPLAY, vCPU thread only */
	bool armed;			/* rec is the next landmark: breakpoint at its rip */
	bool hw_on;			/* our DR7 is in the VMCB */
	bool step_over;			/* the last hit did not match: RF at the next entry */
	bool need_input;		/* reached: an INTR or DMA record must follow */
	u64 rec_pos;			/* ring position of rec */
	struct kvm_ft_rec_position rec;
};

void ft_pos_init(struct ft_vm *ft, u32 us);
void ft_pos_destroy(struct ft_vm *ft);
/* ft_async_queue(), under aq_lock: an input waits (RECORD). */
void ft_pos_input_queued(struct ft_vm *ft);
/* kvm_exit probe of a recorded vCPU. */
void ft_pos_exit(struct ft_vm *ft, struct kvm_vcpu *vcpu);
/* kvm_entry probe: program (or remove) the breakpoint of a replaying vCPU. */
void ft_pos_entry(struct ft_vm *ft, struct kvm_vcpu *vcpu);
/* After record L was replayed and the next one is a POSITION: take it, arm. */
void ft_pos_arm(struct ft_vm *ft, const struct kvm_ft_rec_position *rec, u64 pos);

#endif /* FT_POSITION_H */
