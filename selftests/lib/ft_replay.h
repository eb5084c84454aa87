/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Writer of a kvm_ft replay ring (uapi/linux/kvm_ft.h, "THE REPLAY RING"):
 * maps the status page and the ring, copies records in (with pads at the
 * end of the data area, waiting for space) and publishes the producer
 * position with a store-release.
 */
#ifndef KVM_FT_SELFTEST_FT_REPLAY_H
#define KVM_FT_SELFTEST_FT_REPLAY_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm_ft.h>

struct rp {
	int fd;				/* the ft fd (not owned) */
	struct kvm_ft_info info;
	const struct kvm_ft_replay_status *st;
	struct kvm_ft_replay_producer *prod;
	uint8_t *data;
	uint64_t pos;			/* end of what was written */
};

/* GET_INFO and map both parts; 0 or -errno. */
int rp_map(struct rp *w, int fd);
void rp_unmap(struct rp *w);

/* load_acquire of status->consumer. */
static inline uint64_t rp_consumer(const struct rp *w)
{
	return __atomic_load_n(&w->st->consumer, __ATOMIC_ACQUIRE);
}

/* store_release of what was written into producer->producer. */
static inline void rp_publish(struct rp *w)
{
	__atomic_store_n(&w->prod->producer, w->pos, __ATOMIC_RELEASE);
}

/* Copy @len bytes of a record; waits for space (publishing what it has). */
void rp_write(struct rp *w, const void *rec, uint32_t len);

/*
 * A thread that switches the replaying VM to LIVE once every published
 * record is consumed and the vCPU waits for more (the end of a test
 * stream), or notes the ring's error. After 20 s, or when told to stop,
 * it detaches the VM so that a stuck vCPU returns and the test can fail.
 */
struct golive {
	struct rp *w;
	volatile bool stop;
	bool went_live;
	uint32_t error;
};

void *golive_fn(void *golive);

#endif
