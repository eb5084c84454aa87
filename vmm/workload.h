/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The demo guest of ftvm and the devices it talks to. Everything here is
 * shared by the guest code (workload.c, run in the VM) and the host side.
 *
 * The guest folds every kind of nondeterministic input into a 64-bit state
 * hash h (each step a bijection of the input, so a changed input changes
 * every later h):
 *   - PIO IN of host-random data (RANDOM_PORT, 4 bytes),
 *   - RDTSC,
 *   - the number of timer interrupts its IDT handler counted so far,
 *   - DMA blocks the host's DMA device wrote into guest memory (each one
 *     announced by an interrupt and checksummed by the guest),
 *   - long exit-free stretches in between (no landmark for a while).
 * After every FTVM_ROUNDS rounds it emits output n = 1, 2, ... as three
 * 4-byte OUTs: the low and high half of h, then n. The OUT of n completes
 * the output; its record's seq is the one the output rule waits for.
 */
#ifndef FTVM_WORKLOAD_H
#define FTVM_WORKLOAD_H

#include <stdint.h>

#define FTVM_OUT_LO_PORT	0xf0	/* OUT 4: low 32 bits of h */
#define FTVM_OUT_HI_PORT	0xf4	/* OUT 4: high 32 bits of h */
#define FTVM_OUT_N_PORT		0xf8	/* OUT 4: n; completes output n */
/* Host-random input: RANDOM_PORT of the test VMM library (ucall.h). */

#define FTVM_TIMER_VECTOR	0x40
#define FTVM_DMA_VECTOR		0x41

/*
 * The DMA device writes block k (k = 1, 2, ...) into slot k % FTVM_DMA_SLOTS
 * of ftvm_dma, header and data in one write, then raises FTVM_DMA_VECTOR.
 */
#define FTVM_DMA_SLOTS		8
#define FTVM_DMA_SLOT_SIZE	4096
#define FTVM_DMA_DATA_MAX	(FTVM_DMA_SLOT_SIZE - 16)

struct ftvm_dma_slot {
	uint64_t seq;		/* k; 0 = never written */
	uint32_t len;		/* bytes of data[], 1..FTVM_DMA_DATA_MAX */
	uint32_t sum;		/* ftvm_dma_sum(data, len) */
	uint8_t data[FTVM_DMA_DATA_MAX];
};

extern struct ftvm_dma_slot ftvm_dma[FTVM_DMA_SLOTS];

/* What the guest did so far (read by the host for statistics). */
struct ftvm_guest_stats {
	uint64_t outputs;	/* last n emitted */
	uint64_t dma_blocks;	/* blocks checked and folded in */
	uint64_t dma_retries;	/* a block changed while the guest read it */
	uint64_t dma_skipped;	/* blocks overwritten before the guest saw them */
	uint64_t hash;		/* h at the last output */
};

extern struct ftvm_guest_stats ftvm_gstats;

/* Rounds per output and the length of each exit-free stretch (iterations). */
#define FTVM_ROUNDS		4
#define FTVM_SPIN		20000

static inline uint32_t ftvm_dma_sum(const uint8_t *p, uint32_t len)
{
	uint32_t s = 0x811c9dc5;	/* FNV-1a */

	for (uint32_t i = 0; i < len; i++)
		s = (s ^ p[i]) * 0x01000193;
	return s;
}

/* The guest: runs forever. */
void ftvm_guest_main(void *arg);

#endif
