/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Reader of a kvm_ft log ring (uapi/linux/kvm_ft.h, "THE LOG RING"): maps
 * both parts, walks the records between the consumer and the producer
 * position and publishes the consumer position with a store-release.
 */
#ifndef KVM_FT_SELFTEST_FT_RING_H
#define KVM_FT_SELFTEST_FT_RING_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm_ft.h>

struct ft_ring {
	int fd;				/* the ft fd (not owned) */
	struct kvm_ft_info info;
	struct kvm_ft_ring_consumer *cons;
	const struct kvm_ft_ring_producer *prod;
	const uint8_t *data;
	uint64_t pos;			/* next record to read */
	uint64_t prod_seen;		/* producer position last loaded */
	uint64_t pads;			/* pads skipped */
	const char *error;		/* set when a record was malformed */
};

/* Open /dev/kvm_ft; -errno on failure. */
int ft_open(void);
/*
 * KVM_FT_ATTACH without register digests (tests of exact records); returns
 * the ft fd or -errno.
 */
int ft_attach(int dev_fd, int vm_fd, uint32_t mode, uint32_t flags, uint32_t ring_order);
/* The same with a digest interval (0: the module's default). */
int ft_attach_digest(int dev_fd, int vm_fd, uint32_t mode, uint32_t flags,
		     uint32_t ring_order, uint32_t digest_interval);
/* ... and the POSITION bound (0 = default, KVM_FT_POSITION_OFF). */
int ft_attach_pos(int dev_fd, int vm_fd, uint32_t mode, uint32_t flags, uint32_t ring_order,
		  uint32_t digest_interval, uint32_t position_us);

/* GET_INFO and map both parts; 0 or -errno. */
int ft_ring_map(struct ft_ring *r, int ft_fd);
void ft_ring_unmap(struct ft_ring *r);

/* load_acquire of producer->producer. */
static inline uint64_t ft_ring_producer(const struct ft_ring *r)
{
	return __atomic_load_n(&r->prod->producer, __ATOMIC_ACQUIRE);
}

/*
 * Next record (pads skipped) or NULL when none is published yet (or on a
 * malformed record: r->error says why). The record stays valid until
 * ft_ring_release() hands its space back.
 */
const struct kvm_ft_rec *ft_ring_next(struct ft_ring *r);
/* store_release of the read position into consumer->consumer. */
void ft_ring_release(struct ft_ring *r);

const char *ft_rec_type_name(unsigned int type);

#endif
