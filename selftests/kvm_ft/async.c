// SPDX-License-Identifier: GPL-2.0
/*
 * Asynchronous inputs on the primary (KVM_FT_QUEUE_ASYNC): interrupts and
 * DMA writes queued from host threads at random times are applied only at
 * landmarks and logged there, exactly as the guest saw them; bad input to
 * the ioctl gets the documented errno; LIVE applies them unlogged.
 */
#include <sys/mman.h>
#include "ft_test.h"

#define VEC		0x42
#define SLOTS		16
#define SLOT_SIZE	256

static struct ga {
	uint64_t n;
	uint64_t state;
	uint8_t buf[SLOTS][SLOT_SIZE];	/* DMA targets */
} ga;

static inline uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v;
	h *= 0x9e3779b97f4a7c15ULL;
	h ^= h >> 29;
	return h;
}

/* Exit-rich, interrupts on: folds PIO data, DMA'd memory and the IRQ count. */
static void guest_async(void *arg)
{
	uint64_t h = 1;

	sti();
	for (uint64_t i = 0; i < ga.n; i++) {
		h = mix(h, inb(RANDOM_PORT));
		h = mix(h, ga.buf[i % SLOTS][(i / SLOTS) % SLOT_SIZE]);
		h = mix(h, guest_irq.count);
	}
	cli();
	ga.state = h;
	GUEST_SYNC(guest_irq.count);
}

/*
 * Proves: IRQs and DMA queued by two host threads at random times appear in
 * the log as the guest got them: every INTR record (KVM_FT_INTR_F_LANDMARK)
 * carries the RIP the guest's handler saw and the landmark of the record
 * before it; the DMA records are the host's writes in order, a prefix of
 * what was queued, and replaying them onto the initial buffer gives the
 * guest's final buffer.
 */
TEST(record_irq_and_dma)
{
	uint64_t seed = kt_seed("async.record_irq_and_dma");
	struct vm_opts o = { .mem_size = 16ULL << 20 };
	uint8_t shadow[SLOTS][SLOT_SIZE] = {};
	uint64_t lm = 0, nintr = 0, ndma = 0, count;
	struct recs rs = {};
	struct ft_vm f;
	struct ucall uc;

	ft_vm_setup(&f, &o, guest_async, NULL, 22);
	VM_SET_GLOBAL(f.vm, ga.n, 20000);
	vm_seed(f.vm, seed);
	vm_ft_async(f.vm, f.ft_fd, false);
	vm_irq_thread_start(f.vm, VEC, 200, 2000, seed * 3 + 1);
	vm_dma_thread_start(f.vm, (uint64_t)(uintptr_t)ga.buf, sizeof(ga.buf), 256, 100, 1600,
			    seed | 1);
	vcpu_run_expect(f.vm, UCALL_SYNC, &uc);
	vm_dma_thread_stop(f.vm);
	vm_irq_thread_stop(f.vm);
	count = uc.args[0];
	ft_drain(&f.ring, &rs);
	ASSERT_EQ(NULL, recs_check_seq(&rs, 1, 0));

	for (size_t i = 0; i < rs.n; i++) {
		const struct kvm_ft_rec *r = recs_at(&rs, i);

		if (r->type == KVM_FT_REC_INTR) {
			const struct kvm_ft_rec_intr *in = (const void *)r;

			ASSERT_EQ(KVM_FT_INTR_F_LANDMARK, in->flags);
			ASSERT_EQ(VEC, in->vector);
			ASSERT_EQ(lm, r->landmark);
			ASSERT_GT(lm, 0);
			if (nintr < GUEST_IRQ_LOG)
				ASSERT_EQ(VM_GET_GLOBAL(f.vm, guest_irq.rip_log[nintr]), in->rip)
					TH_LOG("interrupt %llu", (unsigned long long)nintr);
			nintr++;
		} else if (r->type == KVM_FT_REC_DMA) {
			const struct kvm_ft_rec_dma *d = (const void *)r;
			const struct dma_event *s = &f.vm->dma_log[ndma];

			ASSERT_LT(ndma, f.vm->dma_count);
			ASSERT_EQ(lm, r->landmark);
			ASSERT_EQ(s->gpa, d->gpa);
			ASSERT_EQ(s->len, d->len);
			ASSERT_EQ((sizeof(*d) + d->len + 7) & ~7ULL, r->len);
			ASSERT_EQ(0, memcmp(s->data, d->data, s->len));
			memcpy((uint8_t *)shadow + (d->gpa - (uint64_t)(uintptr_t)ga.buf),
			       d->data, d->len);
			ndma++;
		} else {
			lm = r->landmark;
		}
	}
	printf("# %llu IRQs queued, %llu delivered; %zu DMA queued, %llu applied; %zu records\n",
	       (unsigned long long)f.vm->irqs_queued, (unsigned long long)nintr, f.vm->dma_count,
	       (unsigned long long)ndma, rs.n);
	fflush(stdout);
	ASSERT_EQ(count, nintr);
	ASSERT_GT(nintr, 0);
	ASSERT_GT(ndma, 0);
	ASSERT_LE(nintr, f.vm->irqs_queued);
	ASSERT_EQ(0, memcmp(shadow, vm_gpa2hva(f.vm, (uint64_t)(uintptr_t)ga.buf, sizeof(shadow)),
			    sizeof(shadow)));
	recs_free(&rs);
	ft_vm_teardown(&f);
}

/* Halts until an interrupt arrives; checks a DMA'd word first. */
static void guest_live(void *arg)
{
	GUEST_ASSERT_EQ(*(volatile uint64_t *)ga.buf[0], 0x1122334455667788ULL);
	sti_hlt();
	cli();
	GUEST_SYNC(guest_irq.count, guest_irq.last_vector);
}

/* Proves: after RECORD -> LIVE, queued DMA and IRQs apply at once, unlogged. */
TEST(live_applies_unlogged)
{
	struct vm_opts o = { 0 };
	uint64_t v = 0x1122334455667788ULL;
	struct kvm_ft_stats st;
	struct ucall uc;
	struct ft_vm f;

	ft_vm_setup(&f, &o, guest_live, NULL, 0);
	vm_ft_async(f.vm, f.ft_fd, false);
	ASSERT_EQ(0, vm_queue_async(f.vm, KVM_FT_ASYNC_DMA, 0, (uint64_t)(uintptr_t)ga.buf[0],
				    &v, sizeof(v)));
	ASSERT_EQ(0, ioctl(f.ft_fd, KVM_FT_SET_MODE, KVM_FT_MODE_LIVE));
	f.vm->irq_on_halt = VEC + 1;
	vcpu_run_expect(f.vm, UCALL_SYNC, &uc);
	ASSERT_EQ(1, uc.args[0]);
	ASSERT_EQ(VEC + 1, uc.args[1]);
	ft_stats(f.ft_fd, &st);
	ASSERT_EQ(0, st.records);
	ft_vm_teardown(&f);
}

static int queue(int fd, struct kvm_ft_async *a)
{
	return ioctl(fd, KVM_FT_QUEUE_ASYNC, a) ? errno : 0;
}

/* Proves: each malformed KVM_FT_QUEUE_ASYNC gets its documented errno. */
TEST(bad_input)
{
	struct vm_opts o = { .mem_size = 16ULL << 20 };
	uint8_t data[KVM_FT_DMA_MAX + 1] = {};
	uint64_t g = (uint64_t)(uintptr_t)ga.buf;
	struct kvm_ft_async a;
	void *unmapped;
	struct ft_vm f;
	int fd;

	ft_vm_setup(&f, &o, guest_live, NULL, 0);
	fd = f.ft_fd;
#define IRQ(v)	((struct kvm_ft_async){ .type = KVM_FT_ASYNC_IRQ, .vector = (v) })
#define DMA(to, l) ((struct kvm_ft_async){ .type = KVM_FT_ASYNC_DMA, .gpa = (to), \
		.data = (uint64_t)(uintptr_t)data, .len = (l) })
	a = IRQ(VEC); a.type = 0;		ASSERT_EQ(EOPNOTSUPP, queue(fd, &a));
	a = IRQ(VEC); a.type = 3;		ASSERT_EQ(EOPNOTSUPP, queue(fd, &a));
	a = IRQ(VEC); a.flags = 1;		ASSERT_EQ(EOPNOTSUPP, queue(fd, &a));
	a = IRQ(VEC); a.reserved[1] = 1;	ASSERT_EQ(EOPNOTSUPP, queue(fd, &a));
	a = IRQ(31);				ASSERT_EQ(EINVAL, queue(fd, &a));
	a = IRQ(256);				ASSERT_EQ(EINVAL, queue(fd, &a));
	a = IRQ(VEC); a.gpa = g;		ASSERT_EQ(EINVAL, queue(fd, &a));
	a = IRQ(VEC); a.len = 1;		ASSERT_EQ(EINVAL, queue(fd, &a));
	a = DMA(g, 0);				ASSERT_EQ(EINVAL, queue(fd, &a));
	a = DMA(g, KVM_FT_DMA_MAX + 1);		ASSERT_EQ(EINVAL, queue(fd, &a));
	a = DMA(g, 8); a.vector = VEC;		ASSERT_EQ(EINVAL, queue(fd, &a));
	a = DMA(VM_MMIO_BASE, 8);		ASSERT_EQ(EINVAL, queue(fd, &a));
	a = DMA(o.mem_size - 4, 8);		ASSERT_EQ(EINVAL, queue(fd, &a));
	a = DMA(~0ULL - 3, 8);			ASSERT_EQ(EINVAL, queue(fd, &a));
	a = DMA(1ULL << 50, 8);			ASSERT_EQ(EINVAL, queue(fd, &a));
	unmapped = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, unmapped);
	a = DMA(g, 8); a.data = (uint64_t)(uintptr_t)unmapped;
	ASSERT_EQ(EFAULT, queue(fd, &a));
	a = DMA(g, 8); a.data = 0;		ASSERT_EQ(EFAULT, queue(fd, &a));
	ASSERT_EQ(-1, ioctl(fd, KVM_FT_QUEUE_ASYNC, unmapped));
	ASSERT_EQ(EFAULT, errno);
	munmap(unmapped, 4096);
	/* The vCPU never runs: the queue fills up. */
	for (int i = 0; i < KVM_FT_ASYNC_QUEUE_MAX; i++) {
		a = i & 1 ? IRQ(VEC) : DMA(g, KVM_FT_DMA_MAX);
		ASSERT_EQ(0, queue(fd, &a)) TH_LOG("item %d", i);
	}
	a = IRQ(VEC);				ASSERT_EQ(EAGAIN, queue(fd, &a));
	a = DMA(g, 1);				ASSERT_EQ(EAGAIN, queue(fd, &a));
	ASSERT_EQ(0, ioctl(fd, KVM_FT_DETACH));
	a = IRQ(VEC);				ASSERT_EQ(ENODEV, queue(fd, &a));
	ft_vm_teardown(&f);

	/* A replaying VM takes its inputs from the log only. */
	f.vm = vm_create(&o, guest_live, NULL);
	f.dev_fd = ft_open();
	ASSERT_LE(0, f.dev_fd);
	f.ft_fd = ft_attach(f.dev_fd, f.vm->vm_fd, KVM_FT_MODE_REPLAY, 0, 0);
	ASSERT_LE(0, f.ft_fd);
	memset(&f.ring, 0, sizeof(f.ring));
	a = IRQ(VEC);				ASSERT_EQ(EBUSY, queue(f.ft_fd, &a));
	a = DMA(g, 8);				ASSERT_EQ(EBUSY, queue(f.ft_fd, &a));
	ASSERT_EQ(0, ioctl(f.ft_fd, KVM_FT_SET_MODE, KVM_FT_MODE_LIVE));
	a = IRQ(VEC);				ASSERT_EQ(0, queue(f.ft_fd, &a));
	close(f.ft_fd);
	close(f.dev_fd);
	vm_free(f.vm);
#undef IRQ
#undef DMA
}

/*
 * Proves: an interrupt the VMM injects with KVM_INTERRUPT into a replaying
 * VM (not from the log) stops it with UNSUPPORTED, naming the vector.
 */
TEST(kvm_interrupt_on_backup_unsupported)
{
	struct vm_opts o = { 0 };
	struct kvm_interrupt irq = { .irq = VEC };
	struct kvm_ft_divergence div;
	struct kvm_vm *vm = vm_create(&o, guest_live, NULL);
	int dev = ft_open(), fd;
	struct ucall uc;

	ASSERT_LE(0, dev);
	fd = ft_attach(dev, vm->vm_fd, KVM_FT_MODE_REPLAY, 0, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(vm->vcpu_fd, KVM_INTERRUPT, &irq));
	ASSERT_EQ(-EIO, vcpu_run_raw(vm, &uc));
	ASSERT_EQ(0, ioctl(fd, KVM_FT_GET_DIVERGENCE, &div));
	ASSERT_EQ(KVM_FT_ERR_UNSUPPORTED, div.error);
	ASSERT_EQ(KVM_FT_DIV_UNSUPPORTED, div.reason);
	ASSERT_EQ(KVM_FT_REC_INTR, div.actual.type);
	ASSERT_EQ(VEC, div.actual.addr);
	close(fd);
	close(dev);
	vm_free(vm);
}

TEST_HARNESS_MAIN
