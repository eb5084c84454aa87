// SPDX-License-Identifier: GPL-2.0
/*
 * Guest-side runtime: ucalls, assertions, the IDT entry stubs and the
 * interrupt handler. Built with -mgeneral-regs-only so the handler never
 * touches the SSE registers of the code it interrupts.
 */
#include <stdarg.h>
#include "guest.h"

struct guest_irq_state guest_irq;

GUEST_CODE void guest_ucall(uint64_t cmd, uint64_t nargs, ...)
{
	struct ucall uc = { .cmd = cmd, .nargs = nargs };
	va_list ap;
	uint64_t i;

	va_start(ap, nargs);
	for (i = 0; i < nargs && i < UCALL_MAX_ARGS; i++)
		uc.args[i] = va_arg(ap, uint64_t);
	va_end(ap);
	/* The one OUT of every ucall, at a known address (ucall_insn). */
	__asm__ volatile(".globl ucall_insn\nucall_insn: outl %0, %1"
			 : : "a"((uint32_t)(uintptr_t)&uc), "Nd"((uint16_t)UCALL_PORT) : "memory");
}

GUEST_CODE void guest_assert_fail(const char *file, uint64_t line, const char *expr,
				  uint64_t a, uint64_t b)
{
	struct ucall uc = {
		.cmd = UCALL_ASSERT, .nargs = 2, .args = { a, b },
		.file = file, .expr = expr, .line = line,
	};

	for (;;) {
		outl(UCALL_PORT, (uint32_t)(uintptr_t)&uc);
		hlt();
	}
}

/* Where a guest function returns to (vm_set_entry pushes its address). */
GUEST_CODE void __attribute__((noreturn)) guest_return(void)
{
	for (;;) {
		GUEST_DONE();
		hlt();
	}
}

/* Saved by the common stub, lowest address first. */
struct idt_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error_code;
	uint64_t rip, cs, rflags, rsp, ss;
};

void guest_idt_handler(struct idt_frame *f);
GUEST_CODE void guest_idt_handler(struct idt_frame *f)
{
	if (f->vector < 32) {
		/* An exception is a test bug: report it and stop. */
		for (;;) {
			guest_ucall(UCALL_EXCEPTION, 3, f->vector, f->rip, f->error_code);
			hlt();
		}
	}
	guest_irq.last_vector = f->vector;
	guest_irq.last_rip = f->rip;
	guest_irq.per_vector[f->vector & 255]++;
	guest_irq.hash = (guest_irq.hash ^ f->vector ^ (f->rip << 8)) * 0x9e3779b97f4a7c15ULL;
	if (guest_irq.count < GUEST_IRQ_LOG) {
		guest_irq.rip_log[guest_irq.count] = f->rip;
		guest_irq.vector_log[guest_irq.count] = (uint8_t)f->vector;
	}
	guest_irq.count++;
}

/*
 * 256 entry stubs, 16 bytes apart (guest_idt_stubs + 16 * vector). Vectors
 * that push no error code push a zero so the frame is uniform. The CPU
 * aligns RSP to 16 before pushing its 5-word frame, so after 2 + 15 pushes
 * RSP is 16-byte aligned again for the call. The stubs fill one page
 * exactly and the common part is short and 128-byte aligned, so no
 * instruction here crosses a page (GUEST_CODE in guest.h).
 */
__asm__(
	".text\n"
	".p2align 12\n"
	".globl guest_idt_stubs\n"
	"guest_idt_stubs:\n"
	".set vec, 0\n"
	".rept 256\n"
	"	.p2align 4\n"
	"	.if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)\n"
	"	.else\n"
	"	pushq $0\n"
	"	.endif\n"
	"	pushq $vec\n"
	"	jmp guest_idt_common\n"
	"	.set vec, vec + 1\n"
	".endr\n"
	".p2align 7\n"
	"guest_idt_common:\n"
	"	push %rax; push %rbx; push %rcx; push %rdx; push %rsi; push %rdi; push %rbp\n"
	"	push %r8; push %r9; push %r10; push %r11; push %r12; push %r13; push %r14; push %r15\n"
	"	mov %rsp, %rdi\n"
	"	cld\n"
	"	call guest_idt_handler\n"
	"	pop %r15; pop %r14; pop %r13; pop %r12; pop %r11; pop %r10; pop %r9; pop %r8\n"
	"	pop %rbp; pop %rdi; pop %rsi; pop %rdx; pop %rcx; pop %rbx; pop %rax\n"
	"	add $16, %rsp\n"
	"	iretq\n"
);
