// SPDX-License-Identifier: GPL-2.0
/*
 * Replay of emulated accesses: MMIO and string PIO (INS/OUTS, REP or not).
 *
 * KVM 6.1 emulates both (x86 emulator). An MMIO access is an NPF exit whose
 * emulation calls vcpu_mmio_read/write(): the in-kernel LAPIC, then
 * kvm_io_bus_read/write(KVM_MMIO_BUS) per piece of at most 8 bytes, and
 * only if no device claims it an exit to user space (KVM_EXIT_MMIO). A
 * string PIO is an IOIO exit whose emulation calls
 * kvm_io_bus_read/write(KVM_PIO_BUS) per element of a chunk (INS: at most
 * 1024 bytes within one page; OUTS: one element), then, if no device
 * claimed the first, exits with KVM_EXIT_IO. The recorder logs one record
 * per MMIO access and one per chunk (kvm_mmio and kvm_pio events).
 *
 * On a replaying vCPU an ftrace hook on kvm_io_bus_read/write answers each
 * such access from the log, so neither a device nor user space sees it:
 *   MMIO read   takes an MMIO_READ record, checks RIP, gpa and length; the
 *               guest reads its data
 *   MMIO write  takes an MMIO_WRITE record, checks RIP, gpa, length, data;
 *               dropped, or with KVM_FT_ATTACH_F_REPLAY_OUTPUTS passed on
 *               to KVM (device, or KVM_EXIT_MMIO to the VMM)
 *   INS         the chunk's first element takes a PIO_IN record (RIP,
 *               port, size), each element gets its data; the kvm_pio event
 *               after the chunk checks the count
 *   OUTS        the kvm_pio event before the chunk takes a PIO_OUT record
 *               and checks port, size, count and data; the elements are
 *               dropped, or with REPLAY_OUTPUTS passed on
 * "Answered" means the saved IP becomes __static_call_return0() (kernel
 * text, returns 0 = handled), as svm.c redirects exit handlers.
 *
 * The emulation cannot wait for records. So the exit hook abandons an NPF
 * exit to a gpa outside usable memslots, or a string IOIO exit, until
 * ft_ring_emul_ready() says all of the exit's records are published; the
 * vCPU waits and re-executes the instruction, as for any exit.
 *
 * The in-kernel LAPIC is not replayed: an access it claims is UNSUPPORTED.
 * Everything here runs on the vCPU thread with preemption disabled.
 */
#include <linux/ftrace.h>
#include <linux/kvm_host.h>
#include <linux/static_call.h>
#include <asm/svm.h>
#include <trace/events/kvm.h>
#include "kvm_cache_regs.h"
#include "kvm_emulate.h"	/* arch/x86/kvm: struct x86_emulate_ctxt */
#include "ft.h"

static_assert(SVM_EXIT_NPF == 0x400);

static DEFINE_MUTEX(arm_lock);
static bool armed;
static unsigned long read_ip;	/* kvm_io_bus_read: in kvm.ko, not exported */

/* Take a record for an emulated access; the exit's first may be a digest point. */
static struct kvm_ft_rec *take(struct ft_vm *ft, struct kvm_vcpu *vcpu,
			       const struct kvm_ft_div_event *act, u64 *pos)
{
	bool point = ft->em_point;
	struct kvm_ft_rec *h = ft_replay_take(ft, vcpu, act, pos);

	if (IS_ERR(h)) {
		/* The exit hook saw the exit's records published: not ours. */
		if (PTR_ERR(h) == -EAGAIN)
			ft_replay_unsupported(ft, act->type, act->addr, act->size);
		return h;
	}
	ft->em_point = false;
	if (point) {
		ft_digest_replayed(ft, vcpu, h);
	} else if (h->flags & KVM_FT_RF_MEM_DIGEST) {
		/* The recorder announces memory digests at digest points only. */
		struct kvm_ft_div_event exp = { .type = h->type };

		ft_replay_fail(ft, KVM_FT_ERR_BAD_RECORD, KVM_FT_DIV_FORMAT, *pos,
			       h, &exp, act);
		return ERR_PTR(-EIO);
	}
	return h;
}

static void event(struct kvm_ft_div_event *act, struct kvm_vcpu *vcpu, u32 type,
		  u64 addr, u32 size, const void *data, u32 data_len)
{
	memset(act, 0, sizeof(*act));
	act->type = type;
	act->rip = kvm_rip_read(vcpu);
	act->addr = addr;
	act->size = size;
	if (data)
		memcpy(&act->value, data, min_t(u32, data_len, sizeof(act->value)));
}

/*
 * The next record for an MMIO access described by act (gpa in addr, len in
 * size), checked for address and size; NULL once the VM is stopped.
 */
static const struct kvm_ft_rec_mmio *take_mmio(struct ft_vm *ft, struct kvm_vcpu *vcpu,
						const struct kvm_ft_div_event *act,
						u64 *pos, struct kvm_ft_rec **h)
{
	const struct kvm_ft_rec_mmio *m;

	*h = take(ft, vcpu, act, pos);
	if (IS_ERR(*h))
		return NULL;
	m = (const void *)*h;
	if (m->gpa != act->addr) {
		ft_replay_diverge(ft, KVM_FT_DIV_ADDR, *pos, *h, act);
		return NULL;
	}
	if (m->len != act->size) {
		ft_replay_diverge(ft, KVM_FT_DIV_SIZE, *pos, *h, act);
		return NULL;
	}
	return m;
}

/*
 * The next record for a string PIO run described by act (port in addr,
 * element size in size), checked for port and size, and for count unless
 * it is negative (an INS run's length is known only at its end); NULL once
 * the VM is stopped.
 */
static const struct kvm_ft_rec_pio *take_pio(struct ft_vm *ft, struct kvm_vcpu *vcpu,
					     const struct kvm_ft_div_event *act, s64 count,
					     u64 *pos, struct kvm_ft_rec **h)
{
	const struct kvm_ft_rec_pio *p;

	*h = take(ft, vcpu, act, pos);
	if (IS_ERR(*h))
		return NULL;
	p = (const void *)*h;
	if (p->port != act->addr) {
		ft_replay_diverge(ft, KVM_FT_DIV_ADDR, *pos, *h, act);
		return NULL;
	}
	if (p->size != act->size || (count >= 0 && p->count != count)) {
		ft_replay_diverge(ft, KVM_FT_DIV_SIZE, *pos, *h, act);
		return NULL;
	}
	return p;
}

static void mmio_read(struct ft_vm *ft, struct kvm_vcpu *vcpu, u64 gpa, int len,
		      void *val)
{
	const struct kvm_ft_rec_mmio *m;
	struct kvm_ft_div_event act;
	struct kvm_ft_rec *h;
	u64 pos;

	event(&act, vcpu, KVM_FT_REC_MMIO_READ, gpa, len, NULL, 0);
	memset(val, 0, len);		/* what a stopped VM reads */
	m = take_mmio(ft, vcpu, &act, &pos, &h);
	if (!m)
		return;
	memcpy(val, m->data, len);
	ft_replay_landmark(ft);
}

/* Returns true if the write is dropped, false if KVM emits it. */
static bool mmio_write(struct ft_vm *ft, struct kvm_vcpu *vcpu, u64 gpa, int len,
		       const void *val)
{
	const struct kvm_ft_rec_mmio *m;
	struct kvm_ft_div_event act;
	struct kvm_ft_rec *h;
	u64 pos;

	event(&act, vcpu, KVM_FT_REC_MMIO_WRITE, gpa, len, val, len);
	m = take_mmio(ft, vcpu, &act, &pos, &h);
	if (!m)
		return true;
	if (memcmp(m->data, val, len)) {
		ft_replay_diverge(ft, KVM_FT_DIV_DATA, pos, h, &act);
		return true;
	}
	ft_replay_landmark(ft);
	return !(ft->info_flags & KVM_FT_INFO_F_REPLAY_OUTPUTS);
}

/* One element of an INS chunk. */
static void pio_in(struct ft_vm *ft, struct kvm_vcpu *vcpu, u16 port, int len,
		   void *val)
{
	const struct kvm_ft_rec_pio *p = ft->rbuf;
	struct kvm_ft_div_event act;
	struct kvm_ft_rec *h;
	u64 pos;

	event(&act, vcpu, KVM_FT_REC_PIO_IN, port, len, NULL, 0);
	memset(val, 0, len);
	if (!ft->em_str) {	/* an IN emulated elsewhere: no record for it */
		ft_replay_unsupported(ft, KVM_FT_REC_PIO_IN, port, len);
		return;
	}
	if (!ft->em_in_open) {
		if (!take_pio(ft, vcpu, &act, -1, &pos, &h))
			return;
		ft->em_in_open = true;
		ft->em_in_done = 0;
		ft->em_in_pos = pos;
		ft_replay_landmark(ft);
	}
	if (ft->em_in_done >= p->count) {	/* more elements than logged */
		ft->em_in_open = false;
		act.value = ft->em_in_done + 1;
		ft_replay_diverge(ft, KVM_FT_DIV_SIZE, ft->em_in_pos, ft->rbuf, &act);
		return;
	}
	memcpy(val, p->data + (size_t)ft->em_in_done * len, len);
	ft->em_in_done++;
}

/*
 * kvm_pio event of a replaying vCPU: after an INS chunk's element reads,
 * before an OUTS chunk's element writes (emulator_pio_in/out()). A
 * non-string OUT with REPLAY_OUTPUTS fires it too; it was checked at its exit.
 */
void ft_iobus_pio_trace(struct ft_vm *ft, struct kvm_vcpu *vcpu, unsigned int rw,
			unsigned int port, unsigned int size, unsigned int count,
			const void *val)
{
	const struct kvm_ft_rec_pio *p = ft->rbuf;
	u64 bytes = (u64)size * count;
	struct kvm_ft_div_event act;
	struct kvm_ft_rec *h;
	u64 pos;

	if (!ft->em_str || ft_ring_error(&ft->ring))
		return;
	if (!rw) {			/* IN (KVM_PIO_IN in trace.h) */
		if (!ft->em_in_open)
			return;
		ft->em_in_open = false;
		if (p->count != count || ft->em_in_done != count) {
			event(&act, vcpu, KVM_FT_REC_PIO_IN, port, size, NULL, 0);
			act.value = count;
			ft_replay_diverge(ft, KVM_FT_DIV_SIZE, ft->em_in_pos, ft->rbuf, &act);
		}
		return;
	}
	event(&act, vcpu, KVM_FT_REC_PIO_OUT, port, size, val, bytes);
	ft->em_out_left = count;	/* dropped if anything fails */
	if (!take_pio(ft, vcpu, &act, count, &pos, &h))
		return;
	if (!val || memcmp(p->data, val, bytes)) {
		ft_replay_diverge(ft, KVM_FT_DIV_DATA, pos, h, &act);
		return;
	}
	ft_replay_landmark(ft);
}

/* An in-kernel device on the PIO bus claims [port, port + len) (kvm_io_bus_cmp()). */
static bool pio_dev(struct kvm_vcpu *vcpu, u16 port, int len)
{
	struct kvm_io_bus *bus = kvm_get_bus(vcpu->kvm, KVM_PIO_BUS);
	int i;

	for (i = 0; bus && i < bus->dev_count; i++) {
		const struct kvm_io_range *r = &bus->range[i];

		if (port >= r->addr &&
		    (!r->len || port + len <= r->addr + r->len))
			return true;
	}
	return false;
}

/*
 * One element of an OUTS chunk; true if dropped. Where the primary's
 * element went to user space, its REP OUTS re-entered the guest after that
 * element (the guest re-executes it: a new exit, where interrupts can be
 * delivered), while a dropped element lets the emulator go on with the
 * next one. A read-ahead cache that looks used up (emulate.c: "re-enter
 * guest when pio read ahead buffer is empty"; OUTS does not use it, and
 * the next decode clears it) makes the emulator end this exit the same way.
 */
static bool pio_out(struct ft_vm *ft, struct kvm_vcpu *vcpu, u16 port, int len)
{
	bool emit = ft->info_flags & KVM_FT_INFO_F_REPLAY_OUTPUTS;

	if (!ft->em_str) {
		/* A non-string OUT reaches the bus only if its exit passed it on. */
		if (!emit)
			ft_replay_unsupported(ft, KVM_FT_REC_PIO_OUT, port, len);
		return !emit;
	}
	if (!ft->em_out_left) {		/* not announced by the kvm_pio event */
		ft_replay_unsupported(ft, KVM_FT_REC_PIO_OUT, port, len);
		return true;
	}
	ft->em_out_left--;
	if (!emit && !pio_dev(vcpu, port, len)) {
		struct x86_emulate_ctxt *ctxt = vcpu->arch.emulate_ctxt;

		ctxt->io_read.pos = ctxt->io_read.end = 1;
	}
	return !emit;
}

/* Returns true if the access was answered (the bus function must return 0). */
static bool replay_access(struct ft_vm *ft, struct kvm_vcpu *vcpu, bool write,
			  bool mmio, u64 addr, int len, void *val)
{
	if (len < 1 || len > 8 || !val) {	/* not from the emulator */
		ft_replay_unsupported(ft, mmio ? (write ? KVM_FT_REC_MMIO_WRITE :
					   KVM_FT_REC_MMIO_READ) :
				      (write ? KVM_FT_REC_PIO_OUT : KVM_FT_REC_PIO_IN),
				      addr, len);
		return true;
	}
	if (mmio && !write)
		ft->em_mmio_read = true;	/* for the kvm_mmio event that follows */
	if (ft_ring_error(&ft->ring)) {		/* stopping: nothing reaches a device */
		if (!write)
			memset(val, 0, len);
		return true;
	}
	if (mmio && write)
		return mmio_write(ft, vcpu, addr, len, val);
	if (mmio) {
		mmio_read(ft, vcpu, addr, len, val);
		return true;
	}
	if (write)
		return pio_out(ft, vcpu, addr, len);
	pio_in(ft, vcpu, addr, len, val);
	return true;
}

/*
 * int kvm_io_bus_read(struct kvm_vcpu *vcpu, enum kvm_bus bus_idx, gpa_t addr,
 *                     int len, void *val), and kvm_io_bus_write() with the
 * same arguments (val const).
 */
static void notrace bus_hook(struct ftrace_regs *fregs, bool write)
{
	struct pt_regs *regs = ftrace_get_regs(fregs);
	struct kvm_vcpu *vcpu;
	bool done = false;
	struct ft_vm *ft;

	if (!regs)
		return;
	vcpu = (struct kvm_vcpu *)regs->di;
	if (!vcpu || (regs->si != KVM_MMIO_BUS && regs->si != KVM_PIO_BUS))
		return;
	preempt_disable_notrace();
	if (!is_guest_mode(vcpu) && (ft = ft_replay_target(vcpu)))
		done = replay_access(ft, vcpu, write, regs->si == KVM_MMIO_BUS,
				     regs->dx, (int)regs->cx, (void *)regs->r8);
	preempt_enable_notrace();
	if (done)
		regs->ip = (unsigned long)__static_call_return0;
}

static void notrace read_hook(unsigned long ip, unsigned long parent_ip,
			      struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	bus_hook(fregs, false);
}

static void notrace write_hook(unsigned long ip, unsigned long parent_ip,
			       struct ftrace_ops *op, struct ftrace_regs *fregs)
{
	bus_hook(fregs, true);
}

static struct ftrace_ops read_ops = {
	.func = read_hook,
	.flags = FTRACE_OPS_FL_SAVE_REGS | FTRACE_OPS_FL_IPMODIFY |
		 FTRACE_OPS_FL_RECURSION,
};

static struct ftrace_ops write_ops = {
	.func = write_hook,
	.flags = FTRACE_OPS_FL_SAVE_REGS | FTRACE_OPS_FL_IPMODIFY |
		 FTRACE_OPS_FL_RECURSION,
};

static int hook(struct ftrace_ops *ops, unsigned long ip)
{
	int r = ftrace_set_filter_ip(ops, ip, 0, 0);

	if (r)
		return r;
	r = register_ftrace_function(ops);
	if (r)
		ftrace_set_filter_ip(ops, ip, 1, 0);
	return r;
}

static void unhook(struct ftrace_ops *ops, unsigned long ip)
{
	/* Waits (RCU tasks) until no CPU can be inside the callback. */
	unregister_ftrace_function(ops);
	ftrace_set_filter_ip(ops, ip, 1, 0);
}

/* Called at every attach (svm.c); kvm.ko is pinned by symbol linkage. */
int ft_iobus_arm(void)
{
	int r = 0;

	mutex_lock(&arm_lock);
	if (armed)
		goto out;
	r = -ENODEV;
	read_ip = ft_lookup_symbol("kvm_io_bus_read");
	if (!read_ip)
		goto out;
	r = hook(&read_ops, read_ip);
	if (r)
		goto out;
	r = hook(&write_ops, (unsigned long)kvm_io_bus_write);
	if (r) {
		unhook(&read_ops, read_ip);
		goto out;
	}
	armed = true;
out:
	mutex_unlock(&arm_lock);
	if (r)
		pr_info("cannot hook kvm_io_bus_read/write: %d; replay unavailable\n", r);
	return r;
}

void ft_iobus_uninit(void)
{
	if (!armed)
		return;
	unhook(&write_ops, (unsigned long)kvm_io_bus_write);
	unhook(&read_ops, read_ip);
	armed = false;
}

/*
 * Exit hook of a replaying vCPU (svm.c -> ft_replay_exit()): an NPF exit,
 * or an IOIO exit of a string instruction. Let KVM emulate it once every
 * record it will take is published, else wait and re-execute.
 */
enum ft_replay_act ft_iobus_exit(struct ft_vm *ft, struct kvm_vcpu *vcpu,
				 u64 exit_code)
{
	struct kvm_memory_slot *slot;
	u64 seen;

	if (exit_code == SVM_EXIT_NPF) {
		/* kvm->srcu is held around the exit handler (vcpu_enter_guest()). */
		slot = __gfn_to_memslot(kvm_vcpu_memslots(vcpu),
					gpa_to_gfn(ft_svm_exit_info(vcpu, 2)));
		if (slot && !(slot->flags & (KVM_MEMSLOT_INVALID | KVM_MEM_READONLY)))
			return FT_RP_KVM;	/* guest memory: nothing to replay */
	}
	if (!ft_ring_emul_ready(&ft->ring, kvm_rip_read(vcpu), &seen)) {
		ft_replay_queue_wait(ft, seen);
		return FT_RP_ABANDON;
	}
	if (exit_code != SVM_EXIT_NPF) {
		ft->em_str = true;
		ft->em_point = true;	/* an IOIO exit, as digest.c counts them */
	}
	return FT_RP_KVM;
}

/* kvm_entry probe: an emulated exit's state ends with it. */
void ft_iobus_entry(struct ft_vm *ft)
{
	ft->em_str = false;
	ft->em_point = false;
	ft->em_in_open = false;
	ft->em_mmio_read = false;
	ft->em_out_left = 0;
}

/*
 * kvm_mmio event of a replaying vCPU. A read is reported after the access:
 * if the hook did not answer it, the in-kernel LAPIC did. A write is
 * reported before it: one to the LAPIC page would never reach the hook.
 * An unsatisfied read would go to user space: never when replaying.
 */
void ft_iobus_mmio_trace(struct ft_vm *ft, struct kvm_vcpu *vcpu, int type,
			 int len, u64 gpa)
{
	bool bad;

	switch (type) {
	case KVM_TRACE_MMIO_READ:
		bad = !ft->em_mmio_read;
		ft->em_mmio_read = false;
		break;
	case KVM_TRACE_MMIO_WRITE:
		bad = vcpu->arch.apic &&
		      gpa_to_gfn(gpa) == gpa_to_gfn(vcpu->arch.apic_base &
						    MSR_IA32_APICBASE_BASE);
		break;
	default:
		bad = true;
		break;
	}
	if (bad)
		ft_replay_unsupported(ft, type == KVM_TRACE_MMIO_WRITE ?
				      KVM_FT_REC_MMIO_WRITE : KVM_FT_REC_MMIO_READ,
				      gpa, len);
}
