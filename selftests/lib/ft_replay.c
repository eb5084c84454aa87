// SPDX-License-Identifier: GPL-2.0
/* Writer of a kvm_ft replay ring; see ft_replay.h. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm_util.h"
#include "ft_replay.h"

int rp_map(struct rp *w, int fd)
{
	void *p;

	memset(w, 0, sizeof(*w));
	w->fd = fd;
	if (ioctl(fd, KVM_FT_GET_INFO, &w->info))
		return -errno;
	p = mmap(NULL, w->info.page_size, PROT_READ, MAP_SHARED, fd,
		 KVM_FT_MMAP_REPLAY_STATUS_OFF);
	if (p == MAP_FAILED)
		return -errno;
	w->st = p;
	p = mmap(NULL, w->info.producer_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 KVM_FT_MMAP_REPLAY_RING_OFF);
	if (p == MAP_FAILED)
		return -errno;
	w->prod = p;
	w->data = (uint8_t *)p + w->info.page_size;
	return 0;
}

void rp_unmap(struct rp *w)
{
	munmap((void *)w->st, w->info.page_size);
	munmap(w->prod, w->info.producer_len);
}

void rp_write(struct rp *w, const void *rec, uint32_t len)
{
	uint64_t size = w->info.data_size, off = w->pos & (size - 1);
	uint64_t room = size - off, need = len <= room ? len : room + len;

	KT_ASSERT(len <= KVM_FT_RING_RESERVE, "record too long");
	for (int i = 0; size - (w->pos - rp_consumer(w)) < need; i++) {
		rp_publish(w);
		KT_ASSERT(!w->st->error, "ring error %u while writing", w->st->error);
		KT_ASSERT(i < 200000, "no space in the replay ring for 20 s");
		usleep(100);
	}
	if (len > room) {
		struct kvm_ft_rec pad = { .len = (uint32_t)room, .type = KVM_FT_REC_PAD };

		memcpy(w->data + off, &pad, 8);	/* a pad may be 8 bytes */
		w->pos += room;
		off = 0;
	}
	memcpy(w->data + off, rec, len);
	w->pos += len;
}

void *golive_fn(void *p)
{
	struct golive *g = p;
	struct pollfd pfd = { .fd = g->w->fd, .events = POLLOUT };
	double t0 = kt_now();

	/* POLLOUT (all consumed) and POLLERR wake us; no CPU taken from the vCPU. */
	while (kt_now() - t0 < 20 && !g->stop) {
		poll(&pfd, 1, 50);
		uint32_t err = __atomic_load_n(&g->w->st->error, __ATOMIC_ACQUIRE);

		if (err) {
			g->error = err;
			return NULL;
		}
		if (rp_consumer(g->w) == g->w->pos &&
		    (__atomic_load_n(&g->w->st->flags, __ATOMIC_ACQUIRE) & KVM_FT_RING_F_WAITING)) {
			g->went_live = !ioctl(g->w->fd, KVM_FT_SET_MODE, KVM_FT_MODE_LIVE);
			return NULL;
		}
	}
	/* Timed out (or told to stop): release the vCPU so the test can fail. */
	ioctl(g->w->fd, KVM_FT_DETACH);
	return NULL;
}
