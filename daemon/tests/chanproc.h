/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for channel tests and the benchmark: run a channel endpoint in a
 * child process (its own sd-event loop, real TCP on loopback), a fault
 * injecting proxy between two endpoints, and the parent's producer/verifier.
 */
#ifndef FTD_TESTS_CHANPROC_H
#define FTD_TESTS_CHANPROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "channel.h"

/* Published by a child endpoint into shared memory for the parent to read. */
struct ep_shared {
	volatile uint64_t max_unacked_records, max_unacked_bytes;
	volatile uint64_t window_full, ring_full, sessions, rejects, records;
	volatile uint64_t max_rss_kb, ack_rtt_us, acked;
	volatile int up;
};

struct ep_args {
	bool sender;
	int ring_fd;
	int listen_fd;		/* receiver */
	uint16_t port;		/* sender: port to dial on 127.0.0.1 */
	uint8_t psk[FT_PSK_LEN];
	uint64_t epoch;
	uint32_t node_id;
	uint32_t max_unacked_records;
	uint64_t max_unacked_bytes;
	uint64_t ring_poll_us;	/* 0: the channel's default */
	int notify_efd;		/* sender: eventfd the producer signals (0: none) */
	uint32_t hello_flags;	/* enum ft_hello_flags (re-protection's handshake) */
	const char *log_path;	/* stderr goes here */
	struct ep_shared *sh;
};

enum proxy_mode {
	PX_PASS, PX_FLIP, PX_FORGE, PX_TRUNCATE, PX_REPLAY, PX_STALE, PX_XREPLAY,
};

int tcp_listen(uint16_t *port);
pid_t spawn_endpoint(const struct ep_args *a);
/* Proxy: accepts on listen_fd, forwards to 127.0.0.1:backend; one fault at LOG frame `at`. */
pid_t spawn_proxy(int listen_fd, uint16_t backend, enum proxy_mode mode, int at,
		  const uint8_t psk[FT_PSK_LEN], const char *log_path);
void *shared_page(void);
int stop_child(pid_t pid);
/* Count lines in a file containing needle. */
int count_lines(const char *path, const char *needle);

#endif
