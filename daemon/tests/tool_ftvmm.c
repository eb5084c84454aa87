// SPDX-License-Identifier: GPL-2.0
/*
 * A stand-in for the FT-aware VMM (vmm/ftvm) on hosts without /dev/kvm: it
 * speaks ftd_vmm.h over ftd's real VMM socket and passes a real ring fd, a
 * memfd laid out as the kernel lays out a ring. It also plays the module's
 * part on that ring: the primary appends records (tool_ftring's stream of
 * a seed), the backup consumes the replay ring record by record, checking
 * each byte against the same stream, as the module would replay it.
 *
 *   tool_ftvmm SOCK primary SEED COUNT RATE STATE   produce COUNT records at
 *              RATE/s (0 = as fast as the ring allows); EMITTED follows
 *              every ACKED (the output rule); then serve until HALT/EOF
 *   tool_ftvmm SOCK backup SEED RATE STATE         consume at RATE/s (0 = at
 *              once) until GO_LIVE, HALT or EOF
 *   tool_ftvmm SOCK bad CASE                       one malformed exchange;
 *              exit 0 if ftd closed the connection within 2 s
 *   tool_ftvmm SOCK probe                          connect, HELLO; print what
 *              comes back (ROLE/HALT/EOF)
 *
 * Events go to stdout, one line each ("ROLE 1 epoch 1", "ACKED_BAD ...",
 * "GO_LIVE epoch E seq S consumed C left L", "HALT epoch E", "EOF").
 * STATE is rewritten every 50 ms: "produced P acked A emitted E consumed C".
 * Exit 1 on any protocol or ring invariant broken (the line says which).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "channel.h"
#include "ftd_vmm.h"
#include "recgen.h"
#include "ring.h"

static int sock;
static uint64_t produced, acked, emitted, consumed;
static const char *state_path;

static void die(const char *fmt, const char *a)
{
	printf("FAIL ");
	printf(fmt, a);
	printf("\n");
	fflush(stdout);
	exit(1);
}

static int dial(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("cannot connect to %s", path);
	return fd;
}

static void send_msg(const struct ftd_vmm_msg *m, size_t len, int fd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = { (void *)m, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd >= 0) {
		mh.msg_control = &cm;
		mh.msg_controllen = sizeof(cm);
		CMSG_FIRSTHDR(&mh)->cmsg_level = SOL_SOCKET;
		CMSG_FIRSTHDR(&mh)->cmsg_type = SCM_RIGHTS;
		CMSG_FIRSTHDR(&mh)->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(CMSG_FIRSTHDR(&mh)), &fd, sizeof(int));
	}
	if (sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 && errno != EPIPE && errno != ECONNRESET)
		die("sendmsg: %s", strerror(errno));
}

static void send_type(uint32_t type, uint64_t seq)
{
	struct ftd_vmm_msg m = { .type = type, .seq = seq };

	send_msg(&m, sizeof(m), -1);
}

static void hello(void)
{
	struct ftd_vmm_msg m = { .type = FTD_VMM_HELLO, .version = FTD_VMM_VERSION };

	strcpy(m.name, "testvm");
	send_msg(&m, sizeof(m), -1);
}

/* 1 message, 0 nothing within ms, -1 EOF. */
static int recv_msg(struct ftd_vmm_msg *m, int ms)
{
	struct pollfd p = { sock, POLLIN, 0 };
	ssize_t n;

	if (poll(&p, 1, ms) <= 0)
		return 0;
	n = recv(sock, m, sizeof(*m), MSG_DONTWAIT);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n <= 0)
		return -1;
	if (n != sizeof(*m))
		die("message of %s bytes from ftd", "a wrong number of");
	return 1;
}

static void save_state(void)
{
	char tmp[4200];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", state_path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "produced %llu acked %llu emitted %llu consumed %llu\n", (unsigned long long)produced,
		(unsigned long long)acked, (unsigned long long)emitted, (unsigned long long)consumed);
	fclose(f);
	rename(tmp, state_path);
}

static int ring_memfd(bool replay, unsigned int order)
{
	int fd = memfd_create("ftvmm-ring", MFD_CLOEXEC);

	if (fd < 0 || (replay ? ft_ring_format_replay(fd, order) : ft_ring_format(fd, order)))
		die("cannot lay out a %s ring", replay ? "replay" : "log");
	return fd;
}

/* ROLE from ftd; returns the role, or 0 if ftd answered HALT/EOF (printed). */
static uint32_t expect_role(void)
{
	struct ftd_vmm_msg m;
	int r = recv_msg(&m, 5000);

	if (r < 0 || !r) {
		printf("%s\n", r ? "EOF" : "TIMEOUT");
		return 0;
	}
	if (m.type == FTD_VMM_HALT) {
		printf("HALT epoch %llu\n", (unsigned long long)m.epoch);
		return 0;
	}
	if (m.type != FTD_VMM_ROLE)
		die("expected ROLE, got type %s", m.type == FTD_VMM_ACKED ? "ACKED" : "other");
	printf("ROLE %u epoch %llu\n", m.role, (unsigned long long)m.epoch);
	fflush(stdout);
	return m.role;
}

/* ---- primary: the module's recorder and the VMM's output rule ---- */

static int run_primary(uint64_t seed, uint64_t count, uint64_t rate)
{
	struct ft_ring w;
	uint8_t rec[FT_RECGEN_MAX];
	uint64_t t0 = ft_now_us(), last_state = 0;
	bool halted = false, live = false;
	int fd;

	if (expect_role() != FTD_VMM_ROLE_PRIMARY)
		return 2;
	fd = ring_memfd(false, 16);
	if (ft_ring_map(&w, fd, true))
		die("cannot map the %s ring", "log");
	send_msg(&(struct ftd_vmm_msg){ .type = FTD_VMM_ATTACHED }, sizeof(struct ftd_vmm_msg), fd);
	for (;;) {
		struct ftd_vmm_msg m;
		int r;

		/* the vCPU: append while the ring has room (it waits otherwise) */
		while (!halted && produced < count &&
		       (!rate || produced < (ft_now_us() - t0) * rate / 1000000)) {
			uint32_t len = ft_recgen(seed, produced + 1, rec);

			if (ft_ring_append(&w, rec, len))
				break;
			produced++;
		}
		r = recv_msg(&m, 1);
		if (r < 0) {
			printf("EOF\n");
			break;
		}
		if (r && m.type == FTD_VMM_ACKED) {
			/* ftd publishes acked_seq in the consumer page before it tells us */
			if (m.seq < acked || m.seq > produced || w.cons->acked_seq < m.seq) {
				printf("FAIL ACKED %llu: previous %llu, produced %llu, page says %llu\n",
				       (unsigned long long)m.seq, (unsigned long long)acked,
				       (unsigned long long)produced, (unsigned long long)w.cons->acked_seq);
				return 1;
			}
			acked = m.seq;
			if (!halted) {
				/* every output up to the acked seq may leave now */
				emitted = acked;
				send_type(FTD_VMM_EMITTED, emitted);
			}
		} else if (r && m.type == FTD_VMM_GO_LIVE) {
			printf("GO_LIVE epoch %llu seq %llu emitted %llu produced %llu\n",
			       (unsigned long long)m.epoch, (unsigned long long)m.seq,
			       (unsigned long long)emitted, (unsigned long long)produced);
			live = true;
		} else if (r && m.type == FTD_VMM_HALT) {
			printf("HALT epoch %llu%s\n", (unsigned long long)m.epoch, live ? " AFTER GO_LIVE" : "");
			halted = true;
		} else if (r) {
			printf("FAIL unexpected message type %u\n", m.type);
			return 1;
		}
		fflush(stdout);
		if (ft_now_us() - last_state > 50000) {
			save_state();
			last_state = ft_now_us();
		}
	}
	save_state();
	return 0;
}

/* ---- backup: the module's replay ---- */

static int run_backup(uint64_t seed, uint64_t rate)
{
	struct kvm_ft_replay_status *st;
	struct ft_ring r = { 0 };
	uint64_t t0 = ft_now_us(), last_state = 0;
	long page = sysconf(_SC_PAGESIZE);
	unsigned int order = 16;
	uint8_t *prod;
	int fd;

	if (expect_role() != FTD_VMM_ROLE_BACKUP)
		return 2;
	fd = ring_memfd(true, order);
	st = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, KVM_FT_MMAP_REPLAY_STATUS_OFF);
	prod = mmap(NULL, page + (1UL << order), PROT_READ, MAP_SHARED, fd, KVM_FT_MMAP_REPLAY_RING_OFF);
	if (st == MAP_FAILED || prod == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	/* the module's view: it reads what user space published */
	r.data = prod + page;
	r.size = 1UL << order;
	r.prod_pos = &((struct kvm_ft_replay_producer *)prod)->producer;
	r.tail.pos = 0;
	r.tail.seq = 1;
	send_msg(&(struct ftd_vmm_msg){ .type = FTD_VMM_ATTACHED }, sizeof(struct ftd_vmm_msg), fd);
	for (;;) {
		struct ftd_vmm_msg m;
		const struct kvm_ft_rec *rec;
		uint32_t len;
		int ret;

		/* RATE counts from the first record: a backlog builds up behind it */
		while (!rate || !consumed || consumed < (ft_now_us() - t0) * rate / 1000000) {
			struct ft_ring_cursor cur = r.tail;

			ret = ft_ring_next(&r, &cur, &rec, &len);
			if (ret < 0) {
				printf("FAIL replay ring: %s at %llu\n", r.why, (unsigned long long)r.tail.pos);
				return 1;
			}
			if (!ret)
				break;
			if (!ft_recgen_verify(seed, cur.seq - 1, 0, rec, len)) {
				printf("FAIL record %llu differs from the primary's\n", (unsigned long long)cur.seq - 1);
				return 1;
			}
			if (!consumed)
				t0 = ft_now_us();
			consumed = cur.seq - 1;
			r.tail = cur;
			st->next_seq = cur.seq;
			__atomic_store_n(&st->consumer, cur.pos, __ATOMIC_RELEASE);
		}
		ret = recv_msg(&m, 1);
		if (ret < 0) {
			printf("EOF\n");
			break;
		}
		if (ret && m.type == FTD_VMM_GO_LIVE) {
			uint64_t left = *r.prod_pos - st->consumer;

			printf("GO_LIVE epoch %llu seq %llu consumed %llu left %llu\n", (unsigned long long)m.epoch,
			       (unsigned long long)m.seq, (unsigned long long)consumed, (unsigned long long)left);
		} else if (ret && m.type == FTD_VMM_HALT) {
			printf("HALT epoch %llu\n", (unsigned long long)m.epoch);
		} else if (ret) {
			printf("FAIL unexpected message type %u\n", m.type);
			return 1;
		}
		fflush(stdout);
		if (ft_now_us() - last_state > 50000) {
			save_state();
			last_state = ft_now_us();
		}
	}
	save_state();
	return 0;
}

/* ---- malformed exchanges: ftd must close the connection ---- */

static int run_bad(const char *c)
{
	struct ftd_vmm_msg m = { .type = FTD_VMM_HELLO, .version = FTD_VMM_VERSION, .name = "testvm" };
	int r;

	if (!strcmp(c, "size")) {
		send_msg(&m, 32, -1);
	} else if (!strcmp(c, "type")) {
		m.type = 99;
		send_msg(&m, sizeof(m), -1);
	} else if (!strcmp(c, "version")) {
		m.version = FTD_VMM_VERSION + 1;
		send_msg(&m, sizeof(m), -1);
	} else if (!strcmp(c, "reserved")) {
		m.reserved0 = 1;
		send_msg(&m, sizeof(m), -1);
	} else if (!strcmp(c, "name")) {
		memset(m.name, 'x', sizeof(m.name));
		send_msg(&m, sizeof(m), -1);
	} else if (!strcmp(c, "order")) {
		send_type(FTD_VMM_EMITTED, 1);
	} else if (!strcmp(c, "fd-on-hello")) {
		send_msg(&m, sizeof(m), ring_memfd(false, 16));
	} else {
		/* the rest happen after a good HELLO */
		hello();
		if (!expect_role())
			return 2;
		if (!strcmp(c, "no-fd")) {
			send_type(FTD_VMM_ATTACHED, 0);
		} else if (!strcmp(c, "wrong-mode")) {
			int fd = ring_memfd(true, 16);	/* a replay ring for the primary */

			send_msg(&(struct ftd_vmm_msg){ .type = FTD_VMM_ATTACHED }, sizeof(m), fd);
		} else if (!strcmp(c, "not-a-ring")) {
			int fd = memfd_create("junk", MFD_CLOEXEC);

			if (ftruncate(fd, 4 << 20))
				return 2;
			send_msg(&(struct ftd_vmm_msg){ .type = FTD_VMM_ATTACHED }, sizeof(m), fd);
		} else if (!strcmp(c, "emitted-unacked")) {
			int fd = ring_memfd(false, 16);

			send_msg(&(struct ftd_vmm_msg){ .type = FTD_VMM_ATTACHED }, sizeof(m), fd);
			send_type(FTD_VMM_EMITTED, 5);	/* nothing was acked: the output rule */
		} else {
			fprintf(stderr, "unknown case %s\n", c);
			return 2;
		}
	}
	for (int i = 0; i < 200; i++) {
		r = recv_msg(&m, 10);
		if (r < 0) {
			printf("closed\n");
			return 0;
		}
	}
	printf("still open\n");
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: see the comment at the top of tool_ftvmm.c\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	sock = dial(argv[1]);
	if (!strcmp(argv[2], "bad") && argc == 4)
		return run_bad(argv[3]);
	if (!strcmp(argv[2], "probe") && argc == 3) {
		hello();
		return expect_role() ? 0 : 3;
	}
	if (!strcmp(argv[2], "primary") && argc == 7) {
		state_path = argv[6];
		hello();
		return run_primary(strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0),
				   strtoull(argv[5], NULL, 0));
	}
	if (!strcmp(argv[2], "backup") && argc == 6) {
		state_path = argv[5];
		hello();
		return run_backup(strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0));
	}
	fprintf(stderr, "usage: see the comment at the top of tool_ftvmm.c\n");
	return 2;
}
