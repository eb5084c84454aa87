// SPDX-License-Identifier: GPL-2.0
/*
 * Lifetimes: detaching while the vCPU runs, closing the VM before the ft
 * fd, switching to LIVE, and VMs that were never attached keep working
 * (the module must not change what it does not own).
 */
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <time.h>

#include "ft_test.h"

static volatile uint64_t guest_stop;

extern char lc_rdtsc[];

/* RDTSC in a loop with a ucall every 200 iterations, until the host says stop. */
static void guest_until_stop(void *arg)
{
	uint64_t last = 0, iter = 0;
	uint32_t lo, hi;

	(void)arg;
	while (!guest_stop) {
		for (int i = 0; i < 200; i++) {
			uint64_t t;

			__asm__ volatile("lc_rdtsc: rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
			t = (uint64_t)hi << 32 | lo;
			GUEST_ASSERT(t >= last);
			last = t;
		}
		GUEST_SYNC(++iter, last);
	}
}

struct vcpu_ctl {
	struct kvm_vm *vm;
	volatile bool stop;
	uint64_t syncs;
	uint64_t syncs_at_detach;
	volatile bool detached;
};

static void *vcpu_fn(void *p)
{
	struct vcpu_ctl *c = p;
	struct ucall uc;

	for (;;) {
		uint64_t cmd = vcpu_run(c->vm, &uc);

		if (cmd == UCALL_DONE)
			break;
		c->syncs++;
		if (c->detached && !c->syncs_at_detach)
			c->syncs_at_detach = c->syncs;
		if (c->stop)
			VM_SET_GLOBAL(c->vm, guest_stop, 1);
	}
	return NULL;
}

/*
 * Proves: KVM_FT_DETACH while the vCPU runs stops recording at once: POLLHUP,
 * producer flag DETACHED, info flag DETACHED, the producer position never
 * moves again although the guest keeps exiting (ucalls) and keeps reading a
 * monotonic TSC; all records before the detach are intact and gapless and
 * the ring stays readable.
 */
TEST(detach_while_running)
{
	struct ft_vm f;
	struct vcpu_ctl c = { 0 };
	struct recs rs = { 0 };
	struct pollfd pfd;
	struct kvm_ft_info info;
	pthread_t th;
	uint64_t prod;

	ft_vm_setup(&f, NULL, guest_until_stop, NULL, 0);
	c.vm = f.vm;
	ASSERT_EQ(0, pthread_create(&th, NULL, vcpu_fn, &c));
	/* Let it record a while, draining the ring. */
	while (ft_ring_producer(&f.ring) < 64 * 1024)
		ft_drain(&f.ring, &rs), usleep(10000);
	ASSERT_EQ(0, ioctl(f.ft_fd, KVM_FT_DETACH));
	c.detached = true;
	pfd = (struct pollfd){ .fd = f.ft_fd, .events = POLLIN };
	ASSERT_EQ(1, poll(&pfd, 1, 5000));
	ASSERT_EQ(POLLHUP, pfd.revents & POLLHUP);
	ASSERT_EQ(KVM_FT_RING_F_DETACHED, f.ring.prod->flags & KVM_FT_RING_F_DETACHED);
	ASSERT_EQ(0, ioctl(f.ft_fd, KVM_FT_GET_INFO, &info));
	ASSERT_EQ(KVM_FT_INFO_F_DETACHED, info.flags & KVM_FT_INFO_F_DETACHED);
	/* The final records, then nothing more while the guest goes on. */
	usleep(200000);
	prod = ft_ring_producer(&f.ring);
	ft_drain(&f.ring, &rs);
	{
		uint64_t s0 = c.syncs;

		for (int i = 0; i < 500 && c.syncs < s0 + 20; i++)
			usleep(10000);
		ASSERT_LE(s0 + 20, c.syncs) TH_LOG("the guest stopped making progress after detach");
	}
	ASSERT_EQ(prod, ft_ring_producer(&f.ring));
	ASSERT_EQ(0, ft_drain(&f.ring, NULL));
	c.stop = true;
	ASSERT_EQ(0, pthread_join(th, NULL));
	ASSERT_EQ(prod, ft_ring_producer(&f.ring));
	ASSERT_LT(1000, rs.n);
	ASSERT_EQ(NULL, recs_check_seq(&rs, 1, 0));
	ASSERT_EQ(rs.n + 1, f.ring.prod->next_seq);
	for (size_t i = 0; i < rs.n; i++) {
		const struct kvm_ft_rec *r = recs_at(&rs, i);

		ASSERT_TRUE(r->type == KVM_FT_REC_RDTSC || r->type == KVM_FT_REC_PIO_OUT);
		if (r->type == KVM_FT_REC_RDTSC)
			ASSERT_EQ((uintptr_t)lc_rdtsc, ((const struct kvm_ft_rec_tsc *)r)->rip);
	}
	recs_free(&rs);
	ft_vm_teardown(&f);
}

/*
 * Proves: RECORD -> LIVE stops logging while the ring stays attached: the
 * guest keeps running and no record is appended after the switch.
 */
TEST(set_mode_live_stops_logging)
{
	struct ft_vm f;
	struct ucall uc;
	uint64_t prod;

	ft_vm_setup(&f, NULL, guest_until_stop, NULL, 0);
	vcpu_run_expect(f.vm, UCALL_SYNC, &uc);
	ASSERT_EQ(201, ft_drain(&f.ring, NULL));
	ASSERT_EQ(0, ioctl(f.ft_fd, KVM_FT_SET_MODE, KVM_FT_MODE_LIVE));
	prod = ft_ring_producer(&f.ring);
	for (int i = 0; i < 10; i++)
		vcpu_run_expect(f.vm, UCALL_SYNC, &uc);
	ASSERT_EQ(11, uc.args[0]);
	ASSERT_EQ(prod, ft_ring_producer(&f.ring));
	ft_vm_teardown(&f);
}

/*
 * Proves: closing the vCPU, VM and /dev/kvm fds before the ft fd is safe
 * (the module holds its own VM reference), poll reports POLLHUP (the VM's
 * users are gone, per the header "detached or destroyed"); the ring stays mapped and
 * readable with every record, stats still answer, then closing the ft fd
 * and unmapping release everything (the final rmmod kvm in /init checks no
 * VM leaked).
 */
TEST(close_vm_before_ft_fd)
{
	struct ft_vm f;
	struct ucall uc;
	struct kvm_ft_stats st;
	struct recs rs = { 0 };
	struct pollfd pfd;

	ft_vm_setup(&f, NULL, guest_until_stop, NULL, 0);
	vcpu_run_expect(f.vm, UCALL_SYNC, &uc);
	vm_free(f.vm);
	f.vm = NULL;
	/* The VM's users are gone: POLLHUP (after a short while at most). */
	pfd = (struct pollfd){ .fd = f.ft_fd, .events = POLLIN };
	for (int i = 0; i < 100 && !(pfd.revents & POLLHUP); i++) {
		ASSERT_LE(0, poll(&pfd, 1, 0));
		if (!(pfd.revents & POLLHUP))
			usleep(10000);
	}
	ASSERT_EQ(POLLHUP, pfd.revents & POLLHUP);
	ASSERT_EQ(201, ft_drain(&f.ring, &rs));
	ASSERT_EQ(NULL, recs_check_seq(&rs, 1, 0));
	ft_stats(f.ft_fd, &st);
	ASSERT_EQ(201, st.records);
	/* Close the ft fd while still mapped, then unmap. */
	close(f.ft_fd);
	f.ft_fd = -1;
	ASSERT_EQ(KVM_FT_RING_MAGIC, f.ring.prod->magic);
	ft_vm_teardown(&f);
	recs_free(&rs);
}

static void guest_plain(void *arg)
{
	uint64_t t0, t1, m;
	uint32_t r[4];

	(void)arg;
	t0 = rdtsc();
	cpuid(0, 0, r);
	m = rdmsr(MSR_IA32_TSC);
	t1 = rdtsc();
	GUEST_ASSERT(t1 >= m);
	GUEST_ASSERT(m >= t0);
	GUEST_SYNC(t0, t1, inl(RANDOM_PORT), r[0]);
}

static void plain_vm_works(struct __test_metadata *_metadata)
{
	struct vm_opts o = { .log_io = true };
	struct kvm_vm *vm = vm_create(&o, guest_plain, NULL);
	struct ucall uc;

	vcpu_run_expect(vm, UCALL_SYNC, &uc);
	ASSERT_LT(uc.args[0], uc.args[1]);
	ASSERT_EQ((uint32_t)vm->io_log[0].data, uc.args[2]);
	ASSERT_LE(0xd, uc.args[3]);	/* max basic leaf */
	vcpu_run_expect(vm, UCALL_DONE, &uc);
	vm_free(vm);
}

/*
 * Proves: a VM that was never attached runs RDTSC/CPUID/RDMSR/PIO normally
 * while another VM is attached, and after that VM was detached and closed.
 */
TEST(unattached_vm_unaffected)
{
	struct ft_vm f;
	struct ucall uc;

	ft_vm_setup(&f, NULL, guest_until_stop, NULL, 0);
	vcpu_run_expect(f.vm, UCALL_SYNC, &uc);
	plain_vm_works(_metadata);
	ASSERT_EQ(201, ft_drain(&f.ring, NULL));	/* nothing from the other VM */
	ASSERT_EQ(0, ioctl(f.ft_fd, KVM_FT_DETACH));
	ft_vm_teardown(&f);
	plain_vm_works(_metadata);
}

/* Proves: a detached VM whose ft fd was closed can be attached again from seq 1. */
TEST(reattach_after_close)
{
	struct ft_vm f;
	struct ucall uc;
	struct ft_ring r2;
	int fd;

	ft_vm_setup(&f, NULL, guest_until_stop, NULL, 0);
	vcpu_run_expect(f.vm, UCALL_SYNC, &uc);
	ft_ring_unmap(&f.ring);
	close(f.ft_fd);
	fd = ft_attach(f.dev_fd, f.vm->vm_fd, KVM_FT_MODE_RECORD, 0, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ft_ring_map(&r2, fd));
	vcpu_run_expect(f.vm, UCALL_SYNC, &uc);
	{
		const struct kvm_ft_rec *rec = ft_ring_next(&r2);

		ASSERT_NE(NULL, rec);
		ASSERT_EQ(1, rec->seq);
		ASSERT_EQ(1, rec->landmark);
	}
	f.ring = r2;
	f.ft_fd = fd;
	ft_vm_teardown(&f);
}

static void guest_rdtsc_forever(void *arg)
{
	(void)arg;
	for (;;)
		rdtsc();
}

static int send_fd(int sock, int fd)
{
	char c = 'F';
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char c;
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &m, 0) != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&m);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/*
 * Proves: with no reader the vCPU waits for ring space (producer flag
 * WAITING, stats.ring_waits) instead of dropping records, and a fatal
 * signal ends that wait: the VMM process dies promptly (no task stuck in
 * the kernel). The ring, kept alive by an ft fd passed to this process,
 * still holds only valid, gapless records and at most data_size bytes
 * unread; its error is none or OVERRUN, never a silent loss.
 */
TEST(fatal_signal_ends_ring_wait)
{
	struct ft_ring r;
	struct kvm_ft_stats st;
	const struct kvm_ft_rec *rec;
	int sv[2], ft_fd, status;
	uint64_t seq = 1;
	pid_t pid;
	double t;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct ft_vm f;
		struct ucall uc;

		/* Never outlive the test, whatever it asserts. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(sv[0]);
		ft_vm_setup(&f, NULL, guest_rdtsc_forever, NULL, KVM_FT_RING_ORDER_MIN);
		if (send_fd(sv[1], f.ft_fd))
			_exit(2);
		vcpu_run_raw(f.vm, &uc);	/* waits for space forever */
		_exit(3);
	}
	close(sv[1]);
	ft_fd = recv_fd(sv[0]);
	ASSERT_LE(0, ft_fd);
	ASSERT_EQ(0, ft_ring_map(&r, ft_fd));
	for (int i = 0; i < 400 && !(r.prod->flags & KVM_FT_RING_F_WAITING); i++)
		usleep(25000);
	ASSERT_EQ(KVM_FT_RING_F_WAITING, r.prod->flags & KVM_FT_RING_F_WAITING);
	ASSERT_LE(r.info.data_size - KVM_FT_RING_RESERVE, ft_ring_producer(&r));
	ASSERT_GE(r.info.data_size, ft_ring_producer(&r));

	ASSERT_EQ(0, kill(pid, SIGKILL));
	t = 0;
	while (waitpid(pid, &status, WNOHANG) == 0 && t < 10) {
		usleep(20000);
		t += 0.02;
	}
	ASSERT_GT(10, t) TH_LOG("the VMM did not die within 10 s of SIGKILL");
	ASSERT_TRUE(WIFSIGNALED(status));
	ASSERT_EQ(SIGKILL, WTERMSIG(status));
	/* The wait, now over, was counted (the module may count at its end). */
	ft_stats(ft_fd, &st);
	ASSERT_LE(1, st.ring_waits);
	ASSERT_EQ(st.ring_waits, r.prod->ring_waits);
	ASSERT_EQ(0, r.prod->flags & KVM_FT_RING_F_WAITING);

	ASSERT_TRUE(r.prod->error == KVM_FT_ERR_NONE || r.prod->error == KVM_FT_ERR_OVERRUN)
		TH_LOG("error %u", r.prod->error);
	ASSERT_GE(r.info.data_size, ft_ring_producer(&r));
	while ((rec = ft_ring_next(&r))) {
		ASSERT_EQ(seq, rec->seq);
		ASSERT_EQ(KVM_FT_REC_RDTSC, rec->type);
		seq++;
	}
	ASSERT_EQ(NULL, r.error);
	ASSERT_EQ(r.prod->next_seq, seq);
	ft_ring_unmap(&r);
	close(ft_fd);
	close(sv[0]);
}

/*
 * Proves: a vCPU created after the attach stops the VM at its first run:
 * producer->error is KVM_FT_ERR_MULTI_VCPU and the original vCPU's KVM_RUN
 * fails with EIO; the records before it stay valid.
 */
TEST(second_vcpu_stops_vm)
{
	struct ft_vm f;
	struct ucall uc;
	int vcpu2;
	struct kvm_run *run2;

	ft_vm_setup(&f, NULL, guest_until_stop, NULL, 0);
	vcpu_run_expect(f.vm, UCALL_SYNC, &uc);
	ASSERT_EQ(201, ft_drain(&f.ring, NULL));
	vcpu2 = ioctl(f.vm->vm_fd, KVM_CREATE_VCPU, 1);
	ASSERT_LE(0, vcpu2);
	run2 = mmap(NULL, f.vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu2, 0);
	ASSERT_NE(MAP_FAILED, run2);
	/* The new vCPU starts at the reset vector; it must not get far. */
	errno = 0;
	ioctl(vcpu2, KVM_RUN, 0);
	ASSERT_EQ(KVM_FT_ERR_MULTI_VCPU, f.ring.prod->error)
		TH_LOG("second vCPU: errno %d, exit reason %u", errno, run2->exit_reason);
	ASSERT_EQ(-EIO, vcpu_run_raw(f.vm, &uc));
	ASSERT_EQ(0, ft_drain(&f.ring, NULL));
	munmap(run2, f.vm->run_size);
	close(vcpu2);
	ft_vm_teardown(&f);
}

FIXTURE(waiting) {
	struct ft_vm f;
	struct vcpu_ctl c;
	pthread_t th;
};

FIXTURE_VARIANT(waiting) {
	bool close_fd;	/* close the ft fd instead of KVM_FT_DETACH */
};

FIXTURE_VARIANT_ADD(waiting, detach_ioctl) { .close_fd = false };
FIXTURE_VARIANT_ADD(waiting, close_ft_fd) { .close_fd = true };

FIXTURE_SETUP(waiting)
{
	ft_vm_setup(&self->f, NULL, guest_until_stop, NULL, KVM_FT_RING_ORDER_MIN);
	self->c.vm = self->f.vm;
}

FIXTURE_TEARDOWN(waiting)
{
}

/*
 * Proves: a vCPU blocked waiting for ring space (nobody reads) is released
 * by KVM_FT_DETACH, or by closing the ft fd (the last reference detaches):
 * the guest runs on, unrecorded, and finishes normally.
 */
TEST_F_TIMEOUT(waiting, detach_releases_waiting_vcpu, 60)
{
	struct ft_ring *r = &self->f.ring;
	uint64_t s0;

	ASSERT_EQ(0, pthread_create(&self->th, NULL, vcpu_fn, &self->c));
	for (int i = 0; i < 400 && !(r->prod->flags & KVM_FT_RING_F_WAITING); i++)
		usleep(25000);
	ASSERT_EQ(KVM_FT_RING_F_WAITING, r->prod->flags & KVM_FT_RING_F_WAITING);
	usleep(100000);
	s0 = self->c.syncs;
	usleep(200000);
	ASSERT_EQ(s0, self->c.syncs);	/* really stuck */
	if (variant->close_fd) {
		ft_ring_unmap(r);
		ASSERT_EQ(0, close(self->f.ft_fd));
		self->f.ft_fd = -1;
	} else {
		ASSERT_EQ(0, ioctl(self->f.ft_fd, KVM_FT_DETACH));
	}
	for (int i = 0; i < 500 && self->c.syncs < s0 + 20; i++)
		usleep(10000);
	ASSERT_LE(s0 + 20, self->c.syncs) TH_LOG("the vCPU stayed blocked after the detach");
	self->c.stop = true;
	ASSERT_EQ(0, pthread_join(self->th, NULL));
	if (!variant->close_fd)
		ASSERT_EQ(KVM_FT_RING_F_DETACHED, r->prod->flags & KVM_FT_RING_F_DETACHED);
	ft_vm_teardown(&self->f);
}

static volatile uint64_t spin_release;

/* A few records, then a spin with no exit of its own until the host says so. */
static void guest_records_then_spin(void *arg)
{
	(void)arg;
	for (int i = 0; i < 10; i++)
		rdtsc();
	while (!spin_release)
		;
}

struct spin_vcpu {
	struct kvm_vm *vm;
	uint64_t cmd;
};

static void *spin_vcpu_fn(void *p)
{
	struct spin_vcpu *s = p;
	struct ucall uc;

	s->cmd = vcpu_run(s->vm, &uc);
	return NULL;
}

/*
 * Proves: a reader sleeping in poll() is woken although the unread bytes
 * (10 records) stay far below consumer->wakeup_bytes and the vCPU stays in
 * KVM_RUN (the guest spins without exits of its own): the periodic wake-up
 * "at least every few milliseconds while unread records exist" works. The
 * bound asserted is 1 s, generous for the emulated test bed.
 */
TEST(poll_wakes_on_stale_records)
{
	struct ft_vm f;
	struct spin_vcpu s = { 0 };
	struct pollfd pfd;
	pthread_t th;
	double t0, t1;
	size_t n = 0;
	int r;

	ft_vm_setup(&f, NULL, guest_records_then_spin, NULL, 0);
	f.ring.cons->wakeup_bytes = (uint32_t)(f.ring.info.data_size / 2);
	s.vm = f.vm;
	pfd = (struct pollfd){ .fd = f.ft_fd, .events = POLLIN };
	ASSERT_EQ(0, poll(&pfd, 1, 0));
	t0 = kt_now();
	ASSERT_EQ(0, pthread_create(&th, NULL, spin_vcpu_fn, &s));
	r = poll(&pfd, 1, 5000);
	t1 = kt_now();
	ASSERT_EQ(1, r);
	ASSERT_EQ(POLLIN, pfd.revents & POLLIN);
	ASSERT_GT(1.0, t1 - t0) TH_LOG("woken after %.3f s", t1 - t0);
	TH_LOG("woken %.1f ms after the vCPU started", (t1 - t0) * 1e3);
	/* The vCPU never left KVM_RUN: it is still spinning. */
	ASSERT_EQ(0, s.cmd);
	/* Woken maybe before all ten were appended; they all come, no more. */
	for (int i = 0; i < 100 && n < 10; i++) {
		n += ft_drain(&f.ring, NULL);
		if (n < 10)
			usleep(10000);
	}
	ASSERT_EQ(10, n);
	ASSERT_EQ(0, s.cmd);
	VM_SET_GLOBAL(f.vm, spin_release, 1);
	ASSERT_EQ(0, pthread_join(th, NULL));
	ASSERT_EQ(UCALL_DONE, s.cmd);
	ft_vm_teardown(&f);
}

TEST_HARNESS_MAIN
