/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Deterministic record generator for the test producer, the tests and the
 * benchmark: record n of stream `seed` is a valid uapi record whose type,
 * size and content depend only on (seed, n), so a consumer anywhere can
 * regenerate it and compare byte for byte.
 */
#ifndef FTD_RECGEN_H
#define FTD_RECGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FT_RECGEN_MAX 4160	/* largest record generated */

uint64_t ft_splitmix64(uint64_t *state);
/* Build record seq of stream seed into buf (FT_RECGEN_MAX bytes); returns its length. */
uint32_t ft_recgen(uint64_t seed, uint64_t seq, void *buf);
/* Same, with a fixed size class: every record is `size` bytes (a PIO_IN, size >= 48). */
uint32_t ft_recgen_sized(uint64_t seed, uint64_t seq, uint32_t size, void *buf);
/* True if rec/len is exactly record seq of stream seed (size 0 = mixed sizes). */
bool ft_recgen_verify(uint64_t seed, uint64_t seq, uint32_t size, const void *rec, uint32_t len);

#endif
