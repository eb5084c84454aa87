// SPDX-License-Identifier: GPL-2.0
/*
 * ftvm_syncdrv: a test driver that stands in for the two ftd of a pair on
 * one host, to test ftvm's re-protection (SNAPSHOT, SNAPSHOT_READY, SEED in
 * daemon/ftd_vmm.h) apart from ftd. It speaks the protocol on two sockets
 * and plays the logging channel locally: the primary's log ring is copied
 * into the backup's replay ring (the selftests' ring reader and replay
 * writer) and acknowledged (acked_seq in the consumer page, ACKED).
 *
 *   ftvm_syncdrv SOCK_A SOCK_B LIVE_MS primary|backup
 *
 * A (SOCK_A) starts without a peer in the given role, then at once
 * KVM_FT_SET_MODE LIVE and GO_LIVE, as ftd does when the other one was
 * lost: a primary that lost its backup (its VM was attached in RECORD), or
 * a backup that went live before any record came (attached in REPLAY).
 * After LIVE_MS it re-protects A three times, each time with a new
 * ftvm connecting on SOCK_B (the test starts them one after the other):
 *   1. the snapshot corrupted (one byte flipped in a copy): the new ftvm
 *      must refuse it and exit; A goes live again (SET_MODE LIVE, GO_LIVE);
 *   2. the snapshot truncated (a copy one page short, announced so): the
 *      same;
 *   3. the snapshot intact: the new ftvm builds its VM from it and attaches
 *      in REPLAY; A's new log flows to it, acknowledged; a memory digest is
 *      requested on A at once and every DIGEST_MS, DIGESTS in all (the
 *      backup compares its memory at the same landmark: a snapshot that
 *      missed a byte is a divergence).
 * When A closes its socket (the test kills it), the driver copies what is
 * left of A's log, waits until the backup consumed it, switches the backup
 * to LIVE and sends GO_LIVE with A's last EMITTED; then serves the backup
 * until it closes its socket. One line per step on stdout ("syncdrv: ...").
 * Exit 0 if every step happened as described, 1 otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "kvm_util.h"
#include "ft_ring.h"
#include "ft_replay.h"
#include "drvlink.h"

struct peer {
	const char *name;
	int sock;
	int fd;			/* the current ft fd, or -1 */
	struct ft_ring ring;	/* primary: its log ring */
	struct rp rp;		/* backup: its replay ring */
	bool mapped;
	uint64_t emitted;	/* primary: highest EMITTED */
};

/*
 * Memory digests hash all of guest memory on both sides with the vCPU
 * stopped (64 MiB: seconds on a loaded test bed's emulated CPU, where one
 * every 1-3 s left the pair almost no time to run): one when the backup
 * attached, then one every DIGEST_MS, DIGESTS in all.
 */
#define DIGEST_MS	5000
#define DIGESTS		3

static uint64_t now_ms(void)
{
	return (uint64_t)(kt_now() * 1000);
}

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	printf("syncdrv: FAIL ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(1);
}

#define say(...) do { printf("syncdrv: " __VA_ARGS__); printf("\n"); fflush(stdout); } while (0)

static int listen_on(const char *path)
{
	int fd = drv_listen(path);

	if (fd < 0)
		die("listen on %s: %s", path, strerror(errno));
	return fd;
}

static void send_msg(struct peer *p, const struct ftd_vmm_msg *m, int fd)
{
	int r = ftd_link_send(p->sock, m, fd);

	if (r)
		die("send to %s: %s", p->name, strerror(-r));
}

/* One message; *fd gets a passed fd or -1. 0 on EOF. */
static int recv_msg(struct peer *p, struct ftd_vmm_msg *m, int *fd)
{
	int r = drv_recv(p->sock, m, fd);

	if (r < 0)
		die("bad message from %s", p->name);
	return r;
}

static struct peer pa = { .name = "A", .fd = -1 }, pb = { .name = "B", .fd = -1 };
static uint64_t acked;

/* Copy the primary's new records to the backup (if attached), acknowledge them. */
static void pump(void)
{
	const struct kvm_ft_rec *r;
	uint64_t last = acked;

	if (!pa.mapped || !pb.mapped)
		return;
	while ((r = ft_ring_next(&pa.ring))) {
		rp_write(&pb.rp, r, r->len);
		last = r->seq;
	}
	if (pa.ring.error)
		die("malformed log of A: %s", pa.ring.error);
	rp_publish(&pb.rp);
	ft_ring_release(&pa.ring);
	if (last > acked) {
		struct ftd_vmm_msg m = { .type = FTD_VMM_ACKED, .seq = last };

		acked = last;
		__atomic_store_n(&pa.ring.cons->acked_seq, last, __ATOMIC_RELEASE);
		if (pa.sock >= 0)
			send_msg(&pa, &m, -1);
	}
}

/*
 * Serve both sockets for up to @ms: pump, note EMITTED. Returns when a
 * message of type @want comes from @p (1, *got and *fd filled), when @p
 * closes its socket (0), or after @ms (-1).
 */
static int serve(uint64_t ms, struct peer *p, uint32_t want, struct ftd_vmm_msg *got, int *fd)
{
	uint64_t end = now_ms() + ms;
	struct peer *ps[2] = { &pa, &pb };

	while (now_ms() < end) {
		struct pollfd pf[2] = { { .fd = pa.sock, .events = POLLIN },
					{ .fd = pb.sock, .events = POLLIN } };

		pump();
		poll(pf, 2, 1);
		for (int i = 0; i < 2; i++) {
			struct ftd_vmm_msg m;
			int f;

			if (!pf[i].revents || ps[i]->sock < 0)
				continue;
			if (!recv_msg(ps[i], &m, &f)) {
				say("%s closed its socket", ps[i]->name);
				close(ps[i]->sock);
				ps[i]->sock = -1;
				if (ps[i] == p)
					return 0;
				continue;
			}
			if (ps[i] == p && m.type == want) {
				*got = m;
				*fd = f;
				return 1;
			}
			if (m.type == FTD_VMM_EMITTED && ps[i] == &pa) {
				if (m.seq > acked)
					die("A emitted up to seq %llu, only %llu acked",
					    (unsigned long long)m.seq, (unsigned long long)acked);
				if (m.seq > pa.emitted)
					pa.emitted = m.seq;
				continue;
			}
			die("unexpected message %u from %s", m.type, ps[i]->name);
		}
	}
	return -1;
}

static struct ftd_vmm_msg expect(struct peer *p, uint32_t type, int *fd, uint64_t ms)
{
	struct ftd_vmm_msg m = { 0 };
	int r = serve(ms, p, type, &m, fd);

	if (r != 1)
		die("no message %u from %s (%s)", type, p->name,
		    r ? "timeout" : "it closed its socket");
	return m;
}

static void accept_b(int lb)
{
	struct ftd_vmm_msg m;
	int fd;

	pb.sock = accept4(lb, NULL, NULL, SOCK_CLOEXEC);
	if (pb.sock < 0)
		die("accept B: %s", strerror(errno));
	if (recv_msg(&pb, &m, &fd) != 1 || m.type != FTD_VMM_HELLO)
		die("no HELLO from B");
}

/* A back to live alone (the sync failed): SET_MODE LIVE, GO_LIVE. */
static void a_live(uint64_t epoch)
{
	struct ftd_vmm_msg m = { .type = FTD_VMM_GO_LIVE, .epoch = epoch, .seq = pa.emitted };

	if (ioctl(pa.fd, KVM_FT_SET_MODE, (unsigned long)KVM_FT_MODE_LIVE))
		die("KVM_FT_SET_MODE LIVE on A: %s", strerror(errno));
	send_msg(&pa, &m, -1);
}

/* SNAPSHOT to A: its memfd and length; A's new RECORD fd mapped. */
static int snapshot_a(uint64_t *len, uint64_t *ms)
{
	struct ftd_vmm_msg m = { .type = FTD_VMM_SNAPSHOT };
	uint64_t t0 = now_ms();
	int mfd, fd;

	send_msg(&pa, &m, -1);
	m = expect(&pa, FTD_VMM_SNAPSHOT_READY, &mfd, 10000);
	if (!m.seq || mfd < 0)
		die("A refused the SNAPSHOT");
	*len = m.seq;
	m = expect(&pa, FTD_VMM_ATTACHED, &fd, 10000);
	if (fd < 0)
		die("ATTACHED without an fd from A");
	*ms = now_ms() - t0;
	if (pa.mapped)
		ft_ring_unmap(&pa.ring);
	close(pa.fd);
	pa.fd = fd;
	if (ft_ring_map(&pa.ring, fd))
		die("mapping A's new log ring");
	pa.mapped = true;
	pa.emitted = 0;
	acked = 0;
	return mfd;
}

/* A copy of the snapshot: whole with one byte flipped, or one page short. */
static int copy_bad(int mfd, uint64_t len, bool truncate, uint64_t seed, uint64_t *out_len)
{
	uint64_t n = truncate ? len - 4096 : len, at = 64 + seed % (len - 64);
	int fd = memfd_create("bad-snapshot", MFD_CLOEXEC);
	uint8_t *src, *dst;

	if (fd < 0 || ftruncate(fd, n))
		die("memfd: %s", strerror(errno));
	src = mmap(NULL, len, PROT_READ, MAP_SHARED, mfd, 0);
	dst = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (src == MAP_FAILED || dst == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	memcpy(dst, src, n);
	if (!truncate) {
		dst[at] ^= 0x10;
		say("corrupted byte %llu of %llu", (unsigned long long)at, (unsigned long long)len);
	}
	munmap(src, len);
	munmap(dst, n);
	*out_len = n;
	return fd;
}

int main(int argc, char **argv)
{
	static const char *const attempts[] = { "corrupt", "truncated", "intact" };
	uint64_t seed, live_ms, epoch = 1, t_dig, n_dig = 0;
	struct ftd_vmm_msg m;
	int la, lb, fd;
	uint32_t a_role;

	if (argc != 5 || (strcmp(argv[4], "primary") && strcmp(argv[4], "backup")))
		die("usage: ftvm_syncdrv SOCK_A SOCK_B LIVE_MS primary|backup");
	live_ms = strtoull(argv[3], NULL, 0);
	a_role = strcmp(argv[4], "primary") ? FTD_VMM_ROLE_BACKUP : FTD_VMM_ROLE_PRIMARY;
	seed = kt_seed("ftvm_syncdrv");
	la = listen_on(argv[1]);
	lb = listen_on(argv[2]);
	pb.sock = -1;
	say("listening");
	pa.sock = accept4(la, NULL, NULL, SOCK_CLOEXEC);
	if (pa.sock < 0)
		die("accept A: %s", strerror(errno));
	if (recv_msg(&pa, &m, &fd) != 1 || m.type != FTD_VMM_HELLO)
		die("no HELLO from A");
	m = (struct ftd_vmm_msg){ .type = FTD_VMM_ROLE, .role = a_role, .epoch = epoch };
	send_msg(&pa, &m, -1);
	if (recv_msg(&pa, &m, &pa.fd) != 1 || m.type != FTD_VMM_ATTACHED || pa.fd < 0)
		die("no ATTACHED with an fd from A");
	a_live(epoch);
	say("A is live alone in epoch %llu (it was the %s)", (unsigned long long)epoch, argv[4]);
	serve(live_ms, NULL, 0, &m, &fd);

	for (int k = 0; k < 3; k++) {
		uint64_t len, ms, send_len, t0;
		int mfd, sfd;

		epoch++;
		mfd = snapshot_a(&len, &ms);
		say("attempt %d (%s): A captured %llu bytes and records a new log (%llu ms)", k + 1,
		    attempts[k], (unsigned long long)len, (unsigned long long)ms);
		sfd = k < 2 ? copy_bad(mfd, len, k == 1, seed, &send_len) : mfd;
		if (k == 2)
			send_len = len;
		say("waiting for B%d", k + 1);
		accept_b(lb);
		t0 = now_ms();
		m = (struct ftd_vmm_msg){ .type = FTD_VMM_SEED, .role = FTD_VMM_ROLE_BACKUP,
					  .epoch = epoch, .seq = send_len };
		send_msg(&pb, &m, sfd);
		close(sfd);
		if (k < 2) {
			close(mfd);	/* (k == 2: sfd is mfd, closed above) */
			if (serve(30000, &pb, FTD_VMM_ATTACHED, &m, &fd) != 0)
				die("B%d took the %s snapshot", k + 1, attempts[k]);
			a_live(epoch);
			say("attempt %d: B%d refused the %s snapshot; A is live alone again", k + 1,
			    k + 1, attempts[k]);
			serve(1000, NULL, 0, &m, &fd);
			continue;
		}
		m = expect(&pb, FTD_VMM_ATTACHED, &fd, 30000);
		if (fd < 0 || rp_map(&pb.rp, fd))
			die("ATTACHED without a usable fd from B");
		pb.fd = fd;
		pb.mapped = true;
		say("attempt 3: B3 built from the snapshot and attached in %llu ms: the pair is "
		    "protected in epoch %llu", (unsigned long long)(now_ms() - t0),
		    (unsigned long long)epoch);
	}

	/* Protected: the log flows; memory digests while A lives. */
	t_dig = 0;
	for (;;) {
		int r;

		if (n_dig < DIGESTS && now_ms() >= t_dig) {
			if (ioctl(pa.fd, KVM_FT_REQUEST_MEM_DIGEST))
				die("KVM_FT_REQUEST_MEM_DIGEST: %s", strerror(errno));
			t_dig = now_ms() + DIGEST_MS;
			n_dig++;
		}
		r = serve(100, &pa, 0, &m, &fd);
		if (r == 0)
			break;
		if (pb.sock < 0)
			die("B closed its socket while A lives (divergence?)");
	}
	/* A is gone: the rest of its log to B, then B goes live. */
	pump();
	{
		uint64_t end = now_ms() + 30000;
		struct kvm_ft_digest d;

		while (rp_consumer(&pb.rp) != pb.rp.pos) {
			if (pb.rp.st->error)
				die("B's replay stopped with error %u", pb.rp.st->error);
			if (now_ms() > end)
				die("B did not consume A's log");
			usleep(1000);
		}
		if (ioctl(pb.fd, KVM_FT_GET_DIGEST, &d))
			die("KVM_FT_GET_DIGEST: %s", strerror(errno));
		say("B replayed A's log to seq %llu: %llu register and %llu memory digests matched",
		    (unsigned long long)acked, (unsigned long long)d.reg_count,
		    (unsigned long long)d.mem_count);
		if (!d.mem_count)
			die("no memory digest was compared");
	}
	if (ioctl(pb.fd, KVM_FT_SET_MODE, (unsigned long)KVM_FT_MODE_LIVE))
		die("KVM_FT_SET_MODE LIVE on B: %s", strerror(errno));
	epoch++;
	m = (struct ftd_vmm_msg){ .type = FTD_VMM_GO_LIVE, .epoch = epoch, .seq = pa.emitted };
	send_msg(&pb, &m, -1);
	say("B is live in epoch %llu; A had emitted up to seq %llu", (unsigned long long)epoch,
	    (unsigned long long)pa.emitted);
	while (serve(1000, &pb, 0, &m, &fd) != 0)
		;
	say("done");
	return 0;
}
