/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Model of daemon/arbiter.c: the epoch test-and-set (two-node, single-disk
 * Disk Synod) as ft_arb_run_ballot() and ft_arb_advance_epoch() run it.
 *
 * What is modelled:
 * - the disk: the epoch record, dblock[1..2], decision[1..2]. Each read or
 *   write of one record is one atomic step. The C code's double-buffered
 *   records give exactly this: a torn write (crash mid-write) fails its CRC
 *   and readers fall back to the previous copy, i.e. the write did not
 *   happen; a crash before a write is already a branch here.
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
 */

#ifndef MAXBAL
#define MAXBAL 8
#endif
#ifndef MAXE
#define MAXE 2
#endif
#ifndef MAXCRASH
#define MAXCRASH 1
#endif

typedef dblock_t {
	byte epoch;
	byte mbal;
	byte bal;
	byte inp;
};

/* the disk */
byte erec = 1;			/* epoch record: current epoch */
dblock_t db[3];			/* db[1], db[2] */
byte dec_epoch[3];
byte dec_winner[3];

/* ghosts */
byte chosen[MAXE + 1];		/* committed winner per epoch */
byte crashes[3];

#define other (3 - me)

/* crash point: lose all memory, start over from the disk */
#define CRASH	if :: crashes[me] < MAXCRASH -> crashes[me]++; goto restart \
		   :: true -> skip fi

#ifdef BUG_EPOCH_AS_INITIAL
#define PEER_LATER_EPOCH	skip
#else
#define PEER_LATER_EPOCH	goto top	/* -ESTALE: re-read the epoch */
#endif

/* read_peer(): one atomic read of db[other] as seen by a ballot for e */
#define READ_PEER \
	d_step { pep = db[other].epoch; pmbal = db[other].mbal; \
		 pbal = db[other].bal; pinp = db[other].inp }; \
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
	d_step { oep = db[me].epoch; ombal = db[me].mbal;
		 obal = db[me].bal; oinp = db[me].inp };
	if :: oep > e -> goto top :: else -> skip fi;
	if :: oep < e -> ombal = 0; obal = 0; oinp = 0 :: else -> skip fi;
	CRASH;
	READ_PEER;
	CRASH;
	mbal = (ombal > seen -> ombal : seen);
	mbal = (mbal / 2 + 1) * 2 + me;
	if :: mbal > MAXBAL -> goto end_done :: else -> skip fi;

	/* phase 1 */
	d_step { db[me].epoch = e; db[me].mbal = mbal;
		 db[me].bal = obal; db[me].inp = oinp };
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
	d_step { db[me].epoch = e; db[me].mbal = mbal;
		 db[me].bal = mbal; db[me].inp = v };
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
		run node(1);
		run node(2)
	}
}
