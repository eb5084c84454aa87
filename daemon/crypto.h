/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Channel authentication and encryption (libsodium).
 *
 * Handshake, with a 32-byte pre-shared key K (the same file on both hosts):
 *
 *   client -> server  HELLO        {version, node_c, epoch_c, nonce_c}
 *   server -> client  HELLO_REPLY  {version, node_s, epoch_s, nonce_s, proof_s}
 *   client -> server  PROOF        {proof_c}
 *
 *   M       = BLAKE2b-256 keyed with K over "kvm_ft channel v1" and every
 *             field of both hellos (nonces, node ids, epochs, version, flags)
 *   k_c2s, k_s2c, k_pc, k_ps = crypto_kdf_derive_from_key(M, ids 1..4, "ftchanv1")
 *   proof_s = BLAKE2b-256 keyed with k_ps over "server"
 *   proof_c = BLAKE2b-256 keyed with k_pc over "client"
 *
 * Each side proves it knows K for this pair of fresh nonces; a party without
 * K cannot compute either proof, and a recorded handshake is useless because
 * the other side's nonce is new. The proofs use separate keys so one is
 * never usable as the other. Data flows only after both proofs checked; each
 * direction then seals every frame with XChaCha20-Poly1305 under its own
 * session key, nonce = the frame counter.
 */
#ifndef FTD_CRYPTO_H
#define FTD_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "frame.h"

#define FT_PSK_LEN 32

struct ft_session_keys {
	uint8_t c2s[32], s2c[32];
	uint8_t proof_c[32], proof_s[32];
};

int ft_crypto_init(void);
/*
 * Load the pre-shared key: a file holding 64 hex digits (whitespace allowed
 * around them). Refuses a file readable by group or others. On error returns
 * -errno and writes a sentence into err.
 */
int ft_psk_load(const char *path, uint8_t psk[FT_PSK_LEN], char *err, size_t errlen);
void ft_nonce_fresh(uint8_t nonce[32]);
void ft_session_derive(const uint8_t psk[FT_PSK_LEN],
		       const struct ft_hello *c, uint64_t epoch_c,
		       const struct ft_hello *s, uint64_t epoch_s,
		       struct ft_session_keys *k);
bool ft_proof_equal(const uint8_t a[32], const uint8_t b[32]);

/*
 * Seal a frame in place: buf holds the header (len, type, epoch, first_seq,
 * count, counter filled in), then plen payload bytes from pt (pt may be any
 * memory, e.g. the mapped ring; ciphertext is written after the header), then
 * room for the tag. Sets the CRC.
 */
void ft_seal(const uint8_t key[32], uint8_t *buf, const void *pt, size_t plen);
/* Write a clear (handshake) frame's CRC. */
void ft_seal_clear(uint8_t *buf);
/* Verify and decrypt a received sealed frame in place. 0 or -EBADMSG. */
int ft_open(const uint8_t key[32], uint8_t *buf);

#endif
