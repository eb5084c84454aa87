// SPDX-License-Identifier: GPL-2.0
/*
 * Table-driven CRC32C. Debian's well-kept option is ISA-L (libisal-dev), but
 * the daemon's link line (daemon/Makefile, owned elsewhere) does not carry it
 * and the arbiter checksums a few 512-byte records per ballot, so a
 * byte-at-a-time table (1 KiB, built once) costs nothing measurable. Swap the
 * body for isal's crc32_iscsi() if the Makefile ever links libisal: the
 * function below keeps the same pre/post inversion convention.
 */
#include <pthread.h>

#include "crc32c.h"

#define CRC32C_POLY_REFLECTED 0x82F63B78u

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ ((c & 1) ? CRC32C_POLY_REFLECTED : 0);
		table[i] = c;
	}
}

uint32_t ft_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	pthread_once(&table_once, build_table);
	crc = ~crc;
	while (len--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}
