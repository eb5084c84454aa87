/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small test VMM: one KVM VM with one vCPU whose guest code is an ordinary
 * C function of the (static, non-PIE) test binary. The binary's own PT_LOAD
 * segments are loaded into guest memory at their link addresses, and the
 * guest runs in 64-bit mode with identity page tables, so a guest pointer is
 * a guest-physical address and the same symbol names the same code and data
 * in host and guest (the guest has its own copy of the data).
 *
 * Guest-physical layout:
 *   0x1000 GDT, 0x2000 IDT, 0x3000 TSS, 0x10000 page tables (4 GiB of
 *   2 MiB pages), 0x100000-0x200000 stack, 0x200000- scratch for
 *   vm_alloc(), the ELF image from its link address (0x400000), RAM ends at
 *   opts.mem_size; VM_MMIO_BASE is never backed: accesses exit to the host.
 *
 * Devices the host emulates (run loop in kvm_util.c):
 *   UCALL_PORT   OUT, 4 bytes: guest address of a struct ucall (guest.h);
 *                logged in vm->io_log like any other OUT
 *   OUTPUT_PORT  OUT, 1 byte: appended to vm->output
 *   RANDOM_PORT  IN, 1/2/4 bytes: host-random data, logged in vm->io_log
 *   VM_MMIO_BASE reads return host-random data, writes are logged
 * Interrupts come from a userspace irqchip (no in-kernel LAPIC): vm_queue_irq()
 * or the random interrupt thread; they are injected with KVM_INTERRUPT when
 * the guest can take them.
 */
#ifndef KVM_FT_SELFTEST_KVM_UTIL_H
#define KVM_FT_SELFTEST_KVM_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <time.h>
#include <linux/kvm.h>

#include "ucall.h"

#define VM_GDT_GPA		0x1000ULL
#define VM_IDT_GPA		0x2000ULL
#define VM_TSS_GPA		0x3000ULL
#define VM_PT_GPA		0x10000ULL
#define VM_STACK_BASE		0x100000ULL
#define VM_STACK_TOP		0x200000ULL
#define VM_SCRATCH_GPA		0x200000ULL
#define VM_SCRATCH_END		0x400000ULL	/* the ELF image starts here */
#define VM_MMIO_BASE		0xC0000000ULL
#define VM_MMIO_SIZE		0x100000ULL
#define VM_MEM_SIZE_DEFAULT	(64ULL << 20)

#define VM_SEL_CODE		0x08
#define VM_SEL_DATA		0x10
#define VM_SEL_TSS		0x18

enum io_kind {
	IO_PIO_IN = 1,
	IO_PIO_OUT,
	IO_MMIO_READ,
	IO_MMIO_WRITE,
};

/* One access the host served, in order: what the guest read or wrote. */
struct io_event {
	uint32_t kind;		/* enum io_kind */
	uint32_t size;		/* bytes */
	uint64_t addr;		/* port or gpa */
	uint64_t data;		/* little-endian, size bytes valid */
};

/* One DMA write queued by the DMA thread. */
struct dma_event {
	uint64_t gpa;
	uint32_t len;
	uint8_t data[256];
};

struct vm_opts {
	uint64_t mem_size;	/* 0: VM_MEM_SIZE_DEFAULT */
	bool unsafe_cpuid;	/* keep RDRAND/RDSEED/RDTSCP/RDPID and KVM PV leaves */
	bool log_io;		/* record every served access in vm->io_log */
	bool no_vcpu;		/* create the VM only (tests of the attach rules) */
	unsigned int extra_vcpus; /* create this many more vCPUs (never run) */
};

struct kvm_vm {
	int kvm_fd, vm_fd, vcpu_fd;
	int extra_vcpu_fd[4];
	struct kvm_run *run;
	size_t run_size;
	uint8_t *mem;
	uint64_t mem_size;
	uint64_t scratch_next;		/* bump pointer of vm_alloc() */

	/* Host-side devices. */
	uint64_t rng;			/* xorshift state of RANDOM_PORT/MMIO reads */
	bool log_io;
	struct io_event *io_log;
	size_t io_count, io_cap;
	char *output;			/* bytes written to OUTPUT_PORT, NUL-terminated */
	size_t output_len, output_cap;
	uint64_t exits;			/* KVM_RUN returns that were guest exits */
	uint64_t halts;

	/* Interrupts: vector to inject, or 0. Written by any thread. */
	volatile int irq_pending;
	uint32_t irq_on_halt;		/* queue this vector when the guest halts */
	uint64_t irqs_injected;
	uint32_t *irq_log;		/* injected vectors, in order */
	size_t irq_log_count, irq_log_cap;
	pthread_t vcpu_thread;
	bool irq_thread_running;
	volatile bool irq_thread_stop;
	pthread_t irq_thread;
	unsigned int irq_min_us, irq_max_us;
	uint32_t irq_vector;
	uint64_t irq_rng;
	uint64_t irqs_requested;

	/*
	 * kvm_ft asynchronous inputs (vm_ft_async()): interrupts go to the
	 * module with KVM_FT_QUEUE_ASYNC instead of KVM_INTERRUPT, and a halted
	 * guest waits for the next queued interrupt. ft_replay: the module takes
	 * interrupts from the replay ring; a HLT exit just re-enters.
	 */
	/* DMA thread (vm_dma_thread_start): what it queued, in order. */
	pthread_t dma_thread;
	bool dma_thread_running;
	volatile bool dma_thread_stop;
	uint64_t dma_gpa, dma_rng;
	uint32_t dma_size, dma_max_len, dma_next;
	unsigned int dma_min_us, dma_max_us;
	struct dma_event *dma_log;
	size_t dma_count, dma_cap;

	/* Called by vcpu_run_raw() after every guest exit (NULL: none). */
	void (*exit_hook)(struct kvm_vm *vm);
	void *exit_hook_arg;

	int ft_fd;			/* 0: not in use */
	bool ft_replay;
	volatile uint64_t irqs_queued;	/* KVM_FT_QUEUE_ASYNC IRQs accepted */
	uint64_t async_eagain;		/* queue full, retried */
};

/* Fatal test-VMM error: prints and exits the test process with a failure. */
void __attribute__((noreturn, format(printf, 3, 4)))
kt_fail(const char *file, int line, const char *fmt, ...);
#define KT_FAIL(...) kt_fail(__FILE__, __LINE__, __VA_ARGS__)
#define KT_ASSERT(cond, ...) do { if (!(cond)) KT_FAIL(__VA_ARGS__); } while (0)

/* Create a VM that will run guest_fn(arg) (guest_fn may be NULL with no_vcpu). */
struct kvm_vm *vm_create(const struct vm_opts *opts, void (*guest_fn)(void *), void *arg);
void vm_free(struct kvm_vm *vm);

/* Restart the vCPU at guest_fn(arg) with a fresh stack (guest memory kept). */
void vm_set_entry(struct kvm_vm *vm, void (*guest_fn)(void *), void *arg);

/* Guest-physical (= guest-virtual) address to host pointer; NULL if outside RAM. */
void *vm_gpa2hva(struct kvm_vm *vm, uint64_t gpa, uint64_t len);
/* Allocate zeroed guest memory in the scratch area; returns its gpa. */
uint64_t vm_alloc(struct kvm_vm *vm, uint64_t size);
/* Copy a host value into the guest's copy of a global: vm_poke(vm, &sym, ...). */
void vm_write(struct kvm_vm *vm, const void *guest_addr, const void *src, size_t len);
void vm_read(struct kvm_vm *vm, const void *guest_addr, void *dst, size_t len);
#define VM_SET_GLOBAL(vm, sym, val) do { __typeof__((sym) + 0) __v = (val); \
	vm_write(vm, (const void *)(uintptr_t)&(sym), &__v, sizeof(__v)); } while (0)
#define VM_GET_GLOBAL(vm, sym) ({ __typeof__((sym) + 0) __v; \
	vm_read(vm, (const void *)(uintptr_t)&(sym), &__v, sizeof(__v)); __v; })

/* Seed of the host devices' random data (RANDOM_PORT, MMIO reads, irq timing). */
void vm_seed(struct kvm_vm *vm, uint64_t seed);

/*
 * Run until the guest makes a ucall; serve every device exit on the way.
 * Returns the ucall's cmd and fills *uc (args translated for the host).
 * A guest assertion or unexpected exception fails the test (kt_fail) unless
 * the caller asked for it (vcpu_run_raw). KVM_RUN errors and unexpected exits
 * fail the test too, except that vcpu_run_raw returns -errno for KVM_RUN errors.
 */
uint64_t vcpu_run(struct kvm_vm *vm, struct ucall *uc);
int64_t vcpu_run_raw(struct kvm_vm *vm, struct ucall *uc);
/* vcpu_run() and fail the test unless the guest made ucall `cmd`. */
void vcpu_run_expect(struct kvm_vm *vm, uint64_t cmd, struct ucall *uc);

/* Interrupts. */
void vm_queue_irq(struct kvm_vm *vm, uint32_t vector);
/*
 * A thread requesting `vector` at random intervals in [min_us, max_us]. It
 * kicks the thread that last entered vcpu_run() (or the caller, before
 * that) with SIGUSR1, which makes KVM_RUN return at once (immediate_exit).
 */
void vm_irq_thread_start(struct kvm_vm *vm, uint32_t vector,
			 unsigned int min_us, unsigned int max_us, uint64_t seed);
void vm_irq_thread_stop(struct kvm_vm *vm);

/*
 * For VMMs with their own run loop: make the calling thread the vCPU thread
 * (vcpu_run() does this itself), and kick it: its KVM_RUN returns -EINTR at
 * once, also when the kick comes just before it enters.
 */
void vcpu_thread_bind(struct kvm_vm *vm);
void vm_kick(struct kvm_vm *vm);

/*
 * Hand interrupts to kvm_ft (ft fd of this VM's attachment) from now on;
 * replay: the attachment replays (interrupts come from its log).
 */
void vm_ft_async(struct kvm_vm *vm, int ft_fd, bool replay);
/*
 * KVM_FT_QUEUE_ASYNC, retried while the queue is full; returns 0 or -errno.
 * (The IRQ and DMA threads do not retry: a full queue drops that input.)
 */
int vm_queue_async(struct kvm_vm *vm, uint32_t type, uint32_t vector, uint64_t gpa,
		   const void *data, uint32_t len);

/*
 * A thread queueing DMA writes of random data (8..max_len <= 256 bytes) at
 * random intervals in [min_us, max_us] into [gpa, gpa + size), at
 * consecutive offsets (wrapping), so that writes close in time never
 * overlap; logged in vm->dma_log. Needs vm_ft_async().
 */
void vm_dma_thread_start(struct kvm_vm *vm, uint64_t gpa, uint32_t size, uint32_t max_len,
			 unsigned int min_us, unsigned int max_us, uint64_t seed);
void vm_dma_thread_stop(struct kvm_vm *vm);

/* The vCPU's RIP (outside KVM_RUN). */
uint64_t vcpu_rip(struct kvm_vm *vm);

/* CPUID the guest gets: KVM_GET_SUPPORTED_CPUID minus the features kvm_ft refuses. */
struct kvm_cpuid2 *vm_safe_cpuid(int kvm_fd, bool unsafe);
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t function, uint32_t index);

/* Test seeds: KVM_FT_SEED from the environment, else time-based; printed. */
uint64_t kt_seed(const char *test_name);
uint64_t kt_rand(uint64_t *state);
/* n bytes of kt_rand(state) output, 8 a draw in memory order (the last draw truncated). */
void kt_fill_random(uint64_t *state, void *p, size_t n);

/* Seconds on the monotonic clock, for durations measured by tests and bench. */
static inline double kt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif
