// SPDX-License-Identifier: GPL-2.0
/*
 * ftvm_swapdrv: a test driver that stands in for the two ftd of a pair on
 * one host, to test ftvm's planned failover (PAUSE, PAUSED, RESUME) before
 * ftd implements it. It speaks daemon/ftd_vmm.h on two sockets and plays
 * the logging channel locally: the primary's log ring is copied into the
 * backup's replay ring (the selftests' ring reader and replay writer) and
 * acknowledged (acked_seq in the consumer page, ACKED).
 *
 *   ftvm_swapdrv SOCK_A SOCK_B SWAPS PERIOD_MS
 *
 * The ftvm on SOCK_A is the primary, on SOCK_B the backup. Every PERIOD_MS
 * it swaps their roles, SWAPS times, as ftd does for ftctl failover:
 * PAUSE to the primary, copy its log up to the PAUSED seq S, PAUSE(S) to
 * the backup, its PAUSED must say S; wait for EMITTED >= S from the primary;
 * RESUME each with the other role; ATTACHED with the new fds (the old fds
 * are closed only afterwards, as ftd drains the old ring). EMITTED must
 * grow strictly on one attachment (a repeat could arrive after RESUME, on
 * the new log, where ftd would take it for a broken output rule). Prints
 * one line per swap with the pause and swap times; then serves until either ftvm
 * closes its socket. Exit 0 if all swaps were made, 1 otherwise.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "kvm_util.h"
#include "ft_ring.h"
#include "ft_replay.h"
#include "drvlink.h"

struct peer {
	const char *name;
	int sock;
	int fd;			/* the current ft fd */
	int role;		/* FTD_VMM_ROLE_* */
	struct ft_ring ring;	/* primary: its log ring */
	struct rp rp;		/* backup: its replay ring */
	uint64_t emitted;	/* primary: highest EMITTED */
	bool want_attach;	/* RESUME sent, its ATTACHED not yet received */
};

static void map_peer(struct peer *p);

static uint64_t now_ms(void)
{
	return (uint64_t)(kt_now() * 1000);
}

static void die(const char *fmt, const char *a)
{
	printf("swapdrv: FAIL ");
	printf(fmt, a);
	printf("\n");
	fflush(stdout);
	exit(1);
}

static int listen_on(const char *path)
{
	int fd = drv_listen(path);

	if (fd < 0)
		die("listen on %s", path);
	return fd;
}

/* 0, or -1 when the peer is gone (the test stops the ftvm at the end). */
static int try_send(struct peer *p, const struct ftd_vmm_msg *m)
{
	return ftd_link_send(p->sock, m, -1) ? -1 : 0;
}

static void send_msg(struct peer *p, const struct ftd_vmm_msg *m)
{
	if (try_send(p, m))
		die("send to %s", p->name);
}

/* One message; *fd gets a passed fd or -1. 0 on EOF. */
static int recv_msg(struct peer *p, struct ftd_vmm_msg *m, int *fd)
{
	int r = drv_recv(p->sock, m, fd);

	if (r < 0)
		die("bad message from %s", p->name);
	return r;
}

static void map_peer(struct peer *p)
{
	int r = p->role == FTD_VMM_ROLE_PRIMARY ? ft_ring_map(&p->ring, p->fd) :
						  rp_map(&p->rp, p->fd);

	if (r)
		die("mapping the ring of %s", p->name);
}

static void unmap_peer(struct peer *p)
{
	if (p->role == FTD_VMM_ROLE_PRIMARY)
		ft_ring_unmap(&p->ring);
	else
		rp_unmap(&p->rp);
	close(p->fd);
}

/* Wait for a message of @type from @p (other messages: EMITTED noted). */
static struct ftd_vmm_msg expect(struct peer *p, uint32_t type, int *fd, uint64_t timeout_ms);

static uint64_t acked;

/*
 * Copy the primary's new records to the backup, acknowledge them. -1 if the
 * primary is gone: the caller decides whether that is a failure.
 */
static int pump(struct peer *pri, struct peer *bak)
{
	const struct kvm_ft_rec *r;
	uint64_t last = acked;

	while ((r = ft_ring_next(&pri->ring))) {
		rp_write(&bak->rp, r, r->len);
		last = r->seq;
	}
	if (pri->ring.error)
		die("malformed log of %s", pri->name);
	rp_publish(&bak->rp);
	ft_ring_release(&pri->ring);
	if (last > acked) {
		struct ftd_vmm_msg m = { .type = FTD_VMM_ACKED, .seq = last };

		acked = last;
		__atomic_store_n(&pri->ring.cons->acked_seq, last, __ATOMIC_RELEASE);
		return try_send(pri, &m);
	}
	return 0;
}

static struct peer *pump_pri, *pump_bak;

/* Serve both sockets for up to @ms: pump, note EMITTED, stop on @want from @p. */
static int serve(uint64_t ms, struct peer *p, uint32_t want, struct ftd_vmm_msg *got, int *fd)
{
	uint64_t end = now_ms() + ms;
	struct peer *ps[2] = { pump_pri, pump_bak };

	while (now_ms() < end) {
		struct pollfd pf[2] = { { .fd = ps[0]->sock, .events = POLLIN },
					{ .fd = ps[1]->sock, .events = POLLIN } };

		if (pump(pump_pri, pump_bak)) {
			printf("swapdrv: %s is gone\n", pump_pri->name);
			fflush(stdout);
			return -1;
		}
		poll(pf, 2, 1);
		for (int i = 0; i < 2; i++) {
			struct ftd_vmm_msg m;
			int f;

			if (!pf[i].revents)
				continue;
			if (!recv_msg(ps[i], &m, &f)) {
				printf("swapdrv: %s closed its socket\n", ps[i]->name);
				fflush(stdout);
				return -1;
			}
			if (m.type == FTD_VMM_EMITTED && ps[i]->role == FTD_VMM_ROLE_PRIMARY) {
				/* A repeat could come after RESUME, on the new log. */
				if (m.seq <= ps[i]->emitted) {
					printf("swapdrv: FAIL EMITTED %llu from %s after %llu: not increasing\n",
					       (unsigned long long)m.seq, ps[i]->name,
					       (unsigned long long)ps[i]->emitted);
					exit(1);
				}
				ps[i]->emitted = m.seq;
			} else if (m.type == FTD_VMM_ATTACHED && ps[i]->want_attach && f >= 0) {
				/* Either may answer RESUME first. */
				ps[i]->fd = f;
				ps[i]->want_attach = false;
				map_peer(ps[i]);
			} else if (ps[i] == p && m.type == want) {
				*got = m;
				*fd = f;
				return 1;
			} else {
				printf("swapdrv: unexpected message %u from %s\n", m.type, ps[i]->name);
				exit(1);
			}
		}
		if (p && want == FTD_VMM_EMITTED && p->emitted >= got->seq)
			return 1;
		if (want == FTD_VMM_ATTACHED && !ps[0]->want_attach && !ps[1]->want_attach)
			return 1;
	}
	return 0;
}

static struct ftd_vmm_msg expect(struct peer *p, uint32_t type, int *fd, uint64_t timeout_ms)
{
	struct ftd_vmm_msg m = { 0 };

	if (serve(timeout_ms, p, type, &m, fd) != 1) {
		char what[64];

		snprintf(what, sizeof(what), "message %u from %s", type, p->name);
		die("no %s in time", what);
	}
	return m;
}

int main(int argc, char **argv)
{
	struct peer pa = { .name = "A", .role = FTD_VMM_ROLE_PRIMARY };
	struct peer pb = { .name = "B", .role = FTD_VMM_ROLE_BACKUP };
	struct peer *pri = &pa, *bak = &pb, *ps[2] = { &pa, &pb };
	int la, lb, swaps, done = 0, fd;
	uint64_t period;
	struct ftd_vmm_msg m;

	if (argc != 5)
		die("usage: %s", "ftvm_swapdrv SOCK_A SOCK_B SWAPS PERIOD_MS");
	swaps = atoi(argv[3]);
	period = strtoull(argv[4], NULL, 0);
	la = listen_on(argv[1]);
	lb = listen_on(argv[2]);
	printf("swapdrv: listening\n");
	fflush(stdout);
	pa.sock = accept4(la, NULL, NULL, SOCK_CLOEXEC);
	pb.sock = accept4(lb, NULL, NULL, SOCK_CLOEXEC);
	if (pa.sock < 0 || pb.sock < 0)
		die("accept: %s", strerror(errno));
	for (int i = 0; i < 2; i++) {
		struct peer *p = ps[i];

		if (recv_msg(p, &m, &fd) != 1 || m.type != FTD_VMM_HELLO)
			die("no HELLO from %s", p->name);
		m = (struct ftd_vmm_msg){ .type = FTD_VMM_ROLE, .role = p->role, .epoch = 1 };
		send_msg(p, &m);
	}
	for (int i = 0; i < 2; i++) {
		struct peer *p = ps[i];

		if (recv_msg(p, &m, &p->fd) != 1 || m.type != FTD_VMM_ATTACHED || p->fd < 0)
			die("no ATTACHED with an fd from %s", p->name);
		map_peer(p);
	}
	pump_pri = pri;
	pump_bak = bak;
	while (done < swaps) {
		struct peer old_pri = *pri, old_bak = *bak, *t;
		uint64_t t0, t1, t2, s;

		if (serve(period, NULL, 0, &m, &fd) < 0)
			break;
		/* Pause the primary; its last record is S. */
		t0 = now_ms();
		m = (struct ftd_vmm_msg){ .type = FTD_VMM_PAUSE };
		send_msg(pri, &m);
		m = expect(pri, FTD_VMM_PAUSED, &fd, 10000);
		s = m.seq;
		if (pump(pri, bak))
			die("ACKED to %s", pri->name);
		if (acked != s) {
			char e[64];

			snprintf(e, sizeof(e), "%llu, its log ends at %llu",
				 (unsigned long long)s, (unsigned long long)acked);
			die("PAUSED seq %s", e);
		}
		/* The backup replays up to S and stops there. */
		m = (struct ftd_vmm_msg){ .type = FTD_VMM_PAUSE, .seq = s };
		send_msg(bak, &m);
		m = expect(bak, FTD_VMM_PAUSED, &fd, 10000);
		if (m.seq != s)
			die("the backup paused at another seq (%s)", "not S");
		t1 = now_ms();
		/* Every output of the old log has left the old primary. */
		m.seq = s;
		if (pri->emitted < s && serve(10000, pri, FTD_VMM_EMITTED, &m, &fd) != 1)
			die("no EMITTED >= PAUSED seq from %s", pri->name);
		m = (struct ftd_vmm_msg){ .type = FTD_VMM_RESUME, .role = FTD_VMM_ROLE_BACKUP,
					  .epoch = 1 };
		send_msg(pri, &m);
		m.role = FTD_VMM_ROLE_PRIMARY;
		send_msg(bak, &m);
		pri->role = FTD_VMM_ROLE_BACKUP;
		bak->role = FTD_VMM_ROLE_PRIMARY;
		pri->want_attach = bak->want_attach = true;
		if (serve(10000, NULL, FTD_VMM_ATTACHED, &m, &fd) != 1)
			die("no ATTACHED with an fd from %s", pri->want_attach ? pri->name : bak->name);
		t2 = now_ms();
		unmap_peer(&old_pri);
		unmap_peer(&old_bak);
		t = pri;
		pri = bak;
		bak = t;
		pri->emitted = 0;
		acked = 0;
		pump_pri = pri;
		pump_bak = bak;
		done++;
		printf("swapdrv: swap %d at seq %llu: paused both in %llu ms, swapped in %llu ms; "
		       "%s is the primary\n", done, (unsigned long long)s,
		       (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1), pri->name);
		fflush(stdout);
	}
	/* Serve until an ftvm goes away (the test stops them). */
	while (serve(1000, NULL, 0, &m, &fd) >= 0)
		;
	printf("swapdrv: %d of %d swaps\n", done, swaps);
	return done == swaps ? 0 : 1;
}
