// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "log.h"
#include "sock.h"
#include "status.h"

#define MAX_OUT (256 * 1024)

struct client {
	struct ft_status *s;
	struct client *next;
	int fd;
	sd_event_source *io;
	char in[128];
	size_t inlen;
	char *out;
	size_t outlen, outoff;
	bool follow, done;
};

struct ft_status {
	sd_event *ev;
	struct ft_node *node;
	int fd;
	sd_event_source *io;
	char path[108];
	struct client *clients;
};

static void client_free(struct client *c)
{
	struct client **p;

	for (p = &c->s->clients; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	sd_event_source_disable_unref(c->io);
	close(c->fd);
	free(c->out);
	free(c);
}

static void out_append(struct client *c, const char *buf, size_t len)
{
	char *n;

	if (c->outlen - c->outoff + len > MAX_OUT) {
		c->done = true;	/* a reader this slow is cut off, never waited for */
		c->follow = false;
		return;
	}
	if (c->outoff) {
		memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
		c->outlen -= c->outoff;
		c->outoff = 0;
	}
	n = realloc(c->out, c->outlen + len);
	if (!n)
		return;
	c->out = n;
	memcpy(c->out + c->outlen, buf, len);
	c->outlen += len;
}

static void put_event(struct client *c, const struct ft_event *e)
{
	char line[600];
	int n = snprintf(line, sizeof(line), "%llu %llu %d %s\n", (unsigned long long)e->seq,
			 (unsigned long long)e->realtime_ms, e->prio, e->line);

	out_append(c, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

/* Returns -1 when the client is gone. */
static int flush(struct client *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			client_free(c);
			return -1;
		}
		c->outoff += (size_t)n;
	}
	if (c->outoff == c->outlen && c->done && !c->follow) {
		client_free(c);
		return -1;
	}
	sd_event_source_set_io_events(c->io, (c->follow || !c->done ? EPOLLIN : 0) |
				      (c->outoff < c->outlen ? EPOLLOUT : 0));
	return 0;
}

static void request(struct client *c, const char *req)
{
	struct ft_node *n = c->s->node;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return;
	if (!n) {
		fprintf(f, "result=error\nerrno=%d\nmessage=ftd is starting\n", EAGAIN);
	} else if (!strcmp(req, "status")) {
		ft_node_status(n, f);
	} else if (!strcmp(req, "failover")) {
		char msg[300];
		uint64_t attempt = 0;
		int ret = ft_node_failover(n, &attempt, msg, sizeof(msg));

		if (ret)
			fprintf(f, "result=error\nerrno=%d\nmessage=%s\n", -ret, msg);
		else
			fprintf(f, "result=started\nattempt=%llu\n", (unsigned long long)attempt);
	} else if (!strcmp(req, "events") || !strcmp(req, "events follow")) {
		const struct ft_event *ev[FT_NODE_EVENTS];
		size_t k = ft_node_events(n, 0, ev, FT_NODE_EVENTS);

		fclose(f);
		f = NULL;
		for (size_t i = 0; i < k; i++)
			put_event(c, ev[i]);
		c->follow = req[6] == ' ';
	} else {
		fprintf(f, "result=error\nerrno=%d\nmessage=unknown request '%.40s'\n", EINVAL, req);
	}
	if (f) {
		fclose(f);
		out_append(c, buf, len);
	}
	free(buf);
	c->done = true;
}

static int on_client(sd_event_source *src, int fd, uint32_t ev, void *ud)
{
	struct client *c = ud;

	(void)src;
	if (ev & EPOLLIN) {
		ssize_t n = read(fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen);
		char *nl;

		if (n <= 0) {
			client_free(c);
			return 0;
		}
		if (c->done)	/* a follower only ever sends EOF */
			return 0;
		c->inlen += (size_t)n;
		c->in[c->inlen] = 0;
		nl = strchr(c->in, '\n');
		if (nl) {
			*nl = 0;
			request(c, c->in);
		} else if (c->inlen == sizeof(c->in) - 1) {
			client_free(c);
			return 0;
		}
	}
	flush(c);
	return 0;
}

static int on_accept(sd_event_source *src, int fd, uint32_t ev, void *ud)
{
	struct ft_status *s = ud;
	struct client *c;
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	(void)src;
	(void)ev;
	if (cfd < 0)
		return 0;
	c = calloc(1, sizeof(*c));
	if (!c || sd_event_add_io(s->ev, &c->io, cfd, EPOLLIN, on_client, c) < 0) {
		free(c);
		close(cfd);
		return 0;
	}
	c->s = s;
	c->fd = cfd;
	c->next = s->clients;
	s->clients = c;
	return 0;
}

int ft_status_new(sd_event *ev, const char *path, struct ft_status **out, char *err, size_t errlen)
{
	struct ft_status *s = calloc(1, sizeof(*s));
	int ret;

	if (!s || strlen(path) >= sizeof(s->path)) {
		free(s);
		snprintf(err, errlen, "status socket path too long");
		return -EINVAL;
	}
	strcpy(s->path, path);
	s->fd = ft_unix_listen(path, SOCK_STREAM, err, errlen);
	if (s->fd < 0) {
		ret = s->fd;
		free(s);
		return ret;
	}
	s->ev = sd_event_ref(ev);
	ret = sd_event_add_io(ev, &s->io, s->fd, EPOLLIN, on_accept, s);
	if (ret < 0) {
		snprintf(err, errlen, "sd-event: %s", strerror(-ret));
		close(s->fd);
		unlink(s->path);
		sd_event_unref(s->ev);
		free(s);
		return ret;
	}
	*out = s;
	return 0;
}

void ft_status_set_node(struct ft_status *s, struct ft_node *n)
{
	s->node = n;
}

void ft_status_event(struct ft_status *s, const struct ft_event *e)
{
	struct client *c, *next;

	for (c = s->clients; c; c = next) {
		next = c->next;
		if (c->follow) {
			put_event(c, e);
			flush(c);
		}
	}
}

void ft_status_free(struct ft_status *s)
{
	if (!s)
		return;
	while (s->clients)
		client_free(s->clients);
	sd_event_source_disable_unref(s->io);
	close(s->fd);
	unlink(s->path);
	sd_event_unref(s->ev);
	free(s);
}
