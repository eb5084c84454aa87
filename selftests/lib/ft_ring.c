// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ft_ring.h"

int ft_open(void)
{
	int fd = open("/dev/" KVM_FT_DEVICE_NAME, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int ft_attach(int dev_fd, int vm_fd, uint32_t mode, uint32_t flags, uint32_t ring_order)
{
	return ft_attach_digest(dev_fd, vm_fd, mode, flags, ring_order, KVM_FT_DIGEST_OFF);
}

int ft_attach_digest(int dev_fd, int vm_fd, uint32_t mode, uint32_t flags,
		     uint32_t ring_order, uint32_t digest_interval)
{
	return ft_attach_pos(dev_fd, vm_fd, mode, flags, ring_order, digest_interval, 0);
}

int ft_attach_pos(int dev_fd, int vm_fd, uint32_t mode, uint32_t flags, uint32_t ring_order,
		  uint32_t digest_interval, uint32_t position_us)
{
	struct kvm_ft_attach a = {
		.vm_fd = vm_fd, .mode = mode, .flags = flags, .ring_order = ring_order,
		.digest_interval = digest_interval, .position_us = position_us,
	};
	int fd = ioctl(dev_fd, KVM_FT_ATTACH, &a);

	return fd < 0 ? -errno : fd;
}

int ft_ring_map(struct ft_ring *r, int ft_fd)
{
	void *p;

	memset(r, 0, sizeof(*r));
	r->fd = ft_fd;
	if (ioctl(ft_fd, KVM_FT_GET_INFO, &r->info))
		return -errno;
	p = mmap(NULL, r->info.page_size, PROT_READ | PROT_WRITE, MAP_SHARED, ft_fd,
		 r->info.consumer_off);
	if (p == MAP_FAILED)
		return -errno;
	r->cons = p;
	p = mmap(NULL, r->info.producer_len, PROT_READ, MAP_SHARED, ft_fd, r->info.producer_off);
	if (p == MAP_FAILED) {
		int e = -errno;

		munmap(r->cons, r->info.page_size);
		r->cons = NULL;
		return e;
	}
	r->prod = p;
	r->data = (const uint8_t *)p + r->info.page_size;
	r->pos = __atomic_load_n(&r->cons->consumer, __ATOMIC_RELAXED);
	return 0;
}

void ft_ring_unmap(struct ft_ring *r)
{
	if (r->cons)
		munmap(r->cons, r->info.page_size);
	if (r->prod)
		munmap((void *)r->prod, r->info.producer_len);
	r->cons = NULL;
	r->prod = NULL;
}

const struct kvm_ft_rec *ft_ring_next(struct ft_ring *r)
{
	uint64_t size = r->info.data_size;

	for (;;) {
		const struct kvm_ft_rec *rec;
		uint64_t off = r->pos & (size - 1);

		if (r->pos == r->prod_seen) {
			r->prod_seen = ft_ring_producer(r);
			if (r->pos == r->prod_seen)
				return NULL;
		}
		if (r->prod_seen - r->pos > size || (r->pos & 7)) {
			r->error = "producer position out of range";
			return NULL;
		}
		rec = (const struct kvm_ft_rec *)(r->data + off);
		if (rec->len < 8 || (rec->len & 7) || rec->len > size - off ||
		    rec->len > r->prod_seen - r->pos) {
			r->error = "record length out of range";
			return NULL;
		}
		if (rec->type == KVM_FT_REC_PAD) {
			/* A pad covers the rest of the data area. */
			if (rec->len != size - off) {
				r->error = "pad does not end at the end of the data area";
				return NULL;
			}
			r->pads++;
			r->pos += rec->len;
			continue;
		}
		if (rec->len < sizeof(*rec)) {
			r->error = "record shorter than its header";
			return NULL;
		}
		r->pos += rec->len;
		return rec;
	}
}

void ft_ring_release(struct ft_ring *r)
{
	__atomic_store_n(&r->cons->consumer, r->pos, __ATOMIC_RELEASE);
}

const char *ft_rec_type_name(unsigned int type)
{
	static const char *const names[] = {
		[KVM_FT_REC_PAD] = "PAD", [KVM_FT_REC_PIO_IN] = "PIO_IN",
		[KVM_FT_REC_PIO_OUT] = "PIO_OUT", [KVM_FT_REC_MMIO_READ] = "MMIO_READ",
		[KVM_FT_REC_MMIO_WRITE] = "MMIO_WRITE", [KVM_FT_REC_RDTSC] = "RDTSC",
		[KVM_FT_REC_CPUID] = "CPUID", [KVM_FT_REC_RDMSR] = "RDMSR",
		[KVM_FT_REC_HLT] = "HLT", [KVM_FT_REC_INTR] = "INTR",
		[KVM_FT_REC_RDRAND] = "RDRAND", [KVM_FT_REC_DMA] = "DMA",
		[KVM_FT_REC_REG_DIGEST] = "REG_DIGEST", [KVM_FT_REC_MEM_DIGEST] = "MEM_DIGEST",
		[KVM_FT_REC_POSITION] = "POSITION",
	};

	return type < sizeof(names) / sizeof(names[0]) && names[type] ? names[type] : "?";
}
