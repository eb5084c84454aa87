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
 *   tool_ftvmm SOCK vm SEED COUNT PRATE CRATE STATE   either role, as ftd
 *              says, swapping roles on a planned failover (PAUSE, PAUSED,
 *              RESUME in the other role: detach, a new ring, re-attach):
 *              produce at PRATE/s while primary, COUNT records in all;
 *              consume at CRATE/s while backup
 *
 * $FTVMM_PAUSE: how PAUSE is answered: ok (default; the primary pauses at
 * its last record, the backup replays up to S first), never (no answer),
 * wrong (the primary's PAUSED is 7 past its log), diverge (the backup's
 * replay stops with an error instead).
 * $FTVMM_REATTACH_MS: after a swap, wait this long before re-attaching (a
 * slow VMM).
 *
 * Re-protection (vm mode): a live VM answers SNAPSHOT with a sealed memfd
 * of $FTVMM_SNAP_MB MiB (default 4) plus a random number of bytes below
 * 1 MiB, the bytes a stream of SEED + epoch ("SNAPSHOT len L epoch E
 * total T"), then detaches, attaches a new log ring in RECORD and runs on
 * as the primary (outputs held for ACKED) from seq 1 of stream SEED + epoch
 * + 2^32. A VM waiting after HELLO takes SEED instead of ROLE: it checks
 * every byte of the memfd against the same stream ("SEED len L epoch E ok"),
 * or refuses with one line and exits ("SEED_REFUSED ...": exit 3), then
 * replays that log in REPLAY. $FTVMM_SNAP: refuse (SNAPSHOT_READY without
 * a memfd), corrupt (one byte flipped before sealing).
 *
 * Session k's records are stream SEED + epoch, seq from 1. At a swap both
 * tools print "SWAP role R epoch E at S total T" (T: records the VM went
 * through in all sessions), so a test can see both stopped at the same
 * state and nothing was replayed twice or skipped.
 *   tool_ftvmm SOCK bad CASE                       one malformed exchange;
 *              exit 0 if ftd closed the connection within 2 s
 *   tool_ftvmm SOCK probe                          connect, HELLO; print what
 *              comes back (ROLE/HALT/EOF)
 *
 * Events go to stdout, one line each ("ROLE 1 epoch 1", "ACKED_BAD ...",
 * "GO_LIVE epoch E seq S consumed C left L", "HALT epoch E", "EOF").
 * STATE is rewritten every 50 ms: "produced P acked A emitted E consumed C
 * role R epoch E total T" (P..C count in the current session).
 * Exit 1 on any protocol or ring invariant broken (the line says which).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
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

/* 1 message (its fd in *fd if one came, else -1), 0 nothing within ms, -1 EOF. */
static int recv_msg_fd(struct ftd_vmm_msg *m, int ms, int *fd)
{
	struct pollfd p = { sock, POLLIN, 0 };
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = { m, sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cm,
			     .msg_controllen = sizeof(cm) };
	ssize_t n;

	*fd = -1;
	if (poll(&p, 1, ms) <= 0)
		return 0;
	n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n <= 0)
		return -1;
	if (n != sizeof(*m))
		die("message of %s bytes from ftd", "a wrong number of");
	if (CMSG_FIRSTHDR(&mh) && CMSG_FIRSTHDR(&mh)->cmsg_type == SCM_RIGHTS)
		memcpy(fd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(int));
	return 1;
}

static int recv_msg(struct ftd_vmm_msg *m, int ms)
{
	int fd, r = recv_msg_fd(m, ms, &fd);

	if (fd >= 0)
		die("ftd sent a file descriptor with message type %s", m->type == FTD_VMM_SEED ? "SEED" : "?");
	return r;
}

static int ring_memfd(bool replay, unsigned int order)
{
	int fd = memfd_create("ftvmm-ring", MFD_CLOEXEC);

	if (fd < 0 || (replay ? ft_ring_format_replay(fd, order) : ft_ring_format(fd, order)))
		die("cannot lay out a %s ring", replay ? "replay" : "log");
	return fd;
}

/* ROLE (or SEED: its memfd in *seed) from ftd; returns the role, or 0 if ftd answered HALT/EOF (printed). */
static uint32_t expect_role_seed(uint64_t *epoch, int ms, int *seed, uint64_t *seed_len)
{
	struct ftd_vmm_msg m;
	int fd, r = recv_msg_fd(&m, ms, &fd);

	if (r > 0 && m.type == FTD_VMM_SEED && seed && fd >= 0) {
		*seed = fd;
		*seed_len = m.seq;
		*epoch = m.epoch;
		return m.role;
	}
	if (fd >= 0)
		die("ftd sent a file descriptor with message type %s", "other than SEED");

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
	if (epoch)
		*epoch = m.epoch;
	return m.role;
}

static uint32_t expect_role(uint64_t *epoch)
{
	return expect_role_seed(epoch, 5000, NULL, NULL);
}

/*
 * ---- the VM: primary (the module's recorder and the VMM's output rule) or
 * backup (the module's replay), swapping on RESUME in the other role ----
 *
 * The VM's state is the count of records it went through across sessions
 * (total). A session's records are stream seed + epoch, seq from 1. A
 * planned failover pauses both at the same total; the new primary's log
 * starts at seq 1 of the next epoch's stream.
 */

struct vm {
	uint64_t seed, count, prate, crate;
	const char *pause_mode;		/* $FTVMM_PAUSE: ok, never, wrong, diverge */
	uint32_t role;
	uint64_t epoch, sseed, total_before;
	bool paused, halted, live;
	bool snap;			/* this log follows a snapshot: stream seed + epoch + 2^32 */
	uint64_t pause_at;		/* backup: PAUSE(S) pending until replayed to S */
	bool pausing;
	int fd;
	/* primary */
	struct ft_ring w;
	/* backup */
	struct kvm_ft_replay_status *st;
	uint8_t *prod;
	struct ft_ring r;
	uint64_t t0;
};

static void save_state(const struct vm *v)
{
	char tmp[4200];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", state_path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "produced %llu acked %llu emitted %llu consumed %llu role %u epoch %llu total %llu\n",
		(unsigned long long)produced, (unsigned long long)acked, (unsigned long long)emitted,
		(unsigned long long)consumed, v->role, (unsigned long long)v->epoch,
		(unsigned long long)(v->total_before + (v->role == FTD_VMM_ROLE_PRIMARY ? produced : consumed)));
	fclose(f);
	rename(tmp, state_path);
}

static const unsigned int vm_order = 16;

static void vm_attach(struct vm *v)
{
	long page = sysconf(_SC_PAGESIZE);

	produced = acked = emitted = consumed = 0;
	v->sseed = v->seed + v->epoch + (v->snap ? 1ULL << 32 : 0);
	v->paused = v->pausing = false;
	v->t0 = ft_now_us();
	v->fd = ring_memfd(v->role == FTD_VMM_ROLE_BACKUP, vm_order);
	if (v->role == FTD_VMM_ROLE_PRIMARY) {
		if (ft_ring_map(&v->w, v->fd, true))
			die("cannot map the %s ring", "log");
	} else {
		v->st = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, KVM_FT_MMAP_REPLAY_STATUS_OFF);
		v->prod = mmap(NULL, page + (1UL << vm_order), PROT_READ, MAP_SHARED, v->fd,
			       KVM_FT_MMAP_REPLAY_RING_OFF);
		if (v->st == MAP_FAILED || v->prod == MAP_FAILED)
			die("mmap: %s", strerror(errno));
		/* the module's view: it reads what user space published */
		memset(&v->r, 0, sizeof(v->r));
		v->r.data = v->prod + page;
		v->r.size = 1UL << vm_order;
		v->r.prod_pos = &((struct kvm_ft_replay_producer *)v->prod)->producer;
		v->r.tail.pos = 0;
		v->r.tail.seq = 1;
	}
	send_msg(&(struct ftd_vmm_msg){ .type = FTD_VMM_ATTACHED }, sizeof(struct ftd_vmm_msg), v->fd);
}

/* KVM_FT_DETACH and close the ft fd: the old log is gone. */
static void vm_detach(struct vm *v)
{
	long page = sysconf(_SC_PAGESIZE);

	if (v->role == FTD_VMM_ROLE_PRIMARY) {
		ft_ring_unmap(&v->w);
	} else {
		munmap(v->st, page);
		munmap(v->prod, page + (1UL << vm_order));
	}
	close(v->fd);
}

static void vm_produce(struct vm *v)
{
	uint8_t rec[FT_RECGEN_MAX];

	while (!v->halted && !v->paused && v->total_before + produced < v->count &&
	       (!v->prate || produced < (ft_now_us() - v->t0) * v->prate / 1000000)) {
		uint32_t len = ft_recgen(v->sseed, produced + 1, rec);

		if (ft_ring_append(&v->w, rec, len))
			break;	/* the vCPU waits for ring space */
		produced++;
	}
}

/* 0, or 1 on a broken invariant (printed). */
static int vm_consume(struct vm *v)
{
	const struct kvm_ft_rec *rec;
	uint32_t len;
	int ret;

	/* RATE counts from the first record: a backlog builds up behind it; a PAUSE catches up at once */
	while (!v->paused && (v->pausing ? consumed < v->pause_at :
			      !v->crate || !consumed || consumed < (ft_now_us() - v->t0) * v->crate / 1000000)) {
		struct ft_ring_cursor cur = v->r.tail;

		ret = ft_ring_next(&v->r, &cur, &rec, &len);
		if (ret < 0) {
			printf("FAIL replay ring: %s at %llu\n", v->r.why, (unsigned long long)v->r.tail.pos);
			return 1;
		}
		if (!ret)
			break;
		if (!ft_recgen_verify(v->sseed, cur.seq - 1, 0, rec, len)) {
			printf("FAIL record %llu of epoch %llu differs from the primary's\n",
			       (unsigned long long)cur.seq - 1, (unsigned long long)v->epoch);
			return 1;
		}
		if (!consumed)
			v->t0 = ft_now_us();
		consumed = cur.seq - 1;
		v->r.tail = cur;
		v->st->next_seq = cur.seq;
		__atomic_store_n(&v->st->consumer, cur.pos, __ATOMIC_RELEASE);
	}
	if (v->pausing && consumed == v->pause_at) {
		v->pausing = false;
		v->paused = true;
		printf("PAUSED %llu\n", (unsigned long long)consumed);
		send_type(FTD_VMM_PAUSED, consumed);
	}
	return 0;
}

static void on_pause(struct vm *v, uint64_t seq)
{
	if (!strcmp(v->pause_mode, "never")) {
		printf("PAUSE ignored (never)\n");
		return;
	}
	if (v->role == FTD_VMM_ROLE_PRIMARY) {
		uint64_t s = produced + (!strcmp(v->pause_mode, "wrong") ? 7 : 0);

		v->paused = true;
		printf("PAUSED %llu\n", (unsigned long long)s);
		send_type(FTD_VMM_PAUSED, s);
		return;
	}
	if (!strcmp(v->pause_mode, "diverge")) {
		/* the module found a replayed exit that does not match */
		__atomic_store_n(&v->st->error, 1, __ATOMIC_RELEASE);
		v->paused = true;
		printf("DIVERGED at %llu\n", (unsigned long long)consumed);
		return;
	}
	if (seq < consumed) {
		printf("FAIL PAUSE at %llu but %llu replayed already\n", (unsigned long long)seq,
		       (unsigned long long)consumed);
		exit(1);
	}
	v->pausing = true;
	v->pause_at = seq;
}

static int on_resume(struct vm *v, const struct ftd_vmm_msg *m)
{
	uint64_t at = v->role == FTD_VMM_ROLE_PRIMARY ? produced : consumed;

	if (m->role == v->role) {
		printf("RESUME role %u epoch %llu (same)\n", m->role, (unsigned long long)m->epoch);
		v->paused = v->pausing = false;
		v->t0 = ft_now_us() - (v->role == FTD_VMM_ROLE_PRIMARY && v->prate ?
				       produced * 1000000 / v->prate : 0);
		return 0;
	}
	if (!v->paused) {
		printf("FAIL RESUME in the other role without PAUSED\n");
		return 1;
	}
	if (v->role == FTD_VMM_ROLE_PRIMARY && emitted < produced) {
		printf("FAIL swap with outputs held: emitted %llu of %llu\n", (unsigned long long)emitted,
		       (unsigned long long)produced);
		return 1;
	}
	if (m->epoch <= v->epoch) {
		printf("FAIL swap to epoch %llu from %llu\n", (unsigned long long)m->epoch,
		       (unsigned long long)v->epoch);
		return 1;
	}
	v->total_before += at;
	printf("SWAP role %u epoch %llu at %llu total %llu\n", m->role, (unsigned long long)m->epoch,
	       (unsigned long long)at, (unsigned long long)v->total_before);
	vm_detach(v);
	v->role = m->role;
	v->epoch = m->epoch;
	if (getenv("FTVMM_REATTACH_MS"))
		usleep((useconds_t)strtoul(getenv("FTVMM_REATTACH_MS"), NULL, 0) * 1000);
	vm_attach(v);
	return 0;
}

/* Byte i of the snapshot of stream s: every byte depends on the seed, the epoch and its offset. */
static uint8_t snap_byte(uint64_t s, uint64_t i)
{
	uint64_t z = s + (i / 8) * 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return (uint8_t)(z >> (8 * (i % 8)));
}

/* SNAPSHOT: the live VM's state into a sealed memfd, then a new log in RECORD. */
static int on_snapshot(struct vm *v)
{
	const char *mode = getenv("FTVMM_SNAP") ? getenv("FTVMM_SNAP") : "ok";
	uint64_t mb = getenv("FTVMM_SNAP_MB") ? strtoull(getenv("FTVMM_SNAP_MB"), NULL, 0) : 4;
	uint64_t len = (mb << 20) + (uint64_t)random() % (1 << 20) + 1;
	uint64_t at = v->role == FTD_VMM_ROLE_PRIMARY ? produced : consumed;
	uint8_t *p;
	int fd;

	if (!v->live || !strcmp(mode, "refuse")) {
		printf("SNAPSHOT refused (%s)\n", v->live ? "FTVMM_SNAP=refuse" : "not live");
		send_type(FTD_VMM_SNAPSHOT_READY, 0);
		return 0;
	}
	fd = memfd_create("ftvmm-snapshot", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, (off_t)len))
		die("snapshot memfd: %s", strerror(errno));
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("snapshot mmap: %s", strerror(errno));
	for (uint64_t i = 0; i < len; i++)
		p[i] = snap_byte(v->seed + v->epoch, i);
	if (!strcmp(mode, "corrupt"))
		p[len / 2] ^= 0x40;
	munmap(p, len);
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL))
		die("sealing the snapshot: %s", strerror(errno));
	v->total_before += at;
	printf("SNAPSHOT len %llu epoch %llu total %llu%s\n", (unsigned long long)len,
	       (unsigned long long)v->epoch, (unsigned long long)v->total_before,
	       strcmp(mode, "corrupt") ? "" : " (corrupted)");
	send_msg(&(struct ftd_vmm_msg){ .type = FTD_VMM_SNAPSHOT_READY, .seq = len },
		 sizeof(struct ftd_vmm_msg), fd);
	close(fd);
	vm_detach(v);
	v->role = FTD_VMM_ROLE_PRIMARY;
	v->live = false;	/* outputs wait for ACKED of the new log */
	v->snap = true;
	vm_attach(v);
	return 0;
}

/* SEED: check every byte of the snapshot, then replay in REPLAY. 0, or 3 refused (printed). */
static int on_seed(struct vm *v, int fd, uint64_t len)
{
	uint8_t *p = len ? mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
	int seals = fcntl(fd, F_GET_SEALS);
	uint64_t i = 0;

	if (p == MAP_FAILED || seals < 0 || !(seals & F_SEAL_WRITE)) {
		printf("SEED_REFUSED len %llu: not a sealed memfd of that length\n", (unsigned long long)len);
		return 3;
	}
	while (i < len && p[i] == snap_byte(v->seed + v->epoch, i))
		i++;
	munmap(p, len);
	close(fd);
	if (i < len) {
		printf("SEED_REFUSED len %llu epoch %llu: byte %llu differs from the stream\n",
		       (unsigned long long)len, (unsigned long long)v->epoch, (unsigned long long)i);
		return 3;
	}
	printf("SEED len %llu epoch %llu ok\n", (unsigned long long)len, (unsigned long long)v->epoch);
	v->snap = true;
	return 0;
}

static int run_vm(struct vm *v)
{
	uint64_t last_state = 0, seed_len = 0;
	struct ftd_vmm_msg m;
	int seed = -1;

	/* a returning node's ftd answers once the live node's snapshot is here */
	v->role = expect_role_seed(&v->epoch, 120000, &seed, &seed_len);
	if (!v->role)
		return 2;
	srandom((unsigned int)(v->seed ^ getpid()));
	if (seed >= 0 && on_seed(v, seed, seed_len))
		return 3;
	vm_attach(v);
	for (;;) {
		int r;

		if (v->role == FTD_VMM_ROLE_PRIMARY)
			vm_produce(v);
		else if (!v->halted && !v->live && vm_consume(v))
			return 1;
		r = recv_msg(&m, 1);
		if (r < 0) {
			printf("EOF\n");
			break;
		}
		if (r && m.type == FTD_VMM_ACKED && v->role == FTD_VMM_ROLE_PRIMARY) {
			/* ftd publishes acked_seq in the consumer page before it tells us */
			if (m.seq < acked || m.seq > produced || v->w.cons->acked_seq < m.seq) {
				printf("FAIL ACKED %llu: previous %llu, produced %llu, page says %llu\n",
				       (unsigned long long)m.seq, (unsigned long long)acked,
				       (unsigned long long)produced, (unsigned long long)v->w.cons->acked_seq);
				return 1;
			}
			acked = m.seq;
			if (!v->halted) {
				/* every output up to the acked seq may leave now (also while paused) */
				emitted = acked;
				send_type(FTD_VMM_EMITTED, emitted);
			}
		} else if (r && m.type == FTD_VMM_GO_LIVE) {
			if (v->role == FTD_VMM_ROLE_PRIMARY)
				printf("GO_LIVE epoch %llu seq %llu emitted %llu produced %llu\n",
				       (unsigned long long)m.epoch, (unsigned long long)m.seq,
				       (unsigned long long)emitted, (unsigned long long)produced);
			else
				printf("GO_LIVE epoch %llu seq %llu consumed %llu left %llu\n",
				       (unsigned long long)m.epoch, (unsigned long long)m.seq,
				       (unsigned long long)consumed,
				       (unsigned long long)(*v->r.prod_pos - v->st->consumer));
			v->live = true;
			v->epoch = m.epoch;
		} else if (r && m.type == FTD_VMM_HALT) {
			printf("HALT epoch %llu%s\n", (unsigned long long)m.epoch, v->live ? " AFTER GO_LIVE" : "");
			v->halted = true;
		} else if (r && m.type == FTD_VMM_PAUSE) {
			on_pause(v, m.seq);
		} else if (r && m.type == FTD_VMM_RESUME) {
			if (on_resume(v, &m))
				return 1;
		} else if (r && m.type == FTD_VMM_SNAPSHOT) {
			if (on_snapshot(v))
				return 1;
		} else if (r) {
			printf("FAIL unexpected message type %u\n", m.type);
			return 1;
		}
		fflush(stdout);
		if (ft_now_us() - last_state > 50000) {
			save_state(v);
			last_state = ft_now_us();
		}
	}
	save_state(v);
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
		if (!expect_role(NULL))
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
		return expect_role(NULL) ? 0 : 3;
	}
	struct vm v = { .pause_mode = getenv("FTVMM_PAUSE") ? getenv("FTVMM_PAUSE") : "ok" };

	if (!strcmp(argv[2], "primary") && argc == 7) {
		state_path = argv[6];
		v.seed = strtoull(argv[3], NULL, 0);
		v.count = strtoull(argv[4], NULL, 0);
		v.prate = strtoull(argv[5], NULL, 0);
	} else if (!strcmp(argv[2], "backup") && argc == 6) {
		state_path = argv[5];
		v.seed = strtoull(argv[3], NULL, 0);
		v.count = UINT64_MAX;
		v.crate = strtoull(argv[4], NULL, 0);
	} else if (!strcmp(argv[2], "vm") && argc == 8) {
		state_path = argv[7];
		v.seed = strtoull(argv[3], NULL, 0);
		v.count = strtoull(argv[4], NULL, 0);
		v.prate = strtoull(argv[5], NULL, 0);
		v.crate = strtoull(argv[6], NULL, 0);
	} else {
		fprintf(stderr, "usage: see the comment at the top of tool_ftvmm.c\n");
		return 2;
	}
	hello();
	return run_vm(&v);
}
