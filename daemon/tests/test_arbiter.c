// SPDX-License-Identifier: GPL-2.0
/*
 * Tests of daemon/arbiter.c on a real O_DIRECT file.
 *
 * What they prove:
 * - format/open/dump round trip at 512 B and 4 KiB sectors; CRC32C check value;
 * - a corrupt copy of a double-buffered record falls back to the other copy,
 *   and two bad copies are an error (no ballot, no decision), never "empty";
 *   a read whose two copies are served at different moments, around a
 *   rewrite and a torn write, still returns the newest record;
 * - epoch fencing: a ballot for an old epoch is refused by the epoch record
 *   and, mid-ballot, by a peer dblock of a later epoch; only the winner can
 *   advance the epoch;
 * - a node whose I/O fails at any point of a ballot never reports a win that
 *   the disk does not hold, and the healthy node decides;
 * - randomized races: two processes run the ballot for one epoch at the same
 *   moment, with random delays, crashes at every hook point, torn writes and
 *   I/O errors, restarting crashed nodes; after every trial at most one winner,
 *   the two decision slots agree, a "winner = me" is the decided one, epochs
 *   and each node's (epoch, mbal) never go backwards, and a straggler of the
 *   finished epoch is refused; in half the trials the winner advances and
 *   decides the next epoch at once, while the loser may still be mid-ballot.
 * Environment: FT_SEED (repeat a run), FT_ARB_TRIALS (default 600),
 * FT_ARB_DIR (where the test file goes; default $TMPDIR or /var/tmp).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arbiter.h"
#include "crc32c.h"
#include "tap.h"

#define CRASH_EXIT	77

static char area[4096];
static uint32_t dev_ssz;	/* FT_ARB_DEV: a block device's logical sector */
static const uint8_t uuid[16] = { 0x6b, 0x76, 0x6d, 0x5f, 0x66, 0x74, 0x01,
				  0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
				  0x09, 0x0a };

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static unsigned int rnd_below(unsigned int n)
{
	return n ? (unsigned int)(rnd() % n) : 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_us(unsigned int us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

static struct ft_arb *open_node(unsigned int n)
{
	struct ft_arb *a = NULL;
	int ret = ft_arb_open(area, n, &a);

	if (ret) {
		printf("# ft_arb_open(%s, %u): %s\n", area, n, strerror(-ret));
		return NULL;
	}
	ft_arb_set_backoff(a, 0, 3);
	return a;
}

/* Overwrites bytes of a slot behind the arbiter's back (buffered + fsync). */
static void scribble(unsigned int slot, unsigned int off, unsigned int len)
{
	int fd = open(area, O_RDWR);
	uint8_t junk[512];

	for (unsigned int i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(rnd() | 1);
	if (fd < 0 || len > sizeof(junk) ||
	    pwrite(fd, junk, len, (off_t)slot * FT_ARB_SLOT_SIZE + off) !=
		    (ssize_t)len || fsync(fd))
		perror("scribble");
	if (fd >= 0)
		close(fd);
}

/* On a block device every format detects the sector size itself. */
static int format(uint32_t ssz)
{
	int ret = ft_arb_format(area, uuid, dev_ssz ? 0 : ssz, 1);

	if (ret)
		printf("# format: %s\n", strerror(-ret));
	return ret;
}

static void test_crc(void)
{
	ok(ft_crc32c(0, "123456789", 9) == 0xE3069283u,
	   "crc32c check value of \"123456789\" is 0xE3069283");
	ok(ft_crc32c(ft_crc32c(0, "1234", 4), "56789", 5) == 0xE3069283u,
	   "crc32c continues across calls");
}

static void test_roundtrip(uint32_t ssz)
{
	struct ft_arb *a, *o;
	struct ft_arb_epoch er;
	struct ft_arb_dblock d;
	struct ft_arb_decision dec;
	struct ft_arb_hb hb;
	uint8_t u[16];
	char *dump = NULL;
	size_t dlen = 0;
	unsigned int w = 9;
	FILE *f;

	if (dev_ssz)
		ssz = dev_ssz;
	ok(format(ssz) == 0, "format %u B sectors", ssz);
	a = open_node(1);
	o = open_node(0);
	if (!a || !o) {
		ok(0, "open after format");
		return;
	}
	ft_arb_pair_uuid(a, u);
	ok(ft_arb_sector_size(a) == ssz && !memcmp(u, uuid, 16),
	   "open: sector size %u and pair uuid read back", ssz);
	ok(!ft_arb_read_epoch(o, &er) && er.epoch == 1 && er.primary == 1 &&
	   er.backup == 2 && er.state == FT_ARB_PAIRED,
	   "epoch record: epoch 1, primary 1, backup 2, PAIRED");
	ok(!ft_arb_read_dblock(o, 2, &d) && d.epoch == 0 && d.mbal == 0 &&
	   d.bal == 0 && d.inp == 0 && d.seq == 1,
	   "dblock[2] formatted empty (both copies valid, newest seq 1)");
	ok(!ft_arb_read_decision(o, 1, &dec) && dec.epoch == 0 &&
	   dec.winner == 0, "decision[1] formatted empty");
	ok(ft_arb_run_ballot(o, 1, &w) == -EPERM && w == 9,
	   "an observer cannot run a ballot");
	ok(!ft_arb_heartbeat_write(a, 1, 7) && !ft_arb_heartbeat_write(a, 1, 8) &&
	   !ft_arb_heartbeat_read(o, 1, &hb) && hb.counter == 2 &&
	   hb.state == 8 && hb.epoch == 1, "heartbeat counter and state");
	f = open_memstream(&dump, &dlen);
	ok(f && ft_arb_dump(o, f) == 0, "dump succeeds");
	if (f)
		fclose(f);
	ok(dump && strstr(dump, "slot 12 mailbox") &&
	   strstr(dump, "current epoch 1 primary 1 backup 2") &&
	   !strstr(dump, "INVALID"), "dump shows all 13 slots valid");
	free(dump);
	ft_arb_close(a);
	ft_arb_close(o);
}

/* Uncontended ballot, decision reuse, advance, fencing, mailbox. */
static void test_ballot_and_epochs(void)
{
	struct ft_arb *n1, *n2;
	struct ft_arb_decision d1, d2;
	struct ft_arb_epoch er;
	struct ft_arb_stats st;
	struct ft_arb_mail m;
	unsigned int w1 = 0, w2 = 0, w = 0;

	format(4096);
	n1 = open_node(1);
	n2 = open_node(2);
	if (!n1 || !n2)
		return;
	ok(!ft_arb_run_ballot(n1, 1, &w1) && w1 == 1,
	   "uncontended ballot for epoch 1: node 1 wins");
	ok(!ft_arb_run_ballot(n2, 1, &w2) && w2 == 1,
	   "node 2's later ballot returns the same winner");
	ft_arb_get_stats(n2, &st);
	ok(st.known == 1 && st.rounds == 0 && st.writes == 0,
	   "node 2 learned it from decision[1] without writing");
	ok(!ft_arb_read_decision(n1, 1, &d1) && d1.epoch == 1 &&
	   d1.winner == 1 && !ft_arb_read_decision(n1, 2, &d2) &&
	   d2.epoch == 0, "decision[1] = (1, node 1); decision[2] untouched");
	ok(!ft_arb_mailbox_write(n1, 2, 1, FT_ARB_MAIL_LOST, 1) &&
	   !ft_arb_mailbox_read(n2, 2, &m) && m.type == FT_ARB_MAIL_LOST &&
	   m.epoch == 1 && m.winner == 1 && m.from == 1,
	   "mailbox: LOST epoch 1 winner 1 delivered to node 2");
	ok(ft_arb_mailbox_write(n1, 1, 1, FT_ARB_MAIL_LOST, 1) == -EINVAL,
	   "a node cannot write its own mailbox");
	ok(ft_arb_advance_epoch(n2, 2, 2, 1) == -EPERM &&
	   ft_arb_advance_epoch(n2, 2, 2, 0) == -EPERM &&
	   ft_arb_advance_epoch(n2, 2, 1, 2) == -EINVAL,
	   "the loser cannot advance the epoch it lost");
	ok(ft_arb_advance_epoch(n1, 3, 1, 2) == -EINVAL,
	   "the winner cannot skip an epoch");
	ok(!ft_arb_advance_epoch(n1, 2, 1, 2) && !ft_arb_read_epoch(n2, &er) &&
	   er.epoch == 2 && er.primary == 1 && er.backup == 2 &&
	   er.decided_by == 1, "winner advances to epoch 2");
	ok(ft_arb_advance_epoch(n1, 2, 1, 2) == -ESTALE,
	   "advancing to the same epoch twice is refused");
	w = 0;
	ok(ft_arb_run_ballot(n2, 1, &w) == -ESTALE && w == 0,
	   "stale-epoch ballot (epoch 1 < 2) refused with -ESTALE");
	ok(ft_arb_run_ballot(n2, 3, &w) == -EAGAIN && w == 0,
	   "future-epoch ballot refused with -EAGAIN");
	ok(ft_arb_advance_epoch(n2, 3, 2, 0) == -EPERM,
	   "a node that did not win epoch 2 cannot advance it");
	ok(!ft_arb_run_ballot(n2, 2, &w) && w == 2,
	   "epoch 2: node 2 runs first and wins");
	ok(!ft_arb_advance_epoch(n2, 3, 2, 0) && !ft_arb_read_epoch(n1, &er) &&
	   er.epoch == 3 && er.state == FT_ARB_SOLO && er.backup == 0,
	   "node 2 advances to epoch 3 SOLO");
	ft_arb_close(n1);
	ft_arb_close(n2);
}

/* Peer dblock of a later epoch seen mid-ballot: -ESTALE, nothing decided. */
struct stale_ctx {
	bool fired;
	int r_ballot1, r_adv, r_ballot2;
	unsigned int w1, w2;
};

static void stale_at(void *ctx, enum ft_arb_point pt, uint64_t e, uint64_t m)
{
	struct stale_ctx *c = ctx;
	struct ft_arb *n1;

	(void)e;
	(void)m;
	if (pt != FT_ARB_PT_START || c->fired)
		return;
	c->fired = true;
	/* node 1 wins epoch 1, advances, and starts epoch 2's ballot */
	n1 = open_node(1);
	if (!n1)
		return;
	c->r_ballot1 = ft_arb_run_ballot(n1, 1, &c->w1);
	c->r_adv = ft_arb_advance_epoch(n1, 2, 1, 2);
	c->r_ballot2 = ft_arb_run_ballot(n1, 2, &c->w2);
	ft_arb_close(n1);
}

static void test_stale_peer(void)
{
	struct stale_ctx c = { 0 };
	struct ft_arb_hooks h = { .at = stale_at, .ctx = &c };
	struct ft_arb *n2;
	struct ft_arb_decision d;
	unsigned int w = 0;
	int ret;

	format(512);
	n2 = open_node(2);
	if (!n2)
		return;
	ft_arb_set_hooks(n2, &h);
	ret = ft_arb_run_ballot(n2, 1, &w);
	ok(c.fired && !c.r_ballot1 && c.w1 == 1 && !c.r_adv && !c.r_ballot2 &&
	   c.w2 == 1, "node 1 won epochs 1 and 2 while node 2 was mid-ballot");
	ok(ret == -ESTALE && w == 0,
	   "straggler sees the peer's epoch-2 dblock: -ESTALE (got %d)", ret);
	ok(!ft_arb_read_decision(n2, 2, &d) && d.winner == 0,
	   "straggler wrote no decision");
	ft_arb_close(n2);
}

/*
 * Replays, on the real code, the interleaving with which SPIN refutes the
 * rule "take the peer's inp if its bal >= ours, else me" (model/arbiter.pml,
 * -DBUG_DOC_RULE). A crash is a longjmp out of the hook; the node restarts
 * with a fresh handle, as a restarted process would.
 *   1. node 2 commits itself at mbal 4 and crashes before its decision write;
 *   2. node 1 (mbal 7) adopts 2 and writes phase 2 (7, 7, inp 2);
 *   3. meanwhile node 2 restarts, writes phase 1 (10, bal 4, inp 2), crashes;
 *   4. node 1's phase-2 read sees mbal 10: abort; it retries at mbal 13,
 *      where its own bal 7 beats the peer's bal 4: it must keep inp 2.
 */
struct scen {
	enum ft_arb_point crash_at;
	jmp_buf *jb;
	bool step3_done;
	int r3;
	uint64_t mbal3;
};

static void crash_at(void *ctx, enum ft_arb_point pt, uint64_t e, uint64_t m)
{
	struct scen *c = ctx;

	(void)e;
	if (pt == c->crash_at) {
		c->mbal3 = m;
		longjmp(*c->jb, 1);
	}
}

static void node1_at(void *ctx, enum ft_arb_point pt, uint64_t e, uint64_t m)
{
	struct scen *c = ctx;
	jmp_buf jb;
	struct scen c2 = { .crash_at = FT_ARB_PT_P1_WRITTEN, .jb = &jb };
	struct ft_arb_hooks h2 = { .at = crash_at, .ctx = &c2 };
	struct ft_arb *volatile n2;
	unsigned int w = 0;

	(void)e;
	(void)m;
	if (pt != FT_ARB_PT_P2_WRITTEN || c->step3_done)
		return;
	c->step3_done = true;
	n2 = open_node(2);
	if (!n2)
		return;
	ft_arb_set_hooks(n2, &h2);
	if (!setjmp(jb))
		c->r3 = ft_arb_run_ballot(n2, 1, &w);
	else
		c->mbal3 = c2.mbal3;
	ft_arb_close(n2);
}

static void test_scenario_doc_rule(void)
{
	jmp_buf jb;
	struct scen c2 = { .crash_at = FT_ARB_PT_P2_READ, .jb = &jb };
	struct scen c1 = { .r3 = 1 };
	struct ft_arb_hooks h2 = { .at = crash_at, .ctx = &c2 };
	struct ft_arb_hooks h1 = { .at = node1_at, .ctx = &c1 };
	struct ft_arb *volatile n2;
	struct ft_arb *n1;
	struct ft_arb_dblock d;
	unsigned int w1 = 0, w2 = 0;
	volatile bool crashed = false;

	format(4096);
	n2 = open_node(2);
	if (!n2)
		return;
	ft_arb_set_hooks(n2, &h2);
	if (!setjmp(jb))
		ft_arb_run_ballot(n2, 1, &w2);
	else
		crashed = true;
	ft_arb_close(n2);
	ok(crashed && c2.mbal3 == 4 && w2 == 0,
	   "scenario: node 2 committed itself at mbal 4, crashed before "
	   "its decision");
	n1 = open_node(1);
	if (!n1)
		return;
	ft_arb_set_hooks(n1, &h1);
	ok(!ft_arb_run_ballot(n1, 1, &w1) && w1 == 2,
	   "scenario: node 1 keeps the adopted value 2 after its round was "
	   "preempted (got %u)", w1);
	ok(c1.step3_done && c1.r3 == 1 && c1.mbal3 == 10 &&
	   !ft_arb_read_dblock(n1, 1, &d) && d.mbal == 13,
	   "scenario: interleaving as planned (node 2 phase 1 at mbal %llu, "
	   "node 1 retried at %llu)", (unsigned long long)c1.mbal3,
	   (unsigned long long)d.mbal);
	ft_arb_close(n1);
	n2 = open_node(2);
	if (n2 && !ft_arb_run_ballot(n2, 1, &w2))
		ok(w2 == 2, "scenario: node 2 restarted learns winner 2");
	ft_arb_close(n2);
}

/* ft_arb_ballot_once() preempted mid-round: -EBUSY, then the peer's value. */
struct once_ctx {
	bool fired;
	int r2;
	unsigned int w2;
};

static void once_at(void *ctx, enum ft_arb_point pt, uint64_t e, uint64_t m)
{
	struct once_ctx *c = ctx;
	struct ft_arb *n2;

	(void)e;
	(void)m;
	if (pt != FT_ARB_PT_P1_WRITTEN || c->fired)
		return;
	c->fired = true;
	n2 = open_node(2);
	if (n2)
		c->r2 = ft_arb_ballot_once(n2, 1, &c->w2);
	ft_arb_close(n2);
}

static void test_ballot_once(void)
{
	struct once_ctx c = { .r2 = 1 };
	struct ft_arb_hooks h = { .at = once_at, .ctx = &c };
	struct ft_arb *n1;
	struct ft_arb_stats st;
	unsigned int w = 0;
	int ret;

	format(4096);
	n1 = open_node(1);
	if (!n1)
		return;
	ft_arb_set_hooks(n1, &h);
	ret = ft_arb_ballot_once(n1, 1, &w);
	ok(c.fired && c.r2 == 0 && c.w2 == 2,
	   "node 2 ran a whole round inside node 1's round and won");
	ok(ret == -EBUSY && w == 0, "node 1's preempted round: -EBUSY (%d)",
	   ret);
	ret = ft_arb_ballot_once(n1, 1, &w);
	ft_arb_get_stats(n1, &st);
	ok(ret == 0 && w == 2 && st.rounds == 1 && st.aborts == 1 &&
	   st.known == 1, "next call learns winner 2 from the decision");
	ft_arb_close(n1);
}

/*
 * A reader's collect of dblock[1] is split between its two copies, and in
 * the gap node 1 rewrites copy 0 and tears copy 1 (it dies mid-write). The
 * read must return the newest record (seq 4), not the copy-0 record the
 * split collect saw first (seq 2, older than the seq-3 record that was
 * newest when the read began).
 */
struct split_ctx {
	bool split_done;
	int writes;
	uint32_t ssz;
	struct ft_arb *n1;
	jmp_buf jb;
};

static ssize_t tear_io(void *ctx, int fd, bool wr, void *buf, size_t len,
		       off_t off)
{
	struct split_ctx *c = ctx;

	if (wr && ++c->writes == 2) {
		uint8_t *b = buf;

		for (size_t i = 256; i < FT_ARB_REC_SIZE; i++)
			b[i] ^= 0xa5;
		if (pwrite(fd, buf, len, off) != (ssize_t)len)
			perror("tear");
		longjmp(c->jb, 1);
	}
	return wr ? pwrite(fd, buf, len, off) : pread(fd, buf, len, off);
}

static void writer_in_gap(struct split_ctx *c)
{
	struct ft_arb_hooks h = { .io = tear_io, .ctx = c };
	unsigned int w = 0;

	ft_arb_set_hooks(c->n1, &h);
	if (!setjmp(c->jb))
		ft_arb_ballot_once(c->n1, 2, &w);
}

static ssize_t split_io(void *ctx, int fd, bool wr, void *buf, size_t len,
			off_t off)
{
	struct split_ctx *c = ctx;
	ssize_t n, m;

	if (wr || c->split_done || len <= FT_ARB_SLOT_SIZE ||
	    off != (off_t)FT_ARB_SLOT_DBLOCK * FT_ARB_SLOT_SIZE)
		return wr ? pwrite(fd, buf, len, off) : pread(fd, buf, len, off);
	c->split_done = true;
	n = pread(fd, buf, c->ssz, off);
	writer_in_gap(c);
	m = pread(fd, (uint8_t *)buf + c->ssz, len - c->ssz, off + c->ssz);
	return n < 0 || m < 0 ? -1 : n + m;
}

static void test_split_read(void)
{
	struct split_ctx c = { 0 };
	struct ft_arb_hooks h = { .io = split_io, .ctx = &c };
	struct ft_arb *obs;
	struct ft_arb_dblock d = { 0 };
	unsigned int w = 0;
	int ret;

	format(4096);
	c.n1 = open_node(1);
	obs = open_node(0);
	if (!c.n1 || !obs)
		return;
	c.ssz = ft_arb_sector_size(obs);
	ok(!ft_arb_run_ballot(c.n1, 1, &w) && w == 1 &&
	   !ft_arb_advance_epoch(c.n1, 2, 1, 2),
	   "split read: node 1 won epoch 1 (dblock copies seq 2, 3), epoch 2");
	ft_arb_set_hooks(obs, &h);
	ret = ft_arb_read_dblock(obs, 1, &d);
	ok(c.split_done && c.writes == 2, "split read: node 1 wrote seq 4 and "
	   "tore seq 5 between the reader's two copies");
	ok(ret == 0 && d.seq == 4 && d.epoch == 2 && d.bal == 0,
	   "split read returns the newest record (seq %llu, epoch %llu), not "
	   "the stale copy seen first", (unsigned long long)d.seq,
	   (unsigned long long)d.epoch);
	ft_arb_close(c.n1);
	ft_arb_close(obs);
}

static void test_corruption(void)
{
	struct ft_arb *n1, *n2;
	struct ft_arb_epoch er;
	struct ft_arb_dblock d;
	struct ft_arb_decision dec;
	unsigned int w = 0;
	int ret;

	format(4096);
	n1 = open_node(1);
	n2 = open_node(2);
	if (!n1 || !n2)
		return;
	/* epoch record: copy 0 = (1, seq 0), copy 1 = (1, seq 1) */
	scribble(FT_ARB_SLOT_EPOCH + 1, 100, 4);
	ok(!ft_arb_read_epoch(n1, &er) && er.epoch == 1 && er.seq == 0,
	   "epoch record: CRC-bad newest copy -> the other copy (seq 0)");
	scribble(FT_ARB_SLOT_EPOCH, 508, 4);
	ret = ft_arb_read_epoch(n1, &er);
	ok(ret == -EBADMSG, "epoch record: both copies bad -> -EBADMSG");
	ret = ft_arb_run_ballot(n1, 1, &w);
	ok(ret == -EBADMSG && w == 0,
	   "ballot with an unreadable epoch record fails, no winner");

	format(4096);
	/* node 1 ballots so that its dblock copies differ */
	ok(!ft_arb_run_ballot(n1, 1, &w) && w == 1, "node 1 wins epoch 1");
	ok(!ft_arb_read_dblock(n2, 1, &d) && d.epoch == 1 && d.bal == d.mbal &&
	   d.inp == 1 && d.seq == 3, "dblock[1] after phase 2: seq 3, inp 1");
	/* torn: the first half of the newest copy (slot 3 + (3 & 1)) replaced */
	scribble(FT_ARB_SLOT_DBLOCK + 1, 0, 256);
	ok(!ft_arb_read_dblock(n2, 1, &d) && d.seq == 2 && d.bal == 0,
	   "torn newest dblock copy -> phase-1 copy (seq 2, bal 0)");
	scribble(FT_ARB_SLOT_DBLOCK, 300, 8);
	ok(ft_arb_read_dblock(n2, 1, &d) == -EBADMSG,
	   "dblock with both copies torn -> -EBADMSG, not empty");
	/* wipe decision[1] too so that node 1 must use its dblock */
	scribble(FT_ARB_SLOT_DECISION, 40, 8);
	ok(ft_arb_read_decision(n2, 1, &dec) == -EBADMSG,
	   "torn decision[1] reads as -EBADMSG");
	w = 0;
	ret = ft_arb_run_ballot(n1, 1, &w);
	ok(ret == -EBADMSG && w == 0,
	   "node 1 with its own dblock unreadable does not ballot (%d)", ret);
	ret = ft_arb_run_ballot(n2, 1, &w);
	ok(ret == -EBADMSG && w == 0,
	   "node 2 with the peer's dblock unreadable does not ballot (%d)",
	   ret);
	ft_arb_close(n1);
	ft_arb_close(n2);
}

/* I/O hook failing every I/O from number fail_from on (reads or writes). */
struct fail_ctx {
	int n, fail_from;
	bool writes_only;
};

static ssize_t fail_io(void *ctx, int fd, bool wr, void *buf, size_t len,
		       off_t off)
{
	struct fail_ctx *c = ctx;

	if (c->n++ >= c->fail_from && (wr || !c->writes_only)) {
		errno = EIO;
		return -1;
	}
	return wr ? pwrite(fd, buf, len, off) : pread(fd, buf, len, off);
}

static void test_io_errors(void)
{
	int bad = 0, healthy_ok = 0, sweeps = 0, adopted = 0, nio;
	int err_before = 0, ok_at_end = 0;
	struct ft_arb_stats st;
	struct ft_arb *n;
	unsigned int w;

	/* I/Os of one uncontended ballot: the sweep fails each of them */
	format(4096);
	n = open_node(1);
	if (!n)
		return;
	ft_arb_get_stats(n, &st);
	nio = -(int)(st.reads + st.writes);	/* open read the superblock */
	if (ft_arb_run_ballot(n, 1, &w))
		return;
	ft_arb_get_stats(n, &st);
	ft_arb_close(n);
	nio += (int)(st.reads + st.writes);
	for (int wo = 0; wo < 2; wo++) {
		for (int k = 0; k <= nio; k++) {
			struct fail_ctx c = { .fail_from = k,
					      .writes_only = wo };
			struct ft_arb_hooks h = { .io = fail_io, .ctx = &c };
			struct ft_arb *n1, *n2;
			unsigned int w1 = 0, w2 = 0, w1b = 0, dw = 0;
			int r1, r2, r1b;

			format(4096);
			n1 = open_node(1);
			n2 = open_node(2);
			if (!n1 || !n2)
				return;
			ft_arb_set_hooks(n1, &h);
			r1 = ft_arb_run_ballot(n1, 1, &w1);
			if (k < nio)
				err_before += r1 == -EIO;
			else
				ok_at_end += !r1 && w1 == 1;
			r2 = ft_arb_run_ballot(n2, 1, &w2);
			ft_arb_set_hooks(n1, NULL);
			r1b = ft_arb_run_ballot(n1, 1, &w1b);
			ft_arb_decided(n2, 1, &dw);
			sweeps++;
			if (!r2 && !r1b && w2 == w1b && dw == w2)
				healthy_ok++;
			/*
			 * If node 1 failed after its phase-2 write, node 2
			 * may adopt node 1's value: that is Paxos, not a win
			 * by node 1's process, which reported nothing.
			 */
			if ((r1 && w1) || (!r1 && w1 != dw) || r2)
				bad++;
			adopted += r1 && w2 == 1;
			ft_arb_close(n1);
			ft_arb_close(n2);
		}
	}
	ok(err_before == 2 * nio, "I/O failing from I/O #k, each k < %d (all "
	   "I/O or writes only): -EIO every time (%d of %d)", nio, err_before,
	   2 * nio);
	ok(ok_at_end == 2, "failing only after the ballot's %d I/Os: node 1 "
	   "wins", nio);
	ok(bad == 0, "a node whose I/O failed never reported a win; the healthy "
	   "node decided (adopting the failed node's phase-2 value %d times)",
	   adopted);
	ok(healthy_ok == sweeps, "after healing both agree on the decided "
	   "winner (%d/%d)", healthy_ok, sweeps);
	{
		struct fail_ctx c = { .fail_from = 0 };
		struct ft_arb_hooks h = { .io = fail_io, .ctx = &c };
		struct ft_arb *n1;
		int errs = 0;
		unsigned int w = 0;

		format(4096);
		n1 = open_node(1);
		if (!n1)
			return;
		ft_arb_set_hooks(n1, &h);
		for (int i = 0; i < 100; i++)
			errs += ft_arb_run_ballot(n1, 1, &w) == -EIO;
		ok(errs == 100 && w == 0,
		   "a node with a dead disk retried 100 ballots: all -EIO, "
		   "never live");
		ft_arb_close(n1);
	}
}

/* ---- randomized concurrent trials ---- */

struct child_res {
	int ret;
	unsigned int winner;
	uint64_t rounds, aborts, io_errors, ns;
	int eager, eager_ret;	/* the winner moved on to epoch + 1 */
	unsigned int eager_winner;
};

struct shared {
	struct child_res res[3];
};

struct plan {
	int crash_pt;		/* enum ft_arb_point or -1 */
	int torn_write;		/* crash tearing write number n (1-based) */
	unsigned int eio_pct;	/* chance of EIO per I/O */
	bool eager;		/* a winner advances and ballots epoch + 1 */
	uint64_t seed;
	int writes;
};

static ssize_t plan_io(void *ctx, int fd, bool wr, void *buf, size_t len,
		       off_t off)
{
	struct plan *p = ctx;

	if (p->eio_pct && rnd_below(100) < p->eio_pct) {
		errno = EIO;
		return -1;
	}
	if (wr && ++p->writes == p->torn_write) {
		/* half the new record reaches the disk, then the node dies */
		uint8_t *b = buf;

		for (size_t i = 256; i < 512; i++)
			b[i] ^= 0x5a;
		if (pwrite(fd, buf, len, off) < 0)
			_exit(CRASH_EXIT + 1);
		_exit(CRASH_EXIT);
	}
	return wr ? pwrite(fd, buf, len, off) : pread(fd, buf, len, off);
}

static void plan_at(void *ctx, enum ft_arb_point pt, uint64_t e, uint64_t m)
{
	struct plan *p = ctx;

	(void)e;
	(void)m;
	if ((int)pt == p->crash_pt)
		_exit(CRASH_EXIT);
}

static void child(unsigned int node, uint64_t epoch, int go_fd,
		  struct plan *p, struct child_res *res, unsigned int delay_us)
{
	struct ft_arb_hooks h = { .io = plan_io, .at = plan_at, .ctx = p };
	struct ft_arb *a;
	struct ft_arb_stats st;
	uint64_t t0;
	char c;
	int ret;

	rng_state = p->seed;
	if (go_fd >= 0 && read(go_fd, &c, 1) != 1)
		_exit(2);
	if (delay_us)
		sleep_us(delay_us);
	t0 = now_ns();
	if (ft_arb_open(area, node, &a))
		_exit(3);
	ft_arb_set_backoff(a, 0, 3);
	ft_arb_set_seed(a, p->seed);
	ft_arb_set_hooks(a, &h);
	/*
	 * The daemon's loop: an I/O error means wait and ballot again. Half
	 * the nodes drive single rounds with their own backoff, as an event
	 * loop would.
	 */
	do {
		if (p->seed & 1)
			ret = ft_arb_ballot_once(a, epoch, &res->winner);
		else
			ret = ft_arb_run_ballot(a, epoch, &res->winner);
		if (ret == -EIO) {
			p->eio_pct /= 2;
			sleep_us(200);
		} else if (ret == -EBUSY) {
			sleep_us(rnd_below(3000));
		}
	} while (ret == -EIO || ret == -EBUSY);
	res->ns = now_ns() - t0;
	ft_arb_get_stats(a, &st);
	res->ret = ret;
	/*
	 * An eager winner moves on at once (no faults from here): the loser,
	 * possibly still mid-ballot for epoch, then meets a peer dblock of
	 * epoch + 1 and must stop with -ESTALE, never decide epoch again.
	 */
	if (!ret && res->winner == node && p->eager) {
		ft_arb_set_hooks(a, NULL);
		res->eager_ret = ft_arb_advance_epoch(a, epoch + 1, node,
						      3 - node);
		if (!res->eager_ret) {
			res->eager = 1;
			res->eager_ret = ft_arb_run_ballot(a, epoch + 1,
							   &res->eager_winner);
		}
	}
	res->rounds = st.rounds;
	res->aborts = st.aborts;
	res->io_errors = st.io_errors;
	ft_arb_close(a);
	_exit(0);
}

struct totals {
	unsigned long trials, wins[3], crashes, torn, restarts, rounds,
		      aborts, io_errors, violations, contended, eager,
		      fenced;
	uint64_t ns_sum, ns_max;
};

static pid_t spawn(unsigned int node, uint64_t epoch, int go_fd,
		   struct plan *p, struct shared *sh, unsigned int delay_us)
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0)
		child(node, epoch, go_fd, p, &sh->res[node], delay_us);
	return pid;
}

static void random_plan(struct plan *p, int crash_pct)
{
	memset(p, 0, sizeof(*p));
	p->crash_pt = -1;
	p->seed = rnd();
	if ((int)rnd_below(100) < crash_pct) {
		if (rnd_below(3) == 0)
			p->torn_write = 1 + (int)rnd_below(4);
		else
			p->crash_pt = (int)rnd_below(FT_ARB_PT_COUNT);
	} else if (rnd_below(8) == 0) {
		p->eio_pct = 10 + rnd_below(40);
	}
	p->eager = rnd_below(2);
}

#define VIOL(...) do { printf("# VIOLATION trial %lu: ", t->trials); \
		       printf(__VA_ARGS__); printf("\n"); \
		       t->violations++; } while (0)

/* One epoch's race; returns the decided winner or 0 on a failed trial. */
static unsigned int trial(uint64_t epoch, struct shared *sh, struct totals *t,
			  struct ft_arb *obs, uint64_t last[3][2], int *eager)
{
	struct plan plan[3];
	pid_t pid[3];
	int go[2], crashes[3] = { 0 };
	unsigned int winner = 0, dw = 0;
	struct ft_arb_decision d[3];
	struct ft_arb_epoch er;

	memset(sh, 0, sizeof(*sh));
	if (pipe(go))
		return 0;
	for (unsigned int n = 1; n <= 2; n++) {
		random_plan(&plan[n], 35);
		sh->res[n].ret = 1;
		pid[n] = spawn(n, epoch, go[0], &plan[n], sh, rnd_below(1500));
	}
	close(go[0]);
	/* release both at once */
	if (write(go[1], "gg", 2) != 2)
		return 0;
	close(go[1]);
	for (int live = 2; live > 0;) {
		int status;
		pid_t p = wait(&status);
		unsigned int n = p == pid[1] ? 1 : p == pid[2] ? 2 : 0;

		if (p < 0 || !n)
			return 0;
		if (WIFEXITED(status) && WEXITSTATUS(status) >= CRASH_EXIT &&
		    WEXITSTATUS(status) <= CRASH_EXIT + 1) {
			/* crashed: restart it, maybe to crash again */
			t->crashes++;
			t->torn += plan[n].torn_write > 0;
			t->restarts++;
			random_plan(&plan[n], ++crashes[n] < 3 ? 30 : 0);
			pid[n] = spawn(n, epoch, -1, &plan[n], sh,
				       rnd_below(500));
			continue;
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			VIOL("node %u exited with status %#x", n, status);
			return 0;
		}
		live--;
	}
	t->contended += sh->res[1].rounds && sh->res[2].rounds;
	*eager = sh->res[1].eager || sh->res[2].eager;
	t->eager += *eager;
	for (unsigned int n = 1; n <= 2; n++) {
		struct child_res *r = &sh->res[n];

		t->rounds += r->rounds;
		t->aborts += r->aborts;
		t->io_errors += r->io_errors;
		if (r->ret == -ESTALE && sh->res[3 - n].eager) {
			t->fenced++;
			continue;
		}
		if (r->ret) {
			VIOL("node %u ballot returned %d", n, r->ret);
			continue;
		}
		if (r->winner != 1 && r->winner != 2)
			VIOL("node %u got winner %u", n, r->winner);
		else if (winner && winner != r->winner)
			VIOL("two winners: %u and %u", winner, r->winner);
		else
			winner = r->winner;
		if (r->eager && (r->eager_ret || r->eager_winner != n ||
				 r->winner != n))
			VIOL("eager node %u: epoch + 1 ballot %d winner %u", n,
			     r->eager_ret, r->eager_winner);
	}
	if (!winner)
		VIOL("no node returned a winner");
	/* on disk: decisions agree with each other and with what was returned */
	for (unsigned int n = 1; n <= 2; n++) {
		struct ft_arb_dblock db;
		int ret = ft_arb_read_decision(obs, n, &d[n]);

		if (ret == -EBADMSG)
			d[n].epoch = 0;
		else if (ret)
			VIOL("decision[%u] read: %d", n, ret);
		/* an eager winner decided epoch + 1 for itself too */
		if ((d[n].epoch == epoch || d[n].epoch == epoch + *eager) &&
		    d[n].winner != winner)
			VIOL("decision[%u] = %u for epoch %llu, nodes returned "
			     "%u", n, d[n].winner,
			     (unsigned long long)d[n].epoch, winner);
		if (d[n].epoch > epoch + *eager)
			VIOL("decision[%u] from the future", n);
		if (ft_arb_read_dblock(obs, n, &db))
			VIOL("dblock[%u] unreadable after the trial", n);
		else if (db.epoch > epoch + *eager || db.epoch < last[n][0] ||
			 (db.epoch == last[n][0] && db.mbal < last[n][1]))
			VIOL("dblock[%u] (epoch, mbal) went backwards", n);
		last[n][0] = db.epoch;
		last[n][1] = db.mbal;
	}
	if (ft_arb_decided(obs, epoch + *eager, &dw) || dw != winner)
		VIOL("ft_arb_decided says %u, winner %u", dw, winner);
	if (ft_arb_read_epoch(obs, &er) || er.epoch != epoch + *eager)
		VIOL("epoch record is %llu after the trial",
		     (unsigned long long)er.epoch);
	for (unsigned int n = 1; n <= 2; n++) {
		uint64_t ns = sh->res[n].ns;

		t->ns_sum += ns;
		if (ns > t->ns_max)
			t->ns_max = ns;
	}
	return winner;
}

/* After a trial: the winner advances; the loser's straggler is refused. */
static void advance(uint64_t epoch, unsigned int winner, struct totals *t)
{
	struct ft_arb *w = open_node(winner), *l = open_node(3 - winner);
	unsigned int x = 0;
	int r;

	if (!w || !l) {
		VIOL("open for advance");
		goto out;
	}
	r = ft_arb_advance_epoch(l, epoch + 1, 3 - winner, winner);
	if (r != -EPERM && r != -EINVAL)
		VIOL("loser advanced the epoch (%d)", r);
	r = ft_arb_advance_epoch(w, epoch + 1, winner, 3 - winner);
	if (r)
		VIOL("winner could not advance (%d)", r);
	r = ft_arb_run_ballot(l, epoch, &x);
	if (r != -ESTALE || x)
		VIOL("straggler ballot for epoch %llu: %d",
		     (unsigned long long)epoch, r);
out:
	ft_arb_close(w);
	ft_arb_close(l);
}

static void test_races(void)
{
	const char *s = getenv("FT_ARB_TRIALS");
	unsigned long n = s ? strtoul(s, NULL, 0) : 600;
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct totals t = { 0 };
	struct ft_arb *obs = NULL;
	uint64_t epoch = 0, last[3][2] = { { 0 } }, t0 = now_ns();
	unsigned long failed = 0;

	if (sh == MAP_FAILED) {
		ok(0, "mmap");
		return;
	}
	for (t.trials = 0; t.trials < n; t.trials++) {
		unsigned int w;
		int eager;

		/* a fresh area every 25 epochs, alternating 512 B / 4 KiB */
		if (t.trials % 25 == 0) {
			ft_arb_close(obs);
			format((t.trials / 25) % 2 ? 512 : 4096);
			obs = open_node(0);
			if (!obs) {
				ok(0, "open observer");
				return;
			}
			epoch = 1;
			memset(last, 0, sizeof(last));
		}
		w = trial(epoch, sh, &t, obs, last, &eager);
		if (!w) {
			failed++;
			break;
		}
		t.wins[w]++;
		epoch += eager;
		advance(epoch, w, &t);
		epoch++;
	}
	ft_arb_close(obs);
	munmap(sh, sizeof(*sh));
	printf("# races: %lu trials in %.1f s: wins node1 %lu node2 %lu, "
	       "crashes %lu (torn writes %lu), restarts %lu, both nodes ran "
	       "rounds in %lu, rounds %lu, aborted rounds (retries) %lu, "
	       "I/O errors injected %lu, eager winners %lu, loser ballots "
	       "fenced by them (-ESTALE) %lu\n", t.trials,
	       (double)(now_ns() - t0) / 1e9, t.wins[1], t.wins[2], t.crashes,
	       t.torn, t.restarts, t.contended, t.rounds, t.aborts,
	       t.io_errors, t.eager, t.fenced);
	printf("# races: start-to-decision per node (random faults included): "
	       "mean %.2f ms, max %.2f ms\n",
	       t.trials ? (double)t.ns_sum / 2e6 / (double)t.trials : 0.0,
	       (double)t.ns_max / 1e6);
	ok(failed == 0 && t.trials == n, "all %lu race trials completed", n);
	ok(t.violations == 0, "no safety violation in %lu trials "
	   "(one winner, decisions agree, winner=me is decided, monotonic)",
	   t.trials);
	ok(n < 100 || (t.wins[1] && t.wins[2] && t.crashes && t.aborts &&
		       t.eager),
	   "the trials exercised both winners, crashes, duelling rounds and "
	   "eager winners");
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Liveness figure, printed not asserted: default 50-500 ms backoff. */
static void measure(void)
{
	enum { N = 15 };
	uint64_t un[N], co[2 * N];
	struct shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	unsigned long aborts = 0;

	if (sh == MAP_FAILED)
		return;
	for (int i = 0; i < N; i++) {
		struct ft_arb *a;
		unsigned int w;
		uint64_t t0;

		format(4096);
		a = open_node(1 + (i & 1));
		if (!a)
			return;
		t0 = now_ns();
		ft_arb_run_ballot(a, 1, &w);
		un[i] = now_ns() - t0;
		ft_arb_close(a);
	}
	for (int i = 0; i < N; i++) {
		struct plan p = { .crash_pt = -1 };
		int go[2];
		pid_t pid[3];

		format(4096);
		if (pipe(go))
			return;
		for (unsigned int n = 1; n <= 2; n++) {
			p.seed = rnd();
			fflush(stdout);
			pid[n] = fork();
			if (pid[n] == 0) {
				struct ft_arb *a;
				struct child_res *r = &sh->res[n];
				struct ft_arb_stats st;
				char c;
				uint64_t t0;

				if (read(go[0], &c, 1) != 1 ||
				    ft_arb_open(area, n, &a))
					_exit(2);
				ft_arb_set_seed(a, p.seed);
				t0 = now_ns();
				r->ret = ft_arb_run_ballot(a, 1, &r->winner);
				r->ns = now_ns() - t0;
				ft_arb_get_stats(a, &st);
				r->aborts = st.aborts;
				_exit(0);
			}
		}
		close(go[0]);
		if (write(go[1], "gg", 2) != 2)
			return;
		close(go[1]);
		for (unsigned int n = 1; n <= 2; n++)
			waitpid(pid[n], NULL, 0);
		co[2 * i] = sh->res[1].ns;
		co[2 * i + 1] = sh->res[2].ns;
		aborts += sh->res[1].aborts + sh->res[2].aborts;
	}
	qsort(un, N, sizeof(un[0]), cmp_u64);
	qsort(co, 2 * N, sizeof(co[0]), cmp_u64);
	printf("# liveness: uncontended ballot median %.2f ms max %.2f ms "
	       "(%d runs)\n", (double)un[N / 2] / 1e6, (double)un[N - 1] / 1e6,
	       N);
	printf("# liveness: both nodes at once, default 50-500 ms backoff: "
	       "median %.1f ms, max %.1f ms (%d ballots, %lu aborted rounds)\n",
	       (double)co[N] / 1e6, (double)co[2 * N - 1] / 1e6, 2 * N,
	       aborts);
	munmap(sh, sizeof(*sh));
}

static int pick_dir(void)
{
	const char *dirs[] = { getenv("FT_ARB_DIR"), getenv("TMPDIR"),
			       "/var/tmp", "." };

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (!dirs[i])
			continue;
		snprintf(area, sizeof(area), "%s/ft_arb_test.%d", dirs[i],
			 (int)getpid());
		if (!ft_arb_format(area, uuid, 4096, 1))
			return 0;
		unlink(area);
	}
	return -1;
}

static int use_dev(const char *dev)
{
	struct stat st;
	int fd, v = 0;

	snprintf(area, sizeof(area), "%s", dev);
	fd = open(dev, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) || !S_ISBLK(st.st_mode) ||
	    ioctl(fd, BLKSSZGET, &v)) {
		printf("# FT_ARB_DEV=%s is not a usable block device\n", dev);
		return -1;
	}
	close(fd);
	dev_ssz = (uint32_t)v;
	return 0;
}

int main(void)
{
	const char *dev = getenv("FT_ARB_DEV");
	struct ft_arb *a = NULL;

	rng_state = tap_seed();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (dev ? use_dev(dev) : pick_dir()) {
		printf("1..0 # SKIP no O_DIRECT area\n");
		return dev ? 1 : 4;
	}
	printf("# area %s, sector size %u\n", area, dev_ssz ? dev_ssz : 4096);
	ok(!ft_arb_format(area, uuid, 0, 1) && !ft_arb_open(area, 0, &a) &&
	   ft_arb_sector_size(a) == (dev_ssz ? dev_ssz : 4096),
	   "format with sector size 0 picks %s",
	   dev_ssz ? "BLKSSZGET" : "4096 on a regular file");
	ft_arb_close(a);
	if (dev_ssz > 512)
		ok(ft_arb_format(area, uuid, 512, 1) == -EINVAL,
		   "format refuses 512 B records on a %u B-sector device",
		   dev_ssz);
	test_crc();
	test_roundtrip(4096);
	test_roundtrip(512);
	test_ballot_and_epochs();
	test_stale_peer();
	test_scenario_doc_rule();
	test_ballot_once();
	test_corruption();
	test_split_read();
	test_io_errors();
	test_races();
	measure();
	if (!dev_ssz)
		unlink(area);
	return tap_done();
}
