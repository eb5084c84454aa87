// SPDX-License-Identifier: GPL-2.0
/*
 * The vCPU thread: KVM_RUN and the guest's ports.
 *
 * On a recorded (primary) VM the module logs an exit before KVM_RUN
 * returns, so right after the OUT that completes an output, next_seq - 1
 * in the read-only producer page is the seq of that OUT's record, or of an
 * asynchronous record logged after it at the same landmark: never less,
 * and less than the seq of the next output's OUT. Holding the output until
 * that seq is acked is therefore safe, and EMITTED(that seq) names exactly
 * the outputs written so far.
 * On a replayed (backup) VM the outputs come from the replay ring
 * (replaylog.c); should the module pass a replayed OUT on, it is not
 * counted twice. The mode is read after the exit: the only transition
 * possible meanwhile is to LIVE, and an output seen in LIVE mode counts as
 * unlogged, which can only cause a harmless duplicate at go-live, never a
 * gap.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "ftvm.h"
#include "workload.h"

void ftvm_vcpu_stopped(struct ftvm *v, int code, const char *fmt, ...)
{
	uint64_t one = 1;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->stop_why, sizeof(v->stop_why), fmt, ap);
	va_end(ap);
	__atomic_store_n(&v->stop_code, code, __ATOMIC_RELEASE);
	if (write(v->out.efd, &one, sizeof(one)) < 0)
		ftvm_log("eventfd write: %s", strerror(errno));
}

/* Seq of the record of the exit just taken, or FTVM_SEQ_NONE if unlogged. */
static uint64_t exit_seq(struct ftvm *v)
{
	struct kvm_ft_info info;

	if (v->ft_fd < 0)
		return FTVM_SEQ_NONE;
	if (ioctl(v->ft_fd, KVM_FT_GET_INFO, &info) || info.mode != v->ft_mode)
		return FTVM_SEQ_NONE;
	return __atomic_load_n(v->ft_next_seq, __ATOMIC_ACQUIRE) - 1;
}

/* 0 to go on, else the VM stopped (ftvm_vcpu_stopped called). */
static int handle_io(struct ftvm *v)
{
	struct kvm_run *run = v->vm->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	uint16_t port = run->io.port;
	uint32_t val = 0;

	if (run->io.direction == KVM_EXIT_IO_IN) {
		if (port != RANDOM_PORT || run->io.count != 1)
			goto bad;
		kt_fill_random(&v->rng, data, run->io.size);
		v->pio_in++;
		return 0;
	}
	if (run->io.count != 1 || run->io.size != 4)
		goto bad;
	memcpy(&val, data, 4);
	switch (port) {
	case FTVM_OUT_LO_PORT:
		v->out_lo = val;
		return 0;
	case FTVM_OUT_HI_PORT:
		v->out_hi = val;
		return 0;
	case FTVM_OUT_N_PORT: {
		struct ftvm_output out = {
			.n = val, .hash = (uint64_t)v->out_hi << 32 | v->out_lo,
			.seq = exit_seq(v), .t_ns = ftvm_now_ns(),
		};

		/* A replayed output: the replay-ring reader has it already. */
		if (v->ft_mode == KVM_FT_MODE_REPLAY && out.seq != FTVM_SEQ_NONE)
			return 0;
		ftvm_outq_push(v, &out);
		return 0;
	}
	case UCALL_PORT: {
		struct ucall *uc = vm_gpa2hva(v->vm, val, sizeof(*uc));

		if (!uc)
			break;
		if (uc->cmd == UCALL_ASSERT) {
			const char *file = vm_gpa2hva(v->vm, (uintptr_t)uc->file, 1);
			const char *expr = vm_gpa2hva(v->vm, (uintptr_t)uc->expr, 1);

			ftvm_vcpu_stopped(v, FTVM_EXIT_VM,
					  "guest assertion failed at %.40s:%llu: %.60s (%#llx vs %#llx)",
					  file ? file : "?", (unsigned long long)uc->line,
					  expr ? expr : "?", (unsigned long long)uc->args[0],
					  (unsigned long long)uc->args[1]);
		} else if (uc->cmd == UCALL_EXCEPTION) {
			ftvm_vcpu_stopped(v, FTVM_EXIT_VM,
					  "guest exception %llu at rip %#llx, error code %#llx",
					  (unsigned long long)uc->args[0],
					  (unsigned long long)uc->args[1],
					  (unsigned long long)uc->args[2]);
		} else {
			ftvm_vcpu_stopped(v, FTVM_EXIT_VM, "guest made ucall %llu",
					  (unsigned long long)uc->cmd);
		}
		return -1;
	}
	}
bad:
	ftvm_vcpu_stopped(v, FTVM_EXIT_VM, "guest did PIO %s port %#x size %u count %u",
			  run->io.direction == KVM_EXIT_IO_IN ? "IN" : "OUT", port,
			  run->io.size, run->io.count);
	return -1;
}

/* KVM_RUN failed with EIO on an attached VM: say what the module reported. */
static void module_stopped(struct ftvm *v)
{
	struct kvm_ft_divergence d;
	uint32_t err = 0;

	if (v->ft_map)
		err = ((const struct kvm_ft_ring_producer *)v->ft_map)->error;
	if (v->ft_mode == KVM_FT_MODE_REPLAY && !ioctl(v->ft_fd, KVM_FT_GET_DIVERGENCE, &d) &&
	    d.error) {
		ftvm_vcpu_stopped(v, FTVM_EXIT_VM,
				  "replay stopped: error %u reason %u at seq %llu landmark %llu: "
				  "expected type %u rip %#llx addr %#llx, got type %u rip %#llx addr %#llx",
				  d.error, d.reason, (unsigned long long)d.seq,
				  (unsigned long long)d.landmark, d.expected.type,
				  (unsigned long long)d.expected.rip,
				  (unsigned long long)d.expected.addr, d.actual.type,
				  (unsigned long long)d.actual.rip, (unsigned long long)d.actual.addr);
		return;
	}
	ftvm_vcpu_stopped(v, FTVM_EXIT_VM, "the module stopped the VM (KVM_RUN: EIO, ring error %u)",
			  err);
}

/* ---- planned failover: parking the vCPU at a landmark ---- */

void ftvm_vcpu_pause(struct ftvm *v)
{
	pthread_mutex_lock(&v->pause_lock);
	v->pause_req = true;
	pthread_mutex_unlock(&v->pause_lock);
	/* The backup's vCPU waits for its next record inside KVM_RUN. */
	if (v->ft_mode == KVM_FT_MODE_REPLAY)
		vm_kick(v->vm);
}

bool ftvm_vcpu_paused(struct ftvm *v)
{
	bool p;

	pthread_mutex_lock(&v->pause_lock);
	p = v->paused;
	pthread_mutex_unlock(&v->pause_lock);
	return p;
}

void ftvm_vcpu_resume(struct ftvm *v)
{
	pthread_mutex_lock(&v->pause_lock);
	v->pause_req = false;
	pthread_cond_broadcast(&v->pause_cond);
	pthread_mutex_unlock(&v->pause_lock);
}

static bool pause_requested(struct ftvm *v)
{
	bool p;

	pthread_mutex_lock(&v->pause_lock);
	p = v->pause_req;
	pthread_mutex_unlock(&v->pause_lock);
	return p;
}

/* Stay out of KVM_RUN until the control thread resumes us; it may swap the attachment. */
static void park(struct ftvm *v)
{
	uint64_t one = 1;

	pthread_mutex_lock(&v->pause_lock);
	v->paused = true;
	if (write(v->out.efd, &one, sizeof(one)) < 0)
		ftvm_log("eventfd write: %s", strerror(errno));
	while (v->pause_req)
		pthread_cond_wait(&v->pause_cond, &v->pause_lock);
	v->paused = false;
	pthread_mutex_unlock(&v->pause_lock);
}

/*
 * Primary, right after a PIO exit was handled (a live VM for SNAPSHOT:
 * after any exit): with the devices held and
 * the module's queue empty, complete the exit without entering the guest
 * (KVM completes a user-space PIO at the start of KVM_RUN, before it
 * looks at immediate_exit: an IN's record is appended then) and park.
 * Every record of the guest so far is in the log. 0, or -1 if the VM
 * stopped.
 */
static int pause_primary(struct ftvm *v)
{
	struct kvm_run *run = v->vm->run;
	struct kvm_ft_stats st;
	int e;

	if (ioctl(v->ft_fd, KVM_FT_GET_STATS, &st)) {
		ftvm_log("KVM_FT_GET_STATS: %s", strerror(errno));
		return 0;
	}
	if (st.async_pending)
		return 0;	/* the next landmarks drain it */
	run->immediate_exit = 1;
	e = ioctl(v->vm->vcpu_fd, KVM_RUN, 0) < 0 ? errno : 0;
	run->immediate_exit = 0;
	if (e != EINTR) {
		if (e == EIO)
			module_stopped(v);
		else
			ftvm_vcpu_stopped(v, FTVM_EXIT_VM, "KVM_RUN with immediate_exit: %s",
					  e ? strerror(e) : "entered the guest");
		return -1;
	}
	park(v);
	return 0;
}

static void *vcpu_main(void *arg)
{
	struct ftvm *v = arg;
	struct kvm_run *run = v->vm->run;

	vcpu_thread_bind(v->vm);
	for (;;) {
		if (__atomic_load_n(&v->stop_code, __ATOMIC_ACQUIRE) >= 0)
			return NULL;
		if (v->standalone)
			ftvm_local_apply(v);
		if (ioctl(v->vm->vcpu_fd, KVM_RUN, 0) < 0) {
			int e = errno;

			run->immediate_exit = 0;
			if (e == EINTR || e == EAGAIN) {
				v->eintr++;
				if (!pause_requested(v))
					continue;
				/* A live VM stops for a snapshot as the primary does. */
				if (v->state == FTVM_LIVE) {
					if (pause_primary(v))
						return NULL;
				} else if (v->ft_mode == KVM_FT_MODE_REPLAY) {
					/* The backup is kicked once it replayed the pause point. */
					park(v);
				}
				continue;
			}
			if (e == EIO && v->ft_fd >= 0)
				module_stopped(v);
			else
				ftvm_vcpu_stopped(v, FTVM_EXIT_VM, "KVM_RUN: %s", strerror(e));
			return NULL;
		}
		v->exits++;
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			if (handle_io(v))
				return NULL;
			if (v->ft_mode == KVM_FT_MODE_RECORD && v->state == FTVM_PRIMARY &&
			    pause_requested(v) && pause_primary(v))
				return NULL;
			break;
		case KVM_EXIT_IRQ_WINDOW_OPEN:
		case KVM_EXIT_INTR:
			break;
		case KVM_EXIT_SHUTDOWN:
			ftvm_vcpu_stopped(v, FTVM_EXIT_VM, "guest shutdown (triple fault) at rip %#llx",
					  (unsigned long long)vcpu_rip(v->vm));
			return NULL;
		default:
			ftvm_vcpu_stopped(v, FTVM_EXIT_VM, "unexpected exit reason %u at rip %#llx",
					  run->exit_reason, (unsigned long long)vcpu_rip(v->vm));
			return NULL;
		}
		/* SNAPSHOT of a live VM: after any complete exit (pause_primary()). */
		if (v->state == FTVM_LIVE && pause_requested(v) && pause_primary(v))
			return NULL;
	}
}

int ftvm_vcpu_start(struct ftvm *v)
{
	int r = pthread_create(&v->vcpu_tid, NULL, vcpu_main, v);

	/*
	 * vm_kick() signals vm->vcpu_thread, which the thread itself sets
	 * when it starts: until then it is 0, and pthread_kill(0) crashes.
	 * Set it here, before any device can kick.
	 */
	if (!r)
		v->vm->vcpu_thread = v->vcpu_tid;
	return -r;
}
