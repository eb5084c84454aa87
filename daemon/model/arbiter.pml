/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Model of daemon/arbiter.c: the epoch test-and-set (two-node, single-disk
 * Disk Synod) as ft_arb_run_ballot() and ft_arb_advance_epoch() run it.
 *
 * What is modelled:
 * - the disk: the epoch record, dblock[1..2], decision[1..2]. Each read or
 *   write of one record is one atomic step. The C code's double-buffered
 *   dblocks give exactly this: a write goes to the older copy, so a torn
 *   write (crash mid-write) only destroys that copy and the newest stays
 *   intact; a read takes a snapshot of both copies (two identical collects)
 *   and so returns the last completed write. A crash before a write is
 *   already a branch here.
 * - with -DDBUF, the two copies themselves (seq, CRC-valid flag, torn
 *   writes), to check the argument above: the correct snapshot read, and
 *   -DBUG_SINGLE_COLLECT, a read of the two copies at two moments (what a
 *   single multi-sector read can give), which SPIN turns into two winners.
 * - two nodes that each loop: read the epoch record, read both decisions,
 *   run rounds (phase 1 write/read, choose, phase 2 write/read, decision
 *   write) with growing ballot numbers mbal = k*2 + id; the winner goes live
 *   and advances the epoch, the loser waits for the next epoch and takes part
 *   in its ballot.
 * - crashes between any two disk operations: the node loses all memory and
 *   starts over from the disk (MAXCRASH per node).
 * - the timing: none. Every interleaving of the two nodes' disk operations
 *   is explored, which covers any backoff and any I/O latency.
 *
 * Bounds: ballot numbers up to MAXBAL (a node that would need a larger one
 * stops: safety only), epochs 1..MAXE.
 *
 * Properties (assertions):
 * - at most one value is committed per epoch (chosen[]), and the two
 *   decision slots never hold different winners for one epoch;
 * - a node goes live in epoch e only if it is the committed value of e.
 *
 * Injected bugs (spin -DBUG_...), each of which must produce a violation:
 *   BUG_DOC_RULE      phase-1 choice "peer's inp if its bal >= ours, else me"
 *                     (forgets a value this node adopted in an earlier round)
 *   BUG_NO_P2_CHECK   commit without checking the peer's mbal in phase 2
 *   BUG_EPOCH_AS_INITIAL  a peer block of a later epoch read as "initial"
 *                     instead of -ESTALE
 *   DBUF + BUG_SINGLE_COLLECT  the copies of a dblock read at two moments
 */

#ifndef MAXBAL
#define MAXBAL 8
#endif
#ifndef MAXE
#define MAXE 2
#endif
#ifndef MAXCRASH
#define MAXCRASH 1		/* per node */
#endif
#ifndef MAXCRASHES
#define MAXCRASHES 2		/* both nodes together */
#endif
#define CAN_CRASH (crashes[me] < MAXCRASH && crashes[1] + crashes[2] < MAXCRASHES)

typedef dblock_t {
	byte epoch;
	byte mbal;
	byte bal;
	byte inp;
};

/* the disk */
byte erec = 1;			/* epoch record: current epoch */
#ifndef DBUF
dblock_t db[3];			/* db[1], db[2] */
#else
/*
 * -DDBUF: each dblock as the two CRC-checked copies the C code keeps
 * (copy 2n + seq % 2). A write may tear (the copy fails its CRC, the node
 * dies); a reader reads the two copies in two separate steps, which is
 * weaker than the C code's single read of both, and takes the valid one with
 * the highest (epoch, seq); two invalid copies are an error (start over).
 */
typedef copy_t {
	byte seq;
	bool ok;
	byte epoch;
	byte mbal;
	byte bal;
	byte inp;
};
copy_t cp[6];
#endif
byte dec_epoch[3];
byte dec_winner[3];

/* ghosts */
byte chosen[MAXE + 1];		/* committed winner per epoch */
byte crashes[3];

#define other (3 - me)

/* crash point: lose all memory, start over from the disk */
#define CRASH	if :: CAN_CRASH -> crashes[me]++; goto restart \
		   :: true -> skip fi

#ifdef BUG_EPOCH_AS_INITIAL
#define PEER_LATER_EPOCH	skip
#else
#define PEER_LATER_EPOCH	goto top	/* -ESTALE: re-read the epoch */
#endif

#ifndef DBUF
/* one atomic read of dblock[n] into ep, mb, bl, in */
#define READ_DB(n, ep, mb, bl, in) \
	d_step { ep = db[n].epoch; mb = db[n].mbal; \
		 bl = db[n].bal; in = db[n].inp }
/* ft_arb write_dblock(): one atomic write of dblock[me] */
#define WRITE_DB(ep, mb, bl, in) \
	d_step { db[me].epoch = ep; db[me].mbal = mb; \
		 db[me].bal = bl; db[me].inp = in }
#else
#define NEWER(x, y) (x.epoch > y.epoch || (x.epoch == y.epoch && x.seq > y.seq))
/*
 * read_pair(): the C code collects both copies twice and only accepts two
 * identical collects; both copies then held those values at one moment
 * between the collects, so the read is an atomic snapshot, modelled as one
 * step. -DBUG_SINGLE_COLLECT reads the two copies in two steps instead:
 * a copy read early can then be paired with the other copy torn later, and
 * the reader returns a value older than one it could have seen.
 */
#ifdef BUG_SINGLE_COLLECT
#define SPLIT	}; d_step {
#else
#define SPLIT
#endif
#define READ_DB(n, ep, mb, bl, in) \
	d_step { c0.seq = cp[2 * n].seq; c0.ok = cp[2 * n].ok; \
		 c0.epoch = cp[2 * n].epoch; c0.mbal = cp[2 * n].mbal; \
		 c0.bal = cp[2 * n].bal; c0.inp = cp[2 * n].inp; \
		 SPLIT \
		 c1.seq = cp[2 * n + 1].seq; c1.ok = cp[2 * n + 1].ok; \
		 c1.epoch = cp[2 * n + 1].epoch; \
		 c1.mbal = cp[2 * n + 1].mbal; \
		 c1.bal = cp[2 * n + 1].bal; c1.inp = cp[2 * n + 1].inp }; \
	atomic { \
		 if \
		 :: c0.ok && (!c1.ok || NEWER(c0, c1)) -> \
			rseq = c0.seq; ep = c0.epoch; mb = c0.mbal; \
			bl = c0.bal; in = c0.inp; bad = 0 \
		 :: c1.ok && (!c0.ok || !NEWER(c0, c1)) -> \
			rseq = c1.seq; ep = c1.epoch; mb = c1.mbal; \
			bl = c1.bal; in = c1.inp; bad = 0 \
		 :: else -> bad = 1 \
		 fi; \
		 c0.seq = 0; c0.ok = 0; c0.epoch = 0; c0.mbal = 0; \
		 c0.bal = 0; c0.inp = 0; c1.seq = 0; c1.ok = 0; \
		 c1.epoch = 0; c1.mbal = 0; c1.bal = 0; c1.inp = 0 }; \
	if :: bad -> goto top :: else -> skip fi
/* the next write goes to the copy the newest one is not in; it may tear */
#define WRITE_DB(ep, mb, bl, in) \
	if \
	:: d_step { oseq++; cp[2 * me + oseq % 2].seq = oseq; \
		    cp[2 * me + oseq % 2].ok = 1; \
		    cp[2 * me + oseq % 2].epoch = ep; \
		    cp[2 * me + oseq % 2].mbal = mb; \
		    cp[2 * me + oseq % 2].bal = bl; \
		    cp[2 * me + oseq % 2].inp = in } \
	:: CAN_CRASH -> \
		d_step { crashes[me]++; oseq++; \
			 cp[2 * me + oseq % 2].seq = 0; \
			 cp[2 * me + oseq % 2].ok = 0; \
			 cp[2 * me + oseq % 2].epoch = 0; \
			 cp[2 * me + oseq % 2].mbal = 0; \
			 cp[2 * me + oseq % 2].bal = 0; \
			 cp[2 * me + oseq % 2].inp = 0 }; \
		goto restart \
	fi
#endif

/* read_peer(): read dblock[other] as seen by a ballot for e */
#define READ_PEER \
	READ_DB(other, pep, pmbal, pbal, pinp); \
	if :: pep > e -> PEER_LATER_EPOCH :: else -> skip fi; \
	if :: pep != e -> pmbal = 0; pbal = 0; pinp = 0 :: else -> skip fi; \
	if :: seenep != e -> seenep = e; seen = 0 :: else -> skip fi; \
	if :: pmbal > seen -> seen = pmbal :: else -> skip fi

/* ft_arb_decided() on one slot */
#define READ_DECISION(n) \
	d_step { dep = dec_epoch[n]; dw = dec_winner[n] }; \
	if :: dep > e -> goto top :: else -> skip fi; \
	if :: dep == e && dw != 0 -> w = dw :: else -> skip fi

proctype node(byte me)
{
	byte e, w, v, vbal, mbal, seen, seenep;
	byte oep, ombal, obal, oinp;	/* own dblock */
	byte pep, pmbal, pbal, pinp;	/* peer dblock */
	byte dep, dw;
#ifdef DBUF
	copy_t c0, c1;
	byte rseq, oseq;
	bool bad;
#endif

restart:
	seen = 0;
	seenep = 0;
top:
	/* locals that carry nothing into a new attempt are cleared */
	atomic { w = 0; v = 0; vbal = 0; mbal = 0; oep = 0; ombal = 0;
		 obal = 0; oinp = 0; pep = 0; pmbal = 0; pbal = 0; pinp = 0;
		 dep = 0; dw = 0;
		 /* ft_arb_read_epoch() */
		 e = erec };
	CRASH;
	READ_DECISION(1);
	CRASH;
	READ_DECISION(2);
	CRASH;
	if :: w != 0 -> goto outcome :: else -> skip fi;

	/* ballot_round(): own block from disk */
	READ_DB(me, oep, ombal, obal, oinp);
#ifdef DBUF
	oseq = rseq;
#endif
	if :: oep > e -> goto top :: else -> skip fi;
	if :: oep < e -> ombal = 0; obal = 0; oinp = 0 :: else -> skip fi;
	CRASH;
	READ_PEER;
	CRASH;
	mbal = (ombal > seen -> ombal : seen);
	mbal = (mbal / 2 + 1) * 2 + me;
	if :: mbal > MAXBAL -> goto end_done :: else -> skip fi;

	/* phase 1 */
	WRITE_DB(e, mbal, obal, oinp);
	CRASH;
	READ_PEER;
	CRASH;
	if :: pmbal > mbal -> goto top :: else -> skip fi;
#ifdef BUG_DOC_RULE
	if :: pbal > 0 && pbal >= obal -> v = pinp :: else -> v = me fi;
#else
	v = me;
	vbal = 0;
	if :: obal > vbal -> vbal = obal; v = oinp :: else -> skip fi;
	if :: pbal > vbal -> vbal = pbal; v = pinp :: else -> skip fi;
#endif

	/* phase 2 */
	WRITE_DB(e, mbal, mbal, v);
	CRASH;
	READ_PEER;
	CRASH;
#ifndef BUG_NO_P2_CHECK
	if :: pmbal > mbal -> goto top :: else -> skip fi;
#endif

	/* committed */
	d_step {
		assert(v == 1 || v == 2);
		if :: chosen[e] == 0 -> chosen[e] = v
		   :: else -> assert(chosen[e] == v)
		fi
	};
	d_step {
		dec_epoch[me] = e; dec_winner[me] = v;
		assert(dec_epoch[other] != e || dec_winner[other] == 0 ||
		       dec_winner[other] == v)
	};
	CRASH;
	w = v;

outcome:
	if
	:: w == me ->
		/* go live in epoch e */
		assert(chosen[e] == me);
		if :: e >= MAXE -> goto end_done :: else -> skip fi;
		/* ft_arb_advance_epoch(e + 1): only writer of the record */
		if :: erec == e -> erec = e + 1 :: else -> skip fi;
		CRASH;
		goto top
	:: else ->
		/* halt; come back as the backup of a later epoch */
end_wait:	(erec > e);
		goto top
	fi;
end_done:
	skip
}

init {
	atomic {
#ifdef DBUF
		/* format: both copies valid, seq 0 and 1 */
		cp[1].seq = 1; cp[1].ok = 1; cp[0].ok = 1;
		cp[2].ok = 1; cp[3].seq = 1; cp[3].ok = 1;
		cp[4].ok = 1; cp[5].seq = 1; cp[5].ok = 1;
#endif
		run node(1);
		run node(2)
	}
}
