// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <nmmintrin.h>
#include "crc32c.h"
#include "frame.h"

/*
 * CRC32C of every frame (up to 1 MiB each, at channel speed): the SSE4.2
 * crc32 instruction where the CPU has it, else the table-driven ft_crc32c()
 * of daemon/crc32c.c (same polynomial and conventions; test_frame checks
 * that both agree).
 */
__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n)
{
	uint64_t c = ~crc;

	for (; n >= 8; n -= 8, p += 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		c = _mm_crc32_u64(c, v);
	}
	while (n--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return ~(uint32_t)c;
}

static uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	static int hw = -1;

	if (hw < 0)
		hw = __builtin_cpu_supports("sse4.2");
	return hw ? crc_hw(crc, buf, len) : ft_crc32c(crc, buf, len);
}

uint32_t ft_frame_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return crc32c(crc, buf, len);
}

const char *ft_frame_type_name(unsigned int type)
{
	static const char *const names[] = {
		[FT_F_HELLO] = "HELLO", [FT_F_HELLO_REPLY] = "HELLO_REPLY",
		[FT_F_PROOF] = "PROOF", [FT_F_LOG] = "LOG", [FT_F_ACK] = "ACK",
		[FT_F_HEARTBEAT] = "HEARTBEAT", [FT_F_SNAP] = "SNAP", [FT_F_SNAP_END] = "SNAP_END",
	};

	return type && type <= FT_F_TYPE_MAX ? names[type] : "UNKNOWN";
}

uint32_t ft_frame_crc(const void *frame, size_t len)
{
	static const uint8_t zero[4];
	const uint8_t *b = frame;
	size_t at = offsetof(struct ft_frame_hdr, crc32c);
	uint32_t crc;

	crc = crc32c(0, b, at);
	crc = crc32c(crc, zero, 4);
	return crc32c(crc, b + at + 4, len - at - 4);
}

int ft_frame_check_hdr(const struct ft_frame_hdr *h, uint32_t max_len, const char **why)
{
	uint32_t min = sizeof(*h);

	if (h->magic != FT_FRAME_MAGIC) {
		*why = "bad-magic";
		return -EBADMSG;
	}
	if (h->type == 0 || h->type > FT_F_TYPE_MAX || h->flags || h->reserved) {
		*why = "bad-type";
		return -EBADMSG;
	}
	if (h->type >= FT_F_LOG)
		min += FT_FRAME_TAG;
	if (h->len < min || h->len > max_len) {
		*why = "bad-length";
		return -EMSGSIZE;
	}
	return 0;
}
