// SPDX-License-Identifier: GPL-2.0
/*
 * Log ring reader and writer. Ordering: the producer publishes records with a
 * store-release of producer->producer, which pairs with the load-acquire in
 * ft_ring_producer(); the reader frees space with a store-release of
 * consumer->consumer, which pairs with the producer's load-acquire before it
 * reuses the space (ft_ring_space() here, the kernel on a real ring).
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "ring.h"

#define RF_ALL (KVM_FT_RF_OUTPUT | KVM_FT_RF_ASYNC | KVM_FT_RF_MEM_DIGEST)

static uint32_t round8(uint64_t n)
{
	return (uint32_t)((n + 7) & ~7ULL);
}

uint32_t ft_rec_min_len(unsigned int type)
{
	switch (type) {
	case KVM_FT_REC_PIO_IN:
	case KVM_FT_REC_PIO_OUT:	return sizeof(struct kvm_ft_rec_pio);
	case KVM_FT_REC_MMIO_READ:
	case KVM_FT_REC_MMIO_WRITE:	return sizeof(struct kvm_ft_rec_mmio);
	case KVM_FT_REC_RDTSC:		return sizeof(struct kvm_ft_rec_tsc);
	case KVM_FT_REC_CPUID:		return sizeof(struct kvm_ft_rec_cpuid);
	case KVM_FT_REC_RDMSR:		return sizeof(struct kvm_ft_rec_msr);
	case KVM_FT_REC_HLT:		return sizeof(struct kvm_ft_rec_hlt);
	case KVM_FT_REC_INTR:		return sizeof(struct kvm_ft_rec_intr);
	case KVM_FT_REC_RDRAND:		return sizeof(struct kvm_ft_rec_rand);
	case KVM_FT_REC_DMA:		return sizeof(struct kvm_ft_rec_dma);
	case KVM_FT_REC_REG_DIGEST:
	case KVM_FT_REC_MEM_DIGEST:	return sizeof(struct kvm_ft_rec_digest);
	case KVM_FT_REC_POSITION:	return sizeof(struct kvm_ft_rec_position);
	default:			return 0;
	}
}

static int bad(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return -EBADMSG;
}

int ft_rec_check(const void *buf, size_t avail, uint64_t seq, const char **why)
{
	struct kvm_ft_rec h;
	uint32_t min, want;

	if (avail < sizeof(h))
		return bad(why, "record header truncated");
	memcpy(&h, buf, sizeof(h));	/* one load of each field */
	if (h.len % 8 || h.len < sizeof(h))
		return bad(why, "record length not a multiple of 8");
	if (h.len > avail)
		return bad(why, "record longer than the data available");
	if (h.len > KVM_FT_RING_RESERVE)
		return bad(why, "record longer than any exit produces");
	min = ft_rec_min_len(h.type);
	if (!min)
		return bad(why, "unknown record type");
	if (h.flags & ~RF_ALL)
		return bad(why, "unknown record flag");
	if (h.seq != seq)
		return bad(why, "record sequence number out of order");
	if (h.len < min)
		return bad(why, "record shorter than its type");
	want = min;
	if (h.type == KVM_FT_REC_PIO_IN || h.type == KVM_FT_REC_PIO_OUT) {
		struct kvm_ft_rec_pio p;

		memcpy(&p, buf, sizeof(p));
		if (p.size != 1 && p.size != 2 && p.size != 4)
			return bad(why, "PIO size not 1, 2 or 4");
		if (p.count == 0 || p.count > 4096)
			return bad(why, "PIO count out of range");
		want = round8(sizeof(p) + (uint64_t)p.size * p.count);
	} else if (h.type == KVM_FT_REC_MMIO_READ || h.type == KVM_FT_REC_MMIO_WRITE) {
		struct kvm_ft_rec_mmio m;

		memcpy(&m, buf, sizeof(m));
		if (m.len < 1 || m.len > 8)
			return bad(why, "MMIO length not 1..8");
	} else if (h.type == KVM_FT_REC_DMA) {
		struct kvm_ft_rec_dma d;

		memcpy(&d, buf, sizeof(d));
		if (d.len < 1 || d.len > KVM_FT_DMA_MAX)
			return bad(why, "DMA length out of range");
		/* the data follows the fixed part, as the module writes it */
		want = round8(sizeof(d) + (uint64_t)d.len);
	}
	if (h.len != want)
		return bad(why, "record length does not match its type");
	return (int)h.len;
}

/* The fields the log ring's producer page and the replay status page share. */
#define RING_HEADER(m, order) \
	.magic = (m), .api_version = KVM_FT_API_VERSION, .ring_order = (order), \
	.data_size = 1ULL << (order), .next_seq = 1

/* Empty the file and size it for the uapi layout of a ring of 2^order data bytes. */
static int ring_file_size(int fd, unsigned int order)
{
	long page = sysconf(_SC_PAGESIZE);

	if (order < KVM_FT_RING_ORDER_MIN || order > KVM_FT_RING_ORDER_MAX)
		return -EINVAL;
	if (ftruncate(fd, 0) < 0 ||
	    ftruncate(fd, KVM_FT_MMAP_PRODUCER_OFF + page + (1ULL << order)) < 0)
		return -errno;
	return 0;
}

int ft_ring_format(int fd, unsigned int order)
{
	struct kvm_ft_ring_producer p = {
		RING_HEADER(KVM_FT_RING_MAGIC, order),
	};
	struct kvm_ft_ring_consumer c = { 0 };
	int ret = ring_file_size(fd, order);

	if (ret)
		return ret;
	if (pwrite(fd, &c, sizeof(c), KVM_FT_MMAP_CONSUMER_OFF) != sizeof(c) ||
	    pwrite(fd, &p, sizeof(p), KVM_FT_MMAP_PRODUCER_OFF) != sizeof(p))
		return -EIO;
	return 0;
}

static bool geometry_ok(uint64_t magic, uint64_t want_magic, uint32_t version, uint32_t order,
			uint64_t size)
{
	return magic == want_magic && version == KVM_FT_API_VERSION &&
	       order >= KVM_FT_RING_ORDER_MIN && order <= KVM_FT_RING_ORDER_MAX &&
	       size == 1ULL << order;
}

/* Both mappings at the uapi offsets; the control page of each layout is checked by the caller. */
static int map_both(struct ft_ring *r, int fd, uint64_t data_size, int prot_cons, int prot_prod)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *mc, *mp;

	memset(r, 0, sizeof(*r));
	if (!data_size || data_size & (data_size - 1) || data_size > 1ULL << KVM_FT_RING_ORDER_MAX)
		return -EINVAL;
	mc = mmap(NULL, page, prot_cons, MAP_SHARED, fd, KVM_FT_MMAP_CONSUMER_OFF);
	if (mc == MAP_FAILED)
		return -errno;
	mp = mmap(NULL, page + data_size, prot_prod, MAP_SHARED, fd, KVM_FT_MMAP_PRODUCER_OFF);
	if (mp == MAP_FAILED) {
		int e = -errno;

		munmap(mc, page);
		return e;
	}
	r->map_cons = mc;
	r->len_cons = page;
	r->map_prod = mp;
	r->len_prod = page + data_size;
	r->data = (const uint8_t *)mp + page;
	r->wdata = prot_prod & PROT_WRITE ? (uint8_t *)mp + page : NULL;
	r->size = data_size;
	return 0;
}

/* The log-ring layout; writer = a producer of a ring file. */
static int map_log(struct ft_ring *r, int fd, uint64_t data_size, bool writer)
{
	struct kvm_ft_ring_producer p;
	int ret = map_both(r, fd, data_size, PROT_READ | PROT_WRITE,
			   PROT_READ | (writer ? PROT_WRITE : 0));

	if (ret)
		return ret;
	r->cons = r->map_cons;
	r->prod = r->map_prod;
	memcpy(&p, r->prod, sizeof(p));
	if (!geometry_ok(p.magic, KVM_FT_RING_MAGIC, p.api_version, p.ring_order, p.data_size) ||
	    p.data_size != data_size) {
		ft_ring_unmap(r);
		return -EINVAL;
	}
	r->order = p.ring_order;
	r->prod_pos = &r->prod->producer;
	r->wprod_pos = writer ? &r->prod->producer : NULL;
	r->cons_pos = &r->cons->consumer;
	r->wseq = p.next_seq;
	/* Resume where the consumer page says; checked on first use. */
	r->tail.pos = __atomic_load_n(&r->cons->consumer, __ATOMIC_ACQUIRE);
	r->tail.seq = r->cons->acked_seq + 1;
	if (r->tail.pos % 8) {
		ft_ring_unmap(r);
		return -EBADMSG;
	}
	return 0;
}

int ft_ring_map_log(struct ft_ring *r, int fd, uint64_t data_size)
{
	return map_log(r, fd, data_size, false);
}

int ft_ring_map(struct ft_ring *r, int fd, bool writer)
{
	struct kvm_ft_ring_producer p;

	memset(r, 0, sizeof(*r));
	if (pread(fd, &p, sizeof(p), KVM_FT_MMAP_PRODUCER_OFF) != sizeof(p))
		return -EINVAL;
	if (!geometry_ok(p.magic, KVM_FT_RING_MAGIC, p.api_version, p.ring_order, p.data_size))
		return -EINVAL;
	return map_log(r, fd, p.data_size, writer);
}

int ft_ring_map_replay(struct ft_ring *r, int fd, uint64_t data_size)
{
	struct kvm_ft_replay_status st;
	const struct kvm_ft_replay_producer *rp;
	int ret = map_both(r, fd, data_size, PROT_READ, PROT_READ | PROT_WRITE);

	if (ret)
		return ret;
	r->rstat = r->map_cons;
	rp = r->map_prod;
	memcpy(&st, r->rstat, sizeof(st));
	if (!geometry_ok(st.magic, KVM_FT_REPLAY_MAGIC, st.api_version, st.ring_order, st.data_size) ||
	    st.data_size != data_size) {
		ft_ring_unmap(r);
		return -EINVAL;
	}
	if (st.error || st.consumer % 8 || rp->producer != st.consumer || !st.next_seq) {
		r->why = "replay ring not idle";
		ft_ring_unmap(r);
		return -EBADMSG;
	}
	r->order = st.ring_order;
	r->prod_pos = &rp->producer;
	r->wprod_pos = (__u64 *)&rp->producer;
	r->cons_pos = &r->rstat->consumer;
	r->wseq = st.next_seq;
	r->tail.pos = st.consumer;
	r->tail.seq = st.next_seq;
	return 0;
}

int ft_ring_format_replay(int fd, unsigned int order)
{
	struct kvm_ft_replay_status st = {
		RING_HEADER(KVM_FT_REPLAY_MAGIC, order),
	};
	int ret = ring_file_size(fd, order);

	if (ret)
		return ret;
	if (pwrite(fd, &st, sizeof(st), KVM_FT_MMAP_REPLAY_STATUS_OFF) != sizeof(st))
		return -EIO;
	return 0;
}

void ft_ring_unmap(struct ft_ring *r)
{
	if (r->map_cons)
		munmap(r->map_cons, r->len_cons);
	if (r->map_prod)
		munmap(r->map_prod, r->len_prod);
	memset(r, 0, sizeof(*r));
}

int ft_ring_producer(struct ft_ring *r, uint64_t *prod)
{
	uint64_t p = __atomic_load_n(r->prod_pos, __ATOMIC_ACQUIRE);

	if (p % 8)
		return bad(&r->why, "producer position unaligned");
	if (p < r->tail.pos || p - r->tail.pos > r->size)
		return bad(&r->why, "producer position outside the ring");
	*prod = p;
	return 0;
}

int ft_ring_next(struct ft_ring *r, struct ft_ring_cursor *cur,
		 const struct kvm_ft_rec **rec, uint32_t *len)
{
	uint64_t p;
	int ret;

	ret = ft_ring_producer(r, &p);
	if (ret)
		return ret;
	if (cur->pos < r->tail.pos || cur->pos > p || cur->pos % 8)
		return bad(&r->why, "read cursor outside the ring");
	while (cur->pos != p) {
		uint64_t off = cur->pos & (r->size - 1);
		uint64_t room = r->size - off;
		uint64_t avail = p - cur->pos;
		const uint8_t *at = r->data + off;
		uint32_t l;
		uint16_t type;

		if (avail < 8)
			return bad(&r->why, "record header truncated");
		l = __atomic_load_n((const uint32_t *)at, __ATOMIC_RELAXED);
		type = __atomic_load_n((const uint16_t *)(at + 4), __ATOMIC_RELAXED);
		if (type == KVM_FT_REC_PAD) {
			/* A pad covers exactly the rest of the data area. */
			if (l != room || room > avail)
				return bad(&r->why, "pad does not end at the end of the data area");
			cur->pos += room;
			continue;
		}
		ret = ft_rec_check(at, avail < room ? avail : room, cur->seq, &r->why);
		if (ret < 0)
			return ret;
		*rec = (const struct kvm_ft_rec *)at;
		*len = (uint32_t)ret;
		cur->pos += (uint32_t)ret;
		cur->seq++;
		return 1;
	}
	return 0;
}

int ft_ring_release(struct ft_ring *r, uint64_t acked, const struct ft_ring_cursor *limit)
{
	struct ft_ring_cursor c = r->tail;
	const struct kvm_ft_rec *rec;
	uint32_t len;

	if (acked + 1 > limit->seq)
		return -EINVAL;
	if (acked < c.seq)
		return 0;	/* nothing new: duplicates and old acks are harmless */
	while (c.seq <= acked) {
		int ret = ft_ring_next(r, &c, &rec, &len);

		if (ret <= 0)
			return ret ? ret : -EINVAL;
	}
	r->tail = c;
	r->cons->acked_seq = acked;
	__atomic_store_n(&r->cons->consumer, c.pos, __ATOMIC_RELEASE);
	return 0;
}

static int writer_state(struct ft_ring *r, uint64_t *prod, uint64_t *cons)
{
	if (!r->wprod_pos)
		return -EINVAL;
	*prod = *r->wprod_pos;	/* we are the only writer */
	*cons = __atomic_load_n(r->cons_pos, __ATOMIC_ACQUIRE);
	if (*cons % 8 || *cons > *prod || *prod - *cons > r->size)
		return bad(&r->why, "consumer position outside the ring");
	return 0;
}

int64_t ft_ring_space(struct ft_ring *r)
{
	uint64_t p, c;
	int ret = writer_state(r, &p, &c);

	return ret ? ret : (int64_t)(r->size - (p - c));
}

int ft_ring_append(struct ft_ring *r, const void *rec, uint32_t len)
{
	uint64_t p, c, off, room, need;
	int ret;

	if (!r->wprod_pos || len % 8 || len < sizeof(struct kvm_ft_rec) || len > r->size / 2 ||
	    ((const struct kvm_ft_rec *)rec)->seq != r->wseq)
		return -EINVAL;
	ret = writer_state(r, &p, &c);
	if (ret)
		return ret;
	off = p & (r->size - 1);
	room = r->size - off;
	need = len <= room ? len : room + len;
	if (r->size - (p - c) < need)
		return -EAGAIN;
	if (len > room) {
		struct kvm_ft_rec pad = { .len = (uint32_t)room, .type = KVM_FT_REC_PAD };

		memcpy(r->wdata + off, &pad, room < sizeof(pad) ? 8 : sizeof(pad));
		p += room;
		off = 0;
	}
	memcpy(r->wdata + off, rec, len);
	r->wseq++;
	if (r->prod)	/* the log layout tells its reader the next seq too */
		r->prod->next_seq = r->wseq;
	__atomic_store_n(r->wprod_pos, p + len, __ATOMIC_RELEASE);
	return 0;
}

uint64_t ft_ring_next_seq(const struct ft_ring *r)
{
	return r->wseq;
}
