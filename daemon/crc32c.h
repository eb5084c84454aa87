/* SPDX-License-Identifier: GPL-2.0 */
/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum sanlock,
 * iSCSI and ext4 metadata use. ft_crc32c(0, "123456789", 9) == 0xE3069283.
 */
#ifndef FT_CRC32C_H
#define FT_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: pass 0 to start; pass a previous result to extend it. */
uint32_t ft_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
