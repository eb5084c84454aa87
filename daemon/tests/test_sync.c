// SPDX-License-Identifier: GPL-2.0
/*
 * Re-protection's state transfer (sync.h) in one process: random snapshots
 * cut into chunks of random sizes and put together byte-exact into a sealed
 * memfd; and every way a transfer must be refused (an unsealed or
 * misannounced source, a gap, a repeat, an overrun, an empty chunk, a
 * truncated end, a flipped byte, a forged hash, an oversized announcement),
 * each with its reason.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdbool.h>
#include "sync.h"
#include "tap.h"

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A sealed memfd of len random bytes (a copy in *copy, malloc'ed). */
static int make_snapshot(uint64_t len, uint64_t *s, uint8_t **copy, bool seal)
{
	int fd = memfd_create("test-snapshot", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	uint8_t *p = malloc(len);

	if (fd < 0 || !p || ftruncate(fd, len))
		return -1;
	for (uint64_t i = 0; i < len; i++)
		p[i] = (uint8_t)rnd(s);
	if (pwrite(fd, p, len, 0) != (ssize_t)len)
		return -1;
	if (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW))
		return -1;
	*copy = p;
	return fd;
}

static bool same(int fd, const uint8_t *want, uint64_t len)
{
	uint8_t *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	bool eq;

	if (p == MAP_FAILED)
		return false;
	eq = !memcmp(p, want, len);
	munmap(p, len);
	return eq;
}

/* Send all of t into r in chunks of 1..max bytes; 0 or the first refusal. */
static int pump(struct ft_sync_tx *t, struct ft_sync_rx *r, uint64_t *s, size_t max,
		const char **why)
{
	const uint8_t *d;
	uint64_t off;
	size_t n;
	int e;

	while ((n = ft_sync_tx_next(t, 1 + rnd(s) % max, &off, &d)))
		if ((e = ft_sync_rx_chunk(r, off, d, n, why)))
			return e;
	return 0;
}

int main(void)
{
	uint64_t seed = tap_seed(), s = seed | 1;
	struct ft_sync_tx t;
	struct ft_sync_rx r;
	const char *why = "";
	uint8_t *copy, hash[FT_SYNC_HASH_LEN];
	int fd, out, e;

	/* Round trips of random lengths and chunkings. */
	for (int i = 0; i < 8; i++) {
		uint64_t len = 1 + rnd(&s) % (i < 4 ? 4096 : 3 << 20);
		size_t max = 1 + rnd(&s) % 300000;
		int seals;

		fd = make_snapshot(len, &s, &copy, true);
		e = ft_sync_tx_open(&t, fd, len, &why);
		ok(!e, "round trip %d: %llu bytes open for sending (%s)", i,
		   (unsigned long long)len, e ? why : "ok");
		close(fd);	/* the mapping keeps it */
		e = ft_sync_rx_open(&r, len, &why);
		ok(!e && !pump(&t, &r, &s, max, &why), "round trip %d: chunks of at most %zu "
		   "bytes taken", i, max);
		out = ft_sync_rx_end(&r, t.len, t.hash, &why);
		seals = out >= 0 ? fcntl(out, F_GET_SEALS) : 0;
		ok(out >= 0 && same(out, copy, len) && (seals & F_SEAL_WRITE),
		   "round trip %d: the received memfd is byte-exact and sealed (%s)", i,
		   out < 0 ? why : "ok");
		if (out >= 0)
			close(out);
		ft_sync_tx_close(&t);
		free(copy);
	}

	/* The sender's source. */
	fd = make_snapshot(10000, &s, &copy, false);
	e = ft_sync_tx_open(&t, fd, 10000, &why);
	ok(e == -EINVAL && strstr(why, "not sealed"), "an unsealed memfd is refused: %s", why);
	close(fd);
	free(copy);
	fd = make_snapshot(10000, &s, &copy, true);
	e = ft_sync_tx_open(&t, fd, 9999, &why);
	ok(e == -EINVAL && strstr(why, "announced length"), "a misannounced length is refused: %s",
	   why);
	e = ft_sync_tx_open(&t, fd, 10000, &why);
	ok(!e, "the same memfd announced right is taken");
	close(fd);

	/* The receiver: each bad transfer refused with its reason. */
	e = ft_sync_rx_open(&r, FT_SYNC_MAX + 1, &why);
	ok(e == -EINVAL && strstr(why, "out of range"), "an oversized announcement: %s", why);
	e = ft_sync_rx_open(&r, 0, &why);
	ok(e == -EINVAL, "an empty announcement: %s", why);

	ft_sync_rx_open(&r, 10000, &why);
	ft_sync_rx_chunk(&r, 0, copy, 4000, &why);
	e = ft_sync_rx_chunk(&r, 4001, copy + 4001, 100, &why);
	ok(e == -EPROTO && strstr(why, "gap"), "a gap: %s", why);
	e = ft_sync_rx_chunk(&r, 3000, copy + 3000, 100, &why);
	ok(e == -EPROTO && strstr(why, "repeats"), "a repeat: %s", why);
	e = ft_sync_rx_chunk(&r, 4000, copy + 4000, 6001, &why);
	ok(e == -EPROTO && strstr(why, "past"), "an overrun: %s", why);
	e = ft_sync_rx_chunk(&r, 4000, copy + 4000, 0, &why);
	ok(e == -EPROTO && strstr(why, "empty"), "an empty chunk: %s", why);
	out = ft_sync_rx_end(&r, 10000, t.hash, &why);
	ok(out == -EPROTO && strstr(why, "truncated"), "an end before every byte came: %s", why);

	/* A flipped byte in flight, then a forged hash. */
	ft_sync_rx_open(&r, 10000, &why);
	copy[5000] ^= 1;
	ft_sync_rx_chunk(&r, 0, copy, 10000, &why);
	copy[5000] ^= 1;
	out = ft_sync_rx_end(&r, 10000, t.hash, &why);
	ok(out == -EPROTO && strstr(why, "hash mismatch"), "a flipped byte: %s", why);
	ft_sync_rx_open(&r, 10000, &why);
	ft_sync_rx_chunk(&r, 0, copy, 10000, &why);
	memcpy(hash, t.hash, sizeof(hash));
	hash[0] ^= 0x80;
	out = ft_sync_rx_end(&r, 10000, hash, &why);
	ok(out == -EPROTO && strstr(why, "hash mismatch"), "a forged hash: %s", why);
	ft_sync_rx_open(&r, 10000, &why);
	ft_sync_rx_chunk(&r, 0, copy, 10000, &why);
	out = ft_sync_rx_end(&r, 10001, t.hash, &why);
	ok(out == -EPROTO && strstr(why, "another length"), "an end announcing another total: %s",
	   why);
	e = ft_sync_rx_chunk(&r, 0, copy, 1, &why);
	ok(e == -EPROTO, "a chunk after the end: %s", why);
	ft_sync_tx_close(&t);
	free(copy);
	return tap_done();
}
