/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared-disk arbitration: an epoch test-and-set built on two-node,
 * single-disk Disk Synod (Gafni & Lamport's Disk Paxos with one disk) over
 * plain O_DIRECT|O_DSYNC sector reads and writes. See shared/ARBITRATION.md for
 * the design and daemon/model/arbiter.pml for the model-checked algorithm.
 *
 * In each epoch exactly one node is decided: the one that may go live. The
 * node that wants to go live calls ft_arb_run_ballot(); whatever it returns is
 * the decided winner of that epoch for both nodes, forever. The loser halts.
 * Only the winner may later write the next epoch (ft_arb_advance_epoch()),
 * which fences every straggler of the old epoch (-ESTALE).
 *
 * On-disk layout (all integers little-endian, slots of FT_ARB_SLOT_SIZE bytes,
 * each record in the first 512 bytes of its slot and written with one I/O of
 * the logical sector size; a CRC32C over the record's first 508 bytes sits in
 * its last 4):
 *
 *   slot 0      superblock (formatting tool)
 *   slot 1, 2   epoch record, two alternating copies (live winner only)
 *   slot 3, 4   dblock[1], two alternating copies (node 1 only)
 *   slot 5, 6   dblock[2], two alternating copies (node 2 only)
 *   slot 7, 8   decision[1], decision[2] (each node its own)
 *   slot 9, 10  disk heartbeat[1], [2] (each node its own; diagnostics only)
 *   slot 11, 12 mailbox[1], [2] (written by the *other* node; liveness only)
 *
 * Double-buffered records are read as the valid copy with the highest
 * (epoch, seq) from two identical collects of both copies (a snapshot); if
 * neither copy is valid the slot is unreadable (-EBADMSG), never "empty".
 * Format writes a valid initial record into every slot.
 *
 * Where this departs from shared/ARBITRATION.md, and why:
 * - Phase-1 choice: the inp of the block with the highest bal, *own block
 *   included* (Disk Paxos), not "the peer's inp if its bal >= ours, else
 *   me": that rule drops a value this node adopted in an earlier round and
 *   SPIN finds two winners with it (model -DBUG_DOC_RULE; test_arbiter
 *   replays the interleaving on this code).
 * - Double-buffered reads collect both copies twice and accept only two
 *   identical collects: "use the other copy on a CRC failure" over a single
 *   non-atomic read can return a record older than one already on the disk
 *   (model -DDBUF -DBUG_SINGLE_COLLECT).
 * - Decision records are single copies and only cache what the dblocks
 *   committed, so an invalid one is ignored by the ballot (not an error).
 *
 * Errors are negative errno values:
 *   -EBADMSG  a record (both copies) failed its magic/CRC/uuid check
 *   -ESTALE   the on-disk epoch (or a peer's record) is past the caller's epoch:
 *             the caller's epoch is over and it must halt
 *   -EAGAIN   ft_arb_run_ballot() asked for an epoch the disk has not reached
 *   -EPERM    node 0 (observer) tried to write, or a non-winner tried to
 *             advance the epoch
 *   -EBUSY    ft_arb_ballot_once(): the round was preempted by the peer
 *   -ETIMEDOUT a double-buffered record kept changing under 64 collects
 *   -EIO etc. from the disk; the ballot never turns an I/O error into a win
 *
 * Every call does synchronous I/O and blocks until the disk answers (a round
 * is 16 record I/Os uncontended; ft_arb_run_ballot() also sleeps between
 * preempted rounds). An event loop should call ft_arb_ballot_once() from a
 * worker thread or child process if the disk may hang, and treat a missing
 * answer as "undecided", never as a win. A handle is not thread-safe; each
 * node must have at most one handle (process) running ballots at a time.
 */
#ifndef FT_ARBITER_H
#define FT_ARBITER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define FT_ARB_SLOT_SIZE	4096u
#define FT_ARB_REC_SIZE		512u
#define FT_ARB_NSLOTS		13u
#define FT_ARB_AREA_SIZE	(FT_ARB_SLOT_SIZE * FT_ARB_NSLOTS)
#define FT_ARB_VERSION		1u
#define FT_ARB_MAGIC		"FTARB\0v1"	/* 8 bytes, no terminator */

enum ft_arb_slot {
	FT_ARB_SLOT_SUPER = 0,
	FT_ARB_SLOT_EPOCH = 1,		/* and 2 */
	FT_ARB_SLOT_DBLOCK = 3,		/* node n: 3 + 2*(n-1), +1 */
	FT_ARB_SLOT_DECISION = 7,	/* node n: 7 + n-1 */
	FT_ARB_SLOT_HEARTBEAT = 9,	/* node n: 9 + n-1 */
	FT_ARB_SLOT_MAILBOX = 11,	/* for node n: 11 + n-1 */
};

enum ft_arb_kind {
	FT_ARB_K_SUPER = 1,
	FT_ARB_K_EPOCH = 2,
	FT_ARB_K_DBLOCK = 3,
	FT_ARB_K_DECISION = 4,
	FT_ARB_K_HEARTBEAT = 5,
	FT_ARB_K_MAILBOX = 6,
};

enum ft_arb_epoch_state { FT_ARB_PAIRED = 1, FT_ARB_SOLO = 2 };
enum ft_arb_mail_type { FT_ARB_MAIL_NONE = 0, FT_ARB_MAIL_LOST = 1 };

/*
 * The on-disk record, 512 bytes. Which body fields mean what depends on kind:
 *   SUPER     a = slot_size, b = logical_sector_size, c = nslots,
 *             d = node ids (1 | 2 << 8), x = creation time (s since epoch),
 *             y = first primary
 *   EPOCH     a = primary_id, b = backup_id (0 when SOLO), c = state,
 *             d = decided_by (the node that wrote it)
 *   DBLOCK    x = mbal, y = bal, a = inp (winner node id or 0)
 *   DECISION  a = winner, x = mbal that committed it
 *   HEARTBEAT x = counter, y = writer's CLOCK_MONOTONIC in ms, a = state
 *   MAILBOX   a = type (FT_ARB_MAIL_*), b = winner, c = from
 */
struct ft_arb_disk_rec {
	uint8_t magic[8];	/*   0 FT_ARB_MAGIC */
	uint32_t version;	/*   8 FT_ARB_VERSION */
	uint32_t kind;		/*  12 enum ft_arb_kind */
	uint8_t pair_uuid[16];	/*  16 copied from the superblock */
	uint32_t node_id;	/*  32 writer, 0 = formatting tool */
	uint32_t slot;		/*  36 slot index: catches misdirected writes */
	uint64_t epoch;		/*  40 */
	uint64_t seq;		/*  48 writer's counter for this slot (pair) */
	uint64_t x;		/*  56 */
	uint64_t y;		/*  64 */
	uint32_t a, b, c, d;	/*  72 */
	uint8_t reserved[420];	/*  88 zero */
	uint32_t crc32c;	/* 508 over bytes [0, 508) */
} __attribute__((packed));

_Static_assert(sizeof(struct ft_arb_disk_rec) == FT_ARB_REC_SIZE, "record size");

/* A decoded record (host byte order). */
struct ft_arb_rec {
	uint32_t kind, node_id, slot;
	uint64_t epoch, seq, x, y;
	uint32_t a, b, c, d;
};

struct ft_arb_epoch {
	uint64_t epoch, seq;
	uint32_t primary, backup, state, decided_by;
};

struct ft_arb_dblock {
	uint64_t epoch, seq, mbal, bal;
	uint32_t inp;
};

struct ft_arb_decision {
	uint64_t epoch, mbal;
	uint32_t winner;	/* 0: nothing decided for this epoch yet */
};

struct ft_arb_hb {
	uint64_t epoch, counter, mono_ms;
	uint32_t state;
};

struct ft_arb_mail {
	uint64_t epoch;
	uint32_t type, winner, from;
};

/* Points at which the crash hook is called during a ballot. */
enum ft_arb_point {
	FT_ARB_PT_START,		/* after reading epoch and decisions */
	FT_ARB_PT_P1_WRITTEN,		/* phase-1 dblock write completed */
	FT_ARB_PT_P1_READ,		/* peer dblock read in phase 1 */
	FT_ARB_PT_P2_WRITTEN,		/* phase-2 dblock write completed */
	FT_ARB_PT_P2_READ,		/* peer read in phase 2: value committed */
	FT_ARB_PT_DECIDED,		/* decision record written */
	FT_ARB_PT_COUNT
};

/*
 * Test hooks. io, when set, replaces pread/pwrite: it must behave like them
 * (return bytes moved or -1 with errno set) and may fail, tear or crash.
 * at, when set, is called at every enum ft_arb_point and may _exit().
 */
struct ft_arb_hooks {
	ssize_t (*io)(void *ctx, int fd, bool write, void *buf, size_t len,
		      off_t off);
	void (*at)(void *ctx, enum ft_arb_point pt, uint64_t epoch,
		   uint64_t mbal);
	void *ctx;
};

struct ft_arb_stats {
	uint64_t ballots;	/* ft_arb_run_ballot() calls */
	uint64_t rounds;	/* phase-1 attempts (first try + retries) */
	uint64_t aborts;	/* rounds lost to a peer's larger mbal */
	uint64_t known;		/* ballots answered by a decision record */
	uint64_t reads, writes;	/* record I/Os */
	uint64_t io_errors;
};

struct ft_arb;

/*
 * Formats an arbitration area at offset 0 of path (created if it is missing
 * and not a block device): superblock, epoch record for epoch 1 naming
 * first_primary (1 or 2) as primary and the other node as backup, and
 * valid empty records in every other slot. sector_size 0 picks BLKSSZGET on
 * a block device and 4096 on a file; otherwise it must be 512 or 4096 and,
 * on a block device, at least the logical sector size.
 */
int ft_arb_format(const char *path, const uint8_t pair_uuid[16],
		  uint32_t sector_size, unsigned int first_primary);

/*
 * Opens a formatted area as node_id 1 or 2 (0 = read-only observer) and
 * checks its superblock (-EBADMSG if it is not an arbitration area). Nothing
 * else is cached: every round re-reads the node's own dblock from the disk,
 * so a restarted node continues from what it wrote, and an unreadable own
 * dblock fails the ballot instead of being taken for an empty one.
 */
int ft_arb_open(const char *path, unsigned int node_id, struct ft_arb **out);
void ft_arb_close(struct ft_arb *a);

void ft_arb_set_hooks(struct ft_arb *a, const struct ft_arb_hooks *h);
/* Random pause between duelling rounds; default 50..500 ms. */
void ft_arb_set_backoff(struct ft_arb *a, unsigned int min_ms,
			unsigned int max_ms);
/* Seeds the backoff PRNG (default: from getrandom()). */
void ft_arb_set_seed(struct ft_arb *a, uint64_t seed);
void ft_arb_get_stats(const struct ft_arb *a, struct ft_arb_stats *st);
unsigned int ft_arb_node_id(const struct ft_arb *a);
uint32_t ft_arb_sector_size(const struct ft_arb *a);
void ft_arb_pair_uuid(const struct ft_arb *a, uint8_t uuid[16]);

int ft_arb_read_epoch(struct ft_arb *a, struct ft_arb_epoch *e);

/*
 * Runs the ballot for epoch until it is decided and stores the winner (1 or
 * 2) in *winner: go live if it is ft_arb_node_id(), halt otherwise. Rounds
 * lost to the peer are retried after the random backoff, forever. Returns
 * -ESTALE if the disk has moved past epoch, -EAGAIN if it has not reached it,
 * or the I/O error that stopped it (then nothing is decided for the caller:
 * wait and call again).
 */
int ft_arb_run_ballot(struct ft_arb *a, uint64_t epoch, unsigned int *winner);

/*
 * One round of the same ballot, without sleeping: for an event loop that
 * schedules its own randomized retry. Returns as ft_arb_run_ballot(), plus
 * -EBUSY when the peer's larger ballot preempted this round (nothing is
 * decided for the caller; retry after a random 50-500 ms).
 */
int ft_arb_ballot_once(struct ft_arb *a, uint64_t epoch, unsigned int *winner);

/*
 * Reads decision[node] (node 1 or 2). A slot holding another epoch is
 * returned as is; the caller compares d->epoch.
 */
int ft_arb_read_decision(struct ft_arb *a, unsigned int node,
			 struct ft_arb_decision *d);
/*
 * The decided winner of epoch from the decision slots: 0 if neither slot
 * holds a decision for it, -ESTALE if one holds a later epoch, -EIO if the two
 * disagree (never happens unless the disk lies).
 */
int ft_arb_decided(struct ft_arb *a, uint64_t epoch, unsigned int *winner);

int ft_arb_read_dblock(struct ft_arb *a, unsigned int node,
		       struct ft_arb_dblock *d);

/*
 * Writes the epoch record new_epoch naming primary and backup (0 = SOLO).
 * Only the decided winner of new_epoch - 1 may call it, after the new backup
 * has synchronised; primary must be that winner.
 */
int ft_arb_advance_epoch(struct ft_arb *a, uint64_t new_epoch,
			 unsigned int primary, unsigned int backup);

/* Disk heartbeat: diagnostics and liveness hints only, never safety. */
int ft_arb_heartbeat_write(struct ft_arb *a, uint64_t epoch, uint32_t state);
int ft_arb_heartbeat_read(struct ft_arb *a, unsigned int node,
			  struct ft_arb_hb *hb);

/* Mailbox: the winner tells the loser to halt ("LOST epoch e, winner w"). */
int ft_arb_mailbox_write(struct ft_arb *a, unsigned int to_node,
			 uint64_t epoch, uint32_t type, unsigned int winner);
int ft_arb_mailbox_read(struct ft_arb *a, unsigned int node,
			struct ft_arb_mail *m);

/* Prints every slot, decoded, with its validity; returns the first error. */
int ft_arb_dump(struct ft_arb *a, FILE *out);

#endif
