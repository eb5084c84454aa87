// SPDX-License-Identifier: GPL-2.0
/*
 * Role swap without copying state (planned failover): two VMs run the same
 * guest; A records, B replays A's log. At a random landmark both stop -
 * the recorder out of KVM_RUN after an exit whose records are all logged
 * (its asynchronous inputs stopped and its queue drained, async_pending
 * = 0; a KVM_RUN with immediate_exit completes a pending PIO IN, whose
 * record is appended then), the replayer signalled out of its wait for the
 * next record once it consumed the recorder's last one. Their registers
 * and memory must be identical then. Both detach (the old ft fds stay
 * open and mapped, as ftd keeps them) and attach again in the other mode:
 * B records, A replays B's log from seq 1. Repeated; register digests are
 * on, IRQs and DMA arrive from host threads, and the guest folds
 * everything into its state.
 *
 * Also: a signal ends the recorder's wait for ring space without entering
 * the guest, and the next KVM_RUN waits again; no record is lost.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include "ft_test.h"
#include "ft_replay.h"

#define MEM_SIZE	(16ULL << 20)
#define DMA_AREA	1024
#define NSWAPS		6

static struct gswap {
	uint64_t seed;
	uint64_t spin_max;
	uint64_t state;
	uint64_t iters;
	uint8_t dma[DMA_AREA] __attribute__((aligned(DMA_AREA)));
} gs;

static inline uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v;
	h *= 0x9e3779b97f4a7c15ULL;
	h ^= h >> 29;
	return h;
}

static uint64_t fold_async(uint64_t h)
{
	const volatile uint64_t *w = (const volatile uint64_t *)gs.dma;

	for (int i = 0; i < DMA_AREA / 8; i++)
		h = mix(h, w[i]);
	return mix(h, guest_irq.hash ^ guest_irq.count);
}

static void guest_swap(void *arg)
{
	uint64_t s = gs.seed | 1, h = 0x243f6a8885a308d3ULL;

	(void)arg;
	sti();
	for (;;) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		h = fold_async(h);
		switch (s % 5) {
		case 0:
			h = mix(h, inb(RANDOM_PORT));
			break;
		case 1:
			h = mix(h, inl(RANDOM_PORT));
			break;
		case 2:
			h = mix(h, rdtsc());
			break;
		case 3: {
			uint32_t r[4];

			cpuid(1, 0, r);
			h = mix(h, r[0] ^ r[1]);
			break;
		}
		case 4:
			for (uint64_t j = (s >> 20) % gs.spin_max; j; j--) {
				h = mix(h, j);
				__asm__ volatile("" : "+r"(h));
			}
			break;
		}
		h = fold_async(h);
		outl(OUTPUT_PORT, (uint32_t)h);
		gs.state = h;
		gs.iters++;
	}
}

/* One VM of the pair and its current attachment. */
struct side {
	struct kvm_vm *vm;
	int fd;
	uint32_t mode;
	struct ft_ring ring;		/* RECORD */
	struct rp rp;			/* REPLAY */
	uint64_t rng;			/* RANDOM_PORT data (recorder only) */
	/* The replayer's vCPU thread. */
	pthread_t tid;
	volatile bool stop;
	volatile uint64_t eintr;
	volatile int64_t ret;		/* 0 running, 1 stopped on request, -errno */
};

static void side_attach(int dev, struct side *s, uint32_t mode)
{
	int r;

	s->fd = ft_attach_digest(dev, s->vm->vm_fd, mode, 0, 0, 0);
	KT_ASSERT(s->fd >= 0, "attach %s: %s", mode == KVM_FT_MODE_RECORD ? "RECORD" : "REPLAY",
		  strerror(-s->fd));
	s->mode = mode;
	if (mode == KVM_FT_MODE_RECORD)
		r = ft_ring_map(&s->ring, s->fd);
	else
		r = rp_map(&s->rp, s->fd);
	KT_ASSERT(!r, "map: %s", strerror(-r));
	vm_ft_async(s->vm, s->fd, mode == KVM_FT_MODE_REPLAY);
}

/* Detach; the old fd stays open and mapped until side_release(). */
struct old_att {
	int fd;
	uint32_t mode;
	struct ft_ring ring;
	struct rp rp;
};

static void side_detach(struct side *s, struct old_att *o)
{
	KT_ASSERT(!ioctl(s->fd, KVM_FT_DETACH), "KVM_FT_DETACH: %s", strerror(errno));
	o->fd = s->fd;
	o->mode = s->mode;
	o->ring = s->ring;
	o->rp = s->rp;
	s->fd = -1;
}

static void old_release(struct old_att *o)
{
	if (o->mode == KVM_FT_MODE_RECORD)
		ft_ring_unmap(&o->ring);
	else
		rp_unmap(&o->rp);
	close(o->fd);
}

/* Copy every published record of the recorder into the replayer's ring. */
static size_t forward(struct side *rec, struct side *rep)
{
	const struct kvm_ft_rec *r;
	size_t n = 0;

	while ((r = ft_ring_next(&rec->ring))) {
		rp_write(&rep->rp, r, r->len);
		n++;
	}
	KT_ASSERT(!rec->ring.error, "malformed log: %s", rec->ring.error);
	ft_ring_release(&rec->ring);
	rp_publish(&rep->rp);
	return n;
}

static void *replayer_fn(void *p)
{
	struct side *s = p;
	struct kvm_run *run = s->vm->run;

	vcpu_thread_bind(s->vm);
	for (;;) {
		if (ioctl(s->vm->vcpu_fd, KVM_RUN, 0) < 0) {
			int e = errno;

			run->immediate_exit = 0;
			if (e == EINTR) {
				s->eintr++;
				if (s->stop) {
					s->ret = 1;
					return NULL;
				}
				continue;
			}
			s->ret = -e;
			return NULL;
		}
		/* Replayed PIO never reaches user space: any exit is wrong. */
		s->ret = -1000 - (int64_t)run->exit_reason;
		return NULL;
	}
}

/*
 * Run the recorder for @n user-space PIO exits with its IRQ and DMA
 * threads on, forwarding its log; then stop the threads, run on until the
 * async queue is empty at a PIO exit, complete that exit with
 * immediate_exit and return with the vCPU out of KVM_RUN.
 */
static void record_until(struct side *s, struct side *rep, uint64_t n, uint64_t seed)
{
	struct kvm_run *run = s->vm->run;
	bool draining = false;
	uint64_t exits = 0;

	vcpu_thread_bind(s->vm);
	vm_irq_thread_start(s->vm, 32 + (uint32_t)(seed % 200), 100, 800, seed);
	vm_dma_thread_start(s->vm, (uint64_t)(uintptr_t)gs.dma, DMA_AREA, 64, 200, 1500,
			    seed * 7 + 1);
	for (;;) {
		uint8_t *data;

		if (ioctl(s->vm->vcpu_fd, KVM_RUN, 0) < 0) {
			KT_ASSERT(errno == EINTR, "KVM_RUN (record): %s", strerror(errno));
			run->immediate_exit = 0;
			continue;
		}
		KT_ASSERT(run->exit_reason == KVM_EXIT_IO, "recorder: exit reason %u",
			  run->exit_reason);
		data = (uint8_t *)run + run->io.data_offset;
		if (run->io.direction == KVM_EXIT_IO_IN) {
			uint64_t v = kt_rand(&s->rng);

			KT_ASSERT(run->io.port == RANDOM_PORT, "IN from port %#x", run->io.port);
			memcpy(data, &v, run->io.size);
		} else {
			KT_ASSERT(run->io.port == OUTPUT_PORT, "OUT to port %#x", run->io.port);
		}
		if (++exits == n) {
			vm_dma_thread_stop(s->vm);
			vm_irq_thread_stop(s->vm);
			draining = true;
		}
		if (draining) {
			struct kvm_ft_stats st;

			ft_stats(s->fd, &st);
			if (!st.async_pending)
				break;
		}
		if (!(exits % 64))
			forward(s, rep);
	}
	/* Complete the exit (an IN's record is appended now) without entering. */
	run->immediate_exit = 1;
	KT_ASSERT(ioctl(s->vm->vcpu_fd, KVM_RUN, 0) < 0 && errno == EINTR,
		  "KVM_RUN with immediate_exit did not return EINTR");
	run->immediate_exit = 0;
	forward(s, rep);
}

static uint32_t rp_flags(const struct side *s)
{
	return __atomic_load_n(&s->rp.st->flags, __ATOMIC_ACQUIRE);
}

static uint64_t rp_done(const struct side *s)
{
	return __atomic_load_n(&s->rp.st->next_seq, __ATOMIC_ACQUIRE) - 1;
}

/* Wait (20 s at most) until the replayer consumed @last and waits for more. */
static bool wait_replayed(const struct side *s, uint64_t last)
{
	double t0 = kt_now();

	while (kt_now() - t0 < 20) {
		if (s->ret)
			return false;
		if (rp_done(s) == last && (rp_flags(s) & KVM_FT_RING_F_WAITING))
			return true;
		usleep(1000);
	}
	return false;
}

static void assert_same_state(struct __test_metadata *_metadata, struct side *a,
			      struct side *b, int round)
{
	struct kvm_regs ra, rb;
	uint64_t off;

	ASSERT_EQ(0, ioctl(a->vm->vcpu_fd, KVM_GET_REGS, &ra));
	ASSERT_EQ(0, ioctl(b->vm->vcpu_fd, KVM_GET_REGS, &rb));
	if (memcmp(&ra, &rb, sizeof(ra))) {
		printf("# round %d: registers differ: rip %#llx vs %#llx, rax %#llx vs %#llx\n",
		       round, ra.rip, rb.rip, ra.rax, rb.rax);
		ASSERT_TRUE(false);
	}
	for (off = 0; off < MEM_SIZE; off += 4096)
		if (memcmp(a->vm->mem + off, b->vm->mem + off, 4096))
			break;
	if (off < MEM_SIZE)
		printf("# round %d: guest memory differs in the page at %#llx\n", round,
		       (unsigned long long)off);
	ASSERT_EQ(MEM_SIZE, off);
}

FIXTURE(swap) {
	int unused;
};

FIXTURE_SETUP(swap)
{
}

FIXTURE_TEARDOWN(swap)
{
}

TEST_F_TIMEOUT(swap, roles_swap_at_random_landmarks, 600)
{
	uint64_t seed = kt_seed("roles_swap_at_random_landmarks"), rng = seed | 1;
	struct vm_opts o = { .mem_size = MEM_SIZE };
	struct side sd[2] = { 0 };
	struct old_att old[2];
	int dev = ft_open(), lead = 0;
	uint64_t gseed = kt_rand(&rng), total = 0;

	ASSERT_LE(0, dev);
	for (int i = 0; i < 2; i++) {
		sd[i].vm = vm_create(&o, guest_swap, NULL);
		VM_SET_GLOBAL(sd[i].vm, gs.seed, gseed);
		VM_SET_GLOBAL(sd[i].vm, gs.spin_max, 1 + gseed % 3000);
		sd[i].rng = kt_rand(&rng) | 1;	/* each side's own host data */
	}
	side_attach(dev, &sd[0], KVM_FT_MODE_RECORD);
	side_attach(dev, &sd[1], KVM_FT_MODE_REPLAY);

	for (int round = 0; round < NSWAPS; round++) {
		struct side *rec = &sd[lead], *rep = &sd[1 - lead];
		uint64_t n = 100 + kt_rand(&rng) % 900, last, eintr;
		struct kvm_ft_stats st;

		rep->stop = false;
		rep->eintr = 0;
		rep->ret = 0;
		ASSERT_EQ(0, pthread_create(&rep->tid, NULL, replayer_fn, rep));
		record_until(rec, rep, n, kt_rand(&rng));
		last = __atomic_load_n(&rec->ring.prod->next_seq, __ATOMIC_ACQUIRE) - 1;
		ft_stats(rec->fd, &st);
		ASSERT_EQ(0, st.async_pending);
		ASSERT_TRUE(wait_replayed(rep, last)) {
			printf("# round %d: replayer at seq %llu of %llu, ret %lld\n", round,
			       (unsigned long long)rp_done(rep), (unsigned long long)last,
			       (long long)rep->ret);
		}
		/* A signal ends the wait at the landmark; the next KVM_RUN waits again. */
		eintr = rep->eintr;
		vm_kick(rep->vm);
		for (int i = 0; i < 2000 && rep->eintr == eintr; i++)
			usleep(1000);
		ASSERT_EQ(eintr + 1, rep->eintr);
		ASSERT_TRUE(wait_replayed(rep, last));
		ASSERT_EQ(0, rep->ret);
		rep->stop = true;
		vm_kick(rep->vm);
		pthread_join(rep->tid, NULL);
		ASSERT_EQ(1, rep->ret);
		ASSERT_EQ(last, rp_done(rep));
		ASSERT_EQ(0, rep->rp.st->error);
		assert_same_state(_metadata, rec, rep, round);
		printf("# round %d: %s recorded %llu records (%llu PIO exits), %s replayed them; "
		       "swapped at rip %#llx after %llu guest iterations\n", round,
		       lead ? "B" : "A", (unsigned long long)last, (unsigned long long)n,
		       lead ? "A" : "B", (unsigned long long)vcpu_rip(rec->vm),
		       (unsigned long long)VM_GET_GLOBAL(rec->vm, gs.iters));
		fflush(stdout);
		total += last;

		/* Swap: detach both, attach in the other mode; old fds open meanwhile. */
		side_detach(rec, &old[0]);
		side_detach(rep, &old[1]);
		if (round % 2) {	/* also with the old attachments already gone */
			old_release(&old[0]);
			old_release(&old[1]);
		}
		side_attach(dev, rec, KVM_FT_MODE_REPLAY);
		side_attach(dev, rep, KVM_FT_MODE_RECORD);
		if (!(round % 2)) {
			old_release(&old[0]);
			old_release(&old[1]);
		}
		lead = 1 - lead;
	}
	printf("# %d swaps, %llu records in all, final states identical\n", NSWAPS,
	       (unsigned long long)total);
	fflush(stdout);
	for (int i = 0; i < 2; i++) {
		side_detach(&sd[i], &old[i]);
		old_release(&old[i]);
		vm_free(sd[i].vm);
	}
	close(dev);
}

/*
 * A detached VM attaches again while the old ft fd is still open (ftd keeps
 * it to drain the old ring); one not detached stays EBUSY; closing the old
 * fd later does not disturb the new attachment.
 */
TEST_F(swap, reattach_while_old_fd_open)
{
	struct vm_opts o = { .mem_size = MEM_SIZE };
	struct kvm_vm *vm = vm_create(&o, guest_swap, NULL);
	struct kvm_ft_info i1, i2;
	int dev = ft_open(), fd1, fd2, fd3;

	ASSERT_LE(0, dev);
	fd1 = ft_attach(dev, vm->vm_fd, KVM_FT_MODE_RECORD, 0, 0);
	ASSERT_LE(0, fd1);
	ASSERT_EQ(-EBUSY, ft_attach(dev, vm->vm_fd, KVM_FT_MODE_REPLAY, 0, 0));
	ASSERT_EQ(0, ioctl(fd1, KVM_FT_DETACH));
	fd2 = ft_attach(dev, vm->vm_fd, KVM_FT_MODE_REPLAY, 0, 0);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(-EBUSY, ft_attach(dev, vm->vm_fd, KVM_FT_MODE_RECORD, 0, 0));
	ASSERT_EQ(0, ioctl(fd1, KVM_FT_GET_INFO, &i1));
	ASSERT_EQ(0, ioctl(fd2, KVM_FT_GET_INFO, &i2));
	ASSERT_TRUE(i1.flags & KVM_FT_INFO_F_DETACHED);
	ASSERT_FALSE(i2.flags & KVM_FT_INFO_F_DETACHED);
	ASSERT_EQ(KVM_FT_MODE_REPLAY, i2.mode);
	ASSERT_NE(i1.vm_id, i2.vm_id);
	/* The old one's release leaves the new attachment in place. */
	close(fd1);
	ASSERT_EQ(-EBUSY, ft_attach(dev, vm->vm_fd, KVM_FT_MODE_RECORD, 0, 0));
	ASSERT_EQ(0, ioctl(fd2, KVM_FT_GET_INFO, &i2));
	ASSERT_FALSE(i2.flags & KVM_FT_INFO_F_DETACHED);
	/* Detached and closed: a third attachment. */
	ASSERT_EQ(0, ioctl(fd2, KVM_FT_DETACH));
	close(fd2);
	fd3 = ft_attach(dev, vm->vm_fd, KVM_FT_MODE_RECORD, 0, 0);
	ASSERT_LE(0, fd3);
	close(fd3);
	close(dev);
	vm_free(vm);
}

/* A vCPU thread that counts the EINTR returns of KVM_RUN (recorder, no reader). */
struct runner {
	struct kvm_vm *vm;
	volatile bool stop;
	volatile uint64_t eintr, exits;
	volatile int err;
	uint64_t rng;
};

static void *runner_fn(void *p)
{
	struct runner *t = p;
	struct kvm_run *run = t->vm->run;

	vcpu_thread_bind(t->vm);
	while (!t->stop) {
		if (ioctl(t->vm->vcpu_fd, KVM_RUN, 0) < 0) {
			run->immediate_exit = 0;
			if (errno == EINTR) {
				t->eintr++;
				continue;
			}
			t->err = errno;
			return NULL;
		}
		if (run->exit_reason != KVM_EXIT_IO) {
			t->err = 1000 + run->exit_reason;
			return NULL;
		}
		if (run->io.direction == KVM_EXIT_IO_IN) {
			uint64_t v = kt_rand(&t->rng);

			memcpy((uint8_t *)run + run->io.data_offset, &v, run->io.size);
		}
		t->exits++;
	}
	return NULL;
}

static uint32_t prod_flags(const struct ft_ring *r)
{
	return __atomic_load_n(&r->prod->flags, __ATOMIC_ACQUIRE);
}

TEST_F_TIMEOUT(swap, signal_ends_space_wait, 120)
{
	uint64_t seed = kt_seed("signal_ends_space_wait");
	struct vm_opts o = { .mem_size = MEM_SIZE };
	struct runner t = { .rng = seed | 1 };
	struct kvm_ft_stats st;
	struct recs rs = { 0 };
	uint64_t exits, waits;
	pthread_t tid;
	const char *bad;
	struct ft_vm f;
	double t0;

	ft_vm_setup(&f, &o, guest_swap, NULL, KVM_FT_RING_ORDER_MIN);
	VM_SET_GLOBAL(f.vm, gs.seed, seed);
	VM_SET_GLOBAL(f.vm, gs.spin_max, 100);
	t.vm = f.vm;
	ASSERT_EQ(0, pthread_create(&tid, NULL, runner_fn, &t));
	/* Nobody reads: the vCPU fills the ring and waits for space. */
	for (t0 = kt_now(); !(prod_flags(&f.ring) & KVM_FT_RING_F_WAITING) && kt_now() - t0 < 30;)
		usleep(1000);
	ASSERT_TRUE(prod_flags(&f.ring) & KVM_FT_RING_F_WAITING);
	ASSERT_EQ(0, t.err);
	exits = t.exits;
	ft_stats(f.ft_fd, &st);
	waits = st.ring_waits;
	vm_kick(f.vm);
	for (t0 = kt_now(); !t.eintr && kt_now() - t0 < 10;)
		usleep(1000);
	ASSERT_EQ(1, t.eintr) {
		ft_stats(f.ft_fd, &st);
		printf("# after the kick: err %d, exits %llu (were %llu), ring waits %llu, flags %#x, "
		       "error %u\n", t.err, (unsigned long long)t.exits, (unsigned long long)exits,
		       (unsigned long long)st.ring_waits, prod_flags(&f.ring), f.ring.prod->error);
		fflush(stdout);
	}
	/* The next KVM_RUN waits again before entering: no exit, no record. */
	for (t0 = kt_now(); kt_now() - t0 < 10; usleep(1000)) {
		ft_stats(f.ft_fd, &st);
		if (st.ring_waits > waits && (prod_flags(&f.ring) & KVM_FT_RING_F_WAITING))
			break;
	}
	ASSERT_EQ(waits + 1, st.ring_waits);
	usleep(50000);
	ASSERT_EQ(exits, t.exits);
	ASSERT_EQ(0, f.ring.prod->error);
	/* Read everything: the vCPU runs on, every record there, in order. */
	for (t0 = kt_now(); t.exits < exits + 200 && kt_now() - t0 < 60; usleep(1000))
		ft_drain(&f.ring, &rs);
	ASSERT_LE(exits + 200, t.exits);
	t.stop = true;
	for (;;) {
		ft_drain(&f.ring, &rs);
		vm_kick(f.vm);
		if (!pthread_tryjoin_np(tid, NULL))
			break;
		usleep(1000);
	}
	ft_drain(&f.ring, &rs);
	ASSERT_EQ(0, t.err);
	ASSERT_EQ(0, f.ring.prod->error);
	bad = recs_check_seq(&rs, 1, 0);
	ASSERT_EQ(NULL, bad) {
		printf("# %s\n", bad);
	}
	printf("# %zu records, gapless; the wait was interrupted once and resumed\n", rs.n);
	fflush(stdout);
	recs_free(&rs);
	ft_vm_teardown(&f);
}

TEST_HARNESS_MAIN
