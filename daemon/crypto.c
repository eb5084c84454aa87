// SPDX-License-Identifier: GPL-2.0
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>
#include "crypto.h"

_Static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == FT_FRAME_TAG, "tag size");

int ft_crypto_init(void)
{
	return sodium_init() < 0 ? -EIO : 0;
}

int ft_psk_load(const char *path, uint8_t psk[FT_PSK_LEN], char *err, size_t errlen)
{
	char buf[256], hex[2 * FT_PSK_LEN + 1];
	size_t n = 0, bin_len;
	struct stat st;
	ssize_t got;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		int e = errno;

		snprintf(err, errlen, "cannot open key file %s: %s", path, strerror(e));
		return -e;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "key file %s is not a regular file", path);
		return -EINVAL;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		snprintf(err, errlen, "key file %s is accessible by group or others (mode %03o): chmod 600 it",
			 path, st.st_mode & 0777);
		return -EPERM;
	}
	got = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (got < 0) {
		snprintf(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
		return -EIO;
	}
	for (ssize_t i = 0; i < got; i++) {
		if (isspace((unsigned char)buf[i]))
			continue;
		if (n == sizeof(hex) - 1 || !isxdigit((unsigned char)buf[i])) {
			n = 0;
			break;
		}
		hex[n++] = buf[i];
	}
	hex[n] = 0;
	sodium_memzero(buf, sizeof(buf));
	if (n != 2 * FT_PSK_LEN ||
	    sodium_hex2bin(psk, FT_PSK_LEN, hex, n, NULL, &bin_len, NULL) || bin_len != FT_PSK_LEN) {
		sodium_memzero(hex, sizeof(hex));
		snprintf(err, errlen, "key file %s must hold exactly 64 hex digits (32 bytes)", path);
		return -EINVAL;
	}
	sodium_memzero(hex, sizeof(hex));
	return 0;
}

void ft_nonce_fresh(uint8_t nonce[32])
{
	randombytes_buf(nonce, 32);
}

static void hello_absorb(crypto_generichash_state *st, const struct ft_hello *h, uint64_t epoch)
{
	crypto_generichash_update(st, (const uint8_t *)&h->version, sizeof(h->version));
	crypto_generichash_update(st, (const uint8_t *)&h->node_id, sizeof(h->node_id));
	crypto_generichash_update(st, (const uint8_t *)&epoch, sizeof(epoch));
	crypto_generichash_update(st, h->nonce, sizeof(h->nonce));
	crypto_generichash_update(st, (const uint8_t *)&h->flags, sizeof(h->flags));
}

static void mac(uint8_t out[32], const uint8_t key[32], const char *label)
{
	crypto_generichash(out, 32, (const uint8_t *)label, strlen(label), key, 32);
}

void ft_session_derive(const uint8_t psk[FT_PSK_LEN],
		       const struct ft_hello *c, uint64_t epoch_c,
		       const struct ft_hello *s, uint64_t epoch_s,
		       struct ft_session_keys *k)
{
	static const char label[] = "kvm_ft channel v1";
	crypto_generichash_state st;
	uint8_t master[crypto_kdf_KEYBYTES], kp[32];

	crypto_generichash_init(&st, psk, FT_PSK_LEN, sizeof(master));
	crypto_generichash_update(&st, (const uint8_t *)label, sizeof(label));
	hello_absorb(&st, c, epoch_c);
	hello_absorb(&st, s, epoch_s);
	crypto_generichash_final(&st, master, sizeof(master));
	crypto_kdf_derive_from_key(k->c2s, 32, 1, "ftchanv1", master);
	crypto_kdf_derive_from_key(k->s2c, 32, 2, "ftchanv1", master);
	crypto_kdf_derive_from_key(kp, 32, 3, "ftchanv1", master);
	mac(k->proof_c, kp, "client");
	crypto_kdf_derive_from_key(kp, 32, 4, "ftchanv1", master);
	mac(k->proof_s, kp, "server");
	sodium_memzero(master, sizeof(master));
	sodium_memzero(kp, sizeof(kp));
}

bool ft_proof_equal(const uint8_t a[32], const uint8_t b[32])
{
	return crypto_verify_32(a, b) == 0;
}

static void nonce_of(uint8_t n[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES], uint64_t counter)
{
	memset(n, 0, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	memcpy(n, &counter, sizeof(counter));
}

static void ad_of(struct ft_frame_hdr *ad, const uint8_t *buf)
{
	memcpy(ad, buf, sizeof(*ad));
	ad->crc32c = 0;
}

void ft_seal(const uint8_t key[32], uint8_t *buf, const void *pt, size_t plen)
{
	struct ft_frame_hdr *h = (struct ft_frame_hdr *)buf;
	uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	struct ft_frame_hdr ad;

	h->crc32c = 0;
	ad_of(&ad, buf);
	nonce_of(nonce, h->counter);
	crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
		buf + sizeof(*h), buf + sizeof(*h) + plen, NULL, pt, plen,
		(const uint8_t *)&ad, sizeof(ad), NULL, nonce, key);
	h->crc32c = ft_frame_crc(buf, h->len);
}

void ft_seal_clear(uint8_t *buf)
{
	struct ft_frame_hdr *h = (struct ft_frame_hdr *)buf;

	h->crc32c = ft_frame_crc(buf, h->len);
}

int ft_open(const uint8_t key[32], uint8_t *buf)
{
	const struct ft_frame_hdr *h = (const struct ft_frame_hdr *)buf;
	uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	size_t clen = h->len - sizeof(*h) - FT_FRAME_TAG;
	struct ft_frame_hdr ad;

	ad_of(&ad, buf);
	nonce_of(nonce, h->counter);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
		    buf + sizeof(*h), NULL, buf + sizeof(*h), clen,
		    buf + sizeof(*h) + clen, (const uint8_t *)&ad, sizeof(ad), nonce, key))
		return -EBADMSG;
	return 0;
}
