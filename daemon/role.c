// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "role.h"

struct row {
	enum ft_role from;
	enum ft_role_event ev;
	enum ft_role to;	/* or one of the TO_* below */
	unsigned int actions;
};

#define TO_FROM		((enum ft_role)0)	/* back to sm->from */
#define TO_OTHER	((enum ft_role)-1)	/* primary <-> backup (from sm->from) */
#define TO_FROM_AGAIN	((enum ft_role)-2)	/* back to sm->from, then the same event there */

#define ANY		((enum ft_role)0)	/* from: every role but HALTED (which absorbs all) */

/* The whole machine. Order does not matter: (from, ev) pairs are unique, ANY included. */
static const struct row table[] = {
	/* A newer epoch exists: fenced. The local VM is gone: this node leaves the pair. */
	{ ANY, FT_EV_STALE_EPOCH, FT_ROLE_HALTED, FT_ACT_HALT },
	{ ANY, FT_EV_VM_LOST, FT_ROLE_HALTED, FT_ACT_HALT },

	{ FT_ROLE_PRIMARY, FT_EV_PEER_ALIVE, FT_ROLE_PRIMARY, 0 },
	{ FT_ROLE_PRIMARY, FT_EV_PEER_DEAD, FT_ROLE_ARBITRATING,
	  FT_ACT_HOLD_OUTPUTS | FT_ACT_BALLOT_NOW },

	{ FT_ROLE_BACKUP, FT_EV_PEER_ALIVE, FT_ROLE_BACKUP, 0 },
	{ FT_ROLE_BACKUP, FT_EV_PEER_DEAD, FT_ROLE_ARBITRATING,
	  FT_ACT_STOP_ACKING | FT_ACT_BALLOT_DELAYED },

	/* The ballot decides even if the peer shows up again meanwhile. */
	{ FT_ROLE_ARBITRATING, FT_EV_PEER_ALIVE, FT_ROLE_ARBITRATING, 0 },
	{ FT_ROLE_ARBITRATING, FT_EV_PEER_DEAD, FT_ROLE_ARBITRATING, 0 },
	{ FT_ROLE_ARBITRATING, FT_EV_ARB_WON, FT_ROLE_LIVE_ALONE, FT_ACT_GO_LIVE },
	{ FT_ROLE_ARBITRATING, FT_EV_ARB_LOST, FT_ROLE_HALTED, FT_ACT_HALT },
	{ FT_ROLE_ARBITRATING, FT_EV_ARB_ERROR, FT_ROLE_ARBITRATING, FT_ACT_BALLOT_RETRY },

	{ FT_ROLE_LIVE_ALONE, FT_EV_PEER_ALIVE, FT_ROLE_LIVE_ALONE, 0 },
	{ FT_ROLE_LIVE_ALONE, FT_EV_PEER_DEAD, FT_ROLE_LIVE_ALONE, 0 },
	{ FT_ROLE_LIVE_ALONE, FT_EV_SYNC_START, FT_ROLE_SYNCING, FT_ACT_SEED_BACKUP },

	{ FT_ROLE_SYNCING, FT_EV_PEER_ALIVE, FT_ROLE_SYNCING, 0 },
	{ FT_ROLE_SYNCING, FT_EV_SYNC_DONE, FT_ROLE_PRIMARY, FT_ACT_ADVANCE_EPOCH },
	{ FT_ROLE_SYNCING, FT_EV_PEER_DEAD, FT_ROLE_LIVE_ALONE, FT_ACT_GO_LIVE },
	{ FT_ROLE_SYNCING, FT_EV_SYNC_ABORT, FT_ROLE_LIVE_ALONE, FT_ACT_GO_LIVE },
	{ FT_ROLE_SYNCING, FT_EV_ARB_ERROR, FT_ROLE_SYNCING, FT_ACT_BALLOT_RETRY },
	{ FT_ROLE_SYNCING, FT_EV_ARB_LOST, FT_ROLE_HALTED, FT_ACT_HALT },

	/* Planned failover. */
	{ FT_ROLE_PRIMARY, FT_EV_FAILOVER, FT_ROLE_HANDOVER, FT_ACT_PAUSE_VM },
	{ FT_ROLE_BACKUP, FT_EV_FAILOVER, FT_ROLE_HANDOVER, FT_ACT_STOP_ACKING | FT_ACT_PAUSE_VM },
	{ FT_ROLE_HANDOVER, FT_EV_PEER_ALIVE, FT_ROLE_HANDOVER, 0 },
	{ FT_ROLE_HANDOVER, FT_EV_SWAPPED, TO_OTHER, FT_ACT_REATTACH },
	{ FT_ROLE_HANDOVER, FT_EV_FAILOVER_ABORT, TO_FROM, FT_ACT_RESUME_VM },
	{ FT_ROLE_HANDOVER, FT_EV_PEER_DEAD, TO_FROM_AGAIN, FT_ACT_RESUME_VM },
	{ FT_ROLE_HANDOVER, FT_EV_ARB_LOST, FT_ROLE_HALTED, FT_ACT_HALT },
	{ FT_ROLE_HANDOVER, FT_EV_ARB_ERROR, FT_ROLE_HANDOVER, FT_ACT_BALLOT_RETRY },
};

void ft_role_init(struct ft_role_sm *sm, enum ft_role initial)
{
	sm->role = initial;
	sm->from = initial;
	sm->transitions = 0;
}

int ft_role_step(struct ft_role_sm *sm, enum ft_role_event ev, unsigned int *actions)
{
	*actions = 0;
	if (sm->role == FT_ROLE_HALTED)
		return -EPERM;
	if (ev == FT_EV_FAILOVER && sm->role == FT_ROLE_HANDOVER)
		return -EALREADY;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		enum ft_role to = table[i].to;
		unsigned int more = 0;

		if ((table[i].from != sm->role && table[i].from != ANY) || table[i].ev != ev)
			continue;
		if (to == TO_FROM || to == TO_FROM_AGAIN)
			to = sm->from;
		else if (to == TO_OTHER)
			to = sm->from == FT_ROLE_PRIMARY ? FT_ROLE_BACKUP : FT_ROLE_PRIMARY;
		if ((to == FT_ROLE_ARBITRATING || to == FT_ROLE_HANDOVER) && sm->role != to)
			sm->from = sm->role;
		if (to != sm->role)
			sm->transitions++;
		sm->role = to;
		if (table[i].to == TO_FROM_AGAIN && ft_role_step(sm, ev, &more))
			more = 0;
		*actions = table[i].actions | more;
		return 0;
	}
	return -EINVAL;
}

static const char *const role_names[] = {
	[FT_ROLE_PRIMARY] = "primary", [FT_ROLE_BACKUP] = "backup",
	[FT_ROLE_ARBITRATING] = "arbitrating", [FT_ROLE_LIVE_ALONE] = "live-alone",
	[FT_ROLE_SYNCING] = "syncing", [FT_ROLE_HALTED] = "halted",
	[FT_ROLE_HANDOVER] = "handover",
};

const char *ft_role_name(enum ft_role r)
{
	return r >= FT_ROLE_PRIMARY && r <= FT_ROLE_MAX ? role_names[r] : "unknown";
}

int ft_role_parse(const char *s, enum ft_role *r)
{
	for (int i = FT_ROLE_PRIMARY; i <= FT_ROLE_MAX; i++)
		if (!strcmp(s, role_names[i])) {
			*r = (enum ft_role)i;
			return 0;
		}
	return -EINVAL;
}

const char *ft_role_event_name(enum ft_role_event ev)
{
	static const char *const n[] = {
		[FT_EV_PEER_ALIVE] = "peer-alive", [FT_EV_PEER_DEAD] = "peer-dead",
		[FT_EV_ARB_WON] = "arb-won", [FT_EV_ARB_LOST] = "arb-lost",
		[FT_EV_ARB_ERROR] = "arb-error", [FT_EV_STALE_EPOCH] = "stale-epoch",
		[FT_EV_FAILOVER] = "failover", [FT_EV_SYNC_START] = "sync-start",
		[FT_EV_SYNC_DONE] = "sync-done", [FT_EV_VM_LOST] = "vm-lost",
		[FT_EV_SWAPPED] = "swapped", [FT_EV_FAILOVER_ABORT] = "failover-abort",
		[FT_EV_SYNC_ABORT] = "sync-abort",
	};

	return ev >= 1 && ev <= FT_EV_MAX ? n[ev] : "unknown";
}

const char *ft_role_actions_str(unsigned int actions, char *buf, size_t len)
{
	static const char *const n[] = {
		"stop-acking", "hold-outputs", "ballot-now", "ballot-delayed", "ballot-retry",
		"go-live", "halt", "advance-epoch", "seed-backup", "pause-vm", "resume-vm", "reattach",
	};
	size_t at = 0;

	buf[0] = 0;
	for (unsigned int i = 0; i < sizeof(n) / sizeof(n[0]); i++)
		if (actions & (1u << i) && at < len)
			at += (size_t)snprintf(buf + at, len - at, "%s%s", at ? "," : "", n[i]);
	if (!at)
		snprintf(buf, len, "none");
	return buf;
}
