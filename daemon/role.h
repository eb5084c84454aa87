/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The role state machine of one ftd, as a pure function: (state, event) ->
 * (new state, actions). It does no I/O; ftd carries the actions out (start a
 * ballot, stop acking, go live, halt). Every allowed transition is one row of
 * the table in role.c; anything else leaves the state unchanged and returns
 * an error, so the tests can enumerate them all.
 *
 *   PRIMARY   --peer-dead-->     ARBITRATING  (ballot at once: incumbent bias;
 *                                              outputs stay held)
 *   BACKUP    --peer-dead-->     ARBITRATING  (stop acking; ballot after the
 *                                              backup delay)
 *   ARBITRATING --arb-won-->     LIVE_ALONE   (go live: drain, leave replay,
 *                                              release outputs)
 *   ARBITRATING --arb-lost-->    HALTED       (halt the VM, emit nothing)
 *   ARBITRATING --arb-error-->   ARBITRATING  (retry the ballot later; never
 *                                              live without a decision)
 *   LIVE_ALONE --sync-start-->   SYNCING      (a returning node asked to be
 *                                              seeded: SNAPSHOT the VM, stream it)
 *   SYNCING   --sync-done-->     PRIMARY      (won the ballot, wrote epoch e+1
 *                                              naming the returning node backup)
 *   SYNCING   --peer-dead-->     LIVE_ALONE   (the peer or the session is gone:
 *                                              the VM goes live again)
 *   SYNCING   --sync-abort-->    LIVE_ALONE   (refused or timed out: live again)
 *   SYNCING   --arb-error-->     SYNCING      (retry the ballot)
 *   SYNCING   --arb-lost-->      HALTED
 *   any but HALTED --stale-epoch--> HALTED    (a newer epoch exists: fenced)
 *
 * Planned failover (ftctl failover; node.c drives the steps, ftd_vmm.h the VMM):
 *   PRIMARY   --failover-->      HANDOVER     (PAUSE the VM; once PAUSED(S), every
 *                                              record <= S acked and EMITTED >= S,
 *                                              ask the backup to take over at S)
 *   BACKUP    --failover-->      HANDOVER     (the primary asked: stop acking,
 *                                              PAUSE(S) the VM, then ballot for
 *                                              the epoch and write epoch e+1
 *                                              naming this node primary)
 *   HANDOVER  --failover-->      (refused: -EALREADY, one at a time)
 *   HANDOVER  --swapped-->       the other role (RESUME in the new role: the VM
 *                                              re-attaches, the log restarts at
 *                                              seq 1 in epoch e+1, reversed)
 *   HANDOVER  --failover-abort-> the role before (RESUME in the old role: the
 *                                              same attachment, the same log)
 *   HANDOVER  --peer-dead-->     as failover-abort, then peer-dead from the old
 *                                role (RESUME, then the normal promotion path:
 *                                the ballot decides, never two live)
 *   HANDOVER  --arb-lost-->      HALTED       (the peer went live meanwhile)
 *   HANDOVER  --arb-error-->     HANDOVER     (retry the ballot, within the
 *                                              failover's time bound)
 *   any but HALTED --vm-lost-->  HALTED       (the local VM is gone: this node
 *                                              leaves the pair and its peer,
 *                                              hearing nothing, takes over)
 *   HALTED absorbs every event.
 */
#ifndef FTD_ROLE_H
#define FTD_ROLE_H

#include <stdint.h>

enum ft_role {
	FT_ROLE_PRIMARY = 1,
	FT_ROLE_BACKUP,
	FT_ROLE_ARBITRATING,
	FT_ROLE_LIVE_ALONE,
	FT_ROLE_SYNCING,
	FT_ROLE_HALTED,
	FT_ROLE_HANDOVER,	/* planned failover under way: the VM paused */
	FT_ROLE_MAX = FT_ROLE_HANDOVER,
};

enum ft_role_event {
	FT_EV_PEER_ALIVE = 1,	/* an authenticated session is up */
	FT_EV_PEER_DEAD,	/* no heartbeat and no log/ack traffic for the timeout */
	FT_EV_ARB_WON,
	FT_EV_ARB_LOST,
	FT_EV_ARB_ERROR,	/* the ballot could not complete (I/O, no disk) */
	FT_EV_STALE_EPOCH,	/* disk or peer shows a newer epoch */
	FT_EV_FAILOVER,		/* planned failover asked by ftctl */
	FT_EV_SYNC_START,
	FT_EV_SYNC_DONE,
	FT_EV_VM_LOST,		/* the local VM is gone (VMM closed, replay failed) */
	FT_EV_SWAPPED,		/* planned failover: epoch e+1 names the other primary */
	FT_EV_FAILOVER_ABORT,	/* planned failover abandoned (timeout, refusal) */
	FT_EV_SYNC_ABORT,	/* re-protection abandoned (refusal, timeout) */
	FT_EV_MAX = FT_EV_SYNC_ABORT,
};

/* Actions, a bit mask, in the order ftd performs them. */
enum ft_role_action {
	FT_ACT_STOP_ACKING	= 1 << 0,	/* backup: no more acks this epoch */
	FT_ACT_HOLD_OUTPUTS	= 1 << 1,	/* primary: nothing leaves until decided */
	FT_ACT_BALLOT_NOW	= 1 << 2,
	FT_ACT_BALLOT_DELAYED	= 1 << 3,	/* after the backup delay (bias) */
	FT_ACT_BALLOT_RETRY	= 1 << 4,	/* after the retry backoff */
	FT_ACT_GO_LIVE		= 1 << 5,
	FT_ACT_HALT		= 1 << 6,
	FT_ACT_ADVANCE_EPOCH	= 1 << 7,
	FT_ACT_SEED_BACKUP	= 1 << 8,
	FT_ACT_PAUSE_VM		= 1 << 9,	/* PAUSE to the VMM, bounded by failover_timeout */
	FT_ACT_RESUME_VM	= 1 << 10,	/* RESUME in the old role: failover abandoned */
	FT_ACT_REATTACH		= 1 << 11,	/* RESUME in the new role: new ring, new log */
};

struct ft_role_sm {
	enum ft_role role;
	enum ft_role from;	/* role before ARBITRATING or HANDOVER (PRIMARY or BACKUP) */
	uint64_t transitions;
};

void ft_role_init(struct ft_role_sm *sm, enum ft_role initial);
/*
 * Apply an event. Returns 0 and sets *actions (possibly 0 for a no-op that
 * the table allows), -EALREADY for a planned failover while one runs,
 * -EPERM in HALTED, or -EINVAL for an event the state does not take.
 */
int ft_role_step(struct ft_role_sm *sm, enum ft_role_event ev, unsigned int *actions);
const char *ft_role_name(enum ft_role r);
const char *ft_role_event_name(enum ft_role_event ev);
/* Comma-separated action names into buf. */
const char *ft_role_actions_str(unsigned int actions, char *buf, size_t len);
int ft_role_parse(const char *s, enum ft_role *r);

#endif
