// SPDX-License-Identifier: GPL-2.0
/*
 * make bench: the logging channel between two processes on loopback, with
 * the full handshake and XChaCha20-Poly1305 on every frame, against raw
 * loopback TCP measured in the same run:
 *
 *   throughput  records/s and MB/s of record payload, producer -> primary
 *               ftd channel -> backup -> replay ring, until the last record
 *               is acked back into the primary's ring; vs. raw TCP streaming
 *               of the same bytes (write/read, no framing, no crypto)
 *   ack RTT     one record appended on an idle channel until its ack is
 *               published in the ring's consumer page; vs. a raw TCP
 *               ping-pong of 64 bytes between two processes
 *
 * The producer wakes the primary endpoint through an eventfd, as the kernel
 * ring's poll() would; the parent waits for acks with 5 us sleeps.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sodium.h>
#include "chanproc.h"
#include "recgen.h"

#define POOL 4096

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct pair {
	int src, dst, efd;
	pid_t p, b;
	struct ft_ring w, r;
	struct ft_ring_cursor cur;
};

static void pair_start(struct pair *pr, const uint8_t psk[32])
{
	uint16_t port = 0;
	int l = tcp_listen(&port);
	/* the eventfd plays the kernel ring fd's POLLIN; the timer is only a safety net */
	struct ep_args pa = { .sender = true, .port = port, .epoch = 1, .node_id = 1,
			      .ring_poll_us = 10000 };
	struct ep_args ba = { .listen_fd = l, .epoch = 1, .node_id = 2, .ring_poll_us = 10000 };

	pr->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pa.notify_efd = pr->efd;

	pr->src = memfd_create("src", 0);
	pr->dst = memfd_create("dst", 0);
	ft_ring_format(pr->src, 22);
	ft_ring_format(pr->dst, 22);
	pa.ring_fd = pr->src;
	ba.ring_fd = pr->dst;
	memcpy(pa.psk, psk, 32);
	memcpy(ba.psk, psk, 32);
	pa.log_path = ba.log_path = "/dev/null";
	pr->b = spawn_endpoint(&ba);
	pr->p = spawn_endpoint(&pa);
	close(l);
	ft_ring_map(&pr->w, pr->src, true);
	ft_ring_map(&pr->r, pr->dst, false);
	pr->cur = pr->r.tail;
}

static void pair_stop(struct pair *pr)
{
	stop_child(pr->p);
	stop_child(pr->b);
	ft_ring_unmap(&pr->w);
	ft_ring_unmap(&pr->r);
	close(pr->src);
	close(pr->dst);
	close(pr->efd);
}

static void kick(struct pair *pr)
{
	uint64_t one = 1;

	if (write(pr->efd, &one, sizeof(one)) < 0)
		exit(2);
}

/* Release whatever the backup stored (the replay consumer's job). */
static void drain(struct pair *pr)
{
	const struct kvm_ft_rec *rec;
	uint32_t len;
	bool any = false;

	while (ft_ring_next(&pr->r, &pr->cur, &rec, &len) == 1)
		any = true;
	if (any)
		ft_ring_release(&pr->r, pr->cur.seq - 1, &pr->cur);
}

static void throughput(const uint8_t psk[32], uint32_t size, uint64_t n, double *rps, double *mbps)
{
	static uint8_t pool[POOL][FT_RECGEN_MAX];
	static uint32_t plen[POOL];
	struct pair pr;
	uint64_t seq = 1, bytes = 0, t0, t1;

	for (int i = 0; i < POOL; i++)
		plen[i] = size ? ft_recgen_sized(7, (uint64_t)i + 1, size, pool[i]) :
				 ft_recgen(7, (uint64_t)i + 1, pool[i]);
	pair_start(&pr, psk);
	while (!pr.w.cons->acked_seq && ft_now_us()) {	/* wait for the session */
		struct kvm_ft_rec *h = (struct kvm_ft_rec *)pool[0];

		if (seq == 1 && !ft_ring_append(&pr.w, h, plen[0])) {
			seq++;
			bytes += plen[0];
			kick(&pr);
		}
		drain(&pr);
		usleep(1000);
	}
	t0 = ft_now_us();
	while (pr.w.cons->acked_seq < n) {
		while (seq <= n) {
			struct kvm_ft_rec *h = (struct kvm_ft_rec *)pool[seq % POOL];

			h->seq = seq;
			if (ft_ring_append(&pr.w, h, plen[seq % POOL]))
				break;
			bytes += plen[seq % POOL];
			seq++;
		}
		kick(&pr);
		drain(&pr);
		usleep(50);	/* leave the CPUs to the two channel processes */
	}
	t1 = ft_now_us();
	*rps = (double)(n - 1) * 1e6 / (double)(t1 - t0);
	*mbps = (double)bytes / (double)(t1 - t0);
	pair_stop(&pr);
}

static uint64_t ack_rtt(const uint8_t psk[32], int iters, uint64_t *p99)
{
	struct pair pr;
	uint8_t rec[FT_RECGEN_MAX];
	uint64_t *t = calloc((size_t)iters, sizeof(*t)), med;

	pair_start(&pr, psk);
	for (int i = 0; i < iters + 50; i++) {
		uint32_t len = ft_recgen_sized(9, (uint64_t)i + 1, 64, rec);
		uint64_t s = ft_now_us();

		ft_ring_append(&pr.w, rec, len);
		kick(&pr);
		/* sleep-poll: a spinning parent would steal a CPU from the pair */
		while (pr.w.cons->acked_seq < (uint64_t)i + 1 && ft_now_us() - s < 2000000)
			usleep(5);
		if (i >= 50)	/* the first ones include the handshake */
			t[i - 50] = ft_now_us() - s;
		drain(&pr);
	}
	pair_stop(&pr);
	qsort(t, (size_t)iters, sizeof(*t), cmp_u64);
	med = t[iters / 2];
	*p99 = t[iters * 99 / 100];
	free(t);
	return med;
}

static int tcp_pair(pid_t *child, bool echo, size_t chunk)
{
	uint16_t port = 0;
	int l = tcp_listen(&port), one = 1, fd;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons(port) };

	fcntl(l, F_SETFL, 0);
	*child = fork();
	if (*child == 0) {
		char *buf = malloc(chunk);
		int c = accept(l, NULL, NULL);
		ssize_t n;

		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		while ((n = read(c, buf, chunk)) > 0)
			if (echo && write(c, buf, (size_t)n) != n)
				break;
		_exit(0);
	}
	close(l);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		exit(2);
	return fd;
}

static double raw_stream(uint64_t bytes)
{
	static char buf[256 << 10];
	pid_t pid;
	int fd = tcp_pair(&pid, false, sizeof(buf));
	uint64_t t0 = ft_now_us(), sent = 0, t1;

	while (sent < bytes) {
		ssize_t n = write(fd, buf, sizeof(buf));

		if (n <= 0)
			break;
		sent += (uint64_t)n;
	}
	shutdown(fd, SHUT_WR);
	waitpid(pid, NULL, 0);	/* the reader has consumed everything */
	t1 = ft_now_us();
	close(fd);
	return (double)sent / (double)(t1 - t0);
}

static uint64_t raw_pingpong(int iters, uint64_t *p99)
{
	char msg[64] = { 0 };
	pid_t pid;
	int fd = tcp_pair(&pid, true, sizeof(msg));
	uint64_t *t = calloc((size_t)iters, sizeof(*t)), med;

	for (int i = 0; i < iters + 50; i++) {
		uint64_t s = ft_now_us();

		if (write(fd, msg, sizeof(msg)) != sizeof(msg) ||
		    recv(fd, msg, sizeof(msg), MSG_WAITALL) != sizeof(msg))
			exit(2);
		if (i >= 50)
			t[i - 50] = ft_now_us() - s;
	}
	close(fd);
	waitpid(pid, NULL, 0);
	qsort(t, (size_t)iters, sizeof(*t), cmp_u64);
	med = t[iters / 2];
	*p99 = t[iters * 99 / 100];
	free(t);
	return med;
}

int main(void)
{
	uint8_t psk[32];
	double rps_mix, mb_mix, rps_4k, mb_4k, raw_mb;
	uint64_t ch_med, ch_p99, tcp_med, tcp_p99;
	const uint64_t nmix = 1000000, n4k = 100000;

	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_TIMERSLACK, 1UL);	/* inherited by the children: precise short sleeps */
	ft_crypto_init();
	randombytes_buf(psk, sizeof(psk));
	printf("bench_channel: 2 processes on loopback, PSK handshake, XChaCha20-Poly1305 + CRC32C per frame\n");
	throughput(psk, 0, nmix, &rps_mix, &mb_mix);
	throughput(psk, 4096, n4k, &rps_4k, &mb_4k);
	raw_mb = raw_stream(1ULL << 30);
	ch_med = ack_rtt(psk, 2000, &ch_p99);
	tcp_med = raw_pingpong(2000, &tcp_p99);
	printf("  throughput, mixed records (avg %.0f B): %10.0f records/s %8.1f MB/s\n",
	       mb_mix * 1e6 / rps_mix, rps_mix, mb_mix);
	printf("  throughput, 4 KiB records:              %10.0f records/s %8.1f MB/s\n", rps_4k, mb_4k);
	printf("  raw loopback TCP stream (no framing/crypto):                %8.1f MB/s\n", raw_mb);
	printf("  ratio channel/raw TCP bytes/s: mixed %.2f, 4 KiB %.2f\n", mb_mix / raw_mb, mb_4k / raw_mb);
	printf("  ack RTT (append -> ack in consumer page): median %llu us, p99 %llu us\n",
	       (unsigned long long)ch_med, (unsigned long long)ch_p99);
	printf("  raw TCP ping-pong, 64 B:                  median %llu us, p99 %llu us\n",
	       (unsigned long long)tcp_med, (unsigned long long)tcp_p99);
	printf("  ratio ack RTT / TCP ping-pong: median %.2f, p99 %.2f\n",
	       (double)ch_med / (double)tcp_med, (double)ch_p99 / (double)tcp_p99);
	return 0;
}
