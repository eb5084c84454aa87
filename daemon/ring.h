/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The user-space side of the kvm_ft log ring (uapi/linux/kvm_ft.h).
 *
 * One struct ft_ring describes a mapped ring: the consumer page, the producer
 * page and the data area. The same structure serves two roles:
 *
 *   reader  ftd on the primary reads the kernel's ring (read-only producer
 *           part) and hands out pointers straight into the mapped data;
 *   writer  a producer of a ring in the same format: the test producer, and
 *           ftd on the backup filling the replay ring.
 *
 * Two layouts of the control pages exist (uapi THE REPLAY RING): the log
 * ring (consumer page at CONSUMER_OFF written by the reader, producer page
 * at PRODUCER_OFF written by the producer) and the replay ring (status page
 * at CONSUMER_OFF written by the kernel, which consumes; a bare producer
 * position at PRODUCER_OFF written by user space). The data area and the
 * records are the same, so the reader and writer code is shared: each
 * struct ft_ring points at the position words of its layout.
 *
 * Nothing read from a shared page is trusted: positions, lengths, types and
 * sequence numbers are loaded once into locals and checked before use, so a
 * buggy or hostile other side makes the call fail with -EBADMSG, never read
 * outside the mapping.
 */
#ifndef FTD_RING_H
#define FTD_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/kvm_ft.h>

/* A read position: byte position and the seq expected at it. */
struct ft_ring_cursor {
	uint64_t pos;
	uint64_t seq;
};

struct ft_ring {
	struct kvm_ft_ring_consumer *cons;
	struct kvm_ft_ring_producer *prod;
	const uint8_t *data;		/* data area (written through wdata) */
	uint8_t *wdata;			/* NULL for a reader */
	uint64_t size;			/* data_size, a power of two */
	uint32_t order;
	/* reader: records before tail are released to the producer */
	struct ft_ring_cursor tail;
	/* mappings, for ft_ring_unmap() */
	void *map_cons, *map_prod;
	size_t len_cons, len_prod;
	const char *why;		/* reason of the last -EBADMSG */
	/* position words of this layout (see above) */
	const __u64 *prod_pos;	/* producer position: the reader loads it */
	__u64 *wprod_pos;		/* the same word, writable: writers only */
	const __u64 *cons_pos;	/* consumer position: the writer loads it */
	uint64_t wseq;			/* writer: seq of the next record to append */
	/* replay layout only (NULL otherwise; then cons and prod are NULL) */
	const struct kvm_ft_replay_status *rstat;
};

/* Smallest and largest record the format allows for each type (0 = unknown type). */
uint32_t ft_rec_min_len(unsigned int type);

/*
 * Check one record at buf, of which avail bytes are readable, expecting
 * sequence number seq. Returns its length, or -EBADMSG with *why set. A pad
 * is not accepted here (pads only exist inside a ring).
 */
int ft_rec_check(const void *buf, size_t avail, uint64_t seq, const char **why);

/* Lay out a ring in a regular file or memfd: size it and write the producer page. */
int ft_ring_format(int fd, unsigned int order);
/*
 * Map a ring from fd at the uapi offsets. writer=true maps the producer part
 * writable (files only; the kernel refuses it). The geometry is read from the
 * producer page and checked. Returns 0 or -errno.
 */
int ft_ring_map(struct ft_ring *r, int fd, bool writer);
void ft_ring_unmap(struct ft_ring *r);
/*
 * Map the log ring of an ft fd (or a file laid out the same way) as its
 * reader, with the geometry KVM_FT_GET_INFO gave (the kernel's ft fd has no
 * pread). The producer page is mapped read-only and its magic, version and
 * geometry are checked. Returns 0 or -errno.
 */
int ft_ring_map_log(struct ft_ring *r, int fd, uint64_t data_size);
/*
 * Map a replay ring (an ft fd in KVM_FT_MODE_REPLAY, or a file laid out by
 * ft_ring_format_replay()) as its writer: the status page read-only, the
 * producer part writable. The ring must be idle (producer == consumer, no
 * error); appending resumes at the status page's next_seq.
 */
int ft_ring_map_replay(struct ft_ring *r, int fd, uint64_t data_size);
/* Lay out a file or memfd as the kernel lays out a fresh replay ring (tests). */
int ft_ring_format_replay(int fd, unsigned int order);

/* ---- reader ---- */

/* Load and check the producer position. Returns 0 or -EBADMSG. */
int ft_ring_producer(struct ft_ring *r, uint64_t *prod);
/*
 * The next record at *cur, skipping pads. Returns 1 with *rec pointing into
 * the mapping and *len its length, and advances *cur past it; 0 when no
 * record is available; -EBADMSG on a malformed ring (r->why says what).
 * The record's bytes stay valid until the cursor passes ft_ring_release().
 */
int ft_ring_next(struct ft_ring *r, struct ft_ring_cursor *cur,
		 const struct kvm_ft_rec **rec, uint32_t *len);
/*
 * Release every record with seq <= acked to the producer and publish acked
 * in consumer->acked_seq. Fails with -EINVAL if acked is beyond limit (the
 * records actually handed out), so a peer cannot release unsent records.
 */
int ft_ring_release(struct ft_ring *r, uint64_t acked, const struct ft_ring_cursor *limit);

/* ---- writer ---- */

/* Bytes that can be appended now (pads not counted), or -EBADMSG. */
int64_t ft_ring_space(struct ft_ring *r);
/*
 * Append one complete record (already checked by the caller, len a multiple
 * of 8) and publish it. Returns 0, -EAGAIN when it does not fit yet, or
 * -EBADMSG when the consumer page holds an impossible position.
 */
int ft_ring_append(struct ft_ring *r, const void *rec, uint32_t len);
/* Sequence number the next appended record must carry. */
uint64_t ft_ring_next_seq(const struct ft_ring *r);

#endif
