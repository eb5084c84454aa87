// SPDX-License-Identifier: GPL-2.0
/*
 * The backup's outputs, read from its replay ring.
 *
 * On the backup the module replays the guest's OUTs without passing them to
 * user space, yet at GO_LIVE ftvm must re-emit every output the old primary
 * may not have emitted (ftd_vmm.h). The records the module replays are in
 * the replay ring that ftd fills, and the module checks every replayed OUT
 * against its record (port, size, data), so the PIO_OUT records of the
 * output ports are exactly the outputs the backup's guest made, with their
 * seq. A reader thread maps the ring read-only and follows ftd's published
 * producer position, every millisecond, assembling outputs (hash low, hash
 * high, n) as the guest's OUTs do, and keeps them like replayed outputs.
 *
 * The ring space of a record is reused by ftd once the module consumed it,
 * one lap (data_size bytes) later. The reader copies each record out and
 * then checks that it is still from the lap it expects: the seq must be the
 * next one, before and after the copy. A reader that fell a lap behind
 * notices it, says so and stops keeping outputs (GO_LIVE then reports that
 * it cannot re-emit them).
 *
 * At GO_LIVE the control thread stops the reader, reads what is left and
 * drops the outputs whose records the module did not consume: the guest
 * never made those.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ftvm.h"
#include "workload.h"

int ftvm_rlog_map(struct ftvm *v)
{
	struct kvm_ft_info info;
	void *p;

	if (ioctl(v->ft_fd, KVM_FT_GET_INFO, &info))
		return -errno;
	p = mmap(NULL, info.producer_len, PROT_READ, MAP_SHARED, v->ft_fd,
		 KVM_FT_MMAP_REPLAY_RING_OFF);
	if (p == MAP_FAILED)
		return -errno;
	v->rlog.prod = p;
	v->rlog.data = (const uint8_t *)p + info.page_size;
	v->rlog.size = info.data_size;
	v->rlog.len = info.producer_len;
	v->rlog.seq = 1;
	return 0;
}

static uint64_t load_seq(const volatile void *p)
{
	uint64_t s;

	memcpy(&s, (const void *)p, sizeof(s));
	return s;
}

/* One record at r->pos into buf; 1 read, 0 none published, -1 lost or bad. */
static int take(struct ftvm_rlog *r, uint64_t prod, uint8_t *buf)
{
	uint64_t off = r->pos & (r->size - 1), seq;
	struct kvm_ft_rec h;

	if (r->pos == prod)
		return 0;
	if (prod - r->pos > r->size || (prod & 7))
		return -1;
	memcpy(&h, r->data + off, 8);
	if (h.type == KVM_FT_REC_PAD) {
		if (h.len < 8 || off + h.len != r->size)
			return -1;
		r->pos += h.len;
		return take(r, prod, buf);
	}
	if (h.len < sizeof(h) || h.len > KVM_FT_RING_RESERVE || (h.len & 7) ||
	    off + h.len > r->size || r->pos + h.len > prod)
		return -1;
	seq = load_seq(r->data + off + 8);
	memcpy(buf, r->data + off, h.len);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	/* Same seq before and after, and the expected one: not overwritten. */
	if (seq != r->seq || load_seq(r->data + off + 8) != seq ||
	    ((const struct kvm_ft_rec *)buf)->len != h.len)
		return -1;
	r->pos += h.len;
	r->seq++;
	return 1;
}

void ftvm_rlog_scan(struct ftvm *v)
{
	struct ftvm_rlog *r = &v->rlog;
	uint64_t buf[KVM_FT_RING_RESERVE / 8];
	uint64_t prod;
	int got;

	if (!r->prod || r->lost)
		return;
	prod = __atomic_load_n(&r->prod->producer, __ATOMIC_ACQUIRE);
	while ((got = take(r, prod, (uint8_t *)buf)) > 0) {
		const struct kvm_ft_rec_pio *p = (const void *)buf;
		uint32_t val;

		if (p->hdr.type != KVM_FT_REC_PIO_OUT || p->hdr.len < sizeof(*p) + 8 ||
		    p->size != 4 || p->count != 1)
			continue;
		memcpy(&val, p->data, 4);
		if (p->port == FTVM_OUT_LO_PORT) {
			r->lo = val;
		} else if (p->port == FTVM_OUT_HI_PORT) {
			r->hi = val;
		} else if (p->port == FTVM_OUT_N_PORT) {
			struct ftvm_output out = {
				.n = val, .hash = (uint64_t)r->hi << 32 | r->lo,
				.seq = p->hdr.seq, .t_ns = ftvm_now_ns(),
			};

			ftvm_outq_push(v, &out);
		}
	}
	if (got < 0) {
		r->lost = true;
		ftvm_log("replay ring: lost track at position %llu (seq %llu): outputs after it "
			 "cannot be re-emitted at GO_LIVE", (unsigned long long)r->pos,
			 (unsigned long long)r->seq);
	}
}

static void *rlog_main(void *arg)
{
	struct ftvm *v = arg;

	while (!__atomic_load_n(&v->rlog.stop, __ATOMIC_ACQUIRE)) {
		ftvm_rlog_scan(v);
		usleep(1000);
	}
	return NULL;
}

int ftvm_rlog_start(struct ftvm *v)
{
	int r = pthread_create(&v->rlog.tid, NULL, rlog_main, v);

	if (r)
		return -r;
	v->rlog.running = true;
	return 0;
}

void ftvm_rlog_stop(struct ftvm *v)
{
	if (!v->rlog.running)
		return;
	__atomic_store_n(&v->rlog.stop, true, __ATOMIC_RELEASE);
	pthread_join(v->rlog.tid, NULL);
	v->rlog.running = false;
	ftvm_rlog_scan(v);
}

void ftvm_rlog_unmap(struct ftvm *v)
{
	ftvm_rlog_stop(v);
	if (v->rlog.prod)
		munmap((void *)v->rlog.prod, v->rlog.len);
	memset(&v->rlog, 0, sizeof(v->rlog));
}
