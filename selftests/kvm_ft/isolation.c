// SPDX-License-Identifier: GPL-2.0
/*
 * Two attached VMs running at the same time are isolated: each ring holds
 * exactly its own guest's records, and an unattached VM running beside them
 * adds nothing to either ring.
 */
#include "ft_test.h"

#define N_OUT	3000

static void guest_out(void *arg)
{
	uint8_t tag = (uint8_t)(uintptr_t)arg;

	for (int i = 0; i < N_OUT; i++) {
		outb(OUTPUT_PORT, tag);
		rdtsc();
	}
	GUEST_SYNC(tag);
}

struct worker {
	struct kvm_vm *vm;
	struct ft_ring *ring;	/* NULL: unattached */
	struct recs rs;
	bool failed;
};

static void *run_vm(void *p)
{
	struct worker *w = p;
	struct ucall uc;

	/* The 1 MiB ring holds all of it: read after the run. */
	if (vcpu_run(w->vm, &uc) != UCALL_SYNC)
		w->failed = true;
	if (w->ring)
		ft_drain(w->ring, &w->rs);
	return NULL;
}

/*
 * Proves: VM 'A' and VM 'B' (attached, with distinct vm_id) and VM 'C'
 * (unattached) run concurrently; ring A has exactly A's 2 * 3000 + 1
 * records (OUT 'A' / RDTSC alternating, then the ucall) and ring B exactly
 * B's, each gapless from seq 1.
 */
TEST(two_vms_isolated)
{
	struct ft_vm a, b;
	struct kvm_vm *c = vm_create(NULL, guest_out, (void *)'C');
	struct worker w[3] = { { 0 } };
	pthread_t th[3];

	ft_vm_setup(&a, NULL, guest_out, (void *)'A', 0);
	ft_vm_setup(&b, NULL, guest_out, (void *)'B', 0);
	ASSERT_NE(a.ring.info.vm_id, b.ring.info.vm_id);
	w[0] = (struct worker){ .vm = a.vm, .ring = &a.ring };
	w[1] = (struct worker){ .vm = b.vm, .ring = &b.ring };
	w[2] = (struct worker){ .vm = c };
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, run_vm, &w[i]));
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(0, pthread_join(th[i], NULL));
	for (int i = 0; i < 3; i++)
		ASSERT_FALSE(w[i].failed);

	for (int i = 0; i < 2; i++) {
		struct recs *rs = &w[i].rs;
		uint8_t tag = i ? 'B' : 'A';
		struct kvm_ft_stats st;

		ASSERT_EQ(2 * N_OUT + 1, rs->n);
		ASSERT_EQ(NULL, recs_check_seq(rs, 1, 0));
		for (int k = 0; k < 2 * N_OUT; k++) {
			const struct kvm_ft_rec *r = recs_at(rs, k);

			if (k % 2 == 0) {
				const struct kvm_ft_rec_pio *p = (const void *)r;

				ASSERT_EQ(KVM_FT_REC_PIO_OUT, r->type);
				ASSERT_EQ(OUTPUT_PORT, p->port);
				ASSERT_EQ(tag, p->data[0]) TH_LOG("ring %c record %d", tag, k);
			} else {
				ASSERT_EQ(KVM_FT_REC_RDTSC, r->type);
			}
		}
		ASSERT_EQ(KVM_FT_REC_PIO_OUT, recs_at(rs, 2 * N_OUT)->type);
		ft_stats(i ? b.ft_fd : a.ft_fd, &st);
		ASSERT_EQ(2 * N_OUT + 1, st.records);
		ASSERT_EQ(N_OUT, st.rec_count[KVM_FT_REC_RDTSC]);
		recs_free(rs);
	}
	ASSERT_EQ(N_OUT, c->output_len);
	ft_vm_teardown(&a);
	ft_vm_teardown(&b);
	vm_free(c);
}

TEST_HARNESS_MAIN
