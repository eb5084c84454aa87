/* SPDX-License-Identifier: GPL-2.0 */
/* Minimal TAP output for the host tests (kselftest conventions: skip = 4). */
#ifndef FTD_TAP_H
#define FTD_TAP_H

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>

static int tap_n, tap_fail;

#define ok(cond, ...) do {						\
	int _c = !!(cond);						\
	tap_n++;							\
	if (!_c) tap_fail++;						\
	printf("%sok %d - ", _c ? "" : "not ", tap_n);			\
	printf(__VA_ARGS__);						\
	printf("\n");							\
	if (!_c) printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
	fflush(stdout);							\
} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n# %d passed, %d failed\n", tap_n, tap_n - tap_fail, tap_fail);
	return tap_fail ? 1 : 0;
}

/* Seed from FT_SEED or the clock; always printed so a run can be repeated. */
static inline uint64_t tap_seed(void)
{
	const char *s = getenv("FT_SEED");
	uint64_t seed;

	if (s)
		seed = strtoull(s, NULL, 0);
	else {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec;
	}
	printf("# seed %llu (re-run with FT_SEED=%llu)\n", (unsigned long long)seed,
	       (unsigned long long)seed);
	return seed;
}

#endif
