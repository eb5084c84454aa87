// SPDX-License-Identifier: GPL-2.0
/*
 * Record mode: KVM tracepoint probes turn the attached vCPU's exits into log
 * records, and the vCPU waits for ring space before its next guest entry.
 *
 * Every probe runs on the vCPU thread with preemption disabled (tracepoint
 * callers hold the RCU-sched read side), which is what keeps a found ft_vm
 * alive (see attach.c) and this module's text present (module exit
 * unregisters and synchronises before the text goes).
 */
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/kvm_host.h>
#include <linux/ktime.h>
#include <linux/sched/signal.h>
#include <linux/task_work.h>
#include <asm/svm.h>
#include <trace/events/kvm.h>
#include "trace.h"		/* arch/x86/kvm/trace.h: probe prototypes */
#include "kvm_cache_regs.h"
#include "cpuid.h"
#include "ft.h"

/* Readers that sleep are woken at least this often while the vCPU exits. */
#define FT_WAKE_MAX_AGE_NS	(2 * NSEC_PER_MSEC)

/*
 * Nothing checks a probe's prototype at registration: these compile-time
 * checks against the private trace headers of the target kernel do.
 */
static inline void __maybe_unused probe_type_checks(void)
{
	check_trace_callback_type_kvm_exit(ft_probe_kvm_exit);
	check_trace_callback_type_kvm_entry(ft_probe_kvm_entry);
	check_trace_callback_type_kvm_pio(ft_probe_kvm_pio);
	check_trace_callback_type_kvm_mmio(ft_probe_kvm_mmio);
	check_trace_callback_type_kvm_cpuid(ft_probe_kvm_cpuid);
	check_trace_callback_type_kvm_msr(ft_probe_kvm_msr);
	check_trace_callback_type_kvm_inj_virq(ft_probe_kvm_inj_virq);
	check_trace_callback_type_kvm_userspace_exit(ft_probe_kvm_userspace_exit);
	check_trace_callback_type_kvm_fpu(ft_probe_kvm_fpu);
}

/*
 * Stop the VM from atomic context: KVM_RUN then fails with EIO. kvm_vm_dead()
 * would IPI-and-wait (not allowed with interrupts off); a request plus a kick
 * per vCPU has the same effect at their next entry.
 */
void ft_stop_vm(struct ft_vm *ft)
{
	struct kvm_vcpu *v;
	unsigned long i;

	if (test_and_set_bit(FT_S_STOPPED, &ft->state))
		return;
	WRITE_ONCE(ft->kvm->vm_dead, true);
	kvm_for_each_vcpu(i, v, ft->kvm) {
		kvm_make_request(KVM_REQ_VM_DEAD, v);
		kvm_vcpu_kick(v);
	}
}

void ft_record_fail(struct ft_vm *ft, u32 error)
{
	ft_ring_set_error(&ft->ring, error);	/* the genl event: ring_error() */
	ft_stop_vm(ft);
}

/* The attachment to record for, or NULL; enforces the single-vCPU rule. */
struct ft_vm *ft_record_target(struct kvm_vcpu *vcpu)
{
	struct ft_vm *ft;

	if (!vcpu)
		return NULL;
	ft = ft_vm_lookup(vcpu->kvm);
	if (!ft || !ft_vm_recording(ft))
		return NULL;
	if (unlikely(vcpu != ft->vcpu)) {
		ft_record_fail(ft, KVM_FT_ERR_MULTI_VCPU);
		return NULL;
	}
	return ft;
}

/*
 * The vCPU thread's wait for ring space, run as task_work before its next
 * guest entry (TIF_NOTIFY_RESUME is part of XFER_TO_GUEST_MODE_WORK, so
 * vcpu_run() runs it in sleepable context), or on its return to user space
 * (then it does not wait: see below).
 * The queued work holds a reference to the ft file: the ft_vm and this
 * module stay until the fput() at the end, and that fput() only defers the
 * final __fput() to later task_work, outside this function.
 */
/*
 * Our own reference is the last one: no fd and no mapping is left, nobody
 * can ever read the ring again. Closing the last reference detaches.
 */
bool ft_orphaned(struct ft_vm *ft)
{
	return file_count(ft->file) == 1;
}

/*
 * PF_EXITING: run from exit_task_work() after SIGKILL was dequeued, where
 * signal_pending() no longer says so; the task never enters again.
 */
static bool wait_done(struct ft_vm *ft)
{
	return !ft_vm_recording(ft) || ft_ring_error(&ft->ring) ||
	       ft_orphaned(ft) || (current->flags & PF_EXITING) ||
	       ft_ring_free(&ft->ring) >= ft->ring.size / 4;
}

static void wait_space(struct callback_head *cb)
{
	struct ft_vm *ft = container_of(cb, struct ft_vm, wait_work);
	struct ft_ring *r = &ft->ring;
	struct file *file = ft->file;
	u64 t0;

	/*
	 * Only before an entry (vCPU loaded). On the way out to user space
	 * a signal may already have been dequeued and would not end the
	 * wait: return instead; ft_record_run() queues it again at the next
	 * KVM_RUN.
	 */
	if (kvm_get_running_vcpu() == ft->vcpu && ft_vm_recording(ft) &&
	    !ft_ring_has_space(r, KVM_FT_RING_RESERVE)) {
		ft_ring_wait_begin(r);
		ft_ring_wake(r, true);
		t0 = ktime_get_ns();
		/*
		 * The reader frees space with a plain store to its page; its
		 * next poll() wakes us, and the timeout re-checks in case it
		 * does not poll.
		 */
		/*
		 * Any signal ends the wait: KVM_RUN returns EINTR before the
		 * entry, and the next KVM_RUN waits again (ft_record_run()).
		 */
		while (!wait_done(ft)) {
			if (wait_event_interruptible_timeout(r->space_wq, wait_done(ft),
							     msecs_to_jiffies(1)) < 0)
				break;
		}
		ft_ring_wait_end(r, ktime_get_ns() - t0);
		if (ft_orphaned(ft))
			ft_vm_detach(ft);
		/* A ring that will never drain (bad consumer) stops the VM here. */
		if (ft_vm_recording(ft) && ft_ring_error(r) &&
		    !ft_ring_has_space(r, KVM_FT_RING_RESERVE) &&
		    !test_and_set_bit(FT_S_STOPPED, &ft->state))
			kvm_vm_dead(ft->kvm);
	}
	/* Pairs with test_and_set_bit() in ft_queue_wait(): the work is reusable. */
	clear_bit_unlock(FT_S_WAIT_QUEUED, &ft->state);
	fput(file);
}

/*
 * Probe context: make the vCPU thread run @fn (@work, guarded by state bit
 * @bit) in sleepable context before its next guest entry (TIF_NOTIFY_RESUME
 * is part of XFER_TO_GUEST_MODE_WORK), or on its return to user space.
 * @fn must end with clear_bit_unlock(@bit) and fput(ft->file).
 */
void ft_queue_task(struct ft_vm *ft, struct callback_head *work, int bit,
		   task_work_func_t fn)
{
	if (test_and_set_bit_lock(bit, &ft->state))
		return;
	/* The file is freed only after an RCU grace period: safe to try. */
	if (!get_file_rcu(ft->file)) {
		clear_bit_unlock(bit, &ft->state);
		return;
	}
	init_task_work(work, fn);
	if (task_work_add(current, work, TWA_RESUME)) {
		/* The task is exiting: it never enters the guest again. */
		clear_bit_unlock(bit, &ft->state);
		fput(ft->file);
	}
}

/*
 * The vCPU's waits: the recorder's for ring space, replay's for records.
 * @fn must end with clear_bit_unlock(FT_S_WAIT_QUEUED) and fput(ft->file).
 */
void ft_queue_wait(struct ft_vm *ft, task_work_func_t fn)
{
	ft_queue_task(ft, &ft->wait_work, FT_S_WAIT_QUEUED, fn);
}

/*
 * kvm_fpu probe at the start of KVM_RUN: a wait for space that a signal
 * ended is taken up again before the first entry.
 */
void ft_record_run(struct ft_vm *ft)
{
	if (ft_vm_recording(ft) && !ft_ring_has_space(&ft->ring, KVM_FT_RING_RESERVE))
		ft_queue_wait(ft, wait_space);
}

void ft_record(struct ft_vm *ft, struct kvm_ft_rec *hdr, u32 hdr_len,
	       const void *data, u32 data_len, bool sync)
{
	int r;

	if (sync)
		ft_digest_mark(ft, hdr);
	r = ft_ring_append(&ft->ring, hdr, hdr_len, data, data_len, sync);

	if (r == -ENOSPC) {
		ft_record_fail(ft, KVM_FT_ERR_OVERRUN);
		return;
	}
	if (r == -EIO) {	/* ring in error: the VM was stopped */
		ft_stop_vm(ft);
		return;
	}
	if (r < 0) {
		ft_record_fail(ft, KVM_FT_ERR_UNSUPPORTED);
		return;
	}
	if (r & FT_RING_WAKE)
		ft_ring_wake(&ft->ring, true);
	if (r & FT_RING_LOW)
		ft_queue_wait(ft, wait_space);
	/*
	 * A new landmark: queued DMA is applied before the next entry, and the
	 * digests follow the record. task_work runs last-queued first, so a
	 * memory digest hashes memory before that DMA is applied.
	 */
	if (sync) {
		ft_async_kick(ft);
		ft_digest_recorded(ft, hdr);
	}
}

static inline u64 rip_of(struct kvm_vcpu *vcpu)
{
	return kvm_rip_read(vcpu);
}

static void intr_check_delivered(struct ft_vm *ft, struct kvm_vcpu *vcpu);

void ft_probe_kvm_exit(void *data, struct kvm_vcpu *vcpu, u32 isa)
{
	struct ft_vm *ft = ft_vm_lookup(vcpu->kvm);

	if (ft && vcpu == ft->vcpu) {
		ft_async_exit(ft, vcpu);
		if (ft_vm_replaying(ft))	/* kvm_ft_stats.exits in replay too */
			ft_ring_count_exit(&ft->ring);
	}
	ft = ft_record_target(vcpu);
	if (!ft)
		return;
	ft_ring_count_exit(&ft->ring);
	/* Before this exit's own records: the guest took it before them. */
	if (ft->intr_pending)
		intr_check_delivered(ft, vcpu);
	ft_digest_exit(ft, vcpu);
	ft_pos_exit(ft, vcpu);
	if (!is_guest_mode(vcpu) && ft_svm_exit_code(vcpu) == SVM_EXIT_HLT) {
		struct kvm_ft_rec_hlt rec = {
			.hdr.type = KVM_FT_REC_HLT,
			.rip = rip_of(vcpu),
		};

		ft_record(ft, &rec.hdr, sizeof(rec), NULL, 0, true);
		ft_ring_wake(&ft->ring, false);
		return;
	}
	ft_ring_wake_if_stale(&ft->ring, FT_WAKE_MAX_AGE_NS);
}

void ft_probe_kvm_pio(void *data, unsigned int rw, unsigned int port,
		      unsigned int size, unsigned int count, const void *val)
{
	struct kvm_vcpu *vcpu = kvm_get_running_vcpu();
	struct kvm_ft_rec_pio rec = {};
	u64 bytes = (u64)size * count;
	struct ft_vm *ft;

	/* Replay: a chunk of a string PIO (or a checked OUT passed on). */
	if (vcpu && !is_guest_mode(vcpu) && (ft = ft_replay_target(vcpu))) {
		ft_iobus_pio_trace(ft, vcpu, rw, port, size, count, val);
		return;
	}
	ft = ft_record_target(vcpu);
	if (!ft)
		return;
	if (!val || !count || (size != 1 && size != 2 && size != 4) ||
	    bytes > PAGE_SIZE) {
		ft_record_fail(ft, KVM_FT_ERR_UNSUPPORTED);
		return;
	}
	rec.hdr.type = rw ? KVM_FT_REC_PIO_OUT : KVM_FT_REC_PIO_IN;
	rec.hdr.flags = rw ? KVM_FT_RF_OUTPUT : 0;
	rec.rip = rip_of(ft->vcpu);
	rec.port = port;
	rec.size = size;
	rec.count = count;
	ft_record(ft, &rec.hdr, sizeof(rec), val, bytes, true);
}

void ft_probe_kvm_mmio(void *data, int type, int len, u64 gpa, void *val)
{
	struct kvm_vcpu *vcpu = kvm_get_running_vcpu();
	struct kvm_ft_rec_mmio rec = {};
	struct ft_vm *ft;

	/* Replay: the access was answered from the log (iobus.c), or not. */
	if (vcpu && !is_guest_mode(vcpu) && (ft = ft_replay_target(vcpu))) {
		ft_iobus_mmio_trace(ft, vcpu, type, len, gpa);
		return;
	}
	/* The unsatisfied read goes to user space; its completion fires READ. */
	if (type != KVM_TRACE_MMIO_READ && type != KVM_TRACE_MMIO_WRITE)
		return;
	ft = ft_record_target(vcpu);
	if (!ft)
		return;
	/*
	 * A read completed by user space fires here once for all its fragments
	 * (read_prepare()): one that crossed into another page (two fragments,
	 * or part RAM) cannot be replayed access by access.
	 */
	if (!val || len < 1 || len > 8 ||
	    (type == KVM_TRACE_MMIO_READ && vcpu->mmio_read_completed &&
	     (vcpu->mmio_nr_fragments != 1 || vcpu->mmio_fragments[0].len != len))) {
		ft_record_fail(ft, KVM_FT_ERR_UNSUPPORTED);
		return;
	}
	rec.hdr.type = type == KVM_TRACE_MMIO_READ ? KVM_FT_REC_MMIO_READ :
						     KVM_FT_REC_MMIO_WRITE;
	rec.hdr.flags = type == KVM_TRACE_MMIO_WRITE ? KVM_FT_RF_OUTPUT : 0;
	rec.rip = rip_of(ft->vcpu);
	rec.gpa = gpa;
	rec.len = len;
	memcpy(rec.data, val, len);
	ft_record(ft, &rec.hdr, sizeof(rec), NULL, 0, true);
}

void ft_probe_kvm_cpuid(void *data, unsigned int function, unsigned int index,
			unsigned long rax, unsigned long rbx, unsigned long rcx,
			unsigned long rdx, bool found, bool used_max_basic)
{
	struct ft_vm *ft = ft_record_target(kvm_get_running_vcpu());
	struct kvm_ft_rec_cpuid rec = {};

	if (!ft)
		return;
	rec.hdr.type = KVM_FT_REC_CPUID;
	rec.rip = rip_of(ft->vcpu);
	rec.function = function;
	rec.index = index;
	rec.eax = rax;
	rec.ebx = rbx;
	rec.ecx = rcx;
	rec.edx = rdx;
	ft_record(ft, &rec.hdr, sizeof(rec), NULL, 0, true);
}

/* kvm_msr carries no vCPU: it fires on the running vCPU's thread. */
void ft_probe_kvm_msr(void *data, unsigned int write, u32 ecx, u64 val,
		      bool exception)
{
	struct kvm_ft_rec_msr rec = {};
	struct ft_vm *ft;

	if (write)	/* writes are outputs of state */
		return;
	ft = ft_record_target(kvm_get_running_vcpu());
	if (!ft)
		return;
	rec.hdr.type = KVM_FT_REC_RDMSR;
	rec.rip = rip_of(ft->vcpu);
	rec.msr = ecx;
	/* A failed read is an input too: the backup's MSRs may differ. */
	rec.flags = exception ? KVM_FT_MSR_F_GP : 0;
	rec.value = exception ? 0 : val;
	ft_record(ft, &rec.hdr, sizeof(rec), NULL, 0, true);
}

/*
 * Interrupts are logged when delivered, not when injected: KVM injects an
 * interrupt again (reinjected=true) when the exit interrupted its delivery,
 * and an interrupt queued by KVM_INTERRUPT (user-space irqchip) is injected
 * with reinjected=true the first time too. So remember the injection here
 * and decide at the next exit, from EXITINTINFO, whether the guest took it.
 * Soft interrupts are instructions (INTn), deterministic.
 */
void ft_probe_kvm_inj_virq(void *data, unsigned int vector, bool soft,
			   bool reinjected)
{
	struct kvm_vcpu *vcpu = kvm_get_running_vcpu();
	struct ft_vm *ft;

	if (soft || !vcpu)
		return;
	/* The VMM's own KVM_INTERRUPT on a backup: not in the log, unreplayable. */
	ft = ft_replay_target(vcpu);
	if (ft && !is_guest_mode(vcpu) && !ft_async_own_irq(ft, vector)) {
		ft_replay_unsupported(ft, KVM_FT_REC_INTR, vector, 0);
		return;
	}
	ft = ft_record_target(vcpu);
	if (!ft || ft_async_own_irq(ft, vector))	/* KVM re-injects ours */
		return;
	ft->intr_pending = true;
	ft->intr_vector = vector;
	ft->intr_rip = rip_of(ft->vcpu);	/* delivery happens at VMRUN */
}

static void intr_check_delivered(struct ft_vm *ft, struct kvm_vcpu *vcpu)
{
	struct kvm_ft_rec_intr rec = {};

	ft->intr_pending = false;
	if (ft_svm_intr_redelivered(vcpu, ft->intr_vector))
		return;		/* the reinjection sets it pending again */
	rec.hdr.type = KVM_FT_REC_INTR;
	rec.hdr.flags = KVM_FT_RF_ASYNC;
	rec.rip = ft->intr_rip;
	rec.vector = ft->intr_vector;
	ft_record(ft, &rec.hdr, sizeof(rec), NULL, 0, false);
}

/*
 * Fires after vcpu_put(), so there is no running vCPU: find the attachment
 * whose vCPU this task ran last (ft->run_task is set by the kvm_entry probe).
 */
void ft_probe_kvm_userspace_exit(void *data, u32 reason, int err)
{
	struct ft_vm *ft = ft_vm_lookup_task(current);

	if (ft)
		ft_ring_wake(&ft->ring, false);
}

/*
 * Features the module cannot make deterministic on SVM, and the KVM PV
 * features that let the host write guest memory behind the log.
 */
int ft_cpuid_check(struct kvm_vcpu *vcpu)
{
	static const struct {
		u32 function, index;
		u8 reg;		/* 0 eax, 1 ebx, 2 ecx, 3 edx */
		u32 mask;
	} unsafe[] = {
		{ 0x00000001, 0, 2, BIT(30) },		/* RDRAND */
		{ 0x00000007, 0, 1, BIT(18) },		/* RDSEED */
		{ 0x00000007, 0, 2, BIT(22) },		/* RDPID */
		{ 0x80000001, 0, 3, BIT(27) },		/* RDTSCP */
		{ 0 /* KVM base + 1 */, 0, 0,
		  BIT(KVM_FEATURE_CLOCKSOURCE) | BIT(KVM_FEATURE_CLOCKSOURCE2) |
		  BIT(KVM_FEATURE_ASYNC_PF) | BIT(KVM_FEATURE_ASYNC_PF_INT) |
		  BIT(KVM_FEATURE_STEAL_TIME) | BIT(KVM_FEATURE_PV_EOI) },
	};
	struct kvm_cpuid_entry2 *e;
	u32 regs[4];
	int i;

	for (i = 0; i < ARRAY_SIZE(unsafe); i++) {
		u32 fn = unsafe[i].function;

		if (!fn) {
			/* Only a guest that sees KVM's signature uses PV features. */
			if (!vcpu->arch.kvm_cpuid_base)
				continue;
			fn = vcpu->arch.kvm_cpuid_base +
			     (KVM_CPUID_FEATURES - KVM_CPUID_SIGNATURE);
		}
		e = kvm_find_cpuid_entry_index(vcpu, fn, unsafe[i].index);
		if (!e)
			continue;
		regs[0] = e->eax;
		regs[1] = e->ebx;
		regs[2] = e->ecx;
		regs[3] = e->edx;
		if (regs[unsafe[i].reg] & unsafe[i].mask)
			return -EMEDIUMTYPE;
	}
	return 0;
}
