// SPDX-License-Identifier: GPL-2.0
/*
 * The VMM's end of the socket to ftd: SOCK_SEQPACKET, one 64-byte
 * struct ftd_vmm_msg per packet, the ft fd passed with SCM_RIGHTS.
 * Everything ftd sends is checked as the protocol says (daemon/ftd_vmm.h).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ftdlink.h"

int ftd_link_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

int ftd_link_send(int sock, const struct ftd_vmm_msg *m, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)m, .iov_len = sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	do {
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == sizeof(*m) ? 0 : -EIO;
}

int ftd_link_recv(int sock, struct ftd_vmm_msg *m, int *fd_out)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct ftd_vmm_msg buf[2];	/* room to notice an oversized packet */
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	int fds[4], nfds = 0;
	ssize_t n;

	if (fd_out)
		*fd_out = -1;
	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (size_t i = 0; i < k; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				if (nfds < 4)
					fds[nfds++] = fd;
				else
					close(fd);
			}
		}
	}
	if (n != sizeof(*m) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
		goto bad;
	*m = buf[0];
	if (m->reserved0)
		goto bad;
	/* Only SEED carries an fd (the snapshot's memfd), exactly one. */
	if ((m->type == FTD_VMM_SEED) != (nfds == 1) || (nfds && !fd_out))
		goto bad;
	switch (m->type) {
	case FTD_VMM_ROLE:
	case FTD_VMM_RESUME:
		if (m->role != FTD_VMM_ROLE_PRIMARY && m->role != FTD_VMM_ROLE_BACKUP)
			goto bad;
		break;
	case FTD_VMM_SEED:
		if (m->role != FTD_VMM_ROLE_BACKUP || !m->seq)
			goto bad;
		*fd_out = fds[0];
		return 1;
	case FTD_VMM_ACKED:
	case FTD_VMM_GO_LIVE:
	case FTD_VMM_HALT:
	case FTD_VMM_PAUSE:
	case FTD_VMM_SNAPSHOT:
		break;
	default:
		goto bad;
	}
	return 1;
bad:
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	return -EPROTO;
}

const char *ftd_link_type_name(uint32_t type)
{
	static const char *const names[] = {
		[FTD_VMM_HELLO] = "HELLO", [FTD_VMM_ROLE] = "ROLE",
		[FTD_VMM_ATTACHED] = "ATTACHED", [FTD_VMM_ACKED] = "ACKED",
		[FTD_VMM_EMITTED] = "EMITTED", [FTD_VMM_GO_LIVE] = "GO_LIVE",
		[FTD_VMM_HALT] = "HALT", [FTD_VMM_PAUSE] = "PAUSE",
		[FTD_VMM_PAUSED] = "PAUSED", [FTD_VMM_RESUME] = "RESUME",
		[FTD_VMM_SNAPSHOT] = "SNAPSHOT", [FTD_VMM_SNAPSHOT_READY] = "SNAPSHOT_READY",
		[FTD_VMM_SEED] = "SEED",
	};

	return type < sizeof(names) / sizeof(names[0]) && names[type] ? names[type] : "?";
}
