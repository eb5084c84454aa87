// SPDX-License-Identifier: GPL-2.0
/*
 * Replay of synchronous inputs (KVM_FT_MODE_REPLAY).
 *
 * VM A records a guest that mixes every input it gets (PIO IN of host-random
 * data of 1, 2 and 4 bytes, RDTSC, CPUID, RDMSR, MMIO reads of 1, 2, 4 and 8
 * bytes of host-random data, REP INSB/INSW of random counts) into a 64-bit
 * state and outputs the state (two 4-byte OUTs) after every input; it also
 * writes the state to MMIO and outputs guest bytes with REP OUTSB. VM B is the same
 * guest with the same initial memory and registers but a different
 * host-random seed; its replay ring gets A's records, all but the last one
 * (A's final "done" ucall OUT). B must consume them all, wait at that OUT
 * for a record that never comes, and after a switch to LIVE make the same
 * ucall with exactly A's guest memory and registers and without having
 * emitted a single output. Since each mixing step is a bijection of the
 * input and the state is output after every input, any changed input or
 * output byte in the ring changes an output the kernel checks: every
 * mutation of the ring must be reported (DIVERGENCE or BAD_RECORD).
 */
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>
#include "ft_test.h"
#include "ft_replay.h"

#define MEM_SIZE	(16ULL << 20)
#define OUT_MAX		8192
#define DMA_AREA	1024

/* Program flags (the "mmio" argument of record() and replay()). */
#define P_MMIO		(1U << 0)	/* read MMIO before anything else */
#define P_ASYNC		(1U << 1)	/* IRQs and DMA from host threads, spin loops */
#define P_OUTPUTS	(1U << 2)	/* B attached with KVM_FT_ATTACH_F_REPLAY_OUTPUTS */
#define P_STRINGS	(1U << 3)	/* emulated accesses at every turn, strings 1 in 3 of them */
#define P_POS		(1U << 4)	/* A attached with position_us (POSITION landmarks) */

/* The guest's program and what it output, in guest memory. */
static struct gprog {
	uint64_t seed;
	uint64_t nops;
	uint64_t state;
	uint64_t outlen;
	uint8_t out[OUT_MAX];
	uint32_t mmio_first;	/* read MMIO before anything else */
	uint32_t hlt_first;	/* halt (interrupts off) before anything else */
	uint32_t async;		/* interrupts on, DMA area and IRQs folded, spins */
	uint32_t strings;	/* P_STRINGS */
	uint64_t spin_max;	/* longest exit-free loop (iterations) */
	uint8_t sbuf[3 * 4096] __attribute__((aligned(4096)));	/* string PIO */
	uint8_t dma[DMA_AREA] __attribute__((aligned(DMA_AREA)));	/* DMA target */
} gp;

static inline uint16_t inw_(uint16_t port)
{
	uint16_t v;

	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

static inline uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v;
	h *= 0x9e3779b97f4a7c15ULL;	/* odd: a bijection */
	h ^= h >> 29;			/* a bijection */
	return h;
}

static void gout_byte(uint8_t b)
{
	if (gp.outlen < OUT_MAX)
		gp.out[gp.outlen] = b;
	gp.outlen++;
}

static void gout(uint32_t v)
{
	outl(OUTPUT_PORT, v);
	for (int i = 0; i < 4; i++)
		gout_byte((uint8_t)(v >> (8 * i)));
}

/*
 * String PIO with random counts and buffer offsets: INS of up to 64
 * elements, one in 32 of up to 3000 bytes (chunks of up to 1024 bytes that
 * cross pages: each an exit of its own; the emulator in KVM handles every
 * element, which is slow under TCG), REP OUTSB of up to 8 bytes, an exit
 * per element (user space gets each).
 */
static uint64_t string_pio(uint64_t h, uint64_t s)
{
	uint64_t off = (s >> 32) % 4096, n = (s >> 16) % 32 ? 64 : 1500;

	switch ((s >> 8) % 3) {
	case 0:
		n = 1 + (s >> 20) % (2 * n);
		rep_insb(RANDOM_PORT, gp.sbuf + off, n);
		break;
	case 1:
		n = 2 * (1 + (s >> 20) % n);
		rep_insw(RANDOM_PORT, gp.sbuf + off, n / 2);
		break;
	default:
		n = 1 + (s >> 20) % 8;
		rep_outsb(OUTPUT_PORT, gp.sbuf + off, n);
		for (uint64_t i = 0; i < n; i++)
			gout_byte(gp.sbuf[off + i]);
		return mix(h, n);
	}
	for (uint64_t i = 0; i < n; i++)
		h = mix(h, gp.sbuf[off + i]);
	return h;
}

/*
 * Async programs fold the DMA area and the interrupts taken so far (count
 * and a hash of every vector and RIP) into the state between any two exits,
 * so an IRQ or DMA moved, changed or dropped changes the next output.
 */
static uint64_t fold_async(uint64_t h)
{
	const volatile uint64_t *w = (const volatile uint64_t *)gp.dma;

	if (!gp.async)
		return h;
	for (int i = 0; i < DMA_AREA / 8; i++)
		h = mix(h, w[i]);
	return mix(h, guest_irq.hash ^ guest_irq.count);
}

/*
 * An MMIO read of 1, 2, 4 or 8 bytes anywhere in the region, an MMIO write
 * of the state (an output: replay checks its data), or string PIO (slow
 * under TCG, where KVM emulates each element: one in 4 of these turns,
 * unless P_STRINGS).
 */
static uint64_t emul_op(uint64_t h, uint64_t s)
{
	uint64_t gpa = VM_MMIO_BASE + ((s >> 12) % (VM_MMIO_SIZE / 8)) * 8;
	unsigned int size = 1U << ((s >> 8) % 4);

	switch ((s >> 52) % 3) {
	case 0:
		return mix(h, mmio_read_n(gpa, size));
	case 1:
		mmio_write_n(gpa, size, h);
		return h;
	}
	if (gp.strings || (s >> 40) % 4 == 0)
		return string_pio(h, s);
	return mix(h, mmio_read_n(gpa, size));
}

static void guest_mix(void *arg)
{
	static const uint32_t leaves[][2] = {
		{ 0, 0 }, { 1, 0 }, { 7, 0 }, { 0xd, 1 }, { 0x80000000, 0 }, { 0x80000001, 0 },
	};
	uint64_t s = gp.seed | 1, h = 0x243f6a8885a308d3ULL;

	if (gp.hlt_first)
		__asm__ volatile("cli; hlt" : : : "memory");
	if (gp.mmio_first)
		h = mix(h, mmio_read64(VM_MMIO_BASE));
	if (gp.async)
		sti();
	for (uint64_t i = 0; i < gp.nops; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		h = fold_async(h);
		switch (s % (gp.async ? 7 : 6)) {
		case 0:
			h = mix(h, inb(RANDOM_PORT));
			break;
		case 1:
			h = mix(h, inw_(RANDOM_PORT));
			break;
		case 2:
			h = mix(h, inl(RANDOM_PORT));
			break;
		case 3:
			h = mix(h, rdtsc());
			break;
		case 4: {
			uint32_t r[4];
			const uint32_t *l = leaves[(s >> 8) % 6];

			cpuid(l[0], l[1], r);
			for (int j = 0; j < 4; j++)
				h = mix(h, r[j]);
			break;
		}
		case 5:
			h = mix(h, rdmsr(MSR_IA32_TSC));
			break;
		case 6:		/* exit-free: queued inputs wait for the next exit */
			for (uint64_t j = (s >> 20) % gp.spin_max; j; j--) {
				h = mix(h, j);
				__asm__ volatile("" : "+r"(h));
			}
			break;
		}
		/* One turn in 8 (P_STRINGS: every turn) an emulated access too. */
		if ((s >> 48) % (gp.strings ? 1 : 8) == 0) {
			h = fold_async(h);
			h = emul_op(h, s);
		}
		h = fold_async(h);
		gout((uint32_t)h);
		h = fold_async(h);
		gout((uint32_t)(h >> 32));
	}
	if (gp.async)
		cli();
	gp.state = h;
}

/* ---- runs ---- */

struct run_result {
	struct kvm_vm *vm;
	struct kvm_regs regs;
	int64_t r;
};

static void set_prog(struct kvm_vm *vm, uint64_t gseed, uint64_t nops, unsigned int fl)
{
	VM_SET_GLOBAL(vm, gp.seed, gseed);
	VM_SET_GLOBAL(vm, gp.nops, nops);
	VM_SET_GLOBAL(vm, gp.mmio_first, fl & P_MMIO ? 1 : 0);
	VM_SET_GLOBAL(vm, gp.async, fl & P_ASYNC ? 1 : 0);
	VM_SET_GLOBAL(vm, gp.strings, fl & P_STRINGS ? 1 : 0);
	VM_SET_GLOBAL(vm, gp.spin_max, 1 + gseed % 50000);
}

/* Record the guest on a fresh VM; leaves it at its DONE ucall. */
static void record(int dev, uint64_t gseed, uint64_t hseed, uint64_t nops, unsigned int mmio,
		   struct recs *rs, struct run_result *res)
{
	struct vm_opts o = { .mem_size = MEM_SIZE, .log_io = true };
	struct ft_ring ring;
	struct ucall uc;
	int fd, r;

	res->vm = vm_create(&o, guest_mix, NULL);
	set_prog(res->vm, gseed, nops, mmio);
	vm_seed(res->vm, hseed);
	fd = ft_attach_pos(dev, res->vm->vm_fd, KVM_FT_MODE_RECORD, 0, 0, 0,
			   mmio & P_POS ? KVM_FT_POSITION_US_SUGGESTED : 0);
	KT_ASSERT(fd >= 0, "attach RECORD: %s", strerror(-fd));
	r = ft_ring_map(&ring, fd);
	KT_ASSERT(!r, "map: %s", strerror(-r));
	if (mmio & P_ASYNC) {
		/* Random vector, intervals of 100..1000 us: tens per run. */
		vm_ft_async(res->vm, fd, false);
		vm_irq_thread_start(res->vm, 32 + (uint32_t)(hseed % 224), 100, 1000, hseed);
		vm_dma_thread_start(res->vm, (uint64_t)(uintptr_t)gp.dma, DMA_AREA, 64, 100, 1000,
				    hseed * 7 + 1);
	}
	res->r = vcpu_run_raw(res->vm, &uc);
	vm_dma_thread_stop(res->vm);
	vm_irq_thread_stop(res->vm);
	KT_ASSERT(res->r == UCALL_DONE, "recorded guest ended with %lld", (long long)res->r);
	KT_ASSERT(!ioctl(res->vm->vcpu_fd, KVM_GET_REGS, &res->regs), "GET_REGS");
	ft_drain(&ring, rs);
	/* The DONE ucall's register digest is never written either. */
	if (rs->n && recs_at(rs, rs->n - 1)->type == KVM_FT_REC_REG_DIGEST)
		rs->n--;
	KT_ASSERT(rs->n >= 2, "only %zu records", rs->n);
	{
		const struct kvm_ft_rec_pio *last = (const void *)recs_at(rs, rs->n - 1);

		KT_ASSERT(last->hdr.type == KVM_FT_REC_PIO_OUT && last->port == UCALL_PORT,
			  "last record is not the DONE ucall");
	}
	ft_ring_unmap(&ring);
	close(fd);
}

/* The stream B's replay ring gets. */
struct stream {
	uint8_t *buf;
	size_t len;
	uint64_t producer_fudge;	/* added to the final producer position */
};

static void stream_add(struct stream *s, const void *rec, uint32_t len)
{
	s->buf = realloc(s->buf, s->len + len);
	KT_ASSERT(s->buf, "realloc");
	memcpy(s->buf + s->len, rec, len);
	s->len += len;
}

/* Records 0 .. n-2 of @rs (not the DONE ucall) as they are. */
static void stream_from(struct stream *s, const struct recs *rs)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i + 1 < rs->n; i++)
		stream_add(s, recs_at(rs, i), recs_at(rs, i)->len);
}

/*
 * Replay @s on a fresh VM B (same program, host seed @hseed). Writes the
 * stream in one go (records split only by the ring's own pads) and runs
 * the vCPU; goes LIVE once everything is consumed.
 */
static void replay(int dev, uint64_t gseed, uint64_t hseed, uint64_t nops, unsigned int mmio,
		   const struct stream *s, struct run_result *res, struct rp *w,
		   struct kvm_ft_divergence *div)
{
	struct vm_opts o = { .mem_size = MEM_SIZE, .log_io = true };
	struct golive g = { .w = w };
	pthread_t t;
	struct ucall uc;
	size_t off = 0;
	int fd, r;

	res->vm = vm_create(&o, guest_mix, NULL);
	set_prog(res->vm, gseed, nops, mmio);
	vm_seed(res->vm, hseed);
	fd = ft_attach_digest(dev, res->vm->vm_fd, KVM_FT_MODE_REPLAY,
			      mmio & P_OUTPUTS ? KVM_FT_ATTACH_F_REPLAY_OUTPUTS : 0, 0, 0);
	KT_ASSERT(fd >= 0, "attach REPLAY: %s", strerror(-fd));
	r = rp_map(w, fd);
	KT_ASSERT(!r, "map replay ring: %s", strerror(-r));
	KT_ASSERT(w->st->magic == KVM_FT_REPLAY_MAGIC, "bad replay magic");
	if (mmio & P_ASYNC)
		vm_ft_async(res->vm, fd, true);
	while (off < s->len) {
		uint32_t len = ((const struct kvm_ft_rec *)(s->buf + off))->len;

		if (len < 8 || (len & 7) || len > KVM_FT_RING_RESERVE || off + len > s->len) {
			/* Forged: the rest as is (the 1 MiB default ring never wraps here). */
			KT_ASSERT(w->pos + s->len - off <= w->info.data_size, "stream too long");
			memcpy(w->data + w->pos, s->buf + off, s->len - off);
			w->pos += s->len - off;
			break;
		}
		rp_write(w, s->buf + off, len);
		off += len;
	}
	w->pos += s->producer_fudge;
	rp_publish(w);
	r = pthread_create(&t, NULL, golive_fn, &g);
	KT_ASSERT(!r, "pthread_create");
	res->r = vcpu_run_raw(res->vm, &uc);
	g.stop = true;
	pthread_join(t, NULL);
	if (res->r >= 0)
		KT_ASSERT(!ioctl(res->vm->vcpu_fd, KVM_GET_REGS, &res->regs), "GET_REGS");
	memset(div, 0xa5, sizeof(*div));
	KT_ASSERT(!ioctl(fd, KVM_FT_GET_DIVERGENCE, div), "GET_DIVERGENCE: %s",
		  strerror(errno));
}

static void replay_done(struct run_result *res, struct rp *w)
{
	int fd = w->fd;

	rp_unmap(w);
	close(fd);
	vm_free(res->vm);
}

/* The accesses of @kind the VMM of @vm served, in order, into @out (may be NULL). */
static size_t io_events(const struct kvm_vm *vm, uint32_t kind, struct io_event *out)
{
	size_t n = 0;

	for (size_t i = 0; i < vm->io_count; i++)
		if (vm->io_log[i].kind == kind) {
			if (out)
				out[n] = vm->io_log[i];
			n++;
		}
	return n;
}

/*
 * B ended at A's DONE ucall in A's exact state; its VMM saw exactly A's
 * outputs (PIO and MMIO writes) if attached with
 * KVM_FT_ATTACH_F_REPLAY_OUTPUTS, else none, and never an input: no PIO IN
 * (string or not), no MMIO read.
 */
static void assert_same(struct __test_metadata *_metadata, const struct run_result *a,
			const struct run_result *b, const struct rp *w,
			const struct kvm_ft_divergence *div, size_t nrec)
{
	struct kvm_ft_stats st;

	if (div->error)
		printf("# B stopped: error %u reason %u seq %llu landmark %llu; record type %u rip %#llx addr %#llx size %u value %#llx; exit type %u rip %#llx addr %#llx size %u value %#llx\n",
		       div->error, div->reason, (unsigned long long)div->seq,
		       (unsigned long long)div->landmark, div->expected.type,
		       (unsigned long long)div->expected.rip, (unsigned long long)div->expected.addr,
		       div->expected.size, (unsigned long long)div->expected.value,
		       div->actual.type, (unsigned long long)div->actual.rip,
		       (unsigned long long)div->actual.addr, div->actual.size,
		       (unsigned long long)div->actual.value);
	fflush(stdout);
	ASSERT_EQ(0, div->error);
	ASSERT_EQ(0, w->st->error);
	ASSERT_EQ(UCALL_DONE, b->r);
	ASSERT_EQ(0, memcmp(&a->regs, &b->regs, sizeof(a->regs)));
	ASSERT_EQ(0, memcmp(a->vm->mem, b->vm->mem, MEM_SIZE));
	/* The output stream A emitted is what B's guest says it output... */
	ASSERT_EQ(a->vm->output_len, VM_GET_GLOBAL(b->vm, gp.outlen));
	ASSERT_EQ(0, memcmp(a->vm->output, vm_gpa2hva(b->vm, (uint64_t)(uintptr_t)gp.out, 1),
			    a->vm->output_len < OUT_MAX ? a->vm->output_len : OUT_MAX));
	ASSERT_EQ(0, io_events(b->vm, IO_PIO_IN, NULL));
	ASSERT_EQ(0, io_events(b->vm, IO_MMIO_READ, NULL));
	if (w->info.flags & KVM_FT_INFO_F_REPLAY_OUTPUTS) {
		size_t n = io_events(a->vm, IO_MMIO_WRITE, NULL);
		struct io_event *ea = calloc(n + 1, sizeof(*ea)), *eb = calloc(n + 1, sizeof(*eb));

		/* ...and B's VMM got each OUT after the kernel checked it... */
		ASSERT_EQ(a->vm->output_len, b->vm->output_len);
		ASSERT_EQ(0, memcmp(a->vm->output, b->vm->output, a->vm->output_len));
		/* ...and each MMIO write. */
		ASSERT_TRUE(ea && eb);
		ASSERT_EQ(n, io_events(b->vm, IO_MMIO_WRITE, NULL));
		io_events(a->vm, IO_MMIO_WRITE, ea);
		io_events(b->vm, IO_MMIO_WRITE, eb);
		ASSERT_EQ(0, memcmp(ea, eb, n * sizeof(*ea)));
		free(ea);
		free(eb);
	} else {
		/* ...or none: the kernel checked each OUT instead. */
		ASSERT_EQ(0, b->vm->output_len);
		ASSERT_EQ(0, io_events(b->vm, IO_MMIO_WRITE, NULL));
	}
	ft_stats(w->fd, &st);
	ASSERT_EQ(nrec, st.records);
	ASSERT_EQ(nrec, w->st->next_seq - 1);
}

FIXTURE(replay) {
	int dev;
};

FIXTURE_SETUP(replay)
{
	self->dev = ft_open();
	ASSERT_LE(0, self->dev);
}

FIXTURE_TEARDOWN(replay)
{
	close(self->dev);
}

#define NSEEDS	200

/*
 * Proves: over NSEEDS random programs and host seeds, B replays A to the
 * identical guest memory, registers and output stream (KVM_FT_SEED=n runs
 * only seed n). Three seeds in four also take IRQs and DMA queued by host
 * threads at random times and run exit-free loops; B gets them from the log
 * only, at the same landmarks; two of those three record with POSITION
 * landmarks (position_us, KVM_FT_POSITION_US_SUGGESTED), so IRQs and DMA
 * also arrive in the middle of exit-free loops, and B must find every
 * position again. Every other seed attaches B with
 * KVM_FT_ATTACH_F_REPLAY_OUTPUTS: B's VMM then sees exactly A's outputs.
 */
TEST_F_TIMEOUT(replay, identical_state_random_seeds, 240)
{
	const char *env = getenv("KVM_FT_SEED"), *n = getenv("KVM_FT_SEEDS");
	int nseeds = env && *env ? 1 : n && *n ? atoi(n) : NSEEDS;
	uint64_t base = kt_seed("replay.identical_state_random_seeds");
	uint64_t total = 0, nintr = 0, ndma = 0, npos = 0, nmr = 0, nmw = 0, nsin = 0, nsout = 0;
	double trec = 0, trep = 0;

	for (int i = 0; i < nseeds; i++) {
		uint64_t seed = base + (uint64_t)i, rng = seed * 2 + 1, nops;
		struct run_result a, b;
		struct kvm_ft_divergence div;
		struct stream s;
		struct recs rs = {};
		struct rp w;

		/* Two async seeds in three with POSITION landmarks (position_us). */
		unsigned int fl = (seed % 4 ? P_ASYNC : 0) | (seed % 2 ? P_OUTPUTS : 0) |
				  (seed % 4 && seed % 3 ? P_POS : 0);

		printf("# seed %llu (KVM_FT_SEED=%llu)%s\n", (unsigned long long)seed,
		       (unsigned long long)seed, fl & P_POS ? " positions on" : "");
		fflush(stdout);
		struct kvm_ft_stats st;

		double t0 = kt_now(), t1;

		nops = 20 + kt_rand(&rng) % 80;	/* the emulated accesses are slow under TCG */
		record(self->dev, seed, kt_rand(&rng), nops, fl, &rs, &a);
		t1 = kt_now();
		trec += t1 - t0;
		stream_from(&s, &rs);
		replay(self->dev, seed, kt_rand(&rng) | 1, nops, fl, &s, &b, &w, &div);
		trep += kt_now() - t1;
		assert_same(_metadata, &a, &b, &w, &div, rs.n - 1);
		ft_stats(w.fd, &st);
		ASSERT_EQ(VM_GET_GLOBAL(a.vm, guest_irq.count), st.rec_count[KVM_FT_REC_INTR]);
		nintr += st.rec_count[KVM_FT_REC_INTR];
		ndma += st.rec_count[KVM_FT_REC_DMA];
		/* B found every position A logged (each one a landmark it replayed). */
		{
			uint64_t logged = 0;

			for (size_t k = 0; k + 1 < rs.n; k++)
				logged += recs_at(&rs, k)->type == KVM_FT_REC_POSITION;
			ASSERT_EQ(logged, st.positions);
			if (!(fl & P_POS))
				ASSERT_EQ(0, logged);
		}
		npos += st.positions;
		nmr += st.rec_count[KVM_FT_REC_MMIO_READ];
		nmw += st.rec_count[KVM_FT_REC_MMIO_WRITE];
		for (size_t k = 0; k < rs.n; k++) {
			const struct kvm_ft_rec_pio *p = (const void *)recs_at(&rs, k);

			nsin += p->hdr.type == KVM_FT_REC_PIO_IN && p->count > 1;
			nsout += p->hdr.type == KVM_FT_REC_PIO_OUT && p->port == OUTPUT_PORT &&
				 p->size == 1;
		}
		total += rs.n;
		replay_done(&b, &w);
		vm_free(a.vm);
		free(s.buf);
		recs_free(&rs);
	}
	printf("# %d seeds, %llu records replayed, %llu of them INTR, %llu DMA, %llu POSITION\n",
	       nseeds, (unsigned long long)total, (unsigned long long)nintr,
	       (unsigned long long)ndma, (unsigned long long)npos);
	printf("# %llu MMIO reads, %llu MMIO writes, %llu string IN chunks, %llu OUTSB elements\n",
	       (unsigned long long)nmr, (unsigned long long)nmw, (unsigned long long)nsin,
	       (unsigned long long)nsout);
	printf("# recording took %.1f s, replaying %.1f s\n", trec, trep);
	if (nseeds >= NSEEDS)
		ASSERT_TRUE(nintr > 0 && ndma > 0 && npos > 0 && nmr > 0 && nmw > 0 && nsin > 0 && nsout > 0);
	fflush(stdout);
}

/*
 * make soak: KVM_FT_SEEDS=n runs n seeds above; give it the time of n / NSEEDS
 * make-check runs (the harness reads the timeout from the test's object).
 */
static void __attribute__((constructor)) soak_timeout(void)
{
	const char *n = getenv("KVM_FT_SEEDS");

	if (n && atoi(n) > NSEEDS)
		_replay_identical_state_random_seeds_object.timeout =
			(int)(240LL * atoi(n) / NSEEDS);
}

/* Proves: without replay, the same program with another host seed ends elsewhere. */
TEST_F(replay, live_runs_differ)
{
	struct run_result a, b;
	struct recs ra = {}, rb = {};

	record(self->dev, 7, 1, 60, false, &ra, &a);
	record(self->dev, 7, 2, 60, false, &rb, &b);
	ASSERT_EQ(ra.n, rb.n);
	ASSERT_NE(0, memcmp(a.vm->mem, b.vm->mem, MEM_SIZE));
	ASSERT_NE(0, memcmp(a.vm->output, b.vm->output, a.vm->output_len));
	vm_free(a.vm);
	vm_free(b.vm);
	recs_free(&ra);
	recs_free(&rb);
}

enum mut {
	M_FLIP,		/* xor one byte of one record */
	M_TRUNCATE,	/* publish only a prefix of one record */
	M_SWAP,		/* swap two adjacent records */
	M_SWAP_RENUM,	/* ... and renumber seq/landmark */
	M_DROP,		/* drop one record */
	M_DROP_RENUM,	/* ... and renumber */
	M_SEQ,		/* forge seq */
	M_LEN,		/* forge len */
	M_LANDMARK,	/* forge landmark */
	M_PRODUCER,	/* invalid producer position */
	M_TYPE,		/* unknown type */
	M_COUNT,
};

static const char *const mut_name[] = {
	"flip", "truncate", "swap", "swap+renumber", "drop", "drop+renumber",
	"seq", "len", "landmark", "producer", "type",
};

/* Apply mutation @m to record @i of A's records; returns the stream. */
static void mutate(struct stream *s, const struct recs *rs, enum mut m, size_t i,
		   uint64_t *rng)
{
	size_t n = rs->n - 1;	/* the DONE ucall is never written */
	uint64_t seq = 1, lm = 0;

	memset(s, 0, sizeof(*s));
	for (size_t k = 0; k < n; k++) {
		size_t src = k;
		uint8_t rec[KVM_FT_RING_RESERVE];
		struct kvm_ft_rec *h = (void *)rec;
		uint32_t len;

		if ((m == M_SWAP || m == M_SWAP_RENUM) && (k == i || k == i + 1))
			src = k == i ? i + 1 : i;
		if ((m == M_DROP || m == M_DROP_RENUM) && k == i)
			continue;
		len = recs_at(rs, src)->len;
		memcpy(rec, recs_at(rs, src), len);
		if (m == M_SWAP_RENUM || m == M_DROP_RENUM) {
			h->seq = seq;
			h->landmark = lm += !(h->flags & KVM_FT_RF_ASYNC);
		}
		seq++;
		if (k == i) {
			switch (m) {
			case M_FLIP:
				rec[kt_rand(rng) % len] ^= (uint8_t)(1 + kt_rand(rng) % 255);
				break;
			case M_TRUNCATE:
				/* A prefix that is a multiple of 8: the producer stays aligned. */
				stream_add(s, rec, 8 * (1 + (uint32_t)(kt_rand(rng) % (len / 8 - 1))));
				return;
			case M_SEQ:
				h->seq += 1 + kt_rand(rng) % 1000;
				break;
			case M_LEN: {
				static const uint32_t bad[] = { 0, 4, 12, 8, 0xfffffff8 };
				uint32_t pick = (uint32_t)(kt_rand(rng) % 7);

				h->len = pick < 5 ? bad[pick] : pick == 5 ? len + 8 : len - 8;
				break;
			}
			case M_LANDMARK:
				h->landmark += kt_rand(rng) % 2 ? 1 : (uint64_t)-1;
				break;
			case M_TYPE:
				h->type = (uint16_t)(KVM_FT_REC_MEM_DIGEST + 1 +
						     kt_rand(rng) % (0x10000 - KVM_FT_REC_MEM_DIGEST - 1));
				break;
			case M_PRODUCER:
				stream_add(s, rec, len);
				s->producer_fudge = kt_rand(rng) % 2 ? 4 : (1ULL << 20) + 8;
				return;
			default:
				break;
			}
		}
		stream_add(s, rec, len);
	}
}

/* Records @i and @j are equal but for seq and landmark. */
static bool same_but_number(const struct recs *rs, size_t i, size_t j)
{
	const struct kvm_ft_rec *a = recs_at(rs, i), *b = recs_at(rs, j);

	return a->len == b->len && a->type == b->type && a->flags == b->flags &&
	       !memcmp(a + 1, b + 1, a->len - sizeof(*a));
}

/* An element of a REP OUTSB (an exit of its own, no guest code after it). */
static bool outsb_element(const struct kvm_ft_rec *r)
{
	const struct kvm_ft_rec_pio *p = (const void *)r;

	return r->type == KVM_FT_REC_PIO_OUT && p->port == OUTPUT_PORT && p->size == 1;
}

/*
 * Proves: every mutation of the replay ring (byte flips anywhere in a
 * record, truncation, reordering, dropping, forged seq/len/landmark/type,
 * invalid producer) stops B with DIVERGENCE or BAD_RECORD, KVM_RUN EIO,
 * the status page's error and a report; never a splat, never a clean run.
 */
TEST_F_TIMEOUT(replay, mutations_always_detected, 120)
{
	uint64_t seed = kt_seed("replay.mutations_always_detected"), rng = seed | 1;
	int counts[M_COUNT] = {};
	struct run_result a;
	struct recs rs = {};

	record(self->dev, seed, kt_rand(&rng), 40, false, &rs, &a);
	/* 8 of each kind, then 32 more byte flips (inputs, outputs, headers). */
	for (int t = 0; t < 8 * M_COUNT + 32; t++) {
		enum mut m = t < 8 * M_COUNT ? (enum mut)(t % M_COUNT) : M_FLIP;
		size_t i = kt_rand(&rng) % (rs.n - 2);	/* i + 1 <= n - 2 too */

		/* Swapping two equal records (REP OUTSB of equal bytes) changes nothing. */
		while ((m == M_SWAP || m == M_SWAP_RENUM) && same_but_number(&rs, i, i + 1))
			i = kt_rand(&rng) % (rs.n - 2);
		struct kvm_ft_divergence div;
		struct run_result b;
		struct stream s;
		struct rp w;

		mutate(&s, &rs, m, i, &rng);
		replay(self->dev, seed, kt_rand(&rng), 40, false, &s, &b, &w, &div);
		if (div.error != KVM_FT_ERR_DIVERGENCE && div.error != KVM_FT_ERR_BAD_RECORD) {
			printf("# not detected: %s of record %zu (seq %llu), error %u, run %lld\n",
			       mut_name[m], i, (unsigned long long)recs_at(&rs, i)->seq,
			       div.error, (long long)b.r);
			fflush(stdout);
		}
		ASSERT_TRUE(div.error == KVM_FT_ERR_DIVERGENCE ||
			    div.error == KVM_FT_ERR_BAD_RECORD);
		ASSERT_EQ(-EIO, b.r);
		ASSERT_EQ(div.error, w.st->error);
		/* The exact error where the kind of mutation determines it. */
		switch (m) {
		case M_SEQ:
		case M_SWAP:
		case M_DROP:
			ASSERT_EQ(KVM_FT_ERR_BAD_RECORD, div.error);
			ASSERT_EQ(KVM_FT_DIV_SEQ, div.reason);
			break;
		case M_LANDMARK:
			ASSERT_EQ(KVM_FT_ERR_BAD_RECORD, div.error);
			ASSERT_EQ(KVM_FT_DIV_LANDMARK, div.reason);
			break;
		case M_PRODUCER:
			ASSERT_EQ(KVM_FT_ERR_BAD_RECORD, div.error);
			ASSERT_EQ(KVM_FT_DIV_PRODUCER, div.reason);
			ASSERT_EQ(0, div.pos);	/* found before the first record */
			break;
		case M_TRUNCATE:
			ASSERT_EQ(KVM_FT_ERR_BAD_RECORD, div.error);
			ASSERT_EQ(KVM_FT_DIV_LEN, div.reason);
			break;
		case M_LEN:
			ASSERT_EQ(KVM_FT_ERR_BAD_RECORD, div.error);
			ASSERT_TRUE(div.reason == KVM_FT_DIV_LEN || div.reason == KVM_FT_DIV_FORMAT);
			break;
		case M_TYPE:
			ASSERT_EQ(KVM_FT_ERR_BAD_RECORD, div.error);
			ASSERT_EQ(KVM_FT_DIV_FORMAT, div.reason);
			break;
		case M_SWAP_RENUM:
		case M_DROP_RENUM:
			ASSERT_EQ(KVM_FT_ERR_DIVERGENCE, div.error);
			/* A moved or dropped register digest is missing where due. */
			ASSERT_TRUE((div.reason >= KVM_FT_DIV_TYPE && div.reason <= KVM_FT_DIV_DATA) ||
				    div.reason == KVM_FT_DIV_REG_DIGEST);
			break;
		default:
			ASSERT_NE(0, div.reason);
			break;
		}
		/* Every record before the mutated one was consumed. */
		if (m != M_PRODUCER)
			ASSERT_LE(rs.off[i], w.st->consumer);
		counts[m]++;
		replay_done(&b, &w);
		free(s.buf);
	}
	for (int m = 0; m < M_COUNT; m++)
		printf("# %s: %d detected\n", mut_name[m], counts[m]);
	fflush(stdout);
	vm_free(a.vm);
	recs_free(&rs);
}

enum amut {
	A_VECTOR,	/* INTR: another valid vector */
	A_RIP,		/* INTR: another delivery RIP */
	A_FLAGS,	/* INTR: KVM_FT_INTR_F_LANDMARK cleared (a KVM_INTERRUPT one) */
	A_DROP,		/* drop the record, renumber */
	A_LATER,	/* move it after the next synchronous record (landmark + 1) */
	A_EARLIER,	/* move it before its synchronous record (landmark - 1) */
	A_DMA_DATA,	/* DMA: flip a data byte */
	A_DMA_GPA,	/* DMA: write 8 bytes off */
	A_DMA_LEN,	/* DMA: len not that of the record */
	A_COUNT,
};

static const char *const amut_name[] = {
	"intr vector", "intr rip", "intr flags", "drop", "later", "earlier",
	"dma data", "dma gpa", "dma len",
};

static bool rec_async(const struct kvm_ft_rec *r)
{
	return r->type == KVM_FT_REC_INTR || r->type == KVM_FT_REC_DMA;
}

/* Asynchronous in the landmark sense (register digests too). */
static bool rec_lm_async(const struct kvm_ft_rec *r)
{
	return r->flags & KVM_FT_RF_ASYNC;
}

/* A REP OUTSB element or an INS chunk: the instruction may exit again. */
static bool string_rec(const struct kvm_ft_rec *r)
{
	return outsb_element(r) ||
	       (r->type == KVM_FT_REC_PIO_IN && ((const struct kvm_ft_rec_pio *)r)->count > 1);
}

/* A synchronous record within two landmarks of async record @i is a string PIO one. */
static bool near_string(const struct recs *rs, size_t i)
{
	size_t j, seen;

	for (j = i, seen = 0; j-- > 0 && seen < 2;)
		if (!rec_lm_async(recs_at(rs, j)) && (seen++, string_rec(recs_at(rs, j))))
			return true;
	for (j = i + 1, seen = 0; j < rs->n && seen < 2; j++)
		if (!rec_lm_async(recs_at(rs, j)) && (seen++, string_rec(recs_at(rs, j))))
			return true;
	return false;
}

/*
 * Mutation @m of asynchronous record @i of A's records (the DONE ucall left
 * out); every record is renumbered (seq, landmark) so that only @m differs.
 */
static void amutate(struct stream *s, const struct recs *rs, enum amut m, size_t i,
		    uint64_t *rng)
{
	size_t n = rs->n - 1, order[n], k = 0, j, before = n, after = n;
	uint64_t seq = 1, lm = 0;

	/* The synchronous records around i: its landmark's, and the next one. */
	for (j = i; j-- > 0 && before == n;)
		if (!rec_lm_async(recs_at(rs, j)))
			before = j;
	for (j = i + 1; j < n && after == n; j++)
		if (!rec_lm_async(recs_at(rs, j)))
			after = j;
	memset(s, 0, sizeof(*s));
	for (j = 0; j < n; j++) {
		if (j == i && (m == A_DROP || m == A_LATER || m == A_EARLIER))
			continue;
		if (j == before && m == A_EARLIER)
			order[k++] = i;
		order[k++] = j;
		if (j == after && m == A_LATER)
			order[k++] = i;
	}
	for (j = 0; j < k; j++) {
		uint8_t rec[KVM_FT_RING_RESERVE];
		struct kvm_ft_rec *h = (void *)rec;
		struct kvm_ft_rec_intr *in = (void *)rec;
		struct kvm_ft_rec_dma *d = (void *)rec;
		uint32_t len = recs_at(rs, order[j])->len;

		memcpy(rec, recs_at(rs, order[j]), len);
		h->seq = seq++;
		h->landmark = rec_lm_async(h) ? lm : ++lm;
		if (order[j] == i) {
			switch (m) {
			case A_VECTOR:
				in->vector = 32 + (in->vector - 32 + 1 + kt_rand(rng) % 223) % 224;
				break;
			case A_RIP:
				in->rip ^= 1ULL << (kt_rand(rng) % 12);
				break;
			case A_FLAGS:
				in->flags = 0;
				break;
			case A_DMA_DATA:
				d->data[kt_rand(rng) % d->len] ^= (uint8_t)(1 + kt_rand(rng) % 255);
				break;
			case A_DMA_GPA:
				d->gpa += d->gpa - (uint64_t)(uintptr_t)gp.dma >= 8 ? -8ULL : 8;
				break;
			case A_DMA_LEN: {
				static const uint32_t bad[] = { 0, 8, KVM_FT_DMA_MAX + 1 };
				uint32_t pick = (uint32_t)(kt_rand(rng) % 3);

				d->len = pick == 1 ? d->len + 8 : bad[pick];
				break;
			}
			default:
				break;
			}
		}
		stream_add(s, rec, len);
	}
}

/*
 * Proves: every mutation of an INTR or DMA record in the replay ring (its
 * vector, RIP, flags, data, address or length changed; dropped; moved one
 * landmark later or earlier) stops B with a report: the guest folds the DMA
 * area and its interrupts into the state it outputs between any two exits,
 * and replay checks each INTR's RIP and that the guest can take it there.
 */
TEST_F_TIMEOUT(replay, async_mutations_always_detected, 180)
{
	uint64_t seed = kt_seed("replay.async_mutations_always_detected"), rng = seed | 1;
	size_t targets[2][4096], nt[2] = {}, last_lm = 0;
	int counts[A_COUNT] = {};
	struct run_result a;
	struct recs rs = {};

	/* A run with enough of both kinds far enough from the end. */
	for (int tries = 0;; tries++) {
		record(self->dev, seed, kt_rand(&rng), 80, P_ASYNC, &rs, &a);
		last_lm = recs_at(&rs, rs.n - 1)->landmark;
		nt[0] = nt[1] = 0;
		for (size_t i = 0; i < rs.n - 1; i++) {
			const struct kvm_ft_rec *r = recs_at(&rs, i);

			/*
			 * Between two exits of one string PIO instruction no guest
			 * code runs that could tell an input moved by one
			 * landmark: not a target.
			 */
			if (rec_async(r) && r->landmark >= 2 && r->landmark + 4 <= last_lm &&
			    !near_string(&rs, i) && nt[r->type == KVM_FT_REC_DMA] < 4096)
				targets[r->type == KVM_FT_REC_DMA][nt[r->type == KVM_FT_REC_DMA]++] = i;
		}
		if (nt[0] >= 4 && nt[1] >= 4)
			break;
		ASSERT_LT(tries, 5) TH_LOG("too few async records: %zu INTR, %zu DMA", nt[0], nt[1]);
		vm_free(a.vm);
		recs_free(&rs);
	}
	printf("# %zu records, %zu INTR and %zu DMA targets\n", rs.n, nt[0], nt[1]);
	fflush(stdout);
	for (int t = 0; t < 8 * A_COUNT; t++) {
		enum amut m = (enum amut)(t % A_COUNT);
		bool dma = m >= A_DMA_DATA || (m >= A_DROP && (t / A_COUNT) % 2);
		size_t i = targets[dma][kt_rand(&rng) % nt[dma]];
		struct kvm_ft_divergence div;
		struct run_result b;
		struct stream s;
		struct rp w;

		amutate(&s, &rs, m, i, &rng);
		replay(self->dev, seed, kt_rand(&rng), 80, P_ASYNC, &s, &b, &w, &div);
		if (!div.error || b.r != -EIO)
			printf("# not detected: %s of %s record %zu (seq %llu), error %u, run %lld\n",
			       amut_name[m], dma ? "DMA" : "INTR", i,
			       (unsigned long long)recs_at(&rs, i)->seq, div.error, (long long)b.r);
		fflush(stdout);
		ASSERT_EQ(-EIO, b.r);
		ASSERT_EQ(div.error, w.st->error);
		switch (m) {
		case A_RIP:
			ASSERT_EQ(KVM_FT_ERR_DIVERGENCE, div.error);
			ASSERT_EQ(KVM_FT_DIV_RIP, div.reason);
			ASSERT_EQ(recs_at(&rs, i)->seq, div.seq);
			break;
		case A_FLAGS:
			ASSERT_EQ(KVM_FT_ERR_UNSUPPORTED, div.error);
			ASSERT_EQ(recs_at(&rs, i)->seq, div.seq);
			break;
		case A_DMA_LEN:
			ASSERT_EQ(KVM_FT_ERR_BAD_RECORD, div.error);
			ASSERT_EQ(KVM_FT_DIV_FORMAT, div.reason);
			break;
		default:
			ASSERT_EQ(KVM_FT_ERR_DIVERGENCE, div.error);
			break;
		}
		counts[m]++;
		replay_done(&b, &w);
		free(s.buf);
	}
	for (int m = 0; m < A_COUNT; m++)
		printf("# %s: %d detected\n", amut_name[m], counts[m]);
	fflush(stdout);
	vm_free(a.vm);
	recs_free(&rs);
}

/*
 * A's records (the DONE ucall left out), renumbered (seq, landmark), with
 * record @i dropped (@drop), or swapped with record @j (@j != 0), or
 * replaced by the @len bytes at @rec (its header's len as the caller left it).
 */
static void edit_stream(struct stream *s, const struct recs *rs, size_t i, size_t j,
			bool drop, const void *rec, uint32_t len)
{
	uint64_t seq = 1, lm = 0;

	memset(s, 0, sizeof(*s));
	for (size_t k = 0; k + 1 < rs->n; k++) {
		uint8_t buf[KVM_FT_RING_RESERVE + 64];
		struct kvm_ft_rec *h = (void *)buf;
		size_t src = j && k == i ? j : j && k == j ? i : k;
		uint32_t l;

		if (drop && k == i)
			continue;
		if (!j && rec && k == i) {
			l = len;
			memcpy(buf, rec, len);
		} else {
			l = recs_at(rs, src)->len;
			memcpy(buf, recs_at(rs, src), l);
		}
		h->seq = seq++;
		h->landmark = h->flags & KVM_FT_RF_ASYNC ? lm : ++lm;
		stream_add(s, buf, l);
	}
}

/* The emulated kinds of record. */
enum ekind { E_MMIO_READ, E_MMIO_WRITE, E_INS, E_OUTSB, E_KINDS };

static const char *const ekind_name[] = { "MMIO read", "MMIO write", "INS chunk", "OUTSB element" };

static int ekind_of(const struct kvm_ft_rec *r)
{
	const struct kvm_ft_rec_pio *p = (const void *)r;

	if (r->type == KVM_FT_REC_MMIO_READ)
		return E_MMIO_READ;
	if (r->type == KVM_FT_REC_MMIO_WRITE)
		return E_MMIO_WRITE;
	if (r->type == KVM_FT_REC_PIO_IN && p->count > 1)
		return E_INS;
	if (outsb_element(r))
		return E_OUTSB;
	return -1;
}

/*
 * Record a program with at least 3 records of each emulated kind well before
 * its end; returns its program seed.
 */
static uint64_t record_emul(int dev, uint64_t seed,
			uint64_t *rng, struct recs *rs, struct run_result *a,
			size_t targets[E_KINDS][64], size_t nt[E_KINDS])
{
	for (int tries = 0;; tries++) {
		uint64_t last;

		record(dev, seed + tries, kt_rand(rng), 60, P_STRINGS, rs, a);
		last = recs_at(rs, rs->n - 1)->landmark;
		memset(nt, 0, sizeof(size_t) * E_KINDS);
		for (size_t i = 0; i + 2 < rs->n; i++) {
			int k = ekind_of(recs_at(rs, i));

			if (k >= 0 && recs_at(rs, i)->landmark + 4 <= last && nt[k] < 64)
				targets[k][nt[k]++] = i;
		}
		if (nt[E_MMIO_READ] >= 3 && nt[E_MMIO_WRITE] >= 3 && nt[E_INS] >= 3 &&
		    nt[E_OUTSB] >= 3)
			return seed + tries;
		KT_ASSERT(tries < 10, "too few emulated records");
		vm_free(a->vm);
		recs_free(rs);
	}
}

enum emut { EM_ADDR, EM_SIZE, EM_DATA, EM_DROP, EM_SWAP, EM_COUNT };

static const char *const emut_name[] = { "address", "size", "data", "drop", "swap" };

/*
 * Proves: each mutation of an MMIO read, MMIO write, string IN chunk or
 * REP OUTSB element record (its gpa or port, its access size or element
 * count, its data, dropped, or swapped with the next synchronous record
 * that differs; every record renumbered) stops B with a DIVERGENCE, of the
 * precise reason where the checked field says it: a changed input shows in
 * the guest's next output.
 */
TEST_F_TIMEOUT(replay, emul_mutations_always_detected, 180)
{
	uint64_t seed = kt_seed("replay.emul_mutations_always_detected"), rng = seed | 1;
	size_t targets[E_KINDS][64], nt[E_KINDS];
	int counts[E_KINDS][EM_COUNT] = {};
	struct run_result a;
	struct recs rs = {};

	uint64_t gseed = record_emul(self->dev, seed, &rng, &rs, &a, targets, nt);

	for (int t = 0; t < E_KINDS * EM_COUNT; t++) {
		enum ekind k = (enum ekind)(t % E_KINDS);
		enum emut m = (enum emut)((t / E_KINDS) % EM_COUNT);
		size_t i = targets[k][kt_rand(&rng) % nt[k]], j = 0;
		uint8_t rec[KVM_FT_RING_RESERVE + 64] = {};
		struct kvm_ft_rec_mmio *mm = (void *)rec;
		struct kvm_ft_rec_pio *p = (void *)rec;
		struct kvm_ft_divergence div;
		uint32_t len = recs_at(&rs, i)->len;
		uint32_t want = 0;
		struct run_result b;
		struct stream s;
		struct rp w;

		memcpy(rec, recs_at(&rs, i), len);
		switch (m) {
		case EM_ADDR:
			if (k <= E_MMIO_WRITE)
				mm->gpa ^= 8;
			else
				p->port ^= 1;
			want = KVM_FT_DIV_ADDR;
			break;
		case EM_SIZE:
			if (k <= E_MMIO_WRITE) {
				uint32_t nl = mm->len == 8 ? 4 : mm->len * 2;

				if (nl < mm->len)
					memset(mm->data + nl, 0, 8 - nl);
				mm->len = nl;
			} else {
				/* One element more (zero): the guest does one less. */
				p->count++;
				len = (uint32_t)((sizeof(*p) + (uint64_t)p->size * p->count + 7) & ~7ULL);
				p->hdr.len = len;
			}
			want = KVM_FT_DIV_SIZE;
			break;
		case EM_DATA:
			if (k <= E_MMIO_WRITE)
				mm->data[kt_rand(&rng) % mm->len] ^= (uint8_t)(1 + kt_rand(&rng) % 255);
			else
				p->data[kt_rand(&rng) % (p->size * p->count)] ^=
					(uint8_t)(1 + kt_rand(&rng) % 255);
			/* An output is compared; an input shows in the next output. */
			want = k == E_MMIO_WRITE || k == E_OUTSB ? KVM_FT_DIV_DATA : 0;
			break;
		case EM_DROP:
			break;
		case EM_SWAP:
			for (j = i + 1; rec_lm_async(recs_at(&rs, j)) || same_but_number(&rs, i, j); j++)
				;
			break;
		default:
			break;
		}
		edit_stream(&s, &rs, i, j, m == EM_DROP, rec, len);
		replay(self->dev, gseed, kt_rand(&rng), 60, P_STRINGS, &s, &b, &w, &div);
		if (div.error != KVM_FT_ERR_DIVERGENCE || b.r != -EIO)
			printf("# not detected: %s of %s record %zu (seq %llu), error %u reason %u, run %lld\n",
			       emut_name[m], ekind_name[k], i,
			       (unsigned long long)recs_at(&rs, i)->seq, div.error, div.reason,
			       (long long)b.r);
		fflush(stdout);
		ASSERT_EQ(-EIO, b.r);
		ASSERT_EQ(KVM_FT_ERR_DIVERGENCE, div.error);
		ASSERT_EQ(div.error, w.st->error);
		if (want)
			ASSERT_EQ(want, div.reason);
		if (want && m != EM_DATA)
			ASSERT_EQ(recs_at(&rs, i)->seq, div.seq);
		counts[k][m]++;
		replay_done(&b, &w);
		free(s.buf);
	}
	for (int k = 0; k < E_KINDS; k++)
		printf("# %s: %d address, %d size, %d data, %d drop, %d swap detected\n",
		       ekind_name[k], counts[k][EM_ADDR], counts[k][EM_SIZE], counts[k][EM_DATA],
		       counts[k][EM_DROP], counts[k][EM_SWAP]);
	fflush(stdout);
	vm_free(a.vm);
	recs_free(&rs);
}

/*
 * Proves: hostile MMIO and string PIO records (MMIO len 0, 9 or huge,
 * reserved field or bytes past len set, record len of another type; PIO
 * count inconsistent with the record's len, count 0 or 0xffffffff, size
 * 3) stop B with BAD_RECORD (FORMAT) at that record; never a splat.
 */
TEST_F_TIMEOUT(replay, hostile_emul_records, 120)
{
	uint64_t seed = kt_seed("replay.hostile_emul_records"), rng = seed | 1;
	size_t targets[E_KINDS][64], nt[E_KINDS];
	struct run_result a;
	struct recs rs = {};
	int n = 0;

	uint64_t gseed = record_emul(self->dev, seed, &rng, &rs, &a, targets, nt);

	for (int t = 0; t < 11; t++) {
		bool mmio = t < 6;
		size_t i = mmio ? targets[t % 2 ? E_MMIO_WRITE : E_MMIO_READ][kt_rand(&rng) % 3] :
				  targets[E_INS][kt_rand(&rng) % 3];
		uint8_t rec[KVM_FT_RING_RESERVE + 64] = {};
		struct kvm_ft_rec_mmio *mm = (void *)rec;
		struct kvm_ft_rec_pio *p = (void *)rec;
		uint32_t len = recs_at(&rs, i)->len;
		struct kvm_ft_divergence div;
		struct run_result b;
		struct stream s;
		struct rp w;

		memcpy(rec, recs_at(&rs, i), len);
		switch (t) {
		case 0: mm->len = 0; break;
		case 1: mm->len = 9; break;
		case 2: mm->len = 0xfffffff8; break;
		case 3: mm->reserved = 1; break;
		case 4: mm->len = 1; mm->data[7] = 0x5a; break;
		case 5: len += 8; mm->hdr.len = len; break;	/* 56 bytes: not an MMIO record */
		/*
		 * len says count, not 2 * count + 8: 8 elements more at
		 * least, past the zero padding (a doubled run of 4 bytes or
		 * less still fits the record's len: a well-formed record).
		 */
		case 6: p->count = 2 * p->count + 8; break;
		case 7: p->count = 0xffffffff; break;
		case 8: p->count = 0; break;
		case 9: p->size = 3; break;
		case 10: p->count += 8; break;			/* len 8 elements too short */
		}
		edit_stream(&s, &rs, i, 0, false, rec, len);
		replay(self->dev, gseed, kt_rand(&rng), 60, P_STRINGS, &s, &b, &w, &div);
		ASSERT_EQ(-EIO, b.r);
		ASSERT_EQ(KVM_FT_ERR_BAD_RECORD, div.error) TH_LOG("hostile record %d", t);
		ASSERT_EQ(KVM_FT_DIV_FORMAT, div.reason);
		ASSERT_EQ(recs_at(&rs, i)->seq, div.seq);
		ASSERT_EQ(rs.off[i], div.pos);
		n++;
		replay_done(&b, &w);
		free(s.buf);
	}
	printf("# %d hostile records: BAD_RECORD each\n", n);
	fflush(stdout);
	vm_free(a.vm);
	recs_free(&rs);
}

/* Proves: a changed OUT byte is a DIVERGENCE report naming both sides. */
TEST_F(replay, divergence_report)
{
	struct kvm_ft_divergence div;
	struct run_result a, b;
	struct recs rs = {};
	struct kvm_ft_rec_pio *p;
	struct stream s;
	struct rp w;
	uint32_t want;
	size_t i;

	record(self->dev, 11, 3, 30, false, &rs, &a);
	stream_from(&s, &rs);
	/* The first output record (guest_mix outputs after every input). */
	for (i = 0; i < rs.n; i++)
		if (recs_at(&rs, i)->type == KVM_FT_REC_PIO_OUT)
			break;
	ASSERT_LT(i, rs.n - 1);
	p = (void *)(s.buf + rs.off[i]);
	memcpy(&want, p->data, 4);
	p->data[1] ^= 0x40;
	replay(self->dev, 11, 4, 30, false, &s, &b, &w, &div);
	ASSERT_EQ(-EIO, b.r);
	ASSERT_EQ(KVM_FT_ERR_DIVERGENCE, div.error);
	ASSERT_EQ(KVM_FT_DIV_DATA, div.reason);
	ASSERT_EQ(p->hdr.seq, div.seq);
	ASSERT_EQ(p->hdr.landmark, div.landmark);
	ASSERT_EQ(rs.off[i], div.pos);
	ASSERT_EQ(KVM_FT_REC_PIO_OUT, div.expected.type);
	ASSERT_EQ(KVM_FT_REC_PIO_OUT, div.actual.type);
	ASSERT_EQ(p->rip, div.expected.rip);
	ASSERT_EQ(p->rip, div.actual.rip);
	ASSERT_EQ(OUTPUT_PORT, div.actual.addr);
	ASSERT_EQ(4, div.actual.size);
	ASSERT_EQ(want, div.actual.value);
	ASSERT_EQ(want ^ 0x4000, div.expected.value);
	/* It was consumed (and compared), nothing after it. */
	ASSERT_EQ(rs.off[i] + p->hdr.len, w.st->consumer);
	ASSERT_EQ(p->hdr.seq + 1, w.st->next_seq);
	replay_done(&b, &w);
	vm_free(a.vm);
	free(s.buf);
	recs_free(&rs);
}

/* Proves: an INTR record without KVM_FT_INTR_F_LANDMARK is reported UNSUPPORTED. */
TEST_F(replay, unsupported_intr)
{
	struct kvm_ft_divergence div;
	struct run_result a, b;
	struct recs rs = {};
	struct stream s;
	struct rp w;
	struct kvm_ft_rec_intr intr = {
		.hdr = { .len = sizeof(intr), .type = KVM_FT_REC_INTR,
			 .flags = KVM_FT_RF_ASYNC, .seq = 1, .landmark = 0 },
		.vector = 0x40,
	};

	/* An interrupt before the first input. */
	record(self->dev, 5, 3, 10, false, &rs, &a);
	memset(&s, 0, sizeof(s));
	stream_add(&s, &intr, sizeof(intr));
	for (size_t i = 0; i + 1 < rs.n; i++) {
		uint8_t rec[KVM_FT_RING_RESERVE];

		memcpy(rec, recs_at(&rs, i), recs_at(&rs, i)->len);
		((struct kvm_ft_rec *)rec)->seq++;
		stream_add(&s, rec, ((struct kvm_ft_rec *)rec)->len);
	}
	replay(self->dev, 5, 4, 10, false, &s, &b, &w, &div);
	ASSERT_EQ(-EIO, b.r);
	ASSERT_EQ(KVM_FT_ERR_UNSUPPORTED, div.error);
	ASSERT_EQ(KVM_FT_REC_INTR, div.expected.type);
	replay_done(&b, &w);
	vm_free(a.vm);
	free(s.buf);
	recs_free(&rs);
}

/*
 * Proves: an 8-byte MMIO read as the guest's very first exit (the vCPU
 * waits for it at the NPF exit) comes from the log: B's VMM sees no MMIO
 * exit, and B ends in A's state.
 */
TEST_F(replay, mmio_read_first)
{
	struct kvm_ft_divergence div;
	struct run_result a, b;
	struct recs rs = {};
	struct stream s;
	struct rp w;

	record(self->dev, 5, 3, 10, P_MMIO, &rs, &a);
	ASSERT_EQ(KVM_FT_REC_MMIO_READ, recs_at(&rs, 0)->type);
	ASSERT_EQ(VM_MMIO_BASE, ((const struct kvm_ft_rec_mmio *)recs_at(&rs, 0))->gpa);
	ASSERT_EQ(8, ((const struct kvm_ft_rec_mmio *)recs_at(&rs, 0))->len);
	stream_from(&s, &rs);
	replay(self->dev, 5, 4, 10, P_MMIO, &s, &b, &w, &div);
	assert_same(_metadata, &a, &b, &w, &div, rs.n - 1);
	replay_done(&b, &w);
	vm_free(a.vm);
	free(s.buf);
	recs_free(&rs);
}

/* Proves: the status page is read-only, the ring writable; GET_DIVERGENCE is 0 in RECORD. */
TEST_F(replay, mappings)
{
	struct vm_opts o = { .mem_size = MEM_SIZE };
	struct kvm_vm *vm = vm_create(&o, guest_mix, NULL);
	struct kvm_ft_divergence div;
	struct kvm_ft_info info;
	int fd = ft_attach(self->dev, vm->vm_fd, KVM_FT_MODE_REPLAY, 0, 0);
	void *p;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, KVM_FT_GET_INFO, &info));
	ASSERT_EQ(KVM_FT_MODE_REPLAY, info.mode);
	p = mmap(NULL, info.page_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 KVM_FT_MMAP_REPLAY_STATUS_OFF);
	ASSERT_EQ(MAP_FAILED, p);
	ASSERT_EQ(EPERM, errno);
	p = mmap(NULL, info.page_size, PROT_READ, MAP_SHARED, fd, KVM_FT_MMAP_REPLAY_STATUS_OFF);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(-1, mprotect(p, info.page_size, PROT_READ | PROT_WRITE));
	ASSERT_EQ(EPERM, errno);
	ASSERT_EQ(KVM_FT_REPLAY_MAGIC, ((struct kvm_ft_replay_status *)p)->magic);
	ASSERT_EQ(1, ((struct kvm_ft_replay_status *)p)->next_seq);
	munmap(p, info.page_size);
	p = mmap(NULL, info.producer_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 KVM_FT_MMAP_REPLAY_RING_OFF);
	ASSERT_NE(MAP_FAILED, p);
	munmap(p, info.producer_len);
	memset(&div, 0xa5, sizeof(div));
	ASSERT_EQ(0, ioctl(fd, KVM_FT_GET_DIVERGENCE, &div));
	ASSERT_EQ(0, div.error);
	close(fd);
	vm_free(vm);
}

/* One KVM_RUN; returns the exit reason, or -errno. */
static int run_once(struct kvm_vm *vm)
{
	return ioctl(vm->vcpu_fd, KVM_RUN, 0) ? -errno : (int)vm->run->exit_reason;
}

/*
 * Proves: HLT is checked, then KVM halts as usual (the exit reaches the VMM
 * after the record was consumed); a HLT record whose RIP differs is a
 * DIVERGENCE naming both RIPs.
 */
TEST_F(replay, hlt_checked)
{
	struct vm_opts o = { .mem_size = MEM_SIZE };
	struct kvm_ft_divergence div;
	const struct kvm_ft_rec *r;
	struct kvm_ft_rec_hlt rec;
	struct ft_ring ring;
	struct kvm_vm *a;
	int fd;

	a = vm_create(&o, guest_mix, NULL);
	VM_SET_GLOBAL(a, gp.hlt_first, 1);
	fd = ft_attach(self->dev, a->vm_fd, KVM_FT_MODE_RECORD, 0, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ft_ring_map(&ring, fd));
	ASSERT_EQ(KVM_EXIT_HLT, run_once(a));
	r = ft_ring_next(&ring);
	ASSERT_NE(NULL, r);
	ASSERT_EQ(KVM_FT_REC_HLT, r->type);
	ASSERT_EQ(sizeof(rec), r->len);
	memcpy(&rec, r, sizeof(rec));
	ft_ring_unmap(&ring);
	close(fd);

	for (int forge = 0; forge < 2; forge++) {
		struct kvm_vm *b = vm_create(&o, guest_mix, NULL);
		struct kvm_ft_rec_hlt w_rec = rec;
		struct rp w;

		VM_SET_GLOBAL(b, gp.hlt_first, 1);
		fd = ft_attach(self->dev, b->vm_fd, KVM_FT_MODE_REPLAY, 0, 0);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, rp_map(&w, fd));
		w_rec.rip += forge;
		rp_write(&w, &w_rec, sizeof(w_rec));
		rp_publish(&w);
		if (!forge) {
			struct kvm_regs regs;

			ASSERT_EQ(KVM_EXIT_HLT, run_once(b));
			ASSERT_EQ(sizeof(rec), rp_consumer(&w));
			ASSERT_EQ(2, w.st->next_seq);
			ASSERT_EQ(0, w.st->error);
			ASSERT_EQ(0, ioctl(b->vcpu_fd, KVM_GET_REGS, &regs));
			ASSERT_EQ(rec.rip + 1, regs.rip);	/* past the HLT */
		} else {
			ASSERT_EQ(-EIO, run_once(b));
			ASSERT_EQ(0, ioctl(fd, KVM_FT_GET_DIVERGENCE, &div));
			ASSERT_EQ(KVM_FT_ERR_DIVERGENCE, div.error);
			ASSERT_EQ(KVM_FT_DIV_RIP, div.reason);
			ASSERT_EQ(KVM_FT_REC_HLT, div.actual.type);
			ASSERT_EQ(rec.rip, div.actual.rip);
			ASSERT_EQ(rec.rip + 1, div.expected.rip);
		}
		rp_unmap(&w);
		close(fd);
		vm_free(b);
	}
	vm_free(a);
}

struct vcpu_thread {
	struct kvm_vm *vm;
	int64_t r;
};

static void *vcpu_fn(void *p)
{
	struct vcpu_thread *v = p;
	struct ucall uc;

	v->r = vcpu_run_raw(v->vm, &uc);
	return NULL;
}

static uint32_t st_flags(const struct rp *w)
{
	return __atomic_load_n(&w->st->flags, __ATOMIC_ACQUIRE);
}

/*
 * Proves: with an empty replay ring the vCPU waits (WAITING, POLLOUT,
 * nothing consumed, no progress) and resumes when records arrive; records
 * fed in random chunks through a ring smaller than the stream (wrap, pads,
 * the writer waiting for space) end in A's exact state.
 */
TEST_F_TIMEOUT(replay, waits_for_records, 120)
{
	uint64_t seed = kt_seed("replay.waits_for_records"), rng = seed | 1;
	struct vm_opts o = { .mem_size = MEM_SIZE };
	struct kvm_ft_divergence div;
	struct kvm_ft_stats st;
	struct run_result a, b;
	struct vcpu_thread v;
	struct recs rs = {};
	struct pollfd pfd;
	pthread_t t;
	struct rp w;
	size_t i = 0;
	int fd;

	record(self->dev, seed, kt_rand(&rng), 700, false, &rs, &a);
	ASSERT_LT(1ULL << KVM_FT_RING_ORDER_MIN, rs.len);	/* the ring wraps */

	b.vm = vm_create(&o, guest_mix, NULL);
	set_prog(b.vm, seed, 700, false);
	vm_seed(b.vm, kt_rand(&rng));
	fd = ft_attach_digest(self->dev, b.vm->vm_fd, KVM_FT_MODE_REPLAY, 0,
			      KVM_FT_RING_ORDER_MIN, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, rp_map(&w, fd));
	v.vm = b.vm;
	ASSERT_EQ(0, pthread_create(&t, NULL, vcpu_fn, &v));

	/* Nothing to replay: the vCPU waits at its first synchronous exit. */
	for (int k = 0; !(st_flags(&w) & KVM_FT_RING_F_WAITING); k++) {
		ASSERT_LT(k, 100000);
		usleep(100);
	}
	pfd.fd = fd;
	pfd.events = POLLOUT;
	ASSERT_EQ(1, poll(&pfd, 1, 1000));
	ASSERT_TRUE(pfd.revents & POLLOUT);
	usleep(30000);
	ASSERT_EQ(0, rp_consumer(&w));
	ASSERT_EQ(1, w.st->next_seq);
	ASSERT_TRUE(st_flags(&w) & KVM_FT_RING_F_WAITING);

	/* Feed random chunks, pausing now and then so the vCPU waits again. */
	while (i + 1 < rs.n) {
		size_t chunk = 1 + kt_rand(&rng) % 64;

		for (; chunk && i + 1 < rs.n; chunk--, i++)
			rp_write(&w, recs_at(&rs, i), recs_at(&rs, i)->len);
		rp_publish(&w);
		if (kt_rand(&rng) % 4 == 0)
			usleep(2000);
	}
	for (int k = 0; !(rp_consumer(&w) == w.pos && (st_flags(&w) & KVM_FT_RING_F_WAITING));
	     k++) {
		ASSERT_EQ(0, w.st->error);
		ASSERT_LT(k, 200000);
		usleep(100);
	}
	ASSERT_EQ(0, ioctl(fd, KVM_FT_SET_MODE, KVM_FT_MODE_LIVE));
	pthread_join(t, NULL);
	b.r = v.r;
	ASSERT_EQ(0, ioctl(b.vm->vcpu_fd, KVM_GET_REGS, &b.regs));
	ASSERT_EQ(0, ioctl(fd, KVM_FT_GET_DIVERGENCE, &div));
	assert_same(_metadata, &a, &b, &w, &div, rs.n - 1);
	ft_stats(fd, &st);
	ASSERT_LE(2, st.ring_waits);
	printf("# %zu records through a %u KiB ring, %llu waits\n", rs.n - 1,
	       (1U << KVM_FT_RING_ORDER_MIN) / 1024, (unsigned long long)st.ring_waits);
	fflush(stdout);
	replay_done(&b, &w);
	vm_free(a.vm);
	recs_free(&rs);
}

TEST_HARNESS_MAIN
