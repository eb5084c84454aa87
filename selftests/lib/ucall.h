/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Guest -> host messages. The guest fills a struct ucall on its stack and
 * executes `outl %eax, $UCALL_PORT` with eax = the struct's address (guest
 * memory is below 4 GiB and identity-mapped). The host copies the struct out.
 */
#ifndef KVM_FT_SELFTEST_UCALL_H
#define KVM_FT_SELFTEST_UCALL_H

#include <stdint.h>

#define UCALL_PORT	0xe0	/* 4-byte OUT: address of a struct ucall */
#define OUTPUT_PORT	0xe8	/* 1-byte OUT: output bytes */
#define RANDOM_PORT	0xea	/* IN of 1, 2 or 4 bytes: host-random data */

enum {
	UCALL_NONE,
	UCALL_SYNC,		/* args: whatever the test wants */
	UCALL_DONE,		/* the guest function returned */
	UCALL_ASSERT,		/* file, line, expr, a, b */
	UCALL_EXCEPTION,	/* vector, rip, error code */
};

#define UCALL_MAX_ARGS	8

/* Address of the OUT instruction of every ucall but assertion failures. */
extern char ucall_insn[];

struct ucall {
	uint64_t cmd;
	uint64_t nargs;
	uint64_t args[UCALL_MAX_ARGS];
	/* UCALL_ASSERT only; guest pointers (host pointers after vcpu_run). */
	const char *file;
	const char *expr;
	uint64_t line;
};

#endif
