// SPDX-License-Identifier: GPL-2.0
/*
 * Epoch test-and-set on a shared disk: two-node, single-disk Disk Synod.
 *
 * Per epoch e, each node n owns dblock[n] = (epoch, mbal, bal, inp). A ballot
 * with number mbal = k*2 + n (unique per node, larger than any the node has
 * written or seen) runs:
 *   phase 1: write dblock[me] = (e, mbal, bal, inp) keeping bal/inp,
 *            read dblock[peer]; abort if its mbal is larger.
 *            v = inp of the block (own or peer) with the largest bal > 0,
 *            or me if neither has one.
 *   phase 2: write dblock[me] = (e, mbal, mbal, v), read dblock[peer];
 *            abort if its mbal is larger. Otherwise v is committed.
 *   then write decision[me] = (e, v) so that later callers learn v in two
 *   reads. An aborted round backs off randomly and retries with a larger mbal.
 *
 * Note on the choice in phase 1: it must take the *highest bal of both
 * blocks*, own included. Taking "the peer's inp if its bal is at least ours,
 * else me" loses a value this node had adopted from the peer in an earlier
 * round; the model (model/arbiter.pml, -DBUG_DOC_RULE) finds the resulting
 * split decision in a few steps.
 *
 * Epoch fencing: a block holding an older epoch counts as the initial value
 * (0, 0, 0); a peer block, decision or epoch record holding a *later* epoch
 * means the caller's epoch is over (-ESTALE). The peer only writes a later
 * epoch after it won this one and advanced the epoch record, so treating such
 * a block as "initial" would let a straggler decide a second winner.
 *
 * Every write is a synchronous pwrite of one logical sector on an
 * O_DIRECT|O_DSYNC descriptor, so a node never has two writes outstanding to
 * its own slot, and a write has reached the disk before the read that follows
 * it is issued. Double-buffered records alternate copies by seq parity: the
 * newest valid copy has seq s in copy s & 1, the next write goes to the other
 * copy, so a torn write can only destroy the copy being replaced.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arbiter.h"
#include "crc32c.h"

#define CRC_LEN		offsetof(struct ft_arb_disk_rec, crc32c)
#define FORMAT_SIZE	(1u << 20)	/* area + room: guest data starts at 1 MiB */
#define PAIR_MAX_COLLECTS 64	/* the peer writes a few times per round */

struct ft_arb {
	int fd;
	unsigned int node;	/* 1, 2, or 0 for an observer */
	uint32_t ssz;		/* bytes per record I/O: the logical sector */
	uint8_t uuid[16];
	void *buf;		/* 2 slots, aligned for O_DIRECT */
	struct ft_arb_hooks hooks;
	unsigned int bo_min, bo_max;
	uint64_t rng;
	uint64_t seen_mbal;	/* largest peer mbal seen in the current epoch */
	uint64_t seen_epoch;
	struct ft_arb_stats st;
};

static unsigned int peer_of(unsigned int n)
{
	return 3 - n;
}

static unsigned int dblock_slot(unsigned int n)
{
	return FT_ARB_SLOT_DBLOCK + 2 * (n - 1);
}

static bool valid_node(unsigned int n)
{
	return n == 1 || n == 2;
}

static uint64_t rng_next(struct ft_arb *a)
{
	/* splitmix64: only spreads backoffs, nothing depends on its quality */
	uint64_t z = (a->rng += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void encode(const struct ft_arb *a, const struct ft_arb_rec *r,
		   void *out)
{
	struct ft_arb_disk_rec d;

	memset(&d, 0, sizeof(d));
	memcpy(d.magic, FT_ARB_MAGIC, sizeof(d.magic));
	d.version = htole32(FT_ARB_VERSION);
	d.kind = htole32(r->kind);
	memcpy(d.pair_uuid, a->uuid, sizeof(d.pair_uuid));
	d.node_id = htole32(r->node_id);
	d.slot = htole32(r->slot);
	d.epoch = htole64(r->epoch);
	d.seq = htole64(r->seq);
	d.x = htole64(r->x);
	d.y = htole64(r->y);
	d.a = htole32(r->a);
	d.b = htole32(r->b);
	d.c = htole32(r->c);
	d.d = htole32(r->d);
	d.crc32c = htole32(ft_crc32c(0, &d, CRC_LEN));
	memcpy(out, &d, sizeof(d));
}

/* check_uuid is false only while reading the superblock that supplies it. */
static int decode(const struct ft_arb *a, const void *in, unsigned int slot,
		  uint32_t kind, bool check_uuid, struct ft_arb_rec *r)
{
	struct ft_arb_disk_rec d;

	memcpy(&d, in, sizeof(d));
	if (memcmp(d.magic, FT_ARB_MAGIC, sizeof(d.magic)) ||
	    le32toh(d.crc32c) != ft_crc32c(0, &d, CRC_LEN) ||
	    le32toh(d.version) != FT_ARB_VERSION ||
	    le32toh(d.kind) != kind || le32toh(d.slot) != slot ||
	    (check_uuid && memcmp(d.pair_uuid, a->uuid, sizeof(a->uuid))))
		return -EBADMSG;
	r->kind = kind;
	r->node_id = le32toh(d.node_id);
	r->slot = slot;
	r->epoch = le64toh(d.epoch);
	r->seq = le64toh(d.seq);
	r->x = le64toh(d.x);
	r->y = le64toh(d.y);
	r->a = le32toh(d.a);
	r->b = le32toh(d.b);
	r->c = le32toh(d.c);
	r->d = le32toh(d.d);
	return 0;
}

static int do_io(struct ft_arb *a, bool wr, void *buf, size_t len, off_t off)
{
	ssize_t n;

	/* EINTR means nothing was transferred: a retry is not a second write */
	do {
		if (a->hooks.io)
			n = a->hooks.io(a->hooks.ctx, a->fd, wr, buf, len, off);
		else if (wr)
			n = pwrite(a->fd, buf, len, off);
		else
			n = pread(a->fd, buf, len, off);
	} while (n < 0 && errno == EINTR);
	if (wr)
		a->st.writes++;
	else
		a->st.reads++;
	if (n < 0 || (size_t)n != len) {
		a->st.io_errors++;
		return n < 0 && errno ? -errno : -EIO;
	}
	return 0;
}

static int write_rec(struct ft_arb *a, const struct ft_arb_rec *r)
{
	memset(a->buf, 0, a->ssz);
	encode(a, r, a->buf);
	return do_io(a, true, a->buf, a->ssz, (off_t)r->slot * FT_ARB_SLOT_SIZE);
}

static int read_rec(struct ft_arb *a, unsigned int slot, uint32_t kind,
		    struct ft_arb_rec *r)
{
	int ret = do_io(a, false, a->buf, a->ssz,
			(off_t)slot * FT_ARB_SLOT_SIZE);

	return ret ? ret : decode(a, a->buf, slot, kind, true, r);
}

static bool newer(const struct ft_arb_rec *x, const struct ft_arb_rec *y)
{
	return x->epoch > y->epoch || (x->epoch == y->epoch && x->seq > y->seq);
}

/*
 * Reads both copies of a double-buffered record and returns the valid one
 * with the highest (epoch, seq); -EBADMSG if neither is valid.
 *
 * One read of both copies is not atomic against the writer (a disk, or
 * O_DIRECT on a file, may serve the two copies at different moments): the
 * reader could take copy 0 (seq n), the writer then write seq n+2 into copy 0
 * and tear seq n+3 into copy 1, and the reader would return seq n although
 * n+1 was already on the disk when it started, a value older than one the
 * peer may already have acted on (the model's -DDBUF -DBUG_SINGLE_COLLECT
 * turns this into two winners). So the copies are collected twice and only
 * two identical collects count: each copy then held its value throughout the
 * interval between the collects, so the pair is a snapshot from one moment,
 * and in any snapshot the newest copy is intact (a tear only ever hits the
 * copy being rewritten, the older one).
 */
static int read_pair(struct ft_arb *a, unsigned int slot, uint32_t kind,
		     struct ft_arb_rec *r)
{
	uint8_t prev[2][FT_ARB_REC_SIZE], *p = a->buf;
	struct ft_arb_rec c[2];
	int ok[2], ret;

	for (int collect = 0;; collect++) {
		if (collect == PAIR_MAX_COLLECTS)
			return -ETIMEDOUT;
		ret = do_io(a, false, p, FT_ARB_SLOT_SIZE + a->ssz,
			    (off_t)slot * FT_ARB_SLOT_SIZE);
		if (ret)
			return ret;
		if (collect &&
		    !memcmp(prev[0], p, FT_ARB_REC_SIZE) &&
		    !memcmp(prev[1], p + FT_ARB_SLOT_SIZE, FT_ARB_REC_SIZE))
			break;
		memcpy(prev[0], p, FT_ARB_REC_SIZE);
		memcpy(prev[1], p + FT_ARB_SLOT_SIZE, FT_ARB_REC_SIZE);
	}
	for (int i = 0; i < 2; i++)
		ok[i] = !decode(a, prev[i], slot + i, kind, true, &c[i]);
	if (!ok[0] && !ok[1])
		return -EBADMSG;
	if (ok[0] && ok[1])
		*r = newer(&c[1], &c[0]) ? c[1] : c[0];
	else
		*r = ok[0] ? c[0] : c[1];
	return 0;
}

/* The next write to a pair goes to the copy the newest one is not in. */
static void next_copy(struct ft_arb_rec *r, unsigned int base, uint64_t seq)
{
	r->seq = seq + 1;
	r->slot = base + (unsigned int)(r->seq & 1);
}

int ft_arb_read_epoch(struct ft_arb *a, struct ft_arb_epoch *e)
{
	struct ft_arb_rec r;
	int ret = read_pair(a, FT_ARB_SLOT_EPOCH, FT_ARB_K_EPOCH, &r);

	if (ret)
		return ret;
	*e = (struct ft_arb_epoch){ .epoch = r.epoch, .seq = r.seq,
		.primary = r.a, .backup = r.b, .state = r.c,
		.decided_by = r.d };
	return 0;
}

int ft_arb_read_dblock(struct ft_arb *a, unsigned int node,
		       struct ft_arb_dblock *d)
{
	struct ft_arb_rec r;
	int ret;

	if (!valid_node(node))
		return -EINVAL;
	ret = read_pair(a, dblock_slot(node), FT_ARB_K_DBLOCK, &r);
	if (ret)
		return ret;
	*d = (struct ft_arb_dblock){ .epoch = r.epoch, .seq = r.seq,
		.mbal = r.x, .bal = r.y, .inp = r.a };
	return 0;
}

int ft_arb_read_decision(struct ft_arb *a, unsigned int node,
			 struct ft_arb_decision *d)
{
	struct ft_arb_rec r;
	int ret;

	if (!valid_node(node))
		return -EINVAL;
	ret = read_rec(a, FT_ARB_SLOT_DECISION + node - 1, FT_ARB_K_DECISION,
		       &r);
	if (ret)
		return ret;
	*d = (struct ft_arb_decision){ .epoch = r.epoch, .mbal = r.x,
		.winner = r.a };
	return 0;
}

/*
 * A decision record only caches what the dblocks already committed, so an
 * invalid one (a writer that crashed mid-write) is ignored here: the ballot
 * finds the committed value again. I/O errors are returned.
 */
int ft_arb_decided(struct ft_arb *a, uint64_t epoch, unsigned int *winner)
{
	unsigned int w = 0;

	for (unsigned int n = 1; n <= 2; n++) {
		struct ft_arb_decision d;
		int ret = ft_arb_read_decision(a, n, &d);

		if (ret == -EBADMSG)
			continue;
		if (ret)
			return ret;
		if (d.epoch > epoch)
			return -ESTALE;
		if (d.epoch != epoch || !d.winner)
			continue;
		if (w && w != d.winner)
			return -EIO;
		w = d.winner;
	}
	*winner = w;
	return 0;
}

static void hook(struct ft_arb *a, enum ft_arb_point pt, uint64_t epoch,
		 uint64_t mbal)
{
	if (a->hooks.at)
		a->hooks.at(a->hooks.ctx, pt, epoch, mbal);
}

static void backoff(struct ft_arb *a)
{
	uint64_t span = a->bo_max > a->bo_min ? a->bo_max - a->bo_min : 0;
	uint64_t us = (uint64_t)a->bo_min * 1000 +
		      (span ? rng_next(a) % (span * 1000 + 1) : 0);
	struct timespec ts = { .tv_sec = us / 1000000,
			       .tv_nsec = (long)(us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Reads the peer's dblock as seen by a ballot for epoch. */
static int read_peer(struct ft_arb *a, uint64_t epoch, struct ft_arb_dblock *p)
{
	int ret = ft_arb_read_dblock(a, peer_of(a->node), p);

	if (ret)
		return ret;
	if (p->epoch > epoch)
		return -ESTALE;
	if (p->epoch < epoch)
		*p = (struct ft_arb_dblock){ .epoch = epoch, .seq = p->seq };
	if (a->seen_epoch != epoch) {
		a->seen_epoch = epoch;
		a->seen_mbal = 0;
	}
	if (p->mbal > a->seen_mbal)
		a->seen_mbal = p->mbal;
	return 0;
}

static int write_dblock(struct ft_arb *a, uint64_t seq, uint64_t epoch,
			uint64_t mbal, uint64_t bal, uint32_t inp)
{
	struct ft_arb_rec r = { .kind = FT_ARB_K_DBLOCK, .node_id = a->node,
				.epoch = epoch, .x = mbal, .y = bal, .a = inp };

	next_copy(&r, dblock_slot(a->node), seq);
	return write_rec(a, &r);
}

/*
 * Single-copy records (decision, heartbeat, mailbox) carry the writer's
 * counter: one more than what the slot holds, 1 if it is unreadable.
 */
static int write_single(struct ft_arb *a, struct ft_arb_rec *r)
{
	struct ft_arb_rec old;
	int ret = read_rec(a, r->slot, r->kind, &old);

	if (ret && ret != -EBADMSG)
		return ret;
	r->seq = ret ? 1 : old.seq + 1;
	if (r->kind == FT_ARB_K_HEARTBEAT)
		r->x = r->seq;
	return write_rec(a, r);
}

/* One round; returns 1 if a peer's larger mbal aborted it. */
static int ballot_round(struct ft_arb *a, uint64_t epoch, unsigned int *winner)
{
	struct ft_arb_dblock own, peer;
	uint64_t mbal, base, seq, vbal = 0;
	unsigned int me = a->node, v = me;
	int ret;

	/* Own block from disk, not memory: this may be a restarted node. */
	ret = ft_arb_read_dblock(a, me, &own);
	if (ret)
		return ret;
	if (own.epoch > epoch)
		return -ESTALE;
	seq = own.seq;
	if (own.epoch < epoch)
		own = (struct ft_arb_dblock){ .epoch = epoch };
	ret = read_peer(a, epoch, &peer);
	if (ret)
		return ret;
	base = own.mbal > a->seen_mbal ? own.mbal : a->seen_mbal;
	mbal = (base / 2 + 1) * 2 + me;

	ret = write_dblock(a, seq++, epoch, mbal, own.bal, own.inp);
	if (ret)
		return ret;
	hook(a, FT_ARB_PT_P1_WRITTEN, epoch, mbal);
	ret = read_peer(a, epoch, &peer);
	if (ret)
		return ret;
	hook(a, FT_ARB_PT_P1_READ, epoch, mbal);
	if (peer.mbal > mbal)
		return 1;
	if (own.bal > vbal) {
		vbal = own.bal;
		v = own.inp;
	}
	if (peer.bal > vbal) {
		vbal = peer.bal;
		v = peer.inp;
	}
	if (!valid_node(v))
		return -EBADMSG;	/* a bal without a value: corrupt */

	ret = write_dblock(a, seq, epoch, mbal, mbal, v);
	if (ret)
		return ret;
	hook(a, FT_ARB_PT_P2_WRITTEN, epoch, mbal);
	ret = read_peer(a, epoch, &peer);
	if (ret)
		return ret;
	hook(a, FT_ARB_PT_P2_READ, epoch, mbal);
	if (peer.mbal > mbal)
		return 1;

	/* v is committed for epoch; the decision record only caches it */
	ret = write_single(a, &(struct ft_arb_rec){ .kind = FT_ARB_K_DECISION,
			   .node_id = me, .epoch = epoch, .x = mbal, .a = v,
			   .slot = FT_ARB_SLOT_DECISION + me - 1 });
	if (ret)
		return ret;
	hook(a, FT_ARB_PT_DECIDED, epoch, mbal);
	*winner = v;
	return 0;
}

int ft_arb_ballot_once(struct ft_arb *a, uint64_t epoch, unsigned int *winner)
{
	struct ft_arb_epoch er;
	unsigned int w;
	int ret;

	if (!valid_node(a->node))
		return -EPERM;
	ret = ft_arb_read_epoch(a, &er);
	if (ret)
		return ret;
	if (er.epoch > epoch)
		return -ESTALE;
	if (er.epoch < epoch)
		return -EAGAIN;
	ret = ft_arb_decided(a, epoch, &w);
	if (ret)
		return ret;
	if (w) {
		a->st.known++;
		*winner = w;
		return 0;
	}
	hook(a, FT_ARB_PT_START, epoch, 0);
	a->st.rounds++;
	ret = ballot_round(a, epoch, winner);
	if (ret > 0) {
		a->st.aborts++;
		return -EBUSY;
	}
	return ret;
}

int ft_arb_run_ballot(struct ft_arb *a, uint64_t epoch, unsigned int *winner)
{
	int ret;

	a->st.ballots++;
	while ((ret = ft_arb_ballot_once(a, epoch, winner)) == -EBUSY)
		backoff(a);
	return ret;
}

int ft_arb_advance_epoch(struct ft_arb *a, uint64_t new_epoch,
			 unsigned int primary, unsigned int backup)
{
	struct ft_arb_epoch er;
	struct ft_arb_rec r;
	unsigned int w;
	int ret;

	if (!valid_node(a->node))
		return -EPERM;
	if (primary != a->node || (backup && backup != peer_of(a->node)) ||
	    new_epoch < 2)
		return -EINVAL;
	ret = ft_arb_read_epoch(a, &er);
	if (ret)
		return ret;
	if (er.epoch >= new_epoch)
		return -ESTALE;
	if (er.epoch != new_epoch - 1)
		return -EINVAL;
	ret = ft_arb_decided(a, er.epoch, &w);
	if (ret)
		return ret;
	if (w != a->node)
		return -EPERM;
	r = (struct ft_arb_rec){ .kind = FT_ARB_K_EPOCH, .node_id = a->node,
		.epoch = new_epoch, .a = primary, .b = backup,
		.c = backup ? FT_ARB_PAIRED : FT_ARB_SOLO, .d = a->node };
	next_copy(&r, FT_ARB_SLOT_EPOCH, er.seq);
	return write_rec(a, &r);
}

int ft_arb_heartbeat_write(struct ft_arb *a, uint64_t epoch, uint32_t state)
{
	struct timespec ts;
	struct ft_arb_rec r = { .kind = FT_ARB_K_HEARTBEAT, .node_id = a->node,
				.epoch = epoch, .a = state };

	if (!valid_node(a->node))
		return -EPERM;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	r.y = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	r.slot = FT_ARB_SLOT_HEARTBEAT + a->node - 1;
	return write_single(a, &r);	/* also sets the counter (x) */
}

int ft_arb_heartbeat_read(struct ft_arb *a, unsigned int node,
			  struct ft_arb_hb *hb)
{
	struct ft_arb_rec r;
	int ret;

	if (!valid_node(node))
		return -EINVAL;
	ret = read_rec(a, FT_ARB_SLOT_HEARTBEAT + node - 1, FT_ARB_K_HEARTBEAT,
		       &r);
	if (ret)
		return ret;
	*hb = (struct ft_arb_hb){ .epoch = r.epoch, .counter = r.x,
		.mono_ms = r.y, .state = r.a };
	return 0;
}

int ft_arb_mailbox_write(struct ft_arb *a, unsigned int to_node,
			 uint64_t epoch, uint32_t type, unsigned int winner)
{
	if (!valid_node(a->node))
		return -EPERM;
	if (to_node != peer_of(a->node))
		return -EINVAL;	/* mailbox[n] has one writer: n's peer */
	return write_single(a, &(struct ft_arb_rec){
		.kind = FT_ARB_K_MAILBOX, .node_id = a->node, .epoch = epoch,
		.a = type, .b = winner, .c = a->node,
		.slot = FT_ARB_SLOT_MAILBOX + to_node - 1 });
}

int ft_arb_mailbox_read(struct ft_arb *a, unsigned int node,
			struct ft_arb_mail *m)
{
	struct ft_arb_rec r;
	int ret;

	if (!valid_node(node))
		return -EINVAL;
	ret = read_rec(a, FT_ARB_SLOT_MAILBOX + node - 1, FT_ARB_K_MAILBOX, &r);
	if (ret)
		return ret;
	*m = (struct ft_arb_mail){ .epoch = r.epoch, .type = r.a,
		.winner = r.b, .from = r.c };
	return 0;
}

/* Logical sector size of fd: BLKSSZGET on a block device, else 0. */
static int detect_ssz(int fd, bool *blk, uint32_t *ssz)
{
	struct stat st;
	int v;

	if (fstat(fd, &st))
		return -errno;
	*blk = S_ISBLK(st.st_mode);
	*ssz = 0;
	if (!*blk)
		return S_ISREG(st.st_mode) ? 0 : -EINVAL;
	if (ioctl(fd, BLKSSZGET, &v))
		return -errno;
	if (v < 512 || v > (int)FT_ARB_SLOT_SIZE || (v & (v - 1)))
		return -EINVAL;
	*ssz = (uint32_t)v;
	return 0;
}

static struct ft_arb *alloc_arb(int fd, unsigned int node, uint32_t ssz)
{
	struct ft_arb *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	if (posix_memalign(&a->buf, FT_ARB_SLOT_SIZE, 2 * FT_ARB_SLOT_SIZE)) {
		free(a);
		return NULL;
	}
	a->fd = fd;
	a->node = node;
	a->ssz = ssz;
	a->bo_min = 50;
	a->bo_max = 500;
	if (getrandom(&a->rng, sizeof(a->rng), 0) != sizeof(a->rng))
		a->rng = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
	return a;
}

int ft_arb_format(const char *path, const uint8_t pair_uuid[16],
		  uint32_t sector_size, unsigned int first_primary)
{
	uint32_t dev_ssz;
	struct ft_arb *a;
	struct stat st;
	bool blk;
	int fd, ret;

	if (!valid_node(first_primary) ||
	    (sector_size && sector_size != 512 && sector_size != 4096))
		return -EINVAL;
	fd = open(path, O_RDWR | O_CREAT | O_DIRECT | O_DSYNC | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return -errno;
	ret = detect_ssz(fd, &blk, &dev_ssz);
	if (ret)
		goto out_close;
	if (!sector_size)
		sector_size = blk ? dev_ssz : 4096;
	if (blk && sector_size < dev_ssz) {
		ret = -EINVAL;
		goto out_close;
	}
	if (!blk && (fstat(fd, &st) || (st.st_size < FORMAT_SIZE &&
					 ftruncate(fd, FORMAT_SIZE)))) {
		ret = -errno;
		goto out_close;
	}
	a = alloc_arb(fd, 0, sector_size);
	if (!a) {
		ret = -ENOMEM;
		goto out_close;
	}
	memcpy(a->uuid, pair_uuid, sizeof(a->uuid));

	/*
	 * Every slot gets a valid record so that "unreadable" always means
	 * damage. The superblock goes last: an interrupted format stays
	 * unformatted rather than half-formatted.
	 */
	for (unsigned int s = 1; s < FT_ARB_NSLOTS && !ret; s++) {
		struct ft_arb_rec r = { .slot = s, .seq = 0 };

		if (s < FT_ARB_SLOT_DBLOCK) {
			r.kind = FT_ARB_K_EPOCH;
			r.epoch = 1;
			r.seq = s - FT_ARB_SLOT_EPOCH;
			r.a = first_primary;
			r.b = peer_of(first_primary);
			r.c = FT_ARB_PAIRED;
		} else if (s < FT_ARB_SLOT_DECISION) {
			r.kind = FT_ARB_K_DBLOCK;
			r.node_id = (s - FT_ARB_SLOT_DBLOCK) / 2 + 1;
			r.seq = (s - FT_ARB_SLOT_DBLOCK) & 1;
		} else if (s < FT_ARB_SLOT_HEARTBEAT) {
			r.kind = FT_ARB_K_DECISION;
		} else if (s < FT_ARB_SLOT_MAILBOX) {
			r.kind = FT_ARB_K_HEARTBEAT;
		} else {
			r.kind = FT_ARB_K_MAILBOX;
		}
		ret = write_rec(a, &r);
	}
	if (!ret) {
		struct ft_arb_rec r = { .kind = FT_ARB_K_SUPER,
			.slot = FT_ARB_SLOT_SUPER, .a = FT_ARB_SLOT_SIZE,
			.b = sector_size, .c = FT_ARB_NSLOTS, .d = 1 | 2 << 8,
			.x = (uint64_t)time(NULL), .y = first_primary };

		ret = write_rec(a, &r);
	}
	free(a->buf);
	free(a);
out_close:
	close(fd);
	return ret;
}

int ft_arb_open(const char *path, unsigned int node_id, struct ft_arb **out)
{
	struct ft_arb_rec sb;
	struct ft_arb *a;
	uint32_t dev_ssz;
	bool blk;
	int fd, ret;

	if (node_id > 2)
		return -EINVAL;
	fd = open(path, (node_id ? O_RDWR : O_RDONLY) | O_DIRECT | O_DSYNC |
		  O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = detect_ssz(fd, &blk, &dev_ssz);
	if (ret)
		goto err_close;
	/* a 4 KiB read is aligned for any logical sector size up to 4 KiB */
	a = alloc_arb(fd, node_id, FT_ARB_SLOT_SIZE);
	if (!a) {
		ret = -ENOMEM;
		goto err_close;
	}
	ret = do_io(a, false, a->buf, FT_ARB_SLOT_SIZE, 0);
	if (!ret)
		ret = decode(a, a->buf, FT_ARB_SLOT_SUPER, FT_ARB_K_SUPER,
			     false, &sb);
	if (!ret && (sb.a != FT_ARB_SLOT_SIZE || sb.c != FT_ARB_NSLOTS ||
		     (sb.b != 512 && sb.b != 4096)))
		ret = -EBADMSG;
	if (ret) {
		ft_arb_close(a);
		return ret;
	}
	memcpy(a->uuid, ((struct ft_arb_disk_rec *)a->buf)->pair_uuid, 16);
	a->ssz = sb.b > dev_ssz ? sb.b : dev_ssz;
	*out = a;
	return 0;

err_close:
	close(fd);
	return ret;
}

void ft_arb_close(struct ft_arb *a)
{
	if (!a)
		return;
	close(a->fd);
	free(a->buf);
	free(a);
}

void ft_arb_set_hooks(struct ft_arb *a, const struct ft_arb_hooks *h)
{
	a->hooks = h ? *h : (struct ft_arb_hooks){ 0 };
}

void ft_arb_set_backoff(struct ft_arb *a, unsigned int min_ms,
			unsigned int max_ms)
{
	a->bo_min = min_ms;
	a->bo_max = max_ms < min_ms ? min_ms : max_ms;
}

void ft_arb_set_seed(struct ft_arb *a, uint64_t seed)
{
	a->rng = seed;
}

void ft_arb_get_stats(const struct ft_arb *a, struct ft_arb_stats *st)
{
	*st = a->st;
}

unsigned int ft_arb_node_id(const struct ft_arb *a)
{
	return a->node;
}

uint32_t ft_arb_sector_size(const struct ft_arb *a)
{
	return a->ssz;
}

void ft_arb_pair_uuid(const struct ft_arb *a, uint8_t uuid[16])
{
	memcpy(uuid, a->uuid, 16);
}

static const char *const kind_name[] = {
	[FT_ARB_K_SUPER] = "super", [FT_ARB_K_EPOCH] = "epoch",
	[FT_ARB_K_DBLOCK] = "dblock", [FT_ARB_K_DECISION] = "decision",
	[FT_ARB_K_HEARTBEAT] = "heartbeat", [FT_ARB_K_MAILBOX] = "mailbox",
};

static uint32_t slot_kind(unsigned int s)
{
	return s == FT_ARB_SLOT_SUPER ? FT_ARB_K_SUPER :
	       s < FT_ARB_SLOT_DBLOCK ? FT_ARB_K_EPOCH :
	       s < FT_ARB_SLOT_DECISION ? FT_ARB_K_DBLOCK :
	       s < FT_ARB_SLOT_HEARTBEAT ? FT_ARB_K_DECISION :
	       s < FT_ARB_SLOT_MAILBOX ? FT_ARB_K_HEARTBEAT : FT_ARB_K_MAILBOX;
}

int ft_arb_dump(struct ft_arb *a, FILE *out)
{
	int first_err = 0;
	struct ft_arb_epoch er;
	char u[33];

	for (int i = 0; i < 16; i++)
		snprintf(u + 2 * i, 3, "%02x", a->uuid[i]);
	fprintf(out, "pair %s sector %u slot %u node %u\n", u, a->ssz,
		FT_ARB_SLOT_SIZE, a->node);
	for (unsigned int s = 0; s < FT_ARB_NSLOTS; s++) {
		uint32_t k = slot_kind(s);
		struct ft_arb_rec r;
		int ret = read_rec(a, s, k, &r);

		fprintf(out, "slot %2u %-9s ", s, kind_name[k]);
		if (ret) {
			fprintf(out, "%s\n", ret == -EBADMSG ? "INVALID" :
				strerror(-ret));
			if (!first_err && ret != -EBADMSG)
				first_err = ret;
			continue;
		}
		fprintf(out, "writer %u epoch %llu seq %llu", r.node_id,
			(unsigned long long)r.epoch,
			(unsigned long long)r.seq);
		switch (k) {
		case FT_ARB_K_SUPER:
			fprintf(out, " sector %u nslots %u first_primary %llu",
				r.b, r.c, (unsigned long long)r.y);
			break;
		case FT_ARB_K_EPOCH:
			fprintf(out, " primary %u backup %u %s decided_by %u",
				r.a, r.b, r.c == FT_ARB_SOLO ? "SOLO" : "PAIRED",
				r.d);
			break;
		case FT_ARB_K_DBLOCK:
			fprintf(out, " mbal %llu bal %llu inp %u",
				(unsigned long long)r.x,
				(unsigned long long)r.y, r.a);
			break;
		case FT_ARB_K_DECISION:
			fprintf(out, " winner %u mbal %llu", r.a,
				(unsigned long long)r.x);
			break;
		case FT_ARB_K_HEARTBEAT:
			fprintf(out, " counter %llu mono_ms %llu state %u",
				(unsigned long long)r.x,
				(unsigned long long)r.y, r.a);
			break;
		case FT_ARB_K_MAILBOX:
			fprintf(out, " type %s winner %u from %u",
				r.a == FT_ARB_MAIL_LOST ? "LOST" : "none",
				r.b, r.c);
			break;
		}
		fputc('\n', out);
	}
	if (!ft_arb_read_epoch(a, &er))
		fprintf(out, "current epoch %llu primary %u backup %u\n",
			(unsigned long long)er.epoch, er.primary, er.backup);
	else
		fprintf(out, "current epoch UNREADABLE\n");
	return first_err;
}
