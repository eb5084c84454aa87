// SPDX-License-Identifier: GPL-2.0
/*
 * The ring reader and writer against a memfd laid out as the uapi says:
 * records round-trip byte-exact across many wraps (in one process and across
 * two processes), and every malformed producer page or record is refused
 * without moving the reader's cursor.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>
#include "ring.h"
#include "recgen.h"
#include "tap.h"

static int new_ring(unsigned int order)
{
	int fd = memfd_create("ring", MFD_CLOEXEC);

	if (fd < 0 || ft_ring_format(fd, order))
		exit(2);
	return fd;
}

/* Drain everything: verify each record, release it. Returns records read or -1. */
static long drain(struct ft_ring *r, struct ft_ring_cursor *cur, uint64_t seed)
{
	const struct kvm_ft_rec *rec;
	uint32_t len;
	long n = 0;
	int ret;

	while ((ret = ft_ring_next(r, cur, &rec, &len)) == 1) {
		if (!ft_recgen_verify(seed, rec->seq, 0, rec, len))
			return -1;
		n++;
	}
	if (ret < 0)
		return -1;
	if (n && ft_ring_release(r, cur->seq - 1, cur))
		return -1;
	return n;
}

static void roundtrip(uint64_t seed)
{
	int fd = new_ring(16);
	struct ft_ring w, r;
	struct ft_ring_cursor cur;
	uint8_t buf[FT_RECGEN_MAX];
	uint64_t seq = 1, got = 0, wraps;
	int bad = 0;

	ok(ft_ring_map(&w, fd, true) == 0 && ft_ring_map(&r, fd, false) == 0, "map writer and reader");
	cur = r.tail;
	ok(cur.pos == 0 && cur.seq == 1, "fresh ring starts at pos 0, seq 1");
	while (seq <= 50000) {
		uint32_t len = ft_recgen(seed, seq, buf);
		int ret = ft_ring_append(&w, buf, len);

		if (ret == 0) {
			seq++;
			continue;
		}
		if (ret != -EAGAIN) {
			bad = 1;
			break;
		}
		long n = drain(&r, &cur, seed);

		if (n <= 0) {
			bad = 1;
			break;
		}
		got += n;
	}
	long n = drain(&r, &cur, seed);

	got += n > 0 ? n : 0;
	wraps = cur.pos / w.size;
	ok(!bad && n >= 0, "append/read/release never fail (%s)", r.why ? r.why : "no error");
	ok(got == 50000, "50000 records read back byte-exact (got %llu)", (unsigned long long)got);
	ok(wraps >= 10, "the data area wrapped %llu times", (unsigned long long)wraps);
	ok(r.cons->acked_seq == 50000 && r.cons->consumer == w.prod->producer,
	   "consumer page: acked_seq and consumer position published");
	ok(ft_ring_space(&w) == (int64_t)w.size, "writer sees the whole area free again");
	ft_ring_unmap(&w);
	ft_ring_unmap(&r);
	close(fd);
}

static void expect_bad(struct ft_ring *r, const char *what)
{
	struct ft_ring_cursor cur = r->tail, before = cur;
	const struct kvm_ft_rec *rec;
	uint32_t len;
	int ret;

	r->why = NULL;
	ret = ft_ring_next(r, &cur, &rec, &len);
	ok(ret == -EBADMSG && cur.pos == before.pos && cur.seq == before.seq,
	   "%s: refused (%s), cursor unmoved", what, r->why ? r->why : "-");
}

static void malformed(uint64_t seed)
{
	int fd = new_ring(16);
	struct ft_ring w, r;
	uint8_t buf[FT_RECGEN_MAX];
	struct kvm_ft_rec *h = (struct kvm_ft_rec *)buf;
	uint32_t len = ft_recgen_sized(seed, 1, 64, buf);
	uint64_t p;

	ft_ring_map(&w, fd, true);
	ft_ring_map(&r, fd, false);
	ft_ring_append(&w, buf, len);
	p = w.prod->producer;

	w.prod->producer = p + 4;
	expect_bad(&r, "unaligned producer");
	w.prod->producer = p + w.size + 8;
	expect_bad(&r, "producer beyond the data area");
	w.prod->producer = p;

	h = (struct kvm_ft_rec *)w.wdata;
	h->len = 60;
	expect_bad(&r, "length not a multiple of 8");
	h->len = 72;
	expect_bad(&r, "length beyond the producer");
	h->len = 64;
	h->type = 13;
	expect_bad(&r, "unknown type");
	h->type = KVM_FT_REC_RDTSC;
	expect_bad(&r, "length not matching its type");
	h->type = KVM_FT_REC_PIO_IN;
	h->seq = 2;
	expect_bad(&r, "sequence gap");
	h->seq = 1;
	h->flags = 0x80;
	expect_bad(&r, "unknown flag");
	h->flags = 0;
	((struct kvm_ft_rec_pio *)h)->size = 3;
	expect_bad(&r, "PIO size 3");
	((struct kvm_ft_rec_pio *)h)->size = 1;
	/* a pad that does not reach the end of the area */
	h->type = KVM_FT_REC_PAD;
	h->len = 64;
	expect_bad(&r, "short pad");
	h->type = KVM_FT_REC_PIO_IN;

	struct ft_ring_cursor cur = r.tail;
	const struct kvm_ft_rec *rec;

	ok(ft_ring_next(&r, &cur, &rec, &len) == 1 && rec->seq == 1, "repaired record reads");
	struct ft_ring_cursor early = r.tail;

	ok(ft_ring_release(&r, 1, &early) == -EINVAL && r.cons->consumer == 0,
	   "ack of a record not handed out is refused");
	ok(ft_ring_release(&r, 1, &cur) == 0 && r.cons->consumer == p, "ack of a read record releases it");
	ok(ft_ring_release(&r, 0, &cur) == 0 && r.cons->consumer == p, "an old ack changes nothing");

	len = ft_recgen_sized(seed, 2, 64, buf);
	r.cons->consumer = p + 8;
	ok(ft_ring_append(&w, buf, len) == -EBADMSG, "writer refuses a consumer ahead of the producer");
	r.cons->consumer = p;
	len = ft_recgen_sized(seed, 3, 64, buf);
	ok(ft_ring_append(&w, buf, len) == -EINVAL, "writer refuses a record with the wrong seq");
	ft_ring_unmap(&w);
	ft_ring_unmap(&r);
	close(fd);
}

/* Producer and reader in two processes, racing on the shared pages. */
static void two_procs(uint64_t seed)
{
	int fd = new_ring(16);
	const uint64_t total = 200000;
	pid_t pid = fork();

	if (pid == 0) {
		struct ft_ring w;
		uint8_t buf[FT_RECGEN_MAX];

		if (ft_ring_map(&w, fd, true))
			_exit(2);
		for (uint64_t s = 1; s <= total;) {
			uint32_t len = ft_recgen(seed, s, buf);
			int ret = ft_ring_append(&w, buf, len);

			if (ret == 0)
				s++;
			else if (ret == -EAGAIN)
				sched_yield();
			else
				_exit(3);
		}
		_exit(0);
	}
	struct ft_ring r;
	struct ft_ring_cursor cur;
	uint64_t got = 0;
	int status, bad = 0;
	time_t end = time(NULL) + 60;

	ft_ring_map(&r, fd, false);
	cur = r.tail;
	while (got < total && time(NULL) < end) {
		long n = drain(&r, &cur, seed);

		if (n < 0) {
			bad = 1;
			break;
		}
		if (!n)
			sched_yield();
		got += n;
	}
	waitpid(pid, &status, 0);
	ok(!bad && got == total && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "two processes: %llu records verified while the producer ran", (unsigned long long)got);
	ft_ring_unmap(&r);
	close(fd);
}

/* The record types the module added for asynchronous inputs and digests. */
static void new_types(void)
{
	uint8_t buf[sizeof(struct kvm_ft_rec_dma) + KVM_FT_DMA_MAX + 8] = { 0 };
	struct kvm_ft_rec_dma *d = (void *)buf;
	struct kvm_ft_rec_digest g = { .hdr = { .len = sizeof(g), .type = KVM_FT_REC_REG_DIGEST,
						.flags = KVM_FT_RF_ASYNC, .seq = 7 } };
	struct kvm_ft_rec_hlt h = { .hdr = { .len = sizeof(h), .type = KVM_FT_REC_HLT,
					     .flags = KVM_FT_RF_MEM_DIGEST, .seq = 7 } };
	const char *why = NULL;

	*d = (struct kvm_ft_rec_dma){ .hdr = { .len = 48, .type = KVM_FT_REC_DMA, .flags = KVM_FT_RF_ASYNC,
					       .seq = 7 }, .len = 5 };
	ok(ft_rec_check(d, sizeof(buf), 7, &why) == 48, "DMA of 5 bytes: fixed part + data, 8-aligned");
	d->len = KVM_FT_DMA_MAX;
	d->hdr.len = sizeof(*d) + KVM_FT_DMA_MAX;
	ok(ft_rec_check(d, sizeof(buf), 7, &why) == (int)d->hdr.len, "DMA of KVM_FT_DMA_MAX bytes");
	d->len = 0;
	ok(ft_rec_check(d, sizeof(buf), 7, &why) == -EBADMSG, "DMA of 0 bytes refused (%s)", why);
	d->len = 5;
	d->hdr.len = 56;
	ok(ft_rec_check(d, sizeof(buf), 7, &why) == -EBADMSG, "DMA longer than its data refused (%s)", why);
	ok(ft_rec_check(&g, sizeof(g), 7, &why) == sizeof(g), "register digest record");
	g.hdr.type = KVM_FT_REC_MEM_DIGEST;
	ok(ft_rec_check(&g, sizeof(g), 7, &why) == sizeof(g), "memory digest record");
	ok(ft_rec_check(&h, sizeof(h), 7, &why) == sizeof(h), "HLT flagged MEM_DIGEST (one follows)");
	h.hdr.flags = 1 << 3;
	ok(ft_rec_check(&h, sizeof(h), 7, &why) == -EBADMSG, "unknown flag refused (%s)", why);
}

int main(void)
{
	uint64_t seed = tap_seed();

	roundtrip(seed);
	malformed(seed);
	two_procs(seed);
	new_types();
	return tap_done();
}
