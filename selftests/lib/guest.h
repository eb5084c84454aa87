/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Guest-side helpers. Everything here runs in the KVM guest: no libc, no
 * TLS, no host pointers. Guest code in tests may use these, plain C, and the
 * guest's own copies of the binary's globals.
 */
#ifndef KVM_FT_SELFTEST_GUEST_H
#define KVM_FT_SELFTEST_GUEST_H

#include <stdint.h>
#include "ucall.h"

/*
 * Page-aligned guest code: a function shorter than a page then has no
 * instruction that crosses a page boundary. The test bed needs it: QEMU
 * 7.2's TCG, the L0 of every test here, sometimes delivers an interrupt
 * that KVM injected (EVENTINJ) a second time, as an exception-type event,
 * when the guest next executes an instruction that crosses a page before
 * its next exit (README "Limits"). Hardware never does; a backup could
 * not replay it. ftvm's guest is built only of GUEST_CODE functions
 * (vmm/Makefile checks the linked binary with selftests/lib/guest_pages.sh).
 */
#define GUEST_CODE __attribute__((aligned(4096)))

void guest_ucall(uint64_t cmd, uint64_t nargs, ...);
void __attribute__((noreturn)) guest_assert_fail(const char *file, uint64_t line,
						  const char *expr, uint64_t a, uint64_t b);

#define GUEST_SYNC(...) guest_ucall(UCALL_SYNC, __GUEST_NARGS(__VA_ARGS__), ##__VA_ARGS__)
#define GUEST_DONE() guest_ucall(UCALL_DONE, 0)
#define __GUEST_NARGS(...) __GUEST_NARGS_(0, ##__VA_ARGS__, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define __GUEST_NARGS_(z, a1, a2, a3, a4, a5, a6, a7, a8, n, ...) n

#define GUEST_ASSERT(cond) do { if (!(cond)) \
	guest_assert_fail(__FILE__, __LINE__, #cond, 0, 0); } while (0)
#define GUEST_ASSERT_EQ(a, b) do { uint64_t __a = (uint64_t)(a), __b = (uint64_t)(b); \
	if (__a != __b) guest_assert_fail(__FILE__, __LINE__, #a " == " #b, __a, __b); } while (0)

#define GUEST_IRQ_LOG	4096

/* State the guest's interrupt handler keeps (vectors >= 32). */
struct guest_irq_state {
	volatile uint64_t count;
	volatile uint64_t last_vector;
	volatile uint64_t last_rip;	/* RIP the interrupt was delivered at */
	volatile uint64_t per_vector[256];
	volatile uint64_t hash;		/* of every (vector, rip) in order */
	/* The first GUEST_IRQ_LOG interrupts: delivery RIP and vector. */
	volatile uint64_t rip_log[GUEST_IRQ_LOG];
	volatile uint8_t vector_log[GUEST_IRQ_LOG];
};
extern struct guest_irq_state guest_irq;

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

/* String PIO, DF clear: n elements to/from memory at p. */
static inline void rep_insb(uint16_t port, void *p, uint64_t n)
{
	__asm__ volatile("cld; rep insb" : "+D"(p), "+c"(n) : "d"(port) : "memory");
}

static inline void rep_insw(uint16_t port, void *p, uint64_t n)
{
	__asm__ volatile("cld; rep insw" : "+D"(p), "+c"(n) : "d"(port) : "memory");
}

static inline void rep_outsb(uint16_t port, const void *p, uint64_t n)
{
	__asm__ volatile("cld; rep outsb" : "+S"(p), "+c"(n) : "d"(port) : "memory");
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return ((uint64_t)hi << 32) | lo;
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;

	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr) : "memory");
	return ((uint64_t)hi << 32) | lo;
}

static inline void cpuid(uint32_t function, uint32_t index, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(function), "c"(index) : "memory");
}

static inline void sti(void) { __asm__ volatile("sti" : : : "memory"); }
static inline void cli(void) { __asm__ volatile("cli" : : : "memory"); }
/* STI's one-instruction shadow makes "sti; hlt" wait without a lost wake-up. */
static inline void sti_hlt(void) { __asm__ volatile("sti; hlt" : : : "memory"); }
static inline void hlt(void) { __asm__ volatile("hlt" : : : "memory"); }

static inline uint64_t mmio_read64(uint64_t gpa)
{
	return *(volatile uint64_t *)gpa;
}

static inline uint32_t mmio_read32(uint64_t gpa)
{
	return *(volatile uint32_t *)gpa;
}

/* An MMIO read or write of 1, 2, 4 or 8 bytes (gpa aligned to it). */
static inline uint64_t mmio_read_n(uint64_t gpa, unsigned int size)
{
	switch (size) {
	case 1: return *(volatile uint8_t *)gpa;
	case 2: return *(volatile uint16_t *)gpa;
	case 4: return *(volatile uint32_t *)gpa;
	}
	return *(volatile uint64_t *)gpa;
}

static inline void mmio_write_n(uint64_t gpa, unsigned int size, uint64_t v)
{
	switch (size) {
	case 1: *(volatile uint8_t *)gpa = (uint8_t)v; break;
	case 2: *(volatile uint16_t *)gpa = (uint16_t)v; break;
	case 4: *(volatile uint32_t *)gpa = (uint32_t)v; break;
	default: *(volatile uint64_t *)gpa = v; break;
	}
}

static inline void mmio_write32(uint64_t gpa, uint32_t v)
{
	*(volatile uint32_t *)gpa = v;
}

static inline void mmio_write64(uint64_t gpa, uint64_t v)
{
	*(volatile uint64_t *)gpa = v;
}

/* Address of the next instruction, for tests that compare recorded RIPs. */
#define GUEST_LABEL_ADDR(name) ({ uint64_t __r; \
	__asm__ volatile("lea " #name "(%%rip), %0" : "=r"(__r)); __r; })

static inline void guest_puts(const char *s)
{
	while (*s)
		outb(OUTPUT_PORT, (uint8_t)*s++);
}

#endif
