// SPDX-License-Identifier: GPL-2.0
/*
 * Replay of a RDMSR that faults: the primary logs it (KVM_FT_MSR_F_GP), the
 * backup gets the same #GP at the same instruction from the record, not
 * from its own MSRs. The guest mixes host-random input, then reads an MSR
 * that does not exist; its #GP handler reports the exception by ucall.
 */
#include <pthread.h>
#include "ft_test.h"
#include "ft_replay.h"

#define BAD_MSR		0xc0de0123U

extern char fault_rdmsr[];

static struct fprog {
	uint64_t n;
	uint64_t h;
} fp;

static void guest_fault(void *arg)
{
	uint64_t h = 1;
	uint32_t lo, hi;

	for (uint64_t i = 0; i < fp.n; i++)
		h = (h ^ inl(RANDOM_PORT)) * 0x9e3779b97f4a7c15ULL;
	fp.h = h;
	__asm__ volatile("fault_rdmsr: rdmsr" : "=a"(lo), "=d"(hi) : "c"(BAD_MSR) : "memory");
	fp.h = lo;	/* not reached: #GP */
}

FIXTURE(fault) {
	int dev;
};

FIXTURE_SETUP(fault)
{
	self->dev = ft_open();
	ASSERT_LE(0, self->dev);
}

FIXTURE_TEARDOWN(fault)
{
	close(self->dev);
}

/*
 * Proves: a RDMSR that raises #GP on the primary is logged with
 * KVM_FT_MSR_F_GP at its RIP; the backup, fed the log up to the guest's
 * exception report, takes the #GP at the same RIP (its handler makes the
 * same ucall, live) in A's exact state; KVM_FT_GET_STATS counts the
 * backup's exits too.
 */
TEST_F(fault, rdmsr_gp_replayed)
{
	uint64_t seed = kt_seed("fault.rdmsr_gp_replayed"), rng = seed | 1;
	struct vm_opts o = {};
	const struct kvm_ft_rec_msr *m = NULL;
	struct kvm_ft_divergence div;
	struct kvm_regs ra, rb;
	struct kvm_ft_stats st;
	struct kvm_vm *a, *b;
	struct ft_ring ring;
	struct recs rs = {};
	struct golive g = {};
	struct ucall ua, ub;
	size_t last, n;
	pthread_t t;
	struct rp w;
	int fd;

	a = vm_create(&o, guest_fault, NULL);
	VM_SET_GLOBAL(a, fp.n, 5 + kt_rand(&rng) % 20);
	vm_seed(a, kt_rand(&rng));
	fd = ft_attach_digest(self->dev, a->vm_fd, KVM_FT_MODE_RECORD, 0, 0, 1);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ft_ring_map(&ring, fd));
	ASSERT_EQ(UCALL_EXCEPTION, vcpu_run_raw(a, &ua));
	ASSERT_EQ(13, ua.args[0]);
	ASSERT_EQ((uint64_t)(uintptr_t)fault_rdmsr, ua.args[1]);
	ASSERT_EQ(0, ioctl(a->vcpu_fd, KVM_GET_REGS, &ra));
	ft_drain(&ring, &rs);
	ft_ring_unmap(&ring);
	close(fd);
	/* The exception ucall is the last synchronous record. */
	for (last = rs.n; last-- > 0;)
		if (!(recs_at(&rs, last)->flags & KVM_FT_RF_ASYNC))
			break;
	ASSERT_LT(last, rs.n);
	ASSERT_EQ(KVM_FT_REC_PIO_OUT, recs_at(&rs, last)->type);
	for (size_t k = 0; k < last; k++)
		if (recs_at(&rs, k)->type == KVM_FT_REC_RDMSR)
			m = (const void *)recs_at(&rs, k);
	ASSERT_NE(NULL, m);
	ASSERT_EQ(KVM_FT_MSR_F_GP, m->flags);
	ASSERT_EQ(BAD_MSR, m->msr);
	ASSERT_EQ(0, m->value);
	ASSERT_EQ((uint64_t)(uintptr_t)fault_rdmsr, m->rip);

	b = vm_create(&o, guest_fault, NULL);
	VM_SET_GLOBAL(b, fp.n, VM_GET_GLOBAL(a, fp.n));
	vm_seed(b, kt_rand(&rng));
	fd = ft_attach_digest(self->dev, b->vm_fd, KVM_FT_MODE_REPLAY, 0, 0, 1);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rp_map(&w, fd));
	for (n = 0; n < last; n++)
		rp_write(&w, recs_at(&rs, n), recs_at(&rs, n)->len);
	rp_publish(&w);
	g.w = &w;
	ASSERT_EQ(0, pthread_create(&t, NULL, golive_fn, &g));
	ASSERT_EQ(UCALL_EXCEPTION, vcpu_run_raw(b, &ub));
	g.stop = true;
	pthread_join(t, NULL);
	ASSERT_EQ(0, ioctl(fd, KVM_FT_GET_DIVERGENCE, &div));
	ASSERT_EQ(0, div.error);
	ASSERT_TRUE(g.went_live);
	ASSERT_EQ(13, ub.args[0]);
	ASSERT_EQ(ua.args[1], ub.args[1]);
	ASSERT_EQ(0, ioctl(b->vcpu_fd, KVM_GET_REGS, &rb));
	ASSERT_EQ(0, memcmp(&ra, &rb, sizeof(ra)));
	ASSERT_EQ(0, memcmp(a->mem, b->mem, a->mem_size));
	ft_stats(fd, &st);
	ASSERT_EQ(n, st.records);
	ASSERT_LE(st.sync_records, st.exits);
	printf("# %zu records replayed, %llu exits counted\n", n, (unsigned long long)st.exits);
	fflush(stdout);
	rp_unmap(&w);
	close(fd);
	vm_free(b);
	vm_free(a);
	recs_free(&rs);
}

TEST_HARNESS_MAIN
