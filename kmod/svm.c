// SPDX-License-Identifier: GPL-2.0
/*
 * AMD SVM specifics: the vcpu_svm layout, the RDTSC intercept in vmcb01 and
 * its emulation.
 *
 * KVM 6.1 never intercepts RDTSC and has no handler for its exit. We set
 * INTERCEPT_RDTSC in vmcb01 from the kvm_entry probe while a VM records, and
 * emulate the exit entirely inside an ftrace callback on
 * svm_invoke_exit_handler(vcpu, exit_code): the callback computes the
 * guest's TSC, writes RAX/RDX, appends the record and points the saved IP at
 * kvm_emulate_as_nop() (same first argument), which skips the instruction.
 * No module code runs preemptibly on KVM's behalf, so unloading cannot race
 * with a vCPU inside our text. RDTSCP stays hidden by CPUID: KVM intercepts
 * it then and injects #UD itself.
 */
#include <linux/ftrace.h>
#include <linux/kvm_host.h>
#include <linux/module.h>
#include <asm/debugreg.h>
#include <asm/svm.h>
#include "svm/svm.h"		/* arch/x86/kvm: struct vcpu_svm of the target kernel */
#include "kvm_cache_regs.h"
#include "ft.h"

/*
 * Built against the target kernel's own svm.h, so every offset below is the
 * real one; these pin down the assumptions that the code makes beyond it.
 */
static_assert(offsetof(struct vcpu_svm, vcpu) == 0);
static_assert(__same_type(((struct vcpu_svm *)0)->vmcb01.ptr, struct vmcb *));
static_assert(__same_type(((struct vcpu_svm *)0)->vmcb01.pa, unsigned long));
static_assert(VMCB_INTERCEPTS == 0);
static_assert(SVM_EXIT_RDTSC == 0x6e && SVM_EXIT_HLT == 0x78);
static_assert(SVM_EXIT_EXCP_BASE + DB_VECTOR == 0x41);

static DEFINE_MUTEX(arm_lock);
static struct module *vendor_mod;	/* kvm_amd, pinned while the hook is armed */
static unsigned long exit_handler_ip;	/* svm_invoke_exit_handler */
/*
 * int nmi_interception(struct kvm_vcpu *vcpu) { return 1; } in kvm_amd: the
 * exit handler a replayed exit is redirected to when it must have no effect
 * (no record yet, or the VM is stopping): the guest re-executes the
 * instruction at its next entry. Kernel text, not ours (see above).
 */
static unsigned long abandon_ip;

int ft_svm_check_vcpu(struct kvm_vcpu *vcpu)
{
	struct vcpu_svm *svm = to_svm(vcpu);
	struct vmcb *vmcb = svm->vmcb01.ptr;

	/* A build against a different layout fails this on real data. */
	if (!vmcb || !virt_addr_valid(vmcb) || __pa(vmcb) != svm->vmcb01.pa) {
		pr_err("vcpu_svm layout check failed: not the kernel this was built for\n");
		return -ENODEV;
	}
	return 0;
}

u64 ft_svm_exit_code(struct kvm_vcpu *vcpu)
{
	return to_svm(vcpu)->vmcb->control.exit_code;
}

u64 ft_svm_exit_info(struct kvm_vcpu *vcpu, int n)
{
	struct vmcb_control_area *c = &to_svm(vcpu)->vmcb->control;

	return n == 1 ? c->exit_info_1 : c->exit_info_2;
}

/*
 * True if the exit interrupted the delivery of external interrupt @vector,
 * so KVM will inject it again (kvm_inj_virq then fires with reinjected).
 */
bool ft_svm_intr_redelivered(struct kvm_vcpu *vcpu, u32 vector)
{
	u32 ii = to_svm(vcpu)->vmcb->control.exit_int_info;

	return (ii & SVM_EXITINTINFO_VALID) &&
	       (ii & SVM_EXITINTINFO_TYPE_MASK) == SVM_EXITINTINFO_TYPE_INTR &&
	       (ii & SVM_EXITINTINFO_VEC_MASK) == vector;
}

/* As gif_set() (vmcb01 outside guest mode), without kvm_amd's vgif parameter. */
static bool gif(struct vcpu_svm *svm)
{
	struct vmcb *vmcb = svm->vmcb01.ptr;

	if (vmcb->control.int_ctl & V_GIF_ENABLE_MASK)
		return vmcb->control.int_ctl & V_GIF_MASK;
	return svm->vcpu.arch.hflags & HF_GIF_MASK;
}

/*
 * kvm_entry probe (interrupts off, right before VMRUN, not in guest mode):
 * could the guest take an external interrupt at this entry? As
 * svm_interrupt_blocked(), and nothing else is being injected (KVM's own
 * event injection already ran for this entry).
 */
bool ft_svm_irq_allowed(struct kvm_vcpu *vcpu)
{
	struct vcpu_svm *svm = to_svm(vcpu);
	struct vmcb *vmcb = svm->vmcb;

	return !is_guest_mode(vcpu) && gif(svm) &&
	       (vmcb->save.rflags & X86_EFLAGS_IF) &&
	       !(vmcb->control.int_state & SVM_INTERRUPT_SHADOW_MASK) &&
	       !(vmcb->control.event_inj & SVM_EVTINJ_VALID) &&
	       !vcpu->arch.interrupt.injected && !vcpu->arch.nmi_injected &&
	       !vcpu->arch.exception.injected && !vcpu->arch.exception.pending;
}

/*
 * Inject external interrupt @vector at this entry, as KVM does for one
 * queued by KVM_INTERRUPT (kvm_queue_interrupt() + svm_inject_irq()): if the
 * delivery is interrupted by an exit, svm_complete_interrupts() finds it in
 * EXITINTINFO and KVM injects it again (kvm_inj_virq, reinjected).
 */
void ft_svm_inject_irq(struct kvm_vcpu *vcpu, u32 vector)
{
	vcpu->arch.interrupt.injected = true;
	vcpu->arch.interrupt.soft = false;
	vcpu->arch.interrupt.nr = vector;
	to_svm(vcpu)->vmcb->control.event_inj = vector | SVM_EVTINJ_VALID |
						 SVM_EVTINJ_TYPE_INTR;
	++vcpu->stat.irq_injections;
}

/* Called right before VMRUN (interrupts off) on vmcb01 (not in guest mode). */
static void set_rdtsc_intercept(struct kvm_vcpu *vcpu, bool on)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb01.ptr;

	if (vmcb_is_intercept(&vmcb->control, INTERCEPT_RDTSC) == on)
		return;
	if (on)
		vmcb_set_intercept(&vmcb->control, INTERCEPT_RDTSC);
	else
		vmcb_clr_intercept(&vmcb->control, INTERCEPT_RDTSC);
	/* The CPU reloads the intercept vectors only if their clean bit is 0. */
	vmcb_mark_dirty(vmcb, VMCB_INTERCEPTS);
}

/*
 * Remove our intercept from a vCPU that is outside KVM_RUN: the caller holds
 * vcpu->mutex (KVM_RUN and every vCPU ioctl hold it), so nothing else writes
 * vmcb01 now and the next VMRUN reloads the vectors (clean bit cleared).
 * Returns false if the vCPU is in guest mode (vmcb02): the caller keeps a
 * tombstone then.
 */
bool ft_svm_clear_intercept_locked(struct kvm_vcpu *vcpu)
{
	lockdep_assert_held(&vcpu->mutex);
	if (is_guest_mode(vcpu))
		return false;
	set_rdtsc_intercept(vcpu, false);
	ft_svm_pos_disarm(vcpu);
	return true;
}

/*
 * kvm_entry probe. Re-asserts the intercept at every entry (init_vmcb() on
 * INIT/reset rewrites the vectors) and removes it at the first entry after
 * detach, mode LIVE, or (via a tombstone) the release of the ft file.
 * Nested guests (vmcb02 active) are left alone.
 */
void ft_probe_kvm_entry(void *data, struct kvm_vcpu *vcpu,
			bool force_immediate_exit)
{
	struct ft_vm *ft = ft_vm_lookup(vcpu->kvm);

	if (is_guest_mode(vcpu))
		return;
	if (!ft) {
		if (unlikely(ft_tombs_pending()) && ft_tomb_take(vcpu)) {
			set_rdtsc_intercept(vcpu, false);
			ft_svm_pos_disarm(vcpu);
		}
		return;
	}
	if (vcpu != ft->vcpu)		/* its first exit stops the VM */
		return;
	WRITE_ONCE(ft->run_task, current);
	if (ft_vm_active(ft)) {
		/* CPUID may change until the first KVM_RUN, never after. */
		if (unlikely(!test_bit(FT_S_CPUID_OK, &ft->state))) {
			if (ft_cpuid_check(vcpu)) {
				ft_record_fail(ft, KVM_FT_ERR_UNSUPPORTED);
				return;
			}
			set_bit(FT_S_CPUID_OK, &ft->state);
		}
		/* Flag first: release reads it after an RCU grace period. */
		set_bit(FT_S_INTERCEPT, &ft->state);
		set_rdtsc_intercept(vcpu, true);
	} else if (test_bit(FT_S_INTERCEPT, &ft->state)) {
		set_rdtsc_intercept(vcpu, false);
		clear_bit(FT_S_INTERCEPT, &ft->state);
	}
	ft_iobus_entry(ft);
	ft_async_entry(ft, vcpu);
}

/* ---- POSITION breakpoints (position.c) ---- */

/* DR7 of an armed vCPU: breakpoint 0, local, on execution (RW0 = LEN0 = 0). */
#define FT_POS_DR7	(DR7_FIXED_1 | DR_LOCAL_ENABLE)

/*
 * QEMU's TCG before 9.1 loads the VMCB's DR7 at VMRUN without re-inserting
 * its breakpoints, so an L2 instruction breakpoint fires only if L1's own
 * DR7 enabled it when DR0 or DR7 was written. So on top of the VMCB's DR7
 * (all real hardware needs), the kvm_entry probe also enables it in this
 * CPU's DR7, and an ftrace callback on kvm_load_host_xsave_state(), which
 * svm_vcpu_run() calls right after VMRUN with interrupts still off, turns
 * it off again before any other host code can run into it (a guest RIP
 * may well be a host user address).
 */
static DEFINE_PER_CPU(bool, host_dr7_on);
static unsigned long host_xsave_ip;

static void notrace host_dr7_off(unsigned long ip, unsigned long parent_ip,
				 struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	if (this_cpu_read(host_dr7_on)) {
		set_debugreg(0, 7);
		this_cpu_write(host_dr7_on, false);
	}
}

static struct ftrace_ops dr7_ops = {
	.func = host_dr7_off,
	.flags = FTRACE_OPS_FL_RECURSION,
};

u64 ft_svm_linear_rip(struct kvm_vcpu *vcpu)
{
	return to_svm(vcpu)->vmcb01.ptr->save.cs.base + kvm_rip_read(vcpu);
}

/* The guest (or the VMM through KVM) uses debug registers or single-steps. */
bool ft_svm_guest_debugs(struct kvm_vcpu *vcpu)
{
	return vcpu->guest_debug || (vcpu->arch.dr7 & DR7_BP_EN_MASK) ||
	       (vcpu->arch.switch_db_regs & KVM_DEBUGREG_WONT_EXIT) ||
	       to_svm(vcpu)->nmi_singlestep;
}

/*
 * After an exit, before the next entry: the guest is between two
 * instructions and KVM injects nothing at the next entry, so the state is
 * one the backup's breakpoint can stop at: no event being delivered or
 * queued, no interrupt shadow (unless @shadow_ok), no single-step, no
 * debug registers in use.
 */
bool ft_svm_pos_clean(struct kvm_vcpu *vcpu, bool shadow_ok)
{
	struct vcpu_svm *svm = to_svm(vcpu);
	struct vmcb *vmcb = svm->vmcb01.ptr;

	return !is_guest_mode(vcpu) && gif(svm) &&
	       !(vmcb->control.exit_int_info & SVM_EXITINTINFO_VALID) &&
	       (shadow_ok || !(vmcb->control.int_state & SVM_INTERRUPT_SHADOW_MASK)) &&
	       !(vmcb->save.rflags & X86_EFLAGS_TF) &&
	       !vcpu->arch.interrupt.injected && !vcpu->arch.nmi_injected &&
	       !vcpu->arch.exception.injected && !vcpu->arch.exception.pending &&
	       !ft_svm_guest_debugs(vcpu);
}

/*
 * A position reached inside an STI shadow: the primary logged it with none
 * (it never logs one in a shadow), so the backup drops it too: the same
 * state, and the landmark's IRQ can be taken here as it was there.
 */
void ft_svm_pos_end_shadow(struct kvm_vcpu *vcpu)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb01.ptr;

	vmcb->control.int_state &= ~SVM_INTERRUPT_SHADOW_MASK;
}

/* The state a POSITION names: the same on both sides at the same point. */
void ft_svm_pos_state(struct kvm_vcpu *vcpu, struct kvm_ft_rec_position *p)
{
	struct vcpu_svm *svm = to_svm(vcpu);
	struct vmcb *vmcb = svm->vmcb01.ptr;
	int i;

	for (i = 0; i < ARRAY_SIZE(p->gpr); i++)
		p->gpr[i] = kvm_register_read_raw(vcpu, i);
	p->rip = kvm_rip_read(vcpu);
	p->rflags = vmcb->save.rflags & ~X86_EFLAGS_RF;
	p->cr3 = svm_is_intercept(svm, INTERCEPT_CR3_READ) ? kvm_read_cr3(vcpu) :
							     vmcb->save.cr3;
}

/*
 * kvm_entry probe (interrupts off, right before VMRUN): an instruction
 * breakpoint at @rip for this entry. #DB is always intercepted on SVM
 * (init_vmcb()), so a hit exits to ft_pos_db() before the guest sees it.
 * With @step_over, RFLAGS.RF makes the first instruction run without
 * trapping (the CPU clears RF when it completes; PUSHF does not store it).
 */
void ft_svm_pos_arm(struct kvm_vcpu *vcpu, u64 rip, bool step_over)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb01.ptr;

	set_debugreg(vmcb->save.cs.base + rip, 0);
	if (vmcb->save.dr7 != FT_POS_DR7) {
		vmcb->save.dr7 = FT_POS_DR7;
		vmcb_mark_dirty(vmcb, VMCB_DR);
	}
	if (step_over)
		vmcb->save.rflags |= X86_EFLAGS_RF;
	if (READ_ONCE(host_xsave_ip)) {
		set_debugreg(FT_POS_DR7, 7);
		this_cpu_write(host_dr7_on, true);
	}
}

/* Give the guest its own DR7 back (KVM's copy; ours was only ever ours). */
void ft_svm_pos_disarm(struct kvm_vcpu *vcpu)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb01.ptr;

	if (vmcb->save.dr7 == FT_POS_DR7) {
		vmcb->save.dr7 = vcpu->arch.dr7;
		vmcb_mark_dirty(vmcb, VMCB_DR);
	}
}

/* The #DB is our breakpoint 0, not a single-step (DR6 of the exit). */
bool ft_svm_db_ours(struct kvm_vcpu *vcpu)
{
	u64 dr6 = to_svm(vcpu)->vmcb01.ptr->save.dr6;

	return (dr6 & DR_TRAP0) && !(dr6 & DR_STEP);
}

static void emulate_rdtsc(struct kvm_vcpu *vcpu)
{
	struct kvm_ft_rec_tsc rec = {};
	struct ft_vm *ft;
	u64 tsc;

	if (!is_guest_mode(vcpu))
		tsc = kvm_read_l1_tsc(vcpu, rdtsc());
	else	/* only if L1 does not intercept it: L2's own offset */
		tsc = kvm_scale_tsc(rdtsc(), vcpu->arch.tsc_scaling_ratio) +
		      vcpu->arch.tsc_offset;
	kvm_rax_write(vcpu, (u32)tsc);
	kvm_rdx_write(vcpu, tsc >> 32);

	if (is_guest_mode(vcpu))
		return;
	ft = ft_record_target(vcpu);
	if (!ft)
		return;
	rec.hdr.type = KVM_FT_REC_RDTSC;
	rec.rip = kvm_rip_read(vcpu);
	rec.tsc = tsc;
	rec.insn = KVM_FT_INSN_RDTSC;
	ft_record(ft, &rec.hdr, sizeof(rec), NULL, 0, true);
}

/*
 * int svm_invoke_exit_handler(struct kvm_vcpu *vcpu, u64 exit_code).
 * RDTSC exits are emulated here (record mode or none); in replay mode the
 * synchronous exits are checked and replayed by ft_replay_exit().
 */
static void notrace rdtsc_hook(unsigned long ip, unsigned long parent_ip,
			       struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	struct pt_regs *regs = ftrace_get_regs(fregs);
	enum ft_replay_act act = FT_RP_KVM;
	struct kvm_vcpu *vcpu;
	struct ft_vm *ft;

	if (!regs)
		return;
	switch (regs->si) {
	case SVM_EXIT_RDTSC:
	case SVM_EXIT_IOIO:
	case SVM_EXIT_CPUID:
	case SVM_EXIT_MSR:
	case SVM_EXIT_HLT:
	case SVM_EXIT_NPF:
	case SVM_EXIT_EXCP_BASE + DB_VECTOR:
		break;
	default:
		return;
	}
	vcpu = (struct kvm_vcpu *)regs->di;
	/* ftrace already runs us preempt-disabled; make it explicit (RCU). */
	preempt_disable_notrace();
	if (!is_guest_mode(vcpu) && abandon_ip && (ft = ft_replay_target(vcpu))) {
		if (regs->si == SVM_EXIT_EXCP_BASE + DB_VECTOR)
			act = ft_pos_db(ft, vcpu);	/* a POSITION's breakpoint? */
		else
			act = ft_replay_exit(ft, vcpu, regs->si);
		/*
		 * As io_interception(): the CPU gives the next RIP of an IOIO
		 * exit, so the skip needs no instruction decode (svm->next_rip
		 * is cleared at every exit).
		 */
		if (act == FT_RP_SKIP && regs->si == SVM_EXIT_IOIO)
			to_svm(vcpu)->next_rip = to_svm(vcpu)->vmcb->control.exit_info_2;
	}
	if (regs->si == SVM_EXIT_RDTSC && act == FT_RP_KVM) {
		emulate_rdtsc(vcpu);
		act = FT_RP_SKIP;
	}
	preempt_enable_notrace();
	if (act == FT_RP_SKIP)
		regs->ip = (unsigned long)kvm_emulate_as_nop;
	else if (act == FT_RP_ABANDON || act == FT_RP_FAULT)
		regs->ip = abandon_ip;
}

/* Replay needs the abandon target and the bus hook; record mode works without. */
int ft_svm_can_replay(void)
{
	return READ_ONCE(abandon_ip) && !ft_iobus_arm() ? 0 : -ENODEV;
}

static struct ftrace_ops rdtsc_ops = {
	.func = rdtsc_hook,
	.flags = FTRACE_OPS_FL_SAVE_REGS | FTRACE_OPS_FL_IPMODIFY |
		 FTRACE_OPS_FL_RECURSION,
};

/*
 * Arm the RDTSC hook on first attach. The caller holds a VM reference, which
 * pins the vendor module, so reading kvm_chardev_ops.owner cannot race with
 * its unload; we then pin it ourselves until module exit.
 */
int ft_svm_arm(void)
{
	const struct file_operations *chardev;
	struct module *owner;
	unsigned long ip;
	int r;

	mutex_lock(&arm_lock);
	if (vendor_mod) {
		mutex_unlock(&arm_lock);
		return 0;
	}
	r = -ENODEV;
	chardev = (const void *)ft_lookup_symbol("kvm_chardev_ops");
	owner = chardev ? chardev->owner : NULL;
	if (!owner || strcmp(owner->name, "kvm_amd")) {
		pr_info("KVM vendor module is %s: only kvm_amd (SVM) is supported\n",
			owner ? owner->name : "missing");
		goto out;
	}
	ip = ft_lookup_symbol("svm_invoke_exit_handler");
	if (!ip || !try_module_get(owner))
		goto out;
	r = ftrace_set_filter_ip(&rdtsc_ops, ip, 0, 0);
	if (!r) {
		r = register_ftrace_function(&rdtsc_ops);
		if (r)
			ftrace_set_filter_ip(&rdtsc_ops, ip, 1, 0);
	}
	if (r) {
		pr_warn("cannot hook svm_invoke_exit_handler: %d\n", r);
		module_put(owner);
		r = -ENODEV;
		goto out;
	}
	exit_handler_ip = ip;
	vendor_mod = owner;
	/* After VMRUN, interrupts off: see host_dr7_off(). Not fatal. */
	ip = ft_lookup_symbol("kvm_load_host_xsave_state");
	if (ip && !ftrace_set_filter_ip(&dr7_ops, ip, 0, 0)) {
		if (!register_ftrace_function(&dr7_ops))
			WRITE_ONCE(host_xsave_ip, ip);
		else
			ftrace_set_filter_ip(&dr7_ops, ip, 1, 0);
	}
	if (!host_xsave_ip)
		pr_info("kvm_load_host_xsave_state not hooked: POSITION breakpoints need a CPU that loads DR7 at VMRUN\n");
	/* Only the function of that name in kvm_amd's own text will do. */
	ip = ft_lookup_symbol("nmi_interception");
	if (ip && within_module_core(ip, owner))
		WRITE_ONCE(abandon_ip, ip);
	else
		pr_info("nmi_interception not found in kvm_amd: replay unavailable\n");
out:
	mutex_unlock(&arm_lock);
	return r;
}

int ft_svm_init(void)
{
	if (!boot_cpu_has(X86_FEATURE_SVM)) {
		pr_info("this host has no AMD SVM; kvm_ft supports only SVM\n");
		return -ENODEV;
	}
	return 0;
}

void ft_svm_uninit(void)
{
	if (!vendor_mod)
		return;
	ft_iobus_uninit();
	/* Waits (RCU tasks) until no CPU can be inside rdtsc_hook. */
	unregister_ftrace_function(&rdtsc_ops);
	ftrace_set_filter_ip(&rdtsc_ops, exit_handler_ip, 1, 0);
	if (host_xsave_ip) {
		unregister_ftrace_function(&dr7_ops);
		ftrace_set_filter_ip(&dr7_ops, host_xsave_ip, 1, 0);
		host_xsave_ip = 0;
	}
	module_put(vendor_mod);
	vendor_mod = NULL;
	abandon_ip = 0;
}
