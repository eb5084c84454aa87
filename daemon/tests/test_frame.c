// SPDX-License-Identifier: GPL-2.0
/*
 * Frame and crypto primitives in one process: CRC32C known answers (both
 * the hardware and the generic path agree), handshake key agreement, sealing
 * and every way a sealed frame must fail to open, and the key file rules.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>
#include "crc32c.h"
#include "crypto.h"
#include "frame.h"
#include "recgen.h"
#include "tap.h"

static int write_key(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	if (fd < 0)
		return -1;
	write(fd, text, strlen(text));
	fchmod(fd, mode);
	close(fd);
	return 0;
}

int main(void)
{
	uint64_t seed = tap_seed();
	uint8_t psk[32], other[32], buf[8192], rec[FT_RECGEN_MAX];
	struct ft_hello hc = { .version = 1, .node_id = 1 }, hs = { .version = 1, .node_id = 2 };
	struct ft_session_keys a, b, x;
	struct ft_frame_hdr *h = (void *)buf;
	uint32_t rl;
	char err[256], path[] = "/tmp/ftkey.XXXXXX";
	uint8_t big[4099];
	uint64_t st = seed;

	ok(ft_crypto_init() == 0, "libsodium initialised");
	ok(ft_frame_crc32c(0, "123456789", 9) == 0xE3069283, "CRC32C check value");
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)ft_splitmix64(&st);
	uint32_t whole = ft_frame_crc32c(0, big, sizeof(big));
	uint32_t parts = ft_frame_crc32c(ft_frame_crc32c(0, big, 1001), big + 1001, sizeof(big) - 1001);

	ok(whole == parts, "CRC32C continues across split buffers");
	ok(whole == ft_crc32c(0, big, sizeof(big)) && ft_crc32c(0, "123456789", 9) == 0xE3069283,
	   "frame CRC (SSE4.2 path) agrees with the table-driven ft_crc32c");

	randombytes_buf(psk, sizeof(psk));
	memcpy(other, psk, sizeof(psk));
	other[31] ^= 0x80;
	ft_nonce_fresh(hc.nonce);
	ft_nonce_fresh(hs.nonce);
	ft_session_derive(psk, &hc, 3, &hs, 3, &a);
	ft_session_derive(psk, &hc, 3, &hs, 3, &b);
	ok(!memcmp(&a, &b, sizeof(a)), "both sides derive the same session keys");
	ok(memcmp(a.c2s, a.s2c, 32) && memcmp(a.proof_c, a.proof_s, 32),
	   "directions and proofs use distinct keys");
	ft_session_derive(other, &hc, 3, &hs, 3, &x);
	ok(!ft_proof_equal(a.proof_s, x.proof_s) && !ft_proof_equal(a.proof_c, x.proof_c),
	   "a different key gives different proofs");
	ft_session_derive(psk, &hc, 4, &hs, 3, &x);
	ok(!ft_proof_equal(a.proof_s, x.proof_s), "the epochs are bound into the proofs");
	hs.nonce[0] ^= 1;
	ft_session_derive(psk, &hc, 3, &hs, 3, &x);
	hs.nonce[0] ^= 1;
	ok(!ft_proof_equal(a.proof_c, x.proof_c), "the nonces are bound into the proofs");

	rl = ft_recgen(seed, 1, rec);
	*h = (struct ft_frame_hdr){ .magic = FT_FRAME_MAGIC, .type = FT_F_LOG, .count = 1,
				    .epoch = 3, .first_seq = 1, .counter = 1,
				    .len = sizeof(*h) + rl + FT_FRAME_TAG };
	ft_seal(a.c2s, buf, rec, rl);
	ok(ft_frame_crc(buf, h->len) == h->crc32c, "sealed frame carries a valid CRC");
	ok(memcmp(buf + sizeof(*h), rec, rl) != 0 || rl < 16, "payload is encrypted on the wire");

	uint8_t copy[8192];

	memcpy(copy, buf, h->len);
	ok(ft_open(a.c2s, copy) == 0 && !memcmp(copy + sizeof(*h), rec, rl), "opens to the same record");
	memcpy(copy, buf, h->len);
	ok(ft_open(a.s2c, copy) != 0, "the other direction's key does not open it");
	memcpy(copy, buf, h->len);
	((struct ft_frame_hdr *)copy)->epoch = 2;
	ok(ft_open(a.c2s, copy) != 0, "a changed epoch in the header fails authentication");
	memcpy(copy, buf, h->len);
	((struct ft_frame_hdr *)copy)->counter = 2;
	ok(ft_open(a.c2s, copy) != 0, "a changed counter fails authentication");
	memcpy(copy, buf, h->len);
	copy[sizeof(*h) + rl / 2] ^= 4;
	ok(ft_open(a.c2s, copy) != 0 && ft_frame_crc(copy, h->len) != h->crc32c,
	   "a flipped payload bit fails CRC and authentication");
	memcpy(copy, buf, h->len);
	copy[h->len - 1] ^= 1;
	ok(ft_open(a.c2s, copy) != 0, "a flipped tag bit fails authentication");

	const char *why = NULL;
	struct ft_frame_hdr t = *h;

	t.len = FT_FRAME_MAX + 1;
	ok(ft_frame_check_hdr(&t, FT_FRAME_MAX, &why) < 0 && !strcmp(why, "bad-length"), "oversized frame refused");
	t = *h;
	t.len = sizeof(t) + 8;
	ok(ft_frame_check_hdr(&t, FT_FRAME_MAX, &why) < 0, "sealed frame shorter than header+tag refused");
	t = *h;
	t.type = 9;
	ok(ft_frame_check_hdr(&t, FT_FRAME_MAX, &why) < 0 && !strcmp(why, "bad-type"), "unknown type refused");
	t = *h;
	t.magic ^= 1;
	ok(ft_frame_check_hdr(&t, FT_FRAME_MAX, &why) < 0 && !strcmp(why, "bad-magic"), "bad magic refused");

	int fd = mkstemp(path);
	uint8_t k[32];

	close(fd);
	write_key(path, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600);
	ok(ft_psk_load(path, k, err, sizeof(err)) == 0 && k[0] == 0x00 && k[1] == 0x11 && k[31] == 0xff,
	   "64 hex digits load");
	chmod(path, 0640);
	ok(ft_psk_load(path, k, err, sizeof(err)) < 0 && strstr(err, "chmod 600"),
	   "group-readable key refused: %s", err);
	write_key(path, "0011223344\n", 0600);
	ok(ft_psk_load(path, k, err, sizeof(err)) < 0 && strstr(err, "64 hex"), "short key refused: %s", err);
	write_key(path, "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600);
	ok(ft_psk_load(path, k, err, sizeof(err)) < 0, "non-hex key refused");
	unlink(path);
	ok(ft_psk_load(path, k, err, sizeof(err)) < 0 && strstr(err, "cannot open"), "missing key file: %s", err);
	return tap_done();
}
