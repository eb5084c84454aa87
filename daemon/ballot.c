// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "arbiter.h"
#include "ballot.h"
#include "channel.h"

struct answer {
	int ret;
	unsigned int winner;
	uint64_t disk_epoch;	/* -ESTALE: the epoch on the disk */
	bool advanced;		/* handover: epoch + 1 names this node primary */
};

struct ft_ballot {
	sd_event *ev;
	char disk[4096];
	unsigned int node_id;
	uint64_t timeout_us;
	ft_ballot_done done;
	void *ctx;
	pid_t pid;			/* child alive (not reaped yet) */
	uint64_t disk_epoch;		/* from the last -ESTALE answer */
	bool advanced;			/* from the last handover answer */
	bool answered;			/* this round's callback ran */
	int fd;
	sd_event_source *io, *timer, *child;
};

static void finish(struct ft_ballot *b, int ret, unsigned int winner)
{
	if (b->answered)
		return;
	b->answered = true;
	sd_event_source_set_enabled(b->timer, SD_EVENT_OFF);
	b->io = sd_event_source_disable_unref(b->io);
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
	b->done(b->ctx, ret, winner);
}

static int on_answer(sd_event_source *s, int fd, uint32_t ev, void *ud)
{
	struct ft_ballot *b = ud;
	struct answer a;
	ssize_t n = read(fd, &a, sizeof(a));

	(void)s;
	(void)ev;
	if (n == sizeof(a)) {
		b->disk_epoch = a.disk_epoch;
		b->advanced = a.advanced;
		finish(b, a.ret, a.winner);
	}
	else
		finish(b, -EIO, 0);	/* the child died without an answer */
	return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *ud)
{
	struct ft_ballot *b = ud;

	(void)s;
	(void)usec;
	if (b->pid > 0)
		kill(b->pid, SIGKILL);	/* may stay in D state: reaped when it can */
	finish(b, -ETIMEDOUT, 0);
	return 0;
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *ud)
{
	struct ft_ballot *b = ud;

	(void)si;
	b->pid = 0;
	b->child = sd_event_source_unref(s);
	return 0;
}

int ft_ballot_new(sd_event *ev, const char *disk, unsigned int node_id,
		  uint64_t timeout_us, ft_ballot_done done, void *ctx, struct ft_ballot **out)
{
	struct ft_ballot *b = calloc(1, sizeof(*b));
	int ret;

	if (!b || strlen(disk) >= sizeof(b->disk)) {
		free(b);
		return -EINVAL;
	}
	b->ev = sd_event_ref(ev);
	strcpy(b->disk, disk);
	b->node_id = node_id;
	b->timeout_us = timeout_us;
	b->done = done;
	b->ctx = ctx;
	b->fd = -1;
	ret = sd_event_add_time(ev, &b->timer, CLOCK_MONOTONIC, 0, 1000, on_timeout, b);
	if (ret >= 0)
		ret = sd_event_source_set_enabled(b->timer, SD_EVENT_OFF);
	if (ret < 0) {
		ft_ballot_free(b);
		return ret;
	}
	*out = b;
	return 0;
}

void ft_ballot_free(struct ft_ballot *b)
{
	if (!b)
		return;
	if (b->pid > 0)
		kill(b->pid, SIGKILL);
	sd_event_source_disable_unref(b->io);
	sd_event_source_disable_unref(b->timer);
	sd_event_source_disable_unref(b->child);
	if (b->fd >= 0)
		close(b->fd);
	sd_event_unref(b->ev);
	free(b);
}

static void child(struct ft_ballot *b, uint64_t epoch, bool handover, int wfd)
{
	struct answer a = { 0 };
	struct ft_arb *arb;

	/*
	 * Forked without exec: drop every descriptor of ftd's but the answer
	 * pipe. A socket held here (the channel, the VMM's, the control socket,
	 * a listening port) would stay open after ftd closes it, for as long as
	 * this process lives (a hung disk: until the kernel lets it die), so
	 * the peer or the VMM would see no EOF and a port could not be bound again.
	 */
	if (wfd > 3)
		close_range(3, (unsigned int)wfd - 1, 0);
	close_range((unsigned int)wfd + 1, ~0U, 0);
	a.ret = ft_arb_open(b->disk, b->node_id, &arb);
	if (!a.ret) {
		a.ret = ft_arb_ballot_once(arb, epoch, &a.winner);
		/* Tell the loser sooner (liveness only; its own ballot decides). */
		if (!a.ret && a.winner == b->node_id && !handover)
			ft_arb_mailbox_write(arb, 3 - b->node_id, epoch, FT_ARB_MAIL_LOST, a.winner);
		/* Planned failover: the winner of epoch writes epoch + 1, itself primary. */
		if (!a.ret && a.winner == b->node_id && handover) {
			a.ret = ft_arb_advance_epoch(arb, epoch + 1, b->node_id, 3 - b->node_id);
			a.advanced = !a.ret;
		}
		if (a.ret == -ESTALE) {
			struct ft_arb_epoch e;

			if (!ft_arb_read_epoch(arb, &e)) {
				a.disk_epoch = e.epoch;
				/* an earlier round wrote it and its answer was lost */
				if (handover && e.epoch == epoch + 1 && e.primary == b->node_id) {
					a.ret = 0;
					a.winner = b->node_id;
					a.advanced = true;
				}
			}
		}
		ft_arb_close(arb);
	}
	if (write(wfd, &a, sizeof(a)) != sizeof(a))
		_exit(1);
	_exit(0);
}

static int start(struct ft_ballot *b, uint64_t epoch, bool handover)
{
	int p[2], ret;

	if (b->pid > 0)
		return -EBUSY;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	b->pid = fork();
	if (b->pid < 0) {
		ret = -errno;
		close(p[0]);
		close(p[1]);
		b->pid = 0;
		return ret;
	}
	if (b->pid == 0) {
		close(p[0]);
		child(b, epoch, handover, p[1]);
	}
	close(p[1]);
	b->fd = p[0];
	b->answered = false;
	b->advanced = false;
	ret = sd_event_add_io(b->ev, &b->io, b->fd, EPOLLIN, on_answer, b);
	if (ret >= 0)
		ret = sd_event_add_child(b->ev, &b->child, b->pid, WEXITED, on_child, b);
	if (ret >= 0)
		ret = sd_event_source_set_time(b->timer, ft_now_us() + b->timeout_us);
	if (ret >= 0)
		ret = sd_event_source_set_enabled(b->timer, SD_EVENT_ONESHOT);
	if (ret < 0) {
		kill(b->pid, SIGKILL);
		finish(b, ret, 0);
	}
	return 0;
}

int ft_ballot_start(struct ft_ballot *b, uint64_t epoch)
{
	return start(b, epoch, false);
}

int ft_ballot_start_handover(struct ft_ballot *b, uint64_t epoch)
{
	return start(b, epoch, true);
}

bool ft_ballot_advanced(const struct ft_ballot *b)
{
	return b->advanced;
}

uint64_t ft_ballot_disk_epoch(const struct ft_ballot *b)
{
	return b->disk_epoch;
}

int ft_ballot_read_decided(const char *disk, uint64_t epoch, unsigned int *winner)
{
	struct ft_arb *arb;
	int ret = ft_arb_open(disk, 0, &arb);

	if (ret)
		return ret;
	*winner = 0;
	ret = ft_arb_decided(arb, epoch, winner);
	ft_arb_close(arb);
	return ret;
}

int ft_ballot_read_epoch(const char *disk, uint64_t *epoch, unsigned int *primary)
{
	struct ft_arb *arb;
	struct ft_arb_epoch e;
	int ret = ft_arb_open(disk, 0, &arb);

	if (ret)
		return ret;
	ret = ft_arb_read_epoch(arb, &e);
	ft_arb_close(arb);
	if (!ret) {
		*epoch = e.epoch;
		*primary = e.primary;
	}
	return ret;
}
