// SPDX-License-Identifier: GPL-2.0
/*
 * Hostile and malformed input from user space gets the documented errno
 * (uapi/linux/kvm_ft.h) and changes nothing; a hostile consumer index puts
 * the ring in error without losing the records before it. /init fails the
 * run if any of this left a splat in the kernel log.
 */
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "ft_test.h"

static void guest_spin(void *arg)
{
	(void)arg;
	for (;;)
		rdtsc();
}

/* Attach and return -errno (or the fd). */
static int attach(int dev, int vm_fd, uint32_t mode, uint32_t flags, uint32_t order,
		  uint64_t reserved2)
{
	struct kvm_ft_attach a = {
		.vm_fd = vm_fd, .mode = mode, .flags = flags, .ring_order = order,
	};
	int fd;

	a.reserved[2] = reserved2;
	fd = ioctl(dev, KVM_FT_ATTACH, &a);
	return fd < 0 ? -errno : fd;
}

FIXTURE(dev) {
	int dev;
	struct kvm_vm *vm;
};

FIXTURE_SETUP(dev)
{
	self->dev = ft_open();
	ASSERT_LE(0, self->dev) TH_LOG("open /dev/kvm_ft: %s", strerror(-self->dev));
	self->vm = vm_create(NULL, guest_spin, NULL);
}

FIXTURE_TEARDOWN(dev)
{
	vm_free(self->vm);
	close(self->dev);
}

/* Proves: the version ioctl answers the header's version. */
TEST_F(dev, api_version)
{
	ASSERT_EQ(KVM_FT_API_VERSION, ioctl(self->dev, KVM_FT_GET_API_VERSION));
}

/* Proves: an fd that is not a KVM VM (a file, /dev/kvm itself, a vCPU) is EINVAL. */
TEST_F(dev, attach_non_vm_fd)
{
	int fd = open("/proc/self/exe", O_RDONLY);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-EINVAL, attach(self->dev, fd, KVM_FT_MODE_RECORD, 0, 0, 0));
	close(fd);
	EXPECT_EQ(-EINVAL, attach(self->dev, self->vm->kvm_fd, KVM_FT_MODE_RECORD, 0, 0, 0));
	EXPECT_EQ(-EINVAL, attach(self->dev, self->vm->vcpu_fd, KVM_FT_MODE_RECORD, 0, 0, 0));
	EXPECT_EQ(-EINVAL, attach(self->dev, self->dev, KVM_FT_MODE_RECORD, 0, 0, 0));
}

/* Proves: a closed fd number and a negative one are EBADF. */
TEST_F(dev, attach_closed_fd)
{
	int fd = dup(self->dev);

	ASSERT_LE(0, fd);
	close(fd);
	EXPECT_EQ(-EBADF, attach(self->dev, fd, KVM_FT_MODE_RECORD, 0, 0, 0));
	EXPECT_EQ(-EBADF, attach(self->dev, -1, KVM_FT_MODE_RECORD, 0, 0, 0));
}

/* Proves: a VM attaches once; a second attach (same or another /dev fd) is EBUSY. */
TEST_F(dev, double_attach)
{
	int fd = attach(self->dev, self->vm->vm_fd, KVM_FT_MODE_RECORD, 0, 0, 0);
	int dev2 = ft_open();

	ASSERT_LE(0, fd);
	ASSERT_LE(0, dev2);
	EXPECT_EQ(-EBUSY, attach(self->dev, self->vm->vm_fd, KVM_FT_MODE_RECORD, 0, 0, 0));
	EXPECT_EQ(-EBUSY, attach(dev2, self->vm->vm_fd, KVM_FT_MODE_RECORD, 0, 0, 0));
	/* After the ft fd is gone the VM can be attached again. */
	close(fd);
	fd = attach(dev2, self->vm->vm_fd, KVM_FT_MODE_RECORD, 0, 0, 0);
	EXPECT_LE(0, fd);
	close(fd);
	close(dev2);
}

/* Proves: unknown flags, modes and non-zero reserved fields are EOPNOTSUPP. */
TEST_F(dev, attach_unknown_bits)
{
	int vm = self->vm->vm_fd;

	EXPECT_EQ(-EOPNOTSUPP, attach(self->dev, vm, KVM_FT_MODE_RECORD, 1U << 2, 0, 0));
	EXPECT_EQ(-EINVAL, attach(self->dev, vm, KVM_FT_MODE_RECORD,
				  KVM_FT_ATTACH_F_REPLAY_OUTPUTS, 0, 0));
	EXPECT_EQ(-EOPNOTSUPP, attach(self->dev, vm, KVM_FT_MODE_RECORD, 1U << 31, 0, 0));
	EXPECT_EQ(-EOPNOTSUPP, attach(self->dev, vm, 0, 0, 0, 0));
	EXPECT_EQ(-EOPNOTSUPP, attach(self->dev, vm, 4, 0, 0, 0));
	EXPECT_EQ(-EOPNOTSUPP, attach(self->dev, vm, 0xffffffff, 0, 0, 0));
	EXPECT_EQ(-EOPNOTSUPP, attach(self->dev, vm, KVM_FT_MODE_RECORD, 0, 0, 1));
	/* None of them attached the VM. */
	int fd = attach(self->dev, vm, KVM_FT_MODE_RECORD, 0, 0, 0);

	EXPECT_LE(0, fd);
	close(fd);
}

/* Proves: ring_order outside [MIN, MAX] is EINVAL; the bounds themselves work. */
TEST_F(dev, attach_ring_order)
{
	int vm = self->vm->vm_fd, fd;
	struct kvm_ft_info info;

	EXPECT_EQ(-EINVAL, attach(self->dev, vm, KVM_FT_MODE_RECORD, 0, KVM_FT_RING_ORDER_MIN - 1, 0));
	EXPECT_EQ(-EINVAL, attach(self->dev, vm, KVM_FT_MODE_RECORD, 0, KVM_FT_RING_ORDER_MAX + 1, 0));
	EXPECT_EQ(-EINVAL, attach(self->dev, vm, KVM_FT_MODE_RECORD, 0, 64, 0));
	fd = attach(self->dev, vm, KVM_FT_MODE_RECORD, 0, KVM_FT_RING_ORDER_MIN, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, KVM_FT_GET_INFO, &info));
	EXPECT_EQ(KVM_FT_RING_ORDER_MIN, info.ring_order);
	EXPECT_EQ(1ULL << KVM_FT_RING_ORDER_MIN, info.data_size);
	EXPECT_EQ(info.page_size + info.data_size, info.producer_len);
	EXPECT_EQ(KVM_FT_MMAP_CONSUMER_OFF, info.consumer_off);
	EXPECT_EQ(KVM_FT_MMAP_PRODUCER_OFF, info.producer_off);
	EXPECT_EQ(getpagesize(), info.page_size);
	close(fd);
}

/* Proves: a bad argument pointer is EFAULT. */
TEST_F(dev, attach_efault)
{
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->dev, KVM_FT_ATTACH, (void *)8));
	EXPECT_EQ(EFAULT, errno);
}

/* Proves: a VM with no vCPU, or with two, is EINVAL. */
TEST(vcpu_count)
{
	struct vm_opts none = { .no_vcpu = true }, two = { .extra_vcpus = 1 };
	struct kvm_vm *vm0 = vm_create(&none, NULL, NULL);
	struct kvm_vm *vm2 = vm_create(&two, guest_spin, NULL);
	int dev = ft_open();

	ASSERT_LE(0, dev);
	EXPECT_EQ(-EINVAL, attach(dev, vm0->vm_fd, KVM_FT_MODE_RECORD, 0, 0, 0));
	EXPECT_EQ(-EINVAL, attach(dev, vm2->vm_fd, KVM_FT_MODE_RECORD, 0, 0, 0));
	close(dev);
	vm_free(vm0);
	vm_free(vm2);
}

/* Proves: a CPUID exposing RDRAND/RDSEED/RDTSCP/RDPID/KVM PV is EMEDIUMTYPE unless allowed. */
TEST(unsafe_cpuid)
{
	struct vm_opts o = { .unsafe_cpuid = true };
	struct kvm_vm *vm = vm_create(&o, guest_spin, NULL);
	struct kvm_ft_info info;
	int dev = ft_open(), fd;

	ASSERT_LE(0, dev);
	EXPECT_EQ(-EMEDIUMTYPE, attach(dev, vm->vm_fd, KVM_FT_MODE_RECORD, 0, 0, 0));
	fd = attach(dev, vm->vm_fd, KVM_FT_MODE_RECORD, KVM_FT_ATTACH_F_ALLOW_UNSAFE_CPUID, 0, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, KVM_FT_GET_INFO, &info));
	EXPECT_EQ(KVM_FT_INFO_F_UNSAFE_CPUID, info.flags);
	close(fd);
	close(dev);
	vm_free(vm);
}

/* Proves: only one hidden feature is enough to refuse (each is checked). */
TEST(unsafe_cpuid_each_bit)
{
	static const struct { uint32_t fn, reg, bit; } bits[] = {
		{ 1, 2, 30 },		/* ECX.RDRAND */
		{ 7, 1, 18 },		/* EBX.RDSEED */
		{ 7, 2, 22 },		/* ECX.RDPID */
		{ 0x80000001, 3, 27 },	/* EDX.RDTSCP */
	};
	int dev = ft_open();

	ASSERT_LE(0, dev);
	for (unsigned int i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		struct vm_opts o = { .no_vcpu = true };
		struct kvm_vm *vm = vm_create(&o, NULL, NULL);
		struct kvm_cpuid2 *c = vm_safe_cpuid(vm->kvm_fd, false);
		struct kvm_cpuid_entry2 *e = cpuid_find(c, bits[i].fn, 0);
		int vcpu = ioctl(vm->vm_fd, KVM_CREATE_VCPU, 0);
		uint32_t *regs;

		ASSERT_NE(NULL, e);
		ASSERT_LE(0, vcpu);
		regs = &e->eax;	/* eax, ebx, ecx, edx are consecutive */
		regs[bits[i].reg] |= 1U << bits[i].bit;
		ASSERT_EQ(0, ioctl(vcpu, KVM_SET_CPUID2, c));
		EXPECT_EQ(-EMEDIUMTYPE, attach(dev, vm->vm_fd, KVM_FT_MODE_RECORD, 0, 0, 0))
			TH_LOG("CPUID %#x reg %u bit %u", bits[i].fn, bits[i].reg, bits[i].bit);
		free(c);
		close(vcpu);
		vm_free(vm);
	}
	close(dev);
}

/* Proves: unknown ioctls on /dev/kvm_ft and on an ft fd are ENOTTY. */
TEST_F(dev, unknown_ioctl)
{
	int fd = attach(self->dev, self->vm->vm_fd, KVM_FT_MODE_RECORD, 0, 0, 0);

	ASSERT_LE(0, fd);
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->dev, _IO(KVM_FT_IOC_MAGIC, 0x7f)));
	EXPECT_EQ(ENOTTY, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(self->dev, KVM_FT_GET_INFO, NULL));	/* an ft-fd ioctl */
	EXPECT_EQ(ENOTTY, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, _IO(KVM_FT_IOC_MAGIC, 0x7f)));
	EXPECT_EQ(ENOTTY, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, KVM_FT_ATTACH, NULL));		/* a /dev ioctl */
	EXPECT_EQ(ENOTTY, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, KVM_RUN, 0));
	EXPECT_EQ(ENOTTY, errno);
	close(fd);
}

/* Proves: SET_MODE rejects unknown modes (EOPNOTSUPP) and transitions not allowed yet (EINVAL). */
TEST_F(dev, set_mode)
{
	int fd = attach(self->dev, self->vm->vm_fd, KVM_FT_MODE_RECORD, 0, 0, 0);
	struct kvm_ft_info info;

	ASSERT_LE(0, fd);
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, KVM_FT_SET_MODE, 0));
	EXPECT_EQ(EOPNOTSUPP, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, KVM_FT_SET_MODE, 77));
	EXPECT_EQ(EOPNOTSUPP, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, KVM_FT_SET_MODE, KVM_FT_MODE_REPLAY));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, ioctl(fd, KVM_FT_SET_MODE, KVM_FT_MODE_LIVE));
	ASSERT_EQ(0, ioctl(fd, KVM_FT_GET_INFO, &info));
	EXPECT_EQ(KVM_FT_MODE_LIVE, info.mode);
	EXPECT_EQ(0, ioctl(fd, KVM_FT_DETACH));
	EXPECT_EQ(0, ioctl(fd, KVM_FT_DETACH));		/* idempotent */
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, KVM_FT_SET_MODE, KVM_FT_MODE_LIVE));
	EXPECT_EQ(ENODEV, errno);
	ASSERT_EQ(0, ioctl(fd, KVM_FT_GET_INFO, &info));
	EXPECT_EQ(KVM_FT_INFO_F_DETACHED, info.flags & KVM_FT_INFO_F_DETACHED);
	close(fd);
}

/* Proves: only the documented offsets and lengths map, MAP_SHARED only, producer read-only. */
TEST_F(dev, mmap_rules)
{
	int fd = attach(self->dev, self->vm->vm_fd, KVM_FT_MODE_RECORD, 0, 0, 0);
	struct kvm_ft_info info;
	long ps = getpagesize();
	void *p;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, KVM_FT_GET_INFO, &info));
#define BAD_MAP(len, prot, flags, off, err) do { \
		errno = 0; \
		p = mmap(NULL, len, prot, flags, fd, off); \
		EXPECT_EQ(MAP_FAILED, p) TH_LOG("mmap len %#lx off %#llx", (long)(len), \
						(unsigned long long)(off)); \
		EXPECT_EQ(err, errno); \
		if (p != MAP_FAILED) munmap(p, len); \
	} while (0)
	BAD_MAP(2 * ps, PROT_READ | PROT_WRITE, MAP_SHARED, KVM_FT_MMAP_CONSUMER_OFF, EINVAL);
	BAD_MAP(ps, PROT_READ | PROT_WRITE, MAP_SHARED, KVM_FT_MMAP_CONSUMER_OFF + ps, EINVAL);
	BAD_MAP(ps, PROT_READ | PROT_WRITE, MAP_PRIVATE, KVM_FT_MMAP_CONSUMER_OFF, EINVAL);
	BAD_MAP(info.producer_len - ps, PROT_READ, MAP_SHARED, KVM_FT_MMAP_PRODUCER_OFF, EINVAL);
	BAD_MAP(info.producer_len + ps, PROT_READ, MAP_SHARED, KVM_FT_MMAP_PRODUCER_OFF, EINVAL);
	BAD_MAP(info.producer_len, PROT_READ, MAP_SHARED, KVM_FT_MMAP_PRODUCER_OFF + ps, EINVAL);
	BAD_MAP(info.producer_len, PROT_READ, MAP_PRIVATE, KVM_FT_MMAP_PRODUCER_OFF, EINVAL);
	BAD_MAP(ps, PROT_READ, MAP_SHARED, 0x200000, EINVAL);
	BAD_MAP(info.producer_len, PROT_READ | PROT_WRITE, MAP_SHARED, KVM_FT_MMAP_PRODUCER_OFF, EPERM);
	BAD_MAP(info.producer_len, PROT_WRITE, MAP_SHARED, KVM_FT_MMAP_PRODUCER_OFF, EPERM);

	/* A read-only producer mapping cannot be made writable later. */
	p = mmap(NULL, info.producer_len, PROT_READ, MAP_SHARED, fd, KVM_FT_MMAP_PRODUCER_OFF);
	ASSERT_NE(MAP_FAILED, p);
	errno = 0;
	EXPECT_EQ(-1, mprotect(p, info.producer_len, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EPERM, errno);
	errno = 0;
	EXPECT_EQ(-1, mprotect(p, ps, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(KVM_FT_RING_MAGIC, ((const struct kvm_ft_ring_producer *)p)->magic);
	munmap(p, info.producer_len);

	/* The right ones work, the consumer page is writable. */
	p = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, KVM_FT_MMAP_CONSUMER_OFF);
	ASSERT_NE(MAP_FAILED, p);
	((struct kvm_ft_ring_consumer *)p)->wakeup_bytes = 4096;
	munmap(p, ps);
	close(fd);
}

static int drop_cap_sys_admin(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -1;
	d[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective &= ~CAP_TO_MASK(CAP_SYS_ADMIN);
	d[CAP_TO_INDEX(CAP_SYS_ADMIN)].permitted &= ~CAP_TO_MASK(CAP_SYS_ADMIN);
	d[CAP_TO_INDEX(CAP_SYS_ADMIN)].inheritable &= ~CAP_TO_MASK(CAP_SYS_ADMIN);
	return (int)syscall(SYS_capset, &h, d);
}

/*
 * In a child without CAP_SYS_ADMIN (dropped with capset, or by becoming
 * nobody): every state-changing operation is EPERM, the read-only ones work.
 * Exit status: 0 = all as documented, else the number of the failed check.
 */
static int unprivileged_child(int dev, int vm_fd, int ft_fd, bool setuid_nobody)
{
	struct kvm_ft_info info;
	struct kvm_ft_stats st;
	struct kvm_ft_attach a = { .vm_fd = vm_fd, .mode = KVM_FT_MODE_RECORD };

	if (setuid_nobody) {
		if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
			return 1;
	} else if (drop_cap_sys_admin()) {
		return 2;
	}
	if (ioctl(dev, KVM_FT_ATTACH, &a) != -1 || errno != EPERM)
		return 3;
	if (ioctl(ft_fd, KVM_FT_SET_MODE, KVM_FT_MODE_LIVE) != -1 || errno != EPERM)
		return 4;
	if (ioctl(ft_fd, KVM_FT_DETACH) != -1 || errno != EPERM)
		return 5;
	if (ioctl(dev, KVM_FT_GET_API_VERSION) != KVM_FT_API_VERSION)
		return 6;
	if (ioctl(ft_fd, KVM_FT_GET_INFO, &info) || info.mode != KVM_FT_MODE_RECORD)
		return 7;
	if (ioctl(ft_fd, KVM_FT_GET_STATS, &st))
		return 8;
	return 0;
}

static void unprivileged(struct __test_metadata *_metadata, bool nobody)
{
	struct kvm_vm *vm = vm_create(NULL, guest_spin, NULL);
	struct vm_opts o = { .no_vcpu = true };
	struct kvm_vm *vm2;
	struct kvm_ft_info info;
	int dev = ft_open(), fd, status;
	pid_t pid;

	ASSERT_LE(0, dev);
	fd = attach(dev, vm->vm_fd, KVM_FT_MODE_RECORD, 0, 0, 0);
	ASSERT_LE(0, fd);
	/* A second VM with one vCPU that the child tries to attach. */
	vm2 = vm_create(&o, NULL, NULL);
	ASSERT_LE(0, ioctl(vm2->vm_fd, KVM_CREATE_VCPU, 0));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(unprivileged_child(dev, vm2->vm_fd, fd, nobody));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("unprivileged check %d failed", WEXITSTATUS(status));
	/* Nothing changed. */
	ASSERT_EQ(0, ioctl(fd, KVM_FT_GET_INFO, &info));
	EXPECT_EQ(KVM_FT_MODE_RECORD, info.mode);
	EXPECT_EQ(0, info.flags & KVM_FT_INFO_F_DETACHED);
	close(fd);
	close(dev);
	vm_free(vm2);
	vm_free(vm);
}

/* Proves: without CAP_SYS_ADMIN (capset) attach, set_mode and detach are EPERM. */
TEST(unprivileged_capset)
{
	unprivileged(_metadata, false);
}

/* Proves: as nobody (uid 65534) attach, set_mode and detach are EPERM. */
TEST(unprivileged_nobody)
{
	unprivileged(_metadata, true);
}

#define PHASE1_SYNCS	20
#define PHASE1_RDTSC	100

static void guest_phases(void *arg)
{
	(void)arg;
	/* Phase 1: 20 x (100 RDTSC + a ucall) = 2020 records, ~97 KB > the ring. */
	for (int k = 0; k < PHASE1_SYNCS; k++) {
		for (int i = 0; i < PHASE1_RDTSC; i++)
			rdtsc();
		GUEST_SYNC(k);
	}
	/* Phase 2: far more than the 64 KiB ring holds. */
	for (int i = 0; i < 5000; i++)
		rdtsc();
	GUEST_SYNC(PHASE1_SYNCS);
}

struct runner {
	struct kvm_vm *vm;
	int64_t result;
	volatile bool done;
};

static void *vcpu_thread(void *p)
{
	struct runner *r = p;
	struct ucall uc;

	r->result = vcpu_run_raw(r->vm, &uc);
	__atomic_store_n(&r->done, true, __ATOMIC_RELEASE);
	return NULL;
}

FIXTURE(hostile_consumer) {
	struct ft_vm f;
};

FIXTURE_VARIANT(hostile_consumer) {
	int kind;	/* 0 beyond the producer, 1 unaligned, 2 backwards */
};

FIXTURE_VARIANT_ADD(hostile_consumer, beyond_producer) { .kind = 0 };
FIXTURE_VARIANT_ADD(hostile_consumer, unaligned) { .kind = 1 };
FIXTURE_VARIANT_ADD(hostile_consumer, backwards) { .kind = 2 };

FIXTURE_SETUP(hostile_consumer)
{
	ft_vm_setup(&self->f, NULL, guest_phases, NULL, KVM_FT_RING_ORDER_MIN);
}

FIXTURE_TEARDOWN(hostile_consumer)
{
	/*
	 * The vCPU thread may still wait for ring space that never comes; the
	 * test process exits with it inside KVM_RUN, which proves the wait
	 * ends on a fatal signal. Nothing is freed under its feet.
	 */
}

/*
 * Proves: an invalid consumer position (beyond the producer, unaligned, or
 * behind one the module already saw) sets producer->error to
 * KVM_FT_ERR_BAD_CONSUMER, counts in stats.bad_consumer, raises POLLERR; the
 * records from the last valid position on stay intact and gapless, nothing
 * unread is overwritten, and a valid position written afterwards does not
 * clear the error.
 */
TEST_F_TIMEOUT(hostile_consumer, rejected, 120)
{
	struct ft_ring *r = &self->f.ring;
	struct runner run = { .vm = self->f.vm };
	struct kvm_ft_stats st;
	struct pollfd pfd = { .fd = self->f.ft_fd, .events = POLLIN };
	const struct kvm_ft_rec *rec;
	uint64_t seq = 1, mid = 0, mid_seq = 0, prod, bad, t;
	const uint64_t total = PHASE1_SYNCS * (PHASE1_RDTSC + 1);
	pthread_t th;

	/* Phase 1 with a well-behaved reader, except for the last 50 records. */
	for (int k = 0; k < PHASE1_SYNCS; k++) {
		vcpu_run_expect(self->f.vm, UCALL_SYNC, NULL);
		while ((rec = ft_ring_next(r))) {
			ASSERT_EQ(seq, rec->seq);
			ASSERT_EQ(seq, rec->landmark);
			if (seq == total - 50) {
				mid = r->pos;
				mid_seq = seq + 1;
			}
			seq++;
		}
		ASSERT_EQ(NULL, r->error);
		if (k < PHASE1_SYNCS - 1)
			ft_ring_release(r);
	}
	ASSERT_EQ(total + 1, seq);
	ASSERT_LT(r->info.data_size, ft_ring_producer(r));	/* it wrapped */
	__atomic_store_n(&r->cons->consumer, mid, __ATOMIC_RELEASE);
	prod = ft_ring_producer(r);
	switch (variant->kind) {
	case 0: bad = prod + 8; break;
	case 1: bad = mid + 4; break;
	default: bad = 8; break;	/* the module saw a consumer far beyond it */
	}
	__atomic_store_n(&r->cons->consumer, bad, __ATOMIC_RELEASE);

	ASSERT_EQ(0, pthread_create(&th, NULL, vcpu_thread, &run));
	pthread_detach(th);
	for (t = 0; t < 600; t++) {
		if (r->prod->error || run.done)
			break;
		usleep(50000);
	}
	ASSERT_EQ(KVM_FT_ERR_BAD_CONSUMER, r->prod->error)
		TH_LOG("vCPU %s, result %lld", run.done ? "returned" : "running",
		       (long long)run.result);
	ASSERT_EQ(1, poll(&pfd, 1, 1000));
	ASSERT_EQ(POLLERR, pfd.revents & POLLERR);
	ft_stats(self->f.ft_fd, &st);
	ASSERT_LE(1, st.bad_consumer);

	/* A valid position now does not clear the sticky error. */
	__atomic_store_n(&r->cons->consumer, mid, __ATOMIC_RELEASE);
	usleep(300000);
	ASSERT_EQ(KVM_FT_ERR_BAD_CONSUMER, r->prod->error);

	/* Every record from the last valid position on is intact and gapless. */
	prod = ft_ring_producer(r);
	ASSERT_LE(prod - mid, r->info.data_size);	/* nothing unread was overwritten */
	r->pos = mid;
	r->prod_seen = mid;
	seq = mid_seq;
	while ((rec = ft_ring_next(r))) {
		ASSERT_EQ(seq, rec->seq);
		ASSERT_EQ(seq, rec->landmark);
		ASSERT_TRUE(rec->type == KVM_FT_REC_RDTSC || rec->type == KVM_FT_REC_PIO_OUT);
		seq++;
	}
	ASSERT_EQ(NULL, r->error);
	ASSERT_EQ(prod, r->pos);
	ASSERT_EQ(r->prod->next_seq, seq);
	if (run.done)	/* Stopping the VM instead of waiting is allowed: EIO. */
		ASSERT_EQ(-EIO, run.result);
}

TEST_HARNESS_MAIN
