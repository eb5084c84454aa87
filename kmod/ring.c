// SPDX-License-Identifier: GPL-2.0
/*
 * Log ring: allocation, mapping, append, consumer validation, wake-ups.
 *
 * One producer (the attached VM's vCPU thread, from probe context with
 * preemption disabled) and one consumer (user space, through the mappings).
 * The ring lock is still taken by the producer because ioctls, poll and the
 * vCPU's wait for space read and update the same state.
 */
#include <linux/vmalloc.h>
#include <linux/mm.h>
#include <linux/sched/clock.h>
#include <linux/kvm_ft.h>
#include "ring.h"

static u64 wakeup_bytes(struct ft_ring *r)
{
	u64 wb = READ_ONCE(r->cons->wakeup_bytes);	/* user-written: clamp */

	if (!wb)
		return r->size / 4;
	return clamp_t(u64, wb, 8, r->size / 2);
}

/*
 * Take the reader's consumer position if it is valid. Returns true when the
 * ring has just entered the BAD_CONSUMER error (the caller wakes pollers).
 */
static bool refresh_tail(struct ft_ring *r)
{
	u64 c;

	lockdep_assert_held(&r->lock);
	/*
	 * Pairs with the reader's store_release of consumer->consumer: every
	 * read the reader did of records before c is complete before this
	 * function returns and the producer reuses their space.
	 */
	c = smp_load_acquire(&r->cons->consumer);
	if (c == r->tail)
		return false;
	if ((c & 7) || c < r->tail || c > r->head) {
		bool first = !r->error;

		if (!r->stats.bad_consumer || c != r->bad_seen) {
			r->bad_seen = c;
			r->stats.bad_consumer++;
		}
		if (first) {
			WRITE_ONCE(r->error, KVM_FT_ERR_BAD_CONSUMER);
			WRITE_ONCE(r->prod->error, r->error);
		}
		return first;
	}
	/* In BAD_CONSUMER error no space is ever released again. */
	if (r->error != KVM_FT_ERR_BAD_CONSUMER)
		r->tail = c;
	return false;
}

/* The ring has just entered an error (once per ring). */
static void wake_error(struct ft_ring *r)
{
	wake_up_interruptible_poll(&r->read_wq, EPOLLERR);
	wake_up_all(&r->space_wq);
	if (r->on_error)
		r->on_error(r);
}

static_assert(offsetof(struct kvm_ft_replay_status, consumer) ==
	      offsetof(struct kvm_ft_ring_producer, producer));
static_assert(offsetof(struct kvm_ft_replay_status, next_seq) ==
	      offsetof(struct kvm_ft_ring_producer, next_seq));
static_assert(offsetof(struct kvm_ft_replay_status, landmark) ==
	      offsetof(struct kvm_ft_ring_producer, landmark));
static_assert(offsetof(struct kvm_ft_replay_status, flags) ==
	      offsetof(struct kvm_ft_ring_producer, flags));
static_assert(offsetof(struct kvm_ft_replay_status, error) ==
	      offsetof(struct kvm_ft_ring_producer, error));
static_assert(offsetof(struct kvm_ft_replay_status, ring_waits) ==
	      offsetof(struct kvm_ft_ring_producer, ring_waits));
static_assert(offsetof(struct kvm_ft_replay_producer, producer) ==
	      offsetof(struct kvm_ft_ring_consumer, consumer));

int ft_ring_init(struct ft_ring *r, u32 order, bool replay)
{
	memset(r, 0, sizeof(*r));
	spin_lock_init(&r->lock);
	init_waitqueue_head(&r->read_wq);
	init_waitqueue_head(&r->space_wq);
	r->order = order;
	r->size = 1ULL << order;
	r->replay = replay;
	r->area = vmalloc_user(PAGE_SIZE + r->size);
	if (!r->area)
		return -ENOMEM;
	r->page = vmalloc_user(PAGE_SIZE);
	if (!r->page) {
		vfree(r->area);
		r->area = NULL;
		return -ENOMEM;
	}
	r->data = (u8 *)r->area + PAGE_SIZE;
	if (replay) {
		r->prod = r->page;
		r->cons = r->area;
	} else {
		r->prod = r->area;
		r->cons = r->page;
	}
	r->next_seq = 1;
	r->woken_ns = local_clock();
	r->prod->magic = replay ? KVM_FT_REPLAY_MAGIC : KVM_FT_RING_MAGIC;
	r->prod->api_version = KVM_FT_API_VERSION;
	r->prod->ring_order = order;
	r->prod->data_size = r->size;
	r->prod->next_seq = 1;
	return 0;
}

void ft_ring_destroy(struct ft_ring *r)
{
	/* Mappings hold their own page references: vfree only drops ours. */
	vfree(r->page);
	vfree(r->area);
	r->page = NULL;
	r->area = NULL;
	r->cons = NULL;
	r->prod = NULL;
}

/* The producer part is read-only for good: a later mprotect() says EPERM. */
static int ro_mprotect(struct vm_area_struct *vma, unsigned long start,
		       unsigned long end, unsigned long newflags)
{
	return (newflags & VM_WRITE) ? -EPERM : 0;
}

static const struct vm_operations_struct ro_vm_ops = {
	.mprotect = ro_mprotect,
};

int ft_ring_mmap(struct ft_ring *r, struct vm_area_struct *vma)
{
	unsigned long len = vma->vm_end - vma->vm_start;
	u64 off = (u64)vma->vm_pgoff << PAGE_SHIFT;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (off == KVM_FT_MMAP_CONSUMER_OFF) {
		if (len != PAGE_SIZE)
			return -EINVAL;
		if (!r->replay)
			return remap_vmalloc_range(vma, r->page, 0);
		/* Replay: the status page is the kernel's (see below). */
		if (vma->vm_flags & VM_WRITE)
			return -EPERM;
		vma->vm_ops = &ro_vm_ops;
		return remap_vmalloc_range(vma, r->page, 0);
	}
	if (off == KVM_FT_MMAP_PRODUCER_OFF) {
		if (len != PAGE_SIZE + r->size)
			return -EINVAL;
		if (r->replay)	/* user space produces the replay ring */
			return remap_vmalloc_range(vma, r->area, 0);
		if (vma->vm_flags & VM_WRITE)
			return -EPERM;
		/*
		 * VM_MAYWRITE stays so that mprotect() reaches ro_mprotect and
		 * fails with the EPERM the uapi promises (without it the core
		 * says EACCES). Nothing else can write: the mapping is shared,
		 * so FOLL_FORCE writes (ptrace, /proc/pid/mem) need VM_WRITE.
		 */
		vma->vm_ops = &ro_vm_ops;
		return remap_vmalloc_range(vma, r->area, 0);
	}
	return -EINVAL;
}

int ft_ring_append(struct ft_ring *r, struct kvm_ft_rec *hdr, u32 hdr_len,
		   const void *data, u32 data_len, bool sync)
{
	u32 len = ALIGN(hdr_len + data_len, 8);
	u64 off, room, need, unread;
	unsigned long irqf;
	bool err_wake;
	u8 *dst;
	int ret = 0;

	if (len > KVM_FT_RING_RESERVE || hdr_len < sizeof(*hdr))
		return -EINVAL;

	spin_lock_irqsave(&r->lock, irqf);
	err_wake = refresh_tail(r);
	if (r->error && r->error != KVM_FT_ERR_BAD_CONSUMER) {
		ret = -EIO;
		goto out;
	}
	off = r->head & (r->size - 1);
	room = r->size - off;
	need = len <= room ? len : room + len;
	if (r->size - (r->head - r->tail) < need) {
		ret = -ENOSPC;
		goto out;
	}
	if (len > room) {
		/* Pad to the end; room >= 8 as every record is 8-aligned. */
		struct kvm_ft_rec *pad = (struct kvm_ft_rec *)(r->data + off);

		if (room >= sizeof(*pad))
			memset(pad, 0, sizeof(*pad));
		pad->len = room;
		pad->type = KVM_FT_REC_PAD;
		pad->flags = 0;
		r->head += room;
		r->stats.bytes += room;
		off = 0;
	}

	hdr->len = len;
	hdr->seq = r->next_seq++;
	if (sync)
		hdr->landmark = ++r->landmark;
	else
		hdr->landmark = r->landmark;
	dst = r->data + off;
	memcpy(dst, hdr, hdr_len);
	if (data_len)
		memcpy(dst + hdr_len, data, data_len);
	if (len > hdr_len + data_len)
		memset(dst + hdr_len + data_len, 0, len - hdr_len - data_len);
	r->head += len;

	r->stats.records++;
	r->stats.bytes += len;
	if (sync)
		r->stats.sync_records++;
	if (hdr->type < ARRAY_SIZE(r->stats.rec_count))
		r->stats.rec_count[hdr->type]++;

	WRITE_ONCE(r->prod->next_seq, r->next_seq);
	WRITE_ONCE(r->prod->landmark, r->landmark);
	/*
	 * Pairs with the reader's load_acquire of producer->producer: the
	 * record bytes (and pad) and next_seq/landmark are visible before the
	 * position that covers them.
	 */
	smp_store_release(&r->prod->producer, r->head);

	unread = r->head - r->tail;
	if ((hdr->flags & KVM_FT_RF_OUTPUT) ||
	    (unread >= wakeup_bytes(r) && r->head - r->woken_at >= wakeup_bytes(r)))
		ret |= FT_RING_WAKE;
	if (r->size - unread < KVM_FT_RING_RESERVE)
		ret |= FT_RING_LOW;
out:
	spin_unlock_irqrestore(&r->lock, irqf);
	if (err_wake)
		wake_error(r);
	return ret;
}

static void do_wake(struct ft_ring *r, bool force)
{
	unsigned long irqf;
	bool wake = false;

	spin_lock_irqsave(&r->lock, irqf);
	if (force || r->head != r->woken_at) {
		r->woken_at = r->head;
		r->woken_ns = local_clock();
		/*
		 * The full barrier in wq_has_sleeper() pairs with the one in the
		 * reader's poll_wait()/add_wait_queue() path before it checks
		 * producer != consumer: either it sees the new producer or we
		 * see it on the queue.
		 */
		if (wq_has_sleeper(&r->read_wq)) {
			r->stats.wakeups++;
			wake = true;
		}
	}
	spin_unlock_irqrestore(&r->lock, irqf);
	if (wake)
		wake_up_interruptible_poll(&r->read_wq, EPOLLIN | EPOLLRDNORM);
}

/* force: wake even without new data since the last wake-up (threshold hit). */
void ft_ring_wake(struct ft_ring *r, bool force)
{
	do_wake(r, force);
}

void ft_ring_wake_if_stale(struct ft_ring *r, u64 max_age_ns)
{
	unsigned long irqf;
	bool stale;

	spin_lock_irqsave(&r->lock, irqf);
	stale = r->head != r->woken_at &&
		local_clock() - r->woken_ns >= max_age_ns;
	spin_unlock_irqrestore(&r->lock, irqf);
	if (stale)
		do_wake(r, false);
}

void ft_ring_count_exit(struct ft_ring *r)
{
	unsigned long irqf;

	spin_lock_irqsave(&r->lock, irqf);
	r->stats.exits++;
	spin_unlock_irqrestore(&r->lock, irqf);
}

u64 ft_ring_free(struct ft_ring *r)
{
	unsigned long irqf;
	bool err_wake;
	u64 free;

	spin_lock_irqsave(&r->lock, irqf);
	err_wake = refresh_tail(r);
	free = r->size - (r->head - r->tail);
	spin_unlock_irqrestore(&r->lock, irqf);
	if (err_wake)
		wake_error(r);
	return free;
}

bool ft_ring_has_space(struct ft_ring *r, u64 want)
{
	return ft_ring_free(r) >= want;
}

void ft_ring_set_error(struct ft_ring *r, u32 error)
{
	unsigned long irqf;
	bool first;

	spin_lock_irqsave(&r->lock, irqf);
	first = !r->error;
	if (first) {
		WRITE_ONCE(r->error, error);
		WRITE_ONCE(r->prod->error, error);
	}
	spin_unlock_irqrestore(&r->lock, irqf);
	if (first)
		wake_error(r);
}

u32 ft_ring_error(struct ft_ring *r)
{
	return READ_ONCE(r->error);
}

void ft_ring_set_flags(struct ft_ring *r, u32 set, u32 clear)
{
	unsigned long irqf;

	spin_lock_irqsave(&r->lock, irqf);
	WRITE_ONCE(r->flags, (r->flags & ~clear) | set);
	WRITE_ONCE(r->prod->flags, r->flags);
	spin_unlock_irqrestore(&r->lock, irqf);
	if (set & KVM_FT_RING_F_DETACHED) {
		wake_up_interruptible_poll(&r->read_wq, EPOLLHUP);
		wake_up_all(&r->space_wq);
	}
}

__poll_t ft_ring_poll(struct ft_ring *r, struct file *file, poll_table *wait)
{
	unsigned long irqf;
	__poll_t mask = 0;
	bool err_wake, space;

	poll_wait(file, &r->read_wq, wait);
	if (r->replay) {
		/* The writer's doorbell: a waiting vCPU re-checks at once. */
		if (ft_ring_replay_ready(r))
			wake_up_all(&r->space_wq);
		spin_lock_irqsave(&r->lock, irqf);
		/* Only compared, never used as a position: READ_ONCE is enough. */
		if (READ_ONCE(r->cons->consumer) == r->tail)
			mask |= EPOLLOUT | EPOLLWRNORM;
		if (r->error)
			mask |= EPOLLERR;
		if (r->flags & KVM_FT_RING_F_DETACHED)
			mask |= EPOLLHUP;
		spin_unlock_irqrestore(&r->lock, irqf);
		return mask;
	}
	spin_lock_irqsave(&r->lock, irqf);
	err_wake = refresh_tail(r);
	if (r->head != r->tail)
		mask |= EPOLLIN | EPOLLRDNORM;
	if (r->error)
		mask |= EPOLLERR;
	if (r->flags & KVM_FT_RING_F_DETACHED)
		mask |= EPOLLHUP;
	space = (r->flags & KVM_FT_RING_F_WAITING) &&
		r->size - (r->head - r->tail) >= r->size / 4;
	spin_unlock_irqrestore(&r->lock, irqf);
	if (err_wake)
		wake_error(r);
	/* The reader released space with a plain store: the poll is its doorbell. */
	if (space)
		wake_up_all(&r->space_wq);
	return mask;
}

void ft_ring_stats(struct ft_ring *r, struct kvm_ft_stats *out)
{
	unsigned long irqf;

	spin_lock_irqsave(&r->lock, irqf);
	*out = r->stats;
	spin_unlock_irqrestore(&r->lock, irqf);
}

/* The vCPU starts to wait for space: counted now, visible to the reader. */
void ft_ring_wait_begin(struct ft_ring *r)
{
	unsigned long irqf;

	spin_lock_irqsave(&r->lock, irqf);
	r->stats.ring_waits++;
	WRITE_ONCE(r->prod->ring_waits, r->stats.ring_waits);
	WRITE_ONCE(r->flags, r->flags | KVM_FT_RING_F_WAITING);
	WRITE_ONCE(r->prod->flags, r->flags);
	spin_unlock_irqrestore(&r->lock, irqf);
}

void ft_ring_wait_end(struct ft_ring *r, u64 ns)
{
	unsigned long irqf;

	spin_lock_irqsave(&r->lock, irqf);
	r->stats.ring_wait_ns += ns;
	WRITE_ONCE(r->flags, r->flags & ~KVM_FT_RING_F_WAITING);
	WRITE_ONCE(r->prod->flags, r->flags);
	spin_unlock_irqrestore(&r->lock, irqf);
}

void ft_ring_snapshot(struct ft_ring *r, u64 *head, u64 *tail, u64 *next_seq,
		      u64 *landmark, u64 *acked, u32 *flags, u32 *error)
{
	unsigned long irqf;

	spin_lock_irqsave(&r->lock, irqf);
	*head = r->head;
	*tail = r->tail;
	*next_seq = r->next_seq;
	*landmark = r->landmark;
	*flags = r->flags;
	*error = r->error;
	spin_unlock_irqrestore(&r->lock, irqf);
	*acked = r->replay ? 0 : READ_ONCE(r->cons->acked_seq);
}

/*
 * Replay: the type of the next record, pads consumed on the way (they carry
 * nothing). Returns 0 when nothing is published, else 1 with *type set;
 * an invalid producer or pad gives type KVM_FT_REC_TYPE_MAX + 1, for
 * ft_ring_take() to report.
 */
int ft_ring_peek(struct ft_ring *r, u16 *type)
{
	unsigned long irqf;
	u64 p, off, room;
	struct kvm_ft_rec h;
	int ret = 1;

	*type = KVM_FT_REC_TYPE_MAX + 1;
	spin_lock_irqsave(&r->lock, irqf);
	if (r->error)
		goto out;
	p = smp_load_acquire(&r->cons->consumer);
	if ((p & 7) || p < r->tail || p - r->tail > r->size)
		goto out;
	for (;;) {
		if (p == r->tail) {
			ret = 0;
			break;
		}
		off = r->tail & (r->size - 1);
		room = r->size - off;
		memcpy(&h, r->data + off, 8);
		if (h.type != KVM_FT_REC_PAD) {
			*type = h.type;
			break;
		}
		if (h.len != room || room > p - r->tail)
			break;
		r->tail += room;
		r->stats.bytes += room;
		smp_store_release(&r->prod->producer, r->tail);
	}
out:
	spin_unlock_irqrestore(&r->lock, irqf);
	return ret;
}

/*
 * Replay, before an emulated exit (MMIO, string PIO) whose records are taken
 * one by one during the emulation, where the vCPU can no longer wait: are
 * all of this exit's records published? They are once a record follows
 * them that cannot belong to the exit: one of another type than MMIO/PIO,
 * or from another RIP (digests are skipped: one may follow the exit's first
 * record), or when KVM_FT_RING_RESERVE bytes (the most one exit appends)
 * are published. Reads headers only, bounds-checked; ft_ring_take()
 * validates each record when it is taken. Sets *seen to the producer
 * position looked at.
 */
bool ft_ring_emul_ready(struct ft_ring *r, u64 rip, u64 *seen)
{
	struct { struct kvm_ft_rec h; u64 rip; } rec;
	unsigned long irqf;
	u64 p, pos, off, room;
	bool ready = true;

	spin_lock_irqsave(&r->lock, irqf);
	p = smp_load_acquire(&r->cons->consumer);
	*seen = p;
	if (r->error || (p & 7) || p < r->tail || p - r->tail > r->size)
		goto out;		/* the take reports it */
	for (pos = r->tail; pos - r->tail < 2 * KVM_FT_RING_RESERVE; pos += rec.h.len) {
		if (pos == p) {
			ready = false;
			break;
		}
		off = pos & (r->size - 1);
		room = r->size - off;
		memcpy(&rec.h, r->data + off, 8);
		if (rec.h.type == KVM_FT_REC_PAD && rec.h.len == room && room <= p - pos)
			continue;
		if ((rec.h.len & 7) || rec.h.len < sizeof(rec) || rec.h.len > room ||
		    rec.h.len > p - pos)
			break;
		memcpy(&rec, r->data + off, sizeof(rec));
		if (rec.h.type == KVM_FT_REC_REG_DIGEST || rec.h.type == KVM_FT_REC_MEM_DIGEST)
			continue;
		if ((rec.h.type != KVM_FT_REC_MMIO_READ && rec.h.type != KVM_FT_REC_MMIO_WRITE &&
		     rec.h.type != KVM_FT_REC_PIO_IN && rec.h.type != KVM_FT_REC_PIO_OUT) ||
		    rec.rip != rip)
			break;
	}
out:
	spin_unlock_irqrestore(&r->lock, irqf);
	return ready;
}

/* Replay: the writer published something we have not consumed yet. */
bool ft_ring_replay_ready(struct ft_ring *r)
{
	return READ_ONCE(r->cons->consumer) != READ_ONCE(r->tail);
}

static int take_fail(struct ft_take_err *err, u32 reason, u64 pos)
{
	err->reason = reason;
	err->pos = pos;
	return -EBADMSG;
}

/*
 * Replay: copy the next record (pads skipped) into @buf (at least
 * KVM_FT_RING_RESERVE bytes) and consume it. Everything read from the
 * shared area is read once, into @buf or a local, before it is checked.
 * Checked here: the producer position, len (and pads), seq and landmark;
 * the caller checks type-specific sizes. Returns the record's length,
 * -EAGAIN if no record is published yet, -EBADMSG (with @err filled in)
 * for an invalid ring, -EIO if the ring is in error already.
 */
int ft_ring_take(struct ft_ring *r, void *buf, struct ft_take_err *err)
{
	struct kvm_ft_rec *hdr = buf;
	unsigned long irqf;
	u64 p, pos, off, room, skipped = 0;
	u32 len;
	bool sync;
	int ret;

	spin_lock_irqsave(&r->lock, irqf);
	if (r->error) {
		ret = -EIO;
		goto out;
	}
	/* Pairs with the writer's store_release: record bytes before p. */
	p = smp_load_acquire(&r->cons->consumer);
	pos = r->tail;
	if ((p & 7) || p < pos || p - pos > r->size) {
		ret = take_fail(err, KVM_FT_DIV_PRODUCER, pos);
		goto out;
	}
	r->head = p;
	for (;;) {
		if (p == pos) {
			ret = -EAGAIN;
			goto out;
		}
		off = pos & (r->size - 1);
		room = r->size - off;
		/* len and type first: a pad may be only 8 bytes long. */
		memcpy(buf, r->data + off, 8);
		len = hdr->len;
		if (hdr->type != KVM_FT_REC_PAD)
			break;
		if (len != room || room > p - pos) {
			ret = take_fail(err, KVM_FT_DIV_LEN, pos);
			goto out;
		}
		pos += room;
		skipped += room;
	}
	if ((len & 7) || len < sizeof(*hdr) || len > KVM_FT_RING_RESERVE ||
	    len > room || len > p - pos) {
		ret = take_fail(err, KVM_FT_DIV_LEN, pos);
		goto out;
	}
	memcpy(buf, r->data + off, len);
	/* From here only the copy is used. */
	hdr->len = len;
	if (hdr->type == KVM_FT_REC_PAD || hdr->type > KVM_FT_REC_TYPE_MAX) {
		ret = take_fail(err, KVM_FT_DIV_FORMAT, pos);
		goto out;
	}
	if (hdr->seq != r->next_seq) {
		ret = take_fail(err, KVM_FT_DIV_SEQ, pos);
		goto out;
	}
	sync = !ft_rec_async(hdr->type);
	if (hdr->landmark != r->landmark + sync) {
		ret = take_fail(err, KVM_FT_DIV_LANDMARK, pos);
		goto out;
	}
	r->next_seq++;
	r->landmark += sync;
	r->tail = pos + len;
	r->stats.records++;
	r->stats.bytes += skipped + len;
	r->stats.sync_records = r->landmark;
	r->stats.rec_count[hdr->type]++;
	WRITE_ONCE(r->prod->next_seq, r->next_seq);
	WRITE_ONCE(r->prod->landmark, r->landmark);
	/* Pairs with the writer's load_acquire: we are done with the bytes. */
	smp_store_release(&r->prod->producer, r->tail);
	ret = len;
out:
	if (ret == -EBADMSG) {
		/* Point at the bad record; nothing is consumed. */
		r->tail = pos;
		smp_store_release(&r->prod->producer, r->tail);
	}
	spin_unlock_irqrestore(&r->lock, irqf);
	return ret;
}
