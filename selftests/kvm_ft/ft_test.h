/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers of the kvm_ft tests: a VM attached to the module with its
 * ring mapped, and a copy of the records read from the ring.
 */
#ifndef KVM_FT_SELFTEST_FT_TEST_H
#define KVM_FT_SELFTEST_FT_TEST_H

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "kvm_util.h"
#include "guest.h"
#include "ft_ring.h"

#define MSR_IA32_TSC	0x10

/* Records copied out of the ring, in ring order. */
struct recs {
	uint8_t *buf;
	size_t len, cap;
	size_t *off;
	size_t n, ncap;
};

static inline void recs_add(struct recs *rs, const struct kvm_ft_rec *r)
{
	if (rs->len + r->len > rs->cap) {
		rs->cap = (rs->cap + r->len) * 2;
		rs->buf = realloc(rs->buf, rs->cap);
		KT_ASSERT(rs->buf, "realloc");
	}
	if (rs->n == rs->ncap) {
		rs->ncap = rs->ncap ? 2 * rs->ncap : 64;
		rs->off = realloc(rs->off, rs->ncap * sizeof(*rs->off));
		KT_ASSERT(rs->off, "realloc");
	}
	memcpy(rs->buf + rs->len, r, r->len);
	rs->off[rs->n++] = rs->len;
	rs->len += r->len;
}

static inline const struct kvm_ft_rec *recs_at(const struct recs *rs, size_t i)
{
	return (const struct kvm_ft_rec *)(rs->buf + rs->off[i]);
}

static inline void recs_free(struct recs *rs)
{
	free(rs->buf);
	free(rs->off);
	memset(rs, 0, sizeof(*rs));
}

/* Copy every published record, then release their space. Returns the count. */
static inline size_t ft_drain(struct ft_ring *r, struct recs *rs)
{
	const struct kvm_ft_rec *rec;
	size_t n = 0;

	while ((rec = ft_ring_next(r))) {
		if (rs)
			recs_add(rs, rec);
		n++;
	}
	KT_ASSERT(!r->error, "malformed ring: %s at position %llu", r->error,
		  (unsigned long long)r->pos);
	ft_ring_release(r);
	return n;
}

static inline void ft_stats(int ft_fd, struct kvm_ft_stats *s)
{
	memset(s, 0xa5, sizeof(*s));
	KT_ASSERT(!ioctl(ft_fd, KVM_FT_GET_STATS, s), "KVM_FT_GET_STATS: %s", strerror(errno));
}

/* A VM running guest_fn, attached in RECORD mode, its ring mapped. */
struct ft_vm {
	struct kvm_vm *vm;
	int dev_fd;
	int ft_fd;
	struct ft_ring ring;
};

static inline void ft_vm_setup(struct ft_vm *f, const struct vm_opts *o,
			       void (*guest_fn)(void *), void *arg, uint32_t ring_order)
{
	int r;

	f->vm = vm_create(o, guest_fn, arg);
	f->dev_fd = ft_open();
	KT_ASSERT(f->dev_fd >= 0, "open /dev/kvm_ft: %s", strerror(-f->dev_fd));
	f->ft_fd = ft_attach(f->dev_fd, f->vm->vm_fd, KVM_FT_MODE_RECORD, 0, ring_order);
	KT_ASSERT(f->ft_fd >= 0, "KVM_FT_ATTACH: %s", strerror(-f->ft_fd));
	r = ft_ring_map(&f->ring, f->ft_fd);
	KT_ASSERT(!r, "map the ring: %s", strerror(-r));
	KT_ASSERT(f->ring.prod->magic == KVM_FT_RING_MAGIC, "bad ring magic %#llx",
		  (unsigned long long)f->ring.prod->magic);
}

static inline void ft_vm_teardown(struct ft_vm *f)
{
	ft_ring_unmap(&f->ring);
	if (f->ft_fd >= 0)
		close(f->ft_fd);
	if (f->dev_fd >= 0)
		close(f->dev_fd);
	vm_free(f->vm);
	f->vm = NULL;
}

/* Print the records (for a failing test's log). */
static inline void recs_dump(const struct recs *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		const struct kvm_ft_rec *r = recs_at(rs, i);
		const uint64_t *w = (const uint64_t *)(r + 1);

		printf("#   [%zu] %s len %u flags %#x seq %llu landmark %llu rip %#llx %#llx %#llx\n",
		       i, ft_rec_type_name(r->type), r->len, r->flags, (unsigned long long)r->seq,
		       (unsigned long long)r->landmark,
		       (unsigned long long)(r->len > 24 ? w[0] : 0),
		       (unsigned long long)(r->len > 32 ? w[1] : 0),
		       (unsigned long long)(r->len > 40 ? w[2] : 0));
	}
	fflush(stdout);	/* a failing ASSERT leaves with _exit() */
}

/* Check the header of every record: gapless seq from first_seq, landmarks. */
static inline const char *recs_check_seq(const struct recs *rs, uint64_t first_seq,
					 uint64_t first_landmark)
{
	uint64_t lm = first_landmark;

	for (size_t i = 0; i < rs->n; i++) {
		const struct kvm_ft_rec *r = recs_at(rs, i);
		bool async = r->type == KVM_FT_REC_INTR || r->type == KVM_FT_REC_DMA;

		if (r->seq != first_seq + i)
			return "seq not gapless";
		if (!!(r->flags & KVM_FT_RF_ASYNC) != async)
			return "ASYNC flag wrong";
		if (!async)
			lm++;
		if (r->landmark != lm)
			return "landmark wrong";
	}
	return NULL;
}

#endif
