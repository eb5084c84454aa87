// SPDX-License-Identifier: GPL-2.0
/*
 * Every record type appears in the ring exactly as the guest produced it.
 *
 * The guest executes one instruction of each kind the module logs, each at
 * a known address (global asm labels), and keeps what it got in guest
 * memory; the host compares every field of every record with what the guest
 * saw and what the host itself supplied (vm->io_log).
 */
#include "ft_test.h"

#define VEC		0x33
#define MMIO_R		(VM_MMIO_BASE + 0x08)
#define MMIO_W		(VM_MMIO_BASE + 0x10)
#define MMIO_W_VAL	0xcafef00dU

struct seen {
	uint32_t in;
	uint64_t mmio;
	uint64_t tsc;
	uint32_t cpuid[4];
	uint64_t msr;
};

extern char r_out[], r_in[], r_mmio_r[], r_mmio_w[], r_rdtsc[], r_cpuid[], r_rdmsr[],
	r_hlt[], r_after_hlt[];

static void guest_sequence(void *arg)
{
	struct seen *s = arg;
	uint32_t lo, hi, a, b, c, d;

	__asm__ volatile("r_out: outb %%al, %0" : : "i"(OUTPUT_PORT), "a"('x') : "memory");
	__asm__ volatile("r_in: inl %1, %0" : "=a"(s->in) : "i"(RANDOM_PORT) : "memory");
	__asm__ volatile("r_mmio_r: movq (%1), %0" : "=r"(s->mmio) : "r"(MMIO_R) : "memory");
	__asm__ volatile("r_mmio_w: movl %0, (%1)" : : "r"(MMIO_W_VAL), "r"(MMIO_W) : "memory");
	__asm__ volatile("r_rdtsc: rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	s->tsc = (uint64_t)hi << 32 | lo;
	__asm__ volatile("r_cpuid: cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d)
			 : "a"(0), "c"(0) : "memory");
	s->cpuid[0] = a; s->cpuid[1] = b; s->cpuid[2] = c; s->cpuid[3] = d;
	__asm__ volatile("r_rdmsr: rdmsr" : "=a"(lo), "=d"(hi) : "c"(MSR_IA32_TSC) : "memory");
	s->msr = (uint64_t)hi << 32 | lo;
	/* The host queues the interrupt when the HLT exit reaches it. */
	__asm__ volatile("sti; r_hlt: hlt; r_after_hlt: cli" : : : "memory");
	GUEST_SYNC(guest_irq.count, guest_irq.last_vector, guest_irq.last_rip);
}

#define A(sym) ((uint64_t)(uintptr_t)(sym))

static void check_pio(struct __test_metadata *_metadata, const struct kvm_ft_rec *r,
		      uint16_t type, uint64_t rip, uint16_t port, uint8_t size, uint32_t data)
{
	const struct kvm_ft_rec_pio *p = (const void *)r;
	uint32_t got = 0;

	ASSERT_EQ(type, r->type);
	ASSERT_EQ(sizeof(*p) + 8, r->len);
	ASSERT_EQ(type == KVM_FT_REC_PIO_OUT ? KVM_FT_RF_OUTPUT : 0, r->flags);
	ASSERT_EQ(rip, p->rip);
	ASSERT_EQ(port, p->port);
	ASSERT_EQ(size, p->size);
	ASSERT_EQ(0, p->reserved);
	ASSERT_EQ(1, p->count);
	memcpy(&got, p->data, size);
	ASSERT_EQ(data, got);
	for (unsigned int i = size; i < 8; i++)
		ASSERT_EQ(0, p->data[i]);	/* zero-padded */
}

static void check_mmio(struct __test_metadata *_metadata, const struct kvm_ft_rec *r,
		       uint16_t type, uint64_t rip, uint64_t gpa, uint32_t len, uint64_t data)
{
	const struct kvm_ft_rec_mmio *m = (const void *)r;
	uint64_t got;

	ASSERT_EQ(type, r->type);
	ASSERT_EQ(sizeof(*m), r->len);
	ASSERT_EQ(type == KVM_FT_REC_MMIO_WRITE ? KVM_FT_RF_OUTPUT : 0, r->flags);
	ASSERT_EQ(rip, m->rip);
	ASSERT_EQ(gpa, m->gpa);
	ASSERT_EQ(len, m->len);
	ASSERT_EQ(0, m->reserved);
	memcpy(&got, m->data, 8);
	ASSERT_EQ(data, got);		/* len bytes valid, the rest zero */
}

/*
 * Proves: the ten records of a known instruction sequence come out in order,
 * gapless from seq 1, with landmarks 1..9 on the synchronous ones and the
 * last synchronous landmark on the interrupt, and every payload field equal
 * to what the guest received or sent (TSC, CPUID, MSR, PIO/MMIO data, RIPs,
 * vector); the stats and producer header agree with the ring.
 */
TEST(every_record_type_exact)
{
	struct vm_opts o = { .log_io = true };
	struct ft_vm f;
	struct recs rs = { 0 };
	struct ucall uc;
	struct seen s;
	struct kvm_ft_stats st;
	uint64_t seen_gpa, seed = kt_seed("every_record_type_exact");
	const struct kvm_ft_rec *r;
	struct kvm_vm *vm;
	struct pollfd pfd;

	ft_vm_setup(&f, &o, NULL, NULL, 0);
	vm = f.vm;
	seen_gpa = vm_alloc(vm, sizeof(s));
	vm_set_entry(vm, guest_sequence, (void *)(uintptr_t)seen_gpa);
	vm_seed(vm, seed);
	vm->irq_on_halt = VEC;

	ASSERT_EQ(KVM_FT_API_VERSION, f.ring.info.api_version);
	ASSERT_EQ(KVM_FT_MODE_RECORD, f.ring.info.mode);
	ASSERT_EQ(KVM_FT_RING_ORDER_DEFAULT, f.ring.info.ring_order);
	ASSERT_EQ(1ULL << KVM_FT_RING_ORDER_DEFAULT, f.ring.info.data_size);
	ASSERT_EQ(KVM_FT_VENDOR_SVM, f.ring.info.vendor);
	ASSERT_EQ(getpid(), f.ring.info.vm_pid);
	ASSERT_EQ(0, f.ring.info.flags);
	ASSERT_EQ(0, ft_ring_producer(&f.ring));
	ASSERT_EQ(1, f.ring.prod->next_seq);

	vcpu_run_expect(vm, UCALL_SYNC, &uc);
	memcpy(&s, vm_gpa2hva(vm, seen_gpa, sizeof(s)), sizeof(s));
	/* The guest took exactly our interrupt, after the HLT. */
	ASSERT_EQ(1, uc.args[0]);
	ASSERT_EQ(VEC, uc.args[1]);
	ASSERT_EQ(A(r_after_hlt), uc.args[2]);
	ASSERT_EQ(1, vm->halts);
	/* Host side: OUT, IN, MMIO read, MMIO write, the ucall. */
	ASSERT_EQ(5, vm->io_count);

	/* Unread records: POLLIN only; read and released: nothing. */
	pfd = (struct pollfd){ .fd = f.ft_fd, .events = POLLIN | POLLOUT };
	ASSERT_EQ(1, poll(&pfd, 1, 0));
	ASSERT_EQ(POLLIN, pfd.revents);
	ft_drain(&f.ring, &rs);
	ASSERT_EQ(0, poll(&pfd, 1, 0));
	if (rs.n != 10)
		recs_dump(&rs);
	ASSERT_EQ(10, rs.n);
	ASSERT_EQ(NULL, recs_check_seq(&rs, 1, 0));

	check_pio(_metadata, recs_at(&rs, 0), KVM_FT_REC_PIO_OUT, A(r_out), OUTPUT_PORT, 1, 'x');
	check_pio(_metadata, recs_at(&rs, 1), KVM_FT_REC_PIO_IN, A(r_in), RANDOM_PORT, 4,
		  (uint32_t)vm->io_log[1].data);
	ASSERT_EQ(s.in, (uint32_t)vm->io_log[1].data);
	check_mmio(_metadata, recs_at(&rs, 2), KVM_FT_REC_MMIO_READ, A(r_mmio_r), MMIO_R, 8,
		   vm->io_log[2].data);
	ASSERT_EQ(s.mmio, vm->io_log[2].data);
	check_mmio(_metadata, recs_at(&rs, 3), KVM_FT_REC_MMIO_WRITE, A(r_mmio_w), MMIO_W, 4,
		   MMIO_W_VAL);

	r = recs_at(&rs, 4);
	{
		const struct kvm_ft_rec_tsc *t = (const void *)r;

		ASSERT_EQ(KVM_FT_REC_RDTSC, r->type);
		ASSERT_EQ(sizeof(*t), r->len);
		ASSERT_EQ(0, r->flags);
		ASSERT_EQ(A(r_rdtsc), t->rip);
		ASSERT_EQ(s.tsc, t->tsc);
		ASSERT_EQ(0, t->aux);
		ASSERT_EQ(KVM_FT_INSN_RDTSC, t->insn);
	}
	r = recs_at(&rs, 5);
	{
		const struct kvm_ft_rec_cpuid *c = (const void *)r;

		ASSERT_EQ(KVM_FT_REC_CPUID, r->type);
		ASSERT_EQ(sizeof(*c), r->len);
		ASSERT_EQ(A(r_cpuid), c->rip);
		ASSERT_EQ(0, c->function);
		ASSERT_EQ(0, c->index);
		ASSERT_EQ(s.cpuid[0], c->eax);
		ASSERT_EQ(s.cpuid[1], c->ebx);
		ASSERT_EQ(s.cpuid[2], c->ecx);
		ASSERT_EQ(s.cpuid[3], c->edx);
	}
	r = recs_at(&rs, 6);
	{
		const struct kvm_ft_rec_msr *m = (const void *)r;

		ASSERT_EQ(KVM_FT_REC_RDMSR, r->type);
		ASSERT_EQ(sizeof(*m), r->len);
		ASSERT_EQ(A(r_rdmsr), m->rip);
		ASSERT_EQ(MSR_IA32_TSC, m->msr);
		ASSERT_EQ(0, m->flags);
		ASSERT_EQ(s.msr, m->value);
		ASSERT_GE(s.msr, s.tsc);	/* the same counter, read later */
	}
	r = recs_at(&rs, 7);
	{
		const struct kvm_ft_rec_hlt *h = (const void *)r;

		ASSERT_EQ(KVM_FT_REC_HLT, r->type);
		ASSERT_EQ(sizeof(*h), r->len);
		ASSERT_EQ(A(r_hlt), h->rip);
	}
	r = recs_at(&rs, 8);
	{
		const struct kvm_ft_rec_intr *in = (const void *)r;

		ASSERT_EQ(KVM_FT_REC_INTR, r->type);
		ASSERT_EQ(sizeof(*in), r->len);
		ASSERT_EQ(KVM_FT_RF_ASYNC, r->flags);
		ASSERT_EQ(8, r->landmark);	/* the HLT's */
		ASSERT_EQ(A(r_after_hlt), in->rip);
		ASSERT_EQ(VEC, in->vector);
		ASSERT_EQ(0, in->flags);	/* KVM_INTERRUPT: not replayable */
	}
	/* The ucall's OUT: its data is the address of the guest's struct ucall. */
	check_pio(_metadata, recs_at(&rs, 9), KVM_FT_REC_PIO_OUT, A(ucall_insn), UCALL_PORT, 4,
		  (uint32_t)vm->io_log[4].data);

	ft_stats(f.ft_fd, &st);
	ASSERT_EQ(10, st.records);
	ASSERT_EQ(9, st.sync_records);
	ASSERT_EQ(rs.len, st.bytes);
	ASSERT_EQ(0, st.bad_consumer);
	ASSERT_EQ(0, st.ring_waits);
	ASSERT_GE(st.exits, 10);
	ASSERT_EQ(0, st.rec_count[KVM_FT_REC_PAD]);
	ASSERT_EQ(2, st.rec_count[KVM_FT_REC_PIO_OUT]);
	for (int t = KVM_FT_REC_PIO_IN; t <= KVM_FT_REC_INTR; t++)
		if (t != KVM_FT_REC_PIO_OUT)
			ASSERT_EQ(1, st.rec_count[t]);
	ASSERT_EQ(0, st.rec_count[KVM_FT_REC_RDRAND]);
	ASSERT_EQ(11, f.ring.prod->next_seq);
	ASSERT_EQ(9, f.ring.prod->landmark);
	ASSERT_EQ(rs.len, ft_ring_producer(&f.ring));
	ASSERT_EQ(0, f.ring.prod->error);

	/* guest_return's UCALL_DONE: one more synchronous record. */
	vcpu_run_expect(vm, UCALL_DONE, &uc);
	recs_free(&rs);
	ASSERT_EQ(1, ft_drain(&f.ring, &rs));
	ASSERT_EQ(NULL, recs_check_seq(&rs, 11, 9));
	recs_free(&rs);
	ft_vm_teardown(&f);
}

static void guest_cpuid_leaves(void *arg)
{
	uint32_t *out = arg, r[4];

	for (uint32_t i = 0; i < 4; i++) {
		static const uint32_t leaves[4][2] = { { 1, 0 }, { 7, 0 }, { 0xd, 1 }, { 0x80000001, 0 } };

		cpuid(leaves[i][0], leaves[i][1], r);
		for (int j = 0; j < 4; j++)
			out[4 * i + j] = r[j];
	}
}

/* Proves: CPUID records carry the sub-leaf index and the exact registers for several leaves. */
TEST(cpuid_subleaves)
{
	static const uint32_t leaves[4][2] = { { 1, 0 }, { 7, 0 }, { 0xd, 1 }, { 0x80000001, 0 } };
	struct ft_vm f;
	struct recs rs = { 0 };
	uint64_t gpa;
	uint32_t *out;

	ft_vm_setup(&f, NULL, NULL, NULL, 0);
	gpa = vm_alloc(f.vm, 64);
	vm_set_entry(f.vm, guest_cpuid_leaves, (void *)(uintptr_t)gpa);
	vcpu_run_expect(f.vm, UCALL_DONE, NULL);
	out = vm_gpa2hva(f.vm, gpa, 64);
	ft_drain(&f.ring, &rs);
	ASSERT_EQ(5, rs.n);	/* 4 CPUID + the DONE ucall */
	ASSERT_EQ(NULL, recs_check_seq(&rs, 1, 0));
	for (int i = 0; i < 4; i++) {
		const struct kvm_ft_rec_cpuid *c = (const void *)recs_at(&rs, i);

		ASSERT_EQ(KVM_FT_REC_CPUID, c->hdr.type);
		ASSERT_EQ(leaves[i][0], c->function);
		ASSERT_EQ(leaves[i][1], c->index);
		ASSERT_EQ(out[4 * i], c->eax);
		ASSERT_EQ(out[4 * i + 1], c->ebx);
		ASSERT_EQ(out[4 * i + 2], c->ecx);
		ASSERT_EQ(out[4 * i + 3], c->edx);
	}
	recs_free(&rs);
	ft_vm_teardown(&f);
}

static void guest_out_loop(void *arg)
{
	uint64_t n = (uint64_t)(uintptr_t)arg;

	sti();
	for (uint64_t i = 0; i < n; i++)
		outb(OUTPUT_PORT, (uint8_t)i);
	cli();
	GUEST_SYNC(guest_irq.count);
}

/*
 * Proves: interrupts requested at random times (host thread, userspace
 * irqchip) each appear exactly once as an INTR record, in delivery order,
 * with the vector and the RIP the guest's handler saw, flagged ASYNC and
 * carrying the landmark of the last synchronous record before it.
 */
TEST(random_interrupts_recorded)
{
	uint64_t seed = kt_seed("random_interrupts_recorded");
	struct ft_vm f;
	struct recs rs = { 0 };
	struct ucall uc;
	uint64_t count, nintr = 0, nout = 0;
	const uint64_t n = 4000;

	ft_vm_setup(&f, NULL, guest_out_loop, (void *)(uintptr_t)n, 0);
	vm_irq_thread_start(f.vm, 0x41, 200, 3000, seed);
	vcpu_run_expect(f.vm, UCALL_SYNC, &uc);
	vm_irq_thread_stop(f.vm);
	count = uc.args[0];
	ASSERT_EQ(f.vm->irqs_injected, count);
	ASSERT_LT(0, count);
	ASSERT_GE(GUEST_IRQ_LOG, count);
	ft_drain(&f.ring, &rs);
	ASSERT_EQ(NULL, recs_check_seq(&rs, 1, 0));
	for (size_t i = 0; i < rs.n; i++) {
		const struct kvm_ft_rec *r = recs_at(&rs, i);
		const struct kvm_ft_rec_intr *in;
		uint64_t rip;

		if (r->type == KVM_FT_REC_PIO_OUT) {
			nout++;
			continue;
		}
		in = (const void *)r;
		rip = VM_GET_GLOBAL(f.vm, guest_irq.rip_log[nintr]);
		ASSERT_EQ(KVM_FT_REC_INTR, r->type);
		ASSERT_EQ(0x41, in->vector);
		ASSERT_EQ(rip, in->rip) TH_LOG("interrupt %llu", (unsigned long long)nintr);
		nintr++;
	}
	ASSERT_EQ(count, nintr) TH_LOG("%llu interrupts delivered, %llu recorded",
				       (unsigned long long)count, (unsigned long long)nintr);
	ASSERT_EQ(n + 1, nout);
	recs_free(&rs);
	ft_vm_teardown(&f);
}

#define STR_LEN 4096

struct str_bufs {
	uint8_t out[STR_LEN];
	uint8_t in[STR_LEN];
};

static void guest_sizes(void *arg)
{
	struct str_bufs *b = arg;
	uint64_t cnt;
	void *p;

	for (int i = 0; i < STR_LEN; i++)
		b->out[i] = (uint8_t)(i * 7 + 3);
	/* String PIO of one page each way: the largest input one exit can bring. */
	p = b->out;
	cnt = STR_LEN;
	__asm__ volatile("cld; rep outsb" : "+S"(p), "+c"(cnt) : "d"(OUTPUT_PORT) : "memory");
	p = b->in;
	cnt = STR_LEN / 2;
	__asm__ volatile("cld; rep insw" : "+D"(p), "+c"(cnt) : "d"(RANDOM_PORT) : "memory");
	/* Every PIO and MMIO access size. */
	inb(RANDOM_PORT);
	__asm__ volatile("inw %w1, %w0" : "=a"(cnt) : "d"(RANDOM_PORT) : "memory");
	outl(OUTPUT_PORT, 0x44434241);
	*(volatile uint8_t *)(VM_MMIO_BASE + 1) = 0x5a;
	*(volatile uint16_t *)(VM_MMIO_BASE + 2) = 0x1234;
	mmio_write64(VM_MMIO_BASE + 8, 0x0123456789abcdefULL);
	(void)*(volatile uint8_t *)(VM_MMIO_BASE + 3);
	(void)*(volatile uint16_t *)(VM_MMIO_BASE + 4);
	(void)mmio_read32(VM_MMIO_BASE + 0x10);
}

/*
 * Proves: PIO and MMIO records carry exactly the bytes of every access
 * size, and string PIO of a whole page (rep outsb / rep insw) is logged with
 * size, count and every data byte the guest sent or received (possibly
 * split over several exits, never lost or reordered): the records, taken
 * in order, reproduce the host's own log of served accesses byte for byte.
 */
TEST(pio_mmio_all_sizes_and_strings)
{
	struct vm_opts o = { .log_io = true };
	struct ft_vm f;
	struct recs rs = { 0 };
	struct str_bufs *b;
	uint64_t gpa, seed = kt_seed("pio_mmio_all_sizes_and_strings");
	size_t ev = 0;

	ft_vm_setup(&f, &o, NULL, NULL, 0);
	gpa = vm_alloc(f.vm, sizeof(*b));
	vm_set_entry(f.vm, guest_sizes, (void *)(uintptr_t)gpa);
	vm_seed(f.vm, seed);
	vcpu_run_expect(f.vm, UCALL_DONE, NULL);
	b = vm_gpa2hva(f.vm, gpa, sizeof(*b));
	ASSERT_EQ(0, memcmp(f.vm->output, b->out, STR_LEN));
	ft_drain(&f.ring, &rs);
	ASSERT_EQ(NULL, recs_check_seq(&rs, 1, 0));
	/* Walk records and the host's per-element log side by side. */
	for (size_t i = 0; i < rs.n; i++) {
		const struct kvm_ft_rec *r = recs_at(&rs, i);

		if (r->type == KVM_FT_REC_PIO_IN || r->type == KVM_FT_REC_PIO_OUT) {
			const struct kvm_ft_rec_pio *p = (const void *)r;

			ASSERT_EQ(sizeof(*p) + ((p->size * p->count + 7) & ~7U), r->len);
			for (uint32_t k = 0; k < p->count; k++, ev++) {
				const struct io_event *e = &f.vm->io_log[ev];

				ASSERT_GT(f.vm->io_count, ev);
				ASSERT_EQ(r->type == KVM_FT_REC_PIO_IN ? IO_PIO_IN : IO_PIO_OUT, e->kind);
				ASSERT_EQ(e->addr, p->port);
				ASSERT_EQ(e->size, p->size);
				ASSERT_EQ(0, memcmp(&e->data, p->data + k * p->size, p->size))
					TH_LOG("record %zu element %u", i, k);
			}
			for (uint32_t k = p->size * p->count; k < r->len - sizeof(*p); k++)
				ASSERT_EQ(0, p->data[k]);
		} else {
			const struct kvm_ft_rec_mmio *m = (const void *)r;
			const struct io_event *e = &f.vm->io_log[ev++];
			uint64_t d;

			ASSERT_TRUE(r->type == KVM_FT_REC_MMIO_READ || r->type == KVM_FT_REC_MMIO_WRITE);
			ASSERT_GT(f.vm->io_count, ev - 1);
			ASSERT_EQ(r->type == KVM_FT_REC_MMIO_READ ? IO_MMIO_READ : IO_MMIO_WRITE, e->kind);
			ASSERT_EQ(e->addr, m->gpa);
			ASSERT_EQ(e->size, m->len);
			memcpy(&d, m->data, 8);
			ASSERT_EQ(e->data, d);
		}
	}
	ASSERT_EQ(f.vm->io_count, ev);
	/* The page the guest received is the host's data (after the OUT elements). */
	for (size_t k = 0; k < STR_LEN / 2; k++)
		ASSERT_EQ(0, memcmp(&f.vm->io_log[STR_LEN + k].data, b->in + 2 * k, 2));
	recs_free(&rs);
	ft_vm_teardown(&f);
}

static void guest_rdrand(void *arg)
{
	uint64_t v;
	uint8_t ok;

	(void)arg;
	__asm__ volatile("rr_rdrand: rdrand %0; setc %1" : "=r"(v), "=qm"(ok) : : "memory");
	GUEST_SYNC(v, ok);
}

/*
 * Proves (VMX hosts only): RDRAND, hidden in CPUID, still exits and is
 * logged as a RDRAND record with the value the guest got. SVM cannot
 * intercept RDRAND at all (uapi header): skipped there.
 */
TEST(rdrand_recorded_on_vmx)
{
	extern char rr_rdrand[];
	struct ft_vm f;
	struct recs rs = { 0 };
	struct ucall uc;
	const struct kvm_ft_rec_rand *rr;

	ft_vm_setup(&f, NULL, guest_rdrand, NULL, 0);
	if (f.ring.info.vendor != KVM_FT_VENDOR_VMX) {
		ft_vm_teardown(&f);
		SKIP(return, "RDRAND cannot exit on SVM");
	}
	vcpu_run_expect(f.vm, UCALL_SYNC, &uc);
	ft_drain(&f.ring, &rs);
	ASSERT_EQ(2, rs.n);
	rr = (const void *)recs_at(&rs, 0);
	ASSERT_EQ(KVM_FT_REC_RDRAND, rr->hdr.type);
	ASSERT_EQ(sizeof(*rr), rr->hdr.len);
	ASSERT_EQ((uintptr_t)rr_rdrand, rr->rip);
	ASSERT_EQ(KVM_FT_INSN_RDRAND, rr->insn);
	ASSERT_EQ(uc.args[0], rr->value);
	recs_free(&rs);
	ft_vm_teardown(&f);
}

TEST_HARNESS_MAIN
