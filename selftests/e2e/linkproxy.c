// SPDX-License-Identifier: GPL-2.0
/*
 * linkproxy: the logging link between the two test hosts, on the real
 * machine. Each host's QEMU connects its `-netdev socket,connect=` to one of
 * the proxy's two loopback ports; the proxy forwards QEMU's frames (a 4-byte
 * big-endian length, then the Ethernet frame) from one host to the other.
 * Because it sees whole frames it can drop them on command, which is how a
 * scenario cuts the link while both hosts stay alive (QEMU's own sockets stay
 * connected, so neither host notices anything but silence).
 *
 *   linkproxy PORTFILE CTLFIFO
 *
 * Binds two free ports on 127.0.0.1 and writes "PORT_A PORT_B" to PORTFILE.
 * Commands, one per line on CTLFIFO (opened read-write, so writers may come
 * and go):
 *   cut [a2b|b2a]   drop every frame (both directions, or one)
 *   heal            forward everything again
 *   loss PERCENT    drop that share of frames at random (both directions)
 *   stats           print the frame counters
 *   gaps on         start measuring the silences of each direction (again)
 *   gaps off        stop; print this window's longest silence per direction
 *   gaps            print every window's silences so far, as a histogram
 * While measuring, a silence of SILENCE_LOG_MS or more is logged when it ends.
 * Every command and connection is logged on stdout with a timestamp.
 * A host that reconnects (a restarted QEMU) replaces its old connection.
 *
 * A silence is the time between two forwarded frames of one direction that
 * carry TCP payload (ftd's channel: heartbeats, records, acks), measured
 * here as the frames leave the sender's QEMU: what the receiving ftd sees,
 * less its own host's scheduling delays. Pure TCP acks, ARP and pings do
 * not end a silence (the receiving ftd would not see them).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_FRAME	(69632 + 4)	/* QEMU's NET_BUFSIZE plus the length word */

/* Upper bounds (ms) of the silence histogram's buckets; the last is open. */
static const unsigned int gap_le_ms[] = { 50, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000 };
#define GAP_BUCKETS	(sizeof(gap_le_ms) / sizeof(gap_le_ms[0]) + 1)
#define SILENCE_LOG_MS	500

struct side {
	const char *name;
	int lfd, fd;
	bool cut;			/* drop frames arriving from this side */
	unsigned long fwd, dropped;
	uint64_t last_data_us;		/* last payload frame from this side, 0: none this window */
	uint64_t win_max_us, max_us;	/* longest silence: this window, all windows */
	unsigned long gaps[GAP_BUCKETS];
};

static unsigned int loss_pct;
static bool gaps_on;

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
	struct timespec ts;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	printf("%lld.%03ld linkproxy: ", (long long)ts.tv_sec, ts.tv_nsec / 1000000);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static int listen_any(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 2) ||
	    getsockname(fd, (struct sockaddr *)&a, &len)) {
		perror("linkproxy: listen");
		exit(1);
	}
	*port = ntohs(a.sin_port);
	return fd;
}

static void drop_conn(struct side *s, const char *why)
{
	if (s->fd < 0)
		return;
	logf_("host %s disconnected (%s)", s->name, why);
	close(s->fd);
	s->fd = -1;
}

/* Read exactly len bytes; false on EOF or error. */
static bool read_full(int fd, void *buf, size_t len)
{
	ssize_t r = recv(fd, buf, len, MSG_WAITALL);

	return r == (ssize_t)len;
}

static bool write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		len -= (size_t)w;
	}
	return true;
}

static const char *peer_name(const struct side *s)
{
	return s->name[0] == 'A' ? "B" : "A";
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* True iff the Ethernet frame is IPv4 TCP with a payload. */
static bool tcp_payload(const unsigned char *f, uint32_t len)
{
	uint32_t ihl, tot, doff;

	if (len < 14 + 20 || f[12] != 0x08 || f[13] != 0x00 || (f[14] >> 4) != 4 || f[23] != 6)
		return false;
	ihl = (f[14] & 0xfu) * 4;
	tot = (uint32_t)f[16] << 8 | f[17];
	if (len < 14 + ihl + 20 || tot > len - 14)
		return false;
	doff = (uint32_t)(f[14 + ihl + 12] >> 4) * 4;
	return tot > ihl + doff;
}

/* A payload frame from s was forwarded: the silence before it ends. */
static void gap_note(struct side *s)
{
	uint64_t t = now_us(), g;
	size_t b = 0;

	if (s->last_data_us) {
		g = t - s->last_data_us;
		while (b < GAP_BUCKETS - 1 && g > gap_le_ms[b] * 1000ULL)
			b++;
		s->gaps[b]++;
		if (g > s->win_max_us)
			s->win_max_us = g;
		if (g > s->max_us)
			s->max_us = g;
		if (g >= SILENCE_LOG_MS * 1000ULL)
			logf_("silence %s->%s %llu ms", s->name, peer_name(s),
			      (unsigned long long)(g / 1000));
	}
	s->last_data_us = t;
}

static void gaps_print(const struct side *s)
{
	char h[256];
	size_t o = 0;

	for (size_t b = 0; b < GAP_BUCKETS; b++)
		o += (size_t)snprintf(h + o, sizeof(h) - o, b < GAP_BUCKETS - 1 ? " <=%u:%lu" : " >%u:%lu",
				      gap_le_ms[b < GAP_BUCKETS - 1 ? b : b - 1], s->gaps[b]);
	logf_("gaps %s->%s ms:%s max %llu", s->name, peer_name(s), h,
	      (unsigned long long)(s->max_us / 1000));
}

/* One frame from `from`, forwarded to `to` unless cut, lost or unconnected. */
static void relay(struct side *from, struct side *to)
{
	static unsigned char buf[MAX_FRAME];
	uint32_t len;

	if (!read_full(from->fd, buf, 4)) {
		drop_conn(from, "eof");
		return;
	}
	memcpy(&len, buf, 4);
	len = ntohl(len);
	if (len > MAX_FRAME - 4) {
		drop_conn(from, "oversized frame");
		return;
	}
	if (!read_full(from->fd, buf + 4, len)) {
		drop_conn(from, "eof in a frame");
		return;
	}
	if (from->cut || to->fd < 0 || (loss_pct && (unsigned int)(random() % 100) < loss_pct)) {
		from->dropped++;
		return;
	}
	if (!write_full(to->fd, buf, len + 4)) {
		drop_conn(to, "write failed");
		from->dropped++;
		return;
	}
	from->fwd++;
	if (gaps_on && tcp_payload(buf + 4, len))
		gap_note(from);
}

static void command(char *line, struct side *a, struct side *b)
{
	char *nl = strchr(line, '\n');

	if (nl)
		*nl = 0;
	if (!strcmp(line, "cut")) {
		a->cut = b->cut = true;
	} else if (!strcmp(line, "cut a2b")) {
		a->cut = true;
	} else if (!strcmp(line, "cut b2a")) {
		b->cut = true;
	} else if (!strcmp(line, "heal")) {
		a->cut = b->cut = false;
		loss_pct = 0;
	} else if (!strncmp(line, "loss ", 5) && atoi(line + 5) >= 0 && atoi(line + 5) <= 100) {
		loss_pct = (unsigned int)atoi(line + 5);
	} else if (!strcmp(line, "gaps on")) {
		gaps_on = true;
		a->last_data_us = b->last_data_us = a->win_max_us = b->win_max_us = 0;
	} else if (!strcmp(line, "gaps off")) {
		if (!gaps_on) {
			logf_("gaps off: not measuring");
			return;
		}
		gaps_on = false;
		logf_("gaps off: longest silence this window A->B %llu ms, B->A %llu ms",
		      (unsigned long long)(a->win_max_us / 1000), (unsigned long long)(b->win_max_us / 1000));
		return;
	} else if (!strcmp(line, "gaps")) {
		gaps_print(a);
		gaps_print(b);
		return;
	} else if (strcmp(line, "stats")) {
		logf_("unknown command '%s' (cut [a2b|b2a], heal, loss PERCENT, stats, gaps [on|off])", line);
		return;
	}
	logf_("%s: a->b %s fwd %lu dropped %lu, b->a %s fwd %lu dropped %lu, loss %u%%", line,
	      a->cut ? "cut" : "open", a->fwd, a->dropped, b->cut ? "cut" : "open", b->fwd, b->dropped,
	      loss_pct);
}

int main(int argc, char **argv)
{
	struct side s[2] = { { .name = "A", .fd = -1 }, { .name = "B", .fd = -1 } };
	char line[128];
	size_t have = 0;
	uint16_t pa, pb;
	FILE *pf;
	int ctl;

	if (argc != 3) {
		fprintf(stderr, "usage: linkproxy PORTFILE CTLFIFO\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	srandom((unsigned int)getpid());
	ctl = open(argv[2], O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		fprintf(stderr, "linkproxy: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	s[0].lfd = listen_any(&pa);
	s[1].lfd = listen_any(&pb);
	pf = fopen(argv[1], "w");
	if (!pf || fprintf(pf, "%u %u\n", pa, pb) < 0 || fclose(pf)) {
		fprintf(stderr, "linkproxy: cannot write %s\n", argv[1]);
		return 1;
	}
	logf_("listening on 127.0.0.1:%u (host A) and 127.0.0.1:%u (host B)", pa, pb);

	for (;;) {
		struct pollfd p[5] = {
			{ .fd = s[0].lfd, .events = POLLIN }, { .fd = s[1].lfd, .events = POLLIN },
			{ .fd = s[0].fd, .events = POLLIN }, { .fd = s[1].fd, .events = POLLIN },
			{ .fd = ctl, .events = POLLIN },
		};

		if (poll(p, 5, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("linkproxy: poll");
			return 1;
		}
		for (int i = 0; i < 2; i++) {
			if (p[i].revents & POLLIN) {
				int fd = accept4(s[i].lfd, NULL, NULL, SOCK_CLOEXEC);

				if (fd < 0)
					continue;
				drop_conn(&s[i], "replaced by a new connection");
				s[i].fd = fd;
				logf_("host %s connected", s[i].name);
			}
		}
		for (int i = 0; i < 2; i++)
			if (s[i].fd >= 0 && p[2 + i].fd == s[i].fd && p[2 + i].revents)
				relay(&s[i], &s[1 - i]);
		if (p[4].revents & POLLIN) {
			ssize_t r = read(ctl, line + have, sizeof(line) - 1 - have);
			char *nl;

			if (r <= 0)
				continue;
			have += (size_t)r;
			line[have] = 0;
			while ((nl = strchr(line, '\n'))) {
				char cmd[128];
				size_t n = (size_t)(nl - line) + 1;

				memcpy(cmd, line, n);
				cmd[n] = 0;
				command(cmd, &s[0], &s[1]);
				memmove(line, nl + 1, have - n + 1);
				have -= n;
			}
			if (have == sizeof(line) - 1)
				have = 0;	/* an over-long line: forget it */
		}
	}
}
