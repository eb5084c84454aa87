// SPDX-License-Identifier: GPL-2.0
#include <string.h>
#include <linux/kvm_ft.h>
#include "recgen.h"

uint64_t ft_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void fill(uint64_t *st, void *p, size_t n)
{
	uint8_t *b = p;

	while (n) {
		uint64_t v = ft_splitmix64(st);
		size_t k = n < 8 ? n : 8;

		memcpy(b, &v, k);
		b += k;
		n -= k;
	}
}

static uint32_t pio(uint64_t *st, uint64_t seq, uint32_t bytes, uint8_t *buf)
{
	struct kvm_ft_rec_pio *r = (struct kvm_ft_rec_pio *)buf;
	uint32_t len = (sizeof(*r) + bytes + 7) & ~7U;

	memset(buf, 0, len);
	r->hdr = (struct kvm_ft_rec){ .len = len, .type = KVM_FT_REC_PIO_IN, .seq = seq,
				      .landmark = seq };
	r->rip = ft_splitmix64(st);
	r->port = 0x3f8;
	r->size = 1;
	r->count = bytes;
	fill(st, r->data, bytes);
	return len;
}

uint32_t ft_recgen_sized(uint64_t seed, uint64_t seq, uint32_t size, void *buf)
{
	uint64_t st = seed ^ (seq * 0x2545f4914f6cdd1dULL);

	if (size < sizeof(struct kvm_ft_rec_pio) + 8)
		size = sizeof(struct kvm_ft_rec_pio) + 8;
	if (size > FT_RECGEN_MAX)
		size = FT_RECGEN_MAX;
	return pio(&st, seq, (size & ~7U) - sizeof(struct kvm_ft_rec_pio), buf);
}

uint32_t ft_recgen(uint64_t seed, uint64_t seq, void *buf)
{
	uint64_t st = seed ^ (seq * 0x2545f4914f6cdd1dULL);
	uint64_t pick = ft_splitmix64(&st);
	struct kvm_ft_rec h = { .seq = seq, .landmark = seq };
	uint8_t *b = buf;

	switch (pick % 8) {
	case 0:
		/* now and then a string PIO of a whole page, the largest input */
		return pio(&st, seq, (pick >> 8) % 16 == 0 ? 4096 : 1 + (pick >> 8) % 64, buf);
	case 1: {
		struct kvm_ft_rec_mmio r = { 0 };

		h.type = KVM_FT_REC_MMIO_READ;
		h.len = sizeof(r);
		r.hdr = h;
		r.rip = ft_splitmix64(&st);
		r.gpa = 0xfee00000 + ((pick >> 8) & 0xff0);
		r.len = 4;
		fill(&st, r.data, 4);
		memcpy(b, &r, sizeof(r));
		return sizeof(r);
	}
	case 2: case 3: {
		struct kvm_ft_rec_tsc r = { 0 };

		h.type = KVM_FT_REC_RDTSC;
		h.len = sizeof(r);
		r.hdr = h;
		r.rip = ft_splitmix64(&st);
		r.tsc = ft_splitmix64(&st);
		r.insn = KVM_FT_INSN_RDTSC;
		memcpy(b, &r, sizeof(r));
		return sizeof(r);
	}
	case 4: {
		struct kvm_ft_rec_cpuid r = { 0 };

		h.type = KVM_FT_REC_CPUID;
		h.len = sizeof(r);
		r.hdr = h;
		r.rip = ft_splitmix64(&st);
		fill(&st, &r.function, 24);
		memcpy(b, &r, sizeof(r));
		return sizeof(r);
	}
	case 5: {
		struct kvm_ft_rec_hlt r = { 0 };

		h.type = KVM_FT_REC_HLT;
		h.len = sizeof(r);
		r.hdr = h;
		r.rip = ft_splitmix64(&st);
		memcpy(b, &r, sizeof(r));
		return sizeof(r);
	}
	default: {
		struct kvm_ft_rec_intr r = { 0 };

		h.type = KVM_FT_REC_INTR;
		h.flags = KVM_FT_RF_ASYNC;
		h.len = sizeof(r);
		r.hdr = h;
		r.rip = ft_splitmix64(&st);
		r.vector = 32 + (pick >> 8) % 200;
		memcpy(b, &r, sizeof(r));
		return sizeof(r);
	}
	}
}

bool ft_recgen_verify(uint64_t seed, uint64_t seq, uint32_t size, const void *rec, uint32_t len)
{
	uint8_t want[FT_RECGEN_MAX];
	uint32_t n = size ? ft_recgen_sized(seed, seq, size, want) : ft_recgen(seed, seq, want);

	return n == len && memcmp(want, rec, len) == 0;
}
