/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvm_ft internal interfaces. See README for the object model and lock order.
 */
#ifndef FT_H
#define FT_H

#include <linux/types.h>
#include <linux/mutex.h>
#include <linux/rculist.h>
#include <linux/task_work.h>
#include <linux/kvm_ft.h>
#include "ring.h"
#include "position.h"

struct kvm;
struct kvm_vcpu;
struct file;

/* ft_vm.state bits */
enum {
	FT_S_DETACHED,		/* KVM_FT_DETACH or release: no more records */
	FT_S_WAIT_QUEUED,	/* wait_work is queued on the vCPU thread */
	FT_S_INTERCEPT,		/* we may have set an intercept in the VMCB */
	FT_S_CPUID_OK,		/* guest CPUID checked at the first entry */
	FT_S_STOPPED,		/* we stopped the VM (kvm->vm_dead) */
	FT_S_ASYNC_QUEUED,	/* async_work is queued on the vCPU thread */
	FT_S_RP_ASYNC,		/* replay: a landmark's async records to process */
	FT_S_MEM_DIGEST_REQ,	/* record: a memory digest is requested */
	FT_S_DIGEST_QUEUED,	/* record: dg.work is queued on the vCPU thread */
	FT_S_POS_REQ,		/* record: an input waited too long, log a position */
	FT_S_POS_QUEUED,	/* record: pos.work is queued on the vCPU thread */
};

/* Digests of one attachment (digest.c). */
struct ft_digest {
	u32 interval;			/* landmarks between register digests; 0 = none */
	/* vCPU thread only */
	bool regs_valid;		/* at a digest point, its first record not yet taken */
	u64 regs, regs_rip;		/* register digest of that point, when one is due */
	u64 next_due;			/* first landmark that may carry a register digest */
	bool expect_reg;		/* replay: a REG_DIGEST must be the next record */
	bool expect_mem;		/* replay: a MEM_DIGEST must follow (announced) */
	u64 mem_landmark;		/* record: landmark of the memory digest in work */
	struct callback_head work;	/* record: hashes guest memory */
	struct kvm_ft_digest info;	/* under ring.lock: KVM_FT_GET_DIGEST */
};

/* One input queued by KVM_FT_QUEUE_ASYNC (async.c). */
struct ft_async_item {
	struct list_head node;
	u32 type;			/* KVM_FT_ASYNC_* */
	u32 vector;
	u64 gpa;
	u32 len;
	ktime_t queued;			/* when the ioctl queued it */
	u8 data[];
};

/*
 * One attachment. Created by KVM_FT_ATTACH, freed by the release of its ft
 * file after it left ft_vm_hash and an RCU grace period passed, so a probe
 * (preemption disabled = RCU-sched read side) that found it may use it until
 * it returns. kvm, vcpu and file are stable for the whole lifetime.
 */
struct ft_vm {
	struct hlist_node node;		/* ft_vm_hash: RCU, writers hold ft_vms_lock */
	struct kvm *kvm;		/* reference held (kvm_get_kvm) */
	struct kvm_vcpu *vcpu;		/* the VM's only vCPU, lives as long as kvm */
	struct file *file;		/* our ft file; no reference */
	u32 id;
	pid_t vm_pid;
	u32 mode;			/* enum kvm_ft_mode; written under lock, READ_ONCE */
	u32 info_flags;			/* KVM_FT_INFO_F_UNSAFE_CPUID */
	unsigned long state;		/* FT_S_* atomic bits */
	const void *run_task;		/* task last seen entering the guest; a cookie */
	/* vCPU thread only (probe context): an interrupt injected, not yet known delivered */
	bool intr_pending;
	u32 intr_vector;
	u64 intr_rip;
	/* Asynchronous inputs (async.c): queue under aq_lock, in queue order. */
	spinlock_t aq_lock;
	struct list_head aq;
	u32 aq_count, aq_dma;		/* items, DMA items; READ_ONCE unlocked */
	struct callback_head async_work;
	/* vCPU thread only */
	u64 entry_lm;			/* ring landmark at the last guest entry */
	u32 own_vector;			/* our injected IRQ not yet delivered, or 0 */
	struct mutex lock;		/* serialises mode changes and detach */
	struct callback_head wait_work;	/* see ft_record_wait_space() */
	/* Replay only: the record being checked (vCPU thread) and the report. */
	void *rbuf;			/* KVM_FT_RING_RESERVE bytes */
	struct kvm_ft_divergence div;	/* under ring.lock; first error only */
	struct kvm_ft_rec_intr rp_intr;	/* vCPU thread: INTR to inject at the next entry */
	u64 rp_intr_pos;
	bool rp_intr_pending;
	u64 rp_wait_from;		/* vCPU thread: the wait for records ends when the producer leaves it */
	/* Replay of emulated accesses (iobus.c), vCPU thread only. */
	bool em_str;			/* in a string IOIO exit: its PIO comes from the log */
	bool em_point;			/* ... whose first record is a digest point */
	bool em_in_open;		/* a PIO_IN record in rbuf answers the bus reads */
	bool em_mmio_read;		/* the last MMIO bus read was answered from the log */
	u32 em_in_done;			/* elements of it answered */
	u64 em_in_pos;			/* its ring position */
	u32 em_out_left;		/* checked OUTS elements whose bus writes are dropped */
	struct ft_digest dg;
	struct ft_pos pos;
	struct ft_ring ring;
};

static inline bool ft_vm_recording(struct ft_vm *ft)
{
	return READ_ONCE(ft->mode) == KVM_FT_MODE_RECORD &&
	       !test_bit(FT_S_DETACHED, &ft->state);
}

static inline bool ft_vm_replaying(struct ft_vm *ft)
{
	return READ_ONCE(ft->mode) == KVM_FT_MODE_REPLAY &&
	       !test_bit(FT_S_DETACHED, &ft->state);
}

/* Recording or replaying: the RDTSC intercept and the CPUID rule apply. */
static inline bool ft_vm_active(struct ft_vm *ft)
{
	u32 mode = READ_ONCE(ft->mode);

	return (mode == KVM_FT_MODE_RECORD || mode == KVM_FT_MODE_REPLAY) &&
	       !test_bit(FT_S_DETACHED, &ft->state);
}

/* main.c */
extern struct miscdevice ft_misc;

/* attach.c */
int ft_attach_init(void);
void ft_attach_uninit(void);
long ft_attach(const struct kvm_ft_attach __user *uarg);
void ft_vm_detach(struct ft_vm *ft);
struct ft_vm *ft_vm_lookup(const struct kvm *kvm);
struct ft_vm *ft_vm_lookup_task(const void *task);
bool ft_tombs_pending(void);
bool ft_tomb_take(const struct kvm_vcpu *vcpu);
void ft_tomb_drop_vm(const struct kvm *kvm);
void ft_vm_put_notify(const struct kvm *kvm);
int ft_vm_visit_next(u32 after_id, int (*fn)(struct ft_vm *ft, void *arg), void *arg);

/* record.c: probes and the wait for ring space */
void ft_probe_kvm_exit(void *data, struct kvm_vcpu *vcpu, u32 isa);
void ft_probe_kvm_pio(void *data, unsigned int rw, unsigned int port,
		      unsigned int size, unsigned int count, const void *val);
void ft_probe_kvm_mmio(void *data, int type, int len, u64 gpa, void *val);
void ft_probe_kvm_cpuid(void *data, unsigned int function, unsigned int index,
			unsigned long rax, unsigned long rbx, unsigned long rcx,
			unsigned long rdx, bool found, bool used_max_basic);
void ft_probe_kvm_msr(void *data, unsigned int write, u32 ecx, u64 val,
		      bool exception);
void ft_probe_kvm_inj_virq(void *data, unsigned int vector, bool soft,
			   bool reinjected);
void ft_probe_kvm_userspace_exit(void *data, u32 reason, int err);
void ft_queue_wait(struct ft_vm *ft, task_work_func_t fn);
void ft_record_run(struct ft_vm *ft);
void ft_queue_task(struct ft_vm *ft, struct callback_head *work, int bit,
		   task_work_func_t fn);
void ft_probe_kvm_fpu(void *data, int load);
void ft_record(struct ft_vm *ft, struct kvm_ft_rec *hdr, u32 hdr_len,
	       const void *data, u32 data_len, bool sync);
void ft_record_fail(struct ft_vm *ft, u32 error);
struct ft_vm *ft_record_target(struct kvm_vcpu *vcpu);
int ft_cpuid_check(struct kvm_vcpu *vcpu);

void ft_stop_vm(struct ft_vm *ft);
bool ft_orphaned(struct ft_vm *ft);

/* replay.c: what the exit hook does with a synchronous exit */
enum ft_replay_act {
	FT_RP_KVM,		/* let KVM handle the exit */
	FT_RP_SKIP,		/* emulated: skip the instruction */
	FT_RP_ABANDON,		/* no side effect, re-enter (wait or stopped) */
	FT_RP_FAULT,		/* consumed, an exception is queued: re-enter */
};
struct ft_vm *ft_replay_target(struct kvm_vcpu *vcpu);
enum ft_replay_act ft_replay_exit(struct ft_vm *ft, struct kvm_vcpu *vcpu,
				  u64 exit_code);
void ft_replay_unsupported(struct ft_vm *ft, u32 type, u64 addr, u32 size);
void ft_replay_fail(struct ft_vm *ft, u32 error, u32 reason, u64 pos,
		    const struct kvm_ft_rec *taken,
		    const struct kvm_ft_div_event *exp,
		    const struct kvm_ft_div_event *act);
long ft_replay_get_divergence(struct ft_vm *ft, void __user *uarg);
void ft_replay_async(struct ft_vm *ft);
void ft_replay_intr_entry(struct ft_vm *ft, struct kvm_vcpu *vcpu);

/* replay.c, for iobus.c */
struct kvm_ft_rec *ft_replay_take(struct ft_vm *ft, struct kvm_vcpu *vcpu,
				  const struct kvm_ft_div_event *act, u64 *pos);
enum ft_replay_act ft_replay_diverge(struct ft_vm *ft, u32 reason, u64 pos,
				     const struct kvm_ft_rec *h,
				     const struct kvm_ft_div_event *act);
void ft_replay_landmark(struct ft_vm *ft);
void ft_replay_queue_wait(struct ft_vm *ft, u64 from);

/* iobus.c: replay of emulated accesses (MMIO, string PIO) */
int ft_iobus_arm(void);
void ft_iobus_uninit(void);
enum ft_replay_act ft_iobus_exit(struct ft_vm *ft, struct kvm_vcpu *vcpu,
				 u64 exit_code);
void ft_iobus_entry(struct ft_vm *ft);
void ft_iobus_mmio_trace(struct ft_vm *ft, struct kvm_vcpu *vcpu, int type,
			 int len, u64 gpa);
void ft_iobus_pio_trace(struct ft_vm *ft, struct kvm_vcpu *vcpu, unsigned int rw,
			unsigned int port, unsigned int size, unsigned int count,
			const void *val);

/* async.c: asynchronous inputs (KVM_FT_QUEUE_ASYNC) */
void ft_async_init(struct ft_vm *ft);
void ft_async_destroy(struct ft_vm *ft);
long ft_async_queue(struct ft_vm *ft, const struct kvm_ft_async __user *uarg);
void ft_async_kick(struct ft_vm *ft);
void ft_async_entry(struct ft_vm *ft, struct kvm_vcpu *vcpu);
void ft_async_exit(struct ft_vm *ft, struct kvm_vcpu *vcpu);
bool ft_async_own_irq(struct ft_vm *ft, u32 vector);
bool ft_async_would_apply(struct ft_vm *ft, struct kvm_vcpu *vcpu, u32 first_len);

/* position.c: the exit hook's #DB of a replaying vCPU (armed: ours) */
enum ft_replay_act ft_pos_db(struct ft_vm *ft, struct kvm_vcpu *vcpu);

/* digest.c */
void ft_digest_init(struct ft_vm *ft, u32 interval);
void ft_digest_exit(struct ft_vm *ft, struct kvm_vcpu *vcpu);
void ft_digest_mark(struct ft_vm *ft, struct kvm_ft_rec *hdr);
void ft_digest_recorded(struct ft_vm *ft, const struct kvm_ft_rec *hdr);
int ft_digest_take(struct ft_vm *ft, struct kvm_vcpu *vcpu, struct ft_take_err *err);
int ft_digest_async(struct ft_vm *ft, const struct kvm_ft_rec *h, u64 pos);
void ft_digest_replayed(struct ft_vm *ft, struct kvm_vcpu *vcpu,
			const struct kvm_ft_rec *h);
bool ft_digest_mem_point(const struct kvm_ft_rec *h);
long ft_digest_request(struct ft_vm *ft);
long ft_digest_get(struct ft_vm *ft, void __user *uarg);

/* svm.c */
int ft_svm_init(void);
void ft_svm_uninit(void);
int ft_svm_arm(void);
int ft_svm_can_replay(void);
int ft_svm_check_vcpu(struct kvm_vcpu *vcpu);
u64 ft_svm_exit_code(struct kvm_vcpu *vcpu);
u64 ft_svm_exit_info(struct kvm_vcpu *vcpu, int n);
bool ft_svm_clear_intercept_locked(struct kvm_vcpu *vcpu);
bool ft_svm_intr_redelivered(struct kvm_vcpu *vcpu, u32 vector);
bool ft_svm_irq_allowed(struct kvm_vcpu *vcpu);
void ft_svm_inject_irq(struct kvm_vcpu *vcpu, u32 vector);
void ft_probe_kvm_entry(void *data, struct kvm_vcpu *vcpu,
			bool force_immediate_exit);
u64 ft_svm_linear_rip(struct kvm_vcpu *vcpu);
bool ft_svm_pos_clean(struct kvm_vcpu *vcpu, bool shadow_ok);
void ft_svm_pos_end_shadow(struct kvm_vcpu *vcpu);
bool ft_svm_guest_debugs(struct kvm_vcpu *vcpu);
void ft_svm_pos_state(struct kvm_vcpu *vcpu, struct kvm_ft_rec_position *p);
void ft_svm_pos_arm(struct kvm_vcpu *vcpu, u64 rip, bool step_over);
void ft_svm_pos_disarm(struct kvm_vcpu *vcpu);
bool ft_svm_db_ours(struct kvm_vcpu *vcpu);

/* hooks.c */
int ft_hooks_init(void);
void ft_hooks_uninit(void);
unsigned long ft_lookup_symbol(const char *name);

/* genl.c */
int ft_genl_init(void);
void ft_genl_uninit(void);
void ft_genl_event(struct ft_vm *ft, u32 event);

#endif /* FT_H */
