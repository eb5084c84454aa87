// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "chanproc.h"
#include "frame.h"
#include "log.h"

int tcp_listen(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons(*port) };
	socklen_t sl = sizeof(sa);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 16))
		return -1;
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	*port = ntohs(sa.sin_port);
	return fd;
}

void *shared_page(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		exit(2);
	memset(p, 0, 4096);
	return p;
}

static void redirect_stderr(const char *path)
{
	int fd;

	if (!path)
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dup2(fd, 2);
		close(fd);
	}
}

static uint64_t rss_kb(void)
{
	char line[256];
	unsigned long long kb = 0;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %llu", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

struct ep {
	struct ft_chan *chan;
	struct ep_shared *sh;
};

static int on_sample(sd_event_source *s, uint64_t usec, void *ud)
{
	struct ep *e = ud;
	struct ft_chan_stats st;
	uint64_t rss = rss_kb();

	ft_chan_get_stats(e->chan, &st);
	if (st.unacked_records > e->sh->max_unacked_records)
		e->sh->max_unacked_records = st.unacked_records;
	if (st.unacked_bytes > e->sh->max_unacked_bytes)
		e->sh->max_unacked_bytes = st.unacked_bytes;
	if (rss > e->sh->max_rss_kb)
		e->sh->max_rss_kb = rss;
	e->sh->window_full = st.window_full;
	e->sh->ring_full = st.ring_full;
	e->sh->sessions = st.sessions;
	e->sh->rejects = st.rejects;
	e->sh->records = st.records;
	e->sh->ack_rtt_us = st.ack_rtt_us;
	e->sh->acked = st.acked_seq;
	e->sh->up = st.state == FT_CHAN_UP;
	sd_event_source_set_time(s, usec + 1000);
	return 0;
}

pid_t spawn_endpoint(const struct ep_args *a)
{
	pid_t pid = fork();

	if (pid)
		return pid;
	redirect_stderr(a->log_path);
	ft_log_init(a->sender ? "primary" : "backup", 0, LOG_INFO);
	ft_crypto_init();

	struct ft_ring ring;
	struct ft_chan_cfg cfg = {
		.node_id = a->node_id, .epoch = a->epoch, .sender = a->sender,
		.listen_fd = a->listen_fd, .ring = &ring,
		.max_unacked_records = a->max_unacked_records,
		.max_unacked_bytes = a->max_unacked_bytes,
		.backoff_min_us = 10000, .backoff_max_us = 200000, .ring_poll_us = a->ring_poll_us,
		.ring_notify_fd = a->notify_efd, .ring_notify_eventfd = true,
		.hello_flags = a->hello_flags,
	};
	struct sockaddr_in *sa = (struct sockaddr_in *)&cfg.peer;
	struct ep e = { .sh = a->sh };
	sd_event *ev;
	sigset_t ss;
	int ret;

	memcpy(cfg.psk, a->psk, FT_PSK_LEN);
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa->sin_port = htons(a->port);
	cfg.peer_len = sizeof(*sa);
	if (ft_ring_map(&ring, a->ring_fd, !a->sender))
		_exit(10);
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	sd_event_default(&ev);
	sd_event_add_signal(ev, NULL, SIGTERM, NULL, NULL);
	ret = ft_chan_new(ev, &cfg, NULL, NULL, &e.chan);
	if (ret) {
		fprintf(stderr, "ft_chan_new: %s\n", strerror(-ret));
		_exit(11);
	}
	if (a->sh) {
		sd_event_source *t;

		sd_event_add_time(ev, &t, CLOCK_MONOTONIC, 0, 1000, on_sample, &e);
		sd_event_source_set_enabled(t, SD_EVENT_ON);
	}
	sd_event_loop(ev);
	ft_chan_free(e.chan);
	_exit(0);
}

int stop_child(pid_t pid)
{
	int status = 0;

	kill(pid, SIGCONT);
	kill(pid, SIGTERM);
	for (int i = 0; i < 200; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return status;
}

int count_lines(const char *path, const char *needle)
{
	char line[2048];
	int n = 0;
	FILE *f = fopen(path, "r");

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return n;
}

/* ---- the proxy ---- */

struct dir {
	int from, to;
	uint8_t buf[FT_FRAME_MAX + 4096];
	size_t len;
};

struct px {
	enum proxy_mode mode;
	int at, logs;
	bool done;
	uint8_t psk[FT_PSK_LEN];
	struct ft_hello hc, hs;
	uint64_t ec, es;
	uint8_t prev[FT_FRAME_MAX], old[FT_FRAME_MAX];
	size_t prev_len, old_len;
	uint64_t old_counter;
	int session;
};

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One complete frame client -> server. Returns -1 to end the connection. */
static int px_c2s(struct px *p, uint8_t *f, size_t len, int to)
{
	struct ft_frame_hdr *h = (void *)f;

	if (h->type == FT_F_HELLO && len == sizeof(*h) + sizeof(p->hc)) {
		memcpy(&p->hc, f + sizeof(*h), sizeof(p->hc));
		p->ec = h->epoch;
		p->session++;
	}
	if (p->mode == PX_XREPLAY && p->session == 2 && !p->done && p->old_len &&
	    h->type >= FT_F_LOG && h->counter == ((struct ft_frame_hdr *)p->old)->counter) {
		/* same frame number, previous session: only the key differs */
		p->done = true;
		return write_all(to, p->old, p->old_len);
	}
	if (h->type != FT_F_LOG)
		return write_all(to, f, len);
	if (p->mode == PX_XREPLAY && p->session == 1 && !p->old_len) {
		/* keep a frame of the first session, then end that session */
		memcpy(p->old, f, len);
		p->old_len = len;
		write_all(to, f, len);
		return -1;
	}
	if (p->done || p->mode == PX_XREPLAY || --p->at > 0) {
		memcpy(p->prev, f, len);
		p->prev_len = len;
		return write_all(to, f, len);
	}
	p->done = true;
	switch (p->mode) {
	case PX_FLIP:
		f[len / 2] ^= 0x20;
		return write_all(to, f, len);
	case PX_FORGE:	/* a corrupted frame with a valid CRC: only the AEAD can tell */
		f[len / 2] ^= 0x20;
		ft_seal_clear(f);
		return write_all(to, f, len);
	case PX_TRUNCATE:
		write_all(to, f, len / 2);
		return -1;
	case PX_REPLAY:
		if (write_all(to, f, len))
			return -1;
		return write_all(to, p->prev, p->prev_len);
	case PX_STALE: {
		struct ft_session_keys k;

		ft_session_derive(p->psk, &p->hc, p->ec, &p->hs, p->es, &k);
		if (ft_open(k.c2s, f))
			return -1;
		h->epoch -= 1;
		ft_seal(k.c2s, f, f + sizeof(*h), len - sizeof(*h) - FT_FRAME_TAG);
		return write_all(to, f, len);
	}
	default:
		return write_all(to, f, len);
	}
}

static int px_pump(struct px *p, struct dir *d, bool c2s)
{
	ssize_t n = read(d->from, d->buf + d->len, sizeof(d->buf) - d->len);

	if (n <= 0)
		return -1;
	d->len += (size_t)n;
	while (d->len >= sizeof(struct ft_frame_hdr)) {
		struct ft_frame_hdr *h = (void *)d->buf;
		size_t fl = h->len;

		if (fl < sizeof(*h) || fl > FT_FRAME_MAX)
			return -1;
		if (d->len < fl)
			break;
		if (!c2s && h->type == FT_F_HELLO_REPLY && fl == sizeof(*h) + sizeof(p->hs)) {
			memcpy(&p->hs, d->buf + sizeof(*h), sizeof(p->hs));
			p->es = h->epoch;
		}
		if ((c2s ? px_c2s(p, d->buf, fl, d->to) : write_all(d->to, d->buf, fl)))
			return -1;
		memmove(d->buf, d->buf + fl, d->len - fl);
		d->len -= fl;
	}
	return 0;
}

pid_t spawn_proxy(int listen_fd, uint16_t backend, enum proxy_mode mode, int at,
		  const uint8_t psk[FT_PSK_LEN], const char *log_path)
{
	pid_t pid = fork();

	if (pid)
		return pid;
	redirect_stderr(log_path);
	static struct px p;
	static struct dir up, down;

	p.mode = mode;
	p.at = at;
	memcpy(p.psk, psk, FT_PSK_LEN);
	fcntl(listen_fd, F_SETFL, 0);
	for (;;) {
		struct sockaddr_in sa = { .sin_family = AF_INET,
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
					  .sin_port = htons(backend) };
		int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (c < 0 || s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa))) {
			if (c >= 0)
				close(c);
			if (s >= 0)
				close(s);
			usleep(10000);
			continue;
		}
		up = (struct dir){ .from = c, .to = s };
		down = (struct dir){ .from = s, .to = c };
		for (;;) {
			struct pollfd pf[2] = { { c, POLLIN, 0 }, { s, POLLIN, 0 } };

			if (poll(pf, 2, -1) < 0)
				continue;
			if (pf[0].revents && px_pump(&p, &up, true))
				break;
			if (pf[1].revents && px_pump(&p, &down, false))
				break;
		}
		/* Close without a reset: let the backend see every byte sent. */
		shutdown(s, SHUT_WR);
		shutdown(c, SHUT_WR);
		for (;;) {
			struct pollfd pf = { s, POLLIN, 0 };
			char sink[4096];

			if (poll(&pf, 1, 500) <= 0 || read(s, sink, sizeof(sink)) <= 0)
				break;
		}
		close(c);
		close(s);
	}
}
