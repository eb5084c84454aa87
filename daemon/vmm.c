// SPDX-License-Identifier: GPL-2.0
/* The VMM socket: see vmm.h and ftd_vmm.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "log.h"
#include "sock.h"
#include "vmm.h"

#define OUTQ 32

struct ft_vmm {
	sd_event *ev;
	struct ft_vmm_ops ops;
	void *ctx;
	bool allow_files;
	char path[108];
	int lfd, fd;
	sd_event_source *lio, *io;
	enum ft_vmm_state state;
	uint32_t role;
	char name[32];
	struct ftd_vmm_msg outq[OUTQ];
	unsigned int qlen;
	bool closing, live;
	bool pausing;		/* PAUSE sent, PAUSED not yet received */
	bool pause_dropped;	/* RESUME sent before PAUSED came: a late PAUSED is ignored */
	bool reattaching;	/* RESUME in the other role sent: the VM exists, ATTACHED comes */
	bool snapshotting;	/* SNAPSHOT sent, SNAPSHOT_READY not yet received */
	uint64_t emitted, acked_sent, refused;
};

static const char *type_name(uint32_t t)
{
	static const char *const n[] = {
		[FTD_VMM_HELLO] = "HELLO", [FTD_VMM_ROLE] = "ROLE", [FTD_VMM_ATTACHED] = "ATTACHED",
		[FTD_VMM_ACKED] = "ACKED", [FTD_VMM_EMITTED] = "EMITTED", [FTD_VMM_GO_LIVE] = "GO_LIVE",
		[FTD_VMM_HALT] = "HALT", [FTD_VMM_PAUSE] = "PAUSE", [FTD_VMM_PAUSED] = "PAUSED",
		[FTD_VMM_RESUME] = "RESUME", [FTD_VMM_SNAPSHOT] = "SNAPSHOT",
		[FTD_VMM_SNAPSHOT_READY] = "SNAPSHOT_READY", [FTD_VMM_SEED] = "SEED",
	};

	return t >= FTD_VMM_HELLO && t <= FTD_VMM_SEED ? n[t] : "unknown";
}

const char *ft_vmm_state_name(enum ft_vmm_state st)
{
	static const char *const n[] = {
		[FT_VMM_NONE] = "none", [FT_VMM_HELLO] = "connected", [FT_VMM_WAIT_SEED] = "waiting-seed",
		[FT_VMM_ROLE] = "role-sent",
		[FT_VMM_ATTACHED] = "attached", [FT_VMM_LOST] = "lost",
	};

	return st <= FT_VMM_LOST ? n[st] : "unknown";
}

static void disconnect(struct ft_vmm *v)
{
	v->io = sd_event_source_disable_unref(v->io);
	if (v->fd >= 0)
		close(v->fd);
	v->fd = -1;
	v->qlen = 0;
	v->closing = false;
}

/* The connection ends. An attached VMM going away is the loss of the local VM. */
static void drop(struct ft_vmm *v, int prio, const char *reason, const char *why)
{
	/* a VMM ftd told to halt is gone as asked, not lost */
	bool was_attached = (v->state == FT_VMM_ATTACHED || v->reattaching) && strcmp(reason, "vmm-halted");

	ft_log(prio, &(struct ft_log_fields){ .reason = reason },
	       "vmm: %s%s%s; connection closed", v->name[0] ? v->name : "VMM", v->name[0] ? ": " : " ", why);
	disconnect(v);
	if (strcmp(reason, "vmm-closed") && strcmp(reason, "vmm-halted"))
		v->refused++;
	v->state = was_attached ? FT_VMM_LOST : FT_VMM_NONE;
	if (was_attached && v->ops.lost)
		v->ops.lost(v->ctx, why);
}

__attribute__((format(printf, 3, 4)))
static int refuse(struct ft_vmm *v, const char *reason, const char *fmt, ...)
{
	char why[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	drop(v, LOG_WARNING, reason, why);
	return -1;
}

static void set_events(struct ft_vmm *v)
{
	if (v->io)
		sd_event_source_set_io_events(v->io, EPOLLIN | (v->qlen ? EPOLLOUT : 0));
}

/* Send what is queued; -1 if the connection was dropped. */
static int flush(struct ft_vmm *v)
{
	unsigned int done = 0;

	while (done < v->qlen) {
		ssize_t n = send(v->fd, &v->outq[done], sizeof(v->outq[0]), MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n != sizeof(v->outq[0]))
			return refuse(v, "vmm-io", "send failed: %s", n < 0 ? strerror(errno) : "short");
		if (v->outq[done].type == FTD_VMM_ACKED)
			v->acked_sent = v->outq[done].seq;
		done++;
	}
	memmove(v->outq, v->outq + done, (v->qlen - done) * sizeof(v->outq[0]));
	v->qlen -= done;
	if (!v->qlen && v->closing) {
		drop(v, LOG_NOTICE, "vmm-halted", "told to halt");
		return -1;
	}
	set_events(v);
	return 0;
}

int ft_vmm_send(struct ft_vmm *v, uint32_t type, uint64_t seq, uint64_t epoch, uint32_t role)
{
	struct ftd_vmm_msg m = { .type = type, .seq = seq, .epoch = epoch, .role = role };

	if (!v || v->fd < 0 || v->closing)
		return -ENOTCONN;
	if (type == FTD_VMM_GO_LIVE)
		v->live = true;	/* outputs no longer wait for acks */
	if (type == FTD_VMM_PAUSE)
		v->pausing = true;
	if (type == FTD_VMM_SNAPSHOT)
		v->snapshotting = true;
	if (type == FTD_VMM_RESUME) {
		v->pause_dropped = v->pausing;
		v->pausing = false;
		if (role != v->role) {
			/* the roles swap: the VMM re-attaches in the new mode, a new log */
			v->role = role;
			v->state = FT_VMM_ROLE;
			v->reattaching = true;
			v->emitted = v->acked_sent = 0;
		}
	}
	if (type == FTD_VMM_ACKED && v->qlen && v->outq[v->qlen - 1].type == FTD_VMM_ACKED) {
		v->outq[v->qlen - 1].seq = seq;	/* coalesced: only the newest matters */
		return 0;
	}
	if (v->qlen == OUTQ) {
		refuse(v, "vmm-slow", "%u messages unread: the VMM does not read its socket", OUTQ);
		return -ENOTCONN;
	}
	v->outq[v->qlen++] = m;
	return flush(v) ? -ENOTCONN : 0;
}

int ft_vmm_seed(struct ft_vmm *v, int memfd, uint64_t len, uint64_t epoch)
{
	struct ftd_vmm_msg m = { .type = FTD_VMM_SEED, .seq = len, .epoch = epoch,
				 .role = FTD_VMM_ROLE_BACKUP };
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = { &m, sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cm,
			     .msg_controllen = sizeof(cm) };

	if (!v || v->fd < 0 || v->closing || v->state != FT_VMM_WAIT_SEED || v->qlen)
		return -ENOTCONN;
	CMSG_FIRSTHDR(&mh)->cmsg_level = SOL_SOCKET;
	CMSG_FIRSTHDR(&mh)->cmsg_type = SCM_RIGHTS;
	CMSG_FIRSTHDR(&mh)->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(CMSG_FIRSTHDR(&mh)), &memfd, sizeof(int));
	if (sendmsg(v->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) != sizeof(m)) {
		int e = errno;

		refuse(v, "vmm-io", "SEED: send failed: %s", strerror(e));
		return -e;
	}
	/* the VM exists from here: losing this VMM is losing it */
	v->role = FTD_VMM_ROLE_BACKUP;
	v->state = FT_VMM_ROLE;
	v->reattaching = true;
	ft_log(LOG_INFO, &(struct ft_log_fields){ .epoch = epoch },
	       "vmm: %s: SEED sent (a snapshot of %llu bytes); it builds the backup's VM from it", v->name,
	       (unsigned long long)len);
	return 0;
}

void ft_vmm_close(struct ft_vmm *v)
{
	if (!v || v->fd < 0)
		return;
	v->closing = true;
	flush(v);
}

/* What the fd is: an ft fd (KVM_FT_GET_INFO) or, if allowed, a ring file. */
static int ring_info(struct ft_vmm *v, int fd, struct kvm_ft_info *info, const char **what)
{
	struct stat sb;

	memset(info, 0, sizeof(*info));
	if (ioctl(fd, KVM_FT_GET_INFO, info) == 0) {
		*what = "ft fd";
		return 0;
	}
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || !v->allow_files) {
		*what = S_ISREG(sb.st_mode) ? "a ring file (vmm_file_rings is off)" : "not an ft fd";
		return -EINVAL;
	}
	struct kvm_ft_ring_producer p;
	struct kvm_ft_replay_status st;
	long page = sysconf(_SC_PAGESIZE);

	*what = "ring file";
	if (pread(fd, &p, sizeof(p), KVM_FT_MMAP_PRODUCER_OFF) != sizeof(p) ||
	    pread(fd, &st, sizeof(st), KVM_FT_MMAP_REPLAY_STATUS_OFF) != sizeof(st))
		return -EINVAL;
	if (p.magic == KVM_FT_RING_MAGIC) {
		info->mode = KVM_FT_MODE_RECORD;
		info->api_version = p.api_version;
		info->ring_order = p.ring_order;
	} else if (st.magic == KVM_FT_REPLAY_MAGIC) {
		info->mode = KVM_FT_MODE_REPLAY;
		info->api_version = st.api_version;
		info->ring_order = st.ring_order;
	} else {
		*what = "a file that is not a ring";
		return -EINVAL;
	}
	if (info->ring_order < KVM_FT_RING_ORDER_MIN || info->ring_order > KVM_FT_RING_ORDER_MAX)
		return -EINVAL;
	info->page_size = (uint32_t)page;
	info->data_size = 1ULL << info->ring_order;
	info->consumer_off = KVM_FT_MMAP_CONSUMER_OFF;
	info->producer_off = KVM_FT_MMAP_PRODUCER_OFF;
	info->producer_len = (uint64_t)page + info->data_size;
	info->flags = FT_VMM_INFO_F_FILE;
	return 0;
}

static int on_attached(struct ft_vmm *v, int rfd)
{
	static const char *const modes[] = { "?", "record", "replay", "live" };
	uint32_t want = v->role == FTD_VMM_ROLE_PRIMARY ? KVM_FT_MODE_RECORD : KVM_FT_MODE_REPLAY;
	struct kvm_ft_info info;
	const char *what = "?";
	char why[200] = "";
	int ret;

	if (ring_info(v, rfd, &info, &what)) {
		close(rfd);
		return refuse(v, "vmm-bad-fd", "ATTACHED fd is %s", what);
	}
	if (info.api_version != KVM_FT_API_VERSION) {
		close(rfd);
		return refuse(v, "vmm-bad-fd", "%s of API version %u, ftd speaks %u", what, info.api_version,
			      KVM_FT_API_VERSION);
	}
	if (info.mode != want) {
		close(rfd);
		return refuse(v, "vmm-bad-mode", "%s is in mode %s, the %s role needs %s", what,
			      modes[info.mode <= 3 ? info.mode : 0],
			      v->role == FTD_VMM_ROLE_PRIMARY ? "primary" : "backup", modes[want]);
	}
	if (info.flags & KVM_FT_INFO_F_DETACHED) {
		close(rfd);
		return refuse(v, "vmm-bad-fd", "%s is detached already", what);
	}
	ret = v->ops.attached ? v->ops.attached(v->ctx, rfd, &info, why, sizeof(why)) : -ENOSYS;
	if (ret) {
		close(rfd);
		return refuse(v, "vmm-bad-fd", "%s refused: %s", what, why[0] ? why : strerror(-ret));
	}
	v->state = FT_VMM_ATTACHED;
	ft_log(LOG_NOTICE, &(struct ft_log_fields){ .reason = "vmm-attached" },
	       "vmm: %s %sattached (%s, %s mode, ring of %llu KiB)", v->name, v->reattaching ? "re-" : "",
	       what, modes[info.mode], (unsigned long long)info.data_size >> 10);
	v->reattaching = false;
	return 0;
}

static int on_hello(struct ft_vmm *v, const struct ftd_vmm_msg *m)
{
	char why[200] = "";
	uint64_t epoch = 0;
	uint32_t role = 0;
	int ret;

	if (m->version != FTD_VMM_VERSION)
		return refuse(v, "vmm-bad-version", "HELLO of protocol version %u, ftd speaks %u", m->version,
			      FTD_VMM_VERSION);
	if (!memchr(m->name, 0, sizeof(m->name)) || !m->name[0])
		return refuse(v, "vmm-bad-message", "HELLO without a NUL-terminated VM name");
	for (const char *c = m->name; *c; c++)
		if (*c < 0x21 || *c > 0x7e)
			return refuse(v, "vmm-bad-message", "HELLO: the VM name has a non-printable byte");
	snprintf(v->name, sizeof(v->name), "%s", m->name);
	ret = v->ops.hello ? v->ops.hello(v->ctx, v->name, &role, &epoch, why, sizeof(why)) : -ENOSYS;
	if (ret == 1) {
		v->state = FT_VMM_WAIT_SEED;
		ft_log(LOG_INFO, &(struct ft_log_fields){ .epoch = epoch, .reason = "vmm-wait-seed" },
		       "vmm: %s said HELLO; %s", v->name, why);
		return 0;
	}
	if (ret) {
		ft_log(LOG_WARNING, &(struct ft_log_fields){ .epoch = epoch, .reason = "vmm-refused" },
		       "vmm: %s must not run here: %s; sending HALT", v->name, why);
		ft_vmm_send(v, FTD_VMM_HALT, 0, epoch, 0);
		ft_vmm_close(v);
		return -1;
	}
	v->role = role;
	v->state = FT_VMM_ROLE;
	ft_log(LOG_INFO, &(struct ft_log_fields){ .epoch = epoch },
	       "vmm: %s said HELLO; it runs as %s in epoch %llu", v->name,
	       role == FTD_VMM_ROLE_PRIMARY ? "primary (record)" : "backup (replay)",
	       (unsigned long long)epoch);
	return ft_vmm_send(v, FTD_VMM_ROLE, 0, epoch, role) ? -1 : 0;
}

/* Fields a VMM-sent type may use must be the only non-zero ones. */
static bool fields_ok(const struct ftd_vmm_msg *m)
{
	static const char zero[32];
	bool seq = m->type == FTD_VMM_EMITTED || m->type == FTD_VMM_PAUSED ||
		   m->type == FTD_VMM_SNAPSHOT_READY;
	bool hello = m->type == FTD_VMM_HELLO;

	return !m->reserved0 && !m->epoch && !m->role && (seq || !m->seq) && (hello || !m->version) &&
	       (hello || !memcmp(m->name, zero, sizeof(zero)));
}

static int on_msg(struct ft_vmm *v, const struct ftd_vmm_msg *m, int rfd)
{
	if (m->type < FTD_VMM_HELLO || m->type > FTD_VMM_SEED) {
		if (rfd >= 0)
			close(rfd);
		return refuse(v, "vmm-bad-message", "message of unknown type %u", m->type);
	}
	if (!fields_ok(m)) {
		if (rfd >= 0)
			close(rfd);
		return refuse(v, "vmm-bad-message", "%s with a non-zero field it does not use",
			      type_name(m->type));
	}
	if (rfd >= 0 && m->type != FTD_VMM_ATTACHED && m->type != FTD_VMM_SNAPSHOT_READY) {
		close(rfd);
		return refuse(v, "vmm-bad-message", "file descriptor sent with %s", type_name(m->type));
	}
	switch (v->state == FT_VMM_HELLO ? -(int)m->type : (int)m->type) {
	case -FTD_VMM_HELLO:
		return on_hello(v, m);
	case FTD_VMM_ATTACHED:
		if (v->state != FT_VMM_ROLE)
			break;
		if (rfd < 0)
			return refuse(v, "vmm-bad-message", "ATTACHED without the ft fd");
		return on_attached(v, rfd);
	case FTD_VMM_EMITTED:
		if (v->state != FT_VMM_ATTACHED)
			break;
		if (m->seq < v->emitted)
			return refuse(v, "vmm-bad-message", "EMITTED %llu after %llu: outputs cannot be unsent",
				      (unsigned long long)m->seq, (unsigned long long)v->emitted);
		if (m->seq > v->acked_sent && !v->live)
			return refuse(v, "vmm-output-rule", "EMITTED %llu but only %llu acked: the output "
				      "rule was broken", (unsigned long long)m->seq,
				      (unsigned long long)v->acked_sent);
		v->emitted = m->seq;
		if (v->ops.emitted)
			v->ops.emitted(v->ctx, m->seq);
		return 0;
	case FTD_VMM_PAUSED:
		if (v->state == FT_VMM_ATTACHED && !v->pausing && v->pause_dropped) {
			/* it crossed our RESUME: the VM runs on as told */
			v->pause_dropped = false;
			ft_log(LOG_INFO, &(struct ft_log_fields){ .reason = "vmm-late-paused" },
			       "vmm: %s: PAUSED %llu came after the failover was abandoned; ignored", v->name,
			       (unsigned long long)m->seq);
			return 0;
		}
		if (v->state != FT_VMM_ATTACHED || !v->pausing)
			break;
		v->pausing = false;
		if (v->ops.paused)
			v->ops.paused(v->ctx, m->seq);
		return 0;
	case FTD_VMM_SNAPSHOT_READY:
		if (v->state != FT_VMM_ATTACHED || !v->snapshotting)
			break;
		if ((rfd >= 0) != (m->seq != 0)) {
			if (rfd >= 0)
				close(rfd);
			return refuse(v, "vmm-bad-message", "SNAPSHOT_READY of %llu bytes %s a memfd",
				      (unsigned long long)m->seq, rfd >= 0 ? "with" : "without");
		}
		v->snapshotting = false;
		if (rfd >= 0) {
			/* detached, re-attaching in RECORD: a new log, outputs held again */
			v->role = FTD_VMM_ROLE_PRIMARY;
			v->state = FT_VMM_ROLE;
			v->reattaching = true;
			v->live = false;
			v->emitted = v->acked_sent = 0;
		}
		if (v->ops.snapshot_ready)
			v->ops.snapshot_ready(v->ctx, rfd, m->seq);
		else if (rfd >= 0)
			close(rfd);
		return 0;
	}
	if (rfd >= 0)
		close(rfd);
	return refuse(v, "vmm-bad-message", "%s is not expected now (%s)", type_name(m->type),
		      ft_vmm_state_name(v->state));
}

static int on_conn(sd_event_source *s, int fd, uint32_t ev, void *ud)
{
	struct ft_vmm *v = ud;

	(void)s;
	if (ev & EPOLLOUT && flush(v))
		return 0;
	if (!(ev & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return 0;
	for (int i = 0; i < 64 && v->fd == fd; i++) {
		union {
			struct ftd_vmm_msg m;
			char raw[sizeof(struct ftd_vmm_msg) + 64];
		} buf;
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int) * 4)];
		} cm;
		struct iovec iov = { &buf, sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cm,
				     .msg_controllen = sizeof(cm) };
		int rfd = -1, nfd = 0;
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0) {
			refuse(v, "vmm-io", "receive failed: %s", strerror(errno));
			return 0;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
				int f;

				memcpy(&f, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
				if (nfd++)
					close(f);
				else
					rfd = f;
			}
		}
		if (n == 0) {
			if (rfd >= 0)
				close(rfd);
			drop(v, v->state == FT_VMM_ATTACHED ? LOG_WARNING : LOG_NOTICE, "vmm-closed",
			     "closed its socket");
			return 0;
		}
		if (nfd > 1 || mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC) || n != sizeof(buf.m)) {
			if (rfd >= 0)
				close(rfd);
			if (n != sizeof(buf.m))
				return refuse(v, "vmm-bad-size", "message of %zd bytes, expected %zu", n,
					      sizeof(buf.m)), 0;
			return refuse(v, "vmm-bad-message", "%d file descriptors in one message", nfd), 0;
		}
		if (on_msg(v, &buf.m, rfd))
			return 0;
	}
	return 0;
}

static int on_listen(sd_event_source *s, int fd, uint32_t ev, void *ud)
{
	struct ft_vmm *v = ud;
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	(void)s;
	(void)ev;
	if (cfd < 0)
		return 0;
	if (v->fd >= 0 || v->state == FT_VMM_LOST) {
		v->refused++;
		ft_log(LOG_WARNING, &(struct ft_log_fields){ .reason = "vmm-second" },
		       "vmm: a second VMM connected while %s: refused",
		       v->state == FT_VMM_LOST ? "the attached VM is lost (restart ftd to protect a new one)"
					       : "one is connected already");
		close(cfd);
		return 0;
	}
	if (sd_event_add_io(v->ev, &v->io, cfd, EPOLLIN, on_conn, v) < 0) {
		close(cfd);
		return 0;
	}
	v->fd = cfd;
	v->state = FT_VMM_HELLO;
	v->emitted = v->acked_sent = 0;
	v->live = v->pausing = v->pause_dropped = v->reattaching = v->snapshotting = false;
	v->name[0] = 0;
	return 0;
}

int ft_vmm_new(sd_event *ev, const char *path, bool allow_files, const struct ft_vmm_ops *ops,
	       void *ctx, struct ft_vmm **out, char *err, size_t errlen)
{
	struct ft_vmm *v = calloc(1, sizeof(*v));
	int ret;

	if (!v)
		return -ENOMEM;
	if (strlen(path) >= sizeof(v->path)) {
		free(v);
		snprintf(err, errlen, "vmm_socket path too long");
		return -EINVAL;
	}
	strcpy(v->path, path);
	v->fd = -1;
	v->ops = *ops;
	v->ctx = ctx;
	v->allow_files = allow_files;
	v->lfd = ft_unix_listen(path, SOCK_SEQPACKET, err, errlen);
	if (v->lfd < 0) {
		ret = v->lfd;
		free(v);
		return ret;
	}
	v->ev = sd_event_ref(ev);
	ret = sd_event_add_io(ev, &v->lio, v->lfd, EPOLLIN, on_listen, v);
	if (ret < 0) {
		snprintf(err, errlen, "sd-event: %s", strerror(-ret));
		ft_vmm_free(v);
		return ret;
	}
	*out = v;
	return 0;
}

void ft_vmm_free(struct ft_vmm *v)
{
	if (!v)
		return;
	disconnect(v);
	sd_event_source_disable_unref(v->lio);
	close(v->lfd);
	unlink(v->path);
	sd_event_unref(v->ev);
	free(v);
}

enum ft_vmm_state ft_vmm_state(const struct ft_vmm *v)
{
	return v ? v->state : FT_VMM_NONE;
}

const char *ft_vmm_name(const struct ft_vmm *v)
{
	return v && v->name[0] ? v->name : "";
}

uint64_t ft_vmm_emitted(const struct ft_vmm *v)
{
	return v ? v->emitted : 0;
}

uint64_t ft_vmm_acked_sent(const struct ft_vmm *v)
{
	return v ? v->acked_sent : 0;
}

uint64_t ft_vmm_refused(const struct ft_vmm *v)
{
	return v ? v->refused : 0;
}
