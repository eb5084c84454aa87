// SPDX-License-Identifier: GPL-2.0
/*
 * make bench: figures from one boot, all through the real kvm_ft.ko.
 *
 *  1. ring throughput: a guest RDTSC loop (one record per iteration) with a
 *     reader draining as fast as it can: records/s, MB/s, bytes/record;
 *  2. exit rate of an exit-heavy guest (CPUID loop: in-kernel exits; OUT
 *     loop: exits to this VMM) attached vs not attached, runs interleaved,
 *     as a ratio; for OUT also with nobody reading the ring during the run
 *     (the 4 MiB ring holds it), which isolates the module's own cost;
 *  3. average bytes per record of a mixed guest (PIO, MMIO, CPUID, RDTSC);
 *  4. replay speed: a replayable guest (IN, RDTSC, CPUID, OUT) recorded on
 *     one VM, then replayed on another from a pre-filled replay ring, as
 *     synchronous records/s of each and their ratio;
 *  5. interrupt delivery delay added by landmark deferral: IRQs queued with
 *     KVM_FT_QUEUE_ASYNC at random times into a recording guest that exits
 *     at every iteration, and into one that spins ~1 ms between exits;
 *     median/p99/max in microseconds (queue to the first exit after
 *     delivery, as the VMM sees it) and in guest exits;
 *  6. the same for a guest that never exits, with POSITION landmarks
 *     (position_us 1000): the delay (queue to the guest's handler, polled in
 *     guest memory) and in exits (the kicks), then the replay of that log:
 *     replay/record speed and the breakpoint (#DB) exits the backup took.
 *
 * Sizes can be changed with KVM_FT_BENCH_SCALE (default 1.0).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kvm_util.h"
#include "guest.h"
#include "ft_ring.h"

static void guest_rdtsc(void *arg)
{
	for (uint64_t i = (uint64_t)(uintptr_t)arg; i; i--)
		rdtsc();
}

static void guest_cpuid(void *arg)
{
	uint32_t r[4];

	for (uint64_t i = (uint64_t)(uintptr_t)arg; i; i--)
		cpuid(0, 0, r);
}

static void guest_out(void *arg)
{
	for (uint64_t i = (uint64_t)(uintptr_t)arg; i; i--)
		outb(OUTPUT_PORT, (uint8_t)i);
}

static void guest_mixed(void *arg)
{
	uint32_t r[4];

	for (uint64_t i = (uint64_t)(uintptr_t)arg; i; i--) {
		outb(OUTPUT_PORT, (uint8_t)i);
		inl(RANDOM_PORT);
		mmio_write32(VM_MMIO_BASE, (uint32_t)i);
		mmio_read64(VM_MMIO_BASE + 8);
		cpuid(1, 0, r);
		rdtsc();
	}
}

static void guest_replayable(void *arg)
{
	uint32_t r[4];

	for (uint64_t i = (uint64_t)(uintptr_t)arg; i; i--) {
		inl(RANDOM_PORT);
		rdtsc();
		cpuid(1, 0, r);
		outb(OUTPUT_PORT, (uint8_t)i);
	}
}

struct drain {
	struct ft_ring ring;
	int fd;
	volatile bool stop;
	uint64_t records, bytes_seen;
	const char *error;
};

/* Drain as fast as possible: spin on the producer position, poll when idle. */
static void *drain_fn(void *p)
{
	struct drain *d = p;
	struct pollfd pfd = { .fd = d->fd, .events = POLLIN };

	for (;;) {
		const struct kvm_ft_rec *rec;
		uint64_t n = 0;

		while ((rec = ft_ring_next(&d->ring))) {
			d->bytes_seen += rec->len;
			n++;
		}
		if (d->ring.error) {
			d->error = d->ring.error;
			return NULL;
		}
		d->records += n;
		ft_ring_release(&d->ring);
		if (!n) {
			if (__atomic_load_n(&d->stop, __ATOMIC_ACQUIRE))
				return NULL;
			poll(&pfd, 1, 10);
		}
	}
}

struct run {
	double secs;
	uint64_t exits, records, bytes, waits;
};

static struct run run_guest(void (*fn)(void *), uint64_t n, bool attached, uint32_t order,
			    bool reader)
{
	struct vm_opts o = { 0 };
	struct kvm_vm *vm = vm_create(&o, fn, (void *)(uintptr_t)n);
	struct drain d = { 0 };
	struct run r = { 0 };
	struct kvm_ft_stats st;
	struct ucall uc;
	pthread_t th;
	int dev = -1;
	double t0;

	if (attached) {
		dev = ft_open();
		KT_ASSERT(dev >= 0, "open /dev/kvm_ft: %s", strerror(-dev));
		d.fd = ft_attach(dev, vm->vm_fd, KVM_FT_MODE_RECORD, 0, order);
		KT_ASSERT(d.fd >= 0, "attach: %s", strerror(-d.fd));
		KT_ASSERT(!ft_ring_map(&d.ring, d.fd), "map");
		if (reader)
			KT_ASSERT(!pthread_create(&th, NULL, drain_fn, &d), "pthread_create");
	}
	t0 = kt_now();
	vcpu_run_expect(vm, UCALL_DONE, &uc);
	r.secs = kt_now() - t0;
	r.exits = vm->exits;
	if (attached) {
		__atomic_store_n(&d.stop, true, __ATOMIC_RELEASE);
		if (reader)
			pthread_join(th, NULL);
		else
			drain_fn(&d);
		KT_ASSERT(!d.error, "ring: %s", d.error);
		KT_ASSERT(!ioctl(d.fd, KVM_FT_GET_STATS, &st), "stats");
		KT_ASSERT(d.records == st.records, "read %llu records, module appended %llu",
			  (unsigned long long)d.records, (unsigned long long)st.records);
		r.exits = st.exits;
		r.records = st.records;
		r.bytes = st.bytes;
		r.waits = st.ring_waits;
		ft_ring_unmap(&d.ring);
		close(d.fd);
		close(dev);
	}
	vm_free(vm);
	return r;
}

static void exit_ratio(const char *name, void (*fn)(void *), uint64_t n, bool reader)
{
	struct run a = { 0 }, u = { 0 };

	/* Interleaved quarters so drift in the machine's speed hits both. */
	for (int i = 0; i < 4; i++) {
		struct run r = run_guest(fn, n / 4, i & 1, 22, reader);
		struct run *t = (i & 1) ? &a : &u;

		t->secs += r.secs;
		t->exits += n / 4;	/* one guest exit per iteration */
	}
	printf("# bench: %-5s loop, %llu iterations%s: %.0f exits/s unattached, %.0f exits/s attached, attached/unattached = %.3f\n",
	       name, (unsigned long long)n, reader ? "" : " (no reader while it runs)",
	       u.exits / u.secs, a.exits / a.secs, (a.exits / a.secs) / (u.exits / u.secs));
}

struct golive {
	int fd;
	const struct kvm_ft_replay_status *st;
	uint64_t end;
	volatile bool stop;
};

/* Switch the replaying VM to LIVE once it consumed everything and waits. */
static void *golive_fn(void *p)
{
	struct golive *g = p;
	struct pollfd pfd = { .fd = g->fd, .events = POLLOUT };

	/* Blocks until the vCPU starts to wait (POLLOUT): no CPU taken from it. */
	while (!__atomic_load_n(&g->stop, __ATOMIC_ACQUIRE)) {
		poll(&pfd, 1, 100);
		if (__atomic_load_n(&g->st->error, __ATOMIC_ACQUIRE))
			return NULL;
		if (__atomic_load_n(&g->st->consumer, __ATOMIC_ACQUIRE) == g->end &&
		    (__atomic_load_n(&g->st->flags, __ATOMIC_ACQUIRE) & KVM_FT_RING_F_WAITING)) {
			ioctl(g->fd, KVM_FT_SET_MODE, KVM_FT_MODE_LIVE);
			return NULL;
		}
	}
	return NULL;
}

/* B's replay ring (mapped), filled from A's log. */
struct replay_ring {
	struct kvm_ft_info info;
	void *map;
	uint64_t end;
};

/*
 * Map @fb's replay ring and copy every record of @ring but the last (A's
 * DONE ucall, which B runs live) into it; @g is set up to go live there.
 */
static void replay_fill(struct replay_ring *rr, int fb, struct ft_ring *ring, struct golive *g)
{
	const struct kvm_ft_rec *rec, *last = NULL;
	uint8_t *data;

	KT_ASSERT(!ioctl(fb, KVM_FT_GET_INFO, &rr->info), "info");
	g->st = mmap(NULL, rr->info.page_size, PROT_READ, MAP_SHARED, fb,
		     KVM_FT_MMAP_REPLAY_STATUS_OFF);
	rr->map = mmap(NULL, rr->info.producer_len, PROT_READ | PROT_WRITE, MAP_SHARED, fb,
		       KVM_FT_MMAP_REPLAY_RING_OFF);
	KT_ASSERT(g->st != MAP_FAILED && rr->map != MAP_FAILED, "map replay ring");
	data = (uint8_t *)rr->map + rr->info.page_size;
	rr->end = 0;
	/* The 16 MiB rings never wrap here. */
	while ((rec = ft_ring_next(ring))) {
		if (last) {
			KT_ASSERT(rr->end + last->len <= rr->info.data_size, "replay ring too small");
			memcpy(data + rr->end, last, last->len);
			rr->end += last->len;
		}
		last = rec;
	}
	KT_ASSERT(!ring->error, "ring: %s", ring->error);
	__atomic_store_n(&((struct kvm_ft_replay_producer *)rr->map)->producer, rr->end,
			 __ATOMIC_RELEASE);
	g->fd = fb;
	g->end = rr->end;
}

static void replay_unmap(struct replay_ring *rr, struct golive *g)
{
	munmap(rr->map, rr->info.producer_len);
	munmap((void *)g->st, rr->info.page_size);
}

/* Run B (replaying) to its DONE ucall, going live at the end of the log. */
static double replay_run(struct kvm_vm *b, struct golive *g)
{
	struct ucall uc;
	pthread_t th;
	double t0;

	KT_ASSERT(!pthread_create(&th, NULL, golive_fn, g), "pthread_create");
	t0 = kt_now();
	vcpu_run_expect(b, UCALL_DONE, &uc);
	t0 = kt_now() - t0;
	__atomic_store_n(&g->stop, true, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	return t0;
}

static void replay_speed(uint64_t n)
{
	struct vm_opts o = { 0 };
	struct kvm_vm *a = vm_create(&o, guest_replayable, (void *)(uintptr_t)n);
	struct kvm_vm *b = vm_create(&o, guest_replayable, (void *)(uintptr_t)n);
	struct kvm_ft_stats sa, sb;
	struct replay_ring rr;
	struct golive g = { 0 };
	struct ft_ring ring;
	struct ucall uc;
	double t0, trec, trep;
	int dev = ft_open(), fa, fb;

	KT_ASSERT(dev >= 0, "open /dev/kvm_ft");
	fa = ft_attach(dev, a->vm_fd, KVM_FT_MODE_RECORD, 0, 24);
	fb = ft_attach(dev, b->vm_fd, KVM_FT_MODE_REPLAY, 0, 24);
	KT_ASSERT(fa >= 0 && fb >= 0, "attach");
	KT_ASSERT(!ft_ring_map(&ring, fa), "map");
	vm_seed(b, 12345);
	t0 = kt_now();
	vcpu_run_expect(a, UCALL_DONE, &uc);
	trec = kt_now() - t0;

	replay_fill(&rr, fb, &ring, &g);
	trep = replay_run(b, &g);
	KT_ASSERT(!ioctl(fa, KVM_FT_GET_STATS, &sa) && !ioctl(fb, KVM_FT_GET_STATS, &sb), "stats");
	KT_ASSERT(sb.sync_records + 1 == sa.sync_records, "replayed %llu of %llu records",
		  (unsigned long long)sb.sync_records, (unsigned long long)sa.sync_records);
	KT_ASSERT(!memcmp(a->mem, b->mem, a->mem_size), "replayed memory differs");
	printf("# bench: replay (IN, RDTSC, CPUID, OUT loop, %llu iterations): record %.0f records/s, "
	       "replay %.0f records/s, replay/record = %.3f, %llu replay waits\n", (unsigned long long)n,
	       sa.sync_records / trec, sb.sync_records / trep, trec / trep,
	       (unsigned long long)sb.ring_waits);
	replay_unmap(&rr, &g);
	ft_ring_unmap(&ring);
	close(fa);
	close(fb);
	close(dev);
	vm_free(a);
	vm_free(b);
}

/* Guests for the delay: exit (IN) every iteration, spinning `spin` between. */
static volatile uint64_t delay_stop;

static void guest_irq_loop(void *arg)
{
	uint64_t spin = (uint64_t)(uintptr_t)arg, h = 0;

	sti();
	while (!delay_stop) {
		for (uint64_t j = spin; j; j--) {
			h += j;
			__asm__ volatile("" : "+r"(h));
		}
		inb(RANDOM_PORT);
	}
	cli();
}

struct delay {
	struct kvm_vm *vm;
	int fd;
	unsigned int n, done;
	volatile uint64_t *count;	/* guest_irq.count in guest memory */
	uint64_t seen;
	volatile bool delivered;
	double t_q;
	uint64_t exits_q;
	double *us, *exits;
};

static uint64_t ft_exits(int fd)
{
	struct kvm_ft_stats st;

	KT_ASSERT(!ioctl(fd, KVM_FT_GET_STATS, &st), "stats");
	return st.exits;
}

/* vCPU thread, after each exit: did the guest take the interrupt? */
static void delay_exit_hook(struct kvm_vm *vm)
{
	struct delay *d = vm->exit_hook_arg;

	if (*d->count == d->seen)
		return;
	d->seen = *d->count;
	d->us[d->done] = (kt_now() - d->t_q) * 1e6;
	d->exits[d->done] = (double)(ft_exits(d->fd) - d->exits_q);
	d->done++;
	__atomic_store_n(&d->delivered, true, __ATOMIC_RELEASE);
}

static void *delay_queue_fn(void *p)
{
	struct delay *d = p;
	uint64_t rng = 0x1234567;

	for (unsigned int i = 0; i < d->n; i++) {
		double t0;

		usleep(50 + (unsigned int)(kt_rand(&rng) % 500));
		__atomic_store_n(&d->delivered, false, __ATOMIC_RELEASE);
		d->exits_q = ft_exits(d->fd);
		d->t_q = kt_now();
		KT_ASSERT(!vm_queue_async(d->vm, KVM_FT_ASYNC_IRQ, 0x50, 0, NULL, 0), "queue");
		for (t0 = kt_now(); !__atomic_load_n(&d->delivered, __ATOMIC_ACQUIRE); usleep(20))
			KT_ASSERT(kt_now() - t0 < 10, "interrupt %u not delivered in 10 s", i);
	}
	VM_SET_GLOBAL(d->vm, delay_stop, 1);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void irq_delay(const char *name, uint64_t spin, unsigned int n)
{
	struct vm_opts o = { 0 };
	struct kvm_vm *vm = vm_create(&o, guest_irq_loop, (void *)(uintptr_t)spin);
	struct delay d = { .vm = vm, .n = n };
	struct drain dr = { 0 };
	pthread_t tq, td;
	struct ucall uc;
	int dev = ft_open();

	KT_ASSERT(dev >= 0, "open /dev/kvm_ft");
	d.fd = ft_attach(dev, vm->vm_fd, KVM_FT_MODE_RECORD, 0, 22);
	KT_ASSERT(d.fd >= 0, "attach");
	KT_ASSERT(!ft_ring_map(&dr.ring, d.fd), "map");
	dr.fd = d.fd;
	d.count = vm_gpa2hva(vm, (uint64_t)(uintptr_t)&guest_irq.count, 8);
	d.us = calloc(n, sizeof(double));
	d.exits = calloc(n, sizeof(double));
	KT_ASSERT(d.us && d.exits, "calloc");
	vm_ft_async(vm, d.fd, false);
	vm->exit_hook = delay_exit_hook;
	vm->exit_hook_arg = &d;
	KT_ASSERT(!pthread_create(&td, NULL, drain_fn, &dr), "pthread_create");
	KT_ASSERT(!pthread_create(&tq, NULL, delay_queue_fn, &d), "pthread_create");
	vcpu_run_expect(vm, UCALL_DONE, &uc);
	pthread_join(tq, NULL);
	__atomic_store_n(&dr.stop, true, __ATOMIC_RELEASE);
	pthread_join(td, NULL);
	KT_ASSERT(d.done == n, "%u of %u interrupts measured", d.done, n);
	qsort(d.us, n, sizeof(double), cmp_double);
	qsort(d.exits, n, sizeof(double), cmp_double);
	printf("# bench: IRQ delay (%s, %u IRQs): median %.0f us / %.0f exits, p99 %.0f us / %.0f exits, "
	       "max %.0f us / %.0f exits\n", name, n, d.us[n / 2], d.exits[n / 2],
	       d.us[n * 99 / 100], d.exits[n * 99 / 100], d.us[n - 1], d.exits[n - 1]);
	free(d.us);
	free(d.exits);
	ft_ring_unmap(&dr.ring);
	close(d.fd);
	close(dev);
	vm_free(vm);
}

/*
 * Exit-free guest for POSITION landmarks: 64 mixes unrolled per iteration
 * (a backup's breakpoint hits once per iteration: the #DB cost), until
 * the DMA that sets spin_stop.
 */
static volatile uint64_t spin_stop;

static void guest_spin_free(void *arg)
{
	uint64_t h = 1;

	sti();
	for (uint64_t i = 0; !spin_stop; i++) {
#pragma GCC unroll 64
		for (int k = 0; k < 64; k++) {
			h ^= i + (uint64_t)k;
			h *= 0x9e3779b97f4a7c15ULL;
			h ^= h >> 29;
		}
	}
	cli();
	outl(OUTPUT_PORT, (uint32_t)h);
}

/* Queues n IRQs into the spinning guest, times each by polling guest memory. */
static void *pos_queue_fn(void *p)
{
	struct delay *d = p;
	uint64_t rng = 0x7654321, one = 1;

	for (unsigned int i = 0; i < d->n; i++) {
		uint64_t c0 = *d->count;
		double t0;

		usleep(50 + (unsigned int)(kt_rand(&rng) % 500));
		d->exits_q = ft_exits(d->fd);
		t0 = kt_now();
		KT_ASSERT(!vm_queue_async(d->vm, KVM_FT_ASYNC_IRQ, 0x50, 0, NULL, 0), "queue");
		while (*d->count == c0) {
			KT_ASSERT(kt_now() - t0 < 10, "interrupt %u not delivered in 10 s", i);
			usleep(20);
		}
		d->us[d->done] = (kt_now() - t0) * 1e6;
		d->exits[d->done++] = (double)(ft_exits(d->fd) - d->exits_q);
	}
	KT_ASSERT(!vm_queue_async(d->vm, KVM_FT_ASYNC_DMA, 0, (uint64_t)(uintptr_t)&spin_stop,
				  &one, sizeof(one)), "queue the stop DMA");
	return NULL;
}

/*
 * The bound with positions on: delivery delay of IRQs queued into a guest
 * that never exits (recorded with @pos_us), then the replay of that log on
 * a second VM: its speed relative to the recording and the breakpoint
 * exits (#DB) it took to find the positions.
 */
static void position_delay(uint32_t pos_us, unsigned int n)
{
	struct vm_opts o = { 0 };
	struct kvm_vm *a = vm_create(&o, guest_spin_free, NULL);
	struct kvm_vm *b = vm_create(&o, guest_spin_free, NULL);
	struct delay d = { .vm = a, .n = n };
	struct kvm_ft_stats sa, sb;
	struct replay_ring rr;
	struct golive g = { 0 };
	struct ft_ring ring;
	struct ucall uc;
	pthread_t tq;
	double t0, trec, trep;
	int dev = ft_open(), fb;

	KT_ASSERT(dev >= 0, "open /dev/kvm_ft");
	d.fd = ft_attach_pos(dev, a->vm_fd, KVM_FT_MODE_RECORD, 0, 24, KVM_FT_DIGEST_OFF, pos_us);
	fb = ft_attach_pos(dev, b->vm_fd, KVM_FT_MODE_REPLAY, 0, 24, KVM_FT_DIGEST_OFF, 0);
	KT_ASSERT(d.fd >= 0 && fb >= 0, "attach");
	KT_ASSERT(!ft_ring_map(&ring, d.fd), "map");
	d.count = vm_gpa2hva(a, (uint64_t)(uintptr_t)&guest_irq.count, 8);
	d.us = calloc(n, sizeof(double));
	d.exits = calloc(n, sizeof(double));
	KT_ASSERT(d.us && d.exits, "calloc");
	vm_ft_async(a, d.fd, false);
	vm_ft_async(b, fb, true);
	KT_ASSERT(!pthread_create(&tq, NULL, pos_queue_fn, &d), "pthread_create");
	t0 = kt_now();
	vcpu_run_expect(a, UCALL_DONE, &uc);
	trec = kt_now() - t0;
	pthread_join(tq, NULL);
	KT_ASSERT(d.done == n, "%u of %u interrupts measured", d.done, n);

	replay_fill(&rr, fb, &ring, &g);
	trep = replay_run(b, &g);
	KT_ASSERT(!ioctl(d.fd, KVM_FT_GET_STATS, &sa) && !ioctl(fb, KVM_FT_GET_STATS, &sb), "stats");
	KT_ASSERT(sb.positions == sa.positions, "B found %llu of %llu positions",
		  (unsigned long long)sb.positions, (unsigned long long)sa.positions);
	KT_ASSERT(!memcmp(a->mem, b->mem, a->mem_size), "replayed memory differs");
	qsort(d.us, n, sizeof(double), cmp_double);
	qsort(d.exits, n, sizeof(double), cmp_double);
	printf("# bench: IRQ delay (guest never exits, position_us %u, %u IRQs): median %.0f us / %.0f exits, "
	       "p99 %.0f us / %.0f exits, max %.0f us / %.0f exits; %llu positions, %llu kicks\n",
	       pos_us, n, d.us[n / 2], d.exits[n / 2], d.us[n * 99 / 100], d.exits[n * 99 / 100],
	       d.us[n - 1], d.exits[n - 1], (unsigned long long)sa.positions,
	       (unsigned long long)sa.kicks);
	printf("# bench: replay of that exit-free guest: record %.2f s, replay %.2f s, replay/record = %.3f, "
	       "%llu breakpoint exits (#DB) for %llu positions\n", trec, trep, trec / trep,
	       (unsigned long long)sb.kicks, (unsigned long long)sb.positions);
	free(d.us);
	free(d.exits);
	replay_unmap(&rr, &g);
	ft_ring_unmap(&ring);
	close(d.fd);
	close(fb);
	close(dev);
	vm_free(a);
	vm_free(b);
}

int main(void)
{
	const char *env = getenv("KVM_FT_BENCH_SCALE");
	double scale = env ? atof(env) : 1.0;
	uint64_t n_tp = (uint64_t)(300000 * scale), n_exit = (uint64_t)(80000 * scale);
	uint64_t n_mixed = (uint64_t)(5000 * scale);
	struct run r;
	int dev = ft_open();

	if (dev < 0) {
		printf("# bench: /dev/kvm_ft: %s\n", strerror(-dev));
		return 1;
	}
	close(dev);
	printf("# bench: kvm_ft in nested KVM under QEMU TCG (figures are for this test bed)\n");

	r = run_guest(guest_rdtsc, n_tp, true, 22, true);
	printf("# bench: ring throughput (RDTSC loop, 4 MiB ring, reader draining at full speed): "
	       "%llu records in %.2f s = %.0f records/s, %.2f MB/s, %.1f bytes/record, %llu ring waits\n",
	       (unsigned long long)r.records, r.secs, r.records / r.secs, r.bytes / r.secs / 1e6,
	       (double)r.bytes / r.records, (unsigned long long)r.waits);

	exit_ratio("CPUID", guest_cpuid, n_exit, true);
	exit_ratio("OUT", guest_out, n_exit, true);
	/* The same without a reader thread: the module's own cost per exit. */
	exit_ratio("OUT", guest_out, n_exit, false);

	r = run_guest(guest_mixed, n_mixed, true, 22, true);
	printf("# bench: mixed guest (OUT, IN, MMIO write, MMIO read, CPUID, RDTSC): %llu records, "
	       "%.1f bytes/record, %.0f records/s\n",
	       (unsigned long long)r.records, (double)r.bytes / r.records, r.records / r.secs);

	for (int i = 0; i < 2; i++)
		replay_speed(n_mixed * 4);

	irq_delay("guest exits every iteration", 0, (unsigned int)(500 * scale));
	/* No exit for ~1 ms: without a fallback the IRQ waits for the next exit. */
	irq_delay("guest spins 300000 iterations between exits", 300000,
		  (unsigned int)(100 * scale));
	/* No exit at all: positions bound the delay (and cost the backup #DB exits). */
	position_delay(KVM_FT_POSITION_US_SUGGESTED, (unsigned int)(100 * scale));
	return 0;
}
