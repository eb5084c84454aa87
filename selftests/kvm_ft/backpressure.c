// SPDX-License-Identifier: GPL-2.0
/*
 * No record is ever lost: a guest produces KVM_FT_BP_RECORDS (default one
 * million) RDTSC records through a 64 KiB ring while a deliberately slow
 * reader drains it. The vCPU must wait for space (ring_waits > 0), and the
 * reader must see every seq exactly once, in order, with exactly the TSC
 * values the guest got (their XOR and sum match the guest's).
 */
#include <time.h>

#include "ft_test.h"

extern char bp_rdtsc[];

struct bp_result {
	uint64_t xor, sum, n;
};

static void guest_rdtsc_loop(void *arg)
{
	uint64_t n = (uint64_t)(uintptr_t)arg, x = 0, s = 0;
	uint32_t lo, hi;

	for (uint64_t i = 0; i < n; i++) {
		__asm__ volatile("bp_rdtsc: rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
		x ^= (uint64_t)hi << 32 | lo;
		s += (uint64_t)hi << 32 | lo;
	}
	GUEST_SYNC(x, s, n);
}

struct reader {
	struct ft_ring *ring;
	int ft_fd;
	uint64_t expect_n;	/* RDTSC records, then one ucall */
	unsigned int sleep_us;	/* after every drain: the slowness */
	double stall_every, stall_s;	/* and a long stall this often */
	uint64_t stalls;
	/* results */
	uint64_t seen, xor, sum, last_tsc, polls;
	const char *error;
	uint64_t error_seq;
};

static void *reader_fn(void *p)
{
	struct reader *rd = p;
	struct ft_ring *r = rd->ring;
	struct pollfd pfd = { .fd = rd->ft_fd, .events = POLLIN };
	uint64_t seq = 1;
	double last_stall = kt_now();

	while (seq <= rd->expect_n + 1 && !rd->error) {
		const struct kvm_ft_rec *rec;

		rd->polls++;
		if (poll(&pfd, 1, 10000) == 0) {
			rd->error = "no record for 10 s";
			break;
		}
		while ((rec = ft_ring_next(r))) {
			if (rec->seq != seq || rec->landmark != seq) {
				rd->error = "seq or landmark out of order";
				rd->error_seq = seq;
				break;
			}
			if (seq <= rd->expect_n) {
				const struct kvm_ft_rec_tsc *t = (const void *)rec;

				if (rec->type != KVM_FT_REC_RDTSC || rec->len != sizeof(*t) ||
				    t->rip != (uintptr_t)bp_rdtsc || t->tsc < rd->last_tsc) {
					rd->error = "bad RDTSC record";
					rd->error_seq = seq;
					break;
				}
				rd->last_tsc = t->tsc;
				rd->xor ^= t->tsc;
				rd->sum += t->tsc;
			} else if (rec->type != KVM_FT_REC_PIO_OUT) {
				rd->error = "last record is not the ucall";
				break;
			}
			seq++;
			rd->seen++;
		}
		if (r->error && !rd->error)
			rd->error = r->error;
		ft_ring_release(r);
		if (rd->sleep_us)
			usleep(rd->sleep_us);
		/* Stall long enough for the vCPU to fill the whole ring. */
		if (kt_now() - last_stall > rd->stall_every) {
			usleep((useconds_t)(rd->stall_s * 1e6));
			last_stall = kt_now();
			rd->stalls++;
		}
	}
	return NULL;
}

FIXTURE(bp) {
	struct ft_vm f;
};

FIXTURE_SETUP(bp)
{
	ft_vm_setup(&self->f, NULL, NULL, NULL, KVM_FT_RING_ORDER_MIN);
}

FIXTURE_TEARDOWN(bp)
{
	ft_vm_teardown(&self->f);
}

TEST_F_TIMEOUT(bp, million_records_slow_reader, 280)
{
	const char *env = getenv("KVM_FT_BP_RECORDS");
	uint64_t n = env ? strtoull(env, NULL, 0) : 1000000;
	struct reader rd = {
		.ring = &self->f.ring, .ft_fd = self->f.ft_fd, .expect_n = n, .sleep_us = 5000,
		.stall_every = 5.0, .stall_s = 0.5,
	};
	struct kvm_ft_stats st;
	struct ucall uc;
	pthread_t th;
	double t0, t1;

	vm_set_entry(self->f.vm, guest_rdtsc_loop, (void *)(uintptr_t)n);
	ASSERT_EQ(0, pthread_create(&th, NULL, reader_fn, &rd));
	t0 = kt_now();
	vcpu_run_expect(self->f.vm, UCALL_SYNC, &uc);
	t1 = kt_now();
	ASSERT_EQ(0, pthread_join(th, NULL));
	ASSERT_EQ(NULL, rd.error) TH_LOG("at seq %llu", (unsigned long long)rd.error_seq);
	ASSERT_EQ(n + 1, rd.seen);
	ASSERT_EQ(uc.args[2], n);
	ASSERT_EQ(uc.args[0], rd.xor);
	ASSERT_EQ(uc.args[1], rd.sum);

	ft_stats(self->f.ft_fd, &st);
	ASSERT_EQ(n + 1, st.records);
	ASSERT_EQ(n + 1, st.sync_records);
	ASSERT_EQ(n, st.rec_count[KVM_FT_REC_RDTSC]);
	ASSERT_EQ(ft_ring_producer(&self->f.ring), st.bytes);
	ASSERT_EQ(n + 2, self->f.ring.prod->next_seq);
	ASSERT_EQ(0, self->f.ring.prod->error);
	ASSERT_EQ(0, st.bad_consumer);
	/* The slow reader made the vCPU wait, and the header says so too. */
	ASSERT_LT(0, st.ring_waits);
	ASSERT_LT(0, st.ring_wait_ns);
	ASSERT_EQ(st.ring_waits, self->f.ring.prod->ring_waits);
	ASSERT_EQ(0, self->f.ring.prod->flags & KVM_FT_RING_F_WAITING);
	/* 48-byte records do not divide 64 KiB: the ring wrapped with pads. */
	ASSERT_LT(0, self->f.ring.pads);
	TH_LOG("%llu records in %.1f s (%.0f/s), %llu ring waits (%.2f s), %llu wakeups, %llu polls, %llu reader stalls",
	       (unsigned long long)(n + 1), t1 - t0, (n + 1) / (t1 - t0),
	       (unsigned long long)st.ring_waits, st.ring_wait_ns / 1e9,
	       (unsigned long long)st.wakeups, (unsigned long long)rd.polls,
	       (unsigned long long)rd.stalls);
}

TEST_HARNESS_MAIN
