// SPDX-License-Identifier: GPL-2.0
/*
 * Register and memory digests (uapi/linux/kvm_ft.h, "DIGESTS").
 *
 * VM A records a guest that mixes random inputs (PIO IN, RDTSC, CPUID,
 * RDMSR) into a state, writes it into a buffer in its memory and outputs
 * it; halfway it makes ucall SYNC 1, then writes memory without exiting and
 * makes ucall SYNC 2, then goes on to DONE. The test asks for a memory
 * digest at SYNC 1, so the SYNC 2 record carries it: the digest must equal
 * the host's xxh64 of A's memory at SYNC 2. VM B replays A's records up to
 * DONE and must match every digest; a register or memory byte that B alone
 * has different must be reported as a digest divergence at the right
 * landmark with both values.
 */
#include <pthread.h>
#include <sys/mman.h>
#define XXH_INLINE_ALL
#include <xxhash.h>
#include "ft_test.h"
#include "ft_replay.h"

#define MEM_SIZE	(16ULL << 20)
#define BUF_SIZE	(64 << 10)

static struct dprog {
	uint64_t seed;
	uint64_t nops;
	uint64_t state;
	uint8_t buf[BUF_SIZE];
} dp;

static inline uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v;
	h *= 0x9e3779b97f4a7c15ULL;
	h ^= h >> 29;
	return h;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t inputs(uint64_t *s, uint64_t h, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		uint64_t r = xorshift(s);
		uint32_t c[4];

		switch (r % 5) {
		case 0:
			h = mix(h, inb(RANDOM_PORT));
			break;
		case 1:
			h = mix(h, inl(RANDOM_PORT));
			break;
		case 2:
			h = mix(h, rdtsc());
			break;
		case 3:
			cpuid((r >> 8) % 2 ? 1 : 0x80000000, 0, c);
			h = mix(mix(h, c[0]), c[3]);
			break;
		case 4:
			h = mix(h, rdmsr(MSR_IA32_TSC));
			break;
		}
		((uint64_t *)dp.buf)[(r >> 16) % (BUF_SIZE / 8)] = h;
		outl(OUTPUT_PORT, (uint32_t)h);
	}
	return h;
}

static void guest_dig(void *arg)
{
	uint64_t s = dp.seed | 1, h = 0x243f6a8885a308d3ULL;

	h = inputs(&s, h, dp.nops);
	GUEST_SYNC(1);
	/* Memory only, no exit: the digest at SYNC 2 must see all of it. */
	for (int i = 0; i < 512; i++)
		((uint64_t *)dp.buf)[xorshift(&s) % (BUF_SIZE / 8)] = h + i;
	GUEST_SYNC(2);
	dp.state = inputs(&s, h, dp.nops / 2);
}

/* The memory digest's definition: one memslot, gpa 0, MEM_SIZE bytes. */
static uint64_t host_mem_digest(const void *mem)
{
	XXH64_state_t *st = XXH64_createState();
	uint64_t head[2] = { 0, MEM_SIZE }, d;

	KT_ASSERT(st, "XXH64_createState");
	XXH64_reset(st, 0);
	XXH64_update(st, head, sizeof(head));
	XXH64_update(st, mem, MEM_SIZE);
	d = XXH64_digest(st);
	XXH64_freeState(st);
	return d;
}

static int attach(int dev, struct kvm_vm *vm, uint32_t mode, uint32_t interval)
{
	int fd = ft_attach_digest(dev, vm->vm_fd, mode, 0, 0, interval);

	KT_ASSERT(fd >= 0, "KVM_FT_ATTACH mode %u interval %u: %s", mode, interval,
		  strerror(-fd));
	return fd;
}

static void get_digest(int fd, struct kvm_ft_digest *d)
{
	memset(d, 0xa5, sizeof(*d));
	KT_ASSERT(!ioctl(fd, KVM_FT_GET_DIGEST, d), "KVM_FT_GET_DIGEST: %s", strerror(errno));
}

static struct kvm_vm *new_vm(uint64_t gseed, uint64_t hseed, uint64_t nops)
{
	struct vm_opts o = { .mem_size = MEM_SIZE };
	struct kvm_vm *vm = vm_create(&o, guest_dig, NULL);

	VM_SET_GLOBAL(vm, dp.seed, gseed);
	VM_SET_GLOBAL(vm, dp.nops, nops);
	vm_seed(vm, hseed);
	return vm;
}

/* A recorded run: its records (up to DONE) and what the test saw. */
struct rec_run {
	struct kvm_vm *vm;
	struct recs rs;
	size_t done;		/* index of the DONE ucall record */
	struct kvm_regs regs;
	uint64_t mem_digest;	/* host xxh64 of memory at SYNC 2 */
	uint8_t *mem_at_sync2;	/* copy of memory at SYNC 2 */
	struct kvm_ft_digest dg;
};

static bool is_ucall(const struct kvm_ft_rec *r)
{
	return r->type == KVM_FT_REC_PIO_OUT &&
	       ((const struct kvm_ft_rec_pio *)r)->port == UCALL_PORT;
}

static void record(int dev, uint64_t gseed, uint64_t hseed, uint64_t nops,
		   uint32_t interval, struct rec_run *a)
{
	struct ft_ring ring;
	struct ucall uc;
	int fd, r;

	memset(a, 0, sizeof(*a));
	a->vm = new_vm(gseed, hseed, nops);
	fd = attach(dev, a->vm, KVM_FT_MODE_RECORD, interval);
	r = ft_ring_map(&ring, fd);
	KT_ASSERT(!r, "map: %s", strerror(-r));
	vcpu_run_expect(a->vm, UCALL_SYNC, &uc);
	KT_ASSERT(uc.args[0] == 1, "SYNC %llu", (unsigned long long)uc.args[0]);
	KT_ASSERT(!ioctl(fd, KVM_FT_REQUEST_MEM_DIGEST), "REQUEST_MEM_DIGEST: %s",
		  strerror(errno));
	get_digest(fd, &a->dg);
	KT_ASSERT(a->dg.flags & KVM_FT_DIGEST_F_MEM_PENDING, "request not pending");
	vcpu_run_expect(a->vm, UCALL_SYNC, &uc);
	KT_ASSERT(uc.args[0] == 2, "SYNC %llu", (unsigned long long)uc.args[0]);
	a->mem_digest = host_mem_digest(a->vm->mem);
	a->mem_at_sync2 = malloc(MEM_SIZE);
	KT_ASSERT(a->mem_at_sync2, "malloc");
	memcpy(a->mem_at_sync2, a->vm->mem, MEM_SIZE);
	vcpu_run_expect(a->vm, UCALL_DONE, &uc);
	KT_ASSERT(!ioctl(a->vm->vcpu_fd, KVM_GET_REGS, &a->regs), "GET_REGS");
	get_digest(fd, &a->dg);
	ft_drain(&ring, &a->rs);
	for (a->done = a->rs.n; a->done-- > 0;)
		if (is_ucall(recs_at(&a->rs, a->done)))
			break;
	KT_ASSERT(a->done < a->rs.n, "no DONE ucall record");
	ft_ring_unmap(&ring);
	close(fd);
}

static void rec_run_free(struct rec_run *a)
{
	vm_free(a->vm);
	free(a->mem_at_sync2);
	recs_free(&a->rs);
}

/* B's outcome. */
struct rep_run {
	struct kvm_vm *vm;
	int64_t r;
	struct kvm_regs regs;
	struct kvm_ft_divergence div;
	struct kvm_ft_digest dg;
	uint32_t st_error;
	uint64_t consumed;
};

/* B replays @buf (A's records, maybe changed); @prep may change B first. */
static void replay(int dev, uint64_t gseed, uint64_t nops, uint32_t interval,
		   const uint8_t *buf, size_t len,
		   void (*prep)(struct kvm_vm *vm, uint64_t arg), uint64_t arg,
		   struct rep_run *b)
{
	struct golive g;
	struct ucall uc;
	pthread_t t;
	struct rp w;
	size_t off = 0;
	int fd, r;

	memset(b, 0, sizeof(*b));
	b->vm = new_vm(gseed, 12345, nops);
	if (prep)
		prep(b->vm, arg);
	fd = attach(dev, b->vm, KVM_FT_MODE_REPLAY, interval);
	r = rp_map(&w, fd);
	KT_ASSERT(!r, "map replay ring: %s", strerror(-r));
	while (off < len) {
		uint32_t l = ((const struct kvm_ft_rec *)(buf + off))->len;

		rp_write(&w, buf + off, l);
		off += l;
	}
	rp_publish(&w);
	memset(&g, 0, sizeof(g));
	g.w = &w;
	KT_ASSERT(!pthread_create(&t, NULL, golive_fn, &g), "pthread_create");
	b->r = vcpu_run_raw(b->vm, &uc);
	g.stop = true;
	pthread_join(t, NULL);
	if (b->r >= 0)
		KT_ASSERT(!ioctl(b->vm->vcpu_fd, KVM_GET_REGS, &b->regs), "GET_REGS");
	memset(&b->div, 0xa5, sizeof(b->div));
	KT_ASSERT(!ioctl(fd, KVM_FT_GET_DIVERGENCE, &b->div), "GET_DIVERGENCE: %s",
		  strerror(errno));
	get_digest(fd, &b->dg);
	b->st_error = w.st->error;
	b->consumed = rp_consumer(&w);
	rp_unmap(&w);
	close(fd);
}

/* Records 0 .. done-1 of A, with the register digest of the last one. */
static size_t stream_len(const struct rec_run *a)
{
	return a->rs.off[a->done];
}

FIXTURE(digest) {
	int dev;
};

FIXTURE_SETUP(digest)
{
	self->dev = ft_open();
	ASSERT_LE(0, self->dev);
}

FIXTURE_TEARDOWN(digest)
{
	close(self->dev);
}

#define NSEEDS	12

/*
 * Proves: each register digest directly follows the first record of a
 * digest-point exit, at the interval (first one at landmark 1); the memory
 * digest asked for at SYNC 1 is logged after the SYNC 2 record, which
 * announces it, and equals the host's xxh64 of A's memory there; B replays
 * with every digest matched (same counts and last values) to A's exact
 * memory and registers.
 */
TEST_F_TIMEOUT(digest, logged_and_matched, 120)
{
	uint64_t base = kt_seed("digest.logged_and_matched");

	for (int i = 0; i < NSEEDS; i++) {
		uint64_t seed = base + i, rng = seed * 2 + 1;
		uint64_t nops = 20 + kt_rand(&rng) % 80;
		uint32_t interval = i == 0 ? 1 : 1 + kt_rand(&rng) % 16;
		uint64_t next_due = 1, regs = 0, mems = 0, last_sync = 0;
		const struct kvm_ft_rec *prev = NULL;
		struct rec_run a;
		struct rep_run b;

		printf("# seed %llu interval %u\n", (unsigned long long)seed, interval);
		fflush(stdout);
		record(self->dev, seed, kt_rand(&rng), nops, interval, &a);
		for (size_t k = 0; k < a.rs.n; k++) {
			const struct kvm_ft_rec *r = recs_at(&a.rs, k);
			const struct kvm_ft_rec_digest *d = (const void *)r;

			if (r->type == KVM_FT_REC_REG_DIGEST) {
				/* Right after the record it belongs to, at the interval. */
				ASSERT_NE(NULL, prev);
				ASSERT_FALSE(prev->flags & KVM_FT_RF_ASYNC);
				ASSERT_EQ(prev->landmark, r->landmark);
				ASSERT_LE(next_due, r->landmark);
				ASSERT_EQ(((const struct kvm_ft_rec_hlt *)prev)->rip, d->rip);
				ASSERT_EQ(sizeof(*d), r->len);
				ASSERT_EQ(KVM_FT_RF_ASYNC, r->flags);
				ASSERT_EQ(0, d->bytes);
				next_due = r->landmark + interval;
				regs++;
			} else if (r->type == KVM_FT_REC_MEM_DIGEST) {
				ASSERT_NE(NULL, prev);
				ASSERT_EQ(last_sync, r->landmark);
				ASSERT_EQ(a.mem_digest, d->digest);
				ASSERT_EQ(MEM_SIZE, d->bytes);
				ASSERT_EQ(0, d->rip);
				mems++;
			} else if (!(r->flags & KVM_FT_RF_ASYNC)) {
				/* The first synchronous record due has its digest. */
				if (r->landmark >= next_due && k + 1 < a.rs.n)
					ASSERT_EQ(KVM_FT_REC_REG_DIGEST, recs_at(&a.rs, k + 1)->type);
				if (r->flags & KVM_FT_RF_MEM_DIGEST) {
					/* SYNC 2: its digest follows, after a register digest. */
					ASSERT_TRUE(is_ucall(r));
					ASSERT_EQ(0, mems);
				}
				last_sync = r->landmark;
			}
			if (r->type != KVM_FT_REC_REG_DIGEST)
				prev = r;
		}
		ASSERT_EQ(1, mems);
		ASSERT_LE(1, regs);
		ASSERT_EQ(regs, a.dg.reg_count);
		ASSERT_EQ(1, a.dg.mem_count);
		ASSERT_EQ(a.mem_digest, a.dg.mem_digest);
		ASSERT_EQ(MEM_SIZE, a.dg.mem_bytes);
		ASSERT_EQ(0, a.dg.flags);
		ASSERT_EQ(interval, a.dg.interval);

		replay(self->dev, seed, nops, interval, a.rs.buf, stream_len(&a), NULL, 0, &b);
		ASSERT_EQ(0, b.div.error);
		ASSERT_EQ(UCALL_DONE, b.r);
		ASSERT_EQ(0, memcmp(&a.regs, &b.regs, sizeof(a.regs)));
		ASSERT_EQ(0, memcmp(a.vm->mem, b.vm->mem, MEM_SIZE));
		/* Every register digest before DONE's was matched, and the memory one. */
		ASSERT_EQ(regs - (a.rs.n - 1 > a.done), b.dg.reg_count);
		ASSERT_EQ(1, b.dg.mem_count);
		ASSERT_EQ(a.mem_digest, b.dg.mem_digest);
		ASSERT_EQ(MEM_SIZE, b.dg.mem_bytes);
		vm_free(b.vm);
		rec_run_free(&a);
	}
}

static void set_seg_base(struct kvm_vm *vm, uint64_t v)
{
	struct kvm_sregs s;

	KT_ASSERT(!ioctl(vm->vcpu_fd, KVM_GET_SREGS, &s), "GET_SREGS");
	if (v & 1)
		s.gs.base ^= v;
	else
		s.fs.base ^= v;
	KT_ASSERT(!ioctl(vm->vcpu_fd, KVM_SET_SREGS, &s), "SET_SREGS");
}

static void poke_mem(struct kvm_vm *vm, uint64_t gpa)
{
	vm->mem[gpa] ^= 0x5a;
}

/*
 * Proves: a segment base (which this guest never uses) that differs on B
 * alone changes nothing B does but is a REG_DIGEST divergence at the first
 * digest (landmark 1), naming the record and both digests and RIPs.
 */
TEST_F(digest, register_change_detected)
{
	uint64_t seed = kt_seed("digest.register_change_detected"), rng = seed | 1;
	const struct kvm_ft_rec_digest *d;
	struct rec_run a;
	struct rep_run b;

	record(self->dev, seed, kt_rand(&rng), 30, 4, &a);
	ASSERT_EQ(KVM_FT_REC_REG_DIGEST, recs_at(&a.rs, 1)->type);
	d = (const void *)recs_at(&a.rs, 1);
	replay(self->dev, seed, 30, 4, a.rs.buf, stream_len(&a), set_seg_base,
	       ((kt_rand(&rng) | 0x1000) & 0xfffff000ULL) | (kt_rand(&rng) & 1), &b);
	ASSERT_EQ(-EIO, b.r);
	ASSERT_EQ(KVM_FT_ERR_DIVERGENCE, b.div.error);
	ASSERT_EQ(KVM_FT_DIV_REG_DIGEST, b.div.reason);
	ASSERT_EQ(1, b.div.landmark);
	ASSERT_EQ(2, b.div.seq);
	ASSERT_EQ(a.rs.off[1], b.div.pos);
	ASSERT_EQ(KVM_FT_REC_REG_DIGEST, b.div.expected.type);
	ASSERT_EQ(KVM_FT_REC_REG_DIGEST, b.div.actual.type);
	ASSERT_EQ(d->digest, b.div.expected.value);
	ASSERT_NE(d->digest, b.div.actual.value);
	ASSERT_EQ(d->rip, b.div.expected.rip);
	ASSERT_EQ(d->rip, b.div.actual.rip);
	ASSERT_EQ(KVM_FT_ERR_DIVERGENCE, b.st_error);
	ASSERT_EQ(a.rs.off[2], b.consumed);	/* the digest was consumed */
	ASSERT_EQ(0, b.dg.reg_count);
	vm_free(b.vm);
	rec_run_free(&a);
}

/*
 * Proves: one byte of guest memory the guest never reads, changed on B
 * alone, is a MEM_DIGEST divergence at SYNC 2's landmark whose actual value
 * is the host's digest of A's memory there with that byte changed; every
 * register digest before it matched.
 */
TEST_F(digest, memory_change_detected)
{
	uint64_t seed = kt_seed("digest.memory_change_detected"), rng = seed | 1;
	uint64_t gpa = VM_SCRATCH_GPA + kt_rand(&rng) % (VM_SCRATCH_END - VM_SCRATCH_GPA);
	const struct kvm_ft_rec *sync2 = NULL;
	struct rec_run a;
	struct rep_run b;
	size_t k;

	printf("# byte at gpa %#llx\n", (unsigned long long)gpa);
	record(self->dev, seed, kt_rand(&rng), 40, 8, &a);
	for (k = 0; k < a.rs.n; k++)
		if (recs_at(&a.rs, k)->flags & KVM_FT_RF_MEM_DIGEST)
			sync2 = recs_at(&a.rs, k);
	ASSERT_NE(NULL, sync2);
	replay(self->dev, seed, 40, 8, a.rs.buf, stream_len(&a), poke_mem, gpa, &b);
	ASSERT_EQ(-EIO, b.r);
	ASSERT_EQ(KVM_FT_ERR_DIVERGENCE, b.div.error);
	ASSERT_EQ(KVM_FT_DIV_MEM_DIGEST, b.div.reason);
	ASSERT_EQ(sync2->landmark, b.div.landmark);
	ASSERT_EQ(KVM_FT_REC_MEM_DIGEST, b.div.expected.type);
	ASSERT_EQ(a.mem_digest, b.div.expected.value);
	ASSERT_EQ(MEM_SIZE, b.div.expected.addr);
	ASSERT_EQ(MEM_SIZE, b.div.actual.addr);
	a.mem_at_sync2[gpa] ^= 0x5a;
	ASSERT_EQ(host_mem_digest(a.mem_at_sync2), b.div.actual.value);
	ASSERT_EQ(0, b.dg.mem_count);
	ASSERT_LE(1, b.dg.reg_count);
	vm_free(b.vm);
	rec_run_free(&a);
}

enum dmut {
	D_FLIP_REG,	/* flip a bit of a register digest's value */
	D_DROP_REG,	/* drop a register digest, renumber seq */
	D_EXTRA_REG,	/* a register digest where none is due */
	D_FLIP_MEM,	/* flip a bit of the memory digest */
	D_DROP_MEM,	/* drop the memory digest, renumber */
	D_UNANNOUNCE,	/* clear KVM_FT_RF_MEM_DIGEST on SYNC 2's record */
	D_ANNOUNCE,	/* set it on another record */
	D_COUNT,
};

static const char *const dmut_name[] = {
	"flip reg", "drop reg", "extra reg", "flip mem", "drop mem", "unannounce", "announce",
};

static bool is_sync(const struct kvm_ft_rec *r)
{
	return !(r->flags & KVM_FT_RF_ASYNC);
}

/*
 * Build B's stream from A's records 0 .. done-1 with mutation @m (seq
 * renumbered). Sets the landmark of the record the mutation belongs to and
 * the reason B must report.
 */
static size_t dmutate(const struct rec_run *a, enum dmut m, uint64_t *rng, uint8_t *out,
		      uint64_t *want_lm, uint32_t *want_reason)
{
	size_t cand[4096], ncand = 0, target, len = 0;
	uint64_t seq = 1;

	/* Candidates; always with a record after them, so B must notice. */
	for (size_t k = 0; k + 1 < a->done && ncand < 4096; k++) {
		const struct kvm_ft_rec *r = recs_at(&a->rs, k), *next = recs_at(&a->rs, k + 1);
		bool ok;

		switch (m) {
		case D_FLIP_REG:
		case D_DROP_REG:
			ok = r->type == KVM_FT_REC_REG_DIGEST;
			break;
		case D_EXTRA_REG:	/* a synchronous record with no digest due */
			ok = is_sync(r) && next->type != KVM_FT_REC_REG_DIGEST;
			break;
		case D_ANNOUNCE:
			ok = is_sync(r) && !(r->flags & KVM_FT_RF_MEM_DIGEST);
			break;
		case D_UNANNOUNCE:
			ok = r->flags & KVM_FT_RF_MEM_DIGEST;
			break;
		default:
			ok = r->type == KVM_FT_REC_MEM_DIGEST;
			break;
		}
		if (ok)
			cand[ncand++] = k;
	}
	KT_ASSERT(ncand, "no record for mutation %s", dmut_name[m]);
	target = cand[kt_rand(rng) % ncand];
	*want_lm = recs_at(&a->rs, target)->landmark;
	*want_reason = m <= D_EXTRA_REG ? KVM_FT_DIV_REG_DIGEST : KVM_FT_DIV_MEM_DIGEST;
	for (size_t k = 0; k < a->done; k++) {
		const struct kvm_ft_rec *r = recs_at(&a->rs, k);
		struct kvm_ft_rec *h = (void *)(out + len);
		struct kvm_ft_rec_digest *d = (void *)h;

		if (k == target && (m == D_DROP_REG || m == D_DROP_MEM))
			continue;
		memcpy(h, r, r->len);
		h->seq = seq++;
		len += r->len;
		if (k != target)
			continue;
		switch (m) {
		case D_FLIP_REG:
		case D_FLIP_MEM:
			d->digest ^= 1ULL << (kt_rand(rng) % 64);
			break;
		case D_UNANNOUNCE:
			h->flags &= ~KVM_FT_RF_MEM_DIGEST;
			break;
		case D_ANNOUNCE:
			h->flags |= KVM_FT_RF_MEM_DIGEST;
			break;
		case D_EXTRA_REG: {
			struct kvm_ft_rec_digest x = {
				.hdr = { .len = sizeof(x), .type = KVM_FT_REC_REG_DIGEST,
					 .flags = KVM_FT_RF_ASYNC, .seq = seq++,
					 .landmark = r->landmark },
				.rip = ((const struct kvm_ft_rec_hlt *)r)->rip,
				.digest = kt_rand(rng),
			};

			memcpy(out + len, &x, sizeof(x));
			len += sizeof(x);
			break;
		}
		default:
			break;
		}
	}
	return len;
}

/*
 * Proves: every change to the digest records or the announcement (changed
 * value, dropped, extra, flag cleared or forged) is a digest DIVERGENCE at
 * the landmark of the record it belongs to, every time; never a clean run.
 */
TEST_F_TIMEOUT(digest, mutations_always_detected, 120)
{
	uint64_t seed = kt_seed("digest.mutations_always_detected"), rng = seed | 1;
	int counts[D_COUNT] = {};
	uint8_t *out;
	struct rec_run a;

	record(self->dev, seed, kt_rand(&rng), 40, 4, &a);
	out = malloc(a.rs.len + 4096);
	ASSERT_NE(NULL, out);
	for (int t = 0; t < 3 * D_COUNT; t++) {
		enum dmut m = (enum dmut)(t % D_COUNT);
		uint64_t want_lm = ~0ULL;
		uint32_t want_reason;
		struct rep_run b;
		size_t len = dmutate(&a, m, &rng, out, &want_lm, &want_reason);

		replay(self->dev, seed, 40, 4, out, len, NULL, 0, &b);
		if (b.div.error != KVM_FT_ERR_DIVERGENCE || b.div.reason != want_reason) {
			printf("# %s at landmark %llu: error %u reason %u landmark %llu run %lld\n",
			       dmut_name[m], (unsigned long long)want_lm, b.div.error,
			       b.div.reason, (unsigned long long)b.div.landmark, (long long)b.r);
			fflush(stdout);
		}
		ASSERT_EQ(-EIO, b.r);
		ASSERT_EQ(KVM_FT_ERR_DIVERGENCE, b.div.error);
		ASSERT_EQ(want_reason, b.div.reason);
		/* Reported at the digest's landmark, or the next record's (a drop). */
		ASSERT_LE(want_lm, b.div.landmark);
		ASSERT_GE(want_lm + 1, b.div.landmark);
		counts[m]++;
		vm_free(b.vm);
	}
	for (int m = 0; m < D_COUNT; m++)
		printf("# %s: %d detected\n", dmut_name[m], counts[m]);
	fflush(stdout);
	free(out);
	rec_run_free(&a);
}

/* Proves: the digest ioctls: interval reported, request only in RECORD, reserved checked. */
TEST_F(digest, ioctls)
{
	struct vm_opts o = { .mem_size = MEM_SIZE };
	struct kvm_vm *vm = vm_create(&o, guest_dig, NULL);
	struct kvm_ft_attach at = { .vm_fd = vm->vm_fd, .mode = KVM_FT_MODE_RECORD,
				    .reserved = { 1 } };
	struct kvm_ft_digest d;
	int fd;

	ASSERT_EQ(-1, ioctl(self->dev, KVM_FT_ATTACH, &at));
	ASSERT_EQ(EOPNOTSUPP, errno);
	fd = attach(self->dev, vm, KVM_FT_MODE_RECORD, 0);
	get_digest(fd, &d);
	ASSERT_EQ(KVM_FT_DIGEST_INTERVAL_DEFAULT, d.interval);
	ASSERT_EQ(0, d.flags);
	ASSERT_EQ(0, d.reg_count);
	ASSERT_EQ(0, d.mem_count);
	ASSERT_EQ(0, ioctl(fd, KVM_FT_REQUEST_MEM_DIGEST));
	get_digest(fd, &d);
	ASSERT_EQ(KVM_FT_DIGEST_F_MEM_PENDING, d.flags);
	close(fd);
	fd = attach(self->dev, vm, KVM_FT_MODE_REPLAY, KVM_FT_DIGEST_OFF);
	get_digest(fd, &d);
	ASSERT_EQ(KVM_FT_DIGEST_OFF, d.interval);
	ASSERT_EQ(-1, ioctl(fd, KVM_FT_REQUEST_MEM_DIGEST));
	ASSERT_EQ(EINVAL, errno);
	close(fd);
	vm_free(vm);
}

TEST_HARNESS_MAIN
