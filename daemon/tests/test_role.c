// SPDX-License-Identifier: GPL-2.0
/*
 * Every (role, event) pair of the state machine against an independent
 * expectation table written from ARBITRATION.md sections 3-4: the resulting
 * role, the actions and the return code. Plus the paths that matter most:
 * a backup never goes live without winning, a loser halts for good.
 */
#include <errno.h>
#include <string.h>
#include "role.h"
#include "tap.h"

struct want {
	int ret;
	enum ft_role to;
	unsigned int actions;
};

#define P FT_ROLE_PRIMARY
#define B FT_ROLE_BACKUP
#define A FT_ROLE_ARBITRATING
#define L FT_ROLE_LIVE_ALONE
#define S FT_ROLE_SYNCING
#define H FT_ROLE_HALTED
#define O FT_ROLE_HANDOVER
#define X(r) { -EINVAL, r, 0 }

/* [role][event]: event order as enum ft_role_event */
static const struct want expect[FT_ROLE_MAX + 1][FT_EV_MAX + 1] = {
	[P] = { [FT_EV_PEER_ALIVE] = { 0, P, 0 },
		[FT_EV_PEER_DEAD] = { 0, A, FT_ACT_HOLD_OUTPUTS | FT_ACT_BALLOT_NOW },
		[FT_EV_ARB_WON] = X(P), [FT_EV_ARB_LOST] = X(P), [FT_EV_ARB_ERROR] = X(P),
		[FT_EV_STALE_EPOCH] = { 0, H, FT_ACT_HALT },
		[FT_EV_FAILOVER] = { 0, O, FT_ACT_PAUSE_VM },
		[FT_EV_SYNC_START] = X(P), [FT_EV_SYNC_DONE] = X(P),
		[FT_EV_VM_LOST] = { 0, H, FT_ACT_HALT },
		[FT_EV_SWAPPED] = X(P), [FT_EV_FAILOVER_ABORT] = X(P), [FT_EV_SYNC_ABORT] = X(P) },
	[B] = { [FT_EV_PEER_ALIVE] = { 0, B, 0 },
		[FT_EV_PEER_DEAD] = { 0, A, FT_ACT_STOP_ACKING | FT_ACT_BALLOT_DELAYED },
		[FT_EV_ARB_WON] = X(B), [FT_EV_ARB_LOST] = X(B), [FT_EV_ARB_ERROR] = X(B),
		[FT_EV_STALE_EPOCH] = { 0, H, FT_ACT_HALT },
		[FT_EV_FAILOVER] = { 0, O, FT_ACT_STOP_ACKING | FT_ACT_PAUSE_VM },
		[FT_EV_SYNC_START] = X(B), [FT_EV_SYNC_DONE] = X(B),
		[FT_EV_VM_LOST] = { 0, H, FT_ACT_HALT },
		[FT_EV_SWAPPED] = X(B), [FT_EV_FAILOVER_ABORT] = X(B), [FT_EV_SYNC_ABORT] = X(B) },
	[A] = { [FT_EV_PEER_ALIVE] = { 0, A, 0 }, [FT_EV_PEER_DEAD] = { 0, A, 0 },
		[FT_EV_ARB_WON] = { 0, L, FT_ACT_GO_LIVE },
		[FT_EV_ARB_LOST] = { 0, H, FT_ACT_HALT },
		[FT_EV_ARB_ERROR] = { 0, A, FT_ACT_BALLOT_RETRY },
		[FT_EV_STALE_EPOCH] = { 0, H, FT_ACT_HALT },
		[FT_EV_FAILOVER] = X(A), [FT_EV_SYNC_START] = X(A), [FT_EV_SYNC_DONE] = X(A),
		[FT_EV_VM_LOST] = { 0, H, FT_ACT_HALT },
		[FT_EV_SWAPPED] = X(A), [FT_EV_FAILOVER_ABORT] = X(A), [FT_EV_SYNC_ABORT] = X(A) },
	[L] = { [FT_EV_PEER_ALIVE] = { 0, L, 0 }, [FT_EV_PEER_DEAD] = { 0, L, 0 },
		[FT_EV_ARB_WON] = X(L), [FT_EV_ARB_LOST] = X(L), [FT_EV_ARB_ERROR] = X(L),
		[FT_EV_STALE_EPOCH] = { 0, H, FT_ACT_HALT }, [FT_EV_FAILOVER] = X(L),
		[FT_EV_SYNC_START] = { 0, S, FT_ACT_SEED_BACKUP }, [FT_EV_SYNC_DONE] = X(L),
		[FT_EV_VM_LOST] = { 0, H, FT_ACT_HALT },
		[FT_EV_SWAPPED] = X(L), [FT_EV_FAILOVER_ABORT] = X(L), [FT_EV_SYNC_ABORT] = X(L) },
	[S] = { [FT_EV_PEER_ALIVE] = { 0, S, 0 }, [FT_EV_PEER_DEAD] = { 0, L, FT_ACT_GO_LIVE },
		[FT_EV_ARB_WON] = X(S), [FT_EV_ARB_LOST] = { 0, H, FT_ACT_HALT },
		[FT_EV_ARB_ERROR] = { 0, S, FT_ACT_BALLOT_RETRY },
		[FT_EV_STALE_EPOCH] = { 0, H, FT_ACT_HALT }, [FT_EV_FAILOVER] = X(S),
		[FT_EV_SYNC_START] = X(S), [FT_EV_SYNC_DONE] = { 0, P, FT_ACT_ADVANCE_EPOCH },
		[FT_EV_VM_LOST] = { 0, H, FT_ACT_HALT },
		[FT_EV_SWAPPED] = X(S), [FT_EV_FAILOVER_ABORT] = X(S),
		[FT_EV_SYNC_ABORT] = { 0, L, FT_ACT_GO_LIVE } },
	/* HANDOVER entered from the primary (sm.from = PRIMARY) */
	[O] = { [FT_EV_PEER_ALIVE] = { 0, O, 0 },
		[FT_EV_PEER_DEAD] = { 0, A, FT_ACT_RESUME_VM | FT_ACT_HOLD_OUTPUTS | FT_ACT_BALLOT_NOW },
		[FT_EV_ARB_WON] = X(O), [FT_EV_ARB_LOST] = { 0, H, FT_ACT_HALT },
		[FT_EV_ARB_ERROR] = { 0, O, FT_ACT_BALLOT_RETRY },
		[FT_EV_STALE_EPOCH] = { 0, H, FT_ACT_HALT },
		[FT_EV_FAILOVER] = { -EALREADY, O, 0 },
		[FT_EV_SYNC_START] = X(O), [FT_EV_SYNC_DONE] = X(O),
		[FT_EV_VM_LOST] = { 0, H, FT_ACT_HALT },
		[FT_EV_SWAPPED] = { 0, B, FT_ACT_REATTACH },
		[FT_EV_FAILOVER_ABORT] = { 0, P, FT_ACT_RESUME_VM }, [FT_EV_SYNC_ABORT] = X(O) },
};

int main(void)
{
	struct ft_role_sm sm;
	unsigned int act;
	char buf[128];
	int bad = 0;

	for (int r = FT_ROLE_PRIMARY; r <= FT_ROLE_MAX; r++)
		for (int e = 1; e <= FT_EV_MAX; e++) {
			struct want w = r == H ? (struct want){ -EPERM, H, 0 } : expect[r][e];
			int ret;

			ft_role_init(&sm, r == O ? P : (enum ft_role)r);
			if (r == O)
				ft_role_step(&sm, FT_EV_FAILOVER, &act);
			ret = ft_role_step(&sm, (enum ft_role_event)e, &act);
			ok(ret == w.ret && sm.role == w.to && act == w.actions,
			   "%s --%s--> %s [%s] (ret %d)", ft_role_name(r),
			   ft_role_event_name(e), ft_role_name(sm.role),
			   ft_role_actions_str(act, buf, sizeof(buf)), ret);
			bad |= ret != w.ret;
		}

	/* A backup's promotion path, step by step. */
	ft_role_init(&sm, FT_ROLE_BACKUP);
	ft_role_step(&sm, FT_EV_PEER_DEAD, &act);
	ok(sm.role == A && sm.from == B && (act & FT_ACT_STOP_ACKING), "backup suspects: stops acking");
	ft_role_step(&sm, FT_EV_ARB_ERROR, &act);
	ft_role_step(&sm, FT_EV_PEER_ALIVE, &act);
	ok(sm.role == A, "disk errors and a returning peer keep it arbitrating, never live");
	ft_role_step(&sm, FT_EV_ARB_WON, &act);
	ok(sm.role == L && act == FT_ACT_GO_LIVE && sm.transitions == 2, "wins: goes live (2 role changes)");

	ft_role_init(&sm, FT_ROLE_PRIMARY);
	ft_role_step(&sm, FT_EV_PEER_DEAD, &act);
	ft_role_step(&sm, FT_EV_ARB_LOST, &act);
	ok(sm.role == H && act == FT_ACT_HALT, "primary that loses halts");
	ok(ft_role_step(&sm, FT_EV_ARB_WON, &act) == -EPERM && sm.role == H,
	   "a halted node stays halted whatever comes later");

	/* Planned failover from the backup's side. */
	ft_role_init(&sm, FT_ROLE_BACKUP);
	ft_role_step(&sm, FT_EV_FAILOVER, &act);
	ok(sm.role == O && sm.from == B && (act & FT_ACT_STOP_ACKING),
	   "backup asked to take over: handover, stops acking, pauses");
	ft_role_step(&sm, FT_EV_SWAPPED, &act);
	ok(sm.role == P && act == FT_ACT_REATTACH, "backup swapped: primary, re-attach");
	ft_role_step(&sm, FT_EV_FAILOVER, &act);
	ft_role_step(&sm, FT_EV_SWAPPED, &act);
	ok(sm.role == B && sm.transitions == 4, "and back: backup again (4 role changes)");
	ft_role_step(&sm, FT_EV_FAILOVER, &act);
	ft_role_step(&sm, FT_EV_PEER_DEAD, &act);
	ok(sm.role == A && sm.from == B && act == (FT_ACT_RESUME_VM | FT_ACT_STOP_ACKING |
						   FT_ACT_BALLOT_DELAYED),
	   "backup whose primary dies mid-handover resumes, then arbitrates as the backup");
	ft_role_step(&sm, FT_EV_ARB_WON, &act);
	ok(sm.role == L && act == FT_ACT_GO_LIVE, "and goes live only by winning");
	ft_role_init(&sm, FT_ROLE_PRIMARY);
	ft_role_step(&sm, FT_EV_FAILOVER, &act);
	ft_role_step(&sm, FT_EV_FAILOVER_ABORT, &act);
	ok(sm.role == P && act == FT_ACT_RESUME_VM, "abandoned handover: primary again, resumed");

	enum ft_role pr;

	ok(ft_role_parse("live-alone", &pr) == 0 && pr == L && ft_role_parse("boss", &pr) == -EINVAL,
	   "role names parse");
	return tap_done();
}
