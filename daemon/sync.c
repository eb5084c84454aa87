// SPDX-License-Identifier: GPL-2.0
/*
 * Re-protection's state transfer (sync.h): the snapshot memfd cut into
 * chunks on the live node, put together and checked on the new backup.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sync.h"

#define SEALS_NEEDED	(F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)

int ft_sync_tx_open(struct ft_sync_tx *t, int memfd, uint64_t len, const char **why)
{
	struct stat st;
	void *p;
	int seals;

	memset(t, 0, sizeof(*t));
	if (!len || len > FT_SYNC_MAX) {
		*why = "snapshot length out of range";
		return -EINVAL;
	}
	if (fstat(memfd, &st) || (uint64_t)st.st_size != len) {
		*why = "snapshot memfd is not of the announced length";
		return -EINVAL;
	}
	seals = fcntl(memfd, F_GET_SEALS);
	if (seals < 0 || (seals & SEALS_NEEDED) != SEALS_NEEDED) {
		*why = "snapshot memfd is not sealed against writes";
		return -EINVAL;
	}
	p = mmap(NULL, len, PROT_READ, MAP_SHARED, memfd, 0);
	if (p == MAP_FAILED) {
		*why = "cannot map the snapshot";
		return -errno;
	}
	if (sodium_init() < 0) {
		munmap(p, len);
		*why = "libsodium failed to initialise";
		return -EIO;
	}
	t->map = p;
	t->len = len;
	crypto_generichash(t->hash, sizeof(t->hash), t->map, len, NULL, 0);
	return 0;
}

size_t ft_sync_tx_next(struct ft_sync_tx *t, size_t max, uint64_t *off, const uint8_t **data)
{
	size_t n = t->len - t->sent < max ? t->len - t->sent : max;

	*off = t->sent;
	*data = t->map + t->sent;
	t->sent += n;
	return n;
}

void ft_sync_tx_close(struct ft_sync_tx *t)
{
	if (t->map)
		munmap((void *)t->map, t->len);
	memset(t, 0, sizeof(*t));
}

int ft_sync_rx_open(struct ft_sync_rx *r, uint64_t len, const char **why)
{
	void *p;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if (!len || len > FT_SYNC_MAX) {
		*why = "announced snapshot length out of range";
		return -EINVAL;
	}
	if (sodium_init() < 0) {
		*why = "libsodium failed to initialise";
		return -EIO;
	}
	r->fd = memfd_create("ftd-snapshot", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (r->fd < 0 || ftruncate(r->fd, len)) {
		*why = "cannot make a memfd for the snapshot";
		goto fail;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
	if (p == MAP_FAILED) {
		*why = "cannot map the snapshot memfd";
		goto fail;
	}
	r->map = p;
	r->len = len;
	crypto_generichash_init(&r->hs, NULL, 0, FT_SYNC_HASH_LEN);
	return 0;
fail:
	{
		int e = -errno;

		ft_sync_rx_close(r);
		return e ? e : -EIO;
	}
}

int ft_sync_rx_chunk(struct ft_sync_rx *r, uint64_t off, const void *data, size_t n,
		     const char **why)
{
	if (!r->map) {
		*why = "snapshot chunk without a transfer";
		return -EPROTO;
	}
	if (off != r->got) {
		*why = off < r->got ? "snapshot chunk repeats bytes already received" :
				      "snapshot chunk leaves a gap";
		return -EPROTO;
	}
	if (!n || n > r->len - r->got) {
		*why = n ? "snapshot chunk runs past the announced length" : "empty snapshot chunk";
		return -EPROTO;
	}
	memcpy(r->map + off, data, n);
	crypto_generichash_update(&r->hs, data, n);
	r->got += n;
	return 0;
}

int ft_sync_rx_end(struct ft_sync_rx *r, uint64_t total, const uint8_t hash[FT_SYNC_HASH_LEN],
		   const char **why)
{
	uint8_t h[FT_SYNC_HASH_LEN];
	int fd, e = -EPROTO;

	if (!r->map) {
		*why = "snapshot end without a transfer";
		goto out;
	}
	if (total != r->len) {
		*why = "snapshot end announces another length than its start";
		goto out;
	}
	if (r->got != r->len) {
		*why = "snapshot truncated: fewer bytes than announced";
		goto out;
	}
	crypto_generichash_final(&r->hs, h, sizeof(h));
	if (sodium_memcmp(h, hash, sizeof(h))) {
		*why = "snapshot hash mismatch";
		goto out;
	}
	munmap(r->map, r->len);
	r->map = NULL;
	if (fcntl(r->fd, F_ADD_SEALS, SEALS_NEEDED | F_SEAL_SEAL)) {
		e = -errno;
		*why = "cannot seal the snapshot memfd";
		goto out;
	}
	fd = r->fd;
	r->fd = -1;
	ft_sync_rx_close(r);
	return fd;
out:
	ft_sync_rx_close(r);
	return e;
}

void ft_sync_rx_close(struct ft_sync_rx *r)
{
	if (r->map)
		munmap(r->map, r->len);
	if (r->fd >= 0)
		close(r->fd);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}
