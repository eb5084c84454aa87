// SPDX-License-Identifier: GPL-2.0
/*
 * Tests of the test VMM itself (no kvm_ft): they prove that a guest C
 * function runs in long mode and that every device and message path the
 * kvm_ft tests rely on carries exactly the values the other side produced.
 */
#include <string.h>

#include "kselftest_harness.h"
#include "kvm_util.h"
#include "guest.h"

#define MSR_IA32_TSC 0x10

static void guest_devices(void *arg)
{
	uint32_t r[4];
	uint64_t t1, t2, m, b, l;

	GUEST_ASSERT_EQ((uint64_t)(uintptr_t)arg, 0x1234);
	guest_puts("hello");
	b = inb(RANDOM_PORT);
	l = inl(RANDOM_PORT);
	GUEST_SYNC(b, l);
	m = mmio_read64(VM_MMIO_BASE + 0x10);
	mmio_write32(VM_MMIO_BASE + 0x20, 0xdeadbeef);
	GUEST_SYNC(m, mmio_read32(VM_MMIO_BASE + 0x30));
	t1 = rdtsc();
	t2 = rdmsr(MSR_IA32_TSC);
	GUEST_SYNC(t1, t2);
	cpuid(0, 0, r);
	GUEST_SYNC(r[0], r[1], r[2], r[3]);
	cpuid(1, 0, r);
	GUEST_SYNC(r[2]);
	cpuid(7, 0, r);
	GUEST_SYNC(r[1], r[2]);
	cpuid(0x40000000, 0, r);
	GUEST_SYNC(r[1], r[2], r[3]);
}

/* Every device returns or receives exactly what the other side logged. */
TEST(devices)
{
	struct vm_opts o = { .log_io = true };
	struct kvm_vm *vm = vm_create(&o, guest_devices, (void *)0x1234);
	struct ucall uc;
	struct io_event *e;

	vm_seed(vm, 42);
	vcpu_run_expect(vm, UCALL_SYNC, &uc);
	ASSERT_STREQ("hello", vm->output);
	ASSERT_EQ(8, vm->io_count);	/* 5 output bytes, 2 IN, the ucall */
	ASSERT_EQ(UCALL_PORT, vm->io_log[7].addr);
	e = &vm->io_log[5];
	ASSERT_EQ(IO_PIO_IN, e->kind);
	ASSERT_EQ(1, e->size);
	ASSERT_EQ(RANDOM_PORT, e->addr);
	ASSERT_EQ(e->data & 0xff, uc.args[0]);
	e = &vm->io_log[6];
	ASSERT_EQ(4, e->size);
	ASSERT_EQ(e->data & 0xffffffff, uc.args[1]);

	vcpu_run_expect(vm, UCALL_SYNC, &uc);
	ASSERT_EQ(12, vm->io_count);
	e = &vm->io_log[8];
	ASSERT_EQ(IO_MMIO_READ, e->kind);
	ASSERT_EQ(VM_MMIO_BASE + 0x10, e->addr);
	ASSERT_EQ(8, e->size);
	ASSERT_EQ(e->data, uc.args[0]);
	e = &vm->io_log[9];
	ASSERT_EQ(IO_MMIO_WRITE, e->kind);
	ASSERT_EQ(VM_MMIO_BASE + 0x20, e->addr);
	ASSERT_EQ(4, e->size);
	ASSERT_EQ(0xdeadbeef, e->data & 0xffffffff);
	e = &vm->io_log[10];
	ASSERT_EQ(IO_MMIO_READ, e->kind);
	ASSERT_EQ(e->data & 0xffffffff, uc.args[1]);

	vcpu_run_expect(vm, UCALL_SYNC, &uc);
	ASSERT_NE(0, uc.args[0]);
	ASSERT_GE(uc.args[1], uc.args[0]);	/* the TSC MSR reads the same counter, later */

	vcpu_run_expect(vm, UCALL_SYNC, &uc);
	{
		struct kvm_cpuid2 *c = vm_safe_cpuid(vm->kvm_fd, false);
		struct kvm_cpuid_entry2 *c0 = cpuid_find(c, 0, 0);

		ASSERT_NE(NULL, c0);
		ASSERT_EQ(c0->eax, uc.args[0]);
		ASSERT_EQ(c0->ebx, uc.args[1]);
		ASSERT_EQ(c0->ecx, uc.args[2]);
		ASSERT_EQ(c0->edx, uc.args[3]);
		free(c);
	}
	vcpu_run_expect(vm, UCALL_SYNC, &uc);
	ASSERT_EQ(0, uc.args[0] & (1U << 30));		/* RDRAND hidden */
	vcpu_run_expect(vm, UCALL_SYNC, &uc);
	ASSERT_EQ(0, uc.args[0] & (1U << 18));		/* RDSEED hidden */
	ASSERT_EQ(0, uc.args[1] & (1U << 22));		/* RDPID hidden */
	vcpu_run_expect(vm, UCALL_SYNC, &uc);
	/* No "KVMKVMKVM" signature: the PV leaves are gone. */
	ASSERT_NE(0x4b4d564b, uc.args[0]);
	vcpu_run_expect(vm, UCALL_DONE, &uc);
	vm_free(vm);
}

static const uint64_t assert_line = __LINE__ + 5;

static void guest_assert(void *arg)
{
	(void)arg;
	GUEST_ASSERT_EQ(1, 2);
}

/* A failed guest assertion reaches the host with its file, line and values. */
TEST(guest_assert_reported)
{
	struct kvm_vm *vm = vm_create(NULL, guest_assert, NULL);
	struct ucall uc;

	ASSERT_EQ(UCALL_ASSERT, vcpu_run_raw(vm, &uc));
	ASSERT_NE(NULL, strstr(uc.file, "vmm.c"));
	ASSERT_EQ(assert_line, uc.line);
	ASSERT_STREQ("1 == 2", uc.expr);
	ASSERT_EQ(1, uc.args[0]);
	ASSERT_EQ(2, uc.args[1]);
	vm_free(vm);
}

static void guest_ud2(void *arg)
{
	(void)arg;
	__asm__ volatile("ud2_here: ud2");
}

/* An exception runs the IDT stub and reports vector and faulting RIP. */
TEST(exception_reported)
{
	extern char ud2_here[];
	struct kvm_vm *vm = vm_create(NULL, guest_ud2, NULL);
	struct ucall uc;

	ASSERT_EQ(UCALL_EXCEPTION, vcpu_run_raw(vm, &uc));
	ASSERT_EQ(6, uc.args[0]);				/* #UD */
	ASSERT_EQ((uint64_t)(uintptr_t)ud2_here, uc.args[1]);
	vm_free(vm);
}

static void guest_halt_irq(void *arg)
{
	(void)arg;
	__asm__ volatile("sti; hlt_here: hlt; after_hlt:" : : : "memory");
	cli();
	GUEST_SYNC(guest_irq.count, guest_irq.last_vector, guest_irq.last_rip);
}

/* An interrupt the host queues at the HLT exit wakes the guest right after its HLT. */
TEST(halt_then_interrupt)
{
	extern char after_hlt[];
	struct kvm_vm *vm = vm_create(NULL, guest_halt_irq, NULL);
	struct ucall uc;

	vm->irq_on_halt = 0x31;
	vcpu_run_expect(vm, UCALL_SYNC, &uc);
	ASSERT_EQ(1, vm->halts);
	ASSERT_EQ(1, vm->irqs_injected);
	ASSERT_EQ(1, uc.args[0]);
	ASSERT_EQ(0x31, uc.args[1]);
	ASSERT_EQ((uint64_t)(uintptr_t)after_hlt, uc.args[2]);
	vcpu_run_expect(vm, UCALL_DONE, &uc);
	vm_free(vm);
}

static void guest_busy_irq(void *arg)
{
	uint64_t n = (uint64_t)(uintptr_t)arg, sum = 0;

	sti();
	for (uint64_t i = 0; i < n; i++)
		sum += inb(RANDOM_PORT);
	cli();
	GUEST_SYNC(guest_irq.count, guest_irq.per_vector[0x40], sum);
}

/* Interrupts at random times all arrive, each exactly once. */
TEST(random_interrupts)
{
	uint64_t seed = kt_seed("random_interrupts");
	struct vm_opts o = { .log_io = true };
	struct kvm_vm *vm = vm_create(&o, guest_busy_irq, (void *)20000);
	struct ucall uc;
	uint64_t sum = 0;

	vm_seed(vm, seed);
	vm_irq_thread_start(vm, 0x40, 100, 2000, seed);
	vcpu_run_expect(vm, UCALL_SYNC, &uc);
	vm_irq_thread_stop(vm);
	/* A request still pending when the guest closed IF is not delivered. */
	ASSERT_EQ(vm->irqs_injected, uc.args[0]);
	ASSERT_EQ(vm->irqs_injected, uc.args[1]);
	ASSERT_GE(vm->irqs_requested, vm->irqs_injected);
	ASSERT_LE(vm->irqs_requested, vm->irqs_injected + 1);
	ASSERT_GT(vm->irqs_injected, 0);
	for (size_t i = 0; i < vm->io_count; i++)
		if (vm->io_log[i].kind == IO_PIO_IN)
			sum += vm->io_log[i].data & 0xff;
	ASSERT_EQ(20001, vm->io_count);	/* the INs and the ucall */
	ASSERT_EQ(sum, uc.args[2]);
	TH_LOG("%llu interrupts delivered", (unsigned long long)vm->irqs_injected);
	vcpu_run_expect(vm, UCALL_DONE, &uc);
	vm_free(vm);
}

TEST_HARNESS_MAIN
