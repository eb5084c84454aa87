// SPDX-License-Identifier: GPL-2.0
/*
 * The demo guest (see workload.h). Runs in the VM: no libc, only guest.h.
 * Its interrupt handler is the library's (guest.c), which counts
 * interrupts per vector in guest_irq.
 */
#include "guest.h"
#include "workload.h"

struct ftvm_dma_slot ftvm_dma[FTVM_DMA_SLOTS] __attribute__((aligned(4096)));
struct ftvm_guest_stats ftvm_gstats;

static inline uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v;
	h *= 0x9e3779b97f4a7c15ULL;	/* odd: a bijection */
	h ^= h >> 29;			/* a bijection */
	return h;
}

static inline void barrier(void)
{
	__asm__ volatile("" : : : "memory");
}

/*
 * Fold in every DMA block newer than the last one seen, oldest first. The
 * device writes a whole slot between two guest instructions, so a slot read
 * is consistent iff its seq is the same before and after (a seqlock whose
 * writer is atomic): a block that changes under the reader is read again.
 * A block whose checksum is wrong is a broken device or a broken replay.
 */
static uint64_t dma_seen;

GUEST_CODE static uint64_t dma_poll(uint64_t h)
{
	for (;;) {
		volatile struct ftvm_dma_slot *best = 0;
		uint64_t best_seq = 0, seq;
		uint32_t len, sum, got;

		for (int i = 0; i < FTVM_DMA_SLOTS; i++) {
			seq = ftvm_dma[i].seq;
			if (seq > dma_seen && (!best || seq < best_seq)) {
				best = &ftvm_dma[i];
				best_seq = seq;
			}
		}
		if (!best)
			return h;
		seq = best->seq;
		barrier();
		len = best->len;
		sum = best->sum;
		GUEST_ASSERT(len >= 1 && len <= FTVM_DMA_DATA_MAX);
		got = ftvm_dma_sum((const uint8_t *)best->data, len);
		barrier();
		if (best->seq != seq) {
			ftvm_gstats.dma_retries++;
			continue;
		}
		GUEST_ASSERT_EQ(got, sum);
		ftvm_gstats.dma_skipped += seq - dma_seen - 1;
		ftvm_gstats.dma_blocks++;
		dma_seen = seq;
		h = mix(h, seq);
		h = mix(h, got);
	}
}

GUEST_CODE void ftvm_guest_main(void *arg)
{
	uint64_t h = 0x243f6a8885a308d3ULL, n = 0;

	(void)arg;
	sti();
	for (;;) {
		for (int r = 0; r < FTVM_ROUNDS; r++) {
			h = mix(h, inl(RANDOM_PORT));
			h = mix(h, rdtsc());
			/* An exit-free stretch: no landmark until it ends. */
			for (uint64_t k = 0; k < FTVM_SPIN; k++)
				h = mix(h, k);
		}
		h = mix(h, guest_irq.per_vector[FTVM_TIMER_VECTOR]);
		h = dma_poll(h);
		n++;
		ftvm_gstats.outputs = n;
		ftvm_gstats.hash = h;
		outl(FTVM_OUT_LO_PORT, (uint32_t)h);
		outl(FTVM_OUT_HI_PORT, (uint32_t)(h >> 32));
		outl(FTVM_OUT_N_PORT, (uint32_t)n);
	}
}
