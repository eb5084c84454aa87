/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The log ring of one attachment: a producer page followed by the data area
 * (one vmalloc_user() area, mapped read-only), and a separate consumer page
 * (vmalloc_user(), the only page user space may write). See
 * uapi/linux/kvm_ft.h "THE LOG RING" for the protocol.
 */
#ifndef FT_RING_H
#define FT_RING_H

#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/mm_types.h>
#include <linux/poll.h>
#include <linux/kvm_ft.h>

/* What ft_ring_append() asks its caller to do once the ring lock is dropped. */
#define FT_RING_WAKE	(1U << 0)	/* wake sleeping readers */
#define FT_RING_LOW	(1U << 1)	/* free space < KVM_FT_RING_RESERVE: wait before entry */

struct ft_ring {
	spinlock_t lock;		/* serialises producers and the fields below */

	/*
	 * Log ring: prod is page 0 of area (read-only to user space), cons
	 * is page (user-writable). Replay ring (replay): prod points to page
	 * (struct kvm_ft_replay_status has prod's layout, read-only to user
	 * space), cons to page 0 of area (user-writable producer position at
	 * the offset of consumer). Either way the kernel writes prod and
	 * never trusts cons.
	 */
	struct kvm_ft_ring_producer *prod;
	u8 *data;				/* page 1.. of area */
	struct kvm_ft_ring_consumer *cons;
	void *area;			/* mapped at KVM_FT_MMAP_PRODUCER_OFF */
	void *page;			/* mapped at KVM_FT_MMAP_CONSUMER_OFF */
	bool replay;
	u64 size;			/* data area bytes, a power of two */
	u32 order;

	/* Under lock. */
	u64 head;			/* producer position (replay: last valid one seen) */
	u64 tail;			/* last valid consumer position (replay: ours) */
	u64 bad_seen;			/* last invalid consumer value counted */
	u64 next_seq;
	u64 landmark;
	u64 woken_at;			/* head when readers were last woken */
	u64 woken_ns;			/* local_clock() of that wake-up */
	u32 error;			/* enum kvm_ft_error, sticky; READ_ONCE unlocked */
	u32 flags;			/* KVM_FT_RING_F_*, = prod->flags; READ_ONCE unlocked */
	struct kvm_ft_stats stats;	/* ring_waits/ring_wait_ns/exits too */

	void (*on_error)(struct ft_ring *r);	/* after the error is set; any context */
	wait_queue_head_t read_wq;	/* pollers of the ft fd */
	wait_queue_head_t space_wq;	/* the vCPU waiting for space */
};

int ft_ring_init(struct ft_ring *r, u32 order, bool replay);
void ft_ring_destroy(struct ft_ring *r);
int ft_ring_mmap(struct ft_ring *r, struct vm_area_struct *vma);

/*
 * Append one record: @hdr is the fixed part (len, seq and landmark are
 * filled in here), @data an optional variable part. Returns a mask of
 * FT_RING_* for the caller, or -ENOSPC (nothing written) when it does not
 * fit, -EIO when the ring is in error. Callable in atomic context.
 */
int ft_ring_append(struct ft_ring *r, struct kvm_ft_rec *hdr, u32 hdr_len,
		   const void *data, u32 data_len, bool sync);

void ft_ring_wake(struct ft_ring *r, bool force);
void ft_ring_wake_if_stale(struct ft_ring *r, u64 max_age_ns);
u64 ft_ring_free(struct ft_ring *r);
bool ft_ring_has_space(struct ft_ring *r, u64 want);
void ft_ring_set_error(struct ft_ring *r, u32 error);
u32 ft_ring_error(struct ft_ring *r);
void ft_ring_set_flags(struct ft_ring *r, u32 set, u32 clear);
__poll_t ft_ring_poll(struct ft_ring *r, struct file *file, poll_table *wait);
void ft_ring_stats(struct ft_ring *r, struct kvm_ft_stats *out);
void ft_ring_wait_begin(struct ft_ring *r);
void ft_ring_wait_end(struct ft_ring *r, u64 ns);
void ft_ring_count_exit(struct ft_ring *r);
void ft_ring_snapshot(struct ft_ring *r, u64 *head, u64 *tail, u64 *next_seq,
		      u64 *landmark, u64 *acked, u32 *flags, u32 *error);

/* Replay ring: why ft_ring_take() failed (enum kvm_ft_div_reason). */
struct ft_take_err {
	u32 reason;
	u64 pos;
};

/* Asynchronous records carry the landmark of the last synchronous one. */
static inline bool ft_rec_async(u32 type)
{
	return type == KVM_FT_REC_INTR || type == KVM_FT_REC_DMA ||
	       type == KVM_FT_REC_REG_DIGEST || type == KVM_FT_REC_MEM_DIGEST;
}

int ft_ring_take(struct ft_ring *r, void *buf, struct ft_take_err *err);
bool ft_ring_replay_ready(struct ft_ring *r);
bool ft_ring_emul_ready(struct ft_ring *r, u64 rip, u64 *seen);
int ft_ring_peek(struct ft_ring *r, u16 *type);

#endif /* FT_RING_H */
