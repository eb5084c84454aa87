// SPDX-License-Identifier: GPL-2.0
/*
 * The test VMM: VM creation, guest memory with the test binary loaded, the
 * 64-bit mode setup and the run loop with its host-side devices.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm_ft.h>
#include "kvm_util.h"
#include "kselftest.h"

extern char guest_idt_stubs[];
void guest_return(void);

void kt_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "# %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	fflush(stderr);
	_exit(KSFT_FAIL);
}

uint64_t kt_rand(uint64_t *s)
{
	/* xorshift64*: fast and good enough for test data. */
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ULL;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

void kt_fill_random(uint64_t *state, void *p, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t r = kt_rand(state);

		memcpy((uint8_t *)p + i, &r, n - i < 8 ? n - i : 8);
	}
}

uint64_t kt_seed(const char *test_name)
{
	const char *env = getenv("KVM_FT_SEED");
	uint64_t seed;

	if (env && *env) {
		seed = strtoull(env, NULL, 0);
	} else {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
		seed %= 1000000000000ULL;
	}
	printf("# %s: seed %llu (re-run with KVM_FT_SEED=%llu)\n", test_name,
	       (unsigned long long)seed, (unsigned long long)seed);
	fflush(stdout);
	return seed;
}

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t function, uint32_t index)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == function &&
		    (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index))
			return e;
	}
	return NULL;
}

struct kvm_cpuid2 *vm_safe_cpuid(int kvm_fd, bool unsafe)
{
	struct kvm_cpuid2 *c;
	struct kvm_cpuid_entry2 *e;
	int nent = 256;

	for (;;) {
		c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
		KT_ASSERT(c, "calloc");
		c->nent = nent;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			break;
		KT_ASSERT(errno == E2BIG, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		free(c);
		nent *= 2;
	}
	if (unsafe)
		return c;

	/* What kvm_ft cannot make deterministic on this host (uapi header). */
	if ((e = cpuid_find(c, 1, 0)))
		e->ecx &= ~(1U << 30);		/* RDRAND */
	if ((e = cpuid_find(c, 7, 0))) {
		e->ebx &= ~(1U << 18);		/* RDSEED */
		e->ecx &= ~(1U << 22);		/* RDPID */
	}
	if ((e = cpuid_find(c, 0x80000001, 0)))
		e->edx &= ~(1U << 27);		/* RDTSCP */
	/* No KVM paravirtual leaves at all: no kvmclock, steal time, async PF, PV EOI. */
	for (uint32_t i = 0; i < c->nent; ) {
		if ((c->entries[i].function & 0xffff0000) == 0x40000000) {
			memmove(&c->entries[i], &c->entries[i + 1],
				(c->nent - i - 1) * sizeof(c->entries[0]));
			c->nent--;
		} else {
			i++;
		}
	}
	return c;
}

void *vm_gpa2hva(struct kvm_vm *vm, uint64_t gpa, uint64_t len)
{
	if (gpa >= vm->mem_size || len > vm->mem_size - gpa)
		return NULL;
	return vm->mem + gpa;
}

void vm_write(struct kvm_vm *vm, const void *guest_addr, const void *src, size_t len)
{
	void *p = vm_gpa2hva(vm, (uint64_t)(uintptr_t)guest_addr, len);

	KT_ASSERT(p, "vm_write: %p+%zu outside guest RAM", guest_addr, len);
	memcpy(p, src, len);
}

void vm_read(struct kvm_vm *vm, const void *guest_addr, void *dst, size_t len)
{
	void *p = vm_gpa2hva(vm, (uint64_t)(uintptr_t)guest_addr, len);

	KT_ASSERT(p, "vm_read: %p+%zu outside guest RAM", guest_addr, len);
	memcpy(dst, p, len);
}

uint64_t vm_alloc(struct kvm_vm *vm, uint64_t size)
{
	uint64_t gpa = (vm->scratch_next + 63) & ~63ULL;

	KT_ASSERT(gpa + size <= VM_SCRATCH_END, "vm_alloc: scratch area full");
	vm->scratch_next = gpa + size;
	memset(vm->mem + gpa, 0, size);
	return gpa;
}

void vm_seed(struct kvm_vm *vm, uint64_t seed)
{
	vm->rng = seed ? seed : 1;
}

/* Load the test binary's own PT_LOAD segments at their link addresses. */
static void load_self(struct kvm_vm *vm)
{
	Elf64_Ehdr eh;
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);

	KT_ASSERT(fd >= 0, "open /proc/self/exe: %s", strerror(errno));
	KT_ASSERT(pread(fd, &eh, sizeof(eh), 0) == sizeof(eh), "read ELF header");
	KT_ASSERT(!memcmp(eh.e_ident, ELFMAG, SELFMAG) && eh.e_type == ET_EXEC,
		  "the test binary must be a static non-PIE ELF executable");
	for (int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		KT_ASSERT(pread(fd, &ph, sizeof(ph), eh.e_phoff + i * eh.e_phentsize) == sizeof(ph),
			  "read program header");
		if (ph.p_type != PT_LOAD)
			continue;
		KT_ASSERT(ph.p_vaddr >= VM_SCRATCH_END && ph.p_vaddr + ph.p_memsz <= vm->mem_size,
			  "segment %#llx+%#llx does not fit guest RAM",
			  (unsigned long long)ph.p_vaddr, (unsigned long long)ph.p_memsz);
		KT_ASSERT(pread(fd, vm->mem + ph.p_vaddr, ph.p_filesz, ph.p_offset) ==
			  (ssize_t)ph.p_filesz, "read segment");
		memset(vm->mem + ph.p_vaddr + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
	}
	close(fd);
}

static void setup_tables(struct kvm_vm *vm)
{
	uint64_t *gdt = (uint64_t *)(vm->mem + VM_GDT_GPA);
	uint64_t *idt = (uint64_t *)(vm->mem + VM_IDT_GPA);
	uint64_t *pml4 = (uint64_t *)(vm->mem + VM_PT_GPA);
	uint64_t *pdpt = pml4 + 512;
	uint64_t *pd = pdpt + 512;

	gdt[0] = 0;
	gdt[1] = 0x00af9b000000ffffULL;	/* 0x08: 64-bit code, DPL 0, accessed */
	gdt[2] = 0x00cf93000000ffffULL;	/* 0x10: data, 4 GiB, accessed */
	/* 0x18: 64-bit TSS (busy), 16 bytes. */
	gdt[3] = 0x67 | ((VM_TSS_GPA & 0xffffff) << 16) | (0x8bULL << 40) |
		 (((VM_TSS_GPA >> 24) & 0xff) << 56);
	gdt[4] = VM_TSS_GPA >> 32;

	/* 64-bit interrupt gates, present, DPL 0, to the stubs. */
	for (int v = 0; v < 256; v++) {
		uint64_t h = (uint64_t)(uintptr_t)guest_idt_stubs + 16 * v;

		idt[2 * v] = (h & 0xffff) | ((uint64_t)VM_SEL_CODE << 16) |
			     (0x8eULL << 40) | (((h >> 16) & 0xffff) << 48);
		idt[2 * v + 1] = h >> 32;
	}

	/* Identity map of the low 4 GiB with 2 MiB pages. */
	pml4[0] = (VM_PT_GPA + 0x1000) | 3;
	for (int i = 0; i < 4; i++)
		pdpt[i] = (VM_PT_GPA + 0x2000 + i * 0x1000) | 3;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i << 21) | 0x83;	/* present, writable, 2 MiB */
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->g = 1;
	s->l = code;
	s->db = !code;
}

void vm_set_entry(struct kvm_vm *vm, void (*guest_fn)(void *), void *arg)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	uint64_t rsp = VM_STACK_TOP - 8;

	KT_ASSERT(!ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sregs), "KVM_GET_SREGS: %s", strerror(errno));
	seg(&sregs.cs, VM_SEL_CODE, 11, true);
	seg(&sregs.ds, VM_SEL_DATA, 3, false);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.selector = VM_SEL_TSS;
	sregs.tr.base = VM_TSS_GPA;
	sregs.tr.limit = 0x67;
	sregs.tr.type = 11;
	sregs.tr.present = 1;
	memset(&sregs.ldt, 0, sizeof(sregs.ldt));
	sregs.ldt.type = 2;
	sregs.ldt.unusable = 1;
	sregs.gdt.base = VM_GDT_GPA;
	sregs.gdt.limit = 5 * 8 - 1;
	sregs.idt.base = VM_IDT_GPA;
	sregs.idt.limit = 256 * 16 - 1;
	sregs.cr0 = 0x80050033;		/* PG WP NE ET MP PE */
	sregs.cr3 = VM_PT_GPA;
	sregs.cr4 = 0x620;		/* OSXMMEXCPT OSFXSR PAE */
	sregs.efer = 0x500;		/* LMA LME */
	KT_ASSERT(!ioctl(vm->vcpu_fd, KVM_SET_SREGS, &sregs), "KVM_SET_SREGS: %s", strerror(errno));

	/* A call frame as if guest_return had called guest_fn. */
	*(uint64_t *)(vm->mem + rsp) = (uint64_t)(uintptr_t)guest_return;
	memset(&regs, 0, sizeof(regs));
	regs.rip = (uint64_t)(uintptr_t)guest_fn;
	regs.rsp = rsp;
	regs.rdi = (uint64_t)(uintptr_t)arg;
	regs.rflags = 2;
	KT_ASSERT(!ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs), "KVM_SET_REGS: %s", strerror(errno));
}

static __thread struct kvm_run *kick_run;

static void kick_handler(int sig)
{
	(void)sig;
	/* KVM_RUN returns -EINTR at once, also if the signal came before it. */
	if (kick_run)
		kick_run->immediate_exit = 1;
}

static int create_vcpu(struct kvm_vm *vm, int id, const struct vm_opts *opts)
{
	struct kvm_cpuid2 *cpuid;
	int fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, id);

	KT_ASSERT(fd >= 0, "KVM_CREATE_VCPU: %s", strerror(errno));
	cpuid = vm_safe_cpuid(vm->kvm_fd, opts->unsafe_cpuid);
	KT_ASSERT(!ioctl(fd, KVM_SET_CPUID2, cpuid), "KVM_SET_CPUID2: %s", strerror(errno));
	free(cpuid);
	return fd;
}

struct kvm_vm *vm_create(const struct vm_opts *opts_in, void (*guest_fn)(void *), void *arg)
{
	struct vm_opts opts = opts_in ? *opts_in : (struct vm_opts){ 0 };
	struct kvm_userspace_memory_region region;
	struct kvm_vm *vm = calloc(1, sizeof(*vm));
	struct sigaction sa = { .sa_handler = kick_handler };

	KT_ASSERT(vm, "calloc");
	vm->mem_size = opts.mem_size ? opts.mem_size : VM_MEM_SIZE_DEFAULT;
	vm->log_io = opts.log_io;
	vm->rng = 1;
	vm->vcpu_fd = -1;
	for (int i = 0; i < 4; i++)
		vm->extra_vcpu_fd[i] = -1;
	vm->scratch_next = VM_SCRATCH_GPA;
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	KT_ASSERT(vm->kvm_fd >= 0, "open /dev/kvm: %s", strerror(errno));
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	KT_ASSERT(vm->vm_fd >= 0, "KVM_CREATE_VM: %s", strerror(errno));

	vm->mem = mmap(NULL, vm->mem_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	KT_ASSERT(vm->mem != MAP_FAILED, "mmap guest memory: %s", strerror(errno));
	region = (struct kvm_userspace_memory_region){
		.slot = 0, .guest_phys_addr = 0, .memory_size = vm->mem_size,
		.userspace_addr = (uint64_t)(uintptr_t)vm->mem,
	};
	KT_ASSERT(!ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region),
		  "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
	load_self(vm);
	setup_tables(vm);

	if (opts.no_vcpu)
		return vm;

	vm->vcpu_fd = create_vcpu(vm, 0, &opts);
	KT_ASSERT(opts.extra_vcpus <= 4, "at most 4 extra vCPUs");
	for (unsigned int i = 0; i < opts.extra_vcpus; i++)
		vm->extra_vcpu_fd[i] = create_vcpu(vm, i + 1, &opts);
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu_fd, 0);
	KT_ASSERT(vm->run != MAP_FAILED, "mmap kvm_run: %s", strerror(errno));
	KT_ASSERT(!sigaction(SIGUSR1, &sa, NULL), "sigaction");
	if (guest_fn)
		vm_set_entry(vm, guest_fn, arg);
	return vm;
}

void vm_free(struct kvm_vm *vm)
{
	if (!vm)
		return;
	if (vm->irq_thread_running)
		vm_irq_thread_stop(vm);
	vm_dma_thread_stop(vm);
	if (vm->run)
		munmap(vm->run, vm->run_size);
	if (vm->vcpu_fd >= 0)
		close(vm->vcpu_fd);
	for (int i = 0; i < 4; i++)
		if (vm->extra_vcpu_fd[i] >= 0)
			close(vm->extra_vcpu_fd[i]);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	close(vm->kvm_fd);
	munmap(vm->mem, vm->mem_size);
	free(vm->io_log);
	free(vm->irq_log);
	free(vm->dma_log);
	free(vm->output);
	free(vm);
}

static void log_io(struct kvm_vm *vm, uint32_t kind, uint64_t addr, uint32_t size, const void *data)
{
	struct io_event *e;

	if (!vm->log_io)
		return;
	if (vm->io_count == vm->io_cap) {
		vm->io_cap = vm->io_cap ? 2 * vm->io_cap : 256;
		vm->io_log = realloc(vm->io_log, vm->io_cap * sizeof(*vm->io_log));
		KT_ASSERT(vm->io_log, "realloc");
	}
	e = &vm->io_log[vm->io_count++];
	*e = (struct io_event){ .kind = kind, .size = size, .addr = addr };
	memcpy(&e->data, data, size > 8 ? 8 : size);
}

static void output_byte(struct kvm_vm *vm, char c)
{
	if (vm->output_len + 2 > vm->output_cap) {
		vm->output_cap = vm->output_cap ? 2 * vm->output_cap : 256;
		vm->output = realloc(vm->output, vm->output_cap);
		KT_ASSERT(vm->output, "realloc");
	}
	vm->output[vm->output_len++] = c;
	vm->output[vm->output_len] = 0;
}

/* Returns true when the exit was a ucall (copied to *uc). */
static bool handle_io(struct kvm_vm *vm, struct ucall *uc)
{
	struct kvm_run *run = vm->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	uint32_t size = run->io.size;

	if (run->io.port == UCALL_PORT && run->io.direction == KVM_EXIT_IO_OUT &&
	    size == 4 && run->io.count == 1) {
		uint32_t gpa;
		struct ucall *g;

		memcpy(&gpa, data, 4);
		log_io(vm, IO_PIO_OUT, run->io.port, size, data);
		g = vm_gpa2hva(vm, gpa, sizeof(*g));
		KT_ASSERT(g, "ucall at bad address %#x", gpa);
		*uc = *g;
		if (uc->cmd == UCALL_ASSERT) {
			uc->file = vm_gpa2hva(vm, (uintptr_t)uc->file, 1);
			uc->expr = vm_gpa2hva(vm, (uintptr_t)uc->expr, 1);
			if (!uc->file)
				uc->file = "?";
			if (!uc->expr)
				uc->expr = "?";
		}
		return true;
	}
	for (uint32_t i = 0; i < run->io.count; i++, data += size) {
		if (run->io.port == OUTPUT_PORT && run->io.direction == KVM_EXIT_IO_OUT) {
			for (uint32_t j = 0; j < size; j++)
				output_byte(vm, (char)data[j]);
			log_io(vm, IO_PIO_OUT, run->io.port, size, data);
		} else if (run->io.port == RANDOM_PORT && run->io.direction == KVM_EXIT_IO_IN) {
			kt_fill_random(&vm->rng, data, size);
			log_io(vm, IO_PIO_IN, run->io.port, size, data);
		} else {
			KT_FAIL("unexpected PIO %s port %#x size %u",
				run->io.direction == KVM_EXIT_IO_IN ? "IN" : "OUT",
				run->io.port, size);
		}
	}
	return false;
}

static void handle_mmio(struct kvm_vm *vm)
{
	struct kvm_run *run = vm->run;
	uint64_t gpa = run->mmio.phys_addr;

	KT_ASSERT(gpa >= VM_MMIO_BASE && gpa + run->mmio.len <= VM_MMIO_BASE + VM_MMIO_SIZE,
		  "guest accessed unbacked gpa %#llx outside the MMIO region",
		  (unsigned long long)gpa);
	if (run->mmio.is_write) {
		log_io(vm, IO_MMIO_WRITE, gpa, run->mmio.len, run->mmio.data);
	} else {
		memset(run->mmio.data, 0, sizeof(run->mmio.data));
		kt_fill_random(&vm->rng, run->mmio.data, run->mmio.len);
		log_io(vm, IO_MMIO_READ, gpa, run->mmio.len, run->mmio.data);
	}
}

/* One KVM_FT_QUEUE_ASYNC: 0 or -errno (-EAGAIN: the queue is full). */
static int queue_async_once(struct kvm_vm *vm, uint32_t type, uint32_t vector, uint64_t gpa,
			    const void *data, uint32_t len)
{
	struct kvm_ft_async a = {
		.type = type, .vector = vector, .gpa = gpa,
		.data = (uint64_t)(uintptr_t)data, .len = len,
	};

	if (ioctl(vm->ft_fd, KVM_FT_QUEUE_ASYNC, &a)) {
		if (errno == EAGAIN)
			__atomic_add_fetch(&vm->async_eagain, 1, __ATOMIC_RELAXED);
		return -errno;
	}
	if (type == KVM_FT_ASYNC_IRQ)
		__atomic_add_fetch(&vm->irqs_queued, 1, __ATOMIC_RELEASE);
	return 0;
}

int vm_queue_async(struct kvm_vm *vm, uint32_t type, uint32_t vector, uint64_t gpa,
		   const void *data, uint32_t len)
{
	int r;

	/* Full: the vCPU drains it at its next landmarks. */
	for (int i = 0; (r = queue_async_once(vm, type, vector, gpa, data, len)) == -EAGAIN; i++) {
		KT_ASSERT(i < 200000, "KVM_FT_QUEUE_ASYNC full for 20 s");
		usleep(100);
	}
	return r;
}

void vm_ft_async(struct kvm_vm *vm, int ft_fd, bool replay)
{
	vm->ft_fd = ft_fd;
	vm->ft_replay = replay;
}

/*
 * A halted guest with kvm_ft inputs: the module delivers the next queued
 * interrupt at the HLT's landmark, so wait until one is queued (replay:
 * the log has it; re-enter at once).
 */
static void wait_async_irq(struct kvm_vm *vm)
{
	uint64_t seen = __atomic_load_n(&vm->irqs_queued, __ATOMIC_ACQUIRE);

	if (vm->ft_replay)
		return;
	if (vm->irq_on_halt) {
		KT_ASSERT(!vm_queue_async(vm, KVM_FT_ASYNC_IRQ, vm->irq_on_halt, 0, NULL, 0),
			  "KVM_FT_QUEUE_ASYNC: %s", strerror(errno));
		return;
	}
	while (__atomic_load_n(&vm->irqs_queued, __ATOMIC_ACQUIRE) == seen) {
		KT_ASSERT(vm->irq_thread_running,
			  "guest halted at rip %#llx with no interrupt to come",
			  (unsigned long long)vcpu_rip(vm));
		usleep(50);
	}
}

static void inject_pending(struct kvm_vm *vm)
{
	struct kvm_run *run = vm->run;
	int vector = __atomic_load_n(&vm->irq_pending, __ATOMIC_ACQUIRE);

	if (vector && run->ready_for_interrupt_injection && run->if_flag) {
		struct kvm_interrupt irq = { .irq = (uint32_t)vector };

		KT_ASSERT(!ioctl(vm->vcpu_fd, KVM_INTERRUPT, &irq), "KVM_INTERRUPT: %s",
			  strerror(errno));
		__atomic_store_n(&vm->irq_pending, 0, __ATOMIC_RELEASE);
		vm->irqs_injected++;
		if (vm->irq_log_count == vm->irq_log_cap) {
			vm->irq_log_cap = vm->irq_log_cap ? 2 * vm->irq_log_cap : 64;
			vm->irq_log = realloc(vm->irq_log, vm->irq_log_cap * sizeof(*vm->irq_log));
			KT_ASSERT(vm->irq_log, "realloc");
		}
		vm->irq_log[vm->irq_log_count++] = (uint32_t)vector;
		vector = 0;
	}
	/* Ask for an exit as soon as the guest can take the interrupt. */
	run->request_interrupt_window = vector ? 1 : 0;
}

void vcpu_thread_bind(struct kvm_vm *vm)
{
	vm->vcpu_thread = pthread_self();
	kick_run = vm->run;
}

void vm_kick(struct kvm_vm *vm)
{
	pthread_kill(vm->vcpu_thread, SIGUSR1);
}

int64_t vcpu_run_raw(struct kvm_vm *vm, struct ucall *uc)
{
	struct kvm_run *run = vm->run;

	vcpu_thread_bind(vm);
	for (;;) {
		inject_pending(vm);
		if (ioctl(vm->vcpu_fd, KVM_RUN, 0) < 0) {
			int e = errno;

			run->immediate_exit = 0;
			if (e == EINTR || e == EAGAIN)
				continue;
			return -e;
		}
		vm->exits++;
		if (vm->exit_hook)
			vm->exit_hook(vm);
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			if (handle_io(vm, uc))
				return (int64_t)uc->cmd;
			break;
		case KVM_EXIT_MMIO:
			handle_mmio(vm);
			break;
		case KVM_EXIT_IRQ_WINDOW_OPEN:
		case KVM_EXIT_INTR:
			break;
		case KVM_EXIT_HLT:
			vm->halts++;
			if (vm->ft_fd) {
				wait_async_irq(vm);
				break;
			}
			if (vm->irq_on_halt && !vm->irq_pending)
				vm_queue_irq(vm, vm->irq_on_halt);
			/* Wait for something to wake the guest up. */
			while (!__atomic_load_n(&vm->irq_pending, __ATOMIC_ACQUIRE)) {
				KT_ASSERT(vm->irq_thread_running,
					  "guest halted at rip %#llx with no interrupt to come",
					  (unsigned long long)vcpu_rip(vm));
				usleep(50);
			}
			break;
		default:
			KT_FAIL("unexpected exit reason %u", run->exit_reason);
		}
	}
}

uint64_t vcpu_rip(struct kvm_vm *vm)
{
	struct kvm_regs regs;

	if (ioctl(vm->vcpu_fd, KVM_GET_REGS, &regs))
		return ~0ULL;
	return regs.rip;
}

uint64_t vcpu_run(struct kvm_vm *vm, struct ucall *uc)
{
	int64_t r = vcpu_run_raw(vm, uc);

	KT_ASSERT(r >= 0, "KVM_RUN: %s", strerror((int)-r));
	if (r == UCALL_ASSERT)
		KT_FAIL("guest assertion failed at %s:%llu: %s (%#llx vs %#llx)", uc->file,
			(unsigned long long)uc->line, uc->expr,
			(unsigned long long)uc->args[0], (unsigned long long)uc->args[1]);
	if (r == UCALL_EXCEPTION)
		KT_FAIL("guest exception %llu at rip %#llx, error code %#llx",
			(unsigned long long)uc->args[0], (unsigned long long)uc->args[1],
			(unsigned long long)uc->args[2]);
	return (uint64_t)r;
}

void vcpu_run_expect(struct kvm_vm *vm, uint64_t cmd, struct ucall *uc)
{
	struct ucall tmp;
	uint64_t r = vcpu_run(vm, uc ? uc : &tmp);

	KT_ASSERT(r == cmd, "guest made ucall %llu, expected %llu",
		  (unsigned long long)r, (unsigned long long)cmd);
}

void vm_queue_irq(struct kvm_vm *vm, uint32_t vector)
{
	KT_ASSERT(vector >= 32 && vector < 256, "bad vector %u", vector);
	__atomic_store_n(&vm->irq_pending, (int)vector, __ATOMIC_RELEASE);
}

static void *irq_thread_fn(void *p)
{
	struct kvm_vm *vm = p;

	while (!__atomic_load_n(&vm->irq_thread_stop, __ATOMIC_ACQUIRE)) {
		unsigned int span = vm->irq_max_us - vm->irq_min_us + 1;

		usleep(vm->irq_min_us + (unsigned int)(kt_rand(&vm->irq_rng) % span));
		if (vm->ft_fd) {
			/* kvm_ft queues it and picks the landmark: no kick. A full
			 * queue (the guest does not exit, or stopped) drops it. */
			int r = queue_async_once(vm, KVM_FT_ASYNC_IRQ, vm->irq_vector, 0, NULL, 0);

			KT_ASSERT(!r || r == -EAGAIN, "KVM_FT_QUEUE_ASYNC: %s", strerror(-r));
			vm->irqs_requested++;
			continue;
		}
		/* One pending interrupt at a time, like a level-triggered line. */
		if (__atomic_load_n(&vm->irq_pending, __ATOMIC_ACQUIRE))
			continue;
		__atomic_store_n(&vm->irq_pending, (int)vm->irq_vector, __ATOMIC_RELEASE);
		vm->irqs_requested++;
		pthread_kill(vm->vcpu_thread, SIGUSR1);
	}
	return NULL;
}

void vm_irq_thread_start(struct kvm_vm *vm, uint32_t vector,
			 unsigned int min_us, unsigned int max_us, uint64_t seed)
{
	KT_ASSERT(!vm->irq_thread_running && min_us <= max_us && vector >= 32 && vector < 256,
		  "vm_irq_thread_start: bad arguments");
	vm->vcpu_thread = pthread_self();
	vm->irq_vector = vector;
	vm->irq_min_us = min_us;
	vm->irq_max_us = max_us;
	vm->irq_rng = seed ? seed : 1;
	vm->irq_thread_stop = false;
	KT_ASSERT(!pthread_create(&vm->irq_thread, NULL, irq_thread_fn, vm), "pthread_create");
	vm->irq_thread_running = true;
}

static void *dma_thread_fn(void *p)
{
	struct kvm_vm *vm = p;

	while (!__atomic_load_n(&vm->dma_thread_stop, __ATOMIC_ACQUIRE)) {
		unsigned int span = vm->dma_max_us - vm->dma_min_us + 1;
		struct dma_event *d;
		int r;

		usleep(vm->dma_min_us + (unsigned int)(kt_rand(&vm->dma_rng) % span));
		if (vm->dma_count == vm->dma_cap) {
			vm->dma_cap = vm->dma_cap ? 2 * vm->dma_cap : 256;
			vm->dma_log = realloc(vm->dma_log, vm->dma_cap * sizeof(*vm->dma_log));
			KT_ASSERT(vm->dma_log, "realloc");
		}
		d = &vm->dma_log[vm->dma_count];
		d->len = 8 + (uint32_t)(kt_rand(&vm->dma_rng) % (vm->dma_max_len - 7));
		if (vm->dma_next + d->len > vm->dma_size)
			vm->dma_next = 0;
		d->gpa = vm->dma_gpa + vm->dma_next;
		vm->dma_next += d->len;
		for (uint32_t i = 0; i < d->len; i++)
			d->data[i] = (uint8_t)kt_rand(&vm->dma_rng);
		r = queue_async_once(vm, KVM_FT_ASYNC_DMA, 0, d->gpa, d->data, d->len);
		KT_ASSERT(!r || r == -EAGAIN, "KVM_FT_QUEUE_ASYNC DMA: %s", strerror(-r));
		if (r) {	/* full: not logged, the offset is reused */
			vm->dma_next -= d->len;
			continue;
		}
		__atomic_store_n(&vm->dma_count, vm->dma_count + 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

void vm_dma_thread_start(struct kvm_vm *vm, uint64_t gpa, uint32_t size, uint32_t max_len,
			 unsigned int min_us, unsigned int max_us, uint64_t seed)
{
	KT_ASSERT(vm->ft_fd && !vm->dma_thread_running && min_us <= max_us &&
		  max_len >= 8 && max_len <= sizeof(vm->dma_log[0].data) && max_len <= size,
		  "vm_dma_thread_start: bad arguments");
	vm->dma_gpa = gpa;
	vm->dma_size = size;
	vm->dma_max_len = max_len;
	vm->dma_next = 0;
	vm->dma_min_us = min_us;
	vm->dma_max_us = max_us;
	vm->dma_rng = seed ? seed : 1;
	vm->dma_thread_stop = false;
	KT_ASSERT(!pthread_create(&vm->dma_thread, NULL, dma_thread_fn, vm), "pthread_create");
	vm->dma_thread_running = true;
}

void vm_dma_thread_stop(struct kvm_vm *vm)
{
	if (!vm->dma_thread_running)
		return;
	__atomic_store_n(&vm->dma_thread_stop, true, __ATOMIC_RELEASE);
	pthread_join(vm->dma_thread, NULL);
	vm->dma_thread_running = false;
}

void vm_irq_thread_stop(struct kvm_vm *vm)
{
	if (!vm->irq_thread_running)
		return;
	__atomic_store_n(&vm->irq_thread_stop, true, __ATOMIC_RELEASE);
	pthread_join(vm->irq_thread, NULL);
	vm->irq_thread_running = false;
}
