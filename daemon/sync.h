/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Re-protection's state transfer, both ends: the live node's VM snapshot
 * (a sealed memfd its VMM made: SNAPSHOT_READY in ftd_vmm.h) cut into
 * chunks, and the new backup's copy put together again, checked, into a
 * sealed memfd for its VMM (SEED). The snapshot is opaque here (its format
 * is the VMM's, vmm/snapshot.h); what this checks is the transfer: a
 * length announced first and bounded, chunks at contiguous offsets that
 * stay inside it, and at the end the same length and the same BLAKE2b-256
 * hash of the whole. The channel carries the chunks in authenticated,
 * epoch-fenced frames (README "Re-protection"); this file does no network
 * I/O.
 *
 * Every refusal sets *why to one short phrase for the log line.
 */
#ifndef FTD_SYNC_H
#define FTD_SYNC_H

#include <stddef.h>
#include <stdint.h>
#include <sodium.h>

#define FT_SYNC_MAX		(1ULL << 30)	/* largest snapshot taken */
#define FT_SYNC_HASH_LEN	32

/* Sender: a snapshot memfd, mapped read-only. */
struct ft_sync_tx {
	const uint8_t *map;
	uint64_t len, sent;
	uint8_t hash[FT_SYNC_HASH_LEN];
};

/*
 * Take the memfd (not closed; the mapping keeps the data) of len bytes:
 * it must be that long, sealed against writes and resizing, at most
 * FT_SYNC_MAX. Hashes it. 0 or -errno with *why.
 */
int ft_sync_tx_open(struct ft_sync_tx *t, int memfd, uint64_t len, const char **why);
/* The next chunk of at most max bytes: its offset and data; 0 when all sent. */
size_t ft_sync_tx_next(struct ft_sync_tx *t, size_t max, uint64_t *off, const uint8_t **data);
void ft_sync_tx_close(struct ft_sync_tx *t);

/* Receiver: a memfd being filled. */
struct ft_sync_rx {
	int fd;
	uint8_t *map;
	uint64_t len, got;
	crypto_generichash_state hs;
};

/* A transfer of len bytes begins. 0 or -errno with *why. */
int ft_sync_rx_open(struct ft_sync_rx *r, uint64_t len, const char **why);
/* A chunk: exactly at the next offset, inside the announced length. */
int ft_sync_rx_chunk(struct ft_sync_rx *r, uint64_t off, const void *data, size_t n,
		     const char **why);
/*
 * The end: total and hash must match what arrived. Returns the memfd,
 * sealed (the caller owns it; it goes to the VMM with SEED), or -errno
 * with *why. The receiver is closed either way.
 */
int ft_sync_rx_end(struct ft_sync_rx *r, uint64_t total, const uint8_t hash[FT_SYNC_HASH_LEN],
		   const char **why);
void ft_sync_rx_close(struct ft_sync_rx *r);

#endif
